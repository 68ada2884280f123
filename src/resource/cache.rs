//! [`TokenCache`]: validation answers in a moka `future::Cache`, each entry living
//! `min(exp - now, max_ttl)`.
//!
//! * Keys are the SHA-256 digest of the token, never the token.
//! * Each value carries its own lifetime, which moka's per-entry
//!   [`Expiry::expire_after_create`] reads (the pattern moka's maintainers recommend), so
//!   an entry never outlives the token's `exp`; an answer without `exp` lives `max_ttl`.
//! * Loads go through `try_get_with`: concurrent misses for one token share one load, and
//!   a failed load (server down) is never cached.
//! * "Inactive" answers are cached only when a negative TTL is set (off by default); they
//!   then blunt floods of the same bad token.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use moka::future::Cache;
use moka::Expiry;

use super::error::BearerError;
use super::token::TokenInfo;

/// One cached answer: the token's information, or `None` for "not active".
#[derive(Clone, Debug)]
pub struct CacheEntry {
    info: Option<Arc<TokenInfo>>,
    ttl: Duration,
}

impl CacheEntry {
    /// An active token.
    pub fn active(info: Arc<TokenInfo>) -> Self {
        CacheEntry {
            info: Some(info),
            ttl: Duration::ZERO,
        }
    }

    /// A token that is not active (unknown, expired, revoked).
    pub fn inactive() -> Self {
        CacheEntry {
            info: None,
            ttl: Duration::ZERO,
        }
    }

    /// The answer as the layer needs it.
    pub fn into_result(self) -> Result<Arc<TokenInfo>, BearerError> {
        self.info.ok_or_else(inactive_error)
    }
}

fn inactive_error() -> BearerError {
    BearerError::InvalidToken("The access token is invalid.".into())
}

struct EntryExpiry;

impl Expiry<[u8; 32], CacheEntry> for EntryExpiry {
    fn expire_after_create(
        &self,
        _key: &[u8; 32],
        value: &CacheEntry,
        _created_at: Instant,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

/// The cache shared by the introspection and store validators. Cheap to clone.
#[derive(Clone)]
pub struct TokenCache {
    cache: Cache<[u8; 32], CacheEntry>,
    max_ttl: Duration,
    negative_ttl: Duration,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache")
            .field("entries", &self.cache.entry_count())
            .field("max_ttl", &self.max_ttl)
            .field("negative_ttl", &self.negative_ttl)
            .finish()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl TokenCache {
    /// A cache of at most `capacity` tokens; active answers live at most `max_ttl` (and
    /// never past `exp`), inactive ones `negative_ttl` (zero: not cached).
    pub fn new(capacity: u64, max_ttl: Duration, negative_ttl: Duration) -> Self {
        TokenCache {
            cache: Cache::builder()
                .max_capacity(capacity)
                .expire_after(EntryExpiry)
                .build(),
            max_ttl,
            negative_ttl,
        }
    }

    /// How long an answer may be kept: `min(exp - now, max_ttl)`, or `negative_ttl`.
    fn ttl_for(&self, entry: &CacheEntry) -> Duration {
        match &entry.info {
            None => self.negative_ttl,
            Some(info) => match info.exp {
                None => self.max_ttl,
                Some(exp) => {
                    let left = exp.saturating_sub(unix_now());
                    Duration::from_secs(u64::try_from(left).unwrap_or(0)).min(self.max_ttl)
                }
            },
        }
    }

    /// The cached answer for `key`, or the result of `load` (shared with every concurrent
    /// caller for the same key, and cached per the rules above).
    pub async fn get_or_load<F>(
        &self,
        key: [u8; 32],
        load: F,
    ) -> Result<Arc<TokenInfo>, BearerError>
    where
        F: Future<Output = Result<CacheEntry, BearerError>> + Send,
    {
        let entry = self
            .cache
            .try_get_with(key, async {
                let mut entry = load.await?;
                entry.ttl = self.ttl_for(&entry);
                if entry.ttl.is_zero() {
                    // Nothing to keep (inactive without negative caching, or expiring now):
                    // an Err is shared with the waiters but not stored.
                    return Err(match entry.info {
                        None => inactive_error(),
                        Some(_) => {
                            BearerError::InvalidToken("The access token has expired.".into())
                        }
                    });
                }
                Ok(entry)
            })
            .await
            .map_err(|e| (*e).clone())?;
        entry.into_result()
    }

    /// The cached answer for `key` if it can be had without waiting: `None` on a miss (or
    /// in the rare case the cache would have to wait for its own housekeeping; the caller
    /// then takes the asynchronous path, which loads and coalesces).
    pub fn get_now(&self, key: &[u8; 32]) -> Option<Result<Arc<TokenInfo>, BearerError>> {
        let fut = std::pin::pin!(self.cache.get(key));
        // moka's `get` is async only for its housekeeping; it is cancel-safe, so one poll
        // with a no-op waker either answers or is dropped harmlessly.
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.poll(&mut cx) {
            std::task::Poll::Ready(Some(entry)) => Some(entry.into_result()),
            _ => None,
        }
    }

    /// Forgets one token (e.g. after it was revoked locally).
    pub async fn invalidate(&self, key: &[u8; 32]) {
        self.cache.invalidate(key).await;
    }

    /// How many entries the cache holds (approximate until pending tasks run).
    pub fn entry_count(&self) -> u64 {
        self.cache.entry_count()
    }

    /// Runs moka's pending maintenance (evictions), for tests and diagnostics.
    pub async fn run_pending_tasks(&self) {
        self.cache.run_pending_tasks().await;
    }
}
