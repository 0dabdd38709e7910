//! The conformance suite on the local platform: real child processes (the backend
//! binary stands in for both test workloads, `api` and `worker`) behind the real
//! router, driven by the real reconciler.

mod common;
mod local_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::Infra;
use common::conformance::{self, Harness};
use tugboat::platform::local::router::{Router, RouterConfig};
use tugboat::platform::local::supervisor::{Launcher, Supervisor, SupervisorConfig};
use tugboat::platform::local::{Binaries, LocalConfig, LocalPlatform};

/// One local world per test. Every "restart" shares it, as the AWS world outlives a
/// controller in the AWS run (a real restart of `tugboat up` also restarts the
/// children; that is `local_up.rs`'s business).
struct Local {
    platform: Arc<LocalPlatform>,
    infra: Infra,
    _dir: tempfile::TempDir,
}

impl Local {
    async fn new() -> Self {
        let bins = local_support::workload_bins();
        let dir = tempfile::tempdir().expect("tempdir");
        let router = Router::bind(
            "127.0.0.1:0".parse().expect("addr"),
            RouterConfig::default(),
        )
        .await
        .expect("router");
        let handle = router.handle();
        tokio::spawn(router.serve(std::future::pending()));
        let supervisor = Supervisor::new(
            Launcher::new(local_support::tugboat()),
            SupervisorConfig {
                log_dir: dir.path().to_path_buf(),
                echo: false,
                grace: Duration::from_secs(2),
            },
        );
        let backend = bins.join("backend");
        let platform = LocalPlatform::new(
            LocalConfig {
                base_dir: dir.path().to_path_buf(),
                state_dir: dir.path().join("state"),
                binaries: Binaries {
                    dirs: vec![],
                    overrides: BTreeMap::from([
                        ("api".to_string(), backend.clone()),
                        ("worker".to_string(), backend),
                    ]),
                },
            },
            handle,
            supervisor,
        );
        Self {
            platform: Arc::new(platform),
            infra: Infra::fake(),
            _dir: dir,
        }
    }

    fn image(&self, arn: &str) -> Option<String> {
        let family = arn
            .strip_prefix("local:task-definition/")?
            .rsplit_once(':')?
            .0
            .to_string();
        self.platform
            .revisions(&family)
            .into_iter()
            .find(|d| format!("local:task-definition/{}:{}", d.family, d.revision) == arn)
            .map(|d| d.definition.container.image)
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Children end with the test process anyway (parent-death signal); stop them
        // now so parallel tests do not pile up processes.
        let supervisor = self.platform.supervisor().clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime")
                .block_on(supervisor.shutdown());
        })
        .join()
        .expect("shutdown");
    }
}

impl Harness for Local {
    type P = Arc<LocalPlatform>;

    async fn platform(&self) -> Arc<LocalPlatform> {
        self.platform.clone()
    }

    fn infra(&self) -> &Infra {
        &self.infra
    }

    fn target_groups(&self, workload: &str) -> (String, String) {
        (
            format!("tg-{workload}-blue"),
            format!("tg-{workload}-green"),
        )
    }

    async fn settle(&self) {
        assert!(
            self.platform.settle(Duration::from_secs(60)).await,
            "the local services did not become healthy within 60 s"
        );
    }

    async fn service(&self, name: &str) -> Option<(u32, String)> {
        let (count, arn) = self.platform.service(name)?;
        Some((count, self.image(&arn)?))
    }

    async fn weights(&self, workload: &str) -> Option<(u32, u32)> {
        let (blue, green) = self.target_groups(workload);
        let weights = self.platform.rule_weights(workload)?;
        let w = |g: &str| weights.get(g).copied().unwrap_or(0);
        Some((w(&blue), w(&green)))
    }

    async fn revisions(&self, workload: &str) -> Vec<String> {
        self.platform
            .revisions(&format!("{}-{workload}", self.infra.app_name))
            .into_iter()
            .map(|r| r.definition.container.image)
            .collect()
    }

    async fn scale_by_hand(&self, service: &str, count: u32) {
        self.platform.scale_by_hand(service, count);
    }

    async fn reweight_by_hand(&self, workload: &str, blue: u32, green: u32) {
        let (b, g) = self.target_groups(workload);
        self.platform
            .reweight_by_hand(workload, &[(b.as_str(), blue), (g.as_str(), green)]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_first_deployment_then_a_no_op_pass() {
    conformance::first_deployment_then_a_no_op_pass(&Local::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_drift_by_hand_is_healed_and_recorded() {
    conformance::drift_by_hand_is_healed_and_recorded(&Local::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_a_new_image_registers_one_revision_on_the_idle_slot() {
    conformance::a_new_image_registers_one_revision_on_the_idle_slot(&Local::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_crashes_between_calls_leave_no_duplicates() {
    conformance::crashes_between_calls_leave_no_duplicates(&Local::new().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_only_healthy_replicas_of_the_slot_the_rule_weights() {
    let h = Local::new().await;
    let mut reconciler = tugboat::runtime::Reconciler::new(h.platform.clone(), None);
    let mut now = tugboat::status::Timestamp::from_secs(1_000);
    conformance::converge(&h, &mut reconciler, &conformance::shop(&h, "1"), &mut now).await;
    let table = h.platform.router().table();
    let blue = table
        .targets
        .get("tg-api-blue")
        .cloned()
        .unwrap_or_default();
    assert_eq!(blue.len(), 2, "both api replicas are targets: {table:?}");
    let addr = h.platform.router().addr();
    for _ in 0..10 {
        let r = reqwest::get(format!("http://{addr}/api/health"))
            .await
            .expect("router answers");
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-tugboat-target-group"], "tg-api-blue");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_replica_that_fails_its_health_check_is_no_target_and_gets_no_weight() {
    use tugboat::platform::Platform;
    let h = Local::new().await;
    let mut doc = conformance::shop(&h, "1");
    let api = doc
        .app
        .spec
        .workloads
        .iter_mut()
        .find(|w| w.name == "api")
        .expect("api");
    api.health_check = Some(
        serde_json::from_value(serde_json::json!({
            "command": ["CMD-SHELL", "curl -f http://localhost:8000/no-such-path || exit 1"]
        }))
        .expect("health check"),
    );
    let mut reconciler = tugboat::runtime::Reconciler::new(h.platform.clone(), None);
    let mut now = tugboat::status::Timestamp::from_secs(1_000);
    for _ in 0..6 {
        reconciler.pass(&doc, now).await.expect("pass");
        tokio::time::sleep(Duration::from_millis(500)).await;
        now = now.plus(Duration::from_secs(1));
    }
    let observed = h.platform.observe(&doc.app).await.expect("observe");
    let blue = &observed.state.workloads["api"].slots[&tugboat::document::Slot::Blue];
    assert_eq!(
        (blue.running_count, blue.healthy_targets),
        (2, 0),
        "the processes run, but /no-such-path answers 404: {blue:?}"
    );
    assert!(!blue.deployment_complete);
    let table = h.platform.router().table();
    assert!(
        table
            .targets
            .get("tg-api-blue")
            .is_none_or(|t| t.is_empty()),
        "no unhealthy replica is a target: {table:?}"
    );
    assert!(
        h.platform
            .rule_weights("api")
            .is_none_or(|w| w.values().all(|w| *w == 0)),
        "no weight onto a slot without healthy targets: {:?}",
        h.platform.rule_weights("api")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_a_header_route_reaches_the_canary_alone_and_goes_at_abort() {
    conformance::a_header_route_reaches_the_canary_alone_and_goes_at_abort(&Local::new().await)
        .await;
}
