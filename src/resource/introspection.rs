//! [`IntrospectionValidator`]: RFC 7662 token introspection against a remote
//! authorization server, behind an expiry-bounded [`TokenCache`].
//!
//! Each check POSTs `token=…&token_type_hint=access_token` to the introspection URL,
//! authenticated with a bearer token (DOT's RESOURCE_SERVER_AUTH_TOKEN) or HTTP Basic
//! client credentials (RESOURCE_SERVER_INTROSPECTION_CREDENTIALS; id and secret
//! form-encoded first, RFC 6749 §2.3.1), with a timeout
//! (RESOURCE_SERVER_INTROSPECTION_TIMEOUT_SECONDS). Answers are cached by token digest for
//! `min(exp - now, RESOURCE_SERVER_TOKEN_CACHING_SECONDS)`; concurrent checks of one new
//! token make one call.
//!
//! Outcomes: `active: true` (and not past `exp`) → accepted; `active: false` → 401
//! `invalid_token`; no answer, a timeout, a non-200 status or a body that is not the
//! expected JSON → 503, not cached, retried by the next request.
//!
//! ## Differences from DOT
//! DOT treats an unreachable introspection server like an invalid token (the client is
//! told its good token is bad) and caches answers in its AccessToken table; this
//! validator answers 503 and caches in memory, keyed by a digest.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value};

use super::cache::{CacheEntry, TokenCache};
use super::error::BearerError;
use super::token::TokenInfo;
use super::validator::{BoxValidation, TokenValidator};
use crate::crypto::token_key;
use crate::scope::Scopes;
use crate::settings::Settings;

/// Largest introspection answer read (a normal one is a few hundred bytes).
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// How the resource server authenticates to the introspection endpoint.
#[derive(Clone)]
pub enum IntrospectionAuth {
    /// `Authorization: Bearer <token>` (RESOURCE_SERVER_AUTH_TOKEN).
    Bearer(String),
    /// HTTP Basic with client credentials (RESOURCE_SERVER_INTROSPECTION_CREDENTIALS).
    Basic {
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: String,
    },
}

impl std::fmt::Debug for IntrospectionAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntrospectionAuth::Bearer(_) => f.write_str("Bearer([redacted])"),
            IntrospectionAuth::Basic { client_id, .. } => f
                .debug_struct("Basic")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .finish(),
        }
    }
}

impl IntrospectionAuth {
    fn header_value(&self) -> String {
        match self {
            IntrospectionAuth::Bearer(token) => format!("Bearer {token}"),
            IntrospectionAuth::Basic {
                client_id,
                client_secret,
            } => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(client_id), enc(client_secret));
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
        }
    }
}

#[derive(Debug)]
struct Inner {
    client: reqwest::Client,
    url: reqwest::Url,
    authorization: http::HeaderValue,
    cache: TokenCache,
    audience: Option<super::AudienceCheck>,
}

/// An RFC 7662 introspection client with a cache. Cheap to clone.
#[derive(Clone, Debug)]
pub struct IntrospectionValidator {
    inner: Arc<Inner>,
}

/// A builder for [`IntrospectionValidator`].
#[derive(Debug)]
pub struct IntrospectionBuilder {
    url: String,
    auth: IntrospectionAuth,
    timeout: Duration,
    max_ttl: Duration,
    negative_ttl: Duration,
    capacity: u64,
    client: Option<reqwest::Client>,
    audience: Option<String>,
    allow_missing_audience: bool,
}

impl IntrospectionBuilder {
    /// Request timeout (default 5 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
    /// Longest time an answer is cached (default 36000 s); never past the token's `exp`.
    pub fn cache_ttl(mut self, ttl: Duration) -> Self {
        self.max_ttl = ttl;
        self
    }
    /// How long `active: false` answers are cached (default 0: not cached).
    pub fn negative_cache_ttl(mut self, ttl: Duration) -> Self {
        self.negative_ttl = ttl;
        self
    }
    /// Most tokens cached (default 100,000).
    pub fn cache_capacity(mut self, capacity: u64) -> Self {
        self.capacity = capacity;
        self
    }
    /// Accept only tokens whose introspected `aud` names `resource` (RFC 8707); see
    /// [`audience`](super::audience).
    pub fn audience(mut self, resource: impl Into<String>) -> Self {
        self.audience = Some(resource.into());
        self
    }
    /// With [`audience`](Self::audience): also accept tokens introspected without any
    /// `aud` (default: refused).
    pub fn allow_tokens_without_audience(mut self, allow: bool) -> Self {
        self.allow_missing_audience = allow;
        self
    }
    /// Use this HTTP client (connection pool, proxies, TLS roots) instead of a new one.
    pub fn client(mut self, client: reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Builds the validator; fails on a bad URL or credentials that cannot form a header.
    pub fn build(self) -> Result<IntrospectionValidator, BuildError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| BuildError(format!("introspection URL {:?}: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BuildError(format!(
                "introspection URL {:?} must be http or https",
                self.url
            )));
        }
        let mut authorization =
            http::HeaderValue::from_str(&self.auth.header_value()).map_err(|_| {
                BuildError(
                    "the introspection credentials contain characters a header cannot carry".into(),
                )
            })?;
        authorization.set_sensitive(true);
        let client = match self.client {
            Some(c) => c,
            None => reqwest::Client::builder()
                .timeout(self.timeout)
                .build()
                .map_err(|e| BuildError(format!("HTTP client: {e}")))?,
        };
        Ok(IntrospectionValidator {
            inner: Arc::new(Inner {
                client,
                url,
                authorization,
                cache: TokenCache::new(self.capacity, self.max_ttl, self.negative_ttl),
                audience: self.audience.map(|a| {
                    super::AudienceCheck::new([a]).allow_missing(self.allow_missing_audience)
                }),
            }),
        })
    }
}

/// The validator could not be built (bad configuration).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BuildError(String);

impl IntrospectionValidator {
    /// A builder for `url` authenticated with `auth`.
    pub fn builder(url: impl Into<String>, auth: IntrospectionAuth) -> IntrospectionBuilder {
        IntrospectionBuilder {
            url: url.into(),
            auth,
            timeout: Duration::from_secs(5),
            max_ttl: Duration::from_secs(36_000),
            negative_ttl: Duration::ZERO,
            capacity: 100_000,
            client: None,
            audience: None,
            allow_missing_audience: false,
        }
    }

    /// From DOT's settings: RESOURCE_SERVER_INTROSPECTION_URL, RESOURCE_SERVER_AUTH_TOKEN or
    /// RESOURCE_SERVER_INTROSPECTION_CREDENTIALS (the token wins, as in DOT),
    /// RESOURCE_SERVER_INTROSPECTION_TIMEOUT_SECONDS and RESOURCE_SERVER_TOKEN_CACHING_SECONDS.
    pub fn from_settings(settings: &Settings) -> Result<Self, BuildError> {
        let url = settings
            .resource_server_introspection_url
            .clone()
            .ok_or_else(|| BuildError("RESOURCE_SERVER_INTROSPECTION_URL is not set".into()))?;
        let auth = if let Some(token) = &settings.resource_server_auth_token {
            IntrospectionAuth::Bearer(token.expose().to_owned())
        } else if let Some((id, secret)) = &settings.resource_server_introspection_credentials {
            IntrospectionAuth::Basic {
                client_id: id.clone(),
                client_secret: secret.expose().to_owned(),
            }
        } else {
            return Err(BuildError(
                "set RESOURCE_SERVER_AUTH_TOKEN or RESOURCE_SERVER_INTROSPECTION_CREDENTIALS"
                    .into(),
            ));
        };
        Self::builder(url, auth)
            .timeout(settings.resource_server_introspection_timeout_seconds)
            .cache_ttl(settings.resource_server_token_caching_seconds)
            .build()
    }

    /// The cache (for diagnostics and tests).
    pub fn cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    async fn introspect(inner: Arc<Inner>, token: String) -> Result<CacheEntry, BearerError> {
        let unavailable = |why: String| {
            tracing::warn!(reason = %why, "token introspection failed");
            BearerError::Unavailable("the access token cannot be checked right now".into())
        };
        let body: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("token", &token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let mut res = inner
            .client
            .post(inner.url.clone())
            .header(http::header::AUTHORIZATION, inner.authorization.clone())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(format!("request: {e}")))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(unavailable(format!("status {}", res.status())));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| unavailable(format!("body: {e}")))?
        {
            if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(unavailable("answer too large".into()));
            }
            bytes.extend_from_slice(&chunk);
        }
        parse_body(&bytes).map_err(unavailable)
    }
}

/// Reads the body of an RFC 7662 answer (a JSON object). `Err` = malformed (→ 503).
pub(crate) fn parse_body(bytes: &[u8]) -> Result<CacheEntry, String> {
    let claims: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| format!("answer is not a JSON object: {e}"))?;
    parse_answer(claims)
}

/// Reads an RFC 7662 answer. `Err` = the answer is malformed (→ 503).
fn parse_answer(claims: Map<String, Value>) -> Result<CacheEntry, String> {
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(CacheEntry::inactive()),
        other => return Err(format!("\"active\" must be a boolean, got {other:?}")),
    }
    let int = |k: &str| -> Result<Option<i64>, String> {
        match claims.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .or_else(|| n.as_f64().map(|f| f as i64))
                .map(Some)
                .ok_or_else(|| format!("{k:?} is not a number")),
            Some(_) => Err(format!("{k:?} is not a number")),
        }
    };
    let string = |k: &str| -> Result<Option<String>, String> {
        match claims.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("{k:?} is not a string")),
        }
    };
    let exp = int("exp")?;
    if let Some(exp) = exp {
        let now = crate::model::Timestamp::now().unix();
        if exp <= now {
            return Ok(CacheEntry::inactive());
        }
    }
    let scopes = match string("scope")? {
        Some(s) => Scopes::parse(&s).map_err(|e| format!("\"scope\": {e}"))?,
        None => Scopes::new(),
    };
    let aud = match claims.get("aud") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or("\"aud\" holds a non-string")
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("\"aud\" is neither a string nor a list".into()),
    };
    let info = TokenInfo {
        active: true,
        scopes,
        client_id: string("client_id")?,
        username: string("username")?,
        sub: string("sub")?,
        exp,
        iat: int("iat")?,
        aud,
        claims,
    };
    Ok(CacheEntry::active(Arc::new(info)))
}

impl TokenValidator for IntrospectionValidator {
    type Future = BoxValidation;

    fn validate_now(&self, token: &str) -> Option<Result<Arc<TokenInfo>, BearerError>> {
        let outcome = self.inner.cache.get_now(&token_key(token))?;
        Some(super::AudienceCheck::apply(
            self.inner.audience.as_ref(),
            outcome,
        ))
    }

    fn validate(&self, token: String) -> BoxValidation {
        let inner = self.inner.clone();
        let key = token_key(&token);
        Box::pin(async move {
            let cache = inner.cache.clone();
            let audience = inner.audience.clone();
            let outcome = cache.get_or_load(key, Self::introspect(inner, token)).await;
            super::AudienceCheck::apply(audience.as_ref(), outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<CacheEntry, String> {
        parse_answer(v.as_object().unwrap().clone())
    }

    #[test]
    fn answers() {
        let future = crate::model::Timestamp::now().unix() + 600;
        let ok = parse(json!({"active": true, "scope": "read write", "exp": future, "client_id": "c", "aud": "api"})).unwrap();
        let info = ok.into_result().unwrap();
        assert!(info.scopes.contains("write"));
        assert_eq!(info.aud, vec!["api".to_string()]);
        assert!(parse(json!({"active": false}))
            .unwrap()
            .into_result()
            .is_err());
        assert!(
            parse(json!({"active": true, "exp": 1}))
                .unwrap()
                .into_result()
                .is_err(),
            "expired"
        );
        assert!(
            parse(json!({"active": "true"})).is_err(),
            "active must be a boolean"
        );
        assert!(
            parse(json!({"scope": "read"})).is_err(),
            "active is required"
        );
        assert!(parse(json!({"active": true, "exp": "soon"})).is_err());
        assert!(parse(json!({"active": true, "aud": [1]})).is_err());
    }

    #[test]
    fn basic_credentials_are_form_encoded() {
        let auth = IntrospectionAuth::Basic {
            client_id: "a b".into(),
            client_secret: "p:w".into(),
        };
        let v = auth.header_value();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(v.strip_prefix("Basic ").unwrap())
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "a+b:p%3Aw");
        assert!(!format!("{auth:?}").contains("p:w"));
    }
}
