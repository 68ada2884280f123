//! Access, refresh and ID tokens.

use super::{conflict, MemoryStore};
use crate::model::*;
use crate::store::{IssueTokens, IssuedTokens, StoreError, StoreResult};

impl MemoryStore {
    pub(super) fn issue_tokens_now(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        self.lock().write_tokens(tokens)
    }

    pub(super) fn rotate_refresh_token_now(
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

    pub(super) fn replace_access_token_now(
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

    pub(super) fn find_access_token_now(
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

    pub(super) fn find_access_token_by_id_now(&self, id: i64) -> StoreResult<Option<AccessToken>> {
        Ok(self.lock().access.get(&id).cloned())
    }

    pub(super) fn find_live_access_tokens_now(
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

    pub(super) fn find_successor_now(
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

    pub(super) fn revoke_access_token_now(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        let mut s = self.lock();
        for r in s.refresh.values_mut() {
            if r.access_token_id == Some(id) && r.revoked.is_none() {
                r.revoked = Some(now);
                r.access_token_id = None;
            }
        }
        Ok(s.delete_access(id))
    }

    pub(super) fn find_refresh_token_now(
        &self,
        token_checksum: &str,
    ) -> StoreResult<Option<RefreshToken>> {
        let s = self.lock();
        Ok(s.refresh_by_checksum
            .get(token_checksum)
            .and_then(|id| s.refresh.get(id))
            .cloned())
    }

    pub(super) fn find_refresh_token_for_access_token_now(
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

    pub(super) fn revoke_refresh_token_now(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
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

    pub(super) fn revoke_refresh_token_family_now(
        &self,
        family: &str,
        now: Timestamp,
    ) -> StoreResult<u64> {
        Ok(self.lock().revoke_family(family, now))
    }

    pub(super) fn revoke_grant_tokens_now(
        &self,
        grant_id: i64,
        now: Timestamp,
    ) -> StoreResult<u64> {
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

    pub(super) fn delete_user_tokens_now(
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

    pub(super) fn create_id_token_now(&self, t: crate::model::NewIdToken) -> StoreResult<IdToken> {
        let mut s = self.lock();
        if s.id_tokens.values().any(|x| x.jti == t.jti) {
            return Err(StoreError::Conflict("id token jti".into()));
        }
        let id = s.id();
        let row = t.into_row(id);
        s.id_tokens.insert(id, row.clone());
        Ok(row)
    }

    pub(super) fn find_id_token_now(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        Ok(self
            .lock()
            .id_tokens
            .values()
            .find(|t| t.jti == jti)
            .cloned())
    }
}
