//! [`MemoryStore`]: an in-process [`Store`] for unit tests and examples.
//!
//! It follows the SQL store's semantics exactly, delete behaviour included (the same
//! behavioural suite runs against both); data lives as long as the value. One mutex guards
//! everything, held only for the synchronous part of each call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{CleanupStep, IssueTokens, IssuedTokens, Store, StoreError, StoreResult};
use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewRefreshToken, NewUser,
    RefreshToken, Timestamp, User,
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
        }
    }
}

impl Store for MemoryStore {
    async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        let mut s = self.lock();
        if s.users.values().any(|x| x.username == u.username) {
            return Err(conflict("username"));
        }
        let id = s.id();
        let user = u.into_row(id);
        s.users.insert(id, user.clone());
        Ok(user)
    }

    async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    async fn set_last_login(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.last_login = Some(at);
        }
        Ok(())
    }

    async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        match self.lock().users.get_mut(&id) {
            Some(u) => {
                u.is_active = active;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn count_users(&self) -> StoreResult<u64> {
        Ok(self.lock().users.len() as u64)
    }

    async fn create_application(&self, a: NewApplication) -> StoreResult<Application> {
        let mut s = self.lock();
        if s.apps.values().any(|x| x.client_id == a.client_id) {
            return Err(conflict("client id"));
        }
        if let Some(u) = a.user_id {
            if !s.users.contains_key(&u) {
                return Err(StoreError::NotFound(format!("user {u}")));
            }
        }
        let id = s.id();
        let app = a.into_row(id);
        s.apps.insert(id, app.clone());
        Ok(app)
    }

    async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        Ok(self.lock().apps.get(&id).cloned())
    }

    async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        Ok(self
            .lock()
            .apps
            .values()
            .find(|a| a.client_id == client_id)
            .cloned())
    }

    async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        Ok(self.lock().apps.values().cloned().collect())
    }

    async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        Ok(self.lock().delete_app(id))
    }

    async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
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

    async fn find_grant(&self, code_checksum: &str) -> StoreResult<Option<Grant>> {
        Ok(self
            .lock()
            .grants
            .values()
            .find(|g| g.code_checksum == code_checksum)
            .cloned())
    }

    async fn mark_grant_used(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let mut s = self.lock();
        match s.grants.get_mut(&id) {
            Some(g) if g.used_at.is_none() => {
                g.used_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn redeem_grant(
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

    async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        self.lock().write_tokens(tokens)
    }

    async fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        mut tokens: IssueTokens,
    ) -> StoreResult<IssuedTokens> {
        let mut s = self.lock();
        let old_access = match s.refresh.get(&old_refresh_id) {
            Some(r) if r.revoked.is_none() => r.access_token_id,
            _ => {
                return Err(StoreError::Conflict(format!(
                    "refresh token {old_refresh_id} is not live"
                )))
            }
        };
        tokens.access.source_refresh_token_id = Some(old_refresh_id);
        let old_grant = old_access
            .and_then(|a| s.access.get(&a))
            .and_then(|a| a.grant_id);
        tokens.access.grant_id = tokens.access.grant_id.or(old_grant);
        s.check_tokens(&tokens)?;
        {
            let r = s.refresh.get_mut(&old_refresh_id).expect("checked above");
            r.revoked = Some(now);
            r.access_token_id = None;
        }
        if let Some(a) = old_access {
            s.delete_access(a);
        }
        s.write_tokens(tokens)
    }

    async fn replace_access_token(
        &self,
        refresh_id: i64,
        mut access: NewAccessToken,
    ) -> StoreResult<AccessToken> {
        let mut s = self.lock();
        let old = match s.refresh.get(&refresh_id) {
            Some(r) if r.revoked.is_none() => r.access_token_id,
            _ => {
                return Err(StoreError::Conflict(format!(
                    "refresh token {refresh_id} is not live"
                )))
            }
        };
        if s.access_by_checksum.contains_key(&access.token_checksum) {
            return Err(conflict("access token checksum"));
        }
        if let Some(a) = old {
            let grant = s.access.get(&a).and_then(|a| a.grant_id);
            access.grant_id = access.grant_id.or(grant);
            s.delete_access(a);
        }
        let at = s.insert_access(access)?;
        s.refresh
            .get_mut(&refresh_id)
            .expect("checked above")
            .access_token_id = Some(at.id);
        Ok(at)
    }

    async fn find_access_token(
        &self,
        token_checksum: &str,
    ) -> StoreResult<Option<AccessTokenDetails>> {
        let s = self.lock();
        let Some(at) = s
            .access_by_checksum
            .get(token_checksum)
            .and_then(|id| s.access.get(id))
        else {
            return Ok(None);
        };
        Ok(Some(AccessTokenDetails {
            client_id: at
                .application_id
                .and_then(|a| s.apps.get(&a))
                .map(|a| a.client_id.clone()),
            username: at
                .user_id
                .and_then(|u| s.users.get(&u))
                .map(|u| u.username.clone()),
            user_active: at
                .user_id
                .and_then(|u| s.users.get(&u))
                .map(|u| u.is_active),
            token: at.clone(),
        }))
    }

    async fn find_access_token_by_id(&self, id: i64) -> StoreResult<Option<AccessToken>> {
        Ok(self.lock().access.get(&id).cloned())
    }

    async fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessToken>> {
        Ok(self
            .lock()
            .access
            .values()
            .filter(|a| {
                a.user_id == Some(user_id)
                    && a.application_id == Some(application_id)
                    && a.expires > now
            })
            .cloned()
            .collect())
    }

    async fn find_successor(
        &self,
        refresh_id: i64,
    ) -> StoreResult<Option<(AccessToken, Option<RefreshToken>)>> {
        let s = self.lock();
        let Some(at) = s
            .access
            .values()
            .find(|a| a.source_refresh_token_id == Some(refresh_id))
        else {
            return Ok(None);
        };
        let rt = s
            .refresh
            .values()
            .find(|r| r.access_token_id == Some(at.id))
            .cloned();
        Ok(Some((at.clone(), rt)))
    }

    async fn revoke_access_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let mut s = self.lock();
        for r in s.refresh.values_mut() {
            if r.access_token_id == Some(id) && r.revoked.is_none() {
                r.revoked = Some(now);
                r.access_token_id = None;
            }
        }
        Ok(s.delete_access(id))
    }

    async fn find_refresh_token(&self, token_checksum: &str) -> StoreResult<Option<RefreshToken>> {
        let s = self.lock();
        Ok(s.refresh_by_checksum
            .get(token_checksum)
            .and_then(|id| s.refresh.get(id))
            .cloned())
    }

    async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        Ok(self
            .lock()
            .refresh
            .values()
            .find(|r| r.access_token_id == Some(access_token_id))
            .cloned())
    }

    async fn revoke_refresh_token(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let mut s = self.lock();
        let access = match s.refresh.get_mut(&id) {
            Some(r) if r.revoked.is_none() => {
                r.revoked = Some(now);
                r.access_token_id.take()
            }
            _ => return Ok(false),
        };
        if let Some(a) = access {
            s.delete_access(a);
        }
        Ok(true)
    }

    async fn revoke_refresh_token_family(&self, family: &str, now: Timestamp) -> StoreResult<u64> {
        Ok(self.lock().revoke_family(family, now))
    }

    async fn revoke_grant_tokens(&self, grant_id: i64, now: Timestamp) -> StoreResult<u64> {
        let mut s = self.lock();
        let issued: Vec<i64> = s
            .access
            .values()
            .filter(|a| a.grant_id == Some(grant_id))
            .map(|a| a.id)
            .collect();
        let mut families: Vec<String> = s
            .refresh
            .values()
            .filter(|r| r.access_token_id.is_some_and(|a| issued.contains(&a)))
            .filter_map(|r| r.token_family.clone())
            .collect();
        families.sort();
        families.dedup();
        for f in &families {
            s.revoke_family(f, now);
        }
        for r in s.refresh.values_mut() {
            if r.revoked.is_none() && r.access_token_id.is_some_and(|a| issued.contains(&a)) {
                r.revoked = Some(now);
                r.access_token_id = None;
            }
        }
        for a in &issued {
            s.delete_access(*a);
        }
        Ok(issued.len() as u64)
    }

    async fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> StoreResult<u64> {
        let mut s = self.lock();
        let in_scope = |app: Option<i64>| match application_ids {
            None => true,
            Some(ids) => app.is_some_and(|a| ids.contains(&a)),
        };
        for r in s.refresh.values_mut() {
            if r.user_id == Some(user_id) && in_scope(Some(r.application_id)) && r.revoked.is_none()
            {
                r.revoked = Some(now);
                r.access_token_id = None;
            }
        }
        let at: Vec<i64> = s
            .access
            .values()
            .filter(|a| a.user_id == Some(user_id) && in_scope(a.application_id))
            .map(|a| a.id)
            .collect();
        for a in &at {
            s.delete_access(*a);
        }
        let it: Vec<i64> = s
            .id_tokens
            .values()
            .filter(|t| t.user_id == Some(user_id) && in_scope(t.application_id))
            .map(|t| t.id)
            .collect();
        for i in it {
            s.delete_id_token(i);
        }
        Ok(at.len() as u64)
    }

    async fn create_id_token(&self, t: crate::model::NewIdToken) -> StoreResult<IdToken> {
        let mut s = self.lock();
        if s.id_tokens.values().any(|x| x.jti == t.jti) {
            return Err(StoreError::Conflict("id token jti".into()));
        }
        let id = s.id();
        let row = t.into_row(id);
        s.id_tokens.insert(id, row.clone());
        Ok(row)
    }

    async fn find_id_token(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        Ok(self
            .lock()
            .id_tokens
            .values()
            .find(|t| t.jti == jti)
            .cloned())
    }

    async fn create_device_grant(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
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

    async fn find_device_grant(&self, checksum: &str) -> StoreResult<Option<DeviceGrant>> {
        Ok(self
            .lock()
            .devices
            .values()
            .find(|d| d.device_code_checksum == checksum)
            .cloned())
    }

    async fn find_device_grant_by_user_code(
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

    async fn update_device_grant_status(
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

    async fn touch_device_grant(&self, id: i64, now: Timestamp) -> StoreResult<Option<Timestamp>> {
        let mut s = self.lock();
        Ok(s.devices
            .get_mut(&id)
            .map(|d| std::mem::replace(&mut d.last_checked, now)))
    }

    async fn count_expired(&self, step: CleanupStep, cutoff: Timestamp) -> StoreResult<u64> {
        Ok(self.lock().expired_ids(step, cutoff, usize::MAX).len() as u64)
    }

    async fn delete_expired_batch(
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
            };
            n += u64::from(deleted);
        }
        Ok(n)
    }
}
