//! `oauth-toolkit serve` and `oauth-toolkit createuser`.

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Extension, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Args;

use super::{io_err, load_settings, CliError, GlobalArgs};
use crate::provider::users::CreateUserError;
use crate::provider::{Provider, StoreUsers};
use crate::resource::{
    BearerLayer, ProtectedResourceMetadata, ScopePolicy, StoreValidator, TokenInfo,
};
use crate::store::cache::TokenCacheOptions;
use crate::store::sql::{SqlOptions, SqlStore};
use crate::store::Store;

/// The default address of `serve`.
pub const DEFAULT_BIND: &str = "127.0.0.1:8000";

/// Arguments of `serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = DEFAULT_BIND, value_name = "ADDR")]
    pub bind: SocketAddr,
    /// The public URL of this server (e.g. `https://auth.example.com`): marks cookies
    /// Secure when https; the provider's URL and OIDC issuer are it followed by `/o`.
    #[arg(long, value_name = "URL")]
    pub issuer: Option<String>,
    /// Seconds a client may take to send a request's headers before the connection is
    /// closed (slow-header attacks); also how long an idle keep-alive connection stays
    /// open.
    #[arg(long, default_value_t = 10, value_name = "SECONDS")]
    pub header_read_timeout: u64,
    /// Seconds a client may take to send a request's body once its headers are in; a
    /// body that trickles in or never comes gets 408 and the connection is closed.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub request_timeout: u64,
    /// Seconds between background runs of the expired-token cleanup (what `cleartokens`
    /// does, with the CLEAR_EXPIRED_TOKENS_BATCH_* settings); 0 disables it.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub cleanup_interval: u64,
}

/// Arguments of `createuser`. `Debug` never prints the password.
#[derive(Clone, Args)]
pub struct CreateUserArgs {
    /// The login name (letters, digits and @.+-_).
    #[arg(value_name = "USERNAME")]
    pub username: String,
    /// The password (visible in the process list: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    pub password_stdin: bool,
    /// E-mail address.
    #[arg(long, default_value = "")]
    pub email: String,
}

impl std::fmt::Debug for CreateUserArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateUserArgs")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("password_stdin", &self.password_stdin)
            .field("email", &self.email)
            .finish()
    }
}

/// `createuser`: a user of the built-in user table (Argon2id password hash).
pub(super) async fn create_user<S: Store>(
    store: Arc<S>,
    args: &CreateUserArgs,
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let password = match (&args.password, args.password_stdin) {
        (Some(p), false) => p.clone(),
        (None, true) => {
            let mut line = String::new();
            stdin
                .read_line(&mut line)
                .map_err(|e| CliError::new(1, format!("cannot read the password: {e}")))?;
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
        _ => {
            return Err(CliError::new(
                2,
                "give the password with --password P or --password-stdin",
            ))
        }
    };
    let users = StoreUsers::new(store);
    let user = users
        .create_user(&args.username, &args.email, &password)
        .await
        .map_err(|e| match e {
            CreateUserError::Store(e) => CliError::new(1, e.to_string()),
            e => CliError::new(2, e.to_string()),
        })?;
    writeln!(out, "Created user {:?} (id {}).", user.username, user.id).map_err(io_err)
}

async fn hello(Extension(token): Extension<Arc<TokenInfo>>) -> Json<Hello> {
    Json(Hello(token))
}

/// The demo API's answer, `{"client_id":…,"hello":…,"scope":…}`, serialized straight from
/// the validated token (no intermediate map or strings).
struct Hello(Arc<TokenInfo>);

impl serde::Serialize for Hello {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let t = &*self.0;
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("client_id", &t.client_id)?;
        m.serialize_entry("hello", t.username.as_deref().unwrap_or("client"))?;
        m.serialize_entry("scope", &DisplayStr(&t.scopes))?;
        m.end()
    }
}

/// Serializes a `Display` value as a JSON string without formatting it into a `String`
/// first.
struct DisplayStr<'a, T>(&'a T);

impl<T: std::fmt::Display> serde::Serialize for DisplayStr<'_, T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

/// Requests answered since the last summary, by status class.
#[derive(Debug)]
struct RequestCounts {
    by_class: [AtomicU64; 6],
    slowest_micros: AtomicU64,
}

static REQUESTS: RequestCounts = RequestCounts {
    by_class: [const { AtomicU64::new(0) }; 6],
    slowest_micros: AtomicU64::new(0),
};

/// Counts every request; with `-v` (DEBUG) also one line per request: method, path,
/// status, time — never the query (it may carry codes) nor any header. At the default
/// level a line per request would cost more than the request itself on the hot paths
/// (BENCHMARKS.md), so INFO gets a summary per minute instead ([`log_summaries`]).
async fn log_request(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let debug = tracing::enabled!(tracing::Level::DEBUG);
    let line = debug.then(|| (req.method().clone(), req.uri().path().to_owned()));
    let res = next.run(req).await;
    let micros = start.elapsed().as_micros() as u64;
    let class = usize::from(res.status().as_u16() / 100).min(5);
    REQUESTS.by_class[class].fetch_add(1, Ordering::Relaxed);
    REQUESTS.slowest_micros.fetch_max(micros, Ordering::Relaxed);
    if let Some((method, path)) = line {
        tracing::debug!(%method, %path, status = res.status().as_u16(), micros, "request");
    }
    res
}

/// Logs, every `every`, how many requests were answered by status class and the slowest,
/// when there were any.
async fn log_summaries(every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let n: [u64; 6] = std::array::from_fn(|i| REQUESTS.by_class[i].swap(0, Ordering::Relaxed));
        let slowest = REQUESTS.slowest_micros.swap(0, Ordering::Relaxed);
        let total: u64 = n.iter().sum();
        if total > 0 {
            tracing::info!(
                requests = total,
                ok = n[2],
                redirects = n[3],
                client_errors = n[4],
                server_errors = n[5],
                slowest_micros = slowest,
                "requests in the last {} s",
                every.as_secs()
            );
        }
    }
}

/// Where `serve` mounts the provider.
pub const PROVIDER_MOUNT: &str = "/o";

/// The demo API's path.
pub const DEMO_API_PATH: &str = "/api/hello";

/// The demo API's RFC 9728 metadata, from DOT's `OAUTH2_PROTECTED_RESOURCE_*` settings:
/// the identifier is `OAUTH2_PROTECTED_RESOURCE_IDENTIFIER`, or the request's scheme and
/// host followed by `/api/hello` when it is empty; the authorization servers are
/// `OAUTH2_PROTECTED_RESOURCE_AUTHORIZATION_SERVERS`, or this server's issuer when empty
/// (`OIDC_ISS_ENDPOINT`, else `--issuer` + `/o`, else the request's origin + `/o`).
pub fn demo_api_metadata(
    settings: &crate::settings::Settings,
    issuer: Option<&str>,
) -> Result<ProtectedResourceMetadata, CliError> {
    let bad = |e: crate::resource::metadata::MetadataError| {
        CliError::new(2, format!("OAUTH2_PROTECTED_RESOURCE_IDENTIFIER: {e}"))
    };
    let identifier = &settings.oauth2_protected_resource_identifier;
    let mut m = if identifier.is_empty() {
        ProtectedResourceMetadata::derived(DEMO_API_PATH).map_err(bad)?
    } else {
        ProtectedResourceMetadata::new(identifier).map_err(bad)?
    };
    let servers = &settings.oauth2_protected_resource_authorization_servers;
    let configured = (!settings.oidc_iss_endpoint.is_empty())
        .then(|| settings.oidc_iss_endpoint.trim_end_matches('/'))
        .or(issuer);
    m = match (servers.is_empty(), configured) {
        (false, _) => m.authorization_servers(servers.iter().cloned()),
        (true, Some(issuer)) => m.authorization_server(issuer),
        (true, None) => m.same_origin_authorization_server(PROVIDER_MOUNT),
    };
    m = m
        .scopes_supported(["read"])
        .bearer_methods_supported(
            settings
                .oauth2_protected_resource_bearer_methods_supported
                .iter()
                .cloned(),
        )
        .name(settings.oauth2_protected_resource_name.clone())
        .documentation(settings.oauth2_protected_resource_documentation.clone())
        .policy_uri(settings.oauth2_protected_resource_policy_uri.clone())
        .tos_uri(settings.oauth2_protected_resource_tos_uri.clone());
    if settings.access_token_format == crate::settings::AccessTokenFormat::Jwt {
        m = m.resource_signing_alg_values_supported(["RS256"]);
    }
    Ok(m)
}

/// The standalone server's routes: the provider under `/o/`, its RFC 8414 document also
/// at `/.well-known/oauth-authorization-server/o`, the demo API, and the demo API's RFC
/// 9728 metadata (`metadata`, see [`demo_api_metadata`]). With a configured identifier
/// the demo API refuses tokens whose RFC 8707 audience names another resource (tokens
/// without one pass); a derived identifier depends on the request, so no audience is
/// checked.
pub fn app(
    provider: &Provider<SqlStore, StoreUsers<SqlStore>>,
    metadata: &ProtectedResourceMetadata,
) -> Router {
    let mut validator = StoreValidator::new(provider.store().clone());
    if let Some(resource) = metadata.resource() {
        // A configured identifier: tokens issued for another resource (RFC 8707) are
        // refused; tokens issued without one still pass, as before resource indicators.
        validator = validator
            .with_audience(resource)
            .allow_tokens_without_audience(true);
    }
    let bearer = BearerLayer::new(validator)
        .with_policy(ScopePolicy::required("read"))
        .with_resource_metadata(metadata);
    Router::new()
        .nest(PROVIDER_MOUNT, provider.router())
        .merge(provider.root_metadata_router(PROVIDER_MOUNT))
        .route(DEMO_API_PATH, get(hello).layer(bearer))
        .route_service(&metadata.well_known_path(), metadata.service())
        .fallback(|| async { (http::StatusCode::NOT_FOUND, "not found\n").into_response() })
        .layer(axum::middleware::from_fn(log_request))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

/// `serve`: migrations, then the provider at `/o/` and `GET /api/hello` (scope `read`)
/// until SIGINT/SIGTERM.
pub(super) async fn serve(global: &GlobalArgs, args: &ServeArgs) -> Result<(), CliError> {
    let settings = load_settings(global)?;
    // The token cache: the demo API, introspection and userinfo answer known tokens
    // without a database read; every revocation in this process invalidates it.
    let options = SqlOptions {
        token_cache: Some(TokenCacheOptions::default()),
        ..SqlOptions::default()
    };
    let store = super::open_or_create_store(global, options).await?;
    let ran = store
        .migrate()
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    if ran > 0 {
        tracing::info!(migrations = ran, "migrations applied");
    }
    let store = Arc::new(store);
    let mut builder = Provider::builder(settings, store.clone(), StoreUsers::new(store.clone()));
    // `--issuer` is the server's public URL; the provider is mounted under it.
    let provider_url = args
        .issuer
        .as_ref()
        .map(|url| format!("{}{PROVIDER_MOUNT}", url.trim_end_matches('/')));
    if let Some(url) = &provider_url {
        builder = builder
            .issuer(url)
            .map_err(|e| CliError::new(2, e.to_string()))?;
    }
    let provider = builder
        .build()
        .map_err(|e| CliError::new(2, e.to_string()))?;
    let metadata = demo_api_metadata(provider.settings(), provider_url.as_deref())?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| CliError::new(1, format!("cannot listen on {}: {e}", args.bind)))?;
    let base = format!("http://{}", args.bind);
    tracing::info!("listening on {base} (provider at {base}/o/, demo API at {base}/api/hello)");
    let users = store
        .count_users()
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?;
    let apps = store
        .list_applications()
        .await
        .map_err(|e| CliError::new(1, e.to_string()))?
        .len();
    if users == 0 || apps == 0 {
        super::stderr_line!(
            "\nThe database has {users} user(s) and {apps} application(s). To get started, in another terminal:\n\n  \
             oauth-toolkit createuser alice --password-stdin <<< 'choose-a-long-password'\n  \
             oauth-toolkit createapplication confidential client-credentials --client-id demo --name demo\n  \
             # it prints the generated secret once: SECRET=...\n  \
             curl -s -u \"demo:$SECRET\" -d grant_type=client_credentials -d scope=read {base}/o/token/\n  \
             curl -s -H \"Authorization: Bearer $ACCESS_TOKEN\" {base}/api/hello\n"
        );
    }
    let summaries = tokio::spawn(log_summaries(std::time::Duration::from_secs(60)));
    // Every replica on one PostgreSQL runs its own cleanup for now: taking an advisory
    // lock per run so that only one of them does is issue 15's (item 4). SQLite has one
    // process.
    let cleanup = (args.cleanup_interval > 0).then(|| {
        tracing::info!(
            every_seconds = args.cleanup_interval,
            "expired-token cleanup running in the background"
        );
        crate::cleanup::spawn_cleanup(
            store.clone(),
            Arc::new(provider.settings().clone()),
            std::time::Duration::from_secs(args.cleanup_interval),
        )
    });
    let timeouts = ServerTimeouts {
        header_read: std::time::Duration::from_secs(args.header_read_timeout.max(1)),
        request: std::time::Duration::from_secs(args.request_timeout.max(1)),
    };
    run_server(
        listener,
        app(&provider, &metadata),
        timeouts,
        shutdown_signal(),
    )
    .await;
    summaries.abort();
    if let Some(cleanup) = cleanup {
        // A run in progress stops after its current batch, before the store closes.
        cleanup.stop().await;
    }
    store.close().await;
    Ok(())
}

/// The deadlines of [`run_server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerTimeouts {
    /// How long a client may take to send a request's headers; also how long an idle
    /// keep-alive connection stays open (default 10 s).
    pub header_read: std::time::Duration,
    /// How long a client may take to send a request's body once the headers are in
    /// (default 30 s): past it, 408 and the connection is closed.
    pub request: std::time::Duration,
}

impl Default for ServerTimeouts {
    fn default() -> Self {
        ServerTimeouts {
            header_read: std::time::Duration::from_secs(10),
            request: std::time::Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1, keep-alive) until `shutdown`, then lets the
/// requests in flight finish (at most 30 s). Unlike `axum::serve`, a connection that has
/// not sent its headers within `timeouts.header_read` is closed, and every request passes
/// the server's edge checks first: exactly one `Host` on HTTP/1.1 (else 400), a declared
/// body over the provider's limit refused with 413 before any `100 Continue`, and the
/// whole body within `timeouts.request` (else 408).
pub async fn run_server(
    listener: tokio::net::TcpListener,
    app: Router,
    timeouts: ServerTimeouts,
    shutdown: impl std::future::Future<Output = ()>,
) {
    // `with_state(())` turns every handler into its finished service once, here. Without
    // it a `Router<()>` called as a tower service rebuilds each handler route — the
    // handler boxed again, every layer over it (the bearer layer, the request log, the
    // edge checks) applied again — on every request (`axum::serve` does this through
    // `into_make_service`; this loop serves the router directly).
    let app = app
        .layer(axum::middleware::from_fn_with_state(
            super::edge::EdgeLimits {
                request_timeout: timeouts.request,
                max_body: crate::provider::MAX_BODY,
            },
            super::edge::guard,
        ))
        .with_state(());
    let header_timeout = timeouts.header_read;
    use hyper_util::rt::{TokioIo, TokioTimer};
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a moment, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = WithPeer {
            app: app.clone(),
            peer: axum::extract::ConnectInfo(peer),
        };
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(std::time::Duration::from_secs(30), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still running after 30 s; stopping anyway");
    }
}

/// The app of one connection: every request carries the peer address as
/// `ConnectInfo<SocketAddr>` (the provider's per-address throttling reads it), as
/// `axum::serve` with `into_make_service_with_connect_info` would.
#[derive(Clone)]
struct WithPeer {
    app: Router,
    peer: axum::extract::ConnectInfo<SocketAddr>,
}

impl hyper::service::Service<http::Request<hyper::body::Incoming>> for WithPeer {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = axum::routing::future::RouteFuture<std::convert::Infallible>;

    fn call(&self, mut req: http::Request<hyper::body::Incoming>) -> Self::Future {
        req.extensions_mut().insert(self.peer);
        // A Router is always ready; `call` on a clone is what tower's `oneshot` does.
        tower_service::Service::call(&mut self.app.clone(), req.map(axum::body::Body::new))
    }
}
