//! One reconcile pass: observe -> plan -> execute -> persist status.
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
//! - The observation is assembled from the platform, the operator inbox and the model
//!   resolver ([`super::assemble`]); an override value that does not parse shows as its
//!   workload's `OverrideInvalid` condition.
//! - The analysis measurements the persisted runs owe at `now` are taken in the pass,
//!   before planning ([`crate::analysis::Runner`]); nothing measures between passes.
//!
//! This module knows nothing of the HTTP endpoint or of health: the loop
//! ([`super::driver`]) hands each pass's result to a callback.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::analysis::{Providers, Runner};
use crate::document::Application;
use crate::pass::{Facts, Planned, Problem};
use crate::plan;
use crate::platform::{CallCounts, Platform, PlatformError};
use crate::status::{AppStatus, Timestamp};
use crate::status_store::{StatusStore, StatusStoreError};

pub use super::assemble::SideInputs;
use super::assemble::{Assembled, observe};
use super::executor::{self, ExecutionReport};
pub use super::feed::DesiredDocument;

/// What the loop hands to its `on_pass` callback after each pass.
pub type PassOutcome = Result<PassReport, PassError>;

/// Why a whole pass failed (per-workload failures are in the report, not here).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PassError {
    #[error("observing the application failed")]
    Observe(#[source] PlatformError),
    #[error("reading the operator overrides failed")]
    ReadOverrides(#[source] PlatformError),
    #[error("resolving the models failed")]
    ResolveModels(#[source] PlatformError),
    #[error("reading the persisted status failed")]
    LoadStatus(#[source] StatusStoreError),
}

impl PassError {
    /// The application condition a failed pass sets, when it sets one: a failed
    /// observation does; a status that cannot be read does not (there is nowhere to
    /// write it).
    fn problem(&self) -> Option<Problem> {
        match self {
            PassError::Observe(e) | PassError::ReadOverrides(e) | PassError::ResolveModels(e) => {
                Some(Problem::new(e.reason(), error_chain(self)))
            }
            PassError::LoadStatus(_) => None,
        }
    }

    pub fn is_transient(&self) -> bool {
        match self {
            PassError::Observe(e) | PassError::ReadOverrides(e) | PassError::ResolveModels(e) => {
                e.is_transient()
            }
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
    /// API calls of the whole pass: the platform's (observe + execute), the inbox's and
    /// the model resolver's.
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
    inputs: SideInputs,
    store: Option<StatusStore>,
    /// Opens a store for a status URI; `None` store when the document names none.
    s3: Option<crate::aws::S3Client>,
    /// The status as last persisted (or loaded): the planner's memory.
    status: Option<AppStatus>,
    status_loaded: bool,
    passes: u64,
    /// What is wrong with the source, shown as the `DocumentInvalid` condition.
    source_problem: Option<String>,
    /// `status` differs from what the store holds (its last write failed).
    unsaved: bool,
    /// Takes the analysis measurements a pass owes (from the status) before planning.
    analysis: Runner,
    /// Sends the webhooks of `spec.notifications`; started on the first pass that has
    /// any, unless given ([`Reconciler::with_notifier`]).
    notifier: Option<super::notify::Notifier>,
    /// Asks the `gate` steps the status waits at.
    gate_client: reqwest::Client,
}

impl<P: Platform> Reconciler<P> {
    /// A reconciler with no operator inbox and no model store ([`SideInputs::none`]):
    /// for tests and tools. `s3` is used for `s3://` status URIs.
    pub fn new(platform: P, s3: Option<crate::aws::S3Client>) -> Self {
        Self::with_inputs(platform, SideInputs::none(), s3)
    }

    /// A reconciler reading overrides and models from `inputs`.
    pub fn with_inputs(platform: P, inputs: SideInputs, s3: Option<crate::aws::S3Client>) -> Self {
        Self {
            platform,
            inputs,
            store: None,
            s3,
            status: None,
            status_loaded: false,
            passes: 0,
            source_problem: None,
            unsaved: false,
            analysis: Runner::new(Providers::without_aws()),
            notifier: None,
            gate_client: reqwest::Client::new(),
        }
    }

    /// Sends notifications through `notifier` (by default: one reading secrets from the
    /// environment, started when a document first names a webhook).
    pub fn with_notifier(mut self, notifier: super::notify::Notifier) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Measures analysis templates with `runner` (by default: web and Prometheus, no ALB
    /// metrics).
    pub fn with_analysis(mut self, runner: Runner) -> Self {
        self.analysis = runner;
        self
    }

    pub fn platform(&self) -> &P {
        &self.platform
    }

    pub fn inputs(&self) -> &SideInputs {
        &self.inputs
    }

    /// Every call made so far: the platform's and the side inputs'.
    fn api_calls(&self) -> CallCounts {
        self.platform.api_calls().plus(&self.inputs.api_calls())
    }

    /// Passes run so far.
    pub fn passes(&self) -> u64 {
        self.passes
    }

    /// The status the next pass starts from.
    pub fn status(&self) -> Option<&AppStatus> {
        self.status.as_ref()
    }

    /// Makes the next pass read the persisted status again instead of planning from the
    /// one in memory: a replica that becomes leader again must start from what the
    /// leader before it left.
    pub fn forget_status(&mut self) {
        self.status_loaded = false;
        self.unsaved = false;
    }

    /// Records what is wrong with the document source (or that nothing is); the next
    /// pass shows it as the application's `DocumentInvalid` condition while the last
    /// good document stays in force.
    pub fn set_source_problem(&mut self, problem: Option<String>) {
        self.source_problem = problem;
    }

    /// One pass at time `now`: load the status once, observe, plan, execute, fold the
    /// pass's facts into the status ([`crate::pass::fold`]), persist it.
    ///
    /// Every log line of the pass is inside a `pass` span with the pass number, the
    /// application (`name/environment`) and the revision; the executor's lines add the
    /// workload and its rollout ([`executor::rollout_ids`]).
    pub async fn pass(
        &mut self,
        doc: &DesiredDocument,
        now: Timestamp,
    ) -> Result<PassReport, PassError> {
        use tracing::Instrument;
        let span = pass_span(self.passes + 1, &doc.app, &doc.revision);
        self.pass_inner(doc, now).instrument(span).await
    }

    async fn pass_inner(
        &mut self,
        doc: &DesiredDocument,
        now: Timestamp,
    ) -> Result<PassReport, PassError> {
        self.passes += 1;
        let before = self.api_calls();
        self.load_status(&doc.app).await?;

        let Assembled {
            state: mut observed,
            unobserved,
            override_problems,
        } = match observe(&self.platform, &self.inputs, &doc.app).await {
            Ok(assembled) => assembled,
            Err(err) => return Err(self.whole_pass_failed(err, now).await),
        };
        // The measurements the persisted runs owe at `now`, taken in the pass (no
        // background task): the planner records them into the runs it persists.
        observed.measurements = self
            .analysis
            .measure(&doc.app, self.status.as_ref(), now)
            .await;
        // Gates likewise: asked in the pass, their answers recorded by the planner.
        observed.gate_answers =
            super::gate::ask(&self.gate_client, self.status.as_ref(), now).await;
        let mut plan = plan::plan(&doc.app, &observed, self.status.as_ref(), now);
        plan.actions
            .retain(|a| !unobserved.contains_key(a.action.workload()));
        let rollouts = executor::rollout_ids(self.status.as_ref(), &plan.status);
        let execution = executor::execute_in(
            &self.platform,
            &doc.app,
            &observed,
            &plan.actions,
            &rollouts,
        )
        .await;

        for (workload, error) in &unobserved {
            tracing::warn!(workload, error = %error_chain(error), "workload not observed; not acting on it this pass");
        }
        let status = crate::pass::fold(Facts {
            now,
            previous: self.status.as_ref(),
            planned: Planned::Status(plan.status),
            revision: &doc.revision,
            source_problem: self.source_problem.as_deref(),
            unobserved: unobserved
                .iter()
                .map(|(w, e)| (w.clone(), problem(e, "observing it")))
                .collect(),
            failed: execution
                .failures
                .iter()
                .map(|(w, f)| {
                    (
                        w.clone(),
                        problem(&f.error, executor::action_name(&f.action.action)),
                    )
                })
                .collect(),
            override_problems,
        });
        let notices = (!doc.app.spec.notifications.is_empty()).then(|| {
            tugboat_core::notify::derive(
                &doc.app.metadata.name,
                &doc.app.metadata.environment,
                self.status.as_ref(),
                &status,
            )
        });
        let (status_written, status_error) = self.persist(&status).await;
        // Told only once the status holds what is told: a status that was not kept (a
        // conflicting writer) is re-read, and its differences told from it.
        if let Some(notices) = notices.filter(|n| !n.is_empty())
            && self.status.as_ref() == Some(&status)
        {
            self.notifier
                .get_or_insert_with(super::notify::Notifier::from_env)
                .enqueue(&doc.app, &notices);
        }

        Ok(PassReport {
            pass: self.passes,
            revision: doc.revision.clone(),
            planned: plan.actions.len(),
            calls: self.api_calls().since(&before),
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

    /// Opens the document's status store and reads it, once (again after a conflict).
    async fn load_status(&mut self, app: &Application) -> Result<(), PassError> {
        self.ensure_store(app);
        if !self.status_loaded {
            if let Some(store) = &mut self.store {
                self.status = store.load().await.map_err(PassError::LoadStatus)?;
            }
            self.status_loaded = true;
        }
        Ok(())
    }

    /// A pass that failed as a whole. Throttling passes by itself; anything else (access
    /// denied, a missing cluster) goes into the status, where operators look.
    async fn whole_pass_failed(&mut self, err: PassError, now: Timestamp) -> PassError {
        if let Some(failure) = err.problem().filter(|_| !err.is_transient()) {
            let status = crate::pass::fold(Facts {
                now,
                previous: self.status.as_ref(),
                planned: Planned::ObserveFailed(failure),
                revision: "",
                source_problem: None,
                unobserved: BTreeMap::new(),
                failed: BTreeMap::new(),
                override_problems: BTreeMap::new(),
            });
            self.persist(&status).await;
        }
        err
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
    inputs: &SideInputs,
    app: &Application,
    status: Option<AppStatus>,
    now: Timestamp,
) -> Result<Preview, PassError> {
    let calls = || platform.api_calls().plus(&inputs.api_calls());
    let before = calls();
    let Assembled {
        state: observed,
        unobserved,
        ..
    } = observe(platform, inputs, app).await?;
    let observe_calls = calls().since(&before);
    let mut plan = plan::plan(app, &observed, status.as_ref(), now);
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

/// The span every line of one pass is logged in: `pass`, `app` (`name/environment`),
/// `revision`.
pub fn pass_span(pass: u64, app: &Application, revision: &str) -> tracing::Span {
    tracing::info_span!(
        "pass",
        pass,
        app = %format_args!("{}/{}", app.metadata.name, app.metadata.environment),
        revision = %revision,
    )
}

/// A platform error as a fact of the pass: `<doing> failed: <error and causes>`.
fn problem(error: &PlatformError, doing: &str) -> Problem {
    Problem::new(
        error.reason(),
        format!("{doing} failed: {}", error_chain(error)),
    )
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
