//! The PostgreSQL backend of [`SqlStore`](super::SqlStore): one sqlx pool, the statements
//! of [`super::statements`].
//!
//! * Refresh-token rotation relies on a conditional `UPDATE` (`… WHERE revoked IS NULL`),
//!   which PostgreSQL re-checks after a concurrent writer commits, so two rotations of
//!   one token never both succeed.
//! * Lock order everywhere: the family's advisory lock, refresh-token rows, access-token
//!   rows (so a family revocation and a rotation never deadlock, and a revocation sees a
//!   rotation that raced it).
//! * Every write that answers a client runs in an explicit transaction whose `COMMIT`
//!   result is checked, or is a single statement read to its end (`fetch_all`), so an
//!   error that PostgreSQL reports at the end of a statement is never lost.
//! * Writes are not coalesced here: PostgreSQL already commits concurrent transactions in
//!   groups (`commit_delay` / WAL group flush) across the pool's connections.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

mod cleanup;
mod grants;
mod tokens;
mod users;

use super::SqlOptions;
use crate::store::{StoreError, StoreResult};

/// The PostgreSQL half of `SqlStore`.
#[derive(Clone, Debug)]
pub(crate) struct PgStore {
    pool: PgPool,
}

/// A sqlx error as a [`StoreError`]: lost races are conflicts, an unreachable, full,
/// read-only or overloaded server is [`StoreError::Unavailable`].
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => {
            return StoreError::Unavailable(format!("PostgreSQL: {e}"));
        }
        _ => {}
    }
    if let Some(db) = e.as_database_error() {
        let code = db.code();
        let code = code.as_deref().unwrap_or("");
        // Deadlock / serialization failure: a concurrent writer won.
        if matches!(code, "40P01" | "40001") || db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_owned());
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound(db.message().to_owned());
        }
        // Connection exceptions, insufficient resources (disk full, out of memory, too
        // many connections), operator intervention (shutdown, cannot connect now), a
        // read-only transaction (a standby), a lock or statement timeout, system errors.
        if code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || code.starts_with("58")
            || matches!(code, "25006" | "55P03")
        {
            return StoreError::Unavailable(format!("PostgreSQL: {}", db.message()));
        }
    }
    StoreError::Backend(Box::new(e))
}

/// The one id an `INSERT … RETURNING id` outside a transaction returns, read to the end of
/// the statement (a late error is never lost).
fn returned_id(rows: Result<Vec<i64>, sqlx::Error>) -> StoreResult<i64> {
    rows.map_err(db_err)?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Backend("INSERT returned no id".into()))
}

impl PgStore {
    pub(crate) async fn connect(url: &str, options: &SqlOptions) -> StoreResult<Self> {
        use std::str::FromStr;
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(path) = &options.search_path {
            connect = connect.options([("search_path", path.as_str())]);
        }
        // One direct connection first, bounded by the connect timeout: a refused or
        // unreachable server fails fast with its cause (the pool alone would retry until
        // its acquire timeout and then say only "pool timed out").
        let server = format!(
            "{}:{}/{}",
            connect.get_host(),
            connect.get_port(),
            connect.get_database().unwrap_or_default()
        );
        let cannot = |cause: String| {
            StoreError::Config(format!("cannot connect to PostgreSQL at {server}: {cause}"))
        };
        let probe = {
            use sqlx::ConnectOptions;
            tokio::time::timeout(options.connect_timeout, connect.connect()).await
        };
        match probe {
            Ok(Ok(conn)) => {
                use sqlx::Connection;
                let _ = conn.close().await;
            }
            Ok(Err(e)) => return Err(cannot(e.to_string())),
            Err(_) => {
                return Err(cannot(format!(
                    "no answer within {} s",
                    options.connect_timeout.as_secs_f32()
                )))
            }
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| cannot(e.to_string()))?;
        Ok(PgStore { pool })
    }

    pub(crate) async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await?;
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(self.applied_migrations().await? - before)
    }

    pub(crate) fn known_versions() -> Vec<i64> {
        sqlx::migrate!("migrations/postgres")
            .iter()
            .map(|m| m.version)
            .collect()
    }

    pub(crate) async fn applied_versions(&self) -> StoreResult<Vec<i64>> {
        if self.applied_migrations().await? == 0 {
            return Ok(Vec::new());
        }
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn applied_migrations(&self) -> StoreResult<usize> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        if !exists {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(n as usize)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    async fn execute(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<u64> {
        Ok(query
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected())
    }

    /// The row a one-parameter lookup finds, if any.
    async fn find_one<T, A>(&self, sql: &'static str, arg: A) -> StoreResult<Option<T>>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
        A: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
    {
        sqlx::query_as(sql)
            .bind(arg)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }
}
