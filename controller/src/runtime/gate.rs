//! Asks the `gate` steps the persisted status waits at, during the pass (no background
//! task), so the planner decides from answers recorded in the status.
//!
//! Guarantees: each waiting gate is asked at most once every
//! [`tugboat_core::plan::gate::GATE_POLL`], with a bounded request time
//! ([`GATE_REQUEST_TIMEOUT`]), so a gate that never answers costs a pass at most that
//! long; a network error or an unexpected status is a `Pending` answer (the gate keeps
//! waiting until its timeout aborts), never an approval.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::status::{AppStatus, Timestamp};
use tugboat_core::plan::gate::{self, GateAnswer, GateVerdict};

/// How long one gate request may take.
pub const GATE_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The answers of the gates `status` waits at, by workload.
pub async fn ask(
    client: &reqwest::Client,
    status: Option<&AppStatus>,
    now: Timestamp,
) -> BTreeMap<String, GateAnswer> {
    let mut answers = BTreeMap::new();
    for check in gate::due(status, now) {
        let (verdict, message) = match client
            .get(&check.url)
            .timeout(GATE_REQUEST_TIMEOUT)
            .send()
            .await
        {
            Ok(response) => {
                let code = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                (gate::verdict(code, &body), format!("HTTP {code}"))
            }
            Err(e) => (GateVerdict::Pending, super::reconciler::error_chain(&e)),
        };
        answers.insert(
            check.workload,
            GateAnswer {
                id: check.id,
                at: now,
                verdict,
                message,
            },
        );
    }
    answers
}
