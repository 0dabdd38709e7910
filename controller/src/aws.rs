//! The one place that configures the AWS SDK, and a service-independent reading of its
//! errors.
//!
//! Guarantees:
//! - Every client tugboat builds comes from [`sdk_config`]: the standard credential chain
//!   (environment, profile, web identity, ECS task role, instance metadata), the standard
//!   region chain unless a region is given, and retries and timeouts chosen on purpose
//!   rather than inherited from SDK defaults.
//! - The SDK retries only what is safe to repeat. A call without a client token that
//!   creates something (ECS RegisterTaskDefinition, ELBv2 CreateRule) is sent with its
//!   retries off ([`ecs_without_retries`], [`elbv2_without_retries`]): its caller
//!   looks for what a lost attempt did before it tries again. Calls that set a whole
//!   state (UpdateService, ModifyRule, SetRulePriorities) and CreateService (which
//!   carries a client token) keep the SDK's retries.
//! - `AWS_ENDPOINT_URL` (and `endpoint_url` in the profile) is honoured by `aws-config`
//!   itself; this is how tests and the demo point tugboat at the emulator. S3 then uses
//!   path-style addressing, which a local endpoint needs.
//! - [`classify`] turns any service's `SdkError` into an [`ErrorKind`] callers can act
//!   on (throttled, not found, access denied, precondition failed, ...), using the
//!   error code from the response and falling back to the HTTP status.

use std::error::Error as StdError;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{AppName, BehaviorVersion, Region, SdkConfig};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// The S3 client every S3 location uses. A build without the `aws` feature has an
/// uninhabited type of the same name (`no_aws.rs`), so code that may hold a client
/// (`Option<S3Client>`) compiles in both and holds none there.
pub type S3Client = aws_sdk_s3::Client;
/// The SSM client, as [`S3Client`].
pub type SsmClient = aws_sdk_ssm::Client;

/// An S3 client (from [`sdk_config`] with `region`) when `uri` is an S3 location: what
/// the CLI hands [`crate::status_store::StatusStore::open`] and friends.
pub async fn s3_for(uri: &str, region: Option<&str>) -> Option<S3Client> {
    if uri.starts_with("s3://") {
        Some(s3(&sdk_config(region).await))
    } else {
        None
    }
}

/// Attempts per SDK call, the first included. The controller's loop runs again within
/// seconds anyway, so a call that fails three times is better reported than retried
/// longer; and an outer retry must not be stacked on top (design.md, "Retries"). The
/// calls the SDK must not repeat ([`ecs_without_retries`]) are retried by their caller
/// with the same number of attempts instead.
pub const MAX_ATTEMPTS: u32 = 3;
/// First retry delay; the SDK doubles it (with jitter) per attempt. Short, because a
/// change should reach users within about a second.
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Upper bound of one retry delay, for throttling that lasts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A TCP/TLS connection that takes longer than this is not coming.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// One attempt of one call, so a stalled attempt is retried rather than waited on.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// One call including its retries: a pass of the loop must never hang on AWS.
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Loads the shared SDK configuration. `region` overrides the region chain (documents
/// name their region; the CLI may take one from a flag).
pub async fn sdk_config(region: Option<&str>) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(retry_config())
        .timeout_config(timeout_config(ATTEMPT_TIMEOUT));
    // Shows up in CloudTrail's user agent, so tugboat's own calls can be told apart.
    if let Ok(app_name) = AppName::new("tugboat") {
        loader = loader.app_name(app_name);
    }
    if let Some(region) = region {
        loader = loader.region(Region::new(region.to_owned()));
    }
    loader.load().await
}

/// The SDK's retries for every call that is safe to repeat: standard mode,
/// [`MAX_ATTEMPTS`], [`INITIAL_BACKOFF`] doubling up to [`MAX_BACKOFF`].
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(INITIAL_BACKOFF)
        .with_max_backoff(MAX_BACKOFF)
}

/// Connect, attempt and operation timeouts; `attempt` is [`ATTEMPT_TIMEOUT`] except in
/// tests that make an answer arrive late without waiting ten seconds for it.
pub fn timeout_config(attempt: Duration) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(attempt)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

/// A per-operation override (`.customize().config_override(..)`) that turns the SDK's
/// retries off for an ECS call that is not idempotent. RegisterTaskDefinition has no
/// client token: an attempt whose answer arrives after the attempt timeout has still
/// registered a revision, and a blind retry registers another. The caller retries
/// itself, looking first for what the lost attempt may have done.
pub fn ecs_without_retries() -> aws_sdk_ecs::config::Builder {
    aws_sdk_ecs::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// The same for ELBv2 calls without a client token. CreateRule is one: a retried
/// create after a lost answer fails with `PriorityInUse` although the rule exists; the
/// next observation finds the rule by its tags instead.
pub fn elbv2_without_retries() -> aws_sdk_elasticloadbalancingv2::config::Builder {
    aws_sdk_elasticloadbalancingv2::config::Builder::default().retry_config(RetryConfig::disabled())
}

/// How long to wait before attempt `attempt + 1` of a call tugboat retries itself (the
/// first retry follows attempt 1): the SDK's schedule without its jitter,
/// [`INITIAL_BACKOFF`] doubling per attempt, at most [`MAX_BACKOFF`].
pub fn retry_delay(attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
    INITIAL_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Whether calls go to an endpoint other than AWS's own (an emulator, a VPC endpoint
/// given by URL). S3 virtual-hosted addressing (`bucket.host`) does not work against
/// `127.0.0.1`, so S3 switches to path style then.
pub fn endpoint_overridden(config: &SdkConfig) -> bool {
    config.endpoint_url().is_some() || std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
}

/// An S3 client; path-style addressing when the endpoint is overridden.
pub fn s3(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(endpoint_overridden(config))
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// An SSM client.
pub fn ssm(config: &SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(config)
}

/// An ECS client.
pub fn ecs(config: &SdkConfig) -> aws_sdk_ecs::Client {
    aws_sdk_ecs::Client::new(config)
}

/// An Elastic Load Balancing v2 (ALB) client.
pub fn elbv2(config: &SdkConfig) -> aws_sdk_elasticloadbalancingv2::Client {
    aws_sdk_elasticloadbalancingv2::Client::new(config)
}

/// CloudWatch, for analysis. `AWS_ENDPOINT_URL_CLOUDWATCH` (read by aws-config) points it
/// alone elsewhere, e.g. at an emulator that speaks its RPC v2 CBOR protocol.
pub fn cloudwatch(config: &SdkConfig) -> aws_sdk_cloudwatch::Client {
    aws_sdk_cloudwatch::Client::new(config)
}

/// What kind of failure an SDK error is, as far as a caller's next step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The account's request rate for this API is exhausted: back off, then try again.
    Throttling,
    /// The bucket, key, parameter, cluster, service, rule... does not exist.
    NotFound,
    /// The caller's credentials do not allow this call (or are not valid).
    AccessDenied,
    /// A conditional write lost: the object changed since the revision the caller named
    /// (S3 412 on `If-Match`/`If-None-Match`).
    PreconditionFailed,
    /// A conditional read found the same revision (S3 304 on `If-None-Match`).
    NotModified,
    /// The service failed (5xx), or the call timed out or never reached it: trying again
    /// later may work.
    Transient,
    /// Anything else: a bad request, a validation error. Retrying will not help.
    Other,
}

const THROTTLING_CODES: &[&str] = &[
    // The SDK's own list (aws-runtime, retries::classifiers::THROTTLING_ERRORS).
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

const NOT_FOUND_CODES: &[&str] = &[
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "ParameterNotFound",
    "ParameterVersionNotFound",
    "ResourceNotFoundException",
    "ClusterNotFoundException",
    "ServiceNotFoundException",
    "TargetGroupNotFound",
    "ListenerNotFound",
    "RuleNotFound",
    "LoadBalancerNotFound",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "InvalidAccessKeyId",
    "InvalidClientTokenId",
    "UnrecognizedClientException",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
];

const TRANSIENT_CODES: &[&str] = &[
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServerException",
];

/// Reads an SDK error. The error code decides when there is one; the HTTP status
/// decides otherwise (S3 answers HEAD requests and 304s without a body, so without a
/// code).
pub fn classify<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> ErrorKind {
    match err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => return ErrorKind::Transient,
        SdkError::ConstructionFailure(_) => return ErrorKind::Other,
        _ => {}
    }
    if let Some(code) = err.code() {
        if THROTTLING_CODES.contains(&code) {
            return ErrorKind::Throttling;
        }
        if NOT_FOUND_CODES.contains(&code) {
            return ErrorKind::NotFound;
        }
        if ACCESS_DENIED_CODES.contains(&code) {
            return ErrorKind::AccessDenied;
        }
        if code == "PreconditionFailed" {
            return ErrorKind::PreconditionFailed;
        }
        if TRANSIENT_CODES.contains(&code) {
            return ErrorKind::Transient;
        }
    }
    match http_status(err) {
        Some(304) => ErrorKind::NotModified,
        Some(403) => ErrorKind::AccessDenied,
        Some(404) => ErrorKind::NotFound,
        Some(412) => ErrorKind::PreconditionFailed,
        Some(429) => ErrorKind::Throttling,
        Some(status) if status >= 500 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// The HTTP status of the response behind an error, when there was a response.
pub fn http_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response()
        .map(|response| response.status().as_u16())
}

pub fn is_throttling<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    classify(err) == ErrorKind::Throttling
}

pub fn is_not_found<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    classify(err) == ErrorKind::NotFound
}

pub fn is_access_denied<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    classify(err) == ErrorKind::AccessDenied
}

pub fn is_precondition_failed<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    classify(err) == ErrorKind::PreconditionFailed
}

pub fn is_not_modified<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    classify(err) == ErrorKind::NotModified
}

/// Worth trying again after a delay: throttling, 5xx, timeouts, connection failures.
pub fn is_retryable<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    matches!(classify(err), ErrorKind::Throttling | ErrorKind::Transient)
}

/// One line for humans: `NoSuchBucket: The specified bucket does not exist (HTTP 404)`,
/// or the whole cause chain when the call never got an answer. The SDK's own `Display`
/// says only "service error", which tells an operator nothing.
pub fn describe<E>(err: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + StdError + 'static,
{
    let status = http_status(err);
    match (err.code(), err.message(), status) {
        (Some(code), Some(message), Some(status)) => format!("{code}: {message} (HTTP {status})"),
        (Some(code), None, Some(status)) => format!("{code} (HTTP {status})"),
        (None, _, Some(status)) => format!("HTTP {status}"),
        _ => DisplayErrorContext(err).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::operation::get_object::GetObjectError;
    use aws_smithy_runtime_api::http::StatusCode;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn service_error(code: Option<&str>, status: u16) -> SdkError<GetObjectError, HttpResponse> {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code).message("from the test");
        }
        let status = StatusCode::try_from(status).expect("a valid status in the test table");
        SdkError::service_error(
            GetObjectError::generic(meta.build()),
            HttpResponse::new(status, SdkBody::empty()),
        )
    }

    #[test]
    fn error_codes_decide_the_kind() {
        let table = [
            ("SlowDown", 503, ErrorKind::Throttling),
            ("ThrottlingException", 400, ErrorKind::Throttling),
            ("NoSuchBucket", 404, ErrorKind::NotFound),
            ("ParameterNotFound", 400, ErrorKind::NotFound),
            ("AccessDeniedException", 400, ErrorKind::AccessDenied),
            ("PreconditionFailed", 412, ErrorKind::PreconditionFailed),
            ("InternalError", 500, ErrorKind::Transient),
            ("ValidationException", 400, ErrorKind::Other),
        ];
        for (code, status, expected) in table {
            assert_eq!(
                classify(&service_error(Some(code), status)),
                expected,
                "{code}"
            );
        }
    }

    #[test]
    fn bodiless_responses_are_read_by_status() {
        let table = [
            (304, ErrorKind::NotModified),
            (403, ErrorKind::AccessDenied),
            (404, ErrorKind::NotFound),
            (412, ErrorKind::PreconditionFailed),
            (429, ErrorKind::Throttling),
            (502, ErrorKind::Transient),
            (400, ErrorKind::Other),
        ];
        for (status, expected) in table {
            assert_eq!(classify(&service_error(None, status)), expected, "{status}");
        }
    }

    #[test]
    fn timeouts_are_transient_and_retryable() {
        let err: SdkError<GetObjectError, HttpResponse> = SdkError::timeout_error("slow");
        assert_eq!(classify(&err), ErrorKind::Transient);
        assert!(is_retryable(&err));
        assert!(!is_retryable(&service_error(Some("NoSuchKey"), 404)));
    }

    #[test]
    fn own_retries_back_off_like_the_sdk_and_stay_bounded() {
        assert_eq!(retry_delay(1), INITIAL_BACKOFF);
        assert_eq!(retry_delay(2), INITIAL_BACKOFF * 2);
        assert_eq!(retry_delay(3), INITIAL_BACKOFF * 4);
        assert_eq!(retry_delay(40), MAX_BACKOFF);
    }

    #[test]
    fn describe_names_code_message_and_status() {
        let err = service_error(Some("NoSuchBucket"), 404);
        assert_eq!(describe(&err), "NoSuchBucket: from the test (HTTP 404)");
        assert_eq!(describe(&service_error(None, 304)), "HTTP 304");
    }
}
