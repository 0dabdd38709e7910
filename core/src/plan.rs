//! The planner: `plan(desired, observed, previous, now) -> Plan`.
//!
//! A pure function: no I/O, no clock reads, no randomness. Given the whole desired
//! document, a fresh observation, the status persisted by the previous pass (the
//! planner's memory; `None` when there is none) and the time, it returns the actions
//! that move the platform one safe step closer to the document, and the status to
//! persist.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::{
    Application, CanaryStep, DurationSpec, Route, Slot, Strategy, TemplateRef, Workload,
};
use crate::observed::{
    AnalysisOutcome, ModelResolution, ObservedService, ObservedState, ObservedWorkload,
    OperatorAction, OperatorActionKind, ResolvedModel,
};
use crate::status::{
    Abort, AppStatus, CanaryStatus, Phase, Revision, ScaleDown, Timestamp, WorkloadStatus, reason,
};
use crate::taskdef::{self, TaskDefinition};

/// One change to make on the platform. Every action is idempotent: applying it to a
/// platform that already matches changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Action {
    /// Register a task definition unless one with this content hash exists.
    #[serde(rename_all = "camelCase")]
    RegisterTaskDefinition {
        workload: String,
        content_hash: String,
        definition: TaskDefinition,
    },
    /// Create a service running the definition with `content_hash`.
    #[serde(rename_all = "camelCase")]
    CreateService {
        workload: String,
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        slot: Option<Slot>,
        content_hash: String,
        desired_count: u32,
        /// Target group the service's tasks register in, if routed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_group: Option<String>,
        container_name: String,
        container_port: u16,
    },
    /// Change a service's definition and/or task count.
    #[serde(rename_all = "camelCase")]
    UpdateService {
        workload: String,
        service: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content_hash: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        desired_count: Option<u32>,
    },
    /// Make the workload's listener rule forward with these weights (creating the rule
    /// if it does not exist).
    #[serde(rename_all = "camelCase")]
    SetWeights {
        workload: String,
        path_patterns: Vec<String>,
        priority: u32,
        blue_target_group: String,
        green_target_group: String,
        blue: u32,
        green: u32,
    },
    /// Start measuring analysis templates against the canary.
    #[serde(rename_all = "camelCase")]
    StartAnalysis {
        workload: String,
        hash: String,
        step_index: usize,
        templates: Vec<TemplateRef>,
    },
}

impl Action {
    pub fn workload(&self) -> &str {
        match self {
            Action::RegisterTaskDefinition { workload, .. }
            | Action::CreateService { workload, .. }
            | Action::UpdateService { workload, .. }
            | Action::SetWeights { workload, .. }
            | Action::StartAnalysis { workload, .. } => workload,
        }
    }

    /// Whether the action changes the platform (as opposed to starting a measurement).
    pub fn is_mutating(&self) -> bool {
        !matches!(self, Action::StartAnalysis { .. })
    }
}

/// An action and why the planner wants it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlannedAction {
    #[serde(flatten)]
    pub action: Action,
    pub why: String,
}

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

/// A step of a progressive rollout. Blue/green is expressed as the same steps as a
/// canary (analysis, pause, one full shift), so both share one state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    SetWeight(u32),
    /// `None`: until promoted.
    Pause(Option<Duration>),
    Analysis(Vec<TemplateRef>),
}

/// The step list a progressive workload walks through.
pub fn effective_steps(strategy: &Strategy) -> Vec<Step> {
    match strategy {
        Strategy::Rolling(_) => Vec::new(),
        Strategy::Canary(c) => c
            .steps
            .iter()
            .map(|s| match s {
                CanaryStep::SetWeight(w) => Step::SetWeight(*w),
                CanaryStep::Pause(p) => Step::Pause(p.duration.map(|d| d.0)),
                CanaryStep::Analysis(a) => Step::Analysis(a.templates.clone()),
            })
            .collect(),
        Strategy::BlueGreen(b) => {
            let mut steps = Vec::new();
            if let Some(a) = &b.pre_promotion_analysis {
                steps.push(Step::Analysis(a.templates.clone()));
            }
            if !b.auto_promotion_enabled {
                steps.push(Step::Pause(None));
            } else if let Some(delay) = b.auto_promotion_delay {
                steps.push(Step::Pause(Some(delay.0)));
            }
            steps.push(Step::SetWeight(100));
            steps
        }
    }
}

struct Timers {
    scale_down_delay: Duration,
    abort_scale_down_delay: Duration,
    progress_deadline: Duration,
}

fn timers(strategy: &Strategy) -> Timers {
    let or = |d: Option<DurationSpec>, default: Duration| d.map(|d| d.0).unwrap_or(default);
    match strategy {
        Strategy::Canary(c) => Timers {
            scale_down_delay: or(c.scale_down_delay, DEFAULT_SCALE_DOWN_DELAY),
            abort_scale_down_delay: or(c.abort_scale_down_delay, DEFAULT_ABORT_SCALE_DOWN_DELAY),
            progress_deadline: or(c.progress_deadline, DEFAULT_PROGRESS_DEADLINE),
        },
        Strategy::BlueGreen(b) => Timers {
            scale_down_delay: or(b.scale_down_delay, DEFAULT_SCALE_DOWN_DELAY),
            abort_scale_down_delay: or(b.scale_down_delay, DEFAULT_ABORT_SCALE_DOWN_DELAY),
            progress_deadline: or(b.progress_deadline, DEFAULT_PROGRESS_DEADLINE),
        },
        Strategy::Rolling(_) => Timers {
            scale_down_delay: DEFAULT_SCALE_DOWN_DELAY,
            abort_scale_down_delay: DEFAULT_ABORT_SCALE_DOWN_DELAY,
            progress_deadline: DEFAULT_PROGRESS_DEADLINE,
        },
    }
}

/// ECS service name of a workload's slot (`<workload>-blue`), or of a rolling workload
/// (`<workload>`).
pub fn service_name(workload: &str, slot: Option<Slot>) -> String {
    match slot {
        Some(slot) => format!("{workload}-{slot}"),
        None => workload.to_string(),
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

/// The desired revision of a workload, once its model (if any) is resolved.
struct Target {
    definition: TaskDefinition,
    hash: String,
    count: u32,
}

struct WorkloadPlanner<'a> {
    app: &'a Application,
    workload: &'a Workload,
    observed: &'a ObservedState,
    seen: &'a ObservedWorkload,
    now: Timestamp,
    status: WorkloadStatus,
    actions: Vec<PlannedAction>,
    requeue: Option<Duration>,
}

impl WorkloadPlanner<'_> {
    fn plan(&mut self) {
        let Some(target) = self.target() else { return };
        if let Some(name) = self.not_owned() {
            self.block(
                reason::NOT_OWNED,
                format!(
                    "{name} exists but was not created by tugboat; tugboat never changes \
                     what it does not own. Tag it or delete it, or rename the workload."
                ),
            );
            return;
        }
        self.status
            .set_condition(self.now, "Blocked", false, reason::CONVERGED, "");
        if self.workload.is_progressive() {
            self.plan_progressive(&target);
        } else {
            self.plan_rolling(&target);
        }
    }

    // ----- shared pieces -------------------------------------------------------------

    /// Renders the desired task definition, or blocks the workload when its model is not
    /// resolved (a model that cannot be checked is never rolled out).
    fn target(&mut self) -> Option<Target> {
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
        Some(Target {
            definition,
            hash,
            count: self.workload.desired_count,
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

    fn block(&mut self, why: &str, message: String) {
        self.status.phase = Phase::Blocked;
        self.status
            .set_condition(self.now, "Blocked", true, why, message.clone());
        if self.status.message != message {
            self.status.record(self.now, why, message.clone());
        }
        self.status.message = message;
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

    /// Registers the target definition unless it exists (or is already planned).
    fn ensure_registered(&mut self, target: &Target) {
        let known = self.observed.task_definitions.contains_key(&target.hash);
        let planned = self.actions.iter().any(|a| {
            matches!(&a.action, Action::RegisterTaskDefinition { content_hash, .. }
                if *content_hash == target.hash)
        });
        if !known && !planned {
            self.push(
                Action::RegisterTaskDefinition {
                    workload: self.workload.name.clone(),
                    content_hash: target.hash.clone(),
                    definition: target.definition.clone(),
                },
                format!("no task definition with content hash {} yet", target.hash),
            );
        }
    }

    fn route(&self) -> Option<&Route> {
        self.workload.route.as_ref()
    }

    /// Makes the service for `slot` run `hash` with `count` tasks, creating it if
    /// missing. Returns whether anything had to change. `drift` marks a correction of a
    /// change made outside tugboat.
    fn ensure_service(
        &mut self,
        slot: Option<Slot>,
        target: &Target,
        hash: &str,
        count: u32,
        drift: bool,
    ) -> bool {
        let name = service_name(&self.workload.name, slot);
        let seen = match slot {
            Some(s) => self.seen.slots.get(&s),
            None => self.seen.service.as_ref(),
        };
        match seen {
            None => {
                if hash == target.hash {
                    self.ensure_registered(target);
                }
                let target_group = self.route().map(|r| match slot {
                    Some(Slot::Green) => r.target_groups.green.clone(),
                    _ => r.target_groups.blue.clone(),
                });
                self.push(
                    Action::CreateService {
                        workload: self.workload.name.clone(),
                        service: name.clone(),
                        slot,
                        content_hash: hash.to_string(),
                        desired_count: count,
                        target_group,
                        container_name: self.workload.name.clone(),
                        container_port: self.workload.container_port,
                    },
                    format!("service {name} does not exist"),
                );
                true
            }
            Some(svc) => {
                let wrong_hash = svc.content_hash.as_deref() != Some(hash);
                let wrong_count = svc.desired_count != count;
                if !wrong_hash && !wrong_count {
                    return false;
                }
                if wrong_hash && hash == target.hash {
                    self.ensure_registered(target);
                }
                let mut what = Vec::new();
                if wrong_hash {
                    what.push(format!(
                        "runs {} instead of {hash}",
                        svc.content_hash
                            .as_deref()
                            .unwrap_or("a definition not registered by tugboat")
                    ));
                }
                if wrong_count {
                    what.push(format!(
                        "has desired count {} instead of {count}",
                        svc.desired_count
                    ));
                }
                let what = format!("service {name} {}", what.join(" and "));
                // A count the document itself changed is a scale change, not drift.
                let count_changed_by_document = self
                    .status
                    .converged_count
                    .is_some_and(|converged| converged != count);
                if drift && (wrong_hash || !count_changed_by_document) {
                    self.note_drift(&what);
                }
                self.push(
                    Action::UpdateService {
                        workload: self.workload.name.clone(),
                        service: name,
                        content_hash: wrong_hash.then(|| hash.to_string()),
                        desired_count: wrong_count.then_some(count),
                    },
                    what,
                );
                true
            }
        }
    }

    /// Whether a service runs `hash` with `count` tasks, all of them healthy in the
    /// target group (for routed workloads).
    fn is_healthy(&self, svc: Option<&ObservedService>, hash: &str, count: u32) -> bool {
        let Some(svc) = svc else { return false };
        let targets_ok = self.route().is_none() || svc.healthy_targets >= count;
        svc.content_hash.as_deref() == Some(hash)
            && svc.desired_count == count
            && svc.running_count >= count
            && svc.deployment_complete
            && !svc.deployment_failed
            && targets_ok
    }

    fn observed_weights(&self) -> Option<(u32, u32)> {
        self.seen
            .rule
            .as_ref()
            .map(|r| (r.weight(Slot::Blue), r.weight(Slot::Green)))
    }

    /// Sets the rule so that `slot` gets `weight` and its twin the rest. Returns whether
    /// the load balancer already shows exactly that (verified).
    fn ensure_weights(&mut self, slot: Slot, weight: u32, why: &str, drift: bool) -> bool {
        let (blue, green) = match slot {
            Slot::Blue => (weight, 100 - weight),
            Slot::Green => (100 - weight, weight),
        };
        let Some(route) = self.route().cloned() else {
            return true;
        };
        let rule_matches_route = self.seen.rule.as_ref().is_some_and(|r| {
            r.priority.is_none_or(|p| p == route.priority)
                && (r.path_patterns.is_empty() || r.path_patterns == route.path_patterns)
        });
        if self.observed_weights() == Some((blue, green)) {
            if rule_matches_route {
                return true;
            }
            if let Some(rule) = &self.seen.rule {
                let what = format!(
                    "rule has priority {} and paths {:?}; the document says {} and {:?}",
                    rule.priority.map_or("?".to_string(), |p| p.to_string()),
                    rule.path_patterns,
                    route.priority,
                    route.path_patterns
                );
                if drift {
                    self.note_drift(&what);
                }
                self.push(
                    Action::SetWeights {
                        workload: self.workload.name.clone(),
                        path_patterns: route.path_patterns.clone(),
                        priority: route.priority,
                        blue_target_group: route.target_groups.blue.clone(),
                        green_target_group: route.target_groups.green.clone(),
                        blue,
                        green,
                    },
                    what,
                );
                return false;
            }
        }
        if drift && let Some((b, g)) = self.observed_weights() {
            self.note_drift(&format!(
                "rule weights are blue {b} / green {g} instead of blue {blue} / green {green}"
            ));
        }
        self.push(
            Action::SetWeights {
                workload: self.workload.name.clone(),
                path_patterns: route.path_patterns.clone(),
                priority: route.priority,
                blue_target_group: route.target_groups.blue.clone(),
                green_target_group: route.target_groups.green.clone(),
                blue,
                green,
            },
            why.to_string(),
        );
        false
    }

    fn note_drift(&mut self, what: &str) {
        let message = format!("changed outside tugboat: {what}; correcting");
        self.status
            .record(self.now, reason::DRIFTED, message.clone());
        self.status
            .set_condition(self.now, reason::DRIFTED, true, reason::DRIFTED, message);
    }

    fn clear_drift(&mut self) {
        if self.status.condition(reason::DRIFTED).is_some() {
            self.status
                .set_condition(self.now, reason::DRIFTED, false, reason::CONVERGED, "");
        }
    }

    fn set_phase(&mut self, phase: Phase, message: impl Into<String>) {
        self.status.phase = phase;
        self.status.message = message.into();
    }

    /// The operator action not yet handled, marking it handled.
    fn take_action(&mut self) -> Option<OperatorActionKind> {
        let action: &OperatorAction = self
            .observed
            .overrides
            .get(&self.workload.name)?
            .action
            .as_ref()?;
        if action.version <= self.status.handled_action_version {
            return None;
        }
        self.status.handled_action_version = action.version;
        Some(action.kind)
    }

    // ----- rolling ---------------------------------------------------------------------

    fn plan_rolling(&mut self, target: &Target) {
        let action = self.take_action();
        if action == Some(OperatorActionKind::Retry) {
            self.status.aborted_hash = None;
            self.status
                .record(self.now, reason::OPERATOR_RETRY, "retrying the rollout");
        }
        let svc = self.seen.service.clone();
        let stable_hash = self.status.stable.as_ref().map(|r| r.hash.clone());

        // ECS's circuit breaker rolled the service back: do not push the same revision
        // again until the document changes or an operator retries.
        if let Some(s) = &svc
            && s.deployment_failed
            && self.status.aborted_hash.as_deref() != Some(&target.hash)
            && stable_hash.as_deref() != Some(&target.hash)
        {
            let message = format!(
                "deployment of {} failed (ECS circuit breaker); run `tugboat retry {}` or change the document",
                target.hash, self.workload.name
            );
            self.status.aborted_hash = Some(target.hash.clone());
            self.status
                .record(self.now, reason::ABORTED, message.clone());
            self.set_phase(Phase::Aborted, message);
            return;
        }
        if self.status.aborted_hash.as_deref() == Some(&target.hash) {
            let message = format!(
                "rollout of {} was aborted; run `tugboat retry {}` or change the document",
                target.hash, self.workload.name
            );
            self.set_phase(Phase::Aborted, message);
            return;
        }
        self.status.aborted_hash = None;

        // A different hash than the one we last converged on is a new revision; the same
        // hash with a different service is drift.
        let drift = stable_hash.as_deref() == Some(&target.hash);
        if stable_hash.as_deref() != Some(&target.hash)
            && svc.as_ref().and_then(|s| s.content_hash.as_deref()) != Some(&target.hash)
        {
            self.status.record(
                self.now,
                reason::ROLLOUT_STARTED,
                format!("rolling out {}", target.hash),
            );
        }
        let changed = self.ensure_service(None, target, &target.hash, target.count, drift);
        let healthy = !changed && self.is_healthy(svc.as_ref(), &target.hash, target.count);

        // A routed rolling workload sends everything to its one target group, once that
        // group has healthy targets.
        let mut weights_ok = true;
        if self.route().is_some() {
            let has_targets = svc.as_ref().is_some_and(|s| s.healthy_targets > 0);
            if has_targets {
                let rule_existed = self.seen.rule.is_some();
                weights_ok = self.ensure_weights(
                    Slot::Blue,
                    100,
                    "a rolling workload sends all traffic to its service",
                    rule_existed && drift,
                );
            } else {
                weights_ok = self.observed_weights() == Some((100, 0));
            }
        }

        if healthy && weights_ok {
            if stable_hash.as_deref() != Some(&target.hash) {
                self.status.record(
                    self.now,
                    reason::CONVERGED,
                    format!("running {} with {} tasks", target.hash, target.count),
                );
            }
            self.status.stable = Some(Revision {
                slot: None,
                hash: target.hash.clone(),
            });
            self.clear_drift();
            self.status.converged_count = Some(target.count);
            self.set_phase(
                Phase::Healthy,
                format!("running {} with {} tasks", target.hash, target.count),
            );
        } else {
            self.requeue_in(POLL_WHILE_WAITING);
            let phase = if stable_hash.is_none() {
                Phase::Pending
            } else {
                Phase::Progressing
            };
            self.set_phase(
                phase,
                format!(
                    "deploying {}: waiting for {} running and healthy tasks",
                    target.hash, target.count
                ),
            );
        }
    }

    // ----- blue/green and canary ----------------------------------------------------

    fn plan_progressive(&mut self, target: &Target) {
        let action = self.take_action();
        match action {
            Some(OperatorActionKind::Pause) => {
                self.status.operator_paused = true;
                self.status
                    .record(self.now, reason::OPERATOR_PAUSE, "paused by an operator");
            }
            Some(OperatorActionKind::Resume) => {
                self.status.operator_paused = false;
                self.status
                    .record(self.now, reason::OPERATOR_RESUME, "resumed by an operator");
            }
            _ => {}
        }

        let Some(stable) = self.status.stable.clone().or_else(|| self.infer_stable()) else {
            self.first_deployment(target);
            return;
        };
        // An inferred stable slot is remembered, so traffic moving mid-rollout can never
        // make the planner change its mind about which slot is stable.
        self.status.stable = Some(stable.clone());
        let stable_slot = stable.slot.unwrap_or(Slot::Blue);

        if self.status.canary.is_none() {
            if stable.hash == target.hash {
                self.status.aborted_hash = None;
                self.converge_stable(stable_slot, &stable.hash, target, true);
                return;
            }
            if self.status.aborted_hash.as_deref() == Some(&target.hash) {
                if action == Some(OperatorActionKind::Retry) {
                    self.status.aborted_hash = None;
                    self.status
                        .record(self.now, reason::OPERATOR_RETRY, "retrying the rollout");
                } else {
                    self.converge_stable(stable_slot, &stable.hash, target, true);
                    let message = format!(
                        "rollout of {} was aborted; stable {} serves all traffic. Run `tugboat retry {}` or change the document",
                        target.hash, stable.hash, self.workload.name
                    );
                    self.set_phase(Phase::Aborted, message);
                    return;
                }
            }
            self.start_rollout(stable_slot, target, "new revision");
        }
        self.advance_rollout(stable_slot, &stable.hash, target, action);
    }

    /// When no status survives, the slot carrying traffic (or running tasks) is stable.
    fn infer_stable(&self) -> Option<Revision> {
        let slot = if let Some((blue, green)) = self.observed_weights() {
            if green > blue {
                Slot::Green
            } else {
                Slot::Blue
            }
        } else {
            let running = |s: Slot| self.seen.slots.get(&s).is_some_and(|x| x.desired_count > 0);
            if running(Slot::Green) && !running(Slot::Blue) {
                Slot::Green
            } else {
                Slot::Blue
            }
        };
        let svc = self.seen.slots.get(&slot)?;
        // A service whose definition tugboat did not register has no known hash; calling
        // it stable under an impossible hash makes the desired revision roll out.
        let hash = svc
            .content_hash
            .clone()
            .unwrap_or_else(|| "unknown".to_string());
        self.seen.rule.as_ref()?;
        Some(Revision {
            slot: Some(slot),
            hash,
        })
    }

    /// Nothing serves yet: bring the blue slot up, then give it all traffic.
    fn first_deployment(&mut self, target: &Target) {
        let slot = Slot::Blue;
        let changed = self.ensure_service(Some(slot), target, &target.hash, target.count, false);
        let svc = self.seen.slots.get(&slot);
        if changed || !self.is_healthy(svc, &target.hash, target.count) {
            self.requeue_in(POLL_WHILE_WAITING);
            self.set_phase(
                Phase::Pending,
                format!(
                    "first deployment of {}: waiting for {} healthy targets on {slot}",
                    target.hash, target.count
                ),
            );
            return;
        }
        if target.count > 0
            && !self.ensure_weights(
                slot,
                100,
                "first deployment: all traffic to the new service",
                false,
            )
        {
            self.status.desired_weight = Some(0);
            self.set_phase(
                Phase::Pending,
                "first deployment: routing traffic to the blue slot",
            );
            return;
        }
        self.status.stable = Some(Revision {
            slot: Some(slot),
            hash: target.hash.clone(),
        });
        self.status.desired_weight = Some(0);
        self.status.verified_weight = Some(0);
        self.status.record(
            self.now,
            reason::CONVERGED,
            format!("first deployment of {} serves all traffic", target.hash),
        );
        self.set_phase(Phase::Healthy, format!("running {} on {slot}", target.hash));
    }

    /// Keeps the stable slot at its revision, count and 100% weight, and the idle slot
    /// at zero tasks once its scale-down delay has passed.
    fn converge_stable(
        &mut self,
        stable_slot: Slot,
        stable_hash: &str,
        target: &Target,
        drift: bool,
    ) {
        let before = self.actions.len();
        self.ensure_service(Some(stable_slot), target, stable_hash, target.count, drift);
        let stable_has_targets = self
            .seen
            .slots
            .get(&stable_slot)
            .is_some_and(|s| s.healthy_targets > 0);
        if stable_has_targets || target.count == 0 {
            self.ensure_weights(
                stable_slot,
                100,
                "the stable slot serves all traffic",
                drift,
            );
        }
        let idle = stable_slot.other();
        let idle_running = self
            .seen
            .slots
            .get(&idle)
            .is_some_and(|s| s.desired_count > 0);
        match self.status.scale_down.clone() {
            Some(sd) if sd.slot == idle && idle_running => {
                if self.now >= sd.at {
                    self.push(
                        Action::UpdateService {
                            workload: self.workload.name.clone(),
                            service: service_name(&self.workload.name, Some(idle)),
                            content_hash: None,
                            desired_count: Some(0),
                        },
                        format!("scale-down delay of the old {idle} slot has passed"),
                    );
                } else {
                    self.requeue_at(sd.at);
                }
            }
            Some(_) if !idle_running => {
                self.status.scale_down = None;
                self.status.record(
                    self.now,
                    reason::SCALED_DOWN,
                    format!("old {idle} slot scaled down"),
                );
            }
            _ if idle_running => {
                if drift {
                    self.note_drift(&format!("idle {idle} slot has tasks"));
                }
                self.push(
                    Action::UpdateService {
                        workload: self.workload.name.clone(),
                        service: service_name(&self.workload.name, Some(idle)),
                        content_hash: None,
                        desired_count: Some(0),
                    },
                    format!("the idle {idle} slot runs no tasks at rest"),
                );
            }
            _ => {}
        }
        self.status.desired_weight = Some(0);
        self.status.verified_weight = self
            .observed_weights()
            .map(|(b, g)| if stable_slot == Slot::Blue { g } else { b });
        if self.actions.len() == before {
            self.clear_drift();
            self.status.converged_count = Some(target.count);
            let message = match &self.status.scale_down {
                Some(sd) => format!(
                    "running {stable_hash} on {stable_slot}; old {} slot scales down at {}",
                    sd.slot, sd.at
                ),
                None => format!("running {stable_hash} on {stable_slot}"),
            };
            self.set_phase(Phase::Healthy, message);
        } else if self.status.phase != Phase::Aborted {
            self.set_phase(
                Phase::Progressing,
                format!("converging {stable_hash} on {stable_slot}"),
            );
        }
    }

    fn start_rollout(&mut self, stable_slot: Slot, target: &Target, why: &str) {
        let slot = stable_slot.other();
        self.status.canary = Some(CanaryStatus {
            slot,
            hash: target.hash.clone(),
            started_at: self.now,
            step_index: 0,
            step_started_at: self.now,
            healthy_at: None,
            aborted: None,
        });
        self.status.scale_down = None;
        self.status.record(
            self.now,
            reason::ROLLOUT_STARTED,
            format!("{why}: rolling out {} on the {slot} slot", target.hash),
        );
    }

    fn abort(&mut self, why: &str, message: String) {
        if let Some(c) = self.status.canary.as_mut()
            && c.aborted.is_none()
        {
            c.aborted = Some(Abort {
                reason: message.clone(),
                at: self.now,
                weight_restored_at: None,
            });
            self.status.record(self.now, why, message);
        }
    }

    fn advance_rollout(
        &mut self,
        stable_slot: Slot,
        stable_hash: &str,
        target: &Target,
        action: Option<OperatorActionKind>,
    ) {
        let Some(canary) = self.status.canary.clone() else {
            return;
        };
        let timers = timers(&self.workload.strategy);

        // The document moved on mid-rollout.
        if canary.hash != target.hash && canary.aborted.is_none() {
            if target.hash == stable_hash {
                self.abort(
                    reason::ABORTED,
                    "the document went back to the stable revision".to_string(),
                );
            } else {
                let canary_weight = self.observed_canary_weight(canary.slot);
                if canary_weight > 0 {
                    self.ensure_weights(
                        stable_slot,
                        100,
                        "a newer revision replaces the canary: traffic returns to stable first",
                        false,
                    );
                    self.set_phase(
                        Phase::Progressing,
                        "newer revision: moving traffic back to stable before replacing the canary",
                    );
                    return;
                }
                self.start_rollout(stable_slot, target, "superseded by a newer revision");
                return self.advance_rollout(stable_slot, stable_hash, target, None);
            }
        }

        // The stable slot keeps its revision and count throughout.
        self.ensure_service(Some(stable_slot), target, stable_hash, target.count, true);

        match action {
            Some(OperatorActionKind::Abort) => {
                self.abort(reason::OPERATOR_ABORT, "aborted by an operator".to_string())
            }
            Some(OperatorActionKind::Promote) => self.promote_step(),
            _ => {}
        }

        // Every path above keeps the rollout; an `else` here would be a planner bug, and
        // planning nothing is the safe answer to it.
        let Some(canary) = self.status.canary.clone() else {
            return;
        };
        if canary.aborted.is_some() {
            self.unwind_abort(stable_slot, stable_hash, &timers);
            return;
        }

        let svc = self.seen.slots.get(&canary.slot);
        if svc.is_some_and(|s| s.deployment_failed) {
            self.abort(
                reason::ABORTED,
                format!("the {} slot's deployment failed", canary.slot),
            );
            return self.unwind_abort(stable_slot, stable_hash, &timers);
        }

        // Bring the canary up at full size on the idle slot.
        if self.ensure_service(Some(canary.slot), target, &target.hash, target.count, false)
            || !self.is_healthy(svc, &target.hash, target.count)
        {
            let deadline = canary.started_at.plus(timers.progress_deadline);
            if canary.healthy_at.is_none() && self.now >= deadline {
                self.abort(
                    reason::PROGRESS_DEADLINE_EXCEEDED,
                    format!(
                        "the {} slot was not healthy within {}",
                        canary.slot,
                        humantime::format_duration(timers.progress_deadline)
                    ),
                );
                return self.unwind_abort(stable_slot, stable_hash, &timers);
            }
            // Traffic must never stay on a canary that lost its healthy targets.
            if self.observed_canary_weight(canary.slot) > 0 {
                self.ensure_weights(
                    stable_slot,
                    100,
                    "the canary has no healthy targets: traffic returns to stable",
                    false,
                );
                self.status.record(
                    self.now,
                    reason::NO_HEALTHY_TARGETS,
                    format!("the {} slot lost healthy targets", canary.slot),
                );
            }
            self.requeue_in(POLL_WHILE_WAITING);
            if canary.healthy_at.is_none() {
                self.requeue_at(deadline);
            }
            let healthy = svc.map_or(0, |s| s.healthy_targets);
            self.set_phase(
                Phase::Progressing,
                format!(
                    "waiting for the {} slot: {healthy}/{} healthy targets running {}",
                    canary.slot, target.count, target.hash
                ),
            );
            return;
        }
        if canary.healthy_at.is_none()
            && let Some(c) = self.status.canary.as_mut()
        {
            c.healthy_at = Some(self.now);
        }

        // An operator's weight pin beats the steps while it is in force.
        if let Some(pin) = self
            .observed
            .overrides
            .get(&self.workload.name)
            .and_then(|o| o.weight_pin.clone())
            .filter(|p| p.in_force(self.now))
        {
            let weight = pin.weight.min(100);
            let verified = self.ensure_weights(canary.slot, weight, "operator weight pin", false);
            self.status.desired_weight = Some(weight);
            if verified {
                self.status.verified_weight = Some(weight);
            }
            if let Some(exp) = pin.expires {
                self.requeue_at(exp);
            }
            let why = pin.reason.map(|r| format!(" ({r})")).unwrap_or_default();
            self.set_phase(
                Phase::Paused,
                format!("canary weight pinned at {weight}% by an operator{why}"),
            );
            return;
        }

        self.walk_steps(stable_slot, stable_hash, target, &timers);
    }

    fn observed_canary_weight(&self, canary_slot: Slot) -> u32 {
        self.seen.rule.as_ref().map_or(0, |r| r.weight(canary_slot))
    }

    /// `tugboat promote`: skip the current pause or (inconclusive) analysis step.
    fn promote_step(&mut self) {
        let steps = effective_steps(&self.workload.strategy);
        let now = self.now;
        let Some(c) = self.status.canary.as_mut() else {
            return;
        };
        match steps.get(c.step_index) {
            Some(Step::Pause(_)) | Some(Step::Analysis(_)) if c.aborted.is_none() => {
                c.step_index += 1;
                c.step_started_at = now;
                self.status.operator_paused = false;
                self.status
                    .record(now, reason::OPERATOR_PROMOTE, "promoted by an operator");
            }
            _ => self.status.record(
                now,
                reason::OPERATOR_PROMOTE,
                "promote ignored: the rollout is not at a pause or analysis step",
            ),
        }
    }

    fn walk_steps(
        &mut self,
        stable_slot: Slot,
        stable_hash: &str,
        target: &Target,
        timers: &Timers,
    ) {
        let steps = effective_steps(&self.workload.strategy);
        loop {
            let Some(canary) = self.status.canary.clone() else {
                return;
            };
            let index = canary.step_index;
            let Some(step) = steps.get(index) else {
                return self.finish_rollout(stable_slot, target, timers);
            };
            if self.status.operator_paused {
                self.set_phase(
                    Phase::Paused,
                    format!(
                        "paused by an operator at step {}; run `tugboat resume {}`",
                        index + 1,
                        self.workload.name
                    ),
                );
                return;
            }
            let done = match step {
                Step::SetWeight(w) => {
                    self.status.desired_weight = Some(*w);
                    let verified = self.ensure_weights(
                        canary.slot,
                        *w,
                        &format!("step {}: setWeight {w}", index + 1),
                        false,
                    );
                    if verified {
                        self.status.verified_weight = Some(*w);
                    } else {
                        self.set_phase(
                            Phase::Progressing,
                            format!(
                                "step {}: shifting {w}% of traffic to {}",
                                index + 1,
                                canary.slot
                            ),
                        );
                    }
                    verified
                }
                // Pauses and analyses hold the weight of the last `setWeight` before them;
                // a weight moved meanwhile (an expired pin, a hand edit) is put back first.
                _ if !self.hold_step_weight(&steps, index, canary.slot) => false,
                Step::Pause(Some(d)) => {
                    let until = canary.step_started_at.plus(*d);
                    if self.now >= until {
                        true
                    } else {
                        self.requeue_at(until);
                        self.set_phase(
                            Phase::Progressing,
                            format!("step {}: pausing until {until}", index + 1),
                        );
                        false
                    }
                }
                Step::Pause(None) => {
                    self.set_phase(
                        Phase::Paused,
                        format!(
                            "step {}: waiting for `tugboat promote {}`",
                            index + 1,
                            self.workload.name
                        ),
                    );
                    false
                }
                Step::Analysis(templates) => self.analysis_step(&canary, templates, target),
            };
            if self
                .status
                .canary
                .as_ref()
                .is_some_and(|c| c.aborted.is_some())
            {
                return self.unwind_abort(stable_slot, stable_hash, timers);
            }
            if !done {
                return;
            }
            if let Some(c) = self.status.canary.as_mut() {
                c.step_index += 1;
                c.step_started_at = self.now;
            }
            self.status.record(
                self.now,
                reason::STEP_COMPLETED,
                format!("step {} of {} completed", index + 1, steps.len()),
            );
        }
    }

    /// Makes the rule show the weight in force at step `index` (that of the last
    /// `setWeight` before it). Returns whether it already does.
    fn hold_step_weight(&mut self, steps: &[Step], index: usize, canary_slot: Slot) -> bool {
        let weight = steps[..index]
            .iter()
            .rev()
            .find_map(|s| match s {
                Step::SetWeight(w) => Some(*w),
                _ => None,
            })
            .unwrap_or(0);
        self.status.desired_weight = Some(weight);
        let verified = self.ensure_weights(
            canary_slot,
            weight,
            &format!("step {}: hold the canary at {weight}%", index + 1),
            false,
        );
        if verified {
            self.status.verified_weight = Some(weight);
        } else {
            self.set_phase(
                Phase::Progressing,
                format!(
                    "step {}: restoring the canary weight to {weight}%",
                    index + 1
                ),
            );
        }
        verified
    }

    /// Returns whether the analysis step passed; aborts the rollout when it failed.
    fn analysis_step(
        &mut self,
        canary: &CanaryStatus,
        templates: &[TemplateRef],
        target: &Target,
    ) -> bool {
        let index = canary.step_index;
        let run = self
            .observed
            .analysis
            .get(&self.workload.name)
            .filter(|r| r.hash == canary.hash && r.step_index == index);
        match run.map(|r| (r.outcome, r.message.clone())) {
            None => {
                self.push(
                    Action::StartAnalysis {
                        workload: self.workload.name.clone(),
                        hash: target.hash.clone(),
                        step_index: index,
                        templates: templates.to_vec(),
                    },
                    format!("step {}: analysis", index + 1),
                );
                self.requeue_in(POLL_WHILE_WAITING);
                self.set_phase(
                    Phase::Progressing,
                    format!("step {}: starting analysis", index + 1),
                );
                false
            }
            Some((AnalysisOutcome::Running, _)) => {
                self.requeue_in(POLL_WHILE_WAITING);
                self.set_phase(
                    Phase::Progressing,
                    format!("step {}: analysis running", index + 1),
                );
                false
            }
            Some((AnalysisOutcome::Succeeded, _)) => true,
            Some((AnalysisOutcome::Inconclusive, message)) => {
                self.set_phase(
                    Phase::Paused,
                    format!(
                        "step {}: analysis inconclusive ({message}); run `tugboat promote {0}` or `tugboat abort {0}`",
                        index + 1,
                    )
                    .replace("{0}", &self.workload.name),
                );
                false
            }
            Some((AnalysisOutcome::Failed, message)) => {
                self.abort(
                    reason::ANALYSIS_FAILED,
                    format!("analysis failed: {message}"),
                );
                false
            }
        }
    }

    /// All steps passed: make sure all traffic is on the canary, then it becomes stable
    /// and the old slot is scheduled for scale-down.
    fn finish_rollout(&mut self, stable_slot: Slot, target: &Target, timers: &Timers) {
        let Some(canary) = self.status.canary.clone() else {
            return;
        };
        if !self.ensure_weights(
            canary.slot,
            100,
            "rollout complete: all traffic to the new revision",
            false,
        ) {
            self.status.desired_weight = Some(100);
            self.set_phase(
                Phase::Progressing,
                "shifting all traffic to the new revision",
            );
            return;
        }
        let at = self.now.plus(timers.scale_down_delay);
        self.status.stable = Some(Revision {
            slot: Some(canary.slot),
            hash: target.hash.clone(),
        });
        self.status.canary = None;
        self.status.desired_weight = Some(0);
        self.status.verified_weight = Some(0);
        self.status.scale_down = Some(ScaleDown {
            slot: stable_slot,
            at,
        });
        self.status.record(
            self.now,
            reason::PROMOTED,
            format!(
                "{} on {} serves all traffic; old {stable_slot} slot scales down at {at}",
                target.hash, canary.slot
            ),
        );
        self.requeue_at(at);
        self.set_phase(
            Phase::Healthy,
            format!(
                "running {} on {}; old {stable_slot} slot scales down at {at}",
                target.hash, canary.slot
            ),
        );
    }

    /// After an abort: weight back to stable and verified, then (after a drain delay)
    /// the canary scaled down, then the rollout ends as Aborted.
    fn unwind_abort(&mut self, stable_slot: Slot, stable_hash: &str, timers: &Timers) {
        let Some((canary, abort)) = self
            .status
            .canary
            .clone()
            .and_then(|c| c.aborted.clone().map(|a| (c, a)))
        else {
            return;
        };
        let verified = self.ensure_weights(
            stable_slot,
            100,
            "rollout aborted: traffic returns to stable",
            false,
        );
        self.status.desired_weight = Some(0);
        if !verified {
            self.set_phase(
                Phase::Aborted,
                format!("aborting ({}): moving traffic back to stable", abort.reason),
            );
            return;
        }
        self.status.verified_weight = Some(0);
        let restored_at = match abort.weight_restored_at {
            Some(t) => t,
            None => {
                if let Some(Abort {
                    weight_restored_at, ..
                }) = self.status.canary.as_mut().and_then(|c| c.aborted.as_mut())
                {
                    *weight_restored_at = Some(self.now);
                }
                self.status.record(
                    self.now,
                    reason::WEIGHT_RESTORED,
                    format!("stable {stable_slot} slot verified at 100%"),
                );
                self.now
            }
        };
        let scale_at = restored_at.plus(timers.abort_scale_down_delay);
        let canary_running = self
            .seen
            .slots
            .get(&canary.slot)
            .is_some_and(|s| s.desired_count > 0);
        if canary_running {
            if self.now >= scale_at {
                self.push(
                    Action::UpdateService {
                        workload: self.workload.name.clone(),
                        service: service_name(&self.workload.name, Some(canary.slot)),
                        content_hash: None,
                        desired_count: Some(0),
                    },
                    "rollout aborted: the canary scales down after traffic drained",
                );
            } else {
                self.requeue_at(scale_at);
            }
            self.set_phase(
                Phase::Aborted,
                format!(
                    "aborted ({}): canary scales down at {scale_at}",
                    abort.reason
                ),
            );
            return;
        }
        self.status.canary = None;
        self.status.aborted_hash = Some(canary.hash.clone());
        self.status
            .record(self.now, reason::SCALED_DOWN, "aborted canary scaled down");
        self.set_phase(
            Phase::Aborted,
            format!(
                "rollout of {} aborted ({}); stable {stable_hash} serves all traffic. Run `tugboat retry {}` or change the document",
                canary.hash, abort.reason, self.workload.name
            ),
        );
    }
}

#[cfg(test)]
mod tests;
