//! The resource-server side: a tower layer that lets a request through only with a valid
//! bearer token (RFC 6750).
//!
//! [`BearerLayer`] wraps any `Service<http::Request<B>>` (axum routers, hyper services,
//! tonic, …). For each request it reads the token from `Authorization: Bearer …`, asks a
//! [`TokenValidator`] about it, checks the [`ScopePolicy`], inserts the validated
//! `Arc<`[`TokenInfo`]`>` into the request extensions, and calls the inner service. A
//! rejected request is answered by the layer itself — the inner service is not called —
//! with the RFC 6750 status, `WWW-Authenticate` header and a JSON body ([`BearerError`]).
//!
//! Validators: [`StoreValidator`] (the crate's own database), `IntrospectionValidator`
//! (RFC 7662, feature `introspection`), or any closure `Fn(String) -> impl Future`.
//!
//! ```
//! use std::sync::Arc;
//! use tower::{service_fn, Layer, ServiceExt};
//! use tower_oauth_toolkit::resource::{BearerLayer, ScopePolicy, StoreValidator, TokenInfo};
//! use tower_oauth_toolkit::store::memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let validator = StoreValidator::new(Arc::new(MemoryStore::new()));
//! let api = service_fn(|req: http::Request<String>| async move {
//!     let token = req.extensions().get::<Arc<TokenInfo>>().unwrap();
//!     Ok::<_, std::convert::Infallible>(http::Response::new(format!("hello {:?}", token.client_id)))
//! });
//! let protected = BearerLayer::new(validator)
//!     .with_policy(ScopePolicy::required("read"))
//!     .layer(api);
//! let res = protected.oneshot(http::Request::new(String::new())).await.unwrap();
//! assert_eq!(res.status(), 401); // no token
//! # }
//! ```
//!
//! ## Differences from DOT
//! DOT answers every failure with a bare 403. This layer follows RFC 6750: 401 for a
//! missing or bad token, 400 for a malformed request, 403 only for missing scopes, and 503
//! — never 401, never a pass — when the token cannot be checked.

pub mod cache;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
#[cfg(feature = "introspection")]
pub mod introspection;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod scope;
pub mod token;
pub mod validator;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

pub use cache::TokenCache;
pub use error::BearerError;
#[cfg(feature = "introspection")]
pub use introspection::{IntrospectionAuth, IntrospectionValidator};
#[cfg(feature = "jwt")]
pub use jwt::JwtValidator;
pub use scope::ScopePolicy;
pub use token::TokenInfo;
pub use validator::{BoxValidation, StoreValidator, TokenValidator};

/// Options shared by every request of one layer.
#[derive(Clone, Debug)]
struct Config {
    realm: String,
    policy: ScopePolicy,
    allow_query: bool,
    error_with_scopes: bool,
    optional: bool,
}

/// A [`Layer`] that requires a valid bearer token. See the [module docs](self).
#[derive(Clone, Debug)]
pub struct BearerLayer<V> {
    validator: V,
    config: Arc<Config>,
}

impl<V: TokenValidator> BearerLayer<V> {
    /// Requires a token that `validator` accepts, any scope, realm `"api"`.
    pub fn new(validator: V) -> Self {
        BearerLayer {
            validator,
            config: Arc::new(Config {
                realm: "api".into(),
                policy: ScopePolicy::Authenticated,
                allow_query: false,
                error_with_scopes: false,
                optional: false,
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The scopes requests need.
    pub fn with_policy(mut self, policy: ScopePolicy) -> Self {
        self.config_mut().policy = policy;
        self
    }

    /// The `realm` of `WWW-Authenticate` answers.
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.config_mut().realm = realm.into();
        self
    }

    /// Also accept the token in the `access_token` query parameter (RFC 6750 §2.3; off by
    /// default, and RFC 9700 advises against it: URLs end up in logs).
    pub fn allow_query_parameter(mut self, allow: bool) -> Self {
        self.config_mut().allow_query = allow;
        self
    }

    /// Let requests *without* a token through, with no `TokenInfo` in their extensions
    /// (a request with a bad token, or too few scopes, is still refused). For endpoints
    /// that also serve anonymous users or another authentication — DOT's
    /// `IsAuthenticatedOrTokenHasScope`; read the token with `Option<BearerToken>`.
    pub fn optional(mut self) -> Self {
        self.config_mut().optional = true;
        self
    }

    /// Name the required scopes in `insufficient_scope` answers (DOT's
    /// ERROR_RESPONSE_WITH_SCOPES).
    pub fn error_response_with_scopes(mut self, on: bool) -> Self {
        self.config_mut().error_with_scopes = on;
        self
    }
}

impl<S, V: Clone> Layer<S> for BearerLayer<V> {
    type Service = Bearer<S, V>;
    fn layer(&self, inner: S) -> Bearer<S, V> {
        Bearer {
            inner,
            validator: self.validator.clone(),
            config: self.config.clone(),
        }
    }
}

/// The service made by [`BearerLayer`].
#[derive(Clone, Debug)]
pub struct Bearer<S, V> {
    inner: S,
    validator: V,
    config: Arc<Config>,
}

impl<S, V> Bearer<S, V> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

/// RFC 6750 §2.1 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// Finds the bearer token of a request (RFC 6750 §2): `Ok(None)` when there is none,
/// `Err` for a malformed request. Never panics, whatever the header bytes.
pub fn extract_token<B>(
    req: &Request<B>,
    allow_query: bool,
) -> Result<Option<String>, BearerError> {
    let mut found: Option<String> = None;
    let mut headers = req.headers().get_all(header::AUTHORIZATION).iter();
    if let Some(value) = headers.next() {
        if headers.next().is_some() {
            return Err(BearerError::InvalidRequest(
                "more than one Authorization header".into(),
            ));
        }
        let value = value.to_str().map_err(|_| {
            BearerError::InvalidRequest("the Authorization header is not visible ASCII".into())
        })?;
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("bearer") {
            if !is_b64token(rest) {
                return Err(BearerError::InvalidRequest(
                    "the Authorization header must be \"Bearer\", one space, and a token".into(),
                ));
            }
            found = Some(rest.to_owned());
        }
        // Another scheme (Basic, …) carries no bearer token: treated as absent.
    }
    if allow_query {
        if let Some(query) = req.uri().query() {
            for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
                if k == "access_token" {
                    if found.is_some() {
                        return Err(BearerError::InvalidRequest(
                            "the token was sent in more than one way".into(),
                        ));
                    }
                    if !is_b64token(&v) {
                        return Err(BearerError::InvalidRequest(
                            "malformed access_token parameter".into(),
                        ));
                    }
                    found = Some(v.into_owned());
                }
            }
        }
    }
    Ok(found)
}

impl<S, V, B, ResBody> Service<Request<B>> for Bearer<S, V>
where
    S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    V: TokenValidator,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, V, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let token = match extract_token(&req, self.config.allow_query) {
            Ok(Some(token)) => token,
            Ok(None) if self.config.optional => {
                return ResponseFuture {
                    state: State::Inner {
                        fut: self.inner.call(req),
                    },
                    req: None,
                    inner: None,
                    config: self.config.clone(),
                };
            }
            Ok(None) => return ResponseFuture::reject(BearerError::Missing, &self.config),
            Err(e) => return ResponseFuture::reject(e, &self.config),
        };
        // The ready service goes into the future; a clone stays for the next call
        // (https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            state: State::Validate {
                fut: self.validator.validate(token),
            },
            req: Some(req),
            inner: Some(inner),
            config: self.config.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`Bearer`].
    pub struct ResponseFuture<S, V, B>
    where
        S: Service<Request<B>>,
        V: TokenValidator,
    {
        #[pin]
        state: State<V::Future, S::Future>,
        req: Option<Request<B>>,
        inner: Option<S>,
        config: Arc<Config>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<VF, SF> {
        Validate { #[pin] fut: VF },
        Inner { #[pin] fut: SF },
        Rejected { error: Option<BearerError> },
    }
}

impl<S, V, B> ResponseFuture<S, V, B>
where
    S: Service<Request<B>>,
    V: TokenValidator,
{
    fn reject(error: BearerError, config: &Arc<Config>) -> Self {
        ResponseFuture {
            state: State::Rejected { error: Some(error) },
            req: None,
            inner: None,
            config: config.clone(),
        }
    }
}

fn rejection<B>(error: &BearerError, config: &Config) -> Response<ResponseBody<B>> {
    tracing::debug!(status = %error.status(), reason = %error, "bearer token rejected");
    error
        .to_response(&config.realm, config.error_with_scopes)
        .map(|bytes| ResponseBody::Rejection { bytes: Some(bytes) })
}

impl<S, V, B, ResBody> Future for ResponseFuture<S, V, B>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    V: TokenValidator,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Validate { fut } => {
                    let outcome = ready!(fut.poll(cx));
                    let mut req = this.req.take().expect("request kept until validated");
                    let checked = outcome.and_then(|info| {
                        this.config
                            .policy
                            .check(req.method(), &info.scopes)
                            .map_err(BearerError::InsufficientScope)?;
                        Ok(info)
                    });
                    match checked {
                        Ok(info) => {
                            req.extensions_mut().insert(info);
                            let mut inner =
                                this.inner.take().expect("service kept until validated");
                            this.state.set(State::Inner {
                                fut: inner.call(req),
                            });
                        }
                        Err(e) => return Poll::Ready(Ok(rejection(&e, this.config))),
                    }
                }
                StateProj::Inner { fut } => {
                    let res = ready!(fut.poll(cx))?;
                    return Poll::Ready(Ok(res.map(|body| ResponseBody::Inner { body })));
                }
                StateProj::Rejected { error } => {
                    let error = error.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection(&error, this.config)));
                }
            }
        }
    }
}

pin_project! {
    /// The response body of [`Bearer`]: the inner service's (`Inner { body }`), or a
    /// rejection's JSON (`Rejection { bytes }`).
    #[allow(missing_docs)]
    #[project = BodyProj]
    pub enum ResponseBody<B> {
        /// The inner service answered.
        Inner { #[pin] body: B },
        /// The layer answered.
        Rejection { bytes: Option<Bytes> },
    }
}

impl<B> http_body::Body for ResponseBody<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match self.project() {
            BodyProj::Inner { body } => body.poll_frame(cx),
            BodyProj::Rejection { bytes } => {
                Poll::Ready(bytes.take().map(|b| Ok(http_body::Frame::data(b))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Inner { body } => body.is_end_stream(),
            ResponseBody::Rejection { bytes } => bytes.is_none(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ResponseBody::Inner { body } => body.size_hint(),
            ResponseBody::Rejection { bytes } => {
                http_body::SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(auth: &[&[u8]], uri: &str) -> Request<()> {
        let mut b = Request::builder().uri(uri);
        for a in auth {
            b = b.header(
                header::AUTHORIZATION,
                http::HeaderValue::from_bytes(a).unwrap(),
            );
        }
        b.body(()).unwrap()
    }

    #[test]
    fn extraction_cases() {
        assert_eq!(
            extract_token(&req(&[b"Bearer abc.DEF-_~+/=="], "/"), false)
                .unwrap()
                .as_deref(),
            Some("abc.DEF-_~+/==")
        );
        assert_eq!(
            extract_token(&req(&[b"bEaReR tok"], "/"), false)
                .unwrap()
                .as_deref(),
            Some("tok"),
            "scheme is case-insensitive"
        );
        assert_eq!(extract_token(&req(&[], "/"), false).unwrap(), None);
        assert_eq!(
            extract_token(&req(&[b"Basic dXNlcjpwdw=="], "/"), false).unwrap(),
            None
        );
        for bad in [
            &b"Bearer"[..],
            b"Bearer ",
            b"Bearer  two-spaces",
            b"Bearer a b",
            b"Bearer a\"b",
            b"Bearer =abc",
            b"Bearer \xff",
        ] {
            assert!(
                matches!(
                    extract_token(&req(&[bad], "/"), false),
                    Err(BearerError::InvalidRequest(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            extract_token(&req(&[b"Bearer a", b"Bearer b"], "/"), false),
            Err(BearerError::InvalidRequest(_))
        ));
    }

    proptest::proptest! {
        /// Whatever the header bytes, extraction returns (never panics), and a token it
        /// returns is a well-formed b64token.
        #[test]
        fn header_parsing_never_panics(values in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..80), 0..3),
                                       query in "[ -~]{0,40}") {
            let mut b = Request::builder().uri(format!("/p?{}", query.replace(['#', ' '], "")).as_str());
            for v in &values {
                if let Ok(h) = http::HeaderValue::from_bytes(v) {
                    b = b.header(header::AUTHORIZATION, h);
                }
            }
            if let Ok(r) = b.body(()) {
                for allow in [false, true] {
                    if let Ok(Some(t)) = extract_token(&r, allow) {
                        proptest::prop_assert!(is_b64token(&t));
                    }
                }
            }
        }
    }

    #[test]
    fn query_parameter_only_when_allowed() {
        assert_eq!(
            extract_token(&req(&[], "/x?access_token=abc"), false).unwrap(),
            None
        );
        assert_eq!(
            extract_token(&req(&[], "/x?access_token=abc"), true)
                .unwrap()
                .as_deref(),
            Some("abc")
        );
        assert!(matches!(
            extract_token(&req(&[b"Bearer abc"], "/x?access_token=abc"), true),
            Err(BearerError::InvalidRequest(_))
        ));
    }
}
