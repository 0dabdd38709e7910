//! An in-memory inbox for tests: the same layout and parsing as the real backends, the
//! values held in a map.
//!
//! An action's version is a counter raised on every write, as SSM raises a parameter's.
//! A record written with a value is kept until the next write of that value.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::document::Application;
use crate::observed::OverrideRecord;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};

use super::{Entry, Inbox, Key, Overrides, collect};

type Stored = (String, u64, Option<OverrideRecord>);

/// Overrides in a map; empty by default (an inbox nobody wrote to).
#[derive(Debug, Default)]
pub struct MemoryInbox {
    /// (workload, key) -> (value, version, record).
    values: Mutex<BTreeMap<(String, String), Stored>>,
    /// The highest version handed out.
    high: std::sync::atomic::AtomicU64,
    calls: CallCounter,
}

impl MemoryInbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores a raw entry under `<workload>/<key>` with any key, as a person could
    /// (tests of what does not parse).
    pub fn put_raw(&self, workload: &str, key: &str, value: &str) {
        self.put(workload, key, value, None);
    }

    fn put(&self, workload: &str, key: &str, value: &str, record: Option<OverrideRecord>) {
        let mut values = self.values.lock().unwrap_or_else(|p| p.into_inner());
        // One counter for every entry: a value written again after a clear never reuses
        // a version the loop has handled.
        let next = self.high.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        values.insert(
            (workload.to_string(), key.to_string()),
            (value.to_string(), next, record),
        );
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
            .map(|((workload, key), (value, version, record))| Entry {
                location: format!("override {prefix}/{workload}/{key}"),
                relative: format!("{workload}/{key}"),
                value,
                version,
                record,
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

    fn write_recorded<'a>(
        &'a self,
        _app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
        record: &'a OverrideRecord,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        self.calls.record("memory:WriteOverride", CallKind::Mutate);
        let mut record = record.clone();
        record.at.get_or_insert_with(crate::status::Timestamp::now);
        self.put(workload, key.as_str(), value, Some(record));
        Box::pin(async { Ok(()) })
    }

    fn clear<'a>(
        &'a self,
        _app: &'a Application,
        workload: &'a str,
        key: Key,
    ) -> BoxFuture<'a, Result<bool, PlatformError>> {
        self.calls.record("memory:ClearOverride", CallKind::Mutate);
        let removed = self
            .values
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&(workload.to_string(), key.as_str().to_string()))
            .is_some();
        Box::pin(async move { Ok(removed) })
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}
