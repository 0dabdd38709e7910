//! Models resolved from their stores: the version from the document or its pointer,
//! then the checksum from `<storeUri>/<version>/metadata.json`.
//!
//! Pointers: on AWS, `versionParameter` is an SSM parameter (one `GetParameter`); on the
//! local platform it names a file under `<stateDir>/models` (`/ml/churn-version` is
//! `<stateDir>/models/ml/churn-version`) holding the version. Stores: `s3://` (one
//! `GetObject` of `metadata.json`, AWS only) and `file://`. A version's `metadata.json`
//! is read once per process (a version directory is immutable by convention); pointers
//! are read every pass, so moving one is seen at the next pass.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::aws::S3Client;
#[cfg(feature = "aws")]
use crate::aws::SsmClient;
use crate::budget::{Budgets, QuotaClass};
use crate::document::{Application, Model};
use crate::observed::{ModelResolution, ResolvedModel};
#[cfg(feature = "aws")]
use crate::platform::aws::classify;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};

use super::{ModelResolver, check_sha256, parse_metadata, settle, version_uri};

/// Where `versionParameter` pointers are read.
#[derive(Debug, Clone)]
enum Pointers {
    #[cfg(feature = "aws")]
    Ssm(SsmClient),
    Files(PathBuf),
}

/// Resolves models from SSM/S3 (AWS) or the state directory (local).
#[derive(Debug)]
pub struct StoreResolver {
    pointers: Pointers,
    s3: Option<S3Client>,
    // Spent by the AWS calls only (a build without AWS makes none).
    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    budgets: Arc<Budgets>,
    calls: CallCounter,
    /// `<storeUri>/<version>` -> sha256 from metadata.json.
    metadata: Mutex<HashMap<String, String>>,
}

impl StoreResolver {
    /// SSM pointers, `s3://` and `file://` stores.
    #[cfg(feature = "aws")]
    pub fn aws(ssm: SsmClient, s3: S3Client, budgets: Arc<Budgets>) -> Self {
        Self::with(Pointers::Ssm(ssm), Some(s3), budgets)
    }

    /// Pointer files under `<state_dir>/models`, `file://` stores.
    pub fn local(state_dir: impl Into<PathBuf>) -> Self {
        Self::with(
            Pointers::Files(state_dir.into().join("models")),
            None,
            Arc::new(Budgets::new()),
        )
    }

    fn with(pointers: Pointers, s3: Option<S3Client>, budgets: Arc<Budgets>) -> Self {
        Self {
            pointers,
            s3,
            budgets,
            calls: CallCounter::default(),
            metadata: Mutex::new(HashMap::new()),
        }
    }

    #[cfg_attr(not(feature = "aws"), allow(dead_code))]
    async fn spend(&self, api: &'static str, class: QuotaClass) {
        self.budgets.acquire(class).await;
        self.calls.record(api, CallKind::Describe);
    }

    async fn resolve_one(&self, model: &Model) -> Result<ResolvedModel, PlatformError> {
        let version = match (&model.version, &model.version_parameter) {
            (Some(version), _) => version.clone(),
            (None, Some(parameter)) => self.pointer(parameter).await?,
            (None, None) => {
                return Err(PlatformError::Unsupported(format!(
                    "model {} names neither version nor versionParameter",
                    model.name
                )));
            }
        };
        let uri = version_uri(model, &version);
        let cached = self
            .metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&uri)
            .cloned();
        let sha256 = match cached {
            Some(sha) => sha,
            None => {
                let metadata_uri = format!("{uri}/metadata.json");
                let sha = parse_metadata(&metadata_uri, &self.read(&metadata_uri).await?)?;
                // The artifact itself must be there: a version with metadata and no
                // model.onnx would deploy tasks that cannot load it. Checked once per
                // version (cached with the checksum), after the checksum's own check.
                check_sha256(model, &version, &sha)?;
                self.exists(&format!("{uri}/model.onnx")).await?;
                self.metadata
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(uri.clone(), sha.clone());
                sha
            }
        };
        check_sha256(model, &version, &sha256)?;
        Ok(ResolvedModel {
            version,
            uri,
            sha256,
        })
    }

    /// The version a pointer holds.
    async fn pointer(&self, parameter: &str) -> Result<String, PlatformError> {
        let value = match &self.pointers {
            #[cfg(feature = "aws")]
            Pointers::Ssm(ssm) => self.ssm_pointer(ssm, parameter).await?,
            Pointers::Files(dir) => {
                let path = dir.join(parameter.trim_start_matches('/'));
                self.calls.record("file:ReadPointer", CallKind::Describe);
                Some(read_file(&path, &format!("model pointer {}", path.display())).await?)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            }
        };
        value
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| PlatformError::NotFound {
                what: format!("model version pointer {parameter}"),
                message: "it has no value".into(),
            })
    }

    /// The bytes at an `s3://` or `file://` URI.
    /// Whether the object at `uri` exists: `NotFound` naming it when it does not.
    async fn exists(&self, uri: &str) -> Result<(), PlatformError> {
        if let Some(rest) = uri.strip_prefix("s3://") {
            let Some(s3) = &self.s3 else {
                return Err(PlatformError::Unsupported(format!(
                    "{uri}: s3:// model stores need the AWS platform; use a file:// store locally"
                )));
            };
            let (bucket, key) = rest.split_once('/').ok_or_else(|| {
                PlatformError::Unsupported(format!("{uri} is not s3://bucket/key"))
            })?;
            self.s3_head(s3, uri, bucket, key).await
        } else if let Some(path) = uri.strip_prefix("file://") {
            self.calls.record("file:StatArtifact", CallKind::Describe);
            match tokio::fs::metadata(path).await {
                Ok(_) => Ok(()),
                Err(e) => Err(PlatformError::NotFound {
                    what: uri.to_string(),
                    message: format!("{uri}: {e}"),
                }),
            }
        } else {
            Err(PlatformError::Unsupported(format!(
                "model store {uri} is neither s3:// nor file://"
            )))
        }
    }

    async fn read(&self, uri: &str) -> Result<Vec<u8>, PlatformError> {
        if let Some(rest) = uri.strip_prefix("s3://") {
            let Some(s3) = &self.s3 else {
                return Err(PlatformError::Unsupported(format!(
                    "{uri}: s3:// model stores need the AWS platform; use a file:// store locally"
                )));
            };
            let (bucket, key) = rest.split_once('/').ok_or_else(|| {
                PlatformError::Unsupported(format!("{uri} is not s3://bucket/key"))
            })?;
            self.s3_get(s3, uri, bucket, key).await
        } else if let Some(path) = uri.strip_prefix("file://") {
            self.calls.record("file:ReadMetadata", CallKind::Describe);
            read_file(&PathBuf::from(path), uri).await
        } else {
            Err(PlatformError::Unsupported(format!(
                "model store {uri} is neither s3:// nor file://"
            )))
        }
    }
}

/// The AWS calls, apart so a build without AWS has none (its clients have no values).
#[cfg(feature = "aws")]
impl StoreResolver {
    async fn ssm_pointer(
        &self,
        ssm: &SsmClient,
        parameter: &str,
    ) -> Result<Option<String>, PlatformError> {
        self.spend("ssm:GetParameter", QuotaClass::Ssm).await;
        let output = ssm
            .get_parameter()
            .name(parameter)
            .send()
            .await
            .map_err(|e| classify("ssm:GetParameter", &format!("SSM parameter {parameter}"), e))?;
        Ok(output
            .parameter()
            .and_then(|p| p.value())
            .map(str::to_string))
    }

    async fn s3_head(
        &self,
        s3: &S3Client,
        uri: &str,
        bucket: &str,
        key: &str,
    ) -> Result<(), PlatformError> {
        self.spend("s3:HeadObject", QuotaClass::S3).await;
        s3.head_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("s3:HeadObject", uri, e))?;
        Ok(())
    }

    async fn s3_get(
        &self,
        s3: &S3Client,
        uri: &str,
        bucket: &str,
        key: &str,
    ) -> Result<Vec<u8>, PlatformError> {
        self.spend("s3:GetObject", QuotaClass::S3).await;
        let output = s3
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| classify("s3:GetObject", uri, e))?;
        Ok(output
            .body
            .collect()
            .await
            .map_err(|e| PlatformError::Unavailable {
                api: "s3:GetObject",
                message: format!("reading {uri}: {e}"),
                source: Some(Box::new(e)),
            })?
            .into_bytes()
            .to_vec())
    }
}

/// Without AWS there is no client to call these with: the types are uninhabited.
#[cfg(not(feature = "aws"))]
impl StoreResolver {
    async fn s3_head(&self, s3: &S3Client, _: &str, _: &str, _: &str) -> Result<(), PlatformError> {
        match *s3 {}
    }

    async fn s3_get(
        &self,
        s3: &S3Client,
        _: &str,
        _: &str,
        _: &str,
    ) -> Result<Vec<u8>, PlatformError> {
        match *s3 {}
    }
}

async fn read_file(path: &std::path::Path, what: &str) -> Result<Vec<u8>, PlatformError> {
    tokio::fs::read(path)
        .await
        .map_err(|e| PlatformError::NotFound {
            what: what.to_string(),
            message: e.to_string(),
        })
}

impl ModelResolver for StoreResolver {
    fn resolve<'a>(
        &'a self,
        app: &'a Application,
    ) -> BoxFuture<'a, Result<std::collections::BTreeMap<String, ModelResolution>, PlatformError>>
    {
        Box::pin(async move {
            let mut results = Vec::new();
            for model in &app.spec.models {
                results.push((model.name.clone(), self.resolve_one(model).await));
            }
            settle(results)
        })
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}
