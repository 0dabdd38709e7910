//! The inbox in files, for the local platform: `<stateDir>/overrides/<workload>/weight`
//! and `<stateDir>/overrides/<workload>/action`, holding the same values as the SSM
//! parameters.
//!
//! How a one-shot action is identified exactly once: its version is the `action` file's
//! modification time in milliseconds since the Unix epoch. Reading an unchanged file
//! gives the same version, so the planner (which remembers the last version handled)
//! acts on it once; any write of the file, even of the same word, is a new action.
//! [`FileInbox::write`] writes atomically (a temporary file renamed into place) and sets
//! the new file's modification time to at least one millisecond after the old one's, so
//! two writes within one clock tick (or after the clock stepped back) are still two
//! versions. A file written by hand (`echo abort > .../action`) works the same way, on
//! a filesystem that keeps modification times to the millisecond or better.
//!
//! Files whose names start with `.` (temporary files of a write under way) are not read
//! as values.
//!
//! The local record of who wrote a value and why: [`FileInbox::write_recorded`] leaves
//! `.<key>.record` (JSON `{by, reason, at, version}`) beside the value, after the value.
//! It counts only while its `version` is the value's modification time: a value written
//! again by hand has no record rather than the previous writer's.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::document::Application;
use crate::observed::OverrideRecord;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};
use crate::status::Timestamp;

use super::{Entry, Inbox, Key, Overrides, collect};

/// Overrides in files under one directory.
#[derive(Debug)]
pub struct FileInbox {
    root: PathBuf,
    calls: CallCounter,
}

impl FileInbox {
    /// The inbox of a local application whose state directory is `state_dir`.
    pub fn in_state_dir(state_dir: impl AsRef<Path>) -> Self {
        Self::new(state_dir.as_ref().join("overrides"))
    }

    /// The inbox rooted at `root` (holding one directory per workload).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            calls: CallCounter::default(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Inbox for FileInbox {
    fn read<'a>(
        &'a self,
        _app: &'a Application,
    ) -> BoxFuture<'a, Result<Overrides, PlatformError>> {
        self.calls.record("file:ReadOverrides", CallKind::Describe);
        let root = self.root.clone();
        Box::pin(async move {
            let entries = tokio::task::spawn_blocking(move || read_entries(&root))
                .await
                .map_err(|e| PlatformError::Unavailable {
                    api: "file:ReadOverrides",
                    message: format!("the reading task failed: {e}"),
                    source: None,
                })??;
            Ok(collect(entries))
        })
    }

    fn write<'a>(
        &'a self,
        _app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        self.calls.record("file:WriteOverride", CallKind::Mutate);
        let dir = self.root.join(workload);
        let value = value.to_string();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || write_entry(&dir, key, &value, None))
                .await
                .map_err(|e| PlatformError::Unavailable {
                    api: "file:WriteOverride",
                    message: format!("the writing task failed: {e}"),
                    source: None,
                })?
        })
    }

    fn write_recorded<'a>(
        &'a self,
        _app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
        record: &'a OverrideRecord,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        self.calls.record("file:WriteOverride", CallKind::Mutate);
        let dir = self.root.join(workload);
        let value = value.to_string();
        let record = record.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || write_entry(&dir, key, &value, Some(record)))
                .await
                .map_err(|e| PlatformError::Unavailable {
                    api: "file:WriteOverride",
                    message: format!("the writing task failed: {e}"),
                    source: None,
                })?
        })
    }

    fn clear<'a>(
        &'a self,
        _app: &'a Application,
        workload: &'a str,
        key: Key,
    ) -> BoxFuture<'a, Result<bool, PlatformError>> {
        self.calls.record("file:ClearOverride", CallKind::Mutate);
        let dir = self.root.join(workload);
        Box::pin(async move {
            tokio::task::spawn_blocking(move || clear_entry(&dir, key))
                .await
                .map_err(|e| PlatformError::Unavailable {
                    api: "file:ClearOverride",
                    message: format!("the clearing task failed: {e}"),
                    source: None,
                })?
        })
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}

fn io_error(api: &'static str, path: &Path, e: std::io::Error) -> PlatformError {
    let message = format!("{}: {e}", path.display());
    match e.kind() {
        std::io::ErrorKind::PermissionDenied => PlatformError::AccessDenied { api, message },
        _ => PlatformError::Unavailable {
            api,
            message,
            source: Some(Box::new(e)),
        },
    }
}

/// Milliseconds since the epoch of a modification time.
fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

fn visible(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| !n.starts_with('.'))
}

fn read_entries(root: &Path) -> Result<Vec<Entry>, PlatformError> {
    const API: &str = "file:ReadOverrides";
    let workloads = match std::fs::read_dir(root) {
        Ok(dir) => dir,
        // Nobody has written an override yet.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(API, root, e)),
    };
    let mut paths = Vec::new();
    for workload in workloads {
        let path = workload.map_err(|e| io_error(API, root, e))?.path();
        if !visible(&path) {
            continue;
        }
        if path.is_dir() {
            for file in std::fs::read_dir(&path).map_err(|e| io_error(API, &path, e))? {
                let file = file.map_err(|e| io_error(API, &path, e))?.path();
                if visible(&file) {
                    paths.push(file);
                }
            }
        } else {
            paths.push(path);
        }
    }
    paths.sort();
    let mut entries = Vec::new();
    for path in paths {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        let (value, version) = if path.is_dir() {
            // A directory where a value belongs: reported by `collect` as an unknown key.
            (String::new(), 0)
        } else {
            let value = std::fs::read_to_string(&path).map_err(|e| io_error(API, &path, e))?;
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| io_error(API, &path, e))?;
            (value, millis(modified))
        };
        let record = read_record(&path, version);
        entries.push(Entry {
            location: format!("file {}", path.display()),
            relative,
            value,
            version,
            record,
        });
    }
    Ok(entries)
}

/// The record file of the value at `path`.
fn record_path(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    Some(path.with_file_name(format!(".{name}.record")))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredRecord {
    #[serde(flatten)]
    record: OverrideRecord,
    /// The value's modification time (its version) when the record was written.
    version: u64,
}

/// The record of the value at `path`, if it was written with this version of it.
fn read_record(path: &Path, version: u64) -> Option<OverrideRecord> {
    let text = std::fs::read_to_string(record_path(path)?).ok()?;
    let stored: StoredRecord = serde_json::from_str(&text).ok()?;
    (stored.version == version).then_some(stored.record)
}

fn clear_entry(dir: &Path, key: Key) -> Result<bool, PlatformError> {
    const API: &str = "file:ClearOverride";
    let path = dir.join(key.as_str());
    if let Some(record) = record_path(&path) {
        let _ = std::fs::remove_file(record);
    }
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_error(API, &path, e)),
    }
}

fn write_entry(
    dir: &Path,
    key: Key,
    value: &str,
    record: Option<OverrideRecord>,
) -> Result<(), PlatformError> {
    const API: &str = "file:WriteOverride";
    std::fs::create_dir_all(dir).map_err(|e| io_error(API, dir, e))?;
    let path = dir.join(key.as_str());
    let temporary = dir.join(format!(".{key}.tmp"));
    std::fs::write(&temporary, value).map_err(|e| io_error(API, &temporary, e))?;
    let previous = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    let now = SystemTime::now();
    let modified = match previous {
        Some(p) if millis(p) >= millis(now) => UNIX_EPOCH + Duration::from_millis(millis(p) + 1),
        _ => now,
    };
    std::fs::File::options()
        .write(true)
        .open(&temporary)
        .and_then(|f| f.set_modified(modified))
        .map_err(|e| io_error(API, &temporary, e))?;
    std::fs::rename(&temporary, &path).map_err(|e| io_error(API, &path, e))?;
    if let Some(record_file) = record_path(&path) {
        match record {
            Some(mut record) => {
                record.at.get_or_insert(Timestamp(millis(modified)));
                let stored = StoredRecord {
                    record,
                    version: millis(modified),
                };
                let text = serde_json::to_string(&stored).unwrap_or_default();
                let temporary = dir.join(format!(".{key}.record.tmp"));
                std::fs::write(&temporary, text).map_err(|e| io_error(API, &temporary, e))?;
                std::fs::rename(&temporary, &record_file)
                    .map_err(|e| io_error(API, &record_file, e))?;
            }
            // A write without a record leaves none behind (the old one would name the
            // previous writer).
            None => {
                let _ = std::fs::remove_file(record_file);
            }
        }
    }
    Ok(())
}
