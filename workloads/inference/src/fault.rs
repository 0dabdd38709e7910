//! The fault switch: a documented way to make this service worse on purpose, so a
//! canary analysis (the local platform's router, CloudWatch's 5xx and latency
//! metrics) has something real to catch. Off unless configured.
//!
//! - `FAULT_RATE` (`0` to `1`): that share of prediction requests (`/predict`,
//!   `/predict/batch`, at `/` and under `/ml`) is answered `500` with
//!   `{"error": "fault injected ...", "kind": "fault_injected"}`. The choice is an
//!   error-diffusion sequence, not a coin: of the first `n` prediction requests
//!   exactly `floor(n * rate)` fail, so a small sample already shows the rate.
//! - `FAULT_LATENCY` (`50ms`, `1s`, humantime syntax): added before every
//!   prediction request is handled, inside the request deadline.
//!
//! Health, readiness, metrics and metadata routes are never affected: the fault is
//! in the answers, not in whether the load balancer keeps the task.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use service_kit::json::error_response;

/// What the fault switch does; the default does nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Faults {
    /// Share of prediction requests answered 500, in `[0, 1]`.
    pub rate: f64,
    /// Delay added to every prediction request.
    pub latency: Duration,
}

/// Why a fault setting was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultError {
    /// `FAULT_RATE` is not a number in `[0, 1]`.
    #[error("FAULT_RATE {0:?} must be a number from 0 to 1 (a share of requests, e.g. 0.2)")]
    InvalidRate(String),
    /// `FAULT_LATENCY` is not a duration.
    #[error("FAULT_LATENCY {0:?} must be a duration such as 50ms or 1s")]
    InvalidLatency(String),
}

impl Faults {
    /// Whether any fault is configured.
    pub fn is_active(&self) -> bool {
        self.rate > 0.0 || !self.latency.is_zero()
    }

    /// Parse `FAULT_RATE`.
    pub fn parse_rate(value: &str) -> Result<f64, FaultError> {
        let rate: f64 = value
            .trim()
            .parse()
            .map_err(|_| FaultError::InvalidRate(value.to_owned()))?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(FaultError::InvalidRate(value.to_owned()));
        }
        Ok(rate)
    }

    /// Parse `FAULT_LATENCY` (`0` means none).
    pub fn parse_latency(value: &str) -> Result<Duration, FaultError> {
        let value = value.trim();
        if value == "0" {
            return Ok(Duration::ZERO);
        }
        humantime::parse_duration(value).map_err(|_| FaultError::InvalidLatency(value.to_owned()))
    }
}

/// The middleware's state: the settings and how many requests it has seen.
#[derive(Debug)]
pub struct Injector {
    faults: Faults,
    seen: AtomicU64,
}

impl Injector {
    pub fn new(faults: Faults) -> Arc<Self> {
        Arc::new(Self {
            faults,
            seen: AtomicU64::new(0),
        })
    }

    /// Whether the next request fails: request `n` (0-based) fails when
    /// `floor((n + 1) * rate) > floor(n * rate)`.
    fn next_fails(&self) -> bool {
        let n = self.seen.fetch_add(1, Ordering::Relaxed) as f64;
        let rate = self.faults.rate;
        rate > 0.0 && ((n + 1.0) * rate).floor() > (n * rate).floor()
    }
}

/// Middleware (`route_layer(from_fn_with_state(injector, inject))`) for the
/// prediction routes, added only when [`Faults::is_active`].
pub async fn inject(State(injector): State<Arc<Injector>>, req: Request, next: Next) -> Response {
    if !injector.faults.latency.is_zero() {
        tokio::time::sleep(injector.faults.latency).await;
    }
    if injector.next_fails() {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "fault_injected",
            "fault injected (FAULT_RATE): this answer failed on purpose",
        );
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_latencies_parse_or_say_what_is_wrong() {
        assert_eq!(Faults::parse_rate("0.25"), Ok(0.25));
        assert_eq!(Faults::parse_rate(" 1 "), Ok(1.0));
        assert_eq!(Faults::parse_rate("0"), Ok(0.0));
        for bad in ["1.5", "-0.1", "half", "NaN", ""] {
            let err = Faults::parse_rate(bad).unwrap_err();
            assert!(err.to_string().contains("FAULT_RATE"), "{err}");
        }
        assert_eq!(Faults::parse_latency("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(Faults::parse_latency("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(Faults::parse_latency("0"), Ok(Duration::ZERO));
        let err = Faults::parse_latency("fast").unwrap_err();
        assert!(err.to_string().contains("FAULT_LATENCY"), "{err}");
    }

    #[test]
    fn exactly_the_share_fails_in_every_prefix() {
        for rate in [0.0, 0.1, 0.25, 1.0 / 3.0, 0.5, 1.0] {
            let injector = Injector::new(Faults {
                rate,
                latency: Duration::ZERO,
            });
            let mut failed = 0u64;
            for n in 1..=1000u64 {
                failed += u64::from(injector.next_fails());
                assert_eq!(
                    failed,
                    (n as f64 * rate).floor() as u64,
                    "rate {rate}, n {n}"
                );
            }
        }
    }

    #[test]
    fn off_by_default() {
        assert!(!Faults::default().is_active());
        assert!(
            Faults {
                rate: 0.0,
                latency: Duration::from_millis(1)
            }
            .is_active()
        );
    }
}
