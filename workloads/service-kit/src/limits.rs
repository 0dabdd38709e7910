//! A deadline and a concurrency cap for the expensive routes, answering in JSON.
//!
//! Why hand-rolled rather than `tower::timeout` + `ConcurrencyLimit` behind
//! `HandleErrorLayer`: we want two different answers. A request that waited for a
//! slot and never got one did no work, so it gets 503 `overloaded` (safe to retry
//! elsewhere); a request that started and ran past the deadline gets 504 `timeout`.
//! Both share one deadline, so queueing time counts against it.
//!
//! Apply with `route_layer` to the prediction routes only: health and metrics must
//! keep answering when the service is saturated, or the load balancer would pull a
//! busy but healthy task out of service.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::json::error_response;

/// The limits: how long a request may take in all, and how many run at once.
#[derive(Debug, Clone)]
pub struct Limits {
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl Limits {
    /// `max_concurrency` is clamped to at least 1.
    pub fn new(timeout: Duration, max_concurrency: usize) -> Self {
        Self {
            timeout,
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
        }
    }
}

/// Middleware (`axum::middleware::from_fn_with_state(limits, enforce)`).
pub async fn enforce(State(limits): State<Limits>, req: Request, next: Next) -> Response {
    let deadline = Instant::now() + limits.timeout;
    let permit = match tokio::time::timeout_at(deadline, limits.permits.acquire_owned()).await {
        Ok(Ok(permit)) => permit,
        // The semaphore is never closed; treat it like a full queue if it ever is.
        Ok(Err(_)) | Err(_) => {
            return error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "server is at its concurrency limit; retry later",
            );
        }
    };
    let response = tokio::time::timeout_at(deadline, next.run(req)).await;
    drop(permit);
    match response {
        Ok(response) => response,
        Err(_) => error_response(
            StatusCode::GATEWAY_TIMEOUT,
            "timeout",
            &format!(
                "request did not complete within {} ms",
                limits.timeout.as_millis()
            ),
        ),
    }
}
