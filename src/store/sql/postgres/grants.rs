//! Authorization codes and device grants.

use super::tokens::write_tokens;
use super::{db_err, returned_id, PgStore};
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::{IssueTokens, IssuedTokens, StoreError, StoreResult};

/// `oauth2_grant`'s columns as stored; the PKCE pair becomes an `Option` in
/// [`GrantRow::into_grant`].
#[derive(sqlx::FromRow)]
struct GrantRow {
    id: i64,
    user_id: i64,
    code_checksum: String,
    application_id: i64,
    expires: Timestamp,
    redirect_uri: String,
    scope: String,
    code_challenge: String,
    code_challenge_method: String,
    nonce: String,
    claims: String,
    auth_time: Option<Timestamp>,
    created: Timestamp,
    used_at: Option<Timestamp>,
    resource: String,
}

impl GrantRow {
    fn into_grant(self) -> StoreResult<Grant> {
        let pkce = PkceChallenge::from_columns(self.code_challenge, &self.code_challenge_method)
            .map_err(|e| StoreError::Backend(Box::new(e)))?;
        Ok(Grant {
            id: self.id,
            user_id: self.user_id,
            code_checksum: self.code_checksum,
            application_id: self.application_id,
            expires: self.expires,
            redirect_uri: self.redirect_uri,
            scope: self.scope,
            pkce,
            nonce: self.nonce,
            claims: self.claims,
            auth_time: self.auth_time,
            created: self.created,
            used_at: self.used_at,
            resource: self.resource,
        })
    }
}

impl PgStore {
    // ----- authorization codes -----

    pub(crate) async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
        let (challenge, method) = pkce_columns(&g.pkce);
        let id = returned_id(
            sqlx::query_scalar(q::INSERT_GRANT)
                .bind(g.user_id)
                .bind(&g.code_checksum)
                .bind(g.application_id)
                .bind(g.expires)
                .bind(&g.redirect_uri)
                .bind(&g.scope)
                .bind(challenge)
                .bind(method)
                .bind(&g.nonce)
                .bind(&g.claims)
                .bind(g.auth_time)
                .bind(g.created)
                .bind(&g.resource)
                .fetch_all(&self.pool)
                .await,
        )?;
        Ok(g.into_row(id))
    }

    pub(crate) async fn find_grant(&self, checksum: &str) -> StoreResult<Option<Grant>> {
        let row: Option<GrantRow> = self.find_one(q::GRANT_BY_CHECKSUM, checksum).await?;
        row.map(GrantRow::into_grant).transpose()
    }

    pub(crate) async fn mark_grant_used(&self, id: i64, now: Timestamp) -> StoreResult<bool> {
        Ok(self
            .execute(sqlx::query(q::MARK_GRANT_USED).bind(id).bind(now))
            .await?
            == 1)
    }

    pub(crate) async fn redeem_grant(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        // The UPDATE locks the grant row until COMMIT: a concurrent redemption (or
        // revoke_grant_tokens) waits, then sees used_at set.
        self.redeem(
            sqlx::query(q::MARK_GRANT_USED).bind(grant_id).bind(now),
            tokens,
        )
        .await
    }

    /// Runs `claim` (a conditional write that locks the row it claims) and, when it
    /// changed a row, writes `tokens` — in one transaction; `None` when there was nothing
    /// to claim.
    async fn redeem(
        &self,
        claim: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        let mut tx = self.begin().await?;
        let n = claim
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if n == 0 {
            tx.rollback().await.map_err(db_err)?;
            return Ok(None);
        }
        let issued = write_tokens(&mut tx, tokens).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Some(issued))
    }

    // ----- device grants -----

    pub(crate) async fn create_device_grant(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        let status = DeviceGrantStatus::AuthorizationPending;
        let id = returned_id(
            sqlx::query_scalar(q::INSERT_DEVICE)
                .bind(&g.device_code_checksum)
                .bind(&g.user_code_checksum)
                .bind(&g.scope)
                .bind(g.interval)
                .bind(g.expires)
                .bind(status.as_str())
                .bind(&g.client_id)
                .bind(g.created)
                .fetch_all(&self.pool)
                .await,
        )?;
        Ok(g.into_row(id))
    }

    pub(crate) async fn find_device_grant(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        self.find_one(q::DEVICE_BY_CODE, checksum).await
    }

    pub(crate) async fn find_device_grant_by_user_code(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        self.find_one(q::DEVICE_BY_USER_CODE, checksum).await
    }

    pub(crate) async fn update_device_grant_status(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> StoreResult<bool> {
        Ok(self
            .execute(
                sqlx::query(q::SET_DEVICE_STATUS)
                    .bind(id)
                    .bind(from.as_str())
                    .bind(to.as_str())
                    .bind(user_id),
            )
            .await?
            == 1)
    }

    pub(crate) async fn touch_device_grant(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Option<Timestamp>> {
        let mut tx = self.begin().await?;
        let prev: Option<Timestamp> = sqlx::query_scalar(q::DEVICE_LAST_CHECKED_FOR_UPDATE)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if prev.is_some() {
            sqlx::query(q::TOUCH_DEVICE)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(prev)
    }

    pub(crate) async fn slow_down_device_grant(
        &self,
        id: i64,
        step: i64,
    ) -> StoreResult<Option<i64>> {
        // `fetch_all`: the whole answer, so an error after the row is not lost.
        let rows: Vec<i64> = sqlx::query_scalar(q::SLOW_DOWN_DEVICE)
            .bind(id)
            .bind(step)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(rows.into_iter().next())
    }

    pub(crate) async fn redeem_device_grant(
        &self,
        id: i64,
        tokens: IssueTokens,
    ) -> StoreResult<Option<IssuedTokens>> {
        // The DELETE locks the row until COMMIT: a concurrent redemption waits, then
        // finds nothing to delete.
        self.redeem(sqlx::query(q::REDEEM_DEVICE).bind(id), tokens)
            .await
    }
}
