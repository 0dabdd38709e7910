//! Bad input, fuzzed (proptest, a bounded number of cases per run: `PROPTEST_CASES`
//! overrides the 256 here): random bytes, random JSON trees, huge numbers, deep
//! nesting, invalid UTF-8 and random content types sent to `/api/predict` (in
//! front of a real inference service) never panic and never get a 5xx; every
//! refusal is a 4xx with the documented error body. And a body far larger than the
//! limit is refused after reading about the limit: memory stays bounded.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt as _;
use tugboat_backend::{AppState, Settings, UpstreamSettings, app};

#[path = "../../service-kit/tests/support/fuzz_inputs.rs"]
mod fuzz_inputs;

#[path = "../../service-kit/tests/support/endless_body.rs"]
mod endless_body;

const LIMIT: usize = 16 * 1024;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Runtime::new().unwrap())
}

/// A real inference service with the committed v1 model, on the shared runtime.
fn inference() -> SocketAddr {
    static ADDR: OnceLock<SocketAddr> = OnceLock::new();
    *ADDR.get_or_init(|| {
        runtime().block_on(async {
            let state = tugboat_inference::AppState::new(tugboat_inference::Settings::default());
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inference/models/v1");
            let source = tugboat_inference::ModelSource::from_uri(dir.to_str().unwrap()).unwrap();
            assert!(
                tugboat_inference::load_and_install(state.clone(), source, Default::default())
                    .await
            );
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                let _ = axum::serve(listener, tugboat_inference::app(state)).await;
            });
            addr
        })
    })
}

fn state() -> AppState {
    static STATE: OnceLock<AppState> = OnceLock::new();
    STATE
        .get_or_init(|| {
            AppState::new(
                Settings {
                    max_body_bytes: LIMIT,
                    ..Settings::default()
                },
                UpstreamSettings {
                    base_url: format!("http://{}", inference()),
                    timeout: Duration::from_secs(30),
                    retries: 0,
                    retry_backoff: Duration::ZERO,
                },
            )
            .unwrap()
        })
        .clone()
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

fn check(body: Vec<u8>, content_type: Option<String>) -> Result<(), TestCaseError> {
    let mut request = Request::builder().method("POST").uri("/api/predict");
    if let Some(ct) = &content_type {
        prop_assume!(axum::http::HeaderValue::from_str(ct).is_ok());
        request = request.header("content-type", ct);
    }
    let request = request.body(Body::from(body)).unwrap();
    let state = state();
    let (status, bytes) = runtime().block_on(async {
        let response = app(state).oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, bytes)
    });
    let text = String::from_utf8_lossy(&bytes);
    prop_assert!(
        !status.is_server_error(),
        "/api/predict answered {status} to a client mistake: {text}"
    );
    let body: Value = serde_json::from_slice(&bytes)
        .map_err(|e| TestCaseError::fail(format!("{status}: not JSON ({e}): {text}")))?;
    if status.is_success() {
        prop_assert!(body.get("prediction").is_some(), "{text}");
    } else {
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
    fn api_predict_never_panics_or_answers_5xx(
        body in fuzz_inputs::body(),
        content_type in fuzz_inputs::content_type(),
    ) {
        check(body, content_type)?;
    }
}

#[test]
fn a_body_far_beyond_the_limit_is_refused_after_reading_about_the_limit() {
    let (body, pulled) = endless_body::EndlessBody::new(64 * 1024 * 1024);
    let request = Request::builder()
        .method("POST")
        .uri("/api/predict")
        .header("content-type", "application/json")
        .body(Body::new(body))
        .unwrap();
    let state = state();
    let status = runtime().block_on(async { app(state).oneshot(request).await.unwrap().status() });
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let pulled = pulled.load(Ordering::Relaxed);
    assert!(
        pulled <= LIMIT + endless_body::CHUNK,
        "read {pulled} bytes of a body limited to {LIMIT}"
    );
}
