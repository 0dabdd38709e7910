//! Header routes (`setHeaderRoute`): testers reach the canary alone before any weight
//! moves; the route holds while the rollout runs, goes at a step without `match`, at
//! promotion and at abort (before the canary scales down), and is never kept on a slot
//! without healthy targets (the World checks that after every pass).

use super::*;

const HEADER_STEPS: &str = r#"
- setHeaderRoute: {name: testers, match: [{headerName: x-canary, headerValue: {exact: "true"}}]}
- pause: {}
- setWeight: 20
- pause: {}
- setHeaderRoute: {name: testers}
- setWeight: 100
"#;

/// A converged world whose api canary has the header steps and a new image, driven to
/// the manual pause after the header route (step 2).
fn at_header_pause() -> World {
    let app = with_steps(doc(), "api", HEADER_STEPS);
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.settle(Duration::from_secs(1), 6);
    w
}

fn header_route(w: &World) -> Option<&crate::observed::ObservedHeaderRoute> {
    w.observed.workloads["api"].header_route.as_ref()
}

fn header_actions(w: &World) -> Vec<&'static str> {
    w.log
        .iter()
        .filter_map(|a| match a {
            Action::SetHeaderRoute { .. } => Some("header"),
            Action::RemoveHeaderRoute { .. } => Some("unheader"),
            _ => None,
        })
        .collect()
}

#[test]
fn header_route_is_created_at_its_step_before_any_weight_moves() {
    let w = at_header_pause();
    let route = header_route(&w).expect("the header route exists");
    assert_eq!(route.name, "testers");
    assert_eq!(route.slot, Some(Slot::Green));
    // Just before the workload's rule (priority 10).
    assert_eq!(route.priority, Some(9));
    assert_eq!(route.matches[0].header_name, "x-canary");
    assert_eq!(route.matches[0].header_value.exact.as_deref(), Some("true"));
    assert_eq!(w.weights("api"), (100, 0), "no weight moved yet");
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1);
    let Some(Action::SetHeaderRoute {
        target_group,
        path_patterns,
        ..
    }) = w
        .log
        .iter()
        .find(|a| matches!(a, Action::SetHeaderRoute { .. }))
    else {
        panic!("no SetHeaderRoute planned");
    };
    assert_eq!(target_group, "tg-api-green");
    assert_eq!(path_patterns, &vec!["/api/*".to_string()]);
}

#[test]
fn header_route_holds_through_weights_and_a_step_without_match_removes_it() {
    let mut w = at_header_pause();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.settle(Duration::from_secs(1), 6);
    // At the second pause: 20% weighted, the testers' route still there.
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 3);
    assert_eq!(w.weights("api"), (80, 20));
    assert!(header_route(&w).is_some());
    // Removed by hand meanwhile: the held route is put back.
    w.observed.workloads.get_mut("api").unwrap().header_route = None;
    w.pass();
    assert!(
        header_route(&w).is_some(),
        "a held header route is put back"
    );
    w.operator("api", OperatorActionKind::Promote, 2);
    w.pass();
    assert!(
        header_route(&w).is_none(),
        "setHeaderRoute without match removes it"
    );
    w.settle(Duration::from_secs(1), 6);
    assert_eq!(w.weights("api"), (0, 100));
    assert!(header_route(&w).is_none());
}

#[test]
fn header_route_is_removed_at_promotion() {
    // No step removes it: promotion does.
    let steps = r#"
- setHeaderRoute: {name: testers, match: [{headerName: x-canary, headerValue: {prefix: "qa-"}}]}
- pause: {}
- setWeight: 100
"#;
    let mut w = World::converged_with(with_steps(doc(), "api", steps));
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.settle(Duration::from_secs(1), 6);
    assert!(header_route(&w).is_some());
    w.operator("api", OperatorActionKind::PromoteFull, 1);
    w.settle(Duration::from_secs(1), 8);
    let s = w.status("api");
    assert!(s.canary.is_none(), "promoted");
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Green));
    assert!(
        header_route(&w).is_none(),
        "promotion removes the header route"
    );
    assert_eq!(header_actions(&w), ["header", "unheader"]);
}

#[test]
fn header_route_is_removed_at_abort_before_the_canary_scales_down() {
    let mut w = at_header_pause();
    w.operator("api", OperatorActionKind::Abort, 1);
    w.settle(Duration::from_secs(10), 20);
    assert!(header_route(&w).is_none());
    assert!(w.status("api").canary.is_none(), "the abort finished");
    let removed = w
        .log
        .iter()
        .position(|a| matches!(a, Action::RemoveHeaderRoute { .. }))
        .expect("the header route was removed");
    let scaled = w
        .log
        .iter()
        .position(|a| {
            matches!(a, Action::UpdateService { service, desired_count: Some(0), .. }
                if service == "api-green")
        })
        .expect("the canary scaled down");
    assert!(
        removed < scaled,
        "the route goes before the canary scales down"
    );
}

#[test]
fn header_route_survives_a_restart() {
    let mut w = at_header_pause();
    // A restarted controller with its status: the route is in the rule and the status's
    // step index says it holds; nothing is planned for it.
    let p = w.pass();
    assert!(
        !kinds(&p, "api")
            .iter()
            .any(|k| *k == "header" || *k == "unheader"),
        "{:?}",
        kinds(&p, "api")
    );
    // And with the status lost: the rollout resumes at the header step, finds its route
    // in place and holds at the pause, never removing it.
    w.status = None;
    w.settle(Duration::from_secs(1), 4);
    assert!(header_route(&w).is_some());
    assert_eq!(header_actions(&w), ["header"]);
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    assert_eq!(w.weights("api"), (100, 0));
}

#[test]
fn header_route_never_stays_on_a_canary_that_lost_its_targets() {
    let mut w = at_header_pause();
    w.tasks_healthy = false;
    w.slot("api", Slot::Green).healthy_targets = 0;
    // The World asserts after the pass that no header route stays on a slot without
    // healthy targets; this pass must remove it.
    w.pass();
    assert!(header_route(&w).is_none());
    // Not put back while the canary has none.
    w.pass();
    assert!(header_route(&w).is_none());
    w.tasks_healthy = true;
    w.slot("api", Slot::Green).healthy_targets = 2;
    w.settle(Duration::from_secs(1), 4);
    assert!(
        header_route(&w).is_some(),
        "back once the canary is healthy"
    );
}
