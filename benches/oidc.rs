//! OIDC signing-key micro-benchmarks: RS256-signing an ID-token-sized claim set with
//! the active key, serializing the JWKS, and (for scale) loading the keys from settings,
//! which is what signing would also cost per token if the keys were parsed every time.
//!
//! `cargo bench --features provider,jwt --bench oidc`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde::Serialize;
use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
use tower_oauth_toolkit::settings::{Secret, Settings};

const KEY_1: &str = include_str!("../tests/fixtures/rsa_private.pem");
const KEY_2: &str = include_str!("../tests/fixtures/rsa_private_2.pem");

/// The claims of a typical ID token (OIDC Core §2, §3.1.3.6), as DOT issues them.
#[derive(Serialize)]
struct IdTokenClaims {
    iss: &'static str,
    sub: &'static str,
    aud: &'static str,
    exp: u64,
    iat: u64,
    auth_time: u64,
    jti: &'static str,
    nonce: &'static str,
    at_hash: &'static str,
    azp: &'static str,
    email: &'static str,
    email_verified: bool,
    name: &'static str,
}

fn settings() -> Settings {
    let mut settings = Settings::default();
    settings.oidc_rsa_private_key = Secret::new(KEY_1);
    settings.oidc_rsa_private_keys_inactive = vec![Secret::new(KEY_2)];
    settings
}

fn bench(c: &mut Criterion) {
    let settings = settings();
    let keys = SigningKeys::from_settings(&settings)
        .expect("fixture keys load")
        .expect("a key is configured");
    let claims = IdTokenClaims {
        iss: "https://auth.example.com/o",
        sub: "248289761001",
        aud: "s6BhdRkqt3Zt8LWPYyKr0xMqWnj0bQ5fHn9Q2vCe",
        exp: 1_900_000_300,
        iat: 1_900_000_000,
        auth_time: 1_899_999_990,
        jti: "5b0b2a8e-7c52-4d3b-9a0e-3f1d2c4b6a79",
        nonce: "n-0S6_WzA2Mj",
        at_hash: "77QmUPtjPfzWtF2AnpK9RQ",
        azp: "s6BhdRkqt3Zt8LWPYyKr0xMqWnj0bQ5fHn9Q2vCe",
        email: "janedoe@example.com",
        email_verified: true,
        name: "Jane Doe",
    };

    let mut g = c.benchmark_group("oidc");
    g.bench_function("sign_id_token_rs256", |b| {
        b.iter(|| keys.sign("JWT", black_box(&claims)).expect("signs"))
    });
    g.bench_function("jwks_to_string", |b| {
        b.iter(|| serde_json::to_string(&black_box(&keys).jwks()).expect("serializes"))
    });
    g.bench_function("load_two_keys_from_settings", |b| {
        b.iter(|| SigningKeys::from_settings(black_box(&settings)).expect("loads"))
    });

    // Serving the JWKS document: the whole request through the provider's router (the
    // document is serialized once at start-up).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut oidc = self::settings();
    oidc.oidc_enabled = true;
    let store = std::sync::Arc::new(tower_oauth_toolkit::store::memory::MemoryStore::new());
    let provider = tower_oauth_toolkit::provider::Provider::builder(
        oidc,
        store.clone(),
        tower_oauth_toolkit::provider::StoreUsers::new(store),
    )
    .secret_key(vec![7; 32])
    .build()
    .expect("provider");
    let router = provider.router();
    g.bench_function("serve_jwks_request", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                use tower::{Service, ServiceExt};
                let mut svc = router.clone();
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    let req = http::Request::get("/.well-known/jwks.json")
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let res = ServiceExt::<http::Request<axum::body::Body>>::ready(&mut svc)
                        .await
                        .unwrap()
                        .call(req)
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200);
                    black_box(res);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
