//! Fixtures shared by the unit tests of the authorization endpoint's files.

pub(crate) use super::request::{check_request, AuthRequest, Rejection, Target};
use crate::model::ClientType;
pub(crate) use crate::model::{Application, GrantType, Timestamp};
pub(crate) use crate::provider::error::ErrorCode;
pub(crate) use crate::provider::params::Params;
use crate::scope::SettingsScopes;
pub(crate) use crate::settings::Settings;

pub(crate) fn app(grant: GrantType, uris: &str) -> Application {
    let now = Timestamp::now();
    Application {
        id: 1,
        client_id: "cid".into(),
        user_id: None,
        redirect_uris: uris.into(),
        post_logout_redirect_uris: String::new(),
        client_type: ClientType::Public,
        authorization_grant_type: grant,
        client_secret: String::new(),
        hash_client_secret: true,
        name: "App".into(),
        skip_authorization: false,
        created: now,
        updated: now,
        algorithm: crate::model::Algorithm::NoAlgorithm,
        allowed_origins: String::new(),
        pkce_required: None,
    }
}

pub(crate) fn target() -> Target {
    Target {
        redirect_uri: "https://c.example/cb".into(),
        fragment: false,
        state: Some("s t".into()),
        iss: None,
    }
}

pub(crate) fn check(
    settings: &Settings,
    app: Application,
    query: &str,
) -> Result<AuthRequest, Rejection> {
    let scopes = SettingsScopes::from_settings(settings);
    check_request(
        settings,
        &scopes,
        &crate::provider::resources::DefaultResourcePolicy,
        app,
        &Params::parse(query.as_bytes()),
        target(),
        true,
    )
}

pub(crate) fn code_of(r: Result<AuthRequest, Rejection>) -> Option<ErrorCode> {
    match r {
        Ok(_) => None,
        Err(Rejection::Redirect { error, .. }) => Some(error.code),
        Err(other) => panic!("unexpected {other:?}"),
    }
}

pub(crate) const S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
