//! `gate` steps: the rollout holds at the step, weight unchanged, until the gate's URL
//! approves; a rejection or the timeout aborts.
//!
//! Guarantees:
//! - The gate is asked by the runner during the pass ([`due`] says which gates the
//!   persisted status waits at); its answer reaches the planner as an observation
//!   ([`GateAnswer`]) and is recorded in the status ([`GateStatus`]) before it decides,
//!   so a restart keeps waiting where it was, with the same deadline.
//! - Only an answer for this step attempt (its id: hash, step index, step clock) counts;
//!   a gate is never skipped: no answer, an unknown answer or an error keep waiting, and
//!   `promote` does not pass a gate.
//! - Waiting holds the weight of the last `setWeight` before the gate (the step walker
//!   puts it back first, as for pauses and analyses).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::document::GateStep;
use crate::status::{AppStatus, CanaryStatus, GatePhase, GateStatus, Phase, Timestamp, reason};

use super::WorkloadPlanner;
use super::steps::StepOutcome;

/// How often a waiting gate is asked (at most once a pass).
pub const GATE_POLL: Duration = Duration::from_secs(5);

/// What the gate answered this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum GateVerdict {
    Approved,
    Rejected,
    /// Not yet (another status code, no answer, a network error).
    Pending,
}

/// One answer, for the gate `id` of the persisted status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GateAnswer {
    pub id: String,
    pub at: Timestamp,
    pub verdict: GateVerdict,
    /// The answer in one line (e.g. `200`, `403`, `connection refused`).
    pub message: String,
}

/// A gate the runner must ask this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateCheck {
    pub workload: String,
    pub id: String,
    pub url: String,
}

/// The gates `status` waits at that were not asked in the last [`GATE_POLL`].
pub fn due(status: Option<&AppStatus>, now: Timestamp) -> Vec<GateCheck> {
    let Some(status) = status else {
        return Vec::new();
    };
    status
        .workloads
        .iter()
        .filter_map(|(name, ws)| {
            // Not while an operator paused the rollout: the planner would not record it.
            let g = ws.gate.as_ref().filter(|g| {
                !ws.operator_paused
                    && g.phase == GatePhase::Waiting
                    && g.last_checked_at.is_none_or(|t| now >= t.plus(GATE_POLL))
            })?;
            ws.canary.as_ref().filter(|c| c.aborted.is_none())?;
            Some(GateCheck {
                workload: name.clone(),
                id: g.id.clone(),
                url: g.url.clone(),
            })
        })
        .collect()
}

/// The verdict of an HTTP answer: `2xx` approves unless the body is JSON with
/// `"approved": false`; `403` and `409` reject; anything else is not yet an answer.
///
/// ```
/// use tugboat_core::plan::gate::{GateVerdict, verdict};
/// assert_eq!(verdict(200, b""), GateVerdict::Approved);
/// assert_eq!(verdict(200, br#"{"approved": false}"#), GateVerdict::Rejected);
/// assert_eq!(verdict(403, b""), GateVerdict::Rejected);
/// assert_eq!(verdict(503, b""), GateVerdict::Pending);
/// ```
pub fn verdict(status: u16, body: &[u8]) -> GateVerdict {
    match status {
        200..=299 => {
            let refused = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("approved").and_then(serde_json::Value::as_bool))
                == Some(false);
            if refused {
                GateVerdict::Rejected
            } else {
                GateVerdict::Approved
            }
        }
        403 | 409 => GateVerdict::Rejected,
        _ => GateVerdict::Pending,
    }
}

/// The id of the gate at step `index` of the rollout of `hash` whose step clock started
/// at `attempt`.
pub fn gate_id(hash: &str, index: usize, attempt: Timestamp) -> String {
    format!("{hash}-gate{index}-{}", attempt.0)
}

impl WorkloadPlanner<'_> {
    /// A `gate` step: record the gate once per step attempt, fold this pass's answer in,
    /// then decide from what the status holds.
    pub(super) fn gate_step(&mut self, canary: &CanaryStatus, step: &GateStep) -> StepOutcome {
        let index = canary.step_index;
        let attempt = self
            .status
            .canary
            .as_ref()
            .map_or(canary.step_started_at, |c| c.step_started_at);
        let id = gate_id(&canary.hash, index, attempt);
        let now = self.now;
        if self.status.gate.as_ref().map(|g| g.id.as_str()) != Some(id.as_str()) {
            self.status.gate = Some(GateStatus {
                id: id.clone(),
                url: step.url.clone(),
                started_at: now,
                deadline: now.plus(step.timeout.0),
                phase: GatePhase::Waiting,
                checks: 0,
                last_checked_at: None,
                message: String::new(),
            });
        }
        let answer = self
            .observed
            .gate_answers
            .get(&self.workload.name)
            .filter(|a| a.id == id)
            .cloned();
        let mut event = None;
        let gate = self.status.gate.as_mut().expect("recorded above");
        if gate.phase == GatePhase::Waiting {
            if let Some(a) = answer {
                gate.checks += 1;
                gate.last_checked_at = Some(a.at);
                gate.message = a.message.clone();
                match a.verdict {
                    GateVerdict::Approved => gate.phase = GatePhase::Approved,
                    GateVerdict::Rejected => gate.phase = GatePhase::Rejected,
                    GateVerdict::Pending => {}
                }
            }
            if gate.phase == GatePhase::Waiting && now >= gate.deadline {
                gate.phase = GatePhase::TimedOut;
            }
            // A rejection or a timeout is recorded by the abort, under its reason.
            event =
                (gate.phase == GatePhase::Approved).then_some((reason::GATE_APPROVED, "approved"));
        }
        let gate = gate.clone();
        if let Some((why, what)) = event {
            self.status.record(
                now,
                why,
                format!(
                    "step {}: gate {} {what} ({})",
                    index + 1,
                    gate.url,
                    last_answer(&gate)
                ),
            );
        }
        match gate.phase {
            GatePhase::Waiting => {
                self.requeue_at(now.plus(GATE_POLL).min(gate.deadline));
                self.set_phase(
                    Phase::Progressing,
                    format!(
                        "step {}: waiting for gate {} to approve, until {} ({})",
                        index + 1,
                        gate.url,
                        gate.deadline,
                        last_answer(&gate)
                    ),
                );
                StepOutcome::Wait
            }
            GatePhase::Approved => StepOutcome::Next,
            GatePhase::Rejected => StepOutcome::Abort {
                reason: reason::GATE_REJECTED,
                message: format!("gate {} rejected the rollout ({})", gate.url, gate.message),
            },
            GatePhase::TimedOut => StepOutcome::Abort {
                reason: reason::GATE_TIMED_OUT,
                message: format!(
                    "gate {} did not approve within {} ({})",
                    gate.url,
                    humantime::format_duration(gate.started_at.until(gate.deadline)),
                    last_answer(&gate)
                ),
            },
        }
    }
}

fn last_answer(gate: &GateStatus) -> String {
    if gate.checks == 0 {
        "not answered yet".to_string()
    } else {
        format!("{} answers, last: {}", gate.checks, gate.message)
    }
}
