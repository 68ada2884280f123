//! Authorization codes and device grants.

use rusqlite::ToSql;

use super::rows::{self, execute, insert, optional};
use super::tokens::write_tokens;
use super::SqliteStore;
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::{IssueTokens, IssuedTokens, StoreResult};

impl SqliteStore {
    // ----- authorization codes -----

    pub(crate) async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
        self.engine
            .write_one(move |c| {
                let (challenge, method) = pkce_columns(&g.pkce);
                let args: [&dyn ToSql; 13] = [
                    &g.user_id,
                    &g.code_checksum,
                    &g.application_id,
                    &g.expires,
                    &g.redirect_uri,
                    &g.scope,
                    &challenge,
                    &method,
                    &g.nonce,
                    &g.claims,
                    &g.auth_time,
                    &g.created,
                    &g.resource,
                ];
                let id = insert(c, q::INSERT_GRANT_SQLITE, &args)?;
                Ok(g.into_row(id))
            })
            .await
    }

    pub(crate) async fn find_grant(&self, checksum: &str) -> StoreResult<Option<Grant>> {
        let checksum = checksum.to_owned();
        // The single-use check reads the writer's latest state.
        self.engine
            .read_latest(move |c| optional(c, q::GRANT_BY_CHECKSUM, &[&checksum], rows::grant))
            .await
    }

    pub(crate) async fn mark_grant_used(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        self.engine
            .write_one(move |c| Ok(execute(c, q::MARK_GRANT_USED, &[&id, &now])? == 1))
            .await
    }

    pub(crate) async fn redeem_grant(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        self.engine
            .write(move |c| {
                if execute(c, q::MARK_GRANT_USED, &[&grant_id, &now])? == 0 {
                    return Ok(None);
                }
                write_tokens(c, tokens).map(Some)
            })
            .await
    }

    // ----- device grants -----

    pub(crate) async fn create_device_grant(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        self.engine
            .write_one(move |c| {
                let status = DeviceGrantStatus::AuthorizationPending.as_str();
                let args: [&dyn ToSql; 8] = [
                    &g.device_code_checksum,
                    &g.user_code_checksum,
                    &g.scope,
                    &g.interval,
                    &g.expires,
                    &status,
                    &g.client_id,
                    &g.created,
                ];
                let id = insert(c, q::INSERT_DEVICE_SQLITE, &args)?;
                Ok(g.into_row(id))
            })
            .await
    }

    pub(crate) async fn find_device_grant(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        let checksum = checksum.to_owned();
        self.engine
            .read_latest(move |c| optional(c, q::DEVICE_BY_CODE, &[&checksum], rows::device_grant))
            .await
    }

    pub(crate) async fn find_device_grant_by_user_code(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        let checksum = checksum.to_owned();
        self.engine
            .read_latest(move |c| {
                optional(c, q::DEVICE_BY_USER_CODE, &[&checksum], rows::device_grant)
            })
            .await
    }

    pub(crate) async fn update_device_grant_status(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> StoreResult<bool> {
        self.engine
            .write_one(move |c| {
                let args: [&dyn ToSql; 4] = [&id, &from.as_str(), &to.as_str(), &user_id];
                Ok(execute(c, q::SET_DEVICE_STATUS, &args)? == 1)
            })
            .await
    }

    pub(crate) async fn touch_device_grant(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        self.engine
            .write(move |c| {
                let prev: Option<Timestamp> =
                    optional(c, q::DEVICE_LAST_CHECKED, &[&id], |r| r.get(0))?;
                if prev.is_some() {
                    execute(c, q::TOUCH_DEVICE, &[&id, &now])?;
                }
                Ok(prev)
            })
            .await
    }

    pub(crate) async fn slow_down_device_grant(
        &self,
        id: i64,
        step: i64,
    ) -> StoreResult<Option<i64>> {
        self.engine
            .write_one(move |c| optional(c, q::SLOW_DOWN_DEVICE, &[&id, &step], |r| r.get(0)))
            .await
    }

    pub(crate) async fn redeem_device_grant(
        &self,
        id: i64,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        self.engine
            .write(move |c| {
                if execute(c, q::REDEEM_DEVICE, &[&id])? == 0 {
                    return Ok(None);
                }
                write_tokens(c, tokens).map(Some)
            })
            .await
    }
}
