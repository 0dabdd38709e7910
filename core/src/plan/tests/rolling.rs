//! Rolling workloads: one service updated in place.

use super::*;

#[test]
fn rolling_first_deployment_creates_one_service() {
    let mut w = World::new(doc());
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["register", "create"]);
    assert!(matches!(actions_of(&p, "worker")[1],
        Action::CreateService { slot: None, service, desired_count: 3, target_group: None, .. } if service == "worker"));
}

#[test]
fn rolling_new_revision_registers_once_and_updates_the_service() {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "worker", "worker:2");
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["register", "update"]);
    assert!(kinds(&p, "api").is_empty(), "other workloads untouched");
    assert_eq!(w.status("worker").phase, Phase::Progressing);
    let p = w.pass();
    assert!(p.actions.is_empty());
    assert_eq!(w.status("worker").phase, Phase::Healthy);
}

#[test]
fn rolling_circuit_breaker_failure_is_not_pushed_again() {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "worker", "worker:bad");
    w.pass();
    // ECS rolled the service back to the old definition and marked the deployment failed.
    let old = w.status("worker").stable.clone().unwrap().hash;
    let svc = w
        .observed
        .workloads
        .get_mut("worker")
        .unwrap()
        .service
        .as_mut()
        .unwrap();
    svc.content_hash = Some(old);
    svc.deployment_failed = true;
    let p = w.pass();
    assert!(kinds(&p, "worker").is_empty());
    assert_eq!(w.status("worker").phase, Phase::Aborted);
    let p = w.pass();
    assert!(
        kinds(&p, "worker").is_empty(),
        "aborted revision is not retried"
    );
    // Retry pushes it again.
    w.service("worker").deployment_failed = false;
    w.operator("worker", OperatorActionKind::Retry, 1);
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["update"]);
}
