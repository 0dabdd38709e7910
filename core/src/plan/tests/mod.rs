//! Named table tests for every transition and failure path of the planner.
//!
//! Most tests drive a tiny simulated platform (`World`) that applies each plan's actions
//! to the observed state the way ECS and the ALB would, then plan again: that exercises
//! the same level-triggered passes the controller runs. `World::tasks_healthy` decides
//! whether new tasks ever pass their health checks.
//!
//! The World checks the safety invariants on every action it applies, so every test
//! checks them too: no weight onto a slot without healthy targets or without running
//! tasks, and no slot scaled to 0 while the rule gives it weight (as read at the start
//! of the pass, or now). Its registry counts task-definition revisions per content hash,
//! and `forget` empties the observation's definitions, as a fresh controller may see.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::document::Strategy;
use crate::observed::{
    Answer, ObservedRule, ObservedService, ResolvedModel, TakenMeasurement, WeightPin,
    WorkloadOverrides,
};
use crate::status::AnalysisPhase;

const DOC: &str = r#"
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: shop, environment: test}
spec:
  platform:
    aws:
      region: us-east-1
      cluster: c
      subnets: [subnet-1]
      securityGroups: [sg-1]
      executionRoleArn: arn:aws:iam::123456789012:role/exec
      listenerArn: arn:listener
  analysisTemplates:
    - name: errors
      provider: {web: {url: "http://metrics/errors"}}
      query: /rate
      successCondition: result < 0.01
  models:
    - name: clf
      storeUri: s3://models/clf
      versionParameter: /ml/version
  workloads:
    - name: api
      image: api:1
      cpu: 256
      memory: 512
      desiredCount: 2
      containerPort: 8000
      route: {pathPatterns: ["/api/*"], priority: 10, targetGroups: {blue: tg-api-blue, green: tg-api-green}}
      strategy:
        canary:
          steps:
            - setWeight: 20
            - pause: {duration: 1m}
            - analysis: {templates: [{templateName: errors}]}
            - setWeight: 50
            - pause: {}
            - setWeight: 100
          scaleDownDelay: 30s
          abortScaleDownDelay: 20s
          progressDeadline: 5m
    - name: ml
      image: ml:1
      cpu: 512
      memory: 1024
      desiredCount: 1
      containerPort: 8000
      model: clf
      route: {pathPatterns: ["/ml/*"], priority: 20, targetGroups: {blue: tg-ml-blue, green: tg-ml-green}}
      strategy:
        blueGreen: {autoPromotionEnabled: false, scaleDownDelay: 1m}
    - name: worker
      image: worker:1
      cpu: 256
      memory: 512
      desiredCount: 3
      containerPort: 9000
      strategy: {rolling: {}}
"#;

fn doc() -> Application {
    serde_saphyr::from_str(DOC).expect("test document parses")
}

fn with_image(mut app: Application, workload: &str, image: &str) -> Application {
    app.spec
        .workloads
        .iter_mut()
        .find(|w| w.name == workload)
        .unwrap()
        .image = image.to_string();
    app
}

fn workload_mut<'a>(app: &'a mut Application, workload: &str) -> &'a mut Workload {
    app.spec
        .workloads
        .iter_mut()
        .find(|w| w.name == workload)
        .unwrap()
}

/// `app` with the canary steps of `workload` replaced by `steps` (YAML flow syntax).
fn with_steps(mut app: Application, workload: &str, steps: &str) -> Application {
    let parsed: Vec<crate::document::CanaryStep> =
        serde_saphyr::from_str(steps).expect("test steps parse");
    match &mut workload_mut(&mut app, workload).strategy {
        Strategy::Canary(c) => c.steps = parsed,
        _ => panic!("{workload} is not a canary workload"),
    }
    app
}

fn model(version: &str) -> ModelResolution {
    ModelResolution::Resolved(ResolvedModel {
        version: version.into(),
        uri: format!("s3://models/clf/{version}"),
        sha256: "ab".repeat(32),
    })
}

const T0: Timestamp = Timestamp(1_700_000_000_000);

/// A simulated platform: applies actions the way ECS and the ALB would.
struct World {
    app: Application,
    observed: ObservedState,
    /// The status the last pass persisted: the planner's memory.
    status: Option<AppStatus>,
    now: Timestamp,
    /// Whether tasks started by a create/update become healthy targets.
    tasks_healthy: bool,
    /// The platform's registry: revisions registered per content hash. Like the AWS
    /// platform, it looks the hash up before registering, so a definition it already
    /// has is reported, not registered again.
    revisions: BTreeMap<String, u32>,
    /// Whether the registry looks the content hash up before registering.
    lookup_before_register: bool,
    /// Rule weights per workload as observed at the start of the current pass.
    weights_at_pass_start: BTreeMap<String, (u32, u32)>,
    log: Vec<Action>,
    /// A slow load balancer: how many passes still read the old weights after a
    /// `SetWeights` (0: the next pass reads the new ones).
    weight_lag: usize,
    /// Rules requested but not yet visible in the read-back: (passes left, workload, rule).
    lagging_rules: Vec<(usize, String, ObservedRule)>,
    /// When set, only the first `n` actions of the next pass are applied (the rest fail,
    /// as when the executor stops at the first error); reset after that pass.
    apply_only: Option<usize>,
    /// The analysis runner's providers: what every template of a run answers, by run id
    /// (`finish_analysis` sets it for the runs live at the time). A run with no answer
    /// is not measured: it stays Running.
    answers: BTreeMap<String, Answer>,
    /// Measurements the runner took, per template, over the whole test.
    measured: BTreeMap<String, usize>,
}

impl World {
    fn new(app: Application) -> Self {
        let mut observed = ObservedState::default();
        observed.models.insert("clf".into(), model("v1"));
        World {
            app,
            observed,
            status: None,
            now: T0,
            tasks_healthy: true,
            revisions: BTreeMap::new(),
            lookup_before_register: true,
            weights_at_pass_start: BTreeMap::new(),
            log: Vec::new(),
            weight_lag: 0,
            lagging_rules: Vec::new(),
            apply_only: None,
            answers: BTreeMap::new(),
            measured: BTreeMap::new(),
        }
    }

    /// The analysis runner, as the controller runs it before planning: every measurement
    /// the persisted status says is due at `now`, answered by `answers`.
    fn measure(&mut self) {
        self.observed.measurements.clear();
        let Some(status) = &self.status else {
            return;
        };
        for due in crate::analysis::due(&self.app, status, self.now) {
            let Some(answer) = self.answers.get(&due.run) else {
                continue;
            };
            *self.measured.entry(due.template.clone()).or_default() += 1;
            let samples = crate::analysis::template(&self.app, &due.template)
                .and_then(|t| t.sample_query.as_ref())
                .map(|_| Answer::Value(crate::condition::Value::Number(1000.0)));
            self.observed
                .measurements
                .entry(due.workload.clone())
                .or_default()
                .push(TakenMeasurement {
                    run: due.run,
                    template: due.template,
                    started_at: self.now,
                    finished_at: self.now,
                    answer: answer.clone(),
                    samples,
                });
        }
    }

    /// The live analysis runs of `workload`.
    fn live_runs(&self, workload: &str) -> Vec<crate::status::AnalysisRunStatus> {
        self.status
            .as_ref()
            .and_then(|s| s.workloads.get(workload))
            .map(|s| {
                s.analysis_runs
                    .iter()
                    .filter(|r| crate::analysis::is_live(r))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every template of the live runs of `workload` answers `answer` from now on.
    fn answer(&mut self, workload: &str, answer: Answer) {
        let runs = self.live_runs(workload);
        assert!(!runs.is_empty(), "analysis started");
        for run in runs {
            self.answers.insert(run.id, answer.clone());
        }
    }

    /// Plans one pass, applies its actions, stores its status. Returns the plan.
    fn pass(&mut self) -> Plan {
        self.measure();
        let plan = plan(&self.app, &self.observed, self.status.as_ref(), self.now);
        self.weights_at_pass_start = self
            .observed
            .workloads
            .iter()
            .filter_map(|(name, w)| {
                let r = w.rule.as_ref()?;
                Some((name.clone(), (r.weight(Slot::Blue), r.weight(Slot::Green))))
            })
            .collect();
        let applied = self.apply_only.take().unwrap_or(plan.actions.len());
        for planned in plan.actions.iter().take(applied) {
            self.apply(&planned.action);
        }
        // A header route is never kept past a whole pass on a slot without healthy
        // targets: the pass that sees the targets gone removes it.
        if applied == plan.actions.len() {
            for (name, w) in &self.observed.workloads {
                if let Some(slot) = w.header_route.as_ref().and_then(|h| h.slot) {
                    let targets = w.slots.get(&slot).map_or(0, |s| s.healthy_targets);
                    assert!(
                        targets > 0,
                        "{name}'s header route kept on {slot} without healthy targets"
                    );
                }
            }
        }
        self.tick_lagging_rules();
        self.status = Some(plan.status.clone());
        plan
    }

    /// A slow load balancer: rules requested earlier become visible once their lag ran
    /// out, in the order they were requested.
    fn tick_lagging_rules(&mut self) {
        let mut still = Vec::new();
        for (left, workload, rule) in std::mem::take(&mut self.lagging_rules) {
            if left == 0 {
                self.observed.workloads.entry(workload).or_default().rule = Some(rule);
            } else {
                still.push((left - 1, workload, rule));
            }
        }
        self.lagging_rules = still;
    }

    /// The weights the load balancer really applies for `workload` now (the last one
    /// requested, even when the read-back does not show it yet).
    fn real_weights(&self, workload: &str) -> Option<(u32, u32)> {
        let lagging = self
            .lagging_rules
            .iter()
            .rev()
            .find(|(_, w, _)| w == workload)
            .map(|(_, _, r)| r);
        let rule = lagging.or(self
            .observed
            .workloads
            .get(workload)
            .and_then(|w| w.rule.as_ref()))?;
        Some((rule.weight(Slot::Blue), rule.weight(Slot::Green)))
    }

    /// Runs passes (advancing the clock by `step` each) until one plans nothing and sets
    /// no timer, at most `max` passes. Returns the last plan.
    fn settle(&mut self, step: Duration, max: usize) -> Plan {
        let mut last = self.pass();
        for _ in 0..max {
            if last.actions.is_empty() && last.requeue_after.is_none() {
                return last;
            }
            self.now = self.now.plus(step);
            last = self.pass();
        }
        last
    }

    fn apply(&mut self, action: &Action) {
        self.log.push(action.clone());
        let healthy = self.tasks_healthy;
        match action.clone() {
            Action::RegisterTaskDefinition { content_hash, .. } => {
                let known = self.revisions.contains_key(&content_hash);
                if !known || !self.lookup_before_register {
                    *self.revisions.entry(content_hash.clone()).or_default() += 1;
                }
                self.observed
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
                assert!(
                    self.observed.task_definitions.contains_key(&content_hash),
                    "service created with an unregistered definition"
                );
                let svc = ObservedService {
                    name: service,
                    owned: true,
                    content_hash: Some(content_hash),
                    task_definition_arn: None,
                    desired_count,
                    running_count: desired_count,
                    deployment_complete: true,
                    deployment_failed: false,
                    healthy_targets: if healthy { desired_count } else { 0 },
                };
                let w = self.observed.workloads.entry(workload).or_default();
                match slot {
                    Some(s) => {
                        w.slots.insert(s, svc);
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
                let real_weights = self.real_weights(&workload);
                let scaled = self
                    .app
                    .workload(&workload)
                    .is_some_and(|spec| spec.auto_scaling.is_some());
                let w = self.observed.workloads.get_mut(&workload).unwrap();
                let svc = w
                    .service
                    .iter_mut()
                    .chain(w.slots.values_mut())
                    .find(|s| s.name == service)
                    .expect("updated service exists");
                if let Some(h) = content_hash {
                    svc.content_hash = Some(h);
                }
                if desired_count == Some(0)
                    && let Some((&slot, _)) = w.slots.iter().find(|(_, s)| s.name == service)
                {
                    let weight = |weights: Option<(u32, u32)>| {
                        weights.map_or(0, |(b, g)| if slot == Slot::Blue { b } else { g })
                    };
                    assert!(
                        w.header_route.as_ref().and_then(|h| h.slot) != Some(slot),
                        "{service} scaled down while the header route still forwards to it"
                    );
                    let before = weight(self.weights_at_pass_start.get(&workload).copied());
                    let real = weight(real_weights);
                    assert!(
                        real == 0,
                        "{service} scaled down while the load balancer still gives it {real}% \
                         (not read back yet)"
                    );
                    let now = weight(
                        w.rule
                            .as_ref()
                            .map(|r| (r.weight(Slot::Blue), r.weight(Slot::Green))),
                    );
                    assert!(
                        before == 0 && now == 0,
                        "{service} scaled down while the rule gives it weight \
                         ({before}% at the start of the pass, {now}% now)"
                    );
                }
                // On a scaled workload no slot with weight is scaled down at all (the
                // scaler shrinks the stable itself; tugboat never shrinks a serving slot).
                if scaled
                    && let Some(n) = desired_count
                    && let Some((&slot, current)) = w.slots.iter().find(|(_, s)| s.name == service)
                    && n < current.desired_count
                {
                    let weight = |weights: Option<(u32, u32)>| {
                        weights.map_or(0, |(b, g)| if slot == Slot::Blue { b } else { g })
                    };
                    let before = weight(self.weights_at_pass_start.get(&workload).copied());
                    let real = weight(real_weights);
                    let now = weight(
                        w.rule
                            .as_ref()
                            .map(|r| (r.weight(Slot::Blue), r.weight(Slot::Green))),
                    );
                    assert!(
                        before == 0 && real == 0 && now == 0,
                        "{service} scaled down from {} to {n} while it carries weight \
                         ({before}% at the start of the pass, {real}% real, {now}% now)",
                        current.desired_count
                    );
                }
                let svc = w
                    .service
                    .iter_mut()
                    .chain(w.slots.values_mut())
                    .find(|s| s.name == service)
                    .expect("updated service exists");
                if let Some(n) = desired_count {
                    svc.desired_count = n;
                    svc.running_count = n;
                }
                svc.healthy_targets = if healthy { svc.desired_count } else { 0 };
            }
            Action::SetWeights {
                workload,
                blue,
                green,
                priority,
                path_patterns,
                ..
            } => {
                let lag = self.weight_lag;
                let w = self.observed.workloads.entry(workload.clone()).or_default();
                for (slot, weight) in [(Slot::Blue, blue), (Slot::Green, green)] {
                    if weight > 0 {
                        let svc = w.slots.get(&slot).or(w.service.as_ref());
                        let targets = svc.map_or(0, |s| s.healthy_targets);
                        let running = svc.map_or(0, |s| s.running_count);
                        assert!(
                            targets > 0,
                            "weight {weight} sent to {slot} without healthy targets"
                        );
                        assert!(
                            running > 0,
                            "weight {weight} sent to {slot} without running tasks"
                        );
                    }
                }
                let rule = ObservedRule {
                    arn: Some("arn:rule".into()),
                    owned: true,
                    weights: BTreeMap::from([(Slot::Blue, blue), (Slot::Green, green)]),
                    priority: Some(priority),
                    path_patterns,
                    unexpected: Vec::new(),
                };
                if lag == 0 || w.rule.is_none() {
                    w.rule = Some(rule);
                } else {
                    self.lagging_rules.push((lag, workload, rule));
                }
            }
            Action::SetHeaderRoute {
                workload,
                name,
                priority,
                slot,
                matches,
                ..
            } => {
                let w = self.observed.workloads.entry(workload).or_default();
                let svc = w.slots.get(&slot);
                let targets = svc.map_or(0, |s| s.healthy_targets);
                let running = svc.map_or(0, |s| s.running_count);
                assert!(
                    targets > 0 && running > 0,
                    "header route {name} sent to {slot} without healthy targets"
                );
                w.header_route = Some(crate::observed::ObservedHeaderRoute {
                    name,
                    slot: Some(slot),
                    priority: Some(priority),
                    matches,
                });
            }
            Action::RemoveHeaderRoute { workload, .. } => {
                let w = self.observed.workloads.entry(workload).or_default();
                w.header_route = None;
            }
            // The run is in the status already; the runner measures it from there.
            Action::StartAnalysis { .. } => {}
            Action::EnsureScaling {
                workload,
                service,
                auto_scaling,
            } => {
                let w = self.observed.workloads.entry(workload).or_default();
                w.scaling.retain(|s| s.service != service);
                w.scaling.push(crate::observed::ObservedScaling {
                    service,
                    auto_scaling,
                    unmanaged_policies: Vec::new(),
                });
            }
            Action::RemoveScaling { workload, service } => {
                let w = self.observed.workloads.entry(workload).or_default();
                w.scaling.retain(|s| s.service != service);
            }
        }
    }

    fn status(&self, workload: &str) -> &WorkloadStatus {
        &self.status.as_ref().unwrap().workloads[workload]
    }

    fn weights(&self, workload: &str) -> (u32, u32) {
        let r = self.observed.workloads[workload].rule.as_ref().unwrap();
        (r.weight(Slot::Blue), r.weight(Slot::Green))
    }

    fn slot(&mut self, workload: &str, slot: Slot) -> &mut ObservedService {
        self.observed
            .workloads
            .get_mut(workload)
            .unwrap()
            .slots
            .get_mut(&slot)
            .unwrap()
    }

    fn rule(&mut self, workload: &str) -> &mut ObservedRule {
        self.observed
            .workloads
            .get_mut(workload)
            .and_then(|w| w.rule.as_mut())
            .expect("the workload has a rule")
    }

    fn service(&mut self, workload: &str) -> &mut ObservedService {
        self.observed
            .workloads
            .get_mut(workload)
            .and_then(|w| w.service.as_mut())
            .expect("the workload has a single service")
    }

    fn operator(&mut self, workload: &str, kind: OperatorActionKind, version: u64) {
        self.observed
            .overrides
            .entry(workload.into())
            .or_default()
            .action = Some(OperatorAction { kind, version });
    }

    /// The live runs of `workload` get answers that end them with `outcome` at their
    /// next measurement (the test template `errors` passes below 0.01; no data is
    /// inconclusive).
    fn finish_analysis(&mut self, workload: &str, outcome: AnalysisPhase) {
        let answer = match outcome {
            AnalysisPhase::Succeeded => Answer::Value(crate::condition::Value::Number(0.001)),
            AnalysisPhase::Failed => Answer::Value(crate::condition::Value::Number(0.5)),
            AnalysisPhase::Inconclusive => Answer::NoData("empty vector".into()),
            AnalysisPhase::Running => Answer::Error("still running".into()),
        };
        self.answer(workload, answer);
    }

    /// A converged application on the blue slots, clock at T0 + 1h.
    fn converged() -> World {
        World::converged_with(doc())
    }

    /// A converged `app` on the blue slots, clock at T0 + 1h.
    fn converged_with(app: Application) -> World {
        let mut w = World::new(app);
        w.settle(Duration::from_secs(1), 10);
        w.now = w.now.plus(Duration::from_secs(3600));
        w
    }

    /// The observation forgets the task definitions (a fresh controller that has not
    /// listed them yet); the platform's registry keeps them.
    fn forget(&mut self) {
        self.observed.task_definitions.clear();
    }

    fn events(&self, workload: &str, reason: &str) -> usize {
        self.status(workload)
            .events
            .iter()
            .filter(|e| e.reason == reason)
            .count()
    }
}

fn actions_of<'a>(plan: &'a Plan, workload: &str) -> Vec<&'a Action> {
    plan.actions
        .iter()
        .map(|p| &p.action)
        .filter(|a| a.workload() == workload)
        .collect()
}

fn kinds(plan: &Plan, workload: &str) -> Vec<&'static str> {
    actions_of(plan, workload)
        .into_iter()
        .map(|a| match a {
            Action::RegisterTaskDefinition { .. } => "register",
            Action::CreateService { .. } => "create",
            Action::UpdateService { .. } => "update",
            Action::SetWeights { .. } => "weights",
            Action::StartAnalysis { .. } => "analysis",
            Action::EnsureScaling { .. } => "scale",
            Action::RemoveScaling { .. } => "unscale",
            Action::SetHeaderRoute { .. } => "header",
            Action::RemoveHeaderRoute { .. } => "unheader",
        })
        .collect()
}

/// A converged world whose api workload has a new image; the first pass of the rollout
/// has been planned and applied.
fn canary_started() -> (World, Plan) {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "api", "api:2");
    let p = w.pass();
    (w, p)
}

/// Drives the api canary to its analysis step and lets the analysis succeed.
fn canary_past_analysis() -> World {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisPhase::Succeeded);
    w
}

impl World {
    fn plan_only(&self) -> Plan {
        plan(&self.app, &self.observed, self.status.as_ref(), self.now)
    }
}

mod aborts;
mod adversarial;
mod analysis;
mod blocked;
mod blue_green;
mod canary;
mod converge;
mod drift;
mod followups;
mod gate;
mod header_route;
mod implicit_full;
mod operator;
mod restart;
mod rolling;
mod safety;
mod scaling;
mod state;
mod sweep;
mod undo;
