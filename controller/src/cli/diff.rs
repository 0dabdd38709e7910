//! `tugboat diff`: what the controller would do, without doing it.
//!
//! Renders `plan(desired, observed, now)` for humans (or as JSON): every action with why
//! it is needed and what it costs in AWS API calls, then each workload's phase. The
//! observed state comes from the live platform (AWS, read-only: observe and the
//! persisted status, never a mutating call), or from a file: a recorded observation, or
//! an empty file for an empty platform.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[cfg(feature = "aws")]
use crate::budget::Budgets;
use crate::document::{Application, Platform as PlatformSpec};
use crate::observed::ObservedState;
use crate::plan::{Action, Plan, plan};
#[cfg(feature = "aws")]
use crate::platform::aws::{AwsClients, AwsPlatform};
use crate::platform::aws_cost::estimate_calls;
use crate::reconcile;
use crate::status::{AppStatus, Timestamp};
#[cfg(feature = "aws")]
use crate::status_store::StatusStore;

#[derive(Debug, clap::Args)]
#[command(
    about = "Show what the controller would change, without changing anything",
    after_help = "Examples:
  # Against live AWS (read-only; credentials and region from the usual AWS chain):
  tugboat diff -f manifests/prod.yaml

  # Against an empty platform (what a first deployment does):
  tugboat diff -f manifests/prod.yaml --observed /dev/null

  # Against a recorded observation (JSON; see core/src/observed.rs for its shape) and
  # the status the controller persisted (`tugboat status --json`):
  tugboat diff -f manifests/prod.yaml --observed observed.json --status status.json

  # As JSON, for CI annotations:
  tugboat diff -f manifests/stage.yaml --observed observed.json --format json

Exit status: 0 when nothing would change, 2 when changes are planned, 1 on errors."
)]
pub struct Args {
    /// The desired-state document.
    #[arg(short = 'f', long = "file")]
    pub file: PathBuf,
    /// Observed state as JSON (an empty file means nothing is deployed). Without it,
    /// the live platform is observed.
    #[arg(long)]
    pub observed: Option<PathBuf>,
    /// The previous status (the planner's memory) as JSON, as `tugboat status --json`
    /// prints it. Only with --observed; without it the plan starts with no status.
    #[arg(long, requires = "observed")]
    pub status: Option<PathBuf>,
    /// Plan as of this time (RFC 3339), instead of now. Useful to see when timers fire.
    #[arg(long, value_parser = parse_time)]
    pub at: Option<Timestamp>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
}

fn parse_time(s: &str) -> Result<Timestamp, String> {
    let t = humantime::parse_rfc3339_weak(s).map_err(|e| format!("{s:?}: {e}"))?;
    let ms = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("{s:?} is before 1970"))?
        .as_millis();
    Ok(Timestamp(ms as u64))
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let desired = match crate::validate::load_file(&args.file) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("{err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    let now = args.at.unwrap_or_else(Timestamp::now);
    if args.format == Format::Text {
        super::print(&document_notes(&desired))?;
    }
    let planned = match &args.observed {
        Some(path) => {
            let (observed, embedded) = read_observed(path)?;
            let status = match &args.status {
                Some(path) => Some(read_status(path)?),
                None => embedded,
            };
            let planned = plan(&desired, &observed, status.as_ref(), now);
            if args.format == Format::Text {
                super::print(&render(&planned, &observed))?;
            }
            planned
        }
        None => {
            let preview = live_preview(&desired, now).await?;
            if args.format == Format::Text {
                super::print(&render_preview(&preview))?;
            }
            preview.plan
        }
    };
    if args.format == Format::Json {
        super::println(&serde_json::to_string_pretty(&planned)?)?;
    }
    Ok(if planned.is_converged() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

/// A live diff in a build without AWS: only `--observed FILE` works there.
#[cfg(not(feature = "aws"))]
async fn live_preview(desired: &Application, _: Timestamp) -> anyhow::Result<reconcile::Preview> {
    let PlatformSpec::Aws(_) = &desired.spec.platform else {
        anyhow::bail!(
            "a live diff needs the AWS platform; for the local platform pass --observed FILE"
        );
    };
    anyhow::bail!(
        "a live diff observes AWS, and {}; pass --observed FILE to plan from a recorded \
         observation",
        crate::aws::NOT_BUILT
    )
}

/// Observes the live platform and plans from the persisted status, changing nothing.
#[cfg(feature = "aws")]
async fn live_preview(desired: &Application, now: Timestamp) -> anyhow::Result<reconcile::Preview> {
    let PlatformSpec::Aws(aws) = &desired.spec.platform else {
        anyhow::bail!(
            "a live diff needs the AWS platform; for the local platform pass --observed FILE"
        );
    };
    let config = crate::aws::sdk_config(Some(&aws.region)).await;
    let clients = AwsClients::from_sdk_config(&config);
    let status = match &desired.spec.status {
        Some(store) => StatusStore::open(&store.uri, Some(clients.s3.clone()))
            .with_context(|| format!("opening the status at {}", store.uri))?
            .load()
            .await
            .with_context(|| format!("reading the status at {}", store.uri))?,
        None => None,
    };
    let inputs = reconcile::SideInputs::aws(&clients, Budgets::process_wide());
    let platform = AwsPlatform::new(clients, Budgets::process_wide());
    reconcile::preview(&platform, &inputs, desired, status, now)
        .await
        .context("observing the platform")
}

/// An observation as recorded before the previous status became its own input: the
/// observed state with the status under a `status` key. Still accepted, so recordings
/// made by older versions keep working; `--status` wins over it.
#[derive(serde::Deserialize)]
struct Recording {
    #[serde(flatten)]
    observed: serde_json::Map<String, serde_json::Value>,
}

fn read_observed(path: &PathBuf) -> anyhow::Result<(ObservedState, Option<AppStatus>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading observed state {}", path.display()))?;
    if text.trim().is_empty() {
        return Ok((ObservedState::default(), None));
    }
    let mut recording: Recording = serde_json::from_str(&text)
        .with_context(|| format!("{}: not an observed state (JSON)", path.display()))?;
    let status = match recording.observed.remove("status") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => {
            eprintln!(
                "note: {} carries the previous status under `status`; pass it with --status FILE instead",
                path.display()
            );
            Some(
                serde_json::from_value(value).with_context(|| {
                    format!("{}: `status` is not a tugboat status", path.display())
                })?,
            )
        }
    };
    let observed = serde_json::from_value(serde_json::Value::Object(recording.observed))
        .with_context(|| format!("{}: not an observed state (JSON)", path.display()))?;
    Ok((observed, status))
}

fn read_status(path: &PathBuf) -> anyhow::Result<AppStatus> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading status {}", path.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("{}: not a tugboat status (JSON)", path.display()))
}

/// Rendering of a live preview: the plan with the platform's own call estimates, what
/// observing cost, and the workloads that could not be observed.
pub fn render_preview(preview: &reconcile::Preview) -> String {
    let mut out = String::new();
    let (describe, mutate) = preview
        .estimates
        .iter()
        .fold((0, 0), |(d, m), e| (d + e.describe, m + e.mutate));
    let _ = writeln!(
        out,
        "Observing cost {} AWS call(s); applying would cost at most {mutate} mutating and {describe} describe call(s).",
        preview.observe_calls.total()
    );
    for (workload, error) in &preview.unobserved {
        let _ = writeln!(out, "! {workload} could not be observed: {error}");
    }
    out.push_str(&render(&preview.plan, &ObservedState::default()));
    out
}

/// What the document means beyond what it says, one `note:` line each: a canary whose
/// last `setWeight` is below 100 finishes at 100.
pub fn document_notes(app: &crate::document::Application) -> String {
    let mut out = String::new();
    for w in &app.spec.workloads {
        if let crate::document::Strategy::Canary(c) = &w.strategy
            && crate::plan::steps::implicit_full_weight(c)
        {
            let last = c.steps.iter().rev().find_map(|s| match s {
                crate::document::CanaryStep::SetWeight(w) => Some(*w),
                _ => None,
            });
            let said = match last {
                Some(weight) => format!("last setWeight is {weight}"),
                None => "steps set no weight".to_string(),
            };
            let _ = writeln!(
                out,
                "note: workload `{}`'s {said}: after its steps the rollout moves all traffic to the new revision (a final `setWeight: 100`, as in Argo Rollouts)",
                w.name
            );
        }
    }
    out
}

/// Human-readable rendering of a plan.
pub fn render(plan: &Plan, observed: &ObservedState) -> String {
    let mut out = String::new();
    if plan.actions.is_empty() {
        out.push_str("No changes: the platform matches the document.\n");
    } else {
        let calls: u32 = plan
            .actions
            .iter()
            .map(|a| estimate_calls(&a.action, observed).mutate)
            .sum();
        let _ = writeln!(
            out,
            "{} change(s), {calls} AWS API call(s):",
            plan.actions.len()
        );
        for planned in &plan.actions {
            let _ = writeln!(out, "  {}", describe(&planned.action));
            let _ = writeln!(out, "      because {}", planned.why);
        }
    }
    out.push_str("\nWorkloads:\n");
    for (name, status) in &plan.status.workloads {
        let _ = writeln!(out, "  {name:<20} {:<12} {}", status.phase, status.message);
        // Operator overrides (issue 9): an undo overrides the document's revision.
        for o in super::status::overrides_in_force(status) {
            let _ = writeln!(out, "  {:<20} override: {o}", "");
        }
    }
    if let Some(after) = plan.requeue_after {
        let _ = writeln!(
            out,
            "\nNext look in {}.",
            humantime::format_duration(std::time::Duration::from_secs(after.as_secs().max(1)))
        );
    }
    out
}

fn describe(action: &Action) -> String {
    match action {
        Action::RegisterTaskDefinition {
            definition,
            content_hash,
            ..
        } => format!(
            "+ register task definition {} ({content_hash}): {} cpu={} memory={}",
            definition.family, definition.container.image, definition.cpu, definition.memory
        ),
        Action::CreateService {
            service,
            content_hash,
            desired_count,
            target_group,
            ..
        } => format!(
            "+ create service {service} running {content_hash} x{desired_count}{}",
            target_group
                .as_ref()
                .map(|tg| format!(" in {tg}"))
                .unwrap_or_default()
        ),
        Action::UpdateService {
            service,
            content_hash,
            desired_count,
            ..
        } => {
            let mut parts = Vec::new();
            if let Some(h) = content_hash {
                parts.push(format!("definition -> {h}"));
            }
            if let Some(n) = desired_count {
                parts.push(format!("desired count -> {n}"));
            }
            format!("~ update service {service}: {}", parts.join(", "))
        }
        Action::SetWeights {
            workload,
            blue,
            green,
            ..
        } => format!("~ set {workload} rule weights: blue {blue} / green {green}"),
        Action::StartAnalysis {
            workload,
            step_index,
            templates,
            ..
        } => format!(
            "> start analysis for {workload} step {}: {}",
            step_index + 1,
            templates
                .iter()
                .map(|t| t.template_name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::EnsureScaling {
            service,
            auto_scaling,
            ..
        } => format!(
            "~ scale {service} between {} and {} tasks ({} target-tracking, {} scheduled)",
            auto_scaling.min_capacity,
            auto_scaling.max_capacity,
            auto_scaling.target_tracking.len(),
            auto_scaling.scheduled_actions.len()
        ),
        Action::RemoveScaling { service, .. } => {
            format!("- stop autoscaling {service}")
        }
        Action::SetHeaderRoute {
            workload,
            name,
            priority,
            slot,
            target_group,
            matches,
            ..
        } => format!(
            "~ set {workload} header route {name} (priority {priority}): {} -> {slot} ({target_group}) alone",
            matches
                .iter()
                .map(|m| format!(
                    "{}: {}",
                    m.header_name,
                    m.header_value.alb_value().unwrap_or_default()
                ))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Action::RemoveHeaderRoute { workload, name } => {
            format!("- remove {workload} header route {name}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::{HeaderRouteMatch, HeaderValueMatch, Slot};

    #[test]
    fn the_header_route_reads_as_its_rule() {
        let set = Action::SetHeaderRoute {
            workload: "api".into(),
            name: "testers".into(),
            priority: 9,
            path_patterns: vec!["/api/*".into()],
            slot: Slot::Green,
            target_group: "tg-green".into(),
            matches: vec![HeaderRouteMatch {
                header_name: "x-canary".into(),
                header_value: HeaderValueMatch {
                    prefix: Some("qa-".into()),
                    ..Default::default()
                },
            }],
        };
        assert_eq!(
            describe(&set),
            "~ set api header route testers (priority 9): x-canary: qa-* -> green (tg-green) alone"
        );
        let remove = Action::RemoveHeaderRoute {
            workload: "api".into(),
            name: "testers".into(),
        };
        assert_eq!(describe(&remove), "- remove api header route testers");
    }
}
