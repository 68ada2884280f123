//! The batches of `clear_expired()`.

use sqlx::Row;

use super::{db_err, PgStore};
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::{CleanupStep, StoreResult};

impl PgStore {
    // ----- cleanup -----

    pub(crate) async fn count_expired(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
    ) -> StoreResult<u64> {
        let q = sqlx::query(q::cleanup_count_sql(step));
        let q = if step == CleanupStep::OrphanedRefreshTokens {
            q
        } else {
            q.bind(cutoff)
        };
        let n: i64 = q
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?
            .try_get(0)
            .map_err(db_err)?;
        Ok(n as u64)
    }

    pub(crate) async fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        let (_, sql) = q::cleanup_delete_sql(step);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let q = sqlx::query(sql);
        let q = if step == CleanupStep::OrphanedRefreshTokens {
            q.bind(limit)
        } else {
            q.bind(cutoff).bind(limit)
        };
        self.execute(q).await
    }
}
