//! AWS failing under the controller, against moto behind the fault proxy
//! (`common::proxy`), with `tugboat run` as a process: the same canary is run fault-free
//! and with 30% of every call (ECS, ELB, SSM, S3: documents, status, models, overrides)
//! throttled, failed with 500/503, reset before or after AWS acted, or answered late.
//! The first RegisterTaskDefinition, CreateService and CreateRule always lose their
//! answer after AWS acted. Both runs must converge, the controller must never crash, no duplicate task-definition
//! revision may appear and no weight may land on a slot without targets. The test
//! prints the convergence time and AWS calls of the faulty run against the fault-free
//! one (ratios, same test run).
//!
//! Both runs also check every call that reached the proxy against the IAM
//! policy `tugboat iam-policy` generates for the document: each call's operation is in
//! `platform::AWS_OPERATIONS`, and each (IAM action, resource) it needs is allowed.
//!
//! moto runs no tasks: the test plays ECS as `aws_kill9.rs` does (services reach their
//! desired count; a slot's targets register a moment after its service wants tasks).

mod common;
mod ops;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use aws_sdk_elasticloadbalancingv2::types::TargetDescription;
use common::moto::{self, World};
use common::proxy::{Call, Calls, Fault, FaultRule, Proxy};
use ops::Kill;
use sha2::Digest;
use tugboat::platform::{AWS_OPERATIONS, Caller};
use tugboat::status::{AppStatus, Phase};
use tugboat_core::iam::{Inputs, Policy};

/// Looks (about 100 ms each) before a slot's targets register once its service wants
/// tasks: weight put on a slot sooner would be seen by the invariant check.
const STARTUP: u32 = 8;
const ACCOUNT: &str = "123456789012";

struct Scenario {
    world: World,
    bucket: String,
    doc_key: String,
    pointer: String,
    prefix: String,
    dir: tempfile::TempDir,
}

impl Scenario {
    async fn new() -> Self {
        let world = moto::world(&["api"], 0).await;
        let config = moto::sdk_config().await;
        let bucket = common::fresh_bucket(&config).await;
        let onnx = b"not really onnx".to_vec();
        let sha = hex::encode(sha2::Sha256::digest(&onnx));
        put(&bucket, "models/v1/model.onnx", onnx).await;
        let meta = format!(r#"{{"version": "v1", "sha256": "{sha}"}}"#);
        put(&bucket, "models/v1/metadata.json", meta.into_bytes()).await;
        let pointer = format!("/tugboat-faults/{}/model-version", moto::unique("m"));
        moto::clients()
            .await
            .ssm
            .put_parameter()
            .name(&pointer)
            .value("v1")
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .send()
            .await
            .expect("model pointer");
        Self {
            world,
            bucket,
            doc_key: "app.yaml".into(),
            pointer,
            prefix: format!("/tugboat-faults/{}", moto::unique("o")),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    fn source(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.doc_key)
    }

    fn document(&self, image: &str) -> String {
        let i = &self.world.infra;
        let (blue, green) = self.world.tg("api");
        format!(
            "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: {name}, environment: test}}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: {cluster}
      subnets: [{subnet}]
      securityGroups: [{sg}]
      executionRoleArn: arn:aws:iam::{ACCOUNT}:role/exec
      taskRoleArn: arn:aws:iam::{ACCOUNT}:role/task
      listenerArn: {listener}
  models:
    - {{name: clf, storeUri: \"s3://{bucket}/models\", versionParameter: \"{pointer}\"}}
  overrides: {{ssmPrefix: {prefix}}}
  status: {{uri: \"s3://{bucket}/status.json\"}}
  workloads:
    - name: api
      image: {image}
      model: clf
      cpu: 256
      memory: 512
      desiredCount: 2
      containerPort: 8000
      route:
        pathPatterns: [\"/api/*\"]
        priority: 10
        targetGroups: {{blue: {blue}, green: {green}}}
      strategy:
        canary:
          steps: [{{setWeight: 20}}, {{pause: {{duration: 1s}}}}, {{setWeight: 100}}]
          scaleDownDelay: 1s
          abortScaleDownDelay: 1s
",
            name = i.app_name,
            cluster = i.cluster,
            subnet = i.subnets[0],
            sg = i.security_groups[0],
            listener = i.listener_arn.as_deref().expect("listener"),
            bucket = self.bucket,
            pointer = self.pointer,
            prefix = self.prefix,
        )
    }

    async fn publish(&self, image: &str) {
        put(
            &self.bucket,
            &self.doc_key,
            self.document(image).into_bytes(),
        )
        .await;
    }

    async fn status(&self) -> Option<AppStatus> {
        let out = moto::clients()
            .await
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key("status.json")
            .send()
            .await
            .ok()?;
        let bytes = out.body.collect().await.ok()?.into_bytes();
        serde_json::from_slice(&bytes).ok()
    }

    fn family(&self) -> String {
        format!("{}-api", self.world.infra.app_name)
    }
}

async fn put(bucket: &str, key: &str, body: Vec<u8>) {
    moto::clients()
        .await
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.into())
        .send()
        .await
        .expect("put object");
}

/// Registered targets of a target group.
async fn targets(tg: &str) -> usize {
    moto::clients()
        .await
        .elb
        .describe_target_health()
        .target_group_arn(tg)
        .send()
        .await
        .expect("describe target health")
        .target_health_descriptions()
        .len()
}

/// ECS's load balancer integration: targets register `STARTUP` looks after a slot's
/// service first wants tasks, and deregister when it wants none.
async fn play_targets(world: &World, wanting: &mut [u32; 2]) {
    let elb = moto::clients().await.elb;
    let (blue, green) = world.tg("api");
    for (i, (service, tg, ip)) in [
        ("api-blue", blue, "10.0.2.1"),
        ("api-green", green, "10.0.2.3"),
    ]
    .into_iter()
    .enumerate()
    {
        let wants = moto::service(world, service)
            .await
            .is_some_and(|(count, _)| count > 0);
        wanting[i] = if wants { wanting[i] + 1 } else { 0 };
        let slot: Vec<TargetDescription> = (0..2)
            .map(|n| {
                TargetDescription::builder()
                    .id(format!("{ip}{n}"))
                    .port(8000)
                    .build()
            })
            .collect();
        let has = targets(&tg).await > 0;
        if wanting[i] > STARTUP && !has {
            elb.register_targets()
                .target_group_arn(&tg)
                .set_targets(Some(slot))
                .send()
                .await
                .expect("register");
        } else if !wants && has {
            elb.deregister_targets()
                .target_group_arn(&tg)
                .set_targets(Some(slot))
                .send()
                .await
                .expect("deregister");
        }
    }
}

/// What one run cost.
#[derive(Debug)]
struct Run {
    /// From `tugboat run` starting to the first deployment serving all traffic.
    first: Duration,
    /// From api:2 published to api:2 stable on green with blue scaled down.
    canary: Duration,
    /// Requests that reached the proxy (every attempt, faulted or not).
    calls: usize,
    injected: std::collections::BTreeMap<&'static str, usize>,
    seen: Vec<Call>,
}

/// The canary api:1 -> api:2 with `tugboat run` talking to AWS through `proxy`.
async fn run(label: &str, proxy: &Proxy) -> (Scenario, Run) {
    let scenario = Scenario::new().await;
    scenario.publish("api:1").await;
    let log = scenario.dir.path().join("tugboat.log");
    let child = ops::tugboat()
        .env("AWS_ENDPOINT_URL", proxy.url())
        .args(["run", "--poll", "200ms", "--resync", "2s"])
        .args(["--http-addr", "127.0.0.1:0", "--source"])
        .arg(scenario.source())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("tugboat starts");
    let mut controller = Kill(child);
    let world = &scenario.world;
    let (blue, green) = world.tg("api");
    let started = Instant::now();
    let deadline = started + Duration::from_secs(150);
    let mut wanting = [0u32; 2];
    let mut published: Option<Instant> = None;
    let mut first = Duration::ZERO;
    let canary = loop {
        moto::settle(world).await;
        play_targets(world, &mut wanting).await;
        let weights = moto::rule_weights(world, 10).await.map(|(_, w)| w);
        if let Some(w) = &weights {
            for (tg, name) in [(&blue, "blue"), (&green, "green")] {
                if w.get(tg).copied().unwrap_or(0) > 0 {
                    assert!(
                        targets(tg).await > 0,
                        "{label}: weight {w:?} on the {name} slot without targets"
                    );
                }
            }
        }
        if let Some(exit) = controller.0.try_wait().expect("try_wait") {
            panic!("{label}: the controller exited ({exit}): {}", tail(&log));
        }
        let status = scenario.status().await;
        let api = status.as_ref().and_then(|s| s.workloads.get("api"));
        let weight = |tg: &String| {
            weights
                .as_ref()
                .and_then(|w| w.get(tg).copied())
                .unwrap_or(0)
        };
        match published {
            None if api.is_some_and(|a| a.phase == Phase::Healthy && a.canary.is_none())
                && weight(&blue) == 100 =>
            {
                first = started.elapsed();
                scenario.publish("api:2").await;
                published = Some(Instant::now());
            }
            Some(at)
                if api.is_some_and(|a| {
                    a.canary.is_none()
                        && a.phase == Phase::Healthy
                        && a.scale_down.is_none()
                        && a.stable.as_ref().and_then(|r| r.slot)
                            == Some(tugboat::document::Slot::Green)
                }) && weight(&green) == 100
                    && weight(&blue) == 0
                    && moto::service(world, "api-blue").await.map(|s| s.0) == Some(0) =>
            {
                break at.elapsed();
            }
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "{label}: never converged (published: {}); status {status:#?}\n{}",
            published.is_some(),
            tail(&log)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        controller.0.try_wait().expect("try_wait").is_none(),
        "{label}: the controller is still running at the end"
    );
    let _ = controller.0.kill();
    let _ = controller.0.wait();
    let mut text = String::new();
    let _ = std::fs::File::open(&log).and_then(|mut f| f.read_to_string(&mut text));
    assert!(
        !text.contains("panicked"),
        "{label}: the controller panicked: {}",
        tail(&log)
    );
    let revisions = moto::revisions(&scenario.family()).await;
    assert_eq!(
        revisions.len(),
        2,
        "{label}: one revision per image, no duplicate: {revisions:?}"
    );
    let (_, definition) = moto::service(world, "api-green").await.expect("green");
    assert!(
        definition.ends_with(":2"),
        "{label}: green runs :2 ({definition})"
    );
    let seen = proxy.calls();
    let run = Run {
        first,
        canary,
        calls: seen.len(),
        injected: proxy.injected(),
        seen,
    };
    (scenario, run)
}

fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(15);
    format!("controller log (last lines):\n{}", lines[from..].join("\n"))
}

/// Percent-decodes a form value.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form(body: &str, key_prefix: &str) -> Vec<String> {
    body.split('&')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(k, _)| k.starts_with(key_prefix))
        .map(|(_, v)| decode(v))
        .collect()
}

/// The table's name of a call the proxy saw: `elbv2:ModifyRule`, `s3:GetObject`.
fn api_of(call: &Call) -> String {
    let op = call.name.rsplit('.').next().unwrap_or(&call.name);
    let service = match call.service.as_str() {
        "elasticloadbalancing" => "elbv2",
        other => other,
    };
    format!("{service}:{op}")
}

/// The (IAM action, resource) pairs AWS checks for one call, read from the request.
fn needs(call: &Call) -> Vec<(String, String)> {
    let region = &call.region;
    let json: serde_json::Value = serde_json::from_str(&call.body).unwrap_or_default();
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let ecs = |rest: &str| format!("arn:aws:ecs:{region}:{ACCOUNT}:{rest}");
    let service_arn = |cluster: &str, service: &str| {
        if service.starts_with("arn:") {
            service.to_string()
        } else {
            ecs(&format!("service/{cluster}/{service}"))
        }
    };
    let tagged = json
        .get("tags")
        .is_some_and(|t| t.as_array().is_some_and(|a| !a.is_empty()));
    let api = api_of(call);
    let one = |action: &str, resource: String| vec![(action.to_string(), resource)];
    match api.as_str() {
        "ecs:DescribeServices" => {
            let cluster = s(&json["cluster"]);
            json["services"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|svc| {
                    (
                        "ecs:DescribeServices".into(),
                        service_arn(&cluster, &s(svc)),
                    )
                })
                .collect()
        }
        "ecs:CreateService" => {
            let arn = service_arn(&s(&json["cluster"]), &s(&json["serviceName"]));
            let mut out = one("ecs:CreateService", arn.clone());
            if tagged {
                out.push(("ecs:TagResource".into(), arn));
            }
            out
        }
        "ecs:UpdateService" => one(
            "ecs:UpdateService",
            service_arn(&s(&json["cluster"]), &s(&json["service"])),
        ),
        "ecs:RegisterTaskDefinition" => {
            let mut out = one("ecs:RegisterTaskDefinition", "*".into());
            if tagged {
                out.push((
                    "ecs:TagResource".into(),
                    ecs(&format!("task-definition/{}:1", s(&json["family"]))),
                ));
            }
            for role in ["taskRoleArn", "executionRoleArn"] {
                if let Some(arn) = json[role].as_str() {
                    out.push(("iam:PassRole".into(), arn.to_string()));
                }
            }
            out
        }
        "ecs:DescribeTaskDefinition" | "ecs:ListTaskDefinitions" => one(&api, "*".into()),
        "elbv2:DescribeRules" | "elbv2:DescribeTags" | "elbv2:DescribeTargetHealth" => {
            one(&api.replace("elbv2:", "elasticloadbalancing:"), "*".into())
        }
        "elbv2:CreateRule" => {
            let listener = form(&call.body, "ListenerArn").pop().unwrap_or_default();
            let mut out = one("elasticloadbalancing:CreateRule", listener.clone());
            if !form(&call.body, "Tags.member").is_empty() {
                let rule = listener.replace(":listener/", ":listener-rule/") + "/new";
                out.push(("elasticloadbalancing:AddTags".into(), rule));
            }
            out
        }
        "elbv2:ModifyRule" => form(&call.body, "RuleArn")
            .into_iter()
            .map(|r| ("elasticloadbalancing:ModifyRule".to_string(), r))
            .collect(),
        "elbv2:SetRulePriorities" => form(&call.body, "RulePriorities.member")
            .into_iter()
            .filter(|v| v.starts_with("arn:"))
            .map(|r| ("elasticloadbalancing:SetRulePriorities".to_string(), r))
            .collect(),
        "ssm:GetParameter" => one(
            "ssm:GetParameter",
            format!(
                "arn:aws:ssm:{region}:{ACCOUNT}:parameter/{}",
                s(&json["Name"]).trim_start_matches('/')
            ),
        ),
        "ssm:GetParametersByPath" => one(
            "ssm:GetParametersByPath",
            format!(
                "arn:aws:ssm:{region}:{ACCOUNT}:parameter/{}",
                s(&json["Path"]).trim_start_matches('/')
            ),
        ),
        "ssm:DescribeParameters" => one("ssm:DescribeParameters", "*".into()),
        "elbv2:DeleteRule" => form(&call.body, "RuleArn")
            .into_iter()
            .map(|r| ("elasticloadbalancing:DeleteRule".to_string(), r))
            .collect(),
        // Application Auto Scaling cannot be scoped to a resource the request names.
        a if a.starts_with("application-autoscaling:") => one(a, "*".into()),
        "s3:GetObject" | "s3:HeadObject" | "s3:PutObject" => {
            let path = call.path.split('?').next().unwrap_or_default();
            let object = format!("arn:aws:s3:::{}", decode(path.trim_start_matches('/')));
            let action = if api == "s3:PutObject" {
                "s3:PutObject"
            } else {
                "s3:GetObject"
            };
            one(action, object)
        }
        other => vec![(format!("unknown call {other}"), String::new())],
    }
}

/// Every call that reached the proxy is a controller call of the table, and the policy
/// allows what it needs.
fn check_against_the_policy(policy: &Policy, calls: &[Call]) {
    let mut checked = std::collections::BTreeSet::new();
    for call in calls {
        let api = api_of(call);
        let row = AWS_OPERATIONS.iter().find(|o| o.api == api);
        assert!(
            row.is_some_and(|r| r.caller == Caller::Controller),
            "the controller called {api} ({} {}), which platform::AWS_OPERATIONS does not \
             list as a controller call",
            call.method,
            call.path
        );
        for (action, resource) in needs(call) {
            assert!(
                policy.allows(&action, &resource),
                "{api} needs {action} on {resource}, which the generated policy does not \
                 allow:\n{}",
                tugboat::cli::iam_policy::render(policy)
            );
            checked.insert(action);
        }
    }
    // The scenario exercises every kind of resource the policy scopes.
    for action in [
        "ecs:CreateService",
        "ecs:UpdateService",
        "ecs:TagResource",
        "iam:PassRole",
        "elasticloadbalancing:CreateRule",
        "elasticloadbalancing:ModifyRule",
        "ssm:GetParameter",
        "ssm:GetParametersByPath",
        "s3:GetObject",
        "s3:PutObject",
    ] {
        assert!(
            checked.contains(action),
            "the scenario never needed {action}: {checked:?}"
        );
    }
}

/// One test, the two runs side by side, so they share the machine's load and the ratios
/// mean something.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_percent_of_calls_failing_still_converge_a_canary_safely() {
    let clean_proxy = Proxy::start(&moto::endpoint()).await;
    let faulty_proxy = Proxy::start_seeded(&moto::endpoint(), 0x3030_3030).await;
    // The creates without a client token (and CreateService, with one) lose their first
    // answer after AWS acted, every run: the case that makes duplicates.
    for create in ["RegisterTaskDefinition", "CreateService", "CreateRule"] {
        faulty_proxy.add(FaultRule::new(create, Calls::First(1), Fault::LostAnswer));
    }
    faulty_proxy.add(FaultRule::any(
        Calls::Share(30),
        Fault::OneOf(vec![
            Fault::Throttle,
            Fault::TooManyRequests,
            Fault::ServerError(500),
            Fault::ServerError(503),
            Fault::Reset,
            Fault::LostAnswer,
            Fault::DelayAnswer(Duration::from_millis(600)),
        ]),
    ));
    // Side by side, so both see the same machine load (and the test takes half as long).
    let ((scenario, clean), (faulty_scenario, faulty)) = tokio::join!(
        run("fault-free", &clean_proxy),
        run("30% faults", &faulty_proxy)
    );
    assert!(
        clean.injected.is_empty(),
        "no fault in the fault-free run: {:?}",
        clean.injected
    );
    // Every call of both runs (retries and faulted attempts included: AWS authorizes
    // each one) against the policy generated for its document.
    for (scenario, run) in [(&scenario, &clean), (&faulty_scenario, &faulty)] {
        let policy = tugboat::cli::iam_policy::for_document(
            &scenario.document("api:2"),
            "app.yaml",
            &Inputs {
                source: Some(scenario.source()),
                lease: None,
            },
        )
        .expect("policy");
        check_against_the_policy(&policy, &run.seen);
    }

    let injected: usize = faulty.injected.values().sum();
    let share = injected as f64 / faulty.calls as f64;
    assert!(
        (0.2..0.4).contains(&share),
        "about 30% of calls faulted: {injected} of {} ({:?})",
        faulty.calls,
        faulty.injected
    );
    for kind in [
        "Throttle",
        "Http500",
        "Http503",
        "Reset",
        "LostAnswer",
        "SlowAnswer",
    ] {
        assert!(
            faulty.injected.get(kind).copied().unwrap_or(0) > 0,
            "the faulty run injected {kind} at least once: {:?}",
            faulty.injected
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(0.001);
    println!(
        "faults: fault-free first deployment {:.1}s, canary {:.1}s, {} AWS calls; \
         30% faults ({injected} injected: {:?}) first deployment {:.1}s ({:.2}x), \
         canary {:.1}s ({:.2}x), both {:.1}s ({:.2}x), {} AWS calls ({:.2}x)",
        clean.first.as_secs_f64(),
        clean.canary.as_secs_f64(),
        clean.calls,
        faulty.injected,
        faulty.first.as_secs_f64(),
        ratio(faulty.first, clean.first),
        faulty.canary.as_secs_f64(),
        ratio(faulty.canary, clean.canary),
        (faulty.first + faulty.canary).as_secs_f64(),
        ratio(faulty.first + faulty.canary, clean.first + clean.canary),
        faulty.calls,
        faulty.calls as f64 / clean.calls.max(1) as f64,
    );
}
