//! Entry points for the cargo-fuzz targets in `fuzz/` (feature `fuzzing`; not part of the
//! public API, hidden from the docs, no stability promise).
//!
//! Each function is a thin wrapper that feeds bytes or text to one crate-private parser —
//! the same code a request goes through — and hands back what it decided, in plain types,
//! so that a target can check properties of the answer as well as the absence of panics.
//! None of them touches the network, the file system or the process environment.
//!
//! | target | wrapper | code under test |
//! |---|---|---|
//! | `authorization_header` | [`authorization`], [`bearer_token`], [`form_token`] | `resource::authorization`, `header_token`, `form_token` |
//! | `token_form` | [`token_form`] | `provider::params::Params`, `grants::requested_scopes`, `OAuthError::to_json` |
//! | `basic_credentials` | [`client_credentials`] | `provider::client_auth::credentials` |
//! | `redirect_uri` | [`redirect_uri_matches`], [`resolve_redirect_uri`] | `provider::redirect_uri` |
//! | `introspection` | [`introspection_answer`] | `resource::introspection::parse_body` |
//! | `settings` | [`load_settings`] | `Settings::load` without the file and the environment |
//! | `templates` | [`render_page`] | `provider::templates::Templates` (the built-in pages) |
//!
//! Scope parsing ([`Scopes::parse`](crate::scope::Scopes::parse)) and JWT validation
//! (`resource::JwtValidator`) are public already; their targets use them directly.

#[cfg(feature = "resource")]
use http::{header, HeaderMap, HeaderValue};

use crate::settings::{Settings, SettingsError};

/// A header map with one `Authorization` header per entry of `values`, in order. Values
/// that are not valid header values (control characters), which hyper would not have let
/// through, are left out.
#[cfg(feature = "resource")]
fn authorization_headers(values: &[&[u8]]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            headers.append(header::AUTHORIZATION, value);
        }
    }
    headers
}

/// Whether `value` would reach the parsers: what [`HeaderValue::from_bytes`] accepts.
#[cfg(feature = "resource")]
pub fn is_header_value(value: &[u8]) -> bool {
    HeaderValue::from_bytes(value).is_ok()
}

/// The one `Authorization` header of a request with these header values
/// (`resource::authorization`): `Ok(None)` without one, `Err` for two or a non-ASCII one.
#[cfg(feature = "resource")]
pub fn authorization(values: &[&[u8]]) -> Result<Option<String>, String> {
    let headers = authorization_headers(values);
    crate::resource::authorization(&headers)
        .map(|v| v.map(str::to_owned))
        .map_err(str::to_owned)
}

/// The RFC 6750 §2.1 bearer token of a request with these `Authorization` header values
/// (`resource::header_token`, shared with the provider's userinfo endpoint).
#[cfg(feature = "resource")]
pub fn bearer_token(values: &[&[u8]]) -> Result<Option<String>, String> {
    let headers = authorization_headers(values);
    crate::resource::header_token(&headers)
        .map(|v| v.map(str::to_owned))
        .map_err(|e| e.to_string())
}

/// The `access_token` of a form-encoded query or body (RFC 6750 §2.2, §2.3;
/// `resource::form_token`).
#[cfg(feature = "resource")]
pub fn form_token(form: &[u8]) -> Result<Option<String>, String> {
    crate::resource::form_token(form, "access_token parameter")
        .map(|v| v.map(std::borrow::Cow::into_owned))
        .map_err(|e| e.to_string())
}

/// The most parameters a request may have (`params::MAX_PARAMS`): past that, every
/// parameter is refused.
#[cfg(feature = "provider")]
pub const MAX_TOKEN_PARAMS: usize = crate::provider::params::MAX_PARAMS;

/// The parameters the token endpoint reads, in the order it reads them.
#[cfg(feature = "provider")]
pub const TOKEN_PARAMS: &[&str] = &[
    "grant_type",
    "client_id",
    "client_secret",
    "code",
    "redirect_uri",
    "code_verifier",
    "refresh_token",
    "username",
    "password",
    "scope",
];

/// What the token endpoint makes of a form body before it touches the store.
#[cfg(feature = "provider")]
#[derive(Debug)]
pub struct TokenForm {
    /// The parameters kept (empty values dropped, at most [`MAX_TOKEN_PARAMS`]).
    pub pairs: Vec<(String, String)>,
    /// `Params::get` of each name of [`TOKEN_PARAMS`].
    pub fields: Vec<(
        &'static str,
        Result<Option<String>, crate::provider::OAuthError>,
    )>,
    /// The grant type, when `grant_type` names one the crate knows.
    pub grant: Option<&'static str>,
    /// The requested scopes as a grant checks them (`grants::requested_scopes` against
    /// the default `SCOPES`).
    pub scopes: Result<crate::scope::Scopes, crate::provider::OAuthError>,
}

/// Parses a token-endpoint body as the endpoint does (`Params::parse`, then each
/// parameter it reads, the grant type and the `scope`).
#[cfg(feature = "provider")]
pub fn token_form(body: &[u8]) -> TokenForm {
    use crate::provider::grants::{requested_scopes, GrantKind};
    use crate::provider::params::Params;

    let params = Params::parse(body);
    let fields = TOKEN_PARAMS
        .iter()
        .map(|&name| (name, params.get(name).map(|v| v.map(str::to_owned))))
        .collect();
    let grant = params
        .get("grant_type")
        .ok()
        .flatten()
        .and_then(GrantKind::parse)
        .map(GrantKind::as_str);
    let scopes = requested_scopes(
        &*default_settings().scopes_backend(),
        &application(""),
        &params,
    );
    TokenForm {
        pairs: params.pairs().to_vec(),
        fields,
        grant,
        scopes,
    }
}

/// The client credentials of a request with these `Authorization` header values and
/// this form body (`client_auth::credentials`: HTTP Basic, RFC 6749 §2.3.1, or the body):
/// `Ok(None)` when none were sent, else the client id and the secret if any.
#[cfg(feature = "provider")]
pub fn client_credentials(
    authorization: &[&[u8]],
    body: &[u8],
) -> Result<Option<(String, Option<String>)>, crate::provider::OAuthError> {
    let headers = authorization_headers(authorization);
    let params = crate::provider::params::Params::parse(body);
    crate::provider::client_auth::credentials(&headers, &params)
        .map(|c| c.map(|c| (c.client_id, c.secret)))
}

/// The settings of the `redirect_uri` wrappers: DOT's defaults with
/// `ALLOW_LOCALHOST_LOOPBACK` and `ALLOW_URI_WILDCARDS` as asked.
#[cfg(feature = "provider")]
fn redirect_settings(allow_localhost: bool, allow_wildcards: bool) -> &'static Settings {
    static SETTINGS: std::sync::OnceLock<[Settings; 4]> = std::sync::OnceLock::new();
    let all = SETTINGS.get_or_init(|| {
        [(false, false), (false, true), (true, false), (true, true)].map(|(l, w)| Settings {
            allow_localhost_loopback: l,
            allow_uri_wildcards: w,
            ..Settings::default()
        })
    });
    &all[usize::from(allow_localhost) * 2 + usize::from(allow_wildcards)]
}

#[cfg(feature = "provider")]
fn default_settings() -> &'static Settings {
    redirect_settings(false, false)
}

/// A public authorization-code application with these (space-separated) redirect URIs.
#[cfg(feature = "provider")]
fn application(redirect_uris: &str) -> crate::model::Application {
    let epoch = crate::model::Timestamp(0);
    crate::model::Application {
        id: 1,
        client_id: "fuzz-client".into(),
        user_id: None,
        redirect_uris: redirect_uris.into(),
        post_logout_redirect_uris: String::new(),
        client_type: crate::model::ClientType::Public,
        authorization_grant_type: crate::model::GrantType::AuthorizationCode,
        client_secret: String::new(),
        hash_client_secret: true,
        name: "Fuzz".into(),
        skip_authorization: false,
        created: epoch,
        updated: epoch,
        algorithm: crate::model::Algorithm::NoAlgorithm,
        allowed_origins: String::new(),
        pkce_required: None,
    }
}

/// Whether `requested` may be used for the registered redirect URI `registered`
/// (`redirect_uri::redirect_uri_matches`), under DOT's default settings with
/// `ALLOW_LOCALHOST_LOOPBACK` and `ALLOW_URI_WILDCARDS` as given.
#[cfg(feature = "provider")]
pub fn redirect_uri_matches(
    registered: &str,
    requested: &str,
    allow_localhost: bool,
    allow_wildcards: bool,
) -> bool {
    let settings = redirect_settings(allow_localhost, allow_wildcards);
    crate::provider::redirect_uri::redirect_uri_matches(settings, registered, requested)
}

/// The redirect URI an authorization request ends up with
/// (`redirect_uri::resolve_redirect_uri`) for an application whose registered URIs are
/// `registered` (space-separated, as stored).
#[cfg(feature = "provider")]
pub fn resolve_redirect_uri(
    registered: &str,
    requested: Option<&str>,
    allow_localhost: bool,
    allow_wildcards: bool,
) -> Result<String, String> {
    let settings = redirect_settings(allow_localhost, allow_wildcards);
    crate::provider::redirect_uri::resolve_redirect_uri(
        settings,
        &application(registered),
        requested,
    )
}

/// The default `ALLOWED_REDIRECT_URI_SCHEMES`, for checking what
/// [`resolve_redirect_uri`] accepts.
#[cfg(feature = "provider")]
pub fn allowed_redirect_uri_schemes() -> &'static [String] {
    &default_settings().allowed_redirect_uri_schemes
}

/// An RFC 7662 introspection answer body as the `IntrospectionValidator` reads it:
/// `Ok(Some(_))` for an active token, `Ok(None)` for an inactive (or expired) one, `Err`
/// for a malformed answer (which the layer turns into a 503).
#[cfg(feature = "introspection")]
pub fn introspection_answer(
    body: &[u8],
) -> Result<Option<std::sync::Arc<crate::resource::TokenInfo>>, String> {
    // An inactive entry is the only one whose `into_result` is an error.
    crate::resource::introspection::parse_body(body).map(|entry| entry.into_result().ok())
}

/// The settings `Settings::load` makes of this TOML document (if any) and these
/// environment variables (only the `OAUTH2_PROVIDER_*` ones count), validation included,
/// without reading a file or the process environment.
pub fn load_settings(
    toml: Option<&str>,
    env: &[(String, String)],
) -> Result<Settings, SettingsError> {
    Settings::load_from(toml.map(|t| (t, None)), Vec::new(), env.to_vec())
}

/// Renders the built-in page `name` (`login.html`, `authorize.html`, `logout.html`,
/// `error.html`) with the context `ctx`, as the provider's handlers do.
#[cfg(feature = "provider")]
pub fn render_page(name: &str, ctx: &serde_json::Value) -> Result<String, String> {
    use crate::provider::templates::Templates;
    static TEMPLATES: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
    let templates = TEMPLATES.get_or_init(|| {
        Templates::load(None).unwrap_or_else(|e| panic!("the built-in templates load: {e}"))
    });
    templates.render(name, ctx).map_err(|e| e.to_string())
}
