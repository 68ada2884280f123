//! An axum API protected by `BearerLayer`.
//!
//! Routes: `GET /hello` (any valid token), `GET /read` (scope `read`), `POST /write`
//! (scope `write`), and `GET /bare` (no protection, for comparison in load tests).
//!
//! Configuration (environment):
//! - `BIND` — listen address, default `127.0.0.1:3000`;
//! - RFC 7662 introspection: `INTROSPECTION_URL` with `INTROSPECTION_AUTH_TOKEN`, or with
//!   `INTROSPECTION_CLIENT_ID` and `INTROSPECTION_CLIENT_SECRET`;
//! - or JWT access tokens: `JWKS_URL` with `JWT_ISSUER` and `JWT_AUDIENCE`;
//! - `TOKEN_CACHE_SECONDS` — the introspection cache bound (default 36000; never past a
//!   token's `exp`); with `JWKS_URL`, setting it also remembers verified JWTs that long
//!   (off otherwise).
//!
//! ```sh
//! INTROSPECTION_URL=http://127.0.0.1:8000/o/introspect/ INTROSPECTION_AUTH_TOKEN=secret \
//!     cargo run --example resource_server --features introspection,jwt,axum
//! curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:3000/read
//! ```
use std::time::Duration;

use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_oauth_toolkit::resource::extract::BearerToken;
use tower_oauth_toolkit::resource::{
    BearerLayer, IntrospectionAuth, IntrospectionValidator, JwtValidator, ScopePolicy,
    TokenValidator,
};

async fn hello(BearerToken(t): BearerToken) -> Json<Value> {
    Json(
        json!({"hello": t.username.as_deref().or(t.sub.as_deref()).unwrap_or("client"), "client_id": t.client_id, "scope": t.scopes.to_string()}),
    )
}

/// The same work as `hello` without a token (fixed values), so that a load test compares
/// the layer, not the handlers.
async fn bare() -> Json<Value> {
    let (who, client_id, scope) = (
        Some("client"),
        Some("anyone".to_string()),
        "read write".to_string(),
    );
    Json(json!({"hello": who.unwrap_or("client"), "client_id": client_id, "scope": scope}))
}

fn app<V: TokenValidator>(v: V) -> Router {
    let layer = |policy| BearerLayer::new(v.clone()).with_policy(policy);
    Router::new()
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
        )
        .route("/bare", get(bare))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let bind = env("BIND").unwrap_or_else(|| "127.0.0.1:3000".into());
    let router = if let Some(url) = env("INTROSPECTION_URL") {
        let auth = match (env("INTROSPECTION_AUTH_TOKEN"), env("INTROSPECTION_CLIENT_ID"), env("INTROSPECTION_CLIENT_SECRET")) {
            (Some(token), _, _) => IntrospectionAuth::Bearer(token),
            (None, Some(client_id), Some(client_secret)) => IntrospectionAuth::Basic { client_id, client_secret },
            _ => return Err("set INTROSPECTION_AUTH_TOKEN, or INTROSPECTION_CLIENT_ID and INTROSPECTION_CLIENT_SECRET".into()),
        };
        let ttl: u64 = env("TOKEN_CACHE_SECONDS")
            .map(|v| v.parse())
            .transpose()?
            .unwrap_or(36_000);
        tracing::info!(%url, cache_seconds = ttl, "validating tokens by introspection");
        app(IntrospectionValidator::builder(url, auth)
            .cache_ttl(Duration::from_secs(ttl))
            .build()?)
    } else if let Some(jwks) = env("JWKS_URL") {
        let mut b = JwtValidator::builder().jwks_url(jwks.clone());
        if let Some(ttl) = env("TOKEN_CACHE_SECONDS") {
            b = b.cache(Duration::from_secs(ttl.parse()?), 100_000);
        }
        if let Some(iss) = env("JWT_ISSUER") {
            b = b.issuer(iss);
        }
        if let Some(aud) = env("JWT_AUDIENCE") {
            b = b.audience(&[aud.as_str()]);
        }
        tracing::info!(%jwks, "validating JWT access tokens");
        app(b.build()?)
    } else {
        return Err("set INTROSPECTION_URL (with credentials) or JWKS_URL".into());
    };
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    tracing::info!("listening on http://{bind}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
