//! Leader election against the emulator, with `tugboat run` replicas as processes: the
//! lease in an S3 bucket (moto enforces `If-Match` / `If-None-Match`), the application a
//! canary on moto's ECS and ELB (the `ops` world; the test plays ECS).
//!
//! Each replica sends its AWS calls through a recording proxy of its own, so the test
//! sees, per process, every lease write (and the holder it names) and every mutating
//! call. From the merged timeline it checks that no replica made a mutating call while
//! another held the lease (or after its own lease lapsed): zero mutating calls by a
//! non-leader. A replica is killed with SIGKILL, never asked to stop.

mod common;
mod ops;

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use common::moto;
use ops::{App, Kill, phase, step};

/// Short durations, so a takeover takes seconds.
const LEASE: Duration = Duration::from_millis(2000);
const RENEW_DEADLINE: Duration = Duration::from_millis(1400);
const RETRY: Duration = Duration::from_millis(300);

/// One call a replica made, as its proxy saw it.
#[derive(Debug, Clone)]
struct Call {
    /// When the proxy received it.
    at: Instant,
    /// When the upstream's answer came back.
    answered: Instant,
    name: String,
    status: u16,
    /// For a write of the lease object: the holder the record names ("" released).
    lease_holder: Option<String>,
}

#[derive(Debug)]
struct Recorder {
    upstream: String,
    lease_path: String,
    client: reqwest::Client,
    calls: Mutex<Vec<Call>>,
    /// While set, every request for the lease object is answered 503 (the replica is cut
    /// off from its lease, not from ECS and ELB).
    cut: std::sync::atomic::AtomicBool,
}

/// A proxy in front of moto for one replica, recording what it forwards.
struct Proxy {
    url: String,
    recorder: Arc<Recorder>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(lease_path: &str) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let recorder = Arc::new(Recorder {
            upstream: moto::endpoint().trim_end_matches('/').to_string(),
            lease_path: lease_path.to_string(),
            client: reqwest::Client::new(),
            calls: Mutex::new(Vec::new()),
            cut: Default::default(),
        });
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(recorder.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            url,
            recorder,
            task,
        }
    }

    fn calls(&self) -> Vec<Call> {
        self.recorder.calls.lock().expect("calls").clone()
    }
}

/// The call's name: `X-Amz-Target`'s operation, the query protocol's `Action`, or for
/// S3 (REST) `s3:METHOD` plus `:lease` for the lease object.
fn call_name(
    method: &str,
    path: &str,
    headers: &axum::http::HeaderMap,
    body: &[u8],
    lease_path: &str,
) -> String {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    if let Some(action) = String::from_utf8_lossy(body)
        .split('&')
        .find_map(|pair| pair.strip_prefix("Action="))
    {
        return action.to_string();
    }
    if path == lease_path {
        format!("s3:{method}:lease")
    } else {
        format!("s3:{method}")
    }
}

async fn forward(State(recorder): State<Arc<Recorder>>, request: Request) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let name = call_name(
        parts.method.as_str(),
        &path,
        &parts.headers,
        &body,
        &recorder.lease_path,
    );
    let lease_holder = (name == "s3:PUT:lease")
        .then(|| {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["holder"].as_str().map(str::to_string))
        })
        .flatten();
    if name.ends_with(":lease") && recorder.cut.load(std::sync::atomic::Ordering::SeqCst) {
        return Response::builder()
            .status(503)
            .header("content-type", "application/xml")
            .body(Body::from(
                "<Error><Code>SlowDown</Code><Message>cut off</Message></Error>",
            ))
            .expect("response");
    }
    let target = format!(
        "{}{}",
        recorder.upstream,
        parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
    );
    let mut out = recorder
        .client
        .request(parts.method.clone(), target)
        .body(body);
    for (key, value) in &parts.headers {
        if !["host", "content-length", "connection", "transfer-encoding"].contains(&key.as_str()) {
            out = out.header(key, value);
        }
    }
    let (status, headers, bytes) = match out.send().await {
        Ok(answer) => {
            let status = answer.status();
            let headers = answer.headers().clone();
            (status, headers, answer.bytes().await.unwrap_or_default())
        }
        Err(_) => (
            axum::http::StatusCode::BAD_GATEWAY,
            Default::default(),
            Default::default(),
        ),
    };
    recorder.calls.lock().expect("calls").push(Call {
        at,
        answered: Instant::now(),
        name,
        status: status.as_u16(),
        lease_holder,
    });
    let mut response = Response::builder().status(status);
    for (key, value) in &headers {
        if !["content-length", "connection", "transfer-encoding"].contains(&key.as_str()) {
            response = response.header(key, value);
        }
    }
    response.body(Body::from(bytes)).expect("response")
}

/// Calls that change AWS (the lease's own writes aside).
fn is_mutating(name: &str) -> bool {
    [
        "RegisterTaskDefinition",
        "DeregisterTaskDefinition",
        "CreateService",
        "UpdateService",
        "DeleteService",
        "TagResource",
        "CreateRule",
        "ModifyRule",
        "DeleteRule",
        "SetRulePriorities",
        "AddTags",
        "RemoveTags",
        "ModifyTargetGroupAttributes",
        "PutParameter",
        "DeleteParameter",
        "s3:PUT",
        "s3:DELETE",
    ]
    .contains(&name)
}

/// One replica: the process, its proxy, its HTTP endpoint.
struct Replica {
    id: String,
    process: Option<Kill>,
    proxy: Proxy,
    http: SocketAddr,
}

impl Replica {
    async fn start(app: &App, lease_uri: &str, lease_path: &str, id: &str) -> Self {
        let proxy = Proxy::start(lease_path).await;
        let http = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("addr")
        };
        let child = ops::tugboat()
            .env("AWS_ENDPOINT_URL", &proxy.url)
            .args([
                "run",
                "--poll",
                "200ms",
                "--resync",
                "2s",
                "--leader-election",
            ])
            .args(["--lease", lease_uri, "--holder-id", id])
            .arg(format!("--lease-duration={}ms", LEASE.as_millis()))
            .arg(format!("--renew-deadline={}ms", RENEW_DEADLINE.as_millis()))
            .arg(format!("--retry-period={}ms", RETRY.as_millis()))
            .arg(format!("--http-addr={http}"))
            .arg("--source")
            .arg(format!("file://{}", app.manifest.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("tugboat starts");
        Self {
            id: id.to_string(),
            process: Some(Kill(child)),
            proxy,
            http,
        }
    }

    fn sigkill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.0.kill().expect("SIGKILL");
            process.0.wait().expect("reaped");
        }
    }

    async fn status(&self) -> Option<serde_json::Value> {
        reqwest::Client::new()
            .get(format!("http://{}/status", self.http))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }
}

/// The lease's holder as stored in S3 ("" when released), if there is a lease.
async fn holder(bucket: &str) -> Option<String> {
    let config = common::emulator_config().await;
    let object = tugboat::aws::s3(&config)
        .get_object()
        .bucket(bucket)
        .key("lease.json")
        .send()
        .await
        .ok()?;
    let bytes = object.body.collect().await.ok()?.into_bytes();
    let record: tugboat::lease::LeaseRecord = serde_json::from_slice(&bytes).ok()?;
    Some(record.holder)
}

/// Every mutating call, from every replica, made while it did not hold the lease: the
/// timeline of successful lease writes (by the replica's proxy) says who held it; a
/// replica holds it from a write naming it until another replica's write (or its own
/// release), and for at most the lease duration after its last write was sent.
fn calls_by_non_leaders(replicas: &[&Replica]) -> Vec<String> {
    let mut events: Vec<(&str, Call)> = replicas
        .iter()
        .flat_map(|r| r.proxy.calls().into_iter().map(move |c| (r.id.as_str(), c)))
        .collect();
    // A write counts from its answer (it holds only once S3 took it); a call from its
    // arrival.
    events.sort_by_key(|(_, c)| {
        if c.lease_holder.is_some() {
            c.answered
        } else {
            c.at
        }
    });
    let mut holder: Option<(&str, Instant)> = None;
    let mut violations = Vec::new();
    for (replica, call) in &events {
        if let Some(named) = &call.lease_holder {
            if call.status == 200 {
                holder = (!named.is_empty()).then_some((*replica, call.at));
            }
            continue;
        }
        if !is_mutating(&call.name) {
            continue;
        }
        match holder {
            Some((h, renewed)) if h == *replica && call.at.duration_since(renewed) < LEASE => {}
            _ => violations.push(format!(
                "{} by {replica} while the lease was {holder:?}",
                call.name
            )),
        }
    }
    violations
}

async fn lease_bucket() -> (String, String, String) {
    let config = common::emulator_config().await;
    let bucket = common::fresh_bucket(&config).await;
    let uri = format!("s3://{bucket}/lease.json");
    let path = format!("/{bucket}/lease.json");
    (bucket, uri, path)
}

/// Waits (with a generous deadline that only keeps a broken build from hanging) until
/// the lease names one of `ids`; returns it.
async fn wait_for_holder(bucket: &str, ids: &[&str], what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(h) = holder(bucket).await
            && ids.contains(&h.as_str())
        {
            return h;
        }
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// The proxies run on this runtime: keep them serving while the test thread waits on a
// child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_takes_over_after_the_leader_is_killed_and_finishes_the_rollout() {
    let app = App::new().await;
    let (bucket, lease_uri, lease_path) = lease_bucket().await;
    let mut a = Replica::start(&app, &lease_uri, &lease_path, "a").await;
    let first = wait_for_holder(&bucket, &["a"], "a leads").await;
    assert_eq!(first, "a");
    let b = Replica::start(&app, &lease_uri, &lease_path, "b").await;
    app.until("first deployment", |s, w| {
        phase(s) == "Healthy" && w == Some((100, 0))
    })
    .await;
    // Both say who leads; the follower is ready and has made no call that changes AWS.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (sa, sb) = loop {
        let (sa, sb) = (a.status().await, b.status().await);
        if let (Some(sa), Some(sb)) = (&sa, &sb)
            && sb["leadership"]["leader"] == "a"
        {
            break (sa.clone(), sb.clone());
        }
        assert!(
            Instant::now() < deadline,
            "no leadership in /status: {sa:?} {sb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(sa["leadership"]["leading"], true, "{sa}");
    assert_eq!(sb["leadership"]["leading"], false, "{sb}");
    let ready = reqwest::get(format!("http://{}/readyz", b.http))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap_or_default().contains("leader a"));
    let b_mutations: Vec<_> = b
        .proxy
        .calls()
        .into_iter()
        .filter(|c| is_mutating(&c.name))
        .collect();
    assert!(
        b_mutations.is_empty(),
        "the follower acted: {b_mutations:?}"
    );

    // SIGKILL the leader: no release, so b waits out the lease.
    let last_renewal = a
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.lease_holder.as_deref() == Some("a") && c.status == 200)
        .map(|c| c.answered)
        .max()
        .expect("a renewed");
    a.sigkill();
    let killed = Instant::now();
    wait_for_holder(&bucket, &["b"], "b takes over").await;
    let took_over = b
        .proxy
        .calls()
        .into_iter()
        .filter(|c| c.lease_holder.as_deref() == Some("b") && c.status == 200)
        .map(|c| c.at)
        .min()
        .expect("b's acquiring write");
    // Never before the lease ran out (noise only makes it later)...
    assert!(
        took_over + Duration::from_millis(100) >= last_renewal + LEASE,
        "b took the lease {:?} after a's last renewal, before the {LEASE:?} lease ran out",
        took_over.duration_since(last_renewal)
    );
    eprintln!(
        "failover: b acquired {:?} after the SIGKILL ({:?} after a's last renewal; lease {LEASE:?}, retry {RETRY:?})",
        took_over.saturating_duration_since(killed),
        took_over.duration_since(last_renewal)
    );

    // ...and b acts: the next revision rolls out under it, through the operator pause.
    app.write("api:2");
    app.until("the canary at its pause under b", |s, w| {
        step(s) == Some(1) && phase(s) == "Paused" && w == Some((80, 20))
    })
    .await;
    app.verb(&["promote", "api"]);
    app.until("api:2 promoted under b", |s, w| {
        phase(s) == "Healthy" && s.workloads["api"].canary.is_none() && w == Some((0, 100))
    })
    .await;
    let family = format!("{}-api", app.world.infra.app_name);
    let revisions = moto::revisions(&family).await;
    assert_eq!(revisions.len(), 2, "no duplicate revision: {revisions:?}");
    let violations = calls_by_non_leaders(&[&a, &b]);
    assert!(violations.is_empty(), "{violations:#?}");
    let b_acted = b.proxy.calls().iter().any(|c| is_mutating(&c.name));
    assert!(b_acted, "b made the second rollout's calls");
}

// The proxies run on this runtime: keep them serving while the test thread waits on a
// child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_cut_off_from_its_lease_stops_acting_before_the_follower_takes_over() {
    let app = App::new().await;
    let (bucket, lease_uri, lease_path) = lease_bucket().await;
    let a = Replica::start(&app, &lease_uri, &lease_path, "a").await;
    wait_for_holder(&bucket, &["a"], "a leads").await;
    let b = Replica::start(&app, &lease_uri, &lease_path, "b").await;
    app.until("first deployment", |s, w| {
        phase(s) == "Healthy" && w == Some((100, 0))
    })
    .await;
    // a keeps reaching ECS and ELB but not its lease; a new revision gives it work.
    a.proxy
        .recorder
        .cut
        .store(true, std::sync::atomic::Ordering::SeqCst);
    app.write("api:2");
    wait_for_holder(&bucket, &["b"], "b takes over").await;
    app.until("the canary at its pause", |s, w| {
        step(s) == Some(1) && phase(s) == "Paused" && w == Some((80, 20))
    })
    .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sa = a.status().await.unwrap_or_default();
        if sa["leadership"]["leading"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "a still says it leads: {sa}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let violations = calls_by_non_leaders(&[&a, &b]);
    assert!(violations.is_empty(), "{violations:#?}");
    let family = format!("{}-api", app.world.infra.app_name);
    let revisions = moto::revisions(&family).await;
    assert_eq!(revisions.len(), 2, "no duplicate revision: {revisions:?}");
}

// The proxies run on this runtime: keep them serving while the test thread waits on a
// child process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_random_leader_kills_leave_no_call_by_a_non_leader_and_no_duplicate() {
    let app = App::new().await;
    let (bucket, lease_uri, lease_path) = lease_bucket().await;
    let mut replicas = vec![
        Replica::start(&app, &lease_uri, &lease_path, "r0").await,
        Replica::start(&app, &lease_uri, &lease_path, "r1").await,
    ];
    let mut next = 2;
    // A small deterministic generator: the kills' spacing varies, the run repeats.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut random = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut kills = 0;
    let mut second = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut next_kill = Instant::now() + Duration::from_millis(1500 + random(2500));
    loop {
        moto::settle(&app.world).await;
        if let Some(s) = app.read_status() {
            let api = s.workloads.get("api");
            if !second && phase(&s) == "Healthy" && api.is_some_and(|a| a.canary.is_none()) {
                app.write("api:2");
                second = true;
            } else if second && step(&s) == Some(1) && phase(&s) == "Paused" {
                app.verb(&["promote", "api"]);
            }
            let done = second
                && api.is_some_and(|a| {
                    a.canary.is_none()
                        && a.phase == tugboat::status::Phase::Healthy
                        && a.stable.as_ref().and_then(|r| r.slot)
                            == Some(tugboat::document::Slot::Green)
                });
            if done && kills >= 4 && app.weights().await == Some((0, 100)) {
                break;
            }
        }
        if Instant::now() >= next_kill && kills < 6 {
            // Kill whoever holds the lease now, and start a fresh replica in its place.
            let ids: Vec<String> = replicas
                .iter()
                .filter(|r| r.process.is_some())
                .map(|r| r.id.clone())
                .collect();
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let leader = wait_for_holder(&bucket, &ids, "someone leads").await;
            if let Some(r) = replicas.iter_mut().find(|r| r.id == leader) {
                r.sigkill();
                kills += 1;
            }
            replicas.push(Replica::start(&app, &lease_uri, &lease_path, &format!("r{next}")).await);
            next += 1;
            next_kill = Instant::now() + LEASE + Duration::from_millis(500 + random(3000));
        }
        assert!(
            Instant::now() < deadline,
            "never finished the rollout (kills: {kills}); status {:#?}",
            app.read_status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let family = format!("{}-api", app.world.infra.app_name);
    let revisions = moto::revisions(&family).await;
    assert_eq!(revisions.len(), 2, "no duplicate revision: {revisions:?}");
    let all: Vec<&Replica> = replicas.iter().collect();
    let violations = calls_by_non_leaders(&all);
    assert!(violations.is_empty(), "{violations:#?}");
    let actors = all
        .iter()
        .filter(|r| r.proxy.calls().iter().any(|c| is_mutating(&c.name)))
        .count();
    assert!(
        actors >= 2,
        "more than one replica led and acted over the run"
    );
    eprintln!(
        "random kills: {kills} leaders killed, {actors} replicas acted, {} started",
        all.len()
    );
}

/// Operator logs (`--log-format json`): every line of a pass names the pass and the
/// application, an action's lines the workload and its rollout, and a secret the pass
/// reads (a web analysis header from the environment) or renders (a task-definition
/// secret's reference) never shows its value, at any level.
mod logs {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use crate::common::{Infra, Spec, app, desired};
    use tugboat::cli::run::{LogFormat, log_subscriber};
    use tugboat::document::{AnalysisTemplate, Strategy};
    use tugboat::platform::memory::MemoryPlatform;
    use tugboat::runtime::Reconciler;
    use tugboat::status::{Phase, Timestamp};

    const SECRET: &str = "tok-3f9c2d7e1b-very-secret";

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("buffer").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Buffer {
        type Writer = Buffer;
        fn make_writer(&'w self) -> Buffer {
            self.clone()
        }
    }

    /// A metrics endpoint that answers only with the right bearer token.
    async fn metrics_server() -> (String, Arc<Mutex<usize>>) {
        let authorized = Arc::new(Mutex::new(0usize));
        let seen = authorized.clone();
        let router = axum::Router::new().route(
            "/errors",
            axum::routing::get(move |headers: axum::http::HeaderMap| {
                let seen = seen.clone();
                async move {
                    let ok = headers.get("authorization").and_then(|v| v.to_str().ok())
                        == Some(&format!("Bearer {SECRET}"));
                    if ok {
                        *seen.lock().expect("count") += 1;
                        (axum::http::StatusCode::OK, r#"{"error_rate": 0.001}"#)
                    } else {
                        (axum::http::StatusCode::UNAUTHORIZED, "{}")
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, router).await.expect("serve") });
        (url, authorized)
    }

    fn shop(url: &str, parameter: &str, tag: &str) -> tugboat::runtime::DesiredDocument {
        let infra = Infra::fake();
        let mut a = app(
            &infra,
            &[Spec::canary(
                "api",
                &format!("api:{tag}"),
                "tg-b",
                "tg-g",
                10,
            )],
        );
        a.spec.workloads[0]
            .secrets
            .insert("DB_PASSWORD".into(), "/shop/db-password".into());
        let template: AnalysisTemplate = serde_json::from_value(serde_json::json!({
            "name": "errors",
            "provider": {"web": {
                "url": format!("{url}/errors"), "timeout": "1s",
                "headers": [{"key": "Authorization", "valueFrom": {"ssm": parameter}}]
            }},
            "query": "/error_rate",
            "successCondition": "result < 0.01",
        }))
        .expect("template");
        a.spec.analysis_templates = vec![template];
        if let Strategy::Canary(c) = &mut a.spec.workloads[0].strategy {
            c.steps = serde_json::from_value(serde_json::json!([
                {"setWeight": 50},
                {"analysis": {"templates": [{"templateName": "errors"}]}},
                {"setWeight": 100},
            ]))
            .expect("steps");
        }
        desired(a, tag)
    }

    #[tokio::test]
    async fn json_logs_carry_pass_app_workload_and_rollout_and_never_a_secret_value() {
        // The token is a SecureString in (the emulator's) SSM, read by the web provider
        // when it measures, as on AWS.
        let config = crate::common::emulator_config().await;
        let ssm = tugboat::aws::ssm(&config);
        let parameter = format!("/{}", crate::common::unique_name("log-token"));
        ssm.put_parameter()
            .name(&parameter)
            .value(format!("Bearer {SECRET}"))
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .expect("put the SecureString");
        let (url, authorized) = metrics_server().await;
        let buffer = Buffer::default();
        let subscriber = log_subscriber(LogFormat::Json, "trace", buffer.clone());
        let _guard = tracing::subscriber::set_default(subscriber);

        let platform = Arc::new(MemoryPlatform::new());
        let runner = tugboat::analysis::Runner::new(tugboat::analysis::Providers::aws(
            ssm.clone(),
            tugboat::aws::cloudwatch(&config),
        ));
        let mut r = Reconciler::new(platform, None).with_analysis(runner);
        let mut now = Timestamp::from_secs(1_000_000);
        for tag in ["1", "2"] {
            let doc = shop(&url, &parameter, tag);
            for _ in 0..20 {
                let report = r.pass(&doc, now).await.expect("pass");
                now = now.plus(Duration::from_secs(5));
                let api = &report.status.workloads["api"];
                if api.phase == Phase::Healthy && api.canary.is_none() && tag == "2" {
                    break;
                }
                if api.phase == Phase::Healthy && tag == "1" {
                    break;
                }
            }
        }
        assert!(
            *authorized.lock().expect("count") > 0,
            "the analysis measured with the secret header"
        );

        let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        assert!(!text.contains(SECRET), "a secret value is in the logs");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        let spans = |line: &serde_json::Value| -> Vec<serde_json::Value> {
            line["spans"].as_array().cloned().unwrap_or_default()
        };
        let in_pass: Vec<_> = lines
            .iter()
            .filter(|l| spans(l).iter().any(|s| s["name"] == "pass"))
            .collect();
        // tugboat's own lines all come from passes here, and every one is in its span
        // (the SDK's and hyper's lines from spawned tasks carry no span of ours).
        let ours_outside: Vec<_> = lines
            .iter()
            .filter(|l| {
                l["target"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("tugboat"))
            })
            .filter(|l| !spans(l).iter().any(|s| s["name"] == "pass"))
            .collect();
        assert!(
            ours_outside.is_empty(),
            "outside a pass span: {ours_outside:#?}"
        );
        assert!(!in_pass.is_empty(), "{} lines, none in a pass", lines.len());
        for line in &in_pass {
            let pass = spans(line)
                .into_iter()
                .find(|s| s["name"] == "pass")
                .expect("pass");
            assert!(pass["pass"].as_u64().is_some(), "{line}");
            assert_eq!(pass["app"], "shop/test", "{line}");
        }
        let actions: Vec<_> = lines
            .iter()
            .filter_map(|l| spans(l).into_iter().find(|s| s["name"] == "action"))
            .collect();
        assert!(!actions.is_empty());
        for a in &actions {
            assert_eq!(a["workload"], "api", "{a}");
            // "none" only before the first deployment has a revision in the status.
            assert!(a["rollout"].as_str().is_some(), "{a}");
        }
        assert!(
            actions
                .iter()
                .any(|a| a["rollout"].as_str().is_some_and(|r| r.contains('@'))),
            "the canary's lines name its rollout: {actions:?}"
        );
    }
}

/// One controller, many applications (`--source s3://bucket/prefix/`), and sources that
/// disappear.
pub mod fleet {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use crate::common::{self, Spec, app, moto};
    use crate::ops::{self, Kill};

    async fn put(bucket: &str, key: &str, text: &str) {
        let config = common::emulator_config().await;
        tugboat::aws::s3(&config)
            .put_object()
            .bucket(bucket)
            .key(key)
            .body(text.as_bytes().to_vec().into())
            .send()
            .await
            .expect("put object");
    }

    async fn delete(bucket: &str, key: &str) {
        let config = common::emulator_config().await;
        tugboat::aws::s3(&config)
            .delete_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .expect("delete object");
    }

    /// A rolling application of `workloads` workloads on `world`, as document text.
    /// Workloads are named `<name>-w<i>`'s last part: `w<i>` after the app's own prefix,
    /// so applications sharing a cluster own different services.
    pub fn document(world: &moto::World, name: &str, image: &str, workloads: usize) -> String {
        let mut infra = world.infra.clone();
        infra.app_name = name.to_string();
        let specs: Vec<Spec> = (0..workloads)
            .map(|i| Spec::rolling(&workload(name, i), image))
            .collect();
        serde_json::to_string_pretty(&app(&infra, &specs)).expect("json")
    }

    /// The `i`th workload of application `name`: unique in a shared cluster.
    pub fn workload(name: &str, i: usize) -> String {
        format!("{}w{i}", name.chars().rev().take(6).collect::<String>())
    }

    /// Its task-definition family.
    pub fn family(name: &str, i: usize) -> String {
        format!("{name}-{}", workload(name, i))
    }

    fn start(source: &str, http: std::net::SocketAddr) -> Kill {
        Kill(
            ops::tugboat()
                .args(["run", "--poll", "200ms", "--resync", "1s"])
                .arg(format!("--http-addr={http}"))
                .args(["--source", source])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tugboat starts"),
        )
    }

    fn free_port() -> std::net::SocketAddr {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
        probe.local_addr().expect("addr")
    }

    async fn get(http: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
        let r = reqwest::get(format!("http://{http}{path}")).await.ok()?;
        let code = r.status().as_u16();
        Some((code, r.text().await.ok()?))
    }

    /// Waits (a deadline that only keeps a broken build from hanging) for `done` of the
    /// controller's `/status`.
    async fn until(
        http: std::net::SocketAddr,
        what: &str,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Some((_, body)) = get(http, "/status").await
                && let Ok(json) = serde_json::from_str::<serde_json::Value>(&body)
                && done(&json)
            {
                return json;
            }
            assert!(
                Instant::now() < deadline,
                "never: {what}; /status: {:?}",
                get(http, "/status").await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test]
    async fn every_document_under_a_prefix_is_its_own_application_and_a_bad_one_stalls_none() {
        let world = moto::world(&[], 0).await;
        let config = common::emulator_config().await;
        let bucket = common::fresh_bucket(&config).await;
        let (one, two) = (moto::unique("fa"), moto::unique("fb"));
        put(
            &bucket,
            "apps/one.json",
            &document(&world, &one, "web:1", 2),
        )
        .await;
        put(
            &bucket,
            "apps/two.json",
            &document(&world, &two, "web:1", 1),
        )
        .await;
        put(&bucket, "apps/broken.yaml", "apiVersion: tugboat.dev/v1alpha1\nkind: Application\nmetadata: {name: x, environment: y}\nspec: {workloads: []}\n").await;
        put(
            &bucket,
            "elsewhere/three.json",
            &document(&world, "not-under-the-prefix", "web:1", 1),
        )
        .await;
        let http = free_port();
        let _controller = start(&format!("s3://{bucket}/apps/"), http);
        let uri = |key: &str| format!("s3://{bucket}/apps/{key}");
        let passed = |json: &serde_json::Value, key: &str| {
            json["applications"][uri(key)]["lastPassOk"] == true
        };
        let json = until(
            http,
            "both good applications pass, the bad one is reported",
            |j| {
                passed(j, "one.json")
                    && passed(j, "two.json")
                    && j["applications"][uri("broken.yaml")]["problem"].is_string()
            },
        )
        .await;
        assert_eq!(
            json["applications"].as_object().map(|a| a.len()),
            Some(3),
            "{json}"
        );
        let problem = json["applications"][uri("broken.yaml")]["problem"]
            .as_str()
            .unwrap_or_default();
        assert!(
            problem.contains("broken.yaml"),
            "the problem names its document: {problem}"
        );
        for (name, n) in [(&one, 2), (&two, 1)] {
            for i in 0..n {
                assert!(moto::service(&world, &workload(name, i)).await.is_some());
                let family = family(name, i);
                assert_eq!(
                    moto::revisions(&family).await.len(),
                    1,
                    "{family} registered once"
                );
            }
        }
        let (code, ready) = get(http, "/readyz").await.expect("readyz");
        assert_eq!(code, 200, "{ready}");
        assert!(ready.contains("broken.yaml: problem"), "{ready}");

        // A change to one application is applied while the other is left alone.
        put(
            &bucket,
            "apps/two.json",
            &document(&world, &two, "web:2", 1),
        )
        .await;
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto::revisions(&family(&two, 0)).await.len() < 2 {
            assert!(Instant::now() < deadline, "two's change was never applied");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(moto::revisions(&family(&one, 0)).await.len(), 1);

        // A document that disappears keeps its last good revision in force, reported.
        delete(&bucket, "apps/two.json").await;
        let json = until(http, "the deleted document is reported", |j| {
            j["applications"][uri("two.json")]["problem"]
                .as_str()
                .is_some_and(|p| p.contains("no document at"))
        })
        .await;
        assert_eq!(
            json["applications"][uri("two.json")]["lastPassOk"],
            true,
            "{json}"
        );
        assert_eq!(
            moto::revisions(&family(&two, 0)).await.len(),
            2,
            "nothing undone"
        );
    }

    #[tokio::test]
    async fn a_source_bucket_that_is_deleted_keeps_the_last_good_document_in_force_and_says_so() {
        let world = moto::world(&[], 0).await;
        let config = common::emulator_config().await;
        let bucket = common::fresh_bucket(&config).await;
        let name = moto::unique("gone");
        put(&bucket, "app.json", &document(&world, &name, "web:1", 1)).await;
        let http = free_port();
        let _controller = start(&format!("s3://{bucket}/app.json"), http);
        let deadline = Instant::now() + Duration::from_secs(60);
        while get(http, "/readyz").await.map(|(c, _)| c) != Some(200) {
            assert!(Instant::now() < deadline, "never ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // The bucket goes away, object and all.
        delete(&bucket, "app.json").await;
        tugboat::aws::s3(&config)
            .delete_bucket()
            .bucket(&bucket)
            .send()
            .await
            .expect("delete bucket");
        let status = until(http, "DocumentInvalid names the missing bucket", |j| {
            j["conditions"].as_array().is_some_and(|c| {
                c.iter().any(|c| {
                    c["type"] == "DocumentInvalid"
                        && c["message"]
                            .as_str()
                            .is_some_and(|m| m.contains("does not exist"))
                })
            })
        })
        .await;
        assert!(
            status["documentRevision"].is_string(),
            "the last good revision: {status}"
        );
        let (code, ready) = get(http, "/readyz").await.expect("readyz");
        assert_eq!(
            code, 200,
            "still reconciling the last good document: {ready}"
        );
        assert!(
            ready.contains("the last good document stays in force"),
            "{ready}"
        );
        assert!(ready.contains(&bucket), "{ready}");
        // Passes go on with it: the service still runs its revision.
        assert_eq!(moto::revisions(&family(&name, 0)).await.len(), 1);
    }
}

/// `--source ssm:/path/`: every parameter under the path is an application.
mod fleet_ssm {
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    use crate::common::{self, moto};
    use crate::fleet::{document, family};
    use crate::ops::{self, Kill};

    #[tokio::test]
    async fn every_parameter_under_an_ssm_path_is_its_own_application() {
        let world = moto::world(&[], 0).await;
        let config = common::emulator_config().await;
        let ssm = tugboat::aws::ssm(&config);
        let path = format!("/{}", common::unique_name("fleet"));
        let names = [moto::unique("sa"), moto::unique("sb")];
        for name in &names {
            ssm.put_parameter()
                .name(format!("{path}/apps/{name}"))
                .value(document(&world, name, "web:1", 1))
                .r#type(aws_sdk_ssm::types::ParameterType::String)
                .send()
                .await
                .expect("put parameter");
        }
        let http = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            probe.local_addr().expect("addr")
        };
        let _controller = Kill(
            ops::tugboat()
                .args(["run", "--poll", "200ms", "--resync", "1s"])
                .arg(format!("--http-addr={http}"))
                .arg(format!("--source=ssm:{path}/"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("tugboat starts"),
        );
        let deadline = Instant::now() + Duration::from_secs(60);
        for name in &names {
            while moto::revisions(&family(name, 0)).await.len() != 1 {
                assert!(Instant::now() < deadline, "{name} never deployed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        let status: serde_json::Value = reqwest::get(format!("http://{http}/status"))
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        for name in &names {
            let uri = format!("ssm:{path}/apps/{name}");
            assert_eq!(
                status["applications"][&uri]["application"],
                format!("{name}/test"),
                "{status}"
            );
        }
    }
}
