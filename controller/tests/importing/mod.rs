//! Shared by `import_roundtrip.rs` and `aws_import.rs`: the corpus, the document around
//! an imported workload, and the comparison of a task definition with ECS's defaults
//! taken out.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use tugboat::cli::import::{Imported, NoteKind, Seg};

pub fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

/// The fields each corpus file has that tugboat does not carry.
pub const EXPECTED_UNSUPPORTED: &[(&str, &[&str])] = &[
    ("gha-simple", &[]),
    (
        "describe-output",
        &[
            "tags",
            "containerDefinitions[0].environmentFiles",
            "containerDefinitions[0].dockerLabels",
            "service.loadBalancers[0].targetGroupArn",
            "service.networkConfiguration",
            "service.healthCheckGracePeriodSeconds",
        ],
    ),
    ("firelens", &[]),
    (
        "efs",
        &[
            "containerDefinitions[0].linuxParameters.capabilities",
            "volumes[2]",
            "containerDefinitions[0].mountPoints[2]",
        ],
    ),
    ("datadog", &[]),
    ("worker", &[]),
    (
        "arm64-grpc",
        &["proxyConfiguration", "containerDefinitions[0].dockerLabels"],
    ),
    ("copilot", &[]),
    (
        "service-connect",
        &[
            "service.networkConfiguration",
            "service.deployments[0].serviceConnectConfiguration.services[0].timeout",
        ],
    ),
];

pub fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A whole document around the imported workload, as a user would paste it.
pub fn document(workload_yaml: &str) -> String {
    let mut doc = String::from(
        "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: imported, environment: test}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: c
      subnets: [subnet-1]
      securityGroups: [sg-1]
      executionRoleArn: arn:aws:iam::123456789012:role/default-exec
  workloads:
",
    );
    for line in workload_yaml.lines() {
        doc.push_str("    ");
        doc.push_str(line);
        doc.push('\n');
    }
    doc
}

fn remove_path(value: &mut Value, path: &[Seg]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for seg in parents {
        let next = match seg {
            Seg::Key(k) => at.get_mut(k),
            Seg::Index(i) => at.get_mut(*i),
        };
        match next {
            Some(n) => at = n,
            None => return,
        }
    }
    match (last, at) {
        (Seg::Key(k), Value::Object(o)) => {
            o.remove(k);
        }
        (Seg::Index(i), Value::Array(a)) if *i < a.len() => {
            a.remove(*i);
        }
        _ => {}
    }
}

fn is_blank(v: &Value) -> bool {
    matches!(v, Value::Null)
        || v.as_array().is_some_and(Vec::is_empty)
        || v.as_object().is_some_and(|o| o.is_empty())
}

/// ECS's `cpu`/`memory` spellings as plain numbers.
fn number(v: &Value) -> Value {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        other => other.to_string(),
    };
    let n = if let Some(x) = s.strip_suffix("vCPU") {
        x.trim().parse::<f64>().map(|f| (f * 1024.0) as u64).ok()
    } else if let Some(x) = s.strip_suffix("GB") {
        x.trim().parse::<f64>().map(|f| (f * 1024.0) as u64).ok()
    } else {
        s.parse::<u64>().ok()
    };
    json!(n.map(|n| n.to_string()).unwrap_or(s))
}

/// A task definition with ECS's defaults and padding taken out, containers by name.
pub fn normalize(td: &Value, keep: &BTreeSet<String>) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in td.as_object().expect("object") {
        if is_blank(v) || !keep.contains(k) {
            continue;
        }
        let v = match k.as_str() {
            "cpu" | "memory" => number(v),
            "containerDefinitions" => {
                let mut by_name = serde_json::Map::new();
                for c in v.as_array().expect("list") {
                    let name = c["name"].as_str().expect("name").to_string();
                    by_name.insert(name, normalize_container(c));
                }
                Value::Object(by_name)
            }
            "volumes" => Value::Array(
                v.as_array()
                    .expect("list")
                    .iter()
                    .map(|vol| {
                        let mut vol = vol.clone();
                        if let Some(o) = vol.as_object_mut() {
                            o.retain(|_, x| !is_blank(x));
                        }
                        vol
                    })
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

fn normalize_container(c: &Value) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in c.as_object().expect("object") {
        if is_blank(v) {
            continue;
        }
        let v = match k.as_str() {
            "cpu" if v == &json!(0) => continue,
            "essential" if v == &json!(true) => continue,
            "environment" | "secrets" => {
                let mut list = v.as_array().expect("list").clone();
                list.sort_by_key(|e| e["name"].as_str().unwrap_or("").to_string());
                Value::Array(list)
            }
            "portMappings" => Value::Array(
                v.as_array()
                    .expect("list")
                    .iter()
                    .map(|p| {
                        let mut p = p.as_object().expect("mapping").clone();
                        if p.get("protocol") == Some(&json!("tcp")) {
                            p.remove("protocol");
                        }
                        if p.get("hostPort").is_some()
                            && p.get("hostPort") == p.get("containerPort")
                        {
                            p.remove("hostPort");
                        }
                        Value::Object(p)
                    })
                    .collect(),
            ),
            "healthCheck" => {
                let mut hc = v.as_object().expect("health check").clone();
                for (field, default) in [
                    ("interval", 30),
                    ("timeout", 5),
                    ("retries", 3),
                    ("startPeriod", 0),
                ] {
                    hc.entry(field).or_insert(json!(default));
                }
                Value::Object(hc)
            }
            "logConfiguration" => {
                let mut log = v.as_object().expect("log configuration").clone();
                log.retain(|_, x| !is_blank(x));
                Value::Object(log)
            }
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    Value::Object(out)
}

/// The corpus' task definitions, with the stem of each file, sorted.
pub fn task_files() -> Vec<(String, PathBuf)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".task.json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|f| {
            let stem = f
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".task.json"))
                .expect("stem")
                .to_string();
            (stem, f)
        })
        .collect()
}

/// The service file of a stem, if the corpus has one.
pub fn service_of(stem: &str) -> Option<Value> {
    let file = corpus().join(format!("{stem}.service.json"));
    file.exists().then(|| read(&file))
}

/// Fields ECS sets on a definition itself.
const READ_ONLY: [&str; 8] = [
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// (the input minus what the notes say is not carried, `other`), both normalized, as
/// pretty JSON: equal when `other` registers what the input said.
pub fn compare(original: &Value, imported: &Imported, other: &Value) -> (String, String) {
    let mut td = original.get("taskDefinition").unwrap_or(original).clone();
    // Deepest first, so indices of list entries removed stay right.
    let mut paths: Vec<Vec<Seg>> = imported
        .notes
        .iter()
        .filter(|n| n.kind != NoteKind::ReadOnly)
        .filter(|n| {
            !matches!(n.path.first(), Some(Seg::Key(k)) if k == "service" || k == "tags" || k == "family")
        })
        .map(|n| n.path.clone())
        .collect();
    paths.sort();
    for path in paths.iter().rev() {
        remove_path(&mut td, path);
    }
    // tugboat always registers Fargate and awsvpc: compared where the input says so.
    let mut keep: BTreeSet<String> = td
        .as_object()
        .expect("object")
        .keys()
        .filter(|k| k.as_str() != "family" && !READ_ONLY.contains(&k.as_str()))
        .cloned()
        .collect();
    let expected = normalize(&td, &keep);
    keep.extend(["cpu", "memory", "containerDefinitions"].map(String::from));
    let actual = normalize(other, &keep);
    (
        serde_json::to_string_pretty(&expected).expect("json"),
        serde_json::to_string_pretty(&actual).expect("json"),
    )
}
