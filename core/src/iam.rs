//! The least-privilege IAM policy of a controller that runs one document, computed from
//! the document alone (plus where the controller reads it and keeps its lease): pure.
//!
//! The shell keeps the table of every AWS operation tugboat calls and what IAM checks for
//! each ([`Grant`]s, in `tugboat::platform::AWS_OPERATIONS`); [`policy`] turns the grants
//! into statements scoped by ARN to what the document owns or names.
//!
//! Guarantees:
//! - Every action is scoped to the resources of this document wherever AWS allows it:
//!   the cluster's services and the task-definition families tugboat names
//!   (`<service>` is `<workload>` or `<workload>-blue|green`, `<family>` is
//!   `<name>-<workload>`), the listener and its rules, the overrides prefix, the model
//!   pointers and secret parameters the document names, the status, lease, document
//!   and model objects. `iam:PassRole` is allowed on the document's roles only, and only
//!   towards ECS tasks.
//! - An action AWS does not let a policy scope gets `Resource: "*"` in a statement of its
//!   own, whose `Sid` says so, and whose reason [`Statement::why`] carries (the CLI's
//!   `--explain` prints it).
//! - A grant whose resources the document does not have (no models, no listener, no
//!   CloudWatch analysis) is left out: nothing is allowed "in case".
//! - [`Policy::allows`] evaluates the policy for one action on one resource (wildcards as
//!   IAM matches them; conditions only narrow and are not evaluated), so tests can check
//!   real calls against it.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::document::{Application, Platform, SecretSource};

/// The resources a grant applies to, resolved per document by [`policy`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// The ECS services of every workload in the document's cluster.
    Services,
    /// The task-definition families of every workload (`<family>:*`).
    TaskDefinitionFamilies,
    /// The listener the document routes on.
    Listener,
    /// The rules of that listener.
    ListenerRules,
    /// The overrides prefix (`spec.overrides.ssmPrefix`) and everything under it.
    OverridesPath,
    /// The SSM parameters holding model versions (`versionParameter`).
    ModelPointers,
    /// The SSM parameters secrets are read from (analysis auth and headers, webhooks).
    SecretParameters,
    /// The document itself when its source is an SSM parameter.
    DocumentParameter,
    /// The objects under each S3 model store.
    ModelObjects,
    /// The status object (`spec.status.uri` on S3).
    StatusObject,
    /// The document itself when its source is an S3 object.
    DocumentObject,
    /// The leader-election lease object.
    LeaseObject,
    /// The buckets of the status, document and lease objects, whose absence is a normal
    /// state tugboat must tell from a denial.
    ObjectBuckets,
    /// The task and execution roles the document names.
    TaskRoles,
    /// Every resource: AWS offers no resource-level permission for the action.
    Any(Unscoped),
}

/// Why an action cannot be scoped, and when a document needs it at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Unscoped {
    /// The statement's `Sid`.
    pub sid: &'static str,
    /// Why `Resource` is `*`, for `--explain` and the README.
    pub why: &'static str,
    pub needed: Need,
}

/// When a document needs an unscoped grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Need {
    /// Always (every document has workloads and an overrides prefix).
    Always,
    /// When a workload is routed on a listener.
    RoutedWorkloads,
    /// When an analysis template reads CloudWatch.
    CloudWatchAnalysis,
    /// When a workload has `autoScaling` (keep the grant until the controller has
    /// deregistered a scaler the document dropped: it removes it on the next pass).
    AutoScaling,
}

/// A condition on a grant, e.g. `StringEquals ecs:CreateAction [CreateService]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Condition {
    pub test: &'static str,
    pub key: &'static str,
    pub values: &'static [&'static str],
}

/// One IAM action an AWS call needs, on a scope, maybe under a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    /// The IAM action, e.g. `elasticloadbalancing:ModifyRule`.
    pub action: &'static str,
    pub on: Scope,
    pub condition: Option<Condition>,
}

impl Grant {
    pub const fn new(action: &'static str, on: Scope) -> Self {
        Self {
            action,
            on,
            condition: None,
        }
    }

    pub const fn when(mut self, condition: Condition) -> Self {
        self.condition = Some(condition);
        self
    }
}

/// What the document does not say but the policy needs: where the controller reads the
/// document (`tugboat run --source`) and where it keeps its lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inputs {
    /// `s3://bucket/key` or `ssm:/name` (`file://` needs no permission).
    pub source: Option<String>,
    /// `s3://bucket/key` of the leader-election lease.
    pub lease: Option<String>,
}

/// An IAM policy document, serialised as IAM reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Policy {
    #[serde(rename = "Version")]
    pub version: &'static str,
    #[serde(rename = "Statement")]
    pub statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(rename = "Sid")]
    pub sid: String,
    #[serde(rename = "Effect")]
    pub effect: &'static str,
    #[serde(rename = "Action")]
    pub actions: Vec<String>,
    #[serde(rename = "Resource")]
    pub resources: Resources,
    #[serde(rename = "Condition", skip_serializing_if = "Option::is_none")]
    pub condition: Option<BTreeMap<String, BTreeMap<String, Vec<String>>>>,
    /// What the statement is for, or why it cannot be scoped; not part of the JSON.
    #[serde(skip)]
    pub why: String,
}

/// A statement's resources: `"*"` or ARNs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Resources {
    All(&'static str),
    Arns(Vec<String>),
}

impl Resources {
    fn matches(&self, resource: &str) -> bool {
        match self {
            Resources::All(_) => true,
            Resources::Arns(arns) => arns.iter().any(|arn| glob(arn, resource)),
        }
    }
}

impl Policy {
    /// Whether some statement allows `action` on `resource` (an ARN, or `*` for calls
    /// that name none). Conditions are not evaluated: they only narrow a statement.
    pub fn allows(&self, action: &str, resource: &str) -> bool {
        self.statements
            .iter()
            .any(|s| s.actions.iter().any(|a| glob(a, action)) && s.resources.matches(resource))
    }

    /// Every action any statement allows.
    pub fn actions(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self
            .statements
            .iter()
            .flat_map(|s| s.actions.iter().map(String::as_str))
            .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

impl Statement {
    pub fn is_unscoped(&self) -> bool {
        matches!(self.resources, Resources::All(_))
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` one.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Why a policy cannot be made for a document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error(
        "spec.platform is `local`: the local platform makes no AWS calls, so it needs no IAM policy"
    )]
    LocalPlatform,
    #[error(
        "spec.platform.aws.executionRoleArn {0:?} is not an IAM role ARN \
         (arn:PARTITION:iam::ACCOUNT:role/NAME); the account and partition come from it"
    )]
    NoAccount(String),
    #[error("{what} {uri:?} is not s3://BUCKET/KEY or ssm:/NAME")]
    BadUri { what: &'static str, uri: String },
}

/// Where an object or parameter is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Location {
    S3 { bucket: String, key: String },
    Ssm(String),
    File,
}

fn location(what: &'static str, uri: &str) -> Result<Location, IamError> {
    let bad = || IamError::BadUri {
        what,
        uri: uri.to_string(),
    };
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(bad());
        }
        return Ok(Location::S3 {
            bucket: bucket.to_string(),
            key: key.trim_start_matches('/').to_string(),
        });
    }
    if let Some(name) = uri.strip_prefix("ssm:") {
        return if name.is_empty() {
            Err(bad())
        } else {
            Ok(Location::Ssm(name.to_string()))
        };
    }
    if uri.starts_with("file://") {
        return Ok(Location::File);
    }
    Err(bad())
}

/// What [`policy`] resolves scopes against.
struct Context<'a> {
    app: &'a Application,
    partition: String,
    account: String,
    region: String,
    cluster: String,
    listener: Option<String>,
    source: Location,
    lease: Location,
}

impl Context<'_> {
    fn ssm_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:ssm:{}:{}:parameter/{}",
            self.partition,
            self.region,
            self.account,
            name.trim_start_matches('/')
        )
    }

    fn s3_arn(&self, bucket: &str, key: &str) -> String {
        format!("arn:{}:s3:::{bucket}/{key}", self.partition)
    }

    fn ecs_arn(&self, rest: &str) -> String {
        format!(
            "arn:{}:ecs:{}:{}:{rest}",
            self.partition, self.region, self.account
        )
    }

    /// `(bucket, key pattern)` of every object the controller reads or writes on S3.
    fn objects(&self, scope: Scope) -> Vec<(String, String)> {
        let app = self.app;
        let mut out = Vec::new();
        let mut push = |loc: &Location, suffix: &str| {
            if let Location::S3 { bucket, key } = loc {
                out.push((bucket.clone(), format!("{key}{suffix}")));
            }
        };
        match scope {
            Scope::ModelObjects => {
                for model in &app.spec.models {
                    if let Ok(Location::S3 { bucket, key }) =
                        location("model store", &model.store_uri)
                    {
                        let key = key.trim_end_matches('/');
                        let pattern = if key.is_empty() {
                            "*".to_string()
                        } else {
                            format!("{key}/*")
                        };
                        push(
                            &Location::S3 {
                                bucket,
                                key: pattern,
                            },
                            "",
                        );
                    }
                }
            }
            Scope::StatusObject => {
                if let Some(status) = &app.spec.status
                    && let Ok(loc) = location("status", &status.uri)
                {
                    push(&loc, "");
                }
            }
            Scope::DocumentObject => push(&self.source, ""),
            Scope::LeaseObject => push(&self.lease, ""),
            _ => {}
        }
        out
    }

    /// The resources of `scope`: none when the document has none of them.
    fn resolve(&self, scope: Scope) -> Vec<Resources> {
        let app = self.app;
        let arns = |arns: Vec<String>| -> Vec<Resources> {
            if arns.is_empty() {
                Vec::new()
            } else {
                vec![Resources::Arns(dedup(arns))]
            }
        };
        match scope {
            Scope::Services => arns(
                app.spec
                    .workloads
                    .iter()
                    .flat_map(|w| {
                        if w.is_progressive() {
                            vec![format!("{}-blue", w.name), format!("{}-green", w.name)]
                        } else {
                            vec![w.name.clone()]
                        }
                    })
                    .map(|s| self.ecs_arn(&format!("service/{}/{s}", self.cluster)))
                    .collect(),
            ),
            Scope::TaskDefinitionFamilies => arns(
                app.spec
                    .workloads
                    .iter()
                    .map(|w| {
                        self.ecs_arn(&format!(
                            "task-definition/{}:*",
                            crate::taskdef::family(app, w)
                        ))
                    })
                    .collect(),
            ),
            Scope::Listener => arns(
                self.routed()
                    .then(|| self.listener.clone())
                    .flatten()
                    .into_iter()
                    .collect(),
            ),
            Scope::ListenerRules => arns(
                self.routed()
                    .then(|| self.listener.as_deref().and_then(rules_of))
                    .flatten()
                    .into_iter()
                    .collect(),
            ),
            Scope::OverridesPath => {
                let prefix = app.overrides_prefix();
                arns(vec![
                    self.ssm_arn(&prefix),
                    self.ssm_arn(&format!("{prefix}/*")),
                ])
            }
            Scope::ModelPointers => arns(
                app.spec
                    .models
                    .iter()
                    .filter_map(|m| m.version_parameter.as_deref())
                    .map(|p| self.ssm_arn(p))
                    .collect(),
            ),
            Scope::SecretParameters => arns(
                secret_parameters(app)
                    .iter()
                    .map(|p| self.ssm_arn(p))
                    .collect(),
            ),
            Scope::DocumentParameter => match &self.source {
                Location::Ssm(name) => arns(vec![self.ssm_arn(name)]),
                _ => Vec::new(),
            },
            Scope::ModelObjects
            | Scope::StatusObject
            | Scope::DocumentObject
            | Scope::LeaseObject => arns(
                self.objects(scope)
                    .into_iter()
                    .map(|(bucket, key)| self.s3_arn(&bucket, &key))
                    .collect(),
            ),
            Scope::ObjectBuckets => {
                // No `s3:prefix` condition: the check that turns a missing key's 403
                // into a 404 carries no prefix, so a condition would make it fail.
                let mut buckets: Vec<String> = [
                    Scope::StatusObject,
                    Scope::DocumentObject,
                    Scope::LeaseObject,
                ]
                .into_iter()
                .flat_map(|scope| self.objects(scope))
                .map(|(bucket, _)| format!("arn:{}:s3:::{bucket}", self.partition))
                .collect();
                buckets = dedup(buckets);
                arns(buckets)
            }
            Scope::TaskRoles => {
                let Platform::Aws(aws) = &app.spec.platform else {
                    return Vec::new();
                };
                let mut roles = vec![aws.execution_role_arn.clone()];
                roles.extend(aws.task_role_arn.clone());
                for w in &app.spec.workloads {
                    roles.extend(w.task_role_arn.clone());
                    roles.extend(w.execution_role_arn.clone());
                }
                arns(roles)
            }
            Scope::Any(unscoped) => {
                let needed = match unscoped.needed {
                    Need::Always => true,
                    Need::RoutedWorkloads => self.routed(),
                    Need::CloudWatchAnalysis => app.spec.analysis_templates.iter().any(|t| {
                        matches!(t.provider, crate::document::MetricProvider::Cloudwatch(_))
                    }),
                    Need::AutoScaling => {
                        app.spec.workloads.iter().any(|w| w.auto_scaling.is_some())
                    }
                };
                if needed {
                    vec![Resources::All("*")]
                } else {
                    Vec::new()
                }
            }
        }
    }

    fn routed(&self) -> bool {
        self.listener.is_some() && self.app.spec.workloads.iter().any(|w| w.route.is_some())
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// `…:listener/app/NAME/LB/LISTENER` -> `…:listener-rule/app/NAME/LB/LISTENER/*`.
fn rules_of(listener: &str) -> Option<String> {
    let (head, tail) = listener.split_once(":listener/")?;
    Some(format!("{head}:listener-rule/{tail}/*"))
}

/// Every SSM parameter a secret of the document is read from.
pub fn secret_parameters(app: &Application) -> Vec<String> {
    use crate::document::MetricProvider;
    let mut sources: Vec<&SecretSource> = Vec::new();
    for template in &app.spec.analysis_templates {
        match &template.provider {
            MetricProvider::Prometheus(p) => {
                if let Some(auth) = &p.authentication {
                    sources.extend(auth.basic.as_ref().map(|b| &b.password));
                    sources.extend(auth.bearer.as_ref());
                }
            }
            MetricProvider::Web(web) => {
                sources.extend(web.headers.iter().filter_map(|h| h.value_from.as_ref()));
            }
            _ => {}
        }
    }
    sources.extend(
        app.spec
            .notifications
            .iter()
            .filter_map(|n| n.secret.as_ref()),
    );
    dedup(sources.iter().filter_map(|s| s.ssm.clone()).collect())
}

/// `arn:PARTITION:iam::ACCOUNT:role/NAME` -> (partition, account).
fn account_of(role: &str) -> Option<(String, String)> {
    let mut parts = role.splitn(6, ':');
    let (arn, partition, service, _region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    (arn == "arn"
        && service == "iam"
        && !partition.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && resource.starts_with("role/"))
    .then(|| (partition.to_string(), account.to_string()))
}

/// The policy a controller running `app` needs for `grants` (the controller's rows of the
/// operation table). Statements come out in a stable order: scoped ones first, grouped
/// by scope and condition, then the unscoped ones.
pub fn policy(app: &Application, inputs: &Inputs, grants: &[Grant]) -> Result<Policy, IamError> {
    let Platform::Aws(aws) = &app.spec.platform else {
        return Err(IamError::LocalPlatform);
    };
    let (partition, account) = account_of(&aws.execution_role_arn)
        .ok_or_else(|| IamError::NoAccount(aws.execution_role_arn.clone()))?;
    let source = match &inputs.source {
        Some(uri) => location("document source", uri)?,
        None => Location::File,
    };
    let lease = match &inputs.lease {
        Some(uri) => match location("lease", uri)? {
            Location::Ssm(_) => {
                return Err(IamError::BadUri {
                    what: "lease (S3 only)",
                    uri: uri.clone(),
                });
            }
            other => other,
        },
        None => Location::File,
    };
    let ctx = Context {
        app,
        partition,
        account,
        region: aws.region.clone(),
        cluster: aws.cluster.clone(),
        listener: aws.listener_arn.clone(),
        source,
        lease,
    };

    // (scope, grant condition) -> actions.
    let mut groups: BTreeMap<(Scope, Option<Condition>), Vec<&'static str>> = BTreeMap::new();
    for grant in grants {
        groups
            .entry((grant.on, grant.condition))
            .or_default()
            .push(grant.action);
    }
    let mut scoped = Vec::new();
    let mut unscoped = Vec::new();
    for ((scope, condition), mut actions) in groups {
        actions.sort_unstable();
        actions.dedup();
        for resources in ctx.resolve(scope) {
            let mut conditions: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
            if let Some(c) = condition {
                conditions.entry(c.test.to_string()).or_default().insert(
                    c.key.to_string(),
                    c.values.iter().map(|v| v.to_string()).collect(),
                );
            }
            let (sid, why) = describe(scope, condition);
            let statement = Statement {
                sid,
                effect: "Allow",
                actions: actions.iter().map(|a| a.to_string()).collect(),
                resources,
                condition: (!conditions.is_empty()).then_some(conditions),
                why,
            };
            if statement.is_unscoped() {
                unscoped.push(statement);
            } else {
                scoped.push(statement);
            }
        }
    }
    scoped.extend(unscoped);
    // Two grants of one scope under different conditions need distinct Sids.
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for statement in &mut scoped {
        let n = seen.entry(statement.sid.clone()).or_default();
        *n += 1;
        if *n > 1 {
            statement.sid.push_str(&n.to_string());
        }
    }
    Ok(Policy {
        version: "2012-10-17",
        statements: scoped,
    })
}

/// A statement's Sid and what it is for.
fn describe(scope: Scope, condition: Option<Condition>) -> (String, String) {
    let tag_on_create = condition.is_some_and(|c| c.key.ends_with(":CreateAction"));
    let (sid, why): (&str, &str) = match scope {
        Scope::Services if tag_on_create => (
            "TagServicesAsTheyAreCreated",
            "services are created with tugboat's ownership tags, which ECS authorizes as ecs:TagResource",
        ),
        Scope::Services => (
            "EcsServicesOfTheDocument",
            "the document's services in its cluster, by name",
        ),
        Scope::TaskDefinitionFamilies => (
            "TagTaskDefinitionsAsTheyAreRegistered",
            "revisions are registered with the content-hash tag, which ECS authorizes as ecs:TagResource on the family",
        ),
        Scope::Listener => (
            "CreateRulesOnTheDocumentsListener",
            "rules are created on the document's listener only",
        ),
        Scope::ListenerRules if tag_on_create => (
            "TagRulesAsTheyAreCreated",
            "rules are created with tugboat's ownership tags, which ELB authorizes as AddTags",
        ),
        Scope::ListenerRules => (
            "ChangeRulesOfTheDocumentsListener",
            "weights and priorities of the rules on the document's listener (a rule tugboat does not own is never changed: it checks the owner tag)",
        ),
        Scope::OverridesPath => (
            "ReadOperatorOverrides",
            "the operator inbox under the overrides prefix",
        ),
        Scope::ModelPointers => (
            "ReadModelVersionPointers",
            "the SSM parameters that name model versions",
        ),
        Scope::SecretParameters => (
            "ReadSecretParameters",
            "the SSM parameters the document's secrets are read from (SecureStrings under the aws/ssm key need no kms:Decrypt grant; a customer-managed key does)",
        ),
        Scope::DocumentParameter => ("ReadTheDocumentParameter", "the desired document in SSM"),
        Scope::ModelObjects => (
            "ReadModelArtifacts",
            "model metadata and artifacts under each S3 model store (HeadObject is authorized as s3:GetObject)",
        ),
        Scope::StatusObject => (
            "ReadAndWriteTheStatus",
            "the persisted status object (conditional writes need only s3:PutObject)",
        ),
        Scope::DocumentObject => ("ReadTheDocumentObject", "the desired document in S3"),
        Scope::LeaseObject => (
            "HoldTheLeaderLease",
            "the leader-election lease object (conditional create and renew)",
        ),
        Scope::ObjectBuckets => (
            "ListTheBucketsOfStatusLeaseAndDocument",
            "without s3:ListBucket on its bucket a missing key answers 403 instead of 404, and tugboat could not tell a status or lease not written yet (or a document not uploaded yet) from a denial; it lists keys, it reads none but the ones above",
        ),
        Scope::TaskRoles => (
            "PassOnlyTheDocumentsRolesToEcsTasks",
            "registering a task definition passes its task and execution roles",
        ),
        Scope::Any(u) => (u.sid, u.why),
    };
    (sid.to_string(), why.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_as_iam_does() {
        assert!(glob(
            "arn:aws:s3:::b/models/*",
            "arn:aws:s3:::b/models/v1/model.onnx"
        ));
        assert!(!glob("arn:aws:s3:::b/models/*", "arn:aws:s3:::b/other/v1"));
        assert!(glob("*", "anything"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("x:*:y", "x:1:2:y"));
        assert!(!glob("exact", "exact-not"));
    }

    #[test]
    fn locations_read_s3_and_ssm_uris_and_name_bad_ones() {
        assert_eq!(
            location("status", "s3://b/k/status.json"),
            Ok(Location::S3 {
                bucket: "b".into(),
                key: "k/status.json".into()
            })
        );
        assert_eq!(
            location("document source", "ssm:/a/b"),
            Ok(Location::Ssm("/a/b".into()))
        );
        assert_eq!(
            location("document source", "file://x.yaml"),
            Ok(Location::File)
        );
        assert!(location("document source", "https://x").is_err());
        assert!(location("lease", "s3:///key").is_err());
    }

    #[test]
    fn rules_and_accounts_come_from_the_arns_the_document_names() {
        assert_eq!(
            rules_of("arn:aws:elasticloadbalancing:r:1:listener/app/n/lb/l").as_deref(),
            Some("arn:aws:elasticloadbalancing:r:1:listener-rule/app/n/lb/l/*")
        );
        assert_eq!(rules_of("not-an-arn"), None);
        assert_eq!(
            account_of("arn:aws-cn:iam::123456789012:role/x"),
            Some(("aws-cn".into(), "123456789012".into()))
        );
        assert_eq!(account_of("arn:aws:iam::12345:role/x"), None);
        assert_eq!(account_of("arn:aws:s3:::bucket"), None);
    }
}
