//! The local router over real HTTP: real upstream servers on loopback, a real client,
//! the weights changed through the watch while it serves.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tugboat::platform::local::router::{
    Router, RouterConfig, RouterHandle, Rule, TARGET_GROUP_HEADER,
};

/// An upstream that answers `name` with `status` on every path.
async fn upstream(name: &'static str, status: u16) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let app = axum::Router::new().fallback(move || async move {
        (
            axum::http::StatusCode::from_u16(status).expect("status"),
            name,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// An upstream that accepts connections and closes them without answering.
async fn hangs_up() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        loop {
            if let Ok((stream, _)) = listener.accept().await {
                drop(stream);
            }
        }
    });
    addr
}

/// A port nothing listens on.
fn refused() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr")
}

async fn router() -> (RouterHandle, String) {
    let router = Router::bind(
        "127.0.0.1:0".parse().expect("addr"),
        RouterConfig {
            idle_timeout: Duration::from_secs(2),
        },
    )
    .await
    .expect("bind router");
    let handle = router.handle();
    tokio::spawn(router.serve(std::future::pending()));
    let base = format!("http://{}", handle.addr());
    (handle, base)
}

fn set_rule(h: &RouterHandle, name: &str, priority: u32, pattern: &str, forward: &[(&str, u32)]) {
    h.update(|t| {
        t.rules.insert(
            name.into(),
            Rule {
                name: name.into(),
                priority,
                path_patterns: vec![pattern.into()],
                forward: forward.iter().map(|(g, w)| (g.to_string(), *w)).collect(),
            },
        );
    });
}

fn set_targets(h: &RouterHandle, group: &str, targets: &[SocketAddr]) {
    h.update(|t| {
        t.targets.insert(group.into(), targets.to_vec());
    });
}

/// (status, target-group header, body)
async fn get(client: &reqwest::Client, url: &str) -> (u16, Option<String>, String) {
    let response = client.get(url).send().await.expect("the router answers");
    let status = response.status().as_u16();
    let group = response
        .headers()
        .get(TARGET_GROUP_HEADER)
        .map(|v| v.to_str().expect("ascii").to_string());
    (status, group, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_split_follows_the_weights_per_request_on_one_connection() {
    let (h, base) = router().await;
    set_targets(&h, "api-blue", &[upstream("blue", 200).await]);
    set_targets(&h, "api-green", &[upstream("green", 200).await]);
    set_rule(
        &h,
        "api",
        10,
        "/api/*",
        &[("api-blue", 80), ("api-green", 20)],
    );
    // One pooled keep-alive connection: a per-connection choice would give 100/0.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    let mut by_group = BTreeMap::<String, u32>::new();
    for _ in 0..1000 {
        let (status, group, body) = get(&client, &format!("{base}/api/predict")).await;
        assert_eq!(status, 200);
        let group = group.expect("every answer names its target group");
        assert_eq!(
            group.trim_start_matches("api-"),
            body,
            "the header names who served"
        );
        *by_group.entry(group).or_default() += 1;
    }
    let green = by_group.get("api-green").copied().unwrap_or(0);
    assert!(
        (150..=250).contains(&green),
        "green served {green} of 1000 at weight 20 (within 5 points): {by_group:?}"
    );
    let stats = h
        .stats()
        .window("api-green", Duration::from_secs(60), Instant::now());
    assert_eq!(
        u64::from(green),
        stats.requests,
        "the counters saw every answer"
    );
    assert_eq!(stats.target_5xx, 0);
}

#[tokio::test]
async fn a_weight_change_applies_to_the_next_request() {
    let (h, base) = router().await;
    set_targets(&h, "b", &[upstream("blue", 200).await]);
    set_targets(&h, "g", &[upstream("green", 200).await]);
    set_rule(&h, "api", 10, "/api/*", &[("b", 100), ("g", 0)]);
    let client = reqwest::Client::new();
    for _ in 0..20 {
        assert_eq!(
            get(&client, &format!("{base}/api/x")).await.1.as_deref(),
            Some("b")
        );
    }
    set_rule(&h, "api", 10, "/api/*", &[("b", 0), ("g", 100)]);
    for _ in 0..20 {
        assert_eq!(
            get(&client, &format!("{base}/api/x")).await.1.as_deref(),
            Some("g"),
            "the same connection follows the new weights at once"
        );
    }
}

#[tokio::test]
async fn rules_by_priority_and_an_unmatched_path_is_404() {
    let (h, base) = router().await;
    set_targets(&h, "api", &[upstream("api", 200).await]);
    set_targets(&h, "all", &[upstream("all", 200).await]);
    set_rule(&h, "catch-all", 50, "/*", &[("all", 1)]);
    set_rule(&h, "api", 10, "/api/*", &[("api", 1)]);
    let client = reqwest::Client::new();
    assert_eq!(get(&client, &format!("{base}/api/x")).await.2, "api");
    assert_eq!(get(&client, &format!("{base}/other")).await.2, "all");
    h.update(|t| {
        t.rules.remove("catch-all");
    });
    let (status, group, _) = get(&client, &format!("{base}/other")).await;
    assert_eq!((status, group), (404, None));
}

#[tokio::test]
async fn no_healthy_target_is_503_and_a_bad_upstream_is_502_each_naming_the_group() {
    let (h, base) = router().await;
    set_targets(&h, "empty", &[]);
    set_targets(&h, "refused", &[refused()]);
    set_targets(&h, "hangs-up", &[hangs_up().await]);
    set_targets(&h, "failing", &[upstream("oops", 500).await]);
    let client = reqwest::Client::new();
    for (group, expected) in [
        ("empty", 503),
        ("refused", 502),
        ("hangs-up", 502),
        ("failing", 500),
    ] {
        set_rule(&h, "api", 10, "/api/*", &[(group, 100)]);
        let (status, named, _) = get(&client, &format!("{base}/api/x")).await;
        assert_eq!(
            (status, named.as_deref()),
            (expected, Some(group)),
            "{group}"
        );
    }
    let now = Instant::now();
    let window = Duration::from_secs(60);
    let failing = h.stats().window("failing", window, now);
    assert_eq!(
        (failing.requests, failing.target_5xx, failing.elb_5xx),
        (1, 1, 0)
    );
    for group in ["empty", "refused", "hangs-up"] {
        let s = h.stats().window(group, window, now);
        assert_eq!(
            (s.requests, s.target_5xx, s.elb_5xx),
            (0, 0, 1),
            "{group}: the router's own 5xx is not the target's"
        );
    }
}

#[tokio::test]
async fn metrics_are_prometheus_text_that_promtool_accepts() {
    let (h, base) = router().await;
    set_targets(&h, "api-blue", &[upstream("blue", 200).await]);
    set_targets(&h, "api-green", &[]);
    set_rule(
        &h,
        "api",
        10,
        "/api/*",
        &[("api-blue", 50), ("api-green", 50)],
    );
    let client = reqwest::Client::new();
    for _ in 0..50 {
        get(&client, &format!("{base}/api/x")).await;
    }
    let (status, _, text) = get(&client, &format!("{base}/metrics")).await;
    assert_eq!(status, 200);
    for needle in [
        "tugboat_router_requests_total{target_group=\"api-blue\"}",
        "tugboat_router_elb_5xx_total{target_group=\"api-green\",code=\"503\"}",
        "tugboat_router_weight{rule=\"api\",target_group=\"api-green\"} 50",
        "tugboat_router_healthy_targets{target_group=\"api-green\"} 0",
        "tugboat_router_target_response_time_seconds_count{target_group=\"api-blue\"}",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write as _;
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(text.as_bytes())
                .expect("write");
            let out = child.wait_with_output().expect("promtool ran");
            assert!(
                out.status.success(),
                "promtool rejects /metrics: {}{}\n{text}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Err(e) => eprintln!("promtool not found ({e}); install prometheus to lint /metrics"),
    }
}

#[tokio::test]
async fn a_port_in_use_says_so() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let err = Router::bind(addr, RouterConfig::default())
        .await
        .expect_err("in use");
    let message = err.to_string();
    assert!(
        message.contains("in use") && message.contains(&addr.to_string()),
        "{message}"
    );
}

/// The route's conditions beyond the path, over real HTTP: a rule for the header
/// `X-Tenant: acme` on POST wins over the catch-all below it only for requests that
/// match every condition; a sticky rule keeps a client on the group its cookie names,
/// and draws again once that group has no weight.
#[tokio::test]
async fn conditions_pick_the_rule_and_stickiness_keeps_the_group() {
    use tugboat::document::RuleCondition;
    use tugboat::platform::local::router::{RuleExtras, STICKINESS_COOKIE};
    let (h, base) = router().await;
    set_targets(&h, "tenant", &[upstream("tenant", 200).await]);
    set_targets(&h, "rest", &[upstream("rest", 200).await]);
    set_rule(&h, "tenant", 5, "/api/*", &[("tenant", 100)]);
    set_rule(&h, "rest", 10, "/api/*", &[("rest", 100)]);
    let conditions: Vec<RuleCondition> = serde_json::from_value(serde_json::json!([
        {"field": "http-header", "httpHeaderConfig": {"httpHeaderName": "X-Tenant", "values": ["ac*"]}},
        {"field": "http-request-method", "httpRequestMethodConfig": {"values": ["POST"]}},
        {"field": "source-ip", "sourceIpConfig": {"values": ["127.0.0.0/8"]}},
        {"field": "query-string", "queryStringConfig": {"values": [{"key": "v", "value": "2"}]}}
    ]))
    .expect("conditions");
    h.update(|t| {
        t.extras.insert(
            "tenant".into(),
            RuleExtras {
                conditions,
                stickiness: None,
            },
        );
    });
    let client = reqwest::Client::new();
    let body = |r: reqwest::Response| async move { r.text().await.expect("body") };
    let url = format!("{base}/api/x?v=2");
    let hit = client
        .post(&url)
        .header("x-tenant", "ACME")
        .send()
        .await
        .expect("answer");
    assert_eq!(body(hit).await, "tenant", "every condition matches");
    let wrong_method = client
        .get(&url)
        .header("x-tenant", "acme")
        .send()
        .await
        .expect("answer");
    assert_eq!(body(wrong_method).await, "rest");
    let no_header = client.post(&url).send().await.expect("answer");
    assert_eq!(body(no_header).await, "rest");
    let other_query = client
        .post(format!("{base}/api/x?v=3"))
        .header("x-tenant", "acme")
        .send()
        .await
        .expect("answer");
    assert_eq!(body(other_query).await, "rest");

    // Stickiness on a 50/50 rule: the cookie keeps the group, 20 times in a row.
    set_targets(&h, "blue", &[upstream("blue", 200).await]);
    set_targets(&h, "green", &[upstream("green", 200).await]);
    set_rule(&h, "split", 1, "/s/*", &[("blue", 50), ("green", 50)]);
    h.update(|t| {
        t.extras.insert(
            "split".into(),
            RuleExtras {
                conditions: Vec::new(),
                stickiness: Some(Duration::from_secs(60)),
            },
        );
    });
    let first = client
        .get(format!("{base}/s/x"))
        .send()
        .await
        .expect("answer");
    let cookie = first
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .expect("a sticky rule sets its cookie")
        .to_string();
    let group = body(first).await;
    assert!(
        cookie.starts_with(&format!("{STICKINESS_COOKIE}={group};")),
        "{cookie}"
    );
    let pair = cookie.split(';').next().expect("pair").to_string();
    for _ in 0..20 {
        let again = client
            .get(format!("{base}/s/x"))
            .header(reqwest::header::COOKIE, &pair)
            .send()
            .await
            .expect("answer");
        assert_eq!(body(again).await, group);
    }
    // The group loses its weight: the cookie no longer holds.
    let other = if group == "blue" { "green" } else { "blue" };
    set_rule(&h, "split", 1, "/s/*", &[(group.as_str(), 0), (other, 100)]);
    let moved = client
        .get(format!("{base}/s/x"))
        .header(reqwest::header::COOKIE, &pair)
        .send()
        .await
        .expect("answer");
    assert_eq!(body(moved).await, other);
}
