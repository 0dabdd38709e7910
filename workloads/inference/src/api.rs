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
//! | `GET /openapi.json` | this API as an OpenAPI 3.1 document ([`openapi`]), checked in as `workloads/inference/openapi.json` |
//!
//! Every route also answers under `/ml` (the ALB forwards `/ml/*` unchanged).
//!
//! Guarantees: a client mistake (malformed JSON, wrong shape or width, a value
//! that is not a finite number, an empty or oversized batch, an oversized body, a
//! wrong content type) gets a 4xx with `{"error": "...", "kind": "..."}` naming the problem, never a
//! panic or a 5xx. Predictions are limited by a deadline and a concurrency cap.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use service_kit::features::{FeatureError, FeatureRow, fast_row};
use service_kit::json::{
    BodyLimit, ErrorBody, JsonBody, JsonBodyError, JsonBytes, error_response, json_response, parse,
};
use service_kit::limits::Limits;
use service_kit::metrics::{self, HttpMetrics, escape, write_family};
use tower::ServiceBuilder;

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
    /// The body is not JSON, too large, unreadable or of the wrong shape.
    #[error(transparent)]
    Body(#[from] JsonBodyError),
    /// The route exists with another method.
    #[error("method {method} is not allowed on {path}")]
    MethodNotAllowed { method: Method, path: String },
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            Self::Body(e) => (e.status(), e.kind()),
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
    let faults = state.inner.settings.faults;
    // Inside the limits: injected latency counts against the request deadline.
    let injector = faults
        .is_active()
        .then(|| middleware::from_fn_with_state(Injector::new(faults), fault::inject));
    let mut batch = Router::new().route("/predict/batch", post(predict_batch));
    if let Some(injector) = injector.clone() {
        batch = batch.route_layer(injector);
    }
    let batch = batch.route_layer(limits.clone());
    let routes = Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/model", get(model_metadata))
        .route("/metrics", get(render_metrics))
        .route("/openapi.json", get(openapi_json))
        .merge(batch);
    let metrics = Arc::clone(&state.inner.metrics);
    // `/predict` is one service composed of the same layers (metrics, limits, faults)
    // rather than a handler under router layers: every layer a router puts on a route
    // costs each request a clone of the route below it and a boxed future, which a
    // profile put at a visible share of `/predict`'s CPU. Added after the router's own
    // layer, so it is not wrapped twice.
    let hot = ServiceBuilder::new()
        .layer(metrics::Track::new(Arc::clone(&metrics)))
        .layer(limits)
        .option_layer(injector)
        .service(PredictRoute {
            state: state.clone(),
        });
    Router::new()
        .merge(routes.clone())
        .nest("/ml", routes)
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        // The only layer on every other route: metrics and the request id's echo.
        // Bodies are limited by `JsonBody` from `max_body_bytes`.
        .layer(metrics::Track::new(metrics))
        .route_service("/predict", hot.clone())
        .route_service("/ml/predict", hot)
        .with_state(state)
}

/// `/predict` as a service of its own (see [`app`]): any method but POST is answered
/// as the router answers it for other routes.
#[derive(Debug, Clone)]
struct PredictRoute {
    state: AppState,
}

impl tower::Service<Request> for PredictRoute {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move {
            if req.method() != Method::POST {
                let (method, uri) = (req.method().clone(), req.uri().clone());
                return Ok(method_not_allowed(method, uri).await.into_response());
            }
            Ok(match JsonBytes::from_request(req, &state).await {
                Ok(body) => predict(State(state), body).await.into_response(),
                Err(rejection) => rejection.into_response(),
            })
        })
    }
}

/// Liveness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `healthy`.
    status: &'static str,
    /// `ml-model-service`.
    service: &'static str,
    /// The model served, once one is loaded.
    model_version: Option<String>,
}

/// Liveness: the process serves HTTP. Never depends on the model.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process serves", body = Health)))]
async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: SERVICE_NAME,
        model_version: state.model().map(|m| m.version().to_owned()),
    })
}

/// Readiness: whether a verified model is loaded, and if not, why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness<'a> {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// The model served (`null` while not ready).
    model_version: Option<&'a str>,
    /// Hex sha256 of the served `model.onnx` (when ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    sha256: Option<&'a str>,
    /// `loading`, `retrying` or `failed` (when not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    load: Option<&'static str>,
    /// Load attempts that failed so far (when not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempts: Option<u32>,
    /// Why no model is served (when not ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Readiness: 200 once a verified model is loaded, 503 (saying why) before.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "A verified model is served", body = Readiness),
        (status = 503, description = "Loading, retrying a transient failure, or given up", body = Readiness),
    ))]
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

/// The served model's `metadata.json`.
#[utoipa::path(get, path = "/model", tag = "model",
    responses(
        (status = 200, description = "The model's metadata", body = ModelMetadata),
        (status = 503, description = "`model_not_ready`", body = ErrorBody),
    ))]
async fn model_metadata(State(state): State<AppState>) -> Result<Json<ModelMetadata>, ApiError> {
    let model = state.model().ok_or(ApiError::ModelNotReady)?;
    Ok(Json(model.metadata().clone()))
}

/// `POST /predict` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PredictRequest {
    /// One row: exactly the model's `input_width` finite numbers (30 for the
    /// committed models), each within the range of a 32-bit float.
    #[schema(value_type = Vec<f64>, min_items = 1)]
    pub features: FeatureRow,
}

/// `POST /predict` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PredictResponse<'a> {
    #[serde(flatten)]
    prediction: Prediction,
    /// The model that answered.
    model_version: &'a str,
}

/// Predict one row.
#[utoipa::path(post, path = "/predict", tag = "predict",
    request_body(content = PredictRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The prediction", body = PredictResponse),
        (status = 400, description = "`malformed_json`, `body_unreadable`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`not_json`: content-type is not application/json", body = ErrorBody),
        (status = 422, description = "`wrong_shape`, `wrong_width`, `not_a_number`, `not_finite`, `empty_features`", body = ErrorBody),
        (status = 500, description = "`prediction_failed`, or `fault_injected` (FAULT_RATE)", body = ErrorBody),
        (status = 503, description = "`model_not_ready`, `overloaded`", body = ErrorBody),
        (status = 504, description = "`timeout`", body = ErrorBody),
    ))]
async fn predict(
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<Response, ApiError> {
    // The body as clients send it is parsed without serde; anything else (and every
    // mistake) goes through serde, which answers as for any other route.
    let row = match fast_row(&body, "features") {
        Some(row) => row,
        None => parse::<PredictRequest>(&body)?.features,
    };
    let model = state.model().ok_or(ApiError::ModelNotReady)?;
    let features = row.check(&"features", Some(model.input_width()))?;
    // The model call takes microseconds (see benches/model.rs), so it runs inline
    // on the runtime thread: spawn_blocking would cost more than it saves.
    let prediction = model
        .predict_one(&features)
        .map_err(ApiError::PredictionFailed)?;
    Ok(json_response(
        &PredictResponse {
            prediction,
            model_version: model.version(),
        },
        256,
    ))
}

/// `POST /predict/batch` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BatchRequest {
    /// Rows, each like `features` of `/predict`; at least 1, at most `MAX_BATCH`.
    #[schema(value_type = Vec<Vec<f64>>, min_items = 1)]
    pub instances: Vec<FeatureRow>,
}

/// `POST /predict/batch` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchResponse<'a> {
    /// One prediction per instance, in order.
    predictions: Vec<Prediction>,
    /// The model that answered.
    model_version: &'a str,
}

struct InstanceField(usize);

impl std::fmt::Display for InstanceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instances[{}]", self.0)
    }
}

/// Predict several rows in one model call.
#[utoipa::path(post, path = "/predict/batch", tag = "predict",
    request_body(content = BatchRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "One prediction per instance", body = BatchResponse),
        (status = 400, description = "`malformed_json`, `body_unreadable`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`not_json`", body = ErrorBody),
        (status = 422, description = "`wrong_shape`, `empty_batch`, `batch_too_large`, and the row errors of `/predict`", body = ErrorBody),
        (status = 500, description = "`prediction_failed`, `fault_injected`", body = ErrorBody),
        (status = 503, description = "`model_not_ready`, `overloaded`", body = ErrorBody),
        (status = 504, description = "`timeout`", body = ErrorBody),
    ))]
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
        row.check_into(&InstanceField(i), Some(width), &mut features)?;
    }
    let predictions = model
        .predict(&features, rows)
        .map_err(ApiError::PredictionFailed)?;
    Ok(json_response(
        &BatchResponse {
            predictions,
            model_version: model.version(),
        },
        64 + 160 * rows,
    ))
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
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

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service",
        body = Object, content_type = "application/json")))]
async fn openapi_json() -> Response {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    let body = DOCUMENT.get_or_init(openapi_document);
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tugboat inference service (ml-model-service)",
        description = "Predictions of the ONNX classifier. Every route also answers under `/ml` \
            (the ALB forwards `/ml/*` unchanged). Every error body is `ErrorBody`: \
            `{\"error\": message, \"kind\": stable name}`; an unknown route is 404 `no_route`, \
            a wrong method 405 `method_not_allowed`."
    ),
    paths(
        health,
        ready,
        predict,
        predict_batch,
        model_metadata,
        render_metrics,
        openapi_json
    ),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// The OpenAPI 3.1 document: the annotated routes, and each again under `/ml`
/// (operation ids prefixed `ml_`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = ApiDoc::openapi();
    let prefixed: Vec<_> = doc
        .paths
        .paths
        .iter()
        .map(|(path, item)| {
            let mut item = item.clone();
            for operation in [&mut item.get, &mut item.post].into_iter().flatten() {
                operation.operation_id = operation.operation_id.take().map(|id| format!("ml_{id}"));
            }
            (format!("/ml{path}"), item)
        })
        .collect();
    doc.paths.paths.extend(prefixed);
    doc
}

/// [`openapi`] as the pretty JSON that is checked in (`workloads/inference/openapi.json`).
pub fn openapi_document() -> String {
    let mut json = serde_json::to_string_pretty(&openapi()).unwrap_or_default();
    json.push('\n');
    json
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
