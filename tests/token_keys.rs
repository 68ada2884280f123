//! Time-ordered token keys end to end: the tokens `oauth-toolkit serve` issues carry their
//! issue time, the keys stored for them increase in issue order (so inserts land at the
//! end of the unique index), and they are found again by the API, introspection,
//! refresh and revocation; tokens of any other shape (a DOT import, a custom generator)
//! keep the plain SHA-256 checksum and are found just as well. On SQLite and PostgreSQL.
#![cfg(all(feature = "cli", feature = "postgres"))]

#[macro_use]
mod common;

use common::provider::*;
use sha2::Digest;
use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::{IssueTokens, Store};

fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// The milliseconds in the first 12 hex characters of a stored key.
fn key_millis(checksum: &str) -> u64 {
    u64::from_str_radix(&checksum[..12], 16).unwrap()
}

async fn issued_tokens_have_increasing_time_keys(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let before = unix_millis();
    let mut tokens = Vec::new();
    for _ in 0..5 {
        let (s, v, _) = srv
            .token(
                Some(("cc", "cc-secret")),
                &[("grant_type", "client_credentials")],
            )
            .await;
        assert_eq!(s, 200, "{v}");
        tokens.push(v["access_token"].as_str().unwrap().to_owned());
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let (access, refresh) = srv.password_pair().await;
    tokens.push(access);
    let after = unix_millis();

    let mut last = String::new();
    for token in &tokens {
        assert_eq!(token.len(), 49, "{token}");
        assert_eq!(token.as_bytes()[8], b'_', "{token}");
        let sum = token_checksum(token);
        let row = srv
            .store
            .find_access_token(&sum)
            .await
            .unwrap()
            .expect("the stored key is the one derived from the token");
        assert_eq!(row.token.token_checksum, sum);
        let millis = key_millis(&sum);
        assert!(
            (before..=after).contains(&millis),
            "{millis} not in {before}..={after}"
        );
        assert!(sum > last, "keys increase in issue order");
        last = sum;
        // Not the plain digest: a store that kept DOT's checksum would not find it.
        let plain = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        assert!(srv.store.find_access_token(&plain).await.unwrap().is_none());
        let (s, v) = srv.hello(token).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(srv.introspect(token).await["active"], true);
    }
    // The refresh token is time-ordered too, and a refresh and a revocation find it.
    assert_eq!(refresh.as_bytes()[8], b'_');
    assert!(srv
        .store
        .find_refresh_token(&token_checksum(&refresh))
        .await
        .unwrap()
        .is_some());
    let (s, v, _) = srv
        .token(
            Some(("pw", "pw-secret")),
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let rotated = v["access_token"].as_str().unwrap().to_owned();
    assert!(token_checksum(&rotated) > last);
    let (s, _, _) = srv
        .post(
            "/o/revoke_token/",
            Some(("cc", "cc-secret")),
            &[("token", &tokens[0])],
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(srv.hello(&tokens[0]).await.0, 401);
    assert_eq!(srv.introspect(&tokens[0]).await["active"], false);
}

async fn tokens_of_other_shapes_keep_the_plain_checksum(db: Db) {
    let Some(srv) = start(db, Settings::default()).await else {
        return;
    };
    let app = srv
        .store
        .find_application_by_client_id("cc")
        .await
        .unwrap()
        .unwrap();
    let now = Timestamp::now();
    // DOT's default shape (30 characters of a-zA-Z0-9), a JWT-like custom token, and one
    // that has a `_` at position 8 but a prefix that is not a time.
    for token in [
        "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl",
        "0000-01A_abcdefghijklmnopqrstuvwxyzABCDE",
    ] {
        let plain = hex::encode(sha2::Sha256::digest(token.as_bytes()));
        assert_eq!(token_checksum(token), plain);
        srv.store
            .issue_tokens(IssueTokens {
                access: NewAccessToken {
                    resource: String::new(),
                    token_checksum: plain,
                    application_id: Some(app.id),
                    user_id: None,
                    source_refresh_token_id: None,
                    id_token_id: None,
                    grant_id: None,
                    expires: now.add_secs(600),
                    scope: "read write".into(),
                    created: now,
                },
                refresh: None,
                id_token: None,
            })
            .await
            .unwrap();
        let (s, v) = srv.hello(token).await;
        assert_eq!(s, 200, "{token}: {v}");
        assert_eq!(srv.introspect(token).await["active"], true, "{token}");
    }
}

on_both!(
    issued_tokens_have_increasing_time_keys,
    tokens_of_other_shapes_keep_the_plain_checksum,
);
