//! The form-encoded body parameter method (RFC 6750 §2.2), off by default.
//!
//! [`BearerLayer::allow_form_body`] turns a [`BearerLayer`] into a [`FormBearerLayer`]. Its
//! service looks for the token where the plain layer does (header, and the query when
//! allowed) and, **only when neither carries one**, in the `access_token` field of a
//! request body that meets RFC 6750 §2.2: `Content-Type: application/x-www-form-urlencoded`
//! and a method whose body has meaning (not GET, HEAD, OPTIONS, TRACE, CONNECT, DELETE).
//! Such a body is read into memory (up to a limit) and handed on intact to the inner
//! service, which can still read every field; trailers of a form body are not kept.
//!
//! The body is rebuilt with `B::from(Bytes)`, so the request body type must implement
//! `From<Bytes>` — axum's `Body` and `http_body_util::Full<Bytes>` do; with hyper's
//! `Incoming`, map the body first. Each request through this variant costs one boxed
//! future; the header-only [`BearerLayer`] has none.
//!
//! ```
//! use std::sync::Arc;
//! use tower::{service_fn, Layer, ServiceExt};
//! use tower_oauth_toolkit::resource::{BearerLayer, StoreValidator};
//! use tower_oauth_toolkit::store::memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let validator = StoreValidator::new(Arc::new(MemoryStore::new()));
//! type Body = http_body_util::Full<bytes::Bytes>;
//! let api = service_fn(|_req: http::Request<Body>| async move {
//!     Ok::<_, std::convert::Infallible>(http::Response::new(Body::default()))
//! });
//! let protected = BearerLayer::new(validator).allow_form_body(16 * 1024).layer(api);
//! let req = http::Request::post("/")
//!     .header("content-type", "application/x-www-form-urlencoded")
//!     .body(Body::from("access_token=unknown&x=1"))
//!     .unwrap();
//! assert_eq!(protected.oneshot(req).await.unwrap().status(), 401); // looked up, unknown
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{header, Method, Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::error::BearerError;
use super::validator::TokenValidator;
use super::{find_token, form_token, Bearer, BearerLayer, ResponseBody};

/// The default largest form body read in search of a token: 64 KiB.
pub const DEFAULT_FORM_BODY_LIMIT: usize = 64 * 1024;

/// A [`BearerLayer`] that also accepts the token in a form-encoded body. See the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct FormBearerLayer<V> {
    layer: BearerLayer<V>,
    limit: usize,
}

impl<V: TokenValidator> BearerLayer<V> {
    /// Also accept the token as the `access_token` field of an
    /// `application/x-www-form-urlencoded` body (RFC 6750 §2.2), reading at most `limit`
    /// bytes of such a body (a larger one is refused with `invalid_request`). Off by
    /// default; see [`form`](super::form) for the conditions and the cost.
    pub fn allow_form_body(self, limit: usize) -> FormBearerLayer<V> {
        FormBearerLayer { layer: self, limit }
    }
}

impl<S, V: Clone> Layer<S> for FormBearerLayer<V> {
    type Service = FormBearer<S, V>;
    fn layer(&self, inner: S) -> FormBearer<S, V> {
        FormBearer {
            bearer: self.layer.layer(inner),
            limit: self.limit,
        }
    }
}

/// The service made by [`FormBearerLayer`].
#[derive(Clone, Debug)]
pub struct FormBearer<S, V> {
    bearer: Bearer<S, V>,
    limit: usize,
}

/// Whether RFC 6750 §2.2 allows a token in this request's body.
fn form_candidate<B>(req: &Request<B>) -> bool {
    let method_ok = !matches!(
        *req.method(),
        Method::GET
            | Method::HEAD
            | Method::OPTIONS
            | Method::TRACE
            | Method::CONNECT
            | Method::DELETE
    );
    method_ok && is_form_urlencoded(req.headers())
}

/// Whether the request's `Content-Type` is `application/x-www-form-urlencoded` (any
/// parameters after `;` aside). The one check of it in the crate: the form-body bearer
/// method here, and the provider's form endpoints.
pub(crate) fn is_form_urlencoded(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| {
            essence
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Reads a whole body, refusing more than `limit` bytes.
async fn read_limited<B: Body>(body: B, limit: usize) -> Result<Bytes, BearerError> {
    let too_large =
        || BearerError::InvalidRequest(format!("the form body is larger than {limit} bytes"));
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let mut body = std::pin::pin!(body);
    let mut buf = BytesMut::new();
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        let frame = frame.map_err(|_| {
            BearerError::InvalidRequest("the request body could not be read".into())
        })?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.remaining() > limit {
                return Err(too_large());
            }
            buf.put(data);
        }
    }
    Ok(buf.freeze())
}

type BoxResponseFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, V, B, ResBody> Service<Request<B>> for FormBearer<S, V>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    V: TokenValidator,
    B: Body + From<Bytes> + Send + 'static,
    B::Data: Send,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxResponseFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.bearer.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let from_header = match find_token(&req, self.bearer.shared.config.allow_query) {
            Ok(Some(token)) => Some(Ok(self.bearer.decide(Ok(Some(&token))))),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        };
        match from_header {
            Some(Ok(decision)) => return Box::pin(self.bearer.dispatch(req, decision)),
            Some(Err(e)) => {
                let decision = self.bearer.decide(Err(e));
                return Box::pin(self.bearer.dispatch(req, decision));
            }
            None if !form_candidate(&req) => {
                let decision = self.bearer.decide(Ok(None));
                return Box::pin(self.bearer.dispatch(req, decision));
            }
            None => {}
        }
        // The ready service goes into the future, a clone stays (see `Bearer::dispatch`).
        let clone = self.bearer.clone();
        let mut bearer = std::mem::replace(&mut self.bearer, clone);
        let limit = self.limit;
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let (body, decision) = match read_limited(body, limit).await {
                // Refused: the inner service is not called, the empty body is never read.
                Err(e) => (Bytes::new(), bearer.decide(Err(e))),
                Ok(bytes) => {
                    let decision = match form_token(&bytes, "access_token field") {
                        Ok(token) => bearer.decide(Ok(token.as_deref())),
                        Err(e) => bearer.decide(Err(e)),
                    };
                    (bytes, decision)
                }
            };
            bearer
                .dispatch(Request::from_parts(parts, B::from(body)), decision)
                .await
        })
    }
}
