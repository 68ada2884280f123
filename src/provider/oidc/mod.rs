//! The OpenID Connect parts of the provider (on when `OIDC_ENABLED`): the RSA signing
//! [`keys`] (`OIDC_RSA_PRIVATE_KEY`, `OIDC_RSA_PRIVATE_KEYS_INACTIVE`, which also sign RFC
//! 9068 JWT access tokens), [`id_token`]s and the claims that go into them, discovery
//! metadata and the JWKS, userinfo, and RP-initiated logout.

pub mod discovery;
pub mod id_token;
pub mod keys;
pub mod logout;
pub mod userinfo;

use std::sync::Arc;

use http::request::Parts;

use crate::settings::Settings;

/// The issuer identifier for `parts`: `OIDC_ISS_ENDPOINT`, else the provider's configured
/// issuer URL, else — as DOT does — this server's URL and mount path as the request sees
/// them (scheme from `X-Forwarded-Proto`/`Forwarded`, host from `Host`). Configure one
/// of the first two in production: a Host-derived issuer is whatever the client sent.
pub(crate) fn issuer(settings: &Settings, configured: Option<&url::Url>, parts: &Parts) -> String {
    super::configured_issuer(settings, configured)
        .unwrap_or_else(|| request_url(settings, configured, parts))
}

/// Where the provider is mounted, for a route served outside its router (the RFC 8414
/// document at the host's root).
#[derive(Clone, Debug)]
pub(crate) struct MountPath(pub(crate) Arc<str>);

/// This server's URL and mount path as the request sees them (no trailing slash).
pub(crate) fn request_url(
    settings: &Settings,
    configured: Option<&url::Url>,
    parts: &Parts,
) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let scheme = if super::session::is_https(&parts.headers, &parts.uri, settings, configured) {
        "https"
    } else {
        "http"
    };
    let prefix = match parts.extensions.get::<MountPath>() {
        Some(MountPath(mount)) => mount,
        None => parts
            .extensions
            .get::<axum::extract::NestedPath>()
            .map(|p| p.as_str().trim_end_matches('/'))
            .filter(|p| !p.contains(['{', '}', '*']))
            .unwrap_or(""),
    };
    format!("{scheme}://{host}{prefix}")
}

/// What OpenID Connect needs at run time (present when `OIDC_ENABLED`).
pub(crate) struct Oidc {
    /// RS256 keys (`OIDC_RSA_PRIVATE_KEY` + inactive), if configured.
    pub(crate) keys: Option<Arc<keys::SigningKeys>>,
    /// The JWKS document, serialized once.
    pub(crate) jwks_json: Arc<str>,
}

impl Oidc {
    pub(crate) fn new(keys: Option<Arc<keys::SigningKeys>>) -> Oidc {
        let jwks = match &keys {
            Some(k) => k.jwks(),
            None => serde_json::json!({"keys": []}),
        };
        Oidc {
            keys,
            jwks_json: jwks.to_string().into(),
        }
    }
}
