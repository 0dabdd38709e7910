//! Canary rollouts: health first, each weight verified, pauses, analysis, promotion.

use super::*;

#[test]
fn canary_deploys_the_new_revision_to_the_idle_slot_at_full_size() {
    let (w, p) = canary_started();
    assert_eq!(kinds(&p, "api"), ["register", "create"]);
    assert!(matches!(actions_of(&p, "api")[1],
        Action::CreateService { slot: Some(Slot::Green), desired_count: 2, target_group: Some(tg), .. } if tg == "tg-api-green"));
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Progressing);
    assert_eq!(s.canary.as_ref().unwrap().slot, Slot::Green);
    assert!(s.events.iter().any(|e| e.reason == reason::ROLLOUT_STARTED));
}

#[test]
fn canary_gets_no_weight_before_its_targets_are_healthy() {
    let mut w = World::converged();
    w.tasks_healthy = false;
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    for _ in 0..3 {
        w.now = w.now.plus(Duration::from_secs(10));
        let p = w.pass();
        assert!(kinds(&p, "api").is_empty(), "{:?}", kinds(&p, "api"));
    }
    assert_eq!(w.weights("api"), (100, 0));
    assert!(
        w.status("api").message.contains("0/2 healthy"),
        "{}",
        w.status("api").message
    );
}

#[test]
fn canary_set_weight_is_verified_before_the_next_step() {
    let (mut w, _) = canary_started();
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 80,
            green: 20,
            ..
        }]
    ));
    let s = w.status("api");
    assert_eq!(s.desired_weight, Some(20));
    assert_eq!(
        s.canary.as_ref().unwrap().step_index,
        0,
        "not advanced until read back"
    );
    w.pass();
    let s = w.status("api");
    assert_eq!(s.verified_weight, Some(20));
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1);
}

#[test]
fn canary_weight_not_read_back_is_set_again_and_step_holds() {
    let (mut w, _) = canary_started();
    w.pass(); // SetWeights 80/20 applied
    // The load balancer shows something else (propagation, or someone else's change).
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 100), (Slot::Green, 0)]);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 20, .. }]
    ));
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 0);
}

#[test]
fn canary_timed_pause_waits_its_duration_then_advances() {
    let (mut w, _) = canary_started();
    w.pass();
    let p = w.pass(); // weight verified; now in the 1m pause
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(60)));
    w.now = w.now.plus(Duration::from_secs(59));
    w.pass();
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    w.now = w.now.plus(Duration::from_secs(1));
    let p = w.pass();
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 2);
    assert_eq!(kinds(&p, "api"), ["analysis"]);
}

#[test]
fn analysis_step_starts_a_run_waits_and_advances_on_success() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::StartAnalysis { step_index: 2, .. }]
    ));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "running analysis is not started twice"
    );
    w.finish_analysis("api", AnalysisPhase::Succeeded);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn analysis_failure_aborts_and_returns_weight_to_stable() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisPhase::Failed);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted);
    assert!(s.events.iter().any(|e| e.reason == reason::ANALYSIS_FAILED));
}

#[test]
fn analysis_inconclusive_pauses_for_an_operator() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisPhase::Inconclusive);
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    assert_eq!(w.status("api").phase, Phase::Paused);
    w.operator("api", OperatorActionKind::Promote, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn indefinite_pause_waits_for_promote_and_promote_acts_once() {
    let mut w = canary_past_analysis();
    w.pass(); // setWeight 50
    w.pass(); // verified; at pause {}
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert_eq!(s.canary.as_ref().unwrap().step_index, 4);
    w.now = w.now.plus(Duration::from_secs(86_400));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "an indefinite pause never times out"
    );
    w.operator("api", OperatorActionKind::Promote, 7);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
    assert_eq!(w.status("api").handled_action_version, 7);
}

#[test]
fn full_shift_is_verified_then_old_slot_scales_down_after_delay() {
    let mut w = canary_past_analysis();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.pass(); // SetWeights 0/100
    let p = w.pass(); // verified: promotion
    assert!(kinds(&p, "api").is_empty());
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Healthy);
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Green));
    assert!(s.canary.is_none());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    // Old slot keeps its tasks during the delay.
    w.now = w.now.plus(Duration::from_secs(29));
    assert!(kinds(&w.pass(), "api").is_empty());
    w.now = w.now.plus(Duration::from_secs(1));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-blue"));
    let p = w.pass();
    assert!(p.actions.is_empty());
    assert!(w.status("api").scale_down.is_none());
    assert!(
        w.status("api")
            .events
            .iter()
            .any(|e| e.reason == reason::SCALED_DOWN)
    );
}

#[test]
fn next_rollout_after_promotion_goes_back_to_the_blue_slot() {
    let mut w = canary_past_analysis();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.settle(Duration::from_secs(31), 10);
    w.app = with_image(w.app.clone(), "api", "api:3");
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::RegisterTaskDefinition { .. }, Action::UpdateService { service, desired_count: Some(2), .. }] if service == "api-blue"));
}
