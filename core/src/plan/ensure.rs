//! The only places a plan changes something: `ensure_registered`, `ensure_service` and
//! `ensure_weights`.
//!
//! Guarantee: each compares the desired shape with the observation and plans an action
//! only for what differs, so a converged workload plans nothing. `drift` marks a
//! correction of a change made outside tugboat; only then is a `Drifted` event recorded.
//!
//! Safety guarantees enforced here, whatever the caller asks for:
//! - weight never goes onto a slot with no running tasks or no healthy targets
//!   (`ensure_weights` withholds it and sets the `Blocked` condition);
//! - a slot the rule gives weight is never scaled to 0 tasks (`ensure_service`,
//!   `scale_down_slot`);
//! - a rule holding anything beyond its path condition and two weighted target groups is
//!   rewritten whole.

use crate::document::{Route, SetHeaderRoute, Slot};
use crate::observed::ObservedService;
use crate::status::reason;

use super::{
    Action, DesiredRevision, POLL_WHILE_WAITING, WorkloadPlanner, service_name, split_weights,
};

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
                        container_name: crate::taskdef::main_container_name(self.workload)
                            .to_string(),
                        container_port: self.workload.container_port.unwrap_or(0),
                    },
                    format!("service {name} does not exist"),
                );
                true
            }
            Some(svc) => {
                let count = self.count_for_slot(slot, svc, count);
                let wrong_hash = svc.content_hash.as_deref() != Some(hash);
                let wrong_count = svc.desired_count != count;
                if !wrong_hash && !wrong_count {
                    return false;
                }
                if let Some(slot) = slot
                    && count == 0
                    && self.observed_weight(slot) > 0
                {
                    let message = format!(
                        "the {slot} slot carries {}% of traffic and would be scaled to 0 tasks \
                         (desiredCount 0); tugboat never empties a slot that serves traffic. \
                         Set desiredCount to at least 1",
                        self.observed_weight(slot)
                    );
                    self.hold(reason::NO_HEALTHY_TARGETS, message);
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
    /// A slot with no running tasks (or, routed, no healthy targets) is never healthy,
    /// whatever `count` says: it could not serve the weight it would be given.
    pub(super) fn is_healthy(&self, svc: Option<&ObservedService>, hash: &str, count: u32) -> bool {
        let Some(svc) = svc else { return false };
        if self.workload.is_progressive()
            && (svc.running_count == 0 || (self.route().is_some() && svc.healthy_targets == 0))
        {
            return false;
        }
        let targets_ok = self.route().is_none() || svc.healthy_targets >= count;
        // On a scaled workload a slot with weight may keep more tasks than the stable's
        // count (it is never scaled down while it serves).
        let count_ok = if self.auto_scaling().is_some() {
            svc.desired_count >= count
        } else {
            svc.desired_count == count
        };
        svc.content_hash.as_deref() == Some(hash)
            && count_ok
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

    /// The service behind `slot`'s target group: the slot's, or a rolling workload's one.
    fn slot_service(&self, slot: Slot) -> Option<&ObservedService> {
        if self.workload.is_progressive() {
            self.seen.slots.get(&slot)
        } else {
            self.seen.service.as_ref()
        }
    }

    /// Why `slot` cannot take traffic now (no service, no running tasks, no healthy
    /// targets), or `None` when it can.
    pub(super) fn cannot_carry_weight(&self, slot: Slot) -> Option<String> {
        match self.slot_service(slot) {
            None => Some(format!("the {slot} slot has no service")),
            Some(s) if s.running_count == 0 => Some(format!(
                "the {slot} slot has no running tasks (desired {})",
                s.desired_count
            )),
            Some(s) if s.healthy_targets == 0 => Some(format!(
                "the {slot} slot has no healthy targets ({} running tasks)",
                s.running_count
            )),
            Some(_) => None,
        }
    }

    /// Plans `UpdateService ... desiredCount 0` for `slot`, unless the rule still gives
    /// it weight (then the caller's read-back has not happened; nothing is planned).
    pub(super) fn scale_down_slot(&mut self, slot: Slot, why: impl Into<String>) {
        // A header route is traffic too: it goes (read back) before its slot does.
        if self.observed_weight(slot) > 0 || self.header_route_slot() == Some(slot) {
            return;
        }
        self.push(
            Action::UpdateService {
                workload: self.workload.name.clone(),
                service: service_name(&self.workload.name, Some(slot)),
                content_hash: None,
                desired_count: Some(0),
            },
            why,
        );
    }

    /// The slot the observed header route forwards to, if there is one.
    pub(super) fn header_route_slot(&self) -> Option<Slot> {
        self.seen.header_route.as_ref().and_then(|h| h.slot)
    }

    /// Makes the workload's header route be `want` (a route with its `match`, to
    /// `slot`) or absent (`None`). Returns whether the load balancer already shows it.
    ///
    /// The same guard as weights: a route to a slot that cannot carry traffic (no
    /// service, no running tasks, no healthy targets) is never created, and one that
    /// exists is removed. Its priority is the route's minus one (validation keeps it
    /// free), so the header rule is judged just before the weighted one.
    pub(super) fn ensure_header_route(
        &mut self,
        want: Option<(&SetHeaderRoute, Slot)>,
        why: &str,
    ) -> bool {
        let Some(route) = self.route().cloned() else {
            return want.is_none();
        };
        let seen = self.seen.header_route.clone();
        let remove = |this: &mut Self, name: String, why: String| {
            this.push(
                Action::RemoveHeaderRoute {
                    workload: this.workload.name.clone(),
                    name,
                },
                why,
            );
        };
        let Some((header, slot)) = want else {
            if let Some(seen) = seen {
                remove(self, seen.name, format!("{why}: remove the header route"));
                return false;
            }
            return true;
        };
        if let Some(problem) = self.cannot_carry_weight(slot) {
            if let Some(seen) = seen {
                remove(
                    self,
                    seen.name,
                    format!("header route {}: {problem}", header.name),
                );
            }
            self.hold(
                reason::NO_HEALTHY_TARGETS,
                format!(
                    "{why}: header route {} withheld, {problem}; tugboat creates it once its \
                     tasks are healthy",
                    header.name
                ),
            );
            return false;
        }
        let matches = header.matches.clone().unwrap_or_default();
        let priority = route.priority.saturating_sub(1);
        let in_place = seen.as_ref().is_some_and(|h| {
            h.name == header.name
                && h.slot == Some(slot)
                && h.matches == matches
                && h.priority.is_none_or(|p| p == priority)
        });
        if in_place {
            return true;
        }
        let target_group = match slot {
            Slot::Blue => route.target_groups.blue.clone(),
            Slot::Green => route.target_groups.green.clone(),
        };
        self.push(
            Action::SetHeaderRoute {
                workload: self.workload.name.clone(),
                name: header.name.clone(),
                priority,
                path_patterns: route.path_patterns.clone(),
                slot,
                target_group,
                matches,
            },
            format!("{why}: header route {} to {slot}", header.name),
        );
        false
    }

    /// Plans `SetWeights` giving `slot` `weight` even though the rule already reads so:
    /// to supersede an earlier request the load balancer may still apply. The same
    /// guard as [`Self::ensure_weights`] applies (never weight a slot that cannot carry it).
    pub(super) fn resend_weights(&mut self, slot: Slot, weight: u32, why: String) {
        let (blue, green) = split_weights(slot, weight);
        let Some(route) = self.route().cloned() else {
            return;
        };
        if [(Slot::Blue, blue), (Slot::Green, green)]
            .iter()
            .any(|&(s, w)| w > 0 && self.cannot_carry_weight(s).is_some())
        {
            return;
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
            why,
        );
    }

    /// Sets the rule so that `slot` gets `weight` and its twin the rest. Returns whether
    /// the load balancer already shows exactly that (verified).
    ///
    /// Weight for a slot that cannot carry it (see `cannot_carry_weight`) is withheld:
    /// nothing is planned, the `Blocked` condition says why and what to do, and the
    /// answer is "not verified". A rule holding anything unexpected is rewritten whole.
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
        let unexpected = self
            .seen
            .rule
            .as_ref()
            .map(|r| r.unexpected.clone())
            .unwrap_or_default();
        let rule_matches_route = self.seen.rule.as_ref().is_some_and(|r| {
            r.priority.is_none_or(|p| p == route.priority)
                && (r.path_patterns.is_empty() || r.path_patterns == route.path_patterns)
        });
        let weights_match = self.observed_weights() == Some((blue, green));
        if weights_match && rule_matches_route && unexpected.is_empty() {
            return true;
        }
        for (s, w) in [(Slot::Blue, blue), (Slot::Green, green)] {
            if w > 0
                && let Some(problem) = self.cannot_carry_weight(s)
            {
                let now = self
                    .observed_weights()
                    .map_or("no rule yet".to_string(), |(b, g)| {
                        format!("blue {b} / green {g}")
                    });
                self.hold(
                    reason::NO_HEALTHY_TARGETS,
                    format!(
                        "{why}: withheld, {problem}; traffic stays where it is ({now}). \
                         Find out why its tasks are not healthy (the ECS service's events, the \
                         target group's health checks); tugboat moves traffic once they are"
                    ),
                );
                return false;
            }
        }
        let set_weights = Action::SetWeights {
            workload: self.workload.name.clone(),
            path_patterns: route.path_patterns.clone(),
            priority: route.priority,
            blue_target_group: route.target_groups.blue.clone(),
            green_target_group: route.target_groups.green.clone(),
            blue,
            green,
        };
        if !unexpected.is_empty() {
            // Nothing tugboat writes puts these on a rule: always drift, whoever asked
            // for the weights. The rule is rewritten whole with the weights in force.
            let what = format!("the rule {}", unexpected.join("; "));
            self.note_drift(&what);
            if weights_match {
                self.push_weights(set_weights, what);
                return false;
            }
        }
        if weights_match && let Some(rule) = &self.seen.rule {
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
            self.push_weights(set_weights, what);
            return false;
        }
        if drift && let Some((b, g)) = self.observed_weights() {
            self.note_drift(&format!(
                "rule weights are blue {b} / green {g} instead of blue {blue} / green {green}"
            ));
        }
        self.push_weights(set_weights, why.to_string());
        false
    }

    /// Queues a SetWeights and asks for an early look: the weights count only once an
    /// observation reads them back, and waiting for the resync for that would hold
    /// every step up to a resync longer than it needs.
    fn push_weights(&mut self, action: Action, why: String) {
        self.push(action, why);
        self.requeue_in(POLL_WHILE_WAITING);
    }
}
