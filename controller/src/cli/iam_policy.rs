//! `tugboat iam-policy`: the least-privilege IAM policy of the controller that runs one
//! document, printed as JSON to attach to its task role.
//!
//! The policy is [`tugboat_core::iam::policy`] of the document over the controller's
//! rows of [`crate::platform::AWS_OPERATIONS`], the same table the call counter checks
//! every recorded call against: a call tugboat makes is in the table, and the table is
//! what the policy allows. `manifests/iam-policy-*.json` are this command's output,
//! checked by a test to stay in step.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use tugboat_core::iam::{self, Inputs, Policy};

use crate::platform::{controller_grants, plan_grants};
use crate::source;

const EXAMPLES: &str = "\
Examples:
  # The policy of the controller that runs manifests/prod.yaml from S3, holding its
  # leader lease beside the status.
  tugboat iam-policy -f manifests/prod.yaml \\
      --source s3://tugboat-documents-123456789012/prod/prediction-app.yaml \\
      --lease s3://tugboat-state-123456789012/prod/prediction-app/lease.json

  # Why each statement is there, and why some say Resource \"*\".
  tugboat iam-policy -f manifests/prod.yaml --explain

  # The read-only policy of the CI role that runs `tugboat diff` against live AWS.
  tugboat iam-policy -f manifests/prod.yaml --read-only

Exit codes: 0 printed; 1 invalid document, a bad URI, or a local-platform document.";

/// Print the least-privilege IAM policy of the controller for a document.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct Args {
    /// The document.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Where the controller reads the document (`tugboat run --source`): s3://BUCKET/KEY
    /// or ssm:/PARAMETER. Without it, the policy allows reading no document.
    #[arg(long, value_name = "URI")]
    pub source: Option<String>,

    /// The leader-election lease object (s3://BUCKET/KEY), when replicas elect a leader.
    #[arg(long, value_name = "URI")]
    pub lease: Option<String>,

    /// The policy of `tugboat diff` against live AWS instead (a CI plan role): the
    /// controller's reads only, without secrets; the document comes from a file.
    #[arg(long, conflicts_with_all = ["source", "lease"])]
    pub read_only: bool,

    /// Print, instead of the policy, each statement's actions, resources and reason.
    #[arg(long)]
    pub explain: bool,
}

/// The controller's policy for a document's text: the pure function behind the command.
pub fn for_document(text: &str, origin: &str, inputs: &Inputs) -> anyhow::Result<Policy> {
    for_grants(text, origin, inputs, &controller_grants())
}

/// The read-only policy of `tugboat diff` for a document's text.
pub fn plan_for_document(text: &str, origin: &str) -> anyhow::Result<Policy> {
    for_grants(text, origin, &Inputs::default(), &plan_grants())
}

fn for_grants(
    text: &str,
    origin: &str,
    inputs: &Inputs,
    grants: &[tugboat_core::iam::Grant],
) -> anyhow::Result<Policy> {
    let app = source::load_document(text, origin).map_err(|invalid| {
        anyhow::anyhow!(
            "{invalid}\n{origin}: no policy: {} problem(s) in the document",
            invalid.errors.len()
        )
    })?;
    iam::policy(&app, inputs, grants).with_context(|| origin.to_string())
}

/// The policy as `tugboat iam-policy` prints it (two-space JSON, a final newline).
pub fn render(policy: &Policy) -> String {
    let mut text = serde_json::to_string_pretty(policy).unwrap_or_default();
    text.push('\n');
    text
}

/// One paragraph per statement.
pub fn explain(policy: &Policy) -> String {
    let mut out = String::new();
    for s in &policy.statements {
        let resources = match &s.resources {
            iam::Resources::All(all) => all.to_string(),
            iam::Resources::Arns(arns) => arns.join("\n    "),
        };
        out.push_str(&format!(
            "{}\n  {}\n  on {}\n  why: {}\n",
            s.sid,
            s.actions.join(", "),
            resources,
            s.why
        ));
        if let Some(condition) = &s.condition {
            out.push_str(&format!(
                "  when: {}\n",
                serde_json::to_string(condition).unwrap_or_default()
            ));
        }
        out.push('\n');
    }
    out
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let origin = args.file.display().to_string();
    let policy = if args.read_only {
        plan_for_document(&text, &origin)?
    } else {
        let inputs = Inputs {
            source: args.source.clone(),
            lease: args.lease,
        };
        for_document(&text, &origin, &inputs)?
    };
    if !args.read_only && args.source.is_none() {
        eprintln!(
            "note: no --source: the policy allows reading no document; pass the URI \
             `tugboat run --source` is given"
        );
    }
    if args.explain {
        super::print(&explain(&policy))?;
    } else {
        super::print(&render(&policy))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// (manifest, policy file, `--source`, `--lease`): the sources are the ones the CI
/// examples upload to, the lease the one manifests/tugboat-on-ecs runs with.
#[cfg(test)]
pub(crate) const CHECKED_IN: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "manifests/dev.yaml",
        "manifests/iam-policy-dev.json",
        "s3://tugboat-documents-123456789012/dev/prediction-app.yaml",
        None,
    ),
    (
        "manifests/stage.yaml",
        "manifests/iam-policy-stage.json",
        "s3://tugboat-documents-123456789012/stage/prediction-app.yaml",
        None,
    ),
    (
        "manifests/prod.yaml",
        "manifests/iam-policy-prod.json",
        "s3://tugboat-documents-123456789012/prod/prediction-app.yaml",
        Some("s3://tugboat-state-123456789012/prod/prediction-app/lease.json"),
    ),
];

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::platform::{AWS_OPERATIONS, Caller, aws_operation, is_aws_call};
    use tugboat_core::iam::Scope;

    /// A document that needs every grant: a rolling and a canary workload on a listener,
    /// a model from S3 with an SSM pointer, the status on S3, secrets in SSM for a
    /// Prometheus token and a webhook, and CloudWatch analysis.
    const FULL: &str = "\
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: shop, environment: test}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: shop-test
      subnets: [subnet-1]
      securityGroups: [sg-1]
      executionRoleArn: arn:aws:iam::123456789012:role/exec
      taskRoleArn: arn:aws:iam::123456789012:role/task
      listenerArn: arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2
  workloads:
    - name: worker
      image: worker:1
      cpu: 256
      memory: 512
      desiredCount: 1
      strategy: {rolling: {}}
      autoScaling:
        minCapacity: 1
        maxCapacity: 4
        targetTracking: [{predefinedMetric: ECSServiceAverageCPUUtilization, targetValue: 60}]
    - name: api
      image: api:1
      cpu: 256
      memory: 512
      desiredCount: 2
      containerPort: 8000
      model: clf
      route:
        pathPatterns: [\"/api/*\"]
        priority: 10
        targetGroups:
          blue: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-blue/0c1b2c3d4e5f6a01
          green: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/shop-green/0c1b2c3d4e5f6a02
      strategy:
        canary:
          steps: [{setWeight: 20}, {analysis: {templates: [{templateName: errors}, {templateName: latency}]}}, {setWeight: 100}]
  analysisTemplates:
    - name: errors
      provider: {cloudwatch: {targetGroup: shop-green}}
      query: 100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)
      successCondition: result < 1
    - name: latency
      provider:
        prometheus:
          address: http://prometheus:9090
          authentication: {bearer: {ssm: /shop/prometheus-token}}
      query: up
      successCondition: result == 1
  models:
    - {name: clf, storeUri: \"s3://shop-models/clf\", versionParameter: /shop/model-version}
  notifications:
    - {url: \"https://hooks.example.com/tugboat\", secret: {ssm: /shop/webhook-key}}
  status: {uri: \"s3://shop-state/test/status.json\"}
";

    const SOURCE: &str = "s3://shop-documents/test/shop.yaml";
    const LEASE: &str = "s3://shop-state/test/lease.json";
    const ECS: &str = "arn:aws:ecs:us-east-1:123456789012";
    const SSM: &str = "arn:aws:ssm:us-east-1:123456789012:parameter";
    const RULE: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2/6d0ecf831eec9f09";

    fn full() -> Policy {
        let inputs = Inputs {
            source: Some(SOURCE.into()),
            lease: Some(LEASE.into()),
        };
        for_document(FULL, "full.yaml", &inputs).expect("policy")
    }

    /// A resource of each scope that a real call on the FULL document names.
    fn example(scope: Scope) -> Vec<String> {
        let v = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        match scope {
            Scope::Services => v(&[
                &format!("{ECS}:service/shop-test/worker"),
                &format!("{ECS}:service/shop-test/api-blue"),
                &format!("{ECS}:service/shop-test/api-green"),
            ]),
            Scope::TaskDefinitionFamilies => v(&[
                &format!("{ECS}:task-definition/shop-worker:1"),
                &format!("{ECS}:task-definition/shop-api:12"),
            ]),
            Scope::Listener => v(&[
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
            ]),
            Scope::ListenerRules => v(&[RULE]),
            Scope::OverridesPath => v(&[
                &format!("{SSM}/tugboat/test/shop"),
                &format!("{SSM}/tugboat/test/shop/api/weight"),
            ]),
            Scope::ModelPointers => v(&[&format!("{SSM}/shop/model-version")]),
            Scope::SecretParameters => v(&[
                &format!("{SSM}/shop/prometheus-token"),
                &format!("{SSM}/shop/webhook-key"),
            ]),
            // The FULL document is read from S3.
            Scope::DocumentParameter => Vec::new(),
            Scope::ModelObjects => v(&[
                "arn:aws:s3:::shop-models/clf/v2/metadata.json",
                "arn:aws:s3:::shop-models/clf/v2/model.onnx",
            ]),
            Scope::StatusObject => v(&["arn:aws:s3:::shop-state/test/status.json"]),
            Scope::DocumentObject => v(&["arn:aws:s3:::shop-documents/test/shop.yaml"]),
            Scope::LeaseObject => v(&["arn:aws:s3:::shop-state/test/lease.json"]),
            Scope::ObjectBuckets => v(&["arn:aws:s3:::shop-state", "arn:aws:s3:::shop-documents"]),
            Scope::TaskRoles => v(&[
                "arn:aws:iam::123456789012:role/exec",
                "arn:aws:iam::123456789012:role/task",
            ]),
            Scope::Any(_) => v(&["*"]),
        }
    }

    #[test]
    fn every_call_the_controller_makes_is_allowed_on_what_it_names() {
        let policy = full();
        let mut checked = 0;
        for operation in AWS_OPERATIONS
            .iter()
            .filter(|o| o.caller == Caller::Controller)
        {
            assert!(
                !operation.grants.is_empty(),
                "{} is a controller call without grants",
                operation.api
            );
            for grant in operation.grants {
                for resource in example(grant.on) {
                    assert!(
                        policy.allows(grant.action, &resource),
                        "{} needs {} on {resource}, which the policy does not allow:\n{}",
                        operation.api,
                        grant.action,
                        render(&policy)
                    );
                    checked += 1;
                }
            }
        }
        assert!(
            checked > 40,
            "only {checked} (action, resource) pairs checked"
        );
    }

    #[test]
    fn the_policy_allows_nothing_more_than_the_controllers_calls() {
        let policy = full();
        let needed: BTreeSet<&str> = AWS_OPERATIONS
            .iter()
            .filter(|o| o.caller == Caller::Controller)
            .flat_map(|o| o.grants.iter().map(|g| g.action))
            .collect();
        let allowed: BTreeSet<&str> = policy.actions().into_iter().collect();
        assert_eq!(
            allowed, needed,
            "the policy's actions are exactly the table's"
        );
        for statement in &policy.statements {
            assert!(
                !statement.actions.iter().any(|a| a.contains('*')),
                "no action wildcards: {statement:?}"
            );
            if statement.is_unscoped() {
                assert!(
                    statement.sid.ends_with("HaveNoResourceLevelPermissions")
                        || statement.sid.ends_with("HasNoResourceLevelPermissions"),
                    "an unscoped statement says why in its Sid: {}",
                    statement.sid
                );
            }
        }
        // What the controller never does, on what it is allowed to do elsewhere.
        let denied = [
            (
                "ssm:PutParameter",
                format!("{SSM}/tugboat/test/shop/api/action"),
            ),
            (
                "ssm:DeleteParameter",
                format!("{SSM}/tugboat/test/shop/api/action"),
            ),
            (
                "ecs:UpdateService",
                format!("{ECS}:service/shop-test/other"),
            ),
            (
                "ecs:UpdateService",
                format!("{ECS}:service/other-cluster/api-blue"),
            ),
            ("ecs:CreateService", format!("{ECS}:service/shop-test/api")),
            (
                "ecs:TagResource",
                format!("{ECS}:task-definition/other-api:1"),
            ),
            (
                "ecs:DeleteService",
                format!("{ECS}:service/shop-test/api-blue"),
            ),
            (
                "elasticloadbalancing:ModifyRule",
                RULE.replace("f2f7dc8efc522ab2", "0000000000000000"),
            ),
            (
                "elasticloadbalancing:CreateRule",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/other/1/2".into(),
            ),
            // The header route's rule is deleted; another listener's rules never are.
            (
                "elasticloadbalancing:DeleteRule",
                "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener-rule/app/other/1111111111111111/2222222222222222/3333333333333333".into(),
            ),
            ("ssm:GetParameter", format!("{SSM}/other/secret")),
            (
                "ssm:GetParametersByPath",
                format!("{SSM}/tugboat/test/other"),
            ),
            (
                "s3:PutObject",
                "arn:aws:s3:::shop-documents/test/shop.yaml".into(),
            ),
            (
                "s3:PutObject",
                "arn:aws:s3:::shop-models/clf/v2/model.onnx".into(),
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::shop-state/prod/status.json".into(),
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::other-bucket/clf/v2/model.onnx".into(),
            ),
            ("s3:ListBucket", "arn:aws:s3:::shop-models".into()),
            (
                "iam:PassRole",
                "arn:aws:iam::123456789012:role/admin".into(),
            ),
        ];
        for (action, resource) in denied {
            assert!(
                !policy.allows(action, &resource),
                "{action} on {resource} must not be allowed:\n{}",
                render(&policy)
            );
        }
    }

    #[test]
    fn a_document_without_listener_models_secrets_or_cloudwatch_gets_no_grant_for_them() {
        let minimal = "\
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: demo, environment: test}
spec:
  platform:
    aws:
      region: eu-west-1
      cluster: demo
      subnets: [subnet-1]
      securityGroups: [sg-1]
      executionRoleArn: arn:aws:iam::210987654321:role/exec
  workloads:
    - {name: worker, image: worker:1, cpu: 256, memory: 512, desiredCount: 1, strategy: {rolling: {}}}
";
        let policy = for_document(minimal, "minimal.yaml", &Inputs::default()).expect("policy");
        let actions = policy.actions();
        for absent in [
            "elasticloadbalancing:",
            "cloudwatch:",
            "s3:",
            "ssm:GetParameter\0",
        ] {
            let absent = absent.trim_end_matches('\0');
            assert!(
                !actions
                    .iter()
                    .any(|a| a.starts_with(absent) && (absent.ends_with(':') || *a == absent)),
                "{absent} is not needed: {actions:?}"
            );
        }
        assert!(policy.allows(
            "ecs:UpdateService",
            "arn:aws:ecs:eu-west-1:210987654321:service/demo/worker"
        ));
        assert!(!policy.allows(
            "ecs:UpdateService",
            "arn:aws:ecs:eu-west-1:210987654321:service/demo/worker-blue"
        ));
    }

    #[test]
    fn an_ssm_source_is_read_by_parameter_and_bad_inputs_are_named() {
        let inputs = Inputs {
            source: Some("ssm:/shop/test/document".into()),
            lease: None,
        };
        let policy = for_document(FULL, "full.yaml", &inputs).expect("policy");
        assert!(policy.allows("ssm:GetParameter", &format!("{SSM}/shop/test/document")));
        assert!(!policy.allows("s3:GetObject", "arn:aws:s3:::shop-documents/test/shop.yaml"));
        let bad = Inputs {
            source: Some("https://example.com/doc.yaml".into()),
            lease: None,
        };
        let err = for_document(FULL, "full.yaml", &bad).expect_err("bad source");
        assert!(format!("{err:#}").contains("document source"), "{err:#}");
        let local = "apiVersion: tugboat.dev/v1alpha1\nkind: Application\nmetadata: {name: l, environment: dev}\nspec:\n  platform: {local: {listen: \"127.0.0.1:8080\"}}\n  workloads:\n    - {name: w, image: backend, cpu: 256, memory: 512, desiredCount: 1, strategy: {rolling: {}}}\n";
        let err = for_document(local, "local.yaml", &Inputs::default()).expect_err("local");
        assert!(format!("{err:#}").contains("local platform"), "{err:#}");
    }

    #[test]
    fn the_plan_policy_reads_what_diff_reads_and_changes_nothing() {
        let policy = plan_for_document(FULL, "full.yaml").expect("plan policy");
        for action in policy.actions() {
            let reads = AWS_OPERATIONS.iter().any(|o| {
                o.kind == crate::platform::CallKind::Describe
                    && o.grants.iter().any(|g| g.action == action)
            });
            assert!(reads, "{action} is not a read");
        }
        for (action, resource) in [
            (
                "ecs:DescribeServices",
                format!("{ECS}:service/shop-test/api-blue"),
            ),
            ("ecs:DescribeTaskDefinition", "*".into()),
            ("elasticloadbalancing:DescribeRules", "*".into()),
            (
                "ssm:GetParametersByPath",
                format!("{SSM}/tugboat/test/shop"),
            ),
            ("ssm:GetParameter", format!("{SSM}/shop/model-version")),
            (
                "s3:GetObject",
                "arn:aws:s3:::shop-state/test/status.json".into(),
            ),
            (
                "s3:GetObject",
                "arn:aws:s3:::shop-models/clf/v2/metadata.json".into(),
            ),
        ] {
            assert!(
                policy.allows(action, &resource),
                "diff reads {action} on {resource}"
            );
        }
        for (action, resource) in [
            ("ssm:GetParameter", format!("{SSM}/shop/prometheus-token")),
            ("ssm:GetParameter", format!("{SSM}/shop/webhook-key")),
            (
                "ecs:UpdateService",
                format!("{ECS}:service/shop-test/api-blue"),
            ),
            ("ecs:RegisterTaskDefinition", "*".into()),
            ("iam:PassRole", "arn:aws:iam::123456789012:role/exec".into()),
            (
                "s3:PutObject",
                "arn:aws:s3:::shop-state/test/status.json".into(),
            ),
            ("elasticloadbalancing:ModifyRule", RULE.into()),
        ] {
            assert!(
                !policy.allows(action, &resource),
                "diff never needs {action} on {resource}"
            );
        }
    }

    #[test]
    #[should_panic(expected = "missing from platform::AWS_OPERATIONS")]
    fn recording_an_aws_call_missing_from_the_table_panics_in_tests() {
        crate::platform::CallCounter::default()
            .record("ecs:DeleteService", crate::platform::CallKind::Mutate);
    }

    fn controller_src() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
    }

    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read src").flatten() {
            let path = entry.path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// `get_parameters_by_path` -> `GetParametersByPath`.
    fn camel(snake: &str) -> String {
        snake
            .split('_')
            .map(|part| {
                let mut c = part.chars();
                c.next()
                    .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The SDK operation each `….send()` chain in `text` starts with: the first
    /// argument-less method call of the statement (`self.client.get_object()`).
    fn sdk_calls(text: &str) -> Vec<String> {
        const NOT_OPERATIONS: &[&str] = &["clone", "as_ref", "customize", "build", "to_owned"];
        let mut found = Vec::new();
        let mut rest = text;
        while let Some(at) = rest.find(".send()") {
            let before = &rest[..at];
            let start = before.rfind([';', '{', '}']).map_or(0, |i| i + 1);
            let statement = &before[start..];
            for (i, c) in statement.char_indices() {
                if c != '.' {
                    continue;
                }
                let tail = statement[i + 1..].trim_start();
                let name: String = tail
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if !name.is_empty()
                    && tail[name.len()..].starts_with("()")
                    && !NOT_OPERATIONS.contains(&name.as_str())
                {
                    found.push(camel(&name));
                    break;
                }
            }
            rest = &rest[at + ".send()".len()..];
        }
        // A request built in one statement and sent in another: the call on a client.
        for receiver in ["client", "ecs", "elb", "ssm", "s3", "cloudwatch"] {
            for (i, _) in text.match_indices(receiver) {
                let word_start =
                    i == 0 || !text[..i].ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
                let tail = text[i + receiver.len()..].trim_start();
                let Some(tail) = tail.strip_prefix('.') else {
                    continue;
                };
                let tail = tail.trim_start();
                let name: String = tail
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                    .collect();
                if word_start
                    && !name.is_empty()
                    && tail[name.len()..].starts_with("()")
                    && !NOT_OPERATIONS.contains(&name.as_str())
                {
                    found.push(camel(&name));
                }
            }
        }
        found
    }

    /// Every AWS call in the controller's source is in the table, read two ways: the
    /// names calls are recorded and reported under (`"ecs:CreateService"`), and the SDK
    /// operations `.send()` chains start with (which also covers the modules that do not
    /// record: blob, secrets, CloudWatch). And every row of the table is called somewhere.
    #[test]
    fn the_table_has_every_aws_call_in_the_source_and_no_other() {
        let mut files = Vec::new();
        rust_files(&controller_src(), &mut files);
        let mut named = BTreeSet::new();
        let mut operations = BTreeSet::new();
        for file in &files {
            let text = std::fs::read_to_string(file).expect("read source");
            let code = text.split("#[cfg(test)]").next().unwrap_or(&text);
            if file.ends_with("platform/mod.rs") {
                continue;
            }
            for (i, _) in code.match_indices('"') {
                let literal: String = code[i + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == ':' || *c == '-')
                    .collect();
                let Some((service, op)) = literal.split_once(':') else {
                    continue;
                };
                if ["ecs", "elbv2", "ssm", "s3", "cloudwatch"].contains(&service)
                    && op.starts_with(|c: char| c.is_ascii_uppercase())
                    && code[i + 1 + literal.len()..].starts_with('"')
                {
                    named.insert(literal);
                }
            }
            operations.extend(sdk_calls(code));
        }
        for api in &named {
            assert!(
                !is_aws_call(api) || aws_operation(api).is_some(),
                "{api} is called in the source but missing from platform::AWS_OPERATIONS"
            );
        }
        let table_ops: BTreeSet<String> = AWS_OPERATIONS
            .iter()
            .map(|o| {
                o.api
                    .split_once(':')
                    .map(|(_, op)| op.to_string())
                    .unwrap_or_default()
            })
            .collect();
        for op in &operations {
            assert!(
                table_ops.contains(op),
                "the SDK operation {op} is sent in the source but no row of \
                 platform::AWS_OPERATIONS names it (found: {operations:?})"
            );
        }
        for operation in AWS_OPERATIONS {
            let op = operation
                .api
                .split_once(':')
                .map(|(_, op)| op)
                .unwrap_or_default();
            assert!(
                named.contains(operation.api) || operations.contains(op),
                "{} is in the table but nothing in the source calls it",
                operation.api
            );
        }
    }

    /// The checked-in policies under manifests/ are this command's output.
    #[test]
    fn the_checked_in_policies_match_the_generator() {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        for (manifest, output, source, lease) in CHECKED_IN {
            let text = std::fs::read_to_string(repo.join(manifest)).expect("manifest");
            let inputs = Inputs {
                source: Some(source.to_string()),
                lease: lease.map(str::to_string),
            };
            let generated = render(&for_document(&text, manifest, &inputs).expect("policy"));
            let path = repo.join(output);
            if std::env::var_os("TUGBOAT_BLESS").is_some() {
                std::fs::write(&path, &generated).expect("write policy");
                continue;
            }
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == generated,
                "{output} is out of date. Regenerate it with\n  \
                 tugboat iam-policy -f {manifest} --source {source}{} > {output}\n\
                 (or TUGBOAT_BLESS=1 cargo test -p tugboat --lib checked_in_policies)",
                lease.map(|l| format!(" --lease {l}")).unwrap_or_default()
            );
        }
    }
}
