//! The authorization endpoint (RFC 6749 §3.1, §4.1.1–4.1.2, §4.2.1–4.2.2; OpenID Connect
//! Core 1.0 §3.1.2, §3.2.2, §3.3.2) and the built-in login page.
//!
//! # Routes
//! * `GET authorize/` checks the request, then sends a visitor who is not logged in to the
//!   login page, approves at once when no consent is needed, and otherwise shows the
//!   consent page (`authorize.html`).
//! * `POST authorize/` is the consent form: CSRF-checked, the whole request checked again
//!   from the posted fields (nothing in them is trusted beyond what `GET` would accept),
//!   then a button named `allow` approves and anything else denies (`access_denied`).
//! * `GET login/` shows the login form (`login.html`); `POST login/` checks the CSRF token
//!   and the credentials with [`UserAuthenticator::authenticate`], starts the session
//!   (see [`SESSION_COOKIE`]) and returns to `next`.
//!
//! # Response types
//! `response_type` is a set of space-separated values, compared without regard to order
//! (`id_token code` is `code id_token`):
//!
//! | response type | application grant type | answer, by default in |
//! |---|---|---|
//! | `code` | authorization-code, openid-hybrid | the query: `code` |
//! | `token` | implicit | the fragment: `access_token`, `token_type`, `expires_in`, `scope` |
//! | `id_token` | implicit | the fragment: `id_token` |
//! | `id_token token` | implicit | the fragment: the access token's fields and `id_token` |
//! | `code id_token` | openid-hybrid | the fragment: `code`, `id_token` |
//! | `code token` | openid-hybrid | the fragment: `code` and the access token's fields |
//! | `code id_token token` | openid-hybrid | the fragment: `code`, the access token's fields, `id_token` |
//!
//! The last five exist only with `OIDC_ENABLED` (otherwise they are
//! `unsupported_response_type`, answered in the query like any unknown type) and must be
//! listed in `OIDC_RESPONSE_TYPES_SUPPORTED`; `code` and `token` must be listed in
//! `OAUTH2_RESPONSE_TYPES_SUPPORTED`. `state` (and `iss`, below) are added to every answer.
//! `response_mode` is not implemented (as in DOT): answers always use the default mode
//! above, so tokens never go in a query.
//!
//! An ID token from this endpoint (OIDC Core §3.2.2.10, §3.3.2.11) carries the `nonce`
//! of the request, `c_hash` when a code comes with it, `at_hash` when an access token
//! does, `auth_time` from the login session, and the claims of
//! [`id_token`](crate::provider::oidc::id_token) for the granted scopes. When the code of a hybrid
//! answer is exchanged, the token endpoint issues another ID token, with the same `sub`
//! and `nonce`. The access token of a hybrid answer is linked to its code, so a replayed
//! code revokes it as well as what the code was exchanged for.
//!
//! # Checks, in order
//! 1. `client_id` and `redirect_uri` (missing, repeated, unknown client, a redirect URI
//!    that is not registered or whose scheme is not in `ALLOWED_REDIRECT_URI_SCHEMES`):
//!    the error page, status 400, and **never a redirect** (RFC 6749 §4.1.2.1).
//!    `redirect_uri` may be omitted when exactly one is registered; the code then
//!    remembers that it was omitted, so the token request need not send it (§4.1.3).
//! 2. Everything else is answered by redirecting to the redirect URI with `error`,
//!    `error_description` and `state` — in the query for `code`, in the fragment for the
//!    other response types: a repeated parameter or a missing `response_type`
//!    (`invalid_request`); an unknown response type, one not enabled (see above), or
//!    `token`, `id_token` and `id_token token` with `COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT`
//!    (`unsupported_response_type`); a response type the application's grant type does
//!    not allow (table above — `unauthorized_client`); an unknown or unavailable scope
//!    (`invalid_scope`); for response types with `id_token`: no `openid` scope
//!    (`invalid_scope`), an application without an ID-token algorithm
//!    (`unauthorized_client`), or no `nonce` (`invalid_request`, OIDC Core §3.2.2.1,
//!    §3.3.2.11; `code token` needs none); for response types with `code`, PKCE (RFC
//!    7636): a malformed `code_challenge`, an unknown `code_challenge_method` (default
//!    `plain`), `plain` with `COMPLIANT_BCP_RFC9700_PKCE_METHOD`, or no challenge when the
//!    application's `pkce_required` (else `PKCE_REQUIRED`) asks for one
//!    (`invalid_request`); a malformed `claims`, `prompt` or `max_age` (`invalid_request`).
//! 3. Who is asking: the host's [`UserAuthenticator::current_user`], else the provider's
//!    session cookie. Nobody: a redirect to `login/?next=…`.
//! 4. Consent: skipped when the application has `skip_authorization`, or when
//!    `REQUEST_APPROVAL_PROMPT` (or DOT's `approval_prompt` request parameter) is `auto`
//!    and the user holds a live access token for this application covering every
//!    requested scope.
//!
//! OpenID Connect's `prompt` and `max_age` (OIDC Core §3.1.2.1) are honoured:
//! * `prompt=none` never shows a page: without a session (or with one too old for
//!   `max_age`) it answers `login_required`; with a session and a consent that can be
//!   skipped (step 4) it answers at once with the normal successful response; otherwise
//!   `consent_required`.
//! * `prompt=login` asks for the password again; so does `max_age` when the session's
//!   login (`auth_time`) is more than `max_age` seconds old or of unknown age, and always
//!   for `max_age=0`. The login page then returns to the request without `prompt=login`
//!   and `max_age`, which the new login satisfies.
//! * `prompt=consent` shows the consent page even when it could be skipped.
//!
//! Approval issues, for a code, a 43-character random code (about 256 bits) stored only
//! as its SHA-256 checksum (with the `nonce`, `claims` and `auth_time` for the token
//! endpoint's ID token), valid `AUTHORIZATION_CODE_EXPIRE_SECONDS`; for a token, an
//! access token without refresh token (RFC 6749 §4.2.2). With
//! `COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS` every answer also carries `iss` (RFC 9207):
//! `OIDC_ISS_ENDPOINT`, else the provider's issuer URL
//! ([`ProviderBuilder::issuer`](crate::provider::ProviderBuilder::issuer)), else the server's URL
//! and mount path.
//!
//! Links between the pages are relative (`../login/`, `../authorize/`), so the endpoints
//! work under any prefix, including one a reverse proxy strips.
//!
//! Pages carry `Cache-Control: no-store`, `X-Frame-Options: DENY` and
//! `Content-Security-Policy: frame-ancestors 'none'` (RFC 6749 §10.13, clickjacking) and
//! `Referrer-Policy: no-referrer`.
//!
//! # Differences from DOT
//! * A redirect URI must equal a registered one exactly (RFC 9700 §4.1.3); DOT also
//!   accepts extra query parameters. The RFC 8252 §7.3 loopback rule (any port for
//!   `http://127.0.0.1` and `http://[::1]`, and `http://localhost` with
//!   `ALLOW_LOCALHOST_LOOPBACK`) and `ALLOW_URI_WILDCARDS` host wildcards (`*.example.com`)
//!   are kept; the rest of such a URI must still match exactly.
//! * Answers to a `POST` redirect with 303 See Other (RFC 9700 §4.12); DOT uses 302.
//! * The login page is built in (DOT relies on Django's); `next` may only lead to the
//!   provider's own pages (no open redirect).
//! * Every parameter may appear at most once (RFC 6749 §3.1), unknown ones included.
//! * Codes are stored as checksums only; DOT stores them in plaintext.
//! * `prompt=none` with a session and a consent answers silently (OIDC Core §3.1.2.1);
//!   DOT's validator does not implement silent authentication and fails there.
//!   `max_age` is honoured; DOT does not act on it.
//! * Response types are compared as sets (DOT compares the exact strings); openid-hybrid
//!   applications may also use plain `code` (DOT allows `code` only for
//!   authorization-code applications). Errors of the fragment response types go in the
//!   fragment; DOT always puts errors in the query.
//! * An ID-token response type needs the `openid` scope and an application with an
//!   algorithm (`invalid_scope`, `unauthorized_client`); DOT fails later, or issues no
//!   ID token.
//! * An ID token issued without an access token (`id_token`, `code id_token`) is not
//!   stored: the store writes ID tokens only together with the access token they belong
//!   to. DOT stores it. It is still a valid, signed ID token; it is just unknown to
//!   cleanup and logout.
//!
//! [`UserAuthenticator::authenticate`]: crate::provider::UserAuthenticator::authenticate
//! [`UserAuthenticator::current_user`]: crate::provider::UserAuthenticator::current_user
//!
//! # Files
//! * `authorize/request.rs`: reading and checking a request (no I/O); redirect URIs are
//!   matched in `provider/redirect_uri.rs`.
//! * `authorize/decide.rs`: the next step — log in, ask for consent, answer at once, or
//!   fail (no I/O).
//! * `authorize/issue.rs`: issuing what an approved request asked for (code, tokens, ID
//!   token).
//! * `authorize/locations.rs`: the URLs answers are sent to.
//! * `authorize/login.rs`: the login page.
//! * `authorize/handlers.rs`: the axum handlers of `authorize/`, which put the parts
//!   together.
//! * `provider/pages.rs`: HTML and response helpers shared with the logout pages.

pub(crate) mod decide;
pub(crate) mod handlers;
pub(crate) mod issue;
pub(crate) mod locations;
pub(crate) mod login;
pub(crate) mod request;
#[cfg(test)]
pub(crate) mod test_support;

pub(crate) use handlers::{authorize_get, authorize_post};
pub(crate) use locations::location;
pub(crate) use login::{login_get, login_post};
pub(crate) use request::Target;

pub use super::session::{CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, SESSION_LIFETIME};

/// Length of an authorization code: 43 characters of `[A-Za-z0-9]`, about 256 bits.
pub const CODE_LENGTH: usize = 43;

/// Form fields of the consent page that are not part of the authorization request.
const CONTROL_FIELDS: &[&str] = &[CSRF_FIELD, "allow", "deny"];
