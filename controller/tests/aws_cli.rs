//! `tugboat run` and `tugboat status` as processes against moto's server: one pass with
//! `--once`, the status table it leaves behind, and a graceful exit on SIGTERM.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use common::moto::{self, World};

/// The head every document here shares: the application on `world`'s infrastructure,
/// status in the file `status`, and `extra` spec lines (e.g. the overrides prefix).
fn head(world: &World, status: &std::path::Path, extra: &str) -> String {
    let i = &world.infra;
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
      executionRoleArn: arn:aws:iam::123456789012:role/exec
      listenerArn: {listener}
{extra}  status: {{uri: \"file://{status}\"}}
  workloads:
",
        name = i.app_name,
        cluster = i.cluster,
        subnet = i.subnets[0],
        sg = i.security_groups[0],
        listener = i.listener_arn.as_deref().expect("listener"),
        status = status.display(),
    )
}

/// The routed canary `api` on `image` with `steps`, as a workload entry.
fn api(world: &World, image: &str, steps: &str) -> String {
    let (blue, green) = world.tg("api");
    format!(
        "    - name: api
      image: {image}
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
          steps: {steps}
"
    )
}

fn document(world: &World, status: &std::path::Path) -> String {
    head(world, status, "")
        + &api(world, "api:1", "[{setWeight: 50}, {setWeight: 100}]")
        + "    - name: worker
      image: worker:1
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 9000
      strategy: {rolling: {}}
"
}

fn tugboat() -> Command {
    moto::endpoint();
    let mut command = Command::new(env!("CARGO_BIN_EXE_tugboat"));
    command.env("AWS_REGION", moto::REGION);
    for (key, default) in [
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
    ] {
        if std::env::var(key).is_err() {
            command.env(key, default);
        }
    }
    command
}

#[tokio::test]
async fn run_once_makes_a_pass_and_status_shows_what_it_left() {
    let world = moto::world(&["api"], 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status.json");
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, document(&world, &status)).expect("write manifest");

    let output = tugboat()
        .args(["run", "--once", "--source"])
        .arg(format!("file://{}", manifest.display()))
        .output()
        .expect("tugboat runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "run --once failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    let actions: Vec<&str> = summary["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .filter_map(|a| a["action"].as_str())
        .collect();
    assert!(actions.contains(&"RegisterTaskDefinition"), "{actions:?}");
    assert!(actions.contains(&"CreateService"), "{actions:?}");
    assert_eq!(summary["statusWritten"], true);

    let table = tugboat()
        .args(["status", "-f"])
        .arg(&manifest)
        .output()
        .expect("tugboat status runs");
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(table.status.success(), "{text}");
    assert!(text.lines().any(|l| l.starts_with("WORKLOAD")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("api ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("worker ")), "{text}");
}

#[tokio::test]
async fn run_exits_cleanly_on_sigterm_after_its_pass() {
    let world = moto::world(&["api"], 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status.json");
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, document(&world, &status)).expect("write manifest");

    let mut child = tugboat()
        .args(["run", "--poll", "200ms", "--resync", "1s"])
        .args(["--http-addr", "127.0.0.1:0", "--source"])
        .arg(format!("file://{}", manifest.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tugboat starts");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    // Wait for a finished pass: the logs are JSON, one event a line.
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.expect("log line");
        // A pass that failed ends the wait too, so the test fails instead of hanging.
        let done = line.contains("pass finished") || line.contains("pass failed");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(
        seen.last().is_some_and(|l| l.contains("pass finished")),
        "no pass finished: {seen:#?}"
    );
    let event: serde_json::Value =
        serde_json::from_str(seen.last().expect("a line")).expect("JSON log line");
    assert_eq!(event["span"]["name"], "pass", "{event}");

    // The controller's endpoint: ready after a pass, with its metrics and status.
    let http_addr = seen
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|e| e["fields"]["http_addr"].as_str().map(str::to_string))
        .expect("the endpoint's address is logged");
    let get = |path: &str| {
        let url = format!("http://{http_addr}{path}");
        async move {
            let r = reqwest::get(&url).await.expect("endpoint answers");
            (r.status().as_u16(), r.text().await.expect("body"))
        }
    };
    assert_eq!(get("/healthz").await.0, 200);
    assert_eq!(get("/readyz").await.0, 200);
    let (_, metrics) = get("/metrics").await;
    let passes: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("tugboat_passes_total "))
        .and_then(|n| n.parse().ok())
        .expect("a pass counter");
    assert!(passes >= 1, "{metrics}");
    assert!(
        metrics.contains("tugboat_aws_calls_total{kind=\"mutate\"}"),
        "{metrics}"
    );
    let (code, status) = get("/status").await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert!(status["workloads"]["api"]["phase"].is_string(), "{status}");

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    let exit = child.wait().expect("tugboat exits");
    assert!(exit.success(), "exit {exit:?}; logs {rest:#?}");
    assert!(
        rest.iter().any(|l| l.contains("shutting down")),
        "{rest:#?}"
    );
}

#[tokio::test]
async fn diff_against_live_aws_changes_nothing_and_shows_what_run_would_do() {
    let world = moto::world(&["api"], 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status.json");
    let manifest = dir.path().join("app.yaml");
    std::fs::write(&manifest, document(&world, &status)).expect("write manifest");

    let diff = tugboat()
        .args(["diff", "-f"])
        .arg(&manifest)
        .output()
        .expect("diff runs");
    let text = String::from_utf8_lossy(&diff.stdout);
    assert_eq!(
        diff.status.code(),
        Some(2),
        "{text}\n{}",
        String::from_utf8_lossy(&diff.stderr)
    );
    assert!(text.contains("Observing cost"), "{text}");
    assert!(text.contains("+ create service api-blue"), "{text}");
    assert!(text.contains("+ create service worker"), "{text}");
    assert!(
        moto::service(&world, "api-blue").await.is_none(),
        "a diff must not create anything"
    );
    assert!(!status.exists(), "a diff must not write status");

    // After the pass that `run` makes, the live diff shows only what is left.
    let run = tugboat()
        .args(["run", "--once", "--source"])
        .arg(format!("file://{}", manifest.display()))
        .output()
        .expect("tugboat runs");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let diff = tugboat()
        .args(["diff", "-f"])
        .arg(&manifest)
        .output()
        .expect("diff runs");
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(!text.contains("+ create service"), "{text}");
}

#[test]
fn run_once_on_a_local_document_points_to_tugboat_up() {
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../manifests/local.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_tugboat"))
        .args(["run", "--once", "--source"])
        .arg(format!("file://{manifest}"))
        .output()
        .expect("tugboat runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("--once is not available on the local platform")
            && stderr.contains("tugboat up -f"),
        "says why and what to run: {stderr}"
    );
}

/// A canary with a manual pause, steered through the SSM parameters under `prefix`.
fn paused_canary_document(
    world: &World,
    status: &std::path::Path,
    prefix: &str,
    image: &str,
) -> String {
    head(
        world,
        status,
        &format!("  overrides: {{ssmPrefix: {prefix}}}\n"),
    ) + &api(
        world,
        image,
        "[{setWeight: 20}, {pause: {}}, {setWeight: 100}]",
    )
}

/// `tugboat run --once` on `manifest`, then ECS's part (tasks reach their count).
async fn pass_once(world: &World, manifest: &std::path::Path) {
    let output = tugboat()
        .args(["run", "--once", "--source"])
        .arg(format!("file://{}", manifest.display()))
        .output()
        .expect("tugboat runs");
    assert!(
        output.status.success(),
        "run --once failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    moto::settle(world).await;
}

/// The persisted status of workload `api`.
fn api_status(status: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(status).expect("status file");
    let status: serde_json::Value = serde_json::from_str(&text).expect("status JSON");
    status["workloads"]["api"].clone()
}

/// Passes until `api` is in `phase` (at most `passes`).
async fn pass_until(
    world: &World,
    manifest: &std::path::Path,
    status: &std::path::Path,
    phase: &str,
) {
    for _ in 0..12 {
        pass_once(world, manifest).await;
        if api_status(status)["phase"] == phase {
            return;
        }
    }
    panic!("api never reached {phase}: {}", api_status(status));
}

async fn put_action(prefix: &str, value: &str) {
    moto::clients()
        .await
        .ssm
        .put_parameter()
        .name(format!("{prefix}/api/action"))
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("put the action parameter");
}

/// The green (canary) weight of the rule at priority 10.
async fn green_weight(world: &World) -> i32 {
    let (_, weights) = moto::rule_weights(world, 10).await.expect("the rule");
    weights[&world.tg("api").1]
}

#[tokio::test]
async fn a_promote_left_in_ssm_does_not_skip_a_pause_after_the_status_is_lost() {
    let world = moto::world(&["api"], 2).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let status = dir.path().join("status.json");
    let manifest = dir.path().join("app.yaml");
    let prefix = format!("/tugboat-test/{}", moto::unique("p"));
    let write = |image: &str| {
        std::fs::write(
            &manifest,
            paused_canary_document(&world, &status, &prefix, image),
        )
        .expect("write manifest")
    };
    write("api:1");
    pass_until(&world, &manifest, &status, "healthy").await;

    // A rollout waits at its manual pause; the operator promotes it and it completes.
    write("api:2");
    pass_until(&world, &manifest, &status, "paused").await;
    assert_eq!(green_weight(&world).await, 20);
    put_action(&prefix, "promote").await;
    pass_until(&world, &manifest, &status, "healthy").await;

    // The next rollout waits at the same pause. The old `promote` is still in SSM.
    write("api:3");
    pass_until(&world, &manifest, &status, "paused").await;
    let (_, weights) = moto::rule_weights(&world, 10).await.expect("the rule");
    assert_eq!(weights.values().copied().min(), Some(20), "{weights:?}");

    // The status is lost: the old promote must not skip the pause.
    std::fs::remove_file(&status).expect("lose the status");
    let canary_weight = || async {
        let (_, weights) = moto::rule_weights(&world, 10).await.expect("the rule");
        weights.values().copied().min().expect("two target groups")
    };
    for _ in 0..2 {
        pass_once(&world, &manifest).await;
        assert_eq!(
            canary_weight().await,
            20,
            "the pause was skipped: {}",
            api_status(&status)
        );
    }
    let api = api_status(&status);
    assert_eq!(api["phase"], "paused", "{api}");
    let events = api["events"].as_array().expect("events");
    assert!(
        events.iter().any(|e| e["reason"] == "OperatorPromote"
            && e["message"].as_str().is_some_and(
                |m| m.contains("ignored") && m.contains(&format!("{prefix}/api/action"))
            )),
        "an event says the promote was not applied and where to write it: {api}"
    );

    // A promote written now acts.
    put_action(&prefix, "promote").await;
    pass_once(&world, &manifest).await;
    assert_eq!(
        canary_weight().await,
        0,
        "promoted: the canary takes all traffic, the old slot none"
    );
}
