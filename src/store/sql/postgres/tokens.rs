//! Access, refresh and ID tokens, in the lock order of the module docs.

use sqlx::{PgConnection, Row};

use super::{db_err, returned_id, PgStore};
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::sql::Deleted;
use crate::store::{IssueTokens, IssuedTokens, StoreError, StoreResult};

async fn lock_family(c: &mut PgConnection, family: &str) -> StoreResult<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(family)
        .execute(c)
        .await
        .map_err(db_err)?;
    Ok(())
}

async fn insert_access(c: &mut PgConnection, a: &NewAccessToken) -> StoreResult<i64> {
    sqlx::query_scalar(q::INSERT_AT)
        .bind(a.user_id)
        .bind(a.source_refresh_token_id)
        .bind(&a.token_checksum)
        .bind(a.id_token_id)
        .bind(a.application_id)
        .bind(a.grant_id)
        .bind(a.expires)
        .bind(&a.scope)
        .bind(a.created)
        .bind(&a.resource)
        .fetch_one(c)
        .await
        .map_err(db_err)
}

async fn insert_id_token(c: &mut PgConnection, t: &NewIdToken) -> StoreResult<i64> {
    sqlx::query_scalar(q::INSERT_IDT)
        .bind(t.user_id)
        .bind(&t.jti)
        .bind(t.application_id)
        .bind(t.expires)
        .bind(&t.scope)
        .bind(t.created)
        .fetch_one(c)
        .await
        .map_err(db_err)
}

/// Writes the tokens of one response on an open transaction.
pub(super) async fn write_tokens(
    c: &mut PgConnection,
    tokens: IssueTokens,
) -> StoreResult<IssuedTokens> {
    let IssueTokens {
        mut access,
        refresh,
        id_token,
    } = tokens;
    let id_token = match id_token {
        Some(t) => {
            let id = insert_id_token(&mut *c, &t).await?;
            access.id_token_id = Some(id);
            Some(t.into_row(id))
        }
        None => None,
    };
    let at_id = insert_access(&mut *c, &access).await?;
    let refresh = match refresh {
        Some(mut r) => {
            r.access_token_id = Some(at_id);
            let id: i64 = sqlx::query_scalar(q::INSERT_RT)
                .bind(r.user_id)
                .bind(&r.token_checksum)
                .bind(r.application_id)
                .bind(r.access_token_id)
                .bind(&r.token_family)
                .bind(r.created)
                .bind(&r.resource)
                .fetch_one(&mut *c)
                .await
                .map_err(db_err)?;
            Some(r.into_row(id))
        }
        None => None,
    };
    Ok(IssuedTokens {
        access: access.into_row(at_id),
        refresh,
        id_token,
    })
}

/// Deletes one access token; its checksum when it existed.
async fn delete_access(c: &mut PgConnection, id: i64) -> StoreResult<Vec<String>> {
    sqlx::query_scalar(q::DELETE_AT)
        .bind(id)
        .fetch_all(c)
        .await
        .map_err(db_err)
}

/// Deletes one access token, returning the grant it came from and its checksum.
async fn delete_access_for_grant(
    c: &mut PgConnection,
    id: i64,
) -> StoreResult<Option<(Option<i64>, String)>> {
    let row = sqlx::query(q::DELETE_AT_FOR_GRANT)
        .bind(id)
        .fetch_optional(c)
        .await
        .map_err(db_err)?;
    match row {
        None => Ok(None),
        Some(r) => Ok(Some((
            r.try_get(0).map_err(db_err)?,
            r.try_get(1).map_err(db_err)?,
        ))),
    }
}

/// Revokes the live refresh tokens of a family and deletes their access tokens, on an
/// open transaction holding the family's lock; the number of refresh tokens revoked.
async fn revoke_family(
    c: &mut PgConnection,
    family: &str,
    now: Timestamp,
    checksums: &mut Vec<String>,
) -> StoreResult<u64> {
    let bound: Vec<Option<i64>> = sqlx::query_scalar(q::LOCK_FAMILY_RTS)
        .bind(family)
        .fetch_all(&mut *c)
        .await
        .map_err(db_err)?;
    let revoked = sqlx::query(q::REVOKE_FAMILY)
        .bind(family)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(db_err)?
        .rows_affected();
    for at in bound.into_iter().flatten() {
        checksums.extend(delete_access(&mut *c, at).await?);
    }
    Ok(revoked)
}

/// Locks a live refresh token; its access token id, `None` (outer) when not live.
async fn lock_live_refresh(c: &mut PgConnection, id: i64) -> StoreResult<Option<Option<i64>>> {
    sqlx::query_scalar(q::LOCK_LIVE_RT)
        .bind(id)
        .fetch_optional(c)
        .await
        .map_err(db_err)
}

impl PgStore {
    // ----- tokens -----

    pub(crate) async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        if tokens.refresh.is_none() && tokens.id_token.is_none() {
            // One statement is atomic on its own and its commit error (if any) comes
            // before the end of its answer, which `fetch_all` reads: no BEGIN/COMMIT round
            // trips for the hottest write (client credentials).
            let a = tokens.access;
            let id = returned_id(
                sqlx::query_scalar(q::INSERT_AT)
                    .bind(a.user_id)
                    .bind(a.source_refresh_token_id)
                    .bind(&a.token_checksum)
                    .bind(a.id_token_id)
                    .bind(a.application_id)
                    .bind(a.grant_id)
                    .bind(a.expires)
                    .bind(&a.scope)
                    .bind(a.created)
                    .bind(&a.resource)
                    .fetch_all(&self.pool)
                    .await,
            )?;
            return Ok(IssuedTokens {
                access: a.into_row(id),
                refresh: None,
                id_token: None,
            });
        }
        let mut tx = self.begin().await?;
        let issued = write_tokens(&mut tx, tokens).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(issued)
    }

    pub(crate) async fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        mut tokens: IssueTokens,
    ) -> StoreResult<Deleted<IssuedTokens>> {
        let mut tx = self.begin().await?;
        // A family never changes: read it unlocked, then lock family, then the row.
        let family: Option<Option<String>> = sqlx::query_scalar(q::RT_FAMILY)
            .bind(old_refresh_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?;
        if let Some(Some(family)) = &family {
            lock_family(&mut tx, family).await?;
        }
        let Some(old_access) = lock_live_refresh(&mut tx, old_refresh_id).await? else {
            return Err(StoreError::Conflict(format!(
                "refresh token {old_refresh_id} is not live"
            )));
        };
        sqlx::query(q::REVOKE_RT)
            .bind(old_refresh_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut checksums = Vec::new();
        let mut old_grant = None;
        if let Some(at) = old_access {
            if let Some((grant, sum)) = delete_access_for_grant(&mut tx, at).await? {
                old_grant = grant;
                checksums.push(sum);
            }
        }
        tokens.access.source_refresh_token_id = Some(old_refresh_id);
        tokens.access.grant_id = tokens.access.grant_id.or(old_grant);
        let value = write_tokens(&mut tx, tokens).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted { value, checksums })
    }

    pub(crate) async fn replace_access_token(
        &self,
        refresh_id: i64,
        mut access: NewAccessToken,
    ) -> StoreResult<Deleted<AccessToken>> {
        let mut tx = self.begin().await?;
        let Some(old) = lock_live_refresh(&mut tx, refresh_id).await? else {
            return Err(StoreError::Conflict(format!(
                "refresh token {refresh_id} is not live"
            )));
        };
        let mut checksums = Vec::new();
        if let Some(at) = old {
            if let Some((grant, sum)) = delete_access_for_grant(&mut tx, at).await? {
                access.grant_id = access.grant_id.or(grant);
                checksums.push(sum);
            }
        }
        let id = insert_access(&mut tx, &access).await?;
        sqlx::query(q::BIND_RT)
            .bind(refresh_id)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted {
            value: access.into_row(id),
            checksums,
        })
    }

    pub(crate) async fn find_access_token(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<AccessTokenDetails>> {
        self.find_one(q::AT_DETAILS_BY_CHECKSUM, checksum).await
    }

    pub(crate) async fn find_access_token_by_id(
        &self,
        id: i64,
    ) -> StoreResult<Option<AccessToken>> {
        self.find_one(q::AT_BY_ID, id).await
    }

    pub(crate) async fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessToken>> {
        sqlx::query_as(q::LIVE_ATS)
            .bind(user_id)
            .bind(application_id)
            .bind(now)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn find_successor(
        &self,
        refresh_id: i64,
    ) -> StoreResult<Option<(AccessToken, Option<RefreshToken>)>> {
        let at: Option<AccessToken> = self.find_one(q::AT_BY_SOURCE_RT, refresh_id).await?;
        let Some(at) = at else { return Ok(None) };
        let rt: Option<RefreshToken> = self.find_one(q::RT_BY_AT, at.id).await?;
        Ok(Some((at, rt)))
    }

    pub(crate) async fn revoke_access_token(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Deleted<bool>> {
        let mut tx = self.begin().await?;
        // Refresh-token row first, then the access token: the lock order of every path.
        sqlx::query(q::REVOKE_RT_OF_AT)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let checksums = delete_access(&mut tx, id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted {
            value: !checksums.is_empty(),
            checksums,
        })
    }

    pub(crate) async fn find_refresh_token(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<RefreshToken>> {
        self.find_one(q::RT_BY_CHECKSUM, checksum).await
    }

    pub(crate) async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        self.find_one(q::RT_BY_AT, access_token_id).await
    }

    pub(crate) async fn revoke_refresh_token(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Deleted<bool>> {
        let mut tx = self.begin().await?;
        let Some(access) = lock_live_refresh(&mut tx, id).await? else {
            return Ok(Deleted {
                value: false,
                checksums: Vec::new(),
            });
        };
        sqlx::query(q::REVOKE_RT)
            .bind(id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let checksums = match access {
            Some(at) => delete_access(&mut tx, at).await?,
            None => Vec::new(),
        };
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted {
            value: true,
            checksums,
        })
    }

    pub(crate) async fn revoke_refresh_token_family(
        &self,
        family: &str,
        now: Timestamp,
    ) -> StoreResult<Deleted<u64>> {
        let mut tx = self.begin().await?;
        lock_family(&mut tx, family).await?;
        let mut checksums = Vec::new();
        let value = revoke_family(&mut tx, family, now, &mut checksums).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted { value, checksums })
    }

    pub(crate) async fn revoke_grant_tokens(
        &self,
        grant_id: i64,
        now: Timestamp,
    ) -> StoreResult<Deleted<u64>> {
        let mut tx = self.begin().await?;
        // Lock the grant row first (a no-op write): a redemption in flight commits its
        // tokens before this transaction reads them (see `redeem_grant`).
        sqlx::query(q::LOCK_GRANT)
            .bind(grant_id)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut families: Vec<String> = sqlx::query_scalar(q::GRANT_FAMILIES)
            .bind(grant_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        families.sort();
        let before: i64 = sqlx::query_scalar(q::COUNT_GRANT_ACCESS)
            .bind(grant_id)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        let mut checksums = Vec::new();
        for family in &families {
            lock_family(&mut tx, family).await?;
            revoke_family(&mut tx, family, now, &mut checksums).await?;
        }
        sqlx::query(q::REVOKE_GRANT_REFRESH)
            .bind(grant_id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        let rest: Vec<String> = sqlx::query_scalar(q::DELETE_GRANT_ACCESS)
            .bind(grant_id)
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?;
        checksums.extend(rest);
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted {
            value: before as u64,
            checksums,
        })
    }

    pub(crate) async fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> StoreResult<Deleted<u64>> {
        let mut tx = self.begin().await?;
        let mut checksums = Vec::new();
        // `None` = every application: one pass with the application filter disabled.
        let filters: Vec<Option<i64>> = match application_ids {
            Some(ids) => ids.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        for app in filters {
            sqlx::query(q::REVOKE_USER_RTS)
                .bind(user_id)
                .bind(app)
                .bind(now)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
            let deleted: Vec<String> = sqlx::query_scalar(q::DELETE_USER_ATS)
                .bind(user_id)
                .bind(app)
                .fetch_all(&mut *tx)
                .await
                .map_err(db_err)?;
            checksums.extend(deleted);
            sqlx::query(q::DELETE_USER_IDTS)
                .bind(user_id)
                .bind(app)
                .execute(&mut *tx)
                .await
                .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(Deleted {
            value: checksums.len() as u64,
            checksums,
        })
    }

    // ----- ID tokens -----

    pub(crate) async fn create_id_token(&self, t: NewIdToken) -> StoreResult<IdToken> {
        let mut tx = self.begin().await?;
        let id = insert_id_token(&mut tx, &t).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(t.into_row(id))
    }

    pub(crate) async fn find_id_token(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        self.find_one(q::IDT_BY_JTI, jti).await
    }
}
