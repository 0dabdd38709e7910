//! The operator inbox: where operators leave overrides for the loop (a weight pin and a
//! one-shot action per workload), and where the loop reads them each pass.
//!
//! Layout, the same in every backend: under the application's prefix, one entry per
//! workload and key, `<prefix>/<workload>/weight` and `<prefix>/<workload>/action`,
//! holding the values [`crate::operator`] parses. Backends: [`ssm`] (SSM parameters
//! under `spec.overrides.ssmPrefix`, default `/tugboat/<environment>/<name>`), [`file`](mod@file)
//! (files under `<stateDir>/overrides`, for the local platform) and [`memory`] (tests).
//!
//! Guarantees every backend keeps (the conformance suite in
//! `controller/tests/common/inbox.rs` runs against all three):
//! - [`Inbox::read`] returns every override of the application. A value that does not
//!   parse, or an entry that is not `<workload>/weight|action`, is returned in
//!   [`Overrides::problems`] naming the parameter or file and what is wrong; it never
//!   fails the read and never hides the other workloads' overrides.
//! - A one-shot action carries a version that grows with every write of it, so the
//!   planner handles each write exactly once (it remembers the last version handled).
//! - Every backend call is counted ([`Inbox::api_calls`]) and spends from the same
//!   budgets as the platform's calls.
//! - [`Inbox::write_recorded`] keeps who wrote a value and why beside it, and
//!   [`Inbox::read`] returns that record with the value (`weightRecord`,
//!   `actionRecord`): on SSM the parameter's own metadata (last modifying user,
//!   description, modification date, looked up once per parameter version); in files a
//!   record beside the value that counts only for the write it was made with (a value
//!   edited by hand afterwards has no record rather than a wrong one).
//! - [`Inbox::clear`] removes a value; clearing what is not there is no error.

pub mod file;
pub mod memory;
#[cfg(feature = "aws")]
pub mod ssm;

use std::collections::BTreeMap;
use std::fmt;

use crate::document::Application;
use crate::observed::{OperatorAction, OverrideRecord, WorkloadOverrides};
use crate::operator::{self, ACTION_KEY, OverrideError, UNDO_KEY, WEIGHT_KEY};
use crate::platform::{BoxFuture, CallCounts, PlatformError};

/// Which override of a workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Key {
    /// The weight pin.
    Weight,
    /// The one-shot action.
    Action,
    /// An undo in force (`tugboat undo`).
    Undo,
}

impl Key {
    pub fn as_str(self) -> &'static str {
        match self {
            Key::Weight => WEIGHT_KEY,
            Key::Action => ACTION_KEY,
            Key::Undo => UNDO_KEY,
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an inbox holds for one application.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    /// The overrides that parse, by workload.
    pub by_workload: BTreeMap<String, WorkloadOverrides>,
    /// Values that do not parse, by workload: one message each naming where it is and
    /// what is wrong, e.g. `SSM parameter /tugboat/prod/app/api/weight: "x" is ...`.
    pub problems: BTreeMap<String, Vec<String>>,
}

/// Where operators leave overrides. See the module docs for the guarantees.
pub trait Inbox: Send + Sync + fmt::Debug {
    /// Every override of `app`. Fails only when the backend cannot be read at all.
    fn read<'a>(&'a self, app: &'a Application) -> BoxFuture<'a, Result<Overrides, PlatformError>>;

    /// Writes one override value (as [`crate::operator`] formats it). Writing an action
    /// gives it a new, higher version.
    fn write<'a>(
        &'a self,
        app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>>;

    /// Writes one override value with who wrote it and why (see the module docs for
    /// where each backend keeps the record).
    fn write_recorded<'a>(
        &'a self,
        app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
        record: &'a OverrideRecord,
    ) -> BoxFuture<'a, Result<(), PlatformError>>;

    /// Removes one override value (and its record). `Ok(false)`: there was none.
    fn clear<'a>(
        &'a self,
        app: &'a Application,
        workload: &'a str,
        key: Key,
    ) -> BoxFuture<'a, Result<bool, PlatformError>>;

    /// Every backend call made so far.
    fn api_calls(&self) -> CallCounts;
}

/// One stored entry, before parsing: `<workload>/<key>` relative to the prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it is, for messages: `SSM parameter /p/api/weight`, `file /s/api/weight`.
    pub location: String,
    /// The path under the prefix, e.g. `api/weight`.
    pub relative: String,
    pub value: String,
    /// The backend's version of the entry (used for actions).
    pub version: u64,
    /// Who wrote it and why, when the backend knows.
    pub record: Option<OverrideRecord>,
}

/// Parses entries into overrides and problems. Pure; shared by every backend.
pub fn collect(entries: impl IntoIterator<Item = Entry>) -> Overrides {
    let mut out = Overrides::default();
    for entry in entries {
        let relative = entry.relative.trim_matches('/');
        let (workload, key) = relative.split_once('/').unwrap_or((relative, ""));
        let parsed = match key {
            WEIGHT_KEY => operator::parse_weight_pin(&entry.value).map(|pin| {
                let overrides = out.by_workload.entry(workload.to_string()).or_default();
                overrides.weight_pin = Some(pin);
                overrides.weight_record = entry.record.clone();
            }),
            ACTION_KEY => operator::parse_action(&entry.value).map(|kind| {
                let overrides = out.by_workload.entry(workload.to_string()).or_default();
                overrides.action = Some(OperatorAction {
                    kind,
                    version: entry.version,
                });
                overrides.action_record = entry.record.clone();
            }),
            UNDO_KEY => operator::parse_undo(&entry.value).map(|undo| {
                out.by_workload
                    .entry(workload.to_string())
                    .or_default()
                    .undo = Some(undo);
            }),
            _ => Err(OverrideError::UnknownKey(relative.to_string())),
        };
        if let Err(problem) = parsed {
            tracing::warn!(location = %entry.location, %problem, "an override that does not parse is not applied");
            if key == WEIGHT_KEY {
                out.by_workload
                    .entry(workload.to_string())
                    .or_default()
                    .unreadable_weight = Some(format!("{}: {problem}", entry.location));
            }
            out.problems
                .entry(workload.to_string())
                .or_default()
                .push(format!("{}: {problem}", entry.location));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observed::OperatorActionKind;

    fn entry(relative: &str, value: &str, version: u64) -> Entry {
        Entry {
            location: format!("SSM parameter /p/{relative}"),
            relative: relative.into(),
            value: value.into(),
            version,
            record: None,
        }
    }

    #[test]
    fn values_that_parse_become_overrides_and_the_others_problems_naming_them() {
        let out = collect([
            entry("api/weight", "5", 1),
            entry("api/action", "Abort", 7),
            entry("worker/weight", "lots", 2),
            entry("worker/wieght", "5", 1),
            entry("stray", "1", 1),
        ]);
        assert_eq!(
            out.by_workload["api"].weight_pin.as_ref().map(|p| p.weight),
            Some(5)
        );
        assert_eq!(
            out.by_workload["api"].action,
            Some(OperatorAction {
                kind: OperatorActionKind::Abort,
                version: 7
            })
        );
        // A weight that does not parse is no pin, but the workload learns of it (its
        // rollout holds); a misspelt key is only a problem.
        let worker = &out.by_workload["worker"];
        assert_eq!(worker.weight_pin, None);
        assert_eq!(worker.action, None);
        assert!(
            worker
                .unreadable_weight
                .as_deref()
                .is_some_and(|w| w.starts_with("SSM parameter /p/worker/weight: ")),
            "{worker:?}"
        );
        assert!(!out.by_workload.contains_key("stray"));
        let worker = &out.problems["worker"];
        assert_eq!(worker.len(), 2, "{worker:?}");
        assert!(
            worker[0].starts_with("SSM parameter /p/worker/weight: "),
            "{}",
            worker[0]
        );
        assert!(worker[1].contains("wieght"), "{}", worker[1]);
        assert_eq!(out.problems["stray"].len(), 1);
        assert!(!out.problems.contains_key("api"));
    }
}
