//! The planner's side of analysis: runs created in the status at analysis steps and for
//! the canary's background analysis, this pass's measurements recorded into them, their
//! verdicts turned into step outcomes, and runs the rollout no longer needs stopped.
//!
//! Guarantees:
//! - A step run belongs to one attempt of one step (`stepStartedAt`): a retried, resumed
//!   or re-placed rollout measures again; only a Succeeded run of this very attempt moves
//!   the rollout past the step, so an analysis is never skipped.
//! - Failed (a metric failed or errored past its limits) aborts: the abort path moves the
//!   weight back to stable, verifies it, then scales the canary down. Inconclusive
//!   pauses with a message saying how to go on. Dry-run metrics never decide.
//! - A background run starts once the rollout reaches `startingStep` and judges the
//!   whole rest of the rollout: its failure aborts at any step, also while paused.
//! - Every verdict is recorded once, as an event and as the run's `effect`.
//! - Runs that no longer belong to the rollout under way are stopped (never measured
//!   again) and at most [`MAX_ANALYSIS_RUNS`] are kept.

use crate::analysis::{
    self, RolloutFacts, absorb, background_run_id, is_live, new_run, resolve_args, step_run_id,
};
use crate::document::{AnalysisStep, AnalysisTemplate, Strategy};
use crate::observed::ModelResolution;
use crate::status::{
    AnalysisPhase, AnalysisRunKind, CanaryStatus, MAX_ANALYSIS_RUNS, Phase, reason,
};

use super::steps::StepOutcome;
use super::{Action, DesiredRevision, WorkloadPlanner, service_name};

/// The effect recorded when an operator continues past an inconclusive run.
const CONTINUED: &str = "continued by an operator";

impl WorkloadPlanner<'_> {
    /// Records this pass's measurements into the workload's live runs and assesses them.
    pub(super) fn absorb_measurements(&mut self) {
        let taken = self
            .observed
            .measurements
            .get(&self.workload.name)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for run in &mut self.status.analysis_runs {
            absorb(self.app, run, taken, self.now);
        }
    }

    /// What `valueFrom` can name, for the rollout of `canary`.
    fn rollout_facts(&self, canary: &CanaryStatus) -> RolloutFacts {
        let stable = self.status.stable.clone();
        let stable_slot = stable
            .as_ref()
            .and_then(|s| s.slot)
            .unwrap_or(canary.slot.other());
        let tg = |slot: crate::document::Slot| {
            self.workload
                .route
                .as_ref()
                .map(|r| match slot {
                    crate::document::Slot::Blue => r.target_groups.blue.clone(),
                    crate::document::Slot::Green => r.target_groups.green.clone(),
                })
                .unwrap_or_default()
        };
        let model_version = self
            .workload
            .model
            .as_ref()
            .and_then(|m| match self.observed.models.get(m) {
                Some(ModelResolution::Resolved(r)) => Some(r.version.clone()),
                _ => None,
            })
            .unwrap_or_default();
        RolloutFacts {
            workload: self.workload.name.clone(),
            canary_target_group: tg(canary.slot),
            stable_target_group: tg(stable_slot),
            canary_slot: canary.slot.to_string(),
            stable_slot: stable_slot.to_string(),
            canary_service: service_name(&self.workload.name, Some(canary.slot)),
            stable_service: service_name(&self.workload.name, Some(stable_slot)),
            canary_hash: canary.hash.clone(),
            stable_hash: stable.map(|s| s.hash).unwrap_or_default(),
            model_version,
        }
    }

    /// The run `id`, created (Running, no measurement) when the status has none. A run
    /// whose templates are missing or whose arguments cannot be filled in is created
    /// Failed, saying why: nothing could judge the canary, so it is not promoted.
    /// Returns its index and whether it was created now.
    fn ensure_run(
        &mut self,
        id: String,
        kind: AnalysisRunKind,
        canary: &CanaryStatus,
        analysis: &AnalysisStep,
    ) -> (usize, bool) {
        if let Some(i) = self.status.analysis_runs.iter().position(|r| r.id == id) {
            return (i, false);
        }
        let step_index = (kind == AnalysisRunKind::Step).then_some(canary.step_index);
        let mut missing = Vec::new();
        let templates: Vec<&AnalysisTemplate> = analysis
            .templates
            .iter()
            .filter_map(|r| {
                let t = analysis::template(self.app, &r.template_name);
                if t.is_none() {
                    missing.push(r.template_name.clone());
                }
                t
            })
            .collect();
        let facts = self.rollout_facts(canary);
        let args = resolve_args(&templates, &analysis.args, &facts);
        let mut run = new_run(
            id,
            kind,
            &canary.hash,
            step_index,
            self.now,
            &templates,
            args.clone().unwrap_or_default(),
        );
        let problem = match args {
            _ if !missing.is_empty() => Some(format!(
                "no analysis template named {} in the document",
                missing.join(", ")
            )),
            Err(e) => Some(e.to_string()),
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            run.phase = AnalysisPhase::Failed;
            run.message = problem;
            run.finished_at = Some(self.now);
        }
        self.status.analysis_runs.push(run);
        (self.status.analysis_runs.len() - 1, true)
    }

    /// Records what a verdict did, once (an event and the run's `effect`).
    fn verdict_effect(&mut self, i: usize, effect: String) {
        let run = &mut self.status.analysis_runs[i];
        if run.effect.is_some() {
            return;
        }
        run.effect = Some(effect.clone());
        let why = match run.phase {
            AnalysisPhase::Failed => reason::ANALYSIS_FAILED,
            AnalysisPhase::Inconclusive => reason::ANALYSIS_INCONCLUSIVE,
            _ => reason::ANALYSIS_SUCCEEDED,
        };
        let what = match run.kind {
            AnalysisRunKind::Step => format!("step {} analysis", run.step_index.unwrap_or(0) + 1),
            AnalysisRunKind::Background => "background analysis".to_string(),
        };
        let summary = analysis::summary(run);
        let message = if summary.is_empty() {
            format!("{what} {}: {effect}", run.phase.to_string().to_lowercase())
        } else {
            format!(
                "{what} {} ({summary}): {effect}",
                run.phase.to_string().to_lowercase()
            )
        };
        self.status.record(self.now, why, message);
    }

    /// An analysis step: its run is created once per step attempt, then measured by the
    /// runner; its verdict decides the step's outcome.
    pub(super) fn analysis_step(
        &mut self,
        canary: &CanaryStatus,
        step: &AnalysisStep,
        desired: &DesiredRevision,
    ) -> StepOutcome {
        let index = canary.step_index;
        // A run is this step's when it was started for this step's clock: a retried or
        // resumed rollout, or a step whose weight was lost and came back, starts anew.
        let attempt = self
            .status
            .canary
            .as_ref()
            .map_or(canary.step_started_at, |c| c.step_started_at);
        let id = step_run_id(&canary.hash, index, attempt);
        let (i, created) = self.ensure_run(id, AnalysisRunKind::Step, canary, step);
        if created {
            self.push(
                Action::StartAnalysis {
                    workload: self.workload.name.clone(),
                    hash: desired.hash.clone(),
                    step_index: index,
                    templates: step.templates.clone(),
                    attempt,
                },
                format!("step {}: analysis", index + 1),
            );
        }
        let run = self.status.analysis_runs[i].clone();
        match run.phase {
            AnalysisPhase::Running => {
                if let Some(at) = analysis::run_next_due(self.app, &run) {
                    self.requeue_at(at);
                }
                let verb = if created { "started" } else { "running" };
                self.set_phase(
                    Phase::Progressing,
                    format!(
                        "step {}: analysis {verb} ({})",
                        index + 1,
                        analysis::summary(&run)
                    ),
                );
                StepOutcome::Wait
            }
            AnalysisPhase::Succeeded => {
                self.verdict_effect(i, format!("continued to step {}", index + 2));
                StepOutcome::Next
            }
            AnalysisPhase::Inconclusive => {
                if run.effect.as_deref() != Some(CONTINUED) {
                    self.verdict_effect(i, "paused the rollout".to_string());
                }
                self.set_phase(
                    Phase::Paused,
                    format!(
                        "step {}: analysis inconclusive ({}); to continue, {}; to stop, {}",
                        index + 1,
                        run.message,
                        self.hint("promote"),
                        self.hint("abort")
                    ),
                );
                StepOutcome::Wait
            }
            AnalysisPhase::Failed => {
                self.verdict_effect(i, "aborted the rollout".to_string());
                StepOutcome::Abort {
                    reason: reason::ANALYSIS_FAILED,
                    message: format!("analysis failed: {}", run.message),
                }
            }
        }
    }

    /// The canary's background analysis, from `startingStep` on: `Some` when its verdict
    /// stops the walk (Failed: abort; Inconclusive: pause), `None` to walk on.
    pub(super) fn background_analysis(&mut self, canary: &CanaryStatus) -> Option<StepOutcome> {
        let Strategy::Canary(c) = &self.workload.strategy else {
            return None;
        };
        let background = c.analysis.as_ref()?;
        let starting = background.starting_step.unwrap_or(0) as usize;
        if canary.step_index < starting {
            return None;
        }
        let step = AnalysisStep {
            templates: background.templates.clone(),
            args: background.args.clone(),
        };
        // The latest background run of this rollout; a new one after an operator
        // continued past an inconclusive one.
        let latest = self.latest_background(canary);
        let i = match latest {
            Some(i) if self.status.analysis_runs[i].effect.as_deref() != Some(CONTINUED) => i,
            _ => {
                let id = background_run_id(&canary.hash, self.now);
                self.ensure_run(id, AnalysisRunKind::Background, canary, &step)
                    .0
            }
        };
        let run = self.status.analysis_runs[i].clone();
        match run.phase {
            AnalysisPhase::Running => {
                if let Some(at) = analysis::run_next_due(self.app, &run) {
                    self.requeue_at(at);
                }
                None
            }
            AnalysisPhase::Succeeded => None,
            AnalysisPhase::Inconclusive => {
                self.verdict_effect(i, "paused the rollout".to_string());
                self.set_phase(
                    Phase::Paused,
                    format!(
                        "step {}: background analysis inconclusive ({}); to continue, {}; to \
                         stop, {}",
                        canary.step_index + 1,
                        run.message,
                        self.hint("promote"),
                        self.hint("abort")
                    ),
                );
                Some(StepOutcome::Wait)
            }
            AnalysisPhase::Failed => {
                self.verdict_effect(i, "aborted the rollout".to_string());
                Some(StepOutcome::Abort {
                    reason: reason::ANALYSIS_FAILED,
                    message: format!("background analysis failed: {}", run.message),
                })
            }
        }
    }

    fn latest_background(&self, canary: &CanaryStatus) -> Option<usize> {
        self.status
            .analysis_runs
            .iter()
            .enumerate()
            .filter(|(_, r)| {
                r.kind == AnalysisRunKind::Background
                    && r.hash == canary.hash
                    && r.started_at >= canary.started_at
            })
            .max_by_key(|(_, r)| r.started_at)
            .map(|(i, _)| i)
    }

    /// `promote` while the background analysis is inconclusive continues past it (a
    /// fresh background run starts) instead of skipping the current step. Returns
    /// whether it did.
    pub(super) fn continue_past_inconclusive_background(&mut self) -> bool {
        let Some(canary) = self.status.canary.clone() else {
            return false;
        };
        let Some(i) = self.latest_background(&canary) else {
            return false;
        };
        let run = &mut self.status.analysis_runs[i];
        if run.phase != AnalysisPhase::Inconclusive || run.effect.as_deref() == Some(CONTINUED) {
            return false;
        }
        run.effect = Some(CONTINUED.to_string());
        self.status.record(
            self.now,
            reason::OPERATOR_PROMOTE,
            "promoted past the inconclusive background analysis: it starts again",
        );
        true
    }

    /// `promote` past an inconclusive step analysis: its run records that.
    pub(super) fn note_continued_step_run(&mut self, canary: &CanaryStatus) {
        let id = step_run_id(&canary.hash, canary.step_index, canary.step_started_at);
        if let Some(run) = self.status.analysis_runs.iter_mut().find(|r| r.id == id) {
            run.effect = Some(match run.effect.take() {
                Some(e) => format!("{e}; {CONTINUED}"),
                None => CONTINUED.to_string(),
            });
        }
    }

    /// End of the pass: runs that no longer belong to the rollout under way stop (a
    /// background run of a promoted rollout ends Succeeded, unless something already
    /// failed it); live runs set the timer for their next measurement; at most
    /// [`MAX_ANALYSIS_RUNS`] are kept, the oldest finished ones dropped first.
    pub(super) fn retire_analysis_runs(&mut self) {
        if self.status.analysis_runs.is_empty() {
            return;
        }
        let canary = self.status.canary.clone().filter(|c| c.aborted.is_none());
        let latest_background = canary.as_ref().and_then(|c| self.latest_background(c));
        let stable_hash = self.status.stable.as_ref().map(|s| s.hash.clone());
        let now = self.now;
        let mut due = Vec::new();
        for (i, run) in self.status.analysis_runs.iter_mut().enumerate() {
            if !is_live(run) {
                continue;
            }
            let belongs = canary.as_ref().is_some_and(|c| match run.kind {
                AnalysisRunKind::Step => {
                    run.id == step_run_id(&c.hash, c.step_index, c.step_started_at)
                }
                AnalysisRunKind::Background => Some(i) == latest_background,
            });
            if belongs {
                due.extend(analysis::run_next_due(self.app, run));
                continue;
            }
            run.finished_at = Some(now);
            if stable_hash.as_deref() == Some(run.hash.as_str())
                && run.kind == AnalysisRunKind::Background
            {
                run.phase = AnalysisPhase::Succeeded;
                run.message = "stopped when the rollout completed".into();
                run.effect = Some("none: the rollout completed".into());
            } else {
                run.message = "stopped: the rollout it judged ended or moved on".into();
                run.effect = Some("none: stopped before a verdict".into());
            }
        }
        for at in due {
            self.requeue_at(at);
        }
        while self.status.analysis_runs.len() > MAX_ANALYSIS_RUNS {
            match self.status.analysis_runs.iter().position(|r| !is_live(r)) {
                Some(i) => {
                    self.status.analysis_runs.remove(i);
                }
                None => break,
            }
        }
    }
}
