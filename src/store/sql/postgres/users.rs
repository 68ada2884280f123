//! Users and applications.

use super::{db_err, returned_id, PgStore};
use crate::model::*;
use crate::store::sql::statements as q;
use crate::store::StoreResult;

impl PgStore {
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
        self.find_one(q::USER_BY_ID, id).await
    }

    pub(crate) async fn find_user_by_username(&self, name: &str) -> StoreResult<Option<User>> {
        self.find_one(q::USER_BY_NAME, name).await
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
        let id = insert_app(&self.pool, &a).await?;
        Ok(a.into_row(id))
    }

    pub(crate) async fn find_application(&self, id: i64) -> StoreResult<Option<Application>> {
        self.find_one(q::APP_BY_ID, id).await
    }

    pub(crate) async fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        self.find_one(q::APP_BY_CLIENT_ID, client_id).await
    }

    pub(crate) async fn list_applications(&self) -> StoreResult<Vec<Application>> {
        sqlx::query_as(q::LIST_APPS)
            .fetch_all(&self.pool)
            .await
            .map_err(db_err)
    }

    pub(crate) async fn update_application(&self, a: &Application) -> StoreResult<bool> {
        Ok(self
            .execute(
                sqlx::query(q::UPDATE_REGISTERED_APP)
                    .bind(a.id)
                    .bind(&a.redirect_uris)
                    .bind(&a.post_logout_redirect_uris)
                    .bind(a.authorization_grant_type.as_str())
                    .bind(&a.name)
                    .bind(a.updated),
            )
            .await?
            == 1)
    }

    pub(crate) async fn register_application(
        &self,
        a: NewApplication,
        r: NewRegistration,
    ) -> StoreResult<(Application, Registration)> {
        let mut tx = self.begin().await?;
        let app_id = insert_app(&mut *tx, &a).await?;
        let id = returned_id(
            sqlx::query_scalar(q::INSERT_REGISTRATION)
                .bind(app_id)
                .bind(&r.token_checksum)
                .bind(&r.scope)
                .bind(r.expires)
                .bind(&r.metadata)
                .bind(r.created)
                .fetch_all(&mut *tx)
                .await,
        )?;
        tx.commit().await.map_err(db_err)?;
        Ok((a.into_row(app_id), r.into_row(id, app_id)))
    }

    pub(crate) async fn find_registration(
        &self,
        checksum: &str,
    ) -> StoreResult<Option<Registration>> {
        self.find_one(q::REGISTRATION_BY_CHECKSUM, checksum).await
    }

    pub(crate) async fn update_registration(
        &self,
        a: &Application,
        r: &Registration,
        presented: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        // The registration first: its row lock serializes concurrent updates, and a lost
        // compare-and-swap writes nothing (the transaction is dropped, rolled back).
        let swapped = sqlx::query(q::UPDATE_REGISTRATION)
            .bind(r.id)
            .bind(&r.token_checksum)
            .bind(&r.scope)
            .bind(r.expires)
            .bind(&r.metadata)
            .bind(presented)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if swapped != 1 {
            return Ok(false);
        }
        let updated = sqlx::query(q::UPDATE_REGISTERED_APP)
            .bind(a.id)
            .bind(&a.redirect_uris)
            .bind(&a.post_logout_redirect_uris)
            .bind(a.authorization_grant_type.as_str())
            .bind(&a.name)
            .bind(a.updated)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?
            .rows_affected();
        if updated != 1 {
            return Ok(false);
        }
        tx.commit().await.map_err(db_err)?;
        Ok(true)
    }

    pub(crate) async fn mark_used_registrations(&self, now: Timestamp) -> StoreResult<u64> {
        self.execute(sqlx::query(q::MARK_USED_REGISTRATIONS).bind(now))
            .await
    }

    pub(crate) async fn delete_application(&self, id: i64) -> StoreResult<bool> {
        Ok(self.execute(sqlx::query(q::DELETE_APP).bind(id)).await? > 0)
    }
}

/// Inserts an application row (on the pool or in a transaction); its id.
async fn insert_app<'e, E: sqlx::PgExecutor<'e>>(e: E, a: &NewApplication) -> StoreResult<i64> {
    returned_id(
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
            .fetch_all(e)
            .await,
    )
}
