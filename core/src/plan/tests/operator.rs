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

fn pin(w: &mut World, weight: u32, expires: Option<Timestamp>) {
    w.observed
        .overrides
        .entry("api".into())
        .or_default()
        .weight_pin = Some(WeightPin {
        weight,
        reason: Some("INC-7".into()),
        expires,
    });
}

fn unpin(w: &mut World) {
    w.observed
        .overrides
        .entry("api".into())
        .or_default()
        .weight_pin = None;
}

/// The api canary at its `pause: {duration: 1m}` step with 20%, `elapsed` into it.
fn at_timed_pause(elapsed: Duration) -> World {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    w.now = w.now.plus(elapsed);
    w.pass();
    w
}

#[test]
fn a_pin_holds_every_timer_and_step() {
    // 40s into a 1m pause; pinned at the same 20% for 10 minutes of wall time.
    let mut w = at_timed_pause(Duration::from_secs(40));
    pin(&mut w, 20, None);
    w.pass();
    for _ in 0..10 {
        w.now = w.now.plus(Duration::from_secs(60));
        let p = w.pass();
        assert!(kinds(&p, "api").is_empty(), "held: {:?}", kinds(&p, "api"));
        let s = w.status("api");
        assert_eq!(s.canary.as_ref().unwrap().step_index, 1, "no step advances");
        assert_eq!(s.phase, Phase::Paused);
        assert_eq!(
            s.pin.as_ref().map(|p| p.weight),
            Some(20),
            "the pin is in the status"
        );
    }
    // Cleared: the pause has the 20s it had left, not zero and not a fresh minute.
    unpin(&mut w);
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty(), "{:?}", kinds(&p, "api"));
    let s = w.status("api");
    assert_eq!(
        s.canary.as_ref().unwrap().step_index,
        1,
        "still in the pause"
    );
    assert!(s.pin.is_none());
    assert_eq!(w.events("api", reason::PIN_RELEASED), 1);
    w.now = w.now.plus(Duration::from_secs(15));
    w.pass();
    assert_eq!(
        w.status("api").canary.as_ref().unwrap().step_index,
        1,
        "15s of 20s left"
    );
    w.now = w.now.plus(Duration::from_secs(6));
    w.pass();
    assert!(
        w.status("api").canary.as_ref().unwrap().step_index >= 2,
        "the pause ended 20s after the pin did"
    );
}

#[test]
fn a_pin_expiring_resumes_at_the_same_step() {
    // A pin at 0% with an expiry, over a pause that would have ended long before.
    let mut w = at_timed_pause(Duration::from_secs(10));
    let expires = w.now.plus(Duration::from_secs(600));
    pin(&mut w, 0, Some(expires));
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 0, .. }]
    ));
    w.now = w.now.plus(Duration::from_secs(300));
    w.pass();
    assert_eq!(w.weights("api"), (100, 0));
    assert_eq!(
        w.status("api").pin.as_ref().and_then(|p| p.until),
        Some(expires)
    );
    // Expired (the value is still in the inbox): the step's weight comes back and the
    // rollout is at the same step, its pause counted again from the read-back.
    w.now = expires;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 20, .. }]
    ));
    assert!(
        w.status("api").pin.is_none(),
        "an expired pin is not in force"
    );
    w.pass();
    let s = w.status("api");
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1, "the same step");
    assert_eq!(s.phase, Phase::Progressing);
    assert_eq!(w.weights("api"), (80, 20));
}

#[test]
fn a_pin_never_puts_weight_on_a_slot_without_healthy_targets() {
    let mut w = at_timed_pause(Duration::from_secs(10));
    // The canary loses its targets; a pin asks for 50% on it.
    w.tasks_healthy = false;
    w.slot("api", Slot::Green).healthy_targets = 0;
    pin(&mut w, 50, None);
    for _ in 0..3 {
        let p = w.pass();
        assert!(
            !actions_of(&p, "api")
                .iter()
                .any(|a| matches!(a, Action::SetWeights { green, .. } if *green > 0)),
            "no weight onto the unhealthy canary: {:?}",
            actions_of(&p, "api")
        );
        w.now = w.now.plus(Duration::from_secs(5));
    }
    assert_eq!(
        w.weights("api").1,
        0,
        "weight went off the unhealthy canary"
    );
    // And a pin at 0% never moves weight onto a stable slot without targets.
    let mut w = at_timed_pause(Duration::from_secs(10));
    w.slot("api", Slot::Blue).healthy_targets = 0;
    pin(&mut w, 0, None);
    for _ in 0..3 {
        let p = w.pass();
        assert!(
            !actions_of(&p, "api")
                .iter()
                .any(|a| matches!(a, Action::SetWeights { blue, .. } if *blue > 80)),
            "no weight onto the stable slot without targets: {:?}",
            actions_of(&p, "api")
        );
    }
}

#[test]
fn promote_full_skips_every_step_but_still_verifies_the_weight() {
    let mut w = at_timed_pause(Duration::from_secs(10));
    w.operator("api", OperatorActionKind::PromoteFull, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 100, .. }]
    ));
    assert!(
        w.status("api").canary.is_some(),
        "not promoted before the read-back"
    );
    w.pass();
    let s = w.status("api");
    assert!(s.canary.is_none());
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Green));
    assert_eq!(w.events("api", reason::ANALYSIS_FAILED), 0);
}
