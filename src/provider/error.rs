//! RFC 6749 §5.2 (and RFC 7009 / 7662) error answers of the provider's endpoints.

use axum::response::{IntoResponse, Response};
use http::{header, HeaderValue, StatusCode};

/// An OAuth 2.0 error code (RFC 6749 §4.1.2.1, §5.2; RFC 7009 §2.2.1). `Display` is the
/// wire string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A required parameter is missing, repeated, or malformed.
    InvalidRequest,
    /// Client authentication failed (unknown client, wrong secret, no authentication).
    InvalidClient,
    /// The code, refresh token or resource-owner credentials are invalid, expired,
    /// revoked, or were issued to another client or redirect URI.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The grant type is not supported by the server.
    UnsupportedGrantType,
    /// The requested scope is unknown, malformed, or wider than allowed.
    InvalidScope,
    /// The resource owner or the server denied the request.
    AccessDenied,
    /// The response type is not supported.
    UnsupportedResponseType,
    /// RFC 7009: the server cannot revoke this token type.
    UnsupportedTokenType,
    /// The server hit an unexpected condition.
    ServerError,
    /// The server cannot handle the request now.
    TemporarilyUnavailable,
    /// OIDC: the user must log in (`prompt=none` without a session).
    LoginRequired,
    /// OIDC: the user must consent (`prompt=none` without a prior consent).
    ConsentRequired,
    /// OIDC Core §3.1.2.6: the `request` parameter (a request object) is not supported.
    RequestNotSupported,
    /// OIDC Core §3.1.2.6: the `request_uri` parameter is not supported.
    RequestUriNotSupported,
    /// RFC 8628 §3.5: the user has not approved or denied the device yet; poll again.
    AuthorizationPending,
    /// RFC 8628 §3.5: still pending, and the device polls too fast: its interval grew
    /// by 5 seconds (the answer carries the new one in `interval` and `Retry-After`).
    SlowDown,
    /// RFC 8628 §3.5: the device code expired; start a new device authorization.
    ExpiredToken,
    /// RFC 8707 §2: a `resource` is not an absolute URI without a fragment, is not one
    /// the client may ask for, or is wider than what was granted.
    InvalidTarget,
}

impl ErrorCode {
    /// The wire string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::UnsupportedResponseType => "unsupported_response_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::LoginRequired => "login_required",
            ErrorCode::ConsentRequired => "consent_required",
            ErrorCode::RequestNotSupported => "request_not_supported",
            ErrorCode::RequestUriNotSupported => "request_uri_not_supported",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::InvalidTarget => "invalid_target",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: the code and a description for the developer of the client.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    /// The RFC error code.
    pub code: ErrorCode,
    /// `error_description` (ASCII, no secrets).
    pub description: String,
    /// Seconds to send in `Retry-After` (a throttled attempt, a busy server). A
    /// `NonZeroU32` keeps the error as small as it was without it.
    pub retry_after: Option<std::num::NonZeroU32>,
}

impl OAuthError {
    /// An error with a description.
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        OAuthError {
            code,
            description: description.into(),
            retry_after: None,
        }
    }
    /// The same error, answered with `Retry-After: seconds` (at least 1).
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        let seconds = u32::try_from(seconds).unwrap_or(u32::MAX).max(1);
        self.retry_after = std::num::NonZeroU32::new(seconds);
        self
    }
    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, d)
    }
    /// `invalid_client`.
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClient, d)
    }
    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, d)
    }
    /// `invalid_target` (RFC 8707).
    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, d)
    }
    /// `unauthorized_client`.
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, d)
    }
    /// `server_error`, logging the cause (which is not sent).
    pub fn server(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "provider error");
        Self::new(
            ErrorCode::ServerError,
            "The server could not handle the request.",
        )
    }

    /// The HTTP status of this error on the token, revocation and introspection endpoints.
    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::InvalidClient => StatusCode::UNAUTHORIZED,
            ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body `{"error": …, "error_description": …}`, the description in RFC 6749
    /// §5.2's character set (`description_chars`). A `slow_down` with a `Retry-After`
    /// also carries it as `interval`, the device's new polling interval (RFC 8628 §3.5).
    pub fn to_json(&self) -> String {
        let description = description_chars(&self.description);
        let mut body =
            serde_json::json!({"error": self.code.as_str(), "error_description": description});
        if let (ErrorCode::SlowDown, Some(interval)) = (self.code, self.retry_after) {
            body["interval"] = interval.get().into();
        }
        body.to_string()
    }
}

impl From<crate::store::StoreError> for OAuthError {
    fn from(e: crate::store::StoreError) -> Self {
        match e {
            // An environmental fault: 503, so that clients retry; nothing was written.
            crate::store::StoreError::Unavailable(cause) => {
                tracing::warn!(%cause, "storage temporarily unavailable; answering 503");
                OAuthError::new(
                    ErrorCode::TemporarilyUnavailable,
                    "The server is temporarily unable to handle the request; try again later.",
                )
            }
            e => OAuthError::server(e),
        }
    }
}

/// `error_description` may only hold `%x20-21 / %x23-5B / %x5D-7E` (RFC 6749 §4.1.2.1,
/// §5.2): `"` becomes `'`, a backslash becomes `/`, anything else outside becomes `?`. Applied
/// where an error is rendered (JSON answers and redirects), so no description can break
/// the rule.
pub(crate) fn description_chars(d: &str) -> String {
    d.chars()
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            c if (' '..='~').contains(&c) => c,
            _ => '?',
        })
        .collect()
}

/// Headers every token-endpoint answer carries (RFC 6749 §5.1).
pub(crate) fn no_store(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    res
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        tracing::debug!(error = %self.code, description = %self.description, "oauth error answer");
        let mut res = json_response(self.status(), self.to_json());
        no_store(&mut res);
        if self.code == ErrorCode::InvalidClient {
            // RFC 6749 §5.2: a 401 names the authentication scheme the client may use.
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"oauth\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.get()));
        }
        res
    }
}
