//! The SQLite backend of [`SqlStore`](super::SqlStore): rusqlite on the engine's own
//! threads (see [`engine`]), with the statements of [`super::statements`].
//!
//! ## Why not sqlx's SQLite driver
//! sqlx runs each SQLite connection on a worker thread and hands every statement over to
//! it and back, ~50 µs a statement on the 2-core machine of BENCHMARKS.md; with its
//! single writer, `issue_tokens` topped out near 4,500 commits a second and every
//! transactional write paid that hand-off per statement. Here a whole batch of writes is
//! one hand-off and one commit, and each statement is a cached prepared statement run in
//! the writer's own thread (a few µs). BENCHMARKS.md ("Storage engine") has the figures
//! of both. sqlx still embeds and checksums the migrations, so databases migrated by
//! earlier versions keep their `_sqlx_migrations` history.
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
}

/// Parses `sqlite://path`, `sqlite:path`, `sqlite::memory:` (query parameters are
/// ignored but `mode=memory`).
fn target(url: &str, busy_timeout: Duration) -> StoreResult<Target> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("{url}: not an sqlite: URL")))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path == ":memory:" || path.is_empty() || query.contains("mode=memory");
    if path.is_empty() && !memory {
        return Err(StoreError::Config(format!("{url}: no file name")));
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
    })
}

impl SqliteStore {
    pub(crate) async fn connect(
        url: &str,
        readers: usize,
        busy_timeout: Duration,
    ) -> StoreResult<Self> {
        let target = target(url, busy_timeout)?;
        // Opening runs file I/O: off the runtime's threads.
        let engine = tokio::task::spawn_blocking(move || Engine::start(target, readers))
            .await
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))??;
        Ok(SqliteStore { engine })
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
