//! [`SqlStore`]: the [`Store`] on SQLite (the embedded default) or PostgreSQL.
//!
//! One set of SQL statements serves both databases (`statements.rs`: positional `$N`
//! parameters, `RETURNING`, `LIMIT` in sub-selects), each prepared once per connection
//! and kept.
//!
//! * **SQLite** runs on the crate's own engine (`sqlite::engine`): one writer thread
//!   that **commits concurrent writes in groups** — one `COMMIT` for every write queued
//!   while the previous one ran — and reader threads beside it (WAL). Its module docs
//!   give the decision against sqlx's SQLite driver and the tuning.
//! * **PostgreSQL** runs on a sqlx pool; see its module docs for the lock order.
//!
//! Both answer only **after** the write committed: a token is never handed out, nor a
//! revocation confirmed, before it is durable in the database, and a failed commit
//! reaches the caller. A busy, locked, full, read-only or unreachable database is
//! [`StoreError::Unavailable`] (the provider answers 503 `temporarily_unavailable`); after
//! any failure the connection is rolled back or replaced, so the store recovers by itself
//! once the cause is gone.
//!
//! With [`SqlOptions::token_cache`], lookups of access tokens go through an
//! [`AccessTokenCache`] that every write deleting a token invalidates before returning
//! (see [`crate::store::cache`]).
//!
//! ```no_run
//! use tower_oauth_toolkit::store::sql::{SqlOptions, SqlStore};
//! use tower_oauth_toolkit::store::cache::TokenCacheOptions;
//! # async fn run() -> Result<(), tower_oauth_toolkit::store::StoreError> {
//! let options = SqlOptions { token_cache: Some(TokenCacheOptions::default()), ..SqlOptions::default() };
//! let store = SqlStore::connect_with("sqlite://oauth-toolkit.db", options).await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```

#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod statements;

use std::sync::Arc;
use std::time::Duration;

use super::cache::{checksum_key, AccessTokenCache, CachedToken, TokenCacheOptions};
use super::{CleanupStep, IssueTokens, IssuedTokens, Store, StoreError, StoreResult};
use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewIdToken, NewRegistration, NewUser,
    RefreshToken, Registration, Timestamp, User,
};

/// Connection options for [`SqlStore::connect_with`].
#[derive(Clone, Debug)]
pub struct SqlOptions {
    /// Connections in the PostgreSQL pool, or SQLite reader threads (default 8 for
    /// PostgreSQL; SQLite uses at most 4 readers).
    pub max_connections: u32,
    /// PostgreSQL: how long a query waits for a free connection (default 30 s).
    pub acquire_timeout: Duration,
    /// PostgreSQL only: the `search_path` (schema) to use, e.g. one schema per test.
    pub search_path: Option<String>,
    /// Keep a revocation-aware cache of access-token lookups (default: none).
    pub token_cache: Option<TokenCacheOptions>,
    /// SQLite: how long a write waits for a lock held by another process (a
    /// `cleartokens` run, a second server) before it fails as unavailable (default 5 s).
    pub busy_timeout: Duration,
    /// PostgreSQL: how long connecting may take before `connect` fails with the cause
    /// (default 5 s).
    pub connect_timeout: Duration,
    /// SQLite: create the database file when it does not exist (default true). With
    /// false, connecting to a missing file fails instead ([`SqlStore::created`] tells
    /// whether a file was created).
    pub create_if_missing: bool,
}

/// Where a database's schema stands against this build's migrations
/// ([`SqlStore::schema_status`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaStatus {
    /// No migration applied: a new, empty database.
    Empty,
    /// Every migration of this build is applied, and nothing else.
    Current {
        /// How many migrations are applied.
        applied: usize,
    },
    /// Some migrations of this build are not applied yet ([`SqlStore::migrate`]).
    Behind {
        /// How many are applied.
        applied: usize,
        /// How many this build has.
        known: usize,
    },
    /// A migration this build does not know was applied: a newer version migrated the
    /// database, and this one must not write to it.
    Newer {
        /// The first unknown version.
        unknown_version: i64,
    },
}

impl SchemaStatus {
    fn of(applied: &[i64], known: &[i64]) -> SchemaStatus {
        if let Some(v) = applied.iter().find(|v| !known.contains(v)) {
            return SchemaStatus::Newer {
                unknown_version: *v,
            };
        }
        match applied.len() {
            0 => SchemaStatus::Empty,
            n if n == known.len() => SchemaStatus::Current { applied: n },
            n => SchemaStatus::Behind {
                applied: n,
                known: known.len(),
            },
        }
    }
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            search_path: None,
            token_cache: None,
            busy_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            create_if_missing: true,
        }
    }
}

/// What a write that deleted access tokens returns to the facade: its own value, and
/// the checksums of the deleted tokens (to forget in the cache).
#[derive(Debug)]
pub(crate) struct Deleted<T> {
    pub(crate) value: T,
    pub(crate) checksums: Vec<String>,
}

#[derive(Clone, Debug)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(Arc<sqlite::SqliteStore>),
    #[cfg(feature = "postgres")]
    Postgres(postgres::PgStore),
}

/// The SQL [`Store`]. Cheap to clone (the engine and pool are shared).
#[derive(Clone, Debug)]
pub struct SqlStore {
    backend: Backend,
    cache: Option<AccessTokenCache>,
}

/// Which database a [`SqlStore`] talks to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SqlKind {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Evaluates `$call` on the backend in use, bound to `$b`.
macro_rules! on_backend {
    ($self:ident, $b:ident => $call:expr) => {
        match &$self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($b) => $call,
            #[cfg(feature = "postgres")]
            Backend::Postgres($b) => $call,
        }
    };
}

impl SqlStore {
    /// Opens a database by URL with default options: `sqlite://path` (the file is created
    /// if missing; an empty path is refused), `sqlite::memory:`, or
    /// `postgres://user:pass@host/db` (a refused or silent server fails within
    /// [`SqlOptions::connect_timeout`], with the cause). Does not apply migrations: call
    /// [`SqlStore::migrate`], and see [`SqlStore::schema_status`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    /// Opens a database by URL with the given options.
    pub async fn connect_with(url: &str, options: SqlOptions) -> StoreResult<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        let backend = match scheme {
            "sqlite" => Self::connect_sqlite(url, &options).await?,
            "postgres" | "postgresql" => Self::connect_postgres(url, &options).await?,
            other => {
                return Err(StoreError::Config(format!(
                    "unsupported database URL scheme {other:?} (expected sqlite:// or postgres://)"
                )))
            }
        };
        Ok(SqlStore {
            backend,
            cache: options.token_cache.map(AccessTokenCache::new),
        })
    }

    #[cfg(feature = "sqlite")]
    async fn connect_sqlite(url: &str, options: &SqlOptions) -> StoreResult<Backend> {
        let readers = (options.max_connections as usize).clamp(1, 4);
        Ok(Backend::Sqlite(Arc::new(
            sqlite::SqliteStore::connect(
                url,
                readers,
                options.busy_timeout,
                options.create_if_missing,
            )
            .await?,
        )))
    }

    #[cfg(not(feature = "sqlite"))]
    async fn connect_sqlite(url: &str, _options: &SqlOptions) -> StoreResult<Backend> {
        Err(StoreError::Config(format!(
            "{url}: this build has no SQLite support (enable the `sqlite` feature)"
        )))
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str, options: &SqlOptions) -> StoreResult<Backend> {
        Ok(Backend::Postgres(
            postgres::PgStore::connect(url, options).await?,
        ))
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_url: &str, _options: &SqlOptions) -> StoreResult<Backend> {
        Err(StoreError::Config(
            "this build has no PostgreSQL support (enable the `postgres` feature)".into(),
        ))
    }

    /// Which database this is.
    pub fn kind(&self) -> SqlKind {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => SqlKind::Sqlite,
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => SqlKind::Postgres,
        }
    }

    /// The access-token cache, when [`SqlOptions::token_cache`] asked for one (to hook
    /// invalidation across replicas, or to look at its size).
    pub fn token_cache(&self) -> Option<&AccessTokenCache> {
        self.cache.as_ref()
    }

    /// Applies the migrations that have not run yet (idempotent). Returns how many ran.
    pub async fn migrate(&self) -> StoreResult<usize> {
        on_backend!(self, b => b.migrate().await)
    }

    /// Whether connecting created the database (a new SQLite file; never for PostgreSQL,
    /// whose databases are created by their administrator).
    pub fn created(&self) -> bool {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(b) => b.created(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => false,
        }
    }

    /// Compares the migrations applied to the database with this build's.
    pub async fn schema_status(&self) -> StoreResult<SchemaStatus> {
        let (applied, known) = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(b) => (
                b.applied_versions().await?,
                sqlite::SqliteStore::known_versions(),
            ),
            #[cfg(feature = "postgres")]
            Backend::Postgres(b) => (
                b.applied_versions().await?,
                postgres::PgStore::known_versions(),
            ),
        };
        Ok(SchemaStatus::of(&applied, &known))
    }

    /// How many migrations have been applied (0 on a new database).
    pub async fn applied_migrations(&self) -> StoreResult<usize> {
        on_backend!(self, b => b.applied_migrations().await)
    }

    /// Closes every connection (waits for queries in flight).
    pub async fn close(&self) {
        on_backend!(self, b => b.close().await)
    }

    /// Forgets the access tokens a committed write deleted, then returns its value.
    async fn forget<T>(&self, deleted: StoreResult<Deleted<T>>) -> StoreResult<T> {
        let deleted = deleted?;
        if let Some(cache) = &self.cache {
            cache.forget_local(&deleted.checksums).await;
        }
        Ok(deleted.value)
    }

    /// Forgets every cached token after a committed write that changed many of them.
    async fn forget_all<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        let value = result?;
        if let Some(cache) = &self.cache {
            cache.forget_all_local().await;
        }
        Ok(value)
    }
}

impl Store for SqlStore {
    fn cached_access_token(&self, digest: &[u8; 32]) -> Option<Arc<CachedToken>> {
        self.cache.as_ref()?.get_now(digest)
    }

    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        on_backend!(self, b => b.create_user(u).await)
    }

    async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        on_backend!(self, b => b.find_user(id).await)
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        on_backend!(self, b => b.find_user_by_username(username).await)
    }

    async fn set_last_login(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        on_backend!(self, b => b.set_last_login(id, at).await)
    }

    async fn count_users(&self) -> StoreResult<u64> {
        on_backend!(self, b => b.count_users().await)
    }

    async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        // Every cached token of the user now has a stale `user_active`.
        let changed = on_backend!(self, b => b.set_user_active(id, active).await);
        self.forget_all(changed).await
    }

    async fn create_application(&self, app: NewApplication) -> StoreResult<Application> {
        on_backend!(self, b => b.create_application(app).await)
    }

    async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        on_backend!(self, b => b.find_application(id).await)
    }

    async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        on_backend!(self, b => b.find_application_by_client_id(client_id).await)
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        on_backend!(self, b => b.list_applications().await)
    }

    async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        // Its tokens go with it (foreign keys): forget every cached token.
        let deleted = on_backend!(self, b => b.delete_application(id).await);
        self.forget_all(deleted).await
    }

    async fn update_application(&self, app: &Application) -> StoreResult<bool> {
        on_backend!(self, b => b.update_application(app).await)
    }

    async fn register_application(
        &self,
        app: NewApplication,
        registration: NewRegistration,
    ) -> StoreResult<(Application, Registration)> {
        on_backend!(self, b => b.register_application(app, registration).await)
    }

    async fn find_registration(&self, token_checksum: &str) -> StoreResult<Option<Registration>> {
        on_backend!(self, b => b.find_registration(token_checksum).await)
    }

    async fn update_registration(
        &self,
        app: &Application,
        registration: &Registration,
        presented_checksum: &str,
    ) -> StoreResult<bool> {
        on_backend!(self, b => b.update_registration(app, registration, presented_checksum).await)
    }

    async fn mark_used_registrations(&self, now: Timestamp) -> StoreResult<u64> {
        on_backend!(self, b => b.mark_used_registrations(now).await)
    }

    async fn create_grant(&self, grant: NewGrant) -> StoreResult<Grant> {
        on_backend!(self, b => b.create_grant(grant).await)
    }

    async fn find_grant(&self, code_checksum: &str) -> StoreResult<Option<Grant>> {
        on_backend!(self, b => b.find_grant(code_checksum).await)
    }

    async fn mark_grant_used(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        on_backend!(self, b => b.mark_grant_used(id, now).await)
    }

    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        on_backend!(self, b => b.redeem_grant(grant_id, now, tokens).await)
    }

    async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        on_backend!(self, b => b.issue_tokens(tokens).await)
    }

    async fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<IssuedTokens> {
        let rotated =
            on_backend!(self, b => b.rotate_refresh_token(old_refresh_id, now, tokens).await);
        self.forget(rotated).await
    }

    async fn replace_access_token(
        &self,
        refresh_id: i64,
        access: NewAccessToken,
    ) -> StoreResult<AccessToken> {
        let replaced = on_backend!(self, b => b.replace_access_token(refresh_id, access).await);
        self.forget(replaced).await
    }

    async fn find_access_token(
        &self,
        token_checksum: &str,
    ) -> StoreResult<Option<AccessTokenDetails>> {
        let cached = self
            .cache
            .as_ref()
            .and_then(|cache| Some((cache, checksum_key(token_checksum)?)));
        let Some((cache, key)) = cached else {
            return on_backend!(self, b => b.find_access_token(token_checksum).await);
        };
        if let Some(hit) = cache.get_now(&key) {
            return Ok(hit.details().cloned());
        }
        let stamp = cache.begin_load();
        let details = on_backend!(self, b => b.find_access_token(token_checksum).await)?;
        cache
            .insert(key, stamp, details.clone(), Timestamp::now())
            .await;
        Ok(details)
    }

    async fn find_access_token_by_id(&self, id: i64) -> StoreResult<Option<AccessToken>> {
        on_backend!(self, b => b.find_access_token_by_id(id).await)
    }

    async fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessToken>> {
        on_backend!(self, b => b.find_live_access_tokens(user_id, application_id, now).await)
    }

    async fn find_successor(
        &self,
        refresh_id: i64,
    ) -> StoreResult<Option<(AccessToken, Option<RefreshToken>)>> {
        on_backend!(self, b => b.find_successor(refresh_id).await)
    }

    async fn revoke_access_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let revoked = on_backend!(self, b => b.revoke_access_token(id, now).await);
        self.forget(revoked).await
    }

    async fn find_refresh_token(&self, token_checksum: &str) -> StoreResult<Option<RefreshToken>> {
        on_backend!(self, b => b.find_refresh_token(token_checksum).await)
    }

    async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        on_backend!(self, b => b.find_refresh_token_for_access_token(access_token_id).await)
    }

    async fn revoke_refresh_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let revoked = on_backend!(self, b => b.revoke_refresh_token(id, now).await);
        self.forget(revoked).await
    }

    async fn revoke_refresh_token_family(&self, family: &str, now: Timestamp) -> StoreResult<u64> {
        let revoked = on_backend!(self, b => b.revoke_refresh_token_family(family, now).await);
        self.forget(revoked).await
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: Timestamp) -> StoreResult<u64> {
        let revoked = on_backend!(self, b => b.revoke_grant_tokens(grant_id, now).await);
        self.forget(revoked).await
    }

    async fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let deleted =
            on_backend!(self, b => b.delete_user_tokens(user_id, application_ids, now).await);
        self.forget(deleted).await
    }

    async fn create_id_token(&self, id_token: NewIdToken) -> StoreResult<IdToken> {
        on_backend!(self, b => b.create_id_token(id_token).await)
    }

    async fn find_id_token(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        on_backend!(self, b => b.find_id_token(jti).await)
    }

    async fn create_device_grant(&self, grant: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        on_backend!(self, b => b.create_device_grant(grant).await)
    }

    async fn find_device_grant(&self, checksum: &str) -> StoreResult<Option<DeviceGrant>> {
        on_backend!(self, b => b.find_device_grant(checksum).await)
    }

    async fn find_device_grant_by_user_code(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        on_backend!(self, b => b.find_device_grant_by_user_code(checksum).await)
    }

    async fn update_device_grant_status(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> StoreResult<bool> {
        on_backend!(self, b => b.update_device_grant_status(id, from, to, user_id).await)
    }

    async fn touch_device_grant(&self, id: i64, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        on_backend!(self, b => b.touch_device_grant(id, now).await)
    }

    async fn slow_down_device_grant(&self, id: i64, step: i64) -> StoreResult<Option<i64>> {
        on_backend!(self, b => b.slow_down_device_grant(id, step).await)
    }

    async fn redeem_device_grant(
        &self,
        id: i64,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        on_backend!(self, b => b.redeem_device_grant(id, tokens).await)
    }

    async fn count_expired(&self, step: CleanupStep, cutoff: Timestamp) -> StoreResult<u64> {
        on_backend!(self, b => b.count_expired(step, cutoff).await)
    }

    async fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        on_backend!(self, b => b.delete_expired_batch(step, cutoff, limit).await)
    }
}
