//! The `oauth-toolkit` binary: `migrate`, `createapplication` (one test per validation
//! rule, with exit code and message) and `cleartokens`.
#![cfg(feature = "cli")]

use std::path::Path;
use std::process::{Command, Output};

use tower_oauth_toolkit::hashers::{check_client_secret, is_hashed};
use tower_oauth_toolkit::store::sql::SqlStore;
use tower_oauth_toolkit::store::Store;

struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    /// A migrated database (`oauth-toolkit migrate`: only it and `serve` create one).
    fn new() -> Self {
        let db = Db::empty();
        let out = db.run(&["migrate"]);
        assert!(out.status.success(), "migrate: {}", stderr(&out));
        db
    }
    /// No database file yet.
    fn empty() -> Self {
        Db {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("cli.db")
    }
    fn url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cli.db").display())
    }
    fn run(&self, args: &[&str]) -> Output {
        self.run_env(args, &[])
    }
    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_oauth-toolkit"));
        cmd.args(args)
            .env("DATABASE_URL", self.url())
            .env("RUST_LOG", "info");
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("OAUTH2_PROVIDER_")) {
            cmd.env_remove(k);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("run oauth-toolkit")
    }
    async fn store(&self) -> SqlStore {
        SqlStore::connect(&self.url()).await.unwrap()
    }
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs createapplication with bad input: exit code 2, the message, nothing saved.
async fn rejected(args: &[&str], env: &[(&str, &str)], message: &str) {
    let db = Db::new();
    let mut full = vec!["createapplication"];
    full.extend_from_slice(args);
    let out = db.run_env(&full, env);
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: exit code; stderr: {err}"
    );
    assert!(
        err.contains("Please correct the following errors:"),
        "{err}"
    );
    assert!(
        err.contains(message),
        "{args:?}: expected {message:?} in\n{err}"
    );
    assert!(err.contains("Nothing was saved."), "{err}");
    assert!(
        db.store()
            .await
            .list_applications()
            .await
            .unwrap()
            .is_empty(),
        "nothing saved"
    );
}

#[tokio::test]
async fn rejects_an_unknown_client_type() {
    rejected(
        &["secret", "password"],
        &[],
        "client_type: \"secret\" is not a valid client type",
    )
    .await;
}

#[tokio::test]
async fn rejects_an_unknown_grant_type() {
    rejected(
        &["public", "magic"],
        &[],
        "authorization_grant_type: \"magic\" is not a valid authorization grant type",
    )
    .await;
}

#[tokio::test]
async fn requires_redirect_uris_for_redirecting_grants() {
    for grant in ["authorization-code", "implicit", "openid-hybrid"] {
        rejected(
            &["public", grant],
            &[],
            &format!("redirect_uris: redirect URIs are required for the {grant} grant type"),
        )
        .await;
    }
}

#[tokio::test]
async fn rejects_a_redirect_uri_scheme_not_allowed() {
    rejected(
        &["public", "authorization-code", "--redirect-uris", "https://ok.example/cb ftp://files.example/cb"],
        &[],
        "redirect_uris: \"ftp://files.example/cb\": scheme \"ftp\" is not in ALLOWED_REDIRECT_URI_SCHEMES",
    )
    .await;
    // The setting decides.
    rejected(
        &[
            "public",
            "authorization-code",
            "--redirect-uris",
            "http://app.example/cb",
        ],
        &[("OAUTH2_PROVIDER_ALLOWED_REDIRECT_URI_SCHEMES", "https")],
        "scheme \"http\" is not in ALLOWED_REDIRECT_URI_SCHEMES",
    )
    .await;
}

#[tokio::test]
async fn rejects_a_redirect_uri_with_a_fragment() {
    rejected(
        &[
            "public",
            "authorization-code",
            "--redirect-uris",
            "https://app.example/cb#x",
        ],
        &[],
        "redirect URIs must not contain fragments",
    )
    .await;
}

#[tokio::test]
async fn rejects_a_relative_redirect_uri() {
    rejected(
        &["public", "implicit", "--redirect-uris", "/callback"],
        &[],
        "is not an absolute URI",
    )
    .await;
}

#[tokio::test]
async fn rejects_a_bad_post_logout_redirect_uri() {
    rejected(
        &["public", "password", "--post-logout-redirect-uris", "javascript:alert(1)"],
        &[],
        "post_logout_redirect_uris: \"javascript:alert(1)\": scheme \"javascript\" is not in ALLOWED_REDIRECT_URI_SCHEMES",
    )
    .await;
}

#[tokio::test]
async fn rejects_an_origin_outside_allowed_schemes() {
    rejected(
        &[
            "public",
            "password",
            "--allowed-origins",
            "http://spa.example",
        ],
        &[],
        "allowed_origins: \"http://spa.example\": scheme \"http\" is not in ALLOWED_SCHEMES",
    )
    .await;
    rejected(
        &[
            "public",
            "password",
            "--allowed-origins",
            "https://spa.example/app",
        ],
        &[],
        "an origin is scheme://host[:port]",
    )
    .await;
}

#[tokio::test]
async fn rs256_needs_the_rsa_key() {
    rejected(
        &[
            "confidential",
            "authorization-code",
            "--redirect-uris",
            "https://a.example/cb",
            "--algorithm",
            "RS256",
        ],
        &[],
        "algorithm: RS256 needs OIDC_RSA_PRIVATE_KEY to be set",
    )
    .await;
    let db = Db::new();
    let pem = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/rsa_private.pem"),
    )
    .unwrap();
    let out = db.run_env(
        &[
            "createapplication",
            "confidential",
            "authorization-code",
            "--redirect-uris",
            "https://a.example/cb",
            "--algorithm",
            "RS256",
        ],
        &[("OAUTH2_PROVIDER_OIDC_RSA_PRIVATE_KEY", &pem)],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn hs256_rules() {
    rejected(
        &[
            "public",
            "authorization-code",
            "--redirect-uris",
            "https://a.example/cb",
            "--algorithm",
            "HS256",
            "--no-hash-client-secret",
        ],
        &[],
        "algorithm: HS256 cannot be used with public clients",
    )
    .await;
    rejected(
        &[
            "confidential",
            "openid-hybrid",
            "--redirect-uris",
            "https://a.example/cb",
            "--algorithm",
            "HS256",
            "--no-hash-client-secret",
        ],
        &[],
        "algorithm: HS256 cannot be used with the openid-hybrid grant type",
    )
    .await;
    rejected(
        &[
            "confidential",
            "authorization-code",
            "--redirect-uris",
            "https://a.example/cb",
            "--algorithm",
            "HS256",
        ],
        &[],
        "HS256 signs with the client secret, which must be stored unhashed",
    )
    .await;
    rejected(
        &["confidential", "password", "--algorithm", "RS512"],
        &[],
        "algorithm: \"RS512\" is not a valid algorithm",
    )
    .await;

    // Allowed: confidential, code grant, unhashed secret — stored as given.
    let db = Db::new();
    let out = db.run(&[
        "createapplication",
        "confidential",
        "authorization-code",
        "--redirect-uris",
        "https://a.example/cb",
        "--algorithm",
        "HS256",
        "--no-hash-client-secret",
        "--client-secret",
        "shared-secret-value",
        "--client-id",
        "hs",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let app = db
        .store()
        .await
        .find_application_by_client_id("hs")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(app.client_secret, "shared-secret-value");
    assert!(!app.hash_client_secret);
}

#[tokio::test]
async fn client_credentials_needs_a_confidential_client() {
    rejected(
        &["public", "client-credentials"],
        &[],
        "client_type: the client-credentials grant needs a confidential client",
    )
    .await;
}

#[tokio::test]
async fn rejects_a_client_id_unusable_in_basic_auth() {
    rejected(
        &["public", "password", "--client-id", "a:b"],
        &[],
        "client_id: must not contain ':'",
    )
    .await;
}

#[tokio::test]
async fn rejects_a_duplicate_client_id_and_saves_nothing() {
    let db = Db::new();
    let ok = db.run(&[
        "createapplication",
        "public",
        "password",
        "--client-id",
        "dup",
    ]);
    assert!(ok.status.success());
    let again = db.run(&[
        "createapplication",
        "confidential",
        "password",
        "--client-id",
        "dup",
    ]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("client_id: an application with client id \"dup\" already exists")
    );
    let apps = db.store().await.list_applications().await.unwrap();
    assert_eq!(apps.len(), 1);
    assert_eq!(
        apps[0].client_type.as_str(),
        "public",
        "the first one is untouched"
    );
}

#[tokio::test]
async fn rejects_an_unknown_user_and_accepts_id_or_username() {
    rejected(
        &["public", "password", "--user", "nobody"],
        &[],
        "user: there is no user with id or username \"nobody\"",
    )
    .await;
    let db = Db::new();
    assert!(db.run(&["migrate"]).status.success());
    let store = db.store().await;
    let user = store
        .create_user(tower_oauth_toolkit::model::NewUser {
            username: "alice".into(),
            email: String::new(),
            password_hash: "x".into(),
            is_active: true,
            date_joined: tower_oauth_toolkit::model::Timestamp::now(),
        })
        .await
        .unwrap();
    for who in ["alice".to_string(), user.id.to_string()] {
        let out = db.run(&[
            "createapplication",
            "public",
            "password",
            "--user",
            &who,
            "--json",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(v["user_id"], user.id);
    }
}

#[tokio::test]
async fn every_error_is_listed_together() {
    let db = Db::new();
    let out = db.run(&[
        "createapplication",
        "public",
        "implicit",
        "--redirect-uris",
        "ftp://x/cb#frag",
        "--allowed-origins",
        "http://o.example",
        "--algorithm",
        "HS256",
        "--client-id",
        "bad id",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for field in [
        "client_id:",
        "redirect_uris:",
        "allowed_origins:",
        "algorithm: HS256 cannot be used with public clients",
        "algorithm: HS256 cannot be used with the implicit grant type",
    ] {
        assert!(err.contains(field), "missing {field:?} in\n{err}");
    }
}

#[tokio::test]
async fn success_prints_id_and_secret_once_and_stores_a_hash() {
    let db = Db::new();
    let out = db.run(&[
        "createapplication",
        "confidential",
        "authorization-code",
        "--redirect-uris",
        "https://app.example/cb http://127.0.0.1/cb",
        "--name",
        "My App",
        "--skip-authorization",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("New application My App created successfully.\n"),
        "{text}"
    );
    let client_id = text
        .lines()
        .find_map(|l| l.strip_prefix("client_id: "))
        .unwrap();
    let secret = text
        .lines()
        .find_map(|l| l.strip_prefix("client_secret: "))
        .unwrap();
    assert_eq!(client_id.len(), 40);
    assert_eq!(secret.len(), 128, "CLIENT_SECRET_GENERATOR_LENGTH");
    let app = db
        .store()
        .await
        .find_application_by_client_id(client_id)
        .await
        .unwrap()
        .unwrap();
    assert!(is_hashed(&app.client_secret) && app.client_secret.starts_with("$argon2id$"));
    assert!(!app.client_secret.contains(secret));
    assert!(check_client_secret(&app, secret));
    assert!(app.skip_authorization);
    assert_eq!(
        app.redirect_uri_list().collect::<Vec<_>>(),
        ["https://app.example/cb", "http://127.0.0.1/cb"]
    );

    // A secret given on the command line is not echoed, and is stored hashed too.
    let out = db.run(&[
        "createapplication",
        "confidential",
        "password",
        "--client-secret",
        "given-secret",
        "--client-id",
        "given",
    ]);
    assert!(out.status.success());
    assert!(!stdout(&out).contains("given-secret"));
    assert!(stdout(&out).contains("New application given created successfully."));
    let app = db
        .store()
        .await
        .find_application_by_client_id("given")
        .await
        .unwrap()
        .unwrap();
    assert!(check_client_secret(&app, "given-secret") && is_hashed(&app.client_secret));
}

#[tokio::test]
async fn json_output_parses() {
    let db = Db::new();
    let out = db.run(&[
        "createapplication",
        "confidential",
        "client-credentials",
        "--json",
        "--name",
        "svc",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("one JSON object");
    assert_eq!(v["name"], "svc");
    assert_eq!(v["authorization_grant_type"], "client-credentials");
    assert_eq!(v["client_secret"].as_str().unwrap().len(), 128);
    let bad = db.run(&[
        "createapplication",
        "public",
        "client-credentials",
        "--json",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_str(stdout(&bad).trim()).expect("errors as JSON");
    assert_eq!(v["errors"][0]["field"], "client_type");
}

#[tokio::test]
async fn public_clients_get_no_secret() {
    let db = Db::new();
    let out = db.run(&["createapplication", "public", "device-code", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(v["client_secret"].is_null());
    assert_eq!(
        v["authorization_grant_type"],
        "urn:ietf:params:oauth:grant-type:device_code"
    );
}

#[test]
fn bad_settings_fail_with_the_setting_name() {
    let db = Db::new();
    let out = db.run_env(
        &["cleartokens"],
        &[("OAUTH2_PROVIDER_CLEAR_EXPIRED_TOKENS_BATCH_SIZE", "many")],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("CLEAR_EXPIRED_TOKENS_BATCH_SIZE"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn migrate_is_idempotent() {
    let db = Db::empty();
    let first = db.run(&["migrate"]);
    assert!(first.status.success());
    assert!(
        stdout(&first).contains("Created a new database"),
        "{}",
        stdout(&first)
    );
    assert!(stdout(&first).contains("Applied 3 migration(s)"));
    let second = db.run(&["migrate"]);
    assert!(stdout(&second).contains("Applied 0 migration(s)"));
    assert!(!stdout(&second).contains("Created"), "{}", stdout(&second));
}

/// Only `migrate` and `serve` create a database (issue 12): the other commands refuse a
/// missing file, one without tables, and one migrated by a newer version, with a hint,
/// and create nothing.
#[tokio::test]
async fn commands_other_than_migrate_and_serve_need_a_migrated_database() {
    let commands: [&[&str]; 3] = [
        &["cleartokens"],
        &["createapplication", "confidential", "client-credentials"],
        &["createuser", "alice", "--password", "a-long-password"],
    ];
    // Missing.
    let db = Db::empty();
    for args in commands {
        let out = db.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("no database at"), "{args:?}: {err}");
        assert!(err.contains("oauth-toolkit migrate"), "{args:?}: {err}");
        assert!(!db.path().exists(), "{args:?} created the file");
    }
    // A file without the tables (an empty SQLite database).
    std::fs::write(db.path(), b"").unwrap();
    for args in commands {
        let out = db.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("has no tables yet"), "{args:?}: {err}");
        assert!(err.contains("oauth-toolkit migrate"), "{args:?}: {err}");
    }
    // Migrated by a newer version: refused by every command, migrate and serve too.
    assert!(db.run(&["migrate"]).status.success());
    let store = db.store().await;
    store.close().await;
    let raw = sqlx::SqlitePool::connect(&db.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    let newer: [&[&str]; 5] = [
        commands[0],
        commands[1],
        commands[2],
        &["migrate"],
        &["serve", "--bind", "127.0.0.1:0"],
    ];
    for args in newer {
        let out = db.run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("was migrated by a newer oauth-toolkit") && err.contains("99990101000000"),
            "{args:?}: {err}"
        );
    }
}

/// `sqlite://` with no path is refused, not a throwaway in-memory database (issue 12).
#[test]
fn an_empty_sqlite_path_is_refused() {
    let db = Db::empty();
    for args in [&["migrate"][..], &["cleartokens"][..]] {
        let out = db.run_env(args, &[("DATABASE_URL", "sqlite://")]);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("names no database file"),
            "{}",
            stderr(&out)
        );
    }
}

/// An unreachable PostgreSQL fails fast, with the cause (issue 12).
#[cfg(feature = "postgres")]
#[test]
fn an_unreachable_postgres_fails_fast_with_the_cause() {
    let db = Db::empty();
    // A port nothing listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:secret-pw@127.0.0.1:{port}/db");
    let start = std::time::Instant::now();
    let out = db.run_env(&["migrate"], &[("DATABASE_URL", url.as_str())]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{err}"
    );
    assert!(
        err.contains("cannot connect to PostgreSQL at 127.0.0.1"),
        "{err}"
    );
    assert!(err.to_lowercase().contains("refused"), "the cause: {err}");
    assert!(!err.contains("secret-pw"), "no password in messages: {err}");
}

#[test]
fn cleartokens_reports_json_and_warns_without_idle_expiry() {
    let db = Db::new();
    let out = db.run(&["cleartokens", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("WARNING: REFRESH_TOKEN_EXPIRE_SECONDS is not set"));
    let v: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["total"], 0);
    assert_eq!(v["steps"].as_array().unwrap().len(), 8);
    // One log line per step; no progress bar when stderr is not a terminal.
    let err = stderr(&out);
    assert!(err.contains("Expired access tokens deleted"));
    assert!(
        !err.contains('\r') && !err.contains("[="),
        "no progress bar off a terminal"
    );

    let quiet = db.run_env(
        &["cleartokens"],
        &[("OAUTH2_PROVIDER_REFRESH_TOKEN_EXPIRE_SECONDS", "86400")],
    );
    assert!(quiet.status.success());
    assert!(!stderr(&quiet).contains("WARNING"));
    assert!(stdout(&quiet).starts_with("Deleted 0 expired or revoked rows"));
}

/// A public client with a client secret is refused (it cannot keep one); a generated
/// secret stored unhashed is not announced as "only its hash is saved" (issue 12).
#[tokio::test]
async fn public_secrets_are_refused_and_unhashed_secrets_are_told_as_such() {
    rejected(
        &["public", "password", "--client-secret", "a-secret-value"],
        &[],
        "client_secret: a public client has no secret (RFC 6749 §2.1)",
    )
    .await;

    let db = Db::new();
    let out = db.run(&[
        "createapplication",
        "confidential",
        "client-credentials",
        "--no-hash-client-secret",
        "--client-id",
        "plain",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(!text.contains("only its hash"), "{text}");
    assert!(text.contains("unhashed"), "{text}");
    let app = db
        .store()
        .await
        .find_application_by_client_id("plain")
        .await
        .unwrap()
        .unwrap();
    assert!(!app.hash_client_secret && !is_hashed(&app.client_secret));

    let out = db.run(&[
        "createapplication",
        "confidential",
        "client-credentials",
        "--client-id",
        "hashed",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("only its hash is saved"));
}
