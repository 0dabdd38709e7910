//! Prometheus text exposition for HTTP traffic, hand-rolled.
//!
//! Why not a registry crate: three metric families are all we need, and a few
//! atomics plus a formatter cost less to build and to audit than a dependency tree.
//!
//! Families (all labelled with `service`):
//! - `tugboat_http_requests_total{route,status}` counter
//! - `tugboat_http_request_duration_seconds{route}` histogram
//! - `tugboat_http_errors_total{kind}` counter, from the [`ErrorKind`] that
//!   [`crate::json::error_response`] attaches to every error response.
//!
//! `route` is the matched route template (`/predict`, `/ml/predict`), or `unmatched`
//! for requests no route matched, so label cardinality stays bounded whatever paths
//! clients send. Services append their own families (model version, upstream
//! outcomes) with [`write_family`].

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::response::Response;
use tokio::time::Instant;
use tower::{Layer, Service};

use crate::json::ErrorKind;

/// Histogram bucket upper bounds, in seconds: fine-grained below 10 ms, where a
/// healthy prediction lives.
pub const BUCKETS: [f64; 14] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// Status codes counted without a lock: 100..=599, one atomic each.
const COMMON_STATUSES: std::ops::RangeInclusive<u16> = 100..=599;

#[derive(Debug)]
struct RouteSeries {
    // Lock-free for the statuses HTTP defines; a request answered must not contend
    // on a mutex with every other worker thread just to be counted.
    statuses: Box<[AtomicU64]>,
    // Anything else the `http` crate allows (600..=999): rare, so a lock is fine.
    other_statuses: Mutex<BTreeMap<u16, u64>>,
    // Non-cumulative counts per bucket; the last slot is +Inf.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Default for RouteSeries {
    fn default() -> Self {
        Self {
            statuses: COMMON_STATUSES.map(|_| AtomicU64::new(0)).collect(),
            other_statuses: Mutex::default(),
            buckets: Default::default(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }
    }
}

impl RouteSeries {
    fn count_status(&self, status: u16) {
        if COMMON_STATUSES.contains(&status) {
            self.statuses[usize::from(status - COMMON_STATUSES.start())]
                .fetch_add(1, Ordering::Relaxed);
        } else {
            *lock(&self.other_statuses).entry(status).or_default() += 1;
        }
    }

    /// Every status answered at least once, with its count, in order.
    fn status_counts(&self) -> Vec<(u16, u64)> {
        let mut counts: Vec<(u16, u64)> = COMMON_STATUSES
            .zip(self.statuses.iter())
            .map(|(status, n)| (status, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect();
        counts.extend(lock(&self.other_statuses).iter().map(|(s, n)| (*s, *n)));
        counts
    }
}

/// The HTTP metrics of one service.
#[derive(Debug)]
pub struct HttpMetrics {
    service: &'static str,
    routes: RwLock<HashMap<String, Arc<RouteSeries>>>,
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

impl HttpMetrics {
    pub fn new(service: &'static str) -> Arc<Self> {
        Arc::new(Self {
            service,
            routes: RwLock::new(HashMap::new()),
            errors: Mutex::new(BTreeMap::new()),
        })
    }

    /// The `service` label value.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Record one answered request.
    pub fn observe(&self, route: &str, status: u16, elapsed: Duration, error: Option<ErrorKind>) {
        self.observe_in(&self.series(route), status, elapsed, error);
    }

    /// [`observe`](Self::observe) into a series already looked up.
    fn observe_in(
        &self,
        series: &RouteSeries,
        status: u16,
        elapsed: Duration,
        error: Option<ErrorKind>,
    ) {
        series.count_status(status);
        let seconds = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(BUCKETS.len());
        series.buckets[slot].fetch_add(1, Ordering::Relaxed);
        series.count.fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        series.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Some(ErrorKind(kind)) = error {
            self.count_error(kind);
        }
    }

    /// Count an error that did not come out of an HTTP response (a failed model load,
    /// an upstream retry).
    pub fn count_error(&self, kind: &'static str) {
        *lock(&self.errors).entry(kind).or_default() += 1;
    }

    fn series(&self, route: &str) -> Arc<RouteSeries> {
        if let Some(series) = read(&self.routes).get(route) {
            return Arc::clone(series);
        }
        let mut routes = write(&self.routes);
        Arc::clone(routes.entry(route.to_owned()).or_default())
    }

    /// Append the three HTTP families in Prometheus text format to `out`.
    pub fn render(&self, out: &mut String) {
        let service = escape(self.service);
        let routes: Vec<(String, Arc<RouteSeries>)> = {
            let mut all: Vec<_> = read(&self.routes)
                .iter()
                .map(|(route, series)| (route.clone(), Arc::clone(series)))
                .collect();
            all.sort_by(|a, b| a.0.cmp(&b.0));
            all
        };

        write_family(
            out,
            "tugboat_http_requests_total",
            "counter",
            "HTTP requests answered, by route template and status code.",
        );
        for (route, series) in &routes {
            for (status, count) in series.status_counts() {
                let _ = writeln!(
                    out,
                    "tugboat_http_requests_total{{service=\"{service}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }

        write_family(
            out,
            "tugboat_http_request_duration_seconds",
            "histogram",
            "Time from request received to response produced, by route template.",
        );
        for (route, series) in &routes {
            let route = escape(route);
            let mut cumulative = 0u64;
            for (slot, le) in BUCKETS.iter().enumerate() {
                cumulative += series.buckets[slot].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "tugboat_http_request_duration_seconds_bucket{{service=\"{service}\",route=\"{route}\",le=\"{le}\"}} {cumulative}"
                );
            }
            cumulative += series.buckets[BUCKETS.len()].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tugboat_http_request_duration_seconds_bucket{{service=\"{service}\",route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let sum = series.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
            let _ = writeln!(
                out,
                "tugboat_http_request_duration_seconds_sum{{service=\"{service}\",route=\"{route}\"}} {sum}"
            );
            let _ = writeln!(
                out,
                "tugboat_http_request_duration_seconds_count{{service=\"{service}\",route=\"{route}\"}} {}",
                series.count.load(Ordering::Relaxed)
            );
        }

        write_family(
            out,
            "tugboat_http_errors_total",
            "counter",
            "Errors by kind (client mistakes, upstream failures, timeouts).",
        );
        for (kind, count) in lock(&self.errors).iter() {
            let _ = writeln!(
                out,
                "tugboat_http_errors_total{{service=\"{service}\",kind=\"{}\"}} {count}",
                escape(kind)
            );
        }
    }
}

/// Write the `# HELP` and `# TYPE` lines of a metric family.
pub fn write_family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escape a label value (backslash, double quote, newline), per the text format.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The layer that records every request into `metrics`, added with `Router::layer`
/// so that the matched route is known: `.layer(Track::new(metrics))`. It also echoes
/// the request's `x-request-id` onto its answer (unless the answer has one), as
/// tower-http's `PropagateRequestIdLayer` would: one layer instead of two, since every
/// layer on a router costs each request a clone of the route below it.
///
/// A hand-written service, not `axum::middleware::from_fn`, for the reason given in
/// [`crate::limits::Limits`]: no clone of the inner route and no boxed future per
/// request.
#[derive(Debug, Clone)]
pub struct Track {
    metrics: Arc<HttpMetrics>,
}

impl Track {
    pub fn new(metrics: Arc<HttpMetrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for Track {
    type Service = Tracked<S>;

    fn layer(&self, inner: S) -> Tracked<S> {
        Tracked {
            inner,
            shared: Arc::new(TrackShared {
                metrics: Arc::clone(&self.metrics),
                series: OnceLock::new(),
            }),
        }
    }
}

/// A service whose requests are counted and timed by [`Track`].
#[derive(Debug, Clone)]
pub struct Tracked<S> {
    inner: S,
    shared: Arc<TrackShared>,
}

/// What every request through one route's [`Tracked`] shares.
#[derive(Debug)]
struct TrackShared {
    metrics: Arc<HttpMetrics>,
    /// The series of the route this layer wraps, looked up on its first request:
    /// `Router::layer` wraps each route on its own, so it is nearly always the same one,
    /// and the shared map's lock is not taken again per request. A request with
    /// another route (a fallback's) looks its series up as usual.
    series: OnceLock<(String, Arc<RouteSeries>)>,
}

impl TrackShared {
    fn observe(&self, route: &str, status: u16, elapsed: Duration, error: Option<ErrorKind>) {
        let cached = self
            .series
            .get_or_init(|| (route.to_owned(), self.metrics.series(route)));
        if cached.0 == route {
            self.metrics.observe_in(&cached.1, status, elapsed, error);
        } else {
            self.metrics.observe(route, status, elapsed, error);
        }
    }
}

impl<S> Service<Request> for Tracked<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = TrackedFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let started = Instant::now();
        let route = req.extensions().get::<MatchedPath>().cloned();
        let request_id = req.headers().get(X_REQUEST_ID).cloned();
        TrackedFuture {
            call: self.inner.call(req),
            started,
            route,
            request_id,
            shared: Arc::clone(&self.shared),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a [`Tracked`] service, recorded when it is ready.
    pub struct TrackedFuture<F> {
        #[pin]
        call: F,
        started: Instant,
        route: Option<MatchedPath>,
        request_id: Option<HeaderValue>,
        shared: Arc<TrackShared>,
    }
}

/// The request id header both services echo (and the backend forwards).
pub const X_REQUEST_ID: &str = "x-request-id";

impl<F> Future for TrackedFuture<F>
where
    F: Future<Output = Result<Response, Infallible>>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.call.poll(cx)).unwrap_or_else(|never| match never {});
        if let Some(id) = this.request_id.take()
            && !response.headers().contains_key(X_REQUEST_ID)
        {
            response.headers_mut().insert(X_REQUEST_ID, id);
        }
        let route = this.route.as_ref().map_or("unmatched", |m| m.as_str());
        let error = response.extensions().get::<ErrorKind>().copied();
        this.shared.observe(
            route,
            response.status().as_u16(),
            this.started.elapsed(),
            error,
        );
        Poll::Ready(Ok(response))
    }
}

// A poisoned lock only means another request panicked mid-update of a counter; the
// counts are still usable, and metrics must never take the service down.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One layer seeing two routes (not something axum's `Router::layer` does today,
    /// which wraps each route on its own) still counts each under its own name.
    #[test]
    fn a_layer_that_sees_another_route_counts_it_under_that_route() {
        let shared = TrackShared {
            metrics: HttpMetrics::new("test"),
            series: OnceLock::new(),
        };
        for route in ["/a", "/b", "/a"] {
            shared.observe(route, 200, Duration::from_micros(100), None);
        }
        let mut out = String::new();
        shared.metrics.render(&mut out);
        for line in [
            "tugboat_http_requests_total{service=\"test\",route=\"/a\",status=\"200\"} 2",
            "tugboat_http_requests_total{service=\"test\",route=\"/b\",status=\"200\"} 1",
        ] {
            assert!(out.contains(line), "missing {line} in:\n{out}");
        }
    }

    #[test]
    fn renders_counts_buckets_and_errors() {
        let m = HttpMetrics::new("test");
        m.observe("/predict", 200, Duration::from_micros(300), None);
        m.observe(
            "/predict",
            422,
            Duration::from_millis(3),
            Some(ErrorKind("wrong_width")),
        );
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains(
            "tugboat_http_requests_total{service=\"test\",route=\"/predict\",status=\"200\"} 1"
        ));
        assert!(out.contains(
            "tugboat_http_requests_total{service=\"test\",route=\"/predict\",status=\"422\"} 1"
        ));
        assert!(out.contains(
            "tugboat_http_request_duration_seconds_bucket{service=\"test\",route=\"/predict\",le=\"0.0005\"} 1"
        ));
        assert!(out.contains(
            "tugboat_http_request_duration_seconds_bucket{service=\"test\",route=\"/predict\",le=\"0.005\"} 2"
        ));
        assert!(out.contains(
            "tugboat_http_request_duration_seconds_count{service=\"test\",route=\"/predict\"} 2"
        ));
        assert!(out.contains("tugboat_http_errors_total{service=\"test\",kind=\"wrong_width\"} 1"));
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
