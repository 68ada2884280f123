//! The next step of a checked request, given who is logged in, whether a consent is
//! already on record, and the time: log in, ask for consent, answer at once, or fail
//! (`login_required`, `consent_required`). No I/O.

use super::request::AuthRequest;
use crate::model::{AccessToken, Timestamp};
use crate::provider::error::ErrorCode;
use crate::provider::users::AuthenticatedUser;
use crate::scope::Scopes;

/// What to do with a checked request.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send the user to the login page.
    Login,
    /// Show the consent page.
    Consent,
    /// Approve without asking.
    Approve,
    /// Answer the client with this error.
    Fail(ErrorCode),
}

/// Whether consent may be skipped because a live token of the user already covers the
/// scopes (`REQUEST_APPROVAL_PROMPT = "auto"`).
pub(crate) fn covered(
    tokens: &[AccessToken],
    requested: &Scopes,
    resources: &crate::provider::resources::Resources,
    now: Timestamp,
) -> bool {
    use crate::provider::resources::Resources;
    tokens.iter().any(|t| {
        !t.is_expired(now)
            && Scopes::parse(&t.scope).is_ok_and(|granted| requested.is_subset(&granted))
            // RFC 8707: a consent for one API is not one for another, nor for a token
            // restricted to none.
            && if resources.is_empty() {
                t.resource.is_empty()
            } else {
                resources.within(&Resources::from_stored(&t.resource))
            }
    })
}

/// Whether the login of `auth_time` is too old for `max_age` (OIDC Core §3.1.2.1): older
/// than `max_age` seconds, or of unknown age. `max_age=0` always asks for a new login
/// (as `prompt=login` does).
pub(crate) fn login_too_old(
    max_age: Option<u64>,
    auth_time: Option<Timestamp>,
    now: Timestamp,
) -> bool {
    let Some(max_age) = max_age else {
        return false;
    };
    let Some(auth_time) = auth_time else {
        return true;
    };
    let age = now.unix().saturating_sub(auth_time.unix());
    max_age == 0 || age > i64::try_from(max_age).unwrap_or(i64::MAX)
}

/// The next step for `req` given who is logged in, whether consent was already given,
/// and the time.
pub(crate) fn next_step(
    req: &AuthRequest,
    user: Option<&AuthenticatedUser>,
    already_approved: bool,
    now: Timestamp,
) -> Step {
    let log_in = match user {
        None => true,
        Some(u) => req.prompt.login || login_too_old(req.max_age, u.auth_time, now),
    };
    if log_in {
        return if req.prompt.none {
            Step::Fail(ErrorCode::LoginRequired)
        } else {
            Step::Login
        };
    }
    if req.prompt.consent {
        return Step::Consent;
    }
    if req.app.skip_authorization || already_approved {
        return Step::Approve;
    }
    if req.prompt.none {
        return Step::Fail(ErrorCode::ConsentRequired);
    }
    Step::Consent
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::GrantType;
    use crate::provider::authorize::request::{parse_max_age, Prompt};
    use crate::provider::authorize::test_support::*;
    use crate::settings::Settings;

    #[test]
    fn steps() {
        let s = Settings::default();
        let now = Timestamp::now();
        let mut req = check(
            &s,
            app(GrantType::Implicit, "https://c.example/cb"),
            "response_type=token",
        )
        .unwrap();
        let alice = AuthenticatedUser {
            id: 1,
            username: "alice".into(),
            auth_time: Some(now.sub_secs(600)),
        };
        let user = Some(&alice);
        assert_eq!(next_step(&req, None, false, now), Step::Login);
        assert_eq!(next_step(&req, user, false, now), Step::Consent);
        assert_eq!(next_step(&req, user, true, now), Step::Approve);
        req.app.skip_authorization = true;
        assert_eq!(next_step(&req, user, false, now), Step::Approve);
        req.prompt.consent = true;
        assert_eq!(next_step(&req, user, false, now), Step::Consent);
        req.prompt = Prompt {
            none: true,
            ..Prompt::default()
        };
        assert_eq!(
            next_step(&req, None, false, now),
            Step::Fail(ErrorCode::LoginRequired)
        );
        // prompt=none with a session and a consent: answered silently.
        assert_eq!(next_step(&req, user, false, now), Step::Approve);
        // max_age: a login of 600 s ago is too old for 599, fine for 600.
        req.max_age = Some(599);
        assert_eq!(
            next_step(&req, user, false, now),
            Step::Fail(ErrorCode::LoginRequired)
        );
        req.max_age = Some(600);
        assert_eq!(next_step(&req, user, false, now), Step::Approve);
        req.max_age = None;
        req.app.skip_authorization = false;
        assert_eq!(
            next_step(&req, user, false, now),
            Step::Fail(ErrorCode::ConsentRequired)
        );
        assert_eq!(next_step(&req, user, true, now), Step::Approve);
        req.prompt = Prompt {
            login: true,
            ..Prompt::default()
        };
        assert_eq!(next_step(&req, user, true, now), Step::Login);
        req.prompt = Prompt::default();
        req.max_age = Some(3600);
        assert_eq!(next_step(&req, user, true, now), Step::Approve);
        req.max_age = Some(60);
        assert_eq!(next_step(&req, user, true, now), Step::Login);
    }

    #[test]
    fn max_age_rules() {
        let now = Timestamp::now();
        assert!(!login_too_old(None, None, now));
        assert!(login_too_old(Some(3600), None, now), "unknown login time");
        assert!(login_too_old(Some(0), Some(now), now), "max_age=0 always");
        assert!(!login_too_old(Some(10), Some(now.sub_secs(10)), now));
        assert!(login_too_old(Some(10), Some(now.sub_secs(11)), now));
        assert!(!login_too_old(
            Some(u64::MAX),
            Some(Timestamp(i64::MIN)),
            now
        ));
        assert_eq!(parse_max_age(None), Ok(None));
        assert_eq!(parse_max_age(Some("0")), Ok(Some(0)));
        assert_eq!(parse_max_age(Some("3600")), Ok(Some(3600)));
        for bad in ["-1", "+5", "1.5", "ten", "99999999999999999999999"] {
            assert!(parse_max_age(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn covered_by_tokens() {
        let now = Timestamp::now();
        let tok = |scope: &str, expires: Timestamp| AccessToken {
            resource: String::new(),
            id: 1,
            user_id: Some(1),
            source_refresh_token_id: None,
            token_checksum: String::new(),
            id_token_id: None,
            application_id: Some(1),
            grant_id: None,
            expires,
            scope: scope.into(),
            created: now,
        };
        use crate::provider::resources::Resources;
        let read = Scopes::parse("read").unwrap();
        let rw = Scopes::parse("read write").unwrap();
        let any = Resources::default();
        assert!(covered(
            &[tok("read write", now.add_secs(60))],
            &read,
            &any,
            now
        ));
        assert!(!covered(&[tok("read", now.add_secs(60))], &rw, &any, now));
        assert!(!covered(&[tok("read write", now)], &read, &any, now));
        assert!(!covered(&[], &read, &any, now));
        // RFC 8707: a token for API A does not stand for a consent to API B.
        let a = Resources::from_stored("https://a.example");
        let b = Resources::from_stored("https://b.example");
        let mut for_a = tok("read", now.add_secs(60));
        for_a.resource = "https://a.example".into();
        assert!(covered(std::slice::from_ref(&for_a), &read, &a, now));
        assert!(!covered(std::slice::from_ref(&for_a), &read, &b, now));
        assert!(
            !covered(std::slice::from_ref(&for_a), &read, &any, now),
            "an unrestricted request is wider"
        );
    }
}
