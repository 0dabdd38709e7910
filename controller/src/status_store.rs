//! Where the application's status is persisted, so the CLI can read it without reaching
//! the controller: an S3 object or a local file, chosen by `spec.status.uri`.
//!
//! Guarantees:
//! - S3 writes are conditional: `If-Match` on the ETag this store last read or wrote
//!   (`If-None-Match: *` when the object did not exist), so two controllers cannot
//!   silently overwrite each other. A lost race is [`StatusStoreError::Conflict`]: the
//!   caller re-reads and plans again from what the other writer left.
//! - File writes are atomic (write a sibling, then rename): a reader sees the old or the
//!   new status, never half of one.

use std::path::PathBuf;

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

use crate::status::AppStatus;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusStoreError {
    #[error("status URI {uri:?} is not supported; use s3://bucket/key or file://path")]
    UnsupportedUri { uri: String },
    #[error("status URI {uri} is on S3 but no S3 client was given")]
    NoS3Client { uri: String },
    #[error("reading status from {uri}")]
    Read {
        uri: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
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
pub enum StatusStore {
    File {
        path: PathBuf,
    },
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
        /// ETag of the object as last read or written; `None` if it did not exist.
        etag: Option<String>,
        /// Whether `etag` reflects a read or write (else the first save must read first).
        known: bool,
    },
}

impl StatusStore {
    /// Opens the store named by `uri`. `s3` is needed only for `s3://` URIs.
    pub fn open(uri: &str, s3: Option<aws_sdk_s3::Client>) -> Result<Self, StatusStoreError> {
        if let Some(path) = uri.strip_prefix("file://") {
            return Ok(StatusStore::File { path: path.into() });
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .filter(|(b, k)| !b.is_empty() && !k.is_empty())
                .ok_or_else(|| StatusStoreError::UnsupportedUri {
                    uri: uri.to_string(),
                })?;
            let client = s3.ok_or_else(|| StatusStoreError::NoS3Client {
                uri: uri.to_string(),
            })?;
            return Ok(StatusStore::S3 {
                client,
                bucket: bucket.to_string(),
                key: key.to_string(),
                etag: None,
                known: false,
            });
        }
        Err(StatusStoreError::UnsupportedUri {
            uri: uri.to_string(),
        })
    }

    pub fn uri(&self) -> String {
        match self {
            StatusStore::File { path } => format!("file://{}", path.display()),
            StatusStore::S3 { bucket, key, .. } => format!("s3://{bucket}/{key}"),
        }
    }

    /// Reads the persisted status; `None` when nothing was persisted yet.
    pub async fn load(&mut self) -> Result<Option<AppStatus>, StatusStoreError> {
        let uri = self.uri();
        let bytes = match self {
            StatusStore::File { path } => match tokio::fs::read(&path).await {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => {
                    return Err(StatusStoreError::Read {
                        uri,
                        source: Box::new(e),
                    });
                }
            },
            StatusStore::S3 {
                client,
                bucket,
                key,
                etag,
                known,
            } => {
                let result = client.get_object().bucket(&*bucket).key(&*key).send().await;
                let output = match result {
                    Ok(output) => output,
                    Err(SdkError::ServiceError(e)) if e.err().is_no_such_key() => {
                        *etag = None;
                        *known = true;
                        return Ok(None);
                    }
                    Err(e) => {
                        return Err(StatusStoreError::Read {
                            uri,
                            source: Box::new(e),
                        });
                    }
                };
                *etag = output.e_tag().map(str::to_string);
                *known = true;
                output
                    .body
                    .collect()
                    .await
                    .map_err(|e| StatusStoreError::Read {
                        uri: uri.clone(),
                        source: Box::new(e),
                    })?
                    .into_bytes()
                    .to_vec()
            }
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| StatusStoreError::Parse { uri, source })
    }

    /// Writes `status`. On S3 the write only succeeds if nobody else wrote since this
    /// store last read or wrote.
    pub async fn save(&mut self, status: &AppStatus) -> Result<(), StatusStoreError> {
        let uri = self.uri();
        let body = serde_json::to_vec_pretty(status).map_err(|e| StatusStoreError::Write {
            uri: uri.clone(),
            source: Box::new(e),
        })?;
        if let StatusStore::S3 { known: false, .. } = self {
            // Never write blind: learn the current ETag first.
            self.load().await?;
        }
        match self {
            StatusStore::File { path } => {
                let mut tmp = path.clone().into_os_string();
                tmp.push(".tmp");
                let write = async {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        tokio::fs::create_dir_all(dir).await?;
                    }
                    tokio::fs::write(&tmp, &body).await?;
                    tokio::fs::rename(&tmp, &path).await
                };
                write.await.map_err(|e| StatusStoreError::Write {
                    uri,
                    source: Box::new(e),
                })
            }
            StatusStore::S3 {
                client,
                bucket,
                key,
                etag,
                known,
            } => {
                let mut request = client
                    .put_object()
                    .bucket(&*bucket)
                    .key(&*key)
                    .content_type("application/json")
                    .body(body.into());
                request = match etag.as_deref() {
                    Some(tag) => request.if_match(tag),
                    None => request.if_none_match("*"),
                };
                match request.send().await {
                    Ok(output) => {
                        *etag = output.e_tag().map(str::to_string);
                        Ok(())
                    }
                    Err(e) if is_precondition_failure(&e) => {
                        *known = false;
                        Err(StatusStoreError::Conflict { uri })
                    }
                    Err(e) => Err(StatusStoreError::Write {
                        uri,
                        source: Box::new(e),
                    }),
                }
            }
        }
    }
}

fn is_precondition_failure<E: ProvideErrorMetadata>(err: &SdkError<E>) -> bool {
    // 412 PreconditionFailed: the ETag moved. 409 ConditionalRequestConflict: a
    // concurrent conditional write is in flight.
    crate::aws::is_precondition_failed(err) || err.code() == Some("ConditionalRequestConflict")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::{Phase, WorkloadStatus};

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

    #[test]
    fn unsupported_and_incomplete_uris_are_refused_by_name() {
        let err = StatusStore::open("http://x/status", None).expect_err("unsupported");
        assert!(err.to_string().contains("http://x/status"), "{err}");
        assert!(matches!(
            StatusStore::open("s3://bucket-only", None),
            Err(StatusStoreError::UnsupportedUri { .. })
        ));
        assert!(matches!(
            StatusStore::open("s3://b/k", None),
            Err(StatusStoreError::NoS3Client { .. })
        ));
    }
}
