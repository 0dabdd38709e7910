//! tugboat's backend API, the mobile app's entry point (the seed's `backend-api`).
//!
//! | route | answer |
//! |---|---|
//! | `GET /health`, `GET /api/health` | liveness: 200 while the process serves (a down inference service must not get the API's tasks restarted) |
//! | `GET /ready`, `GET /api/ready` | readiness: 200 when the inference service answers its own `/ready` with 200 (asked once per call, within `ML_TIMEOUT_MS`), else 503 saying why |
//! | `POST /api/predict` | `{"features": [..]}` validated, forwarded to `ML_SERVICE_URL/predict`; the prediction and its `model_version` come back |
//! | `GET /metrics` | Prometheus text: HTTP families plus upstream outcomes |
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

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router, middleware};
use serde::{Deserialize, Serialize};
use service_kit::features::{FeatureError, RawFeature, validate_row};
use service_kit::json::{BodyLimit, JsonBody, error_response};
use service_kit::limits::{self, Limits};
use service_kit::metrics::{self, HttpMetrics, escape, write_family};
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

pub use upstream::{ClientError, Upstream, UpstreamError, UpstreamSettings};

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
        .route_layer(middleware::from_fn_with_state(limits, limits::enforce))
        .route("/health", get(health))
        .route("/api/health", get(health))
        .route("/ready", get(ready))
        .route("/api/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .fallback(no_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.inner.settings.max_body_bytes))
        // Layers run outermost-last-added: the id is set (if absent) before the
        // handler reads it, and copied onto the response on the way out.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .layer(middleware::from_fn_with_state(metrics, metrics::track))
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

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    service: &'static str,
}

async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: SERVICE_NAME,
    })
}

#[derive(Debug, Serialize)]
struct Readiness {
    status: &'static str,
    service: &'static str,
    /// The model the inference service serves, when ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

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
#[derive(Debug, Deserialize)]
pub struct PredictRequest {
    pub features: Vec<RawFeature>,
}

async fn predict(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PredictRequest>,
) -> Result<Response, ApiError> {
    // The width is the model's business (and changes with it); here we only make
    // sure not to forward something that is not a list of finite numbers.
    let mut features = Vec::with_capacity(request.features.len());
    validate_row(&"features", &request.features, None, &mut features)?;
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
    let mut response = Json(prediction).into_response();
    if let Some(version) = version {
        response.headers_mut().insert("x-model-version", version);
    }
    Ok(response)
}

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
