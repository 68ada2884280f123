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
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
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
        return verify_argon2(secret.as_bytes(), &parsed, params);
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

/// Argon2 verification of a parsed PHC string, on the pool thread's reused working area
/// when there is one (what `PasswordVerifier::verify_password` computes, without
/// allocating the area per run).
fn verify_argon2(secret: &[u8], parsed: &PasswordHash<'_>, params: argon2::Params) -> bool {
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = [0u8; argon2::password_hash::Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let hashed = with_blocks(blocks, |area| {
        argon.hash_password_into_with_memory(secret, salt, &mut *out, area)
    });
    hashed.is_ok() && constant_time_eq(out, expected.as_bytes())
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

    /// Hashes of every Argon2 variant and of non-default costs verify with the pool's
    /// reused working area exactly as with the `argon2` crate's own verifier.
    #[tokio::test]
    async fn argon2_variants_and_costs_verify_in_and_out_of_the_pool() {
        use argon2::password_hash::PasswordVerifier;
        let salt = SaltString::generate(&mut OsRng);
        let mut stored = Vec::new();
        for (alg, m, t, p) in [
            (argon2::Algorithm::Argon2id, 19 * 1024, 2, 1),
            (argon2::Algorithm::Argon2id, 8 * 1024, 3, 2),
            (argon2::Algorithm::Argon2i, 4 * 1024, 2, 1),
            (argon2::Algorithm::Argon2d, 32 * 1024, 1, 4),
        ] {
            let params = argon2::Params::new(m, t, p, Some(24)).unwrap();
            let a = Argon2::new(alg, argon2::Version::V0x13, params);
            stored.push(a.hash_password(b"pw", &salt).unwrap().to_string());
        }
        // Version 0x10, the other one PHC strings can name.
        let a = Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x10,
            argon2::Params::new(4096, 2, 1, None).unwrap(),
        );
        stored.push(a.hash_password(b"pw", &salt).unwrap().to_string());
        for h in stored {
            let parsed = PasswordHash::new(&h).unwrap();
            assert!(
                Argon2::default().verify_password(b"pw", &parsed).is_ok(),
                "{h}"
            );
            assert!(verify_secret("pw", &h), "{h}");
            assert!(!verify_secret("pW", &h), "{h}");
            let (h1, h2) = (h.clone(), h.clone());
            // Twice in the pool: the second run reuses (and maybe grows) the area.
            assert_eq!(
                in_hash_pool(move || verify_secret("pw", &h1)).await.ok(),
                Some(true)
            );
            assert_eq!(
                in_hash_pool(move || verify_secret("nope", &h2)).await.ok(),
                Some(false)
            );
            assert_eq!(
                in_hash_pool(move || verify_secret("pw", &h)).await.ok(),
                Some(true)
            );
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

/// The slow-hash pool: a fixed set of threads, one per CPU, that run every Argon2/PBKDF2
/// verification of the provider (client secrets, passwords), fed by a bounded queue.
///
/// - **Bounded work**: a flood of wrong passwords or secrets (never cached) can occupy at
///   most one core each per thread; requests beyond [`HASH_QUEUE_PER_CPU`] × CPUs waiting
///   ones are refused at once with [`HashPoolBusy`] (503 `temporarily_unavailable`)
///   rather than queued without end.
/// - **Bounded memory**: each thread keeps one Argon2 working area (19 MiB with the default
///   parameters) and reuses it for every verification. Running Argon2 on tokio's
///   blocking pool instead (up to 512 threads, each allocating and freeing 19 MiB) left
///   the freed areas in glibc's per-thread arenas: 250 wrong secrets took the server from
///   14 MB to 622 MB RSS. Here memory stays at threads × working area (BENCHMARKS.md,
///   "Wrong-secret flood"). A library should not pick the host's global allocator, so
///   the fix is to not allocate, not a different malloc.
///
/// The areas are not wiped between runs (neither does the `argon2` crate when it frees
/// them); they hold intermediate state of the last verification, readable only by this
/// process.
struct HashPool {
    jobs: std::sync::mpsc::SyncSender<HashJob>,
}

type HashJob = Box<dyn FnOnce() + Send>;

/// Waiting verifications allowed per CPU before the pool refuses more: at ~20 ms an
/// Argon2 check, a full queue is about 1.3 s of work.
pub const HASH_QUEUE_PER_CPU: usize = 64;

thread_local! {
    /// The Argon2 working area of a pool thread (`None` on every other thread, which
    /// allocate per run as the `argon2` crate does).
    static SCRATCH: std::cell::RefCell<Option<Vec<argon2::Block>>> = const { std::cell::RefCell::new(None) };
}

fn hash_pool() -> &'static HashPool {
    static POOL: std::sync::OnceLock<HashPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (jobs, queue) = std::sync::mpsc::sync_channel::<HashJob>(cpus * HASH_QUEUE_PER_CPU);
        let queue = std::sync::Arc::new(std::sync::Mutex::new(queue));
        for i in 0..cpus {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("oauth-hash-{i}"))
                .spawn(move || {
                    SCRATCH.with(|s| *s.borrow_mut() = Some(Vec::new()));
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a slow-hash thread");
            }
        }
        HashPool { jobs }
    })
}

/// Runs `work` on `blocks` Argon2 blocks: the pool thread's reused area, or a fresh one.
fn with_blocks<T>(blocks: usize, work: impl FnOnce(&mut [argon2::Block]) -> T) -> T {
    SCRATCH.with(|s| match s.borrow_mut().as_mut() {
        Some(area) => {
            if area.len() < blocks {
                area.resize(blocks, argon2::Block::default());
            }
            work(&mut area[..blocks])
        }
        None => work(&mut vec![argon2::Block::default(); blocks]),
    })
}

/// The slow-hash pool is full: the server is overloaded; the client may retry.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("too many password checks at once; try again")]
pub struct HashPoolBusy;

/// Runs `f` (a hash verification) in the bounded slow-hash pool (see `HashPool`'s
/// notes in the module source): [`HashPoolBusy`] at once when its queue is full.
pub async fn in_hash_pool<T, F>(f: F) -> Result<T, HashPoolBusy>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    let job: HashJob = Box::new(move || {
        let _ = tx.send(f());
    });
    hash_pool().jobs.try_send(job).map_err(|_| HashPoolBusy)?;
    rx.await.map_err(|_| HashPoolBusy)
}
