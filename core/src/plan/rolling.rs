//! Rolling workloads: one service, updated in place by ECS's own rolling deployment.
//!
//! Guarantee: the service runs the desired revision at the desired count; a routed
//! rolling workload gets all traffic on its one target group only once that group has
//! healthy targets; a revision ECS's circuit breaker rolled back is not pushed again
//! until the document changes or an operator retries.

use crate::document::Slot;
use crate::observed::OperatorActionKind;
use crate::status::{Phase, Revision, reason};

use super::{DesiredRevision, POLL_WHILE_WAITING, WorkloadPlanner};

impl WorkloadPlanner<'_> {
    pub(super) fn plan_rolling(&mut self, target: &DesiredRevision) {
        let action = self.take_action();
        if action == Some(OperatorActionKind::Retry) {
            self.status.aborted_hash = None;
            self.status
                .record(self.now, reason::OPERATOR_RETRY, "retrying the rollout");
        }
        let svc = self.seen.service.clone();
        let stable_hash = self.status.stable.as_ref().map(|r| r.hash.clone());

        // ECS's circuit breaker rolled the service back: do not push the same revision
        // again until the document changes or an operator retries.
        if let Some(s) = &svc
            && s.deployment_failed
            && self.status.aborted_hash.as_deref() != Some(&target.hash)
            && stable_hash.as_deref() != Some(&target.hash)
        {
            let message = format!(
                "deployment of {} failed (ECS circuit breaker); to retry it, {}; or change the document",
                target.hash,
                self.hint("retry")
            );
            self.status.aborted_hash = Some(target.hash.clone());
            self.status
                .record(self.now, reason::ABORTED, message.clone());
            self.set_phase(Phase::Aborted, message);
            return;
        }
        if self.status.aborted_hash.as_deref() == Some(&target.hash) {
            let message = format!(
                "rollout of {} was aborted; to retry it, {}; or change the document",
                target.hash,
                self.hint("retry")
            );
            self.set_phase(Phase::Aborted, message);
            return;
        }
        self.status.aborted_hash = None;

        // A different hash than the one we last converged on is a new revision; the same
        // hash with a different service is drift.
        let drift = stable_hash.as_deref() == Some(&target.hash);
        if stable_hash.as_deref() != Some(&target.hash)
            && svc.as_ref().and_then(|s| s.content_hash.as_deref()) != Some(&target.hash)
        {
            self.status.record(
                self.now,
                reason::ROLLOUT_STARTED,
                format!("rolling out {}", target.hash),
            );
        }
        let changed = self.ensure_service(None, target, &target.hash, target.count, drift);
        let healthy = !changed && self.is_healthy(svc.as_ref(), &target.hash, target.count);

        // A routed rolling workload sends everything to its one target group, once that
        // group has healthy targets.
        let mut weights_ok = true;
        if self.route().is_some() {
            let has_targets = svc.as_ref().is_some_and(|s| s.healthy_targets > 0);
            if has_targets {
                let rule_existed = self.seen.rule.is_some();
                weights_ok = self.ensure_weights(
                    Slot::Blue,
                    100,
                    "a rolling workload sends all traffic to its service",
                    rule_existed && drift,
                );
            } else {
                weights_ok = self.observed_weights() == Some((100, 0));
            }
        }

        if healthy && weights_ok {
            if stable_hash.as_deref() != Some(&target.hash) {
                self.status.record(
                    self.now,
                    reason::CONVERGED,
                    format!("running {} with {} tasks", target.hash, target.count),
                );
            }
            self.status.stable = Some(Revision {
                slot: None,
                hash: target.hash.clone(),
            });
            self.clear_drift();
            self.status.converged_count = Some(target.count);
            self.set_phase(
                Phase::Healthy,
                format!("running {} with {} tasks", target.hash, target.count),
            );
        } else {
            self.requeue_in(POLL_WHILE_WAITING);
            let phase = if stable_hash.is_none() {
                Phase::Pending
            } else {
                Phase::Progressing
            };
            self.set_phase(
                phase,
                format!(
                    "deploying {}: waiting for {} running and healthy tasks",
                    target.hash, target.count
                ),
            );
        }
    }
}
