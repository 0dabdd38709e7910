//! The reconcile loop: observe -> plan -> execute -> persist status, again and again.
//!
//! Level-triggered: every pass starts from the whole desired document and a fresh
//! observation, so killing the controller at any instant and starting it again leads to
//! the same end state. What must survive a restart is in the persisted status, never only
//! in memory.
//!
//! Guarantees:
//! - A workload the platform could not observe is not acted on in that pass (its
//!   observation is incomplete; planning from it could create a duplicate). Its status
//!   keeps what was known and gains a `PlatformError` condition saying what failed.
//! - A workload whose action failed keeps the condition until an action of it succeeds;
//!   other workloads carry on.
//! - Status is written only when it changed.
//! - Between passes the loop waits for the earliest of: the plan's own timer
//!   (`requeue_after`), a new document, the periodic resync, or — after a throttled or
//!   5xx pass — an exponential backoff with jitter (reset by the next clean pass).
//! - Shutdown (SIGTERM, ctrl-c) lets the current pass finish, then returns.

use std::future::Future;
use std::time::{Duration, Instant};

use backon::BackoffBuilder;
use tracing::Instrument;

use crate::document::Application;
use crate::executor::{self, ExecutionReport};
use crate::plan;
use crate::platform::{CallCounts, Platform, PlatformError};
use crate::status::{AppStatus, Timestamp, reason};
use crate::status_store::{StatusStore, StatusStoreError};

/// A validated document and the revision it came from (S3 ETag, SSM version, file hash).
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredDocument {
    pub app: Application,
    pub revision: String,
}

/// What the source watcher publishes to the loop: the document in force (the last valid
/// one) and, when the source now holds something unusable, what is wrong with it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Feed {
    pub document: Option<DesiredDocument>,
    /// e.g. `s3://b/k (revision "abc") is not a valid tugboat document: ...`.
    pub problem: Option<String>,
}

impl From<DesiredDocument> for Feed {
    fn from(document: DesiredDocument) -> Self {
        Feed {
            document: Some(document),
            problem: None,
        }
    }
}

/// Timing of the loop.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// A full pass at least this often, even when nothing seems to change (drift).
    pub resync: Duration,
    /// First backoff after a throttled or 5xx pass.
    pub backoff_min: Duration,
    /// Longest backoff.
    pub backoff_max: Duration,
    /// Where each pass's outcome is reported for `/readyz`, `/metrics` and `/status`.
    pub health: Option<crate::server::Health>,
}

impl Default for LoopConfig {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(30),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            health: None,
        }
    }
}

/// Why a whole pass failed (per-workload failures are in the report, not here).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    #[error("observing the application failed")]
    Observe(#[source] PlatformError),
    #[error("reading the persisted status failed")]
    LoadStatus(#[source] StatusStoreError),
}

impl PassError {
    pub fn is_transient(&self) -> bool {
        match self {
            PassError::Observe(e) => e.is_transient(),
            PassError::LoadStatus(_) => true,
        }
    }
}

/// What one pass did.
#[derive(Debug)]
pub struct PassReport {
    pub pass: u64,
    pub revision: String,
    /// Actions planned (after dropping those of unobservable workloads).
    pub planned: usize,
    pub execution: ExecutionReport,
    /// Workloads that could not be observed, with why.
    pub unobserved: Vec<(String, String)>,
    /// API calls of the whole pass (observe + execute).
    pub calls: CallCounts,
    pub requeue_after: Option<Duration>,
    pub status_written: bool,
    /// The status write failed (it is retried next pass).
    pub status_error: Option<String>,
    pub status: AppStatus,
}

impl PassReport {
    /// Whether the next pass should back off: something was throttled or unavailable.
    pub fn needs_backoff(&self) -> bool {
        self.execution.has_transient_failure()
    }
}

/// Runs passes for one application on one platform.
#[derive(Debug)]
pub struct Reconciler<P> {
    platform: P,
    store: Option<StatusStore>,
    /// Opens a store for a status URI; `None` store when the document names none.
    s3: Option<aws_sdk_s3::Client>,
    /// The status as last persisted (or loaded): the planner's memory.
    status: Option<AppStatus>,
    status_loaded: bool,
    passes: u64,
    /// What is wrong with the source, shown as the `DocumentInvalid` condition.
    source_problem: Option<String>,
    /// `status` differs from what the store holds (its last write failed).
    unsaved: bool,
}

impl<P: Platform> Reconciler<P> {
    /// `s3` is used for `s3://` status URIs.
    pub fn new(platform: P, s3: Option<aws_sdk_s3::Client>) -> Self {
        Self {
            platform,
            store: None,
            s3,
            status: None,
            status_loaded: false,
            passes: 0,
            source_problem: None,
            unsaved: false,
        }
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The status the next pass starts from.
    pub fn status(&self) -> Option<&AppStatus> {
        self.status.as_ref()
    }

    /// Records what is wrong with the document source (or that nothing is); the next
    /// pass shows it as the application's `DocumentInvalid` condition while the last
    /// good document stays in force.
    pub fn set_source_problem(&mut self, problem: Option<String>) {
        self.source_problem = problem;
    }

    /// One pass at time `now`.
    pub async fn pass(
        &mut self,
        doc: &DesiredDocument,
        now: Timestamp,
    ) -> Result<PassReport, PassError> {
        self.passes += 1;
        let before = self.platform.api_calls();
        self.ensure_store(&doc.app);
        if !self.status_loaded {
            if let Some(store) = &mut self.store {
                self.status = store.load().await.map_err(PassError::LoadStatus)?;
            }
            self.status_loaded = true;
        }

        let observation = match self.platform.observe(&doc.app).await {
            Ok(observation) => observation,
            Err(err) => {
                // Throttling passes by itself; anything else (access denied, a missing
                // cluster) goes into the status, where operators look.
                if !err.is_transient() {
                    let mut status = self.status.clone().unwrap_or_default();
                    crate::status::set_condition(
                        &mut status.conditions,
                        now,
                        reason::PLATFORM_ERROR,
                        true,
                        err.reason(),
                        format!("observing the application failed: {}", error_chain(&err)),
                    );
                    self.persist(&status).await;
                }
                return Err(PassError::Observe(err));
            }
        };
        let observed = observation.state;
        let mut plan = plan::plan(&doc.app, &observed, self.status.as_ref(), now);

        let unobserved = &observation.workload_errors;
        plan.actions
            .retain(|a| !unobserved.contains_key(a.action.workload()));
        let execution = executor::execute(&self.platform, &doc.app, &observed, &plan.actions).await;

        let mut status = plan.status;
        status.document_revision = Some(doc.revision.clone());
        if status
            .conditions
            .iter()
            .any(|c| c.kind == reason::PLATFORM_ERROR && c.status)
        {
            crate::status::set_condition(
                &mut status.conditions,
                now,
                reason::PLATFORM_ERROR,
                false,
                reason::CONVERGED,
                String::new(),
            );
        }
        match &self.source_problem {
            Some(problem) => set_document_invalid(&mut status, now, true, problem.clone()),
            None if status
                .conditions
                .iter()
                .any(|c| c.kind == reason::DOCUMENT_INVALID) =>
            {
                set_document_invalid(&mut status, now, false, String::new())
            }
            None => {}
        }
        let previous = self.status.as_ref();
        for (workload, error) in unobserved {
            tracing::warn!(workload, error = %error_chain(error), "workload not observed; not acting on it this pass");
            // Keep what was known; the plan for it was built from partial data.
            let known = previous
                .and_then(|s| s.workloads.get(workload))
                .cloned()
                .unwrap_or_default();
            status.workloads.insert(workload.clone(), known);
            mark_platform_error(&mut status, workload, now, error, "observing it");
        }
        for (workload, failure) in &execution.failures {
            let doing = executor::action_name(&failure.action.action);
            mark_platform_error(&mut status, workload, now, &failure.error, doing);
        }
        for (workload, ws) in status.workloads.iter_mut() {
            if unobserved.contains_key(workload) || execution.failures.contains_key(workload) {
                continue;
            }
            if ws
                .condition(reason::PLATFORM_ERROR)
                .is_some_and(|c| c.status)
            {
                ws.set_condition(now, reason::PLATFORM_ERROR, false, reason::CONVERGED, "");
                ws.record(now, reason::CONVERGED, "the platform answers again");
            }
        }

        let (status_written, status_error) = self.persist(&status).await;

        Ok(PassReport {
            pass: self.passes,
            revision: doc.revision.clone(),
            planned: plan.actions.len(),
            calls: self.platform.api_calls().since(&before),
            unobserved: unobserved
                .iter()
                .map(|(w, e)| (w.clone(), e.to_string()))
                .collect(),
            execution,
            requeue_after: plan.requeue_after,
            status_written,
            status_error,
            status,
        })
    }

    /// Writes `status` if it differs from what was persisted. Returns whether it was
    /// written, and why not when the store failed.
    async fn persist(&mut self, status: &AppStatus) -> (bool, Option<String>) {
        if self.status.as_ref() == Some(status) && !self.unsaved {
            return (false, None);
        }
        let Some(store) = &mut self.store else {
            self.status = Some(status.clone());
            return (false, None);
        };
        match store.save(status).await {
            Ok(()) => {
                self.status = Some(status.clone());
                self.unsaved = false;
                (true, None)
            }
            Err(StatusStoreError::Conflict { uri }) => {
                tracing::warn!(%uri, "status changed under us; re-reading it next pass");
                self.status_loaded = false;
                (
                    false,
                    Some(format!("status at {uri} changed by another writer")),
                )
            }
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "persisting status failed; retrying next pass");
                // Keep planning from the new status in memory; it is written when the
                // store answers again.
                self.status = Some(status.clone());
                self.unsaved = true;
                (false, Some(error_chain(&e)))
            }
        }
    }

    /// Opens the status store the document names, once per URI.
    fn ensure_store(&mut self, app: &Application) {
        let uri = app.spec.status.as_ref().map(|s| s.uri.as_str());
        let current = self.store.as_ref().map(StatusStore::uri);
        if uri == current.as_deref() {
            return;
        }
        self.store = match uri {
            None => None,
            Some(uri) => match StatusStore::open(uri, self.s3.clone()) {
                Ok(store) => Some(store),
                Err(e) => {
                    tracing::error!(error = %e, "status will not be persisted");
                    None
                }
            },
        };
        self.status_loaded = false;
    }
}

/// What a pass would do, without doing it: for `tugboat diff`.
#[derive(Debug)]
pub struct Preview {
    pub plan: plan::Plan,
    /// The most API calls each planned action can cost, in plan order.
    pub estimates: Vec<crate::platform::CallEstimate>,
    /// What observing cost.
    pub observe_calls: CallCounts,
    /// Workloads that could not be observed (their actions are left out of the plan).
    pub unobserved: Vec<(String, String)>,
}

/// Observes and plans against `status` (the persisted one, if any) at `now`, and
/// estimates each action's cost. Changes nothing on the platform.
pub async fn preview<P: Platform>(
    platform: &P,
    app: &Application,
    status: Option<AppStatus>,
    now: Timestamp,
) -> Result<Preview, PlatformError> {
    let before = platform.api_calls();
    let observation = platform.observe(app).await?;
    let observe_calls = platform.api_calls().since(&before);
    let observed = observation.state;
    let mut plan = plan::plan(app, &observed, status.as_ref(), now);
    let unobserved = observation.workload_errors;
    plan.actions
        .retain(|a| !unobserved.contains_key(a.action.workload()));
    let estimates = plan
        .actions
        .iter()
        .map(|a| platform.estimate_calls(&a.action, &observed))
        .collect();
    Ok(Preview {
        plan,
        estimates,
        observe_calls,
        unobserved: unobserved
            .iter()
            .map(|(w, e)| (w.clone(), error_chain(e)))
            .collect(),
    })
}

/// Sets the application's `DocumentInvalid` condition.
fn set_document_invalid(status: &mut AppStatus, now: Timestamp, invalid: bool, message: String) {
    let why = if invalid {
        reason::DOCUMENT_INVALID
    } else {
        reason::CONVERGED
    };
    crate::status::set_condition(
        &mut status.conditions,
        now,
        reason::DOCUMENT_INVALID,
        invalid,
        why,
        message,
    );
}

fn mark_platform_error(
    status: &mut AppStatus,
    workload: &str,
    now: Timestamp,
    error: &PlatformError,
    doing: &str,
) {
    let ws = status.workloads.entry(workload.to_string()).or_default();
    let message = format!("{doing} failed: {}", error_chain(error));
    let was_failing = ws
        .condition(reason::PLATFORM_ERROR)
        .is_some_and(|c| c.status && c.message == message);
    ws.set_condition(
        now,
        reason::PLATFORM_ERROR,
        true,
        error.reason(),
        message.clone(),
    );
    if !was_failing {
        ws.record(now, error.reason(), message.clone());
    }
    ws.message = message;
}

/// An error and its causes on one line.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
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
        let wait = match feed.document {
            None => config.resync,
            Some(doc) => {
                let started = Instant::now();
                let span = tracing::info_span!(
                    "pass",
                    pass = reconciler.passes + 1,
                    revision = %doc.revision,
                    actions = tracing::field::Empty,
                    duration_ms = tracing::field::Empty,
                );
                let result = reconciler
                    .pass(&doc, Timestamp::now())
                    .instrument(span.clone())
                    .await;
                span.record("duration_ms", started.elapsed().as_millis() as u64);
                if let Some(health) = &config.health {
                    health.record(&result, Timestamp::now());
                }
                let _entered = span.enter();
                match result {
                    Ok(report) => {
                        span.record("actions", report.planned);
                        tracing::info!(
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
