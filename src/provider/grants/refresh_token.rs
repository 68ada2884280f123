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
//!
//! # The decision
//!
//! `decide` is a pure function of the presented token's row, its paired access token
//! (read when `paired_to_read` asks for it), the client, the requested scope, the
//! `RefreshPolicy` and `now`. Its branches, in order:
//!
//! - another client's token: `RefreshDecision::Invalid`;
//! - a revoked token: `RefreshDecision::Revoked`, itself
//!   - `Revoked::GraceRetry` within the grace window (`revoked + grace >= now`): answer
//!     the successor pair again if it is still the live one (`grace_answer`);
//!   - `Revoked::ReuseDetected` outside it, with reuse protection, for a token of a
//!     family: revoke the family, `invalid_grant`;
//!   - `Revoked::Refused` otherwise: `invalid_grant`;
//! - idle past REFRESH_TOKEN_EXPIRE_SECONDS (`created + idle <= now`): `Invalid`;
//! - live, but its access token is gone: `RefreshDecision::Reread` — a concurrent
//!   rotation may have revoked it between the two reads; `after_race` decides on the
//!   token read again (revoked: as above; still live: `invalid_grant`);
//! - a requested scope wider than the token's: `Invalid` (`invalid_scope`);
//! - otherwise `RefreshDecision::Rotate` (with rotation) or `RefreshDecision::Replace`
//!   (without), with the scope, grant and family of the successors.
//!
//! # The effects
//!
//! `grant` reads the token (and its access token), decides, then for a renewal reads the
//! user (gone: `invalid_grant`), mints, and writes with one store call:
//! `rotate_refresh_token` or `replace_access_token`. A rotation that conflicts lost the
//! race to another refresh: the token is read again and `after_race` decides (revoked:
//! the revoked-token path; still live: the conflict was the database's, nothing was
//! written, `temporarily_unavailable`). A replacement that conflicts is `invalid_grant`.

use std::time::Duration;

use super::{derived_token, mint, GrantContext, Issue, TokenResponse};
use crate::crypto::{constant_time_eq, token_checksum};
use crate::model::{AccessToken, RefreshToken, Timestamp};
use crate::provider::error::{ErrorCode, OAuthError};
use crate::provider::oidc::id_token::IdTokenRequest;
use crate::provider::params::Params;
use crate::provider::resources::Resources;
use crate::provider::users::UserAuthenticator;
use crate::scope::Scopes;
use crate::settings::Settings;
use crate::store::{Store, StoreError};

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("The refresh token is invalid, expired or revoked.")
}

/// The settings the refresh decision depends on.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RefreshPolicy {
    /// ROTATE_REFRESH_TOKEN.
    pub(crate) rotate: bool,
    /// REFRESH_TOKEN_EXPIRE_SECONDS.
    pub(crate) idle: Option<Duration>,
    /// REFRESH_TOKEN_GRACE_PERIOD_SECONDS (zero: none).
    pub(crate) grace: Duration,
    /// REFRESH_TOKEN_REUSE_PROTECTION.
    pub(crate) reuse_protection: bool,
}

impl RefreshPolicy {
    pub(crate) fn from_settings(s: &Settings) -> RefreshPolicy {
        RefreshPolicy {
            rotate: s.rotate_refresh_token,
            idle: s.refresh_token_expire_seconds,
            grace: s.refresh_token_grace_period_seconds,
            reuse_protection: s.refresh_token_reuse_protection,
        }
    }
}

/// What [`decide`] looks at.
pub(crate) struct RefreshInputs<'a> {
    /// The presented token.
    pub(crate) token: &'a RefreshToken,
    /// Its access token, as read when [`paired_to_read`] asked for it (`None`: the token
    /// has none, or it is gone).
    pub(crate) paired: Option<&'a AccessToken>,
    /// The authenticated client.
    pub(crate) app_id: i64,
    /// The request's `scope`, parsed.
    pub(crate) requested: Option<&'a Scopes>,
    pub(crate) policy: RefreshPolicy,
    /// The time of the request.
    pub(crate) now: Timestamp,
}

/// The successors of a renewed token.
#[derive(Debug, PartialEq)]
pub(crate) struct Renewal {
    /// Their scope: the requested one, or the token's.
    pub(crate) scope: Scopes,
    /// The authorization code the token descends from.
    pub(crate) grant_id: Option<i64>,
    /// The family of the new refresh token.
    pub(crate) family: Option<String>,
    /// Successor values derived from the presented token (grace-period retries), rather
    /// than random.
    pub(crate) derived: bool,
}

/// What to do with a presented refresh token. See the [module docs](self).
#[derive(Debug, PartialEq)]
pub(crate) enum RefreshDecision {
    /// New access and refresh tokens; the presented one is revoked.
    Rotate(Renewal),
    /// A new access token; the presented refresh token stays.
    Replace(Renewal),
    /// Live, but its access token is gone: read the token again and see [`after_race`].
    Reread,
    /// The token is revoked.
    Revoked(Revoked),
    /// Refuse, writing nothing.
    Invalid(OAuthError),
}

/// What to do with a revoked refresh token.
#[derive(Debug, PartialEq)]
pub(crate) enum Revoked {
    /// Within the grace window: answer the successor pair again, if still live.
    GraceRetry,
    /// Reused after rotation: revoke `family`; `invalid_grant`.
    ReuseDetected { family: String },
    /// `invalid_grant`, writing nothing.
    Refused,
}

/// How a token came to be read a second time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Race {
    /// [`RefreshDecision::Reread`]: the live token's access token was gone.
    PairedGone,
    /// `rotate_refresh_token` answered a conflict.
    LostRotation,
}

/// The presented token alone: `Ok` with the id of its access token for a live token of
/// this client, the decision otherwise.
fn presented(
    token: &RefreshToken,
    app_id: i64,
    policy: &RefreshPolicy,
    now: Timestamp,
) -> Result<Option<i64>, RefreshDecision> {
    if token.application_id != app_id {
        return Err(RefreshDecision::Invalid(invalid()));
    }
    if token.revoked.is_some() {
        return Err(RefreshDecision::Revoked(revoked(token, policy, now)));
    }
    if let Some(idle) = policy.idle {
        if token.created.plus(idle).unix() <= now.unix() {
            return Err(RefreshDecision::Invalid(invalid()));
        }
    }
    Ok(token.access_token_id)
}

/// The access token [`decide`] needs read: that of a live token of this client.
pub(crate) fn paired_to_read(
    token: &RefreshToken,
    app_id: i64,
    policy: &RefreshPolicy,
    now: Timestamp,
) -> Option<i64> {
    presented(token, app_id, policy, now).ok().flatten()
}

/// Decides on a presented refresh token. See the [module docs](self).
pub(crate) fn decide(i: &RefreshInputs<'_>) -> RefreshDecision {
    if let Err(decision) = presented(i.token, i.app_id, &i.policy, i.now) {
        return decision;
    }
    let Some(original) = i.paired else {
        return RefreshDecision::Reread;
    };
    let original_scope = Scopes::parse(&original.scope).unwrap_or_default();
    let scope = match i.requested {
        None => original_scope,
        Some(r) if r.is_subset(&original_scope) => r.clone(),
        Some(_) => {
            return RefreshDecision::Invalid(OAuthError::invalid_scope(
                "The requested scope exceeds the scope of the refresh token.",
            ))
        }
    };
    let renewal = Renewal {
        scope,
        grant_id: original.grant_id,
        family: i.token.token_family.clone(),
        // Derived successors only with rotation: without it, every refresh would derive
        // the same access token from the same refresh token.
        derived: i.policy.rotate && !i.policy.grace.is_zero(),
    };
    if i.policy.rotate {
        RefreshDecision::Rotate(renewal)
    } else {
        RefreshDecision::Replace(renewal)
    }
}

/// A revoked token: the grace-period retry, reuse, or a plain refusal.
fn revoked(token: &RefreshToken, policy: &RefreshPolicy, now: Timestamp) -> Revoked {
    let revoked_at = token.revoked.unwrap_or(now);
    if !policy.grace.is_zero() && revoked_at.plus(policy.grace).unix() >= now.unix() {
        return Revoked::GraceRetry;
    }
    match &token.token_family {
        Some(family) if policy.reuse_protection => Revoked::ReuseDetected {
            family: family.clone(),
        },
        _ => Revoked::Refused,
    }
}

/// Decides on a token read again after a race (see [`Race`]): revoked meanwhile, the
/// revoked-token decision; still live, the error to answer.
pub(crate) fn after_race(
    again: &RefreshToken,
    race: Race,
    policy: &RefreshPolicy,
    now: Timestamp,
) -> Result<Revoked, OAuthError> {
    if again.revoked.is_some() {
        return Ok(revoked(again, policy, now));
    }
    Err(match race {
        Race::PairedGone => invalid(),
        // The conflict was a database one (deadlock, serialization), not a lost race.
        // Nothing was written; the client may retry.
        Race::LostRotation => OAuthError::new(
            ErrorCode::TemporarilyUnavailable,
            "The refresh could not be completed; try again.",
        ),
    })
}

/// The answer to a grace-period retry: the successor pair, when the stored successors are
/// still the ones derived from the presented token (`access_value`, `refresh_value`), the
/// refresh token unrevoked and the access token unexpired.
pub(crate) fn grace_answer(
    access: &AccessToken,
    refresh: Option<&RefreshToken>,
    access_value: String,
    refresh_value: String,
    now: Timestamp,
) -> Result<TokenResponse, OAuthError> {
    let refresh_matches = refresh.is_some_and(|s| {
        s.revoked.is_none()
            && constant_time_eq(
                s.token_checksum.as_bytes(),
                token_checksum(&refresh_value).as_bytes(),
            )
    });
    if refresh_matches
        && constant_time_eq(
            access.token_checksum.as_bytes(),
            token_checksum(&access_value).as_bytes(),
        )
        && !access.is_expired(now)
    {
        return Ok(TokenResponse {
            access_token: access_value,
            token_type: "Bearer",
            expires_in: (access.expires.unix() - now.unix()).max(0),
            refresh_token: Some(refresh_value),
            scope: access.scope.clone(),
            id_token: None,
        });
    }
    Err(invalid())
}

fn requested_scope(params: &Params) -> Result<Option<Scopes>, OAuthError> {
    params
        .get("scope")?
        .map(|s| {
            Scopes::parse(s)
                .map_err(|e| OAuthError::invalid_scope(format!("Malformed scope: {e}.")))
        })
        .transpose()
}

async fn find<S: Store>(store: &S, presented: &str) -> Result<RefreshToken, OAuthError> {
    store
        .find_refresh_token(&token_checksum(presented))
        .await?
        .ok_or_else(invalid)
}

/// Refreshes with the token of the request.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    ctx: &GrantContext<'_, S, U>,
) -> Result<TokenResponse, OAuthError> {
    let presented = ctx.params.require("refresh_token")?;
    let requested = requested_scope(ctx.params)?;
    let resources = ctx.requested_resources()?;
    let policy = RefreshPolicy::from_settings(&ctx.minter.settings);
    let rt = find(ctx.store, presented).await?;
    let paired = match paired_to_read(&rt, ctx.app.id, &policy, ctx.now) {
        Some(id) => ctx.store.find_access_token_by_id(id).await?,
        None => None,
    };
    let decision = decide(&RefreshInputs {
        token: &rt,
        paired: paired.as_ref(),
        app_id: ctx.app.id,
        requested: requested.as_ref(),
        policy,
        now: ctx.now,
    });
    match decision {
        RefreshDecision::Rotate(r) => renew(ctx, &policy, &rt, presented, r, resources, true).await,
        RefreshDecision::Replace(r) => {
            renew(ctx, &policy, &rt, presented, r, resources, false).await
        }
        RefreshDecision::Reread => {
            let again = find(ctx.store, presented).await?;
            let decision = after_race(&again, Race::PairedGone, &policy, ctx.now)?;
            on_revoked(ctx, &again, presented, decision).await
        }
        RefreshDecision::Revoked(decision) => on_revoked(ctx, &rt, presented, decision).await,
        RefreshDecision::Invalid(e) => Err(e),
    }
}

/// The effects of [`RefreshDecision::Rotate`] (`rotate`) and [`RefreshDecision::Replace`].
async fn renew<S: Store, U: UserAuthenticator>(
    ctx: &GrantContext<'_, S, U>,
    policy: &RefreshPolicy,
    rt: &RefreshToken,
    presented: &str,
    renewal: Renewal,
    requested_resources: Resources,
    rotate: bool,
) -> Result<TokenResponse, OAuthError> {
    let (store, app, now) = (ctx.store, ctx.app, ctx.now);
    // RFC 8707 §2.2: this access token may be for fewer resources than the refresh token
    // is; the successor refresh token keeps the whole set.
    let granted = Resources::from_stored(&rt.resource);
    let resources = requested_resources.narrow(&granted)?;
    let user = match rt.user_id {
        Some(uid) => match ctx.users.find_user(uid).await? {
            Some(u) => Some(u),
            // Deactivated or removed since: no new tokens.
            None => return Err(invalid()),
        },
        None => None,
    };
    let scope = &renewal.scope;
    let values = renewal
        .derived
        .then(|| successor_values(ctx.successor_key, presented));
    let mut minted = mint(
        ctx.minter,
        Issue {
            app,
            user_id: rt.user_id,
            scope,
            resources: &resources,
            refresh_resources: &granted,
            grant_id: renewal.grant_id,
            with_refresh: rotate,
            family: renewal.family,
            values,
            now,
        },
    )?;
    // OIDC Core §12.2: a new ID token when `openid` is among the scopes (with rotation,
    // which stores it with the new pair).
    let mut id_token = None;
    let idt = ctx
        .id_tokens
        .as_ref()
        .filter(|idt| rotate && idt.wanted(app, scope));
    if let (Some(idt), Some(user)) = (idt, &user) {
        let (jwt, row) = idt
            .mint(IdTokenRequest {
                app,
                user,
                scopes: scope,
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
            // Lost a race with another refresh of the same token (it is revoked now), or
            // a database conflict: the token read again tells.
            let again = find(store, presented).await?;
            let decision = after_race(&again, Race::LostRotation, policy, now)?;
            on_revoked(ctx, &again, presented, decision).await
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

/// The effects of a [`Revoked`] decision on the revoked token `rt`.
async fn on_revoked<S: Store, U>(
    ctx: &GrantContext<'_, S, U>,
    rt: &RefreshToken,
    presented: &str,
    decision: Revoked,
) -> Result<TokenResponse, OAuthError> {
    match decision {
        Revoked::GraceRetry => {
            let Some((access, refresh)) = ctx.store.find_successor(rt.id).await? else {
                return Err(invalid());
            };
            let (seed, r) = successor_values(ctx.successor_key, presented);
            // The successor's value again: the derived seed, or the JWT made from it and
            // the stored row (same claims, same deterministic signature).
            let fields = super::AccessFields {
                user_id: access.user_id,
                scope: &access.scope,
                resource: &access.resource,
                created: access.created,
                expires: access.expires,
            };
            let a = ctx.minter.access_value(ctx.app, fields, seed)?;
            grace_answer(&access, refresh.as_ref(), a, r, ctx.now)
        }
        Revoked::ReuseDetected { family } => {
            let n = ctx
                .store
                .revoke_refresh_token_family(&family, ctx.now)
                .await?;
            tracing::warn!(
                refresh_token_id = rt.id,
                revoked = n,
                "revoked refresh token reused: its family is revoked"
            );
            Err(invalid())
        }
        Revoked::Refused => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    //! The refresh decision, branch by branch: rows built by hand, explicit times, no
    //! store and no runtime.

    use super::*;

    const APP: i64 = 7;
    const NOW: Timestamp = Timestamp(1_800_000_000);

    fn policy() -> RefreshPolicy {
        RefreshPolicy {
            rotate: true,
            idle: None,
            grace: Duration::ZERO,
            reuse_protection: false,
        }
    }

    fn token() -> RefreshToken {
        RefreshToken {
            resource: String::new(),
            id: 1,
            user_id: Some(3),
            token_checksum: token_checksum("presented"),
            application_id: APP,
            access_token_id: Some(10),
            token_family: Some("family-1".into()),
            created: NOW.sub_secs(600),
            revoked: None,
        }
    }

    fn access(scope: &str) -> AccessToken {
        AccessToken {
            resource: String::new(),
            id: 10,
            user_id: Some(3),
            source_refresh_token_id: None,
            token_checksum: token_checksum("access"),
            id_token_id: None,
            application_id: Some(APP),
            grant_id: Some(42),
            expires: NOW.add_secs(3600),
            scope: scope.into(),
            created: NOW,
        }
    }

    fn scopes(s: &str) -> Scopes {
        Scopes::parse(s).unwrap()
    }

    fn decide_with(
        token: &RefreshToken,
        paired: Option<&AccessToken>,
        requested: Option<&Scopes>,
        policy: RefreshPolicy,
        now: Timestamp,
    ) -> RefreshDecision {
        decide(&RefreshInputs {
            token,
            paired,
            app_id: APP,
            requested,
            policy,
            now,
        })
    }

    fn revoked_at(at: Timestamp) -> RefreshToken {
        RefreshToken {
            revoked: Some(at),
            access_token_id: None,
            ..token()
        }
    }

    #[test]
    fn rotates_a_live_token_with_its_scope_grant_and_family() {
        let a = access("read write");
        let d = decide_with(&token(), Some(&a), None, policy(), NOW);
        assert_eq!(
            d,
            RefreshDecision::Rotate(Renewal {
                scope: scopes("read write"),
                grant_id: Some(42),
                family: Some("family-1".into()),
                derived: false,
            })
        );
    }

    #[test]
    fn rotation_with_a_grace_period_derives_the_successors() {
        let a = access("read");
        let p = RefreshPolicy {
            grace: Duration::from_secs(30),
            ..policy()
        };
        match decide_with(&token(), Some(&a), None, p, NOW) {
            RefreshDecision::Rotate(r) => assert!(r.derived),
            d => panic!("expected Rotate, got {d:?}"),
        }
    }

    #[test]
    fn without_rotation_replaces_the_access_token_never_derived() {
        let a = access("read");
        let p = RefreshPolicy {
            rotate: false,
            grace: Duration::from_secs(30),
            ..policy()
        };
        assert_eq!(
            decide_with(&token(), Some(&a), None, p, NOW),
            RefreshDecision::Replace(Renewal {
                scope: scopes("read"),
                grant_id: Some(42),
                family: Some("family-1".into()),
                derived: false,
            })
        );
    }

    #[test]
    fn a_narrowed_scope_is_granted() {
        let a = access("read write");
        let narrow = scopes("read");
        match decide_with(&token(), Some(&a), Some(&narrow), policy(), NOW) {
            RefreshDecision::Rotate(r) => assert_eq!(r.scope, narrow),
            d => panic!("expected Rotate, got {d:?}"),
        }
    }

    #[test]
    fn a_wider_scope_is_invalid_scope() {
        let a = access("read");
        let wide = scopes("read write");
        match decide_with(&token(), Some(&a), Some(&wide), policy(), NOW) {
            RefreshDecision::Invalid(e) => assert_eq!(e.code, ErrorCode::InvalidScope),
            d => panic!("expected Invalid, got {d:?}"),
        }
    }

    #[test]
    fn another_clients_token_is_invalid_even_revoked() {
        let a = access("read");
        let other = RefreshToken {
            application_id: APP + 1,
            ..token()
        };
        assert_eq!(
            decide_with(&other, Some(&a), None, policy(), NOW),
            RefreshDecision::Invalid(invalid())
        );
        let other_revoked = RefreshToken {
            application_id: APP + 1,
            ..revoked_at(NOW)
        };
        let p = RefreshPolicy {
            reuse_protection: true,
            ..policy()
        };
        // No reuse detection for a token presented by the wrong client.
        assert_eq!(
            decide_with(&other_revoked, None, None, p, NOW),
            RefreshDecision::Invalid(invalid())
        );
        assert_eq!(paired_to_read(&other, APP, &policy(), NOW), None);
    }

    #[test]
    fn idle_expiry_is_inclusive_of_its_last_second() {
        let a = access("read");
        let t = token(); // created NOW - 600
        let p = RefreshPolicy {
            idle: Some(Duration::from_secs(600)),
            ..policy()
        };
        assert_eq!(
            decide_with(&t, Some(&a), None, p, NOW),
            RefreshDecision::Invalid(invalid())
        );
        assert_eq!(paired_to_read(&t, APP, &p, NOW), None);
        assert!(matches!(
            decide_with(&t, Some(&a), None, p, NOW.sub_secs(1)),
            RefreshDecision::Rotate(_)
        ));
        assert_eq!(paired_to_read(&t, APP, &p, NOW.sub_secs(1)), Some(10));
    }

    #[test]
    fn without_idle_expiry_an_old_token_is_live() {
        let a = access("read");
        let old = RefreshToken {
            created: Timestamp(0),
            ..token()
        };
        assert!(matches!(
            decide_with(&old, Some(&a), None, policy(), NOW),
            RefreshDecision::Rotate(_)
        ));
    }

    #[test]
    fn the_paired_access_token_is_read_only_for_a_live_token() {
        assert_eq!(paired_to_read(&token(), APP, &policy(), NOW), Some(10));
        assert_eq!(paired_to_read(&revoked_at(NOW), APP, &policy(), NOW), None);
        let unpaired = RefreshToken {
            access_token_id: None,
            ..token()
        };
        assert_eq!(paired_to_read(&unpaired, APP, &policy(), NOW), None);
    }

    #[test]
    fn a_live_token_without_its_access_token_is_read_again() {
        assert_eq!(
            decide_with(&token(), None, None, policy(), NOW),
            RefreshDecision::Reread
        );
        let unpaired = RefreshToken {
            access_token_id: None,
            ..token()
        };
        assert_eq!(
            decide_with(&unpaired, None, None, policy(), NOW),
            RefreshDecision::Reread
        );
    }

    #[test]
    fn revoked_within_the_grace_window_is_a_retry_up_to_its_last_second() {
        let p = RefreshPolicy {
            grace: Duration::from_secs(30),
            reuse_protection: true,
            ..policy()
        };
        let t = revoked_at(NOW.sub_secs(30));
        assert_eq!(
            decide_with(&t, None, None, p, NOW),
            RefreshDecision::Revoked(Revoked::GraceRetry)
        );
        // One second later the window is over: reuse.
        assert_eq!(
            decide_with(&t, None, None, p, NOW.add_secs(1)),
            RefreshDecision::Revoked(Revoked::ReuseDetected {
                family: "family-1".into()
            })
        );
    }

    #[test]
    fn revoked_without_grace_with_reuse_protection_revokes_the_family() {
        let p = RefreshPolicy {
            reuse_protection: true,
            ..policy()
        };
        assert_eq!(
            decide_with(&revoked_at(NOW), None, None, p, NOW),
            RefreshDecision::Revoked(Revoked::ReuseDetected {
                family: "family-1".into()
            })
        );
    }

    #[test]
    fn revoked_without_a_family_is_refused_even_with_reuse_protection() {
        let p = RefreshPolicy {
            reuse_protection: true,
            ..policy()
        };
        let t = RefreshToken {
            token_family: None,
            ..revoked_at(NOW.sub_secs(100))
        };
        assert_eq!(
            decide_with(&t, None, None, p, NOW),
            RefreshDecision::Revoked(Revoked::Refused)
        );
    }

    #[test]
    fn revoked_without_reuse_protection_is_refused() {
        let p = RefreshPolicy {
            grace: Duration::from_secs(5),
            ..policy()
        };
        assert_eq!(
            decide_with(&revoked_at(NOW.sub_secs(100)), None, None, p, NOW),
            RefreshDecision::Revoked(Revoked::Refused)
        );
    }

    #[test]
    fn revoked_comes_before_idle_expiry() {
        // A rotated token inside the grace window is retried even when it is also past
        // REFRESH_TOKEN_EXPIRE_SECONDS.
        let p = RefreshPolicy {
            grace: Duration::from_secs(30),
            idle: Some(Duration::from_secs(1)),
            ..policy()
        };
        assert_eq!(
            decide_with(&revoked_at(NOW), None, None, p, NOW),
            RefreshDecision::Revoked(Revoked::GraceRetry)
        );
    }

    #[test]
    fn after_a_race_a_revoked_token_takes_the_revoked_path() {
        let p = RefreshPolicy {
            grace: Duration::from_secs(30),
            reuse_protection: true,
            ..policy()
        };
        for race in [Race::PairedGone, Race::LostRotation] {
            assert_eq!(
                after_race(&revoked_at(NOW), race, &p, NOW),
                Ok(Revoked::GraceRetry)
            );
            assert_eq!(
                after_race(&revoked_at(NOW.sub_secs(31)), race, &p, NOW),
                Ok(Revoked::ReuseDetected {
                    family: "family-1".into()
                })
            );
        }
    }

    #[test]
    fn after_a_race_a_live_token_is_invalid_or_retryable() {
        assert_eq!(
            after_race(&token(), Race::PairedGone, &policy(), NOW),
            Err(invalid())
        );
        let e = after_race(&token(), Race::LostRotation, &policy(), NOW).unwrap_err();
        assert_eq!(e.code, ErrorCode::TemporarilyUnavailable);
    }

    fn successor_refresh(value: &str) -> RefreshToken {
        RefreshToken {
            id: 2,
            token_checksum: token_checksum(value),
            access_token_id: Some(10),
            ..token()
        }
    }

    #[test]
    fn grace_answer_resends_the_live_successor_pair() {
        let a = access("read");
        let r = successor_refresh("refresh");
        let answer = grace_answer(
            &a,
            Some(&r),
            "access".into(),
            "refresh".into(),
            NOW.add_secs(60),
        )
        .unwrap();
        assert_eq!(answer.access_token, "access");
        assert_eq!(answer.refresh_token.as_deref(), Some("refresh"));
        assert_eq!(answer.expires_in, 3540);
        assert_eq!(answer.scope, "read");
        assert_eq!(answer.id_token, None);
    }

    #[test]
    fn grace_answer_refuses_successors_that_moved_on() {
        let a = access("read");
        let r = successor_refresh("refresh");
        let go = |a: &AccessToken, r: Option<&RefreshToken>, now| {
            grace_answer(a, r, "access".into(), "refresh".into(), now)
        };
        // No successor refresh token.
        assert_eq!(go(&a, None, NOW), Err(invalid()));
        // The successor was itself rotated or revoked.
        let gone = RefreshToken {
            revoked: Some(NOW),
            ..successor_refresh("refresh")
        };
        assert_eq!(go(&a, Some(&gone), NOW), Err(invalid()));
        // Values not derived from the presented token.
        let other = successor_refresh("other");
        assert_eq!(go(&a, Some(&other), NOW), Err(invalid()));
        let other_access = AccessToken {
            token_checksum: token_checksum("other"),
            ..access("read")
        };
        assert_eq!(go(&other_access, Some(&r), NOW), Err(invalid()));
        // The successor access token expired (expired once now >= expires).
        assert_eq!(go(&a, Some(&r), a.expires), Err(invalid()));
        assert!(go(&a, Some(&r), a.expires.sub_secs(1)).is_ok());
    }
}
