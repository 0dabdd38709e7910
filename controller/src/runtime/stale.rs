//! Operator actions found when no status says whether they were handled.
//!
//! A one-shot action (`promote`, `abort`, ...) stays in the inbox after it was handled;
//! only the status remembers the last version handled. Without that status (the first
//! pass on an empty store, or a status that was lost), every action still in the inbox
//! looks new, and a `promote` left over from an earlier rollout would skip the pause of
//! the current one the moment the controller comes back.
//!
//! Guarantees:
//! - For a workload with no previous status, an action that moves a rollout forward
//!   (`promote`, `retry`, `resume`) is not handed to the planner. It is marked handled
//!   in the status the pass writes, with an `ActionIgnored` event saying what to write
//!   to act on it now, so the next pass does not take it for new either.
//! - `abort` and `pause` are still handed on: acting on a stale one only stops or
//!   reverts a rollout (weight moves back only onto healthy targets), while dropping a
//!   fresh one would lose an operator's brake.
//! - A workload that has a status is left alone: its handled version decides.

use std::collections::BTreeMap;

use crate::document::Application;
use crate::observed::{ObservedState, OperatorAction, OperatorActionKind};
use crate::operator::format_action;
use crate::plan::operator_hint;
use crate::status::{AppStatus, Timestamp};

/// Event reason: an action found without status was not applied.
pub const ACTION_IGNORED: &str = "ActionIgnored";

/// Whether acting on a stale `kind` could move a rollout past a step it has not passed.
pub fn moves_forward(kind: OperatorActionKind) -> bool {
    match kind {
        OperatorActionKind::Promote | OperatorActionKind::Retry | OperatorActionKind::Resume => {
            true
        }
        OperatorActionKind::Abort | OperatorActionKind::Pause => false,
    }
}

/// Takes out of `observed` the forward-moving actions of workloads `previous` knows
/// nothing of, and returns them by workload.
pub fn withhold(
    observed: &mut ObservedState,
    previous: Option<&AppStatus>,
) -> BTreeMap<String, OperatorAction> {
    let mut withheld = BTreeMap::new();
    for (workload, overrides) in &mut observed.overrides {
        let known = previous.is_some_and(|s| s.workloads.contains_key(workload));
        if known {
            continue;
        }
        if let Some(action) = overrides.action.take_if(|a| moves_forward(a.kind)) {
            withheld.insert(workload.clone(), action);
        }
    }
    withheld
}

/// Marks each withheld action handled in `status` and records why it was not applied.
pub fn mark_handled(
    status: &mut AppStatus,
    app: &Application,
    withheld: &BTreeMap<String, OperatorAction>,
    now: Timestamp,
) {
    for (workload, action) in withheld {
        let word = format_action(action.kind);
        let ws = status.workloads.entry(workload.clone()).or_default();
        ws.handled_action_version = ws.handled_action_version.max(action.version);
        ws.record(
            now,
            ACTION_IGNORED,
            format!(
                "`{word}` (version {}) was already waiting when there was no status to say \
                 whether it had been handled (it may be left from an earlier rollout): not \
                 applied. To {word} now, {} again",
                action.version,
                operator_hint(app, workload, word)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::WorkloadOverrides;
    use crate::status::WorkloadStatus;

    fn observed_with(actions: &[(&str, OperatorActionKind, u64)]) -> ObservedState {
        let mut observed = ObservedState::default();
        for (workload, kind, version) in actions {
            observed.overrides.insert(
                workload.to_string(),
                WorkloadOverrides {
                    weight_pin: None,
                    action: Some(OperatorAction {
                        kind: *kind,
                        version: *version,
                    }),
                },
            );
        }
        observed
    }

    #[test]
    fn without_status_forward_actions_are_withheld_and_brakes_pass() {
        let mut observed = observed_with(&[
            ("api", OperatorActionKind::Promote, 7),
            ("ml", OperatorActionKind::Abort, 3),
            ("web", OperatorActionKind::Resume, 2),
        ]);
        let withheld = withhold(&mut observed, None);
        assert_eq!(
            withheld.keys().collect::<Vec<_>>(),
            ["api", "web"],
            "promote and resume are withheld"
        );
        assert_eq!(withheld["api"].version, 7);
        assert!(observed.overrides["api"].action.is_none());
        assert_eq!(
            observed.overrides["ml"].action.as_ref().map(|a| a.kind),
            Some(OperatorActionKind::Abort),
            "an abort is still handed to the planner"
        );
    }

    #[test]
    fn a_workload_with_status_keeps_its_actions() {
        let mut observed = observed_with(&[("api", OperatorActionKind::Promote, 7)]);
        let mut previous = AppStatus::default();
        previous
            .workloads
            .insert("api".into(), WorkloadStatus::default());
        assert!(withhold(&mut observed, Some(&previous)).is_empty());
        assert!(observed.overrides["api"].action.is_some());
    }
}
