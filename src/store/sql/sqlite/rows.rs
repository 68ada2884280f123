//! Binding parameters and reading rows with rusqlite.
//!
//! The statements are the ones PostgreSQL runs, with `$N` parameters; SQLite treats `$1`
//! as a *named* parameter, so values are bound by those names (a statement may use `$2`
//! before `$1`, or one parameter twice). Every statement is stepped to its end, so an
//! error that SQLite reports late (a constraint on a later row) is never lost.

use rusqlite::types::{FromSql, FromSqlResult, ToSqlOutput, Type, ValueRef};
use rusqlite::{Connection, Row, ToSql};

use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, Grant, IdToken, PkceChallenge,
    RefreshToken, Registration, Timestamp, User,
};
use crate::store::StoreResult;

impl ToSql for Timestamp {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0))
    }
}

impl FromSql for Timestamp {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Timestamp)
    }
}

const NAMES: [&str; 16] = [
    "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15",
    "$16",
];

/// A statement from the cache with `args` bound to `$1`, `$2`, ….
fn prepare<'c>(
    conn: &'c Connection,
    sql: &str,
    args: &[&dyn ToSql],
) -> rusqlite::Result<rusqlite::CachedStatement<'c>> {
    let mut stmt = conn.prepare_cached(sql)?;
    for (name, value) in NAMES.iter().zip(args) {
        if let Some(index) = stmt.parameter_index(name)? {
            stmt.raw_bind_parameter(index, value)?;
        }
    }
    Ok(stmt)
}

/// Runs a statement that returns no rows; the number of rows it changed.
pub(crate) fn execute(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> StoreResult<u64> {
    let mut stmt = prepare(conn, sql, args)?;
    Ok(stmt.raw_execute()? as u64)
}

/// Runs an `INSERT` (without `RETURNING`); the new row's id.
pub(crate) fn insert(conn: &Connection, sql: &str, args: &[&dyn ToSql]) -> StoreResult<i64> {
    execute(conn, sql, args)?;
    Ok(conn.last_insert_rowid())
}

/// Every row of a statement.
pub(crate) fn all<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Vec<T>> {
    let mut stmt = prepare(conn, sql, args)?;
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(map(row)?);
    }
    Ok(out)
}

/// The first row of a statement (stepped to its end), if any.
pub(crate) fn optional<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    let mut stmt = prepare(conn, sql, args)?;
    let mut rows = stmt.raw_query();
    let mut first = None;
    while let Some(row) = rows.next()? {
        if first.is_none() {
            first = Some(map(row)?);
        }
    }
    Ok(first)
}

/// The one row a statement must return (an `INSERT … RETURNING id`, a `COUNT`).
pub(crate) fn one<T>(
    conn: &Connection,
    sql: &str,
    args: &[&dyn ToSql],
    map: impl Fn(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<T> {
    optional(conn, sql, args, map)?.ok_or_else(|| {
        crate::store::StoreError::Backend(format!("no row returned by: {sql}").into())
    })
}

pub(crate) fn first_i64(row: &Row<'_>) -> rusqlite::Result<i64> {
    row.get(0)
}

pub(crate) fn first_opt_i64(row: &Row<'_>) -> rusqlite::Result<Option<i64>> {
    row.get(0)
}

pub(crate) fn first_string(row: &Row<'_>) -> rusqlite::Result<String> {
    row.get(0)
}

/// A text column parsed into one of the model's enums.
fn parsed<T>(row: &Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: TryFrom<String>,
    T::Error: std::error::Error + Send + Sync + 'static,
{
    let s: String = row.get(idx)?;
    T::try_from(s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e)))
}

pub(crate) fn user(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        username: r.get(1)?,
        email: r.get(2)?,
        password_hash: r.get(3)?,
        is_active: r.get(4)?,
        date_joined: r.get(5)?,
        last_login: r.get(6)?,
    })
}

pub(crate) fn application(r: &Row<'_>) -> rusqlite::Result<Application> {
    Ok(Application {
        id: r.get(0)?,
        client_id: r.get(1)?,
        user_id: r.get(2)?,
        redirect_uris: r.get(3)?,
        post_logout_redirect_uris: r.get(4)?,
        client_type: parsed(r, 5)?,
        authorization_grant_type: parsed(r, 6)?,
        client_secret: r.get(7)?,
        hash_client_secret: r.get(8)?,
        name: r.get(9)?,
        skip_authorization: r.get(10)?,
        created: r.get(11)?,
        updated: r.get(12)?,
        algorithm: parsed(r, 13)?,
        allowed_origins: r.get(14)?,
        pkce_required: r.get(15)?,
    })
}

pub(crate) fn grant(r: &Row<'_>) -> rusqlite::Result<Grant> {
    Ok(Grant {
        id: r.get(0)?,
        user_id: r.get(1)?,
        code_checksum: r.get(2)?,
        application_id: r.get(3)?,
        expires: r.get(4)?,
        redirect_uri: r.get(5)?,
        scope: r.get(6)?,
        pkce: PkceChallenge::from_columns(r.get(7)?, &r.get::<_, String>(8)?)
            .map_err(|e| rusqlite::Error::FromSqlConversionFailure(8, Type::Text, Box::new(e)))?,
        nonce: r.get(9)?,
        claims: r.get(10)?,
        auth_time: r.get(11)?,
        created: r.get(12)?,
        used_at: r.get(13)?,
        resource: r.get(14)?,
    })
}

fn access_at(r: &Row<'_>, o: usize) -> rusqlite::Result<AccessToken> {
    Ok(AccessToken {
        id: r.get(o)?,
        user_id: r.get(o + 1)?,
        source_refresh_token_id: r.get(o + 2)?,
        token_checksum: r.get(o + 3)?,
        id_token_id: r.get(o + 4)?,
        application_id: r.get(o + 5)?,
        grant_id: r.get(o + 6)?,
        expires: r.get(o + 7)?,
        scope: r.get(o + 8)?,
        created: r.get(o + 9)?,
        resource: r.get(o + 10)?,
    })
}

pub(crate) fn access_token(r: &Row<'_>) -> rusqlite::Result<AccessToken> {
    access_at(r, 0)
}

pub(crate) fn access_token_details(r: &Row<'_>) -> rusqlite::Result<AccessTokenDetails> {
    Ok(AccessTokenDetails {
        token: access_at(r, 0)?,
        client_id: r.get(11)?,
        username: r.get(12)?,
        user_active: r.get(13)?,
    })
}

pub(crate) fn refresh_token(r: &Row<'_>) -> rusqlite::Result<RefreshToken> {
    Ok(RefreshToken {
        id: r.get(0)?,
        user_id: r.get(1)?,
        token_checksum: r.get(2)?,
        application_id: r.get(3)?,
        access_token_id: r.get(4)?,
        token_family: r.get(5)?,
        created: r.get(6)?,
        revoked: r.get(7)?,
        resource: r.get(8)?,
    })
}

pub(crate) fn id_token(r: &Row<'_>) -> rusqlite::Result<IdToken> {
    Ok(IdToken {
        id: r.get(0)?,
        user_id: r.get(1)?,
        jti: r.get(2)?,
        application_id: r.get(3)?,
        expires: r.get(4)?,
        scope: r.get(5)?,
        created: r.get(6)?,
    })
}

pub(crate) fn device_grant(r: &Row<'_>) -> rusqlite::Result<DeviceGrant> {
    Ok(DeviceGrant {
        id: r.get(0)?,
        user_id: r.get(1)?,
        device_code_checksum: r.get(2)?,
        user_code_checksum: r.get(3)?,
        scope: r.get(4)?,
        interval: r.get(5)?,
        expires: r.get(6)?,
        status: parsed(r, 7)?,
        client_id: r.get(8)?,
        last_checked: r.get(9)?,
        created: r.get(10)?,
    })
}

pub(crate) fn registration(r: &Row<'_>) -> rusqlite::Result<Registration> {
    Ok(Registration {
        id: r.get(0)?,
        application_id: r.get(1)?,
        token_checksum: r.get(2)?,
        scope: r.get(3)?,
        expires: r.get(4)?,
        metadata: r.get(5)?,
        created: r.get(6)?,
        used: r.get(7)?,
    })
}
