//! Settings: DOT's defaults, TOML and environment loading, validation.
//!
//! The expected defaults below are copied from Django OAuth Toolkit's settings table
//! (shared/reference/django-oauth-toolkit.md §4), not from `src/settings.rs`.

use std::io::Write as _;
use std::time::Duration;

use tower_oauth_toolkit::settings::{ApprovalPrompt, Settings, SettingsError, SETTING_NAMES};

/// The expected `Settings::get` result: `none`, `[items]`, `{"key": value}` or a
/// scalar.
macro_rules! expected {
    (none) => {
        None::<toml::Value>
    };
    ([$($item:expr),* $(,)?]) => {
        Some(toml::Value::Array(vec![$(toml::Value::from($item)),*]))
    };
    ({$($key:literal : $value:expr),* $(,)?}) => {
        Some(toml::Value::Table(toml::Table::from_iter([
            $(($key.to_owned(), toml::Value::from($value))),*
        ])))
    };
    ($value:expr) => {
        Some(toml::Value::from($value))
    };
}

/// Asserts that the default of one setting is DOT's, by UPPER-CASE and by
/// snake_case name.
macro_rules! dot_default {
    ($field:ident, $name:literal, $($value:tt)+) => {{
        assert!(SETTING_NAMES.contains(&$name), "{} is not in SETTING_NAMES", $name);
        let settings = Settings::default();
        let expected = expected!($($value)+);
        assert_eq!(settings.get($name), expected, "default of {}", $name);
        assert_eq!(settings.get(stringify!($field)), expected, "default of {}", stringify!($field));
    }};
}

/// One `#[test]` per setting, plus `COVERED`, the names these tests check.
macro_rules! dot_defaults {
    ($( $field:ident : $name:literal => ($($value:tt)+) ; )*) => {
        $(
            #[test]
            fn $field() {
                dot_default!($field, $name, $($value)+);
            }
        )*

        const COVERED: &[&str] = &[$($name),*];
    };
}

mod defaults {
    use super::*;

    dot_defaults! {
        scopes: "SCOPES" => ({"read": "Reading scope", "write": "Writing scope"});
        default_scopes: "DEFAULT_SCOPES" => (["__all__"]);
        read_scope: "READ_SCOPE" => ("read");
        write_scope: "WRITE_SCOPE" => ("write");
        clear_expired_tokens_batch_size: "CLEAR_EXPIRED_TOKENS_BATCH_SIZE" => (10000);
        clear_expired_tokens_batch_interval: "CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL" => (0);
        client_secret_generator_length: "CLIENT_SECRET_GENERATOR_LENGTH" => (128);
        client_secret_hasher: "CLIENT_SECRET_HASHER" => ("default");
        authorization_code_expire_seconds: "AUTHORIZATION_CODE_EXPIRE_SECONDS" => (60);
        access_token_expire_seconds: "ACCESS_TOKEN_EXPIRE_SECONDS" => (36000);
        refresh_token_expire_seconds: "REFRESH_TOKEN_EXPIRE_SECONDS" => (none);
        refresh_token_grace_period_seconds: "REFRESH_TOKEN_GRACE_PERIOD_SECONDS" => (0);
        refresh_token_reuse_protection: "REFRESH_TOKEN_REUSE_PROTECTION" => (false);
        rotate_refresh_token: "ROTATE_REFRESH_TOKEN" => (true);
        error_response_with_scopes: "ERROR_RESPONSE_WITH_SCOPES" => (false);
        request_approval_prompt: "REQUEST_APPROVAL_PROMPT" => ("force");
        allowed_redirect_uri_schemes: "ALLOWED_REDIRECT_URI_SCHEMES" => (["http", "https"]);
        allowed_schemes: "ALLOWED_SCHEMES" => (["https"]);
        allow_uri_wildcards: "ALLOW_URI_WILDCARDS" => (false);
        allow_localhost_loopback: "ALLOW_LOCALHOST_LOOPBACK" => (false);
        oauth_device_verification_uri: "OAUTH_DEVICE_VERIFICATION_URI" => (none);
        oauth_device_verification_uri_complete: "OAUTH_DEVICE_VERIFICATION_URI_COMPLETE" => (none);
        device_flow_interval: "DEVICE_FLOW_INTERVAL" => (5);
        device_code_expire_seconds: "DEVICE_CODE_EXPIRE_SECONDS" => (1800);
        pkce_required: "PKCE_REQUIRED" => (true);
        require_form_encoded_request_body: "REQUIRE_FORM_ENCODED_REQUEST_BODY" => (false);
        compliant_bcp_rfc9700_implicit_grant: "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT" => (false);
        compliant_bcp_rfc9700_password_grant: "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT" => (false);
        compliant_bcp_rfc9700_pkce_method: "COMPLIANT_BCP_RFC9700_PKCE_METHOD" => (false);
        compliant_bcp_rfc9700_access_token_transport: "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT" => (false);
        compliant_bcp_rfc9700_authz_response_iss: "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS" => (false);
        compliant_bcp_rfc9700_token_storage: "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE" => (false);
        compliant_bcp_rfc9700_refresh_token: "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN" => (false);
        compliant_bcp_rfc9700_redirect_uri_scheme: "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME" => (false);
        compliant_bcp_rfc9700_redirect_uri_matching: "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING" => (false);
        compliant_bcp_rfc9700_pkce_required: "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED" => (false);
        dcr_enabled: "DCR_ENABLED" => (false);
        dcr_registration_scope: "DCR_REGISTRATION_SCOPE" => ("oauth2_provider:registration");
        dcr_registration_token_expire_seconds: "DCR_REGISTRATION_TOKEN_EXPIRE_SECONDS" => (none);
        dcr_rotate_registration_token_on_update: "DCR_ROTATE_REGISTRATION_TOKEN_ON_UPDATE" => (true);
        dcr_registration_policy: "DCR_REGISTRATION_POLICY" => ("authenticated");
        dcr_allowed_grant_types: "DCR_ALLOWED_GRANT_TYPES" => (["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]);
        dcr_initial_access_token_scope: "DCR_INITIAL_ACCESS_TOKEN_SCOPE" => ("oauth2_provider:dcr");
        dcr_registrations_per_hour: "DCR_REGISTRATIONS_PER_HOUR" => (20);
        dcr_unused_client_max_age_seconds: "DCR_UNUSED_CLIENT_MAX_AGE_SECONDS" => (none);
        cimd_enabled: "CIMD_ENABLED" => (false);
        cimd_allow_loopback: "CIMD_ALLOW_LOOPBACK" => (false);
        cimd_allowed_hosts: "CIMD_ALLOWED_HOSTS" => ([]);
        cimd_fetch_timeout_seconds: "CIMD_FETCH_TIMEOUT_SECONDS" => (5);
        cimd_max_document_size: "CIMD_MAX_DOCUMENT_SIZE" => (16384);
        cimd_metadata_min_age_seconds: "CIMD_METADATA_MIN_AGE_SECONDS" => (300);
        cimd_metadata_max_age_seconds: "CIMD_METADATA_MAX_AGE_SECONDS" => (86400);
        cimd_failure_backoff_seconds: "CIMD_FAILURE_BACKOFF_SECONDS" => (60);
        cimd_max_concurrent_fetches: "CIMD_MAX_CONCURRENT_FETCHES" => (10);
        client_assertion_leeway: "CLIENT_ASSERTION_LEEWAY" => (60);
        client_assertion_max_lifetime: "CLIENT_ASSERTION_MAX_LIFETIME" => (300);
        client_assertion_accepted_audiences: "CLIENT_ASSERTION_ACCEPTED_AUDIENCES" => (none);
        client_assertion_private_key_jwt_algs: "CLIENT_ASSERTION_PRIVATE_KEY_JWT_ALGS" => ([
            "RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512"
        ]);
        client_assertion_client_secret_jwt_algs: "CLIENT_ASSERTION_CLIENT_SECRET_JWT_ALGS" => (["HS256", "HS384", "HS512"]);
        client_assertion_jwks_cache_timeout: "CLIENT_ASSERTION_JWKS_CACHE_TIMEOUT" => (3600);
        client_assertion_jwks_fetch_timeout_seconds: "CLIENT_ASSERTION_JWKS_FETCH_TIMEOUT_SECONDS" => (5);
        client_assertion_jwks_max_size: "CLIENT_ASSERTION_JWKS_MAX_SIZE" => (65536);
        client_assertion_jwks_failure_backoff_seconds: "CLIENT_ASSERTION_JWKS_FAILURE_BACKOFF_SECONDS" => (60);
        par_enabled: "PAR_ENABLED" => (true);
        par_request_uri_lifetime_seconds: "PAR_REQUEST_URI_LIFETIME_SECONDS" => (60);
        require_pushed_authorization_requests: "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS" => (false);
        oauth2_response_types_supported: "OAUTH2_RESPONSE_TYPES_SUPPORTED" => (["code", "token"]);
        oauth2_token_endpoint_auth_methods_supported: "OAUTH2_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED" => ([
            "client_secret_post", "client_secret_basic"
        ]);
        oauth2_grant_types_supported: "OAUTH2_GRANT_TYPES_SUPPORTED" => ([
            "authorization_code",
            "implicit",
            "password",
            "client_credentials",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:device_code",
        ]);
        id_token_expire_seconds: "ID_TOKEN_EXPIRE_SECONDS" => (36000);
        oidc_enabled: "OIDC_ENABLED" => (false);
        oidc_iss_endpoint: "OIDC_ISS_ENDPOINT" => ("");
        oidc_userinfo_endpoint: "OIDC_USERINFO_ENDPOINT" => ("");
        oidc_userinfo_cors_enabled: "OIDC_USERINFO_CORS_ENABLED" => (true);
        oidc_rsa_private_key: "OIDC_RSA_PRIVATE_KEY" => ("");
        oidc_rsa_private_keys_inactive: "OIDC_RSA_PRIVATE_KEYS_INACTIVE" => ([]);
        oidc_jwks_max_age_seconds: "OIDC_JWKS_MAX_AGE_SECONDS" => (3600);
        oidc_response_types_supported: "OIDC_RESPONSE_TYPES_SUPPORTED" => ([
            "code",
            "token",
            "id_token",
            "id_token token",
            "code token",
            "code id_token",
            "code id_token token",
        ]);
        oidc_subject_types_supported: "OIDC_SUBJECT_TYPES_SUPPORTED" => (["public"]);
        oidc_token_endpoint_auth_methods_supported: "OIDC_TOKEN_ENDPOINT_AUTH_METHODS_SUPPORTED" => ([
            "client_secret_post", "client_secret_basic"
        ]);
        oidc_rp_initiated_registration_enabled: "OIDC_RP_INITIATED_REGISTRATION_ENABLED" => (false);
        oidc_rp_initiated_registration_url: "OIDC_RP_INITIATED_REGISTRATION_URL" => (none);
        oidc_rp_initiated_logout_enabled: "OIDC_RP_INITIATED_LOGOUT_ENABLED" => (false);
        oidc_rp_initiated_logout_always_prompt: "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT" => (true);
        oidc_rp_initiated_logout_strict_redirect_uris: "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS" => (false);
        oidc_rp_initiated_logout_accept_expired_tokens: "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS" => (true);
        oidc_rp_initiated_logout_delete_tokens: "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS" => (true);
        resource_server_introspection_url: "RESOURCE_SERVER_INTROSPECTION_URL" => (none);
        resource_server_auth_token: "RESOURCE_SERVER_AUTH_TOKEN" => (none);
        resource_server_introspection_credentials: "RESOURCE_SERVER_INTROSPECTION_CREDENTIALS" => (none);
        resource_server_introspection_timeout_seconds: "RESOURCE_SERVER_INTROSPECTION_TIMEOUT_SECONDS" => (5);
        resource_server_token_caching_seconds: "RESOURCE_SERVER_TOKEN_CACHING_SECONDS" => (36000);
        resource_server_introspection_jwt_client_id: "RESOURCE_SERVER_INTROSPECTION_JWT_CLIENT_ID" => (none);
        resource_server_introspection_jwt_private_key: "RESOURCE_SERVER_INTROSPECTION_JWT_PRIVATE_KEY" => (none);
        resource_server_introspection_jwt_alg: "RESOURCE_SERVER_INTROSPECTION_JWT_ALG" => (none);
        resource_server_introspection_jwt_audience: "RESOURCE_SERVER_INTROSPECTION_JWT_AUDIENCE" => (none);
        resource_server_introspection_jwt_lifetime: "RESOURCE_SERVER_INTROSPECTION_JWT_LIFETIME" => (60);
        resource_server_introspection_jwt_kid: "RESOURCE_SERVER_INTROSPECTION_JWT_KID" => (none);
        authentication_server_exp_time_zone: "AUTHENTICATION_SERVER_EXP_TIME_ZONE" => ("UTC");
        oauth2_protected_resource_identifier: "OAUTH2_PROTECTED_RESOURCE_IDENTIFIER" => ("");
        oauth2_protected_resource_authorization_servers: "OAUTH2_PROTECTED_RESOURCE_AUTHORIZATION_SERVERS" => ([]);
        oauth2_protected_resource_bearer_methods_supported: "OAUTH2_PROTECTED_RESOURCE_BEARER_METHODS_SUPPORTED" => (["header"]);
        oauth2_protected_resource_name: "OAUTH2_PROTECTED_RESOURCE_NAME" => ("");
        oauth2_protected_resource_documentation: "OAUTH2_PROTECTED_RESOURCE_DOCUMENTATION" => ("");
        oauth2_protected_resource_policy_uri: "OAUTH2_PROTECTED_RESOURCE_POLICY_URI" => ("");
        oauth2_protected_resource_tos_uri: "OAUTH2_PROTECTED_RESOURCE_TOS_URI" => ("");
        secret_key: "SECRET_KEY" => ("");
        access_token_format: "ACCESS_TOKEN_FORMAT" => ("opaque");
        login_failure_limit: "LOGIN_FAILURE_LIMIT" => (5);
        client_auth_failure_limit: "CLIENT_AUTH_FAILURE_LIMIT" => (10);
        device_user_code_failure_limit: "DEVICE_USER_CODE_FAILURE_LIMIT" => (5);
        failure_window_seconds: "FAILURE_WINDOW_SECONDS" => (900);
        lockout_seconds: "LOCKOUT_SECONDS" => (60);
        max_lockout_seconds: "MAX_LOCKOUT_SECONDS" => (3600);
    }

    #[test]
    fn every_setting_has_a_default_test() {
        let missing: Vec<_> = SETTING_NAMES
            .iter()
            .filter(|name| !COVERED.contains(name))
            .collect();
        assert!(
            missing.is_empty(),
            "settings without a dot_default! test: {missing:?}"
        );
        assert_eq!(
            COVERED.len(),
            SETTING_NAMES.len(),
            "a setting is covered twice"
        );
    }

    #[test]
    fn the_hooks_default_to_dot_generators() {
        let settings = Settings::default();
        assert_eq!(settings.request_approval_prompt, ApprovalPrompt::Force);
        // The hooks moved to `Generators` (given to the provider builder).
        let generators = tower_oauth_toolkit::generators::Generators::default();
        assert!(generators.client_secret.is_none());
        assert!(generators.refresh_token.is_none());
        assert_eq!(settings.refresh_token_expire(), None);
        settings.validate().unwrap();
    }
}

fn issues(err: &SettingsError) -> Vec<String> {
    err.issues().iter().map(ToString::to_string).collect()
}

fn write_temp(contents: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(contents.as_bytes()).unwrap();
    file
}

const FILE: &str = r#"
access_token_expire_seconds = 3600
REFRESH_TOKEN_EXPIRE_SECONDS = 1209600
request_approval_prompt = "auto"
allowed_redirect_uri_schemes = ["https", "com.example.app"]
clear_expired_tokens_batch_interval = 0.5
resource_server_introspection_credentials = ["rs-client", "rs-secret"]
default_scopes = ["read"]

[scopes]
read = "Read your data"
write = "Change your data"
openid = "Sign you in"
"#;

#[test]
fn loads_a_toml_file() {
    let file = write_temp(FILE);
    let settings = Settings::from_toml_file(file.path()).unwrap();
    settings.validate().unwrap();
    assert_eq!(
        settings.access_token_expire_seconds,
        Duration::from_secs(3600)
    );
    assert_eq!(
        settings.refresh_token_expire(),
        Some(Duration::from_secs(1_209_600))
    );
    assert_eq!(settings.request_approval_prompt, ApprovalPrompt::Auto);
    assert_eq!(
        settings.allowed_redirect_uri_schemes,
        ["https", "com.example.app"]
    );
    assert_eq!(
        settings.clear_expired_tokens_batch_interval,
        Duration::from_millis(500)
    );
    let (client_id, secret) = settings
        .resource_server_introspection_credentials
        .as_ref()
        .unwrap();
    assert_eq!(
        (client_id.as_str(), secret.expose()),
        ("rs-client", "rs-secret")
    );
    assert_eq!(
        settings.scopes.keys().collect::<Vec<_>>(),
        ["read", "write", "openid"]
    );
    let backend = settings.scopes_backend();
    assert_eq!(backend.default_scopes(Some("any")).to_string(), "read");
    assert_eq!(
        backend.available_scopes(None).to_string(),
        "read write openid"
    );
    assert_eq!(backend.description("openid"), Some("Sign you in"));
    // Untouched settings keep DOT's defaults.
    assert!(settings.rotate_refresh_token);
    assert_eq!(settings.client_secret_generator_length, 128);
}

#[test]
fn load_reads_the_file_and_validates() {
    // Assumes no OAUTH2_PROVIDER_* variables in the test environment.
    let file = write_temp(FILE);
    let settings = Settings::load(Some(file.path())).unwrap();
    assert_eq!(
        settings.access_token_expire_seconds,
        Duration::from_secs(3600)
    );

    let file = write_temp("default_scopes = [\"admin\"]\n");
    let err = Settings::load(Some(file.path())).unwrap_err();
    assert_eq!(
        issues(&err),
        [r#"DEFAULT_SCOPES contains "admin", which is not in SCOPES"#]
    );

    let err = Settings::load(Some(std::path::Path::new("/nonexistent/oauth.toml"))).unwrap_err();
    assert!(matches!(err, SettingsError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("/nonexistent/oauth.toml"), "{err}");
}

#[test]
fn env_overrides_take_precedence_over_the_file() {
    let file = write_temp(FILE);
    let mut settings = Settings::from_toml_file(file.path()).unwrap();
    settings
        .apply_env([
            (
                "OAUTH2_PROVIDER_ACCESS_TOKEN_EXPIRE_SECONDS".to_owned(),
                "600".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_REQUEST_APPROVAL_PROMPT".to_owned(),
                "force".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_ROTATE_REFRESH_TOKEN".to_owned(),
                "False".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_ALLOWED_REDIRECT_URI_SCHEMES".to_owned(),
                "https, myapp".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_ALLOWED_SCHEMES".to_owned(),
                "https http".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_OAUTH2_RESPONSE_TYPES_SUPPORTED".to_owned(),
                r#"["code"]"#.to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_SCOPES".to_owned(),
                r#"{ read = "R", write = "W" }"#.to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_OIDC_ISS_ENDPOINT".to_owned(),
                "https://id.example.com".to_owned(),
            ),
            ("OAUTH2_PROVIDER_READ_SCOPE".to_owned(), "read".to_owned()),
            (
                "OAUTH2_PROVIDER_REFRESH_TOKEN_EXPIRE_SECONDS".to_owned(),
                "0".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_RESOURCE_SERVER_INTROSPECTION_CREDENTIALS".to_owned(),
                "id:s3cret".to_owned(),
            ),
            (
                "OAUTH2_PROVIDER_RESOURCE_SERVER_AUTH_TOKEN".to_owned(),
                "abc def".to_owned(),
            ),
            ("UNRELATED_VARIABLE".to_owned(), "whatever".to_owned()),
        ])
        .unwrap();
    settings.validate().unwrap();
    assert_eq!(
        settings.access_token_expire_seconds,
        Duration::from_secs(600)
    );
    assert_eq!(settings.request_approval_prompt, ApprovalPrompt::Force);
    assert!(!settings.rotate_refresh_token);
    assert_eq!(settings.allowed_redirect_uri_schemes, ["https", "myapp"]);
    assert_eq!(settings.allowed_schemes, ["https", "http"]);
    assert_eq!(settings.oauth2_response_types_supported, ["code"]);
    assert_eq!(settings.scopes["read"], "R");
    assert_eq!(settings.oidc_iss_endpoint, "https://id.example.com");
    assert_eq!(settings.refresh_token_expire(), None);
    let (id, secret) = settings.resource_server_introspection_credentials.unwrap();
    assert_eq!((id.as_str(), secret.expose()), ("id", "s3cret"));
    assert_eq!(
        settings.resource_server_auth_token.unwrap().expose(),
        "abc def"
    );
    // Not overridden: still from the file.
    assert_eq!(settings.default_scopes, ["read"]);
}

#[test]
fn bad_toml_value_names_the_setting() {
    let err = Settings::from_toml_str("\n\naccess_token_expire_seconds = \"ten\"\n").unwrap_err();
    let lines = issues(&err);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("ACCESS_TOKEN_EXPIRE_SECONDS "),
        "{err}"
    );
    assert!(lines[0].contains("line 3"), "{err}");
    assert!(lines[0].contains("\"ten\""), "{err}");
}

#[test]
fn bad_env_value_names_the_setting() {
    let mut settings = Settings::default();
    let err = settings
        .apply_env([("OAUTH2_PROVIDER_ROTATE_REFRESH_TOKEN", "maybe")])
        .unwrap_err();
    let text = err.to_string();
    assert!(text.starts_with("ROTATE_REFRESH_TOKEN "), "{text}");
    assert!(
        text.contains("OAUTH2_PROVIDER_ROTATE_REFRESH_TOKEN"),
        "{text}"
    );
    assert!(text.contains("maybe"), "{text}");
    assert!(
        settings.rotate_refresh_token,
        "a bad value leaves the default"
    );
}

#[test]
fn unknown_keys_are_errors() {
    let err = Settings::from_toml_str("acess_token_expire_seconds = 60\nfrobnicate = true\n")
        .unwrap_err();
    let lines = issues(&err);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(
        lines[0].starts_with("acess_token_expire_seconds "),
        "{lines:?}"
    );
    assert!(
        lines[0].contains("did you mean access_token_expire_seconds?"),
        "{lines:?}"
    );
    assert!(
        lines[1].starts_with("frobnicate (line 2) is not a known setting"),
        "{lines:?}"
    );

    let err = Settings::default()
        .apply_env([("OAUTH2_PROVIDER_PKCE_REQUIRD", "true")])
        .unwrap_err();
    assert!(
        err.to_string().starts_with("OAUTH2_PROVIDER_PKCE_REQUIRD "),
        "{err}"
    );
    assert!(
        err.to_string().contains("OAUTH2_PROVIDER_PKCE_REQUIRED?"),
        "{err}"
    );

    let err = Settings::from_toml_str("oauth2_validator_class = \"myapp.Validator\"").unwrap_err();
    assert!(err.to_string().contains("Python class"), "{err}");
}

#[test]
fn upper_case_keys_are_accepted_once() {
    let settings = Settings::from_toml_str("PKCE_REQUIRED = false").unwrap();
    assert!(!settings.pkce_required);
    let err = Settings::from_toml_str("PKCE_REQUIRED = false\npkce_required = true").unwrap_err();
    assert!(err.to_string().starts_with("PKCE_REQUIRED "), "{err}");
    assert!(err.to_string().contains("twice"), "{err}");
}

#[test]
fn default_scopes_outside_scopes() {
    let settings = Settings::from_toml_str(r#"default_scopes = ["read", "admin"]"#).unwrap();
    let err = settings.validate().unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"DEFAULT_SCOPES contains "admin", which is not in SCOPES"#
    );
}

#[test]
fn several_errors_are_reported_together() {
    let err = Settings::from_toml_str(
        "access_token_expire_seconds = \"ten\"\nrotate_refresh_token = 1\nbogus = 2\n",
    )
    .unwrap_err();
    let lines = issues(&err);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(err.to_string().lines().count(), 3);

    let settings = Settings::from_toml_str(
        r#"
        access_token_expire_seconds = 0
        clear_expired_tokens_batch_size = 0
        client_secret_generator_length = 300
        client_secret_hasher = "bcrypt"
        allowed_redirect_uri_schemes = []
        oidc_subject_types_supported = []
        refresh_token_reuse_protection = true
        rotate_refresh_token = false
        oidc_rsa_private_key = "not a key"
        require_pushed_authorization_requests = true
        oidc_rp_initiated_registration_enabled = true
        resource_server_introspection_jwt_client_id = "rs"
        authentication_server_exp_time_zone = "Europe/Paris"
        default_scopes = ["admin"]
        [scopes]
        "bad scope" = "has a space"
        "#,
    )
    .unwrap();
    let err = settings.validate().unwrap_err();
    let text = err.to_string();
    let lines = issues(&err);
    for expected in [
        "SCOPES contains \"bad scope\"",
        r#"DEFAULT_SCOPES contains "admin", which is not in SCOPES"#,
        "READ_SCOPE is \"read\", which is not in SCOPES",
        "WRITE_SCOPE is \"write\", which is not in SCOPES",
        "ACCESS_TOKEN_EXPIRE_SECONDS must be greater than 0",
        "CLEAR_EXPIRED_TOKENS_BATCH_SIZE must be greater than 0",
        "CLIENT_SECRET_GENERATOR_LENGTH is 300",
        "CLIENT_SECRET_HASHER is \"bcrypt\"",
        "ALLOWED_REDIRECT_URI_SCHEMES must not be empty",
        "OIDC_SUBJECT_TYPES_SUPPORTED must not be empty",
        "REFRESH_TOKEN_REUSE_PROTECTION is true but ROTATE_REFRESH_TOKEN is false",
        "OIDC_RSA_PRIVATE_KEY is not a PEM key",
        "REQUIRE_PUSHED_AUTHORIZATION_REQUESTS is set, but",
        "OIDC_RP_INITIATED_REGISTRATION_ENABLED is set, but",
        "RESOURCE_SERVER_INTROSPECTION_JWT_CLIENT_ID is set, but",
        "AUTHENTICATION_SERVER_EXP_TIME_ZONE is \"Europe/Paris\"",
    ] {
        assert!(
            lines.iter().any(|line| line.starts_with(expected)),
            "missing {expected:?} in:\n{text}"
        );
    }
    assert_eq!(lines.len(), 16, "{text}");
    // The private key's text is not echoed.
    assert!(!text.contains("not a key"), "{text}");
}

#[test]
fn rfc9700_gates_turn_dot_warnings_into_errors() {
    let mut settings = Settings::default();
    settings.validate().unwrap();
    settings.compliant_bcp_rfc9700_refresh_token = true;
    settings.compliant_bcp_rfc9700_redirect_uri_scheme = true;
    settings.compliant_bcp_rfc9700_redirect_uri_matching = true;
    settings.compliant_bcp_rfc9700_pkce_required = true;
    settings.compliant_bcp_rfc9700_token_storage = true;
    settings.allow_uri_wildcards = true;
    settings.pkce_required = false;
    settings.refresh_token_grace_period_seconds = Duration::from_secs(5);
    let err = settings.validate().unwrap_err();
    let lines = issues(&err);
    for (setting, check) in [
        ("REFRESH_TOKEN_REUSE_PROTECTION ", "E002"),
        ("ALLOWED_REDIRECT_URI_SCHEMES ", "E003"),
        ("ALLOW_URI_WILDCARDS ", "E004"),
        ("PKCE_REQUIRED ", "E005"),
        ("REFRESH_TOKEN_GRACE_PERIOD_SECONDS ", "E001"),
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(setting) && l.contains(check)),
            "{setting}{check} missing from {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 5, "{lines:#?}");
}

#[test]
fn syntax_errors_give_the_line() {
    let err = Settings::from_toml_str("pkce_required = true\nscopes = {read = \n").unwrap_err();
    assert!(matches!(err, SettingsError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("line 2"), "{err}");

    let file = write_temp("rotate_refresh_token = = true\n");
    let err = Settings::from_toml_file(file.path()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("line 1"), "{text}");
    assert!(text.contains(&file.path().display().to_string()), "{text}");
}

#[test]
fn debug_does_not_print_secrets() {
    let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----\n";
    let settings = Settings::from_toml_str(&format!(
        r#"
        oidc_rsa_private_key = """{pem}"""
        oidc_rsa_private_keys_inactive = ["""{pem}"""]
        resource_server_auth_token = "bearer-token-value"
        resource_server_introspection_credentials = "rs-client:client-secret-value"
        resource_server_introspection_jwt_private_key = "jwt-private-key-value"
        "#
    ))
    .unwrap();
    assert_eq!(settings.oidc_rsa_private_key.expose(), pem);
    let debug = format!("{settings:?}");
    let pretty = format!("{settings:#?}");
    for secret in [
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        "bearer-token-value",
        "client-secret-value",
        "jwt-private-key-value",
    ] {
        assert!(!debug.contains(secret), "{secret} leaked: {debug}");
        assert!(!pretty.contains(secret), "{secret} leaked");
    }
    assert!(debug.contains("[redacted]"));
    assert!(debug.contains("rs-client"), "the client id is not secret");
    for name in SETTING_NAMES {
        if let Some(value) = settings.get(name) {
            let shown = value.to_string();
            assert!(
                !shown.contains("MIIEvQ") && !shown.contains("value\""),
                "{name}: {shown}"
            );
        }
    }
}

#[test]
fn jwt_access_tokens_need_a_signing_key() {
    let jwt = Settings::from_toml_str("access_token_format = \"jwt\"").unwrap();
    let err = jwt.validate().unwrap_err();
    assert!(err.to_string().contains("ACCESS_TOKEN_FORMAT"), "{err}");
    let err = Settings::from_toml_str("access_token_format = \"paseto\"").unwrap_err();
    assert!(err.to_string().contains("ACCESS_TOKEN_FORMAT"), "{err}");
    let short = Settings::from_toml_str("secret_key = \"short\"").unwrap();
    let err = short.validate().unwrap_err();
    assert!(err.to_string().contains("SECRET_KEY"), "{err}");
    assert!(
        !err.to_string().contains("short\""),
        "the secret is not echoed: {err}"
    );
}

/// Settings of features that do not exist yet are accepted at their defaults and
/// refused otherwise, naming the setting and the feature: none is silently ignored.
#[test]
fn settings_of_unimplemented_features_are_refused_unless_default() {
    let refused = Settings::from_toml_str(
        r#"
        client_assertion_leeway = 5
        par_request_uri_lifetime_seconds = 30
        resource_server_introspection_jwt_kid = "k1"
        write_scope = "change"
        "#,
    )
    .unwrap();
    let err = refused.validate().unwrap_err();
    let lines = issues(&err);
    for (setting, feature) in [
        (
            "CLIENT_ASSERTION_LEEWAY",
            "JWT client authentication (RFC 7523)",
        ),
        (
            "PAR_REQUEST_URI_LIFETIME_SECONDS",
            "pushed authorization requests",
        ),
        (
            "RESOURCE_SERVER_INTROSPECTION_JWT_KID",
            "private_key_jwt authentication",
        ),
        ("WRITE_SCOPE", "ReadWriteScopedResourceView"),
    ] {
        assert!(
            lines.iter().any(
                |l| l.starts_with(&format!("{setting} is not supported yet: "))
                    && l.contains(feature)
                    && l.ends_with("leave it at its default")
            ),
            "missing {setting} in {lines:#?}"
        );
    }
    // The same settings written out at their defaults are fine.
    let defaults = Settings::from_toml_str(
        r#"
        cimd_max_document_size = 16384
        write_scope = "write"
        oauth2_protected_resource_name = "My API"
        "#,
    )
    .unwrap();
    defaults.validate().unwrap();
}
