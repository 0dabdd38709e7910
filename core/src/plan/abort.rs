//! Aborting a rollout, and unwinding an aborted one.
//!
//! Guarantee: an abort first moves all weight back to the stable slot and waits until
//! the rule reads that back; only then, after the abort scale-down delay (so in-flight
//! requests drain), is the canary scaled down; the rollout ends as Aborted, and the
//! aborted revision is not rolled out again until an operator retries or the document
//! changes.

use crate::document::Slot;
use crate::status::{Abort, Phase, reason};

use super::steps::Timers;
use super::{Action, WorkloadPlanner, service_name};

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
