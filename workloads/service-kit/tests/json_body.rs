//! `JsonBody` enforces the state's body limit itself (no `DefaultBodyLimit` layer):
//! a declared length over it is refused before anything is read, and a body that
//! turns out longer than it (no length declared) is refused once it passes it.

use axum::body::Body;
use axum::extract::FromRequest;
use axum::http::Request;
use service_kit::json::{BodyLimit, JsonBody, JsonBodyError};

#[path = "support/endless_body.rs"]
mod endless_body;

struct State;

impl BodyLimit for State {
    fn body_limit(&self) -> usize {
        64
    }
}

async fn extract(req: Request<Body>) -> Result<serde_json::Value, JsonBodyError> {
    JsonBody::<serde_json::Value>::from_request(req, &State)
        .await
        .map(|JsonBody(v)| v)
}

fn json() -> axum::http::request::Builder {
    Request::post("/").header("content-type", "application/json")
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    // The body is short and valid: only the declared length can refuse it.
    let req = json()
        .header("content-length", "65")
        .body(Body::from("{}"))
        .unwrap();
    assert!(matches!(
        extract(req).await,
        Err(JsonBodyError::TooLarge { limit: 64 })
    ));
}

#[tokio::test]
async fn a_body_longer_than_the_limit_without_a_declared_length_is_refused() {
    let (body, pulled) = endless_body::EndlessBody::new(1 << 20);
    let req = json().body(Body::new(body)).unwrap();
    assert!(matches!(
        extract(req).await,
        Err(JsonBodyError::TooLarge { limit: 64 })
    ));
    let pulled = pulled.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        pulled <= endless_body::CHUNK,
        "read {pulled} bytes of an endless body"
    );
}

#[tokio::test]
async fn a_body_within_the_limit_is_parsed() {
    let req = json()
        .header("content-length", "12")
        .body(Body::from("{\"a\": [1,2]}"))
        .unwrap();
    assert_eq!(
        extract(req).await.unwrap(),
        serde_json::json!({"a": [1, 2]})
    );
}
