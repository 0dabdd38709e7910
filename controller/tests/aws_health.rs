//! What the AWS platform reuses from earlier passes, against moto's server: nothing
//! while weights are split (target health and idle slots are read every pass, so weight
//! never moves on a stale reading), and health and the idle slot at rest (so a no-op
//! pass stays cheap).

mod common;

use aws_sdk_elasticloadbalancingv2::types as elb;
use common::moto::{self, World};
use common::{Spec, app};
use tugboat::document::{Application, Slot};
use tugboat::plan::Action;
use tugboat::platform::aws::AwsPlatform;
use tugboat::platform::{ActionOutcome, Platform, service_name};

/// A canary workload `api` built through the platform itself: one revision, a blue and
/// a green service with these task counts, and the rule at these weights.
async fn canary(
    world: &World,
    counts: (u32, u32),
    weights: (u32, u32),
) -> (Application, AwsPlatform) {
    let (blue, green) = world.tg("api");
    let app = app(
        &world.infra,
        &[Spec::canary("api", "api:1", &blue, &green, 10)],
    );
    let platform = moto::platform().await;
    let definition = tugboat::taskdef::render(&app, app.workload("api").expect("api"), None);
    let content_hash = definition.content_hash();
    let registered = platform
        .apply(
            &app,
            &Action::RegisterTaskDefinition {
                workload: "api".into(),
                content_hash: content_hash.clone(),
                definition,
            },
            None,
        )
        .await
        .expect("register");
    let ActionOutcome::TaskDefinition { arn, .. } = registered else {
        panic!("register answered {registered:?}");
    };
    for (slot, count, tg) in [
        (Slot::Blue, counts.0, &blue),
        (Slot::Green, counts.1, &green),
    ] {
        let create = Action::CreateService {
            workload: "api".into(),
            service: service_name("api", Some(slot)),
            slot: Some(slot),
            content_hash: content_hash.clone(),
            desired_count: count,
            target_group: Some(tg.clone()),
            container_name: "api".into(),
            container_port: 8000,
        };
        platform
            .apply(&app, &create, Some(&arn))
            .await
            .expect("create service");
    }
    let set_weights = Action::SetWeights {
        workload: "api".into(),
        path_patterns: vec!["/api/*".into()],
        priority: 10,
        blue_target_group: blue.clone(),
        green_target_group: green.clone(),
        blue: weights.0,
        green: weights.1,
    };
    platform
        .apply(&app, &set_weights, None)
        .await
        .expect("create rule");
    moto::settle(world).await;
    (app, platform)
}

/// What one observation says about a slot: (desired tasks, healthy targets).
async fn slot(platform: &AwsPlatform, app: &Application, slot: Slot) -> (u32, u32) {
    let observation = platform.observe(app).await.expect("observe");
    assert!(
        observation.workload_errors.is_empty(),
        "{:?}",
        observation.workload_errors
    );
    let service = &observation.state.workloads["api"].slots[&slot];
    (service.desired_count, service.healthy_targets)
}

/// Takes every target out of `tg`, as a failing health check or an operator would.
async fn deregister_all(tg: &str) {
    let elb = moto::clients().await.elb;
    let targets: Vec<elb::TargetDescription> = elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .expect("describe target health")
        .target_health_descriptions()
        .iter()
        .filter_map(|d| d.target().cloned())
        .collect();
    assert!(!targets.is_empty(), "the world registered targets in {tg}");
    elb.deregister_targets()
        .target_group_arn(tg)
        .set_targets(Some(targets))
        .send()
        .await
        .expect("deregister targets");
}

#[tokio::test]
async fn a_canary_whose_targets_went_unhealthy_is_seen_at_once_while_weights_are_split() {
    let world = moto::world(&["api"], 2).await;
    let (app, platform) = canary(&world, (2, 2), (50, 50)).await;
    assert_eq!(
        slot(&platform, &app, Slot::Green).await,
        (2, 2),
        "the canary starts healthy"
    );

    deregister_all(&world.tg("api").1).await;

    // Well within the 30 s reuse window: a split rule means nothing is reused.
    assert_eq!(
        slot(&platform, &app, Slot::Green).await,
        (2, 0),
        "the canary's health is read again while weight is split"
    );
}

#[tokio::test]
async fn an_idle_slot_is_described_again_while_weights_are_split() {
    let world = moto::world(&["api"], 2).await;
    let (app, platform) = canary(&world, (2, 0), (80, 20)).await;
    assert_eq!(slot(&platform, &app, Slot::Green).await.0, 0);

    moto::clients()
        .await
        .ecs
        .update_service()
        .cluster(&world.infra.cluster)
        .service("api-green")
        .desired_count(2)
        .send()
        .await
        .expect("scale the green slot by hand");
    moto::settle(&world).await;

    assert_eq!(
        slot(&platform, &app, Slot::Green).await,
        (2, 2),
        "an idle slot is described again while weight is split"
    );
}

#[tokio::test]
async fn at_rest_a_second_observation_reuses_the_health_it_just_read() {
    let world = moto::world(&["api"], 2).await;
    let (app, platform) = canary(&world, (2, 0), (100, 0)).await;
    let before = platform.api_calls();
    assert_eq!(slot(&platform, &app, Slot::Blue).await, (2, 2));
    let first = platform.api_calls().since(&before);
    assert_eq!(
        first.get("elbv2:DescribeTargetHealth"),
        1,
        "the first observation reads the weighted slot's health: {first}"
    );

    let before = platform.api_calls();
    assert_eq!(slot(&platform, &app, Slot::Blue).await, (2, 2));
    let second = platform.api_calls().since(&before);
    assert_eq!(
        second.get("elbv2:DescribeTargetHealth"),
        0,
        "at rest the health read a moment ago is reused: {second}"
    );
    assert_eq!(
        second.get("ecs:DescribeServices"),
        1,
        "one batch of services: {second}"
    );
    assert_eq!(second.get("elbv2:DescribeRules"), 1, "{second}");
}
