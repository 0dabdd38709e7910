//! Loading from S3 against the AWS emulator (moto's server): a good artifact is
//! served; a tampered one, a wrong MODEL_SHA256 and a missing object are refused
//! with a reason.
//!
//! These tests need `AWS_ENDPOINT_URL` (and test credentials and region); `.ci/test`
//! starts the emulator and exports them. Without it they fail rather than pass
//! silently, so a run that skipped S3 cannot look green.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_s3::primitives::ByteStream;
use axum::http::StatusCode;
use common::{call, features_json, held_out, model_dir};
use tugboat_inference::{
    AppState, ArtifactError, Expected, LoadError, LoadStatus, ModelSource, Settings, app, artifact,
    load, load_and_install,
};

fn require_emulator() {
    if std::env::var_os("AWS_ENDPOINT_URL").is_none() {
        panic!(
            "AWS_ENDPOINT_URL is not set: these tests need the S3 emulator. Run them through \
             .ci/test, which starts moto's server and exports AWS_ENDPOINT_URL, \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION."
        );
    }
}

/// A fresh bucket per test: tests may run concurrently against one emulator.
async fn fresh_bucket(client: &aws_sdk_s3::Client) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let bucket = format!(
        "tugboat-models-{}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    client
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "create bucket {bucket}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
    bucket
}

async fn put(client: &aws_sdk_s3::Client, bucket: &str, key: &str, bytes: Vec<u8>) {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(bytes))
        .send()
        .await
        .unwrap_or_else(|e| {
            panic!(
                "put s3://{bucket}/{key}: {}",
                aws_sdk_s3::error::DisplayErrorContext(&e)
            )
        });
}

/// Upload a committed version under `prefix`, with `model.onnx` bytes optionally
/// replaced.
async fn publish(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    prefix: &str,
    version: &str,
    onnx_override: Option<Vec<u8>>,
) {
    let dir = model_dir(version);
    let onnx = onnx_override.unwrap_or_else(|| std::fs::read(dir.join("model.onnx")).unwrap());
    put(client, bucket, &format!("{prefix}/model.onnx"), onnx).await;
    put(
        client,
        bucket,
        &format!("{prefix}/metadata.json"),
        std::fs::read(dir.join("metadata.json")).unwrap(),
    )
    .await;
}

#[tokio::test]
async fn a_good_artifact_from_s3_is_loaded_and_served() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    publish(&client, &bucket, "models/v2", "v2", None).await;

    let state = AppState::new(Settings::default());
    let source = ModelSource::from_uri(&format!("s3://{bucket}/models/v2")).unwrap();
    let expected = Expected {
        sha256: Some(common::load_committed("v2").metadata().sha256.clone()),
        version: Some("v2".into()),
    };
    assert!(load_and_install(state.clone(), source, expected).await);

    let ready = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["model_version"], "v2");
    let row = &held_out("v2").rows[0];
    let answer = call(
        app(state),
        "POST",
        "/predict",
        Some(&features_json(&row.features)),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["prediction"], row.prediction);
    assert_eq!(answer.body["model_version"], "v2");
}

#[tokio::test]
async fn the_seed_bucket_and_key_variables_work() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    publish(&client, &bucket, "v1", "v1", None).await;
    // S3_MODEL_BUCKET + MODEL_VERSION, key defaulting to <version>/model.onnx.
    let source = ModelSource::resolve(None, Some(&bucket), None, Some("v1")).unwrap();
    let model = load(&source, &Expected::default()).await.unwrap();
    assert_eq!(model.version(), "v1");
}

#[tokio::test]
async fn a_tampered_artifact_in_s3_is_never_served() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    // v1's metadata with v2's model bytes: a replaced object.
    let foreign = std::fs::read(model_dir("v2").join("model.onnx")).unwrap();
    publish(&client, &bucket, "models/v1", "v1", Some(foreign)).await;

    let source = ModelSource::from_uri(&format!("s3://{bucket}/models/v1")).unwrap();
    let err = load(&source, &Expected::default()).await.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Artifact(ArtifactError::ChecksumMismatch {
                expected_by: "metadata.json",
                ..
            })
        ),
        "{err}"
    );

    let state = AppState::new(Settings::default());
    assert!(!load_and_install(state.clone(), source, Expected::default()).await);
    let ready = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        ready.body["error"]
            .as_str()
            .unwrap()
            .contains("sha256 mismatch"),
        "{}",
        ready.text
    );
    let answer = call(
        app(state),
        "POST",
        "/predict",
        Some(&features_json(&held_out("v1").rows[0].features)),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn an_artifact_that_differs_from_model_sha256_is_refused() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    publish(&client, &bucket, "v1", "v1", None).await;
    let source = ModelSource::from_uri(&format!("s3://{bucket}/v1/model.onnx")).unwrap();
    let expected = Expected {
        // What the controller resolved earlier: v2's checksum.
        sha256: Some(common::load_committed("v2").metadata().sha256.clone()),
        version: None,
    };
    let err = load(&source, &expected).await.unwrap_err();
    assert!(
        matches!(
            err,
            LoadError::Artifact(ArtifactError::ChecksumMismatch {
                expected_by: "MODEL_SHA256",
                ..
            })
        ),
        "{err}"
    );
}

#[tokio::test]
async fn a_missing_object_is_an_error_naming_it() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    let source = ModelSource::from_uri(&format!("s3://{bucket}/v9")).unwrap();
    let err = load(&source, &Expected::default()).await.unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, LoadError::Artifact(ArtifactError::S3Get { .. })),
        "{message}"
    );
    assert!(
        message.contains(&format!("s3://{bucket}/v9/model.onnx")),
        "{message}"
    );
}

/// A TCP forwarder to the emulator that starts listening on `port` only when told:
/// until then connecting is refused, a transient cause a model load must outlast.
async fn forward_later(port: u16, start: tokio::sync::oneshot::Receiver<()>) {
    let upstream = std::env::var("AWS_ENDPOINT_URL").unwrap();
    let upstream = upstream
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let _ = start.await;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(upstream).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[tokio::test]
async fn a_load_that_fails_for_a_transient_cause_is_retried_and_then_served() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    publish(&client, &bucket, "v1", "v1", None).await;

    // A port nothing listens on yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let through_proxy = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&shared)
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .force_path_style(true)
            // Our retry, not the SDK's, is under test.
            .retry_config(aws_sdk_s3::config::retry::RetryConfig::disabled())
            .build(),
    );
    let (start, started) = tokio::sync::oneshot::channel();
    tokio::spawn(forward_later(port, started));

    let state = AppState::new(Settings::default());
    let source = ModelSource::from_uri(&format!("s3://{bucket}/v1")).unwrap();
    let policy = tugboat_inference::RetryPolicy {
        attempts: 50,
        initial_backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_millis(100),
    };
    let loader = tokio::spawn(tugboat_inference::load_and_install_with(
        state.clone(),
        source,
        Expected::default(),
        policy,
        Some(through_proxy),
    ));
    // Wait (bounded by the attempts above, not by a clock) until a retry is pending.
    loop {
        if let LoadStatus::Retrying { last_error, .. } = state.load_status() {
            assert!(last_error.contains(&bucket), "{last_error}");
            break;
        }
        assert!(!loader.is_finished(), "the load ended before any retry");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let ready = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["load"], "retrying");

    start.send(()).unwrap();
    assert!(loader.await.unwrap(), "loaded once S3 was reachable");
    let ready = call(app(state), "GET", "/ready", None, None).await;
    assert_eq!(ready.status, StatusCode::OK, "{}", ready.text);
    assert_eq!(ready.body["model_version"], "v1");
}

#[tokio::test]
async fn a_missing_object_is_not_retried() {
    require_emulator();
    let client = artifact::s3_client().await;
    let bucket = fresh_bucket(&client).await;
    let state = AppState::new(Settings::default());
    let source = ModelSource::from_uri(&format!("s3://{bucket}/v9")).unwrap();
    assert!(!load_and_install(state.clone(), source, Expected::default()).await);
    assert!(
        matches!(state.load_status(), LoadStatus::Failed { attempts: 1, .. }),
        "{:?}",
        state.load_status()
    );
}
