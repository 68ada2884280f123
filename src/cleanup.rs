//! Deleting expired tokens: [`clear_expired`] (DOT's `clear_expired()`, the library call
//! behind `oauth-toolkit cleartokens`) and [`spawn_cleanup`], which runs it periodically in
//! the host's tokio runtime.
//!
//! The steps run in DOT 3.4.1's order, with its cutoffs (`now` is read once):
//!
//! 1. revoked refresh tokens with `revoked <= now - REFRESH_TOKEN_GRACE_PERIOD_SECONDS`;
//!    with `REFRESH_TOKEN_REUSE_PROTECTION` the cutoff is `now -
//!    REFRESH_TOKEN_EXPIRE_SECONDS` instead (reuse detection needs the tombstones), and
//!    the step is skipped when that is unset;
//! 2. orphaned refresh tokens (live, with no access token);
//! 3. live refresh tokens whose access token expired at or before `now -
//!    REFRESH_TOKEN_EXPIRE_SECONDS` (only when that is set);
//! 4. expired access tokens with no refresh token (an expired access token whose refresh
//!    token is still usable is kept);
//! 5. expired ID tokens with no access token;
//! 6. expired authorization codes;
//! 7. expired device grants (DOT never clears these).
//! 8. dynamically registered clients (RFC 7591) older than
//!    `DCR_UNUSED_CLIENT_MAX_AGE_SECONDS` that never obtained a token or code (only when
//!    that is set; DOT has no such step). Every run first marks the registrations whose
//!    client holds a token or code, before deleting anything, so a client whose tokens
//!    expired and were cleared is still known to have been used.
//!
//! Each step deletes in batches of `CLEAR_EXPIRED_TOKENS_BATCH_SIZE` rows, one SQL
//! statement per batch (no ids are fetched into the application, so memory stays flat
//! whatever the table size), and sleeps `CLEAR_EXPIRED_TOKENS_BATCH_INTERVAL` between
//! batches. Expired tokens are also refused whenever they are presented: the cleanup is
//! housekeeping, never the only guard.
//!
//! ```
//! use tower_oauth_toolkit::cleanup::clear_expired;
//! use tower_oauth_toolkit::settings::Settings;
//! use tower_oauth_toolkit::store::memory::MemoryStore;
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let report = clear_expired(&MemoryStore::new(), &Settings::default()).await.unwrap();
//! assert_eq!(report.total(), 0);
//! # }
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::model::Timestamp;
use crate::settings::Settings;
use crate::store::{CleanupStep, Store, StoreError};

/// What one step did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StepReport {
    /// The step's name (`revoked_refresh_tokens`, …).
    pub step: &'static str,
    /// Rows deleted.
    pub deleted: u64,
    /// Why the step did not run, when it did not (a setting is unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<&'static str>,
}

/// What [`clear_expired`] did, step by step in the order they ran.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CleanupReport {
    /// One entry per step.
    pub steps: Vec<StepReport>,
    /// Whether the run stopped early because it was asked to.
    pub cancelled: bool,
}

impl CleanupReport {
    /// Rows deleted by one step.
    pub fn deleted(&self, step: CleanupStep) -> u64 {
        self.steps
            .iter()
            .find(|s| s.step == step.name())
            .map_or(0, |s| s.deleted)
    }

    /// Rows deleted in all.
    pub fn total(&self) -> u64 {
        self.steps.iter().map(|s| s.deleted).sum()
    }
}

/// Hooks for progress reporting and cancellation. Every method has a do-nothing default.
pub trait CleanupProgress: Send {
    /// Whether to count each step's rows first (an extra query per step) so that
    /// [`CleanupProgress::step_started`] gets a total.
    fn wants_totals(&self) -> bool {
        false
    }
    /// A step starts; `total` is its row count when [`CleanupProgress::wants_totals`].
    fn step_started(&mut self, _step: CleanupStep, _total: Option<u64>) {}
    /// A batch of `n` rows was deleted.
    fn batch_deleted(&mut self, _step: CleanupStep, _n: u64) {}
    /// A step ended.
    fn step_finished(&mut self, _step: CleanupStep, _report: &StepReport) {}
    /// Return true to stop before the next batch.
    fn cancelled(&self) -> bool {
        false
    }
    /// Whether each step's line ("12 Expired access tokens deleted", or why it was
    /// skipped) is logged at INFO, as `cleartokens` and DOT do (the default). The
    /// background task of [`spawn_cleanup`] says no: its steps log at DEBUG and it logs
    /// one line per run instead.
    fn log_steps(&self) -> bool {
        true
    }
}

/// A [`CleanupProgress`] that reports nothing.
#[derive(Debug, Default)]
pub struct NoProgress;
impl CleanupProgress for NoProgress {}

/// The cutoff of each step, from the settings (`None`: the step is skipped, with why).
pub fn step_cutoff(
    step: CleanupStep,
    settings: &Settings,
    now: Timestamp,
) -> Result<Timestamp, &'static str> {
    let expire = settings.refresh_token_expire();
    match step {
        CleanupStep::RevokedRefreshTokens => {
            if settings.refresh_token_reuse_protection {
                expire.map(|e| now.minus(e)).ok_or(
                    "REFRESH_TOKEN_REUSE_PROTECTION keeps revoked refresh tokens until \
                     REFRESH_TOKEN_EXPIRE_SECONDS, which is unset",
                )
            } else {
                Ok(now.minus(settings.refresh_token_grace_period_seconds))
            }
        }
        CleanupStep::ExpiredRefreshTokens => expire
            .map(|e| now.minus(e))
            .ok_or("REFRESH_TOKEN_EXPIRE_SECONDS is unset"),
        CleanupStep::UnusedRegisteredClients => settings
            .dcr_unused_client_max_age_seconds
            .filter(|age| !age.is_zero())
            .map(|age| now.minus(age))
            .ok_or("DCR_UNUSED_CLIENT_MAX_AGE_SECONDS is unset"),
        _ => Ok(now),
    }
}

fn summary(step: CleanupStep) -> &'static str {
    match step {
        CleanupStep::RevokedRefreshTokens => "Revoked refresh tokens deleted",
        CleanupStep::OrphanedRefreshTokens => "Orphaned refresh tokens deleted",
        CleanupStep::ExpiredRefreshTokens => "Expired refresh tokens deleted",
        CleanupStep::ExpiredAccessTokens => "Expired access tokens deleted",
        CleanupStep::ExpiredIdTokens => "Expired ID tokens deleted",
        CleanupStep::ExpiredGrants => "Expired grant tokens deleted",
        CleanupStep::ExpiredDeviceGrants => "Expired device grants deleted",
        CleanupStep::UnusedRegisteredClients => "Unused registered clients deleted",
    }
}

/// Deletes expired tokens now (DOT's `clear_expired()`).
pub async fn clear_expired<S: Store>(
    store: &S,
    settings: &Settings,
) -> Result<CleanupReport, StoreError> {
    clear_expired_with(store, settings, Timestamp::now(), &mut NoProgress).await
}

/// [`clear_expired`] at a given time, with progress hooks.
pub async fn clear_expired_with<S: Store, P: CleanupProgress + ?Sized>(
    store: &S,
    settings: &Settings,
    now: Timestamp,
    progress: &mut P,
) -> Result<CleanupReport, StoreError> {
    let batch = settings.clear_expired_tokens_batch_size.max(1) as u64;
    let interval = settings.clear_expired_tokens_batch_interval;
    let mut report = CleanupReport::default();
    // Dynamically registered clients that hold a token or code now are marked used
    // before any token goes — on every run, whether or not the last step is on — so that
    // step never takes a client that was used for one that never was.
    // If that fails, the token steps still run and only the last one is skipped.
    let marked = match store.mark_used_registrations(now).await {
        Ok(_) => true,
        Err(e) => {
            tracing::warn!(error = %e, "marking used registered clients failed; their step is skipped this run");
            false
        }
    };
    for step in CleanupStep::ALL {
        if progress.cancelled() {
            report.cancelled = true;
            break;
        }
        let cutoff = match step_cutoff(step, settings, now).and_then(|c| {
            if step == CleanupStep::UnusedRegisteredClients && !marked {
                Err("the used clients could not be marked")
            } else {
                Ok(c)
            }
        }) {
            Ok(c) => c,
            Err(why) => {
                if progress.log_steps() {
                    tracing::info!("{}: skipped ({why})", step.name());
                } else {
                    tracing::debug!("{}: skipped ({why})", step.name());
                }
                let r = StepReport {
                    step: step.name(),
                    deleted: 0,
                    skipped: Some(why),
                };
                progress.step_finished(step, &r);
                report.steps.push(r);
                continue;
            }
        };
        let total = if progress.wants_totals() {
            Some(store.count_expired(step, cutoff).await?)
        } else {
            None
        };
        progress.step_started(step, total);
        let mut deleted = 0u64;
        loop {
            let n = store.delete_expired_batch(step, cutoff, batch).await?;
            deleted += n;
            progress.batch_deleted(step, n);
            tracing::debug!(step = step.name(), deleted = n, "batch deleted");
            if n < batch {
                break;
            }
            if progress.cancelled() {
                report.cancelled = true;
                break;
            }
            if !interval.is_zero() {
                tokio::time::sleep(interval).await;
            }
        }
        if progress.log_steps() {
            tracing::info!("{deleted} {}", summary(step));
        } else {
            tracing::debug!("{deleted} {}", summary(step));
        }
        let r = StepReport {
            step: step.name(),
            deleted,
            skipped: None,
        };
        progress.step_finished(step, &r);
        report.steps.push(r);
        if report.cancelled {
            break;
        }
    }
    Ok(report)
}

/// A running background cleanup (see [`spawn_cleanup`]).
#[derive(Debug)]
pub struct CleanupHandle {
    stop: Arc<StopSignal>,
    task: JoinHandle<()>,
}

#[derive(Debug, Default)]
struct StopSignal {
    stopped: AtomicBool,
    notify: Notify,
}

impl StopSignal {
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::SeqCst)
    }
    async fn wait(&self) {
        let notified = self.notify.notified();
        if self.is_stopped() {
            return;
        }
        notified.await;
    }
}

struct StopCheck<'a>(&'a StopSignal);
impl CleanupProgress for StopCheck<'_> {
    fn cancelled(&self) -> bool {
        self.0.is_stopped()
    }
    fn log_steps(&self) -> bool {
        false
    }
}

/// The one line a background run logs: INFO when it deleted something, DEBUG otherwise
/// (a run every few seconds on a quiet database would fill the log with zeros).
fn log_run(report: &CleanupReport, took: Duration) {
    let n = |step| report.deleted(step);
    macro_rules! run_line {
        ($level:ident) => {
            tracing::$level!(
                deleted = report.total(),
                revoked_refresh_tokens = n(CleanupStep::RevokedRefreshTokens),
                orphaned_refresh_tokens = n(CleanupStep::OrphanedRefreshTokens),
                expired_refresh_tokens = n(CleanupStep::ExpiredRefreshTokens),
                expired_access_tokens = n(CleanupStep::ExpiredAccessTokens),
                expired_id_tokens = n(CleanupStep::ExpiredIdTokens),
                expired_grants = n(CleanupStep::ExpiredGrants),
                expired_device_grants = n(CleanupStep::ExpiredDeviceGrants),
                unused_registered_clients = n(CleanupStep::UnusedRegisteredClients),
                cancelled = report.cancelled,
                millis = took.as_millis() as u64,
                "expired tokens cleared"
            )
        };
    }
    if report.total() > 0 {
        run_line!(info);
    } else {
        run_line!(debug);
    }
}

impl CleanupHandle {
    /// Asks the task to stop (a run in progress stops after its current batch) and waits
    /// for it.
    pub async fn stop(self) {
        self.stop.stop();
        let _ = self.task.await;
    }

    /// Whether the task has ended.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Runs [`clear_expired`] every `every` in the current tokio runtime, starting after the
/// first period. Runs never overlap (a run longer than the period delays the next one); a
/// database error is logged and the next tick tries again. Each run logs one line with
/// the rows deleted per step and its duration: at INFO when it deleted something, at
/// DEBUG otherwise (the per-step lines of [`clear_expired`] are DEBUG here). Stop it with
/// [`CleanupHandle::stop`].
pub fn spawn_cleanup<S: Store>(
    store: Arc<S>,
    settings: Arc<Settings>,
    every: Duration,
) -> CleanupHandle {
    spawn_cleanup_until(store, settings, every, std::future::pending())
}

/// [`spawn_cleanup`] that also stops when `shutdown` completes, e.g.
/// `token.cancelled_owned()` of a tokio-util `CancellationToken`, or a signal handler.
pub fn spawn_cleanup_until<S, F>(
    store: Arc<S>,
    settings: Arc<Settings>,
    every: Duration,
    shutdown: F,
) -> CleanupHandle
where
    S: Store,
    F: Future<Output = ()> + Send + 'static,
{
    let stop = Arc::new(StopSignal::default());
    let signal = stop.clone();
    // At least 1 ms; at most ~100 years, so `now + every` cannot overflow.
    let every = every.clamp(
        Duration::from_millis(1),
        Duration::from_secs(100 * 365 * 86_400),
    );
    let task = tokio::spawn(async move {
        let watcher = {
            let signal = signal.clone();
            tokio::spawn(async move {
                shutdown.await;
                signal.stop();
            })
        };
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = signal.wait() => break,
                _ = ticks.tick() => {}
            }
            if signal.is_stopped() {
                break;
            }
            let mut check = StopCheck(&signal);
            let started = std::time::Instant::now();
            match clear_expired_with(&*store, &settings, Timestamp::now(), &mut check).await {
                Ok(report) => log_run(&report, started.elapsed()),
                Err(e) => {
                    tracing::error!(error = %e, "clearing expired tokens failed; retrying at the next tick")
                }
            }
        }
        watcher.abort();
    });
    CleanupHandle { stop, task }
}
