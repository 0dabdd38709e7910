//! The fault switch through the real router: off by default, `FAULT_RATE` fails
//! exactly that share of prediction requests with a JSON 500, `FAULT_LATENCY`
//! delays them, and health, readiness and metrics are never touched.

mod common;

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::{call, features_json, held_out, ready_state};
use tugboat_inference::{Faults, Settings, app};

fn with_faults(rate: f64, latency: Duration) -> Settings {
    Settings {
        faults: Faults { rate, latency },
        ..Settings::default()
    }
}

async fn predict_statuses(settings: Settings, uri: &str, n: usize) -> Vec<StatusCode> {
    let state = ready_state("v1", settings);
    let router = app(state);
    let body = features_json(&held_out("v1").rows[0].features);
    let mut statuses = Vec::new();
    for _ in 0..n {
        statuses.push(
            call(router.clone(), "POST", uri, Some(&body), None)
                .await
                .status,
        );
    }
    statuses
}

#[tokio::test]
async fn off_by_default_every_prediction_succeeds() {
    let statuses = predict_statuses(Settings::default(), "/predict", 50).await;
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 50);
}

#[tokio::test]
async fn fault_rate_fails_exactly_that_share_with_a_json_500() {
    let statuses = predict_statuses(with_faults(0.25, Duration::ZERO), "/ml/predict", 40).await;
    let failed = statuses
        .iter()
        .filter(|s| **s == StatusCode::INTERNAL_SERVER_ERROR)
        .count();
    let ok = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    assert_eq!((failed, ok), (10, 30), "{statuses:?}");

    let state = ready_state("v1", with_faults(1.0, Duration::ZERO));
    let body = features_json(&held_out("v1").rows[0].features);
    let answer = call(app(state.clone()), "POST", "/predict", Some(&body), None).await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer.body["kind"], "fault_injected");
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("FAULT_RATE")
    );
    let batch = serde_json::json!({ "instances": [held_out("v1").rows[0].features] }).to_string();
    let answer = call(
        app(state.clone()),
        "POST",
        "/predict/batch",
        Some(&batch),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::INTERNAL_SERVER_ERROR);
    // Health, readiness and metrics are untouched even at rate 1.
    for uri in ["/health", "/ready", "/ml/ready", "/metrics", "/model"] {
        let answer = call(app(state.clone()), "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{uri}: {}", answer.text);
    }
    let metrics = call(app(state), "GET", "/metrics", None, None).await;
    assert!(
        metrics
            .text
            .contains("tugboat_http_errors_total{service=\"inference\",kind=\"fault_injected\"} 2"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn fault_latency_delays_predictions() {
    let latency = Duration::from_millis(60);
    let state = ready_state("v1", with_faults(0.0, latency));
    let body = features_json(&held_out("v1").rows[0].features);
    // A lower bound only: a sleep never ends early, however loaded the machine.
    let started = Instant::now();
    let answer = call(app(state), "POST", "/predict", Some(&body), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());
}

/// The limits wrap the fault switch on every prediction route: injected latency past
/// the request deadline is a JSON 504 `timeout`, not a late answer.
#[tokio::test]
async fn injected_latency_counts_against_the_request_deadline() {
    let settings = Settings {
        request_timeout: Duration::from_millis(50),
        ..with_faults(0.0, Duration::from_secs(30))
    };
    let state = ready_state("v1", settings);
    let row = held_out("v1").rows[0].features.clone();
    let one = features_json(&row);
    let batch = serde_json::json!({ "instances": [row] }).to_string();
    for (uri, body) in [
        ("/predict", &one),
        ("/ml/predict", &one),
        ("/predict/batch", &batch),
        ("/ml/predict/batch", &batch),
    ] {
        let started = Instant::now();
        let answer = call(app(state.clone()), "POST", uri, Some(body), None).await;
        assert_eq!(
            answer.status,
            StatusCode::GATEWAY_TIMEOUT,
            "{uri}: {}",
            answer.text
        );
        assert_eq!(answer.body["kind"], "timeout", "{uri}");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{uri}: answered only after the injected latency"
        );
    }
}
