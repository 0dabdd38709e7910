//! Where a progressive workload's rollout stands, computed before anything is planned.
//!
//! Guarantee: [`rollout_state`] is a small pure function of the persisted status, the
//! observation and the desired revision's hash; the planner matches on its answer (as
//! kube-runtime's finalizer does on `FinalizerState`), so every transition starts from
//! one named state that the tests can table.
//!
//! Without a persisted stable revision (a first start, or a lost status), the state is
//! read off the observation, and a lost status never promotes: a slot running the
//! document's revision while the other slot still carries weight is a canary, resumed
//! at the step its weight matches ([`RolloutState::Resumed`]); two weighted slots of
//! which neither runs the document's revision cannot be told apart, so nothing moves
//! ([`RolloutState::Unknown`]).
//!
//! A persisted rollout that contradicts what runs (one slot named both stable and
//! canary, or the "stable" slot running the canary's revision) is not acted on either:
//! it is [`RolloutState::Unknown`] too, and the message says how to get out.

use crate::document::Slot;
use crate::observed::ObservedWorkload;
use crate::status::{Abort, CanaryStatus, Revision, ScaleDown, WorkloadStatus};

use super::steps::{Step, resume_index, weight_share};

/// The hash of an inferred stable revision whose definition tugboat did not register
/// (changed by hand): it matches no desired revision, and the planner never points a
/// service at it.
pub const UNKNOWN_HASH: &str = "unknown";

/// Where a progressive workload's rollout stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutState {
    /// Nothing serves yet: the first deployment brings the blue slot up.
    NoStable,
    /// The stable slot runs the desired revision and nothing else is going on.
    AtRest { stable: Revision },
    /// At rest, with the old slot waiting out its scale-down delay.
    ScalingDown {
        stable: Revision,
        scale_down: ScaleDown,
    },
    /// The desired revision's rollout was aborted; it waits for a retry or a new document.
    Rejected { stable: Revision, hash: String },
    /// A new revision is desired and its rollout has not started yet.
    Ready { stable: Revision },
    /// The desired revision is rolling out on the idle slot.
    Canary {
        stable: Revision,
        canary: CanaryStatus,
    },
    /// The document moved on to a third revision while a rollout was under way.
    Superseded {
        stable: Revision,
        canary: CanaryStatus,
    },
    /// The document went back to the stable revision while a rollout was under way.
    Reverted {
        stable: Revision,
        canary: CanaryStatus,
    },
    /// An aborted rollout on its way back: weight to stable, then the canary scales down.
    Unwinding {
        stable: Revision,
        canary: CanaryStatus,
        abort: Abort,
    },
    /// No status, and the rule gives weight to both slots, only one of which runs the
    /// desired revision: a rollout was under way. It resumes at `step_index`, the step
    /// right after the last `setWeight` the observed `weight` reaches; `exact` says
    /// whether a `setWeight` of exactly that weight exists (if not, it holds there).
    Resumed {
        stable: Revision,
        canary_slot: Slot,
        weight: u32,
        step_index: usize,
        exact: bool,
    },
    /// No status, and what is observed does not tell which slot is stable: nothing moves
    /// until a person decides. `message` says what is seen and what to do.
    Unknown { message: String },
}

impl RolloutState {
    /// The stable revision, in every state that has one.
    pub fn stable(&self) -> Option<&Revision> {
        match self {
            RolloutState::NoStable | RolloutState::Unknown { .. } => None,
            RolloutState::AtRest { stable }
            | RolloutState::ScalingDown { stable, .. }
            | RolloutState::Rejected { stable, .. }
            | RolloutState::Ready { stable }
            | RolloutState::Canary { stable, .. }
            | RolloutState::Superseded { stable, .. }
            | RolloutState::Reverted { stable, .. }
            | RolloutState::Unwinding { stable, .. }
            | RolloutState::Resumed { stable, .. } => Some(stable),
        }
    }
}

/// Where the rollout stands, from the persisted `status` (or, without a stable revision
/// in it, what `seen` shows), the hash of the desired revision and its step list.
/// `hints` are what else the pass knows that the weights alone do not say.
pub fn rollout_state(
    status: &WorkloadStatus,
    seen: &ObservedWorkload,
    desired: &str,
    steps: &[Step],
    hints: Hints,
) -> RolloutState {
    let stable = match status.stable.clone() {
        Some(stable) => stable,
        None => match infer(seen, desired, steps, hints) {
            Inferred::Nothing => return RolloutState::NoStable,
            Inferred::Stable(stable) => stable,
            Inferred::State(state) => return state,
        },
    };
    if let Some(message) = status
        .canary
        .as_ref()
        .and_then(|canary| contradiction(&stable, canary, seen))
    {
        return RolloutState::Unknown { message };
    }
    match status.canary.clone() {
        None if stable.hash == desired => match status.scale_down.clone() {
            Some(scale_down) => RolloutState::ScalingDown { stable, scale_down },
            None => RolloutState::AtRest { stable },
        },
        None if status.aborted_hash.as_deref() == Some(desired) => RolloutState::Rejected {
            stable,
            hash: desired.to_string(),
        },
        None => RolloutState::Ready { stable },
        Some(canary) => match canary.aborted.clone() {
            Some(abort) => RolloutState::Unwinding {
                stable,
                canary,
                abort,
            },
            None if canary.hash == desired => RolloutState::Canary { stable, canary },
            None if stable.hash == desired => RolloutState::Reverted { stable, canary },
            None => RolloutState::Superseded { stable, canary },
        },
    }
}

/// Why a persisted rollout cannot describe what runs, if it cannot: the status names
/// one slot as both stable and canary, or the slot it calls stable runs the canary's
/// revision (an old copy of the status, or one edited by hand). Acting on it would
/// switch a slot that carries traffic to the canary, or send traffic to it.
fn contradiction(
    stable: &Revision,
    canary: &CanaryStatus,
    seen: &ObservedWorkload,
) -> Option<String> {
    let stable_slot = stable.slot.unwrap_or(Slot::Blue);
    let fix = "tugboat changes nothing. Delete the status to have tugboat read the rollout \
               off what runs, or correct it";
    if canary.slot == stable_slot {
        return Some(format!(
            "the status names the {stable_slot} slot both stable ({}) and canary ({}); {fix}",
            stable.hash, canary.hash
        ));
    }
    let runs = seen.slots.get(&stable_slot)?.content_hash.as_deref()?;
    (runs == canary.hash && canary.hash != stable.hash).then(|| {
        format!(
            "the status says the {stable_slot} slot is stable at {} and the canary {} is on \
             {}, but the {stable_slot} slot runs {runs}: the status does not describe what \
             runs (an old copy, or edited); {fix}",
            stable.hash, canary.hash, canary.slot
        )
    })
}

/// What a pass knows besides the observation that changes how a status-less
/// observation reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hints {
    /// An operator's weight pin is in force: the rule's weights are the pin's, not a
    /// step's, and tell nothing about where a rollout stood.
    pub pinned: bool,
    /// An operator's abort is pending (nothing says it was handled): a slot at 100%
    /// running the desired revision while the other slot still has tasks may be an
    /// aborted canary whose weight has not gone back yet, not a finished rollout.
    pub abort_pending: bool,
}

// A value that lives for one call and is matched at once: boxing the large variant
// would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Inferred {
    Nothing,
    Stable(Revision),
    State(RolloutState),
}

/// What the observation alone says, when no status survives.
///
/// | rule weights      | slots running the desired revision | answer                     |
/// |-------------------|------------------------------------|----------------------------|
/// | no rule           | any                                | nothing serves (first deployment) |
/// | one slot at 100   | the idle one, scaled to 0          | that slot is stable; the desired revision was aborted |
/// | one slot at 100   | any other                          | that slot is stable        |
/// | both weighted     | exactly one                        | the other is stable; resume the canary |
/// | both weighted     | both                               | the heavier is stable      |
/// | both weighted     | neither                            | unknown: hold              |
///
/// Under an operator's weight pin the weights are the pin's: a canary resumes at the
/// first step (every pause and analysis runs once the pin expires). Under a pin or a
/// pending abort, a slot running the desired revision at 100% while the other slot, on
/// another revision, still has tasks is a canary (pinned, or aborted with its weight not
/// back yet), not a finished rollout.
fn infer(seen: &ObservedWorkload, desired: &str, steps: &[Step], hints: Hints) -> Inferred {
    let pinned = hints.pinned;
    let Some(rule) = &seen.rule else {
        return Inferred::Nothing;
    };
    // A service whose definition tugboat did not register has no known hash; calling
    // it stable under an impossible hash makes the desired revision roll out.
    let revision = |slot: Slot| {
        seen.slots.get(&slot).map(|svc| Revision {
            slot: Some(slot),
            hash: svc
                .content_hash
                .clone()
                .unwrap_or_else(|| UNKNOWN_HASH.to_string()),
        })
    };
    let (blue, green) = (rule.weight(Slot::Blue), rule.weight(Slot::Green));
    let heavier = if green > blue {
        Slot::Green
    } else {
        Slot::Blue
    };
    // The load balancer's weights are relative (0-999 each): blue 100 / green 100 is
    // half the traffic each. A step is matched on the canary's share of the sum, in whole
    // percent; a share that is not a whole percent matches no step exactly.
    let resumed = |stable: Revision, canary_slot: Slot, raw: u32| {
        let (weight, whole) = weight_share(raw, blue + green);
        let (step_index, exact) = if pinned {
            (0, true)
        } else {
            let (index, exact) = resume_index(steps, weight);
            (index, exact && whole)
        };
        Inferred::State(RolloutState::Resumed {
            stable,
            canary_slot,
            weight,
            step_index,
            exact,
        })
    };
    if blue == 0 || green == 0 {
        let lighter = heavier.other();
        if (pinned || hints.abort_pending)
            && let (Some(full), Some(other)) = (revision(heavier), revision(lighter))
            && full.hash == desired
            && other.hash != desired
            && seen
                .slots
                .get(&lighter)
                .is_some_and(|s| s.desired_count > 0)
        {
            return resumed(other, heavier, blue.max(green));
        }
        // The idle slot scaled to 0 on the desired revision: a rollout of it was aborted
        // (or the document went back from it) and drained. It is not rolled out again
        // until an operator retries, as the lost status would have said.
        if let (Some(full), Some(idle)) = (revision(heavier), revision(lighter))
            && full.hash != desired
            && idle.hash == desired
            && seen
                .slots
                .get(&lighter)
                .is_some_and(|s| s.desired_count == 0)
        {
            return Inferred::State(RolloutState::Rejected {
                stable: full,
                hash: desired.to_string(),
            });
        }
        return revision(heavier).map_or(Inferred::Nothing, Inferred::Stable);
    }
    let (Some(b), Some(g)) = (revision(Slot::Blue), revision(Slot::Green)) else {
        return Inferred::State(RolloutState::Unknown {
            message: format!(
                "no status, and the rule sends blue {blue} / green {green} but only one slot \
                 has a service; tugboat changes nothing until the rule sends all traffic to \
                 the slot that serves (set its weight to 100 by hand)"
            ),
        });
    };
    match (b.hash == desired, g.hash == desired) {
        (true, false) => resumed(g, Slot::Blue, blue),
        (false, true) => resumed(b, Slot::Green, green),
        (true, true) => revision(heavier).map_or(Inferred::Nothing, Inferred::Stable),
        (false, false) => Inferred::State(RolloutState::Unknown {
            message: format!(
                "no status, and the rule sends blue {blue} ({}) / green {green} ({}), neither \
                 running the document's revision {desired}: tugboat cannot tell which slot is \
                 stable and changes nothing. Send all traffic to the slot you trust (its \
                 weight to 100 on the rule, by hand) or restore the status; tugboat takes \
                 that slot as stable and rolls the document out from there",
                b.hash, g.hash
            ),
        }),
    }
}
