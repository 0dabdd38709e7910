//! The observed state: what a platform saw, in the shape the planner needs.
//!
//! Platforms (AWS, local, test fakes) fill this in; the planner only reads it. It is
//! plain data that can be written to and read from a file, so `tugboat diff` can plan
//! against a recorded observation and tests can state observations as literals.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::Value;
use crate::document::Slot;
use crate::status::Timestamp;

/// Everything observed in one pass.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedState {
    /// Per workload, by workload name. A workload with nothing deployed may be absent.
    #[serde(default)]
    pub workloads: BTreeMap<String, ObservedWorkload>,
    /// Task-definition revisions tugboat registered, by content hash -> ARN. Lets the
    /// planner skip registering a definition that already exists.
    #[serde(default)]
    pub task_definitions: BTreeMap<String, String>,
    /// Models resolved to a concrete artifact, by model name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelResolution>,
    /// Operator overrides in force.
    #[serde(default)]
    pub overrides: BTreeMap<String, WorkloadOverrides>,
    /// Measurements the analysis runner took this pass, by workload name. The planner
    /// records each into the run it names (runs live in the persisted status).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub measurements: BTreeMap<String, Vec<TakenMeasurement>>,
    /// Answers of the gates the persisted status waits at, asked this pass, by workload.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub gate_answers: BTreeMap<String, crate::plan::gate::GateAnswer>,
}

/// One workload's services and route.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedWorkload {
    /// The single service of a rolling workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ObservedService>,
    /// The two slot services of a progressive workload.
    #[serde(default)]
    pub slots: BTreeMap<Slot, ObservedService>,
    /// The listener rule, when it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<ObservedRule>,
    /// The workload's services registered with Application Auto Scaling, with their
    /// range, policies and scheduled actions read back in the document's shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scaling: Vec<ObservedScaling>,
    /// The header route to the canary (a `setHeaderRoute` step's listener rule), read
    /// back from the rule itself, so a restarted controller sees what is in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_route: Option<ObservedHeaderRoute>,
}

/// A workload's header route as the load balancer has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedHeaderRoute {
    /// The route's name (from the rule's tag).
    pub name: String,
    /// The slot whose target group the rule forwards to; `None` when it forwards to
    /// anything else (drift: the rule is rewritten or removed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<Slot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// The header conditions, in the document's shape.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<crate::document::HeaderRouteMatch>,
}

/// One scalable target (an ECS service) as Application Auto Scaling has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedScaling {
    /// The ECS service name (the target's `service/<cluster>/<service>`).
    pub service: String,
    pub auto_scaling: crate::document::AutoScaling,
    /// Policies on the target that the document cannot express (step scaling, custom
    /// metrics), by name: tugboat deletes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmanaged_policies: Vec<String>,
}

/// An ECS service (or local process group) as seen now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedService {
    pub name: String,
    /// Whether tugboat created it (tagged). tugboat never changes what it does not own.
    #[serde(default = "yes")]
    pub owned: bool,
    /// Content hash of the task definition the service runs, from the definition's tag.
    /// `None` when the definition was not registered by tugboat (changed by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_definition_arn: Option<String>,
    pub desired_count: u32,
    pub running_count: u32,
    /// The primary deployment finished (ECS `rolloutState` COMPLETED, or no deployment
    /// in flight).
    #[serde(default = "yes")]
    pub deployment_complete: bool,
    /// The primary deployment failed (circuit breaker).
    #[serde(default)]
    pub deployment_failed: bool,
    /// Healthy targets in the slot's target group (for routed workloads).
    #[serde(default)]
    pub healthy_targets: u32,
}

fn yes() -> bool {
    true
}

/// The listener rule of a routed workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedRule {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    #[serde(default = "yes")]
    pub owned: bool,
    /// Weight per slot as read back from the load balancer.
    pub weights: BTreeMap<Slot, u32>,
    /// The rule's priority, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// The rule's path patterns, when known (empty: not observed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path_patterns: Vec<String>,
    /// Anything on the rule beyond the workload's path condition and its two weighted
    /// target groups, one line each (e.g. `forwards to a third target group tg-x`,
    /// `has an extra host-header condition`). Non-empty is drift: the rule is rewritten.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unexpected: Vec<String>,
}

impl ObservedRule {
    pub fn weight(&self, slot: Slot) -> u32 {
        self.weights.get(&slot).copied().unwrap_or(0)
    }
}

/// A model pointer resolved to a concrete, checked artifact, or why it could not be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum ModelResolution {
    Resolved(ResolvedModel),
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResolvedModel {
    pub version: String,
    /// URI of the version's directory, e.g. `s3://models/churn/v1.3`.
    pub uri: String,
    /// Lower-case hex SHA-256 of `model.onnx`.
    pub sha256: String,
}

/// Operator overrides for one workload.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_pin: Option<WeightPin>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<OperatorAction>,
    /// A weight override is there but does not parse (where it is and why). An operator
    /// who meant to pin the canary must not see it promoted instead: the rollout holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unreadable_weight: Option<String>,
    /// Who wrote the weight pin, why and when, when the inbox knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_record: Option<OverrideRecord>,
    /// Who wrote the action, why and when, when the inbox knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_record: Option<OverrideRecord>,
    /// `tugboat undo`: run an earlier stable revision instead of the document's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<UndoOverride>,
}

/// An undo in the inbox: run `revision` (a content hash that was stable before) while
/// the document still renders `from`; a new revision in the document ends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UndoOverride {
    pub revision: String,
    pub from: String,
}

/// Who wrote an override, why, and when: on AWS from SSM's parameter metadata (the
/// last modifying user, the parameter's description, its modification date), locally
/// from the record the CLI leaves beside the file. Each part is `None` when unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

impl OverrideRecord {
    /// ` (by alice: INC-42)`, ` (by alice)`, ` (INC-42)` or nothing, for messages.
    pub fn suffix(record: Option<&OverrideRecord>) -> String {
        let Some(r) = record else {
            return String::new();
        };
        match (&r.by, &r.reason) {
            (Some(by), Some(why)) => format!(" (by {by}: {why})"),
            (Some(by), None) => format!(" (by {by})"),
            (None, Some(why)) => format!(" ({why})"),
            (None, None) => String::new(),
        }
    }
}

/// Canary weight held at a value while in force.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WeightPin {
    pub weight: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Timestamp>,
}

impl WeightPin {
    pub fn in_force(&self, now: Timestamp) -> bool {
        self.expires.is_none_or(|e| now < e)
    }
}

/// A one-shot operator action. `version` (the SSM parameter version) identifies it, so
/// it is handled exactly once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperatorAction {
    pub kind: OperatorActionKind,
    pub version: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum OperatorActionKind {
    Promote,
    /// `promote --full`: skip every remaining step (weights are still verified before
    /// the old slot scales down).
    PromoteFull,
    Abort,
    Retry,
    Pause,
    Resume,
}

/// One measurement the analysis runner took for a metric of a run in the status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TakenMeasurement {
    /// The run's id ([`crate::status::AnalysisRunStatus::id`]).
    pub run: String,
    pub template: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// What the provider answered to the template's query.
    pub answer: Answer,
    /// What it answered to the `sampleQuery`, when the template has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<Answer>,
}

/// A provider's answer to one query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum Answer {
    /// A value, for the conditions to judge.
    Value(Value),
    /// The query found nothing (an empty vector, no datapoints, nothing at the JSON
    /// pointer); says what.
    NoData(String),
    /// The provider failed (unreachable, timed out, answered garbage, the query does not
    /// parse); says why. Neither a success nor a failure.
    Error(String),
}
