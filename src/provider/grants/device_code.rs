//! RFC 8628 §3.4–3.5: a device polls the token endpoint with its `device_code`.
//!
//! # The decision
//!
//! `decide` is a pure function of the stored device grant, the presenting client and
//! `now`. Its branches, in order:
//!
//! - another client's device code: `invalid_grant`, as for an unknown one (RFC 8628 §3.4:
//!   the code is bound to the client that asked for it);
//! - past its expiry (`now >= expires`, or the status `expired`): `expired_token`;
//! - denied by the user: `access_denied`;
//! - approved: `DeviceDecision::Redeem` — tokens for the user who approved it, with the
//!   scope of the device authorization request;
//! - still pending: `DeviceDecision::Pending`, and `pace` decides between
//!   `authorization_pending` and `slow_down` from the time of the previous poll.
//!
//! # Pacing
//!
//! Every poll of a pending grant records its time, atomically returning the previous
//! one. The device authorization counts as a poll one interval before it (the stored
//! `last_checked` starts there), so the first poll is never too soon — clients such as
//! the `oauth2` crate poll once right away. A poll that comes sooner than the grant's
//! interval after the previous one is `slow_down`, and the grant's
//! interval grows by `SLOW_DOWN_STEP` (5) seconds for this and every later poll (§3.5);
//! the answer names the new interval in `interval` and `Retry-After`. Django OAuth
//! Toolkit never answers `slow_down`.
//!
//! # Redemption
//!
//! A device code is single-use. The tokens are written in the same transaction that
//! deletes the approved grant ([`Store::redeem_device_grant`]): of two polls racing after
//! the approval, exactly one deletes it and gets tokens; the other finds nothing to
//! redeem and gets `invalid_grant`, like any later poll. An access and a refresh token
//! are issued, and an ID token when `openid` was granted and OpenID Connect is on (as
//! for the authorization code grant).

use super::{id_token_for, mint, response, GrantContext, Issue, TokenResponse};
use crate::crypto::token_checksum;
use crate::model::{DeviceGrant, DeviceGrantStatus, Timestamp};
use crate::provider::error::{ErrorCode, OAuthError};
use crate::provider::users::UserAuthenticator;
use crate::scope::Scopes;
use crate::store::Store;

/// Seconds added to a grant's interval by each `slow_down` (RFC 8628 §3.5).
pub(crate) const SLOW_DOWN_STEP: i64 = 5;

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("The device code is invalid, expired or was already used.")
}

/// What to do with a polled device grant. See the [module docs](self).
#[derive(Debug, PartialEq)]
pub(crate) enum DeviceDecision {
    /// Approved by the user `user_id`: issue tokens of `scope` and redeem the grant.
    Redeem { user_id: i64, scope: Scopes },
    /// Neither approved nor denied yet: record the poll, then [`pace`].
    Pending,
    /// Refuse with this error, writing nothing.
    Refuse(OAuthError),
}

/// The decision for a poll by the client `client_id` at `now`.
pub(crate) fn decide(grant: &DeviceGrant, client_id: &str, now: Timestamp) -> DeviceDecision {
    if grant.client_id != client_id {
        return DeviceDecision::Refuse(invalid());
    }
    if now >= grant.expires || grant.status == DeviceGrantStatus::Expired {
        return DeviceDecision::Refuse(OAuthError::new(
            ErrorCode::ExpiredToken,
            "The device code has expired; start a new device authorization.",
        ));
    }
    match (grant.status, grant.user_id) {
        (DeviceGrantStatus::Denied, _) => DeviceDecision::Refuse(OAuthError::new(
            ErrorCode::AccessDenied,
            "The user denied the authorization request.",
        )),
        (DeviceGrantStatus::Authorized, Some(user_id)) => DeviceDecision::Redeem {
            user_id,
            scope: Scopes::parse(&grant.scope).unwrap_or_default(),
        },
        // Approved without a user cannot happen through the verification page; refuse it
        // rather than issue tokens for nobody.
        (DeviceGrantStatus::Authorized, None) => DeviceDecision::Refuse(invalid()),
        (DeviceGrantStatus::AuthorizationPending | DeviceGrantStatus::Expired, _) => {
            DeviceDecision::Pending
        }
    }
}

/// The answer to a pending poll at `now`, the previous poll having been at `previous`:
/// `Ok(())` for `authorization_pending`, `Err(())` for `slow_down` (polled sooner than
/// `interval` seconds after the previous one).
pub(crate) fn pace(previous: Timestamp, interval: i64, now: Timestamp) -> Result<(), ()> {
    if now.unix() - previous.unix() < interval {
        Err(())
    } else {
        Ok(())
    }
}

fn pending() -> OAuthError {
    OAuthError::new(
        ErrorCode::AuthorizationPending,
        "The user has not approved the device yet; poll again after the interval.",
    )
}

fn slow_down(interval: i64) -> OAuthError {
    let seconds = u64::try_from(interval).unwrap_or(1);
    OAuthError::new(
        ErrorCode::SlowDown,
        format!("The device polls too often: poll at most every {seconds} s."),
    )
    .with_retry_after(seconds)
}

/// Answers one poll of the device code in the request.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    ctx: &GrantContext<'_, S, U>,
) -> Result<TokenResponse, OAuthError> {
    let (store, app, now) = (ctx.store, ctx.app, ctx.now);
    let code = ctx.params.require("device_code")?;
    // RFC 8707 at the token request (the device authorization request names none).
    let resources = ctx.requested_resources()?;
    let grant = store
        .find_device_grant(&token_checksum(code))
        .await?
        .ok_or_else(invalid)?;
    let (user_id, scope) = match decide(&grant, &app.client_id, now) {
        DeviceDecision::Refuse(e) => return Err(e),
        DeviceDecision::Redeem { user_id, scope } => (user_id, scope),
        DeviceDecision::Pending => {
            // Redeemed (deleted) between our read and this write: like any later poll.
            let previous = store
                .touch_device_grant(grant.id, now)
                .await?
                .ok_or_else(invalid)?;
            return Err(match pace(previous, grant.interval, now) {
                Ok(()) => pending(),
                Err(()) => match store
                    .slow_down_device_grant(grant.id, SLOW_DOWN_STEP)
                    .await?
                {
                    Some(interval) => slow_down(interval),
                    None => invalid(),
                },
            });
        }
    };
    let Some(user) = ctx.users.find_user(user_id).await? else {
        // The user was deactivated or removed after approving.
        return Err(invalid());
    };
    let mut minted = mint(
        ctx.minter,
        Issue {
            app,
            user_id: Some(user_id),
            scope: &scope,
            resources: &resources,
            refresh_resources: &resources,
            grant_id: None,
            with_refresh: true,
            family: None,
            values: None,
            now,
        },
    )?;
    let id_token = id_token_for(ctx, &scope, &user, None, &mut minted).await?;
    match store.redeem_device_grant(grant.id, minted.tokens).await? {
        Some(issued) => {
            tracing::debug!(device_grant_id = grant.id, "device code redeemed");
            Ok(TokenResponse {
                id_token,
                ..response(minted.access, minted.refresh, &issued, now)
            })
        }
        // Another poll redeemed it between our read and our write.
        None => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    //! The decision and the pacing, branch by branch: rows built by hand, explicit
    //! times, no store.

    use super::*;
    use crate::model::NewDeviceGrant;

    const NOW: Timestamp = Timestamp(1_800_000_000);

    fn grant(status: DeviceGrantStatus, user_id: Option<i64>) -> DeviceGrant {
        DeviceGrant {
            id: 1,
            user_id,
            device_code_checksum: "d".into(),
            user_code_checksum: "u".into(),
            scope: "read write".into(),
            interval: 5,
            expires: Timestamp(NOW.0 + 600),
            status,
            client_id: "tv".into(),
            last_checked: Timestamp(NOW.0 - 10),
            created: Timestamp(NOW.0 - 10),
        }
    }

    fn refused(d: DeviceDecision) -> ErrorCode {
        match d {
            DeviceDecision::Refuse(e) => e.code,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn another_clients_code_is_unknown() {
        let g = grant(DeviceGrantStatus::Authorized, Some(3));
        assert_eq!(refused(decide(&g, "other", NOW)), ErrorCode::InvalidGrant);
    }

    #[test]
    fn an_expired_code_is_expired_token_whatever_its_status() {
        for status in DeviceGrantStatus::ALL {
            let mut g = grant(*status, Some(3));
            g.expires = NOW;
            assert_eq!(refused(decide(&g, "tv", NOW)), ErrorCode::ExpiredToken);
        }
        let g = grant(DeviceGrantStatus::Expired, None);
        assert_eq!(refused(decide(&g, "tv", NOW)), ErrorCode::ExpiredToken);
    }

    #[test]
    fn denied_is_access_denied() {
        let g = grant(DeviceGrantStatus::Denied, Some(3));
        assert_eq!(refused(decide(&g, "tv", NOW)), ErrorCode::AccessDenied);
    }

    #[test]
    fn approved_redeems_for_the_approving_user_with_the_requested_scope() {
        let g = grant(DeviceGrantStatus::Authorized, Some(3));
        assert_eq!(
            decide(&g, "tv", NOW),
            DeviceDecision::Redeem {
                user_id: 3,
                scope: Scopes::parse("read write").unwrap()
            }
        );
        let nobody = grant(DeviceGrantStatus::Authorized, None);
        assert_eq!(refused(decide(&nobody, "tv", NOW)), ErrorCode::InvalidGrant);
    }

    #[test]
    fn pending_waits_for_the_user() {
        let g = grant(DeviceGrantStatus::AuthorizationPending, None);
        assert_eq!(decide(&g, "tv", NOW), DeviceDecision::Pending);
    }

    #[test]
    fn polling_sooner_than_the_interval_is_slow_down() {
        assert_eq!(pace(Timestamp(NOW.0 - 5), 5, NOW), Ok(()));
        assert_eq!(pace(Timestamp(NOW.0 - 60), 5, NOW), Ok(()));
        assert_eq!(pace(Timestamp(NOW.0 - 4), 5, NOW), Err(()));
        assert_eq!(pace(NOW, 5, NOW), Err(()));
        // After a slow_down the grown interval counts.
        assert_eq!(pace(Timestamp(NOW.0 - 7), 10, NOW), Err(()));
    }

    #[test]
    fn the_first_poll_is_never_too_soon() {
        // A new grant's last poll is one interval before its creation.
        let g = NewDeviceGrant {
            device_code_checksum: "d".into(),
            user_code_checksum: "u".into(),
            scope: String::new(),
            interval: 5,
            expires: Timestamp(NOW.0 + 600),
            client_id: "tv".into(),
            created: NOW,
        }
        .into_row(1);
        assert_eq!(pace(g.last_checked, g.interval, NOW), Ok(()));
    }

    #[test]
    fn slow_down_names_the_new_interval() {
        let e = slow_down(10);
        assert_eq!(e.code, ErrorCode::SlowDown);
        assert_eq!(e.retry_after.map(|s| s.get()), Some(10));
        let body: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(body["interval"], 10);
        assert_eq!(body["error"], "slow_down");
    }
}
