//! tugboat's backend API, the mobile app's entry point (the seed's `backend-api`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /health`, `GET /api/health` | liveness: 200 while the process serves (a down inference service must not get the API's tasks restarted) |
//! | `GET /ready`, `GET /api/ready` | readiness: 200 when the inference service answers its own `/ready` with 200 (asked once per call, within `ML_TIMEOUT_MS`), else 503 saying why |
//! | `POST /api/predict` | `{"features": [..]}` validated, forwarded to `ML_SERVICE_URL/predict`; the prediction and its `model_version` come back |
//! | `GET /metrics` | Prometheus text: HTTP families plus upstream outcomes |
//! | `GET /openapi.json`, `GET /api/openapi.json` | this API as an OpenAPI 3.1 document ([`openapi`]), checked in as `workloads/backend/openapi.json` |
//!
//! Every request carries an `x-request-id` (the caller's, or a new UUID): it is
//! forwarded to the inference service and returned on the response, so one id
//! follows a prediction through both services' logs. The answer also carries the
//! model version in an `x-model-version` header.
//!
//! Guarantees: client mistakes are 4xx JSON errors; upstream failures are 502, 503
//! or 504 JSON errors ([`upstream`]) without the raw error text.

pub mod upstream;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use service_kit::features::{FeatureError, FeatureRow};
use service_kit::json::{BodyLimit, ErrorBody, JsonBody, error_response};
use service_kit::limits::Limits;
use service_kit::metrics::{self, HttpMetrics, escape, write_family};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, SetRequestIdLayer};

pub use upstream::{Answer, ClientError, Prediction, Upstream, UpstreamError, UpstreamSettings};

/// The `service` name in `/health`, as in the seed.
pub const SERVICE_NAME: &str = "backend-api";

/// Limits of the HTTP layer.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Deadline for one `/api/predict`, queueing and retries included.
    pub request_timeout: Duration,
    /// Most `/api/predict` requests in flight.
    pub max_concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            max_concurrency: 512,
        }
    }
}

/// Shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    upstream: Upstream,
    settings: Settings,
    metrics: Arc<HttpMetrics>,
}

impl AppState {
    pub fn new(settings: Settings, upstream: UpstreamSettings) -> Result<Self, ClientError> {
        Ok(Self {
            inner: Arc::new(Inner {
                upstream: Upstream::new(upstream)?,
                settings,
                metrics: HttpMetrics::new("backend"),
            }),
        })
    }
}

impl BodyLimit for AppState {
    fn body_limit(&self) -> usize {
        self.inner.settings.max_body_bytes
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The feature vector failed validation here, before any upstream call.
    #[error(transparent)]
    InvalidFeatures(#[from] FeatureError),
    /// The inference call failed.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
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
            Self::InvalidFeatures(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.kind()),
            Self::Upstream(e) => (e.status(), e.kind()),
            Self::NoRoute { .. } => (StatusCode::NOT_FOUND, "no_route"),
            Self::MethodNotAllowed { .. } => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
        };
        error_response(status, kind, &self.to_string())
    }
}

/// The router.
pub fn app(state: AppState) -> Router {
    let limits = Limits::new(
        state.inner.settings.request_timeout,
        state.inner.settings.max_concurrency,
    );
    let metrics = Arc::clone(&state.inner.metrics);
    Router::new()
        .route("/api/predict", post(predict))
        .route_layer(limits)
        .route("/health", get(health))
        .route("/api/health", get(health))
        .route("/ready", get(ready))
        .route("/api/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .route("/openapi.json", get(openapi_json))
        .route("/api/openapi.json", get(openapi_json))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        // Layers run outermost-last-added: the id is set (if absent) before the
        // handler reads it, and `Track` copies it onto the response on the way out.
        // Bodies are limited by `JsonBody` from `max_body_bytes`.
        .layer(metrics::Track::new(metrics))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Serve `app(state)` on `listener` until `shutdown` resolves, then drain.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    service_kit::serve(listener, app(state), shutdown).await
}

/// Liveness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `healthy`.
    status: &'static str,
    /// `backend-api`.
    service: &'static str,
}

/// Liveness: the process serves HTTP, whatever the inference service does.
#[utoipa::path(get, path = "/health", tag = "health",
    responses((status = 200, description = "The process serves", body = Health)))]
async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: SERVICE_NAME,
    })
}

/// Readiness: whether the inference service can answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    status: &'static str,
    /// `backend-api`.
    service: &'static str,
    /// The model the inference service serves, when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<String>,
    /// Why not ready: the inference service is unreachable, not ready, or slow.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Readiness: 200 when the inference service's `/ready` answers 200.
#[utoipa::path(get, path = "/ready", tag = "health",
    responses(
        (status = 200, description = "The inference service is ready", body = Readiness),
        (status = 503, description = "The inference service is unreachable, not ready or too slow", body = Readiness),
    ))]
async fn ready(State(state): State<AppState>) -> Response {
    match state.inner.upstream.probe_ready().await {
        Ok(model_version) => Json(Readiness {
            status: "ready",
            service: SERVICE_NAME,
            model_version,
            error: None,
        })
        .into_response(),
        Err(err) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status: "not_ready",
                service: SERVICE_NAME,
                model_version: None,
                error: Some(err.to_string()),
            }),
        )
            .into_response(),
    }
}

/// `POST /api/predict` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct PredictRequest {
    /// One row of finite numbers (within the range of a 32-bit float); the model
    /// decides the width (30 for the committed models).
    #[schema(value_type = Vec<f64>, min_items = 1)]
    pub features: FeatureRow,
}

/// Predict one row (validated here, answered by the inference service).
#[utoipa::path(post, path = "/api/predict", tag = "predict",
    request_body(content = PredictRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The prediction; `x-model-version` names the model", body = Prediction),
        (status = 400, description = "`malformed_json`, `body_unreadable`", body = ErrorBody),
        (status = 413, description = "`body_too_large`", body = ErrorBody),
        (status = 415, description = "`not_json`: content-type is not application/json", body = ErrorBody),
        (status = 422, description = "`wrong_shape`, `not_a_number`, `not_finite`, `empty_features`; or `upstream_rejected` with the inference service's message (e.g. the wrong width)", body = ErrorBody),
        (status = 502, description = "`upstream_bad_answer`: the inference service answered, but not with a prediction", body = ErrorBody),
        (status = 503, description = "`upstream_unreachable`, `upstream_not_ready`, `overloaded`", body = ErrorBody),
        (status = 504, description = "`upstream_timeout`, `upstream_timed_out`, `timeout`", body = ErrorBody),
    ))]
async fn predict(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PredictRequest>,
) -> Result<Response, ApiError> {
    // The width is the model's business (and changes with it); here we only make
    // sure not to forward something that is not a list of finite numbers.
    let features = request.features.check(&"features", None)?;
    let request_id = headers.get("x-request-id");
    let prediction = state
        .inner
        .upstream
        .predict(&features, request_id)
        .await
        .inspect_err(|err| {
            tracing::debug!(
                request_id = request_id.and_then(|v| v.to_str().ok()),
                error = %err,
                "prediction not served"
            );
        })?;
    let version = HeaderValue::from_str(&prediction.model_version).ok();
    // The bytes were checked to be a prediction; passing them through is what the
    // client would get from re-serialising them, without the work.
    let mut response = (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        prediction.body,
    )
        .into_response();
    if let Some(version) = version {
        response.headers_mut().insert("x-model-version", version);
    }
    Ok(response)
}

/// Prometheus text exposition.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String,
        content_type = "text/plain; version=0.0.4; charset=utf-8")))]
async fn render_metrics(State(state): State<AppState>) -> Response {
    let mut out = String::with_capacity(8 * 1024);
    state.inner.metrics.render(&mut out);
    let service = escape(state.inner.metrics.service());
    let counters = &state.inner.upstream.counters;
    write_family(
        &mut out,
        "tugboat_upstream_requests_total",
        "counter",
        "Forwarded predictions by final outcome (after retries).",
    );
    for (outcome, counter) in [
        ("ok", &counters.ok),
        ("rejected", &counters.rejected),
        ("unreachable", &counters.unreachable),
        ("not_ready", &counters.not_ready),
        ("timeout", &counters.timed_out),
        ("bad_answer", &counters.bad_answer),
    ] {
        out.push_str(&format!(
            "tugboat_upstream_requests_total{{service=\"{service}\",outcome=\"{outcome}\"}} {}\n",
            counter.load(Ordering::Relaxed)
        ));
    }
    write_family(
        &mut out,
        "tugboat_upstream_retries_total",
        "counter",
        "Retries of the inference call (connect failures and 503s only).",
    );
    out.push_str(&format!(
        "tugboat_upstream_retries_total{{service=\"{service}\"}} {}\n",
        counters.retries.load(Ordering::Relaxed)
    ));
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], out).into_response()
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this service",
        body = Object, content_type = "application/json")))]
async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let body = DOCUMENT.get_or_init(openapi_document);
    ([(header::CONTENT_TYPE, "application/json")], body.as_str()).into_response()
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "tugboat backend API (backend-api)",
        description = "The mobile app's API. `/health`, `/ready` and `/openapi.json` also \
            answer under `/api`. Every request may carry `x-request-id` (returned, and \
            generated when absent). Every error body is `ErrorBody`: \
            `{\"error\": message, \"kind\": stable name}`; an unknown route is 404 \
            `no_route`, a wrong method 405 `method_not_allowed`."
    ),
    paths(health, ready, predict, render_metrics, openapi_json),
    components(schemas(ErrorBody))
)]
struct ApiDoc;

/// Routes that also answer under `/api`.
const API_ALIASES: [&str; 3] = ["/health", "/ready", "/openapi.json"];

/// The OpenAPI 3.1 document: the annotated routes, with the `/api` aliases
/// (operation ids prefixed `api_`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    let mut doc = ApiDoc::openapi();
    let aliases: Vec<_> = API_ALIASES
        .iter()
        .filter_map(|path| {
            let mut item = doc.paths.paths.get(*path)?.clone();
            if let Some(op) = item.get.as_mut() {
                op.operation_id = op.operation_id.take().map(|id| format!("api_{id}"));
            }
            Some((format!("/api{path}"), item))
        })
        .collect();
    doc.paths.paths.extend(aliases);
    doc
}

/// [`openapi`] as the pretty JSON that is checked in (`workloads/backend/openapi.json`).
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
