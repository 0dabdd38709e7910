//! The runtime: everything that keeps one application reconciled while the process runs.
//!
//! - [`feed`]: the source watcher's updates, as the one value the loop reads.
//! - [`assemble`]: the observation from the platform, the operator inbox and the model
//!   resolver.
//! - [`reconciler`]: one pass (observe, plan, execute, persist status).
//! - [`executor`]: applies a plan's actions through the platform.
//! - [`driver`]: the loop (timing, backoff, shutdown); reports each pass through a
//!   callback.
//! - [`gate`]: asks the `gate` steps the status waits at, in the pass.
//! - [`notify`]: the webhooks of `spec.notifications`, queued and sent beside the loop.
//! - [`health`] and [`http`]: what `/healthz`, `/readyz`, `/metrics` and `/status`
//!   answer, fed by that callback.
//!
//! Dependencies point one way: `health`/`http` -> `reconciler`'s report types <-
//! `driver`; the loop never imports the endpoint. [`serve`] wires them together; the CLI
//! only builds the platform and calls it.

pub mod assemble;
pub mod driver;
pub mod elector;
pub mod executor;
pub mod feed;
#[cfg(feature = "aws")]
pub mod fleet;
pub mod gate;
pub mod health;
pub mod http;
pub mod notify;
pub mod reconciler;

use std::future::Future;
use std::sync::Arc;

use crate::platform::Platform;
use crate::source::Watcher;

pub use assemble::SideInputs;
pub use driver::{LoopConfig, OnPass, run, shutdown_signal};
pub use feed::{DesiredDocument, Feed};
pub use health::Health;
pub use reconciler::{PassError, PassOutcome, PassReport, Reconciler};

/// What [`serve`] runs.
#[derive(Debug)]
pub struct ServeConfig<P> {
    pub reconciler: Reconciler<P>,
    /// The source, already past its first valid document ([`feed::first_document`]).
    pub watcher: Watcher,
    pub first: DesiredDocument,
    /// Where `/healthz`, `/readyz`, `/metrics` and `/status` are served; `None`: not at
    /// all.
    pub http: Option<tokio::net::TcpListener>,
    /// With several replicas: passes run only while this one holds the lease.
    pub election: Option<elector::Elector>,
    pub loop_config: LoopConfig,
}

/// Runs the controller until `shutdown` resolves: the feed from the watcher, the loop,
/// and the HTTP endpoint. Returns after the loop's last pass; the feed and the endpoint
/// stop with it (nothing is left for them to report).
pub async fn serve<P: Platform>(config: ServeConfig<P>, shutdown: impl Future<Output = ()>) {
    let ServeConfig {
        mut reconciler,
        watcher,
        first,
        http,
        election,
        mut loop_config,
    } = config;
    let (feed, documents) = tokio::sync::watch::channel(Feed::from(first));
    let feeder = tokio::spawn(feed::pump(watcher, feed));
    let server = http.map(|listener| {
        let mut health = Health::default();
        if let Some(elector) = &election {
            health = health.with_leadership(elector.subscribe());
        }
        loop_config.on_pass = Some(both(loop_config.on_pass.take(), health.on_pass()));
        tokio::spawn(http::run(listener, health, std::future::pending()))
    });
    match election {
        None => run(&mut reconciler, documents, loop_config, shutdown).await,
        Some(elector) => {
            // One reconciler across terms; each term starts from the persisted status,
            // which another leader may have moved on meanwhile.
            let reconciler = tokio::sync::Mutex::new(reconciler);
            let reconciler = &reconciler;
            elector
                .run(
                    |term| {
                        let documents = documents.clone();
                        let loop_config = loop_config.clone();
                        async move {
                            let mut reconciler = reconciler.lock().await;
                            reconciler.forget_status();
                            run(&mut reconciler, documents, loop_config, term.stopping()).await;
                        }
                    },
                    shutdown,
                )
                .await;
        }
    }
    feeder.abort();
    if let Some(server) = server {
        server.abort();
    }
}

/// A callback that calls `first` (if any), then `second`.
fn both(first: Option<OnPass>, second: OnPass) -> OnPass {
    match first {
        None => second,
        Some(first) => Arc::new(move |outcome, now| {
            first(outcome, now);
            second(outcome, now);
        }),
    }
}
