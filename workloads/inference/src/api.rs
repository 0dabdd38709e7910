//! The HTTP API, with the seed's route names.
//!
//! | route | answer |
//! |---|---|
//! | `GET /health` | liveness: 200 while the process serves, with the model version once loaded; never depends on the model |
//! | `GET /ready` | readiness: 200 once a verified model is loaded, 503 before, while a transient failure is retried (with the attempts so far and the last error), and forever after a load that failed for good (with the reason) |
//! | `POST /predict` | `{"features": [..]}` -> `{"prediction", "label", "confidence", "probabilities", "model_version"}` |
//! | `POST /predict/batch` | `{"instances": [[..], ..]}` -> `{"predictions": [..], "model_version"}` |
//! | `GET /model` | the model's `metadata.json` |
//! | `GET /metrics` | Prometheus text |
//!
//! Every route also answers under `/ml` (the ALB forwards `/ml/*` unchanged).
//!
//! Guarantees: a client mistake (malformed JSON, wrong shape or width, a value
//! that is not a finite number, an empty or oversized batch, an oversized body, a
//! wrong content type) gets a 4xx with `{"error": "...", "kind": "..."}` naming the problem, never a
//! panic or a 5xx. Predictions are limited by a deadline and a concurrency cap.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use service_kit::features::{FeatureError, RawFeature, validate_row};
use service_kit::json::{BodyLimit, JsonBody, error_response};
use service_kit::limits::{self, Limits};
use service_kit::metrics::{self, HttpMetrics, escape, write_family};
use tower_http::request_id::PropagateRequestIdLayer;

use crate::fault::{self, Faults, Injector};
use crate::model::{LoadedModel, ModelError, ModelMetadata, Prediction};

/// The `service` name in `/health` and metrics, as in the seed.
pub const SERVICE_NAME: &str = "ml-model-service";

/// Limits of the HTTP layer, and the fault switch.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Most rows in one `/predict/batch` request.
    pub max_batch: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Deadline for one prediction request, queueing included.
    pub request_timeout: Duration,
    /// Most prediction requests running at once.
    pub max_concurrency: usize,
    /// `FAULT_RATE` and `FAULT_LATENCY` ([`crate::fault`]); off by default.
    pub faults: Faults,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_batch: 256,
            max_body_bytes: 512 * 1024,
            request_timeout: Duration::from_secs(5),
            max_concurrency: 256,
            faults: Faults::default(),
        }
    }
}

/// Shared state: the model once loaded, why loading failed if it did, metrics.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    // Set once: a model change is a new task-definition revision, not a hot swap,
    // so a lock-free read on every request is all the serving path needs.
    model: OnceLock<LoadedModel>,
    load_status: Mutex<LoadStatus>,
    settings: Settings,
    metrics: Arc<HttpMetrics>,
}

impl AppState {
    pub fn new(settings: Settings) -> Self {
        Self {
            inner: Arc::new(Inner {
                model: OnceLock::new(),
                load_status: Mutex::new(LoadStatus::Loading),
                settings,
                metrics: HttpMetrics::new("inference"),
            }),
        }
    }

    /// Start serving `model`. Returns false (and changes nothing) if a model is
    /// already being served.
    pub fn install(&self, model: LoadedModel) -> bool {
        self.inner.model.set(model).is_ok()
    }

    /// Record that attempt `attempts` failed for a transient cause and another
    /// will follow, for `/ready`.
    pub fn record_load_retry(&self, attempts: u32, last_error: String) {
        self.inner.metrics.count_error("model_load_retried");
        *self.lock_status() = LoadStatus::Retrying {
            attempts,
            last_error,
        };
    }

    /// Record why the model will not be served (after `attempts` attempts), for
    /// `/ready`.
    pub fn record_load_failure(&self, attempts: u32, reason: String) {
        self.inner.metrics.count_error("model_load_failed");
        *self.lock_status() = LoadStatus::Failed { attempts, reason };
    }

    /// Where loading stands: [`LoadStatus::Ready`] once a model is served.
    pub fn load_status(&self) -> LoadStatus {
        if self.model().is_some() {
            return LoadStatus::Ready;
        }
        self.lock_status().clone()
    }

    fn lock_status(&self) -> std::sync::MutexGuard<'_, LoadStatus> {
        self.inner
            .load_status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn model(&self) -> Option<&LoadedModel> {
        self.inner.model.get()
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }
}

/// Where the model load stands, as `/ready` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoadStatus {
    /// The first attempt is running.
    Loading,
    /// `attempts` attempts failed for transient causes; another will be made.
    Retrying { attempts: u32, last_error: String },
    /// No model will be served: the last of `attempts` attempts failed with
    /// `reason` (a failed check, or transient failures until no attempt was left).
    Failed { attempts: u32, reason: String },
    /// A verified model is served.
    Ready,
}

impl BodyLimit for AppState {
    fn body_limit(&self) -> usize {
        self.inner.settings.max_body_bytes
    }
}

/// Why a request failed; each variant maps to one status and error kind.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No verified model yet (or loading failed).
    #[error("model is not loaded yet")]
    ModelNotReady,
    /// A feature vector failed validation.
    #[error(transparent)]
    InvalidFeatures(#[from] FeatureError),
    /// `instances` was empty.
    #[error("instances: must not be empty")]
    EmptyBatch,
    /// More rows than `max_batch`.
    #[error("instances: {got} rows is more than the limit of {limit}")]
    BatchTooLarge { got: usize, limit: usize },
    /// The model failed on input that passed validation: our fault, not the client's.
    #[error("prediction failed")]
    PredictionFailed(#[source] ModelError),
    /// No such route.
    #[error("no route for {method} {path}")]
    NoRoute { method: Method, path: String },
    /// The route exists with another method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String },
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            Self::ModelNotReady => (StatusCode::SERVICE_UNAVAILABLE, "model_not_ready"),
            Self::InvalidFeatures(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.kind()),
            Self::EmptyBatch => (StatusCode::UNPROCESSABLE_ENTITY, "empty_batch"),
            Self::BatchTooLarge { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "batch_too_large"),
            Self::PredictionFailed(source) => {
                // The detail goes to the log, not to the client.
                tracing::error!(error = %source, "prediction failed on validated input");
                (StatusCode::INTERNAL_SERVER_ERROR, "prediction_failed")
            }
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "no_route"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        };
        error_response(status, kind, &self.to_string())
    }
}

/// The router: every route at `/` and under `/ml`, metrics on all of them.
pub fn app(state: AppState) -> Router {
    let limits = Limits::new(
        state.inner.settings.request_timeout,
        state.inner.settings.max_concurrency,
    );
    let mut predict = Router::new()
        .route("/predict", post(predict))
        .route("/predict/batch", post(predict_batch));
    let faults = state.inner.settings.faults;
    if faults.is_active() {
        // Inside the limits: injected latency counts against the request deadline.
        predict = predict.route_layer(middleware::from_fn_with_state(
            Injector::new(faults),
            fault::inject,
        ));
    }
    let predict = predict.route_layer(middleware::from_fn_with_state(limits, limits::enforce));
    let routes = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/model", get(model_metadata))
        .route("/metrics", get(render_metrics))
        .merge(predict);
    let metrics = Arc::clone(&state.inner.metrics);
    Router::new()
        .merge(routes.clone())
        .nest("/ml", routes)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.inner.settings.max_body_bytes))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
    model_version: Option<String>,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: SERVICE_NAME,
        model_version: state.model().map(|m| m.version().to_owned()),
    })
}

#[derive(Debug, Serialize)]
struct Readiness<'a> {
    status: &'static str,
    model_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    /// `loading`, `retrying` or `failed` while not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    load: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

async fn ready(State(state): State<AppState>) -> Response {
    if let Some(model) = state.model() {
        return Json(Readiness {
            status: "ready",
            model_version: Some(model.version()),
            sha256: Some(&model.metadata().sha256),
            load: None,
            attempts: None,
            error: None,
        })
        .into_response();
    }
    let (load, attempts, error) = match state.load_status() {
        LoadStatus::Loading | LoadStatus::Ready => {
            ("loading", 0, "model is not loaded yet".to_owned())
        }
        LoadStatus::Retrying {
            attempts,
            last_error,
        } => ("retrying", attempts, last_error),
        LoadStatus::Failed { attempts, reason } => ("failed", attempts, reason),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Readiness {
            status: "not_ready",
            model_version: None,
            sha256: None,
            load: Some(load),
            attempts: Some(attempts),
            error: Some(error),
        }),
    )
        .into_response()
}

async fn model_metadata(State(state): State<AppState>) -> Result<Json<ModelMetadata>, ApiError> {
    let model = state.model().ok_or(ApiError::ModelNotReady)?;
    Ok(Json(model.metadata().clone()))
}

/// `POST /predict` body.
#[derive(Debug, Deserialize)]
pub struct PredictRequest {
    pub features: Vec<RawFeature>,
}

#[derive(Debug, Serialize)]
struct PredictResponse<'a> {
    #[serde(flatten)]
    prediction: Prediction,
    model_version: &'a str,
}

async fn predict(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<PredictRequest>,
) -> Result<Response, ApiError> {
    let model = state.model().ok_or(ApiError::ModelNotReady)?;
    let mut features = Vec::with_capacity(model.input_width());
    validate_row(
        &"features",
        &request.features,
        Some(model.input_width()),
        &mut features,
    )?;
    // The model call takes microseconds (see benches/model.rs), so it runs inline
    // on the runtime thread: spawn_blocking would cost more than it saves.
    let prediction = model
        .predict(&features, 1)
        .map_err(ApiError::PredictionFailed)?
        .pop()
        .ok_or_else(|| {
            ApiError::PredictionFailed(ModelError::UnexpectedOutputs("no rows".to_owned()))
        })?;
    Ok(Json(PredictResponse {
        prediction,
        model_version: model.version(),
    })
    .into_response())
}

/// `POST /predict/batch` body.
#[derive(Debug, Deserialize)]
pub struct BatchRequest {
    pub instances: Vec<Vec<RawFeature>>,
}

#[derive(Debug, Serialize)]
struct BatchResponse<'a> {
    predictions: Vec<Prediction>,
    model_version: &'a str,
}

struct InstanceField(usize);

impl std::fmt::Display for InstanceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instances[{}]", self.0)
    }
}

async fn predict_batch(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<BatchRequest>,
) -> Result<Response, ApiError> {
    let model = state.model().ok_or(ApiError::ModelNotReady)?;
    let rows = request.instances.len();
    if rows == 0 {
        return Err(ApiError::EmptyBatch);
    }
    let limit = state.inner.settings.max_batch;
    if rows > limit {
        return Err(ApiError::BatchTooLarge { got: rows, limit });
    }
    let width = model.input_width();
    let mut features = Vec::with_capacity(rows * width);
    for (i, row) in request.instances.iter().enumerate() {
        validate_row(&InstanceField(i), row, Some(width), &mut features)?;
    }
    let predictions = model
        .predict(&features, rows)
        .map_err(ApiError::PredictionFailed)?;
    Ok(Json(BatchResponse {
        predictions,
        model_version: model.version(),
    })
    .into_response())
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    state.inner.metrics.render(&mut out);
    let service = escape(state.inner.metrics.service());
    write_family(
        &mut out,
        "tugboat_model_ready",
        "gauge",
        "1 when a verified model is loaded and served, else 0.",
    );
    out.push_str(&format!(
        "tugboat_model_ready{{service=\"{service}\"}} {}\n",
        u8::from(state.model().is_some())
    ));
    write_family(
        &mut out,
        "tugboat_model_info",
        "gauge",
        "The model being served (always 1), labelled with its version and sha256.",
    );
    if let Some(model) = state.model() {
        out.push_str(&format!(
            "tugboat_model_info{{service=\"{service}\",version=\"{}\",sha256=\"{}\"}} 1\n",
            escape(model.version()),
            escape(&model.metadata().sha256)
        ));
    }
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], out).into_response()
}

async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::NoRoute {
        method,
        path: uri.path().to_owned(),
    }
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method,
        path: uri.path().to_owned(),
    }
}
