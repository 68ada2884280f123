//! RFC 6749 §4.1.3: exchanging an authorization code, with PKCE (RFC 7636 §4.6).
//!
//! The code must belong to the client, be unexpired and unused, come with the
//! `redirect_uri` of its authorize request, and with the PKCE verifier of its challenge.
//! A code used twice fails with `invalid_grant` **and everything issued from it is
//! revoked** (RFC 6749 §4.1.2, RFC 9700 §4.2.4) — redeeming and revoking are ordered by
//! the store, so even a replay racing the first use cannot miss its tokens.

use super::{mint, response, Issue, TokenResponse};
use crate::crypto::token_checksum;
use crate::model::{Application, Timestamp};
use crate::provider::error::OAuthError;
use crate::provider::oidc::id_token::{IdTokenRequest, IdTokens};
use crate::provider::params::Params;
use crate::provider::pkce;
use crate::provider::users::UserAuthenticator;
use crate::scope::Scopes;
use crate::store::Store;

/// Exchanges the code of the request for tokens.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    store: &S,
    users: &U,
    minter: &super::Minter,
    id_tokens: Option<&IdTokens<'_>>,
    app: &Application,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let code = params.require("code")?;
    let redirect_uri = params.get("redirect_uri")?;
    let verifier = params.get("code_verifier")?;
    let invalid = || {
        OAuthError::invalid_grant("The authorization code is invalid, expired or was already used.")
    };
    let grant = store
        .find_grant(&token_checksum(code))
        .await?
        .ok_or_else(invalid)?;
    if grant.application_id != app.id {
        return Err(invalid());
    }
    let now = Timestamp::now();
    if grant.used_at.is_some() {
        return Err(replayed(store, grant.id, now).await);
    }
    if grant.expires.unix() <= now.unix() {
        return Err(invalid());
    }
    // §4.1.3: redirect_uri is required when the authorize request had one, and equal.
    if !grant.redirect_uri.is_empty() {
        match redirect_uri {
            None => {
                return Err(OAuthError::invalid_request(
                    "The redirect_uri parameter is missing.",
                ))
            }
            Some(r) if r != grant.redirect_uri => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri does not match the authorization request.",
                ))
            }
            Some(_) => {}
        }
    }
    match &grant.pkce {
        None => {
            if verifier.is_some() {
                // RFC 9700 §2.1.1: a verifier without a challenge is refused (PKCE
                // downgrade).
                return Err(OAuthError::invalid_grant(
                    "code_verifier sent, but the authorization request had no code_challenge.",
                ));
            }
        }
        Some(challenge) => {
            let verifier = verifier.ok_or_else(|| {
                OAuthError::invalid_request("The code_verifier parameter is missing (PKCE).")
            })?;
            if !pkce::verify(challenge.method, &challenge.challenge, verifier) {
                return Err(OAuthError::invalid_grant(
                    "The code_verifier does not match.",
                ));
            }
        }
    }
    let Some(mut user) = users.find_user(grant.user_id).await? else {
        // The user was deactivated or removed after approving.
        return Err(invalid());
    };
    let scope = Scopes::parse(&grant.scope).unwrap_or_default();
    let mut minted = mint(
        minter,
        Issue {
            app,
            user_id: Some(grant.user_id),
            scope: &scope,
            grant_id: Some(grant.id),
            with_refresh: true,
            family: None,
            values: None,
            now,
        },
    )?;
    // OIDC Core §3.1.3.3: an ID token when `openid` was granted.
    let mut id_token = None;
    if let Some(idt) = id_tokens.filter(|idt| idt.wanted(app, &scope)) {
        user.auth_time = grant.auth_time.or(user.auth_time);
        let (jwt, row) = idt
            .mint(IdTokenRequest {
                app,
                user: &user,
                scopes: &scope,
                nonce: Some(&grant.nonce),
                access_token: Some(&minted.access),
                code: None,
                issuer: &idt.issuer,
                now,
            })
            .await?;
        minted.tokens.id_token = Some(row);
        id_token = Some(jwt);
    }
    match store.redeem_grant(grant.id, now, minted.tokens).await? {
        Some(issued) => Ok(TokenResponse {
            id_token,
            ..response(minted.access, minted.refresh, &issued, now)
        }),
        // Another request used the code between our read and our write.
        None => Err(replayed(store, grant.id, now).await),
    }
}

async fn replayed<S: Store>(store: &S, grant_id: i64, now: Timestamp) -> OAuthError {
    match store.revoke_grant_tokens(grant_id, now).await {
        Ok(n) => tracing::warn!(
            grant_id,
            revoked_access_tokens = n,
            "authorization code replayed: tokens issued from it revoked"
        ),
        Err(e) => {
            tracing::error!(grant_id, error = %e, "authorization code replayed; revoking its tokens failed")
        }
    }
    OAuthError::invalid_grant("The authorization code is invalid, expired or was already used.")
}
