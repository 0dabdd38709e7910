//! Where the desired document lives, chosen by URI: `s3://bucket/key`, `ssm:/name` or
//! `file://path`. Reading it cheaply and often ([`DocumentSource::fetch`]), writing it
//! safely ([`DocumentSource::publish`], behind `tugboat apply`), and watching it
//! ([`Watcher`]). A typed layer on [`crate::blob`]: the store reads and writes bytes,
//! this module turns them into documents and its errors into what an operator does.
//!
//! Guarantees:
//! - Each revision is identified: the S3 ETag, the SSM parameter version, or the SHA-256
//!   of a file. An unchanged document costs one cheap call (a conditional GET that
//!   answers 304, one GetParameter, one file read) and is reported as
//!   [`Fetched::Unchanged`].
//! - Documents larger than [`MAX_DOCUMENT_BYTES`] are refused before they are read
//!   whole, so a wrong URI cannot exhaust memory.
//! - Errors name the URI and say what to do: `bucket "x" does not exist`,
//!   `parameter "/x" not found: create it with tugboat apply`, `access denied reading
//!   s3://… — the caller needs s3:GetObject`.
//! - The [`Watcher`] hands out only documents that loaded and validated; an invalid
//!   revision or an unreadable source leaves the last good document in force and is
//!   kept as a [`Problem`] for the status. A failed read never hides an invalid
//!   revision: it is reported beside it until a read finds another revision.
//! - Writes never silently overwrite a concurrent writer on S3 or files (the store's
//!   `Create` / `Update(version)`). SSM has no conditional write: there the expected
//!   revision is checked just before writing, which narrows the race but cannot close it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "aws")]
use aws_config::SdkConfig;
use tokio::time::Instant;

use crate::blob::{self, Blob, BlobError, GetOptions, GetResult, PutMode, Version};
use crate::document::Application;
use crate::validate::ValidationErrors;

/// The largest document tugboat reads: validation's own limit, enforced here before the
/// bytes are fetched whole.
pub const MAX_DOCUMENT_BYTES: u64 = crate::validate::MAX_DOCUMENT_BYTES as u64;
pub use blob::{SSM_ADVANCED_MAX_BYTES, SSM_STANDARD_MAX_BYTES};

/// A parsed document location: the one URI parser of [`crate::blob`].
pub type SourceUri = blob::BlobUri;

/// Everything that can go wrong reading or writing a document location.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error("bucket {bucket:?} does not exist ({uri}): create it, or fix the bucket in the URI")]
    BucketNotFound { bucket: String, uri: String },

    #[error("no document at {uri}: upload one with `tugboat apply -f FILE --to {uri}`")]
    DocumentNotFound { uri: String },

    #[error("parameter {name:?} not found: create it with `tugboat apply -f FILE --to ssm:{name}`")]
    ParameterNotFound { name: String },

    #[error("access denied {doing} {uri} — {needs} ({detail})")]
    AccessDenied {
        doing: &'static str,
        uri: String,
        /// Who needs which permission, e.g. `the caller needs s3:GetObject`.
        needs: &'static str,
        detail: String,
    },

    #[error("the document at {uri} is {size} bytes; documents are limited to {limit} bytes")]
    TooLarge { uri: String, size: u64, limit: u64 },

    #[error(
        "the document is {size} bytes; an SSM parameter holds at most {SSM_ADVANCED_MAX_BYTES} bytes \
         (Standard tier 4 KiB, Advanced 8 KiB): store it in S3 instead ({uri})"
    )]
    TooLargeForSsm { uri: String, size: usize },

    #[error("the document at {uri} is not UTF-8 text")]
    NotUtf8 { uri: String },

    #[error(
        "the document at {uri} changed since revision {expected}; re-run apply \
         (or pass the current revision with --expect-revision after reviewing it)"
    )]
    Conflict { uri: String, expected: String },

    #[error(
        "a document already exists at {uri}; pass --expect-revision with its revision to replace it"
    )]
    AlreadyExists { uri: String },

    /// A bad URI, a transient failure (throttling, 5xx, a dropped connection), or anything
    /// else the store reports; the store's message says what to do.
    #[error(transparent)]
    Store(#[from] BlobError),
}

impl SourceError {
    /// Worth trying again later without anyone changing anything (throttling, 5xx,
    /// network); everything else needs a person.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::Store(err) if err.is_transient())
    }

    /// A store error, in the document's terms. `writing` tells a too-large write (where
    /// SSM's limit is the one that matters) from a too-large read.
    fn from_blob(uri: &SourceUri, err: BlobError, writing: bool) -> Self {
        match err {
            BlobError::NotFound { uri: text } => match uri {
                SourceUri::Ssm { name } => SourceError::ParameterNotFound { name: name.clone() },
                _ => SourceError::DocumentNotFound { uri: text },
            },
            BlobError::BucketNotFound { bucket, uri } => {
                SourceError::BucketNotFound { bucket, uri }
            }
            BlobError::AccessDenied {
                doing,
                uri,
                needs,
                detail,
            } => SourceError::AccessDenied {
                doing,
                uri,
                needs,
                detail,
            },
            BlobError::TooLarge {
                uri: text, size, ..
            } if writing && matches!(uri, SourceUri::Ssm { .. }) => SourceError::TooLargeForSsm {
                uri: text,
                size: size as usize,
            },
            BlobError::TooLarge {
                uri, size, limit, ..
            } => SourceError::TooLarge { uri, size, limit },
            BlobError::AlreadyExists { uri } => SourceError::AlreadyExists { uri },
            BlobError::Precondition { uri, expected } => SourceError::Conflict {
                uri,
                expected: expected.into_string(),
            },
            other => SourceError::Store(other),
        }
    }
}

/// The outcome of one read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    /// Same revision as the last read.
    Unchanged,
    /// A revision this source has not returned last time (or the first read).
    Changed { text: String, revision: String },
}

/// What the writer expects to find before it writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Expect {
    /// Whatever is there now: read its revision, then write only if it still holds
    /// (`Update(current)`, or `Create` if there is none). Two writers racing cannot both
    /// win (on SSM, see [`crate::blob::ssm`]); a writer that started later overwrites one
    /// that finished earlier.
    #[default]
    Current,
    /// Exactly this revision (the ETag, SSM version or `sha256:` a caller last saw):
    /// `Update(revision)`.
    Revision(String),
    /// No document yet: `Create`.
    Absent,
}

/// One document location and the revision last read from it.
#[derive(Debug)]
pub struct DocumentSource {
    uri: SourceUri,
    blob: Blob,
    last_revision: Option<Version>,
}

impl DocumentSource {
    /// A source using clients built from `config`.
    #[cfg(feature = "aws")]
    pub fn new(uri: SourceUri, config: &SdkConfig) -> Self {
        let blob = uri.open_with_config(config);
        Self::with_blob(uri, blob)
    }

    /// A source reading `blob`, named `uri` in messages: for tests (a
    /// [`crate::blob::memory::MemoryStore`]) and callers that built the store themselves.
    pub fn with_blob(uri: SourceUri, blob: Blob) -> Self {
        Self {
            uri,
            blob,
            last_revision: None,
        }
    }

    /// Parses `uri` and, only for S3 and SSM, loads the AWS configuration
    /// ([`crate::aws::sdk_config`]) with `region` overriding the region chain.
    pub async fn open(uri: &str, region: Option<&str>) -> Result<Self, SourceError> {
        let uri: SourceUri = uri.parse()?;
        let blob = uri.open(region).await?;
        Ok(Self::with_blob(uri, blob))
    }

    pub fn uri(&self) -> &SourceUri {
        &self.uri
    }

    /// The revision the last successful fetch returned.
    pub fn last_revision(&self) -> Option<&str> {
        self.last_revision.as_ref().map(Version::as_str)
    }

    /// Makes the next fetch read the document whole, even if unchanged (the periodic
    /// resync).
    pub fn forget_revision(&mut self) {
        self.last_revision = None;
    }

    /// Reads the document if it changed since the last fetch.
    pub async fn fetch(&mut self) -> Result<Fetched, SourceError> {
        let options = GetOptions {
            if_none_match: self.last_revision.as_ref(),
            max_bytes: MAX_DOCUMENT_BYTES,
        };
        let read = self
            .blob
            .get_opts(options)
            .await
            .map_err(|err| SourceError::from_blob(&self.uri, err, false))?;
        let (bytes, version) = match read {
            GetResult::NotModified => return Ok(Fetched::Unchanged),
            GetResult::Found { bytes, version } => (bytes, version),
        };
        if self.last_revision.as_ref() == Some(&version) {
            return Ok(Fetched::Unchanged);
        }
        let text = String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 {
            uri: self.uri.to_string(),
        })?;
        self.last_revision = Some(version.clone());
        Ok(Fetched::Changed {
            text,
            revision: version.into_string(),
        })
    }

    /// Writes `text` as the new document and returns its revision. The caller validates
    /// first; this only stores bytes.
    pub async fn publish(&self, text: &str, expect: &Expect) -> Result<String, SourceError> {
        let writing = |err| SourceError::from_blob(&self.uri, err, true);
        let mode = match expect {
            Expect::Revision(revision) => PutMode::Update(Version::new(revision.as_str())),
            Expect::Absent => PutMode::Create,
            Expect::Current => match self.blob.head().await {
                Ok(current) => PutMode::Update(current),
                // A missing bucket also lands here (a HEAD 404 has no body); the write
                // below then names it.
                Err(BlobError::NotFound { .. }) => PutMode::Create,
                Err(err) => return Err(writing(err)),
            },
        };
        let created_meanwhile = matches!(expect, Expect::Current) && mode == PutMode::Create;
        match self.blob.put(text.as_bytes().to_vec(), mode).await {
            Ok(version) => Ok(version.into_string()),
            // Nothing was there when apply looked, and something is now: a concurrent
            // apply won, which is a conflict, not a reason to pass --expect-revision.
            Err(BlobError::AlreadyExists { uri }) if created_meanwhile => {
                Err(SourceError::Conflict {
                    uri,
                    expected: "none (the document was created meanwhile)".to_owned(),
                })
            }
            Err(err) => Err(writing(err)),
        }
    }
}

/// Many documents under one prefix: `s3://bucket/prefix/` (every `.yaml`, `.yml` or
/// `.json` object under it) or `ssm:/path/` (every parameter under the path,
/// recursively). One controller reconciles each as its own application
/// ([`crate::runtime::fleet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSet {
    S3 { bucket: String, prefix: String },
    Ssm { path: String },
}

impl DocumentSet {
    /// A prefix URI (ending in `/`), or `None` for a single document's URI.
    pub fn parse(uri: &str) -> Option<DocumentSet> {
        if !uri.ends_with('/') {
            return None;
        }
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/')?;
            if bucket.is_empty() {
                return None;
            }
            return Some(DocumentSet::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        let path = uri.strip_prefix("ssm:")?;
        path.starts_with('/').then(|| DocumentSet::Ssm {
            path: path.to_string(),
        })
    }

    /// The URIs of the documents under the prefix now, sorted. A missing bucket or an
    /// empty prefix is an error or an empty list, never a panic; the caller keeps the
    /// applications it already runs either way (a source that disappears keeps its last
    /// good document in force).
    #[cfg(feature = "aws")]
    pub async fn list(&self, config: &SdkConfig) -> Result<Vec<String>, SourceError> {
        let mut uris = Vec::new();
        match self {
            DocumentSet::S3 { bucket, prefix } => {
                let client = crate::aws::s3(config);
                let mut pages = client
                    .list_objects_v2()
                    .bucket(bucket)
                    .prefix(prefix)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| list_error(self, e))?;
                    for object in page.contents() {
                        let Some(key) = object.key() else { continue };
                        if is_document_key(key) {
                            uris.push(format!("s3://{bucket}/{key}"));
                        }
                    }
                }
            }
            DocumentSet::Ssm { path } => {
                let client = crate::aws::ssm(config);
                let mut pages = client
                    .get_parameters_by_path()
                    .path(path.trim_end_matches('/'))
                    .recursive(true)
                    .into_paginator()
                    .send();
                while let Some(page) = pages.next().await {
                    let page = page.map_err(|e| list_error(self, e))?;
                    for parameter in page.parameters() {
                        if let Some(name) = parameter.name() {
                            uris.push(format!("ssm:{name}"));
                        }
                    }
                }
            }
        }
        uris.sort();
        Ok(uris)
    }
}

impl fmt::Display for DocumentSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DocumentSet::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            DocumentSet::Ssm { path } => write!(f, "ssm:{path}"),
        }
    }
}

/// Keys under an S3 prefix that are documents (not the lease, not a status file).
#[cfg(any(feature = "aws", test))]
fn is_document_key(key: &str) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    !name.starts_with('.')
        && (name.ends_with(".yaml") || name.ends_with(".yml") || name.ends_with(".json"))
        && !name.ends_with(".status.json")
}

/// A failed listing, in the source's terms.
#[cfg(feature = "aws")]
fn list_error<E>(
    set: &DocumentSet,
    err: aws_smithy_runtime_api::client::result::SdkError<
        E,
        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
    >,
) -> SourceError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
    let uri = set.to_string();
    if err.code() == Some("NoSuchBucket")
        && let DocumentSet::S3 { bucket, .. } = set
    {
        return SourceError::BucketNotFound {
            bucket: bucket.clone(),
            uri,
        };
    }
    let needs = match set {
        DocumentSet::S3 { .. } => "the controller role needs s3:ListBucket on the bucket",
        DocumentSet::Ssm { .. } => "the controller role needs ssm:GetParametersByPath on the path",
    };
    let detail = crate::aws::describe(&err);
    SourceError::Store(BlobError::from_sdk(
        crate::aws::classify(&err),
        "listing",
        uri,
        needs,
        detail,
        Box::new(err),
    ))
}

/// The revision of a file (or of content without an ETag): `sha256:<hex>`.
pub fn content_revision(bytes: &[u8]) -> String {
    blob::content_version(bytes).into_string()
}

/// Parses and validates a document ([`crate::validate::load`]). The one entry point
/// `apply` and the [`Watcher`] use, so both accept exactly the same documents.
pub fn load_document(text: &str, origin: &str) -> Result<Application, ValidationErrors> {
    crate::validate::load(text, origin)
}

/// How often a [`Watcher`] looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// Time between two reads. A change is seen within this time. Default 1 s.
    pub poll: Duration,
    /// Time between two full reads that bypass the revision check, so the loop re-plans
    /// from scratch even when nothing changed (and a missed change cannot persist).
    /// Default 30 s.
    pub resync: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            resync: Duration::from_secs(30),
        }
    }
}

/// The document the controller acts on.
#[derive(Debug, Clone)]
pub struct InForce {
    pub document: Arc<Application>,
    pub revision: String,
}

/// Why the document in force is not what the source holds now.
///
/// An invalid revision is forgotten only when the source is read and holds something
/// else (a valid revision, or another invalid one). A failed read never replaces it: it
/// is kept beside it ([`Problem::InvalidAndUnreadable`]), because the source most likely
/// still holds the invalid revision and the operator must keep seeing that.
#[derive(Debug, Clone)]
pub enum Problem {
    /// The source could not be read (and nothing invalid was read before).
    Unreadable(Arc<SourceError>),
    /// The source holds `revision`, which does not load.
    Invalid {
        revision: String,
        error: ValidationErrors,
    },
    /// The last successful read found `revision`, which does not load, and the latest
    /// read failed.
    InvalidAndUnreadable {
        revision: String,
        error: ValidationErrors,
        read: Arc<SourceError>,
    },
}

impl Problem {
    /// The revision the source holds that does not load, if that is part of the problem.
    pub fn invalid_revision(&self) -> Option<&str> {
        match self {
            Problem::Invalid { revision, .. } | Problem::InvalidAndUnreadable { revision, .. } => {
                Some(revision)
            }
            Problem::Unreadable(_) => None,
        }
    }

    /// The error of the latest read, if it failed.
    pub fn read_error(&self) -> Option<&SourceError> {
        match self {
            Problem::Unreadable(err) | Problem::InvalidAndUnreadable { read: err, .. } => Some(err),
            Problem::Invalid { .. } => None,
        }
    }

    /// The problem after a failed read: the read error, beside an invalid revision if
    /// there is one.
    fn after_read_error(previous: Option<Problem>, err: SourceError) -> Problem {
        let read = Arc::new(err);
        match previous {
            Some(
                Problem::Invalid { revision, error }
                | Problem::InvalidAndUnreadable {
                    revision, error, ..
                },
            ) => Problem::InvalidAndUnreadable {
                revision,
                error,
                read,
            },
            Some(Problem::Unreadable(_)) | None => Problem::Unreadable(read),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(err) => write!(f, "{err}"),
            Problem::Invalid { error, .. } => write!(f, "{error}"),
            Problem::InvalidAndUnreadable {
                revision,
                error,
                read,
            } => write!(
                f,
                "{error}\n(revision {revision} is still the latest read: reading the source \
                 again failed: {read})"
            ),
        }
    }
}

/// What one [`Watcher::next`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    /// Nothing new.
    Unchanged,
    /// A new valid document is in force.
    Applied { revision: String },
    /// The periodic resync: same document, plan a full pass with it.
    Resync,
    /// The source holds `revision`, which is invalid; the last good document stays in
    /// force and [`Watcher::problem`] says what is wrong. Also reported when the source
    /// is readable again after a failed read and still holds that invalid revision.
    Rejected { revision: String },
    /// The source could not be read; the last good document stays in force.
    /// [`Watcher::problem`] names the read error, and keeps an invalid revision read
    /// before it (the source most likely still holds it).
    Unreadable,
    /// The source is readable again and holds the document in force: no problem is left.
    Recovered,
}

/// Polls a [`DocumentSource`] and keeps the latest valid document.
///
/// Pull-based: the loop calls [`Watcher::next`], typically in a `tokio::select!` with its
/// other triggers. `next` is cancel-safe: a cancelled call loses no state, and a resync
/// that was due stays due.
#[derive(Debug)]
pub struct Watcher {
    source: DocumentSource,
    config: WatchConfig,
    in_force: Option<InForce>,
    problem: Option<Problem>,
    /// `None` until the first read, which happens at once.
    next_poll: Option<Instant>,
    next_resync: Option<Instant>,
}

impl Watcher {
    pub fn new(source: DocumentSource, config: WatchConfig) -> Self {
        Self {
            source,
            config,
            in_force: None,
            problem: None,
            next_poll: None,
            next_resync: None,
        }
    }

    pub fn source(&self) -> &DocumentSource {
        &self.source
    }

    /// The last valid document, if any was ever read.
    pub fn in_force(&self) -> Option<&InForce> {
        self.in_force.as_ref()
    }

    /// What is wrong with the source right now, for the status. After every
    /// [`Watcher::next`] this is the whole truth: a consumer that publishes it after each
    /// update (rather than clearing on some variants) shows exactly what is wrong.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// Waits until the next read is due, reads, and reports what changed.
    pub async fn next(&mut self) -> Update {
        if let Some(at) = self.next_poll {
            tokio::time::sleep_until(at).await;
        }
        let started = Instant::now();
        let resync_due = self.next_resync.is_some_and(|at| started >= at);
        if resync_due {
            self.source.forget_revision();
        }
        let fetched = self.source.fetch().await;
        // Measured from the start of the read so slow reads do not stretch the period.
        self.next_poll = Some(started + self.config.poll);
        if resync_due || self.next_resync.is_none() {
            self.next_resync = Some(started + self.config.resync);
        }
        self.absorb(fetched, resync_due)
    }

    fn absorb(&mut self, fetched: Result<Fetched, SourceError>, resync: bool) -> Update {
        match fetched {
            Err(err) => {
                self.problem = Some(Problem::after_read_error(self.problem.take(), err));
                Update::Unreadable
            }
            Ok(Fetched::Unchanged) => match self.problem.take() {
                Some(Problem::Unreadable(_)) => Update::Recovered,
                // Readable again, and still the invalid revision: report it again, so a
                // consumer that replaced the problem with the read error shows the
                // invalid document once more.
                Some(Problem::InvalidAndUnreadable {
                    revision, error, ..
                }) => {
                    self.problem = Some(Problem::Invalid {
                        revision: revision.clone(),
                        error,
                    });
                    Update::Rejected { revision }
                }
                kept => {
                    self.problem = kept;
                    Update::Unchanged
                }
            },
            Ok(Fetched::Changed { text, revision }) => {
                let in_force_revision = self.in_force.as_ref().map(|f| f.revision.as_str());
                if in_force_revision == Some(revision.as_str()) {
                    // The source holds the document in force again: whatever was wrong
                    // (an invalid revision included) is over.
                    return match self.problem.take() {
                        Some(_) => Update::Recovered,
                        None if resync => Update::Resync,
                        None => Update::Unchanged,
                    };
                }
                let origin = format!("{} (revision {revision})", self.source.uri());
                match load_document(&text, &origin) {
                    Ok(document) => {
                        self.in_force = Some(InForce {
                            document: Arc::new(document),
                            revision: revision.clone(),
                        });
                        self.problem = None;
                        Update::Applied { revision }
                    }
                    Err(error) => {
                        self.problem = Some(Problem::Invalid {
                            revision: revision.clone(),
                            error,
                        });
                        Update::Rejected { revision }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobStore;
    use crate::blob::memory::MemoryStore;

    /// A minimal valid document; `image` makes revisions differ.
    fn document(image: &str) -> String {
        format!(
            "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata:
  name: demo
  environment: test
spec:
  platform:
    local:
      listen: 127.0.0.1:8080
  workloads:
    - name: backend
      image: {image}
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8000
      strategy:
        rolling: {{}}
"
        )
    }

    async fn file_watcher(dir: &tempfile::TempDir, text: &str) -> (Watcher, std::path::PathBuf) {
        let path = dir.path().join("app.yaml");
        std::fs::write(&path, text).expect("write the test document");
        let source = DocumentSource::open(&format!("file://{}", path.display()), None)
            .await
            .expect("a file URI opens without AWS");
        (Watcher::new(source, WatchConfig::default()), path)
    }

    fn image_in_force(watcher: &Watcher) -> Option<String> {
        watcher
            .in_force()
            .map(|f| f.document.spec.workloads[0].image.clone())
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_read_is_immediate_and_later_reads_wait_one_poll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut watcher, _) = file_watcher(&dir, &document("backend:1")).await;
        let start = Instant::now();

        assert!(matches!(watcher.next().await, Update::Applied { .. }));
        assert_eq!(start.elapsed(), Duration::ZERO);

        assert_eq!(watcher.next().await, Update::Unchanged);
        assert_eq!(start.elapsed(), Duration::from_secs(1));
        assert_eq!(image_in_force(&watcher).as_deref(), Some("backend:1"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_file_is_applied_on_the_next_poll() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut watcher, path) = file_watcher(&dir, &document("backend:1")).await;
        watcher.next().await;

        std::fs::write(&path, document("backend:2")).expect("rewrite");
        let update = watcher.next().await;

        let expected = content_revision(document("backend:2").as_bytes());
        assert_eq!(update, Update::Applied { revision: expected });
        assert_eq!(image_in_force(&watcher).as_deref(), Some("backend:2"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_invalid_revision_keeps_the_last_good_document_in_force() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut watcher, path) = file_watcher(&dir, &document("backend:1")).await;
        watcher.next().await;

        let broken = document("backend:2").replace("cpu: 256", "cpus: 256");
        std::fs::write(&path, &broken).expect("rewrite");
        let update = watcher.next().await;

        assert!(matches!(update, Update::Rejected { .. }), "{update:?}");
        assert_eq!(image_in_force(&watcher).as_deref(), Some("backend:1"));
        let problem = watcher
            .problem()
            .expect("the rejection is kept")
            .to_string();
        assert!(problem.contains("cpus"), "{problem}");
        // Not re-reported on every poll while the source keeps the same bad revision.
        assert_eq!(watcher.next().await, Update::Unchanged);
        assert!(watcher.problem().is_some());

        std::fs::write(&path, document("backend:3")).expect("fix");
        assert!(matches!(watcher.next().await, Update::Applied { .. }));
        assert!(watcher.problem().is_none());
        assert_eq!(image_in_force(&watcher).as_deref(), Some("backend:3"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_resync_is_reported_every_resync_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut watcher, _) = file_watcher(&dir, &document("backend:1")).await;
        let start = Instant::now();
        watcher.next().await;

        let mut resyncs_at = Vec::new();
        while start.elapsed() < Duration::from_secs(65) {
            if watcher.next().await == Update::Resync {
                resyncs_at.push(start.elapsed().as_secs());
            }
        }
        assert_eq!(resyncs_at, vec![30, 60]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_source_is_reported_and_recovers() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut watcher, path) = file_watcher(&dir, &document("backend:1")).await;
        watcher.next().await;

        std::fs::remove_file(&path).expect("remove");
        assert_eq!(watcher.next().await, Update::Unreadable);
        let problem = watcher.problem().expect("kept for the status").to_string();
        assert!(problem.contains("no document at file://"), "{problem}");
        assert_eq!(image_in_force(&watcher).as_deref(), Some("backend:1"));

        std::fs::write(&path, document("backend:1")).expect("restore");
        assert_eq!(watcher.next().await, Update::Recovered);
        assert!(watcher.problem().is_none());
    }

    #[tokio::test]
    async fn file_publish_replaces_atomically_and_checks_the_expected_revision() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("app.yaml");
        let source = DocumentSource::open(&format!("file://{}", path.display()), None)
            .await
            .expect("a file URI opens without AWS");

        let first = source
            .publish("one", &Expect::Absent)
            .await
            .expect("a new file");
        assert_eq!(first, content_revision(b"one"));
        let again = source.publish("two", &Expect::Absent).await;
        assert!(
            matches!(again, Err(SourceError::AlreadyExists { .. })),
            "{again:?}"
        );

        let stale = source
            .publish("two", &Expect::Revision(content_revision(b"zero")))
            .await;
        assert!(
            matches!(stale, Err(SourceError::Conflict { .. })),
            "{stale:?}"
        );

        let second = source
            .publish("two", &Expect::Revision(first))
            .await
            .expect("the expected revision matches");
        assert_eq!(second, content_revision(b"two"));
        assert_eq!(std::fs::read_to_string(&path).expect("read back"), "two");
        let leftovers = std::fs::read_dir(dir.path()).expect("list").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
    }

    /// A watcher on a memory store, so a test can script what the source answers.
    fn memory_watcher() -> (Watcher, Arc<MemoryStore>) {
        let store = Arc::new(MemoryStore::new());
        let blob = Blob::new(store.clone(), "app.yaml");
        let uri: SourceUri = "file:///scripted/app.yaml".parse().expect("a valid URI");
        let source = DocumentSource::with_blob(uri, blob);
        (Watcher::new(source, WatchConfig::default()), store)
    }

    async fn store_document(store: &MemoryStore, text: &str) -> String {
        store
            .put("app.yaml", text.as_bytes().to_vec(), PutMode::Overwrite)
            .await
            .expect("a memory write")
            .into_string()
    }

    /// Issue 7: a transient read error while the source holds an invalid revision must
    /// not clear `DocumentInvalid`. Before the fix the read error replaced the problem,
    /// and the next read (304, same revision) reported `Recovered`, so the feeder in
    /// cli/run.rs cleared the condition while the source still held the invalid document.
    #[tokio::test(start_paused = true)]
    async fn a_transient_read_error_does_not_clear_document_invalid() {
        let (mut watcher, store) = memory_watcher();
        store_document(&store, &document("backend:1")).await;
        assert!(matches!(watcher.next().await, Update::Applied { .. }));
        let broken = document("backend:2").replace("cpu: 256", "cpus: 256");
        let invalid = store_document(&store, &broken).await;
        assert_eq!(
            watcher.next().await,
            Update::Rejected {
                revision: invalid.clone()
            }
        );

        // A throttled or dropped read: the invalid revision is still what the source holds.
        store.fail_next_get(store.transient("app.yaml"));
        assert_eq!(watcher.next().await, Update::Unreadable);
        let problem = watcher.problem().expect("still a problem");
        assert_eq!(problem.invalid_revision(), Some(invalid.as_str()));
        assert!(
            problem.read_error().is_some(),
            "the read error is kept beside it"
        );
        let text = problem.to_string();
        assert!(
            text.contains("cpus"),
            "the invalid document is still named: {text}"
        );
        assert!(
            text.contains("trying again later"),
            "and the read error: {text}"
        );

        // Readable again, same revision (NotModified): not a recovery. Rejected again; the
        // feed (runtime/feed.rs) republishes `problem()` after every update.
        let update = watcher.next().await;
        assert_eq!(
            update,
            Update::Rejected {
                revision: invalid.clone()
            }
        );
        let problem = watcher.problem().expect("the document is still invalid");
        assert_eq!(problem.invalid_revision(), Some(invalid.as_str()));
        assert!(problem.read_error().is_none(), "the read error is over");
        assert!(problem.to_string().contains("cpus"), "{problem}");
        assert_eq!(image_in_force(&watcher).as_deref(), Some("backend:1"));

        // Only a valid revision clears it.
        assert_eq!(watcher.next().await, Update::Unchanged);
        assert!(watcher.problem().is_some());
        store_document(&store, &document("backend:3")).await;
        assert!(matches!(watcher.next().await, Update::Applied { .. }));
        assert!(watcher.problem().is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_revision_after_a_read_error_replaces_the_invalid_one() {
        let (mut watcher, store) = memory_watcher();
        store_document(&store, &document("backend:1")).await;
        watcher.next().await;
        let first = document("backend:2").replace("cpu: 256", "cpus: 256");
        store_document(&store, &first).await;
        watcher.next().await;
        store.fail_next_get(store.transient("app.yaml"));
        watcher.next().await;

        let second = document("backend:3").replace("memory: 512", "memroy: 512");
        let revision = store_document(&store, &second).await;
        assert_eq!(
            watcher.next().await,
            Update::Rejected {
                revision: revision.clone()
            }
        );
        let problem = watcher.problem().expect("invalid").to_string();
        assert!(problem.contains("memroy"), "{problem}");
        assert!(
            !problem.contains("cpus"),
            "the older revision is gone: {problem}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_error_alone_still_recovers() {
        let (mut watcher, store) = memory_watcher();
        store_document(&store, &document("backend:1")).await;
        watcher.next().await;
        store.fail_next_get(store.transient("app.yaml"));
        assert_eq!(watcher.next().await, Update::Unreadable);
        let problem = watcher.problem().expect("unreadable");
        assert!(problem.invalid_revision().is_none());
        assert!(problem.read_error().is_some());

        assert_eq!(watcher.next().await, Update::Recovered);
        assert!(watcher.problem().is_none());
    }

    #[test]
    fn prefixes_are_document_sets_and_single_uris_are_not() {
        assert_eq!(
            DocumentSet::parse("s3://b/apps/"),
            Some(DocumentSet::S3 {
                bucket: "b".into(),
                prefix: "apps/".into()
            })
        );
        assert_eq!(
            DocumentSet::parse("ssm:/tugboat/apps/"),
            Some(DocumentSet::Ssm {
                path: "/tugboat/apps/".into()
            })
        );
        for single in [
            "s3://b/apps/one.yaml",
            "ssm:/tugboat/app",
            "file:///x/",
            "s3:///x/",
        ] {
            assert_eq!(DocumentSet::parse(single), None, "{single}");
        }
        assert!(is_document_key("apps/one.yaml"));
        assert!(is_document_key("apps/two.json"));
        assert!(!is_document_key("apps/.tugboat.lease"));
        assert!(!is_document_key("apps/one.status.json"));
        assert!(!is_document_key("apps/readme.md"));
    }

    #[test]
    fn file_revisions_are_sha256_of_the_content() {
        assert_eq!(
            content_revision(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
