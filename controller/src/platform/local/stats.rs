//! Per-target-group counters of the local router: what the ALB reports to CloudWatch
//! (`RequestCount`, `HTTPCode_Target_5XX_Count`, `HTTPCode_ELB_5XX_Count`,
//! `TargetResponseTime`), kept two ways.
//!
//! - Totals since start (counters and a Prometheus histogram), for `/metrics`.
//! - A window of one-second buckets (the last [`WINDOW_SECONDS`]), for analysis: the
//!   requests, target 5xx and response-time average and percentiles "over the last N
//!   seconds" ([`RouterStats::window`]), by target-group name.
//!
//! Guarantees: every answer the router gives for a target group is counted exactly once
//! (a target's own answer in `requests` and, when 5xx, in `target_5xx`; an answer the
//! router made itself, 502/503/504, in `elb_5xx` only, as the ALB counts it). Percentiles
//! come from a log-scale histogram whose buckets are 10% wide, so a reported percentile
//! is at most 10% above the true one and never below it.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

/// How far back [`RouterStats::window`] can look.
pub const WINDOW_SECONDS: u64 = 900;

/// Upper bounds (seconds) of the Prometheus histogram's buckets.
const PROMETHEUS_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The fine histogram behind percentiles: bucket `i` holds durations up to
/// `FINE_BASE_US * FINE_RATIO^i` microseconds; the last bucket holds everything above.
const FINE_BASE_US: f64 = 20.0;
const FINE_RATIO: f64 = 1.1;
const FINE_BUCKETS: usize = 170;

/// The fine bucket a duration falls in.
///
/// ```text
/// 20 µs or less -> 0;  22 µs -> 1 (20 * 1.1 = 22);  1 ms -> 42 (20 * 1.1^42 ≈ 1.096 ms)
/// ```
fn fine_bucket(micros: f64) -> usize {
    if micros <= FINE_BASE_US {
        return 0;
    }
    let i = ((micros / FINE_BASE_US).ln() / FINE_RATIO.ln()).ceil();
    (i as usize).min(FINE_BUCKETS - 1)
}

/// The upper bound of fine bucket `i`, in seconds.
fn fine_upper_seconds(i: usize) -> f64 {
    FINE_BASE_US * FINE_RATIO.powi(i as i32) / 1e6
}

/// The `q` quantile (0 < q <= 1) of a histogram, as its bucket's upper bound; `None`
/// when it is empty. The rank is `ceil(q * n)`, as a nearest-rank percentile.
///
/// ```text
/// counts [0, 3, 1] (n = 4): q = 0.5 -> rank 2 -> bucket 1; q = 0.99 -> rank 4 -> bucket 2
/// ```
fn quantile(counts: &[u64], q: f64) -> Option<f64> {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return None;
    }
    let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
    let mut seen = 0;
    for (i, c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return Some(fine_upper_seconds(i));
        }
    }
    None
}

/// One second of one target group.
#[derive(Debug, Clone)]
struct Second {
    /// Seconds since the stats were created.
    at: u64,
    requests: u64,
    target_5xx: u64,
    elb_5xx: u64,
    response_time_sum: Duration,
    fine: Vec<u64>,
}

impl Second {
    fn new(at: u64) -> Self {
        Self {
            at,
            requests: 0,
            target_5xx: 0,
            elb_5xx: 0,
            response_time_sum: Duration::ZERO,
            fine: vec![0; FINE_BUCKETS],
        }
    }
}

/// Response-time statistics of a window, in seconds (ALB `TargetResponseTime`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseTimes {
    pub average: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
}

/// What one target group answered over a window.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowStats {
    /// Answers from a target (ALB `RequestCount` counts these and the router's own 5xx
    /// separately: see `elb_5xx`).
    pub requests: u64,
    /// Targets' own 5xx answers (`HTTPCode_Target_5XX_Count`).
    pub target_5xx: u64,
    /// 502/503/504 the router answered itself (`HTTPCode_ELB_5XX_Count`).
    pub elb_5xx: u64,
    /// `None` when no target answered in the window.
    pub response_time: Option<ResponseTimes>,
}

/// Counters of one target group.
#[derive(Debug)]
struct GroupStats {
    requests: AtomicU64,
    target_5xx: AtomicU64,
    /// By status code the router answered with.
    elb_5xx: Mutex<BTreeMap<u16, u64>>,
    /// Per Prometheus bucket, the answers that fell in it and in no lower one (one
    /// increment per request on a cache line every worker shares; `/metrics` sums
    /// them into the cumulative `le` counts); +Inf = `requests`.
    buckets: [AtomicU64; PROMETHEUS_BUCKETS.len()],
    response_time_micros: AtomicU64,
    window: Mutex<VecDeque<Second>>,
}

impl GroupStats {
    fn new() -> Self {
        Self {
            requests: AtomicU64::new(0),
            target_5xx: AtomicU64::new(0),
            elb_5xx: Mutex::new(BTreeMap::new()),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            response_time_micros: AtomicU64::new(0),
            window: Mutex::new(VecDeque::new()),
        }
    }

    fn with_second<R>(&self, at: u64, f: impl FnOnce(&mut Second) -> R) -> R {
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        while window.front().is_some_and(|s| s.at + WINDOW_SECONDS <= at) {
            window.pop_front();
        }
        if window.back().is_none_or(|s| s.at < at) {
            window.push_back(Second::new(at));
        }
        // Clocks are monotonic, but two threads may record out of order around a
        // second's edge: the late one lands in the newest second, a 1 s error at most.
        let second = window.back_mut().expect("pushed above");
        f(second)
    }
}

/// The router's counters, by target-group name. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct RouterStats {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    start: Instant,
    groups: RwLock<BTreeMap<String, Arc<GroupStats>>>,
}

impl Default for RouterStats {
    fn default() -> Self {
        Self::new()
    }
}

impl RouterStats {
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                start: Instant::now(),
                groups: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    fn group(&self, name: &str) -> Arc<GroupStats> {
        if let Some(g) = self
            .inner
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            return g.clone();
        }
        self.inner
            .groups
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_insert_with(|| Arc::new(GroupStats::new()))
            .clone()
    }

    fn second(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.inner.start).as_secs()
    }

    /// A target of `group` answered with `status` after `elapsed` (request sent to
    /// response headers received, as the ALB's `TargetResponseTime`).
    pub fn record_target(&self, group: &str, status: u16, elapsed: Duration, at: Instant) {
        let g = self.group(group);
        g.requests.fetch_add(1, Ordering::Relaxed);
        let is_5xx = (500..600).contains(&status);
        if is_5xx {
            g.target_5xx.fetch_add(1, Ordering::Relaxed);
        }
        let seconds = elapsed.as_secs_f64();
        if let Some(slot) = PROMETHEUS_BUCKETS
            .iter()
            .position(|bound| seconds <= *bound)
        {
            g.buckets[slot].fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        g.response_time_micros.fetch_add(micros, Ordering::Relaxed);
        let fine = fine_bucket(elapsed.as_secs_f64() * 1e6);
        g.with_second(self.second(at), |s| {
            s.requests += 1;
            s.target_5xx += u64::from(is_5xx);
            s.response_time_sum += elapsed;
            s.fine[fine] += 1;
        });
    }

    /// The router answered `status` (502, 503, 504) itself for `group`.
    pub fn record_elb(&self, group: &str, status: u16, at: Instant) {
        let g = self.group(group);
        *g.elb_5xx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(status)
            .or_default() += 1;
        g.with_second(self.second(at), |s| s.elb_5xx += 1);
    }

    /// What `group` answered in the last `window` (rounded up to whole seconds, the
    /// current second included), as of `now`. A group that never served is all zeros.
    pub fn window(&self, group: &str, window: Duration, now: Instant) -> WindowStats {
        let newest = self.second(now);
        let span = window.as_secs().max(1) + u64::from(window.subsec_nanos() > 0);
        let oldest = newest.saturating_sub(span.saturating_sub(1));
        let groups = self.inner.groups.read().unwrap_or_else(|p| p.into_inner());
        let mut total = Second::new(newest);
        if let Some(g) = groups.get(group) {
            let seconds = g.window.lock().unwrap_or_else(|p| p.into_inner());
            for s in seconds.iter().filter(|s| s.at >= oldest && s.at <= newest) {
                total.requests += s.requests;
                total.target_5xx += s.target_5xx;
                total.elb_5xx += s.elb_5xx;
                total.response_time_sum += s.response_time_sum;
                for (t, c) in total.fine.iter_mut().zip(&s.fine) {
                    *t += c;
                }
            }
        }
        let response_time = (total.requests > 0).then(|| {
            let q = |q| quantile(&total.fine, q).unwrap_or_default();
            ResponseTimes {
                average: total.response_time_sum.as_secs_f64() / total.requests as f64,
                p50: q(0.50),
                p90: q(0.90),
                p95: q(0.95),
                p99: q(0.99),
            }
        });
        WindowStats {
            requests: total.requests,
            target_5xx: total.target_5xx,
            elb_5xx: total.elb_5xx,
            response_time,
        }
    }

    /// Target groups that have been counted so far.
    pub fn groups(&self) -> Vec<String> {
        self.inner
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Totals since start, for the live view: (requests, target 5xx, elb 5xx).
    pub fn totals(&self, group: &str) -> (u64, u64, u64) {
        let groups = self.inner.groups.read().unwrap_or_else(|p| p.into_inner());
        groups.get(group).map_or((0, 0, 0), |g| {
            let elb = g
                .elb_5xx
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .sum();
            (
                g.requests.load(Ordering::Relaxed),
                g.target_5xx.load(Ordering::Relaxed),
                elb,
            )
        })
    }

    /// The Prometheus text exposition of the totals. `extra` is appended (the router's
    /// weights and healthy targets, which it knows and these counters do not).
    pub fn prometheus(&self) -> String {
        let groups: Vec<(String, Arc<GroupStats>)> = self
            .inner
            .groups
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP tugboat_router_requests_total Answers from targets, per target group \
             (ALB RequestCount).\n# TYPE tugboat_router_requests_total counter"
        );
        for (name, g) in &groups {
            let _ = writeln!(
                out,
                "tugboat_router_requests_total{{target_group=\"{}\"}} {}",
                escape(name),
                g.requests.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tugboat_router_target_5xx_total 5xx answers from targets, per target \
             group (ALB HTTPCode_Target_5XX_Count).\n# TYPE tugboat_router_target_5xx_total \
             counter"
        );
        for (name, g) in &groups {
            let _ = writeln!(
                out,
                "tugboat_router_target_5xx_total{{target_group=\"{}\"}} {}",
                escape(name),
                g.target_5xx.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tugboat_router_elb_5xx_total 5xx answers the router gave itself (no \
             healthy target 503, bad upstream 502, timeout 504), per target group (ALB \
             HTTPCode_ELB_5XX_Count).\n# TYPE tugboat_router_elb_5xx_total counter"
        );
        for (name, g) in &groups {
            let codes = g.elb_5xx.lock().unwrap_or_else(|p| p.into_inner()).clone();
            for (code, n) in codes {
                let _ = writeln!(
                    out,
                    "tugboat_router_elb_5xx_total{{target_group=\"{}\",code=\"{code}\"}} {n}",
                    escape(name)
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP tugboat_router_target_response_time_seconds Request sent to a target \
             until its response headers arrived (ALB TargetResponseTime).\n# TYPE \
             tugboat_router_target_response_time_seconds histogram"
        );
        for (name, g) in &groups {
            let name = escape(name);
            let mut cumulative = 0;
            for (bound, bucket) in PROMETHEUS_BUCKETS.iter().zip(&g.buckets) {
                cumulative += bucket.load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "tugboat_router_target_response_time_seconds_bucket{{target_group=\"{name}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = g.requests.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tugboat_router_target_response_time_seconds_bucket{{target_group=\"{name}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "tugboat_router_target_response_time_seconds_sum{{target_group=\"{name}\"}} {}",
                g.response_time_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "tugboat_router_target_response_time_seconds_count{{target_group=\"{name}\"}} {count}"
            );
        }
        out
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fine_buckets_are_ten_percent_wide_and_percentiles_never_undershoot() {
        assert_eq!(fine_bucket(10.0), 0);
        assert_eq!(fine_bucket(22.0), 1);
        assert_eq!(fine_bucket(1000.0), 42);
        for micros in [25.0, 999.0, 12_345.0, 2_000_000.0] {
            let upper = fine_upper_seconds(fine_bucket(micros)) * 1e6;
            assert!(
                upper >= micros && upper <= micros * FINE_RATIO * 1.0001,
                "{micros} µs -> {upper}"
            );
        }
        assert_eq!(quantile(&[0, 3, 1], 0.5), Some(fine_upper_seconds(1)));
        assert_eq!(quantile(&[0, 3, 1], 0.99), Some(fine_upper_seconds(2)));
        assert_eq!(quantile(&[0, 0, 0], 0.5), None);
    }

    #[test]
    fn the_window_counts_only_its_seconds_and_each_answer_once() {
        let stats = RouterStats::new();
        let t0 = stats.inner.start;
        let ms = Duration::from_millis;
        // 10 s ago: one slow 500; now: 3 fast 200s and one router 503.
        stats.record_target("green", 500, ms(900), t0);
        let now = t0 + Duration::from_secs(10);
        for _ in 0..3 {
            stats.record_target("green", 200, ms(2), now);
        }
        stats.record_elb("green", 503, now);
        stats.record_target("blue", 200, ms(1), now);

        let last5 = stats.window("green", Duration::from_secs(5), now);
        assert_eq!((last5.requests, last5.target_5xx, last5.elb_5xx), (3, 0, 1));
        let rt = last5.response_time.expect("answers");
        assert!((rt.average - 0.002).abs() < 1e-9, "{rt:?}");
        assert!(rt.p99 >= 0.002 && rt.p99 < 0.0023, "{rt:?}");

        let last11 = stats.window("green", Duration::from_secs(11), now);
        assert_eq!((last11.requests, last11.target_5xx), (4, 1));
        let rt = last11.response_time.expect("answers");
        assert!(rt.p99 >= 0.9, "the slow one is the 99th percentile: {rt:?}");
        assert!(rt.p50 < 0.01, "{rt:?}");

        let none = stats.window("nobody", Duration::from_secs(60), now);
        assert_eq!((none.requests, none.response_time), (0, None));
        assert_eq!(stats.totals("green"), (4, 1, 1));
    }

    #[test]
    fn the_exposition_has_one_group_per_metric_and_a_consistent_histogram() {
        let stats = RouterStats::new();
        let now = Instant::now();
        stats.record_target("a\"b", 200, Duration::from_millis(3), now);
        stats.record_target("c", 502, Duration::from_millis(300), now);
        stats.record_elb("c", 503, now);
        stats.record_target("c", 200, Duration::from_micros(900), now);
        let text = stats.prometheus();
        assert!(text.contains("tugboat_router_requests_total{target_group=\"a\\\"b\"} 1"));
        assert!(text.contains("tugboat_router_target_5xx_total{target_group=\"c\"} 1"));
        assert!(text.contains("tugboat_router_elb_5xx_total{target_group=\"c\",code=\"503\"} 1"));
        // Cumulative: every bucket counts the answers at or below its bound.
        for (le, n) in [
            ("0.0005", 0),
            ("0.001", 1),
            ("0.25", 1),
            ("0.5", 2),
            ("10", 2),
            ("+Inf", 2),
        ] {
            let line = format!(
                "tugboat_router_target_response_time_seconds_bucket{{target_group=\"c\",le=\"{le}\"}} {n}\n"
            );
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert_eq!(text.matches("# TYPE").count(), 4, "{text}");
    }
}
