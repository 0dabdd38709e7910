//! Backend handler tests with `oneshot`, forwarding to a real inference `app()` on
//! 127.0.0.1:0, and to stub upstreams that are down, not ready, slow, broken or
//! answer garbage.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tugboat_backend::{AppState, Settings, UpstreamSettings, app};

#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
    text: String,
}

async fn call(
    app: Router,
    method: &str,
    uri: &str,
    body: Option<&str>,
    id: Option<&str>,
) -> Answer {
    let mut request = Request::builder().method(method).uri(uri);
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    if let Some(id) = id {
        request = request.header("x-request-id", id);
    }
    let request = request
        .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
        .unwrap();
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn backend(upstream: SocketAddr, timeout: Duration) -> AppState {
    AppState::new(
        Settings::default(),
        UpstreamSettings {
            base_url: format!("http://{upstream}"),
            timeout,
            retries: 2,
            retry_backoff: Duration::from_millis(5),
        },
    )
    .unwrap()
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// A real inference service with the committed v1 model, on a free port.
async fn inference(loaded: bool) -> SocketAddr {
    let state = tugboat_inference::AppState::new(tugboat_inference::Settings::default());
    if loaded {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../inference/models/v1");
        let source = tugboat_inference::ModelSource::from_uri(dir.to_str().unwrap()).unwrap();
        assert!(
            tugboat_inference::load_and_install(state.clone(), source, Default::default()).await
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(tugboat_inference::run(
        listener,
        state,
        std::future::pending(),
    ));
    addr
}

/// A stub upstream: counts calls, records the last request id, answers with `reply`.
#[derive(Clone)]
struct Stub {
    calls: Arc<AtomicUsize>,
    last_request_id: Arc<std::sync::Mutex<Option<String>>>,
}

async fn stub<F, Fut>(reply: F) -> (SocketAddr, Stub)
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = (StatusCode, String)> + Send,
{
    let stub = Stub {
        calls: Arc::new(AtomicUsize::new(0)),
        last_request_id: Arc::new(std::sync::Mutex::new(None)),
    };
    let seen = stub.clone();
    let router = Router::new().route(
        "/predict",
        post(move |headers: HeaderMap| {
            let seen = seen.clone();
            let reply = reply.clone();
            async move {
                let n = seen.calls.fetch_add(1, Ordering::SeqCst);
                *seen.last_request_id.lock().unwrap() = headers
                    .get("x-request-id")
                    .map(|v| v.to_str().unwrap().to_owned());
                let (status, body) = reply(n).await;
                (status, [("content-type", "application/json")], body)
            }
        }),
    );
    (serve(router).await, stub)
}

fn good_prediction() -> String {
    json!({"prediction": 1, "label": "benign", "confidence": 0.9, "probabilities": [0.1, 0.9], "model_version": "v7"}).to_string()
}

fn a_row() -> String {
    let held: Value = serde_json::from_slice(
        &std::fs::read(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../inference/models/v1/heldout.json"),
        )
        .unwrap(),
    )
    .unwrap();
    json!({ "features": held["rows"][0]["features"] }).to_string()
}

fn unused_addr() -> SocketAddr {
    // Bind then drop: nothing listens there afterwards, so connecting is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[tokio::test]
async fn health_routes_answer() {
    let state = backend(unused_addr(), Duration::from_secs(1));
    for uri in ["/health", "/api/health"] {
        let answer = call(app(state.clone()), "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(
            answer.body,
            json!({"status": "healthy", "service": "backend-api"})
        );
    }
}

#[tokio::test]
async fn predict_goes_through_the_real_inference_service() {
    let upstream = inference(true).await;
    let state = backend(upstream, Duration::from_secs(5));
    let answer = call(
        app(state),
        "POST",
        "/api/predict",
        Some(&a_row()),
        Some("trace-1"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(answer.body["prediction"], 1);
    assert_eq!(answer.body["model_version"], "v1");
    assert_eq!(answer.headers["x-model-version"], "v1");
    assert_eq!(answer.headers["x-request-id"], "trace-1");
    assert_eq!(answer.body["probabilities"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn the_inference_services_own_validation_message_comes_through() {
    let upstream = inference(true).await;
    let state = backend(upstream, Duration::from_secs(5));
    let answer = call(
        app(state),
        "POST",
        "/api/predict",
        Some(r#"{"features": [1.0, 2.0, 3.0]}"#),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.body["error"],
        "features: expected 30 features, got 3"
    );
}

#[tokio::test]
async fn request_ids_are_forwarded_and_generated_when_absent() {
    let (addr, stub) = stub(|_| async { (StatusCode::OK, good_prediction()) }).await;
    let state = backend(addr, Duration::from_secs(5));

    let answer = call(
        app(state.clone()),
        "POST",
        "/api/predict",
        Some(&a_row()),
        Some("abc-123"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.headers["x-request-id"], "abc-123");
    assert_eq!(
        stub.last_request_id.lock().unwrap().as_deref(),
        Some("abc-123")
    );

    let answer = call(app(state), "POST", "/api/predict", Some(&a_row()), None).await;
    assert_eq!(answer.status, StatusCode::OK);
    let generated = answer.headers["x-request-id"].to_str().unwrap().to_owned();
    assert!(!generated.is_empty());
    assert_eq!(
        stub.last_request_id.lock().unwrap().as_deref(),
        Some(generated.as_str())
    );
    // The model version is echoed from the upstream's answer.
    assert_eq!(answer.body["model_version"], "v7");
    assert_eq!(answer.headers["x-model-version"], "v7");
}

#[tokio::test]
async fn bad_input_is_refused_before_any_upstream_call() {
    let (addr, stub) = stub(|_| async { (StatusCode::OK, good_prediction()) }).await;
    let state = backend(addr, Duration::from_secs(5));
    let cases = [
        (
            r#"{"features": [1.0, "#,
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        (
            r#"{"feature": [1.0]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "missing field `features`",
        ),
        (
            r#"{"features": []}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features: must not be empty",
        ),
        (
            r#"{"features": [1.0, "NaN"]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features[1]: expected a finite number, got a string",
        ),
        (
            r#"{"features": [1e39]}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
            "features[0]: expected a finite number within",
        ),
    ];
    for (body, status, message) in cases {
        let answer = call(app(state.clone()), "POST", "/api/predict", Some(body), None).await;
        assert_eq!(answer.status, status, "{body}: {}", answer.text);
        let error = answer.body["error"].as_str().unwrap();
        assert!(
            error.contains(message),
            "{error:?} should contain {message:?}"
        );
    }
    let too_big = format!(r#"{{"features": [{}]}}"#, vec!["1.0"; 30_000].join(","));
    let answer = call(
        app(state.clone()),
        "POST",
        "/api/predict",
        Some(&too_big),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(stub.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn an_upstream_that_is_down_is_a_503_after_bounded_retries() {
    let state = backend(unused_addr(), Duration::from_secs(2));
    let answer = call(
        app(state.clone()),
        "POST",
        "/api/predict",
        Some(&a_row()),
        None,
    )
    .await;
    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        answer.text
    );
    assert_eq!(
        answer.body,
        json!({"error": "inference service is unreachable", "kind": "upstream_unreachable"})
    );
    let metrics = call(app(state), "GET", "/metrics", None, None).await;
    assert!(
        metrics
            .text
            .contains("tugboat_upstream_retries_total{service=\"backend\"} 2"),
        "{}",
        metrics.text
    );
    assert!(metrics.text.contains(
        "tugboat_upstream_requests_total{service=\"backend\",outcome=\"unreachable\"} 1"
    ));
}

#[tokio::test]
async fn an_inference_service_that_is_not_ready_is_a_503() {
    let upstream = inference(false).await;
    let state = backend(upstream, Duration::from_secs(5));
    let answer = call(app(state), "POST", "/api/predict", Some(&a_row()), None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.body,
        json!({"error": "inference service is not ready", "kind": "upstream_not_ready"})
    );
}

#[tokio::test]
async fn a_503_is_retried_and_the_retry_can_succeed() {
    let (addr, stub) = stub(|n| async move {
        if n == 0 {
            (
                StatusCode::SERVICE_UNAVAILABLE,
                r#"{"error":"busy"}"#.to_owned(),
            )
        } else {
            (StatusCode::OK, good_prediction())
        }
    })
    .await;
    let state = backend(addr, Duration::from_secs(5));
    let answer = call(app(state), "POST", "/api/predict", Some(&a_row()), None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    assert_eq!(stub.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_upstream_that_times_out_is_a_504_and_not_retried() {
    let (addr, stub) = stub(|_| async {
        tokio::time::sleep(Duration::from_secs(30)).await;
        (StatusCode::OK, good_prediction())
    })
    .await;
    let state = backend(addr, Duration::from_millis(200));
    let answer = call(app(state), "POST", "/api/predict", Some(&a_row()), None).await;
    assert_eq!(
        answer.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        answer.text
    );
    assert_eq!(
        answer.body,
        json!({"error": "inference service did not answer within 200 ms", "kind": "upstream_timeout"})
    );
    assert_eq!(stub.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn garbage_from_upstream_is_a_502_without_the_raw_text() {
    let (addr, _stub) =
        stub(|_| async { (StatusCode::OK, "<html>secret stack trace</html>".to_owned()) }).await;
    let state = backend(addr, Duration::from_secs(5));
    let answer = call(app(state), "POST", "/api/predict", Some(&a_row()), None).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert_eq!(
        answer.body,
        json!({"error": "inference service returned an invalid answer", "kind": "upstream_bad_answer"})
    );
    assert!(!answer.text.contains("secret"));

    // A JSON answer of the wrong shape is garbage too.
    let (addr, _stub) =
        stub(|_| async { (StatusCode::OK, r#"{"prediction": "yes"}"#.to_owned()) }).await;
    let answer = call(
        app(backend(addr, Duration::from_secs(5))),
        "POST",
        "/api/predict",
        Some(&a_row()),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
}

#[tokio::test]
async fn an_upstream_500_is_a_502_and_not_retried() {
    let (addr, stub) = stub(|_| async {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"error":"boom: details"}"#.to_owned(),
        )
    })
    .await;
    let state = backend(addr, Duration::from_secs(5));
    let answer = call(app(state), "POST", "/api/predict", Some(&a_row()), None).await;
    assert_eq!(answer.status, StatusCode::BAD_GATEWAY);
    assert!(!answer.text.contains("boom"));
    assert_eq!(stub.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstream_504_is_a_504() {
    let (addr, stub) = stub(|_| async {
        (
            StatusCode::GATEWAY_TIMEOUT,
            r#"{"error":"request did not complete"}"#.to_owned(),
        )
    })
    .await;
    let answer = call(
        app(backend(addr, Duration::from_secs(5))),
        "POST",
        "/api/predict",
        Some(&a_row()),
        None,
    )
    .await;
    assert_eq!(answer.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(
        answer.body,
        json!({"error": "inference service timed out", "kind": "upstream_timed_out"})
    );
    assert_eq!(stub.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn metrics_and_unknown_routes() {
    let (addr, _stub) = stub(|_| async { (StatusCode::OK, good_prediction()) }).await;
    let state = backend(addr, Duration::from_secs(5));
    let ok = call(
        app(state.clone()),
        "POST",
        "/api/predict",
        Some(&a_row()),
        None,
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    let answer = call(app(state.clone()), "GET", "/nope", None, None).await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(
        answer.body,
        json!({"error": "no route for GET /nope", "kind": "no_route"})
    );
    let answer = call(app(state.clone()), "GET", "/api/predict", None, None).await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    let metrics = call(app(state), "GET", "/metrics", None, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    for expected in [
        "tugboat_http_requests_total{service=\"backend\",route=\"/api/predict\",status=\"200\"} 1",
        "tugboat_http_requests_total{service=\"backend\",route=\"unmatched\",status=\"404\"} 1",
        "tugboat_upstream_requests_total{service=\"backend\",outcome=\"ok\"} 1",
        "tugboat_http_errors_total{service=\"backend\",kind=\"no_route\"} 1",
    ] {
        assert!(
            metrics.text.contains(expected),
            "missing {expected:?} in\n{}",
            metrics.text
        );
    }
}

#[test]
fn only_http_urls_are_accepted() {
    for bad in ["https://ml:8000", "ml:8000", "http://", ""] {
        let result = AppState::new(
            Settings::default(),
            UpstreamSettings {
                base_url: bad.into(),
                timeout: Duration::from_secs(1),
                retries: 0,
                retry_backoff: Duration::ZERO,
            },
        );
        assert!(result.is_err(), "{bad:?} accepted");
    }
}

#[tokio::test]
async fn ready_follows_whether_the_inference_service_is_ready() {
    // Reachable and ready: 200 with the model it serves.
    let state = backend(inference(true).await, Duration::from_secs(5));
    for uri in ["/ready", "/api/ready"] {
        let answer = call(app(state.clone()), "GET", uri, None, None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        assert_eq!(
            answer.body,
            json!({"status": "ready", "service": "backend-api", "model_version": "v1"})
        );
    }
    // Reachable, model not loaded: 503, and liveness stays 200.
    let state = backend(inference(false).await, Duration::from_secs(5));
    let answer = call(app(state.clone()), "GET", "/ready", None, None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["status"], "not_ready");
    assert_eq!(answer.body["error"], "inference service is not ready");
    let health = call(app(state), "GET", "/health", None, None).await;
    assert_eq!(health.status, StatusCode::OK);
    // Unreachable: 503 naming that.
    let state = backend(unused_addr(), Duration::from_secs(1));
    let answer = call(app(state), "GET", "/ready", None, None).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.body["error"], "inference service is unreachable");
}
