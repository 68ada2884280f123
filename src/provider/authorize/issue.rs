//! Issuing what an approved request asked for: the code, the access token and the ID
//! token, written to the store before the answer is sent.

use http::request::Parts;

use super::decide::covered;
use super::locations::{error_location, location};
use super::request::AuthRequest;
use super::CODE_LENGTH;
use crate::crypto::token_checksum;
use crate::generators::{generate_token, UNICODE_ASCII_CHARACTER_SET};
use crate::model::{NewGrant, Timestamp};
use crate::provider::error::OAuthError;
use crate::provider::grants::{self, Issue};
use crate::provider::oidc::id_token::{IdTokenRequest, IdTokens};
use crate::provider::users::{AuthenticatedUser, UserAuthenticator};
use crate::provider::Provider;
use crate::settings::ApprovalPrompt;
use crate::store::Store;

/// Issues what an approved request asked for; the location to send the user to.
pub(crate) async fn approve<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    req: &AuthRequest,
    user: &AuthenticatedUser,
) -> String {
    match issue(p, parts, req, user).await {
        Ok(loc) => loc,
        Err(e) => error_location(&req.target, &e),
    }
}

/// Issues, in this order, the code (stored by checksum), the access token (stored, linked
/// to the code's grant in the hybrid flow so that a replayed code revokes it too) and the
/// ID token (with `nonce`, `c_hash` and `at_hash` of what goes with it, OIDC Core
/// §3.3.2.11); returns the redirect location with all of them.
async fn issue<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    parts: &Parts,
    req: &AuthRequest,
    user: &AuthenticatedUser,
) -> Result<String, OAuthError> {
    let inner = &p.inner;
    let settings = &inner.settings;
    let now = Timestamp::now();
    let rt = req.response_type;
    let mut answer: Vec<(&'static str, String)> = Vec::new();

    let mut code = None;
    let mut grant_id = None;
    if rt.code() {
        let value = generate_token(CODE_LENGTH, UNICODE_ASCII_CHARACTER_SET.as_bytes());
        let pkce = req.challenge.clone();
        let grant = inner
            .store
            .create_grant(NewGrant {
                user_id: user.id,
                code_checksum: token_checksum(&value),
                application_id: req.app.id,
                expires: now.plus(settings.authorization_code_expire_seconds),
                redirect_uri: if req.redirect_uri_sent {
                    req.target.redirect_uri.clone()
                } else {
                    String::new()
                },
                scope: req.scopes.to_string(),
                pkce,
                nonce: req.nonce.clone(),
                claims: req.claims.clone(),
                auth_time: user.auth_time,
                created: now,
                resource: req.resources.to_string(),
            })
            .await?;
        grant_id = Some(grant.id);
        answer.push(("code", value.clone()));
        code = Some(value);
    }

    let mut minted = if rt.token() {
        Some(grants::mint(
            &inner.minter,
            Issue {
                app: &req.app,
                user_id: Some(user.id),
                scope: &req.scopes,
                resources: &req.resources,
                refresh_resources: &req.resources,
                grant_id,
                with_refresh: false,
                family: None,
                values: None,
                now,
            },
        )?)
    } else {
        None
    };

    let mut id_token = None;
    if rt.id_token() {
        let oidc = inner.oidc.as_ref().ok_or_else(|| {
            // check_rest only accepts ID-token response types with OIDC_ENABLED.
            OAuthError::server("an ID token was requested with OIDC disabled")
        })?;
        let id_tokens = IdTokens {
            settings,
            oidc,
            claims: &*inner.claims,
            issuer: crate::provider::oidc::issuer(settings, inner.issuer.as_ref(), parts),
        };
        let (jwt, row) = id_tokens
            .mint(IdTokenRequest {
                app: &req.app,
                user,
                scopes: &req.scopes,
                nonce: Some(&req.nonce),
                access_token: minted.as_ref().map(|m| m.access.as_str()),
                code: code.as_deref(),
                issuer: &id_tokens.issuer,
                now,
            })
            .await?;
        match &mut minted {
            // Stored with the access token, which links to it.
            Some(m) => m.tokens.id_token = Some(row),
            // Issued alone (`id_token`, `code id_token`): stored on its own, so that
            // logout and cleanup know of it.
            None => {
                inner.store.create_id_token(row).await?;
            }
        }
        id_token = Some(jwt);
    }

    if let Some(m) = minted {
        let issued = inner.store.issue_tokens(m.tokens).await?;
        let r = grants::response(m.access, None, &issued, now);
        answer.push(("access_token", r.access_token));
        answer.push(("token_type", r.token_type.to_owned()));
        answer.push(("expires_in", r.expires_in.to_string()));
        answer.push(("scope", r.scope));
    }
    if let Some(jwt) = id_token {
        answer.push(("id_token", jwt));
    }
    let pairs: Vec<(&str, &str)> = answer.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Ok(location(&req.target, &pairs))
}

/// Whether a live token already covers the request (only looked up when it matters).
pub(crate) async fn already_approved<S: Store, U: UserAuthenticator>(
    p: &Provider<S, U>,
    req: &AuthRequest,
    user: &AuthenticatedUser,
) -> Result<bool, super::request::Rejection> {
    if req.approval != ApprovalPrompt::Auto || req.app.skip_authorization {
        return Ok(false);
    }
    let now = Timestamp::now();
    let tokens = p
        .inner
        .store
        .find_live_access_tokens(user.id, req.app.id, now)
        .await
        .map_err(super::request::Rejection::server)?;
    Ok(covered(&tokens, &req.scopes, &req.resources, now))
}
