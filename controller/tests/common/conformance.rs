//! One suite of rollout scenarios, run against every platform (the in-memory fake and
//! AWS through moto): each platform supplies a [`Harness`] that can look at its world and
//! change it the way an operator would; the scenarios drive the real reconciler.
#![allow(dead_code)]

use std::time::Duration;

use tugboat::platform::{CrashAfter, Platform};
use tugboat::runtime::{DesiredDocument, PassReport, Reconciler, SideInputs};
use tugboat::status::{Phase, Timestamp, reason};

use super::{Infra, Spec, app, desired};

/// A platform's world, seen and changed from outside the controller.
pub trait Harness {
    type P: Platform;
    /// The platform as a freshly started controller has it: nothing cached.
    async fn platform(&self) -> Self::P;
    /// The operator inbox and model resolver that go with the platform.
    async fn inputs(&self) -> SideInputs {
        SideInputs::none()
    }
    fn infra(&self) -> &Infra;
    /// (blue, green) target groups of a routed workload.
    fn target_groups(&self, workload: &str) -> (String, String);
    /// Lets the platform do what it does by itself between passes (tasks start).
    async fn settle(&self);
    /// (desired count, image) of a service, if it exists.
    async fn service(&self, name: &str) -> Option<(u32, String)>;
    /// (blue, green) weights of a workload's rule, if it exists.
    async fn weights(&self, workload: &str) -> Option<(u32, u32)>;
    /// Images of every registered revision of a workload's family, one per revision.
    async fn revisions(&self, workload: &str) -> Vec<String>;
    async fn scale_by_hand(&self, service: &str, count: u32);
    async fn reweight_by_hand(&self, workload: &str, blue: u32, green: u32);
}

/// A canary workload `api` and a rolling `worker`; `api` runs `api:<tag>`.
pub fn shop<H: Harness>(h: &H, tag: &str) -> DesiredDocument {
    let (blue, green) = h.target_groups("api");
    desired(
        app(
            h.infra(),
            &[
                Spec::canary("api", &format!("api:{tag}"), &blue, &green, 10),
                Spec::rolling("worker", "worker:1"),
            ],
        ),
        tag,
    )
}

/// Passes one simulated second apart, settling between them, until a pass plans
/// nothing and sets no timer.
pub async fn converge<H: Harness, P: Platform>(
    h: &H,
    reconciler: &mut Reconciler<P>,
    doc: &DesiredDocument,
    now: &mut Timestamp,
) -> Vec<PassReport> {
    let mut reports = Vec::new();
    for _ in 0..20 {
        let report = reconciler.pass(doc, *now).await.expect("pass succeeds");
        h.settle().await;
        *now = now.plus(Duration::from_secs(1));
        let done = report.planned == 0 && report.requeue_after.is_none();
        reports.push(report);
        if done {
            return reports;
        }
    }
    panic!(
        "did not converge in 20 passes; last status {:#?}",
        reports.last().map(|r| &r.status)
    );
}

pub async fn first_deployment_then_a_no_op_pass<H: Harness>(h: &H) {
    let mut reconciler = Reconciler::with_inputs(h.platform().await, h.inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    // A status store behind the reconciler, so "not written" below can be false.
    let dir = tempfile::tempdir().expect("tempdir");
    let status_path = dir.path().join("status.json");
    let mut doc = shop(h, "1");
    doc.app.spec.status = Some(tugboat::document::StatusStore {
        uri: format!("file://{}", status_path.display()),
    });
    let reports = converge(h, &mut reconciler, &doc, &mut now).await;
    assert!(
        reports.iter().any(|r| r.status_written),
        "converging wrote the status: {:?}",
        reports.iter().map(|r| &r.status_error).collect::<Vec<_>>()
    );

    assert_eq!(h.revisions("api").await, ["api:1"]);
    assert_eq!(h.revisions("worker").await, ["worker:1"]);
    assert_eq!(h.service("api-blue").await, Some((2, "api:1".into())));
    assert_eq!(h.service("worker").await, Some((1, "worker:1".into())));
    assert_eq!(h.weights("api").await, Some((100, 0)));
    let status = reconciler.status().expect("status");
    assert_eq!(status.workloads["api"].phase, Phase::Healthy);
    assert_eq!(status.workloads["worker"].phase, Phase::Healthy);

    let noop = reconciler.pass(&doc, now).await.expect("pass");
    assert_eq!(noop.planned, 0);
    assert_eq!(
        noop.calls.mutate, 0,
        "no-op pass made mutating calls: {}",
        noop.calls
    );
    assert!(
        !noop.status_written && noop.status_error.is_none(),
        "an unchanged status is not rewritten: {:?}",
        noop.status_error
    );
    let persisted: tugboat::status::AppStatus =
        serde_json::from_str(&std::fs::read_to_string(&status_path).expect("status file"))
            .expect("status JSON");
    assert_eq!(
        persisted, noop.status,
        "what is persisted is the pass's status"
    );
}

pub async fn drift_by_hand_is_healed_and_recorded<H: Harness>(h: &H) {
    let mut reconciler = Reconciler::with_inputs(h.platform().await, h.inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    let doc = shop(h, "1");
    converge(h, &mut reconciler, &doc, &mut now).await;

    h.scale_by_hand("worker", 4).await;
    h.reweight_by_hand("api", 60, 40).await;
    let healing = reconciler.pass(&doc, now).await.expect("pass");
    assert_eq!(
        healing.execution.changes(),
        2,
        "{:#?}",
        healing.execution.applied
    );
    assert_eq!(h.service("worker").await.map(|s| s.0), Some(1));
    assert_eq!(h.weights("api").await, Some((100, 0)));
    for workload in ["worker", "api"] {
        let events = &healing.status.workloads[workload].events;
        assert!(
            events.iter().any(|e| e.reason == reason::DRIFTED),
            "{workload} records the drift: {events:#?}"
        );
    }
}

pub async fn a_new_image_registers_one_revision_on_the_idle_slot<H: Harness>(h: &H) {
    let mut reconciler = Reconciler::with_inputs(h.platform().await, h.inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    converge(h, &mut reconciler, &shop(h, "1"), &mut now).await;
    converge(h, &mut reconciler, &shop(h, "2"), &mut now).await;

    let mut revisions = h.revisions("api").await;
    revisions.sort();
    assert_eq!(revisions, ["api:1", "api:2"], "exactly one new revision");
    assert_eq!(h.service("api-green").await, Some((2, "api:2".into())));
    assert_eq!(
        h.service("api-blue").await.map(|s| s.0),
        Some(0),
        "old slot scaled down"
    );
    assert_eq!(h.weights("api").await, Some((0, 100)));
    assert_eq!(
        h.service("worker").await,
        Some((1, "worker:1".into())),
        "worker untouched"
    );
    assert_eq!(h.revisions("worker").await.len(), 1);
}

pub async fn crashes_between_calls_leave_no_duplicates<H: Harness>(h: &H) {
    let mut now = Timestamp::from_secs(1_000);
    let mut first = Reconciler::with_inputs(h.platform().await, h.inputs().await, None);
    converge(h, &mut first, &shop(h, "1"), &mut now).await;

    // Each controller dies right after its first mutating call reached the platform
    // (the first is the RegisterTaskDefinition); the next starts cold, with only the
    // platform and no status (the worst case).
    let v2 = shop(h, "2");
    let mut crashes = 0;
    for _ in 0..4 {
        let mut doomed = Reconciler::with_inputs(
            CrashAfter::new(h.platform().await, 0),
            h.inputs().await,
            None,
        );
        let report = doomed.pass(&v2, now).await.expect("pass");
        crashes += report.execution.failures.len();
        h.settle().await;
        now = now.plus(Duration::from_secs(1));
    }
    assert!(crashes > 0, "crashes were injected");
    let mut restarted = Reconciler::with_inputs(h.platform().await, h.inputs().await, None);
    converge(h, &mut restarted, &v2, &mut now).await;

    let mut revisions = h.revisions("api").await;
    revisions.sort();
    assert_eq!(
        revisions,
        ["api:1", "api:2"],
        "one revision per content after 4 crashes"
    );
    assert_eq!(h.revisions("worker").await.len(), 1);
    let serving: Vec<_> = [h.service("api-blue").await, h.service("api-green").await]
        .into_iter()
        .flatten()
        .filter(|(count, _)| *count > 0)
        .collect();
    assert_eq!(
        serving,
        [(2, "api:2".to_string())],
        "only the new revision serves"
    );
    let (blue, green) = h.weights("api").await.expect("rule");
    assert_eq!(blue + green, 100);
}

/// `shop` with `api`'s canary steps replaced by a header route to testers, a manual
/// pause, then the full shift.
pub fn shop_with_header_route<H: Harness>(h: &H, tag: &str) -> DesiredDocument {
    let mut doc = shop(h, tag);
    let steps: Vec<tugboat::document::CanaryStep> = serde_json::from_value(serde_json::json!([
        {"setHeaderRoute": {"name": "testers", "match": [
            {"headerName": "x-canary", "headerValue": {"exact": "true"}}
        ]}},
        {"pause": {}},
        {"setWeight": 100}
    ]))
    .expect("steps");
    let api = doc
        .app
        .spec
        .workloads
        .iter_mut()
        .find(|w| w.name == "api")
        .expect("api");
    match &mut api.strategy {
        tugboat::document::Strategy::Canary(c) => c.steps = steps,
        _ => panic!("api is a canary"),
    }
    doc
}

/// A header route through the real reconciler: created as its step, with no weight
/// moved; read back by a fresh controller; removed when the rollout aborts (the
/// document goes back), before the canary scales down.
pub async fn a_header_route_reaches_the_canary_alone_and_goes_at_abort<H: Harness>(h: &H) {
    let mut reconciler = Reconciler::with_inputs(h.platform().await, h.inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    converge(
        h,
        &mut reconciler,
        &shop_with_header_route(h, "1"),
        &mut now,
    )
    .await;
    let v2 = shop_with_header_route(h, "2");
    let mut routed = None;
    for _ in 0..20 {
        reconciler.pass(&v2, now).await.expect("pass");
        h.settle().await;
        now = now.plus(Duration::from_secs(1));
        let observation = h.platform().await.observe(&v2.app).await.expect("observe");
        if let Some(route) = observation
            .state
            .workloads
            .get("api")
            .and_then(|w| w.header_route.clone())
        {
            routed = Some(route);
            break;
        }
    }
    let route = routed.expect("the header route was created");
    assert_eq!(route.name, "testers");
    assert_eq!(route.slot, Some(tugboat::document::Slot::Green));
    assert_eq!(route.priority, Some(9));
    assert_eq!(h.weights("api").await, Some((100, 0)), "no weight moved");
    assert_eq!(h.service("api-green").await, Some((2, "api:2".into())));

    // The document goes back: the rollout aborts, the route goes, the canary drains.
    let v1 = shop_with_header_route(h, "1");
    for _ in 0..40 {
        reconciler.pass(&v1, now).await.expect("pass");
        h.settle().await;
        now = now.plus(Duration::from_secs(5));
        let observation = h.platform().await.observe(&v1.app).await.expect("observe");
        let api = observation.state.workloads.get("api");
        let scaled_down = h.service("api-green").await.is_none_or(|s| s.0 == 0);
        if scaled_down {
            assert!(
                api.and_then(|w| w.header_route.as_ref()).is_none(),
                "the canary scaled down while its header route was there"
            );
            return;
        }
    }
    panic!("the aborted canary never scaled down");
}
