//! The only places a plan changes something: `ensure_registered`, `ensure_service` and
//! `ensure_weights`.
//!
//! Guarantee: each compares the desired shape with the observation and plans an action
//! only for what differs, so a converged workload plans nothing. `drift` marks a
//! correction of a change made outside tugboat; only then is a `Drifted` event recorded.

use crate::document::{Route, Slot};
use crate::observed::ObservedService;

use super::{Action, DesiredRevision, WorkloadPlanner, service_name, split_weights};

impl WorkloadPlanner<'_> {
    /// Registers the desired definition unless it exists (or is already planned).
    pub(super) fn ensure_registered(&mut self, desired: &DesiredRevision) {
        let known = self.observed.task_definitions.contains_key(&desired.hash);
        let planned = self.actions.iter().any(|a| {
            matches!(&a.action, Action::RegisterTaskDefinition { content_hash, .. }
                if *content_hash == desired.hash)
        });
        if !known && !planned {
            self.push(
                Action::RegisterTaskDefinition {
                    workload: self.workload.name.clone(),
                    content_hash: desired.hash.clone(),
                    definition: desired.definition.clone(),
                },
                format!("no task definition with content hash {} yet", desired.hash),
            );
        }
    }

    pub(super) fn route(&self) -> Option<&Route> {
        self.workload.route.as_ref()
    }

    /// Makes the service for `slot` run `hash` with `count` tasks, creating it if
    /// missing. Returns whether anything had to change. `drift` marks a correction of a
    /// change made outside tugboat.
    pub(super) fn ensure_service(
        &mut self,
        slot: Option<Slot>,
        desired: &DesiredRevision,
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
                if hash == desired.hash {
                    self.ensure_registered(desired);
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
                if wrong_hash && hash == desired.hash {
                    self.ensure_registered(desired);
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
    pub(super) fn is_healthy(&self, svc: Option<&ObservedService>, hash: &str, count: u32) -> bool {
        let Some(svc) = svc else { return false };
        let targets_ok = self.route().is_none() || svc.healthy_targets >= count;
        svc.content_hash.as_deref() == Some(hash)
            && svc.desired_count == count
            && svc.running_count >= count
            && svc.deployment_complete
            && !svc.deployment_failed
            && targets_ok
    }

    /// The rule's weights `(blue, green)` as read back, if the rule exists.
    pub(super) fn observed_weights(&self) -> Option<(u32, u32)> {
        self.seen
            .rule
            .as_ref()
            .map(|r| (r.weight(Slot::Blue), r.weight(Slot::Green)))
    }

    /// The weight the rule gives `slot` as read back (0 without a rule).
    pub(super) fn observed_weight(&self, slot: Slot) -> u32 {
        self.seen.rule.as_ref().map_or(0, |r| r.weight(slot))
    }

    /// Sets the rule so that `slot` gets `weight` and its twin the rest. Returns whether
    /// the load balancer already shows exactly that (verified).
    pub(super) fn ensure_weights(
        &mut self,
        slot: Slot,
        weight: u32,
        why: &str,
        drift: bool,
    ) -> bool {
        let (blue, green) = split_weights(slot, weight);
        let Some(route) = self.route().cloned() else {
            return true;
        };
        let rule_matches_route = self.seen.rule.as_ref().is_some_and(|r| {
            r.priority.is_none_or(|p| p == route.priority)
                && (r.path_patterns.is_empty() || r.path_patterns == route.path_patterns)
        });
        let set_weights = Action::SetWeights {
            workload: self.workload.name.clone(),
            path_patterns: route.path_patterns.clone(),
            priority: route.priority,
            blue_target_group: route.target_groups.blue.clone(),
            green_target_group: route.target_groups.green.clone(),
            blue,
            green,
        };
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
                self.push(set_weights, what);
                return false;
            }
        }
        if drift && let Some((b, g)) = self.observed_weights() {
            self.note_drift(&format!(
                "rule weights are blue {b} / green {g} instead of blue {blue} / green {green}"
            ));
        }
        self.push(set_weights, why.to_string());
        false
    }
}
