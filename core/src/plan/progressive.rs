//! Blue/green and canary workloads: the rollout state machine.
//!
//! Guarantee: a pass computes the [`RolloutState`] first and then does only what that
//! state calls for. Weight moves to the canary only once it is healthy, one step at a
//! time, each step verified by reading the rule back before the next; the old slot
//! scales down only after its scale-down delay; a rollout that fails its analysis, its
//! deployment or its progress deadline, or that an operator aborts, unwinds through
//! [`abort`](super::abort).

use crate::document::Slot;
use crate::observed::{OperatorActionKind, WeightPin};
use crate::status::{CanaryStatus, Phase, Revision, ScaleDown, reason};

use super::state::{Hints, RolloutState, UNKNOWN_HASH, rollout_state};
use super::steps::{
    Step, StepOutcome, Timers, effective_steps, held_header_route, held_weight, resume_index,
    steps_fingerprint, timers, weight_share,
};
use super::{DesiredRevision, POLL_WHILE_WAITING, WorkloadPlanner};

/// Condition and event reason: no status, and the observation does not tell which slot
/// is stable.
pub const STATUS_LOST: &str = "StatusLost";

impl WorkloadPlanner<'_> {
    pub(super) fn plan_progressive(&mut self, desired: &DesiredRevision) {
        let steps = effective_steps(&self.workload.strategy);
        // While nobody can tell which slot is stable nothing acts on an operator action:
        // it stays pending, to be taken once that is resolved.
        let pending = self.pending_action().map(|(kind, _)| kind);
        let probe = rollout_state(
            &self.status,
            self.seen,
            &desired.hash,
            &steps,
            self.hints(pending),
        );
        if let RolloutState::Unknown { .. } = probe {
            return self.run(probe, desired, None);
        }
        let action = self.take_action();
        match action {
            Some(OperatorActionKind::Pause) => {
                self.status.operator_paused = true;
                let message = format!("paused by an operator{}", self.action_suffix());
                self.status
                    .record(self.now, reason::OPERATOR_PAUSE, message);
            }
            Some(OperatorActionKind::Resume) => {
                self.status.operator_paused = false;
                let message = format!("resumed by an operator{}", self.action_suffix());
                self.status
                    .record(self.now, reason::OPERATOR_RESUME, message);
            }
            _ => {}
        }
        self.hold_clocks_for_pin();
        self.place_again_if_steps_changed(&steps, &desired.hash);
        let state = rollout_state(
            &self.status,
            self.seen,
            &desired.hash,
            &steps,
            self.hints(action),
        );
        self.run(state, desired, action);
    }

    /// A rollout's `stepIndex` points into the step list it was walking. When the
    /// document's steps changed since (or the index is past their end), the index names
    /// another step, maybe one past a gate the new list adds: the rollout is placed again
    /// as after a lost status, right after the last `setWeight` the canary's weight
    /// reaches, and holds for an operator when no step sets that weight.
    fn place_again_if_steps_changed(&mut self, steps: &[Step], desired: &str) {
        let Some(canary) = self.status.canary.clone() else {
            return;
        };
        if canary.aborted.is_some() || canary.hash != desired {
            return;
        }
        // Hashed only for a rollout in flight: every pass at rest would pay for nothing.
        let fingerprint = steps_fingerprint(steps);
        let changed = canary.steps.as_ref().is_some_and(|f| *f != fingerprint);
        if !changed && canary.step_index <= steps.len() {
            if let Some(c) = self.status.canary.as_mut() {
                c.steps = Some(fingerprint);
            }
            return;
        }
        let (blue, green) = self.observed_weights().unwrap_or((0, 0));
        let (weight, whole) = weight_share(self.observed_weight(canary.slot), blue + green);
        // At 0% nothing has shifted yet: the first step is exactly where it stands.
        let (index, exact) = match resume_index(steps, weight) {
            _ if weight == 0 => (0, true),
            (index, exact) => (index, exact && whole),
        };
        if let Some(c) = self.status.canary.as_mut() {
            c.step_index = index;
            c.step_started_at = self.now;
            c.steps = Some(fingerprint);
        }
        let what = if changed {
            "the document's steps changed mid-rollout"
        } else {
            "the status's step index is past the end of the steps"
        };
        let message = if exact {
            format!(
                "{what}: continuing at step {}, where the canary's {weight}% puts it",
                index + 1
            )
        } else {
            self.status.operator_paused = true;
            format!(
                "{what}, and the canary's {weight}% is no step's weight: holding at step {}. \
                 To continue from there, {}; to go back to stable, {}",
                index + 1,
                self.hint("resume"),
                self.hint("abort")
            )
        };
        self.status
            .record(self.now, reason::STEP_COMPLETED, message);
    }

    /// Does what `state` calls for.
    fn run(
        &mut self,
        state: RolloutState,
        desired: &DesiredRevision,
        action: Option<OperatorActionKind>,
    ) {
        // An inferred stable slot is remembered, so traffic moving mid-rollout can never
        // make the planner change its mind about which slot is stable.
        if let Some(stable) = state.stable() {
            self.status.stable = Some(stable.clone());
        }
        match state {
            RolloutState::NoStable => self.first_deployment(desired),
            RolloutState::AtRest { stable } | RolloutState::ScalingDown { stable, .. } => {
                self.status.aborted_hash = None;
                self.converge_stable(stable_slot(&stable), &stable.hash, desired, true);
            }
            RolloutState::Rejected { stable, .. } if action == Some(OperatorActionKind::Retry) => {
                self.status.aborted_hash = None;
                self.status
                    .record(self.now, reason::OPERATOR_RETRY, "retrying the rollout");
                self.start_rollout(stable_slot(&stable), desired, "new revision");
                self.rerun(desired, action);
            }
            RolloutState::Rejected { stable, hash } => {
                // Remembered, also when it was read off the observation.
                self.status.aborted_hash = Some(hash.clone());
                self.converge_stable(stable_slot(&stable), &stable.hash, desired, true);
                let message = format!(
                    "rollout of {hash} was aborted; stable {} serves all traffic. To retry it, {}; or change the document",
                    stable.hash,
                    self.hint("retry")
                );
                self.set_phase(Phase::Aborted, message);
            }
            RolloutState::Ready { stable } => {
                self.start_rollout(stable_slot(&stable), desired, "new revision");
                self.rerun(desired, action);
            }
            RolloutState::Canary { stable, .. } | RolloutState::Unwinding { stable, .. } => {
                self.in_flight(&stable, desired, action)
            }
            RolloutState::Reverted { stable, .. } => {
                self.abort(
                    reason::ABORTED,
                    "the document went back to the stable revision".to_string(),
                );
                self.in_flight(&stable, desired, action);
            }
            RolloutState::Superseded { stable, canary } => {
                // The testers' route points at tasks about to be replaced.
                self.ensure_header_route(None, "a newer revision replaces the canary");
                if self.observed_weight(canary.slot) > 0 {
                    self.ensure_weights(
                        stable_slot(&stable),
                        100,
                        "a newer revision replaces the canary: traffic returns to stable first",
                        false,
                    );
                    self.set_phase(
                        Phase::Progressing,
                        "newer revision: moving traffic back to stable before replacing the canary",
                    );
                    return;
                }
                self.start_rollout(
                    stable_slot(&stable),
                    desired,
                    "superseded by a newer revision",
                );
                self.rerun(desired, None);
            }
            RolloutState::Resumed {
                canary_slot,
                weight,
                step_index,
                exact,
                ..
            } => self.resume(desired, action, canary_slot, weight, step_index, exact),
            RolloutState::Unknown { message } => self.block(STATUS_LOST, message),
        }
    }

    /// No status, and a rollout of the desired revision was under way on `canary_slot`
    /// at `weight`: it resumes at `step_index` (timers restart, nothing is skipped), or,
    /// when no step sets that weight, holds there for an operator.
    fn resume(
        &mut self,
        desired: &DesiredRevision,
        action: Option<OperatorActionKind>,
        canary_slot: Slot,
        weight: u32,
        step_index: usize,
        exact: bool,
    ) {
        self.status.canary = Some(CanaryStatus {
            slot: canary_slot,
            hash: desired.hash.clone(),
            started_at: self.now,
            step_index,
            step_started_at: self.now,
            healthy_at: None,
            aborted: None,
            steps: Some(steps_fingerprint(&effective_steps(&self.workload.strategy))),
            held_since: None,
        });
        self.status.scale_down = None;
        let whence = if self.weight_pin().is_some() {
            format!(
                "the rule's {weight}% is an operator's pin, which says nothing about the \
                 step reached: every step runs again once the pin expires"
            )
        } else {
            format!("where the rule's {weight}% puts it")
        };
        self.status.record(
            self.now,
            reason::ROLLOUT_STARTED,
            format!(
                "no status: resuming the rollout of {} on the {canary_slot} slot at step {}, \
                 {whence}",
                desired.hash,
                step_index + 1
            ),
        );
        let hold = format!(
            "no status, and the rule gives the {canary_slot} slot {weight}%, a weight no \
             setWeight step sets: holding there. To continue from step {}, {}; to go back \
             to stable, {}",
            step_index + 1,
            self.hint("resume"),
            self.hint("abort")
        );
        if !exact {
            self.status.operator_paused = true;
            self.status
                .record(self.now, reason::OPERATOR_PAUSE, hold.clone());
        }
        self.rerun(desired, action);
        if !exact && self.status.phase == Phase::Paused {
            self.status.message = hold;
        }
    }

    /// Computes the state again after a transition made in this pass and does what it
    /// calls for.
    fn rerun(&mut self, desired: &DesiredRevision, action: Option<OperatorActionKind>) {
        let steps = effective_steps(&self.workload.strategy);
        let state = rollout_state(
            &self.status,
            self.seen,
            &desired.hash,
            &steps,
            self.hints(action),
        );
        self.run(state, desired, action);
    }

    pub(super) fn first_deployment(&mut self, desired: &DesiredRevision) {
        let slot = Slot::Blue;
        let changed = self.ensure_service(Some(slot), desired, &desired.hash, desired.count, false);
        let svc = self.seen.slots.get(&slot);
        if changed || !self.is_healthy(svc, &desired.hash, desired.count) {
            self.requeue_in(POLL_WHILE_WAITING);
            self.set_phase(
                Phase::Pending,
                format!(
                    "first deployment of {}: waiting for {} healthy targets on {slot}",
                    desired.hash, desired.count
                ),
            );
            return;
        }
        if desired.count > 0
            && !self.ensure_weights(
                slot,
                100,
                "first deployment: all traffic to the new service",
                false,
            )
        {
            self.status.desired_weight = Some(0);
            self.set_phase(
                Phase::Pending,
                "first deployment: routing traffic to the blue slot",
            );
            return;
        }
        self.status.stable = Some(Revision {
            slot: Some(slot),
            hash: desired.hash.clone(),
        });
        self.status.desired_weight = Some(0);
        self.status.verified_weight = Some(0);
        self.status.record(
            self.now,
            reason::CONVERGED,
            format!("first deployment of {} serves all traffic", desired.hash),
        );
        self.set_phase(
            Phase::Healthy,
            format!("running {} on {slot}", desired.hash),
        );
    }

    /// Keeps the stable slot at its revision, count and 100% weight, and the idle slot
    /// at zero tasks once its scale-down delay has passed.
    pub(super) fn converge_stable(
        &mut self,
        stable_slot: Slot,
        stable_hash: &str,
        desired: &DesiredRevision,
        drift: bool,
    ) {
        let drift = drift && self.remembered;
        let before = self.actions.len();
        // At rest no header route holds: a promotion or abort left one, or a restart
        // read one back.
        self.ensure_header_route(None, "no rollout in flight");
        self.ensure_service(
            Some(stable_slot),
            desired,
            stable_hash,
            desired.count,
            drift,
        );
        // Never weight a stable slot with no healthy targets (ensure_weights also refuses).
        let stable_has_targets = self
            .seen
            .slots
            .get(&stable_slot)
            .is_some_and(|s| s.healthy_targets > 0);
        if stable_has_targets {
            self.ensure_weights(
                stable_slot,
                100,
                "the stable slot serves all traffic",
                drift,
            );
        }
        self.scale_down_idle(stable_slot, drift);
        self.status.desired_weight = Some(0);
        self.status.verified_weight = self
            .observed_weights()
            .map(|(b, g)| if stable_slot == Slot::Blue { g } else { b });
        if self.actions.len() == before {
            self.clear_drift();
            self.status.converged_count = Some(desired.count);
            let message = match &self.status.scale_down {
                Some(sd) => format!(
                    "running {stable_hash} on {stable_slot}; old {} slot scales down at {}",
                    sd.slot, sd.at
                ),
                None => format!("running {stable_hash} on {stable_slot}"),
            };
            self.set_phase(Phase::Healthy, message);
        } else if self.status.phase != Phase::Aborted {
            self.set_phase(
                Phase::Progressing,
                format!("converging {stable_hash} on {stable_slot}"),
            );
        }
    }

    /// At rest, the idle slot runs no tasks; it is scaled down only once the rule reads
    /// back 0 weight on it and the scale-down delay has passed since that read-back.
    ///
    /// The read-back time is the `ScaleDown` record's start: set at promotion (the full
    /// shift was read back), and again at the first pass that reads 0 after the weight
    /// came back to the idle slot (the previous pass's `verifiedWeight` was not 0), or
    /// when idle tasks are found with no scale-down scheduled.
    fn scale_down_idle(&mut self, stable_slot: Slot, drift: bool) {
        let idle = stable_slot.other();
        let idle_running = self
            .seen
            .slots
            .get(&idle)
            .is_some_and(|s| s.desired_count > 0);
        let idle_weight = self.observed_weight(idle);
        let read_back_zero_before = self.status.verified_weight.is_none_or(|w| w == 0);
        let delay = timers(&self.workload.strategy).scale_down_delay;
        let schedule = |this: &mut Self, at| {
            this.status.scale_down = Some(ScaleDown { slot: idle, at });
            this.requeue_at(at);
        };
        match self.status.scale_down.clone() {
            Some(sd) if sd.slot == idle && idle_running => {
                if idle_weight > 0 {
                    // Weight is back on the old slot (the weights above move it off): the
                    // delay starts again at the read-back of 0.
                    schedule(self, self.now.plus(delay));
                } else if !read_back_zero_before {
                    schedule(self, sd.at.max(self.now.plus(delay)));
                } else if self.now >= sd.at {
                    self.scale_down_slot(
                        idle,
                        format!("scale-down delay of the old {idle} slot has passed"),
                    );
                } else {
                    self.requeue_at(sd.at);
                }
            }
            Some(_) if !idle_running => {
                self.status.scale_down = None;
                self.status.record(
                    self.now,
                    reason::SCALED_DOWN,
                    format!("old {idle} slot scaled down"),
                );
            }
            _ if idle_running => {
                if drift {
                    self.note_drift(&format!("idle {idle} slot has tasks"));
                }
                // With weight on it, the weights above move it off first. Read back at 0
                // now and before, with no delay to wait out (`scaleDownDelay: 0s`), it
                // goes at once rather than a pass later.
                if idle_weight == 0 {
                    let at = self.now.plus(delay);
                    if read_back_zero_before && self.now >= at {
                        self.scale_down_slot(
                            idle,
                            format!("the idle {idle} slot runs no tasks at rest"),
                        );
                    } else {
                        schedule(self, at);
                    }
                }
            }
            _ => {}
        }
    }

    pub(super) fn start_rollout(
        &mut self,
        stable_slot: Slot,
        desired: &DesiredRevision,
        why: &str,
    ) {
        let slot = stable_slot.other();
        self.status.canary = Some(CanaryStatus {
            slot,
            hash: desired.hash.clone(),
            started_at: self.now,
            step_index: 0,
            step_started_at: self.now,
            healthy_at: None,
            aborted: None,
            steps: Some(steps_fingerprint(&effective_steps(&self.workload.strategy))),
            held_since: None,
        });
        self.status.scale_down = None;
        self.status.record(
            self.now,
            reason::ROLLOUT_STARTED,
            format!("{why}: rolling out {} on the {slot} slot", desired.hash),
        );
        self.fast_undo();
    }

    /// A rollout under way (possibly aborted): the stable slot kept as it is, operator
    /// actions applied, then the canary brought up and walked through its steps, or the
    /// abort unwound.
    fn in_flight(
        &mut self,
        stable: &Revision,
        desired: &DesiredRevision,
        action: Option<OperatorActionKind>,
    ) {
        let stable_slot = stable_slot(stable);
        let stable_hash = stable.hash.as_str();
        let timers = timers(&self.workload.strategy);

        // The stable slot keeps its revision and count throughout.
        // An inferred stable slot running a definition tugboat did not register keeps it:
        // there is no definition to point it at.
        if stable_hash != UNKNOWN_HASH {
            let remembered = self.remembered;
            self.ensure_service(
                Some(stable_slot),
                desired,
                stable_hash,
                desired.count,
                remembered,
            );
        }

        match action {
            Some(OperatorActionKind::Abort) => self.abort(
                reason::OPERATOR_ABORT,
                format!("aborted by an operator{}", self.action_suffix()),
            ),
            Some(OperatorActionKind::Promote) => self.promote_step(),
            Some(OperatorActionKind::PromoteFull) => self.promote_full(),
            _ => {}
        }

        // Every state that leads here has a rollout; planning nothing is the safe answer
        // to a planner bug that lost it.
        let Some(canary) = self.status.canary.clone() else {
            return;
        };
        if canary.aborted.is_some() {
            self.unwind_abort(stable_slot, stable_hash, &timers);
            return;
        }

        let svc = self.seen.slots.get(&canary.slot);
        if svc.is_some_and(|s| s.deployment_failed) {
            self.abort(
                reason::ABORTED,
                format!("the {} slot's deployment failed", canary.slot),
            );
            return self.unwind_abort(stable_slot, stable_hash, &timers);
        }

        // Bring the canary up at full size on the idle slot.
        if self.ensure_service(
            Some(canary.slot),
            desired,
            &desired.hash,
            desired.count,
            false,
        ) || !self.is_healthy(svc, &desired.hash, desired.count)
        {
            if self.abort_past_deadline(&canary, &timers) {
                return self.unwind_abort(stable_slot, stable_hash, &timers);
            }
            // Traffic must never stay on a canary that lost its healthy targets.
            self.weight_off_unhealthy_canary(stable_slot, &canary, &timers);
            let healthy = svc.map_or(0, |s| s.healthy_targets);
            self.set_phase(
                Phase::Progressing,
                format!(
                    "waiting for the {} slot: {healthy}/{} healthy targets running {}",
                    canary.slot, desired.count, desired.hash
                ),
            );
            return;
        }
        if canary.healthy_at.is_none()
            && let Some(c) = self.status.canary.as_mut()
        {
            c.healthy_at = Some(self.now);
        }

        // A weight override that does not parse holds the rollout where it is: the
        // operator meant to pin the canary, and promoting it instead is the one thing
        // they did not ask for. Safety reactions above still act.
        if let Some(problem) = self.unreadable_weight() {
            self.set_phase(
                Phase::Paused,
                format!(
                    "held: the weight override does not parse ({problem}); fix it or delete it \
                     to let the rollout go on"
                ),
            );
            return;
        }

        // An operator's weight pin beats the steps while it is in force.
        if let Some(pin) = self.weight_pin() {
            let weight = pin.weight.min(100);
            let verified = self.ensure_weights(canary.slot, weight, "operator weight pin", false);
            self.status.desired_weight = Some(weight);
            if verified {
                self.status.verified_weight = Some(weight);
            }
            if let Some(exp) = pin.expires {
                self.requeue_at(exp);
            }
            let why = pin.reason.map(|r| format!(" ({r})")).unwrap_or_default();
            self.set_phase(
                Phase::Paused,
                format!("canary weight pinned at {weight}% by an operator{why}"),
            );
            return;
        }

        self.walk_steps(stable_slot, stable_hash, desired, &timers);
    }

    /// What the pass knows besides the observation, for [`rollout_state`].
    pub(super) fn hints(&self, action: Option<OperatorActionKind>) -> Hints {
        Hints {
            pinned: self.weight_pin().is_some(),
            abort_pending: action == Some(OperatorActionKind::Abort),
        }
    }

    /// Where the workload's weight override is and why it does not parse, if it does not.
    pub(super) fn unreadable_weight(&self) -> Option<String> {
        self.observed
            .overrides
            .get(&self.workload.name)
            .and_then(|o| o.unreadable_weight.clone())
    }

    /// The operator's weight pin, while it is in force.
    pub(super) fn weight_pin(&self) -> Option<WeightPin> {
        self.observed
            .overrides
            .get(&self.workload.name)
            .and_then(|o| o.weight_pin.clone())
            .filter(|p| p.in_force(self.now))
    }

    /// The `promote` action: skip the current pause or (inconclusive) analysis step.
    fn promote_step(&mut self) {
        // An inconclusive background analysis is what holds the rollout: promote goes on
        // past it, not past the step.
        if self.continue_past_inconclusive_background() {
            return;
        }
        let steps = effective_steps(&self.workload.strategy);
        let now = self.now;
        if let Some(c) = self.status.canary.clone()
            && matches!(steps.get(c.step_index), Some(Step::Analysis(_)))
            && c.aborted.is_none()
        {
            self.note_continued_step_run(&c);
        }
        let Some(c) = self.status.canary.as_mut() else {
            return;
        };
        match steps.get(c.step_index) {
            Some(Step::Pause(_)) | Some(Step::Analysis(_)) if c.aborted.is_none() => {
                c.step_index += 1;
                c.step_started_at = now;
                self.status.operator_paused = false;
                let message = format!("promoted by an operator{}", self.action_suffix());
                self.status.record(now, reason::OPERATOR_PROMOTE, message);
            }
            _ => self.status.record(
                now,
                reason::OPERATOR_PROMOTE,
                "promote ignored: the rollout is not at a pause or analysis step",
            ),
        }
    }

    /// Runs steps from the current one until one says to wait; then acts on what the
    /// last step decided (finish, abort, or nothing).
    fn walk_steps(
        &mut self,
        stable_slot: Slot,
        stable_hash: &str,
        desired: &DesiredRevision,
        timers: &Timers,
    ) {
        let steps = effective_steps(&self.workload.strategy);
        loop {
            let Some(canary) = self.status.canary.clone() else {
                return;
            };
            let index = canary.step_index;
            // The background analysis judges every step from its starting step on, also
            // while paused: its failure aborts wherever the rollout stands.
            let background = if index < steps.len() {
                self.background_analysis(&canary)
            } else {
                None
            };
            let outcome = if let Some(outcome) = background {
                outcome
            } else if index >= steps.len() {
                StepOutcome::Done
            } else if self.status.operator_paused {
                self.set_phase(
                    Phase::Paused,
                    format!(
                        "paused by an operator at step {}; to continue, {}",
                        index + 1,
                        self.hint("resume")
                    ),
                );
                StepOutcome::Wait
            } else {
                self.run_step(&steps, &canary, desired)
            };
            match outcome {
                StepOutcome::Wait => return,
                StepOutcome::Done => return self.finish_rollout(stable_slot, desired, timers),
                StepOutcome::Abort { reason, message } => {
                    self.abort(reason, message);
                    return self.unwind_abort(stable_slot, stable_hash, timers);
                }
                StepOutcome::Next => {
                    if let Some(c) = self.status.canary.as_mut() {
                        c.step_index += 1;
                        c.step_started_at = self.now;
                    }
                    self.status.record(
                        self.now,
                        reason::STEP_COMPLETED,
                        format!("step {} of {} completed", index + 1, steps.len()),
                    );
                }
            }
        }
    }

    /// Runs the canary's current step once.
    fn run_step(
        &mut self,
        steps: &[Step],
        canary: &CanaryStatus,
        desired: &DesiredRevision,
    ) -> StepOutcome {
        let index = canary.step_index;
        let Some(step) = steps.get(index) else {
            return StepOutcome::Done;
        };
        // The header route of the steps before this one holds meanwhile (like the
        // weight), put back if it went; a `setHeaderRoute` step waits for its own.
        if !matches!(step, Step::SetHeaderRoute(_)) {
            let held = held_header_route(steps, index).map(|h| (h, canary.slot));
            self.ensure_header_route(held, &format!("step {}: hold", index + 1));
        }
        match step {
            Step::SetWeight(w) => self.set_weight_step(index, *w, canary.slot),
            Step::SetHeaderRoute(h) => {
                let want = h.matches.as_ref().map(|_| (h, canary.slot));
                let what = match want {
                    Some(_) => format!("step {}: setHeaderRoute {}", index + 1, h.name),
                    None => format!("step {}: remove header route {}", index + 1, h.name),
                };
                if self.ensure_header_route(want, &what) {
                    StepOutcome::Next
                } else {
                    self.set_phase(Phase::Progressing, what);
                    StepOutcome::Wait
                }
            }
            // Pauses and analyses hold the weight of the last `setWeight` before them;
            // a weight moved meanwhile (an expired pin, a hand edit) is put back first.
            _ if !self.hold_step_weight(steps, index, canary.slot) => StepOutcome::Wait,
            Step::Pause(Some(d)) => {
                let until = canary.step_started_at.plus(*d);
                if self.now >= until {
                    StepOutcome::Next
                } else {
                    self.requeue_at(until);
                    self.set_phase(
                        Phase::Progressing,
                        format!("step {}: pausing until {until}", index + 1),
                    );
                    StepOutcome::Wait
                }
            }
            Step::Pause(None) => {
                self.set_phase(
                    Phase::Paused,
                    format!(
                        "step {}: waiting for an operator; to continue, {}",
                        index + 1,
                        self.hint("promote")
                    ),
                );
                StepOutcome::Wait
            }
            Step::Analysis(step) => self.analysis_step(canary, step, desired),
            Step::Gate(gate) => self.gate_step(canary, gate),
        }
    }

    /// `setWeight`: done once the rule reads back the weight.
    fn set_weight_step(&mut self, index: usize, weight: u32, canary_slot: Slot) -> StepOutcome {
        // Read back at this weight before and now not: changed outside tugboat.
        let drift = self.status.verified_weight == Some(weight);
        self.status.desired_weight = Some(weight);
        let verified = self.ensure_weights(
            canary_slot,
            weight,
            &format!("step {}: setWeight {weight}", index + 1),
            drift,
        );
        if verified {
            self.status.verified_weight = Some(weight);
            StepOutcome::Next
        } else {
            self.set_phase(
                Phase::Progressing,
                format!(
                    "step {}: shifting {weight}% of traffic to {canary_slot}",
                    index + 1
                ),
            );
            StepOutcome::Wait
        }
    }

    /// Makes the rule show the weight in force at step `index` (that of the last
    /// `setWeight` before it). Returns whether it already does.
    ///
    /// The step's clock (`stepStartedAt`) starts again at the first read-back of that
    /// weight after it was lost (the canary lost its targets, a pin expired, a hand
    /// edit): a timed pause counts time at its weight, not time the canary spent
    /// without it.
    fn hold_step_weight(&mut self, steps: &[Step], index: usize, canary_slot: Slot) -> bool {
        let weight = held_weight(steps, index);
        let was_held = self.status.verified_weight == Some(weight);
        self.status.desired_weight = Some(weight);
        // A held weight that was read back and now reads otherwise, with no pin that
        // just expired to explain it, was changed outside tugboat.
        let drift = was_held && self.weight_pin().is_none();
        let verified = self.ensure_weights(
            canary_slot,
            weight,
            &format!("step {}: hold the canary at {weight}%", index + 1),
            drift,
        );
        if (!verified || !was_held)
            && let Some(c) = self.status.canary.as_mut()
        {
            c.step_started_at = self.now;
        }
        if verified {
            self.status.verified_weight = Some(weight);
        } else {
            // What was read back, so the next read-back of the held weight is known to
            // be its first.
            self.status.verified_weight = Some(self.observed_weight(canary_slot));
            self.set_phase(
                Phase::Progressing,
                format!(
                    "step {}: restoring the canary weight to {weight}%",
                    index + 1
                ),
            );
        }
        verified
    }

    /// All steps passed: make sure all traffic is on the canary, then it becomes stable
    /// and the old slot is scheduled for scale-down.
    fn finish_rollout(&mut self, stable_slot: Slot, desired: &DesiredRevision, timers: &Timers) {
        let Some(canary) = self.status.canary.clone() else {
            return;
        };
        // Promotion ends the testers' route; at rest it is removed if still there.
        self.ensure_header_route(None, "rollout complete");
        if !self.ensure_weights(
            canary.slot,
            100,
            "rollout complete: all traffic to the new revision",
            false,
        ) {
            self.status.desired_weight = Some(100);
            self.set_phase(
                Phase::Progressing,
                "shifting all traffic to the new revision",
            );
            return;
        }
        let at = self.now.plus(timers.scale_down_delay);
        self.status.stable = Some(Revision {
            slot: Some(canary.slot),
            hash: desired.hash.clone(),
        });
        self.status.canary = None;
        self.status.desired_weight = Some(0);
        self.status.verified_weight = Some(0);
        self.status.scale_down = Some(ScaleDown {
            slot: stable_slot,
            at,
        });
        self.status.record(
            self.now,
            reason::PROMOTED,
            format!(
                "{} on {} serves all traffic; old {stable_slot} slot scales down at {at}",
                desired.hash, canary.slot
            ),
        );
        self.requeue_at(at);
        self.set_phase(
            Phase::Healthy,
            format!(
                "running {} on {}; old {stable_slot} slot scales down at {at}",
                desired.hash, canary.slot
            ),
        );
    }
}

fn stable_slot(stable: &Revision) -> Slot {
    stable.slot.unwrap_or(Slot::Blue)
}
