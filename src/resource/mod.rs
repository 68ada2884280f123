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
//! The token is read from `Authorization: Bearer` only, unless the RFC 6750 query
//! parameter ([`BearerLayer::allow_query_parameter`]) or form-body
//! ([`BearerLayer::allow_form_body`], see [`form`]) methods are turned on. A validator that
//! can answer at once ([`TokenValidator::validate_now`]: a cache hit, a JWT with a known
//! key) lets the layer call the inner service within `call`, with no clone of it and no
//! boxed future.
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

pub mod audience;
pub mod cache;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
pub mod form;
#[cfg(feature = "introspection")]
pub mod introspection;
#[cfg(feature = "jwt")]
pub mod jwt;
pub mod metadata;
pub mod scope;
pub mod token;
pub mod validator;

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

pub use audience::AudienceCheck;
pub use cache::TokenCache;
pub use error::BearerError;
pub use form::{FormBearer, FormBearerLayer, DEFAULT_FORM_BODY_LIMIT};
#[cfg(feature = "introspection")]
pub use introspection::{IntrospectionAuth, IntrospectionValidator};
#[cfg(feature = "jwt")]
pub use jwt::JwtValidator;
pub use metadata::ProtectedResourceMetadata;
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
    /// RFC 9728: the metadata whose URL every challenge names.
    metadata: Option<ProtectedResourceMetadata>,
    /// The first `invalid_token` answer rendered (its description, `WWW-Authenticate`
    /// and body): a flood of bad tokens is answered without rendering each refusal.
    invalid_token: std::sync::OnceLock<Option<(String, HeaderValue, Bytes)>>,
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
                metadata: None,
                invalid_token: std::sync::OnceLock::new(),
            }),
        }
    }

    fn config_mut(&mut self) -> &mut Config {
        let config = Arc::make_mut(&mut self.config);
        // Rendered with the old options.
        config.invalid_token = std::sync::OnceLock::new();
        config
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

    /// Point every challenge at the resource's RFC 9728 metadata: 401 (and 400) answers
    /// carry `resource_metadata="<url>"` in `WWW-Authenticate`, and 403 answers also name
    /// the required scopes (`scope="…"`), so that a client that knows only the API's URL
    /// finds the authorization server and asks for the right scopes. Serve the document
    /// itself with [`ProtectedResourceMetadata::service`]. A
    /// [derived](ProtectedResourceMetadata::derived) identifier takes the URL's scheme and
    /// host from each request.
    pub fn with_resource_metadata(mut self, metadata: &ProtectedResourceMetadata) -> Self {
        self.config_mut().metadata = Some(metadata.clone());
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
            shared: Arc::new(Shared {
                validator: self.validator.clone(),
                config: Config::clone(&self.config),
            }),
        }
    }
}

/// What every clone of one [`Bearer`] shares: one reference count to bump when a router
/// clones the service per request.
#[derive(Debug)]
struct Shared<V> {
    validator: V,
    config: Config,
}

/// The service made by [`BearerLayer`].
#[derive(Debug)]
pub struct Bearer<S, V> {
    inner: S,
    shared: Arc<Shared<V>>,
}

impl<S: Clone, V> Clone for Bearer<S, V> {
    fn clone(&self) -> Self {
        Bearer {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
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
    find_token(req, allow_query).map(|t| t.map(Cow::into_owned))
}

/// [`extract_token`] without copying the token out of the header.
fn find_token<B>(req: &Request<B>, allow_query: bool) -> Result<Option<Cow<'_, str>>, BearerError> {
    let mut found = header_token(req.headers())?.map(Cow::Borrowed);
    if allow_query {
        if let Some(query) = req.uri().query() {
            let from_query = form_token(query.as_bytes(), "access_token parameter")?;
            if let Some(token) = from_query {
                if found.is_some() {
                    return Err(two_methods());
                }
                found = Some(token);
            }
        }
    }
    Ok(found)
}

/// The one `Authorization` header of a request, as text: `Ok(None)` without one, `Err`
/// (the description of an `invalid_request`) for two of them or one that is not visible
/// ASCII. Every reader of the header — bearer tokens here and at the provider's
/// userinfo and introspection, HTTP Basic client authentication — starts here, so a
/// second header is refused everywhere alike.
pub(crate) fn authorization(headers: &http::HeaderMap) -> Result<Option<&str>, &'static str> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err("more than one Authorization header");
    }
    value
        .to_str()
        .map(Some)
        .map_err(|_| "the Authorization header is not visible ASCII")
}

/// The token of the `Authorization: Bearer` header (RFC 6750 §2.1): `Ok(None)` without
/// one (or with another scheme, which carries no bearer token); `Err` for two
/// `Authorization` headers or a malformed one. Shared with the provider's userinfo
/// endpoint.
pub(crate) fn header_token(headers: &http::HeaderMap) -> Result<Option<&str>, BearerError> {
    let Some(value) =
        authorization(headers).map_err(|e| BearerError::InvalidRequest(e.to_owned()))?
    else {
        return Ok(None);
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Another scheme (Basic, …) carries no bearer token: treated as absent.
        return Ok(None);
    }
    if !is_b64token(rest) {
        return Err(BearerError::InvalidRequest(
            "the Authorization header must be \"Bearer\", one space, and a token".into(),
        ));
    }
    Ok(Some(rest))
}

fn two_methods() -> BearerError {
    BearerError::InvalidRequest("the token was sent in more than one way".into())
}

/// The `access_token` field of a form-encoded string (query or body), if any; two of
/// them, or a malformed one, are an `invalid_request`.
pub(crate) fn form_token<'a>(
    form: &'a [u8],
    what: &str,
) -> Result<Option<Cow<'a, str>>, BearerError> {
    let mut found = None;
    for (k, v) in url::form_urlencoded::parse(form) {
        if k == "access_token" {
            if found.is_some() {
                return Err(two_methods());
            }
            if !is_b64token(&v) {
                return Err(BearerError::InvalidRequest(format!("malformed {what}")));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// What `call` decided before touching the inner service.
enum Decision {
    /// The validator answered at once.
    Now(Result<Arc<TokenInfo>, BearerError>),
    /// The validator must be awaited.
    Later(String),
    /// No token, and the layer is optional.
    Anonymous,
}

impl<S, V: TokenValidator> Bearer<S, V> {
    fn decide(&self, found: Result<Option<&str>, BearerError>) -> Decision {
        match found {
            Ok(Some(token)) => match self.shared.validator.validate_now(token) {
                Some(outcome) => Decision::Now(outcome),
                None => Decision::Later(token.to_owned()),
            },
            Ok(None) if self.shared.config.optional => Decision::Anonymous,
            Ok(None) => Decision::Now(Err(BearerError::Missing)),
            Err(e) => Decision::Now(Err(e)),
        }
    }

    /// Carries out `decision` for `req`; `self.inner` must be ready.
    fn dispatch<B, ResBody>(
        &mut self,
        mut req: Request<B>,
        decision: Decision,
    ) -> ResponseFuture<S, V, B>
    where
        S: Service<Request<B>, Response = Response<ResBody>> + Clone,
    {
        let state = match decision {
            Decision::Anonymous => State::Inner {
                fut: self.inner.call(req),
            },
            Decision::Now(outcome) => match admit(&self.shared.config, req.method(), outcome) {
                Ok(info) => {
                    req.extensions_mut().insert(info);
                    // Answered synchronously: the ready inner service is called now, with
                    // no clone and no validation future.
                    State::Inner {
                        fut: self.inner.call(req),
                    }
                }
                Err(e) => State::Rejected {
                    response: Some(rejection(&e, &self.shared.config, &req)),
                },
            },
            Decision::Later(token) => {
                // The ready service goes into the future; a clone stays for the next call
                // (https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services).
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                return ResponseFuture {
                    state: State::Validate {
                        fut: self.shared.validator.validate(token),
                    },
                    req: Some(req),
                    inner: Some(inner),
                    shared: Some(self.shared.clone()),
                };
            }
        };
        ResponseFuture {
            state,
            req: None,
            inner: None,
            shared: None,
        }
    }
}

/// The validator's answer checked against the scope policy.
fn admit(
    config: &Config,
    method: &http::Method,
    outcome: Result<Arc<TokenInfo>, BearerError>,
) -> Result<Arc<TokenInfo>, BearerError> {
    let info = outcome?;
    config
        .policy
        .check(method, &info.scopes)
        .map_err(BearerError::InsufficientScope)?;
    Ok(info)
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
        let decision = self.decide(
            find_token(&req, self.shared.config.allow_query)
                .as_ref()
                .map(|t| t.as_deref())
                .map_err(Clone::clone),
        );
        self.dispatch(req, decision)
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
        shared: Option<Arc<Shared<V>>>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<VF, SF> {
        Validate { #[pin] fut: VF },
        Inner { #[pin] fut: SF },
        Rejected { response: Option<Response<Bytes>> },
    }
}

fn rejection<B>(error: &BearerError, config: &Config, req: &Request<B>) -> Response<Bytes> {
    tracing::debug!(status = %error.status(), reason = %error, "bearer token rejected");
    let render = || match &config.metadata {
        None => error.to_response(&config.realm, config.error_with_scopes),
        Some(m) => {
            let (_, url) = m.urls_for(req.headers(), req.uri());
            error.to_response_with_metadata(&config.realm, config.error_with_scopes, &url)
        }
    };
    // A challenge that names the request's host is rendered per request.
    let per_request = config
        .metadata
        .as_ref()
        .is_some_and(|m| m.resource().is_none());
    if let (BearerError::InvalidToken(description), false) = (error, per_request) {
        let memo = config.invalid_token.get_or_init(|| {
            let res = render();
            let challenge = res.headers().get(header::WWW_AUTHENTICATE)?.clone();
            Some((description.clone(), challenge, res.into_body()))
        });
        if let Some((_, challenge, body)) = memo.as_ref().filter(|m| &m.0 == description) {
            let mut res = Response::new(body.clone());
            *res.status_mut() = StatusCode::UNAUTHORIZED;
            let headers = res.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::WWW_AUTHENTICATE, challenge.clone());
            return res;
        }
    }
    render()
}

fn rejection_body<B>(response: Response<Bytes>) -> Response<ResponseBody<B>> {
    response.map(|bytes| ResponseBody::Rejection { bytes: Some(bytes) })
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
                    let config = &this.shared.as_ref().expect("kept until validated").config;
                    match admit(config, req.method(), outcome) {
                        Ok(info) => {
                            req.extensions_mut().insert(info);
                            let mut inner =
                                this.inner.take().expect("service kept until validated");
                            this.state.set(State::Inner {
                                fut: inner.call(req),
                            });
                        }
                        Err(e) => {
                            return Poll::Ready(Ok(rejection_body(rejection(&e, config, &req))))
                        }
                    }
                }
                StateProj::Inner { fut } => {
                    let res = ready!(fut.poll(cx))?;
                    return Poll::Ready(Ok(res.map(|body| ResponseBody::Inner { body })));
                }
                StateProj::Rejected { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(rejection_body(response)));
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
