//! The controller's own HTTP endpoint: `/healthz`, `/readyz`, Prometheus `/metrics` and
//! `/status`.
//!
//! Guarantees: `/healthz` answers 200 while the process serves at all (a container
//! health check); `/readyz` answers 200 only once a pass has completed and the last pass
//! did not fail as a whole; `/status` is the status of the last pass as JSON (the same
//! document `tugboat status --json` reads from the store). The loop feeds this through
//! [`Health::record`] (its `on_pass` callback); nothing here calls AWS, and nothing in
//! the loop depends on this module.

use std::fmt::Write as _;
use std::future::Future;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::status::Phase;

pub use super::health::Health;

/// The router; state is the loop's [`Health`].
pub fn app(health: Health) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .with_state(health)
}

/// Serves [`app`] on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app(health))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(health): State<Health>) -> Response {
    let leadership = health.leadership();
    let s = health.lock();
    // A follower is ready when it can read the lease: it stands by to take over.
    if let Some(l) = leadership.as_ref().filter(|l| !l.leading) {
        return match (&l.leader, &l.error) {
            (None, Some(error)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "follower {}: cannot read the lease at {}: {error}\n",
                    l.identity, l.lease
                ),
            )
                .into_response(),
            (leader, _) => (
                StatusCode::OK,
                format!(
                    "ready: follower {}; leader {} (lease {})\n",
                    l.identity,
                    leader.as_deref().unwrap_or("none yet"),
                    l.lease
                ),
            )
                .into_response(),
        };
    }
    let role = leadership
        .as_ref()
        .map(|l| format!(" (leader {})", l.identity))
        .unwrap_or_default();
    // The source is gone or holds something unusable: still ready (the last good
    // document stays in force), and said so.
    let source = s
        .status
        .as_ref()
        .and_then(|st| {
            st.conditions
                .iter()
                .find(|c| c.kind == crate::status::reason::DOCUMENT_INVALID && c.status)
        })
        .map(|c| format!("; the last good document stays in force: {}", c.message))
        .unwrap_or_default();
    match (s.last_pass_ok, &s.last_error) {
        (Some(true), _) => (StatusCode::OK, format!("ready{role}{source}\n")).into_response(),
        (Some(false), Some(error)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the last pass failed: {error}\n"),
        )
            .into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no pass has completed yet\n",
        )
            .into_response(),
    }
}

async fn status(State(health): State<Health>) -> Response {
    let leadership = health.leadership();
    match (&health.lock().status, leadership) {
        // With an election, the status carries who leads; a follower that never passed
        // answers with that alone.
        (status, Some(leadership)) => {
            let mut json = status
                .as_ref()
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or_else(|| serde_json::json!({}));
            if let Some(object) = json.as_object_mut() {
                object.insert(
                    "leadership".to_string(),
                    serde_json::to_value(&leadership).unwrap_or_default(),
                );
            }
            axum::Json(json).into_response()
        }
        (Some(status), None) => axum::Json(status.clone()).into_response(),
        (None, None) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "no pass has completed yet\n",
        )
            .into_response(),
    }
}

async fn metrics(State(health): State<Health>) -> Response {
    let leadership = health.leadership();
    let s = health.lock();
    let mut out = String::new();
    if let Some(l) = &leadership {
        let _ = writeln!(
            out,
            "# HELP tugboat_leader Whether this replica holds the lease and acts (1) or follows (0).\n\
             # TYPE tugboat_leader gauge\ntugboat_leader {}\n\
             # HELP tugboat_leader_terms_total Times this replica became leader.\n\
             # TYPE tugboat_leader_terms_total counter\ntugboat_leader_terms_total {}",
            u8::from(l.leading),
            l.terms
        );
    }
    let mut counter = |name: &str, help: &str, value: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
        );
    };
    counter("tugboat_passes_total", "Reconcile passes run.", s.passes);
    counter(
        "tugboat_pass_failures_total",
        "Passes that failed as a whole (observe or status load).",
        s.failed_passes,
    );
    counter(
        "tugboat_actions_applied_total",
        "Actions that changed the platform.",
        s.actions_applied,
    );
    counter(
        "tugboat_action_failures_total",
        "Workloads whose actions failed in a pass.",
        s.action_failures,
    );
    let _ = writeln!(
        out,
        "# HELP tugboat_aws_calls_total AWS API calls made.\n# TYPE tugboat_aws_calls_total counter\n\
         tugboat_aws_calls_total{{kind=\"describe\"}} {}\ntugboat_aws_calls_total{{kind=\"mutate\"}} {}",
        s.describe_calls, s.mutate_calls
    );
    if let Some(at) = s.last_pass_at {
        let _ = writeln!(
            out,
            "# HELP tugboat_last_pass_timestamp_seconds When the last pass ended.\n\
             # TYPE tugboat_last_pass_timestamp_seconds gauge\ntugboat_last_pass_timestamp_seconds {}",
            at.0 / 1000
        );
    }
    if let Some(status) = &s.status {
        let _ = writeln!(
            out,
            "# HELP tugboat_workload_phase Phase of each workload (1 for the current phase).\n\
             # TYPE tugboat_workload_phase gauge"
        );
        for (name, w) in &status.workloads {
            for phase in [
                Phase::Pending,
                Phase::Progressing,
                Phase::Paused,
                Phase::Healthy,
                Phase::Aborted,
                Phase::Blocked,
            ] {
                let _ = writeln!(
                    out,
                    "tugboat_workload_phase{{workload=\"{name}\",phase=\"{phase}\"}} {}",
                    u8::from(w.phase == phase)
                );
            }
        }
        // A family's samples are one group after its HELP and TYPE (the text format
        // requires it), so the weights come after every phase sample.
        let weights: Vec<_> = status
            .workloads
            .iter()
            .filter_map(|(name, w)| w.verified_weight.map(|weight| (name, weight)))
            .collect();
        if !weights.is_empty() {
            let _ = writeln!(
                out,
                "# HELP tugboat_canary_weight Canary weight last read back from the rule, in percent.\n\
                 # TYPE tugboat_canary_weight gauge"
            );
        }
        for (name, weight) in weights {
            let _ = writeln!(out, "tugboat_canary_weight{{workload=\"{name}\"}} {weight}");
        }
        out.push_str(&analysis_last_values(status));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// `tugboat_analysis_last_value{workload,template}`: the newest numeric measurement of
/// each template among the workload's runs (a run's metrics come in template order;
/// newer runs override older ones). Non-numeric answers are not exported.
fn analysis_last_values(status: &crate::status::AppStatus) -> String {
    let mut values: std::collections::BTreeMap<(&str, &str), (crate::status::Timestamp, f64)> =
        Default::default();
    for (workload, w) in &status.workloads {
        for run in &w.analysis_runs {
            for m in &run.metrics {
                let Some(last) = m.measurements.last() else {
                    continue;
                };
                let Some(n) = last
                    .value
                    .as_deref()
                    .and_then(|v| crate::condition::Value::String(v.to_string()).as_number())
                else {
                    continue;
                };
                let entry = values
                    .entry((workload.as_str(), m.template.as_str()))
                    .or_insert((last.finished_at, n));
                if last.finished_at >= entry.0 {
                    *entry = (last.finished_at, n);
                }
            }
        }
    }
    if values.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "# HELP tugboat_analysis_last_value The newest measured value of each analysis template.\n\
         # TYPE tugboat_analysis_last_value gauge\n",
    );
    for ((workload, template), (_, n)) in values {
        let _ = writeln!(
            out,
            "tugboat_analysis_last_value{{workload=\"{workload}\",template=\"{template}\"}} {}",
            crate::condition::format_number(n)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;
    use crate::runtime::reconciler::PassError;
    use crate::status::Timestamp;

    async fn get(health: &Health, path: &str) -> (StatusCode, String) {
        let response = app(health.clone())
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let code = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (code, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn healthz_is_always_ok_and_readyz_waits_for_a_pass() {
        let health = Health::default();
        assert_eq!(get(&health, "/healthz").await.0, StatusCode::OK);
        let (code, body) = get(&health, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("no pass"), "{body}");
        assert_eq!(
            get(&health, "/status").await.0,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }

    #[tokio::test]
    async fn every_metric_family_is_one_group_after_its_help_and_type() {
        let health = Health::default();
        let mut status = crate::status::AppStatus::default();
        for (name, weight) in [("api", 20), ("web", 60)] {
            let w = status.workloads.entry(name.to_string()).or_default();
            w.verified_weight = Some(weight);
            // Two runs of one template: the newer measurement is the one exported.
            for (at, value) in [(1_000u64, "0.5"), (2_000, "0.25")] {
                w.analysis_runs.push(
                    serde_json::from_value(serde_json::json!({
                        "id": format!("h/step-1/{at}"), "kind": "step", "hash": "h",
                        "startedAt": at, "phase": "running",
                        "metrics": [{"template": "errors", "phase": "running", "measurements": [
                            {"phase": "successful", "value": value, "startedAt": at, "finishedAt": at}
                        ]}, {"template": "json", "phase": "running", "measurements": [
                            {"phase": "successful", "value": "{\"ok\":true}", "startedAt": at, "finishedAt": at}
                        ]}]
                    }))
                    .unwrap(),
                );
            }
        }
        {
            let mut s = health.lock();
            s.status = Some(status);
            s.last_pass_at = Some(Timestamp::from_secs(10));
        }
        let (_, metrics) = get(&health, "/metrics").await;
        let mut described = std::collections::BTreeSet::new();
        let mut typed = std::collections::BTreeSet::new();
        let mut finished = std::collections::BTreeSet::new();
        let mut current: Option<String> = None;
        let mut samples = 0;
        for line in metrics.lines() {
            let family = if let Some(rest) = line.strip_prefix("# HELP ") {
                described.insert(rest.split(' ').next().unwrap_or_default().to_string());
                continue;
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.insert(rest.split(' ').next().unwrap_or_default().to_string());
                continue;
            } else {
                line.split(['{', ' '])
                    .next()
                    .unwrap_or_default()
                    .to_string()
            };
            samples += 1;
            assert!(
                described.contains(&family),
                "{family} has no HELP:\n{metrics}"
            );
            assert!(typed.contains(&family), "{family} has no TYPE:\n{metrics}");
            if current.as_deref() != Some(&family) {
                assert!(
                    !finished.contains(&family),
                    "{family} is split into two groups:\n{metrics}"
                );
                if let Some(done) = current.replace(family.clone()) {
                    finished.insert(done);
                }
            }
        }
        assert!(
            metrics.contains("tugboat_canary_weight{workload=\"web\"} 60"),
            "{metrics}"
        );
        assert!(
            metrics
                .contains("tugboat_analysis_last_value{workload=\"api\",template=\"errors\"} 0.25"),
            "{metrics}"
        );
        assert!(
            !metrics.contains("template=\"json\""),
            "not a number: {metrics}"
        );
        assert!(samples > 10, "{metrics}");
    }

    #[tokio::test]
    async fn a_failed_pass_makes_readyz_say_why() {
        let health = Health::default();
        let error = PassError::Observe(crate::platform::PlatformError::Unsupported(
            "listener missing".into(),
        ));
        health.record(&Err(error), Timestamp::from_secs(10));
        let (code, body) = get(&health, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("listener missing"), "{body}");
        let (_, metrics) = get(&health, "/metrics").await;
        assert!(
            metrics.contains("tugboat_pass_failures_total 1"),
            "{metrics}"
        );
        assert!(metrics.contains("tugboat_passes_total 1"), "{metrics}");
    }

    #[tokio::test]
    async fn with_an_election_readyz_status_and_metrics_say_who_leads() {
        let mut follower = crate::runtime::elector::Leadership::starting("b", "s3://x/lease");
        follower.leader = Some("a".into());
        let (tx, rx) = tokio::sync::watch::channel(follower);
        let health = Health::default().with_leadership(rx);
        let (code, body) = get(&health, "/readyz").await;
        assert_eq!(code, StatusCode::OK, "a follower stands by: {body}");
        assert!(body.contains("follower b; leader a"), "{body}");
        let (code, body) = get(&health, "/status").await;
        assert_eq!(code, StatusCode::OK);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["leadership"]["leader"], "a");
        assert_eq!(json["leadership"]["leading"], false);
        let (_, metrics) = get(&health, "/metrics").await;
        assert!(metrics.contains("tugboat_leader 0"), "{metrics}");

        tx.send_modify(|l| {
            l.leader = None;
            l.error = Some("bucket gone".into());
        });
        let (code, body) = get(&health, "/readyz").await;
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(body.contains("bucket gone"), "{body}");

        tx.send_modify(|l| {
            l.leading = true;
            l.leader = Some("b".into());
            l.error = None;
        });
        let mut status = crate::status::AppStatus::default();
        status.conditions.push(crate::status::Condition {
            kind: crate::status::reason::DOCUMENT_INVALID.into(),
            status: true,
            reason: crate::status::reason::DOCUMENT_INVALID.into(),
            message: "bucket \"docs\" does not exist".into(),
            last_transition: Timestamp::from_secs(1),
        });
        {
            let mut s = health.lock();
            s.last_pass_ok = Some(true);
            s.status = Some(status);
        }
        let (code, body) = get(&health, "/readyz").await;
        assert_eq!(code, StatusCode::OK);
        assert!(body.contains("(leader b)"), "{body}");
        assert!(
            body.contains("the last good document stays in force"),
            "{body}"
        );
        let (_, body) = get(&health, "/status").await;
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["leadership"]["leading"], true);
        assert_eq!(json["conditions"][0]["type"], "DocumentInvalid");
    }
}
