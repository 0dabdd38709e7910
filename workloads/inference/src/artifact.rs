//! Where a model comes from, and checking that it is the one we were told to serve.
//!
//! A [`ModelSource`] is a local directory or file, or an S3 location; it always
//! names two objects, `model.onnx` and `metadata.json` beside it (the seed's
//! `<version>/model.* + metadata.json` layout). [`fetch_verified`] reads both and
//! checks, before tract ever sees the bytes:
//! - the sha256 of `model.onnx` equals `metadata.json`'s `sha256`;
//! - and equals `MODEL_SHA256` when that is set (the controller sets it from the
//!   artifact it resolved, so a replaced object in S3 is caught here);
//! - `metadata.json`'s `version` equals `MODEL_VERSION` when that is set.
//!
//! Any mismatch is an [`ArtifactError`] whose message says which check failed and
//! with which values; the caller logs it and never serves the model.
//!
//! [`ArtifactError::is_transient`] says whether trying again can help: a dropped
//! connection, a timeout, a throttled or failing S3 (5xx, 429, `RequestTimeout`) can;
//! a checksum or version mismatch, bad metadata, a missing object or an unreadable
//! local file cannot (the same bytes would fail the same check).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::model::ModelMetadata;

pub const MODEL_FILE: &str = "model.onnx";
pub const METADATA_FILE: &str = "metadata.json";

/// Where the two artifact files live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelSource {
    Local {
        model: PathBuf,
        metadata: PathBuf,
    },
    S3 {
        bucket: String,
        model_key: String,
        metadata_key: String,
    },
}

/// What the deployment says the artifact must be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// `MODEL_SHA256`: hex sha256 of `model.onnx`.
    pub sha256: Option<String>,
    /// `MODEL_VERSION`: must equal `metadata.json`'s `version`.
    pub version: Option<String>,
}

/// What went wrong finding, reading or checking the artifact.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// No usable location in the configuration.
    #[error("invalid model location {0:?}: expected s3://bucket/prefix or a local path")]
    InvalidLocation(String),
    /// A local file could not be read.
    #[error("cannot read {path}: {source}")]
    ReadLocal {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An S3 GetObject failed (missing object, no access, endpoint unreachable).
    #[error("cannot get s3://{bucket}/{key}: {message}")]
    S3Get {
        bucket: String,
        key: String,
        message: String,
        /// The failure was in transport, a timeout, throttling or a 5xx: worth a retry.
        transient: bool,
    },
    /// An S3 location in a build without the `s3` feature (`./up`'s).
    #[cfg(not(feature = "s3"))]
    #[error(
        "{0}: this inference service was built without S3 support (the `s3` cargo feature \
         is off, as in ./up's build); build it with the feature (the default) or serve the \
         model from a local path"
    )]
    S3NotBuilt(String),
    /// `metadata.json` is not valid metadata.
    #[error("{METADATA_FILE} is invalid: {source}")]
    MetadataInvalid {
        #[source]
        source: serde_json::Error,
    },
    /// `MODEL_SHA256` is not 64 hex digits.
    #[error("MODEL_SHA256 {0:?} is not a hex sha256 (64 hex digits)")]
    InvalidExpectedSha256(String),
    /// The bytes of `model.onnx` are not the ones expected.
    #[error("sha256 mismatch: {MODEL_FILE} hashes to {actual}, but {expected_by} says {expected}")]
    ChecksumMismatch {
        expected_by: &'static str,
        expected: String,
        actual: String,
    },
    /// The artifact is another version than the deployment asked for.
    #[error("version mismatch: MODEL_VERSION is {expected:?} but {METADATA_FILE} says {found:?}")]
    VersionMismatch { expected: String, found: String },
}

impl ArtifactError {
    /// Whether fetching again may succeed (see the module docs). Never true for a
    /// failed check: retrying a checksum mismatch would only hide a replaced object.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::S3Get { transient, .. } => *transient,
            Self::InvalidLocation(_)
            | Self::ReadLocal { .. }
            | Self::MetadataInvalid { .. }
            | Self::InvalidExpectedSha256(_)
            | Self::ChecksumMismatch { .. }
            | Self::VersionMismatch { .. } => false,
            #[cfg(not(feature = "s3"))]
            Self::S3NotBuilt(_) => false,
        }
    }
}

impl ModelSource {
    /// Choose the source from the seed's environment names, first match wins:
    /// `MODEL_URI`; then `S3_MODEL_BUCKET` with `S3_MODEL_KEY` (the key of
    /// `model.onnx`, default `<MODEL_VERSION>/model.onnx`); then the local
    /// `models/<MODEL_VERSION>` directory (`models/v1` without a version).
    pub fn resolve(
        model_uri: Option<&str>,
        s3_bucket: Option<&str>,
        s3_key: Option<&str>,
        model_version: Option<&str>,
    ) -> Result<Self, ArtifactError> {
        fn non_empty(s: Option<&str>) -> Option<&str> {
            s.map(str::trim).filter(|s| !s.is_empty())
        }
        if let Some(uri) = non_empty(model_uri) {
            return Self::from_uri(uri);
        }
        let version = non_empty(model_version).unwrap_or("v1");
        if let Some(bucket) = non_empty(s3_bucket) {
            let key = non_empty(s3_key)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{version}/{MODEL_FILE}"));
            return Self::from_uri(&format!("s3://{bucket}/{key}"));
        }
        Ok(Self::local(Path::new("models").join(version)))
    }

    /// `s3://bucket/prefix` (a "directory" holding both files),
    /// `s3://bucket/prefix/model.onnx`, `file:///path`, or a plain local path; a
    /// path ending in `.onnx` names the model file, anything else its directory.
    pub fn from_uri(uri: &str) -> Result<Self, ArtifactError> {
        if let Some(rest) = uri.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            let key = key.trim_matches('/');
            if bucket.is_empty() {
                return Err(ArtifactError::InvalidLocation(uri.to_owned()));
            }
            let (model_key, dir) = if key.ends_with(".onnx") {
                (key.to_owned(), key.rsplit_once('/').map_or("", |(d, _)| d))
            } else if key.is_empty() {
                (MODEL_FILE.to_owned(), "")
            } else {
                (format!("{key}/{MODEL_FILE}"), key)
            };
            let metadata_key = if dir.is_empty() {
                METADATA_FILE.to_owned()
            } else {
                format!("{dir}/{METADATA_FILE}")
            };
            return Ok(Self::S3 {
                bucket: bucket.to_owned(),
                model_key,
                metadata_key,
            });
        }
        if uri.contains("://") && !uri.starts_with("file://") {
            return Err(ArtifactError::InvalidLocation(uri.to_owned()));
        }
        let path = uri.strip_prefix("file://").unwrap_or(uri);
        if path.is_empty() {
            return Err(ArtifactError::InvalidLocation(uri.to_owned()));
        }
        Ok(Self::local(PathBuf::from(path)))
    }

    fn local(path: PathBuf) -> Self {
        if path.extension().is_some_and(|e| e == "onnx") {
            let metadata = path.with_file_name(METADATA_FILE);
            Self::Local {
                model: path,
                metadata,
            }
        } else {
            Self::Local {
                model: path.join(MODEL_FILE),
                metadata: path.join(METADATA_FILE),
            }
        }
    }
}

impl std::fmt::Display for ModelSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Local { model, .. } => write!(f, "{}", model.display()),
            Self::S3 {
                bucket, model_key, ..
            } => write!(f, "s3://{bucket}/{model_key}"),
        }
    }
}

/// A model file whose bytes passed every check, with its metadata.
#[derive(Debug, Clone)]
pub struct VerifiedArtifact {
    pub onnx: Vec<u8>,
    pub metadata: ModelMetadata,
}

/// Read both files from `source` and verify them against `expected`, with an S3
/// client from the environment ([`s3_client`]) when the source is in S3.
pub async fn fetch_verified(
    source: &ModelSource,
    expected: &Expected,
) -> Result<VerifiedArtifact, ArtifactError> {
    fetch_verified_with(source, expected, None).await
}

/// [`fetch_verified`] with the S3 client given (`None`: one from the environment).
pub async fn fetch_verified_with(
    source: &ModelSource,
    expected: &Expected,
    s3: Option<&S3Client>,
) -> Result<VerifiedArtifact, ArtifactError> {
    let (onnx, metadata) = match source {
        ModelSource::Local { model, metadata } => {
            (read_local(model).await?, read_local(metadata).await?)
        }
        #[cfg(not(feature = "s3"))]
        ModelSource::S3 { .. } => {
            let _ = s3;
            return Err(ArtifactError::S3NotBuilt(source.to_string()));
        }
        #[cfg(feature = "s3")]
        ModelSource::S3 {
            bucket,
            model_key,
            metadata_key,
        } => {
            let client = match s3 {
                Some(client) => client.clone(),
                None => s3_client().await,
            };
            (
                get_object(&client, bucket, model_key).await?,
                get_object(&client, bucket, metadata_key).await?,
            )
        }
    };
    let metadata: ModelMetadata = serde_json::from_slice(&metadata)
        .map_err(|source| ArtifactError::MetadataInvalid { source })?;
    verify(&onnx, &metadata, expected)?;
    Ok(VerifiedArtifact { onnx, metadata })
}

/// The checks of this module, on bytes already in memory.
pub fn verify(
    onnx: &[u8],
    metadata: &ModelMetadata,
    expected: &Expected,
) -> Result<(), ArtifactError> {
    let actual = hex::encode(Sha256::digest(onnx));
    if let Some(want) = expected
        .sha256
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let want = want.to_ascii_lowercase();
        if want.len() != 64 || !want.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ArtifactError::InvalidExpectedSha256(want));
        }
        if want != actual {
            return Err(ArtifactError::ChecksumMismatch {
                expected_by: "MODEL_SHA256",
                expected: want,
                actual,
            });
        }
    }
    if !metadata.sha256.eq_ignore_ascii_case(&actual) {
        return Err(ArtifactError::ChecksumMismatch {
            expected_by: METADATA_FILE,
            expected: metadata.sha256.clone(),
            actual,
        });
    }
    if let Some(want) = expected
        .version
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        && want != metadata.version
    {
        return Err(ArtifactError::VersionMismatch {
            expected: want.to_owned(),
            found: metadata.version.clone(),
        });
    }
    Ok(())
}

async fn read_local(path: &Path) -> Result<Vec<u8>, ArtifactError> {
    tokio::fs::read(path)
        .await
        .map_err(|source| ArtifactError::ReadLocal {
            path: path.to_owned(),
            source,
        })
}

/// The S3 client models are read with. A build without the `s3` feature has an
/// uninhabited type of the same name, so `Option<S3Client>` is always `None` there.
#[cfg(feature = "s3")]
pub type S3Client = aws_sdk_s3::Client;
/// Stands in for the S3 client in a build without the `s3` feature: no value exists.
#[cfg(not(feature = "s3"))]
#[derive(Debug, Clone)]
pub enum S3Client {}

/// An S3 client from the standard credential and region chain. When an endpoint
/// override is configured (`AWS_ENDPOINT_URL`, e.g. the emulator on localhost),
/// path-style addressing is used, since `bucket.localhost` does not resolve.
#[cfg(feature = "s3")]
pub async fn s3_client() -> aws_sdk_s3::Client {
    let shared = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let mut config = aws_sdk_s3::config::Builder::from(&shared);
    if shared.endpoint_url().is_some() {
        config = config.force_path_style(true);
    }
    aws_sdk_s3::Client::from_conf(config.build())
}

#[cfg(feature = "s3")]
async fn get_object(
    client: &aws_sdk_s3::Client,
    bucket: &str,
    key: &str,
) -> Result<Vec<u8>, ArtifactError> {
    let failed = |message: String, transient: bool| ArtifactError::S3Get {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        message,
        transient,
    };
    let object = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|e| {
            let transient = sdk_error_is_transient(&e);
            failed(
                aws_sdk_s3::error::DisplayErrorContext(&e).to_string(),
                transient,
            )
        })?;
    let body = object
        .body
        .collect()
        .await
        // The answer was cut off mid-body: the connection, not the object.
        .map_err(|e| failed(format!("reading the body: {e}"), true))?;
    Ok(body.into_bytes().to_vec())
}

/// Transport failures, timeouts, unparseable answers, throttling and 5xx are
/// transient; any other answer of the service (404, 403, 400) is not.
#[cfg(feature = "s3")]
fn sdk_error_is_transient<E: aws_sdk_s3::error::ProvideErrorMetadata>(
    err: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    use aws_sdk_s3::error::SdkError;
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            status >= 500
                || status == 429
                || matches!(
                    service.err().code(),
                    Some("RequestTimeout" | "SlowDown" | "Throttling" | "ThrottlingException")
                )
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3(bucket: &str, model_key: &str, metadata_key: &str) -> ModelSource {
        ModelSource::S3 {
            bucket: bucket.into(),
            model_key: model_key.into(),
            metadata_key: metadata_key.into(),
        }
    }

    #[test]
    fn s3_uris() {
        assert_eq!(
            ModelSource::from_uri("s3://models/prod/v1.3").unwrap(),
            s3("models", "prod/v1.3/model.onnx", "prod/v1.3/metadata.json")
        );
        assert_eq!(
            ModelSource::from_uri("s3://models/v2/model.onnx").unwrap(),
            s3("models", "v2/model.onnx", "v2/metadata.json")
        );
        assert_eq!(
            ModelSource::from_uri("s3://models").unwrap(),
            s3("models", "model.onnx", "metadata.json")
        );
        assert!(ModelSource::from_uri("s3:///key").is_err());
        assert!(ModelSource::from_uri("http://example/model").is_err());
    }

    #[test]
    fn seed_environment_names() {
        assert_eq!(
            ModelSource::resolve(None, Some("ml-models-bucket"), None, Some("v1.2")).unwrap(),
            s3("ml-models-bucket", "v1.2/model.onnx", "v1.2/metadata.json")
        );
        assert_eq!(
            ModelSource::resolve(None, Some("b"), Some("models/v1/model.onnx"), None).unwrap(),
            s3("b", "models/v1/model.onnx", "models/v1/metadata.json")
        );
        assert_eq!(
            ModelSource::resolve(Some("/srv/models/v2"), Some("ignored"), None, None).unwrap(),
            ModelSource::Local {
                model: "/srv/models/v2/model.onnx".into(),
                metadata: "/srv/models/v2/metadata.json".into()
            }
        );
        assert_eq!(
            ModelSource::resolve(None, None, None, Some("v2")).unwrap(),
            ModelSource::Local {
                model: "models/v2/model.onnx".into(),
                metadata: "models/v2/metadata.json".into()
            }
        );
    }

    fn metadata_for(onnx: &[u8]) -> ModelMetadata {
        ModelMetadata {
            version: "v9".into(),
            sha256: hex::encode(Sha256::digest(onnx)),
            input_width: 1,
            feature_names: vec![],
            class_labels: vec![0, 1],
            class_names: vec![],
            metrics: Default::default(),
            trained_date: None,
            extra: Default::default(),
        }
    }

    #[cfg(not(feature = "s3"))]
    #[tokio::test]
    async fn an_s3_model_in_a_build_without_s3_is_refused_for_good() {
        let source = ModelSource::from_uri("s3://models/v1").expect("a valid location");
        let err = fetch_verified(&source, &Expected::default())
            .await
            .expect_err("no S3 in this build");
        assert!(matches!(err, ArtifactError::S3NotBuilt(_)), "{err:?}");
        assert!(!err.is_transient(), "retrying cannot help: {err}");
        let message = err.to_string();
        assert!(message.contains("s3://models/v1/model.onnx"), "{message}");
        assert!(message.contains("`s3` cargo feature"), "{message}");
    }

    #[test]
    fn only_fetch_failures_that_may_pass_are_transient() {
        let s3 = |transient| ArtifactError::S3Get {
            bucket: "b".into(),
            key: "k".into(),
            message: "m".into(),
            transient,
        };
        assert!(s3(true).is_transient());
        assert!(!s3(false).is_transient());
        let mismatch = ArtifactError::ChecksumMismatch {
            expected_by: METADATA_FILE,
            expected: "a".into(),
            actual: "b".into(),
        };
        assert!(!mismatch.is_transient());
        let version = ArtifactError::VersionMismatch {
            expected: "v1".into(),
            found: "v2".into(),
        };
        assert!(!version.is_transient());
    }

    #[test]
    fn verify_checks_metadata_env_sha_and_version() {
        let onnx = b"pretend model";
        let meta = metadata_for(onnx);
        assert!(verify(onnx, &meta, &Expected::default()).is_ok());
        assert!(matches!(
            verify(b"tampered model", &meta, &Expected::default()),
            Err(ArtifactError::ChecksumMismatch {
                expected_by: "metadata.json",
                ..
            })
        ));
        let env = Expected {
            sha256: Some("0".repeat(64)),
            version: None,
        };
        assert!(matches!(
            verify(onnx, &meta, &env),
            Err(ArtifactError::ChecksumMismatch {
                expected_by: "MODEL_SHA256",
                ..
            })
        ));
        let env = Expected {
            sha256: Some("xyz".into()),
            version: None,
        };
        assert!(matches!(
            verify(onnx, &meta, &env),
            Err(ArtifactError::InvalidExpectedSha256(_))
        ));
        let env = Expected {
            sha256: Some(meta.sha256.to_uppercase()),
            version: Some("v10".into()),
        };
        assert!(matches!(
            verify(onnx, &meta, &env),
            Err(ArtifactError::VersionMismatch { .. })
        ));
    }
}
