//! tugboat's inference service: a scikit-learn classifier exported to ONNX, served
//! over HTTP with tract, replacing the seed's FastAPI + pickle `ml-model-service`.
//!
//! - [`artifact`]: where the model comes from (local path or S3) and the checksum
//!   and version checks it must pass before anything parses it.
//! - [`model`]: the verified model, prepared by tract, and predictions.
//! - [`api`]: the HTTP routes, errors and limits.
//!
//! Lifecycle: the server starts listening at once and answers `/health`, while
//! [`load_and_install`] fetches and verifies the model in the background; `/ready`
//! turns 200 only when a verified model is installed. A model that fails any check
//! is never served: the failure is logged with its reason and shown by `/ready`.

pub mod api;
pub mod artifact;
pub mod model;

use std::future::Future;

use tokio::net::TcpListener;

pub use api::{AppState, Settings, app};
pub use artifact::{ArtifactError, Expected, ModelSource};
pub use model::{LoadedModel, ModelError, ModelMetadata};

/// Why a model was not installed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Fetching or verifying the artifact failed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// tract could not prepare or run the verified bytes.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Fetch, verify and prepare the model at `source`.
pub async fn load(source: &ModelSource, expected: &Expected) -> Result<LoadedModel, LoadError> {
    let artifact = artifact::fetch_verified(source, expected).await?;
    // Preparing optimises the graph: CPU work, kept off the async workers.
    let prepared = tokio::task::spawn_blocking(move || {
        LoadedModel::from_bytes(&artifact.onnx, artifact.metadata)
    })
    .await
    .map_err(|join| ModelError::Parse {
        source: join.to_string().into(),
    })??;
    Ok(prepared)
}

/// Load the model and install it into `state`, or record and log why not.
/// Returns whether a model is now being served.
pub async fn load_and_install(state: AppState, source: ModelSource, expected: Expected) -> bool {
    tracing::info!(source = %source, "loading model");
    match load(&source, &expected).await {
        Ok(model) => {
            tracing::info!(
                source = %source,
                version = model.version(),
                sha256 = %model.metadata().sha256,
                input_width = model.input_width(),
                "model verified and loaded; ready"
            );
            state.install(model)
        }
        Err(err) => {
            tracing::error!(
                source = %source,
                error = %err,
                "model not served: {err}"
            );
            state.record_load_failure(err.to_string());
            false
        }
    }
}

/// Serve `app(state)` on `listener` until `shutdown` resolves, then drain.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service_kit::serve(listener, app(state), shutdown).await
}
