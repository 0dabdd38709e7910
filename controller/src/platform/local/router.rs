//! The local ALB: an in-process weighted reverse proxy with the ALB's semantics.
//!
//! Like linkerd's balancer, the routing is plain data ([`RoutingTable`]: listener rules
//! and each target group's healthy targets) published over a `tokio::sync::watch`; every
//! request reads the table as it is at that moment, so a weight or health change applies
//! to the next request, with no restart and no lock held across a request.
//!
//! Guarantees (ALB behaviour, per request, not per connection):
//! - Rules are tried by ascending priority; a rule matches when any of its path patterns
//!   matches the request path (`*` any run of characters, `?` one character,
//!   case-sensitive, query string excluded) and every other condition of the rule
//!   matches ([`condition_matches`]: host-header, http-header, http-request-method,
//!   query-string, source-ip, as the ALB compares them).
//! - A sticky rule answers with an `AWSALBTG` cookie naming the group chosen; a request
//!   carrying it goes to that group while the rule gives it weight and it has healthy
//!   targets, else it is drawn again.
//! - The rule's target group is chosen at random in proportion to its weights; a group
//!   with weight 0 is never chosen. Within the group, healthy targets take turns.
//! - The chosen group has no healthy target, or every weight is 0: 503. The target
//!   refuses the connection or breaks the exchange: 502. No answer within the idle
//!   timeout: 504. No rule matches: 404, except the router's own `GET /metrics`
//!   (Prometheus text), which is the listener's default action.
//! - Every answer for a matched rule carries [`TARGET_GROUP_HEADER`] naming the target
//!   group chosen, the router's own errors included; [`RouterStats`] counts each answer
//!   once, by target group.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::sync::watch;

use super::stats::{RouterStats, escape};
use crate::document::{ConditionField, RuleCondition};

/// The response header naming the target group that served (or failed) a request.
pub const TARGET_GROUP_HEADER: &str = "x-tugboat-target-group";

/// A listener rule: its priority, path patterns and weighted target groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Who owns the rule (the workload), for the live view and errors.
    pub name: String,
    pub priority: u32,
    pub path_patterns: Vec<String>,
    /// (target group, weight), in the order the rule lists them.
    pub forward: Vec<(String, u32)>,
}

/// Everything the router routes by. Published whole over the watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoutingTable {
    /// By owner name; matched by priority.
    pub rules: BTreeMap<String, Rule>,
    /// Healthy targets per target group.
    pub targets: BTreeMap<String, Vec<SocketAddr>>,
    /// By rule name: the rule's conditions beyond the path and its stickiness.
    pub extras: BTreeMap<String, RuleExtras>,
}

/// A rule's conditions beside its paths (all must match) and its forward stickiness.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuleExtras {
    pub conditions: Vec<RuleCondition>,
    /// How long a client keeps the target group it got (the `AWSALBTG` cookie).
    pub stickiness: Option<Duration>,
}

/// What a rule's conditions look at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestFacts<'a> {
    pub path: &'a str,
    pub method: &'a str,
    /// The `Host` header without its port.
    pub host: Option<&'a str>,
    pub headers: &'a hyper::HeaderMap,
    pub query: Option<&'a str>,
    /// The client's address (as the ALB's source-ip, not `X-Forwarded-For`).
    pub source: Option<IpAddr>,
}

impl RoutingTable {
    /// The rule with the lowest priority number whose patterns match `path` (a rule
    /// with other conditions needs a request: see [`RoutingTable::route_request`]).
    pub fn route(&self, path: &str) -> Option<&Rule> {
        let headers = hyper::HeaderMap::new();
        self.route_request(&RequestFacts {
            path,
            method: "GET",
            host: None,
            headers: &headers,
            query: None,
            source: None,
        })
    }

    /// The rule with the lowest priority number whose patterns match the request's path
    /// and whose every other condition matches the request.
    pub fn route_request(&self, facts: &RequestFacts<'_>) -> Option<&Rule> {
        self.rules
            .values()
            .filter(|r| r.path_patterns.iter().any(|p| path_matches(p, facts.path)))
            .filter(|r| {
                self.extras
                    .get(&r.name)
                    .is_none_or(|x| x.conditions.iter().all(|c| condition_matches(c, facts)))
            })
            .min_by_key(|r| r.priority)
    }
}

/// ALB's matching of one condition: host names, header values and query strings
/// case-insensitively with `*` and `?`; methods exactly; the source address in a CIDR.
pub fn condition_matches(condition: &RuleCondition, facts: &RequestFacts<'_>) -> bool {
    let any_glob = |patterns: &[String], value: &str| {
        let value = value.to_ascii_lowercase();
        patterns
            .iter()
            .any(|p| path_matches(&p.to_ascii_lowercase(), &value))
    };
    match condition.field {
        ConditionField::HostHeader => match (&condition.host_header_config, facts.host) {
            (Some(c), Some(host)) => any_glob(&c.values, host),
            _ => false,
        },
        ConditionField::HttpHeader => condition.http_header_config.as_ref().is_some_and(|c| {
            facts
                .headers
                .get_all(c.http_header_name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|v| any_glob(&c.values, v))
        }),
        ConditionField::HttpRequestMethod => condition
            .http_request_method_config
            .as_ref()
            .is_some_and(|c| c.values.iter().any(|m| m == facts.method)),
        ConditionField::QueryString => condition.query_string_config.as_ref().is_some_and(|c| {
            let pairs: Vec<(String, String)> = facts
                .query
                .unwrap_or_default()
                .split('&')
                .filter(|kv| !kv.is_empty())
                .map(|kv| match kv.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (kv.to_string(), String::new()),
                })
                .collect();
            c.values.iter().any(|want| {
                pairs.iter().any(|(k, v)| {
                    want.key.as_ref().is_none_or(|key| {
                        path_matches(&key.to_ascii_lowercase(), &k.to_ascii_lowercase())
                    }) && path_matches(&want.value.to_ascii_lowercase(), &v.to_ascii_lowercase())
                })
            })
        }),
        ConditionField::SourceIp => match (&condition.source_ip_config, facts.source) {
            (Some(c), Some(ip)) => c.values.iter().any(|cidr| in_cidr(cidr, ip)),
            _ => false,
        },
    }
}

/// Whether `ip` lies in `cidr` (`10.0.0.0/8`, `2001:db8::/32`); a malformed block holds
/// nothing (validation refuses it).
fn in_cidr(cidr: &str, ip: IpAddr) -> bool {
    let Some((net, prefix)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(prefix)) = (net.parse::<IpAddr>(), prefix.parse::<u32>()) else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            u32::from(n) & mask == u32::from(a) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(a)) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            u128::from(n) & mask == u128::from(a) & mask
        }
        _ => false,
    }
}

/// The cookie the ALB keeps a sticky client's target group in.
pub const STICKINESS_COOKIE: &str = "AWSALBTG";

/// The target group a sticky client asked for, if the rule still forwards to it with
/// weight and it has healthy targets (locally stickiness never outlives a group's
/// weight: an aborted canary at 0 gets no more sticky clients).
fn sticky_group<'a>(
    headers: &hyper::HeaderMap,
    rule: &'a Rule,
    table: &RoutingTable,
) -> Option<&'a str> {
    let wanted = headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == STICKINESS_COOKIE)
        .map(|(_, v)| v)?;
    rule.forward
        .iter()
        .find(|(g, w)| g == wanted && *w > 0)
        .filter(|(g, _)| table.targets.get(g).is_some_and(|t| !t.is_empty()))
        .map(|(g, _)| g.as_str())
}

/// ALB path-pattern matching: `*` matches any run of characters (including none), `?`
/// exactly one, everything else itself, case-sensitively, over the whole path.
///
/// ```text
/// "/api/*" matches "/api/predict" and "/api/", not "/api" or "/API/x"
/// "/ml/v?/x" matches "/ml/v1/x", not "/ml/v10/x"
/// ```
pub fn path_matches(pattern: &str, path: &str) -> bool {
    // Every request tries every rule's patterns, so the common case (both ASCII, as a
    // request path always is on the wire) compares bytes without allocating; `?` must
    // match one character, so anything else goes through chars.
    if pattern.is_ascii() && path.is_ascii() {
        glob(pattern.as_bytes(), path.as_bytes())
    } else {
        glob(
            &pattern.chars().collect::<Vec<_>>(),
            &path.chars().collect::<Vec<_>>(),
        )
    }
}

/// Iterative glob with one backtrack point (the last `*`): linear in practice.
fn glob<T: Copy + PartialEq + From<u8>>(p: &[T], s: &[T]) -> bool {
    let (any, one) = (T::from(b'*'), T::from(b'?'));
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == one || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == any {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == any)
}

/// The target group a draw `r` (uniform in `0..u64::MAX`) picks from `forward`, in
/// proportion to the weights; `None` when every weight is 0.
///
/// ```text
/// [(blue, 80), (green, 20)]: r * 100 / 2^64 in 0..80 -> blue, 80..100 -> green
/// ```
pub fn choose(forward: &[(String, u32)], r: u64) -> Option<&str> {
    let total: u64 = forward.iter().map(|(_, w)| u64::from(*w)).sum();
    if total == 0 {
        return None;
    }
    let point = ((u128::from(r) * u128::from(total)) >> 64) as u64;
    let mut acc = 0;
    for (group, w) in forward {
        acc += u64::from(*w);
        if point < acc {
            return Some(group);
        }
    }
    None
}

/// A splitmix64 step: a fast, well-mixed draw per request without a lock (the choice
/// needs no cryptographic strength, only an even spread).
fn next_draw(state: &AtomicU64) -> u64 {
    let mut z = state
        .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Why the router could not start.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error(
        "the local router cannot listen on {addr}: the address is in use (another `tugboat \
         up`, or another server: `ss -ltnp 'sport = :{port}'` shows which); stop it or set \
         spec.platform.local.listen to a free address"
    )]
    AddressInUse {
        addr: SocketAddr,
        port: u16,
        #[source]
        source: std::io::Error,
    },
    #[error("the local router cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The router's settings.
#[derive(Debug, Clone, Copy)]
pub struct RouterConfig {
    /// Longest wait for a target's response headers before answering 504 (the ALB's idle
    /// timeout defaults to 60 s).
    pub idle_timeout: Duration,
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
        }
    }
}

type Body = BoxBody<Bytes, hyper::Error>;

/// What the router's handlers share.
#[derive(Debug)]
struct Shared {
    table: watch::Receiver<Arc<RoutingTable>>,
    stats: RouterStats,
    client: Client<HttpConnector, Incoming>,
    draws: AtomicU64,
    /// Round-robin position within a target group.
    turns: AtomicUsize,
    config: RouterConfig,
}

/// The sending side of the router: what the platform changes.
#[derive(Debug, Clone)]
pub struct RouterHandle {
    table: watch::Sender<Arc<RoutingTable>>,
    stats: RouterStats,
    addr: SocketAddr,
}

impl RouterHandle {
    /// Where the router listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    /// The table in force now.
    pub fn table(&self) -> Arc<RoutingTable> {
        self.table.borrow().clone()
    }

    /// Changes the table; the next request routes by the result.
    pub fn update(&self, change: impl FnOnce(&mut RoutingTable)) {
        self.table.send_modify(|t| change(Arc::make_mut(t)));
    }
}

/// A bound router, not yet serving.
#[derive(Debug)]
pub struct Router {
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    handle: RouterHandle,
}

impl Router {
    /// Binds `addr` (port 0: any free port). A port in use is [`RouterError::AddressInUse`].
    pub async fn bind(addr: SocketAddr, config: RouterConfig) -> Result<Self, RouterError> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AddrInUse => RouterError::AddressInUse {
                    addr,
                    port: addr.port(),
                    source,
                },
                _ => RouterError::Bind { addr, source },
            })?;
        let bound = listener
            .local_addr()
            .map_err(|source| RouterError::Bind { addr, source })?;
        let (tx, rx) = watch::channel(Arc::new(RoutingTable::default()));
        let stats = RouterStats::new();
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0x5EED);
        Ok(Self {
            listener,
            shared: Arc::new(Shared {
                table: rx,
                stats: stats.clone(),
                client,
                draws: AtomicU64::new(seed),
                turns: AtomicUsize::new(0),
                config,
            }),
            handle: RouterHandle {
                table: tx,
                stats,
                addr: bound,
            },
        })
    }

    pub fn handle(&self) -> RouterHandle {
        self.handle.clone()
    }

    /// Accepts connections until `shutdown` resolves; connections in flight are dropped
    /// with the task (the controller is going away with its children).
    pub async fn serve(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                _ = &mut shutdown => return,
                accepted = self.listener.accept() => accepted,
            };
            let (stream, peer) = match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // EMFILE and friends: wait a little rather than spin.
                    tracing::warn!(%error, "the local router could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let shared = self.shared.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let shared = shared.clone();
                    async move { Ok::<_, Infallible>(handle(&shared, req, peer).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Body> {
    let mut response = Response::new(
        Full::new(Bytes::from(body.into()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn with_group(mut response: Response<Body>, group: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(group) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(TARGET_GROUP_HEADER), value);
    }
    response
}

/// Headers that belong to one hop and must not be forwarded (RFC 9110 7.6.1).
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
];

async fn handle(shared: &Shared, mut req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let table = shared.table.borrow().clone();
    // The choice borrows the request only while it is made (no copies of the path or
    // host per request); what it yields borrows the table, which outlives the request.
    let choice = {
        let host = req
            .headers()
            .get(hyper::header::HOST)
            .and_then(|h| h.to_str().ok())
            .map(|h| h.rsplit_once(':').map_or(h, |(name, _)| name));
        let facts = RequestFacts {
            path: req.uri().path(),
            method: req.method().as_str(),
            host,
            headers: req.headers(),
            query: req.uri().query(),
            source: Some(peer.ip()),
        };
        table.route_request(&facts).map(|rule| {
            let stickiness = table.extras.get(&rule.name).and_then(|x| x.stickiness);
            let sticky = stickiness.and_then(|_| sticky_group(req.headers(), rule, &table));
            let group = sticky.or_else(|| choose(&rule.forward, next_draw(&shared.draws)));
            (rule, stickiness, group)
        })
    };
    let Some((rule, stickiness, group)) = choice else {
        return default_action(shared, &table, &req);
    };
    let Some(group) = group else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("rule {} has no target group with weight\n", rule.name),
        );
    };
    let targets = table.targets.get(group).map(Vec::as_slice).unwrap_or(&[]);
    if targets.is_empty() {
        shared.stats.record_elb(group, 503, Instant::now());
        return with_group(
            text(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("target group {group} has no healthy target\n"),
            ),
            group,
        );
    }
    let target = targets[shared.turns.fetch_add(1, Ordering::Relaxed) % targets.len()];
    // The client pools by scheme and authority, so the URI becomes absolute; the path
    // and query are shared with the request's, not copied.
    let mut uri = std::mem::take(req.uri_mut()).into_parts();
    uri.scheme = Some(hyper::http::uri::Scheme::HTTP);
    uri.authority = hyper::http::uri::Authority::try_from(target.to_string()).ok();
    if uri.path_and_query.is_none() {
        uri.path_and_query = Some(hyper::http::uri::PathAndQuery::from_static("/"));
    }
    let Ok(uri) = hyper::Uri::from_parts(uri) else {
        return with_group(text(StatusCode::BAD_REQUEST, "bad request path\n"), group);
    };
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
    let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(earlier) => format!("{earlier}, {}", peer.ip()),
        None => peer.ip().to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));

    let start = Instant::now();
    let answer = tokio::time::timeout(shared.config.idle_timeout, shared.client.request(req)).await;
    let now = Instant::now();
    match answer {
        Ok(Ok(response)) => {
            shared
                .stats
                .record_target(group, response.status().as_u16(), now - start, now);
            let (mut parts, body) = response.into_parts();
            for name in HOP_BY_HOP {
                parts.headers.remove(name);
            }
            if let Some(duration) = stickiness
                && let Ok(cookie) = HeaderValue::from_str(&format!(
                    "{STICKINESS_COOKIE}={group}; Max-Age={}; Path=/",
                    duration.as_secs()
                ))
            {
                parts.headers.append(hyper::header::SET_COOKIE, cookie);
            }
            with_group(Response::from_parts(parts, body.boxed()), group)
        }
        Ok(Err(error)) => {
            shared.stats.record_elb(group, 502, now);
            tracing::debug!(%target, %group, %error, "bad upstream");
            with_group(
                text(
                    StatusCode::BAD_GATEWAY,
                    format!("target {target} of {group} did not answer properly\n"),
                ),
                group,
            )
        }
        Err(_) => {
            shared.stats.record_elb(group, 504, now);
            with_group(
                text(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("target {target} of {group} did not answer in time\n"),
                ),
                group,
            )
        }
    }
}

/// No rule matched: the router's own `/metrics`, else 404.
fn default_action(
    shared: &Shared,
    table: &RoutingTable,
    req: &Request<Incoming>,
) -> Response<Body> {
    if req.uri().path() == "/metrics" && req.method() == hyper::Method::GET {
        let mut response = text(StatusCode::OK, metrics(&shared.stats, table));
        response.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        return response;
    }
    text(
        StatusCode::NOT_FOUND,
        format!("no listener rule matches {}\n", req.uri().path()),
    )
}

/// The counters plus what only the table knows: weights and healthy targets.
fn metrics(stats: &RouterStats, table: &RoutingTable) -> String {
    use std::fmt::Write as _;
    let mut out = stats.prometheus();
    let _ = writeln!(
        out,
        "# HELP tugboat_router_weight Weight of a target group in a listener rule.\n# TYPE \
         tugboat_router_weight gauge"
    );
    for rule in table.rules.values() {
        for (group, weight) in &rule.forward {
            let _ = writeln!(
                out,
                "tugboat_router_weight{{rule=\"{}\",target_group=\"{}\"}} {weight}",
                escape(&rule.name),
                escape(group)
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP tugboat_router_healthy_targets Healthy targets in a target group.\n# TYPE \
         tugboat_router_healthy_targets gauge"
    );
    for (group, targets) in &table.targets {
        let _ = writeln!(
            out,
            "tugboat_router_healthy_targets{{target_group=\"{}\"}} {}",
            escape(group),
            targets.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_patterns_match_as_the_alb_does() {
        for (pattern, path, expected) in [
            ("/api/*", "/api/predict", true),
            ("/api/*", "/api/", true),
            ("/api/*", "/api", false),
            ("/api/*", "/API/predict", false),
            ("/ml/v?/x", "/ml/v1/x", true),
            ("/ml/v?/x", "/ml/v10/x", false),
            ("*", "/anything", true),
            ("/a*b*c", "/axxbyyc", true),
            ("/a*b*c", "/axxbyy", false),
            ("/exact", "/exact", true),
            ("/exact", "/exactly", false),
            ("/caf?/x", "/café/x", true),
            ("/caf?/x", "/cafe/x", true),
            ("/ümlaut/*", "/ümlaut/a", true),
        ] {
            assert_eq!(path_matches(pattern, path), expected, "{pattern} ~ {path}");
        }
    }

    #[test]
    fn the_lowest_priority_number_wins() {
        let rule = |name: &str, priority, pattern: &str| Rule {
            name: name.into(),
            priority,
            path_patterns: vec![pattern.into()],
            forward: vec![(name.into(), 1)],
        };
        let table = RoutingTable {
            rules: BTreeMap::from([
                ("catch".into(), rule("catch", 50, "/*")),
                ("api".into(), rule("api", 10, "/api/*")),
            ]),
            targets: BTreeMap::new(),
            extras: BTreeMap::new(),
        };
        assert_eq!(table.route("/api/x").map(|r| r.name.as_str()), Some("api"));
        assert_eq!(table.route("/ml/x").map(|r| r.name.as_str()), Some("catch"));
    }

    #[test]
    fn cidr_blocks_and_host_names_match_as_the_alb_compares_them() {
        let v4: IpAddr = "10.1.2.3".parse().expect("ip");
        assert!(in_cidr("10.0.0.0/8", v4));
        assert!(!in_cidr("10.0.0.0/16", v4));
        assert!(in_cidr("0.0.0.0/0", v4));
        assert!(in_cidr("2001:db8::/32", "2001:db8::1".parse().expect("ip")));
        assert!(!in_cidr("2001:db8::/32", v4));
        let condition: RuleCondition = serde_json::from_value(serde_json::json!(
            {"field": "host-header", "hostHeaderConfig": {"values": ["*.example.com"]}}
        ))
        .expect("condition");
        let headers = hyper::HeaderMap::new();
        let facts = |host| RequestFacts {
            path: "/",
            method: "GET",
            host: Some(host),
            headers: &headers,
            query: None,
            source: None,
        };
        assert!(condition_matches(&condition, &facts("API.Example.com")));
        assert!(!condition_matches(&condition, &facts("example.org")));
    }

    #[test]
    fn choice_is_proportional_to_the_weights_and_never_picks_weight_zero() {
        let forward = vec![("blue".to_string(), 80), ("green".to_string(), 20)];
        let at = |fraction: f64| (fraction * u64::MAX as f64) as u64;
        assert_eq!(choose(&forward, 0), Some("blue"));
        assert_eq!(choose(&forward, at(0.79)), Some("blue"));
        assert_eq!(choose(&forward, at(0.81)), Some("green"));
        assert_eq!(choose(&forward, u64::MAX), Some("green"));
        let zero = vec![("blue".to_string(), 100), ("green".to_string(), 0)];
        assert_eq!(choose(&zero, u64::MAX), Some("blue"));
        let none = vec![("blue".to_string(), 0), ("green".to_string(), 0)];
        assert_eq!(choose(&none, 1), None);
        let state = AtomicU64::new(7);
        let greens = (0..10_000)
            .filter(|_| choose(&forward, next_draw(&state)) == Some("green"))
            .count();
        assert!((1_800..2_200).contains(&greens), "{greens} of 10000");
    }
}
