//! Aborting a rollout, and unwinding an aborted one.
//!
//! Guarantee: an abort first moves all weight back to the stable slot and waits until
//! the rule reads that back; only then, after the abort scale-down delay (so in-flight
//! requests drain), is the canary scaled down; the rollout ends as Aborted, and the
//! aborted revision is not rolled out again until an operator retries or the document
//! changes.

use crate::document::Slot;
use crate::observed::OperatorActionKind;
use crate::status::{Abort, CanaryStatus, Phase, reason};

use super::state::{RolloutState, rollout_state};
use super::steps::{Timers, effective_steps, steps_fingerprint, timers};
use super::{Action, DesiredRevision, POLL_WHILE_WAITING, WorkloadPlanner};

impl WorkloadPlanner<'_> {
    /// The progress deadline passed and the canary was never healthy: aborts. Returns
    /// whether it did.
    pub(super) fn abort_past_deadline(&mut self, canary: &CanaryStatus, timers: &Timers) -> bool {
        let deadline = canary.started_at.plus(timers.progress_deadline);
        if canary.healthy_at.is_some() || self.now < deadline {
            return false;
        }
        self.abort(
            reason::PROGRESS_DEADLINE_EXCEEDED,
            format!(
                "the {} slot was not healthy within {}",
                canary.slot,
                humantime::format_duration(timers.progress_deadline)
            ),
        );
        true
    }

    /// A canary that is not healthy: traffic never stays on it, and the next look comes
    /// soon (and at the deadline, while it has never been healthy).
    pub(super) fn weight_off_unhealthy_canary(
        &mut self,
        stable_slot: Slot,
        canary: &CanaryStatus,
        timers: &Timers,
    ) {
        if self.header_route_slot() == Some(canary.slot) {
            self.ensure_header_route(None, "the canary is not healthy");
        }
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
            self.requeue_at(canary.started_at.plus(timers.progress_deadline));
        }
    }

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
        let why = "rollout aborted: traffic returns to stable";
        // The testers' route goes with the weights, and before the canary scales down
        // (`scale_down_slot` waits for its read-back).
        self.ensure_header_route(None, why);
        let mut verified = self.ensure_weights(stable_slot, 100, why, false);
        // A canary weight asked for earlier and never read back may still land: a
        // read-back already at 100% stable may predate it. Send the stable weights again
        // (the later request wins) and count the drain from a later read-back.
        if verified
            && abort.weight_restored_at.is_none()
            && let Some(requested) = self.unconfirmed_request.take()
        {
            self.resend_weights(
                stable_slot,
                100,
                format!(
                    "{why}: the canary's {requested}% asked for earlier was never read back, \
                     and may still be applied"
                ),
            );
            verified = false;
        }
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
    ///
    /// Without status the rollout is inferred first ([`Self::infer_blocked_rollout`]),
    /// so a restart does not switch these reactions off.
    pub(super) fn safety_reactions(&mut self, desired: Option<&DesiredRevision>) {
        if !self.workload.is_progressive() {
            return;
        }
        if self.status.stable.is_none() {
            self.infer_blocked_rollout(desired);
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
            } else if !self.is_healthy(svc, &canary.hash, self.workload.desired_count)
                && !self.abort_past_deadline(&canary, &timers)
            {
                self.weight_off_unhealthy_canary(stable_slot, &canary, &timers);
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

    /// A blocked workload without status. With the desired revision known (blocked by
    /// something it does not own), the rollout is inferred as an unblocked pass would
    /// ([`rollout_state`]) and remembered, so the reactions have a stable slot and a
    /// canary. Without it (the model is not resolved) nobody can tell which weighted
    /// slot is stable: no weight is guessed onto either (that could promote a canary),
    /// except off a slot that cannot carry traffic onto the one that can; an operator's
    /// abort stays pending until the rollout can be told apart, and an event says so.
    fn infer_blocked_rollout(&mut self, desired: Option<&DesiredRevision>) {
        let Some(desired) = desired else {
            return self.weight_off_a_slot_that_cannot_carry_it();
        };
        let steps = effective_steps(&self.workload.strategy);
        let hints = self.hints(self.pending_action().map(|(kind, _)| kind));
        let RolloutState::Resumed {
            stable,
            canary_slot,
            weight,
            step_index,
            exact,
        } = rollout_state(&self.status, self.seen, &desired.hash, &steps, hints)
        else {
            return;
        };
        self.status.stable = Some(stable);
        self.status.canary = Some(CanaryStatus {
            slot: canary_slot,
            hash: desired.hash.clone(),
            started_at: self.now,
            step_index,
            step_started_at: self.now,
            healthy_at: None,
            aborted: None,
            steps: Some(steps_fingerprint(&steps)),
            held_since: None,
        });
        // A weight no step sets: the rollout holds there once unblocked, as it would
        // have unblocked.
        if !exact {
            self.status.operator_paused = true;
        }
        self.status.record(
            self.now,
            reason::ROLLOUT_STARTED,
            format!(
                "no status: a rollout of {} on the {canary_slot} slot was under way at \
                 {weight}%; while the workload is blocked only its safety reactions run",
                desired.hash
            ),
        );
    }

    /// No status, no desired revision, both slots weighted: the only move made is off a
    /// slot that cannot carry traffic (no running tasks or no healthy targets) onto the
    /// other one when it can.
    fn weight_off_a_slot_that_cannot_carry_it(&mut self) {
        let Some((blue, green)) = self.observed_weights() else {
            return;
        };
        if blue == 0 || green == 0 {
            return;
        }
        let carry = |this: &Self, slot| this.cannot_carry_weight(slot).is_none();
        match (carry(self, Slot::Blue), carry(self, Slot::Green)) {
            (true, false) | (false, true) => {
                let (good, bad) = if carry(self, Slot::Blue) {
                    (Slot::Blue, Slot::Green)
                } else {
                    (Slot::Green, Slot::Blue)
                };
                self.ensure_weights(
                    good,
                    100,
                    &format!("no status, and the {bad} slot cannot carry traffic"),
                    false,
                );
                let why = self.cannot_carry_weight(bad).unwrap_or_default();
                self.status.record(
                    self.now,
                    reason::NO_HEALTHY_TARGETS,
                    format!("{why}: its traffic moves to the {good} slot"),
                );
            }
            _ => {}
        }
        if let Some((OperatorActionKind::Abort, version)) = self.pending_action() {
            let message = format!(
                "abort (version {version}) not carried out yet: there is no status and the \
                 workload is blocked, so tugboat cannot tell which slot is stable (blue \
                 {blue} / green {green}). It is carried out once the block clears; to act \
                 now, set the stable slot's weight to 100 on the rule by hand"
            );
            if !self.status.events.iter().any(|e| e.message == message) {
                self.status
                    .record(self.now, reason::OPERATOR_ABORT, message);
            }
        }
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
