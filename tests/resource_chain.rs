//! Issue 14's chain over real HTTP on loopback: RFC 9728 protected-resource metadata on
//! the resource side (a bare `BearerLayer` API, no provider) and in `oauth-toolkit
//! serve`'s app, the RFC 8414 document where RFC 8414 §3 puts it, and from there to a
//! token for the API.
#![cfg(all(feature = "cli", feature = "postgres", feature = "jwt"))]

#[macro_use]
mod common;

use common::provider::*;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use serde_json::Value;
use tower_oauth_toolkit::resource::{
    BearerError, BearerLayer, ProtectedResourceMetadata, ScopePolicy, TokenInfo,
};
use tower_oauth_toolkit::scope::Scopes;
use tower_oauth_toolkit::settings::Settings;

/// Serves `router` on 127.0.0.1:0; its base URL.
async fn serve_router(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

fn challenge(res: &reqwest::Response) -> String {
    res.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A validator that knows two tokens: `good` (scope `read`) and `weak` (scope `other`).
async fn two_tokens(token: String) -> Result<Arc<TokenInfo>, BearerError> {
    let scope = match token.as_str() {
        "good" => "read",
        "weak" => "other",
        _ => return Err(BearerError::InvalidToken("unknown token".into())),
    };
    Ok(Arc::new(TokenInfo {
        active: true,
        scopes: Scopes::parse(scope).unwrap(),
        ..TokenInfo::default()
    }))
}

/// A resource server alone (feature `resource`, no provider): the 401 points to the
/// metadata, the metadata is served with CORS and caching, a 403 names the scopes.
#[tokio::test]
async fn a_bare_api_points_to_its_metadata() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let metadata = ProtectedResourceMetadata::new(&format!("{base}/v1"))
        .unwrap()
        .authorization_server("https://auth.example.com")
        .scopes_supported(["read"])
        .name("Example API");
    let api = Router::new()
        .route(
            "/v1/things",
            get(|| async { "things" }).layer(
                BearerLayer::new(two_tokens)
                    .with_policy(ScopePolicy::required("read"))
                    .with_resource_metadata(&metadata),
            ),
        )
        .route_service(&metadata.well_known_path(), metadata.service());
    tokio::spawn(async move { axum::serve(listener, api).await.unwrap() });
    let http = reqwest::Client::new();
    let expected = format!("resource_metadata=\"{base}/.well-known/oauth-protected-resource/v1\"");

    let res = http.get(format!("{base}/v1/things")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        challenge(&res),
        format!("Bearer realm=\"api\", {expected}"),
        "no token: no error code, the metadata URL"
    );
    // A bad token, twice (the second answer is the memoised one): the URL both times.
    for _ in 0..2 {
        let res = http
            .get(format!("{base}/v1/things"))
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        let c = challenge(&res);
        assert!(c.contains("error=\"invalid_token\""), "{c}");
        assert!(c.ends_with(&expected), "{c}");
    }
    let res = http
        .get(format!("{base}/v1/things"))
        .bearer_auth("weak")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let c = challenge(&res);
    assert!(c.contains("error=\"insufficient_scope\""), "{c}");
    assert!(c.contains("scope=\"read\""), "403 names the scopes: {c}");
    assert!(c.ends_with(&expected), "{c}");
    let res = http
        .get(format!("{base}/v1/things"))
        .bearer_auth("good")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // The document, where the challenge said.
    let url = format!("{base}/.well-known/oauth-protected-resource/v1");
    let res = http.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    assert_eq!(res.headers()["cache-control"], "public, max-age=3600");
    assert_eq!(res.headers()["content-type"], "application/json");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "resource": format!("{base}/v1"),
            "authorization_servers": ["https://auth.example.com"],
            "scopes_supported": ["read"],
            "bearer_methods_supported": ["header"],
            "resource_name": "Example API",
        })
    );
    let head = http.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
    let preflight = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://app.example")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), 204);
    assert_eq!(preflight.headers()["access-control-allow-origin"], "*");
    let post = http.post(&url).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET, HEAD, OPTIONS");
}

/// `serve`'s demo API with the settings at their defaults: everything derived from the
/// request, and the chain from the API's URL to the token endpoint holds together.
async fn serve_publishes_the_demo_api_metadata(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let base = &srv.base;
    let res = srv.http.get(srv.url("/api/hello")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let c = challenge(&res);
    let metadata_url = format!("{base}/.well-known/oauth-protected-resource/api/hello");
    assert!(
        c.ends_with(&format!("resource_metadata=\"{metadata_url}\"")),
        "{c}"
    );
    let res = srv.http.get(&metadata_url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let doc: Value = res.json().await.unwrap();
    // RFC 9728 §3.3: the resource is the URL the metadata URL was made from.
    assert_eq!(doc["resource"], format!("{base}/api/hello"));
    assert_eq!(
        doc["authorization_servers"],
        serde_json::json!([format!("{base}/o")])
    );
    assert_eq!(doc["scopes_supported"], serde_json::json!(["read"]));
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert!(doc.get("resource_name").is_none());
    // RFC 8414 §3: the issuer `{base}/o` has its document at the root, path inserted.
    let issuer = doc["authorization_servers"][0].as_str().unwrap();
    let path = issuer.strip_prefix(base.as_str()).unwrap();
    let res = srv
        .http
        .get(format!(
            "{base}/.well-known/oauth-authorization-server{path}"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let as_meta: Value = res.json().await.unwrap();
    assert_eq!(as_meta["issuer"], issuer, "RFC 8414 §3.3");
    assert_eq!(as_meta["token_endpoint"], format!("{base}/o/token/"));
    // The same document as under the mount.
    let under_mount: Value = srv
        .http
        .get(srv.url("/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(as_meta, under_mount);
    // A token for the scope the metadata names opens the API.
    let (status, v, _) = srv
        .token(
            Some(("cc", "cc-secret")),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let (status, hello) = srv.hello(v["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200, "{hello}");
}

/// The `OAUTH2_PROTECTED_RESOURCE_*` settings, DOT's names, fill the document.
async fn resource_settings_fill_the_document(db: Db) {
    let mut settings = Settings::default();
    settings.oauth2_protected_resource_identifier = "https://api.example.com/v2".into();
    settings.oauth2_protected_resource_authorization_servers = vec![
        "https://auth.example.com".into(),
        "https://backup.example.com".into(),
    ];
    settings.oauth2_protected_resource_bearer_methods_supported =
        vec!["header".into(), "body".into()];
    settings.oauth2_protected_resource_name = "Example".into();
    settings.oauth2_protected_resource_documentation = "https://docs.example.com".into();
    settings.oauth2_protected_resource_policy_uri = "https://example.com/policy".into();
    settings.oauth2_protected_resource_tos_uri = "https://example.com/tos".into();
    let Some(srv) = start(db, settings).await else {
        return;
    };
    let res = srv.http.get(srv.url("/api/hello")).send().await.unwrap();
    let c = challenge(&res);
    assert!(
        c.ends_with(
            "resource_metadata=\"https://api.example.com/.well-known/oauth-protected-resource/v2\""
        ),
        "{c}"
    );
    let doc: Value = srv
        .http
        .get(srv.url("/.well-known/oauth-protected-resource/v2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "resource": "https://api.example.com/v2",
            "authorization_servers": ["https://auth.example.com", "https://backup.example.com"],
            "scopes_supported": ["read"],
            "bearer_methods_supported": ["header", "body"],
            "resource_name": "Example",
            "resource_documentation": "https://docs.example.com",
            "resource_policy_uri": "https://example.com/policy",
            "resource_tos_uri": "https://example.com/tos",
        })
    );
}

#[tokio::test]
async fn a_derived_identifier_follows_the_host() {
    let metadata = ProtectedResourceMetadata::derived("/api")
        .unwrap()
        .same_origin_authorization_server("/o");
    let api = Router::new()
        .route(
            "/api",
            get(|| async { "ok" })
                .layer(BearerLayer::new(two_tokens).with_resource_metadata(&metadata)),
        )
        .route_service(&metadata.well_known_path(), metadata.service());
    let base = serve_router(api).await;
    let http = reqwest::Client::new();
    for host in ["api.one.test", "api.two.test:8443"] {
        let res = http
            .get(format!("{base}/api"))
            .header("host", host)
            .bearer_auth("nope")
            .send()
            .await
            .unwrap();
        let c = challenge(&res);
        assert!(
            c.ends_with(&format!(
                "resource_metadata=\"http://{host}/.well-known/oauth-protected-resource/api\""
            )),
            "{c}"
        );
        let res = http
            .get(format!("{base}/.well-known/oauth-protected-resource/api"))
            .header("host", host)
            .header("x-forwarded-proto", "https")
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["vary"], "host");
        let doc: Value = res.json().await.unwrap();
        assert_eq!(doc["resource"], format!("https://{host}/api"));
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!([format!("https://{host}/o")])
        );
    }
}

on_both!(
    serve_publishes_the_demo_api_metadata,
    resource_settings_fill_the_document,
);
