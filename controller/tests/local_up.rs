//! `tugboat up` end to end: the controller as a process, the real workload binaries as
//! its children, real HTTP through its router.

mod local_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use local_support::{Up, alive, children_of, document, eventually, free_port, workload_bins};

const STARTUP: Duration = Duration::from_secs(120);

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn features() -> serde_json::Value {
    let text = std::fs::read_to_string(local_support::repo_root().join("bench/predict.json"))
        .expect("bench/predict.json");
    serde_json::from_str(&text).expect("JSON")
}

/// (status, target group, model version) of one prediction at `path`.
async fn predict(client: &reqwest::Client, port: u16, path: &str) -> Option<(u16, String, String)> {
    let r = client
        .post(format!("http://127.0.0.1:{port}{path}"))
        .json(&features())
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let group = r
        .headers()
        .get("x-tugboat-target-group")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    let version = body["model_version"].as_str().unwrap_or("").to_string();
    Some((status, group, version))
}

/// The router's weight of `group` in `rule`, from its /metrics.
async fn weight(port: u16, rule: &str, group: &str) -> Option<u32> {
    let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let needle = format!("tugboat_router_weight{{rule=\"{rule}\",target_group=\"{group}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&needle))
        .and_then(|v| v.trim().parse().ok())
}

fn condition_true(status: &serde_json::Value, kind: &str) -> Option<String> {
    status["conditions"]
        .as_array()?
        .iter()
        .find_map(|c| (c["type"] == kind && c["status"] == true).then(|| c["message"].to_string()))
}

#[tokio::test]
async fn a_model_canary_splits_real_traffic_by_its_weights_and_promotes_from_the_inbox() {
    let bins = workload_bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let doc = dir.path().join("local.yaml");
    let steps = "[{setWeight: 30}, {pause: {}}, {setWeight: 100}]";
    write_atomically(&doc, &document(port, &state, "v1", steps));
    let up = Up::start(&doc, &bins);
    let client = reqwest::Client::new();

    let first = eventually(
        &up,
        STARTUP,
        "a first prediction through the router",
        || async {
            predict(&client, port, "/api/predict")
                .await
                .filter(|p| p.0 == 200)
        },
    )
    .await;
    assert_eq!(first.1, "backend-blue");
    assert_eq!(first.2, "v1");

    // A new model version: a canary slot with v2 at 30% of /ml/* traffic.
    write_atomically(&doc, &document(port, &state, "v2", steps));
    eventually(&up, STARTUP, "the canary at weight 30", || async {
        (weight(port, "ml-model-service", "ml-green").await == Some(30)).then_some(())
    })
    .await;

    let mut by_group = BTreeMap::<String, u32>::new();
    for _ in 0..1000 {
        let (status, group, version) = predict(&client, port, "/ml/predict")
            .await
            .expect("the router answers");
        assert_eq!(status, 200, "{group}");
        let expected = if group == "ml-green" { "v2" } else { "v1" };
        assert_eq!(version, expected, "{group} serves {expected}");
        *by_group.entry(group).or_default() += 1;
    }
    let green = by_group.get("ml-green").copied().unwrap_or(0);
    assert!(
        (250..=350).contains(&green),
        "the canary served {green} of 1000 at weight 30 (5 points allowed): {by_group:?}"
    );
    // The backend reaches inference through the router too: both versions answer it.
    let mut versions = BTreeMap::<String, u32>::new();
    for _ in 0..200 {
        if let Some((200, _, v)) = predict(&client, port, "/api/predict").await {
            *versions.entry(v).or_default() += 1;
        }
    }
    assert!(
        versions.contains_key("v1") && versions.contains_key("v2"),
        "backend traffic follows the inference canary: {versions:?}"
    );

    // The rollout holds at the pause until promoted through the file inbox.
    let inbox = state.join("overrides/ml-model-service");
    std::fs::create_dir_all(&inbox).expect("inbox");
    std::fs::write(inbox.join("action"), "promote\n").expect("promote");
    eventually(&up, STARTUP, "all traffic on the canary", || async {
        (weight(port, "ml-model-service", "ml-green").await == Some(100)
            && weight(port, "ml-model-service", "ml-blue").await == Some(0))
        .then_some(())
    })
    .await;
    let after = predict(&client, port, "/ml/predict").await.expect("answer");
    assert_eq!(
        (after.0, after.1.as_str(), after.2.as_str()),
        (200, "ml-green", "v2")
    );
    eventually(&up, STARTUP, "the rollout to finish", || async {
        let s = up.status().await?;
        (s["workloads"]["ml-model-service"]["phase"] == "healthy").then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_invalid_edit_keeps_the_last_good_state_and_a_sigkilled_controller_leaves_no_child() {
    let bins = workload_bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let doc = dir.path().join("local.yaml");
    write_atomically(&doc, &document(port, &state, "v1", "[{setWeight: 100}]"));
    let mut up = Up::start(&doc, &bins);
    let client = reqwest::Client::new();
    eventually(&up, STARTUP, "a first prediction", || async {
        predict(&client, port, "/api/predict")
            .await
            .filter(|p| p.0 == 200)
    })
    .await;

    let good = std::fs::read_to_string(&doc).expect("read");
    write_atomically(&doc, &good.replace("cpu: 256", "cpu: 300"));
    let why = eventually(&up, STARTUP, "the DocumentInvalid condition", || async {
        condition_true(&up.status().await?, "DocumentInvalid")
    })
    .await;
    assert!(why.contains("cpu"), "the status says what is wrong: {why}");
    let still = predict(&client, port, "/api/predict")
        .await
        .expect("answer");
    assert_eq!(still.0, 200, "the last good state keeps serving");

    let controller = up.child.id();
    let children = children_of(controller);
    assert_eq!(
        children.len(),
        2,
        "backend and inference run as children: {children:?}"
    );
    assert!(children.iter().all(|p| alive(*p)));
    up.child.kill().expect("SIGKILL the controller");
    let _ = up.child.wait();
    let deadline = Instant::now() + Duration::from_secs(5);
    while children.iter().any(|p| alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let left: Vec<_> = children.iter().filter(|p| alive(**p)).collect();
    assert!(
        left.is_empty(),
        "children outlived a SIGKILLed controller by 5 s: {left:?}"
    );
}

#[tokio::test]
async fn a_dead_child_is_restarted_and_sigterm_stops_every_child_before_the_controller_exits() {
    let bins = workload_bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let doc = dir.path().join("local.yaml");
    write_atomically(&doc, &document(port, &state, "v1", "[{setWeight: 100}]"));
    let mut up = Up::start(&doc, &bins);
    let client = reqwest::Client::new();
    eventually(&up, STARTUP, "a first prediction", || async {
        predict(&client, port, "/api/predict")
            .await
            .filter(|p| p.0 == 200)
    })
    .await;
    // A child that dies is restarted (a new pid) and serves again.
    let before = children_of(up.child.id());
    assert_eq!(before.len(), 2, "{before:?}");
    let victim = before[0];
    std::process::Command::new("kill")
        .args(["-9", &victim.to_string()])
        .status()
        .expect("kill");
    let children = eventually(&up, STARTUP, "a restarted child serving", || async {
        let now = children_of(up.child.id());
        let ok = predict(&client, port, "/api/predict")
            .await
            .is_some_and(|p| p.0 == 200);
        (ok && now.len() == 2 && !now.contains(&victim)).then_some(now)
    })
    .await;
    assert!(
        up.log().contains("signal: 9 (SIGKILL)"),
        "{}",
        local_support::tail(&up.log(), 20)
    );
    std::process::Command::new("kill")
        .arg(up.child.id().to_string())
        .status()
        .expect("kill");
    assert_eq!(
        up.wait_exit(Duration::from_secs(30)),
        Some(0),
        "{}",
        up.log()
    );
    assert!(
        children.iter().all(|p| !alive(*p)),
        "every child is gone when the controller has exited"
    );
    let logs = std::fs::read_dir(state.join("logs"))
        .expect("logs dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect::<Vec<_>>();
    assert!(
        logs.iter().any(|f| f.starts_with("backend-blue"))
            && logs.iter().any(|f| f.starts_with("ml-model-service-blue")),
        "logs per workload and slot are kept in the state directory: {logs:?}"
    );
}

/// A document with one rolling workload running `image`.
fn one_workload(listen: u16, state: &Path, image: &str) -> String {
    format!(
        r#"apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: bad, environment: local}}
spec:
  platform:
    local: {{listen: "127.0.0.1:{listen}", stateDir: "{state}"}}
  workloads:
    - name: worker
      image: "{image}"
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8000
      strategy: {{rolling: {{}}}}
"#,
        state = state.display()
    )
}

#[test]
fn a_missing_binary_says_how_to_build_it_and_nothing_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let empty = dir.path().join("bin");
    std::fs::create_dir_all(&empty).expect("dir");
    let doc = dir.path().join("local.yaml");
    write_atomically(
        &doc,
        &one_workload(free_port(), &dir.path().join("s"), "backend"),
    );
    let mut up = Up::start(&doc, &empty);
    assert_eq!(up.wait_exit(Duration::from_secs(30)), Some(1));
    let log = up.log();
    assert!(
        log.contains("workload worker")
            && log.contains("cargo build")
            && log.contains("-p tugboat-backend --bin backend"),
        "{log}"
    );
}

#[test]
fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let doc = dir.path().join("local.yaml");
    write_atomically(&doc, &one_workload(port, &dir.path().join("s"), "backend"));
    let mut up = Up::start(&doc, &workload_bins());
    assert_eq!(up.wait_exit(Duration::from_secs(30)), Some(1));
    let log = up.log();
    assert!(
        log.contains(&format!("127.0.0.1:{port}")) && log.contains("in use"),
        "{log}"
    );
}

#[tokio::test]
async fn a_child_that_exits_at_once_is_shown_with_its_last_lines_and_restarted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("crash.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"cannot open the model: no such file\" >&2\nexit 3\n",
    )
    .expect("script");
    std::process::Command::new("chmod")
        .args(["+x"])
        .arg(&script)
        .status()
        .expect("chmod");
    let doc = dir.path().join("local.yaml");
    write_atomically(
        &doc,
        &one_workload(free_port(), &dir.path().join("s"), "./crash.sh"),
    );
    let up = Up::start(&doc, dir.path());
    eventually(
        &up,
        Duration::from_secs(60),
        "a second early exit",
        || async {
            let log = up.log();
            (log.matches("exited at once").count() >= 2).then_some(())
        },
    )
    .await;
    let log = up.log();
    assert!(
        log.contains("worker/service#0 exited at once")
            && log.contains("cannot open the model: no such file")
            && log.contains("exit status: 3"),
        "{}",
        local_support::tail(&log, 40)
    );
}

#[tokio::test]
async fn a_canary_that_never_passes_its_health_check_is_aborted_and_stable_keeps_every_request() {
    let bins = workload_bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let doc = dir.path().join("local.yaml");
    let steps = "[{setWeight: 50}, {pause: {}}, {setWeight: 100}]";
    let with_deadline = |text: String| {
        text.replace(
            "abortScaleDownDelay: 1s",
            "abortScaleDownDelay: 1s\n          progressDeadline: 6s",
        )
    };
    write_atomically(&doc, &with_deadline(document(port, &state, "v1", steps)));
    let up = Up::start(&doc, &bins);
    let client = reqwest::Client::new();
    eventually(&up, STARTUP, "a first prediction", || async {
        predict(&client, port, "/ml/predict")
            .await
            .filter(|p| p.0 == 200)
    })
    .await;

    // A bad revision: it runs, but never passes its health check.
    let bad = with_deadline(document(port, &state, "v1", steps))
        .replace("localhost:8002/ready", "localhost:8002/never-ready");
    write_atomically(&doc, &bad);
    let mut served = BTreeMap::<String, u32>::new();
    let deadline = Instant::now() + STARTUP;
    loop {
        let (status, group, _) = predict(&client, port, "/ml/predict").await.expect("answer");
        assert_eq!(
            status, 200,
            "stable keeps serving while the canary is unhealthy"
        );
        *served.entry(group).or_default() += 1;
        let aborted = match up.status().await {
            Some(s) => s["workloads"]["ml-model-service"]["phase"] == "aborted",
            None => false,
        };
        if aborted {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the bad canary was not aborted; log:\n{}",
            local_support::tail(&up.log(), 60)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        served.keys().collect::<Vec<_>>(),
        ["ml-blue"],
        "no request reached the unhealthy canary: {served:?}"
    );
    assert_eq!(weight(port, "ml-model-service", "ml-blue").await, Some(100));
}
