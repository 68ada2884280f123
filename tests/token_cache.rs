//! The store's access-token cache as `oauth-toolkit serve` runs it: a revocation is seen
//! by the very next `/api/hello` and introspection, on every path that deletes or
//! disables a token, and a revocation racing cached validations lets none through after
//! it answered. Every test runs on an SQLite file and on PostgreSQL.
#![cfg(all(feature = "cli", feature = "postgres", feature = "jwt"))]

#[macro_use]
mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::provider::*;
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::Timestamp;
use tower_oauth_toolkit::resource::{StoreValidator, TokenValidator};
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::Store;

/// Calls the API twice (the second answer comes from the cache) and checks both pass.
async fn warm(srv: &Server, token: &str) {
    for _ in 0..2 {
        let (s, v) = srv.hello(token).await;
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(srv.introspect(token).await["active"], true);
}

async fn refused(srv: &Server, token: &str, path: &str) {
    let (s, v) = srv.hello(token).await;
    assert_eq!(s, 401, "{path}: /api/hello still accepts the token: {v}");
    let v = srv.introspect(token).await;
    assert_eq!(
        v["active"], false,
        "{path}: introspection still active: {v}"
    );
}

/// Removes a token's row from the SQLite file behind the store's back (another process's
/// write).
async fn delete_row_elsewhere(srv: &Server, token: &str) {
    use sqlx::Connection;
    let path = srv._dir.as_ref().unwrap().path().join("test.db");
    let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("DELETE FROM oauth2_access_token WHERE token_checksum = $1")
        .bind(token_checksum(token))
        .execute(&mut c)
        .await
        .unwrap();
}

async fn the_cache_answers_known_tokens(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let cache = srv
        .store
        .token_cache()
        .expect("serve's store keeps a token cache");
    let (access, _) = srv.password_pair().await;
    warm(&srv, &access).await;
    if let Db::Sqlite = db {
        // Deleted by another process: this one does not know, and answers from the cache
        // (bounded by max_ttl) — which shows the revocation tests below go through it.
        delete_row_elsewhere(&srv, &access).await;
        let (s, _) = srv.hello(&access).await;
        assert_eq!(s, 200, "served from the cache");
        // The hook for other replicas: they forget what they are told.
        cache.forget_checksums(&[token_checksum(&access)]).await;
        let (s, _) = srv.hello(&access).await;
        assert_eq!(s, 401);
    }
    // An unknown token is remembered as unknown for a short while.
    let (s, _) = srv.hello("no-such-token-0123456789").await;
    assert_eq!(s, 401);
    let (s, _) = srv.hello("no-such-token-0123456789").await;
    assert_eq!(s, 401);
}

async fn revocation_endpoint_access_and_refresh(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    // RFC 7009, the access token.
    let (access, _) = srv.password_pair().await;
    warm(&srv, &access).await;
    let (s, v, _) = srv
        .post(
            "/o/revoke_token/",
            Some(("pw", "pw-secret")),
            &[("token", access.as_str())],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    refused(&srv, &access, "revoke access token").await;
    // RFC 7009, the refresh token: its access token goes with it.
    let (access, refresh) = srv.password_pair().await;
    warm(&srv, &access).await;
    let (s, v, _) = srv
        .post(
            "/o/revoke_token/",
            Some(("pw", "pw-secret")),
            &[
                ("token", refresh.as_str()),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    refused(&srv, &access, "revoke refresh token").await;
}

async fn refresh_rotation_and_replacement(db: Db) {
    for rotate in [true, false] {
        let mut settings = Settings::default();
        settings.rotate_refresh_token = rotate;
        let Some(srv) = start(db, settings).await else {
            return;
        };
        let (access, refresh) = srv.password_pair().await;
        warm(&srv, &access).await;
        let (s, v, _) = srv
            .token(
                Some(("pw", "pw-secret")),
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh.as_str()),
                ],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        refused(
            &srv,
            &access,
            if rotate { "rotation" } else { "replacement" },
        )
        .await;
        let new = v["access_token"].as_str().unwrap();
        let (s, _) = srv.hello(new).await;
        assert_eq!(s, 200);
    }
}

async fn code_replay_revokes_through_the_cache(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let code = srv.code("code", Some((CHALLENGE, "S256")), 60).await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let (s, v, _) = srv.token(Some(("code", "code-secret")), &form).await;
    assert_eq!(s, 200, "{v}");
    let access = v["access_token"].as_str().unwrap().to_owned();
    warm(&srv, &access).await;
    let (s, v, _) = srv.token(Some(("code", "code-secret")), &form).await;
    assert_eq!((s, err(&v)), (400, "invalid_grant"), "{v}");
    refused(&srv, &access, "code replay").await;
}

async fn logout_deactivation_and_application_deletion(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let alice = srv
        .store
        .find_user_by_username("alice")
        .await
        .unwrap()
        .unwrap();
    // RP-initiated logout's deletion of the user's tokens.
    let (access, _) = srv.password_pair().await;
    warm(&srv, &access).await;
    let n = srv
        .store
        .delete_user_tokens(alice.id, None, Timestamp::now())
        .await
        .unwrap();
    assert!(n >= 1);
    refused(&srv, &access, "logout").await;
    // Deactivating the user: the rows stay, the tokens stop working; and come back.
    let (access, _) = srv.password_pair().await;
    warm(&srv, &access).await;
    assert!(srv.store.set_user_active(alice.id, false).await.unwrap());
    refused(&srv, &access, "deactivation").await;
    assert!(srv.store.set_user_active(alice.id, true).await.unwrap());
    let (s, v) = srv.hello(&access).await;
    assert_eq!(s, 200, "reactivated: {v}");
    // Deleting the application deletes its tokens.
    let (access, _) = srv.password_pair().await;
    warm(&srv, &access).await;
    let pw = srv
        .store
        .find_application_by_client_id("pw")
        .await
        .unwrap()
        .unwrap();
    assert!(srv.store.delete_application(pw.id).await.unwrap());
    let (s, _) = srv.hello(&access).await;
    assert_eq!(s, 401, "application deleted");
}

/// Revocations race validations that hit the cache; once a revocation has returned, no
/// validation that starts afterwards accepts the token, through the store lookup or the
/// resource side's synchronous cache path.
async fn revocation_races_cached_validations(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let store = srv.store.clone();
    let validator = StoreValidator::new(store.clone());
    let violations = Arc::new(AtomicUsize::new(0));
    for round in 0..30 {
        let (access, _) = srv.password_pair().await;
        let sum = token_checksum(&access);
        warm(&srv, &access).await;
        let revoked = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for t in 0..4 {
            let (store, validator, access, sum) = (
                store.clone(),
                validator.clone(),
                access.clone(),
                sum.clone(),
            );
            let (revoked, stop, violations) = (revoked.clone(), stop.clone(), violations.clone());
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Acquire) {
                    let after = revoked.load(Ordering::Acquire);
                    let accepted = if t % 2 == 0 {
                        store.find_access_token(&sum).await.unwrap().is_some()
                    } else {
                        match validator.validate_now(&access) {
                            Some(r) => r.is_ok(),
                            None => validator.validate(access.clone()).await.is_ok(),
                        }
                    };
                    if after && accepted {
                        violations.fetch_add(1, Ordering::Relaxed);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(2 + round % 5)).await;
        let at = store.find_access_token(&sum).await.unwrap().unwrap();
        assert!(store
            .revoke_access_token(at.token.id, Timestamp::now())
            .await
            .unwrap());
        revoked.store(true, Ordering::Release);
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        stop.store(true, Ordering::Release);
        for t in tasks {
            t.await.unwrap();
        }
    }
    assert_eq!(violations.load(Ordering::Relaxed), 0);
}

on_both!(
    the_cache_answers_known_tokens,
    revocation_endpoint_access_and_refresh,
    refresh_rotation_and_replacement,
    code_replay_revokes_through_the_cache,
    logout_deactivation_and_application_deletion,
    revocation_races_cached_validations,
);
