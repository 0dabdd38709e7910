//! What is particular to the AWS platform, against moto's server through the real SDK
//! (the shared scenarios are in `conformance_aws.rs`): what a no-op pass costs, a rule
//! or target group failing for one workload while the others converge, status in S3.
//! Needs `AWS_ENDPOINT_URL` (set by `.ci/test`).

mod common;

use std::time::Duration;

use common::moto::{self, World};
use common::{Spec, app, desired};
use tugboat::platform::Platform;
use tugboat::runtime::{DesiredDocument, PassReport, Reconciler};
use tugboat::status::{Phase, Timestamp, reason};

fn doc(world: &World, api_tag: &str) -> DesiredDocument {
    let (blue, green) = world.tg("api");
    let app = app(
        &world.infra,
        &[
            Spec::canary("api", &format!("api:{api_tag}"), &blue, &green, 10),
            Spec::rolling("worker", "worker:1"),
        ],
    );
    desired(app, api_tag)
}

/// Passes one simulated second apart, with ECS "settling" between them, until a pass
/// plans nothing and sets no timer.
async fn converge<P: Platform>(
    reconciler: &mut Reconciler<P>,
    world: &World,
    doc: &DesiredDocument,
    now: &mut Timestamp,
) -> Vec<PassReport> {
    let mut reports = Vec::new();
    for _ in 0..20 {
        let report = reconciler.pass(doc, *now).await.expect("pass succeeds");
        moto::settle(world).await;
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

fn family(world: &World, workload: &str) -> String {
    format!("{}-{workload}", world.infra.app_name)
}

#[tokio::test]
async fn a_no_op_pass_costs_three_describes_and_nothing_else() {
    let world = moto::world(&["api"], 2).await;
    let mut reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    let doc = doc(&world, "1");
    converge(&mut reconciler, &world, &doc, &mut now).await;

    assert_eq!(moto::revisions(&family(&world, "api")).await.len(), 1);
    assert_eq!(moto::revisions(&family(&world, "worker")).await.len(), 1);
    let (count, _) = moto::service(&world, "api-blue")
        .await
        .expect("api-blue exists");
    assert_eq!(count, 2);
    let (count, _) = moto::service(&world, "worker")
        .await
        .expect("worker exists");
    assert_eq!(count, 1);
    let (blue, green) = world.tg("api");
    let (_, weights) = moto::rule_weights(&world, 10).await.expect("rule exists");
    assert_eq!(weights[&blue], 100);
    assert_eq!(weights.get(&green).copied().unwrap_or(0), 0);
    let status = reconciler.status().expect("status");
    assert_eq!(status.workloads["api"].phase, Phase::Healthy);
    assert_eq!(status.workloads["worker"].phase, Phase::Healthy);

    let noop = reconciler.pass(&doc, now).await.expect("pass");
    assert_eq!(
        noop.calls.mutate, 0,
        "no-op pass made mutating calls: {}",
        noop.calls
    );
    assert_eq!(noop.planned, 0);
    // 3 services in one DescribeServices, one DescribeRules, one GetParametersByPath;
    // target health and task definitions come from the cache at rest.
    assert_eq!(noop.calls.describe, 3, "{}", noop.calls);
}

#[tokio::test]
async fn a_rule_that_is_not_ours_blocks_its_workload_only_and_the_status_says_why() {
    let world = moto::world(&["api", "web"], 2).await;
    // Someone else's rule sits at the priority `web` wants.
    let (web_blue, web_green) = world.tg("web");
    let operator = moto::clients().await;
    operator
        .elb
        .create_rule()
        .listener_arn(world.infra.listener_arn.as_deref().expect("listener"))
        .priority(20)
        .conditions(
            aws_sdk_elasticloadbalancingv2::types::RuleCondition::builder()
                .field("path-pattern")
                .values("/legacy/*")
                .build(),
        )
        .actions(
            aws_sdk_elasticloadbalancingv2::types::Action::builder()
                .r#type(aws_sdk_elasticloadbalancingv2::types::ActionTypeEnum::Forward)
                .target_group_arn(&web_blue)
                .build(),
        )
        .send()
        .await
        .expect("a foreign rule");
    let (api_blue, api_green) = world.tg("api");
    let doc = desired(
        app(
            &world.infra,
            &[
                Spec::canary("api", "api:1", &api_blue, &api_green, 10),
                Spec::canary("web", "web:1", &web_blue, &web_green, 20),
                Spec::rolling("worker", "worker:1"),
            ],
        ),
        "1",
    );
    let mut reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    let mut last = None;
    for _ in 0..6 {
        last = Some(reconciler.pass(&doc, now).await.expect("pass"));
        moto::settle(&world).await;
        now = now.plus(Duration::from_secs(1));
    }
    let status = last.expect("passes ran").status;
    assert_eq!(status.workloads["api"].phase, Phase::Healthy);
    assert_eq!(status.workloads["worker"].phase, Phase::Healthy);
    let web = &status.workloads["web"];
    assert_eq!(web.phase, Phase::Blocked, "{web:#?}");
    assert!(
        web.message.contains("not created by tugboat"),
        "{}",
        web.message
    );
    let (_, weights) = moto::rule_weights(&world, 20).await.expect("foreign rule");
    assert_eq!(
        weights.len(),
        0,
        "the foreign rule is untouched (plain forward)"
    );
}

#[tokio::test]
async fn a_missing_target_group_fails_its_workload_only_and_names_the_problem() {
    let world = moto::world(&["api"], 2).await;
    let (api_blue, api_green) = world.tg("api");
    let gone = api_blue.replace("targetgroup/", "targetgroup/gone");
    let doc = desired(
        app(
            &world.infra,
            &[
                Spec::canary("api", "api:1", &api_blue, &api_green, 10),
                Spec::canary("web", "web:1", &gone, &api_green, 20),
                Spec::rolling("worker", "worker:1"),
            ],
        ),
        "1",
    );
    let mut reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    let mut last = None;
    for _ in 0..6 {
        last = Some(reconciler.pass(&doc, now).await.expect("pass"));
        moto::settle(&world).await;
        now = now.plus(Duration::from_secs(1));
    }
    let status = last.expect("passes ran").status;
    assert_eq!(status.workloads["api"].phase, Phase::Healthy);
    assert_eq!(status.workloads["worker"].phase, Phase::Healthy);
    let web = &status.workloads["web"];
    let condition = web
        .condition(reason::PLATFORM_ERROR)
        .unwrap_or_else(|| panic!("web has a PlatformError condition: {web:#?}"));
    assert!(condition.status);
    assert!(condition.message.contains("gone"), "{}", condition.message);
}

#[tokio::test]
async fn status_goes_to_s3_with_conditional_writes() {
    let world = moto::world(&[], 0).await;
    let clients = moto::clients().await;
    let bucket = moto::unique("status");
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("create bucket");
    let mut infra = world.infra.clone();
    infra.status_uri = Some(format!("s3://{bucket}/shop/status.json"));
    let doc = desired(app(&infra, &[Spec::rolling("worker", "worker:1")]), "r1");
    let mut reconciler = Reconciler::with_inputs(
        moto::platform().await,
        moto::inputs().await,
        Some(clients.s3.clone()),
    );
    let first = reconciler
        .pass(&doc, Timestamp::from_secs(1_000))
        .await
        .expect("pass");
    assert!(first.status_written, "{:?}", first.status_error);

    // Another writer changes the object: our next write must not clobber it.
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key("shop/status.json")
        .body(b"{\"workloads\":{}}".to_vec().into())
        .send()
        .await
        .expect("another writer");
    moto::settle(&world).await;
    let second = reconciler
        .pass(&doc, Timestamp::from_secs(1_001))
        .await
        .expect("pass");
    assert!(!second.status_written);
    assert!(
        second
            .status_error
            .as_deref()
            .is_some_and(|e| e.contains("another writer")),
        "{:?}",
        second.status_error
    );
    // The next pass re-reads and writes on top of the other writer's version.
    let third = reconciler
        .pass(&doc, Timestamp::from_secs(1_002))
        .await
        .expect("pass");
    assert!(third.status_written, "{:?}", third.status_error);
}

#[tokio::test]
async fn tugboats_rule_is_found_by_its_tags_when_the_document_moves_it() {
    let world = moto::world(&["api"], 2).await;
    let (blue, green) = world.tg("api");
    let at = |priority: u32, image: &str| {
        desired(
            app(
                &world.infra,
                &[Spec::canary("api", image, &blue, &green, priority)],
            ),
            image,
        )
    };
    let mut reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    converge(&mut reconciler, &world, &at(10, "api:1"), &mut now).await;
    let (arn, _) = moto::rule_weights(&world, 10).await.expect("rule at 10");

    // A restarted controller (cold caches) with the route moved and a new image.
    let mut restarted = Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    converge(&mut restarted, &world, &at(15, "api:2"), &mut now).await;

    assert!(
        moto::rule_weights(&world, 10).await.is_none(),
        "moved away from 10"
    );
    let (moved, weights) = moto::rule_weights(&world, 15).await.expect("rule at 15");
    assert_eq!(moved, arn, "the same rule, not a second one");
    assert_eq!((weights[&blue], weights[&green]), (0, 100));
}

#[tokio::test]
async fn what_tugboat_creates_is_tagged_fargate_awsvpc_and_behind_the_slot_target_group() {
    use aws_sdk_ecs::types::{ServiceField, TaskDefinitionField};
    let world = moto::world(&["api"], 2).await;
    let mut reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    converge(&mut reconciler, &world, &doc(&world, "1"), &mut now).await;
    let owner = format!("{}/test", world.infra.app_name);
    let ecs = moto::clients().await.ecs;

    let services = ecs
        .describe_services()
        .cluster(&world.infra.cluster)
        .services("api-blue")
        .services("worker")
        .include(ServiceField::Tags)
        .send()
        .await
        .expect("describe services");
    assert_eq!(
        services.services().len(),
        2,
        "both services are described: {services:?}"
    );
    for service in services.services() {
        let name = service.service_name().unwrap_or_default();
        let tags: Vec<(&str, &str)> = service
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?, t.value()?)))
            .collect();
        assert!(
            tags.contains(&("tugboat:managed-by", owner.as_str())),
            "{name}: {tags:?}"
        );
        assert!(
            tags.iter().any(|(k, _)| *k == "tugboat:workload"),
            "{name}: {tags:?}"
        );
        assert_eq!(
            service.launch_type().map(|l| l.as_str()),
            Some("FARGATE"),
            "{name}"
        );
        let subnets = service
            .network_configuration()
            .and_then(|n| n.awsvpc_configuration())
            .map(|a| a.subnets().to_vec());
        assert_eq!(subnets, Some(world.infra.subnets.clone()), "{name}");
    }
    let api = services
        .services()
        .iter()
        .find(|s| s.service_name() == Some("api-blue"))
        .expect("api-blue");
    assert_eq!(
        api.load_balancers()
            .first()
            .and_then(|l| l.target_group_arn()),
        Some(world.tg("api").0.as_str()),
        "the blue slot sits behind the blue target group"
    );

    let definition = ecs
        .describe_task_definition()
        .task_definition(api.task_definition().expect("definition"))
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .expect("describe task definition");
    let tags: Vec<&str> = definition.tags().iter().filter_map(|t| t.key()).collect();
    for key in [
        "tugboat:content-hash",
        "tugboat:managed-by",
        "tugboat:workload",
    ] {
        assert!(tags.contains(&key), "{key} in {tags:?}");
    }
    let td = definition.task_definition().expect("task definition");
    assert_eq!(td.network_mode().map(|m| m.as_str()), Some("awsvpc"));
    assert_eq!(td.cpu(), Some("256"));
}
