//! The provider's own login session, and CSRF protection for its forms.
//!
//! # Session
//! After a successful login on the built-in page the provider sets the cookie
//! [`SESSION_COOKIE`]: `base64url(JSON payload) "." base64url(HMAC-SHA-256)`, signed with
//! a key derived from the provider's secret key. The payload holds the user id, the time
//! of the login (OIDC `auth_time`), the expiry ([`SESSION_LIFETIME`], two weeks, Django's
//! `SESSION_COOKIE_AGE`) and a random session id. Nothing is stored server-side: the
//! signature is checked in constant time, the expiry against the clock, and the user is
//! looked up again with [`UserAuthenticator::find_user`] on every request, so a removed or
//! deactivated user is logged out at once. The cookie is `HttpOnly`, `SameSite=Lax`,
//! `Path=/`, and `Secure` when the request came over HTTPS (the URI scheme,
//! `X-Forwarded-Proto: https`, `Forwarded: proto=https`) or the provider's issuer URL
//! ([`ProviderBuilder::issuer`](super::ProviderBuilder::issuer), else
//! `OIDC_ISS_ENDPOINT`) is an `https` URL.
//!
//! A host with its own session implements [`UserAuthenticator::current_user`]; a user it
//! returns wins over the provider's cookie.
//!
//! # CSRF
//! Every form carries a hidden `csrfmiddlewaretoken` (Django's name) and every POST is
//! checked, in constant time, before anything else happens; a bad or missing token is a
//! 403 that changes nothing. Tokens are HMAC-SHA-256 values under a key derived from the
//! secret key, bound to:
//! * on the consent page with a provider session: the session id and the user id (a new
//!   session id is drawn at each login, so tokens do not survive it);
//! * on the login page, and on the consent page when the user comes from the host's
//!   session: a random pre-session cookie, [`CSRF_COOKIE`] (`HttpOnly`, `SameSite=Lax`),
//!   and, for the consent page, the user id (double-submit).
//!
//! ## Differences from Django
//! Django keeps sessions server-side and its CSRF cookie is readable by scripts and
//! masked per response; here the session is a signed cookie (it cannot be revoked before
//! it expires except by changing the secret key or deactivating the user) and the CSRF
//! token is derived, not stored.
//!
//! [`UserAuthenticator::find_user`]: super::UserAuthenticator::find_user
//! [`UserAuthenticator::current_user`]: super::UserAuthenticator::current_user

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use http::{header, HeaderMap, HeaderValue, Uri};
use serde::{Deserialize, Serialize};

use super::users::{AuthenticatedUser, UserAuthenticator};
use super::{hmac, Keys};
use crate::crypto::constant_time_eq;
use crate::model::Timestamp;
use crate::settings::Settings;
use crate::store::StoreError;

/// Name of the provider's session cookie.
pub const SESSION_COOKIE: &str = "oauth_toolkit_session";
/// Name of the pre-session cookie that CSRF tokens are bound to when there is no
/// provider session (the login form; a host session).
pub const CSRF_COOKIE: &str = "oauth_toolkit_csrf";
/// Name of the hidden form field that carries the CSRF token (Django's).
pub const CSRF_FIELD: &str = "csrfmiddlewaretoken";
/// How long a login lasts: two weeks (Django's `SESSION_COOKIE_AGE`).
pub const SESSION_LIFETIME: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// Cookies longer than this are ignored (browsers keep at most 4 KiB per cookie).
const MAX_COOKIE_LEN: usize = 4096;
/// Length of a random id: 32 bytes in unpadded base64url.
const ID_LEN: usize = 43;

/// The signed part of the session cookie.
#[derive(Serialize, Deserialize)]
struct Payload {
    /// User id.
    u: i64,
    /// Login time (Unix seconds).
    t: i64,
    /// Expiry (Unix seconds).
    e: i64,
    /// Random session id.
    s: String,
}

/// A verified provider session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Session {
    pub(crate) user_id: i64,
    pub(crate) auth_time: Timestamp,
    pub(crate) expires: Timestamp,
    pub(crate) sid: String,
}

impl Session {
    /// A fresh session (new random id) started at `now` for a user who authenticated at
    /// `auth_time`.
    pub(crate) fn new(user_id: i64, auth_time: Timestamp, now: Timestamp) -> Session {
        Session {
            user_id,
            auth_time,
            expires: now.plus(SESSION_LIFETIME),
            sid: random_id(),
        }
    }

    /// The cookie value.
    pub(crate) fn encode(&self, key: &[u8; 32]) -> String {
        let payload = Payload {
            u: self.user_id,
            t: self.auth_time.unix(),
            e: self.expires.unix(),
            s: self.sid.clone(),
        };
        // Serializing a struct of integers and a string cannot fail.
        let json = serde_json::to_vec(&payload).unwrap_or_default();
        let body = URL_SAFE_NO_PAD.encode(json);
        let mac = URL_SAFE_NO_PAD.encode(hmac(key, &[b"session", body.as_bytes()]));
        format!("{body}.{mac}")
    }

    /// The session in a cookie value, if the signature is good and it has not expired.
    pub(crate) fn decode(key: &[u8; 32], value: &str, now: Timestamp) -> Option<Session> {
        if value.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (body, mac) = value.split_once('.')?;
        let expected = URL_SAFE_NO_PAD.encode(hmac(key, &[b"session", body.as_bytes()]));
        if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
            return None;
        }
        let json = URL_SAFE_NO_PAD.decode(body).ok()?;
        let p: Payload = serde_json::from_slice(&json).ok()?;
        if p.e <= now.unix() || p.s.is_empty() {
            return None;
        }
        Some(Session {
            user_id: p.u,
            auth_time: Timestamp(p.t),
            expires: Timestamp(p.e),
            sid: p.s,
        })
    }
}

/// 32 random bytes, base64url.
pub(crate) fn random_id() -> String {
    let mut bytes = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut bytes[..]);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The values of every cookie called `name`, in the order the client sent them.
pub(crate) fn cookie_values<'a>(
    headers: &'a HeaderMap,
    name: &'a str,
) -> impl Iterator<Item = &'a str> + 'a {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(move |pair| {
            let (k, v) = pair.trim().split_once('=')?;
            (k.trim() == name).then(|| v.trim().trim_matches('"'))
        })
}

/// Whether the client reached us over HTTPS: the request URI, the proxy headers, or an
/// `https` issuer URL (the provider's, or `OIDC_ISS_ENDPOINT`).
pub(crate) fn is_https(
    headers: &HeaderMap,
    uri: &Uri,
    settings: &Settings,
    issuer: Option<&url::Url>,
) -> bool {
    if uri.scheme_str() == Some("https")
        || issuer.is_some_and(|i| i.scheme() == "https")
        || settings.oidc_iss_endpoint.starts_with("https://")
    {
        return true;
    }
    let forwarded_proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    let forwarded = headers
        .get(header::FORWARDED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|first| {
            first.split(';').any(|kv| {
                kv.trim().split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("proto")
                        && v.trim().trim_matches('"').eq_ignore_ascii_case("https")
                })
            })
        });
    forwarded_proto || forwarded
}

/// A `Set-Cookie` value. `value` must be cookie-safe (base64url and `.` here).
pub(crate) fn set_cookie(
    name: &str,
    value: &str,
    max_age: Option<u64>,
    secure: bool,
) -> HeaderValue {
    let mut s = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
    if let Some(age) = max_age {
        s.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        s.push_str("; Secure");
    }
    HeaderValue::from_str(&s).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// A `Set-Cookie` value that removes the cookie `name`.
pub(crate) fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", Some(0), secure)
}

/// What a CSRF token is bound to.
enum Binding<'a> {
    /// The login form: the pre-session cookie.
    Login { pre: &'a str },
    /// A form of a logged-in user with a provider session.
    Session { sid: &'a str, user_id: i64 },
    /// A form of a user logged in through the host: the pre-session cookie and the user.
    Host { pre: &'a str, user_id: i64 },
}

fn token_for(key: &[u8; 32], binding: &Binding<'_>) -> String {
    let mac = match binding {
        Binding::Login { pre } => hmac(key, &[b"login", pre.as_bytes()]),
        Binding::Session { sid, user_id } => {
            hmac(key, &[b"session", sid.as_bytes(), &user_id.to_be_bytes()])
        }
        Binding::Host { pre, user_id } => {
            hmac(key, &[b"host", pre.as_bytes(), &user_id.to_be_bytes()])
        }
    };
    URL_SAFE_NO_PAD.encode(mac)
}

fn token_ok(key: &[u8; 32], binding: &Binding<'_>, presented: Option<&str>) -> bool {
    let expected = token_for(key, binding);
    presented.is_some_and(|p| constant_time_eq(expected.as_bytes(), p.as_bytes()))
}

/// The visitor of one request: the logged-in user (if any), where the login came from,
/// and the cookies to set on the answer. `Debug` leaves the cookie values out.
pub(crate) struct Visitor {
    /// The logged-in user.
    pub(crate) user: Option<AuthenticatedUser>,
    /// The provider session the user came from (`None` for a host session or nobody).
    session: Option<Session>,
    /// The pre-session id (from the cookie, or created for this answer).
    pre_session: Option<String>,
    /// `Set-Cookie` values for the answer.
    pub(crate) set_cookies: Vec<HeaderValue>,
    secure: bool,
}

impl std::fmt::Debug for Visitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visitor")
            .field("user", &self.user)
            .field("has_session", &self.session.is_some())
            .field("set_cookies", &self.set_cookies.len())
            .field("secure", &self.secure)
            .finish()
    }
}

impl Visitor {
    /// Finds who sent `parts`: the host's user first, then the provider's session cookie.
    pub(crate) async fn identify<U: UserAuthenticator>(
        users: &U,
        keys: &Keys,
        settings: &Settings,
        issuer: Option<&url::Url>,
        parts: &http::request::Parts,
    ) -> Result<Visitor, StoreError> {
        let secure = is_https(&parts.headers, &parts.uri, settings, issuer);
        let pre_session = cookie_values(&parts.headers, CSRF_COOKIE)
            .next()
            .filter(|v| v.len() == ID_LEN && v.bytes().all(is_base64url))
            .map(str::to_owned);
        let mut visitor = Visitor {
            user: None,
            session: None,
            pre_session,
            set_cookies: Vec::new(),
            secure,
        };
        if let Some(user) = users.current_user(parts).await? {
            visitor.user = Some(user);
            return Ok(visitor);
        }
        let now = Timestamp::now();
        let mut stale = false;
        for value in cookie_values(&parts.headers, SESSION_COOKIE) {
            let Some(session) = Session::decode(&keys.session, value, now) else {
                stale = true;
                continue;
            };
            match users.find_user(session.user_id).await? {
                Some(mut user) => {
                    user.auth_time = Some(session.auth_time);
                    visitor.user = Some(user);
                    visitor.session = Some(session);
                    stale = false;
                    break;
                }
                None => stale = true,
            }
        }
        if stale {
            visitor
                .set_cookies
                .push(clear_cookie(SESSION_COOKIE, visitor.secure));
        }
        Ok(visitor)
    }

    /// The pre-session id, created (and its cookie queued) if the request had none.
    fn ensure_pre_session(&mut self) -> String {
        if let Some(id) = &self.pre_session {
            return id.clone();
        }
        let id = random_id();
        self.set_cookies
            .push(set_cookie(CSRF_COOKIE, &id, None, self.secure));
        self.pre_session = Some(id.clone());
        id
    }

    /// The CSRF token of the login form.
    pub(crate) fn login_csrf_token(&mut self, keys: &Keys) -> String {
        let pre = self.ensure_pre_session();
        token_for(&keys.csrf, &Binding::Login { pre: &pre })
    }

    /// Whether `presented` is the login form's CSRF token for this visitor.
    pub(crate) fn check_login_csrf(&self, keys: &Keys, presented: Option<&str>) -> bool {
        match &self.pre_session {
            Some(pre) => token_ok(&keys.csrf, &Binding::Login { pre }, presented),
            None => false,
        }
    }

    /// The CSRF token of the consent form (`None` when nobody is logged in).
    pub(crate) fn consent_csrf_token(&mut self, keys: &Keys) -> Option<String> {
        let user_id = self.user.as_ref()?.id;
        if let Some(s) = &self.session {
            return Some(token_for(
                &keys.csrf,
                &Binding::Session {
                    sid: &s.sid,
                    user_id,
                },
            ));
        }
        let pre = self.ensure_pre_session();
        Some(token_for(&keys.csrf, &Binding::Host { pre: &pre, user_id }))
    }

    /// Whether `presented` is the consent form's CSRF token for this visitor.
    pub(crate) fn check_consent_csrf(&self, keys: &Keys, presented: Option<&str>) -> bool {
        let Some(user_id) = self.user.as_ref().map(|u| u.id) else {
            return false;
        };
        match (&self.session, &self.pre_session) {
            (Some(s), _) => token_ok(
                &keys.csrf,
                &Binding::Session {
                    sid: &s.sid,
                    user_id,
                },
                presented,
            ),
            (None, Some(pre)) => token_ok(&keys.csrf, &Binding::Host { pre, user_id }, presented),
            (None, None) => false,
        }
    }

    /// Starts a new provider session for `user` (a fresh session id: no fixation) and
    /// drops the pre-session cookie, whose job is done.
    pub(crate) fn log_in(&mut self, keys: &Keys, user: AuthenticatedUser) {
        let now = Timestamp::now();
        let session = Session::new(user.id, user.auth_time.unwrap_or(now), now);
        self.set_cookies.push(set_cookie(
            SESSION_COOKIE,
            &session.encode(&keys.session),
            Some(SESSION_LIFETIME.as_secs()),
            self.secure,
        ));
        if self.pre_session.take().is_some() {
            self.set_cookies
                .push(clear_cookie(CSRF_COOKIE, self.secure));
        }
        self.user = Some(user);
        self.session = Some(session);
    }

    /// Ends the provider session: queues a `Set-Cookie` that removes [`SESSION_COOKIE`]
    /// and forgets the user for the rest of the request. Returns whether there was a
    /// provider session. A user who came from the host's own session
    /// ([`UserAuthenticator::current_user`]) is forgotten here too, but that session is
    /// the host's to end.
    pub(crate) fn log_out(&mut self) -> bool {
        self.set_cookies
            .push(clear_cookie(SESSION_COOKIE, self.secure));
        self.user = None;
        self.session.take().is_some()
    }
}

fn is_base64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::derive(&[9u8; 32])
    }

    #[test]
    fn session_round_trip_and_tamper() {
        let k = keys();
        let now = Timestamp::now();
        let s = Session::new(42, now, now);
        let v = s.encode(&k.session);
        assert_eq!(Session::decode(&k.session, &v, now), Some(s.clone()));
        // Another key, a changed payload, a changed signature, an expired session.
        assert_eq!(Session::decode(&k.csrf, &v, now), None);
        let (body, mac) = v.split_once('.').unwrap();
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&serde_json::json!({"u": 1, "t": 0, "e": i64::MAX, "s": "x"}))
                .unwrap(),
        );
        assert_eq!(
            Session::decode(&k.session, &format!("{forged}.{mac}"), now),
            None
        );
        assert_eq!(
            Session::decode(&k.session, &format!("{body}.{mac}x"), now),
            None
        );
        assert_eq!(Session::decode(&k.session, "garbage", now), None);
        assert_eq!(Session::decode(&k.session, &v, s.expires), None);
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            "a=1; oauth_toolkit_csrf=xyz ; b=2".parse().unwrap(),
        );
        h.append(header::COOKIE, "oauth_toolkit_csrf=second".parse().unwrap());
        let v: Vec<_> = cookie_values(&h, CSRF_COOKIE).collect();
        assert_eq!(v, ["xyz", "second"]);
        assert_eq!(cookie_values(&h, "missing").count(), 0);
    }

    #[test]
    fn https_detection() {
        let s = Settings::default();
        let uri: Uri = "/o/login/".parse().unwrap();
        let mut h = HeaderMap::new();
        assert!(!is_https(&h, &uri, &s, None));
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        assert!(is_https(&h, &uri, &s, None));
        let mut h = HeaderMap::new();
        h.insert(
            header::FORWARDED,
            "for=1.2.3.4;proto=https".parse().unwrap(),
        );
        assert!(is_https(&h, &uri, &s, None));
        let issuer = url::Url::parse("https://auth.example.com").unwrap();
        assert!(is_https(&HeaderMap::new(), &uri, &s, Some(&issuer)));
        let http_issuer = url::Url::parse("http://127.0.0.1:8000").unwrap();
        assert!(!is_https(&HeaderMap::new(), &uri, &s, Some(&http_issuer)));
        let s = Settings {
            oidc_iss_endpoint: "https://auth.example.com/o".into(),
            ..Settings::default()
        };
        assert!(is_https(&HeaderMap::new(), &uri, &s, None));
        assert!(set_cookie("n", "v", None, true)
            .to_str()
            .unwrap()
            .ends_with("; Secure"));
    }

    #[test]
    fn csrf_tokens_are_bound() {
        let k = keys();
        let a = token_for(&k.csrf, &Binding::Login { pre: "p1" });
        assert!(token_ok(&k.csrf, &Binding::Login { pre: "p1" }, Some(&a)));
        assert!(!token_ok(&k.csrf, &Binding::Login { pre: "p2" }, Some(&a)));
        assert!(!token_ok(&k.csrf, &Binding::Login { pre: "p1" }, None));
        let s1 = token_for(
            &k.csrf,
            &Binding::Session {
                sid: "s",
                user_id: 1,
            },
        );
        assert!(!token_ok(
            &k.csrf,
            &Binding::Session {
                sid: "s",
                user_id: 2
            },
            Some(&s1)
        ));
        assert!(!token_ok(
            &k.csrf,
            &Binding::Host {
                pre: "s",
                user_id: 1
            },
            Some(&s1)
        ));
    }
}
