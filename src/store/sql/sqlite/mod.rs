//! The SQLite backend of [`SqlStore`](super::SqlStore): rusqlite on the engine's own
//! threads (see [`engine`]), with the statements of [`super::statements`].
//!
//! ## Why not sqlx's SQLite driver
//! sqlx runs each SQLite connection on a worker thread and hands every statement over to
//! it and back, ~50 µs a statement on the 2-core machine of BENCHMARKS.md; with its
//! single writer, `issue_tokens` topped out near 4,500 commits a second and every
//! transactional write paid that hand-off per statement. Here a whole batch of writes is
//! one hand-off and one commit, and each statement is a cached prepared statement run in
//! the writer's own thread (a few µs). BENCHMARKS.md ("Storage engine") has the figures
//! of both. sqlx still embeds and checksums the migrations, so databases migrated by
//! earlier versions keep their `_sqlx_migrations` history.
//!
//! ## Tuning (documented in the README's storage notes)
//! WAL journal with `synchronous = NORMAL` (a commit is durable against a crash of the
//! process, not of the machine; the last commits before a power loss may be lost, never
//! corrupted), a 5 s busy timeout for other processes' locks (a `cleartokens` cron job),
//! a 64 MiB page cache on the writer and 16 MiB on each reader, SQLite's default
//! automatic WAL checkpoint (1,000 pages), and the token indexes of the migrations.

pub(crate) mod engine;
pub(crate) mod error;
mod migrate;
mod rows;

use std::time::Duration;

use rusqlite::{Connection, ToSql};

use self::engine::{Engine, Target};
use self::rows::{all, execute, first_i64, first_opt_i64, first_string, one, optional};
use super::statements as q;
use super::Deleted;
use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewIdToken, NewUser, RefreshToken,
    Timestamp, User,
};
use crate::store::{CleanupStep, IssueTokens, IssuedTokens, StoreError, StoreResult};

/// The SQLite half of `SqlStore`.
#[derive(Debug)]
pub(crate) struct SqliteStore {
    engine: Engine,
}

/// Parses `sqlite://path`, `sqlite:path`, `sqlite::memory:` (query parameters are
/// ignored but `mode=memory`).
fn target(url: &str) -> StoreResult<Target> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .ok_or_else(|| StoreError::Config(format!("{url}: not an sqlite: URL")))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let memory = path == ":memory:" || path.is_empty() || query.contains("mode=memory");
    if path.is_empty() && !memory {
        return Err(StoreError::Config(format!("{url}: no file name")));
    }
    Ok(Target {
        path: if memory {
            ":memory:".into()
        } else {
            path.into()
        },
        memory,
        busy_timeout: Duration::from_secs(5),
        cache_kib: 65_536,
    })
}

impl SqliteStore {
    pub(crate) async fn connect(url: &str, readers: usize) -> StoreResult<Self> {
        let target = target(url)?;
        // Opening runs file I/O: off the runtime's threads.
        let engine = tokio::task::spawn_blocking(move || Engine::start(target, readers))
            .await
            .map_err(|e| StoreError::Config(format!("{url}: {e}")))??;
        Ok(SqliteStore { engine })
    }

    pub(crate) async fn migrate(&self) -> StoreResult<usize> {
        self.engine.write(migrate::run).await
    }

    pub(crate) async fn applied_migrations(&self) -> StoreResult<usize> {
        self.engine.read_latest(migrate::applied).await
    }

    pub(crate) async fn close(&self) {
        self.engine.close().await;
    }

    // ----- users -----

    pub(crate) async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        self.engine
            .write(move |c| {
                let args: [&dyn ToSql; 5] = [
                    &u.username,
                    &u.email,
                    &u.password_hash,
                    &u.is_active,
                    &u.date_joined,
                ];
                let id = one(c, q::INSERT_USER, &args, first_i64)?;
                Ok(u.into_row(id))
            })
            .await
    }

    pub(crate) async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        self.engine
            .read(move |c| optional(c, q::USER_BY_ID, &[&id], rows::user))
            .await
    }

    pub(crate) async fn find_user_by_username(&self, name: &str) -> StoreResult<Option<User>> {
        let name = name.to_owned();
        self.engine
            .read(move |c| optional(c, q::USER_BY_NAME, &[&name], rows::user))
            .await
    }

    pub(crate) async fn set_last_login(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        self.engine
            .write(move |c| execute(c, q::SET_LAST_LOGIN, &[&id, &at]).map(drop))
            .await
    }

    pub(crate) async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        self.engine
            .write(move |c| Ok(execute(c, q::SET_USER_ACTIVE, &[&id, &active])? == 1))
            .await
    }

    pub(crate) async fn count_users(&self) -> StoreResult<u64> {
        self.engine
            .read(|c| Ok(one(c, q::COUNT_USERS, &[], first_i64)? as u64))
            .await
    }

    // ----- applications -----

    pub(crate) async fn create_application(&self, a: NewApplication) -> StoreResult<Application> {
        self.engine
            .write(move |c| {
                let args: [&dyn ToSql; 14] = [
                    &a.client_id,
                    &a.user_id,
                    &a.redirect_uris,
                    &a.post_logout_redirect_uris,
                    &a.client_type.as_str(),
                    &a.authorization_grant_type.as_str(),
                    &a.client_secret,
                    &a.hash_client_secret,
                    &a.name,
                    &a.skip_authorization,
                    &a.created,
                    &a.algorithm.as_str(),
                    &a.allowed_origins,
                    &a.pkce_required,
                ];
                let id = one(c, q::INSERT_APP, &args, first_i64)?;
                Ok(a.into_row(id))
            })
            .await
    }

    pub(crate) async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        self.engine
            .read(move |c| optional(c, q::APP_BY_ID, &[&id], rows::application))
            .await
    }

    pub(crate) async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        let client_id = client_id.to_owned();
        self.engine
            .read(move |c| optional(c, q::APP_BY_CLIENT_ID, &[&client_id], rows::application))
            .await
    }

    pub(crate) async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        self.engine
            .read(|c| all(c, q::LIST_APPS, &[], rows::application))
            .await
    }

    pub(crate) async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        self.engine
            .write(move |c| Ok(execute(c, q::DELETE_APP, &[&id])? > 0))
            .await
    }

    // ----- authorization codes -----

    pub(crate) async fn create_grant(&self, g: NewGrant) -> StoreResult<Grant> {
        self.engine
            .write(move |c| {
                let args: [&dyn ToSql; 12] = [
                    &g.user_id,
                    &g.code_checksum,
                    &g.application_id,
                    &g.expires,
                    &g.redirect_uri,
                    &g.scope,
                    &g.code_challenge,
                    &g.code_challenge_method,
                    &g.nonce,
                    &g.claims,
                    &g.auth_time,
                    &g.created,
                ];
                let id = one(c, q::INSERT_GRANT, &args, first_i64)?;
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
            .write(move |c| Ok(execute(c, q::MARK_GRANT_USED, &[&id, &now])? == 1))
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

    // ----- tokens -----

    pub(crate) async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        self.engine.write(move |c| write_tokens(c, tokens)).await
    }

    pub(crate) async fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        mut tokens: IssueTokens,
    ) -> StoreResult<Deleted<IssuedTokens>> {
        self.engine
            .write(move |c| {
                let Some(old_access) =
                    optional(c, q::LOCK_LIVE_RT, &[&old_refresh_id], first_opt_i64)?
                else {
                    return Err(StoreError::Conflict(format!(
                        "refresh token {old_refresh_id} is not live"
                    )));
                };
                execute(c, q::REVOKE_RT, &[&old_refresh_id, &now])?;
                let mut checksums = Vec::new();
                let mut old_grant = None;
                if let Some(at) = old_access {
                    if let Some((grant, sum)) =
                        optional(c, q::DELETE_AT_FOR_GRANT, &[&at], grant_and_checksum)?
                    {
                        old_grant = grant;
                        checksums.push(sum);
                    }
                }
                tokens.access.source_refresh_token_id = Some(old_refresh_id);
                tokens.access.grant_id = tokens.access.grant_id.or(old_grant);
                let value = write_tokens(c, tokens)?;
                Ok(Deleted { value, checksums })
            })
            .await
    }

    pub(crate) async fn replace_access_token(
        &self,
        refresh_id: i64,
        mut access: NewAccessToken,
    ) -> StoreResult<Deleted<AccessToken>> {
        self.engine
            .write(move |c| {
                let Some(old) = optional(c, q::LOCK_LIVE_RT, &[&refresh_id], first_opt_i64)? else {
                    return Err(StoreError::Conflict(format!(
                        "refresh token {refresh_id} is not live"
                    )));
                };
                let mut checksums = Vec::new();
                if let Some(at) = old {
                    if let Some((grant, sum)) =
                        optional(c, q::DELETE_AT_FOR_GRANT, &[&at], grant_and_checksum)?
                    {
                        access.grant_id = access.grant_id.or(grant);
                        checksums.push(sum);
                    }
                }
                let id = insert_access(c, &access)?;
                execute(c, q::BIND_RT, &[&refresh_id, &id])?;
                Ok(Deleted {
                    value: access.into_row(id),
                    checksums,
                })
            })
            .await
    }

    pub(crate) async fn find_access_token(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<AccessTokenDetails>> {
        let checksum = checksum.to_owned();
        self.engine
            .read(move |c| {
                optional(
                    c,
                    q::AT_DETAILS_BY_CHECKSUM,
                    &[&checksum],
                    rows::access_token_details,
                )
            })
            .await
    }

    pub(crate) async fn find_access_token_by_id(
        &self,
        id: i64,
    ) -> StoreResult<Option<AccessToken>> {
        self.engine
            .read(move |c| optional(c, q::AT_BY_ID, &[&id], rows::access_token))
            .await
    }

    pub(crate) async fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> StoreResult<Vec<AccessToken>> {
        self.engine
            .read(move |c| {
                all(
                    c,
                    q::LIVE_ATS,
                    &[&user_id, &application_id, &now],
                    rows::access_token,
                )
            })
            .await
    }

    pub(crate) async fn find_successor(
        &self,
        refresh_id: i64,
    ) -> StoreResult<Option<(AccessToken, Option<RefreshToken>)>> {
        self.engine
            .read_latest(move |c| {
                let Some(at) = optional(c, q::AT_BY_SOURCE_RT, &[&refresh_id], rows::access_token)?
                else {
                    return Ok(None);
                };
                let rt = optional(c, q::RT_BY_AT, &[&at.id], rows::refresh_token)?;
                Ok(Some((at, rt)))
            })
            .await
    }

    pub(crate) async fn revoke_access_token(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Deleted<bool>> {
        self.engine
            .write(move |c| {
                execute(c, q::REVOKE_RT_OF_AT, &[&id, &now])?;
                let checksums = all(c, q::DELETE_AT, &[&id], first_string)?;
                Ok(Deleted {
                    value: !checksums.is_empty(),
                    checksums,
                })
            })
            .await
    }

    pub(crate) async fn find_refresh_token(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<RefreshToken>> {
        let checksum = checksum.to_owned();
        // Refresh decisions must see the latest rotation.
        self.engine
            .read_latest(move |c| optional(c, q::RT_BY_CHECKSUM, &[&checksum], rows::refresh_token))
            .await
    }

    pub(crate) async fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> StoreResult<Option<RefreshToken>> {
        self.engine
            .read(move |c| optional(c, q::RT_BY_AT, &[&access_token_id], rows::refresh_token))
            .await
    }

    pub(crate) async fn revoke_refresh_token(
        &self,
        id: i64,
        now: Timestamp,
    ) -> StoreResult<Deleted<bool>> {
        self.engine
            .write(move |c| {
                let Some(access) = optional(c, q::LOCK_LIVE_RT, &[&id], first_opt_i64)? else {
                    return Ok(Deleted {
                        value: false,
                        checksums: Vec::new(),
                    });
                };
                execute(c, q::REVOKE_RT, &[&id, &now])?;
                let checksums = match access {
                    Some(at) => all(c, q::DELETE_AT, &[&at], first_string)?,
                    None => Vec::new(),
                };
                Ok(Deleted {
                    value: true,
                    checksums,
                })
            })
            .await
    }

    pub(crate) async fn revoke_refresh_token_family(
        &self,
        family: &str,
        now: Timestamp,
    ) -> StoreResult<Deleted<u64>> {
        let family = family.to_owned();
        self.engine
            .write(move |c| {
                let mut checksums = Vec::new();
                let value = revoke_family(c, &family, now, &mut checksums)?;
                Ok(Deleted { value, checksums })
            })
            .await
    }

    pub(crate) async fn revoke_grant_tokens(
        &self,
        grant_id: i64,
        now: Timestamp,
    ) -> StoreResult<Deleted<u64>> {
        self.engine
            .write(move |c| {
                let mut families = all(c, q::GRANT_FAMILIES, &[&grant_id], first_string)?;
                families.sort();
                let before = one(c, q::COUNT_GRANT_ACCESS, &[&grant_id], first_i64)? as u64;
                let mut checksums = Vec::new();
                for family in &families {
                    revoke_family(c, family, now, &mut checksums)?;
                }
                execute(c, q::REVOKE_GRANT_REFRESH, &[&grant_id, &now])?;
                checksums.extend(all(c, q::DELETE_GRANT_ACCESS, &[&grant_id], first_string)?);
                Ok(Deleted {
                    value: before,
                    checksums,
                })
            })
            .await
    }

    pub(crate) async fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> StoreResult<Deleted<u64>> {
        // `None` = every application: one pass with the application filter disabled.
        let filters: Vec<Option<i64>> = match application_ids {
            Some(ids) => ids.iter().copied().map(Some).collect(),
            None => vec![None],
        };
        self.engine
            .write(move |c| {
                let mut checksums = Vec::new();
                for app in filters {
                    execute(c, q::REVOKE_USER_RTS, &[&user_id, &app, &now])?;
                    checksums.extend(all(c, q::DELETE_USER_ATS, &[&user_id, &app], first_string)?);
                    execute(c, q::DELETE_USER_IDTS, &[&user_id, &app])?;
                }
                Ok(Deleted {
                    value: checksums.len() as u64,
                    checksums,
                })
            })
            .await
    }

    // ----- ID tokens -----

    pub(crate) async fn create_id_token(&self, t: NewIdToken) -> StoreResult<IdToken> {
        self.engine
            .write(move |c| {
                let id = insert_id_token(c, &t)?;
                Ok(t.into_row(id))
            })
            .await
    }

    pub(crate) async fn find_id_token(&self, jti: &str) -> StoreResult<Option<IdToken>> {
        let jti = jti.to_owned();
        self.engine
            .read(move |c| optional(c, q::IDT_BY_JTI, &[&jti], rows::id_token))
            .await
    }

    // ----- device grants -----

    pub(crate) async fn create_device_grant(&self, g: NewDeviceGrant) -> StoreResult<DeviceGrant> {
        self.engine
            .write(move |c| {
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
                let id = one(c, q::INSERT_DEVICE, &args, first_i64)?;
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
            .write(move |c| {
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

    // ----- cleanup -----

    pub(crate) async fn count_expired(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
    ) -> StoreResult<u64> {
        let sql = q::cleanup_count_sql(step);
        self.engine
            .read(move |c| {
                let args: &[&dyn ToSql] = if step == CleanupStep::OrphanedRefreshTokens {
                    &[]
                } else {
                    &[&cutoff]
                };
                Ok(one(c, sql, args, first_i64)? as u64)
            })
            .await
    }

    pub(crate) async fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> StoreResult<u64> {
        let (sql, _) = q::cleanup_delete_sql(step);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.engine
            .write(move |c| {
                if step == CleanupStep::OrphanedRefreshTokens {
                    execute(c, sql, &[&limit])
                } else {
                    execute(c, sql, &[&cutoff, &limit])
                }
            })
            .await
    }
}

fn grant_and_checksum(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Option<i64>, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

fn insert_access(c: &Connection, a: &NewAccessToken) -> StoreResult<i64> {
    let args: [&dyn ToSql; 9] = [
        &a.user_id,
        &a.source_refresh_token_id,
        &a.token_checksum,
        &a.id_token_id,
        &a.application_id,
        &a.grant_id,
        &a.expires,
        &a.scope,
        &a.created,
    ];
    one(c, q::INSERT_AT, &args, first_i64)
}

fn insert_id_token(c: &Connection, t: &NewIdToken) -> StoreResult<i64> {
    let args: [&dyn ToSql; 6] = [
        &t.user_id,
        &t.jti,
        &t.application_id,
        &t.expires,
        &t.scope,
        &t.created,
    ];
    one(c, q::INSERT_IDT, &args, first_i64)
}

/// Writes the tokens of one response (inside the caller's transaction).
fn write_tokens(c: &Connection, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
    let IssueTokens {
        mut access,
        refresh,
        id_token,
    } = tokens;
    let id_token = match id_token {
        Some(t) => {
            let id = insert_id_token(c, &t)?;
            access.id_token_id = Some(id);
            Some(t.into_row(id))
        }
        None => None,
    };
    let at_id = insert_access(c, &access)?;
    let refresh = match refresh {
        Some(mut r) => {
            r.access_token_id = Some(at_id);
            let args: [&dyn ToSql; 6] = [
                &r.user_id,
                &r.token_checksum,
                &r.application_id,
                &r.access_token_id,
                &r.token_family,
                &r.created,
            ];
            let id = one(c, q::INSERT_RT, &args, first_i64)?;
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

/// Revokes the live refresh tokens of a family and deletes their access tokens; the
/// number of refresh tokens revoked.
fn revoke_family(
    c: &Connection,
    family: &str,
    now: Timestamp,
    checksums: &mut Vec<String>,
) -> StoreResult<u64> {
    let bound = all(c, q::LOCK_FAMILY_RTS, &[&family], first_opt_i64)?;
    let revoked = execute(c, q::REVOKE_FAMILY, &[&family, &now])?;
    for at in bound.into_iter().flatten() {
        checksums.extend(all(c, q::DELETE_AT, &[&at], first_string)?);
    }
    Ok(revoked)
}
