//! The authorization server: DOT's endpoints as an axum [`Router`] over a [`Store`].
//!
//! A [`Provider`] is built from [`Settings`], a [`Store`] and a [`UserAuthenticator`]
//! (the host's users). [`Provider::router`] gives the endpoints, to mount under a prefix
//! (DOT's is `/o/`):
//!
//! | path | RFC | |
//! |---|---|---|
//! | `authorize/` | RFC 6749 §3.1, §4.1, §4.2 | GET shows login/consent, POST decides |
//! | `token/` | RFC 6749 §3.2, §4.1.3, §4.3, §4.4, §6; RFC 8628 §3.4 | POST, form-encoded |
//! | `revoke_token/` | RFC 7009 | POST |
//! | `introspect/` | RFC 7662 | GET and POST |
//! | `device-authorization/` | RFC 8628 §3.1 | POST, form-encoded: a device asks for a device code and a user code |
//! | `device/` | RFC 8628 §3.3 | GET and POST: the user types the code and approves (login required) |
//! | `login/` | — | the built-in login page (when the host has no session of its own) |
//! | `userinfo/` | OIDC Core §5.3 | GET and POST, Bearer token with `openid` (OIDC on) |
//! | `logout/` | OIDC RP-Initiated Logout 1.0 | when `OIDC_RP_INITIATED_LOGOUT_ENABLED` |
//! | `register/`, `register/<client_id>/` | RFC 7591, RFC 7592 | when `DCR_ENABLED` (see below) |
//! | `.well-known/openid-configuration` | OIDC Discovery 1.0 | OIDC on |
//! | `.well-known/jwks.json` | RFC 7517 | OIDC on; `Cache-Control: max-age=OIDC_JWKS_MAX_AGE_SECONDS` |
//! | `.well-known/oauth-authorization-server` | RFC 8414 | always; also at the host's root, path inserted ([`Provider::root_metadata_router`]) |
//!
//! The authorization and token endpoints take RFC 8707 `resource` indicators (see
//! [`resources`]): the tokens' audience, which introspection and JWT access tokens
//! report as `aud` and the resource side's validators check.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tower_oauth_toolkit::provider::{Provider, StoreUsers};
//! use tower_oauth_toolkit::settings::Settings;
//! use tower_oauth_toolkit::store::memory::MemoryStore;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Arc::new(MemoryStore::new());
//! let provider = Provider::builder(Settings::default(), store.clone(), StoreUsers::new(store))
//!     .secret_key(b"a long random key from your configuration".to_vec())
//!     .build()?;
//! let app = axum::Router::new().nest("/o", provider.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! The protocol logic lives in plain async functions over the store ([`grants`],
//! [`client_auth`]); the axum handlers only parse and answer.
//!
//! ## Dynamic client registration
//! With `DCR_ENABLED`, `POST register/` takes RFC 7591 client metadata as JSON and
//! answers 201 with the new `client_id`, the secret of a confidential client (once; stored
//! hashed), a `registration_access_token` (stored as a checksum) and the
//! `registration_client_uri`, where that token reads (`GET`), replaces (`PUT`, a new
//! token when `DCR_ROTATE_REGISTRATION_TOKEN_ON_UPDATE`) or deletes (`DELETE`, 204) the
//! registration. `DCR_REGISTRATION_POLICY` says who may register: a signed-in user
//! (DOT's default), an initial access token, or anyone; `DCR_REGISTRATIONS_PER_HOUR`
//! bounds the requests per address, and `cleartokens` removes registered clients unused
//! for `DCR_UNUSED_CLIENT_MAX_AGE_SECONDS`. The metadata documents name the
//! `registration_endpoint`. Errors are RFC 7591's `invalid_redirect_uri` and
//! `invalid_client_metadata`; a bad registration token is 401 `invalid_token`.
//!
//! ## Differences from DOT
//! - A replayed authorization code fails **and revokes every token issued from it**
//!   (RFC 6749 §4.1.2); DOT only fails.
//! - Tokens are stored only as SHA-256 checksums (DOT's RFC 9700 token-storage mode is
//!   always on). For `REFRESH_TOKEN_GRACE_PERIOD_SECONDS`, the successor tokens are derived
//!   from the presented refresh token with a server key (HMAC-SHA-256), so a retry inside
//!   the window gets the same pair back without any token stored in plaintext.
//! - Verified client secrets are remembered for a short time in memory (keyed by a
//!   digest of id, secret and stored hash), so a hashed secret costs one slow hash per
//!   client, not one per request.

pub mod authorize;
#[cfg(feature = "cimd")]
pub mod cimd;
pub mod client_auth;
pub(crate) mod client_metadata;
pub mod device;
pub mod error;
pub mod grants;
pub mod introspect;
pub mod oidc;
pub(crate) mod pages;
pub(crate) mod params;
pub mod pkce;
pub(crate) mod redirect_uri;
pub(crate) mod registration;
pub mod resources;
pub mod revoke;
pub(crate) mod session;
pub(crate) mod templates;
pub(crate) mod throttle;
pub mod token;
pub mod users;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use hmac::{Hmac, Mac};
use sha2::Sha256;

pub use error::{ErrorCode, OAuthError};
pub use users::{AuthenticatedUser, StoreUsers, UserAuthenticator};

use crate::scope::ScopesBackend;
use crate::settings::Settings;
use crate::store::Store;

/// The largest request body the endpoints read (forms of a few parameters): 64 KiB.
pub const MAX_BODY: usize = 64 * 1024;

/// Why a provider could not be built.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ProviderBuildError(String);

/// Keys derived from the server's secret key, one per purpose.
pub(crate) struct Keys {
    /// Signs the session cookie.
    pub(crate) session: [u8; 32],
    /// Derives CSRF tokens.
    pub(crate) csrf: [u8; 32],
    /// Derives a refresh token's successor tokens (grace-period retries).
    pub(crate) successor: [u8; 32],
}

impl Keys {
    fn derive(secret: &[u8]) -> Keys {
        let sub = |label: &str| -> [u8; 32] {
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("any key length");
            mac.update(label.as_bytes());
            mac.finalize().into_bytes().into()
        };
        Keys {
            session: sub("tower-oauth-toolkit session v1"),
            csrf: sub("tower-oauth-toolkit csrf v1"),
            successor: sub("tower-oauth-toolkit refresh successor v1"),
        }
    }
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keys([redacted])")
    }
}

/// HMAC-SHA-256 of `parts` (length-prefixed, so no two lists collide) under `key`.
pub(crate) fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    for p in parts {
        mac.update(&(p.len() as u64).to_be_bytes());
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// Everything the endpoints share.
pub(crate) struct Inner<S, U> {
    pub(crate) settings: Arc<Settings>,
    pub(crate) minter: grants::Minter,
    /// OpenID Connect, when `OIDC_ENABLED`.
    pub(crate) oidc: Option<oidc::Oidc>,
    /// The claims about users (ID tokens, userinfo).
    pub(crate) claims: Arc<dyn oidc::id_token::ClaimsProvider>,
    pub(crate) store: Arc<S>,
    pub(crate) users: U,
    pub(crate) scopes: Arc<dyn ScopesBackend>,
    /// Which RFC 8707 resources a client may ask for.
    pub(crate) resource_policy: Arc<dyn resources::ResourcePolicy>,
    pub(crate) keys: Keys,
    pub(crate) secrets: client_auth::VerifiedSecrets,
    pub(crate) applications: client_auth::Applications,
    /// Failed sign-ins and client authentications.
    pub(crate) throttle: throttle::Throttle,
    /// The public URL of the server (`--issuer`), when configured.
    pub(crate) issuer: Option<url::Url>,
    /// The compiled pages (login, consent, error).
    pub(crate) templates: templates::Templates,
    /// Client ids and secrets of dynamically registered clients (RFC 7591).
    pub(crate) generators: crate::generators::Generators,
    /// Registration requests per address (DCR_REGISTRATIONS_PER_HOUR).
    pub(crate) registrations: registration::RateLimit,
    /// Client ID metadata documents (CIMD_ENABLED).
    #[cfg(feature = "cimd")]
    pub(crate) cimd: cimd::Cimd,
}

impl<S: Store, U> Inner<S, U> {
    /// Before a client id is looked up: a metadata-document client id (CIMD_ENABLED) is
    /// fetched and stored when its document is not fresh, and a cached copy of a changed
    /// client dropped. Nothing for other client ids.
    pub(crate) async fn resolve_client(&self, client_id: &str) -> Result<(), OAuthError> {
        #[cfg(feature = "cimd")]
        if self
            .cimd
            .refresh(&self.settings, &*self.store, client_id)
            .await?
        {
            self.applications.forget(client_id).await;
        }
        #[cfg(not(feature = "cimd"))]
        let _ = client_id;
        Ok(())
    }
}

/// The authorization server. Cheap to clone. See the [module docs](self).
pub struct Provider<S, U> {
    pub(crate) inner: Arc<Inner<S, U>>,
}

impl<S, U> Clone for Provider<S, U> {
    fn clone(&self) -> Self {
        Provider {
            inner: self.inner.clone(),
        }
    }
}

impl<S, U> std::fmt::Debug for Provider<S, U> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").finish_non_exhaustive()
    }
}

/// Builds a [`Provider`].
pub struct ProviderBuilder<S, U> {
    settings: Settings,
    store: Arc<S>,
    users: U,
    secret_key: Option<Vec<u8>>,
    template_dir: Option<PathBuf>,
    issuer: Option<url::Url>,
    secret_cache_ttl: Duration,
    secret_cache_capacity: u64,
    application_cache_ttl: Duration,
    claims: Option<Arc<dyn oidc::id_token::ClaimsProvider>>,
    generators: crate::generators::Generators,
    scopes: Option<Arc<dyn ScopesBackend>>,
    resource_policy: Arc<dyn resources::ResourcePolicy>,
}

impl<S: Store, U: UserAuthenticator> Provider<S, U> {
    /// Starts building a provider over `store` with the host's `users`.
    pub fn builder(settings: Settings, store: Arc<S>, users: U) -> ProviderBuilder<S, U> {
        ProviderBuilder {
            settings,
            store,
            users,
            secret_key: None,
            template_dir: None,
            issuer: None,
            secret_cache_ttl: Duration::from_secs(300),
            secret_cache_capacity: 10_000,
            application_cache_ttl: Duration::from_secs(5),
            generators: crate::generators::Generators::default(),
            scopes: None,
            claims: None,
            resource_policy: Arc::new(resources::DefaultResourcePolicy),
        }
    }

    /// The settings in use.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The store in use.
    pub fn store(&self) -> &Arc<S> {
        &self.inner.store
    }

    /// The endpoints, to mount under a prefix: `Router::new().nest("/o", provider.router())`.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/authorize/",
                get(authorize::authorize_get::<S, U>).post(authorize::authorize_post::<S, U>),
            )
            .route(
                "/login/",
                get(authorize::login_get::<S, U>).post(authorize::login_post::<S, U>),
            )
            .route(
                "/token/",
                post(token::token_endpoint::<S, U>).options(token::preflight::<S, U>),
            )
            .route(
                "/revoke_token/",
                post(revoke::revoke_endpoint::<S, U>).options(token::preflight::<S, U>),
            )
            .route(
                "/introspect/",
                get(introspect::introspect_get::<S, U>)
                    .post(introspect::introspect_post::<S, U>)
                    .options(token::preflight::<S, U>),
            )
            .route(
                "/.well-known/openid-configuration",
                get(oidc::discovery::openid_configuration::<S, U>),
            )
            .route("/.well-known/jwks.json", get(oidc::discovery::jwks::<S, U>))
            .route(
                "/.well-known/oauth-authorization-server",
                get(oidc::discovery::oauth_metadata::<S, U>),
            )
            .route(
                "/userinfo/",
                get(oidc::userinfo::userinfo_get::<S, U>)
                    .post(oidc::userinfo::userinfo_post::<S, U>)
                    .options(oidc::userinfo::userinfo_preflight::<S, U>),
            )
            .route(
                "/device-authorization/",
                post(device::device_authorization::<S, U>),
            )
            .route(
                "/device/",
                get(device::device_get::<S, U>).post(device::device_post::<S, U>),
            )
            .route(
                "/logout/",
                get(oidc::logout::logout_get::<S, U>).post(oidc::logout::logout_post::<S, U>),
            )
            .route("/register/", post(registration::register_post::<S, U>))
            .route(
                "/register/{client_id}/",
                get(registration::registration_get::<S, U>)
                    .put(registration::registration_put::<S, U>)
                    .delete(registration::registration_delete::<S, U>),
            )
            // Every endpoint takes a small form: refuse large bodies before reading them.
            .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
            .with_state(self.clone())
    }
}

impl<S: Store, U: UserAuthenticator> Provider<S, U> {
    /// The RFC 8414 document where RFC 8414 §3 puts it for an issuer with a path: at the
    /// host's root, `/.well-known/oauth-authorization-server` followed by `mount` (the
    /// prefix the [`router`](Self::router) is nested under, e.g. `"/o"`). Clients that
    /// start from an issuer identifier — RFC 9728's `authorization_servers`, the MCP
    /// authorization spec — look there, not under the mount. Merge it into the root
    /// router: `Router::new().nest("/o", p.router()).merge(p.root_metadata_router("/o"))`.
    pub fn root_metadata_router(&self, mount: &str) -> Router {
        let mount: Arc<str> = mount.trim_end_matches('/').into();
        let path = format!("/.well-known/oauth-authorization-server{mount}");
        let handler = move |state: axum::extract::State<Provider<S, U>>,
                            mut parts: http::request::Parts| {
            parts.extensions.insert(oidc::MountPath(mount.clone()));
            oidc::discovery::oauth_metadata::<S, U>(state, parts)
        };
        Router::new()
            .route(&path, get(handler))
            .with_state(self.clone())
    }
}

impl<S: Store, U: UserAuthenticator> ProviderBuilder<S, U> {
    /// The server's secret key (at least 32 bytes; overrides the `SECRET_KEY` setting):
    /// signs sessions and CSRF tokens and derives grace-period successor tokens. Every
    /// instance of one deployment needs the same key. Without either, a random key is made
    /// at start: sessions then end when the process does.
    pub fn secret_key(mut self, key: Vec<u8>) -> Self {
        self.secret_key = Some(key);
        self
    }

    /// The public URL of the server (`https://auth.example.com`): session cookies are
    /// `Secure` when it is https, and it is the OIDC issuer.
    pub fn issuer(mut self, url: &str) -> Result<Self, ProviderBuildError> {
        let parsed = url::Url::parse(url)
            .map_err(|e| ProviderBuildError(format!("issuer {url:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ProviderBuildError(format!(
                "issuer {url:?} must be http or https"
            )));
        }
        self.issuer = Some(parsed);
        Ok(self)
    }

    /// A directory of templates (`login.html`, `authorize.html`, `error.html`) that
    /// replace the built-in ones of the same name.
    pub fn template_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.template_dir = Some(dir.into());
        self
    }

    /// How long a verified client secret is remembered (default 300 s; zero turns the
    /// cache off) and how many are kept (default 10,000).
    pub fn secret_cache(mut self, ttl: Duration, capacity: u64) -> Self {
        self.secret_cache_ttl = ttl;
        self.secret_cache_capacity = capacity;
        self
    }

    /// How long an application read for client authentication is reused (default 5 s;
    /// zero reads the store on every request). Changes to an application — deletion, a
    /// new secret — take up to this long to apply.
    pub fn application_cache(mut self, ttl: Duration) -> Self {
        self.application_cache_ttl = ttl;
        self
    }

    /// The generators of client ids, client secrets, tokens and device user codes
    /// (DOT's `*_GENERATOR*` settings); default [`Generators::default`](crate::generators::Generators::default).
    pub fn generators(mut self, generators: crate::generators::Generators) -> Self {
        self.generators = generators;
        self
    }

    /// The scope catalogue (DOT `SCOPES_BACKEND_CLASS`); default
    /// [`SettingsScopes`](crate::scope::SettingsScopes) built from `SCOPES` and
    /// `DEFAULT_SCOPES`.
    pub fn scopes_backend(mut self, backend: Arc<dyn ScopesBackend>) -> Self {
        self.scopes = Some(backend);
        self
    }

    /// Which RFC 8707 `resource` values a client may ask for at the authorization and
    /// token endpoints (default [`DefaultResourcePolicy`](resources::DefaultResourcePolicy):
    /// any https URI, and http on a loopback host). A refused value is `invalid_target`.
    pub fn resource_policy(mut self, policy: impl resources::ResourcePolicy + 'static) -> Self {
        self.resource_policy = Arc::new(policy);
        self
    }

    /// The claims about users for ID tokens and userinfo (default: [`StandardClaims`]
    /// over the store's users: `preferred_username`, `email`).
    ///
    /// [`StandardClaims`]: oidc::id_token::StandardClaims
    pub fn claims_provider(mut self, claims: impl oidc::id_token::ClaimsProvider) -> Self {
        self.claims = Some(Arc::new(claims));
        self
    }

    /// Checks the settings and builds the provider.
    pub fn build(self) -> Result<Provider<S, U>, ProviderBuildError> {
        self.settings
            .validate()
            .map_err(|e| ProviderBuildError(e.to_string()))?;
        let configured = self.settings.secret_key.expose();
        let secret_key = self
            .secret_key
            .or_else(|| (!configured.is_empty()).then(|| configured.as_bytes().to_vec()));
        let key = match secret_key {
            Some(k) if k.len() < 32 => {
                return Err(ProviderBuildError(
                    "the secret key must be at least 32 bytes".into(),
                ))
            }
            Some(k) => k,
            None => {
                tracing::warn!(
                    "no secret key configured: using a random one; sessions end with this process"
                );
                let mut k = vec![0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut k[..]);
                k
            }
        };
        let scopes = self
            .scopes
            .clone()
            .unwrap_or_else(|| self.settings.scopes_backend());
        let templates =
            templates::Templates::load(self.template_dir.as_deref()).map_err(ProviderBuildError)?;
        let settings = Arc::new(self.settings);
        if settings.compliant_bcp_rfc9700_authz_response_iss
            && configured_issuer(&settings, self.issuer.as_ref()).is_none()
        {
            // Deriving `iss` from the request's Host header would let a client choose it,
            // which defeats RFC 9207's mix-up protection.
            return Err(ProviderBuildError(
                "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS needs a fixed issuer: OIDC_ISS_ENDPOINT or the provider's issuer URL (--issuer)".into(),
            ));
        }
        let needs_keys = settings.oidc_enabled
            || settings.access_token_format == crate::settings::AccessTokenFormat::Jwt;
        // A bad key fails here, at start-up, with the setting's name.
        let keys = if needs_keys {
            oidc::keys::SigningKeys::from_settings(&settings)
                .map_err(|e| ProviderBuildError(e.to_string()))?
                .map(Arc::new)
        } else {
            None
        };
        let generators = self.generators.clone();
        #[cfg(feature = "cimd")]
        let cimd = cimd::Cimd::new(&settings).map_err(ProviderBuildError)?;
        #[cfg(not(feature = "cimd"))]
        if settings.cimd_enabled {
            return Err(ProviderBuildError(
                "CIMD_ENABLED needs the crate's `cimd` feature".into(),
            ));
        }
        let minter = build_minter(&settings, self.issuer.as_ref(), keys.clone())?
            .with_generators(self.generators);
        let oidc = settings.oidc_enabled.then(|| oidc::Oidc::new(keys));
        Ok(Provider {
            inner: Arc::new(Inner {
                throttle: throttle::Throttle::new(&settings),
                settings,
                minter,
                oidc,
                claims: self.claims.unwrap_or_else(|| {
                    Arc::new(oidc::id_token::StandardClaims::new(self.store.clone()))
                }),
                store: self.store,
                users: self.users,
                scopes,
                resource_policy: self.resource_policy,
                keys: Keys::derive(&key),
                secrets: client_auth::VerifiedSecrets::new(
                    self.secret_cache_ttl,
                    self.secret_cache_capacity,
                ),
                applications: client_auth::Applications::new(
                    self.application_cache_ttl,
                    self.secret_cache_capacity,
                ),
                issuer: self.issuer,
                templates,
                generators,
                registrations: registration::RateLimit::new(),
                #[cfg(feature = "cimd")]
                cimd,
            }),
        })
    }
}

/// The issuer of JWTs: `OIDC_ISS_ENDPOINT`, else the configured public URL.
pub(crate) fn configured_issuer(settings: &Settings, url: Option<&url::Url>) -> Option<String> {
    if !settings.oidc_iss_endpoint.is_empty() {
        return Some(settings.oidc_iss_endpoint.trim_end_matches('/').to_owned());
    }
    url.map(|u| u.as_str().trim_end_matches('/').to_owned())
}

fn build_minter(
    settings: &Arc<Settings>,
    issuer: Option<&url::Url>,
    keys: Option<Arc<oidc::keys::SigningKeys>>,
) -> Result<grants::Minter, ProviderBuildError> {
    use crate::settings::AccessTokenFormat;
    match settings.access_token_format {
        AccessTokenFormat::Opaque => Ok(grants::Minter::opaque(settings.clone())),
        AccessTokenFormat::Jwt => {
            let keys = keys.ok_or_else(|| {
                ProviderBuildError(
                    "ACCESS_TOKEN_FORMAT = \"jwt\" needs OIDC_RSA_PRIVATE_KEY".into(),
                )
            })?;
            let issuer = configured_issuer(settings, issuer).ok_or_else(|| {
                ProviderBuildError(
                    "ACCESS_TOKEN_FORMAT = \"jwt\" needs an issuer: OIDC_ISS_ENDPOINT or the provider's issuer URL (--issuer)".into(),
                )
            })?;
            let audience = if settings.oauth2_protected_resource_identifier.is_empty() {
                issuer.clone()
            } else {
                settings.oauth2_protected_resource_identifier.clone()
            };
            Ok(grants::Minter::jwt(
                settings.clone(),
                grants::JwtAccess {
                    keys,
                    issuer,
                    audience,
                },
            ))
        }
    }
}
