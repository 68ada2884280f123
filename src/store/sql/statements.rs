//! The SQL text both databases run: positional `$N` parameters, `RETURNING`, `LIMIT` in
//! sub-selects. Grouped by table; the backends add only what is theirs (PostgreSQL's
//! row and advisory locks, its cleanup form).

// A build with one backend leaves the other's few statements unused.
#![cfg_attr(not(all(feature = "sqlite", feature = "postgres")), allow(dead_code))]

macro_rules! app_cols {
    () => {
        "id, client_id, user_id, redirect_uris, post_logout_redirect_uris, client_type, \
         authorization_grant_type, client_secret, hash_client_secret, name, skip_authorization, \
         created, updated, algorithm, allowed_origins, pkce_required"
    };
}
macro_rules! user_cols {
    () => {
        "id, username, email, password_hash, is_active, date_joined, last_login"
    };
}
macro_rules! grant_cols {
    () => {
        "id, user_id, code_checksum, application_id, expires, redirect_uri, scope, code_challenge, \
         code_challenge_method, nonce, claims, auth_time, created, used_at, resource"
    };
}
macro_rules! at_cols {
    () => {
        "id, user_id, source_refresh_token_id, token_checksum, id_token_id, application_id, \
         grant_id, expires, scope, created, resource"
    };
}
macro_rules! rt_cols {
    () => {
        "id, user_id, token_checksum, application_id, access_token_id, token_family, created, revoked, \
         resource"
    };
}
macro_rules! idt_cols {
    () => {
        "id, user_id, jti, application_id, expires, scope, created"
    };
}
macro_rules! dg_cols {
    () => {
        "id, user_id, device_code_checksum, user_code_checksum, scope, poll_interval, expires, \
         status, client_id, last_checked, created"
    };
}

// ----- users -----

macro_rules! insert_user {
    () => {
        "INSERT INTO oauth2_user (username, email, password_hash, is_active, date_joined) \
     VALUES ($1, $2, $3, $4, $5)"
    };
}
pub(crate) const INSERT_USER: &str = concat!(insert_user!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_USER_SQLITE: &str = insert_user!();
pub(crate) const USER_BY_ID: &str =
    concat!("SELECT ", user_cols!(), " FROM oauth2_user WHERE id = $1");
pub(crate) const USER_BY_NAME: &str = concat!(
    "SELECT ",
    user_cols!(),
    " FROM oauth2_user WHERE username = $1"
);
pub(crate) const SET_LAST_LOGIN: &str = "UPDATE oauth2_user SET last_login = $2 WHERE id = $1";
pub(crate) const SET_USER_ACTIVE: &str = "UPDATE oauth2_user SET is_active = $2 WHERE id = $1";
pub(crate) const COUNT_USERS: &str = "SELECT COUNT(*) FROM oauth2_user";

// ----- applications -----

macro_rules! insert_app {
    () => {
        "INSERT INTO oauth2_application (client_id, user_id, \
     redirect_uris, post_logout_redirect_uris, client_type, authorization_grant_type, \
     client_secret, hash_client_secret, name, skip_authorization, created, updated, algorithm, \
     allowed_origins, pkce_required) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14)"
    };
}
pub(crate) const INSERT_APP: &str = concat!(insert_app!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_APP_SQLITE: &str = insert_app!();
pub(crate) const APP_BY_ID: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM oauth2_application WHERE id = $1"
);
pub(crate) const APP_BY_CLIENT_ID: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM oauth2_application WHERE client_id = $1"
);
pub(crate) const LIST_APPS: &str = concat!(
    "SELECT ",
    app_cols!(),
    " FROM oauth2_application ORDER BY id"
);
pub(crate) const DELETE_APP: &str = "DELETE FROM oauth2_application WHERE id = $1";

/// What an RFC 7592 update or a changed client metadata document may change.
pub(crate) const UPDATE_REGISTERED_APP: &str = "UPDATE oauth2_application SET \
     redirect_uris = $2, post_logout_redirect_uris = $3, authorization_grant_type = $4, \
     name = $5, updated = $6 WHERE id = $1";

// ----- dynamic registrations -----

macro_rules! insert_registration {
    () => {
        "INSERT INTO oauth2_registration (application_id, token_checksum, scope, expires, \
     metadata, created) VALUES ($1, $2, $3, $4, $5, $6)"
    };
}
pub(crate) const INSERT_REGISTRATION: &str = concat!(insert_registration!(), " RETURNING id");
/// SQLite: without `RETURNING`; the id is `last_insert_rowid()`.
pub(crate) const INSERT_REGISTRATION_SQLITE: &str = insert_registration!();
pub(crate) const REGISTRATION_BY_CHECKSUM: &str = "SELECT id, application_id, token_checksum, \
     scope, expires, metadata, created, used FROM oauth2_registration WHERE token_checksum = $1";
/// Compare-and-swap on the presented token (`$6`): an update made with a token that was
/// rotated out meanwhile changes nothing.
pub(crate) const UPDATE_REGISTRATION: &str = "UPDATE oauth2_registration SET \
     token_checksum = $2, scope = $3, expires = $4, metadata = $5 \
     WHERE id = $1 AND token_checksum = $6";
/// Cleanup: registrations whose client holds a token or code are marked used.
pub(crate) const MARK_USED_REGISTRATIONS: &str = "UPDATE oauth2_registration SET used = $1 \
     WHERE used IS NULL AND (\
     EXISTS (SELECT 1 FROM oauth2_access_token a WHERE a.application_id = oauth2_registration.application_id) \
     OR EXISTS (SELECT 1 FROM oauth2_refresh_token t WHERE t.application_id = oauth2_registration.application_id) \
     OR EXISTS (SELECT 1 FROM oauth2_grant g WHERE g.application_id = oauth2_registration.application_id))";

// ----- authorization codes -----

macro_rules! insert_grant {
    () => {
        "INSERT INTO oauth2_grant (user_id, code_checksum, \
     application_id, expires, redirect_uri, scope, code_challenge, code_challenge_method, nonce, \
     claims, auth_time, created, resource) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
    "
    };
}
pub(crate) const INSERT_GRANT: &str = concat!(insert_grant!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_GRANT_SQLITE: &str = insert_grant!();
pub(crate) const GRANT_BY_CHECKSUM: &str = concat!(
    "SELECT ",
    grant_cols!(),
    " FROM oauth2_grant WHERE code_checksum = $1"
);
pub(crate) const MARK_GRANT_USED: &str =
    "UPDATE oauth2_grant SET used_at = $2 WHERE id = $1 AND used_at IS NULL";
/// A no-op write that locks the grant row (PostgreSQL): a redemption in flight commits
/// its tokens before the replay revocation reads them.
pub(crate) const LOCK_GRANT: &str = "UPDATE oauth2_grant SET used_at = used_at WHERE id = $1";
pub(crate) const GRANT_FAMILIES: &str =
    "SELECT DISTINCT r.token_family FROM oauth2_refresh_token r \
     JOIN oauth2_access_token a ON a.id = r.access_token_id \
     WHERE a.grant_id = $1 AND r.token_family IS NOT NULL";
pub(crate) const COUNT_GRANT_ACCESS: &str =
    "SELECT COUNT(*) FROM oauth2_access_token WHERE grant_id = $1";
pub(crate) const REVOKE_GRANT_REFRESH: &str =
    "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL \
     WHERE revoked IS NULL AND access_token_id IN \
     (SELECT id FROM oauth2_access_token WHERE grant_id = $1)";
pub(crate) const DELETE_GRANT_ACCESS: &str =
    "DELETE FROM oauth2_access_token WHERE grant_id = $1 RETURNING token_checksum";

// ----- access, refresh and ID tokens -----

macro_rules! insert_at {
    () => {
        "INSERT INTO oauth2_access_token (user_id, \
     source_refresh_token_id, token_checksum, id_token_id, application_id, grant_id, expires, \
     scope, created, resource) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    };
}
pub(crate) const INSERT_AT: &str = concat!(insert_at!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_AT_SQLITE: &str = insert_at!();
macro_rules! insert_rt {
    () => {
        "INSERT INTO oauth2_refresh_token (user_id, token_checksum, \
     application_id, access_token_id, token_family, created, resource) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)"
    };
}
pub(crate) const INSERT_RT: &str = concat!(insert_rt!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_RT_SQLITE: &str = insert_rt!();
macro_rules! insert_idt {
    () => {
        "INSERT INTO oauth2_id_token (user_id, jti, application_id, \
     expires, scope, created) VALUES ($1, $2, $3, $4, $5, $6)"
    };
}
pub(crate) const INSERT_IDT: &str = concat!(insert_idt!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_IDT_SQLITE: &str = insert_idt!();

/// Locks a live refresh token's row and reads its current access token (a no-op UPDATE
/// locks on both databases): no row when the token is not live.
pub(crate) const LOCK_LIVE_RT: &str =
    "UPDATE oauth2_refresh_token SET access_token_id = access_token_id \
     WHERE id = $1 AND revoked IS NULL RETURNING access_token_id";
pub(crate) const RT_FAMILY: &str = "SELECT token_family FROM oauth2_refresh_token WHERE id = $1";
pub(crate) const REVOKE_RT: &str =
    "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL WHERE id = $1";
pub(crate) const REVOKE_RT_OF_AT: &str =
    "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL \
     WHERE access_token_id = $1 AND revoked IS NULL";
pub(crate) const BIND_RT: &str = "UPDATE oauth2_refresh_token SET access_token_id = $2 \
     WHERE id = $1 AND revoked IS NULL";
/// Locks the live refresh tokens of a family and reads their access tokens.
pub(crate) const LOCK_FAMILY_RTS: &str =
    "UPDATE oauth2_refresh_token SET access_token_id = access_token_id \
     WHERE token_family = $1 AND revoked IS NULL RETURNING access_token_id";
pub(crate) const REVOKE_FAMILY: &str =
    "UPDATE oauth2_refresh_token SET revoked = $2, access_token_id = NULL \
     WHERE token_family = $1 AND revoked IS NULL";

pub(crate) const DELETE_AT: &str =
    "DELETE FROM oauth2_access_token WHERE id = $1 RETURNING token_checksum";
pub(crate) const DELETE_AT_FOR_GRANT: &str =
    "DELETE FROM oauth2_access_token WHERE id = $1 RETURNING grant_id, token_checksum";

pub(crate) const AT_DETAILS_BY_CHECKSUM: &str = "SELECT t.id, t.user_id, \
     t.source_refresh_token_id, t.token_checksum, t.id_token_id, t.application_id, t.grant_id, \
     t.expires, t.scope, t.created, t.resource, a.client_id AS client_id, u.username AS username, \
     u.is_active AS user_active \
     FROM oauth2_access_token t \
     LEFT JOIN oauth2_application a ON a.id = t.application_id \
     LEFT JOIN oauth2_user u ON u.id = t.user_id \
     WHERE t.token_checksum = $1";
pub(crate) const AT_BY_ID: &str = concat!(
    "SELECT ",
    at_cols!(),
    " FROM oauth2_access_token WHERE id = $1"
);
pub(crate) const LIVE_ATS: &str = concat!(
    "SELECT ",
    at_cols!(),
    " FROM oauth2_access_token WHERE user_id = $1 AND application_id = $2 \
     AND expires > $3 ORDER BY id"
);
pub(crate) const AT_BY_SOURCE_RT: &str = concat!(
    "SELECT ",
    at_cols!(),
    " FROM oauth2_access_token WHERE source_refresh_token_id = $1"
);
pub(crate) const RT_BY_CHECKSUM: &str = concat!(
    "SELECT ",
    rt_cols!(),
    " FROM oauth2_refresh_token WHERE token_checksum = $1"
);
pub(crate) const RT_BY_AT: &str = concat!(
    "SELECT ",
    rt_cols!(),
    " FROM oauth2_refresh_token WHERE access_token_id = $1"
);

/// Logout: per application (`$2`), or for all when `$2` is NULL.
pub(crate) const REVOKE_USER_RTS: &str =
    "UPDATE oauth2_refresh_token SET revoked = $3, access_token_id = NULL \
     WHERE user_id = $1 AND ($2 IS NULL OR application_id = $2) AND revoked IS NULL";
pub(crate) const DELETE_USER_ATS: &str = "DELETE FROM oauth2_access_token \
     WHERE user_id = $1 AND ($2 IS NULL OR application_id = $2) RETURNING token_checksum";
pub(crate) const DELETE_USER_IDTS: &str =
    "DELETE FROM oauth2_id_token WHERE user_id = $1 AND ($2 IS NULL OR application_id = $2)";

pub(crate) const IDT_BY_JTI: &str = concat!(
    "SELECT ",
    idt_cols!(),
    " FROM oauth2_id_token WHERE jti = $1"
);

// ----- device grants -----

macro_rules! insert_device {
    () => {
        "INSERT INTO oauth2_device_grant (device_code_checksum, \
     user_code_checksum, scope, poll_interval, expires, status, client_id, last_checked, \
     created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8 - $4, $8)"
    };
}
pub(crate) const INSERT_DEVICE: &str = concat!(insert_device!(), " RETURNING id");
/// SQLite: without `RETURNING`, which SQLite runs through a temporary table; the id is
/// `last_insert_rowid()`.
pub(crate) const INSERT_DEVICE_SQLITE: &str = insert_device!();
pub(crate) const DEVICE_BY_CODE: &str = concat!(
    "SELECT ",
    dg_cols!(),
    " FROM oauth2_device_grant WHERE device_code_checksum = $1"
);
pub(crate) const DEVICE_BY_USER_CODE: &str = concat!(
    "SELECT ",
    dg_cols!(),
    " FROM oauth2_device_grant WHERE user_code_checksum = $1"
);
pub(crate) const SET_DEVICE_STATUS: &str =
    "UPDATE oauth2_device_grant SET status = $3, user_id = COALESCE($4, user_id) \
     WHERE id = $1 AND status = $2";
pub(crate) const DEVICE_LAST_CHECKED: &str =
    "SELECT last_checked FROM oauth2_device_grant WHERE id = $1";
pub(crate) const TOUCH_DEVICE: &str =
    "UPDATE oauth2_device_grant SET last_checked = $2 WHERE id = $1";
/// PostgreSQL: the row lock serializes concurrent polls of one grant until COMMIT.
pub(crate) const DEVICE_LAST_CHECKED_FOR_UPDATE: &str =
    "SELECT last_checked FROM oauth2_device_grant WHERE id = $1 FOR UPDATE";
pub(crate) const SLOW_DOWN_DEVICE: &str =
    "UPDATE oauth2_device_grant SET poll_interval = poll_interval + $2 WHERE id = $1 \
     RETURNING poll_interval";
pub(crate) const REDEEM_DEVICE: &str =
    "DELETE FROM oauth2_device_grant WHERE id = $1 AND status = 'authorized'";

// ----- cleanup -----

use crate::store::CleanupStep;

/// One batch of a cleanup step: `DELETE FROM $table WHERE id IN ($select LIMIT n)`.
///
/// PostgreSQL plans `id IN (sub-select)` as a hash semi-join over a sequential scan of the
/// whole table — once per batch, which made 1,000,000 pairs take 53 s — so there the ids
/// go through `= ANY(ARRAY(…))`, which probes the primary key. SQLite already probes it.
macro_rules! batch_delete {
    ($table:literal, $select:literal) => {
        (
            concat!("DELETE FROM ", $table, " WHERE id IN (", $select, ")"),
            concat!(
                "DELETE FROM ",
                $table,
                " WHERE id = ANY(ARRAY(",
                $select,
                "))"
            ),
        )
    };
}

/// (SQLite, PostgreSQL) statements deleting one batch of `step`.
pub(crate) fn cleanup_delete_sql(step: CleanupStep) -> (&'static str, &'static str) {
    use CleanupStep::*;
    match step {
        RevokedRefreshTokens => batch_delete!(
            "oauth2_refresh_token",
            "SELECT id FROM oauth2_refresh_token WHERE revoked <= $1 LIMIT $2"
        ),
        OrphanedRefreshTokens => batch_delete!(
            "oauth2_refresh_token",
            "SELECT id FROM oauth2_refresh_token \
             WHERE revoked IS NULL AND access_token_id IS NULL LIMIT $1"
        ),
        ExpiredRefreshTokens => batch_delete!(
            "oauth2_refresh_token",
            "SELECT r.id FROM oauth2_refresh_token r \
             JOIN oauth2_access_token a ON a.id = r.access_token_id \
             WHERE r.revoked IS NULL AND a.expires <= $1 LIMIT $2"
        ),
        ExpiredAccessTokens => batch_delete!(
            "oauth2_access_token",
            "SELECT a.id FROM oauth2_access_token a WHERE a.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_refresh_token r WHERE r.access_token_id = a.id) LIMIT $2"
        ),
        ExpiredIdTokens => batch_delete!(
            "oauth2_id_token",
            "SELECT i.id FROM oauth2_id_token i WHERE i.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_access_token a WHERE a.id_token_id = i.id) LIMIT $2"
        ),
        ExpiredGrants => batch_delete!(
            "oauth2_grant",
            "SELECT id FROM oauth2_grant WHERE expires < $1 LIMIT $2"
        ),
        ExpiredDeviceGrants => batch_delete!(
            "oauth2_device_grant",
            "SELECT id FROM oauth2_device_grant WHERE expires < $1 LIMIT $2"
        ),
        UnusedRegisteredClients => batch_delete!(
            "oauth2_application",
            "SELECT r.application_id FROM oauth2_registration r WHERE r.created < $1 AND r.used IS NULL \
             AND NOT EXISTS (SELECT 1 FROM oauth2_access_token a WHERE a.application_id = r.application_id) \
             AND NOT EXISTS (SELECT 1 FROM oauth2_refresh_token t WHERE t.application_id = r.application_id) \
             AND NOT EXISTS (SELECT 1 FROM oauth2_grant g WHERE g.application_id = r.application_id) \
             LIMIT $2"
        ),
    }
}

/// The statement counting what `step` would delete.
pub(crate) fn cleanup_count_sql(step: CleanupStep) -> &'static str {
    use CleanupStep::*;
    match step {
        RevokedRefreshTokens => "SELECT COUNT(*) FROM oauth2_refresh_token WHERE revoked <= $1",
        OrphanedRefreshTokens => {
            "SELECT COUNT(*) FROM oauth2_refresh_token WHERE revoked IS NULL AND access_token_id IS NULL"
        }
        ExpiredRefreshTokens => {
            "SELECT COUNT(*) FROM oauth2_refresh_token r \
             JOIN oauth2_access_token a ON a.id = r.access_token_id \
             WHERE r.revoked IS NULL AND a.expires <= $1"
        }
        ExpiredAccessTokens => {
            "SELECT COUNT(*) FROM oauth2_access_token a WHERE a.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_refresh_token r WHERE r.access_token_id = a.id)"
        }
        ExpiredIdTokens => {
            "SELECT COUNT(*) FROM oauth2_id_token i WHERE i.expires < $1 AND NOT EXISTS \
             (SELECT 1 FROM oauth2_access_token a WHERE a.id_token_id = i.id)"
        }
        ExpiredGrants => "SELECT COUNT(*) FROM oauth2_grant WHERE expires < $1",
        ExpiredDeviceGrants => "SELECT COUNT(*) FROM oauth2_device_grant WHERE expires < $1",
        UnusedRegisteredClients => {
            "SELECT COUNT(*) FROM oauth2_registration r WHERE r.created < $1 AND r.used IS NULL \
             AND NOT EXISTS (SELECT 1 FROM oauth2_access_token a WHERE a.application_id = r.application_id) \
             AND NOT EXISTS (SELECT 1 FROM oauth2_refresh_token t WHERE t.application_id = r.application_id) \
             AND NOT EXISTS (SELECT 1 FROM oauth2_grant g WHERE g.application_id = r.application_id)"
        }
    }
}
