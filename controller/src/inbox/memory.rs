//! An in-memory inbox for tests: the same layout and parsing as the real backends, the
//! values held in a map.
//!
//! An action's version is a counter raised on every write, as SSM raises a parameter's.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::document::Application;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};

use super::{Entry, Inbox, Key, Overrides, collect};

/// Overrides in a map; empty by default (an inbox nobody wrote to).
#[derive(Debug, Default)]
pub struct MemoryInbox {
    /// (workload, key) -> (value, version).
    values: Mutex<BTreeMap<(String, String), (String, u64)>>,
    calls: CallCounter,
}

impl MemoryInbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a raw entry under `<workload>/<key>` with any key, as a person could
    /// (tests of what does not parse).
    pub fn put_raw(&self, workload: &str, key: &str, value: &str) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        let entry = values
            .entry((workload.to_string(), key.to_string()))
            .or_insert_with(|| (String::new(), 0));
        entry.0 = value.to_string();
        entry.1 += 1;
    }
}

impl Inbox for MemoryInbox {
    fn read<'a>(&'a self, app: &'a Application) -> BoxFuture<'a, Result<Overrides, PlatformError>> {
        self.calls
            .record("memory:ReadOverrides", CallKind::Describe);
        let prefix = app.overrides_prefix();
        let values = self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let entries = values
            .into_iter()
            .map(|((workload, key), (value, version))| Entry {
                location: format!("override {prefix}/{workload}/{key}"),
                relative: format!("{workload}/{key}"),
                value,
                version,
            });
        let out = collect(entries);
        Box::pin(async move { Ok(out) })
    }

    fn write<'a>(
        &'a self,
        _app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        self.calls.record("memory:WriteOverride", CallKind::Mutate);
        self.put_raw(workload, key.as_str(), value);
        Box::pin(async { Ok(()) })
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}
