//! RFC 6749 §4.4: the client acts on its own behalf. Confidential clients only; no
//! refresh token (§4.4.3).

use super::{mint, requested_scopes, response, Issue, TokenResponse};
use crate::model::{Application, Timestamp};
use crate::provider::error::OAuthError;
use crate::provider::params::Params;
use crate::scope::ScopesBackend;
use crate::store::Store;

/// Issues an access token to `app`.
pub(crate) async fn grant<S: Store>(
    store: &S,
    minter: &super::Minter,
    scopes: &dyn ScopesBackend,
    app: &Application,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    if !app.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "Public clients cannot use the client_credentials grant.",
        ));
    }
    let scope = requested_scopes(scopes, app, params)?;
    let now = Timestamp::now();
    let minted = mint(
        minter,
        Issue {
            app,
            user_id: None,
            scope: &scope,
            grant_id: None,
            with_refresh: false,
            family: None,
            values: None,
            now,
        },
    )?;
    let issued = store.issue_tokens(minted.tokens).await?;
    Ok(response(minted.access, None, &issued, now))
}
