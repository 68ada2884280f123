//! Audience checks: a token is accepted only by the resource it was issued for.
//!
//! An authorization server that serves several APIs issues tokens that each of them
//! could accept: without a check, a token a client obtained for API A — or that A itself
//! received and replays — is good at API B too (the *confused deputy*: B acts on a
//! token that was never meant for it). RFC 8707 lets the client ask for a token for one
//! resource, the server records it as the token's audience (RFC 7662 / RFC 9068 `aud`),
//! and the resource refuses a token whose audience does not name it (RFC 9068 §4, RFC
//! 9700 §2.3).
//!
//! Every validator takes the resource's identifier — [`StoreValidator::with_audience`],
//! [`IntrospectionBuilder::audience`], [`JwtValidatorBuilder::audience`] — and then
//! answers 401 `invalid_token` for a token whose audience does not contain it. A token
//! with no audience at all (issued without `resource`, by a server that does not record
//! one) is refused too, unless `allow_tokens_without_audience(true)` says otherwise: turn
//! that on only while clients that do not send `resource` are still being migrated.
//!
//! Which audience a token issued without `resource` has depends on where it is read:
//! this crate's provider *reports* OAUTH2_PROTECTED_RESOURCE_IDENTIFIER as the `aud` of
//! such tokens in introspection answers and JWT access tokens (DOT's behaviour: the
//! server's one default resource), so introspection and JWT validators configured with
//! that identifier accept them; the store validator reads the token's own row, where
//! such a token has no audience, and accepts it only with
//! `allow_tokens_without_audience(true)`.
//!
//! [`StoreValidator::with_audience`]: super::StoreValidator::with_audience
//! [`IntrospectionBuilder::audience`]: super::introspection::IntrospectionBuilder::audience
//! [`JwtValidatorBuilder::audience`]: super::jwt::JwtValidatorBuilder::audience

use std::sync::Arc;

use super::error::BearerError;
use super::token::TokenInfo;

/// The audiences a validator accepts. See the [module docs](self).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudienceCheck {
    accepted: Arc<[String]>,
    allow_missing: bool,
}

impl AudienceCheck {
    /// Accepts tokens whose audience names one of `accepted`.
    pub fn new<I, T>(accepted: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        AudienceCheck {
            accepted: accepted.into_iter().map(Into::into).collect(),
            allow_missing: false,
        }
    }

    /// Also accept tokens that carry no audience at all (default: refused).
    pub fn allow_missing(mut self, allow: bool) -> Self {
        self.allow_missing = allow;
        self
    }

    /// Whether tokens without an audience pass.
    pub fn allows_missing(&self) -> bool {
        self.allow_missing
    }

    /// The accepted audiences.
    pub fn accepted(&self) -> &[String] {
        &self.accepted
    }

    /// `Ok` for a token meant for this resource; 401 `invalid_token` otherwise. A token
    /// whose claims hold an `aud` that is not a string or a list of strings has an
    /// audience that names nothing.
    pub fn check(&self, info: &TokenInfo) -> Result<(), BearerError> {
        if info.aud.iter().any(|a| self.accepted.contains(a)) {
            return Ok(());
        }
        let absent = info.aud.is_empty() && !info.claims.contains_key("aud");
        if absent && self.allow_missing {
            return Ok(());
        }
        Err(BearerError::InvalidToken(if absent {
            "The access token has no audience; this resource accepts only tokens issued for it."
                .into()
        } else {
            "The access token was issued for another resource.".into()
        }))
    }

    /// [`check`](Self::check) on a validation outcome.
    pub(crate) fn apply(
        check: Option<&AudienceCheck>,
        outcome: Result<Arc<TokenInfo>, BearerError>,
    ) -> Result<Arc<TokenInfo>, BearerError> {
        match (check, outcome) {
            (Some(c), Ok(info)) => c.check(&info).map(|()| info),
            (_, outcome) => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(aud: &[&str]) -> TokenInfo {
        TokenInfo {
            active: true,
            aud: aud.iter().map(|s| s.to_string()).collect(),
            ..TokenInfo::default()
        }
    }

    #[test]
    fn audiences() {
        let c = AudienceCheck::new(["https://b.example"]);
        assert!(c.check(&token(&["https://b.example"])).is_ok());
        assert!(c
            .check(&token(&["https://a.example", "https://b.example"]))
            .is_ok());
        assert!(c.check(&token(&["https://a.example"])).is_err());
        assert!(
            c.check(&token(&[])).is_err(),
            "no audience: refused by default"
        );
        let lenient = c.clone().allow_missing(true);
        assert!(lenient.check(&token(&[])).is_ok());
        assert!(lenient.check(&token(&["https://a.example"])).is_err());
        // An `aud` claim that named nothing usable is not "no audience".
        let mut odd = token(&[]);
        odd.claims.insert("aud".into(), serde_json::json!({"a": 1}));
        assert!(lenient.check(&odd).is_err());
    }
}
