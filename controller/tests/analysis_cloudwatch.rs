//! The cloudwatch provider through the real aws-sdk-cloudwatch (RPC v2 CBOR) against
//! ministack, which `.ci/test` starts beside moto and points only the CloudWatch client
//! at (`AWS_ENDPOINT_URL_CLOUDWATCH`). The test puts ALB-shaped datapoints (both the
//! TargetGroup and LoadBalancer dimensions) and reads them back through tugboat's
//! CloudwatchSource, which computes the ratio itself.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, MetricDatum, StandardUnit};
use tugboat::analysis::cloudwatch::{
    AlbMetricSource, Cloudwatch, CloudwatchSource, load_balancer_dimension,
};
use tugboat::analysis::{MetricProvider, MetricRequest};
use tugboat::condition::Value;
use tugboat::document::AnalysisTemplate;
use tugboat::observed::Answer;
use tugboat::status::Timestamp;

const LISTENER: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2";

async fn client() -> aws_sdk_cloudwatch::Client {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_CLOUDWATCH").unwrap_or_else(|_| {
        panic!(
            "AWS_ENDPOINT_URL_CLOUDWATCH is not set: this test needs the ministack emulator \
             that .ci/test starts; run it through .ci/test"
        )
    });
    let config = tugboat::aws::sdk_config(None).await;
    let client = tugboat::aws::cloudwatch(&config);
    // Only CloudWatch goes to ministack; everything else still goes to moto.
    assert_ne!(config.endpoint_url(), Some(endpoint.as_str()));
    client
}

/// Puts `values` one minute apart, ending a minute before `end`, for one target group.
async fn put(
    cw: &aws_sdk_cloudwatch::Client,
    tg: &str,
    metric: &str,
    values: &[f64],
    end: Timestamp,
) {
    let lb = load_balancer_dimension(LISTENER).unwrap();
    let data: Vec<MetricDatum> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let at = end.0 - (values.len() - i) as u64 * 60_000;
            MetricDatum::builder()
                .metric_name(metric)
                .dimensions(Dimension::builder().name("TargetGroup").value(tg).build())
                .dimensions(Dimension::builder().name("LoadBalancer").value(&lb).build())
                .timestamp(DateTime::from_millis(at as i64))
                .value(*v)
                .unit(StandardUnit::Count)
                .build()
        })
        .collect();
    cw.put_metric_data()
        .namespace("AWS/ApplicationELB")
        .set_metric_data(Some(data))
        .send()
        .await
        .unwrap_or_else(|e| panic!("PutMetricData: {}", tugboat::aws::describe(&e)));
}

fn template(query: &str, tg: &str) -> AnalysisTemplate {
    serde_json::from_value(serde_json::json!({
        "name": "alb-5xx-rate",
        "args": [{"name": "tg"}],
        "provider": {"cloudwatch": {"period": "1m", "window": "10m", "targetGroup": "{{args.tg}}"}},
        "query": query,
        "successCondition": "result < 1",
    }))
    .map(|mut t: AnalysisTemplate| {
        t.args[0].value = Some(tg.to_string());
        t
    })
    .unwrap()
}

async fn measure(source: &CloudwatchSource, query: &str, tg_arn: &str, now: Timestamp) -> Answer {
    let t = template(query, tg_arn);
    let request = MetricRequest {
        query: t.query.clone(),
        args: BTreeMap::from([("tg".to_string(), tg_arn.to_string())]),
        load_balancer: load_balancer_dimension(LISTENER),
        now,
        template: t,
    };
    Cloudwatch::new(Arc::new(source.clone()))
        .measure(&request)
        .await
}

fn unique_tg() -> (String, String) {
    let name = common::unique_name("tg");
    let name: String = name.chars().take(28).collect();
    let dim = format!("targetgroup/{name}/73e2d6bc24d8a067");
    (
        format!("arn:aws:elasticloadbalancing:us-east-1:123456789012:{dim}"),
        dim,
    )
}

#[tokio::test]
async fn the_5xx_share_is_computed_from_both_alb_series_through_the_real_sdk() {
    let cw = client().await;
    let (arn, dim) = unique_tg();
    let now = Timestamp::now();
    put(
        &cw,
        &dim,
        "RequestCount",
        &[100.0, 200.0, 300.0, 400.0],
        now,
    )
    .await;
    put(
        &cw,
        &dim,
        "HTTPCode_Target_5XX_Count",
        &[1.0, 0.0, 3.0, 6.0],
        now,
    )
    .await;
    let source = CloudwatchSource::new(cw.clone());
    let answer = measure(
        &source,
        "100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)",
        &arn,
        now,
    )
    .await;
    assert_eq!(
        answer,
        Answer::Value(Value::Number(1.0)),
        "10 of 1000 requests"
    );
    let samples = measure(&source, "sum(RequestCount)", &arn, now).await;
    assert_eq!(samples, Answer::Value(Value::Number(1000.0)));
    let worst = measure(&source, "max(HTTPCode_Target_5XX_Count)", &arn, now).await;
    assert_eq!(worst, Answer::Value(Value::Number(6.0)));
}

#[tokio::test]
async fn datapoints_come_back_sorted_and_a_percentile_is_asked_for_by_name() {
    let cw = client().await;
    let (arn, dim) = unique_tg();
    let now = Timestamp::now();
    put(&cw, &dim, "TargetResponseTime", &[0.1, 0.5, 0.2], now).await;
    let source = CloudwatchSource::new(cw.clone());
    let requests = vec![tugboat::analysis::cloudwatch::AlbMetricRequest {
        metric: "TargetResponseTime".into(),
        statistic: tugboat_core::analysis::AlbStatistic::Percentile(99.0),
        target_group: dim.clone(),
        load_balancer: load_balancer_dimension(LISTENER),
        period: Duration::from_secs(60),
        window: Duration::from_secs(600),
        end: now,
    }];
    let series = source
        .fetch(&requests)
        .await
        .expect("GetMetricData answers");
    let at: Vec<u64> = series[0].iter().map(|p| p.at.0).collect();
    let mut sorted = at.clone();
    sorted.sort();
    assert_eq!(at, sorted, "oldest first, whatever the server's order");
    assert_eq!(series[0].len(), 3, "{series:?}");
    let p99 = measure(&source, "p99(TargetResponseTime)", &arn, now).await;
    assert_eq!(
        p99,
        Answer::Value(Value::Number(0.5)),
        "the worst period's p99"
    );
}

#[tokio::test]
async fn a_target_group_with_no_requests_is_no_data_never_zero() {
    let cw = client().await;
    let (arn, _) = unique_tg();
    let source = CloudwatchSource::new(cw);
    let answer = measure(
        &source,
        "sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)",
        &arn,
        Timestamp::now(),
    )
    .await;
    assert!(
        matches!(&answer, Answer::NoData(why) if why.starts_with("no RequestCount datapoints for targetgroup/")),
        "{answer:?}"
    );
}
