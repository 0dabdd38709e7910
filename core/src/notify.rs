//! Webhook notifications: which events a pass produced, their JSON body, and its
//! HMAC-SHA256 signature.
//!
//! Guarantees:
//! - The events of a pass are derived from the difference between the status before
//!   and after it ([`derive`]), a pure function: nothing outside the persisted status is
//!   needed, so what a pass told is re-derivable from the two statuses.
//! - Each status event appended by the pass yields at most one notification; a phase
//!   that becomes `Paused` yields one `paused`. Nothing is told twice for the same status
//!   change.
//! - [`signature`] is HMAC-SHA256 (RFC 2104) over `sha2`, checked against RFC 4231's
//!   test vectors; the key is never part of any value this module returns.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::document::{Notification, NotificationEvent};
use crate::status::{AppStatus, Event, Phase, Timestamp, WorkloadStatus, reason};

/// The weights a notification carries: the canary's share, as desired and as verified
/// on the listener rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Weights {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<u32>,
}

/// One notification's JSON body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    pub event: NotificationEvent,
    pub application: String,
    pub environment: String,
    pub workload: String,
    /// Content hash of the revision rolling out (the stable one when none is).
    pub revision: String,
    /// Step the rollout is at, from 1; absent outside a canary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_count: Option<usize>,
    pub weights: Weights,
    /// The status event's reason (e.g. `AnalysisFailed`), or the phase for `paused`.
    pub reason: String,
    pub message: String,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Timestamp,
}

/// The event kind a status event stands for, if any. `Promoted` in the status means
/// the new revision serves all traffic: that is `completed`; an operator's promote is
/// `promoted`.
pub fn kind_of(event_reason: &str) -> Option<NotificationEvent> {
    Some(match event_reason {
        reason::ROLLOUT_STARTED => NotificationEvent::RolloutStarted,
        reason::STEP_COMPLETED => NotificationEvent::StepReached,
        reason::ANALYSIS_FAILED | reason::ANALYSIS_INCONCLUSIVE | reason::ANALYSIS_SUCCEEDED => {
            NotificationEvent::AnalysisVerdict
        }
        reason::ABORTED => NotificationEvent::Aborted,
        reason::OPERATOR_PROMOTE => NotificationEvent::Promoted,
        reason::PROMOTED => NotificationEvent::Completed,
        reason::OPERATOR_PAUSE => NotificationEvent::Paused,
        _ => return None,
    })
}

/// The events of `after` that `before` does not have (the status keeps the last few
/// events, oldest first; a pass only appends).
fn new_events<'a>(before: Option<&WorkloadStatus>, after: &'a WorkloadStatus) -> Vec<&'a Event> {
    let old = before.map(|b| b.events.as_slice()).unwrap_or(&[]);
    after.events.iter().filter(|e| !old.contains(e)).collect()
}

/// What a pass told: the notifications for the difference between `before` (the status
/// the pass started from) and `after` (what it persisted), in workload then event order.
pub fn derive(
    application: &str,
    environment: &str,
    before: Option<&AppStatus>,
    after: &AppStatus,
) -> Vec<Notice> {
    let mut out = Vec::new();
    for (name, ws) in &after.workloads {
        let previous = before.and_then(|b| b.workloads.get(name));
        let notice = |event: NotificationEvent, reason: &str, message: &str, at: Timestamp| {
            let canary = ws.canary.as_ref();
            Notice {
                event,
                application: application.to_string(),
                environment: environment.to_string(),
                workload: name.clone(),
                revision: canary
                    .map(|c| c.hash.clone())
                    .or_else(|| ws.stable.as_ref().map(|s| s.hash.clone()))
                    .unwrap_or_default(),
                step: canary.map(|c| c.step_index + 1),
                step_count: canary.and(ws.step_count),
                weights: Weights {
                    desired: ws.desired_weight,
                    verified: ws.verified_weight,
                },
                reason: reason.to_string(),
                message: message.to_string(),
                timestamp: at,
            }
        };
        // A canary abort is told from its transition (the abort's own event carries the
        // cause's reason, e.g. `AnalysisFailed`, which must not count as a verdict).
        let was_aborted = previous
            .and_then(|p| p.canary.as_ref())
            .is_some_and(|c| c.aborted.is_some());
        let aborted_now = ws
            .canary
            .as_ref()
            .and_then(|c| c.aborted.as_ref())
            .filter(|_| !was_aborted);
        let mut paused_told = false;
        for e in new_events(previous, ws) {
            if let Some(abort) = aborted_now
                && abort.reason == e.message
                && abort.at == e.at
            {
                out.push(notice(
                    NotificationEvent::Aborted,
                    &e.reason,
                    &e.message,
                    e.at,
                ));
                continue;
            }
            if let Some(kind) = kind_of(&e.reason) {
                paused_told |= kind == NotificationEvent::Paused;
                out.push(notice(kind, &e.reason, &e.message, e.at));
            }
        }
        let was_paused = previous.is_some_and(|p| p.phase == Phase::Paused);
        if ws.phase == Phase::Paused && !was_paused && !paused_told {
            let at = ws.events.last().map_or(Timestamp(0), |e| e.at);
            out.push(notice(NotificationEvent::Paused, "Paused", &ws.message, at));
        }
    }
    out
}

/// Whether `target` wants `event` (an empty list: every event).
pub fn wants(target: &Notification, event: NotificationEvent) -> bool {
    target.events.is_empty() || target.events.contains(&event)
}

/// The JSON body of `notice`.
pub fn body(notice: &Notice) -> Vec<u8> {
    // A struct of strings, numbers and enums: serializing it cannot fail.
    serde_json::to_vec(notice).unwrap_or_default()
}

/// HMAC-SHA256 of `message` under `key` (RFC 2104, block size 64).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|k| k ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The `X-Tugboat-Signature` header value for `body`: `sha256=<hex>`.
pub fn signature(key: &[u8], body: &[u8]) -> String {
    format!("sha256={}", hex::encode(hmac_sha256(key, body)))
}

/// The header that carries [`signature`].
pub const SIGNATURE_HEADER: &str = "X-Tugboat-Signature";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::CanaryStatus;

    fn hex_hmac(key: &[u8], data: &[u8]) -> String {
        hex::encode(hmac_sha256(key, data))
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 1.
        assert_eq!(
            hex_hmac(&[0x0b; 20], b"Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        // Test case 2.
        assert_eq!(
            hex_hmac(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 3.
        assert_eq!(
            hex_hmac(&[0xaa; 20], &[0xdd; 50]),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex_hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn canary() -> CanaryStatus {
        CanaryStatus {
            slot: crate::document::Slot::Green,
            hash: "abc".into(),
            started_at: Timestamp(1),
            step_index: 1,
            step_started_at: Timestamp(2),
            healthy_at: None,
            aborted: None,
            steps: None,
            held_since: None,
        }
    }

    fn status(ws: WorkloadStatus) -> AppStatus {
        let mut s = AppStatus::default();
        s.workloads.insert("api".into(), ws);
        s
    }

    #[test]
    fn only_the_events_a_pass_appended_are_told() {
        let mut before = WorkloadStatus::default();
        before.record(Timestamp(1), reason::ROLLOUT_STARTED, "api:2 rolls out");
        let mut after = before.clone();
        after.record(Timestamp(2), reason::STEP_COMPLETED, "step 1 done");
        after.record(Timestamp(2), reason::SCALED_DOWN, "not a notification");
        after.canary = Some(canary());
        after.desired_weight = Some(20);
        after.step_count = Some(3);
        let told = derive("app", "prod", Some(&status(before.clone())), &status(after));
        assert_eq!(told.len(), 1, "{told:?}");
        let n = &told[0];
        assert_eq!(n.event, NotificationEvent::StepReached);
        assert_eq!((n.step, n.step_count), (Some(2), Some(3)));
        assert_eq!(n.revision, "abc");
        assert_eq!(n.weights.desired, Some(20));
        // The same status again tells nothing.
        let same = status(before);
        assert!(derive("app", "prod", Some(&same), &same).is_empty());
    }

    #[test]
    fn a_phase_that_becomes_paused_is_told_once() {
        let before = WorkloadStatus::default();
        let mut after = before.clone();
        after.phase = Phase::Paused;
        after.message = "step 2: paused until promoted".into();
        let told = derive("app", "prod", Some(&status(before)), &status(after.clone()));
        assert_eq!(
            told.iter().map(|n| n.event).collect::<Vec<_>>(),
            vec![NotificationEvent::Paused]
        );
        assert!(derive("app", "prod", Some(&status(after.clone())), &status(after)).is_empty());
    }

    #[test]
    fn a_canary_abort_is_told_once_as_aborted_with_its_cause() {
        let before = WorkloadStatus {
            canary: Some(canary()),
            ..WorkloadStatus::default()
        };
        let mut after = before.clone();
        after.record(
            Timestamp(3),
            reason::ANALYSIS_FAILED,
            "step 2 analysis failed: aborted",
        );
        after.record(
            Timestamp(3),
            reason::ANALYSIS_FAILED,
            "analysis failed: errors",
        );
        after.canary.as_mut().unwrap().aborted = Some(crate::status::Abort {
            reason: "analysis failed: errors".into(),
            at: Timestamp(3),
            weight_restored_at: None,
        });
        let told = derive("app", "prod", Some(&status(before)), &status(after.clone()));
        assert_eq!(
            told.iter()
                .map(|n| (n.event, n.reason.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (NotificationEvent::AnalysisVerdict, reason::ANALYSIS_FAILED),
                (NotificationEvent::Aborted, reason::ANALYSIS_FAILED),
            ]
        );
        // The next pass (still unwinding) tells nothing more.
        assert!(derive("app", "prod", Some(&status(after.clone())), &status(after)).is_empty());
    }

    #[test]
    fn status_reasons_map_to_events() {
        assert_eq!(
            kind_of(reason::PROMOTED),
            Some(NotificationEvent::Completed)
        );
        assert_eq!(kind_of(reason::ABORTED), Some(NotificationEvent::Aborted));
        assert_eq!(
            kind_of(reason::ANALYSIS_FAILED),
            Some(NotificationEvent::AnalysisVerdict)
        );
        assert_eq!(kind_of(reason::CONVERGED), None);
    }
}
