//! The host's users: [`UserAuthenticator`], and [`StoreUsers`], the built-in one over the
//! store's `oauth2_user` table (Argon2id password hashes).

use std::future::Future;
use std::sync::Arc;

use crate::hashers::{hash_secret, verify_secret, SecretHasher};
use crate::model::{NewUser, Timestamp, User};
use crate::store::{Store, StoreError};

/// A user the provider may issue tokens for. `id` is the primary key of the user's row in
/// the store's `oauth2_user` table (tokens and codes reference it); a host with its own
/// user database keeps a row there per user (see [`StoreUsers::ensure_user`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// Primary key in `oauth2_user`.
    pub id: i64,
    /// Login name (the `username` of introspection answers).
    pub username: String,
    /// When the user last authenticated (OIDC `auth_time`), if known.
    pub auth_time: Option<Timestamp>,
}

impl From<User> for AuthenticatedUser {
    fn from(u: User) -> Self {
        AuthenticatedUser {
            id: u.id,
            username: u.username,
            auth_time: u.last_login,
        }
    }
}

/// The host's users, as the provider needs them: DOT leaves this to Django's
/// `authenticate()` and `request.user`.
pub trait UserAuthenticator: Send + Sync + 'static {
    /// Checks a username and password (login page, password grant). `Ok(None)` when they
    /// do not match an active user. Must not leak, by timing or message, whether the
    /// username exists.
    fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> impl Future<Output = Result<Option<AuthenticatedUser>, StoreError>> + Send;

    /// The user logged in to the host's own session, for hosts that have one
    /// (`None`, the default: the provider's login page and session cookie are used).
    fn current_user(
        &self,
        request: &http::request::Parts,
    ) -> impl Future<Output = Result<Option<AuthenticatedUser>, StoreError>> + Send {
        let _ = request;
        std::future::ready(Ok(None))
    }

    /// A user by id, `None` if unknown or inactive (a session whose user was removed).
    fn find_user(
        &self,
        id: i64,
    ) -> impl Future<Output = Result<Option<AuthenticatedUser>, StoreError>> + Send;
}

/// The built-in users: the store's `oauth2_user` table with Argon2id password hashes.
/// Backs `oauth-toolkit serve` and `oauth-toolkit createuser`.
pub struct StoreUsers<S> {
    store: Arc<S>,
    /// A hash to verify against when the username is unknown, so that a miss costs the
    /// same time as a wrong password.
    decoy: Arc<String>,
}

impl<S> Clone for StoreUsers<S> {
    fn clone(&self) -> Self {
        StoreUsers {
            store: self.store.clone(),
            decoy: self.decoy.clone(),
        }
    }
}

/// Why a user could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateUserError {
    /// The username is empty, too long, or has characters outside letters, digits and
    /// `@.+-_` (Django's rule).
    #[error("invalid username: {0}")]
    InvalidUsername(String),
    /// The password is too short.
    #[error("the password must be at least 8 characters")]
    WeakPassword,
    /// A user with this name exists.
    #[error("a user named {0:?} already exists")]
    Exists(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl<S: Store> StoreUsers<S> {
    /// Users of `store`.
    pub fn new(store: Arc<S>) -> Self {
        let decoy = hash_secret("decoy password", SecretHasher::Argon2)
            .expect("hashing a constant cannot fail");
        StoreUsers {
            store,
            decoy: Arc::new(decoy),
        }
    }

    /// Creates a user with an Argon2id hash of `password`.
    pub async fn create_user(
        &self,
        username: &str,
        email: &str,
        password: &str,
    ) -> Result<User, CreateUserError> {
        validate_username(username)?;
        if password.chars().count() < 8 {
            return Err(CreateUserError::WeakPassword);
        }
        if self.store.find_user_by_username(username).await?.is_some() {
            return Err(CreateUserError::Exists(username.into()));
        }
        let password = password.to_owned();
        let hash =
            tokio::task::spawn_blocking(move || hash_secret(&password, SecretHasher::Argon2))
                .await
                .map_err(|e| StoreError::Backend(format!("hashing task: {e}").into()))?
                .map_err(|e| StoreError::Backend(format!("hashing: {e}").into()))?;
        let user = self
            .store
            .create_user(NewUser {
                username: username.into(),
                email: email.into(),
                password_hash: hash,
                is_active: true,
                date_joined: Timestamp::now(),
            })
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => CreateUserError::Exists(username.into()),
                e => CreateUserError::Store(e),
            })?;
        Ok(user)
    }

    /// The row of an externally authenticated user, created (without a usable password)
    /// on first sight: for hosts whose own `UserAuthenticator` keeps users elsewhere.
    pub async fn ensure_user(&self, username: &str) -> Result<User, CreateUserError> {
        validate_username(username)?;
        if let Some(u) = self.store.find_user_by_username(username).await? {
            return Ok(u);
        }
        Ok(self
            .store
            .create_user(NewUser {
                username: username.into(),
                email: String::new(),
                password_hash: "!".into(),
                is_active: true,
                date_joined: Timestamp::now(),
            })
            .await?)
    }
}

fn validate_username(username: &str) -> Result<(), CreateUserError> {
    if username.is_empty() || username.len() > 150 {
        return Err(CreateUserError::InvalidUsername(
            "it must have 1 to 150 characters".into(),
        ));
    }
    if let Some(c) = username
        .chars()
        .find(|c| !(c.is_alphanumeric() || "@.+-_".contains(*c)))
    {
        return Err(CreateUserError::InvalidUsername(format!(
            "{c:?} is not allowed (letters, digits and @.+-_ only)"
        )));
    }
    Ok(())
}

impl<S: Store> UserAuthenticator for StoreUsers<S> {
    async fn authenticate(
        &self,
        username: &str,
        password: &str,
    ) -> Result<Option<AuthenticatedUser>, StoreError> {
        let user = self.store.find_user_by_username(username).await?;
        // Unknown, inactive, or without a usable hash: check the decoy, same cost.
        let stored = match &user {
            Some(u) if u.is_active && crate::hashers::is_hashed(&u.password_hash) => {
                u.password_hash.clone()
            }
            _ => self.decoy.as_str().to_owned(),
        };
        let presented = password.to_owned();
        // Argon2 takes milliseconds of CPU: off the async workers, a bounded number at once.
        let ok = crate::hashers::in_hash_pool(move || verify_secret(&presented, &stored))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        match user {
            Some(u) if ok && u.is_active && crate::hashers::is_hashed(&u.password_hash) => {
                let now = Timestamp::now();
                self.store.set_last_login(u.id, now).await?;
                Ok(Some(AuthenticatedUser {
                    id: u.id,
                    username: u.username,
                    auth_time: Some(now),
                }))
            }
            _ => Ok(None),
        }
    }

    async fn find_user(&self, id: i64) -> Result<Option<AuthenticatedUser>, StoreError> {
        Ok(self
            .store
            .find_user(id)
            .await?
            .filter(|u| u.is_active)
            .map(AuthenticatedUser::from))
    }
}
