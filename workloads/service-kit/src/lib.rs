//! What tugboat's two HTTP workloads (`tugboat-inference`, `tugboat-backend`) share.
//!
//! Each piece exists so that both services behave the same way at their edges:
//! - [`logging`]: one JSON log line per event on stdout (CloudWatch-friendly).
//! - [`shutdown`]: a future that resolves on SIGTERM (ECS stop) or ctrl-c.
//! - [`json`]: a JSON body extractor whose rejections are JSON too, and the one
//!   function every error response goes through, so clients always get
//!   `{"error": "...", "kind": "..."}` and never axum's plain-text rejection.
//! - [`features`]: parsing and validating feature vectors with messages that name the
//!   offending element (`features[3]: expected a finite number, got a string`).
//! - [`limits`]: a per-request deadline and a concurrency cap that answer in JSON.
//! - [`metrics`]: hand-rolled Prometheus text exposition (requests, latency
//!   histogram, errors by kind) with no registry crate behind it.
//!
//! Guarantees: nothing here panics on client input; every response produced here is
//! JSON with an `error` field and a status that says whose fault it was.

pub mod features;
pub mod json;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod shutdown;

use std::future::Future;

use axum::Router;
use axum::serve::ListenerExt;
use tokio::net::TcpListener;

/// Serve `router` on `listener` until `shutdown` resolves, then drain in-flight
/// requests (axum's graceful shutdown) and return.
///
/// Nagle is switched off on every accepted socket: responses here are small and
/// latency-sensitive, and Nagle plus delayed ACKs can add tens of milliseconds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // A failure here only costs latency, never correctness: carry on.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// The multi-threaded tokio runtime both services run on; `worker_threads` (from
/// `WORKER_THREADS`) overrides tokio's one-per-core default, at least one.
pub fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads.max(1));
    }
    builder.enable_all().build()
}
