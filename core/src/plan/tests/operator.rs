//! Operator overrides: weight pins, pause and resume.

use super::*;

#[test]
fn weight_pin_beats_the_steps_while_in_force() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // at the 1m pause with 20%
    w.observed.overrides.insert(
        "api".into(),
        WorkloadOverrides {
            weight_pin: Some(WeightPin {
                weight: 0,
                reason: Some("incident 42".into()),
                expires: Some(w.now.plus(Duration::from_secs(600))),
            }),
            action: None,
            ..Default::default()
        },
    );
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 0, .. }]
    ));
    w.now = w.now.plus(Duration::from_secs(120));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "pinned: the pause does not advance"
    );
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert!(s.message.contains("incident 42"));
    // Expired pin: steps resume where they were.
    w.now = w.now.plus(Duration::from_secs(600));
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["weights"]);
}

#[test]
fn operator_pause_and_resume() {
    let (mut w, _) = canary_started();
    w.operator("api", OperatorActionKind::Pause, 1);
    w.pass();
    w.pass();
    assert_eq!(w.status("api").phase, Phase::Paused);
    assert_eq!(w.weights("api"), (100, 0), "paused before the first weight");
    w.operator("api", OperatorActionKind::Resume, 2);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 20, .. }]
    ));
}
