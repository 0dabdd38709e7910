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
//! - Faults apply to chosen calls of an operation ([`Calls`]), or to a share of every
//!   call ([`Calls::Share`] with operation `*`, chosen by a seeded generator). A fault
//!   answers in the protocol the call speaks ([`Fault::Throttle`]: ECS/SSM's JSON
//!   `ThrottlingException`, ELB's XML `Throttling`, S3's `SlowDown` 503;
//!   [`Fault::ServerError`]: 500/503 with the protocol's error body), or breaks the
//!   connection with a TCP reset before forwarding ([`Fault::Reset`]) or after the
//!   upstream acted ([`Fault::LostAnswer`]: AWS did it, the answer never came).
//! - [`Proxy::calls`] keeps every request received (signing service, region, operation,
//!   path and body), so a test can check each real call against an IAM policy.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Request, StatusCode};
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
    /// Do not forward; the protocol's throttling error (JSON `ThrottlingException` 400,
    /// ELB `Throttling` 400, S3 `SlowDown` 503).
    Throttle,
    /// Do not forward; HTTP 429 with the protocol's too-many-requests error.
    TooManyRequests,
    /// Do not forward; this 5xx with the protocol's error body.
    ServerError(u16),
    /// Do not forward; reset the connection (TCP RST) instead of answering.
    Reset,
    /// Forward, let the upstream act, then reset the connection instead of answering.
    LostAnswer,
    /// One of these, chosen by the proxy's generator per call.
    OneOf(Vec<Fault>),
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
    /// This percentage of them, chosen by the proxy's seeded generator.
    Share(u32),
}

impl Calls {
    fn includes(self, call: usize, roll: u32) -> bool {
        match self {
            Calls::First(n) => call <= n,
            Calls::EveryNth(n) => n > 0 && call.is_multiple_of(n),
            Calls::All => true,
            Calls::Share(percent) => roll % 100 < percent,
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

    /// A share of every call: `FaultRule::any(Calls::Share(30), Fault::OneOf(..))`.
    pub fn any(calls: Calls, fault: Fault) -> Self {
        Self::new("*", calls, fault)
    }

    fn matches(&self, name: &str) -> bool {
        self.operation == "*" || name == self.operation || operation(name) == self.operation
    }
}

/// One request the proxy received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The SigV4 signing name: `ecs`, `ssm`, `elasticloadbalancing`, `s3`.
    pub service: String,
    pub region: String,
    /// `X-Amz-Target`, ELB's `Action`, or the S3 operation the method and path make.
    pub name: String,
    pub method: String,
    /// Path and query.
    pub path: String,
    pub body: String,
    /// The fault injected into it, if any (`Throttle`, `Reset`, ...).
    pub fault: Option<&'static str>,
}

#[derive(Debug, Default)]
struct Counts {
    seen: BTreeMap<String, usize>,
    forwarded: BTreeMap<String, usize>,
    calls: Vec<Call>,
    /// xorshift state: the same seed gives the same sequence of rolls.
    rng: u64,
}

impl Counts {
    fn roll(&mut self) -> u32 {
        let mut x = self.rng.max(1);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        (x >> 32) as u32
    }
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
        Self::start_seeded(upstream, 0x5eed_7ab0).await
    }

    /// [`Proxy::start`] with the seed of the generator that picks shares and faults.
    pub async fn start_seeded(upstream: &str, seed: u64) -> Self {
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
            counts: Mutex::new(Counts {
                rng: seed,
                ..Counts::default()
            }),
        });
        let accepting = shared.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                // Closing with a zero linger sends RST: a reset, not a clean close.
                let _ = stream.set_zero_linger();
                let shared = accepting.clone();
                tokio::spawn(async move {
                    let reset = Arc::new(tokio::sync::Notify::new());
                    let on_reset = reset.clone();
                    let service = hyper::service::service_fn(
                        move |request: Request<hyper::body::Incoming>| {
                            let shared = shared.clone();
                            let reset = reset.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(
                                    handle(shared, request.map(Body::new), reset).await,
                                )
                            }
                        },
                    );
                    let connection = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                    // A reset drops the connection (and its socket) mid-exchange.
                    tokio::select! {
                        _ = connection => {}
                        () = on_reset.notified() => {}
                    }
                });
            }
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

    /// Every request received so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        lock(&self.shared.counts).calls.clone()
    }

    /// How many calls got each fault.
    pub fn injected(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for call in &lock(&self.shared.counts).calls {
            if let Some(fault) = call.fault {
                *out.entry(fault).or_default() += 1;
            }
        }
        out
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

/// The call's name: `X-Amz-Target`, else the query protocol's `Action` field, else the
/// S3 operation of a path-style request.
fn call_name(headers: &HeaderMap, method: &Method, path: &str, body: &[u8]) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.to_string();
    }
    if let Some(action) = String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        return action.to_string();
    }
    if signing(headers).0 == "s3" {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        let has_key = path.trim_start_matches('/').contains('/');
        let op = match (method.as_str(), has_key) {
            ("GET", true) => "GetObject",
            ("HEAD", true) => "HeadObject",
            ("PUT", true) => "PutObject",
            ("DELETE", true) => "DeleteObject",
            ("GET", false) if query.contains("list-type=2") => "ListObjectsV2",
            ("GET", false) => "ListObjects",
            ("PUT", false) => "CreateBucket",
            ("HEAD", false) => "HeadBucket",
            _ => "unknown",
        };
        return format!("s3.{op}");
    }
    "unknown".to_string()
}

/// (service, region) from the SigV4 credential scope of `Authorization`.
fn signing(headers: &HeaderMap) -> (String, String) {
    let scope = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .unwrap_or_default();
    // <key>/<date>/<region>/<service>/aws4_request
    let mut parts = scope.split('/').skip(2);
    let region = parts.next().unwrap_or_default().to_string();
    let service = parts.next().unwrap_or_default().to_string();
    (service, region)
}

#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    Json,
    Query,
    S3,
}

fn protocol(headers: &HeaderMap, name: &str) -> Protocol {
    if headers.contains_key("x-amz-target") {
        Protocol::Json
    } else if name.starts_with("s3.") {
        Protocol::S3
    } else {
        Protocol::Query
    }
}

/// The error answer `code` with `status` in the call's protocol.
fn error_answer(
    protocol: Protocol,
    status: u16,
    code: &str,
    message: &str,
    head: bool,
) -> Response {
    let (content_type, body) = match protocol {
        Protocol::Json => (
            "application/x-amz-json-1.1",
            format!(r#"{{"__type":"{code}","message":"{message}"}}"#),
        ),
        Protocol::Query => (
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>",
                if status < 500 { "Sender" } else { "Receiver" }
            ),
        ),
        Protocol::S3 => (
            "application/xml",
            format!(
                "<Error><Code>{code}</Code><Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>"
            ),
        ),
    };
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .header("x-amzn-errortype", code)
        .body(if head {
            Body::empty()
        } else {
            Body::from(body)
        })
        .unwrap_or_else(|e| plain(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn fault_name(fault: &Fault) -> &'static str {
    match fault {
        Fault::DelayAnswer(_) => "SlowAnswer",
        Fault::Respond { .. } => "Respond",
        Fault::Throttle => "Throttle",
        Fault::TooManyRequests => "TooManyRequests",
        Fault::ServerError(500) => "Http500",
        Fault::ServerError(_) => "Http503",
        Fault::Reset => "Reset",
        Fault::LostAnswer => "LostAnswer",
        Fault::OneOf(_) => "OneOf",
    }
}

/// Headers that describe one hop's connection, not the message.
const HOP_HEADERS: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
];

async fn handle(
    shared: Arc<Shared>,
    request: Request<Body>,
    reset: Arc<tokio::sync::Notify>,
) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, 64 * 1024 * 1024).await {
        Ok(body) => body,
        Err(e) => return plain(StatusCode::BAD_REQUEST, format!("proxy: body: {e}")),
    };
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .to_string();
    let name = call_name(&parts.headers, &parts.method, &path, &body);
    let (service, region) = signing(&parts.headers);
    let fault = {
        let mut counts = lock(&shared.counts);
        let n = counts.seen.entry(name.clone()).or_default();
        *n += 1;
        let call = *n;
        let roll = counts.roll();
        let mut fault = lock(&shared.rules)
            .iter()
            .find(|r| r.matches(&name) && r.calls.includes(call, roll))
            .map(|r| r.fault.clone());
        while let Some(Fault::OneOf(choices)) = &fault {
            let pick = counts.roll() as usize % choices.len().max(1);
            fault = choices.get(pick).cloned();
        }
        counts.calls.push(Call {
            service,
            region,
            name: name.clone(),
            method: parts.method.to_string(),
            path: path.clone(),
            body: String::from_utf8_lossy(&body).into_owned(),
            fault: fault.as_ref().map(fault_name),
        });
        fault
    };
    let protocol = protocol(&parts.headers, &name);
    let head = parts.method == Method::HEAD;
    let mut lose_answer = false;
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
        Some(Fault::Throttle) => {
            return match protocol {
                Protocol::Json => {
                    error_answer(protocol, 400, "ThrottlingException", "Rate exceeded", head)
                }
                Protocol::Query => error_answer(protocol, 400, "Throttling", "Rate exceeded", head),
                Protocol::S3 => error_answer(
                    protocol,
                    503,
                    "SlowDown",
                    "Please reduce your request rate.",
                    head,
                ),
            };
        }
        Some(Fault::TooManyRequests) => {
            let code = match protocol {
                Protocol::Json => "TooManyRequestsException",
                Protocol::Query => "Throttling",
                Protocol::S3 => "SlowDown",
            };
            return error_answer(protocol, 429, code, "Too many requests", head);
        }
        Some(Fault::ServerError(status)) => {
            let code = match (protocol, status) {
                (Protocol::Json, 500) => "InternalFailure",
                (Protocol::S3, 500) => "InternalError",
                (_, 500) => "InternalFailure",
                _ => "ServiceUnavailable",
            };
            return error_answer(protocol, status, code, "injected by the fault proxy", head);
        }
        Some(Fault::Reset) => {
            reset.notify_one();
            return std::future::pending().await;
        }
        Some(Fault::LostAnswer) => {
            lose_answer = true;
            Duration::ZERO
        }
        Some(Fault::DelayAnswer(delay)) => delay,
        Some(Fault::OneOf(_)) | None => Duration::ZERO,
    };
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
    if lose_answer {
        reset.notify_one();
        return std::future::pending().await;
    }
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
