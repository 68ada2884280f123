//! Applies `migrations/sqlite` with sqlx's bookkeeping (the `_sqlx_migrations` table,
//! SHA-384 checksums), so databases migrated by sqlx and by this runner are the same:
//! each migration and its record in one transaction, a changed or missing applied
//! migration refused.

use rusqlite::Connection;

use crate::store::{StoreError, StoreResult};

fn migrator() -> sqlx::migrate::Migrator {
    sqlx::migrate!("migrations/sqlite")
}

const TABLE: &str = "CREATE TABLE IF NOT EXISTS _sqlx_migrations (
    version BIGINT PRIMARY KEY,
    description TEXT NOT NULL,
    installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    success BOOLEAN NOT NULL,
    checksum BLOB NOT NULL,
    execution_time BIGINT NOT NULL
)";

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Migration(e.to_string())
}

/// Runs on the writer's connection, outside the batch transaction's savepoints: it
/// is given the connection inside `BEGIN IMMEDIATE`, which already serialises it with
/// every other writer.
pub(super) fn run(c: &Connection) -> StoreResult<usize> {
    c.execute_batch(TABLE).map_err(err)?;
    let dirty: Option<i64> = c
        .query_row(
            "SELECT version FROM _sqlx_migrations WHERE success = false ORDER BY version LIMIT 1",
            [],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(None),
            e => Err(e),
        })
        .map_err(err)?;
    if let Some(v) = dirty {
        return Err(err(format!(
            "migration {v} is partially applied; fix and remove it"
        )));
    }
    let mut applied = std::collections::HashMap::new();
    {
        let mut stmt = c
            .prepare("SELECT version, checksum FROM _sqlx_migrations ORDER BY version")
            .map_err(err)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .map_err(err)?;
        for row in rows {
            let (v, sum) = row.map_err(err)?;
            applied.insert(v, sum);
        }
    }
    let migrator = migrator();
    for v in applied.keys() {
        if !migrator.iter().any(|m| m.version == *v) {
            return Err(err(format!(
                "migration {v} was applied before but is missing in the resolved migrations"
            )));
        }
    }
    let mut ran = 0;
    for m in migrator.iter() {
        if let Some(sum) = applied.get(&m.version) {
            if sum.as_slice() != &*m.checksum {
                return Err(err(format!(
                    "migration {} was previously applied but has been modified",
                    m.version
                )));
            }
            continue;
        }
        let start = std::time::Instant::now();
        c.execute_batch("SAVEPOINT migration").map_err(err)?;
        let applied = c.execute_batch(&m.sql).and_then(|()| {
            c.execute(
                "INSERT INTO _sqlx_migrations (version, description, success, checksum, \
                 execution_time) VALUES (?1, ?2, TRUE, ?3, ?4)",
                rusqlite::params![
                    m.version,
                    &*m.description,
                    &*m.checksum,
                    start.elapsed().as_nanos() as i64
                ],
            )
        });
        match applied {
            Ok(_) => c.execute_batch("RELEASE migration").map_err(err)?,
            Err(e) => {
                let _ = c.execute_batch("ROLLBACK TO migration; RELEASE migration");
                return Err(err(format!("migration {}: {e}", m.version)));
            }
        }
        ran += 1;
    }
    Ok(ran)
}

/// How many migrations have been applied (0 on a new database).
pub(super) fn applied(c: &Connection) -> StoreResult<usize> {
    let exists: bool = c
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = '_sqlx_migrations')",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if !exists {
        return Ok(0);
    }
    let n: i64 = c
        .query_row(
            "SELECT COUNT(*) FROM _sqlx_migrations WHERE success",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    Ok(n as usize)
}

/// The versions of the migrations this build knows, in order.
pub(super) fn known_versions() -> Vec<i64> {
    migrator().iter().map(|m| m.version).collect()
}

/// The versions of the migrations applied successfully (none on a new database).
pub(super) fn applied_versions(c: &Connection) -> StoreResult<Vec<i64>> {
    if applied(c)? == 0 {
        return Ok(Vec::new());
    }
    let mut stmt = c
        .prepare("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
        .map_err(err)?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0)).map_err(err)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(err)
}
