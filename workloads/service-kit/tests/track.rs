//! The metrics layer counts each request under its own route, whichever way the
//! router is built (routes, a nested router, the fallback), and echoes the request id.

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use service_kit::metrics::{HttpMetrics, Track};
use tower::ServiceExt as _;

async fn get_status(
    app: &Router,
    uri: &str,
    request_id: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut request = Request::get(uri);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let id = response
        .headers()
        .get("x-request-id")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status(), id)
}

#[tokio::test]
async fn every_request_is_counted_under_its_own_route() {
    let metrics = HttpMetrics::new("test");
    let inner = Router::new()
        .route("/a", get(|| async { "a" }))
        .route("/b", get(|| async { "b" }));
    let app = Router::new()
        .merge(inner.clone())
        .nest("/ml", inner)
        .fallback(|| async { (StatusCode::NOT_FOUND, "none") })
        .layer(Track::new(std::sync::Arc::clone(&metrics)));
    for (uri, times) in [("/a", 3), ("/b", 2), ("/ml/a", 1), ("/nope", 2), ("/a", 1)] {
        for _ in 0..times {
            get_status(&app, uri, None).await;
        }
    }
    let mut out = String::new();
    metrics.render(&mut out);
    for (route, status, count) in [
        ("/a", 200, 4),
        ("/b", 200, 2),
        ("/ml/a", 200, 1),
        ("unmatched", 404, 2),
    ] {
        let line = format!(
            "tugboat_http_requests_total{{service=\"test\",route=\"{route}\",status=\"{status}\"}} {count}"
        );
        assert!(out.contains(&line), "missing {line} in:\n{out}");
    }
    assert!(!out.contains("route=\"/ml/b\""), "{out}");
}

#[tokio::test]
async fn the_request_id_is_echoed_when_sent() {
    let app = Router::new()
        .route("/a", get(|| async { "a" }))
        .layer(Track::new(HttpMetrics::new("test")));
    assert_eq!(
        get_status(&app, "/a", Some("abc-1")).await.1.as_deref(),
        Some("abc-1")
    );
    assert_eq!(get_status(&app, "/a", None).await.1, None);
}
