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
use tower_oauth_toolkit::resource::{BearerLayer, ScopePolicy, StoreValidator, TokenInfo};
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
}
