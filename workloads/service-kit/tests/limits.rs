//! The deadline and the concurrency cap answer in JSON with the right status.
//! The handlers sleep far longer than the limits (seconds against milliseconds), so
//! the outcome does not depend on how fast this machine is.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use service_kit::limits::Limits;
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
        .route_layer(Limits::new(Duration::from_millis(50), 4));
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
        .route_layer(Limits::new(Duration::from_millis(300), 1));
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

/// The path of a request that finds every slot taken: it waits (within its deadline)
/// and is answered once the slot is free, not refused.
#[tokio::test]
async fn a_request_that_waits_for_a_slot_is_answered_when_one_frees() {
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (signal, gate) = (Arc::clone(&started), Arc::clone(&release));
    let app = Router::new()
        .route(
            "/hold",
            get(move || {
                let (signal, gate) = (Arc::clone(&signal), Arc::clone(&gate));
                async move {
                    signal.notify_one();
                    gate.notified().await;
                    axum::Json(serde_json::json!({"done": true}))
                }
            }),
        )
        .route_layer(Limits::new(Duration::from_secs(30), 1));
    let first = tokio::spawn(get_status_and_body(app.clone(), "/hold"));
    started.notified().await;
    // The test runtime has one thread: the second request runs until it waits for
    // the slot before the first is let go.
    let second = tokio::spawn(get_status_and_body(app, "/hold"));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    release.notify_one();
    assert_eq!(first.await.unwrap().0, StatusCode::OK);
    // Now the second holds the slot and waits on the gate in its turn (a second
    // that was refused instead never gets here: fail rather than hang).
    if tokio::time::timeout(Duration::from_secs(10), started.notified())
        .await
        .is_err()
    {
        let (status, body) = second.await.unwrap();
        panic!("the waiting request never ran: {status} {body}");
    }
    release.notify_one();
    let (status, body) = second.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["done"], true);
}
