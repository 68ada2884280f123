//! RFC 6749 §4.3: resource-owner password credentials, checked by the host's
//! [`UserAuthenticator`]. RFC 9700 §2.4 says not to use this grant; DOT still offers it
//! (refused when `COMPLIANT_BCP_RFC9700_PASSWORD_GRANT` is on).
//!
//! The decision (`decide`) reads nothing: the grant disabled by that setting is
//! `unsupported_grant_type`; `username` and `password` are required (`invalid_request`);
//! the scope is checked as for the other grants (`invalid_scope`). `grant` then asks
//! the [`UserAuthenticator`] (wrong credentials: `invalid_grant`) and issues an access and
//! a refresh token.

use super::{mint, requested_scopes, response, GrantContext, Issue, TokenResponse};
use crate::model::Application;
use crate::provider::error::OAuthError;
use crate::provider::params::Params;
use crate::provider::users::UserAuthenticator;
use crate::scope::{Scopes, ScopesBackend};
use crate::store::Store;

/// What a password request asks for, once it passed [`decide`]. No `Debug`: it holds the
/// password.
pub(crate) struct Credentials<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
    pub(crate) scope: Scopes,
}

/// The credentials to check and the scope to issue, or why the request is refused.
pub(crate) fn decide<'a>(
    disabled: bool,
    app: &Application,
    scopes: &dyn ScopesBackend,
    params: &'a Params,
) -> Result<Credentials<'a>, OAuthError> {
    if disabled {
        return Err(OAuthError::new(
            crate::provider::error::ErrorCode::UnsupportedGrantType,
            "The password grant is disabled (RFC 9700 §2.4).",
        ));
    }
    let username = params.require("username")?;
    let password = params.require("password")?;
    let scope = requested_scopes(scopes, app, params)?;
    Ok(Credentials {
        username,
        password,
        scope,
    })
}

/// Issues an access and a refresh token for the user named in the request.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    ctx: &GrantContext<'_, S, U>,
) -> Result<TokenResponse, OAuthError> {
    let (app, now) = (ctx.app, ctx.now);
    let disabled = ctx.minter.settings.compliant_bcp_rfc9700_password_grant;
    let req = decide(disabled, app, ctx.scopes, ctx.params)?;
    let resources = ctx.requested_resources()?;
    // Throttled like the login page (provider::throttle): a locked username or address
    // is refused before the password is checked.
    if let Some(locked) = ctx
        .throttle
        .login_locked(req.username, ctx.client_addr)
        .await
    {
        return Err(OAuthError::invalid_grant(format!(
            "Too many failed sign-ins for this user or from this address; try again in {} s.",
            locked.seconds()
        ))
        .with_retry_after(locked.seconds()));
    }
    let Some(user) = ctx.users.authenticate(req.username, req.password).await? else {
        ctx.throttle
            .login_failed(req.username, ctx.client_addr)
            .await;
        return Err(OAuthError::invalid_grant("Invalid credentials given."));
    };
    ctx.throttle.login_succeeded(req.username).await;
    let minted = mint(
        ctx.minter,
        Issue {
            app,
            user_id: Some(user.id),
            scope: &req.scope,
            resources: &resources,
            refresh_resources: &resources,
            grant_id: None,
            with_refresh: true,
            family: None,
            values: None,
            now,
        },
    )?;
    let issued = ctx.store.issue_tokens(minted.tokens).await?;
    Ok(response(minted.access, minted.refresh, &issued, now))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, GrantType, NewApplication};
    use crate::provider::error::ErrorCode;
    use crate::scope::SettingsScopes;
    use crate::settings::Settings;

    fn app() -> Application {
        NewApplication::new("c", ClientType::Confidential, GrantType::Password).into_row(1)
    }

    #[test]
    fn disabled_by_rfc9700_compliance() {
        let scopes = SettingsScopes::from_settings(&Settings::default());
        let params = Params::parse(b"username=u&password=p");
        let e = decide(true, &app(), &scopes, &params).err().unwrap();
        assert_eq!(e.code, ErrorCode::UnsupportedGrantType);
    }

    #[test]
    fn username_and_password_are_required() {
        let scopes = SettingsScopes::from_settings(&Settings::default());
        for body in ["password=p", "username=u", ""] {
            let params = Params::parse(body.as_bytes());
            let e = decide(false, &app(), &scopes, &params).err().unwrap();
            assert_eq!(e.code, ErrorCode::InvalidRequest, "{body:?}");
        }
    }

    #[test]
    fn credentials_and_scope_are_handed_on() {
        let scopes = SettingsScopes::from_settings(&Settings::default());
        let params = Params::parse(b"username=u&password=p");
        let c = decide(false, &app(), &scopes, &params).ok().unwrap();
        assert_eq!((c.username, c.password), ("u", "p"));
        assert_eq!(c.scope, scopes.default_scopes(Some("c")));
        let params = Params::parse(b"username=u&password=p&scope=no-such-scope");
        let e = decide(false, &app(), &scopes, &params).err().unwrap();
        assert_eq!(e.code, ErrorCode::InvalidScope);
    }
}
