//! The `prometheus` provider: an instant query over the HTTP API (`GET
//! /api/v1/query?query=...`), optionally with basic or bearer authentication.
//!
//! `result` is a number for a scalar answer and a list of the samples' values for a
//! vector (`result[0]`, `len(result)`; a one-sample vector also compares as a number).
//! An empty vector is no data. A query Prometheus rejects, a range vector, an answer
//! that is not Prometheus's JSON, a server that is down: errors that name the template
//! and the cause. [`query_url`] and [`read_answer`] are pure.

use std::sync::Arc;

use crate::condition::Value;
use crate::document::{MetricProvider as ProviderSpec, PrometheusProvider};
use crate::observed::Answer;
use crate::platform::BoxFuture;
use tugboat_core::analysis::substitute;

use super::{DEFAULT_TIMEOUT, MetricProvider, MetricRequest, Secrets, excerpt};

/// The Prometheus provider.
#[derive(Debug, Clone)]
pub struct Prometheus {
    http: reqwest::Client,
    secrets: Arc<dyn Secrets>,
}

impl Prometheus {
    pub fn new(secrets: Arc<dyn Secrets>) -> Self {
        Self {
            http: reqwest::Client::new(),
            secrets,
        }
    }
}

/// The instant-query URL for `query` on the server at `address`.
///
/// ```
/// use tugboat::analysis::prometheus::query_url;
/// assert_eq!(
///     query_url("http://prom:9090/", "sum(rate(x[1m]))").unwrap(),
///     "http://prom:9090/api/v1/query?query=sum%28rate%28x%5B1m%5D%29%29"
/// );
/// ```
pub fn query_url(address: &str, query: &str) -> Result<String, String> {
    if !address.starts_with("http://") {
        return Err(format!(
            "{address}: only http:// addresses can be queried (this build's HTTP client has no TLS)"
        ));
    }
    let mut url = reqwest::Url::parse(address.trim_end_matches('/'))
        .map_err(|e| format!("{address} is not a URL: {e}"))?;
    url.set_path(&format!(
        "{}/api/v1/query",
        url.path().trim_end_matches('/')
    ));
    url.query_pairs_mut().append_pair("query", query);
    Ok(url.to_string())
}

/// What Prometheus's answer (`status` and `body`) counts as.
pub fn read_answer(status: u16, body: &str) -> Result<Answer, String> {
    let json: serde_json::Value = serde_json::from_str(body).map_err(|_| {
        format!(
            "HTTP {status}, and the answer is not Prometheus's JSON: {}",
            excerpt(body)
        )
    })?;
    if json["status"] != "success" {
        return Err(format!(
            "Prometheus rejected the query (HTTP {status}): {}: {}",
            json["errorType"].as_str().unwrap_or("error"),
            json["error"].as_str().unwrap_or("no message")
        ));
    }
    let data = &json["data"];
    let sample = |v: &serde_json::Value| -> Result<f64, String> {
        let text = v
            .get(1)
            .and_then(|s| s.as_str())
            .ok_or_else(|| format!("a sample is not [time, \"value\"]: {v}"))?;
        Value::String(text.to_string())
            .as_number()
            .ok_or_else(|| format!("a sample value {text:?} is not a number"))
    };
    match data["resultType"].as_str() {
        Some("scalar") => Ok(Answer::Value(Value::Number(sample(&data["result"])?))),
        Some("vector") => {
            let series = data["result"]
                .as_array()
                .ok_or("a vector answer without a result list")?;
            if series.is_empty() {
                return Ok(Answer::NoData("the query returned an empty vector".into()));
            }
            let values = series
                .iter()
                .map(|s| sample(&s["value"]).map(Value::Number))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Answer::Value(Value::List(values)))
        }
        Some("string") => Ok(Answer::Value(Value::String(
            data["result"][1].as_str().unwrap_or_default().to_string(),
        ))),
        Some("matrix") => Err(
            "the query returns a range vector; analysis needs an instant vector or a scalar \
             (wrap the range in rate(), avg_over_time() or similar)"
                .into(),
        ),
        other => Err(format!("unknown resultType {other:?}")),
    }
}

impl MetricProvider for Prometheus {
    fn measure<'a>(&'a self, request: &'a MetricRequest) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let name = &request.template.name;
            let ProviderSpec::Prometheus(p) = &request.template.provider else {
                return Answer::Error(format!("template {name} is not a prometheus template"));
            };
            match self.send(p, request).await {
                Ok(answer) => answer,
                Err(e) => Answer::Error(format!("template {name}: {e}")),
            }
        })
    }
}

impl Prometheus {
    async fn send(
        &self,
        p: &PrometheusProvider,
        request: &MetricRequest,
    ) -> Result<Answer, String> {
        let address = substitute(&p.address, &request.args).map_err(|e| format!("address: {e}"))?;
        let url = query_url(&address, &request.query)?;
        let mut req = self
            .http
            .get(&url)
            .timeout(p.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0));
        if let Some(auth) = &p.authentication {
            if let Some(basic) = &auth.basic {
                let password = self
                    .secrets
                    .read(&basic.password)
                    .await
                    .map_err(|e| format!("basic authentication password: {e}"))?;
                req = req.basic_auth(&basic.username, Some(password));
            } else if let Some(token) = &auth.bearer {
                let token = self
                    .secrets
                    .read(token)
                    .await
                    .map_err(|e| format!("bearer token: {e}"))?;
                req = req.bearer_auth(token);
            }
        }
        let response = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect (is Prometheus up?)".to_string()
            } else {
                e.to_string()
            };
            format!("Prometheus at {address}: {why}")
        })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("Prometheus at {address}: reading the answer failed: {e}"))?;
        read_answer(status, &body).map_err(|e| format!("Prometheus at {address}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_scalars_and_errors() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"a":"1"},"value":[1700000000.1,"0.25"]},{"metric":{},"value":[1,"NaN"]}]}}"#;
        match read_answer(200, vector).unwrap() {
            Answer::Value(Value::List(l)) => {
                assert_eq!(l[0], Value::Number(0.25));
                assert!(matches!(l[1], Value::Number(n) if n.is_nan()));
            }
            other => panic!("{other:?}"),
        }
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"+Inf"]}}"#;
        assert_eq!(
            read_answer(200, scalar).unwrap(),
            Answer::Value(Value::Number(f64::INFINITY))
        );
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert!(matches!(
            read_answer(200, empty).unwrap(),
            Answer::NoData(_)
        ));
        let rejected =
            r#"{"status":"error","errorType":"bad_data","error":"parse error at char 5"}"#;
        assert_eq!(
            read_answer(400, rejected).unwrap_err(),
            "Prometheus rejected the query (HTTP 400): bad_data: parse error at char 5"
        );
        assert!(
            read_answer(502, "<html>bad gateway</html>")
                .unwrap_err()
                .contains("not Prometheus's JSON")
        );
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(
            read_answer(200, matrix)
                .unwrap_err()
                .contains("range vector")
        );
    }
}
