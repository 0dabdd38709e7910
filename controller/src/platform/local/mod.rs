//! The local platform: the application on one machine, with no AWS account and no
//! container engine. A service is a set of child processes of the workload's binary
//! ([`supervisor`]); a listener rule is a rule of tugboat's own weighted router
//! ([`router`]), which counts what each target group answers ([`stats`]).
//!
//! It keeps the [`Platform`](super::Platform) guarantees the AWS platform keeps, so the
//! same planner and conformance suite drive it:
//! - Task definitions are registered once per content hash and persisted in
//!   `<stateDir>/task-definitions.json`, so a restarted controller finds them and
//!   numbers new revisions after them.
//! - A slot's healthy targets are its replicas that passed the health check; the router
//!   sends traffic only to those (its table is updated on every health change, through
//!   the supervisor's change counter), and the planner reads the same count.
//! - Services and rules die with the controller (the children carry the parent-death
//!   signal), so a restart starts from the persisted status and nothing running.
//!
//! Mapping the document onto processes:
//! - `image` names the binary: `backend` (or `backend:v2`; the tag only makes revisions
//!   differ) is looked up in the binary directories (the controller's own target
//!   directory), a name with a `/` is a path relative to the document's directory.
//! - `PORT` and `HOST=127.0.0.1` are set per replica (a free port each); `containerPort`
//!   is not used. The container's environment is set as is; `file://` model URIs are
//!   relative to the document's directory, as is each child's working directory.
//! - The health check is an HTTP `GET` of the path the document's health check command
//!   names (`curl -f http://localhost:8000/ready` -> `/ready`), else `/health`, every
//!   second; `retries` consecutive failures make a replica unhealthy.
//! - `secrets` are not resolved locally: a workload with secrets is refused.

pub mod router;
pub mod stats;
pub mod supervisor;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::document::{Application, Slot};
use crate::observed::{ObservedRule, ObservedService, ObservedState, ObservedWorkload};
use crate::plan::Action;
use crate::taskdef::TaskDefinition;

use super::{
    ActionOutcome, CallCounter, CallCounts, CallEstimate, CallKind, Observation, Platform,
    PlatformError, owner, service_name,
};
use router::{RouterHandle, Rule};
use supervisor::{HealthProbe, ServiceSpec, Supervisor};

/// Where binaries named by `image` are found.
#[derive(Debug, Clone, Default)]
pub struct Binaries {
    /// Searched in order (e.g. `target/local`).
    pub dirs: Vec<PathBuf>,
    /// Name -> program, before the directories (tests map several names to one binary).
    pub overrides: BTreeMap<String, PathBuf>,
}

/// Why a binary could not be found, with how to build it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "workload {workload}: the binary `{name}` (image `{image}`) is not in {searched}; build it \
     with `{build}`"
)]
pub struct MissingBinary {
    pub workload: String,
    pub image: String,
    pub name: String,
    pub searched: String,
    pub build: String,
}

/// The cargo command that builds binary `name` into `dir` (`target/<profile>`); for the
/// `local` profile with `./up`'s features (none: no AWS), so `./up` does not build it again.
///
/// ```text
/// ("backend", "target/local") -> cargo build --profile local --no-default-features -p tugboat-backend --bin backend
/// ("worker", "target/debug")  -> cargo build --bin worker
/// ```
pub fn build_command(name: &str, dir: Option<&Path>) -> String {
    let profile = dir
        .and_then(|d| d.file_name())
        .and_then(|p| p.to_str())
        .map(|p| match p {
            "debug" => String::new(),
            "release" => " --release".to_string(),
            "local" => " --profile local --no-default-features".to_string(),
            other => format!(" --profile {other}"),
        })
        .unwrap_or_default();
    let package = match name {
        "backend" => " -p tugboat-backend",
        "inference" => " -p tugboat-inference",
        "tugboat" => " -p tugboat",
        _ => "",
    };
    format!("cargo build{profile}{package} --bin {name}")
}

/// The binary name an image names: the part before the tag.
///
/// ```text
/// "backend" -> "backend";  "backend:v2" -> "backend";  "./bin/x:1" -> "./bin/x"
/// ```
pub fn binary_name(image: &str) -> &str {
    match image.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => image,
    }
}

impl Binaries {
    /// The program for `image` of `workload`; a name with `/` is relative to `base`.
    pub fn resolve(
        &self,
        workload: &str,
        image: &str,
        base: &Path,
    ) -> Result<PathBuf, MissingBinary> {
        let name = binary_name(image);
        let missing = |searched: String| MissingBinary {
            workload: workload.into(),
            image: image.into(),
            name: name.into(),
            searched,
            build: build_command(name, self.dirs.first().map(PathBuf::as_path)),
        };
        if let Some(program) = self.overrides.get(name) {
            return Ok(program.clone());
        }
        if name.contains('/') {
            let path = base.join(name);
            return if path.is_file() {
                Ok(path)
            } else {
                Err(missing(path.display().to_string()))
            };
        }
        self.dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                missing(
                    self.dirs
                        .iter()
                        .map(|d| d.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                )
            })
    }
}

/// The probe path a health-check command names: the path of its first `http://` URL.
///
/// ```text
/// ["CMD-SHELL", "curl -f http://localhost:8000/ready || exit 1"] -> Some("/ready")
/// ["CMD", "true"] -> None
/// ```
pub fn probe_path(command: &[String]) -> Option<String> {
    command.iter().find_map(|part| {
        let start = part.find("http://")?;
        let rest = &part[start + "http://".len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(rest.len());
        let url = &rest[..end];
        Some(
            url.find('/')
                .map_or("/".to_string(), |i| url[i..].to_string()),
        )
    })
}

/// A relative `file://` URI made relative to `base` instead of the working directory.
///
/// ```text
/// ("file://.tugboat/status.json", "/repo/manifests") -> "file:///repo/manifests/.tugboat/status.json"
/// ("file:///abs/x", _) -> unchanged;  ("s3://b/k", _) -> unchanged
/// ```
pub fn anchor_file_uri(uri: &str, base: &Path) -> String {
    match uri.strip_prefix("file://") {
        Some(path) if !path.starts_with('/') => format!("file://{}", base.join(path).display()),
        _ => uri.to_string(),
    }
}

/// For a `platform: local` document read from `document_dir`: its relative paths (the
/// status file, `file://` model stores, `stateDir`) made relative to that directory, as
/// `tugboat up` reads them, so commands run from elsewhere (`tugboat status -f
/// manifests/local.yaml`) find the same files. Other documents are left alone.
pub fn anchor_paths(app: &mut Application, document_dir: &Path) {
    let crate::document::Platform::Local(local) = &mut app.spec.platform else {
        return;
    };
    let state_dir = local.state_dir.get_or_insert_with(|| ".tugboat".into());
    if Path::new(state_dir.as_str()).is_relative() {
        *state_dir = document_dir.join(&*state_dir).display().to_string();
    }
    if let Some(status) = &mut app.spec.status {
        status.uri = anchor_file_uri(&status.uri, document_dir);
    }
    for model in &mut app.spec.models {
        model.store_uri = anchor_file_uri(&model.store_uri, document_dir);
    }
}

/// Settings of the local platform.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The document's directory: relative paths and children's working directory.
    pub base_dir: PathBuf,
    /// Absolute state directory (task definitions; logs under `logs/`).
    pub state_dir: PathBuf,
    pub binaries: Binaries,
}

/// A registered task definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalTaskDefinition {
    pub family: String,
    pub revision: u32,
    pub content_hash: String,
    pub definition: TaskDefinition,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalService {
    owner: String,
    workload: String,
    task_definition_arn: String,
    desired_count: u32,
    target_group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalRule {
    owner: String,
    priority: u32,
    path_patterns: Vec<String>,
    weights: BTreeMap<String, u32>,
    /// The route's other conditions and stickiness, as the router matches them.
    extras: super::local::router::RuleExtras,
}

#[derive(Debug, Default)]
struct State {
    /// By ARN.
    task_definitions: BTreeMap<String, LocalTaskDefinition>,
    /// By service name.
    services: BTreeMap<String, LocalService>,
    /// By workload.
    rules: BTreeMap<String, LocalRule>,
    /// By workload: its header route (`setHeaderRoute`), a rule of its own.
    header_rules: BTreeMap<String, LocalHeaderRule>,
}

/// A header route: the route's paths and conditions plus its header matches, all to one
/// target group, at its own priority (the router's `<workload>/header` rule).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LocalHeaderRule {
    name: String,
    priority: u32,
    path_patterns: Vec<String>,
    target_group: String,
    matches: Vec<tugboat_core::document::HeaderRouteMatch>,
    conditions: Vec<tugboat_core::document::RuleCondition>,
}

/// The router's key for a workload's header route.
fn header_rule_key(workload: &str) -> String {
    format!("{workload}/header")
}

/// The local platform. See the module docs.
#[derive(Debug)]
pub struct LocalPlatform {
    config: LocalConfig,
    router: RouterHandle,
    supervisor: Supervisor,
    state: Arc<Mutex<State>>,
    calls: CallCounter,
    sync: tokio::task::JoinHandle<()>,
}

impl Drop for LocalPlatform {
    fn drop(&mut self) {
        self.sync.abort();
    }
}

const TASK_DEFINITIONS_FILE: &str = "task-definitions.json";

impl LocalPlatform {
    /// A platform routing through `router` and running children with `supervisor`.
    /// Reads the task definitions registered earlier from the state directory.
    pub fn new(config: LocalConfig, router: RouterHandle, supervisor: Supervisor) -> Self {
        let mut state = State::default();
        if let Ok(text) = std::fs::read_to_string(config.state_dir.join(TASK_DEFINITIONS_FILE)) {
            match serde_json::from_str::<BTreeMap<String, LocalTaskDefinition>>(&text) {
                Ok(defs) => state.task_definitions = defs,
                Err(e) => tracing::warn!(
                    error = %e,
                    "{} does not parse; registering task definitions anew",
                    config.state_dir.join(TASK_DEFINITIONS_FILE).display()
                ),
            }
        }
        let state = Arc::new(Mutex::new(state));
        let sync = tokio::spawn(sync_targets(
            supervisor.clone(),
            router.clone(),
            state.clone(),
        ));
        Self {
            config,
            router,
            supervisor,
            state,
            calls: CallCounter::default(),
            sync,
        }
    }

    pub fn router(&self) -> &RouterHandle {
        &self.router
    }

    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks that every workload's binary exists, before anything starts.
    pub fn check_binaries(&self, app: &Application) -> Result<(), MissingBinary> {
        for w in &app.spec.workloads {
            self.config
                .binaries
                .resolve(&w.name, &w.image, &self.config.base_dir)?;
        }
        Ok(())
    }

    /// Registered revisions of a family (for tests and duplicate checks).
    pub fn revisions(&self, family: &str) -> Vec<LocalTaskDefinition> {
        self.state()
            .task_definitions
            .values()
            .filter(|d| d.family == family)
            .cloned()
            .collect()
    }

    /// (desired count, task-definition ARN) of a service.
    pub fn service(&self, name: &str) -> Option<(u32, String)> {
        self.state()
            .services
            .get(name)
            .map(|s| (s.desired_count, s.task_definition_arn.clone()))
    }

    /// What target group `group` answered over the last `window` (requests, target 5xx,
    /// response-time average and percentiles): the local answer to the ALB metrics the
    /// `cloudwatch` provider asks for.
    pub fn target_group_stats(&self, group: &str, window: Duration) -> stats::WindowStats {
        self.router
            .stats()
            .window(group, window, std::time::Instant::now())
    }

    /// The target group a service's replicas register in.
    pub fn service_target_group(&self, name: &str) -> Option<String> {
        self.state().services.get(name)?.target_group.clone()
    }

    /// Weight per target group of a workload's rule.
    pub fn rule_weights(&self, workload: &str) -> Option<BTreeMap<String, u32>> {
        self.state().rules.get(workload).map(|r| r.weights.clone())
    }

    /// Scales a service as an operator would by hand (drift).
    pub fn scale_by_hand(&self, service: &str, count: u32) {
        let changed = {
            let mut state = self.state();
            state.services.get_mut(service).map(|s| {
                s.desired_count = count;
                s.clone()
            })
        };
        if let Some(s) = changed
            && let Err(e) = self.run_service(service, &s)
        {
            tracing::warn!(error = %e, "scaling {service} by hand");
        }
    }

    /// Reweights a rule as an operator would by hand (drift).
    pub fn reweight_by_hand(&self, workload: &str, weights: &[(&str, u32)]) {
        let rule = {
            let mut state = self.state();
            state.rules.get_mut(workload).map(|r| {
                r.weights = weights.iter().map(|(g, w)| (g.to_string(), *w)).collect();
                r.clone()
            })
        };
        if let Some(rule) = rule {
            self.publish_rule(workload, &rule);
        }
    }

    /// Waits until every service runs its desired replicas, all healthy, or `timeout`.
    /// Returns whether they are.
    pub async fn settle(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.supervisor.changes();
        loop {
            let names: Vec<(String, u32)> = self
                .state()
                .services
                .iter()
                .map(|(n, s)| (n.clone(), s.desired_count))
                .collect();
            let settled = names.iter().all(|(name, desired)| {
                self.supervisor.view(name).is_some_and(|v| {
                    v.replicas.len() == *desired as usize && v.replicas.iter().all(|r| r.healthy)
                })
            });
            // The router's table follows the supervisor's changes in a task; make sure
            // it caught up before saying "settled".
            if settled {
                self.refresh_targets();
                return true;
            }
            if tokio::time::timeout_at(deadline, changes.changed())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    fn refresh_targets(&self) {
        let state = self.state();
        self.router
            .update(|t| t.targets = targets(&self.supervisor, &state));
    }

    fn publish_rule(&self, workload: &str, rule: &LocalRule) {
        let forward = rule.weights.iter().map(|(g, w)| (g.clone(), *w)).collect();
        self.router.update(|t| {
            t.rules.insert(
                workload.to_string(),
                Rule {
                    name: workload.to_string(),
                    priority: rule.priority,
                    path_patterns: rule.path_patterns.clone(),
                    forward,
                },
            );
            t.extras.insert(workload.to_string(), rule.extras.clone());
        });
    }

    /// The supervisor spec of a service's task definition.
    fn spec(&self, name: &str, service: &LocalService) -> Result<ServiceSpec, PlatformError> {
        let def = self
            .state()
            .task_definitions
            .get(&service.task_definition_arn)
            .cloned()
            .ok_or_else(|| PlatformError::NotFound {
                what: format!("task definition {}", service.task_definition_arn),
                message: format!("service {name} names it"),
            })?;
        let container = &def.definition.container;
        if !container.secrets.is_empty() {
            return Err(PlatformError::Unsupported(format!(
                "workload {}: secrets ({}) are not resolved on the local platform; put \
                 local values in `environment`",
                service.workload,
                container
                    .secrets
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let program = self
            .config
            .binaries
            .resolve(&service.workload, &container.image, &self.config.base_dir)
            .map_err(|e| PlatformError::NotFound {
                what: format!("the binary for workload {}", service.workload),
                message: e.to_string(),
            })?;
        let health = container.health_check.as_ref();
        let path = health
            .and_then(|h| probe_path(&h.command))
            .unwrap_or_else(|| "/health".into());
        let slot = name
            .strip_prefix(&format!("{}-", service.workload))
            .unwrap_or("service");
        Ok(ServiceSpec {
            label: format!("{}/{slot}", service.workload),
            program,
            args: Vec::new(),
            env: container.environment.clone(),
            cwd: self.config.base_dir.clone(),
            health: Some(HealthProbe {
                path,
                interval: Duration::from_secs(1),
                timeout: Duration::from_secs(health.map_or(2, |h| u64::from(h.timeout).min(2))),
                unhealthy_after: health.map_or(3, |h| h.retries),
            }),
            tag: service.task_definition_arn.clone(),
        })
    }

    fn run_service(&self, name: &str, service: &LocalService) -> Result<(), PlatformError> {
        let spec = self.spec(name, service)?;
        self.supervisor.ensure(name, spec, service.desired_count);
        Ok(())
    }

    fn save_task_definitions(
        &self,
        defs: &BTreeMap<String, LocalTaskDefinition>,
    ) -> Result<(), PlatformError> {
        let path = self.config.state_dir.join(TASK_DEFINITIONS_FILE);
        let tmp = self
            .config
            .state_dir
            .join(format!(".{TASK_DEFINITIONS_FILE}.tmp"));
        let text = serde_json::to_string_pretty(defs).expect("task definitions serialize");
        std::fs::create_dir_all(&self.config.state_dir)
            .and_then(|()| std::fs::write(&tmp, text))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| PlatformError::Unavailable {
                api: "local:RegisterTaskDefinition",
                message: format!("writing {}: {e}", path.display()),
                source: Some(Box::new(e)),
            })
    }

    fn observe_service(&self, state: &State, name: &str) -> Option<ObservedService> {
        let service = state.services.get(name)?;
        let content_hash = state
            .task_definitions
            .get(&service.task_definition_arn)
            .map(|d| d.content_hash.clone());
        let view = self.supervisor.view(name);
        let current: Vec<_> = view
            .iter()
            .filter(|v| v.spec.tag == service.task_definition_arn)
            .flat_map(|v| v.replicas.iter())
            .collect();
        let running = current.iter().filter(|r| r.running).count() as u32;
        let healthy = current.iter().filter(|r| r.healthy).count() as u32;
        Some(ObservedService {
            name: name.to_string(),
            owned: true,
            content_hash,
            task_definition_arn: Some(service.task_definition_arn.clone()),
            desired_count: service.desired_count,
            running_count: running,
            deployment_complete: running == service.desired_count
                && healthy == service.desired_count,
            deployment_failed: false,
            healthy_targets: if service.target_group.is_some() {
                healthy
            } else {
                0
            },
        })
    }

    fn check_owned(what: impl Into<String>, found: &str, me: &str) -> Result<(), PlatformError> {
        if found == me {
            Ok(())
        } else {
            Err(PlatformError::NotOwned {
                what: what.into(),
                owner: me.to_string(),
            })
        }
    }
}

/// Healthy replica addresses per target group.
fn targets(supervisor: &Supervisor, state: &State) -> BTreeMap<String, Vec<SocketAddr>> {
    let mut out: BTreeMap<String, Vec<SocketAddr>> = BTreeMap::new();
    for (name, service) in &state.services {
        let Some(group) = &service.target_group else {
            continue;
        };
        let healthy = supervisor
            .view(name)
            .filter(|v| v.spec.tag == service.task_definition_arn)
            .map(|v| {
                v.replicas
                    .iter()
                    .filter(|r| r.healthy)
                    .filter_map(|r| r.port)
                    .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        out.entry(group.clone()).or_default().extend(healthy);
    }
    out
}

/// Keeps the router's targets equal to the healthy replicas, on every supervisor change.
async fn sync_targets(supervisor: Supervisor, router: RouterHandle, state: Arc<Mutex<State>>) {
    let mut changes = supervisor.changes();
    loop {
        let table = {
            let state = state.lock().unwrap_or_else(|p| p.into_inner());
            targets(&supervisor, &state)
        };
        if router.table().targets != table {
            router.update(|t| t.targets = table);
        }
        if changes.changed().await.is_err() {
            return;
        }
    }
}

impl Platform for LocalPlatform {
    async fn observe(&self, app: &Application) -> Result<Observation, PlatformError> {
        self.calls.record("local:Observe", CallKind::Describe);
        let me = owner(app);
        let state = self.state();
        let mut observation = Observation::default();
        for workload in &app.spec.workloads {
            let mut observed = ObservedWorkload::default();
            if workload.is_progressive() {
                for slot in [Slot::Blue, Slot::Green] {
                    let name = service_name(&workload.name, Some(slot));
                    if let Some(s) = self.observe_service(&state, &name) {
                        observed.slots.insert(slot, s);
                    }
                }
            } else {
                observed.service = self.observe_service(&state, &workload.name);
            }
            if let (Some(rule), Some(route)) = (state.rules.get(&workload.name), &workload.route) {
                let weights = route.target_groups.slot_weights(&rule.weights);
                let ours = [&route.target_groups.blue, &route.target_groups.green];
                observed.rule = Some(ObservedRule {
                    arn: Some(format!("local:rule/{}", workload.name)),
                    owned: rule.owner == me,
                    weights,
                    priority: Some(rule.priority),
                    path_patterns: rule.path_patterns.clone(),
                    unexpected: rule
                        .weights
                        .keys()
                        .filter(|tg| !ours.contains(tg))
                        .map(|tg| format!("forwards to a third target group {tg}"))
                        .collect(),
                });
            }
            if let (Some(h), Some(route)) =
                (state.header_rules.get(&workload.name), &workload.route)
            {
                let slot = route.target_groups.slot_of(&h.target_group);
                observed.header_route = Some(tugboat_core::observed::ObservedHeaderRoute {
                    name: h.name.clone(),
                    slot,
                    priority: Some(h.priority),
                    matches: h.matches.clone(),
                });
            }
            if observed != ObservedWorkload::default() {
                observation
                    .state
                    .workloads
                    .insert(workload.name.clone(), observed);
            }
        }
        observation
            .state
            .task_definitions
            .extend(super::own_task_definitions(
                app,
                state
                    .task_definitions
                    .iter()
                    .map(|(arn, d)| (arn, d.family.as_str(), d.content_hash.as_str())),
            ));
        Ok(observation)
    }

    async fn apply(
        &self,
        app: &Application,
        action: &Action,
        task_definition_arn: Option<&str>,
    ) -> Result<ActionOutcome, PlatformError> {
        let me = owner(app);
        match action {
            Action::RegisterTaskDefinition {
                content_hash,
                definition,
                ..
            } => {
                let mut state = self.state();
                let existing = state.task_definitions.iter().find(|(_, d)| {
                    d.family == definition.family && &d.content_hash == content_hash
                });
                if let Some((arn, _)) = existing {
                    return Ok(ActionOutcome::TaskDefinition {
                        arn: arn.clone(),
                        reused: true,
                    });
                }
                self.calls
                    .record("local:RegisterTaskDefinition", CallKind::Mutate);
                let revision = state
                    .task_definitions
                    .values()
                    .filter(|d| d.family == definition.family)
                    .map(|d| d.revision)
                    .max()
                    .unwrap_or(0)
                    + 1;
                let arn = format!("local:task-definition/{}:{revision}", definition.family);
                let mut defs = state.task_definitions.clone();
                defs.insert(
                    arn.clone(),
                    LocalTaskDefinition {
                        family: definition.family.clone(),
                        revision,
                        content_hash: content_hash.clone(),
                        definition: definition.clone(),
                    },
                );
                // Persisted before it counts: a restart must find it by its hash.
                self.save_task_definitions(&defs)?;
                state.task_definitions = defs;
                Ok(ActionOutcome::TaskDefinition { arn, reused: false })
            }
            Action::CreateService {
                workload,
                service,
                content_hash,
                desired_count,
                target_group,
                ..
            } => {
                let arn =
                    task_definition_arn.ok_or_else(|| PlatformError::UnknownTaskDefinition {
                        workload: workload.clone(),
                        content_hash: content_hash.clone(),
                    })?;
                if let Some(existing) = self.state().services.get(service) {
                    Self::check_owned(format!("service {service}"), &existing.owner, &me)?;
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                let created = LocalService {
                    owner: me,
                    workload: workload.clone(),
                    task_definition_arn: arn.to_string(),
                    desired_count: *desired_count,
                    target_group: target_group.clone(),
                };
                // Resolve the binary before recording the service: a missing one is the
                // document's problem, said now, and nothing half-exists.
                self.spec(service, &created)?;
                self.calls.record("local:CreateService", CallKind::Mutate);
                self.state()
                    .services
                    .insert(service.clone(), created.clone());
                self.run_service(service, &created)?;
                Ok(ActionOutcome::Changed)
            }
            Action::UpdateService {
                service,
                desired_count,
                ..
            } => {
                let Some(mut updated) = self.state().services.get(service).cloned() else {
                    return Err(PlatformError::NotFound {
                        what: format!("service {service}"),
                        message: "no such local service".into(),
                    });
                };
                Self::check_owned(format!("service {service}"), &updated.owner, &me)?;
                let mut changed = false;
                if let Some(arn) = task_definition_arn
                    && updated.task_definition_arn != arn
                {
                    updated.task_definition_arn = arn.to_string();
                    changed = true;
                }
                if let Some(count) = desired_count
                    && updated.desired_count != *count
                {
                    updated.desired_count = *count;
                    changed = true;
                }
                if !changed {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.spec(service, &updated)?;
                self.calls.record("local:UpdateService", CallKind::Mutate);
                self.state()
                    .services
                    .insert(service.clone(), updated.clone());
                self.run_service(service, &updated)?;
                Ok(ActionOutcome::Changed)
            }
            Action::SetWeights {
                workload,
                path_patterns,
                priority,
                blue_target_group,
                green_target_group,
                blue,
                green,
            } => {
                let route = app.workload(workload).and_then(|w| w.route.as_ref());
                let wanted = LocalRule {
                    owner: me.clone(),
                    priority: *priority,
                    path_patterns: path_patterns.clone(),
                    weights: BTreeMap::from([
                        (blue_target_group.clone(), *blue),
                        (green_target_group.clone(), *green),
                    ]),
                    extras: super::local::router::RuleExtras {
                        conditions: route.map(|r| r.conditions.clone()).unwrap_or_default(),
                        stickiness: route
                            .and_then(|r| r.target_group_stickiness_config.as_ref())
                            .filter(|s| s.enabled)
                            .and_then(|s| s.duration_seconds)
                            .map(|d| std::time::Duration::from_secs(u64::from(d))),
                    },
                };
                {
                    let mut state = self.state();
                    if let Some(rule) = state.rules.get(workload) {
                        Self::check_owned(format!("rule of {workload}"), &rule.owner, &me)?;
                        if *rule == wanted {
                            return Ok(ActionOutcome::AlreadyInPlace);
                        }
                        self.calls.record("local:ModifyRule", CallKind::Mutate);
                    } else {
                        self.calls.record("local:CreateRule", CallKind::Mutate);
                    }
                    state.rules.insert(workload.clone(), wanted.clone());
                }
                self.publish_rule(workload, &wanted);
                Ok(ActionOutcome::Changed)
            }
            Action::SetHeaderRoute {
                workload,
                name,
                priority,
                path_patterns,
                target_group,
                matches,
                ..
            } => {
                let route = app.workload(workload).and_then(|w| w.route.as_ref());
                // The route's own conditions, then one http-header condition per match.
                let conditions: Vec<_> = route
                    .map(|r| r.conditions.clone())
                    .unwrap_or_default()
                    .into_iter()
                    .chain(matches.iter().filter_map(|m| m.rule_condition()))
                    .collect();
                let wanted = LocalHeaderRule {
                    name: name.clone(),
                    priority: *priority,
                    path_patterns: path_patterns.clone(),
                    target_group: target_group.clone(),
                    matches: matches.clone(),
                    conditions,
                };
                {
                    let mut state = self.state();
                    match state.header_rules.get(workload) {
                        Some(rule) if *rule == wanted => return Ok(ActionOutcome::AlreadyInPlace),
                        Some(_) => self.calls.record("local:ModifyRule", CallKind::Mutate),
                        None => self.calls.record("local:CreateRule", CallKind::Mutate),
                    }
                    state.header_rules.insert(workload.clone(), wanted.clone());
                }
                let key = header_rule_key(workload);
                self.router.update(|t| {
                    t.rules.insert(
                        key.clone(),
                        Rule {
                            name: key.clone(),
                            priority: wanted.priority,
                            path_patterns: wanted.path_patterns.clone(),
                            forward: vec![(wanted.target_group.clone(), 100)],
                        },
                    );
                    t.extras.insert(
                        key.clone(),
                        super::local::router::RuleExtras {
                            conditions: wanted.conditions.clone(),
                            stickiness: None,
                        },
                    );
                });
                Ok(ActionOutcome::Changed)
            }
            Action::RemoveHeaderRoute { workload, .. } => {
                if self.state().header_rules.remove(workload).is_none() {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.calls.record("local:DeleteRule", CallKind::Mutate);
                let key = header_rule_key(workload);
                self.router.update(|t| {
                    t.rules.remove(&key);
                    t.extras.remove(&key);
                });
                Ok(ActionOutcome::Changed)
            }
            Action::StartAnalysis { .. } => Ok(ActionOutcome::NotApplicable),
            // Validation refuses autoScaling on the local platform: it has no scaler.
            Action::EnsureScaling { .. } | Action::RemoveScaling { .. } => Err(
                PlatformError::Unsupported("the local platform has no autoscaler".into()),
            ),
        }
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    fn estimate_calls(&self, action: &Action, _observed: &ObservedState) -> CallEstimate {
        CallEstimate {
            describe: 0,
            mutate: u32::from(action.is_mutating()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_name_binaries_and_missing_ones_say_how_to_build_them() {
        assert_eq!(binary_name("backend"), "backend");
        assert_eq!(binary_name("backend:v2"), "backend");
        assert_eq!(binary_name("./bin/x:1"), "./bin/x");
        assert_eq!(binary_name("./a:b/x"), "./a:b/x");
        let dir = tempfile::tempdir().expect("tempdir");
        let local = dir.path().join("local");
        std::fs::create_dir_all(&local).expect("dir");
        std::fs::write(local.join("backend"), "").expect("file");
        let binaries = Binaries {
            dirs: vec![local.clone()],
            overrides: BTreeMap::new(),
        };
        assert_eq!(
            binaries.resolve("backend", "backend:1", dir.path()),
            Ok(local.join("backend"))
        );
        let err = binaries
            .resolve("ml", "inference", dir.path())
            .expect_err("missing");
        assert_eq!(
            err.build,
            "cargo build --profile local --no-default-features -p tugboat-inference --bin inference"
        );
        let message = err.to_string();
        assert!(
            message.contains("workload ml") && message.contains(&local.display().to_string()),
            "{message}"
        );
        assert_eq!(
            build_command("x", Some(Path::new("target/debug"))),
            "cargo build --bin x"
        );
    }

    #[test]
    fn relative_paths_of_a_local_document_are_relative_to_its_directory() {
        let base = Path::new("/repo/manifests");
        assert_eq!(
            anchor_file_uri("file://.tugboat/status.json", base),
            "file:///repo/manifests/.tugboat/status.json"
        );
        assert_eq!(anchor_file_uri("file:///abs/x", base), "file:///abs/x");
        assert_eq!(anchor_file_uri("s3://b/k", base), "s3://b/k");
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/local.yaml"),
        )
        .expect("manifests/local.yaml");
        let mut app = crate::source::load_document(&text, "local.yaml").expect("valid");
        anchor_paths(&mut app, base);
        let crate::document::Platform::Local(local) = &app.spec.platform else {
            panic!("local.yaml is local");
        };
        assert_eq!(local.state_dir.as_deref(), Some("/repo/manifests/.tugboat"));
        assert_eq!(
            app.spec.status.as_ref().map(|s| s.uri.as_str()),
            Some("file:///repo/manifests/.tugboat/status.json")
        );
        assert_eq!(
            app.spec.models[0].store_uri,
            "file:///repo/manifests/../workloads/inference/models"
        );
    }

    #[test]
    fn the_probe_path_comes_from_the_health_check_command() {
        let cmd = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            probe_path(&cmd(&[
                "CMD-SHELL",
                "curl -f http://localhost:8000/ready || exit 1"
            ])),
            Some("/ready".into())
        );
        assert_eq!(
            probe_path(&cmd(&[
                "CMD",
                "curl",
                "-f",
                "http://127.0.0.1:80/ml/health"
            ])),
            Some("/ml/health".into())
        );
        assert_eq!(
            probe_path(&cmd(&["CMD-SHELL", "wget -q 'http://localhost:8000' -O-"])),
            Some("/".into())
        );
        assert_eq!(probe_path(&cmd(&["CMD", "true"])), None);
    }
}
