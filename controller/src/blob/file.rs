//! A [`BlobStore`] on the local file system: documents given as `file://` URIs, the
//! local platform's state files.
//!
//! Guarantees:
//! - A value's version is `sha256:<hex>` of its bytes, so it survives restarts and any
//!   tool can compute it. Writing the same bytes again gives the same version; a writer
//!   holding a version from before an A -> B -> A sequence of writes still matches.
//! - Writes are atomic: the bytes go to a new file beside the target (created with
//!   `create_new`, synced), which is renamed over it, so a reader sees the old value or
//!   the new one, never half of one. Missing parent directories are created.
//! - Conditional writes (`Create`, `Update`) check and write while holding an exclusive
//!   advisory lock (`flock`) on the target's directory, so two tugboat writers cannot both
//!   win. The lock is advisory: a person or tool writing the file without it (an editor)
//!   is not held off, and on platforms where a directory cannot be opened as a file (not
//!   Unix) no lock is taken and the check-then-write race stays open.
//! - Locations are paths joined to the store's root as written; the store does not
//!   confine them to the root.

use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{
    BlobError, BlobStore, BoxFuture, GetOptions, GetResult, PutMode, Version, content_version,
};

/// Files under a root directory (`""`: paths as written).
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn path(&self, location: &str) -> PathBuf {
        self.root.join(location)
    }
}

impl BlobStore for FileStore {
    fn uri(&self, location: &str) -> String {
        format!("file://{}", self.path(location).display())
    }

    fn get_opts<'a>(
        &'a self,
        location: &'a str,
        options: GetOptions<'a>,
    ) -> BoxFuture<'a, Result<GetResult, BlobError>> {
        let path = self.path(location);
        let if_none_match = options.if_none_match.cloned();
        let max_bytes = options.max_bytes;
        Box::pin(blocking(move || {
            read(&path, max_bytes).map(|(bytes, version)| {
                if if_none_match.as_ref() == Some(&version) {
                    GetResult::NotModified
                } else {
                    GetResult::Found { bytes, version }
                }
            })
        }))
    }

    fn head<'a>(&'a self, location: &'a str) -> BoxFuture<'a, Result<Version, BlobError>> {
        let path = self.path(location);
        Box::pin(blocking(move || {
            read(&path, u64::MAX).map(|(_, version)| version)
        }))
    }

    fn put<'a>(
        &'a self,
        location: &'a str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<Version, BlobError>> {
        let path = self.path(location);
        Box::pin(blocking(move || write(&path, &bytes, &mode)))
    }
}

/// Runs blocking file work off the async threads. A panic in it (none is expected) is
/// reported as an error rather than carried into the caller.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, BlobError> + Send + 'static,
) -> Result<T, BlobError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(join) => Err(BlobError::Other {
            doing: "accessing",
            uri: "a file".to_owned(),
            detail: "the file task did not finish".to_owned(),
            source: Box::new(join),
        }),
    }
}

fn file_uri(path: &Path) -> String {
    format!("file://{}", path.display())
}

fn io_error(path: &Path, doing: &'static str, err: io::Error) -> BlobError {
    let uri = file_uri(path);
    match err.kind() {
        io::ErrorKind::NotFound => BlobError::NotFound { uri },
        io::ErrorKind::PermissionDenied => BlobError::AccessDenied {
            doing,
            uri,
            needs: "the process needs read (and, to write, write) permission on the file and its directory",
            detail: err.to_string(),
        },
        _ => BlobError::Other {
            doing,
            uri,
            detail: err.to_string(),
            source: Box::new(err),
        },
    }
}

/// Reads at most `max_bytes` (the size is checked first, and the read stops past it in
/// case the file grew meanwhile).
fn read(path: &Path, max_bytes: u64) -> Result<(Vec<u8>, Version), BlobError> {
    let too_large = |size| BlobError::TooLarge {
        uri: file_uri(path),
        size,
        limit: max_bytes,
        what: "the reader accepts",
    };
    let file = fs::File::open(path).map_err(|err| io_error(path, "reading", err))?;
    let size = file
        .metadata()
        .map_err(|err| io_error(path, "reading", err))?
        .len();
    if size > max_bytes {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|err| io_error(path, "reading", err))?;
    if bytes.len() as u64 > max_bytes {
        return Err(too_large(bytes.len() as u64));
    }
    let version = content_version(&bytes);
    Ok((bytes, version))
}

fn write(path: &Path, bytes: &[u8], mode: &PutMode) -> Result<Version, BlobError> {
    let err = |doing| move |e| io_error(path, doing, e);
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .ok_or_else(|| BlobError::MalformedUri {
            uri: file_uri(path),
            problem: "the path names a directory, not a file",
        })?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_owned(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(err("creating the directory of"))?;
    // Held until the rename is done; dropping the handle releases the lock.
    let _lock = lock_dir(&dir).map_err(err("locking the directory of"))?;
    check(path, mode)?;

    let temp = dir.join(temp_name(&file_name));
    let written = (|| {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        // Make the rename itself durable; not every file system allows syncing a
        // directory, and the write already happened, so a failure here is not one.
        if let Ok(dir) = fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(io_error(path, "writing", e));
    }
    Ok(content_version(bytes))
}

/// Whether `mode` allows writing over what is at `path` now.
fn check(path: &Path, mode: &PutMode) -> Result<(), BlobError> {
    match mode {
        PutMode::Overwrite => Ok(()),
        PutMode::Create => match fs::symlink_metadata(path) {
            Ok(_) => Err(BlobError::AlreadyExists {
                uri: file_uri(path),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(path, "reading", e)),
        },
        PutMode::Update(expected) => {
            let current = match read(path, u64::MAX) {
                Ok((_, version)) => Some(version),
                Err(BlobError::NotFound { .. }) => None,
                Err(e) => return Err(e),
            };
            if current.as_ref() == Some(expected) {
                Ok(())
            } else {
                Err(BlobError::Precondition {
                    uri: file_uri(path),
                    expected: expected.clone(),
                })
            }
        }
    }
}

/// A name no other writer (in this or another process) uses at the same time.
fn temp_name(file_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        ".{file_name}.tugboat-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// An exclusive advisory lock on `dir`, held while the returned handle lives. Locking the
/// directory rather than the target works for a target that does not exist yet and for
/// one that a rename replaces, and leaves no lock file behind.
#[cfg(unix)]
fn lock_dir(dir: &Path) -> io::Result<Option<fs::File>> {
    let handle = fs::File::open(dir)?;
    handle.lock()?;
    Ok(Some(handle))
}

#[cfg(not(unix))]
fn lock_dir(_dir: &Path) -> io::Result<Option<fs::File>> {
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_failed_write_leaves_no_temporary_file_behind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        store
            .put("app.yaml", b"one".to_vec(), PutMode::Create)
            .await
            .expect("created");
        let lost = store
            .put("app.yaml", b"two".to_vec(), PutMode::Create)
            .await;
        assert!(
            matches!(lost, Err(BlobError::AlreadyExists { .. })),
            "{lost:?}"
        );
        store
            .put("app.yaml", b"three".to_vec(), PutMode::Overwrite)
            .await
            .expect("overwritten");

        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .map(|entry| entry.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec!["app.yaml"], "only the value itself is left");
    }

    #[tokio::test]
    async fn missing_directories_are_created() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::new(dir.path());
        store
            .put("a/b/status.json", b"{}".to_vec(), PutMode::Create)
            .await
            .expect("created with its directories");
        assert_eq!(
            fs::read(dir.path().join("a/b/status.json")).expect("read"),
            b"{}"
        );
    }

    #[tokio::test]
    async fn a_store_rooted_nowhere_uses_paths_as_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.json");
        let store = FileStore::new("");
        let location = path.to_str().expect("a UTF-8 temp dir");
        assert_eq!(store.uri(location), format!("file://{}", path.display()));
        store
            .put(location, b"x".to_vec(), PutMode::Overwrite)
            .await
            .expect("written");
        assert_eq!(fs::read(&path).expect("read"), b"x");
    }
}
