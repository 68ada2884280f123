//! JWT access tokens in `JwtValidator` (RFC 9068): header, signature and claims, with
//! inline keys only (no JWKS URL, no network).
//!
//! Input: the first byte picks the mode, the rest is
//! * `0`: a token as sent, against RS256 and HS256 keys;
//! * `1`: a JOSE header and a claims set (JSON text, split at the first NUL byte), which
//!   the target encodes and signs with the HS256 key, so that claims parsing is reached;
//! * `2`: a JWK set document, whose keys then check sample tokens.
#![no_main]

use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll, Waker};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use hmac::{Hmac, Mac};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use tower_oauth_toolkit::resource::{BearerError, JwtValidator, TokenInfo, TokenValidator};
use tower_oauth_toolkit::scope::Scopes;

const HMAC_SECRET: &[u8] = b"fuzzing-hmac-secret-0123456789ab";
const ISSUER: &str = "https://issuer.example";
const AUDIENCE: &str = "api";

/// The public half of a key made for these seeds (the private half was not kept): the
/// RS256 seeds are tokens it signed.
const RSA_PUBLIC_PEM: &str = "\
-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAsVECYQKNZ+gG3umHANYH
UMxTuGwRrGM2TJAC1AFYEVfFVrmXyAQR+0lZ5zfYvklldBhzxlD6SENTjG5Ra9rq
kn9ReDI/QL9Rxh+sBGoad8SPBtGRcpkD+KVcVA8lryjWyFolLyME6HOGvHi0svtm
+iHcW9hC4DZcpXVHLYaS/+/MFbUkW80D+VteEFaQYiqkpLCAOJBEWtrs+OB1+/76
wL5keW692LplqXdE2rlQhYYPAbnTeFuGBu12sGgK66loxdNC72+5dipv9j1VqSP/
a/kj4BDBXUphhIYJ61RY83tcpBZj5UFKVAh2t5Rz/Q4J/CfB8smpjXohXIFhKI95
6wIDAQAB
-----END PUBLIC KEY-----
";

/// RS256 and HS256, `typ` must be `at+jwt`, `iss` and `aud` checked.
static STRICT: LazyLock<JwtValidator> = LazyLock::new(|| {
    JwtValidator::builder()
        .algorithms(&[Algorithm::RS256, Algorithm::HS256])
        .rsa_pem(RSA_PUBLIC_PEM.as_bytes(), Some("r1"))
        .hmac_secret(HMAC_SECRET, Some("h1"))
        .issuer(ISSUER)
        .audience(&[AUDIENCE])
        .build()
        .expect("the strict validator builds")
});

/// HS256 only, any `typ`, no `iss` or `aud`: what claims parsing sees most often.
static RELAXED: LazyLock<JwtValidator> = LazyLock::new(|| {
    JwtValidator::builder()
        .algorithms(&[Algorithm::HS256])
        .hmac_secret(HMAC_SECRET, None)
        .allow_any_typ()
        .build()
        .expect("the relaxed validator builds")
});

type Outcome = Result<Arc<TokenInfo>, BearerError>;

/// The validator's two paths: at once (`validate_now`) and the future (`validate`),
/// which with inline keys must be ready at the first poll and agree.
fn validate(v: &JwtValidator, token: &str) -> Outcome {
    let before = now();
    let mut future = v.validate(token.to_owned());
    let Poll::Ready(later) = future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("validation with inline keys waited");
    };
    let at_once = v.validate_now(token);
    // (Unless the clock ticked between the two: `exp` and `nbf` are whole seconds.)
    if let Some(at_once) = at_once.filter(|_| now() == before) {
        assert_eq!(
            at_once, later,
            "validate_now and validate disagree on {token:?}"
        );
    }
    later
}

fn sign(header: &[u8], claims: &[u8]) -> String {
    let signing_input = format!("{}.{}", B64URL.encode(header), B64URL.encode(claims));
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(HMAC_SECRET).unwrap();
    mac.update(signing_input.as_bytes());
    let tag = mac.finalize().into_bytes();
    format!("{signing_input}.{}", B64URL.encode(tag))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// What an accepted token must be, whatever the validator.
fn check_accepted(info: &TokenInfo, token: &str) {
    assert!(info.active);
    let exp = info.claims.get("exp").and_then(Value::as_f64);
    let exp = exp.unwrap_or_else(|| panic!("accepted without a numeric exp: {token:?}"));
    // 30 s of leeway, 1 s for the clock to move on since the validator read it.
    assert!(exp + 31.0 >= now() as f64, "accepted after exp: {token:?}");
    match info.claims.get("scope") {
        Some(Value::String(s)) => {
            assert_eq!(info.scopes, Scopes::parse(s).unwrap_or_default());
        }
        Some(_) => {}
        None if info.claims.get("scp").is_none() => assert!(info.scopes.is_empty()),
        None => {}
    }
}

fn check_strict(info: &TokenInfo, token: &str) {
    check_accepted(info, token);
    assert_eq!(
        info.claims.get("iss").and_then(Value::as_str),
        Some(ISSUER),
        "{token:?}"
    );
    let aud_ok = match info.claims.get("aud") {
        Some(Value::String(a)) => a == AUDIENCE,
        Some(Value::Array(a)) => a.iter().any(|a| a.as_str() == Some(AUDIENCE)),
        _ => false,
    };
    assert!(aud_ok, "accepted for another audience: {token:?}");
    let header: Value =
        serde_json::from_slice(&B64URL.decode(token.split('.').next().unwrap()).unwrap()).unwrap();
    let typ = header["typ"]
        .as_str()
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        typ == "at+jwt" || typ == "application/at+jwt",
        "typ {typ:?}: {token:?}"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            let token = String::from_utf8_lossy(rest);
            if let Ok(info) = validate(&STRICT, &token) {
                check_strict(&info, &token);
            }
            if let Ok(info) = validate(&RELAXED, &token) {
                check_accepted(&info, &token);
            }
        }
        1 => {
            let (header, claims) = match rest.iter().position(|&b| b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (rest, &b"{}"[..]),
            };
            let token = sign(header, claims);
            for (v, strict) in [(&*STRICT, true), (&*RELAXED, false)] {
                if let Ok(info) = validate(v, &token) {
                    if strict {
                        check_strict(&info, &token);
                    } else {
                        check_accepted(&info, &token);
                    }
                    let parsed: Map<String, Value> =
                        serde_json::from_slice(claims).expect("accepted claims are a JSON object");
                    assert_eq!(info.claims, parsed);
                }
            }
        }
        _ => {
            let json = String::from_utf8_lossy(rest);
            let built = JwtValidator::builder()
                .algorithms(&[
                    Algorithm::RS256,
                    Algorithm::PS256,
                    Algorithm::ES256,
                    Algorithm::EdDSA,
                    Algorithm::HS256,
                ])
                .jwks_json(&json)
                .allow_any_typ()
                .build();
            if let Ok(v) = built {
                for token in SAMPLES {
                    if let Ok(info) = validate(&v, token) {
                        check_accepted(&info, token);
                    }
                }
            }
        }
    }
});

/// Tokens the JWK sets of mode 2 are tried on: RS256 (kid r1) and HS256 (kid h1).
/// Both are for `iss` https://issuer.example, `aud` api, scope "read write", `exp` 2100.
const SAMPLES: &[&str] = &[
    "eyJhbGciOiJSUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6InIxIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoiYXBpIiwic3ViIjoiYWxpY2UiLCJjbGllbnRfaWQiOiJjbGkiLCJzY29wZSI6InJlYWQgd3JpdGUiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NzIyNTYwMCwianRpIjoiajEifQ.ex2XhosThES2qlCfcclXDZ9fYB_y6z37j0aCqc6orB5OeOOn8zFO2gBaZvKM6DeKoSfl4Nv9574cLqqY71ZnEvUf_SRdDE-oE-kmpjIfVll06rNobGaixzHo-VSU8mDhtmsx8EYzguWyMY2opKSms6lfBD3G7vOwOnHWEyT5JgEAOXa4vPE3rsCb8zZAPUXGixM-qIq95rc58-tcnEX0KOgL7MODaCLkv6ym06ivtH0uGq5YOX88Ojkopzyt0vNMD0hkkDph6Mz-n-qcbASa9NjCxp8J4xdDtdnMmw1pmAb67eKNTDFdsAS-i1_CZA04W3MPqxnOn2NL4tMtC1yu0w",
    "eyJhbGciOiJIUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImgxIn0.eyJpc3MiOiJodHRwczovL2lzc3Vlci5leGFtcGxlIiwiYXVkIjoiYXBpIiwic3ViIjoiYWxpY2UiLCJjbGllbnRfaWQiOiJjbGkiLCJzY29wZSI6InJlYWQgd3JpdGUiLCJleHAiOjQxMDI0NDQ4MDAsImlhdCI6MTc2NzIyNTYwMCwianRpIjoiajEifQ.h_KBFea1ir9vWF8F3v5ENAUDk0iH5auF16mI11v4cgo",
];
