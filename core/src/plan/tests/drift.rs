//! Changes made outside tugboat: corrected, and recorded as drift (and only those).

use super::*;

#[test]
fn drift_desired_count_changed_by_hand_is_corrected_and_recorded() {
    let mut w = World::converged();
    w.slot("api", Slot::Blue).desired_count = 7;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::UpdateService {
            desired_count: Some(2),
            content_hash: None,
            ..
        }]
    ));
    let s = w.status("api");
    assert!(s.condition(reason::DRIFTED).unwrap().status);
    assert!(s.events.iter().any(|e| e.reason == reason::DRIFTED));
    // Next pass: converged, the condition clears.
    let p = w.pass();
    assert!(p.actions.is_empty());
    assert!(!w.status("api").condition(reason::DRIFTED).unwrap().status);
}

#[test]
fn scale_change_in_the_document_is_applied_without_calling_it_drift() {
    let mut w = World::converged();
    let api = w
        .app
        .spec
        .workloads
        .iter_mut()
        .find(|x| x.name == "api")
        .unwrap();
    api.desired_count = 5;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::UpdateService {
            desired_count: Some(5),
            content_hash: None,
            ..
        }]
    ));
    assert!(w.status("api").condition(reason::DRIFTED).is_none());
    w.pass();
    assert_eq!(w.status("api").converged_count, Some(5));
}

#[test]
fn drift_rule_weights_changed_by_hand_are_corrected() {
    let mut w = World::converged();
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 60), (Slot::Green, 40)]);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert!(w.status("api").condition(reason::DRIFTED).unwrap().status);
}

#[test]
fn rule_priority_changed_in_the_document_moves_the_rule() {
    let mut w = World::converged();
    let api = w
        .app
        .spec
        .workloads
        .iter_mut()
        .find(|x| x.name == "api")
        .unwrap();
    api.route.as_mut().unwrap().priority = 15;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            priority: 15,
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert!(w.pass().actions.is_empty());
}

#[test]
fn rule_paths_changed_by_hand_are_drift() {
    let mut w = World::converged();
    w.rule("api").path_patterns = vec!["/other/*".into()];
    let p = w.pass();
    assert!(matches!(&actions_of(&p, "api")[..],
        [Action::SetWeights { path_patterns, .. }] if path_patterns == &["/api/*"]));
    assert!(w.status("api").condition(reason::DRIFTED).unwrap().status);
}

#[test]
fn drift_task_definition_changed_by_hand_is_reverted() {
    let mut w = World::converged();
    let good = w.slot("api", Slot::Blue).content_hash.clone();
    w.slot("api", Slot::Blue).content_hash = None; // a definition tugboat did not register
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { content_hash: Some(h), .. }] if Some(h) == good.as_ref()));
}

#[test]
fn drift_idle_slot_scaled_up_by_hand_is_scaled_down() {
    let mut w = World::converged();
    let mut idle = w.slot("api", Slot::Blue).clone();
    idle.name = "api-green".into();
    w.observed
        .workloads
        .get_mut("api")
        .unwrap()
        .slots
        .insert(Slot::Green, idle);
    // The rule reads 0 on the idle slot now: its scale-down delay starts here.
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:?}", kinds(&p, "api"));
    assert!(w.status("api").condition(reason::DRIFTED).unwrap().status);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    w.now = w.now.plus(Duration::from_secs(30));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-green"));
}

#[test]
fn drift_on_rolling_service_is_corrected() {
    let mut w = World::converged();
    w.service("worker").desired_count = 1;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "worker")[..],
        [Action::UpdateService {
            desired_count: Some(3),
            ..
        }]
    ));
    assert!(
        w.status("worker")
            .condition(reason::DRIFTED)
            .unwrap()
            .status
    );
}
