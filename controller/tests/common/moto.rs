//! Setting up a world in moto's server for one test: VPC, subnets, security group, ECS
//! cluster, ALB with a listener and two target groups per routed workload. Every name is
//! unique, so tests share one server and run in parallel.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use aws_sdk_elasticloadbalancingv2::types as elb;
use tugboat::budget::Budgets;
use tugboat::platform::aws::{AwsClients, AwsPlatform};

use super::Infra;

pub const REGION: &str = "us-east-1";

/// The emulator's endpoint, from `AWS_ENDPOINT_URL` (set by `.ci/test`).
pub fn endpoint() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: these tests run against moto's server. Run them \
             through .ci/test, or start `moto_server -p 5000` and export \
             AWS_ENDPOINT_URL=http://127.0.0.1:5000 AWS_ACCESS_KEY_ID=test \
             AWS_SECRET_ACCESS_KEY=test"
        ),
    }
}

pub async fn sdk_config() -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(REGION))
        .endpoint_url(endpoint());
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ));
    }
    loader.load().await
}

pub async fn clients() -> AwsClients {
    AwsClients::from_sdk_config(&sdk_config().await)
}

/// A fresh platform: no caches, its own budgets. A new one stands for a restart.
pub async fn platform() -> AwsPlatform {
    AwsPlatform::new(clients().await, std::sync::Arc::new(Budgets::new()))
}

/// The AWS side inputs (overrides in SSM, models through SSM and S3), with their own
/// budgets, as a freshly started controller has them.
pub async fn inputs() -> tugboat::runtime::SideInputs {
    tugboat::runtime::SideInputs::aws(&clients().await, std::sync::Arc::new(Budgets::new()))
}

/// A short unique name: `<prefix><pid><n>`, within ELB's 32-character limit.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() % 100_000)
        .unwrap_or(0);
    format!("{prefix}{}x{n}x{nanos}", std::process::id() % 100_000)
}

/// One EC2 Query API call (the controller has no EC2 client). Returns the XML.
async fn ec2(params: &[(&str, &str)]) -> String {
    let mut form: Vec<(&str, &str)> = vec![("Version", "2016-11-15")];
    form.extend_from_slice(params);
    let response = reqwest::Client::new()
        .post(endpoint())
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=test/20260101/{REGION}/ec2/aws4_request, \
                 SignedHeaders=host, Signature=0"
            ),
        )
        .header("Content-Type", "application/x-www-form-urlencoded")
        // Every value here is plain ASCII without `&`, `=` or spaces.
        .body(
            form.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("&"),
        )
        .send()
        .await
        .expect("EC2 call reaches moto");
    let status = response.status();
    let body = response.text().await.expect("EC2 response body");
    assert!(status.is_success(), "EC2 {params:?} failed: {body}");
    body
}

fn xml_value(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml.find(&open).map(|i| i + open.len());
    let start = start.unwrap_or_else(|| panic!("no <{tag}> in {xml}"));
    let end = xml[start..].find('<').expect("closing tag") + start;
    xml[start..end].to_string()
}

/// Everything one test set up.
#[derive(Debug, Clone)]
pub struct World {
    pub infra: Infra,
    pub vpc: String,
    pub load_balancer: String,
    /// Workload -> (blue, green) target group ARNs.
    pub target_groups: BTreeMap<String, (String, String)>,
}

impl World {
    pub fn tg(&self, workload: &str) -> (String, String) {
        self.target_groups[workload].clone()
    }
}

/// A VPC with two subnets, a security group, a cluster, an ALB with an HTTP listener, and
/// two target groups for each of `routed` (each holding `targets` registered IPs that
/// stand for running tasks: nothing registers targets in moto).
pub async fn world(routed: &[&str], targets: usize) -> World {
    let clients = clients().await;
    let vpc = xml_value(
        &ec2(&[("Action", "CreateVpc"), ("CidrBlock", "10.0.0.0/16")]).await,
        "vpcId",
    );
    let mut subnets = Vec::new();
    for (cidr, az) in [("10.0.1.0/24", "us-east-1a"), ("10.0.2.0/24", "us-east-1b")] {
        let xml = ec2(&[
            ("Action", "CreateSubnet"),
            ("VpcId", &vpc),
            ("CidrBlock", cidr),
            ("AvailabilityZone", az),
        ])
        .await;
        subnets.push(xml_value(&xml, "subnetId"));
    }
    let sg_name = unique("sg");
    let security_group = xml_value(
        &ec2(&[
            ("Action", "CreateSecurityGroup"),
            ("GroupName", &sg_name),
            ("GroupDescription", "tugboat-test"),
            ("VpcId", &vpc),
        ])
        .await,
        "groupId",
    );
    let cluster = unique("c");
    clients
        .ecs
        .create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("create cluster");
    let lb = clients
        .elb
        .create_load_balancer()
        .name(unique("lb"))
        .set_subnets(Some(subnets.clone()))
        .security_groups(&security_group)
        .send()
        .await
        .expect("create load balancer");
    let load_balancer = lb.load_balancers()[0]
        .load_balancer_arn()
        .expect("lb arn")
        .to_string();
    let listener = clients
        .elb
        .create_listener()
        .load_balancer_arn(&load_balancer)
        .protocol(elb::ProtocolEnum::Http)
        .port(80)
        .default_actions(
            elb::Action::builder()
                .r#type(elb::ActionTypeEnum::FixedResponse)
                .fixed_response_config(
                    elb::FixedResponseActionConfig::builder()
                        .status_code("404")
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .expect("create listener");
    let listener_arn = listener.listeners()[0]
        .listener_arn()
        .expect("listener arn")
        .to_string();
    let mut target_groups = BTreeMap::new();
    for (i, workload) in routed.iter().enumerate() {
        let mut pair = Vec::new();
        for slot in ["b", "g"] {
            let tg = clients
                .elb
                .create_target_group()
                .name(unique(&format!("t{slot}")))
                .protocol(elb::ProtocolEnum::Http)
                .port(8000)
                .vpc_id(&vpc)
                .target_type(elb::TargetTypeEnum::Ip)
                .send()
                .await
                .expect("create target group");
            let arn = tg.target_groups()[0]
                .target_group_arn()
                .expect("tg arn")
                .to_string();
            let ips = (0..targets).map(|t| format!("10.0.1.{}", 10 + i * 20 + t));
            if targets > 0 {
                clients
                    .elb
                    .register_targets()
                    .target_group_arn(&arn)
                    .set_targets(Some(
                        ips.map(|ip| elb::TargetDescription::builder().id(ip).port(8000).build())
                            .collect(),
                    ))
                    .send()
                    .await
                    .expect("register targets");
            }
            pair.push(arn);
        }
        target_groups.insert(workload.to_string(), (pair[0].clone(), pair[1].clone()));
    }
    World {
        infra: Infra {
            app_name: unique("app"),
            cluster,
            subnets,
            security_groups: vec![security_group],
            listener_arn: Some(listener_arn),
            status_uri: None,
        },
        vpc,
        load_balancer,
        target_groups,
    }
}

/// Plays ECS's part that moto leaves out: every service of the cluster reaches its
/// desired count (moto only sets runningCount on UpdateService).
pub async fn settle(world: &World) {
    let clients = clients().await;
    let names = clients
        .ecs
        .list_services()
        .cluster(&world.infra.cluster)
        .send()
        .await
        .expect("list services")
        .service_arns()
        .to_vec();
    for batch in names.chunks(10) {
        let described = clients
            .ecs
            .describe_services()
            .cluster(&world.infra.cluster)
            .set_services(Some(batch.to_vec()))
            .send()
            .await
            .expect("describe services");
        for service in described.services() {
            if service.running_count() != service.desired_count() || service.pending_count() != 0 {
                clients
                    .ecs
                    .update_service()
                    .cluster(&world.infra.cluster)
                    .service(service.service_name().expect("name"))
                    .desired_count(service.desired_count())
                    .send()
                    .await
                    .expect("settle service");
            }
        }
    }
}

/// Active revisions of a family.
pub async fn revisions(family: &str) -> Vec<String> {
    clients()
        .await
        .ecs
        .list_task_definitions()
        .family_prefix(family)
        .send()
        .await
        .expect("list task definitions")
        .task_definition_arns()
        .iter()
        .filter(|arn| arn.contains(&format!("task-definition/{family}:")))
        .cloned()
        .collect()
}

/// (desired count, task definition ARN) of a service.
pub async fn service(world: &World, name: &str) -> Option<(i32, String)> {
    let out = clients()
        .await
        .ecs
        .describe_services()
        .cluster(&world.infra.cluster)
        .services(name)
        .send()
        .await
        .expect("describe services");
    out.services().first().map(|s| {
        (
            s.desired_count(),
            s.task_definition().unwrap_or_default().to_string(),
        )
    })
}

/// Target group ARN -> weight of the listener rule at `priority`.
pub async fn rule_weights(world: &World, priority: u32) -> Option<(String, BTreeMap<String, i32>)> {
    let rules = clients()
        .await
        .elb
        .describe_rules()
        .listener_arn(world.infra.listener_arn.as_deref().expect("listener"))
        .send()
        .await
        .expect("describe rules");
    let rule = rules
        .rules()
        .iter()
        .find(|r| r.priority() == Some(&priority.to_string()))?;
    let weights = rule
        .actions()
        .iter()
        .filter_map(|a| a.forward_config())
        .flat_map(|f| f.target_groups())
        .map(|t| {
            (
                t.target_group_arn().unwrap_or_default().to_string(),
                t.weight().unwrap_or(0),
            )
        })
        .collect();
    Some((rule.rule_arn().unwrap_or_default().to_string(), weights))
}
