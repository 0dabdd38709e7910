//! Webhook notifications from real passes: the reconcile loop over the in-memory
//! platform tells a real HTTP receiver (an axum app on a free loopback port) what each
//! pass did. The test waits for deliveries by polling what the receiver got, never by
//! timing a pass.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Infra, Spec, app, desired};
use tugboat::analysis::Secrets;
use tugboat::analysis::secrets::SecretError;
use tugboat::document::{Notification, NotificationEvent, SecretSource, Strategy};
use tugboat::platform::BoxFuture;
use tugboat::platform::memory::MemoryPlatform as Fake;
use tugboat::runtime::notify::{Notifier, NotifyConfig};
use tugboat::runtime::{DesiredDocument, Reconciler};
use tugboat::status::{Phase, Timestamp};

const KEY: &str = "it-is-a-secret";

/// The key the test's webhooks are signed with, whatever the source names.
#[derive(Debug)]
struct Fixed;

impl Secrets for Fixed {
    fn read<'a>(&'a self, _: &'a SecretSource) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async { Ok(KEY.to_string()) })
    }
}

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// The first `n` requests get 500, then 200.
    FailFirst(usize),
    /// Never answers.
    Hang,
}

/// A request the receiver got: its signature header and its body.
type Got = (Option<String>, Vec<u8>);

#[derive(Debug, Clone)]
struct Receiver {
    url: String,
    /// (signature header, body) of every request, answered or not.
    got: Arc<Mutex<Vec<Got>>>,
    answered_ok: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(mode: Mode) -> Receiver {
        let got = Arc::new(Mutex::new(Vec::new()));
        let answered_ok = Arc::new(AtomicUsize::new(0));
        let (g, ok) = (got.clone(), answered_ok.clone());
        let router = axum::Router::new().route(
            "/hook",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                    let (g, ok) = (g.clone(), ok.clone());
                    async move {
                        let sig = headers
                            .get("x-tugboat-signature")
                            .map(|v| v.to_str().unwrap().to_string());
                        let n = {
                            let mut g = g.lock().unwrap();
                            g.push((sig, body.to_vec()));
                            g.len()
                        };
                        match mode {
                            Mode::Hang => std::future::pending::<axum::http::StatusCode>().await,
                            Mode::FailFirst(k) if n <= k => {
                                axum::http::StatusCode::INTERNAL_SERVER_ERROR
                            }
                            Mode::FailFirst(_) => {
                                ok.fetch_add(1, Ordering::SeqCst);
                                axum::http::StatusCode::OK
                            }
                        }
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Receiver {
            url,
            got,
            answered_ok,
        }
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (polling; bounded so a broken delivery fails the test) until `done`.
    async fn until(&self, done: impl Fn(&Receiver) -> bool) {
        for _ in 0..3000 {
            if done(self) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "the receiver never got what was expected: {:?}",
            self.events()
        );
    }

    fn events(&self) -> Vec<String> {
        self.got()
            .iter()
            .map(|(_, b)| {
                let v: serde_json::Value = serde_json::from_slice(b).unwrap();
                v["event"].as_str().unwrap().to_string()
            })
            .collect()
    }
}

fn config() -> NotifyConfig {
    NotifyConfig {
        capacity: 64,
        attempts: 5,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        timeout: Duration::from_secs(3600),
    }
}

fn shop(infra: &Infra, receiver: &Receiver, tag: &str) -> DesiredDocument {
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
    a.spec.notifications = vec![Notification {
        url: receiver.url.clone(),
        events: Vec::new(),
        secret: Some(SecretSource {
            env: Some("TUGBOAT_WEBHOOK_KEY".into()),
            ssm: None,
        }),
    }];
    let problems: Vec<_> = tugboat::validate::validate(&a)
        .into_iter()
        .filter(|p| p.path.contains("notifications"))
        .collect();
    assert!(problems.is_empty(), "the webhook is valid: {problems:?}");
    desired(a, tag)
}

/// Rolls `api` from 1 to 2 to completion; returns the passes run after v2 appeared.
async fn roll(
    receiver: &Receiver,
    notifier: Notifier,
) -> (
    Reconciler<Arc<Fake>>,
    usize,
    tugboat::status::WorkloadStatus,
) {
    let infra = Infra::fake();
    let platform = Arc::new(Fake::new());
    let mut r = Reconciler::new(platform, None).with_notifier(notifier);
    let mut now = Timestamp::from_secs(1_000_000);
    let v1 = shop(&infra, receiver, "1");
    for _ in 0..10 {
        r.pass(&v1, now).await.expect("pass");
        now = now.plus(Duration::from_secs(1));
    }
    let v2 = shop(&infra, receiver, "2");
    for n in 1..=40 {
        let report = r.pass(&v2, now).await.expect("pass");
        now = now.plus(Duration::from_secs(5));
        let api = report.status.workloads["api"].clone();
        if api.phase == Phase::Healthy && api.canary.is_none() && api.stable.is_some() && n > 1 {
            return (r, n, api);
        }
    }
    panic!("the rollout never completed");
}

#[tokio::test]
async fn webhooks_are_delivered_with_a_correct_signature() {
    let receiver = Receiver::start(Mode::FailFirst(0)).await;
    let (_r, _, api) = roll(&receiver, Notifier::spawn(Arc::new(Fixed), config())).await;
    receiver
        .until(|r| r.events().contains(&"completed".to_string()))
        .await;
    let events = receiver.events();
    for want in ["rolloutStarted", "stepReached", "completed"] {
        assert!(events.contains(&want.to_string()), "{want}: {events:?}");
    }
    for (sig, body) in receiver.got() {
        assert_eq!(
            sig.as_deref(),
            Some(tugboat_core::notify::signature(KEY.as_bytes(), &body).as_str()),
            "signed with the key"
        );
        let text = String::from_utf8(body.clone()).unwrap();
        assert!(!text.contains(KEY), "the secret is never in the body");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["workload"], "api");
        assert_eq!(v["application"], Infra::fake().app_name.as_str());
        assert!(v["timestamp"].as_u64().is_some(), "{v}");
    }
    let (_, completed) = receiver
        .got()
        .into_iter()
        .find(|(_, b)| String::from_utf8_lossy(b).contains("\"completed\""))
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&completed).unwrap();
    assert_eq!(v["revision"], api.stable.unwrap().hash.as_str());
}

#[tokio::test]
async fn a_delivery_answered_500_is_retried() {
    let receiver = Receiver::start(Mode::FailFirst(1)).await;
    let (_r, _, _) = roll(&receiver, Notifier::spawn(Arc::new(Fixed), config())).await;
    receiver
        .until(|r| r.events().contains(&"completed".to_string()))
        .await;
    let got = receiver.got();
    assert!(got.len() >= 2, "{:?}", receiver.events());
    assert_eq!(got[0].1, got[1].1, "the refused notice is sent again");
    assert_eq!(
        receiver.answered_ok.load(Ordering::SeqCst),
        got.len() - 1,
        "every notice accepted once"
    );
}

#[tokio::test]
async fn a_hanging_receiver_never_holds_up_a_pass() {
    let receiver = Receiver::start(Mode::Hang).await;
    let notifier = Notifier::spawn(
        Arc::new(Fixed),
        NotifyConfig {
            capacity: 1,
            ..config()
        },
    );
    let (_r, passes, api) = roll(&receiver, notifier.clone()).await;
    // The receiver holds the first notice forever; the rollout still completed.
    receiver.until(|r| !r.got().is_empty()).await;
    assert_eq!(api.phase, Phase::Healthy);
    assert!(passes >= 2, "passes completed while the receiver hangs");
    assert_eq!(receiver.got().len(), 1, "one delivery in flight, hanging");
    assert!(
        notifier.dropped() > 0,
        "a full queue drops notices rather than waiting"
    );
}

#[tokio::test]
async fn a_manual_pause_is_told_once_to_a_webhook_that_wants_pauses_only() {
    let receiver = Receiver::start(Mode::FailFirst(0)).await;
    let infra = Infra::fake();
    let platform = Arc::new(Fake::new());
    let mut r =
        Reconciler::new(platform, None).with_notifier(Notifier::spawn(Arc::new(Fixed), config()));
    let mut now = Timestamp::from_secs(1_000_000);
    let doc = |tag: &str| {
        let mut d = shop(&infra, &receiver, tag);
        d.app.spec.notifications[0].events = vec![NotificationEvent::Paused];
        if let Strategy::Canary(c) = &mut d.app.spec.workloads[0].strategy {
            c.steps = serde_json::from_value(serde_json::json!([
                {"setWeight": 50}, {"pause": {}}, {"setWeight": 100},
            ]))
            .unwrap();
        }
        d
    };
    let v1 = doc("1");
    for _ in 0..10 {
        r.pass(&v1, now).await.expect("pass");
        now = now.plus(Duration::from_secs(1));
    }
    let v2 = doc("2");
    let mut paused_passes = 0;
    for _ in 0..20 {
        let report = r.pass(&v2, now).await.expect("pass");
        now = now.plus(Duration::from_secs(5));
        if report.status.workloads["api"].phase == Phase::Paused {
            paused_passes += 1;
        }
    }
    assert!(
        paused_passes > 1,
        "the rollout stays paused over several passes"
    );
    receiver.until(|r| !r.got().is_empty()).await;
    // Let anything else queued arrive before counting.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.events(), vec!["paused".to_string()]);
    let v: serde_json::Value = serde_json::from_slice(&receiver.got()[0].1).unwrap();
    assert_eq!(v["step"], 2, "{v}");
    assert_eq!(v["weights"]["desired"], 50, "{v}");
}
