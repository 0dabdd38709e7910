//! [`CloudwatchSource`]: the [`AlbMetricSource`] over CloudWatch's `GetMetricData`, and
//! the pure pieces that build its requests and read its pages (AWS builds only).

use std::collections::BTreeMap;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat};

use super::{
    AlbMetricError, AlbMetricRequest, AlbMetricSource, Datapoint, NAMESPACE, series_in_order,
};
use crate::platform::BoxFuture;
use crate::status::Timestamp;

/// [`AlbMetricSource`] over CloudWatch `GetMetricData`.
#[derive(Debug, Clone)]
pub struct CloudwatchSource {
    client: aws_sdk_cloudwatch::Client,
}

impl CloudwatchSource {
    pub fn new(client: aws_sdk_cloudwatch::Client) -> Self {
        Self { client }
    }
}

/// The GetMetricData queries for `requests`: ids `m0`, `m1`, ... in order, both
/// dimensions when the load balancer is known, the period in whole seconds.
pub fn metric_data_queries(requests: &[AlbMetricRequest]) -> Vec<MetricDataQuery> {
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut dimensions = vec![
                Dimension::builder()
                    .name("TargetGroup")
                    .value(&r.target_group)
                    .build(),
            ];
            if let Some(lb) = &r.load_balancer {
                dimensions.push(Dimension::builder().name("LoadBalancer").value(lb).build());
            }
            let metric = Metric::builder()
                .namespace(NAMESPACE)
                .metric_name(&r.metric)
                .set_dimensions(Some(dimensions))
                .build();
            let stat = MetricStat::builder()
                .metric(metric)
                .period(r.period.as_secs().max(1) as i32)
                .stat(r.statistic.cloudwatch_name())
                .build();
            MetricDataQuery::builder()
                .id(format!("m{i}"))
                .metric_stat(stat)
                .return_data(true)
                .build()
        })
        .collect()
}
/// Adds one page of GetMetricData results to the datapoints gathered so far, by query
/// id (a query's datapoints may be spread over several pages).
pub fn absorb_page(
    by_id: &mut BTreeMap<String, Vec<Datapoint>>,
    results: &[aws_sdk_cloudwatch::types::MetricDataResult],
) {
    for result in results {
        let points = by_id
            .entry(result.id().unwrap_or_default().to_string())
            .or_default();
        for (t, v) in result.timestamps().iter().zip(result.values()) {
            points.push(Datapoint {
                at: Timestamp(t.to_millis().unwrap_or_default().max(0) as u64),
                value: *v,
            });
        }
    }
}

impl AlbMetricSource for CloudwatchSource {
    fn fetch<'a>(
        &'a self,
        requests: &'a [AlbMetricRequest],
    ) -> BoxFuture<'a, Result<Vec<Vec<Datapoint>>, AlbMetricError>> {
        Box::pin(async move {
            let Some(first) = requests.first() else {
                return Ok(Vec::new());
            };
            let end = first.end;
            let start = Timestamp(end.0.saturating_sub(first.window.as_millis() as u64));
            let queries = metric_data_queries(requests);
            let mut by_id: BTreeMap<String, Vec<Datapoint>> = BTreeMap::new();
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .get_metric_data()
                    .set_metric_data_queries(Some(queries.clone()))
                    .start_time(DateTime::from_millis(start.0 as i64))
                    .end_time(DateTime::from_millis(end.0 as i64))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| {
                        AlbMetricError::GetMetricData(crate::runtime::reconciler::error_chain(&e))
                    })?;
                absorb_page(&mut by_id, out.metric_data_results());
                token = out
                    .next_token()
                    .map(str::to_string)
                    .filter(|t| !t.is_empty());
                if token.is_none() {
                    break;
                }
            }
            Ok(series_in_order(by_id, requests.len()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::requests_for;
    use super::super::tests::p;
    use super::*;
    use crate::document::CloudwatchProvider;
    use tugboat_core::analysis::{AlbStatistic, parse_alb_query};

    #[test]
    fn pages_are_merged_per_query_and_sorted() {
        use aws_sdk_cloudwatch::types::MetricDataResult;
        let result = |id: &str, points: &[(i64, f64)]| {
            MetricDataResult::builder()
                .id(id)
                .set_timestamps(Some(
                    points
                        .iter()
                        .map(|(t, _)| DateTime::from_millis(*t))
                        .collect(),
                ))
                .set_values(Some(points.iter().map(|(_, v)| *v).collect()))
                .build()
        };
        let mut by_id = BTreeMap::new();
        // Newest first, as CloudWatch answers by default, over two pages.
        absorb_page(
            &mut by_id,
            &[result("m1", &[(3000, 3.0)]), result("m0", &[(2000, 2.0)])],
        );
        absorb_page(
            &mut by_id,
            &[result("m0", &[(1000, 1.0)]), result("m1", &[(1000, 1.0)])],
        );
        let series = series_in_order(by_id, 3);
        assert_eq!(series[0], [p(1000, 1.0), p(2000, 2.0)]);
        assert_eq!(series[1], [p(1000, 1.0), p(3000, 3.0)]);
        assert!(
            series[2].is_empty(),
            "a query with no datapoints has an empty series"
        );
    }

    #[test]
    fn requests_carry_both_dimensions_and_an_average_its_counts() {
        let q = parse_alb_query("avg(TargetResponseTime)").unwrap();
        let cw = CloudwatchProvider::default();
        let rs = requests_for(
            &q,
            "arn:aws:elasticloadbalancing:r:1:targetgroup/g/9",
            Some("app/a/1"),
            &cw,
            Timestamp(0),
        );
        assert_eq!(rs.len(), 2);
        assert_eq!(rs[0].statistic, AlbStatistic::SampleCount);
        assert_eq!(rs[1].target_group, "targetgroup/g/9");
        let queries = metric_data_queries(&rs);
        let stat = queries[1].metric_stat().unwrap();
        assert_eq!(stat.stat(), Some("Average"));
        assert_eq!(stat.period(), Some(60));
        let dims: Vec<_> = stat
            .metric()
            .unwrap()
            .dimensions()
            .iter()
            .map(|d| (d.name().unwrap(), d.value().unwrap()))
            .collect();
        assert_eq!(
            dims,
            [
                ("TargetGroup", "targetgroup/g/9"),
                ("LoadBalancer", "app/a/1")
            ]
        );
        assert_eq!(queries[1].id(), Some("m1"));
    }
}
