//! [`SqlStore`]: the [`Store`] over sqlx, for SQLite and PostgreSQL.
//!
//! One set of SQL statements serves both databases (positional `$N` parameters, `RETURNING`,
//! `LIMIT` in sub-selects); each statement is compiled once per connection and kept in
//! sqlx's prepared-statement cache. A small macro expands every method body once per
//! backend, so each runs on its native driver with no dynamic dispatch.
//!
//! * **SQLite** (the embedded default): WAL journal, `synchronous = NORMAL`, foreign keys
//!   on, a 5 s busy timeout. Writes go through a pool of **one** writer connection (SQLite
//!   allows one writer at a time; queueing in the pool is cheaper than lock retries), reads
//!   through a pool of read-only connections that WAL lets run beside the writer. An
//!   in-memory database (`sqlite::memory:`) uses a single connection for both.
//! * **PostgreSQL**: one pool; the refresh-token rotation relies on a conditional `UPDATE`
//!   (`… WHERE revoked IS NULL`), which PostgreSQL re-checks after a concurrent writer
//!   commits, so two rotations of one token never both succeed.
//!
//! ```no_run
//! use tower_oauth_toolkit::store::sql::SqlStore;
//! # async fn run() -> Result<(), tower_oauth_toolkit::store::StoreError> {
//! let store = SqlStore::connect("sqlite://oauth-toolkit.db").await?;
//! store.migrate().await?;
//! # Ok(()) }
//! ```

use std::time::Duration;

use sqlx::Row;

#[cfg(feature = "postgres")]
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
#[cfg(feature = "sqlite")]
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{CleanupStep, IssueTokens, IssuedTokens, Store, StoreError, StoreResult};
use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewUser, RefreshToken, Timestamp,
    User,
};

/// Connection options for [`SqlStore::connect_with`].
#[derive(Clone, Debug)]
pub struct SqlOptions {
    /// Connections in the PostgreSQL pool, or read connections for SQLite (default 8).
    pub max_connections: u32,
    /// How long a query waits for a free connection (default 30 s).
    pub acquire_timeout: Duration,
    /// PostgreSQL only: the `search_path` (schema) to use, e.g. one schema per test.
    pub search_path: Option<String>,
}

impl Default for SqlOptions {
    fn default() -> Self {
        SqlOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(30),
            search_path: None,
        }
    }
}

#[derive(Clone, Debug)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite {
        writer: SqlitePool,
        reader: SqlitePool,
    },
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
}

/// The SQL [`Store`]. Cheap to clone (the pools are shared).
#[derive(Clone, Debug)]
pub struct SqlStore {
    backend: Backend,
}

/// Which database a [`SqlStore`] talks to.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum SqlKind {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

// Expands `$body` once per backend with `$pool` bound to that backend's pool: the reader
// pool for `read`, the writer pool for `write` (the same pool on PostgreSQL).
macro_rules! with_pool {
    ($self:ident, read, |$pool:ident| $body:expr) => {
        match &$self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { reader: $pool, .. } => $body,
            #[cfg(feature = "postgres")]
            Backend::Postgres($pool) => $body,
        }
    };
    ($self:ident, write, |$pool:ident| $body:expr) => {
        match &$self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { writer: $pool, .. } => $body,
            #[cfg(feature = "postgres")]
            Backend::Postgres($pool) => $body,
        }
    };
}

fn db_err(e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error() {
        // PostgreSQL deadlock / serialization failure: a concurrent writer won.
        if matches!(db.code().as_deref(), Some("40P01" | "40001")) {
            return StoreError::Conflict(db.message().to_owned());
        }
        if db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_owned());
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound(db.message().to_owned());
        }
    }
    StoreError::Backend(Box::new(e))
}

macro_rules! app_cols {
    () => {
        "id, client_id, user_id, redirect_uris, post_logout_redirect_uris, client_type, \
         authorization_grant_type, client_secret, hash_client_secret, name, skip_authorization, \
         created, updated, algorithm, allowed_origins, pkce_required"
    };
}
macro_rules! user_cols {
    () => {
        "id, username, email, password_hash, is_active, date_joined, last_login"
    };
}
macro_rules! grant_cols {
    () => {
        "id, user_id, code_checksum, application_id, expires, redirect_uri, scope, code_challenge, \
         code_challenge_method, nonce, claims, auth_time, created, used_at"
    };
}
macro_rules! at_cols {
    () => {
        "id, user_id, source_refresh_token_id, token_checksum, id_token_id, application_id, \
         grant_id, expires, scope, created"
    };
}
macro_rules! rt_cols {
    () => {
        "id, user_id, token_checksum, application_id, access_token_id, token_family, created, revoked"
    };
}
macro_rules! idt_cols {
    () => {
        "id, user_id, jti, application_id, expires, scope, created"
    };
}
macro_rules! dg_cols {
    () => {
        "id, user_id, device_code_checksum, user_code_checksum, scope, poll_interval, expires, \
         status, client_id, last_checked, created"
    };
}

/// Opens a write transaction: `BEGIN IMMEDIATE` on SQLite, so that a read followed by a
/// write cannot fail with SQLITE_BUSY_SNAPSHOT when another process (a `cleartokens`
/// cron job, a second server) commits in between; a plain `BEGIN` on PostgreSQL.
macro_rules! begin_write {
    ($self:ident, $pool:ident) => {
        match $self.kind() {
            SqlKind::Sqlite => $pool.begin_with("BEGIN IMMEDIATE").await,
            SqlKind::Postgres => $pool.begin().await,
        }
        .map_err(db_err)?
    };
}

/// Serialises work on one refresh-token family on PostgreSQL (transaction-scoped advisory
/// lock), so that a family revocation sees a rotation that raced it. SQLite's single
/// writer serialises these already. Lock order everywhere: family, refresh-token rows,
/// access-token rows.
macro_rules! lock_family {
    ($self:ident, $conn:expr, $family:expr) => {
        if $self.kind() == SqlKind::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                .bind($family)
                .execute(&mut *$conn)
                .await
                .map_err(db_err)?;
        }
    };
}

/// Locks a live refresh token's row and reads its current access token (a no-op UPDATE
/// locks on both databases): `None` when the token is not live.
const LOCK_LIVE_RT: &str = "UPDATE oauth2_refresh_token SET access_token_id = access_token_id \
     WHERE id = $1 AND revoked IS NULL RETURNING access_token_id";

/// Inserts an access token on an executor (`pool` or `&mut *tx`); evaluates to its id.
macro_rules! insert_access {
    ($executor:expr, $access:expr) => {{
        let id: i64 = sqlx::query_scalar(INSERT_AT)
            .bind($access.user_id)
            .bind($access.source_refresh_token_id)
            .bind(&$access.token_checksum)
            .bind($access.id_token_id)
            .bind($access.application_id)
            .bind($access.grant_id)
            .bind($access.expires)
            .bind(&$access.scope)
            .bind($access.created)
            .fetch_one($executor)
            .await
            .map_err(db_err)?;
        id
    }};
}

const INSERT_AT: &str = "INSERT INTO oauth2_access_token (user_id, source_refresh_token_id, \
     token_checksum, id_token_id, application_id, grant_id, expires, scope, created) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id";
const INSERT_RT: &str = "INSERT INTO oauth2_refresh_token (user_id, token_checksum, \
     application_id, access_token_id, token_family, created) \
     VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";
const INSERT_IDT: &str = "INSERT INTO oauth2_id_token (user_id, jti, application_id, expires, \
     scope, created) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id";

/// Writes the tokens of one response on an open transaction (`$conn`: `&mut *tx`).
macro_rules! write_tokens {
    ($conn:expr, $tokens:expr) => {{
        let IssueTokens {
            mut access,
            refresh,
            id_token,
        } = $tokens;
        let id_token = match id_token {
            Some(t) => {
                let id: i64 = sqlx::query_scalar(INSERT_IDT)
                    .bind(t.user_id)
                    .bind(&t.jti)
                    .bind(t.application_id)
                    .bind(t.expires)
                    .bind(&t.scope)
                    .bind(t.created)
                    .fetch_one(&mut *$conn)
                    .await
                    .map_err(db_err)?;
                access.id_token_id = Some(id);
                Some(t.into_row(id))
            }
            None => None,
        };
        let at_id: i64 = insert_access!(&mut *$conn, access);
        let refresh = match refresh {
            Some(mut r) => {
                r.access_token_id = Some(at_id);
                let id: i64 = sqlx::query_scalar(INSERT_RT)
                    .bind(r.user_id)
                    .bind(&r.token_checksum)
                    .bind(r.application_id)
                    .bind(r.access_token_id)
                    .bind(&r.token_family)
                    .bind(r.created)
                    .fetch_one(&mut *$conn)
                    .await
                    .map_err(db_err)?;
                Some(r.into_row(id))
            }
            None => None,
        };
        IssuedTokens {
            access: access.into_row(at_id),
            refresh,
            id_token,
        }
    }};
}

/// Revokes the live refresh tokens of a family and deletes their access tokens, on an
/// open transaction; evaluates to the number of refresh tokens revoked.
macro_rules! revoke_family_on {
    ($conn:expr, $family:expr, $now:expr) => {{
        let bound: Vec<Option<i64>> = sqlx::query_scalar(
            "UPDATE oauth2_refresh_token SET access_token_id = access_token_id \
             WHERE token_family = $1 AND revoked IS NULL RETURNING access_token_id",
        )
        .bind($family)
        .fetch_all(&mut *$conn)
        .await
        .map_err(db_err)?;
        let revoked = sqlx::query(
            "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL \
             WHERE token_family = $1 AND revoked IS NULL",
        )
        .bind($family)
        .bind($now)
        .execute(&mut *$conn)
        .await
        .map_err(db_err)?
        .rows_affected();
        for at in bound.into_iter().flatten() {
            sqlx::query("DELETE FROM oauth2_access_token WHERE id = $1")
                .bind(at)
                .execute(&mut *$conn)
                .await
                .map_err(db_err)?;
        }
        revoked
    }};
}

/// One batch of a cleanup step: `DELETE FROM $table WHERE id IN ($select LIMIT n)`.
///
/// PostgreSQL plans `id IN (sub-select)` as a hash semi-join over a sequential scan of the
/// whole table — once per batch, which made 1,000,000 pairs take 53 s — so there the ids
/// go through `= ANY(ARRAY(…))`, which probes the primary key. SQLite already probes it.
macro_rules! batch_delete {
    ($table:literal, $select:literal) => {
        (
            concat!("DELETE FROM ", $table, " WHERE id IN (", $select, ")"),
            concat!(
                "DELETE FROM ",
                $table,
                " WHERE id = ANY(ARRAY(",
                $select,
                "))"
            ),
        )
    };
}

/// (SQLite, PostgreSQL) statements deleting one batch of `step`.
fn cleanup_delete_sql(step: CleanupStep) -> (&'static str, &'static str) {
    use CleanupStep::*;
    match step {
        RevokedRefreshTokens => batch_delete!(
            "oauth2_refresh_token",
            "SELECT id FROM oauth2_refresh_token WHERE revoked <= $1 LIMIT $2"
        ),
        OrphanedRefreshTokens => batch_delete!(
            "oauth2_refresh_token",
            "SELECT id FROM oauth2_refresh_token \
             WHERE revoked IS NULL AND access_token_id IS NULL LIMIT $1"
        ),
        ExpiredRefreshTokens => batch_delete!(
            "oauth2_refresh_token",
            "SELECT r.id FROM oauth2_refresh_token r \
             JOIN oauth2_access_token a ON a.id = r.access_token_id \
             WHERE r.revoked IS NULL AND a.expires <= $1 LIMIT $2"
        ),
        ExpiredAccessTokens => batch_delete!(
            "oauth2_access_token",
            "SELECT a.id FROM oauth2_access_token a WHERE a.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_refresh_token r WHERE r.access_token_id = a.id) LIMIT $2"
        ),
        ExpiredIdTokens => batch_delete!(
            "oauth2_id_token",
            "SELECT i.id FROM oauth2_id_token i WHERE i.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_access_token a WHERE a.id_token_id = i.id) LIMIT $2"
        ),
        ExpiredGrants => batch_delete!(
            "oauth2_grant",
            "SELECT id FROM oauth2_grant WHERE expires < $1 LIMIT $2"
        ),
        ExpiredDeviceGrants => batch_delete!(
            "oauth2_device_grant",
            "SELECT id FROM oauth2_device_grant WHERE expires < $1 LIMIT $2"
        ),
    }
}

/// The statement counting what `step` would delete.
fn cleanup_count_sql(step: CleanupStep) -> &'static str {
    use CleanupStep::*;
    match step {
        RevokedRefreshTokens => "SELECT COUNT(*) FROM oauth2_refresh_token WHERE revoked <= $1",
        OrphanedRefreshTokens => {
            "SELECT COUNT(*) FROM oauth2_refresh_token WHERE revoked IS NULL AND access_token_id IS NULL"
        }
        ExpiredRefreshTokens => {
            "SELECT COUNT(*) FROM oauth2_refresh_token r \
             JOIN oauth2_access_token a ON a.id = r.access_token_id \
             WHERE r.revoked IS NULL AND a.expires <= $1"
        }
        ExpiredAccessTokens => {
            "SELECT COUNT(*) FROM oauth2_access_token a WHERE a.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_refresh_token r WHERE r.access_token_id = a.id)"
        }
        ExpiredIdTokens => {
            "SELECT COUNT(*) FROM oauth2_id_token i WHERE i.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_access_token a WHERE a.id_token_id = i.id)"
        }
        ExpiredGrants => "SELECT COUNT(*) FROM oauth2_grant WHERE expires < $1",
        ExpiredDeviceGrants => "SELECT COUNT(*) FROM oauth2_device_grant WHERE expires < $1",
    }
}

fn is_memory_sqlite(url: &str) -> bool {
    url.contains(":memory:") || url.contains("mode=memory")
}

impl SqlStore {
    /// Opens a database by URL with default options: `sqlite://path` (the file is created
    /// if missing), `sqlite::memory:`, or `postgres://user:pass@host/db`. Does not apply
    /// migrations: call [`SqlStore::migrate`].
    pub async fn connect(url: &str) -> StoreResult<Self> {
        Self::connect_with(url, SqlOptions::default()).await
    }

    /// Opens a database by URL with the given options.
    pub async fn connect_with(url: &str, options: SqlOptions) -> StoreResult<Self> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Self::connect_sqlite(url, &options).await,
            "postgres" | "postgresql" => Self::connect_postgres(url, &options).await,
            other => Err(StoreError::Config(format!(
                "unsupported database URL scheme {other:?} (expected sqlite:// or postgres://)"
            ))),
        }
    }

    #[cfg(feature = "sqlite")]
    async fn connect_sqlite(url: &str, options: &SqlOptions) -> StoreResult<Self> {
        use std::str::FromStr;
        let base = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            .synchronous(SqliteSynchronous::Normal);
        if is_memory_sqlite(url) {
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .acquire_timeout(options.acquire_timeout)
                .connect_with(base)
                .await
                .map_err(|e| StoreError::Config(format!("{url}: {e}")))?;
            return Ok(SqlStore {
                backend: Backend::Sqlite {
                    writer: pool.clone(),
                    reader: pool,
                },
            });
        }
        let base = base.journal_mode(SqliteJournalMode::Wal);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.clone())
            .await
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(base.read_only(true))
            .await
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))?;
        Ok(SqlStore {
            backend: Backend::Sqlite { writer, reader },
        })
    }

    #[cfg(not(feature = "sqlite"))]
    async fn connect_sqlite(url: &str, _options: &SqlOptions) -> StoreResult<Self> {
        Err(StoreError::Config(format!(
            "{url}: this build has no SQLite support (enable the `sqlite` feature)"
        )))
    }

    #[cfg(feature = "postgres")]
    async fn connect_postgres(url: &str, options: &SqlOptions) -> StoreResult<Self> {
        use std::str::FromStr;
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(path) = &options.search_path {
            connect = connect.options([("search_path", path.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Config(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(SqlStore {
            backend: Backend::Postgres(pool),
        })
    }

    #[cfg(not(feature = "postgres"))]
    async fn connect_postgres(_url: &str, _options: &SqlOptions) -> StoreResult<Self> {
        Err(StoreError::Config(
            "this build has no PostgreSQL support (enable the `postgres` feature)".into(),
        ))
    }

    /// Which database this is.
    pub fn kind(&self) -> SqlKind {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { .. } => SqlKind::Sqlite,
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => SqlKind::Postgres,
        }
    }

    /// Applies the migrations that have not run yet (idempotent). Returns how many ran.
    pub async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await?;
        let result = match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { writer, .. } => sqlx::migrate!("migrations/sqlite").run(writer).await,
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await,
        };
        result.map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(self.applied_migrations().await? - before)
    }

    /// How many migrations have been applied (0 on a new database).
    pub async fn applied_migrations(&self) -> StoreResult<usize> {
        let exists: bool = with_pool!(self, write, |pool| {
            let sql = match self.kind() {
                SqlKind::Sqlite => {
                    "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
                     AND name = '_sqlx_migrations')"
                }
                SqlKind::Postgres => "SELECT to_regclass('_sqlx_migrations') IS NOT NULL",
            };
            sqlx::query_scalar(sql)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        if !exists {
            return Ok(0);
        }
        let n: i64 = with_pool!(self, write, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(n as usize)
    }

    /// Closes every connection (waits for queries in flight).
    pub async fn close(&self) {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

impl Store for SqlStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        let id: i64 = with_pool!(self, write, |pool| {
            sqlx::query_scalar(
                "INSERT INTO oauth2_user (username, email, password_hash, is_active, date_joined) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(&u.username)
            .bind(&u.email)
            .bind(&u.password_hash)
            .bind(u.is_active)
            .bind(u.date_joined)
            .fetch_one(pool)
            .await
            .map_err(db_err)?
        });
        Ok(u.into_row(id))
    }

    async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                user_cols!(),
                " FROM oauth2_user WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                user_cols!(),
                " FROM oauth2_user WHERE username = $1"
            ))
            .bind(username)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn set_last_login(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        with_pool!(self, write, |pool| {
            sqlx::query("UPDATE oauth2_user SET last_login = $2 WHERE id = $1")
                .bind(id)
                .bind(at)
                .execute(pool)
                .await
                .map_err(db_err)?;
        });
        Ok(())
    }

    async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        let n = with_pool!(self, write, |pool| {
            sqlx::query("UPDATE oauth2_user SET is_active = $2 WHERE id = $1")
                .bind(id)
                .bind(active)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(n == 1)
    }

    async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = with_pool!(self, read, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM oauth2_user")
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(n as u64)
    }

    async fn create_application(&self, a: NewApplication) -> StoreResult<Application> {
        let id: i64 = with_pool!(self, write, |pool| {
            sqlx::query_scalar(
                "INSERT INTO oauth2_application (client_id, user_id, redirect_uris, \
                 post_logout_redirect_uris, client_type, authorization_grant_type, client_secret, \
                 hash_client_secret, name, skip_authorization, created, updated, algorithm, \
                 allowed_origins, pkce_required) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14) \
                 RETURNING id",
            )
            .bind(&a.client_id)
            .bind(a.user_id)
            .bind(&a.redirect_uris)
            .bind(&a.post_logout_redirect_uris)
            .bind(a.client_type.as_str())
            .bind(a.authorization_grant_type.as_str())
            .bind(&a.client_secret)
            .bind(a.hash_client_secret)
            .bind(&a.name)
            .bind(a.skip_authorization)
            .bind(a.created)
            .bind(a.algorithm.as_str())
            .bind(&a.allowed_origins)
            .bind(a.pkce_required)
            .fetch_one(pool)
            .await
            .map_err(db_err)?
        });
        Ok(a.into_row(id))
    }

    async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                app_cols!(),
                " FROM oauth2_application WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                app_cols!(),
                " FROM oauth2_application WHERE client_id = $1"
            ))
            .bind(client_id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                app_cols!(),
                " FROM oauth2_application ORDER BY id"
            ))
            .fetch_all(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        let n = with_pool!(self, write, |pool| {
            sqlx::query("DELETE FROM oauth2_application WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(n > 0)
    }

    async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
        let id: i64 = with_pool!(self, write, |pool| {
            sqlx::query_scalar(
                "INSERT INTO oauth2_grant (user_id, code_checksum, application_id, expires, \
                 redirect_uri, scope, code_challenge, code_challenge_method, nonce, claims, \
                 auth_time, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
                 RETURNING id",
            )
            .bind(g.user_id)
            .bind(&g.code_checksum)
            .bind(g.application_id)
            .bind(g.expires)
            .bind(&g.redirect_uri)
            .bind(&g.scope)
            .bind(&g.code_challenge)
            .bind(&g.code_challenge_method)
            .bind(&g.nonce)
            .bind(&g.claims)
            .bind(g.auth_time)
            .bind(g.created)
            .fetch_one(pool)
            .await
            .map_err(db_err)?
        });
        Ok(g.into_row(id))
    }

    async fn find_grant(&self, code_checksum: &str) -> StoreResult<Option<Grant>> {
        // Read through the writer: a code is exchanged right after it is written, and the
        // single-use check must see the latest state.
        with_pool!(self, write, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                grant_cols!(),
                " FROM oauth2_grant WHERE code_checksum = $1"
            ))
            .bind(code_checksum)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn mark_grant_used(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let n = with_pool!(self, write, |pool| {
            sqlx::query("UPDATE oauth2_grant SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
                .bind(id)
                .bind(now)
                .execute(pool)
                .await
                .map_err(db_err)?
                .rows_affected()
        });
        Ok(n == 1)
    }

    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            // On PostgreSQL the UPDATE locks the grant row until COMMIT: a concurrent
            // redemption (or revoke_grant_tokens) waits, then sees used_at set.
            let n = sqlx::query(
                "UPDATE oauth2_grant SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
            )
            .bind(grant_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
            if n == 0 {
                tx.rollback().await.map_err(db_err)?;
                return Ok(None);
            }
            let issued = write_tokens!(tx, tokens);
            tx.commit().await.map_err(db_err)?;
            Ok(Some(issued))
        })
    }

    async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        if tokens.refresh.is_none() && tokens.id_token.is_none() {
            // One statement is atomic on its own: skip BEGIN/COMMIT, which would triple the
            // round trips of the hottest write (client credentials).
            let access = tokens.access;
            let id: i64 = with_pool!(self, write, |pool| { insert_access!(pool, access) });
            return Ok(IssuedTokens {
                access: access.into_row(id),
                refresh: None,
                id_token: None,
            });
        }
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            let issued = write_tokens!(tx, tokens);
            tx.commit().await.map_err(db_err)?;
            Ok(issued)
        })
    }

    async fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        mut tokens: IssueTokens,
    ) -> StoreResult<IssuedTokens> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            // A family never changes: read it unlocked, then lock family, then the row.
            let family: Option<Option<String>> =
                sqlx::query_scalar("SELECT token_family FROM oauth2_refresh_token WHERE id = $1")
                    .bind(old_refresh_id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if let Some(Some(family)) = &family {
                lock_family!(self, tx, family.as_str());
            }
            let locked: Option<Option<i64>> = sqlx::query_scalar(LOCK_LIVE_RT)
                .bind(old_refresh_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let Some(old_access) = locked else {
                return Err(StoreError::Conflict(format!(
                    "refresh token {old_refresh_id} is not live"
                )));
            };
            sqlx::query(
                "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL WHERE id = $1",
            )
            .bind(old_refresh_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let mut old_grant = None;
            if let Some(at) = old_access {
                let grant: Option<Option<i64>> = sqlx::query_scalar(
                    "DELETE FROM oauth2_access_token WHERE id = $1 RETURNING grant_id",
                )
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                old_grant = grant.flatten();
            }
            tokens.access.source_refresh_token_id = Some(old_refresh_id);
            tokens.access.grant_id = tokens.access.grant_id.or(old_grant);
            let issued = write_tokens!(tx, tokens);
            tx.commit().await.map_err(db_err)?;
            Ok(issued)
        })
    }

    async fn replace_access_token(
        &self,
        refresh_id: i64,
        access: NewAccessToken,
    ) -> StoreResult<AccessToken> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            let locked: Option<Option<i64>> = sqlx::query_scalar(LOCK_LIVE_RT)
                .bind(refresh_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let Some(old) = locked else {
                return Err(StoreError::Conflict(format!(
                    "refresh token {refresh_id} is not live"
                )));
            };
            let mut access = access;
            if let Some(at) = old {
                let grant: Option<Option<i64>> = sqlx::query_scalar(
                    "DELETE FROM oauth2_access_token WHERE id = $1 RETURNING grant_id",
                )
                .bind(at)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
                access.grant_id = access.grant_id.or(grant.flatten());
            }
            let id: i64 = insert_access!(&mut *tx, access);
            sqlx::query(
                "UPDATE oauth2_refresh_token SET access_token_id = $2 \
                 WHERE id = $1 AND revoked IS NULL",
            )
            .bind(refresh_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(access.into_row(id))
        })
    }

    async fn find_access_token(
        &self,
        token_checksum: &str,
    ) -> StoreResult<Option<AccessTokenDetails>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(
                "SELECT t.id AS id, t.user_id AS user_id, \
                 t.source_refresh_token_id AS source_refresh_token_id, \
                 t.token_checksum AS token_checksum, t.id_token_id AS id_token_id, \
                 t.application_id AS application_id, t.grant_id AS grant_id, \
                 t.expires AS expires, t.scope AS scope, t.created AS created, \
                 a.client_id AS client_id, u.username AS username, \
                 u.is_active AS user_active \
                 FROM oauth2_access_token t \
                 LEFT JOIN oauth2_application a ON a.id = t.application_id \
                 LEFT JOIN oauth2_user u ON u.id = t.user_id \
                 WHERE t.token_checksum = $1",
            )
            .bind(token_checksum)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_access_token_by_id(&self, id: i64) -> StoreResult<Option<AccessToken>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                at_cols!(),
                " FROM oauth2_access_token WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessToken>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                at_cols!(),
                " FROM oauth2_access_token WHERE user_id = $1 AND application_id = $2 \
                 AND expires > $3 ORDER BY id"
            ))
            .bind(user_id)
            .bind(application_id)
            .bind(now)
            .fetch_all(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_successor(
        &self,
        refresh_id: i64,
    ) -> StoreResult<Option<(AccessToken, Option<RefreshToken>)>> {
        with_pool!(self, write, |pool| {
            let at: Option<AccessToken> = sqlx::query_as(concat!(
                "SELECT ",
                at_cols!(),
                " FROM oauth2_access_token WHERE source_refresh_token_id = $1"
            ))
            .bind(refresh_id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
            let Some(at) = at else { return Ok(None) };
            let rt: Option<RefreshToken> = sqlx::query_as(concat!(
                "SELECT ",
                rt_cols!(),
                " FROM oauth2_refresh_token WHERE access_token_id = $1"
            ))
            .bind(at.id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)?;
            Ok(Some((at, rt)))
        })
    }

    async fn revoke_access_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            // Refresh-token row first, then the access token: the lock order of every path.
            sqlx::query(
                "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL \
                 WHERE access_token_id = $1 AND revoked IS NULL",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            let n = sqlx::query("DELETE FROM oauth2_access_token WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
            tx.commit().await.map_err(db_err)?;
            Ok(n > 0)
        })
    }

    async fn find_refresh_token(&self, token_checksum: &str) -> StoreResult<Option<RefreshToken>> {
        // Through the writer: refresh decisions must see the latest rotation.
        with_pool!(self, write, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                rt_cols!(),
                " FROM oauth2_refresh_token WHERE token_checksum = $1"
            ))
            .bind(token_checksum)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                rt_cols!(),
                " FROM oauth2_refresh_token WHERE access_token_id = $1"
            ))
            .bind(access_token_id)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn revoke_refresh_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            let locked: Option<Option<i64>> = sqlx::query_scalar(LOCK_LIVE_RT)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(db_err)?;
            let Some(access) = locked else {
                return Ok(false);
            };
            sqlx::query(
                "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            if let Some(at) = access {
                sqlx::query("DELETE FROM oauth2_access_token WHERE id = $1")
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok(true)
        })
    }

    async fn revoke_refresh_token_family(&self, family: &str, now: Timestamp) -> StoreResult<u64> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            lock_family!(self, tx, family);
            let n = revoke_family_on!(tx, family, now);
            tx.commit().await.map_err(db_err)?;
            Ok(n)
        })
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: Timestamp) -> StoreResult<u64> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            // Lock the grant row first (a no-op write): a redemption in flight commits
            // its tokens before this transaction reads them (see `redeem_grant`).
            sqlx::query("UPDATE oauth2_grant SET used_at = used_at WHERE id = $1")
                .bind(grant_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let mut families: Vec<String> = sqlx::query_scalar(
                "SELECT DISTINCT r.token_family FROM oauth2_refresh_token r \
                 JOIN oauth2_access_token a ON a.id = r.access_token_id \
                 WHERE a.grant_id = $1 AND r.token_family IS NOT NULL",
            )
            .bind(grant_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
            families.sort();
            let before: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM oauth2_access_token WHERE grant_id = $1")
                    .bind(grant_id)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(db_err)?;
            for family in &families {
                lock_family!(self, tx, family.as_str());
                revoke_family_on!(tx, family.as_str(), now);
            }
            sqlx::query(
                "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL \
                 WHERE revoked IS NULL AND access_token_id IN \
                 (SELECT id FROM oauth2_access_token WHERE grant_id = $1)",
            )
            .bind(grant_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
            sqlx::query("DELETE FROM oauth2_access_token WHERE grant_id = $1")
                .bind(grant_id)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            tx.commit().await.map_err(db_err)?;
            Ok(before as u64)
        })
    }

    async fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            let mut deleted = 0u64;
            // `None` = every application: one pass with the application filter disabled.
            let filters: Vec<Option<i64>> = match application_ids {
                Some(ids) => ids.iter().copied().map(Some).collect(),
                None => vec![None],
            };
            for app in filters {
                sqlx::query(
                    "UPDATE oauth2_refresh_token SET revoked = $3, access_token_id = NULL \
                     WHERE user_id = $1 AND ($2 IS NULL OR application_id = $2) \
                     AND revoked IS NULL",
                )
                .bind(user_id)
                .bind(app)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
                deleted += sqlx::query(
                    "DELETE FROM oauth2_access_token \
                     WHERE user_id = $1 AND ($2 IS NULL OR application_id = $2)",
                )
                .bind(user_id)
                .bind(app)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?
                .rows_affected();
                sqlx::query(
                    "DELETE FROM oauth2_id_token \
                     WHERE user_id = $1 AND ($2 IS NULL OR application_id = $2)",
                )
                .bind(user_id)
                .bind(app)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok(deleted)
        })
    }

    async fn create_id_token(&self, t: crate::model::NewIdToken) -> StoreResult<IdToken> {
        let id: i64 = with_pool!(self, write, |pool| {
            sqlx::query_scalar(INSERT_IDT)
                .bind(t.user_id)
                .bind(&t.jti)
                .bind(t.application_id)
                .bind(t.expires)
                .bind(&t.scope)
                .bind(t.created)
                .fetch_one(pool)
                .await
                .map_err(db_err)?
        });
        Ok(t.into_row(id))
    }

    async fn find_id_token(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        with_pool!(self, read, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                idt_cols!(),
                " FROM oauth2_id_token WHERE jti = $1"
            ))
            .bind(jti)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn create_device_grant(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        let status = DeviceGrantStatus::AuthorizationPending;
        let id: i64 = with_pool!(self, write, |pool| {
            sqlx::query_scalar(
                "INSERT INTO oauth2_device_grant (device_code_checksum, user_code_checksum, scope, \
                 poll_interval, expires, status, client_id, last_checked, created) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
            )
            .bind(&g.device_code_checksum)
            .bind(&g.user_code_checksum)
            .bind(&g.scope)
            .bind(g.interval)
            .bind(g.expires)
            .bind(status.as_str())
            .bind(&g.client_id)
            .bind(g.created)
            .fetch_one(pool)
            .await
            .map_err(db_err)?
        });
        Ok(g.into_row(id))
    }

    async fn find_device_grant(&self, checksum: &str) -> StoreResult<Option<DeviceGrant>> {
        with_pool!(self, write, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                dg_cols!(),
                " FROM oauth2_device_grant WHERE device_code_checksum = $1"
            ))
            .bind(checksum)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn find_device_grant_by_user_code(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        with_pool!(self, write, |pool| {
            sqlx::query_as(concat!(
                "SELECT ",
                dg_cols!(),
                " FROM oauth2_device_grant WHERE user_code_checksum = $1"
            ))
            .bind(checksum)
            .fetch_optional(pool)
            .await
            .map_err(db_err)
        })
    }

    async fn update_device_grant_status(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> StoreResult<bool> {
        let n = with_pool!(self, write, |pool| {
            sqlx::query(
                "UPDATE oauth2_device_grant SET status = $3, user_id = COALESCE($4, user_id) \
                 WHERE id = $1 AND status = $2",
            )
            .bind(id)
            .bind(from.as_str())
            .bind(to.as_str())
            .bind(user_id)
            .execute(pool)
            .await
            .map_err(db_err)?
            .rows_affected()
        });
        Ok(n == 1)
    }

    async fn touch_device_grant(&self, id: i64, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        with_pool!(self, write, |pool| {
            let mut tx = begin_write!(self, pool);
            let prev: Option<Timestamp> =
                sqlx::query_scalar("SELECT last_checked FROM oauth2_device_grant WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(db_err)?;
            if prev.is_some() {
                sqlx::query("UPDATE oauth2_device_grant SET last_checked = $2 WHERE id = $1")
                    .bind(id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await
                    .map_err(db_err)?;
            }
            tx.commit().await.map_err(db_err)?;
            Ok(prev)
        })
    }

    async fn count_expired(&self, step: CleanupStep, cutoff: Timestamp) -> StoreResult<u64> {
        let sql = cleanup_count_sql(step);
        let n: i64 = with_pool!(self, read, |pool| {
            let q = sqlx::query(sql);
            let q = if step == CleanupStep::OrphanedRefreshTokens {
                q
            } else {
                q.bind(cutoff)
            };
            q.fetch_one(pool)
                .await
                .map_err(db_err)?
                .try_get(0)
                .map_err(db_err)?
        });
        Ok(n as u64)
    }

    async fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        let (sqlite_sql, postgres_sql) = cleanup_delete_sql(step);
        let sql = match self.kind() {
            SqlKind::Sqlite => sqlite_sql,
            SqlKind::Postgres => postgres_sql,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let n = with_pool!(self, write, |pool| {
            let q = sqlx::query(sql);
            let q = if step == CleanupStep::OrphanedRefreshTokens {
                q.bind(limit)
            } else {
                q.bind(cutoff).bind(limit)
            };
            q.execute(pool).await.map_err(db_err)?.rows_affected()
        });
        Ok(n)
    }
}
