//! Every Django OAuth Toolkit setting that means something outside Django, typed,
//! with DOT's defaults, loaded from TOML and `OAUTH2_PROVIDER_*` environment
//! variables.
//!
//! [`Settings`] has one public field per DOT setting, named after it in
//! snake_case (`ACCESS_TOKEN_EXPIRE_SECONDS` → `access_token_expire_seconds`).
//! [`SETTING_NAMES`] lists the DOT names. Loading:
//!
//! * [`Settings::from_toml_str`] / [`Settings::from_toml_file`]: keys are the
//!   snake_case names (the UPPER-CASE DOT names are accepted too);
//! * [`Settings::apply_env`]: `OAUTH2_PROVIDER_<DOT NAME>` variables override;
//! * [`Settings::load`]: file, then the process environment, then
//!   [`Settings::validate`].
//!
//! Every problem is reported at once, each line starting with the setting's DOT
//! name; an unknown key is an error (with the closest known name), never ignored.
//!
//! ```
//! use std::time::Duration;
//! use tower_oauth_toolkit::settings::Settings;
//!
//! let mut settings = Settings::from_toml_str(
//!     r#"
//!     access_token_expire_seconds = 3600
//!     refresh_token_expire_seconds = 86400
//!     rotate_refresh_token = true
//!
//!     [scopes]
//!     read = "Read your data"
//!     write = "Change your data"
//!     "#,
//! )
//! .unwrap();
//! settings
//!     .apply_env([("OAUTH2_PROVIDER_ACCESS_TOKEN_EXPIRE_SECONDS", "600")])
//!     .unwrap();
//! settings.validate().unwrap();
//! assert_eq!(settings.access_token_expire_seconds, Duration::from_secs(600));
//! assert_eq!(settings.refresh_token_expire(), Some(Duration::from_secs(86400)));
//!
//! let err = Settings::from_toml_str("acess_token_expire_seconds = 60").unwrap_err();
//! assert!(err.to_string().contains("did you mean access_token_expire_seconds?"));
//! ```
//!
//! # Value formats
//!
//! * Durations are whole seconds (`*_SECONDS`, `*_INTERVAL`, `*_TIMEOUT`,
//!   `*_LIFETIME`, `*_LEEWAY`, …), never negative. The batch interval and the
//!   three fetch/introspection timeouts also take fractions (`0.5`). `get`
//!   reports durations as integer seconds (a float if there is a fraction).
//! * `REFRESH_TOKEN_EXPIRE_SECONDS` and `DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS`
//!   default to none ("never"); `0` means the same and is stored as `None`.
//! * Settings whose DOT default is `None` are `Option`s: leave the key out for
//!   `None`; for the string ones an empty string also means `None`.
//! * `SCOPES` is a table of name → description; lists are arrays of strings;
//!   `RESOURCE_SERVER_INTROSPECTION_CREDENTIALS` is `["client_id", "secret"]`
//!   (or `"client_id:secret"`).
//! * Environment values are read as a TOML value when they parse as one (`36000`,
//!   `true`, `["a", "b"]`, `{ read = "Reading scope" }`) and as a plain string
//!   otherwise; string settings always take the text as it is (unless it is a
//!   quoted TOML string), booleans also accept `True`/`False`, and list settings
//!   also accept `a,b` or `a b` (commas win, so `code,code id_token` is two
//!   items).
//!
//! # Settings that name a Python class or callable
//!
//! These DOT settings are not TOML keys (giving one is an error that points
//! here). Where the behaviour is customizable, it is through a Rust value given to
//! the [`ProviderBuilder`] (so that [`Settings`] stays plain data), or a trait:
//!
//! | DOT setting | tower-oauth-toolkit |
//! |---|---|
//! | `CLIENT_ID_GENERATOR_CLASS` | [`Generator`] trait; [`Generators::client_id`] given to [`ProviderBuilder::generators`] (default [`ClientIdGenerator`]) |
//! | `CLIENT_SECRET_GENERATOR_CLASS` | [`Generators::client_secret`] (default [`ClientSecretGenerator`] of `CLIENT_SECRET_GENERATOR_LENGTH`) |
//! | `ACCESS_TOKEN_GENERATOR` | [`Generators::access_token`] (default [`TimeOrderedTokenGenerator`]) |
//! | `REFRESH_TOKEN_GENERATOR` | [`Generators::refresh_token`] (default: the access-token generator) |
//! | `OAUTH_DEVICE_USER_CODE_GENERATOR` | [`Generators::user_code`] (default [`UserCodeGenerator`]) |
//! | `SCOPES_BACKEND_CLASS` | [`ScopesBackend`] trait; [`ProviderBuilder::scopes_backend`] (default [`SettingsScopes`], also [`Settings::scopes_backend`]) |
//! | `_SCOPES`, `_DEFAULT_SCOPES` | computed: [`ScopesBackend::available_scopes`], [`ScopesBackend::default_scopes`] |
//! | `OAUTH2_VALIDATOR_CLASS` | in a later release (user authentication and claim hooks of the provider) |
//! | `REDIRECT_URI_VALIDATOR`, `ALLOWED_ORIGIN_VALIDATOR` | in a later release |
//! | `RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR` | in a later release |
//! | `DCR_REGISTRATION_PERMISSION_CLASSES` | `DCR_REGISTRATION_POLICY` ([`DcrPolicy`]: `authenticated`, `initial_access_token`, `open`) |
//! | `CIMD_METADATA_FETCHER`, `CIMD_REGISTRATION_PERMISSION_CLASSES` | the built-in SSRF-hardened fetcher (`provider::cimd`) and DOT's default, any client; `CIMD_ALLOWED_HOSTS` restricts the hosts when not empty |
//! | `CLIENT_ASSERTION_JWKS_FETCHER` | in a later release (with JWT client authentication) |
//! | `OAUTH2_SERVER_CLASS`, `OIDC_SERVER_CLASS`, `OAUTH2_BACKEND_CLASS`, `EXTRA_SERVER_KWARGS`, `ALWAYS_RELOAD_OAUTHLIB_CORE`, `OAUTH_PRE_TOKEN_VALIDATION` | not applicable: oauthlib plumbing (the endpoints are built in) |
//! | `APPLICATION_MODEL`, `ACCESS_TOKEN_MODEL`, `ID_TOKEN_MODEL`, `DEVICE_GRANT_MODEL`, `GRANT_MODEL`, `REFRESH_TOKEN_MODEL`, `PAR_REQUEST_MODEL`, `STORED_AUTHORIZATION_REQUEST_MODEL` | not applicable: Django-only (storage goes through the crate's store trait) |
//! | `APPLICATION_ADMIN_CLASS`, `ACCESS_TOKEN_ADMIN_CLASS`, `GRANT_ADMIN_CLASS`, `ID_TOKEN_ADMIN_CLASS`, `REFRESH_TOKEN_ADMIN_CLASS`, `APPLICATION_FORM_CLASS` | not applicable: Django-only |
//!
//! # Which settings do what here
//!
//! Every setting either does what DOT documents, or is accepted only at its DOT default
//! and refused otherwise, with a message that names it and says it is not supported
//! yet; none is parsed, stored and silently ignored.
//!
//! | settings | here |
//! |---|---|
//! | every setting not named below | what DOT documents (differences in the next section) |
//! | `COMPLIANT_BCP_RFC9700_TOKEN_STORAGE`, `COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT`, `REQUIRE_FORM_ENCODED_REQUEST_BODY` | always DOT's strict behaviour, whatever the value: tokens are stored as checksums only; the resource side reads `?access_token=` only where a host opts in (`BearerLayer::allow_query_parameter`); token, introspection and revocation bodies must be form-encoded (`400 invalid_request`; DOT answers 415) |
//! | `PAR_ENABLED` | accepted: there is no PAR endpoint yet, so both values mean none |
//! | `REQUIRE_PUSHED_AUTHORIZATION_REQUESTS`, `OIDC_RP_INITIATED_REGISTRATION_ENABLED`, `RESOURCE_SERVER_INTROSPECTION_JWT_CLIENT_ID` | refused when set: the feature is not implemented yet |
//! | `AUTHENTICATION_SERVER_EXP_TIME_ZONE` | `"UTC"` only |
//! | `SECRET_KEY`, `ACCESS_TOKEN_FORMAT`, `LOGIN_FAILURE_LIMIT`, `CLIENT_AUTH_FAILURE_LIMIT`, `DEVICE_USER_CODE_FAILURE_LIMIT`, `FAILURE_WINDOW_SECONDS`, `LOCKOUT_SECONDS`, `MAX_LOCKOUT_SECONDS` | not DOT's: Django's `SECRET_KEY`, the access-token format, and the throttling of credential guessing (`provider::throttle`; django-axes does this for a Django site) |
//! | `DEVICE_CODE_EXPIRE_SECONDS` | not DOT's: the lifetime of device codes (oauthlib's fixed 1800 s) |
//! | `DCR_REGISTRATION_POLICY`, `DCR_ALLOWED_GRANT_TYPES`, `DCR_INITIAL_ACCESS_TOKEN_SCOPE`, `DCR_REGISTRATIONS_PER_HOUR`, `DCR_UNUSED_CLIENT_MAX_AGE_SECONDS` | not DOT's: who may register and which grant types, the initial access token's scope, the per-address registration limit, and the cleanup of unused registered clients |
//! | `CIMD_ALLOW_LOOPBACK` | not DOT's: metadata-document client ids on a loopback host, for development |
//! | the nine `CLIENT_ASSERTION_*`; `PAR_REQUEST_URI_LIFETIME_SECONDS`; `OIDC_RP_INITIATED_REGISTRATION_URL`; `RESOURCE_SERVER_INTROSPECTION_JWT_{PRIVATE_KEY,ALG,AUDIENCE,LIFETIME,KID}`; `READ_SCOPE`, `WRITE_SCOPE` (DOT's `ReadWriteScopedResourceView`: use the resource side's scope policies) | accepted at their DOT defaults, refused otherwise ("… is not supported yet: … leave it at its default") |
//!
//! # Differences from DOT
//!
//! * `CLIENT_SECRET_HASHER = "default"` means Argon2 (Django's default is the
//!   first of `PASSWORD_HASHERS`, PBKDF2-SHA256 in a stock project). Accepted
//!   values: [`CLIENT_SECRET_HASHERS`].
//! * Settings that DOT lets be a callable or a dotted path
//!   (`ACCESS_TOKEN_EXPIRE_SECONDS`, `PKCE_REQUIRED`,
//!   `OAUTH_DEVICE_VERIFICATION_URI_COMPLETE`) take static values only.
//! * [`Settings::validate`] refuses what DOT only warns about
//!   (`REFRESH_TOKEN_REUSE_PROTECTION` without `ROTATE_REFRESH_TOKEN`, W012) and
//!   what DOT would accept but this crate does not implement yet (DCR, CIMD,
//!   required PAR, RP-initiated registration, `private_key_jwt` introspection
//!   authentication, a non-UTC `AUTHENTICATION_SERVER_EXP_TIME_ZONE`), saying why.
//!   `PAR_ENABLED` is accepted for compatibility (its default is `true`) but has
//!   no effect until a PAR endpoint exists.
//! * Access/refresh tokens default to an 8-character time prefix, `_` and 40 random
//!   characters (oauthlib: 30 random characters); see [`TimeOrderedTokenGenerator`].
//! * Secrets (`OIDC_RSA_PRIVATE_KEY`, `OIDC_RSA_PRIVATE_KEYS_INACTIVE`,
//!   `RESOURCE_SERVER_AUTH_TOKEN`, the secret half of
//!   `RESOURCE_SERVER_INTROSPECTION_CREDENTIALS`,
//!   `RESOURCE_SERVER_INTROSPECTION_JWT_PRIVATE_KEY`) are [`Secret`]s: `Debug`
//!   and [`Settings::get`] print `[redacted]`.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::generators::{
    ClientIdGenerator, ClientSecretGenerator, Generator, Generators, TimeOrderedTokenGenerator,
    UserCodeGenerator,
};
#[cfg(all(doc, feature = "provider"))]
use crate::provider::ProviderBuilder;
use crate::scope::{ScopesBackend, SettingsScopes};

mod codecs;
mod load;
mod schema;
mod validate;

pub use schema::{Settings, SETTING_NAMES};

/// Prefix of the environment variables read by [`Settings::apply_env`].
pub const ENV_PREFIX: &str = "OAUTH2_PROVIDER_";

/// Accepted `CLIENT_SECRET_HASHER` values; `"default"` is Argon2.
pub const CLIENT_SECRET_HASHERS: &[&str] = &["default", "argon2", "pbkdf2_sha256"];

/// What `get` shows instead of a secret value.
const REDACTED: &str = "[redacted]";

/// DOT `REQUEST_APPROVAL_PROMPT`: whether the consent page is shown again to a
/// user who already approved the same client and scopes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalPrompt {
    /// Always ask (`"force"`, the default).
    #[default]
    Force,
    /// Skip the page when a live token with the requested scopes already exists
    /// for this user and client (`"auto"`).
    Auto,
}

/// Who may register a client at the RFC 7591 endpoint (`DCR_REGISTRATION_POLICY`, not
/// a DOT setting: DOT names permission classes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DcrPolicy {
    /// A signed-in user of this server (its session cookie), as DOT's default
    /// `IsAuthenticatedDCRPermission`; the request must be `application/json` from this
    /// server's own origin (the CSRF defence of a JSON endpoint).
    #[default]
    Authenticated,
    /// A bearer access token of this server with `DCR_INITIAL_ACCESS_TOKEN_SCOPE` (RFC
    /// 7591 §3's initial access token).
    InitialAccessToken,
    /// Anyone (the MCP authorization spec's open registration), within
    /// `DCR_REGISTRATIONS_PER_HOUR` per address.
    Open,
}

/// What access tokens look like (not a DOT setting: DOT makes JWTs through a custom
/// `ACCESS_TOKEN_GENERATOR`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessTokenFormat {
    /// Random strings, looked up in the store (`"opaque"`, the default).
    #[default]
    Opaque,
    /// RFC 9068 JWTs (`typ: at+jwt`), RS256 with `OIDC_RSA_PRIVATE_KEY`; also stored (by
    /// checksum) so that revocation and introspection work as for opaque tokens
    /// (`"jwt"`).
    Jwt,
}

/// A secret string (private key, bearer token, client secret) whose `Debug`
/// output is `Secret([redacted])`, so that settings can be logged.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret value itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is the empty string (DOT's "unset" for
    /// `OIDC_RSA_PRIVATE_KEY`).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(\"\")")
        } else {
            write!(f, "Secret({REDACTED})")
        }
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// One problem with one setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingIssue {
    /// The setting's UPPER-CASE DOT name (or the unknown key as it was written).
    pub setting: String,
    /// What is wrong, as a phrase that follows the name
    /// (`must be greater than 0`).
    pub message: String,
}

impl SettingIssue {
    fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for SettingIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.setting, self.message)
    }
}

fn join_issues(issues: &[SettingIssue]) -> String {
    issues
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

fn describe_path(path: Option<&PathBuf>) -> String {
    match path {
        Some(path) => format!("settings file {}", path.display()),
        None => "settings".to_owned(),
    }
}

/// Why settings could not be loaded or are not valid.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// One or more settings are unknown, malformed or inconsistent. `Display`
    /// writes one line per issue, each starting with the setting's name.
    #[error("{}", join_issues(.0))]
    Invalid(Vec<SettingIssue>),
    /// The settings file could not be read.
    #[error("cannot read settings file {}: {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The settings are not valid TOML; the message gives the line and column.
    #[error("{}: {message}", describe_path(.path.as_ref()))]
    Syntax {
        /// The file, if the settings came from one.
        path: Option<PathBuf>,
        /// The TOML parser's message, with line and column.
        message: String,
    },
}

impl SettingsError {
    /// The individual problems of an [`Invalid`](SettingsError::Invalid) error
    /// (empty for the other kinds).
    pub fn issues(&self) -> &[SettingIssue] {
        match self {
            Self::Invalid(issues) => issues,
            _ => &[],
        }
    }
}

impl Settings {
    /// How long a refresh token stays usable after its access token expired
    /// (`REFRESH_TOKEN_EXPIRE_SECONDS`); `None` means forever.
    pub fn refresh_token_expire(&self) -> Option<Duration> {
        self.refresh_token_expire_seconds.filter(|d| !d.is_zero())
    }

    /// The default scope catalogue: [`SettingsScopes`] built from `SCOPES` and
    /// `DEFAULT_SCOPES` (DOT's `SCOPES_BACKEND_CLASS` default; another backend is given
    /// to [`ProviderBuilder::scopes_backend`](crate::provider::ProviderBuilder::scopes_backend)).
    /// Call it once and keep the `Arc`: it is built from a copy of the settings.
    pub fn scopes_backend(&self) -> Arc<dyn ScopesBackend> {
        Arc::new(SettingsScopes::from_settings(self))
    }
}

impl SettingsScopes {
    /// The backend described by `settings.scopes` and `settings.default_scopes`.
    pub fn from_settings(settings: &Settings) -> Self {
        Self::new(settings.scopes.clone(), &settings.default_scopes)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::codecs::*;
    use super::load::*;
    use super::schema::*;
    use super::*;

    #[test]
    fn snake_names_are_the_lowercase_dot_names() {
        for def in SETTING_DEFS {
            assert_eq!(def.snake.to_ascii_uppercase(), def.upper);
        }
        let unique: HashSet<_> = SETTING_NAMES.iter().collect();
        assert_eq!(unique.len(), SETTING_NAMES.len());
    }

    #[test]
    fn defaults_validate() {
        Settings::default().validate().unwrap();
    }

    #[test]
    fn every_setting_round_trips_through_get_and_set() {
        let defaults = Settings::default();
        for name in SETTING_NAMES {
            let Some(value) = defaults.get(name) else {
                continue;
            };
            if value.as_str() == Some(REDACTED) {
                continue;
            }
            let mut settings = Settings::default();
            settings.set(name, value.clone()).unwrap();
            assert_eq!(settings.get(name), Some(value), "{name}");
        }
    }

    #[test]
    fn edit_distance_works() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggestions() {
        let issue = unknown_setting(
            "ACESS_TOKEN_EXPIRE_SECONDS",
            "ACESS_TOKEN_EXPIRE_SECONDS",
            false,
        );
        assert!(
            issue
                .message
                .ends_with("did you mean ACCESS_TOKEN_EXPIRE_SECONDS?"),
            "{issue}"
        );
        let issue = unknown_setting("OAUTH2_PROVIDER_PKCE_REQUIRD", "PKCE_REQUIRD", true);
        assert!(
            issue
                .message
                .ends_with("did you mean OAUTH2_PROVIDER_PKCE_REQUIRED?"),
            "{issue}"
        );
        let issue = unknown_setting("database_url", "database_url", false);
        assert_eq!(issue.to_string(), "database_url is not a known setting");
        let issue = unknown_setting("oauth2_validator_class", "oauth2_validator_class", false);
        assert!(issue.message.contains("Python class"), "{issue}");
    }

    #[test]
    fn durations() {
        let mut s = Settings::default();
        s.set(
            "clear_expired_tokens_batch_interval",
            toml::Value::Float(0.25),
        )
        .unwrap();
        assert_eq!(
            s.clear_expired_tokens_batch_interval,
            Duration::from_millis(250)
        );
        assert_eq!(
            s.get("CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL"),
            Some(toml::Value::Float(0.25))
        );
        assert!(s
            .set(
                "clear_expired_tokens_batch_interval",
                toml::Value::Float(-1.0)
            )
            .is_err());
        assert!(s
            .set("access_token_expire_seconds", toml::Value::Float(1.5))
            .is_err());
        let err = s
            .set("access_token_expire_seconds", toml::Value::Integer(-5))
            .unwrap_err();
        assert!(err.to_string().contains("must not be negative"), "{err}");
        let err = s
            .set("id_token_expire_seconds", toml::Value::Integer(i64::MAX))
            .unwrap_err();
        assert!(err.to_string().contains("more than 100 years"), "{err}");
        assert!(s
            .set("cimd_fetch_timeout_seconds", toml::Value::Float(1e300))
            .is_err());
        s.set("refresh_token_expire_seconds", toml::Value::Integer(0))
            .unwrap();
        assert_eq!(s.refresh_token_expire_seconds, None);
        s.set("refresh_token_expire_seconds", toml::Value::Integer(10))
            .unwrap();
        assert_eq!(s.refresh_token_expire(), Some(Duration::from_secs(10)));
        s.refresh_token_expire_seconds = Some(Duration::ZERO);
        assert_eq!(s.refresh_token_expire(), None);
    }

    #[test]
    fn env_values() {
        assert_eq!(Flag::from_env("True").value, toml::Value::Boolean(true));
        assert_eq!(
            Text::from_env("true").value,
            toml::Value::String("true".into())
        );
        assert_eq!(
            Text::from_env("\"quoted\"").value,
            toml::Value::String("quoted".into())
        );
        assert_eq!(
            List::from_env("http https").value,
            strings_value(["http", "https"])
        );
        assert_eq!(
            List::from_env("code, code id_token").value,
            strings_value(["code", "code id_token"])
        );
        assert_eq!(List::from_env("[\"a b\"]").value, strings_value(["a b"]));
        assert_eq!(List::from_env("").value, strings_value([]));
        assert_eq!(Seconds::from_env("60").value, toml::Value::Integer(60));
        let pem = "-----BEGIN PRIVATE KEY-----\nabc\n-----END PRIVATE KEY-----";
        assert_eq!(SecretList::from_env(pem).value, strings_value([pem]));
    }

    #[test]
    fn scopes_keep_document_order() {
        let s = Settings::from_toml_str("[scopes]\nwrite = \"W\"\nread = \"R\"\nopenid = \"O\"\n")
            .unwrap();
        assert_eq!(
            s.scopes.keys().collect::<Vec<_>>(),
            ["write", "read", "openid"]
        );
        let mut s = Settings::default();
        s.apply_env([("OAUTH2_PROVIDER_SCOPES", "{ z = \"Z\", a = \"A\" }")])
            .unwrap();
        assert_eq!(s.scopes.keys().collect::<Vec<_>>(), ["z", "a"]);
        let err = Settings::from_toml_str("scopes = { read = 1 }").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("SCOPES (line 1) has an invalid value"),
            "{err}"
        );
    }

    #[test]
    fn datetimes_are_invalid_values_not_syntax_errors() {
        let err = Settings::from_toml_str("access_token_expire_seconds = 1979-05-27").unwrap_err();
        assert!(
            err.to_string().starts_with("ACCESS_TOKEN_EXPIRE_SECONDS "),
            "{err}"
        );
    }

    #[test]
    fn credentials() {
        let mut s = Settings::default();
        s.set(
            "resource_server_introspection_credentials",
            "id:se:cret".into(),
        )
        .unwrap();
        let (id, secret) = s.resource_server_introspection_credentials.clone().unwrap();
        assert_eq!((id.as_str(), secret.expose()), ("id", "se:cret"));
        s.set(
            "resource_server_introspection_credentials",
            strings_value(["other", "pw"]),
        )
        .unwrap();
        assert_eq!(
            s.get("RESOURCE_SERVER_INTROSPECTION_CREDENTIALS"),
            Some(strings_value(["other", REDACTED]))
        );
        assert!(s
            .set(
                "resource_server_introspection_credentials",
                strings_value(["one"])
            )
            .is_err());
        assert!(s
            .set(
                "resource_server_introspection_credentials",
                "nocolon".into()
            )
            .is_err());
    }

    #[test]
    fn secrets_are_redacted() {
        let s = Settings {
            oidc_rsa_private_key: Secret::new("-----BEGIN RSA PRIVATE KEY-----\nsecretbits"),
            resource_server_auth_token: Some("tok3n".into()),
            ..Settings::default()
        };
        let debug = format!("{s:?}");
        assert!(
            !debug.contains("secretbits") && !debug.contains("tok3n"),
            "{debug}"
        );
        assert_eq!(
            s.get("OIDC_RSA_PRIVATE_KEY"),
            Some(toml::Value::String(REDACTED.into()))
        );
        assert_eq!(format!("{:?}", Secret::default()), "Secret(\"\")");
    }
}
