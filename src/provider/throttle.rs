//! Throttling of credential guessing: failed sign-ins (the login page and the password
//! grant) per username and per client address, failed client authentication per client
//! id, and wrong device user codes (RFC 8628 §5.1: a user code has little entropy) per
//! signed-in user and per client address.
//!
//! Each key counts its failures within a window (`FAILURE_WINDOW_SECONDS`, default
//! 15 min, counted from the first failure). Once a key reaches its limit
//! (`LOGIN_FAILURE_LIMIT`, default 5; `CLIENT_AUTH_FAILURE_LIMIT`, default 10;
//! `DEVICE_USER_CODE_FAILURE_LIMIT`, default 5) it is
//! **locked**: attempts are refused before any password is checked — the right password
//! included — for `LOCKOUT_SECONDS` (default 60), doubling with every further failure up
//! to `MAX_LOCKOUT_SECONDS` (default 1 h). A success forgets the username's or client's
//! failures (not the address's: an attacker must not reset its count with an account of
//! its own). A limit of 0 turns that throttle off.
//!
//! Wrong user codes count per user rather than per session cookie: a user who signs in
//! again gets a new session, not a new count. A user code that was right stops nobody's
//! count (an attacker must not reset it with a code of their own).
//!
//! The login page and the device page say so (429, with the wait), the password grant answers
//! `invalid_grant` and the client authentication `invalid_client`, both with a
//! `Retry-After` header. The state is in memory, per process (bounded: the least recently
//! used keys go first); several replicas each count their own.
//!
//! The client address is the TCP peer that `run_server` (or `axum::serve` with
//! `into_make_service_with_connect_info`) records as `ConnectInfo<SocketAddr>`; behind a
//! reverse proxy it is the proxy's, so per-address limits then count every user together
//! — raise `LOGIN_FAILURE_LIMIT` or rely on the per-username limit. Forwarded headers are
//! not trusted (they are the client's to forge).
//!
//! A lookup costs one concurrent-map read (nothing is written unless an attempt fails).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::future::Cache;

use crate::settings::Settings;

/// How many keys of each kind are remembered at most.
const CAPACITY: u64 = 100_000;

/// The failures of one key.
#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    /// The start of the counting window.
    since: Instant,
    /// Refused until then.
    locked_until: Option<Instant>,
}

/// The limits, from the settings.
#[derive(Clone, Copy, Debug)]
struct Limits {
    login: u32,
    client: u32,
    user_code: u32,
    window: Duration,
    lockout: Duration,
    max_lockout: Duration,
}

/// Throttle state of a provider. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Throttle {
    limits: Limits,
    users: Cache<String, Failures>,
    addresses: Cache<IpAddr, Failures>,
    clients: Cache<String, Failures>,
    /// Wrong device user codes, per user id and per address.
    code_users: Cache<i64, Failures>,
    code_addresses: Cache<IpAddr, Failures>,
}

impl std::fmt::Debug for Throttle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Throttle")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A refusal: how long until the next attempt may be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Locked {
    pub(crate) retry_after: Duration,
}

impl Locked {
    /// Whole seconds to wait (at least 1), for `Retry-After`.
    pub(crate) fn seconds(&self) -> u64 {
        self.retry_after.as_secs_f64().ceil().max(1.0) as u64
    }
}

fn cache<K>(limits: &Limits) -> Cache<K, Failures>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_idle(limits.window.max(limits.max_lockout))
        .build()
}

impl Throttle {
    pub(crate) fn new(settings: &Settings) -> Self {
        let limits = Limits {
            login: settings.login_failure_limit,
            client: settings.client_auth_failure_limit,
            user_code: settings.device_user_code_failure_limit,
            window: settings.failure_window_seconds,
            lockout: settings.lockout_seconds,
            max_lockout: settings.max_lockout_seconds.max(settings.lockout_seconds),
        };
        Throttle {
            limits,
            users: cache(&limits),
            addresses: cache(&limits),
            clients: cache(&limits),
            code_users: cache(&limits),
            code_addresses: cache(&limits),
        }
    }

    /// Refused now: `Some` while the user or the address may not try another user code.
    pub(crate) async fn user_code_locked(
        &self,
        user_id: i64,
        addr: Option<IpAddr>,
    ) -> Option<Locked> {
        if self.limits.user_code == 0 {
            return None;
        }
        let now = Instant::now();
        let user = locked(self.code_users.get(&user_id).await, now);
        let address = match addr {
            Some(a) => locked(self.code_addresses.get(&a).await, now),
            None => None,
        };
        longest(user, address)
    }

    /// A wrong user code typed by `user_id` from `addr`.
    pub(crate) async fn user_code_failed(&self, user_id: i64, addr: Option<IpAddr>) {
        let (limit, limits) = (self.limits.user_code, self.limits);
        if limit == 0 {
            return;
        }
        fail(&self.code_users, user_id, limit, limits).await;
        if let Some(a) = addr {
            fail(&self.code_addresses, a, limit, limits).await;
        }
    }

    /// Refused now: `Some` while the username or the address is locked.
    pub(crate) async fn login_locked(
        &self,
        username: &str,
        addr: Option<IpAddr>,
    ) -> Option<Locked> {
        if self.limits.login == 0 {
            return None;
        }
        let now = Instant::now();
        let user = locked(self.users.get(username).await, now);
        let address = match addr {
            Some(a) => locked(self.addresses.get(&a).await, now),
            None => None,
        };
        longest(user, address)
    }

    /// A failed sign-in of `username` from `addr`.
    pub(crate) async fn login_failed(&self, username: &str, addr: Option<IpAddr>) {
        let (limit, limits) = (self.limits.login, self.limits);
        if limit == 0 {
            return;
        }
        fail(&self.users, username.to_owned(), limit, limits).await;
        if let Some(a) = addr {
            fail(&self.addresses, a, limit, limits).await;
        }
    }

    /// A successful sign-in: the username's failures are forgotten.
    pub(crate) async fn login_succeeded(&self, username: &str) {
        if self.limits.login != 0 {
            self.users.invalidate(username).await;
        }
    }

    /// Refused now: `Some` while the client id is locked.
    pub(crate) async fn client_locked(&self, client_id: &str) -> Option<Locked> {
        if self.limits.client == 0 {
            return None;
        }
        locked(self.clients.get(client_id).await, Instant::now())
    }

    /// A failed authentication of `client_id`.
    pub(crate) async fn client_failed(&self, client_id: &str) {
        if self.limits.client == 0 {
            return;
        }
        fail(
            &self.clients,
            client_id.to_owned(),
            self.limits.client,
            self.limits,
        )
        .await;
    }

    /// A successful authentication: the client's failures are forgotten (a read when
    /// there are none).
    pub(crate) async fn client_succeeded(&self, client_id: &str) {
        if self.limits.client != 0 && self.clients.contains_key(client_id) {
            self.clients.invalidate(client_id).await;
        }
    }
}

fn locked(f: Option<Failures>, now: Instant) -> Option<Locked> {
    let until = f?.locked_until?;
    (until > now).then(|| Locked {
        retry_after: until - now,
    })
}

fn longest(a: Option<Locked>, b: Option<Locked>) -> Option<Locked> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if a.retry_after >= b.retry_after { a } else { b }),
        (a, b) => a.or(b),
    }
}

/// Counts a failure of `key`; locks it once `limit` is reached (see the module docs).
async fn fail<K>(cache: &Cache<K, Failures>, key: K, limit: u32, limits: Limits)
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
{
    let now = Instant::now();
    cache
        .entry(key)
        .and_upsert_with(|old| {
            let f = match old.map(|e| e.into_value()) {
                Some(f) if now.duration_since(f.since) < limits.window => f,
                Some(f) if f.locked_until.is_some_and(|u| u > now) => f,
                _ => Failures {
                    count: 0,
                    since: now,
                    locked_until: None,
                },
            };
            let count = f.count.saturating_add(1);
            let locked_until = (count >= limit).then(|| {
                let doublings = (count - limit).min(16);
                let wait = limits
                    .lockout
                    .saturating_mul(1 << doublings)
                    .min(limits.max_lockout);
                now + wait
            });
            std::future::ready(Failures {
                count,
                since: f.since,
                locked_until: locked_until.or(f.locked_until),
            })
        })
        .await;
}

/// The client address of a request, when the server recorded it.
pub(crate) fn client_addr(extensions: &http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(login: u32, lockout_ms: u64) -> Throttle {
        Throttle::new(&Settings {
            login_failure_limit: login,
            client_auth_failure_limit: login,
            device_user_code_failure_limit: login,
            lockout_seconds: Duration::from_millis(lockout_ms),
            max_lockout_seconds: Duration::from_millis(lockout_ms * 4),
            ..Settings::default()
        })
    }

    #[tokio::test]
    async fn a_username_locks_at_the_limit_and_doubles() {
        let t = throttle(3, 10_000);
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        for _ in 0..2 {
            assert_eq!(t.login_locked("alice", Some(ip)).await, None);
            t.login_failed("alice", Some(ip)).await;
        }
        assert_eq!(t.login_locked("alice", None).await, None, "2 of 3");
        t.login_failed("alice", Some(ip)).await;
        let first = t.login_locked("alice", None).await.expect("locked at 3");
        assert!(first.retry_after <= Duration::from_secs(10));
        assert!(first.retry_after > Duration::from_secs(9));
        // The address is locked too, for another username.
        assert!(t.login_locked("bob", Some(ip)).await.is_some());
        assert!(t.login_locked("bob", None).await.is_none());
        t.login_failed("alice", None).await;
        let second = t.login_locked("alice", None).await.unwrap();
        assert!(second.retry_after > Duration::from_secs(19), "{second:?}");
        // Capped at the maximum.
        for _ in 0..10 {
            t.login_failed("alice", None).await;
        }
        let capped = t.login_locked("alice", None).await.unwrap();
        assert!(capped.retry_after <= Duration::from_secs(40), "{capped:?}");
        // A success forgets the username, not the address.
        t.login_succeeded("alice").await;
        assert!(t.login_locked("alice", None).await.is_none());
        assert!(t.login_locked("alice", Some(ip)).await.is_some());
    }

    #[tokio::test]
    async fn wrong_user_codes_lock_the_user_and_the_address() {
        let t = throttle(2, 10_000);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        t.user_code_failed(1, Some(ip)).await;
        assert_eq!(t.user_code_locked(1, Some(ip)).await, None, "1 of 2");
        t.user_code_failed(1, Some(ip)).await;
        assert!(t.user_code_locked(1, None).await.is_some(), "the user");
        assert!(
            t.user_code_locked(2, Some(ip)).await.is_some(),
            "the address"
        );
        assert!(
            t.user_code_locked(2, None).await.is_none(),
            "another user elsewhere"
        );
        // Sign-ins are counted apart.
        assert!(t.login_locked("alice", Some(ip)).await.is_none());
    }

    #[tokio::test]
    async fn a_lockout_ends() {
        let t = throttle(1, 50);
        t.client_failed("c").await;
        assert!(t.client_locked("c").await.is_some());
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert!(t.client_locked("c").await.is_none());
        t.client_succeeded("c").await;
        assert!(t.client_locked("c").await.is_none());
    }

    #[tokio::test]
    async fn a_zero_limit_turns_it_off() {
        let t = throttle(0, 1000);
        for _ in 0..100 {
            t.login_failed("alice", None).await;
            t.client_failed("c").await;
        }
        assert!(t.login_locked("alice", None).await.is_none());
        assert!(t.client_locked("c").await.is_none());
    }

    #[test]
    fn retry_after_is_at_least_a_second() {
        let l = Locked {
            retry_after: Duration::from_millis(10),
        };
        assert_eq!(l.seconds(), 1);
        let l = Locked {
            retry_after: Duration::from_millis(59_100),
        };
        assert_eq!(l.seconds(), 60);
    }
}
