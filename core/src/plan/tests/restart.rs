//! Restarts: a pass planned without the status the last one persisted.

use super::*;

#[test]
fn lost_status_mid_rollout_keeps_the_slot_with_most_traffic_as_stable() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on green
    w.status = None;
    let p = w.pass();
    let s = w.status("api");
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Blue));
    assert_eq!(s.canary.as_ref().unwrap().slot, Slot::Green);
    // The rollout resumes at the step after its setWeight 20 (the timed pause, timer
    // restarted), registering, recreating and moving nothing. Counted exactly: an
    // `all(..)` over an empty plan would be true whatever the planner did.
    assert_eq!(kinds(&p, "api"), Vec::<&str>::new());
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1);
    assert_eq!(w.weights("api"), (80, 20));
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert_eq!(
        kinds(&p, "api"),
        ["analysis"],
        "the analysis is not skipped"
    );
}
