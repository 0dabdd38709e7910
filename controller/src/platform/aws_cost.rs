//! What applying an action costs in AWS calls, at most: pure, so `tugboat diff` prices
//! a plan the same way offline, live, and in a build without the AWS platform.

use crate::observed::ObservedState;
use crate::plan::Action;

use super::CallEstimate;

/// How many of a family's newest revisions are searched for a content hash before
/// registering. A crash between register and update leaves the orphan newest.
pub(crate) const REVISIONS_SEARCHED: usize = 20;

/// The most AWS calls applying `action` can cost, given what was observed. Needs no
/// client, so an offline `tugboat diff` prices a plan the same way a live one does.
pub fn estimate_calls(action: &Action, observed: &ObservedState) -> CallEstimate {
    match action {
        Action::RegisterTaskDefinition { content_hash, .. } => {
            if observed.task_definitions.contains_key(content_hash) {
                CallEstimate::default()
            } else {
                // ListTaskDefinitions, then at most REVISIONS_SEARCHED describes of
                // revisions this process has not seen, then the register.
                CallEstimate {
                    describe: 1 + REVISIONS_SEARCHED as u32,
                    mutate: 1,
                }
            }
        }
        Action::CreateService { .. } | Action::UpdateService { .. } | Action::SetWeights { .. } => {
            CallEstimate {
                describe: 0,
                mutate: 1,
            }
        }
        Action::StartAnalysis { .. } => CallEstimate::default(),
        // Create or modify; a move to another priority deletes first.
        Action::SetHeaderRoute { .. } => CallEstimate {
            describe: 0,
            mutate: 2,
        },
        Action::RemoveHeaderRoute { .. } => CallEstimate {
            describe: 0,
            mutate: 1,
        },
        // Register, one put per policy and scheduled action; two describes before the
        // deletes of what the document no longer has (not counted: usually none).
        Action::EnsureScaling { auto_scaling, .. } => CallEstimate {
            describe: 2,
            mutate: 1 + u32::try_from(
                auto_scaling.target_tracking.len() + auto_scaling.scheduled_actions.len(),
            )
            .unwrap_or(u32::MAX),
        },
        Action::RemoveScaling { .. } => CallEstimate {
            describe: 2,
            mutate: 1,
        },
    }
}
