//! The rollout-safety promises, one named regression test each (issue 7, part 2).
//!
//! Each of these failed on the planner before the fix named in its doc comment.

use super::*;
use crate::status::Revision;

/// The api canary with steps `setWeight 60, pause {}, setWeight 100`, waiting at the
/// manual pause with green 60 / blue 40.
pub(super) fn canary_at_manual_pause_60() -> World {
    let app = with_steps(
        doc(),
        "api",
        "[{setWeight: 60}, {pause: {}}, {setWeight: 100}]",
    );
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass(); // green created
    w.pass(); // 40/60
    w.pass(); // verified, at the pause
    assert_eq!(w.weights("api"), (40, 60));
    assert_eq!(w.status("api").phase, Phase::Paused);
    w
}

/// Reproduced with `tugboat diff --observed`: after a restart without status, the slot
/// with more weight was taken as stable, so the pause was skipped (SetWeights 0/100) and
/// the old slot scaled down in the same pass while it carried 40%.
#[test]
fn lost_status_at_a_manual_pause_neither_promotes_nor_scales_down() {
    let mut w = canary_at_manual_pause_60();
    let blue_hash = w.status("api").stable.clone().unwrap().hash;
    w.status = None;
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    let s = w.status("api");
    assert_eq!(
        s.stable,
        Some(Revision {
            slot: Some(Slot::Blue),
            hash: blue_hash
        })
    );
    let c = s.canary.as_ref().expect("the rollout is resumed");
    assert_eq!((c.slot, c.step_index), (Slot::Green, 1), "at the pause");
    assert_eq!(s.phase, Phase::Paused, "{}", s.message);
    assert_eq!(
        w.events("api", reason::DRIFTED),
        0,
        "a lost status is not drift"
    );
    // Still waits for the operator, and only then shifts.
    w.now = w.now.plus(Duration::from_secs(3600));
    assert!(kinds(&w.pass(), "api").is_empty());
    w.operator("api", OperatorActionKind::Promote, 1);
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

/// Reproduced with `tugboat diff --observed`: an abort while the stable slot had no
/// healthy targets planned `SetWeights blue 100` onto it.
#[test]
fn operator_abort_never_moves_weight_onto_a_stable_slot_without_healthy_targets() {
    let (mut w, _) = canary_started();
    w.pass(); // 80/20
    w.pass(); // verified
    w.slot("api", Slot::Blue).healthy_targets = 0;
    w.operator("api", OperatorActionKind::Abort, 1);
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    assert_eq!(
        w.weights("api"),
        (80, 20),
        "weight stays where healthy targets are"
    );
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted);
    let blocked = s.condition("Blocked").expect("a Blocked condition");
    assert!(blocked.status);
    assert_eq!(blocked.reason, reason::NO_HEALTHY_TARGETS);
    assert!(
        blocked.message.contains("blue slot has no healthy targets"),
        "{}",
        blocked.message
    );
    // The stable slot recovers: weight goes back, the condition clears.
    w.slot("api", Slot::Blue).healthy_targets = 2;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    w.pass();
    assert!(!w.status("api").condition("Blocked").unwrap().status);
}

/// Without status, a canary weight that no `setWeight` step sets cannot be placed in the
/// step list: the rollout holds there and says so (the old planner restarted at step 1
/// and moved the weight from 35% to 20%).
#[test]
fn lost_status_at_a_weight_no_step_sets_holds_and_says_so() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on green
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 65), (Slot::Green, 35)]);
    w.status = None;
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert!(s.message.contains("35%"), "{}", s.message);
    assert!(s.message.contains("`resume`"), "{}", s.message);
    assert_eq!(w.weights("api"), (65, 35));
}

/// Without status, with both slots carrying weight and neither running the document's
/// revision, nothing tells which is stable: nothing moves (the old planner took the
/// heavier as stable and replaced the other one's tasks while it carried traffic).
#[test]
fn lost_status_with_weight_on_two_old_revisions_changes_nothing() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20, green runs api:2
    w.app = with_image(w.app.clone(), "api", "api:3");
    w.status = None;
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Blocked);
    assert!(s.message.contains("neither"), "{}", s.message);
    assert!(s.stable.is_none(), "no guess is remembered");
}

/// Status lost at 100/0 right after the full shift, before the old slot scaled down: the
/// read-back of 0 is this pass, so the old slot keeps its tasks through the delay (the
/// old planner scaled it down at once and called it drift).
#[test]
fn lost_status_after_the_full_shift_scales_the_old_slot_down_only_after_the_delay() {
    let mut w = canary_past_analysis();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.pass(); // 0/100
    w.status = None;
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    assert_eq!(w.events("api", reason::DRIFTED), 0);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    w.now = w.now.plus(Duration::from_secs(30));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-blue"));
}

/// A scheduled scale-down falls due while the old slot carries weight again (moved by
/// hand): the weight moves back first, and the slot scales down only a full delay after
/// the rule reads 0 on it (the old planner did both in one pass).
#[test]
fn old_slot_carrying_weight_is_not_scaled_down_in_the_pass_that_moves_its_weight() {
    let mut w = canary_past_analysis();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.pass(); // 0/100
    w.pass(); // promoted; blue scales down in 30s
    w.now = w.now.plus(Duration::from_secs(30));
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 40), (Slot::Green, 60)]);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
    w.now = w.now.plus(Duration::from_secs(10)); // the load balancer took its time
    let p = w.pass(); // reads back 0 on blue: the delay starts now
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    w.now = w.now.plus(Duration::from_secs(29));
    assert!(kinds(&w.pass(), "api").is_empty());
    w.now = w.now.plus(Duration::from_secs(1));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-blue"));
}

/// The "idle slot runs no tasks at rest" correction: an idle slot given tasks and weight
/// by hand loses its weight first, and its tasks only after the delay.
#[test]
fn idle_slot_carrying_weight_is_not_scaled_down_in_the_pass_that_moves_its_weight() {
    let mut w = World::converged();
    let mut idle = w.slot("api", Slot::Blue).clone();
    idle.name = "api-green".into();
    w.observed
        .workloads
        .get_mut("api")
        .unwrap()
        .slots
        .insert(Slot::Green, idle);
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 70), (Slot::Green, 30)]);
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
    assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
    w.now = w.now.plus(Duration::from_secs(30));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-green"));
}

/// `desiredCount: 0` on a canary workload (validation rejects it; the planner must not
/// rely on that): the stable slot is not scaled to 0 while it carries all traffic, and
/// the empty canary never gets weight (the old planner's health check was trivially
/// true for 0 tasks).
#[test]
fn a_slot_with_no_tasks_never_gets_weight_and_the_stable_slot_is_not_emptied() {
    let mut w = World::converged();
    workload_mut(&mut w.app, "api").desired_count = 0;
    w.app = with_image(w.app.clone(), "api", "api:2");
    for _ in 0..4 {
        let p = w.plan_only();
        for a in actions_of(&p, "api") {
            match a {
                Action::SetWeights { green, .. } => assert_eq!(*green, 0, "{a:?}"),
                Action::UpdateService {
                    service,
                    desired_count: Some(0),
                    ..
                } => assert_ne!(service, "api-blue", "stable slot emptied"),
                _ => {}
            }
        }
        w.pass();
        w.now = w.now.plus(Duration::from_secs(10));
    }
    assert_eq!(w.weights("api"), (100, 0));
    assert!(
        w.status("api")
            .condition("Blocked")
            .is_some_and(|c| c.status),
        "{}",
        w.status("api").message
    );
}

/// The api workload with a model, converged, with a canary of api:2 at 20%.
pub(super) fn model_canary_at_20() -> World {
    let mut app = doc();
    workload_mut(&mut app, "api").model = Some("clf".into());
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    w.pass();
    w.pass();
    assert_eq!(w.weights("api"), (80, 20));
    w
}

pub(super) fn model_fails(w: &mut World) {
    w.observed.models.insert(
        "clf".into(),
        ModelResolution::Failed("sha256 mismatch".into()),
    );
}

/// A workload blocked by its model mid-rollout still honours an operator abort (the old
/// planner returned early and did nothing).
#[test]
fn blocked_workload_still_honours_an_operator_abort() {
    let mut w = model_canary_at_20();
    model_fails(&mut w);
    w.operator("api", OperatorActionKind::Abort, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert_eq!(w.status("api").phase, Phase::Blocked);
    assert_eq!(w.events("api", reason::OPERATOR_ABORT), 1);
    w.pass(); // weight verified
    w.now = w.now.plus(Duration::from_secs(20));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-green"));
}

/// A blocked workload's canary that loses its healthy targets loses its weight.
#[test]
fn blocked_workload_still_moves_weight_off_a_canary_without_healthy_targets() {
    let mut w = model_canary_at_20();
    model_fails(&mut w);
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
    assert_eq!(w.events("api", reason::NO_HEALTHY_TARGETS), 1);
}

/// A blocked workload's canary that never becomes healthy is aborted at its deadline.
#[test]
fn blocked_workload_still_aborts_at_the_progress_deadline() {
    let mut app = doc();
    workload_mut(&mut app, "api").model = Some("clf".into());
    let mut w = World::converged_with(app);
    w.tasks_healthy = false;
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    model_fails(&mut w);
    w.now = w.now.plus(Duration::from_secs(300));
    w.pass();
    assert_eq!(w.events("api", reason::PROGRESS_DEADLINE_EXCEEDED), 1);
    assert!(
        w.status("api")
            .canary
            .as_ref()
            .is_some_and(|c| c.aborted.is_some())
    );
}

/// A service tugboat does not own appearing mid-rollout blocks the workload, but an
/// abort still returns the weight (tugboat's own rule), and nothing touches the
/// unowned service.
#[test]
fn blocked_by_an_unowned_service_mid_rollout_still_returns_weight_on_abort() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    w.slot("api", Slot::Green).owned = false;
    w.operator("api", OperatorActionKind::Abort, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "the unowned canary is not scaled down"
    );
    assert_eq!(w.status("api").phase, Phase::Blocked);
}

/// A rule that forwards to a third target group (or has an extra condition) is
/// rewritten whole with the weights in force, and the drift is recorded once.
#[test]
fn rule_holding_more_than_two_target_groups_is_rewritten_and_drift_recorded_once() {
    let mut w = World::converged();
    w.rule("api").unexpected = vec!["forwards to a third target group tg-x".into()];
    for _ in 0..2 {
        let p = w.plan_only();
        assert!(matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights {
                blue: 100,
                green: 0,
                ..
            }]
        ));
        w.status = Some(p.status);
    }
    assert_eq!(w.events("api", reason::DRIFTED), 1);
    assert!(
        w.status("api")
            .condition(reason::DRIFTED)
            .unwrap()
            .message
            .contains("tg-x")
    );
    w.pass();
    assert!(w.pass().actions.is_empty());
}

/// A weight correction the planner itself is making is not drift again on the next pass
/// while the load balancer has not caught up.
#[test]
fn a_weight_correction_in_flight_is_not_recorded_as_drift_again() {
    let mut w = World::converged();
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 60), (Slot::Green, 40)]);
    for _ in 0..3 {
        let p = w.plan_only();
        assert_eq!(kinds(&p, "api"), ["weights"]);
        w.status = Some(p.status);
    }
    assert_eq!(w.events("api", reason::DRIFTED), 1);
}

/// Status messages name what to write, not commands that do not exist yet.
#[test]
fn status_messages_name_the_ssm_parameter_to_write() {
    let mut w = canary_at_manual_pause_60();
    let m = w.status("api").message.clone();
    assert!(
        m.contains("write `promote` to the SSM parameter /tugboat/test/shop/api/action"),
        "{m}"
    );
    w.operator("api", OperatorActionKind::Abort, 1);
    w.settle(Duration::from_secs(30), 10);
    let m = w.status("api").message.clone();
    assert!(m.contains("write `retry` to the SSM parameter"), "{m}");
    for s in w.status.as_ref().unwrap().workloads.values() {
        assert!(!s.message.contains("run `tugboat"), "{}", s.message);
    }
}

#[test]
fn operator_hint_names_the_ssm_parameter_or_the_local_file() {
    let app = doc();
    assert_eq!(
        operator_hint(&app, "api", "promote"),
        "write `promote` to the SSM parameter /tugboat/test/shop/api/action"
    );
    let mut prefixed = doc();
    prefixed.spec.overrides = Some(crate::document::Overrides {
        ssm_prefix: "/ops/shop/".into(),
    });
    assert_eq!(
        operator_hint(&prefixed, "api", "abort"),
        "write `abort` to the SSM parameter /ops/shop/api/action"
    );
    let mut local = doc();
    local.spec.platform = crate::document::Platform::Local(crate::document::LocalPlatform {
        listen: "127.0.0.1:8080".into(),
        state_dir: None,
    });
    assert_eq!(
        operator_hint(&local, "api", "resume"),
        "write `resume` to the file .tugboat/overrides/api/action"
    );
}

/// Target health can lag behind the tasks (a cached or stale read): a canary whose
/// tasks are gone gets no weight even while its target group still reports healthy
/// targets.
#[test]
fn a_canary_with_healthy_targets_but_no_running_tasks_gets_no_weight() {
    let (mut w, _) = canary_started();
    let green = w.slot("api", Slot::Green);
    green.running_count = 0;
    green.healthy_targets = 2;
    for _ in 0..3 {
        let p = w.pass();
        assert!(kinds(&p, "api").is_empty(), "{:#?}", actions_of(&p, "api"));
        w.now = w.now.plus(Duration::from_secs(5));
    }
    assert_eq!(w.weights("api"), (100, 0));
}

/// Without status, a stable slot running a definition tugboat did not register has no
/// known hash: the resumed rollout leaves that service alone instead of pointing it at
/// a definition named "unknown" (the old planner did).
#[test]
fn lost_status_never_points_the_stable_slot_at_an_unknown_definition() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on green
    w.slot("api", Slot::Blue).content_hash = None;
    w.status = None;
    let p = w.pass();
    for a in actions_of(&p, "api") {
        assert!(
            !matches!(a, Action::UpdateService { service, .. } if service == "api-blue"),
            "{a:?}"
        );
    }
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
}
