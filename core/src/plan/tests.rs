//! Named table tests for every transition and failure path of the planner.
//!
//! Most tests drive a tiny simulated platform (`World`) that applies each plan's actions
//! to the observed state the way ECS and the ALB would, then plan again: that exercises
//! the same level-triggered passes the controller runs. `World::tasks_healthy` decides
//! whether new tasks ever pass their health checks.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::observed::{AnalysisRun, ObservedRule, ResolvedModel, WeightPin, WorkloadOverrides};

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
    registered: usize,
    log: Vec<Action>,
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
            registered: 0,
            log: Vec::new(),
        }
    }

    /// Plans one pass, applies its actions, stores its status. Returns the plan.
    fn pass(&mut self) -> Plan {
        let plan = plan(&self.app, &self.observed, self.status.as_ref(), self.now);
        for planned in &plan.actions {
            self.apply(&planned.action);
        }
        self.status = Some(plan.status.clone());
        plan
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
                self.registered += 1;
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
                let w = self.observed.workloads.entry(workload).or_default();
                for (slot, weight) in [(Slot::Blue, blue), (Slot::Green, green)] {
                    if weight > 0 {
                        let targets = w
                            .slots
                            .get(&slot)
                            .or(w.service.as_ref())
                            .map_or(0, |s| s.healthy_targets);
                        assert!(
                            targets > 0,
                            "weight {weight} sent to {slot} without healthy targets"
                        );
                    }
                }
                w.rule = Some(ObservedRule {
                    arn: Some("arn:rule".into()),
                    owned: true,
                    weights: BTreeMap::from([(Slot::Blue, blue), (Slot::Green, green)]),
                    priority: Some(priority),
                    path_patterns,
                    unexpected: Vec::new(),
                });
            }
            Action::StartAnalysis {
                workload,
                hash,
                step_index,
                ..
            } => {
                self.observed.analysis.insert(
                    workload,
                    AnalysisRun {
                        hash,
                        step_index,
                        outcome: AnalysisOutcome::Running,
                        message: String::new(),
                    },
                );
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

    fn finish_analysis(&mut self, workload: &str, outcome: AnalysisOutcome) {
        let run = self
            .observed
            .analysis
            .get_mut(workload)
            .expect("analysis started");
        run.outcome = outcome;
        run.message = format!("{outcome:?}");
    }

    /// A converged application on the blue slots, clock at T0 + 1h.
    fn converged() -> World {
        let mut w = World::new(doc());
        w.settle(Duration::from_secs(1), 10);
        w.now = w.now.plus(Duration::from_secs(3600));
        w
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
        })
        .collect()
}

// ----- first deployment and convergence ------------------------------------------------

#[test]
fn first_deployment_creates_blue_slot_without_weight_until_healthy() {
    let mut w = World::new(doc());
    w.tasks_healthy = false;
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["register", "create"]);
    assert!(matches!(actions_of(&p, "api")[1],
        Action::CreateService { slot: Some(Slot::Blue), desired_count: 2, target_group: Some(tg), .. } if tg == "tg-api-blue"));
    // Tasks not healthy yet: no rule is touched.
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    assert_eq!(w.status("api").phase, Phase::Pending);
    assert!(p.requeue_after.is_some());
}

#[test]
fn first_deployment_routes_all_traffic_once_targets_are_healthy() {
    let mut w = World::new(doc());
    w.pass();
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["weights"]);
    assert_eq!(w.weights("api"), (100, 0));
    w.pass();
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Healthy);
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Blue));
}

#[test]
fn converged_application_plans_no_actions() {
    let mut w = World::converged();
    let p = w.pass();
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
    for name in ["api", "ml", "worker"] {
        assert_eq!(w.status(name).phase, Phase::Healthy, "{name}");
    }
}

#[test]
fn unchanged_definition_is_never_registered_twice() {
    let mut w = World::converged();
    let before = w.registered;
    // Status lost (e.g. a fresh controller): the definitions exist, so none is registered.
    w.status = None;
    let p = w.pass();
    assert_eq!(w.registered, before);
    assert!(p.actions.is_empty(), "{:#?}", p.actions);
}

#[test]
fn plan_is_pure_same_inputs_same_plan() {
    let w = World::converged();
    let app = with_image(doc(), "api", "api:2");
    assert_eq!(
        plan(&app, &w.observed, w.status.as_ref(), w.now),
        plan(&app, &w.observed, w.status.as_ref(), w.now)
    );
}

// ----- drift ---------------------------------------------------------------------------------

#[test]
fn drift_desired_count_changed_by_hand_is_corrected_and_recorded() {
    let mut w = World::converged();
    w.slot("api", Slot::Blue).desired_count = 7;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::UpdateService {
            desired_count: Some(2),
            content_hash: None,
            ..
        }]
    ));
    let s = w.status("api");
    assert!(s.condition(reason::DRIFTED).unwrap().status);
    assert!(s.events.iter().any(|e| e.reason == reason::DRIFTED));
    // Next pass: converged, the condition clears.
    let p = w.pass();
    assert!(p.actions.is_empty());
    assert!(!w.status("api").condition(reason::DRIFTED).unwrap().status);
}

#[test]
fn scale_change_in_the_document_is_applied_without_calling_it_drift() {
    let mut w = World::converged();
    let api = w
        .app
        .spec
        .workloads
        .iter_mut()
        .find(|x| x.name == "api")
        .unwrap();
    api.desired_count = 5;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::UpdateService {
            desired_count: Some(5),
            content_hash: None,
            ..
        }]
    ));
    assert!(w.status("api").condition(reason::DRIFTED).is_none());
    w.pass();
    assert_eq!(w.status("api").converged_count, Some(5));
}

#[test]
fn drift_rule_weights_changed_by_hand_are_corrected() {
    let mut w = World::converged();
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 60), (Slot::Green, 40)]);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert!(w.status("api").condition(reason::DRIFTED).unwrap().status);
}

#[test]
fn rule_priority_changed_in_the_document_moves_the_rule() {
    let mut w = World::converged();
    let api = w
        .app
        .spec
        .workloads
        .iter_mut()
        .find(|x| x.name == "api")
        .unwrap();
    api.route.as_mut().unwrap().priority = 15;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            priority: 15,
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert!(w.pass().actions.is_empty());
}

#[test]
fn rule_paths_changed_by_hand_are_drift() {
    let mut w = World::converged();
    w.rule("api").path_patterns = vec!["/other/*".into()];
    let p = w.pass();
    assert!(matches!(&actions_of(&p, "api")[..],
        [Action::SetWeights { path_patterns, .. }] if path_patterns == &["/api/*"]));
    assert!(w.status("api").condition(reason::DRIFTED).unwrap().status);
}

#[test]
fn drift_task_definition_changed_by_hand_is_reverted() {
    let mut w = World::converged();
    let good = w.slot("api", Slot::Blue).content_hash.clone();
    w.slot("api", Slot::Blue).content_hash = None; // a definition tugboat did not register
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { content_hash: Some(h), .. }] if Some(h) == good.as_ref()));
}

#[test]
fn drift_idle_slot_scaled_up_by_hand_is_scaled_down() {
    let mut w = World::converged();
    let mut idle = w.slot("api", Slot::Blue).clone();
    idle.name = "api-green".into();
    w.observed
        .workloads
        .get_mut("api")
        .unwrap()
        .slots
        .insert(Slot::Green, idle);
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-green"));
}

#[test]
fn drift_on_rolling_service_is_corrected() {
    let mut w = World::converged();
    w.service("worker").desired_count = 1;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "worker")[..],
        [Action::UpdateService {
            desired_count: Some(3),
            ..
        }]
    ));
    assert!(
        w.status("worker")
            .condition(reason::DRIFTED)
            .unwrap()
            .status
    );
}

// ----- rolling -------------------------------------------------------------------------------

#[test]
fn rolling_first_deployment_creates_one_service() {
    let mut w = World::new(doc());
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["register", "create"]);
    assert!(matches!(actions_of(&p, "worker")[1],
        Action::CreateService { slot: None, service, desired_count: 3, target_group: None, .. } if service == "worker"));
}

#[test]
fn rolling_new_revision_registers_once_and_updates_the_service() {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "worker", "worker:2");
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["register", "update"]);
    assert!(kinds(&p, "api").is_empty(), "other workloads untouched");
    assert_eq!(w.status("worker").phase, Phase::Progressing);
    let p = w.pass();
    assert!(p.actions.is_empty());
    assert_eq!(w.status("worker").phase, Phase::Healthy);
}

#[test]
fn rolling_circuit_breaker_failure_is_not_pushed_again() {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "worker", "worker:bad");
    w.pass();
    // ECS rolled the service back to the old definition and marked the deployment failed.
    let old = w.status("worker").stable.clone().unwrap().hash;
    let svc = w
        .observed
        .workloads
        .get_mut("worker")
        .unwrap()
        .service
        .as_mut()
        .unwrap();
    svc.content_hash = Some(old);
    svc.deployment_failed = true;
    let p = w.pass();
    assert!(kinds(&p, "worker").is_empty());
    assert_eq!(w.status("worker").phase, Phase::Aborted);
    let p = w.pass();
    assert!(
        kinds(&p, "worker").is_empty(),
        "aborted revision is not retried"
    );
    // Retry pushes it again.
    w.service("worker").deployment_failed = false;
    w.operator("worker", OperatorActionKind::Retry, 1);
    let p = w.pass();
    assert_eq!(kinds(&p, "worker"), ["update"]);
}

// ----- canary --------------------------------------------------------------------------------

/// A converged world whose api workload has a new image; the first pass of the rollout
/// has been planned and applied.
fn canary_started() -> (World, Plan) {
    let mut w = World::converged();
    w.app = with_image(w.app.clone(), "api", "api:2");
    let p = w.pass();
    (w, p)
}

#[test]
fn canary_deploys_the_new_revision_to_the_idle_slot_at_full_size() {
    let (w, p) = canary_started();
    assert_eq!(kinds(&p, "api"), ["register", "create"]);
    assert!(matches!(actions_of(&p, "api")[1],
        Action::CreateService { slot: Some(Slot::Green), desired_count: 2, target_group: Some(tg), .. } if tg == "tg-api-green"));
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Progressing);
    assert_eq!(s.canary.as_ref().unwrap().slot, Slot::Green);
    assert!(s.events.iter().any(|e| e.reason == reason::ROLLOUT_STARTED));
}

#[test]
fn canary_gets_no_weight_before_its_targets_are_healthy() {
    let mut w = World::converged();
    w.tasks_healthy = false;
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    for _ in 0..3 {
        w.now = w.now.plus(Duration::from_secs(10));
        let p = w.pass();
        assert!(kinds(&p, "api").is_empty(), "{:?}", kinds(&p, "api"));
    }
    assert_eq!(w.weights("api"), (100, 0));
    assert!(
        w.status("api").message.contains("0/2 healthy"),
        "{}",
        w.status("api").message
    );
}

#[test]
fn canary_set_weight_is_verified_before_the_next_step() {
    let (mut w, _) = canary_started();
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 80,
            green: 20,
            ..
        }]
    ));
    let s = w.status("api");
    assert_eq!(s.desired_weight, Some(20));
    assert_eq!(
        s.canary.as_ref().unwrap().step_index,
        0,
        "not advanced until read back"
    );
    w.pass();
    let s = w.status("api");
    assert_eq!(s.verified_weight, Some(20));
    assert_eq!(s.canary.as_ref().unwrap().step_index, 1);
}

#[test]
fn canary_weight_not_read_back_is_set_again_and_step_holds() {
    let (mut w, _) = canary_started();
    w.pass(); // SetWeights 80/20 applied
    // The load balancer shows something else (propagation, or someone else's change).
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 100), (Slot::Green, 0)]);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 20, .. }]
    ));
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 0);
}

#[test]
fn canary_timed_pause_waits_its_duration_then_advances() {
    let (mut w, _) = canary_started();
    w.pass();
    let p = w.pass(); // weight verified; now in the 1m pause
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    assert_eq!(p.requeue_after, Some(Duration::from_secs(60)));
    w.now = w.now.plus(Duration::from_secs(59));
    w.pass();
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    w.now = w.now.plus(Duration::from_secs(1));
    let p = w.pass();
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 2);
    assert_eq!(kinds(&p, "api"), ["analysis"]);
}

/// Drives the api canary to its analysis step and lets the analysis succeed.
fn canary_past_analysis() -> World {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisOutcome::Succeeded);
    w
}

#[test]
fn analysis_step_starts_a_run_waits_and_advances_on_success() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::StartAnalysis { step_index: 2, .. }]
    ));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "running analysis is not started twice"
    );
    w.finish_analysis("api", AnalysisOutcome::Succeeded);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn analysis_failure_aborts_and_returns_weight_to_stable() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisOutcome::Failed);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted);
    assert!(s.events.iter().any(|e| e.reason == reason::ANALYSIS_FAILED));
}

#[test]
fn analysis_inconclusive_pauses_for_an_operator() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    w.pass();
    w.finish_analysis("api", AnalysisOutcome::Inconclusive);
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    assert_eq!(w.status("api").phase, Phase::Paused);
    w.operator("api", OperatorActionKind::Promote, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 50, .. }]
    ));
}

#[test]
fn indefinite_pause_waits_for_promote_and_promote_acts_once() {
    let mut w = canary_past_analysis();
    w.pass(); // setWeight 50
    w.pass(); // verified; at pause {}
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert_eq!(s.canary.as_ref().unwrap().step_index, 4);
    w.now = w.now.plus(Duration::from_secs(86_400));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "an indefinite pause never times out"
    );
    w.operator("api", OperatorActionKind::Promote, 7);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
    assert_eq!(w.status("api").handled_action_version, 7);
}

#[test]
fn full_shift_is_verified_then_old_slot_scales_down_after_delay() {
    let mut w = canary_past_analysis();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.pass(); // SetWeights 0/100
    let p = w.pass(); // verified: promotion
    assert!(kinds(&p, "api").is_empty());
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Healthy);
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Green));
    assert!(s.canary.is_none());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(30)));
    // Old slot keeps its tasks during the delay.
    w.now = w.now.plus(Duration::from_secs(29));
    assert!(kinds(&w.pass(), "api").is_empty());
    w.now = w.now.plus(Duration::from_secs(1));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-blue"));
    let p = w.pass();
    assert!(p.actions.is_empty());
    assert!(w.status("api").scale_down.is_none());
    assert!(
        w.status("api")
            .events
            .iter()
            .any(|e| e.reason == reason::SCALED_DOWN)
    );
}

#[test]
fn next_rollout_after_promotion_goes_back_to_the_blue_slot() {
    let mut w = canary_past_analysis();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.settle(Duration::from_secs(31), 10);
    w.app = with_image(w.app.clone(), "api", "api:3");
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::RegisterTaskDefinition { .. }, Action::UpdateService { service, desired_count: Some(2), .. }] if service == "api-blue"));
}

// ----- aborts --------------------------------------------------------------------------------

#[test]
fn operator_abort_restores_weight_then_scales_canary_down_after_delay() {
    let (mut w, _) = canary_started();
    w.pass(); // 80/20
    w.pass(); // verified
    w.operator("api", OperatorActionKind::Abort, 3);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert_eq!(w.status("api").phase, Phase::Aborted);
    // Weight verified: the canary keeps running through the drain delay.
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    assert_eq!(p.requeue_after, Some(Duration::from_secs(20)));
    w.now = w.now.plus(Duration::from_secs(20));
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(0), .. }] if service == "api-green"));
    w.pass();
    let s = w.status("api");
    assert!(s.canary.is_none());
    assert_eq!(s.phase, Phase::Aborted);
    assert!(s.aborted_hash.is_some());
}

#[test]
fn abort_never_scales_the_canary_down_before_weight_is_verified() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Abort, 1);
    // The ALB keeps showing the canary weight (e.g. ModifyRule throttled).
    for _ in 0..5 {
        w.rule("api").weights = BTreeMap::from([(Slot::Blue, 80), (Slot::Green, 20)]);
        w.now = w.now.plus(Duration::from_secs(60));
        let p = w.plan_only();
        assert!(
            matches!(
                actions_of(&p, "api")[..],
                [Action::SetWeights { blue: 100, .. }]
            ),
            "only the weight is retried: {:?}",
            kinds(&p, "api")
        );
        w.status = Some(p.status);
    }
}

impl World {
    fn plan_only(&self) -> Plan {
        plan(&self.app, &self.observed, self.status.as_ref(), self.now)
    }
}

#[test]
fn aborted_revision_is_not_retried_until_an_operator_retries() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.operator("api", OperatorActionKind::Abort, 1);
    w.settle(Duration::from_secs(30), 10);
    assert_eq!(w.status("api").phase, Phase::Aborted);
    w.now = w.now.plus(Duration::from_secs(600));
    let p = w.pass();
    assert!(kinds(&p, "api").is_empty());
    w.operator("api", OperatorActionKind::Retry, 2);
    let p = w.pass();
    assert!(matches!(actions_of(&p, "api")[..],
        [Action::UpdateService { service, desired_count: Some(2), .. }] if service == "api-green"));
    assert_eq!(w.status("api").phase, Phase::Progressing);
}

#[test]
fn a_different_revision_after_an_abort_rolls_out() {
    let (mut w, _) = canary_started();
    w.pass();
    w.operator("api", OperatorActionKind::Abort, 1);
    w.settle(Duration::from_secs(30), 10);
    w.app = with_image(w.app.clone(), "api", "api:3");
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["register", "update"]);
}

#[test]
fn progress_deadline_aborts_a_canary_that_never_becomes_healthy() {
    let mut w = World::converged();
    w.tasks_healthy = false;
    w.app = with_image(w.app.clone(), "api", "api:2");
    w.pass();
    w.now = w.now.plus(Duration::from_secs(299));
    w.pass();
    assert_eq!(w.status("api").phase, Phase::Progressing);
    w.now = w.now.plus(Duration::from_secs(1));
    w.pass();
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted);
    assert!(
        s.events
            .iter()
            .any(|e| e.reason == reason::PROGRESS_DEADLINE_EXCEEDED)
    );
}

#[test]
fn failed_canary_deployment_aborts() {
    let (mut w, _) = canary_started();
    w.slot("api", Slot::Green).deployment_failed = true;
    w.pass();
    assert_eq!(w.status("api").phase, Phase::Aborted);
}

#[test]
fn canary_that_loses_its_healthy_targets_loses_its_weight() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on green
    w.slot("api", Slot::Green).healthy_targets = 0;
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert!(
        w.status("api")
            .events
            .iter()
            .any(|e| e.reason == reason::NO_HEALTHY_TARGETS)
    );
}

#[test]
fn document_reverted_to_stable_mid_rollout_aborts_the_canary() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.app = doc();
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    assert_eq!(w.status("api").phase, Phase::Aborted);
}

#[test]
fn newer_revision_mid_rollout_moves_traffic_back_before_replacing_the_canary() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on api:2
    w.app = with_image(w.app.clone(), "api", "api:3");
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["register", "update"]);
    let c = w.status("api").canary.clone().unwrap();
    assert_eq!(c.step_index, 0);
}

// ----- operator overrides ----------------------------------------------------------------

#[test]
fn weight_pin_beats_the_steps_while_in_force() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // at the 1m pause with 20%
    w.observed.overrides.insert(
        "api".into(),
        WorkloadOverrides {
            weight_pin: Some(WeightPin {
                weight: 0,
                reason: Some("incident 42".into()),
                expires: Some(w.now.plus(Duration::from_secs(600))),
            }),
            action: None,
        },
    );
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 0, .. }]
    ));
    w.now = w.now.plus(Duration::from_secs(120));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "pinned: the pause does not advance"
    );
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused);
    assert!(s.message.contains("incident 42"));
    // Expired pin: steps resume where they were.
    w.now = w.now.plus(Duration::from_secs(600));
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["weights"]);
}

#[test]
fn operator_pause_and_resume() {
    let (mut w, _) = canary_started();
    w.operator("api", OperatorActionKind::Pause, 1);
    w.pass();
    w.pass();
    assert_eq!(w.status("api").phase, Phase::Paused);
    assert_eq!(w.weights("api"), (100, 0), "paused before the first weight");
    w.operator("api", OperatorActionKind::Resume, 2);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights { green: 20, .. }]
    ));
}

// ----- blue/green ------------------------------------------------------------------------

#[test]
fn blue_green_waits_for_promotion_then_shifts_all_traffic_at_once() {
    let mut w = World::converged();
    w.observed.models.insert("clf".into(), model("v2"));
    let p = w.pass();
    assert_eq!(
        kinds(&p, "ml"),
        ["register", "create"],
        "a model change is a new revision"
    );
    w.pass();
    assert_eq!(w.status("ml").phase, Phase::Paused);
    assert_eq!(
        w.weights("ml"),
        (100, 0),
        "preview gets no traffic before promotion"
    );
    w.operator("ml", OperatorActionKind::Promote, 1);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "ml")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
    w.pass();
    assert_eq!(w.status("ml").phase, Phase::Healthy);
    assert_eq!(w.status("ml").scale_down.as_ref().unwrap().slot, Slot::Blue);
}

#[test]
fn blue_green_with_auto_promotion_needs_no_operator() {
    let mut app = doc();
    let ml = app
        .spec
        .workloads
        .iter_mut()
        .find(|w| w.name == "ml")
        .unwrap();
    if let Strategy::BlueGreen(b) = &mut ml.strategy {
        b.auto_promotion_enabled = true;
    }
    let mut w = World::new(app);
    w.settle(Duration::from_secs(1), 10);
    w.observed.models.insert("clf".into(), model("v2"));
    w.settle(Duration::from_secs(1), 10);
    let s = w.status("ml");
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Green));
    assert_eq!(w.weights("ml"), (0, 100));
}

// ----- blocked -------------------------------------------------------------------------------

#[test]
fn unresolved_model_blocks_the_workload_and_nothing_else() {
    let mut w = World::new(doc());
    w.observed.models.insert(
        "clf".into(),
        ModelResolution::Failed("sha256 mismatch".into()),
    );
    let p = w.pass();
    assert!(kinds(&p, "ml").is_empty());
    assert!(!kinds(&p, "api").is_empty());
    let s = w.status("ml");
    assert_eq!(s.phase, Phase::Blocked);
    assert!(s.message.contains("sha256 mismatch"));
}

#[test]
fn service_not_created_by_tugboat_is_never_changed() {
    let mut w = World::new(doc());
    w.observed.workloads.insert(
        "worker".into(),
        ObservedWorkload {
            service: Some(ObservedService {
                name: "worker".into(),
                owned: false,
                desired_count: 1,
                running_count: 1,
                ..Default::default()
            }),
            ..Default::default()
        },
    );
    let p = w.pass();
    assert!(kinds(&p, "worker").is_empty());
    assert_eq!(w.status("worker").phase, Phase::Blocked);
    assert!(
        w.status("worker")
            .message
            .contains("not created by tugboat")
    );
}

#[test]
fn lost_status_mid_rollout_keeps_the_slot_with_most_traffic_as_stable() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 20% on green
    w.status = None;
    let p = w.pass();
    let s = w.status("api");
    assert_eq!(s.stable.as_ref().unwrap().slot, Some(Slot::Blue));
    assert_eq!(s.canary.as_ref().unwrap().slot, Slot::Green);
    // The rollout restarts at step 1 without registering or recreating anything.
    assert!(
        kinds(&p, "api").iter().all(|k| *k == "weights"),
        "{:?}",
        kinds(&p, "api")
    );
}
