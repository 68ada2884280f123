//! Nothing secret is stored in plaintext: after issuing every kind of credential, the raw
//! database (every column of every table; for SQLite also the raw file bytes, WAL included)
//! contains none of the plaintext values.
#![cfg(all(feature = "sqlite", feature = "postgres", feature = "provider"))]

mod common;

use tower_oauth_toolkit::crypto::token_checksum;
use tower_oauth_toolkit::generators::{
    generate_token, Generator, TimeOrderedTokenGenerator, UNICODE_ASCII_CHARACTER_SET,
};
use tower_oauth_toolkit::hashers::{hash_secret, SecretHasher};
use tower_oauth_toolkit::model::*;
use tower_oauth_toolkit::store::{IssueTokens, Store};

fn secret() -> String {
    generate_token(40, UNICODE_ASCII_CHARACTER_SET.as_bytes())
}

/// A device authorization through the provider's endpoint (RFC 8628 §3.1): the
/// plaintext `device_code` and `user_code` it answered, and the user code as typed
/// (normalized).
async fn device_authorization<S: Store>(s: std::sync::Arc<S>) -> Vec<String> {
    use tower::ServiceExt;
    use tower_oauth_toolkit::provider::{Provider, StoreUsers};
    let mut tv = NewApplication::new("tv", ClientType::Public, GrantType::DeviceCode);
    tv.name = "TV".into();
    s.create_application(tv).await.unwrap();
    let provider = Provider::builder(
        tower_oauth_toolkit::settings::Settings::default(),
        s.clone(),
        StoreUsers::new(s.clone()),
    )
    .secret_key(vec![7; 32])
    .build()
    .unwrap();
    let req = http::Request::post("/device-authorization/")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(axum::body::Body::from("client_id=tv&scope=read"))
        .unwrap();
    let res = provider.router().oneshot(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let body = http_body_util::BodyExt::collect(res.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let device = v["device_code"].as_str().unwrap().to_owned();
    let user_code = v["user_code"].as_str().unwrap().to_owned();
    assert!(device.len() >= 40 && user_code.len() >= 8, "{v}");
    let typed = tower_oauth_toolkit::generators::normalize_user_code(&user_code);
    vec![device, user_code, typed]
}

/// A dynamic registration through the provider's endpoint (RFC 7591) and an update
/// that rotates its registration access token (RFC 7592): the client secret and both
/// registration access tokens it answered.
async fn dynamic_registration<S: Store>(s: std::sync::Arc<S>) -> Vec<String> {
    use tower::ServiceExt;
    use tower_oauth_toolkit::provider::{Provider, StoreUsers};
    let mut settings = tower_oauth_toolkit::settings::Settings::default();
    settings.dcr_enabled = true;
    settings.dcr_registration_policy = tower_oauth_toolkit::settings::DcrPolicy::Open;
    settings.dcr_allowed_grant_types = vec!["client_credentials".into()];
    let provider = Provider::builder(settings, s.clone(), StoreUsers::new(s.clone()))
        .secret_key(vec![7; 32])
        .build()
        .unwrap();
    let call = |req: http::Request<axum::body::Body>| {
        let router = provider.router();
        async move {
            let res = router.oneshot(req).await.unwrap();
            let status = res.status();
            let body = http_body_util::BodyExt::collect(res.into_body())
                .await
                .unwrap()
                .to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
            )
        }
    };
    let metadata = serde_json::json!({
        "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic",
    });
    let (status, v) = call(
        http::Request::post("/register/")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(metadata.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let client_id = v["client_id"].as_str().unwrap().to_owned();
    let secret = v["client_secret"].as_str().unwrap().to_owned();
    let first = v["registration_access_token"].as_str().unwrap().to_owned();
    let mut update = metadata.clone();
    update["client_id"] = client_id.clone().into();
    let (status, v) = call(
        http::Request::put(format!("/register/{client_id}/"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {first}"))
            .body(axum::body::Body::from(update.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let second = v["registration_access_token"].as_str().unwrap().to_owned();
    assert_ne!(first, second);
    assert!(s
        .find_registration(&token_checksum(&second))
        .await
        .unwrap()
        .is_some());
    vec![secret, first, second]
}

/// Issues one of everything through the store (the device codes through the device
/// authorization endpoint); returns the plaintext values.
async fn issue_everything<S: Store>(s: std::sync::Arc<S>) -> Vec<String> {
    let now = Timestamp::now();
    let password = secret();
    let client_secret = secret();
    // Access and refresh tokens as the default generator makes them (time-ordered).
    let (access, refresh, code) = (
        TimeOrderedTokenGenerator::default().generate(),
        TimeOrderedTokenGenerator::default().generate(),
        secret(),
    );
    let u = s
        .create_user(NewUser {
            username: "alice".into(),
            email: "alice@example.com".into(),
            password_hash: hash_secret(&password, SecretHasher::Argon2).unwrap(),
            is_active: true,
            date_joined: now,
        })
        .await
        .unwrap();
    let mut new = NewApplication::new(
        "client",
        ClientType::Confidential,
        GrantType::AuthorizationCode,
    );
    new.client_secret = hash_secret(&client_secret, SecretHasher::Argon2).unwrap();
    new.redirect_uris = "https://app.example.com/cb".into();
    let app = s.create_application(new).await.unwrap();
    let grant = s
        .create_grant(NewGrant {
            resource: String::new(),
            user_id: u.id,
            code_checksum: token_checksum(&code),
            application_id: app.id,
            expires: now.add_secs(60),
            redirect_uri: "https://app.example.com/cb".into(),
            scope: "read".into(),
            pkce: None,
            nonce: String::new(),
            claims: String::new(),
            auth_time: Some(now),
            created: now,
        })
        .await
        .unwrap();
    s.issue_tokens(IssueTokens {
        access: NewAccessToken {
            resource: String::new(),
            token_checksum: token_checksum(&access),
            application_id: Some(app.id),
            user_id: Some(u.id),
            source_refresh_token_id: None,
            id_token_id: None,
            grant_id: Some(grant.id),
            expires: now.add_secs(3600),
            scope: "read".into(),
            created: now,
        },
        refresh: Some(NewRefreshToken {
            resource: String::new(),
            token_checksum: token_checksum(&refresh),
            application_id: app.id,
            user_id: Some(u.id),
            access_token_id: None,
            token_family: Some(new_token_family()),
            created: now,
        }),
        id_token: None,
    })
    .await
    .unwrap();
    let device = device_authorization(s.clone()).await;
    let registration = dynamic_registration(s.clone()).await;
    // The checksums themselves must be findable (the test would pass vacuously otherwise).
    assert!(s
        .find_access_token(&token_checksum(&access))
        .await
        .unwrap()
        .is_some());
    // The random parts of the time-ordered tokens on their own, too (their time
    // prefix is not secret).
    let (access_random, refresh_random) = (access[9..].to_owned(), refresh[9..].to_owned());
    let mut all = vec![
        password,
        client_secret,
        access,
        refresh,
        access_random,
        refresh_random,
        code,
    ];
    all.extend(device);
    all.extend(registration);
    all
}

fn assert_absent(haystack: &str, secrets: &[String], place: &str) {
    for s in secrets {
        assert!(
            !haystack.contains(s.as_str()),
            "plaintext secret found in {place}"
        );
    }
}

#[tokio::test]
async fn sqlite_file_holds_no_plaintext_secret() {
    use sqlx::{Connection, Row};
    let (store, dir) = common::sqlite_store().await;
    let secrets = issue_everything(std::sync::Arc::new(store)).await;
    let path = dir.path().join("test.db");
    let url = format!("sqlite://{}", path.display());
    let mut c = sqlx::SqliteConnection::connect(&url).await.unwrap();

    // Every column of every table, as text.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'oauth2_%'",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(tables.iter().any(|t| t == "oauth2_access_token"));
    assert!(tables.iter().any(|t| t == "oauth2_registration"));
    let mut cells = 0;
    for table in &tables {
        let cols: Vec<String> =
            sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
                .fetch_all(&mut c)
                .await
                .unwrap();
        for col in cols {
            let rows = sqlx::query(&format!("SELECT CAST({col} AS TEXT) FROM {table}"))
                .fetch_all(&mut c)
                .await
                .unwrap();
            for row in rows {
                let v: Option<String> = row.try_get(0).unwrap();
                assert_absent(
                    v.as_deref().unwrap_or(""),
                    &secrets,
                    &format!("{table}.{col}"),
                );
                cells += 1;
            }
        }
    }
    assert!(cells > 50, "the scan saw the rows ({cells} cells)");

    // The raw bytes of the database and its write-ahead log.
    c.close().await.unwrap();
    for file in ["test.db", "test.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(file)) {
            let text = String::from_utf8_lossy(&bytes);
            assert_absent(&text, &secrets, file);
        }
    }
}

#[tokio::test]
async fn postgres_tables_hold_no_plaintext_secret() {
    use sqlx::{Connection, Row};
    let Some((store, url, schema)) = common::postgres_store_in_schema().await else {
        return;
    };
    let secrets = issue_everything(std::sync::Arc::new(store)).await;
    let mut c = sqlx::PgConnection::connect(&url).await.unwrap();
    let columns = sqlx::query(
        "SELECT table_name::text, column_name::text FROM information_schema.columns \
         WHERE table_schema = $1 AND table_name LIKE 'oauth2_%'",
    )
    .bind(&schema)
    .fetch_all(&mut c)
    .await
    .unwrap();
    assert!(columns.len() > 40, "found the tables");
    let mut cells = 0;
    for col in columns {
        let (table, column): (String, String) = (col.get(0), col.get(1));
        let rows = sqlx::query(&format!(
            "SELECT CAST({column} AS TEXT) FROM {schema}.{table}"
        ))
        .fetch_all(&mut c)
        .await
        .unwrap();
        for row in rows {
            let v: Option<String> = row.try_get(0).unwrap();
            assert_absent(
                v.as_deref().unwrap_or(""),
                &secrets,
                &format!("{table}.{column}"),
            );
            cells += 1;
        }
    }
    assert!(cells > 50, "the scan saw the rows ({cells} cells)");
}
