//! `tugboat diff` as a process: renders the plan against a recorded observation.

use std::path::PathBuf;
use std::process::Command;

fn tugboat() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tugboat"))
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

#[test]
fn diff_against_an_empty_platform_lists_the_first_deployment_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let observed = dir.path().join("observed.json");
    std::fs::write(&observed, "").unwrap();
    let out = tugboat()
        .arg("diff")
        .arg("-f")
        .arg(repo("manifests/stage.yaml"))
        .arg("--observed")
        .arg(&observed)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(stdout.contains("+ register task definition"), "{stdout}");
    assert!(stdout.contains("+ create service backend-blue"), "{stdout}");
    assert!(stdout.contains("AWS API call(s)"), "{stdout}");
}

#[test]
fn diff_as_json_is_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let observed = dir.path().join("observed.json");
    std::fs::write(&observed, "{}").unwrap();
    let out = tugboat()
        .args([
            "diff",
            "--format",
            "json",
            "--at",
            "2026-01-01T00:00:00Z",
            "-f",
        ])
        .arg(repo("manifests/dev.yaml"))
        .arg("--observed")
        .arg(&observed)
        .output()
        .unwrap();
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    let actions = plan["actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["type"] == "createService"),
        "{plan:#}"
    );
    assert!(
        actions
            .iter()
            .all(|a| a["why"].as_str().is_some_and(|w| !w.is_empty()))
    );
    // Waiting for healthy targets: the next look is a plain number of milliseconds.
    assert!(
        plan["requeueAfterMs"].as_u64().is_some_and(|ms| ms > 0),
        "{plan:#}"
    );
}

#[test]
fn diff_of_an_invalid_document_prints_where_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(repo("manifests/dev.yaml"))
        .unwrap()
        .replacen("desiredCount:", "desiredCuont:", 1);
    std::fs::write(&doc, text).unwrap();
    let out = tugboat()
        .args(["diff", "--observed", "/dev/null", "-f"])
        .arg(&doc)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("desiredCuont"), "{stderr}");
}

#[test]
fn diff_against_a_converged_observation_plans_nothing() {
    // Plan once against nothing, then feed an observation where everything the first
    // deployment asked for is running and healthy: the diff must be empty.
    let dir = tempfile::tempdir().unwrap();
    let doc = repo("manifests/dev.yaml");
    let app = tugboat::validate::load_file(&doc).unwrap();
    let mut observed = tugboat::observed::ObservedState::default();
    observed.models.insert(
        "classifier".into(),
        tugboat::observed::ModelResolution::Resolved(tugboat::observed::ResolvedModel {
            version: "v1".into(),
            uri: "s3://ml-models-bucket/models/v1".into(),
            sha256: "0".repeat(64),
        }),
    );
    let now = tugboat::status::Timestamp::from_secs(1_800_000_000);
    let mut status = None;
    for _ in 0..6 {
        let plan = tugboat::plan::plan(&app, &observed, status.as_ref(), now);
        for planned in &plan.actions {
            apply_perfectly(&mut observed, &planned.action);
        }
        status = Some(plan.status);
    }
    let path = dir.path().join("observed.json");
    std::fs::write(&path, serde_json::to_string(&observed).unwrap()).unwrap();
    let status_path = dir.path().join("status.json");
    std::fs::write(&status_path, serde_json::to_string(&status).unwrap()).unwrap();
    let out = tugboat()
        .args(["diff", "--at", "2027-01-01T00:00:00Z", "-f"])
        .arg(&doc)
        .arg("--observed")
        .arg(&path)
        .arg("--status")
        .arg(&status_path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("No changes"), "{stdout}");
    assert!(!stdout.contains("Blocked"), "{stdout}");
}

/// Applies an action the way a healthy platform would, for building observations.
fn apply_perfectly(
    observed: &mut tugboat::observed::ObservedState,
    action: &tugboat::plan::Action,
) {
    use tugboat::observed::{ObservedRule, ObservedService};
    use tugboat::plan::Action;
    match action {
        Action::RegisterTaskDefinition { content_hash, .. } => {
            observed
                .task_definitions
                .insert(content_hash.clone(), format!("arn:{content_hash}"));
        }
        Action::CreateService {
            workload,
            service,
            slot,
            content_hash,
            desired_count,
            ..
        } => {
            let svc = ObservedService {
                name: service.clone(),
                owned: true,
                content_hash: Some(content_hash.clone()),
                task_definition_arn: None,
                desired_count: *desired_count,
                running_count: *desired_count,
                deployment_complete: true,
                deployment_failed: false,
                healthy_targets: *desired_count,
            };
            let w = observed.workloads.entry(workload.clone()).or_default();
            match slot {
                Some(s) => {
                    w.slots.insert(*s, svc);
                }
                None => w.service = Some(svc),
            }
        }
        Action::UpdateService { .. }
        | Action::StartAnalysis { .. }
        | Action::EnsureScaling { .. }
        | Action::RemoveScaling { .. }
        | Action::SetHeaderRoute { .. }
        | Action::RemoveHeaderRoute { .. } => {
            unreachable!("a first deployment needs no {action:?}")
        }
        Action::SetWeights {
            workload,
            blue,
            green,
            ..
        } => {
            observed.workloads.entry(workload.clone()).or_default().rule = Some(ObservedRule {
                arn: Some("arn:rule".into()),
                owned: true,
                weights: [
                    (tugboat::document::Slot::Blue, *blue),
                    (tugboat::document::Slot::Green, *green),
                ]
                .into(),
                ..Default::default()
            });
        }
    }
}
