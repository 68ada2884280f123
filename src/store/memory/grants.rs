//! Authorization codes and device grants.

use super::{conflict, MemoryStore};
use crate::model::*;
use crate::store::{IssueTokens, IssuedTokens, StoreError, StoreResult};

impl MemoryStore {
    pub(super) fn create_grant_now(&self, g: NewGrant) -> StoreResult<Grant> {
        let mut s = self.lock();
        if s.grants
            .values()
            .any(|x| x.code_checksum == g.code_checksum)
        {
            return Err(conflict("code checksum"));
        }
        if !s.apps.contains_key(&g.application_id) {
            return Err(StoreError::NotFound(format!(
                "application {}",
                g.application_id
            )));
        }
        if !s.users.contains_key(&g.user_id) {
            return Err(StoreError::NotFound(format!("user {}", g.user_id)));
        }
        let id = s.id();
        let grant = g.into_row(id);
        s.grants.insert(id, grant.clone());
        Ok(grant)
    }

    pub(super) fn find_grant_now(&self, code_checksum: &str) -> StoreResult<Option<Grant>> {
        Ok(self
            .lock()
            .grants
            .values()
            .find(|g| g.code_checksum == code_checksum)
            .cloned())
    }

    pub(super) fn mark_grant_used_now(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let mut s = self.lock();
        match s.grants.get_mut(&id) {
            Some(g) if g.used_at.is_none() => {
                g.used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) fn redeem_grant_now(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        let mut s = self.lock();
        match s.grants.get(&grant_id) {
            Some(g) if g.used_at.is_none() => {}
            Some(_) => return Ok(None),
            None => return Err(StoreError::NotFound(format!("grant {grant_id}"))),
        }
        let issued = s.write_tokens(tokens)?;
        s.grants.get_mut(&grant_id).expect("checked above").used_at = Some(now);
        Ok(Some(issued))
    }

    pub(super) fn create_device_grant_now(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        let mut s = self.lock();
        if s.devices.values().any(|d| {
            d.device_code_checksum == g.device_code_checksum
                || d.user_code_checksum == g.user_code_checksum
        }) {
            return Err(conflict("device or user code"));
        }
        let id = s.id();
        let dg = g.into_row(id);
        s.devices.insert(id, dg.clone());
        Ok(dg)
    }

    pub(super) fn find_device_grant_now(&self, checksum: &str) -> StoreResult<Option<DeviceGrant>> {
        Ok(self
            .lock()
            .devices
            .values()
            .find(|d| d.device_code_checksum == checksum)
            .cloned())
    }

    pub(super) fn find_device_grant_by_user_code_now(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        Ok(self
            .lock()
            .devices
            .values()
            .find(|d| d.user_code_checksum == checksum)
            .cloned())
    }

    pub(super) fn update_device_grant_status_now(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        match s.devices.get_mut(&id) {
            Some(d) if d.status == from => {
                d.status = to;
                if user_id.is_some() {
                    d.user_id = user_id;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(super) fn touch_device_grant_now(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let mut s = self.lock();
        Ok(s.devices
            .get_mut(&id)
            .map(|d| std::mem::replace(&mut d.last_checked, now)))
    }

    pub(super) fn slow_down_device_grant_now(
        &self,
        id: i64,
        step: i64,
    ) -> StoreResult<Option<i64>> {
        let mut s = self.lock();
        Ok(s.devices.get_mut(&id).map(|d| {
            d.interval = d.interval.saturating_add(step);
            d.interval
        }))
    }

    pub(super) fn redeem_device_grant_now(
        &self,
        id: i64,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        let mut s = self.lock();
        if !s
            .devices
            .get(&id)
            .is_some_and(|d| d.status == DeviceGrantStatus::Authorized)
        {
            return Ok(None);
        }
        let issued = s.write_tokens(tokens)?;
        s.devices.remove(&id);
        Ok(Some(issued))
    }
}
