//! OpenID Connect RP-Initiated Logout 1.0 at `logout/` (GET and POST), with Django OAuth
//! Toolkit's settings and semantics.
//!
//! The endpoint exists only when both `OIDC_ENABLED` and
//! `OIDC_RP_INITIATED_LOGOUT_ENABLED` are on; otherwise it answers 404 Not Found.
//!
//! # Parameters
//! `id_token_hint`, `client_id`, `post_logout_redirect_uri` and `state`, in the query of a
//! `GET` or the form body of a `POST` (OIDC RP-Initiated Logout §2); `ui_locales` and
//! `logout_hint` are accepted and ignored. A parameter sent twice is refused.
//!
//! # Checks
//! Every failure below is a 400 page (`error.html`, `invalid_request`): nothing is
//! logged out, no token is deleted and the user is **never redirected**.
//! 1. `id_token_hint`, when sent, must be an ID token this server issued. Its signature
//!    is always checked: `RS256` with the key named by its `kid` (the active
//!    `OIDC_RSA_PRIVATE_KEY` or one of `OIDC_RSA_PRIVATE_KEYS_INACTIVE`), `HS256` with the
//!    client's secret, which only works for a client whose secret is stored unhashed
//!    (`hash_client_secret = false`). The algorithm must be the client's `algorithm`;
//!    any other (`none` included) is refused. The client is the token's `azp`, else its
//!    only `aud` (else `client_id`, when it is one of several audiences). `iss` must be
//!    this server's issuer (`OIDC_ISS_ENDPOINT`, else the provider's issuer URL, else the
//!    request's URL and mount path) and `sub` a user id. `exp` and `nbf` are only
//!    checked when `OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS` is off (default on,
//!    with 60 s of leeway when checked). A hint whose stored ID token (by `jti`) names
//!    another user or client is refused; one whose row is already gone is accepted, so a
//!    repeated logout works (DOT 3.4.1).
//! 2. `client_id`, when sent, must be a known client and, with a hint, the client the
//!    hint was issued to.
//! 3. `post_logout_redirect_uri`, when sent, needs a client (`client_id` or the hint's),
//!    must be absolute, without fragment, with a scheme in `ALLOWED_REDIRECT_URI_SCHEMES`,
//!    and must equal one of the client's `post_logout_redirect_uris` **exactly**. With
//!    `OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS`, an `http` URI is only accepted for
//!    a confidential client.
//!
//! # Asking the user
//! A logged-in user is shown a confirmation page (`logout.html`: the request as hidden
//! fields, a CSRF token in `csrfmiddlewaretoken`, a button `allow` to sign out and one
//! `deny` to stay) when `OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT` is on (the default),
//! when there is no hint, or when the hint's user is not the logged-in user. Otherwise —
//! and when nobody is logged in — the logout happens at once, also on `GET`.
//!
//! A `POST` carrying the confirmation form (any of `csrfmiddlewaretoken`, `allow`,
//! `deny`) from a logged-in user must have a valid CSRF token, checked in constant time
//! before anything else (otherwise 403 Forbidden and nothing changes). `allow` signs
//! out; `deny`, or no `allow` where a confirmation is needed, is a 400 page
//! `logout_denied` and the user stays signed in. A `POST` without any of those fields
//! is a logout request sent by a relying party's form and is handled exactly like a
//! `GET`: it can never skip a confirmation a `GET` would have asked for.
//!
//! # Logging out
//! 1. With `OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS` (default on): the access and ID
//!    tokens of the hint's user (else the logged-in user) for the hint's audience (else
//!    the `client_id` client) are deleted and their refresh tokens revoked. As in DOT, a
//!    confirmed logout with another user's hint deletes that user's tokens: the relying
//!    party holds that user's ID token.
//! 2. The provider session ends: its cookie is cleared.
//! 3. The user is sent to `post_logout_redirect_uri` with `state` added to its query
//!    (302 Found after a `GET`, 303 See Other after a `POST`), or, without one, shown
//!    `logout.html` with `signed_out` set.
//!
//! # Differences from DOT
//! - **Tokens are deleted for the hint's clients only.** DOT deletes the user's access,
//!   refresh and ID tokens for all applications. Here the relying party that
//!   asks for the logout only ends what it was given; the user's other clients keep
//!   their tokens. (For an `HS256` client, which knows the key of its own ID tokens, this
//!   also keeps a forged hint from touching any other client.) Without a hint, the
//!   `client_id` client's tokens are deleted; with neither, only the session ends.
//! - `post_logout_redirect_uri` must match exactly: DOT also applies the redirect-URI
//!   rules for loopback ports and extra query parameters.
//! - The hint is verified with any of our RSA keys, active or inactive (selected by
//!   `kid`); DOT only tries the active key, so a hint issued before a key rotation is
//!   refused there.
//! - Without `post_logout_redirect_uri`, a "you are signed out" page is shown; DOT
//!   redirects to `/`.
//! - A relying party may `POST` the logout request (OIDC RP-Initiated Logout §2 requires
//!   OPs to support it) without a CSRF token: only the confirmation form needs one.
//! - The CSRF token is the one of the consent page (bound to the session and the user).
//! - A user who came from the host's own session ([`UserAuthenticator::current_user`])
//!   is only signed out of the provider's session: the host must end its own.
//! - The session is a signed cookie: clearing it ends the session in this browser, but a
//!   copy of the cookie taken earlier stays valid until it expires (see the session
//!   module docs).
//! - Back-channel and front-channel logout and session management are not implemented
//!   (as in DOT).

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use jsonwebtoken::{Algorithm as Jwa, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::{Algorithm, Application, Timestamp};
use crate::provider::authorize::{location, Target};
use crate::provider::error::OAuthError;
use crate::provider::pages::{as_visitor, redirect, render, titled_error_page};
use crate::provider::params::Params;
use crate::provider::session::{Visitor, CSRF_FIELD};
use crate::provider::{Provider, UserAuthenticator};
use crate::settings::Settings;
use crate::store::Store;

/// The longest `id_token_hint` read (ours are well under 2 KiB).
const MAX_HINT_LEN: usize = 16 * 1024;
/// The most audiences a hint may name.
const MAX_AUDIENCES: usize = 10;
/// The request parameters the confirmation form carries over.
const CARRIED: &[&str] = &[
    "id_token_hint",
    "client_id",
    "post_logout_redirect_uri",
    "state",
    "ui_locales",
    "logout_hint",
];
/// What the page says about any bad `id_token_hint` (the reason is only logged).
const BAD_HINT: &str =
    "The id_token_hint is expired, malformed, not issued by this server, or otherwise invalid.";

/// Why a logout request is refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The `id_token_hint` is not good; the reason is for the log only.
    BadHint(String),
    /// Any other bad parameter; the description is shown.
    Invalid(String),
    /// The store failed; the cause is logged, not shown.
    Server(String),
}

fn bad_hint(reason: impl Into<String>) -> Refusal {
    Refusal::BadHint(reason.into())
}

/// The `aud` claim: one client id or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn as_slice(&self) -> &[String] {
        match self {
            Audience::One(a) => std::slice::from_ref(a),
            Audience::Many(v) => v,
        }
    }
}

/// The claims read before the signature is checked: only to find the client, whose
/// algorithm and (for HS256) secret decide how the signature is checked.
#[derive(Deserialize)]
struct Unverified {
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    azp: Option<String>,
}

/// The claims of a verified hint.
#[derive(Deserialize)]
struct HintClaims {
    iss: String,
    sub: String,
    aud: Audience,
    #[serde(default)]
    jti: Option<String>,
}

/// A verified `id_token_hint`.
#[derive(Debug)]
struct VerifiedHint {
    /// The `sub`: a user id.
    user_id: i64,
    /// The client the token was issued to.
    app: Application,
    /// Every client in `aud`.
    audience: Vec<String>,
}

/// A checked logout request.
#[derive(Debug)]
pub(crate) struct LogoutRequest {
    /// The user of a valid `id_token_hint`.
    hint_user: Option<i64>,
    /// The client named by `client_id` or the hint.
    application: Option<Application>,
    /// The clients whose tokens `OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS` deletes.
    token_apps: Vec<i64>,
    /// The validated `post_logout_redirect_uri`, with `state`.
    target: Option<Target>,
    /// The request, for the confirmation form.
    fields: Vec<(&'static str, String)>,
}

/// The client an ID token was issued to: `azp` (which must be an audience), else the
/// only audience, else `client_id` when it is one of several audiences. A `client_id`
/// sent with the hint must be that client.
pub(crate) fn issued_to<'a>(
    aud: &'a [String],
    azp: Option<&'a str>,
    client_id: Option<&'a str>,
) -> Result<&'a str, Refusal> {
    if aud.is_empty() || aud.len() > MAX_AUDIENCES {
        return Err(bad_hint("no aud, or too many"));
    }
    let issued = match (azp, aud) {
        (Some(azp), _) if aud.iter().any(|a| a == azp) => azp,
        (Some(_), _) => return Err(bad_hint("azp is not an audience")),
        (None, [only]) => only.as_str(),
        (None, _) => match client_id {
            Some(c) if aud.iter().any(|a| a == c) => c,
            _ => {
                return Err(bad_hint(
                    "several audiences, no azp and no matching client_id",
                ))
            }
        },
    };
    if client_id.is_some_and(|c| c != issued) {
        return Err(Refusal::Invalid(
            "The client_id does not match the client of the id_token_hint.".into(),
        ));
    }
    Ok(issued)
}

/// Whether `uri` may be used as `app`'s post-logout redirect URI.
pub(crate) fn check_post_logout_redirect_uri(
    settings: &Settings,
    app: &Application,
    uri: &str,
) -> Result<(), String> {
    let Ok(parsed) = url::Url::parse(uri) else {
        return Err("The post_logout_redirect_uri is not an absolute URI.".into());
    };
    if uri.contains('#') {
        return Err("The post_logout_redirect_uri must not contain a fragment.".into());
    }
    let scheme = parsed.scheme();
    if settings.oidc_rp_initiated_logout_strict_redirect_uris
        && scheme == "http"
        && !app.is_confidential()
    {
        return Err("An http post_logout_redirect_uri is only allowed for confidential clients (OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS).".into());
    }
    if !settings
        .allowed_redirect_uri_schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return Err(format!(
            "Redirecting to the scheme {scheme:?} is not permitted (ALLOWED_REDIRECT_URI_SCHEMES)."
        ));
    }
    if !app.post_logout_redirect_uri_list().any(|r| r == uri) {
        return Err("This post_logout_redirect_uri is not registered for this application.".into());
    }
    Ok(())
}

/// Whether the user must confirm: only someone logged in is asked, and they are unless
/// `OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT` is off and a valid hint names them.
pub(crate) fn must_prompt(
    always_prompt: bool,
    hint_user: Option<i64>,
    session_user: Option<i64>,
) -> bool {
    match session_user {
        None => false,
        Some(user) => always_prompt || hint_user != Some(user),
    }
}

fn enabled<S, U>(p: &Provider<S, U>) -> bool {
    let s = &p.inner.settings;
    s.oidc_enabled && s.oidc_rp_initiated_logout_enabled && p.inner.oidc.is_some()
}

/// Verifies an `id_token_hint` (see the module docs).
async fn verify_hint<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    hint: &str,
    client_id: Option<&str>,
) -> Result<VerifiedHint, Refusal> {
    let inner = &p.inner;
    if hint.len() > MAX_HINT_LEN {
        return Err(bad_hint("too long"));
    }
    let header = jsonwebtoken::decode_header(hint).map_err(|e| bad_hint(format!("header: {e}")))?;
    let algorithm = match header.alg {
        Jwa::RS256 => Algorithm::Rs256,
        Jwa::HS256 => Algorithm::Hs256,
        other => return Err(bad_hint(format!("unsupported alg {other:?}"))),
    };
    // The client decides how the signature is checked, so `aud`/`azp` are read first;
    // nothing else from these unverified claims is used.
    let unverified: Unverified = jsonwebtoken::dangerous::insecure_decode_claims(hint)
        .map_err(|e| bad_hint(format!("claims: {e}")))?;
    let aud = unverified.aud.ok_or_else(|| bad_hint("no aud"))?;
    let issued = issued_to(aud.as_slice(), unverified.azp.as_deref(), client_id)?;
    let app = match inner.store.find_application_by_client_id(issued).await {
        Ok(Some(app)) => app,
        Ok(None) => return Err(bad_hint("unknown client")),
        Err(e) => return Err(Refusal::Server(e.to_string())),
    };
    if app.algorithm != algorithm {
        return Err(bad_hint("alg is not the client's algorithm"));
    }
    let secret_key;
    let key: &DecodingKey = match algorithm {
        Algorithm::Rs256 => {
            let keys = inner
                .oidc
                .as_ref()
                .and_then(|o| o.keys.as_deref())
                .ok_or_else(|| bad_hint("no RSA key is configured"))?;
            let kid = header.kid.as_deref().unwrap_or(keys.active().kid());
            keys.decoding_key(kid)
                .ok_or_else(|| bad_hint("unknown kid"))?
        }
        Algorithm::Hs256 => {
            if app.hash_client_secret || app.client_secret.is_empty() {
                return Err(bad_hint("the client's secret is hashed or empty"));
            }
            secret_key = DecodingKey::from_secret(app.client_secret.as_bytes());
            &secret_key
        }
        Algorithm::NoAlgorithm => return Err(bad_hint("the client has no algorithm")),
    };
    let issuer = super::issuer(&inner.settings, inner.issuer.as_ref(), parts);
    let accept_expired = inner
        .settings
        .oidc_rp_initiated_logout_accept_expired_tokens;
    let mut validation = Validation::new(header.alg);
    validation.set_issuer(&[&issuer]);
    validation.set_audience(&[&app.client_id]);
    validation.validate_exp = !accept_expired;
    validation.validate_nbf = !accept_expired;
    if accept_expired {
        validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    } else {
        validation.set_required_spec_claims(&["iss", "aud", "sub", "exp"]);
    }
    let claims = jsonwebtoken::decode::<HintClaims>(hint, key, &validation)
        .map_err(|e| bad_hint(format!("verification: {e}")))?
        .claims;
    if claims.iss != issuer || !claims.aud.as_slice().contains(&app.client_id) {
        return Err(bad_hint("iss or aud"));
    }
    let user_id: i64 = claims
        .sub
        .parse()
        .map_err(|_| bad_hint("sub is not a user id"))?;
    if let Some(jti) = &claims.jti {
        match inner.store.find_id_token(jti).await {
            Ok(Some(row)) if row.user_id != Some(user_id) || row.application_id != Some(app.id) => {
                return Err(bad_hint(
                    "the stored ID token is another user's or client's",
                ));
            }
            // A row that is gone (an earlier logout deleted it) is fine: idempotent.
            Ok(_) => {}
            Err(e) => return Err(Refusal::Server(e.to_string())),
        }
    }
    let audience = match claims.aud {
        Audience::One(a) => vec![a],
        Audience::Many(v) => v,
    };
    Ok(VerifiedHint {
        user_id,
        app,
        audience,
    })
}

/// Checks a whole logout request.
async fn check<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
) -> Result<LogoutRequest, Refusal> {
    let inner = &p.inner;
    let mut fields = Vec::new();
    for name in CARRIED {
        match params.get(name) {
            Ok(Some(v)) => fields.push((*name, v.to_owned())),
            Ok(None) => {}
            Err(e) => return Err(Refusal::Invalid(e.description)),
        }
    }
    let value = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    let client_id = value("client_id");
    let hint = match value("id_token_hint") {
        Some(h) => Some(verify_hint(p, parts, h, client_id).await?),
        None => None,
    };
    let application = match (&hint, client_id) {
        // verify_hint made sure that client_id, if sent, is the hint's client.
        (Some(h), _) => Some(h.app.clone()),
        (None, Some(c)) => match inner.store.find_application_by_client_id(c).await {
            Ok(Some(app)) => Some(app),
            Ok(None) => {
                return Err(Refusal::Invalid(
                    "Invalid client_id parameter value.".into(),
                ))
            }
            Err(e) => return Err(Refusal::Server(e.to_string())),
        },
        (None, None) => None,
    };
    let mut token_apps: Vec<i64> = application.iter().map(|a| a.id).collect();
    if let Some(h) = &hint {
        for aud in h.audience.iter().filter(|a| **a != h.app.client_id) {
            match inner.store.find_application_by_client_id(aud).await {
                Ok(Some(app)) if !token_apps.contains(&app.id) => token_apps.push(app.id),
                Ok(_) => {}
                Err(e) => return Err(Refusal::Server(e.to_string())),
            }
        }
    }
    let target = match value("post_logout_redirect_uri") {
        None => None,
        Some(uri) => {
            let Some(app) = &application else {
                return Err(Refusal::Invalid(
                    "A post_logout_redirect_uri needs the client: send client_id or id_token_hint."
                        .into(),
                ));
            };
            check_post_logout_redirect_uri(&inner.settings, app, uri).map_err(Refusal::Invalid)?;
            Some(Target {
                redirect_uri: uri.to_owned(),
                fragment: false,
                state: value("state").map(str::to_owned),
                iss: None,
            })
        }
    };
    Ok(LogoutRequest {
        hint_user: hint.as_ref().map(|h| h.user_id),
        application,
        token_apps,
        target,
        fields,
    })
}

// ----- pages -----

fn app_json(app: Option<&Application>) -> Value {
    match app {
        Some(a) => {
            let name = if a.name.trim().is_empty() {
                &a.client_id
            } else {
                &a.name
            };
            json!({"name": name, "client_id": a.client_id})
        }
        None => Value::Null,
    }
}

fn refuse<S, U>(p: &Provider<S, U>, refusal: Refusal) -> Response {
    let bad = StatusCode::BAD_REQUEST;
    let title = "Invalid logout request";
    match refusal {
        Refusal::BadHint(reason) => {
            tracing::info!(%reason, "logout refused: bad id_token_hint");
            titled_error_page(p, bad, title, Some("invalid_request"), BAD_HINT)
        }
        Refusal::Invalid(description) => {
            tracing::info!(%description, "logout refused");
            titled_error_page(p, bad, title, Some("invalid_request"), &description)
        }
        Refusal::Server(cause) => {
            let e = OAuthError::server(cause);
            titled_error_page(
                p,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server error",
                Some(e.code.as_str()),
                &e.description,
            )
        }
    }
}

fn confirmation_page<S, U>(
    p: &Provider<S, U>,
    req: &LogoutRequest,
    visitor: &mut Visitor,
) -> Response {
    // Only a logged-in user is asked, so there is a token.
    let token = visitor
        .consent_csrf_token(&p.inner.keys)
        .unwrap_or_default();
    let fields: Vec<Value> = req
        .fields
        .iter()
        .map(|(k, v)| json!({"name": k, "value": v}))
        .collect();
    let user = visitor
        .user
        .as_ref()
        .map(|u| json!({"username": u.username}));
    render(
        p,
        StatusCode::OK,
        "logout.html",
        json!({
            "signed_out": false,
            "action": "./",
            "csrf_token": token,
            "application": app_json(req.application.as_ref()),
            "user": user,
            "fields": fields,
        }),
    )
}

fn signed_out_page<S, U>(p: &Provider<S, U>, req: &LogoutRequest) -> Response {
    render(
        p,
        StatusCode::OK,
        "logout.html",
        json!({
            "signed_out": true,
            "action": "./",
            "csrf_token": "",
            "application": app_json(req.application.as_ref()),
            "user": null,
            "fields": [],
        }),
    )
}

// ----- logging out -----

async fn log_out<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    req: &LogoutRequest,
    visitor: &mut Visitor,
    redirect_status: StatusCode,
) -> Response {
    let inner = &p.inner;
    let user = req
        .hint_user
        .or_else(|| visitor.user.as_ref().map(|u| u.id));
    let mut deleted = 0;
    if inner.settings.oidc_rp_initiated_logout_delete_tokens && !req.token_apps.is_empty() {
        if let Some(user_id) = user {
            match inner
                .store
                .delete_user_tokens(user_id, Some(&req.token_apps), Timestamp::now())
                .await
            {
                Ok(n) => deleted = n,
                Err(e) => return refuse(p, Refusal::Server(e.to_string())),
            }
        }
    }
    let had_session = visitor.log_out();
    tracing::info!(
        user_id = ?user,
        client_id = req.application.as_ref().map(|a| a.client_id.as_str()),
        tokens_deleted = deleted,
        had_session,
        "RP-initiated logout"
    );
    match &req.target {
        Some(target) if target.state.is_some() => redirect(redirect_status, &location(target, &[])),
        Some(target) => redirect(redirect_status, &target.redirect_uri),
        None => signed_out_page(p, req),
    }
}

/// A `GET`, or a `POST` that is not the confirmation form.
async fn request<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &mut Visitor,
    redirect_status: StatusCode,
) -> Response {
    let req = match check(p, parts, params).await {
        Ok(r) => r,
        Err(refusal) => return refuse(p, refusal),
    };
    let session_user = visitor.user.as_ref().map(|u| u.id);
    let always = p.inner.settings.oidc_rp_initiated_logout_always_prompt;
    if must_prompt(always, req.hint_user, session_user) {
        return confirmation_page(p, &req, visitor);
    }
    log_out(p, &req, visitor, redirect_status).await
}

async fn confirmation<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    params: &Params,
    visitor: &mut Visitor,
) -> Response {
    let sent = |name: &str| params.pairs().iter().any(|(k, _)| k == name);
    if !(sent(CSRF_FIELD) || sent("allow") || sent("deny")) {
        return request(p, parts, params, visitor, StatusCode::SEE_OTHER).await;
    }
    if visitor.user.is_some() {
        let presented = params.get(CSRF_FIELD).ok().flatten();
        if !visitor.check_consent_csrf(&p.inner.keys, presented) {
            tracing::info!("logout form refused: missing or invalid CSRF token");
            return titled_error_page(
                p,
                StatusCode::FORBIDDEN,
                "Forbidden",
                None,
                "CSRF verification failed: reload the page and try again.",
            );
        }
    }
    let req = match check(p, parts, params).await {
        Ok(r) => r,
        Err(refusal) => return refuse(p, refusal),
    };
    let session_user = visitor.user.as_ref().map(|u| u.id);
    let always = p.inner.settings.oidc_rp_initiated_logout_always_prompt;
    let allow = sent("allow") && !sent("deny");
    if sent("deny") || (!allow && must_prompt(always, req.hint_user, session_user)) {
        return titled_error_page(
            p,
            StatusCode::BAD_REQUEST,
            "Still signed in",
            Some("logout_denied"),
            "You chose to stay signed in.",
        );
    }
    log_out(p, &req, visitor, StatusCode::SEE_OTHER).await
}

// ----- handlers -----

/// `GET logout/`.
pub(crate) async fn logout_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
) -> Response {
    if !enabled(&p) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let params = Params::parse(parts.uri.query().unwrap_or_default().as_bytes());
    as_visitor(&p, &parts, async |visitor| {
        request(&p, &parts, &params, visitor, StatusCode::FOUND).await
    })
    .await
}

/// `POST logout/`: the confirmation form, or a relying party's logout form.
pub(crate) async fn logout_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    if !enabled(&p) {
        return StatusCode::NOT_FOUND.into_response();
    }
    let params = Params::parse(&body);
    as_visitor(&p, &parts, async |visitor| {
        confirmation(&p, &parts, &params, visitor).await
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, GrantType};

    fn app(client_type: ClientType, uris: &str) -> Application {
        let now = Timestamp::now();
        Application {
            id: 1,
            client_id: "cid".into(),
            user_id: None,
            redirect_uris: String::new(),
            post_logout_redirect_uris: uris.into(),
            client_type,
            authorization_grant_type: GrantType::AuthorizationCode,
            client_secret: String::new(),
            hash_client_secret: true,
            name: "App".into(),
            skip_authorization: false,
            created: now,
            updated: now,
            algorithm: Algorithm::Rs256,
            allowed_origins: String::new(),
            pkce_required: None,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn prompt_rules() {
        // Nobody logged in: nothing to confirm.
        assert!(!must_prompt(true, None, None));
        assert!(!must_prompt(false, Some(1), None));
        // Always prompt.
        assert!(must_prompt(true, Some(1), Some(1)));
        // No hint, or another user's hint.
        assert!(must_prompt(false, None, Some(1)));
        assert!(must_prompt(false, Some(2), Some(1)));
        // The hint names the logged-in user.
        assert!(!must_prompt(false, Some(1), Some(1)));
    }

    #[test]
    fn client_of_the_hint() {
        let one = strings(&["a"]);
        let two = strings(&["a", "b"]);
        assert_eq!(issued_to(&one, None, None), Ok("a"));
        assert_eq!(issued_to(&one, None, Some("a")), Ok("a"));
        assert!(matches!(
            issued_to(&one, None, Some("b")),
            Err(Refusal::Invalid(_))
        ));
        assert_eq!(issued_to(&two, Some("b"), None), Ok("b"));
        assert!(matches!(
            issued_to(&two, Some("a"), Some("b")),
            Err(Refusal::Invalid(_))
        ));
        assert!(matches!(
            issued_to(&two, Some("c"), None),
            Err(Refusal::BadHint(_))
        ));
        assert!(matches!(
            issued_to(&two, None, None),
            Err(Refusal::BadHint(_))
        ));
        assert_eq!(issued_to(&two, None, Some("b")), Ok("b"));
        assert!(matches!(
            issued_to(&[], None, None),
            Err(Refusal::BadHint(_))
        ));
        let many: Vec<String> = (0..=MAX_AUDIENCES).map(|i| i.to_string()).collect();
        assert!(matches!(
            issued_to(&many, Some("0"), None),
            Err(Refusal::BadHint(_))
        ));
    }

    #[test]
    fn post_logout_redirect_uri_rules() {
        let s = Settings::default();
        let registered = "https://rp.example/bye http://rp.example/bye custom:/x";
        let public = app(ClientType::Public, registered);
        let ok = |s: &Settings, a: &Application, u: &str| check_post_logout_redirect_uri(s, a, u);
        assert!(ok(&s, &public, "https://rp.example/bye").is_ok());
        assert!(ok(&s, &public, "http://rp.example/bye").is_ok());
        for bad in [
            "https://rp.example/bye/",
            "https://rp.example/bye?x=1",
            "https://RP.example/bye2",
            "https://evil.example/bye",
            "https://rp.example/bye#f",
            "/bye",
            "",
            "custom:/x",
        ] {
            assert!(ok(&s, &public, bad).is_err(), "{bad}");
        }
        let strict = Settings {
            oidc_rp_initiated_logout_strict_redirect_uris: true,
            ..Settings::default()
        };
        assert!(ok(&strict, &public, "http://rp.example/bye").is_err());
        assert!(ok(&strict, &public, "https://rp.example/bye").is_ok());
        let confidential = app(ClientType::Confidential, registered);
        assert!(ok(&strict, &confidential, "http://rp.example/bye").is_ok());
        let custom = Settings {
            allowed_redirect_uri_schemes: vec!["https".into(), "custom".into()],
            ..Settings::default()
        };
        assert!(ok(&custom, &public, "custom:/x").is_ok());
        assert!(ok(&custom, &public, "http://rp.example/bye").is_err());
    }
}
