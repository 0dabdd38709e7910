//! Blue/green: the preview gets no traffic until promotion, then all of it.

use super::*;

#[test]
fn blue_green_waits_for_promotion_then_shifts_all_traffic_at_once() {
    let mut w = World::converged();
    w.observed.models.insert("clf".into(), model("v2"));
    let p = w.pass();
    assert_eq!(
        kinds(&p, "ml"),
        ["register", "create"],
        "a model change is a new revision"
    );
    w.pass();
    assert_eq!(w.status("ml").phase, Phase::Paused);
    assert_eq!(
        w.weights("ml"),
        (100, 0),
        "preview gets no traffic before promotion"
    );
    w.operator("ml", OperatorActionKind::Promote, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "ml")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
    w.pass();
    assert_eq!(w.status("ml").phase, Phase::Healthy);
    assert_eq!(w.status("ml").scale_down.as_ref().unwrap().slot, Slot::Blue);
}

#[test]
fn blue_green_with_auto_promotion_needs_no_operator() {
    let mut app = doc();
    let ml = app
        .spec
        .workloads
        .iter_mut()
        .find(|w| w.name == "ml")
        .unwrap();
    if let Strategy::BlueGreen(b) = &mut ml.strategy {
        b.auto_promotion_enabled = true;
    }
    let mut w = World::new(app);
    w.settle(Duration::from_secs(1), 10);
    w.observed.models.insert("clf".into(), model("v2"));
    w.settle(Duration::from_secs(1), 10);
    let s = w.status("ml");
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Green));
    assert_eq!(w.weights("ml"), (0, 100));
}
