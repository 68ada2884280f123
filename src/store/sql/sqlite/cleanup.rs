//! The batches of `clear_expired()`.

use rusqlite::ToSql;

use super::rows::{execute, first_i64, one};
use super::SqliteStore;
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::{CleanupStep, StoreResult};

impl SqliteStore {
    // ----- cleanup -----

    pub(crate) async fn count_expired(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
    ) -> StoreResult<u64> {
        let sql = q::cleanup_count_sql(step);
        self.engine
            .read(move |c| {
                let args: &[&dyn ToSql] = if step == CleanupStep::OrphanedRefreshTokens {
                    &[]
                } else {
                    &[&cutoff]
                };
                Ok(one(c, sql, args, first_i64)? as u64)
            })
            .await
    }

    pub(crate) async fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        let (sql, _) = q::cleanup_delete_sql(step);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.engine
            .write_one(move |c| {
                if step == CleanupStep::OrphanedRefreshTokens {
                    execute(c, sql, &[&limit])
                } else {
                    execute(c, sql, &[&cutoff, &limit])
                }
            })
            .await
    }
}
