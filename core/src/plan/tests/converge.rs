//! First deployment, convergence, and the planner's purity.

use super::*;

#[test]
fn first_deployment_creates_blue_slot_without_weight_until_healthy() {
    let mut w = World::new(doc());
    w.tasks_healthy = false;
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["register", "create"]);
    assert!(matches!(actions_of(&p, "api")[1],
        Action::CreateService { slot: Some(Slot::Blue), desired_count: 2, target_group: Some(tg), .. } if tg == "tg-api-blue"));
    // Tasks not healthy yet: no rule is touched.
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    assert_eq!(w.status("api").phase, Phase::Pending);
    assert!(p.requeue_after.is_some());
}

#[test]
fn first_deployment_routes_all_traffic_once_targets_are_healthy() {
    let mut w = World::new(doc());
    w.pass();
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["weights"]);
    assert_eq!(w.weights("api"), (100, 0));
    w.pass();
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Healthy);
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Blue));
}

#[test]
fn converged_application_plans_no_actions() {
    let mut w = World::converged();
    let p = w.pass();
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    for name in ["api", "ml", "worker"] {
        assert_eq!(w.status(name).phase, Phase::Healthy, "{name}");
    }
}

#[test]
fn unchanged_definition_is_never_registered_twice() {
    let mut w = World::converged();
    let before = w.registered;
    // Status lost (e.g. a fresh controller): the definitions exist, so none is registered.
    w.status = None;
    let p = w.pass();
    assert_eq!(w.registered, before);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn plan_is_pure_same_inputs_same_plan() {
    let w = World::converged();
    let app = with_image(doc(), "api", "api:2");
    assert_eq!(
        plan(&app, &w.observed, w.status.as_ref(), w.now),
        plan(&app, &w.observed, w.status.as_ref(), w.now)
    );
}
