//! One pass's facts folded into the status to persist: the one place a pass decides its
//! status.
//!
//! The planner decides each workload's rollout status; around it a pass learns things
//! the planner does not see: workloads that could not be observed, actions that failed,
//! a document source that now holds something unusable, override values that do not
//! parse, or a whole observation that failed. [`fold`] combines them, purely, with `now`
//! passed in.
//!
//! Guarantees:
//! - A workload that could not be observed keeps the status it had before the pass (the
//!   plan for it was built from partial data) and gains a `PlatformError` condition.
//! - A workload whose action failed gains a `PlatformError` condition naming the action;
//!   a failure that persists is one event, not one per pass. The condition clears (with
//!   a `Converged` event) on the first pass where the workload is observed and nothing
//!   of it fails.
//! - A source problem sets the application's `DocumentInvalid` condition; no problem
//!   clears it. An override value that does not parse sets the workload's
//!   `OverrideInvalid` condition naming the parameter, and only that workload's.
//! - A whole-pass observe failure keeps the previous status and sets the application's
//!   `PlatformError` condition; the next pass that observes clears it. (A transient
//!   failure is not folded at all: throttling passes by itself and the caller writes
//!   nothing.)

use std::collections::BTreeMap;

use crate::status::{AppStatus, Timestamp, WorkloadStatus, reason, set_condition};

/// Why a workload (or the whole pass) has a problem: the condition's reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// e.g. [`reason::PLATFORM_ERROR`] or [`reason::NOT_OWNED`].
    pub reason: String,
    /// What failed, for operators: `observing it failed: ...`, `UpdateService failed: ...`.
    pub message: String,
}

impl Problem {
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Self {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// What came out of observing and planning.
#[derive(Debug, Clone, PartialEq)]
pub enum Planned {
    /// The planner's status for this pass.
    Status(AppStatus),
    /// The whole observation failed (not transiently): nothing was planned.
    ObserveFailed(Problem),
}

/// Everything one pass learned, besides the document itself.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub now: Timestamp,
    /// The status the pass started from (persisted or from the last pass).
    pub previous: Option<&'a AppStatus>,
    pub planned: Planned,
    /// The document revision the pass planned from.
    pub revision: &'a str,
    /// What is wrong with the document source, if anything.
    pub source_problem: Option<&'a str>,
    /// Workloads that could not be observed, and why.
    pub unobserved: BTreeMap<String, Problem>,
    /// Workloads whose action failed, and why (the message names the action).
    pub failed: BTreeMap<String, Problem>,
    /// Override values that do not parse, per workload: one message each, naming the
    /// parameter or file and the problem.
    pub override_problems: BTreeMap<String, Vec<String>>,
}

/// The status to persist after a pass. See the module docs for what each fact does.
pub fn fold(facts: Facts<'_>) -> AppStatus {
    let Facts {
        now,
        previous,
        planned,
        revision,
        source_problem,
        unobserved,
        failed,
        override_problems,
    } = facts;
    let mut status = match planned {
        Planned::ObserveFailed(problem) => {
            let mut status = previous.cloned().unwrap_or_default();
            set_condition(
                &mut status.conditions,
                now,
                reason::PLATFORM_ERROR,
                true,
                &problem.reason,
                problem.message,
            );
            return status;
        }
        Planned::Status(status) => status,
    };
    status.document_revision = Some(revision.to_string());
    clear_app_condition(&mut status, now, reason::PLATFORM_ERROR);
    match source_problem {
        Some(problem) => set_condition(
            &mut status.conditions,
            now,
            reason::DOCUMENT_INVALID,
            true,
            reason::DOCUMENT_INVALID,
            problem.to_string(),
        ),
        None => clear_app_condition(&mut status, now, reason::DOCUMENT_INVALID),
    }
    for (workload, problem) in &unobserved {
        // Keep what was known; the plan for it was built from partial data.
        let known = previous
            .and_then(|s| s.workloads.get(workload))
            .cloned()
            .unwrap_or_default();
        status.workloads.insert(workload.clone(), known);
        mark_platform_error(&mut status, workload, now, problem);
    }
    for (workload, problem) in &failed {
        mark_platform_error(&mut status, workload, now, problem);
    }
    for (workload, ws) in status.workloads.iter_mut() {
        if unobserved.contains_key(workload) || failed.contains_key(workload) {
            continue;
        }
        if ws
            .condition(reason::PLATFORM_ERROR)
            .is_some_and(|c| c.status)
        {
            ws.set_condition(now, reason::PLATFORM_ERROR, false, reason::CONVERGED, "");
            ws.record(now, reason::CONVERGED, "the platform answers again");
        }
    }
    fold_override_problems(&mut status, now, &override_problems);
    status
}

/// The condition of a workload (or of the application) whose override values do not
/// parse.
pub const OVERRIDE_INVALID: &str = "OverrideInvalid";

fn fold_override_problems(
    status: &mut AppStatus,
    now: Timestamp,
    problems: &BTreeMap<String, Vec<String>>,
) {
    let mut elsewhere = Vec::new();
    for (workload, messages) in problems {
        match status.workloads.get_mut(workload) {
            Some(ws) if !messages.is_empty() => {
                let message = messages.join("; ");
                let new = !ws
                    .condition(OVERRIDE_INVALID)
                    .is_some_and(|c| c.status && c.message == message);
                ws.set_condition(now, OVERRIDE_INVALID, true, OVERRIDE_INVALID, &*message);
                if new {
                    ws.record(now, OVERRIDE_INVALID, message);
                }
            }
            Some(_) => {}
            // Overrides for a workload the document does not have: say so on the
            // application rather than inventing a workload.
            None => elsewhere.extend(messages.iter().cloned()),
        }
    }
    for (workload, ws) in status.workloads.iter_mut() {
        let has = problems.get(workload).is_some_and(|m| !m.is_empty());
        if !has && ws.condition(OVERRIDE_INVALID).is_some_and(|c| c.status) {
            ws.set_condition(now, OVERRIDE_INVALID, false, reason::CONVERGED, "");
        }
    }
    if elsewhere.is_empty() {
        clear_app_condition(status, now, OVERRIDE_INVALID);
    } else {
        set_condition(
            &mut status.conditions,
            now,
            OVERRIDE_INVALID,
            true,
            OVERRIDE_INVALID,
            elsewhere.join("; "),
        );
    }
}

/// Sets an application condition to false, if it is there at all.
fn clear_app_condition(status: &mut AppStatus, now: Timestamp, kind: &str) {
    if status.conditions.iter().any(|c| c.kind == kind && c.status) {
        set_condition(
            &mut status.conditions,
            now,
            kind,
            false,
            reason::CONVERGED,
            String::new(),
        );
    }
}

fn mark_platform_error(status: &mut AppStatus, workload: &str, now: Timestamp, problem: &Problem) {
    let ws: &mut WorkloadStatus = status.workloads.entry(workload.to_string()).or_default();
    let was_failing = ws
        .condition(reason::PLATFORM_ERROR)
        .is_some_and(|c| c.status && c.message == problem.message);
    ws.set_condition(
        now,
        reason::PLATFORM_ERROR,
        true,
        &problem.reason,
        problem.message.clone(),
    );
    if !was_failing {
        ws.record(now, &problem.reason, problem.message.clone());
    }
    ws.message = problem.message.clone();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::Phase;

    const NOW: Timestamp = Timestamp(10_000);

    fn facts<'a>(previous: Option<&'a AppStatus>, planned: AppStatus) -> Facts<'a> {
        Facts {
            now: NOW,
            previous,
            planned: Planned::Status(planned),
            revision: "r2",
            source_problem: None,
            unobserved: BTreeMap::new(),
            failed: BTreeMap::new(),
            override_problems: BTreeMap::new(),
        }
    }

    fn with_workloads(names: &[(&str, Phase)]) -> AppStatus {
        let mut status = AppStatus::default();
        for (name, phase) in names {
            status.workloads.insert(
                name.to_string(),
                WorkloadStatus {
                    phase: *phase,
                    ..WorkloadStatus::default()
                },
            );
        }
        status
    }

    fn app_condition<'s>(
        status: &'s AppStatus,
        kind: &str,
    ) -> Option<&'s crate::status::Condition> {
        status.conditions.iter().find(|c| c.kind == kind)
    }

    fn problem(message: &str) -> Problem {
        Problem::new(reason::PLATFORM_ERROR, message)
    }

    #[test]
    fn a_clean_pass_is_the_planners_status_with_the_revision() {
        let planned = with_workloads(&[("api", Phase::Healthy)]);
        let status = fold(facts(None, planned.clone()));
        assert_eq!(status.document_revision.as_deref(), Some("r2"));
        assert_eq!(status.workloads, planned.workloads);
        assert!(status.conditions.is_empty(), "{:?}", status.conditions);
    }

    #[test]
    fn table_of_workload_facts() {
        // (case, unobserved, failed, expected api phase, PlatformError on api, message)
        let previous = with_workloads(&[("api", Phase::Progressing), ("worker", Phase::Healthy)]);
        let planned = with_workloads(&[("api", Phase::Healthy), ("worker", Phase::Healthy)]);
        struct Case {
            name: &'static str,
            unobserved: bool,
            failed: bool,
            phase: Phase,
            error: Option<&'static str>,
        }
        let cases = [
            Case {
                name: "clean",
                unobserved: false,
                failed: false,
                phase: Phase::Healthy,
                error: None,
            },
            Case {
                name: "unobserved keeps what was known",
                unobserved: true,
                failed: false,
                phase: Phase::Progressing,
                error: Some("observing it failed: timed out"),
            },
            Case {
                name: "failed action keeps the plan's status",
                unobserved: false,
                failed: true,
                phase: Phase::Healthy,
                error: Some("UpdateService failed: denied"),
            },
        ];
        for case in cases {
            let mut f = facts(Some(&previous), planned.clone());
            if case.unobserved {
                f.unobserved
                    .insert("api".into(), problem("observing it failed: timed out"));
            }
            if case.failed {
                f.failed
                    .insert("api".into(), problem("UpdateService failed: denied"));
            }
            let status = fold(f);
            let api = &status.workloads["api"];
            assert_eq!(api.phase, case.phase, "{}", case.name);
            let condition = api.condition(reason::PLATFORM_ERROR);
            match case.error {
                None => assert!(condition.is_none(), "{}: {condition:?}", case.name),
                Some(message) => {
                    let c = condition.expect(case.name);
                    assert!(c.status, "{}", case.name);
                    assert_eq!(c.message, message, "{}", case.name);
                    assert_eq!(api.message, message, "{}", case.name);
                    assert_eq!(api.events.len(), 1, "{}", case.name);
                }
            }
            assert_eq!(
                status.workloads["worker"].phase,
                Phase::Healthy,
                "{}",
                case.name
            );
            assert!(
                status.workloads["worker"]
                    .condition(reason::PLATFORM_ERROR)
                    .is_none(),
                "{}: other workloads are untouched",
                case.name
            );
        }
    }

    #[test]
    fn a_persisting_failure_is_one_event_and_clears_with_an_event() {
        let planned = with_workloads(&[("api", Phase::Healthy)]);
        let mut f = facts(None, planned.clone());
        f.failed
            .insert("api".into(), problem("SetWeights failed: gone"));
        let first = fold(f);
        // The planner carries the status forward; the same failure again.
        let mut f = facts(Some(&first), first.clone());
        f.failed
            .insert("api".into(), problem("SetWeights failed: gone"));
        let second = fold(f);
        assert_eq!(second.workloads["api"].events.len(), 1);
        let third = fold(facts(Some(&second), second.clone()));
        let api = &third.workloads["api"];
        let c = api.condition(reason::PLATFORM_ERROR).expect("kept");
        assert!(!c.status);
        assert_eq!(c.reason, reason::CONVERGED);
        assert_eq!(
            api.events.last().map(|e| e.reason.as_str()),
            Some(reason::CONVERGED)
        );
    }

    #[test]
    fn a_source_problem_sets_document_invalid_and_its_absence_clears_it() {
        let mut f = facts(None, AppStatus::default());
        f.source_problem = Some("s3://b/k (revision \"e2\"): spec.workloads[0].cpu: ...");
        let invalid = fold(f);
        let c = app_condition(&invalid, reason::DOCUMENT_INVALID).expect("set");
        assert!(c.status);
        assert!(c.message.contains("spec.workloads[0].cpu"), "{}", c.message);
        let cleared = fold(facts(Some(&invalid), invalid.clone()));
        let c = app_condition(&cleared, reason::DOCUMENT_INVALID).expect("kept");
        assert!(!c.status);
        // Never set, never added.
        let clean = fold(facts(None, AppStatus::default()));
        assert!(app_condition(&clean, reason::DOCUMENT_INVALID).is_none());
    }

    #[test]
    fn an_observe_failure_keeps_the_previous_status_and_the_next_pass_clears_it() {
        let mut previous = with_workloads(&[("api", Phase::Progressing)]);
        previous.document_revision = Some("r1".into());
        let mut f = facts(Some(&previous), AppStatus::default());
        f.planned = Planned::ObserveFailed(Problem::new(
            reason::PLATFORM_ERROR,
            "observing the application failed: not authorized",
        ));
        f.source_problem = Some("ignored while nothing was observed");
        let failed = fold(f);
        assert_eq!(failed.workloads, previous.workloads);
        assert_eq!(failed.document_revision.as_deref(), Some("r1"));
        let c = app_condition(&failed, reason::PLATFORM_ERROR).expect("set");
        assert!(c.status && c.message.contains("not authorized"), "{c:?}");
        assert!(app_condition(&failed, reason::DOCUMENT_INVALID).is_none());

        let next = fold(facts(Some(&failed), failed.clone()));
        assert!(
            !app_condition(&next, reason::PLATFORM_ERROR)
                .expect("kept")
                .status
        );
    }

    #[test]
    fn an_override_that_does_not_parse_marks_only_its_workload() {
        let planned = with_workloads(&[("api", Phase::Healthy), ("worker", Phase::Healthy)]);
        let mut f = facts(None, planned.clone());
        f.override_problems.insert(
            "api".into(),
            vec!["SSM parameter /tugboat/test/shop/api/weight: \"abc\" is not a weight".into()],
        );
        f.override_problems.insert(
            "ghost".into(),
            vec!["SSM parameter /tugboat/test/shop/ghost/weight: no such workload".into()],
        );
        let status = fold(f);
        let c = status.workloads["api"]
            .condition(OVERRIDE_INVALID)
            .expect("set");
        assert!(c.status);
        assert!(c.message.contains("/api/weight"), "{}", c.message);
        assert!(
            status.workloads["worker"]
                .condition(OVERRIDE_INVALID)
                .is_none()
        );
        assert!(!status.workloads.contains_key("ghost"));
        let app = app_condition(&status, OVERRIDE_INVALID).expect("unknown workload");
        assert!(app.message.contains("ghost"), "{}", app.message);

        let fixed = fold(facts(Some(&status), status.clone()));
        assert!(
            !fixed.workloads["api"]
                .condition(OVERRIDE_INVALID)
                .expect("kept")
                .status
        );
        assert!(
            !app_condition(&fixed, OVERRIDE_INVALID)
                .expect("kept")
                .status
        );
    }
}
