//! Where a progressive workload's rollout stands, computed before anything is planned.
//!
//! Guarantee: [`rollout_state`] is a small pure function of the persisted status, the
//! observation and the desired revision's hash; the planner matches on its answer (as
//! kube-runtime's finalizer does on `FinalizerState`), so every transition starts from
//! one named state that the tests can table.

use crate::document::Slot;
use crate::observed::ObservedWorkload;
use crate::status::{Abort, CanaryStatus, Revision, ScaleDown, WorkloadStatus};

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
}

impl RolloutState {
    /// The stable revision, in every state that has one.
    pub fn stable(&self) -> Option<&Revision> {
        match self {
            RolloutState::NoStable => None,
            RolloutState::AtRest { stable }
            | RolloutState::ScalingDown { stable, .. }
            | RolloutState::Rejected { stable, .. }
            | RolloutState::Ready { stable }
            | RolloutState::Canary { stable, .. }
            | RolloutState::Superseded { stable, .. }
            | RolloutState::Reverted { stable, .. }
            | RolloutState::Unwinding { stable, .. } => Some(stable),
        }
    }
}

/// Where the rollout stands, from the persisted `status` (or, without a stable revision
/// in it, what `seen` shows) and the hash of the desired revision.
pub fn rollout_state(
    status: &WorkloadStatus,
    seen: &ObservedWorkload,
    desired: &str,
) -> RolloutState {
    let Some(stable) = status.stable.clone().or_else(|| infer_stable(seen)) else {
        return RolloutState::NoStable;
    };
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

/// When no status survives, the slot carrying traffic (or running tasks) is stable.
fn infer_stable(seen: &ObservedWorkload) -> Option<Revision> {
    let slot = if let Some(rule) = &seen.rule {
        if rule.weight(Slot::Green) > rule.weight(Slot::Blue) {
            Slot::Green
        } else {
            Slot::Blue
        }
    } else {
        let running = |s: Slot| seen.slots.get(&s).is_some_and(|x| x.desired_count > 0);
        if running(Slot::Green) && !running(Slot::Blue) {
            Slot::Green
        } else {
            Slot::Blue
        }
    };
    let svc = seen.slots.get(&slot)?;
    // A service whose definition tugboat did not register has no known hash; calling
    // it stable under an impossible hash makes the desired revision roll out.
    let hash = svc
        .content_hash
        .clone()
        .unwrap_or_else(|| "unknown".to_string());
    seen.rule.as_ref()?;
    Some(Revision {
        slot: Some(slot),
        hash,
    })
}
