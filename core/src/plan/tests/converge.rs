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

/// Every content hash the platform holds has exactly one revision, and there is one
/// hash per rendered definition (api, ml, worker, plus `extra` new ones).
fn assert_one_revision_per_hash(w: &World, extra: usize) {
    assert_eq!(w.revisions.len(), 3 + extra, "{:?}", w.revisions);
    for (hash, n) in &w.revisions {
        assert_eq!(*n, 1, "{hash} has {n} revisions");
    }
}

#[test]
fn unchanged_definition_is_never_registered_twice() {
    let mut w = World::converged();
    assert_one_revision_per_hash(&w, 0);
    // Status lost (e.g. a fresh controller): the definitions exist, so none is registered.
    w.status = None;
    let p = w.pass();
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    assert_one_revision_per_hash(&w, 0);
}

/// The observation may not list the definitions after a restart (AWS lists them per
/// family, eventually). A controller that crashes right after registering, three times,
/// each time restarting without status and with an observation that lists no
/// definitions, is asked to register again each time; the platform's content-hash
/// lookup answers with the existing revision, so no hash gets a second one.
#[test]
fn a_forgetful_observation_never_creates_a_second_revision_of_a_hash() {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.app = with_image(w.app.clone(), "worker", "worker:2");
    for _ in 0..3 {
        let p = w.plan_only();
        let registers: Vec<&Action> = p
            .actions
            .iter()
            .map(|a| &a.action)
            .filter(|a| matches!(a, Action::RegisterTaskDefinition { .. }))
            .collect();
        assert_eq!(registers.len(), 2, "api and worker: {registers:#?}");
        for a in registers {
            w.apply(a); // then the controller crashes
        }
        w.forget();
        w.status = None;
    }
    for _ in 0..10 {
        w.forget();
        w.pass();
        w.now = w.now.plus(Duration::from_secs(61));
        if !w.live_runs("api").is_empty() {
            w.finish_analysis("api", AnalysisPhase::Succeeded);
        }
    }
    assert_eq!(w.status("worker").phase, Phase::Healthy);
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 4);
    assert_one_revision_per_hash(&w, 2);
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
