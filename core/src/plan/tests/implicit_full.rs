//! A canary whose last `setWeight` is below 100 finishes at 100, as Argo Rollouts' does
//! (issue 11 item 6): the planner walks an explicit final `setWeight: 100`.

use super::*;
use crate::plan::steps::{Step, effective_steps, implicit_full_weight};

#[test]
fn a_last_weight_below_100_gets_a_final_step_at_100() {
    let app = with_steps(
        doc(),
        "api",
        "[{setWeight: 20}, {pause: {duration: 1m}}, {setWeight: 60}]",
    );
    let strategy = &app.workload("api").unwrap().strategy;
    let steps = effective_steps(strategy);
    assert_eq!(steps.len(), 4);
    assert!(matches!(steps.last(), Some(Step::SetWeight(100))));
    let Strategy::Canary(c) = strategy else {
        panic!("canary")
    };
    assert!(implicit_full_weight(c));

    let full = with_steps(doc(), "api", "[{setWeight: 20}, {setWeight: 100}]");
    assert_eq!(
        effective_steps(&full.workload("api").unwrap().strategy).len(),
        2
    );
}

#[test]
fn a_canary_ending_at_60_percent_completes_with_all_traffic_on_the_new_revision() {
    let app = with_steps(
        doc(),
        "api",
        "[{setWeight: 20}, {pause: {duration: 1m}}, {setWeight: 60}]",
    );
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.settle(Duration::from_secs(30), 60);
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Healthy, "{}", s.message);
    assert!(s.canary.is_none());
    assert_eq!(s.stable.as_ref().and_then(|r| r.slot), Some(Slot::Green));
    assert_eq!(w.weights("api"), (0, 100));
}
