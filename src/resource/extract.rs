//! axum extractors for the validated token (feature `axum`).
//!
//! * [`BearerToken`]: the `Arc<TokenInfo>` the [`BearerLayer`](super::BearerLayer) put in
//!   the request. If the layer did not run (a routing mistake), the extractor answers
//!   like the layer would for a request without a token — 401 with `WWW-Authenticate` —
//!   rather than axum's 500 for a missing extension: failing closed, and telling the
//!   client what to do.
//! * `Option<BearerToken>`: `None` when there is no token. Pair it with
//!   [`BearerLayer::optional`](super::BearerLayer::optional), which lets requests without
//!   a token through (a request with a *bad* token is still refused), for endpoints that
//!   also serve anonymous or session users — DOT's `IsAuthenticatedOrTokenHasScope`.
//!
//! ```no_run
//! use axum::{routing::get, Router};
//! use tower_oauth_toolkit::resource::extract::BearerToken;
//!
//! async fn me(BearerToken(token): BearerToken) -> String {
//!     format!("client {:?}, scopes {}", token.client_id, token.scopes)
//! }
//! async fn maybe(token: Option<BearerToken>) -> &'static str {
//!     if token.is_some() { "hello, token holder" } else { "hello, stranger" }
//! }
//! # fn app(layer: tower_oauth_toolkit::resource::BearerLayer<tower_oauth_toolkit::resource::StoreValidator<tower_oauth_toolkit::store::memory::MemoryStore>>) {
//! let app: Router = Router::new().route("/me", get(me)).route("/maybe", get(maybe)).layer(layer);
//! # }
//! ```

use std::ops::Deref;
use std::sync::Arc;

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;

use super::error::BearerError;
use super::token::TokenInfo;

/// The validated bearer token of the request.
#[derive(Clone, Debug)]
pub struct BearerToken(pub Arc<TokenInfo>);

impl Deref for BearerToken {
    type Target = TokenInfo;
    fn deref(&self) -> &TokenInfo {
        &self.0
    }
}

/// The extractor's rejection: the RFC 6750 answer to a request without a token.
#[derive(Debug)]
pub struct MissingBearerToken;

impl IntoResponse for MissingBearerToken {
    fn into_response(self) -> Response {
        tracing::warn!("BearerToken extracted on a route without a BearerLayer");
        BearerError::Missing
            .to_response("api", false)
            .map(axum_core::body::Body::from)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for BearerToken {
    type Rejection = MissingBearerToken;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Arc<TokenInfo>>()
            .cloned()
            .map(BearerToken)
            .ok_or(MissingBearerToken)
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for BearerToken {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<Arc<TokenInfo>>()
            .cloned()
            .map(BearerToken))
    }
}
