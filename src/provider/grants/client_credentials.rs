//! RFC 6749 §4.4: the client acts on its own behalf. Confidential clients only; no
//! refresh token (§4.4.3).
//!
//! The decision (`decide`) reads nothing: a public client is refused with
//! `unauthorized_client`; otherwise the scope is the requested one (each available to
//! the client, else `invalid_scope`) or the client's default. `grant` then issues one
//! access token without a user.

use super::{mint, requested_scopes, response, GrantContext, Issue, TokenResponse};
use crate::model::Application;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;
use crate::scope::{Scopes, ScopesBackend};
use crate::store::Store;

/// The scope to issue to `app`, or why not.
pub(crate) fn decide(
    app: &Application,
    scopes: &dyn ScopesBackend,
    params: &Params,
) -> Result<Scopes, OAuthError> {
    if !app.is_confidential() {
        return Err(OAuthError::unauthorized_client(
            "Public clients cannot use the client_credentials grant.",
        ));
    }
    requested_scopes(scopes, app, params)
}

/// Issues an access token to the client.
pub(crate) async fn grant<S: Store, U>(
    ctx: &GrantContext<'_, S, U>,
) -> Result<TokenResponse, OAuthError> {
    let (app, now) = (ctx.app, ctx.now);
    let scope = decide(app, ctx.scopes, ctx.params)?;
    let resources = ctx.requested_resources()?;
    let minted = mint(
        ctx.minter,
        Issue {
            app,
            user_id: None,
            scope: &scope,
            resources: &resources,
            refresh_resources: &resources,
            grant_id: None,
            with_refresh: false,
            family: None,
            values: None,
            now,
        },
    )?;
    let issued = ctx.store.issue_tokens(minted.tokens).await?;
    Ok(response(minted.access, None, &issued, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, GrantType, NewApplication};
    use crate::provider::error::ErrorCode;
    use crate::scope::SettingsScopes;
    use crate::settings::Settings;

    fn app(t: ClientType) -> Application {
        NewApplication::new("c", t, GrantType::ClientCredentials).into_row(1)
    }

    #[test]
    fn public_clients_are_refused() {
        let scopes = SettingsScopes::from_settings(&Settings::default());
        let e = decide(&app(ClientType::Public), &scopes, &Params::parse(b"")).unwrap_err();
        assert_eq!(e.code, ErrorCode::UnauthorizedClient);
    }

    #[test]
    fn confidential_clients_get_the_requested_or_default_scope() {
        let scopes = SettingsScopes::from_settings(&Settings::default());
        let app = app(ClientType::Confidential);
        assert_eq!(
            decide(&app, &scopes, &Params::parse(b"")).unwrap(),
            scopes.default_scopes(Some("c"))
        );
        let available = scopes.available_scopes(Some("c"));
        let one = available.iter().next().expect("a default scope").to_owned();
        let body = format!("scope={one}");
        assert_eq!(
            decide(&app, &scopes, &Params::parse(body.as_bytes())).unwrap(),
            Scopes::parse(&one).unwrap()
        );
        let e = decide(&app, &scopes, &Params::parse(b"scope=no-such-scope")).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }
}
