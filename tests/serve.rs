//! `oauth-toolkit serve` and `createuser`, as a user runs them: the binary on a fresh
//! SQLite file, a user and an application created with the CLI, a token from the token
//! endpoint, the demo API called with it, and a graceful stop on SIGTERM.
#![cfg(all(feature = "cli", unix))]

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    /// A migrated database (only `migrate` and `serve` create one).
    fn new() -> Self {
        let db = Db {
            dir: tempfile::tempdir().unwrap(),
        };
        let out = db.run(&["migrate"]);
        assert!(out.status.success(), "migrate: {}", text(&out.stderr));
        db
    }
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-toolkit"));
        cmd.args(args)
            .current_dir(self.dir.path())
            .env(
                "DATABASE_URL",
                format!("sqlite://{}", self.dir.path().join("serve.db").display()),
            )
            .env("RUST_LOG", "info");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OAUTH2_PROVIDER_")) {
            cmd.env_remove(k);
        }
        cmd
    }
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn createuser_rules() {
    let db = Db::new();
    let ok = db.run(&[
        "createuser",
        "alice",
        "--password",
        "a-long-password",
        "--email",
        "a@example.com",
    ]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("Created user \"alice\""),
        "{}",
        text(&ok.stdout)
    );
    for (args, message) in [
        (
            &["createuser", "alice", "--password", "another-password"][..],
            "already exists",
        ),
        (
            &["createuser", "bob", "--password", "short"][..],
            "at least 8 characters",
        ),
        (
            &["createuser", "bad name", "--password", "a-long-password"][..],
            "invalid username",
        ),
        (&["createuser", "carol"][..], "--password-stdin"),
    ] {
        let out = db.run(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    let mut child = db
        .cmd(&["createuser", "dave", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"password-from-stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).contains("password-from-stdin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_end_to_end() {
    let db = Db::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut server = db
        .cmd(&["serve", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let start = Instant::now();
    loop {
        if http.get(format!("{base}/api/hello")).send().await.is_ok() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = db.run(&[
        "createuser",
        "alice",
        "--password",
        "choose-a-long-password",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = db.run(&[
        "createapplication",
        "confidential",
        "client-credentials",
        "--name",
        "demo",
        "--client-id",
        "demo",
        "--client-secret",
        "demo-secret-change-me",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let res = http
        .post(format!("{base}/o/token/"))
        .basic_auth("demo", Some("demo-secret-change-me"))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token: serde_json::Value = res.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    let res = http
        .get(format!("{base}/api/hello"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    // Exactly what the README shows.
    assert_eq!(
        res.text().await.unwrap(),
        r#"{"client_id":"demo","hello":"client","scope":"read"}"#
    );
    let res = http.get(format!("{base}/api/hello")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));

    // SIGTERM: a graceful exit with status 0.
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.wait().unwrap();
    let mut log = String::new();
    std::io::Read::read_to_string(server.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    assert!(
        log.contains("createuser"),
        "empty database: the hint was printed\n{log}"
    );
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        !log.contains("demo-secret-change-me") && !log.contains(access),
        "no secret in the log"
    );
}

/// A client that never finishes its headers is cut off after --header-read-timeout,
/// while normal requests are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = Db::new();
    let port = free_port();
    let mut server = db
        .cmd(&[
            "serve",
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--header-read-timeout",
            "1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/hello");
    let start = Instant::now();
    while http.get(&url).send().await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    slow.write_all(b"GET /api/hello HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 256];
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read(&mut buf)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "the connection was not closed within 5 s");
    assert!(
        elapsed >= Duration::from_millis(800),
        "closed too early: {elapsed:?}"
    );
    // Either a close (0 bytes / reset) or an error answer; never a 200.
    if let Ok(Ok(n)) = read {
        assert!(!String::from_utf8_lossy(&buf[..n]).contains(" 200 "));
    }
    // A new connection: the pooled one idled past the 1 s keep-alive limit and may be
    // closed by now (that is the header timeout too).
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert_eq!(
        fresh.get(&url).send().await.unwrap().status(),
        401,
        "still serving"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    assert!(server.wait().unwrap().success());
}

/// With nothing reading its stderr any more (a closed log pipe), `serve` still starts
/// (the empty-database hint), answers every request with request logging on, and stops
/// gracefully on SIGTERM: writes to stderr never panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_stderr_neither_panics_nor_stops_the_server() {
    let db = Db::new();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // A pipe whose reading end is closed before the server starts: every write to
    // stderr fails with EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut server = db
        .cmd(&["serve", "-v", "--bind", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(writer)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let start = Instant::now();
    while http.get(format!("{base}/api/hello")).send().await.is_err() {
        assert!(
            server.try_wait().unwrap().is_none(),
            "the server exited while starting"
        );
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = db.run(&[
        "createapplication",
        "confidential",
        "client-credentials",
        "--name",
        "demo",
        "--client-id",
        "demo",
        "--client-secret",
        "demo-secret-change-me",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    for _ in 0..3 {
        let res = http
            .post(format!("{base}/o/token/"))
            .basic_auth("demo", Some("demo-secret-change-me"))
            .form(&[("grant_type", "client_credentials"), ("scope", "read")])
            .send()
            .await
            .expect("an answer, although the request log line cannot be written");
        assert_eq!(res.status(), 200);
        let token: serde_json::Value = res.json().await.unwrap();
        let res = http
            .get(format!("{base}/api/hello"))
            .bearer_auth(token["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.wait().unwrap();
    assert!(status.success(), "a graceful exit, not a panic: {status:?}");
}

/// Starts `serve` with `extra` arguments and waits until it answers; the child is killed
/// when dropped.
struct Running {
    child: std::process::Child,
    /// `127.0.0.1:port`.
    addr: String,
    _db: Db,
}

impl Running {
    async fn start(extra: &[&str]) -> Running {
        let db = Db::new();
        let (child, base) = start_serve(&db, extra, &[]).await;
        Running {
            child,
            addr: base.trim_start_matches("http://").to_owned(),
            _db: db,
        }
    }

    /// Sends `head` (and `body`), returns what the server answered before closing or
    /// within `wait`, and how long that took.
    async fn raw(&self, head: &str, body: &[u8], wait: Duration) -> (String, Duration) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(self.addr.as_str())
            .await
            .unwrap();
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body).await.unwrap();
        let start = Instant::now();
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(Ok(n)) =
            tokio::time::timeout(wait.saturating_sub(start.elapsed()), s.read(&mut buf)).await
        {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        (String::from_utf8_lossy(&got).into_owned(), start.elapsed())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A body that trickles in, or never comes after its headers, is cut off after
/// --request-timeout with 408 and a closed connection (issue 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_or_missing_body_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let srv = Running::start(&["--request-timeout", "1"]).await;
    // No body at all after announcing 40 bytes.
    let head = "POST /o/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\n";
    let (answer, took) = srv.raw(head, b"", Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "{took:?}"
    );
    // A trickle: one byte every 300 ms never finishes within the deadline, although each
    // byte comes well within any per-read timeout.
    let mut s = tokio::net::TcpStream::connect(srv.addr.as_str())
        .await
        .unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let start = Instant::now();
    let mut answer = Vec::new();
    for _ in 0..30 {
        if s.write_all(b"g").await.is_err() {
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => answer.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        start.elapsed() < Duration::from_secs(4),
        "{:?}",
        start.elapsed()
    );
    // A whole body in time is served.
    let body = "grant_type=client_credentials&scope=read";
    let (answer, _) = srv
        .raw(
            &format!("POST /o/token/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n", body.len()),
            body.as_bytes(),
            Duration::from_secs(5),
        )
        .await;
    assert!(
        answer.starts_with("HTTP/1.1 401"),
        "no client: invalid_client; {answer}"
    );
}

/// `Expect: 100-continue` with a declared length over the limit is refused with 413 and
/// no `100 Continue`; one under the limit gets its 100 (issue 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expect_continue_over_the_limit_is_413_without_100() {
    let srv = Running::start(&[]).await;
    let (answer, _) = srv
        .raw(
            "POST /o/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\nContent-Length: 50000000\r\n\r\n",
            b"",
            Duration::from_secs(3),
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(!answer.contains("100 Continue"), "{answer}");
    let (answer, _) = srv
        .raw(
            "POST /o/token/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n",
            b"",
            Duration::from_millis(1500),
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 100 Continue"), "{answer}");
}

/// HTTP/1.1 needs exactly one Host header (RFC 9112 §3.2): 400 otherwise; HTTP/1.0 may
/// omit it (issue 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http11_without_host_is_400() {
    let srv = Running::start(&[]).await;
    let wait = Duration::from_secs(3);
    let (answer, _) = srv
        .raw(
            "GET /api/hello HTTP/1.1\r\nConnection: close\r\n\r\n",
            b"",
            wait,
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (answer, _) = srv
        .raw(
            "GET /api/hello HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n",
            b"",
            wait,
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let (answer, _) = srv.raw("GET /api/hello HTTP/1.0\r\n\r\n", b"", wait).await;
    assert!(
        answer.starts_with("HTTP/1.0 401") || answer.starts_with("HTTP/1.1 401"),
        "{answer}"
    );
    let (answer, _) = srv
        .raw(
            "GET /api/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            b"",
            wait,
        )
        .await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

/// `serve` records each connection's peer address, so failed sign-ins are throttled per
/// address too: wrong passwords for two different users from one address lock that
/// address for a third (issue 12).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sign_ins_are_throttled_per_address() {
    let db = Db::new();
    for (user, pw) in [("alice", "alice-password"), ("bob", "bob-password-1")] {
        let out = db.run(&["createuser", user, "--password", pw]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = db.run(&[
        "createapplication",
        "public",
        "password",
        "--client-id",
        "pw",
        "--name",
        "pw",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (server, base) =
        start_serve(&db, &[], &[("OAUTH2_PROVIDER_LOGIN_FAILURE_LIMIT", "2")]).await;
    let http = reqwest::Client::new();
    let url = format!("{base}/o/token/");
    let password = |user: &'static str, pw: &'static str| {
        let (http, url) = (&http, &url);
        async move {
            let res = http
                .post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", "pw"),
                    ("username", user),
                    ("password", pw),
                ])
                .send()
                .await
                .unwrap();
            let status = res.status().as_u16();
            let v: serde_json::Value = res.json().await.unwrap();
            (status, v)
        }
    };
    let (s, v) = password("alice", "wrong-password").await;
    assert_eq!(s, 400, "{v}");
    let (s, v) = password("bob", "wrong-password").await;
    assert_eq!(s, 400, "{v}");
    assert!(!v["error_description"]
        .as_str()
        .unwrap()
        .contains("Too many"));
    // bob and alice have one failure each; the address has two.
    let (s, v) = password("bob", "bob-password-1").await;
    assert_eq!(s, 400, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("Too many"),
        "{v}"
    );
    stop_serve(&db, server);
}

/// The device flow on `serve` as a user sets it up: `createapplication public
/// device-code`, the device authorization endpoint, the metadata naming it; and wrong
/// user codes locking the client address (another user at the same address is refused
/// too, the right code included).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_on_serve_locks_an_address_after_wrong_codes() {
    let db = Db::new();
    for (user, pw) in [("alice", "alice-password"), ("bob", "bob-password-1")] {
        let out = db.run(&["createuser", user, "--password", pw]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let out = db.run(&[
        "createapplication",
        "public",
        "device-code",
        "--client-id",
        "tv",
        "--name",
        "TV",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (server, base) = start_serve(
        &db,
        &[],
        &[("OAUTH2_PROVIDER_DEVICE_USER_CODE_FAILURE_LIMIT", "1")],
    )
    .await;
    let http = reqwest::Client::new();
    let meta: serde_json::Value = http
        .get(format!("{base}/o/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["device_authorization_endpoint"],
        format!("{base}/o/device-authorization/")
    );
    let res = http
        .post(format!("{base}/o/device-authorization/"))
        .form(&[("client_id", "tv"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: serde_json::Value = res.json().await.unwrap();
    let user_code = v["user_code"].as_str().unwrap().to_owned();
    assert_eq!(v["verification_uri"], format!("{base}/o/device/"));

    // Signs in at the device page; returns the browser and the form's CSRF token.
    let sign_in = |user: &'static str, pw: &'static str| {
        let base = base.clone();
        async move {
            let browser = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            // Redirects are followed: the device page sends the visitor to the login page.
            let login = browser
                .get(format!("{base}/o/device/"))
                .send()
                .await
                .unwrap();
            let login_url = login.url().clone();
            assert!(login_url.path().ends_with("/o/login/"), "{login_url}");
            let page = login.text().await.unwrap();
            let mut form = common::html::hidden_fields(&page);
            form.push(("username".into(), user.into()));
            form.push(("password".into(), pw.into()));
            let back = browser.post(login_url).form(&form).send().await.unwrap();
            assert_eq!(back.url().path(), "/o/device/");
            let page = back.text().await.unwrap();
            let csrf = common::html::hidden(&page, "csrfmiddlewaretoken").expect("CSRF token");
            (browser, csrf)
        }
    };
    let (alice, csrf) = sign_in("alice", "alice-password").await;
    let res = alice
        .post(format!("{base}/o/device/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("user_code", "BBBB-BBBB"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "a wrong code");
    let (bob, csrf) = sign_in("bob", "bob-password-1").await;
    let res = bob
        .post(format!("{base}/o/device/"))
        .form(&[
            ("csrfmiddlewaretoken", csrf.as_str()),
            ("user_code", user_code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429, "the address is locked for bob too");
    assert!(res.headers().contains_key("retry-after"));
    stop_serve(&db, server);
}

/// `serve` started on `db` with `args` and `envs`, its log in `serve.log`; waits until it
/// answers.
async fn start_serve(
    db: &Db,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (std::process::Child, String) {
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(db.dir.path().join("serve.log")).unwrap();
    let mut cmd = db.cmd(&["serve", "--bind", &bind]);
    cmd.args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(log);
    let mut server = cmd.spawn().unwrap();
    let base = format!("http://{bind}");
    let http = reqwest::Client::new();
    let start = Instant::now();
    while http.get(format!("{base}/api/hello")).send().await.is_err() {
        assert!(server.try_wait().unwrap().is_none(), "the server exited");
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (server, base)
}

/// SIGTERM, a graceful exit, and the server's log.
fn stop_serve(db: &Db, mut server: std::process::Child) -> String {
    assert!(Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap()
        .success());
    let status = server.wait().unwrap();
    let log = std::fs::read_to_string(db.dir.path().join("serve.log")).unwrap();
    assert!(status.success(), "{status:?}\n{log}");
    log
}

/// A database with one client-credentials application, `demo`, whose tokens live 1 s.
fn db_with_short_lived_tokens() -> Db {
    let db = Db::new();
    assert!(db.run(&["migrate"]).status.success());
    let out = db.run(&[
        "createapplication",
        "confidential",
        "client-credentials",
        "--client-id",
        "demo",
        "--client-secret",
        "demo-secret-change-me",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    db
}

const ONE_SECOND_TOKENS: (&str, &str) = ("OAUTH2_PROVIDER_ACCESS_TOKEN_EXPIRE_SECONDS", "1");

/// Issues a client-credentials token (no refresh token) and returns the number of access
/// token rows.
async fn issue_token(db: &Db, base: &str) -> i64 {
    let res = reqwest::Client::new()
        .post(format!("{base}/o/token/"))
        .basic_auth("demo", Some("demo-secret-change-me"))
        .form(&[("grant_type", "client_credentials"), ("scope", "read")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["expires_in"], 1);
    access_token_rows(db).await
}

/// The access token rows, read straight from the SQLite file.
async fn access_token_rows(db: &Db) -> i64 {
    use sqlx::Connection;
    let url = format!("sqlite://{}", db.dir.path().join("serve.db").display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query_scalar("SELECT COUNT(*) FROM oauth2_access_token")
        .fetch_one(&mut c)
        .await
        .unwrap()
}

/// `serve --cleanup-interval 1` deletes an expired access token (one without a refresh
/// token: DOT's step 4) by itself, without `cleartokens`, and logs the run at INFO.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cleans_up_expired_tokens_in_the_background() {
    let db = db_with_short_lived_tokens();
    let (server, base) = start_serve(&db, &["--cleanup-interval", "1"], &[ONE_SECOND_TOKENS]).await;
    assert_eq!(issue_token(&db, &base).await, 1);
    let start = Instant::now();
    while access_token_rows(&db).await > 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the expired token is still there after 10 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let log = stop_serve(&db, server);
    assert!(log.contains("expired-token cleanup running"), "{log}");
    let run = log
        .lines()
        .find(|l| l.contains("expired tokens cleared"))
        .unwrap_or_else(|| panic!("the run that deleted is logged at INFO\n{log}"));
    assert!(run.contains("INFO"), "{run}");
    assert!(run.contains("expired_access_tokens=1"), "{run}");
    assert!(run.contains("millis="), "{run}");
    // Runs that delete nothing, and the per-step lines, stay at DEBUG.
    assert!(!log.contains("Expired access tokens deleted"), "{log}");
    assert_eq!(log.matches("expired tokens cleared").count(), 1, "{log}");
}

/// `serve --cleanup-interval 0`: no background cleanup; the expired row stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_cleanup_interval_0_disables_it() {
    let db = db_with_short_lived_tokens();
    let (server, base) = start_serve(&db, &["--cleanup-interval", "0"], &[ONE_SECOND_TOKENS]).await;
    assert_eq!(issue_token(&db, &base).await, 1);
    // Expired after 1 s; an interval of 1 s would have deleted it by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(access_token_rows(&db).await, 1, "not cleaned up");
    let log = stop_serve(&db, server);
    assert!(!log.contains("expired-token cleanup"), "{log}");
    assert!(!log.contains("expired tokens cleared"), "{log}");
}

/// `serve --issuer URL`: the server's public URL, with the provider under `/o`: the
/// issuer, the endpoints of the metadata documents and the demo API's resource metadata
/// all name `URL/o`, where `serve` answers them; and a misconfigured
/// OAUTH2_PROTECTED_RESOURCE_IDENTIFIER stops it at start with the setting's name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_issuer_is_the_public_url_with_the_provider_under_o() {
    let db = Db::new();
    let (server, base) = start_serve(&db, &["--issuer", "https://auth.example.com"], &[]).await;
    let http = reqwest::Client::new();
    for path in [
        "/o/.well-known/oauth-authorization-server",
        "/.well-known/oauth-authorization-server/o",
    ] {
        let meta: serde_json::Value = http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(meta["issuer"], "https://auth.example.com/o", "{path}");
        assert_eq!(
            meta["token_endpoint"], "https://auth.example.com/o/token/",
            "{path}"
        );
    }
    let rm: serde_json::Value = http
        .get(format!(
            "{base}/.well-known/oauth-protected-resource/api/hello"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        rm["authorization_servers"],
        serde_json::json!(["https://auth.example.com/o"])
    );
    stop_serve(&db, server);

    let out = db
        .cmd(&["serve", "--bind", "127.0.0.1:0"])
        .env(
            "OAUTH2_PROVIDER_OAUTH2_PROTECTED_RESOURCE_IDENTIFIER",
            "api.example.com",
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OAUTH2_PROTECTED_RESOURCE_IDENTIFIER"),
        "{stderr}"
    );
}
