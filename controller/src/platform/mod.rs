//! The platform boundary: what the reconcile loop needs from wherever workloads run.
//!
//! A platform does two things, in the shape of `object_store`'s small trait:
//! [`Platform::observe`] reads everything the planner needs into an [`Observation`], and
//! [`Platform::apply`] makes one [`Action`] true. Implementations: [`aws`] (ECS, ELBv2,
//! SSM, S3 through the SDK), [`memory`] (an in-memory fake for loop tests and the
//! conformance suite), and decorators that wrap another platform (see [`CrashAfter`]).
//!
//! Guarantees every implementation keeps:
//! - `apply` is idempotent: applying an action the platform already matches changes
//!   nothing, and `RegisterTaskDefinition` finds an existing revision with the same
//!   content hash before it registers one.
//! - A platform never changes a service or rule it does not own; it refuses with
//!   [`PlatformError::NotOwned`].
//! - One workload's failure to observe is reported in [`Observation::workload_errors`]
//!   and does not stop the others.
//! - Every API call is counted ([`Platform::api_calls`]) so tests and benchmarks can see
//!   exactly what a pass cost.
//! - Every AWS operation tugboat calls is a row of [`AWS_OPERATIONS`], with the IAM grants
//!   it needs; `tugboat iam-policy` is made from it, and recording a call missing from it
//!   panics in debug builds.
//!
//! A platform observes services, task definitions and listener rules only. The side
//! inputs of a pass (operator overrides: [`crate::inbox`]; resolved models:
//! [`crate::models`]) are their own components; the loop assembles the
//! [`ObservedState`] from all three.

#[cfg(feature = "aws")]
pub mod aws;
pub mod aws_cost;
pub mod local;
pub mod memory;

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::document::Application;
use crate::observed::ObservedState;
use crate::plan::Action;

/// The registered task definitions (`(arn, family, content hash)`) of `app`'s own
/// families, as `content hash -> arn`: what an in-process platform (memory, local)
/// reports in an observation, so both read the same definitions back.
pub(crate) fn own_task_definitions<'a>(
    app: &Application,
    registered: impl IntoIterator<Item = (&'a String, &'a str, &'a str)>,
) -> Vec<(String, String)> {
    let families: Vec<String> = app
        .spec
        .workloads
        .iter()
        .map(|w| crate::taskdef::family(app, w))
        .collect();
    registered
        .into_iter()
        .filter(|(_, family, _)| families.iter().any(|f| f == family))
        .map(|(arn, _, hash)| (hash.to_string(), arn.clone()))
        .collect()
}

/// Boxed cause of a platform error (an SDK error, an I/O error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A boxed future, for the side-input traits ([`crate::inbox::Inbox`],
/// [`crate::models::ModelResolver`]) that the loop holds as trait objects.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a platform call failed, in kinds the loop acts on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformError {
    /// The service asked us to slow down. Retry the pass later with backoff.
    #[error("{api} was throttled by AWS; the next pass backs off")]
    Throttled {
        api: &'static str,
        #[source]
        source: BoxError,
    },
    /// A 5xx, a timeout or a dropped connection. Retry the pass later with backoff.
    #[error("{api} failed transiently: {message}")]
    Unavailable {
        api: &'static str,
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// Something the document names does not exist (cluster, listener, target group).
    #[error("{what} does not exist: {message}; create it or fix the document")]
    NotFound { what: String, message: String },
    /// Credentials or permissions are missing.
    #[error("{api} was denied: {message}; grant the controller's role this permission")]
    AccessDenied { api: &'static str, message: String },
    /// The resource exists but tugboat did not create it.
    #[error(
        "{what} is not managed by tugboat for {owner}; tugboat never changes what it does \
         not own: delete it, tag it `tugboat:managed-by={owner}`, or change the document"
    )]
    NotOwned { what: String, owner: String },
    /// The platform rejected the request as invalid.
    #[error("{api} rejected the request: {message}")]
    Rejected {
        api: &'static str,
        message: String,
        #[source]
        source: Option<BoxError>,
    },
    /// The document asks for something this platform cannot do.
    #[error("{0}")]
    Unsupported(String),
    /// The action refers to a task definition no one has registered.
    #[error("no task definition with content hash {content_hash} is known for {workload}")]
    UnknownTaskDefinition {
        workload: String,
        content_hash: String,
    },
    /// A test decorator stopped the process here (see [`CrashAfter`]).
    #[error("injected crash after {calls} calls")]
    InjectedCrash { calls: usize },
}

impl PlatformError {
    /// Whether the same request may succeed later without anyone changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            PlatformError::Throttled { .. } | PlatformError::Unavailable { .. }
        )
    }

    /// The status condition reason for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            PlatformError::NotOwned { .. } => crate::status::reason::NOT_OWNED,
            _ => crate::status::reason::PLATFORM_ERROR,
        }
    }
}

/// Everything one `observe` saw: the planner's input plus the workloads that could not be
/// observed. A workload listed in `workload_errors` must not be acted on this pass: its
/// entry in `state` is incomplete, and planning from it could create a duplicate.
#[derive(Debug, Default)]
pub struct Observation {
    pub state: ObservedState,
    pub workload_errors: BTreeMap<String, PlatformError>,
}

/// What applying one action did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "result")]
pub enum ActionOutcome {
    /// A task definition with the content hash exists now. `reused` when one was already
    /// registered (e.g. by a pass that died before updating the service).
    TaskDefinition { arn: String, reused: bool },
    /// The platform was changed.
    Changed,
    /// The platform already matched; nothing was changed.
    AlreadyInPlace,
    /// The platform has no part in this action (e.g. analysis runs elsewhere).
    NotApplicable,
}

/// Whether an API call reads or changes the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CallKind {
    Describe,
    Mutate,
}

/// API calls made, per API name (e.g. `ecs:DescribeServices`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallCounts {
    pub by_api: BTreeMap<String, u64>,
    pub describe: u64,
    pub mutate: u64,
}

impl CallCounts {
    pub fn total(&self) -> u64 {
        self.describe + self.mutate
    }

    /// The calls made after `earlier` was taken.
    pub fn since(&self, earlier: &CallCounts) -> CallCounts {
        let by_api = self
            .by_api
            .iter()
            .filter_map(|(api, n)| {
                let delta = n - earlier.by_api.get(api).copied().unwrap_or(0);
                (delta > 0).then(|| (api.clone(), delta))
            })
            .collect();
        CallCounts {
            by_api,
            describe: self.describe - earlier.describe,
            mutate: self.mutate - earlier.mutate,
        }
    }

    pub fn get(&self, api: &str) -> u64 {
        self.by_api.get(api).copied().unwrap_or(0)
    }

    /// These calls and `other`'s together (e.g. the platform's and the inbox's).
    pub fn plus(mut self, other: &CallCounts) -> CallCounts {
        for (api, n) in &other.by_api {
            *self.by_api.entry(api.clone()).or_default() += n;
        }
        self.describe += other.describe;
        self.mutate += other.mutate;
        self
    }
}

impl fmt::Display for CallCounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} describe, {} mutate", self.describe, self.mutate)?;
        for (api, n) in &self.by_api {
            write!(f, "; {api}={n}")?;
        }
        Ok(())
    }
}

/// A thread-safe call counter platforms embed.
#[derive(Debug, Default)]
pub struct CallCounter {
    counts: Mutex<CallCounts>,
}

impl CallCounter {
    /// Counts one call. An AWS call (a name that is not `memory:`, `file:` or `local:`)
    /// must be in [`AWS_OPERATIONS`]: a debug build (every test) panics on one that is
    /// not, so a new call cannot reach AWS without its IAM grants.
    pub fn record(&self, api: &str, kind: CallKind) {
        debug_assert!(
            !is_aws_call(api) || aws_operation(api).is_some(),
            "{api} is an AWS call missing from platform::AWS_OPERATIONS: add it there with \
             the IAM grants it needs"
        );
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.by_api.entry(api.to_string()).or_default() += 1;
        match kind {
            CallKind::Describe => counts.describe += 1,
            CallKind::Mutate => counts.mutate += 1,
        }
    }

    pub fn snapshot(&self) -> CallCounts {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

// ----- Every AWS operation tugboat calls, and what IAM checks for it. -----

use CallKind::{Describe, Mutate};
use Caller::{Cli, Controller};
use tugboat_core::iam::{Condition, Grant, Need, Scope, Unscoped};

/// Who makes a call: the controller (`tugboat run`), or only the CLI on an operator's or
/// a pipeline's credentials (`tugboat apply`, the operator verbs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Controller,
    Cli,
}

/// One AWS operation: the name it is counted under ([`CallCounter::record`]), and the
/// IAM permissions AWS checks when it is called.
#[derive(Debug, Clone, Copy)]
pub struct AwsOperation {
    /// `service:Operation`, the service as the SDK crate names it (`elbv2`, not
    /// `elasticloadbalancing`).
    pub api: &'static str,
    pub kind: CallKind,
    pub caller: Caller,
    /// What the call needs, on what. Usually the action of the same name on the
    /// resources it names; sometimes more (tags set at creation are authorized as
    /// `ecs:TagResource` / `AddTags`; a task definition's roles need `iam:PassRole`) or
    /// another name (`HeadObject` is `s3:GetObject`).
    pub grants: &'static [Grant],
}

const fn op(
    api: &'static str,
    kind: CallKind,
    caller: Caller,
    grants: &'static [Grant],
) -> AwsOperation {
    AwsOperation {
        api,
        kind,
        caller,
        grants,
    }
}

const TASK_DEFINITIONS: Scope = Scope::Any(Unscoped {
    sid: "EcsTaskDefinitionActionsHaveNoResourceLevelPermissions",
    why: "ECS's RegisterTaskDefinition, DescribeTaskDefinition and ListTaskDefinitions accept no \
          resource ARN in a policy (Service Authorization Reference: no resource type); the \
          families tugboat registers are limited by the tagging grant and iam:PassRole instead",
    needed: Need::Always,
});
const ELB_DESCRIBE: Scope = Scope::Any(Unscoped {
    sid: "ElbDescribeActionsHaveNoResourceLevelPermissions",
    why: "every Elastic Load Balancing Describe* action (rules, tags, target health) accepts \
          only Resource \"*\"",
    needed: Need::RoutedWorkloads,
});
const SSM_DESCRIBE: Scope = Scope::Any(Unscoped {
    sid: "SsmDescribeParametersHasNoResourceLevelPermissions",
    why: "ssm:DescribeParameters (who wrote an override, and why) accepts only Resource \"*\"; \
          it returns metadata, never values",
    needed: Need::Always,
});
const CLOUDWATCH: Scope = Scope::Any(Unscoped {
    sid: "CloudWatchGetMetricDataHasNoResourceLevelPermissions",
    why: "cloudwatch:GetMetricData accepts only Resource \"*\" and no condition on the metric; \
          only documents with CloudWatch analysis get it",
    needed: Need::CloudWatchAnalysis,
});
const ECS_CREATE_SERVICE: Condition = Condition {
    test: "StringEquals",
    key: "ecs:CreateAction",
    values: &["CreateService"],
};
const ECS_REGISTER: Condition = Condition {
    test: "StringEquals",
    key: "ecs:CreateAction",
    values: &["RegisterTaskDefinition"],
};
const ELB_CREATE_RULE: Condition = Condition {
    test: "StringEquals",
    key: "elasticloadbalancing:CreateAction",
    values: &["CreateRule"],
};
const TO_ECS_TASKS: Condition = Condition {
    test: "StringEquals",
    key: "iam:PassedToService",
    values: &["ecs-tasks.amazonaws.com"],
};
const AUTO_SCALING: Scope = Scope::Any(Unscoped {
    sid: "ApplicationAutoScalingMutationsHaveNoResourceLevelPermissions",
    why: "Application Auto Scaling scopes its actions only to scalable-target ARNs, whose IDs \
          AWS assigns at registration (they cannot be known from the document), and its \
          Describe* actions accept only Resource \"*\"; only documents with autoScaling get \
          them. The first RegisterScalableTarget in an account also creates the service-linked \
          role AWSServiceRoleForApplicationAutoScaling_ECSService, which needs \
          iam:CreateServiceLinkedRole once (not granted here: an administrator's step)",
    needed: Need::AutoScaling,
});
const AUTO_SCALING_DESCRIBE: Scope = Scope::Any(Unscoped {
    sid: "ApplicationAutoScalingDescribeActionsHaveNoResourceLevelPermissions",
    why: "Application Auto Scaling's Describe* actions accept only Resource \"*\"; every \
          document gets them because the controller looks once for scalable targets it \
          registered earlier (a scaler the document dropped is deregistered)",
    needed: Need::Always,
});
/// Every object the controller reads, and the listing that makes a missing one a 404.
const READ_OBJECTS: &[Grant] = &[
    Grant::new("s3:GetObject", Scope::ModelObjects),
    Grant::new("s3:GetObject", Scope::StatusObject),
    Grant::new("s3:GetObject", Scope::DocumentObject),
    Grant::new("s3:GetObject", Scope::LeaseObject),
    Grant::new("s3:ListBucket", Scope::ObjectBuckets),
];

/// Every AWS operation tugboat calls: the one source of truth for the call counter's
/// names, the IAM policy (`tugboat iam-policy`) and the tests that check both. A call
/// that is recorded under a name missing here panics in debug builds.
pub const AWS_OPERATIONS: &[AwsOperation] = &[
    // ECS (platform/aws.rs).
    op(
        "ecs:DescribeServices",
        Describe,
        Controller,
        &[Grant::new("ecs:DescribeServices", Scope::Services)],
    ),
    op(
        "ecs:CreateService",
        Mutate,
        Controller,
        &[
            Grant::new("ecs:CreateService", Scope::Services),
            Grant::new("ecs:TagResource", Scope::Services).when(ECS_CREATE_SERVICE),
        ],
    ),
    op(
        "ecs:UpdateService",
        Mutate,
        Controller,
        &[Grant::new("ecs:UpdateService", Scope::Services)],
    ),
    op(
        "ecs:RegisterTaskDefinition",
        Mutate,
        Controller,
        &[
            Grant::new("ecs:RegisterTaskDefinition", TASK_DEFINITIONS),
            Grant::new("ecs:TagResource", Scope::TaskDefinitionFamilies).when(ECS_REGISTER),
            Grant::new("iam:PassRole", Scope::TaskRoles).when(TO_ECS_TASKS),
        ],
    ),
    op(
        "ecs:DescribeTaskDefinition",
        Describe,
        Controller,
        &[Grant::new("ecs:DescribeTaskDefinition", TASK_DEFINITIONS)],
    ),
    op(
        "ecs:ListTaskDefinitions",
        Describe,
        Controller,
        &[Grant::new("ecs:ListTaskDefinitions", TASK_DEFINITIONS)],
    ),
    // ELBv2 (platform/aws.rs).
    op(
        "elbv2:DescribeRules",
        Describe,
        Controller,
        &[Grant::new(
            "elasticloadbalancing:DescribeRules",
            ELB_DESCRIBE,
        )],
    ),
    op(
        "elbv2:DescribeTags",
        Describe,
        Controller,
        &[Grant::new(
            "elasticloadbalancing:DescribeTags",
            ELB_DESCRIBE,
        )],
    ),
    op(
        "elbv2:DescribeTargetHealth",
        Describe,
        Controller,
        &[Grant::new(
            "elasticloadbalancing:DescribeTargetHealth",
            ELB_DESCRIBE,
        )],
    ),
    op(
        "elbv2:CreateRule",
        Mutate,
        Controller,
        &[
            Grant::new("elasticloadbalancing:CreateRule", Scope::Listener),
            Grant::new("elasticloadbalancing:AddTags", Scope::ListenerRules).when(ELB_CREATE_RULE),
        ],
    ),
    op(
        "elbv2:ModifyRule",
        Mutate,
        Controller,
        &[Grant::new(
            "elasticloadbalancing:ModifyRule",
            Scope::ListenerRules,
        )],
    ),
    op(
        "elbv2:DeleteRule",
        Mutate,
        Controller,
        &[Grant::new(
            "elasticloadbalancing:DeleteRule",
            Scope::ListenerRules,
        )],
    ),
    op(
        "elbv2:SetRulePriorities",
        Mutate,
        Controller,
        &[Grant::new(
            "elasticloadbalancing:SetRulePriorities",
            Scope::ListenerRules,
        )],
    ),
    // SSM: the inbox (inbox/ssm.rs), model pointers (models/store.rs), secrets
    // (analysis/secrets.rs) and an `ssm:/` document (blob/ssm.rs).
    op(
        "ssm:GetParametersByPath",
        Describe,
        Controller,
        &[Grant::new("ssm:GetParametersByPath", Scope::OverridesPath)],
    ),
    op(
        "ssm:DescribeParameters",
        Describe,
        Controller,
        &[Grant::new("ssm:DescribeParameters", SSM_DESCRIBE)],
    ),
    op(
        "ssm:GetParameter",
        Describe,
        Controller,
        &[
            Grant::new("ssm:GetParameter", Scope::ModelPointers),
            Grant::new("ssm:GetParameter", Scope::SecretParameters),
            Grant::new("ssm:GetParameter", Scope::DocumentParameter),
        ],
    ),
    // The operator verbs' writes to the inbox, and `tugboat apply` to an `ssm:/` document.
    op("ssm:PutParameter", Mutate, Cli, &[]),
    op("ssm:DeleteParameter", Mutate, Cli, &[]),
    // S3: documents, status and lease (blob/s3.rs), models (models/store.rs).
    op("s3:GetObject", Describe, Controller, READ_OBJECTS),
    op("s3:HeadObject", Describe, Controller, READ_OBJECTS),
    // Listing a fleet's documents under `--source s3://BUCKET/PREFIX/` (source.rs).
    op(
        "s3:ListObjectsV2",
        Describe,
        Controller,
        &[Grant::new("s3:ListBucket", Scope::ObjectBuckets)],
    ),
    op(
        "s3:PutObject",
        Mutate,
        Controller,
        &[
            Grant::new("s3:PutObject", Scope::StatusObject),
            Grant::new("s3:PutObject", Scope::LeaseObject),
        ],
    ),
    // Application Auto Scaling (platform/aws/scaling.rs).
    op(
        "application-autoscaling:DescribeScalableTargets",
        Describe,
        Controller,
        &[Grant::new(
            "application-autoscaling:DescribeScalableTargets",
            AUTO_SCALING_DESCRIBE,
        )],
    ),
    op(
        "application-autoscaling:DescribeScalingPolicies",
        Describe,
        Controller,
        &[Grant::new(
            "application-autoscaling:DescribeScalingPolicies",
            AUTO_SCALING_DESCRIBE,
        )],
    ),
    op(
        "application-autoscaling:DescribeScheduledActions",
        Describe,
        Controller,
        &[Grant::new(
            "application-autoscaling:DescribeScheduledActions",
            AUTO_SCALING_DESCRIBE,
        )],
    ),
    op(
        "application-autoscaling:RegisterScalableTarget",
        Mutate,
        Controller,
        &[Grant::new(
            "application-autoscaling:RegisterScalableTarget",
            AUTO_SCALING,
        )],
    ),
    op(
        "application-autoscaling:PutScalingPolicy",
        Mutate,
        Controller,
        &[Grant::new(
            "application-autoscaling:PutScalingPolicy",
            AUTO_SCALING,
        )],
    ),
    op(
        "application-autoscaling:PutScheduledAction",
        Mutate,
        Controller,
        &[Grant::new(
            "application-autoscaling:PutScheduledAction",
            AUTO_SCALING,
        )],
    ),
    op(
        "application-autoscaling:DeregisterScalableTarget",
        Mutate,
        Controller,
        &[Grant::new(
            "application-autoscaling:DeregisterScalableTarget",
            AUTO_SCALING,
        )],
    ),
    op(
        "application-autoscaling:DeleteScalingPolicy",
        Mutate,
        Controller,
        &[Grant::new(
            "application-autoscaling:DeleteScalingPolicy",
            AUTO_SCALING,
        )],
    ),
    op(
        "application-autoscaling:DeleteScheduledAction",
        Mutate,
        Controller,
        &[Grant::new(
            "application-autoscaling:DeleteScheduledAction",
            AUTO_SCALING,
        )],
    ),
    // A new call is one row: `op("<service>:<Operation>", kind, Controller, &[grants])`,
    // each grant the IAM action on a Scope (`Scope::Services` for what names the
    // document's services; an `Unscoped` const saying why for what AWS cannot scope).
    // CloudWatch, for analysis (analysis/cloudwatch.rs).
    op(
        "cloudwatch:GetMetricData",
        Describe,
        Controller,
        &[Grant::new("cloudwatch:GetMetricData", CLOUDWATCH)],
    ),
];

/// The table's entry for `api`.
pub fn aws_operation(api: &str) -> Option<&'static AwsOperation> {
    AWS_OPERATIONS.iter().find(|o| o.api == api)
}

/// Whether `api` names an AWS call rather than an in-process platform's or a file's.
pub fn is_aws_call(api: &str) -> bool {
    !["memory:", "file:", "local:"]
        .iter()
        .any(|p| api.starts_with(p))
}

/// Every grant the controller's calls need: the input of `tugboat iam-policy`.
pub fn controller_grants() -> Vec<Grant> {
    AWS_OPERATIONS
        .iter()
        .filter(|o| o.caller == Caller::Controller)
        .flat_map(|o| o.grants.iter().copied())
        .collect()
}

/// What `tugboat diff` needs against live AWS (a CI plan role): the controller's reads,
/// without the secrets it resolves (a plan never measures or notifies) and without
/// writes, tagging or `iam:PassRole`.
pub fn plan_grants() -> Vec<Grant> {
    AWS_OPERATIONS
        .iter()
        .filter(|o| o.caller == Caller::Controller && o.kind == CallKind::Describe)
        .flat_map(|o| o.grants.iter().copied())
        .filter(|g| g.on != Scope::SecretParameters)
        .collect()
}

/// The most API calls an action can cost, for `tugboat diff` and dry runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEstimate {
    pub describe: u32,
    pub mutate: u32,
}

/// Where workloads run. See the module docs for the guarantees.
pub trait Platform: Send + Sync {
    /// Reads the whole application's state. Fails as a whole only when nothing can be
    /// observed (credentials, throttling of a shared call); otherwise per-workload
    /// problems go into [`Observation::workload_errors`]. The persisted status, the
    /// operator overrides and the models are the loop's business, not the platform's:
    /// `state.overrides` and `state.models` are left empty.
    fn observe(
        &self,
        app: &Application,
    ) -> impl Future<Output = Result<Observation, PlatformError>> + Send;

    /// Makes one action true. `task_definition_arn` is the resolved definition for
    /// actions that carry a content hash (`CreateService`, `UpdateService` with a hash).
    fn apply(
        &self,
        app: &Application,
        action: &Action,
        task_definition_arn: Option<&str>,
    ) -> impl Future<Output = Result<ActionOutcome, PlatformError>> + Send;

    /// Every API call made so far.
    fn api_calls(&self) -> CallCounts;

    /// The most calls `apply` can make for `action` given what was observed.
    fn estimate_calls(&self, action: &Action, observed: &ObservedState) -> CallEstimate;
}

/// A decorator that lets `allowed` applies through, then lets one more reach the inner
/// platform and reports it failed (the controller died after AWS acted but before it
/// learned the result), then fails every later apply. Stands for `kill -9` between two
/// calls in crash tests; a fresh platform stands for the restarted controller.
#[derive(Debug)]
pub struct CrashAfter<P> {
    inner: P,
    allowed: usize,
    applied: AtomicUsize,
}

impl<P> CrashAfter<P> {
    pub fn new(inner: P, allowed: usize) -> Self {
        Self {
            inner,
            allowed,
            applied: AtomicUsize::new(0),
        }
    }

    pub fn inner(&self) -> &P {
        &self.inner
    }
}

impl<P: Platform> Platform for CrashAfter<P> {
    async fn observe(&self, app: &Application) -> Result<Observation, PlatformError> {
        self.inner.observe(app).await
    }

    async fn apply(
        &self,
        app: &Application,
        action: &Action,
        task_definition_arn: Option<&str>,
    ) -> Result<ActionOutcome, PlatformError> {
        let n = self.applied.fetch_add(1, Ordering::SeqCst);
        match n.cmp(&self.allowed) {
            std::cmp::Ordering::Less => self.inner.apply(app, action, task_definition_arn).await,
            std::cmp::Ordering::Equal => {
                let _ = self.inner.apply(app, action, task_definition_arn).await;
                Err(PlatformError::InjectedCrash { calls: n + 1 })
            }
            std::cmp::Ordering::Greater => Err(PlatformError::InjectedCrash { calls: n }),
        }
    }

    fn api_calls(&self) -> CallCounts {
        self.inner.api_calls()
    }

    fn estimate_calls(&self, action: &Action, observed: &ObservedState) -> CallEstimate {
        self.inner.estimate_calls(action, observed)
    }
}

pub use crate::plan::service_name;

/// The owner tag value for an application: `<app>/<environment>`.
pub fn owner(app: &Application) -> String {
    format!("{}/{}", app.metadata.name, app.metadata.environment)
}

/// A shared platform is a platform: lets a test keep a handle on the fake while the
/// reconciler (or a [`CrashAfter`]) owns another.
impl<P: Platform + ?Sized> Platform for std::sync::Arc<P> {
    fn observe(
        &self,
        app: &Application,
    ) -> impl Future<Output = Result<Observation, PlatformError>> + Send {
        (**self).observe(app)
    }

    fn apply(
        &self,
        app: &Application,
        action: &Action,
        task_definition_arn: Option<&str>,
    ) -> impl Future<Output = Result<ActionOutcome, PlatformError>> + Send {
        (**self).apply(app, action, task_definition_arn)
    }

    fn api_calls(&self) -> CallCounts {
        (**self).api_calls()
    }

    fn estimate_calls(&self, action: &Action, observed: &ObservedState) -> CallEstimate {
        (**self).estimate_calls(action, observed)
    }
}
