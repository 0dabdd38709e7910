//! Red-team findings: inputs a user or a reviewer can produce (a recorded observation, a
//! lost status, a stale inbox, a slow load balancer) that broke a safety promise of the
//! README ("What a rollout never does"). Each test failed on the planner before the fix
//! named in its doc comment.

use super::*;

use super::safety::canary_at_manual_pause_60;

/// Found with `tugboat diff --observed`: a canary waits at its manual pause, the status
/// is lost, and the operator inbox still holds the `promote` written for an earlier
/// rollout (SSM keeps the last value). Without status `handledActionVersion` reads 0, so
/// the old promote was taken again and the pause skipped (`SetWeights 0/100`).
#[test]
fn lost_status_never_acts_on_a_promote_written_before_the_restart() {
    let mut w = canary_at_manual_pause_60();
    // The promote that ended the previous pause is still in the inbox, handled.
    w.operator("api", OperatorActionKind::Promote, 3);
    w.status
        .as_mut()
        .unwrap()
        .workloads
        .get_mut("api")
        .unwrap()
        .handled_action_version = 3;
    assert!(kinds(&w.pass(), "api").is_empty(), "handled: nothing moves");
    w.status = None;
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), Vec::<&str>::new(), "{:#?}", p.actions);
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused, "{}", s.message);
    assert_eq!(s.canary.as_ref().map(|c| c.step_index), Some(1));
    assert_eq!(w.weights("api"), (40, 60));
    // Still paused a pass later, and a promote written now (a new version) continues.
    assert!(kinds(&w.pass(), "api").is_empty());
    w.operator("api", OperatorActionKind::Promote, 4);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
}
