//! Application Auto Scaling beside the planner: who owns `desiredCount`, and which
//! service the scaler may move.
//!
//! Guarantees:
//! - One scalable target per workload: the rolling workload's service, or the stable
//!   slot's service of a canary or blueGreen workload. Every other service of the
//!   workload is deregistered, so the scaler never moves a canary or an old slot that
//!   tugboat sizes and scales down itself. At promotion the target moves to the new
//!   stable slot in the same pass.
//! - The scaler's count is not drift: the count tugboat wants is the scaled service's
//!   observed `desiredCount`, held within `minCapacity`..`maxCapacity` (a rolling
//!   service outside the range is brought into it; before the service exists it starts
//!   at `desiredCount`).
//! - The canary (or blue/green preview) follows the stable's current count, and a slot
//!   that carries weight is never scaled down by tugboat on a scaled workload: when the
//!   scaler shrinks the stable during a rollout, the canary keeps its tasks until its
//!   weight is back at 0 (lowering `maxCapacity` shrinks a weighted slot through the
//!   scaler, not through tugboat).

use crate::document::{AutoScaling, Slot};
use crate::observed::{ObservedScaling, ObservedService};

use super::{Action, WorkloadPlanner, service_name};

impl WorkloadPlanner<'_> {
    pub(super) fn auto_scaling(&self) -> Option<&AutoScaling> {
        self.workload.auto_scaling.as_ref()
    }

    /// The service the scaler owns, if it exists: the rolling workload's, or the stable
    /// slot's (from the status, else the slot the rule gives all traffic).
    fn scaled_service(&self) -> Option<(Option<Slot>, &ObservedService)> {
        if !self.workload.is_progressive() {
            return self.seen.service.as_ref().map(|s| (None, s));
        }
        let slot = self
            .status
            .stable
            .as_ref()
            .and_then(|r| r.slot)
            .or_else(|| match self.observed_weights() {
                Some((100, 0)) => Some(Slot::Blue),
                Some((0, 100)) => Some(Slot::Green),
                _ => None,
            })?;
        self.seen.slots.get(&slot).map(|s| (Some(slot), s))
    }

    /// The task count this pass wants: the document's without autoscaling; with it, the
    /// scaled service's current count held within the range (the document's
    /// `desiredCount` until that service exists).
    pub(super) fn scaled_count(&self) -> u32 {
        let Some(scaling) = self.auto_scaling() else {
            return self.workload.desired_count;
        };
        let current = self
            .scaled_service()
            .map_or(self.workload.desired_count, |(_, s)| s.desired_count);
        current.clamp(
            scaling.min_capacity,
            scaling.max_capacity.max(scaling.min_capacity),
        )
    }

    /// The count to give `slot`'s existing service `svc`: `count`, except that on a
    /// scaled workload a slot with weight keeps the tasks it has (never scaled down).
    pub(super) fn count_for_slot(
        &self,
        slot: Option<Slot>,
        svc: &ObservedService,
        count: u32,
    ) -> u32 {
        match slot {
            Some(slot) if self.auto_scaling().is_some() && self.observed_weight(slot) > 0 => {
                count.max(svc.desired_count)
            }
            _ => count,
        }
    }

    /// Registers the scaled service and deregisters every other one of the workload.
    pub(super) fn plan_scaling(&mut self) {
        let wanted = self.auto_scaling().cloned();
        let target = wanted
            .as_ref()
            .and_then(|_| self.scaled_service())
            .map(|(slot, _)| service_name(&self.workload.name, slot));
        let stale: Vec<String> = self
            .seen
            .scaling
            .iter()
            .filter(|s| Some(&s.service) != target.as_ref())
            .map(|s| s.service.clone())
            .collect();
        for service in stale {
            self.push(
                Action::RemoveScaling {
                    workload: self.workload.name.clone(),
                    service: service.clone(),
                },
                match &target {
                    Some(t) => format!("the scaler moves to {t}; {service} is sized by tugboat"),
                    None => format!("the document has no autoScaling for {service}"),
                },
            );
        }
        let (Some(service), Some(wanted)) = (target, wanted) else {
            return;
        };
        let in_place = self
            .seen
            .scaling
            .iter()
            .find(|s| s.service == service)
            .is_some_and(|seen| scaling_matches(seen, &wanted));
        if !in_place {
            self.push(
                Action::EnsureScaling {
                    workload: self.workload.name.clone(),
                    service: service.clone(),
                    auto_scaling: wanted,
                },
                format!("{service} is scaled between its autoScaling range and policies"),
            );
        }
    }
}

/// Whether what Application Auto Scaling has matches the document: the range, one
/// policy per document policy with the fields the document sets, and the same
/// scheduled actions by name.
pub fn scaling_matches(seen: &ObservedScaling, wanted: &AutoScaling) -> bool {
    let got = &seen.auto_scaling;
    let same_policies = got.target_tracking.len() == wanted.target_tracking.len()
        && wanted.target_tracking.iter().all(|w| {
            got.target_tracking.iter().any(|g| {
                g.predefined_metric == w.predefined_metric
                    && g.target_value == w.target_value
                    && (w.scale_in_cooldown.is_none() || g.scale_in_cooldown == w.scale_in_cooldown)
                    && (w.scale_out_cooldown.is_none()
                        || g.scale_out_cooldown == w.scale_out_cooldown)
                    && (w.disable_scale_in.is_none() || g.disable_scale_in == w.disable_scale_in)
            })
        });
    let same_schedule = got.scheduled_actions.len() == wanted.scheduled_actions.len()
        && wanted.scheduled_actions.iter().all(|w| {
            got.scheduled_actions.iter().any(|g| {
                g.scheduled_action_name == w.scheduled_action_name
                    && g.schedule == w.schedule
                    && (w.timezone.is_none() || g.timezone == w.timezone)
                    && g.scalable_target_action == w.scalable_target_action
            })
        });
    seen.unmanaged_policies.is_empty()
        && got.min_capacity == wanted.min_capacity
        && got.max_capacity == wanted.max_capacity
        && same_policies
        && same_schedule
}
