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
    /// Port the container listens on.
    #[schemars(range(min = 1))]
    pub container_port: u16,
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
}

/// The two target groups of a route, one per slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TargetGroups {
    pub blue: String,
    pub green: String,
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
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for DurationSpec {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A duration such as `30s`, `5m`, `1h 30m`.",
            "pattern": "^\\s*[0-9]+\\s*[a-zA-Z]+(\\s*[0-9]+\\s*[a-zA-Z]+)*\\s*$"
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
