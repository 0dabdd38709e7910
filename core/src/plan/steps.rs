//! The steps of a progressive rollout, what one step can decide, and the weight
//! arithmetic behind them.
//!
//! Guarantee: everything here is a small pure function of the strategy (and a weight),
//! so the step list and the weights a rollout holds can be checked with tables. Canary
//! and blue/green share one step list: blue/green is an analysis, a pause and one full
//! shift.

use std::time::Duration;

use crate::document::{AnalysisStep, CanaryStep, DurationSpec, Slot, Strategy};

use super::{DEFAULT_ABORT_SCALE_DOWN_DELAY, DEFAULT_PROGRESS_DEADLINE, DEFAULT_SCALE_DOWN_DELAY};

/// A step of a progressive rollout. Blue/green is expressed as the same steps as a
/// canary (analysis, pause, one full shift), so both share one state machine.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    SetWeight(u32),
    /// `None`: until promoted.
    Pause(Option<Duration>),
    Analysis(AnalysisStep),
    /// Wait for `url` to approve (see [`crate::document::GateStep`]).
    Gate(crate::document::GateStep),
    /// Create (with `matches`) or remove (without) the header route to the canary.
    SetHeaderRoute(crate::document::SetHeaderRoute),
}

/// What a step decided in this pass. The step walker, not the step, acts on it: it
/// moves to the next step, finishes the rollout, or aborts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// Stay at this step; a later pass (or a timer) looks again.
    Wait,
    /// This step is complete: move on to the next one.
    Next,
    /// The rollout must stop: `reason` is a [`crate::status::reason`] constant.
    Abort {
        reason: &'static str,
        message: String,
    },
    /// There is no step left: the rollout is complete.
    Done,
}

/// Whether the canary's steps end below 100% (or set no weight at all), so that tugboat
/// adds a final `setWeight: 100`, as Argo Rollouts does.
pub fn implicit_full_weight(canary: &crate::document::CanaryStrategy) -> bool {
    let last = canary.steps.iter().rev().find_map(|s| match s {
        CanaryStep::SetWeight(w) => Some(*w),
        _ => None,
    });
    last.is_none_or(|w| w < 100)
}

/// The step list a progressive workload walks through.
pub fn effective_steps(strategy: &Strategy) -> Vec<Step> {
    match strategy {
        Strategy::Rolling(_) => Vec::new(),
        Strategy::Canary(c) => {
            let mut steps: Vec<Step> = c
                .steps
                .iter()
                .map(|s| match s {
                    CanaryStep::SetWeight(w) => Step::SetWeight(*w),
                    CanaryStep::Pause(p) => Step::Pause(p.duration.map(|d| d.0)),
                    CanaryStep::Analysis(a) => Step::Analysis(a.clone()),
                    CanaryStep::Gate(g) => Step::Gate(g.clone()),
                    CanaryStep::SetHeaderRoute(h) => Step::SetHeaderRoute(h.clone()),
                })
                .collect();
            // As in Argo Rollouts, a canary whose last setWeight is below 100 finishes at
            // 100: the step is explicit here, so the weight checks, the placement after a
            // restart and the status count it like any other.
            if implicit_full_weight(c) {
                steps.push(Step::SetWeight(100));
            }
            steps
        }
        Strategy::BlueGreen(b) => {
            let mut steps = Vec::new();
            if let Some(a) = &b.pre_promotion_analysis {
                steps.push(Step::Analysis(a.clone()));
            }
            if !b.auto_promotion_enabled {
                steps.push(Step::Pause(None));
            } else if let Some(delay) = b.auto_promotion_delay {
                steps.push(Step::Pause(Some(delay.0)));
            }
            steps.push(Step::SetWeight(100));
            // After the switch, before the old slot scales down: a failure moves
            // traffic back to it (the rollout aborts from 100%).
            if let Some(a) = &b.post_promotion_analysis {
                steps.push(Step::Analysis(a.clone()));
            }
            steps
        }
    }
}

/// The rule weights `(blue, green)` that give `slot` `weight` percent and its twin the
/// rest. Weights above 100 are capped.
///
/// ```
/// use tugboat_core::document::Slot;
/// use tugboat_core::plan::split_weights;
/// assert_eq!(split_weights(Slot::Green, 20), (80, 20));
/// assert_eq!(split_weights(Slot::Blue, 100), (100, 0));
/// assert_eq!(split_weights(Slot::Blue, 130), (100, 0));
/// ```
pub fn split_weights(slot: Slot, weight: u32) -> (u32, u32) {
    let weight = weight.min(100);
    match slot {
        Slot::Blue => (weight, 100 - weight),
        Slot::Green => (100 - weight, weight),
    }
}

/// The canary weight in force while the rollout is at step `index`: that of the last
/// `setWeight` before it, 0 before the first one. Pauses and analyses hold it.
///
/// With steps `[setWeight 20, pause 1m, analysis, setWeight 50, pause {}]`:
/// index 0 (the first `setWeight`) holds 0, indexes 1 and 2 hold 20, index 4 holds 50.
///
/// ```
/// use tugboat_core::plan::{Step, held_weight};
/// let steps = [Step::SetWeight(20), Step::Pause(None), Step::SetWeight(50), Step::Pause(None)];
/// assert_eq!(held_weight(&steps, 0), 0);
/// assert_eq!(held_weight(&steps, 1), 20);
/// assert_eq!(held_weight(&steps, 2), 20);
/// assert_eq!(held_weight(&steps, 3), 50);
/// ```
pub fn held_weight(steps: &[Step], index: usize) -> u32 {
    steps[..index.min(steps.len())]
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::SetWeight(w) => Some(*w),
            _ => None,
        })
        .unwrap_or(0)
}

/// The header route in force while the rollout is at step `index`: that of the last
/// `setHeaderRoute` before it, when that one has a `match` (one with only `name`
/// removed it). Like [`held_weight`], it is a function of the step index alone, so a
/// restarted controller holds the same route from the status it reads back.
///
/// ```
/// use tugboat_core::document::SetHeaderRoute;
/// use tugboat_core::plan::{Step, held_header_route};
/// let on = SetHeaderRoute { name: "testers".into(), matches: Some(vec![]) };
/// let off = SetHeaderRoute { name: "testers".into(), matches: None };
/// let steps = [Step::SetHeaderRoute(on.clone()), Step::SetWeight(20), Step::SetHeaderRoute(off)];
/// assert_eq!(held_header_route(&steps, 0), None);
/// assert_eq!(held_header_route(&steps, 1), Some(&on));
/// assert_eq!(held_header_route(&steps, 2), Some(&on));
/// assert_eq!(held_header_route(&steps, 3), None);
/// ```
pub fn held_header_route(steps: &[Step], index: usize) -> Option<&crate::document::SetHeaderRoute> {
    steps[..index.min(steps.len())]
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::SetHeaderRoute(h) => Some(h),
            _ => None,
        })
        .filter(|h| h.matches.is_some())
}

/// Where a rollout resumes when its status is lost and the rule gives the canary
/// `weight`: the step right after the last `setWeight` that weight reaches (stopping at
/// the first `setWeight` above it), so no pause or analysis after that `setWeight` is
/// skipped. The second value says whether that `setWeight` is exactly `weight`; when it
/// is not, the rollout's real position is unknown and the caller holds.
///
/// With steps `[setWeight 20, pause 1m, analysis, setWeight 50, pause {}, setWeight 100]`:
/// 20% resumes at the timed pause (index 1, exact); 50% at the manual pause (index 4,
/// exact); 35% at index 1 (not exact: between 20 and 50); 10% at index 0 (not exact).
///
/// ```
/// use tugboat_core::plan::{Step, resume_index};
/// let steps = [
///     Step::SetWeight(20),
///     Step::Pause(None),
///     Step::SetWeight(50),
///     Step::Pause(None),
///     Step::SetWeight(100),
/// ];
/// assert_eq!(resume_index(&steps, 20), (1, true));
/// assert_eq!(resume_index(&steps, 50), (3, true));
/// assert_eq!(resume_index(&steps, 35), (1, false));
/// assert_eq!(resume_index(&steps, 10), (0, false));
/// ```
pub fn resume_index(steps: &[Step], weight: u32) -> (usize, bool) {
    let mut at = None;
    for (i, step) in steps.iter().enumerate() {
        match step {
            Step::SetWeight(w) if *w > weight => break,
            Step::SetWeight(w) => at = Some((i, *w)),
            _ => {}
        }
    }
    match at {
        Some((i, w)) => (i + 1, w == weight),
        None => (0, false),
    }
}

/// The canary's share of the rule's traffic in whole percent, from its weight `raw` and
/// the sum of both weights (ALB weights are relative, 0-999 each), and whether the share
/// is exactly that whole percent.
///
/// ```
/// use tugboat_core::plan::weight_share;
/// assert_eq!(weight_share(100, 200), (50, true));
/// assert_eq!(weight_share(205, 1000), (20, false));
/// assert_eq!(weight_share(0, 0), (0, true));
/// ```
pub fn weight_share(raw: u32, total: u32) -> (u32, bool) {
    let total = total.max(1);
    (raw * 100 / total, (raw * 100).is_multiple_of(total))
}

/// A short fingerprint of a step list, kept with a rollout so that a change of the
/// document's steps mid-rollout is noticed.
///
/// It is persisted, so it hashes an encoding this crate owns rather than `Debug`
/// output (which may change with the compiler): an upgrade must not make every rollout
/// in flight look as if its steps changed.
///
/// ```
/// use std::time::Duration;
/// use tugboat_core::plan::{Step, steps_fingerprint};
/// let a = [Step::SetWeight(20), Step::Pause(Some(Duration::from_secs(60)))];
/// let b = [Step::SetWeight(20), Step::Pause(None)];
/// assert_eq!(steps_fingerprint(&a), steps_fingerprint(&a.clone()));
/// assert_ne!(steps_fingerprint(&a), steps_fingerprint(&b));
/// assert_eq!(steps_fingerprint(&a).len(), 16);
/// ```
pub fn steps_fingerprint(steps: &[Step]) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for step in steps {
        match step {
            Step::SetWeight(w) => hasher.update(format!("w{w};")),
            Step::Pause(Some(d)) => hasher.update(format!("p{};", d.as_millis())),
            Step::Pause(None) => hasher.update("p-;"),
            Step::Gate(g) => hasher.update(format!(
                "g{}:{}:{};",
                g.url.len(),
                g.url,
                g.timeout.0.as_millis()
            )),
            Step::SetHeaderRoute(h) => {
                // The route's whole content, length-prefixed: a changed match is a
                // changed step list.
                let body = serde_json::to_string(h).unwrap_or_default();
                hasher.update(format!("h{}:{body};", body.len()));
            }
            Step::Analysis(analysis) => {
                hasher.update("a");
                for t in &analysis.templates {
                    // Length-prefixed, so no template name can mimic a separator.
                    hasher.update(format!("{}:{},", t.template_name.len(), t.template_name));
                }
                // Arguments only when there are any, so the fingerprints of rollouts in
                // flight from before arguments existed do not change.
                for a in &analysis.args {
                    let value = match (&a.value, a.value_from) {
                        (Some(v), _) => format!("v{}:{v}", v.len()),
                        (None, Some(from)) => format!("f{from:?}"),
                        (None, None) => "-".to_string(),
                    };
                    hasher.update(format!("@{}:{}={value},", a.name.len(), a.name));
                }
                hasher.update(";");
            }
        }
    }
    hex::encode(&hasher.finalize()[..8])
}

/// The timers a strategy sets, with their defaults filled in.
pub(super) struct Timers {
    pub scale_down_delay: Duration,
    pub abort_scale_down_delay: Duration,
    pub progress_deadline: Duration,
}

pub(super) fn timers(strategy: &Strategy) -> Timers {
    let or = |d: Option<DurationSpec>, default: Duration| d.map(|d| d.0).unwrap_or(default);
    match strategy {
        Strategy::Canary(c) => Timers {
            scale_down_delay: or(c.scale_down_delay, DEFAULT_SCALE_DOWN_DELAY),
            abort_scale_down_delay: or(c.abort_scale_down_delay, DEFAULT_ABORT_SCALE_DOWN_DELAY),
            progress_deadline: or(c.progress_deadline, DEFAULT_PROGRESS_DEADLINE),
        },
        Strategy::BlueGreen(b) => Timers {
            scale_down_delay: or(b.scale_down_delay, DEFAULT_SCALE_DOWN_DELAY),
            abort_scale_down_delay: or(b.scale_down_delay, DEFAULT_ABORT_SCALE_DOWN_DELAY),
            progress_deadline: or(b.progress_deadline, DEFAULT_PROGRESS_DEADLINE),
        },
        Strategy::Rolling(_) => Timers {
            scale_down_delay: DEFAULT_SCALE_DOWN_DELAY,
            abort_scale_down_delay: DEFAULT_ABORT_SCALE_DOWN_DELAY,
            progress_deadline: DEFAULT_PROGRESS_DEADLINE,
        },
    }
}
