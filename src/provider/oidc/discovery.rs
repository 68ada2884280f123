//! Metadata documents: OpenID Connect Discovery 1.0 (`.well-known/openid-configuration`),
//! the JWKS (`.well-known/jwks.json`) and RFC 8414 authorization-server metadata
//! (`.well-known/oauth-authorization-server`).
//!
//! Endpoint URLs are this server's public URL (the provider's configured issuer URL, else
//! the request's scheme, host and mount path) plus the endpoint path; `issuer` is
//! `OIDC_ISS_ENDPOINT` when set. The OIDC documents are 404 while `OIDC_ENABLED` is off;
//! the RFC 8414 document describes the OAuth server and is always served. Where RFC 8414
//! §3 would put the document for an issuer with a path (`/.well-known/oauth-authorization-server/o`,
//! at the host's root) is the host application's routing; the provider serves it under
//! its own mount, as DOT does for its OIDC documents.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Map, Value};

use crate::provider::authorize::request::response_types_enabled;
use crate::provider::error::json_response;
use crate::provider::grants;
use crate::provider::users::UserAuthenticator;
use crate::provider::Provider;
use crate::settings::Settings;
use crate::store::Store;

/// This server's public base URL (no trailing slash): the configured issuer URL, else as
/// the request sees it.
pub(crate) fn base_url(
    settings: &Settings,
    configured: Option<&url::Url>,
    parts: &http::request::Parts,
) -> String {
    match configured {
        Some(url) => url.as_str().trim_end_matches('/').to_owned(),
        // The request-derived URL: OIDC_ISS_ENDPOINT names the issuer, not the endpoints.
        None => super::request_url(settings, None, parts),
    }
}

/// The OIDC claims the built-in [`StandardClaims`](super::id_token::StandardClaims) and
/// the ID token can carry.
const CLAIMS_SUPPORTED: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "at_hash",
    "c_hash",
    "jti",
    "preferred_username",
    "email",
];

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "OpenID Connect is not enabled\n").into_response()
}

/// A public metadata document: readable by browser-based clients of any origin (DOT sends
/// the same `Access-Control-Allow-Origin: *`).
fn public(mut res: Response) -> Response {
    res.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    res
}

fn cacheable(mut res: Response, max_age: u64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("public, max-age={max_age}")) {
        res.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    res
}

/// `GET .well-known/openid-configuration`.
pub(crate) async fn openid_configuration<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: http::request::Parts,
) -> Response {
    let inner = &p.inner;
    let Some(oidc) = &inner.oidc else {
        return not_found();
    };
    let s = &*inner.settings;
    let base = base_url(s, inner.issuer.as_ref(), &parts);
    let issuer = super::issuer(s, inner.issuer.as_ref(), &parts);
    let userinfo = if s.oidc_userinfo_endpoint.is_empty() {
        format!("{base}/userinfo/")
    } else {
        s.oidc_userinfo_endpoint.clone()
    };
    let mut algs = vec!["HS256"];
    if oidc.keys.is_some() {
        algs.insert(0, "RS256");
    }
    let mut m: Map<String, Value> = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize/"),
        "token_endpoint": format!("{base}/token/"),
        "userinfo_endpoint": userinfo,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "revocation_endpoint": format!("{base}/revoke_token/"),
        "introspection_endpoint": format!("{base}/introspect/"),
        "scopes_supported": inner.scopes.all_scopes().keys().collect::<Vec<_>>(),
        "response_types_supported": response_types_enabled(s),
        "response_modes_supported": ["query", "fragment"],
        "grant_types_supported": grants::grant_types_enabled(s),
        "subject_types_supported": s.oidc_subject_types_supported,
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": s.oidc_token_endpoint_auth_methods_supported,
        "code_challenge_methods_supported": code_challenge_methods(s),
        "claims_supported": CLAIMS_SUPPORTED,
        "prompt_values_supported": ["none", "login", "consent"],
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    if s.oidc_rp_initiated_logout_enabled {
        m.insert(
            "end_session_endpoint".into(),
            format!("{base}/logout/").into(),
        );
    }
    device_endpoint(s, &base, &mut m);
    registration_endpoint(s, &base, &mut m);
    if s.compliant_bcp_rfc9700_authz_response_iss {
        m.insert(
            "authorization_response_iss_parameter_supported".into(),
            true.into(),
        );
    }
    public(json_response(StatusCode::OK, Value::Object(m).to_string()))
}

/// RFC 8628 §4: `device_authorization_endpoint`, while the device-code grant is
/// advertised.
fn device_endpoint(s: &Settings, base: &str, m: &mut Map<String, Value>) {
    let device = crate::model::GrantType::DeviceCode.as_str();
    if grants::grant_types_enabled(s).contains(&device) {
        m.insert(
            "device_authorization_endpoint".into(),
            format!("{base}/device-authorization/").into(),
        );
    }
}

fn code_challenge_methods(s: &Settings) -> Vec<&'static str> {
    if s.compliant_bcp_rfc9700_pkce_method {
        vec!["S256"]
    } else {
        vec!["plain", "S256"]
    }
}

/// `GET .well-known/jwks.json`: the public keys, active first, cacheable for
/// `OIDC_JWKS_MAX_AGE_SECONDS`. The document is serialized once, at start-up.
pub(crate) async fn jwks<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
) -> Response {
    let Some(oidc) = &p.inner.oidc else {
        return not_found();
    };
    let res = json_response(StatusCode::OK, oidc.jwks_json.to_string());
    public(cacheable(
        res,
        p.inner.settings.oidc_jwks_max_age_seconds.as_secs(),
    ))
}

/// RFC 8414 / OIDC Discovery `registration_endpoint`, while DCR_ENABLED.
fn registration_endpoint(s: &Settings, base: &str, m: &mut Map<String, Value>) {
    if s.dcr_enabled {
        m.insert(
            "registration_endpoint".into(),
            format!("{base}/register/").into(),
        );
    }
}

/// `GET .well-known/oauth-authorization-server` (RFC 8414 §2).
pub(crate) async fn oauth_metadata<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: http::request::Parts,
) -> Response {
    let inner = &p.inner;
    let s = &*inner.settings;
    let base = base_url(s, inner.issuer.as_ref(), &parts);
    let issuer = super::issuer(s, inner.issuer.as_ref(), &parts);
    let mut m: Map<String, Value> = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize/"),
        "token_endpoint": format!("{base}/token/"),
        "revocation_endpoint": format!("{base}/revoke_token/"),
        "introspection_endpoint": format!("{base}/introspect/"),
        "scopes_supported": inner.scopes.all_scopes().keys().collect::<Vec<_>>(),
        "response_types_supported": response_types_enabled(s),
        "grant_types_supported": grants::grant_types_enabled(s),
        "token_endpoint_auth_methods_supported": s.oauth2_token_endpoint_auth_methods_supported,
        "revocation_endpoint_auth_methods_supported": s.oauth2_token_endpoint_auth_methods_supported,
        "introspection_endpoint_auth_methods_supported": s.oauth2_token_endpoint_auth_methods_supported,
        "code_challenge_methods_supported": code_challenge_methods(s),
        // draft-ietf-oauth-client-id-metadata-document §5 (DOT lists it too).
        "client_id_metadata_document_supported": s.cimd_enabled,
    })
    .as_object()
    .cloned()
    .unwrap_or_default();
    device_endpoint(s, &base, &mut m);
    registration_endpoint(s, &base, &mut m);
    if inner.oidc.as_ref().is_some_and(|o| o.keys.is_some()) {
        m.insert(
            "jwks_uri".into(),
            format!("{base}/.well-known/jwks.json").into(),
        );
    }
    if s.compliant_bcp_rfc9700_authz_response_iss {
        m.insert(
            "authorization_response_iss_parameter_supported".into(),
            true.into(),
        );
    }
    public(json_response(StatusCode::OK, Value::Object(m).to_string()))
}
