//! The bearer layer with the local `StoreValidator` on a real SQLite file: valid, expired,
//! revoked and unknown tokens, scope policies per method, and the validated token reaching
//! the handler.
#![cfg(all(feature = "resource", feature = "sqlite"))]

mod common;

use std::sync::Arc;

use http::{Method, Request, StatusCode};
use tower::{service_fn, Layer, ServiceExt};
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::resource::{
    BearerLayer, ScopePolicy, StoreValidator, TokenInfo, TokenValidator,
};
use tower_oauth_toolkit::store::{IssueTokens, Store};

async fn seeded() -> (
    Arc<tower_oauth_toolkit::store::sql::SqlStore>,
    tempfile::TempDir,
    i64,
) {
    let (store, dir) = common::sqlite_store().await;
    let store = Arc::new(store);
    let app = store
        .create_application(NewApplication::new(
            "api-client",
            ClientType::Confidential,
            GrantType::ClientCredentials,
        ))
        .await
        .unwrap();
    let now = Timestamp::now();
    for (value, expires, scope) in [
        ("valid-rw", now.add_secs(600), "read write"),
        ("valid-r", now.add_secs(600), "read"),
        ("expired", now.sub_secs(1), "read write"),
        ("to-revoke", now.add_secs(600), "read write"),
    ] {
        store
            .issue_tokens(IssueTokens {
                access: NewAccessToken {
                    resource: String::new(),
                    token_checksum: token_checksum(value),
                    application_id: Some(app.id),
                    user_id: None,
                    source_refresh_token_id: None,
                    id_token_id: None,
                    grant_id: None,
                    expires,
                    scope: scope.into(),
                    created: now,
                },
                refresh: None,
                id_token: None,
            })
            .await
            .unwrap();
    }
    let revoke = store
        .find_access_token(&token_checksum("to-revoke"))
        .await
        .unwrap()
        .unwrap();
    store
        .revoke_access_token(revoke.token.id, now)
        .await
        .unwrap();
    (store, dir, app.id)
}

async fn status(
    policy: ScopePolicy,
    method: Method,
    token: Option<&str>,
    store: &Arc<tower_oauth_toolkit::store::sql::SqlStore>,
) -> (StatusCode, Option<String>) {
    let echo = service_fn(
        |req: Request<http_body_util::Empty<bytes_crate::Bytes>>| async move {
            let info = req.extensions().get::<Arc<TokenInfo>>().cloned();
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes_crate::Bytes::from(
                    info.and_then(|i| i.client_id.clone()).unwrap_or_default(),
                ),
            )))
        },
    );
    let svc = BearerLayer::new(StoreValidator::new(store.clone()))
        .with_policy(policy)
        .layer(echo);
    let mut req = Request::builder().method(method).uri("/");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = svc
        .oneshot(req.body(http_body_util::Empty::new()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    use http_body_util::BodyExt;
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, Some(String::from_utf8_lossy(&body).into_owned()))
}

use bytes as bytes_crate;

#[tokio::test]
async fn store_tokens_through_the_layer() {
    let (store, _dir, _) = seeded().await;
    let (s, body) = status(
        ScopePolicy::Authenticated,
        Method::GET,
        Some("valid-r"),
        &store,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        body.as_deref(),
        Some("api-client"),
        "the handler saw the validated token"
    );
    assert_eq!(
        status(
            ScopePolicy::Authenticated,
            Method::GET,
            Some("expired"),
            &store
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(
            ScopePolicy::Authenticated,
            Method::GET,
            Some("to-revoke"),
            &store
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(
            ScopePolicy::Authenticated,
            Method::GET,
            Some("never-issued"),
            &store
        )
        .await
        .0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(ScopePolicy::Authenticated, Method::GET, None, &store)
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn read_write_policy_by_method() {
    let (store, _dir, _) = seeded().await;
    let rw = ScopePolicy::read_write;
    assert_eq!(
        status(rw(), Method::GET, Some("valid-r"), &store).await.0,
        StatusCode::OK
    );
    assert_eq!(
        status(rw(), Method::POST, Some("valid-r"), &store).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        status(rw(), Method::DELETE, Some("valid-rw"), &store)
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        status(
            ScopePolicy::required("write"),
            Method::GET,
            Some("valid-r"),
            &store
        )
        .await
        .0,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn the_inner_service_is_not_called_on_rejection() {
    let (store, _dir, _) = seeded().await;
    let called = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = called.clone();
    let inner = service_fn(move |_req: Request<String>| {
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
        async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes_crate::Bytes::new(),
            )))
        }
    });
    let svc = BearerLayer::new(StoreValidator::new(store)).layer(inner);
    let req = Request::builder()
        .header("authorization", "Bearer expired")
        .body(String::new())
        .unwrap();
    assert_eq!(
        svc.oneshot(req).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert!(!called.load(std::sync::atomic::Ordering::SeqCst));
}

#[cfg(feature = "axum")]
mod axum_extractors {
    use super::*;
    use axum::routing::get;
    use axum::Router;
    use tower_oauth_toolkit::resource::extract::BearerToken;

    async fn get_status(app: &Router, path: &str, token: Option<&str>) -> (StatusCode, String) {
        let mut req = Request::builder().uri(path);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let res = app
            .clone()
            .oneshot(req.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap();
        let status = res.status();
        let www = res
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, www)
    }

    #[tokio::test]
    async fn extractors_and_optional_mode() {
        let (store, _dir, _) = seeded().await;
        let validator = StoreValidator::new(store);
        async fn required(BearerToken(t): BearerToken) -> String {
            t.client_id.clone().unwrap_or_default()
        }
        async fn maybe(t: Option<BearerToken>) -> String {
            match t {
                Some(t) => format!("token {}", t.scopes),
                None => "anonymous".into(),
            }
        }
        let protected = Router::new()
            .route("/me", get(required))
            .layer(BearerLayer::new(validator.clone()));
        let optional = Router::new()
            .route("/maybe", get(maybe))
            .layer(BearerLayer::new(validator).optional());
        // A route where the layer was forgotten: fail closed with the RFC 6750 answer.
        let forgotten = Router::new().route("/oops", get(required));
        let app = protected.merge(optional).merge(forgotten);

        assert_eq!(
            get_status(&app, "/me", Some("valid-r")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            get_status(&app, "/me", None).await.0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            get_status(&app, "/maybe", None).await.0,
            StatusCode::OK,
            "no token: passes, anonymous"
        );
        assert_eq!(
            get_status(&app, "/maybe", Some("valid-r")).await.0,
            StatusCode::OK
        );
        assert_eq!(
            get_status(&app, "/maybe", Some("expired")).await.0,
            StatusCode::UNAUTHORIZED,
            "a bad token is still refused"
        );
        let (status, www) = get_status(&app, "/oops", Some("valid-r")).await;
        assert_eq!(
            status,
            StatusCode::UNAUTHORIZED,
            "missing layer: 401, not 500"
        );
        assert_eq!(www, "Bearer realm=\"api\"");
    }

    /// RFC 6750 §2.2, opted in: the token in a form body, the body intact for the handler.
    #[tokio::test]
    async fn form_body_method() {
        use axum::routing::post;
        let (store, _dir, _) = seeded().await;
        let validator = StoreValidator::new(store);
        async fn echo(BearerToken(t): BearerToken, body: String) -> String {
            format!("{} {}", t.scopes, body)
        }
        let with_form = Router::new()
            .route("/form", post(echo).put(echo).get(echo))
            .layer(BearerLayer::new(validator.clone()).allow_form_body(64));
        let without = Router::new()
            .route("/plain", post(echo))
            .layer(BearerLayer::new(validator));
        let app = with_form.merge(without);
        let send =
            |method: Method, path: &str, ctype: Option<&str>, auth: Option<&str>, body: &str| {
                let mut req = Request::builder().method(method).uri(path);
                if let Some(c) = ctype {
                    req = req.header("content-type", c);
                }
                if let Some(t) = auth {
                    req = req.header("authorization", format!("Bearer {t}"));
                }
                let req = req.body(axum::body::Body::from(body.to_owned())).unwrap();
                let app = app.clone();
                async move {
                    let res = app.oneshot(req).await.unwrap();
                    let status = res.status();
                    let www = res
                        .headers()
                        .get("www-authenticate")
                        .map(|v| v.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let body = axum::body::to_bytes(res.into_body(), 1 << 16)
                        .await
                        .unwrap();
                    (status, String::from_utf8_lossy(&body).into_owned(), www)
                }
            };
        let form = Some("application/x-www-form-urlencoded");
        let (s, body, _) = send(
            Method::POST,
            "/form",
            form,
            None,
            "a=1&access_token=valid-r&b=2",
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            body, "read a=1&access_token=valid-r&b=2",
            "the handler read the whole body"
        );
        let (s, _, _) = send(
            Method::PUT,
            "/form",
            Some("Application/X-WWW-Form-Urlencoded; charset=utf-8"),
            None,
            "access_token=valid-rw",
        )
        .await;
        assert_eq!(
            s,
            StatusCode::OK,
            "media type matched case-insensitively, parameters allowed"
        );
        // Conditions of §2.2: not GET, the form media type.
        let (s, _, www) = send(Method::GET, "/form", form, None, "access_token=valid-r").await;
        assert_eq!(
            (s, www.as_str()),
            (StatusCode::UNAUTHORIZED, "Bearer realm=\"api\""),
            "GET: no token"
        );
        let (s, _, _) = send(
            Method::POST,
            "/form",
            Some("text/plain"),
            None,
            "access_token=valid-r",
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "not a form body");
        // Off by default.
        let (s, _, _) = send(Method::POST, "/plain", form, None, "access_token=valid-r").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "form method off by default");
        // A bad token in the body is looked up like any other.
        let (s, _, www) = send(Method::POST, "/form", form, None, "access_token=expired").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(www.contains("error=\"invalid_token\""), "{www}");
        // Two tokens in the body, a malformed one, a body over the limit: invalid_request.
        for body in [
            "access_token=valid-r&access_token=valid-rw",
            "access_token=a%20b",
            &format!("access_token=valid-r&pad={}", "x".repeat(64)),
        ] {
            let (s, _, www) = send(Method::POST, "/form", form, None, body).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
            assert!(www.contains("error=\"invalid_request\""), "{www}");
        }
        // A header token wins and the body is not searched: it reaches the handler as sent.
        let (s, body, _) = send(
            Method::POST,
            "/form",
            form,
            Some("valid-rw"),
            "access_token=whatever",
        )
        .await;
        assert_eq!(
            (s, body.as_str()),
            (StatusCode::OK, "read write access_token=whatever")
        );
    }
}

/// The synchronous path (a cache hit answers in `call`) applies the same scope policy and
/// hands the same token to the handler as the asynchronous one.
#[tokio::test]
async fn cached_answers_go_through_the_policy() {
    let (store, _dir, _) = seeded().await;
    let validator =
        StoreValidator::new(store.clone()).with_cache(std::time::Duration::from_secs(60), 100);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let inner = service_fn(move |req: Request<String>| {
        let info = req.extensions().get::<Arc<TokenInfo>>().cloned();
        log.lock().unwrap().push(info.map(|i| i.scopes.to_string()));
        async {
            Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                bytes_crate::Bytes::new(),
            )))
        }
    });
    let svc = BearerLayer::new(validator.clone())
        .with_policy(ScopePolicy::read_write())
        .layer(inner);
    let call = |method: Method, token: &str| {
        let req = Request::builder()
            .method(method)
            .header("authorization", format!("Bearer {token}"))
            .body(String::new())
            .unwrap();
        svc.clone().oneshot(req)
    };
    // First call loads (asynchronous path), the next ones are cache hits.
    for _ in 0..3 {
        assert_eq!(call(Method::GET, "valid-r").await.unwrap().status(), 200);
        assert_eq!(
            call(Method::POST, "valid-r").await.unwrap().status(),
            StatusCode::FORBIDDEN
        );
    }
    assert!(
        validator.validate_now("valid-r").is_some(),
        "the token is cached, so the synchronous path was taken"
    );
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Some("read".to_string()); 3],
        "the handler ran for the three GETs only, with the token"
    );
    // An unknown token is not cached (no negative caching here) and stays refused.
    for _ in 0..2 {
        assert_eq!(
            call(Method::GET, "never-issued").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert!(validator.validate_now("never-issued").is_none());
}
