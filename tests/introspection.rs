//! The bearer layer with the RFC 7662 introspection validator, over real HTTP on
//! loopback: a real introspection server (counting its calls) and a protected axum API
//! called with reqwest.
#![cfg(feature = "introspection")]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_oauth_toolkit::resource::{
    BearerLayer, IntrospectionAuth, IntrospectionValidator, ScopePolicy, TokenInfo,
};

const AUTH: &str = "Bearer resource-server-secret";

#[derive(Clone, Default)]
struct Server {
    calls: Arc<AtomicUsize>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The introspection endpoint: answers by token name.
async fn introspect(
    State(s): State<Server>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (StatusCode, String) {
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(AUTH) {
        return (StatusCode::UNAUTHORIZED, "{}".into());
    }
    assert_eq!(
        form.get("token_type_hint").map(String::as_str),
        Some("access_token")
    );
    s.calls.fetch_add(1, Ordering::SeqCst);
    let token = form.get("token").cloned().unwrap_or_default();
    let active = |exp: i64, scope: &str| {
        json!({"active": true, "scope": scope, "exp": exp, "client_id": "app", "username": "alice", "sub": "42"}).to_string()
    };
    match token.as_str() {
        t if t.starts_with("good") => (StatusCode::OK, active(now() + 600, "read write")),
        t if t.starts_with("readonly") => (StatusCode::OK, active(now() + 600, "read")),
        t if t.starts_with("coalesce") => {
            tokio::time::sleep(Duration::from_millis(200)).await;
            (StatusCode::OK, active(now() + 600, "read"))
        }
        t if t.starts_with("short") => {
            let exp: i64 = t.trim_start_matches("short-").parse().unwrap();
            if now() < exp {
                (StatusCode::OK, active(exp, "read"))
            } else {
                (StatusCode::OK, json!({"active": false}).to_string())
            }
        }
        t if t.starts_with("slow") => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (StatusCode::OK, active(now() + 600, "read"))
        }
        "badjson" => (StatusCode::OK, "this is not json".into()),
        "noactive" => (StatusCode::OK, json!({"scope": "read"}).to_string()),
        "oops" => (StatusCode::INTERNAL_SERVER_ERROR, "{}".into()),
        _ => (StatusCode::OK, json!({"active": false}).to_string()),
    }
}

async fn serve(router: Router, listener: tokio::net::TcpListener) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

async fn start_introspection_server() -> (SocketAddr, Server) {
    let server = Server::default();
    let router = Router::new()
        .route("/o/introspect/", post(introspect))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    (serve(router, listener).await, server)
}

fn validator(
    addr: SocketAddr,
    tune: impl FnOnce(
        tower_oauth_toolkit::resource::introspection::IntrospectionBuilder,
    ) -> tower_oauth_toolkit::resource::introspection::IntrospectionBuilder,
) -> IntrospectionValidator {
    let b = IntrospectionValidator::builder(
        format!("http://{addr}/o/introspect/"),
        IntrospectionAuth::Bearer("resource-server-secret".into()),
    )
    .timeout(Duration::from_millis(500));
    tune(b).build().unwrap()
}

/// The protected API: /hello (any token), /read (scope read), /write (POST, scope write).
async fn start_api(v: IntrospectionValidator, with_scopes: bool) -> SocketAddr {
    async fn hello(axum::Extension(t): axum::Extension<Arc<TokenInfo>>) -> Json<Value> {
        Json(
            json!({"client_id": t.client_id, "username": t.username, "scope": t.scopes.to_string()}),
        )
    }
    let layer = |p: ScopePolicy| {
        BearerLayer::new(v.clone())
            .with_policy(p)
            .error_response_with_scopes(with_scopes)
    };
    let router = Router::new()
        .route(
            "/hello",
            get(hello).layer(layer(ScopePolicy::Authenticated)),
        )
        .route(
            "/read",
            get(hello).layer(layer(ScopePolicy::required("read"))),
        )
        .route(
            "/write",
            post(hello).layer(layer(ScopePolicy::required("write"))),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    serve(router, listener).await
}

async fn call(api: SocketAddr, path: &str, token: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::new();
    let mut req = if path == "/write" {
        client.post(format!("http://{api}{path}"))
    } else {
        client.get(format!("http://{api}{path}"))
    };
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    req.send().await.unwrap()
}

fn www(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_cached_token_makes_no_second_call() {
    let (isrv, server) = start_introspection_server().await;
    let api = start_api(validator(isrv, |b| b), false).await;
    for _ in 0..3 {
        let res = call(api, "/hello", Some("good-1")).await;
        assert_eq!(res.status(), 200);
        let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
        assert_eq!(body["client_id"], "app");
        assert_eq!(body["username"], "alice");
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_entry_disappears_at_the_token_exp() {
    let (isrv, server) = start_introspection_server().await;
    let api = start_api(validator(isrv, |b| b), false).await;
    let token = format!("short-{}", now() + 2);
    assert_eq!(call(api, "/hello", Some(&token)).await.status(), 200);
    assert_eq!(call(api, "/hello", Some(&token)).await.status(), 200);
    assert_eq!(server.calls.load(Ordering::SeqCst), 1, "cached while valid");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let res = call(api, "/hello", Some(&token)).await;
    assert_eq!(res.status(), 401, "expired: asked again and refused");
    assert_eq!(server.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn the_entry_disappears_at_the_caching_bound() {
    let (isrv, server) = start_introspection_server().await;
    let api = start_api(
        validator(isrv, |b| b.cache_ttl(Duration::from_secs(1))),
        false,
    )
    .await;
    assert_eq!(call(api, "/hello", Some("good-bound")).await.status(), 200);
    assert_eq!(call(api, "/hello", Some("good-bound")).await.status(), 200);
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(call(api, "/hello", Some("good-bound")).await.status(), 200);
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        2,
        "re-introspected after RESOURCE_SERVER_TOKEN_CACHING_SECONDS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_with_one_new_token_make_one_call() {
    let (isrv, server) = start_introspection_server().await;
    let api = start_api(validator(isrv, |b| b), false).await;
    let client = reqwest::Client::new();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client
                .get(format!("http://{api}/read"))
                .bearer_auth("coalesce-1")
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn server_down_is_503_and_the_next_request_retries() {
    // A port with nothing listening.
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let api = start_api(validator(addr, |b| b), false).await;
    let res = call(api, "/hello", Some("good-down")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(www(&res), "", "503 carries no WWW-Authenticate");
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    // The server comes up on that port: the failure was not cached.
    let server = Server::default();
    let router = Router::new()
        .route("/o/introspect/", post(introspect))
        .with_state(server.clone());
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    serve(router, listener).await;
    assert_eq!(call(api, "/hello", Some("good-down")).await.status(), 200);
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_slow_server_times_out_to_503() {
    let (isrv, _server) = start_introspection_server().await;
    let api = start_api(
        validator(isrv, |b| b.timeout(Duration::from_millis(300))),
        false,
    )
    .await;
    let started = std::time::Instant::now();
    assert_eq!(call(api, "/hello", Some("slow-1")).await.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the timeout applied"
    );
}

#[tokio::test]
async fn bad_answers_are_503_and_inactive_is_401() {
    let (isrv, server) = start_introspection_server().await;
    let api = start_api(validator(isrv, |b| b), false).await;
    for t in ["badjson", "noactive", "oops"] {
        assert_eq!(call(api, "/hello", Some(t)).await.status(), 503, "{t}");
    }
    let res = call(api, "/hello", Some("revoked-token")).await;
    assert_eq!(res.status(), 401);
    assert!(
        www(&res).starts_with("Bearer realm=\"api\", error=\"invalid_token\""),
        "{}",
        www(&res)
    );
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_token");
    // Failures and inactive answers are not cached (no negative TTL): asked again.
    let before = server.calls.load(Ordering::SeqCst);
    call(api, "/hello", Some("badjson")).await;
    call(api, "/hello", Some("revoked-token")).await;
    assert_eq!(server.calls.load(Ordering::SeqCst), before + 2);
}

#[tokio::test]
async fn negative_answers_are_cached_only_when_asked() {
    let (isrv, server) = start_introspection_server().await;
    let api = start_api(
        validator(isrv, |b| b.negative_cache_ttl(Duration::from_secs(30))),
        false,
    )
    .await;
    for _ in 0..5 {
        assert_eq!(
            call(api, "/hello", Some("flood-of-bad-tokens"))
                .await
                .status(),
            401
        );
    }
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rfc6750_errors() {
    let (isrv, _server) = start_introspection_server().await;
    let api = start_api(validator(isrv, |b| b), true).await;

    let res = call(api, "/hello", None).await;
    assert_eq!(res.status(), 401);
    assert_eq!(
        www(&res),
        "Bearer realm=\"api\"",
        "no error code without a token"
    );

    let client = reqwest::Client::new();
    let res = client
        .get(format!("http://{api}/hello"))
        .header("authorization", "Bearer two words")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(www(&res).contains("error=\"invalid_request\""));
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["error"], "invalid_request");

    let res = client
        .get(format!("http://{api}/hello"))
        .header("authorization", "Basic YTpi")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "another scheme is no bearer token");

    let res = call(api, "/write", Some("readonly-1")).await;
    assert_eq!(res.status(), 403);
    assert!(www(&res).contains("error=\"insufficient_scope\""));
    assert!(www(&res).contains("scope=\"write\""), "{}", www(&res));
    let body: Value = serde_json::from_slice(&res.bytes().await.unwrap()).unwrap();
    assert_eq!(body["required_scopes"], json!(["write"]));
    assert_eq!(call(api, "/read", Some("readonly-1")).await.status(), 200);
    assert_eq!(call(api, "/write", Some("good-2")).await.status(), 200);
}

#[tokio::test]
async fn basic_client_credentials_reach_the_server_form_encoded() {
    // The server only accepts AUTH; a validator with other credentials gets 401 → 503.
    let (isrv, _server) = start_introspection_server().await;
    let wrong = IntrospectionValidator::builder(
        format!("http://{isrv}/o/introspect/"),
        IntrospectionAuth::Basic {
            client_id: "rs".into(),
            client_secret: "nope".into(),
        },
    )
    .build()
    .unwrap();
    let api = start_api(wrong, false).await;
    assert_eq!(
        call(api, "/hello", Some("good-3")).await.status(),
        503,
        "the AS refused us: we cannot check"
    );
}
