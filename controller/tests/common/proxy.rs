//! A reverse proxy in front of the emulator that makes chosen AWS calls slow or failing,
//! the way a congested or failing AWS endpoint would, while everything else passes
//! through untouched.
//!
//! Point an SDK config at [`Proxy::url`]; every request goes on to the upstream (moto's
//! endpoint) unless a [`FaultRule`] matches it. A call is named by its operation: the
//! `X-Amz-Target` header of the JSON protocols (ECS, SSM:
//! `AmazonEC2ContainerServiceV20141113.RegisterTaskDefinition`) or the `Action` form
//! field of the query protocols (ELBv2: `CreateRule`). A rule matches the full name or
//! the operation after the last `.`.
//!
//! Guarantees the tests rely on:
//! - A request the proxy forwards reaches the upstream even when the client gives up
//!   waiting (the forward runs in its own task), so a late answer still means AWS acted.
//! - [`Proxy::seen`] and [`Proxy::forwarded`] count per operation: requests received,
//!   and requests the upstream answered.
//! - Faults apply to chosen calls of an operation ([`Calls`]); issue 12's fault
//!   injection (throttling bodies, 5xx, by share of calls) adds rules, not a new proxy.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

/// What to do to a matching call.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Forward the request at once, then hold the upstream's answer this long.
    DelayAnswer(Duration),
    /// Do not forward; answer with this status, content type and body (a throttling
    /// error, a 503...).
    Respond {
        status: u16,
        content_type: String,
        body: String,
    },
}

/// Which of an operation's calls (counted from 1, in arrival order) a rule applies to.
#[derive(Debug, Clone, Copy)]
pub enum Calls {
    /// The first `n`.
    First(usize),
    /// Every `n`th (a deterministic share of 1/n).
    EveryNth(usize),
    /// All of them.
    All,
}

impl Calls {
    fn includes(self, call: usize) -> bool {
        match self {
            Calls::First(n) => call <= n,
            Calls::EveryNth(n) => n > 0 && call.is_multiple_of(n),
            Calls::All => true,
        }
    }
}

/// One fault: which operation, which of its calls, what happens.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub operation: String,
    pub calls: Calls,
    pub fault: Fault,
}

impl FaultRule {
    pub fn new(operation: &str, calls: Calls, fault: Fault) -> Self {
        Self {
            operation: operation.to_string(),
            calls,
            fault,
        }
    }

    fn matches(&self, name: &str) -> bool {
        name == self.operation || operation(name) == self.operation
    }
}

#[derive(Debug, Default)]
struct Counts {
    seen: BTreeMap<String, usize>,
    forwarded: BTreeMap<String, usize>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    client: reqwest::Client,
    rules: Mutex<Vec<FaultRule>>,
    counts: Mutex<Counts>,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct Proxy {
    url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream` (e.g. moto's
    /// `AWS_ENDPOINT_URL`).
    pub async fn start(upstream: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy on a loopback port");
        let url = format!(
            "http://{}",
            listener.local_addr().expect("the proxy's address")
        );
        let shared = Arc::new(Shared {
            upstream: upstream.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
            rules: Mutex::new(Vec::new()),
            counts: Mutex::new(Counts::default()),
        });
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(shared.clone());
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .await
                .expect("the proxy serves until it is dropped");
        });
        Self { url, shared, task }
    }

    /// The endpoint to give the SDK.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Adds a fault; the first matching rule decides.
    pub fn add(&self, rule: FaultRule) {
        lock(&self.shared.rules).push(rule);
    }

    /// Removes every fault: from now on everything passes through.
    pub fn clear(&self) {
        lock(&self.shared.rules).clear();
    }

    /// Requests received for `operation`.
    pub fn seen(&self, operation: &str) -> usize {
        sum(&lock(&self.shared.counts).seen, operation)
    }

    /// Requests for `operation` the upstream answered.
    pub fn forwarded(&self, operation: &str) -> usize {
        sum(&lock(&self.shared.counts).forwarded, operation)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn sum(counts: &BTreeMap<String, usize>, wanted: &str) -> usize {
    counts
        .iter()
        .filter(|(name, _)| name.as_str() == wanted || operation(name) == wanted)
        .map(|(_, n)| n)
        .sum()
}

/// `Service.Operation` -> `Operation`.
fn operation(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// The call's name: `X-Amz-Target`, else the query protocol's `Action` field.
fn call_name(headers: &HeaderMap, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.to_string();
    }
    String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
        .unwrap_or("unknown")
        .to_string()
}

/// Headers that describe one hop's connection, not the message.
const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(body) => body,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("proxy: body: {e}")),
    };
    let name = call_name(&parts.headers, &body);
    let call = {
        let mut counts = lock(&shared.counts);
        let n = counts.seen.entry(name.clone()).or_default();
        *n += 1;
        *n
    };
    let fault = lock(&shared.rules)
        .iter()
        .find(|r| r.matches(&name) && r.calls.includes(call))
        .map(|r| r.fault.clone());
    let delay = match fault {
        Some(Fault::Respond {
            status,
            content_type,
            body,
        }) => {
            return Response::builder()
                .status(status)
                .header("content-type", content_type)
                .body(Body::from(body))
                .unwrap_or_else(|e| plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()));
        }
        Some(Fault::DelayAnswer(delay)) => delay,
        None => Duration::ZERO,
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forward = shared
        .client
        .request(parts.method.clone(), format!("{}{path}", shared.upstream))
        .body(body);
    for (key, value) in &parts.headers {
        if !HOP_HEADERS.contains(&key.as_str()) {
            forward = forward.header(key, value);
        }
    }
    // In its own task, so the upstream acts even when the client stops waiting.
    let counted = shared.clone();
    let sent = tokio::spawn(async move {
        let answer = forward.send().await?;
        let status = answer.status();
        let headers = answer.headers().clone();
        let body = answer.bytes().await?;
        *lock(&counted.counts).forwarded.entry(name).or_default() += 1;
        Ok::<(StatusCode, HeaderMap, Bytes), reqwest::Error>((status, headers, body))
    });
    let answer = sent.await;
    tokio::time::sleep(delay).await;
    match answer {
        Ok(Ok((status, headers, body))) => {
            let mut response = Response::builder().status(status);
            for (key, value) in &headers {
                if !HOP_HEADERS.contains(&key.as_str()) {
                    response = response.header(key, value);
                }
            }
            response
                .body(Body::from(body))
                .unwrap_or_else(|e| plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
        }
        Ok(Err(e)) => plain(StatusCode::BAD_GATEWAY, format!("proxy: upstream: {e}")),
        Err(e) => plain(StatusCode::BAD_GATEWAY, format!("proxy: forward task: {e}")),
    }
}

fn plain(status: StatusCode, message: String) -> Response {
    let mut response = Response::new(Body::from(message));
    *response.status_mut() = status;
    response
}
