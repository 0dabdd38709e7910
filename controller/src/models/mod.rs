//! Model resolution: each model the document names, resolved to a concrete version
//! directory and a checked SHA-256, before the planner renders task definitions.
//!
//! A model names its version directly (`version`) or through a pointer
//! (`versionParameter`: an SSM parameter on AWS, a file locally); the version's
//! directory `<storeUri>/<version>` holds `metadata.json` with the artifact's `sha256`.
//! Implementations: [`store`] (SSM pointers with `s3://` or `file://` stores on AWS;
//! pointer files under `<stateDir>/models` with `file://` stores locally) and
//! [`memory`] (tests).
//!
//! Guarantees: a model that cannot be resolved for a reason that will not pass by
//! itself (a missing pointer, a missing or malformed `metadata.json`, a checksum that
//! differs from the document's `sha256`) is [`ModelResolution::Failed`] with the reason,
//! for that model only; only a transient failure (throttling, 5xx) fails the whole
//! resolution, so the pass backs off instead of planning from half an answer. Every
//! backend call is counted ([`ModelResolver::api_calls`]).

pub mod memory;
pub mod store;

use std::collections::BTreeMap;
use std::fmt;

use crate::document::{Application, Model};
use crate::observed::ModelResolution;
use crate::platform::{BoxFuture, CallCounts, PlatformError};

/// Resolves the document's models. See the module docs for the guarantees.
pub trait ModelResolver: Send + Sync + fmt::Debug {
    /// Every model of `app`, by name.
    fn resolve<'a>(
        &'a self,
        app: &'a Application,
    ) -> BoxFuture<'a, Result<BTreeMap<String, ModelResolution>, PlatformError>>;

    /// Every backend call made so far.
    fn api_calls(&self) -> CallCounts;
}

/// The directory of one version: `<storeUri>/<version>`.
pub fn version_uri(model: &Model, version: &str) -> String {
    format!("{}/{version}", model.store_uri.trim_end_matches('/'))
}

/// The `sha256` of a version's `metadata.json` (read from `metadata_uri`), lower-case
/// hex without a `sha256:` prefix.
pub fn parse_metadata(metadata_uri: &str, bytes: &[u8]) -> Result<String, PlatformError> {
    #[derive(serde::Deserialize)]
    struct Metadata {
        sha256: String,
    }
    let metadata: Metadata =
        serde_json::from_slice(bytes).map_err(|e| PlatformError::Rejected {
            api: "model check",
            message: format!("{metadata_uri} is not metadata JSON with a sha256 field: {e}"),
            source: None,
        })?;
    Ok(normalize_sha(&metadata.sha256))
}

fn normalize_sha(sha: &str) -> String {
    sha.trim_start_matches("sha256:").to_ascii_lowercase()
}

/// Refuses a checksum that differs from the one the document pins, if it pins one.
pub fn check_sha256(model: &Model, version: &str, sha256: &str) -> Result<(), PlatformError> {
    match &model.sha256 {
        Some(expected) if normalize_sha(expected) != sha256 => Err(PlatformError::Rejected {
            api: "model check",
            message: format!(
                "model {} {version}: metadata.json says sha256 {sha256} but the document expects {}",
                model.name,
                normalize_sha(expected)
            ),
            source: None,
        }),
        _ => Ok(()),
    }
}

/// Folds per-model results: failures that will not pass become `Failed`, a transient
/// one fails the whole resolution.
pub fn settle(
    results: impl IntoIterator<
        Item = (
            String,
            Result<crate::observed::ResolvedModel, PlatformError>,
        ),
    >,
) -> Result<BTreeMap<String, ModelResolution>, PlatformError> {
    let mut out = BTreeMap::new();
    for (name, result) in results {
        let resolution = match result {
            Ok(resolved) => ModelResolution::Resolved(resolved),
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => ModelResolution::Failed(err.to_string()),
        };
        out.insert(name, resolution);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(sha256: Option<&str>) -> Model {
        serde_json::from_value(serde_json::json!({
            "name": "churn", "storeUri": "s3://models/churn/", "version": "v1",
            "sha256": sha256,
        }))
        .expect("model")
    }

    #[test]
    fn a_version_directory_joins_store_and_version_once() {
        assert_eq!(version_uri(&model(None), "v1"), "s3://models/churn/v1");
    }

    #[test]
    fn metadata_checksums_are_normalised_and_checked_against_the_document() {
        let sha = parse_metadata("m", br#"{"sha256": "sha256:ABCD", "extra": 1}"#).expect("parses");
        assert_eq!(sha, "abcd");
        assert!(check_sha256(&model(Some("sha256:abcd")), "v1", &sha).is_ok());
        let err = check_sha256(&model(Some("ef01")), "v1", &sha).expect_err("differs");
        assert!(err.to_string().contains("expects ef01"), "{err}");
        let err = parse_metadata("s3://m/v1/metadata.json", b"{}").expect_err("no sha");
        assert!(err.to_string().contains("s3://m/v1/metadata.json"), "{err}");
    }
}
