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

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio::time::{Instant, Timeout, timeout_at};
use tower::{Layer, Service};

use crate::json::error_response;

/// The limits: how long a request may take in all, and how many run at once.
///
/// A [`Layer`]: `route_layer(limits)`. It is a hand-written service rather than an
/// `axum::middleware::from_fn`: that one clones the inner route, boxes it and boxes
/// its own future on every request, which a `/predict` profile showed as a share of
/// the service's CPU. Here a request that finds a free slot costs one permit and one
/// (lazily armed) timer; only a request that must queue for a slot is boxed.
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

impl<S> Layer<S> for Limits {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited {
            inner,
            limits: self.clone(),
        }
    }
}

/// A service under [`Limits`].
#[derive(Debug, Clone)]
pub struct Limited<S> {
    inner: S,
    limits: Limits,
}

impl<S> Service<Request> for Limited<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = LimitedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let deadline = Instant::now() + self.limits.timeout;
        let timeout = self.limits.timeout;
        match Arc::clone(&self.limits.permits).try_acquire_owned() {
            Ok(permit) => LimitedFuture::Running {
                call: timeout_at(deadline, self.inner.call(req)),
                permit: Some(permit),
                timeout,
            },
            Err(TryAcquireError::NoPermits) => {
                // The service made ready is the one that must be called; the clone
                // left in its place is made ready again by the next `poll_ready`.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let permits = Arc::clone(&self.limits.permits);
                LimitedFuture::Queued {
                    wait: Box::pin(async move {
                        let Ok(Ok(permit)) = timeout_at(deadline, permits.acquire_owned()).await
                        else {
                            return overloaded();
                        };
                        let Ok(response) = timeout_at(deadline, inner.call(req)).await else {
                            return timed_out(timeout);
                        };
                        drop(permit);
                        response.unwrap_or_else(|never| match never {})
                    }),
                }
            }
            // The semaphore is never closed; treat it like a full queue if it ever is.
            Err(TryAcquireError::Closed) => LimitedFuture::Refused {
                response: Some(overloaded()),
            },
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`Limited`] service.
    #[project = LimitedProjection]
    pub enum LimitedFuture<F> {
        /// Holding a slot; the timer is armed only if the call does not finish at once.
        Running {
            #[pin]
            call: Timeout<F>,
            permit: Option<OwnedSemaphorePermit>,
            timeout: Duration,
        },
        /// Waiting for a slot, then running, within the same deadline.
        Queued {
            wait: Pin<Box<dyn Future<Output = Response> + Send>>,
        },
        /// Refused before it started.
        Refused { response: Option<Response> },
    }
}

impl<F> Future for LimitedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            LimitedProjection::Running {
                call,
                permit,
                timeout,
            } => {
                let outcome = ready!(call.poll(cx));
                // The slot is free as soon as the answer is, not when hyper drops us.
                permit.take();
                Poll::Ready(Ok(match outcome {
                    Ok(response) => response.unwrap_or_else(|never| match never {}),
                    Err(_elapsed) => timed_out(*timeout),
                }))
            }
            LimitedProjection::Queued { wait } => wait.as_mut().poll(cx).map(Ok),
            LimitedProjection::Refused { response } => {
                Poll::Ready(Ok(response.take().unwrap_or_else(overloaded)))
            }
        }
    }
}

fn overloaded() -> Response {
    error_response(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "server is at its concurrency limit; retry later",
    )
}

fn timed_out(timeout: Duration) -> Response {
    error_response(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        &format!("request did not complete within {} ms", timeout.as_millis()),
    )
}
