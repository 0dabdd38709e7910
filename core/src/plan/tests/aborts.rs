//! Aborts: weight back to stable first, then the canary drains and scales down.

use super::*;

#[test]
fn operator_abort_restores_weight_then_scales_canary_down_after_delay() {
    let (mut w, _) = canary_started();
    w.pass(); // 80/20
    w.pass(); // verified
    w.operator("api", OperatorActionKind::Abort, 3);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert_eq!(w.status("api").phase, Phase::Aborted);
    // Weight verified: the canary keeps running through the drain delay.
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
    w.now = w.now.plus(Duration::from_secs(20));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-green"));
    w.pass();
    let s = w.status("api");
    assert!(s.canary.is_none());
    assert_eq!(s.phase, Phase::Aborted);
    assert!(s.aborted_hash.is_some());
}

#[test]
fn abort_never_scales_the_canary_down_before_weight_is_verified() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Abort, 1);
    // The ALB keeps showing the canary weight (e.g. ModifyRule throttled).
    for _ in 0..5 {
        w.rule("api").weights = BTreeMap::from([(Slot::Blue, 80), (Slot::Green, 20)]);
        w.now = w.now.plus(Duration::from_secs(60));
        let p = w.plan_only();
        assert!(
            matches!(
                actions_of(&p, "api")[..],
                [Action::SetWeights { blue: 100, .. }]
            ),
            "only the weight is retried: {:?}",
            kinds(&p, "api")
        );
        w.status = Some(p.status);
    }
}

#[test]
fn aborted_revision_is_not_retried_until_an_operator_retries() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Abort, 1);
    w.settle(Duration::from_secs(30), 10);
    assert_eq!(w.status("api").phase, Phase::Aborted);
    w.now = w.now.plus(Duration::from_secs(600));
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    w.operator("api", OperatorActionKind::Retry, 2);
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(2), .. }] if service == "api-green"));
    assert_eq!(w.status("api").phase, Phase::Progressing);
}

#[test]
fn a_different_revision_after_an_abort_rolls_out() {
    let (mut w, _) = canary_started();
    w.pass();
    w.operator("api", OperatorActionKind::Abort, 1);
    w.settle(Duration::from_secs(30), 10);
    w.app = with_image(w.app.clone(), "api", "api:3");
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["register", "update"]);
}

#[test]
fn progress_deadline_aborts_a_canary_that_never_becomes_healthy() {
    let mut w = World::converged();
    w.tasks_healthy = false;
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    w.now = w.now.plus(Duration::from_secs(299));
    w.pass();
    assert_eq!(w.status("api").phase, Phase::Progressing);
    w.now = w.now.plus(Duration::from_secs(1));
    w.pass();
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted);
    assert!(
        s.events
            .iter()
            .any(|e| e.reason == reason::PROGRESS_DEADLINE_EXCEEDED)
    );
}

#[test]
fn failed_canary_deployment_aborts() {
    let (mut w, _) = canary_started();
    w.slot("api", Slot::Green).deployment_failed = true;
    w.pass();
    assert_eq!(w.status("api").phase, Phase::Aborted);
}

#[test]
fn canary_that_loses_its_healthy_targets_loses_its_weight() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on green
    w.slot("api", Slot::Green).healthy_targets = 0;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert!(
        w.status("api")
            .events
            .iter()
            .any(|e| e.reason == reason::NO_HEALTHY_TARGETS)
    );
}

#[test]
fn document_reverted_to_stable_mid_rollout_aborts_the_canary() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.app = doc();
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert_eq!(w.status("api").phase, Phase::Aborted);
}

#[test]
fn newer_revision_mid_rollout_moves_traffic_back_before_replacing_the_canary() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on api:2
    w.app = with_image(w.app.clone(), "api", "api:3");
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["register", "update"]);
    let c = w.status("api").canary.clone().unwrap();
    assert_eq!(c.step_index, 0);
}
