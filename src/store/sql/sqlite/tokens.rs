//! Access, refresh and ID tokens.

use rusqlite::{Connection, ToSql};

use super::rows::{
    self, all, execute, first_i64, first_opt_i64, first_string, insert, one, optional,
};
use super::SqliteStore;
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::sql::Deleted;
use crate::store::{IssueTokens, IssuedTokens, StoreError, StoreResult};

impl SqliteStore {
    // ----- tokens -----

    pub(crate) async fn issue_tokens(&self, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
        if tokens.refresh.is_none() && tokens.id_token.is_none() {
            // The hottest write (client credentials): one INSERT, no savepoint.
            return self
                .engine
                .write_one(move |c| write_tokens(c, tokens))
                .await;
        }
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
            .write_one(move |c| {
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
}

fn grant_and_checksum(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Option<i64>, String)> {
    Ok((r.get(0)?, r.get(1)?))
}

fn insert_access(c: &Connection, a: &NewAccessToken) -> StoreResult<i64> {
    let args: [&dyn ToSql; 10] = [
        &a.user_id,
        &a.source_refresh_token_id,
        &a.token_checksum,
        &a.id_token_id,
        &a.application_id,
        &a.grant_id,
        &a.expires,
        &a.scope,
        &a.created,
        &a.resource,
    ];
    insert(c, q::INSERT_AT_SQLITE, &args)
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
    insert(c, q::INSERT_IDT_SQLITE, &args)
}

/// Writes the tokens of one response (inside the caller's transaction).
pub(super) fn write_tokens(c: &Connection, tokens: IssueTokens) -> StoreResult<IssuedTokens> {
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
            let args: [&dyn ToSql; 7] = [
                &r.user_id,
                &r.token_checksum,
                &r.application_id,
                &r.access_token_id,
                &r.token_family,
                &r.created,
                &r.resource,
            ];
            let id = insert(c, q::INSERT_RT_SQLITE, &args)?;
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
