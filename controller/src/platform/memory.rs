//! An in-memory platform: ECS services, task definitions and listener rules as plain
//! maps, for the reconcile loop's tests and the conformance suite.
//!
//! It behaves like ECS and the ALB would if deployments finished at once: a service
//! runs its desired count immediately and every running task is a healthy target. Tests
//! reach into the state ([`MemoryPlatform::with_state`]) to make drift, hold tasks
//! unhealthy, or make one workload fail, the way an operator or an outage would. Like
//! the AWS platform, it reports anything on a rule beyond its path condition and two
//! target groups (a third target group in `weights`, `rule_extras`) as unexpected, and
//! SetWeights rewrites the rule whole.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::document::{Application, Slot};
use crate::observed::{ObservedRule, ObservedService, ObservedWorkload};
use crate::plan::Action;
use crate::taskdef::TaskDefinition;

use super::{
    ActionOutcome, CallCounter, CallCounts, CallEstimate, CallKind, Observation, Platform,
    PlatformError, owner, service_name,
};

/// The fake's whole world. Public so tests can change it as a person would.
#[derive(Debug, Default, Clone)]
pub struct MemoryState {
    /// By service name.
    pub services: BTreeMap<String, MemoryService>,
    /// By ARN.
    pub task_definitions: BTreeMap<String, MemoryTaskDefinition>,
    /// By workload name.
    pub rules: BTreeMap<String, MemoryRule>,
    /// Workloads whose observation fails, with the message.
    pub observe_faults: BTreeMap<String, String>,
    /// Workloads whose actions fail, with the message.
    pub apply_faults: BTreeMap<String, String>,
    /// The next this-many observations fail as a whole, throttled.
    pub throttled_observations: u32,
    /// The next this-many observations fail as a whole, access denied.
    pub denied_observations: u32,
    /// When each observation was made (tokio's clock, so paused-clock tests can read it).
    pub observed_at: Vec<tokio::time::Instant>,
    /// Workload -> things added by hand to its rule beyond the path condition and the
    /// target groups (an extra condition, another action), one line each, reported in
    /// `ObservedRule::unexpected` until a SetWeights rewrites the rule. A third target
    /// group is added to [`MemoryRule::weights`] instead.
    pub rule_extras: BTreeMap<String, Vec<String>>,
    /// Service name -> its scalable target, as EnsureScaling left it.
    pub scaling: BTreeMap<String, crate::observed::ObservedScaling>,
    /// By workload name: its header route's rule (a `setHeaderRoute` step's).
    pub header_rules: BTreeMap<String, MemoryHeaderRule>,
}

/// A header route's listener rule: the route's paths plus header matches, forwarding to
/// one target group alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryHeaderRule {
    pub name: String,
    pub priority: u32,
    pub path_patterns: Vec<String>,
    pub target_group: String,
    pub matches: Vec<crate::document::HeaderRouteMatch>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryService {
    pub owner: Option<String>,
    pub task_definition_arn: String,
    pub desired_count: u32,
    pub target_group: Option<String>,
    /// Healthy targets; `None` means "as many as running tasks".
    pub healthy_targets: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryTaskDefinition {
    pub family: String,
    pub revision: u32,
    pub content_hash: String,
    pub definition: TaskDefinition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryRule {
    pub arn: String,
    pub owner: Option<String>,
    pub priority: u32,
    pub path_patterns: Vec<String>,
    /// Target group -> weight.
    pub weights: BTreeMap<String, u32>,
}

/// The in-memory platform.
#[derive(Debug, Default)]
pub struct MemoryPlatform {
    state: Mutex<MemoryState>,
    calls: CallCounter,
}

impl MemoryPlatform {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the state, as an operator or outage acting outside the controller.
    pub fn with_state<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut state)
    }

    /// Revisions registered per family, for duplicate checks.
    pub fn revisions(&self, family: &str) -> Vec<MemoryTaskDefinition> {
        self.with_state(|s| {
            s.task_definitions
                .values()
                .filter(|d| d.family == family)
                .cloned()
                .collect()
        })
    }

    fn observe_service(state: &MemoryState, name: &str) -> Option<ObservedService> {
        let service = state.services.get(name)?;
        let definition = state.task_definitions.get(&service.task_definition_arn);
        Some(ObservedService {
            name: name.to_string(),
            owned: service.owner.is_some(),
            content_hash: definition.map(|d| d.content_hash.clone()),
            task_definition_arn: Some(service.task_definition_arn.clone()),
            desired_count: service.desired_count,
            running_count: service.desired_count,
            deployment_complete: true,
            deployment_failed: false,
            healthy_targets: match (&service.target_group, service.healthy_targets) {
                (None, _) => 0,
                (Some(_), Some(healthy)) => healthy,
                (Some(_), None) => service.desired_count,
            },
        })
    }

    /// What the AWS platform would list as unexpected on the rule: target groups
    /// beyond the route's two, then the extras added by hand.
    fn unexpected(
        state: &MemoryState,
        workload: &str,
        rule: &MemoryRule,
        route: &crate::document::Route,
    ) -> Vec<String> {
        let ours = [&route.target_groups.blue, &route.target_groups.green];
        rule.weights
            .keys()
            .filter(|tg| !ours.contains(tg))
            .map(|tg| format!("forwards to a third target group {tg}"))
            .chain(
                state
                    .rule_extras
                    .get(workload)
                    .into_iter()
                    .flatten()
                    .cloned(),
            )
            .collect()
    }

    fn check_owned(
        what: impl Into<String>,
        found: Option<&String>,
        owner: &str,
    ) -> Result<(), PlatformError> {
        match found {
            Some(o) if o == owner => Ok(()),
            _ => Err(PlatformError::NotOwned {
                what: what.into(),
                owner: owner.to_string(),
            }),
        }
    }
}

impl Platform for MemoryPlatform {
    async fn observe(&self, app: &Application) -> Result<Observation, PlatformError> {
        self.calls.record("memory:Observe", CallKind::Describe);
        let me = owner(app);
        let (throttled, denied) = self.with_state(|s| {
            s.observed_at.push(tokio::time::Instant::now());
            let throttled = s.throttled_observations > 0;
            s.throttled_observations = s.throttled_observations.saturating_sub(1);
            let denied = !throttled && s.denied_observations > 0;
            if denied {
                s.denied_observations -= 1;
            }
            (throttled, denied)
        });
        if throttled {
            return Err(PlatformError::Throttled {
                api: "memory:Observe",
                source: "Rate exceeded".into(),
            });
        }
        if denied {
            return Err(PlatformError::AccessDenied {
                api: "memory:Observe",
                message: "not authorized to perform ecs:DescribeServices".into(),
            });
        }
        let state = self.with_state(|s| s.clone());
        let mut observation = Observation::default();
        for workload in &app.spec.workloads {
            if let Some(message) = state.observe_faults.get(&workload.name) {
                observation.workload_errors.insert(
                    workload.name.clone(),
                    PlatformError::Unavailable {
                        api: "memory:Observe",
                        message: message.clone(),
                        source: None,
                    },
                );
                continue;
            }
            let mut observed = ObservedWorkload::default();
            if workload.is_progressive() {
                for slot in [Slot::Blue, Slot::Green] {
                    let name = service_name(&workload.name, Some(slot));
                    if let Some(s) = Self::observe_service(&state, &name) {
                        observed.slots.insert(slot, s);
                    }
                }
            } else {
                observed.service = Self::observe_service(&state, &workload.name);
            }
            if let (Some(rule), Some(route)) = (state.rules.get(&workload.name), &workload.route) {
                let weights = route.target_groups.slot_weights(&rule.weights);
                observed.rule = Some(ObservedRule {
                    arn: Some(rule.arn.clone()),
                    owned: rule.owner.as_deref() == Some(me.as_str()),
                    weights,
                    priority: Some(rule.priority),
                    path_patterns: rule.path_patterns.clone(),
                    unexpected: Self::unexpected(&state, &workload.name, rule, route),
                });
            }
            if let (Some(h), Some(route)) =
                (state.header_rules.get(&workload.name), &workload.route)
            {
                let slot = route.target_groups.slot_of(&h.target_group);
                observed.header_route = Some(crate::observed::ObservedHeaderRoute {
                    name: h.name.clone(),
                    slot,
                    priority: Some(h.priority),
                    matches: h.matches.clone(),
                });
            }
            let services: Vec<String> = if workload.is_progressive() {
                vec![
                    service_name(&workload.name, Some(Slot::Blue)),
                    service_name(&workload.name, Some(Slot::Green)),
                ]
            } else {
                vec![workload.name.clone()]
            };
            observed.scaling = services
                .iter()
                .filter_map(|s| state.scaling.get(s).cloned())
                .collect();
            if observed != ObservedWorkload::default() {
                observation
                    .state
                    .workloads
                    .insert(workload.name.clone(), observed);
            }
        }
        observation
            .state
            .task_definitions
            .extend(super::own_task_definitions(
                app,
                state
                    .task_definitions
                    .iter()
                    .map(|(arn, d)| (arn, d.family.as_str(), d.content_hash.as_str())),
            ));
        Ok(observation)
    }

    async fn apply(
        &self,
        app: &Application,
        action: &Action,
        task_definition_arn: Option<&str>,
    ) -> Result<ActionOutcome, PlatformError> {
        let me = owner(app);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(message) = state.apply_faults.get(action.workload()) {
            self.calls.record("memory:Apply", CallKind::Mutate);
            return Err(PlatformError::Rejected {
                api: "memory:Apply",
                message: message.clone(),
                source: None,
            });
        }
        match action {
            Action::RegisterTaskDefinition {
                content_hash,
                definition,
                ..
            } => {
                let existing = state.task_definitions.iter().find(|(_, d)| {
                    d.family == definition.family && &d.content_hash == content_hash
                });
                if let Some((arn, _)) = existing {
                    return Ok(ActionOutcome::TaskDefinition {
                        arn: arn.clone(),
                        reused: true,
                    });
                }
                self.calls
                    .record("memory:RegisterTaskDefinition", CallKind::Mutate);
                let revision = state
                    .task_definitions
                    .values()
                    .filter(|d| d.family == definition.family)
                    .map(|d| d.revision)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let arn = format!("memory:task-definition/{}:{revision}", definition.family);
                state.task_definitions.insert(
                    arn.clone(),
                    MemoryTaskDefinition {
                        family: definition.family.clone(),
                        revision,
                        content_hash: content_hash.clone(),
                        definition: definition.clone(),
                    },
                );
                Ok(ActionOutcome::TaskDefinition { arn, reused: false })
            }
            Action::CreateService {
                workload,
                service,
                content_hash,
                desired_count,
                target_group,
                ..
            } => {
                let arn =
                    task_definition_arn.ok_or_else(|| PlatformError::UnknownTaskDefinition {
                        workload: workload.clone(),
                        content_hash: content_hash.clone(),
                    })?;
                if let Some(existing) = state.services.get(service) {
                    Self::check_owned(format!("service {service}"), existing.owner.as_ref(), &me)?;
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.calls.record("memory:CreateService", CallKind::Mutate);
                state.services.insert(
                    service.clone(),
                    MemoryService {
                        owner: Some(me),
                        task_definition_arn: arn.to_string(),
                        desired_count: *desired_count,
                        target_group: target_group.clone(),
                        healthy_targets: None,
                    },
                );
                Ok(ActionOutcome::Changed)
            }
            Action::UpdateService {
                service,
                desired_count,
                ..
            } => {
                let existing =
                    state
                        .services
                        .get_mut(service)
                        .ok_or_else(|| PlatformError::NotFound {
                            what: format!("service {service}"),
                            message: "not in the fake".into(),
                        })?;
                Self::check_owned(format!("service {service}"), existing.owner.as_ref(), &me)?;
                let mut changed = false;
                if let Some(arn) = task_definition_arn
                    && existing.task_definition_arn != arn
                {
                    existing.task_definition_arn = arn.to_string();
                    changed = true;
                }
                if let Some(count) = desired_count
                    && existing.desired_count != *count
                {
                    existing.desired_count = *count;
                    changed = true;
                }
                if !changed {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.calls.record("memory:UpdateService", CallKind::Mutate);
                Ok(ActionOutcome::Changed)
            }
            Action::SetWeights {
                workload,
                path_patterns,
                priority,
                blue_target_group,
                green_target_group,
                blue,
                green,
            } => {
                let weights = BTreeMap::from([
                    (blue_target_group.clone(), *blue),
                    (green_target_group.clone(), *green),
                ]);
                let has_extras = state
                    .rule_extras
                    .get(workload)
                    .is_some_and(|e| !e.is_empty());
                if let Some(rule) = state.rules.get_mut(workload) {
                    Self::check_owned(format!("rule {}", rule.arn), rule.owner.as_ref(), &me)?;
                    if rule.weights == weights
                        && rule.path_patterns == *path_patterns
                        && rule.priority == *priority
                        && !has_extras
                    {
                        return Ok(ActionOutcome::AlreadyInPlace);
                    }
                    // Rewritten whole, as ModifyRule does: extras added by hand go.
                    self.calls.record("memory:ModifyRule", CallKind::Mutate);
                    rule.priority = *priority;
                    rule.weights = weights;
                    rule.path_patterns = path_patterns.clone();
                    state.rule_extras.remove(workload);
                    return Ok(ActionOutcome::Changed);
                }
                self.calls.record("memory:CreateRule", CallKind::Mutate);
                state.rules.insert(
                    workload.clone(),
                    MemoryRule {
                        arn: format!("memory:rule/{workload}"),
                        owner: Some(me),
                        priority: *priority,
                        path_patterns: path_patterns.clone(),
                        weights,
                    },
                );
                Ok(ActionOutcome::Changed)
            }
            Action::SetHeaderRoute {
                workload,
                name,
                priority,
                path_patterns,
                target_group,
                matches,
                ..
            } => {
                let wanted = MemoryHeaderRule {
                    name: name.clone(),
                    priority: *priority,
                    path_patterns: path_patterns.clone(),
                    target_group: target_group.clone(),
                    matches: matches.clone(),
                };
                if state.header_rules.get(workload) == Some(&wanted) {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                let call = if state.header_rules.contains_key(workload) {
                    "memory:ModifyRule"
                } else {
                    "memory:CreateRule"
                };
                self.calls.record(call, CallKind::Mutate);
                state.header_rules.insert(workload.clone(), wanted);
                Ok(ActionOutcome::Changed)
            }
            Action::RemoveHeaderRoute { workload, .. } => {
                if state.header_rules.remove(workload).is_none() {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.calls.record("memory:DeleteRule", CallKind::Mutate);
                Ok(ActionOutcome::Changed)
            }
            Action::StartAnalysis { .. } => Ok(ActionOutcome::NotApplicable),
            Action::EnsureScaling {
                service,
                auto_scaling,
                ..
            } => {
                let wanted = crate::observed::ObservedScaling {
                    service: service.clone(),
                    auto_scaling: auto_scaling.clone(),
                    unmanaged_policies: Vec::new(),
                };
                if state.scaling.get(service) == Some(&wanted) {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.calls
                    .record("memory:RegisterScalableTarget", CallKind::Mutate);
                state.scaling.insert(service.clone(), wanted);
                Ok(ActionOutcome::Changed)
            }
            Action::RemoveScaling { service, .. } => {
                if state.scaling.remove(service).is_none() {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.calls
                    .record("memory:DeregisterScalableTarget", CallKind::Mutate);
                Ok(ActionOutcome::Changed)
            }
        }
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    fn estimate_calls(
        &self,
        action: &Action,
        _observed: &crate::observed::ObservedState,
    ) -> CallEstimate {
        CallEstimate {
            describe: 0,
            mutate: u32::from(action.is_mutating()),
        }
    }
}
