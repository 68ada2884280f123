//! RFC 6749 §4.3: resource-owner password credentials, checked by the host's
//! [`UserAuthenticator`]. RFC 9700 §2.4 says not to use this grant; DOT still offers it
//! (refused when `COMPLIANT_BCP_RFC9700_PASSWORD_GRANT` is on).

use super::{mint, requested_scopes, response, Issue, TokenResponse};
use crate::model::{Application, Timestamp};
use crate::provider::error::OAuthError;
use crate::provider::params::Params;
use crate::provider::users::UserAuthenticator;
use crate::scope::ScopesBackend;
use crate::store::Store;

/// Issues an access and a refresh token for the user named in the request.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    store: &S,
    users: &U,
    minter: &super::Minter,
    scopes: &dyn ScopesBackend,
    app: &Application,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if minter.settings.compliant_bcp_rfc9700_password_grant {
        return Err(OAuthError::new(
            crate::provider::error::ErrorCode::UnsupportedGrantType,
            "The password grant is disabled (RFC 9700 §2.4).",
        ));
    }
    let username = params.require("username")?;
    let password = params.require("password")?;
    let scope = requested_scopes(scopes, app, params)?;
    let user = users
        .authenticate(username, password)
        .await?
        .ok_or_else(|| OAuthError::invalid_grant("Invalid credentials given."))?;
    let now = Timestamp::now();
    let minted = mint(
        minter,
        Issue {
            app,
            user_id: Some(user.id),
            scope: &scope,
            grant_id: None,
            with_refresh: true,
            family: None,
            values: None,
            now,
        },
    )?;
    let issued = store.issue_tokens(minted.tokens).await?;
    Ok(response(minted.access, minted.refresh, &issued, now))
}
