//! Bad input, fuzzed (proptest, a bounded number of cases per run: `PROPTEST_CASES`
//! overrides the 256 here): random bytes, random JSON trees, huge numbers, deep
//! nesting, invalid UTF-8 and random content types sent to `/predict` and
//! `/predict/batch` never panic and never get a 5xx; every refusal is a 4xx with
//! the documented error body. And a body far larger than the limit is refused
//! after reading about the limit, not the whole body: memory stays bounded.

mod common;

use std::sync::OnceLock;
use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt as _;
use tugboat_inference::{AppState, LoadedModel, Settings, app};

#[path = "../../service-kit/tests/support/fuzz_inputs.rs"]
mod fuzz_inputs;

#[path = "../../service-kit/tests/support/endless_body.rs"]
mod endless_body;

const LIMIT: usize = 16 * 1024;

fn state() -> AppState {
    static MODEL: OnceLock<LoadedModel> = OnceLock::new();
    let state = AppState::new(Settings {
        max_body_bytes: LIMIT,
        max_batch: 8,
        ..Settings::default()
    });
    assert!(state.install(MODEL.get_or_init(|| common::load_committed("v1")).clone()));
    state
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

/// Send one request; check the answer is a success or a well-formed 4xx.
fn check(uri: &str, body: Vec<u8>, content_type: Option<String>) -> Result<(), TestCaseError> {
    let mut request = Request::builder().method("POST").uri(uri);
    if let Some(ct) = &content_type {
        prop_assume!(axum::http::HeaderValue::from_str(ct).is_ok());
        request = request.header("content-type", ct);
    }
    let request = request.body(Body::from(body)).unwrap();
    let (status, bytes) = runtime().block_on(async {
        let response = app(state()).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, bytes)
    });
    let text = String::from_utf8_lossy(&bytes);
    prop_assert!(
        !status.is_server_error(),
        "{uri} answered {status} to a client mistake: {text}"
    );
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {text}")))?;
    if status.is_success() {
        prop_assert!(body.get("model_version").is_some(), "{text}");
    } else {
        prop_assert!(status.is_client_error(), "{status}");
        prop_assert!(
            body["error"].is_string() && body["kind"].is_string(),
            "{text}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        // CI gets a fresh clone: a regressions file would only be noise there.
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn predict_never_panics_or_answers_5xx(
        body in fuzz_inputs::body(),
        content_type in fuzz_inputs::content_type(),
        ml in any::<bool>(),
    ) {
        check(if ml { "/ml/predict" } else { "/predict" }, body, content_type)?;
    }

    #[test]
    fn predict_batch_never_panics_or_answers_5xx(
        body in fuzz_inputs::body(),
        content_type in fuzz_inputs::content_type(),
    ) {
        check("/predict/batch", body, content_type)?;
    }
}

#[tokio::test]
async fn a_body_far_beyond_the_limit_is_refused_after_reading_about_the_limit() {
    let (body, pulled) = endless_body::EndlessBody::new(64 * 1024 * 1024);
    let request = Request::builder()
        .method("POST")
        .uri("/predict")
        .header("content-type", "application/json")
        .body(Body::new(body))
        .unwrap();
    let response = app(state()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(
        pulled <= LIMIT + endless_body::CHUNK,
        "read {pulled} bytes of a body limited to {LIMIT}"
    );
}
