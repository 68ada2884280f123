//! [`MemoryStore`]: an in-process [`Store`] for unit tests and examples.
//!
//! It follows the SQL store's semantics exactly, delete behaviour included (the same
//! behavioural suite runs against both); data lives as long as the value. One mutex guards
//! everything, held only for the synchronous part of each call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

mod cleanup;
mod grants;
mod tokens;
mod users;

use super::{CleanupStep, IssueTokens, IssuedTokens, Store, StoreError, StoreResult};
use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewRefreshToken, NewRegistration,
    NewUser, RefreshToken, Registration, Timestamp, User,
};

/// An in-memory [`Store`]. Clone it through an `Arc` to share.
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    next_id: i64,
    users: BTreeMap<i64, User>,
    apps: BTreeMap<i64, Application>,
    grants: BTreeMap<i64, Grant>,
    access: BTreeMap<i64, AccessToken>,
    refresh: BTreeMap<i64, RefreshToken>,
    id_tokens: BTreeMap<i64, IdToken>,
    devices: BTreeMap<i64, DeviceGrant>,
    /// Dynamic registrations, by application id.
    registrations: BTreeMap<i64, Registration>,
    access_by_checksum: HashMap<String, i64>,
    refresh_by_checksum: HashMap<String, i64>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than losing the store, so a poisoned lock is simply taken over.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn conflict(what: &str) -> StoreError {
    StoreError::Conflict(format!("{what} already exists"))
}

impl State {
    fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    // --- delete behaviour, as the SQL foreign keys do it ---

    fn delete_access(&mut self, id: i64) -> bool {
        let Some(at) = self.access.remove(&id) else {
            return false;
        };
        self.access_by_checksum.remove(&at.token_checksum);
        for rt in self.refresh.values_mut() {
            if rt.access_token_id == Some(id) {
                rt.access_token_id = None;
            }
        }
        true
    }

    fn delete_refresh(&mut self, id: i64) -> bool {
        let Some(rt) = self.refresh.remove(&id) else {
            return false;
        };
        self.refresh_by_checksum.remove(&rt.token_checksum);
        for at in self.access.values_mut() {
            if at.source_refresh_token_id == Some(id) {
                at.source_refresh_token_id = None;
            }
        }
        true
    }

    fn delete_id_token(&mut self, id: i64) -> bool {
        if self.id_tokens.remove(&id).is_none() {
            return false;
        }
        let dependents: Vec<i64> = self
            .access
            .values()
            .filter(|a| a.id_token_id == Some(id))
            .map(|a| a.id)
            .collect();
        for a in dependents {
            self.delete_access(a);
        }
        true
    }

    fn delete_grant(&mut self, id: i64) -> bool {
        if self.grants.remove(&id).is_none() {
            return false;
        }
        for at in self.access.values_mut() {
            if at.grant_id == Some(id) {
                at.grant_id = None;
            }
        }
        true
    }

    fn delete_app(&mut self, id: i64) -> bool {
        if self.apps.remove(&id).is_none() {
            return false;
        }
        self.registrations.remove(&id);
        let owned = |x: Option<i64>| x == Some(id);
        let at: Vec<i64> = self
            .access
            .values()
            .filter(|t| owned(t.application_id))
            .map(|t| t.id)
            .collect();
        at.into_iter().for_each(|i| {
            self.delete_access(i);
        });
        let rt: Vec<i64> = self
            .refresh
            .values()
            .filter(|t| t.application_id == id)
            .map(|t| t.id)
            .collect();
        rt.into_iter().for_each(|i| {
            self.delete_refresh(i);
        });
        let it: Vec<i64> = self
            .id_tokens
            .values()
            .filter(|t| owned(t.application_id))
            .map(|t| t.id)
            .collect();
        it.into_iter().for_each(|i| {
            self.delete_id_token(i);
        });
        let g: Vec<i64> = self
            .grants
            .values()
            .filter(|t| t.application_id == id)
            .map(|t| t.id)
            .collect();
        g.into_iter().for_each(|i| {
            self.delete_grant(i);
        });
        true
    }

    fn insert_access(&mut self, t: NewAccessToken) -> StoreResult<AccessToken> {
        if self.access_by_checksum.contains_key(&t.token_checksum) {
            return Err(conflict("access token checksum"));
        }
        if let Some(src) = t.source_refresh_token_id {
            if self
                .access
                .values()
                .any(|a| a.source_refresh_token_id == Some(src))
            {
                return Err(conflict("access token for this source refresh token"));
            }
        }
        let id = self.id();
        let at = t.into_row(id);
        self.access_by_checksum
            .insert(at.token_checksum.clone(), id);
        self.access.insert(id, at.clone());
        Ok(at)
    }

    fn insert_refresh(&mut self, t: NewRefreshToken) -> StoreResult<RefreshToken> {
        if self.refresh_by_checksum.contains_key(&t.token_checksum) {
            return Err(conflict("refresh token checksum"));
        }
        let id = self.id();
        let rt = t.into_row(id);
        self.refresh_by_checksum
            .insert(rt.token_checksum.clone(), id);
        self.refresh.insert(id, rt.clone());
        Ok(rt)
    }

    /// Checks every uniqueness rule of `tokens` before anything is written, so a failed
    /// call leaves no partial state (the SQL store gets this from its transaction).
    fn check_tokens(&self, tokens: &IssueTokens) -> StoreResult<()> {
        if self
            .access_by_checksum
            .contains_key(&tokens.access.token_checksum)
        {
            return Err(conflict("access token checksum"));
        }
        if let Some(r) = &tokens.refresh {
            if self.refresh_by_checksum.contains_key(&r.token_checksum) {
                return Err(conflict("refresh token checksum"));
            }
        }
        if let Some(i) = &tokens.id_token {
            if self.id_tokens.values().any(|t| t.jti == i.jti) {
                return Err(conflict("id token jti"));
            }
        }
        Ok(())
    }

    fn write_tokens(&mut self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        self.check_tokens(&tokens)?;
        let IssueTokens {
            mut access,
            refresh,
            id_token,
        } = tokens;
        let id_token = id_token.map(|t| {
            let id = self.id();
            let row = t.into_row(id);
            self.id_tokens.insert(id, row.clone());
            row
        });
        if let Some(i) = &id_token {
            access.id_token_id = Some(i.id);
        }
        let access = self.insert_access(access)?;
        let refresh = match refresh {
            Some(mut r) => {
                r.access_token_id = Some(access.id);
                Some(self.insert_refresh(r)?)
            }
            None => None,
        };
        Ok(IssuedTokens {
            access,
            refresh,
            id_token,
        })
    }

    fn revoke_family(&mut self, family: &str, now: Timestamp) -> u64 {
        let members: Vec<i64> = self
            .refresh
            .values()
            .filter(|r| r.token_family.as_deref() == Some(family))
            .map(|r| r.id)
            .collect();
        let mut revoked = 0;
        for id in members {
            let at = self.refresh.get(&id).and_then(|r| r.access_token_id);
            if let Some(at) = at {
                self.delete_access(at);
            }
            let r = self.refresh.get_mut(&id).expect("member exists");
            if r.revoked.is_none() {
                r.revoked = Some(now);
                r.access_token_id = None;
                revoked += 1;
            }
        }
        revoked
    }

    fn expired_ids(&self, step: CleanupStep, cutoff: Timestamp, limit: usize) -> Vec<i64> {
        use CleanupStep::*;
        match step {
            RevokedRefreshTokens => self
                .refresh
                .values()
                .filter(|r| r.revoked.is_some_and(|t| t <= cutoff))
                .map(|r| r.id)
                .take(limit)
                .collect(),
            OrphanedRefreshTokens => self
                .refresh
                .values()
                .filter(|r| r.revoked.is_none() && r.access_token_id.is_none())
                .map(|r| r.id)
                .take(limit)
                .collect(),
            ExpiredRefreshTokens => self
                .refresh
                .values()
                .filter(|r| {
                    r.revoked.is_none()
                        && r.access_token_id
                            .and_then(|a| self.access.get(&a))
                            .is_some_and(|a| a.expires <= cutoff)
                })
                .map(|r| r.id)
                .take(limit)
                .collect(),
            ExpiredAccessTokens => self
                .access
                .values()
                .filter(|a| {
                    a.expires < cutoff
                        && !self
                            .refresh
                            .values()
                            .any(|r| r.access_token_id == Some(a.id))
                })
                .map(|a| a.id)
                .take(limit)
                .collect(),
            ExpiredIdTokens => self
                .id_tokens
                .values()
                .filter(|i| {
                    i.expires < cutoff && !self.access.values().any(|a| a.id_token_id == Some(i.id))
                })
                .map(|i| i.id)
                .take(limit)
                .collect(),
            ExpiredGrants => self
                .grants
                .values()
                .filter(|g| g.expires < cutoff)
                .map(|g| g.id)
                .take(limit)
                .collect(),
            ExpiredDeviceGrants => self
                .devices
                .values()
                .filter(|g| g.expires < cutoff)
                .map(|g| g.id)
                .take(limit)
                .collect(),
            UnusedRegisteredClients => self
                .registrations
                .values()
                .filter(|r| {
                    let app = r.application_id;
                    r.used.is_none()
                        && r.created < cutoff
                        && !self.access.values().any(|a| a.application_id == Some(app))
                        && !self.refresh.values().any(|t| t.application_id == app)
                        && !self.grants.values().any(|g| g.application_id == app)
                })
                .map(|r| r.application_id)
                .take(limit)
                .collect(),
        }
    }
}

impl Store for MemoryStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        self.create_user_now(u)
    }

    async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.find_user_now(id)
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        self.find_user_by_username_now(username)
    }

    async fn set_last_login(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        self.set_last_login_now(id, at)
    }

    async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        self.set_user_active_now(id, active)
    }

    async fn count_users(&self) -> StoreResult<u64> {
        self.count_users_now()
    }

    async fn create_application(&self, a: NewApplication) -> StoreResult<Application> {
        self.create_application_now(a)
    }

    async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        self.find_application_now(id)
    }

    async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        self.find_application_by_client_id_now(client_id)
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        self.list_applications_now()
    }

    async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        self.delete_application_now(id)
    }

    async fn update_application(&self, app: &Application) -> StoreResult<bool> {
        let mut s = self.lock();
        let Some(stored) = s.apps.get_mut(&app.id) else {
            return Ok(false);
        };
        stored.redirect_uris = app.redirect_uris.clone();
        stored.post_logout_redirect_uris = app.post_logout_redirect_uris.clone();
        stored.authorization_grant_type = app.authorization_grant_type;
        stored.name = app.name.clone();
        stored.updated = app.updated;
        Ok(true)
    }

    async fn register_application(
        &self,
        a: NewApplication,
        r: NewRegistration,
    ) -> StoreResult<(Application, Registration)> {
        let app = self.create_application_now(a)?;
        let mut s = self.lock();
        let id = s.id();
        let registration = r.into_row(id, app.id);
        s.registrations.insert(app.id, registration.clone());
        Ok((app, registration))
    }

    async fn mark_used_registrations(&self, now: Timestamp) -> StoreResult<u64> {
        let mut s = self.lock();
        let held: Vec<i64> = s
            .registrations
            .values()
            .filter(|r| r.used.is_none())
            .map(|r| r.application_id)
            .filter(|&app| {
                s.access.values().any(|a| a.application_id == Some(app))
                    || s.refresh.values().any(|t| t.application_id == app)
                    || s.grants.values().any(|g| g.application_id == app)
            })
            .collect();
        for app in &held {
            if let Some(r) = s.registrations.get_mut(app) {
                r.used = Some(now);
            }
        }
        Ok(held.len() as u64)
    }

    async fn find_registration(&self, token_checksum: &str) -> StoreResult<Option<Registration>> {
        Ok(self
            .lock()
            .registrations
            .values()
            .find(|r| r.token_checksum == token_checksum)
            .cloned())
    }

    async fn update_registration(
        &self,
        app: &Application,
        registration: &Registration,
        presented_checksum: &str,
    ) -> StoreResult<bool> {
        let mut s = self.lock();
        let current = s
            .registrations
            .get(&app.id)
            .map(|r| r.token_checksum.as_str());
        if current != Some(presented_checksum) {
            return Ok(false);
        }
        let Some(stored) = s.apps.get_mut(&app.id) else {
            return Ok(false);
        };
        stored.redirect_uris = app.redirect_uris.clone();
        stored.post_logout_redirect_uris = app.post_logout_redirect_uris.clone();
        stored.authorization_grant_type = app.authorization_grant_type;
        stored.name = app.name.clone();
        stored.updated = app.updated;
        s.registrations.insert(app.id, registration.clone());
        Ok(true)
    }

    async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
        self.create_grant_now(g)
    }

    async fn find_grant(&self, code_checksum: &str) -> StoreResult<Option<Grant>> {
        self.find_grant_now(code_checksum)
    }

    async fn mark_grant_used(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        self.mark_grant_used_now(id, now)
    }

    async fn redeem_grant(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        self.redeem_grant_now(grant_id, now, tokens)
    }

    async fn create_device_grant(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        self.create_device_grant_now(g)
    }

    async fn find_device_grant(&self, checksum: &str) -> StoreResult<Option<DeviceGrant>> {
        self.find_device_grant_now(checksum)
    }

    async fn find_device_grant_by_user_code(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        self.find_device_grant_by_user_code_now(checksum)
    }

    async fn update_device_grant_status(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> StoreResult<bool> {
        self.update_device_grant_status_now(id, from, to, user_id)
    }

    async fn touch_device_grant(&self, id: i64, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        self.touch_device_grant_now(id, now)
    }

    async fn slow_down_device_grant(&self, id: i64, step: i64) -> StoreResult<Option<i64>> {
        self.slow_down_device_grant_now(id, step)
    }

    async fn redeem_device_grant(
        &self,
        id: i64,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        self.redeem_device_grant_now(id, tokens)
    }

    async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        self.issue_tokens_now(tokens)
    }

    async fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<IssuedTokens> {
        self.rotate_refresh_token_now(old_refresh_id, now, tokens)
    }

    async fn replace_access_token(
        &self,
        refresh_id: i64,
        access: NewAccessToken,
    ) -> StoreResult<AccessToken> {
        self.replace_access_token_now(refresh_id, access)
    }

    async fn find_access_token(
        &self,
        token_checksum: &str,
    ) -> StoreResult<Option<AccessTokenDetails>> {
        self.find_access_token_now(token_checksum)
    }

    async fn find_access_token_by_id(&self, id: i64) -> StoreResult<Option<AccessToken>> {
        self.find_access_token_by_id_now(id)
    }

    async fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessToken>> {
        self.find_live_access_tokens_now(user_id, application_id, now)
    }

    async fn find_successor(
        &self,
        refresh_id: i64,
    ) -> StoreResult<Option<(AccessToken, Option<RefreshToken>)>> {
        self.find_successor_now(refresh_id)
    }

    async fn revoke_access_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        self.revoke_access_token_now(id, now)
    }

    async fn find_refresh_token(&self, token_checksum: &str) -> StoreResult<Option<RefreshToken>> {
        self.find_refresh_token_now(token_checksum)
    }

    async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        self.find_refresh_token_for_access_token_now(access_token_id)
    }

    async fn revoke_refresh_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        self.revoke_refresh_token_now(id, now)
    }

    async fn revoke_refresh_token_family(&self, family: &str, now: Timestamp) -> StoreResult<u64> {
        self.revoke_refresh_token_family_now(family, now)
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: Timestamp) -> StoreResult<u64> {
        self.revoke_grant_tokens_now(grant_id, now)
    }

    async fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        self.delete_user_tokens_now(user_id, application_ids, now)
    }

    async fn create_id_token(&self, t: crate::model::NewIdToken) -> StoreResult<IdToken> {
        self.create_id_token_now(t)
    }

    async fn find_id_token(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        self.find_id_token_now(jti)
    }

    async fn count_expired(&self, step: CleanupStep, cutoff: Timestamp) -> StoreResult<u64> {
        self.count_expired_now(step, cutoff)
    }

    async fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        self.delete_expired_batch_now(step, cutoff, limit)
    }
}
