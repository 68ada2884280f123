//! Registering applications: DOT's `Application.clean()` rules and the library call
//! behind `oauth-toolkit createapplication`.
//!
//! [`validate`] reports **every** problem at once, each tied to a field, and
//! [`register`] saves nothing unless there are none. A generated client secret is
//! returned once, in plaintext, and only its hash is stored (unless
//! `hash_client_secret` is false, which HS256 ID tokens need).
//!
//! Differences from DOT: public clients get no generated secret (they cannot keep one;
//! DOT generates one anyway), and a client id must be usable in HTTP Basic
//! authentication and form encoding unchanged (printable ASCII without `:`, `%`, `+`).
//!
//! ```
//! use tower_oauth_toolkit::application::{register, ApplicationSpec};
//! use tower_oauth_toolkit::generators::Generators;
//! use tower_oauth_toolkit::model::{ClientType, GrantType};
//! use tower_oauth_toolkit::settings::Settings;
//! use tower_oauth_toolkit::store::memory::MemoryStore;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let store = MemoryStore::new();
//! let mut spec = ApplicationSpec::new(ClientType::Confidential, GrantType::AuthorizationCode);
//! spec.redirect_uris = "https://app.example.com/callback".into();
//! let created = register(&store, &Settings::default(), &Generators::default(), spec)
//!     .await
//!     .unwrap();
//! assert_eq!(created.application.client_id.len(), 40);
//! assert!(created.generated_secret.is_some()); // shown once
//! # }
//! ```

use std::fmt;

use crate::generators::Generators;
use crate::hashers::{hash_secret, SecretHasher};
use crate::model::{
    split_list, Algorithm, Application, ClientType, GrantType, NewApplication, Timestamp,
};
use crate::settings::Settings;
use crate::store::{Store, StoreError};
use crate::validators::{validate_origin, validate_redirect_uri};

/// What to register. Mirrors `createapplication`'s arguments.
#[derive(Clone)]
pub struct ApplicationSpec {
    /// Confidential or public.
    pub client_type: ClientType,
    /// The grant type.
    pub authorization_grant_type: GrantType,
    /// The client id; `None` generates one.
    pub client_id: Option<String>,
    /// The owning user's id.
    pub user_id: Option<i64>,
    /// Redirect URIs, space-separated.
    pub redirect_uris: String,
    /// Post-logout redirect URIs, space-separated.
    pub post_logout_redirect_uris: String,
    /// CORS origins, space-separated.
    pub allowed_origins: String,
    /// The client secret in plaintext; `None` generates one for confidential clients.
    pub client_secret: Option<String>,
    /// Store the secret hashed (DOT default true).
    pub hash_client_secret: bool,
    /// Human-readable name.
    pub name: String,
    /// Skip the consent page.
    pub skip_authorization: bool,
    /// ID-token signing algorithm.
    pub algorithm: Algorithm,
}

impl ApplicationSpec {
    /// A spec with DOT's defaults.
    pub fn new(client_type: ClientType, grant: GrantType) -> Self {
        ApplicationSpec {
            client_type,
            authorization_grant_type: grant,
            client_id: None,
            user_id: None,
            redirect_uris: String::new(),
            post_logout_redirect_uris: String::new(),
            allowed_origins: String::new(),
            client_secret: None,
            hash_client_secret: true,
            name: String::new(),
            skip_authorization: false,
            algorithm: Algorithm::NoAlgorithm,
        }
    }
}

impl fmt::Debug for ApplicationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApplicationSpec")
            .field("client_type", &self.client_type)
            .field("authorization_grant_type", &self.authorization_grant_type)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// One validation failure, tied to a field (DOT's `ValidationError` per field).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// The field: `client_id`, `redirect_uris`, `algorithm`, …
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Why [`register`] saved nothing.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The spec breaks these rules.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A registered application and, when it was generated, its secret in plaintext (shown
/// once; only its hash is stored).
pub struct Registered {
    /// The stored application.
    pub application: Application,
    /// The generated secret, if one was generated.
    pub generated_secret: Option<String>,
}

impl fmt::Debug for Registered {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registered")
            .field("application", &self.application)
            .field(
                "generated_secret",
                &self.generated_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

fn err(errors: &mut Vec<FieldError>, field: &'static str, message: impl Into<String>) {
    errors.push(FieldError {
        field,
        message: message.into(),
    });
}

/// Checks a spec against DOT's `Application.clean()` rules; returns every problem.
pub fn validate(spec: &ApplicationSpec, settings: &Settings) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let grant = spec.authorization_grant_type;

    if let Some(id) = &spec.client_id {
        if id.is_empty() {
            err(&mut errors, "client_id", "must not be empty");
        } else if id.len() > 255 {
            err(&mut errors, "client_id", "must be at most 255 characters");
        } else if id
            .chars()
            .any(|c| c == ':' || c.is_whitespace() || c.is_control())
        {
            err(
                &mut errors,
                "client_id",
                "must not contain ':', whitespace or control characters (it must work in HTTP Basic authentication)",
            );
        }
    }

    let redirect_uris: Vec<&str> = split_list(&spec.redirect_uris).collect();
    if grant.requires_redirect_uri() && redirect_uris.is_empty() {
        err(
            &mut errors,
            "redirect_uris",
            format!("redirect URIs are required for the {grant} grant type"),
        );
    }
    let schemes = &settings.allowed_redirect_uri_schemes;
    for uri in &redirect_uris {
        if let Err(e) = validate_redirect_uri(uri, schemes, settings.allow_uri_wildcards) {
            err(&mut errors, "redirect_uris", e);
        }
    }
    for uri in split_list(&spec.post_logout_redirect_uris) {
        if let Err(e) = validate_redirect_uri(uri, schemes, settings.allow_uri_wildcards) {
            err(&mut errors, "post_logout_redirect_uris", e);
        }
    }
    for origin in split_list(&spec.allowed_origins) {
        if let Err(e) = validate_origin(
            origin,
            &settings.allowed_schemes,
            settings.allow_uri_wildcards,
        ) {
            err(&mut errors, "allowed_origins", e);
        }
    }

    match spec.algorithm {
        Algorithm::Rs256 if settings.oidc_rsa_private_key.is_empty() => err(
            &mut errors,
            "algorithm",
            "RS256 needs OIDC_RSA_PRIVATE_KEY to be set",
        ),
        Algorithm::Hs256 => {
            if spec.client_type == ClientType::Public {
                err(
                    &mut errors,
                    "algorithm",
                    "HS256 cannot be used with public clients",
                );
            }
            if matches!(grant, GrantType::Implicit | GrantType::OpenidHybrid) {
                err(
                    &mut errors,
                    "algorithm",
                    format!("HS256 cannot be used with the {grant} grant type"),
                );
            }
            if spec.hash_client_secret {
                err(
                    &mut errors,
                    "algorithm",
                    "HS256 signs with the client secret, which must be stored unhashed (use --no-hash-client-secret)",
                );
            }
            if spec.client_secret.as_deref() == Some("") {
                err(
                    &mut errors,
                    "client_secret",
                    "HS256 needs a non-empty client secret",
                );
            }
        }
        _ => {}
    }

    if grant == GrantType::ClientCredentials && spec.client_type == ClientType::Public {
        err(
            &mut errors,
            "client_type",
            "the client-credentials grant needs a confidential client (RFC 6749 §4.4)",
        );
    }
    if let Some(secret) = &spec.client_secret {
        if spec.client_type == ClientType::Public && !secret.is_empty() {
            err(
                &mut errors,
                "client_secret",
                "a public client has no secret (RFC 6749 §2.1): leave the client secret out",
            );
        }
        if spec.client_type == ClientType::Confidential && secret.is_empty() {
            err(
                &mut errors,
                "client_secret",
                "a confidential client needs a non-empty secret",
            );
        }
        if !spec.hash_client_secret && secret.len() > 255 {
            err(
                &mut errors,
                "client_secret",
                "an unhashed secret must be at most 255 characters",
            );
        }
    }
    errors
}

/// Validates and saves an application (DOT's `createapplication`). Nothing is saved when
/// any rule fails; a duplicate client id is reported as a `client_id` error.
pub async fn register<S: Store>(
    store: &S,
    settings: &Settings,
    generators: &Generators,
    spec: ApplicationSpec,
) -> Result<Registered, RegisterError> {
    let (new, generated_secret) = prepare(store, settings, generators, &spec).await?;
    let client_id = new.client_id.clone();
    let application = match store.create_application(new).await {
        Ok(a) => a,
        Err(StoreError::Conflict(_)) => return Err(taken(&client_id)),
        Err(e) => return Err(e.into()),
    };
    Ok(Registered {
        application,
        generated_secret,
    })
}

/// The `client_id` error of a taken client id.
pub(crate) fn taken(client_id: &str) -> RegisterError {
    RegisterError::Invalid(vec![FieldError {
        field: "client_id",
        message: format!("an application with client id {client_id:?} already exists"),
    }])
}

/// What [`register`] would insert, after every check (the secret hashed, the client id
/// generated), and the generated secret in plaintext.
pub(crate) async fn prepare<S: Store>(
    store: &S,
    settings: &Settings,
    generators: &Generators,
    spec: &ApplicationSpec,
) -> Result<(NewApplication, Option<String>), RegisterError> {
    let mut errors = validate(spec, settings);
    let hasher = SecretHasher::from_setting(&settings.client_secret_hasher);
    if hasher.is_none() {
        err(
            &mut errors,
            "client_secret",
            format!(
                "CLIENT_SECRET_HASHER {:?} is not a known hasher",
                settings.client_secret_hasher
            ),
        );
    }
    let hasher = hasher.unwrap_or_default();
    if let Some(id) = &spec.client_id {
        if errors.iter().all(|e| e.field != "client_id")
            && store.find_application_by_client_id(id).await?.is_some()
        {
            err(
                &mut errors,
                "client_id",
                format!("an application with client id {id:?} already exists"),
            );
        }
    }
    if let Some(user) = spec.user_id {
        if store.find_user(user).await?.is_none() {
            err(
                &mut errors,
                "user",
                format!("there is no user with id {user}"),
            );
        }
    }
    if !errors.is_empty() {
        return Err(RegisterError::Invalid(errors));
    }

    let (secret, generated) = match &spec.client_secret {
        Some(s) => (s.clone(), false),
        None if spec.client_type == ClientType::Confidential => (
            generators.client_secret(settings.client_secret_generator_length),
            true,
        ),
        None => (String::new(), false),
    };
    let stored_secret = if spec.hash_client_secret && !secret.is_empty() {
        // The slow hash runs in the bounded hash pool, off the async runtime (this is
        // also the registration endpoint's path).
        let plain = secret.clone();
        crate::hashers::in_hash_pool(move || hash_secret(&plain, hasher))
            .await
            .map_err(|e| StoreError::Unavailable(e.to_string()))?
            .map_err(|e| {
                RegisterError::Invalid(vec![FieldError {
                    field: "client_secret",
                    message: e.to_string(),
                }])
            })?
    } else {
        secret.clone()
    };
    let client_id = spec
        .client_id
        .clone()
        .unwrap_or_else(|| generators.client_id());
    let new = NewApplication {
        client_id: client_id.clone(),
        user_id: spec.user_id,
        redirect_uris: split_list(&spec.redirect_uris)
            .collect::<Vec<_>>()
            .join(" "),
        post_logout_redirect_uris: split_list(&spec.post_logout_redirect_uris)
            .collect::<Vec<_>>()
            .join(" "),
        client_type: spec.client_type,
        authorization_grant_type: spec.authorization_grant_type,
        client_secret: stored_secret,
        hash_client_secret: spec.hash_client_secret,
        name: spec.name.clone(),
        skip_authorization: spec.skip_authorization,
        algorithm: spec.algorithm,
        allowed_origins: split_list(&spec.allowed_origins)
            .collect::<Vec<_>>()
            .join(" "),
        pkce_required: None,
        created: Timestamp::now(),
    };
    Ok((new, generated.then_some(secret)))
}
