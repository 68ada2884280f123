//! The soak driver of `benches/soak.sh` (issue 12, item 8): mixed load on a running
//! `oauth-toolkit serve` for a fixed time, then a check of every token it was given.
//!
//! ```sh
//! cargo run --release --example soak -- --base http://127.0.0.1:8000 --pid "$SERVER_PID" \
//!     --duration 600 --cc-client ID:SECRET --code-client ID:SECRET \
//!     --redirect-uri http://127.0.0.1:9/callback --user alice:PASSWORD
//! ```
//!
//! `--workers` tasks each loop over a weighted mix of requests, checking every answer:
//!
//! - client-credentials tokens (200);
//! - the authorization code flow with PKCE S256: `GET /o/authorize/` as the user signed in
//!   once through the real login form (CSRF token and cookies), answered with a redirect
//!   carrying the code (the application skips consent), then the code exchange (200,
//!   access and refresh token);
//! - refreshes with rotation (200, a new pair; the old pair is gone), and now and then
//!   the rotated-away refresh token presented again (400 `invalid_grant`);
//! - introspection of live tokens (`active: true`, the issuing client's id) and of dead
//!   ones (`active: false`);
//! - `GET /api/hello` with a live access token (200) and a dead one (401);
//! - RFC 7009 revocations by the owning client (200), then the revoked token
//!   introspected (`active: false`).
//!
//! Any 5xx, transport error or unexpected answer is a failure. Every period (60 s) it
//! prints the requests per second, by kind, and the server's RSS (VmRSS of `--pid`,
//! sampled every 2 s). At the end it introspects every token it was issued (bounded
//! concurrency) and compares with what it expects — live, revoked or rotated away; a token
//! whose `exp` passed expects inactive — and compares the mean RSS of the last period
//! with that of the period after warm-up (`--warmup`, default 300 s; `--rss-tolerance`,
//! default 10 %; runs shorter than the warm-up and two periods only print the RSS: the
//! caches are still filling). Every period also shows the server's CPU use and the
//! machine's load average, since other work on the machine moves the throughput. It
//! exits 1 when anything failed, saying what.
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Parser)]
struct Args {
    /// The server's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    base: String,
    /// The server's process id, for its RSS (no RSS check without it).
    #[arg(long)]
    pid: Option<u32>,
    /// Seconds of load.
    #[arg(long, default_value_t = 600)]
    duration: u64,
    /// Concurrent workers, each one request at a time.
    #[arg(long, default_value_t = 8)]
    workers: usize,
    /// Seconds between throughput lines.
    #[arg(long, default_value_t = 60)]
    report_every: u64,
    /// Seconds of warm-up before the first RSS window: by default the token cache's
    /// longest entry lifetime (300 s), after which it is in its steady state (full, and
    /// entries expiring as fast as new ones come). The RSS check needs a run of at least
    /// the warm-up plus two periods (420 s by default).
    #[arg(long, default_value_t = 300)]
    warmup: u64,
    /// Largest allowed change of the mean RSS between the window after warm-up and the
    /// last window, in per cent.
    #[arg(long, default_value_t = 10.0)]
    rss_tolerance: f64,
    /// A confidential client-credentials client, `ID:SECRET` (also the introspecting
    /// resource server).
    #[arg(long)]
    cc_client: String,
    /// A confidential authorization-code client that skips consent, `ID:SECRET`.
    #[arg(long)]
    code_client: String,
    /// The code client's redirect URI.
    #[arg(long)]
    redirect_uri: String,
    /// The user who signs in, `USERNAME:PASSWORD`.
    #[arg(long)]
    user: String,
    /// Concurrent introspections of the final check.
    #[arg(long, default_value_t = 16)]
    check_concurrency: usize,
}

/// What a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ClientCredentials,
    Authorize,
    CodeExchange,
    Refresh,
    RefreshReplay,
    Introspect,
    IntrospectDead,
    Hello,
    HelloDead,
    Revoke,
    RevokedCheck,
}

const KINDS: [Kind; 11] = [
    Kind::ClientCredentials,
    Kind::Authorize,
    Kind::CodeExchange,
    Kind::Refresh,
    Kind::RefreshReplay,
    Kind::Introspect,
    Kind::IntrospectDead,
    Kind::Hello,
    Kind::HelloDead,
    Kind::Revoke,
    Kind::RevokedCheck,
];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::ClientCredentials => "client_credentials token",
            Kind::Authorize => "authorize (redirect with code)",
            Kind::CodeExchange => "code exchange (PKCE)",
            Kind::Refresh => "refresh with rotation",
            Kind::RefreshReplay => "rotated-away refresh token again",
            Kind::Introspect => "introspection, live token",
            Kind::IntrospectDead => "introspection, dead token",
            Kind::Hello => "GET /api/hello, live token",
            Kind::HelloDead => "GET /api/hello, dead token",
            Kind::Revoke => "revocation",
            Kind::RevokedCheck => "introspection right after revocation",
        }
    }
    /// The column of the per-period table.
    fn group(self) -> usize {
        match self {
            Kind::ClientCredentials => 0,
            Kind::Authorize | Kind::CodeExchange => 1,
            Kind::Refresh | Kind::RefreshReplay => 2,
            Kind::Introspect | Kind::IntrospectDead | Kind::RevokedCheck => 3,
            Kind::Hello | Kind::HelloDead => 4,
            Kind::Revoke => 5,
        }
    }
}

const GROUPS: [&str; 6] = [
    "client_credentials",
    "code flow",
    "refresh",
    "introspect",
    "api",
    "revoke",
];

/// Status classes counted: 2xx, 3xx, 4xx, 5xx, no answer.
const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "no answer"];

struct Stats {
    counts: [[AtomicU64; CLASSES.len()]; KINDS.len()],
    failures: AtomicU64,
    messages: Mutex<Vec<String>>,
}

impl Stats {
    fn new() -> Self {
        Stats {
            counts: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            failures: AtomicU64::new(0),
            messages: Mutex::new(Vec::new()),
        }
    }
    fn count(&self, kind: Kind, class: usize) {
        self.counts[kind as usize][class].fetch_add(1, Ordering::Relaxed);
    }
    fn fail(&self, message: String) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        let mut m = self.messages.lock().unwrap();
        if m.len() < 50 {
            m.push(message);
        }
    }
    /// Requests so far, by kind.
    fn per_kind(&self) -> [u64; KINDS.len()] {
        std::array::from_fn(|k| {
            self.counts[k]
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .sum()
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Client {
    Cc,
    Code,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Expect {
    Live,
    Revoked,
    RotatedAway,
    /// A request about it failed: its state is not known (the failure is counted).
    Unknown,
}

/// A token the server issued.
struct Issued {
    token: String,
    client: Client,
    refresh: bool,
    expect: Expect,
    /// Unix seconds; none for refresh tokens (REFRESH_TOKEN_EXPIRE_SECONDS is unset).
    expires_at: Option<u64>,
}

struct Shared {
    args: Args,
    cc: (String, String),
    code: (String, String),
    api: reqwest::Client,
    browser: reqwest::Client,
    stats: Stats,
    stop: AtomicBool,
}

impl Shared {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.args.base.trim_end_matches('/'))
    }
    fn creds(&self, client: Client) -> (&str, &str) {
        let (id, secret) = match client {
            Client::Cc => &self.cc,
            Client::Code => &self.code,
        };
        (id, secret)
    }

    /// Sends `req`, counting its status class; a 5xx or no answer is a failure.
    async fn send(&self, kind: Kind, req: reqwest::RequestBuilder) -> Option<(StatusCode, String)> {
        match req.send().await {
            Ok(res) => {
                let status = res.status();
                let class = match status.as_u16() {
                    200..=299 => 0,
                    300..=399 => 1,
                    400..=499 => 2,
                    500..=599 => 3,
                    _ => 4,
                };
                self.stats.count(kind, class);
                let location = res
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = match location {
                    Some(l) if status.is_redirection() => l,
                    _ => res.text().await.unwrap_or_default(),
                };
                if status.is_server_error() {
                    self.stats
                        .fail(format!("{}: {status}: {}", kind.name(), shorten(&body)));
                }
                Some((status, body))
            }
            Err(e) => {
                self.stats.count(kind, 4);
                self.stats
                    .fail(format!("{}: no answer: {}", kind.name(), chain(&e)));
                None
            }
        }
    }

    /// Sends `req` and expects `want`; the body (or `Location`) when it came.
    async fn expect(
        &self,
        kind: Kind,
        req: reqwest::RequestBuilder,
        want: StatusCode,
    ) -> Option<String> {
        let (status, body) = self.send(kind, req).await?;
        if status != want {
            if !status.is_server_error() {
                self.stats.fail(format!(
                    "{}: expected {want}, got {status}: {}",
                    kind.name(),
                    shorten(&body)
                ));
            }
            return None;
        }
        Some(body)
    }

    async fn introspect(&self, kind: Kind, token: &str) -> Option<Value> {
        let (id, secret) = self.creds(Client::Cc);
        let req = self
            .api
            .post(self.url("/o/introspect/"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token)]);
        let body = self.expect(kind, req, StatusCode::OK).await?;
        match serde_json::from_str(&body) {
            Ok(v) => Some(v),
            Err(e) => {
                self.stats.fail(format!(
                    "{}: not JSON ({e}): {}",
                    kind.name(),
                    shorten(&body)
                ));
                None
            }
        }
    }
}

/// A transport error with its causes ("error sending request: connection closed
/// before message completed"): reqwest's own message names only the first.
fn chain(e: &reqwest::Error) -> String {
    let mut out = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

fn shorten(s: &str) -> String {
    s.chars().take(200).collect()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn split_pair(s: &str, what: &str) -> (String, String) {
    match s.split_once(':') {
        Some((a, b)) => (a.to_owned(), b.to_owned()),
        None => {
            eprintln!("error: {what} must be NAME:SECRET");
            std::process::exit(2);
        }
    }
}

/// Recently used tokens each worker keeps to call with.
const POOL: usize = 32;

struct Worker {
    shared: Arc<Shared>,
    rng: StdRng,
    ledger: Vec<Issued>,
    /// Live client-credentials access tokens (ledger indices).
    cc: VecDeque<usize>,
    /// Live code-flow pairs (access, refresh).
    pairs: VecDeque<(usize, usize)>,
    /// Recently revoked or rotated-away tokens.
    dead: VecDeque<usize>,
}

impl Worker {
    fn record(&mut self, token: &str, client: Client, expires_in: Option<u64>) -> usize {
        self.ledger.push(Issued {
            token: token.to_owned(),
            client,
            refresh: expires_in.is_none(),
            expect: Expect::Live,
            expires_at: expires_in.map(|e| unix_now() + e),
        });
        self.ledger.len() - 1
    }

    fn push_dead(&mut self, i: usize) {
        self.dead.push_back(i);
        if self.dead.len() > POOL {
            self.dead.pop_front();
        }
    }

    async fn run(mut self) -> Vec<Issued> {
        while !self.shared.stop.load(Ordering::Relaxed) {
            let roll = self.rng.random_range(0..100);
            match roll {
                0..15 => self.client_credentials().await,
                15..25 => self.code_flow().await,
                25..35 if !self.pairs.is_empty() => self.refresh().await,
                35..60 => self.introspect().await,
                60..95 => self.hello().await,
                95..100 => self.revoke().await,
                _ => self.code_flow().await,
            }
        }
        self.ledger
    }

    /// Parses a token response; records the tokens.
    fn tokens(&mut self, kind: Kind, body: &str, client: Client) -> Option<(usize, Option<usize>)> {
        let v: Value = serde_json::from_str(body).ok()?;
        let Some(access) = v["access_token"].as_str() else {
            self.shared.stats.fail(format!(
                "{}: no access_token: {}",
                kind.name(),
                shorten(body)
            ));
            return None;
        };
        let expires_in = v["expires_in"].as_u64().unwrap_or(0);
        let a = self.record(access, client, Some(expires_in));
        let r = v["refresh_token"]
            .as_str()
            .map(|r| self.record(r, client, None));
        Some((a, r))
    }

    async fn client_credentials(&mut self) {
        let s = self.shared.clone();
        let (id, secret) = s.creds(Client::Cc);
        let req = s
            .api
            .post(s.url("/o/token/"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")]);
        let Some(body) = s.expect(Kind::ClientCredentials, req, StatusCode::OK).await else {
            return;
        };
        if let Some((a, _)) = self.tokens(Kind::ClientCredentials, &body, Client::Cc) {
            self.cc.push_back(a);
            if self.cc.len() > POOL {
                self.cc.pop_front();
            }
        }
    }

    async fn code_flow(&mut self) {
        let s = self.shared.clone();
        let verifier: String = (0..64)
            .map(|_| {
                let i = self.rng.random_range(0..62u8);
                char::from(match i {
                    0..26 => b'a' + i,
                    26..52 => b'A' + i - 26,
                    _ => b'0' + i - 52,
                })
            })
            .collect();
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&verifier));
        let state = format!("{:016x}", self.rng.random::<u64>());
        let req = s.browser.get(s.url("/o/authorize/")).query(&[
            ("response_type", "code"),
            ("client_id", s.code.0.as_str()),
            ("redirect_uri", s.args.redirect_uri.as_str()),
            ("scope", "read"),
            ("state", state.as_str()),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]);
        let Some(location) = s.expect(Kind::Authorize, req, StatusCode::FOUND).await else {
            return;
        };
        let code = url::Url::parse(&location).ok().and_then(|u| {
            let q: Vec<(String, String)> = u.query_pairs().into_owned().collect();
            let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
            (location.starts_with(&s.args.redirect_uri) && get("state").as_deref() == Some(&state))
                .then(|| get("code"))
                .flatten()
        });
        let Some(code) = code else {
            s.stats.fail(format!(
                "{}: not a redirect with the code and state: {}",
                Kind::Authorize.name(),
                shorten(&location)
            ));
            return;
        };
        let (id, secret) = s.creds(Client::Code);
        let req = s
            .api
            .post(s.url("/o/token/"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", s.args.redirect_uri.as_str()),
                ("code_verifier", verifier.as_str()),
            ]);
        let Some(body) = s.expect(Kind::CodeExchange, req, StatusCode::OK).await else {
            return;
        };
        match self.tokens(Kind::CodeExchange, &body, Client::Code) {
            Some((a, Some(r))) => {
                self.pairs.push_back((a, r));
                if self.pairs.len() > POOL {
                    self.pairs.pop_front();
                }
            }
            Some((_, None)) => s.stats.fail(format!(
                "{}: no refresh token: {}",
                Kind::CodeExchange.name(),
                shorten(&body)
            )),
            None => {}
        }
    }

    async fn refresh(&mut self) {
        let s = self.shared.clone();
        let i = self.rng.random_range(0..self.pairs.len());
        let Some((a, r)) = self.pairs.remove(i) else {
            return;
        };
        let (id, secret) = s.creds(Client::Code);
        let old = self.ledger[r].token.clone();
        let req = s
            .api
            .post(s.url("/o/token/"))
            .basic_auth(id, Some(secret))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", old.as_str()),
            ]);
        let Some(body) = s.expect(Kind::Refresh, req, StatusCode::OK).await else {
            self.ledger[a].expect = Expect::Unknown;
            self.ledger[r].expect = Expect::Unknown;
            return;
        };
        self.ledger[a].expect = Expect::RotatedAway;
        self.ledger[r].expect = Expect::RotatedAway;
        self.push_dead(a);
        self.push_dead(r);
        match self.tokens(Kind::Refresh, &body, Client::Code) {
            Some((na, Some(nr))) => self.pairs.push_back((na, nr)),
            Some((_, None)) => s.stats.fail(format!(
                "{}: no new refresh token (rotation is on): {}",
                Kind::Refresh.name(),
                shorten(&body)
            )),
            None => {}
        }
        if self.rng.random_range(0..4) == 0 {
            let req = s
                .api
                .post(s.url("/o/token/"))
                .basic_auth(id, Some(secret))
                .form(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", old.as_str()),
                ]);
            if let Some(body) = s
                .expect(Kind::RefreshReplay, req, StatusCode::BAD_REQUEST)
                .await
            {
                if !body.contains("\"invalid_grant\"") {
                    s.stats.fail(format!(
                        "{}: expected invalid_grant: {}",
                        Kind::RefreshReplay.name(),
                        shorten(&body)
                    ));
                }
            }
        }
    }

    /// A live access token: a client-credentials one or a pair's.
    fn live_access(&mut self) -> Option<usize> {
        let n = self.cc.len() + self.pairs.len();
        if n == 0 {
            return None;
        }
        let i = self.rng.random_range(0..n);
        Some(if i < self.cc.len() {
            self.cc[i]
        } else {
            self.pairs[i - self.cc.len()].0
        })
    }

    async fn introspect(&mut self) {
        let s = self.shared.clone();
        if !self.dead.is_empty() && self.rng.random_range(0..5) == 0 {
            let i = self.dead[self.rng.random_range(0..self.dead.len())];
            if let Some(v) = s
                .introspect(Kind::IntrospectDead, &self.ledger[i].token)
                .await
            {
                if v["active"] != Value::Bool(false) {
                    s.stats.fail(format!(
                        "{}: a {:?} token is {v}",
                        Kind::IntrospectDead.name(),
                        self.ledger[i].expect
                    ));
                }
            }
            return;
        }
        // A live token: an access token, or a pair's refresh token.
        let i = if !self.pairs.is_empty() && self.rng.random_range(0..4) == 0 {
            self.pairs[self.rng.random_range(0..self.pairs.len())].1
        } else {
            match self.live_access() {
                Some(i) => i,
                None => return self.client_credentials().await,
            }
        };
        let Some(v) = s.introspect(Kind::Introspect, &self.ledger[i].token).await else {
            return;
        };
        let client = s.creds(self.ledger[i].client).0;
        if v["active"] != Value::Bool(true) || v["client_id"].as_str() != Some(client) {
            s.stats.fail(format!(
                "{}: a live {} token of {client} is {v}",
                Kind::Introspect.name(),
                if self.ledger[i].refresh {
                    "refresh"
                } else {
                    "access"
                }
            ));
        }
    }

    async fn hello(&mut self) {
        let s = self.shared.clone();
        let dead = self
            .dead
            .iter()
            .copied()
            .filter(|&i| !self.ledger[i].refresh)
            .collect::<Vec<_>>();
        if !dead.is_empty() && self.rng.random_range(0..5) == 0 {
            let i = dead[self.rng.random_range(0..dead.len())];
            let req = s
                .api
                .get(s.url("/api/hello"))
                .bearer_auth(&self.ledger[i].token);
            s.expect(Kind::HelloDead, req, StatusCode::UNAUTHORIZED)
                .await;
            return;
        }
        let Some(i) = self.live_access() else {
            return self.client_credentials().await;
        };
        let req = s
            .api
            .get(s.url("/api/hello"))
            .bearer_auth(&self.ledger[i].token);
        if let Some(body) = s.expect(Kind::Hello, req, StatusCode::OK).await {
            let client = s.creds(self.ledger[i].client).0;
            if !body.contains(&format!("\"client_id\":\"{client}\"")) {
                s.stats
                    .fail(format!("{}: {}", Kind::Hello.name(), shorten(&body)));
            }
        }
    }

    async fn revoke(&mut self) {
        let s = self.shared.clone();
        // The token to revoke and the ones it takes with it (a pair goes together).
        let (target, all, client) =
            if !self.pairs.is_empty() && (self.cc.is_empty() || self.rng.random_bool(0.5)) {
                let Some((a, r)) = self.pairs.pop_front() else {
                    return;
                };
                let target = if self.rng.random_bool(0.5) { a } else { r };
                (target, vec![a, r], Client::Code)
            } else if let Some(a) = self.cc.pop_front() {
                (a, vec![a], Client::Cc)
            } else {
                return self.client_credentials().await;
            };
        let (id, secret) = s.creds(client);
        let hint = if self.ledger[target].refresh {
            "refresh_token"
        } else {
            "access_token"
        };
        let token = self.ledger[target].token.clone();
        let req = s
            .api
            .post(s.url("/o/revoke_token/"))
            .basic_auth(id, Some(secret))
            .form(&[("token", token.as_str()), ("token_type_hint", hint)]);
        let revoked = s.expect(Kind::Revoke, req, StatusCode::OK).await.is_some();
        for &i in &all {
            self.ledger[i].expect = if revoked {
                Expect::Revoked
            } else {
                Expect::Unknown
            };
            if revoked {
                self.push_dead(i);
            }
        }
        if revoked {
            if let Some(v) = s.introspect(Kind::RevokedCheck, &token).await {
                if v["active"] != Value::Bool(false) {
                    s.stats.fail(format!(
                        "{}: a just-revoked {hint} is {v}",
                        Kind::RevokedCheck.name()
                    ));
                }
            }
        }
    }
}

/// One reading of the server's memory (KiB, from `/proc/<pid>/status`).
#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    /// Seconds since the load started.
    t: f64,
    /// VmRSS: what the check is about.
    rss: u64,
    /// Its parts: heap and other anonymous memory, mapped files, shared memory (SQLite's
    /// WAL index).
    anon: u64,
    file: u64,
    shmem: u64,
}

fn sample(pid: u32, t: f64) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some(Sample {
        t,
        rss: field("VmRSS:")?,
        anon: field("RssAnon:").unwrap_or(0),
        file: field("RssFile:").unwrap_or(0),
        shmem: field("RssShmem:").unwrap_or(0),
    })
}

/// The server's CPU time so far (user + system), in seconds (clock ticks of 1/100 s).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The machine's load average over the last minute.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn mib(kib: f64) -> f64 {
    kib / 1024.0
}

/// The mean of `part` over the samples taken in `[from, to)` seconds.
fn mean(samples: &[Sample], from: f64, to: f64, part: fn(&Sample) -> u64) -> Option<f64> {
    let w: Vec<u64> = samples
        .iter()
        .filter(|s| s.t >= from && s.t < to)
        .map(part)
        .collect();
    (!w.is_empty()).then(|| w.iter().sum::<u64>() as f64 / w.len() as f64)
}

fn mean_rss(samples: &[Sample], from: f64, to: f64) -> Option<f64> {
    mean(samples, from, to, |s| s.rss)
}

/// "anon A + file F + shmem S MiB" over a window.
fn parts(samples: &[Sample], from: f64, to: f64) -> String {
    let m = |part: fn(&Sample) -> u64| mib(mean(samples, from, to, part).unwrap_or(0.0));
    format!(
        "anon {:.1} + file {:.1} + shmem {:.1}",
        m(|s| s.anon),
        m(|s| s.file),
        m(|s| s.shmem)
    )
}

async fn log_in(shared: &Shared, username: &str, password: &str) -> Result<(), String> {
    let page = shared
        .browser
        .get(shared.url("/o/login/"))
        .send()
        .await
        .map_err(|e| format!("login page: {e}"))?
        .text()
        .await
        .map_err(|e| format!("login page: {e}"))?;
    let marker = "name=\"csrfmiddlewaretoken\" value=\"";
    let csrf = page
        .split_once(marker)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(v, _)| v.to_owned())
        .ok_or_else(|| format!("no CSRF token on the login page: {}", shorten(&page)))?;
    let res = shared
        .browser
        .post(shared.url("/o/login/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .map_err(|e| format!("login: {e}"))?;
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    if status != StatusCode::OK || !body.contains("You are signed in as") {
        return Err(format!("login refused: {status}: {}", shorten(&body)));
    }
    Ok(())
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let cc = split_pair(&args.cc_client, "--cc-client");
    let code = split_pair(&args.code_client, "--code-client");
    let (username, password) = split_pair(&args.user, "--user");
    let client = || {
        reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::none())
    };
    let shared = Arc::new(Shared {
        api: client().build().expect("HTTP client"),
        browser: client().cookie_store(true).build().expect("HTTP client"),
        cc,
        code,
        stats: Stats::new(),
        stop: AtomicBool::new(false),
        args,
    });
    if let Err(e) = log_in(&shared, &username, &password).await {
        eprintln!("FAIL: {e}");
        return std::process::ExitCode::FAILURE;
    }
    let args = &shared.args;
    let duration = args.duration.max(1);
    let every = args.report_every.max(1);
    // The RSS check compares the window after warm-up with the last one. A run too short
    // for both (a quick run) compares its second third with its last, for information
    // only: the caches are still filling then.
    let rss_checked = duration >= args.warmup + 2 * every;
    let (warmup, window) = if rss_checked {
        (args.warmup, every)
    } else {
        let third = (duration / 3).max(1);
        (third, third)
    };

    let start = Instant::now();
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let sampler = args.pid.map(|pid| {
        let samples = samples.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(2));
            loop {
                tick.tick().await;
                if let Some(s) = sample(pid, start.elapsed().as_secs_f64()) {
                    samples.lock().unwrap().push(s);
                }
            }
        })
    });
    let workers: Vec<_> = (0..args.workers.max(1))
        .map(|i| {
            let w = Worker {
                shared: shared.clone(),
                rng: StdRng::seed_from_u64(unix_now() ^ (i as u64).wrapping_mul(0x9e37_79b9)),
                ledger: Vec::new(),
                cc: VecDeque::new(),
                pairs: VecDeque::new(),
                dead: VecDeque::new(),
            };
            tokio::spawn(w.run())
        })
        .collect();

    // One line per period: requests per second, in all and by kind, and the RSS.
    let mut table = String::new();
    let _ = writeln!(
        table,
        "| {} | requests/s | {} | failures | server RSS (MiB, mean) | server CPU | load average |",
        if every == 60 { "minute" } else { "seconds" },
        GROUPS.join(" | ")
    );
    let _ = writeln!(
        table,
        "|---:|---:|{}---:|---:|---:|---:|",
        "---:|".repeat(GROUPS.len())
    );
    let mut last = [0u64; KINDS.len()];
    let mut last_failures = 0;
    let mut t0 = 0u64;
    let mut last_cpu = args.pid.and_then(cpu_seconds);
    while t0 < duration {
        let t1 = (t0 + every).min(duration);
        tokio::time::sleep_until((start + Duration::from_secs(t1)).into()).await;
        let now = shared.stats.per_kind();
        let secs = (t1 - t0) as f64;
        let mut groups = [0u64; GROUPS.len()];
        for k in KINDS {
            groups[k.group()] += now[k as usize] - last[k as usize];
        }
        let total: u64 = groups.iter().sum();
        let failures = shared.stats.failures.load(Ordering::Relaxed);
        let rss = mean_rss(&samples.lock().unwrap(), t0 as f64, t1 as f64);
        let rss = rss.map_or("-".into(), |r| format!("{:.1}", mib(r)));
        let label = if every == 60 {
            format!("{}", t1.div_ceil(60))
        } else {
            format!("{t0}-{t1}")
        };
        let cpu = args.pid.and_then(cpu_seconds);
        let cpu_share = match (last_cpu, cpu) {
            (Some(a), Some(b)) => format!("{:.0} %", 100.0 * (b - a) / secs),
            _ => "-".into(),
        };
        last_cpu = cpu;
        let load = load_average().map_or("-".into(), |l| format!("{l:.1}"));
        let row = format!(
            "| {label} | {:.0} | {} | {} | {rss} | {cpu_share} | {load} |",
            total as f64 / secs,
            groups
                .iter()
                .map(|g| format!("{:.0}", *g as f64 / secs))
                .collect::<Vec<_>>()
                .join(" | "),
            failures - last_failures
        );
        println!("{row}");
        let _ = writeln!(table, "{row}");
        last = now;
        last_failures = failures;
        t0 = t1;
    }
    shared.stop.store(true, Ordering::Relaxed);
    let mut ledger = Vec::new();
    for w in workers {
        ledger.extend(w.await.expect("worker"));
    }
    let load_secs = start.elapsed().as_secs_f64();

    // Every token, introspected once more.
    let checked_at = unix_now();
    let ledger = Arc::new(ledger);
    let next = Arc::new(AtomicUsize::new(0));
    let outcome = Arc::new(Mutex::new(Vec::<(Expect, bool, Option<bool>)>::new()));
    let check_start = Instant::now();
    let checkers: Vec<_> = (0..shared.args.check_concurrency.max(1))
        .map(|_| {
            let (ledger, next, outcome, shared) = (
                ledger.clone(),
                next.clone(),
                outcome.clone(),
                shared.clone(),
            );
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(t) = ledger.get(i) else { break };
                    if t.expect == Expect::Unknown {
                        mine.push((t.expect, t.refresh, None));
                        continue;
                    }
                    let answer = introspect_final(&shared, &t.token).await;
                    let active = answer.as_ref().ok().copied();
                    mine.push((t.expect, t.refresh, active));
                    let expired = t.expires_at.is_some_and(|e| e <= checked_at);
                    let want = t.expect == Expect::Live && !expired;
                    // Within a second of `exp` either answer is right.
                    let edge = t.expect == Expect::Live
                        && t.expires_at.is_some_and(|e| e.abs_diff(checked_at) <= 1);
                    match answer {
                        Ok(a) if a == want || edge => {}
                        Ok(a) => shared.stats.fail(format!(
                            "final check: a {:?} {} token of the {:?} client is active={a}",
                            t.expect,
                            if t.refresh { "refresh" } else { "access" },
                            t.client,
                        )),
                        Err(e) => shared
                            .stats
                            .fail(format!("final check: introspection: {e}")),
                    }
                }
                outcome.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for c in checkers {
        c.await.expect("checker");
    }
    let check_secs = check_start.elapsed().as_secs_f64();
    let outcome = outcome.lock().unwrap().clone();
    // The RSS keeps being sampled during the final check: it looks up every token once,
    // far more than the token cache holds.
    if let Some(s) = sampler {
        s.abort();
    }
    let (samples, check_samples): (Vec<Sample>, Vec<Sample>) = samples
        .lock()
        .unwrap()
        .iter()
        .copied()
        .partition(|s| s.t < load_secs);

    // The summary.
    let stats = &shared.stats;
    println!("\n{table}");
    println!("| kind | requests | per second | {} |", CLASSES.join(" | "));
    println!("|---|---:|---:|{}", "---:|".repeat(CLASSES.len()));
    let mut total = 0;
    let mut server_errors = 0;
    for k in KINDS {
        let c: Vec<u64> = stats.counts[k as usize]
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let n: u64 = c.iter().sum();
        total += n;
        server_errors += c[3];
        println!(
            "| {} | {n} | {:.1} | {} |",
            k.name(),
            n as f64 / load_secs,
            c.iter().map(u64::to_string).collect::<Vec<_>>().join(" | ")
        );
    }
    println!("| all | {total} | {:.0} | |\n", total as f64 / load_secs);
    let count = |e: Expect, refresh: bool| {
        outcome
            .iter()
            .filter(|o| o.0 == e && o.1 == refresh)
            .count()
    };
    let active = |e: Expect, refresh: bool| {
        outcome
            .iter()
            .filter(|o| o.0 == e && o.1 == refresh && o.2 == Some(true))
            .count()
    };
    println!(
        "final check: {} tokens introspected in {check_secs:.1} s ({} workers, {load_secs:.0} s of load)",
        outcome.len(),
        shared.args.workers
    );
    for (e, name) in [
        (Expect::Live, "live"),
        (Expect::Revoked, "revoked"),
        (Expect::RotatedAway, "rotated away"),
        (
            Expect::Unknown,
            "unknown (a request about it failed; not checked)",
        ),
    ] {
        for refresh in [false, true] {
            let n = count(e, refresh);
            if n > 0 {
                println!(
                    "  {name} {} tokens: {n}, active: {}",
                    if refresh { "refresh" } else { "access" },
                    active(e, refresh)
                );
            }
        }
    }

    let mut verdict = Vec::new();
    if server_errors > 0 {
        verdict.push(format!("{server_errors} answers were 5xx"));
    }
    let failures = stats.failures.load(Ordering::Relaxed);
    if failures > 0 {
        verdict.push(format!("{failures} failed checks"));
    }
    if let (Some(first), Some(end)) = (
        mean_rss(&samples, warmup as f64, (warmup + window) as f64),
        mean_rss(&samples, (duration - window) as f64, duration as f64 + 1.0),
    ) {
        let change = 100.0 * (end - first) / first;
        let peak = samples.iter().map(|s| s.rss).max().unwrap_or(0);
        let (w0, w1) = (warmup as f64, (warmup + window) as f64);
        let (e0, e1) = ((duration - window) as f64, duration as f64 + 1.0);
        println!(
            "server RSS: {:.1} MiB at the start, mean {:.1} MiB in {warmup}-{} s (after warm-up; {}), \
             mean {:.1} MiB in the last {window} s ({}; {change:+.1} %), peak {:.1} MiB",
            mib(samples.first().map_or(0, |s| s.rss) as f64),
            mib(first),
            warmup + window,
            parts(&samples, w0, w1),
            mib(end),
            parts(&samples, e0, e1),
            mib(peak as f64)
        );
        if !rss_checked {
            println!(
                "  (not checked: a run shorter than {} s ends before the caches are warm)",
                shared.args.warmup + 2 * every
            );
        } else if change.abs() > shared.args.rss_tolerance {
            verdict.push(format!(
                "RSS changed by {change:+.1} % (more than {} %)",
                shared.args.rss_tolerance
            ));
        }
        if let Some(peak) = check_samples.iter().map(|s| s.rss).max() {
            println!(
                "server RSS during the final check: peak {:.1} MiB, {:.1} MiB at its end",
                mib(peak as f64),
                mib(check_samples.last().map_or(0, |s| s.rss) as f64)
            );
        }
    } else if shared.args.pid.is_some() {
        verdict.push("no RSS samples".to_owned());
    }
    let messages = stats.messages.lock().unwrap();
    for m in messages.iter() {
        println!("  failure: {m}");
    }
    if verdict.is_empty() {
        let rss = if rss_checked { ", RSS flat" } else { "" };
        println!("PASS: no 5xx, no lost token{rss}");
        std::process::ExitCode::SUCCESS
    } else {
        println!("FAIL: {}", verdict.join("; "));
        std::process::ExitCode::FAILURE
    }
}

/// The final check's introspection (not counted in the load's figures): `active`.
async fn introspect_final(shared: &Shared, token: &str) -> Result<bool, String> {
    let (id, secret) = shared.creds(Client::Cc);
    let res = shared
        .api
        .post(shared.url("/o/introspect/"))
        .basic_auth(id, Some(secret))
        .form(&[("token", token)])
        .send()
        .await
        .map_err(|e| format!("no answer: {}", chain(&e)))?;
    let status = res.status();
    let body = res.text().await.unwrap_or_default();
    if status != StatusCode::OK {
        return Err(format!("{status}: {}", shorten(&body)));
    }
    serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|v| v["active"].as_bool())
        .ok_or_else(|| format!("no active member: {}", shorten(&body)))
}
