//! The `oauth-toolkit` command line: Django OAuth Toolkit's management commands.
//!
//! ```text
//! oauth-toolkit [--database-url URL] [--config FILE] [-v...] <command>
//! ```
//!
//! `--database-url` falls back to the `DATABASE_URL` environment variable, then to
//! `sqlite://oauth-toolkit.db` (created if missing). `--config` names a TOML settings file
//! (see [`crate::settings`]); `OAUTH2_PROVIDER_*` environment variables override it.
//!
//! The subcommands are a public clap [`Command`] so that a host application can mount them
//! in its own binary, as Django projects do with `manage.py`:
//!
//! ```no_run
//! use clap::Parser;
//! use tower_oauth_toolkit::cli::{Cli, run};
//!
//! #[tokio::main]
//! async fn main() -> std::process::ExitCode {
//!     run(Cli::parse()).await
//! }
//! ```

mod edge;
mod serve;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::application::{register, ApplicationSpec, FieldError, RegisterError};
use crate::cleanup::{clear_expired_with, CleanupProgress, StepReport};
use crate::generators::Generators;
use crate::model::{Algorithm, ClientType, GrantType, Timestamp};
use crate::settings::Settings;
use crate::store::sql::{SchemaStatus, SqlOptions, SqlStore};
use crate::store::{CleanupStep, Store};

pub use serve::{
    app as serve_app, demo_api_metadata, run_server, CreateUserArgs, ServeArgs, ServerTimeouts,
    DEFAULT_BIND, DEMO_API_PATH, PROVIDER_MOUNT,
};

/// The default database: an SQLite file in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://oauth-toolkit.db";

/// The `oauth-toolkit` command line.
#[derive(Debug, Parser)]
#[command(
    name = "oauth-toolkit",
    version,
    about = "OAuth 2.0 / OpenID Connect provider management (Django OAuth Toolkit's commands)"
)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Database URL: sqlite://PATH or postgres://USER:PASSWORD@HOST/DB.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// TOML settings file (DOT setting names in snake_case).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// More log output (-v: debug, -vv: trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// The management commands.
#[derive(Debug, Subcommand)]
#[non_exhaustive]
pub enum Command {
    /// Apply the database migrations (idempotent).
    Migrate,
    /// Register an application (DOT's createapplication).
    #[command(name = "createapplication")]
    CreateApplication(Box<CreateApplicationArgs>),
    /// Delete expired and revoked tokens, codes and device grants (DOT's cleartokens).
    #[command(name = "cleartokens")]
    ClearTokens(ClearTokensArgs),
    /// Create a user of the built-in user table (Argon2id password hash).
    #[command(name = "createuser")]
    CreateUser(CreateUserArgs),
    /// Run the authorization server (at /o/) with a demo API (GET /api/hello, scope read).
    Serve(ServeArgs),
}

/// Arguments of `createapplication`, as in DOT. `Debug` never prints the secret.
#[derive(Clone, Args)]
pub struct CreateApplicationArgs {
    /// confidential or public.
    #[arg(value_name = "CLIENT_TYPE")]
    pub client_type: String,
    /// authorization-code, implicit, password, client-credentials, openid-hybrid or
    /// device-code.
    #[arg(value_name = "AUTHORIZATION_GRANT_TYPE")]
    pub authorization_grant_type: String,
    /// The client id (default: 40 random characters).
    #[arg(long)]
    pub client_id: Option<String>,
    /// The owner: a user id or a username.
    #[arg(long)]
    pub user: Option<String>,
    /// Redirect URIs, space-separated ("A B").
    #[arg(long, default_value = "")]
    pub redirect_uris: String,
    /// Post-logout redirect URIs, space-separated.
    #[arg(long, default_value = "")]
    pub post_logout_redirect_uris: String,
    /// The client secret (default: generated for confidential clients and shown once).
    #[arg(long)]
    pub client_secret: Option<String>,
    /// Store the secret in plaintext (needed for HS256 ID tokens).
    #[arg(long)]
    pub no_hash_client_secret: bool,
    /// A name for the application.
    #[arg(long, default_value = "")]
    pub name: String,
    /// Never ask users for consent for this application.
    #[arg(long)]
    pub skip_authorization: bool,
    /// ID-token signing algorithm: '' (none), RS256 or HS256.
    #[arg(long, default_value = "")]
    pub algorithm: String,
    /// CORS origins allowed to call the token endpoints, space-separated.
    #[arg(long, default_value = "")]
    pub allowed_origins: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

impl std::fmt::Debug for CreateApplicationArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateApplicationArgs")
            .field("client_type", &self.client_type)
            .field("authorization_grant_type", &self.authorization_grant_type)
            .field("client_id", &self.client_id)
            .field("name", &self.name)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "[redacted]"),
            )
            .finish_non_exhaustive()
    }
}

/// Arguments of `cleartokens`.
#[derive(Debug, Clone, Args)]
pub struct ClearTokensArgs {
    /// Print the report as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// A command failure: the message for stderr and the exit code.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong, for a person.
    pub message: String,
    /// The process exit code (1 = failure, 2 = bad input).
    pub code: u8,
}

impl CliError {
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Self {
        CliError {
            message: message.into(),
            code,
        }
    }
}

/// Writes a line to stderr, ignoring a closed or full stderr (`eprintln!` would panic:
/// a server whose log pipe went away must keep serving).
macro_rules! stderr_line {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
pub(crate) use stderr_line;

/// Sets up logging for `-v` levels (stderr; `RUST_LOG` wins when set). The log writer
/// ignores write errors, so a closed stderr never stops a request.
pub fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        // A failed write is dropped: tracing-subscriber would otherwise report it with
        // `eprint!`, which panics when stderr is the closed pipe that failed.
        .log_internal_errors(false)
        .with_target(false)
        .try_init();
}

/// Loads the settings named by the global options (file + environment), validated.
pub fn load_settings(global: &GlobalArgs) -> Result<Settings, CliError> {
    Settings::load(global.config.as_deref()).map_err(|e| CliError::new(2, e.to_string()))
}

/// Opens the database of a command that works on an existing one (`createapplication`,
/// `cleartokens`, `createuser`): a missing SQLite file, a database without the tables, one
/// behind this build's migrations or migrated by a newer version are refused with a hint —
/// only `migrate` and `serve` create and migrate a database.
pub async fn open_store(global: &GlobalArgs) -> Result<SqlStore, CliError> {
    let url = &global.database_url;
    let options = SqlOptions {
        create_if_missing: false,
        ..SqlOptions::default()
    };
    let store = SqlStore::connect_with(url, options).await.map_err(|e| {
        let mut message = e.to_string();
        if message.contains("no database at") {
            message.push_str(
                "\nhint: create it with `oauth-toolkit migrate` (or start `oauth-toolkit serve`), \
                 or point --database-url / DATABASE_URL at an existing database",
            );
        }
        CliError::new(1, message)
    })?;
    let status = store
        .schema_status()
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    let refusal = match status {
        SchemaStatus::Current { .. } => return Ok(store),
        SchemaStatus::Empty => format!(
            "the database {} has no tables yet\nhint: run `oauth-toolkit migrate` first",
            redacted(url)
        ),
        SchemaStatus::Behind { applied, known } => format!(
            "the database {} is at migration {applied} of {known}\nhint: run `oauth-toolkit migrate` first",
            redacted(url)
        ),
        SchemaStatus::Newer { unknown_version } => newer_schema(url, unknown_version),
    };
    store.close().await;
    Err(CliError::new(1, refusal))
}

/// Opens the database of `migrate` and `serve`, creating an SQLite file when there is none
/// (and saying so); a database migrated by a newer version is refused.
pub(crate) async fn open_or_create_store(
    global: &GlobalArgs,
    options: SqlOptions,
) -> Result<SqlStore, CliError> {
    let url = &global.database_url;
    let store = SqlStore::connect_with(url, options)
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    if store.created() {
        tracing::info!("created a new database: {}", redacted(url));
    }
    let status = store
        .schema_status()
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    if let SchemaStatus::Newer { unknown_version } = status {
        store.close().await;
        return Err(CliError::new(1, newer_schema(url, unknown_version)));
    }
    Ok(store)
}

fn newer_schema(url: &str, version: i64) -> String {
    format!(
        "the database {} was migrated by a newer oauth-toolkit (migration {version} is unknown to \
         this one, {})\nhint: run the newer version, or restore a backup taken before the upgrade",
        redacted(url),
        env!("CARGO_PKG_VERSION")
    )
}

/// A database URL for messages: the password of a `postgres://` URL is hidden.
fn redacted(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// Runs one command; writes its output to stdout and errors to stderr.
pub async fn run(cli: Cli) -> ExitCode {
    init_logging(cli.global.verbose);
    let mut out = std::io::stdout().lock();
    match execute(&cli.global, cli.command, &mut out).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = out.flush();
            stderr_line!("error: {}", e.message);
            ExitCode::from(e.code)
        }
    }
}

/// Runs one command, writing its normal output to `out`.
pub async fn execute(
    global: &GlobalArgs,
    command: Command,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match command {
        Command::Migrate => {
            load_settings(global)?;
            let store = open_or_create_store(global, SqlOptions::default()).await?;
            if store.created() {
                writeln!(
                    out,
                    "Created a new database: {}",
                    redacted(&global.database_url)
                )
                .map_err(io_err)?;
            }
            let ran = store
                .migrate()
                .await
                .map_err(|e| CliError::new(1, e.to_string()))?;
            let total = store
                .applied_migrations()
                .await
                .map_err(|e| CliError::new(1, e.to_string()))?;
            writeln!(
                out,
                "Applied {ran} migration(s); the database is at migration {total}."
            )
            .map_err(|e| CliError::new(1, e.to_string()))?;
            store.close().await;
            Ok(())
        }
        Command::CreateApplication(args) => {
            let settings = load_settings(global)?;
            let store = open_store(global).await?;
            let result = create_application(&store, &settings, &args, out).await;
            store.close().await;
            result
        }
        Command::ClearTokens(args) => {
            let settings = load_settings(global)?;
            let store = open_store(global).await?;
            let result = clear_tokens(&store, &settings, &args, out).await;
            store.close().await;
            result
        }
        Command::CreateUser(args) => {
            load_settings(global)?;
            let store = std::sync::Arc::new(open_store(global).await?);
            let mut stdin = std::io::stdin().lock();
            let result = serve::create_user(store.clone(), &args, &mut stdin, out).await;
            store.close().await;
            result
        }
        Command::Serve(args) => serve::serve(global, &args).await,
    }
}

fn io_err(e: std::io::Error) -> CliError {
    CliError::new(1, format!("cannot write the output: {e}"))
}

/// `createapplication`: validates everything, lists every error, saves nothing on error.
async fn create_application<S: Store>(
    store: &S,
    settings: &Settings,
    args: &CreateApplicationArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let mut field =
        |field: &'static str, message: String| errors.push(FieldError { field, message });
    let client_type = args
        .client_type
        .parse::<ClientType>()
        .map_err(|e| field("client_type", e.to_string()))
        .ok();
    let grant = args
        .authorization_grant_type
        .parse::<GrantType>()
        .map_err(|e| field("authorization_grant_type", e.to_string()))
        .ok();
    let algorithm = args
        .algorithm
        .parse::<Algorithm>()
        .map_err(|e| field("algorithm", e.to_string()))
        .ok();
    let user_id = match &args.user {
        None => None,
        Some(u) => {
            let found = match u.parse::<i64>() {
                Ok(id) => store.find_user(id).await,
                Err(_) => store.find_user_by_username(u).await,
            }
            .map_err(|e| CliError::new(1, e.to_string()))?;
            match found {
                Some(user) => Some(user.id),
                None => {
                    field(
                        "user",
                        format!("there is no user with id or username {u:?}"),
                    );
                    None
                }
            }
        }
    };

    // Arguments that did not parse are reported above; validate the rest with neutral
    // stand-ins (they trigger no rule of their own) so that every error is listed at once.
    let parsed = client_type.is_some() && grant.is_some() && algorithm.is_some();
    let mut spec = ApplicationSpec::new(
        client_type.unwrap_or(ClientType::Confidential),
        grant.unwrap_or(GrantType::ClientCredentials),
    );
    spec.client_id = args.client_id.clone();
    spec.user_id = user_id;
    spec.redirect_uris = args.redirect_uris.clone();
    spec.post_logout_redirect_uris = args.post_logout_redirect_uris.clone();
    spec.allowed_origins = args.allowed_origins.clone();
    spec.client_secret = args.client_secret.clone();
    spec.hash_client_secret = !args.no_hash_client_secret;
    spec.name = args.name.clone();
    spec.skip_authorization = args.skip_authorization;
    spec.algorithm = algorithm.unwrap_or(Algorithm::NoAlgorithm);
    let outcome = if parsed && errors.is_empty() {
        Some(register(store, settings, &Generators::default(), spec).await)
    } else {
        errors.extend(crate::application::validate(&spec, settings));
        None
    };
    let registered = match outcome {
        Some(Ok(r)) => r,
        Some(Err(RegisterError::Invalid(more))) => {
            errors.extend(more);
            return Err(report_errors(&errors, args.json, out));
        }
        Some(Err(RegisterError::Store(e))) => return Err(CliError::new(1, e.to_string())),
        None => return Err(report_errors(&errors, args.json, out)),
    };

    let app = &registered.application;
    if args.json {
        let value = serde_json::json!({
            "id": app.id,
            "name": app.name,
            "client_id": app.client_id,
            "client_secret": registered.generated_secret,
            "client_type": app.client_type.as_str(),
            "authorization_grant_type": app.authorization_grant_type.as_str(),
            "redirect_uris": app.redirect_uri_list().collect::<Vec<_>>(),
            "post_logout_redirect_uris": app.post_logout_redirect_uri_list().collect::<Vec<_>>(),
            "allowed_origins": app.allowed_origin_list().collect::<Vec<_>>(),
            "hash_client_secret": app.hash_client_secret,
            "skip_authorization": app.skip_authorization,
            "algorithm": app.algorithm.as_str(),
            "user_id": app.user_id,
        });
        writeln!(out, "{value}").map_err(io_err)?;
    } else {
        let name = if app.name.is_empty() {
            &app.client_id
        } else {
            &app.name
        };
        writeln!(out, "New application {name} created successfully.").map_err(io_err)?;
        writeln!(out, "client_id: {}", app.client_id).map_err(io_err)?;
        if let Some(secret) = &registered.generated_secret {
            writeln!(out, "client_secret: {secret}").map_err(io_err)?;
            let how = if app.hash_client_secret {
                "only its hash is saved"
            } else {
                "it is saved as it is, unhashed, because of --no-hash-client-secret"
            };
            writeln!(out, "Store the secret now: it is not shown again ({how}).")
                .map_err(io_err)?;
        }
    }
    Ok(())
}

fn report_errors(errors: &[FieldError], json: bool, out: &mut dyn Write) -> CliError {
    if json {
        let _ = writeln!(out, "{}", serde_json::json!({ "errors": errors }));
    }
    let mut message = String::from("Please correct the following errors:");
    for e in errors {
        message.push_str(&format!("\n - {}: {}", e.field, e.message));
    }
    message.push_str("\nNothing was saved.");
    CliError::new(2, message)
}

/// Progress for `cleartokens`: a bar per step on a terminal, nothing otherwise.
struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
    terminal: bool,
}

impl CleanupProgress for BarProgress {
    fn wants_totals(&self) -> bool {
        self.terminal
    }
    fn step_started(&mut self, step: CleanupStep, total: Option<u64>) {
        if let (true, Some(total)) = (self.terminal, total) {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg:>24} [{bar:30}] {pos}/{len} {per_sec}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_message(step.name());
            self.bar = Some(bar);
        }
    }
    fn batch_deleted(&mut self, _step: CleanupStep, n: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(n);
        }
    }
    fn step_finished(&mut self, _step: CleanupStep, _report: &StepReport) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

/// `cleartokens`.
async fn clear_tokens<S: Store>(
    store: &S,
    settings: &Settings,
    args: &ClearTokensArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if settings.refresh_token_expire().is_none() {
        stderr_line!(
            "WARNING: REFRESH_TOKEN_EXPIRE_SECONDS is not set: refresh tokens are kept until \
             revoked, and expired access tokens they are paired with are kept with them."
        );
    }
    let started = std::time::Instant::now();
    let mut progress = BarProgress {
        bar: None,
        terminal: std::io::stderr().is_terminal(),
    };
    let report = clear_expired_with(store, settings, Timestamp::now(), &mut progress)
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let mut value =
            serde_json::to_value(&report).map_err(|e| CliError::new(1, e.to_string()))?;
        value["total"] = report.total().into();
        value["seconds"] = serde_json::json!((elapsed * 1000.0).round() / 1000.0);
        writeln!(out, "{value}").map_err(io_err)?;
    } else {
        writeln!(
            out,
            "Deleted {} expired or revoked rows in {elapsed:.2}s.",
            report.total()
        )
        .map_err(io_err)?;
    }
    Ok(())
}
