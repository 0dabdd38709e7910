//! Found end to end against moto with the real binary and the AWS CLI (issue 7's
//! acceptance run): a rollout that waited a whole resync for every read-back, weights
//! edited by hand mid-rollout that were restored without a word, a `Drifted` condition
//! that stayed true after the correction, and a weight override that did not parse and
//! let the canary be promoted.

use super::*;

/// The DOC's canary at its 1m pause, 20% on green, read back.
fn at_the_timed_pause() -> World {
    let (mut w, _) = canary_started();
    w.pass(); // setWeight 20 requested
    w.pass(); // read back: the 1m pause starts
    assert_eq!(w.weights("api"), (80, 20));
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    w
}

#[test]
fn a_weight_request_asks_for_an_early_look_to_read_it_back() {
    let (mut w, _) = canary_started();
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 20, .. }]
    ));
    let next = p.requeue_after.expect("a next look is asked for");
    assert!(
        next <= POLL_WHILE_WAITING,
        "the read-back waits {next:?}, not a resync"
    );
}

#[test]
fn a_weight_changed_by_hand_mid_rollout_is_drift_and_the_condition_ends_once_corrected() {
    let mut w = at_the_timed_pause();
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 50), (Slot::Green, 50)]);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 80,
            green: 20,
            ..
        }]
    ));
    let drifted = w
        .status("api")
        .condition(reason::DRIFTED)
        .expect("the hand edit is reported");
    assert!(drifted.status, "{drifted:?}");
    assert!(
        drifted.message.contains("blue 50 / green 50"),
        "{drifted:?}"
    );
    assert_eq!(w.events("api", reason::DRIFTED), 1);

    // The correction is read back: the condition ends, with no new event.
    w.pass();
    assert_eq!(w.weights("api"), (80, 20));
    assert!(!w.status("api").condition(reason::DRIFTED).unwrap().status);
    assert_eq!(w.events("api", reason::DRIFTED), 1);
}

#[test]
fn the_planner_moving_its_own_weight_is_not_drift() {
    let (mut w, _) = canary_started();
    for _ in 0..3 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(61));
    }
    assert_eq!(w.events("api", reason::DRIFTED), 0);
}

#[test]
fn an_unreadable_weight_override_holds_the_rollout_where_it_is() {
    let mut w = at_the_timed_pause();
    w.observed.overrides.insert(
        "api".into(),
        WorkloadOverrides {
            unreadable_weight: Some(
                "SSM parameter /tugboat/test/shop/api/weight: \"O\" is not a number".into(),
            ),
            ..Default::default()
        },
    );
    // Long past the 1m pause and the analysis would be next: nothing moves.
    for _ in 0..3 {
        w.now = w.now.plus(Duration::from_secs(120));
        let p = w.pass();
        assert!(kinds(&p, "api").is_empty(), "{:?}", kinds(&p, "api"));
    }
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert!(s.message.contains("does not parse"), "{}", s.message);
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1);
    assert_eq!(w.weights("api"), (80, 20));

    // Fixed (deleted): the rollout goes on from the step it was at.
    w.observed.overrides.remove("api");
    w.now = w.now.plus(Duration::from_secs(1));
    w.pass();
    assert!(w.status("api").canary.as_ref().unwrap().step_index >= 2);
}

#[test]
fn an_unreadable_weight_override_does_not_stop_weight_leaving_an_unhealthy_canary() {
    let mut w = at_the_timed_pause();
    w.observed.overrides.insert(
        "api".into(),
        WorkloadOverrides {
            unreadable_weight: Some("weight: \"x\" is not a number".into()),
            ..Default::default()
        },
    );
    w.slot("api", Slot::Green).healthy_targets = 0;
    let p = w.pass();
    assert!(
        matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights {
                blue: 100,
                green: 0,
                ..
            }]
        ),
        "{:?}",
        kinds(&p, "api")
    );
}
