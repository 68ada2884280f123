//! Resource-side micro-benchmarks: a token-cache hit, and a whole request through the
//! bearer layer on a cache hit compared with the bare service.
//!
//! `cargo bench --bench resource`

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_oauth_toolkit::crypto::{token_checksum, token_key};
use tower_oauth_toolkit::model::{
    ClientType, GrantType, NewAccessToken, NewApplication, Timestamp,
};
use tower_oauth_toolkit::resource::cache::CacheEntry;
use tower_oauth_toolkit::resource::{BearerLayer, StoreValidator, TokenCache, TokenInfo};
use tower_oauth_toolkit::store::memory::MemoryStore;
use tower_oauth_toolkit::store::{IssueTokens, Store};

const TOKEN: &str = "Rb8fQ0w2cN3xT7yVg5kLmZpA1sD4eH6jK9uW0oI2";

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("resource");

    // 1. A cache hit: digest the token and read the entry (many gets per block_on, so the
    //    runtime's own cost is not counted).
    let cache = TokenCache::new(10_000, Duration::from_secs(3600), Duration::ZERO);
    let info = Arc::new(TokenInfo {
        active: true,
        exp: Some(Timestamp::now().unix() + 3600),
        ..Default::default()
    });
    rt.block_on(async {
        cache
            .get_or_load(token_key(TOKEN), async {
                Ok(CacheEntry::active(info.clone()))
            })
            .await
            .unwrap();
    });
    g.bench_function("cache_hit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let hit = cache
                        .get_or_load(token_key(TOKEN), async { unreachable!("cached") })
                        .await
                        .unwrap();
                    std::hint::black_box(hit);
                }
                start.elapsed()
            })
        })
    });

    // 1b. The same hit on the synchronous path the layer takes first.
    g.bench_function("cache_hit_now", |b| {
        b.iter(|| std::hint::black_box(cache.get_now(&token_key(TOKEN)).unwrap().unwrap()))
    });

    // 2. A request through the layer (StoreValidator with its cache warm) vs the bare
    //    service.
    let store = Arc::new(MemoryStore::new());
    rt.block_on(async {
        let app = store
            .create_application(NewApplication::new(
                "bench",
                ClientType::Confidential,
                GrantType::ClientCredentials,
            ))
            .await
            .unwrap();
        let now = Timestamp::now();
        store
            .issue_tokens(IssueTokens {
                access: NewAccessToken {
                    resource: String::new(),
                    token_checksum: token_checksum(TOKEN),
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
            .await
            .unwrap();
    });
    let bare = service_fn(|_req: http::Request<()>| async {
        Ok::<_, Infallible>(http::Response::new(
            http_body_util::Empty::<bytes::Bytes>::new(),
        ))
    });
    let validator = StoreValidator::new(store).with_cache(Duration::from_secs(3600), 10_000);
    let mut layered = BearerLayer::new(validator.clone()).layer(bare);
    let request = || {
        http::Request::builder()
            .header("authorization", format!("Bearer {TOKEN}"))
            .body(())
            .unwrap()
    };
    rt.block_on(async {
        let res = layered
            .ready()
            .await
            .unwrap()
            .call(request())
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    });
    let mut bare_svc = bare;
    g.bench_function("bare_service", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = bare_svc
                        .ready()
                        .await
                        .unwrap()
                        .call(request())
                        .await
                        .unwrap();
                    std::hint::black_box(res);
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("bearer_layer_cache_hit", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let res = layered
                        .ready()
                        .await
                        .unwrap()
                        .call(request())
                        .await
                        .unwrap();
                    std::hint::black_box(res);
                }
                start.elapsed()
            })
        })
    });
    #[cfg(feature = "axum")]
    axum_benches(&rt, &mut g, validator);
    #[cfg(feature = "jwt")]
    jwt_benches(&rt, &mut g);
    g.finish();
}

/// The example API's two routes in-process (axum router, no sockets): `/bare` unprotected
/// and `/hello` behind the layer with a cached token, with the same handler work.
#[cfg(feature = "axum")]
fn axum_benches(
    rt: &tokio::runtime::Runtime,
    g: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
    validator: StoreValidator<MemoryStore>,
) {
    use axum::routing::get;
    use axum::{Json, Router};
    use serde_json::{json, Value};
    use tower_oauth_toolkit::resource::extract::BearerToken;

    async fn hello(BearerToken(t): BearerToken) -> Json<Value> {
        Json(
            json!({"hello": t.username.as_deref().or(t.sub.as_deref()).unwrap_or("client"),
                    "client_id": t.client_id, "scope": t.scopes.to_string()}),
        )
    }
    async fn bare() -> Json<Value> {
        let (who, client_id, scope) = (
            Some("client"),
            Some("anyone".to_string()),
            "read".to_string(),
        );
        Json(json!({"hello": who.unwrap_or("client"), "client_id": client_id, "scope": scope}))
    }
    let router = Router::new()
        .route("/hello", get(hello).layer(BearerLayer::new(validator)))
        .route("/bare", get(bare))
        .route(
            "/noop",
            get(bare).layer(tower::util::MapRequestLayer::new(|r| r)),
        );
    for (name, path) in [
        ("axum_bare_route", "/bare"),
        ("axum_noop_layer", "/noop"),
        ("axum_layer_cache_hit", "/hello"),
    ] {
        let mut svc = router.clone();
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let req = http::Request::builder()
                            .uri(path)
                            .header("authorization", format!("Bearer {TOKEN}"))
                            .body(axum::body::Body::empty())
                            .unwrap();
                        let res = ServiceExt::<http::Request<axum::body::Body>>::ready(&mut svc)
                            .await
                            .unwrap()
                            .call(req)
                            .await
                            .unwrap();
                        assert_eq!(res.status(), 200);
                        std::hint::black_box(res);
                    }
                    start.elapsed()
                })
            })
        });
    }
}

/// JWT verification (signature + claims) with keys built once, as the validator does.
#[cfg(feature = "jwt")]
fn jwt_benches(
    rt: &tokio::runtime::Runtime,
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
) {
    use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
    use tower_oauth_toolkit::resource::{JwtValidator, TokenValidator};
    let fixture = |n: &str| {
        std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures")
                .join(n),
        )
        .unwrap()
    };
    let claims =
        serde_json::json!({"sub": "1", "scope": "read", "exp": Timestamp::now().unix() + 3600});
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    let rs = encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(&fixture("rsa_private.pem")).unwrap(),
    )
    .unwrap();
    header.alg = Algorithm::HS256;
    let hs = encode(
        &header,
        &claims,
        &EncodingKey::from_secret(b"a-32-byte-long-hmac-secret-value"),
    )
    .unwrap();
    let rs_v = JwtValidator::builder()
        .rsa_pem(&fixture("rsa_public.pem"), None)
        .build()
        .unwrap();
    let hs_v = JwtValidator::builder()
        .algorithms(&[Algorithm::HS256])
        .hmac_secret(b"a-32-byte-long-hmac-secret-value", None)
        .build()
        .unwrap();
    for (name, v, token) in [
        ("jwt_verify_rs256", rs_v, rs),
        ("jwt_verify_hs256", hs_v, hs),
    ] {
        rt.block_on(async { v.validate(token.clone()).await.unwrap() });
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        std::hint::black_box(v.validate(token.clone()).await.unwrap());
                    }
                    start.elapsed()
                })
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
