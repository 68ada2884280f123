//! The UserInfo endpoint (OIDC Core §5.3): `GET`/`POST userinfo/` with a Bearer access
//! token that has the `openid` scope; answers `sub` and the [`ClaimsProvider`]'s claims
//! for the token's scopes.
//!
//! The token is found with the resource side's RFC 6750 parsing (the `Authorization:
//! Bearer` header, or the `access_token` field of a form-encoded `POST` body) and errors
//! are its [`BearerError`]s, rendered the same way: no token → 401 without an error code,
//! a bad token → 401 `invalid_token`, a malformed request (two `Authorization` headers,
//! a token sent two ways) → 400 `invalid_request`, a token without `openid` → 403
//! `insufficient_scope` with `scope="openid"`. With
//! `OIDC_USERINFO_CORS_ENABLED` (default on) answers carry `Access-Control-Allow-Origin: *`
//! and preflights are answered, so browser apps can call it (the token is in a header,
//! never a cookie). 404 while OIDC is off.
//!
//! [`ClaimsProvider`]: super::id_token::ClaimsProvider

use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use crate::crypto::token_checksum;
use crate::model::Timestamp;
use crate::provider::error::{json_response, no_store};
use crate::provider::users::UserAuthenticator;
use crate::provider::Provider;
use crate::resource::BearerError;
use crate::scope::Scopes;
use crate::store::Store;

/// The realm of userinfo's `WWW-Authenticate` challenges.
const REALM: &str = "userinfo";

/// An RFC 6750 refusal, rendered by the resource side (status, `WWW-Authenticate` with
/// the required `openid` scope, JSON body).
fn refuse(error: &BearerError) -> Response {
    error.to_response(REALM, true).map(Body::from)
}

/// The bearer token of a userinfo request, found with the resource side's RFC 6750
/// parsing: the `Authorization` header, or (POST, §2.2) the `access_token` field of a
/// form-encoded body. Two `Authorization` headers, a malformed one, or a token sent both
/// ways are `invalid_request`.
fn token(headers: &HeaderMap, form: Option<&[u8]>) -> Result<String, BearerError> {
    let in_header = crate::resource::header_token(headers)?;
    let in_form = match form {
        Some(body) if crate::resource::form::is_form_urlencoded(headers) => {
            crate::resource::form_token(body, "access_token field")?
        }
        _ => None,
    };
    match (in_header, in_form) {
        (Some(_), Some(_)) => Err(BearerError::InvalidRequest(
            "the token was sent in more than one way".into(),
        )),
        (Some(t), None) => Ok(t.to_owned()),
        (None, Some(t)) => Ok(t.into_owned()),
        (None, None) => Err(BearerError::Missing),
    }
}

fn cors(p: &impl HasCors, res: &mut Response) {
    if p.userinfo_cors() {
        res.headers_mut().insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
    }
}

trait HasCors {
    fn userinfo_cors(&self) -> bool;
}

impl<S, U> HasCors for Provider<S, U> {
    fn userinfo_cors(&self) -> bool {
        self.inner.settings.oidc_userinfo_cors_enabled
    }
}

async fn userinfo<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    headers: &HeaderMap,
    form: Option<&[u8]>,
) -> Response {
    let inner = &p.inner;
    if inner.oidc.is_none() {
        return (StatusCode::NOT_FOUND, "OpenID Connect is not enabled\n").into_response();
    }
    let token = match token(headers, form) {
        Ok(t) => t,
        Err(e) => return refuse(&e),
    };
    let invalid = || {
        refuse(&BearerError::InvalidToken(
            "The access token is invalid, expired or revoked.".into(),
        ))
    };
    let details = match inner.store.find_access_token(&token_checksum(&token)).await {
        Ok(Some(d)) if !d.token.is_expired(Timestamp::now()) => d,
        Ok(_) => return invalid(),
        Err(e) => {
            tracing::error!(error = %e, "userinfo: token lookup failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let scopes = Scopes::parse(&details.token.scope).unwrap_or_default();
    if !scopes.contains("openid") {
        let openid = Scopes::parse("openid").unwrap_or_default();
        return refuse(&BearerError::InsufficientScope(openid));
    }
    // A token issued to the client itself has no end-user to describe.
    let Some(user_id) = details.token.user_id else {
        return invalid();
    };
    match inner.users.find_user(user_id).await {
        Ok(Some(_)) => {}
        Ok(None) => return invalid(),
        Err(e) => {
            tracing::error!(error = %e, "userinfo: user lookup failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    }
    let mut claims = match inner.claims.claims(user_id, &scopes).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "userinfo: claims provider failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    claims.insert("sub".into(), user_id.to_string().into());
    let mut res = json_response(StatusCode::OK, Value::Object(claims).to_string());
    no_store(&mut res);
    res
}

/// `GET userinfo/`.
pub(crate) async fn userinfo_get<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    headers: HeaderMap,
) -> Response {
    let mut res = userinfo(&p, &headers, None).await;
    cors(&p, &mut res);
    res
}

/// `POST userinfo/` (the token in the header, or as the `access_token` form field).
pub(crate) async fn userinfo_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut res = userinfo(&p, &headers, Some(&body)).await;
    cors(&p, &mut res);
    res
}

/// CORS preflight of `userinfo/`.
pub(crate) async fn userinfo_preflight<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
) -> Response {
    let mut res = StatusCode::NO_CONTENT.into_response();
    if p.inner.oidc.is_some() && p.userinfo_cors() {
        crate::provider::token::allow_preflight(res.headers_mut(), HeaderValue::from_static("*"));
    }
    res
}
