//! `tugboat undo`: back to an earlier stable revision, fast within the rollback window.

use super::*;
use crate::document::RollbackWindow;
use crate::observed::UndoOverride;

const QUICK: &str =
    "[{setWeight: 50}, {analysis: {templates: [{templateName: errors}]}}, {setWeight: 100}]";

/// api rolled from api:1 to api:2 (analysis passed), at rest on green. Returns the two
/// hashes.
fn rolled_forward(window: Option<u32>) -> (World, String, String) {
    let mut app = with_steps(doc(), "api", QUICK);
    if let (Some(n), Strategy::Canary(c)) = (window, &mut workload_mut(&mut app, "api").strategy) {
        c.rollback_window = Some(RollbackWindow { revisions: n });
    }
    let mut w = World::converged_with(app);
    let first = w.status("api").stable.clone().unwrap().hash;
    w.app = with_image(w.app.clone(), "api", "api:2");
    for _ in 0..20 {
        w.pass();
        if !w.live_runs("api").is_empty() {
            w.finish_analysis("api", AnalysisPhase::Succeeded);
        }
        w.now = w.now.plus(Duration::from_secs(40));
        if w.status("api").canary.is_none() && w.status("api").phase == Phase::Healthy {
            break;
        }
    }
    w.settle(Duration::from_secs(40), 10);
    let s = w.status("api");
    let second = s.stable.clone().unwrap().hash;
    assert_ne!(first, second);
    assert_eq!(
        s.stable_history,
        vec![first.clone()],
        "the old stable is remembered"
    );
    assert_eq!(
        w.slot("api", Slot::Blue).desired_count,
        0,
        "old slot scaled down"
    );
    (w, first, second)
}

fn undo(w: &mut World, revision: &str, from: &str) {
    w.observed.overrides.entry("api".into()).or_default().undo = Some(UndoOverride {
        revision: revision.into(),
        from: from.into(),
    });
}

#[test]
fn undo_within_the_window_skips_steps_and_analysis_but_verifies_the_weight() {
    let (mut w, first, second) = rolled_forward(None);
    undo(&mut w, &first, &second);
    let mut weights = Vec::new();
    for _ in 0..10 {
        let p = w.pass();
        for a in actions_of(&p, "api") {
            match a {
                Action::SetWeights { blue, .. } => weights.push(*blue),
                Action::StartAnalysis { .. } => panic!("a fast undo runs no analysis"),
                Action::RegisterTaskDefinition { .. } => panic!("never registered again"),
                _ => {}
            }
        }
        // Promotion only after the 100% was read back (the World applies weights at once,
        // so the read-back is the next pass's observation).
        if let Some(stable) = &w.status("api").stable
            && stable.hash == first
        {
            assert_eq!(
                w.weights("api"),
                (100, 0),
                "promoted only at 100% read back"
            );
        }
        w.now = w.now.plus(Duration::from_secs(5));
    }
    assert_eq!(
        weights,
        vec![100],
        "straight to 100% on the undo's slot, no steps"
    );
    let s = w.status("api");
    assert_eq!(
        s.stable.as_ref().map(|r| r.hash.as_str()),
        Some(first.as_str())
    );
    assert!(
        s.undo.as_ref().is_some_and(|u| u.fast && !u.ended),
        "{:?}",
        s.undo
    );
    assert!(w.events("api", reason::UNDO) >= 2, "{:?}", s.events);
}

#[test]
fn undo_outside_the_window_is_a_normal_rollout() {
    let (mut w, first, second) = rolled_forward(Some(0));
    undo(&mut w, &first, &second);
    let mut weights = Vec::new();
    for _ in 0..6 {
        let p = w.pass();
        for a in actions_of(&p, "api") {
            if let Action::SetWeights { blue, .. } = a {
                weights.push(*blue);
            }
        }
        w.now = w.now.plus(Duration::from_secs(5));
    }
    assert_eq!(
        weights.first(),
        Some(&50),
        "the first step's weight: {weights:?}"
    );
    assert!(!w.live_runs("api").is_empty(), "the analysis runs");
    assert!(w.status("api").undo.as_ref().is_some_and(|u| !u.fast));
}

#[test]
fn a_new_document_revision_ends_the_undo_for_good() {
    let (mut w, first, second) = rolled_forward(None);
    undo(&mut w, &first, &second);
    w.settle(Duration::from_secs(40), 12);
    assert_eq!(w.status("api").stable.as_ref().unwrap().hash, first);
    // api:3 in the document: the undo (still in the inbox) no longer applies.
    w.app = with_image(w.app.clone(), "api", "api:3");
    w.pass();
    let s = w.status("api");
    assert!(s.undo.as_ref().is_some_and(|u| u.ended), "{:?}", s.undo);
    let canary = s.canary.as_ref().expect("a rollout of api:3");
    assert_ne!(canary.hash, first);
    assert_ne!(canary.hash, second);
    assert_eq!(canary.step_index, 0, "a normal rollout from step 1");
    // Back to api:2 in the document: still ended, the old override does not come back.
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    assert!(w.status("api").undo.as_ref().is_some_and(|u| u.ended));
}

#[test]
fn undo_to_an_unregistered_revision_is_blocked_and_registers_nothing() {
    let (mut w, first, second) = rolled_forward(None);
    w.observed.task_definitions.remove(&first);
    undo(&mut w, &first, &second);
    let p = w.pass();
    assert!(
        !actions_of(&p, "api").iter().any(|a| matches!(
            a,
            Action::RegisterTaskDefinition { .. } | Action::UpdateService { .. }
        )),
        "{:?}",
        actions_of(&p, "api")
    );
    let blocked = w
        .status("api")
        .condition("Blocked")
        .cloned()
        .expect("Blocked");
    assert!(
        blocked.status && blocked.message.contains("undo to"),
        "{blocked:?}"
    );
}

#[test]
fn the_stable_history_survives_in_the_status_across_a_restart() {
    let (w, first, second) = rolled_forward(None);
    // A restart: a fresh planner with only the persisted status (as JSON) and a new
    // observation.
    let json = serde_json::to_string(w.status.as_ref().unwrap()).unwrap();
    let status: AppStatus = serde_json::from_str(&json).unwrap();
    let mut w2 = World::new(w.app.clone());
    w2.observed = w.observed.clone();
    w2.status = Some(status);
    w2.now = w.now;
    undo(&mut w2, &first, &second);
    w2.pass();
    let s = w2.status("api");
    assert!(s.undo.as_ref().is_some_and(|u| u.fast), "{:?}", s.undo);
    assert_eq!(
        s.canary.as_ref().map(|c| c.hash.as_str()),
        Some(first.as_str())
    );
}
