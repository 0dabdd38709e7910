//! The reconcile loop against the in-memory platform: first deployment, no-op passes,
//! drift, an image change through a canary, a crash between calls, and one workload's
//! failure not stopping the others.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Infra, Spec, app, desired};
use tugboat::document::Slot;
use tugboat::platform::CrashAfter;
use tugboat::platform::memory::MemoryPlatform;
use tugboat::reconcile::{DesiredDocument, PassReport, Reconciler};
use tugboat::status::{Phase, Timestamp, reason};

fn shop(image_tag: &str) -> DesiredDocument {
    let infra = Infra::fake();
    desired(
        app(
            &infra,
            &[
                Spec::canary(
                    "api",
                    &format!("api:{image_tag}"),
                    "tg-api-blue",
                    "tg-api-green",
                    10,
                ),
                Spec::rolling("worker", "worker:1"),
            ],
        ),
        image_tag,
    )
}

/// Runs passes, one simulated second apart, until a pass plans nothing.
async fn converge<P: tugboat::platform::Platform>(
    reconciler: &mut Reconciler<P>,
    doc: &DesiredDocument,
    now: &mut Timestamp,
) -> Vec<PassReport> {
    let mut reports = Vec::new();
    for _ in 0..20 {
        let report = reconciler.pass(doc, *now).await.expect("pass succeeds");
        *now = now.plus(Duration::from_secs(1));
        // Converged: nothing to do and no timer pending (a scale-down delay plans no
        // action but asks to be called again).
        let done = report.planned == 0 && report.requeue_after.is_none();
        reports.push(report);
        if done {
            return reports;
        }
    }
    panic!(
        "did not converge in 20 passes: last status {:#?}",
        reports.last().map(|r| &r.status)
    );
}

#[tokio::test]
async fn the_first_passes_create_definitions_services_and_rule_weights() {
    let platform = Arc::new(MemoryPlatform::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000);
    converge(&mut reconciler, &shop("1"), &mut now).await;

    let state = platform.with_state(|s| s.clone());
    assert_eq!(state.services["api-blue"].desired_count, 2);
    assert_eq!(state.services["worker"].desired_count, 1);
    let rule = &state.rules["api"];
    assert_eq!(rule.weights["tg-api-blue"], 100);
    assert_eq!(rule.weights["tg-api-green"], 0);
    assert_eq!(platform.revisions("shop-api").len(), 1);
    assert_eq!(platform.revisions("shop-worker").len(), 1);
    let status = reconciler.status().expect("status kept");
    assert_eq!(status.workloads["api"].phase, Phase::Healthy);
    assert_eq!(status.workloads["worker"].phase, Phase::Healthy);
}

#[tokio::test]
async fn a_pass_over_a_converged_application_makes_no_mutating_call() {
    let platform = Arc::new(MemoryPlatform::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000);
    let doc = shop("1");
    converge(&mut reconciler, &doc, &mut now).await;
    let report = reconciler.pass(&doc, now).await.expect("pass");
    assert_eq!(report.calls.mutate, 0, "{}", report.calls);
    assert!(!report.status_written, "unchanged status is not rewritten");
}

#[tokio::test]
async fn drift_made_by_hand_is_corrected_and_recorded() {
    let platform = Arc::new(MemoryPlatform::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000);
    let doc = shop("1");
    converge(&mut reconciler, &doc, &mut now).await;

    platform.with_state(|s| {
        s.services.get_mut("worker").expect("worker").desired_count = 5;
        let rule = s.rules.get_mut("api").expect("rule");
        rule.weights.insert("tg-api-blue".into(), 70);
        rule.weights.insert("tg-api-green".into(), 30);
    });
    let reports = converge(&mut reconciler, &doc, &mut now).await;
    assert_eq!(
        reports[0].execution.changes(),
        2,
        "one update, one rule change"
    );

    let state = platform.with_state(|s| s.clone());
    assert_eq!(state.services["worker"].desired_count, 1);
    assert_eq!(state.rules["api"].weights["tg-api-blue"], 100);
    let status = reconciler.status().expect("status");
    for workload in ["worker", "api"] {
        assert!(
            status.workloads[workload]
                .events
                .iter()
                .any(|e| e.reason == reason::DRIFTED),
            "{workload} records the drift: {:#?}",
            status.workloads[workload].events
        );
    }
}

#[tokio::test]
async fn a_new_image_registers_one_revision_and_moves_traffic_to_the_other_slot() {
    let platform = Arc::new(MemoryPlatform::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000);
    converge(&mut reconciler, &shop("1"), &mut now).await;
    converge(&mut reconciler, &shop("2"), &mut now).await;

    let revisions = platform.revisions("shop-api");
    assert_eq!(revisions.len(), 2, "exactly one new revision");
    let new = revisions
        .iter()
        .find(|r| r.definition.container.image == "api:2")
        .expect("the new image is registered");
    let state = platform.with_state(|s| s.clone());
    let green = &state.services["api-green"];
    assert_eq!(
        green.task_definition_arn,
        format!("memory:task-definition/shop-api:{}", new.revision)
    );
    assert_eq!(state.rules["api"].weights["tg-api-green"], 100);
    assert_eq!(
        state.services["api-blue"].desired_count, 0,
        "the old slot is scaled down"
    );
    assert_eq!(
        platform.revisions("shop-worker").len(),
        1,
        "worker untouched"
    );
    let status = reconciler.status().expect("status");
    assert_eq!(
        status.workloads["api"].stable.as_ref().and_then(|r| r.slot),
        Some(Slot::Green)
    );
}

#[tokio::test]
async fn a_crash_between_calls_then_a_restart_leaves_no_duplicate_revisions() {
    let platform = Arc::new(MemoryPlatform::new());
    let mut now = Timestamp::from_secs(1_000);
    converge(
        &mut Reconciler::new(platform.clone(), None),
        &shop("1"),
        &mut now,
    )
    .await;

    // Each restart starts with no memory but what it can observe and the status, and
    // dies again after one more call took effect.
    let doc = shop("2");
    let mut crashes = 0;
    for _ in 0..6 {
        let mut doomed = Reconciler::new(CrashAfter::new(platform.clone(), 1), None);
        let report = doomed.pass(&doc, now).await.expect("pass");
        crashes += report.execution.failures.len();
        now = now.plus(Duration::from_secs(1));
    }
    assert!(crashes > 0, "crashes were injected");
    let mut restarted = Reconciler::new(platform.clone(), None);
    converge(&mut restarted, &doc, &mut now).await;
    assert_eq!(
        platform.revisions("shop-api").len(),
        2,
        "revisions 1 and 2, nothing more"
    );
    let revisions = platform.revisions("shop-api");
    let mut hashes: Vec<_> = revisions.iter().map(|r| r.content_hash.clone()).collect();
    let registered = hashes.len();
    hashes.sort();
    hashes.dedup();
    assert_eq!(hashes.len(), registered, "no content hash registered twice");
    let state = platform.with_state(|s| s.clone());
    assert_eq!(state.rules["api"].weights.values().sum::<u32>(), 100);
}

#[tokio::test]
async fn one_workload_failing_leaves_the_others_converged_and_names_the_problem() {
    let platform = Arc::new(MemoryPlatform::new());
    platform.with_state(|s| {
        s.apply_faults
            .insert("api".into(), "ListenerNotFound: listener is gone".into());
    });
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000);
    let doc = shop("1");
    let mut last = None;
    for _ in 0..5 {
        last = Some(reconciler.pass(&doc, now).await.expect("pass"));
        now = now.plus(Duration::from_secs(1));
    }
    let last = last.expect("passes ran");
    assert!(platform.with_state(|s| s.services.contains_key("worker")));
    assert_eq!(last.status.workloads["worker"].phase, Phase::Healthy);
    let api = &last.status.workloads["api"];
    let condition = api
        .condition(reason::PLATFORM_ERROR)
        .expect("condition set");
    assert!(condition.status);
    assert!(
        condition.message.contains("listener is gone"),
        "{}",
        condition.message
    );
    assert_eq!(
        api.events
            .iter()
            .filter(|e| e.reason == reason::PLATFORM_ERROR)
            .count(),
        1,
        "a persisting failure is one event, not one per pass"
    );

    platform.with_state(|s| s.apply_faults.clear());
    converge(&mut reconciler, &doc, &mut now).await;
    let api = &reconciler.status().expect("status").workloads["api"];
    assert!(!api.condition(reason::PLATFORM_ERROR).expect("kept").status);
}

#[tokio::test]
async fn a_workload_that_cannot_be_observed_is_not_acted_on() {
    let platform = Arc::new(MemoryPlatform::new());
    platform.with_state(|s| {
        s.observe_faults
            .insert("api".into(), "DescribeServices timed out".into());
    });
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let report = reconciler
        .pass(&shop("1"), Timestamp::from_secs(1_000))
        .await
        .expect("pass");
    assert!(
        report
            .execution
            .applied
            .iter()
            .all(|(a, _)| a.action.workload() == "worker")
    );
    assert_eq!(report.unobserved.len(), 1);
    assert!(report.status.workloads["api"].message.contains("timed out"));
}

#[tokio::test]
async fn the_loop_finishes_its_pass_then_stops_on_shutdown() {
    let platform = Arc::new(MemoryPlatform::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let (_tx, rx) = tokio::sync::watch::channel(shop("1").into());
    tugboat::reconcile::run(
        &mut reconciler,
        rx,
        Default::default(),
        std::future::ready(()),
    )
    .await;
    assert!(
        reconciler.status().is_some(),
        "one pass ran before stopping"
    );
    assert!(platform.with_state(|s| s.services.contains_key("worker")));
}

#[tokio::test]
async fn status_is_persisted_to_a_file_only_when_it_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("status.json");
    let mut infra = Infra::fake();
    infra.status_uri = Some(format!("file://{}", path.display()));
    let doc = desired(app(&infra, &[Spec::rolling("worker", "worker:1")]), "r1");
    let platform = Arc::new(MemoryPlatform::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000);
    let reports = converge(&mut reconciler, &doc, &mut now).await;
    assert!(reports[0].status_written);
    let again = reconciler.pass(&doc, now).await.expect("pass");
    assert!(
        !again.status_written,
        "an unchanged status is not rewritten"
    );
    let text = std::fs::read_to_string(&path).expect("status file");
    let persisted: tugboat::status::AppStatus = serde_json::from_str(&text).expect("status JSON");
    assert_eq!(persisted.document_revision.as_deref(), Some("r1"));

    // A restarted controller starts from the persisted status.
    let mut restarted = Reconciler::new(platform, None);
    let report = restarted.pass(&doc, now).await.expect("pass");
    assert!(
        !report.status_written,
        "nothing changed since the last controller wrote it"
    );
}
