//! Where the desired document lives, chosen by URI: `s3://bucket/key`, `ssm:/name` or
//! `file://path`. Reading it cheaply and often ([`DocumentSource::fetch`]), writing it
//! safely ([`DocumentSource::publish`], behind `tugboat apply`), and watching it
//! ([`Watcher`]).
//!
//! Guarantees:
//! - Each revision is identified: the S3 ETag, the SSM parameter version, or the SHA-256
//!   of a file. An unchanged document costs one cheap call (a conditional GET that
//!   answers 304, one GetParameter, one file read) and is reported as
//!   [`Fetched::Unchanged`].
//! - Documents larger than [`MAX_DOCUMENT_BYTES`] are refused before they are read
//!   whole, so a wrong URI cannot exhaust memory.
//! - Errors name the URI and say what to do: `bucket "x" does not exist`,
//!   `parameter "/x" not found`, `access denied reading s3://… — the controller role
//!   needs s3:GetObject`.
//! - The [`Watcher`] hands out only documents that loaded and validated; an invalid
//!   revision or an unreadable source leaves the last good document in force and is
//!   kept as a [`Problem`] for the status.
//! - Writes never silently overwrite a concurrent writer on S3 (conditional `If-Match` /
//!   `If-None-Match`). SSM and files have no conditional write: there the expected
//!   revision is checked just before writing, which narrows the race but cannot close it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::aws::{self, ErrorKind};
use crate::document::Application;
use crate::validate::ValidationErrors;

/// The largest document tugboat reads: validation's own limit, enforced here before the
/// bytes are fetched whole.
pub const MAX_DOCUMENT_BYTES: u64 = crate::validate::MAX_DOCUMENT_BYTES as u64;
/// SSM's Standard tier holds up to 4 KiB; Advanced (charged per parameter) up to 8 KiB.
pub const SSM_STANDARD_MAX_BYTES: usize = 4 * 1024;
pub const SSM_ADVANCED_MAX_BYTES: usize = 8 * 1024;

/// A parsed document location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceUri {
    /// `s3://bucket/key`
    S3 { bucket: String, key: String },
    /// `ssm:/name` (any SSM parameter name after `ssm:`)
    Ssm { name: String },
    /// `file://path`; `file:///abs/path` is absolute, `file://rel/path` relative.
    File { path: PathBuf },
}

impl SourceUri {
    /// Whether reading or writing this location talks to AWS.
    pub fn needs_aws(&self) -> bool {
        !matches!(self, SourceUri::File { .. })
    }
}

impl FromStr for SourceUri {
    type Err = SourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = |problem: &'static str| SourceError::MalformedUri {
            uri: text.to_owned(),
            problem,
        };
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, key) = rest
                .split_once('/')
                .ok_or_else(|| malformed("an S3 URI needs a key: s3://BUCKET/KEY"))?;
            if bucket.is_empty() {
                return Err(malformed("the bucket name is empty: s3://BUCKET/KEY"));
            }
            if key.is_empty() || key.ends_with('/') {
                return Err(malformed(
                    "the key names a folder, not an object: s3://BUCKET/KEY",
                ));
            }
            return Ok(SourceUri::S3 {
                bucket: bucket.to_owned(),
                key: key.to_owned(),
            });
        }
        if let Some(name) = text.strip_prefix("ssm:") {
            if name.is_empty() || name.starts_with("//") {
                return Err(malformed(
                    "an SSM URI is ssm: followed by the parameter name, e.g. ssm:/tugboat/prod/app",
                ));
            }
            return Ok(SourceUri::Ssm {
                name: name.to_owned(),
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(malformed(
                    "the path is empty: file:///abs/path or file://rel/path",
                ));
            }
            return Ok(SourceUri::File {
                path: PathBuf::from(path),
            });
        }
        Err(SourceError::UnsupportedUri {
            uri: text.to_owned(),
        })
    }
}

impl fmt::Display for SourceUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceUri::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            SourceUri::Ssm { name } => write!(f, "ssm:{name}"),
            SourceUri::File { path } => write!(f, "file://{}", path.display()),
        }
    }
}

/// Everything that can go wrong reading or writing a document location.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    #[error(
        "{uri:?} is not a document location: use s3://BUCKET/KEY, ssm:/PARAMETER or file://PATH"
    )]
    UnsupportedUri { uri: String },

    #[error("{uri:?}: {problem}")]
    MalformedUri { uri: String, problem: &'static str },

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
        /// Who needs which permission, e.g. `the controller role needs s3:GetObject`.
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

    #[error("{doing} {uri} failed: {detail}")]
    Aws {
        doing: &'static str,
        uri: String,
        kind: ErrorKind,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{doing} {} failed", path.display())]
    File {
        doing: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl SourceError {
    /// Worth trying again later without anyone changing anything (throttling, 5xx,
    /// network); everything else needs a person.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            SourceError::Aws {
                kind: ErrorKind::Throttling | ErrorKind::Transient,
                ..
            }
        )
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
    /// Whatever is there now: read its revision, then write only if it still holds.
    /// Two writers racing cannot both win; a writer that started later overwrites one
    /// that finished earlier. On SSM this is a plain overwrite.
    #[default]
    Current,
    /// Exactly this revision (the ETag, SSM version or `sha256:` a caller last saw).
    Revision(String),
    /// No document yet.
    Absent,
}

/// A location paired with the client that reaches it.
#[derive(Debug)]
enum Backend {
    S3 {
        client: aws_sdk_s3::Client,
        bucket: String,
        key: String,
    },
    Ssm {
        client: aws_sdk_ssm::Client,
        name: String,
    },
    File {
        path: PathBuf,
    },
}

/// One document location and the revision last read from it.
#[derive(Debug)]
pub struct DocumentSource {
    uri: SourceUri,
    backend: Backend,
    last_revision: Option<String>,
}

impl DocumentSource {
    /// A source using clients built from `config`.
    pub fn new(uri: SourceUri, config: &SdkConfig) -> Self {
        let backend = match &uri {
            SourceUri::S3 { bucket, key } => Backend::S3 {
                client: aws::s3(config),
                bucket: bucket.clone(),
                key: key.clone(),
            },
            SourceUri::Ssm { name } => Backend::Ssm {
                client: aws::ssm(config),
                name: name.clone(),
            },
            SourceUri::File { path } => Backend::File { path: path.clone() },
        };
        Self {
            uri,
            backend,
            last_revision: None,
        }
    }

    /// Parses `uri` and, only for S3 and SSM, loads the AWS configuration
    /// ([`aws::sdk_config`]) with `region` overriding the region chain.
    pub async fn open(uri: &str, region: Option<&str>) -> Result<Self, SourceError> {
        let uri: SourceUri = uri.parse()?;
        if let SourceUri::File { path } = &uri {
            let backend = Backend::File { path: path.clone() };
            return Ok(Self {
                uri,
                backend,
                last_revision: None,
            });
        }
        let config = aws::sdk_config(region).await;
        Ok(Self::new(uri, &config))
    }

    pub fn uri(&self) -> &SourceUri {
        &self.uri
    }

    /// The revision the last successful fetch returned.
    pub fn last_revision(&self) -> Option<&str> {
        self.last_revision.as_deref()
    }

    /// Makes the next fetch read the document whole, even if unchanged (the periodic
    /// resync).
    pub fn forget_revision(&mut self) {
        self.last_revision = None;
    }

    /// Reads the document if it changed since the last fetch.
    pub async fn fetch(&mut self) -> Result<Fetched, SourceError> {
        let read = match &self.backend {
            Backend::S3 {
                client,
                bucket,
                key,
            } => read_s3(client, bucket, key, self.last_revision.as_deref()).await?,
            Backend::Ssm { client, name } => read_ssm(client, name).await?,
            Backend::File { path } => read_file(path).await?,
        };
        let Some((text, revision)) = read else {
            return Ok(Fetched::Unchanged);
        };
        if self.last_revision.as_deref() == Some(revision.as_str()) {
            return Ok(Fetched::Unchanged);
        }
        self.last_revision = Some(revision.clone());
        Ok(Fetched::Changed { text, revision })
    }

    /// Writes `text` as the new document and returns its revision. The caller validates
    /// first; this only stores bytes.
    pub async fn publish(&self, text: &str, expect: &Expect) -> Result<String, SourceError> {
        match &self.backend {
            Backend::S3 {
                client,
                bucket,
                key,
            } => write_s3(client, bucket, key, text, expect).await,
            Backend::Ssm { client, name } => write_ssm(client, name, text, expect).await,
            Backend::File { path } => write_file(path, text, expect).await,
        }
    }
}

/// S3 wants ETags quoted (`"abc"`); people copy them with or without the quotes.
fn quoted_etag(etag: &str) -> String {
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

fn s3_uri(bucket: &str, key: &str) -> String {
    format!("s3://{bucket}/{key}")
}

/// Maps an S3 error to what the operator has to do about it.
fn s3_error<E>(
    err: SdkError<E, HttpResponse>,
    doing: &'static str,
    needs: &'static str,
    bucket: &str,
    key: &str,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let uri = s3_uri(bucket, key);
    let kind = aws::classify(&err);
    match (err.code(), kind) {
        (Some("NoSuchBucket"), _) => SourceError::BucketNotFound {
            bucket: bucket.to_owned(),
            uri,
        },
        (_, ErrorKind::NotFound) => SourceError::DocumentNotFound { uri },
        (_, ErrorKind::AccessDenied) => SourceError::AccessDenied {
            doing,
            uri,
            needs,
            detail: aws::describe(&err),
        },
        _ => SourceError::Aws {
            doing,
            uri,
            kind,
            detail: aws::describe(&err),
            source: Box::new(err),
        },
    }
}

fn ssm_error<E>(
    err: SdkError<E, HttpResponse>,
    doing: &'static str,
    needs: &'static str,
    name: &str,
) -> SourceError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let uri = format!("ssm:{name}");
    let kind = aws::classify(&err);
    match (err.code(), kind) {
        (Some("ParameterAlreadyExists"), _) => SourceError::AlreadyExists { uri },
        (_, ErrorKind::NotFound) => SourceError::ParameterNotFound {
            name: name.to_owned(),
        },
        (_, ErrorKind::AccessDenied) => SourceError::AccessDenied {
            doing,
            uri,
            needs,
            detail: aws::describe(&err),
        },
        _ => SourceError::Aws {
            doing,
            uri,
            kind,
            detail: aws::describe(&err),
            source: Box::new(err),
        },
    }
}

fn text_of(bytes: Vec<u8>, uri: impl FnOnce() -> String) -> Result<String, SourceError> {
    String::from_utf8(bytes).map_err(|_| SourceError::NotUtf8 { uri: uri() })
}

/// `None` when S3 answered 304 to `If-None-Match: last_etag`.
async fn read_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    last_etag: Option<&str>,
) -> Result<Option<(String, String)>, SourceError> {
    const DOING: &str = "reading";
    const NEEDS: &str = "the controller role needs s3:GetObject on the object \
                         (and s3:ListBucket on the bucket, or a missing key looks like this too)";
    let response = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_if_none_match(last_etag.map(quoted_etag))
        .send()
        .await;
    let mut object = match response {
        Ok(object) => object,
        Err(err) if aws::is_not_modified(&err) => return Ok(None),
        Err(err) => return Err(s3_error(err, DOING, NEEDS, bucket, key)),
    };
    let size = object.content_length().unwrap_or(0).max(0) as u64;
    if size > MAX_DOCUMENT_BYTES {
        return Err(SourceError::TooLarge {
            uri: s3_uri(bucket, key),
            size,
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let etag = object.e_tag().map(str::to_owned);
    // Read chunk by chunk so a body longer than its Content-Length still stops at the cap.
    let mut bytes = Vec::with_capacity(size as usize);
    loop {
        match object.body.try_next().await {
            Ok(Some(chunk)) => {
                bytes.extend_from_slice(&chunk);
                if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
                    return Err(SourceError::TooLarge {
                        uri: s3_uri(bucket, key),
                        size: bytes.len() as u64,
                        limit: MAX_DOCUMENT_BYTES,
                    });
                }
            }
            Ok(None) => break,
            Err(err) => {
                return Err(SourceError::Aws {
                    doing: DOING,
                    uri: s3_uri(bucket, key),
                    kind: ErrorKind::Transient,
                    detail: format!("the body was cut off: {err}"),
                    source: Box::new(err),
                });
            }
        }
    }
    // S3 always sends an ETag; fall back to the content hash rather than fail if a
    // compatible store does not.
    let revision = etag.unwrap_or_else(|| content_revision(&bytes));
    let text = text_of(bytes, || s3_uri(bucket, key))?;
    Ok(Some((text, revision)))
}

async fn read_ssm(
    client: &aws_sdk_ssm::Client,
    name: &str,
) -> Result<Option<(String, String)>, SourceError> {
    let output = client
        .get_parameter()
        .name(name)
        // A SecureString document needs it; for a String it is ignored.
        .with_decryption(true)
        .send()
        .await
        .map_err(|err| {
            ssm_error(
                err,
                "reading",
                "the controller role needs ssm:GetParameter (and kms:Decrypt for a SecureString)",
                name,
            )
        })?;
    let Some(parameter) = output.parameter else {
        return Err(SourceError::ParameterNotFound {
            name: name.to_owned(),
        });
    };
    let text = parameter.value.unwrap_or_default();
    Ok(Some((text, parameter.version.to_string())))
}

/// The revision of a file (or of content without an ETag): `sha256:<hex>`.
pub fn content_revision(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn file_error(path: &Path, doing: &'static str, err: io::Error) -> SourceError {
    let uri = format!("file://{}", path.display());
    match err.kind() {
        io::ErrorKind::NotFound => SourceError::DocumentNotFound { uri },
        _ => SourceError::File {
            doing,
            path: path.to_owned(),
            source: err,
        },
    }
}

async fn read_file(path: &Path) -> Result<Option<(String, String)>, SourceError> {
    let metadata = tokio::fs::metadata(path)
        .await
        .map_err(|err| file_error(path, "reading", err))?;
    if metadata.len() > MAX_DOCUMENT_BYTES {
        return Err(SourceError::TooLarge {
            uri: format!("file://{}", path.display()),
            size: metadata.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let bytes = tokio::fs::read(path)
        .await
        .map_err(|err| file_error(path, "reading", err))?;
    let revision = content_revision(&bytes);
    let text = text_of(bytes, || format!("file://{}", path.display()))?;
    Ok(Some((text, revision)))
}

async fn write_s3(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
    text: &str,
    expect: &Expect,
) -> Result<String, SourceError> {
    const DOING: &str = "writing";
    const NEEDS: &str =
        "the caller needs s3:PutObject (and s3:GetObject to read the current revision)";
    let uri = s3_uri(bucket, key);
    // `Some(etag)`: write only over that revision; `None`: only if there is none.
    let expected_etag: Option<String> = match expect {
        Expect::Revision(etag) => Some(quoted_etag(etag)),
        Expect::Absent => None,
        Expect::Current => {
            match client.head_object().bucket(bucket).key(key).send().await {
                Ok(head) => head.e_tag().map(str::to_owned),
                // A HEAD 404 has no body, so a missing bucket also lands here; the PUT
                // below then names it.
                Err(err) if aws::is_not_found(&err) => None,
                Err(err) => return Err(s3_error(err, DOING, NEEDS, bucket, key)),
            }
        }
    };
    let mut put = client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type("application/yaml")
        .body(ByteStream::from(text.as_bytes().to_vec()));
    put = match &expected_etag {
        Some(etag) => put.if_match(etag),
        None => put.if_none_match("*"),
    };
    match put.send().await {
        Ok(output) => Ok(output
            .e_tag()
            .map(str::to_owned)
            .unwrap_or_else(|| content_revision(text.as_bytes()))),
        // 409 ConditionalRequestConflict: another conditional write to the key was in
        // flight at the same moment; just as much a lost race as a 412.
        Err(err)
            if aws::is_precondition_failed(&err)
                || err.code() == Some("ConditionalRequestConflict") =>
        {
            match (expect, expected_etag) {
                (Expect::Absent, _) => Err(SourceError::AlreadyExists { uri }),
                (_, Some(etag)) => Err(SourceError::Conflict {
                    uri,
                    expected: etag,
                }),
                (_, None) => Err(SourceError::Conflict {
                    uri,
                    expected: "none (the document was created meanwhile)".to_owned(),
                }),
            }
        }
        Err(err) => Err(s3_error(err, DOING, NEEDS, bucket, key)),
    }
}

async fn write_ssm(
    client: &aws_sdk_ssm::Client,
    name: &str,
    text: &str,
    expect: &Expect,
) -> Result<String, SourceError> {
    const DOING: &str = "writing";
    const NEEDS: &str = "the caller needs ssm:PutParameter (and ssm:GetParameter)";
    let uri = format!("ssm:{name}");
    if text.len() > SSM_ADVANCED_MAX_BYTES {
        return Err(SourceError::TooLargeForSsm {
            uri,
            size: text.len(),
        });
    }
    if let Expect::Revision(expected) = expect {
        // SSM has no conditional put: check just before writing (best effort).
        let current = client
            .get_parameter()
            .name(name)
            .send()
            .await
            .map_err(|err| ssm_error(err, DOING, NEEDS, name))?;
        let version = current.parameter.map(|p| p.version.to_string());
        if version.as_deref() != Some(expected.as_str()) {
            return Err(SourceError::Conflict {
                uri,
                expected: expected.clone(),
            });
        }
    }
    // Standard holds 4 KiB; above that the parameter must be Advanced. Intelligent
    // tiering picks the cheapest tier that fits and never downgrades an Advanced one
    // (which PutParameter would reject).
    let tier = if text.len() > SSM_STANDARD_MAX_BYTES {
        ParameterTier::Advanced
    } else {
        ParameterTier::IntelligentTiering
    };
    let output = client
        .put_parameter()
        .name(name)
        .value(text)
        .r#type(ParameterType::String)
        .tier(tier)
        .overwrite(!matches!(expect, Expect::Absent))
        .description("tugboat desired-state document (written by tugboat apply)")
        .send()
        .await
        .map_err(|err| ssm_error(err, DOING, NEEDS, name))?;
    Ok(output.version.to_string())
}

async fn write_file(path: &Path, text: &str, expect: &Expect) -> Result<String, SourceError> {
    let uri = format!("file://{}", path.display());
    match expect {
        Expect::Current => {}
        Expect::Absent => {
            if tokio::fs::try_exists(path)
                .await
                .map_err(|err| file_error(path, "reading", err))?
            {
                return Err(SourceError::AlreadyExists { uri });
            }
        }
        Expect::Revision(expected) => {
            let current = tokio::fs::read(path)
                .await
                .map_err(|err| file_error(path, "reading", err))?;
            if &content_revision(&current) != expected {
                return Err(SourceError::Conflict {
                    uri,
                    expected: expected.clone(),
                });
            }
        }
    }
    // Write beside the target and rename over it, so a reader sees the old document or
    // the new one, never half of one.
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| SourceError::MalformedUri {
            uri: uri.clone(),
            problem: "the path names a directory, not a file",
        })?;
    let temp = path.with_file_name(format!(".{file_name}.tugboat-{}", std::process::id()));
    let write = async {
        tokio::fs::write(&temp, text.as_bytes()).await?;
        tokio::fs::File::open(&temp).await?.sync_all().await?;
        tokio::fs::rename(&temp, path).await
    };
    if let Err(err) = write.await {
        let _ = tokio::fs::remove_file(&temp).await;
        return Err(SourceError::File {
            doing: "writing",
            path: path.to_owned(),
            source: err,
        });
    }
    Ok(content_revision(text.as_bytes()))
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
#[derive(Debug, Clone)]
pub enum Problem {
    /// The source could not be read.
    Unreadable(Arc<SourceError>),
    /// The source holds `revision`, which does not load.
    Invalid {
        revision: String,
        error: ValidationErrors,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreadable(err) => write!(f, "{err}"),
            Problem::Invalid { error, .. } => write!(f, "{error}"),
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
    /// force and [`Watcher::problem`] says what is wrong.
    Rejected { revision: String },
    /// The source could not be read; the last good document stays in force.
    Unreadable,
    /// The source is readable again and holds the document in force.
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

    /// What is wrong with the source right now, for the status.
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
                self.problem = Some(Problem::Unreadable(Arc::new(err)));
                Update::Unreadable
            }
            Ok(Fetched::Unchanged) => match self.problem {
                Some(Problem::Unreadable(_)) => {
                    self.problem = None;
                    Update::Recovered
                }
                _ => Update::Unchanged,
            },
            Ok(Fetched::Changed { text, revision }) => {
                let in_force_revision = self.in_force.as_ref().map(|f| f.revision.as_str());
                if in_force_revision == Some(revision.as_str()) {
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

    #[test]
    fn uris_parse_into_their_locations() {
        assert_eq!(
            "s3://bucket/app/prod.yaml".parse::<SourceUri>().ok(),
            Some(SourceUri::S3 {
                bucket: "bucket".into(),
                key: "app/prod.yaml".into()
            })
        );
        assert_eq!(
            "ssm:/tugboat/prod/app".parse::<SourceUri>().ok(),
            Some(SourceUri::Ssm {
                name: "/tugboat/prod/app".into()
            })
        );
        assert_eq!(
            "file:///etc/tugboat/app.yaml".parse::<SourceUri>().ok(),
            Some(SourceUri::File {
                path: "/etc/tugboat/app.yaml".into()
            })
        );
        assert_eq!(
            "file://manifests/dev.yaml".parse::<SourceUri>().ok(),
            Some(SourceUri::File {
                path: "manifests/dev.yaml".into()
            })
        );
    }

    #[test]
    fn uris_display_as_written() {
        for text in ["s3://b/k/x.yaml", "ssm:/a/b", "file:///tmp/x.yaml"] {
            let uri: SourceUri = text.parse().expect("a valid URI in the table");
            assert_eq!(uri.to_string(), text);
        }
    }

    #[test]
    fn bad_uris_say_what_a_good_one_looks_like() {
        let table = [
            ("https://example.com/app.yaml", "use s3://BUCKET/KEY"),
            ("s3://bucket-only", "needs a key"),
            ("s3:///key", "bucket name is empty"),
            ("s3://bucket/folder/", "names a folder"),
            ("ssm:", "parameter name"),
            ("file://", "path is empty"),
        ];
        for (text, expected) in table {
            let err = text.parse::<SourceUri>().expect_err(text).to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }

    #[test]
    fn etags_are_quoted_once() {
        assert_eq!(quoted_etag("abc"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\""), "\"abc\"");
    }

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

    async fn file_watcher(dir: &tempfile::TempDir, text: &str) -> (Watcher, PathBuf) {
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

    #[test]
    fn file_revisions_are_sha256_of_the_content() {
        assert_eq!(
            content_revision(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
