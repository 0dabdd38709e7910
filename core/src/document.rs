//! The desired-state document: one application in one environment.
//!
//! These types are the contract between the people who write `manifests/*.yaml` and the
//! controller. They are plain data (serde + schemars, no I/O) so the same definitions
//! produce the JSON Schema in `crds/`, drive editor validation, and feed the planner.
//!
//! Guarantees:
//! - Unknown fields are rejected everywhere (`deny_unknown_fields`, and the schema's
//!   `additionalProperties: false`): a typo is an error, never a silently ignored setting.
//!   [`crate::validate::load`] reports every one of them, not just the first.
//! - Names follow what users already know: ECS task definitions (`cpu`, `memory`,
//!   `healthCheck`, `logConfiguration`, `secrets` as `valueFrom` ARNs), Argo Rollouts
//!   (`strategy.canary.steps`, `setWeight`, `pause`, `analysis`, `scaleDownDelay`,
//!   `successCondition`, `failureLimit`), and the seed's model layout and SSM pointer.
//! - Semantic rules the schema cannot express (unique names, step order, Fargate sizes,
//!   references) live in [`crate::validate`]; a document is only used after it passes.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The only `apiVersion` this build understands.
pub const API_VERSION: &str = "tugboat.dev/v1alpha1";
/// The only `kind` this build understands.
pub const KIND: &str = "Application";

/// A whole desired-state document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(title = "tugboat Application")]
pub struct Application {
    /// Always `tugboat.dev/v1alpha1`.
    #[schemars(extend("enum" = [API_VERSION]))]
    pub api_version: String,
    /// Always `Application`.
    #[schemars(extend("enum" = [KIND]))]
    pub kind: String,
    pub metadata: Metadata,
    pub spec: ApplicationSpec,
}

/// Who this document is: the application and the environment it describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// Application name, e.g. `prediction-app`. Lower-case letters, digits and `-`.
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// Environment, e.g. `dev`, `stage`, `prod`, `local`.
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub environment: String,
    /// Free-form labels, copied onto every AWS resource tugboat creates as tags.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// Everything the controller needs to run the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApplicationSpec {
    pub platform: Platform,
    /// The services to run. At least one.
    #[schemars(length(min = 1))]
    pub workloads: Vec<Workload>,
    /// Metric checks that canary and blue/green steps refer to by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub analysis_templates: Vec<AnalysisTemplate>,
    /// Model artifacts that workloads serve, by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<Model>,
    /// Where operators steer live rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overrides: Option<Overrides>,
    /// Where the rollout status is persisted, so the CLI can read it without the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StatusStore>,
    /// Webhooks told about rollouts (started, step reached, paused, analysis verdict,
    /// aborted, promoted, completed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifications: Vec<Notification>,
}

/// Where the application runs. Exactly one of `aws` or `local`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Platform {
    /// Amazon ECS (Fargate) behind an Application Load Balancer.
    Aws(AwsPlatform),
    /// The workloads as child processes on this machine, behind tugboat's own router.
    Local(LocalPlatform),
}

/// ECS, VPC and ALB settings shared by every workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AwsPlatform {
    /// AWS region, e.g. `ap-south-1`.
    pub region: String,
    /// ECS cluster name or ARN.
    pub cluster: String,
    /// Subnets for the tasks' awsvpc network interfaces.
    pub subnets: Vec<String>,
    /// Security groups for the tasks.
    pub security_groups: Vec<String>,
    /// `ENABLED` or `DISABLED` public IPs, as in ECS. Defaults to `DISABLED`.
    #[serde(default)]
    pub assign_public_ip: AssignPublicIp,
    /// Role ECS uses to pull images and write logs.
    pub execution_role_arn: String,
    /// Role the application code runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// The ALB listener whose rules tugboat manages for routed workloads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listener_arn: Option<String>,
}

/// Public IP assignment for awsvpc tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AssignPublicIp {
    Enabled,
    #[default]
    Disabled,
}

/// Settings of the local platform (processes on this machine).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LocalPlatform {
    /// Address the weighted router listens on, e.g. `127.0.0.1:8080`.
    pub listen: String,
    /// Directory for overrides, models and status files. Defaults to `.tugboat`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_dir: Option<String>,
}

/// One service of the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// Workload name, unique in the document; ECS services are named after it.
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// Container image, e.g. `123456789012.dkr.ecr.ap-south-1.amazonaws.com/backend-api:1.4.2`.
    pub image: String,
    /// Fargate CPU units: 256, 512, 1024, 2048, 4096, 8192 or 16384.
    #[schemars(extend("enum" = [256, 512, 1024, 2048, 4096, 8192, 16384]))]
    pub cpu: u32,
    /// Memory in MiB; must be valid for the CPU size (Fargate's table).
    pub memory: u32,
    /// Number of tasks at rest (at most 1000).
    #[schemars(range(max = 1000))]
    pub desired_count: u32,
    /// Port the main container listens on. Required with a `route`; a worker (a queue
    /// consumer, a scheduler) has none, and its service no load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub container_port: Option<u16>,
    /// Plain environment variables.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// Secrets injected as environment variables, by Secrets Manager or SSM parameter ARN.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    /// Container health check, as in an ECS task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    /// Container log configuration, as in an ECS task definition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// The ALB path route and its two target groups. Required for blue/green and canary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// How a new revision reaches users.
    pub strategy: Strategy,
    /// Name of an entry in `spec.models` this workload serves. tugboat passes it as
    /// `MODEL_URI`, `MODEL_VERSION` and `MODEL_SHA256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The main container's name in the task definition, when it differs from the
    /// workload's (real task definitions name containers freely). Default: `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[a-zA-Z0-9][-_a-zA-Z0-9]{0,254}$"))]
    pub container_name: Option<String>,
    /// More ECS container settings of the main container, in the task definition's names
    /// (`command`, `dependsOn`, `portMappings`, `mountPoints`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerOptions>,
    /// Further containers in the same task: log routers, proxies, agents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sidecars: Vec<Sidecar>,
    /// Task-level volumes the containers mount (`mountPoints`): bind or EFS.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
    /// CPU architecture and OS of the task, e.g. `{cpuArchitecture: ARM64}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_platform: Option<RuntimePlatform>,
    /// Fargate ephemeral storage above the default 20 GiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
    /// This workload's task role; overrides `spec.platform.aws.taskRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_role_arn: Option<String>,
    /// This workload's execution role; overrides `spec.platform.aws.executionRoleArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_role_arn: Option<String>,
    /// ECS service settings of the workload's services, in ECS's names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceSettings>,
    /// Application Auto Scaling of the service (the stable slot's, for canary and
    /// blueGreen): the scaler owns the task count within `minCapacity`..`maxCapacity`,
    /// and `desiredCount` is only the count a new service starts with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_scaling: Option<AutoScaling>,
}

/// Application Auto Scaling of a workload, in Application Auto Scaling's names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AutoScaling {
    #[schemars(range(max = 1000))]
    pub min_capacity: u32,
    #[schemars(range(max = 1000))]
    pub max_capacity: u32,
    /// Target-tracking policies, at most one per metric.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_tracking: Vec<TargetTracking>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scheduled_actions: Vec<ScheduledAction>,
}

/// One target-tracking policy on a predefined ECS metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetTracking {
    pub predefined_metric: PredefinedMetric,
    /// Percent for CPU and memory; requests per target per minute for
    /// `ALBRequestCountPerTarget`.
    pub target_value: f64,
    /// Seconds after a scale-in before another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_in_cooldown: Option<u32>,
    /// Seconds after a scale-out before another.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_out_cooldown: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_scale_in: Option<bool>,
}

/// Application Auto Scaling's predefined metrics for ECS services.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum PredefinedMetric {
    #[serde(rename = "ECSServiceAverageCPUUtilization")]
    EcsServiceAverageCpuUtilization,
    #[serde(rename = "ECSServiceAverageMemoryUtilization")]
    EcsServiceAverageMemoryUtilization,
    #[serde(rename = "ALBRequestCountPerTarget")]
    AlbRequestCountPerTarget,
}

impl PredefinedMetric {
    pub fn as_str(self) -> &'static str {
        match self {
            PredefinedMetric::EcsServiceAverageCpuUtilization => "ECSServiceAverageCPUUtilization",
            PredefinedMetric::EcsServiceAverageMemoryUtilization => {
                "ECSServiceAverageMemoryUtilization"
            }
            PredefinedMetric::AlbRequestCountPerTarget => "ALBRequestCountPerTarget",
        }
    }
}

/// A scheduled change of the capacity range, e.g. a larger minimum on weekday mornings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScheduledAction {
    /// Unique in the workload; letters, digits, `-` and `_`.
    pub scheduled_action_name: String,
    /// `at(yyyy-mm-ddThh:mm:ss)`, `rate(5 minutes)` or `cron(0 8 ? * MON-FRI *)`.
    pub schedule: String,
    /// IANA time zone of a cron or at schedule, e.g. `Europe/Berlin`; default UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    pub scalable_target_action: ScalableTargetAction,
}

/// The capacity range a scheduled action sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ScalableTargetAction {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_capacity: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_capacity: Option<u32>,
}

/// ECS service settings. They are part of the revision: a change rolls out like a new
/// image (on the canary slot first for progressive workloads).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceSettings {
    /// Fargate platform version, e.g. `1.4.0`. ECS's default: `LATEST`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_version: Option<String>,
    /// Allow `aws ecs execute-command` into the tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enable_execute_command: Option<bool>,
    /// Seconds ECS ignores failing load-balancer health checks of a new task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 2147483647))]
    pub health_check_grace_period_seconds: Option<u32>,
    /// FARGATE / FARGATE_SPOT with base and weight, instead of the FARGATE launch type.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
    /// ECS's deployment circuit breaker. Default: on, with rollback for rolling
    /// workloads; progressive slots never roll back through ECS (tugboat moves weight).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_circuit_breaker: Option<DeploymentCircuitBreaker>,
    /// ECS Service Connect: `{enabled, namespace}` alone makes the tasks clients of the
    /// namespace; `services` also publishes a port under a discovery name and client
    /// aliases. Publishing is for rolling workloads only (see the README's "Service
    /// discovery": a progressive workload's two slots cannot share a name, and calls over
    /// Service Connect would bypass the ALB weights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_connect_configuration: Option<ServiceConnectConfiguration>,
    /// Cloud Map registries the service's tasks are registered in (rolling only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_registries: Vec<ServiceRegistry>,
}

/// `serviceConnectConfiguration` of an ECS service, in ECS's shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceConnectConfiguration {
    pub enabled: bool,
    /// Cloud Map namespace name or ARN; absent: the cluster's default namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Ports this service publishes to the namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub services: Vec<ServiceConnectService>,
    /// Logs of the Service Connect proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
}

/// One published port of `serviceConnectConfiguration.services`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceConnectService {
    /// `name` of a `portMappings` entry of the main container.
    pub port_name: String,
    /// Name in the namespace; ECS's default: `portName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery_name: Option<String>,
    /// Names and ports clients call, e.g. `{port: 8000, dnsName: ml-model-service}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub client_aliases: Vec<ServiceConnectClientAlias>,
}

/// A `clientAliases` entry: the client-side name and port of a published service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceConnectClientAlias {
    #[schemars(range(min = 1))]
    pub port: u16,
    /// ECS's default: `discoveryName.namespace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dns_name: Option<String>,
}

/// A `serviceRegistries` entry: a Cloud Map service the tasks register in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ServiceRegistry {
    /// `arn:aws:servicediscovery:...:service/srv-...`.
    pub registry_arn: String,
    /// Port of SRV records (awsvpc: prefer `containerName` + `containerPort`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
}

/// One entry of `capacityProviderStrategy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CapacityProviderStrategyItem {
    /// `FARGATE` or `FARGATE_SPOT`.
    pub capacity_provider: String,
    /// Tasks placed on this provider first (one entry at most has a base).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 100000))]
    pub base: Option<u32>,
    /// Relative share of the tasks beyond the bases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = 1000))]
    pub weight: Option<u32>,
}

/// `deploymentConfiguration.deploymentCircuitBreaker`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeploymentCircuitBreaker {
    pub enable: bool,
    #[serde(default)]
    pub rollback: bool,
}

/// ECS container settings beyond image, environment, secrets, health check and logs, in
/// the task definition's names. Every field is optional; absent means ECS's default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerOptions {
    /// Whether the task stops when this container stops. ECS's default: true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    /// CPU units reserved for this container, within the task's `cpu`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// Hard memory limit in MiB, within the task's `memory`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    /// Soft memory limit in MiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
    /// Containers that must reach a condition before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    /// Seconds between SIGTERM and SIGKILL (at most 120 on Fargate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    /// Ports the container listens on. On the main container, `containerPort` is added
    /// first when it is not listed here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    /// A Secrets Manager secret with the credentials of a private registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
    /// Makes this container the task's FireLens log router.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<FirelensConfiguration>,
    /// Task volumes mounted into this container.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
}

impl ContainerOptions {
    pub fn is_empty(&self) -> bool {
        self == &ContainerOptions::default()
    }
}

/// A sidecar container: an ECS container definition in its own names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Sidecar {
    /// Container name, unique in the task.
    #[schemars(pattern(r"^[a-zA-Z0-9][-_a-zA-Z0-9]{0,254}$"))]
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
    /// As the workload's `secrets`: ARN, or an SSM parameter name in the task's region.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub secrets: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheck>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_configuration: Option<LogConfiguration>,
    /// ECS's default: true. A log router or an agent is often `false`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub essential: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<ContainerDependency>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry_point: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_directory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readonly_root_filesystem: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ulimits: Vec<Ulimit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_parameters: Option<LinuxParameters>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_mappings: Vec<PortMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository_credentials: Option<RepositoryCredentials>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firelens_configuration: Option<FirelensConfiguration>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mount_points: Vec<MountPoint>,
}

impl Sidecar {
    /// The settings this sidecar shares with the main container's [`ContainerOptions`].
    pub fn options(&self) -> ContainerOptions {
        ContainerOptions {
            essential: self.essential,
            cpu: self.cpu,
            memory: self.memory,
            memory_reservation: self.memory_reservation,
            depends_on: self.depends_on.clone(),
            command: self.command.clone(),
            entry_point: self.entry_point.clone(),
            working_directory: self.working_directory.clone(),
            user: self.user.clone(),
            readonly_root_filesystem: self.readonly_root_filesystem,
            ulimits: self.ulimits.clone(),
            linux_parameters: self.linux_parameters.clone(),
            stop_timeout: self.stop_timeout,
            port_mappings: self.port_mappings.clone(),
            repository_credentials: self.repository_credentials.clone(),
            firelens_configuration: self.firelens_configuration.clone(),
            mount_points: self.mount_points.clone(),
        }
    }
}

/// `dependsOn` entry: start after `containerName` reached `condition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerDependency {
    pub container_name: String,
    pub condition: DependencyCondition,
}

/// ECS's container dependency conditions. `HEALTHY` needs a `healthCheck` on the
/// container depended on; `COMPLETE` and `SUCCESS` a container that is not essential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DependencyCondition {
    Start,
    Complete,
    Success,
    Healthy,
}

impl DependencyCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            DependencyCondition::Start => "START",
            DependencyCondition::Complete => "COMPLETE",
            DependencyCondition::Success => "SUCCESS",
            DependencyCondition::Healthy => "HEALTHY",
        }
    }
}

/// A `ulimits` entry, e.g. `{name: nofile, softLimit: 65536, hardLimit: 65536}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ulimit {
    pub name: String,
    pub soft_limit: i32,
    pub hard_limit: i32,
}

/// The Linux parameters Fargate supports.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LinuxParameters {
    /// Run an init process (tini) as PID 1 that reaps zombies and forwards signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_process_enabled: Option<bool>,
}

/// A `portMappings` entry. On Fargate (awsvpc) `hostPort` is absent or equal to
/// `containerPort`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortMapping {
    #[schemars(range(min = 1))]
    pub container_port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
    /// `tcp` (ECS's default) or `udp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<PortProtocol>,
    /// Port name, used by Service Connect. Lower-case letters, digits and `-`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `http`, `http2` or `grpc`, for Service Connect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<AppProtocol>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PortProtocol {
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AppProtocol {
    Http,
    Http2,
    Grpc,
}

/// Credentials of a private registry, as a Secrets Manager secret ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RepositoryCredentials {
    pub credentials_parameter: String,
}

/// FireLens: this container routes the task's logs (`awsfirelens` log driver elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FirelensConfiguration {
    /// `fluentbit` or `fluentd`.
    #[serde(rename = "type")]
    pub kind: FirelensType,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FirelensType {
    Fluentbit,
    Fluentd,
}

/// A `mountPoints` entry: a task volume at a path in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MountPoint {
    /// Name of an entry in the workload's `volumes`.
    pub source_volume: String,
    pub container_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
}

/// A task volume: a bind volume (task storage shared by containers) when only `name` is
/// given, or an EFS file system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Volume {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub efs_volume_configuration: Option<EfsVolumeConfiguration>,
}

/// An EFS volume, as in ECS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EfsVolumeConfiguration {
    /// e.g. `fs-0123456789abcdef0`.
    pub file_system_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_directory: Option<String>,
    /// `ENABLED` or `DISABLED`; required `ENABLED` with IAM or an access point.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption: Option<Toggle>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transit_encryption_port: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_config: Option<EfsAuthorizationConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EfsAuthorizationConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_point_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iam: Option<Toggle>,
}

/// ECS's `ENABLED` / `DISABLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Toggle {
    Enabled,
    Disabled,
}

impl Toggle {
    pub fn as_str(self) -> &'static str {
        match self {
            Toggle::Enabled => "ENABLED",
            Toggle::Disabled => "DISABLED",
        }
    }
}

/// `runtimePlatform` of the task definition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuntimePlatform {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_architecture: Option<CpuArchitecture>,
    /// Only `LINUX`: tugboat runs Linux tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_system_family: Option<OperatingSystemFamily>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum CpuArchitecture {
    #[serde(rename = "X86_64")]
    X86_64,
    #[serde(rename = "ARM64")]
    Arm64,
}

impl CpuArchitecture {
    pub fn as_str(self) -> &'static str {
        match self {
            CpuArchitecture::X86_64 => "X86_64",
            CpuArchitecture::Arm64 => "ARM64",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OperatingSystemFamily {
    Linux,
}

/// Fargate ephemeral storage, 21-200 GiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EphemeralStorage {
    #[serde(rename = "sizeInGiB")]
    #[schemars(range(min = 21, max = 200))]
    pub size_in_gib: u32,
}

/// Container health check; times in seconds, as ECS takes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HealthCheck {
    /// e.g. `["CMD-SHELL", "curl -f http://localhost:8000/health || exit 1"]`.
    pub command: Vec<String>,
    /// Seconds between checks (5-300). Default 30.
    #[serde(default = "default_hc_interval")]
    #[schemars(range(min = 5, max = 300))]
    pub interval: u32,
    /// Seconds before a check fails (2-60). Default 5.
    #[serde(default = "default_hc_timeout")]
    #[schemars(range(min = 2, max = 60))]
    pub timeout: u32,
    /// Consecutive failures before unhealthy (1-10). Default 3.
    #[serde(default = "default_hc_retries")]
    #[schemars(range(min = 1, max = 10))]
    pub retries: u32,
    /// Grace period in seconds (0-300). Default 0.
    #[serde(default)]
    #[schemars(range(max = 300))]
    pub start_period: u32,
}

fn default_hc_interval() -> u32 {
    30
}
fn default_hc_timeout() -> u32 {
    5
}
fn default_hc_retries() -> u32 {
    3
}

/// Container log configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogConfiguration {
    /// e.g. `awslogs`.
    pub log_driver: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, String>,
}

/// An ALB listener rule that forwards to two target groups with weights.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Route {
    /// Path patterns of the rule, e.g. `["/api/*"]`.
    #[schemars(length(min = 1), inner(pattern(r"^/")))]
    pub path_patterns: Vec<String>,
    /// Rule priority on the listener (1-50000), unique on the listener.
    #[schemars(range(min = 1, max = 50000))]
    pub priority: u32,
    /// The blue and green target groups. Rolling workloads use `blue` only.
    pub target_groups: TargetGroups,
    /// More target groups of the service, one per further port (an ECS service's
    /// `loadBalancers` beyond the first), e.g. a gRPC port behind its own listener.
    /// Rolling workloads only: weights move on the route's rule alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub additional_target_groups: Vec<AdditionalTargetGroup>,
    /// More conditions of the rule beside the path (all must match), in ELB's shape:
    /// `{field: host-header, hostHeaderConfig: {values: [api.example.com]}}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<RuleCondition>,
    /// Stickiness of the forward action: a client keeps the target group it got (the
    /// ALB's `AWSALBTG` cookie) for `durationSeconds`, whatever the weights say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group_stickiness_config: Option<TargetGroupStickinessConfig>,
}

/// A listener-rule condition beyond the path: `field` and its one `*Config` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RuleCondition {
    pub field: ConditionField,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_header_config: Option<ValuesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_header_config: Option<HttpHeaderConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request_method_config: Option<ValuesConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_string_config: Option<QueryStringConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip_config: Option<ValuesConfig>,
}

/// The condition fields tugboat renders (`path-pattern` is the route's `pathPatterns`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ConditionField {
    HostHeader,
    HttpHeader,
    HttpRequestMethod,
    QueryString,
    SourceIp,
}

impl ConditionField {
    pub fn as_str(self) -> &'static str {
        match self {
            ConditionField::HostHeader => "host-header",
            ConditionField::HttpHeader => "http-header",
            ConditionField::HttpRequestMethod => "http-request-method",
            ConditionField::QueryString => "query-string",
            ConditionField::SourceIp => "source-ip",
        }
    }

    /// The `*Config` key that goes with the field.
    pub fn config_key(self) -> &'static str {
        match self {
            ConditionField::HostHeader => "hostHeaderConfig",
            ConditionField::HttpHeader => "httpHeaderConfig",
            ConditionField::HttpRequestMethod => "httpRequestMethodConfig",
            ConditionField::QueryString => "queryStringConfig",
            ConditionField::SourceIp => "sourceIpConfig",
        }
    }
}

/// `{values: [...]}`: host names (with `*`/`?`), methods, or CIDR blocks; any matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValuesConfig {
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

/// `{httpHeaderName, values}`: the header's value matches any of `values` (`*`, `?`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpHeaderConfig {
    pub http_header_name: String,
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

/// `{values: [{key?, value}]}`: any pair matches a query parameter (no key: any key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueryStringConfig {
    #[schemars(length(min = 1))]
    pub values: Vec<QueryStringKeyValue>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct QueryStringKeyValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub value: String,
}

/// `TargetGroupStickinessConfig` of a forward action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetGroupStickinessConfig {
    pub enabled: bool,
    /// 1 to 604800 seconds; required when enabled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_seconds: Option<u32>,
}

/// One more `loadBalancers` entry of a service: a container port in a target group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AdditionalTargetGroup {
    pub target_group_arn: String,
    /// A container of the task; default the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[schemars(range(min = 1))]
    pub container_port: u16,
}

/// The two target groups of a route, one per slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetGroups {
    pub blue: String,
    pub green: String,
}

impl TargetGroups {
    /// Each slot with its target group, blue first.
    pub fn by_slot(&self) -> [(Slot, &str); 2] {
        [(Slot::Blue, &self.blue), (Slot::Green, &self.green)]
    }

    /// The slot whose target group is `target_group`, if either.
    pub fn slot_of(&self, target_group: &str) -> Option<Slot> {
        self.by_slot()
            .into_iter()
            .find(|(_, tg)| *tg == target_group)
            .map(|(slot, _)| slot)
    }

    /// A listener rule's weights by target-group name, as weights by slot; groups of
    /// neither slot are left out (the platforms report them as unexpected).
    pub fn slot_weights(&self, by_target_group: &BTreeMap<String, u32>) -> BTreeMap<Slot, u32> {
        self.by_slot()
            .into_iter()
            .filter_map(|(slot, tg)| by_target_group.get(tg).map(|w| (slot, *w)))
            .collect()
    }
}

/// How a new revision reaches users. Exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Strategy {
    /// ECS rolling update on a single service, deployment circuit breaker on.
    Rolling(RollingStrategy),
    /// Full second copy on the idle slot, then all traffic at once.
    BlueGreen(BlueGreenStrategy),
    /// Stepwise weight shift onto the idle slot.
    Canary(CanaryStrategy),
}

/// Rolling update settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollingStrategy {
    /// ECS `maximumPercent`. Default 200.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_percent: Option<u32>,
    /// ECS `minimumHealthyPercent`. Default 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_healthy_percent: Option<u32>,
}

/// Blue/green settings, in Argo Rollouts' names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BlueGreenStrategy {
    /// Promote without an operator once the new slot is healthy (and analysis passed).
    /// Default false: the rollout pauses until promoted (the `promote` action override).
    #[serde(default)]
    pub auto_promotion_enabled: bool,
    /// With auto-promotion, wait this long before promoting, e.g. `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_promotion_delay: Option<DurationSpec>,
    /// Analysis run against the new slot before promotion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_promotion_analysis: Option<AnalysisStep>,
    /// Analysis run after all traffic moved to the new slot, before the old slot scales
    /// down; failure moves traffic back to the old slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub post_promotion_analysis: Option<AnalysisStep>,
    /// How long the old slot keeps running after traffic moved. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<DurationSpec>,
    /// Abort when the new slot is not healthy within this time. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<DurationSpec>,
    /// How many earlier stable revisions `tugboat undo` returns to fast (steps and
    /// analysis skipped, weights still verified). Default `{revisions: 3}`, as in Argo
    /// Rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindow>,
}

/// Canary settings, in Argo Rollouts' names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CanaryStrategy {
    /// The steps, in order. Weights never decrease and the last `setWeight` is 100.
    #[schemars(length(min = 1))]
    pub steps: Vec<CanaryStep>,
    /// How long the old slot keeps running after traffic moved. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale_down_delay: Option<DurationSpec>,
    /// After an abort, how long the canary keeps running once weight is back on stable,
    /// so in-flight requests drain. Default `30s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort_scale_down_delay: Option<DurationSpec>,
    /// Abort when the canary is not healthy within this time. Default `10m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress_deadline: Option<DurationSpec>,
    /// Background analysis: runs beside the steps from `startingStep` on, until the
    /// rollout ends; its failure aborts the rollout at any step (Argo's canary
    /// `analysis`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<BackgroundAnalysis>,
    /// How many earlier stable revisions `tugboat undo` returns to fast (steps and
    /// analysis skipped, weights still verified). Default `{revisions: 3}`, as in Argo
    /// Rollouts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_window: Option<RollbackWindow>,
}

/// Analysis that runs beside a canary's steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BackgroundAnalysis {
    #[schemars(length(min = 1))]
    pub templates: Vec<TemplateRef>,
    /// Values for the templates' `args`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
    /// Index (from 0) of the step from which the analysis runs. Default 0: from the
    /// start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub starting_step: Option<u32>,
}

/// `rollbackWindow`: the stable revisions `tugboat undo` returns to without steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollbackWindow {
    /// How many of the most recent earlier stable revisions count. `0`: every undo is a
    /// normal rollout.
    pub revisions: u32,
}

impl RollbackWindow {
    /// Argo Rollouts' default.
    pub const DEFAULT: RollbackWindow = RollbackWindow { revisions: 3 };
}

impl Strategy {
    /// The strategy's rollback window, or the default; `None` for rolling.
    pub fn rollback_window(&self) -> Option<RollbackWindow> {
        match self {
            Strategy::Rolling(_) => None,
            Strategy::Canary(c) => Some(c.rollback_window.unwrap_or(RollbackWindow::DEFAULT)),
            Strategy::BlueGreen(b) => Some(b.rollback_window.unwrap_or(RollbackWindow::DEFAULT)),
        }
    }
}

/// One canary step. Exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum CanaryStep {
    /// Percent of traffic to the canary, 0-100.
    SetWeight(#[schemars(range(max = 100))] u32),
    /// `pause: {duration: 5m}` waits; `pause: {}` waits until promoted.
    Pause(PauseStep),
    /// Run analysis templates; failure aborts the rollout.
    Analysis(AnalysisStep),
    /// `gate: {url, timeout}`: wait, weight held, until `url` approves (see [`GateStep`]).
    Gate(GateStep),
    /// `setHeaderRoute: {name, match: [...]}` (Argo Rollouts' step): requests matching
    /// every header condition go to the canary alone, whatever the weights; the same
    /// step with only `name` removes the route (see [`SetHeaderRoute`]).
    SetHeaderRoute(SetHeaderRoute),
}

/// A header route to the canary alone, as Argo Rollouts' `setHeaderRoute` step has it.
/// tugboat renders it as a second listener rule on the workload's listener, at the
/// priority just before the workload's route (`route.priority - 1`, which validation
/// keeps free), with the route's conditions plus one `http-header` condition per match,
/// forwarding 100% to the canary's target group. It holds while the rollout runs (until
/// a `setHeaderRoute` with only `name` removes it) and goes at promotion and at abort.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetHeaderRoute {
    /// The route's name (Argo's managed route name).
    pub name: String,
    /// Header conditions, all of which must match; absent: remove the route.
    #[serde(default, rename = "match", skip_serializing_if = "Option::is_none")]
    pub matches: Option<Vec<HeaderRouteMatch>>,
}

/// One header condition of a [`SetHeaderRoute`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderRouteMatch {
    pub header_name: String,
    pub header_value: HeaderValueMatch,
}

/// Argo's `headerValue`: exactly one of `exact`, `prefix`, `regex`. On the ALB, `exact`
/// is the value itself and `prefix` the value followed by `*`; `regex` has no ALB
/// equivalent and validation refuses it with that reason.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HeaderValueMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
}

impl HeaderRouteMatch {
    /// The match as the listener rule's `http-header` condition (`None`: a `regex`,
    /// which validation refuses).
    pub fn rule_condition(&self) -> Option<RuleCondition> {
        Some(RuleCondition {
            field: ConditionField::HttpHeader,
            host_header_config: None,
            http_header_config: Some(HttpHeaderConfig {
                http_header_name: self.header_name.clone(),
                values: vec![self.header_value.alb_value()?],
            }),
            http_request_method_config: None,
            query_string_config: None,
            source_ip_config: None,
        })
    }
}

impl HeaderValueMatch {
    /// The value as the ALB's `http-header` condition compares it (`*` matches any
    /// run of characters, `?` one), when the ALB can express it.
    pub fn alb_value(&self) -> Option<String> {
        match (&self.exact, &self.prefix, &self.regex) {
            (Some(v), None, None) => Some(v.clone()),
            (None, Some(v), None) => Some(format!("{v}*")),
            _ => None,
        }
    }
}

/// A confirmation gate (Flagger's confirm-promotion webhook, ECS's lifecycle hooks): the
/// rollout holds at this step, weight unchanged, while tugboat GETs `url` once a pass
/// (every 5 s at most). `2xx` approves (unless the body is JSON `{"approved": false}`);
/// `403`, `409` or `{"approved": false}` reject and abort; anything else (another code,
/// no answer) keeps waiting, until `timeout` aborts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GateStep {
    /// `http://` or `https://` URL asked for approval.
    pub url: String,
    /// How long to wait for an approval before aborting, e.g. `30m`.
    pub timeout: DurationSpec,
}

/// A pause: timed, or until promoted (the `promote` action override).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PauseStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<DurationSpec>,
}

/// A reference to analysis templates to run at a step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisStep {
    #[schemars(length(min = 1))]
    pub templates: Vec<TemplateRef>,
    /// Values for the templates' `args`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<AnalysisArg>,
}

/// A value for a template argument: `value` as written, or `valueFrom` the rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisArg {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ArgSource>,
}

/// What of the rollout an argument takes its value from: `canaryTargetGroup` /
/// `stableTargetGroup` (as written in `route`), `canarySlot` / `stableSlot` (`blue` or
/// `green`), `canaryServiceName` / `stableServiceName` (e.g. `backend-green`),
/// `canaryHash` / `stableHash` (task-definition content hashes), `modelVersion` (the
/// workload's resolved model version) or `workloadName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ArgSource {
    CanaryTargetGroup,
    StableTargetGroup,
    CanarySlot,
    StableSlot,
    CanaryServiceName,
    StableServiceName,
    CanaryHash,
    StableHash,
    ModelVersion,
    WorkloadName,
}

/// Names one entry of `spec.analysisTemplates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateRef {
    pub template_name: String,
}

/// A metric check: measured `count` times every `interval`, judged by conditions on
/// `result` (Argo Rollouts' metric, one per template).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AnalysisTemplate {
    /// Template name, unique in the document.
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// Parameters, written `{{args.NAME}}` in the query, URL, headers, body and
    /// CloudWatch dimensions; steps pass their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<TemplateArg>,
    /// Where the metric comes from.
    pub provider: MetricProvider,
    /// The provider's query: PromQL (prometheus), a JSON pointer into the answer such
    /// as `/error_rate` (web; `/` for the whole answer), or ALB statistics such as
    /// `sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)` (cloudwatch).
    pub query: String,
    /// e.g. `result < 0.01`. See the condition language in the README.
    pub success_condition: String,
    /// e.g. `result >= 0.05`. When absent, a measurement that is not a success is a
    /// failure; when present, one that is neither is inconclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Time between measurements. Default `1m` when `count` is above 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<DurationSpec>,
    /// Wait this long after the run starts before the first measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<DurationSpec>,
    /// Number of measurements. Default 1 without `interval`; with `interval` and no
    /// `count` the metric is measured until the rollout ends (background analysis only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub count: Option<u32>,
    /// Failed measurements tolerated before the analysis fails. Default 0.
    #[serde(default)]
    pub failure_limit: u32,
    /// Inconclusive measurements tolerated before the analysis is inconclusive. Default 0.
    #[serde(default)]
    pub inconclusive_limit: u32,
    /// Provider errors in a row tolerated before the analysis fails (an error is neither
    /// a success nor a failure). Default 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<u32>,
    /// Fewer samples than this behind a measurement (e.g. requests seen by the canary)
    /// make it inconclusive rather than a verdict. Needs `sampleQuery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_samples: Option<u64>,
    /// The provider query that counts the samples behind a measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sample_query: Option<String>,
    /// What a measurement with no data (an empty vector, no datapoints, no value at the
    /// JSON pointer) counts as. Default `inconclusive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_data: Option<NoData>,
    /// Measured and shown, but never fails, pauses or aborts a rollout.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
}

/// A template parameter and its optional default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TemplateArg {
    #[schemars(pattern(r"^[A-Za-z0-9_-]+$"))]
    pub name: String,
    /// Used when the step passes no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// What a measurement without data counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum NoData {
    Pass,
    Fail,
    Inconclusive,
}

/// A metric source. Exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum MetricProvider {
    /// The ALB's per-target-group metrics through CloudWatch GetMetricData.
    Cloudwatch(CloudwatchProvider),
    /// A Prometheus server's instant query API.
    Prometheus(PrometheusProvider),
    /// An HTTP endpoint returning JSON; `query` is a JSON pointer.
    Web(WebProvider),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CloudwatchProvider {
    /// Aggregation period of the datapoints. Default `1m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<DurationSpec>,
    /// How far back a measurement looks. Default `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<DurationSpec>,
    /// The target group to measure (ARN or `targetgroup/NAME/ID`), usually
    /// `{{args.canary-target-group}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_group: Option<String>,
    /// The load balancer (ARN or `app/NAME/ID`). Default: the one of
    /// `spec.platform.aws.listenerArn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_balancer: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusProvider {
    /// e.g. `http://prometheus:9090`.
    pub address: String,
    /// Request timeout. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
    /// Credentials for a Prometheus behind authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<PrometheusAuth>,
}

/// Basic or bearer authentication: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrometheusAuth {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basic: Option<BasicAuth>,
    /// The token of an `Authorization: Bearer` header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer: Option<SecretSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BasicAuth {
    pub username: String,
    pub password: SecretSource,
}

/// A webhook: every event of `events` (all of them when empty) is POSTed to `url` as
/// JSON, signed with `secret` when it is given (`X-Tugboat-Signature: sha256=<hex
/// HMAC-SHA256 of the body>`, as GitHub signs its webhooks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Notification {
    /// `http://` or `https://` URL that receives the POSTs.
    pub url: String,
    /// Which events to send; empty or absent: all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<NotificationEvent>,
    /// The HMAC key, read when a notification is sent (never stored or logged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretSource>,
}

/// What a notification tells (the README's table says when each is sent; plain comments
/// on the variants keep the schema a simple string `enum`, as the CRD needs).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum NotificationEvent {
    // A new revision started rolling out.
    RolloutStarted,
    // A canary step completed and the rollout moved on to the next one.
    StepReached,
    // The rollout paused (a `pause` step, an inconclusive analysis, an operator pause).
    Paused,
    // An analysis run ended: succeeded, failed or inconclusive.
    AnalysisVerdict,
    // The rollout aborted (analysis, deadline, operator, gate).
    Aborted,
    // An operator promoted the rollout past its current step.
    Promoted,
    // The new revision serves all traffic.
    Completed,
}

/// Where a secret value is read when a measurement is taken: exactly one of `env` (an
/// environment variable of the controller) and `ssm` (an SSM parameter, SecureString,
/// decrypted). The value itself never appears in the document, errors, logs or status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecretSource {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebProvider {
    pub url: String,
    /// `GET` (default) or `POST`.
    #[serde(default)]
    pub method: WebMethod,
    /// Request headers; values as written, or from a secret.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<WebHeader>,
    /// Request body (for `POST`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// Request timeout. Default `10s`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<DurationSpec>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebMethod {
    #[default]
    Get,
    Post,
}

/// One request header: `value`, or `valueFrom` a secret (never logged).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebHeader {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<SecretSource>,
}

/// A model artifact in the seed's layout: `<storeUri>/<version>/model.onnx` plus
/// `metadata.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Model {
    /// Model name, unique in the document.
    #[schemars(pattern(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"))]
    pub name: String,
    /// Where versions live, e.g. `s3://ml-models-bucket/churn` or `file://models`.
    #[schemars(pattern(r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?|file://.+)$"))]
    pub store_uri: String,
    /// A fixed version, e.g. `v1.2`. Exactly one of `version` and `versionParameter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// An SSM parameter holding the version, e.g. `/ml-service/model-version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_parameter: Option<String>,
    /// Expected SHA-256 of `model.onnx` (64 hex digits, optionally `sha256:`-prefixed).
    /// Only with a fixed `version`; otherwise `metadata.json` supplies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^(sha256:)?[0-9a-fA-F]{64}$"))]
    pub sha256: Option<String>,
}

/// Operator overrides live under an SSM prefix (or the local state dir).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Overrides {
    /// e.g. `/tugboat/prod/prediction-app`. Default `/tugboat/<environment>/<name>`.
    pub ssm_prefix: String,
}

/// Where status is persisted: `s3://bucket/key` or `file://path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusStore {
    pub uri: String,
}

/// A duration written the way people write them: `30s`, `5m`, `1h 30m`.
///
/// Parsing happens at deserialization, so a bad duration is reported with its document
/// path like any other type error.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DurationSpec(pub Duration);

impl DurationSpec {
    pub fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl fmt::Debug for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl std::str::FromStr for DurationSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s.trim())
            .map(DurationSpec)
            .map_err(|e| format!("invalid duration {s:?} ({e}); write e.g. 30s, 5m or 1h"))
    }
}

impl Serialize for DurationSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DurationSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        /// A duration string, or plain seconds as Argo Rollouts' `pause: {duration: 30}`.
        struct Seconds;
        impl serde::de::Visitor<'_> for Seconds {
            type Value = DurationSpec;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as 30s, 5m or 1h, or plain seconds")
            }
            fn visit_u64<E: serde::de::Error>(self, secs: u64) -> Result<DurationSpec, E> {
                Ok(DurationSpec::from_secs(secs))
            }
            fn visit_i64<E: serde::de::Error>(self, secs: i64) -> Result<DurationSpec, E> {
                u64::try_from(secs)
                    .map(DurationSpec::from_secs)
                    .map_err(|_| E::custom(format!("invalid duration {secs}: negative")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<DurationSpec, E> {
                // `"30"` is plain seconds too.
                if let Ok(secs) = text.trim().parse::<u64>() {
                    return Ok(DurationSpec::from_secs(secs));
                }
                text.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(Seconds)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "minimum": 0,
            "description": "A duration such as `30s`, `5m`, `1h 30m`, or plain seconds (`30`).",
            "pattern": "^\\s*([0-9]+|[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*)\\s*$"
        })
    }
}

/// The slot names of a progressive workload. Each slot is one ECS service on its own
/// target group.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Application {
    /// The SSM prefix operators write overrides under.
    pub fn overrides_prefix(&self) -> String {
        match &self.spec.overrides {
            Some(o) => o.ssm_prefix.trim_end_matches('/').to_string(),
            None => format!(
                "/tugboat/{}/{}",
                self.metadata.environment, self.metadata.name
            ),
        }
    }

    pub fn workload(&self, name: &str) -> Option<&Workload> {
        self.spec.workloads.iter().find(|w| w.name == name)
    }
}

impl Workload {
    /// Whether this workload moves traffic between two slots.
    pub fn is_progressive(&self) -> bool {
        !matches!(self.strategy, Strategy::Rolling(_))
    }
}
