//! `clear_expired()` and `spawn_cleanup()` on SQLite files and a real PostgreSQL server
//! (and the memory store): DOT 3.4.1's cutoffs under each setting, every batch size
//! deleting the same rows, cleanup racing token issuance, and the background task
//! surviving a database error and stopping cleanly.
#![cfg(all(feature = "sqlite", feature = "postgres"))]

mod common;

use std::sync::Arc;
use std::time::Duration;

use tower_oauth_toolkit::cleanup::{clear_expired, clear_expired_with, spawn_cleanup, NoProgress};
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::memory::MemoryStore;
use tower_oauth_toolkit::store::{CleanupStep, IssueTokens, Store};

const NOW: Timestamp = Timestamp(1_800_000_000);
const DAY: i64 = 86_400;

fn pair(app: &Application, user: &User, name: &str, expires: Timestamp) -> IssueTokens {
    IssueTokens {
        access: NewAccessToken {
            resource: String::new(),
            token_checksum: token_checksum(&format!("{name}-a")),
            application_id: Some(app.id),
            user_id: Some(user.id),
            source_refresh_token_id: None,
            id_token_id: None,
            grant_id: None,
            expires,
            scope: "read".into(),
            created: NOW,
        },
        refresh: Some(NewRefreshToken {
            resource: String::new(),
            token_checksum: token_checksum(&format!("{name}-r")),
            application_id: app.id,
            user_id: Some(user.id),
            access_token_id: None,
            token_family: Some(new_token_family()),
            created: NOW,
        }),
        id_token: None,
    }
}

/// One row per category that a setting decides; returns the tokens' names.
async fn seed<S: Store>(s: &S) {
    let user = s
        .create_user(NewUser {
            username: "u".into(),
            email: String::new(),
            password_hash: "x".into(),
            is_active: true,
            date_joined: NOW,
        })
        .await
        .unwrap();
    let mut new = NewApplication::new("app", ClientType::Confidential, GrantType::Password);
    new.created = NOW;
    let app = s.create_application(new).await.unwrap();
    s.issue_tokens(pair(&app, &user, "live", NOW.add_secs(3600)))
        .await
        .unwrap();
    // Access token expired an hour ago; its refresh token is live (idle clock started).
    s.issue_tokens(pair(&app, &user, "idle-hour", NOW.sub_secs(3600)))
        .await
        .unwrap();
    // Access token expired three days ago.
    s.issue_tokens(pair(&app, &user, "idle-3d", NOW.sub_secs(3 * DAY)))
        .await
        .unwrap();
    // Refresh tokens revoked 10 s, 2 h and 2 days ago.
    for (name, ago) in [("rev-10s", 10), ("rev-2h", 7200), ("rev-2d", 2 * DAY)] {
        let t = s
            .issue_tokens(pair(&app, &user, name, NOW.add_secs(3600)))
            .await
            .unwrap();
        s.revoke_refresh_token(t.refresh.unwrap().id, NOW.sub_secs(ago))
            .await
            .unwrap();
    }
    // Expired access token without refresh token (client credentials).
    let mut cc = pair(&app, &user, "cc", NOW.sub_secs(1));
    cc.refresh = None;
    s.issue_tokens(cc).await.unwrap();
}

async fn survivors<S: Store>(s: &S) -> Vec<String> {
    let mut alive = Vec::new();
    for name in [
        "live",
        "idle-hour",
        "idle-3d",
        "rev-10s",
        "rev-2h",
        "rev-2d",
        "cc",
    ] {
        if s.find_access_token(&token_checksum(&format!("{name}-a")))
            .await
            .unwrap()
            .is_some()
        {
            alive.push(format!("{name}-a"));
        }
        if s.find_refresh_token(&token_checksum(&format!("{name}-r")))
            .await
            .unwrap()
            .is_some()
        {
            alive.push(format!("{name}-r"));
        }
    }
    alive
}

fn settings(f: impl FnOnce(&mut Settings)) -> Settings {
    let mut s = Settings::default();
    f(&mut s);
    s
}

/// (settings, rows that must survive) per DOT 3.4.1.
fn cases() -> Vec<(&'static str, Settings, Vec<&'static str>)> {
    vec![
        (
            "DOT defaults: grace 0, no idle expiry",
            Settings::default(),
            vec![
                "live-a",
                "live-r",
                "idle-hour-a",
                "idle-hour-r",
                "idle-3d-a",
                "idle-3d-r",
            ],
        ),
        (
            "grace 1 h keeps the recently revoked",
            settings(|s| s.refresh_token_grace_period_seconds = Duration::from_secs(3600)),
            vec![
                "live-a",
                "live-r",
                "idle-hour-a",
                "idle-hour-r",
                "idle-3d-a",
                "idle-3d-r",
                "rev-10s-r",
            ],
        ),
        (
            "idle expiry 1 day removes the 3-day-idle pair",
            settings(|s| s.refresh_token_expire_seconds = Some(Duration::from_secs(DAY as u64))),
            vec!["live-a", "live-r", "idle-hour-a", "idle-hour-r"],
        ),
        (
            "reuse protection keeps tombstones for REFRESH_TOKEN_EXPIRE_SECONDS",
            settings(|s| {
                s.refresh_token_reuse_protection = true;
                s.refresh_token_expire_seconds = Some(Duration::from_secs(DAY as u64));
            }),
            vec![
                "live-a",
                "live-r",
                "idle-hour-a",
                "idle-hour-r",
                "rev-10s-r",
                "rev-2h-r",
            ],
        ),
        (
            "reuse protection without idle expiry keeps every tombstone",
            settings(|s| s.refresh_token_reuse_protection = true),
            vec![
                "live-a",
                "live-r",
                "idle-hour-a",
                "idle-hour-r",
                "idle-3d-a",
                "idle-3d-r",
                "rev-10s-r",
                "rev-2h-r",
                "rev-2d-r",
            ],
        ),
    ]
}

async fn run_cases<S: Store>(mut make: impl AsyncFnMut() -> S) {
    for (label, base, expected) in cases() {
        let mut reference: Option<Vec<String>> = None;
        for batch in [1usize, 7, 10_000] {
            let mut s = base.clone();
            s.clear_expired_tokens_batch_size = batch;
            let store = make().await;
            seed(&store).await;
            let report = clear_expired_with(&store, &s, NOW, &mut NoProgress)
                .await
                .unwrap();
            let alive = survivors(&store).await;
            assert_eq!(alive, expected, "{label}, batch {batch}");
            assert!(!report.cancelled);
            let total = report.total();
            match &reference {
                None => reference = Some(alive),
                Some(r) => assert_eq!(&alive, r, "{label}: batch {batch} differs"),
            }
            assert!(total > 0, "{label}: something was deleted");
        }
    }
}

#[tokio::test]
async fn memory_follows_dot() {
    run_cases(async || MemoryStore::new()).await;
}

#[tokio::test]
async fn sqlite_follows_dot() {
    let mut dirs = Vec::new();
    run_cases(async || {
        let (s, d) = common::sqlite_store().await;
        dirs.push(d);
        s
    })
    .await;
}

#[tokio::test]
async fn postgres_follows_dot() {
    if common::postgres_url().is_none() {
        return;
    }
    run_cases(async || common::postgres_store().await.unwrap()).await;
}

#[tokio::test]
async fn report_names_each_step_and_skips() {
    let store = MemoryStore::new();
    seed(&store).await;
    let report = clear_expired_with(&store, &Settings::default(), NOW, &mut NoProgress)
        .await
        .unwrap();
    let names: Vec<&str> = report.steps.iter().map(|s| s.step).collect();
    assert_eq!(
        names,
        CleanupStep::ALL
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>(),
        "steps run in DOT's order"
    );
    assert_eq!(report.deleted(CleanupStep::RevokedRefreshTokens), 3);
    assert_eq!(report.deleted(CleanupStep::ExpiredAccessTokens), 1);
    let skipped = &report.steps[2];
    assert!(skipped
        .skipped
        .unwrap()
        .contains("REFRESH_TOKEN_EXPIRE_SECONDS"));
}

/// Cleanup running while tokens are issued loses no live token.
async fn cleanup_races_issuance<S: Store>(store: Arc<S>) {
    let user = store
        .create_user(NewUser {
            username: "race".into(),
            email: String::new(),
            password_hash: "x".into(),
            is_active: true,
            date_joined: NOW,
        })
        .await
        .unwrap();
    let app = store
        .create_application(NewApplication::new(
            "race",
            ClientType::Confidential,
            GrantType::Password,
        ))
        .await
        .unwrap();
    let mut settings = Settings::default();
    settings.clear_expired_tokens_batch_size = 3;
    settings.refresh_token_expire_seconds = Some(Duration::from_secs(1));
    let settings = Arc::new(settings);
    let now = Timestamp::now();
    let mut writers = Vec::new();
    for t in 0..4 {
        let (store, app, user) = (store.clone(), app.clone(), user.clone());
        writers.push(tokio::spawn(async move {
            for i in 0..150 {
                // Live pairs, and dead pairs the cleanup should take.
                let live = pair(&app, &user, &format!("live-{t}-{i}"), now.add_secs(3600));
                store.issue_tokens(live).await.unwrap();
                let dead = pair(&app, &user, &format!("dead-{t}-{i}"), now.sub_secs(3600));
                store.issue_tokens(dead).await.unwrap();
                let mut cc = pair(&app, &user, &format!("cc-{t}-{i}"), now.add_secs(3600));
                cc.refresh = None;
                store.issue_tokens(cc).await.unwrap();
            }
        }));
    }
    let cleaner = {
        let (store, settings) = (store.clone(), settings.clone());
        tokio::spawn(async move {
            let mut deleted = 0;
            for _ in 0..40 {
                deleted += clear_expired(&*store, &settings).await.unwrap().total();
                tokio::task::yield_now().await;
            }
            deleted
        })
    };
    for w in writers {
        w.await.unwrap();
    }
    let deleted = cleaner.await.unwrap() + clear_expired(&*store, &settings).await.unwrap().total();
    assert_eq!(
        deleted,
        4 * 150 * 2,
        "every dead pair, and nothing else, was deleted"
    );
    for t in 0..4 {
        for i in 0..150 {
            for name in [format!("live-{t}-{i}"), format!("cc-{t}-{i}")] {
                let at = store
                    .find_access_token(&token_checksum(&format!("{name}-a")))
                    .await
                    .unwrap();
                assert!(at.is_some(), "{name} lost");
            }
            let rt = store
                .find_refresh_token(&token_checksum(&format!("live-{t}-{i}-r")))
                .await
                .unwrap();
            assert!(rt.is_some_and(|r| r.revoked.is_none()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_cleanup_races_issuance() {
    let (store, _dir) = common::sqlite_store().await;
    cleanup_races_issuance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_cleanup_races_issuance() {
    let Some(store) = common::postgres_store().await else {
        return;
    };
    cleanup_races_issuance(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_task_survives_a_database_error_and_stops() {
    use sqlx::Connection;
    let (store, dir) = common::sqlite_store().await;
    let store = Arc::new(store);
    seed(&*store).await; // NOW is in the future: use rows expired relative to the wall clock
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let mut admin = sqlx::SqliteConnection::connect(&url).await.unwrap();
    // Break the database: the grants table disappears, so step 6 fails.
    sqlx::query("ALTER TABLE oauth2_grant RENAME TO oauth2_grant_away")
        .execute(&mut admin)
        .await
        .unwrap();
    // A token that expired a minute ago (wall clock), without refresh token.
    let app = store
        .find_application_by_client_id("app")
        .await
        .unwrap()
        .unwrap();
    let user = store.find_user_by_username("u").await.unwrap().unwrap();
    let mut expired = pair(&app, &user, "wall", Timestamp::now().sub_secs(60));
    expired.refresh = None;
    store.issue_tokens(expired).await.unwrap();

    let handle = spawn_cleanup(
        store.clone(),
        Arc::new(Settings::default()),
        Duration::from_millis(50),
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!handle.is_finished(), "an error does not end the task");
    // Steps before the broken one ran: the expired access token is gone.
    assert!(store
        .find_access_token(&token_checksum("wall-a"))
        .await
        .unwrap()
        .is_none());

    // Repair; the next ticks succeed and clear an expired device grant (step 7, after 6).
    sqlx::query("ALTER TABLE oauth2_grant_away RENAME TO oauth2_grant")
        .execute(&mut admin)
        .await
        .unwrap();
    store
        .create_device_grant(NewDeviceGrant {
            device_code_checksum: token_checksum("dev"),
            user_code_checksum: token_checksum("USER"),
            scope: String::new(),
            interval: 5,
            expires: Timestamp::now().sub_secs(1),
            client_id: "app".into(),
            created: Timestamp::now().sub_secs(100),
        })
        .await
        .unwrap();
    let mut cleared = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if store
            .find_device_grant(&token_checksum("dev"))
            .await
            .unwrap()
            .is_none()
        {
            cleared = true;
            break;
        }
    }
    assert!(cleared, "the task recovered after the error");
    tokio::time::timeout(Duration::from_secs(5), handle.stop())
        .await
        .expect("stops promptly");
}

#[tokio::test]
async fn background_task_stops_on_shutdown_future() {
    let store = Arc::new(MemoryStore::new());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tower_oauth_toolkit::cleanup::spawn_cleanup_until(
        store,
        Arc::new(Settings::default()),
        Duration::from_secs(3600),
        async move {
            let _ = rx.await;
        },
    );
    assert!(!handle.is_finished());
    tx.send(()).unwrap();
    for _ in 0..100 {
        if handle.is_finished() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the task did not stop when the shutdown future completed");
}
