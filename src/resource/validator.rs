//! The [`TokenValidator`] trait and [`StoreValidator`], the local lookup in the crate's
//! own [`Store`] (the same database as the provider).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::audience::AudienceCheck;
use super::cache::{CacheEntry, TokenCache};
use super::error::BearerError;
use super::token::TokenInfo;
use crate::crypto::{token_checksum, token_key};
use crate::model::{AccessTokenDetails, Timestamp};
use crate::scope::Scopes;
use crate::store::Store;

/// A boxed validation future, for validators whose work is asynchronous.
pub type BoxValidation = Pin<Box<dyn Future<Output = Result<Arc<TokenInfo>, BearerError>> + Send>>;

/// Checks a bearer token. Modelled on tower-http's `AsyncAuthorizeRequest`: the future is
/// an associated type so the layer's `ResponseFuture` can hold it without boxing.
///
/// Answer `Err(BearerError::InvalidToken)` for a token that is not good,
/// `Err(BearerError::Unavailable)` when it cannot be checked now; never the former for the
/// latter.
pub trait TokenValidator: Clone + Send + Sync + 'static {
    /// The validation future.
    type Future: Future<Output = Result<Arc<TokenInfo>, BearerError>> + Send + 'static;
    /// Validates `token` (the raw bearer value). It is handed over owned: the layer has
    /// already copied it out of the request, and the future must own it anyway.
    fn validate(&self, token: String) -> Self::Future;

    /// Answers at once, without I/O or waiting, when the validator can (a cache hit, a JWT
    /// whose key is at hand); `None` means "ask [`validate`](Self::validate)". The layer
    /// tries this first: on `Some` it calls the inner service straight away, without
    /// cloning it or allocating a validation future. The default is `None`.
    fn validate_now(&self, token: &str) -> Option<Result<Arc<TokenInfo>, BearerError>> {
        let _ = token;
        None
    }
}

impl<F, Fut> TokenValidator for F
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Arc<TokenInfo>, BearerError>> + Send + 'static,
{
    type Future = Fut;
    fn validate(&self, token: String) -> Fut {
        self(token)
    }
}

/// Validates tokens by looking their checksum up in a [`Store`].
///
/// When the store keeps its own revocation-aware cache (`SqlOptions::token_cache`, on in
/// `oauth-toolkit serve`), a known token is answered from it without I/O and without
/// allocating, and a revocation in this process is seen by the next request. The
/// optional [`with_cache`](Self::with_cache) is the resource side's own cache instead: it
/// does not hear of revocations, so a revoked token stays usable for at most its bound.
pub struct StoreValidator<S> {
    store: Arc<S>,
    cache: Option<TokenCache>,
    audience: Option<AudienceCheck>,
    allow_missing_audience: bool,
}

impl<S> Clone for StoreValidator<S> {
    fn clone(&self) -> Self {
        StoreValidator {
            store: self.store.clone(),
            cache: self.cache.clone(),
            audience: self.audience.clone(),
            allow_missing_audience: self.allow_missing_audience,
        }
    }
}

impl<S: Store> StoreValidator<S> {
    /// A validator over `store`, without cache.
    pub fn new(store: Arc<S>) -> Self {
        StoreValidator {
            store,
            cache: None,
            audience: None,
            allow_missing_audience: false,
        }
    }

    /// Accept only tokens issued for `resource` (their RFC 8707 audience names it); see
    /// [`audience`](super::audience) for why, and for tokens without an audience.
    pub fn with_audience(mut self, resource: impl Into<String>) -> Self {
        self.audience =
            Some(AudienceCheck::new([resource.into()]).allow_missing(self.allow_missing_audience));
        self
    }

    /// With [`with_audience`](Self::with_audience): also accept tokens issued without
    /// any resource (default: refused).
    pub fn allow_tokens_without_audience(mut self, allow: bool) -> Self {
        self.allow_missing_audience = allow;
        self.audience = self.audience.map(|a| a.allow_missing(allow));
        self
    }

    /// Caches answers for at most `max_ttl` (never past the token's expiry), up to
    /// `capacity` tokens.
    pub fn with_cache(mut self, max_ttl: Duration, capacity: u64) -> Self {
        self.cache = Some(TokenCache::new(capacity, max_ttl, Duration::ZERO));
        self
    }

    async fn lookup(store: Arc<S>, token: String) -> Result<CacheEntry, BearerError> {
        let details = store
            .find_access_token(&token_checksum(&token))
            .await
            .map_err(|e| BearerError::Unavailable(format!("token store: {e}")))?;
        match details {
            Some(d) if is_good(&d, Timestamp::now()) => {
                Ok(CacheEntry::active(Arc::new(token_info(&d))))
            }
            _ => Ok(CacheEntry::inactive()),
        }
    }
}

/// Not expired, and its user (if any) still active.
fn is_good(details: &AccessTokenDetails, now: Timestamp) -> bool {
    !details.token.is_expired(now) && details.user_active != Some(false)
}

fn token_info(details: &AccessTokenDetails) -> TokenInfo {
    TokenInfo {
        active: true,
        scopes: Scopes::parse(&details.token.scope).unwrap_or_default(),
        client_id: details.client_id.clone(),
        username: details.username.clone(),
        sub: details.token.user_id.map(|u| u.to_string()),
        exp: Some(details.token.expires.unix()),
        iat: Some(details.token.created.unix()),
        aud: details
            .token
            .resource
            .split_ascii_whitespace()
            .map(str::to_owned)
            .collect(),
        claims: serde_json::Map::new(),
    }
}

impl<S: Store> TokenValidator for StoreValidator<S> {
    type Future = BoxValidation;

    fn validate_now(&self, token: &str) -> Option<Result<Arc<TokenInfo>, BearerError>> {
        let digest = token_key(token);
        if let Some(cache) = &self.cache {
            return cache
                .get_now(&digest)
                .map(|o| AudienceCheck::apply(self.audience.as_ref(), o));
        }
        let hit = self.store.cached_access_token(&digest)?;
        let outcome = match hit.details() {
            Some(d) if is_good(d, Timestamp::now()) => {
                // The slot holds a `TokenInfo` unless another reader of the cache put
                // something else there first: then build one.
                Ok(hit
                    .derived(token_info)
                    .unwrap_or_else(|| Arc::new(token_info(d))))
            }
            _ => CacheEntry::inactive().into_result(),
        };
        Some(AudienceCheck::apply(self.audience.as_ref(), outcome))
    }

    fn validate(&self, token: String) -> BoxValidation {
        let store = self.store.clone();
        let audience = self.audience.clone();
        match self.cache.clone() {
            None => Box::pin(async move {
                let outcome = Self::lookup(store, token).await?.into_result();
                AudienceCheck::apply(audience.as_ref(), outcome)
            }),
            Some(cache) => {
                let key = token_key(&token);
                Box::pin(async move {
                    let outcome = cache.get_or_load(key, Self::lookup(store, token)).await;
                    AudienceCheck::apply(audience.as_ref(), outcome)
                })
            }
        }
    }
}
