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

use crate::document::{Application, HealthCheck, LogConfiguration, Platform, Workload};
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerDefinition {
    pub name: String,
    pub image: String,
    pub port: u16,
    pub environment: BTreeMap<String, String>,
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
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
            Some(aws.execution_role_arn.clone()),
            aws.task_role_arn.clone(),
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
            name: workload.name.clone(),
            image: workload.image.clone(),
            port: workload.container_port,
            environment,
            secrets: workload.secrets.clone(),
            health_check: workload.health_check.clone(),
            log_configuration: workload.log_configuration.clone(),
        },
    }
}

impl TaskDefinition {
    /// First 16 hex digits of the SHA-256 of the canonical JSON form. Maps are ordered
    /// (BTreeMap), so the form is canonical; 64 bits make accidental collisions between
    /// one family's revisions practically impossible while staying readable in logs.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).expect("task definition serializes");
        let digest = Sha256::digest(&canonical);
        hex::encode(&digest[..8])
    }
}
