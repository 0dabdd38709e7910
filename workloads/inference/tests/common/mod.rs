//! Helpers shared by the inference integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt as _;
use tugboat_inference::{AppState, LoadedModel, ModelMetadata, Settings};

pub fn model_dir(version: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(version)
}

pub fn load_committed(version: &str) -> LoadedModel {
    let dir = model_dir(version);
    let onnx = std::fs::read(dir.join("model.onnx")).expect("committed model.onnx");
    let metadata: ModelMetadata =
        serde_json::from_slice(&std::fs::read(dir.join("metadata.json")).expect("metadata"))
            .expect("valid metadata.json");
    LoadedModel::from_bytes(&onnx, metadata).expect("committed model loads")
}

/// State with `version` installed and the given settings.
pub fn ready_state(version: &str, settings: Settings) -> AppState {
    let state = AppState::new(settings);
    assert!(state.install(load_committed(version)));
    state
}

/// The held-out rows written by training/train.py.
#[derive(Debug, serde::Deserialize)]
pub struct HeldOut {
    pub version: String,
    pub rows: Vec<HeldOutRow>,
}

#[derive(Debug, serde::Deserialize)]
pub struct HeldOutRow {
    pub features: Vec<f64>,
    pub prediction: i64,
    pub probabilities: Vec<f64>,
}

pub fn held_out(version: &str) -> HeldOut {
    serde_json::from_slice(&std::fs::read(model_dir(version).join("heldout.json")).unwrap())
        .expect("valid heldout.json")
}

#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

/// One request through `app` with `oneshot`; a JSON body is sent as
/// `application/json` unless `content_type` says otherwise.
pub async fn call(
    app: Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    content_type: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", content_type.unwrap_or("application/json"));
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Answer {
        status,
        headers,
        body,
        text,
    }
}

pub fn features_json(features: &[f64]) -> String {
    serde_json::json!({ "features": features }).to_string()
}
