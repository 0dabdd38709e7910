//! JSON in, JSON out.
//!
//! [`JsonBody`] replaces `axum::Json` as an extractor: its rejections are
//! [`JsonBodyError`]s, which answer with a JSON error body and a 4xx status instead
//! of axum's plain text. [`error_response`] is the single constructor for error
//! responses; it also tags the response with an [`ErrorKind`] so the metrics
//! middleware can count errors by kind without parsing bodies.
//!
//! The one error-body shape of both services ([`ErrorBody`]):
//! `{"error": "<message for a human, naming the problem>", "kind": "<stable
//! machine-readable name, e.g. wrong_width>"}`. Clients branch on `kind` and the
//! status; `error`'s wording may change.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A short, stable, machine-readable name of what went wrong (`wrong_width`,
/// `timeout`, ...), attached to error responses as an extension and used as the
/// `kind` label of the errors metric, and the body's `kind` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorKind(pub &'static str);

/// The body of every error response of both services.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[schema(
    example = json!({"error": "features: expected 30 features, got 2", "kind": "wrong_width"})
)]
pub struct ErrorBody<'a> {
    /// What went wrong, for a human: names the field, value or limit at fault.
    pub error: &'a str,
    /// What went wrong, for a program: a stable snake_case name (`malformed_json`,
    /// `wrong_width`, `not_a_number`, `model_not_ready`, `overloaded`, `timeout`, ...).
    pub kind: &'a str,
}

/// A JSON error response: `{"error": message, "kind": kind}` with `status`, tagged
/// with `kind`.
pub fn error_response(status: StatusCode, kind: &'static str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(ErrorBody {
            error: message,
            kind,
        }),
    )
        .into_response();
    response.extensions_mut().insert(ErrorKind(kind));
    response
}

/// `value` as a 200 `application/json` answer, written into a buffer of `capacity`
/// bytes to start with: axum's `Json` starts at 128 and grows, which a `/predict`
/// answer (about 150 bytes) always did. A value that cannot be serialized (it cannot
/// happen for the answers here) is a JSON 500, as with `Json`.
pub fn json_response<T: Serialize>(value: &T, capacity: usize) -> Response {
    let mut buf = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buf,
        )
            .into_response(),
        Err(err) => error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "serialization_failed",
            &format!("the answer could not be serialized: {err}"),
        ),
    }
}

/// Why a request body was not accepted as JSON.
#[derive(Debug, thiserror::Error)]
pub enum JsonBodyError {
    /// The request did not say `content-type: application/json`.
    #[error("expected a JSON body with content-type: application/json")]
    NotJson,
    /// The body exceeded the state's [`BodyLimit`].
    #[error("request body is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    /// The body could not be read from the connection.
    #[error("request body could not be read")]
    Unreadable,
    /// The bytes are not JSON at all (syntax error, truncated input).
    #[error("malformed JSON: {0}")]
    Malformed(String),
    /// Valid JSON, but not the shape this endpoint expects.
    #[error("invalid request body: {0}")]
    WrongShape(String),
}

impl JsonBodyError {
    /// The status this refusal is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotJson => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unreadable | Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::WrongShape(_) => StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    /// The `kind` of its error body.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::TooLarge { .. } => "body_too_large",
            Self::Unreadable => "body_unreadable",
            Self::Malformed(_) => "malformed_json",
            Self::WrongShape(_) => "wrong_shape",
        }
    }
}

impl IntoResponse for JsonBodyError {
    fn into_response(self) -> Response {
        error_response(self.status(), self.kind(), &self.to_string())
    }
}

/// The largest body [`JsonBody`] reads, in bytes, from the service's state: a
/// longer body (declared or sent) is refused with [`JsonBodyError::TooLarge`], which
/// names the limit.
pub trait BodyLimit {
    fn body_limit(&self) -> usize;
}

/// A JSON request body deserialized into `T`, rejecting with [`JsonBodyError`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<T, S> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: BodyLimit + Send + Sync,
{
    type Rejection = JsonBodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse(&bytes).map(JsonBody)
    }
}

/// The bytes of a JSON request body, not parsed yet: the checks of [`JsonBody`]
/// (content type, the state's [`BodyLimit`]) without the deserializing, for a handler
/// that parses its hot shape itself and [`parse`]s anything else.
#[derive(Debug, Clone, Default)]
pub struct JsonBytes(pub Bytes);

impl<S> FromRequest<S> for JsonBytes
where
    S: BodyLimit + Send + Sync,
{
    type Rejection = JsonBodyError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(JsonBodyError::NotJson);
        }
        let limit = state.body_limit();
        let too_large = JsonBodyError::TooLarge { limit };
        // A declared length over the limit is refused before a byte is read.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large);
        }
        // The limit is enforced here rather than by axum's `DefaultBodyLimit` layer:
        // every layer on a router costs each request a clone of the route below it.
        let bytes = match Limited::new(req.into_body(), limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => return Err(too_large),
            Err(_) => return Err(JsonBodyError::Unreadable),
        };
        Ok(JsonBytes(bytes))
    }
}

/// Deserialize `bytes`, classifying failures the way [`JsonBody`] does.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonBodyError> {
    serde_json::from_slice(bytes).map_err(|err| {
        use serde_json::error::Category;
        match err.classify() {
            Category::Data => JsonBodyError::WrongShape(err.to_string()),
            Category::Syntax | Category::Eof | Category::Io => {
                JsonBodyError::Malformed(err.to_string())
            }
        }
    })
}

fn is_json(req: &Request) -> bool {
    let Some(value) = req.headers().get(header::CONTENT_TYPE) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    // `application/json`, `application/json; charset=utf-8`, `application/x+json`.
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Shape {
        features: Vec<f64>,
    }

    #[test]
    fn syntax_errors_are_malformed_and_shape_errors_are_wrong_shape() {
        assert!(matches!(
            parse::<Shape>(b"{\"features\": [1,"),
            Err(JsonBodyError::Malformed(_))
        ));
        assert!(matches!(
            parse::<Shape>(b"{\"feature\": [1]}"),
            Err(JsonBodyError::WrongShape(m)) if m.contains("missing field `features`")
        ));
    }

    #[test]
    fn content_types() {
        let with = |ct: &str| {
            Request::builder()
                .header(header::CONTENT_TYPE, ct)
                .body(axum::body::Body::empty())
                .map(|r| is_json(&r))
                .unwrap_or(false)
        };
        assert!(with("application/json"));
        assert!(with("Application/JSON; charset=utf-8"));
        assert!(with("application/problem+json"));
        assert!(!with("text/plain"));
        assert!(!with("+json"));
    }
}
