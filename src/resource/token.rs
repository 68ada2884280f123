//! [`TokenInfo`]: what a validated bearer token says, put into the request extensions.

use serde_json::{Map, Value};

use crate::scope::Scopes;

/// A validated access token: who it was issued to, for what, until when.
///
/// The [`Bearer`](super::Bearer) service inserts an `Arc<TokenInfo>` into the request
/// extensions before calling the inner service; handlers read it from there (or with
/// the axum extractor).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TokenInfo {
    /// Always true for a token that passed validation (RFC 7662 `active`).
    pub active: bool,
    /// The scopes granted.
    pub scopes: Scopes,
    /// The client the token was issued to.
    pub client_id: Option<String>,
    /// The resource owner's username, when there is one.
    pub username: Option<String>,
    /// The subject (the user's identifier; for client-credentials tokens often the client).
    pub sub: Option<String>,
    /// Expiry, seconds since the Unix epoch.
    pub exp: Option<i64>,
    /// Issue time, seconds since the Unix epoch.
    pub iat: Option<i64>,
    /// Audiences (RFC 7662 `aud`, RFC 8707 resources).
    pub aud: Vec<String>,
    /// Every claim or introspection member as received (empty for local lookups).
    pub claims: Map<String, Value>,
}

impl TokenInfo {
    /// Whether the token carries every one of `scopes`.
    pub fn has_scopes<'a>(&self, scopes: impl IntoIterator<Item = &'a str>) -> bool {
        scopes.into_iter().all(|s| self.scopes.contains(s))
    }
}
