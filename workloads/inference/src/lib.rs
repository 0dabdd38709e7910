//! tugboat's inference service: a scikit-learn classifier exported to ONNX, served
//! over HTTP with tract, replacing the seed's FastAPI + pickle `ml-model-service`.
//!
//! - [`artifact`]: where the model comes from (local path or S3) and the checksum
//!   and version checks it must pass before anything parses it.
//! - [`model`]: the verified model, prepared by tract, and predictions.
//! - [`api`]: the HTTP routes, errors and limits.
//! - [`fault`]: the fault switch (`FAULT_RATE`, `FAULT_LATENCY`), off by default.
//!
//! Lifecycle: the server starts listening at once and answers `/health` (liveness:
//! the process serves), while [`load_and_install`] fetches and verifies the model in
//! the background; `/ready` (readiness: a verified model is loaded and predictions
//! can be answered) turns 200 only when a verified model is installed. A load that
//! fails for a transient cause (S3 unreachable, throttled, 5xx, a cut-off body) is
//! retried with capped exponential backoff ([`RetryPolicy`]); a failed check
//! (checksum, version, metadata) is never retried. A model that fails any check is
//! never served: the failure is logged with its reason and shown by `/ready`.

pub mod api;
pub mod artifact;
pub mod dense;
pub mod fault;
pub mod model;

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpListener;

pub use api::{AppState, LoadStatus, Settings, app};
pub use artifact::{ArtifactError, Expected, ModelSource};
pub use fault::{FaultError, Faults};
pub use model::{Engine, LoadedModel, ModelError, ModelMetadata};

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

impl LoadError {
    /// Whether another attempt may succeed: only fetch failures in transport or on
    /// the service's side. A model tract refused is refused again.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Artifact(err) => err.is_transient(),
            Self::Model(_) => false,
        }
    }
}

/// How often and how patiently a transiently failed model load is tried again
/// (`MODEL_LOAD_ATTEMPTS`, `MODEL_LOAD_BACKOFF_MS`, `MODEL_LOAD_MAX_BACKOFF_MS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Pause after the first failed attempt; doubled after each further one.
    pub initial_backoff: Duration,
    /// The pause never exceeds this.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // 0.5, 1, 2, 4, 8, 16, 30, 30, 30 s: about two minutes, well inside the
        // container health check's start period plus retries of the manifests.
        Self {
            attempts: 10,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retry at all.
    pub fn once() -> Self {
        Self {
            attempts: 1,
            ..Self::default()
        }
    }

    /// The pause after failed attempt number `attempt` (1-based), or `None` when no
    /// attempt is left.
    pub fn delay_after(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.attempts.max(1) {
            return None;
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        Some(
            self.initial_backoff
                .saturating_mul(factor)
                .min(self.max_backoff),
        )
    }
}

/// Fetch, verify and prepare the model at `source`.
pub async fn load(source: &ModelSource, expected: &Expected) -> Result<LoadedModel, LoadError> {
    load_with(source, expected, None).await
}

/// [`load`] with the S3 client given (`None`: one from the environment).
pub async fn load_with(
    source: &ModelSource,
    expected: &Expected,
    s3: Option<&artifact::S3Client>,
) -> Result<LoadedModel, LoadError> {
    let artifact = artifact::fetch_verified_with(source, expected, s3).await?;
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

/// Run `attempt` until it succeeds, fails for a cause that is not transient, or
/// `policy` has no attempt left, sleeping [`RetryPolicy::delay_after`] between
/// attempts. `on_failure(attempt, error, next_delay)` sees every failure (with
/// `None` for the last one). Returns the model, or the last error and how many
/// attempts were made.
pub async fn retry_load<F, Fut>(
    policy: RetryPolicy,
    mut attempt: F,
    mut on_failure: impl FnMut(u32, &LoadError, Option<Duration>),
) -> Result<LoadedModel, (LoadError, u32)>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<LoadedModel, LoadError>>,
{
    let mut made = 0u32;
    loop {
        made += 1;
        let err = match attempt().await {
            Ok(model) => return Ok(model),
            Err(err) => err,
        };
        let next = if err.is_transient() {
            policy.delay_after(made)
        } else {
            None
        };
        on_failure(made, &err, next);
        match next {
            Some(delay) => tokio::time::sleep(delay).await,
            None => return Err((err, made)),
        }
    }
}

/// Load the model and install it into `state`, or record and log why not, with the
/// default [`RetryPolicy`] and an S3 client from the environment. Returns whether a
/// model is now being served.
pub async fn load_and_install(state: AppState, source: ModelSource, expected: Expected) -> bool {
    load_and_install_with(state, source, expected, RetryPolicy::default(), None).await
}

/// [`load_and_install`] with the retry policy and the S3 client given.
pub async fn load_and_install_with(
    state: AppState,
    source: ModelSource,
    expected: Expected,
    policy: RetryPolicy,
    s3: Option<artifact::S3Client>,
) -> bool {
    tracing::info!(source = %source, "loading model");
    #[cfg(feature = "s3")]
    let s3 = match (&source, s3) {
        (ModelSource::S3 { .. }, None) => Some(artifact::s3_client().await),
        (_, s3) => s3,
    };
    let result = retry_load(
        policy,
        || load_with(&source, &expected, s3.as_ref()),
        |attempt, err, next| match next {
            Some(delay) => {
                tracing::warn!(
                    source = %source,
                    attempt,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    error = %err,
                    "model load failed for a transient cause; retrying"
                );
                state.record_load_retry(attempt, err.to_string());
            }
            None => {
                tracing::error!(
                    source = %source,
                    attempt,
                    transient = err.is_transient(),
                    error = %err,
                    "model not served: {err}"
                );
                state.record_load_failure(attempt, err.to_string());
            }
        },
    )
    .await;
    match result {
        Ok(model) => {
            tracing::info!(
                source = %source,
                version = model.version(),
                sha256 = %model.metadata().sha256,
                input_width = model.input_width(),
                engine = model.engine().as_str(),
                dense_refused = model.dense_refusal(),
                "model verified and loaded; ready"
            );
            state.install(model)
        }
        Err(_) => false,
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
