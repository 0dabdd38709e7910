//! Rendering a workload into the task definition tugboat registers, and its content hash.
//!
//! The rendered definition is a pure function of the document (and the resolved model),
//! and its hash is a pure function of the rendered definition: the same document always
//! yields the same hash, so the controller can find an already-registered revision by its
//! hash tag and never registers an unchanged definition twice.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::document::{
    Application, ContainerOptions, EphemeralStorage, HealthCheck, LogConfiguration, Platform,
    PortMapping, PortProtocol, RuntimePlatform, ServiceSettings, Volume, Workload,
};
use crate::observed::ResolvedModel;

/// Tag key carrying the content hash on task definitions tugboat registers.
pub const HASH_TAG: &str = "tugboat:content-hash";
/// Tag key marking resources tugboat created (value: `<app>/<environment>`).
pub const MANAGED_BY_TAG: &str = "tugboat:managed-by";
/// Tag key naming the workload a resource belongs to.
pub const WORKLOAD_TAG: &str = "tugboat:workload";

/// The platform-neutral task definition of one workload revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskDefinition {
    pub family: String,
    pub cpu: u32,
    pub memory: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    pub container: ContainerDefinition,
    // The fields below are absent from the canonical form when unused, so the content
    // hash of a definition without them is the one earlier builds computed (no
    // re-registration on upgrade).
    /// The sidecars, in document order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<ContainerDefinition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// Not part of the ECS task definition: the settings of the services that run this
    /// revision. Hashed with it, so a settings change is a new revision and rolls out
    /// through the strategy's steps like any other change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSettings>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    /// The main container's routed port; sidecars have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// Everything else, in ECS's names. On the main container, a non-empty
    /// `portMappings` is the whole list (with `port` in it).
    #[serde(default, skip_serializing_if = "ContainerOptions::is_empty")]
    pub options: ContainerOptions,
}

/// The task-definition family of a workload: `<app>-<workload>`.
pub fn family(app: &Application, workload: &Workload) -> String {
    format!("{}-{}", app.metadata.name, workload.name)
}

/// Renders the task definition for `workload`, injecting the resolved model (if any) as
/// `MODEL_URI`, `MODEL_VERSION` and `MODEL_SHA256`.
pub fn render(
    app: &Application,
    workload: &Workload,
    model: Option<&ResolvedModel>,
) -> TaskDefinition {
    let mut environment = workload.environment.clone();
    if let Some(m) = model {
        environment.insert("MODEL_URI".into(), m.uri.clone());
        environment.insert("MODEL_VERSION".into(), m.version.clone());
        environment.insert("MODEL_SHA256".into(), m.sha256.clone());
    }
    let (execution_role_arn, task_role_arn) = match &app.spec.platform {
        Platform::Aws(aws) => (
            Some(
                workload
                    .execution_role_arn
                    .clone()
                    .unwrap_or_else(|| aws.execution_role_arn.clone()),
            ),
            workload
                .task_role_arn
                .clone()
                .or_else(|| aws.task_role_arn.clone()),
        ),
        Platform::Local(_) => (None, None),
    };
    TaskDefinition {
        family: family(app, workload),
        cpu: workload.cpu,
        memory: workload.memory,
        execution_role_arn,
        task_role_arn,
        container: ContainerDefinition {
            name: main_container_name(workload).to_string(),
            image: workload.image.clone(),
            port: workload.container_port,
            environment,
            secrets: workload.secrets.clone(),
            health_check: workload.health_check.clone(),
            log_configuration: workload.log_configuration.clone(),
            options: main_options(workload),
        },
        sidecars: workload
            .sidecars
            .iter()
            .map(|s| ContainerDefinition {
                name: s.name.clone(),
                image: s.image.clone(),
                port: None,
                environment: s.environment.clone(),
                secrets: s.secrets.clone(),
                health_check: s.health_check.clone(),
                log_configuration: s.log_configuration.clone(),
                options: s.options(),
            })
            .collect(),
        volumes: workload.volumes.clone(),
        runtime_platform: workload.runtime_platform.clone(),
        ephemeral_storage: workload.ephemeral_storage.clone(),
        service: workload
            .service
            .clone()
            .filter(|s| s != &ServiceSettings::default()),
    }
}

/// The name of the workload's main container in its task definition (the one the load
/// balancer sends traffic to).
pub fn main_container_name(workload: &Workload) -> &str {
    workload.container_name.as_deref().unwrap_or(&workload.name)
}

/// The main container's options, with `containerPort` first in a non-empty
/// `portMappings` when the document does not list it.
fn main_options(workload: &Workload) -> ContainerOptions {
    let mut options = workload.container.clone().unwrap_or_default();
    if let Some(port) = workload.container_port {
        let listed = options
            .port_mappings
            .iter()
            .any(|p| p.container_port == port);
        if !options.port_mappings.is_empty() && !listed {
            options.port_mappings.insert(0, bare_port(port));
        }
    }
    options
}

fn bare_port(port: u16) -> PortMapping {
    PortMapping {
        container_port: port,
        host_port: None,
        protocol: Some(PortProtocol::Tcp),
        name: None,
        app_protocol: None,
    }
}

impl ContainerDefinition {
    /// The port mappings registered for this container: the options' list, else the
    /// routed port alone (over TCP), else none.
    pub fn port_mappings(&self) -> Vec<PortMapping> {
        if !self.options.port_mappings.is_empty() {
            return self.options.port_mappings.clone();
        }
        self.port.map(bare_port).into_iter().collect()
    }

    /// This container in the `containerDefinitions` JSON shape.
    fn ecs_json(&self) -> serde_json::Value {
        use serde_json::{Value, json};
        let o = &self.options;
        let mut c = serde_json::Map::new();
        c.insert("name".into(), json!(self.name));
        c.insert("image".into(), json!(self.image));
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                c.insert(key.into(), value);
            }
        };
        put("essential", json!(o.essential));
        put("cpu", json!(o.cpu));
        put("memory", json!(o.memory));
        put("memoryReservation", json!(o.memory_reservation));
        let mappings = self.port_mappings();
        if !mappings.is_empty() {
            put("portMappings", json!(mappings));
        }
        if !self.environment.is_empty() {
            put(
                "environment",
                Value::Array(
                    self.environment
                        .iter()
                        .map(|(k, v)| json!({"name": k, "value": v}))
                        .collect(),
                ),
            );
        }
        if !self.secrets.is_empty() {
            put(
                "secrets",
                Value::Array(
                    self.secrets
                        .iter()
                        .map(|(k, v)| json!({"name": k, "valueFrom": v}))
                        .collect(),
                ),
            );
        }
        put("healthCheck", json!(self.health_check));
        put("logConfiguration", json!(self.log_configuration));
        if !o.depends_on.is_empty() {
            put("dependsOn", json!(o.depends_on));
        }
        if !o.command.is_empty() {
            put("command", json!(o.command));
        }
        if !o.entry_point.is_empty() {
            put("entryPoint", json!(o.entry_point));
        }
        put("workingDirectory", json!(o.working_directory));
        put("user", json!(o.user));
        put("readonlyRootFilesystem", json!(o.readonly_root_filesystem));
        if !o.ulimits.is_empty() {
            put("ulimits", json!(o.ulimits));
        }
        put("linuxParameters", json!(o.linux_parameters));
        put("stopTimeout", json!(o.stop_timeout));
        put("repositoryCredentials", json!(o.repository_credentials));
        put("firelensConfiguration", json!(o.firelens_configuration));
        if !o.mount_points.is_empty() {
            put("mountPoints", json!(o.mount_points));
        }
        Value::Object(c)
    }
}

impl TaskDefinition {
    /// Every container, main first.
    pub fn containers(&self) -> impl Iterator<Item = &ContainerDefinition> {
        std::iter::once(&self.container).chain(&self.sidecars)
    }

    /// The `RegisterTaskDefinition` request in ECS's JSON shape (what `aws ecs
    /// register-task-definition --cli-input-json` takes): what `tugboat import` round
    /// trips against. The AWS platform builds the same request with the SDK.
    pub fn ecs_json(&self) -> serde_json::Value {
        use serde_json::json;
        let mut d = serde_json::Map::new();
        d.insert("family".into(), json!(self.family));
        d.insert("requiresCompatibilities".into(), json!(["FARGATE"]));
        d.insert("networkMode".into(), json!("awsvpc"));
        d.insert("cpu".into(), json!(self.cpu.to_string()));
        d.insert("memory".into(), json!(self.memory.to_string()));
        if let Some(arn) = &self.execution_role_arn {
            d.insert("executionRoleArn".into(), json!(arn));
        }
        if let Some(arn) = &self.task_role_arn {
            d.insert("taskRoleArn".into(), json!(arn));
        }
        d.insert(
            "containerDefinitions".into(),
            serde_json::Value::Array(self.containers().map(|c| c.ecs_json()).collect()),
        );
        if !self.volumes.is_empty() {
            d.insert("volumes".into(), json!(self.volumes));
        }
        if let Some(p) = &self.runtime_platform {
            d.insert("runtimePlatform".into(), json!(p));
        }
        if let Some(e) = &self.ephemeral_storage {
            d.insert("ephemeralStorage".into(), json!(e));
        }
        serde_json::Value::Object(d)
    }

    /// First 16 hex digits of the SHA-256 of the canonical JSON form. Maps are ordered
    /// (BTreeMap), so the form is canonical; 64 bits make accidental collisions between
    /// one family's revisions practically impossible while staying readable in logs.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("task definition serializes");
        let digest = Sha256::digest(&canonical);
        hex::encode(&digest[..8])
    }
}
