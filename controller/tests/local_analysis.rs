//! A model canary on the local platform judged by analysis on the router's own metrics:
//! `tugboat up` as a process, the real inference binary as its children, real HTTP load
//! through its router, and one `cloudwatch` template (the 5xx share of the canary's
//! target group) answered from the router's counters, as on AWS from CloudWatch.

mod local_support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use local_support::{Up, document, eventually, free_port, workload_bins};

const STARTUP: Duration = Duration::from_secs(120);

fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

/// The analysis step between two weights, and its template: the canary's 5xx share over
/// the last 10 s, at least 20 requests behind each measurement.
const STEPS: &str = "[{setWeight: 50}, {analysis: {templates: [{templateName: error-rate}], \
                     args: [{name: canary-target-group, valueFrom: canaryTargetGroup}]}}, \
                     {setWeight: 100}]";

const TEMPLATES: &str = r#"  analysisTemplates:
    - name: error-rate
      args: [{name: canary-target-group}]
      provider:
        cloudwatch: {period: 1s, window: 10s, targetGroup: "{{args.canary-target-group}}"}
      query: 100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)
      successCondition: result < 5
      failureCondition: result >= 20
      # The window is the target group's, not the revision's: the wait keeps the aborted
      # bad version's answers on the same slot out of the good version's measurements.
      initialDelay: 11s
      interval: 2s
      count: 3
      minimumSamples: 20
      sampleQuery: sum(RequestCount)
"#;

/// The test document for `version`, with the analysis template, and the inference
/// service's fault switch set to `fault_rate` (none when `None`).
fn analysed(port: u16, state: &Path, version: &str, fault_rate: Option<&str>) -> String {
    let text = document(port, state, version, STEPS)
        .replace("  models:\n", &format!("{TEMPLATES}  models:\n"));
    match fault_rate {
        None => text,
        Some(rate) => {
            let plain = "environment: {LOG_LEVEL: info}";
            assert_eq!(text.matches(plain).count(), 1, "the inference environment");
            text.replace(
                plain,
                &format!("environment: {{LOG_LEVEL: info, FAULT_RATE: \"{rate}\"}}"),
            )
        }
    }
}

/// Requests to `/ml/predict` in a loop until stopped; answers counted by target group
/// and status.
struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<BTreeMap<(String, u16), u64>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start(port: u16) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(BTreeMap::new()));
        let features: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(local_support::repo_root().join("bench/predict.json"))
                .expect("bench/predict.json"),
        )
        .expect("JSON");
        let task = tokio::spawn({
            let (stop, seen) = (stop.clone(), seen.clone());
            async move {
                let client = reqwest::Client::new();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(r) = client
                        .post(format!("http://127.0.0.1:{port}/ml/predict"))
                        .json(&features)
                        .send()
                        .await
                    else {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    };
                    let group = r
                        .headers()
                        .get("x-tugboat-target-group")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    let status = r.status().as_u16();
                    *seen
                        .lock()
                        .expect("lock")
                        .entry((group, status))
                        .or_default() += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        });
        Self { stop, seen, task }
    }

    fn seen(&self) -> BTreeMap<(String, u16), u64> {
        self.seen.lock().expect("lock").clone()
    }

    async fn stop(self) -> BTreeMap<(String, u16), u64> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.seen.lock().expect("lock").clone()
    }
}

fn ml(status: &serde_json::Value) -> &serde_json::Value {
    &status["workloads"]["ml-model-service"]
}

#[tokio::test]
async fn a_bad_model_version_is_rolled_back_by_analysis_on_the_routers_metrics_and_a_good_one_promoted()
 {
    let bins = workload_bins();
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let port = free_port();
    let doc = dir.path().join("local.yaml");
    write_atomically(&doc, &analysed(port, &state, "v1", None));
    let up = Up::start(&doc, &bins);
    eventually(&up, STARTUP, "the first deployment to settle", || async {
        let s = up.status().await?;
        (ml(&s)["phase"] == "healthy").then_some(())
    })
    .await;
    let load = Load::start(port);

    // A deliberately bad version: v2 with half of its predictions answered 500.
    write_atomically(&doc, &analysed(port, &state, "v2", Some("0.5")));
    let aborted = eventually(&up, STARTUP, "the bad canary to be aborted", || async {
        let s = up.status().await?;
        (ml(&s)["phase"] == "aborted").then_some(s)
    })
    .await;
    let runs = ml(&aborted)["analysisRuns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let failed: Vec<_> = runs.iter().filter(|r| r["phase"] == "failed").collect();
    assert_eq!(
        failed.len(),
        1,
        "one failed analysis run aborted the canary: {runs:#?}"
    );
    let measured = failed[0]["metrics"][0]["measurements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        measured.iter().any(|m| m["value"]
            .as_str()
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|v| (20.0..=80.0).contains(&v))),
        "the failing measurement is the canary's real 5xx share (~50%): {measured:#?}"
    );
    // Weight goes back to stable and is read back there before anything else.
    eventually(&up, STARTUP, "every request back on stable", || async {
        let before = load.seen();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = load.seen();
        let green_since = after
            .iter()
            .filter(|((g, _), _)| g == "ml-green")
            .map(|(k, n)| n - before.get(k).copied().unwrap_or(0))
            .sum::<u64>();
        (green_since == 0).then_some(())
    })
    .await;
    let seen = load.seen();
    assert!(
        seen.get(&("ml-green".to_string(), 500))
            .copied()
            .unwrap_or(0)
            > 0,
        "the bad canary did get traffic (so analysis, not health, stopped it): {seen:?}"
    );
    assert_eq!(
        seen.get(&("ml-blue".to_string(), 500))
            .copied()
            .unwrap_or(0),
        0,
        "stable never failed: {seen:?}"
    );

    // The same version without the fault: the analysis passes and the canary is promoted.
    write_atomically(&doc, &analysed(port, &state, "v2", None));
    let done = eventually(&up, STARTUP, "the good canary to be promoted", || async {
        let s = up.status().await?;
        let m = ml(&s);
        (m["phase"] == "healthy"
            && m["analysisRuns"]
                .as_array()
                .is_some_and(|r| r.iter().any(|r| r["phase"] == "succeeded")))
        .then_some(s)
    })
    .await;
    let seen = load.stop().await;
    let ok_on_v2 = seen
        .get(&("ml-green".to_string(), 200))
        .copied()
        .unwrap_or(0)
        + seen
            .get(&("ml-blue".to_string(), 200))
            .copied()
            .unwrap_or(0);
    assert!(ok_on_v2 > 0, "{seen:?}");
    assert!(
        ml(&done)["analysisRuns"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["phase"] == "succeeded")),
        "{done:#}"
    );
}
