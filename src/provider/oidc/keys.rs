//! The provider's RSA signing keys: `OIDC_RSA_PRIVATE_KEY` and
//! `OIDC_RSA_PRIVATE_KEYS_INACTIVE`.
//!
//! [`SigningKeys::from_settings`] loads them once, at start-up or on key rotation. The
//! active key signs RS256 JWTs with [`SigningKeys::sign`]: RFC 9068 access tokens
//! (`typ: at+jwt`) and, later, OIDC ID tokens. The public halves of the active and the
//! inactive keys make up the JWKS ([`SigningKeys::jwks`], RFC 7517 §5), and
//! [`SigningKeys::decoding_key`] finds the key that verifies a token we issued (for
//! example an `id_token_hint`).
//!
//! ```
//! use tower_oauth_toolkit::provider::oidc::keys::SigningKeys;
//! use tower_oauth_toolkit::settings::{Secret, Settings};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut settings = Settings::default();
//! settings.oidc_rsa_private_key =
//!     Secret::new(include_str!("../../../tests/fixtures/rsa_private.pem"));
//! let keys = SigningKeys::from_settings(&settings)?.expect("a key is configured");
//! let token = keys.sign("at+jwt", &serde_json::json!({ "sub": "alice" }))?;
//! let header = jsonwebtoken::decode_header(&token)?;
//! assert_eq!(header.kid.as_deref(), Some(keys.active().kid()));
//! assert_eq!(keys.jwks()["keys"][0]["kid"], keys.active().kid());
//! # Ok(()) }
//! ```
//!
//! ## Choices
//! - **The `kid` is the key's RFC 7638 JWK thumbprint** (SHA-256 of the canonical
//!   `{"e":…,"kty":"RSA","n":…}`, base64url without padding). It is what DOT publishes
//!   (jwcrypto's `JWK.thumbprint()`), so tokens DOT signed with the same key still find
//!   their key after a move to this crate. It needs no setting, is the same on every
//!   server that shares the key and across restarts, and changes exactly when the key
//!   changes.
//! - **Keys are loaded once**, in [`SigningKeys::from_settings`]: decoding the PEM,
//!   checking the key, deriving the public JWK and its thumbprint and building the
//!   `jsonwebtoken` [`EncodingKey`] and [`DecodingKey`] never happen per request. Loading
//!   also validates the key (aws-lc checks its structure and its size, 2048 to 8192
//!   bits), so a bad key stops the server at start-up instead of failing the first token
//!   request. Measured here (release build, 2 shared cores): loading one key ~0.35 ms,
//!   an RS256 signature ~0.25 ms, serializing a two-key JWKS ~2 µs.
//!   `jsonwebtoken` 11's aws-lc backend runs `RsaKeyPair::from_der` on the
//!   `EncodingKey`'s DER bytes inside every `encode`, so signing here does not go through
//!   it: each key holds its parsed `aws_lc_rs` key pair and [`SigningKeys::sign`] builds
//!   the compact JWS itself (`benches/oidc.rs` measures `sign` and loading the keys;
//!   BENCHMARKS.md has both figures).
//! - **Both PEM forms are accepted**: PKCS#1 (`-----BEGIN RSA PRIVATE KEY-----`, what
//!   `openssl genrsa` wrote before OpenSSL 3) and PKCS#8 (`-----BEGIN PRIVATE KEY-----`).
//!   `n` and `e` are read from the key itself by `jsonwebtoken`'s crypto backend, so no
//!   ASN.1 is parsed here. Encrypted keys are refused with an explanation.
//! - **Inactive keys** are published in the JWKS and verify our own tokens, but never
//!   sign. Keep a retired key there for as long as tokens it signed may still be
//!   presented (the longest ID-token or JWT access-token lifetime). Relying parties cache
//!   the JWKS for up to `OIDC_JWKS_MAX_AGE_SECONDS`, so one that does not re-fetch on an
//!   unknown `kid` may refuse a new active key's tokens for that long. As in DOT,
//!   inactive keys are only read when `OIDC_RSA_PRIVATE_KEY` is set. A key that is listed
//!   twice, or that is also the active key, is published once (and a warning is logged).
//! - **Nothing here prints key material**: the `Debug` impls show only `kid`s, and errors
//!   name the setting and the problem, never the key's text.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::settings::Settings;

/// DOT's name of the active key's setting, used in error messages.
const ACTIVE_SETTING: &str = "OIDC_RSA_PRIVATE_KEY";
/// DOT's name of the inactive keys' setting, used in error messages.
const INACTIVE_SETTING: &str = "OIDC_RSA_PRIVATE_KEYS_INACTIVE";

/// Loading a signing key or signing with it failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// A configured key is not a usable RSA private key. Displays as
    /// `OIDC_RSA_PRIVATE_KEY: not an RSA private key: <reason>` (or
    /// `OIDC_RSA_PRIVATE_KEYS_INACTIVE item 2 of 3: …`).
    #[error("{setting}: not an RSA private key: {reason}")]
    InvalidKey {
        /// The setting, and for `OIDC_RSA_PRIVATE_KEYS_INACTIVE` which item of it
        /// (counting from 1).
        setting: String,
        /// What is wrong with the key; never contains key material.
        reason: String,
    },
    /// Signing a JWT failed: the claims could not be serialized to JSON, or the RSA
    /// operation failed.
    #[error("signing a JWT with RSA key {kid} failed: {reason}")]
    Sign {
        /// The `kid` of the key that was used.
        kid: String,
        /// The underlying error.
        reason: String,
    },
}

/// One RSA key pair: its `kid`, its public JWK and the `jsonwebtoken` keys to sign and
/// verify with, all built once when the key is loaded.
///
/// `Debug` shows only the `kid`. See the [module docs](self).
#[derive(Clone)]
pub struct RsaKey {
    /// The RFC 7638 JWK thumbprint (SHA-256, base64url without padding).
    kid: String,
    /// The public JWK: `kty`, `use`, `alg`, `kid`, `n`, `e`.
    jwk: Value,
    /// The private key, parsed once, for signing.
    pair: std::sync::Arc<aws_lc_rs::signature::RsaKeyPair>,
    /// The public key (`n`, `e`), for verifying.
    decoding: DecodingKey,
}

impl RsaKey {
    /// Loads a PEM private key (PKCS#1 or PKCS#8). The error is a reason for
    /// [`KeyError::InvalidKey`]; the caller adds the setting's name.
    fn from_pem(pem: &str) -> Result<Self, String> {
        let pem = pem.trim();
        if pem.is_empty() {
            return Err("the value is empty".to_owned());
        }
        check_pem_label(pem)?;
        let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(|e| describe(&e, pem))?;
        // aws-lc parses and validates the private key here and gives `n` and `e`
        // (big-endian, without leading zero bytes) already base64url-encoded.
        let public =
            Jwk::from_encoding_key(&encoding, Algorithm::RS256).map_err(|e| describe(&e, pem))?;
        let AlgorithmParameters::RSA(rsa) = public.algorithm else {
            return Err("the key's public half is not an RSA key".to_owned());
        };
        let decoding = DecodingKey::from_rsa_components(&rsa.n, &rsa.e)
            .map_err(|e| format!("its public half is unusable: {e}"))?;
        let kid = rfc7638_thumbprint(&rsa.n, &rsa.e);
        let pair = std::sync::Arc::new(key_pair(pem)?);
        let jwk = json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": kid,
            "n": rsa.n,
            "e": rsa.e,
        });
        Ok(Self {
            kid,
            jwk,
            pair,
            decoding,
        })
    }

    /// The key id: the key's RFC 7638 JWK thumbprint (SHA-256, base64url without
    /// padding), as DOT computes it. It is the `kid` of the tokens this key signs and of
    /// its JWK.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public JWK (RFC 7517 §4, RFC 7518 §6.3.1): `kty: "RSA"`, `use: "sig"`,
    /// `alg: "RS256"`, `kid`, and `n` and `e` in base64url without padding.
    pub fn jwk(&self) -> &Value {
        &self.jwk
    }
}

impl fmt::Debug for RsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RsaKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// The provider's RSA keys: the active key (`OIDC_RSA_PRIVATE_KEY`), which signs, and the
/// inactive ones (`OIDC_RSA_PRIVATE_KEYS_INACTIVE`), which are only published and used to
/// verify.
///
/// Build it once with [`from_settings`](Self::from_settings) and share it (it is cheap to
/// put behind an `Arc`). `Debug` shows only the `kid`s. See the [module docs](self).
#[derive(Clone)]
pub struct SigningKeys {
    /// Signs every token.
    active: RsaKey,
    /// Published and verifying only; never the active key, no two with the same `kid`.
    inactive: Vec<RsaKey>,
}

impl SigningKeys {
    /// Loads `OIDC_RSA_PRIVATE_KEY` and `OIDC_RSA_PRIVATE_KEYS_INACTIVE`.
    ///
    /// Returns `Ok(None)` when `OIDC_RSA_PRIVATE_KEY` is empty (or only whitespace): no
    /// RS256 signing is configured, and, as in DOT, the inactive keys are then not read.
    /// A key that is listed twice, or an inactive key that is the active key, is kept
    /// once.
    ///
    /// # Errors
    /// [`KeyError::InvalidKey`] naming the setting (and the item of
    /// `OIDC_RSA_PRIVATE_KEYS_INACTIVE`) when a value is not an unencrypted RSA private
    /// key of 2048 to 8192 bits in PKCS#1 or PKCS#8 PEM form.
    pub fn from_settings(settings: &Settings) -> Result<Option<Self>, KeyError> {
        let pem = settings.oidc_rsa_private_key.expose();
        if pem.trim().is_empty() {
            return Ok(None);
        }
        let active = RsaKey::from_pem(pem).map_err(|reason| KeyError::InvalidKey {
            setting: ACTIVE_SETTING.to_owned(),
            reason,
        })?;

        let listed = &settings.oidc_rsa_private_keys_inactive;
        let mut inactive: Vec<RsaKey> = Vec::with_capacity(listed.len());
        for (index, secret) in listed.iter().enumerate() {
            let item = format!("{INACTIVE_SETTING} item {} of {}", index + 1, listed.len());
            let key = RsaKey::from_pem(secret.expose()).map_err(|reason| KeyError::InvalidKey {
                setting: item.clone(),
                reason,
            })?;
            if key.kid == active.kid {
                tracing::warn!(kid = %key.kid, "{item} is the active key ({ACTIVE_SETTING}); ignored");
            } else if inactive.iter().any(|k| k.kid == key.kid) {
                tracing::warn!(kid = %key.kid, "{item} is listed more than once; ignored");
            } else {
                inactive.push(key);
            }
        }
        Ok(Some(Self { active, inactive }))
    }

    /// The key that signs.
    pub fn active(&self) -> &RsaKey {
        &self.active
    }

    /// The JWK Set (RFC 7517 §5) to publish at `.well-known/jwks.json`:
    /// `{"keys": [active, inactive…]}`, the active key first, each `kid` once.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.all().map(|k| k.jwk.clone()).collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` as an RS256 JWS with the active key.
    ///
    /// The header is `{"typ": typ, "alg": "RS256", "kid": <active kid>}`; pass `"at+jwt"`
    /// for an RFC 9068 access token, `"JWT"` for an ID token. An empty `typ` leaves the
    /// `typ` header out.
    ///
    /// # Errors
    /// [`KeyError::Sign`] when `claims` cannot be serialized to JSON (for example a map
    /// with non-string keys) or the RSA operation fails.
    pub fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, KeyError> {
        let key = &self.active;
        let fail = |reason: String| KeyError::Sign {
            kid: key.kid.clone(),
            reason,
        };
        // The header as jsonwebtoken's `Header` serializes it (same field order), so a
        // token is byte-for-byte what `jsonwebtoken::encode` would give.
        let mut header = Header::new(Algorithm::RS256);
        header.typ = (!typ.is_empty()).then(|| typ.to_owned());
        header.kid = Some(key.kid.clone());
        let header = serde_json::to_vec(&header).map_err(|e| fail(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| fail(e.to_string()))?;
        let modulus = key.pair.public_modulus_len();
        let mut jws = String::with_capacity((header.len() + claims.len() + modulus) * 4 / 3 + 8);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jws);
        let mut signature = vec![0u8; modulus];
        key.pair
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                jws.as_bytes(),
                &mut signature,
            )
            .map_err(|_| fail("the RSA operation failed".into()))?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    /// The public key with this `kid`, active or inactive, to verify a token we signed
    /// (for example an `id_token_hint`). `None` for an unknown `kid`.
    pub fn decoding_key(&self, kid: &str) -> Option<&DecodingKey> {
        self.all().find(|k| k.kid == kid).map(|k| &k.decoding)
    }

    /// The active key, then the inactive ones.
    fn all(&self) -> impl Iterator<Item = &RsaKey> {
        std::iter::once(&self.active).chain(&self.inactive)
    }
}

impl fmt::Debug for SigningKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKeys")
            .field("active", &self.active.kid)
            .field(
                "inactive",
                &self
                    .inactive
                    .iter()
                    .map(|k| k.kid.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// The RFC 7638 JWK thumbprint of an RSA public key, with SHA-256: the required members
/// in lexicographic order without whitespace (§3.2), hashed, base64url without padding.
/// `n` and `e` are base64url text, so they need no JSON escaping.
fn rfc7638_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Accepts the two PEM labels of an unencrypted RSA private key and explains the
/// common mistakes (public key, certificate, encrypted or non-RSA key) before
/// `jsonwebtoken` gives a less helpful error. Only the label is ever quoted back.
/// The aws-lc key pair of a PEM private key (PKCS#8 or PKCS#1), parsed once.
fn key_pair(pem: &str) -> Result<aws_lc_rs::signature::RsaKeyPair, String> {
    use base64::engine::general_purpose::STANDARD;
    let body: String = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("-----") && !l.contains(':'))
        .collect();
    let der = STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("its PEM body is not base64: {e}"))?;
    let pair = if pem.contains("BEGIN RSA PRIVATE KEY") {
        aws_lc_rs::signature::RsaKeyPair::from_der(&der)
    } else {
        aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der)
    };
    pair.map_err(|e| format!("aws-lc refused the key: {e}"))
}

fn check_pem_label(pem: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected `-----BEGIN PRIVATE KEY-----` (PKCS#8) or \
                            `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1)";
    const ENCRYPTED: &str = "the key is encrypted; store it decrypted \
                             (`openssl pkey -in key.pem -out decrypted.pem`)";
    const BEGIN: &str = "-----BEGIN ";
    let label = pem.find(BEGIN).and_then(|start| {
        let rest = &pem[start + BEGIN.len()..];
        rest.find("-----").map(|end| rest[..end].trim())
    });
    let Some(label) = label else {
        return Err(format!("no PEM block found; {EXPECTED}"));
    };
    match label {
        "RSA PRIVATE KEY" if pem.contains("Proc-Type: 4,ENCRYPTED") => Err(ENCRYPTED.to_owned()),
        "PRIVATE KEY" | "RSA PRIVATE KEY" => Ok(()),
        "ENCRYPTED PRIVATE KEY" => Err(ENCRYPTED.to_owned()),
        "PUBLIC KEY" | "RSA PUBLIC KEY" => Err("this is a public key; the setting takes the \
             private key (its public half is derived from it for the JWKS)"
            .to_owned()),
        "CERTIFICATE" => Err("this is a certificate; the setting takes the private key".to_owned()),
        "EC PRIVATE KEY" => {
            Err("this is an EC key; only RSA keys are supported (RS256)".to_owned())
        }
        "OPENSSH PRIVATE KEY" => Err("this is an OpenSSH-format key; convert it to PKCS#8 \
             (`ssh-keygen -p -m PKCS8 -f <file>`)"
            .to_owned()),
        other
            if !other.is_empty()
                && other.len() <= 40
                && other.bytes().all(|b| b.is_ascii_uppercase() || b == b' ') =>
        {
            Err(format!("unexpected PEM block `{other}`; {EXPECTED}"))
        }
        _ => Err(format!("malformed PEM header; {EXPECTED}")),
    }
}

/// A key-loading error from `jsonwebtoken` (or aws-lc beneath it), in words. `pem` is
/// only used to tell which kind of non-RSA key it is.
fn describe(err: &JwtError, pem: &str) -> String {
    match err.kind() {
        ErrorKind::InvalidKeyFormat if EncodingKey::from_ec_pem(pem.as_bytes()).is_ok() => {
            "this is an EC key; only RSA keys are supported (RS256)".to_owned()
        }
        ErrorKind::InvalidKeyFormat if EncodingKey::from_ed_pem(pem.as_bytes()).is_ok() => {
            "this is an Ed25519 key; only RSA keys are supported (RS256)".to_owned()
        }
        ErrorKind::InvalidKeyFormat => {
            "the PEM is damaged or does not hold an RSA key in PKCS#1 or PKCS#8 form".to_owned()
        }
        ErrorKind::InvalidRsaKey(msg) => match msg.as_str() {
            "TooSmall" => "the key is smaller than 2048 bits".to_owned(),
            "TooLarge" => "the key is larger than 8192 bits".to_owned(),
            other => format!("the key is damaged or inconsistent (aws-lc: {other})"),
        },
        _ => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use jsonwebtoken::{decode, decode_header, Validation};
    use serde_json::Map;

    use super::*;
    use crate::settings::Secret;

    const KEY_1: &str = include_str!("../../../tests/fixtures/rsa_private.pem");
    const KEY_2: &str = include_str!("../../../tests/fixtures/rsa_private_2.pem");
    const JWK_1: &str = include_str!("../../../tests/fixtures/rsa_public.jwk.json");
    const JWK_2: &str = include_str!("../../../tests/fixtures/rsa_public_2.jwk.json");
    const PUBLIC_PEM_1: &str = include_str!("../../../tests/fixtures/rsa_public.pem");

    /// A P-256 key in PKCS#8 form: a private key, but not an RSA one.
    const EC_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgsR5LdEebQLBRSCEp
diJWi8bf0bwU59Rg5uPcE9Km3iuhRANCAASPaxV0DZhxkHF8wApmdc8IDK6f6oeI
P0+n18zuNmg4BzQNtAccz91VScYZx9FgurMDASQ1bNU4wsBrarKb3D4r
-----END PRIVATE KEY-----";

    fn settings(active: &str, inactive: &[&str]) -> Settings {
        Settings {
            oidc_rsa_private_key: Secret::new(active),
            oidc_rsa_private_keys_inactive: inactive.iter().map(|k| Secret::new(*k)).collect(),
            ..Settings::default()
        }
    }

    fn keys(active: &str, inactive: &[&str]) -> SigningKeys {
        SigningKeys::from_settings(&settings(active, inactive))
            .expect("keys load")
            .expect("a key is configured")
    }

    fn load_error(active: &str) -> String {
        SigningKeys::from_settings(&settings(active, &[]))
            .expect_err("the key must be refused")
            .to_string()
    }

    fn claims() -> Value {
        let now = jsonwebtoken::get_current_timestamp();
        json!({
            "iss": "https://issuer.example/o",
            "sub": "42",
            "aud": "client-1",
            "iat": now,
            "exp": now + 600,
            "nonce": "n-0S6_WzA2Mj",
        })
    }

    fn validation() -> Validation {
        let mut validation = Validation::new(Algorithm::RS256);
        validation.set_audience(&["client-1"]);
        validation.set_issuer(&["https://issuer.example/o"]);
        validation
    }

    #[test]
    fn rfc7638_section_3_1_example() {
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        assert_eq!(
            rfc7638_thumbprint(n, "AQAB"),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn fixture_keys_load_with_the_fixture_jwks_n_and_e() {
        for (pem, expected) in [(KEY_1, JWK_1), (KEY_2, JWK_2)] {
            let expected: Value = serde_json::from_str(expected).unwrap();
            let key = RsaKey::from_pem(pem).unwrap();
            let jwk = key.jwk();
            assert_eq!(jwk["n"], expected["n"]);
            assert_eq!(jwk["e"], expected["e"]);
            assert_eq!(jwk["kty"], "RSA");
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], "RS256");
            assert_eq!(jwk["kid"], key.kid());
            let (n, e) = (jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap());
            assert_eq!(key.kid(), rfc7638_thumbprint(n, e));
            // No leading zero byte in the modulus: 2048 bits are exactly 256 bytes.
            assert_eq!(URL_SAFE_NO_PAD.decode(n).unwrap().len(), 256);
        }
        assert_ne!(
            RsaKey::from_pem(KEY_1).unwrap().kid(),
            RsaKey::from_pem(KEY_2).unwrap().kid()
        );
    }

    #[test]
    fn pkcs1_and_pkcs8_forms_load_as_the_same_key() {
        assert!(KEY_1.starts_with("-----BEGIN PRIVATE KEY-----"));
        assert!(PKCS1_KEY_1.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
        let pkcs8 = RsaKey::from_pem(KEY_1).unwrap();
        let pkcs1 = RsaKey::from_pem(PKCS1_KEY_1).unwrap();
        assert_eq!(pkcs1.kid(), pkcs8.kid());
        assert_eq!(pkcs1.jwk(), pkcs8.jwk());
        // Both sign tokens that the other's public key verifies.
        let token = keys(PKCS1_KEY_1, &[]).sign("JWT", &claims()).unwrap();
        decode::<Value>(&token, &pkcs8.decoding, &validation()).unwrap();
    }

    #[test]
    fn surrounding_whitespace_and_crlf_line_ends_are_accepted() {
        let crlf = KEY_1.replace('\n', "\r\n");
        let padded = format!("\n  {KEY_1}\n\n");
        let kid = RsaKey::from_pem(KEY_1).unwrap().kid;
        assert_eq!(RsaKey::from_pem(&crlf).unwrap().kid, kid);
        assert_eq!(RsaKey::from_pem(&padded).unwrap().kid, kid);
    }

    #[test]
    fn empty_setting_means_no_keys() {
        for empty in ["", "  \n"] {
            let loaded = SigningKeys::from_settings(&settings(empty, &["garbage"])).unwrap();
            assert!(loaded.is_none());
        }
        assert!(SigningKeys::from_settings(&Settings::default())
            .unwrap()
            .is_none());
    }

    #[test]
    fn signed_token_verifies_with_decoding_key_and_with_the_public_pem() {
        let keys = keys(KEY_1, &[]);
        let token = keys.sign("at+jwt", &claims()).unwrap();

        let header = decode_header(&token).unwrap();
        assert_eq!(header.alg, Algorithm::RS256);
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        assert_eq!(header.kid.as_deref(), Some(keys.active().kid()));

        let own = keys.decoding_key(keys.active().kid()).unwrap();
        let data = decode::<Map<String, Value>>(&token, own, &validation()).unwrap();
        assert_eq!(data.claims["sub"], "42");
        assert_eq!(data.claims["nonce"], "n-0S6_WzA2Mj");

        let public = DecodingKey::from_rsa_pem(PUBLIC_PEM_1.as_bytes()).unwrap();
        decode::<Map<String, Value>>(&token, &public, &validation()).unwrap();

        // A tampered payload fails.
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"1","aud":"client-1","exp":9999999999}"#);
        parts[1] = &forged;
        assert!(decode::<Value>(&parts.join("."), own, &validation()).is_err());
    }

    #[test]
    fn typ_header_is_as_given() {
        let keys = keys(KEY_1, &[]);
        let typ = |t: &str| decode_header(keys.sign(t, &claims()).unwrap()).unwrap().typ;
        assert_eq!(typ("JWT").as_deref(), Some("JWT"));
        assert_eq!(typ("at+jwt").as_deref(), Some("at+jwt"));
        assert_eq!(typ(""), None);
    }

    #[test]
    fn keys_can_be_shared_between_threads() {
        fn send_sync<T: Send + Sync + 'static>() {}
        send_sync::<SigningKeys>();
        send_sync::<KeyError>();
    }

    #[test]
    fn unknown_kid_has_no_decoding_key() {
        let keys = keys(KEY_1, &[]);
        assert!(keys.decoding_key("").is_none());
        assert!(keys.decoding_key("key-1").is_none());
    }

    #[test]
    fn inactive_key_is_published_and_verifies_but_never_signs() {
        let keys = keys(KEY_1, &[KEY_2]);
        let active = keys.active().kid().to_owned();
        let retired = RsaKey::from_pem(KEY_2).unwrap().kid;
        assert_ne!(active, retired);

        let jwks = keys.jwks();
        let kids: Vec<&str> = jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        assert_eq!(kids, [active.as_str(), retired.as_str()]);
        for jwk in jwks["keys"].as_array().unwrap() {
            assert!(
                jwk.get("d").is_none() && jwk.get("p").is_none(),
                "public only"
            );
        }

        for _ in 0..3 {
            let token = keys.sign("JWT", &claims()).unwrap();
            assert_eq!(
                decode_header(&token).unwrap().kid.as_deref(),
                Some(active.as_str())
            );
            let retired_key = keys.decoding_key(&retired).unwrap();
            assert!(decode::<Value>(&token, retired_key, &validation()).is_err());
        }

        // A token the retired key signed (before the rotation) still verifies.
        let old = self::keys(KEY_2, &[]).sign("JWT", &claims()).unwrap();
        let kid = decode_header(&old).unwrap().kid.unwrap();
        decode::<Value>(&old, keys.decoding_key(&kid).unwrap(), &validation()).unwrap();
    }

    #[test]
    fn jwks_lists_each_kid_once() {
        let keys = keys(KEY_1, &[KEY_2, KEY_1, PKCS1_KEY_1, KEY_2]);
        let jwks = keys.jwks();
        assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
        assert_eq!(keys.inactive.len(), 1);
    }

    #[test]
    fn bad_active_key_errors_name_the_setting() {
        let truncated = &KEY_1[..KEY_1.len() / 2];
        let mut damaged = KEY_1.to_owned();
        damaged.replace_range(200..204, "AAAA");
        let cases: [(&str, &str); 12] = [
            ("garbage", "no PEM block found"),
            (
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                "PKCS#1 or PKCS#8",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\n!!!!\n-----END RSA PRIVATE KEY-----",
                "PKCS#1 or PKCS#8",
            ),
            (truncated, "PKCS#1 or PKCS#8"),
            (&damaged, "damaged or inconsistent"),
            (PUBLIC_PEM_1, "this is a public key"),
            (EC_KEY, "this is an EC key"),
            (SMALL_KEY, "smaller than 2048 bits"),
            (
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\
                 DEK-Info: AES-128-CBC,0011\n\nAAAA\n-----END RSA PRIVATE KEY-----",
                "encrypted",
            ),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
                "certificate",
            ),
            (
                "-----BEGIN -----\nAAAA\n-----END -----",
                "malformed PEM header",
            ),
        ];
        for (pem, reason) in cases {
            let message = load_error(pem);
            assert!(
                message.starts_with("OIDC_RSA_PRIVATE_KEY: not an RSA private key: "),
                "{message}"
            );
            assert!(
                message.contains(reason),
                "{message:?} should contain {reason:?}"
            );
        }
    }

    #[test]
    fn bad_inactive_key_error_names_the_item() {
        let err = SigningKeys::from_settings(&settings(KEY_1, &[KEY_2, "garbage"])).unwrap_err();
        assert!(matches!(err, KeyError::InvalidKey { .. }));
        assert!(
            err.to_string().starts_with(
                "OIDC_RSA_PRIVATE_KEYS_INACTIVE item 2 of 2: not an RSA private key: no PEM block"
            ),
            "{err}"
        );
        let err = SigningKeys::from_settings(&settings(KEY_1, &[""])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "OIDC_RSA_PRIVATE_KEYS_INACTIVE item 1 of 1: not an RSA private key: the value is empty"
        );
    }

    #[test]
    fn errors_and_debug_never_show_key_material() {
        // A line from the middle of the key's base64 body.
        let body_line = KEY_1.lines().nth(5).unwrap();
        let mut damaged = KEY_1.to_owned();
        damaged.replace_range(200..204, "AAAA");
        for pem in [&damaged[..], &KEY_1[..KEY_1.len() / 2]] {
            let message = load_error(pem);
            assert!(!message.contains(body_line), "{message}");
        }

        let keys = keys(KEY_1, &[KEY_2]);
        let debug = format!("{keys:?} {:?}", keys.active());
        assert!(debug.contains(keys.active().kid()));
        assert!(!debug.contains(body_line), "{debug}");
        assert!(
            !debug.contains(keys.active().jwk()["n"].as_str().unwrap()),
            "{debug}"
        );
    }

    #[test]
    fn unserializable_claims_are_an_error_not_a_panic() {
        let keys = keys(KEY_1, &[]);
        let claims: HashMap<(u8, u8), u8> = HashMap::from([((1, 2), 3)]);
        let err = keys.sign("JWT", &claims).unwrap_err();
        assert!(matches!(err, KeyError::Sign { .. }));
        assert!(
            err.to_string().starts_with("signing a JWT with RSA key "),
            "{err}"
        );
    }

    #[test]
    fn mangled_pems_never_panic() {
        // Truncations and single-character changes anywhere in the text: each either
        // loads (a change in the armour lines or padding) or is refused, never panics.
        for pem in [KEY_1, PKCS1_KEY_1] {
            for cut in (0..pem.len()).step_by(61) {
                let _ = RsaKey::from_pem(&pem[..cut]);
            }
            for at in (0..pem.len()).step_by(37) {
                for replacement in ["A", "-", "\n", "é"] {
                    let mut mangled = pem.to_owned();
                    if mangled.is_char_boundary(at) && mangled.is_char_boundary(at + 1) {
                        mangled.replace_range(at..at + 1, replacement);
                        let _ = RsaKey::from_pem(&mangled);
                    }
                }
            }
        }
        for odd in [
            "-----BEGIN ",
            "-----BEGIN -----",
            "-----BEGIN é-----",
            "\u{0}",
        ] {
            assert!(RsaKey::from_pem(odd).is_err());
        }
    }

    /// `rsa_private.pem` in PKCS#1 form (`openssl rsa -traditional`).
    const PKCS1_KEY_1: &str = r"-----BEGIN RSA PRIVATE KEY-----
MIIEogIBAAKCAQEAxmSTd2YOnJLo6S1aT2k5Kk8YUopmKa8JPQCkJrfo7PAYAz24
SYQ5jqeUy8zNZCfqwBI2RJW1IgJJN2vfDVLODde06yu8MJB5Xhdw1VZomtxA541i
hkpZY+mEnzJawTXcJTUlJIRrr2+Yu3/WbxBewd3MsH/RNd9/ppP7ctYjEARCBC2V
2G8e2r/m9pH0m6tmJ8GgF9aLX+vHzXuk33WICgpqq1LubTk19YoR2vFHpWj4xV1B
YL4sLL1BGpCWZ8guhx+w4zjjVICNIeew3gt4MUnit3jQNnnlasedNq2cJPrS4qyG
kL3Gb25fSSYe2Rw9yTX0SGRD8xfDpvhgwW2x0QIDAQABAoIBACRMjKrA8pV1T8Yy
NR7oerwiAqo/hlfEHeWac25eIfEQMOSO62QQHFPcl53+V+omX45LBsDfv2d8kZbh
VstiRi9EM2b/9ovQM1Si51MxXyxOdlWnicpWWiqstEZIeVB2oVPxeF1JGUbdHU3Z
IwvpK90+zs/QYx//R6Tb2Jr3US0Bt/RUhX/bh/X0qGtdrLphOK8qUhjEw/wZGKTH
aNr7Zu4Zhr5B4QEklYSZqvebs5Szu7/7BlpOwiSq7wCid/66YAQkUa3TwQqePsBv
NEwqVqD0D0WQ7uZGB/tKYdtbbKDfpDDZo+u6aJPt5vJAjamhVbdbePqEaaayun+5
7LkTsRECgYEA5KIN+g3XezgrNaCJkF7fw8cK59BLR2s0TMqwwNaH0oUtIF3j04rl
o55/9NOJ5oHDkgmM9xBcVWDr7fJhFEdsqiLUpZc+2B8OP2o5siwbJEhCSy7eJC3/
pceNIRhcYnEB4BlcTjjyxC2fRxzh5aSDFcW3zi5+BsnnRW37Wmh9BN0CgYEA3iPh
Raj3ao7RyVqDnjMliPa8SVM0JN/K6fdTqZfmTX6JBxlvYID7cuNzPy6WQjIHYpkV
Q03nPdGqbvESpuLBuNCR4pSZE+7GJ+omhIa20Skghe2q6K6kFn2U8FmOQ3QL+CJz
UsP8BTeoZAYaw80unZzG6+ym2V8nB/V5Ax+mp4UCgYBGGL1KRgYjvCPbTD4A6mWW
g6b/TahW3DJrvNUWOm/oBnbAbqjUCcjAMm8uo9CqwGwykQUMFpMIhi+vg1lqOz/A
pe8mWcmlv1fB75KC4uzrYdAZduQamZPAwv6s/+gLMnSNvZjETsd3iDlGNz+3BYo/
GaBx8WUoNazXZ5HhtRlnbQKBgF70W2EZftkvv4Egjc5b8pl/TrDRPiLc/rHQJRUD
d1B83DoKp09LEzDjBOpnEZeuJvYAldQ1QrlsHDxcFCr+FuzXSuTdvCmHEXESZ/CS
XSc/O0XEeCAKNt3eRIIQ5fzzaAJjR4SDfgEE75gB/ALifCCnWWiTuiaEw/xk85tg
Ni65AoGAIN6dxh4Wl5qS19aN1TzJdXXweN0n9aYxamxDacrycwHPk2KnDduhyt8x
jytfPNiofLC0A2RlX4qS3l7F75xsSOEAr4OVPT2IwTe1x95Bs58VE+XGt4KmCznq
7ypMfERplDGCsXZmkr68mZ74Ar1DP00TEUZICC2Z01yrYLVMzUU=
-----END RSA PRIVATE KEY-----";

    /// A 1024-bit RSA key: too small for aws-lc (and for RFC 7518 §3.3).
    const SMALL_KEY: &str = r"-----BEGIN PRIVATE KEY-----
MIICeAIBADANBgkqhkiG9w0BAQEFAASCAmIwggJeAgEAAoGBAL8aEiHW+Rzc7NqK
GVve3eyQFDlxfVxd4+yTZPSySanTO3+6LToTTjc/7e/KiRGw/IIIeoVwgS995dKC
BqsJpWERi5VGZycTyYn63++NhBBrDIUKLbcx6ZnQ9iiJgXb6EuCN+LiRu+z38Pt5
bgdeSugrwID/8gDGKjeNOlLMruOZAgMBAAECgYEArLYFOSwujFVmgsRY0t0DOO+m
N5xILhh1C7TSgww24xMTLQa4JUqZX/mZMySa6LBKJcM/6CWbu65O7QeyuxXGrfnE
gbxyYUIzd+09075f5wZ3XEC2BzVZ/U1pzwKsQQeAJNxpZQy+Th7kNuT8naAOuUaV
1bSfTmQpDFMiQKIy8+ECQQDkvbx0VseX3pzohlqY3+IB+T/677BywKuLRYhLl8YS
BgCy2LvKzIe2CjG7xR0YZZEmTP7UC7x0E/I+VE/bs2p1AkEA1eAQBMvyPDtyZdZb
jFUdYTCmBaDvNgfa3lEl7piikREMTWjjCKs/wOAvTBOFsa4CxvlqY522DjteraeK
VaWIFQJBAIxX5ZKz085YZYk9NcTqSG7RkPHTsj0V/ap7xP4sZviT+kXBOKdbCkEk
zBLbA9j+KCqJvyg28y99NXoMnNq9oCkCQQDG0VqyytBtc6m9x44lHz6HiczcMKYO
6TBqOK91ZMjC6EEyeM2M0n0alI0DQKao7KVCSLvAzOxfwIscDUJIqe+dAkAtnwnq
+TMyaCWZG9sP29SynsFu2JMJW3k5yvmRfNmu7IxB/uKGylyIy01CJd0OnK67cEBc
Duy3YxdBjgtFYLcU
-----END PRIVATE KEY-----";
}
