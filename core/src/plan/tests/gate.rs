//! `gate` steps: the rollout holds at the gate, weight unchanged, until an approval is
//! recorded; a rejection or the timeout aborts; nothing (no answer, a restart, a lost
//! status, `promote`) passes it.

use super::*;
use crate::plan::gate::{GateAnswer, GateVerdict};
use crate::status::GatePhase;

const GATED: &str =
    "[{setWeight: 30}, {gate: {url: 'http://gate.test/ok', timeout: 2m}}, {setWeight: 100}]";

/// api rolling to api:2, waiting at the gate (step 2) with 30% on the canary.
fn at_the_gate() -> World {
    let mut w = World::converged_with(with_steps(doc(), "api", GATED));
    w.app = with_image(w.app.clone(), "api", "api:2");
    for _ in 0..10 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(5));
        if w.status("api").gate.is_some() {
            break;
        }
    }
    let s = w.status("api");
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1, "at the gate");
    assert_eq!(s.gate.as_ref().unwrap().phase, GatePhase::Waiting);
    assert_eq!(w.weights("api"), (70, 30));
    w
}

fn answer(w: &mut World, verdict: GateVerdict) {
    let id = w.status("api").gate.as_ref().unwrap().id.clone();
    w.observed.gate_answers.insert(
        "api".into(),
        GateAnswer {
            id,
            at: w.now,
            verdict,
            message: format!("{verdict:?}"),
        },
    );
}

#[test]
fn a_gate_is_never_skipped_and_holds_the_weight_while_waiting() {
    let mut w = at_the_gate();
    // No answer, then answers that are not approvals, then a promote: still waiting,
    // the weight held at every pass, until just before the timeout.
    for i in 0..20 {
        if i % 2 == 0 {
            answer(&mut w, GateVerdict::Pending);
        }
        if i == 10 {
            w.operator("api", OperatorActionKind::Promote, 1);
        }
        w.pass();
        w.observed.gate_answers.clear();
        let s = w.status("api");
        assert_eq!(s.canary.as_ref().unwrap().step_index, 1, "pass {i}: {s:?}");
        assert_eq!(w.weights("api"), (70, 30), "pass {i}: weight held");
        assert_eq!(s.phase, Phase::Progressing, "pass {i}: {}", s.message);
        w.now = w.now.plus(Duration::from_secs(5));
    }
    assert!(w.status("api").message.contains("waiting for gate"));
}

#[test]
fn a_weight_moved_while_waiting_at_a_gate_is_put_back_not_advanced() {
    let mut w = at_the_gate();
    // A hand edit of the rule moves the canary to 60% while the gate has not approved.
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 40), (Slot::Green, 60)]);
    for _ in 0..4 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(5));
    }
    let s = w.status("api");
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1, "{}", s.message);
    assert_eq!(w.weights("api"), (70, 30), "the gate's weight is put back");
}

#[test]
fn an_answer_for_another_attempt_does_not_count() {
    let mut w = at_the_gate();
    w.observed.gate_answers.insert(
        "api".into(),
        GateAnswer {
            id: "someone-else".into(),
            at: w.now,
            verdict: GateVerdict::Approved,
            message: "200".into(),
        },
    );
    w.pass();
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
}

#[test]
fn an_approved_gate_moves_to_the_next_step() {
    let mut w = at_the_gate();
    answer(&mut w, GateVerdict::Approved);
    w.pass();
    w.observed.gate_answers.clear();
    assert_eq!(
        w.status("api").gate.as_ref().unwrap().phase,
        GatePhase::Approved
    );
    w.settle(Duration::from_secs(5), 20);
    assert_eq!(w.weights("api"), (0, 100));
    assert_eq!(w.events("api", reason::GATE_APPROVED), 1);
}

#[test]
fn a_rejected_gate_aborts_back_to_stable() {
    let mut w = at_the_gate();
    answer(&mut w, GateVerdict::Rejected);
    w.pass();
    w.observed.gate_answers.clear();
    w.settle(Duration::from_secs(5), 20);
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
    assert_eq!(w.weights("api"), (100, 0));
    assert_eq!(w.events("api", reason::GATE_REJECTED), 1);
}

#[test]
fn a_gate_that_never_approves_times_out_into_abort() {
    let mut w = at_the_gate();
    for _ in 0..30 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(5));
    }
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
    assert_eq!(s.gate.as_ref().unwrap().phase, GatePhase::TimedOut);
    assert_eq!(w.weights("api"), (100, 0));
}

#[test]
fn a_lost_status_at_a_gate_resumes_waiting_at_the_gate() {
    let mut w = at_the_gate();
    w.status = None;
    for _ in 0..5 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(5));
        assert_eq!(w.weights("api"), (70, 30), "weight held, not advanced");
    }
    let s = w.status("api");
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1, "{}", s.message);
    assert_eq!(s.gate.as_ref().unwrap().phase, GatePhase::Waiting);
}

#[test]
fn bad_gates_and_webhooks_are_named_by_path() {
    let mut app = with_steps(
        doc(),
        "api",
        "[{setWeight: 30}, {gate: {url: 'ftp://x', timeout: 0s}}, {setWeight: 100}]",
    );
    app.spec.notifications = vec![crate::document::Notification {
        url: "hooks.example.com".into(),
        events: vec![
            crate::document::NotificationEvent::Paused,
            crate::document::NotificationEvent::Paused,
        ],
        secret: Some(crate::document::SecretSource {
            env: None,
            ssm: None,
        }),
    }];
    let problems: Vec<String> = crate::validate::validate(&app)
        .into_iter()
        .map(|p| format!("{}: {}", p.path, p.message))
        .filter(|p| p.contains("gate") || p.contains("notifications"))
        .collect();
    for want in [
        "gate.url: must be an http:// or https:// URL",
        "gate.timeout",
        "notifications[0].url: must be an http",
        "notifications[0].events[1]: names an event twice",
        "notifications[0].secret: needs `env",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(want)),
            "{want}: {problems:#?}"
        );
    }
}
