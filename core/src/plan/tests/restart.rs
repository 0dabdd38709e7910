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
    // The rollout restarts at step 1 without registering or recreating anything.
    assert!(
        kinds(&p, "api").iter().all(|k| *k == "weights"),
        "{:?}",
        kinds(&p, "api")
    );
}
