//! Validation: every rule DOT checks (and a few it only warns about), and the settings
//! of features that are not implemented yet.

use super::{AccessTokenFormat, SettingIssue, SettingsError, CLIENT_SECRET_HASHERS};
use crate::scope::{validate_scope_token, ALL_SCOPES};

use super::load::*;
use super::schema::*;

impl Settings {
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
            (
                "DEVICE_CODE_EXPIRE_SECONDS",
                self.device_code_expire_seconds,
            ),
        ] {
            if value.is_zero() {
                issue(setting, "must be greater than 0".into());
            }
        }
        // The device flow's URLs are shown to users: absolute http(s) URLs.
        for (setting, value) in [
            (
                "OAUTH_DEVICE_VERIFICATION_URI",
                &self.oauth_device_verification_uri,
            ),
            (
                "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE",
                &self.oauth_device_verification_uri_complete,
            ),
        ] {
            let Some(value) = value else { continue };
            let sample = value.replace("{user_code}", "WDJB-MJHT");
            match url::Url::parse(&sample) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => issue(
                    setting,
                    format!("is {value:?}, which is not an absolute http or https URL"),
                ),
            }
        }
        if self
            .oauth_device_verification_uri_complete
            .as_ref()
            .is_some_and(|v| !v.contains("{user_code}"))
        {
            issue(
                "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE",
                "must contain {user_code}, where the user code goes".into(),
            );
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
        // The other settings of features that do not exist yet: accepted at their
        // defaults only, so that none is parsed, stored and silently ignored.
        let defaults = Settings::default();
        for (setting, feature) in NOT_IMPLEMENTED_YET {
            let def = find_def(setting).expect("NOT_IMPLEMENTED_YET names settings");
            if (def.get)(self) != (def.get)(&defaults) {
                issue(
                    setting,
                    format!(
                        "is not supported yet: {feature} is not implemented by \
                         tower-oauth-toolkit yet; leave it at its default"
                    ),
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
}

pub(super) fn into_result(issues: Vec<SettingIssue>) -> Result<(), SettingsError> {
    if issues.is_empty() {
        Ok(())
    } else {
        Err(SettingsError::Invalid(issues))
    }
}

/// `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )` (RFC 3986 §3.1).
pub(super) fn is_uri_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

pub(super) fn looks_like_pem(key: &str) -> bool {
    key.trim_start().starts_with("-----BEGIN")
}
