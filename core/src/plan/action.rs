//! What a plan asks the platform to do: [`Action`], and [`PlannedAction`] (an action
//! with the reason the planner wants it).
//!
//! Guarantee: every action is idempotent. Applying it to a platform that already
//! matches changes nothing, so a pass that crashes half-way can simply be planned again.
//! The JSON shape (`type`-tagged, camelCase) is what `tugboat diff` prints and what
//! recorded plans are compared against; it does not change without a note in the README.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::document::{AutoScaling, HeaderRouteMatch, Slot, TemplateRef};
use crate::status::Timestamp;
use crate::taskdef::TaskDefinition;

/// One change to make on the platform. Every action is idempotent: applying it to a
/// platform that already matches changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", tag = "type")]
// A plan holds a handful of actions per pass; boxing the task definition would buy
// nothing and change every constructor.
#[allow(clippy::large_enum_variant)]
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
        /// The main container's port behind `target_group` (0 for a worker, which has no
        /// target group).
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
    /// Make the workload's header route forward requests matching the route's
    /// conditions and every header match to `target_group` (the canary's `slot`) alone,
    /// creating the rule at `priority` if it does not exist.
    #[serde(rename_all = "camelCase")]
    SetHeaderRoute {
        workload: String,
        name: String,
        priority: u32,
        path_patterns: Vec<String>,
        slot: Slot,
        target_group: String,
        matches: Vec<HeaderRouteMatch>,
    },
    /// Delete the workload's header route rule (nothing to do when it is gone).
    #[serde(rename_all = "camelCase")]
    RemoveHeaderRoute { workload: String, name: String },
    /// Start measuring analysis templates against the canary.
    #[serde(rename_all = "camelCase")]
    StartAnalysis {
        workload: String,
        hash: String,
        step_index: usize,
        templates: Vec<TemplateRef>,
        /// The attempt (the start of the step's clock); the run reports it back in
        /// [`AnalysisRun::attempt`](crate::observed::AnalysisRun::attempt). A run
        /// already going for the same hash, step and attempt is left alone; another
        /// attempt replaces it.
        attempt: Timestamp,
    },
    /// Register `service` with Application Auto Scaling at this range, with exactly
    /// these policies and scheduled actions (others on the target are deleted).
    #[serde(rename_all = "camelCase")]
    EnsureScaling {
        workload: String,
        service: String,
        auto_scaling: AutoScaling,
    },
    /// Deregister `service` from Application Auto Scaling (its policies and scheduled
    /// actions go with it), so the scaler never moves a slot tugboat scales itself.
    #[serde(rename_all = "camelCase")]
    RemoveScaling { workload: String, service: String },
}

impl Action {
    pub fn workload(&self) -> &str {
        match self {
            Action::RegisterTaskDefinition { workload, .. }
            | Action::CreateService { workload, .. }
            | Action::UpdateService { workload, .. }
            | Action::SetWeights { workload, .. }
            | Action::SetHeaderRoute { workload, .. }
            | Action::RemoveHeaderRoute { workload, .. }
            | Action::StartAnalysis { workload, .. }
            | Action::EnsureScaling { workload, .. }
            | Action::RemoveScaling { workload, .. } => workload,
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
