//! The shutdown signal.
//!
//! ECS stops a task with SIGTERM, waits `stopTimeout`, then sends SIGKILL; a developer
//! presses ctrl-c. Either resolves [`signal`], after which the server stops accepting
//! and drains in-flight requests.

/// Resolves on SIGTERM or ctrl-c (SIGINT), whichever comes first.
///
/// If a handler cannot be installed (it should not happen on Linux), that source is
/// logged and ignored rather than ending the server at once.
pub async fn signal() {
    let ctrl_c = async {
        match tokio::signal::ctrl_c().await {
            Ok(()) => tracing::info!(signal = "SIGINT", "shutting down"),
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for ctrl-c");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
                tracing::info!(signal = "SIGTERM", "shutting down");
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
