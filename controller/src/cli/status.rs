//! `tugboat status`: the persisted status, read where the controller writes it (S3 or a
//! file), without reaching the controller.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::blob::BlobUri;
use crate::status::{AppStatus, WorkloadStatus};
use crate::status_store::StatusStore;

const EXAMPLES: &str = "\
Examples:
  # The status named by a document's spec.status.uri.
  tugboat status -f manifests/prod.yaml

  # A status location directly; JSON for scripts.
  tugboat status --uri s3://acme-tugboat/prediction-app/prod-status.json --json

Exit codes: 0 printed; 1 no status there yet, or it could not be read.";

/// Show the rollout status the controller persisted.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct Args {
    /// A document whose spec.status.uri says where the status is.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "uri"
    )]
    pub file: Option<PathBuf>,

    /// Where the status is: s3://BUCKET/KEY or file://PATH.
    #[arg(long, value_name = "URI", required_unless_present = "file")]
    pub uri: Option<String>,

    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,

    /// How many recent events to show per workload.
    #[arg(long, default_value_t = 3)]
    pub events: usize,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (uri, region) = match (&args.uri, &args.file) {
        (Some(uri), _) => (uri.clone(), None),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let app = crate::source::load_document(&text, &file.display().to_string())?;
            let uri = app
                .spec
                .status
                .as_ref()
                .map(|s| s.uri.clone())
                .with_context(|| {
                    format!(
                        "{} has no spec.status.uri: the controller does not persist its status",
                        file.display()
                    )
                })?;
            let region = match &app.spec.platform {
                crate::document::Platform::Aws(aws) => Some(aws.region.clone()),
                crate::document::Platform::Local(_) => None,
            };
            (uri, region)
        }
        (None, None) => anyhow::bail!("give -f FILE or --uri URI"),
    };
    // The one URI parser decides whether AWS is needed; StatusStore::open names a bad URI.
    let on_s3 = matches!(uri.parse::<BlobUri>(), Ok(BlobUri::S3 { .. }));
    let s3 = if on_s3 {
        Some(crate::aws::s3(
            &crate::aws::sdk_config(region.as_deref()).await,
        ))
    } else {
        None
    };
    let mut store = StatusStore::open(&uri, s3)?;
    let Some(status) = store.load().await? else {
        eprintln!("no status at {uri} yet: has the controller run a pass?");
        return Ok(ExitCode::FAILURE);
    };
    if args.json {
        super::println(&serde_json::to_string_pretty(&status)?)?;
    } else {
        super::print(&render(&status, args.events))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The human table: one row per workload, then its message and recent events.
pub fn render(status: &AppStatus, events: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "revision: {}",
        status.document_revision.as_deref().unwrap_or("(none)")
    );
    for c in status.conditions.iter().filter(|c| c.status) {
        let _ = writeln!(
            out,
            "{}: {} (since {})",
            c.kind, c.message, c.last_transition
        );
    }
    let rows: Vec<[String; 6]> = status
        .workloads
        .iter()
        .map(|(name, w)| row(name, w))
        .collect();
    let header = [
        "WORKLOAD",
        "PHASE",
        "STABLE",
        "CANARY",
        "STEP",
        "WEIGHT (want/seen)",
    ];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (i, cell) in r.iter().enumerate() {
            widths[i] = widths[i].max(cell.len());
        }
    }
    let line = |cells: &[String]| {
        cells
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let _ = writeln!(out, "{}", line(&header.map(String::from)));
    for ((_, w), r) in status.workloads.iter().zip(&rows) {
        let _ = writeln!(out, "{}", line(r));
        if !w.message.is_empty() {
            let _ = writeln!(out, "    {}", w.message);
        }
        out.push_str(&render_analysis_runs(w));
        for e in w.events.iter().rev().take(events) {
            let _ = writeln!(out, "    {}  {}: {}", e.at, e.reason, e.message);
        }
    }
    out
}

/// A workload's analysis runs, newest first: template, verdict and what it did, then
/// each metric with its last measurements (value and time). Indented under the
/// workload's row; empty when there are none.
pub fn render_analysis_runs(w: &WorkloadStatus) -> String {
    use crate::status::AnalysisRunKind;
    let mut out = String::new();
    for run in w.analysis_runs.iter().rev() {
        let what = match (run.kind, run.step_index) {
            (AnalysisRunKind::Step, Some(i)) => format!("step {} analysis", i + 1),
            (AnalysisRunKind::Step, None) => "step analysis".to_string(),
            (AnalysisRunKind::Background, _) => "background analysis".to_string(),
        };
        let stopped = match (run.phase, run.finished_at) {
            (crate::status::AnalysisPhase::Running, Some(_)) => " (stopped)",
            _ => "",
        };
        let effect = run
            .effect
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    {what} of {} started {}: {}{stopped}{effect}",
            run.hash, run.started_at, run.phase
        );
        for m in &run.metrics {
            let dry = if m.dry_run { " [dry run]" } else { "" };
            let _ = writeln!(
                out,
                "      {}{dry}: {:?}, {}",
                m.template, m.phase, m.message
            );
            for ms in m.measurements.iter().rev().take(3) {
                let value = ms.value.as_deref().unwrap_or("-");
                let why = if ms.message.is_empty() {
                    String::new()
                } else {
                    format!("  ({})", ms.message)
                };
                let _ = writeln!(
                    out,
                    "        {}  {:?}  {value}{why}",
                    ms.finished_at, ms.phase
                );
            }
        }
    }
    out
}

fn row(name: &str, w: &WorkloadStatus) -> [String; 6] {
    let revision = |r: Option<&crate::status::Revision>| match r {
        Some(r) => match r.slot {
            Some(slot) => format!("{} ({slot})", r.hash),
            None => r.hash.clone(),
        },
        None => "-".into(),
    };
    let canary = match &w.canary {
        Some(c) => format!("{} ({})", c.hash, c.slot),
        None => "-".into(),
    };
    let step = w
        .canary
        .as_ref()
        .map_or("-".into(), |c| c.step_index.to_string());
    let weight = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
    [
        name.to_string(),
        w.phase.to_string(),
        revision(w.stable.as_ref()),
        canary,
        step,
        format!("{}/{}", weight(w.desired_weight), weight(w.verified_weight)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Slot;
    use crate::status::{Phase, Revision, Timestamp};

    #[test]
    fn analysis_runs_show_template_measurements_verdict_and_effect() {
        let run: crate::status::AnalysisRunStatus = serde_json::from_value(serde_json::json!({
            "id": "abc/step-2/1", "kind": "step", "hash": "abc", "stepIndex": 2,
            "startedAt": 1_700_000_000_000u64, "phase": "failed",
            "message": "errors: 1 of 1 measurements failed", "effect": "aborted the rollout",
            "finishedAt": 1_700_000_060_000u64,
            "metrics": [{"template": "errors", "phase": "failed", "count": 1, "failed": 1,
                "message": "1 of 1 measurements failed, more than failureLimit 0; last value 0.2",
                "measurements": [{"phase": "failed", "value": "0.2",
                    "startedAt": 1_700_000_060_000u64, "finishedAt": 1_700_000_060_000u64}]}]
        }))
        .unwrap();
        let w = WorkloadStatus {
            analysis_runs: vec![run],
            ..Default::default()
        };
        let text = render_analysis_runs(&w);
        assert!(text.contains("step 3 analysis of abc started 2023-11-14T22:13:20.000Z: Failed: aborted the rollout"), "{text}");
        assert!(
            text.contains("errors: Failed, 1 of 1 measurements failed"),
            "{text}"
        );
        assert!(
            text.contains("2023-11-14T22:14:20.000Z  Failed  0.2"),
            "{text}"
        );
    }

    #[test]
    fn the_table_shows_each_workload_with_its_message_and_newest_events_first() {
        let mut api = WorkloadStatus {
            phase: Phase::Progressing,
            message: "step 1 of 2: 50% on green".into(),
            stable: Some(Revision {
                slot: Some(Slot::Blue),
                hash: "aaaa".into(),
            }),
            desired_weight: Some(50),
            verified_weight: Some(20),
            ..Default::default()
        };
        api.record(Timestamp::from_secs(1), "RolloutStarted", "old");
        api.record(Timestamp::from_secs(2), "StepCompleted", "new");
        let mut status = AppStatus::default();
        status.workloads.insert("api".into(), api);
        let text = render(&status, 1);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("WORKLOAD"), "{text}");
        assert!(
            lines[2].contains("Progressing") && lines[2].contains("aaaa (blue)"),
            "{text}"
        );
        assert!(lines[2].ends_with("50/20"), "{text}");
        assert!(lines[3].contains("50% on green"), "{text}");
        assert!(lines[4].contains("StepCompleted: new"), "{text}");
        assert!(
            !text.contains("RolloutStarted"),
            "only the newest event: {text}"
        );
    }
}
