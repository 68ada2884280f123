//! Dynamic client registration: RFC 7591 `POST register/` and RFC 7592
//! `GET`/`PUT`/`DELETE register/<client_id>/`, with DOT's settings (`DCR_*`).
//!
//! All answer 404 while `DCR_ENABLED` is off. Who may register is
//! `DCR_REGISTRATION_POLICY` ([`DcrPolicy`]): a signed-in user (DOT's default; the request
//! must come from this server's own origin, as `application/json` — a cross-site page
//! can send neither without a CORS preflight, which is refused), an initial access token
//! (a bearer token of this server with `DCR_INITIAL_ACCESS_TOKEN_SCOPE`), or anyone. At
//! most `DCR_REGISTRATIONS_PER_HOUR` admitted registration requests are taken per client
//! address (429 after that; requests the policy refuses are not counted). The grant
//! types a registered client may have are `DCR_ALLOWED_GRANT_TYPES` (default
//! `authorization_code` and the device grant, which both involve a user; add
//! `client_credentials` only where registration is not open).
//!
//! The client metadata is checked with the rules of `createapplication`
//! ([`application::validate`](crate::application::validate)): redirect-URI problems are
//! `invalid_redirect_uri`, everything else `invalid_client_metadata` (RFC 7591 §3.2.2).
//! Supported: `redirect_uris`, `token_endpoint_auth_method` (`client_secret_basic`, the
//! default, `client_secret_post`, or `none` for a public client), `grant_types` and
//! `response_types` (one grant type per client, DOT's model, plus `refresh_token`),
//! `client_name`, `scope` (checked against the scopes this server knows; recorded, not a
//! restriction), `post_logout_redirect_uris`, `id_token_signed_response_alg` (`RS256`),
//! and the informational `client_uri`, `logo_uri`, `tos_uri`, `policy_uri`, `contacts`,
//! `software_id`, `software_version`. Other members are ignored (§2), software
//! statements included.
//!
//! The answer (201) carries the generated `client_id`, the `client_secret` of a
//! confidential client (shown once; stored hashed), the `registration_access_token`
//! (stored as a checksum in `oauth2_registration`, expiring after
//! `DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS` or never) and the `registration_client_uri`.
//! That token, with `DCR_REGISTRATION_SCOPE`, is the only credential RFC 7592 accepts:
//! a wrong, expired or foreign token is 401 `invalid_token`. Reads and updates answer
//! with the token in use (RFC 7592 §3). `PUT` replaces the
//! metadata (the client type cannot change) and, with
//! `DCR_ROTATE_REGISTRATION_TOKEN_ON_UPDATE`, answers with a new token (the old one stops
//! working); `DELETE` removes the client and everything issued to it (204).

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderValue, StatusCode};
use moka::future::Cache;
use serde_json::{json, Map, Value};

use super::client_metadata::{invalid, parse_metadata, Metadata};
use super::error::{json_response, no_store, OAuthError};
use super::users::UserAuthenticator;
use super::Provider;
use crate::application::{self, RegisterError};
use crate::crypto::{constant_time_eq, token_checksum};
use crate::generators::{generate_token, UNICODE_ASCII_CHARACTER_SET};
use crate::model::{Application, ClientType, NewRegistration, Registration, Timestamp};
use crate::scope::Scopes;
use crate::settings::DcrPolicy;
use crate::store::{Store, StoreError};

/// Length of a registration access token.
const TOKEN_LENGTH: usize = 48;

/// Registration requests per client address in the current hour.
#[derive(Clone)]
pub(crate) struct RateLimit {
    counts: Cache<Option<IpAddr>, Arc<AtomicUsize>>,
}

impl RateLimit {
    pub(crate) fn new() -> Self {
        RateLimit {
            counts: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(3600))
                .build(),
        }
    }

    /// Counts one request from `addr` (an unknown address shares one count); false once
    /// `limit` requests came within the hour (0: no limit).
    async fn admit(&self, addr: Option<IpAddr>, limit: usize) -> bool {
        if limit == 0 {
            return true;
        }
        let count = self
            .counts
            .get_with(addr, async { Arc::new(AtomicUsize::new(0)) })
            .await;
        count.fetch_add(1, Ordering::Relaxed) < limit
    }
}

impl std::fmt::Debug for RateLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimit")
            .field("addresses", &self.counts.entry_count())
            .finish()
    }
}

/// An RFC 7591 §3.2.2 / RFC 6750 error answer.
#[derive(Debug)]
pub(super) enum Refusal {
    /// 400 with an RFC 7591 code.
    Metadata(&'static str, String),
    /// 401 `invalid_token` (a bad registration or initial access token).
    Token(String),
    /// 403: the policy refuses this caller.
    Forbidden(String),
    /// 404: registration is off, or no such client.
    NotFound,
    /// 429: too many registrations from this address.
    TooMany,
    /// A store or server failure (503 / 500).
    OAuth(OAuthError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Self {
        Refusal::OAuth(e.into())
    }
}

impl From<OAuthError> for Refusal {
    fn from(e: OAuthError) -> Self {
        Refusal::OAuth(e)
    }
}

pub(super) fn metadata_error(description: impl Into<String>) -> Refusal {
    Refusal::Metadata("invalid_client_metadata", description.into())
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = |error: &str, description: &str| {
            json!({"error": error, "error_description": description}).to_string()
        };
        let mut res = match self {
            Refusal::Metadata(code, d) => json_response(StatusCode::BAD_REQUEST, body(code, &d)),
            Refusal::Token(d) => {
                let mut res = json_response(StatusCode::UNAUTHORIZED, body("invalid_token", &d));
                res.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"register\", error=\"invalid_token\""),
                );
                res
            }
            Refusal::Forbidden(d) => {
                json_response(StatusCode::FORBIDDEN, body("access_denied", &d))
            }
            Refusal::NotFound => json_response(
                StatusCode::NOT_FOUND,
                body("not_found", "No such registration endpoint or client."),
            ),
            Refusal::TooMany => {
                let mut res = json_response(
                    StatusCode::TOO_MANY_REQUESTS,
                    body(
                        "temporarily_unavailable",
                        "Too many registrations from this address; try again later.",
                    ),
                );
                res.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
                res
            }
            Refusal::OAuth(e) => return e.into_response(),
        };
        no_store(&mut res);
        res
    }
}

fn is_json(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
}

fn bearer(parts: &http::request::Parts) -> Result<&str, Refusal> {
    match crate::resource::header_token(&parts.headers) {
        Ok(Some(t)) => Ok(t),
        Ok(None) => Err(Refusal::Token("A bearer token is required.".into())),
        Err(e) => Err(Refusal::Token(e.to_string())),
    }
}

/// `DCR_REGISTRATION_POLICY`: the owner of the new client, if the policy names one.
async fn admit<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &http::request::Parts,
) -> Result<Option<i64>, Refusal> {
    let inner = &p.inner;
    let s = &*inner.settings;
    match s.dcr_registration_policy {
        DcrPolicy::Open => Ok(None),
        DcrPolicy::InitialAccessToken => {
            let token = bearer(parts)?;
            let now = Timestamp::now();
            let good = inner
                .store
                .find_access_token(&token_checksum(token))
                .await?
                .filter(|d| !d.token.is_expired(now) && d.user_active != Some(false))
                .filter(|d| {
                    Scopes::parse(&d.token.scope)
                        .is_ok_and(|sc| sc.contains(&s.dcr_initial_access_token_scope))
                });
            match good {
                Some(d) => Ok(d.token.user_id),
                None => Err(Refusal::Token(
                    "The initial access token is not valid for registration.".into(),
                )),
            }
        }
        DcrPolicy::Authenticated => {
            let visitor = super::session::Visitor::identify(
                &inner.users,
                &inner.keys,
                s,
                inner.issuer.as_ref(),
                parts,
            )
            .await?;
            let Some(user) = visitor.user else {
                return Err(Refusal::Forbidden("Sign in to register a client.".into()));
            };
            // CSRF: a signed-in browser may be made to post here by another site; such a
            // request says so (Sec-Fetch-Site) or names its origin.
            let own = super::oidc::request_url(s, inner.issuer.as_ref(), parts);
            let own_origin = url::Url::parse(&own)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            let headers = &parts.headers;
            let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
            let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
            let cross_site = site.is_some_and(|v| !matches!(v, "same-origin" | "none"))
                || origin.is_some_and(|o| o != own_origin);
            if cross_site {
                return Err(Refusal::Forbidden(
                    "Registration with a session is accepted from this server's own pages only."
                        .into(),
                ));
            }
            Ok(Some(user.id))
        }
    }
}

/// A new registration access token and its row's token fields.
fn new_token(
    settings: &crate::settings::Settings,
    now: Timestamp,
) -> (String, String, Option<Timestamp>) {
    let token = generate_token(TOKEN_LENGTH, UNICODE_ASCII_CHARACTER_SET.as_bytes());
    let expires = settings
        .dcr_registration_token_expire_seconds
        .filter(|d| !d.is_zero())
        .map(|d| now.plus(d));
    let checksum = token_checksum(&token);
    (token, checksum, expires)
}

/// The client information response (RFC 7591 §3.2.1, RFC 7592 §3).
fn information(
    base: &str,
    app: &Application,
    registration: &Registration,
    secret: Option<&str>,
    token: Option<&str>,
) -> Map<String, Value> {
    let mut m: Map<String, Value> =
        serde_json::from_str(&registration.metadata).unwrap_or_default();
    m.insert("client_id".into(), app.client_id.clone().into());
    m.insert(
        "client_id_issued_at".into(),
        registration.created.unix().into(),
    );
    if app.client_type == ClientType::Confidential {
        if let Some(secret) = secret {
            m.insert("client_secret".into(), secret.into());
        }
        // The secret does not expire.
        m.insert("client_secret_expires_at".into(), 0.into());
    }
    if let Some(token) = token {
        m.insert("registration_access_token".into(), token.into());
    }
    m.insert(
        "registration_client_uri".into(),
        format!("{base}/register/{}/", app.client_id).into(),
    );
    m
}

fn answer(status: StatusCode, m: Map<String, Value>) -> Response {
    let mut res = json_response(status, Value::Object(m).to_string());
    no_store(&mut res);
    res
}

fn base<S, U>(p: &Provider<S, U>, parts: &http::request::Parts) -> String {
    super::oidc::discovery::base_url(&p.inner.settings, p.inner.issuer.as_ref(), parts)
}

/// `POST register/` (RFC 7591 §3.1).
pub(crate) async fn register_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: http::request::Parts,
    body: Bytes,
) -> Response {
    match register(&p, &parts, &body).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn register<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &http::request::Parts,
    body: &[u8],
) -> Result<Response, Refusal> {
    let inner = &p.inner;
    let s = &*inner.settings;
    if !s.dcr_enabled {
        return Err(Refusal::NotFound);
    }
    if !is_json(&parts.headers) {
        return Err(metadata_error(
            "The request body must be application/json (RFC 7591 §3.1).",
        ));
    }
    let owner = admit(p, parts).await?;
    // Counted once the policy admitted the caller: junk requests cannot use up the
    // budget of the others.
    let addr = super::throttle::client_addr(&parts.extensions);
    if !inner
        .registrations
        .admit(addr, s.dcr_registrations_per_hour)
        .await
    {
        tracing::warn!(client_addr = ?addr, "dynamic registration refused: rate limit");
        return Err(Refusal::TooMany);
    }
    let Metadata { mut spec, echo } = parse_metadata(p, body)?;
    spec.user_id = owner;
    let (new, secret) = match application::prepare(&*inner.store, s, &inner.generators, &spec).await
    {
        Ok(v) => v,
        Err(RegisterError::Invalid(errors)) => return Err(invalid(errors)),
        Err(RegisterError::Store(e)) => return Err(e.into()),
    };
    let now = Timestamp::now();
    let (token, checksum, expires) = new_token(s, now);
    let registration = NewRegistration {
        token_checksum: checksum,
        scope: s.dcr_registration_scope.clone(),
        expires,
        metadata: Value::Object(echo).to_string(),
        created: now,
    };
    let (app, registration) = match inner.store.register_application(new, registration).await {
        Ok(v) => v,
        // A generated client id taken by another registration at the same moment.
        Err(StoreError::Conflict(_)) => {
            return Err(Refusal::OAuth(OAuthError::new(
                super::error::ErrorCode::TemporarilyUnavailable,
                "The registration could not be completed; try again.",
            )))
        }
        Err(e) => return Err(e.into()),
    };
    tracing::info!(client_id = %app.client_id, grant_type = %app.authorization_grant_type, "client registered (RFC 7591)");
    let m = information(
        &base(p, parts),
        &app,
        &registration,
        secret.as_deref(),
        Some(&token),
    );
    Ok(answer(StatusCode::CREATED, m))
}

/// The registration of a management request: its bearer token must be a live
/// registration access token, with `DCR_REGISTRATION_SCOPE`, of the client in the path.
async fn authorized<'r, S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &'r http::request::Parts,
    client_id: &str,
) -> Result<(Application, Registration, &'r str), Refusal> {
    let inner = &p.inner;
    let s = &*inner.settings;
    if !s.dcr_enabled {
        return Err(Refusal::NotFound);
    }
    let token = bearer(parts)?;
    let refused =
        || Refusal::Token("The registration access token is not valid for this client.".into());
    let Some(registration) = inner
        .store
        .find_registration(&token_checksum(token))
        .await?
    else {
        return Err(refused());
    };
    let scope_ok =
        Scopes::parse(&registration.scope).is_ok_and(|sc| sc.contains(&s.dcr_registration_scope));
    if !registration.token_is_live(Timestamp::now()) || !scope_ok {
        return Err(refused());
    }
    let Some(app) = inner
        .store
        .find_application(registration.application_id)
        .await?
    else {
        return Err(refused());
    };
    if !constant_time_eq(app.client_id.as_bytes(), client_id.as_bytes()) {
        return Err(refused());
    }
    Ok((app, registration, token))
}

/// `GET register/<client_id>/` (RFC 7592 §2.1).
pub(crate) async fn registration_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    Path(client_id): Path<String>,
    parts: http::request::Parts,
) -> Response {
    match authorized(&p, &parts, &client_id).await {
        // RFC 7592 §3: the answer carries the registration access token in use.
        Ok((app, registration, token)) => answer(
            StatusCode::OK,
            information(&base(&p, &parts), &app, &registration, None, Some(token)),
        ),
        Err(e) => e.into_response(),
    }
}

/// `PUT register/<client_id>/` (RFC 7592 §2.2).
pub(crate) async fn registration_put<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    Path(client_id): Path<String>,
    parts: http::request::Parts,
    body: Bytes,
) -> Response {
    match update(&p, &parts, &client_id, &body).await {
        Ok(res) => res,
        Err(e) => e.into_response(),
    }
}

async fn update<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &http::request::Parts,
    client_id: &str,
    body: &[u8],
) -> Result<Response, Refusal> {
    let inner = &p.inner;
    let s = &*inner.settings;
    let (mut app, mut registration, presented) = authorized(p, parts, client_id).await?;
    let presented_checksum = token_checksum(presented);
    if !is_json(&parts.headers) {
        return Err(metadata_error(
            "The request body must be application/json (RFC 7592 §2.2).",
        ));
    }
    let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| {
        metadata_error("The request body must be a JSON object of client metadata.")
    })?;
    // §2.2: the request names the client, and never the server's own fields.
    if object.get("client_id").and_then(Value::as_str) != Some(client_id) {
        return Err(Refusal::Metadata(
            "invalid_request",
            "The request must carry this client's client_id.".into(),
        ));
    }
    for field in [
        "registration_access_token",
        "registration_client_uri",
        "client_id_issued_at",
        "client_secret_expires_at",
    ] {
        if object.contains_key(field) {
            return Err(Refusal::Metadata(
                "invalid_request",
                format!("{field} is set by the server and must not be sent."),
            ));
        }
    }
    if let Some(secret) = object.get("client_secret") {
        let presented = secret.as_str().unwrap_or_default().to_owned();
        let stored = app.clone();
        let matches = crate::hashers::in_hash_pool(move || {
            crate::hashers::check_client_secret(&stored, &presented)
        })
        .await
        .map_err(|e| Refusal::OAuth(OAuthError::from(StoreError::Unavailable(e.to_string()))))?;
        if !matches {
            return Err(Refusal::Metadata(
                "invalid_request",
                "The client_secret does not match this client's.".into(),
            ));
        }
    }
    let Metadata { spec, echo } = parse_metadata(p, body)?;
    if spec.client_type != app.client_type {
        return Err(metadata_error(
            "The token_endpoint_auth_method cannot change between none and a client secret: register a new client.",
        ));
    }
    let mut check = spec.clone();
    check.client_secret = None;
    let errors = application::validate(&check, s);
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    app.redirect_uris = spec.redirect_uris;
    app.post_logout_redirect_uris = spec.post_logout_redirect_uris;
    app.authorization_grant_type = spec.authorization_grant_type;
    app.name = spec.name;
    app.updated = Timestamp::now();
    registration.metadata = Value::Object(echo).to_string();
    let token = if s.dcr_rotate_registration_token_on_update {
        let (token, checksum, expires) = new_token(s, app.updated);
        registration.token_checksum = checksum;
        registration.expires = expires;
        registration.scope = s.dcr_registration_scope.clone();
        token
    } else {
        presented.to_owned()
    };
    if !inner
        .store
        .update_registration(&app, &registration, &presented_checksum)
        .await?
    {
        // Rotated or deleted by another request since this one's token was checked.
        return Err(Refusal::Token(
            "The registration access token is not valid for this client.".into(),
        ));
    }
    inner.applications.forget(&app.client_id).await;
    tracing::info!(client_id = %app.client_id, "client registration updated (RFC 7592)");
    let m = information(&base(p, parts), &app, &registration, None, Some(&token));
    Ok(answer(StatusCode::OK, m))
}

/// `DELETE register/<client_id>/` (RFC 7592 §2.3): the client and all it was issued.
pub(crate) async fn registration_delete<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    Path(client_id): Path<String>,
    parts: http::request::Parts,
) -> Response {
    let result = async {
        let (app, _, _) = authorized(&p, &parts, &client_id).await?;
        p.inner.store.delete_application(app.id).await?;
        p.inner.applications.forget(&app.client_id).await;
        tracing::info!(client_id = %app.client_id, "client registration deleted (RFC 7592)");
        Ok::<_, Refusal>(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut res = StatusCode::NO_CONTENT.into_response();
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    }
}
