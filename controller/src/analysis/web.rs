//! The `web` provider: an HTTP GET or POST to a JSON endpoint, with headers (values as
//! written or from a secret), an optional body and a timeout; the template's `query` is
//! a JSON pointer into the answer (`/data/error_rate`; `/` for the whole answer).
//!
//! Request building ([`build`]) and answer reading ([`read_answer`]) are small pure
//! functions; `measure` only sends. A header value read from a secret is never part of
//! a message.

use std::sync::Arc;

use crate::condition::Value;
use crate::document::{MetricProvider as ProviderSpec, WebMethod, WebProvider};
use crate::observed::Answer;
use crate::platform::BoxFuture;
use tugboat_core::analysis::substitute;

use super::{DEFAULT_TIMEOUT, MetricProvider, MetricRequest, Secrets, excerpt};

/// The web provider.
#[derive(Debug, Clone)]
pub struct Web {
    http: reqwest::Client,
    secrets: Arc<dyn Secrets>,
}

impl Web {
    pub fn new(secrets: Arc<dyn Secrets>) -> Self {
        Self {
            http: reqwest::Client::new(),
            secrets,
        }
    }
}

/// A request ready to send: everything but the secret header values, which are read
/// just before sending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    pub method: WebMethod,
    pub url: String,
    /// Headers with their values as written.
    pub headers: Vec<(String, String)>,
    /// Headers whose values come from secrets: (header, index into the spec's headers).
    pub secret_headers: Vec<(String, usize)>,
    pub body: Option<String>,
}

/// Builds the request of `web` with the run's `args` filled in.
pub fn build(
    web: &WebProvider,
    args: &std::collections::BTreeMap<String, String>,
) -> Result<Built, String> {
    let url = substitute(&web.url, args).map_err(|e| format!("url: {e}"))?;
    if !url.starts_with("http://") {
        return Err(format!(
            "{url}: only http:// URLs can be measured (this build's HTTP client has no TLS); \
             reach the endpoint over plain HTTP inside the network"
        ));
    }
    let mut headers = Vec::new();
    let mut secret_headers = Vec::new();
    for (i, h) in web.headers.iter().enumerate() {
        match &h.value {
            Some(v) => headers.push((
                h.key.clone(),
                substitute(v, args).map_err(|e| format!("header {}: {e}", h.key))?,
            )),
            None => secret_headers.push((h.key.clone(), i)),
        }
    }
    let body = web
        .body
        .as_deref()
        .map(|b| substitute(b, args))
        .transpose()
        .map_err(|e| format!("body: {e}"))?;
    Ok(Built {
        method: web.method,
        url,
        headers,
        secret_headers,
        body,
    })
}

/// What an answer with `status` and `body` counts as, `pointer` being the JSON pointer.
pub fn read_answer(status: u16, body: &str, pointer: &str) -> Result<Answer, String> {
    if !(200..300).contains(&status) {
        return Err(format!("answered HTTP {status}: {}", excerpt(body)));
    }
    let json: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| format!("the answer is not JSON ({e}): {}", excerpt(body)))?;
    let pointer = if pointer == "/" { "" } else { pointer };
    Ok(match json.pointer(pointer) {
        None | Some(serde_json::Value::Null) => {
            Answer::NoData(format!("nothing at {pointer} in the answer"))
        }
        Some(v) => Answer::Value(Value::from_json(v.clone())),
    })
}

impl MetricProvider for Web {
    fn measure<'a>(&'a self, request: &'a MetricRequest) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let name = &request.template.name;
            let ProviderSpec::Web(web) = &request.template.provider else {
                return Answer::Error(format!("template {name} is not a web template"));
            };
            match self.send(web, request).await {
                Ok(answer) => answer,
                Err(e) => Answer::Error(format!("template {name}: {e}")),
            }
        })
    }
}

impl Web {
    async fn send(&self, web: &WebProvider, request: &MetricRequest) -> Result<Answer, String> {
        let built = build(web, &request.args)?;
        let mut req = match built.method {
            WebMethod::Get => self.http.get(&built.url),
            WebMethod::Post => self.http.post(&built.url),
        };
        req = req.timeout(web.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0));
        for (k, v) in &built.headers {
            req = req.header(k, v);
        }
        for (k, i) in &built.secret_headers {
            let source = web.headers[*i]
                .value_from
                .as_ref()
                .ok_or_else(|| format!("header {k} has no value"))?;
            let value = self
                .secrets
                .read(source)
                .await
                .map_err(|e| format!("header {k}: {e}"))?;
            req = req.header(k, value);
        }
        if let Some(body) = built.body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let what = format!("{:?} {}", built.method, built.url).to_uppercase();
        let response = req.send().await.map_err(|e| {
            let why = if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_connect() {
                "cannot connect".to_string()
            } else {
                // reqwest's message names the URL, never header values.
                e.to_string()
            };
            format!(
                "{} {}: {why}",
                what.split(' ').next().unwrap_or("GET"),
                built.url
            )
        })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("{}: reading the answer failed: {e}", built.url))?;
        read_answer(status, &body, &request.query).map_err(|e| format!("{}: {e}", built.url))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn web(yaml: &str) -> WebProvider {
        serde_saphyr::from_str(yaml).expect("test provider")
    }

    #[test]
    fn build_fills_arguments_into_url_headers_and_body() {
        let w = web(
            r#"{url: "http://m/{{args.svc}}", method: POST, body: '{"svc": "{{args.svc}}"}',
                headers: [{key: X-Svc, value: "{{args.svc}}"}, {key: Authorization, valueFrom: {env: TOKEN}}]}"#,
        );
        let args = BTreeMap::from([("svc".to_string(), "api-green".to_string())]);
        let b = build(&w, &args).unwrap();
        assert_eq!(b.url, "http://m/api-green");
        assert_eq!(b.headers, [("X-Svc".to_string(), "api-green".to_string())]);
        assert_eq!(b.secret_headers, [("Authorization".to_string(), 1)]);
        assert_eq!(b.body.as_deref(), Some(r#"{"svc": "api-green"}"#));
        assert!(
            build(&web("{url: \"https://m\"}"), &args)
                .unwrap_err()
                .contains("only http://")
        );
        assert!(
            build(&web("{url: \"http://m/{{args.x}}\"}"), &args)
                .unwrap_err()
                .contains("args.x")
        );
    }

    #[test]
    fn answers_are_read_at_the_pointer() {
        let body = r#"{"data": {"rate": 0.02, "ok": true}, "none": null}"#;
        assert_eq!(
            read_answer(200, body, "/data/rate"),
            Ok(Answer::Value(Value::Number(0.02)))
        );
        assert_eq!(
            read_answer(200, body, "/data/ok"),
            Ok(Answer::Value(Value::Bool(true)))
        );
        assert!(matches!(
            read_answer(200, body, "/"),
            Ok(Answer::Value(Value::Map(_)))
        ));
        assert_eq!(
            read_answer(200, body, "/nope"),
            Ok(Answer::NoData("nothing at /nope in the answer".into()))
        );
        assert_eq!(
            read_answer(200, body, "/none"),
            Ok(Answer::NoData("nothing at /none in the answer".into()))
        );
        assert!(
            read_answer(503, "down", "/")
                .unwrap_err()
                .contains("HTTP 503: down")
        );
        assert!(
            read_answer(200, "<html>", "/")
                .unwrap_err()
                .contains("not JSON")
        );
    }
}
