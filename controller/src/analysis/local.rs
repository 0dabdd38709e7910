//! ALB metrics on the local platform: the local router's per-target-group counters
//! ([`RouterStats`]) answered as CloudWatch would answer them, so one `cloudwatch`
//! template (`100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)`,
//! `p99(TargetResponseTime)`) judges a canary on AWS and on one machine alike.
//!
//! Guarantees:
//! - Each request is answered from the router's window that ends when the request is
//!   read (the router counts in one-second buckets on its own monotonic clock); the
//!   window is the template's `window`, and the whole window is one datapoint, so the
//!   cloudwatch provider's reduction adds nothing up twice.
//! - Where nothing happened there is no datapoint, as with the ALB: a target group that
//!   served no request in the window has no `RequestCount` and no `TargetResponseTime`,
//!   which the provider turns into "no data" (never a made-up 0% error rate).
//! - Only the metrics and statistics the router counts are answered; any other is an
//!   error naming it, never a silent zero.

use std::time::Instant;

use tugboat_core::analysis::AlbStatistic;

use crate::platform::BoxFuture;
use crate::platform::local::stats::{RouterStats, WindowStats};

use super::cloudwatch::{AlbMetricError, AlbMetricRequest, AlbMetricSource, Datapoint};

/// The local router's counters as an [`AlbMetricSource`].
#[derive(Debug, Clone)]
pub struct LocalAlbSource {
    stats: RouterStats,
}

impl LocalAlbSource {
    pub fn new(stats: RouterStats) -> Self {
        Self { stats }
    }
}

impl AlbMetricSource for LocalAlbSource {
    fn fetch<'a>(
        &'a self,
        requests: &'a [AlbMetricRequest],
    ) -> BoxFuture<'a, Result<Vec<Vec<Datapoint>>, AlbMetricError>> {
        Box::pin(async move {
            let now = Instant::now();
            requests
                .iter()
                .map(|r| {
                    let window = self.stats.window(&r.target_group, r.window, now);
                    series(r, &window)
                })
                .collect()
        })
    }
}

/// One request answered from one window: no datapoint, or one stamped with the
/// request's end.
pub fn series(
    request: &AlbMetricRequest,
    window: &WindowStats,
) -> Result<Vec<Datapoint>, AlbMetricError> {
    let unsupported = |what: String| AlbMetricError::Source {
        target_group: request.target_group.clone(),
        reason: format!("the local router does not count {what}"),
    };
    let count = |n: u64| match request.statistic {
        AlbStatistic::Sum | AlbStatistic::SampleCount => Ok(n as f64),
        other => Err(unsupported(format!(
            "{} of {}",
            other.cloudwatch_name(),
            request.metric
        ))),
    };
    let value = match request.metric.as_str() {
        // The ALB publishes no datapoint for a period with no request; the error counts
        // are published (as 0) only beside requests, which the provider knows.
        "RequestCount" if window.requests == 0 => return Ok(Vec::new()),
        "RequestCount" => count(window.requests)?,
        "HTTPCode_Target_5XX_Count" if window.target_5xx == 0 => return Ok(Vec::new()),
        "HTTPCode_Target_5XX_Count" => count(window.target_5xx)?,
        "HTTPCode_ELB_5XX_Count" if window.elb_5xx == 0 => return Ok(Vec::new()),
        "HTTPCode_ELB_5XX_Count" => count(window.elb_5xx)?,
        "TargetResponseTime" => {
            let Some(times) = window.response_time else {
                return Ok(Vec::new());
            };
            match request.statistic {
                AlbStatistic::Average => times.average,
                AlbStatistic::SampleCount => window.requests as f64,
                AlbStatistic::Percentile(50.0) => times.p50,
                AlbStatistic::Percentile(90.0) => times.p90,
                AlbStatistic::Percentile(95.0) => times.p95,
                AlbStatistic::Percentile(99.0) => times.p99,
                other => {
                    return Err(unsupported(format!(
                        "{} of TargetResponseTime (it keeps the average, p50, p90, p95 \
                         and p99)",
                        other.cloudwatch_name()
                    )));
                }
            }
        }
        other => return Err(unsupported(format!("the metric {other}"))),
    };
    Ok(vec![Datapoint {
        at: request.end,
        value,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::cloudwatch::evaluate;
    use crate::platform::local::stats::ResponseTimes;
    use crate::status::Timestamp;
    use std::time::Duration;
    use tugboat_core::analysis::parse_alb_query;

    fn request(metric: &str, statistic: AlbStatistic) -> AlbMetricRequest {
        AlbMetricRequest {
            metric: metric.into(),
            statistic,
            target_group: "ml-model-service-green".into(),
            load_balancer: None,
            period: Duration::from_secs(60),
            window: Duration::from_secs(60),
            end: Timestamp(1_000),
        }
    }

    fn window(requests: u64, target_5xx: u64) -> WindowStats {
        WindowStats {
            requests,
            target_5xx,
            elb_5xx: 0,
            response_time: (requests > 0).then_some(ResponseTimes {
                average: 0.010,
                p50: 0.008,
                p90: 0.020,
                p95: 0.030,
                p99: 0.050,
            }),
        }
    }

    /// The error-rate query of the manifests, answered from the router's counts.
    fn error_rate(w: &WindowStats) -> crate::observed::Answer {
        let query =
            parse_alb_query("100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)").unwrap();
        let series: Vec<_> = [
            request("HTTPCode_Target_5XX_Count", AlbStatistic::Sum),
            request("RequestCount", AlbStatistic::Sum),
        ]
        .iter()
        .map(|r| series(r, w).unwrap())
        .collect();
        evaluate(&query, &series, "ml-model-service-green")
    }

    #[test]
    fn the_error_rate_is_the_routers_target_5xx_over_its_requests() {
        let answer = error_rate(&window(200, 50));
        assert_eq!(
            answer,
            crate::observed::Answer::Value(crate::condition::Value::Number(25.0))
        );
        // No 5xx at all is 0%, as on AWS (where the ALB publishes no 5xx datapoint).
        assert_eq!(
            error_rate(&window(200, 0)),
            crate::observed::Answer::Value(crate::condition::Value::Number(0.0))
        );
    }

    #[test]
    fn a_target_group_that_served_nothing_has_no_data_not_a_zero_error_rate() {
        assert!(
            matches!(
                error_rate(&window(0, 0)),
                crate::observed::Answer::NoData(_)
            ),
            "{:?}",
            error_rate(&window(0, 0))
        );
    }

    #[test]
    fn response_time_percentiles_come_from_the_router_and_others_are_refused() {
        let w = window(10, 0);
        let p99 = series(
            &request("TargetResponseTime", AlbStatistic::Percentile(99.0)),
            &w,
        )
        .unwrap();
        assert_eq!(p99[0].value, 0.050);
        let avg = series(&request("TargetResponseTime", AlbStatistic::Average), &w).unwrap();
        assert_eq!(avg[0].value, 0.010);
        let p75 = series(
            &request("TargetResponseTime", AlbStatistic::Percentile(75.0)),
            &w,
        );
        assert!(matches!(p75, Err(AlbMetricError::Source { .. })), "{p75:?}");
        let bogus = series(&request("ActiveConnectionCount", AlbStatistic::Sum), &w);
        assert!(
            bogus
                .unwrap_err()
                .to_string()
                .contains("ActiveConnectionCount")
        );
    }

    #[tokio::test]
    async fn the_source_reads_what_the_router_counted() {
        let stats = RouterStats::new();
        let now = Instant::now();
        for i in 0..10 {
            let status = if i < 3 { 500 } else { 200 };
            stats.record_target(
                "ml-model-service-green",
                status,
                Duration::from_millis(5),
                now,
            );
        }
        stats.record_target("ml-model-service-blue", 200, Duration::from_millis(5), now);
        let source = LocalAlbSource::new(stats);
        let requests = [
            request("HTTPCode_Target_5XX_Count", AlbStatistic::Sum),
            request("RequestCount", AlbStatistic::Sum),
        ];
        let got = source.fetch(&requests).await.unwrap();
        assert_eq!(got[0][0].value, 3.0);
        assert_eq!(got[1][0].value, 10.0);
    }
}
