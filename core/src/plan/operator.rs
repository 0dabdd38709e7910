//! What operator overrides do to a rollout beyond the one-shot actions the state machine
//! matches on: the pin's record in the status, the pin's hold on every clock, and
//! `promote --full`.
//!
//! Guarantees:
//! - While a weight pin (or a weight override that does not parse) is in force, no step
//!   and no step timer advances: the step's clock is frozen from the pass that first saw
//!   the pin (`canary.heldSince`), and when the pin expires or is cleared the clock moves
//!   forward by the time held, so a timed pause waits only what it had left. The step
//!   index never moves under a pin.
//! - The pin in force is in the status (`pin`: weight, who, why, since, until), so
//!   `tugboat status` can show it without reaching the inbox.
//! - `promote --full` skips the remaining steps; the rollout still waits for a healthy
//!   canary and reads 100% back before the old slot's scale-down is scheduled.

use crate::observed::OverrideRecord;
use crate::status::{PinStatus, reason};

use super::WorkloadPlanner;
use super::steps::effective_steps;

impl WorkloadPlanner<'_> {
    /// The overrides' record (who, why) of the action, for event messages.
    pub(super) fn action_suffix(&self) -> String {
        OverrideRecord::suffix(
            self.observed
                .overrides
                .get(&self.workload.name)
                .and_then(|o| o.action_record.as_ref()),
        )
    }

    /// What `tugboat status` shows besides the rollout: healthy targets per slot and the
    /// number of steps.
    pub(super) fn note_observed(&mut self) {
        self.status.healthy_targets = self
            .seen
            .slots
            .iter()
            .map(|(slot, svc)| (*slot, svc.healthy_targets))
            .collect();
        self.status.step_count = self
            .workload
            .is_progressive()
            .then(|| effective_steps(&self.workload.strategy).len());
    }

    /// Writes the pin in force (if any) into the status.
    pub(super) fn note_pin(&mut self) {
        let record = self
            .observed
            .overrides
            .get(&self.workload.name)
            .and_then(|o| o.weight_record.clone())
            .unwrap_or_default();
        self.status.pin = self.weight_pin().map(|pin| PinStatus {
            weight: pin.weight,
            by: record.by.clone(),
            reason: pin.reason.clone().or(record.reason.clone()),
            since: record.at,
            until: pin.expires,
        });
    }

    /// Freezes the step's clock while a pin holds the rollout, and moves it on by the
    /// time held once the pin is gone.
    pub(super) fn hold_clocks_for_pin(&mut self) {
        let held = self.weight_pin().is_some() || self.unreadable_weight().is_some();
        let now = self.now;
        let Some(c) = self.status.canary.as_mut() else {
            return;
        };
        if c.aborted.is_some() {
            // An abort ignores pins; nothing is held.
            c.held_since = None;
            return;
        }
        match (held, c.held_since) {
            (true, None) => c.held_since = Some(now),
            (false, Some(since)) => {
                let held_for = since.until(now);
                c.step_started_at = c.step_started_at.plus(held_for);
                c.held_since = None;
                let step = c.step_index + 1;
                self.status.record(
                    now,
                    reason::PIN_RELEASED,
                    format!(
                        "the weight pin ended after {}: continuing at step {step}",
                        humantime::format_duration(std::time::Duration::from_secs(
                            held_for.as_secs()
                        ))
                    ),
                );
            }
            _ => {}
        }
    }

    /// `promote --full`: every remaining step is skipped.
    pub(super) fn promote_full(&mut self) {
        let steps = effective_steps(&self.workload.strategy).len();
        let now = self.now;
        let suffix = self.action_suffix();
        let Some(c) = self.status.canary.as_mut() else {
            return;
        };
        if c.aborted.is_some() {
            self.status.record(
                now,
                reason::OPERATOR_PROMOTE,
                "promote --full ignored: the rollout was aborted (retry it first)",
            );
            return;
        }
        let from = c.step_index + 1;
        c.step_index = steps;
        c.step_started_at = now;
        self.status.operator_paused = false;
        self.status.record(
            now,
            reason::OPERATOR_PROMOTE,
            format!("fully promoted by an operator from step {from}{suffix}: skipping every remaining step"),
        );
    }
}
