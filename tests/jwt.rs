//! `JwtValidator` against a real JWKS server on loopback: the RFC 9068 checks (expired,
//! not yet valid, wrong issuer, wrong audience, `alg: none`, HS256 signed with the RSA
//! public key, ID token instead of access token), unknown `kid` → one refetch within the
//! cool-down, and key rotation.
#![cfg(all(feature = "jwt", feature = "axum"))]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tower_oauth_toolkit::resource::{BearerError, JwtValidator, TokenValidator};

const ISS: &str = "https://auth.example.com/o";
const AUD: &str = "https://api.example.com";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
    )
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[derive(Clone)]
struct Jwks {
    body: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn jwks(State(s): State<Jwks>) -> ([(&'static str, &'static str); 1], String) {
    s.fetches.fetch_add(1, Ordering::SeqCst);
    (
        [("cache-control", "public, max-age=3600")],
        s.body.lock().unwrap().to_string(),
    )
}

async fn jwks_server(keys: &[&str]) -> (SocketAddr, Jwks) {
    let set: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(&fixture(k)).unwrap())
        .collect();
    let state = Jwks {
        body: Arc::new(Mutex::new(json!({ "keys": set }))),
        fetches: Arc::new(AtomicUsize::new(0)),
    };
    let router = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (addr, state)
}

fn claims(exp: i64) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "42", "client_id": "app", "scope": "read write", "exp": exp, "iat": now(), "jti": "j"})
}

fn sign(key_file: &str, kid: &str, typ: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    header.typ = Some(typ.into());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(fixture(key_file).as_bytes()).unwrap(),
    )
    .unwrap()
}

fn validator(addr: SocketAddr) -> JwtValidator {
    JwtValidator::builder()
        .jwks_url(format!("http://{addr}/.well-known/jwks.json"))
        .issuer(ISS)
        .audience(&[AUD])
        .leeway(5)
        .refetch_cooldown(Duration::from_millis(300))
        .build()
        .unwrap()
}

fn is_invalid(r: &Result<Arc<tower_oauth_toolkit::resource::TokenInfo>, BearerError>) -> bool {
    matches!(r, Err(BearerError::InvalidToken(_)))
}

#[tokio::test]
async fn a_valid_access_token_passes_with_its_claims() {
    let (addr, _) = jwks_server(&["rsa_public.jwk.json"]).await;
    let v = validator(addr);
    let token = sign("rsa_private.pem", "key-1", "at+jwt", &claims(now() + 600));
    let info = v.validate(token.clone()).await.unwrap();
    assert_eq!(info.sub.as_deref(), Some("42"));
    assert_eq!(info.client_id.as_deref(), Some("app"));
    assert!(info.scopes.contains("write"));
    assert_eq!(info.aud, vec![AUD.to_string()]);
}

#[tokio::test]
async fn rfc9068_rejections() {
    let (addr, _) = jwks_server(&["rsa_public.jwk.json"]).await;
    let v = validator(addr);
    let ok = claims(now() + 600);

    let expired = sign("rsa_private.pem", "key-1", "at+jwt", &claims(now() - 60));
    assert!(
        matches!(v.validate(expired.clone()).await, Err(BearerError::InvalidToken(m)) if m.contains("expired"))
    );

    let mut early = ok.clone();
    early["nbf"] = json!(now() + 120);
    assert!(
        is_invalid(
            &v.validate(sign("rsa_private.pem", "key-1", "at+jwt", &early))
                .await
        ),
        "not yet valid"
    );

    let mut iss = ok.clone();
    iss["iss"] = json!("https://evil.example.com");
    assert!(
        is_invalid(
            &v.validate(sign("rsa_private.pem", "key-1", "at+jwt", &iss))
                .await
        ),
        "wrong iss"
    );

    let mut aud = ok.clone();
    aud["aud"] = json!("https://other-api.example.com");
    assert!(
        is_invalid(
            &v.validate(sign("rsa_private.pem", "key-1", "at+jwt", &aud))
                .await
        ),
        "wrong aud"
    );

    let mut no_exp = ok.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    assert!(
        is_invalid(
            &v.validate(sign("rsa_private.pem", "key-1", "at+jwt", &no_exp))
                .await
        ),
        "exp required"
    );

    // An OpenID Connect ID token (typ JWT) is not an access token.
    assert!(
        is_invalid(
            &v.validate(sign("rsa_private.pem", "key-1", "JWT", &ok))
                .await
        ),
        "ID token refused"
    );

    // Signed by a key the issuer does not have.
    assert!(
        is_invalid(
            &v.validate(sign("rsa_private_2.pem", "key-1", "at+jwt", &ok))
                .await
        ),
        "bad signature"
    );

    // alg: none.
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "typ": "at+jwt", "kid": "key-1"})),
        b64(&ok)
    );
    assert!(is_invalid(&v.validate(none.clone()).await), "alg none");

    // HS256 keyed with the RSA public key (the classic algorithm-confusion attack).
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("key-1".into());
    header.typ = Some("at+jwt".into());
    let forged = encode(
        &header,
        &ok,
        &EncodingKey::from_secret(fixture("rsa_public.pem").as_bytes()),
    )
    .unwrap();
    assert!(
        is_invalid(&v.validate(forged.clone()).await),
        "HS256 not accepted"
    );
    // Even when HS256 is on the allow-list, an RSA key never verifies an HMAC signature.
    let both = JwtValidator::builder()
        .algorithms(&[Algorithm::RS256, Algorithm::HS256])
        .rsa_pem(fixture("rsa_public.pem").as_bytes(), Some("key-1"))
        .build()
        .unwrap();
    assert!(
        is_invalid(&both.validate(forged.clone()).await),
        "no HS/RS confusion"
    );
    assert!(both
        .validate(sign("rsa_private.pem", "key-1", "at+jwt", &ok))
        .await
        .is_ok());

    assert!(is_invalid(&v.validate("not.a.jwt".to_string()).await));
}

#[tokio::test]
async fn unknown_kid_refetches_once_per_cooldown_and_rotation_works() {
    let (addr, jwks) = jwks_server(&["rsa_public.jwk.json"]).await;
    let v = validator(addr);
    let old = sign("rsa_private.pem", "key-1", "at+jwt", &claims(now() + 600));
    assert!(v.validate(old.clone()).await.is_ok());
    assert!(v.validate(old.clone()).await.is_ok());
    assert_eq!(
        jwks.fetches.load(Ordering::SeqCst),
        1,
        "keys kept per Cache-Control"
    );

    // The issuer rotates: publishes key-2 beside key-1.
    let set: Vec<Value> = ["rsa_public.jwk.json", "rsa_public_2.jwk.json"]
        .iter()
        .map(|k| serde_json::from_str(&fixture(k)).unwrap())
        .collect();
    *jwks.body.lock().unwrap() = json!({ "keys": set });
    tokio::time::sleep(Duration::from_millis(350)).await; // past the cool-down
    let new = sign("rsa_private_2.pem", "key-2", "at+jwt", &claims(now() + 600));
    assert!(
        v.validate(new.clone()).await.is_ok(),
        "unknown kid: refetched and found"
    );
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2);
    assert!(
        v.validate(old.clone()).await.is_ok(),
        "the old key still verifies while published"
    );

    // Made-up kids within the cool-down cause no fetch.
    for i in 0..20 {
        let bogus = sign(
            "rsa_private_2.pem",
            &format!("made-up-{i}"),
            "at+jwt",
            &claims(now() + 600),
        );
        assert!(is_invalid(&v.validate(bogus.clone()).await));
    }
    assert_eq!(jwks.fetches.load(Ordering::SeqCst), 2, "no fetch storm");
}

#[tokio::test]
async fn jwks_unreachable_is_503() {
    let probe = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let v = validator(addr);
    let token = sign("rsa_private.pem", "key-1", "at+jwt", &claims(now() + 600));
    assert!(matches!(
        v.validate(token.clone()).await,
        Err(BearerError::Unavailable(_))
    ));
}

/// With `cache`, a verified token is remembered (the synchronous path answers) until its
/// `exp`; bad tokens are never remembered.
#[tokio::test]
async fn verified_tokens_are_cached_until_exp() {
    let (addr, _) = jwks_server(&["rsa_public.jwk.json"]).await;
    let v = JwtValidator::builder()
        .jwks_url(format!("http://{addr}/.well-known/jwks.json"))
        .issuer(ISS)
        .audience(&[AUD])
        .leeway(0)
        .cache(Duration::from_secs(60), 100)
        .build()
        .unwrap();
    let token = sign("rsa_private.pem", "key-1", "at+jwt", &claims(now() + 2));
    assert!(v.validate_now(&token).is_none(), "not verified yet");
    v.validate(token.clone()).await.unwrap();
    assert!(matches!(v.validate_now(&token), Some(Ok(_))), "remembered");
    let id_token = sign("rsa_private.pem", "key-1", "JWT", &claims(now() + 600));
    assert!(is_invalid(&v.validate(id_token.clone()).await));
    assert!(
        v.validate_now(&id_token).is_none(),
        "a refused token is not remembered"
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(v.validate_now(&token).is_none(), "gone at exp");
    assert!(
        matches!(v.validate(token).await, Err(BearerError::InvalidToken(m)) if m.contains("expired"))
    );
}
