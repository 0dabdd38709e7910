//! Applies a plan's actions, in order, through a [`Platform`].
//!
//! Guarantees:
//! - Actions run in the plan's order. A workload's first failure stops that workload's
//!   remaining actions (they assumed it succeeded) while other workloads carry on.
//! - Content hashes become task-definition ARNs here: from the observation, or from a
//!   `RegisterTaskDefinition` earlier in the same plan. A service is never pointed at a
//!   definition that was not found or registered.
//! - The report says what each action did and how many API calls the execution cost.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::document::Application;
use crate::observed::ObservedState;
use crate::plan::{Action, PlannedAction};
use crate::platform::{ActionOutcome, CallCounts, Platform, PlatformError};

/// What one execution did.
#[derive(Debug, Default)]
pub struct ExecutionReport {
    /// Actions applied, with what they did, in order.
    pub applied: Vec<(PlannedAction, ActionOutcome)>,
    /// The failed action of each workload that failed.
    pub failures: BTreeMap<String, WorkloadFailure>,
    /// Actions not tried because an earlier action of their workload failed.
    pub skipped: Vec<PlannedAction>,
    /// API calls made while executing.
    pub calls: CallCounts,
    /// Task definitions registered (or found) during execution, hash -> ARN.
    pub registered: BTreeMap<String, String>,
}

/// A workload's failed action.
#[derive(Debug)]
pub struct WorkloadFailure {
    pub action: PlannedAction,
    pub error: PlatformError,
}

impl ExecutionReport {
    /// Whether any failure may go away by itself (throttling, 5xx): the loop backs off.
    pub fn has_transient_failure(&self) -> bool {
        self.failures.values().any(|f| f.error.is_transient())
    }

    /// Actions that changed the platform.
    pub fn changes(&self) -> usize {
        self.applied
            .iter()
            .filter(|(_, o)| {
                matches!(
                    o,
                    ActionOutcome::Changed | ActionOutcome::TaskDefinition { reused: false, .. }
                )
            })
            .count()
    }
}

/// One line per action, for logs and `tugboat diff`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionSummary<'a> {
    pub workload: &'a str,
    pub action: &'a str,
    pub why: &'a str,
}

/// A short name for an action's kind.
pub fn action_name(action: &Action) -> &'static str {
    match action {
        Action::RegisterTaskDefinition { .. } => "RegisterTaskDefinition",
        Action::CreateService { .. } => "CreateService",
        Action::UpdateService { .. } => "UpdateService",
        Action::SetWeights { .. } => "SetWeights",
        Action::StartAnalysis { .. } => "StartAnalysis",
        Action::EnsureScaling { .. } => "EnsureScaling",
        Action::RemoveScaling { .. } => "RemoveScaling",
        Action::SetHeaderRoute { .. } => "SetHeaderRoute",
        Action::RemoveHeaderRoute { .. } => "RemoveHeaderRoute",
    }
}

/// Applies `actions` in order. Never fails as a whole: failures are per workload, in the
/// report.
pub async fn execute<P: Platform + ?Sized>(
    platform: &P,
    app: &Application,
    observed: &ObservedState,
    actions: &[PlannedAction],
) -> ExecutionReport {
    execute_in(platform, app, observed, actions, &BTreeMap::new()).await
}

/// The rollout each workload is in, for logs: `<hash12>@<started ms>` of the canary
/// (the planned status's, else the previous one's), or `at-rest/<hash12>` of the stable
/// revision.
pub fn rollout_ids(
    previous: Option<&crate::status::AppStatus>,
    planned: &crate::status::AppStatus,
) -> BTreeMap<String, String> {
    let short = |h: &str| h.chars().take(12).collect::<String>();
    let mut ids = BTreeMap::new();
    for status in previous.into_iter().chain(std::iter::once(planned)) {
        for (name, w) in &status.workloads {
            let id = match (&w.canary, &w.stable) {
                (Some(c), _) => format!("{}@{}", short(&c.hash), c.started_at.0),
                (None, Some(s)) => format!("at-rest/{}", short(&s.hash)),
                (None, None) => continue,
            };
            ids.insert(name.clone(), id);
        }
    }
    ids
}

/// [`execute`], each action's log lines carrying its workload's rollout id from
/// `rollouts` ([`rollout_ids`]).
pub async fn execute_in<P: Platform + ?Sized>(
    platform: &P,
    app: &Application,
    observed: &ObservedState,
    actions: &[PlannedAction],
    rollouts: &BTreeMap<String, String>,
) -> ExecutionReport {
    use tracing::Instrument;
    let before = platform.api_calls();
    let mut report = ExecutionReport::default();
    let mut arns = observed.task_definitions.clone();
    for planned in actions {
        let workload = planned.action.workload();
        if report.failures.contains_key(workload) {
            report.skipped.push(planned.clone());
            continue;
        }
        let span = tracing::info_span!(
            "action",
            workload,
            rollout = rollouts.get(workload).map(String::as_str).unwrap_or("none"),
            action = action_name(&planned.action),
            why = %planned.why
        );
        // Instrumented, not entered: an entered span held across an await would be
        // attributed to whatever else the thread runs meanwhile.
        let result = async {
            match needed_hash(&planned.action) {
                Some(hash) => match arns.get(hash) {
                    Some(arn) => platform.apply(app, &planned.action, Some(arn)).await,
                    None => Err(PlatformError::UnknownTaskDefinition {
                        workload: workload.to_string(),
                        content_hash: hash.to_string(),
                    }),
                },
                None => platform.apply(app, &planned.action, None).await,
            }
        }
        .instrument(span.clone())
        .await;
        let _entered = span.enter();
        match result {
            Ok(outcome) => {
                if let (
                    Action::RegisterTaskDefinition { content_hash, .. },
                    ActionOutcome::TaskDefinition { arn, .. },
                ) = (&planned.action, &outcome)
                {
                    arns.insert(content_hash.clone(), arn.clone());
                    report.registered.insert(content_hash.clone(), arn.clone());
                }
                tracing::info!(outcome = ?outcome, "applied");
                report.applied.push((planned.clone(), outcome));
            }
            Err(error) => {
                tracing::warn!(error = %error, "action failed; skipping the rest of this workload");
                report.failures.insert(
                    workload.to_string(),
                    WorkloadFailure {
                        action: planned.clone(),
                        error,
                    },
                );
            }
        }
    }
    report.calls = platform.api_calls().since(&before);
    report
}

/// The content hash an action needs resolved to an ARN before it can be applied.
fn needed_hash(action: &Action) -> Option<&str> {
    match action {
        Action::CreateService { content_hash, .. } => Some(content_hash),
        Action::UpdateService {
            content_hash: Some(hash),
            ..
        } => Some(hash),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Slot;
    use crate::platform::memory::MemoryPlatform;
    use crate::taskdef;

    fn app() -> Application {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "tugboat.dev/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop", "environment": "test"},
            "spec": {
                "platform": {"aws": {
                    "region": "us-east-1", "cluster": "shop", "subnets": ["subnet-1"],
                    "securityGroups": ["sg-1"],
                    "executionRoleArn": "arn:aws:iam::123456789012:role/exec"
                }},
                "workloads": [
                    {"name": "api", "image": "api:1", "cpu": 256, "memory": 512,
                     "desiredCount": 2, "containerPort": 8000,
                     "route": {"pathPatterns": ["/api/*"], "priority": 10,
                               "targetGroups": {"blue": "tg-api-blue", "green": "tg-api-green"}},
                     "strategy": {"canary": {"steps": [{"setWeight": 20}, {"setWeight": 100}]}}},
                    {"name": "worker", "image": "worker:1", "cpu": 256, "memory": 512,
                     "desiredCount": 1, "containerPort": 9000, "strategy": {"rolling": {}}}
                ]
            }
        }))
        .expect("test document parses")
    }

    fn planned(action: Action) -> PlannedAction {
        PlannedAction {
            action,
            why: "test".into(),
        }
    }

    fn first_deploy(app: &Application, name: &str, slot: Option<Slot>) -> Vec<PlannedAction> {
        let workload = app.workload(name).expect("workload in test document");
        let definition = taskdef::render(app, workload, None);
        let hash = definition.content_hash();
        vec![
            planned(Action::RegisterTaskDefinition {
                workload: name.into(),
                content_hash: hash.clone(),
                definition,
            }),
            planned(Action::CreateService {
                workload: name.into(),
                service: crate::platform::service_name(name, slot),
                slot,
                content_hash: hash,
                desired_count: workload.desired_count,
                target_group: None,
                container_name: name.into(),
                container_port: workload.container_port.unwrap_or(0),
            }),
        ]
    }

    #[tokio::test]
    async fn a_service_is_created_on_the_definition_registered_earlier_in_the_plan() {
        let app = app();
        let platform = MemoryPlatform::new();
        let actions = first_deploy(&app, "worker", None);
        let report = execute(&platform, &app, &ObservedState::default(), &actions).await;
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        let arn = platform.with_state(|s| s.services["worker"].task_definition_arn.clone());
        assert_eq!(arn, "memory:task-definition/shop-worker:1");
        assert_eq!(report.calls.mutate, 2);
    }

    #[tokio::test]
    async fn a_failing_workload_stops_its_own_actions_but_not_the_others() {
        let app = app();
        let platform = MemoryPlatform::new();
        platform.with_state(|s| {
            s.apply_faults
                .insert("api".into(), "listener is gone".into());
        });
        let mut actions = first_deploy(&app, "api", Some(Slot::Blue));
        actions.extend(first_deploy(&app, "worker", None));
        let report = execute(&platform, &app, &ObservedState::default(), &actions).await;
        assert_eq!(report.failures.keys().collect::<Vec<_>>(), ["api"]);
        assert_eq!(report.skipped.len(), 1, "api's CreateService is skipped");
        assert!(platform.with_state(|s| s.services.contains_key("worker")));
        assert!(!platform.with_state(|s| s.services.contains_key("api-blue")));
    }

    #[tokio::test]
    async fn a_service_is_never_pointed_at_an_unknown_definition() {
        let app = app();
        let platform = MemoryPlatform::new();
        let actions = first_deploy(&app, "worker", None).split_off(1);
        let report = execute(&platform, &app, &ObservedState::default(), &actions).await;
        assert!(matches!(
            report.failures["worker"].error,
            PlatformError::UnknownTaskDefinition { .. }
        ));
        assert_eq!(report.calls.mutate, 0);
    }

    #[tokio::test]
    async fn registering_an_existing_definition_reuses_it() {
        let app = app();
        let platform = MemoryPlatform::new();
        let actions = first_deploy(&app, "worker", None);
        execute(&platform, &app, &ObservedState::default(), &actions[..1]).await;
        let report = execute(&platform, &app, &ObservedState::default(), &actions).await;
        assert!(matches!(
            report.applied[0].1,
            ActionOutcome::TaskDefinition { reused: true, .. }
        ));
        assert_eq!(platform.revisions("shop-worker").len(), 1);
    }
}
