//! What the endpoint reports: counters and the last status, fed by the loop's
//! `on_pass` callback ([`Health::on_pass`]).
//!
//! Depends on the runtime's report types only; the loop does not know this exists.

use std::sync::{Arc, Mutex};

use crate::status::{AppStatus, Timestamp};

use super::driver::OnPass;
use super::reconciler::{PassOutcome, error_chain};

/// What the loop reports after each pass; shared with the HTTP handlers.
#[derive(Debug, Clone, Default)]
pub struct Health {
    inner: Arc<Mutex<HealthState>>,
    /// Who leads, when several replicas elect one ([`super::elector`]).
    leadership: Option<tokio::sync::watch::Receiver<super::elector::Leadership>>,
}

#[derive(Debug, Default)]
pub(super) struct HealthState {
    pub(super) passes: u64,
    pub(super) failed_passes: u64,
    pub(super) actions_applied: u64,
    pub(super) action_failures: u64,
    pub(super) describe_calls: u64,
    pub(super) mutate_calls: u64,
    pub(super) last_pass_ok: Option<bool>,
    pub(super) last_pass_at: Option<Timestamp>,
    pub(super) last_error: Option<String>,
    pub(super) status: Option<AppStatus>,
}

impl Health {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records the outcome of one pass.
    pub fn record(&self, result: &PassOutcome, now: Timestamp) {
        let mut s = self.lock();
        s.passes += 1;
        s.last_pass_at = Some(now);
        match result {
            Ok(report) => {
                s.last_pass_ok = Some(true);
                s.last_error = None;
                s.actions_applied += report.execution.changes() as u64;
                s.action_failures += report.execution.failures.len() as u64;
                s.describe_calls += report.calls.describe;
                s.mutate_calls += report.calls.mutate;
                s.status = Some(report.status.clone());
            }
            Err(e) => {
                s.failed_passes += 1;
                s.last_pass_ok = Some(false);
                s.last_error = Some(error_chain(e));
            }
        }
    }
}

impl Health {
    /// Reports the election's state beside the passes' (`/readyz`, `/status`, `/metrics`).
    pub fn with_leadership(
        mut self,
        leadership: tokio::sync::watch::Receiver<super::elector::Leadership>,
    ) -> Self {
        self.leadership = Some(leadership);
        self
    }

    /// The election's state now, if there is an election.
    pub fn leadership(&self) -> Option<super::elector::Leadership> {
        self.leadership.as_ref().map(|l| l.borrow().clone())
    }

    /// The loop callback that records into this.
    pub fn on_pass(&self) -> OnPass {
        let health = self.clone();
        Arc::new(move |outcome, now| health.record(outcome, now))
    }
}
