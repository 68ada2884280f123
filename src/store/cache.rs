//! [`AccessTokenCache`]: the store's in-process cache of access-token lookups, which every
//! local revocation invalidates before it answers.
//!
//! [`SqlStore`](super::sql::SqlStore) keeps one when asked to
//! ([`SqlOptions::token_cache`](super::sql::SqlOptions::token_cache); `oauth-toolkit
//! serve` turns it on). Everything that looks a token up through the store shares it: the
//! resource side's `StoreValidator`, the introspection endpoint, userinfo, the provider.
//!
//! * Keys are the SHA-256 digest of the token (the bytes behind its stored checksum).
//! * An entry is the answer of [`Store::find_access_token`](super::Store::find_access_token):
//!   the row with its client id, username and user state, or "no such token". A row lives
//!   until the token's expiry, at most `max_ttl`; "no such token" lives `negative_ttl`
//!   (short), so a flood of one bad token reaches the database once per `negative_ttl`.
//!   Unknown tokens are kept apart (`negative_capacity`), so a flood of distinct bad
//!   tokens evicts no known token.
//! * Every write of the store that deletes an access token (revocation of either token,
//!   rotation, replacement, replay revocation, logout deletion) forgets those tokens after
//!   its commit and before it returns; deactivating (or reactivating) a user and deleting
//!   an application forget every entry. So a revocation that has answered is seen by the
//!   next lookup, in this process. Other processes on the same database are not told:
//!   [`AccessTokenCache::on_forget`] is the hook for broadcasting, and
//!   [`AccessTokenCache::forget_checksums`] / [`forget_all`](AccessTokenCache::forget_all)
//!   take the other side's messages.
//!
//! ## Why a lookup that raced a revocation is never served
//! A lookup reads the cache's sequence number *before* it reads the database, and stamps
//! its entry with it; a revocation bumps the sequence *after* its commit and records the
//! forgotten keys with the new number. An entry whose database read began before the
//! revocation's commit therefore carries an older number than the revocation's record and
//! is treated as absent, however late it arrives in the cache. Records are kept a minute
//! (a lookup that takes longer is not cached at all) and the keys are removed from the cache
//! once more when their record is dropped. Forgetting everything uses the same numbers
//! without per-key records.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

#[cfg(feature = "sqlx")]
pub use self::engine::*;
use crate::model::AccessTokenDetails;

/// The sizes and lifetimes of an [`AccessTokenCache`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenCacheOptions {
    /// The most tokens kept (default 100,000; about 0.5 KiB each).
    pub capacity: u64,
    /// The longest a known token's row is kept, also bounding how stale a change made by
    /// another process can be (default 5 minutes). Never past the token's expiry.
    pub max_ttl: Duration,
    /// How long "no such token" is kept (default 5 s; zero: not kept).
    pub negative_ttl: Duration,
    /// The most unknown tokens kept (default 10,000), in a cache of their own: a flood
    /// of distinct bad tokens neither evicts known tokens nor leaves a huge number of
    /// entries to expire in one housekeeping run.
    pub negative_capacity: u64,
}

impl Default for TokenCacheOptions {
    fn default() -> Self {
        TokenCacheOptions {
            capacity: 100_000,
            max_ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_secs(5),
            negative_capacity: 10_000,
        }
    }
}

/// One cached lookup.
pub struct CachedToken {
    details: Option<AccessTokenDetails>,
    /// The cache's sequence number read before the database read.
    seq: u64,
    ttl: Duration,
    derived: OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken")
            .field("details", &self.details)
            .field("seq", &self.seq)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl CachedToken {
    /// The token row with its client id, username and user state; `None` when the store
    /// has no such token.
    pub fn details(&self) -> Option<&AccessTokenDetails> {
        self.details.as_ref()
    }

    /// A value derived from this entry once and kept with it (the resource side keeps its
    /// `TokenInfo` here, so a cache hit allocates nothing).
    pub fn derived<T, F>(&self, make: F) -> Option<Arc<T>>
    where
        T: Send + Sync + 'static,
        F: FnOnce(&AccessTokenDetails) -> T,
    {
        let details = self.details.as_ref()?;
        self.derived
            .get_or_init(|| Arc::new(make(details)))
            .clone()
            .downcast::<T>()
            .ok()
    }
}

#[cfg(feature = "sqlx")]
mod engine {
    use std::collections::{HashMap, VecDeque};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use moka::future::Cache;
    use moka::Expiry;

    use super::{CachedToken, TokenCacheOptions};
    use crate::model::{AccessTokenDetails, Timestamp};

    /// One poll of a moka `get`: it is async only for its housekeeping and cancel-safe, so
    /// one poll with a no-op waker answers, or the caller takes the asynchronous path.
    fn poll_once<T>(get: impl std::future::Future<Output = Option<T>>) -> Option<T> {
        let fut = std::pin::pin!(get);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match fut.poll(&mut cx) {
            std::task::Poll::Ready(found) => found,
            std::task::Poll::Pending => None,
        }
    }

    /// How long a per-key revocation record is kept; a load that takes half of it is not
    /// cached.
    const RECORD_RETENTION: Duration = Duration::from_secs(60);

    struct EntryExpiry;

    impl Expiry<[u8; 32], Arc<CachedToken>> for EntryExpiry {
        fn expire_after_create(
            &self,
            _key: &[u8; 32],
            value: &Arc<CachedToken>,
            _created_at: Instant,
        ) -> Option<Duration> {
            Some(value.ttl)
        }
    }

    #[derive(Default)]
    struct Records {
        by_key: HashMap<[u8; 32], u64>,
        order: VecDeque<(Instant, [u8; 32], u64)>,
    }

    type ForgetHook = Arc<dyn Fn(Forgotten<'_>) + Send + Sync>;

    /// What an [`AccessTokenCache::on_forget`] hook is told.
    #[derive(Clone, Copy, Debug)]
    pub enum Forgotten<'a> {
        /// These tokens (SHA-256 hex checksums) were deleted.
        Checksums(&'a [String]),
        /// Every entry was dropped (a user's state changed, an application was deleted).
        All,
    }

    /// The store's revocation-aware cache of access-token lookups. See the module docs.
    #[derive(Clone)]
    pub struct AccessTokenCache {
        inner: Arc<Inner>,
    }

    struct Inner {
        cache: Cache<[u8; 32], Arc<CachedToken>>,
        /// Tokens the store does not have (`None` when `negative_ttl` is zero).
        unknown: Option<Cache<[u8; 32], ()>>,
        /// The entry every unknown token answers with.
        absent: Arc<CachedToken>,
        options: TokenCacheOptions,
        /// Bumped by every forget.
        seq: AtomicU64,
        /// The sequence number of the latest per-key forget.
        last_key_forget: AtomicU64,
        /// Entries stamped below this are stale (the latest forget-all).
        all_forgotten: AtomicU64,
        records: Mutex<Records>,
        hook: Mutex<Option<ForgetHook>>,
    }

    impl std::fmt::Debug for AccessTokenCache {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("AccessTokenCache")
                .field("entries", &self.inner.cache.entry_count())
                .field("options", &self.inner.options)
                .finish()
        }
    }

    /// The cache key of a stored checksum (64 hex characters); `None` for anything else.
    pub fn checksum_key(checksum: &str) -> Option<[u8; 32]> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(checksum, &mut key).ok()?;
        Some(key)
    }

    impl AccessTokenCache {
        /// An empty cache.
        pub fn new(options: TokenCacheOptions) -> Self {
            AccessTokenCache {
                inner: Arc::new(Inner {
                    cache: Cache::builder()
                        .max_capacity(options.capacity)
                        .expire_after(EntryExpiry)
                        .build(),
                    unknown: (!options.negative_ttl.is_zero()).then(|| {
                        Cache::builder()
                            .max_capacity(options.negative_capacity)
                            .time_to_live(options.negative_ttl)
                            .build()
                    }),
                    absent: Arc::new(CachedToken {
                        details: None,
                        seq: 0,
                        ttl: options.negative_ttl,
                        derived: OnceLock::new(),
                    }),
                    options,
                    seq: AtomicU64::new(0),
                    last_key_forget: AtomicU64::new(0),
                    all_forgotten: AtomicU64::new(0),
                    records: Mutex::new(Records::default()),
                    hook: Mutex::new(None),
                }),
            }
        }

        /// The options it was built with.
        pub fn options(&self) -> &TokenCacheOptions {
            &self.inner.options
        }

        /// Calls `hook` after every forget made by this process's writes (not after the
        /// `forget_*` calls themselves): the place to tell other replicas.
        pub fn on_forget(&self, hook: impl Fn(Forgotten<'_>) + Send + Sync + 'static) {
            *self.inner.hook.lock().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(hook));
        }

        /// The entry for `key` if the cache holds a current one, without waiting.
        pub fn get_now(&self, key: &[u8; 32]) -> Option<Arc<CachedToken>> {
            if let Some(entry) = poll_once(self.inner.cache.get(key)) {
                return self.is_current(key, &entry).then_some(entry);
            }
            // Unknown tokens stay unknown: no revocation concerns them.
            let unknown = self.inner.unknown.as_ref()?;
            poll_once(unknown.get(key)).map(|()| self.inner.absent.clone())
        }

        fn is_current(&self, key: &[u8; 32], entry: &CachedToken) -> bool {
            let inner = &*self.inner;
            if entry.seq < inner.all_forgotten.load(Ordering::Acquire) {
                return false;
            }
            if entry.seq < inner.last_key_forget.load(Ordering::Acquire) {
                let records = inner.records.lock().unwrap_or_else(|e| e.into_inner());
                if records.by_key.get(key).is_some_and(|&s| s > entry.seq) {
                    return false;
                }
            }
            true
        }

        /// Starts a lookup: the stamp to hand to [`insert`](Self::insert) after the database
        /// read.
        pub(crate) fn begin_load(&self) -> (u64, Instant) {
            (self.inner.seq.load(Ordering::Acquire), Instant::now())
        }

        /// Keeps the answer of a lookup that began with `stamp`, and returns it as an entry.
        pub(crate) async fn insert(
            &self,
            key: [u8; 32],
            stamp: (u64, Instant),
            details: Option<AccessTokenDetails>,
            now: Timestamp,
        ) {
            let (seq, started) = stamp;
            let o = &self.inner.options;
            let Some(d) = &details else {
                if let Some(unknown) = &self.inner.unknown {
                    unknown.insert(key, ()).await;
                }
                return;
            };
            let left = u64::try_from(d.token.expires.unix() - now.unix()).unwrap_or(0);
            let ttl = Duration::from_secs(left).min(o.max_ttl);
            if ttl.is_zero()
                || started.elapsed() > RECORD_RETENTION / 2
                || self.inner.seq.load(Ordering::Acquire) != seq
            {
                // Nothing worth keeping, or a forget happened meanwhile: answer uncached.
                return;
            }
            let entry = Arc::new(CachedToken {
                details,
                seq,
                ttl,
                derived: OnceLock::new(),
            });
            self.inner.cache.insert(key, entry).await;
        }

        /// Forgets tokens deleted by a committed write of this process, then tells the hook.
        pub(crate) async fn forget_local(&self, checksums: &[String]) {
            if checksums.is_empty() {
                return;
            }
            self.forget_checksums(checksums).await;
            let hook = self.hook();
            if let Some(hook) = hook {
                hook(Forgotten::Checksums(checksums));
            }
        }

        /// Forgets every entry after a committed write of this process, then tells the hook.
        pub(crate) async fn forget_all_local(&self) {
            self.forget_all().await;
            if let Some(hook) = self.hook() {
                hook(Forgotten::All);
            }
        }

        fn hook(&self) -> Option<ForgetHook> {
            self.inner
                .hook
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone()
        }

        /// Forgets these tokens (SHA-256 hex checksums): the next lookups read the database.
        pub async fn forget_checksums(&self, checksums: &[String]) {
            let inner = &*self.inner;
            let seq = inner.seq.fetch_add(1, Ordering::AcqRel) + 1;
            let keys: Vec<[u8; 32]> = checksums.iter().filter_map(|c| checksum_key(c)).collect();
            let expired: Vec<[u8; 32]> = {
                let mut records = inner.records.lock().unwrap_or_else(|e| e.into_inner());
                let now = Instant::now();
                for key in &keys {
                    records.by_key.insert(*key, seq);
                    records.order.push_back((now, *key, seq));
                }
                let mut expired = Vec::new();
                while let Some(&(at, key, s)) = records.order.front() {
                    if now.duration_since(at) < RECORD_RETENTION {
                        break;
                    }
                    records.order.pop_front();
                    if records.by_key.get(&key) == Some(&s) {
                        records.by_key.remove(&key);
                        expired.push(key);
                    }
                }
                expired
            };
            inner.last_key_forget.fetch_max(seq, Ordering::AcqRel);
            for key in keys.iter().chain(&expired) {
                inner.cache.invalidate(key).await;
            }
        }

        /// Forgets every entry.
        pub async fn forget_all(&self) {
            let inner = &*self.inner;
            let seq = inner.seq.fetch_add(1, Ordering::AcqRel) + 1;
            inner.all_forgotten.fetch_max(seq, Ordering::AcqRel);
            inner.cache.invalidate_all();
        }

        /// How many entries the cache holds (approximate until pending tasks run).
        pub fn entry_count(&self) -> u64 {
            self.inner.cache.entry_count()
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::model::AccessToken;

        fn details(expires: Timestamp) -> AccessTokenDetails {
            AccessTokenDetails {
                token: AccessToken {
                    resource: String::new(),
                    id: 1,
                    user_id: None,
                    source_refresh_token_id: None,
                    token_checksum: "00".repeat(32),
                    id_token_id: None,
                    application_id: Some(1),
                    grant_id: None,
                    expires,
                    scope: "read".into(),
                    created: expires.sub_secs(60),
                },
                client_id: Some("c".into()),
                username: None,
                user_active: None,
            }
        }

        #[tokio::test]
        async fn a_flood_of_unknown_tokens_evicts_no_known_token() {
            let cache = AccessTokenCache::new(TokenCacheOptions {
                capacity: 10,
                negative_capacity: 10,
                ..TokenCacheOptions::default()
            });
            let now = Timestamp::now();
            let known = [1u8; 32];
            cache
                .insert(
                    known,
                    cache.begin_load(),
                    Some(details(now.add_secs(600))),
                    now,
                )
                .await;
            for i in 0..1000u32 {
                let mut key = [0u8; 32];
                key[..4].copy_from_slice(&i.to_be_bytes());
                key[31] = 2;
                cache.insert(key, cache.begin_load(), None, now).await;
                // An unknown token just seen is answered "absent" without the database.
                let hit = cache.get_now(&key);
                assert!(hit.is_some_and(|h| h.details().is_none()));
            }
            cache.inner.cache.run_pending_tasks().await;
            if let Some(unknown) = &cache.inner.unknown {
                unknown.run_pending_tasks().await;
                assert!(unknown.entry_count() <= 10);
            }
            let hit = cache
                .get_now(&known)
                .expect("the known token is still cached");
            assert_eq!(hit.details().unwrap().client_id.as_deref(), Some("c"));
        }

        #[tokio::test]
        async fn a_load_that_raced_a_forget_is_never_served() {
            let cache = AccessTokenCache::new(TokenCacheOptions::default());
            let now = Timestamp::now();
            let sum = "ab".repeat(32);
            let key = checksum_key(&sum).unwrap();
            // The lookup reads the database before the revocation commits...
            let stamp = cache.begin_load();
            let stale = Some(details(now.add_secs(600)));
            // ...the revocation commits and forgets the token...
            cache.forget_checksums(std::slice::from_ref(&sum)).await;
            // ...and the lookup's answer arrives afterwards, inserted by force.
            cache
                .inner
                .cache
                .insert(
                    key,
                    Arc::new(CachedToken {
                        details: stale,
                        seq: stamp.0,
                        ttl: Duration::from_secs(600),
                        derived: OnceLock::new(),
                    }),
                )
                .await;
            assert!(cache.get_now(&key).is_none(), "a stale answer was served");
            // A lookup that began after the forget is cached again.
            let stamp = cache.begin_load();
            cache
                .insert(key, stamp, Some(details(now.add_secs(600))), now)
                .await;
            assert!(cache.get_now(&key).is_some());
        }
    }
}
