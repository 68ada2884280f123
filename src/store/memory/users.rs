//! Users and applications.

use super::{conflict, MemoryStore};
use crate::model::*;
use crate::store::{StoreError, StoreResult};

impl MemoryStore {
    pub(super) fn create_user_now(&self, u: NewUser) -> StoreResult<User> {
        let mut s = self.lock();
        if s.users.values().any(|x| x.username == u.username) {
            return Err(conflict("username"));
        }
        let id = s.id();
        let user = u.into_row(id);
        s.users.insert(id, user.clone());
        Ok(user)
    }

    pub(super) fn find_user_now(&self, id: i64) -> StoreResult<Option<User>> {
        Ok(self.lock().users.get(&id).cloned())
    }

    pub(super) fn find_user_by_username_now(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(self
            .lock()
            .users
            .values()
            .find(|u| u.username == username)
            .cloned())
    }

    pub(super) fn set_last_login_now(&self, id: i64, at: Timestamp) -> StoreResult<()> {
        if let Some(u) = self.lock().users.get_mut(&id) {
            u.last_login = Some(at);
        }
        Ok(())
    }

    pub(super) fn set_user_active_now(&self, id: i64, active: bool) -> StoreResult<bool> {
        match self.lock().users.get_mut(&id) {
            Some(u) => {
                u.is_active = active;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    pub(super) fn count_users_now(&self) -> StoreResult<u64> {
        Ok(self.lock().users.len() as u64)
    }

    pub(super) fn create_application_now(&self, a: NewApplication) -> StoreResult<Application> {
        let mut s = self.lock();
        if s.apps.values().any(|x| x.client_id == a.client_id) {
            return Err(conflict("client id"));
        }
        if let Some(u) = a.user_id {
            if !s.users.contains_key(&u) {
                return Err(StoreError::NotFound(format!("user {u}")));
            }
        }
        let id = s.id();
        let app = a.into_row(id);
        s.apps.insert(id, app.clone());
        Ok(app)
    }

    pub(super) fn find_application_now(&self, id: i64) -> StoreResult<Option<Application>> {
        Ok(self.lock().apps.get(&id).cloned())
    }

    pub(super) fn find_application_by_client_id_now(
        &self,
        client_id: &str,
    ) -> StoreResult<Option<Application>> {
        Ok(self
            .lock()
            .apps
            .values()
            .find(|a| a.client_id == client_id)
            .cloned())
    }

    pub(super) fn list_applications_now(&self) -> StoreResult<Vec<Application>> {
        Ok(self.lock().apps.values().cloned().collect())
    }

    pub(super) fn delete_application_now(&self, id: i64) -> StoreResult<bool> {
        Ok(self.lock().delete_app(id))
    }
}
