//! HTML pages and responses shared by the provider's pages (authorization, login,
//! logout): rendering a template with the security headers every page carries, the error
//! page, redirects, and identifying the visitor (session cookie or the host's user) around
//! a handler with the cookies it sets.
//!
//! Pages carry `Cache-Control: no-store`, `X-Frame-Options: DENY` and
//! `Content-Security-Policy: frame-ancestors 'none'` (RFC 6749 §10.13, clickjacking),
//! `Referrer-Policy: no-referrer` and `X-Content-Type-Options: nosniff`.

use axum::response::{IntoResponse, Response};
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use serde_json::{json, Value};

use super::error::{ErrorCode, OAuthError};
use super::session::Visitor;
use super::users::UserAuthenticator;
use super::Provider;
use crate::store::Store;

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

pub(crate) fn error_page<S, U>(
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
    titled_error_page(p, status, title, error.map(ErrorCode::as_str), description)
}

/// The error page (`error.html`) with its title.
pub(crate) fn titled_error_page<S, U>(
    p: &Provider<S, U>,
    status: StatusCode,
    title: &str,
    error: Option<&str>,
    description: &str,
) -> Response {
    render(
        p,
        status,
        "error.html",
        json!({
            "status": status.as_u16(),
            "title": title,
            "description": description,
            "error": error,
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

/// Runs a page handler for the visitor of `parts`: identifies them (a failure is the
/// error page), runs `page`, and adds the cookies the visit set (session, CSRF) to its
/// answer. Every page handler starts this way.
pub(crate) async fn as_visitor<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    page: impl AsyncFnOnce(&mut Visitor) -> Response,
) -> Response {
    let mut visitor = match identify(p, parts).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let res = page(&mut visitor).await;
    with_cookies(res, &visitor)
}
