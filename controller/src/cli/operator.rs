//! The operator verbs: `promote [--full]`, `abort`, `retry`, `pause`, `resume`,
//! `set-weight N [--for D] [--reason TEXT] | --clear`. Each writes one override to the
//! application's inbox (SSM under `spec.overrides.ssmPrefix` on AWS, files under
//! `<stateDir>/overrides` locally) with who wrote it and why, after checking against
//! the persisted status that it can take effect, and prints what will happen.
//!
//! Guarantees:
//! - Nothing is written unless the verb can take effect: an unknown or rolling workload,
//!   no rollout in progress, a weight out of range, a rollout not at a step the verb
//!   acts on, is refused (exit 2) with the reason, and the inbox is left as it was.
//! - An action written by someone else and not yet handled by the controller is never
//!   overwritten: that is a conflict (exit 3) naming it; run the verb again once the
//!   controller has taken it.
//! - The decision is one pure function ([`decide`]) of the document, the persisted
//!   status and the inbox, so what the command says is what the planner will do.
//!
//! Exit codes: 0 written; 1 error (the document, status or inbox could not be read or
//! written); 2 refused; 3 conflict.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

#[cfg(feature = "aws")]
use crate::budget::Budgets;
use crate::document::{Application, Platform};
use crate::inbox::file::FileInbox;
#[cfg(feature = "aws")]
use crate::inbox::ssm::{SsmInbox, parameter_name};
use crate::inbox::{Inbox, Key};
use crate::observed::{OperatorAction, OperatorActionKind, OverrideRecord, WeightPin};
use crate::operator::{format_action, format_weight_pin};
use crate::plan::steps::{Step, effective_steps};
use crate::source::{DocumentSource, Fetched};
use crate::status::{AppStatus, Timestamp, WorkloadStatus};
use crate::status_store::StatusStore;

/// Exit code of a refused command.
pub const REFUSED: u8 = 2;
/// Exit code of a conflict.
pub const CONFLICT: u8 = 3;

const EXAMPLES: &str = "\
Examples:
  # Skip the pause the canary waits at; or every step left.
  tugboat promote api -f manifests/prod.yaml
  tugboat promote api --full -f manifests/prod.yaml

  # Hold the canary at 5% for half an hour while an incident is looked at.
  tugboat set-weight api 5 --for 30m --reason INC-42 -f manifests/prod.yaml
  tugboat set-weight api --clear -f manifests/prod.yaml

  # The document from where the controller reads it.
  tugboat abort api --reason 'errors on /api' --source s3://acme/prediction-app/prod.yaml

Exit codes: 0 written (the controller acts on its next poll, within about 2 s);
1 error; 2 refused (no rollout in progress, unknown workload, weight out of range, or
the rollout is not where the verb acts: it says why and changes nothing); 3 conflict
(another operator's action is not handled yet).";

/// Where the application's document is.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The document, as a local file.
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "source",
        required_unless_present = "source"
    )]
    pub file: Option<PathBuf>,

    /// The document where the controller reads it: s3://BUCKET/KEY, ssm:/NAME, file://PATH.
    #[arg(long, value_name = "URI")]
    pub source: Option<String>,

    /// Region of the source, the status and the overrides. Default: the region chain,
    /// else the document's spec.platform.aws.region.
    #[arg(long)]
    pub region: Option<String>,
}

/// Who is writing: `TUGBOAT_OPERATOR`, else `USER`.
fn operator_name() -> Option<String> {
    ["TUGBOAT_OPERATOR", "USER", "USERNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
}

/// A one-shot action verb.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct ActionArgs {
    /// The workload (its `name` in the document).
    pub workload: String,
    /// Why, kept with the override and shown by `tugboat status`.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// `promote`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct PromoteArgs {
    /// The workload (its `name` in the document).
    pub workload: String,
    /// Skip every remaining step, not just the current pause or analysis.
    #[arg(long)]
    pub full: bool,
    /// Why, kept with the override and shown by `tugboat status`.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// `set-weight`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct SetWeightArgs {
    /// The workload (its `name` in the document).
    pub workload: String,
    /// Canary weight, 0-100, held while the pin is in force.
    #[arg(required_unless_present = "clear", conflicts_with = "clear")]
    pub weight: Option<u32>,
    /// How long the pin holds (e.g. `30m`); without it, until cleared.
    #[arg(long = "for", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub duration: Option<Duration>,
    /// Why, kept with the pin and shown by `tugboat status`.
    #[arg(long)]
    pub reason: Option<String>,
    /// Remove the pin in force; the rollout goes on from the step it was at.
    #[arg(long)]
    pub clear: bool,
    #[command(flatten)]
    pub target: Target,
}

/// What an operator asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Verb {
    Action(OperatorActionKind),
    Pin(WeightPin),
    ClearPin,
}

/// What the command does.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write `value` under `key`; `effect` says what will happen.
    Write {
        key: Key,
        value: String,
        effect: String,
    },
    /// Remove the value under `key`.
    Clear {
        key: Key,
        effect: String,
    },
    Refused(String),
    Conflict(String),
}

/// Decides what `verb` does to `workload`, given the persisted status and the inbox.
pub fn decide(
    app: &Application,
    workload: &str,
    verb: &Verb,
    status: Option<&AppStatus>,
    pending: Option<&OperatorAction>,
    pin: Option<&WeightPin>,
    now: Timestamp,
) -> Decision {
    let Some(w) = app.spec.workloads.iter().find(|w| w.name == workload) else {
        let names: Vec<&str> = app.spec.workloads.iter().map(|w| w.name.as_str()).collect();
        return Decision::Refused(format!(
            "there is no workload {workload:?} in the document (its workloads: {})",
            names.join(", ")
        ));
    };
    if !w.is_progressive() {
        return Decision::Refused(format!(
            "{workload} is a rolling workload: ECS rolls it out, and there is no rollout \
             for tugboat to steer"
        ));
    }
    let empty = WorkloadStatus::default();
    let s = status
        .and_then(|s| s.workloads.get(workload))
        .unwrap_or(&empty);
    let handled = s.handled_action_version;
    if matches!(verb, Verb::Action(_))
        && let Some(p) = pending.filter(|p| p.version > handled)
    {
        return Decision::Conflict(format!(
            "`{}` (version {}) is in {workload}'s inbox and the controller has not handled \
             it yet; wait for it (tugboat status) and run this again",
            format_action(p.kind),
            p.version
        ));
    }
    let steps = effective_steps(&w.strategy);
    let in_progress = s.canary.as_ref().filter(|c| c.aborted.is_none());
    let where_ = |index: usize| -> String {
        format!(
            "step {} of {}",
            (index + 1).min(steps.len().max(1)),
            steps.len()
        )
    };
    let no_rollout = || {
        Decision::Refused(format!(
            "{workload} has no rollout in progress (phase {}{})",
            s.phase,
            if s.message.is_empty() {
                String::new()
            } else {
                format!(": {}", s.message)
            }
        ))
    };
    let write = |kind: OperatorActionKind, effect: String| Decision::Write {
        key: Key::Action,
        value: format_action(kind).to_string(),
        effect,
    };
    let pinned = pin.filter(|p| p.in_force(now));
    let pin_note = match pinned {
        Some(p) => format!(
            "; note: the weight pin at {}% stays in force and holds the rollout until it is \
             cleared (tugboat set-weight {workload} --clear)",
            p.weight
        ),
        None => String::new(),
    };
    match verb {
        Verb::Action(kind) => match kind {
            OperatorActionKind::Promote => {
                let Some(c) = in_progress else {
                    return no_rollout();
                };
                match steps.get(c.step_index) {
                    Some(Step::Pause(_)) | Some(Step::Analysis(_)) => write(
                        *kind,
                        format!(
                            "{workload} goes past {} (the {}) to the next step{pin_note}",
                            where_(c.step_index),
                            match steps[c.step_index] {
                                Step::Pause(_) => "pause",
                                _ => "analysis",
                            }
                        ),
                    ),
                    _ => Decision::Refused(format!(
                        "{workload} is at {}, which is not a pause or an analysis: there is \
                         nothing to promote past (use --full to skip every step left)",
                        where_(c.step_index)
                    )),
                }
            }
            OperatorActionKind::PromoteFull => {
                let Some(c) = in_progress else {
                    return no_rollout();
                };
                write(
                    *kind,
                    format!(
                        "{workload} skips every step from {} on: all traffic moves to {} on \
                         the {} slot once it is healthy, verified before the old slot scales \
                         down{pin_note}",
                        where_(c.step_index),
                        c.hash,
                        c.slot
                    ),
                )
            }
            OperatorActionKind::Abort => {
                let Some(c) = in_progress else {
                    return no_rollout();
                };
                write(
                    *kind,
                    format!(
                        "{workload}'s rollout of {} stops: all traffic back to the stable \
                         slot (verified), then the canary scales down after the \
                         abortScaleDownDelay",
                        c.hash
                    ),
                )
            }
            OperatorActionKind::Retry => {
                // The planner takes a retry only once the abort has unwound (weight back
                // on stable, the canary scaled down); one written earlier would be spent
                // on nothing.
                if let Some(c) = s.canary.as_ref().filter(|c| c.aborted.is_some()) {
                    return Decision::Refused(format!(
                        "{workload}'s abort of {} is still unwinding (weight back to stable,                          then the canary scales down); retry once its phase is Aborted with                          no canary",
                        c.hash
                    ));
                }
                match (&s.canary, &s.aborted_hash) {
                    (None, Some(hash)) => write(
                        *kind,
                        format!(
                            "{workload}'s aborted revision {hash} is rolled out again from step 1"
                        ),
                    ),
                    _ => Decision::Refused(format!(
                        "{workload} has no aborted rollout to retry (phase {})",
                        s.phase
                    )),
                }
            }
            OperatorActionKind::Pause => {
                let Some(c) = in_progress else {
                    return no_rollout();
                };
                if s.operator_paused {
                    return Decision::Refused(format!(
                        "{workload} is already paused by an operator at {}",
                        where_(c.step_index)
                    ));
                }
                write(
                    *kind,
                    format!(
                        "{workload} holds at {} until resumed (tugboat resume {workload})",
                        where_(c.step_index)
                    ),
                )
            }
            OperatorActionKind::Resume => {
                let Some(c) = in_progress else {
                    return no_rollout();
                };
                if !s.operator_paused {
                    return Decision::Refused(format!(
                        "{workload} is not paused by an operator{}",
                        match pinned {
                            Some(_) => format!(
                                "; it is held by a weight pin, which resume does not remove \
                                 (tugboat set-weight {workload} --clear)"
                            ),
                            None => String::new(),
                        }
                    ));
                }
                write(
                    *kind,
                    format!("{workload} goes on from {}{pin_note}", where_(c.step_index)),
                )
            }
        },
        Verb::Pin(p) => {
            if p.weight > 100 {
                return Decision::Refused(format!(
                    "weight {} is out of range: give 0 to 100",
                    p.weight
                ));
            }
            let Some(c) = in_progress else {
                return no_rollout();
            };
            let until = match p.expires {
                Some(t) => format!("until {t}"),
                None => "until cleared (tugboat set-weight --clear)".to_string(),
            };
            let replaces = match pinned {
                Some(old) => format!(", replacing the pin at {}%", old.weight),
                None => String::new(),
            };
            Decision::Write {
                key: Key::Weight,
                value: format_weight_pin(p),
                effect: format!(
                    "{workload}'s canary ({} on {}) is held at {}% {until}{replaces}; no step or \
                     timer advances meanwhile, and the weight moves only onto healthy targets. \
                     Then the rollout goes on from {}",
                    c.hash,
                    c.slot,
                    p.weight,
                    where_(c.step_index)
                ),
            }
        }
        Verb::ClearPin => match (pin, in_progress) {
            (None, _) => Decision::Refused(format!("{workload} has no weight pin to clear")),
            (Some(_), Some(c)) => Decision::Clear {
                key: Key::Weight,
                effect: format!(
                    "{workload}'s weight pin is removed: the rollout goes on from {}",
                    where_(c.step_index)
                ),
            },
            (Some(_), None) => Decision::Clear {
                key: Key::Weight,
                effect: format!("{workload}'s weight pin is removed (no rollout is in progress)"),
            },
        },
    }
}

/// The document named by `target`.
pub async fn load_app(target: &Target) -> anyhow::Result<Application> {
    if let Some(file) = &target.file {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        return Ok(crate::source::load_document(
            &text,
            &file.display().to_string(),
        )?);
    }
    let uri = target
        .source
        .as_deref()
        .context("give -f FILE or --source URI")?;
    let mut source = DocumentSource::open(uri, target.region.as_deref())
        .await
        .with_context(|| format!("opening the document source {uri}"))?;
    match source
        .fetch()
        .await
        .with_context(|| format!("reading {uri}"))?
    {
        Fetched::Changed { text, .. } => Ok(crate::source::load_document(&text, uri)?),
        Fetched::Unchanged => anyhow::bail!("{uri} read as unchanged on a first read"),
    }
}

fn region<'a>(target: &'a Target, app: &'a Application) -> Option<&'a str> {
    target.region.as_deref().or(match &app.spec.platform {
        Platform::Aws(aws) => Some(aws.region.as_str()),
        Platform::Local(_) => None,
    })
}

/// The persisted status of `app`, if it names one and the controller wrote it.
pub async fn load_status(target: &Target, app: &Application) -> anyhow::Result<Option<AppStatus>> {
    let Some(spec) = &app.spec.status else {
        return Ok(None);
    };
    let s3 = crate::aws::s3_for(&spec.uri, region(target, app)).await;
    let mut store = StatusStore::open(&spec.uri, s3)?;
    store
        .load()
        .await
        .with_context(|| format!("reading the status at {}", spec.uri))
}

/// The inbox of `app`, and how a value's location is named for humans.
pub async fn open_inbox(
    target: &Target,
    app: &Application,
) -> anyhow::Result<(Arc<dyn Inbox>, Location)> {
    match &app.spec.platform {
        #[cfg(feature = "aws")]
        Platform::Aws(_) => {
            let config = crate::aws::sdk_config(region(target, app)).await;
            let inbox = SsmInbox::new(crate::aws::ssm(&config), Budgets::process_wide());
            Ok((Arc::new(inbox), Location::Ssm(app.overrides_prefix())))
        }
        #[cfg(not(feature = "aws"))]
        Platform::Aws(_) => {
            let _ = target;
            anyhow::bail!(
                "{}'s overrides are SSM parameters (spec.platform.aws), and {}",
                app.metadata.name,
                crate::aws::NOT_BUILT
            )
        }
        Platform::Local(local) => {
            let dir = PathBuf::from(local.state_dir.as_deref().unwrap_or(".tugboat"));
            let inbox = FileInbox::in_state_dir(&dir);
            let root = inbox.root().to_path_buf();
            Ok((Arc::new(inbox), Location::Files(root)))
        }
    }
}

/// Where overrides are kept, for messages.
#[derive(Debug, Clone)]
pub enum Location {
    #[cfg(feature = "aws")]
    Ssm(String),
    Files(PathBuf),
}

impl Location {
    pub fn name(&self, workload: &str, key: Key) -> String {
        match self {
            #[cfg(feature = "aws")]
            Location::Ssm(prefix) => {
                format!("SSM parameter {}", parameter_name(prefix, workload, key))
            }
            Location::Files(root) => {
                format!("file {}", root.join(workload).join(key.as_str()).display())
            }
        }
    }
}

pub async fn promote(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    let kind = if args.full {
        OperatorActionKind::PromoteFull
    } else {
        OperatorActionKind::Promote
    };
    execute(
        &args.target,
        &args.workload,
        Verb::Action(kind),
        args.reason,
    )
    .await
}

pub async fn action(kind: OperatorActionKind, args: ActionArgs) -> anyhow::Result<ExitCode> {
    execute(
        &args.target,
        &args.workload,
        Verb::Action(kind),
        args.reason,
    )
    .await
}

pub async fn set_weight(args: SetWeightArgs) -> anyhow::Result<ExitCode> {
    let verb = match args.weight {
        _ if args.clear => Verb::ClearPin,
        Some(weight) => Verb::Pin(WeightPin {
            weight,
            reason: args.reason.clone(),
            expires: args.duration.map(|d| Timestamp::now().plus(d)),
        }),
        None => anyhow::bail!("give a weight (0-100) or --clear"),
    };
    execute(&args.target, &args.workload, verb, args.reason).await
}

async fn execute(
    target: &Target,
    workload: &str,
    verb: Verb,
    reason: Option<String>,
) -> anyhow::Result<ExitCode> {
    execute_with(target, workload, reason, |app, status, mine| {
        decide(
            app,
            workload,
            &verb,
            status,
            mine.and_then(|o| o.action.as_ref()),
            mine.and_then(|o| o.weight_pin.as_ref()),
            Timestamp::now(),
        )
    })
    .await
}

async fn execute_with(
    target: &Target,
    workload: &str,
    reason: Option<String>,
    decide: impl FnOnce(
        &Application,
        Option<&AppStatus>,
        Option<&crate::observed::WorkloadOverrides>,
    ) -> Decision,
) -> anyhow::Result<ExitCode> {
    let app = load_app(target).await?;
    let status = load_status(target, &app).await?;
    let (inbox, location) = open_inbox(target, &app).await?;
    let read = inbox
        .read(&app)
        .await
        .context("reading the overrides in force")?;
    let decision = decide(&app, status.as_ref(), read.by_workload.get(workload));
    let record = OverrideRecord {
        by: operator_name(),
        reason,
        at: None,
    };
    match decision {
        Decision::Refused(why) => {
            eprintln!("refused: {why}; nothing was changed");
            Ok(ExitCode::from(REFUSED))
        }
        Decision::Conflict(why) => {
            eprintln!("conflict: {why}; nothing was changed");
            Ok(ExitCode::from(CONFLICT))
        }
        Decision::Write { key, value, effect } => {
            inbox
                .write_recorded(&app, workload, key, &value, &record)
                .await
                .with_context(|| format!("writing {}", location.name(workload, key)))?;
            super::println(&format!(
                "{effect}.\nwrote {value:?} to {}; the controller acts on it within about 2 s \
                 (tugboat status to follow it)",
                location.name(workload, key)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Decision::Clear { key, effect } => {
            inbox
                .clear(&app, workload, key)
                .await
                .with_context(|| format!("removing {}", location.name(workload, key)))?;
            super::println(&format!(
                "{effect}.\nremoved {}",
                location.name(workload, key)
            ))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `undo`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = UNDO_EXAMPLES, after_help = "See --help for examples.")]
pub struct UndoArgs {
    /// The workload (its `name` in the document).
    pub workload: String,
    /// An older stable revision (a content hash from `tugboat status --json`'s
    /// `stableHistory`) instead of the one stable before the current.
    #[arg(long, value_name = "REV", conflicts_with = "cancel")]
    pub to_revision: Option<String>,
    /// End the undo in force: the document's revision is rolled out again.
    #[arg(long)]
    pub cancel: bool,
    /// Why, kept with the override and shown by `tugboat status`.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

const UNDO_EXAMPLES: &str = "\
Examples:
  # Back to the revision that was stable before the current one.
  tugboat undo api -f manifests/prod.yaml --reason INC-42

  # An older one, then back to the document.
  tugboat undo api --to-revision 0a101d468b067408 -f manifests/prod.yaml
  tugboat undo api --cancel -f manifests/prod.yaml

Within the strategy's rollbackWindow (default 3 revisions) steps and analysis are
skipped; the weight is still verified before the old slot scales down. During a
canary, undo is an abort. The undo holds until the document has a new revision or
--cancel. Exit codes as for the other verbs: 0, 1, 2 refused, 3 conflict.";

pub async fn undo(args: UndoArgs) -> anyhow::Result<ExitCode> {
    let workload = args.workload.clone();
    execute_with(
        &args.target,
        &workload,
        args.reason.clone(),
        |app, status, mine| {
            decide_undo(
                app,
                &workload,
                args.to_revision.as_deref(),
                args.cancel,
                status,
                mine,
            )
        },
    )
    .await
}

/// What `undo` does, from the document, the persisted status and the inbox.
pub fn decide_undo(
    app: &Application,
    workload: &str,
    to_revision: Option<&str>,
    cancel: bool,
    status: Option<&AppStatus>,
    mine: Option<&crate::observed::WorkloadOverrides>,
) -> Decision {
    let Some(w) = app.spec.workloads.iter().find(|w| w.name == workload) else {
        return decide(
            app,
            workload,
            &Verb::ClearPin,
            status,
            None,
            None,
            Timestamp::now(),
        );
    };
    if !w.is_progressive() {
        return Decision::Refused(format!(
            "{workload} is a rolling workload: tugboat keeps no stable revisions for it"
        ));
    }
    let empty = WorkloadStatus::default();
    let s = status
        .and_then(|s| s.workloads.get(workload))
        .unwrap_or(&empty);
    let in_force = mine.and_then(|o| o.undo.as_ref());
    if cancel {
        return match in_force {
            Some(u) => Decision::Clear {
                key: Key::Undo,
                effect: format!(
                    "{workload}'s undo to {} ends: the document's revision {} is rolled out again",
                    u.revision, u.from
                ),
            },
            None => Decision::Refused(format!("{workload} has no undo in force to cancel")),
        };
    }
    if s.canary.as_ref().is_some_and(|c| c.aborted.is_none()) {
        // During a canary the revision before it is the stable one: undo is an abort.
        let pending = mine.and_then(|o| o.action.as_ref());
        return match decide(
            app,
            workload,
            &Verb::Action(OperatorActionKind::Abort),
            status,
            pending,
            None,
            Timestamp::now(),
        ) {
            Decision::Write { key, value, effect } => Decision::Write {
                key,
                value,
                effect: format!("a canary is in progress, so undo is an abort: {effect}"),
            },
            other => other,
        };
    }
    let Some(stable) = &s.stable else {
        return Decision::Refused(format!("{workload} has no stable revision yet"));
    };
    let target = match to_revision {
        Some(rev) => rev.to_string(),
        None => match s.stable_history.first() {
            Some(rev) => rev.clone(),
            None => {
                return Decision::Refused(format!(
                    "{workload} has no earlier stable revision recorded in its status"
                ));
            }
        },
    };
    if target == stable.hash {
        return Decision::Refused(format!(
            "{workload} already runs {target} as its stable revision"
        ));
    }
    let Some(position) = s.stable_history.iter().position(|h| *h == target) else {
        return Decision::Refused(format!(
            "{target} was not a stable revision of {workload} (recorded, newest first: {})",
            if s.stable_history.is_empty() {
                "none".to_string()
            } else {
                s.stable_history.join(", ")
            }
        ));
    };
    // The document's revision: the one an undo in force overrides, an aborted one it
    // still asks for, or the stable one.
    let from = s
        .undo
        .as_ref()
        .filter(|u| !u.ended)
        .map(|u| u.from.clone())
        .or_else(|| s.aborted_hash.clone())
        .unwrap_or_else(|| stable.hash.clone());
    let window = w
        .strategy
        .rollback_window()
        .map_or(0, |w| w.revisions as usize);
    let how = if position < window {
        format!(
            "within the rollbackWindow ({window} revisions): steps and analysis are skipped, the \
             weight is verified before the {} slot scales down",
            stable.slot.map_or("old".to_string(), |s| s.to_string())
        )
    } else {
        format!("outside the rollbackWindow ({window} revisions): a normal rollout with every step")
    };
    Decision::Write {
        key: Key::Undo,
        value: crate::operator::format_undo(&crate::observed::UndoOverride {
            revision: target.clone(),
            from: from.clone(),
        }),
        effect: format!(
            "{workload} goes back to {target} instead of the document's {from}, {how}; it holds \
             until the document has a new revision or `tugboat undo {workload} --cancel`"
        ),
    }
}
