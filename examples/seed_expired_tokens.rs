//! Bench fixture: fills a database with N expired access tokens, each paired with a live
//! (unrevoked) refresh token — the shape of DOT's `seed_expired_tokens` lab command — with
//! one bulk `INSERT … SELECT` per table inside the database. With `live` as third
//! argument: N access tokens that expire in ten hours, without refresh tokens (the
//! "1 M live tokens" case of `benches/provider_load.sh`).
//!
//! ```sh
//! cargo run --release --example seed_expired_tokens -- sqlite://bench.db 1000000
//! cargo run --release --example seed_expired_tokens -- sqlite://bench.db 1000000 live
//! ```
//!
//! The access tokens expired 30 days ago, so with `REFRESH_TOKEN_EXPIRE_SECONDS = 86400`
//! `cleartokens` deletes all 2 × N rows: the refresh tokens by the idle-expiry step, then
//! the access tokens.
use std::time::Instant;

use sqlx::Connection;
use tower_oauth_toolkit::model::{ClientType, GrantType, NewApplication, Timestamp};
use tower_oauth_toolkit::store::sql::{SqlKind, SqlStore};
use tower_oauth_toolkit::store::Store;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .ok_or("usage: seed_expired_tokens DATABASE_URL COUNT")?;
    let count: i64 = args
        .next()
        .ok_or("usage: seed_expired_tokens DATABASE_URL COUNT")?
        .parse()?;
    let live = args.next().as_deref() == Some("live");
    let started = Instant::now();

    let store = SqlStore::connect(&url).await?;
    store.migrate().await?;
    let kind = store.kind();
    let app = match store.find_application_by_client_id("bench-seed").await? {
        Some(a) => a,
        None => {
            store
                .create_application(NewApplication::new(
                    "bench-seed",
                    ClientType::Confidential,
                    GrantType::Password,
                ))
                .await?
        }
    };
    store.close().await;
    let expired = if live {
        Timestamp::now().add_secs(36_000).unix()
    } else {
        Timestamp::now().sub_secs(30 * 86_400).unix()
    };

    let (access, refresh) = match kind {
        SqlKind::Sqlite => (
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO oauth2_access_token (token_checksum, application_id, expires, scope, created) \
             SELECT printf('a%063d', i), $2, $3, 'read write', $3 - 36000 FROM n",
            "INSERT INTO oauth2_refresh_token (token_checksum, application_id, access_token_id, created) \
             SELECT 'r' || substr(token_checksum, 2), application_id, id, created FROM oauth2_access_token \
             WHERE application_id = $1 AND token_checksum LIKE 'a%' \
             AND NOT EXISTS (SELECT 1 FROM oauth2_refresh_token r WHERE r.access_token_id = oauth2_access_token.id)",
        ),
        SqlKind::Postgres => (
            "INSERT INTO oauth2_access_token (token_checksum, application_id, expires, scope, created) \
             SELECT 'a' || lpad(i::text, 63, '0'), $2, $3, 'read write', $3 - 36000 \
             FROM generate_series(1, $1::bigint) AS i",
            "INSERT INTO oauth2_refresh_token (token_checksum, application_id, access_token_id, created) \
             SELECT 'r' || substr(token_checksum, 2), application_id, id, created FROM oauth2_access_token a \
             WHERE application_id = $1 AND token_checksum LIKE 'a%' \
             AND NOT EXISTS (SELECT 1 FROM oauth2_refresh_token r WHERE r.access_token_id = a.id)",
        ),
    };
    match kind {
        SqlKind::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(&url).await?;
            sqlx::query(access)
                .bind(count)
                .bind(app.id)
                .bind(expired)
                .execute(&mut c)
                .await?;
            if !live {
                sqlx::query(refresh).bind(app.id).execute(&mut c).await?;
            }
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&mut c)
                .await?;
        }
        SqlKind::Postgres => {
            let mut c = sqlx::PgConnection::connect(&url).await?;
            sqlx::query(access)
                .bind(count)
                .bind(app.id)
                .bind(expired)
                .execute(&mut c)
                .await?;
            if !live {
                sqlx::query(refresh).bind(app.id).execute(&mut c).await?;
            }
            sqlx::query("ANALYZE").execute(&mut c).await?;
        }
    }
    println!(
        "seeded {count} {} in {:.1}s",
        if live {
            "live access tokens"
        } else {
            "expired access tokens with refresh tokens"
        },
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
