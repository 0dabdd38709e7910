//! The call to the inference service, and what its failures mean to our clients.
//!
//! One pooled HTTP/1 client (keep-alive connections are reused across requests),
//! with a per-attempt timeout. A bounded retry happens only where it cannot do
//! harm and is likely to help: the connection was refused or could not be made
//! (nothing was sent), or the service said 503 (not ready / overloaded: it did no
//! work). A timeout is never retried — the request may still be running upstream
//! and the client's own deadline is already spent — and neither is any other answer.
//!
//! Guarantees: an [`UpstreamError`] maps to 502 (the service answered, but not with
//! a prediction), 503 (it could not be reached, or is not ready), 504 (it did not
//! answer in time), or passes through the service's own 4xx validation message;
//! the raw transport error goes to the log, never to the client.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use std::borrow::Cow;

use axum::body::Bytes;
use axum::http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Empty, Full, combinators::BoxBody};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

/// How the backend talks to the inference service.
#[derive(Debug, Clone)]
pub struct UpstreamSettings {
    /// `ML_SERVICE_URL`, e.g. `http://ml-model-service:8000`; `/predict` is appended.
    pub base_url: String,
    /// Per-attempt deadline, connection included.
    pub timeout: Duration,
    /// Extra attempts after a connect failure or a 503 (0 = no retry).
    pub retries: u32,
    /// Pause before the first retry; doubled for each further one.
    pub retry_backoff: Duration,
}

/// Why configuring the client failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// `ML_SERVICE_URL` is not an `http://` URL (this build has no TLS stack: the
    /// call stays inside the VPC or on loopback).
    #[error("ML_SERVICE_URL {0:?} must be an http:// URL")]
    InvalidUrl(String),
}

/// Why a forwarded prediction failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// No connection could be made, on every attempt.
    #[error("inference service is unreachable")]
    Unreachable,
    /// The service answered 503 on every attempt.
    #[error("inference service is not ready")]
    NotReady,
    /// No answer within the per-attempt timeout.
    #[error("inference service did not answer within {0} ms")]
    TimedOut(u128),
    /// The service answered 504: its own deadline passed.
    #[error("inference service timed out")]
    UpstreamTimedOut,
    /// The service answered, but not with a prediction (5xx, garbage, cut off).
    #[error("inference service returned an invalid answer")]
    BadAnswer,
    /// The service refused the input (4xx) with its own validation message.
    #[error("{message}")]
    Rejected { status: StatusCode, message: String },
}

impl UpstreamError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unreachable | Self::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Self::TimedOut(_) | Self::UpstreamTimedOut => StatusCode::GATEWAY_TIMEOUT,
            Self::BadAnswer => StatusCode::BAD_GATEWAY,
            Self::Rejected { status, .. } => *status,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unreachable => "upstream_unreachable",
            Self::NotReady => "upstream_not_ready",
            Self::TimedOut(_) => "upstream_timeout",
            Self::UpstreamTimedOut => "upstream_timed_out",
            Self::BadAnswer => "upstream_bad_answer",
            Self::Rejected { .. } => "upstream_rejected",
        }
    }
}

/// The inference service's `/predict` answer, checked field by field so that a
/// malformed answer is a 502 here rather than garbage passed on to the app.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Prediction {
    /// The class label, as the training framework's `predict` returns it.
    pub prediction: i64,
    /// The class's human name, when the model has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The probability of the predicted class.
    pub confidence: f64,
    /// Probabilities per class, in the model's class order.
    pub probabilities: Vec<f64>,
    /// The model that answered (also in the `x-model-version` header).
    pub model_version: String,
}

#[derive(Debug, Serialize)]
struct PredictBody<'a> {
    features: &'a [f32],
}

/// The checks of [`Prediction`], on the answer's bytes without copying its strings:
/// the backend passes the checked bytes through instead of re-serialising them.
#[derive(Debug, Deserialize)]
struct PredictionCheck<'a> {
    #[allow(dead_code)]
    prediction: i64,
    #[allow(dead_code)]
    #[serde(default, borrow)]
    label: Option<Cow<'a, str>>,
    #[allow(dead_code)]
    confidence: f64,
    #[allow(dead_code)]
    #[serde(deserialize_with = "numbers")]
    probabilities: (),
    #[serde(borrow)]
    model_version: Cow<'a, str>,
}

/// A list of numbers, checked without being collected.
fn numbers<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    struct Numbers;
    impl<'de> serde::de::Visitor<'de> for Numbers {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a list of numbers")
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element::<f64>()?.is_some() {}
            Ok(())
        }
    }
    deserializer.deserialize_seq(Numbers)
}

/// A checked prediction from the inference service: its JSON bytes as they came
/// (a [`Prediction`]), and the model version it names.
#[derive(Debug, Clone)]
pub struct Answer {
    pub body: Bytes,
    pub model_version: String,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    error: String,
}

/// Outcome counters for `/metrics`.
#[derive(Debug, Default)]
pub struct UpstreamCounters {
    pub ok: AtomicU64,
    pub retries: AtomicU64,
    pub unreachable: AtomicU64,
    pub not_ready: AtomicU64,
    pub timed_out: AtomicU64,
    pub bad_answer: AtomicU64,
    pub rejected: AtomicU64,
}

type OutBody = BoxBody<Bytes, std::convert::Infallible>;

/// The client for the inference service.
#[derive(Debug)]
pub struct Upstream {
    client: Client<HttpConnector, OutBody>,
    // Parsed once: a URI per call showed in profiles.
    predict_url: Uri,
    ready_url: Uri,
    settings: UpstreamSettings,
    pub counters: UpstreamCounters,
}

/// Why one exchange failed below HTTP: no connection, no answer in time, or a broken one.
#[derive(Debug)]
enum Transport {
    Connect(hyper_util::client::legacy::Error),
    Timeout,
    Broken(Box<dyn std::error::Error + Send + Sync>),
}

impl Upstream {
    pub fn new(settings: UpstreamSettings) -> Result<Self, ClientError> {
        let base = settings.base_url.trim().trim_end_matches('/');
        if !base.starts_with("http://") || base.len() <= "http://".len() {
            return Err(ClientError::InvalidUrl(settings.base_url.clone()));
        }
        let uri = |path: &str| {
            format!("{base}{path}")
                .parse::<Uri>()
                .ok()
                .filter(|u| u.host().is_some())
                .ok_or_else(|| ClientError::InvalidUrl(settings.base_url.clone()))
        };
        let predict_url = uri("/predict")?;
        let ready_url = uri("/ready")?;
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(settings.timeout));
        // Small JSON bodies: don't wait to coalesce packets.
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            client,
            predict_url,
            ready_url,
            settings,
            counters: UpstreamCounters::default(),
        })
    }

    /// One exchange: the answer's status and whole body, within the per-attempt
    /// timeout (connection, headers and body together, as one deadline).
    async fn exchange(&self, request: Request<OutBody>) -> Result<(StatusCode, Bytes), Transport> {
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| {
                if err.is_connect() {
                    Transport::Connect(err)
                } else {
                    Transport::Broken(err.into())
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| Transport::Broken(err.into()))?
                .to_bytes();
            Ok::<_, Transport>((status, body))
        };
        tokio::time::timeout(self.settings.timeout, exchange)
            .await
            .unwrap_or(Err(Transport::Timeout))
    }

    /// Forward one validated feature vector, with the caller's request id.
    pub async fn predict(
        &self,
        features: &[f32],
        request_id: Option<&HeaderValue>,
    ) -> Result<Answer, UpstreamError> {
        // Sized for the worst case of an f32 (`-1.2345678e-38,`) so it never grows.
        let mut body = Vec::with_capacity(16 + features.len() * 16);
        serde_json::to_writer(&mut body, &PredictBody { features }).map_err(|err| {
            // f32 values that passed validation always serialise; be safe anyway.
            tracing::error!(error = %err, "cannot serialise the forwarded body");
            UpstreamError::BadAnswer
        })?;
        // Shared, not copied, by each attempt.
        let body = Bytes::from(body);
        let mut attempt = 0u32;
        loop {
            let result = self.attempt(&body, request_id).await;
            let retryable = matches!(
                result,
                Err(UpstreamError::Unreachable | UpstreamError::NotReady)
            );
            if retryable && attempt < self.settings.retries {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(self.settings.retry_backoff * 2u32.saturating_pow(attempt))
                    .await;
                attempt += 1;
                continue;
            }
            let counter = match &result {
                Ok(_) => &self.counters.ok,
                Err(UpstreamError::Unreachable) => &self.counters.unreachable,
                Err(UpstreamError::NotReady) => &self.counters.not_ready,
                Err(UpstreamError::TimedOut(_) | UpstreamError::UpstreamTimedOut) => {
                    &self.counters.timed_out
                }
                Err(UpstreamError::BadAnswer) => &self.counters.bad_answer,
                Err(UpstreamError::Rejected { .. }) => &self.counters.rejected,
            };
            counter.fetch_add(1, Ordering::Relaxed);
            return result;
        }
    }

    /// Ask the inference service's `/ready` once (no retry: the load balancer's
    /// health check is the retry). `Ok` carries the model version it serves.
    pub async fn probe_ready(&self) -> Result<Option<String>, UpstreamError> {
        #[derive(Deserialize)]
        struct Ready {
            model_version: Option<String>,
        }
        let request = Request::builder()
            .method(Method::GET)
            .uri(self.ready_url.clone())
            .body(Empty::<Bytes>::new().boxed())
            .map_err(|_| UpstreamError::BadAnswer)?;
        let (status, bytes) = self
            .exchange(request)
            .await
            .map_err(|err| self.transport(err, &self.ready_url))?;
        match status {
            StatusCode::OK => serde_json::from_slice::<Ready>(&bytes)
                .map(|ready| ready.model_version)
                .map_err(|_| UpstreamError::BadAnswer),
            StatusCode::SERVICE_UNAVAILABLE => Err(UpstreamError::NotReady),
            _ => Err(UpstreamError::BadAnswer),
        }
    }

    async fn attempt(
        &self,
        body: &Bytes,
        request_id: Option<&HeaderValue>,
    ) -> Result<Answer, UpstreamError> {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(self.predict_url.clone())
            .header(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        if let Some(id) = request_id {
            request = request.header("x-request-id", id.clone());
        }
        let request = request
            .body(Full::new(body.clone()).boxed())
            .map_err(|_| UpstreamError::BadAnswer)?;
        let (status, bytes) = self
            .exchange(request)
            .await
            .map_err(|err| self.transport(err, &self.predict_url))?;
        if status.is_success() {
            let model_version = match serde_json::from_slice::<PredictionCheck<'_>>(&bytes) {
                Ok(checked) => checked.model_version.into_owned(),
                Err(err) => {
                    tracing::warn!(error = %err, "inference answered 2xx without a prediction");
                    return Err(UpstreamError::BadAnswer);
                }
            };
            return Ok(Answer {
                body: bytes,
                model_version,
            });
        }
        match status {
            StatusCode::SERVICE_UNAVAILABLE => Err(UpstreamError::NotReady),
            StatusCode::GATEWAY_TIMEOUT => Err(UpstreamError::UpstreamTimedOut),
            s if s.is_client_error() => match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(ErrorBody { error }) => Err(UpstreamError::Rejected {
                    status: s,
                    message: error,
                }),
                Err(_) => {
                    tracing::warn!(
                        status = s.as_u16(),
                        "inference answered 4xx without a JSON error"
                    );
                    Err(UpstreamError::BadAnswer)
                }
            },
            s => {
                tracing::warn!(
                    status = s.as_u16(),
                    "inference answered with an error status"
                );
                Err(UpstreamError::BadAnswer)
            }
        }
    }

    fn transport(&self, err: Transport, url: &Uri) -> UpstreamError {
        match err {
            Transport::Timeout => {
                tracing::warn!(url = %url, "inference call timed out");
                UpstreamError::TimedOut(self.settings.timeout.as_millis())
            }
            Transport::Connect(err) => {
                tracing::warn!(error = %err, url = %url, "cannot connect to inference");
                UpstreamError::Unreachable
            }
            Transport::Broken(err) => {
                // Reset mid-answer, malformed HTTP: it answered, but not properly.
                tracing::warn!(error = %err, url = %url, "inference call failed");
                UpstreamError::BadAnswer
            }
        }
    }
}
