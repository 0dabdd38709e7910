//! `gate` steps from real passes: the in-memory platform, a real HTTP gate (an axum app
//! on a free loopback port) whose answer the test changes, and the status persisted in
//! a file so a second controller can take over. `now` is passed in; no test times
//! anything.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::time::Duration;

use common::{Infra, Spec, app, desired};
use tugboat::document::Strategy;
use tugboat::platform::memory::MemoryPlatform as Fake;
use tugboat::runtime::{DesiredDocument, Reconciler};
use tugboat::status::{GatePhase, Phase, Timestamp, WorkloadStatus};

#[derive(Debug, Clone)]
struct Gate {
    url: String,
    code: Arc<AtomicU16>,
    hits: Arc<AtomicUsize>,
}

impl Gate {
    async fn start(code: u16) -> Gate {
        let code = Arc::new(AtomicU16::new(code));
        let hits = Arc::new(AtomicUsize::new(0));
        let (c, h) = (code.clone(), hits.clone());
        let router = axum::Router::new().route(
            "/gate",
            axum::routing::get(move || {
                let (c, h) = (c.clone(), h.clone());
                async move {
                    h.fetch_add(1, Ordering::SeqCst);
                    axum::http::StatusCode::from_u16(c.load(Ordering::SeqCst)).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/gate", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Gate { url, code, hits }
    }

    fn answer(&self, code: u16) {
        self.code.store(code, Ordering::SeqCst);
    }
}

fn shop(infra: &Infra, gate: &Gate, tag: &str) -> DesiredDocument {
    let mut a = app(
        infra,
        &[Spec::canary(
            "api",
            &format!("api:{tag}"),
            "tg-api-blue",
            "tg-api-green",
            10,
        )],
    );
    if let Strategy::Canary(c) = &mut a.spec.workloads[0].strategy {
        c.steps = serde_json::from_value(serde_json::json!([
            {"setWeight": 50},
            {"gate": {"url": gate.url, "timeout": "1m"}},
            {"setWeight": 100},
        ]))
        .unwrap();
    }
    let problems: Vec<_> = tugboat::validate::validate(&a)
        .into_iter()
        .filter(|p| p.path.contains("steps"))
        .collect();
    assert!(problems.is_empty(), "the gate is valid: {problems:?}");
    desired(a, tag)
}

fn weights(platform: &Fake) -> (u32, u32) {
    platform.with_state(|s| {
        let rule = s.rules.get("api").expect("a rule");
        let w = |tg: &str| rule.weights.get(tg).copied().unwrap_or(0);
        (w("tg-api-blue"), w("tg-api-green"))
    })
}

async fn drive(
    r: &mut Reconciler<Arc<Fake>>,
    doc: &DesiredDocument,
    now: &mut Timestamp,
    max: usize,
    done: impl Fn(&WorkloadStatus) -> bool,
) -> WorkloadStatus {
    let mut last = None;
    for _ in 0..max {
        let report = r.pass(doc, *now).await.expect("pass");
        let api = report.status.workloads["api"].clone();
        *now = now.plus(Duration::from_secs(5));
        if done(&api) {
            return api;
        }
        last = Some(api);
    }
    panic!("not done after {max} passes: {last:#?}");
}

fn waiting(s: &WorkloadStatus) -> bool {
    s.gate
        .as_ref()
        .is_some_and(|g| g.phase == GatePhase::Waiting && g.checks > 0)
}

struct Setup {
    infra: Infra,
    platform: Arc<Fake>,
    r: Reconciler<Arc<Fake>>,
    now: Timestamp,
    _dir: tempfile::TempDir,
}

/// v1 converged, then v2 rolled up to the gate, which answered (503: not yet) once.
async fn at_the_gate(gate: &Gate) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut infra = Infra::fake();
    infra.status_uri = Some(format!(
        "file://{}",
        dir.path().join("status.json").display()
    ));
    let platform = Arc::new(Fake::new());
    let mut r = Reconciler::new(platform.clone(), None);
    let mut now = Timestamp::from_secs(1_000_000);
    drive(&mut r, &shop(&infra, gate, "1"), &mut now, 10, |s| {
        s.phase == Phase::Healthy
    })
    .await;
    gate.answer(503);
    let s = drive(&mut r, &shop(&infra, gate, "2"), &mut now, 20, waiting).await;
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1);
    assert_eq!(weights(&platform), (50, 50), "weight held at the gate");
    Setup {
        infra,
        platform,
        r,
        now,
        _dir: dir,
    }
}

#[tokio::test]
async fn an_approving_gate_lets_the_rollout_go_on() {
    let gate = Gate::start(503).await;
    let mut s = at_the_gate(&gate).await;
    gate.answer(200);
    let v2 = shop(&s.infra, &gate, "2");
    let api = drive(&mut s.r, &v2, &mut s.now, 20, |s| {
        s.phase == Phase::Healthy && s.canary.is_none()
    })
    .await;
    assert_eq!(weights(&s.platform), (0, 100));
    assert_eq!(api.gate.unwrap().phase, GatePhase::Approved);
}

#[tokio::test]
async fn a_rejecting_gate_aborts_with_the_weight_verified_back() {
    let gate = Gate::start(503).await;
    let mut s = at_the_gate(&gate).await;
    gate.answer(403);
    let v2 = shop(&s.infra, &gate, "2");
    let api = drive(&mut s.r, &v2, &mut s.now, 20, |s| {
        s.phase == Phase::Aborted && s.canary.is_none()
    })
    .await;
    assert_eq!(weights(&s.platform), (100, 0), "all traffic back on stable");
    assert!(
        api.events.iter().any(|e| e.reason == "WeightRestored"),
        "{:?}",
        api.events
    );
    assert!(
        api.message.contains("rejected")
            || api.events.iter().any(|e| e.message.contains("rejected"))
    );
}

#[tokio::test]
async fn a_gate_that_never_approves_times_out_into_abort() {
    let gate = Gate::start(503).await;
    let mut s = at_the_gate(&gate).await;
    let v2 = shop(&s.infra, &gate, "2");
    let api = drive(&mut s.r, &v2, &mut s.now, 40, |s| {
        s.phase == Phase::Aborted && s.canary.is_none()
    })
    .await;
    assert_eq!(weights(&s.platform), (100, 0));
    assert_eq!(api.gate.unwrap().phase, GatePhase::TimedOut);
}

#[tokio::test]
async fn a_restart_while_waiting_at_a_gate_keeps_waiting() {
    let gate = Gate::start(503).await;
    let s = at_the_gate(&gate).await;
    let deadline = s.r.status().unwrap().workloads["api"]
        .gate
        .as_ref()
        .unwrap()
        .deadline;
    drop(s.r);
    // A fresh controller: its memory is the persisted status only.
    let mut r = Reconciler::new(s.platform.clone(), None);
    let v2 = shop(&s.infra, &gate, "2");
    let mut now = s.now;
    let before = gate.hits.load(Ordering::SeqCst);
    for _ in 0..5 {
        let report = r.pass(&v2, now).await.expect("pass");
        now = now.plus(Duration::from_secs(5));
        let api = &report.status.workloads["api"];
        assert_eq!(
            api.canary.as_ref().unwrap().step_index,
            1,
            "{}",
            api.message
        );
        assert_eq!(weights(&s.platform), (50, 50), "never skipped");
        let g = api.gate.as_ref().unwrap();
        assert_eq!(g.phase, GatePhase::Waiting);
        assert_eq!(g.deadline, deadline, "the same deadline");
    }
    assert!(gate.hits.load(Ordering::SeqCst) > before, "asked again");
    gate.answer(200);
    drive(&mut r, &v2, &mut now, 20, |s| s.canary.is_none()).await;
    assert_eq!(weights(&s.platform), (0, 100));
}
