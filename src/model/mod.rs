//! The domain model: applications, grants, tokens, ID tokens, device grants and users,
//! with Django OAuth Toolkit's fields and enums.
//!
//! Differences from DOT, all on the side of safety:
//! * tokens, authorization codes, device codes and user codes are kept only as SHA-256
//!   checksums (`*_checksum` fields, see [`crate::crypto::token_checksum`]); DOT keeps
//!   authorization codes in plaintext;
//! * a [`Grant`] is marked used (`used_at`) instead of being deleted, and every access
//!   token remembers the grant it came from (`grant_id`), so that a replayed code can
//!   revoke what it issued (RFC 6749 §4.1.2);
//! * times are [`Timestamp`]s: whole seconds since the Unix epoch, UTC.
//!
//! `Debug` never prints a client secret or a password hash.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// A point in time: whole seconds since the Unix epoch (UTC).
///
/// Stored as a 64-bit integer in every backend, so that expiry comparisons are plain
/// integer comparisons that indexes serve.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(transparent))]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current time, from the system clock.
    pub fn now() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Timestamp(secs)
    }

    /// Seconds since the Unix epoch.
    pub fn unix(self) -> i64 {
        self.0
    }

    /// This time plus `secs` seconds (saturating).
    pub fn add_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs))
    }

    /// This time minus `secs` seconds (saturating).
    pub fn sub_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_sub(secs))
    }

    /// This time plus a duration (whole seconds, saturating).
    pub fn plus(self, d: Duration) -> Self {
        self.add_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    /// This time minus a duration (whole seconds, saturating).
    pub fn minus(self, d: Duration) -> Self {
        self.sub_secs(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// A string that did not name a variant of one of the model's enums.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a valid {what}; expected one of: {}", .expected.trim_end())]
pub struct ParseEnumError {
    /// What was being parsed ("client type", …).
    pub what: &'static str,
    /// The rejected input.
    pub value: String,
    /// The accepted values, comma-separated.
    pub expected: &'static str,
}

macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident = $s:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and wire) form, as in DOT.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = ParseEnumError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $s $(| $alias)* => Ok($name::$variant), )+
                    _ => Err(ParseEnumError {
                        what: $what,
                        value: s.to_owned(),
                        expected: concat!($("\"", $s, "\" "),+),
                    }),
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = ParseEnumError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_enum! {
    /// RFC 6749 §2.1 client types.
    ClientType, "client type" {
        /// Can keep a secret: must authenticate at the token endpoint.
        Confidential = "confidential",
        /// Cannot keep a secret: identified by its client id alone.
        Public = "public",
    }
}

string_enum! {
    /// The one grant type an application may use (DOT's `authorization_grant_type`).
    GrantType, "authorization grant type" {
        /// Authorization code (response type `code`), with refresh tokens.
        AuthorizationCode = "authorization-code",
        /// Implicit (response types `token`, `id_token`, `id_token token`).
        Implicit = "implicit",
        /// Resource owner password credentials, with refresh tokens.
        Password = "password",
        /// Client credentials (confidential clients only).
        ClientCredentials = "client-credentials",
        /// OpenID Connect hybrid flow (`code id_token`, `code token`, `code id_token token`).
        OpenidHybrid = "openid-hybrid",
        /// RFC 8628 device authorization grant.
        DeviceCode = "urn:ietf:params:oauth:grant-type:device_code" | "device-code",
    }
}

impl GrantType {
    /// Whether applications of this grant type need at least one redirect URI.
    pub fn requires_redirect_uri(self) -> bool {
        matches!(
            self,
            GrantType::AuthorizationCode | GrantType::Implicit | GrantType::OpenidHybrid
        )
    }
}

string_enum! {
    /// The ID-token signing algorithm of an application (`""` = no OIDC).
    Algorithm, "algorithm" {
        /// No ID tokens.
        NoAlgorithm = "",
        /// RSA with SHA-256, signed with `OIDC_RSA_PRIVATE_KEY`.
        Rs256 = "RS256",
        /// HMAC with SHA-256, keyed with the application's (unhashed) client secret.
        Hs256 = "HS256",
    }
}

string_enum! {
    /// RFC 7636 code challenge methods.
    CodeChallengeMethod, "code challenge method" {
        /// `code_challenge = code_verifier`.
        Plain = "plain",
        /// `code_challenge = BASE64URL(SHA256(code_verifier))`.
        S256 = "S256",
    }
}

string_enum! {
    /// The state of an RFC 8628 device grant (DOT's `DeviceGrant.status`).
    DeviceGrantStatus, "device grant status" {
        /// The user approved the device.
        Authorized = "authorized",
        /// Waiting for the user.
        AuthorizationPending = "authorization-pending",
        /// The grant's deadline passed.
        Expired = "expired",
        /// The user refused.
        Denied = "denied",
    }
}

/// Splits a space-separated DOT list field (`redirect_uris`, `allowed_origins`, …).
pub fn split_list(field: &str) -> impl Iterator<Item = &str> {
    field.split_whitespace()
}

/// A user of the built-in user table (the standalone server's users).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct User {
    /// Primary key.
    pub id: i64,
    /// Unique login name.
    pub username: String,
    /// E-mail address (may be empty).
    pub email: String,
    /// PHC-format password hash (Argon2id), never the password.
    pub password_hash: String,
    /// Inactive users cannot log in or obtain tokens.
    pub is_active: bool,
    /// When the user was created.
    pub date_joined: Timestamp,
    /// The last successful login (OIDC `auth_time` falls back to it).
    pub last_login: Option<Timestamp>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("email", &self.email)
            .field("password_hash", &"[redacted]")
            .field("is_active", &self.is_active)
            .field("date_joined", &self.date_joined)
            .field("last_login", &self.last_login)
            .finish()
    }
}

/// A user to insert.
#[derive(Clone)]
pub struct NewUser {
    /// Unique login name.
    pub username: String,
    /// E-mail address (may be empty).
    pub email: String,
    /// PHC-format password hash.
    pub password_hash: String,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Creation time.
    pub date_joined: Timestamp,
}

/// An OAuth client (DOT's `Application`).
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Application {
    /// Primary key.
    pub id: i64,
    /// The public client identifier (unique).
    pub client_id: String,
    /// The owner, if any.
    pub user_id: Option<i64>,
    /// Registered redirect URIs, space-separated.
    pub redirect_uris: String,
    /// Registered post-logout redirect URIs, space-separated.
    pub post_logout_redirect_uris: String,
    /// Confidential or public.
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "String"))]
    pub client_type: ClientType,
    /// The grant type this application may use.
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "String"))]
    pub authorization_grant_type: GrantType,
    /// The client secret: a PHC/Django hash when `hash_client_secret`, else the secret
    /// itself (needed for HS256 ID tokens). Empty for public clients.
    pub client_secret: String,
    /// Whether `client_secret` is stored hashed.
    pub hash_client_secret: bool,
    /// Human-readable name.
    pub name: String,
    /// Skip the consent page for this client.
    pub skip_authorization: bool,
    /// Creation time.
    pub created: Timestamp,
    /// Last update.
    pub updated: Timestamp,
    /// ID-token signing algorithm.
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "String"))]
    pub algorithm: Algorithm,
    /// Origins allowed for CORS, space-separated.
    pub allowed_origins: String,
    /// Per-client override of `PKCE_REQUIRED` (DOT's callable form); `None` = the setting.
    pub pkce_required: Option<bool>,
}

impl Application {
    /// The registered redirect URIs.
    pub fn redirect_uri_list(&self) -> impl Iterator<Item = &str> {
        split_list(&self.redirect_uris)
    }

    /// The registered post-logout redirect URIs.
    pub fn post_logout_redirect_uri_list(&self) -> impl Iterator<Item = &str> {
        split_list(&self.post_logout_redirect_uris)
    }

    /// The origins allowed for CORS.
    pub fn allowed_origin_list(&self) -> impl Iterator<Item = &str> {
        split_list(&self.allowed_origins)
    }

    /// Whether this is a confidential client.
    pub fn is_confidential(&self) -> bool {
        self.client_type == ClientType::Confidential
    }
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Application")
            .field("id", &self.id)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("user_id", &self.user_id)
            .field("client_type", &self.client_type)
            .field("authorization_grant_type", &self.authorization_grant_type)
            .field("client_secret", &"[redacted]")
            .field("hash_client_secret", &self.hash_client_secret)
            .field("redirect_uris", &self.redirect_uris)
            .field("post_logout_redirect_uris", &self.post_logout_redirect_uris)
            .field("allowed_origins", &self.allowed_origins)
            .field("skip_authorization", &self.skip_authorization)
            .field("algorithm", &self.algorithm)
            .field("pkce_required", &self.pkce_required)
            .field("created", &self.created)
            .field("updated", &self.updated)
            .finish()
    }
}

/// An application to insert. `client_secret` must already be in its stored form (hashed
/// with `crate::hashers` unless `hash_client_secret` is false).
#[derive(Clone)]
pub struct NewApplication {
    /// The public client identifier.
    pub client_id: String,
    /// The owner, if any.
    pub user_id: Option<i64>,
    /// Redirect URIs, space-separated.
    pub redirect_uris: String,
    /// Post-logout redirect URIs, space-separated.
    pub post_logout_redirect_uris: String,
    /// Confidential or public.
    pub client_type: ClientType,
    /// The grant type.
    pub authorization_grant_type: GrantType,
    /// The stored form of the secret.
    pub client_secret: String,
    /// Whether `client_secret` is a hash.
    pub hash_client_secret: bool,
    /// Human-readable name.
    pub name: String,
    /// Skip the consent page.
    pub skip_authorization: bool,
    /// ID-token signing algorithm.
    pub algorithm: Algorithm,
    /// CORS origins, space-separated.
    pub allowed_origins: String,
    /// Per-client PKCE override.
    pub pkce_required: Option<bool>,
    /// Creation time.
    pub created: Timestamp,
}

impl NewApplication {
    /// An application with DOT's defaults for everything but its identity: no secret, no
    /// redirect URIs, hashed secrets, consent required, no OIDC algorithm.
    pub fn new(client_id: impl Into<String>, client_type: ClientType, grant: GrantType) -> Self {
        NewApplication {
            client_id: client_id.into(),
            user_id: None,
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            client_type,
            authorization_grant_type: grant,
            client_secret: String::new(),
            hash_client_secret: true,
            name: String::new(),
            skip_authorization: false,
            algorithm: Algorithm::NoAlgorithm,
            allowed_origins: String::new(),
            pkce_required: None,
            created: Timestamp::now(),
        }
    }
}

impl fmt::Debug for NewApplication {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewApplication")
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field("client_type", &self.client_type)
            .field("authorization_grant_type", &self.authorization_grant_type)
            .field("client_secret", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// The RFC 7636 challenge of an authorization request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PkceChallenge {
    /// The `code_challenge`.
    pub challenge: String,
    /// The `code_challenge_method`.
    pub method: CodeChallengeMethod,
}

impl PkceChallenge {
    /// From the two stored columns: both empty is "no PKCE"; a challenge with an
    /// unreadable method is an error (reading it as "none" would let the code be
    /// exchanged without a verifier).
    pub fn from_columns(challenge: String, method: &str) -> Result<Option<Self>, ParseEnumError> {
        if challenge.is_empty() && method.is_empty() {
            return Ok(None);
        }
        Ok(Some(PkceChallenge {
            challenge,
            method: method.parse()?,
        }))
    }
}

/// The two stored columns (`code_challenge`, `code_challenge_method`) of an optional
/// challenge: empty strings for none, as DOT stores it.
pub fn pkce_columns(pkce: &Option<PkceChallenge>) -> (&str, &'static str) {
    match pkce {
        Some(p) => (p.challenge.as_str(), p.method.as_str()),
        None => ("", ""),
    }
}

/// An authorization code (DOT's `Grant`), stored by checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// Primary key.
    pub id: i64,
    /// The user who authorized.
    pub user_id: i64,
    /// SHA-256 checksum of the code.
    pub code_checksum: String,
    /// The client.
    pub application_id: i64,
    /// Expiry (AUTHORIZATION_CODE_EXPIRE_SECONDS after creation).
    pub expires: Timestamp,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// The PKCE challenge, if the request had one (columns `code_challenge`,
    /// `code_challenge_method`).
    pub pkce: Option<PkceChallenge>,
    /// OIDC nonce ("" when none).
    pub nonce: String,
    /// OIDC `claims` request parameter, JSON ("" when none).
    pub claims: String,
    /// When the user authenticated (OIDC `auth_time`).
    pub auth_time: Option<Timestamp>,
    /// Creation time.
    pub created: Timestamp,
    /// When the code was exchanged; a second exchange is a replay.
    pub used_at: Option<Timestamp>,
    /// RFC 8707 resources the user authorized, space-separated ("" when the request named
    /// none).
    pub resource: String,
}

/// An authorization code to insert.
#[derive(Clone, Debug)]
pub struct NewGrant {
    /// The user who authorized.
    pub user_id: i64,
    /// SHA-256 checksum of the code.
    pub code_checksum: String,
    /// The client.
    pub application_id: i64,
    /// Expiry.
    pub expires: Timestamp,
    /// The redirect URI of the authorization request.
    pub redirect_uri: String,
    /// Granted scopes.
    pub scope: String,
    /// The PKCE challenge, if any.
    pub pkce: Option<PkceChallenge>,
    /// OIDC nonce.
    pub nonce: String,
    /// OIDC claims request (JSON).
    pub claims: String,
    /// OIDC `auth_time`.
    pub auth_time: Option<Timestamp>,
    /// Creation time.
    pub created: Timestamp,
    /// RFC 8707 resources the user authorized, space-separated ("" when the request named
    /// none).
    pub resource: String,
}

/// An access token, stored by checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AccessToken {
    /// Primary key.
    pub id: i64,
    /// The resource owner (None for client credentials).
    pub user_id: Option<i64>,
    /// The refresh token this one was issued from by a refresh grant.
    pub source_refresh_token_id: Option<i64>,
    /// SHA-256 checksum of the token.
    pub token_checksum: String,
    /// The ID token issued with it.
    pub id_token_id: Option<i64>,
    /// The client.
    pub application_id: Option<i64>,
    /// The authorization code it was issued from.
    pub grant_id: Option<i64>,
    /// Expiry.
    pub expires: Timestamp,
    /// Scopes, space-separated.
    pub scope: String,
    /// Creation time.
    pub created: Timestamp,
    /// Its audience: RFC 8707 resources, space-separated ("" when none was asked for,
    /// and the token is not restricted to one).
    pub resource: String,
}

impl AccessToken {
    /// DOT's `is_expired`: expired once `now >= expires`.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires
    }
}

/// An access token with what a resource server or introspection answer needs from the
/// related rows, fetched in one query.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct AccessTokenDetails {
    /// The token row.
    #[cfg_attr(feature = "sqlx", sqlx(flatten))]
    pub token: AccessToken,
    /// The application's client id.
    pub client_id: Option<String>,
    /// The user's username.
    pub username: Option<String>,
    /// Whether the token's user is active (`None` for a token without a user): read in
    /// the same query, so that checking a token of a deactivated user costs no extra
    /// lookup.
    pub user_active: Option<bool>,
}

/// An access token to insert.
#[derive(Clone, Debug)]
pub struct NewAccessToken {
    /// SHA-256 checksum of the token.
    pub token_checksum: String,
    /// The client.
    pub application_id: Option<i64>,
    /// The resource owner.
    pub user_id: Option<i64>,
    /// The refresh token it was issued from.
    pub source_refresh_token_id: Option<i64>,
    /// The ID token issued with it.
    pub id_token_id: Option<i64>,
    /// The authorization code it was issued from.
    pub grant_id: Option<i64>,
    /// Expiry.
    pub expires: Timestamp,
    /// Scopes, space-separated.
    pub scope: String,
    /// Creation time.
    pub created: Timestamp,
    /// Its audience: RFC 8707 resources, space-separated ("" when none was asked for,
    /// and the token is not restricted to one).
    pub resource: String,
}

/// A refresh token, stored by checksum.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct RefreshToken {
    /// Primary key.
    pub id: i64,
    /// The resource owner.
    pub user_id: Option<i64>,
    /// SHA-256 checksum of the token.
    pub token_checksum: String,
    /// The client.
    pub application_id: i64,
    /// The access token it is paired with (None once revoked or orphaned).
    pub access_token_id: Option<i64>,
    /// Every token descended from one original grant shares a family (a UUID).
    pub token_family: Option<String>,
    /// Creation time.
    pub created: Timestamp,
    /// When it was revoked (rotation or explicit revocation).
    pub revoked: Option<Timestamp>,
    /// The RFC 8707 resources it may get access tokens for, space-separated ("" for no
    /// restriction): the whole set granted, which a refresh request may narrow for one
    /// access token without narrowing it for the next.
    pub resource: String,
}

/// A refresh token to insert. `access_token_id` is normally set by
/// [`crate::store::Store::issue_tokens`].
#[derive(Clone, Debug)]
pub struct NewRefreshToken {
    /// SHA-256 checksum of the token.
    pub token_checksum: String,
    /// The client.
    pub application_id: i64,
    /// The resource owner.
    pub user_id: Option<i64>,
    /// The paired access token.
    pub access_token_id: Option<i64>,
    /// The token family (a fresh UUID for a new grant, the parent's on rotation).
    pub token_family: Option<String>,
    /// Creation time.
    pub created: Timestamp,
    /// The RFC 8707 resources it may get access tokens for, space-separated ("" for no
    /// restriction): the whole set granted, which a refresh request may narrow for one
    /// access token without narrowing it for the next.
    pub resource: String,
}

/// A new token family identifier (a random UUID, as DOT's `token_family`).
pub fn new_token_family() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// An issued OpenID Connect ID token, remembered by its `jti`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct IdToken {
    /// Primary key.
    pub id: i64,
    /// The subject.
    pub user_id: Option<i64>,
    /// The `jti` claim (a UUID).
    pub jti: String,
    /// The audience client.
    pub application_id: Option<i64>,
    /// Expiry.
    pub expires: Timestamp,
    /// Scopes, space-separated.
    pub scope: String,
    /// Creation time.
    pub created: Timestamp,
}

/// An ID token to insert.
#[derive(Clone, Debug)]
pub struct NewIdToken {
    /// The subject.
    pub user_id: Option<i64>,
    /// The `jti` claim.
    pub jti: String,
    /// The audience client.
    pub application_id: Option<i64>,
    /// Expiry.
    pub expires: Timestamp,
    /// Scopes.
    pub scope: String,
    /// Creation time.
    pub created: Timestamp,
}

/// An RFC 8628 device authorization grant.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct DeviceGrant {
    /// Primary key.
    pub id: i64,
    /// The user who claimed it, once claimed.
    pub user_id: Option<i64>,
    /// SHA-256 checksum of the device code.
    pub device_code_checksum: String,
    /// SHA-256 checksum of the normalised user code.
    pub user_code_checksum: String,
    /// Requested scopes.
    pub scope: String,
    /// Minimum polling interval, seconds (column `poll_interval`).
    #[cfg_attr(feature = "sqlx", sqlx(rename = "poll_interval"))]
    pub interval: i64,
    /// Expiry.
    pub expires: Timestamp,
    /// Status.
    #[cfg_attr(feature = "sqlx", sqlx(try_from = "String"))]
    pub status: DeviceGrantStatus,
    /// The client id (not a foreign key, as in DOT).
    pub client_id: String,
    /// Last poll (for `slow_down`); until the first poll, one interval before `created`,
    /// so that the first poll is never too soon.
    pub last_checked: Timestamp,
    /// Creation time.
    pub created: Timestamp,
}

/// A device grant to insert.
#[derive(Clone, Debug)]
pub struct NewDeviceGrant {
    /// SHA-256 checksum of the device code.
    pub device_code_checksum: String,
    /// SHA-256 checksum of the normalised user code.
    pub user_code_checksum: String,
    /// Requested scopes.
    pub scope: String,
    /// Polling interval, seconds.
    pub interval: i64,
    /// Expiry.
    pub expires: Timestamp,
    /// The client id.
    pub client_id: String,
    /// Creation time.
    pub created: Timestamp,
}

mod registration;
pub use registration::{NewRegistration, Registration};

mod into_row;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_through_their_stored_form() {
        for v in ClientType::ALL {
            assert_eq!(v.as_str().parse::<ClientType>().unwrap(), *v);
        }
        for v in GrantType::ALL {
            assert_eq!(v.as_str().parse::<GrantType>().unwrap(), *v);
        }
        for v in Algorithm::ALL {
            assert_eq!(v.as_str().parse::<Algorithm>().unwrap(), *v);
        }
        for v in DeviceGrantStatus::ALL {
            assert_eq!(v.as_str().parse::<DeviceGrantStatus>().unwrap(), *v);
        }
        assert_eq!(
            "device-code".parse::<GrantType>().unwrap(),
            GrantType::DeviceCode
        );
    }

    #[test]
    fn bad_enum_value_names_the_choices() {
        let err = "secret".parse::<ClientType>().unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"secret\" is not a valid client type"),
            "{msg}"
        );
        assert!(msg.contains("\"confidential\""), "{msg}");
    }

    #[test]
    fn debug_redacts_secrets() {
        let mut app = NewApplication::new("id", ClientType::Confidential, GrantType::Password);
        app.client_secret = "hunter2-hunter2".into();
        assert!(!format!("{app:?}").contains("hunter2"));
    }

    #[test]
    fn timestamps_saturate() {
        assert_eq!(Timestamp(i64::MAX).add_secs(5), Timestamp(i64::MAX));
        assert_eq!(Timestamp(10).minus(Duration::from_secs(3)), Timestamp(7));
    }
}
