//! Checks of what deploys tugboat and what feeds it (tests only): the task definition and
//! service under `manifests/tugboat-on-ecs/` are ECS RegisterTaskDefinition and
//! CreateService inputs that `tugboat import` reads, running `tugboat run` with the
//! source and lease its generated policy (`manifests/iam-policy-prod.json`) allows; the
//! CI examples under `manifests/ci/` are YAML/JSON of the right shape, every `tugboat`
//! command in them parses with the real CLI, and prod is applied only after a manual
//! approval.

use std::collections::BTreeSet;
use std::path::PathBuf;

use clap::Parser;
use serde_json::Value;

use super::iam_policy::CHECKED_IN;

/// The verbs the examples may use, parsed as the binary parses them.
#[derive(Debug, clap::Parser)]
#[command(name = "tugboat")]
struct Cli {
    #[command(subcommand)]
    command: Verb,
}

#[derive(Debug, clap::Subcommand)]
enum Verb {
    Validate(super::validate::Args),
    Diff(super::diff::Args),
    Apply(super::apply::Args),
    Run(super::run::Args),
    Status(super::status::Args),
    IamPolicy(super::iam_policy::Args),
    Import(super::import::Args),
}

/// Flags the deployment uses that arrive with another part of issue 12 (leader
/// election, branch `elect`): tolerated, with their value, until `tugboat run` has them.
const PENDING_RUN_FLAGS: &[(&str, bool)] = &[("--leader-election", false), ("--lease", true)];

fn repo(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn read(relative: &str) -> String {
    std::fs::read_to_string(repo(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn json(relative: &str) -> Value {
    serde_json::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn yaml(relative: &str) -> Value {
    serde_saphyr::from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Splits a shell line into words (quotes removed, `$VARS` kept as written).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if any || !word.is_empty() {
                    out.push(std::mem::take(&mut word));
                }
                any = false;
            }
            (None, c) => word.push(c),
        }
    }
    if any || !word.is_empty() {
        out.push(word);
    }
    out
}

/// Every `tugboat ...` invocation in a script: the words after `tugboat` up to a shell
/// operator or redirection.
fn invocations(script: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in script.lines() {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let words = words(line);
        let mut i = 0;
        while i < words.len() {
            if words[i] == "tugboat" {
                let args: Vec<String> = words[i + 1..]
                    .iter()
                    .take_while(|w| {
                        !["||", "&&", "|", ";", ")"].contains(&w.as_str())
                            && !w.starts_with('>')
                            && !w.starts_with("2>")
                    })
                    .cloned()
                    .collect();
                i += args.len();
                found.push(args);
            }
            i += 1;
        }
    }
    found
}

/// Parses one invocation with the real CLI; `Err` names what clap said.
fn parse(args: &[String]) -> Result<Verb, String> {
    let argv = std::iter::once("tugboat".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv)
        .map(|cli| cli.command)
        .map_err(|e| format!("`tugboat {}`: {e}", args.join(" ")))
}

fn verb_name(verb: &Verb) -> &'static str {
    match verb {
        Verb::Validate(_) => "validate",
        Verb::Diff(_) => "diff",
        Verb::Apply(_) => "apply",
        Verb::Run(_) => "run",
        Verb::Status(_) => "status",
        Verb::IamPolicy(_) => "iam-policy",
        Verb::Import(_) => "import",
    }
}

/// The verbs of every invocation in `scripts`, each of which must parse.
fn verbs_of(file: &str, scripts: &[String]) -> BTreeSet<&'static str> {
    let mut verbs = BTreeSet::new();
    for script in scripts {
        for args in invocations(script) {
            let verb = parse(&args).unwrap_or_else(|e| panic!("{file}: {e}"));
            verbs.insert(verb_name(&verb));
        }
    }
    verbs
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

/// RegisterTaskDefinition's request members (ECS API reference).
const REGISTER_TASK_DEFINITION: &[&str] = &[
    "family",
    "taskRoleArn",
    "executionRoleArn",
    "networkMode",
    "containerDefinitions",
    "volumes",
    "placementConstraints",
    "requiresCompatibilities",
    "cpu",
    "memory",
    "tags",
    "pidMode",
    "ipcMode",
    "proxyConfiguration",
    "inferenceAccelerators",
    "ephemeralStorage",
    "runtimePlatform",
    "enableFaultInjection",
];

/// CreateService's request members (ECS API reference).
const CREATE_SERVICE: &[&str] = &[
    "cluster",
    "serviceName",
    "taskDefinition",
    "availabilityZoneRebalancing",
    "loadBalancers",
    "serviceRegistries",
    "desiredCount",
    "clientToken",
    "launchType",
    "capacityProviderStrategy",
    "platformVersion",
    "role",
    "deploymentConfiguration",
    "placementConstraints",
    "placementStrategy",
    "networkConfiguration",
    "healthCheckGracePeriodSeconds",
    "schedulingStrategy",
    "deploymentController",
    "tags",
    "enableECSManagedTags",
    "propagateTags",
    "enableExecuteCommand",
    "serviceConnectConfiguration",
    "volumeConfigurations",
    "vpcLatticeConfigurations",
];

fn keys(value: &Value) -> Vec<&str> {
    value
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn the_task_definition_and_service_are_ecs_inputs_tugboat_import_reads() {
    let td = json("manifests/tugboat-on-ecs/task-definition.json");
    let service = json("manifests/tugboat-on-ecs/service.json");
    for key in keys(&td) {
        assert!(
            REGISTER_TASK_DEFINITION.contains(&key),
            "task-definition.json: {key} is not a RegisterTaskDefinition member"
        );
    }
    for key in keys(&service) {
        assert!(
            CREATE_SERVICE.contains(&key),
            "service.json: {key} is not a CreateService member"
        );
    }
    assert_eq!(td["networkMode"], "awsvpc", "Fargate needs awsvpc");
    assert!(strings(&td["requiresCompatibilities"]).contains(&"FARGATE".to_string()));
    // A Fargate size: 256 CPU units take 512, 1024 or 2048 MiB.
    assert_eq!(td["cpu"], "256");
    assert!(["512", "1024", "2048"].contains(&td["memory"].as_str().unwrap_or_default()));
    assert_eq!(service["taskDefinition"], td["family"]);
    assert_eq!(service["launchType"], "FARGATE");
    assert_eq!(service["desiredCount"], 2, "two replicas, one leader");

    let imported = super::import::import(&td, Some(&service), Some("tugboat"))
        .unwrap_or_else(|e| panic!("tugboat import reads the task definition: {e}"));
    assert_eq!(imported.workload.desired_count, 2);
    assert_eq!(
        imported.workload.image,
        td["containerDefinitions"][0]["image"]
    );
    assert_eq!(
        (imported.workload.cpu, imported.workload.memory),
        (256, 512)
    );
}

#[test]
fn the_deployed_controller_runs_with_what_its_generated_policy_allows() {
    let td = json("manifests/tugboat-on-ecs/task-definition.json");
    let command = strings(&td["containerDefinitions"][0]["command"]);
    let flag = |name: &str| {
        command
            .iter()
            .position(|w| w == name)
            .and_then(|i| command.get(i + 1))
            .cloned()
    };
    // The policy manifests/iam-policy-prod.json was generated for this source and lease.
    let (_, policy_file, source, lease) = CHECKED_IN
        .iter()
        .find(|(manifest, ..)| manifest.ends_with("prod.yaml"))
        .expect("prod's policy is checked in");
    assert_eq!(flag("--source").as_deref(), Some(*source), "{policy_file}");
    assert_eq!(flag("--lease").as_deref(), *lease, "{policy_file}");

    // The command parses as `tugboat run`, the leader-election flags aside until they
    // exist on this branch.
    let mut args = command.clone();
    loop {
        match parse(&args) {
            Ok(Verb::Run(run)) => {
                assert_eq!(run.source, *source);
                break;
            }
            Ok(other) => panic!("the container runs `tugboat {}`", verb_name(&other)),
            Err(e) => {
                let pending = PENDING_RUN_FLAGS
                    .iter()
                    .find(|(f, _)| e.contains(&format!("'{f}'")));
                let Some((name, takes_value)) = pending else {
                    panic!("task-definition.json: {e}");
                };
                let i = args.iter().position(|w| w == name).expect("flag");
                args.drain(i..i + if *takes_value { 2 } else { 1 });
            }
        }
    }
    assert!(
        command.iter().any(|w| w == "--leader-election"),
        "two replicas need leader election"
    );
}

#[test]
fn the_github_workflow_plans_on_pull_requests_and_applies_prod_after_approval() {
    let file = "manifests/ci/github-actions.yaml";
    let workflow = yaml(file);
    let jobs = workflow["jobs"].as_object().expect("jobs");
    let scripts = |job: &str| -> Vec<String> {
        jobs[job]["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .flat_map(|s| strings(&s["run"]))
            .collect()
    };
    let all: Vec<String> = jobs.keys().flat_map(|j| scripts(j)).collect();
    let verbs = verbs_of(file, &all);
    for verb in ["validate", "diff", "apply"] {
        assert!(
            verbs.contains(verb),
            "{file} runs tugboat {verb}: {verbs:?}"
        );
    }
    let plan = scripts("plan").join("\n");
    assert!(plan.contains("tugboat diff") && plan.contains("gh pr comment"));
    assert!(strings(&workflow["on"]["pull_request"]["paths"]).contains(&"manifests/**".into()));
    let prod = &jobs["apply-prod"];
    assert_eq!(prod["environment"], "production", "reviewers approve prod");
    assert_eq!(prod["needs"], "apply-stage", "prod after stage");
    assert!(
        scripts("apply-prod")
            .iter()
            .any(|s| s.contains("manifests/prod.yaml --to"))
    );
}

#[test]
fn the_buildspec_and_pipeline_plan_then_apply_prod_after_a_manual_approval() {
    let file = "manifests/ci/buildspec.yaml";
    let buildspec = yaml(file);
    assert_eq!(buildspec["version"], 0.2);
    let phases = buildspec["phases"].as_object().expect("phases");
    let scripts: Vec<String> = phases
        .values()
        .flat_map(|p| strings(&p["commands"]))
        .collect();
    let verbs = verbs_of(file, &scripts);
    for verb in ["validate", "diff", "apply"] {
        assert!(
            verbs.contains(verb),
            "{file} runs tugboat {verb}: {verbs:?}"
        );
    }

    let pipeline = json("manifests/ci/codepipeline.json");
    let stages = pipeline["pipeline"]["stages"].as_array().expect("stages");
    let env_of = |stage: &Value| -> Option<String> {
        let vars = stage["actions"][0]["configuration"]["EnvironmentVariables"].as_str()?;
        let vars: Value = serde_json::from_str(vars).expect("EnvironmentVariables is JSON");
        vars.as_array()?
            .iter()
            .find(|v| v["name"] == "TUGBOAT_ENV")
            .and_then(|v| v["value"].as_str().map(str::to_string))
    };
    let order: Vec<String> = stages
        .iter()
        .map(|s| {
            let kind = &s["actions"][0]["actionTypeId"];
            match (kind["category"].as_str(), env_of(s)) {
                (Some("Approval"), _) => "approval".to_string(),
                (_, Some(env)) => format!("apply {env}"),
                (Some(category), None) => category.to_lowercase(),
                _ => "?".into(),
            }
        })
        .collect();
    assert_eq!(
        order,
        [
            "source",
            "build",
            "apply dev",
            "apply stage",
            "approval",
            "apply prod"
        ],
        "the seed's pipeline: plan, dev, stage, a manual approval, prod"
    );
    for stage in stages.iter().filter(|s| env_of(s).is_some()) {
        assert_eq!(
            stage["actions"][0]["configuration"]["ProjectName"],
            stages[1]["actions"][0]["configuration"]["ProjectName"],
            "one CodeBuild project runs the buildspec for every stage"
        );
    }
}

#[test]
fn invocations_are_found_through_quotes_and_operators() {
    let found = invocations(
        "tugboat diff -f \"manifests/$env.yaml\" >> plan.md || [ $? -eq 2 ]\n\
         # tugboat ignored\n\
         x && tugboat apply -f a.yaml --to \"$D/x\"",
    );
    assert_eq!(
        found,
        vec![
            vec!["diff", "-f", "manifests/$env.yaml"],
            vec!["apply", "-f", "a.yaml", "--to", "$D/x"],
        ]
    );
    assert!(parse(&["apply".into(), "-f".into(), "a.yaml".into()]).is_err());
}
