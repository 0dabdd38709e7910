//! Analysis verdicts driving the rollout: the runs live in the status, the World's
//! runner measures what `analysis::due` says, and every pass checks the safety
//! invariants.

use super::*;
use crate::condition::Value;
use crate::document::BackgroundAnalysis;
use crate::status::{AnalysisRunKind, MetricPhase};

fn number(n: f64) -> Answer {
    Answer::Value(Value::Number(n))
}

/// `app` with the `errors` template changed by `edit`.
fn with_template(
    mut app: Application,
    edit: impl FnOnce(&mut crate::document::AnalysisTemplate),
) -> Application {
    edit(&mut app.spec.analysis_templates[0]);
    app
}

/// The api canary at its analysis step (20%), the run created.
fn at_analysis(app: Application) -> World {
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass(); // register + create
    w.pass(); // 80/20
    w.pass(); // read back: pause 1m
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert_eq!(
        kinds(&p, "api"),
        ["analysis"],
        "{}",
        w.status("api").message
    );
    w
}

fn run(w: &World) -> crate::status::AnalysisRunStatus {
    w.status("api")
        .analysis_runs
        .last()
        .cloned()
        .expect("a run")
}

#[test]
fn failed_analysis_aborts_and_weights_are_verified_back_before_scale_down() {
    let mut w = at_analysis(doc());
    w.weight_lag = 2; // the load balancer reads back late
    w.finish_analysis("api", AnalysisPhase::Failed);
    w.pass();
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
    assert!(
        s.message
            .contains("analysis failed: errors: 1 of 1 measurements failed"),
        "{}",
        s.message
    );
    assert_eq!(run(&w).effect.as_deref(), Some("aborted the rollout"));
    // The World panics on a scale-down while the load balancer still gives green weight;
    // here the order is also checked: the scale-down comes after the read-back of 0 and
    // the abort scale-down delay (20s) after it.
    let mut restored_at = None;
    for _ in 0..20 {
        w.now = w.now.plus(Duration::from_secs(5));
        let p = w.pass();
        if w.weights("api") == (100, 0) {
            restored_at.get_or_insert(w.now);
        }
        for a in actions_of(&p, "api") {
            if let Action::UpdateService {
                desired_count: Some(0),
                service,
                ..
            } = a
            {
                assert_eq!(service, "api-green");
                let restored = restored_at.expect("weights read back before the scale-down");
                assert!(w.now >= restored.plus(Duration::from_secs(20)));
                return;
            }
        }
    }
    panic!("the canary never scaled down: {}", w.status("api").message);
}

#[test]
fn inconclusive_analysis_pauses_with_a_message_and_holds_the_weight() {
    let mut w = at_analysis(doc());
    w.finish_analysis("api", AnalysisPhase::Inconclusive);
    for _ in 0..5 {
        w.now = w.now.plus(Duration::from_secs(30));
        let p = w.pass();
        assert!(kinds(&p, "api").is_empty(), "{:?}", p.actions);
    }
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert!(
        s.message
            .contains("analysis inconclusive (errors: 1 of 1 measurements inconclusive"),
        "{}",
        s.message
    );
    assert!(s.message.contains("no data: empty vector"), "{}", s.message);
    assert!(
        s.message.contains("to continue, write `promote`"),
        "{}",
        s.message
    );
    assert_eq!(w.weights("api"), (80, 20));
    assert_eq!(
        w.events("api", reason::ANALYSIS_INCONCLUSIVE),
        1,
        "one event, not one per pass"
    );
    w.operator("api", OperatorActionKind::Promote, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn succeeded_analysis_moves_to_the_next_step_and_says_so() {
    let mut w = at_analysis(doc());
    w.finish_analysis("api", AnalysisPhase::Succeeded);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
    let r = run(&w);
    assert_eq!(r.phase, AnalysisPhase::Succeeded);
    assert_eq!(r.effect.as_deref(), Some("continued to step 4"));
    assert_eq!(r.metrics[0].measurements[0].value.as_deref(), Some("0.001"));
}

#[test]
fn a_running_analysis_holds_the_step_until_its_count_is_reached() {
    let app = with_template(doc(), |t| {
        t.count = Some(3);
        t.interval = Some(crate::document::DurationSpec::from_secs(60));
    });
    let mut w = at_analysis(app);
    w.answer("api", number(0.001));
    for i in 0..2 {
        let p = w.pass();
        assert!(
            kinds(&p, "api").is_empty(),
            "measurement {i}: {:?}",
            p.actions
        );
        assert_eq!(run(&w).metrics[0].count, i + 1);
        assert_eq!(
            p.requeue_after,
            Some(Duration::from_secs(60)),
            "the next measurement's timer"
        );
        w.now = w.now.plus(Duration::from_secs(60));
    }
    let p = w.pass();
    assert_eq!(run(&w).phase, AnalysisPhase::Succeeded);
    assert_eq!(w.measured["errors"], 3);
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn background_analysis_failing_mid_rollout_aborts() {
    let mut app = with_template(doc(), |t| {
        t.interval = Some(crate::document::DurationSpec::from_secs(30));
    });
    // No analysis step; the background analysis judges from step 1 (the 1m pause) on.
    app = with_steps(
        app,
        "api",
        "[{setWeight: 20}, {pause: {duration: 1m}}, {setWeight: 50}, {pause: {duration: 10m}}, {setWeight: 100}]",
    );
    if let Strategy::Canary(c) = &mut workload_mut(&mut app, "api").strategy {
        c.analysis = Some(BackgroundAnalysis {
            templates: vec![crate::document::TemplateRef {
                template_name: "errors".into(),
            }],
            args: vec![],
            starting_step: Some(1),
        });
    }
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    w.pass(); // 80/20
    assert!(w.live_runs("api").is_empty(), "not before startingStep");
    w.pass(); // read back: at the pause, the background run starts
    let live = w.live_runs("api");
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].kind, AnalysisRunKind::Background);
    w.answer("api", number(0.001));
    for _ in 0..6 {
        w.now = w.now.plus(Duration::from_secs(30));
        w.pass();
    }
    assert_eq!(
        w.weights("api"),
        (50, 50),
        "passing: at 50% now, {}",
        w.status("api").message
    );
    assert_eq!(w.status("api").phase, Phase::Progressing);
    // It starts failing in the middle of the 10m pause.
    w.answer("api", number(0.3));
    w.now = w.now.plus(Duration::from_secs(30));
    w.pass();
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
    assert!(
        s.message.contains("background analysis failed"),
        "{}",
        s.message
    );
    w.pass();
    assert_eq!(w.weights("api"), (100, 0), "weight back on stable");
}

#[test]
fn a_background_run_still_going_ends_when_the_rollout_completes() {
    let mut app = with_template(doc(), |t| {
        t.interval = Some(crate::document::DurationSpec::from_secs(30))
    });
    app = with_steps(
        app,
        "api",
        "[{setWeight: 50}, {pause: {duration: 1m}}, {setWeight: 100}]",
    );
    if let Strategy::Canary(c) = &mut workload_mut(&mut app, "api").strategy {
        c.analysis = Some(BackgroundAnalysis {
            templates: vec![crate::document::TemplateRef {
                template_name: "errors".into(),
            }],
            args: vec![],
            starting_step: None,
        });
    }
    let mut w = World::converged_with(app);
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass(); // register + create
    w.pass(); // healthy: the background run starts with step 0
    w.answer("api", number(0.0));
    for _ in 0..8 {
        w.now = w.now.plus(Duration::from_secs(30));
        w.pass();
    }
    assert_eq!(
        w.status("api").phase,
        Phase::Healthy,
        "{}",
        w.status("api").message
    );
    let r = run(&w);
    assert_eq!(r.phase, AnalysisPhase::Succeeded);
    assert!(
        w.live_runs("api").is_empty(),
        "nothing measures a finished rollout"
    );
}

#[test]
fn dry_run_failure_changes_nothing() {
    let app = with_template(doc(), |t| t.dry_run = true);
    let mut w = at_analysis(app);
    w.finish_analysis("api", AnalysisPhase::Failed);
    let p = w.pass();
    assert!(
        matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights { green: 50, .. }]
        ),
        "{}",
        w.status("api").message
    );
    let r = run(&w);
    assert_eq!(
        r.metrics[0].phase,
        MetricPhase::Failed,
        "measured and shown"
    );
    assert_eq!(r.phase, AnalysisPhase::Succeeded);
    assert_eq!(
        w.events("api", reason::ABORTED) + w.events("api", reason::ANALYSIS_FAILED),
        0
    );
}

#[test]
fn a_restart_mid_run_resumes_with_its_measurements() {
    let app = with_template(doc(), |t| {
        t.count = Some(3);
        t.interval = Some(crate::document::DurationSpec::from_secs(60));
    });
    let mut w = at_analysis(app);
    w.answer("api", number(0.001));
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    assert_eq!(run(&w).metrics[0].count, 2);
    // The controller restarts: all it has is the persisted status (through its JSON).
    let json = serde_json::to_string(w.status.as_ref().unwrap()).unwrap();
    w.status = Some(serde_json::from_str(&json).unwrap());
    w.now = w.now.plus(Duration::from_secs(30));
    let p = w.pass();
    assert_eq!(
        run(&w).metrics[0].count,
        2,
        "not due yet: the last measurement was 30s ago"
    );
    assert!(
        kinds(&p, "api").is_empty(),
        "the run is not started again: {:?}",
        p.actions
    );
    w.now = w.now.plus(Duration::from_secs(30));
    let p = w.pass();
    assert_eq!(run(&w).phase, AnalysisPhase::Succeeded);
    assert_eq!(
        w.measured["errors"], 3,
        "three measurements in all, none repeated"
    );
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn an_analysis_is_never_skipped_when_the_status_is_lost_mid_run() {
    let mut w = at_analysis(doc());
    let old = run(&w).id;
    w.answers.insert(old.clone(), number(0.001)); // would succeed, but never measured
    w.status = None; // lost before the runner got to it
    let mut started = false;
    for i in 0..12 {
        let p = w.pass();
        for a in actions_of(&p, "api") {
            match a {
                Action::StartAnalysis { .. } => started = true,
                Action::SetWeights { green, .. } if *green > 20 => {
                    assert!(started, "pass {i}: {green}% without a new analysis")
                }
                _ => {}
            }
        }
        w.now = w.now.plus(Duration::from_secs(30));
    }
    assert!(started, "{}", w.status("api").message);
    assert!(run(&w).id != old);
    assert_eq!(
        w.weights("api"),
        (80, 20),
        "held at the analysis: nobody answers the new run"
    );
}

#[test]
fn a_template_argument_takes_the_canary_target_group() {
    let mut app = with_template(doc(), |t| {
        t.args = vec![crate::document::TemplateArg {
            name: "tg".into(),
            value: None,
        }];
        t.query = "/rate/{{args.tg}}".into();
    });
    if let Strategy::Canary(c) = &mut workload_mut(&mut app, "api").strategy {
        for s in &mut c.steps {
            if let crate::document::CanaryStep::Analysis(a) = s {
                a.args = serde_json::from_value(
                    serde_json::json!([{"name": "tg", "valueFrom": "canaryTargetGroup"}]),
                )
                .unwrap();
            }
        }
    }
    let w = at_analysis(app);
    assert_eq!(run(&w).args["tg"], "tg-api-green");
}

#[test]
fn blue_green_post_promotion_failure_moves_traffic_back_before_scale_down() {
    let mut app = doc();
    if let Strategy::BlueGreen(b) = &mut workload_mut(&mut app, "ml").strategy {
        b.auto_promotion_enabled = true;
        b.post_promotion_analysis = Some(crate::document::AnalysisStep {
            templates: vec![crate::document::TemplateRef {
                template_name: "errors".into(),
            }],
            args: vec![],
        });
    }
    let mut w = World::converged_with(app);
    w.observed.models.insert("clf".into(), model("v2"));
    w.pass(); // register + create green
    w.pass(); // healthy: all traffic to green
    w.pass(); // read back: post-promotion analysis starts
    assert_eq!(w.weights("ml"), (0, 100));
    assert_eq!(w.live_runs("ml").len(), 1, "{}", w.status("ml").message);
    assert!(
        w.slot("ml", Slot::Blue).desired_count > 0,
        "the old slot waits for the verdict"
    );
    w.finish_analysis("ml", AnalysisPhase::Failed);
    for _ in 0..10 {
        w.now = w.now.plus(Duration::from_secs(30));
        w.pass();
    }
    let s = w.status("ml");
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
    assert_eq!(w.weights("ml"), (100, 0));
    assert_eq!(w.slot("ml", Slot::Green).desired_count, 0);
    assert!(w.slot("ml", Slot::Blue).desired_count > 0);
}
