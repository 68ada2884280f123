//! RFC 7662 token introspection: `GET`/`POST introspect/`.
//!
//! The caller is a resource server: it authenticates as a client (HTTP Basic or body
//! credentials) or with a Bearer token that has the `introspection` scope (DOT). The
//! answer for a live access token has `active`, `scope`, `exp`, `iat`, `client_id`,
//! `username`, `sub`, `token_type` and, when `OAUTH2_PROTECTED_RESOURCE_IDENTIFIER` is
//! set, `aud`; refresh tokens are introspected too (`token_type: "refresh_token"`). An
//! unknown, expired or revoked token is `{"active": false}` and nothing else (§2.2).

use axum::extract::{RawQuery, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, StatusCode};
use serde_json::{json, Map, Value};

use super::error::{json_response, no_store, OAuthError};
use super::params::Params;
use super::token::cors;
use super::users::UserAuthenticator;
use super::{client_auth, Provider};
use crate::crypto::token_checksum;
use crate::model::{Application, Timestamp};
use crate::store::Store;

/// The scope a Bearer token needs to call the introspection endpoint (DOT).
pub const INTROSPECTION_SCOPE: &str = "introspection";

/// `GET introspect/?token=…`.
pub(crate) async fn introspect_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::parse(query.unwrap_or_default().as_bytes());
    answer(&p, &headers, params).await
}

/// `POST introspect/` (form body).
pub(crate) async fn introspect_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = super::token::check_form(&headers) {
        return e.into_response();
    }
    answer(&p, &headers, Params::parse(&body)).await
}

async fn answer<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    headers: &HeaderMap,
    params: Params,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let mut app = None;
    let mut res = match introspect(p, headers, &params, &mut app).await {
        Ok(answer) => {
            let mut res = json_response(StatusCode::OK, answer.to_json());
            no_store(&mut res);
            res
        }
        Err(e) => e.into_response(),
    };
    cors(p, origin.as_ref(), app.as_deref(), &mut res);
    res
}

/// Why a caller may not introspect.
enum Denied {
    /// Client authentication failed (RFC 6749 §5.2).
    Client(OAuthError),
    /// The Bearer token is bad (401 `invalid_token`) or lacks the scope (403
    /// `insufficient_scope`), answered per RFC 6750 §3.
    Bearer(StatusCode, &'static str, &'static str),
}

impl From<OAuthError> for Denied {
    fn from(e: OAuthError) -> Self {
        Denied::Client(e)
    }
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::Client(e) => e.into_response(),
            Denied::Bearer(status, code, description) => {
                let mut res = json_response(
                    status,
                    json!({"error": code, "error_description": description}).to_string(),
                );
                let challenge = if code == "insufficient_scope" {
                    format!("Bearer error=\"{code}\", scope=\"{INTROSPECTION_SCOPE}\"")
                } else {
                    format!("Bearer error=\"{code}\"")
                };
                if let Ok(v) = http::HeaderValue::from_str(&challenge) {
                    res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                no_store(&mut res);
                res
            }
        }
    }
}

/// A resource server may introspect when it authenticates as a *confidential* client
/// (a public client id is no secret: RFC 7662 §2.1 requires authorization) or presents a
/// live Bearer token with the `introspection` scope (DOT).
async fn caller_is_authorized<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    headers: &HeaderMap,
    params: &Params,
    app_out: &mut Option<std::sync::Arc<Application>>,
) -> Result<(), Denied> {
    // The resource side's RFC 6750 parsing: two Authorization headers, or a malformed
    // Bearer one, are an invalid_request.
    let bearer = crate::resource::header_token(headers)
        .map_err(|e| OAuthError::invalid_request(format!("{e}.")))?;
    if let Some(token) = bearer {
        let found = p
            .inner
            .store
            .find_access_token(&token_checksum(token))
            .await
            .map_err(OAuthError::from)?;
        return match found {
            Some(d) if !d.token.is_expired(Timestamp::now()) => {
                if d.token.scope.split(' ').any(|s| s == INTROSPECTION_SCOPE) {
                    Ok(())
                } else {
                    Err(Denied::Bearer(
                        StatusCode::FORBIDDEN,
                        "insufficient_scope",
                        "The token lacks the introspection scope.",
                    ))
                }
            }
            _ => Err(Denied::Bearer(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "The access token is invalid or expired.",
            )),
        };
    }
    let app = client_auth::authenticate(&p.inner, headers, params).await?;
    if !app.is_confidential() {
        return Err(
            OAuthError::invalid_client("Only confidential clients may introspect tokens.").into(),
        );
    }
    *app_out = Some(app);
    Ok(())
}

async fn introspect<'p, S: Store, U: UserAuthenticator>(
    p: &'p Provider<S, U>,
    headers: &HeaderMap,
    params: &Params,
    app_out: &mut Option<std::sync::Arc<Application>>,
) -> Result<Answer<'p>, Denied> {
    caller_is_authorized(p, headers, params, app_out).await?;
    let token = params.require("token")?;
    let refresh_first = params.get("token_type_hint")? == Some("refresh_token");
    Ok(answer_for(&*p.inner.store, &p.inner.settings, token, refresh_first).await?)
}

/// The answer for an active access token, serialized straight from the stored row: the
/// members in the order a `serde_json::Map` sorts them, so the bytes are those the map
/// would give, without its dozen small allocations.
#[derive(serde::Serialize)]
struct ActiveAccess<'a> {
    active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Aud<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    exp: i64,
    iat: i64,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    token_type: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

/// RFC 7662 `aud`: the token's RFC 8707 resources (a string for one, an array for
/// several), else OAUTH2_PROTECTED_RESOURCE_IDENTIFIER.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Aud<'a> {
    Configured(&'a str),
    One(String),
    Many(Vec<String>),
}

impl<'a> Aud<'a> {
    fn of(stored: String, configured: &'a str) -> Option<Aud<'a>> {
        if stored.is_empty() {
            return (!configured.is_empty()).then_some(Aud::Configured(configured));
        }
        if !stored.contains(' ') {
            return Some(Aud::One(stored));
        }
        Some(Aud::Many(
            stored.split_ascii_whitespace().map(str::to_owned).collect(),
        ))
    }
}

/// An introspection answer.
enum Answer<'a> {
    /// An active access token (the hot path).
    Access(ActiveAccess<'a>),
    /// Anything else: an active refresh token, or `{"active": false}`.
    Other(Value),
}

impl Answer<'_> {
    fn to_json(&self) -> String {
        match self {
            Answer::Access(a) => serde_json::to_string(a).expect("introspection answers serialize"),
            Answer::Other(v) => v.to_string(),
        }
    }

    fn into_value(self) -> Value {
        match self {
            Answer::Access(a) => serde_json::to_value(a).expect("introspection answers serialize"),
            Answer::Other(v) => v,
        }
    }
}

/// The RFC 7662 answer for `token` (library entry point of the endpoint).
///
/// A token of a user who was deactivated or removed is inactive, as is a refresh token
/// unused for longer than `REFRESH_TOKEN_EXPIRE_SECONDS` (its `exp` is the end of that
/// idle window).
pub async fn introspect_token<S: Store>(
    store: &S,
    settings: &crate::settings::Settings,
    token: &str,
    refresh_first: bool,
) -> Result<Value, OAuthError> {
    Ok(answer_for(store, settings, token, refresh_first)
        .await?
        .into_value())
}

/// [`introspect_token`], as the endpoint serializes it.
async fn answer_for<'a, S: Store>(
    store: &S,
    settings: &'a crate::settings::Settings,
    token: &str,
    refresh_first: bool,
) -> Result<Answer<'a>, OAuthError> {
    let audience = settings.oauth2_protected_resource_identifier.as_str();
    let checksum = token_checksum(token);
    let now = Timestamp::now();
    for refresh in [refresh_first, !refresh_first] {
        if refresh {
            let Some(rt) = store.find_refresh_token(&checksum).await? else {
                continue;
            };
            if rt.revoked.is_some() {
                return Ok(Answer::Other(inactive()));
            }
            let idle_end = settings
                .refresh_token_expire_seconds
                .map(|idle| rt.created.plus(idle).unix());
            if idle_end.is_some_and(|end| end <= now.unix()) {
                return Ok(Answer::Other(inactive()));
            }
            if !user_is_active(store, rt.user_id).await? {
                return Ok(Answer::Other(inactive()));
            }
            let Some(app) = store.find_application(rt.application_id).await? else {
                return Ok(Answer::Other(inactive()));
            };
            let at = match rt.access_token_id {
                Some(id) => store.find_access_token_by_id(id).await?,
                None => None,
            };
            let mut m = Map::new();
            m.insert("active".into(), true.into());
            m.insert("token_type".into(), "refresh_token".into());
            m.insert("client_id".into(), app.client_id.into());
            m.insert("iat".into(), rt.created.unix().into());
            if let Some(end) = idle_end {
                m.insert("exp".into(), end.into());
            }
            if let Some(at) = at {
                m.insert("scope".into(), at.scope.into());
            }
            if let Some(aud) = Aud::of(rt.resource, "") {
                m.insert("aud".into(), serde_json::to_value(aud).unwrap_or_default());
            }
            if let Some(uid) = rt.user_id {
                add_user(store, &mut m, uid).await?;
            }
            return Ok(Answer::Other(Value::Object(m)));
        }
        let Some(d) = store.find_access_token(&checksum).await? else {
            continue;
        };
        if d.token.is_expired(now) || d.user_active == Some(false) {
            return Ok(Answer::Other(inactive()));
        }
        return Ok(Answer::Access(ActiveAccess {
            active: true,
            aud: Aud::of(d.token.resource, audience),
            client_id: d.client_id,
            exp: d.token.expires.unix(),
            iat: d.token.created.unix(),
            sub: d.token.user_id.map(|uid| uid.to_string()),
            scope: d.token.scope,
            token_type: "Bearer",
            username: d.username,
        }));
    }
    Ok(Answer::Other(inactive()))
}

async fn add_user<S: Store>(
    store: &S,
    m: &mut Map<String, Value>,
    uid: i64,
) -> Result<(), OAuthError> {
    m.insert("sub".into(), uid.to_string().into());
    if let Some(u) = store.find_user(uid).await? {
        m.insert("username".into(), u.username.into());
    }
    Ok(())
}

/// Whether the token's user (if any) still exists and is active.
async fn user_is_active<S: Store>(store: &S, user_id: Option<i64>) -> Result<bool, OAuthError> {
    match user_id {
        None => Ok(true),
        Some(id) => Ok(store.find_user(id).await?.is_some_and(|u| u.is_active)),
    }
}

fn inactive() -> Value {
    json!({"active": false})
}
