//! A task with sidecars, volumes and task settings, registered through the AWS platform
//! against moto's server and read back with DescribeTaskDefinition; then a service on
//! its main container (named apart from the workload) behind the blue target group, with
//! its service settings (capacity providers, platform version, exec, grace period,
//! circuit breaker).

mod common;

use common::moto;
use common::{Spec, app};
use tugboat::document::Application;
use tugboat::plan::Action;
use tugboat::platform::{ActionOutcome, Platform, service_name};

/// A routed workload `web` whose main container is `web-app`, with a FireLens router
/// and an agent sidecar, an EFS and a bind volume, ARM64 and its own roles.
fn rich(world: &moto::World) -> Application {
    let (blue, green) = world.tg("web");
    let base = app(
        &world.infra,
        &[Spec::canary("web", "web:1", &blue, &green, 10)],
    );
    let mut doc = serde_json::to_value(&base).expect("serializes");
    let w = &mut doc["spec"]["workloads"][0];
    let extra = serde_json::json!({
        "cpu": 1024, "memory": 2048, "containerPort": 8080,
        "containerName": "web-app",
        "secrets": {"DB_PASSWORD": "/shop/prod/db-password"},
        "logConfiguration": {"logDriver": "awsfirelens", "options": {"Name": "cloudwatch_logs"}},
        "container": {
            "cpu": 768, "memory": 1536, "memoryReservation": 1024,
            "command": ["serve"], "entryPoint": ["/usr/bin/tini", "--"],
            "workingDirectory": "/srv", "user": "1000", "readonlyRootFilesystem": true,
            "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
            "linuxParameters": {"initProcessEnabled": true}, "stopTimeout": 60,
            "portMappings": [
                {"containerPort": 8080, "protocol": "tcp", "name": "http", "appProtocol": "http"},
                {"containerPort": 9090, "name": "admin"}
            ],
            "dependsOn": [{"containerName": "log-router", "condition": "START"}],
            "mountPoints": [{"sourceVolume": "media", "containerPath": "/srv/media", "readOnly": true}]
        },
        "sidecars": [
            {"name": "log-router", "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
             "essential": false, "memoryReservation": 50,
             "firelensConfiguration": {"type": "fluentbit"}},
            {"name": "agent", "image": "datadog/agent:7", "cpu": 128, "memory": 256,
             "portMappings": [{"containerPort": 8126}]}
        ],
        "volumes": [
            {"name": "scratch"},
            {"name": "media", "efsVolumeConfiguration": {
                "fileSystemId": "fs-0123456789abcdef0", "transitEncryption": "ENABLED",
                "authorizationConfig": {"accessPointId": "fsap-0123456789abcdef0", "iam": "ENABLED"}}}
        ],
        "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        "ephemeralStorage": {"sizeInGiB": 50},
        "taskRoleArn": "arn:aws:iam::123456789012:role/web-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/web-exec",
        "service": {
            "platformVersion": "1.4.0", "enableExecuteCommand": true,
            "healthCheckGracePeriodSeconds": 45,
            "capacityProviderStrategy": [
                {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3}
            ],
            "deploymentCircuitBreaker": {"enable": true, "rollback": false}
        }
    });
    for (k, v) in extra.as_object().expect("object") {
        w[k] = v.clone();
    }
    doc["spec"]["status"] = serde_json::json!({"uri": "s3://tugboat-test/web/status.json"});
    let app: Application = serde_json::from_value(doc).expect("document shape");
    let problems = tugboat::validate::validate(&app);
    assert!(problems.is_empty(), "{problems:?}");
    app
}

#[tokio::test]
async fn sidecars_volumes_and_task_settings_reach_ecs_and_the_service_routes_to_the_main_container()
{
    let world = moto::world(&["web"], 1).await;
    let app = rich(&world);
    let workload = app.workload("web").expect("web");
    let definition = tugboat::taskdef::render(&app, workload, None);
    let content_hash = definition.content_hash();
    let platform = moto::platform().await;
    let registered = platform
        .apply(
            &app,
            &Action::RegisterTaskDefinition {
                workload: "web".into(),
                content_hash: content_hash.clone(),
                definition: definition.clone(),
            },
            None,
        )
        .await
        .expect("register");
    let ActionOutcome::TaskDefinition { arn, .. } = registered else {
        panic!("register answered {registered:?}");
    };

    let clients = moto::clients().await;
    let described = clients
        .ecs
        .describe_task_definition()
        .task_definition(&arn)
        .send()
        .await
        .expect("describe");
    let td = described.task_definition().expect("definition");
    let names: Vec<&str> = td
        .container_definitions()
        .iter()
        .filter_map(|c| c.name())
        .collect();
    assert_eq!(names, ["web-app", "log-router", "agent"]);
    let main = &td.container_definitions()[0];
    assert_eq!(main.cpu(), 768);
    assert_eq!(main.memory(), Some(1536));
    assert_eq!(main.memory_reservation(), Some(1024));
    assert_eq!(main.command(), ["serve"]);
    assert_eq!(main.entry_point(), ["/usr/bin/tini", "--"]);
    assert_eq!(main.working_directory(), Some("/srv"));
    assert_eq!(main.user(), Some("1000"));
    assert_eq!(main.readonly_root_filesystem(), Some(true));
    assert_eq!(main.stop_timeout(), Some(60));
    assert_eq!(main.ulimits().len(), 1);
    assert_eq!(
        main.linux_parameters()
            .and_then(|l| l.init_process_enabled()),
        Some(true)
    );
    let ports: Vec<(i32, Option<&str>)> = main
        .port_mappings()
        .iter()
        .map(|p| (p.container_port().unwrap_or(0), p.name()))
        .collect();
    assert_eq!(ports, [(8080, Some("http")), (9090, Some("admin"))]);
    assert_eq!(
        main.depends_on()
            .iter()
            .map(|d| (d.container_name(), d.condition().as_str()))
            .collect::<Vec<_>>(),
        [("log-router", "START")]
    );
    assert_eq!(main.mount_points()[0].source_volume(), Some("media"));
    assert_eq!(main.secrets()[0].value_from(), "/shop/prod/db-password");
    assert_eq!(
        main.log_configuration().map(|l| l.log_driver().as_str()),
        Some("awsfirelens")
    );
    let router = &td.container_definitions()[1];
    assert_eq!(router.essential(), Some(false));
    assert_eq!(
        router.firelens_configuration().map(|f| f.r#type().as_str()),
        Some("fluentbit")
    );
    let volumes: Vec<(&str, Option<&str>)> = td
        .volumes()
        .iter()
        .map(|v| {
            (
                v.name().unwrap_or(""),
                v.efs_volume_configuration().map(|e| e.file_system_id()),
            )
        })
        .collect();
    assert_eq!(
        volumes,
        [("scratch", None), ("media", Some("fs-0123456789abcdef0"))]
    );
    assert_eq!(
        td.runtime_platform()
            .and_then(|p| p.cpu_architecture())
            .map(|a| a.as_str()),
        Some("ARM64")
    );
    assert_eq!(
        td.task_role_arn(),
        Some("arn:aws:iam::123456789012:role/web-task")
    );
    assert_eq!(
        td.execution_role_arn(),
        Some("arn:aws:iam::123456789012:role/web-exec")
    );

    // The planner creates the blue service with its load balancer on the main
    // container, `web-app` (ECS refuses a container name the definition does not have).
    let observation = platform.observe(&app).await.expect("observe");
    let plan = tugboat::plan::plan(
        &app,
        &observation.state,
        None,
        tugboat::status::Timestamp::from_secs(1_000),
    );
    let create = plan
        .actions
        .iter()
        .map(|a| &a.action)
        .find(|a| matches!(a, Action::CreateService { .. }))
        .unwrap_or_else(|| panic!("no CreateService in {:?}", plan.actions));
    let Action::CreateService {
        container_name,
        container_port,
        service,
        ..
    } = create
    else {
        unreachable!()
    };
    assert_eq!(
        (container_name.as_str(), *container_port),
        ("web-app", 8080)
    );
    platform
        .apply(&app, create, Some(&arn))
        .await
        .expect("create service");
    let services = clients
        .ecs
        .describe_services()
        .cluster(&world.infra.cluster)
        .services(service)
        .send()
        .await
        .expect("describe services");
    let created = &services.services()[0];
    let lb = &created.load_balancers()[0];
    // moto keeps the platform version but ignores capacityProviderStrategy,
    // enableExecuteCommand, healthCheckGracePeriodSeconds and deploymentConfiguration on
    // CreateService (and reports EC2 without a launch type); the request itself is
    // checked in platform::aws's unit tests.
    assert_eq!(created.platform_version(), Some("1.4.0"));
    assert_eq!(lb.container_name(), Some("web-app"));
    assert_eq!(lb.container_port(), Some(8080));
    assert_eq!(
        service.as_str(),
        service_name("web", Some(tugboat::document::Slot::Blue))
    );
}

/// A rolling workload with its admin port in a second target group: the service has both
/// load balancers (moto keeps `loadBalancers`).
#[tokio::test]
async fn a_rolling_service_registers_each_port_in_its_own_target_group() {
    let world = moto::world(&["web"], 1).await;
    let (main_tg, admin_tg) = world.tg("web");
    let base = app(&world.infra, &[Spec::rolling("web", "web:1")]);
    let mut doc = serde_json::to_value(&base).expect("serializes");
    let w = &mut doc["spec"]["workloads"][0];
    w["containerPort"] = serde_json::json!(8080);
    w["container"] =
        serde_json::json!({"portMappings": [{"containerPort": 9090, "name": "admin"}]});
    w["route"] = serde_json::json!({
        "pathPatterns": ["/web/*"], "priority": 30,
        "targetGroups": {"blue": main_tg, "green": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/unused/1"},
        "additionalTargetGroups": [{"targetGroupArn": admin_tg, "containerPort": 9090}]
    });
    let app: Application = serde_json::from_value(doc).expect("document shape");
    let problems = tugboat::validate::validate(&app);
    assert!(problems.is_empty(), "{problems:?}");
    let platform = moto::platform().await;
    let workload = app.workload("web").expect("web");
    let definition = tugboat::taskdef::render(&app, workload, None);
    let registered = platform
        .apply(
            &app,
            &Action::RegisterTaskDefinition {
                workload: "web".into(),
                content_hash: definition.content_hash(),
                definition,
            },
            None,
        )
        .await
        .expect("register");
    let ActionOutcome::TaskDefinition { arn, .. } = registered else {
        panic!("register answered {registered:?}");
    };
    let observation = platform.observe(&app).await.expect("observe");
    let plan = tugboat::plan::plan(
        &app,
        &observation.state,
        None,
        tugboat::status::Timestamp::from_secs(1_000),
    );
    let create = plan
        .actions
        .iter()
        .map(|a| &a.action)
        .find(|a| matches!(a, Action::CreateService { .. }))
        .unwrap_or_else(|| panic!("no CreateService in {:?}", plan.actions));
    platform
        .apply(&app, create, Some(&arn))
        .await
        .expect("create service");
    let described = moto::clients()
        .await
        .ecs
        .describe_services()
        .cluster(&world.infra.cluster)
        .services("web")
        .send()
        .await
        .expect("describe services");
    let lbs: Vec<(Option<&str>, Option<i32>)> = described.services()[0]
        .load_balancers()
        .iter()
        .map(|l| (l.target_group_arn(), l.container_port()))
        .collect();
    assert_eq!(
        lbs,
        [
            (Some(main_tg.as_str()), Some(8080)),
            (Some(admin_tg.as_str()), Some(9090))
        ]
    );
}

/// Registers the workload's definition through the platform and returns its ARN.
async fn register(platform: &tugboat::platform::aws::AwsPlatform, app: &Application) -> String {
    let workload = &app.spec.workloads[0];
    let definition = tugboat::taskdef::render(app, workload, None);
    let registered = platform
        .apply(
            app,
            &Action::RegisterTaskDefinition {
                workload: workload.name.clone(),
                content_hash: definition.content_hash(),
                definition,
            },
            None,
        )
        .await
        .expect("register");
    let ActionOutcome::TaskDefinition { arn, .. } = registered else {
        panic!("register answered {registered:?}");
    };
    arn
}

/// A rolling worker publishing its port through Service Connect and registered in Cloud
/// Map. moto keeps `serviceRegistries` (CreateService and UpdateService) but drops
/// `serviceConnectConfiguration`, which is checked on the SDK request in
/// `platform::aws`'s unit tests. A new revision without the registry removes it.
#[tokio::test]
async fn a_rolling_service_registers_in_cloud_map_and_a_revision_without_it_leaves() {
    let world = moto::world(&["disc"], 1).await;
    let base = app(&world.infra, &[Spec::rolling("disc", "disc:1")]);
    let registry = "arn:aws:servicediscovery:us-east-1:123456789012:service/srv-2xk4mlyxq7yq4bhl";
    let mut doc = serde_json::to_value(&base).expect("serializes");
    let w = &mut doc["spec"]["workloads"][0];
    w["containerPort"] = serde_json::json!(8000);
    w["container"] = serde_json::json!({"portMappings": [{"containerPort": 8000, "name": "http", "appProtocol": "http"}]});
    w["service"] = serde_json::json!({
        "serviceConnectConfiguration": {"enabled": true, "namespace": "prediction.local",
            "services": [{"portName": "http", "discoveryName": "disc",
                          "clientAliases": [{"port": 8000, "dnsName": "disc"}]}]},
        "serviceRegistries": [{"registryArn": registry, "containerName": "disc", "containerPort": 8000}]
    });
    let app: Application = serde_json::from_value(doc.clone()).expect("document shape");
    let problems = tugboat::validate::validate(&app);
    assert!(problems.is_empty(), "{problems:?}");
    let platform = moto::platform().await;
    let arn = register(&platform, &app).await;
    let observation = platform.observe(&app).await.expect("observe");
    let plan = tugboat::plan::plan(
        &app,
        &observation.state,
        None,
        tugboat::status::Timestamp::from_secs(1_000),
    );
    let create = plan
        .actions
        .iter()
        .map(|a| &a.action)
        .find(|a| matches!(a, Action::CreateService { .. }))
        .unwrap_or_else(|| panic!("no CreateService in {:?}", plan.actions));
    platform
        .apply(&app, create, Some(&arn))
        .await
        .expect("create service");
    let clients = moto::clients().await;
    let describe = || async {
        clients
            .ecs
            .describe_services()
            .cluster(&world.infra.cluster)
            .services("disc")
            .send()
            .await
            .expect("describe services")
    };
    let created = describe().await;
    let registries: Vec<(Option<&str>, Option<&str>, Option<i32>)> = created.services()[0]
        .service_registries()
        .iter()
        .map(|r| (r.registry_arn(), r.container_name(), r.container_port()))
        .collect();
    assert_eq!(registries, [(Some(registry), Some("disc"), Some(8000))]);

    // The next revision drops the registry: UpdateService sends an empty list.
    let mut next = doc;
    next["spec"]["workloads"][0]["image"] = serde_json::json!("disc:2");
    next["spec"]["workloads"][0]["service"]
        .as_object_mut()
        .expect("object")
        .remove("serviceRegistries");
    let next: Application = serde_json::from_value(next).expect("document shape");
    let next_arn = register(&platform, &next).await;
    platform.observe(&next).await.expect("observe");
    platform
        .apply(
            &next,
            &Action::UpdateService {
                workload: "disc".into(),
                service: "disc".into(),
                content_hash: Some("next".into()),
                desired_count: None,
            },
            Some(&next_arn),
        )
        .await
        .expect("update service");
    let updated = describe().await;
    assert_eq!(
        updated.services()[0].task_definition(),
        Some(next_arn.as_str())
    );
    assert!(
        updated.services()[0].service_registries().is_empty(),
        "{:?}",
        updated.services()[0].service_registries()
    );
}

/// Passes of a reconciler, settling moto between them, until one plans nothing.
async fn converge(
    world: &moto::World,
    reconciler: &mut tugboat::runtime::Reconciler<tugboat::platform::aws::AwsPlatform>,
    doc: &tugboat::runtime::DesiredDocument,
    now: &mut tugboat::status::Timestamp,
) -> tugboat::runtime::PassReport {
    for _ in 0..15 {
        let report = reconciler.pass(doc, *now).await.expect("pass succeeds");
        moto::settle(world).await;
        *now = now.plus(std::time::Duration::from_secs(1));
        if report.planned == 0 && report.requeue_after.is_none() {
            return report;
        }
    }
    panic!("did not converge");
}

/// Application Auto Scaling through the SDK against moto: the rolling service is
/// registered with its range, policy and scheduled action; a count the scaler set is
/// left alone (no UpdateService, no drift); a changed policy is put again and a policy
/// added by hand deleted; without `autoScaling` the target is deregistered. Each call is
/// counted under its IAM name.
#[tokio::test]
async fn a_scaled_rolling_service_is_registered_left_to_the_scaler_and_deregistered() {
    use aws_sdk_applicationautoscaling::types::{ScalableDimension, ServiceNamespace};
    let world = moto::world(&["scaled"], 1).await;
    let base = app(&world.infra, &[Spec::rolling("scaled", "scaled:1")]);
    let mut doc = serde_json::to_value(&base).expect("serializes");
    doc["spec"]["workloads"][0]["desiredCount"] = serde_json::json!(2);
    doc["spec"]["workloads"][0]["autoScaling"] = serde_json::json!({
        "minCapacity": 2, "maxCapacity": 8,
        "targetTracking": [{"predefinedMetric": "ECSServiceAverageCPUUtilization", "targetValue": 60.0,
                            "scaleInCooldown": 120, "scaleOutCooldown": 30}],
        "scheduledActions": [{"scheduledActionName": "mornings", "schedule": "cron(0 8 ? * MON-FRI *)",
                              "scalableTargetAction": {"minCapacity": 4}}]
    });
    let scaled: Application = serde_json::from_value(doc.clone()).expect("document shape");
    assert!(tugboat::validate::validate(&scaled).is_empty());
    let clients = moto::clients().await;
    let resource = format!("service/{}/scaled", world.infra.cluster);
    let mut reconciler = tugboat::runtime::Reconciler::new(moto::platform().await, None);
    let mut now = tugboat::status::Timestamp::from_secs(1_000);
    let desired = common::desired(scaled.clone(), "r1");
    let before = reconciler.platform().api_calls();
    converge(&world, &mut reconciler, &desired, &mut now).await;
    let calls = reconciler.platform().api_calls().since(&before);
    for api in [
        "application-autoscaling:DescribeScalableTargets",
        "application-autoscaling:RegisterScalableTarget",
        "application-autoscaling:PutScalingPolicy",
        "application-autoscaling:PutScheduledAction",
    ] {
        assert!(calls.get(api) >= 1, "{api} counted: {calls}");
    }

    let targets = clients
        .scaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource)
        .send()
        .await
        .expect("targets");
    let target = &targets.scalable_targets()[0];
    assert_eq!((target.min_capacity(), target.max_capacity()), (2, 8));
    assert_eq!(
        target.scalable_dimension(),
        &ScalableDimension::EcsServiceDesiredCount
    );
    let policies = clients
        .scaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource)
        .send()
        .await
        .expect("policies");
    let names: Vec<&str> = policies
        .scaling_policies()
        .iter()
        .filter(|p| p.resource_id() == resource)
        .map(|p| p.policy_name())
        .collect();
    assert_eq!(names, ["tugboat-ECSServiceAverageCPUUtilization"]);

    // The scaler moves the service to 5 tasks: not drift, nothing planned.
    clients
        .ecs
        .update_service()
        .cluster(&world.infra.cluster)
        .service("scaled")
        .desired_count(5)
        .send()
        .await
        .expect("the scaler's update");
    moto::settle(&world).await;
    let report = reconciler.pass(&desired, now).await.expect("pass");
    assert_eq!(report.planned, 0, "{:?}", report.execution);
    assert_eq!(moto::service(&world, "scaled").await.map(|s| s.0), Some(5));

    // A policy put by hand is not the document's: the next pass deletes it.
    clients
        .scaling
        .put_scaling_policy()
        .policy_name("by-hand")
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(&resource)
        .policy_type(aws_sdk_applicationautoscaling::types::PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(
            aws_sdk_applicationautoscaling::types::TargetTrackingScalingPolicyConfiguration::builder()
                .target_value(10.0)
                .predefined_metric_specification(
                    aws_sdk_applicationautoscaling::types::PredefinedMetricSpecification::builder()
                        .predefined_metric_type(
                            aws_sdk_applicationautoscaling::types::MetricType::EcsServiceAverageMemoryUtilization,
                        )
                        .build()
                        .expect("metric"),
                )
                .build()
                .expect("config"),
        )
        .send()
        .await
        .expect("policy by hand");
    now = now.plus(std::time::Duration::from_secs(60));
    converge(&world, &mut reconciler, &desired, &mut now).await;
    let policies = clients
        .scaling
        .describe_scaling_policies()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_id(&resource)
        .send()
        .await
        .expect("policies");
    let names: Vec<&str> = policies
        .scaling_policies()
        .iter()
        .filter(|p| p.resource_id() == resource)
        .map(|p| p.policy_name())
        .collect();
    assert_eq!(names, ["tugboat-ECSServiceAverageCPUUtilization"]);

    // Without autoScaling the target goes (and the count returns to desiredCount).
    let mut plain = doc;
    plain["spec"]["workloads"][0]
        .as_object_mut()
        .expect("object")
        .remove("autoScaling");
    let plain: Application = serde_json::from_value(plain).expect("document shape");
    now = now.plus(std::time::Duration::from_secs(60));
    converge(
        &world,
        &mut reconciler,
        &common::desired(plain, "r2"),
        &mut now,
    )
    .await;
    let targets = clients
        .scaling
        .describe_scalable_targets()
        .service_namespace(ServiceNamespace::Ecs)
        .resource_ids(&resource)
        .send()
        .await
        .expect("targets");
    assert!(targets.scalable_targets().is_empty());
    assert_eq!(moto::service(&world, "scaled").await.map(|s| s.0), Some(2));
}
