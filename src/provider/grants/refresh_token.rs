//! RFC 6749 §6: refreshing an access token, with DOT's rotation settings and RFC 9700
//! §4.14 reuse protection.
//!
//! - The refresh token must belong to the client and be live; REFRESH_TOKEN_EXPIRE_SECONDS
//!   bounds how long an unused one stays usable (checked when presented, whatever the
//!   cleanup schedule).
//! - The requested scope must be a subset of the token's; a narrowed scope sticks to the
//!   successors.
//! - ROTATE_REFRESH_TOKEN (default on) replaces the refresh token with a new one of the
//!   same family; off, only the access token is replaced.
//! - REFRESH_TOKEN_GRACE_PERIOD_SECONDS: presenting a just-rotated token again within
//!   the window answers the same successor pair. Successor values are derived from the
//!   presented token with the server key (HMAC-SHA-256), so they can be re-sent without
//!   being stored.
//! - REFRESH_TOKEN_REUSE_PROTECTION: presenting a rotated token outside the grace window
//!   revokes the whole family (an attacker and the client both held it).
//!
//! Two concurrent refreshes with one token: the store lets exactly one rotate; the other
//! takes the revoked-token path above: the same pair inside a grace period, otherwise
//! `invalid_grant` — and, with reuse protection on, the revocation of the family, the
//! winner's new pair included (a double submit then logs the user out; a grace period of
//! a few seconds avoids that, as RFC 9700 §4.14.2 suggests).
//!
//! A token whose user was deactivated or removed is refused.

use super::{derived_token, mint, Issue, TokenResponse};
use crate::crypto::{constant_time_eq, token_checksum};
use crate::model::{Application, RefreshToken, Timestamp};
use crate::provider::error::OAuthError;
use crate::provider::oidc::id_token::{IdTokenRequest, IdTokens};
use crate::provider::params::Params;
use crate::provider::users::UserAuthenticator;
use crate::scope::Scopes;
use crate::store::{Store, StoreError};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.")
}

/// Refreshes with the token of the request.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    store: &S,
    users: &U,
    minter: &super::Minter,
    id_tokens: Option<&IdTokens<'_>>,
    successor_key: &[u8; 32],
    app: &Application,
    params: &Params,
) -> Result<TokenResponse, OAuthError> {
    let settings = &*minter.settings;
    let presented = params.require("refresh_token")?;
    let requested = params
        .get("scope")?
        .map(|s| {
            Scopes::parse(s)
                .map_err(|e| OAuthError::invalid_scope(format!("Malformed scope: {e}.")))
        })
        .transpose()?;
    let rt = store
        .find_refresh_token(&token_checksum(presented))
        .await?
        .ok_or_else(invalid)?;
    if rt.application_id != app.id {
        return Err(invalid());
    }
    let now = Timestamp::now();
    if rt.revoked.is_some() {
        return revoked(store, minter, app, successor_key, &rt, presented, now).await;
    }
    if let Some(idle) = settings.refresh_token_expire_seconds {
        if rt.created.plus(idle).unix() <= now.unix() {
            return Err(invalid());
        }
    }
    let original = match rt.access_token_id {
        Some(id) => store.find_access_token_by_id(id).await?,
        None => None,
    };
    let Some(original) = original else {
        // A concurrent refresh may have rotated the token (deleting its access token)
        // between our two reads: then it is the revoked-token case.
        let again = store
            .find_refresh_token(&token_checksum(presented))
            .await?
            .ok_or_else(invalid)?;
        if again.revoked.is_some() {
            return revoked(store, minter, app, successor_key, &again, presented, now).await;
        }
        return Err(invalid());
    };
    let original_scope = Scopes::parse(&original.scope).unwrap_or_default();
    let scope = match requested {
        None => original_scope,
        Some(r) if r.is_subset(&original_scope) => r,
        Some(_) => {
            return Err(OAuthError::invalid_scope(
                "The requested scope exceeds the scope of the refresh token.",
            ))
        }
    };
    let user = match rt.user_id {
        Some(uid) => match users.find_user(uid).await? {
            Some(u) => Some(u),
            // Deactivated or removed since: no new tokens.
            None => return Err(invalid()),
        },
        None => None,
    };
    let rotate = settings.rotate_refresh_token;
    // Derived successors only with rotation: without it, every refresh would derive the
    // same access token from the same refresh token.
    let grace = rotate && !settings.refresh_token_grace_period_seconds.is_zero();
    let values = grace.then(|| successor_values(successor_key, presented));
    let mut minted = mint(
        minter,
        Issue {
            app,
            user_id: rt.user_id,
            scope: &scope,
            grant_id: original.grant_id,
            with_refresh: rotate,
            family: rt.token_family.clone(),
            values,
            now,
        },
    )?;
    // OIDC Core §12.2: a new ID token when `openid` is among the scopes (with rotation,
    // which stores it with the new pair).
    let mut id_token = None;
    let idt = id_tokens.filter(|idt| rotate && idt.wanted(app, &scope));
    if let (Some(idt), Some(user)) = (idt, &user) {
        let (jwt, row) = idt
            .mint(IdTokenRequest {
                app,
                user,
                scopes: &scope,
                nonce: None,
                access_token: Some(&minted.access),
                code: None,
                issuer: &idt.issuer,
                now,
            })
            .await?;
        minted.tokens.id_token = Some(row);
        id_token = Some(jwt);
    }
    if !rotate {
        let access = store
            .replace_access_token(rt.id, minted.tokens.access)
            .await;
        return match access {
            Ok(access) => Ok(TokenResponse {
                access_token: minted.access,
                token_type: "Bearer",
                expires_in: (access.expires.unix() - now.unix()).max(0),
                // Without rotation the same refresh token stays in use (DOT).
                refresh_token: Some(presented.to_owned()),
                scope: access.scope,
                id_token: None,
            }),
            Err(StoreError::Conflict(_) | StoreError::NotFound(_)) => Err(invalid()),
            Err(e) => Err(e.into()),
        };
    }
    match store.rotate_refresh_token(rt.id, now, minted.tokens).await {
        Ok(issued) => Ok(TokenResponse {
            id_token,
            ..super::response(minted.access, minted.refresh, &issued, now)
        }),
        Err(StoreError::Conflict(_)) => {
            // Lost a race with another refresh of the same token: now it is revoked.
            let rt = store
                .find_refresh_token(&token_checksum(presented))
                .await?
                .ok_or_else(invalid)?;
            if rt.revoked.is_none() {
                // Still live: the conflict was a database one (deadlock, serialization),
                // not a lost race. Nothing was written; the client may retry.
                return Err(OAuthError::new(
                    crate::provider::error::ErrorCode::TemporarilyUnavailable,
                    "The refresh could not be completed; try again.",
                ));
            }
            revoked(store, minter, app, successor_key, &rt, presented, now).await
        }
        Err(e) => Err(e.into()),
    }
}

fn successor_values(key: &[u8; 32], presented: &str) -> (String, String) {
    (
        derived_token(key, "access", presented),
        derived_token(key, "refresh", presented),
    )
}

/// A revoked refresh token was presented: the grace-period retry, or reuse.
async fn revoked<S: Store>(
    store: &S,
    minter: &super::Minter,
    app: &Application,
    successor_key: &[u8; 32],
    rt: &RefreshToken,
    presented: &str,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let settings = &*minter.settings;
    let grace = settings.refresh_token_grace_period_seconds;
    let revoked_at = rt.revoked.unwrap_or(now);
    if !grace.is_zero() && revoked_at.plus(grace).unix() >= now.unix() {
        if let Some((access, refresh)) = store.find_successor(rt.id).await? {
            let (seed, r) = successor_values(successor_key, presented);
            // The successor's value again: the derived seed, or the JWT made from it and
            // the stored row (same claims, same deterministic signature).
            let a = minter.access_value(
                app,
                access.user_id,
                &access.scope,
                access.created,
                access.expires,
                seed,
            )?;
            let refresh_matches = refresh.as_ref().is_some_and(|s| {
                s.revoked.is_none()
                    && constant_time_eq(s.token_checksum.as_bytes(), token_checksum(&r).as_bytes())
            });
            if refresh_matches
                && constant_time_eq(
                    access.token_checksum.as_bytes(),
                    token_checksum(&a).as_bytes(),
                )
                && !access.is_expired(now)
            {
                return Ok(TokenResponse {
                    access_token: a,
                    token_type: "Bearer",
                    expires_in: (access.expires.unix() - now.unix()).max(0),
                    refresh_token: Some(r),
                    scope: access.scope,
                    id_token: None,
                });
            }
        }
        return Err(invalid());
    }
    if settings.refresh_token_reuse_protection {
        if let Some(family) = &rt.token_family {
            let n = store.revoke_refresh_token_family(family, now).await?;
            tracing::warn!(
                refresh_token_id = rt.id,
                revoked = n,
                "revoked refresh token reused: its family is revoked"
            );
        }
    }
    Err(invalid())
}
