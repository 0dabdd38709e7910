//! One controller, many applications: every document under a prefix
//! (`s3://bucket/prefix/`, `ssm:/path/`, see [`DocumentSet`]) is reconciled as its own
//! application, by its own watcher and loop, beside the others.
//!
//! Guarantees:
//! - Applications are independent: each has its own watcher, reconciler and loop, run
//!   concurrently on one task set, so a document that is invalid, unreadable or whose
//!   passes fail never delays another's passes. Its problem is kept in the fleet's
//!   report (`/status`, `/readyz`, the logs), and once it has a valid revision in its own
//!   persisted status as `DocumentInvalid`.
//! - One set of token buckets for the account: every application's platform and side
//!   inputs are built by [`FleetConfig::make`] with the fleet's one [`Budgets`], because
//!   AWS counts quotas (ELB's mutating calls above all) per account, not per application.
//! - The prefix is listed again at every resync; a new document starts an application.
//!   A document that disappears is not stopped: its watcher reports it unreadable and
//!   its last good document stays in force, as for a single source.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::{Arc, Mutex};

use aws_config::SdkConfig;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;
use tracing::Instrument;

use crate::budget::Budgets;
use crate::platform::Platform;
use crate::source::{DocumentSet, DocumentSource, Update, WatchConfig, Watcher};

use super::driver::{LoopConfig, run};
use super::feed::{self, DesiredDocument, Feed};
use super::health::Health;
use super::reconciler::Reconciler;

/// Builds the reconciler of one application from its first valid document, drawing on
/// the fleet's budgets.
/// An error is the application's problem (e.g. a document for another platform).
pub type MakeReconciler<P> =
    Arc<dyn Fn(&DesiredDocument, Arc<Budgets>) -> Result<Reconciler<P>, String> + Send + Sync>;

/// What [`serve`] runs.
pub struct FleetConfig<P> {
    pub set: DocumentSet,
    /// The AWS configuration the documents are read with.
    pub sdk: SdkConfig,
    pub watch: WatchConfig,
    pub loop_config: LoopConfig,
    /// The one set of buckets every application draws from.
    pub budgets: Arc<Budgets>,
    pub make: MakeReconciler<P>,
}

impl<P> Clone for FleetConfig<P> {
    fn clone(&self) -> Self {
        Self {
            set: self.set.clone(),
            sdk: self.sdk.clone(),
            watch: self.watch,
            loop_config: self.loop_config.clone(),
            budgets: self.budgets.clone(),
            make: self.make.clone(),
        }
    }
}

impl<P> std::fmt::Debug for FleetConfig<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetConfig")
            .field("set", &self.set)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

/// One application of the fleet, as the endpoint reports it.
#[derive(Debug, Clone, Default)]
pub struct Member {
    pub health: Health,
    /// What is wrong with its document (unreadable, invalid), if anything.
    pub problem: Option<String>,
    /// `name/environment` once a valid document was read.
    pub app: Option<String>,
}

/// The applications the fleet runs, by document URI.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    members: Arc<Mutex<BTreeMap<String, Member>>>,
    listing_error: Arc<Mutex<Option<String>>>,
}

impl Fleet {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Member>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A copy of every member, by document URI.
    pub fn members(&self) -> BTreeMap<String, Member> {
        self.lock().clone()
    }

    fn set_problem(&self, uri: &str, problem: Option<String>) {
        if let Some(m) = self.lock().get_mut(uri) {
            m.problem = problem;
        }
    }
}

/// Runs every application under the prefix until `shutdown` resolves, reporting into
/// `fleet`. The listing repeats at every resync.
pub async fn serve<P: Platform + 'static>(
    config: FleetConfig<P>,
    fleet: Fleet,
    shutdown: impl Future<Output = ()>,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // A new term (leader election) starts every application afresh.
    fleet.lock().clear();
    let local = tokio::task::LocalSet::new();
    let config = Arc::new(config);
    local
        .run_until(async {
            tokio::pin!(shutdown);
            loop {
                match config.set.list(&config.sdk).await {
                    Ok(uris) => {
                        *fleet.listing_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        for uri in uris {
                            if fleet.lock().contains_key(&uri) {
                                continue;
                            }
                            tracing::info!(source = %uri, "new application document");
                            fleet.lock().insert(uri.clone(), Member::default());
                            let span = tracing::info_span!("application", source = %uri);
                            tokio::task::spawn_local(
                                member(config.clone(), fleet.clone(), uri, stop_rx.clone())
                                    .instrument(span),
                            );
                        }
                    }
                    Err(e) => {
                        // The applications already running keep their documents in force.
                        let text = crate::runtime::reconciler::error_chain(&e);
                        tracing::error!(set = %config.set, error = %text, "listing the documents failed; the applications running keep their last good documents");
                        *fleet.listing_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
                    }
                }
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(config.watch.resync) => {}
                }
            }
            let _ = stop_tx.send(true);
        })
        .await;
    // Running members see the stop and end their pass; wait for them on the local set.
    local.await;
}

/// One application: waits for its first valid document (reporting problems meanwhile),
/// then runs its loop with its feed until the fleet stops.
async fn member<P: Platform + 'static>(
    config: Arc<FleetConfig<P>>,
    fleet: Fleet,
    uri: String,
    mut stop: watch::Receiver<bool>,
) {
    let parsed: crate::source::SourceUri = match uri.parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            fleet.set_problem(&uri, Some(e.to_string()));
            return;
        }
    };
    let mut watcher = Watcher::new(DocumentSource::new(parsed, &config.sdk), config.watch);
    let first = loop {
        let update = tokio::select! {
            update = watcher.next() => update,
            _ = stop.wait_for(|s| *s) => return,
        };
        match update {
            Update::Applied { .. } => {
                if let Some(in_force) = watcher.in_force() {
                    break feed::desired(in_force);
                }
            }
            Update::Rejected { .. } | Update::Unreadable => {
                let problem = watcher.problem().map(ToString::to_string);
                tracing::error!(source = %uri, problem = problem.as_deref().unwrap_or(""), "no valid document yet; the other applications carry on");
                fleet.set_problem(&uri, problem);
            }
            _ => {}
        }
    };
    fleet.set_problem(&uri, None);
    let health = {
        let mut members = fleet.lock();
        let m = members.entry(uri.clone()).or_default();
        m.app = Some(format!(
            "{}/{}",
            first.app.metadata.name, first.app.metadata.environment
        ));
        m.health.clone()
    };
    let mut reconciler = match (config.make)(&first, config.budgets.clone()) {
        Ok(reconciler) => reconciler,
        Err(problem) => {
            tracing::error!(source = %uri, %problem, "this application cannot run here");
            fleet.set_problem(&uri, Some(problem));
            return;
        }
    };
    let (feed_tx, documents) = watch::channel(Feed::from(first));
    // The feed, with the member's problem mirrored into the fleet's report.
    let problems = fleet.clone();
    let source_uri = uri.clone();
    let pump = tokio::task::spawn_local(async move {
        while !feed_tx.is_closed() {
            let update = watcher.next().await;
            feed::apply_update(&watcher, update, &feed_tx);
            problems.set_problem(&source_uri, watcher.problem().map(ToString::to_string));
        }
    });
    let mut loop_config = config.loop_config.clone();
    let record = health.on_pass();
    loop_config.on_pass = Some(match loop_config.on_pass.take() {
        None => record,
        Some(outer) => Arc::new(move |outcome, now| {
            outer(outcome, now);
            record(outcome, now);
        }),
    });
    run(&mut reconciler, documents, loop_config, async move {
        let _ = stop.wait_for(|s| *s).await;
    })
    .await;
    pump.abort();
}

/// The fleet's endpoint: `/healthz`, `/readyz` (ready once any application passed; the
/// body lists every application and its problem), `/status` (every application's status
/// or problem, by document URI) and `/metrics` (per application).
pub fn app(
    fleet: Fleet,
    leadership: Option<watch::Receiver<super::elector::Leadership>>,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .with_state((fleet, leadership))
}

type FleetState = (Fleet, Option<watch::Receiver<super::elector::Leadership>>);

async fn readyz(State((fleet, leadership)): State<FleetState>) -> Response {
    let mut body = String::new();
    if let Some(l) = &leadership {
        let l = l.borrow();
        let _ = writeln!(
            body,
            "{} {} (leader {})",
            if l.leading { "leader" } else { "follower" },
            l.identity,
            l.leader.as_deref().unwrap_or("none yet")
        );
        if !l.leading {
            return (StatusCode::OK, format!("ready: {body}")).into_response();
        }
    }
    let mut any_ready = false;
    for (uri, m) in fleet.members() {
        let s = m.health.lock();
        let state = match (s.last_pass_ok, &m.problem) {
            (_, Some(problem)) => format!("problem: {problem}"),
            (Some(true), None) => {
                any_ready = true;
                "ready".to_string()
            }
            (Some(false), None) => format!(
                "the last pass failed: {}",
                s.last_error.as_deref().unwrap_or("")
            ),
            (None, None) => "no pass yet".to_string(),
        };
        if m.problem.is_some() && s.last_pass_ok == Some(true) {
            any_ready = true;
        }
        let _ = writeln!(body, "{uri}: {state}");
    }
    if let Some(e) = fleet
        .listing_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        let _ = writeln!(body, "listing: {e}");
    }
    let code = if any_ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

async fn status(State((fleet, leadership)): State<FleetState>) -> Response {
    let mut apps = serde_json::Map::new();
    for (uri, m) in fleet.members() {
        let s = m.health.lock();
        apps.insert(
            uri,
            serde_json::json!({
                "application": m.app,
                "problem": m.problem,
                "lastPassOk": s.last_pass_ok,
                "lastError": s.last_error,
                "status": s.status,
            }),
        );
    }
    let mut json = serde_json::json!({ "applications": apps });
    if let Some(l) = &leadership {
        json["leadership"] = serde_json::to_value(&*l.borrow()).unwrap_or_default();
    }
    axum::Json(json).into_response()
}

async fn metrics(State((fleet, _)): State<FleetState>) -> Response {
    let members = fleet.members();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP tugboat_applications Application documents under the source prefix.\n\
         # TYPE tugboat_applications gauge\ntugboat_applications {}",
        members.len()
    );
    let _ = writeln!(
        out,
        "# HELP tugboat_passes_total Reconcile passes run, per application.\n# TYPE tugboat_passes_total counter"
    );
    for (uri, m) in &members {
        let _ = writeln!(
            out,
            "tugboat_passes_total{{source=\"{uri}\"}} {}",
            m.health.lock().passes
        );
    }
    let _ = writeln!(
        out,
        "# HELP tugboat_aws_calls_total AWS API calls made, per application.\n# TYPE tugboat_aws_calls_total counter"
    );
    for (uri, m) in &members {
        let s = m.health.lock();
        let _ = writeln!(
            out,
            "tugboat_aws_calls_total{{source=\"{uri}\",kind=\"describe\"}} {}\n\
             tugboat_aws_calls_total{{source=\"{uri}\",kind=\"mutate\"}} {}",
            s.describe_calls, s.mutate_calls
        );
    }
    let _ = writeln!(
        out,
        "# HELP tugboat_application_problem Whether the application's document has a problem (1).\n# TYPE tugboat_application_problem gauge"
    );
    for (uri, m) in &members {
        let _ = writeln!(
            out,
            "tugboat_application_problem{{source=\"{uri}\"}} {}",
            u8::from(m.problem.is_some())
        );
    }
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        out,
    )
        .into_response()
}
