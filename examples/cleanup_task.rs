//! Expired-token cleanup inside a host application's tokio runtime.
//!
//! ```sh
//! DATABASE_URL=sqlite://oauth-toolkit.db CLEANUP_EVERY_SECONDS=3600 \
//!     cargo run --example cleanup_task
//! ```
//!
//! The task runs `clear_expired()` every `CLEANUP_EVERY_SECONDS` (default 3600) with the
//! settings from `OAUTH2_PROVIDER_*` variables (and `OAUTH_TOOLKIT_CONFIG`, a TOML file,
//! when set), logs each run, survives database errors, and stops cleanly on Ctrl-C: a run
//! in progress finishes its current batch first.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tower_oauth_toolkit::cleanup::spawn_cleanup_until;
use tower_oauth_toolkit::settings::Settings;
use tower_oauth_toolkit::store::sql::SqlStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "sqlite://oauth-toolkit.db".into());
    let every: u64 = std::env::var("CLEANUP_EVERY_SECONDS")
        .ok()
        .map(|v| v.parse())
        .transpose()?
        .unwrap_or(3600);
    let config = std::env::var_os("OAUTH_TOOLKIT_CONFIG").map(PathBuf::from);
    let settings = Arc::new(Settings::load(config.as_deref())?);

    let store = Arc::new(SqlStore::connect(&url).await?);
    store.migrate().await?;

    // Stop on Ctrl-C; any future works here (a CancellationToken, a shutdown channel, ...).
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let cleanup = spawn_cleanup_until(
        store.clone(),
        settings,
        Duration::from_secs(every),
        shutdown,
    );
    tracing::info!(every, %url, "cleanup task running; Ctrl-C to stop");

    // ... the host application would serve requests here ...
    while !cleanup.is_finished() {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cleanup.stop().await;
    store.close().await;
    tracing::info!("cleanup task stopped");
    Ok(())
}
