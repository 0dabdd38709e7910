//! `tugboat import`: an ECS task definition (and optionally its service) as a tugboat
//! workload.
//!
//! Guarantees:
//! - Nothing is dropped silently: every field of the input that the workload does not
//!   carry is a [`Note`], printed as a comment above the workload, naming the field, its
//!   value (shortened) and why. Fields ECS sets itself (`revision`, `status`,
//!   `registeredAt`, a service's `events`, ...) are listed together in one note.
//! - Round trip: for every field tugboat carries, the definition `tugboat diff` would
//!   register for the imported workload ([`crate::taskdef::TaskDefinition::ecs_json`])
//!   equals the input, up to ECS's own defaults (`essential: true`, `protocol: tcp`,
//!   `cpu: 0`, empty lists, health-check timings) and the family name, which tugboat
//!   derives as `<application>-<workload>` (`controller/tests/import_roundtrip.rs`).
//! - Pure: [`import`] maps JSON to a [`Workload`]; only [`run`] reads files and prints.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value, json};

use crate::document::Workload;

/// Print an ECS task definition (and its service) as a tugboat workload.
///
/// Reads the JSON kept for CI (`.aws/task-definition.json`) or printed by `aws ecs
/// describe-task-definition`, and optionally `aws ecs describe-services` output. Every
/// field tugboat cannot carry is named in a comment above the workload.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  tugboat import .aws/task-definition.json
  aws ecs describe-task-definition --task-definition web > td.json
  aws ecs describe-services --cluster prod --services web > svc.json
  tugboat import td.json --service svc.json --name web")]
pub struct Args {
    /// The task definition JSON file.
    pub task_definition: PathBuf,
    /// `aws ecs describe-services` output (or one service object) for the same workload.
    #[arg(long)]
    pub service: Option<PathBuf>,
    /// The workload's name. Default: the service's name, else the family.
    #[arg(long)]
    pub name: Option<String>,
}

/// Why an input could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} is not JSON: {source}")]
    NotJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{0} is not a task definition: no `containerDefinitions` list")]
    NoContainers(String),
    #[error("{what}: {message}")]
    Unusable { what: String, message: String },
    #[error("the imported workload does not fit tugboat's document: {0}")]
    Shape(#[source] serde_json::Error),
    #[error("cannot render the workload as YAML")]
    Render(#[source] serde_saphyr::SerializeError),
}

/// What a note says about a field of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// tugboat has no field for it: the setting is lost unless kept elsewhere.
    Unsupported,
    /// Carried in another form, or equal to ECS's default (no effect lost).
    Changed,
    /// Set by ECS, not by the author (`revision`, `status`, ...).
    ReadOnly,
}

/// One field of the input, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub kind: NoteKind,
    /// Path in the input, e.g. `containerDefinitions[1].dockerLabels`.
    pub path: Vec<Seg>,
    pub message: String,
}

/// A segment of a [`Note`]'s path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl Note {
    pub fn path_text(&self) -> String {
        let mut out = String::new();
        for seg in &self.path {
            match seg {
                Seg::Key(k) if out.is_empty() => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(i) => out.push_str(&format!("[{i}]")),
            }
        }
        out
    }
}

/// The result of an import: the workload, and a note for every field it does not carry.
#[derive(Debug, Clone)]
pub struct Imported {
    pub workload: Workload,
    pub notes: Vec<Note>,
    /// The input's family, for the header.
    pub family: String,
}

/// Task-definition fields ECS sets itself.
const READ_ONLY_TASK: &[&str] = &[
    "taskDefinitionArn",
    "revision",
    "status",
    "requiresAttributes",
    "compatibilities",
    "registeredAt",
    "registeredBy",
    "deregisteredAt",
];

/// Service fields ECS sets itself (as `describe-services` prints them).
const READ_ONLY_SERVICE: &[&str] = &[
    "serviceArn",
    "clusterArn",
    "status",
    "runningCount",
    "pendingCount",
    "events",
    "deployments",
    "createdAt",
    "createdBy",
    "roleArn",
    "taskSets",
    "deploymentController",
    "launchType",
    "schedulingStrategy",
    "taskDefinition",
    "placementConstraints",
    "placementStrategy",
    "propagateTags",
    "enableECSManagedTags",
    "availabilityZoneRebalancing",
    "platformFamily",
];

/// Container fields carried one to one (same name, same shape) into the options.
const CONTAINER_VERBATIM: &[&str] = &[
    "memory",
    "memoryReservation",
    "dependsOn",
    "command",
    "entryPoint",
    "workingDirectory",
    "user",
    "readonlyRootFilesystem",
    "ulimits",
    "stopTimeout",
    "repositoryCredentials",
    "firelensConfiguration",
    "mountPoints",
];

/// Every container and task field tugboat carries (for the round-trip test's check that
/// no supported field is reported as unsupported).
pub const SUPPORTED_FIELDS: &[&str] = &[
    "name",
    "image",
    "essential",
    "cpu",
    "memory",
    "memoryReservation",
    "dependsOn",
    "command",
    "entryPoint",
    "workingDirectory",
    "user",
    "readonlyRootFilesystem",
    "ulimits",
    "linuxParameters",
    "stopTimeout",
    "portMappings",
    "repositoryCredentials",
    "firelensConfiguration",
    "mountPoints",
    "environment",
    "secrets",
    "healthCheck",
    "logConfiguration",
    "volumes",
    "runtimePlatform",
    "ephemeralStorage",
    "taskRoleArn",
    "executionRoleArn",
    "containerDefinitions",
];

struct Importer {
    notes: Vec<Note>,
}

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

impl Importer {
    fn note(&mut self, kind: NoteKind, path: Vec<Seg>, message: impl Into<String>) {
        self.notes.push(Note {
            kind,
            path,
            message: message.into(),
        });
    }

    fn unsupported(&mut self, path: Vec<Seg>, value: &Value, why: &str) {
        let message = format!("{} ({why})", short(value));
        self.note(NoteKind::Unsupported, path, message);
    }
}

/// A value as one short line for a comment.
fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 80 {
        format!("{}…", text.chars().take(77).collect::<String>())
    } else {
        text
    }
}

/// Whether a value carries no setting: null, `[]`, `{}` (as describe output pads them).
fn is_blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn with(path: &[Seg], seg: Seg) -> Vec<Seg> {
    let mut p = path.to_vec();
    p.push(seg);
    p
}

/// A DNS label from a free-form name: lower case, `_` and other characters as `-`.
fn dns_label(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    out = out.trim_matches('-').to_string();
    out.truncate(63);
    out.trim_end_matches('-').to_string()
}

/// A task-level `cpu`/`memory` as a number: `"1024"`, `1024`, `"1 vCPU"`, `"2 GB"`.
fn size(value: &Value, unit_scale: &[(&str, u32)]) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => {
            let s = s.trim();
            if let Ok(n) = s.parse::<u32>() {
                return Some(n);
            }
            for (unit, scale) in unit_scale {
                if let Some(number) = s
                    .strip_suffix(unit)
                    .or_else(|| s.strip_suffix(&unit.to_lowercase()))
                {
                    let n: f64 = number.trim().parse().ok()?;
                    return Some((n * f64::from(*scale)).round() as u32);
                }
            }
            None
        }
        _ => None,
    }
}

/// Unwraps `{"taskDefinition": {...}}` (describe output) to the definition itself.
fn task_definition_object(input: &Value) -> (&Value, Option<&Value>) {
    match input.get("taskDefinition") {
        Some(td) if td.is_object() => (td, input.get("tags")),
        _ => (input, None),
    }
}

/// The service object of `describe-services` output, or the input itself.
fn service_object<'a>(input: &'a Value, im: &mut Importer) -> Option<&'a Value> {
    if let Some(list) = input.get("services").and_then(Value::as_array) {
        if list.len() > 1 {
            im.note(
                NoteKind::Unsupported,
                vec![key("services")],
                format!(
                    "{} services in the input; only the first is imported",
                    list.len()
                ),
            );
        }
        return list.first();
    }
    input.is_object().then_some(input)
}

/// Imports a task definition (and optionally its service) as a workload.
pub fn import(
    task_definition: &Value,
    service: Option<&Value>,
    name: Option<&str>,
) -> Result<Imported, ImportError> {
    let mut im = Importer { notes: Vec::new() };
    let (td, tags) = task_definition_object(task_definition);
    let family = td
        .get("family")
        .and_then(Value::as_str)
        .unwrap_or("imported")
        .to_string();
    if let Some(tags) = tags.filter(|t| !is_blank(t)) {
        im.unsupported(
            vec![key("tags")],
            tags,
            "tugboat tags what it registers with metadata.labels and its own tags",
        );
    }
    let service = match service {
        Some(s) => service_object(s, &mut im),
        None => None,
    };
    let containers = td
        .get("containerDefinitions")
        .and_then(Value::as_array)
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ImportError::NoContainers(format!("family {family}")))?;

    // The main container: the one the service's load balancer names, else the first
    // essential one with a port, else the first.
    let lb = service
        .and_then(|s| s.get("loadBalancers"))
        .and_then(Value::as_array)
        .and_then(|l| l.first());
    let lb_container = lb
        .and_then(|l| l.get("containerName"))
        .and_then(Value::as_str);
    let has_port = |c: &Value| {
        c.get("portMappings")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty())
    };
    let main_index = lb_container
        .and_then(|n| {
            containers
                .iter()
                .position(|c| c.get("name").and_then(Value::as_str) == Some(n))
        })
        .or_else(|| {
            containers.iter().position(|c| {
                c.get("essential").and_then(Value::as_bool).unwrap_or(true) && has_port(c)
            })
        })
        .unwrap_or(0);
    let main = &containers[main_index];
    let main_path = vec![key("containerDefinitions"), Seg::Index(main_index)];
    let main_name = main
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("app")
        .to_string();

    let wanted = name
        .map(str::to_string)
        .or_else(|| {
            service
                .and_then(|s| s.get("serviceName"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .unwrap_or_else(|| family.clone());
    let workload_name = dns_label(&wanted);
    if workload_name.is_empty() {
        return Err(ImportError::Unusable {
            what: "the workload name".into(),
            message: format!("`{wanted}` has no letters or digits; pass --name"),
        });
    }
    im.note(
        NoteKind::Changed,
        vec![key("family")],
        format!("{family:?}: tugboat names the family `<metadata.name>-{workload_name}`"),
    );

    let mut w = Map::new();
    w.insert("name".into(), json!(workload_name));
    if main_name != workload_name {
        w.insert("containerName".into(), json!(main_name));
    }
    let unit_cpu = [("vCPU", 1024)];
    let unit_mem = [("GB", 1024), ("MB", 1)];
    let cpu = td.get("cpu").and_then(|v| size(v, &unit_cpu));
    let memory = td.get("memory").and_then(|v| size(v, &unit_mem));
    let (Some(cpu), Some(memory)) = (cpu, memory) else {
        return Err(ImportError::Unusable {
            what: format!("family {family}"),
            message: "task-level `cpu` and `memory` are required: tugboat runs tasks on Fargate, which sizes the task, not the containers".into(),
        });
    };
    w.insert("cpu".into(), json!(cpu));
    w.insert("memory".into(), json!(memory));

    // The routed port: the load balancer's, else the main container's first.
    let main_ports: Vec<&Value> = main
        .get("portMappings")
        .and_then(Value::as_array)
        .map(|p| p.iter().collect())
        .unwrap_or_default();
    let port = lb
        .and_then(|l| l.get("containerPort"))
        .and_then(Value::as_u64)
        .or_else(|| {
            main_ports
                .first()
                .and_then(|p| p.get("containerPort"))
                .and_then(Value::as_u64)
        });
    // No port: a worker (a queue consumer, a scheduler), with no load balancer.
    if let Some(port) = port {
        w.insert("containerPort".into(), json!(port));
    }
    let port = port.unwrap_or(0);

    let desired = service
        .and_then(|s| s.get("desiredCount"))
        .and_then(Value::as_u64)
        .unwrap_or(1);
    w.insert("desiredCount".into(), json!(desired));

    // The main container's own fields, then its options.
    let (top, options) = container(&mut im, main, &main_path, true, port);
    for (k, v) in top {
        w.insert(k, v);
    }
    if !options.is_empty() {
        w.insert("container".into(), Value::Object(options));
    }
    let mut sidecars = Vec::new();
    for (i, c) in containers.iter().enumerate() {
        if i == main_index {
            continue;
        }
        let path = vec![key("containerDefinitions"), Seg::Index(i)];
        let (mut top, options) = container(&mut im, c, &path, false, 0);
        top.extend(options);
        sidecars.push(Value::Object(top));
    }
    if !sidecars.is_empty() {
        w.insert("sidecars".into(), Value::Array(sidecars));
    }

    let kept_volumes = task_level(&mut im, td, &mut w);
    drop_mounts_of_unkept_volumes(&mut im, &mut w, &kept_volumes, main_index);

    let (strategy, settings) = service
        .map(|s| service_settings(&mut im, s))
        .unwrap_or_else(|| (json!({"rolling": {}}), Map::new()));
    w.insert("strategy".into(), strategy);
    if !settings.is_empty() {
        w.insert("service".into(), Value::Object(settings));
    }

    let workload: Workload =
        serde_json::from_value(Value::Object(w)).map_err(ImportError::Shape)?;
    Ok(Imported {
        workload,
        notes: im.notes,
        family,
    })
}

/// One container: (the fields that sit on the workload or the sidecar itself, its
/// options). For a sidecar the caller merges both.
fn container(
    im: &mut Importer,
    c: &Value,
    path: &[Seg],
    main: bool,
    main_port: u64,
) -> (Map<String, Value>, Map<String, Value>) {
    let mut top = Map::new();
    let mut options = Map::new();
    let Some(fields) = c.as_object() else {
        return (top, options);
    };
    for (k, v) in fields {
        let at = with(path, key(k));
        match k.as_str() {
            "name" => {
                if !main {
                    top.insert("name".into(), v.clone());
                }
            }
            "image" => {
                top.insert("image".into(), v.clone());
            }
            "essential" => {
                // ECS's default is true; only `false` says something.
                if v == &json!(false) {
                    options.insert("essential".into(), v.clone());
                }
            }
            "cpu" => {
                if v.as_u64().is_some_and(|n| n > 0) {
                    options.insert("cpu".into(), v.clone());
                }
            }
            "environment" | "secrets" => {
                let value_key = if k == "environment" {
                    "value"
                } else {
                    "valueFrom"
                };
                let mut map = Map::new();
                for (j, entry) in v.as_array().into_iter().flatten().enumerate() {
                    let name = entry.get("name").and_then(Value::as_str);
                    let value = entry.get(value_key);
                    match (name, value) {
                        (Some(n), Some(val)) if !map.contains_key(n) => {
                            let val = match val {
                                Value::String(s) => json!(s),
                                other => json!(other.to_string()),
                            };
                            map.insert(n.to_string(), val);
                        }
                        _ => im.unsupported(
                            with(&at, Seg::Index(j)),
                            &if k == "secrets" {
                                json!(name)
                            } else {
                                entry.clone()
                            },
                            "not a NAME/value pair, or a name given twice",
                        ),
                    }
                }
                if !map.is_empty() {
                    top.insert(k.clone(), Value::Object(map));
                }
            }
            "healthCheck" => {
                let mut hc = Map::new();
                for (hk, hv) in v.as_object().into_iter().flatten() {
                    if ["command", "interval", "timeout", "retries", "startPeriod"]
                        .contains(&hk.as_str())
                    {
                        hc.insert(hk.clone(), hv.clone());
                    } else {
                        im.unsupported(with(&at, key(hk)), hv, "not an ECS health-check field");
                    }
                }
                if !hc.is_empty() {
                    top.insert("healthCheck".into(), Value::Object(hc));
                }
            }
            "logConfiguration" => {
                let mut log = Map::new();
                for (lk, lv) in v.as_object().into_iter().flatten() {
                    match lk.as_str() {
                        "logDriver" | "options" => {
                            if !is_blank(lv) {
                                log.insert(lk.clone(), lv.clone());
                            }
                        }
                        _ if is_blank(lv) => {}
                        _ => im.unsupported(
                            with(&at, key(lk)),
                            lv,
                            "tugboat's logConfiguration has logDriver and options",
                        ),
                    }
                }
                if !log.is_empty() {
                    top.insert("logConfiguration".into(), Value::Object(log));
                }
            }
            "portMappings" => {
                let mappings = port_mappings(im, v, &at);
                let bare_main = main
                    && mappings.len() == 1
                    && mappings[0].as_object().is_some_and(|m| {
                        m.len() == 1 && m.get("containerPort") == Some(&json!(main_port))
                    });
                if !mappings.is_empty() && !bare_main {
                    options.insert("portMappings".into(), Value::Array(mappings));
                }
            }
            "linuxParameters" => {
                let mut lp = Map::new();
                for (lk, lv) in v.as_object().into_iter().flatten() {
                    if lk == "initProcessEnabled" {
                        lp.insert(lk.clone(), lv.clone());
                    } else if !is_blank(lv) {
                        im.unsupported(
                            with(&at, key(lk)),
                            lv,
                            "of linuxParameters tugboat carries initProcessEnabled only",
                        );
                    }
                }
                if !lp.is_empty() {
                    options.insert("linuxParameters".into(), Value::Object(lp));
                }
            }
            verbatim if CONTAINER_VERBATIM.contains(&verbatim) => {
                if !is_blank(v) {
                    options.insert(k.clone(), v.clone());
                }
            }
            _ if is_blank(v) => {}
            _ => im.unsupported(at, v, "tugboat has no field for it"),
        }
    }
    (top, options)
}

/// `portMappings` without ECS's defaults: `protocol: tcp` and a `hostPort` equal to the
/// container port (awsvpc) are left out, with a note.
fn port_mappings(im: &mut Importer, v: &Value, at: &[Seg]) -> Vec<Value> {
    let mut out = Vec::new();
    for (j, m) in v.as_array().into_iter().flatten().enumerate() {
        let mp = with(at, Seg::Index(j));
        let mut kept = Map::new();
        let container_port = m.get("containerPort").cloned();
        for (pk, pv) in m.as_object().into_iter().flatten() {
            match pk.as_str() {
                "containerPort" | "name" | "appProtocol" => {
                    kept.insert(pk.clone(), pv.clone());
                }
                "protocol" if pv == &json!("tcp") => {}
                "protocol" => {
                    kept.insert(pk.clone(), pv.clone());
                }
                "hostPort" if Some(pv) == container_port.as_ref() => {
                    im.note(
                        NoteKind::Changed,
                        with(&mp, key(pk)),
                        "equal to containerPort: left out (the same on Fargate's awsvpc)",
                    );
                }
                "hostPort" => {
                    kept.insert(pk.clone(), pv.clone());
                }
                _ if is_blank(pv) => {}
                _ => im.unsupported(with(&mp, key(pk)), pv, "tugboat has no field for it"),
            }
        }
        out.push(Value::Object(kept));
    }
    out
}

/// Task-level settings into the workload; returns the names of the volumes kept.
fn task_level(im: &mut Importer, td: &Value, w: &mut Map<String, Value>) -> BTreeSet<String> {
    let mut kept_volumes = BTreeSet::new();
    for (k, v) in td.as_object().into_iter().flatten() {
        let at = vec![key(k)];
        match k.as_str() {
            "family" | "containerDefinitions" | "cpu" | "memory" => {}
            "taskRoleArn" | "executionRoleArn" => {
                if !is_blank(v) {
                    w.insert(k.clone(), v.clone());
                }
            }
            "networkMode" if v == &json!("awsvpc") => {}
            "networkMode" => im.unsupported(at, v, "tugboat registers awsvpc, Fargate's only mode"),
            "requiresCompatibilities"
                if v.as_array().is_some_and(|a| a.contains(&json!("FARGATE"))) =>
            {
                if v.as_array().is_some_and(|a| a.len() > 1) {
                    im.unsupported(at, v, "tugboat registers for FARGATE only");
                }
            }
            "requiresCompatibilities" => {
                im.unsupported(at, v, "tugboat registers for FARGATE only")
            }
            "runtimePlatform" => {
                let mut rp = Map::new();
                for (rk, rv) in v.as_object().into_iter().flatten() {
                    let ok = match rk.as_str() {
                        "cpuArchitecture" => true,
                        "operatingSystemFamily" => rv == &json!("LINUX"),
                        _ => false,
                    };
                    if ok {
                        rp.insert(rk.clone(), rv.clone());
                    } else {
                        im.unsupported(with(&at, key(rk)), rv, "tugboat runs Linux tasks");
                    }
                }
                if !rp.is_empty() {
                    w.insert(k.clone(), Value::Object(rp));
                }
            }
            "ephemeralStorage" => {
                w.insert(k.clone(), v.clone());
            }
            "volumes" => {
                let mut volumes = Vec::new();
                for (j, vol) in v.as_array().into_iter().flatten().enumerate() {
                    let vp = with(&at, Seg::Index(j));
                    let name = vol.get("name").and_then(Value::as_str).unwrap_or("");
                    let mut kept = Map::new();
                    let mut usable = true;
                    for (vk, vv) in vol.as_object().into_iter().flatten() {
                        match vk.as_str() {
                            "name" | "efsVolumeConfiguration" => {
                                kept.insert(vk.clone(), vv.clone());
                            }
                            "host" if vv.get("sourcePath").is_none_or(is_blank) => {}
                            _ if is_blank(vv) => {}
                            _ => usable = false,
                        }
                    }
                    if usable {
                        kept_volumes.insert(name.to_string());
                        volumes.push(Value::Object(kept));
                    } else {
                        im.unsupported(
                            vp,
                            vol,
                            "tugboat carries bind and EFS volumes; this volume and its mount points are left out",
                        );
                    }
                }
                if !volumes.is_empty() {
                    w.insert(k.clone(), Value::Array(volumes));
                }
            }
            ro if READ_ONLY_TASK.contains(&ro) => {}
            _ if is_blank(v) => {}
            _ => im.unsupported(at, v, "tugboat has no field for it"),
        }
    }
    let read_only: Vec<&str> = READ_ONLY_TASK
        .iter()
        .copied()
        .filter(|k| td.get(*k).is_some())
        .collect();
    if !read_only.is_empty() {
        im.note(
            NoteKind::ReadOnly,
            Vec::new(),
            format!("set by ECS, left out: {}", read_only.join(", ")),
        );
    }
    kept_volumes
}

/// Mount points of a volume that was not kept go too (they would name no volume).
fn drop_mounts_of_unkept_volumes(
    im: &mut Importer,
    w: &mut Map<String, Value>,
    kept: &BTreeSet<String>,
    main_index: usize,
) {
    let mut dropped = Vec::new();
    let mut filter = |mounts: &mut Value, container_index: usize| {
        if let Some(list) = mounts.as_array_mut() {
            let mut j = 0;
            list.retain(|m| {
                let source = m.get("sourceVolume").and_then(Value::as_str).unwrap_or("");
                let keep = kept.contains(source);
                if !keep {
                    dropped.push((container_index, j, m.clone()));
                }
                j += 1;
                keep
            });
        }
    };
    if let Some(mounts) = w
        .get_mut("container")
        .and_then(|c| c.get_mut("mountPoints"))
    {
        filter(mounts, main_index);
    }
    if let Some(sidecars) = w.get_mut("sidecars").and_then(Value::as_array_mut) {
        for (i, s) in sidecars.iter_mut().enumerate() {
            let index = if i >= main_index { i + 1 } else { i };
            if let Some(mounts) = s.get_mut("mountPoints") {
                filter(mounts, index);
            }
        }
    }
    for (c, j, m) in dropped {
        im.unsupported(
            vec![
                key("containerDefinitions"),
                Seg::Index(c),
                key("mountPoints"),
                Seg::Index(j),
            ],
            &m,
            "its volume is not carried",
        );
    }
    // A container whose mount points all went keeps no empty list.
    if let Some(c) = w.get_mut("container").and_then(Value::as_object_mut)
        && c.get("mountPoints").is_some_and(is_blank)
    {
        c.remove("mountPoints");
    }
    if let Some(sidecars) = w.get_mut("sidecars").and_then(Value::as_array_mut) {
        for s in sidecars.iter_mut().filter_map(Value::as_object_mut) {
            if s.get("mountPoints").is_some_and(is_blank) {
                s.remove("mountPoints");
            }
        }
    }
}

/// The service's settings: the strategy (ECS's rolling update), and a note for each
/// setting the workload does not carry.
fn service_settings(im: &mut Importer, s: &Value) -> (Value, Map<String, Value>) {
    let mut rolling = Map::new();
    let mut settings = Map::new();
    let base = vec![key("service")];
    for (k, v) in s.as_object().into_iter().flatten() {
        let at = with(&base, key(k));
        match k.as_str() {
            "serviceName" | "desiredCount" | "cluster" => {}
            "deploymentConfiguration" => {
                for (dk, dv) in v.as_object().into_iter().flatten() {
                    match dk.as_str() {
                        "maximumPercent" | "minimumHealthyPercent" => {
                            rolling.insert(dk.clone(), dv.clone());
                        }
                        "deploymentCircuitBreaker" => {
                            settings.insert(dk.clone(), dv.clone());
                        }
                        _ if is_blank(dv) => {}
                        _ => im.unsupported(
                            with(&at, key(dk)),
                            dv,
                            "tugboat has no field for it yet",
                        ),
                    }
                }
            }
            "loadBalancers" => {
                for (j, lb) in v.as_array().into_iter().flatten().enumerate() {
                    let tg = lb.get("targetGroupArn").cloned().unwrap_or(Value::Null);
                    im.unsupported(
                        with(&with(&at, Seg::Index(j)), key("targetGroupArn")),
                        &tg,
                        "a tugboat route needs the listener rule's pathPatterns and priority (and a second target group for canary or blueGreen): add `route:` by hand",
                    );
                }
            }
            "platformVersion" | "enableExecuteCommand" | "capacityProviderStrategy" => {
                if !is_blank(v) {
                    settings.insert(k.clone(), v.clone());
                }
            }
            "serviceRegistries" => {
                if !is_blank(v) {
                    settings.insert(k.clone(), v.clone());
                }
            }
            // A CreateService input (or CloudFormation) has it on the service itself.
            "serviceConnectConfiguration" => {
                if let Some(sc) = service_connect(im, v, &at) {
                    settings.insert(k.clone(), sc);
                }
            }
            "healthCheckGracePeriodSeconds" => im.unsupported(
                at,
                v,
                "applies behind a load balancer: set it under `service:` once the workload has a route",
            ),
            "networkConfiguration" => im.unsupported(
                at,
                v,
                "subnets, securityGroups and assignPublicIp belong to spec.platform.aws",
            ),
            ro if READ_ONLY_SERVICE.contains(&ro) => {}
            _ if is_blank(v) => {}
            _ => im.unsupported(at, v, "tugboat has no field for it yet"),
        }
    }
    // describe-services keeps Service Connect on the deployments: the primary one's is
    // the service's.
    if !settings.contains_key("serviceConnectConfiguration")
        && let Some((j, primary)) = s
            .get("deployments")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .find(|(_, d)| d.get("status").and_then(Value::as_str) == Some("PRIMARY"))
        && let Some(v) = primary.get("serviceConnectConfiguration")
    {
        let at = vec![
            key("service"),
            key("deployments"),
            Seg::Index(j),
            key("serviceConnectConfiguration"),
        ];
        if let Some(sc) = service_connect(im, v, &at) {
            settings.insert("serviceConnectConfiguration".into(), sc);
        }
    }
    let read_only: Vec<&str> = READ_ONLY_SERVICE
        .iter()
        .copied()
        .filter(|k| s.get(*k).is_some_and(|v| !is_blank(v)))
        .collect();
    if !read_only.is_empty() {
        im.note(
            NoteKind::ReadOnly,
            base,
            format!(
                "set by ECS or by tugboat itself, left out: {}",
                read_only.join(", ")
            ),
        );
    }
    (json!({"rolling": rolling}), settings)
}

/// `serviceConnectConfiguration` in tugboat's subset of ECS's shape: `enabled`,
/// `namespace`, `services` (`portName`, `discoveryName`, `clientAliases` with `port` and
/// `dnsName`) and `logConfiguration`; anything else is a note.
fn service_connect(im: &mut Importer, v: &Value, at: &[Seg]) -> Option<Value> {
    let object = v.as_object()?;
    let mut out = Map::new();
    for (k, field) in object {
        let here = with(at, key(k));
        match k.as_str() {
            "enabled" | "namespace" | "logConfiguration" => {
                out.insert(k.clone(), field.clone());
            }
            "services" => {
                let mut services = Vec::new();
                for (i, svc) in field.as_array().into_iter().flatten().enumerate() {
                    let svc_at = with(&here, Seg::Index(i));
                    let mut kept = Map::new();
                    for (sk, sv) in svc.as_object().into_iter().flatten() {
                        match sk.as_str() {
                            "portName" | "discoveryName" => {
                                kept.insert(sk.clone(), sv.clone());
                            }
                            "clientAliases" => {
                                let mut aliases = Vec::new();
                                for (j, alias) in sv.as_array().into_iter().flatten().enumerate() {
                                    let mut a = Map::new();
                                    for (ak, av) in alias.as_object().into_iter().flatten() {
                                        match ak.as_str() {
                                            "port" | "dnsName" => {
                                                a.insert(ak.clone(), av.clone());
                                            }
                                            _ if is_blank(av) => {}
                                            _ => im.unsupported(
                                                with(
                                                    &with(&with(&svc_at, key(sk)), Seg::Index(j)),
                                                    key(ak),
                                                ),
                                                av,
                                                "tugboat has no field for it yet",
                                            ),
                                        }
                                    }
                                    aliases.push(Value::Object(a));
                                }
                                if !aliases.is_empty() {
                                    kept.insert(sk.clone(), Value::Array(aliases));
                                }
                            }
                            _ if is_blank(sv) => {}
                            _ => im.unsupported(
                                with(&svc_at, key(sk)),
                                sv,
                                "tugboat has no field for it yet",
                            ),
                        }
                    }
                    services.push(Value::Object(kept));
                }
                if !services.is_empty() {
                    out.insert(k.clone(), Value::Array(services));
                }
            }
            _ if is_blank(field) => {}
            _ => im.unsupported(here, field, "tugboat has no field for it yet"),
        }
    }
    out.contains_key("enabled").then_some(Value::Object(out))
}

/// The workload as a YAML list item for `spec.workloads`, under a comment per note.
pub fn render(imported: &Imported, origin: &str) -> Result<String, ImportError> {
    let mut out = String::new();
    out.push_str(&format!(
        "# tugboat import of {origin} (family {})\n# Paste under spec.workloads of a tugboat document.\n",
        imported.family
    ));
    for (kind, title) in [
        (
            NoteKind::Unsupported,
            "Not carried (tugboat has no field for these; keep them elsewhere or drop them):",
        ),
        (NoteKind::Changed, "Carried differently:"),
        (NoteKind::ReadOnly, "Left out:"),
    ] {
        let notes: Vec<&Note> = imported.notes.iter().filter(|n| n.kind == kind).collect();
        if notes.is_empty() {
            continue;
        }
        out.push_str(&format!("# {title}\n"));
        for n in notes {
            let path = n.path_text();
            if path.is_empty() {
                out.push_str(&format!("#   {}\n", n.message));
            } else {
                out.push_str(&format!("#   {path}: {}\n", n.message));
            }
        }
    }
    let yaml = serde_saphyr::to_string(&imported.workload).map_err(ImportError::Render)?;
    for (i, line) in yaml.lines().enumerate() {
        out.push_str(if i == 0 { "- " } else { "  " });
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

fn read_json(path: &PathBuf) -> Result<Value, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.clone(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| ImportError::NotJson {
        what: path.display().to_string(),
        source,
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let td = read_json(&args.task_definition)?;
    let service = args.service.as_ref().map(read_json).transpose()?;
    let imported = import(&td, service.as_ref(), args.name.as_deref())?;
    super::print(&render(
        &imported,
        &args.task_definition.display().to_string(),
    )?)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_dns_labels() {
        assert_eq!(dns_label("My_Web.App"), "my-web-app");
        assert_eq!(dns_label("--x--"), "x");
    }

    #[test]
    fn sizes_read_ecs_spellings() {
        assert_eq!(size(&json!("1024"), &[("vCPU", 1024)]), Some(1024));
        assert_eq!(size(&json!("0.5 vCPU"), &[("vCPU", 1024)]), Some(512));
        assert_eq!(size(&json!("2 GB"), &[("GB", 1024), ("MB", 1)]), Some(2048));
        assert_eq!(size(&json!(512), &[]), Some(512));
        assert_eq!(size(&json!("lots"), &[("GB", 1024)]), None);
    }

    #[test]
    fn a_field_without_a_home_is_a_note_never_dropped() {
        let td = json!({
            "family": "web", "cpu": "256", "memory": "512",
            "containerDefinitions": [{
                "name": "web", "image": "nginx", "portMappings": [{"containerPort": 80}],
                "dockerLabels": {"team": "shop"}, "volumesFrom": []
            }]
        });
        let imported = import(&td, None, None).expect("imports");
        let unsupported: Vec<String> = imported
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Unsupported)
            .map(Note::path_text)
            .collect();
        assert_eq!(unsupported, ["containerDefinitions[0].dockerLabels"]);
        let text = render(&imported, "td.json").expect("renders");
        assert!(
            text.contains("#   containerDefinitions[0].dockerLabels: {\"team\":\"shop\"}"),
            "{text}"
        );
        assert!(text.contains("- name: web\n"), "{text}");
    }

    #[test]
    fn a_task_without_a_size_is_refused_and_one_without_a_port_is_a_worker() {
        let no_size = json!({"family": "w", "containerDefinitions": [{"name": "w", "image": "x"}]});
        let e = import(&no_size, None, None).expect_err("no size");
        assert!(
            e.to_string()
                .contains("task-level `cpu` and `memory` are required")
        );
        let no_port = json!({"family": "w", "cpu": "256", "memory": "512",
            "containerDefinitions": [{"name": "w", "image": "x"}]});
        let worker = import(&no_port, None, None).expect("a worker");
        assert_eq!(worker.workload.container_port, None);
    }
}
