//! The published contract: the OpenAPI 3.1 document generated from the code is the
//! checked-in `openapi.json` (drift fails; `UPDATE_OPENAPI=1` rewrites it), it is
//! served at `/openapi.json` and `/api/openapi.json`, and real answers of every
//! route, success and every documented error status, validate against it.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tugboat_backend::{AppState, Settings, UpstreamSettings, app, openapi_document};

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
         `UPDATE_OPENAPI=1 cargo test -p tugboat-backend --test openapi` and commit it"
    );
    assert_eq!(document()["openapi"], "3.1.0");
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

async fn inference(loaded: bool) -> SocketAddr {
    let state = tugboat_inference::AppState::new(tugboat_inference::Settings::default());
    if loaded {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inference/models/v1");
        let source = tugboat_inference::ModelSource::from_uri(dir.to_str().unwrap()).unwrap();
        assert!(
            tugboat_inference::load_and_install(state.clone(), source, Default::default()).await
        );
    }
    serve(tugboat_inference::app(state)).await
}

fn backend(upstream: SocketAddr, timeout: Duration) -> AppState {
    AppState::new(
        Settings {
            max_body_bytes: 16 * 1024,
            ..Settings::default()
        },
        UpstreamSettings {
            base_url: format!("http://{upstream}"),
            timeout,
            retries: 0,
            retry_backoff: Duration::ZERO,
        },
    )
    .unwrap()
}

struct Answer {
    status: u16,
    content_type: String,
    bytes: Vec<u8>,
}

async fn call(
    state: &AppState,
    method: &str,
    uri: &str,
    body: Option<&str>,
    content_type: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap()
        .to_vec();
    Answer {
        status,
        content_type,
        bytes,
    }
}

fn a_row() -> String {
    let held_out: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../inference/models/v1/heldout.json"),
        )
        .unwrap(),
    )
    .unwrap();
    json!({ "features": held_out["rows"][0]["features"] }).to_string()
}

/// (state, method, path, body, content type, expected status)
type Case<'a> = (
    &'a AppState,
    &'static str,
    &'static str,
    Option<String>,
    Option<&'static str>,
    u16,
);

#[tokio::test]
async fn every_route_answers_as_documented_success_and_errors() {
    let doc = document();
    let ready = backend(inference(true).await, Duration::from_secs(5));
    let not_ready = backend(inference(false).await, Duration::from_secs(5));
    let unreachable = {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        backend(port, Duration::from_secs(1))
    };
    let garbage = backend(
        serve(Router::new().route("/predict", post(|| async { "<html>not json</html>" }))).await,
        Duration::from_secs(5),
    );
    let slow = backend(
        serve(
            Router::new()
                .route(
                    "/predict",
                    post(|| async {
                        tokio::time::sleep(Duration::from_secs(5)).await;
                        "late"
                    }),
                )
                .route("/ready", get(|| async { "late" })),
        )
        .await,
        Duration::from_millis(20),
    );
    let row = a_row();
    let huge = format!("{{\"features\": [{}0]}}", "0,".repeat(10_000));
    let json = Some("application/json");
    #[rustfmt::skip]
    let cases: Vec<Case> = vec![
        (&ready, "GET", "/health", None, None, 200),
        (&ready, "GET", "/api/health", None, None, 200),
        (&ready, "GET", "/ready", None, None, 200),
        (&ready, "GET", "/api/ready", None, None, 200),
        (&not_ready, "GET", "/ready", None, None, 503),
            (&not_ready, "GET", "/api/ready", None, None, 503),
        (&unreachable, "GET", "/ready", None, None, 503),
        (&ready, "GET", "/metrics", None, None, 200),
        (&ready, "GET", "/openapi.json", None, None, 200),
        (&ready, "GET", "/api/openapi.json", None, None, 200),
        (&ready, "POST", "/api/predict", Some(row.clone()), json, 200),
        (&ready, "POST", "/api/predict", Some("{\"features\": [1,".into()), json, 400),
        (&ready, "POST", "/api/predict", Some(huge), json, 413),
        (&ready, "POST", "/api/predict", Some(row.clone()), Some("text/plain"), 415),
        (&ready, "POST", "/api/predict", Some("{\"features\": [null]}".into()), json, 422),
        // Valid here, refused by the inference service (wrong width): passed through.
        (&ready, "POST", "/api/predict", Some("{\"features\": [1, 2]}".into()), json, 422),
        (&garbage, "POST", "/api/predict", Some(row.clone()), json, 502),
        (&not_ready, "POST", "/api/predict", Some(row.clone()), json, 503),
        (&unreachable, "POST", "/api/predict", Some(row.clone()), json, 503),
        (&slow, "POST", "/api/predict", Some(row.clone()), json, 504),
    ];
    let mut exercised = BTreeSet::new();
    for (state, method, path, body, content_type, status) in &cases {
        let answer = call(state, method, path, body.as_deref(), *content_type).await;
        let text = String::from_utf8_lossy(&answer.bytes);
        assert_eq!(answer.status, *status, "{method} {path}: {text}");
        openapi_check::check_answer(
            &doc,
            method,
            path,
            *status,
            &answer.content_type,
            &answer.bytes,
        )
        .unwrap_or_else(|e| panic!("{e}\nbody: {text}"));
        exercised.insert((method.to_string(), path.to_string(), *status));
    }
    let documented = openapi_check::documented(&doc);
    let missing: Vec<_> = documented.difference(&exercised).collect();
    assert!(
        missing.is_empty(),
        "documented but not exercised: {missing:?}"
    );

    let error_body = json!({"$ref": "#/components/schemas/ErrorBody"});
    for (method, uri, status) in [("GET", "/nope", 404), ("GET", "/api/predict", 405)] {
        let answer = call(&ready, method, uri, None, None).await;
        assert_eq!(answer.status, status);
        let body: Value = serde_json::from_slice(&answer.bytes).unwrap();
        openapi_check::validate(&doc, &error_body, &body, "body").unwrap();
    }
}

#[tokio::test]
async fn the_served_document_is_the_checked_in_one() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let state = backend(port, Duration::from_secs(1));
    for uri in ["/openapi.json", "/api/openapi.json"] {
        let answer = call(&state, "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK.as_u16());
        assert_eq!(
            serde_json::from_slice::<Value>(&answer.bytes).unwrap(),
            document()
        );
    }
}
