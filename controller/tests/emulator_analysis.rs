//! The whole loop against the AWS emulator through the real SDK (moto: ECS, ELBv2, SSM,
//! S3), judged by a web analysis (a real HTTP server in the test) and a Prometheus one (the
//! real Prometheus `.ci/test` starts, scraping our backend): a passing canary walks to
//! 100%, a failing one rolls back on its own, the weights read back at stable before the
//! canary is scaled down; an inconclusive one pauses; a background analysis that starts
//! failing mid-rollout aborts it; a dry-run metric that fails changes nothing; a restart
//! in the middle of a run resumes it from the status in S3 with its measurements. Needs
//! `.ci/test` (AWS_ENDPOINT_URL, TUGBOAT_PROMETHEUS_URL).

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::moto::{self, World};
use common::{Spec, app, desired};
use tugboat::document::{AnalysisTemplate, Application, Strategy};
use tugboat::runtime::{DesiredDocument, Reconciler};
use tugboat::status::{AnalysisPhase, Phase, Timestamp, WorkloadStatus};

fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this test through .ci/test"))
}

/// A metrics endpoint whose error rate the test sets.
async fn web_server(rate: Arc<Mutex<f64>>) -> String {
    let router = axum::Router::new().route(
        "/canary",
        axum::routing::get(move || {
            let rate = *rate.lock().unwrap();
            async move { axum::Json(serde_json::json!({"error_rate": rate})) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/canary", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    url
}

/// Some traffic on the backend Prometheus scrapes, seen by Prometheus.
async fn backend_traffic() {
    let backend = env("TUGBOAT_SCRAPED_BACKEND_URL");
    let http = reqwest::Client::new();
    for _ in 0..3 {
        http.get(format!("{backend}/health")).send().await.unwrap();
    }
    let prom = env("TUGBOAT_PROMETHEUS_URL");
    for _ in 0..100 {
        let body = http
            .get(format!(
                "{prom}/api/v1/query?query=sum%28tugboat_http_requests_total%7Bjob%3D%22backend%22%7D%29"
            ))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body.contains("\"value\"") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("Prometheus never scraped the backend");
}

fn doc(world: &World, tag: &str, web_url: &str) -> DesiredDocument {
    let (blue, green) = world.tg("api");
    let mut a: Application = app(
        &world.infra,
        &[Spec::canary(
            "api",
            &format!("api:{tag}"),
            &blue,
            &green,
            10,
        )],
    );
    let templates: Vec<AnalysisTemplate> = serde_json::from_value(serde_json::json!([
        {
            "name": "web-errors",
            "provider": {"web": {"url": web_url, "timeout": "2s"}},
            "query": "/error_rate",
            "successCondition": "result < 0.01",
            "failureCondition": "result >= 0.05",
            "count": 2, "interval": "10s",
        },
        {
            "name": "backend-5xx",
            "args": [{"name": "job"}],
            "provider": {"prometheus": {"address": env("TUGBOAT_PROMETHEUS_URL")}},
            "query": "sum(rate(tugboat_http_requests_total{job=\"{{args.job}}\",status=~\"5..\"}[1m])) or vector(0)",
            "successCondition": "result[0] < 1000",
        },
    ]))
    .unwrap();
    a.spec.analysis_templates = templates;
    if let Strategy::Canary(c) = &mut a.spec.workloads[0].strategy {
        c.steps = serde_json::from_value(serde_json::json!([
            {"setWeight": 50},
            {"analysis": {
                "templates": [{"templateName": "web-errors"}, {"templateName": "backend-5xx"}],
                "args": [{"name": "job", "value": "backend"}],
            }},
            {"setWeight": 100},
        ]))
        .unwrap();
    }
    desired(a, tag)
}

async fn drive<P: tugboat::platform::Platform>(
    r: &mut Reconciler<P>,
    world: &World,
    doc: &DesiredDocument,
    now: &mut Timestamp,
    done: impl Fn(&WorkloadStatus) -> bool,
) -> WorkloadStatus {
    let mut last = None;
    for _ in 0..40 {
        let report = r.pass(doc, *now).await.expect("pass");
        moto::settle(world).await;
        *now = now.plus(Duration::from_secs(5));
        let s = report.status.workloads["api"].clone();
        if done(&s) {
            return s;
        }
        last = Some(s);
    }
    panic!("not done: {last:#?}");
}

async fn green_weight(world: &World) -> (u32, u32) {
    let (blue, green) = world.tg("api");
    let (_, weights) = moto::rule_weights(world, 10).await.expect("the rule");
    (
        weights.get(&blue).copied().unwrap_or(0) as u32,
        weights.get(&green).copied().unwrap_or(0) as u32,
    )
}

#[tokio::test]
async fn a_canary_with_passing_web_and_prometheus_analysis_walks_to_100_percent() {
    backend_traffic().await;
    let rate = Arc::new(Mutex::new(0.001));
    let url = web_server(rate.clone()).await;
    let world = moto::world(&["api"], 2).await;
    let mut r = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000_000);
    drive(&mut r, &world, &doc(&world, "1", &url), &mut now, |s| {
        s.phase == Phase::Healthy
    })
    .await;
    let s = drive(&mut r, &world, &doc(&world, "2", &url), &mut now, |s| {
        s.phase == Phase::Healthy && s.canary.is_none()
    })
    .await;
    assert_eq!(green_weight(&world).await, (0, 100));
    let run = s.analysis_runs.last().expect("the run");
    assert_eq!(run.phase, AnalysisPhase::Succeeded, "{run:#?}");
    assert_eq!(run.metrics.len(), 2);
    assert_eq!(run.metrics[0].count, 2, "web: count 2");
    assert_eq!(run.metrics[1].count, 1, "prometheus: once");
}

#[tokio::test]
async fn a_failing_analysis_rolls_back_on_its_own_weights_verified_before_scale_down() {
    backend_traffic().await;
    let rate = Arc::new(Mutex::new(0.2));
    let url = web_server(rate.clone()).await;
    let world = moto::world(&["api"], 2).await;
    let mut r = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000_000);
    drive(&mut r, &world, &doc(&world, "1", &url), &mut now, |s| {
        s.phase == Phase::Healthy
    })
    .await;
    let mut scaled_down_while_weighted = false;
    let v2 = doc(&world, "2", &url);
    let mut s = None;
    for _ in 0..40 {
        let report = r.pass(&v2, now).await.expect("pass");
        let (_, green) = green_weight(&world).await;
        let green_count = moto::service(&world, "api-green")
            .await
            .map_or(0, |(c, _)| c);
        if green > 0 && green_count == 0 {
            scaled_down_while_weighted = true;
        }
        moto::settle(&world).await;
        now = now.plus(Duration::from_secs(5));
        let api = report.status.workloads["api"].clone();
        if api.phase == Phase::Aborted && api.canary.is_none() {
            s = Some(api);
            break;
        }
    }
    let s = s.expect("the rollout aborts and the canary drains");
    assert!(!scaled_down_while_weighted);
    assert_eq!(green_weight(&world).await, (100, 0));
    assert_eq!(
        moto::service(&world, "api-green").await.map(|(c, _)| c),
        Some(0)
    );
    assert!(s.message.contains("web-errors"), "{}", s.message);
    let events: Vec<&str> = s.events.iter().map(|e| e.reason.as_str()).collect();
    let restored = events
        .iter()
        .position(|e| *e == "WeightRestored")
        .expect("restored");
    let scaled = events
        .iter()
        .rposition(|e| *e == "ScaledDown")
        .expect("scaled down");
    assert!(restored < scaled, "{events:?}");
}

/// A document with one web template on `url` (`extra` merged in) and the given steps and
/// background analysis.
fn custom(
    world: &World,
    tag: &str,
    url: &str,
    extra: serde_json::Value,
    steps: serde_json::Value,
    background: Option<serde_json::Value>,
    status_uri: Option<String>,
) -> DesiredDocument {
    let (blue, green) = world.tg("api");
    let mut infra = world.infra.clone();
    infra.status_uri = status_uri;
    let mut a: Application = app(
        &infra,
        &[Spec::canary(
            "api",
            &format!("api:{tag}"),
            &blue,
            &green,
            10,
        )],
    );
    let mut t = serde_json::json!({
        "name": "web-errors",
        "provider": {"web": {"url": url, "timeout": "2s"}},
        "query": "/error_rate",
        "successCondition": "result < 0.01",
        "failureCondition": "result >= 0.05",
    });
    for (k, v) in extra.as_object().unwrap() {
        t[k] = v.clone();
    }
    a.spec.analysis_templates = vec![serde_json::from_value(t).unwrap()];
    if let Strategy::Canary(c) = &mut a.spec.workloads[0].strategy {
        c.steps = serde_json::from_value(steps).unwrap();
        c.analysis = background.map(|b| serde_json::from_value(b).unwrap());
    }
    desired(a, tag)
}

fn step_analysis() -> serde_json::Value {
    serde_json::json!([
        {"setWeight": 50},
        {"analysis": {"templates": [{"templateName": "web-errors"}]}},
        {"setWeight": 100},
    ])
}

#[tokio::test]
async fn an_inconclusive_analysis_pauses_the_canary_where_it_is() {
    let rate = Arc::new(Mutex::new(0.02)); // neither below 0.01 nor at 0.05
    let url = web_server(rate.clone()).await;
    let world = moto::world(&["api"], 2).await;
    let mut r = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000_000);
    let v1 = custom(
        &world,
        "1",
        &url,
        serde_json::json!({}),
        step_analysis(),
        None,
        None,
    );
    drive(&mut r, &world, &v1, &mut now, |s| s.phase == Phase::Healthy).await;
    let v2 = custom(
        &world,
        "2",
        &url,
        serde_json::json!({}),
        step_analysis(),
        None,
        None,
    );
    let s = drive(&mut r, &world, &v2, &mut now, |s| s.phase == Phase::Paused).await;
    assert!(s.message.contains("analysis inconclusive"), "{}", s.message);
    assert!(s.message.contains("write `promote`"), "{}", s.message);
    for _ in 0..3 {
        r.pass(&v2, now).await.unwrap();
        now = now.plus(Duration::from_secs(30));
    }
    assert_eq!(
        green_weight(&world).await,
        (50, 50),
        "held at the step's weight"
    );
}

#[tokio::test]
async fn a_background_analysis_that_starts_failing_mid_rollout_aborts_it() {
    let rate = Arc::new(Mutex::new(0.001));
    let url = web_server(rate.clone()).await;
    let world = moto::world(&["api"], 2).await;
    let mut r = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000_000);
    let steps = serde_json::json!([
        {"setWeight": 20}, {"pause": {"duration": "30s"}},
        {"setWeight": 60}, {"pause": {"duration": "10m"}}, {"setWeight": 100},
    ]);
    let background =
        serde_json::json!({"templates": [{"templateName": "web-errors"}], "startingStep": 1});
    let extra = serde_json::json!({"interval": "10s"});
    let v1 = custom(
        &world,
        "1",
        &url,
        extra.clone(),
        steps.clone(),
        Some(background.clone()),
        None,
    );
    drive(&mut r, &world, &v1, &mut now, |s| s.phase == Phase::Healthy).await;
    let v2 = custom(&world, "2", &url, extra, steps, Some(background), None);
    drive(&mut r, &world, &v2, &mut now, |s| {
        s.verified_weight == Some(60)
    })
    .await;
    *rate.lock().unwrap() = 0.3; // the canary goes bad during the 10m pause
    let s = drive(&mut r, &world, &v2, &mut now, |s| {
        s.phase == Phase::Aborted && s.canary.is_none()
    })
    .await;
    assert!(
        s.message.contains("background analysis failed"),
        "{}",
        s.message
    );
    assert_eq!(green_weight(&world).await, (100, 0));
}

#[tokio::test]
async fn a_dry_run_metric_that_fails_changes_nothing() {
    let rate = Arc::new(Mutex::new(0.5));
    let url = web_server(rate.clone()).await;
    let world = moto::world(&["api"], 2).await;
    let mut r = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000_000);
    let dry = serde_json::json!({"dryRun": true});
    let v1 = custom(&world, "1", &url, dry.clone(), step_analysis(), None, None);
    drive(&mut r, &world, &v1, &mut now, |s| s.phase == Phase::Healthy).await;
    let v2 = custom(&world, "2", &url, dry, step_analysis(), None, None);
    let s = drive(&mut r, &world, &v2, &mut now, |s| {
        s.phase == Phase::Healthy && s.canary.is_none()
    })
    .await;
    assert_eq!(green_weight(&world).await, (0, 100));
    let run = s.analysis_runs.last().unwrap();
    assert_eq!(
        run.metrics[0].phase,
        tugboat::status::MetricPhase::Failed,
        "measured and shown"
    );
    assert_eq!(run.phase, AnalysisPhase::Succeeded);
}

#[tokio::test]
async fn a_restart_mid_run_resumes_it_with_its_measurements_from_s3() {
    let config = common::emulator_config().await;
    let bucket = common::fresh_bucket(&config).await;
    let uri = Some(format!("s3://{bucket}/status.json"));
    let rate = Arc::new(Mutex::new(0.001));
    let url = web_server(rate.clone()).await;
    let world = moto::world(&["api"], 2).await;
    let s3 = tugboat::aws::s3(&config);
    let mut r = Reconciler::with_inputs(
        moto::platform().await,
        moto::inputs().await,
        Some(s3.clone()),
    );
    let mut now = Timestamp::from_secs(1_000_000);
    let extra = serde_json::json!({"count": 3, "interval": "20s"});
    let v1 = custom(
        &world,
        "1",
        &url,
        extra.clone(),
        step_analysis(),
        None,
        uri.clone(),
    );
    drive(&mut r, &world, &v1, &mut now, |s| s.phase == Phase::Healthy).await;
    let v2 = custom(&world, "2", &url, extra, step_analysis(), None, uri);
    let s = drive(&mut r, &world, &v2, &mut now, |s| {
        s.analysis_runs
            .last()
            .is_some_and(|run| run.metrics[0].count == 2)
    })
    .await;
    let id = s.analysis_runs.last().unwrap().id.clone();
    drop(r); // killed; a new controller with fresh clients and caches
    let mut r = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, Some(s3));
    let s = drive(&mut r, &world, &v2, &mut now, |s| {
        s.phase == Phase::Healthy && s.canary.is_none()
    })
    .await;
    let run = s
        .analysis_runs
        .iter()
        .find(|run| run.id == id)
        .expect("the same run, resumed");
    assert_eq!(
        run.metrics[0].count, 3,
        "one more measurement after the restart, not three"
    );
    assert_eq!(run.phase, AnalysisPhase::Succeeded);
    assert_eq!(green_weight(&world).await, (0, 100));
}
