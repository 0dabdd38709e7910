//! One small conditional-write store, in object_store's vocabulary: read a value if it
//! changed since a version ([`BlobStore::get`]), and write it with a condition
//! ([`PutMode::Overwrite`], [`PutMode::Create`], [`PutMode::Update`]). The document
//! source, the status store and `tugboat apply` sit on it; the S3 lease and the local
//! platform's state files are meant to.
//!
//! Backends: [`s3::S3Store`] (GetObject `If-None-Match`, PutObject `If-Match` /
//! `If-None-Match: *`), [`ssm::SsmStore`] (parameter versions), [`file::FileStore`]
//! (atomic rename, an advisory lock around conditional writes) and
//! [`memory::MemoryStore`] (tests, the local platform). One URI parser ([`BlobUri`]:
//! `s3://bucket/key`, `ssm:/name`, `file://path`) names a location in any of them.
//!
//! Guarantees, for every backend (checked by `tests/blob_conformance.rs`, which runs the
//! same suite against each):
//! - Every successful write returns a new [`Version`], and a read returns the version of
//!   the bytes it returned. A read given the current version answers
//!   [`GetResult::NotModified`] without the bytes.
//! - [`PutMode::Create`] never replaces a stored value: it fails with
//!   [`BlobError::AlreadyExists`].
//! - [`PutMode::Update`] writes only over the version it names: otherwise it fails with
//!   [`BlobError::Precondition`] and the stored value is left as it was. On S3, memory and
//!   files (between tugboat writers) two racing updates of the same version cannot both
//!   win; SSM has no conditional write, so there the version is checked just before the
//!   write and a writer racing in between can still be overwritten (see [`ssm`]).
//! - Errors name the location's URI and say what to do; the cause is kept as the
//!   error's source. Stored values never appear in errors.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

#[cfg(feature = "aws")]
use aws_config::SdkConfig;

pub mod file;
pub mod memory;
#[cfg(feature = "aws")]
pub mod s3;
#[cfg(feature = "aws")]
pub mod ssm;

/// What the trait's methods return: a boxed future, so stores can be chosen at run time
/// (`Arc<dyn BlobStore>`) without a macro crate.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest value [`BlobStore::get`] reads unless told otherwise: a wrong location
/// must not exhaust memory. Callers with a tighter bound (documents: 1 MiB) use
/// [`BlobStore::get_opts`].
pub const DEFAULT_MAX_GET_BYTES: u64 = 16 * 1024 * 1024;

/// SSM's Standard tier holds up to 4 KiB; Advanced (charged per parameter) up to 8 KiB.
pub const SSM_STANDARD_MAX_BYTES: usize = 4 * 1024;
pub const SSM_ADVANCED_MAX_BYTES: usize = 8 * 1024;

/// Identifies one stored value: the S3 ETag (quoted, as S3 sends it), the SSM parameter
/// version, `sha256:<hex>` of a file's content, or a counter in memory. Opaque: compare
/// versions for equality, never order them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    pub fn new(version: impl Into<String>) -> Self {
        Self(version.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for Version {
    fn from(version: String) -> Self {
        Self(version)
    }
}

impl From<&str> for Version {
    fn from(version: &str) -> Self {
        Self(version.to_owned())
    }
}

/// The outcome of a read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GetResult {
    /// The stored value still has the version the caller named.
    NotModified,
    /// The stored value and its version.
    Found { bytes: Vec<u8>, version: Version },
}

/// The condition a write must meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutMode {
    /// Write whatever is stored (or nothing).
    Overwrite,
    /// Write only if nothing is stored: else [`BlobError::AlreadyExists`].
    Create,
    /// Write only over this version: else [`BlobError::Precondition`], the stored value
    /// unchanged. The primitive for read-modify-write (the status, a lease record).
    Update(Version),
}

/// Options of [`BlobStore::get_opts`].
#[derive(Debug, Clone, Copy)]
pub struct GetOptions<'a> {
    /// Answer [`GetResult::NotModified`] if the stored value has this version.
    pub if_none_match: Option<&'a Version>,
    /// Refuse values larger than this with [`BlobError::TooLarge`], before they are read
    /// whole where the backend says the size first.
    pub max_bytes: u64,
}

impl Default for GetOptions<'_> {
    fn default() -> Self {
        Self {
            if_none_match: None,
            max_bytes: DEFAULT_MAX_GET_BYTES,
        }
    }
}

/// A store of small values under string locations (an S3 key, an SSM parameter name, a
/// file path).
pub trait BlobStore: fmt::Debug + Send + Sync {
    /// The URI of `location` in this store, for messages (`s3://bucket/key`, ...).
    fn uri(&self, location: &str) -> String;

    /// Reads the value at `location`: [`BlobError::NotFound`] if there is none.
    fn get_opts<'a>(
        &'a self,
        location: &'a str,
        options: GetOptions<'a>,
    ) -> BoxFuture<'a, Result<GetResult, BlobError>>;

    /// The version of the value at `location` without its bytes where the backend allows
    /// (S3 HEAD); [`BlobError::NotFound`] if there is none.
    fn head<'a>(&'a self, location: &'a str) -> BoxFuture<'a, Result<Version, BlobError>>;

    /// Writes `bytes` at `location` if `mode` allows, and returns the new version.
    fn put<'a>(
        &'a self,
        location: &'a str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<Version, BlobError>>;

    /// Reads the value at `location` unless it still has `if_none_match`, up to
    /// [`DEFAULT_MAX_GET_BYTES`].
    fn get<'a>(
        &'a self,
        location: &'a str,
        if_none_match: Option<&'a Version>,
    ) -> BoxFuture<'a, Result<GetResult, BlobError>> {
        self.get_opts(
            location,
            GetOptions {
                if_none_match,
                ..GetOptions::default()
            },
        )
    }
}

/// Everything that can go wrong naming, reading or writing a stored value. The kinds a
/// caller acts on have their own variants; everything else is [`BlobError::Other`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BlobError {
    #[error(
        "{uri:?} is not a storage location: use s3://BUCKET/KEY, ssm:/PARAMETER or file://PATH"
    )]
    UnsupportedUri { uri: String },

    #[error("{uri:?}: {problem}")]
    MalformedUri { uri: String, problem: &'static str },

    #[error(
        "{uri} needs an {service} client and no {service} client was given: open it with \
         BlobUri::open, which configures AWS"
    )]
    MissingClient { uri: String, service: &'static str },

    /// An AWS location in a build without the `aws` feature.
    #[cfg(not(feature = "aws"))]
    #[error("{uri}: {}", crate::aws::NOT_BUILT)]
    NotBuilt { uri: String },

    #[error("nothing is stored at {uri}")]
    NotFound { uri: String },

    #[error("bucket {bucket:?} does not exist ({uri}): create it, or fix the bucket in the URI")]
    BucketNotFound { bucket: String, uri: String },

    #[error("{uri} already exists (another writer created it first): read it, then update it")]
    AlreadyExists { uri: String },

    #[error(
        "{uri} changed since version {expected} (another writer got there first, or it \
         was removed): read it again, then retry"
    )]
    Precondition { uri: String, expected: Version },

    #[error("{uri}: {size} bytes is more than the {limit} bytes {what}")]
    TooLarge {
        uri: String,
        size: u64,
        limit: u64,
        /// What sets the limit, e.g. `an SSM parameter holds (Advanced tier)`.
        what: &'static str,
    },

    #[error("access denied {doing} {uri} — {needs} ({detail})")]
    AccessDenied {
        doing: &'static str,
        uri: String,
        /// Which permission is missing, e.g. `the caller needs s3:GetObject`.
        needs: &'static str,
        detail: String,
    },

    #[error("{doing} {uri} failed for now ({detail}); trying again later may work")]
    Transient {
        doing: &'static str,
        uri: String,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    #[error("{doing} {uri} failed: {detail}")]
    Other {
        doing: &'static str,
        uri: String,
        detail: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl BlobError {
    /// The error an AWS backend reports for an SDK failure of `kind` while `doing` on
    /// `uri`; `needs` names the permission a denial is about. Shared by the S3 and SSM
    /// backends so both map the same kinds the same way.
    #[cfg(feature = "aws")]
    pub(crate) fn from_sdk(
        kind: crate::aws::ErrorKind,
        doing: &'static str,
        uri: String,
        needs: &'static str,
        detail: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> BlobError {
        use crate::aws::ErrorKind;
        match kind {
            ErrorKind::NotFound => BlobError::NotFound { uri },
            ErrorKind::AccessDenied => BlobError::AccessDenied {
                doing,
                uri,
                needs,
                detail,
            },
            ErrorKind::Throttling | ErrorKind::Transient => BlobError::Transient {
                doing,
                uri,
                detail,
                source,
            },
            _ => BlobError::Other {
                doing,
                uri,
                detail,
                source,
            },
        }
    }

    /// Worth trying again later without anyone changing anything (throttling, 5xx, a
    /// dropped connection); everything else needs a person or a re-read.
    pub fn is_transient(&self) -> bool {
        matches!(self, BlobError::Transient { .. })
    }

    /// The URI the error is about.
    pub fn uri(&self) -> &str {
        match self {
            BlobError::UnsupportedUri { uri }
            | BlobError::MalformedUri { uri, .. }
            | BlobError::MissingClient { uri, .. }
            | BlobError::NotFound { uri }
            | BlobError::BucketNotFound { uri, .. }
            | BlobError::AlreadyExists { uri }
            | BlobError::Precondition { uri, .. }
            | BlobError::TooLarge { uri, .. }
            | BlobError::AccessDenied { uri, .. }
            | BlobError::Transient { uri, .. }
            | BlobError::Other { uri, .. } => uri,
            #[cfg(not(feature = "aws"))]
            BlobError::NotBuilt { uri } => uri,
        }
    }
}

/// A parsed storage location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobUri {
    /// `s3://bucket/key`
    S3 { bucket: String, key: String },
    /// `ssm:/name` (any SSM parameter name after `ssm:`)
    Ssm { name: String },
    /// `file://path`; `file:///abs/path` is absolute, `file://rel/path` relative.
    File { path: PathBuf },
}

impl BlobUri {
    /// Whether reading or writing this location talks to AWS.
    pub fn needs_aws(&self) -> bool {
        !matches!(self, BlobUri::File { .. })
    }

    /// The store holding this location, with clients built from `config`, and the
    /// location in it.
    #[cfg(feature = "aws")]
    pub fn open_with_config(&self, config: &SdkConfig) -> Blob {
        match self {
            BlobUri::S3 { bucket, key } => s3_blob(crate::aws::s3(config), bucket, key),
            BlobUri::Ssm { name } => ssm_blob(crate::aws::ssm(config), name),
            BlobUri::File { path } => file_blob(path),
        }
    }

    /// The store holding this location, using the clients given: a missing client is a
    /// clear error naming the URI rather than a panic.
    pub fn open_with(&self, clients: Clients) -> Result<Blob, BlobError> {
        let missing = |service| BlobError::MissingClient {
            uri: self.to_string(),
            service,
        };
        match self {
            #[cfg(feature = "aws")]
            BlobUri::S3 { bucket, key } => {
                let client = clients.s3.ok_or_else(|| missing("S3"))?;
                Ok(s3_blob(client, bucket, key))
            }
            #[cfg(feature = "aws")]
            BlobUri::Ssm { name } => {
                let client = clients.ssm.ok_or_else(|| missing("SSM"))?;
                Ok(ssm_blob(client, name))
            }
            #[cfg(not(feature = "aws"))]
            BlobUri::S3 { .. } | BlobUri::Ssm { .. } => {
                let _ = (clients, missing);
                Err(self.not_built())
            }
            BlobUri::File { path } => Ok(file_blob(path)),
        }
    }

    /// Opens the location, loading the AWS configuration ([`crate::aws::sdk_config`],
    /// `region` overriding the region chain) only for S3 and SSM. Fails only in a build
    /// without AWS, for an AWS location.
    pub async fn open(&self, region: Option<&str>) -> Result<Blob, BlobError> {
        match self {
            BlobUri::File { path } => Ok(file_blob(path)),
            #[cfg(feature = "aws")]
            BlobUri::S3 { .. } | BlobUri::Ssm { .. } => {
                Ok(self.open_with_config(&crate::aws::sdk_config(region).await))
            }
            #[cfg(not(feature = "aws"))]
            BlobUri::S3 { .. } | BlobUri::Ssm { .. } => {
                let _ = region;
                Err(self.not_built())
            }
        }
    }

    /// The refusal of an AWS location in a build without AWS.
    #[cfg(not(feature = "aws"))]
    pub fn not_built(&self) -> BlobError {
        BlobError::NotBuilt {
            uri: self.to_string(),
        }
    }
}

#[cfg(feature = "aws")]
fn s3_blob(client: aws_sdk_s3::Client, bucket: &str, key: &str) -> Blob {
    Blob::new(
        Arc::new(s3::S3Store::new(client, bucket.to_owned())),
        key.to_owned(),
    )
}

#[cfg(feature = "aws")]
fn ssm_blob(client: aws_sdk_ssm::Client, name: &str) -> Blob {
    Blob::new(Arc::new(ssm::SsmStore::new(client)), name.to_owned())
}

/// A file URI's path is a location in a [`file::FileStore`] rooted nowhere: the path is
/// used as written (absolute, or relative to the working directory).
fn file_blob(path: &std::path::Path) -> Blob {
    // The path came from a `&str`, so the lossy conversion is exact.
    Blob::new(
        Arc::new(file::FileStore::new("")),
        path.to_string_lossy().into_owned(),
    )
}

/// The AWS clients [`BlobUri::open_with`] may use; only the one the URI needs is read.
#[derive(Debug, Clone, Default)]
pub struct Clients {
    pub s3: Option<crate::aws::S3Client>,
    pub ssm: Option<crate::aws::SsmClient>,
}

impl FromStr for BlobUri {
    type Err = BlobError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = |problem: &'static str| BlobError::MalformedUri {
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
            return Ok(BlobUri::S3 {
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
            return Ok(BlobUri::Ssm {
                name: name.to_owned(),
            });
        }
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err(malformed(
                    "the path is empty: file:///abs/path or file://rel/path",
                ));
            }
            if path.ends_with('/') {
                return Err(malformed(
                    "the path names a directory, not a file: file:///abs/path",
                ));
            }
            return Ok(BlobUri::File {
                path: PathBuf::from(path),
            });
        }
        Err(BlobError::UnsupportedUri {
            uri: text.to_owned(),
        })
    }
}

impl fmt::Display for BlobUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BlobUri::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
            BlobUri::Ssm { name } => write!(f, "ssm:{name}"),
            BlobUri::File { path } => write!(f, "file://{}", path.display()),
        }
    }
}

/// One location in one store: what the source, the status store and apply hold.
#[derive(Debug, Clone)]
pub struct Blob {
    store: Arc<dyn BlobStore>,
    location: String,
}

impl Blob {
    pub fn new(store: Arc<dyn BlobStore>, location: impl Into<String>) -> Self {
        Self {
            store,
            location: location.into(),
        }
    }

    /// The location's URI, for messages.
    pub fn uri(&self) -> String {
        self.store.uri(&self.location)
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn store(&self) -> &Arc<dyn BlobStore> {
        &self.store
    }

    /// [`BlobStore::get`] at this location.
    pub async fn get(&self, if_none_match: Option<&Version>) -> Result<GetResult, BlobError> {
        self.store.get(&self.location, if_none_match).await
    }

    /// [`BlobStore::get_opts`] at this location.
    pub async fn get_opts(&self, options: GetOptions<'_>) -> Result<GetResult, BlobError> {
        self.store.get_opts(&self.location, options).await
    }

    /// [`BlobStore::head`] at this location.
    pub async fn head(&self) -> Result<Version, BlobError> {
        self.store.head(&self.location).await
    }

    /// [`BlobStore::put`] at this location.
    pub async fn put(&self, bytes: Vec<u8>, mode: PutMode) -> Result<Version, BlobError> {
        self.store.put(&self.location, bytes, mode).await
    }
}

/// `sha256:<hex>` of `bytes`: the version of a file, and of content without an ETag.
pub fn content_version(bytes: &[u8]) -> Version {
    use sha2::{Digest, Sha256};
    Version(format!("sha256:{}", hex::encode(Sha256::digest(bytes))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_parse_into_their_locations() {
        assert_eq!(
            "s3://bucket/app/prod.yaml".parse::<BlobUri>().ok(),
            Some(BlobUri::S3 {
                bucket: "bucket".into(),
                key: "app/prod.yaml".into()
            })
        );
        assert_eq!(
            "ssm:/tugboat/prod/app".parse::<BlobUri>().ok(),
            Some(BlobUri::Ssm {
                name: "/tugboat/prod/app".into()
            })
        );
        assert_eq!(
            "file:///etc/tugboat/app.yaml".parse::<BlobUri>().ok(),
            Some(BlobUri::File {
                path: "/etc/tugboat/app.yaml".into()
            })
        );
        assert_eq!(
            "file://manifests/dev.yaml".parse::<BlobUri>().ok(),
            Some(BlobUri::File {
                path: "manifests/dev.yaml".into()
            })
        );
    }

    #[test]
    fn uris_display_as_written() {
        for text in ["s3://b/k/x.yaml", "ssm:/a/b", "file:///tmp/x.yaml"] {
            let uri: BlobUri = text.parse().expect("a valid URI in the table");
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
            ("ssm://x", "parameter name"),
            ("file://", "path is empty"),
            ("file:///var/lib/", "names a directory"),
        ];
        for (text, expected) in table {
            let err = text.parse::<BlobUri>().expect_err(text).to_string();
            assert!(err.contains(expected), "{text}: {err}");
            assert!(err.contains(text), "the URI is named: {err}");
        }
    }

    #[cfg(feature = "aws")]
    #[test]
    fn a_uri_without_its_client_is_a_clear_error() {
        let uri: BlobUri = "s3://b/k".parse().expect("valid");
        let err = uri.open_with(Clients::default()).expect_err("no client");
        assert!(matches!(err, BlobError::MissingClient { .. }), "{err:?}");
        assert!(err.to_string().contains("s3://b/k"), "{err}");
        let uri: BlobUri = "ssm:/a".parse().expect("valid");
        let err = uri.open_with(Clients::default()).expect_err("no client");
        assert!(err.to_string().contains("no SSM client"), "{err}");
    }

    #[cfg(not(feature = "aws"))]
    #[tokio::test]
    async fn aws_uris_in_a_build_without_aws_say_how_to_get_one() {
        for text in ["s3://b/k.yaml", "ssm:/a/b"] {
            let uri: BlobUri = text.parse().expect("valid");
            for err in [
                uri.open_with(Clients::default())
                    .expect_err("no AWS in this build"),
                uri.open(Some("eu-west-1"))
                    .await
                    .expect_err("no AWS in this build"),
            ] {
                let message = err.to_string();
                assert!(matches!(err, BlobError::NotBuilt { .. }), "{err:?}");
                assert!(message.starts_with(text), "the URI is named: {message}");
                assert!(message.contains("`aws` cargo feature"), "{message}");
            }
        }
    }

    #[test]
    fn file_uris_open_without_aws() {
        let uri: BlobUri = "file:///tmp/x.yaml".parse().expect("valid");
        let blob = uri.open_with(Clients::default()).expect("no AWS needed");
        assert_eq!(blob.uri(), "file:///tmp/x.yaml");
        assert_eq!(blob.location(), "/tmp/x.yaml");
    }

    #[test]
    fn content_versions_are_sha256_of_the_content() {
        assert_eq!(
            content_version(b"").as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
