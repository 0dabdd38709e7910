//! The published contract: the OpenAPI 3.1 document generated from the code is the
//! checked-in `openapi.json` (drift fails; `UPDATE_OPENAPI=1` rewrites it), it is
//! served at `/openapi.json`, and real answers of every route, success and every
//! documented error status, at `/` and under `/ml`, validate against it.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use axum::http::StatusCode;
use common::{call, features_json, held_out};
use serde_json::{Value, json};
use tugboat_inference::api::openapi_document;
use tugboat_inference::{AppState, Faults, Settings, app};

#[path = "../../service-kit/tests/support/openapi_check.rs"]
mod openapi_check;

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");

fn document() -> Value {
    serde_json::from_str(&openapi_document()).unwrap()
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let generated = openapi_document();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(CHECKED_IN, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated,
        "{CHECKED_IN} differs from the document the code generates; run \
         `UPDATE_OPENAPI=1 cargo test -p tugboat-inference --test openapi` and commit it"
    );
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
}

fn settings() -> Settings {
    Settings {
        max_body_bytes: 16 * 1024,
        max_batch: 4,
        ..Settings::default()
    }
}

/// The states a case runs against.
#[derive(Debug, Clone, Copy)]
enum World {
    Ready,
    NotReady,
    /// FAULT_RATE=1: every prediction is a 500.
    Failing,
    /// FAULT_LATENCY beyond the request deadline: every prediction is a 504.
    Slow,
}

/// The committed v1 model, prepared once (tract's preparation is slow in debug).
fn model() -> tugboat_inference::LoadedModel {
    static MODEL: std::sync::OnceLock<tugboat_inference::LoadedModel> = std::sync::OnceLock::new();
    MODEL.get_or_init(|| common::load_committed("v1")).clone()
}

fn ready_state(_version: &str, settings: Settings) -> AppState {
    let state = AppState::new(settings);
    assert!(state.install(model()));
    state
}

fn state(world: World) -> AppState {
    match world {
        World::Ready => ready_state("v1", settings()),
        World::NotReady => AppState::new(settings()),
        World::Failing => ready_state(
            "v1",
            Settings {
                faults: Faults {
                    rate: 1.0,
                    latency: Duration::ZERO,
                },
                ..settings()
            },
        ),
        World::Slow => ready_state(
            "v1",
            Settings {
                request_timeout: Duration::from_millis(5),
                faults: Faults {
                    rate: 0.0,
                    latency: Duration::from_millis(300),
                },
                ..settings()
            },
        ),
    }
}

/// (state, method, route, body, content type, expected status)
type Case = (
    World,
    &'static str,
    &'static str,
    Option<String>,
    Option<&'static str>,
    u16,
);

#[tokio::test]
async fn every_route_answers_as_documented_success_and_errors() {
    let doc = document();
    let row = features_json(&held_out("v1").rows[0].features);
    let batch =
        json!({ "instances": [held_out("v1").rows[0].features, held_out("v1").rows[1].features] })
            .to_string();
    let huge = format!("{{\"features\": [{}0]}}", "0,".repeat(10_000));
    let json = Some("application/json");
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (World::Ready, "GET", "/health", None, None, 200),
        (World::Ready, "GET", "/ready", None, None, 200),
        (World::NotReady, "GET", "/ready", None, None, 503),
        (World::Ready, "GET", "/model", None, None, 200),
        (World::NotReady, "GET", "/model", None, None, 503),
        (World::Ready, "GET", "/metrics", None, None, 200),
        (World::Ready, "GET", "/openapi.json", None, None, 200),
        (World::Ready, "POST", "/predict", Some(row.clone()), json, 200),
        (World::Ready, "POST", "/predict", Some("{\"features\": [1,".into()), json, 400),
        (World::Ready, "POST", "/predict", Some(huge.clone()), json, 413),
        (World::Ready, "POST", "/predict", Some(row.clone()), Some("text/plain"), 415),
        (World::Ready, "POST", "/predict", Some("{\"features\": [1, 2]}".into()), json, 422),
        (World::Ready, "POST", "/predict", Some("{\"features\": [\"x\"]}".into()), json, 422),
        (World::Ready, "POST", "/predict", Some("{\"rows\": []}".into()), json, 422),
        (World::Failing, "POST", "/predict", Some(row.clone()), json, 500),
        (World::NotReady, "POST", "/predict", Some(row.clone()), json, 503),
        (World::Slow, "POST", "/predict", Some(row.clone()), json, 504),
        (World::Ready, "POST", "/predict/batch", Some(batch.clone()), json, 200),
        (World::Ready, "POST", "/predict/batch", Some("[".into()), json, 400),
        (World::Ready, "POST", "/predict/batch", Some(huge.clone()), json, 413),
        (World::Ready, "POST", "/predict/batch", Some(batch.clone()), None, 415),
        (World::Ready, "POST", "/predict/batch", Some("{\"instances\": []}".into()), json, 422),
        (World::Failing, "POST", "/predict/batch", Some(batch.clone()), json, 500),
        (World::NotReady, "POST", "/predict/batch", Some(batch.clone()), json, 503),
        (World::Slow, "POST", "/predict/batch", Some(batch.clone()), json, 504),
    ];
    let mut exercised = BTreeSet::new();
    for prefix in ["", "/ml"] {
        for (world, method, route, body, content_type, status) in &cases {
            let path = format!("{prefix}{route}");
            // `None` content type with a body: send none at all (415).
            let answer = if body.is_some() && content_type.is_none() {
                call_without_content_type(state(*world), method, &path, body.as_deref().unwrap())
                    .await
            } else {
                call(
                    app(state(*world)),
                    method,
                    &path,
                    body.as_deref(),
                    *content_type,
                )
                .await
            };
            let answer = answer;
            assert_eq!(
                answer.status.as_u16(),
                *status,
                "{method} {path} ({world:?}): {}",
                answer.text
            );
            let content_type = answer.headers["content-type"].to_str().unwrap();
            openapi_check::check_answer(
                &doc,
                method,
                &path,
                *status,
                content_type,
                answer.text.as_bytes(),
            )
            .unwrap_or_else(|e| panic!("{e}\nbody: {}", answer.text));
            exercised.insert((method.to_string(), path, *status));
        }
    }
    let documented = openapi_check::documented(&doc);
    let missing: Vec<_> = documented.difference(&exercised).collect();
    assert!(
        missing.is_empty(),
        "documented but not exercised: {missing:?}"
    );
    assert!(!documented.is_empty());

    // Unknown routes and methods: not operations, but their bodies are ErrorBody.
    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    for (method, uri, status) in [
        ("GET", "/nope", 404),
        ("DELETE", "/predict", 405),
        ("GET", "/ml/predict", 405),
    ] {
        let answer = call(app(state(World::Ready)), method, uri, None, None).await;
        assert_eq!(answer.status.as_u16(), status);
        openapi_check::validate(&doc, &error_body, &answer.body, "body").unwrap();
    }
}

async fn call_without_content_type(
    state: AppState,
    method: &str,
    uri: &str,
    body: &str,
) -> common::Answer {
    use tower::ServiceExt as _;
    let request = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .body(axum::body::Body::from(body.to_owned()))
        .unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    common::Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let answer = call(
        app(state(World::Ready)),
        "GET",
        "/ml/openapi.json",
        None,
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.body, document());
}

#[test]
fn the_validator_rejects_what_the_document_forbids() {
    let doc = document();
    let predict_ok = |body: Value| {
        openapi_check::check_answer(
            &doc,
            "POST",
            "/predict",
            200,
            "application/json",
            body.to_string().as_bytes(),
        )
    };
    let good = json!({"prediction": 1, "label": "benign", "confidence": 0.9, "probabilities": [0.1, 0.9], "model_version": "v1"});
    predict_ok(good.clone()).unwrap();
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("model_version");
    assert!(predict_ok(missing).is_err());
    let mut wrong_type = good.clone();
    wrong_type["prediction"] = json!("1");
    assert!(predict_ok(wrong_type).is_err());
    let error = |body: Value| {
        openapi_check::check_answer(
            &doc,
            "POST",
            "/predict",
            422,
            "application/json",
            body.to_string().as_bytes(),
        )
    };
    error(json!({"error": "x", "kind": "wrong_width"})).unwrap();
    assert!(error(json!({"error": "x"})).is_err());
    assert!(
        openapi_check::check_answer(&doc, "POST", "/predict", 418, "application/json", b"{}")
            .is_err()
    );
    assert!(
        openapi_check::check_answer(&doc, "POST", "/predict", 422, "text/plain", b"{}").is_err()
    );
}
