//! Client authentication at the token, revocation and introspection endpoints
//! (RFC 6749 §2.3.1): HTTP Basic (id and secret form-url-decoded) or the body
//! (`client_id` + `client_secret`); a public client by `client_id` alone.
//!
//! A stored secret is usually an Argon2id hash: tens of milliseconds of CPU to check.
//! [`VerifiedSecrets`] remembers, for a few minutes, that a (client, secret, stored hash)
//! triple checked out — keyed by a SHA-256 digest of the three, so neither the secret nor
//! the hash is kept, and a changed secret misses at once. Concurrent first requests with
//! one secret share a single hash computation (moka's `try_get_with`); failures are never
//! remembered.
//!
//! [`Applications`] keeps applications by client id for a few seconds (default 5 s), so a
//! busy client costs no database read to authenticate. A deleted application, a changed
//! secret or redirect URI takes up to that long to be seen; set it to zero
//! ([`ProviderBuilder::application_cache`](super::ProviderBuilder::application_cache)) to
//! read the store every time.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use http::HeaderMap;
use moka::future::Cache;
use sha2::{Digest, Sha256};

use super::error::OAuthError;
use super::params::Params;
use crate::hashers::{check_client_secret, in_hash_pool, HashPoolBusy};
use crate::model::Application;
use crate::store::Store;

/// Applications by client id, briefly. See the [module docs](self).
#[derive(Clone)]
pub struct Applications {
    cache: Option<Cache<String, Arc<Application>>>,
    origins: Option<Cache<(), Arc<std::collections::HashSet<String>>>>,
}

impl Applications {
    /// Entries live `ttl` (zero: no cache); at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        Applications {
            cache: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build()
            }),
            origins: (!ttl.is_zero())
                .then(|| Cache::builder().max_capacity(1).time_to_live(ttl).build()),
        }
    }

    /// Every origin some application allows (CORS preflights, which name no client):
    /// read from the store at most once per cache lifetime, so a flood of `OPTIONS`
    /// requests is not a flood of table scans.
    pub(crate) async fn allowed_origins<S: Store>(
        &self,
        store: &S,
    ) -> Result<Arc<std::collections::HashSet<String>>, OAuthError> {
        let load = || async {
            let apps = store.list_applications().await?;
            Ok::<_, OAuthError>(Arc::new(
                apps.iter()
                    .flat_map(|a| a.allowed_origin_list().map(str::to_owned))
                    .collect(),
            ))
        };
        match &self.origins {
            None => load().await,
            Some(cache) => cache
                .try_get_with((), load())
                .await
                .map_err(|e| (*e).clone()),
        }
    }

    /// Drops `client_id` (changed or deleted in this process: RFC 7592).
    pub(crate) async fn forget(&self, client_id: &str) {
        if let Some(cache) = &self.cache {
            cache.invalidate(client_id).await;
        }
        if let Some(origins) = &self.origins {
            origins.invalidate(&()).await;
        }
    }

    /// The application with `client_id` (unknown ones are not remembered).
    pub(crate) async fn get<S: Store>(
        &self,
        store: &S,
        client_id: &str,
    ) -> Result<Option<Arc<Application>>, OAuthError> {
        let Some(cache) = &self.cache else {
            return Ok(store
                .find_application_by_client_id(client_id)
                .await?
                .map(Arc::new));
        };
        if let Some(app) = cache.get(client_id).await {
            return Ok(Some(app));
        }
        match store.find_application_by_client_id(client_id).await? {
            Some(app) => {
                let app = Arc::new(app);
                cache.insert(client_id.to_owned(), app.clone()).await;
                Ok(Some(app))
            }
            None => Ok(None),
        }
    }
}

impl std::fmt::Debug for Applications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Applications")
            .field("entries", &self.cache.as_ref().map(|c| c.entry_count()))
            .finish()
    }
}

/// Remembers verified client secrets. See the [module docs](self).
#[derive(Clone)]
pub struct VerifiedSecrets {
    cache: Option<Cache<[u8; 32], ()>>,
}

impl VerifiedSecrets {
    /// Entries live `ttl` (zero disables the cache); at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        VerifiedSecrets {
            cache: (!ttl.is_zero()).then(|| {
                Cache::builder()
                    .max_capacity(capacity)
                    .time_to_live(ttl)
                    .build()
            }),
        }
    }

    fn key(app: &Application, secret: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [
            app.client_id.as_bytes(),
            secret.as_bytes(),
            app.client_secret.as_bytes(),
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.finalize().into()
    }

    /// Whether `secret` was verified as the secret of `app` within the TTL (no hashing;
    /// false without a cache).
    pub(crate) fn known(&self, app: &Application, secret: &str) -> bool {
        self.cache
            .as_ref()
            .is_some_and(|cache| cache.contains_key(&Self::key(app, secret)))
    }

    /// Whether `secret` is the secret of `app` (constant time; the slow hash off the async
    /// workers, at most once per TTL per distinct secret).
    pub async fn check(&self, app: &Application, secret: &str) -> Result<bool, HashPoolBusy> {
        let Some(cache) = &self.cache else {
            return verify_in_pool(app.clone(), secret.to_owned()).await;
        };
        let key = Self::key(app, secret);
        if cache.contains_key(&key) {
            return Ok(true);
        }
        let outcome = cache
            .try_get_with(key, async {
                match verify_in_pool(app.clone(), secret.to_owned()).await {
                    Ok(true) => Ok(()),
                    Ok(false) => Err(None),
                    Err(busy) => Err(Some(busy)),
                }
            })
            .await;
        match outcome {
            Ok(()) => Ok(true),
            Err(e) => match *e {
                Some(busy) => Err(busy),
                None => Ok(false),
            },
        }
    }
}

async fn verify_in_pool(app: Application, secret: String) -> Result<bool, HashPoolBusy> {
    in_hash_pool(move || check_client_secret(&app, &secret)).await
}

/// Costs what checking a hashed secret costs, for requests naming an unknown client, so
/// that timing does not tell which client ids exist.
/// A full pool is `HashPoolBusy` (503) here too: answering an unknown client 401 at once
/// while known ones get 503 would tell them apart.
async fn decoy_check(secret: &str) -> Result<(), HashPoolBusy> {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let secret = secret.to_owned();
    // The decoy hash itself is made (once) in the pool too: it is an Argon2 run.
    in_hash_pool(move || {
        let stored = DECOY.get_or_init(|| {
            crate::hashers::hash_secret("decoy", crate::hashers::SecretHasher::Argon2)
                .unwrap_or_default()
        });
        crate::hashers::verify_secret(&secret, stored)
    })
    .await
    .map(|_| ())
}

impl From<HashPoolBusy> for OAuthError {
    fn from(_: HashPoolBusy) -> Self {
        OAuthError::new(
            super::error::ErrorCode::TemporarilyUnavailable,
            "The server is busy checking credentials; try again.",
        )
    }
}

impl std::fmt::Debug for VerifiedSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifiedSecrets")
            .field("entries", &self.cache.as_ref().map(|c| c.entry_count()))
            .finish()
    }
}

/// The credentials a request presents. `Debug` hides the secret.
#[derive(PartialEq, Eq)]
pub(crate) struct Credentials {
    pub(crate) client_id: String,
    pub(crate) secret: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Reads the client's credentials from the `Authorization: Basic` header or the body;
/// both at once, or a malformed header, is `invalid_request`. `Ok(None)`: none sent.
pub(crate) fn credentials(
    headers: &HeaderMap,
    params: &Params,
) -> Result<Option<Credentials>, OAuthError> {
    let body_id = params.get("client_id")?;
    let body_secret = params.get("client_secret")?;
    let header = crate::resource::authorization(headers).map_err(|e| {
        OAuthError::invalid_request(format!("Malformed Authorization header: {e}."))
    })?;
    let basic = match header {
        None => None,
        Some(v) => {
            match v.split_once(' ') {
                Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                    Some(parse_basic(rest.trim())?)
                }
                // Another scheme (a Bearer token at introspection) is not client auth.
                _ => None,
            }
        }
    };
    match basic {
        Some(c) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "The client authenticated in more than one way.",
                ));
            }
            if body_id.is_some_and(|id| id != c.client_id) {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client.",
                ));
            }
            Ok(Some(c))
        }
        None => Ok(body_id.map(|id| Credentials {
            client_id: id.to_owned(),
            secret: body_secret.map(str::to_owned),
        })),
    }
}

fn parse_basic(encoded: &str) -> Result<Credentials, OAuthError> {
    let bad = || OAuthError::invalid_client("Malformed HTTP Basic credentials.");
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|_| bad())?;
    let raw = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = raw.split_once(':').ok_or_else(bad)?;
    // RFC 6749 §2.3.1: both parts are application/x-www-form-urlencoded.
    let decode = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (decode(id), decode(secret));
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Credentials {
        client_id: id,
        secret: (!secret.is_empty()).then_some(secret),
    })
}

/// Authenticates the client of a request: confidential clients by secret, public clients
/// by `client_id` alone. Every failure is the same `invalid_client` (no telling an
/// unknown client from a wrong secret).
pub(crate) async fn authenticate<S: Store, U>(
    inner: &super::Inner<S, U>,
    headers: &HeaderMap,
    params: &Params,
) -> Result<Arc<Application>, OAuthError> {
    let creds = credentials(headers, params)?
        .ok_or_else(|| OAuthError::invalid_client("Client authentication is required."))?;
    authenticate_credentials(inner, creds).await
}

/// Authenticates `creds`. A client id whose secret failed too often
/// ([`throttle`](super::throttle)) is refused before any secret is hashed — except a
/// secret the verified-secret cache already knows to be right, so guessing stops while
/// the real client, proven recently, goes on working.
pub(crate) async fn authenticate_credentials<S: Store, U>(
    inner: &super::Inner<S, U>,
    creds: Credentials,
) -> Result<Arc<Application>, OAuthError> {
    let (store, applications, secrets, throttle) = (
        &*inner.store,
        &inner.applications,
        &inner.secrets,
        &inner.throttle,
    );
    let failed = || OAuthError::invalid_client("Client authentication failed.");
    let refuse_locked = |locked: super::throttle::Locked| {
        OAuthError::invalid_client(format!(
            "Too many failed authentications of this client; try again in {} s.",
            locked.seconds()
        ))
        .with_retry_after(locked.seconds())
    };
    inner.resolve_client(&creds.client_id).await?;
    let Some(app) = applications.get(store, &creds.client_id).await? else {
        if let Some(secret) = &creds.secret {
            if let Some(locked) = throttle.client_locked(&creds.client_id).await {
                return Err(refuse_locked(locked));
            }
            decoy_check(secret).await?;
            throttle.client_failed(&creds.client_id).await;
        }
        return Err(failed());
    };
    match creds.secret {
        Some(_) if app.client_secret.is_empty() => return Err(failed()),
        Some(secret) if secrets.known(&app, &secret) => {}
        Some(secret) => {
            if let Some(locked) = throttle.client_locked(&app.client_id).await {
                return Err(refuse_locked(locked));
            }
            if !secrets.check(&app, &secret).await? {
                throttle.client_failed(&app.client_id).await;
                return Err(failed());
            }
            throttle.client_succeeded(&app.client_id).await;
        }
        None if app.is_confidential() => return Err(failed()),
        None => {}
    }
    Ok(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(auth: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, auth.parse().unwrap());
        h
    }

    #[test]
    fn basic_is_form_url_decoded() {
        // "my%3Aid" : "s%2Bcr%20t" → my:id / s+cr t
        let enc = base64::engine::general_purpose::STANDARD.encode("my%3Aid:s%2Bcr%20t");
        let c = credentials(&headers(&format!("Basic {enc}")), &Params::default())
            .unwrap()
            .unwrap();
        assert_eq!(c.client_id, "my:id");
        assert_eq!(c.secret.as_deref(), Some("s+cr t"));
    }

    #[test]
    fn two_methods_refused() {
        let enc = base64::engine::general_purpose::STANDARD.encode("id:secret");
        let p = Params::parse(b"client_secret=secret");
        assert!(credentials(&headers(&format!("Basic {enc}")), &p).is_err());
        let p = Params::parse(b"client_id=other");
        assert!(credentials(&headers(&format!("Basic {enc}")), &p).is_err());
        assert!(credentials(&headers("Basic !!!"), &Params::default()).is_err());
        let p = Params::parse(b"client_id=pub");
        assert_eq!(
            credentials(&HeaderMap::new(), &p).unwrap(),
            Some(Credentials {
                client_id: "pub".into(),
                secret: None
            })
        );
    }
}
