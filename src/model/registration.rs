//! Dynamic client registrations (RFC 7591): the `oauth2_registration` rows.

use super::Timestamp;

/// An RFC 7591 dynamic registration: the registration access token of a dynamically
/// registered client (stored by checksum) and the metadata it was registered with.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "sqlx", derive(sqlx::FromRow))]
pub struct Registration {
    /// Primary key.
    pub id: i64,
    /// The registered client.
    pub application_id: i64,
    /// SHA-256 checksum of the registration access token.
    pub token_checksum: String,
    /// The token's scope (DCR_REGISTRATION_SCOPE when it was issued).
    pub scope: String,
    /// When the token expires (`None`: never).
    pub expires: Option<Timestamp>,
    /// The client metadata as registered (a JSON object).
    pub metadata: String,
    /// Registration time.
    pub created: Timestamp,
    /// When a cleanup run first saw a token or code of the client (`None`: never).
    pub used: Option<Timestamp>,
}

impl Registration {
    /// Whether the registration access token still works at `now`.
    pub fn token_is_live(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

/// A registration to insert with its application.
#[derive(Clone, Debug)]
pub struct NewRegistration {
    /// SHA-256 checksum of the registration access token.
    pub token_checksum: String,
    /// The token's scope.
    pub scope: String,
    /// When the token expires (`None`: never).
    pub expires: Option<Timestamp>,
    /// The client metadata (a JSON object).
    pub metadata: String,
    /// Registration time.
    pub created: Timestamp,
}

impl NewRegistration {
    /// The stored row under primary key `id`, for `application_id`.
    pub fn into_row(self, id: i64, application_id: i64) -> Registration {
        Registration {
            id,
            application_id,
            token_checksum: self.token_checksum,
            scope: self.scope,
            expires: self.expires,
            metadata: self.metadata,
            created: self.created,
            used: None,
        }
    }
}
