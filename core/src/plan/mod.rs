//! The planner: `plan(desired, observed, previous, now) -> Plan`.
//!
//! A pure function: no I/O, no clock reads, no randomness. Given the whole desired
//! document, a fresh observation, the status persisted by the previous pass (the
//! planner's memory; `None` when there is none) and the time, it returns the actions
//! that move the platform one safe step closer to the document, and the status to
//! persist.
//!
//! How a pass reads, per workload:
//! 1. render the [`DesiredRevision`] (or block the workload when its model is not
//!    resolved, or something it would touch is not tugboat's);
//! 2. rolling workloads: one service at the desired revision ([`rolling`]);
//! 3. progressive workloads: compute the [`RolloutState`] first ([`state`]), then match
//!    on it ([`progressive`]); a rollout walks its [`Step`]s, each returning a
//!    [`StepOutcome`] the walker acts on ([`steps`]); an aborted rollout unwinds
//!    ([`abort`]). Every change goes through the `ensure_*` functions ([`ensure`]), which
//!    only plan what differs from the observation.
//!
//! Layout: [`action`] (what a plan asks for), [`state`], [`steps`], [`ensure`],
//! [`rolling`], [`progressive`], [`abort`], `analysis` (runs and their verdicts), and the tests by theme under `tests/`.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::{Application, Platform, Slot, Workload};
use crate::observed::{
    ModelResolution, ObservedState, ObservedWorkload, OperatorAction, OperatorActionKind,
    ResolvedModel,
};
use crate::status::{AppStatus, Phase, Timestamp, WorkloadStatus, reason};
use crate::taskdef::{self, TaskDefinition};

mod abort;
pub mod action;
mod analysis;
mod ensure;
pub mod gate;
mod operator;
mod progressive;
mod rolling;
pub mod scaling;
pub mod state;
pub mod steps;
mod undo;

pub use action::{Action, PlannedAction};
pub use progressive::STATUS_LOST;
pub use state::{Hints, RolloutState, rollout_state};
pub use steps::{
    Step, StepOutcome, effective_steps, held_header_route, held_weight, resume_index,
    split_weights, steps_fingerprint, weight_share,
};

/// What one pass should do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    pub actions: Vec<PlannedAction>,
    pub status: AppStatus,
    /// The earliest time a timer (pause, scale-down delay, deadline) needs another pass;
    /// in JSON, whole milliseconds (`requeueAfterMs`).
    #[serde(
        default,
        rename = "requeueAfterMs",
        skip_serializing_if = "Option::is_none",
        with = "millis"
    )]
    #[schemars(with = "Option<u64>")]
    pub requeue_after: Option<Duration>,
}

/// `Option<Duration>` as whole milliseconds, so plans read the same in any JSON tool.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

impl Plan {
    pub fn is_converged(&self) -> bool {
        self.actions.is_empty()
    }
}

/// Old slot keeps serving in-flight requests this long after traffic left it.
pub const DEFAULT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);
/// After an abort, the canary keeps running this long once weight is back on stable.
pub const DEFAULT_ABORT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);
/// A canary that is not healthy this long after its rollout started is aborted.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
/// How soon to look again while waiting for tasks, targets or an analysis run.
pub const POLL_WHILE_WAITING: Duration = Duration::from_secs(5);

/// ECS service name of a workload's slot (`<workload>-blue`), or of a rolling workload
/// (`<workload>`).
pub fn service_name(workload: &str, slot: Option<Slot>) -> String {
    match slot {
        Some(slot) => format!("{workload}-{slot}"),
        None => workload.to_string(),
    }
}

/// What an operator writes to ask for `word` (`promote`, `abort`, `retry`, `pause`,
/// `resume`) for `workload`: on AWS the SSM parameter `<prefix>/<workload>/action`
/// (prefix `spec.overrides.ssmPrefix`, default `/tugboat/<environment>/<name>`), locally
/// the file `<stateDir>/overrides/<workload>/action`. Status messages use it until
/// `tugboat` has commands for these.
///
/// e.g. ``write `promote` to the SSM parameter /tugboat/prod/shop/api/action``.
pub fn operator_hint(app: &Application, workload: &str, word: &str) -> String {
    match &app.spec.platform {
        Platform::Aws(_) => format!(
            "write `{word}` to the SSM parameter {}/{workload}/action",
            app.overrides_prefix()
        ),
        Platform::Local(local) => format!(
            "write `{word}` to the file {}/overrides/{workload}/action",
            local
                .state_dir
                .as_deref()
                .unwrap_or(".tugboat")
                .trim_end_matches('/')
        ),
    }
}

/// Plans one pass for the whole application. Pure: the same inputs give the same plan.
pub fn plan(
    desired: &Application,
    observed: &ObservedState,
    previous: Option<&AppStatus>,
    now: Timestamp,
) -> Plan {
    let previous = previous.cloned().unwrap_or_default();
    let mut status = AppStatus {
        document_revision: previous.document_revision.clone(),
        conditions: previous.conditions.clone(),
        workloads: Default::default(),
    };
    let mut actions = Vec::new();
    let mut requeue_after: Option<Duration> = None;
    let empty = ObservedWorkload::default();
    for workload in &desired.spec.workloads {
        let mut planner = WorkloadPlanner {
            app: desired,
            workload,
            observed,
            seen: observed.workloads.get(&workload.name).unwrap_or(&empty),
            now,
            status: previous
                .workloads
                .get(&workload.name)
                .cloned()
                .unwrap_or_default(),
            actions: Vec::new(),
            requeue: None,
            remembered: false,
            blocked: None,
            drift_noted: false,
            unconfirmed_request: None,
        };
        planner.plan();
        if let Some(r) = planner.requeue {
            requeue_after = Some(requeue_after.map_or(r, |q| q.min(r)));
        }
        actions.extend(planner.actions);
        status
            .workloads
            .insert(workload.name.clone(), planner.status);
    }
    Plan {
        actions,
        status,
        requeue_after,
    }
}

/// The revision the document wants for a workload, once its model (if any) is resolved:
/// the rendered task definition, its content hash, and the task count.
pub(crate) struct DesiredRevision {
    pub definition: TaskDefinition,
    pub hash: String,
    pub count: u32,
}

/// Plans one workload: reads the shared inputs, writes actions, status and a timer.
struct WorkloadPlanner<'a> {
    app: &'a Application,
    workload: &'a Workload,
    observed: &'a ObservedState,
    seen: &'a ObservedWorkload,
    now: Timestamp,
    status: WorkloadStatus,
    actions: Vec<PlannedAction>,
    requeue: Option<Duration>,
    /// Whether the previous status knew the stable revision. Without it, differences
    /// from the document are not drift: nobody can tell who made them.
    remembered: bool,
    /// Why the workload cannot proceed (condition reason, message), decided during the
    /// pass and written to the `Blocked` condition once at its end.
    blocked: Option<(&'static str, String)>,
    /// Whether this pass recorded drift (so it does not also clear it).
    drift_noted: bool,
    /// A canary weight an earlier pass asked for and no pass has read back yet: the load
    /// balancer may still apply it, so a read-back showing other weights may predate it.
    unconfirmed_request: Option<u32>,
}

impl WorkloadPlanner<'_> {
    fn plan(&mut self) {
        // Measurements the runner took this pass go into their runs first, so the
        // verdicts below are current.
        self.absorb_measurements();
        self.note_pin();
        self.note_observed();
        self.remembered = self.status.stable.is_some();
        self.unconfirmed_request = self
            .status
            .desired_weight
            .filter(|&d| d > 0 && self.status.verified_weight != Some(d));
        let stable_before = self.status.stable.clone();
        let desired = self.desired().and_then(|d| self.apply_undo(d));
        if desired.is_some()
            && let Some(name) = self.not_owned()
        {
            self.block(
                reason::NOT_OWNED,
                format!(
                    "{name} exists but was not created by tugboat; tugboat never changes \
                     what it does not own. Tag it or delete it, or rename the workload."
                ),
            );
        }
        match desired {
            Some(desired) if self.blocked.is_none() => {
                if self.workload.is_progressive() {
                    self.plan_progressive(&desired);
                } else {
                    self.plan_rolling(&desired);
                }
                self.plan_scaling();
            }
            desired => self.safety_reactions(desired.as_ref()),
        }
        // Runs the rollout no longer needs stop; live ones set the next timer.
        self.retire_analysis_runs();
        self.note_stable_history(stable_before);
        // A pass that found nothing changed outside tugboat ends the Drifted condition:
        // the correction a previous pass made has been read back.
        self.clear_drift();
        // The Blocked condition is decided once, so it does not flap within a pass.
        match self.blocked.clone() {
            Some((why, message)) => self
                .status
                .set_condition(self.now, "Blocked", true, why, message),
            None => self
                .status
                .set_condition(self.now, "Blocked", false, reason::CONVERGED, ""),
        }
    }

    /// Renders the desired task definition, or blocks the workload when its model is not
    /// resolved (a model that cannot be checked is never rolled out).
    fn desired(&mut self) -> Option<DesiredRevision> {
        let model: Option<&ResolvedModel> = match &self.workload.model {
            None => None,
            Some(name) => match self.observed.models.get(name) {
                Some(ModelResolution::Resolved(m)) => Some(m),
                Some(ModelResolution::Failed(why)) => {
                    self.block(
                        reason::MODEL_UNRESOLVED,
                        format!("model {name:?} cannot be used: {why}"),
                    );
                    return None;
                }
                None => {
                    self.block(
                        reason::MODEL_UNRESOLVED,
                        format!("model {name:?} has not been resolved yet"),
                    );
                    return None;
                }
            },
        };
        self.status.set_condition(
            self.now,
            reason::MODEL_UNRESOLVED,
            false,
            reason::CONVERGED,
            "",
        );
        let definition = taskdef::render(self.app, self.workload, model);
        let hash = definition.content_hash();
        Some(DesiredRevision {
            definition,
            hash,
            count: self.scaled_count(),
        })
    }

    fn not_owned(&self) -> Option<String> {
        let services = self.seen.service.iter().chain(self.seen.slots.values());
        for s in services {
            if !s.owned {
                return Some(format!("service {:?}", s.name));
            }
        }
        match &self.seen.rule {
            Some(rule) if !rule.owned => Some(format!(
                "listener rule {}",
                rule.arn.as_deref().unwrap_or("(unknown ARN)")
            )),
            _ => None,
        }
    }

    /// The workload cannot proceed: phase Blocked, with `message` saying why and what to
    /// do. An event is recorded when the reason is new.
    fn block(&mut self, why: &'static str, message: String) {
        self.hold(why, message.clone());
        self.status.phase = Phase::Blocked;
        self.status.message = message;
    }

    /// Sets the `Blocked` condition (at the end of the pass) without changing the phase:
    /// something the rollout needs is missing, and `message` says what to do. An event is
    /// recorded when the condition was not already saying this.
    fn hold(&mut self, why: &'static str, message: String) {
        let known = self
            .status
            .condition("Blocked")
            .is_some_and(|c| c.status && c.message == message);
        if !known && self.blocked.as_ref().is_none_or(|(_, m)| *m != message) {
            self.status.record(self.now, why, message.clone());
        }
        if self.blocked.is_none() {
            self.blocked = Some((why, message));
        }
    }

    fn push(&mut self, action: Action, why: impl Into<String>) {
        self.actions.push(PlannedAction {
            action,
            why: why.into(),
        });
    }

    fn requeue_in(&mut self, after: Duration) {
        self.requeue = Some(self.requeue.map_or(after, |r| r.min(after)));
    }

    fn requeue_at(&mut self, at: Timestamp) {
        self.requeue_in(self.now.until(at).max(Duration::from_millis(1)));
    }

    /// Records a change made outside tugboat, once: a drift the condition already reports
    /// (a correction still in flight) is not recorded again.
    fn note_drift(&mut self, what: &str) {
        let message = format!("changed outside tugboat: {what}; correcting");
        self.drift_noted = true;
        let known = self
            .status
            .condition(reason::DRIFTED)
            .is_some_and(|c| c.status && c.message == message);
        if !known {
            self.status
                .record(self.now, reason::DRIFTED, message.clone());
        }
        self.status
            .set_condition(self.now, reason::DRIFTED, true, reason::DRIFTED, message);
    }

    fn clear_drift(&mut self) {
        if !self.drift_noted && self.status.condition(reason::DRIFTED).is_some() {
            self.status
                .set_condition(self.now, reason::DRIFTED, false, reason::CONVERGED, "");
        }
    }

    fn set_phase(&mut self, phase: Phase, message: impl Into<String>) {
        self.status.phase = phase;
        self.status.message = message.into();
    }

    /// `operator_hint` for this workload.
    fn hint(&self, word: &str) -> String {
        operator_hint(self.app, &self.workload.name, word)
    }

    /// The operator action not yet handled, marking it handled.
    ///
    /// Without a remembered stable revision (a first start, or a lost status)
    /// `handledActionVersion` reads 0, and the inbox may still hold an action handled
    /// long ago (SSM and the action file keep the last value written). An action that
    /// moves a rollout forward (`promote`, `resume`, `retry`) is then not trusted: it is
    /// marked handled and ignored, and an event asks for it again. `abort` and `pause`
    /// only stop things, so they are still taken.
    fn take_action(&mut self) -> Option<OperatorActionKind> {
        let (kind, version) = self.pending_action()?;
        self.status.handled_action_version = version;
        let (word, why) = match kind {
            OperatorActionKind::Promote => ("promote", reason::OPERATOR_PROMOTE),
            OperatorActionKind::PromoteFull => ("promote --full", reason::OPERATOR_PROMOTE),
            OperatorActionKind::Resume => ("resume", reason::OPERATOR_RESUME),
            OperatorActionKind::Retry => ("retry", reason::OPERATOR_RETRY),
            OperatorActionKind::Abort | OperatorActionKind::Pause => return Some(kind),
        };
        if self.remembered {
            return Some(kind);
        }
        let message = format!(
            "`{word}` (version {version}) ignored: there is no status to tell whether it              was already handled before a restart; if it is meant for the rollout now, {}",
            self.hint(word)
        );
        self.status.record(self.now, why, message);
        None
    }

    /// The operator action not yet handled, and its version, leaving it pending.
    fn pending_action(&self) -> Option<(OperatorActionKind, u64)> {
        let action: &OperatorAction = self
            .observed
            .overrides
            .get(&self.workload.name)?
            .action
            .as_ref()?;
        (action.version > self.status.handled_action_version)
            .then_some((action.kind, action.version))
    }
}

#[cfg(test)]
mod tests;
