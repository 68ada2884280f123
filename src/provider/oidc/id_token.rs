//! OpenID Connect ID tokens (OIDC Core §2, §3.1.3.6, §3.2.2.10, §3.3.2.11) and the claims
//! about the user that go into them and into userinfo.
//!
//! An ID token is issued when `OIDC_ENABLED` is on, the granted scopes contain `openid`,
//! and the application has an algorithm: RS256 signs with `OIDC_RSA_PRIVATE_KEY` (its
//! `kid` the RFC 7638 thumbprint), HS256 with the application's client secret, which must
//! then be stored unhashed (DOT's rule). Claims: `iss`, `sub` (the user id), `aud` (the
//! client id), `exp` (`ID_TOKEN_EXPIRE_SECONDS`), `iat`, `auth_time`, `nonce` when the
//! authorization request had one, `at_hash` / `c_hash` when an access token / a code is
//! issued alongside (left half of the SHA-256 of its value, base64url), `jti`, and the
//! [`ClaimsProvider`]'s claims for the granted scopes. Each ID token is stored (as an
//! `IdToken` row by `jti`) so that logout and cleanup can find it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::model::{Algorithm, Application, NewIdToken, Timestamp, User};
use crate::provider::error::OAuthError;
use crate::provider::users::AuthenticatedUser;
use crate::scope::Scopes;
use crate::settings::Settings;
use crate::store::{Store, StoreError};

/// A boxed future of claims.
pub type ClaimsFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Map<String, Value>, StoreError>> + Send + 'a>>;

/// The claims about a user for the granted scopes (OIDC Core §5.4): DOT's
/// `get_additional_claims` / `oidc_claim_scope`. The host implements it for its users;
/// [`StandardClaims`] is the built-in one. `sub` is always the user id and is set by the
/// provider, not by this trait.
pub trait ClaimsProvider: Send + Sync + 'static {
    /// The claims of `user_id` for `scopes` (e.g. `profile` → `preferred_username`,
    /// `email` → `email`). Claims of scopes not granted must be left out.
    fn claims<'a>(&'a self, user_id: i64, scopes: &'a Scopes) -> ClaimsFuture<'a>;
}

/// The claims the built-in user table can give: `preferred_username` for `profile`,
/// `email` for `email` (when the user has one).
pub struct StandardClaims<S> {
    store: Arc<S>,
}

impl<S> StandardClaims<S> {
    /// Claims from `store`'s users.
    pub fn new(store: Arc<S>) -> Self {
        StandardClaims { store }
    }
}

/// The standard claims of a stored user for `scopes`.
pub fn standard_claims(user: &User, scopes: &Scopes) -> Map<String, Value> {
    let mut m = Map::new();
    if scopes.contains("profile") {
        m.insert("preferred_username".into(), user.username.clone().into());
    }
    if scopes.contains("email") && !user.email.is_empty() {
        m.insert("email".into(), user.email.clone().into());
    }
    m
}

impl<S: Store> ClaimsProvider for StandardClaims<S> {
    fn claims<'a>(&'a self, user_id: i64, scopes: &'a Scopes) -> ClaimsFuture<'a> {
        Box::pin(async move {
            Ok(match self.store.find_user(user_id).await? {
                Some(user) => standard_claims(&user, scopes),
                None => Map::new(),
            })
        })
    }
}

/// `at_hash` / `c_hash` (OIDC Core §3.3.2.11): base64url of the left half of the SHA-256
/// of the ASCII value (RS256 and HS256 both hash with SHA-256).
pub fn half_hash(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// Everything one ID token is made of.
pub(crate) struct IdTokenRequest<'a> {
    pub(crate) app: &'a Application,
    pub(crate) user: &'a AuthenticatedUser,
    pub(crate) scopes: &'a Scopes,
    pub(crate) nonce: Option<&'a str>,
    pub(crate) access_token: Option<&'a str>,
    pub(crate) code: Option<&'a str>,
    pub(crate) issuer: &'a str,
    pub(crate) now: Timestamp,
}

/// What a grant needs to add ID tokens: present when OIDC is on.
pub(crate) struct IdTokens<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) oidc: &'a super::Oidc,
    pub(crate) claims: &'a dyn ClaimsProvider,
    pub(crate) issuer: String,
}

impl IdTokens<'_> {
    /// Whether an ID token goes with a grant of `scopes` to `app`.
    pub(crate) fn wanted(&self, app: &Application, scopes: &Scopes) -> bool {
        scopes.contains("openid") && app.algorithm != Algorithm::NoAlgorithm
    }

    /// Signs an ID token; returns it and the row to store.
    pub(crate) async fn mint(
        &self,
        req: IdTokenRequest<'_>,
    ) -> Result<(String, NewIdToken), OAuthError> {
        let exp = req.now.plus(self.settings.id_token_expire_seconds);
        let jti = uuid::Uuid::new_v4().to_string();
        let mut claims = self.claims.claims(req.user.id, req.scopes).await?;
        // The provider's claims win over any the host returned with the same names.
        let mut set = |k: &str, v: Value| {
            claims.insert(k.to_owned(), v);
        };
        set("iss", req.issuer.into());
        set("sub", req.user.id.to_string().into());
        set("aud", req.app.client_id.clone().into());
        set("exp", exp.unix().into());
        set("iat", req.now.unix().into());
        set("jti", jti.clone().into());
        if let Some(t) = req.user.auth_time {
            set("auth_time", t.unix().into());
        }
        if let Some(n) = req.nonce.filter(|n| !n.is_empty()) {
            set("nonce", n.into());
        }
        if let Some(at) = req.access_token {
            set("at_hash", half_hash(at).into());
        }
        if let Some(code) = req.code {
            set("c_hash", half_hash(code).into());
        }
        let jwt = sign(self.oidc, req.app, &Value::Object(claims))?;
        Ok((
            jwt,
            NewIdToken {
                user_id: Some(req.user.id),
                jti,
                application_id: Some(req.app.id),
                expires: exp,
                scope: req.scopes.to_string(),
                created: req.now,
            },
        ))
    }
}

/// Signs `claims` as the application's algorithm says.
pub(crate) fn sign(
    oidc: &super::Oidc,
    app: &Application,
    claims: &Value,
) -> Result<String, OAuthError> {
    match app.algorithm {
        Algorithm::Rs256 => {
            let keys = oidc.keys.as_ref().ok_or_else(|| {
                OAuthError::server("RS256 ID token requested but OIDC_RSA_PRIVATE_KEY is empty")
            })?;
            keys.sign("JWT", claims).map_err(OAuthError::server)
        }
        Algorithm::Hs256 => {
            if app.hash_client_secret || crate::hashers::is_hashed(&app.client_secret) {
                return Err(OAuthError::server(
                    "HS256 ID tokens need the client secret unhashed (--no-hash-client-secret)",
                ));
            }
            let header = jsonwebtoken::Header {
                typ: Some("JWT".into()),
                ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
            };
            jsonwebtoken::encode(
                &header,
                claims,
                &jsonwebtoken::EncodingKey::from_secret(app.client_secret.as_bytes()),
            )
            .map_err(OAuthError::server)
        }
        Algorithm::NoAlgorithm => Err(OAuthError::server(
            "ID token requested for an application without an algorithm",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_of_oidc_core_example() {
        // OIDC Core A.3: access_token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y" has
        // at_hash "77QmUPtjPfzWtF2AnpK9RQ".
        assert_eq!(
            half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // OIDC Core A.4: code "Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"
        // has c_hash "LDktKdoQak3Pk0cnXxCltA".
        assert_eq!(
            half_hash("Qcb0Orv1zh30vL1MPRsbm-diHiMwcLyZvn1arpZv-Jxf_11jnpEX3Tgfvk"),
            "LDktKdoQak3Pk0cnXxCltA"
        );
    }
}
