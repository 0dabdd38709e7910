//! The deadline and the concurrency cap answer in JSON with the right status.
//! The handlers sleep far longer than the limits (seconds against milliseconds), so
//! the outcome does not depend on how fast this machine is.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::middleware::from_fn_with_state;
use axum::routing::get;
use service_kit::limits::{Limits, enforce};
use tokio::sync::Notify;
use tower::ServiceExt as _;

async fn get_status_and_body(app: Router, uri: &str) -> (StatusCode, serde_json::Value) {
    let response = app
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn a_request_past_its_deadline_is_a_json_504() {
    let app = Router::new()
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(60)).await;
                "late"
            }),
        )
        .route_layer(from_fn_with_state(
            Limits::new(Duration::from_millis(50), 4),
            enforce,
        ));
    let (status, body) = get_status_and_body(app, "/slow").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body["error"], "request did not complete within 50 ms");
}

#[tokio::test]
async fn a_request_that_never_gets_a_slot_is_a_json_503() {
    let started = Arc::new(Notify::new());
    let signal = Arc::clone(&started);
    let app = Router::new()
        .route(
            "/hold",
            get(move || {
                let signal = Arc::clone(&signal);
                async move {
                    signal.notify_one();
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    "done"
                }
            }),
        )
        .route_layer(from_fn_with_state(
            Limits::new(Duration::from_millis(300), 1),
            enforce,
        ));
    // The first request takes the only slot and holds it past its deadline...
    let first = tokio::spawn(get_status_and_body(app.clone(), "/hold"));
    started.notified().await;
    // ...so the second waits for a slot until its own deadline, and is shed.
    let (status, body) = get_status_and_body(app, "/hold").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        body["error"],
        "server is at its concurrency limit; retry later"
    );
    let (first_status, _) = first.await.unwrap();
    assert_eq!(first_status, StatusCode::GATEWAY_TIMEOUT);
}
