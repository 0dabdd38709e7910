//! Where the application's status is persisted, so the CLI can read it without reaching
//! the controller: an S3 object or a local file, chosen by `spec.status.uri`. A typed
//! layer on [`crate::blob`].
//!
//! Guarantees:
//! - Writes are conditional on both backends: `Update` with the version this store last
//!   read or wrote (`Create` when nothing was there), so two controllers cannot silently
//!   overwrite each other. A lost race is [`StatusStoreError::Conflict`]: the caller
//!   re-reads and plans again from what the other writer left.
//! - A store that has not read yet learns the current version before its first write;
//!   it never writes blind.
//! - Writes are atomic: a reader sees the old or the new status, never half of one.

use crate::blob::{Blob, BlobError, BlobUri, Clients, GetResult, PutMode, Version};
use crate::status::AppStatus;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusStoreError {
    #[error("status URI {uri:?} is not supported ({problem}); use s3://bucket/key or file://path")]
    UnsupportedUri { uri: String, problem: String },
    #[error("status URI {uri} is on S3 but no S3 client was given")]
    NoS3Client { uri: String },
    /// The location cannot be opened in this build (an S3 status without AWS).
    #[error(transparent)]
    Open(BlobError),
    #[error("reading status from {uri}")]
    Read {
        uri: String,
        #[source]
        source: BlobError,
    },
    #[error("status at {uri} is not status JSON")]
    Parse {
        uri: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("writing status to {uri}")]
    Write {
        uri: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error(
        "status at {uri} was changed by another writer since this controller read it \
         (is a second controller running?); re-reading it"
    )]
    Conflict { uri: String },
}

/// A status location.
#[derive(Debug)]
pub struct StatusStore {
    /// As written in the document, so a caller can tell whether the document still names
    /// this store.
    uri: String,
    blob: Blob,
    /// The version as last read or written; `None` if nothing was stored.
    version: Option<Version>,
    /// Whether `version` reflects a read or write (else the first save must look first).
    known: bool,
}

impl StatusStore {
    /// Opens the store named by `uri`. `s3` is needed only for `s3://` URIs.
    pub fn open(uri: &str, s3: Option<crate::aws::S3Client>) -> Result<Self, StatusStoreError> {
        let unsupported = |problem: &str| StatusStoreError::UnsupportedUri {
            uri: uri.to_owned(),
            problem: problem.to_owned(),
        };
        let parsed: BlobUri = uri.parse().map_err(|err| match err {
            BlobError::MalformedUri { problem, .. } => unsupported(problem),
            _ => unsupported("not a storage location"),
        })?;
        let blob = match &parsed {
            // SSM's 8 KiB is too small for the status of a real application.
            BlobUri::Ssm { .. } => {
                return Err(unsupported(
                    "an SSM parameter holds at most 8 KiB, too little for a status",
                ));
            }
            // Files need no client; S3 fails here only without one.
            BlobUri::S3 { .. } | BlobUri::File { .. } => parsed
                .open_with(Clients { s3, ssm: None })
                .map_err(|err| match err {
                    BlobError::MissingClient { .. } => StatusStoreError::NoS3Client {
                        uri: uri.to_owned(),
                    },
                    other => StatusStoreError::Open(other),
                })?,
        };
        Ok(Self::with_blob(uri, blob))
    }

    /// A store on `blob` (a memory store in tests), named `uri`.
    pub fn with_blob(uri: impl Into<String>, blob: Blob) -> Self {
        Self {
            uri: uri.into(),
            blob,
            version: None,
            known: false,
        }
    }

    pub fn uri(&self) -> String {
        self.uri.clone()
    }

    /// Reads the persisted status; `None` when nothing was persisted yet.
    pub async fn load(&mut self) -> Result<Option<AppStatus>, StatusStoreError> {
        let (bytes, version) = match self.blob.get(None).await {
            Ok(GetResult::Found { bytes, version }) => (bytes, version),
            Err(BlobError::NotFound { .. }) => {
                self.version = None;
                self.known = true;
                return Ok(None);
            }
            // Without a version to match, a store never answers NotModified.
            Ok(GetResult::NotModified) => {
                return Err(StatusStoreError::Read {
                    uri: self.uri(),
                    source: BlobError::Other {
                        doing: "reading",
                        uri: self.uri(),
                        detail: "the store answered \"not modified\" to a plain read".to_owned(),
                        source: "unexpected answer".into(),
                    },
                });
            }
            Err(source) => {
                return Err(StatusStoreError::Read {
                    uri: self.uri(),
                    source,
                });
            }
        };
        self.version = Some(version);
        self.known = true;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StatusStoreError::Parse {
                uri: self.uri(),
                source,
            })
    }

    /// Writes `status`, only if nobody else wrote since this store last read or wrote.
    pub async fn save(&mut self, status: &AppStatus) -> Result<(), StatusStoreError> {
        let body = serde_json::to_vec_pretty(status).map_err(|e| StatusStoreError::Write {
            uri: self.uri(),
            source: Box::new(e),
        })?;
        if !self.known {
            // Never write blind: learn the current version first (without parsing, so a
            // damaged status can still be replaced).
            self.version = match self.blob.head().await {
                Ok(version) => Some(version),
                Err(BlobError::NotFound { .. }) => None,
                Err(source) => {
                    return Err(StatusStoreError::Read {
                        uri: self.uri(),
                        source,
                    });
                }
            };
            self.known = true;
        }
        let mode = match &self.version {
            Some(version) => PutMode::Update(version.clone()),
            None => PutMode::Create,
        };
        match self.blob.put(body, mode).await {
            Ok(version) => {
                self.version = Some(version);
                Ok(())
            }
            Err(BlobError::Precondition { .. } | BlobError::AlreadyExists { .. }) => {
                self.known = false;
                Err(StatusStoreError::Conflict { uri: self.uri() })
            }
            Err(e) => Err(StatusStoreError::Write {
                uri: self.uri(),
                source: Box::new(e),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::memory::MemoryStore;
    use crate::status::{Phase, WorkloadStatus};
    use std::sync::Arc;

    fn status(message: &str) -> AppStatus {
        let mut status = AppStatus::default();
        status.workloads.insert(
            "api".into(),
            WorkloadStatus {
                phase: Phase::Healthy,
                message: message.into(),
                ..Default::default()
            },
        );
        status
    }

    #[tokio::test]
    async fn a_file_store_round_trips_and_starts_empty() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uri = format!("file://{}/nested/status.json", dir.path().display());
        let mut store = StatusStore::open(&uri, None).expect("file URI");
        assert_eq!(store.load().await.expect("load"), None);
        store.save(&status("first")).await.expect("save");
        store.save(&status("second")).await.expect("save");
        let loaded = store.load().await.expect("load").expect("some status");
        assert_eq!(loaded.workloads["api"].message, "second");
    }

    fn memory_blob() -> Blob {
        Blob::new(Arc::new(MemoryStore::new()), "status.json")
    }

    #[tokio::test]
    async fn a_second_writer_loses_with_a_conflict_and_changes_nothing() {
        let blob = memory_blob();
        let mut first = StatusStore::with_blob("memory:status.json", blob.clone());
        let mut second = StatusStore::with_blob("memory:status.json", blob.clone());
        assert_eq!(first.load().await.expect("load"), None);
        assert_eq!(second.load().await.expect("load"), None);

        first.save(&status("first")).await.expect("the first write");
        let lost = second.save(&status("second")).await;

        assert!(
            matches!(lost, Err(StatusStoreError::Conflict { .. })),
            "{lost:?}"
        );
        let stored = first.load().await.expect("load").expect("some status");
        assert_eq!(stored.workloads["api"].message, "first");
        // After the conflict the loser re-reads, and then writes over what it read.
        second.load().await.expect("re-read");
        second.save(&status("second")).await.expect("now current");
        first.save(&status("third")).await.expect_err("now stale");
    }

    #[tokio::test]
    async fn a_store_that_never_read_learns_the_version_before_writing() {
        let blob = memory_blob();
        blob.put(b"not status JSON".to_vec(), PutMode::Create)
            .await
            .expect("seed");
        let mut store = StatusStore::with_blob("memory:status.json", blob.clone());

        // No load first: a blind Create would fail; a damaged status is still replaced.
        store.save(&status("fresh")).await.expect("written over it");

        let loaded = store.load().await.expect("load").expect("some status");
        assert_eq!(loaded.workloads["api"].message, "fresh");
    }

    #[test]
    fn ssm_is_refused_for_status_with_the_reason() {
        let err = StatusStore::open("ssm:/tugboat/status", None).expect_err("too small");
        assert!(err.to_string().contains("8 KiB"), "{err}");
    }

    #[test]
    fn unsupported_and_incomplete_uris_are_refused_by_name() {
        let err = StatusStore::open("http://x/status", None).expect_err("unsupported");
        assert!(err.to_string().contains("http://x/status"), "{err}");
        assert!(matches!(
            StatusStore::open("s3://bucket-only", None),
            Err(StatusStoreError::UnsupportedUri { .. })
        ));
        #[cfg(feature = "aws")]
        assert!(matches!(
            StatusStore::open("s3://b/k", None),
            Err(StatusStoreError::NoS3Client { .. })
        ));
    }

    #[cfg(not(feature = "aws"))]
    #[test]
    fn an_s3_status_in_a_build_without_aws_says_how_to_get_one() {
        let err = StatusStore::open("s3://b/k", None).expect_err("no AWS in this build");
        assert!(
            matches!(err, StatusStoreError::Open(BlobError::NotBuilt { .. })),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains("s3://b/k"), "{message}");
        assert!(message.contains("`aws` cargo feature"), "{message}");
    }
}
