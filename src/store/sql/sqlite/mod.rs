//! The SQLite backend of [`SqlStore`](super::SqlStore): rusqlite on the engine's own
//! threads (see [`engine`]), with the statements of [`super::statements`].
//!
//! ## Why not sqlx's SQLite driver (the decision, with figures)
//! sqlx runs each SQLite connection on a worker thread and hands every statement over to
//! it and back (~50 µs a statement on the 2-core machine of BENCHMARKS.md); with its
//! single writer, inserts topped out near 4,100 a second, each transactional write paid
//! the hand-off per statement, a failed `COMMIT` left the connection inside its
//! transaction, and `fetch_one` of an `INSERT … RETURNING` returned the row before
//! SQLite's autocommit had failed (the "200 for an unstored token" on a full disk). Here
//! a whole batch of writes is one hand-off and one commit, each statement a cached
//! prepared statement run in the writer's own thread. `cargo bench --bench store` (100k
//! tokens in the table), sqlx 0.8 → this engine: insert one client 240 → 161 µs, 8
//! clients 4,100 → 9,660/s (32 clients: 16,400/s); lookup hit 176 → 33 µs, 8 clients
//! 29,000 → 61,700/s; miss 55 → 24 µs. End to end, `benches/provider_load.sh` in one
//! run against the 0.1 binary: BENCHMARKS.md ("The store engine"). sqlx still embeds and
//! checksums the migrations, so databases migrated by earlier versions keep their
//! `_sqlx_migrations` history.
//!
//! What bounds the writer now is SQLite's page I/O: every token insert lands on a random
//! leaf of the unique checksum index, one 4 KiB WAL frame per token (and one more page
//! copied at checkpoint time). Time-ordered token keys would make those inserts
//! sequential; that is a change of the token format, not of the engine.
//!
//! ## Tuning (documented in the README's storage notes)
//! WAL journal with `synchronous = NORMAL` (a commit is durable against a crash of the
//! process, not of the machine; the last commits before a power loss may be lost, never
//! corrupted), a 5 s busy timeout for other processes' locks (a `cleartokens` cron job),
//! a 64 MiB page cache on the writer and 16 MiB on each reader, SQLite's default
//! automatic WAL checkpoint (1,000 pages), and the token indexes of the migrations.

mod cleanup;
pub(crate) mod engine;
pub(crate) mod error;
mod grants;
mod migrate;
mod rows;
mod tokens;
mod users;

use std::time::Duration;

use self::engine::{Engine, Target};
use crate::store::{StoreError, StoreResult};

/// The SQLite half of `SqlStore`.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    engine: Engine,
    /// Whether connecting created the database file.
    created: bool,
}

/// Parses `sqlite://path`, `sqlite:path`, `sqlite::memory:` (query parameters are
/// ignored but `mode=memory`). An empty path is refused: it is not an in-memory database
/// by accident (a throwaway database that "applies migrations" and loses everything).
fn target(url: &str, busy_timeout: Duration, create: bool) -> StoreResult<Target> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("{url}: not an sqlite: URL")))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path == ":memory:" || query.contains("mode=memory");
    if path.is_empty() && !memory {
        return Err(StoreError::Config(format!(
            "{url:?} names no database file: use sqlite://PATH (e.g. sqlite://oauth-toolkit.db) \
             or sqlite::memory:"
        )));
    }
    Ok(Target {
        path: if memory {
            ":memory:".into()
        } else {
            path.into()
        },
        memory,
        busy_timeout,
        cache_kib: 65_536,
        create,
    })
}

impl SqliteStore {
    pub(crate) async fn connect(
        url: &str,
        readers: usize,
        busy_timeout: Duration,
        create: bool,
    ) -> StoreResult<Self> {
        let target = target(url, busy_timeout, create)?;
        // Opening runs file I/O: off the runtime's threads.
        let (engine, created) = tokio::task::spawn_blocking(move || {
            let missing = !target.memory && !target.path.exists();
            if missing && !target.create {
                return Err(StoreError::Config(format!(
                    "no database at {}",
                    target.path.display()
                )));
            }
            Engine::start(target, readers).map(|engine| (engine, missing))
        })
        .await
        .map_err(|e| StoreError::Config(format!("{url}: {e}")))??;
        Ok(SqliteStore { engine, created })
    }

    pub(crate) fn created(&self) -> bool {
        self.created
    }

    pub(crate) async fn applied_versions(&self) -> StoreResult<Vec<i64>> {
        self.engine.read_latest(migrate::applied_versions).await
    }

    pub(crate) fn known_versions() -> Vec<i64> {
        migrate::known_versions()
    }

    pub(crate) async fn migrate(&self) -> StoreResult<usize> {
        self.engine.write(migrate::run).await
    }

    pub(crate) async fn applied_migrations(&self) -> StoreResult<usize> {
        self.engine.read_latest(migrate::applied).await
    }

    pub(crate) async fn close(&self) {
        self.engine.close().await;
    }
}
