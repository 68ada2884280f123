//! The batches of `clear_expired()`.

use super::MemoryStore;
use crate::model::*;
use crate::store::{CleanupStep, StoreResult};

impl MemoryStore {
    pub(super) fn count_expired_now(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
    ) -> StoreResult<u64> {
        Ok(self.lock().expired_ids(step, cutoff, usize::MAX).len() as u64)
    }

    pub(super) fn delete_expired_batch_now(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        let mut s = self.lock();
        let ids = s.expired_ids(step, cutoff, usize::try_from(limit).unwrap_or(usize::MAX));
        let mut n = 0;
        for id in ids {
            let deleted = match step {
                CleanupStep::RevokedRefreshTokens
                | CleanupStep::OrphanedRefreshTokens
                | CleanupStep::ExpiredRefreshTokens => s.delete_refresh(id),
                CleanupStep::ExpiredAccessTokens => s.delete_access(id),
                CleanupStep::ExpiredIdTokens => s.delete_id_token(id),
                CleanupStep::ExpiredGrants => s.delete_grant(id),
                CleanupStep::ExpiredDeviceGrants => s.devices.remove(&id).is_some(),
                CleanupStep::UnusedRegisteredClients => s.delete_app(id),
            };
            n += u64::from(deleted);
        }
        Ok(n)
    }
}
