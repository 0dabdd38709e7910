//! Benchmark (not a test): one controller, many applications. AWS calls per no-op pass
//! and pass latency for 20 applications of 10 workloads each against 1 application of
//! 10, against moto's server through the real SDK, with ONE set of token buckets for
//! the account shared by every application (as `tugboat run --source s3://b/prefix/`
//! runs them: each application its own loop, all concurrent). Figures are printed as
//! ratios against the single application measured in the same run.
//!
//! Each application's workloads are canaries (two slots, two target groups, a rule), so
//! a no-op pass reads services, rules and target health as the real thing does.
//!
//! Run it through `bench/multiapp.sh`, which starts moto and sets `AWS_ENDPOINT_URL`.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::moto::{self, World};
use common::{Spec, app, desired};
use tugboat::budget::Budgets;
use tugboat::platform::aws::{AwsClients, AwsPlatform};
use tugboat::runtime::{DesiredDocument, Reconciler, SideInputs};
use tugboat::status::Timestamp;

const WORKLOADS: usize = 10;
const ROUNDS: usize = 5;

#[tokio::main]
async fn main() {
    let apps: usize = std::env::args()
        .skip_while(|a| a != "--apps")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let one = measure(1).await;
    let many = measure(apps).await;
    println!("== {apps} applications x {WORKLOADS} workloads vs 1 application (same run, moto)");
    println!(
        "calls per no-op pass, per application: 1 app {:.1}, {apps} apps {:.1} (ratio {:.2})",
        one.calls_per_pass,
        many.calls_per_pass,
        many.calls_per_pass / one.calls_per_pass
    );
    println!(
        "calls per round (every application passes once): {:.0} vs {:.0} (ratio {:.2}; {apps}x the work)",
        one.calls_per_round,
        many.calls_per_round,
        many.calls_per_round / one.calls_per_round
    );
    println!(
        "pass latency p50: {:?} vs {:?} (ratio {:.2}); p90: {:?} vs {:?} (ratio {:.2})",
        one.p50,
        many.p50,
        many.p50.as_secs_f64() / one.p50.as_secs_f64(),
        one.p90,
        many.p90,
        many.p90.as_secs_f64() / one.p90.as_secs_f64()
    );
    println!(
        "round wall time (all applications concurrently): {:?} vs {:?} (ratio {:.2})",
        one.round,
        many.round,
        many.round.as_secs_f64() / one.round.as_secs_f64()
    );
    println!(
        "mutating calls in no-op passes: {} and {}",
        one.mutating, many.mutating
    );
}

struct Figures {
    calls_per_pass: f64,
    calls_per_round: f64,
    p50: Duration,
    p90: Duration,
    round: Duration,
    mutating: u64,
}

async fn measure(apps: usize) -> Figures {
    // One world per application (its own cluster, listener and target groups).
    let budgets = Arc::new(Budgets::new());
    let clients = moto::clients().await;
    let mut members: Vec<(World, DesiredDocument, Reconciler<AwsPlatform>)> = Vec::new();
    for _ in 0..apps {
        let names: Vec<String> = (0..WORKLOADS).map(|i| format!("w{i}")).collect();
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
        let reconciler = Reconciler::with_inputs(
            AwsPlatform::new(AwsClients::clone(&clients), budgets.clone()),
            SideInputs::aws(&clients, budgets.clone()),
            None,
        );
        members.push((world, doc, reconciler));
    }
    let mut now = Timestamp::from_secs(1_000);
    for (world, doc, reconciler) in &mut members {
        for _ in 0..20 {
            let report = reconciler.pass(doc, now).await.expect("pass");
            moto::settle(world).await;
            now = now.plus(Duration::from_secs(1));
            if report.planned == 0 && report.requeue_after.is_none() {
                break;
            }
        }
    }
    let mut latencies = Vec::new();
    let mut calls = 0u64;
    let mut mutating = 0u64;
    let mut rounds = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let passes = members.iter_mut().map(|(_, doc, reconciler)| async move {
            let t = Instant::now();
            let report = reconciler.pass(doc, now).await.expect("pass");
            (t.elapsed(), report.calls, report.planned)
        });
        for (latency, c, planned) in join_all(passes).await {
            assert_eq!(planned, 0, "a converged application plans nothing");
            latencies.push(latency);
            calls += c.total();
            mutating += c.mutate;
        }
        rounds.push(started.elapsed());
    }
    latencies.sort();
    rounds.sort();
    let passes = (apps * ROUNDS) as f64;
    Figures {
        calls_per_pass: calls as f64 / passes,
        calls_per_round: calls as f64 / ROUNDS as f64,
        p50: latencies[latencies.len() / 2],
        p90: latencies[latencies.len() * 9 / 10],
        round: rounds[rounds.len() / 2],
        mutating,
    }
}

/// Runs the futures concurrently on this task (no `futures` crate in the tree).
async fn join_all<F: std::future::Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let futures: Vec<F> = futures.into_iter().collect();
    let mut pinned: Vec<std::pin::Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<F::Output>> = (0..pinned.len()).map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in pinned.iter_mut().enumerate() {
            if outputs[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(out) => outputs[i] = Some(out),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(|o| o.expect("ready")).collect()
}
