//! The UserInfo endpoint (OIDC Core §5.3): `GET`/`POST userinfo/` with a Bearer access
//! token that has the `openid` scope; answers `sub` and the [`ClaimsProvider`]'s claims
//! for the token's scopes.
//!
//! Errors follow RFC 6750 §3: no or a bad token → 401 `invalid_token` (no error code when
//! there is no token at all), a token without `openid` → 403 `insufficient_scope`. With
//! `OIDC_USERINFO_CORS_ENABLED` (default on) answers carry `Access-Control-Allow-Origin: *`
//! and preflights are answered, so browser apps can call it (the token is in a header,
//! never a cookie). 404 while OIDC is off.
//!
//! [`ClaimsProvider`]: super::id_token::ClaimsProvider

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{json, Value};

use crate::crypto::token_checksum;
use crate::model::Timestamp;
use crate::provider::error::{json_response, no_store};
use crate::provider::users::UserAuthenticator;
use crate::provider::Provider;
use crate::scope::Scopes;
use crate::store::Store;

fn bearer_error(status: StatusCode, code: Option<&str>, description: &str) -> Response {
    let mut res = match code {
        Some(code) => json_response(
            status,
            json!({"error": code, "error_description": description}).to_string(),
        ),
        None => status.into_response(),
    };
    let challenge = match code {
        Some("insufficient_scope") => {
            "Bearer realm=\"userinfo\", error=\"insufficient_scope\", scope=\"openid\"".to_owned()
        }
        Some(code) => format!("Bearer realm=\"userinfo\", error=\"{code}\""),
        None => "Bearer realm=\"userinfo\"".to_owned(),
    };
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// The bearer token of a userinfo request: the Authorization header, or (POST, RFC 6750
/// §2.2) the `access_token` form field.
/// `Err(())`: a malformed Authorization header.
fn token(headers: &HeaderMap, form: Option<&[u8]>) -> Result<Option<String>, ()> {
    if let Some(v) = headers.get(header::AUTHORIZATION) {
        let v = v.to_str().unwrap_or_default();
        return match v.split_once(' ') {
            Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") && !t.trim().is_empty() => {
                Ok(Some(t.trim().to_owned()))
            }
            _ => Err(()),
        };
    }
    let Some(form) = form else { return Ok(None) };
    let form_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';').next().is_some_and(|t| {
                t.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
        });
    if !form_type {
        return Ok(None);
    }
    Ok(url::form_urlencoded::parse(form)
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned()))
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
        Ok(Some(t)) => t,
        Ok(None) => return bearer_error(StatusCode::UNAUTHORIZED, None, ""),
        Err(()) => {
            return bearer_error(
                StatusCode::BAD_REQUEST,
                Some("invalid_request"),
                "The Authorization header must be \"Bearer\" and a token.",
            )
        }
    };
    let invalid = || {
        bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "The access token is invalid, expired or revoked.",
        )
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
        return bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "The access token lacks the openid scope.",
        );
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
