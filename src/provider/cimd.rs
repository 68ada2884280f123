//! Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document, the way the
//! MCP authorization spec prefers; DOT's `CIMD_*` settings): a `client_id` that is an
//! `https` URL names a JSON document, served there by the client, that describes it.
//!
//! With `CIMD_ENABLED`, the authorization and token endpoints resolve such a client id by
//! fetching the document, and keep the client as a public, authorization-code
//! application (stored, so that its codes and tokens belong to it) until the document's
//! `Cache-Control: max-age` — clamped to `CIMD_METADATA_MIN_AGE_SECONDS` …
//! `CIMD_METADATA_MAX_AGE_SECONDS` — runs out; then the next use fetches it again and
//! applies what changed (redirect URIs, name).
//!
//! The fetch is hardened against server-side request forgery:
//!
//! * the client id must be an `https` URL with a path, without user information, query,
//!   fragment or dot segments; with `CIMD_ALLOWED_HOSTS` non-empty, its host must be one
//!   of them;
//! * every address the host resolves to (or an IP-literal host) must be public: loopback,
//!   private (RFC 1918, unique-local), link-local, CGNAT, unspecified, multicast and
//!   documentation ranges are refused — checked in the connection's own DNS resolution,
//!   so a rebinding name cannot slip a private address in after the check;
//! * no proxy; redirects only to the same host (at most 3); the answer must be 200
//!   `application/json` within `CIMD_FETCH_TIMEOUT_SECONDS` and at most
//!   `CIMD_MAX_DOCUMENT_SIZE` bytes (read in chunks, abandoned past the limit);
//! * at most `CIMD_MAX_CONCURRENT_FETCHES` fetches at once (further ones: 503), and a
//!   failed fetch is remembered for `CIMD_FAILURE_BACKOFF_SECONDS`.
//!
//! The document's `client_id` must equal the URL exactly; `redirect_uris` are required
//! and compared exactly at the authorization endpoint (as for every client); its
//! `token_endpoint_auth_method` must be `none` (absent means the same) — the client is
//! public and uses PKCE; `grant_types` may name `authorization_code` and
//! `refresh_token` only. For development, `CIMD_ALLOW_LOOPBACK` (not DOT's) accepts a
//! loopback host, over `http` too.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::Expiry;
use serde_json::{Map, Value};

use super::error::{ErrorCode, OAuthError};
use crate::model::{Algorithm, ClientType, GrantType, NewApplication, Timestamp};
use crate::settings::Settings;
use crate::store::{Store, StoreError};

/// Why a client id metadata document was not accepted (said to the client), and
/// whether the cause may go away by itself (the host unreachable, slow or failing).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CimdError {
    message: String,
    transient: bool,
}

fn refuse(why: impl Into<String>) -> CimdError {
    CimdError {
        message: why.into(),
        transient: false,
    }
}

fn unreachable(why: impl Into<String>) -> CimdError {
    CimdError {
        message: why.into(),
        transient: true,
    }
}

/// Whether `ip` is an address a fetch may reach.
fn public(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                return allow_loopback;
            }
            !(v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || (a == 198 && (b == 18 || b == 19)) // benchmarking, RFC 2544
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return public(IpAddr::V4(v4), allow_loopback);
            }
            if v6.is_loopback() {
                return allow_loopback;
            }
            let s = v6.segments();
            let embedded = |hi: u16, lo: u16| {
                std::net::Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8)
            };
            // NAT64 (RFC 6052) and 6to4 (RFC 3056) carry an IPv4 address: judge that one.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return public(IpAddr::V4(embedded(s[6], s[7])), allow_loopback);
            }
            if s[0] == 0x2002 {
                return public(IpAddr::V4(embedded(s[1], s[2])), allow_loopback);
            }
            !(v6.is_unspecified()
                || v6.is_multicast()
                || s[..6] == [0; 6] // IPv4-compatible (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64, RFC 8215
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] & 0xffc0) == 0xfec0 // site local (deprecated)
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only, RFC 6666
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

/// Whether `client_id` is one to resolve with a metadata document (before any check): a
/// URL, which no other client id can be (`createapplication` refuses `:` in them), so
/// that an `http` one is refused as such rather than as an unknown client.
pub(crate) fn looks_like_document(client_id: &str) -> bool {
    client_id.starts_with("https://") || client_id.starts_with("http://")
}

/// Checks a client id URL (see the [module docs](self)).
pub fn check_client_id_url(
    client_id: &str,
    allowed_hosts: &[String],
    allow_loopback: bool,
) -> Result<url::Url, CimdError> {
    let url = url::Url::parse(client_id)
        .map_err(|_| refuse(format!("the client_id {client_id:?} is not a URL")))?;
    let host = url
        .host_str()
        .ok_or_else(|| refuse("the client_id URL has no host"))?
        .to_ascii_lowercase();
    let loopback_host = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => {}
        "http" if allow_loopback && loopback_host => {}
        _ => return Err(refuse("the client_id URL must be https")),
    }
    if loopback_host && !allow_loopback {
        return Err(refuse("the client_id URL names a loopback host"));
    }
    if client_id.contains('#') {
        return Err(refuse("the client_id URL must not have a fragment"));
    }
    if url.query().is_some() {
        return Err(refuse("the client_id URL must not have a query"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse("the client_id URL must not carry user information"));
    }
    // The URL as written: `url` has already resolved any `.`/`..` segments.
    let path = client_id
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    if path.len() <= 1 {
        return Err(refuse("the client_id URL must have a path"));
    }
    if path.split('/').any(|seg| seg == "." || seg == "..") {
        return Err(refuse("the client_id URL must not have dot segments"));
    }
    if url.as_str() != client_id {
        return Err(refuse("the client_id URL is not in normalized form"));
    }
    // The https port only (a fetch must not become a port scan), but for development.
    if url.port().is_some() && !allow_loopback {
        return Err(refuse("the client_id URL must use the default https port"));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        _ => None,
    };
    if ip.is_some_and(|ip| !public(ip, allow_loopback)) {
        return Err(refuse("the client_id URL names a private address"));
    }
    if !allowed_hosts.is_empty() && !allowed_hosts.iter().any(|h| h.eq_ignore_ascii_case(&host)) {
        return Err(refuse(format!(
            "the host {host:?} is not in CIMD_ALLOWED_HOSTS"
        )));
    }
    Ok(url)
}

/// A DNS resolver that answers only public addresses (see [`public`]).
struct PublicOnly {
    allow_loopback: bool,
}

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_loopback = self.allow_loopback;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| public(a.ip(), allow_loopback))
                .collect();
            if allowed.is_empty() || allowed.len() != found.len() {
                // One private address among public ones is a rebinding attempt as well.
                return Err(format!("{host} resolves to a private address").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// A fetched document's client, until `fresh_until`.
#[derive(Clone, Debug)]
struct Fresh {
    ttl: Duration,
}

struct FreshExpiry;

impl Expiry<String, Fresh> for FreshExpiry {
    fn expire_after_create(&self, _k: &String, v: &Fresh, _at: Instant) -> Option<Duration> {
        Some(v.ttl)
    }
}

/// The resolver of metadata-document client ids. Built once per provider.
pub(crate) struct Cimd {
    client: reqwest::Client,
    fresh: Cache<String, Fresh>,
    failures: Cache<String, CimdError>,
    permits: Option<Arc<tokio::sync::Semaphore>>,
}

impl std::fmt::Debug for Cimd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cimd")
            .field("fresh", &self.fresh.entry_count())
            .field("failures", &self.failures.entry_count())
            .finish()
    }
}

impl Cimd {
    pub(crate) fn new(settings: &Settings) -> Result<Self, String> {
        let allow_loopback = settings.cimd_allow_loopback;
        let client = reqwest::Client::builder()
            .timeout(settings.cimd_fetch_timeout_seconds)
            .connect_timeout(settings.cimd_fetch_timeout_seconds)
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly { allow_loopback }))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_host = attempt.previous().first().and_then(|u| u.host_str())
                    == attempt.url().host_str();
                if attempt.previous().len() > 3 || !same_host {
                    attempt.error("a redirect to another host (or too many redirects)")
                } else {
                    attempt.follow()
                }
            }))
            .user_agent(concat!("tower-oauth-toolkit/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("CIMD HTTP client: {e}"))?;
        Ok(Cimd {
            client,
            fresh: Cache::builder()
                .max_capacity(100_000)
                .expire_after(FreshExpiry)
                .build(),
            failures: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(
                    settings
                        .cimd_failure_backoff_seconds
                        .max(Duration::from_millis(1)),
                )
                .build(),
            permits: (settings.cimd_max_concurrent_fetches > 0).then(|| {
                Arc::new(tokio::sync::Semaphore::new(
                    settings.cimd_max_concurrent_fetches,
                ))
            }),
        })
    }

    /// Makes sure the stored client for `client_id` reflects a current document: nothing
    /// to do for another kind of client id or a fresh one; otherwise fetch, check and
    /// store it. `Ok(true)` when the client's row changed (callers drop cached copies).
    pub(crate) async fn refresh<S: Store>(
        &self,
        settings: &Settings,
        store: &S,
        client_id: &str,
    ) -> Result<bool, OAuthError> {
        if !settings.cimd_enabled || !looks_like_document(client_id) {
            return Ok(false);
        }
        if self.fresh.get(client_id).await.is_some() {
            return Ok(false);
        }
        if let Some(e) = self.failures.get(client_id).await {
            return self.failed(store, client_id, &e).await;
        }
        let _permit = match &self.permits {
            Some(p) => Some(p.clone().try_acquire_owned().map_err(|_| {
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "Too many client metadata documents are being fetched; try again.",
                )
                .with_retry_after(1)
            })?),
            None => None,
        };
        let (doc, max_age) = match self.fetch(settings, client_id).await {
            Ok(v) => v,
            Err(e) => {
                tracing::info!(client_id, reason = %e, "client metadata document refused");
                self.failures.insert(client_id.to_owned(), e.clone()).await;
                return self.failed(store, client_id, &e).await;
            }
        };
        let changed = store_client(settings, store, client_id, &doc).await?;
        let ttl = max_age.clamp(
            settings.cimd_metadata_min_age_seconds,
            settings
                .cimd_metadata_max_age_seconds
                .max(settings.cimd_metadata_min_age_seconds),
        );
        self.fresh.insert(client_id.to_owned(), Fresh { ttl }).await;
        Ok(changed)
    }

    /// The answer to a failed fetch: a client stored from an earlier document goes on
    /// working while its host is unreachable (stale, until a fetch succeeds); otherwise
    /// 503 for an unreachable host, `invalid_client` for a refused document.
    async fn failed<S: Store>(
        &self,
        store: &S,
        client_id: &str,
        e: &CimdError,
    ) -> Result<bool, OAuthError> {
        if !e.transient {
            return Err(invalid_client(e));
        }
        if store
            .find_application_by_client_id(client_id)
            .await?
            .is_some()
        {
            tracing::warn!(client_id, reason = %e, "client metadata document unreachable: using the stored copy");
            return Ok(false);
        }
        Err(OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            format!("Client metadata document: {e}; try again later."),
        )
        .with_retry_after(5))
    }

    /// Fetches and checks the document: its contents and its `max-age`.
    async fn fetch(
        &self,
        settings: &Settings,
        client_id: &str,
    ) -> Result<(Document, Duration), CimdError> {
        let url = check_client_id_url(
            client_id,
            &settings.cimd_allowed_hosts,
            settings.cimd_allow_loopback,
        )?;
        let mut res = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| {
                // The cause stays in the log: said to the client, "connection refused" or
                // "resolves to a private address" would map the internal network.
                tracing::info!(client_id, cause = %root(&e), "client metadata document fetch failed");
                if e.is_redirect() {
                    refuse("the client metadata document redirects to another host (or too often)")
                } else if e.is_timeout() {
                    unreachable("fetching the client metadata document timed out")
                } else {
                    unreachable("the client metadata document could not be fetched")
                }
            })?;
        if res.status().is_server_error() {
            return Err(unreachable(format!(
                "the client metadata document answered {}",
                res.status()
            )));
        }
        if res.status() != reqwest::StatusCode::OK {
            return Err(refuse(format!(
                "the client metadata document answered {}",
                res.status()
            )));
        }
        let json = res
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|t| {
                let t = t.trim().to_ascii_lowercase();
                t == "application/json" || t.ends_with("+json")
            });
        if !json {
            return Err(refuse(
                "the client metadata document is not application/json",
            ));
        }
        let max_age = res
            .headers()
            .get(http::header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .and_then(max_age)
            .unwrap_or(Duration::ZERO);
        let limit = settings.cimd_max_document_size;
        if res.content_length().is_some_and(|n| n > limit as u64) {
            return Err(refuse(format!(
                "the client metadata document is larger than {limit} bytes"
            )));
        }
        let mut body = Vec::new();
        loop {
            match res.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > limit {
                        return Err(refuse(format!(
                            "the client metadata document is larger than {limit} bytes"
                        )));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) if e.is_timeout() => {
                    return Err(unreachable(
                        "fetching the client metadata document timed out",
                    ))
                }
                Err(e) => {
                    tracing::info!(client_id, cause = %root(&e), "client metadata document read failed");
                    return Err(unreachable(
                        "the client metadata document could not be read",
                    ));
                }
            }
        }
        let doc = Document::parse(&body, client_id, settings)?;
        Ok((doc, max_age))
    }
}

/// The innermost cause of a fetch error (reqwest's outer message says only "error
/// sending request").
fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn invalid_client(e: &CimdError) -> OAuthError {
    OAuthError::invalid_client(format!("Client metadata document refused: {e}."))
}

/// `max-age=N` of a Cache-Control value (`no-store`/`no-cache`: 0).
fn max_age(v: &str) -> Option<Duration> {
    let mut found = None;
    for part in v.split(',').map(str::trim) {
        let lower = part.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(n) = lower.strip_prefix("max-age=") {
            found = n
                .trim_matches('"')
                .parse::<u64>()
                .ok()
                .map(Duration::from_secs);
        }
    }
    found
}

/// What the server takes from a document.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Document {
    redirect_uris: String,
    post_logout_redirect_uris: String,
    name: String,
}

impl Document {
    fn parse(body: &[u8], client_id: &str, settings: &Settings) -> Result<Document, CimdError> {
        let m: Map<String, Value> = serde_json::from_slice(body)
            .map_err(|_| refuse("the client metadata document is not a JSON object"))?;
        if m.get("client_id").and_then(Value::as_str) != Some(client_id) {
            return Err(refuse(
                "the document's client_id is not the URL it was fetched from",
            ));
        }
        let list = |k: &str| -> Result<Vec<String>, CimdError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|i| {
                        i.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| refuse(format!("{k} must be an array of strings")))
                    })
                    .collect(),
                Some(_) => Err(refuse(format!("{k} must be an array of strings"))),
            }
        };
        let redirect_uris = list("redirect_uris")?;
        if redirect_uris.is_empty() {
            return Err(refuse("the document has no redirect_uris"));
        }
        for uri in &redirect_uris {
            if uri.contains(char::is_whitespace) {
                return Err(refuse(format!(
                    "the redirect URI {uri:?} contains whitespace"
                )));
            }
            crate::validators::validate_redirect_uri(
                uri,
                &settings.allowed_redirect_uri_schemes,
                false,
            )
            .map_err(|e| refuse(format!("redirect URI {uri:?}: {e}")))?;
        }
        match m.get("token_endpoint_auth_method").and_then(Value::as_str) {
            None | Some("none") => {}
            Some(other) => {
                return Err(refuse(format!(
                    "token_endpoint_auth_method {other:?} is not supported for metadata-document clients (none)"
                )))
            }
        }
        if let Some(bad) = list("grant_types")?
            .iter()
            .find(|g| !matches!(g.as_str(), "authorization_code" | "refresh_token"))
        {
            return Err(refuse(format!("the grant type {bad:?} is not supported")));
        }
        let post_logout = list("post_logout_redirect_uris")?;
        let name = m
            .get("client_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .chars()
            .take(255)
            .collect();
        Ok(Document {
            redirect_uris: redirect_uris.join(" "),
            post_logout_redirect_uris: post_logout.join(" "),
            name,
        })
    }
}

/// Inserts or updates the stored client of `doc`; whether its row changed.
async fn store_client<S: Store>(
    settings: &Settings,
    store: &S,
    client_id: &str,
    doc: &Document,
) -> Result<bool, OAuthError> {
    let now = Timestamp::now();
    if let Some(mut app) = store.find_application_by_client_id(client_id).await? {
        let same = app.redirect_uris == doc.redirect_uris
            && app.post_logout_redirect_uris == doc.post_logout_redirect_uris
            && app.name == doc.name;
        if same {
            return Ok(false);
        }
        app.redirect_uris = doc.redirect_uris.clone();
        app.post_logout_redirect_uris = doc.post_logout_redirect_uris.clone();
        app.name = doc.name.clone();
        app.updated = now;
        store.update_application(&app).await?;
        return Ok(true);
    }
    let mut new = NewApplication::new(client_id, ClientType::Public, GrantType::AuthorizationCode);
    new.redirect_uris = doc.redirect_uris.clone();
    new.post_logout_redirect_uris = doc.post_logout_redirect_uris.clone();
    new.name = doc.name.clone();
    new.algorithm = if settings.oidc_rsa_private_key.is_empty() {
        Algorithm::NoAlgorithm
    } else {
        Algorithm::Rs256
    };
    new.created = now;
    match store.create_application(new).await {
        // Another request stored it first: the same document.
        Ok(_) | Err(StoreError::Conflict(_)) => Ok(true),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_id_urls() {
        let ok = |u: &str| check_client_id_url(u, &[], false);
        assert!(ok("https://app.example.com/client.json").is_ok());
        for bad in [
            "http://app.example.com/client.json",
            "https://app.example.com",
            "https://app.example.com/",
            "https://app.example.com/a/../b",
            "https://app.example.com/./b",
            "https://app.example.com/c?x=1",
            "https://app.example.com/c#f",
            "https://u:p@app.example.com/c",
            "https://10.0.0.1/c",
            "https://192.168.1.1/c",
            "https://169.254.169.254/latest",
            "https://[fe80::1]/c",
            "https://[::ffff:10.0.0.1]/c",
            "https://127.0.0.1/c",
            "https://localhost/c",
            "https://APP.example.com/c",
        ] {
            assert!(ok(bad).is_err(), "{bad}");
        }
        let only = vec!["app.example.com".to_owned()];
        assert!(check_client_id_url("https://other.example.com/c", &only, false).is_err());
        assert!(check_client_id_url("https://app.example.com/c", &only, false).is_ok());
        assert!(check_client_id_url("http://127.0.0.1:8080/c", &[], true).is_ok());
        assert!(check_client_id_url("https://app.example.com:6379/c", &[], false).is_err());
        assert!(check_client_id_url("http://example.com/c", &[], true).is_err());
    }

    #[test]
    fn addresses() {
        for (ip, ok) in [
            ("93.184.216.34", true),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("100.64.0.1", false),
            ("0.0.0.0", false),
            ("255.255.255.255", false),
            ("2606:2800:220:1:248:1893:25c8:1946", true),
            ("fd00::1", false),
            ("::", false),
            ("64:ff9b::a9fe:a9fe", false),
            ("64:ff9b::5db8:d822", true),
            ("2002:0a00:0001::1", false),
            ("::a00:1", false),
            ("fec0::1", false),
            ("2001:0:4136:e378::1", false),
            ("198.18.0.1", false),
        ] {
            assert_eq!(public(ip.parse().unwrap(), true), ok, "{ip}");
        }
        assert!(!public("127.0.0.1".parse().unwrap(), false));
        assert!(public("127.0.0.1".parse().unwrap(), true));
    }

    #[test]
    fn cache_control() {
        assert_eq!(
            max_age("public, max-age=600"),
            Some(Duration::from_secs(600))
        );
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
    }
}
