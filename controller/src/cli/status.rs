//! `tugboat status`: the persisted status, read where the controller writes it (S3 or a
//! file), without reaching the controller.
//!
//! Per workload: the phase, step i of n, desired and verified weights, healthy targets
//! per slot, the operator overrides in force (a pin with who, why and until when; a
//! pause) and recent events. `--watch` follows the status as the controller rewrites
//! it: on a terminal it redraws in place (cursor home, each line cleared to its end, the
//! rest of the screen cleared after the last: no blank frame, so no flicker) and
//! restores the cursor on Ctrl-C; piped, it prints one line per workload change. A
//! closed pipe ends it quietly (exit 0).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::blob::BlobUri;
use crate::status::{AppStatus, Timestamp, WorkloadStatus};
use crate::status_store::StatusStore;

const EXAMPLES: &str = "\
Examples:
  # The status named by a document's spec.status.uri.
  tugboat status -f manifests/prod.yaml

  # A status location directly; JSON for scripts.
  tugboat status --uri s3://acme-tugboat/prediction-app/prod-status.json --json

  # Follow a rollout: redrawn in place on a terminal, one line per change when piped.
  tugboat status -f manifests/prod.yaml --watch

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

    /// Follow the status as it changes (Ctrl-C to stop).
    #[arg(long)]
    pub watch: bool,

    /// How often --watch reads the status.
    #[arg(long, default_value = "500ms", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (uri, region) = match (&args.uri, &args.file) {
        (Some(uri), _) => (uri.clone(), None),
        (None, Some(file)) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let mut app = crate::source::load_document(&text, &file.display().to_string())?;
            // A local document's relative paths are relative to its directory.
            if let Some(dir) = file.parent() {
                crate::platform::local::anchor_paths(&mut app, dir);
            }
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
        crate::aws::s3_for(&uri, region.as_deref()).await
    } else {
        None
    };
    let mut store = StatusStore::open(&uri, s3)?;
    if args.watch {
        return watch(&mut store, &uri, &args).await;
    }
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
    let rows: Vec<[String; 7]> = status
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
        "HEALTHY (b/g)",
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
        for o in overrides_in_force(w) {
            let _ = writeln!(out, "    override: {o}");
        }
        out.push_str(&render_analysis_runs(w));
        for e in w.events.iter().rev().take(events) {
            let _ = writeln!(out, "    {}  {}: {}", e.at, e.reason, e.message);
        }
    }
    out
}

/// The operator overrides in force, one line each.
pub fn overrides_in_force(w: &WorkloadStatus) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &w.pin {
        let mut line = format!("weight pinned at {}%", p.weight);
        if let Some(by) = &p.by {
            let _ = write!(line, " by {by}");
        }
        if let Some(since) = p.since {
            let _ = write!(line, " at {since}");
        }
        match p.until {
            Some(until) => {
                let _ = write!(line, ", until {until}");
            }
            None => line.push_str(", until cleared"),
        }
        if let Some(why) = &p.reason {
            let _ = write!(line, ": {why}");
        }
        out.push(line);
    }
    if w.operator_paused {
        out.push("paused by an operator, until resumed".into());
    }
    if let Some(u) = w.undo.as_ref().filter(|u| !u.ended) {
        out.push(format!(
            "undo: runs {} instead of the document's {}{}, until the document has a new \
             revision or `tugboat undo --cancel`",
            u.revision,
            u.from,
            if u.fast {
                " (fast: within the rollbackWindow)"
            } else {
                ""
            }
        ));
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

/// One line for a workload, for `--watch` when piped.
pub fn summary_line(name: &str, w: &WorkloadStatus) -> String {
    let [_, phase, stable, canary, step, healthy, weight] = row(name, w);
    let mut line = format!(
        "{name} {phase} stable={stable} canary={canary} step={step} healthy={healthy} weight={weight}"
    );
    for o in overrides_in_force(w) {
        let _ = write!(line, " [{o}]");
    }
    if !w.message.is_empty() {
        let _ = write!(line, " -- {}", w.message);
    }
    line
}

fn row(name: &str, w: &WorkloadStatus) -> [String; 7] {
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
    let step = match (&w.canary, w.step_count) {
        (Some(c), Some(n)) => format!("{}/{n}", (c.step_index + 1).min(n.max(1))),
        (Some(c), None) => (c.step_index + 1).to_string(),
        (None, _) => "-".into(),
    };
    let healthy = if w.healthy_targets.is_empty() {
        "-".to_string()
    } else {
        let of = |slot| {
            w.healthy_targets
                .get(&slot)
                .map_or("-".into(), |n: &u32| n.to_string())
        };
        format!(
            "{}/{}",
            of(crate::document::Slot::Blue),
            of(crate::document::Slot::Green)
        )
    };
    let weight = |v: Option<u32>| v.map_or("-".into(), |v| v.to_string());
    [
        name.to_string(),
        w.phase.to_string(),
        revision(w.stable.as_ref()),
        canary,
        step,
        healthy,
        format!("{}/{}", weight(w.desired_weight), weight(w.verified_weight)),
    ]
}

/// Terminal control: cursor home, clear to the end of the line, clear below, cursor
/// hidden and shown.
const HOME: &str = "\x1b[H";
const CLEAR_LINE: &str = "\x1b[K";
const CLEAR_BELOW: &str = "\x1b[J";
const HIDE_CURSOR: &str = "\x1b[?25l";
const SHOW_CURSOR: &str = "\x1b[?25h";

/// One frame for a terminal: drawn over the previous one line by line.
pub fn frame(text: &str) -> String {
    let mut out = String::from(HOME);
    for line in text.lines() {
        out.push_str(line);
        out.push_str(CLEAR_LINE);
        out.push('\n');
    }
    out.push_str(CLEAR_BELOW);
    out
}

/// The lines to print for a change from `before` to `now`, when piped: one per
/// workload whose line changed, stamped with the time of the read.
pub fn changed_lines(before: Option<&AppStatus>, now: &AppStatus, at: Timestamp) -> Vec<String> {
    let mut out = Vec::new();
    if before.is_none_or(|b| b.document_revision != now.document_revision) {
        out.push(format!(
            "{at} revision {}",
            now.document_revision.as_deref().unwrap_or("(none)")
        ));
    }
    for (name, w) in &now.workloads {
        let line = summary_line(name, w);
        let old = before
            .and_then(|b| b.workloads.get(name))
            .map(|w| summary_line(name, w));
        if old.as_deref() != Some(line.as_str()) {
            out.push(format!("{at} {line}"));
        }
    }
    out
}

async fn watch(store: &mut StatusStore, uri: &str, args: &Args) -> anyhow::Result<ExitCode> {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let result = follow(store, uri, args, terminal).await;
    if terminal {
        // Whatever ended the watch, the cursor comes back.
        let _ = super::print(SHOW_CURSOR);
        let _ = super::println("");
    }
    result
}

async fn follow(
    store: &mut StatusStore,
    uri: &str,
    args: &Args,
    terminal: bool,
) -> anyhow::Result<ExitCode> {
    let mut last: Option<AppStatus> = None;
    let mut first = true;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let read = store.load().await;
        let status = match read {
            Ok(s) => s,
            // A failed read in a watch is shown and retried, not the end of it.
            Err(e) => {
                eprintln!("reading {uri}: {e:#}");
                None
            }
        };
        if let Some(status) = status
            && (first || last.as_ref() != Some(&status))
        {
            if terminal {
                let mut text = render(&status, args.events);
                if args.json {
                    text = serde_json::to_string_pretty(&status)?;
                }
                if first {
                    super::print(&format!("{HIDE_CURSOR}\x1b[2J"))?;
                }
                super::print(&frame(&text))?;
            } else if args.json {
                super::println(&serde_json::to_string(&status)?)?;
            } else {
                for line in changed_lines(last.as_ref(), &status, Timestamp::now()) {
                    super::println(&line)?;
                }
            }
            first = false;
            last = Some(status);
        } else if first && last.is_none() && !terminal {
            // Nothing persisted yet: said once, then the watch waits for it.
            eprintln!("no status at {uri} yet: waiting for the controller's first pass");
            first = false;
        }
        tokio::select! {
            _ = &mut ctrl_c => return Ok(ExitCode::SUCCESS),
            () = tokio::time::sleep(args.interval) => {}
        }
    }
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

    fn pinned(weight: u32) -> WorkloadStatus {
        WorkloadStatus {
            phase: Phase::Paused,
            pin: Some(crate::status::PinStatus {
                weight,
                by: Some("alice".into()),
                reason: Some("INC-42".into()),
                since: Some(Timestamp::from_secs(10)),
                until: Some(Timestamp::from_secs(1_800)),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn overrides_in_force_say_who_why_and_until_when() {
        let lines = overrides_in_force(&pinned(5));
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line = &lines[0];
        assert!(
            line.starts_with("weight pinned at 5% by alice at 1970-01-01T00:00:10"),
            "{line}"
        );
        assert!(
            line.contains("until 1970-01-01T00:30:00") && line.ends_with(": INC-42"),
            "{line}"
        );
        let mut status = AppStatus::default();
        status.workloads.insert("api".into(), pinned(5));
        assert!(render(&status, 0).contains("    override: weight pinned at 5%"));
    }

    #[test]
    fn piped_watch_prints_one_line_per_changed_workload() {
        let mut before = AppStatus::default();
        before.workloads.insert("api".into(), pinned(5));
        before
            .workloads
            .insert("worker".into(), WorkloadStatus::default());
        let at = Timestamp::from_secs(60);
        let first = changed_lines(None, &before, at);
        assert_eq!(first.len(), 3, "revision and both workloads: {first:?}");
        assert!(changed_lines(Some(&before), &before, at).is_empty());
        let mut after = before.clone();
        after.workloads.insert("api".into(), pinned(7));
        let lines = changed_lines(Some(&before), &after, at);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("1970-01-01T00:01:00.000Z api Paused"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains("[weight pinned at 7%"), "{}", lines[0]);
    }

    #[test]
    fn a_terminal_frame_overdraws_the_last_without_clearing_the_screen() {
        let f = frame("one\ntwo");
        assert!(f.starts_with(HOME), "{f:?}");
        assert_eq!(
            f,
            format!("{HOME}one{CLEAR_LINE}\ntwo{CLEAR_LINE}\n{CLEAR_BELOW}")
        );
        assert!(
            !f.contains("\x1b[2J"),
            "a full clear between frames flickers"
        );
    }
}
