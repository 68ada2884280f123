//! Storage: the async [`Store`] trait and its implementations.
//!
//! * [`memory::MemoryStore`]: in-process, for unit tests and examples;
//! * `sql::SqlStore` (features `sqlite` / `postgres`): SQLite (the embedded default, WAL
//!   mode, one writer connection and a pool of readers) and PostgreSQL, with migrations.
//!
//! The trait covers every query the provider, the resource side and the cleanup need. Its
//! methods take the current time as an argument instead of reading a clock, so the
//! protocol code decides what "now" is (and tests can move it).
//!
//! Every implementation passes the same behavioural suite (`tests/store.rs`), so the
//! semantics below hold for all of them:
//!
//! * tokens and codes are looked up by SHA-256 checksum only;
//! * a write method returns only after its transaction committed, and returns the
//!   commit's error when it failed; [`StoreError::Unavailable`] means "try again later";
//! * revoking an access token deletes it and revokes its refresh token; revoking a refresh
//!   token marks it revoked and deletes its access token (DOT 3.4.1);
//! * [`Store::rotate_refresh_token`] is atomic: of two concurrent rotations of one refresh
//!   token exactly one succeeds, the other gets [`StoreError::Conflict`];
//! * [`Store::delete_expired_batch`] deletes at most `limit` rows of one
//!   [`CleanupStep`] with one statement, without fetching ids into the application.
//!
//! ## Delete behaviour (as in DOT)
//! Deleting a user or an application deletes its grants and tokens; deleting an access
//! token clears `access_token_id` on its refresh token; deleting a refresh token clears
//! `source_refresh_token_id` on the access tokens issued from it; deleting an ID token
//! deletes its access token; deleting a grant clears `grant_id`.

use std::future::Future;

use crate::model::{
    AccessToken, AccessTokenDetails, Application, DeviceGrant, DeviceGrantStatus, Grant, IdToken,
    NewAccessToken, NewApplication, NewDeviceGrant, NewGrant, NewIdToken, NewRefreshToken,
    NewRegistration, NewUser, RefreshToken, Registration, Timestamp, User,
};

pub mod cache;
pub mod memory;
#[cfg(feature = "sqlx")]
pub mod sql;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique value (client id, username, checksum, jti) already exists, or a
    /// conditional update lost a race (the refresh token was already rotated).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A referenced row does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The database could not be opened or its URL is not understood.
    #[error("cannot open the database: {0}")]
    Config(String),
    /// Applying migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The database cannot serve now but may soon: busy or locked by another process,
    /// full, read-only, unreachable, out of connections. Nothing was written. The
    /// provider answers 503 `temporarily_unavailable`.
    #[error("database temporarily unavailable: {0}")]
    Unavailable(String),
    /// Any other backend error.
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A shorthand for results of [`Store`] methods.
pub type StoreResult<T> = Result<T, StoreError>;

/// The steps of `clear_expired()`, in DOT 3.4.1's order (plus device grants, which DOT
/// never clears). Each step's `cutoff` is given to [`Store::delete_expired_batch`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum CleanupStep {
    /// Refresh tokens with `revoked <= cutoff`.
    RevokedRefreshTokens,
    /// Live refresh tokens with no access token (`revoked IS NULL AND access_token IS
    /// NULL`); the cutoff is ignored.
    OrphanedRefreshTokens,
    /// Live refresh tokens whose access token expired at or before `cutoff`
    /// (`now - REFRESH_TOKEN_EXPIRE_SECONDS`).
    ExpiredRefreshTokens,
    /// Access tokens with no refresh token and `expires < cutoff`.
    ExpiredAccessTokens,
    /// ID tokens with no access token and `expires < cutoff`.
    ExpiredIdTokens,
    /// Authorization codes with `expires < cutoff`.
    ExpiredGrants,
    /// Device grants with `expires < cutoff`.
    ExpiredDeviceGrants,
    /// Dynamically registered clients (RFC 7591) registered before `cutoff` that never
    /// obtained a token or code (no cleanup run saw one, see
    /// [`Store::mark_used_registrations`], and they hold none now). Only with
    /// `DCR_UNUSED_CLIENT_MAX_AGE_SECONDS`.
    UnusedRegisteredClients,
}

impl CleanupStep {
    /// Every step, in the order `clear_expired()` runs them.
    pub const ALL: [CleanupStep; 8] = [
        CleanupStep::RevokedRefreshTokens,
        CleanupStep::OrphanedRefreshTokens,
        CleanupStep::ExpiredRefreshTokens,
        CleanupStep::ExpiredAccessTokens,
        CleanupStep::ExpiredIdTokens,
        CleanupStep::ExpiredGrants,
        CleanupStep::ExpiredDeviceGrants,
        CleanupStep::UnusedRegisteredClients,
    ];

    /// A short name for logs and reports.
    pub fn name(self) -> &'static str {
        match self {
            CleanupStep::RevokedRefreshTokens => "revoked_refresh_tokens",
            CleanupStep::OrphanedRefreshTokens => "orphaned_refresh_tokens",
            CleanupStep::ExpiredRefreshTokens => "expired_refresh_tokens",
            CleanupStep::ExpiredAccessTokens => "expired_access_tokens",
            CleanupStep::ExpiredIdTokens => "expired_id_tokens",
            CleanupStep::ExpiredGrants => "expired_grants",
            CleanupStep::ExpiredDeviceGrants => "expired_device_grants",
            CleanupStep::UnusedRegisteredClients => "unused_registered_clients",
        }
    }
}

/// What a token response stores: an access token and, optionally, a refresh token and an
/// ID token, written together.
#[derive(Clone, Debug)]
pub struct IssueTokens {
    /// The access token. Its `id_token_id` is filled in from `id_token` when present.
    pub access: NewAccessToken,
    /// The refresh token. Its `access_token_id` is filled in with the new access token.
    pub refresh: Option<NewRefreshToken>,
    /// The ID token.
    pub id_token: Option<NewIdToken>,
}

/// What [`Store::issue_tokens`] and [`Store::rotate_refresh_token`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedTokens {
    /// The access token row.
    pub access: AccessToken,
    /// The refresh token row.
    pub refresh: Option<RefreshToken>,
    /// The ID token row.
    pub id_token: Option<IdToken>,
}

/// The storage the provider, the resource side and the cleanup run on.
///
/// Methods return `impl Future + Send` so that implementations can be used from any
/// multi-threaded runtime without boxing; implement them with `async fn`.
pub trait Store: Send + Sync + 'static {
    /// The store's in-process cache entry for a token's SHA-256 digest, when the store
    /// keeps an [`AccessTokenCache`](cache::AccessTokenCache) and it holds a current
    /// answer: no I/O, no waiting. The default has no cache.
    fn cached_access_token(&self, digest: &[u8; 32]) -> Option<std::sync::Arc<cache::CachedToken>> {
        let _ = digest;
        None
    }

    // ----- users -----

    /// Inserts a user; a taken username is a [`StoreError::Conflict`].
    fn create_user(&self, user: NewUser) -> impl Future<Output = StoreResult<User>> + Send;
    /// A user by primary key.
    fn find_user(&self, id: i64) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// A user by username (exact match).
    fn find_user_by_username(
        &self,
        username: &str,
    ) -> impl Future<Output = StoreResult<Option<User>>> + Send;
    /// Records a successful login.
    fn set_last_login(
        &self,
        id: i64,
        at: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;
    /// How many users there are.
    fn count_users(&self) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Activates or deactivates a user (an inactive user cannot log in, and its tokens
    /// stop working); false if there is no such user.
    fn set_user_active(
        &self,
        id: i64,
        active: bool,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    // ----- applications -----

    /// Inserts an application; a taken client id is a [`StoreError::Conflict`].
    fn create_application(
        &self,
        app: NewApplication,
    ) -> impl Future<Output = StoreResult<Application>> + Send;
    /// An application by primary key.
    fn find_application(
        &self,
        id: i64,
    ) -> impl Future<Output = StoreResult<Option<Application>>> + Send;
    /// An application by client id.
    fn find_application_by_client_id(
        &self,
        client_id: &str,
    ) -> impl Future<Output = StoreResult<Option<Application>>> + Send;
    /// Every application, by id.
    fn list_applications(&self) -> impl Future<Output = StoreResult<Vec<Application>>> + Send;
    /// Deletes an application and everything issued to it; false if it did not exist.
    fn delete_application(&self, id: i64) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Writes an application's redirect URIs, post-logout redirect URIs, grant type,
    /// name and `updated` (a client metadata document that changed); false if it is gone.
    fn update_application(
        &self,
        app: &Application,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    // ----- dynamic client registration (RFC 7591/7592) -----

    /// Inserts a dynamically registered application and its registration, in one
    /// transaction; a taken client id is a [`StoreError::Conflict`].
    fn register_application(
        &self,
        app: NewApplication,
        registration: NewRegistration,
    ) -> impl Future<Output = StoreResult<(Application, Registration)>> + Send;
    /// A registration by the checksum of its registration access token.
    fn find_registration(
        &self,
        token_checksum: &str,
    ) -> impl Future<Output = StoreResult<Option<Registration>>> + Send;
    /// Writes an RFC 7592 update in one transaction: the application's redirect URIs,
    /// post-logout redirect URIs, grant type, name and `updated`, and the registration's
    /// token checksum, scope, expiry and metadata — only while the registration's token is
    /// still `presented_checksum` (compare and swap: two updates with one token, or one
    /// with a token rotated out meanwhile, do not both win). False, with nothing
    /// written, otherwise.
    fn update_registration(
        &self,
        app: &Application,
        registration: &Registration,
        presented_checksum: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Marks used (at `now`) every registration whose client holds a token or code: run by
    /// cleanup before it deletes tokens, so that a client that was used is never taken for
    /// one that never was. The number marked.
    fn mark_used_registrations(
        &self,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    // ----- authorization codes -----

    /// Inserts an authorization code.
    fn create_grant(&self, grant: NewGrant) -> impl Future<Output = StoreResult<Grant>> + Send;
    /// An authorization code by checksum (used or not, expired or not).
    fn find_grant(
        &self,
        code_checksum: &str,
    ) -> impl Future<Output = StoreResult<Option<Grant>>> + Send;
    /// Marks a code used, atomically: true for the one caller that flipped it.
    fn mark_grant_used(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Redeems an authorization code: marks it used and writes `tokens`, in one
    /// transaction. `None` (nothing written) when the code was already used — a replay;
    /// the caller then revokes what the code issued with
    /// [`revoke_grant_tokens`](Store::revoke_grant_tokens), which waits for a concurrent
    /// redemption to commit, so a racing replay cannot miss the winner's tokens.
    fn redeem_grant(
        &self,
        grant_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> impl Future<Output = StoreResult<Option<IssuedTokens>>> + Send;

    // ----- tokens -----

    /// Writes an access token with its optional refresh and ID tokens, in one transaction.
    fn issue_tokens(
        &self,
        tokens: IssueTokens,
    ) -> impl Future<Output = StoreResult<IssuedTokens>> + Send;
    /// Rotates a refresh token in one transaction: revokes `old_refresh_id` (only if it is
    /// still live — otherwise [`StoreError::Conflict`] and nothing is written), deletes its
    /// access token, and writes the new tokens with `source_refresh_token_id` set to it.
    fn rotate_refresh_token(
        &self,
        old_refresh_id: i64,
        now: Timestamp,
        tokens: IssueTokens,
    ) -> impl Future<Output = StoreResult<IssuedTokens>> + Send;
    /// Replaces the access token of a refresh token without rotating it
    /// (ROTATE_REFRESH_TOKEN off): deletes the old access token and binds the new one.
    fn replace_access_token(
        &self,
        refresh_id: i64,
        access: NewAccessToken,
    ) -> impl Future<Output = StoreResult<AccessToken>> + Send;
    /// An access token by checksum, with its client id and username.
    fn find_access_token(
        &self,
        token_checksum: &str,
    ) -> impl Future<Output = StoreResult<Option<AccessTokenDetails>>> + Send;
    /// An access token by primary key.
    fn find_access_token_by_id(
        &self,
        id: i64,
    ) -> impl Future<Output = StoreResult<Option<AccessToken>>> + Send;
    /// The unexpired access tokens of a user for an application (REQUEST_APPROVAL_PROMPT
    /// `auto`).
    fn find_live_access_tokens(
        &self,
        user_id: i64,
        application_id: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Vec<AccessToken>>> + Send;
    /// The access token issued by refreshing `refresh_id`, with its refresh token (the
    /// successor pair a grace-period retry gets).
    fn find_successor(
        &self,
        refresh_id: i64,
    ) -> impl Future<Output = StoreResult<Option<(AccessToken, Option<RefreshToken>)>>> + Send;
    /// Revokes an access token: deletes it and revokes its refresh token. False if unknown.
    fn revoke_access_token(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// A refresh token by checksum.
    fn find_refresh_token(
        &self,
        token_checksum: &str,
    ) -> impl Future<Output = StoreResult<Option<RefreshToken>>> + Send;
    /// The refresh token paired with an access token.
    fn find_refresh_token_for_access_token(
        &self,
        access_token_id: i64,
    ) -> impl Future<Output = StoreResult<Option<RefreshToken>>> + Send;
    /// Revokes a live refresh token and deletes its access token. False if it was unknown
    /// or already revoked.
    fn revoke_refresh_token(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Revokes every live refresh token of a family and deletes their access tokens;
    /// returns how many refresh tokens it revoked.
    fn revoke_refresh_token_family(
        &self,
        family: &str,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Revokes everything issued from an authorization code (a replayed code): the access
    /// tokens issued from it are deleted and their refresh-token families revoked.
    /// Returns how many access tokens were deleted.
    fn revoke_grant_tokens(
        &self,
        grant_id: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Deletes a user's access and ID tokens and revokes their refresh tokens, for the
    /// given applications or for all (RP-initiated logout). Returns the access tokens
    /// deleted.
    fn delete_user_tokens(
        &self,
        user_id: i64,
        application_ids: Option<&[i64]>,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;

    // ----- ID tokens -----

    /// Stores an ID token issued without an access token (`response_type=id_token`, or
    /// the front channel of `code id_token`), so that logout and cleanup know of it.
    fn create_id_token(
        &self,
        id_token: NewIdToken,
    ) -> impl Future<Output = StoreResult<IdToken>> + Send;
    /// An ID token by `jti`.
    fn find_id_token(&self, jti: &str)
        -> impl Future<Output = StoreResult<Option<IdToken>>> + Send;

    // ----- device grants -----

    /// Inserts a device grant.
    fn create_device_grant(
        &self,
        grant: NewDeviceGrant,
    ) -> impl Future<Output = StoreResult<DeviceGrant>> + Send;
    /// A device grant by device-code checksum.
    fn find_device_grant(
        &self,
        device_code_checksum: &str,
    ) -> impl Future<Output = StoreResult<Option<DeviceGrant>>> + Send;
    /// A device grant by user-code checksum.
    fn find_device_grant_by_user_code(
        &self,
        user_code_checksum: &str,
    ) -> impl Future<Output = StoreResult<Option<DeviceGrant>>> + Send;
    /// Moves a grant from `from` to `to` (and sets its user when given), atomically: true
    /// for the one caller that made the change.
    fn update_device_grant_status(
        &self,
        id: i64,
        from: DeviceGrantStatus,
        to: DeviceGrantStatus,
        user_id: Option<i64>,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
    /// Records a poll; returns the previous `last_checked` (`None`: no such grant).
    /// Concurrent polls of one grant are serialized: each sees the one before it.
    fn touch_device_grant(
        &self,
        id: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<Timestamp>>> + Send;
    /// Raises a grant's polling interval by `step` seconds (RFC 8628 §3.5 `slow_down`);
    /// returns the new interval (`None`: no such grant).
    fn slow_down_device_grant(
        &self,
        id: i64,
        step: i64,
    ) -> impl Future<Output = StoreResult<Option<i64>>> + Send;
    /// Redeems an approved device grant: deletes it (only while its status is
    /// `authorized`) and writes `tokens`, in one transaction. `None` (nothing written)
    /// when it was not there to redeem — a concurrent poll redeemed it first.
    fn redeem_device_grant(
        &self,
        id: i64,
        tokens: IssueTokens,
    ) -> impl Future<Output = StoreResult<Option<IssuedTokens>>> + Send;

    // ----- cleanup -----

    /// How many rows `step` would delete at `cutoff` (for progress reporting).
    fn count_expired(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
    /// Deletes at most `limit` rows of `step` at `cutoff` with one statement; returns how
    /// many it deleted (0 = the step is done).
    fn delete_expired_batch(
        &self,
        step: CleanupStep,
        cutoff: Timestamp,
        limit: u64,
    ) -> impl Future<Output = StoreResult<u64>> + Send;
}
