//! `oauth-toolkit`: the management commands of tower-oauth-toolkit.
use clap::Parser;
use tower_oauth_toolkit::cli::{run, Cli};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    run(Cli::parse()).await
}
