//! Rollout status: what the controller believes and has verified, per workload.
//!
//! Status is recomputed by the planner on every pass and persisted only when it changed.
//! It is the controller's memory between passes: everything needed to resume a rollout
//! after a crash (which slot is stable, which step, when a timer started, which operator
//! action was already handled) is here, never only in process memory.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::Slot;

/// Milliseconds since the Unix epoch. The planner never reads a clock; the caller passes
/// `now` in, so every transition is reproducible in tests.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(transparent)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn from_secs(secs: u64) -> Self {
        Self(secs * 1000)
    }
    pub fn now() -> Self {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self(since.as_millis() as u64)
    }
    pub fn plus(self, d: std::time::Duration) -> Self {
        Self(self.0.saturating_add(d.as_millis() as u64))
    }
    /// Time from `self` until `later`, zero if `later` is not after `self`.
    pub fn until(self, later: Timestamp) -> std::time::Duration {
        std::time::Duration::from_millis(later.0.saturating_sub(self.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(self.0);
        write!(f, "{}", humantime::format_rfc3339_millis(t))
    }
}

/// Status of the whole application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppStatus {
    /// The document revision in force (S3 ETag, SSM version, file hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_revision: Option<String>,
    /// Application-wide conditions, e.g. `DocumentInvalid`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub workloads: BTreeMap<String, WorkloadStatus>,
}

/// Where a workload is in its life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Nothing observed yet or first deployment under way.
    #[default]
    Pending,
    /// A new revision is being rolled out.
    Progressing,
    /// Waiting for an operator (`pause: {}`, blue/green promotion, or the `pause` action override).
    Paused,
    /// Converged: running the desired revision with all traffic.
    Healthy,
    /// The last rollout was aborted; the stable revision serves all traffic.
    Aborted,
    /// Cannot proceed until something outside the controller changes (see message).
    Blocked,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Phase::Pending => "Pending",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::Healthy => "Healthy",
            Phase::Aborted => "Aborted",
            Phase::Blocked => "Blocked",
        };
        f.write_str(s)
    }
}

/// A revision serving (or about to serve) a workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The slot it runs on; `None` for rolling workloads (single service).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    /// Content hash of its task definition.
    pub hash: String,
}

/// A rollout under way on the idle slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    pub slot: Slot,
    pub hash: String,
    pub started_at: Timestamp,
    /// Index into the workload's effective step list.
    pub step_index: usize,
    /// When the current step started (for timed pauses).
    pub step_started_at: Timestamp,
    /// When the canary first had all its tasks healthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_at: Option<Timestamp>,
    /// Set once a rollout is aborted: weight goes back to stable, then the canary scales
    /// down at `scaleDownAt`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted: Option<Abort>,
    /// Fingerprint of the step list `stepIndex` points into (`plan::steps_fingerprint`).
    /// When the document's steps change mid-rollout the index no longer names the same
    /// step, and the rollout is placed again by the weight it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<String>,
    /// Since when an operator's weight pin (or an unreadable one) holds the rollout.
    /// While set no step or timer advances; when the pin ends the step's clock moves
    /// forward by the time held, so the rollout goes on from where it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_since: Option<Timestamp>,
}

/// Why and when a rollout was aborted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Abort {
    pub reason: String,
    pub at: Timestamp,
    /// Set once the stable slot is verified back at 100%.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_restored_at: Option<Timestamp>,
}

/// A slot whose tasks are to be stopped once its traffic has drained.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ScaleDown {
    pub slot: Slot,
    pub at: Timestamp,
}

/// Status of one workload.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadStatus {
    pub phase: Phase,
    /// One line for humans: what is happening and, when stuck, what to do.
    #[serde(default)]
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stable: Option<Revision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryStatus>,
    /// A revision whose rollout was aborted; it is not retried until the `retry` action override or a
    /// different revision is desired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_hash: Option<String>,
    /// Canary weight the plan wants now (0-100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired_weight: Option<u32>,
    /// Canary weight last read back from the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down: Option<ScaleDown>,
    /// Task count the workload last converged on; tells a scale change made in the
    /// document from one made by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converged_count: Option<u32>,
    /// SSM version of the last operator action handled, so a one-shot action acts once.
    #[serde(default)]
    pub handled_action_version: u64,
    /// Paused by the `pause` action override until `resume`.
    #[serde(default)]
    pub operator_paused: bool,
    /// The operator's weight pin in force, with who set it, why and until when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<PinStatus>,
    /// Healthy targets per slot, as last observed (for `tugboat status`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub healthy_targets: BTreeMap<Slot, u32>,
    /// Revisions (content hashes) that were stable before the current one, newest first,
    /// at most [`MAX_STABLE_HISTORY`]: what `tugboat undo` returns to, after a restart too.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stable_history: Vec<String>,
    /// An undo in force: the document's revision is overridden.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoStatus>,
    /// How many steps the rollout has (for `step i of n`); `None` for rolling workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_count: Option<usize>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Analysis runs with their measurements: those of the rollout under way, and the
    /// last few finished ones (at most [`MAX_ANALYSIS_RUNS`]). Measuring resumes from
    /// here after a restart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis_runs: Vec<AnalysisRunStatus>,
    /// The most recent transitions, newest last, at most [`MAX_EVENTS`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// The gate step the rollout waits at (or last decided): asked again after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<GateStatus>,
}

/// A `gate` step's state, persisted so that a restart keeps waiting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateStatus {
    /// The rollout's hash, step index and step clock: a retried rollout asks anew.
    pub id: String,
    pub url: String,
    pub started_at: Timestamp,
    /// When waiting ends in an abort.
    pub deadline: Timestamp,
    pub phase: GatePhase,
    /// Answers recorded so far.
    #[serde(default)]
    pub checks: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<Timestamp>,
    /// The last answer, in one line.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GatePhase {
    Waiting,
    Approved,
    Rejected,
    TimedOut,
}

/// An operator's weight pin as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PinStatus {
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was written, when the inbox knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<Timestamp>,
    /// When it expires; `None`: until cleared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// How many earlier stable revisions a workload remembers.
pub const MAX_STABLE_HISTORY: usize = 10;

/// An undo as the status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UndoStatus {
    /// The revision run instead of the document's.
    pub revision: String,
    /// The document's revision it overrides.
    pub from: String,
    /// Within the rollback window: steps and analysis skipped.
    pub fast: bool,
    /// The document moved on (or the undo reached its end state and was cancelled):
    /// the undo no longer applies, even if the override is still in the inbox.
    #[serde(default)]
    pub ended: bool,
}

/// How many events a workload keeps.
pub const MAX_EVENTS: usize = 20;

/// How many analysis runs a workload keeps (running ones are never dropped).
pub const MAX_ANALYSIS_RUNS: usize = 6;

/// How many measurements each metric of a run keeps; the counts cover all of them
/// (Argo Rollouts' default `measurementRetention`).
pub const MAX_MEASUREMENTS: usize = 10;

/// An analysis run: the templates of one analysis step (or of the background analysis)
/// measured against one attempt of one rollout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// Identifies the run: `<hash>/step-<index>/<attempt ms>` or
    /// `<hash>/background/<started ms>`. Measurements name it.
    pub id: String,
    pub kind: AnalysisRunKind,
    /// The canary revision judged.
    pub hash: String,
    /// The step (index from 0) of a step run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step_index: Option<usize>,
    pub started_at: Timestamp,
    pub phase: AnalysisPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The template arguments, resolved when the run started.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub args: BTreeMap<String, String>,
    /// One per template.
    pub metrics: Vec<MetricStatus>,
    /// When the verdict was reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Timestamp>,
    /// What the verdict did to the rollout, e.g. `aborted the rollout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AnalysisRunKind {
    /// An `analysis` step (or blue/green pre- or post-promotion analysis).
    Step,
    /// The canary's background analysis.
    Background,
}

/// A run's verdict so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum AnalysisPhase {
    Running,
    Succeeded,
    Failed,
    Inconclusive,
}

impl fmt::Display for AnalysisPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AnalysisPhase::Running => "Running",
            AnalysisPhase::Succeeded => "Succeeded",
            AnalysisPhase::Failed => "Failed",
            AnalysisPhase::Inconclusive => "Inconclusive",
        })
    }
}

/// One template's measurements within a run, with Argo Rollouts' counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricStatus {
    pub template: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    pub phase: MetricPhase,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// Measurements with a verdict (errors excluded), as Argo's `count`.
    #[serde(default)]
    pub count: u32,
    #[serde(default)]
    pub successful: u32,
    #[serde(default)]
    pub failed: u32,
    #[serde(default)]
    pub inconclusive: u32,
    #[serde(default)]
    pub error: u32,
    #[serde(default)]
    pub consecutive_error: u32,
    /// The last [`MAX_MEASUREMENTS`] measurements, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub measurements: Vec<Measurement>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MetricPhase {
    #[default]
    Running,
    Successful,
    Failed,
    Inconclusive,
    /// More provider errors in a row than `consecutiveErrorLimit`.
    Error,
}

impl MetricPhase {
    pub fn is_completed(self) -> bool {
        self != MetricPhase::Running
    }
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    pub phase: MeasurementPhase,
    /// The answer, in one short line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// Why (an error, no data, too few samples).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum MeasurementPhase {
    Successful,
    Failed,
    Inconclusive,
    Error,
}

/// A condition in the Kubernetes sense: a named boolean with a reason and the time its
/// status last changed (kept when the status does not change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: bool,
    pub reason: String,
    pub message: String,
    pub last_transition: Timestamp,
}

/// Something that happened, for `tugboat status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub at: Timestamp,
    pub reason: String,
    pub message: String,
}

/// Names of conditions and event reasons, as constants so tests and tools can match them.
pub mod reason {
    pub const DRIFTED: &str = "Drifted";
    pub const ROLLOUT_STARTED: &str = "RolloutStarted";
    pub const STEP_COMPLETED: &str = "StepCompleted";
    pub const PROMOTED: &str = "Promoted";
    pub const ABORTED: &str = "Aborted";
    pub const WEIGHT_RESTORED: &str = "WeightRestored";
    pub const SCALED_DOWN: &str = "ScaledDown";
    pub const PROGRESS_DEADLINE_EXCEEDED: &str = "ProgressDeadlineExceeded";
    pub const ANALYSIS_FAILED: &str = "AnalysisFailed";
    pub const ANALYSIS_INCONCLUSIVE: &str = "AnalysisInconclusive";
    pub const ANALYSIS_SUCCEEDED: &str = "AnalysisSucceeded";
    pub const OPERATOR_ABORT: &str = "OperatorAbort";
    pub const OPERATOR_PROMOTE: &str = "OperatorPromote";
    pub const OPERATOR_RETRY: &str = "OperatorRetry";
    pub const OPERATOR_PAUSE: &str = "OperatorPause";
    pub const OPERATOR_RESUME: &str = "OperatorResume";
    pub const WEIGHT_PINNED: &str = "WeightPinned";
    pub const PIN_RELEASED: &str = "PinReleased";
    pub const UNDO: &str = "Undo";
    pub const NO_HEALTHY_TARGETS: &str = "NoHealthyTargets";
    pub const MODEL_UNRESOLVED: &str = "ModelUnresolved";
    pub const NOT_OWNED: &str = "NotOwned";
    pub const CONVERGED: &str = "Converged";
    pub const DOCUMENT_INVALID: &str = "DocumentInvalid";
    pub const PLATFORM_ERROR: &str = "PlatformError";
    pub const GATE_APPROVED: &str = "GateApproved";
    pub const GATE_REJECTED: &str = "GateRejected";
    pub const GATE_TIMED_OUT: &str = "GateTimedOut";
}

impl WorkloadStatus {
    /// Appends an event, keeping at most [`MAX_EVENTS`].
    pub fn record(&mut self, at: Timestamp, reason: &str, message: impl Into<String>) {
        self.events.push(Event {
            at,
            reason: reason.to_string(),
            message: message.into(),
        });
        if self.events.len() > MAX_EVENTS {
            let excess = self.events.len() - MAX_EVENTS;
            self.events.drain(..excess);
        }
    }

    /// Sets a condition, keeping its transition time when its status is unchanged.
    pub fn set_condition(
        &mut self,
        now: Timestamp,
        kind: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) {
        set_condition(
            &mut self.conditions,
            now,
            kind,
            status,
            reason,
            message.into(),
        );
    }

    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }
}

/// Sets or updates a condition in a list; the transition time moves only when the status
/// flips.
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    now: Timestamp,
    kind: &str,
    status: bool,
    reason: &str,
    message: String,
) {
    match conditions.iter_mut().find(|c| c.kind == kind) {
        Some(c) => {
            if c.status != status {
                c.last_transition = now;
            }
            c.status = status;
            c.reason = reason.to_string();
            c.message = message;
        }
        None => conditions.push(Condition {
            kind: kind.to_string(),
            status,
            reason: reason.to_string(),
            message,
            last_transition: now,
        }),
    }
}
