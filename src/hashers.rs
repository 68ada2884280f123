//! Hashing and verification of client secrets and user passwords.
//!
//! Secrets are stored as [PHC strings] made with **Argon2id** (the `argon2` crate's default
//! parameters: 19 MiB, 2 passes, 1 lane — OWASP's recommendation). Django's
//! `pbkdf2_sha256$<iterations>$<salt>$<base64 hash>` strings, DOT's default, are verified
//! too (and can be produced with `CLIENT_SECRET_HASHER = "pbkdf2_sha256"`), so that a DOT
//! database can be imported without asking every client for a new secret.
//!
//! Every comparison runs in constant time. An application whose secret is stored
//! unhashed (`hash_client_secret = false`, needed for HS256 ID tokens) is compared in
//! constant time against the plaintext.
//!
//! ```
//! use tower_oauth_toolkit::hashers::{hash_secret, verify_secret, SecretHasher};
//!
//! let stored = hash_secret("s3cret", SecretHasher::Argon2).unwrap();
//! assert!(stored.starts_with("$argon2id$"));
//! assert!(verify_secret("s3cret", &stored));
//! assert!(!verify_secret("wrong", &stored));
//! // DOT / Django's format:
//! let django = "pbkdf2_sha256$1000$salt$qN+JnzxPIE2WfgrWPAkph8EAVeuwF7PZ0ordIY1Peq0=";
//! assert!(verify_secret("secret", django));
//! ```
//!
//! [PHC strings]: https://github.com/P-H-C/phc-string-format/blob/master/phc-sf-spec.md

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::Engine;

use crate::crypto::constant_time_eq;
use crate::model::Application;

/// Django 5.2's PBKDF2-SHA256 iteration count, used when producing Django-format hashes.
pub const DJANGO_PBKDF2_ITERATIONS: u32 = 1_000_000;

/// Refuse Argon2 hashes that ask for more memory (KiB) or passes than these: a corrupted or
/// hostile row must not exhaust memory or a core.
const MAX_ARGON2_M_COST: u32 = 256 * 1024;
const MAX_ARGON2_T_COST: u32 = 16;

/// Refuse Django hashes that claim more iterations than this (a corrupted or hostile row
/// must not pin a core for minutes).
const MAX_PBKDF2_ITERATIONS: u32 = 10_000_000;

/// The algorithm used to hash new secrets (DOT's `CLIENT_SECRET_HASHER`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SecretHasher {
    /// Argon2id, PHC string (`"default"` and `"argon2"`).
    #[default]
    Argon2,
    /// Django's `pbkdf2_sha256` format, for databases shared with DOT.
    Pbkdf2Sha256,
}

impl SecretHasher {
    /// Maps a `CLIENT_SECRET_HASHER` value: `"default"`, `"argon2"` or `"pbkdf2_sha256"`.
    pub fn from_setting(name: &str) -> Option<Self> {
        match name {
            "default" | "argon2" => Some(SecretHasher::Argon2),
            "pbkdf2_sha256" => Some(SecretHasher::Pbkdf2Sha256),
            _ => None,
        }
    }
}

/// Hashing failed (only for absurd inputs; the OS random source is the other cause).
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the secret: {0}")]
pub struct HashError(String);

/// Hashes a secret or password for storage.
pub fn hash_secret(secret: &str, hasher: SecretHasher) -> Result<String, HashError> {
    match hasher {
        SecretHasher::Argon2 => {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default()
                .hash_password(secret.as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError(e.to_string()))
        }
        SecretHasher::Pbkdf2Sha256 => {
            let salt = crate::generators::generate_token(
                22,
                crate::generators::UNICODE_ASCII_CHARACTER_SET.as_bytes(),
            );
            let key = pbkdf2_sha256(secret.as_bytes(), salt.as_bytes(), DJANGO_PBKDF2_ITERATIONS);
            Ok(format!(
                "pbkdf2_sha256${DJANGO_PBKDF2_ITERATIONS}${salt}${}",
                base64::engine::general_purpose::STANDARD.encode(key)
            ))
        }
    }
}

fn pbkdf2_sha256(secret: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut out = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(secret, salt, iterations, &mut out);
    out
}

/// Whether a stored value is a hash this module recognises (Argon2 PHC or Django
/// PBKDF2-SHA256), as opposed to a plaintext secret.
pub fn is_hashed(stored: &str) -> bool {
    stored.starts_with("$argon2") || parse_django(stored).is_some()
}

fn parse_django(stored: &str) -> Option<(u32, &str, &str)> {
    let rest = stored.strip_prefix("pbkdf2_sha256$")?;
    let mut parts = rest.splitn(3, '$');
    let iterations: u32 = parts.next()?.parse().ok()?;
    let salt = parts.next()?;
    let hash = parts.next()?;
    if iterations == 0 || hash.is_empty() {
        return None;
    }
    Some((iterations, salt, hash))
}

/// Verifies a secret against a stored hash, in constant time. False for a malformed hash
/// or a plaintext value.
pub fn verify_secret(secret: &str, stored: &str) -> bool {
    if stored.starts_with("$argon2") {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let Ok(params) = argon2::Params::try_from(&parsed) else {
            return false;
        };
        if params.m_cost() > MAX_ARGON2_M_COST || params.t_cost() > MAX_ARGON2_T_COST {
            tracing::warn!("refusing an Argon2 hash with absurd cost parameters");
            return false;
        }
        return Argon2::default()
            .verify_password(secret.as_bytes(), &parsed)
            .is_ok();
    }
    if let Some((iterations, salt, hash)) = parse_django(stored) {
        if iterations > MAX_PBKDF2_ITERATIONS {
            tracing::warn!(
                iterations,
                "refusing a PBKDF2 hash with an absurd iteration count"
            );
            return false;
        }
        let Ok(expected) = base64::engine::general_purpose::STANDARD.decode(hash) else {
            return false;
        };
        let got = pbkdf2_sha256(secret.as_bytes(), salt.as_bytes(), iterations);
        return constant_time_eq(&got, &expected);
    }
    false
}

/// Checks a presented client secret against an application (DOT's `_check_secret`):
/// hashed secrets are verified, unhashed ones compared in constant time. An empty stored
/// secret never matches.
pub fn check_client_secret(app: &Application, presented: &str) -> bool {
    let stored = app.client_secret.as_str();
    if stored.is_empty() {
        return false;
    }
    if is_hashed(stored) {
        verify_secret(presented, stored)
    } else if app.hash_client_secret {
        // Marked hashed but not a hash we know: refuse rather than compare plaintext.
        false
    } else {
        constant_time_eq(presented.as_bytes(), stored.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, GrantType, Timestamp};

    fn app(secret: &str, hashed: bool) -> Application {
        Application {
            id: 1,
            client_id: "c".into(),
            user_id: None,
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            client_type: ClientType::Confidential,
            authorization_grant_type: GrantType::ClientCredentials,
            client_secret: secret.into(),
            hash_client_secret: hashed,
            name: String::new(),
            skip_authorization: false,
            created: Timestamp(0),
            updated: Timestamp(0),
            algorithm: crate::model::Algorithm::NoAlgorithm,
            allowed_origins: String::new(),
            pkce_required: None,
        }
    }

    #[test]
    fn argon2_round_trip_and_salted() {
        let a = hash_secret("pw", SecretHasher::Argon2).unwrap();
        let b = hash_secret("pw", SecretHasher::Argon2).unwrap();
        assert_ne!(a, b, "each hash has its own salt");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_secret("pw", &a) && verify_secret("pw", &b));
        assert!(!verify_secret("pW", &a));
        assert!(is_hashed(&a));
    }

    #[test]
    fn verifies_django_pbkdf2_strings() {
        // Django's format: base64(PBKDF2-HMAC-SHA256("secret", "salt", 1000 rounds, 32 bytes)).
        let stored = "pbkdf2_sha256$1000$salt$qN+JnzxPIE2WfgrWPAkph8EAVeuwF7PZ0ordIY1Peq0=";
        assert!(verify_secret("secret", stored));
        assert!(!verify_secret("Secret", stored));
        assert!(!verify_secret(
            "secret",
            "pbkdf2_sha256$1000$salt$notbase64!!"
        ));
        assert!(!verify_secret("secret", "pbkdf2_sha256$0$salt$Bw31"));
        assert!(!verify_secret(
            "secret",
            "pbkdf2_sha256$99999999999$salt$Bw31"
        ));
    }

    #[test]
    fn produces_django_format_on_request() {
        let stored = hash_secret("x", SecretHasher::Pbkdf2Sha256).unwrap();
        assert!(stored.starts_with("pbkdf2_sha256$1000000$"), "{stored}");
        assert!(verify_secret("x", &stored));
    }

    #[test]
    fn client_secret_check_by_storage_mode() {
        let hashed = hash_secret("abc", SecretHasher::Argon2).unwrap();
        assert!(check_client_secret(&app(&hashed, true), "abc"));
        assert!(
            !check_client_secret(&app(&hashed, true), &hashed),
            "the hash is not the secret"
        );
        assert!(check_client_secret(&app("plain", false), "plain"));
        assert!(!check_client_secret(&app("plain", false), "plaiN"));
        assert!(
            !check_client_secret(&app("plain", true), "plain"),
            "hashed flag, no hash"
        );
        assert!(!check_client_secret(&app("", false), ""));
    }

    #[test]
    fn refuses_argon2_hashes_with_absurd_costs() {
        // m = 4 GiB: verifying would allocate it.
        let hostile = "$argon2id$v=19$m=4194304,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
        assert!(!verify_secret("x", hostile));
    }

    #[test]
    fn hasher_setting_names() {
        assert_eq!(
            SecretHasher::from_setting("default"),
            Some(SecretHasher::Argon2)
        );
        assert_eq!(
            SecretHasher::from_setting("pbkdf2_sha256"),
            Some(SecretHasher::Pbkdf2Sha256)
        );
        assert_eq!(SecretHasher::from_setting("md5"), None);
    }
}

/// The slow-hash pool: at most one Argon2/PBKDF2 computation per CPU at a time, off the
/// async workers. Without a bound, a flood of wrong passwords or secrets (never cached)
/// would start one 19 MiB Argon2 run per request on tokio's blocking pool (up to 512
/// threads). Callers wait up to [`HASH_WAIT`] for a turn.
fn hash_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cpus)
    })
}

/// How long a request waits for a turn in the slow-hash pool before giving up.
pub const HASH_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The slow-hash pool had no turn within [`HASH_WAIT`]: the server is overloaded.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks at once; try again")]
pub struct HashPoolBusy;

/// Runs `f` (a hash verification) in the bounded slow-hash pool.
pub async fn in_hash_pool<T, F>(f: F) -> Result<T, HashPoolBusy>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let _permit = tokio::time::timeout(HASH_WAIT, hash_permits().acquire())
        .await
        .map_err(|_| HashPoolBusy)?
        .map_err(|_| HashPoolBusy)?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| HashPoolBusy)
}
