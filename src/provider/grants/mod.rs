//! The grants of the token endpoint, one module each, with no HTTP.
//!
//! Each grant is a **decision** plus its **effects**:
//!
//! - a pure `decide` function over what was read from the store, the request and `now`
//!   (no I/O, no clock), returning an enum of what to do — unit-tested branch by branch in
//!   each module;
//! - a thin async `grant` that does the reads the decision needs, calls `decide`, and
//!   performs the writes it decided on, returning the [`TokenResponse`] or the RFC 6749
//!   §5.2 error.
//!
//! The token endpoint parses `grant_type` once into a `GrantKind`, reads the clock once,
//! and hands every grant one `GrantContext`.

pub mod authorization_code;
pub mod client_credentials;
pub mod device_code;
pub mod password;
pub mod refresh_token;

use base64::Engine;
use serde::Serialize;

use super::error::OAuthError;
use super::oidc::id_token::IdTokens;
use super::params::Params;
use super::resources::{ResourcePolicy, Resources};
use crate::crypto::token_checksum;
use crate::model::{
    new_token_family, Application, GrantType, NewAccessToken, NewRefreshToken, Timestamp,
};
use crate::scope::{Scopes, ScopesBackend};
use crate::settings::Settings;
use crate::store::{IssueTokens, IssuedTokens};

/// A `grant_type` of the token endpoint (RFC 6749 §4, RFC 8628 §3.4), parsed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GrantKind {
    /// `authorization_code` (RFC 6749 §4.1.3).
    AuthorizationCode,
    /// `password` (RFC 6749 §4.3.2).
    Password,
    /// `client_credentials` (RFC 6749 §4.4.2).
    ClientCredentials,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken,
    /// `urn:ietf:params:oauth:grant-type:device_code` (RFC 8628 §3.4).
    DeviceCode,
}

impl GrantKind {
    /// The grant type of a `grant_type` value; `None` for one this crate does not know.
    pub(crate) fn parse(grant_type: &str) -> Option<GrantKind> {
        Some(match grant_type {
            "authorization_code" => GrantKind::AuthorizationCode,
            "password" => GrantKind::Password,
            "client_credentials" => GrantKind::ClientCredentials,
            "refresh_token" => GrantKind::RefreshToken,
            "urn:ietf:params:oauth:grant-type:device_code" => GrantKind::DeviceCode,
            _ => return None,
        })
    }

    /// The wire string.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            GrantKind::AuthorizationCode => "authorization_code",
            GrantKind::Password => "password",
            GrantKind::ClientCredentials => "client_credentials",
            GrantKind::RefreshToken => "refresh_token",
            GrantKind::DeviceCode => "urn:ietf:params:oauth:grant-type:device_code",
        }
    }
}

/// The grant types this server serves with `settings`, as the metadata documents
/// advertise them: the entries of `OAUTH2_GRANT_TYPES_SUPPORTED` that the token endpoint
/// (or, for `implicit`, the authorization endpoint) accepts — not `password` while
/// `COMPLIANT_BCP_RFC9700_PASSWORD_GRANT` is on, `implicit` only while an implicit
/// response type is enabled, nothing this crate does not know.
pub(crate) fn grant_types_enabled(settings: &Settings) -> Vec<&str> {
    use crate::provider::authorize::request::{response_types_enabled, ResponseType};
    let implicit = response_types_enabled(settings)
        .iter()
        .any(|rt| ResponseType::parse(rt).is_some_and(ResponseType::is_implicit));
    settings
        .oauth2_grant_types_supported
        .iter()
        .map(String::as_str)
        .filter(|g| match GrantKind::parse(g) {
            Some(GrantKind::Password) => !settings.compliant_bcp_rfc9700_password_grant,
            Some(_) => true,
            None => *g == "implicit" && implicit,
        })
        .collect()
}

/// `unsupported_grant_type` for a `grant_type` the token endpoint does not serve.
pub(crate) fn unsupported(grant_type: &str) -> OAuthError {
    OAuthError::new(
        super::error::ErrorCode::UnsupportedGrantType,
        format!("The grant type {grant_type:?} is not supported."),
    )
}

/// Everything a grant works with: the provider's parts, the authenticated client, the
/// request's parameters and the time of the request (read once, by the token endpoint).
pub(crate) struct GrantContext<'a, S, U> {
    pub(crate) store: &'a S,
    pub(crate) users: &'a U,
    pub(crate) minter: &'a Minter,
    pub(crate) scopes: &'a dyn ScopesBackend,
    /// ID tokens, when OIDC is on.
    pub(crate) id_tokens: Option<IdTokens<'a>>,
    /// Derives a refresh token's successors (grace-period retries).
    pub(crate) successor_key: &'a [u8; 32],
    /// The authenticated client.
    pub(crate) app: &'a Application,
    pub(crate) params: &'a Params,
    /// Failed sign-ins (the password grant).
    pub(crate) throttle: &'a crate::provider::throttle::Throttle,
    /// The client's address, when the server recorded it.
    pub(crate) client_addr: Option<std::net::IpAddr>,
    /// Which RFC 8707 resources a client may ask for.
    pub(crate) resource_policy: &'a dyn ResourcePolicy,
    /// The time of the request.
    pub(crate) now: Timestamp,
}

impl<S, U> GrantContext<'_, S, U> {
    /// The request's RFC 8707 `resource` values, checked.
    pub(crate) fn requested_resources(&self) -> Result<Resources, OAuthError> {
        Resources::requested(self.params, self.app, self.resource_policy)
    }
}

/// A successful token answer (RFC 6749 §5.1). `Debug` hides the token values.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token, for grants that get one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The granted scopes, space-separated.
    pub scope: String,
    /// The OIDC ID token, when one was issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("access_token", &"[redacted]")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "[redacted]"),
            )
            .field("scope", &self.scope)
            .field("id_token", &self.id_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// Whether `app` may use `grant` at the token endpoint: DOT's `GRANT_TYPE_MAPPING` (one
/// authorization grant type per application; refresh tokens for the grants that issue
/// them).
pub(crate) fn allows(app: &Application, grant: GrantKind) -> bool {
    use GrantType::*;
    let t = app.authorization_grant_type;
    match grant {
        GrantKind::AuthorizationCode => matches!(t, AuthorizationCode | OpenidHybrid),
        GrantKind::Password => t == Password,
        GrantKind::ClientCredentials => t == ClientCredentials,
        GrantKind::RefreshToken => matches!(
            t,
            AuthorizationCode | Password | ClientCredentials | OpenidHybrid | DeviceCode
        ),
        GrantKind::DeviceCode => t == DeviceCode,
    }
}

/// The scopes of a request: the requested ones (each must be available to the client),
/// or the client's default scopes when none were requested.
pub(crate) fn requested_scopes(
    scopes: &dyn ScopesBackend,
    app: &Application,
    params: &Params,
) -> Result<Scopes, OAuthError> {
    match params.get("scope")? {
        None => Ok(scopes.default_scopes(Some(&app.client_id))),
        Some(raw) => {
            let requested = Scopes::parse(raw)
                .map_err(|e| OAuthError::invalid_scope(format!("Malformed scope: {e}.")))?;
            check_available(scopes, app, &requested)?;
            Ok(requested)
        }
    }
}

pub(crate) fn check_available(
    scopes: &dyn ScopesBackend,
    app: &Application,
    requested: &Scopes,
) -> Result<(), OAuthError> {
    let available = scopes.available_scopes(Some(&app.client_id));
    if let Some(bad) = requested.iter().find(|s| !available.contains(s)) {
        return Err(OAuthError::invalid_scope(format!(
            "The scope {bad:?} is unknown or not available to this client."
        )));
    }
    Ok(())
}

/// New tokens to write, with their plaintext values (sent once, never stored).
pub(crate) struct Minted {
    pub(crate) access: String,
    pub(crate) refresh: Option<String>,
    pub(crate) tokens: IssueTokens,
}

/// What one issuance is for.
pub(crate) struct Issue<'a> {
    pub(crate) app: &'a Application,
    pub(crate) user_id: Option<i64>,
    pub(crate) scope: &'a Scopes,
    /// The access token's audience (RFC 8707).
    pub(crate) resources: &'a Resources,
    /// What the refresh token may get access tokens for (the whole set granted).
    pub(crate) refresh_resources: &'a Resources,
    pub(crate) grant_id: Option<i64>,
    pub(crate) with_refresh: bool,
    /// The family of a rotated refresh token (a new one otherwise).
    pub(crate) family: Option<String>,
    /// Fixed token values (grace-period successors); generated otherwise.
    pub(crate) values: Option<(String, String)>,
    pub(crate) now: Timestamp,
}

/// Makes token values: random opaque strings, or RFC 9068 JWTs when
/// `ACCESS_TOKEN_FORMAT = "jwt"`. Built once per provider.
pub(crate) struct Minter {
    pub(crate) settings: std::sync::Arc<Settings>,
    jwt: Option<JwtAccess>,
    generators: crate::generators::Generators,
}

/// What RFC 9068 access tokens need beyond the claims of one token.
pub(crate) struct JwtAccess {
    pub(crate) keys: std::sync::Arc<crate::provider::oidc::keys::SigningKeys>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
}

/// RFC 9068 §2.2 claims of a JWT access token.
#[derive(Serialize)]
struct AccessClaims<'a> {
    iss: &'a str,
    exp: i64,
    aud: Audience<'a>,
    sub: &'a str,
    client_id: &'a str,
    iat: i64,
    jti: &'a str,
    scope: &'a str,
}

/// What an access token's value is made of, besides its client and seed (the columns
/// of its row).
pub(crate) struct AccessFields<'a> {
    pub(crate) user_id: Option<i64>,
    pub(crate) scope: &'a str,
    /// RFC 8707 resources, space-separated.
    pub(crate) resource: &'a str,
    pub(crate) created: Timestamp,
    pub(crate) expires: Timestamp,
}

/// RFC 9068 `aud`: one string, or an array for several resources.
#[derive(Serialize)]
#[serde(untagged)]
enum Audience<'a> {
    One(&'a str),
    Many(Vec<&'a str>),
}

impl Minter {
    /// Opaque tokens only.
    pub(crate) fn opaque(settings: std::sync::Arc<Settings>) -> Minter {
        Minter {
            settings,
            jwt: None,
            generators: crate::generators::Generators::default(),
        }
    }

    /// JWT access tokens signed with `keys`.
    pub(crate) fn jwt(settings: std::sync::Arc<Settings>, jwt: JwtAccess) -> Minter {
        Minter {
            settings,
            jwt: Some(jwt),
            generators: crate::generators::Generators::default(),
        }
    }

    /// A new device-flow user code, as shown to the user.
    pub(crate) fn user_code(&self) -> String {
        self.generators.user_code()
    }

    /// The same minter with other token generators.
    pub(crate) fn with_generators(mut self, generators: crate::generators::Generators) -> Self {
        self.generators = generators;
        self
    }

    /// The value of an access token. `seed` is random for a new token; a JWT's `jti` is
    /// the seed, so equal inputs give the same JWT (RS256 signatures are deterministic):
    /// what grace-period retries rely on.
    pub(crate) fn access_value(
        &self,
        app: &Application,
        t: AccessFields<'_>,
        seed: String,
    ) -> Result<String, OAuthError> {
        if let Some(jwt) = &self.jwt {
            let user = t.user_id.map(|u| u.to_string());
            // The resources asked for (RFC 8707), else the configured default audience.
            let mut named = t.resource.split_ascii_whitespace();
            let aud = match (named.next(), named.next()) {
                (None, _) => Audience::One(&jwt.audience),
                (Some(one), None) => Audience::One(one),
                _ => Audience::Many(t.resource.split_ascii_whitespace().collect()),
            };
            let claims = AccessClaims {
                iss: &jwt.issuer,
                exp: t.expires.unix(),
                aud,
                // RFC 9068 §2.2: the client itself when there is no resource owner.
                sub: user.as_deref().unwrap_or(&app.client_id),
                client_id: &app.client_id,
                iat: t.created.unix(),
                jti: &seed,
                scope: t.scope,
            };
            return jwt.keys.sign("at+jwt", &claims).map_err(OAuthError::server);
        }
        Ok(seed)
    }
}

/// OIDC Core §3.1.3.3: an ID token for `user` when OpenID Connect is on and `openid` is in
/// `scope` (for a client with a signing algorithm), added to `minted`'s writes; returns
/// its JWT for the answer.
pub(crate) async fn id_token_for<S, U>(
    ctx: &GrantContext<'_, S, U>,
    scope: &Scopes,
    user: &crate::provider::users::AuthenticatedUser,
    nonce: Option<&str>,
    minted: &mut Minted,
) -> Result<Option<String>, OAuthError> {
    let Some(idt) = ctx
        .id_tokens
        .as_ref()
        .filter(|idt| idt.wanted(ctx.app, scope))
    else {
        return Ok(None);
    };
    let (jwt, row) = idt
        .mint(crate::provider::oidc::id_token::IdTokenRequest {
            app: ctx.app,
            user,
            scopes: scope,
            nonce,
            access_token: Some(&minted.access),
            code: None,
            issuer: &idt.issuer,
            now: ctx.now,
        })
        .await?;
    minted.tokens.id_token = Some(row);
    Ok(Some(jwt))
}

pub(crate) fn mint(minter: &Minter, issue: Issue<'_>) -> Result<Minted, OAuthError> {
    let settings = &*minter.settings;
    let (seed, refresh) = match issue.values {
        Some((a, r)) => (a, Some(r)),
        None => (
            minter.generators.access_token(),
            issue
                .with_refresh
                .then(|| minter.generators.refresh_token()),
        ),
    };
    let refresh = if issue.with_refresh { refresh } else { None };
    let expires = issue.now.plus(settings.access_token_expire_seconds);
    let scope = issue.scope.to_string();
    let resource = issue.resources.to_string();
    let fields = AccessFields {
        user_id: issue.user_id,
        scope: &scope,
        resource: &resource,
        created: issue.now,
        expires,
    };
    let access = minter.access_value(issue.app, fields, seed)?;
    let tokens = IssueTokens {
        access: NewAccessToken {
            token_checksum: token_checksum(&access),
            application_id: Some(issue.app.id),
            user_id: issue.user_id,
            source_refresh_token_id: None,
            id_token_id: None,
            grant_id: issue.grant_id,
            expires,
            scope,
            created: issue.now,
            resource,
        },
        refresh: refresh.as_ref().map(|r| NewRefreshToken {
            token_checksum: token_checksum(r),
            application_id: issue.app.id,
            user_id: issue.user_id,
            access_token_id: None,
            token_family: Some(issue.family.unwrap_or_else(new_token_family)),
            created: issue.now,
            resource: issue.refresh_resources.to_string(),
        }),
        id_token: None,
    };
    Ok(Minted {
        access,
        refresh,
        tokens,
    })
}

pub(crate) fn response(
    minted_access: String,
    minted_refresh: Option<String>,
    issued: &IssuedTokens,
    now: Timestamp,
) -> TokenResponse {
    TokenResponse {
        access_token: minted_access,
        token_type: "Bearer",
        expires_in: (issued.access.expires.unix() - now.unix()).max(0),
        refresh_token: minted_refresh,
        scope: issued.access.scope.clone(),
        id_token: None,
    }
}

/// A token value derived from a secret key and a seed: 43 URL-safe characters (256 bits).
pub(crate) fn derived_token(key: &[u8; 32], label: &str, seed: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(super::hmac(key, &[label.as_bytes(), seed.as_bytes()]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ClientType, NewApplication};

    const KINDS: [GrantKind; 5] = [
        GrantKind::AuthorizationCode,
        GrantKind::Password,
        GrantKind::ClientCredentials,
        GrantKind::RefreshToken,
        GrantKind::DeviceCode,
    ];

    #[test]
    fn grant_kinds_parse_from_their_wire_strings_only() {
        for kind in KINDS {
            assert_eq!(GrantKind::parse(kind.as_str()), Some(kind));
        }
        for other in ["implicit", "Password", "", "device_code", "refresh_token "] {
            assert_eq!(GrantKind::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn allows_follows_dots_grant_type_mapping() {
        use GrantKind as K;
        let app = |t| NewApplication::new("c", ClientType::Confidential, t).into_row(1);
        let allowed = |t| {
            let a = app(t);
            KINDS
                .into_iter()
                .filter(|k| allows(&a, *k))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            allowed(GrantType::AuthorizationCode),
            [K::AuthorizationCode, K::RefreshToken]
        );
        assert_eq!(
            allowed(GrantType::OpenidHybrid),
            [K::AuthorizationCode, K::RefreshToken]
        );
        assert_eq!(allowed(GrantType::Password), [K::Password, K::RefreshToken]);
        assert_eq!(
            allowed(GrantType::ClientCredentials),
            [K::ClientCredentials, K::RefreshToken]
        );
        assert_eq!(
            allowed(GrantType::DeviceCode),
            [K::RefreshToken, K::DeviceCode]
        );
        assert_eq!(allowed(GrantType::Implicit), []);
    }

    #[test]
    fn unsupported_names_the_grant_type() {
        let e = unsupported("implicit");
        assert_eq!(e.code, super::super::error::ErrorCode::UnsupportedGrantType);
        assert_eq!(
            e.description,
            "The grant type \"implicit\" is not supported."
        );
    }
}
