//! [`JwtValidator`]: RFC 9068 JWT access tokens, checked locally with `jsonwebtoken`.
//!
//! * An explicit algorithm allow-list (default `RS256`); `none` cannot be expressed, and a
//!   key only verifies the family it belongs to, so an RSA public key is never used as an
//!   HMAC secret (the "HS/RS confusion").
//! * `iss`, `aud`, `exp` and `nbf` are checked with a leeway (default 30 s); `exp` is
//!   required. The header's `typ` must be `at+jwt` (RFC 9068 §2.1) unless relaxed, so an
//!   OpenID Connect ID token is never accepted as an access token.
//! * Keys: PEM, a JWK set, or a JWKS URL. A fetched set is kept per its
//!   `Cache-Control: max-age` (default 5 minutes), refetched when a token names a `kid` it
//!   does not hold — at most once per cool-down (default 10 s), so a flood of made-up
//!   `kid`s cannot turn into a flood of fetches — and swapped atomically. Every
//!   `DecodingKey` is built once per fetch, never per request.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};
use tokio::sync::Mutex as AsyncMutex;

use super::error::BearerError;
use super::token::TokenInfo;
use super::validator::{BoxValidation, TokenValidator};
use crate::scope::Scopes;

/// The validator could not be built (bad key or configuration).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct JwtBuildError(String);

#[derive(Clone)]
struct Key {
    kid: Option<String>,
    alg: Option<Algorithm>,
    key: DecodingKey,
}

#[derive(Clone, Default)]
struct KeySet {
    keys: Vec<Key>,
    fetched: Option<Instant>,
    max_age: Duration,
}

impl KeySet {
    fn find(&self, kid: Option<&str>, alg: Algorithm) -> Option<&Key> {
        let usable = |k: &&Key| k.alg.is_none_or(|a| a == alg);
        match kid {
            Some(kid) => self
                .keys
                .iter()
                .filter(usable)
                .find(|k| k.kid.as_deref() == Some(kid)),
            // No kid: only unambiguous when one key fits.
            None => {
                let mut fits = self.keys.iter().filter(usable);
                let first = fits.next();
                if fits.next().is_some() {
                    None
                } else {
                    first
                }
            }
        }
    }

    fn from_jwks(set: &JwkSet) -> Result<Vec<Key>, String> {
        let mut keys = Vec::new();
        for jwk in &set.keys {
            if matches!(
                jwk.common.public_key_use,
                Some(jsonwebtoken::jwk::PublicKeyUse::Encryption)
            ) {
                continue;
            }
            let key = match DecodingKey::from_jwk(jwk) {
                Ok(k) => k,
                Err(e) => {
                    tracing::warn!(kid = ?jwk.common.key_id, error = %e, "skipping an unusable JWK");
                    continue;
                }
            };
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                alg,
                key,
            });
        }
        if keys.is_empty() && !set.keys.is_empty() {
            return Err("no usable signing key in the JWK set".into());
        }
        Ok(keys)
    }
}

struct Remote {
    client: reqwest::Client,
    url: reqwest::Url,
    cooldown: Duration,
    default_max_age: Duration,
    last_attempt: AsyncMutex<Option<Instant>>,
}

struct Inner {
    /// Accepted algorithms, each with its own `Validation` (jsonwebtoken refuses a
    /// `Validation` whose algorithms span key families), built once.
    validations: Vec<(Algorithm, Validation)>,
    require_at_jwt: bool,
    keys: RwLock<Arc<KeySet>>,
    remote: Option<Remote>,
    /// Verified tokens by digest, when [`JwtValidatorBuilder::cache`] is on.
    cache: Option<super::cache::TokenCache>,
    /// The `aud` check (also done by jsonwebtoken unless tokens without one are allowed).
    audience: Option<super::AudienceCheck>,
}

/// A JWT access-token validator. Cheap to clone.
#[derive(Clone)]
pub struct JwtValidator {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwtValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtValidator")
            .field(
                "algorithms",
                &self
                    .inner
                    .validations
                    .iter()
                    .map(|(a, _)| *a)
                    .collect::<Vec<_>>(),
            )
            .field(
                "jwks_url",
                &self.inner.remote.as_ref().map(|r| r.url.as_str()),
            )
            .finish_non_exhaustive()
    }
}

/// A builder for [`JwtValidator`].
pub struct JwtValidatorBuilder {
    algorithms: Vec<Algorithm>,
    issuer: Option<String>,
    audience: Option<Vec<String>>,
    allow_missing_audience: bool,
    leeway: u64,
    require_at_jwt: bool,
    keys: Vec<Key>,
    jwks_url: Option<String>,
    cooldown: Duration,
    default_max_age: Duration,
    timeout: Duration,
    cache: Option<(Duration, u64)>,
    error: Option<String>,
}

impl JwtValidator {
    /// A builder: add keys or a JWKS URL, an issuer and an audience.
    pub fn builder() -> JwtValidatorBuilder {
        JwtValidatorBuilder {
            algorithms: vec![Algorithm::RS256],
            issuer: None,
            audience: None,
            allow_missing_audience: false,
            leeway: 30,
            require_at_jwt: true,
            keys: Vec::new(),
            jwks_url: None,
            cooldown: Duration::from_secs(10),
            default_max_age: Duration::from_secs(300),
            timeout: Duration::from_secs(5),
            cache: None,
            error: None,
        }
    }

    fn current_keys(&self) -> Arc<KeySet> {
        self.inner
            .keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Fetches the JWKS (if remote) unless a fetch happened within the cool-down.
    /// Returns whether the key set changed.
    async fn refresh(inner: &Inner, force: bool) -> Result<bool, BearerError> {
        let Some(remote) = &inner.remote else {
            return Ok(false);
        };
        let mut last = remote.last_attempt.lock().await;
        if let Some(at) = *last {
            let recent = at.elapsed() < remote.cooldown;
            let fresh = {
                let keys = inner.keys.read().unwrap_or_else(|e| e.into_inner());
                keys.fetched.is_some_and(|f| f.elapsed() < keys.max_age)
            };
            if recent || (!force && fresh) {
                return Ok(false);
            }
        }
        *last = Some(Instant::now());
        let unavailable = |why: String| {
            tracing::warn!(url = %remote.url, reason = %why, "JWKS fetch failed");
            BearerError::Unavailable("the token's signing keys cannot be fetched right now".into())
        };
        let res = remote
            .client
            .get(remote.url.clone())
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        if !res.status().is_success() {
            return Err(unavailable(format!("status {}", res.status())));
        }
        let max_age = res
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_max_age)
            .unwrap_or(remote.default_max_age);
        let bytes = res.bytes().await.map_err(|e| unavailable(e.to_string()))?;
        if bytes.len() > 256 * 1024 {
            return Err(unavailable("JWKS too large".into()));
        }
        let set: JwkSet = serde_json::from_slice(&bytes)
            .map_err(|e| unavailable(format!("not a JWK set: {e}")))?;
        let keys = KeySet::from_jwks(&set).map_err(unavailable)?;
        let new = Arc::new(KeySet {
            keys,
            fetched: Some(Instant::now()),
            max_age,
        });
        *inner.keys.write().unwrap_or_else(|e| e.into_inner()) = new;
        Ok(true)
    }

    /// The header checks that need no key: parseable, an accepted algorithm, `typ`.
    fn preflight<'a>(
        inner: &'a Inner,
        token: &str,
    ) -> Result<(jsonwebtoken::Header, &'a Validation), BearerError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed JWT"))?;
        let Some(validation) = inner
            .validations
            .iter()
            .find(|(a, _)| *a == header.alg)
            .map(|(_, v)| v)
        else {
            return Err(invalid("signing algorithm not accepted"));
        };
        if inner.require_at_jwt {
            let typ = header.typ.as_deref().unwrap_or_default();
            if !typ.eq_ignore_ascii_case("at+jwt")
                && !typ.eq_ignore_ascii_case("application/at+jwt")
            {
                return Err(invalid("not an access token (typ must be at+jwt)"));
            }
        }
        Ok((header, validation))
    }

    fn keys_stale(inner: &Inner, keys: &KeySet) -> bool {
        inner.remote.is_some() && keys.fetched.is_none_or(|f| f.elapsed() >= keys.max_age)
    }

    async fn check(inner: Arc<Inner>, token: String) -> Result<Arc<TokenInfo>, BearerError> {
        let (header, validation) = Self::preflight(&inner, &token)?;
        let this = JwtValidator {
            inner: inner.clone(),
        };
        let mut keys = this.current_keys();
        if Self::keys_stale(&inner, &keys) {
            // Expired (or never fetched) set: refresh; on failure keep using what we have.
            match Self::refresh(&inner, false).await {
                Ok(_) => keys = this.current_keys(),
                Err(e) if keys.keys.is_empty() => return Err(e),
                Err(_) => {}
            }
        }
        if keys.find(header.kid.as_deref(), header.alg).is_none() {
            // Unknown kid: maybe the issuer rotated keys. One fetch per cool-down.
            if Self::refresh(&inner, true).await? {
                keys = this.current_keys();
            }
        }
        let key = keys
            .find(header.kid.as_deref(), header.alg)
            .ok_or_else(|| invalid("unknown signing key"))?;
        super::AudienceCheck::apply(
            inner.audience.as_ref(),
            decode(&token, &key.key, validation),
        )
    }
}

fn invalid(why: &str) -> BearerError {
    BearerError::InvalidToken(format!("The access token is invalid: {why}."))
}

/// Verifies signature and claims with a known key.
fn decode(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Arc<TokenInfo>, BearerError> {
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => {
                BearerError::InvalidToken("The access token has expired.".into())
            }
            ErrorKind::ImmatureSignature => invalid("not valid yet"),
            ErrorKind::InvalidIssuer => invalid("wrong issuer"),
            ErrorKind::InvalidAudience => invalid("wrong audience"),
            ErrorKind::InvalidSignature => invalid("bad signature"),
            ErrorKind::MissingRequiredClaim(c) => invalid(&format!("missing claim {c}")),
            _ => invalid("rejected"),
        }
    })?;
    Ok(Arc::new(token_info(data.claims)))
}

/// `max-age=N` from a Cache-Control value (`no-store`/`no-cache` → 0).
fn parse_max_age(v: &str) -> Option<Duration> {
    let mut max_age = None;
    for part in v.split(',').map(str::trim) {
        let lower = part.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            max_age = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    max_age
}

fn token_info(claims: Map<String, Value>) -> TokenInfo {
    let string = |k: &str| claims.get(k).and_then(Value::as_str).map(str::to_owned);
    let int = |k: &str| claims.get(k).and_then(Value::as_i64);
    // RFC 9068 §2.2.3: `scope` is a space-separated string; some issuers send `scp` lists.
    let mut scopes = Scopes::new();
    match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) => scopes = Scopes::parse(s).unwrap_or_default(),
        (_, Some(Value::Array(items))) => {
            for s in items.iter().filter_map(Value::as_str) {
                let _ = scopes.insert(s);
            }
        }
        _ => {}
    }
    let aud = match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        _ => Vec::new(),
    };
    TokenInfo {
        active: true,
        scopes,
        client_id: string("client_id").or_else(|| string("azp")),
        username: string("preferred_username").or_else(|| string("username")),
        sub: string("sub"),
        exp: int("exp"),
        iat: int("iat"),
        aud,
        claims,
    }
}

impl JwtValidatorBuilder {
    /// Accepted algorithms (default `[RS256]`).
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms = algorithms.to_vec();
        self
    }
    /// Required `iss`.
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = Some(issuer.into());
        self
    }
    /// Accepted `aud` values (the token must name one): the resource's identifier, the
    /// confused-deputy defence of [`audience`](super::audience).
    pub fn audience(mut self, audience: &[&str]) -> Self {
        self.audience = Some(audience.iter().map(|s| s.to_string()).collect());
        self
    }
    /// With [`audience`](Self::audience): also accept tokens without an `aud` claim
    /// (default: refused).
    pub fn allow_tokens_without_audience(mut self, allow: bool) -> Self {
        self.allow_missing_audience = allow;
        self
    }
    /// Clock-skew leeway for `exp`/`nbf` in seconds (default 30).
    pub fn leeway(mut self, seconds: u64) -> Self {
        self.leeway = seconds;
        self
    }
    /// Accept tokens whose `typ` is not `at+jwt` (issuers that predate RFC 9068).
    pub fn allow_any_typ(mut self) -> Self {
        self.require_at_jwt = false;
        self
    }
    /// An RSA public key in PEM (used for RS256/RS384/RS512/PS*), with an optional `kid`.
    pub fn rsa_pem(mut self, pem: &[u8], kid: Option<&str>) -> Self {
        match DecodingKey::from_rsa_pem(pem) {
            Ok(key) => self.keys.push(Key {
                kid: kid.map(str::to_owned),
                alg: None,
                key,
            }),
            Err(e) => self.error = Some(format!("RSA public key: {e}")),
        }
        self
    }
    /// An HMAC secret (HS256/384/512), with an optional `kid`.
    pub fn hmac_secret(mut self, secret: &[u8], kid: Option<&str>) -> Self {
        self.keys.push(Key {
            kid: kid.map(str::to_owned),
            alg: None,
            key: DecodingKey::from_secret(secret),
        });
        self
    }
    /// The keys of a JWK set document.
    pub fn jwks_json(mut self, json: &str) -> Self {
        match serde_json::from_str::<JwkSet>(json)
            .map_err(|e| e.to_string())
            .and_then(|s| KeySet::from_jwks(&s))
        {
            Ok(keys) => self.keys.extend(keys),
            Err(e) => self.error = Some(format!("JWK set: {e}")),
        }
        self
    }
    /// Fetch keys from a JWKS URL (kept per Cache-Control, refetched on an unknown `kid`).
    pub fn jwks_url(mut self, url: impl Into<String>) -> Self {
        self.jwks_url = Some(url.into());
        self
    }
    /// Reads the authorization server's OpenID Connect discovery document (OIDC Discovery
    /// 1.0 §4; `issuer` is a URL like `https://auth.example.com/o`, the document is at
    /// `{issuer}/.well-known/openid-configuration`) and takes its `jwks_uri` and, unless
    /// [`issuer`](Self::issuer) was set, its `issuer`. The document's `issuer` must equal
    /// the URL it was fetched for (§4.3), so a wrong or spoofed document is refused.
    pub async fn discover(mut self, issuer: &str) -> Result<Self, JwtBuildError> {
        let issuer = issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| JwtBuildError(format!("HTTP client: {e}")))?;
        let doc: serde_json::Value = client
            .get(&url)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| JwtBuildError(format!("discovery {url}: {e}")))?
            .bytes()
            .await
            .map_err(|e| JwtBuildError(format!("discovery {url}: {e}")))
            .and_then(|body| {
                serde_json::from_slice(&body)
                    .map_err(|e| JwtBuildError(format!("discovery {url}: not JSON: {e}")))
            })?;
        let stated = doc["issuer"].as_str().unwrap_or_default();
        if stated.trim_end_matches('/') != issuer {
            return Err(JwtBuildError(format!(
                "discovery {url}: issuer {stated:?} is not {issuer:?}"
            )));
        }
        let jwks = doc["jwks_uri"]
            .as_str()
            .ok_or_else(|| JwtBuildError(format!("discovery {url}: no jwks_uri")))?;
        self.jwks_url = Some(jwks.to_owned());
        if self.issuer.is_none() {
            self.issuer = Some(stated.to_owned());
        }
        Ok(self)
    }

    /// Remember verified tokens (by SHA-256 digest) for at most `max_ttl` and never past
    /// their `exp`, up to `capacity` of them: a repeated JWT then costs a digest and a cache
    /// lookup instead of a signature check (~25 µs for RS256). Off by default; a token
    /// stays accepted for that long even if its key leaves the JWKS. Bad tokens are never
    /// remembered.
    pub fn cache(mut self, max_ttl: Duration, capacity: u64) -> Self {
        self.cache = Some((max_ttl, capacity));
        self
    }

    /// Shortest time between two JWKS fetches caused by unknown `kid`s (default 10 s).
    pub fn refetch_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Builds the validator.
    pub fn build(self) -> Result<JwtValidator, JwtBuildError> {
        if let Some(e) = self.error {
            return Err(JwtBuildError(e));
        }
        if self.algorithms.is_empty() {
            return Err(JwtBuildError("no algorithm accepted".into()));
        }
        if self.keys.is_empty() && self.jwks_url.is_none() {
            return Err(JwtBuildError("no key and no JWKS URL".into()));
        }
        let validations = self
            .algorithms
            .iter()
            .map(|alg| {
                // One algorithm per Validation: a key of another family is then refused.
                let mut validation = Validation::new(*alg);
                validation.leeway = self.leeway;
                validation.validate_nbf = true;
                // jsonwebtoken checks `iss` and `aud` only when the token has them (as
                // strings): a required issuer or audience must also be a required claim,
                // or a token without one (or with `"iss": 5`) passes (RFC 9068 §4).
                let mut required = vec!["exp"];
                if self.issuer.is_some() {
                    required.push("iss");
                }
                if self.audience.is_some() && !self.allow_missing_audience {
                    required.push("aud");
                }
                validation.set_required_spec_claims(&required);
                match &self.audience {
                    Some(aud) if !self.allow_missing_audience => validation.set_audience(aud),
                    // Checked after decoding (AudienceCheck), where a token without `aud`
                    // may pass.
                    _ => validation.validate_aud = false,
                }
                if let Some(iss) = &self.issuer {
                    validation.set_issuer(&[iss]);
                }
                (*alg, validation)
            })
            .collect();
        let remote = match self.jwks_url {
            None => None,
            Some(url) => Some(Remote {
                client: reqwest::Client::builder()
                    .timeout(self.timeout)
                    .build()
                    .map_err(|e| JwtBuildError(format!("HTTP client: {e}")))?,
                url: reqwest::Url::parse(&url)
                    .map_err(|e| JwtBuildError(format!("JWKS URL {url:?}: {e}")))?,
                cooldown: self.cooldown,
                default_max_age: self.default_max_age,
                last_attempt: AsyncMutex::new(None),
            }),
        };
        let static_set = KeySet {
            fetched: if remote.is_some() && self.keys.is_empty() {
                None
            } else {
                Some(Instant::now())
            },
            max_age: if remote.is_some() {
                Duration::ZERO
            } else {
                Duration::MAX
            },
            keys: self.keys,
        };
        Ok(JwtValidator {
            inner: Arc::new(Inner {
                validations,
                require_at_jwt: self.require_at_jwt,
                keys: RwLock::new(Arc::new(static_set)),
                remote,
                cache: self.cache.map(|(ttl, capacity)| {
                    super::cache::TokenCache::new(capacity, ttl, Duration::ZERO)
                }),
                audience: self.audience.map(|aud| {
                    super::AudienceCheck::new(aud).allow_missing(self.allow_missing_audience)
                }),
            }),
        })
    }
}

impl TokenValidator for JwtValidator {
    type Future = BoxValidation;

    fn validate(&self, token: String) -> BoxValidation {
        let inner = self.inner.clone();
        match inner.cache.clone() {
            None => Box::pin(Self::check(inner, token)),
            Some(cache) => {
                let key = crate::crypto::token_key(&token);
                Box::pin(async move {
                    let load = async move {
                        Self::check(inner, token)
                            .await
                            .map(super::cache::CacheEntry::active)
                    };
                    cache.get_or_load(key, load).await
                })
            }
        }
    }

    /// Verifies at once when the key is at hand (a fresh key set that has the `kid`);
    /// an unknown `kid` or a stale remote set goes the asynchronous way (JWKS fetch).
    fn validate_now(&self, token: &str) -> Option<Result<Arc<TokenInfo>, BearerError>> {
        if let Some(cache) = &self.inner.cache {
            // A hit answers; a miss goes the asynchronous way, which verifies and fills.
            return cache.get_now(&crate::crypto::token_key(token));
        }
        let (header, validation) = match Self::preflight(&self.inner, token) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        };
        let keys = self.current_keys();
        if Self::keys_stale(&self.inner, &keys) {
            return None;
        }
        let key = keys.find(header.kid.as_deref(), header.alg)?;
        Some(super::AudienceCheck::apply(
            self.inner.audience.as_ref(),
            decode(token, &key.key, validation),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control() {
        assert_eq!(
            parse_max_age("public, max-age=3600, stale-while-revalidate=60"),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(parse_max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(parse_max_age("public"), None);
    }

    /// Found by the `jwt` fuzz target: with an issuer and an audience required, a token
    /// without `iss` or `aud`, or with one that is not a string, was accepted.
    #[test]
    fn required_issuer_and_audience_must_be_present() {
        let secret = b"unit-test-hmac-secret";
        let strict = JwtValidator::builder()
            .algorithms(&[Algorithm::HS256])
            .hmac_secret(secret, None)
            .issuer("https://issuer.example")
            .audience(&["api"])
            .build()
            .unwrap();
        let relaxed = JwtValidator::builder()
            .algorithms(&[Algorithm::HS256])
            .hmac_secret(secret, None)
            .build()
            .unwrap();
        let sign = |claims: serde_json::Value| {
            let mut header = jsonwebtoken::Header::new(Algorithm::HS256);
            header.typ = Some("at+jwt".into());
            let key = jsonwebtoken::EncodingKey::from_secret(secret);
            jsonwebtoken::encode(&header, &claims, &key).unwrap()
        };
        let exp = crate::model::Timestamp::now().unix() + 600;
        let validate = |v: &JwtValidator, claims| v.validate_now(&sign(claims)).unwrap();

        let good = serde_json::json!({"iss": "https://issuer.example", "aud": "api", "exp": exp});
        assert!(validate(&strict, good).is_ok());
        for claims in [
            serde_json::json!({"aud": "api", "exp": exp}),
            serde_json::json!({"iss": 5, "aud": "api", "exp": exp}),
            serde_json::json!({"iss": "https://issuer.example", "exp": exp}),
            serde_json::json!({"iss": "https://issuer.example", "aud": {"a": 1}, "exp": exp}),
        ] {
            let shown = claims.to_string();
            assert!(
                matches!(validate(&strict, claims), Err(BearerError::InvalidToken(m)) if m.contains("missing claim")),
                "{shown}"
            );
        }
        // Without a required issuer or audience, neither claim is needed.
        assert!(validate(&relaxed, serde_json::json!({"exp": exp})).is_ok());
    }
}
