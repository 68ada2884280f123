//! Users and applications.

use rusqlite::ToSql;

use super::rows::{self, all, execute, first_i64, insert, one, optional};
use super::SqliteStore;
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::StoreResult;

impl SqliteStore {
    // ----- users -----

    pub(crate) async fn create_user(&self, u: NewUser) -> StoreResult<User> {
        self.engine
            .write_one(move |c| {
                let args: [&dyn ToSql; 5] = [
                    &u.username,
                    &u.email,
                    &u.password_hash,
                    &u.is_active,
                    &u.date_joined,
                ];
                let id = insert(c, q::INSERT_USER_SQLITE, &args)?;
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
            .write_one(move |c| execute(c, q::SET_LAST_LOGIN, &[&id, &at]).map(drop))
            .await
    }

    pub(crate) async fn set_user_active(&self, id: i64, active: bool) -> StoreResult<bool> {
        self.engine
            .write_one(move |c| Ok(execute(c, q::SET_USER_ACTIVE, &[&id, &active])? == 1))
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
            .write_one(move |c| {
                let id = insert_app(c, &a)?;
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

    pub(crate) async fn update_application(&self, a: &Application) -> StoreResult<bool> {
        let a = a.clone();
        self.engine
            .write_one(move |c| Ok(update_app(c, &a)? == 1))
            .await
    }

    pub(crate) async fn register_application(
        &self,
        a: NewApplication,
        r: NewRegistration,
    ) -> StoreResult<(Application, Registration)> {
        // Two statements: a savepoint of their own, so both or neither commit.
        self.engine
            .write(move |c| {
                let app_id = insert_app(c, &a)?;
                let args: [&dyn ToSql; 6] = [
                    &app_id,
                    &r.token_checksum,
                    &r.scope,
                    &r.expires,
                    &r.metadata,
                    &r.created,
                ];
                let id = insert(c, q::INSERT_REGISTRATION_SQLITE, &args)?;
                Ok((a.into_row(app_id), r.into_row(id, app_id)))
            })
            .await
    }

    pub(crate) async fn find_registration(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<Registration>> {
        let checksum = checksum.to_owned();
        self.engine
            .read_latest(move |c| {
                optional(
                    c,
                    q::REGISTRATION_BY_CHECKSUM,
                    &[&checksum],
                    rows::registration,
                )
            })
            .await
    }

    pub(crate) async fn update_registration(
        &self,
        a: &Application,
        r: &Registration,
        presented: &str,
    ) -> StoreResult<bool> {
        let (a, r, presented) = (a.clone(), r.clone(), presented.to_owned());
        self.engine
            .write(move |c| {
                // The registration first: a lost compare-and-swap writes nothing.
                let args: [&dyn ToSql; 6] = [
                    &r.id,
                    &r.token_checksum,
                    &r.scope,
                    &r.expires,
                    &r.metadata,
                    &presented,
                ];
                if execute(c, q::UPDATE_REGISTRATION, &args)? != 1 {
                    return Ok(false);
                }
                if update_app(c, &a)? != 1 {
                    // Gone meanwhile: undo the registration's half (this savepoint).
                    return Err(crate::store::StoreError::NotFound("application".into()));
                }
                Ok(true)
            })
            .await
            .or_else(|e| match e {
                crate::store::StoreError::NotFound(_) => Ok(false),
                e => Err(e),
            })
    }

    pub(crate) async fn mark_used_registrations(&self, now: Timestamp) -> StoreResult<u64> {
        self.engine
            .write_one(move |c| execute(c, q::MARK_USED_REGISTRATIONS, &[&now]))
            .await
    }

    pub(crate) async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        self.engine
            .write_one(move |c| Ok(execute(c, q::DELETE_APP, &[&id])? > 0))
            .await
    }
}

/// Inserts an application row; its id.
fn insert_app(c: &rusqlite::Connection, a: &NewApplication) -> StoreResult<i64> {
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
    insert(c, q::INSERT_APP_SQLITE, &args)
}

/// Writes what an update may change of an application; the rows changed.
fn update_app(c: &rusqlite::Connection, a: &Application) -> StoreResult<u64> {
    let args: [&dyn ToSql; 6] = [
        &a.id,
        &a.redirect_uris,
        &a.post_logout_redirect_uris,
        &a.authorization_grant_type.as_str(),
        &a.name,
        &a.updated,
    ];
    execute(c, q::UPDATE_REGISTERED_APP, &args)
}
