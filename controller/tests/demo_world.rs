//! `.ci/demo_world.py`, which `.ci/demo` builds its world with, run against moto's
//! server: every workload of a manifest can deploy in that world (a model named by
//! `versionParameter` resolves) and reaches its listener rule (the stand-in targets
//! make the first deployment healthy), by `tugboat apply` and `tugboat run --once`
//! processes as the demo runs them.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::moto;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The venv's Python (boto3 and PyYAML come with moto), as `.ci/moto.sh` finds it.
fn python() -> PathBuf {
    let venv = std::env::var("TUGBOAT_VENV").unwrap_or_else(|_| format!("{ROOT}/.venv"));
    let python = PathBuf::from(venv).join("bin/python");
    assert!(
        python.exists(),
        "{} does not exist: run this through .ci/test, which creates the venv (or set \
         TUGBOAT_VENV)",
        python.display()
    );
    python
}

fn tugboat() -> Command {
    moto::endpoint();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tugboat"));
    for (key, default) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", moto::REGION),
    ] {
        if std::env::var(key).is_err() {
            command.env(key, default);
        }
    }
    command
}

fn succeeds(command: &mut Command) -> String {
    let output = command.output().expect("the command runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "{command:?} failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn config(region: &str) -> aws_config::SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .endpoint_url(moto::endpoint());
    if std::env::var("AWS_ACCESS_KEY_ID").is_err() {
        loader = loader.credentials_provider(aws_sdk_ecs::config::Credentials::new(
            "test", "test", None, None, "tests",
        ));
    }
    loader.load().await
}

/// ECS's part that moto leaves out: each service's tasks reach its desired count.
async fn settle(ecs: &aws_sdk_ecs::Client, cluster: &str) {
    let arns = ecs
        .list_services()
        .cluster(cluster)
        .send()
        .await
        .expect("list services")
        .service_arns()
        .to_vec();
    if arns.is_empty() {
        return;
    }
    let described = ecs
        .describe_services()
        .cluster(cluster)
        .set_services(Some(arns))
        .send()
        .await
        .expect("describe services");
    for service in described.services() {
        ecs.update_service()
            .cluster(cluster)
            .service(service.service_name().expect("name"))
            .desired_count(service.desired_count())
            .send()
            .await
            .expect("settle service");
    }
}

#[tokio::test]
async fn the_demo_world_lets_every_stage_workload_deploy_and_reach_its_listener_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let emulated = dir.path().join("stage.yaml");
    let bucket = moto::unique("demo");
    succeeds(
        Command::new(python())
            .arg(format!("{ROOT}/.ci/demo_world.py"))
            .arg(format!("{ROOT}/manifests/stage.yaml"))
            .arg(&bucket)
            .arg(&emulated)
            .env("AWS_ENDPOINT_URL", moto::endpoint()),
    );
    let uri = format!("s3://{bucket}/stage.yaml");
    succeeds(
        tugboat()
            .args(["apply", "-f"])
            .arg(&emulated)
            .args(["--to", &uri]),
    );

    let document: serde_json::Value = serde_saphyr::from_str(
        &std::fs::read_to_string(&emulated).expect("read the emulated manifest"),
    )
    .expect("the emulated manifest is YAML");
    let aws = &document["spec"]["platform"]["aws"];
    let region = aws["region"].as_str().expect("region");
    let cluster = aws["cluster"].as_str().expect("cluster");
    let listener = aws["listenerArn"].as_str().expect("listener");
    let config = config(region).await;
    let ecs = aws_sdk_ecs::Client::new(&config);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&config);

    let mut status = serde_json::Value::Null;
    for _ in 0..6 {
        succeeds(tugboat().args(["run", "--once", "--source", &uri]));
        settle(&ecs, cluster).await;
        status = serde_json::from_str(&succeeds(
            tugboat().args(["status", "--json", "-f"]).arg(&emulated),
        ))
        .expect("status JSON");
        let healthy = ["backend", "ml-model-service"]
            .iter()
            .all(|w| status["workloads"][w]["phase"] == "healthy");
        if healthy {
            break;
        }
    }
    for workload in ["backend", "ml-model-service"] {
        assert_eq!(
            status["workloads"][workload]["phase"], "healthy",
            "{workload}: {}",
            status["workloads"][workload]
        );
    }

    let rules = elb
        .describe_rules()
        .listener_arn(listener)
        .send()
        .await
        .expect("describe rules");
    let mut priorities: Vec<String> = rules
        .rules()
        .iter()
        .filter(|r| r.is_default() != Some(true))
        .filter_map(|r| r.priority().map(str::to_string))
        .collect();
    priorities.sort();
    assert_eq!(priorities, ["10", "20"], "one rule per routed workload");
}
