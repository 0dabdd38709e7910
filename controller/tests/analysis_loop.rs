//! Analysis driving real passes: the reconcile loop over the in-memory platform with
//! the real web provider measuring a real HTTP server (an axum app on a free loopback
//! port) whose answers the test changes. The runs and their measurements live in the
//! persisted status; `now` is passed in, so no test waits on a clock.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Infra, Spec, app, desired};
use tugboat::document::{AnalysisTemplate, Application, Strategy};
use tugboat::platform::memory::MemoryPlatform as Fake;
use tugboat::runtime::{DesiredDocument, Reconciler};
use tugboat::status::{AnalysisPhase, Phase, Timestamp};

/// What the metrics server answers at `/errors`: a JSON body and a status code.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

#[derive(Debug, Clone)]
struct Server {
    url: String,
    reply: Arc<Mutex<Reply>>,
    hits: Arc<AtomicUsize>,
}

impl Server {
    async fn start() -> Server {
        let reply = Arc::new(Mutex::new(Reply {
            status: 200,
            body: r#"{"error_rate": 0.001}"#.into(),
            delay: Duration::ZERO,
        }));
        let hits = Arc::new(AtomicUsize::new(0));
        let (r, h) = (reply.clone(), hits.clone());
        let router = axum::Router::new().route(
            "/errors",
            axum::routing::get(move || {
                let (r, h) = (r.clone(), h.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    let reply = r.lock().unwrap().clone();
                    tokio::time::sleep(reply.delay).await;
                    (
                        axum::http::StatusCode::from_u16(reply.status).unwrap(),
                        reply.body,
                    )
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Server { url, reply, hits }
    }

    fn answer(&self, status: u16, body: &str) {
        let mut r = self.reply.lock().unwrap();
        r.status = status;
        r.body = body.to_string();
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

/// The shop document with `api` at `tag` walking `[setWeight 50, analysis, setWeight
/// 100]`, judged by a web template on `server` (`extra` fields merged into it).
fn shop(infra: &Infra, server: &Server, tag: &str, extra: serde_json::Value) -> DesiredDocument {
    let mut a: Application = app(
        infra,
        &[Spec::canary(
            "api",
            &format!("api:{tag}"),
            "tg-api-blue",
            "tg-api-green",
            10,
        )],
    );
    let mut template = serde_json::json!({
        "name": "errors",
        "provider": {"web": {"url": format!("{}/errors", server.url), "timeout": "1s"}},
        "query": "/error_rate",
        "successCondition": "result < 0.01",
        "failureCondition": "result >= 0.05",
    });
    for (k, v) in extra.as_object().unwrap() {
        template[k] = v.clone();
    }
    let template: AnalysisTemplate = serde_json::from_value(template).unwrap();
    a.spec.analysis_templates = vec![template];
    if let Strategy::Canary(c) = &mut a.spec.workloads[0].strategy {
        c.steps = serde_json::from_value(serde_json::json!([
            {"setWeight": 50},
            {"analysis": {"templates": [{"templateName": "errors"}]}},
            {"setWeight": 100},
        ]))
        .unwrap();
    }
    // The fake infrastructure's names are not ARNs; the analysis parts must be valid.
    let problems: Vec<_> = tugboat::validate::validate(&a)
        .into_iter()
        .filter(|p| p.path.contains("nalysis"))
        .collect();
    assert!(
        problems.is_empty(),
        "the test template is valid: {problems:?}"
    );
    desired(a, tag)
}

fn weights(platform: &Fake) -> (u32, u32) {
    platform.with_state(|s| {
        let rule = s.rules.get("api").expect("a rule");
        let w = |tg: &str| rule.weights.get(tg).copied().unwrap_or(0);
        (w("tg-api-blue"), w("tg-api-green"))
    })
}

fn desired_count(platform: &Fake, service: &str) -> u32 {
    platform.with_state(|s| s.services.get(service).map_or(0, |s| s.desired_count))
}

/// Passes `step` apart until `done` says so (at most `max`); returns the last status.
async fn drive(
    r: &mut Reconciler<Arc<Fake>>,
    doc: &DesiredDocument,
    now: &mut Timestamp,
    step: Duration,
    max: usize,
    done: impl Fn(&tugboat::status::WorkloadStatus) -> bool,
) -> tugboat::status::WorkloadStatus {
    let mut last = None;
    for _ in 0..max {
        let report = r.pass(doc, *now).await.expect("pass");
        let api = report.status.workloads["api"].clone();
        *now = now.plus(step);
        if done(&api) {
            return api;
        }
        last = Some(api);
    }
    panic!("not done after {max} passes: {last:#?}");
}

async fn converged(
    infra: &Infra,
    server: &Server,
) -> (Arc<Fake>, Reconciler<Arc<Fake>>, Timestamp) {
    let platform = Arc::new(Fake::new());
    let mut r = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000_000);
    let v1 = shop(infra, server, "1", serde_json::json!({}));
    drive(&mut r, &v1, &mut now, Duration::from_secs(1), 10, |s| {
        s.phase == Phase::Healthy
    })
    .await;
    (platform, r, now)
}

#[tokio::test]
async fn a_passing_web_analysis_walks_the_canary_to_100_percent() {
    let server = Server::start().await;
    let infra = Infra::fake();
    let (platform, mut r, mut now) = converged(&infra, &server).await;
    let v2 = shop(
        &infra,
        &server,
        "2",
        serde_json::json!({"count": 2, "interval": "10s"}),
    );
    let s = drive(&mut r, &v2, &mut now, Duration::from_secs(5), 30, |s| {
        s.phase == Phase::Healthy && s.canary.is_none()
    })
    .await;
    assert_eq!(weights(&platform), (0, 100));
    assert_eq!(server.hits(), 2, "count 2: two measurements, no more");
    let run = s
        .analysis_runs
        .last()
        .expect("the run is kept in the status");
    assert_eq!(run.phase, AnalysisPhase::Succeeded);
    assert_eq!(run.metrics[0].measurements.len(), 2);
    assert_eq!(
        run.metrics[0].measurements[0].value.as_deref(),
        Some("0.001")
    );
    assert_eq!(run.effect.as_deref(), Some("continued to step 3"));
}

#[tokio::test]
async fn a_failing_web_analysis_rolls_back_with_weights_verified_before_scale_down() {
    let server = Server::start().await;
    let infra = Infra::fake();
    let (platform, mut r, mut now) = converged(&infra, &server).await;
    server.answer(200, r#"{"error_rate": 0.2}"#);
    let v2 = shop(&infra, &server, "2", serde_json::json!({}));
    let s = drive(&mut r, &v2, &mut now, Duration::from_secs(5), 30, |s| {
        s.phase == Phase::Aborted && s.canary.is_none()
    })
    .await;
    assert_eq!(weights(&platform), (100, 0), "all traffic back on stable");
    assert_eq!(
        desired_count(&platform, "api-green"),
        0,
        "the canary scaled down"
    );
    assert!(
        s.message
            .contains("analysis failed: errors: 1 of 1 measurements failed"),
        "{}",
        s.message
    );
    assert!(s.message.contains("last value 0.2"), "{}", s.message);
    let order: Vec<&str> = s.events.iter().map(|e| e.reason.as_str()).collect();
    let restored = order
        .iter()
        .position(|r| *r == "WeightRestored")
        .expect("weights verified");
    let scaled = order
        .iter()
        .rposition(|r| *r == "ScaledDown")
        .expect("scaled down");
    assert!(restored < scaled, "{order:?}");
}

#[tokio::test]
async fn provider_faults_are_errors_named_in_the_status_and_fail_past_the_limit() {
    let server = Server::start().await;
    let infra = Infra::fake();
    let (platform, mut r, mut now) = converged(&infra, &server).await;
    server.answer(200, "<html>oops</html>");
    let v2 = shop(
        &infra,
        &server,
        "2",
        serde_json::json!({"consecutiveErrorLimit": 1}),
    );
    let s = drive(&mut r, &v2, &mut now, Duration::from_secs(5), 40, |s| {
        s.phase == Phase::Aborted
    })
    .await;
    assert!(
        s.message
            .contains("2 provider errors in a row, more than consecutiveErrorLimit 1"),
        "{}",
        s.message
    );
    assert!(
        s.message.contains("the answer is not JSON"),
        "{}",
        s.message
    );
    let _ = platform;
    // A server that does not answer in time is an error too, never a pass.
    let (_, mut r, mut now) = converged(&infra, &server).await;
    server.reply.lock().unwrap().delay = Duration::from_secs(3);
    server.answer(200, r#"{"error_rate": 0.0}"#);
    let s = drive(&mut r, &v2, &mut now, Duration::from_secs(5), 40, |s| {
        s.phase == Phase::Aborted
    })
    .await;
    assert!(s.message.contains("timed out"), "{}", s.message);
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_run_resumes_it_with_its_measurements() {
    let server = Server::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut infra = Infra::fake();
    infra.status_uri = Some(format!("file://{}/status.json", dir.path().display()));
    let (platform, mut r, mut now) = converged(&infra, &server).await;
    let v2 = shop(
        &infra,
        &server,
        "2",
        serde_json::json!({"count": 3, "interval": "10s"}),
    );
    drive(&mut r, &v2, &mut now, Duration::from_secs(5), 20, |s| {
        s.analysis_runs
            .last()
            .is_some_and(|run| run.metrics[0].count == 2)
    })
    .await;
    assert_eq!(server.hits(), 2);
    drop(r); // the controller dies; the status file is all that is left
    let mut r = Reconciler::new(platform.clone(), None);
    let s = drive(&mut r, &v2, &mut now, Duration::from_secs(5), 20, |s| {
        s.phase == Phase::Healthy && s.canary.is_none()
    })
    .await;
    assert_eq!(
        server.hits(),
        3,
        "the run resumed: one more measurement, not three"
    );
    assert_eq!(s.analysis_runs.last().unwrap().metrics[0].count, 3);
    assert_eq!(weights(&platform), (0, 100));
}
