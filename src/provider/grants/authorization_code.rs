//! RFC 6749 §4.1.3: exchanging an authorization code, with PKCE (RFC 7636 §4.6).
//!
//! The code must belong to the client, be unexpired and unused, come with the
//! `redirect_uri` of its authorize request, and with the PKCE verifier of its challenge.
//! A code used twice fails with `invalid_grant` **and everything issued from it is
//! revoked** (RFC 6749 §4.1.2, RFC 9700 §4.2.4) — redeeming and revoking are ordered by
//! the store, so even a replay racing the first use cannot miss its tokens.
//!
//! # The decision
//!
//! `decide` is a pure function of the stored code row, the presenting client, the
//! request's `redirect_uri` and `code_verifier`, and `now`. Its branches, in order:
//!
//! - another client's code: `invalid_grant`, as for an unknown code, and no revocation
//!   (another client cannot revoke this one's tokens) — but an unused code is burned;
//! - a used code: `CodeDecision::Replayed` — revoke what was issued from it, answer
//!   `invalid_grant`;
//! - an expired code (`now >= expires`): `CodeDecision::Invalid`, `invalid_grant`;
//! - the authorize request had a `redirect_uri`: missing now is `invalid_request`, a
//!   different one `invalid_grant`;
//! - PKCE: a verifier without a challenge is `invalid_grant` (RFC 9700 §2.1.1, downgrade),
//!   a challenge without a verifier `invalid_request`, a malformed verifier (RFC 7636 §4.1)
//!   `invalid_request`, a wrong verifier `invalid_grant`;
//! - otherwise `CodeDecision::Exchange` with the granted scope; the request's RFC 8707
//!   `resource` values must then be within those authorized (`invalid_target`, and the
//!   code is burned, otherwise).
//!
//! Every refusal of a live, unused code is `CodeDecision::Burn`: the code is marked used
//! before the error is sent, so one code allows one attempt. Whoever presents a code with
//! the wrong verifier, client or redirect URI holds a code that is not theirs (or is
//! broken); without the burn, a stolen code's PKCE verifier or a client's secret could be
//! guessed against it for its whole lifetime. The rightful client, presenting it later,
//! gets `invalid_grant` and starts a new authorization — nothing was issued, so the replay
//! revocation that follows finds nothing to revoke.
//!
//! # The effects
//!
//! `grant` reads the code, decides, reads the user (deactivated or removed since:
//! `invalid_grant`), mints the tokens (and the ID token with `openid`) and redeems the code
//! with them in one store call. A redeem that finds the code used — a concurrent exchange
//! between our read and our write — is the replay case.

use super::{id_token_for, mint, response, GrantContext, Issue, TokenResponse};
use crate::crypto::token_checksum;
use crate::model::{Grant, Timestamp};
use crate::provider::error::OAuthError;
use crate::provider::pkce;
use crate::provider::resources::Resources;
use crate::provider::users::UserAuthenticator;
use crate::scope::Scopes;
use crate::store::Store;

fn invalid() -> OAuthError {
    OAuthError::invalid_grant("The authorization code is invalid, expired or was already used.")
}

/// What [`decide`] looks at.
pub(crate) struct CodeInputs<'a> {
    /// The stored code.
    pub(crate) grant: &'a Grant,
    /// The authenticated client.
    pub(crate) app_id: i64,
    /// The request's `redirect_uri`.
    pub(crate) redirect_uri: Option<&'a str>,
    /// The request's `code_verifier`.
    pub(crate) verifier: Option<&'a str>,
    /// The time of the request.
    pub(crate) now: Timestamp,
}

/// What to do with a presented code. See the [module docs](self).
#[derive(Debug, PartialEq)]
pub(crate) enum CodeDecision {
    /// Issue tokens of `scope` and redeem the code.
    Exchange { scope: Scopes },
    /// The code was already used: revoke everything issued from it; `invalid_grant`.
    Replayed,
    /// Refuse, writing nothing.
    Invalid(OAuthError),
    /// Refuse, and mark the code used first: one failed redemption burns it.
    Burn(OAuthError),
}

/// Decides on a presented code. See the [module docs](self).
pub(crate) fn decide(i: &CodeInputs<'_>) -> CodeDecision {
    let grant = i.grant;
    if grant.application_id != i.app_id {
        return match grant.used_at {
            Some(_) => CodeDecision::Invalid(invalid()),
            None => CodeDecision::Burn(invalid()),
        };
    }
    if grant.used_at.is_some() {
        return CodeDecision::Replayed;
    }
    if grant.expires.unix() <= i.now.unix() {
        return CodeDecision::Invalid(invalid());
    }
    // From here on the code is live and unused: any refusal burns it.
    let refuse = CodeDecision::Burn;
    // §4.1.3: redirect_uri is required when the authorize request had one, and equal.
    if !grant.redirect_uri.is_empty() {
        match i.redirect_uri {
            None => {
                return refuse(OAuthError::invalid_request(
                    "The redirect_uri parameter is missing.",
                ))
            }
            Some(r) if r != grant.redirect_uri => {
                return refuse(OAuthError::invalid_grant(
                    "redirect_uri does not match the authorization request.",
                ))
            }
            Some(_) => {}
        }
    }
    match (&grant.pkce, i.verifier) {
        (None, None) => {}
        // RFC 9700 §2.1.1: a verifier without a challenge is refused (PKCE downgrade).
        (None, Some(_)) => {
            return refuse(OAuthError::invalid_grant(
                "code_verifier sent, but the authorization request had no code_challenge.",
            ))
        }
        (Some(_), None) => {
            return refuse(OAuthError::invalid_request(
                "The code_verifier parameter is missing (PKCE).",
            ))
        }
        // RFC 7636 §4.1: not a verifier at all is a malformed request, not a mismatch.
        (Some(_), Some(verifier)) if !pkce::is_valid_verifier(verifier) => {
            return refuse(OAuthError::invalid_request(
                "Malformed code_verifier: 43 to 128 characters of A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1).",
            ))
        }
        (Some(challenge), Some(verifier)) => {
            if !pkce::verify(challenge.method, &challenge.challenge, verifier) {
                return refuse(OAuthError::invalid_grant(
                    "The code_verifier does not match.",
                ));
            }
        }
    }
    CodeDecision::Exchange {
        scope: Scopes::parse(&grant.scope).unwrap_or_default(),
    }
}

/// Exchanges the code of the request for tokens.
pub(crate) async fn grant<S: Store, U: UserAuthenticator>(
    ctx: &GrantContext<'_, S, U>,
) -> Result<TokenResponse, OAuthError> {
    let (store, app, now) = (ctx.store, ctx.app, ctx.now);
    let code = ctx.params.require("code")?;
    let redirect_uri = ctx.params.get("redirect_uri")?;
    let verifier = ctx.params.get("code_verifier")?;
    let grant = store
        .find_grant(&token_checksum(code))
        .await?
        .ok_or_else(invalid)?;
    let decision = decide(&CodeInputs {
        grant: &grant,
        app_id: app.id,
        redirect_uri,
        verifier,
        now,
    });
    let scope = match decision {
        CodeDecision::Exchange { scope } => scope,
        CodeDecision::Replayed => return Err(replayed(store, grant.id, now).await),
        CodeDecision::Invalid(e) => return Err(e),
        CodeDecision::Burn(e) => return Err(burn(store, &grant, now, e).await),
    };
    // RFC 8707 §2.2: the token request may narrow the resources the user authorized; a
    // refusal burns the code like the others.
    let granted = Resources::from_stored(&grant.resource);
    let resources = match ctx.requested_resources().and_then(|r| r.narrow(&granted)) {
        Ok(r) => r,
        Err(e) => return Err(burn(store, &grant, now, e).await),
    };
    // The refresh token keeps the whole set authorized (or, for a code authorized for
    // none, the ones this request named).
    let refresh_resources = if granted.is_empty() {
        resources.clone()
    } else {
        granted
    };
    let Some(mut user) = ctx.users.find_user(grant.user_id).await? else {
        // The user was deactivated or removed after approving.
        return Err(invalid());
    };
    let mut minted = mint(
        ctx.minter,
        Issue {
            app,
            user_id: Some(grant.user_id),
            scope: &scope,
            resources: &resources,
            refresh_resources: &refresh_resources,
            grant_id: Some(grant.id),
            with_refresh: true,
            family: None,
            values: None,
            now,
        },
    )?;
    // OIDC Core §3.1.3.3: an ID token when `openid` was granted.
    user.auth_time = grant.auth_time.or(user.auth_time);
    let id_token = id_token_for(ctx, &scope, &user, Some(&grant.nonce), &mut minted).await?;
    match store.redeem_grant(grant.id, now, minted.tokens).await? {
        Some(issued) => Ok(TokenResponse {
            id_token,
            ..response(minted.access, minted.refresh, &issued, now)
        }),
        // Another request used the code between our read and our write.
        None => Err(replayed(store, grant.id, now).await),
    }
}

/// The effect of a failed redemption: the code is marked used (committed) before `error`
/// is answered. A store that cannot write makes the answer its error (503 when
/// unavailable) rather than a refusal that would leave the code open to another attempt.
async fn burn<S: Store>(store: &S, grant: &Grant, now: Timestamp, error: OAuthError) -> OAuthError {
    match store.mark_grant_used(grant.id, now).await {
        Ok(_) => {
            tracing::debug!(grant_id = grant.id, "failed code redemption: code burned");
            error
        }
        Err(e) => e.into(),
    }
}

/// The effect of a replay: everything issued from the code is revoked.
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
    invalid()
}

#[cfg(test)]
mod tests {
    //! The code decision, branch by branch: rows built by hand, explicit times, no store
    //! and no runtime.

    use super::*;
    use crate::model::{CodeChallengeMethod, PkceChallenge};
    use crate::provider::error::ErrorCode;

    const APP: i64 = 7;
    const NOW: Timestamp = Timestamp(1_800_000_000);
    const REDIRECT: &str = "https://client.example/cb";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn code() -> Grant {
        Grant {
            resource: String::new(),
            id: 1,
            user_id: 3,
            code_checksum: token_checksum("code"),
            application_id: APP,
            expires: NOW.add_secs(60),
            redirect_uri: REDIRECT.into(),
            scope: "openid read".into(),
            pkce: Some(PkceChallenge {
                challenge: pkce::s256(VERIFIER),
                method: CodeChallengeMethod::S256,
            }),
            nonce: String::new(),
            claims: String::new(),
            auth_time: None,
            created: NOW.sub_secs(240),
            used_at: None,
        }
    }

    fn decide_with(
        grant: &Grant,
        app_id: i64,
        redirect_uri: Option<&str>,
        verifier: Option<&str>,
        now: Timestamp,
    ) -> CodeDecision {
        decide(&CodeInputs {
            grant,
            app_id,
            redirect_uri,
            verifier,
            now,
        })
    }

    /// The error of a refusal that burns the code.
    fn error(d: CodeDecision) -> OAuthError {
        match d {
            CodeDecision::Burn(e) => e,
            d => panic!("expected Burn, got {d:?}"),
        }
    }

    #[test]
    fn a_good_code_is_exchanged_for_its_scope() {
        assert_eq!(
            decide_with(&code(), APP, Some(REDIRECT), Some(VERIFIER), NOW),
            CodeDecision::Exchange {
                scope: Scopes::parse("openid read").unwrap()
            }
        );
    }

    #[test]
    fn another_clients_code_is_invalid_burned_and_revokes_nothing() {
        assert_eq!(
            decide_with(&code(), APP + 1, Some(REDIRECT), Some(VERIFIER), NOW),
            CodeDecision::Burn(invalid())
        );
        // Not even a used one: another client cannot trigger the replay revocation.
        let used = Grant {
            used_at: Some(NOW.sub_secs(1)),
            ..code()
        };
        assert_eq!(
            decide_with(&used, APP + 1, Some(REDIRECT), Some(VERIFIER), NOW),
            CodeDecision::Invalid(invalid())
        );
    }

    #[test]
    fn a_used_code_is_a_replay_even_expired_or_without_parameters() {
        let used = Grant {
            used_at: Some(NOW.sub_secs(10)),
            ..code()
        };
        assert_eq!(
            decide_with(&used, APP, Some(REDIRECT), Some(VERIFIER), NOW),
            CodeDecision::Replayed
        );
        assert_eq!(
            decide_with(&used, APP, None, None, NOW.add_secs(3600)),
            CodeDecision::Replayed
        );
    }

    #[test]
    fn a_code_expires_at_its_expiry() {
        let g = code();
        assert_eq!(
            decide_with(&g, APP, Some(REDIRECT), Some(VERIFIER), g.expires),
            CodeDecision::Invalid(invalid())
        );
        assert!(matches!(
            decide_with(
                &g,
                APP,
                Some(REDIRECT),
                Some(VERIFIER),
                g.expires.sub_secs(1)
            ),
            CodeDecision::Exchange { .. }
        ));
    }

    #[test]
    fn a_missing_redirect_uri_is_invalid_request() {
        let e = error(decide_with(&code(), APP, None, Some(VERIFIER), NOW));
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains("redirect_uri"), "{e}");
    }

    #[test]
    fn a_wrong_redirect_uri_is_invalid_grant() {
        let e = error(decide_with(
            &code(),
            APP,
            Some("https://client.example/cb2"),
            Some(VERIFIER),
            NOW,
        ));
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("redirect_uri"), "{e}");
    }

    #[test]
    fn without_a_redirect_uri_in_the_authorize_request_none_is_needed() {
        let g = Grant {
            redirect_uri: String::new(),
            ..code()
        };
        assert!(matches!(
            decide_with(&g, APP, None, Some(VERIFIER), NOW),
            CodeDecision::Exchange { .. }
        ));
    }

    #[test]
    fn a_wrong_verifier_is_invalid_grant() {
        let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXK";
        assert_eq!(
            error(decide_with(&code(), APP, Some(REDIRECT), Some(wrong), NOW)),
            OAuthError::invalid_grant("The code_verifier does not match.")
        );
    }

    #[test]
    fn a_malformed_verifier_is_invalid_request() {
        for malformed in [
            "short",
            "not a verifier but long enough to pass the length rule ok",
            &"x".repeat(129),
        ] {
            let e = error(decide_with(
                &code(),
                APP,
                Some(REDIRECT),
                Some(malformed),
                NOW,
            ));
            assert_eq!(
                e.code,
                crate::provider::error::ErrorCode::InvalidRequest,
                "{malformed}"
            );
            assert!(e.description.contains("Malformed code_verifier"), "{e}");
        }
    }

    #[test]
    fn a_missing_verifier_is_invalid_request() {
        let e = error(decide_with(&code(), APP, Some(REDIRECT), None, NOW));
        assert_eq!(e.code, ErrorCode::InvalidRequest);
        assert!(e.description.contains("code_verifier"), "{e}");
    }

    #[test]
    fn a_verifier_without_a_challenge_is_a_downgrade() {
        let g = Grant {
            pkce: None,
            ..code()
        };
        let e = error(decide_with(&g, APP, Some(REDIRECT), Some(VERIFIER), NOW));
        assert_eq!(e.code, ErrorCode::InvalidGrant);
        assert!(e.description.contains("no code_challenge"), "{e}");
        assert!(matches!(
            decide_with(&g, APP, Some(REDIRECT), None, NOW),
            CodeDecision::Exchange { .. }
        ));
    }

    #[test]
    fn a_plain_challenge_takes_the_verifier_itself() {
        let g = Grant {
            pkce: Some(PkceChallenge {
                challenge: VERIFIER.into(),
                method: CodeChallengeMethod::Plain,
            }),
            ..code()
        };
        assert!(matches!(
            decide_with(&g, APP, Some(REDIRECT), Some(VERIFIER), NOW),
            CodeDecision::Exchange { .. }
        ));
        let s256 = pkce::s256(VERIFIER);
        assert_eq!(
            error(decide_with(&g, APP, Some(REDIRECT), Some(&s256), NOW)).code,
            ErrorCode::InvalidGrant
        );
    }
}
