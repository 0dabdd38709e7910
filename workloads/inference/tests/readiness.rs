//! Liveness vs readiness, and the model-load retry: a transient fetch failure is
//! retried with capped exponential backoff until it loads or no attempt is left; a
//! failed check (checksum, version) is tried exactly once. `/ready` shows each state.

mod common;

use std::cell::Cell;
use std::time::Duration;

use axum::http::StatusCode;
use common::{call, load_committed};
use tugboat_inference::{
    AppState, ArtifactError, Expected, LoadError, LoadStatus, ModelSource, RetryPolicy, Settings,
    app, load_and_install, retry_load,
};

fn transient() -> LoadError {
    LoadError::Artifact(ArtifactError::S3Get {
        bucket: "models".into(),
        key: "v1/model.onnx".into(),
        message: "dispatch failure: connection refused".into(),
        transient: true,
    })
}

fn mismatch() -> LoadError {
    LoadError::Artifact(ArtifactError::ChecksumMismatch {
        expected_by: "metadata.json",
        expected: "00".repeat(32),
        actual: "11".repeat(32),
    })
}

fn quick(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempts,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(4),
    }
}

#[test]
fn backoff_doubles_is_capped_and_stops_after_the_last_attempt() {
    let policy = RetryPolicy {
        attempts: 6,
        initial_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(3),
    };
    let delays: Vec<_> = (1..=6).map(|a| policy.delay_after(a)).collect();
    assert_eq!(
        delays,
        vec![
            Some(Duration::from_millis(500)),
            Some(Duration::from_secs(1)),
            Some(Duration::from_secs(2)),
            Some(Duration::from_secs(3)),
            Some(Duration::from_secs(3)),
            None,
        ]
    );
    assert_eq!(RetryPolicy::once().delay_after(1), None);
    // Huge attempt numbers saturate instead of overflowing.
    let forever = RetryPolicy {
        attempts: u32::MAX,
        ..policy
    };
    assert_eq!(forever.delay_after(200), Some(Duration::from_secs(3)));
}

#[tokio::test]
async fn a_transient_failure_is_retried_until_the_model_loads() {
    let calls = Cell::new(0u32);
    let mut seen = Vec::new();
    let model = retry_load(
        quick(5),
        || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(transient())
                } else {
                    Ok(load_committed("v1"))
                }
            }
        },
        |attempt, err, next| seen.push((attempt, err.is_transient(), next.is_some())),
    )
    .await
    .expect("loads on the third attempt");
    assert_eq!(model.version(), "v1");
    assert_eq!(calls.get(), 3);
    assert_eq!(seen, vec![(1, true, true), (2, true, true)]);
}

#[tokio::test]
async fn a_checksum_mismatch_is_never_retried() {
    let calls = Cell::new(0u32);
    let mut seen = Vec::new();
    let (err, attempts) = retry_load(
        quick(5),
        || {
            calls.set(calls.get() + 1);
            async { Err(mismatch()) }
        },
        |attempt, _, next| seen.push((attempt, next)),
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert!(matches!(
        err,
        LoadError::Artifact(ArtifactError::ChecksumMismatch { .. })
    ));
    assert_eq!((calls.get(), attempts), (1, 1));
    assert_eq!(seen, vec![(1, None)]);
}

#[tokio::test]
async fn transient_failures_stop_when_no_attempt_is_left() {
    let calls = Cell::new(0u32);
    let (err, attempts) = retry_load(
        quick(3),
        || {
            calls.set(calls.get() + 1);
            async { Err(transient()) }
        },
        |_, _, _| {},
    )
    .await
    .map(|_| ())
    .unwrap_err();
    assert!(err.is_transient());
    assert_eq!((calls.get(), attempts), (3, 3));
}

#[tokio::test]
async fn ready_reports_loading_retrying_failed_and_ready() {
    let state = AppState::new(Settings::default());
    let ready = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["load"], "loading");

    state.record_load_retry(2, "cannot get s3://m/v1/model.onnx: timeout".into());
    let ready = call(app(state.clone()), "GET", "/ml/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["status"], "not_ready");
    assert_eq!(ready.body["load"], "retrying");
    assert_eq!(ready.body["attempts"], 2);
    assert!(ready.body["error"].as_str().unwrap().contains("timeout"));
    // Liveness is independent of all of this.
    let health = call(app(state.clone()), "GET", "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);

    state.record_load_failure(3, "gave up".into());
    assert_eq!(
        state.load_status(),
        LoadStatus::Failed {
            attempts: 3,
            reason: "gave up".into()
        }
    );
    let ready = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(ready.body["load"], "failed");

    assert!(state.install(load_committed("v1")));
    let ready = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(state.load_status(), LoadStatus::Ready);
}

#[tokio::test]
async fn a_tampered_artifact_fails_after_one_attempt_with_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::model_dir("v1");
    let mut onnx = std::fs::read(good.join("model.onnx")).unwrap();
    onnx[0] ^= 0x01;
    std::fs::write(dir.path().join("model.onnx"), onnx).unwrap();
    std::fs::copy(good.join("metadata.json"), dir.path().join("metadata.json")).unwrap();
    let state = AppState::new(Settings::default());
    let source = ModelSource::from_uri(dir.path().to_str().unwrap()).unwrap();
    assert!(!load_and_install(state.clone(), source, Expected::default()).await);
    match state.load_status() {
        LoadStatus::Failed { attempts, reason } => {
            assert_eq!(attempts, 1, "a checksum mismatch must not be retried");
            assert!(reason.contains("sha256 mismatch"), "{reason}");
        }
        other => panic!("expected Failed, got {other:?}"),
    }
}
