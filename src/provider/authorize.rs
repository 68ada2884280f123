//! The authorization endpoint (RFC 6749 §3.1, §4.1.1–4.1.2, §4.2.1–4.2.2; OpenID Connect
//! Core 1.0 §3.1.2, §3.2.2, §3.3.2) and the built-in login page.
//!
//! # Routes
//! * `GET authorize/` checks the request, then sends a visitor who is not logged in to the
//!   login page, approves at once when no consent is needed, and otherwise shows the
//!   consent page (`authorize.html`).
//! * `POST authorize/` is the consent form: CSRF-checked, the whole request checked again
//!   from the posted fields (nothing in them is trusted beyond what `GET` would accept),
//!   then a button named `allow` approves and anything else denies (`access_denied`).
//! * `GET login/` shows the login form (`login.html`); `POST login/` checks the CSRF token
//!   and the credentials with [`UserAuthenticator::authenticate`], starts the session
//!   (see [`SESSION_COOKIE`]) and returns to `next`.
//!
//! # Response types
//! `response_type` is a set of space-separated values, compared without regard to order
//! (`id_token code` is `code id_token`):
//!
//! | response type | application grant type | answer, by default in |
//! |---|---|---|
//! | `code` | authorization-code, openid-hybrid | the query: `code` |
//! | `token` | implicit | the fragment: `access_token`, `token_type`, `expires_in`, `scope` |
//! | `id_token` | implicit | the fragment: `id_token` |
//! | `id_token token` | implicit | the fragment: the access token's fields and `id_token` |
//! | `code id_token` | openid-hybrid | the fragment: `code`, `id_token` |
//! | `code token` | openid-hybrid | the fragment: `code` and the access token's fields |
//! | `code id_token token` | openid-hybrid | the fragment: `code`, the access token's fields, `id_token` |
//!
//! The last five exist only with `OIDC_ENABLED` (otherwise they are
//! `unsupported_response_type`, answered in the query like any unknown type) and must be
//! listed in `OIDC_RESPONSE_TYPES_SUPPORTED`; `code` and `token` must be listed in
//! `OAUTH2_RESPONSE_TYPES_SUPPORTED`. `state` (and `iss`, below) are added to every answer.
//! `response_mode` is not implemented (as in DOT): answers always use the default mode
//! above, so tokens never go in a query.
//!
//! An ID token from this endpoint (OIDC Core §3.2.2.10, §3.3.2.11) carries the `nonce`
//! of the request, `c_hash` when a code comes with it, `at_hash` when an access token
//! does, `auth_time` from the login session, and the claims of
//! [`id_token`](super::oidc::id_token) for the granted scopes. When the code of a hybrid
//! answer is exchanged, the token endpoint issues another ID token, with the same `sub`
//! and `nonce`. The access token of a hybrid answer is linked to its code, so a replayed
//! code revokes it as well as what the code was exchanged for.
//!
//! # Checks, in order
//! 1. `client_id` and `redirect_uri` (missing, repeated, unknown client, a redirect URI
//!    that is not registered or whose scheme is not in `ALLOWED_REDIRECT_URI_SCHEMES`):
//!    the error page, status 400, and **never a redirect** (RFC 6749 §4.1.2.1).
//!    `redirect_uri` may be omitted when exactly one is registered; the code then
//!    remembers that it was omitted, so the token request need not send it (§4.1.3).
//! 2. Everything else is answered by redirecting to the redirect URI with `error`,
//!    `error_description` and `state` — in the query for `code`, in the fragment for the
//!    other response types: a repeated parameter or a missing `response_type`
//!    (`invalid_request`); an unknown response type, one not enabled (see above), or
//!    `token`, `id_token` and `id_token token` with `COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT`
//!    (`unsupported_response_type`); a response type the application's grant type does
//!    not allow (table above — `unauthorized_client`); an unknown or unavailable scope
//!    (`invalid_scope`); for response types with `id_token`: no `openid` scope
//!    (`invalid_scope`), an application without an ID-token algorithm
//!    (`unauthorized_client`), or no `nonce` (`invalid_request`, OIDC Core §3.2.2.1,
//!    §3.3.2.11; `code token` needs none); for response types with `code`, PKCE (RFC
//!    7636): a malformed `code_challenge`, an unknown `code_challenge_method` (default
//!    `plain`), `plain` with `COMPLIANT_BCP_RFC9700_PKCE_METHOD`, or no challenge when the
//!    application's `pkce_required` (else `PKCE_REQUIRED`) asks for one
//!    (`invalid_request`); a malformed `claims`, `prompt` or `max_age` (`invalid_request`).
//! 3. Who is asking: the host's [`UserAuthenticator::current_user`], else the provider's
//!    session cookie. Nobody: a redirect to `login/?next=…`.
//! 4. Consent: skipped when the application has `skip_authorization`, or when
//!    `REQUEST_APPROVAL_PROMPT` (or DOT's `approval_prompt` request parameter) is `auto`
//!    and the user holds a live access token for this application covering every
//!    requested scope.
//!
//! OpenID Connect's `prompt` and `max_age` (OIDC Core §3.1.2.1) are honoured:
//! * `prompt=none` never shows a page: without a session (or with one too old for
//!   `max_age`) it answers `login_required`; with a session and a consent that can be
//!   skipped (step 4) it answers at once with the normal successful response; otherwise
//!   `consent_required`.
//! * `prompt=login` asks for the password again; so does `max_age` when the session's
//!   login (`auth_time`) is more than `max_age` seconds old or of unknown age, and always
//!   for `max_age=0`. The login page then returns to the request without `prompt=login`
//!   and `max_age`, which the new login satisfies.
//! * `prompt=consent` shows the consent page even when it could be skipped.
//!
//! Approval issues, for a code, a 43-character random code (about 256 bits) stored only
//! as its SHA-256 checksum (with the `nonce`, `claims` and `auth_time` for the token
//! endpoint's ID token), valid `AUTHORIZATION_CODE_EXPIRE_SECONDS`; for a token, an
//! access token without refresh token (RFC 6749 §4.2.2). With
//! `COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS` every answer also carries `iss` (RFC 9207):
//! `OIDC_ISS_ENDPOINT`, else the provider's issuer URL
//! ([`ProviderBuilder::issuer`](super::ProviderBuilder::issuer)), else the server's URL
//! and mount path.
//!
//! Links between the pages are relative (`../login/`, `../authorize/`), so the endpoints
//! work under any prefix, including one a reverse proxy strips.
//!
//! Pages carry `Cache-Control: no-store`, `X-Frame-Options: DENY` and
//! `Content-Security-Policy: frame-ancestors 'none'` (RFC 6749 §10.13, clickjacking) and
//! `Referrer-Policy: no-referrer`.
//!
//! # Differences from DOT
//! * A redirect URI must equal a registered one exactly (RFC 9700 §4.1.3); DOT also
//!   accepts extra query parameters. The RFC 8252 §7.3 loopback rule (any port for
//!   `http://127.0.0.1` and `http://[::1]`, and `http://localhost` with
//!   `ALLOW_LOCALHOST_LOOPBACK`) and `ALLOW_URI_WILDCARDS` host wildcards (`*.example.com`)
//!   are kept; the rest of such a URI must still match exactly.
//! * Answers to a `POST` redirect with 303 See Other (RFC 9700 §4.12); DOT uses 302.
//! * The login page is built in (DOT relies on Django's); `next` may only lead to the
//!   provider's own pages (no open redirect).
//! * Every parameter may appear at most once (RFC 6749 §3.1), unknown ones included.
//! * Codes are stored as checksums only; DOT stores them in plaintext.
//! * `prompt=none` with a session and a consent answers silently (OIDC Core §3.1.2.1);
//!   DOT's validator does not implement silent authentication and fails there.
//!   `max_age` is honoured; DOT does not act on it.
//! * Response types are compared as sets (DOT compares the exact strings); openid-hybrid
//!   applications may also use plain `code` (DOT allows `code` only for
//!   authorization-code applications). Errors of the fragment response types go in the
//!   fragment; DOT always puts errors in the query.
//! * An ID-token response type needs the `openid` scope and an application with an
//!   algorithm (`invalid_scope`, `unauthorized_client`); DOT fails later, or issues no
//!   ID token.
//! * An ID token issued without an access token (`id_token`, `code id_token`) is not
//!   stored: the store writes ID tokens only together with the access token they belong
//!   to. DOT stores it. It is still a valid, signed ID token; it is just unknown to
//!   cleanup and logout.
//!
//! [`UserAuthenticator::authenticate`]: super::UserAuthenticator::authenticate
//! [`UserAuthenticator::current_user`]: super::UserAuthenticator::current_user

use axum::extract::{NestedPath, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::error::{ErrorCode, OAuthError};
use super::grants::{self, Issue};
use super::oidc::id_token::{IdTokenRequest, IdTokens};
use super::params::Params;
use super::pkce;
use super::session::Visitor;
use super::users::{AuthenticatedUser, UserAuthenticator};
use super::Provider;
use crate::crypto::token_checksum;
use crate::generators::{generate_token, UNICODE_ASCII_CHARACTER_SET};
use crate::model::{
    AccessToken, Algorithm, Application, CodeChallengeMethod, GrantType, NewGrant, PkceChallenge,
    Timestamp,
};
use crate::scope::{Scopes, ScopesBackend};
use crate::settings::{ApprovalPrompt, Settings};
use crate::store::Store;

pub use super::session::{CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, SESSION_LIFETIME};

/// Length of an authorization code: 43 characters of `[A-Za-z0-9]`, about 256 bits.
pub const CODE_LENGTH: usize = 43;

/// Form fields of the consent page that are not part of the authorization request.
const CONTROL_FIELDS: &[&str] = &[CSRF_FIELD, "allow", "deny"];

/// Longest `next` followed after a login.
const MAX_NEXT_LEN: usize = 8192;

// ----- the request -----

/// The response types handled here (RFC 6749 §3.1.1; OAuth 2.0 Multiple Response Type
/// Encoding Practices; OIDC Core §3): a set of space-separated values, in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ResponseType {
    /// Authorization code (§4.1).
    Code,
    /// Implicit (§4.2): the access token in the fragment.
    Token,
    /// OIDC implicit: an ID token alone (OIDC Core §3.2).
    IdToken,
    /// OIDC implicit: an ID token and an access token (OIDC Core §3.2).
    IdTokenToken,
    /// OIDC hybrid: a code and an ID token (OIDC Core §3.3).
    CodeIdToken,
    /// OIDC hybrid: a code and an access token (OIDC Core §3.3).
    CodeToken,
    /// OIDC hybrid: a code, an ID token and an access token (OIDC Core §3.3).
    CodeIdTokenToken,
}

impl ResponseType {
    /// The canonical spelling.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ResponseType::Code => "code",
            ResponseType::Token => "token",
            ResponseType::IdToken => "id_token",
            ResponseType::IdTokenToken => "id_token token",
            ResponseType::CodeIdToken => "code id_token",
            ResponseType::CodeToken => "code token",
            ResponseType::CodeIdTokenToken => "code id_token token",
        }
    }

    /// Reads a `response_type` value as an unordered set of space-separated values
    /// (`"id_token code"` is `code id_token`). `None` for anything else: an unknown or
    /// repeated value, or no value at all.
    pub(crate) fn parse(raw: &str) -> Option<ResponseType> {
        let (mut code, mut token, mut id_token) = (false, false, false);
        for v in raw.split(' ').filter(|v| !v.is_empty()) {
            let seen = match v {
                "code" => &mut code,
                "token" => &mut token,
                "id_token" => &mut id_token,
                _ => return None,
            };
            if std::mem::replace(seen, true) {
                return None;
            }
        }
        Some(match (code, id_token, token) {
            (true, false, false) => ResponseType::Code,
            (false, false, true) => ResponseType::Token,
            (false, true, false) => ResponseType::IdToken,
            (false, true, true) => ResponseType::IdTokenToken,
            (true, true, false) => ResponseType::CodeIdToken,
            (true, false, true) => ResponseType::CodeToken,
            (true, true, true) => ResponseType::CodeIdTokenToken,
            (false, false, false) => return None,
        })
    }

    /// Whether the answer carries an authorization code.
    pub(crate) fn code(self) -> bool {
        matches!(
            self,
            ResponseType::Code
                | ResponseType::CodeIdToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the answer carries an access token.
    pub(crate) fn token(self) -> bool {
        matches!(
            self,
            ResponseType::Token
                | ResponseType::IdTokenToken
                | ResponseType::CodeToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether the answer carries an ID token.
    pub(crate) fn id_token(self) -> bool {
        matches!(
            self,
            ResponseType::IdToken
                | ResponseType::IdTokenToken
                | ResponseType::CodeIdToken
                | ResponseType::CodeIdTokenToken
        )
    }

    /// Whether this response type exists only with OpenID Connect (`OIDC_ENABLED`).
    pub(crate) fn is_oidc(self) -> bool {
        !matches!(self, ResponseType::Code | ResponseType::Token)
    }

    /// Whether an application of grant type `grant` may use this response type (DOT's
    /// `validate_response_type`, except that openid-hybrid applications may also use
    /// `code`, as before OIDC was added here).
    pub(crate) fn allowed_for(self, grant: GrantType) -> bool {
        match self {
            ResponseType::Code => {
                matches!(
                    grant,
                    GrantType::AuthorizationCode | GrantType::OpenidHybrid
                )
            }
            ResponseType::Token | ResponseType::IdToken | ResponseType::IdTokenToken => {
                grant == GrantType::Implicit
            }
            ResponseType::CodeIdToken
            | ResponseType::CodeToken
            | ResponseType::CodeIdTokenToken => grant == GrantType::OpenidHybrid,
        }
    }

    /// Whether this is the implicit grant that `COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT`
    /// switches off (`token`, `id_token`, `id_token token`, as DOT gates them).
    fn is_implicit(self) -> bool {
        matches!(
            self,
            ResponseType::Token | ResponseType::IdToken | ResponseType::IdTokenToken
        )
    }

    /// Whether the answers go in the fragment: the default response mode of every type but
    /// `code` (OAuth 2.0 Multiple Response Type Encoding Practices §2.1, §5).
    fn fragment(self) -> bool {
        self != ResponseType::Code
    }
}

/// Where the answers of a request with a trusted redirect URI go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// The redirect URI (as sent, or the only registered one).
    pub(crate) redirect_uri: String,
    /// Parameters go in the fragment (`token`) rather than the query.
    pub(crate) fragment: bool,
    /// The client's `state`, echoed.
    pub(crate) state: Option<String>,
    /// RFC 9207 `iss`, when enabled.
    pub(crate) iss: Option<String>,
}

/// Why a request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// Shown to the user on the error page, never redirected.
    Page {
        status: StatusCode,
        error: Option<ErrorCode>,
        description: String,
    },
    /// Sent to the client's redirect URI.
    Redirect { target: Target, error: OAuthError },
}

impl Rejection {
    fn page(error: ErrorCode, description: impl Into<String>) -> Rejection {
        Rejection::Page {
            status: StatusCode::BAD_REQUEST,
            error: Some(error),
            description: description.into(),
        }
    }

    fn server(cause: impl std::fmt::Display) -> Rejection {
        let e = OAuthError::server(cause);
        Rejection::Page {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: Some(e.code),
            description: e.description,
        }
    }
}

/// OIDC `prompt` values that change the flow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Prompt {
    none: bool,
    login: bool,
    consent: bool,
}

impl Prompt {
    fn parse(raw: Option<&str>) -> Result<Prompt, OAuthError> {
        let mut p = Prompt::default();
        for v in raw.unwrap_or_default().split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => p.login = true,
                "consent" => p.consent = true,
                // select_account, create, …: nothing to do (OIDC Core §3.1.2.1 allows
                // ignoring values the server does not support).
                _ => {}
            }
        }
        if p.none && (p.login || p.consent) {
            return Err(OAuthError::invalid_request(
                "prompt=none cannot be combined with other prompt values.",
            ));
        }
        Ok(p)
    }
}

/// A checked authorization request.
#[derive(Debug)]
pub(crate) struct AuthRequest {
    pub(crate) app: Application,
    pub(crate) response_type: ResponseType,
    pub(crate) target: Target,
    /// Whether the client sent `redirect_uri` (the code then remembers it, §4.1.3).
    pub(crate) redirect_uri_sent: bool,
    pub(crate) scopes: Scopes,
    pub(crate) challenge: Option<PkceChallenge>,
    pub(crate) nonce: String,
    pub(crate) claims: String,
    pub(crate) prompt: Prompt,
    pub(crate) approval: ApprovalPrompt,
    /// OIDC `max_age` (OIDC Core §3.1.2.1): the oldest login, in seconds, that may be
    /// used without logging in again.
    pub(crate) max_age: Option<u64>,
}

/// The names sent more than once, the consent form's own fields excepted (linear: a
/// request with thousands of parameters costs no more than reading them).
fn repeated(params: &Params) -> Vec<&str> {
    let mut seen = std::collections::HashSet::with_capacity(params.pairs().len());
    let mut twice: Vec<&str> = Vec::new();
    for (k, _) in params.pairs() {
        if CONTROL_FIELDS.contains(&k.as_str()) {
            continue;
        }
        if !seen.insert(k.as_str()) && !twice.contains(&k.as_str()) {
            twice.push(k);
        }
    }
    twice
}

fn scheme_allowed(settings: &Settings, uri: &str) -> bool {
    uri.split_once(':').is_some_and(|(scheme, _)| {
        settings
            .allowed_redirect_uri_schemes
            .iter()
            .any(|s| s.eq_ignore_ascii_case(scheme))
    })
}

/// Splits `http://<loopback host>[:port]<rest>` into host and rest.
fn loopback_parts(uri: &str, allow_localhost: bool) -> Option<(&str, &str)> {
    let after = uri.strip_prefix("http://")?;
    let end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let (authority, rest) = after.split_at(end);
    let (host, port) = match authority.strip_prefix("[::1]") {
        Some(port) => ("[::1]", port),
        None => match authority.find(':') {
            Some(i) => authority.split_at(i),
            None => (authority, ""),
        },
    };
    let host_ok = host == "127.0.0.1"
        || host == "[::1]"
        || (allow_localhost && host.eq_ignore_ascii_case("localhost"));
    if !host_ok {
        return None;
    }
    if !port.is_empty() {
        let digits = port.strip_prefix(':')?;
        let ok = (1..=5).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && digits.parse::<u32>().is_ok_and(|p| p <= 65535);
        if !ok {
            return None;
        }
    }
    Some((host, rest))
}

/// Splits what follows `scheme://` into the authority and the rest.
fn split_authority(s: &str) -> (&str, &str) {
    s.split_at(s.find(['/', '?', '#']).unwrap_or(s.len()))
}

/// `registered` = `scheme://*.suffix<rest>`: `requested` = `scheme://<labels>.suffix<rest>`.
fn wildcard_matches(registered: &str, requested: &str) -> bool {
    let Some((scheme, reg_after)) = registered.split_once("://*.") else {
        return false;
    };
    let Some(req_after) = requested
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
    else {
        return false;
    };
    let (reg_auth, reg_rest) = split_authority(reg_after);
    let (req_auth, req_rest) = split_authority(req_after);
    if reg_rest != req_rest || reg_auth.is_empty() {
        return false;
    }
    let Some(labels) = req_auth
        .strip_suffix(reg_auth)
        .and_then(|l| l.strip_suffix('.'))
    else {
        return false;
    };
    !labels.is_empty()
        && !labels.starts_with('.')
        && !labels.contains("..")
        && labels
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Whether `requested` may be used for the registered URI `registered`: equal strings, the
/// RFC 8252 §7.3 loopback rule, or an `ALLOW_URI_WILDCARDS` host wildcard.
pub(crate) fn redirect_uri_matches(settings: &Settings, registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let localhost = settings.allow_localhost_loopback;
    if let (Some((rh, rr)), Some((qh, qr))) = (
        loopback_parts(registered, localhost),
        loopback_parts(requested, localhost),
    ) {
        return rh.eq_ignore_ascii_case(qh) && rr == qr;
    }
    settings.allow_uri_wildcards && wildcard_matches(registered, requested)
}

/// The redirect URI to use (stage 1: a failure is shown, never redirected to).
pub(crate) fn resolve_redirect_uri(
    settings: &Settings,
    app: &Application,
    requested: Option<&str>,
) -> Result<String, String> {
    let registered: Vec<&str> = app.redirect_uri_list().collect();
    let uri = match requested {
        None => match registered.as_slice() {
            [] => return Err("This application has no registered redirect URI.".into()),
            [only] if !only.contains('*') => (*only).to_owned(),
            [_] => return Err("The redirect_uri parameter is missing.".into()),
            _ => {
                return Err(
                    "The redirect_uri parameter is required: this application has several.".into(),
                )
            }
        },
        Some(r) => {
            crate::validators::validate_redirect_uri(
                r,
                &settings.allowed_redirect_uri_schemes,
                false,
            )
            .map_err(|e| format!("Invalid redirect_uri: {e}."))?;
            if !registered
                .iter()
                .any(|reg| redirect_uri_matches(settings, reg, r))
            {
                return Err(
                    "Mismatching redirect URI: it is not registered for this application.".into(),
                );
            }
            r.to_owned()
        }
    };
    if !scheme_allowed(settings, &uri) || uri.contains('#') {
        return Err(
            "The redirect URI's scheme is not allowed (ALLOWED_REDIRECT_URI_SCHEMES).".into(),
        );
    }
    Ok(uri)
}

fn pkce_challenge(
    settings: &Settings,
    app: &Application,
    params: &Params,
) -> Result<Option<PkceChallenge>, OAuthError> {
    let challenge = params.get("code_challenge")?;
    let method = params.get("code_challenge_method")?;
    let Some(challenge) = challenge else {
        if method.is_some() {
            return Err(OAuthError::invalid_request(
                "code_challenge_method was sent without a code_challenge.",
            ));
        }
        if app.pkce_required.unwrap_or(settings.pkce_required) {
            return Err(OAuthError::invalid_request(
                "code_challenge required (PKCE, RFC 7636).",
            ));
        }
        return Ok(None);
    };
    let method = match method {
        None => CodeChallengeMethod::Plain,
        Some(m) => m.parse().map_err(|_| {
            OAuthError::invalid_request("Transform algorithm not supported: use S256 or plain.")
        })?,
    };
    if method == CodeChallengeMethod::Plain && settings.compliant_bcp_rfc9700_pkce_method {
        return Err(OAuthError::invalid_request(
            "The plain code_challenge_method is not allowed: use S256.",
        ));
    }
    let well_formed = pkce::is_valid_challenge(challenge)
        && (method != CodeChallengeMethod::S256 || challenge.len() == 43);
    if !well_formed {
        return Err(OAuthError::invalid_request(
            "Malformed code_challenge (RFC 7636 §4.2).",
        ));
    }
    Ok(Some(PkceChallenge {
        challenge: challenge.to_owned(),
        method,
    }))
}

/// Stage 2: everything after the redirect URI. Failures go back to `target`.
pub(crate) fn check_request(
    settings: &Settings,
    scopes: &dyn ScopesBackend,
    app: Application,
    params: &Params,
    target: Target,
    redirect_uri_sent: bool,
) -> Result<AuthRequest, Rejection> {
    match check_rest(settings, scopes, &app, params) {
        Ok(c) => Ok(AuthRequest {
            app,
            response_type: c.response_type,
            target,
            redirect_uri_sent,
            scopes: c.scopes,
            challenge: c.challenge,
            nonce: c.nonce,
            claims: c.claims,
            prompt: c.prompt,
            approval: c.approval,
            max_age: c.max_age,
        }),
        Err(error) => Err(Rejection::Redirect { target, error }),
    }
}

/// What [`check_rest`] found valid.
struct Checked {
    response_type: ResponseType,
    scopes: Scopes,
    challenge: Option<PkceChallenge>,
    nonce: String,
    claims: String,
    prompt: Prompt,
    approval: ApprovalPrompt,
    max_age: Option<u64>,
}

/// The response type of `params` when it is one this server handles: the OIDC ones only
/// with `OIDC_ENABLED` (without it they are unknown, as before OIDC was added).
fn known_response_type(settings: &Settings, raw: &str) -> Option<ResponseType> {
    ResponseType::parse(raw).filter(|rt| settings.oidc_enabled || !rt.is_oidc())
}

/// Whether `list` (a `*_RESPONSE_TYPES_SUPPORTED` setting) holds `rt`, compared as sets.
fn listed(list: &[String], rt: ResponseType) -> bool {
    list.iter().any(|t| ResponseType::parse(t) == Some(rt))
}

/// OIDC `max_age`: a non-negative number of seconds.
fn parse_max_age(raw: Option<&str>) -> Result<Option<u64>, OAuthError> {
    let Some(raw) = raw else { return Ok(None) };
    // Digits only: `u64::from_str` would also take a leading `+`.
    let digits = raw.bytes().all(|b| b.is_ascii_digit());
    match raw.parse::<u64>() {
        Ok(v) if digits => Ok(Some(v)),
        _ => Err(OAuthError::invalid_request(
            "max_age must be a non-negative number of seconds.",
        )),
    }
}

fn check_rest(
    settings: &Settings,
    scopes: &dyn ScopesBackend,
    app: &Application,
    params: &Params,
) -> Result<Checked, OAuthError> {
    if let Some(name) = repeated(params).first() {
        return Err(OAuthError::invalid_request(format!(
            "The {name} parameter was sent more than once."
        )));
    }
    let unsupported = |d: String| OAuthError::new(ErrorCode::UnsupportedResponseType, d);
    let response_type = match params.get("response_type")? {
        None => {
            return Err(OAuthError::invalid_request(
                "The response_type parameter is missing.",
            ))
        }
        Some(raw) => known_response_type(settings, raw)
            .ok_or_else(|| unsupported(format!("The response type {raw:?} is not supported.")))?,
    };
    let name = response_type.as_str();
    let enabled = if response_type.is_oidc() {
        listed(&settings.oidc_response_types_supported, response_type)
    } else {
        listed(&settings.oauth2_response_types_supported, response_type)
    };
    if !enabled {
        return Err(unsupported(format!(
            "The response type {name:?} is not enabled on this server."
        )));
    }
    if response_type.is_implicit() && settings.compliant_bcp_rfc9700_implicit_grant {
        return Err(unsupported(
            "The implicit grant is disabled (RFC 9700 §2.1.2).".into(),
        ));
    }
    if !response_type.allowed_for(app.authorization_grant_type) {
        return Err(OAuthError::unauthorized_client(format!(
            "This client may not use the {name} response type."
        )));
    }
    let requested = grants::requested_scopes(scopes, app, params)?;
    let nonce = params.get("nonce")?.unwrap_or_default().to_owned();
    if response_type.id_token() {
        // OIDC Core §3.1.2.1: without `openid` this is no OpenID Connect request, and
        // nothing else can ask for an ID token.
        if !requested.contains("openid") {
            return Err(OAuthError::invalid_scope(format!(
                "The response type {name:?} needs the openid scope."
            )));
        }
        if app.algorithm == Algorithm::NoAlgorithm {
            return Err(OAuthError::unauthorized_client(
                "This client has no ID token signing algorithm.",
            ));
        }
        // OIDC Core §3.2.2.1, §3.3.2.11: an ID token from the authorization endpoint
        // needs a nonce (replay protection).
        if nonce.is_empty() {
            return Err(OAuthError::invalid_request(format!(
                "The nonce parameter is required with the response type {name:?}."
            )));
        }
    }
    let challenge = if response_type.code() {
        pkce_challenge(settings, app, params)?
    } else {
        None
    };
    let claims = match params.get("claims")? {
        None => String::new(),
        Some(c) => {
            if serde_json::from_str::<serde_json::Map<String, Value>>(c).is_err() {
                return Err(OAuthError::invalid_request(
                    "The claims parameter must be a JSON object.",
                ));
            }
            c.to_owned()
        }
    };
    let prompt = Prompt::parse(params.get("prompt")?)?;
    let max_age = parse_max_age(params.get("max_age")?)?;
    let approval = match params.get("approval_prompt")? {
        Some("auto") => ApprovalPrompt::Auto,
        Some("force") => ApprovalPrompt::Force,
        _ => settings.request_approval_prompt,
    };
    Ok(Checked {
        response_type,
        scopes: requested,
        challenge,
        nonce,
        claims,
        prompt,
        approval,
        max_age,
    })
}

/// RFC 9207 `iss`: `OIDC_ISS_ENDPOINT` or the provider's issuer URL (the builder refuses
/// the setting without one: an `iss` taken from the request's Host header would be the
/// client's choice).
fn issuer(settings: &Settings, configured: Option<&url::Url>, _parts: &Parts) -> Option<String> {
    if !settings.compliant_bcp_rfc9700_authz_response_iss {
        return None;
    }
    super::configured_issuer(settings, configured)
}

/// The path the router is mounted at, when it is a literal path (`/o`).
fn literal_prefix(parts: &Parts) -> Option<&str> {
    parts
        .extensions
        .get::<NestedPath>()
        .map(NestedPath::as_str)
        .filter(|p| !p.contains(['{', '}', '*']))
        .map(|p| p.trim_end_matches('/'))
}

/// Checks a whole authorization request.
async fn validate<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    params: &Params,
    iss: Option<String>,
) -> Result<AuthRequest, Rejection> {
    let inner = &p.inner;
    let twice = repeated(params);
    for name in ["client_id", "redirect_uri"] {
        if twice.contains(&name) {
            return Err(Rejection::page(
                ErrorCode::InvalidRequest,
                format!("The {name} parameter was sent more than once."),
            ));
        }
    }
    let Some(client_id) = params.get("client_id").ok().flatten() else {
        return Err(Rejection::page(
            ErrorCode::InvalidRequest,
            "The client_id parameter is missing.",
        ));
    };
    let app = match inner.store.find_application_by_client_id(client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => {
            return Err(Rejection::page(
                ErrorCode::InvalidRequest,
                "Invalid client_id parameter value.",
            ))
        }
        Err(e) => return Err(Rejection::server(e)),
    };
    let sent = params.get("redirect_uri").ok().flatten();
    let redirect_uri = resolve_redirect_uri(&inner.settings, &app, sent)
        .map_err(|d| Rejection::page(ErrorCode::InvalidRequest, d))?;
    let target = Target {
        redirect_uri,
        fragment: !twice.contains(&"response_type")
            && params
                .get("response_type")
                .ok()
                .flatten()
                .and_then(|raw| known_response_type(&inner.settings, raw))
                .is_some_and(ResponseType::fragment),
        state: if twice.contains(&"state") {
            None
        } else {
            params.get("state").ok().flatten().map(str::to_owned)
        },
        iss,
    };
    check_request(
        &inner.settings,
        &*inner.scopes,
        app,
        params,
        target,
        sent.is_some(),
    )
}

// ----- decisions -----

/// What to do with a checked request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send the user to the login page.
    Login,
    /// Show the consent page.
    Consent,
    /// Approve without asking.
    Approve,
    /// Answer the client with this error.
    Fail(ErrorCode),
}

/// Whether consent may be skipped because a live token of the user already covers the
/// scopes (`REQUEST_APPROVAL_PROMPT = "auto"`).
pub(crate) fn covered(tokens: &[AccessToken], requested: &Scopes, now: Timestamp) -> bool {
    tokens.iter().any(|t| {
        !t.is_expired(now)
            && Scopes::parse(&t.scope).is_ok_and(|granted| requested.is_subset(&granted))
    })
}

/// Whether the login of `auth_time` is too old for `max_age` (OIDC Core §3.1.2.1): older
/// than `max_age` seconds, or of unknown age. `max_age=0` always asks for a new login
/// (as `prompt=login` does).
pub(crate) fn login_too_old(
    max_age: Option<u64>,
    auth_time: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    let Some(max_age) = max_age else {
        return false;
    };
    let Some(auth_time) = auth_time else {
        return true;
    };
    let age = now.unix().saturating_sub(auth_time.unix());
    max_age == 0 || age > i64::try_from(max_age).unwrap_or(i64::MAX)
}

/// The next step for `req` given who is logged in, whether consent was already given,
/// and the time.
pub(crate) fn next_step(
    req: &AuthRequest,
    user: Option<&AuthenticatedUser>,
    already_approved: bool,
    now: Timestamp,
) -> Step {
    let log_in = match user {
        None => true,
        Some(u) => req.prompt.login || login_too_old(req.max_age, u.auth_time, now),
    };
    if log_in {
        return if req.prompt.none {
            Step::Fail(ErrorCode::LoginRequired)
        } else {
            Step::Login
        };
    }
    if req.prompt.consent {
        return Step::Consent;
    }
    if req.app.skip_authorization || already_approved {
        return Step::Approve;
    }
    if req.prompt.none {
        return Step::Fail(ErrorCode::ConsentRequired);
    }
    Step::Consent
}

/// Whether `next` may be followed after a login: a relative reference to one of the
/// provider's pages (`../authorize/?…`), or an absolute path under `prefix`.
pub(crate) fn safe_next<'a>(next: &'a str, prefix: Option<&str>) -> Option<&'a str> {
    if next.len() > MAX_NEXT_LEN
        || next
            .bytes()
            .any(|b| !b.is_ascii_graphic() || b == b'\\' || b == b'#')
    {
        return None;
    }
    let (path, _query) = next.split_once('?').unwrap_or((next, ""));
    let rest = match path.strip_prefix("../") {
        Some(rest) => rest,
        None => {
            let prefix = prefix?;
            path.strip_prefix(prefix)?.strip_prefix('/')?
        }
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let segments_ok = !rest.is_empty()
        && rest.split('/').all(|seg| {
            !seg.is_empty()
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    segments_ok.then_some(next)
}

/// The authorize URL (relative to the login page) that re-issues the request in
/// `params`, without the consent form's fields and without `prompt=login` and `max_age`
/// (which the login about to happen satisfies: keeping them would send the user back to
/// the login page forever with `max_age=0`, or when the login time is unknown).
fn authorize_again(params: &Params) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params.pairs() {
        if CONTROL_FIELDS.contains(&k.as_str()) || k == "max_age" {
            continue;
        }
        if k == "prompt" {
            let kept: Vec<&str> = v
                .split(' ')
                .filter(|x| !x.is_empty() && *x != "login")
                .collect();
            if !kept.is_empty() {
                q.append_pair(k, &kept.join(" "));
            }
            continue;
        }
        q.append_pair(k, v);
    }
    format!("../authorize/?{}", q.finish())
}

/// `../login/?next=…`.
fn login_location(params: &Params) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("next", &authorize_again(params));
    format!("../login/?{}", q.finish())
}

/// `error_description` may only hold `%x20-21 / %x23-5B / %x5D-7E` (RFC 6749 §4.1.2.1).
fn description_chars(d: &str) -> String {
    d.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// The redirect URI with `params`, `state` and `iss` added (query or fragment).
pub(crate) fn location(target: &Target, params: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    if let Some(state) = &target.state {
        q.append_pair("state", state);
    }
    if let Some(iss) = &target.iss {
        q.append_pair("iss", iss);
    }
    let encoded = q.finish();
    let uri = &target.redirect_uri;
    if target.fragment {
        format!("{uri}#{encoded}")
    } else if !uri.contains('?') {
        format!("{uri}?{encoded}")
    } else if uri.ends_with('?') || uri.ends_with('&') {
        format!("{uri}{encoded}")
    } else {
        format!("{uri}&{encoded}")
    }
}

fn error_location(target: &Target, error: &OAuthError) -> String {
    let description = description_chars(&error.description);
    location(
        target,
        &[
            ("error", error.code.as_str()),
            ("error_description", &description),
        ],
    )
}

// ----- approving -----

/// Issues what an approved request asked for; the location to send the user to.
async fn approve<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    req: &AuthRequest,
    user: &AuthenticatedUser,
) -> String {
    match issue(p, parts, req, user).await {
        Ok(loc) => loc,
        Err(e) => error_location(&req.target, &e),
    }
}

/// Issues, in this order, the code (stored by checksum), the access token (stored, linked
/// to the code's grant in the hybrid flow so that a replayed code revokes it too) and the
/// ID token (with `nonce`, `c_hash` and `at_hash` of what goes with it, OIDC Core
/// §3.3.2.11); returns the redirect location with all of them.
async fn issue<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    req: &AuthRequest,
    user: &AuthenticatedUser,
) -> Result<String, OAuthError> {
    let inner = &p.inner;
    let settings = &inner.settings;
    let now = Timestamp::now();
    let rt = req.response_type;
    let mut answer: Vec<(&'static str, String)> = Vec::new();

    let mut code = None;
    let mut grant_id = None;
    if rt.code() {
        let value = generate_token(CODE_LENGTH, UNICODE_ASCII_CHARACTER_SET.as_bytes());
        let pkce = req.challenge.clone();
        let grant = inner
            .store
            .create_grant(NewGrant {
                user_id: user.id,
                code_checksum: token_checksum(&value),
                application_id: req.app.id,
                expires: now.plus(settings.authorization_code_expire_seconds),
                redirect_uri: if req.redirect_uri_sent {
                    req.target.redirect_uri.clone()
                } else {
                    String::new()
                },
                scope: req.scopes.to_string(),
                pkce,
                nonce: req.nonce.clone(),
                claims: req.claims.clone(),
                auth_time: user.auth_time,
                created: now,
            })
            .await?;
        grant_id = Some(grant.id);
        answer.push(("code", value.clone()));
        code = Some(value);
    }

    let mut minted = if rt.token() {
        Some(grants::mint(
            &inner.minter,
            Issue {
                app: &req.app,
                user_id: Some(user.id),
                scope: &req.scopes,
                grant_id,
                with_refresh: false,
                family: None,
                values: None,
                now,
            },
        )?)
    } else {
        None
    };

    let mut id_token = None;
    if rt.id_token() {
        let oidc = inner.oidc.as_ref().ok_or_else(|| {
            // check_rest only accepts ID-token response types with OIDC_ENABLED.
            OAuthError::server("an ID token was requested with OIDC disabled")
        })?;
        let id_tokens = IdTokens {
            settings,
            oidc,
            claims: &*inner.claims,
            issuer: super::oidc::issuer(settings, inner.issuer.as_ref(), parts),
        };
        let (jwt, row) = id_tokens
            .mint(IdTokenRequest {
                app: &req.app,
                user,
                scopes: &req.scopes,
                nonce: Some(&req.nonce),
                access_token: minted.as_ref().map(|m| m.access.as_str()),
                code: code.as_deref(),
                issuer: &id_tokens.issuer,
                now,
            })
            .await?;
        match &mut minted {
            // Stored with the access token, which links to it.
            Some(m) => m.tokens.id_token = Some(row),
            // Issued alone (`id_token`, `code id_token`): stored on its own, so that
            // logout and cleanup know of it.
            None => {
                inner.store.create_id_token(row).await?;
            }
        }
        id_token = Some(jwt);
    }

    if let Some(m) = minted {
        let issued = inner.store.issue_tokens(m.tokens).await?;
        let r = grants::response(m.access, None, &issued, now);
        answer.push(("access_token", r.access_token));
        answer.push(("token_type", r.token_type.to_owned()));
        answer.push(("expires_in", r.expires_in.to_string()));
        answer.push(("scope", r.scope));
    }
    if let Some(jwt) = id_token {
        answer.push(("id_token", jwt));
    }
    let pairs: Vec<(&str, &str)> = answer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(location(&req.target, &pairs))
}

/// Whether a live token already covers the request (only looked up when it matters).
async fn already_approved<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    req: &AuthRequest,
    user: &AuthenticatedUser,
) -> Result<bool, Rejection> {
    if req.approval != ApprovalPrompt::Auto || req.app.skip_authorization {
        return Ok(false);
    }
    let now = Timestamp::now();
    let tokens = p
        .inner
        .store
        .find_live_access_tokens(user.id, req.app.id, now)
        .await
        .map_err(Rejection::server)?;
    Ok(covered(&tokens, &req.scopes, now))
}

// ----- responses -----

fn security_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

pub(crate) fn render<S, U>(
    p: &Provider<S, U>,
    status: StatusCode,
    name: &str,
    ctx: Value,
) -> Response {
    match p.inner.templates.render(name, ctx) {
        Ok(body) => {
            let mut res = (status, body).into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            security_headers(&mut res);
            res
        }
        Err(e) => {
            tracing::error!(template = name, error = %e, "rendering a provider page failed");
            let mut res = (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be rendered.",
            )
                .into_response();
            security_headers(&mut res);
            res
        }
    }
}

fn error_page<S, U>(
    p: &Provider<S, U>,
    status: StatusCode,
    error: Option<ErrorCode>,
    description: &str,
) -> Response {
    let title = match status {
        StatusCode::FORBIDDEN => "Forbidden",
        s if s.is_server_error() => "Server error",
        _ => "Invalid authorization request",
    };
    render(
        p,
        status,
        "error.html",
        json!({
            "status": status.as_u16(),
            "title": title,
            "description": description,
            "error": error.map(ErrorCode::as_str),
        }),
    )
}

pub(crate) fn redirect(status: StatusCode, location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => {
            let mut res = status.into_response();
            res.headers_mut().insert(header::LOCATION, v);
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(_) => {
            tracing::error!("redirect location is not a valid header value");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Invalid redirect location.",
            )
                .into_response()
        }
    }
}

pub(crate) fn with_cookies(mut res: Response, visitor: &Visitor) -> Response {
    for c in &visitor.set_cookies {
        res.headers_mut().append(header::SET_COOKIE, c.clone());
    }
    res
}

fn reject<S, U>(p: &Provider<S, U>, rejection: Rejection, redirect_status: StatusCode) -> Response {
    match rejection {
        Rejection::Page {
            status,
            error,
            description,
        } => error_page(p, status, error, &description),
        Rejection::Redirect { target, error } => {
            tracing::debug!(error = %error.code, "authorization request refused");
            redirect(redirect_status, &error_location(&target, &error))
        }
    }
}

fn consent_page<S, U>(
    p: &Provider<S, U>,
    req: &AuthRequest,
    user: &AuthenticatedUser,
    params: &Params,
    csrf_token: &str,
) -> Response {
    let scopes: Vec<Value> = req
        .scopes
        .iter()
        .map(|s| json!({"name": s, "description": p.inner.scopes.description(s).unwrap_or(s)}))
        .collect();
    let fields: Vec<Value> = params
        .pairs()
        .iter()
        .filter(|(k, _)| !CONTROL_FIELDS.contains(&k.as_str()))
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let name = if req.app.name.trim().is_empty() {
        &req.app.client_id
    } else {
        &req.app.name
    };
    render(
        p,
        StatusCode::OK,
        "authorize.html",
        json!({
            "action": "./",
            "csrf_token": csrf_token,
            "application": {"name": name, "client_id": req.app.client_id},
            "user": {"username": user.username},
            "scopes": scopes,
            "fields": fields,
        }),
    )
}

pub(crate) async fn identify<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
) -> Result<Visitor, Response> {
    let inner = &p.inner;
    Visitor::identify(
        &inner.users,
        &inner.keys,
        &inner.settings,
        inner.issuer.as_ref(),
        parts,
    )
    .await
    .map_err(|e| {
        let e = OAuthError::server(e);
        error_page(
            p,
            StatusCode::INTERNAL_SERVER_ERROR,
            Some(e.code),
            &e.description,
        )
    })
}

// ----- handlers -----

/// `GET authorize/`.
pub(crate) async fn authorize_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
) -> Response {
    let params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
    let mut visitor = match identify(&p, &parts).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let res = authorize_get_inner(&p, &parts, &params, &mut visitor).await;
    with_cookies(res, &visitor)
}

async fn authorize_get_inner<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &mut Visitor,
) -> Response {
    let iss = issuer(&p.inner.settings, p.inner.issuer.as_ref(), parts);
    let req = match validate(p, params, iss).await {
        Ok(r) => r,
        Err(rej) => return reject(p, rej, StatusCode::FOUND),
    };
    let approved = match &visitor.user {
        Some(user) => match already_approved(p, &req, user).await {
            Ok(a) => a,
            Err(rej) => return reject(p, rej, StatusCode::FOUND),
        },
        None => false,
    };
    let step = next_step(&req, visitor.user.as_ref(), approved, Timestamp::now());
    match (step, visitor.user.clone()) {
        (Step::Login, _) => redirect(StatusCode::FOUND, &login_location(params)),
        (Step::Fail(code), user) => {
            let description = match (code, user) {
                (ErrorCode::LoginRequired, None) => "The user is not logged in.",
                (ErrorCode::LoginRequired, Some(_)) => "The user must log in again.",
                _ => "The user has not approved this client.",
            };
            redirect(
                StatusCode::FOUND,
                &error_location(&req.target, &OAuthError::new(code, description)),
            )
        }
        (Step::Approve, Some(user)) => {
            redirect(StatusCode::FOUND, &approve(p, parts, &req, &user).await)
        }
        (Step::Consent, Some(user)) => match visitor.consent_csrf_token(&p.inner.keys) {
            Some(token) => consent_page(p, &req, &user, params, &token),
            None => redirect(StatusCode::FOUND, &login_location(params)),
        },
        // next_step only approves or asks for consent when someone is logged in.
        (Step::Approve | Step::Consent, None) => {
            redirect(StatusCode::FOUND, &login_location(params))
        }
    }
}

/// `POST authorize/`: the consent form.
pub(crate) async fn authorize_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let visitor = match identify(&p, &parts).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let res = authorize_post_inner(&p, &parts, &params, &visitor).await;
    with_cookies(res, &visitor)
}

async fn authorize_post_inner<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &Visitor,
) -> Response {
    let Some(user) = &visitor.user else {
        // The session ended between the page and the click: log in and start again.
        return redirect(StatusCode::SEE_OTHER, &login_location(params));
    };
    let presented = params.get(CSRF_FIELD).ok().flatten();
    if !visitor.check_consent_csrf(&p.inner.keys, presented) {
        tracing::info!("consent form refused: missing or invalid CSRF token");
        return error_page(
            p,
            StatusCode::FORBIDDEN,
            None,
            "CSRF verification failed: reload the page and try again.",
        );
    }
    let iss = issuer(&p.inner.settings, p.inner.issuer.as_ref(), parts);
    let req = match validate(p, params, iss).await {
        Ok(r) => r,
        Err(rej) => return reject(p, rej, StatusCode::SEE_OTHER),
    };
    let allow =
        matches!(params.get("allow"), Ok(Some(_))) && matches!(params.get("deny"), Ok(None));
    if !allow {
        let denied = OAuthError::new(ErrorCode::AccessDenied, "The user denied the request.");
        return redirect(StatusCode::SEE_OTHER, &error_location(&req.target, &denied));
    }
    redirect(StatusCode::SEE_OTHER, &approve(p, parts, &req, user).await)
}

fn login_page<S, U>(
    p: &Provider<S, U>,
    csrf_token: &str,
    next: Option<&str>,
    username: &str,
    error: Option<&str>,
) -> Response {
    render(
        p,
        StatusCode::OK,
        "login.html",
        json!({
            "action": "./",
            "csrf_token": csrf_token,
            "next": next,
            "username": username,
            "error": error,
            "logged_in_as": null,
        }),
    )
}

/// `GET login/`.
pub(crate) async fn login_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
) -> Response {
    let params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
    let mut visitor = match identify(&p, &parts).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let next = params
        .get("next")
        .ok()
        .flatten()
        .and_then(|n| safe_next(n, literal_prefix(&parts)));
    let token = visitor.login_csrf_token(&p.inner.keys);
    let res = login_page(&p, &token, next, "", None);
    with_cookies(res, &visitor)
}

/// `POST login/`.
pub(crate) async fn login_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    let mut visitor = match identify(&p, &parts).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let res = login_post_inner(&p, &parts, &params, &mut visitor).await;
    with_cookies(res, &visitor)
}

async fn login_post_inner<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &mut Visitor,
) -> Response {
    let keys = &p.inner.keys;
    if !visitor.check_login_csrf(keys, params.get(CSRF_FIELD).ok().flatten()) {
        tracing::info!("login form refused: missing or invalid CSRF token");
        return error_page(
            p,
            StatusCode::FORBIDDEN,
            None,
            "CSRF verification failed: reload the login page and try again.",
        );
    }
    let next = params
        .get("next")
        .ok()
        .flatten()
        .and_then(|n| safe_next(n, literal_prefix(parts)));
    let username = params.get("username").ok().flatten().unwrap_or_default();
    let password = params.get("password").ok().flatten().unwrap_or_default();
    let token = visitor.login_csrf_token(keys);
    if username.is_empty() || password.is_empty() {
        return login_page(
            p,
            &token,
            next,
            username,
            Some("Please enter your username and password."),
        );
    }
    let user = match p.inner.users.authenticate(username, password).await {
        Ok(u) => u,
        Err(e) => {
            let e = OAuthError::server(e);
            return error_page(
                p,
                StatusCode::INTERNAL_SERVER_ERROR,
                Some(e.code),
                &e.description,
            );
        }
    };
    let Some(user) = user else {
        tracing::info!("login failed: wrong credentials");
        return login_page(
            p,
            &token,
            next,
            username,
            Some("Please enter a correct username and password. Note that both fields may be case-sensitive."),
        );
    };
    let shown = user.username.clone();
    visitor.log_in(keys, user);
    match next {
        Some(next) => redirect(StatusCode::SEE_OTHER, next),
        None => render(
            p,
            StatusCode::OK,
            "login.html",
            json!({"action": "./", "csrf_token": "", "next": null, "username": "",
                   "error": null, "logged_in_as": shown}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ClientType;
    use crate::scope::SettingsScopes;

    fn app(grant: GrantType, uris: &str) -> Application {
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

    fn target() -> Target {
        Target {
            redirect_uri: "https://c.example/cb".into(),
            fragment: false,
            state: Some("s t".into()),
            iss: None,
        }
    }

    fn check(settings: &Settings, app: Application, query: &str) -> Result<AuthRequest, Rejection> {
        let scopes = SettingsScopes::from_settings(settings);
        check_request(
            settings,
            &scopes,
            app,
            &Params::parse(query.as_bytes()),
            target(),
            true,
        )
    }

    fn code_of(r: Result<AuthRequest, Rejection>) -> Option<ErrorCode> {
        match r {
            Ok(_) => None,
            Err(Rejection::Redirect { error, .. }) => Some(error.code),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }

    const S256: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn redirect_uri_rules() {
        let s = Settings::default();
        assert!(redirect_uri_matches(
            &s,
            "https://a.example/cb",
            "https://a.example/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://a.example/cb",
            "https://a.example/cb?x=1"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://a.example/cb",
            "https://a.example/cb/"
        ));
        assert!(redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(redirect_uri_matches(
            &s,
            "http://127.0.0.1:80/cb",
            "http://127.0.0.1:5000/cb"
        ));
        assert!(redirect_uri_matches(
            &s,
            "http://[::1]:1/cb",
            "http://[::1]:65535/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:99999/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.2:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000/other"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://127.0.0.1/cb",
            "http://127.0.0.1:5000@evil/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://127.0.0.1/cb",
            "https://127.0.0.1:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "http://localhost/cb",
            "http://localhost:5000/cb"
        ));
        let mut s2 = Settings {
            allow_localhost_loopback: true,
            ..Settings::default()
        };
        assert!(redirect_uri_matches(
            &s2,
            "http://localhost/cb",
            "http://localhost:5000/cb"
        ));
        assert!(!redirect_uri_matches(
            &s,
            "https://*.example.com/cb",
            "https://a.example.com/cb"
        ));
        s2.allow_uri_wildcards = true;
        assert!(redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://a.b.example.com/cb"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://example.com/cb"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://evilexample.com/cb"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "https://a.example.com/cb2"
        ));
        assert!(!redirect_uri_matches(
            &s2,
            "https://*.example.com/cb",
            "http://a.example.com/cb"
        ));
    }

    #[test]
    fn redirect_uri_resolution() {
        let s = Settings::default();
        let one = app(GrantType::AuthorizationCode, "https://a.example/cb");
        assert_eq!(
            resolve_redirect_uri(&s, &one, None).unwrap(),
            "https://a.example/cb"
        );
        assert!(resolve_redirect_uri(&s, &one, Some("https://evil.example/cb")).is_err());
        assert!(resolve_redirect_uri(&s, &one, Some("https://a.example/cb#x")).is_err());
        let two = app(
            GrantType::AuthorizationCode,
            "https://a.example/cb https://b.example/cb",
        );
        assert!(resolve_redirect_uri(&s, &two, None).is_err());
        assert_eq!(
            resolve_redirect_uri(&s, &two, Some("https://b.example/cb")).unwrap(),
            "https://b.example/cb"
        );
        let none = app(GrantType::AuthorizationCode, "");
        assert!(resolve_redirect_uri(&s, &none, None).is_err());
        let only_https = Settings {
            allowed_redirect_uri_schemes: vec!["https".into()],
            ..Settings::default()
        };
        let loopback = app(GrantType::AuthorizationCode, "http://127.0.0.1/cb");
        assert!(
            resolve_redirect_uri(&only_https, &loopback, Some("http://127.0.0.1:1234/cb")).is_err()
        );
        assert!(resolve_redirect_uri(&only_https, &loopback, None).is_err());
    }

    #[test]
    fn request_checks() {
        let s = Settings::default();
        let code_app = || app(GrantType::AuthorizationCode, "https://c.example/cb");
        let q = format!("response_type=code&code_challenge={S256}&code_challenge_method=S256");
        let ok = check(&s, code_app(), &q).unwrap();
        assert_eq!(ok.response_type, ResponseType::Code);
        assert_eq!(
            ok.challenge,
            Some(PkceChallenge {
                challenge: S256.to_owned(),
                method: CodeChallengeMethod::S256
            })
        );
        assert_eq!(
            code_of(check(&s, code_app(), "response_type=code")),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(&s, code_app(), "")),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(&s, code_app(), "response_type=id_token")),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert_eq!(
            code_of(check(&s, code_app(), "response_type=token")),
            Some(ErrorCode::UnauthorizedClient)
        );
        assert_eq!(
            code_of(check(&s, code_app(), &format!("{q}&scope=read+nope"))),
            Some(ErrorCode::InvalidScope)
        );
        assert_eq!(
            code_of(check(&s, code_app(), &format!("{q}&foo=1&foo=2"))),
            Some(ErrorCode::InvalidRequest)
        );
        // PKCE details.
        let bad = format!("response_type=code&code_challenge={S256}&code_challenge_method=S512");
        assert_eq!(
            code_of(check(&s, code_app(), &bad)),
            Some(ErrorCode::InvalidRequest)
        );
        let short = "response_type=code&code_challenge=abc&code_challenge_method=plain";
        assert_eq!(
            code_of(check(&s, code_app(), short)),
            Some(ErrorCode::InvalidRequest)
        );
        let plain = format!("response_type=code&code_challenge={S256}");
        assert_eq!(
            check(&s, code_app(), &plain)
                .unwrap()
                .challenge
                .unwrap()
                .method,
            CodeChallengeMethod::Plain
        );
        let strict = Settings {
            compliant_bcp_rfc9700_pkce_method: true,
            ..Settings::default()
        };
        assert_eq!(
            code_of(check(&strict, code_app(), &plain)),
            Some(ErrorCode::InvalidRequest)
        );
        let mut optional = code_app();
        optional.pkce_required = Some(false);
        assert!(check(&s, optional, "response_type=code")
            .unwrap()
            .challenge
            .is_none());
        // Implicit.
        let implicit = || app(GrantType::Implicit, "https://c.example/cb");
        assert!(check(&s, implicit(), "response_type=token").is_ok());
        let no_implicit = Settings {
            compliant_bcp_rfc9700_implicit_grant: true,
            ..Settings::default()
        };
        assert_eq!(
            code_of(check(&no_implicit, implicit(), "response_type=token")),
            Some(ErrorCode::UnsupportedResponseType)
        );
        let code_only = Settings {
            oauth2_response_types_supported: vec!["code".into()],
            ..Settings::default()
        };
        assert_eq!(
            code_of(check(&code_only, implicit(), "response_type=token")),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert_eq!(
            code_of(check(&s, implicit(), "response_type=code")),
            Some(ErrorCode::UnauthorizedClient)
        );
        // prompt and claims.
        assert_eq!(
            code_of(check(
                &s,
                implicit(),
                "response_type=token&prompt=none+login"
            )),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(&s, implicit(), "response_type=token&claims=nope")),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn steps() {
        let s = Settings::default();
        let now = Timestamp::now();
        let mut req = check(
            &s,
            app(GrantType::Implicit, "https://c.example/cb"),
            "response_type=token",
        )
        .unwrap();
        let alice = AuthenticatedUser {
            id: 1,
            username: "alice".into(),
            auth_time: Some(now.sub_secs(600)),
        };
        let user = Some(&alice);
        assert_eq!(next_step(&req, None, false, now), Step::Login);
        assert_eq!(next_step(&req, user, false, now), Step::Consent);
        assert_eq!(next_step(&req, user, true, now), Step::Approve);
        req.app.skip_authorization = true;
        assert_eq!(next_step(&req, user, false, now), Step::Approve);
        req.prompt.consent = true;
        assert_eq!(next_step(&req, user, false, now), Step::Consent);
        req.prompt = Prompt {
            none: true,
            ..Prompt::default()
        };
        assert_eq!(
            next_step(&req, None, false, now),
            Step::Fail(ErrorCode::LoginRequired)
        );
        // prompt=none with a session and a consent: answered silently.
        assert_eq!(next_step(&req, user, false, now), Step::Approve);
        // max_age: a login of 600 s ago is too old for 599, fine for 600.
        req.max_age = Some(599);
        assert_eq!(
            next_step(&req, user, false, now),
            Step::Fail(ErrorCode::LoginRequired)
        );
        req.max_age = Some(600);
        assert_eq!(next_step(&req, user, false, now), Step::Approve);
        req.max_age = None;
        req.app.skip_authorization = false;
        assert_eq!(
            next_step(&req, user, false, now),
            Step::Fail(ErrorCode::ConsentRequired)
        );
        assert_eq!(next_step(&req, user, true, now), Step::Approve);
        req.prompt = Prompt {
            login: true,
            ..Prompt::default()
        };
        assert_eq!(next_step(&req, user, true, now), Step::Login);
        req.prompt = Prompt::default();
        req.max_age = Some(3600);
        assert_eq!(next_step(&req, user, true, now), Step::Approve);
        req.max_age = Some(60);
        assert_eq!(next_step(&req, user, true, now), Step::Login);
    }

    #[test]
    fn max_age_rules() {
        let now = Timestamp::now();
        assert!(!login_too_old(None, None, now));
        assert!(login_too_old(Some(3600), None, now), "unknown login time");
        assert!(login_too_old(Some(0), Some(now), now), "max_age=0 always");
        assert!(!login_too_old(Some(10), Some(now.sub_secs(10)), now));
        assert!(login_too_old(Some(10), Some(now.sub_secs(11)), now));
        assert!(!login_too_old(
            Some(u64::MAX),
            Some(Timestamp(i64::MIN)),
            now
        ));
        assert_eq!(parse_max_age(None), Ok(None));
        assert_eq!(parse_max_age(Some("0")), Ok(Some(0)));
        assert_eq!(parse_max_age(Some("3600")), Ok(Some(3600)));
        for bad in ["-1", "+5", "1.5", "ten", "99999999999999999999999"] {
            assert!(parse_max_age(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn response_types_are_unordered_sets() {
        use ResponseType::*;
        for rt in [
            Code,
            Token,
            IdToken,
            IdTokenToken,
            CodeIdToken,
            CodeToken,
            CodeIdTokenToken,
        ] {
            assert_eq!(ResponseType::parse(rt.as_str()), Some(rt));
        }
        assert_eq!(ResponseType::parse("token id_token"), Some(IdTokenToken));
        assert_eq!(ResponseType::parse("id_token code"), Some(CodeIdToken));
        assert_eq!(
            ResponseType::parse("token id_token code"),
            Some(CodeIdTokenToken)
        );
        assert_eq!(ResponseType::parse("token code"), Some(CodeToken));
        for bad in [
            "",
            " ",
            "code code",
            "none",
            "code none",
            "Code",
            "id-token",
            "code,token",
        ] {
            assert_eq!(ResponseType::parse(bad), None, "{bad:?}");
        }
        assert!(CodeIdTokenToken.code() && CodeIdTokenToken.token() && CodeIdTokenToken.id_token());
        assert!(!IdToken.token() && !IdToken.code() && IdToken.id_token());
        assert!(!Code.fragment() && CodeIdToken.fragment() && Token.fragment());
    }

    #[test]
    fn oidc_request_checks() {
        let off = Settings::default();
        let on = Settings {
            oidc_enabled: true,
            scopes: [("openid", "OpenID"), ("read", "Reading")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..Settings::default()
        };
        let with_alg = |grant| {
            let mut a = app(grant, "https://c.example/cb");
            a.algorithm = crate::model::Algorithm::Rs256;
            a
        };
        let implicit = || with_alg(GrantType::Implicit);
        let hybrid = || with_alg(GrantType::OpenidHybrid);
        let pkce = format!("code_challenge={S256}&code_challenge_method=S256");
        let q = |rt: &str, extra: &str| format!("response_type={rt}&scope=openid+read{extra}");

        // Off: unknown response types, as before.
        for rt in ["id_token", "id_token+token", "code+id_token", "code+token"] {
            assert_eq!(
                code_of(check(&off, hybrid(), &q(rt, "&nonce=n"))),
                Some(ErrorCode::UnsupportedResponseType),
                "{rt}"
            );
        }
        // On: implicit types for implicit apps, hybrid types for hybrid apps, any order.
        let ok = check(&on, implicit(), &q("token+id_token", "&nonce=n")).unwrap();
        assert_eq!(ok.response_type, ResponseType::IdTokenToken);
        assert_eq!(ok.nonce, "n");
        assert!(ok.challenge.is_none());
        let ok = check(
            &on,
            hybrid(),
            &q("id_token+code", &format!("&nonce=n&{pkce}")),
        )
        .unwrap();
        assert_eq!(ok.response_type, ResponseType::CodeIdToken);
        assert!(
            ok.challenge.is_some(),
            "PKCE applies to every type with a code"
        );
        assert_eq!(
            code_of(check(&on, hybrid(), &q("code+id_token", "&nonce=n"))),
            Some(ErrorCode::InvalidRequest),
            "no code_challenge"
        );
        // `code token` returns no ID token: no nonce needed.
        assert!(check(&on, hybrid(), &q("code+token", &format!("&{pkce}"))).is_ok());
        // `code` stays open to hybrid apps.
        assert!(check(&on, hybrid(), &q("code", &format!("&{pkce}"))).is_ok());
        // Wrong grant type.
        for (a, rt) in [
            (hybrid(), "id_token"),
            (hybrid(), "id_token+token"),
            (hybrid(), "token"),
            (implicit(), "code+id_token"),
            (with_alg(GrantType::AuthorizationCode), "code+id_token"),
            (with_alg(GrantType::AuthorizationCode), "id_token"),
        ] {
            assert_eq!(
                code_of(check(&on, a, &q(rt, &format!("&nonce=n&{pkce}")))),
                Some(ErrorCode::UnauthorizedClient),
                "{rt}"
            );
        }
        // openid, algorithm, nonce.
        assert_eq!(
            code_of(check(
                &on,
                implicit(),
                "response_type=id_token&scope=read&nonce=n"
            )),
            Some(ErrorCode::InvalidScope)
        );
        let mut no_alg = implicit();
        no_alg.algorithm = crate::model::Algorithm::NoAlgorithm;
        assert_eq!(
            code_of(check(&on, no_alg, &q("id_token", "&nonce=n"))),
            Some(ErrorCode::UnauthorizedClient)
        );
        assert_eq!(
            code_of(check(&on, implicit(), &q("id_token", ""))),
            Some(ErrorCode::InvalidRequest)
        );
        assert_eq!(
            code_of(check(
                &on,
                hybrid(),
                &q("code+id_token+token", &format!("&{pkce}"))
            )),
            Some(ErrorCode::InvalidRequest)
        );
        // OIDC_RESPONSE_TYPES_SUPPORTED, compared as sets.
        let narrow = Settings {
            oidc_response_types_supported: vec!["code".into(), "token id_token".into()],
            ..on.clone()
        };
        assert!(check(&narrow, implicit(), &q("id_token+token", "&nonce=n")).is_ok());
        assert_eq!(
            code_of(check(&narrow, implicit(), &q("id_token", "&nonce=n"))),
            Some(ErrorCode::UnsupportedResponseType)
        );
        // The RFC 9700 implicit gate covers id_token too (as DOT), not the hybrid flow.
        let gated = Settings {
            compliant_bcp_rfc9700_implicit_grant: true,
            ..on.clone()
        };
        assert_eq!(
            code_of(check(&gated, implicit(), &q("id_token", "&nonce=n"))),
            Some(ErrorCode::UnsupportedResponseType)
        );
        assert!(check(
            &gated,
            hybrid(),
            &q("code+id_token", &format!("&nonce=n&{pkce}"))
        )
        .is_ok());
        // max_age.
        assert_eq!(
            check(&on, implicit(), &q("id_token", "&nonce=n&max_age=30"))
                .unwrap()
                .max_age,
            Some(30)
        );
        assert_eq!(
            code_of(check(
                &on,
                implicit(),
                &q("id_token", "&nonce=n&max_age=-1")
            )),
            Some(ErrorCode::InvalidRequest)
        );
    }

    #[test]
    fn covered_by_tokens() {
        let now = Timestamp::now();
        let tok = |scope: &str, expires: Timestamp| AccessToken {
            id: 1,
            user_id: Some(1),
            source_refresh_token_id: None,
            token_checksum: String::new(),
            id_token_id: None,
            application_id: Some(1),
            grant_id: None,
            expires,
            scope: scope.into(),
            created: now,
        };
        let read = Scopes::parse("read").unwrap();
        let rw = Scopes::parse("read write").unwrap();
        assert!(covered(&[tok("read write", now.add_secs(60))], &read, now));
        assert!(!covered(&[tok("read", now.add_secs(60))], &rw, now));
        assert!(!covered(&[tok("read write", now)], &read, now));
        assert!(!covered(&[], &read, now));
    }

    #[test]
    fn next_is_never_an_open_redirect() {
        assert!(safe_next("../authorize/?client_id=x&scope=a+b", None).is_some());
        assert!(safe_next("/o/authorize/?client_id=x", Some("/o")).is_some());
        for bad in [
            "https://evil.example/",
            "//evil.example/",
            "/\\evil.example",
            "../../authorize/",
            "../../../evil",
            "..//evil.example",
            "../",
            "/o/authorize/",
            "/other/authorize/",
            "../auth orize/",
            "../authorize/#x",
            "javascript:alert(1)",
        ] {
            assert!(safe_next(bad, None).is_none(), "{bad}");
        }
        assert!(safe_next("/o/../evil/", Some("/o")).is_none());
        assert!(safe_next("/other/authorize/", Some("/o")).is_none());
        assert!(safe_next("//o/authorize/", Some("/o")).is_none());
    }

    #[test]
    fn locations() {
        let t = target();
        assert_eq!(
            location(&t, &[("code", "a b")]),
            "https://c.example/cb?code=a+b&state=s+t"
        );
        let mut q = t.clone();
        q.redirect_uri = "https://c.example/cb?x=1".into();
        q.iss = Some("https://as.example".into());
        assert_eq!(
            location(&q, &[("code", "c")]),
            "https://c.example/cb?x=1&code=c&state=s+t&iss=https%3A%2F%2Fas.example"
        );
        let mut f = t;
        f.fragment = true;
        f.state = None;
        assert_eq!(
            location(&f, &[("access_token", "t")]),
            "https://c.example/cb#access_token=t"
        );
        let e = OAuthError::invalid_scope("The scope \"x\" is unknown\u{e9}.");
        assert!(
            error_location(&f, &e).contains("error_description=The+scope+%27x%27+is+unknown%3F.")
        );
    }

    #[test]
    fn authorize_again_drops_form_fields_and_prompt_login() {
        let p = Params::parse(
            b"client_id=a&csrfmiddlewaretoken=t&allow=1&prompt=login+consent&state=x",
        );
        assert_eq!(
            authorize_again(&p),
            "../authorize/?client_id=a&prompt=consent&state=x"
        );
        let p = Params::parse(b"client_id=a&prompt=login");
        assert_eq!(authorize_again(&p), "../authorize/?client_id=a");
        let p = Params::parse(b"client_id=a&max_age=0&nonce=n");
        assert_eq!(authorize_again(&p), "../authorize/?client_id=a&nonce=n");
        assert!(login_location(&p).starts_with("../login/?next=..%2Fauthorize%2F%3Fclient_id%3Da"));
    }
}
