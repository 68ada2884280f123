//! The built-in login page: `GET login/` shows the form, `POST login/` checks the CSRF
//! token and the credentials with
//! [`UserAuthenticator::authenticate`](crate::provider::UserAuthenticator::authenticate),
//! starts the session and returns to `next` — only ever one of the provider's own pages.

use axum::extract::{NestedPath, State};
use axum::response::Response;
use bytes::Bytes;
use http::request::Parts;
use http::StatusCode;
use serde_json::json;

use crate::provider::error::OAuthError;
use crate::provider::pages::{as_visitor, error_page, redirect, render};
use crate::provider::params::Params;
use crate::provider::session::{Visitor, CSRF_FIELD};
use crate::provider::users::UserAuthenticator;
use crate::provider::Provider;
use crate::store::Store;

/// Longest `next` followed after a login.
const MAX_NEXT_LEN: usize = 8192;

/// The path the router is mounted at, when it is a literal path (`/o`).
pub(crate) fn literal_prefix(parts: &Parts) -> Option<&str> {
    parts
        .extensions
        .get::<NestedPath>()
        .map(NestedPath::as_str)
        .filter(|p| !p.contains(['{', '}', '*']))
        .map(|p| p.trim_end_matches('/'))
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
    as_visitor(&p, &parts, async |visitor| {
        let next = params
            .get("next")
            .ok()
            .flatten()
            .and_then(|n| safe_next(n, literal_prefix(&parts)));
        let token = visitor.login_csrf_token(&p.inner.keys);
        login_page(&p, &token, next, "", None)
    })
    .await
}

/// `POST login/`.
pub(crate) async fn login_post<S: Store, U: UserAuthenticator>(
    State(p): State<Provider<S, U>>,
    parts: Parts,
    body: Bytes,
) -> Response {
    let params = Params::parse(&body);
    as_visitor(&p, &parts, async |visitor| {
        login_post_inner(&p, &parts, &params, visitor).await
    })
    .await
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
    let throttle = &p.inner.throttle;
    let addr = crate::provider::throttle::client_addr(&parts.extensions);
    if let Some(locked) = throttle.login_locked(username, addr).await {
        tracing::info!("login refused: too many failed sign-ins");
        let message = format!(
            "Too many failed sign-ins for this account or from this address. Try again in {} seconds.",
            locked.seconds()
        );
        let mut res = login_page(p, &token, next, username, Some(&message));
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        res.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from(locked.seconds()),
        );
        return res;
    }
    let user = match p.inner.users.authenticate(username, password).await {
        Ok(u) => u,
        Err(e) => {
            // A busy database or slow-hash pool is 503, anything else 500.
            let e = OAuthError::from(e);
            return error_page(p, e.status(), Some(e.code), &e.description);
        }
    };
    let Some(user) = user else {
        tracing::info!("login failed: wrong credentials");
        throttle.login_failed(username, addr).await;
        return login_page(
            p,
            &token,
            next,
            username,
            Some("Please enter a correct username and password. Note that both fields may be case-sensitive."),
        );
    };
    throttle.login_succeeded(username).await;
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
}
