//! The loop: runs [`Reconciler::pass`] again and again, and decides when the next pass
//! runs.
//!
//! Guarantees:
//! - Between passes the loop waits for the earliest of: the plan's own timer
//!   (`requeue_after`), a new document or source problem on the feed, the periodic
//!   resync, or — after a throttled or 5xx pass — an exponential backoff with jitter
//!   (reset by the next clean pass).
//! - Operator overrides are read on every inbox poll ([`LoopConfig::inbox_poll`], 1 s),
//!   not only at the resync: a change in what the inbox holds starts a pass at once, so
//!   an operator command takes effect within a poll plus a pass.
//! - Each pass's result is handed to [`LoopConfig::on_pass`] (health, metrics,
//!   `/status`); the loop depends on no consumer of it.
//! - Shutdown (SIGTERM, ctrl-c) lets the current pass finish, then returns.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use crate::platform::Platform;
use crate::status::Timestamp;

use super::feed::Feed;
use super::reconciler::{PassOutcome, Reconciler, error_chain};

/// Called after each pass with its outcome and when it ended.
pub type OnPass = Arc<dyn Fn(&PassOutcome, Timestamp) + Send + Sync>;

/// Timing of the loop, and who hears about each pass.
#[derive(Clone)]
pub struct LoopConfig {
    /// A full pass at least this often, even when nothing seems to change (drift).
    pub resync: Duration,
    /// First backoff after a throttled or 5xx pass.
    pub backoff_min: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Told each pass's outcome (e.g. [`super::health::Health::record`]).
    pub on_pass: Option<OnPass>,
    /// How often the operator inbox is read between passes; `None`: only at passes.
    pub inbox_poll: Option<Duration>,
}

impl fmt::Debug for LoopConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoopConfig")
            .field("resync", &self.resync)
            .field("backoff_min", &self.backoff_min)
            .field("backoff_max", &self.backoff_max)
            .field("on_pass", &self.on_pass.as_ref().map(|_| "callback"))
            .field("inbox_poll", &self.inbox_poll)
            .finish()
    }
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(30),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            on_pass: None,
            inbox_poll: Some(Duration::from_secs(1)),
        }
    }
}

/// Resolves once `inbox` holds something other than `baseline` for `app`, reading it
/// every `every`. A read that fails is not a change (the pass reports it); with no
/// baseline (its read failed too) the first good read is the baseline.
async fn overrides_changed(
    inbox: Arc<dyn crate::inbox::Inbox>,
    app: crate::document::Application,
    every: Duration,
) {
    let mut baseline = inbox.read(&app).await.ok();
    loop {
        tokio::time::sleep(every).await;
        let Ok(now) = inbox.read(&app).await else {
            continue;
        };
        match &baseline {
            Some(b) if b.by_workload == now.by_workload && b.problems == now.problems => {}
            Some(_) => return,
            None => baseline = Some(now),
        }
    }
}

/// Runs passes until `shutdown` resolves. Documents arrive on `documents` (the source
/// watcher publishes each new valid revision and each source problem); the loop waits
/// for the first document.
pub async fn run<P: Platform>(
    reconciler: &mut Reconciler<P>,
    mut documents: tokio::sync::watch::Receiver<Feed>,
    config: LoopConfig,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let backoff_builder = backon::ExponentialBuilder::default()
        .with_min_delay(config.backoff_min)
        .with_max_delay(config.backoff_max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times();
    let mut backoff = backoff_builder.build();
    loop {
        let feed = documents.borrow_and_update().clone();
        reconciler.set_source_problem(feed.problem);
        let app = feed.document.as_ref().map(|d| d.app.clone());
        let wait = match feed.document {
            None => config.resync,
            Some(doc) => {
                let started = Instant::now();
                // The pass logs inside its own span (Reconciler::pass); the loop's summary
                // line carries the same fields.
                let span =
                    super::reconciler::pass_span(reconciler.passes() + 1, &doc.app, &doc.revision);
                let result = reconciler.pass(&doc, Timestamp::now()).await;
                let duration_ms = started.elapsed().as_millis() as u64;
                if let Some(on_pass) = &config.on_pass {
                    on_pass(&result, Timestamp::now());
                }
                let _entered = span.enter();
                match result {
                    Ok(report) => {
                        tracing::info!(
                            actions = report.planned,
                            duration_ms,
                            changes = report.execution.changes(),
                            failures = report.execution.failures.len(),
                            unobserved = report.unobserved.len(),
                            calls = %report.calls,
                            status_written = report.status_written,
                            "pass finished"
                        );
                        if report.needs_backoff() {
                            backoff.next().unwrap_or(config.backoff_max)
                        } else {
                            backoff = backoff_builder.build();
                            report
                                .requeue_after
                                .map_or(config.resync, |r| r.min(config.resync))
                        }
                    }
                    Err(e) if e.is_transient() => {
                        let wait = backoff.next().unwrap_or(config.backoff_max);
                        tracing::warn!(error = %error_chain(&e), backoff_ms = wait.as_millis() as u64, "pass failed; backing off");
                        wait
                    }
                    Err(e) => {
                        tracing::error!(error = %error_chain(&e), "pass failed; fix the cause, retrying at the next resync");
                        config.resync
                    }
                }
            }
        };
        tokio::select! {
            biased;
            () = &mut shutdown => {
                tracing::info!("shutting down after the pass");
                return;
            }
            changed = documents.changed() => {
                if changed.is_err() {
                    tracing::info!("document source closed; stopping");
                    return;
                }
            }
            () = tokio::time::sleep(wait) => {}
            () = async {
                match (config.inbox_poll, app) {
                    (Some(every), Some(app)) => {
                        overrides_changed(reconciler.inputs().inbox.clone(), app, every).await
                    }
                    _ => std::future::pending().await,
                }
            } => {
                tracing::debug!("the operator inbox changed: passing now");
            }
        }
    }
}

/// Resolves on SIGTERM or ctrl-c.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for ctrl-c");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
