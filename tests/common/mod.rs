//! Shared test fixtures: stores on each backend.
//!
//! PostgreSQL tests read `TEST_POSTGRES_URL` (e.g. `postgres://toolkit:toolkit@127.0.0.1/toolkit_test`)
//! and give every store its own schema. Without the variable they are skipped with a printed
//! reason, unless `TOOLKIT_REQUIRE_POSTGRES=1` (as in CI), where a missing server fails.
#![allow(dead_code, unreachable_pub)]

/// Runs each async `fn name(db: Db)` of the test file once on SQLite and once on
/// PostgreSQL, as `sqlite::name` and `postgres::name`.
#[allow(unused_macros)]
macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(Db::Sqlite).await })*
        }
        mod postgres {
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() { super::$name(Db::Postgres).await })*
        }
    };
}

pub mod html;
pub mod http;
#[cfg(all(feature = "cli", feature = "postgres"))]
pub mod provider;

use tower_oauth_toolkit::store::sql::{SqlOptions, SqlStore};

/// A migrated SQLite store on a fresh file in a temporary directory.
pub async fn sqlite_store() -> (SqlStore, tempfile::TempDir) {
    sqlite_store_with(SqlOptions::default()).await
}

/// A migrated SQLite store with `options`, on a fresh file in a temporary directory.
pub async fn sqlite_store_with(options: SqlOptions) -> (SqlStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("test.db").display());
    let store = SqlStore::connect_with(&url, options)
        .await
        .expect("open sqlite");
    store.migrate().await.expect("migrate sqlite");
    (store, dir)
}

/// `oauth-toolkit serve`'s store options: the access-token cache on.
pub fn serve_options() -> SqlOptions {
    SqlOptions {
        token_cache: Some(tower_oauth_toolkit::store::cache::TokenCacheOptions::default()),
        ..SqlOptions::default()
    }
}

/// The PostgreSQL URL for tests, or `None` (after printing why) when tests must skip.
pub fn postgres_url() -> Option<String> {
    match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("TOOLKIT_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("TOOLKIT_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set");
            }
            eprintln!("skipping PostgreSQL test: TEST_POSTGRES_URL is not set");
            None
        }
    }
}

/// A new, empty schema on the test server; returns (url, schema).
pub async fn postgres_schema() -> Option<(String, String)> {
    use sqlx::Connection;
    let url = postgres_url()?;
    let schema = format!("t_{}", uuid_like());
    let mut conn = sqlx::PgConnection::connect(&url)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut conn)
        .await
        .expect("create schema");
    conn.close().await.ok();
    Some((url, schema))
}

/// A migrated PostgreSQL store in its own schema.
pub async fn postgres_store() -> Option<SqlStore> {
    postgres_store_in_schema().await.map(|(store, _, _)| store)
}

/// A migrated PostgreSQL store in its own schema, with the URL and the schema name.
pub async fn postgres_store_in_schema() -> Option<(SqlStore, String, String)> {
    postgres_store_in_schema_with(SqlOptions::default()).await
}

/// A migrated PostgreSQL store with `options` in its own schema, with the URL and the
/// schema name.
pub async fn postgres_store_in_schema_with(
    options: SqlOptions,
) -> Option<(SqlStore, String, String)> {
    let (url, schema) = postgres_schema().await?;
    let options = SqlOptions {
        max_connections: 16,
        search_path: Some(schema.clone()),
        ..options
    };
    let store = SqlStore::connect_with(&url, options)
        .await
        .expect("open postgres");
    store.migrate().await.expect("migrate postgres");
    Some((store, url, schema))
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}_{}_{}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
