//! AWS answering late, against moto's server behind a delaying proxy
//! (`common::proxy`): a call without a client token whose answer arrives after the
//! attempt timeout is never repeated blindly, so a slow RegisterTaskDefinition leaves
//! exactly one revision, in one pass and across a crash and restart.

mod common;

use std::sync::Arc;
use std::time::Duration;

use aws_config::{BehaviorVersion, Region};
use common::moto;
use common::proxy::{Calls, Fault, FaultRule, Proxy};
use common::{Spec, app, desired};
use tugboat::budget::Budgets;
use tugboat::document::Application;
use tugboat::plan::Action;
use tugboat::platform::aws::{AwsClients, AwsPlatform};
use tugboat::platform::{ActionOutcome, CrashAfter, Platform};
use tugboat::reconcile::Reconciler;
use tugboat::status::Timestamp;

/// The platform's attempt timeout in these tests: short, so a late answer costs about a
/// second rather than the production ten.
const ATTEMPT: Duration = Duration::from_millis(800);
/// How late the proxy delivers the first RegisterTaskDefinition answer: past `ATTEMPT`.
const LATE: Duration = Duration::from_millis(2_500);
const REGISTER: &str = "AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition";

/// tugboat's own retry and timeout settings (the attempt timeout shortened), pointed
/// at the proxy.
async fn platform_config(proxy: &Proxy) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new(moto::REGION))
        .endpoint_url(proxy.url())
        .retry_config(tugboat::aws::retry_config())
        .timeout_config(tugboat::aws::timeout_config(ATTEMPT));
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ));
    }
    loader.load().await
}

async fn platform_through(proxy: &Proxy) -> AwsPlatform {
    AwsPlatform::new(
        AwsClients::from_sdk_config(&platform_config(proxy).await),
        Arc::new(Budgets::new()),
    )
}

/// A proxy in front of moto whose first RegisterTaskDefinition answer comes late.
async fn slow_register_proxy() -> Proxy {
    let proxy = Proxy::start(&moto::endpoint()).await;
    proxy.add(FaultRule::new(
        REGISTER,
        Calls::First(1),
        Fault::DelayAnswer(LATE),
    ));
    proxy
}

fn family(app: &Application) -> String {
    tugboat::taskdef::family(app, app.workload("api").expect("workload api"))
}

#[tokio::test]
async fn a_register_answered_after_the_attempt_timeout_leaves_one_revision() {
    let world = moto::world(&[], 0).await;
    let proxy = slow_register_proxy().await;
    let platform = platform_through(&proxy).await;
    let app = app(&world.infra, &[Spec::rolling("api", "api:1")]);
    let definition = tugboat::taskdef::render(&app, app.workload("api").expect("api"), None);
    let action = Action::RegisterTaskDefinition {
        workload: "api".into(),
        content_hash: definition.content_hash(),
        definition: definition.clone(),
    };

    let outcome = platform
        .apply(&app, &action, None)
        .await
        .expect("the revision registered by the late attempt is found");

    let revisions = moto::revisions(&definition.family).await;
    assert_eq!(
        revisions.len(),
        1,
        "one revision, not one per attempt: {revisions:?} (the proxy saw {} registers)",
        proxy.seen(REGISTER)
    );
    assert_eq!(
        outcome,
        ActionOutcome::TaskDefinition {
            arn: revisions[0].clone(),
            reused: true
        },
        "the late attempt's revision is the one used"
    );
    assert_eq!(
        proxy.seen(REGISTER),
        1,
        "the lookup before the retry found the revision, so nothing was sent again"
    );
}

#[tokio::test]
async fn a_pass_that_crashes_after_a_late_register_and_a_restart_leave_one_revision() {
    let world = moto::world(&[], 0).await;
    let proxy = slow_register_proxy().await;
    let app = app(&world.infra, &[Spec::rolling("api", "api:1")]);
    let doc = desired(app.clone(), "1");
    let now = Timestamp::from_secs(1_000);

    // The controller's slow register goes through, then it dies before it acts on the
    // answer.
    let mut crashing = Reconciler::new(CrashAfter::new(platform_through(&proxy).await, 0), None);
    let _ = crashing.pass(&doc, now).await;
    assert!(proxy.seen(REGISTER) >= 1, "the first pass registered");

    // The restarted controller starts cold and converges.
    let mut restarted = Reconciler::new(platform_through(&proxy).await, None);
    for _ in 0..3 {
        restarted.pass(&doc, now).await.expect("pass");
        moto::settle(&world).await;
    }

    let revisions = moto::revisions(&family(&app)).await;
    assert_eq!(
        revisions.len(),
        1,
        "a crash after a late register and a restart still make one revision: {revisions:?}"
    );
    assert_eq!(
        moto::service(&world, "api").await.map(|s| s.1),
        Some(revisions[0].clone()),
        "the service runs the one revision"
    );
}

#[tokio::test]
async fn a_create_rule_answered_late_is_not_repeated_and_the_next_pass_finds_the_rule() {
    let world = moto::world(&["api"], 0).await;
    let (blue, green) = world.tg("api");
    let proxy = Proxy::start(&moto::endpoint()).await;
    proxy.add(FaultRule::new(
        "CreateRule",
        Calls::First(1),
        Fault::DelayAnswer(LATE),
    ));
    let platform = platform_through(&proxy).await;
    let app = app(
        &world.infra,
        &[Spec::canary("api", "api:1", &blue, &green, 10)],
    );
    let set_weights = Action::SetWeights {
        workload: "api".into(),
        path_patterns: vec!["/api/*".into()],
        priority: 10,
        blue_target_group: blue.clone(),
        green_target_group: green.clone(),
        blue: 100,
        green: 0,
    };

    let err = platform
        .apply(&app, &set_weights, None)
        .await
        .expect_err("the answer came after the attempt timeout");
    assert!(
        err.is_transient(),
        "a lost answer is worth another pass, not a rejection: {err}"
    );
    assert_eq!(
        proxy.seen("CreateRule"),
        1,
        "CreateRule has no client token and is not sent again"
    );

    // The next pass observes the rule the lost attempt created and finds it in place.
    let observation = platform.observe(&app).await.expect("observe");
    let rule = observation.state.workloads["api"]
        .rule
        .clone()
        .expect("the rule created by the lost attempt is found by its tags");
    assert!(rule.owned);
    assert_eq!(
        platform
            .apply(&app, &set_weights, None)
            .await
            .expect("set weights"),
        ActionOutcome::AlreadyInPlace
    );
    assert_eq!(proxy.seen("CreateRule"), 1);
}

#[tokio::test]
async fn the_proxy_answers_chosen_calls_with_an_error_and_passes_the_rest() {
    moto::world(&[], 0).await;
    let proxy = Proxy::start(&moto::endpoint()).await;
    proxy.add(FaultRule::new(
        "ListTaskDefinitions",
        Calls::All,
        Fault::Respond {
            status: 400,
            content_type: "application/x-amz-json-1.1".into(),
            body: r#"{"__type": "ThrottlingException", "message": "Rate exceeded"}"#.into(),
        },
    ));
    let ecs = aws_sdk_ecs::Client::from_conf(
        aws_sdk_ecs::config::Builder::from(&platform_config(&proxy).await)
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .build(),
    );

    let err = ecs
        .list_task_definitions()
        .send()
        .await
        .expect_err("the proxy throttles it");
    assert_eq!(
        tugboat::aws::classify(&err),
        tugboat::aws::ErrorKind::Throttling,
        "{}",
        tugboat::aws::describe(&err)
    );
    assert_eq!(
        proxy.forwarded("ListTaskDefinitions"),
        0,
        "never reached moto"
    );

    ecs.list_clusters().send().await.expect("other calls pass");
    assert_eq!(proxy.seen("ListClusters"), 1);
    assert_eq!(proxy.forwarded("ListClusters"), 1);

    proxy.clear();
    ecs.list_task_definitions()
        .send()
        .await
        .expect("passes once the fault is cleared");
}
