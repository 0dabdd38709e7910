//! The `cloudwatch` provider: the ALB's per-target-group metrics, the ratio computed by
//! tugboat.
//!
//! A template's query (`100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)`,
//! `p99(TargetResponseTime)`; parsed by [`tugboat_core::analysis::parse_alb_query`]) is
//! turned into plain per-target-group requests ([`AlbMetricRequest`]: metric, target
//! group, statistic, period, window) for an [`AlbMetricSource`]: CloudWatch's
//! `GetMetricData` here ([`CloudwatchSource`]), the local router's counters on the local
//! platform. Each series is reduced over the window ([`reduce`]) and the ratio taken in
//! tugboat, not with metric math.
//!
//! Reduction over the window: `sum` and `count` add the periods up, `min`/`max` take the
//! extreme, `avg` weighs each period's average by its sample count (a second request),
//! and a percentile takes the worst period's (a conservative bound: percentiles do not
//! add up). ALB metrics are absent, not zero, where nothing happened: a count-like
//! numerator with no datapoints is 0 when its denominator has some; a denominator with
//! none is no data.
//!
//! [`CloudwatchSource`] sends both the `TargetGroup` and `LoadBalancer` dimensions (the
//! ALB publishes its per-target-group metrics under both), follows `NextToken`, and sorts
//! the datapoints itself (CloudWatch's order depends on `ScanBy`, and emulators ignore
//! it).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::condition::Value;
use crate::document::{CloudwatchProvider, MetricProvider as ProviderSpec};
use crate::observed::Answer;
use crate::platform::BoxFuture;
use crate::status::Timestamp;
use tugboat_core::analysis::{AlbQuery, AlbStatistic, AlbTerm, parse_alb_query, substitute};

use super::{MetricProvider, MetricRequest};

#[cfg(feature = "aws")]
mod sdk;
#[cfg(feature = "aws")]
pub use sdk::{CloudwatchSource, absorb_page, metric_data_queries};

/// The ALB's CloudWatch namespace.
pub const NAMESPACE: &str = "AWS/ApplicationELB";
/// Default aggregation period.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(60);
/// Default window a measurement looks back over.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// One statistic of one ALB metric of one target group over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct AlbMetricRequest {
    /// e.g. `RequestCount`, `HTTPCode_Target_5XX_Count`, `TargetResponseTime`.
    pub metric: String,
    pub statistic: AlbStatistic,
    /// The `TargetGroup` dimension (`targetgroup/NAME/ID`), or the target group's name
    /// as the local router knows it.
    pub target_group: String,
    /// The `LoadBalancer` dimension (`app/NAME/ID`), when known.
    pub load_balancer: Option<String>,
    pub period: Duration,
    /// How far back from `end`.
    pub window: Duration,
    pub end: Timestamp,
}

/// One period's value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datapoint {
    pub at: Timestamp,
    pub value: f64,
}

/// Why ALB metrics could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlbMetricError {
    #[error("GetMetricData failed: {0}")]
    GetMetricData(String),
    #[error("the metric source has no data for target group {target_group}: {reason}")]
    Source {
        target_group: String,
        reason: String,
    },
}

/// Where ALB per-target-group metrics come from.
pub trait AlbMetricSource: Send + Sync + fmt::Debug {
    /// One series per request, in the requests' order, each oldest first.
    fn fetch<'a>(
        &'a self,
        requests: &'a [AlbMetricRequest],
    ) -> BoxFuture<'a, Result<Vec<Vec<Datapoint>>, AlbMetricError>>;
}

/// The `TargetGroup` dimension of a target group ARN (`targetgroup/NAME/ID`); anything
/// that is not an ARN is taken as it is.
///
/// ```
/// use tugboat::analysis::cloudwatch::target_group_dimension;
/// assert_eq!(
///     target_group_dimension("arn:aws:elasticloadbalancing:ap-south-1:123:targetgroup/tg-a/0b1b"),
///     "targetgroup/tg-a/0b1b"
/// );
/// assert_eq!(target_group_dimension("backend-green"), "backend-green");
/// ```
pub fn target_group_dimension(target_group: &str) -> String {
    match target_group.find(":targetgroup/") {
        Some(i) => target_group[i + 1..].to_string(),
        None => target_group.to_string(),
    }
}

/// The `LoadBalancer` dimension (`app/NAME/ID`) of a listener or load balancer ARN.
///
/// ```
/// use tugboat::analysis::cloudwatch::load_balancer_dimension;
/// let listener = "arn:aws:elasticloadbalancing:ap-south-1:123:listener/app/pa/50dc/f2f7";
/// assert_eq!(load_balancer_dimension(listener).as_deref(), Some("app/pa/50dc"));
/// let lb = "arn:aws:elasticloadbalancing:ap-south-1:123:loadbalancer/app/pa/50dc";
/// assert_eq!(load_balancer_dimension(lb).as_deref(), Some("app/pa/50dc"));
/// assert_eq!(load_balancer_dimension("app/pa/50dc").as_deref(), Some("app/pa/50dc"));
/// ```
pub fn load_balancer_dimension(arn: &str) -> Option<String> {
    let rest = ["listener/", "loadbalancer/"]
        .iter()
        .find_map(|k| arn.find(k).map(|i| &arn[i + k.len()..]))
        .unwrap_or(arn);
    let parts: Vec<&str> = rest.split('/').collect();
    (parts.len() >= 3 && parts[0] == "app").then(|| parts[..3].join("/"))
}

/// The requests a query needs: the numerator's, the denominator's, and for an average
/// its sample counts (to weigh the periods).
pub fn requests_for(
    query: &AlbQuery,
    target_group: &str,
    load_balancer: Option<&str>,
    cw: &CloudwatchProvider,
    end: Timestamp,
) -> Vec<AlbMetricRequest> {
    let mut out = Vec::new();
    let mut add = |term: &AlbTerm| {
        let base = AlbMetricRequest {
            metric: term.metric.clone(),
            statistic: term.statistic,
            target_group: target_group_dimension(target_group),
            load_balancer: load_balancer.map(str::to_string),
            period: cw.period.map_or(DEFAULT_PERIOD, |d| d.0),
            window: cw.window.map_or(DEFAULT_WINDOW, |d| d.0),
            end,
        };
        if term.statistic == AlbStatistic::Average {
            out.push(AlbMetricRequest {
                statistic: AlbStatistic::SampleCount,
                ..base.clone()
            });
        }
        out.push(base);
    };
    add(&query.numerator);
    if let Some(d) = &query.denominator {
        add(d);
    }
    out
}

/// One series reduced over the window (see the module docs); `counts` are the sample
/// counts per period, for an average. `None`: no datapoints.
///
/// ```
/// use tugboat::analysis::cloudwatch::{Datapoint, reduce};
/// use tugboat_core::analysis::AlbStatistic;
/// use tugboat_core::status::Timestamp;
/// let p = |t, v| Datapoint { at: Timestamp(t), value: v };
/// let sums = [p(1, 10.0), p(2, 30.0)];
/// assert_eq!(reduce(AlbStatistic::Sum, &sums, None), Some(40.0));
/// let avgs = [p(1, 0.25), p(2, 1.25)];
/// let counts = [p(1, 3.0), p(2, 1.0)];
/// assert_eq!(reduce(AlbStatistic::Average, &avgs, Some(&counts)), Some(0.5));
/// assert_eq!(reduce(AlbStatistic::Percentile(99.0), &avgs, None), Some(1.25));
/// assert_eq!(reduce(AlbStatistic::Sum, &[], None), None);
/// ```
pub fn reduce(
    stat: AlbStatistic,
    points: &[Datapoint],
    counts: Option<&[Datapoint]>,
) -> Option<f64> {
    if points.is_empty() {
        return None;
    }
    let values = points.iter().map(|p| p.value);
    Some(match stat {
        AlbStatistic::Sum | AlbStatistic::SampleCount => values.sum(),
        AlbStatistic::Minimum => values.fold(f64::INFINITY, f64::min),
        AlbStatistic::Maximum | AlbStatistic::Percentile(_) => {
            values.fold(f64::NEG_INFINITY, f64::max)
        }
        AlbStatistic::Average => {
            let weight = |at: Timestamp| {
                counts
                    .and_then(|c| c.iter().find(|c| c.at == at))
                    .map_or(1.0, |c| c.value)
            };
            let (sum, n) = points.iter().fold((0.0, 0.0), |(s, n), p| {
                let w = weight(p.at);
                (s + p.value * w, n + w)
            });
            if n == 0.0 { f64::NAN } else { sum / n }
        }
    })
}

/// The query's value from the fetched series (in [`requests_for`]'s order).
pub fn evaluate(query: &AlbQuery, series: &[Vec<Datapoint>], describe: &str) -> Answer {
    let mut next = series.iter();
    let mut term = |t: &AlbTerm| {
        let counts = if t.statistic == AlbStatistic::Average {
            next.next()
        } else {
            None
        };
        let points = next.next().map(Vec::as_slice).unwrap_or(&[]);
        reduce(t.statistic, points, counts.map(Vec::as_slice))
    };
    let count_like =
        |t: &AlbTerm| matches!(t.statistic, AlbStatistic::Sum | AlbStatistic::SampleCount);
    let numerator = term(&query.numerator);
    let value = match &query.denominator {
        None => match numerator {
            Some(n) => n,
            None => {
                return Answer::NoData(format!(
                    "no {} datapoints for {describe}",
                    query.numerator.metric
                ));
            }
        },
        Some(den) => {
            let Some(d) = term(den) else {
                return Answer::NoData(format!("no {} datapoints for {describe}", den.metric));
            };
            let n = match numerator {
                Some(n) => n,
                // The ALB publishes no 5XX count where there were none.
                None if count_like(&query.numerator) => 0.0,
                None => {
                    return Answer::NoData(format!(
                        "no {} datapoints for {describe}",
                        query.numerator.metric
                    ));
                }
            };
            n / d
        }
    };
    Answer::Value(Value::Number(query.factor * value))
}

/// The cloudwatch provider over an ALB metric source.
#[derive(Debug, Clone)]
pub struct Cloudwatch {
    source: Arc<dyn AlbMetricSource>,
}

impl Cloudwatch {
    pub fn new(source: Arc<dyn AlbMetricSource>) -> Self {
        Self { source }
    }
}

impl MetricProvider for Cloudwatch {
    fn measure<'a>(&'a self, request: &'a MetricRequest) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let name = &request.template.name;
            let ProviderSpec::Cloudwatch(cw) = &request.template.provider else {
                return Answer::Error(format!("template {name} is not a cloudwatch template"));
            };
            let query = match parse_alb_query(&request.query) {
                Ok(q) => q,
                Err(e) => return Answer::Error(format!("template {name}: query: {e}")),
            };
            let target_group = match cw
                .target_group
                .as_deref()
                .map(|t| substitute(t, &request.args))
            {
                Some(Ok(tg)) if !tg.is_empty() => tg,
                Some(Err(e)) => return Answer::Error(format!("template {name}: targetGroup: {e}")),
                _ => return Answer::Error(format!("template {name}: no targetGroup to measure")),
            };
            let load_balancer = match cw
                .load_balancer
                .as_deref()
                .map(|l| substitute(l, &request.args))
            {
                Some(Ok(lb)) => load_balancer_dimension(&lb).or(Some(lb)),
                Some(Err(e)) => {
                    return Answer::Error(format!("template {name}: loadBalancer: {e}"));
                }
                None => request.load_balancer.clone(),
            };
            let requests = requests_for(
                &query,
                &target_group,
                load_balancer.as_deref(),
                cw,
                request.now,
            );
            let window = humantime::format_duration(requests[0].window);
            let describe = format!(
                "{} in the last {window}",
                target_group_dimension(&target_group)
            );
            match self.source.fetch(&requests).await {
                Ok(series) => evaluate(&query, &series, &describe),
                Err(e) => Answer::Error(format!("template {name}: {e}")),
            }
        })
    }
}

/// The series of queries `m0`..`m{n-1}`, each sorted oldest first (CloudWatch's order
/// follows `ScanBy`, emulators' does not), a timestamp seen twice kept once.
pub fn series_in_order(
    mut by_id: BTreeMap<String, Vec<Datapoint>>,
    n: usize,
) -> Vec<Vec<Datapoint>> {
    (0..n)
        .map(|i| {
            let mut points = by_id.remove(&format!("m{i}")).unwrap_or_default();
            points.sort_by_key(|p| p.at);
            points.dedup_by_key(|p| p.at);
            points
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A datapoint at `t` ms (shared with the SDK source's tests).
    pub(super) fn p(t: u64, v: f64) -> Datapoint {
        Datapoint {
            at: Timestamp(t),
            value: v,
        }
    }

    #[test]
    fn a_ratio_is_computed_from_both_series() {
        let q =
            parse_alb_query("100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)").unwrap();
        let series = vec![vec![p(1, 2.0), p(2, 3.0)], vec![p(1, 100.0), p(2, 150.0)]];
        assert_eq!(
            evaluate(&q, &series, "tg"),
            Answer::Value(Value::Number(2.0))
        );
        // No 5XX datapoints (none happened) over 250 requests: 0%.
        let series = vec![vec![], vec![p(1, 100.0), p(2, 150.0)]];
        assert_eq!(
            evaluate(&q, &series, "tg"),
            Answer::Value(Value::Number(0.0))
        );
        // No requests at all: no data, never a made-up 0%.
        let series = vec![vec![], vec![]];
        assert_eq!(
            evaluate(&q, &series, "tg"),
            Answer::NoData("no RequestCount datapoints for tg".into())
        );
    }
}
