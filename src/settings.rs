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
//! here). Where the behaviour is customizable, it is through a Rust hook on
//! [`Settings`] or a trait:
//!
//! | DOT setting | tower-oauth-toolkit |
//! |---|---|
//! | `CLIENT_ID_GENERATOR_CLASS` | [`Generator`] trait; [`Settings::with_client_id_generator`] (default [`ClientIdGenerator`]) |
//! | `CLIENT_SECRET_GENERATOR_CLASS` | [`Settings::with_client_secret_generator`] (default [`ClientSecretGenerator`] of `CLIENT_SECRET_GENERATOR_LENGTH`) |
//! | `ACCESS_TOKEN_GENERATOR` | [`Settings::with_access_token_generator`] (default [`TimeOrderedTokenGenerator`]) |
//! | `REFRESH_TOKEN_GENERATOR` | [`Settings::with_refresh_token_generator`] (default: the access-token generator) |
//! | `OAUTH_DEVICE_USER_CODE_GENERATOR` | [`Settings::with_user_code_generator`] (default [`UserCodeGenerator`]) |
//! | `SCOPES_BACKEND_CLASS` | [`ScopesBackend`] trait; [`Settings::with_scopes_backend`] (default [`SettingsScopes`]) |
//! | `_SCOPES`, `_DEFAULT_SCOPES` | computed: [`ScopesBackend::available_scopes`], [`ScopesBackend::default_scopes`] |
//! | `OAUTH2_VALIDATOR_CLASS` | in a later release (user authentication and claim hooks of the provider) |
//! | `REDIRECT_URI_VALIDATOR`, `ALLOWED_ORIGIN_VALIDATOR` | in a later release |
//! | `RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR` | in a later release |
//! | `DCR_REGISTRATION_PERMISSION_CLASSES` | in a later release (with dynamic client registration) |
//! | `CIMD_METADATA_FETCHER`, `CIMD_REGISTRATION_PERMISSION_CLASSES` | in a later release (with client ID metadata documents) |
//! | `CLIENT_ASSERTION_JWKS_FETCHER` | in a later release (with JWT client authentication) |
//! | `OAUTH2_SERVER_CLASS`, `OIDC_SERVER_CLASS`, `OAUTH2_BACKEND_CLASS`, `EXTRA_SERVER_KWARGS`, `ALWAYS_RELOAD_OAUTHLIB_CORE`, `OAUTH_PRE_TOKEN_VALIDATION` | not applicable: oauthlib plumbing (the endpoints are built in) |
//! | `APPLICATION_MODEL`, `ACCESS_TOKEN_MODEL`, `ID_TOKEN_MODEL`, `DEVICE_GRANT_MODEL`, `GRANT_MODEL`, `REFRESH_TOKEN_MODEL`, `PAR_REQUEST_MODEL`, `STORED_AUTHORIZATION_REQUEST_MODEL` | not applicable: Django-only (storage goes through the crate's store trait) |
//! | `APPLICATION_ADMIN_CLASS`, `ACCESS_TOKEN_ADMIN_CLASS`, `GRANT_ADMIN_CLASS`, `ID_TOKEN_ADMIN_CLASS`, `REFRESH_TOKEN_ADMIN_CLASS`, `APPLICATION_FORM_CLASS` | not applicable: Django-only |
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
//! * Access/refresh tokens default to 40 random characters (oauthlib: 30).
//! * Secrets (`OIDC_RSA_PRIVATE_KEY`, `OIDC_RSA_PRIVATE_KEYS_INACTIVE`,
//!   `RESOURCE_SERVER_AUTH_TOKEN`, the secret half of
//!   `RESOURCE_SERVER_INTROSPECTION_CREDENTIALS`,
//!   `RESOURCE_SERVER_INTROSPECTION_JWT_PRIVATE_KEY`) are [`Secret`]s: `Debug`
//!   and [`Settings::get`] print `[redacted]`.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

#[cfg(doc)]
use crate::generators::ClientSecretGenerator;
use crate::generators::{
    ClientIdGenerator, Generator, TimeOrderedTokenGenerator, UserCodeGenerator,
};
use crate::scope::{validate_scope_token, ScopesBackend, SettingsScopes, ALL_SCOPES};

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

/// How one setting's value is read from TOML and from the environment, and
/// shown by `get`.
trait Codec {
    type Value;

    fn parse(value: toml::Value) -> Result<Self::Value, String>;

    /// Like `parse`, for codecs that care about the document order of a table.
    fn parse_ordered(value: Ordered) -> Result<Self::Value, String> {
        Self::parse(value.value)
    }

    fn emit(value: &Self::Value) -> Option<toml::Value>;

    /// A TOML value if `raw` parses as one, else the raw text as a string.
    fn from_env(raw: &str) -> Ordered {
        Ordered::parse(raw).unwrap_or_else(|| toml::Value::String(raw.to_owned()).into())
    }
}

/// A TOML value and, if it is a table, its keys in document order: without
/// toml's `preserve_order` feature, `toml::Value` tables are sorted by key,
/// while the order of `SCOPES` is the order of the consent page.
struct Ordered {
    value: toml::Value,
    keys: Vec<String>,
}

impl From<toml::Value> for Ordered {
    fn from(value: toml::Value) -> Self {
        Self {
            value,
            keys: Vec::new(),
        }
    }
}

impl Ordered {
    /// `raw` as one TOML value, if it is one.
    fn parse(raw: &str) -> Option<Self> {
        toml::de::DeValue::parse(raw.trim())
            .ok()
            .and_then(|value| Self::from_de(value).ok())
    }

    fn from_de(value: toml::Spanned<toml::de::DeValue<'_>>) -> Result<Self, toml::de::Error> {
        let keys = match value.get_ref().as_table() {
            Some(table) => {
                let mut keys: Vec<_> = table.keys().collect();
                keys.sort_by_key(|key| key.span().start);
                keys.into_iter()
                    .map(|key| key.get_ref().to_string())
                    .collect()
            }
            None => Vec::new(),
        };
        let value = toml::Value::deserialize(toml::de::ValueDeserializer::from(value))?;
        Ok(Self { value, keys })
    }
}

/// A quoted TOML string, else the raw text.
fn text_from_env(raw: &str) -> toml::Value {
    match raw.trim().parse::<toml::Value>() {
        Ok(value @ toml::Value::String(_)) => value,
        _ => toml::Value::String(raw.to_owned()),
    }
}

fn found(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("string {s:?}"),
        other => format!("{} {other}", other.type_str()),
    }
}

fn expect_string(value: toml::Value) -> Result<String, String> {
    match value {
        toml::Value::String(s) => Ok(s),
        other => Err(format!("expected a string, found {}", found(&other))),
    }
}

fn expect_strings(value: toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                toml::Value::String(s) => Ok(s),
                other => Err(format!(
                    "expected an array of strings, but item {} is {}",
                    i + 1,
                    found(&other)
                )),
            })
            .collect(),
        other => Err(format!(
            "expected an array of strings, found {}",
            found(&other)
        )),
    }
}

fn strings_value<'a>(items: impl IntoIterator<Item = &'a str>) -> toml::Value {
    toml::Value::Array(
        items
            .into_iter()
            .map(|s| toml::Value::String(s.to_owned()))
            .collect(),
    )
}

fn list_from_env(raw: &str) -> toml::Value {
    if let Ok(value @ toml::Value::Array(_)) = raw.trim().parse::<toml::Value>() {
        return value;
    }
    let items: Vec<&str> = if raw.contains(',') {
        raw.split(',').map(str::trim).collect()
    } else {
        raw.split_whitespace().collect()
    };
    strings_value(items.into_iter().filter(|s| !s.is_empty()))
}

fn redact(secret: &Secret) -> toml::Value {
    toml::Value::String(if secret.is_empty() { "" } else { REDACTED }.to_owned())
}

/// Any serde type, via `toml::Value`'s deserializer.
struct Plain<T>(PhantomData<T>);

impl<T: Serialize + DeserializeOwned> Codec for Plain<T> {
    type Value = T;

    fn parse(value: toml::Value) -> Result<T, String> {
        T::deserialize(value).map_err(|e| e.to_string().trim().to_owned())
    }

    fn emit(value: &T) -> Option<toml::Value> {
        toml::Value::try_from(value).ok()
    }
}

/// A boolean; the environment may also say `True`/`False`.
struct Flag;

impl Codec for Flag {
    type Value = bool;

    fn parse(value: toml::Value) -> Result<bool, String> {
        match value {
            toml::Value::Boolean(b) => Ok(b),
            other => Err(format!(
                "expected a boolean (true or false), found {}",
                found(&other)
            )),
        }
    }

    fn emit(value: &bool) -> Option<toml::Value> {
        Some(toml::Value::Boolean(*value))
    }

    fn from_env(raw: &str) -> Ordered {
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" => toml::Value::Boolean(true).into(),
            "false" => toml::Value::Boolean(false).into(),
            _ => toml::Value::String(raw.to_owned()).into(),
        }
    }
}

/// A string, taken literally from the environment.
struct Text;

impl Codec for Text {
    type Value = String;

    fn parse(value: toml::Value) -> Result<String, String> {
        expect_string(value)
    }

    fn emit(value: &String) -> Option<toml::Value> {
        Some(toml::Value::String(value.clone()))
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// An optional string; `""` is `None`.
struct OptText;

impl Codec for OptText {
    type Value = Option<String>;

    fn parse(value: toml::Value) -> Result<Option<String>, String> {
        expect_string(value).map(|s| Some(s).filter(|s| !s.is_empty()))
    }

    fn emit(value: &Option<String>) -> Option<toml::Value> {
        value.clone().map(toml::Value::String)
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// A list of strings.
struct List;

impl Codec for List {
    type Value = Vec<String>;

    fn parse(value: toml::Value) -> Result<Vec<String>, String> {
        expect_strings(value)
    }

    fn emit(value: &Vec<String>) -> Option<toml::Value> {
        Some(strings_value(value.iter().map(String::as_str)))
    }

    fn from_env(raw: &str) -> Ordered {
        list_from_env(raw).into()
    }
}

/// An optional list of strings.
struct OptList;

impl Codec for OptList {
    type Value = Option<Vec<String>>;

    fn parse(value: toml::Value) -> Result<Option<Vec<String>>, String> {
        expect_strings(value).map(Some)
    }

    fn emit(value: &Option<Vec<String>>) -> Option<toml::Value> {
        value.as_ref().and_then(List::emit)
    }

    fn from_env(raw: &str) -> Ordered {
        list_from_env(raw).into()
    }
}

/// Longest accepted duration: 100 years, far beyond any sensible lifetime and
/// far from the overflow of `SystemTime + Duration`.
const MAX_SECONDS: u64 = 100 * 36525 * 864;

fn at_most_100_years(duration: Duration) -> Result<Duration, String> {
    if duration > Duration::from_secs(MAX_SECONDS) {
        Err(format!(
            "{} seconds is more than 100 years ({MAX_SECONDS} seconds)",
            duration.as_secs()
        ))
    } else {
        Ok(duration)
    }
}

fn whole_seconds(value: toml::Value) -> Result<Duration, String> {
    match value {
        toml::Value::Integer(n) => u64::try_from(n)
            .map_err(|_| format!("must not be negative, found {n}"))
            .map(Duration::from_secs)
            .and_then(at_most_100_years),
        other => Err(format!(
            "expected a whole number of seconds, found {}",
            found(&other)
        )),
    }
}

fn seconds_value(value: &Duration) -> toml::Value {
    if value.subsec_nanos() == 0 {
        i64::try_from(value.as_secs())
            .map(toml::Value::Integer)
            .unwrap_or(toml::Value::Float(value.as_secs_f64()))
    } else {
        toml::Value::Float(value.as_secs_f64())
    }
}

/// A duration in whole seconds.
struct Seconds;

impl Codec for Seconds {
    type Value = Duration;

    fn parse(value: toml::Value) -> Result<Duration, String> {
        whole_seconds(value)
    }

    fn emit(value: &Duration) -> Option<toml::Value> {
        Some(seconds_value(value))
    }
}

/// A duration in seconds, fractions allowed.
struct FractionalSeconds;

impl Codec for FractionalSeconds {
    type Value = Duration;

    fn parse(value: toml::Value) -> Result<Duration, String> {
        match value {
            toml::Value::Float(f) => Duration::try_from_secs_f64(f)
                .map_err(|_| format!("must be a non-negative number of seconds, found {f}"))
                .and_then(at_most_100_years),
            other => whole_seconds(other).map_err(|e| e.replace("a whole number", "a number")),
        }
    }

    fn emit(value: &Duration) -> Option<toml::Value> {
        Some(seconds_value(value))
    }
}

/// An optional duration in whole seconds; `0` is `None` ("never").
struct OptSeconds;

impl Codec for OptSeconds {
    type Value = Option<Duration>;

    fn parse(value: toml::Value) -> Result<Option<Duration>, String> {
        whole_seconds(value).map(|d| Some(d).filter(|d| !d.is_zero()))
    }

    fn emit(value: &Option<Duration>) -> Option<toml::Value> {
        value.as_ref().map(seconds_value)
    }
}

/// `SCOPES`: a table of name = description, kept in document order.
struct ScopeMap;

impl Codec for ScopeMap {
    type Value = IndexMap<String, String>;

    fn parse(value: toml::Value) -> Result<IndexMap<String, String>, String> {
        Self::parse_ordered(value.into())
    }

    fn parse_ordered(value: Ordered) -> Result<IndexMap<String, String>, String> {
        let toml::Value::Table(mut table) = value.value else {
            return Err(format!(
                "expected a table of scope = \"description\", found {}",
                found(&value.value)
            ));
        };
        let mut entries: Vec<(String, toml::Value)> = value
            .keys
            .iter()
            .filter_map(|key| table.remove_entry(key))
            .collect();
        entries.extend(table);
        entries
            .into_iter()
            .map(|(name, description)| match description {
                toml::Value::String(description) => Ok((name, description)),
                other => Err(format!(
                    "expected a table of scope = \"description\", but {name:?} is {}",
                    found(&other)
                )),
            })
            .collect()
    }

    fn emit(value: &IndexMap<String, String>) -> Option<toml::Value> {
        toml::Value::try_from(value).ok()
    }
}

/// A secret string; `get` shows it redacted.
struct SecretText;

impl Codec for SecretText {
    type Value = Secret;

    fn parse(value: toml::Value) -> Result<Secret, String> {
        expect_string(value).map(Secret)
    }

    fn emit(value: &Secret) -> Option<toml::Value> {
        Some(redact(value))
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// An optional secret string; `""` is `None`.
struct OptSecret;

impl Codec for OptSecret {
    type Value = Option<Secret>;

    fn parse(value: toml::Value) -> Result<Option<Secret>, String> {
        expect_string(value).map(|s| Some(Secret(s)).filter(|s| !s.is_empty()))
    }

    fn emit(value: &Option<Secret>) -> Option<toml::Value> {
        value.as_ref().map(redact)
    }

    fn from_env(raw: &str) -> Ordered {
        text_from_env(raw).into()
    }
}

/// A list of secrets (PEM keys): a TOML array, or one key as plain text from the
/// environment (PEM text has spaces, so it is never split).
struct SecretList;

impl Codec for SecretList {
    type Value = Vec<Secret>;

    fn parse(value: toml::Value) -> Result<Vec<Secret>, String> {
        expect_strings(value).map(|keys| keys.into_iter().map(Secret).collect())
    }

    fn emit(value: &Vec<Secret>) -> Option<toml::Value> {
        Some(toml::Value::Array(value.iter().map(redact).collect()))
    }

    fn from_env(raw: &str) -> Ordered {
        match raw.trim().parse::<toml::Value>() {
            Ok(value @ toml::Value::Array(_)) => value,
            _ if raw.trim().is_empty() => toml::Value::Array(Vec::new()),
            _ => strings_value([raw]),
        }
        .into()
    }
}

/// `(client_id, secret)`: `["id", "secret"]` or `"id:secret"`.
struct Credentials;

impl Codec for Credentials {
    type Value = Option<(String, Secret)>;

    fn parse(value: toml::Value) -> Result<Option<(String, Secret)>, String> {
        const EXPECTED: &str = "expected [\"client_id\", \"secret\"] or \"client_id:secret\"";
        let (id, secret) = match value {
            toml::Value::String(s) => match s.split_once(':') {
                Some((id, secret)) => (id.to_owned(), secret.to_owned()),
                None => return Err(format!("{EXPECTED}, found a string without ':'")),
            },
            array @ toml::Value::Array(_) => match <[String; 2]>::try_from(
                expect_strings(array).map_err(|_| format!("{EXPECTED}, found another array"))?,
            ) {
                Ok([id, secret]) => (id, secret),
                Err(items) => {
                    return Err(format!(
                        "{EXPECTED}, found an array of {} items",
                        items.len()
                    ))
                }
            },
            other => return Err(format!("{EXPECTED}, found {}", other.type_str())),
        };
        if id.is_empty() {
            return Err("the client_id is empty".to_owned());
        }
        Ok(Some((id, Secret(secret))))
    }

    fn emit(value: &Option<(String, Secret)>) -> Option<toml::Value> {
        value.as_ref().map(|(id, secret)| {
            toml::Value::Array(vec![toml::Value::String(id.clone()), redact(secret)])
        })
    }

    fn from_env(raw: &str) -> Ordered {
        match raw.trim().parse::<toml::Value>() {
            Ok(value @ toml::Value::Array(_)) => value,
            _ => toml::Value::String(raw.to_owned()),
        }
        .into()
    }
}

/// Table entry for one setting, generated by `settings!`.
struct SettingDef {
    upper: &'static str,
    snake: &'static str,
    set: fn(&mut Settings, Ordered) -> Result<(), String>,
    get: fn(&Settings) -> Option<toml::Value>,
    from_env: fn(&str) -> Ordered,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn text(s: &str) -> String {
    s.to_owned()
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.into_iter().map(str::to_owned).collect()
}

fn dot_scopes() -> IndexMap<String, String> {
    IndexMap::from([
        ("read".to_owned(), "Reading scope".to_owned()),
        ("write".to_owned(), "Writing scope".to_owned()),
    ])
}

/// Declares every setting once: its doc, DOT name, field, type, default and
/// codec. Generates the `Settings` struct, `Default`, `SETTING_NAMES` and the
/// table behind `set`, `get` and `apply_env`.
macro_rules! settings {
    ($(
        $(#[doc = $doc:literal])*
        $upper:ident / $field:ident : $ty:ty = $default:expr, $codec:ty;
    )*) => {
        /// Every DOT setting that applies outside Django, plus the hooks that
        /// replace DOT's class-path settings.
        ///
        /// Field names are the DOT names in snake_case; each field's doc gives
        /// the DOT name and default. See the [module docs](self) for loading and
        /// value formats. `Debug` never prints secrets.
        #[derive(Clone, Debug)]
        #[non_exhaustive]
        pub struct Settings {
            $(
                $(#[doc = $doc])*
                #[doc = ""]
                #[doc = concat!(
                    "DOT: `", stringify!($upper), "`; default `", stringify!($default), "`."
                )]
                pub $field: $ty,
            )*
            /// Generates client ids (DOT `CLIENT_ID_GENERATOR_CLASS`); default
            /// [`ClientIdGenerator`].
            pub client_id_generator: Arc<dyn Generator>,
            /// Generates client secrets (DOT `CLIENT_SECRET_GENERATOR_CLASS`);
            /// `None` means a [`ClientSecretGenerator`](crate::generators::ClientSecretGenerator)
            /// of `client_secret_generator_length` characters.
            pub client_secret_generator: Option<Arc<dyn Generator>>,
            /// Generates access tokens, authorization codes and device codes
            /// (DOT `ACCESS_TOKEN_GENERATOR`); default [`TimeOrderedTokenGenerator`].
            pub access_token_generator: Arc<dyn Generator>,
            /// Generates refresh tokens (DOT `REFRESH_TOKEN_GENERATOR`); `None`
            /// means the access-token generator.
            pub refresh_token_generator: Option<Arc<dyn Generator>>,
            /// Generates device-flow user codes (DOT
            /// `OAUTH_DEVICE_USER_CODE_GENERATOR`); default [`UserCodeGenerator`].
            pub user_code_generator: Arc<dyn Generator>,
            /// Scope catalogue (DOT `SCOPES_BACKEND_CLASS`); `None` means
            /// [`SettingsScopes`] built from `scopes` and `default_scopes`.
            pub scopes_backend: Option<Arc<dyn ScopesBackend>>,
        }

        impl Default for Settings {
            /// DOT's defaults.
            fn default() -> Self {
                Self {
                    $( $field: $default, )*
                    client_id_generator: Arc::new(ClientIdGenerator),
                    client_secret_generator: None,
                    access_token_generator: Arc::new(TimeOrderedTokenGenerator::default()),
                    refresh_token_generator: None,
                    user_code_generator: Arc::new(UserCodeGenerator),
                    scopes_backend: None,
                }
            }
        }

        /// The UPPER-CASE DOT names of every setting [`Settings`] loads, in DOT's
        /// order.
        pub const SETTING_NAMES: &[&str] = &[$( stringify!($upper) ),*];

        static SETTING_DEFS: &[SettingDef] = &[$(
            SettingDef {
                upper: stringify!($upper),
                snake: stringify!($field),
                set: |settings, value| {
                    settings.$field = <$codec as Codec>::parse_ordered(value)?;
                    Ok(())
                },
                get: |settings| <$codec as Codec>::emit(&settings.$field),
                from_env: <$codec as Codec>::from_env,
            },
        )*];
    };
}

settings! {
    // ---- Scopes --------------------------------------------------------------
    /// Every scope: name → description shown on the consent page.
    SCOPES / scopes: IndexMap<String, String> = dot_scopes(), ScopeMap;
    /// Scopes granted when a client requests none; `"__all__"` means every scope
    /// in `SCOPES`.
    DEFAULT_SCOPES / default_scopes: Vec<String> = strings([ALL_SCOPES]), List;
    /// Scope required for safe methods (GET, HEAD, OPTIONS) by read/write scope
    /// policies.
    READ_SCOPE / read_scope: String = text("read"), Text;
    /// Scope required for other methods by read/write scope policies.
    WRITE_SCOPE / write_scope: String = text("write"), Text;

    // ---- Expired-token cleanup ----------------------------------------------
    /// Rows deleted per batch by `cleartokens`.
    CLEAR_EXPIRED_TOKENS_BATCH_SIZE / clear_expired_tokens_batch_size: usize = 10000, Plain<usize>;
    /// Pause after each `cleartokens` batch (fractions allowed).
    CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL / clear_expired_tokens_batch_interval: Duration = secs(0), FractionalSeconds;

    // ---- Client credentials --------------------------------------------------
    /// Length of generated client secrets (1 to 255).
    CLIENT_SECRET_GENERATOR_LENGTH / client_secret_generator_length: usize = 128, Plain<usize>;
    /// Hash for stored client secrets: `"default"` (Argon2), `"argon2"` or
    /// `"pbkdf2_sha256"`.
    CLIENT_SECRET_HASHER / client_secret_hasher: String = text("default"), Text;

    // ---- Token and code lifetimes -------------------------------------------
    /// Lifetime of an authorization code.
    AUTHORIZATION_CODE_EXPIRE_SECONDS / authorization_code_expire_seconds: Duration = secs(60), Seconds;
    /// Lifetime of an access token (must be > 0).
    ACCESS_TOKEN_EXPIRE_SECONDS / access_token_expire_seconds: Duration = secs(36000), Seconds;
    /// How long a refresh token stays usable after its access token expired;
    /// `None` (or 0) means forever. Use [`Settings::refresh_token_expire`].
    REFRESH_TOKEN_EXPIRE_SECONDS / refresh_token_expire_seconds: Option<Duration> = None, OptSeconds;
    /// Window in which the refresh token just superseded by rotation may be
    /// presented again and gets the same answer.
    REFRESH_TOKEN_GRACE_PERIOD_SECONDS / refresh_token_grace_period_seconds: Duration = secs(0), Seconds;
    /// Replaying a superseded refresh token revokes its whole token family
    /// (needs `ROTATE_REFRESH_TOKEN`).
    REFRESH_TOKEN_REUSE_PROTECTION / refresh_token_reuse_protection: bool = false, Flag;
    /// Issue a new refresh token on every refresh.
    ROTATE_REFRESH_TOKEN / rotate_refresh_token: bool = true, Flag;
    /// Include the required scopes in `insufficient_scope` (403) answers.
    ERROR_RESPONSE_WITH_SCOPES / error_response_with_scopes: bool = false, Flag;
    /// Whether the consent page is shown again for an already approved client.
    REQUEST_APPROVAL_PROMPT / request_approval_prompt: ApprovalPrompt = ApprovalPrompt::Force, Plain<ApprovalPrompt>;

    // ---- Redirect URIs and origins ------------------------------------------
    /// Schemes allowed in registered redirect URIs and for redirects.
    ALLOWED_REDIRECT_URI_SCHEMES / allowed_redirect_uri_schemes: Vec<String> = strings(["http", "https"]), List;
    /// Schemes allowed in an application's CORS `allowed_origins`.
    ALLOWED_SCHEMES / allowed_schemes: Vec<String> = strings(["https"]), List;
    /// Allow a leading `*` host wildcard in redirect URIs and origins.
    ALLOW_URI_WILDCARDS / allow_uri_wildcards: bool = false, Flag;
    /// Extend the any-port loopback rule (RFC 8252 §7.3) to `http://localhost`.
    ALLOW_LOCALHOST_LOOPBACK / allow_localhost_loopback: bool = false, Flag;

    // ---- Device authorization grant (RFC 8628) ------------------------------
    /// `verification_uri` in device authorization responses.
    OAUTH_DEVICE_VERIFICATION_URI / oauth_device_verification_uri: Option<String> = None, OptText;
    /// `verification_uri_complete`; `{user_code}` is replaced by the user code.
    OAUTH_DEVICE_VERIFICATION_URI_COMPLETE / oauth_device_verification_uri_complete: Option<String> = None, OptText;
    /// Polling interval advertised to devices.
    DEVICE_FLOW_INTERVAL / device_flow_interval: Duration = secs(5), Seconds;

    // ---- Request handling ----------------------------------------------------
    /// Require PKCE (RFC 7636) for the authorization code grant.
    PKCE_REQUIRED / pkce_required: bool = true, Flag;
    /// Answer 415 to token, revocation, introspection and device-authorization
    /// POSTs that are not `application/x-www-form-urlencoded`.
    REQUIRE_FORM_ENCODED_REQUEST_BODY / require_form_encoded_request_body: bool = false, Flag;

    // ---- RFC 9700 (OAuth 2.0 Security BCP) gates ----------------------------
    /// Reject the implicit grant.
    COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT / compliant_bcp_rfc9700_implicit_grant: bool = false, Flag;
    /// Reject the resource owner password credentials grant.
    COMPLIANT_BCP_RFC9700_PASSWORD_GRANT / compliant_bcp_rfc9700_password_grant: bool = false, Flag;
    /// Reject the PKCE `plain` method.
    COMPLIANT_BCP_RFC9700_PKCE_METHOD / compliant_bcp_rfc9700_pkce_method: bool = false, Flag;
    /// Reject access tokens in the URI query string.
    COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT / compliant_bcp_rfc9700_access_token_transport: bool = false, Flag;
    /// Add the RFC 9207 `iss` parameter to authorization responses.
    COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS / compliant_bcp_rfc9700_authz_response_iss: bool = false, Flag;
    /// Store only token checksums (DOT keeps plaintext tokens by default).
    COMPLIANT_BCP_RFC9700_TOKEN_STORAGE / compliant_bcp_rfc9700_token_storage: bool = false, Flag;
    /// Make `REFRESH_TOKEN_REUSE_PROTECTION = false` a validation error (DOT E002).
    COMPLIANT_BCP_RFC9700_REFRESH_TOKEN / compliant_bcp_rfc9700_refresh_token: bool = false, Flag;
    /// Make `"http"` in `ALLOWED_REDIRECT_URI_SCHEMES` a validation error (DOT E003).
    COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME / compliant_bcp_rfc9700_redirect_uri_scheme: bool = false, Flag;
    /// Make `ALLOW_URI_WILDCARDS = true` a validation error (DOT E004).
    COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING / compliant_bcp_rfc9700_redirect_uri_matching: bool = false, Flag;
    /// Make `PKCE_REQUIRED = false` a validation error (DOT E005).
    COMPLIANT_BCP_RFC9700_PKCE_REQUIRED / compliant_bcp_rfc9700_pkce_required: bool = false, Flag;

    // ---- Dynamic client registration (RFC 7591/7592; not implemented) --------
    /// Enable dynamic client registration (not implemented: must stay false).
    DCR_ENABLED / dcr_enabled: bool = false, Flag;
    /// Scope of registration access tokens.
    DCR_REGISTRATION_SCOPE / dcr_registration_scope: String = text("oauth2_provider:registration"), Text;
    /// Lifetime of registration access tokens; `None` (or 0) means no expiry.
    DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS / dcr_registration_token_expire_seconds: Option<Duration> = None, OptSeconds;
    /// Issue a new registration access token on each update.
    DCR_ROTATE_REGISTRATION_TOKEN_ON_UPDATE / dcr_rotate_registration_token_on_update: bool = true, Flag;

    // ---- Client ID metadata documents (not implemented) ----------------------
    /// Resolve `https://` client ids from metadata documents (not implemented:
    /// must stay false).
    CIMD_ENABLED / cimd_enabled: bool = false, Flag;
    /// Hosts allowed to serve client metadata documents.
    CIMD_ALLOWED_HOSTS / cimd_allowed_hosts: Vec<String> = strings([]), List;
    /// Metadata document fetch timeout (fractions allowed).
    CIMD_FETCH_TIMEOUT_SECONDS / cimd_fetch_timeout_seconds: Duration = secs(5), FractionalSeconds;
    /// Largest metadata document accepted, in bytes.
    CIMD_MAX_DOCUMENT_SIZE / cimd_max_document_size: usize = 16384, Plain<usize>;
    /// Shortest time a metadata document is cached.
    CIMD_METADATA_MIN_AGE_SECONDS / cimd_metadata_min_age_seconds: Duration = secs(300), Seconds;
    /// Longest time a metadata document is cached.
    CIMD_METADATA_MAX_AGE_SECONDS / cimd_metadata_max_age_seconds: Duration = secs(86400), Seconds;
    /// How long a failed fetch is remembered.
    CIMD_FAILURE_BACKOFF_SECONDS / cimd_failure_backoff_seconds: Duration = secs(60), Seconds;
    /// Cap on concurrent metadata fetches (0 = no cap).
    CIMD_MAX_CONCURRENT_FETCHES / cimd_max_concurrent_fetches: usize = 10, Plain<usize>;

    // ---- JWT client authentication (RFC 7523) -------------------------------
    /// Clock skew tolerated on client assertions.
    CLIENT_ASSERTION_LEEWAY / client_assertion_leeway: Duration = secs(60), Seconds;
    /// Reject assertions that expire later than this from now.
    CLIENT_ASSERTION_MAX_LIFETIME / client_assertion_max_lifetime: Duration = secs(300), Seconds;
    /// Accepted assertion audiences; `None` derives them from the issuer and the
    /// request URL.
    CLIENT_ASSERTION_ACCEPTED_AUDIENCES / client_assertion_accepted_audiences: Option<Vec<String>> = None, OptList;
    /// Algorithms accepted for `private_key_jwt`.
    CLIENT_ASSERTION_PRIVATE_KEY_JWT_ALGS / client_assertion_private_key_jwt_algs: Vec<String> = strings(["RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"]), List;
    /// Algorithms accepted for `client_secret_jwt`.
    CLIENT_ASSERTION_CLIENT_SECRET_JWT_ALGS / client_assertion_client_secret_jwt_algs: Vec<String> = strings(["HS256", "HS384", "HS512"]), List;
    /// Cache time of a client's remote JWKS.
    CLIENT_ASSERTION_JWKS_CACHE_TIMEOUT / client_assertion_jwks_cache_timeout: Duration = secs(3600), Seconds;
    /// Client JWKS fetch timeout (fractions allowed).
    CLIENT_ASSERTION_JWKS_FETCH_TIMEOUT_SECONDS / client_assertion_jwks_fetch_timeout_seconds: Duration = secs(5), FractionalSeconds;
    /// Largest client JWKS accepted, in bytes.
    CLIENT_ASSERTION_JWKS_MAX_SIZE / client_assertion_jwks_max_size: usize = 65536, Plain<usize>;
    /// How long a failed client JWKS fetch is remembered.
    CLIENT_ASSERTION_JWKS_FAILURE_BACKOFF_SECONDS / client_assertion_jwks_failure_backoff_seconds: Duration = secs(60), Seconds;

    // ---- Pushed authorization requests (RFC 9126) ---------------------------
    /// Enable the PAR endpoint (accepted for compatibility; no PAR endpoint yet).
    PAR_ENABLED / par_enabled: bool = true, Flag;
    /// Lifetime of a PAR `request_uri`.
    PAR_REQUEST_URI_LIFETIME_SECONDS / par_request_uri_lifetime_seconds: Duration = secs(60), Seconds;
    /// Require PAR for every authorization request (not implemented: must stay
    /// false).
    REQUIRE_PUSHED_AUTHORIZATION_REQUESTS / require_pushed_authorization_requests: bool = false, Flag;

    // ---- RFC 8414 metadata ----------------------------------------------------
    /// `response_types_supported` in authorization server metadata.
    OAUTH2_RESPONSE_TYPES_SUPPORTED / oauth2_response_types_supported: Vec<String> = strings(["code", "token"]), List;
    /// `token_endpoint_auth_methods_supported` in authorization server metadata.
    OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED / oauth2_token_endpoint_auth_methods_supported: Vec<String> = strings(["client_secret_post", "client_secret_basic"]), List;
    /// `grant_types_supported` in authorization server metadata.
    OAUTH2_GRANT_TYPES_SUPPORTED / oauth2_grant_types_supported: Vec<String> = strings(["authorization_code", "implicit", "password", "client_credentials", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code"]), List;

    // ---- OpenID Connect --------------------------------------------------------
    /// Lifetime of ID tokens.
    ID_TOKEN_EXPIRE_SECONDS / id_token_expire_seconds: Duration = secs(36000), Seconds;
    /// Enable OpenID Connect.
    OIDC_ENABLED / oidc_enabled: bool = false, Flag;
    /// Fixed issuer identifier; `""` derives it from the request.
    OIDC_ISS_ENDPOINT / oidc_iss_endpoint: String = text(""), Text;
    /// Userinfo URL published in discovery; `""` uses this server's endpoint.
    OIDC_USERINFO_ENDPOINT / oidc_userinfo_endpoint: String = text(""), Text;
    /// Answer CORS preflight and send `Access-Control-Allow-Origin: *` on userinfo.
    OIDC_USERINFO_CORS_ENABLED / oidc_userinfo_cors_enabled: bool = true, Flag;
    /// PEM RSA private key that signs RS256 ID tokens.
    OIDC_RSA_PRIVATE_KEY / oidc_rsa_private_key: Secret = Secret::default(), SecretText;
    /// Retired PEM keys whose public halves stay in the JWKS.
    OIDC_RSA_PRIVATE_KEYS_INACTIVE / oidc_rsa_private_keys_inactive: Vec<Secret> = Vec::new(), SecretList;
    /// `Cache-Control: max-age` of the JWKS document.
    OIDC_JWKS_MAX_AGE_SECONDS / oidc_jwks_max_age_seconds: Duration = secs(3600), Seconds;
    /// `response_types_supported` in OIDC discovery.
    OIDC_RESPONSE_TYPES_SUPPORTED / oidc_response_types_supported: Vec<String> = strings(["code", "token", "id_token", "id_token token", "code token", "code id_token", "code id_token token"]), List;
    /// `subject_types_supported` in OIDC discovery.
    OIDC_SUBJECT_TYPES_SUPPORTED / oidc_subject_types_supported: Vec<String> = strings(["public"]), List;
    /// `token_endpoint_auth_methods_supported` in OIDC discovery.
    OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED / oidc_token_endpoint_auth_methods_supported: Vec<String> = strings(["client_secret_post", "client_secret_basic"]), List;
    /// Support `prompt=create` (not implemented: must stay false).
    OIDC_RP_INITIATED_REGISTRATION_ENABLED / oidc_rp_initiated_registration_enabled: bool = false, Flag;
    /// Where `prompt=create` sends the user.
    OIDC_RP_INITIATED_REGISTRATION_URL / oidc_rp_initiated_registration_url: Option<String> = None, OptText;
    /// Enable the RP-initiated logout endpoint.
    OIDC_RP_INITIATED_LOGOUT_ENABLED / oidc_rp_initiated_logout_enabled: bool = false, Flag;
    /// Always ask a logged-in user before logging out.
    OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT / oidc_rp_initiated_logout_always_prompt: bool = true, Flag;
    /// Allow `http` post-logout redirect URIs only for confidential clients.
    OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS / oidc_rp_initiated_logout_strict_redirect_uris: bool = false, Flag;
    /// Accept an expired `id_token_hint`.
    OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS / oidc_rp_initiated_logout_accept_expired_tokens: bool = true, Flag;
    /// Delete the user's tokens for the client on logout.
    OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS / oidc_rp_initiated_logout_delete_tokens: bool = true, Flag;

    // ---- Resource server: introspection (RFC 7662) ---------------------------
    /// Remote introspection endpoint.
    RESOURCE_SERVER_INTROSPECTION_URL / resource_server_introspection_url: Option<String> = None, OptText;
    /// Bearer token for the introspection endpoint (takes precedence over the
    /// credentials).
    RESOURCE_SERVER_AUTH_TOKEN / resource_server_auth_token: Option<Secret> = None, OptSecret;
    /// `(client_id, secret)` for HTTP Basic authentication to the introspection
    /// endpoint.
    RESOURCE_SERVER_INTROSPECTION_CREDENTIALS / resource_server_introspection_credentials: Option<(String, Secret)> = None, Credentials;
    /// Introspection request timeout (fractions allowed).
    RESOURCE_SERVER_INTROSPECTION_TIMEOUT_SECONDS / resource_server_introspection_timeout_seconds: Duration = secs(5), FractionalSeconds;
    /// Longest time an introspection answer is cached (never past the token's `exp`).
    RESOURCE_SERVER_TOKEN_CACHING_SECONDS / resource_server_token_caching_seconds: Duration = secs(36000), Seconds;
    /// Client id for `private_key_jwt` authentication to the introspection
    /// endpoint (not implemented: must stay unset).
    RESOURCE_SERVER_INTROSPECTION_JWT_CLIENT_ID / resource_server_introspection_jwt_client_id: Option<String> = None, OptText;
    /// PEM or JWK private key for `private_key_jwt` introspection authentication.
    RESOURCE_SERVER_INTROSPECTION_JWT_PRIVATE_KEY / resource_server_introspection_jwt_private_key: Option<Secret> = None, OptSecret;
    /// Assertion algorithm; `None` infers it from the key.
    RESOURCE_SERVER_INTROSPECTION_JWT_ALG / resource_server_introspection_jwt_alg: Option<String> = None, OptText;
    /// Assertion audience.
    RESOURCE_SERVER_INTROSPECTION_JWT_AUDIENCE / resource_server_introspection_jwt_audience: Option<String> = None, OptText;
    /// Assertion lifetime.
    RESOURCE_SERVER_INTROSPECTION_JWT_LIFETIME / resource_server_introspection_jwt_lifetime: Duration = secs(60), Seconds;
    /// Assertion `kid` header.
    RESOURCE_SERVER_INTROSPECTION_JWT_KID / resource_server_introspection_jwt_kid: Option<String> = None, OptText;
    /// Deprecated in DOT; only `"UTC"` is supported (introspection `exp` is a
    /// Unix timestamp).
    AUTHENTICATION_SERVER_EXP_TIME_ZONE / authentication_server_exp_time_zone: String = text("UTC"), Text;

    // ---- Resource server: RFC 9728 metadata ----------------------------------
    /// `resource`; `""` derives it from the request.
    OAUTH2_PROTECTED_RESOURCE_IDENTIFIER / oauth2_protected_resource_identifier: String = text(""), Text;
    /// `authorization_servers`; empty means this server's issuer.
    OAUTH2_PROTECTED_RESOURCE_AUTHORIZATION_SERVERS / oauth2_protected_resource_authorization_servers: Vec<String> = strings([]), List;
    /// `bearer_methods_supported`.
    OAUTH2_PROTECTED_RESOURCE_BEARER_METHODS_SUPPORTED / oauth2_protected_resource_bearer_methods_supported: Vec<String> = strings(["header"]), List;
    /// `resource_name` (omitted when empty).
    OAUTH2_PROTECTED_RESOURCE_NAME / oauth2_protected_resource_name: String = text(""), Text;
    /// `resource_documentation` (omitted when empty).
    OAUTH2_PROTECTED_RESOURCE_DOCUMENTATION / oauth2_protected_resource_documentation: String = text(""), Text;
    /// `resource_policy_uri` (omitted when empty).
    OAUTH2_PROTECTED_RESOURCE_POLICY_URI / oauth2_protected_resource_policy_uri: String = text(""), Text;
    /// `resource_tos_uri` (omitted when empty).
    OAUTH2_PROTECTED_RESOURCE_TOS_URI / oauth2_protected_resource_tos_uri: String = text(""), Text;

    // ---- Not DOT: what Django itself provides to DOT -----------------------------
    /// The server's secret key (Django's `SECRET_KEY`, at least 32 characters): signs the
    /// login session cookie and CSRF tokens, and derives refresh-token successors for
    /// the grace period. Every instance of one deployment needs the same key. Empty: a
    /// random key per process (sessions end when it does).
    SECRET_KEY / secret_key: Secret = Secret::default(), SecretText;
    /// `"opaque"` or `"jwt"` (RFC 9068, signed with OIDC_RSA_PRIVATE_KEY, needs the
    /// `jwt` feature).
    ACCESS_TOKEN_FORMAT / access_token_format: AccessTokenFormat = AccessTokenFormat::Opaque, Plain<AccessTokenFormat>;
}

/// DOT settings that name Python classes or callables, and where their Rust
/// counterpart is (see the module docs' table).
const CLASS_PATH_SETTINGS: &[(&str, &str)] = &[
    ("OAUTH2_SERVER_CLASS", "not applicable: oauthlib plumbing"),
    ("OIDC_SERVER_CLASS", "not applicable: oauthlib plumbing"),
    ("OAUTH2_BACKEND_CLASS", "not applicable: oauthlib plumbing"),
    ("EXTRA_SERVER_KWARGS", "not applicable: oauthlib plumbing"),
    (
        "ALWAYS_RELOAD_OAUTHLIB_CORE",
        "not applicable: oauthlib plumbing",
    ),
    (
        "OAUTH_PRE_TOKEN_VALIDATION",
        "not applicable: oauthlib plumbing",
    ),
    ("OAUTH2_VALIDATOR_CLASS", "in a later release"),
    ("REDIRECT_URI_VALIDATOR", "in a later release"),
    ("ALLOWED_ORIGIN_VALIDATOR", "in a later release"),
    (
        "RESOURCE_SERVER_TOKEN_RESOURCE_VALIDATOR",
        "in a later release",
    ),
    ("DCR_REGISTRATION_PERMISSION_CLASSES", "in a later release"),
    ("CIMD_METADATA_FETCHER", "in a later release"),
    ("CIMD_REGISTRATION_PERMISSION_CLASSES", "in a later release"),
    ("CLIENT_ASSERTION_JWKS_FETCHER", "in a later release"),
    (
        "CLIENT_ID_GENERATOR_CLASS",
        "use Settings::with_client_id_generator",
    ),
    (
        "CLIENT_SECRET_GENERATOR_CLASS",
        "use Settings::with_client_secret_generator",
    ),
    (
        "ACCESS_TOKEN_GENERATOR",
        "use Settings::with_access_token_generator",
    ),
    (
        "REFRESH_TOKEN_GENERATOR",
        "use Settings::with_refresh_token_generator",
    ),
    (
        "OAUTH_DEVICE_USER_CODE_GENERATOR",
        "use Settings::with_user_code_generator",
    ),
    ("SCOPES_BACKEND_CLASS", "use Settings::with_scopes_backend"),
    ("_SCOPES", "computed from SCOPES"),
    ("_DEFAULT_SCOPES", "computed from DEFAULT_SCOPES"),
    ("APPLICATION_MODEL", "not applicable: Django-only"),
    ("ACCESS_TOKEN_MODEL", "not applicable: Django-only"),
    ("ID_TOKEN_MODEL", "not applicable: Django-only"),
    ("DEVICE_GRANT_MODEL", "not applicable: Django-only"),
    ("GRANT_MODEL", "not applicable: Django-only"),
    ("REFRESH_TOKEN_MODEL", "not applicable: Django-only"),
    ("PAR_REQUEST_MODEL", "not applicable: Django-only"),
    (
        "STORED_AUTHORIZATION_REQUEST_MODEL",
        "not applicable: Django-only",
    ),
    ("APPLICATION_FORM_CLASS", "not applicable: Django-only"),
    ("APPLICATION_ADMIN_CLASS", "not applicable: Django-only"),
    ("ACCESS_TOKEN_ADMIN_CLASS", "not applicable: Django-only"),
    ("GRANT_ADMIN_CLASS", "not applicable: Django-only"),
    ("ID_TOKEN_ADMIN_CLASS", "not applicable: Django-only"),
    ("REFRESH_TOKEN_ADMIN_CLASS", "not applicable: Django-only"),
];

/// The setting called `name` (snake_case or UPPER-CASE).
fn find_def(name: &str) -> Option<&'static SettingDef> {
    SETTING_DEFS
        .iter()
        .find(|def| def.snake == name || def.upper == name)
}

/// Levenshtein distance, for "did you mean" hints.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The issue for an unknown key `shown` (as the user wrote it) whose bare name
/// is `name`. `as_env` formats the suggestion as an environment variable.
fn unknown_setting(shown: &str, name: &str, as_env: bool) -> SettingIssue {
    let upper = name.to_ascii_uppercase();
    if let Some((_, instead)) = CLASS_PATH_SETTINGS.iter().find(|(n, _)| *n == upper) {
        return SettingIssue::new(
            shown,
            format!(
                "names a Python class or callable in Django OAuth Toolkit and is not a \
                 tower-oauth-toolkit setting ({instead}; see the settings module docs)"
            ),
        );
    }
    let closest = SETTING_DEFS
        .iter()
        .map(|def| (edit_distance(&upper, def.upper), def))
        .min_by_key(|(distance, _)| *distance)
        .filter(|(distance, _)| *distance <= 3.max(upper.len() / 5));
    let hint = match closest {
        Some((_, def)) if as_env => format!("; did you mean {ENV_PREFIX}{}?", def.upper),
        Some((_, def)) if name.bytes().any(|b| b.is_ascii_lowercase()) => {
            format!("; did you mean {}?", def.snake)
        }
        Some((_, def)) => format!("; did you mean {}?", def.upper),
        None => String::new(),
    };
    SettingIssue::new(shown, format!("is not a known setting{hint}"))
}

fn line_of(input: &str, offset: usize) -> usize {
    input[..offset.min(input.len())].matches('\n').count() + 1
}

impl Settings {
    /// Sets one setting from a TOML value. `key` is the snake_case or UPPER-CASE
    /// DOT name.
    ///
    /// ```
    /// use tower_oauth_toolkit::settings::Settings;
    ///
    /// let mut settings = Settings::default();
    /// settings.set("rotate_refresh_token", toml::Value::Boolean(false)).unwrap();
    /// assert!(!settings.rotate_refresh_token);
    /// let err = settings.set("ROTATE_REFRESH_TOKEN", "no".into()).unwrap_err();
    /// assert!(err.to_string().starts_with("ROTATE_REFRESH_TOKEN "));
    /// ```
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] naming the setting if `key` is unknown or the
    /// value does not fit; the setting is then unchanged.
    pub fn set(&mut self, key: &str, value: toml::Value) -> Result<(), SettingsError> {
        self.set_one(key, value.into(), "")
            .map_err(|issue| SettingsError::Invalid(vec![issue]))
    }

    fn set_one(&mut self, key: &str, value: Ordered, origin: &str) -> Result<(), SettingIssue> {
        let def = find_def(key).ok_or_else(|| unknown_setting(key, key, false))?;
        (def.set)(self, value).map_err(|message| {
            SettingIssue::new(
                def.upper,
                format!("{origin}has an invalid value: {message}"),
            )
        })
    }

    /// The current value of a setting as TOML (for diagnostics and tests).
    /// `name` is the UPPER-CASE or snake_case DOT name.
    ///
    /// Returns `None` if the name is unknown or the setting's value is `None`
    /// (check [`SETTING_NAMES`] to tell them apart). Secrets are shown as
    /// `"[redacted]"` (an empty one as `""`); durations as whole seconds.
    ///
    /// ```
    /// use tower_oauth_toolkit::settings::Settings;
    ///
    /// let settings = Settings::default();
    /// assert_eq!(settings.get("ACCESS_TOKEN_EXPIRE_SECONDS"), Some(toml::Value::Integer(36000)));
    /// assert_eq!(settings.get("REFRESH_TOKEN_EXPIRE_SECONDS"), None);
    /// ```
    pub fn get(&self, name: &str) -> Option<toml::Value> {
        find_def(name).and_then(|def| (def.get)(self))
    }

    /// Settings from a TOML document: DOT defaults, overridden by its keys. Does
    /// not read the environment or [`validate`](Settings::validate).
    ///
    /// # Errors
    ///
    /// [`SettingsError::Syntax`] for malformed TOML; [`SettingsError::Invalid`]
    /// listing every unknown key and bad value.
    pub fn from_toml_str(input: &str) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let issues = settings.apply_toml(input, None)?;
        into_result(issues)?;
        Ok(settings)
    }

    /// [`from_toml_str`](Settings::from_toml_str) on the contents of `path`.
    ///
    /// # Errors
    ///
    /// As `from_toml_str`, plus [`SettingsError::Io`] if the file cannot be read.
    pub fn from_toml_file(path: &Path) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let issues = settings.apply_toml_file(path)?;
        into_result(issues)?;
        Ok(settings)
    }

    fn apply_toml_file(&mut self, path: &Path) -> Result<Vec<SettingIssue>, SettingsError> {
        let input = std::fs::read_to_string(path).map_err(|error| SettingsError::Io {
            path: path.to_owned(),
            error,
        })?;
        self.apply_toml(&input, Some(path))
    }

    /// Applies every key of a TOML document; returns the per-key issues.
    fn apply_toml(
        &mut self,
        input: &str,
        path: Option<&Path>,
    ) -> Result<Vec<SettingIssue>, SettingsError> {
        let document = toml::de::DeTable::parse(input).map_err(|e| SettingsError::Syntax {
            path: path.map(Path::to_owned),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let mut entries: Vec<_> = document.into_inner().into_iter().collect();
        entries.sort_by_key(|(key, _)| key.span().start);
        let mut issues = Vec::new();
        let mut seen = HashSet::new();
        for (key, value) in entries {
            let line = line_of(input, key.span().start);
            let origin = match path {
                Some(path) => format!("(line {line} of {}) ", path.display()),
                None => format!("(line {line}) "),
            };
            let key = key.into_inner();
            let value = match Ordered::from_de(value) {
                Ok(value) => value,
                Err(e) => {
                    issues.push(SettingIssue::new(
                        key.as_ref(),
                        format!("{origin}has an invalid value: {}", e.message()),
                    ));
                    continue;
                }
            };
            let Some(def) = find_def(&key) else {
                let mut issue = unknown_setting(&key, &key, false);
                issue.message = format!("{origin}{}", issue.message);
                issues.push(issue);
                continue;
            };
            if !seen.insert(def.upper) {
                issues.push(SettingIssue::new(
                    def.upper,
                    format!(
                        "{origin}is given twice (as {} and {})",
                        def.snake, def.upper
                    ),
                ));
                continue;
            }
            if let Err(issue) = self.set_one(&key, value, &origin) {
                issues.push(issue);
            }
        }
        Ok(issues)
    }

    /// Applies `OAUTH2_PROVIDER_<NAME>` overrides from `vars` (other variables
    /// are ignored), e.g. `std::env::vars()`.
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] listing every unknown `OAUTH2_PROVIDER_*` name
    /// and bad value; the valid ones are applied regardless.
    pub fn apply_env<I, K, V>(&mut self, vars: I) -> Result<(), SettingsError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        into_result(self.apply_env_vars(vars))
    }

    fn apply_env_vars<I, K, V>(&mut self, vars: I) -> Vec<SettingIssue>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.as_ref().starts_with(ENV_PREFIX))
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        vars.sort();
        let mut issues = Vec::new();
        let mut seen = HashSet::new();
        for (var, raw) in vars {
            let name = &var[ENV_PREFIX.len()..];
            let Some(def) = find_def(name) else {
                issues.push(unknown_setting(&var, name, true));
                continue;
            };
            let origin = format!("(from {var}) ");
            if !seen.insert(def.upper) {
                issues.push(SettingIssue::new(
                    def.upper,
                    format!("{origin}is given twice"),
                ));
                continue;
            }
            if let Err(issue) = self.set_one(def.upper, (def.from_env)(&raw), &origin) {
                issues.push(issue);
            }
        }
        issues
    }

    /// Loads the settings a server starts with: DOT defaults, then the TOML file
    /// at `path` (if any), then `OAUTH2_PROVIDER_*` variables from the process
    /// environment, then [`validate`](Settings::validate).
    ///
    /// # Errors
    ///
    /// I/O and syntax errors as they happen; otherwise one
    /// [`SettingsError::Invalid`] listing every problem in the file and the
    /// environment, or, if there are none, every validation problem.
    pub fn load(path: Option<&Path>) -> Result<Self, SettingsError> {
        let mut settings = Self::default();
        let mut issues = match path {
            Some(path) => settings.apply_toml_file(path)?,
            None => Vec::new(),
        };
        let mut vars = Vec::new();
        for (key, value) in std::env::vars_os() {
            let Some(key) = key.to_str().filter(|k| k.starts_with(ENV_PREFIX)) else {
                continue;
            };
            match value.into_string() {
                Ok(value) => vars.push((key.to_owned(), value)),
                Err(_) => issues.push(SettingIssue::new(key, "is not valid UTF-8")),
            }
        }
        issues.extend(settings.apply_env_vars(vars));
        into_result(issues)?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks the settings as a whole and reports every problem: `SCOPES`,
    /// `DEFAULT_SCOPES`, `READ_SCOPE`/`WRITE_SCOPE`, lifetimes and sizes, DOT's
    /// mandatory lists, the secret hasher, the refresh-token and RFC 9700 checks
    /// DOT runs (E001–E005, W012 as an error), PEM keys, and features this crate
    /// does not implement yet.
    ///
    /// ```
    /// use tower_oauth_toolkit::settings::Settings;
    ///
    /// let mut settings = Settings::default();
    /// settings.default_scopes = vec!["admin".into()];
    /// let err = settings.validate().unwrap_err();
    /// assert_eq!(err.to_string(), r#"DEFAULT_SCOPES contains "admin", which is not in SCOPES"#);
    /// ```
    ///
    /// # Errors
    ///
    /// [`SettingsError::Invalid`] with one [`SettingIssue`] per problem.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let mut issues = Vec::new();
        let mut issue =
            |setting: &str, message: String| issues.push(SettingIssue::new(setting, message));

        // Scopes.
        if self.scopes.is_empty() {
            issue("SCOPES", "must define at least one scope".into());
        }
        for name in self.scopes.keys() {
            if let Err(e) = validate_scope_token(name) {
                issue(
                    "SCOPES",
                    format!("contains {name:?}, which is not a valid scope: {e}"),
                );
            }
        }
        if !self.default_scopes.iter().any(|s| s == ALL_SCOPES) {
            for name in &self.default_scopes {
                if !self.scopes.contains_key(name) {
                    issue(
                        "DEFAULT_SCOPES",
                        format!("contains {name:?}, which is not in SCOPES"),
                    );
                }
            }
        }
        for (setting, name) in [
            ("READ_SCOPE", &self.read_scope),
            ("WRITE_SCOPE", &self.write_scope),
        ] {
            if !self.scopes.contains_key(name) {
                issue(setting, format!("is {name:?}, which is not in SCOPES"));
            }
        }

        // Lifetimes and sizes.
        for (setting, value) in [
            (
                "ACCESS_TOKEN_EXPIRE_SECONDS",
                self.access_token_expire_seconds,
            ),
            (
                "AUTHORIZATION_CODE_EXPIRE_SECONDS",
                self.authorization_code_expire_seconds,
            ),
            ("ID_TOKEN_EXPIRE_SECONDS", self.id_token_expire_seconds),
        ] {
            if value.is_zero() {
                issue(setting, "must be greater than 0".into());
            }
        }
        if self.clear_expired_tokens_batch_size == 0 {
            issue(
                "CLEAR_EXPIRED_TOKENS_BATCH_SIZE",
                "must be greater than 0".into(),
            );
        }
        if !(1..=255).contains(&self.client_secret_generator_length) {
            issue(
                "CLIENT_SECRET_GENERATOR_LENGTH",
                format!(
                    "is {}; it must be between 1 and 255 (the length of DOT's client_secret column)",
                    self.client_secret_generator_length
                ),
            );
        }
        if !CLIENT_SECRET_HASHERS.contains(&self.client_secret_hasher.as_str()) {
            issue(
                "CLIENT_SECRET_HASHER",
                format!(
                    "is {:?}, which is not one of {}",
                    self.client_secret_hasher,
                    CLIENT_SECRET_HASHERS
                        .iter()
                        .map(|h| format!("{h:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }

        // DOT's mandatory (non-empty) settings and URI schemes.
        for (setting, list) in [
            (
                "ALLOWED_REDIRECT_URI_SCHEMES",
                &self.allowed_redirect_uri_schemes,
            ),
            (
                "OIDC_RESPONSE_TYPES_SUPPORTED",
                &self.oidc_response_types_supported,
            ),
            (
                "OIDC_SUBJECT_TYPES_SUPPORTED",
                &self.oidc_subject_types_supported,
            ),
            (
                "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED",
                &self.oidc_token_endpoint_auth_methods_supported,
            ),
        ] {
            if list.is_empty() {
                issue(
                    setting,
                    "must not be empty (a mandatory setting in DOT)".into(),
                );
            }
        }
        for (setting, list) in [
            (
                "ALLOWED_REDIRECT_URI_SCHEMES",
                &self.allowed_redirect_uri_schemes,
            ),
            ("ALLOWED_SCHEMES", &self.allowed_schemes),
        ] {
            for scheme in list.iter().filter(|s| !is_uri_scheme(s)) {
                issue(
                    setting,
                    format!("contains {scheme:?}, which is not a URI scheme (RFC 3986 §3.1)"),
                );
            }
        }

        // Refresh tokens (DOT checks W012 and E001).
        if self.refresh_token_reuse_protection && !self.rotate_refresh_token {
            issue(
                "REFRESH_TOKEN_REUSE_PROTECTION",
                "is true but ROTATE_REFRESH_TOKEN is false: without rotation no refresh token is \
                 ever superseded, so a replay cannot be detected (DOT warning W012)"
                    .into(),
            );
        }
        if self.compliant_bcp_rfc9700_token_storage
            && !self.refresh_token_grace_period_seconds.is_zero()
        {
            issue(
                "REFRESH_TOKEN_GRACE_PERIOD_SECONDS",
                "must be 0 when COMPLIANT_BCP_RFC9700_TOKEN_STORAGE is true: the grace period \
                 returns the previously issued token, which hashed storage no longer has (DOT E001)"
                    .into(),
            );
        }

        // RFC 9700 configuration gates (DOT E002-E005).
        let gates = [
            (
                self.compliant_bcp_rfc9700_refresh_token && !self.refresh_token_reuse_protection,
                "REFRESH_TOKEN_REUSE_PROTECTION",
                "is false, so refresh token replay goes undetected (RFC 9700 §4.14.2), and \
                 COMPLIANT_BCP_RFC9700_REFRESH_TOKEN is true (DOT E002)",
            ),
            (
                self.compliant_bcp_rfc9700_redirect_uri_scheme
                    && self.allowed_redirect_uri_schemes.iter().any(|s| s == "http"),
                "ALLOWED_REDIRECT_URI_SCHEMES",
                "contains \"http\" (RFC 9700 §2.1) and COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME \
                 is true (DOT E003)",
            ),
            (
                self.compliant_bcp_rfc9700_redirect_uri_matching && self.allow_uri_wildcards,
                "ALLOW_URI_WILDCARDS",
                "is true, so redirect URIs are not matched exactly (RFC 9700 §4.1.1), and \
                 COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING is true (DOT E004)",
            ),
            (
                self.compliant_bcp_rfc9700_pkce_required && !self.pkce_required,
                "PKCE_REQUIRED",
                "is false (RFC 9700 §2.1.1) and COMPLIANT_BCP_RFC9700_PKCE_REQUIRED is true (DOT E005)",
            ),
        ];
        for (failed, setting, message) in gates {
            if failed {
                issue(setting, message.into());
            }
        }

        // Keys.
        if self.access_token_format == AccessTokenFormat::Jwt
            && self.oidc_rsa_private_key.is_empty()
        {
            issue(
                "ACCESS_TOKEN_FORMAT",
                "\"jwt\" needs OIDC_RSA_PRIVATE_KEY to sign the tokens".into(),
            );
        }
        if !self.secret_key.is_empty() && self.secret_key.expose().len() < 32 {
            issue(
                "SECRET_KEY",
                "is too short: use at least 32 random characters (or leave it empty for a per-process key)".into(),
            );
        }
        if !self.oidc_rsa_private_key.is_empty()
            && !looks_like_pem(self.oidc_rsa_private_key.expose())
        {
            issue(
                "OIDC_RSA_PRIVATE_KEY",
                "is not a PEM key (it must start with \"-----BEGIN\")".into(),
            );
        }
        for (i, key) in self.oidc_rsa_private_keys_inactive.iter().enumerate() {
            if !looks_like_pem(key.expose()) {
                issue(
                    "OIDC_RSA_PRIVATE_KEYS_INACTIVE",
                    format!(
                        "item {} is not a PEM key (it must start with \"-----BEGIN\")",
                        i + 1
                    ),
                );
            }
        }

        // Features DOT has and this crate does not (yet).
        let missing = [
            (
                self.dcr_enabled,
                "DCR_ENABLED",
                "dynamic client registration (RFC 7591/7592)",
            ),
            (
                self.cimd_enabled,
                "CIMD_ENABLED",
                "client ID metadata documents",
            ),
            (
                self.require_pushed_authorization_requests,
                "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS",
                "pushed authorization requests (RFC 9126)",
            ),
            (
                self.oidc_rp_initiated_registration_enabled,
                "OIDC_RP_INITIATED_REGISTRATION_ENABLED",
                "RP-initiated registration (prompt=create)",
            ),
            (
                self.resource_server_introspection_jwt_client_id.is_some(),
                "RESOURCE_SERVER_INTROSPECTION_JWT_CLIENT_ID",
                "private_key_jwt authentication to the introspection endpoint (RFC 7523)",
            ),
        ];
        for (enabled, setting, feature) in missing {
            if enabled {
                issue(
                    setting,
                    format!("is set, but {feature} is not implemented by tower-oauth-toolkit yet"),
                );
            }
        }
        if self.authentication_server_exp_time_zone != "UTC" {
            issue(
                "AUTHENTICATION_SERVER_EXP_TIME_ZONE",
                format!(
                    "is {:?}, but only \"UTC\" is supported: introspection exp is a Unix timestamp \
                     (RFC 7662 §2.2), and DOT's deprecated time-zone workaround is not implemented",
                    self.authentication_server_exp_time_zone
                ),
            );
        }

        into_result(issues)
    }

    /// How long a refresh token stays usable after its access token expired
    /// (`REFRESH_TOKEN_EXPIRE_SECONDS`); `None` means forever.
    pub fn refresh_token_expire(&self) -> Option<Duration> {
        self.refresh_token_expire_seconds.filter(|d| !d.is_zero())
    }

    /// The scope catalogue: the `scopes_backend` hook, or [`SettingsScopes`]
    /// built from `SCOPES` and `DEFAULT_SCOPES`. Call it once and keep the `Arc`:
    /// the default backend is built from a copy of the settings each time.
    pub fn scopes_backend(&self) -> Arc<dyn ScopesBackend> {
        match &self.scopes_backend {
            Some(backend) => Arc::clone(backend),
            None => Arc::new(SettingsScopes::from_settings(self)),
        }
    }

    /// Replaces the client id generator (DOT `CLIENT_ID_GENERATOR_CLASS`).
    pub fn with_client_id_generator(mut self, generator: Arc<dyn Generator>) -> Self {
        self.client_id_generator = generator;
        self
    }

    /// Replaces the client secret generator (DOT `CLIENT_SECRET_GENERATOR_CLASS`);
    /// `CLIENT_SECRET_GENERATOR_LENGTH` then no longer applies.
    pub fn with_client_secret_generator(mut self, generator: Arc<dyn Generator>) -> Self {
        self.client_secret_generator = Some(generator);
        self
    }

    /// Replaces the access token generator (DOT `ACCESS_TOKEN_GENERATOR`).
    pub fn with_access_token_generator(mut self, generator: Arc<dyn Generator>) -> Self {
        self.access_token_generator = generator;
        self
    }

    /// Replaces the refresh token generator (DOT `REFRESH_TOKEN_GENERATOR`).
    pub fn with_refresh_token_generator(mut self, generator: Arc<dyn Generator>) -> Self {
        self.refresh_token_generator = Some(generator);
        self
    }

    /// Replaces the device user code generator (DOT
    /// `OAUTH_DEVICE_USER_CODE_GENERATOR`).
    pub fn with_user_code_generator(mut self, generator: Arc<dyn Generator>) -> Self {
        self.user_code_generator = generator;
        self
    }

    /// Replaces the scope catalogue (DOT `SCOPES_BACKEND_CLASS`).
    pub fn with_scopes_backend(mut self, backend: Arc<dyn ScopesBackend>) -> Self {
        self.scopes_backend = Some(backend);
        self
    }
}

fn into_result(issues: Vec<SettingIssue>) -> Result<(), SettingsError> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Invalid(issues))
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
fn is_uri_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn looks_like_pem(key: &str) -> bool {
    key.trim_start().starts_with("-----BEGIN")
}

#[cfg(test)]
mod tests {
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
