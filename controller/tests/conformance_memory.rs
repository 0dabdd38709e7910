//! The conformance suite on the in-memory platform, and what only a fake can show
//! easily: one workload's failure not stopping the others, unobservable workloads left
//! alone, the loop's backoff and shutdown, status persisted to a file, previews.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::conformance::{self, Harness};
use common::{Infra, Spec, app, desired};
use tugboat::platform::Platform;
use tugboat::platform::memory::MemoryPlatform as Fake;
use tugboat::runtime::{DesiredDocument, PassReport, Reconciler};
use tugboat::status::{Phase, Timestamp, reason};

/// The in-memory world. Every "restart" shares it, as AWS outlives a controller.
#[derive(Debug)]
struct Memory {
    platform: Arc<Fake>,
    infra: Infra,
}

impl Memory {
    fn new() -> Self {
        Self {
            platform: Arc::new(Fake::new()),
            infra: Infra::fake(),
        }
    }
}

impl Harness for Memory {
    type P = Arc<Fake>;

    async fn platform(&self) -> Arc<Fake> {
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

    async fn settle(&self) {}

    async fn service(&self, name: &str) -> Option<(u32, String)> {
        self.platform.with_state(|s| {
            let service = s.services.get(name)?;
            let definition = s.task_definitions.get(&service.task_definition_arn)?;
            Some((
                service.desired_count,
                definition.definition.container.image.clone(),
            ))
        })
    }

    async fn weights(&self, workload: &str) -> Option<(u32, u32)> {
        let (blue, green) = self.target_groups(workload);
        self.platform.with_state(|s| {
            let rule = s.rules.get(workload)?;
            let weight = |tg: &str| rule.weights.get(tg).copied().unwrap_or(0);
            Some((weight(&blue), weight(&green)))
        })
    }

    async fn revisions(&self, workload: &str) -> Vec<String> {
        self.platform
            .revisions(&format!("{}-{workload}", self.infra.app_name))
            .into_iter()
            .map(|r| r.definition.container.image)
            .collect()
    }

    async fn scale_by_hand(&self, service: &str, count: u32) {
        self.platform.with_state(|s| {
            s.services
                .get_mut(service)
                .expect("service exists")
                .desired_count = count;
        });
    }

    async fn reweight_by_hand(&self, workload: &str, blue: u32, green: u32) {
        let (blue_tg, green_tg) = self.target_groups(workload);
        self.platform.with_state(|s| {
            let rule = s.rules.get_mut(workload).expect("rule exists");
            rule.weights.insert(blue_tg, blue);
            rule.weights.insert(green_tg, green);
        });
    }
}

#[tokio::test]
async fn conformance_first_deployment_then_a_no_op_pass() {
    conformance::first_deployment_then_a_no_op_pass(&Memory::new()).await;
}

#[tokio::test]
async fn conformance_drift_by_hand_is_healed_and_recorded() {
    conformance::drift_by_hand_is_healed_and_recorded(&Memory::new()).await;
}

#[tokio::test]
async fn conformance_a_new_image_registers_one_revision_on_the_idle_slot() {
    conformance::a_new_image_registers_one_revision_on_the_idle_slot(&Memory::new()).await;
}

#[tokio::test]
async fn conformance_crashes_between_calls_leave_no_duplicates() {
    conformance::crashes_between_calls_leave_no_duplicates(&Memory::new()).await;
}

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
async fn one_workload_failing_leaves_the_others_converged_and_names_the_problem() {
    let platform = Arc::new(Fake::new());
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
    let platform = Arc::new(Fake::new());
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
        !report.execution.applied.is_empty(),
        "the observable workload is acted on"
    );
    assert!(
        report
            .execution
            .applied
            .iter()
            .all(|(a, _)| a.action.workload() == "worker"),
        "{:?}",
        report.execution.applied
    );
    assert_eq!(report.unobserved.len(), 1);
    assert!(report.status.workloads["api"].message.contains("timed out"));
}

#[tokio::test]
async fn the_loop_finishes_its_pass_then_stops_on_shutdown() {
    let platform = Arc::new(Fake::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let (_tx, rx) = tokio::sync::watch::channel(shop("1").into());
    tugboat::runtime::run(
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
    let platform = Arc::new(Fake::new());
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

#[tokio::test]
async fn a_preview_plans_and_prices_the_actions_without_changing_anything() {
    let platform = Fake::new();
    let doc = shop("1");
    let preview = tugboat::runtime::reconciler::preview(
        &platform,
        &tugboat::runtime::SideInputs::none(),
        &doc.app,
        None,
        Timestamp::from_secs(1_000),
    )
    .await
    .expect("preview");
    assert!(!preview.plan.actions.is_empty());
    assert_eq!(preview.estimates.len(), preview.plan.actions.len());
    assert!(preview.estimates.iter().all(|e| e.mutate == 1));
    assert_eq!(platform.api_calls().mutate, 0, "nothing was changed");
    assert!(platform.with_state(|s| s.services.is_empty()));
}

#[tokio::test(start_paused = true)]
async fn throttled_passes_back_off_exponentially_and_a_clean_pass_resets_to_the_resync() {
    let platform = Arc::new(Fake::new());
    platform.with_state(|s| s.throttled_observations = 3);
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let doc = desired(
        app(&Infra::fake(), &[Spec::rolling("worker", "worker:1")]),
        "1",
    );
    let (_tx, rx) = tokio::sync::watch::channel(doc.into());
    let config = tugboat::runtime::LoopConfig {
        resync: Duration::from_secs(30),
        backoff_min: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
        on_pass: None,
        inbox_poll: None,
    };
    // Virtual time: the loop runs for 100 s of the paused clock.
    tugboat::runtime::run(
        &mut reconciler,
        rx,
        config,
        tokio::time::sleep(Duration::from_secs(100)),
    )
    .await;

    let at = platform.with_state(|s| s.observed_at.clone());
    let gaps: Vec<Duration> = at.windows(2).map(|w| w[1] - w[0]).collect();
    // Exponential with jitter: each wait is in [d, 2d) for d = 1 s, 2 s, 4 s.
    for (i, base) in [1u64, 2, 4].into_iter().enumerate() {
        let base = Duration::from_secs(base);
        assert!(
            gaps[i] >= base && gaps[i] < base * 2,
            "wait {i} after a throttled pass is {:?}, expected in [{base:?}, {:?})",
            gaps[i],
            base * 2
        );
    }
    // Clean passes after that: never a backoff again; converged passes wait the resync.
    assert!(
        gaps.len() > 4,
        "clean passes followed the backoffs: {gaps:?}"
    );
    assert!(
        gaps[3..].iter().all(|g| *g <= Duration::from_secs(30)),
        "{gaps:?}"
    );
    assert_eq!(
        gaps.last().copied(),
        Some(Duration::from_secs(30)),
        "a converged application is looked at every resync: {gaps:?}"
    );
}

#[tokio::test]
async fn an_unusable_source_and_a_denied_observation_show_in_the_status_until_they_clear() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut infra = Infra::fake();
    infra.status_uri = Some(format!("file://{}/status.json", dir.path().display()));
    let doc = desired(app(&infra, &[Spec::rolling("worker", "worker:1")]), "r1");
    let platform = Arc::new(Fake::new());
    let mut reconciler = Reconciler::new(platform.clone(), None);
    let now = Timestamp::from_secs(1_000);
    let condition = |r: &Reconciler<Arc<Fake>>, kind: &str| {
        r.status()
            .and_then(|s| s.conditions.iter().find(|c| c.kind == kind).cloned())
    };

    reconciler.set_source_problem(Some(
        "s3://b/app.yaml (revision \"e2\") is not a valid tugboat document: \
         spec.workloads[0].cpu: must be one of 256, 512, ..."
            .into(),
    ));
    reconciler.pass(&doc, now).await.expect("pass");
    let invalid = condition(&reconciler, reason::DOCUMENT_INVALID).expect("condition");
    assert!(invalid.status);
    assert!(
        invalid.message.contains("spec.workloads[0].cpu"),
        "{}",
        invalid.message
    );
    assert!(
        platform.with_state(|s| s.services.contains_key("worker")),
        "the last good document stays in force"
    );

    platform.with_state(|s| s.denied_observations = 1);
    let failed = reconciler
        .pass(&doc, now.plus(Duration::from_secs(1)))
        .await;
    assert!(failed.is_err());
    let denied = condition(&reconciler, reason::PLATFORM_ERROR).expect("condition");
    assert!(denied.status);
    assert!(
        denied.message.contains("not authorized"),
        "{}",
        denied.message
    );
    let persisted = std::fs::read_to_string(dir.path().join("status.json")).expect("status file");
    assert!(
        persisted.contains("not authorized"),
        "the problem is persisted: {persisted}"
    );

    reconciler.set_source_problem(None);
    reconciler
        .pass(&doc, now.plus(Duration::from_secs(2)))
        .await
        .expect("pass");
    for kind in [reason::DOCUMENT_INVALID, reason::PLATFORM_ERROR] {
        assert!(
            !condition(&reconciler, kind).expect("kept").status,
            "{kind} cleared"
        );
    }
}

#[tokio::test]
async fn an_override_that_does_not_parse_is_a_condition_on_its_workload_only() {
    use tugboat::inbox::memory::MemoryInbox;
    use tugboat::models::memory::MemoryModels;
    use tugboat::pass::OVERRIDE_INVALID;

    let platform = Arc::new(Fake::new());
    let inbox = Arc::new(MemoryInbox::new());
    inbox.put_raw("worker", "weight", "lots");
    let inputs = tugboat::runtime::SideInputs {
        inbox: inbox.clone(),
        models: Arc::new(MemoryModels::new()),
    };
    let mut reconciler = Reconciler::with_inputs(platform.clone(), inputs, None);
    let now = Timestamp::from_secs(1_000);
    let report = reconciler.pass(&shop("1"), now).await.expect("pass");
    let worker = report.status.workloads["worker"]
        .condition(OVERRIDE_INVALID)
        .expect("the bad value is reported");
    assert!(worker.status);
    assert!(
        worker.message.contains("worker/weight") && worker.message.contains("lots"),
        "names the parameter and the value: {}",
        worker.message
    );
    assert!(
        report.status.workloads["api"]
            .condition(OVERRIDE_INVALID)
            .is_none(),
        "other workloads are not marked"
    );
    assert!(
        report
            .execution
            .applied
            .iter()
            .any(|(a, _)| a.action.workload() == "api"),
        "other workloads carry on: {:?}",
        report.execution.applied
    );

    inbox.put_raw("worker", "weight", "5");
    let fixed = reconciler
        .pass(&shop("1"), now.plus(Duration::from_secs(1)))
        .await
        .expect("pass");
    let worker = fixed.status.workloads["worker"]
        .condition(OVERRIDE_INVALID)
        .expect("kept");
    assert!(!worker.status, "cleared once the value parses");
}

#[tokio::test]
async fn serve_feeds_the_loop_from_the_source_and_reports_each_pass_on_the_endpoint() {
    use tugboat::runtime::feed::first_document;
    use tugboat::runtime::{LoopConfig, ServeConfig};
    use tugboat::source::{DocumentSource, WatchConfig, Watcher};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.yaml");
    // The source validates: no placeholder ARNs, so one rolling workload and no listener.
    let mut infra = Infra::fake();
    infra.listener_arn = None;
    let doc = desired(app(&infra, &[Spec::rolling("worker", "worker:1")]), "1");
    std::fs::write(
        &path,
        serde_json::to_string(&doc.app).expect("JSON is YAML"),
    )
    .expect("write document");
    let source = DocumentSource::open(&format!("file://{}", path.display()), None)
        .await
        .expect("source");
    let mut watcher = Watcher::new(
        source,
        WatchConfig {
            poll: Duration::from_millis(50),
            resync: Duration::from_secs(30),
        },
    );
    let first = first_document(&mut watcher, true)
        .await
        .expect("a document");
    let revision = first.revision.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let passes = Arc::new(tokio::sync::Notify::new());
    let notify = passes.clone();
    let platform = Arc::new(Fake::new());
    let answered = Arc::new(std::sync::Mutex::new(None));
    let seen = answered.clone();
    // Shut down once a pass was reported and the endpoint answered for it.
    let shutdown = async move {
        notify.notified().await;
        let status = reqwest::get(format!("http://{addr}/status"))
            .await
            .expect("the endpoint answers");
        let code = status.status().as_u16();
        let body = status.text().await.expect("body");
        *seen.lock().expect("lock") = Some((code, body));
    };
    tugboat::runtime::serve(
        ServeConfig {
            reconciler: Reconciler::new(platform.clone(), None),
            watcher,
            first,
            http: Some(listener),
            election: None,
            loop_config: LoopConfig {
                on_pass: Some(Arc::new(move |_, _| passes.notify_one())),
                ..LoopConfig::default()
            },
        },
        shutdown,
    )
    .await;
    let (code, body) = answered.lock().expect("lock").take().expect("shutdown ran");
    assert_eq!(code, 200, "{body}");
    let status: tugboat::status::AppStatus = serde_json::from_str(&body).expect("status JSON");
    assert_eq!(status.document_revision, Some(revision), "{body}");
    assert!(platform.with_state(|s| s.services.contains_key("worker")));
}

// ----- The inbox suite on the in-memory and the file inboxes. -----

mod inbox_suite {
    use super::common::inbox::{self, shop};
    use tugboat::inbox::file::FileInbox;
    use tugboat::inbox::memory::MemoryInbox;

    fn file() -> (tempfile::TempDir, FileInbox) {
        let dir = tempfile::tempdir().expect("tempdir");
        let inbox = FileInbox::in_state_dir(dir.path());
        (dir, inbox)
    }

    #[tokio::test]
    async fn memory_inbox_empty() {
        inbox::an_empty_inbox_reads_empty(&MemoryInbox::new(), &shop("shop")).await;
    }

    #[tokio::test]
    async fn memory_inbox_written_values_read_back() {
        inbox::written_values_read_back_as_overrides(&MemoryInbox::new(), &shop("shop")).await;
    }

    #[tokio::test]
    async fn memory_inbox_each_action_write_is_a_new_version() {
        inbox::each_write_of_an_action_is_a_new_higher_version(&MemoryInbox::new(), &shop("shop"))
            .await;
    }

    #[tokio::test]
    async fn memory_inbox_recorded_writes_read_back_with_who_and_why() {
        inbox::a_recorded_write_reads_back_with_who_and_why(
            &MemoryInbox::new(),
            &shop("shop"),
            true,
        )
        .await;
    }

    #[tokio::test]
    async fn memory_inbox_cleared_values_are_gone() {
        inbox::a_cleared_value_is_gone_and_the_others_stay(&MemoryInbox::new(), &shop("shop"))
            .await;
    }

    #[tokio::test]
    async fn file_inbox_recorded_writes_read_back_with_who_and_why() {
        let (_dir, inbox) = file();
        inbox::a_recorded_write_reads_back_with_who_and_why(&inbox, &shop("shop"), true).await;
    }

    #[tokio::test]
    async fn file_inbox_a_value_edited_by_hand_loses_its_record() {
        use tugboat::inbox::{Inbox, Key};
        let (_dir, inbox) = file();
        let app = shop("shop");
        let record = tugboat::observed::OverrideRecord {
            by: Some("alice".into()),
            reason: Some("INC-1".into()),
            at: None,
        };
        inbox
            .write_recorded(&app, "api", Key::Weight, "30", &record)
            .await
            .expect("write");
        let path = inbox.root().join("api/weight");
        let later = std::fs::metadata(&path).unwrap().modified().unwrap()
            + std::time::Duration::from_millis(5);
        std::fs::write(&path, "45").expect("by hand");
        std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(later))
            .expect("mtime");
        let read = inbox.read(&app).await.expect("read");
        let api = &read.by_workload["api"];
        assert_eq!(api.weight_pin.as_ref().map(|p| p.weight), Some(45));
        assert_eq!(
            api.weight_record, None,
            "not alice's value any more: {api:?}"
        );
    }

    #[tokio::test]
    async fn file_inbox_cleared_values_are_gone() {
        let (_dir, inbox) = file();
        inbox::a_cleared_value_is_gone_and_the_others_stay(&inbox, &shop("shop")).await;
    }

    #[tokio::test]
    async fn memory_inbox_bad_values_are_reported() {
        inbox::a_value_that_does_not_parse_is_reported_by_name_and_the_rest_still_read(
            &MemoryInbox::new(),
            &shop("shop"),
        )
        .await;
    }

    #[tokio::test]
    async fn file_inbox_empty() {
        let (_dir, inbox) = file();
        inbox::an_empty_inbox_reads_empty(&inbox, &shop("shop")).await;
    }

    #[tokio::test]
    async fn file_inbox_written_values_read_back() {
        let (_dir, inbox) = file();
        inbox::written_values_read_back_as_overrides(&inbox, &shop("shop")).await;
        let weight = std::fs::read_to_string(inbox.root().join("api/weight")).expect("file");
        assert!(
            weight.contains("INC-42"),
            "the same value as the SSM parameter: {weight}"
        );
    }

    #[tokio::test]
    async fn file_inbox_each_action_write_is_a_new_version() {
        let (_dir, inbox) = file();
        inbox::each_write_of_an_action_is_a_new_higher_version(&inbox, &shop("shop")).await;
    }

    #[tokio::test]
    async fn file_inbox_bad_values_are_reported() {
        let (_dir, inbox) = file();
        inbox::a_value_that_does_not_parse_is_reported_by_name_and_the_rest_still_read(
            &inbox,
            &shop("shop"),
        )
        .await;
    }

    #[tokio::test]
    async fn file_inbox_reads_a_file_written_by_hand_and_skips_temporary_files() {
        let (_dir, inbox) = file();
        let api = inbox.root().join("api");
        std::fs::create_dir_all(&api).expect("dir");
        std::fs::write(api.join("action"), "resume\n").expect("write");
        std::fs::write(api.join(".weight.tmp"), "garbage").expect("write");
        let read = tugboat::inbox::Inbox::read(&inbox, &shop("shop"))
            .await
            .expect("read");
        assert!(read.problems.is_empty(), "{:?}", read.problems);
        let action = read.by_workload["api"].action.as_ref().expect("action");
        assert_eq!(action.kind, tugboat::observed::OperatorActionKind::Resume);
        assert!(action.version > 0, "the version is the file's mtime");
    }
}

#[tokio::test]
async fn local_models_resolve_through_pointer_files_and_file_stores() {
    use tugboat::models::ModelResolver;
    use tugboat::models::store::StoreResolver;
    use tugboat::observed::ModelResolution;

    let dir = tempfile::tempdir().expect("tempdir");
    let store = dir.path().join("store/churn");
    std::fs::create_dir_all(store.join("v2")).expect("dir");
    let sha = "ab".repeat(32);
    std::fs::write(
        store.join("v2/metadata.json"),
        format!(r#"{{"sha256": "sha256:{sha}"}}"#),
    )
    .expect("metadata");
    // The artifact itself (the resolver checks that it exists).
    std::fs::write(store.join("v2/model.onnx"), b"onnx").expect("artifact");
    std::fs::create_dir_all(dir.path().join("state/models/ml")).expect("dir");
    std::fs::write(dir.path().join("state/models/ml/churn-version"), "v2\n").expect("pointer");

    let mut app = shop("1").app;
    app.spec.models = serde_json::from_value(serde_json::json!([
        {"name": "churn", "storeUri": format!("file://{}", store.display()),
         "versionParameter": "/ml/churn-version"},
        {"name": "lost", "storeUri": format!("file://{}", store.display()),
         "versionParameter": "/ml/missing"},
    ]))
    .expect("models");
    let resolver = StoreResolver::local(dir.path().join("state"));
    let models = resolver.resolve(&app).await.expect("resolve");
    match &models["churn"] {
        ModelResolution::Resolved(m) => {
            assert_eq!(
                (m.version.as_str(), m.sha256.as_str()),
                ("v2", sha.as_str())
            );
        }
        other => panic!("churn should resolve: {other:?}"),
    }
    match &models["lost"] {
        ModelResolution::Failed(why) => assert!(why.contains("/ml/missing"), "{why}"),
        other => panic!("a missing pointer must not resolve: {other:?}"),
    }
    assert!(
        resolver.api_calls().total() >= 3,
        "{}",
        resolver.api_calls()
    );
}

#[tokio::test]
async fn conformance_a_header_route_reaches_the_canary_alone_and_goes_at_abort() {
    conformance::a_header_route_reaches_the_canary_alone_and_goes_at_abort(&Memory::new()).await;
}
