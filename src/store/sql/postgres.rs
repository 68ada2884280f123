//! The PostgreSQL backend of [`SqlStore`](super::SqlStore): one sqlx pool, the statements
//! of [`super::statements`].
//!
//! * Refresh-token rotation relies on a conditional `UPDATE` (`… WHERE revoked IS NULL`),
//!   which PostgreSQL re-checks after a concurrent writer commits, so two rotations of
//!   one token never both succeed.
//! * Lock order everywhere: the family's advisory lock, refresh-token rows, access-token
//!   rows (so a family revocation and a rotation never deadlock, and a revocation sees a
//!   rotation that raced it).
//! * Every write that answers a client runs in an explicit transaction whose `COMMIT`
//!   result is checked, or is a single statement read to its end (`fetch_all`), so an
//!   error that PostgreSQL reports at the end of a statement is never lost.
//! * Writes are not coalesced here: PostgreSQL already commits concurrent transactions in
//!   groups (`commit_delay` / WAL group flush) across the pool's connections.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{PgConnection, Row};

use super::statements as q;
use super::{Deleted, SqlOptions};
use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewIdToken, NewUser, RefreshToken,
    Timestamp, User,
};
use crate::store::{CleanupStep, IssueTokens, IssuedTokens, StoreError, StoreResult};

/// The PostgreSQL half of `SqlStore`.
#[derive(Clone, Debug)]
pub(crate) struct PgStore {
    pool: PgPool,
}

/// A sqlx error as a [`StoreError`]: lost races are conflicts, an unreachable, full,
/// read-only or overloaded server is [`StoreError::Unavailable`].
pub(crate) fn db_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => {
            return StoreError::Unavailable(format!("PostgreSQL: {e}"));
        }
        _ => {}
    }
    if let Some(db) = e.as_database_error() {
        let code = db.code();
        let code = code.as_deref().unwrap_or("");
        // Deadlock / serialization failure: a concurrent writer won.
        if matches!(code, "40P01" | "40001") || db.is_unique_violation() {
            return StoreError::Conflict(db.message().to_owned());
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound(db.message().to_owned());
        }
        // Connection exceptions, insufficient resources (disk full, out of memory, too
        // many connections), operator intervention (shutdown, cannot connect now), a
        // read-only transaction (a standby), a lock or statement timeout, system errors.
        if code.starts_with("08")
            || code.starts_with("53")
            || code.starts_with("57")
            || code.starts_with("58")
            || matches!(code, "25006" | "55P03")
        {
            return StoreError::Unavailable(format!("PostgreSQL: {}", db.message()));
        }
    }
    StoreError::Backend(Box::new(e))
}

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
async fn write_tokens(c: &mut PgConnection, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
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

/// The one id an `INSERT … RETURNING id` outside a transaction returns, read to the end of
/// the statement (a late error is never lost).
fn returned_id(rows: Result<Vec<i64>, sqlx::Error>) -> StoreResult<i64> {
    rows.map_err(db_err)?
        .into_iter()
        .next()
        .ok_or_else(|| StoreError::Backend("INSERT returned no id".into()))
}

impl PgStore {
    pub(crate) async fn connect(url: &str, options: &SqlOptions) -> StoreResult<Self> {
        use std::str::FromStr;
        let mut connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        if let Some(path) = &options.search_path {
            connect = connect.options([("search_path", path.as_str())]);
        }
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .test_before_acquire(false)
            .acquire_timeout(options.acquire_timeout)
            .connect_with(connect)
            .await
            .map_err(|e| StoreError::Config(format!("cannot connect to PostgreSQL: {e}")))?;
        Ok(PgStore { pool })
    }

    pub(crate) async fn migrate(&self) -> StoreResult<usize> {
        let before = self.applied_migrations().await?;
        sqlx::migrate!("migrations/postgres")
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
        Ok(self.applied_migrations().await? - before)
    }

    pub(crate) async fn applied_migrations(&self) -> StoreResult<usize> {
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        if !exists {
            return Ok(0);
        }
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(n as usize)
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }

    async fn begin(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await.map_err(db_err)
    }

    // ----- users -----

    pub(crate) async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        let id = returned_id(
            sqlx::query_scalar(q::INSERT_USER)
                .bind(&u.username)
                .bind(&u.email)
                .bind(&u.password_hash)
                .bind(u.is_active)
                .bind(u.date_joined)
                .fetch_all(&self.pool)
                .await,
        )?;
        Ok(u.into_row(id))
    }

    pub(crate) async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        sqlx::query_as(q::USER_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn find_user_by_username(&self, name: &str) -> StoreResult<Option<User>> {
        sqlx::query_as(q::USER_BY_NAME)
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    async fn execute(
        &self,
        query: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> StoreResult<u64> {
        Ok(query
            .execute(&self.pool)
            .await
            .map_err(db_err)?
            .rows_affected())
    }

    pub(crate) async fn set_last_login(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        self.execute(sqlx::query(q::SET_LAST_LOGIN).bind(id).bind(at))
            .await
            .map(drop)
    }

    pub(crate) async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        Ok(self
            .execute(sqlx::query(q::SET_USER_ACTIVE).bind(id).bind(active))
            .await?
            == 1)
    }

    pub(crate) async fn count_users(&self) -> StoreResult<u64> {
        let n: i64 = sqlx::query_scalar(q::COUNT_USERS)
            .fetch_one(&self.pool)
            .await
            .map_err(db_err)?;
        Ok(n as u64)
    }

    // ----- applications -----

    pub(crate) async fn create_application(&self, a: NewApplication) -> StoreResult<Application> {
        let id = returned_id(
            sqlx::query_scalar(q::INSERT_APP)
                .bind(&a.client_id)
                .bind(a.user_id)
                .bind(&a.redirect_uris)
                .bind(&a.post_logout_redirect_uris)
                .bind(a.client_type.as_str())
                .bind(a.authorization_grant_type.as_str())
                .bind(&a.client_secret)
                .bind(a.hash_client_secret)
                .bind(&a.name)
                .bind(a.skip_authorization)
                .bind(a.created)
                .bind(a.algorithm.as_str())
                .bind(&a.allowed_origins)
                .bind(a.pkce_required)
                .fetch_all(&self.pool)
                .await,
        )?;
        Ok(a.into_row(id))
    }

    pub(crate) async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        sqlx::query_as(q::APP_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        sqlx::query_as(q::APP_BY_CLIENT_ID)
            .bind(client_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        sqlx::query_as(q::LIST_APPS)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        Ok(self.execute(sqlx::query(q::DELETE_APP).bind(id)).await? > 0)
    }

    // ----- authorization codes -----

    pub(crate) async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
        let id = returned_id(
            sqlx::query_scalar(q::INSERT_GRANT)
                .bind(g.user_id)
                .bind(&g.code_checksum)
                .bind(g.application_id)
                .bind(g.expires)
                .bind(&g.redirect_uri)
                .bind(&g.scope)
                .bind(&g.code_challenge)
                .bind(&g.code_challenge_method)
                .bind(&g.nonce)
                .bind(&g.claims)
                .bind(g.auth_time)
                .bind(g.created)
                .fetch_all(&self.pool)
                .await,
        )?;
        Ok(g.into_row(id))
    }

    pub(crate) async fn find_grant(&self, checksum: &str) -> StoreResult<Option<Grant>> {
        sqlx::query_as(q::GRANT_BY_CHECKSUM)
            .bind(checksum)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
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
        let mut tx = self.begin().await?;
        // The UPDATE locks the grant row until COMMIT: a concurrent redemption (or
        // revoke_grant_tokens) waits, then sees used_at set.
        let n = sqlx::query(q::MARK_GRANT_USED)
            .bind(grant_id)
            .bind(now)
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
        sqlx::query_as(q::AT_DETAILS_BY_CHECKSUM)
            .bind(checksum)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn find_access_token_by_id(
        &self,
        id: i64,
    ) -> StoreResult<Option<AccessToken>> {
        sqlx::query_as(q::AT_BY_ID)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
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
        let at: Option<AccessToken> = sqlx::query_as(q::AT_BY_SOURCE_RT)
            .bind(refresh_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
        let Some(at) = at else { return Ok(None) };
        let rt: Option<RefreshToken> = sqlx::query_as(q::RT_BY_AT)
            .bind(at.id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)?;
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
        sqlx::query_as(q::RT_BY_CHECKSUM)
            .bind(checksum)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        sqlx::query_as(q::RT_BY_AT)
            .bind(access_token_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
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
        sqlx::query_as(q::IDT_BY_JTI)
            .bind(jti)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
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
        sqlx::query_as(q::DEVICE_BY_CODE)
            .bind(checksum)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn find_device_grant_by_user_code(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<DeviceGrant>> {
        sqlx::query_as(q::DEVICE_BY_USER_CODE)
            .bind(checksum)
            .fetch_optional(&self.pool)
            .await
            .map_err(db_err)
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
        let prev: Option<Timestamp> = sqlx::query_scalar(q::DEVICE_LAST_CHECKED)
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
