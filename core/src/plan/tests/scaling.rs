//! Application Auto Scaling and the planner: the scaler's count is not drift, the
//! canary follows the stable's count, no slot with weight is scaled down by tugboat (the
//! World checks every UpdateService of a scaled workload for it), and the scalable
//! target moves with the stable slot.

use super::*;
use crate::document::AutoScaling;

fn range(min: u32, max: u32) -> AutoScaling {
    serde_json::from_value(serde_json::json!({
        "minCapacity": min, "maxCapacity": max,
        "targetTracking": [{"predefinedMetric": "ECSServiceAverageCPUUtilization", "targetValue": 60.0}]
    }))
    .expect("autoScaling")
}

/// `api` (canary) scaled 2..10 and `worker` (rolling) 1..6.
fn scaled() -> Application {
    let mut app = doc();
    workload_mut(&mut app, "api").auto_scaling = Some(range(2, 10));
    workload_mut(&mut app, "worker").auto_scaling = Some(range(1, 6));
    app
}

/// What the scaler does: the service's desired count, its tasks and its targets move.
fn scaler_sets(svc: &mut ObservedService, n: u32) {
    svc.desired_count = n;
    svc.running_count = n;
    svc.healthy_targets = n;
}

fn scaled_services(w: &World, workload: &str) -> Vec<String> {
    w.observed.workloads[workload]
        .scaling
        .iter()
        .map(|s| s.service.clone())
        .collect()
}

fn updates(plan: &Plan, service: &str) -> Vec<Option<u32>> {
    plan.actions
        .iter()
        .filter_map(|p| match &p.action {
            Action::UpdateService {
                service: s,
                desired_count,
                ..
            } if s == service => Some(*desired_count),
            _ => None,
        })
        .collect()
}

#[test]
fn the_stable_slot_and_the_rolling_service_are_the_scalable_targets() {
    let w = World::converged_with(scaled());
    assert_eq!(scaled_services(&w, "api"), ["api-blue"]);
    assert_eq!(scaled_services(&w, "worker"), ["worker"]);
    assert!(w.plan_only().actions.is_empty(), "in place: nothing to do");
}

#[test]
fn a_count_the_scaler_set_is_not_drift_and_one_outside_the_range_is_brought_in() {
    let mut w = World::converged_with(scaled());
    scaler_sets(w.slot("api", Slot::Blue), 7);
    scaler_sets(w.service("worker"), 5);
    let p = w.pass();
    assert!(p.actions.is_empty(), "{:?}", p.actions);
    assert!(
        w.status("api")
            .condition(reason::DRIFTED)
            .is_none_or(|c| !c.status)
    );
    assert!(
        w.status("worker")
            .condition(reason::DRIFTED)
            .is_none_or(|c| !c.status)
    );
    // By hand beyond maxCapacity: the rolling service is brought back into the range.
    scaler_sets(w.service("worker"), 9);
    let p = w.pass();
    assert_eq!(updates(&p, "worker"), [Some(6)]);
    // Without autoScaling the same count is drift, corrected to desiredCount.
    let mut plain = World::converged();
    scaler_sets(plain.slot("api", Slot::Blue), 7);
    assert_eq!(updates(&plain.pass(), "api-blue"), [Some(2)]);
}

/// The scaler against the planner during a canary: the canary starts at the stable's
/// current count, grows when the scaler grows the stable, and keeps its tasks when the
/// scaler shrinks the stable while the canary carries weight (the World panics on any
/// scale-down of a slot with weight on a scaled workload).
#[test]
fn the_scaler_shrinking_the_stable_never_scales_a_weighted_canary_down() {
    let mut w = World::converged_with(scaled());
    scaler_sets(w.slot("api", Slot::Blue), 6);
    w.pass();
    w.app = with_image(w.app.clone(), "api", "api:2");
    let p = w.pass();
    let created: Vec<u32> = p
        .actions
        .iter()
        .filter_map(|a| match &a.action {
            Action::CreateService {
                service,
                desired_count,
                ..
            } if service == "api-green" => Some(*desired_count),
            _ => None,
        })
        .collect();
    assert_eq!(created, [6], "the canary follows the stable's count");
    w.pass();
    w.pass();
    assert_eq!(w.weights("api"), (80, 20));
    assert_eq!(
        scaled_services(&w, "api"),
        ["api-blue"],
        "the canary is not scaled"
    );

    // The scaler shrinks the stable to 3: the canary (20%) keeps its 6 tasks, the
    // rollout goes on.
    scaler_sets(w.slot("api", Slot::Blue), 3);
    for _ in 0..3 {
        let p = w.pass();
        assert!(
            updates(&p, "api-blue").is_empty(),
            "the stable is the scaler's"
        );
        assert!(updates(&p, "api-green").is_empty(), "{:?}", p.actions);
    }
    assert_eq!(w.slot("api", Slot::Green).desired_count, 6);
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisPhase::Succeeded);
    w.pass();
    w.pass();
    w.pass();
    assert_eq!(w.weights("api"), (50, 50), "{}", w.status("api").message);

    // The scaler grows the stable to 8: the canary follows before more weight moves.
    scaler_sets(w.slot("api", Slot::Blue), 8);
    let p = w.pass();
    assert_eq!(updates(&p, "api-green"), [Some(8)]);
}

/// At promotion the scalable target moves to the new stable slot, and the old slot is
/// deregistered before tugboat scales it down (the scaler would otherwise hold it at
/// minCapacity, or grow it while it has no traffic).
#[test]
fn promotion_moves_the_scalable_target_before_the_old_slot_scales_down() {
    let mut w = World::converged_with(scaled());
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisPhase::Succeeded);
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.log.clear();
    w.settle(Duration::from_secs(10), 20);
    assert_eq!(w.weights("api"), (0, 100));
    assert_eq!(scaled_services(&w, "api"), ["api-green"]);
    let removed = w
        .log
        .iter()
        .position(|a| matches!(a, Action::RemoveScaling { service, .. } if service == "api-blue"))
        .expect("the old slot is deregistered");
    let ensured = w
        .log
        .iter()
        .position(|a| matches!(a, Action::EnsureScaling { service, .. } if service == "api-green"))
        .expect("the new stable is registered");
    let scaled_down = w
        .log
        .iter()
        .position(|a| {
            matches!(a, Action::UpdateService { service, desired_count: Some(0), .. } if service == "api-blue")
        })
        .expect("the old slot scales down");
    assert!(
        removed < scaled_down && ensured < scaled_down,
        "{:?}",
        w.log
    );
}

#[test]
fn removing_auto_scaling_from_the_document_deregisters_the_service() {
    let mut w = World::converged_with(scaled());
    workload_mut(&mut w.app, "worker").auto_scaling = None;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "worker")[..],
        [Action::RemoveScaling { service, .. }] if service == "worker"
    ));
    assert!(scaled_services(&w, "worker").is_empty());
    // A policy changed in the document is put again.
    let mut w = World::converged_with(scaled());
    workload_mut(&mut w.app, "worker")
        .auto_scaling
        .as_mut()
        .expect("scaled")
        .target_tracking[0]
        .target_value = 40.0;
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["scale"]);
    assert!(w.pass().actions.is_empty());
}
