//! RFC 9728 OAuth 2.0 Protected Resource Metadata: how a client that knows only an API's
//! URL finds the authorization server that issues tokens for it.
//!
//! A [`ProtectedResourceMetadata`] describes one protected resource (its identifier, the
//! authorization servers it trusts, its scopes, the ways it accepts a token) and gives:
//!
//! * [`well_known_path`](ProtectedResourceMetadata::well_known_path): where the document
//!   lives, `/.well-known/oauth-protected-resource` with the resource's path appended
//!   (§3.1: `https://api.example.com/v1` → `/.well-known/oauth-protected-resource/v1`);
//! * [`service`](ProtectedResourceMetadata::service): a tower service that answers `GET`
//!   there with the JSON document, `Access-Control-Allow-Origin: *` (browser-based
//!   clients read it across origins) and `Cache-Control: public, max-age=…`;
//! * the URL for [`BearerLayer::with_resource_metadata`](super::BearerLayer::with_resource_metadata),
//!   which puts `resource_metadata="<url>"` into every 401 challenge (§5.1).
//!
//! ```
//! use axum::Router;
//! use tower_oauth_toolkit::resource::ProtectedResourceMetadata;
//!
//! let metadata = ProtectedResourceMetadata::new("https://api.example.com/v1")
//!     .unwrap()
//!     .authorization_server("https://auth.example.com")
//!     .scopes_supported(["read", "write"]);
//! assert_eq!(metadata.well_known_path(), "/.well-known/oauth-protected-resource/v1");
//! let app: Router = Router::new()
//!     .route_service(&metadata.well_known_path(), metadata.service());
//! # let _ = app;
//! ```
//!
//! ## A request-derived identifier
//! [`ProtectedResourceMetadata::derived`] takes only the resource's path: the scheme and
//! host come from each request (`Host`, and `X-Forwarded-Proto` when a proxy sets it), as
//! DOT does when `OAUTH2_PROTECTED_RESOURCE_IDENTIFIER` is empty. It is for development
//! and for servers reached under several names; a client then gets back whatever host it
//! asked for, so configure a fixed identifier in production.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request, Response, StatusCode};
use serde_json::{Map, Value};
use tower_service::Service;

/// The well-known path of RFC 9728 §3.
pub const WELL_KNOWN_PATH: &str = "/.well-known/oauth-protected-resource";

/// A resource identifier or a URL in the metadata that is not acceptable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MetadataError(String);

/// The identifier: fixed, or scheme and host taken from each request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Identifier {
    Fixed(String),
    /// The path of the resource (`""` for the origin itself).
    Derived(String),
}

/// The RFC 9728 metadata of one protected resource. See the [module docs](self).
#[derive(Clone, Debug, PartialEq)]
pub struct ProtectedResourceMetadata {
    identifier: Identifier,
    fields: Map<String, Value>,
    /// Authorization servers on the resource's own origin, by path.
    same_origin_servers: Vec<String>,
    max_age: u32,
}

/// Whether `url` is an acceptable resource identifier (RFC 9728 §1.2, RFC 8707 §2): an
/// absolute `https` URL — or `http` on a loopback host, for development — with a host, no
/// fragment, no query and no user information.
pub fn check_resource_identifier(url: &str) -> Result<url::Url, MetadataError> {
    let parsed = url::Url::parse(url)
        .map_err(|e| MetadataError(format!("resource identifier {url:?} is not a URL: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => {
            return Err(MetadataError(format!(
                "resource identifier {url:?} has no host"
            )))
        }
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => {
            return Err(MetadataError(format!(
                "resource identifier {url:?} must be https (http only on a loopback host)"
            )))
        }
    }
    if url.contains('#') {
        return Err(MetadataError(format!(
            "resource identifier {url:?} must not have a fragment"
        )));
    }
    if parsed.query().is_some() {
        return Err(MetadataError(format!(
            "resource identifier {url:?} must not have a query"
        )));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(MetadataError(format!(
            "resource identifier {url:?} must not carry user information"
        )));
    }
    Ok(parsed)
}

/// The path a resource's metadata is served at (§3.1): the well-known prefix, then the
/// resource's path without a trailing slash.
fn well_known_for(path: &str) -> String {
    format!("{WELL_KNOWN_PATH}{}", path.trim_end_matches('/'))
}

impl ProtectedResourceMetadata {
    /// The metadata of the resource identified by `resource` (see
    /// [`check_resource_identifier`]), with `bearer_methods_supported: ["header"]`.
    pub fn new(resource: &str) -> Result<Self, MetadataError> {
        check_resource_identifier(resource)?;
        Ok(Self::with_identifier(Identifier::Fixed(
            resource.to_owned(),
        )))
    }

    /// The metadata of the resource at `path` on whatever scheme and host each request
    /// names (see the [module docs](self#a-request-derived-identifier)). `path` is `""` or
    /// starts with `/`.
    pub fn derived(path: &str) -> Result<Self, MetadataError> {
        if !(path.is_empty() || path.starts_with('/')) || path.contains(['?', '#']) {
            return Err(MetadataError(format!(
                "resource path {path:?} must be empty or an absolute path without query or fragment"
            )));
        }
        Ok(Self::with_identifier(Identifier::Derived(
            path.trim_end_matches('/').to_owned(),
        )))
    }

    fn with_identifier(identifier: Identifier) -> Self {
        let mut fields = Map::new();
        fields.insert("bearer_methods_supported".into(), vec!["header"].into());
        ProtectedResourceMetadata {
            identifier,
            fields,
            same_origin_servers: Vec::new(),
            max_age: 3600,
        }
    }

    fn list<I, T>(mut self, name: &str, values: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let values: Vec<Value> = values.into_iter().map(|v| Value::from(v.into())).collect();
        if values.is_empty() {
            self.fields.remove(name);
        } else {
            self.fields.insert(name.into(), Value::Array(values));
        }
        self
    }

    fn text(mut self, name: &str, value: impl Into<String>) -> Self {
        let value = value.into();
        if value.is_empty() {
            self.fields.remove(name);
        } else {
            self.fields.insert(name.into(), value.into());
        }
        self
    }

    /// Adds an issuer to `authorization_servers` (RFC 8414 issuer identifiers).
    pub fn authorization_server(mut self, issuer: impl Into<String>) -> Self {
        let list = self
            .fields
            .entry("authorization_servers")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = list {
            let issuer = Value::from(issuer.into());
            if !items.contains(&issuer) {
                items.push(issuer);
            }
        }
        self
    }

    /// Adds to `authorization_servers` the issuer at `path` on the resource's own origin
    /// (`"/o"` with the resource `https://api.example.com/v1` names
    /// `https://api.example.com/o`): for an API served beside its authorization server,
    /// and with a [derived](Self::derived) identifier, whose origin each request names.
    pub fn same_origin_authorization_server(mut self, path: &str) -> Self {
        let path = path.trim_end_matches('/');
        if !self.same_origin_servers.iter().any(|p| p == path) {
            self.same_origin_servers.push(path.to_owned());
        }
        self
    }

    /// Sets `authorization_servers` (empty removes the member).
    pub fn authorization_servers<I, T>(self, issuers: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.list("authorization_servers", issuers)
    }

    /// Sets `scopes_supported`.
    pub fn scopes_supported<I, T>(self, scopes: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.list("scopes_supported", scopes)
    }

    /// Sets `bearer_methods_supported` (`header`, `body`, `query`; default `["header"]`).
    pub fn bearer_methods_supported<I, T>(self, methods: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.list("bearer_methods_supported", methods)
    }

    /// Sets `resource_signing_alg_values_supported` (the JWS algorithms of the JWT access
    /// tokens the resource accepts, e.g. `["RS256"]`).
    pub fn resource_signing_alg_values_supported<I, T>(self, algorithms: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.list("resource_signing_alg_values_supported", algorithms)
    }

    /// Sets `jwks_uri` (the resource's own keys, for signed responses).
    pub fn jwks_uri(self, uri: impl Into<String>) -> Self {
        self.text("jwks_uri", uri)
    }

    /// Sets `resource_name` (empty removes it).
    pub fn name(self, name: impl Into<String>) -> Self {
        self.text("resource_name", name)
    }

    /// Sets `resource_documentation`.
    pub fn documentation(self, uri: impl Into<String>) -> Self {
        self.text("resource_documentation", uri)
    }

    /// Sets `resource_policy_uri`.
    pub fn policy_uri(self, uri: impl Into<String>) -> Self {
        self.text("resource_policy_uri", uri)
    }

    /// Sets `resource_tos_uri`.
    pub fn tos_uri(self, uri: impl Into<String>) -> Self {
        self.text("resource_tos_uri", uri)
    }

    /// The `max-age` of the document's `Cache-Control` (default 3600 s).
    pub fn max_age(mut self, seconds: u32) -> Self {
        self.max_age = seconds;
        self
    }

    /// The fixed resource identifier, or `None` when it is derived from requests.
    pub fn resource(&self) -> Option<&str> {
        match &self.identifier {
            Identifier::Fixed(r) => Some(r),
            Identifier::Derived(_) => None,
        }
    }

    /// The path of the resource: of its identifier, or the one given to
    /// [`derived`](Self::derived).
    pub fn resource_path(&self) -> String {
        match &self.identifier {
            Identifier::Fixed(r) => url::Url::parse(r)
                .map(|u| u.path().trim_end_matches('/').to_owned())
                .unwrap_or_default(),
            Identifier::Derived(p) => p.clone(),
        }
    }

    /// Where the document is served (§3.1), to route [`service`](Self::service) at.
    pub fn well_known_path(&self) -> String {
        well_known_for(&self.resource_path())
    }

    /// The document's URL for a fixed identifier (the origin of the identifier, then
    /// [`well_known_path`](Self::well_known_path)); `None` when derived.
    pub fn metadata_url(&self) -> Option<String> {
        let resource = url::Url::parse(self.resource()?).ok()?;
        Some(format!(
            "{}{}",
            resource.origin().ascii_serialization(),
            self.well_known_path()
        ))
    }

    /// The identifier and document URL for a request with these headers (fixed, or
    /// derived from them).
    pub(crate) fn urls_for(&self, headers: &http::HeaderMap, uri: &http::Uri) -> (String, String) {
        match &self.identifier {
            Identifier::Fixed(resource) => (
                resource.clone(),
                self.metadata_url().unwrap_or_else(|| resource.clone()),
            ),
            Identifier::Derived(path) => {
                let origin = request_origin(headers, uri);
                let resource = if path.is_empty() {
                    format!("{origin}/")
                } else {
                    format!("{origin}{path}")
                };
                (resource, format!("{origin}{}", well_known_for(path)))
            }
        }
    }

    /// The JSON document for the identifier `resource`.
    pub fn document(&self, resource: &str) -> Bytes {
        let mut doc = Map::with_capacity(self.fields.len() + 2);
        doc.insert("resource".into(), resource.into());
        doc.extend(self.fields.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !self.same_origin_servers.is_empty() {
            let origin = url::Url::parse(resource)
                .map(|u| u.origin().ascii_serialization())
                .unwrap_or_default();
            let servers = doc
                .entry("authorization_servers")
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = servers {
                for path in &self.same_origin_servers {
                    let issuer = Value::from(format!("{origin}{path}"));
                    if !items.contains(&issuer) {
                        items.push(issuer);
                    }
                }
            }
        }
        Bytes::from(Value::Object(doc).to_string())
    }

    /// A tower service that serves the document (route it at
    /// [`well_known_path`](Self::well_known_path)). `GET`/`HEAD` → 200 JSON, `OPTIONS` →
    /// 204 (CORS preflight), anything else → 405.
    pub fn service(&self) -> MetadataService {
        let cached = self
            .resource()
            .map(|r| self.document(r))
            .unwrap_or_default();
        MetadataService {
            inner: Arc::new(ServiceInner {
                metadata: self.clone(),
                cached,
                cache_control: HeaderValue::from_str(&format!("public, max-age={}", self.max_age))
                    .unwrap_or(HeaderValue::from_static("public")),
            }),
        }
    }
}

/// The scheme and host a request was sent to, as it names them (no trailing slash).
pub(crate) fn request_origin(headers: &http::HeaderMap, uri: &http::Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && !h.contains(['/', ' ', '"', '\\', '@']))
        .or_else(|| uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').next().unwrap_or("").trim());
    let scheme = match (uri.scheme_str(), forwarded) {
        (_, Some(p)) if p.eq_ignore_ascii_case("https") => "https",
        (Some("https"), _) => "https",
        _ => "http",
    };
    format!("{scheme}://{host}")
}

struct ServiceInner {
    metadata: ProtectedResourceMetadata,
    /// The rendered document of a fixed identifier.
    cached: Bytes,
    cache_control: HeaderValue,
}

/// The service made by [`ProtectedResourceMetadata::service`].
#[derive(Clone)]
pub struct MetadataService {
    inner: Arc<ServiceInner>,
}

impl std::fmt::Debug for MetadataService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetadataService")
            .field("metadata", &self.inner.metadata)
            .finish()
    }
}

impl MetadataService {
    fn answer(
        &self,
        method: &Method,
        headers: &http::HeaderMap,
        uri: &http::Uri,
    ) -> Response<Body> {
        let inner = &*self.inner;
        let (status, body) = match *method {
            Method::GET | Method::HEAD => {
                let doc = match inner.metadata.identifier {
                    Identifier::Fixed(_) => inner.cached.clone(),
                    Identifier::Derived(_) => {
                        let (resource, _) = inner.metadata.urls_for(headers, uri);
                        inner.metadata.document(&resource)
                    }
                };
                (StatusCode::OK, Some(doc))
            }
            Method::OPTIONS => (StatusCode::NO_CONTENT, None),
            _ => (StatusCode::METHOD_NOT_ALLOWED, None),
        };
        let mut res = Response::new(Body(None));
        *res.status_mut() = status;
        let h = res.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            HeaderValue::from_static("*"),
        );
        match (status, body) {
            (StatusCode::OK, Some(doc)) => {
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                );
                h.insert(header::CACHE_CONTROL, inner.cache_control.clone());
                if matches!(inner.metadata.identifier, Identifier::Derived(_)) {
                    // The document names the host the request named.
                    h.insert(header::VARY, HeaderValue::from_static("host"));
                }
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(doc.len()));
                if *method == Method::GET {
                    *res.body_mut() = Body(Some(doc));
                }
            }
            (StatusCode::NO_CONTENT, _) => {
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("86400"),
                );
            }
            _ => {
                h.insert(
                    header::ALLOW,
                    HeaderValue::from_static("GET, HEAD, OPTIONS"),
                );
            }
        }
        res
    }
}

impl<B> Service<Request<B>> for MetadataService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        std::future::ready(Ok(self.answer(req.method(), req.headers(), req.uri())))
    }
}

/// The body of [`MetadataService`]'s answers: the document, or nothing.
#[derive(Debug, Default)]
pub struct Body(Option<Bytes>);

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.take().map(|b| Ok(http_body::Frame::data(b))))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.0.as_ref().map_or(0, |b| b.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_insertion() {
        let m = |r: &str| ProtectedResourceMetadata::new(r).unwrap();
        assert_eq!(
            m("https://api.example.com").well_known_path(),
            "/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            m("https://api.example.com/").well_known_path(),
            "/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            m("https://api.example.com/v1/").well_known_path(),
            "/.well-known/oauth-protected-resource/v1"
        );
        assert_eq!(
            m("https://api.example.com:8443/a/b")
                .metadata_url()
                .unwrap(),
            "https://api.example.com:8443/.well-known/oauth-protected-resource/a/b"
        );
    }

    #[test]
    fn identifiers_checked() {
        for bad in [
            "api",
            "/v1",
            "http://api.example.com/v1",
            "https://api.example.com/v1#x",
            "https://api.example.com/v1?x=1",
            "https://u:p@api.example.com/",
            "ftp://api.example.com/",
        ] {
            assert!(ProtectedResourceMetadata::new(bad).is_err(), "{bad}");
        }
        for good in [
            "https://api.example.com/v1",
            "http://127.0.0.1:8000/api",
            "http://localhost/api",
            "http://[::1]:9/",
        ] {
            assert!(ProtectedResourceMetadata::new(good).is_ok(), "{good}");
        }
        assert!(ProtectedResourceMetadata::derived("api").is_err());
        assert!(ProtectedResourceMetadata::derived("/api?x").is_err());
    }

    #[test]
    fn document_members() {
        let m = ProtectedResourceMetadata::new("https://api.example.com/v1")
            .unwrap()
            .authorization_server("https://auth.example.com")
            .authorization_server("https://auth.example.com")
            .scopes_supported(["read"])
            .name("")
            .documentation("https://docs.example.com");
        let doc: Value = serde_json::from_slice(&m.document("https://api.example.com/v1")).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({
                "resource": "https://api.example.com/v1",
                "authorization_servers": ["https://auth.example.com"],
                "scopes_supported": ["read"],
                "bearer_methods_supported": ["header"],
                "resource_documentation": "https://docs.example.com",
            })
        );
    }

    #[test]
    fn derived_from_the_request() {
        let m = ProtectedResourceMetadata::derived("/api/hello").unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("api.test:8000"));
        let uri: http::Uri = "/.well-known/oauth-protected-resource/api/hello"
            .parse()
            .unwrap();
        assert_eq!(
            m.urls_for(&headers, &uri),
            (
                "http://api.test:8000/api/hello".to_owned(),
                "http://api.test:8000/.well-known/oauth-protected-resource/api/hello".to_owned()
            )
        );
        headers.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        assert!(m
            .urls_for(&headers, &uri)
            .0
            .starts_with("https://api.test:8000/"));
        let doc: Value = serde_json::from_slice(
            &m.clone()
                .same_origin_authorization_server("/o/")
                .document("https://api.test:8000/api/hello"),
        )
        .unwrap();
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!(["https://api.test:8000/o"])
        );
        // A Host that would break out of the URL is not used.
        headers.insert(header::HOST, HeaderValue::from_static("evil/x\"y"));
        assert!(m
            .urls_for(&headers, &uri)
            .0
            .starts_with("https://localhost/"));
    }
}
