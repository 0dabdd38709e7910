//! Workloads as real task definitions have them: a main container with its own name,
//! sidecars (a FireLens log router, an agent), volumes (bind and EFS), task settings and
//! per-workload roles. Each rule of `validate` about them, and their rendering into the
//! task definition tugboat registers.

use tugboat_core::document::Application;
use tugboat_core::taskdef;
use tugboat_core::validate;

/// A web service with a FireLens log router and a metrics agent, an EFS volume and a bind
/// volume, on ARM64 with its own roles.
const RICH: &str = r#"
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: shop, environment: prod}
spec:
  platform:
    aws:
      region: eu-west-1
      cluster: shop
      subnets: [subnet-0a]
      securityGroups: [sg-0a]
      executionRoleArn: arn:aws:iam::123456789012:role/app-exec
  workloads:
    - name: web
      containerName: web-app
      image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/web:3.1.0
      cpu: 1024
      memory: 2048
      desiredCount: 2
      containerPort: 8080
      environment: {MODE: prod}
      secrets:
        DB_PASSWORD: /shop/prod/db-password
        API_KEY: arn:aws:secretsmanager:eu-west-1:123456789012:secret:api-key-AbCdEf
      healthCheck:
        command: [CMD-SHELL, "curl -f http://localhost:8080/health || exit 1"]
      logConfiguration:
        logDriver: awsfirelens
        options: {Name: cloudwatch_logs, region: eu-west-1}
      container:
        cpu: 768
        memory: 1536
        memoryReservation: 1024
        command: [serve, --port, "8080"]
        entryPoint: [/usr/bin/tini, --]
        workingDirectory: /srv
        user: "1000"
        readonlyRootFilesystem: true
        ulimits: [{name: nofile, softLimit: 65536, hardLimit: 65536}]
        linuxParameters: {initProcessEnabled: true}
        stopTimeout: 60
        portMappings:
          - {containerPort: 8080, protocol: tcp, name: http, appProtocol: http}
          - {containerPort: 9090, protocol: tcp, name: admin}
        dependsOn:
          - {containerName: log-router, condition: START}
          - {containerName: agent, condition: HEALTHY}
        mountPoints:
          - {sourceVolume: media, containerPath: /srv/media, readOnly: true}
          - {sourceVolume: scratch, containerPath: /tmp}
        repositoryCredentials:
          credentialsParameter: arn:aws:secretsmanager:eu-west-1:123456789012:secret:registry-AbCdEf
      sidecars:
        - name: log-router
          image: public.ecr.aws/aws-observability/aws-for-fluent-bit:stable
          essential: false
          memoryReservation: 50
          firelensConfiguration: {type: fluentbit, options: {enable-ecs-log-metadata: "true"}}
        - name: agent
          image: datadog/agent:7
          essential: true
          cpu: 128
          memory: 256
          environment: {DD_APM_ENABLED: "true"}
          secrets: {DD_API_KEY: /shop/prod/datadog}
          healthCheck:
            command: [CMD, agent, health]
          portMappings: [{containerPort: 8126, protocol: tcp}]
      volumes:
        - name: scratch
        - name: media
          efsVolumeConfiguration:
            fileSystemId: fs-0123456789abcdef0
            transitEncryption: ENABLED
            authorizationConfig: {accessPointId: fsap-0123456789abcdef0, iam: ENABLED}
      runtimePlatform: {cpuArchitecture: ARM64, operatingSystemFamily: LINUX}
      ephemeralStorage: {sizeInGiB: 50}
      taskRoleArn: arn:aws:iam::123456789012:role/web-task
      executionRoleArn: arn:aws:iam::123456789012:role/web-exec
      strategy: {rolling: {}}
"#;

fn load(text: &str) -> Result<Application, validate::ValidationErrors> {
    validate::load(text, "test.yaml")
}

/// The messages of a document that must fail, one per problem.
fn problems(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("the document should be rejected"),
        Err(e) => e.errors.iter().map(|e| e.to_string()).collect(),
    }
}

/// `RICH` with `from` replaced by `to` (once; the edit must apply).
fn edit(from: &str, to: &str) -> String {
    assert!(RICH.contains(from), "fixture has no {from:?}");
    RICH.replacen(from, to, 1)
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn a_rich_workload_is_valid_and_renders_every_container_field() {
    let app = load(RICH).unwrap_or_else(|e| panic!("{e}"));
    let w = &app.spec.workloads[0];
    let d = taskdef::render(&app, w, None);
    let json = d.ecs_json();
    let containers = json["containerDefinitions"].as_array().expect("list");
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["web-app", "log-router", "agent"]);
    let main = &containers[0];
    assert_eq!(main["cpu"], 768);
    assert_eq!(main["memory"], 1536);
    assert_eq!(main["memoryReservation"], 1024);
    assert_eq!(
        main["command"],
        serde_json::json!(["serve", "--port", "8080"])
    );
    assert_eq!(main["entryPoint"][0], "/usr/bin/tini");
    assert_eq!(main["workingDirectory"], "/srv");
    assert_eq!(main["user"], "1000");
    assert_eq!(main["readonlyRootFilesystem"], true);
    assert_eq!(main["ulimits"][0]["softLimit"], 65536);
    assert_eq!(main["linuxParameters"]["initProcessEnabled"], true);
    assert_eq!(main["stopTimeout"], 60);
    assert_eq!(main["portMappings"][0]["name"], "http");
    assert_eq!(main["portMappings"][0]["appProtocol"], "http");
    assert_eq!(main["portMappings"][1]["containerPort"], 9090);
    assert_eq!(main["dependsOn"][1]["condition"], "HEALTHY");
    assert_eq!(main["mountPoints"][0]["sourceVolume"], "media");
    assert_eq!(main["logConfiguration"]["logDriver"], "awsfirelens");
    assert!(
        main["repositoryCredentials"]["credentialsParameter"]
            .as_str()
            .is_some_and(|s| s.contains("registry"))
    );
    assert_eq!(containers[1]["essential"], false);
    assert_eq!(containers[1]["firelensConfiguration"]["type"], "fluentbit");
    assert_eq!(
        containers[2]["secrets"][0]["valueFrom"],
        "/shop/prod/datadog"
    );
    assert_eq!(containers[2]["portMappings"][0]["containerPort"], 8126);
    assert!(containers[1].get("portMappings").is_none());
    assert_eq!(json["runtimePlatform"]["cpuArchitecture"], "ARM64");
    assert_eq!(json["ephemeralStorage"]["sizeInGiB"], 50);
    assert_eq!(json["volumes"][0], serde_json::json!({"name": "scratch"}));
    assert_eq!(
        json["volumes"][1]["efsVolumeConfiguration"]["authorizationConfig"]["iam"],
        "ENABLED"
    );
    assert_eq!(
        json["taskRoleArn"],
        "arn:aws:iam::123456789012:role/web-task"
    );
    assert_eq!(
        json["executionRoleArn"],
        "arn:aws:iam::123456789012:role/web-exec"
    );
}

#[test]
fn the_main_containers_port_comes_first_when_port_mappings_leave_it_out() {
    let text = edit(
        "          - {containerPort: 8080, protocol: tcp, name: http, appProtocol: http}\n",
        "",
    );
    let app = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let d = taskdef::render(&app, &app.spec.workloads[0], None);
    let ports: Vec<u16> = d
        .container
        .port_mappings()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [8080, 9090]);
}

#[test]
fn application_roles_apply_where_a_workload_names_none() {
    let text = edit(
        "      taskRoleArn: arn:aws:iam::123456789012:role/web-task\n      executionRoleArn: arn:aws:iam::123456789012:role/web-exec\n",
        "",
    );
    let app = load(&text).unwrap_or_else(|e| panic!("{e}"));
    let d = taskdef::render(&app, &app.spec.workloads[0], None);
    assert_eq!(
        d.execution_role_arn.as_deref(),
        Some("arn:aws:iam::123456789012:role/app-exec")
    );
    assert_eq!(d.task_role_arn, None);
}

/// A document without any of the new fields renders exactly the canonical form earlier
/// builds hashed, so upgrading tugboat registers no new revision.
#[test]
fn a_plain_workload_keeps_the_canonical_form_of_earlier_builds() {
    let app = load(
        r#"
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: app, environment: dev}
spec:
  platform:
    aws: {region: eu-west-1, cluster: c, subnets: [subnet-1], securityGroups: [sg-1],
          executionRoleArn: "arn:aws:iam::123456789012:role/exec"}
  workloads:
    - {name: api, image: "api:1", cpu: 256, memory: 512, desiredCount: 1,
       containerPort: 8000, environment: {A: b}, strategy: {rolling: {}}}
"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let d = taskdef::render(&app, &app.spec.workloads[0], None);
    assert_eq!(
        serde_json::to_string(&d).expect("serializes"),
        r#"{"family":"app-api","cpu":256,"memory":512,"executionRoleArn":"arn:aws:iam::123456789012:role/exec","container":{"name":"api","image":"api:1","port":8000,"environment":{"A":"b"},"secrets":{}}}"#
    );
}

#[test]
fn container_names_are_unique_in_a_task() {
    let p = problems(&edit(
        "        - name: agent\n",
        "        - name: web-app\n",
    ));
    assert!(
        has(
            &p,
            "spec.workloads[0].sidecars[1].name: duplicate container name `web-app`"
        ),
        "{p:?}"
    );
}

#[test]
fn a_task_needs_one_essential_container() {
    let text = edit(
        "          essential: true\n",
        "          essential: false\n",
    )
    .replacen(
        "        cpu: 768\n",
        "        cpu: 768\n        essential: false\n",
        1,
    );
    let p = problems(&text);
    assert!(
        has(&p, "at least one container of the task must be essential"),
        "{p:?}"
    );
}

#[test]
fn dependencies_name_containers_of_the_task_and_healthy_needs_a_health_check() {
    let p = problems(&edit(
        "{containerName: log-router, condition: START}",
        "{containerName: log-routr, condition: START}",
    ));
    assert!(
        has(
            &p,
            "container.dependsOn[0].containerName: no container named `log-routr`"
        ),
        "{p:?}"
    );
    let p = problems(&edit(
        "{containerName: log-router, condition: START}",
        "{containerName: log-router, condition: HEALTHY}",
    ));
    assert!(
        has(&p, "HEALTHY needs a healthCheck on `log-router`"),
        "{p:?}"
    );
    let p = problems(&edit(
        "          essential: true\n",
        "          essential: true\n          dependsOn: [{containerName: web-app, condition: START}]\n",
    ));
    assert!(has(&p, "depends on itself through"), "{p:?}");
    let p = problems(&edit(
        "{containerName: agent, condition: HEALTHY}",
        "{containerName: agent, condition: SUCCESS}",
    ));
    assert!(
        has(&p, "SUCCESS waits for `agent` to exit, but it is essential"),
        "{p:?}"
    );
}

#[test]
fn container_sizes_fit_in_the_task() {
    let p = problems(&edit("          cpu: 128\n", "          cpu: 512\n"));
    assert!(
        has(
            &p,
            "the containers reserve 1280 CPU units together, more than the task's cpu 1024"
        ),
        "{p:?}"
    );
    let p = problems(&edit("        memory: 1536\n", "        memory: 4096\n"));
    assert!(
        has(
            &p,
            "container.memory: 4096 MiB is more than the task's memory 2048 MiB"
        ),
        "{p:?}"
    );
    let p = problems(&edit(
        "        memoryReservation: 1024\n",
        "        memoryReservation: 1800\n",
    ));
    assert!(has(&p, "the containers reserve 2106 MiB together"), "{p:?}");
}

#[test]
fn a_port_is_mapped_once_in_a_task_and_host_ports_equal_container_ports() {
    let p = problems(&edit(
        "[{containerPort: 8126, protocol: tcp}]",
        "[{containerPort: 9090, protocol: tcp}]",
    ));
    assert!(
        has(
            &p,
            "sidecars[1].portMappings[0].containerPort: port 9090 is already mapped by `web-app`"
        ),
        "{p:?}"
    );
    let p = problems(&edit(
        "[{containerPort: 8126, protocol: tcp}]",
        "[{containerPort: 8080}]",
    ));
    assert!(has(&p, "port 8080 is already mapped by `web-app`"), "{p:?}");
    let p = problems(&edit(
        "[{containerPort: 8126, protocol: tcp}]",
        "[{containerPort: 8126, hostPort: 80}]",
    ));
    assert!(has(&p, "hostPort: must equal containerPort 8126"), "{p:?}");
    let p = problems(&edit("name: admin}", "name: http}"));
    assert!(
        has(&p, "port name `http` is already used by `web-app`"),
        "{p:?}"
    );
}

#[test]
fn mount_points_name_volumes_and_efs_settings_are_consistent() {
    let p = problems(&edit("{sourceVolume: scratch,", "{sourceVolume: scratc,"));
    assert!(
        has(&p, "mountPoints[1].sourceVolume: no volume named `scratc`"),
        "{p:?}"
    );
    let p = problems(&edit("            transitEncryption: ENABLED\n", ""));
    assert!(
        has(
            &p,
            "efsVolumeConfiguration.transitEncryption: must be ENABLED with an access point"
        ),
        "{p:?}"
    );
    let p = problems(&edit(
        "        - name: scratch\n",
        "        - name: media\n",
    ));
    assert!(has(&p, "duplicate volume name `media`"), "{p:?}");
    let p = problems(&edit(
        "fileSystemId: fs-0123456789abcdef0",
        "fileSystemId: 0123",
    ));
    assert!(has(&p, "is not an EFS file system id"), "{p:?}");
}

#[test]
fn awsfirelens_needs_a_log_router() {
    let p = problems(&edit(
        "          firelensConfiguration: {type: fluentbit, options: {enable-ecs-log-metadata: \"true\"}}\n",
        "",
    ));
    assert!(
        has(
            &p,
            "logConfiguration.logDriver: awsfirelens needs a log router"
        ),
        "{p:?}"
    );
}

#[test]
fn task_settings_and_roles_are_checked() {
    let p = problems(&edit("{sizeInGiB: 50}", "{sizeInGiB: 10}"));
    assert!(
        has(&p, "ephemeralStorage.sizeInGiB: must be between 21 and 200"),
        "{p:?}"
    );
    let p = problems(&edit(
        "taskRoleArn: arn:aws:iam::123456789012:role/web-task",
        "taskRoleArn: arn:aws:s3:::bucket/x",
    ));
    assert!(
        has(&p, "taskRoleArn: must be an ARN of service iam"),
        "{p:?}"
    );
    let p = problems(&edit("stopTimeout: 60", "stopTimeout: 600"));
    assert!(has(&p, "stopTimeout: must be at most 120"), "{p:?}");
    let p = problems(&edit("softLimit: 65536", "softLimit: 99999"));
    assert!(has(&p, "softLimit 99999 is above hardLimit 65536"), "{p:?}");
}

#[test]
fn secrets_may_name_an_ssm_parameter_but_never_a_bare_word() {
    // `/shop/prod/db-password` in RICH is accepted (the rich test loads it).
    let p = problems(&edit(
        "DB_PASSWORD: /shop/prod/db-password",
        "DB_PASSWORD: hunter2",
    ));
    assert!(
        has(&p, "secrets.DB_PASSWORD: `DB_PASSWORD` must be"),
        "{p:?}"
    );
    assert!(!p.iter().any(|m| m.contains("hunter2")), "{p:?}");
    let p = problems(&edit(
        "DD_API_KEY: /shop/prod/datadog",
        "DD_API_KEY: s3cr3t-value",
    ));
    assert!(has(&p, "sidecars[1].secrets.DD_API_KEY"), "{p:?}");
    assert!(!p.iter().any(|m| m.contains("s3cr3t")), "{p:?}");
}

/// RICH with service settings (the workload is rolling and has no route).
fn with_service(settings: &str) -> String {
    edit(
        "      strategy: {rolling: {}}\n",
        &format!("      strategy: {{rolling: {{}}}}\n      service: {settings}\n"),
    )
}

#[test]
fn service_settings_are_part_of_the_revision() {
    let plain = load(RICH).unwrap_or_else(|e| panic!("{e}"));
    let spot = load(&with_service(
        "{capacityProviderStrategy: [{capacityProvider: FARGATE_SPOT, weight: 1}], platformVersion: 1.4.0, enableExecuteCommand: true}",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let a = taskdef::render(&plain, &plain.spec.workloads[0], None);
    let b = taskdef::render(&spot, &spot.spec.workloads[0], None);
    assert_ne!(a.content_hash(), b.content_hash());
    assert_eq!(
        a.ecs_json(),
        b.ecs_json(),
        "not an ECS task-definition field"
    );
}

#[test]
fn spot_is_a_fargate_capacity_provider_with_a_weight() {
    let p = problems(&with_service(
        "{capacityProviderStrategy: [{capacityProvider: my-asg, weight: 1}]}",
    ));
    assert!(
        has(&p, "`my-asg` is not a Fargate capacity provider"),
        "{p:?}"
    );
    let p = problems(&with_service(
        "{capacityProviderStrategy: [{capacityProvider: FARGATE_SPOT, base: 0}]}",
    ));
    assert!(
        has(&p, "at least one capacity provider needs a weight above 0"),
        "{p:?}"
    );
    let p = problems(&with_service(
        "{capacityProviderStrategy: [{capacityProvider: FARGATE, base: 1, weight: 1}, {capacityProvider: FARGATE_SPOT, base: 2, weight: 1}]}",
    ));
    assert!(
        has(&p, "only one capacity provider may have a base"),
        "{p:?}"
    );
}

#[test]
fn service_settings_that_cannot_apply_are_refused() {
    let p = problems(&with_service("{healthCheckGracePeriodSeconds: 30}"));
    assert!(
        has(
            &p,
            "service.healthCheckGracePeriodSeconds: only applies to a service behind a load balancer"
        ),
        "{p:?}"
    );
    let p = problems(&with_service("{platformVersion: newest}"));
    assert!(
        has(&p, "`newest` is not a Fargate platform version"),
        "{p:?}"
    );
    let p = problems(&with_service(
        "{deploymentCircuitBreaker: {enable: false, rollback: true}}",
    ));
    assert!(has(&p, "rollback needs enable: true"), "{p:?}");
}

#[test]
fn a_worker_has_no_port_and_no_route_but_a_routed_workload_needs_its_port() {
    let worker = edit("      containerPort: 8080\n", "").replacen(
        "          - {containerPort: 8080, protocol: tcp, name: http, appProtocol: http}\n",
        "",
        1,
    );
    let app = load(&worker).unwrap_or_else(|e| panic!("{e}"));
    let d = taskdef::render(&app, &app.spec.workloads[0], None);
    assert_eq!(d.container.port, None);
    let ports: Vec<u16> = d
        .container
        .port_mappings()
        .iter()
        .map(|p| p.container_port)
        .collect();
    assert_eq!(ports, [9090], "only the ports the document lists");

    let routed = edit("      containerPort: 8080\n", "").replacen(
        "      strategy: {rolling: {}}\n",
        "      strategy: {rolling: {}}\n      route: {pathPatterns: [\"/x/*\"], priority: 5, targetGroups: {blue: tg-b, green: tg-g}}\n",
        1,
    );
    let p = problems(&routed);
    assert!(has(&p, "containerPort: required with a route"), "{p:?}");
}

/// RICH with a route: the main port on `blue`, the admin port (9090) on a target group
/// of its own.
fn with_route(additional: &str) -> String {
    edit(
        "      executionRoleArn: arn:aws:iam::123456789012:role/app-exec\n",
        "      executionRoleArn: arn:aws:iam::123456789012:role/app-exec\n      listenerArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/1/2\n",
    )
    .replacen(
        "      strategy: {rolling: {}}\n",
        "      strategy: {rolling: {}}\n      route:\n        pathPatterns: [\"/shop/*\"]\n        priority: 7\n        targetGroups: {blue: \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1\", green: \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web-g/2\"}\n        additionalTargetGroups: ADDITIONAL\n",
        1,
    )
    .replacen("ADDITIONAL", additional, 1)
}

#[test]
fn a_further_port_sits_in_a_target_group_of_its_own() {
    let tg = "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/admin/3";
    load(&with_route(&format!(
        "[{{targetGroupArn: \"{tg}\", containerPort: 9090}}]"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    load(&with_route(&format!(
        "[{{targetGroupArn: \"{tg}\", containerName: agent, containerPort: 8126}}]"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = problems(&with_route(&format!(
        "[{{targetGroupArn: \"{tg}\", containerPort: 9999}}]"
    )));
    assert!(has(&p, "`web-app` maps no port 9999"), "{p:?}");
    let p = problems(&with_route(
        "[{targetGroupArn: \"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/1\", containerPort: 9090}]",
    ));
    assert!(has(&p, "already used by this route"), "{p:?}");
    let p = problems(&with_route(&format!(
        "[{{targetGroupArn: \"{tg}\", containerPort: 8080}}]"
    )));
    assert!(
        has(
            &p,
            "port 8080 of `web-app` is already behind a target group"
        ),
        "{p:?}"
    );
    let p = problems(&with_route(&format!(
        "[{{targetGroupArn: \"{tg}\", containerName: nope, containerPort: 9090}}]"
    )));
    assert!(has(&p, "no container named `nope` in this task"), "{p:?}");
    let canary = with_route(&format!(
        "[{{targetGroupArn: \"{tg}\", containerPort: 9090}}]"
    ))
    .replacen(
        "strategy: {rolling: {}}",
        "strategy: {canary: {steps: [{setWeight: 100}]}}",
        1,
    );
    let p = problems(&canary);
    assert!(
        has(&p, "additionalTargetGroups: only for rolling workloads"),
        "{p:?}"
    );
}

/// Service Connect publishing `http` (8080) of the main container as `web`.
const PUBLISH: &str = "{serviceConnectConfiguration: {enabled: true, namespace: shop.local, services: [{portName: http, discoveryName: web, clientAliases: [{port: 80, dnsName: web.shop.local}]}]}}";

#[test]
fn service_connect_publishes_a_named_port_of_the_task() {
    let app = load(&with_service(PUBLISH)).unwrap_or_else(|e| panic!("{e}"));
    let sc = app.spec.workloads[0]
        .service
        .as_ref()
        .and_then(|s| s.service_connect_configuration.as_ref())
        .expect("kept");
    assert_eq!(sc.services[0].client_aliases[0].port, 80);
    // A client alone: enabled with a namespace, nothing published.
    load(&with_service(
        "{serviceConnectConfiguration: {enabled: true, namespace: shop.local}}",
    ))
    .unwrap_or_else(|e| panic!("{e}"));

    let p = problems(&with_service(
        &PUBLISH.replace("portName: http", "portName: web"),
    ));
    assert!(
        has(
            &p,
            "services[0].portName: `web` names no port of the task: give a `portMappings` entry that `name` (named ports: `admin`, `http`)"
        ),
        "{p:?}"
    );
    let p = problems(&with_service(
        &PUBLISH.replace("enabled: true", "enabled: false"),
    ));
    assert!(
        has(&p, "enabled: must be true when `services` publishes a port"),
        "{p:?}"
    );
    let p = problems(&with_service(&PUBLISH.replace(
        "{portName: http, discoveryName: web, clientAliases: [{port: 80, dnsName: web.shop.local}]}",
        "{portName: http, discoveryName: web}, {portName: admin, discoveryName: web}",
    )));
    assert!(
        has(
            &p,
            "discovery name `web` is published twice by this service"
        ),
        "{p:?}"
    );
    let p = problems(&with_service(
        &PUBLISH.replace("web.shop.local", "Web_Shop"),
    ));
    assert!(has(&p, "`Web_Shop` is not a DNS name"), "{p:?}");
}

/// The design of the README's "Service discovery": a canary's two slots are two ECS
/// services, which cannot both hold one name, and a call over Service Connect would go
/// past the ALB weights. Such a workload may be a client; it is reached through its route.
#[test]
fn a_progressive_workload_cannot_publish_a_discovery_name_but_may_be_a_client() {
    let canary = |service: &str| {
        with_route("[]")
            .replacen(
                "      strategy: {rolling: {}}\n",
                &format!(
                    "      strategy: {{canary: {{steps: [{{setWeight: 50}}]}}}}\n      service: {service}\n"
                ),
                1,
            )
            .replacen(
                "  workloads:\n",
                "  status: {uri: \"s3://state/shop.json\"}\n  workloads:\n",
                1,
            )
    };
    load(&canary(
        "{serviceConnectConfiguration: {enabled: true, namespace: shop.local}}",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = problems(&canary(PUBLISH));
    assert!(
        has(
            &p,
            "serviceConnectConfiguration.services: a canary workload cannot publish through Service Connect"
        ) && has(&p, "call it through its route on the load balancer"),
        "{p:?}"
    );
    let p = problems(&canary(
        "{serviceRegistries: [{registryArn: \"arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-1\"}]}",
    ));
    assert!(
        has(&p, "a canary workload cannot register in Cloud Map"),
        "{p:?}"
    );
}

#[test]
fn a_discovery_name_belongs_to_one_workload_of_a_namespace() {
    let second = "    - name: web2\n      image: web:1\n      cpu: 256\n      memory: 512\n      desiredCount: 1\n      containerPort: 8080\n      container: {portMappings: [{containerPort: 8080, name: http}]}\n      strategy: {rolling: {}}\n      service: SECOND\n";
    let doc = |first: &str, other: &str| {
        format!("{}{}", with_service(first), second.replace("SECOND", other))
    };
    load(&doc(
        PUBLISH,
        &PUBLISH
            .replace("discoveryName: web,", "discoveryName: web2,")
            .replace("web.shop.local", "web2.shop.local"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    // Another namespace may reuse the name.
    load(&doc(
        PUBLISH,
        &PUBLISH.replace("namespace: shop.local", "namespace: other.local"),
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let p = problems(&doc(PUBLISH, PUBLISH));
    assert!(
        has(
            &p,
            "spec.workloads[1].service.serviceConnectConfiguration.services[0]: discovery name `web` is already published by workload `web`"
        ) && has(
            &p,
            "client alias `web.shop.local:80` is already taken by workload `web`"
        ),
        "{p:?}"
    );
}

#[test]
fn a_cloud_map_registry_is_one_servicediscovery_arn_with_a_mapped_port() {
    let registry = |entry: &str| format!("{{serviceRegistries: [{entry}]}}");
    let good = "{registryArn: \"arn:aws:servicediscovery:eu-west-1:123456789012:service/srv-1\", containerName: web-app, containerPort: 9090}";
    load(&with_service(&registry(good))).unwrap_or_else(|e| panic!("{e}"));
    let p = problems(&with_service(&registry(
        &good.replace("servicediscovery", "ecs"),
    )));
    assert!(
        has(&p, "must be an ARN of service servicediscovery"),
        "{p:?}"
    );
    let p = problems(&with_service(&registry(&good.replace("9090", "9999"))));
    assert!(has(&p, "`web-app` maps no port 9999"), "{p:?}");
    let p = problems(&with_service(&registry(
        &good.replace("containerName: web-app, ", ""),
    )));
    assert!(
        has(&p, "`containerName` and `containerPort` go together"),
        "{p:?}"
    );
    let p = problems(&with_service(&registry(&format!("{good}, {good}"))));
    assert!(
        has(&p, "ECS takes one service registry per service"),
        "{p:?}"
    );
}

/// RICH (rolling, 2 tasks, no route) with `autoScaling: <scaling>`.
fn with_scaling(scaling: &str) -> String {
    edit(
        "      strategy: {rolling: {}}\n",
        &format!("      strategy: {{rolling: {{}}}}\n      autoScaling: {scaling}\n"),
    )
}

const CPU: &str =
    "targetTracking: [{predefinedMetric: ECSServiceAverageCPUUtilization, targetValue: 60}]";

#[test]
fn auto_scaling_holds_desired_count_and_names_what_is_wrong() {
    let app = load(&with_scaling(&format!(
        "{{minCapacity: 1, maxCapacity: 6, {CPU}, scheduledActions: [{{scheduledActionName: mornings, schedule: \"cron(0 8 ? * MON-FRI *)\", timezone: Europe/Berlin, scalableTargetAction: {{minCapacity: 4}}}}]}}"
    )))
    .unwrap_or_else(|e| panic!("{e}"));
    let scaling = app.spec.workloads[0].auto_scaling.as_ref().expect("kept");
    assert_eq!((scaling.min_capacity, scaling.max_capacity), (1, 6));

    let p = problems(&with_scaling(&format!(
        "{{minCapacity: 3, maxCapacity: 6, {CPU}}}"
    )));
    assert!(
        has(
            &p,
            "desiredCount 2 is outside minCapacity..maxCapacity (3..6)"
        ),
        "{p:?}"
    );
    let p = problems(&with_scaling(&format!(
        "{{minCapacity: 7, maxCapacity: 6, {CPU}}}"
    )));
    assert!(
        has(&p, "minCapacity: must not exceed maxCapacity 6 (got 7)"),
        "{p:?}"
    );
    let p = problems(&with_scaling("{minCapacity: 1, maxCapacity: 6}"));
    assert!(
        has(&p, "needs a targetTracking policy or a scheduled action"),
        "{p:?}"
    );
    let p = problems(&with_scaling(
        "{minCapacity: 1, maxCapacity: 6, targetTracking: [{predefinedMetric: ALBRequestCountPerTarget, targetValue: 500}]}",
    ));
    assert!(has(&p, "ALBRequestCountPerTarget needs a route"), "{p:?}");
    let p = problems(&with_scaling(
        "{minCapacity: 1, maxCapacity: 6, targetTracking: [{predefinedMetric: ECSServiceAverageCPUUtilization, targetValue: 160}, {predefinedMetric: ECSServiceAverageCPUUtilization, targetValue: 50}]}",
    ));
    assert!(has(&p, "is a percentage: at most 100"), "{p:?}");
    assert!(
        has(&p, "`ECSServiceAverageCPUUtilization` has a policy already"),
        "{p:?}"
    );
    let p = problems(&with_scaling(&format!(
        "{{minCapacity: 1, maxCapacity: 6, {CPU}, scheduledActions: [{{scheduledActionName: \"bad name\", schedule: \"every monday\", scalableTargetAction: {{}}}}]}}"
    )));
    assert!(
        has(&p, "`bad name` is not a scheduled action name"),
        "{p:?}"
    );
    assert!(has(&p, "`every monday` is not a schedule"), "{p:?}");
    assert!(
        has(&p, "scalableTargetAction: needs minCapacity or maxCapacity"),
        "{p:?}"
    );
    let p = problems(&with_scaling(
        "{minCapacity: 1, maxCapacity: 6, targetTracking: [{predefinedMetric: Requests, targetValue: 5}]}",
    ));
    assert!(has(&p, "predefinedMetric"), "{p:?}");
}

#[test]
fn a_progressive_workload_scales_from_one_and_the_local_platform_has_no_scaler() {
    let canary = with_route("[]")
        .replacen(
            "      strategy: {rolling: {}}\n",
            &format!("      strategy: {{canary: {{steps: [{{setWeight: 50}}]}}}}\n      autoScaling: {{minCapacity: 0, maxCapacity: 4, {CPU}}}\n"),
            1,
        )
        .replacen(
            "  workloads:\n",
            "  status: {uri: \"s3://state/shop.json\"}\n  workloads:\n",
            1,
        );
    let p = problems(&canary);
    assert!(
        has(
            &p,
            "autoScaling.minCapacity: must be at least 1 for the canary strategy"
        ),
        "{p:?}"
    );
    let local = with_scaling(&format!("{{minCapacity: 1, maxCapacity: 6, {CPU}}}")).replacen(
        "    aws:\n      region: eu-west-1\n      cluster: shop\n      subnets: [subnet-0a]\n      securityGroups: [sg-0a]\n      executionRoleArn: arn:aws:iam::123456789012:role/app-exec\n",
        "    local: {listen: \"127.0.0.1:8080\"}\n",
        1,
    );
    assert!(local.contains("local: {listen"), "fixture edit applied");
    let p = problems(&local);
    assert!(has(&p, "autoScaling: needs the aws platform"), "{p:?}");
}

/// RICH's route with `conditions` and stickiness set by `extra` (YAML lines under
/// `route:`).
fn with_route_extras(extra: &str) -> String {
    with_route("[]").replacen(
        "        additionalTargetGroups: []\n",
        &format!("        additionalTargetGroups: []\n{extra}"),
        1,
    )
}

#[test]
fn route_conditions_take_elbs_shape_and_limits() {
    let app = load(&with_route_extras(
        "        conditions:\n          - {field: host-header, hostHeaderConfig: {values: [\"*.example.com\"]}}\n          - {field: query-string, queryStringConfig: {values: [{key: v, value: \"2\"}]}}\n        targetGroupStickinessConfig: {enabled: true, durationSeconds: 3600}\n",
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let route = app.spec.workloads[0].route.as_ref().expect("route");
    assert_eq!(route.conditions.len(), 2);

    let p = problems(&with_route_extras(
        "        conditions:\n          - {field: host-header, httpHeaderConfig: {httpHeaderName: X, values: [a]}}\n",
    ));
    assert!(
        has(
            &p,
            "conditions[0].httpHeaderConfig: does not go with field `host-header` (it takes `hostHeaderConfig`)"
        ),
        "{p:?}"
    );
    assert!(
        has(&p, "field `host-header` needs `hostHeaderConfig`"),
        "{p:?}"
    );
    let p = problems(&with_route_extras(
        "        conditions:\n          - {field: source-ip, sourceIpConfig: {values: [10.0.0.0/33]}}\n          - {field: http-request-method, httpRequestMethodConfig: {values: [get]}}\n          - {field: http-header, httpHeaderConfig: {httpHeaderName: \"X Bad\", values: [a]}}\n",
    ));
    assert!(has(&p, "`10.0.0.0/33` is not a CIDR block"), "{p:?}");
    assert!(has(&p, "`get` is not an HTTP method in capitals"), "{p:?}");
    assert!(has(&p, "`X Bad` is not an HTTP header name"), "{p:?}");
    let p = problems(&with_route_extras(
        "        conditions:\n          - {field: host-header, hostHeaderConfig: {values: [a.com, b.com, c.com]}}\n          - {field: host-header, hostHeaderConfig: {values: [d.com, e.com]}}\n",
    ));
    assert!(has(&p, "`host-header` may appear once on a rule"), "{p:?}");
    assert!(
        has(
            &p,
            "the rule would have 6 condition values (path patterns included); ELB allows 5 per rule"
        ),
        "{p:?}"
    );
    let p = problems(&with_route_extras(
        "        targetGroupStickinessConfig: {enabled: true}\n",
    ));
    assert!(
        has(
            &p,
            "targetGroupStickinessConfig.durationSeconds: required when stickiness is enabled"
        ),
        "{p:?}"
    );
}

/// RICH as a routed canary whose steps are `steps` (YAML flow list).
fn with_header_steps(steps: &str) -> String {
    with_route("[]")
        .replacen(
            "      strategy: {rolling: {}}\n",
            &format!("      strategy: {{canary: {{steps: {steps}}}}}\n"),
            1,
        )
        .replacen(
            "  workloads:\n",
            "  status: {uri: \"s3://state/shop.json\"}\n  workloads:\n",
            1,
        )
}

#[test]
fn header_routes_take_argos_shape_and_fit_the_alb() {
    let good = with_header_steps(
        r#"[{setHeaderRoute: {name: testers, match: [{headerName: x-canary, headerValue: {exact: "true"}}, {headerName: X-Team, headerValue: {prefix: qa-}}]}}, {pause: {}}, {setHeaderRoute: {name: testers}}, {setWeight: 100}]"#,
    );
    let app = load(&good).unwrap_or_else(|e| panic!("{e}"));
    let tugboat_core::document::Strategy::Canary(c) = &app.spec.workloads[0].strategy else {
        panic!("canary")
    };
    assert_eq!(c.steps.len(), 4);

    let p = problems(&with_header_steps(
        r#"[{setHeaderRoute: {name: testers, match: [{headerName: "x canary", headerValue: {exact: a, prefix: b}}, {headerName: x-a, headerValue: {regex: "^a.*"}}, {headerName: x-b, headerValue: {exact: "a*"}}]}}, {setHeaderRoute: {name: others}}, {setWeight: 100}]"#,
    ));
    assert!(has(&p, "`x canary` is not an HTTP header name"), "{p:?}");
    assert!(
        has(&p, "exactly one of `exact`, `prefix`, `regex` (got 2)"),
        "{p:?}"
    );
    assert!(
        has(
            &p,
            "headerValue.regex: the ALB's http-header condition has no regular expressions"
        ),
        "{p:?}"
    );
    assert!(has(&p, "`*` and `?` are the ALB's wildcards"), "{p:?}");
    assert!(
        has(
            &p,
            "`others` differs from `testers` at steps[0]: a workload has one header route"
        ),
        "{p:?}"
    );

    // The header route takes the route's priority minus one: 0 is no priority.
    let p = problems(&good.replacen("priority: 7", "priority: 1", 1));
    assert!(has(&p, "needs priority 2 or more"), "{p:?}");

    // A route is needed: it is a second rule beside the workload's.
    let routed = with_header_steps(
        r#"[{setHeaderRoute: {name: t, match: [{headerName: x, headerValue: {exact: "1"}}]}}, {setWeight: 100}]"#,
    );
    let start = routed.find("      route:\n").expect("route");
    let end = start
        + routed[start..]
            .find("additionalTargetGroups: []\n")
            .expect("end")
        + "additionalTargetGroups: []\n".len();
    let unrouted = format!("{}{}", &routed[..start], &routed[end..]);
    let p = problems(&unrouted);
    assert!(
        has(&p, "a header route needs the workload's `route`"),
        "{p:?}"
    );
}
