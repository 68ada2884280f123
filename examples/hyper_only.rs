//! `BearerLayer` around a plain hyper service — no axum.
//!
//! ```sh
//! cargo run --example hyper_only
//! curl -i http://127.0.0.1:3001/                                   # 401
//! curl -i -H "Authorization: Bearer demo-token" http://127.0.0.1:3001/   # 200
//! ```
//! Tokens are checked in an in-memory store holding one token, `demo-token` (scope
//! `read`); `BIND` changes the address (default `127.0.0.1:3001`).
use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::{service_fn, Layer};
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::{
    ClientType, GrantType, NewAccessToken, NewApplication, Timestamp,
};
use tower_oauth_toolkit::resource::{BearerLayer, ScopePolicy, StoreValidator, TokenInfo};
use tower_oauth_toolkit::store::memory::MemoryStore;
use tower_oauth_toolkit::store::{IssueTokens, Store};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = Arc::new(MemoryStore::new());
    let app = store
        .create_application(NewApplication::new(
            "demo",
            ClientType::Confidential,
            GrantType::ClientCredentials,
        ))
        .await?;
    let now = Timestamp::now();
    store
        .issue_tokens(IssueTokens {
            access: NewAccessToken {
                resource: String::new(),
                token_checksum: token_checksum("demo-token"),
                application_id: Some(app.id),
                user_id: None,
                source_refresh_token_id: None,
                id_token_id: None,
                grant_id: None,
                expires: now.add_secs(3600),
                scope: "read".into(),
                created: now,
            },
            refresh: None,
            id_token: None,
        })
        .await?;

    // The plain service: it only runs for requests with a valid token.
    let hello = service_fn(|req: hyper::Request<hyper::body::Incoming>| async move {
        let token = req
            .extensions()
            .get::<Arc<TokenInfo>>()
            .expect("set by BearerLayer");
        let body = format!(
            "hello, {}\n",
            token.client_id.as_deref().unwrap_or("client")
        );
        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(body))))
    });
    let protected = BearerLayer::new(StoreValidator::new(store))
        .with_policy(ScopePolicy::required("read"))
        .layer(hello);

    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let listener = tokio::net::TcpListener::bind(&bind).await?;
    println!("listening on http://{bind}; try: curl -H 'Authorization: Bearer demo-token' http://{bind}/");
    loop {
        let (stream, _) = listener.accept().await?;
        let service = TowerToHyperService::new(protected.clone());
        tokio::spawn(async move {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                eprintln!("connection error: {e}");
            }
        });
    }
}
