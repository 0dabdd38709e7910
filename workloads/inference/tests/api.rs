//! Handler tests: every route, at `/` and under `/ml`, and every class of bad input,
//! through `app(state).oneshot(..)`.

mod common;

use axum::http::StatusCode;
use common::{Answer, call, features_json, held_out, ready_state};
use serde_json::json;
use tugboat_inference::{AppState, Expected, ModelSource, Settings, app, load_and_install};

fn settings() -> Settings {
    Settings {
        max_batch: 8,
        max_body_bytes: 16 * 1024,
        ..Settings::default()
    }
}

fn a_row() -> Vec<f64> {
    held_out("v1").rows[0].features.clone()
}

fn assert_error(answer: &Answer, status: StatusCode, message_part: &str) {
    assert_eq!(answer.status, status, "body: {}", answer.text);
    let message = answer.body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no JSON error in {:?}", answer.text));
    assert!(
        message.contains(message_part),
        "error {message:?} should contain {message_part:?}"
    );
    assert_eq!(
        answer.headers["content-type"], "application/json",
        "errors are JSON"
    );
}

#[tokio::test]
async fn health_answers_with_the_model_version_at_both_prefixes() {
    let state = ready_state("v2", settings());
    for uri in ["/health", "/ml/health"] {
        let answer = call(app(state.clone()), "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            json!({"status": "healthy", "service": "ml-model-service", "model_version": "v2"})
        );
    }
}

#[tokio::test]
async fn not_ready_until_a_verified_model_is_installed() {
    let state = AppState::new(settings());
    let answer = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["status"], "not_ready");
    // Liveness does not depend on the model.
    let health = call(app(state.clone()), "GET", "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    assert_eq!(health.body["model_version"], serde_json::Value::Null);
    // Nothing is predicted without a model.
    let answer = call(
        app(state.clone()),
        "POST",
        "/predict",
        Some(&features_json(&a_row())),
        None,
    )
    .await;
    assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "not loaded");
    let answer = call(app(state.clone()), "GET", "/model", None, None).await;
    assert_error(&answer, StatusCode::SERVICE_UNAVAILABLE, "not loaded");

    let source = ModelSource::from_uri(common::model_dir("v1").to_str().unwrap()).unwrap();
    assert!(load_and_install(state.clone(), source, Expected::default()).await);
    let answer = call(app(state), "GET", "/ml/ready", None, None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body["status"], "ready");
    assert_eq!(answer.body["model_version"], "v1");
}

#[tokio::test]
async fn a_tampered_local_artifact_is_never_served_and_ready_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::model_dir("v1");
    let mut onnx = std::fs::read(good.join("model.onnx")).unwrap();
    let last = onnx.len() - 1;
    onnx[last] ^= 0x01;
    std::fs::write(dir.path().join("model.onnx"), onnx).unwrap();
    std::fs::copy(good.join("metadata.json"), dir.path().join("metadata.json")).unwrap();

    let state = AppState::new(settings());
    let source = ModelSource::from_uri(dir.path().to_str().unwrap()).unwrap();
    assert!(!load_and_install(state.clone(), source, Expected::default()).await);
    let answer = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    let reason = answer.body["error"].as_str().unwrap();
    assert!(reason.contains("sha256 mismatch"), "{reason}");
    let answer = call(
        app(state),
        "POST",
        "/predict",
        Some(&features_json(&a_row())),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn a_wrong_model_sha256_or_version_is_refused() {
    let source = ModelSource::from_uri(common::model_dir("v1").to_str().unwrap()).unwrap();
    let wrong_sha = Expected {
        sha256: Some("ab".repeat(32)),
        version: None,
    };
    let state = AppState::new(settings());
    assert!(!load_and_install(state.clone(), source.clone(), wrong_sha).await);
    let answer = call(app(state), "GET", "/ready", None, None).await;
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("MODEL_SHA256")
    );

    let wrong_version = Expected {
        sha256: None,
        version: Some("v2".into()),
    };
    let state = AppState::new(settings());
    assert!(!load_and_install(state.clone(), source, wrong_version).await);
    let answer = call(app(state), "GET", "/ready", None, None).await;
    assert!(
        answer.body["error"]
            .as_str()
            .unwrap()
            .contains("version mismatch")
    );
}

#[tokio::test]
async fn predict_answers_with_the_seed_fields_at_both_prefixes() {
    let state = ready_state("v1", settings());
    let row = &held_out("v1").rows[0];
    for uri in ["/predict", "/ml/predict"] {
        let answer = call(
            app(state.clone()),
            "POST",
            uri,
            Some(&features_json(&row.features)),
            None,
        )
        .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["prediction"], row.prediction);
        assert_eq!(answer.body["model_version"], "v1");
        let probabilities = answer.body["probabilities"].as_array().unwrap();
        assert_eq!(probabilities.len(), 2);
        let confidence = answer.body["confidence"].as_f64().unwrap();
        let max = probabilities
            .iter()
            .map(|p| p.as_f64().unwrap())
            .fold(0.0, f64::max);
        assert_eq!(confidence, max);
        assert!(answer.body["label"].is_string());
    }
}

#[tokio::test]
async fn predict_batch_answers_one_prediction_per_instance() {
    let state = ready_state("v2", settings());
    let rows = held_out("v2").rows;
    let instances: Vec<_> = rows.iter().take(5).map(|r| r.features.clone()).collect();
    for uri in ["/predict/batch", "/ml/predict/batch"] {
        let body = json!({ "instances": instances }).to_string();
        let answer = call(app(state.clone()), "POST", uri, Some(&body), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(answer.body["model_version"], "v2");
        let predictions = answer.body["predictions"].as_array().unwrap();
        assert_eq!(predictions.len(), 5);
        for (p, row) in predictions.iter().zip(&rows) {
            assert_eq!(p["prediction"], row.prediction);
        }
    }
}

#[tokio::test]
async fn model_route_serves_the_metadata() {
    let state = ready_state("v2", settings());
    for uri in ["/model", "/ml/model"] {
        let answer = call(app(state.clone()), "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body["version"], "v2");
        assert_eq!(answer.body["input_width"], 30);
        assert_eq!(answer.body["feature_names"].as_array().unwrap().len(), 30);
        assert_eq!(answer.body["class_labels"], json!([0, 1]));
        assert!(answer.body["metrics"]["accuracy"].as_f64().unwrap() > 0.9);
        assert_eq!(answer.body["sha256"].as_str().unwrap().len(), 64);
    }
}

#[tokio::test]
async fn metrics_count_requests_errors_and_show_the_model() {
    let state = ready_state("v1", settings());
    let ok = call(
        app(state.clone()),
        "POST",
        "/predict",
        Some(&features_json(&a_row())),
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let bad = call(
        app(state.clone()),
        "POST",
        "/predict",
        Some(r#"{"features": [1]}"#),
        None,
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    for uri in ["/metrics", "/ml/metrics"] {
        let answer = call(app(state.clone()), "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert!(
            answer.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        let text = &answer.text;
        for expected in [
            "tugboat_http_requests_total{service=\"inference\",route=\"/predict\",status=\"200\"} 1",
            "tugboat_http_requests_total{service=\"inference\",route=\"/predict\",status=\"422\"} 1",
            "tugboat_http_request_duration_seconds_count{service=\"inference\",route=\"/predict\"} 2",
            "tugboat_http_errors_total{service=\"inference\",kind=\"wrong_width\"} 1",
            "tugboat_model_ready{service=\"inference\"} 1",
            "tugboat_model_info{service=\"inference\",version=\"v1\",sha256=\"",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }
}

#[tokio::test]
async fn request_id_is_echoed() {
    let state = ready_state("v1", settings());
    let request = axum::http::Request::builder()
        .method("POST")
        .uri("/predict")
        .header("content-type", "application/json")
        .header("x-request-id", "req-42")
        .body(axum::body::Body::from(features_json(&a_row())))
        .unwrap();
    let response = tower::ServiceExt::oneshot(app(state), request)
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-request-id"], "req-42");
}

/// (name, uri, body, content type, expected status, part of the expected message)
type BadInputCase = (
    &'static str,
    &'static str,
    String,
    Option<&'static str>,
    StatusCode,
    &'static str,
);

/// Every class of client mistake: status and the message that names it.
#[tokio::test]
async fn bad_input_is_a_json_4xx_naming_the_problem() {
    let state = ready_state("v1", settings());
    let mut row: Vec<serde_json::Value> = a_row().into_iter().map(|v| json!(v)).collect();
    let with = |index: usize, value: serde_json::Value, row: &mut Vec<serde_json::Value>| {
        let mut row = row.clone();
        row[index] = value;
        json!({ "features": row }).to_string()
    };
    let wide_batch = json!({ "instances": vec![a_row(); 9] }).to_string();
    let mixed_batch = json!({ "instances": [a_row(), [1.0, 2.0]] }).to_string();
    let huge = format!(r#"{{"features": [{}]}}"#, vec!["1.0"; 8000].join(","));
    let cases: Vec<BadInputCase> = vec![
        (
            "malformed JSON",
            "/predict",
            r#"{"features": [1.0, 2.0"#.into(),
            None,
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "not JSON at all",
            "/predict",
            "features=1,2,3".into(),
            None,
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            "wrong content type",
            "/predict",
            features_json(&a_row()),
            Some("text/plain"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content-type: application/json",
        ),
        (
            "missing field",
            "/predict",
            r#"{"feature": [1.0]}"#.into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `features`",
        ),
        (
            "features not an array",
            "/predict",
            r#"{"features": 5}"#.into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            "too few features",
            "/predict",
            r#"{"features": [1.0, 2.0, 3.0]}"#.into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features: expected 30 features, got 3",
        ),
        (
            "too many features",
            "/ml/predict",
            json!({ "features": vec![1.0; 31] }).to_string(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features: expected 30 features, got 31",
        ),
        (
            "empty features",
            "/predict",
            r#"{"features": []}"#.into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features: must not be empty",
        ),
        (
            "NaN as a string",
            "/predict",
            with(3, json!("NaN"), &mut row),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features[3]: expected a finite number, got a string",
        ),
        (
            "null",
            "/predict",
            with(7, json!(null), &mut row),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features[7]: expected a finite number, got null",
        ),
        (
            "boolean",
            "/predict",
            with(0, json!(true), &mut row),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features[0]: expected a finite number, got a boolean",
        ),
        (
            "infinite as f32",
            "/predict",
            with(29, json!(1e39), &mut row),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features[29]: expected a finite number within ±3.4e38",
        ),
        (
            "infinite as f64",
            "/predict",
            r#"{"features": [1e400]}"#.into(),
            None,
            StatusCode::BAD_REQUEST,
            "number out of range",
        ),
        (
            "empty batch",
            "/predict/batch",
            r#"{"instances": []}"#.into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "instances: must not be empty",
        ),
        (
            "batch over the limit",
            "/predict/batch",
            wide_batch,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "instances: 9 rows is more than the limit of 8",
        ),
        (
            "one bad row in a batch",
            "/ml/predict/batch",
            mixed_batch,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "instances[1]: expected 30 features, got 2",
        ),
        (
            "instances not arrays",
            "/predict/batch",
            r#"{"instances": [1, 2]}"#.into(),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid type",
        ),
        (
            "body over the size limit",
            "/predict",
            huge,
            None,
            StatusCode::PAYLOAD_TOO_LARGE,
            "larger than the limit of 16384 bytes",
        ),
    ];
    for (name, uri, body, content_type, status, message) in cases {
        let answer = call(app(state.clone()), "POST", uri, Some(&body), content_type).await;
        assert_eq!(answer.status, status, "{name}: {}", answer.text);
        assert_error(&answer, status, message);
    }
}

#[tokio::test]
async fn unknown_routes_and_methods_are_json_errors() {
    let state = ready_state("v1", settings());
    let answer = call(app(state.clone()), "GET", "/nope", None, None).await;
    assert_error(&answer, StatusCode::NOT_FOUND, "no route for GET /nope");
    let answer = call(app(state.clone()), "GET", "/predict", None, None).await;
    assert_error(
        &answer,
        StatusCode::METHOD_NOT_ALLOWED,
        "method GET is not allowed",
    );
    let answer = call(app(state), "DELETE", "/ml/model", None, None).await;
    assert_error(&answer, StatusCode::METHOD_NOT_ALLOWED, "method DELETE");
}
