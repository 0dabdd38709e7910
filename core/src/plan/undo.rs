//! `tugboat undo`: a workload runs an earlier stable revision instead of the
//! document's, until the document changes or the undo is cancelled.
//!
//! Guarantees:
//! - The revisions that were stable before the current one are kept in the status
//!   (`stableHistory`, newest first), so an undo works after a restart.
//! - An undo applies only while the document still renders the revision it was written
//!   against (`from`); a new revision in the document ends it for good (`undo.ended`),
//!   even if the override stays in the inbox.
//! - Within the strategy's `rollbackWindow` (default 3 revisions) the undo's rollout
//!   skips its steps and analysis; it still waits for a healthy slot and reads 100% back
//!   before the old slot's scale-down is scheduled. Outside it, it is a normal rollout.
//! - An undo to a revision whose task definition is not registered (or not listed) is
//!   blocked, never registered from the document under the old revision's hash.

use crate::status::{MAX_STABLE_HISTORY, Revision, UndoStatus, reason};

use super::state::UNKNOWN_HASH;
use super::steps::effective_steps;
use super::{DesiredRevision, WorkloadPlanner};

impl WorkloadPlanner<'_> {
    /// The revision to run: the document's, or an undo's while it applies. `None`: the
    /// workload is blocked (the undo's revision cannot be run).
    pub(super) fn apply_undo(&mut self, desired: DesiredRevision) -> Option<DesiredRevision> {
        let undo = self
            .observed
            .overrides
            .get(&self.workload.name)
            .and_then(|o| o.undo.clone());
        let Some(undo) = undo.filter(|_| self.workload.is_progressive()) else {
            if let Some(u) = self.status.undo.take()
                && !u.ended
            {
                self.status.record(
                    self.now,
                    reason::UNDO,
                    format!(
                        "undo to {} cancelled: back to the document's revision {}",
                        u.revision, desired.hash
                    ),
                );
            }
            return Some(desired);
        };
        let same = |u: &UndoStatus| u.revision == undo.revision && u.from == undo.from;
        if self
            .status
            .undo
            .as_ref()
            .is_some_and(|u| u.ended && same(u))
        {
            return Some(desired);
        }
        if desired.hash != undo.from {
            self.status.undo = Some(UndoStatus {
                revision: undo.revision.clone(),
                from: undo.from.clone(),
                fast: false,
                ended: true,
            });
            self.status.record(
                self.now,
                reason::UNDO,
                format!(
                    "undo to {} ended: the document has a new revision ({})",
                    undo.revision, desired.hash
                ),
            );
            return Some(desired);
        }
        if !self.observed.task_definitions.contains_key(&undo.revision) {
            self.block(
                reason::UNDO,
                format!(
                    "undo to {}: no registered task definition carries that revision (it was \
                     deregistered, or is not listed yet); cancel the undo or change the document",
                    undo.revision
                ),
            );
            return None;
        }
        let window = self
            .workload
            .strategy
            .rollback_window()
            .map_or(0, |w| w.revisions as usize);
        let new = !self.status.undo.as_ref().is_some_and(same);
        // Decided once, when the undo is first seen: once it has run, its revision is
        // the stable one and no longer in the history.
        let fast = match &self.status.undo {
            Some(u) if !new => u.fast,
            _ => self
                .status
                .stable_history
                .iter()
                .take(window)
                .any(|h| *h == undo.revision),
        };
        self.status.undo = Some(UndoStatus {
            revision: undo.revision.clone(),
            from: undo.from.clone(),
            fast,
            ended: false,
        });
        if new {
            let how = if fast {
                format!(
                    "within the rollbackWindow ({window} revisions): steps and analysis are skipped"
                )
            } else {
                format!("outside the rollbackWindow ({window} revisions): a normal rollout")
            };
            self.status.record(
                self.now,
                reason::UNDO,
                format!(
                    "undo: running {} instead of the document's {}, {how}",
                    undo.revision, desired.hash
                ),
            );
        }
        Some(DesiredRevision {
            // Registered already (checked above): the definition is never registered
            // under the undo's hash.
            definition: desired.definition,
            hash: undo.revision,
            count: desired.count,
        })
    }

    /// A fast undo's rollout skips every step at its start.
    pub(super) fn fast_undo(&mut self) {
        let Some(u) = self.status.undo.clone().filter(|u| u.fast && !u.ended) else {
            return;
        };
        let steps = effective_steps(&self.workload.strategy).len();
        let now = self.now;
        let Some(c) = self.status.canary.as_mut() else {
            return;
        };
        if c.hash == u.revision && c.aborted.is_none() && c.step_index < steps {
            c.step_index = steps;
            c.step_started_at = now;
            let slot = c.slot;
            self.status.record(
                now,
                reason::UNDO,
                format!(
                    "undo to {} within the rollbackWindow: every step skipped; all traffic \
                     moves once the {} slot is healthy, verified before the old slot scales down",
                    u.revision, slot
                ),
            );
        }
    }

    /// Remembers the stable revision a pass replaced.
    pub(super) fn note_stable_history(&mut self, before: Option<Revision>) {
        let Some(before) = before else {
            return;
        };
        let now = self.status.stable.as_ref().map(|s| s.hash.clone());
        if now.as_deref() == Some(before.hash.as_str()) || before.hash == UNKNOWN_HASH {
            return;
        }
        let history = &mut self.status.stable_history;
        history.retain(|h| *h != before.hash && Some(h) != now.as_ref());
        history.insert(0, before.hash);
        history.truncate(MAX_STABLE_HISTORY);
    }
}
