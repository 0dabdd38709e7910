//! Benchmark (not a test): what the controller costs and how fast it reacts, against
//! moto's server through the real SDK.
//!
//! 1. AWS calls per no-op pass for generated applications (canary workloads, each with
//!    two slots, two target groups and a rule), warm (the steady state) and cold (the
//!    first pass after a restart).
//! 2. Time from a document change written to S3 to the controller's
//!    RegisterTaskDefinition call, over `--changes` changes (default 20), with the
//!    source polled every second: p50, p90, max.
//!
//! Run it through `bench/aws_calls.sh`, which starts moto and sets `AWS_ENDPOINT_URL`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::moto::{self, World};
use common::{Spec, app, desired};
use tugboat::document::Application;
use tugboat::observed::ObservedState;
use tugboat::plan::Action;
use tugboat::platform::{
    ActionOutcome, CallCounts, CallEstimate, Observation, Platform, PlatformError,
};
use tugboat::runtime::{self, Feed, LoopConfig, Reconciler};
use tugboat::source::{DocumentSource, Update, WatchConfig, Watcher};
use tugboat::status::Timestamp;

#[tokio::main]
async fn main() {
    let changes: usize = std::env::args()
        .skip_while(|a| a != "--changes")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    for n in [2usize, 50] {
        calls_per_noop_pass(n).await;
    }
    reaction_time(changes).await;
}

async fn calls_per_noop_pass(n: usize) {
    let names: Vec<String> = (0..n).map(|i| format!("w{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let world = moto::world(&refs, 2).await;
    let specs: Vec<Spec> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let (blue, green) = world.tg(name);
            Spec::canary(name, &format!("{name}:1"), &blue, &green, 10 + i as u32)
        })
        .collect();
    let doc = desired(app(&world.infra, &specs), "1");
    let mut reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    let started = Instant::now();
    converge(&mut reconciler, &world, &doc, &mut now).await;
    let converge_time = started.elapsed();

    let mut warm = Vec::new();
    for _ in 0..5 {
        let report = reconciler.pass(&doc, now).await.expect("pass");
        assert_eq!(report.planned, 0, "converged application plans nothing");
        warm.push(report.calls);
    }
    let mut cold_reconciler =
        Reconciler::with_inputs(moto::platform().await, moto::inputs().await, None);
    let cold = cold_reconciler.pass(&doc, now).await.expect("pass").calls;
    let target = n / 10 + 3;
    println!(
        "no-op pass, {n} canary workloads ({} services): warm {} calls ({}), target <= {target}; \
         cold (after a restart) {} calls ({}); first convergence {:.1}s",
        2 * n,
        warm[4].total(),
        warm[4],
        cold.total(),
        cold,
        converge_time.as_secs_f64()
    );
    let max_mutate = warm.iter().map(|c| c.mutate).max().unwrap_or(0);
    println!("  mutating calls over 5 warm no-op passes: {max_mutate}");
}

async fn converge<P: Platform>(
    reconciler: &mut Reconciler<P>,
    world: &World,
    doc: &runtime::DesiredDocument,
    now: &mut Timestamp,
) {
    for _ in 0..20 {
        let report = reconciler.pass(doc, *now).await.expect("pass");
        moto::settle(world).await;
        *now = now.plus(Duration::from_secs(1));
        if report.planned == 0 && report.requeue_after.is_none() {
            return;
        }
    }
    panic!("did not converge");
}

/// Reports the instant each RegisterTaskDefinition call is made, with its image.
#[derive(Debug)]
struct Timed<P> {
    inner: P,
    registered: tokio::sync::mpsc::UnboundedSender<(String, Instant)>,
}

impl<P: Platform> Platform for Timed<P> {
    async fn observe(&self, app: &Application) -> Result<Observation, PlatformError> {
        self.inner.observe(app).await
    }

    async fn apply(
        &self,
        app: &Application,
        action: &Action,
        arn: Option<&str>,
    ) -> Result<ActionOutcome, PlatformError> {
        if let Action::RegisterTaskDefinition { definition, .. } = action {
            let _ = self
                .registered
                .send((definition.container.image.clone(), Instant::now()));
        }
        self.inner.apply(app, action, arn).await
    }

    fn api_calls(&self) -> CallCounts {
        self.inner.api_calls()
    }

    fn estimate_calls(&self, action: &Action, observed: &ObservedState) -> CallEstimate {
        self.inner.estimate_calls(action, observed)
    }
}

fn yaml(world: &World, tag: &str) -> String {
    let i = &world.infra;
    format!(
        "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: {name}, environment: bench}}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: {cluster}
      subnets: [{subnet}]
      securityGroups: [{sg}]
      executionRoleArn: arn:aws:iam::123456789012:role/exec
  workloads:
    - name: web
      image: web:{tag}
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8000
      strategy: {{rolling: {{}}}}
",
        name = i.app_name,
        cluster = i.cluster,
        subnet = i.subnets[0],
        sg = i.security_groups[0],
    )
}

async fn reaction_time(changes: usize) {
    let world = moto::world(&[], 0).await;
    let clients = moto::clients().await;
    let bucket = moto::unique("docs");
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    let put = |tag: String| {
        let s3 = clients.s3.clone();
        let bucket = bucket.clone();
        let body = yaml(&world, &tag);
        async move {
            s3.put_object()
                .bucket(bucket)
                .key("app.yaml")
                .body(body.into_bytes().into())
                .send()
                .await
                .expect("put document");
        }
    };
    put("0".into()).await;

    let uri = format!("s3://{bucket}/app.yaml");
    let source = DocumentSource::open(&uri, Some(moto::REGION))
        .await
        .expect("source");
    let mut watcher = Watcher::new(source, WatchConfig::default());
    let first = loop {
        if let Update::Applied { .. } = watcher.next().await
            && let Some(in_force) = watcher.in_force()
        {
            break runtime::DesiredDocument {
                app: (*in_force.document).clone(),
                revision: in_force.revision.clone(),
            };
        }
    };
    let (tx, mut registered) = tokio::sync::mpsc::unbounded_channel();
    let platform = Timed {
        inner: moto::platform().await,
        registered: tx,
    };
    let (feed, documents) = tokio::sync::watch::channel(Feed::from(first));
    tokio::spawn(async move {
        loop {
            if let Update::Applied { .. } = watcher.next().await
                && let Some(in_force) = watcher.in_force()
            {
                feed.send_replace(Feed::from(runtime::DesiredDocument {
                    app: (*in_force.document).clone(),
                    revision: in_force.revision.clone(),
                }));
            }
        }
    });
    tokio::spawn(async move {
        let mut reconciler = Reconciler::with_inputs(platform, moto::inputs().await, None);
        runtime::run(
            &mut reconciler,
            documents,
            LoopConfig::default(),
            std::future::pending(),
        )
        .await;
    });
    // The first revision's registration.
    let _ = registered.recv().await;
    moto::settle(&world).await;

    let mut samples = Vec::new();
    for change in 1..=changes {
        // Spread the writes over the poll period so they do not phase-lock with it.
        tokio::time::sleep(Duration::from_millis(300 + (change as u64 * 373) % 1000)).await;
        let tag = format!("{change}");
        put(tag.clone()).await;
        let written = Instant::now();
        loop {
            let (image, at) = registered.recv().await.expect("the loop is running");
            if image == format!("web:{tag}") {
                samples.push(at.saturating_duration_since(written));
                break;
            }
        }
        moto::settle(&world).await;
    }
    samples.sort();
    let pct = |p: f64| samples[((samples.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "S3 document change -> RegisterTaskDefinition over {} changes (poll 1s): p50 {:.0} ms, p90 {:.0} ms, max {:.0} ms; target p50 <= 2000 ms",
        samples.len(),
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.9).as_secs_f64() * 1000.0,
        pct(1.0).as_secs_f64() * 1000.0
    );
}
