//! Blocked workloads: an unresolved model or a resource tugboat does not own.

use super::*;

#[test]
fn unresolved_model_blocks_the_workload_and_nothing_else() {
    let mut w = World::new(doc());
    w.observed.models.insert(
        "clf".into(),
        ModelResolution::Failed("sha256 mismatch".into()),
    );
    let p = w.pass();
    assert!(kinds(&p, "ml").is_empty());
    assert!(!kinds(&p, "api").is_empty());
    let s = w.status("ml");
    assert_eq!(s.phase, Phase::Blocked);
    assert!(s.message.contains("sha256 mismatch"));
}

#[test]
fn service_not_created_by_tugboat_is_never_changed() {
    let mut w = World::new(doc());
    w.observed.workloads.insert(
        "worker".into(),
        ObservedWorkload {
            service: Some(ObservedService {
                name: "worker".into(),
                owned: false,
                desired_count: 1,
                running_count: 1,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let p = w.pass();
    assert!(kinds(&p, "worker").is_empty());
    assert_eq!(w.status("worker").phase, Phase::Blocked);
    assert!(
        w.status("worker")
            .message
            .contains("not created by tugboat")
    );
}
