//! Argo Rollouts' analysis semantics, one named case each.

use super::*;
use crate::document::TemplateRef;

fn template(extra: serde_json::Value) -> AnalysisTemplate {
    let mut base = serde_json::json!({
        "name": "errors",
        "provider": {"web": {"url": "http://metrics/errors"}},
        "query": "/rate",
        "successCondition": "result < 0.01",
    });
    for (k, v) in extra.as_object().unwrap() {
        base[k] = v.clone();
    }
    serde_json::from_value(base).expect("test template")
}

fn app_with(templates: Vec<AnalysisTemplate>) -> Application {
    let mut app: Application = serde_saphyr::from_str(
        r#"
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: shop, environment: test}
spec:
  platform: {local: {listen: "127.0.0.1:8080"}}
  workloads:
    - {name: api, image: "api:1", cpu: 256, memory: 512, desiredCount: 1, containerPort: 8000, strategy: {rolling: {}}}
"#,
    )
    .unwrap();
    app.spec.analysis_templates = templates;
    app
}

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn secs(s: u64) -> Timestamp {
    T0.plus(Duration::from_secs(s))
}

fn run_of(app: &Application) -> AnalysisRunStatus {
    let templates: Vec<&AnalysisTemplate> = app.spec.analysis_templates.iter().collect();
    new_run(
        step_run_id("h", 2, T0),
        AnalysisRunKind::Step,
        "h",
        Some(2),
        T0,
        &templates,
        BTreeMap::new(),
    )
}

fn value(n: f64) -> Answer {
    Answer::Value(Value::Number(n))
}

/// Takes every measurement `due` says is due at `at`, answering `answer` for `template`.
fn measure(
    app: &Application,
    run: &mut AnalysisRunStatus,
    at: Timestamp,
    answer: &dyn Fn(&str) -> Answer,
) -> usize {
    let mut status = AppStatus::default();
    status
        .workloads
        .entry("api".into())
        .or_default()
        .analysis_runs = vec![run.clone()];
    let taken: Vec<TakenMeasurement> = due(app, &status, at)
        .into_iter()
        .map(|d| TakenMeasurement {
            run: d.run,
            answer: answer(&d.template),
            template: d.template,
            started_at: at,
            finished_at: at,
            samples: None,
        })
        .collect();
    absorb(app, run, &taken, at);
    taken.len()
}

#[test]
fn count_measurements_interval_apart_then_succeeded() {
    let app = app_with(vec![template(
        serde_json::json!({"count": 3, "interval": "1m"}),
    )]);
    let mut run = run_of(&app);
    assert_eq!(measure(&app, &mut run, T0, &|_| value(0.001)), 1);
    assert_eq!(run.phase, AnalysisPhase::Running);
    // Not due again before the interval.
    assert_eq!(measure(&app, &mut run, secs(59), &|_| value(0.001)), 0);
    assert_eq!(run_next_due(&app, &run), Some(secs(60)));
    assert_eq!(measure(&app, &mut run, secs(60), &|_| value(0.001)), 1);
    assert_eq!(measure(&app, &mut run, secs(120), &|_| value(0.001)), 1);
    assert_eq!(run.phase, AnalysisPhase::Succeeded, "{run:?}");
    assert_eq!(run.finished_at, Some(secs(120)));
    assert_eq!(run.metrics[0].count, 3);
    assert_eq!(
        measure(&app, &mut run, secs(600), &|_| value(0.001)),
        0,
        "a finished run is not measured"
    );
}

#[test]
fn initial_delay_holds_the_first_measurement() {
    let app = app_with(vec![template(serde_json::json!({"initialDelay": "30s"}))]);
    let mut run = run_of(&app);
    assert_eq!(measure(&app, &mut run, secs(29), &|_| value(0.0)), 0);
    assert_eq!(measure(&app, &mut run, secs(30), &|_| value(0.0)), 1);
    assert_eq!(run.phase, AnalysisPhase::Succeeded);
}

#[test]
fn failure_limit_tolerates_that_many_failures() {
    let app = app_with(vec![template(
        serde_json::json!({"count": 4, "interval": "1m", "failureLimit": 1}),
    )]);
    let mut run = run_of(&app);
    measure(&app, &mut run, T0, &|_| value(0.5));
    assert_eq!(
        run.phase,
        AnalysisPhase::Running,
        "one failure is tolerated"
    );
    measure(&app, &mut run, secs(60), &|_| value(0.5));
    assert_eq!(run.phase, AnalysisPhase::Failed);
    assert!(
        run.message
            .contains("2 of 2 measurements failed, more than failureLimit 1"),
        "{}",
        run.message
    );
    assert!(run.message.contains("last value 0.5"), "{}", run.message);
}

#[test]
fn neither_condition_true_is_inconclusive_and_inconclusive_limit_counts() {
    let app = app_with(vec![template(serde_json::json!({
        "failureCondition": "result >= 0.05", "count": 3, "interval": "1m", "inconclusiveLimit": 1
    }))]);
    let mut run = run_of(&app);
    measure(&app, &mut run, T0, &|_| value(0.02));
    assert_eq!(run.metrics[0].inconclusive, 1);
    assert_eq!(run.phase, AnalysisPhase::Running);
    measure(&app, &mut run, secs(60), &|_| value(0.03));
    assert_eq!(run.phase, AnalysisPhase::Inconclusive, "{run:?}");
}

#[test]
fn a_failure_condition_beats_the_success_condition() {
    let t = template(
        serde_json::json!({"successCondition": "result < 1", "failureCondition": "result > 0.5"}),
    );
    let taken = |n| TakenMeasurement {
        run: "r".into(),
        template: "errors".into(),
        started_at: T0,
        finished_at: T0,
        answer: value(n),
        samples: None,
    };
    assert_eq!(judge(&t, &taken(0.7)).phase, MeasurementPhase::Failed);
    assert_eq!(judge(&t, &taken(0.2)).phase, MeasurementPhase::Successful);
}

#[test]
fn provider_errors_are_neither_and_fail_past_the_consecutive_error_limit() {
    let app = app_with(vec![template(
        serde_json::json!({"consecutiveErrorLimit": 2}),
    )]);
    let mut run = run_of(&app);
    let err = |_: &str| Answer::Error("connection refused".into());
    measure(&app, &mut run, T0, &err);
    assert_eq!(
        run.metrics[0].count, 0,
        "an error is not a measurement with a verdict"
    );
    // Retried after ERROR_RETRY_INTERVAL without an interval.
    assert_eq!(measure(&app, &mut run, secs(5), &err), 0);
    measure(&app, &mut run, secs(10), &err);
    assert_eq!(run.phase, AnalysisPhase::Running);
    measure(&app, &mut run, secs(20), &err);
    assert_eq!(run.phase, AnalysisPhase::Failed);
    assert!(
        run.message.contains(
            "3 provider errors in a row, more than consecutiveErrorLimit 2 (connection refused)"
        ),
        "{}",
        run.message
    );
}

#[test]
fn an_error_between_successes_resets_the_streak() {
    let app = app_with(vec![template(
        serde_json::json!({"consecutiveErrorLimit": 1, "count": 3, "interval": "10s"}),
    )]);
    let mut run = run_of(&app);
    let mut at = 0;
    for answer in [
        Answer::Error("x".into()),
        value(0.0),
        Answer::Error("x".into()),
        value(0.0),
        value(0.0),
    ] {
        measure(&app, &mut run, secs(at), &|_| answer.clone());
        at += 10;
    }
    assert_eq!(run.phase, AnalysisPhase::Succeeded, "{run:?}");
    assert_eq!(run.metrics[0].error, 2);
}

#[test]
fn too_few_samples_is_inconclusive_not_a_verdict() {
    let t = template(serde_json::json!({"minimumSamples": 50, "sampleQuery": "/count"}));
    let taken = |samples: Option<Answer>| TakenMeasurement {
        run: "r".into(),
        template: "errors".into(),
        started_at: T0,
        finished_at: T0,
        answer: value(0.0),
        samples,
    };
    let m = judge(&t, &taken(Some(value(12.0))));
    assert_eq!(m.phase, MeasurementPhase::Inconclusive);
    assert_eq!(m.message, "12 samples, fewer than minimumSamples 50");
    assert_eq!(
        judge(&t, &taken(Some(Answer::NoData("none".into())))).phase,
        MeasurementPhase::Inconclusive
    );
    assert_eq!(
        judge(&t, &taken(Some(value(50.0)))).phase,
        MeasurementPhase::Successful
    );
    assert_eq!(
        judge(&t, &taken(Some(Answer::Error("down".into())))).phase,
        MeasurementPhase::Error
    );
    assert_eq!(judge(&t, &taken(None)).phase, MeasurementPhase::Error);
}

#[test]
fn no_data_counts_as_the_template_says() {
    let taken = TakenMeasurement {
        run: "r".into(),
        template: "errors".into(),
        started_at: T0,
        finished_at: T0,
        answer: Answer::NoData("the vector is empty".into()),
        samples: None,
    };
    let phase = |rule: Option<&str>| {
        let extra = match rule {
            Some(r) => serde_json::json!({"noData": r}),
            None => serde_json::json!({}),
        };
        judge(&template(extra), &taken).phase
    };
    assert_eq!(phase(None), MeasurementPhase::Inconclusive);
    assert_eq!(phase(Some("pass")), MeasurementPhase::Successful);
    assert_eq!(phase(Some("fail")), MeasurementPhase::Failed);
    assert_eq!(phase(Some("inconclusive")), MeasurementPhase::Inconclusive);
    assert_eq!(
        judge(&template(serde_json::json!({})), &taken).message,
        "no data: the vector is empty"
    );
}

#[test]
fn a_condition_that_does_not_apply_is_a_measurement_error() {
    let t = template(serde_json::json!({"successCondition": "result.ok == true"}));
    let taken = TakenMeasurement {
        run: "r".into(),
        template: "errors".into(),
        started_at: T0,
        finished_at: T0,
        answer: value(1.0),
        samples: None,
    };
    let m = judge(&t, &taken);
    assert_eq!(m.phase, MeasurementPhase::Error);
    assert!(
        m.message
            .contains("successCondition `result.ok == true`: `.ok`: the value is a number"),
        "{}",
        m.message
    );
}

#[test]
fn a_dry_run_metric_that_fails_decides_nothing() {
    let mut dry = template(serde_json::json!({"dryRun": true}));
    dry.name = "shadow".into();
    let app = app_with(vec![template(serde_json::json!({})), dry]);
    let mut run = run_of(&app);
    measure(&app, &mut run, T0, &|t| {
        if t == "shadow" {
            value(0.9)
        } else {
            value(0.0)
        }
    });
    assert_eq!(
        run.metrics[1].phase,
        MetricPhase::Failed,
        "measured and shown"
    );
    assert_eq!(run.phase, AnalysisPhase::Succeeded, "{run:?}");
}

#[test]
fn one_failed_metric_fails_the_run_while_others_still_run() {
    let mut slow = template(serde_json::json!({"count": 5, "interval": "1m"}));
    slow.name = "slow".into();
    let app = app_with(vec![template(serde_json::json!({})), slow]);
    let mut run = run_of(&app);
    measure(&app, &mut run, T0, &|t| {
        if t == "slow" { value(0.0) } else { value(0.9) }
    });
    assert_eq!(run.metrics[1].phase, MetricPhase::Running);
    assert_eq!(run.phase, AnalysisPhase::Failed);
    assert!(run.message.starts_with("errors: "), "{}", run.message);
}

#[test]
fn the_same_observation_recorded_twice_counts_once() {
    let app = app_with(vec![template(
        serde_json::json!({"count": 2, "interval": "1m"}),
    )]);
    let mut run = run_of(&app);
    let taken = vec![TakenMeasurement {
        run: run.id.clone(),
        template: "errors".into(),
        started_at: T0,
        finished_at: T0,
        answer: value(0.0),
        samples: None,
    }];
    assert!(absorb(&app, &mut run, &taken, T0));
    absorb(&app, &mut run, &taken, secs(1));
    assert_eq!(run.metrics[0].count, 1);
    let other = vec![TakenMeasurement {
        run: "another-run".into(),
        ..taken[0].clone()
    }];
    absorb(&app, &mut run, &other, secs(90));
    assert_eq!(
        run.metrics[0].count, 1,
        "a measurement of another run is not this run's"
    );
}

#[test]
fn without_count_but_with_interval_it_measures_until_stopped() {
    let app = app_with(vec![template(serde_json::json!({"interval": "10s"}))]);
    let mut run = run_of(&app);
    for i in 0..30 {
        measure(&app, &mut run, secs(i * 10), &|_| value(0.0));
    }
    assert_eq!(run.phase, AnalysisPhase::Running);
    assert_eq!(run.metrics[0].count, 30);
    assert_eq!(
        run.metrics[0].measurements.len(),
        crate::status::MAX_MEASUREMENTS,
        "retention"
    );
}

#[test]
fn args_come_from_defaults_values_and_the_rollout() {
    let t = template(
        serde_json::json!({"args": [{"name": "tg"}, {"name": "limit", "value": "0.01"}, {"name": "slot"}]}),
    );
    let facts = RolloutFacts {
        canary_target_group: "tg-green".into(),
        canary_slot: "green".into(),
        ..Default::default()
    };
    let passed: Vec<AnalysisArg> = serde_json::from_value(serde_json::json!([
        {"name": "tg", "valueFrom": "canaryTargetGroup"},
        {"name": "slot", "valueFrom": "canarySlot"},
    ]))
    .unwrap();
    let args = resolve_args(&[&t], &passed, &facts).unwrap();
    assert_eq!(args["tg"], "tg-green");
    assert_eq!(args["limit"], "0.01");
    assert_eq!(
        substitute("rate{slot=\"{{args.slot}}\"} < {{ args.limit }}", &args).unwrap(),
        "rate{slot=\"green\"} < 0.01"
    );
    let missing = resolve_args(&[&t], &passed[..1], &facts).unwrap_err();
    assert_eq!(
        missing.to_string(),
        "`{{args.slot}}` has no value: declare it in the template's `args` and pass it from the step"
    );
    assert_eq!(
        substitute("x {{canaryTargetGroup}}", &args)
            .unwrap_err()
            .to_string(),
        "`{{canaryTargetGroup}}` is not an argument; write `{{args.NAME}}`"
    );
    assert!(matches!(
        substitute("{{args.tg", &args),
        Err(ArgError::Unclosed { position: 1 })
    ));
    assert_eq!(placeholders("{{args.a}}/{{ args.b }}").unwrap(), ["a", "b"]);
    let _ = TemplateRef {
        template_name: String::new(),
    };
}

#[test]
fn alb_queries_parse_and_bad_ones_say_why() {
    let q = parse_alb_query("sum(HTTPCode_Target_5XX_Count)/sum(RequestCount)").unwrap();
    assert_eq!(q.factor, 1.0);
    assert_eq!(q.numerator.statistic, AlbStatistic::Sum);
    assert_eq!(
        parse_alb_query("avg(TargetResponseTime)")
            .unwrap()
            .numerator
            .statistic,
        AlbStatistic::Average
    );
    assert_eq!(AlbStatistic::Percentile(99.0).cloudwatch_name(), "p99");
    assert_eq!(AlbStatistic::Percentile(99.9).cloudwatch_name(), "p99.9");
    for (text, want) in [
        ("sum(RequestCount", "is not STAT(METRIC)"),
        ("median(RequestCount)", "unknown statistic \"median\""),
        ("p100(TargetResponseTime)", "is not a percentile"),
        (
            "sum(Latency)",
            "\"Latency\" is not an ALB target-group metric",
        ),
        ("x * sum(RequestCount)", "\"x\" is not a number"),
    ] {
        let e = parse_alb_query(text).unwrap_err().to_string();
        assert!(e.contains(want), "{text}: {e}");
    }
}
