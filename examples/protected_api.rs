//! An API that a client knowing only its URL can get a token for: an axum service behind
//! `BearerLayer`, with RFC 9728 protected-resource metadata, RFC 8707 audience checks,
//! and RFC 7662 introspection at `oauth-toolkit serve`.
//!
//! Routes: `GET /api/things` (scope `read`) and the metadata document at
//! `/.well-known/oauth-protected-resource/api`, which every 401 points to
//! (`WWW-Authenticate: Bearer …, resource_metadata="…"`). Tokens are checked by
//! introspection and must have been issued for this API (`resource=<API_RESOURCE>`):
//! a token for another resource, or one issued without any, is refused with 401
//! `invalid_token` — the confused-deputy defence.
//!
//! Configuration (environment):
//! - `API_BIND` — listen address, default `127.0.0.1:8080`;
//! - `API_RESOURCE` — this API's resource identifier, default `http://127.0.0.1:8080/api`
//!   (https in production; http is accepted on a loopback host);
//! - `AUTH_SERVER` — the authorization server's issuer, default `http://127.0.0.1:8000/o`
//!   (its introspection endpoint is `AUTH_SERVER/introspect/`);
//! - `INTROSPECTION_CLIENT_ID`, `INTROSPECTION_CLIENT_SECRET` — a confidential client of
//!   that server, for introspection (`oauth-toolkit createapplication confidential
//!   client-credentials`).
//!
//! The README's "From an API's URL to a token" walks through the whole chain with curl.
//!
//! ```sh
//! INTROSPECTION_CLIENT_ID=… INTROSPECTION_CLIENT_SECRET=… \
//!     cargo run --release --features introspection,axum --example protected_api
//! ```
use std::time::Duration;

use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower_oauth_toolkit::resource::extract::BearerToken;
use tower_oauth_toolkit::resource::{
    BearerLayer, IntrospectionAuth, IntrospectionValidator, ProtectedResourceMetadata, ScopePolicy,
};

async fn things(BearerToken(t): BearerToken) -> Json<Value> {
    Json(json!({
        "things": ["a", "b"],
        "for": t.username.as_deref().or(t.sub.as_deref()),
        "client_id": t.client_id,
        "audience": t.aud,
    }))
}

fn env(name: &str, default: Option<&str>) -> String {
    match (std::env::var(name), default) {
        (Ok(v), _) if !v.is_empty() => v,
        (_, Some(d)) => d.to_owned(),
        _ => {
            eprintln!("set {name} (see the example's documentation)");
            std::process::exit(2);
        }
    }
}

#[tokio::main]
async fn main() {
    let bind = env("API_BIND", Some("127.0.0.1:8080"));
    let resource = env("API_RESOURCE", Some("http://127.0.0.1:8080/api"));
    let issuer = env("AUTH_SERVER", Some("http://127.0.0.1:8000/o"));
    let auth = IntrospectionAuth::Basic {
        client_id: env("INTROSPECTION_CLIENT_ID", None),
        client_secret: env("INTROSPECTION_CLIENT_SECRET", None),
    };

    let metadata = match ProtectedResourceMetadata::new(&resource) {
        Ok(m) => m
            .authorization_server(issuer.trim_end_matches('/'))
            .scopes_supported(["read"])
            .name("Example protected API"),
        Err(e) => {
            eprintln!("API_RESOURCE: {e}");
            std::process::exit(2);
        }
    };
    let validator = IntrospectionValidator::builder(
        format!("{}/introspect/", issuer.trim_end_matches('/')),
        auth,
    )
    .audience(resource.clone())
    .cache_ttl(Duration::from_secs(60))
    .build()
    .unwrap_or_else(|e| {
        eprintln!("introspection: {e}");
        std::process::exit(2);
    });
    let bearer = BearerLayer::new(validator)
        .with_policy(ScopePolicy::required("read"))
        .with_resource_metadata(&metadata);
    let app = Router::new()
        .route("/api/things", get(things).layer(bearer))
        .route_service(&metadata.well_known_path(), metadata.service());

    let listener = tokio::net::TcpListener::bind(&bind)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {bind}: {e}");
            std::process::exit(1);
        });
    eprintln!(
        "protected API {resource} on http://{bind}/api/things; metadata at http://{bind}{}",
        metadata.well_known_path()
    );
    axum::serve(listener, app).await.unwrap();
}
