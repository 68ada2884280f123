//! Rejections of the bearer layer, as RFC 6750 §3 responses.
//!
//! | case | status | `WWW-Authenticate` |
//! |---|---|---|
//! | no token | 401 | `Bearer realm="…"` (no error code, §3.1) |
//! | malformed request (bad header, two methods) | 400 | `error="invalid_request"` |
//! | unknown, expired or revoked token | 401 | `error="invalid_token"` |
//! | token lacks a required scope | 403 | `error="insufficient_scope"` (+ `scope="…"` when configured) |
//! | the token cannot be checked now | 503 | none (`Retry-After`) |
//!
//! With [`BearerLayer::with_resource_metadata`](super::BearerLayer::with_resource_metadata),
//! every challenge also carries `resource_metadata="<url>"` (RFC 9728 §5.1), and a 403
//! names the required scopes.
//!
//! Every rejection also has a small JSON body with the same `error` and
//! `error_description`. A 503 never becomes a 401: a client is never told that its good
//! token is bad because the introspection server is down, and nothing unverified passes.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};

use crate::scope::Scopes;

/// Why a request was not let through.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BearerError {
    /// The request carries no bearer token.
    #[error("no bearer token in the request")]
    Missing,
    /// The request is malformed (RFC 6750 `invalid_request`).
    #[error("{0}")]
    InvalidRequest(String),
    /// The token is unknown, expired, revoked or otherwise unusable (`invalid_token`).
    #[error("{0}")]
    InvalidToken(String),
    /// The token lacks scopes (`insufficient_scope`); holds the scopes required.
    #[error("the access token does not have enough scope")]
    InsufficientScope(Scopes),
    /// The token could not be checked (introspection server down, timeout, bad answer).
    #[error("{0}")]
    Unavailable(String),
}

impl BearerError {
    /// The HTTP status of this rejection.
    pub fn status(&self) -> StatusCode {
        match self {
            BearerError::Missing | BearerError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            BearerError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            BearerError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            BearerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The RFC 6750 error code, if the case has one.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            BearerError::Missing => None,
            BearerError::InvalidRequest(_) => Some("invalid_request"),
            BearerError::InvalidToken(_) => Some("invalid_token"),
            BearerError::InsufficientScope(_) => Some("insufficient_scope"),
            BearerError::Unavailable(_) => Some("temporarily_unavailable"),
        }
    }

    /// The `WWW-Authenticate` value (none for 503).
    pub fn www_authenticate(&self, realm: &str, with_scopes: bool) -> Option<String> {
        self.challenge(realm, with_scopes, None)
    }

    /// The `WWW-Authenticate` value with an RFC 9728 `resource_metadata` URL (§5.1), which
    /// also names the required scopes of a 403 (§5.1, RFC 6750 §3).
    pub fn www_authenticate_with_metadata(
        &self,
        realm: &str,
        with_scopes: bool,
        resource_metadata: &str,
    ) -> Option<String> {
        self.challenge(realm, with_scopes, Some(resource_metadata))
    }

    fn challenge(
        &self,
        realm: &str,
        with_scopes: bool,
        resource_metadata: Option<&str>,
    ) -> Option<String> {
        let with_scopes = with_scopes || resource_metadata.is_some();
        let mut v = format!("Bearer realm=\"{}\"", quote(realm));
        match self {
            BearerError::Missing => {}
            BearerError::Unavailable(_) => return None,
            BearerError::InsufficientScope(required) => {
                v.push_str(", error=\"insufficient_scope\", error_description=\"");
                v.push_str(&quote(&self.to_string()));
                v.push('"');
                if with_scopes {
                    v.push_str(", scope=\"");
                    v.push_str(&quote(&required.to_string()));
                    v.push('"');
                }
            }
            other => {
                v.push_str(&format!(
                    ", error=\"{}\", error_description=\"{}\"",
                    other.code().unwrap_or_default(),
                    quote(&other.to_string())
                ));
            }
        }
        if let Some(url) = resource_metadata {
            v.push_str(", resource_metadata=\"");
            v.push_str(&quote(url));
            v.push('"');
        }
        Some(v)
    }

    /// The whole response: status, `WWW-Authenticate`, `Cache-Control: no-store`, and a
    /// JSON body.
    pub fn to_response(&self, realm: &str, with_scopes: bool) -> Response<Bytes> {
        self.response(realm, with_scopes, None)
    }

    /// [`to_response`](Self::to_response) with an RFC 9728 `resource_metadata` URL in the
    /// challenge (see [`www_authenticate_with_metadata`](Self::www_authenticate_with_metadata)).
    pub fn to_response_with_metadata(
        &self,
        realm: &str,
        with_scopes: bool,
        resource_metadata: &str,
    ) -> Response<Bytes> {
        self.response(realm, with_scopes, Some(resource_metadata))
    }

    fn response(
        &self,
        realm: &str,
        with_scopes: bool,
        resource_metadata: Option<&str>,
    ) -> Response<Bytes> {
        let with_scopes = with_scopes || resource_metadata.is_some();
        let mut body = serde_json::Map::new();
        if let Some(code) = self.code() {
            body.insert("error".into(), code.into());
        }
        body.insert("error_description".into(), self.to_string().into());
        if let (BearerError::InsufficientScope(required), true) = (self, with_scopes) {
            body.insert(
                "required_scopes".into(),
                required
                    .iter()
                    .map(|s| serde_json::Value::from(s.to_owned()))
                    .collect(),
            );
        }
        let bytes = Bytes::from(serde_json::Value::Object(body).to_string());
        let mut res = Response::new(bytes);
        *res.status_mut() = self.status();
        let headers = res.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(v) = self.challenge(realm, with_scopes, resource_metadata) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if matches!(self, BearerError::Unavailable(_)) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        res
    }
}

/// Escapes a string for an RFC 7230 quoted-string, dropping what a header cannot carry.
fn quote(s: &str) -> String {
    s.chars()
        .filter(|c| *c == '\t' || (' '..='~').contains(c))
        .flat_map(|c| match c {
            '"' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_per_case() {
        let realm = "api";
        assert_eq!(
            BearerError::Missing.www_authenticate(realm, false).unwrap(),
            "Bearer realm=\"api\""
        );
        let v = BearerError::InvalidToken("The access token has expired.".into())
            .www_authenticate(realm, false)
            .unwrap();
        assert_eq!(v, "Bearer realm=\"api\", error=\"invalid_token\", error_description=\"The access token has expired.\"");
        let scopes = Scopes::parse("read write").unwrap();
        let v = BearerError::InsufficientScope(scopes.clone())
            .www_authenticate(realm, true)
            .unwrap();
        assert!(v.ends_with(", scope=\"read write\""), "{v}");
        let v = BearerError::InsufficientScope(scopes)
            .www_authenticate(realm, false)
            .unwrap();
        assert!(!v.contains("scope=\""), "{v}");
        assert!(BearerError::Unavailable("down".into())
            .www_authenticate(realm, false)
            .is_none());
        assert_eq!(quote("a\"b\\c\nd"), "a\\\"b\\\\cd");
        let url = "https://api.example.com/.well-known/oauth-protected-resource/v1";
        assert_eq!(
            BearerError::Missing
                .www_authenticate_with_metadata(realm, false, url)
                .unwrap(),
            format!("Bearer realm=\"api\", resource_metadata=\"{url}\"")
        );
        let v = BearerError::InsufficientScope(Scopes::parse("read").unwrap())
            .www_authenticate_with_metadata(realm, false, url)
            .unwrap();
        assert!(
            v.ends_with(&format!(", scope=\"read\", resource_metadata=\"{url}\"")),
            "{v}"
        );
    }
}
