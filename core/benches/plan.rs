//! One planner pass over a generated application of 500 workloads, half of them in the
//! middle of a rollout, against the same application at rest (the baseline, measured in
//! the same run). Run with `cargo bench -p tugboat-core --bench plan`.
//!
//! The inputs are built the way the controller builds them: the planner plans against
//! an empty platform, a perfect platform applies every action, and that repeats until
//! the application is at rest; then half the workloads get a new image and the passes
//! go on until those stand at a manual pause (canary at 20%, blue/green before the
//! promotion). The measured pass is the one the controller would run next.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use tugboat_core::document::{Application, Slot};
use tugboat_core::observed::{ObservedRule, ObservedService, ObservedState};
use tugboat_core::plan::{Action, plan};
use tugboat_core::status::{AppStatus, Phase, Timestamp};

const WORKLOADS: usize = 500;

/// A valid document with `n` workloads: 9 in 10 canaries, the rest blue/green; `images`
/// gives each workload's image tag.
fn document(n: usize, image: impl Fn(usize) -> u32) -> Application {
    let mut yaml = String::from(
        "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: fleet, environment: bench}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: fleet
      subnets: [subnet-0123456789abcdef0]
      securityGroups: [sg-0123456789abcdef0]
      executionRoleArn: arn:aws:iam::123456789012:role/exec
      listenerArn: arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/fleet/0123456789abcdef/0123456789abcdef
  status: {uri: s3://fleet-state/bench/status.json}
  workloads:
",
    );
    for i in 0..n {
        let strategy = if i % 10 == 9 {
            "blueGreen: {autoPromotionEnabled: false, scaleDownDelay: 30s}".to_string()
        } else {
            "canary: {steps: [{setWeight: 20}, {pause: {}}, {setWeight: 50}, {pause: {duration: 5m}}, {setWeight: 100}]}".to_string()
        };
        yaml.push_str(&format!(
            "    - name: svc{i}
      image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/svc{i}:{tag}
      cpu: 256
      memory: 512
      desiredCount: 2
      containerPort: 8000
      environment: {{LOG_LEVEL: info, SERVICE: svc{i}}}
      route:
        pathPatterns: [\"/svc{i}/*\"]
        priority: {priority}
        targetGroups:
          blue: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/svc{i}-blue/0123456789abcdef
          green: arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/svc{i}-green/0123456789abcdef
      strategy: {{{strategy}}}
",
            tag = image(i),
            priority = i + 1,
        ));
    }
    tugboat_core::validate::load(&yaml, "bench.yaml").unwrap_or_else(|e| panic!("{e}"))
}

/// Applies an action the way a healthy platform would.
fn apply(observed: &mut ObservedState, action: &Action) {
    match action {
        Action::RegisterTaskDefinition { content_hash, .. } => {
            observed
                .task_definitions
                .insert(content_hash.clone(), format!("arn:td/{content_hash}"));
        }
        Action::CreateService {
            workload,
            service,
            slot,
            content_hash,
            desired_count,
            ..
        } => {
            let svc = ObservedService {
                name: service.clone(),
                owned: true,
                content_hash: Some(content_hash.clone()),
                task_definition_arn: None,
                desired_count: *desired_count,
                running_count: *desired_count,
                deployment_complete: true,
                deployment_failed: false,
                healthy_targets: *desired_count,
            };
            let w = observed.workloads.entry(workload.clone()).or_default();
            match slot {
                Some(s) => {
                    w.slots.insert(*s, svc);
                }
                None => w.service = Some(svc),
            }
        }
        Action::UpdateService {
            workload,
            service,
            content_hash,
            desired_count,
        } => {
            let w = observed.workloads.entry(workload.clone()).or_default();
            let svc = w
                .service
                .iter_mut()
                .chain(w.slots.values_mut())
                .find(|s| &s.name == service)
                .expect("updated service exists");
            if let Some(hash) = content_hash {
                svc.content_hash = Some(hash.clone());
            }
            if let Some(count) = desired_count {
                svc.desired_count = *count;
            }
            svc.running_count = svc.desired_count;
            svc.healthy_targets = svc.desired_count;
        }
        Action::SetWeights {
            workload,
            blue,
            green,
            priority,
            path_patterns,
            ..
        } => {
            observed.workloads.entry(workload.clone()).or_default().rule = Some(ObservedRule {
                arn: Some(format!("arn:rule/{workload}")),
                owned: true,
                weights: [(Slot::Blue, *blue), (Slot::Green, *green)].into(),
                priority: Some(*priority),
                path_patterns: path_patterns.clone(),
                unexpected: Vec::new(),
            });
        }
        Action::StartAnalysis { .. } => {}
        // The bench documents scale nothing.
        Action::EnsureScaling { .. } | Action::RemoveScaling { .. } => {}
        // Nor do they have header routes.
        Action::SetHeaderRoute { .. } | Action::RemoveHeaderRoute { .. } => {}
    }
}

/// Passes against a perfect platform (the clock moving a minute each) until one plans
/// nothing; returns the observation and status the next pass would start from.
fn settle(
    app: &Application,
    mut observed: ObservedState,
    mut status: Option<AppStatus>,
    now: &mut Timestamp,
) -> (ObservedState, Option<AppStatus>) {
    for _ in 0..20 {
        let p = plan(app, &observed, status.as_ref(), *now);
        let done = p.actions.is_empty();
        for a in &p.actions {
            apply(&mut observed, &a.action);
        }
        status = Some(p.status);
        *now = now.plus(std::time::Duration::from_secs(60));
        if done {
            break;
        }
    }
    (observed, status)
}

fn planner_pass(c: &mut Criterion) {
    let mut now = Timestamp::from_secs(1_800_000_000);
    let at_rest = document(WORKLOADS, |_| 1);
    let (observed, status) = settle(&at_rest, ObservedState::default(), None, &mut now);
    let phases = |s: &Option<AppStatus>, phase: Phase| {
        s.as_ref().map_or(0, |s| {
            s.workloads.values().filter(|w| w.phase == phase).count()
        })
    };
    assert_eq!(phases(&status, Phase::Healthy), WORKLOADS, "all at rest");

    let rolling_out = document(WORKLOADS, |i| if i % 2 == 0 { 2 } else { 1 });
    let (mid_observed, mid_status) =
        settle(&rolling_out, observed.clone(), status.clone(), &mut now);
    let mid = mid_status.as_ref().map_or(0, |s| {
        s.workloads.values().filter(|w| w.canary.is_some()).count()
    });
    assert_eq!(mid, WORKLOADS / 2, "half the workloads are mid-rollout");
    assert_eq!(phases(&mid_status, Phase::Paused), WORKLOADS / 2);

    let mut group = c.benchmark_group("plan_500_workloads");
    group.bench_function("at_rest", |b| {
        b.iter(|| {
            plan(
                black_box(&at_rest),
                black_box(&observed),
                status.as_ref(),
                now,
            )
        })
    });
    group.bench_function("half_mid_rollout", |b| {
        b.iter(|| {
            plan(
                black_box(&rolling_out),
                black_box(&mid_observed),
                mid_status.as_ref(),
                now,
            )
        })
    });
    group.finish();
}

criterion_group!(benches, planner_pass);
criterion_main!(benches);
