//! The Prometheus provider against a real Prometheus server (Debian's package) that
//! scrapes a real process of ours: the backend workload, whose inference upstream is
//! unreachable so `/api/predict` answers 5xx. `.ci/test` starts both on free loopback
//! ports and exports `TUGBOAT_PROMETHEUS_URL` and `TUGBOAT_SCRAPED_BACKEND_URL`; without
//! them these tests fail saying so, never pass silently.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::{Infra, Spec, app, desired};
use tugboat::analysis::prometheus::Prometheus;
use tugboat::analysis::{EnvSecrets, MetricProvider, MetricRequest};
use tugboat::condition::Value;
use tugboat::document::{AnalysisTemplate, Strategy};
use tugboat::observed::Answer;
use tugboat::platform::memory::MemoryPlatform as Fake;
use tugboat::runtime::Reconciler;
use tugboat::status::{AnalysisPhase, Phase, Timestamp};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: this test needs the real Prometheus and backend that .ci/test \
             starts; run it through .ci/test"
        )
    })
}

fn template(address: &str, query: &str, success: &str) -> AnalysisTemplate {
    serde_json::from_value(serde_json::json!({
        "name": "backend-5xx",
        "provider": {"prometheus": {"address": address, "timeout": "3s"}},
        "query": query,
        "successCondition": success,
    }))
    .unwrap()
}

async fn ask(t: &AnalysisTemplate) -> Answer {
    let request = MetricRequest {
        template: t.clone(),
        query: t.query.clone(),
        args: BTreeMap::new(),
        load_balancer: None,
        now: Timestamp::now(),
    };
    Prometheus::new(Arc::new(EnvSecrets))
        .measure(&request)
        .await
}

/// Sends `ok` health checks and `failing` predictions (5xx: the upstream is down) to the
/// backend, then waits until Prometheus has scraped at least that many 5xx answers.
async fn traffic(ok: usize, failing: usize) -> f64 {
    let backend = env("TUGBOAT_SCRAPED_BACKEND_URL");
    let http = reqwest::Client::new();
    for _ in 0..ok {
        let r = http.get(format!("{backend}/health")).send().await.unwrap();
        assert!(r.status().is_success());
    }
    let mut before = None;
    for _ in 0..failing {
        let r = http
            .post(format!("{backend}/api/predict"))
            .header("content-type", "application/json")
            .body(r#"{"features": [1.0, 2.0, 3.0]}"#)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_server_error(), "{}", r.status());
        before.get_or_insert(());
    }
    let t = template(
        &env("TUGBOAT_PROMETHEUS_URL"),
        r#"sum(tugboat_http_requests_total{job="backend",status=~"5.."})"#,
        "true",
    );
    // Scrapes come every second; wait for one that saw the requests (not a timing
    // assertion: the test only waits for data to arrive).
    for _ in 0..100 {
        if let Answer::Value(v) = ask(&t).await
            && v.as_number().is_some_and(|n| n >= failing as f64)
        {
            return v.as_number().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("Prometheus never saw {failing} 5xx answers of the backend");
}

#[tokio::test]
async fn vectors_scalars_no_data_and_rejected_queries_from_a_real_prometheus() {
    let prom = env("TUGBOAT_PROMETHEUS_URL");
    let seen = traffic(2, 3).await;
    assert!(seen >= 3.0);
    // A vector: one value per series, `result[0]` and `len(result)` in conditions.
    let vector = ask(&template(
        &prom,
        r#"tugboat_http_requests_total{job="backend"}"#,
        "true",
    ))
    .await;
    match vector {
        Answer::Value(Value::List(l)) => {
            assert!(l.len() >= 2, "a series per route and status: {l:?}")
        }
        other => panic!("{other:?}"),
    }
    let scalar = ask(&template(&prom, "scalar(vector(0.25))", "true")).await;
    assert_eq!(scalar, Answer::Value(Value::Number(0.25)));
    let empty = ask(&template(
        &prom,
        r#"tugboat_http_requests_total{job="nobody"}"#,
        "true",
    ))
    .await;
    assert_eq!(
        empty,
        Answer::NoData("the query returned an empty vector".into())
    );
    match ask(&template(&prom, "sum(", "true")).await {
        Answer::Error(e) => {
            assert!(e.starts_with("template backend-5xx: Prometheus at"), "{e}");
            assert!(e.contains("rejected the query (HTTP 400): bad_data"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let matrix = ask(&template(&prom, "up[1m]", "true")).await;
    assert!(
        matches!(&matrix, Answer::Error(e) if e.contains("range vector")),
        "{matrix:?}"
    );
}

#[tokio::test]
async fn a_prometheus_that_is_down_is_an_error_naming_the_template() {
    // A port nobody listens on: bind one, drop it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let answer = ask(&template(&format!("http://127.0.0.1:{port}"), "up", "true")).await;
    match answer {
        Answer::Error(e) => {
            assert!(e.contains("template backend-5xx"), "{e}");
            assert!(e.contains("cannot connect (is Prometheus up?)"), "{e}");
        }
        other => panic!("a Prometheus that is down is never data: {other:?}"),
    }
}

/// The loop end to end over the memory platform: the canary's analysis asks the real
/// Prometheus for the backend's 5xx share; below the limit it walks to 100%, above it
/// rolls back.
#[tokio::test]
async fn the_backends_5xx_share_from_prometheus_decides_the_canary() {
    let prom = env("TUGBOAT_PROMETHEUS_URL");
    traffic(1, 1).await;
    let share = r#"sum(tugboat_http_requests_total{job="backend",status=~"5.."}) / sum(tugboat_http_requests_total{job="backend"})"#;
    for (limit, passes) in [("result < 1.01", true), ("result < 0.0001", false)] {
        let infra = Infra::fake();
        let mut a = app(
            &infra,
            &[Spec::canary(
                "api",
                "api:1",
                "tg-api-blue",
                "tg-api-green",
                10,
            )],
        );
        a.spec.analysis_templates = vec![template(&prom, share, limit)];
        if let Strategy::Canary(c) = &mut a.spec.workloads[0].strategy {
            c.steps = serde_json::from_value(serde_json::json!([
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": "backend-5xx"}]}},
                {"setWeight": 100},
            ]))
            .unwrap();
        }
        let platform = Arc::new(Fake::new());
        let mut r = Reconciler::new(platform.clone(), None);
        let mut now = Timestamp::from_secs(1_000_000);
        let mut doc = desired(a.clone(), "1");
        for _ in 0..5 {
            r.pass(&doc, now).await.unwrap();
            now = now.plus(Duration::from_secs(1));
        }
        a.spec.workloads[0].image = "api:2".into();
        doc = desired(a, "2");
        let mut last = None;
        for _ in 0..20 {
            let report = r.pass(&doc, now).await.unwrap();
            now = now.plus(Duration::from_secs(5));
            let s = report.status.workloads["api"].clone();
            if s.canary.is_none() && matches!(s.phase, Phase::Healthy | Phase::Aborted) {
                last = Some(s);
                break;
            }
        }
        let s = last.expect("the rollout ends");
        let run = s.analysis_runs.last().expect("a run");
        if passes {
            assert_eq!(s.phase, Phase::Healthy, "{}", s.message);
            assert_eq!(run.phase, AnalysisPhase::Succeeded);
        } else {
            assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
            assert_eq!(run.phase, AnalysisPhase::Failed);
            assert!(s.message.contains("backend-5xx"), "{}", s.message);
        }
    }
}
