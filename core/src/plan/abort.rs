//! Aborting a rollout, and unwinding an aborted one.
//!
//! Guarantee: an abort first moves all weight back to the stable slot and waits until
//! the rule reads that back; only then, after the abort scale-down delay (so in-flight
//! requests drain), is the canary scaled down; the rollout ends as Aborted, and the
//! aborted revision is not rolled out again until an operator retries or the document
//! changes.

use crate::document::Slot;
use crate::observed::OperatorActionKind;
use crate::status::{Abort, Phase, reason};

use super::steps::{Timers, timers};
use super::{Action, POLL_WHILE_WAITING, WorkloadPlanner};

impl WorkloadPlanner<'_> {
    /// Marks the rollout aborted (once) and records why.
    pub(super) fn abort(&mut self, why: &str, message: String) {
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

    /// After an abort: weight back to stable and verified, then (after a drain delay)
    /// the canary scaled down, then the rollout ends as Aborted.
    pub(super) fn unwind_abort(&mut self, stable_slot: Slot, stable_hash: &str, timers: &Timers) {
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
            // The drain delay counts from a read-back of 0 on the canary; this is not one.
            if let Some(a) = self.status.canary.as_mut().and_then(|c| c.aborted.as_mut()) {
                a.weight_restored_at = None;
            }
            let message = match &self.blocked {
                Some((reason::NO_HEALTHY_TARGETS, why)) => format!(
                    "aborting ({}): traffic cannot go back to the stable {stable_slot} slot yet; {why}",
                    abort.reason
                ),
                _ => format!("aborting ({}): moving traffic back to stable", abort.reason),
            };
            self.set_phase(Phase::Aborted, message);
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
                self.scale_down_slot(
                    canary.slot,
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
                "rollout of {} aborted ({}); stable {stable_hash} serves all traffic. To retry it, {}; or change the document",
                canary.hash,
                abort.reason,
                self.hint("retry")
            ),
        );
    }

    /// A blocked workload (its model unresolved, or something it would touch not
    /// tugboat's) with a rollout in flight keeps the reactions that protect traffic: an
    /// operator abort, the progress deadline, a failed deployment, and weight back to
    /// stable when the canary loses its healthy targets. Nothing else moves, and nothing
    /// tugboat does not own is touched. The phase stays Blocked.
    pub(super) fn safety_reactions(&mut self) {
        if !self.workload.is_progressive() {
            return;
        }
        let (Some(stable), Some(canary)) = (self.status.stable.clone(), self.status.canary.clone())
        else {
            return;
        };
        let (phase, message) = (self.status.phase, self.status.message.clone());
        let stable_slot = stable.slot.unwrap_or(Slot::Blue);
        let timers = timers(&self.workload.strategy);
        // Only an abort is taken: other actions wait until the workload is unblocked.
        if let Some((OperatorActionKind::Abort, _)) = self.pending_action() {
            self.take_action();
            self.abort(reason::OPERATOR_ABORT, "aborted by an operator".to_string());
        }
        if canary.aborted.is_none() {
            let svc = self.seen.slots.get(&canary.slot);
            if svc.is_some_and(|s| s.deployment_failed) {
                self.abort(
                    reason::ABORTED,
                    format!("the {} slot's deployment failed", canary.slot),
                );
            } else if !self.is_healthy(svc, &canary.hash, self.workload.desired_count) {
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
                } else {
                    if self.observed_weight(canary.slot) > 0 {
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
                }
            }
        }
        if self
            .status
            .canary
            .as_ref()
            .is_some_and(|c| c.aborted.is_some())
        {
            self.unwind_abort(stable_slot, &stable.hash, &timers);
        }
        self.drop_unowned_actions();
        self.status.phase = phase;
        self.status.message = message;
    }

    /// Removes planned actions that would change a service or rule tugboat does not own.
    fn drop_unowned_actions(&mut self) {
        let unowned: Vec<&str> = self
            .seen
            .service
            .iter()
            .chain(self.seen.slots.values())
            .filter(|s| !s.owned)
            .map(|s| s.name.as_str())
            .collect();
        let rule_unowned = self.seen.rule.as_ref().is_some_and(|r| !r.owned);
        self.actions.retain(|a| match &a.action {
            Action::SetWeights { .. } => !rule_unowned,
            Action::UpdateService { service, .. } | Action::CreateService { service, .. } => {
                !unowned.contains(&service.as_str())
            }
            _ => true,
        });
    }
}
