//! Multi-pass sweeps the table tests miss: a whole canary or blue/green rollout driven
//! pass by pass (an analysis runner and an operator answering as they would), with one
//! disturbance injected at pass `k`, for every `k`: the status dropped (a restart without
//! persisted status), a plan applied only in part (the executor stopped at an error), the
//! canary's or the stable slot's targets unhealthy for two passes, all under a load
//! balancer whose read-back lags 0, 1 or 2 passes.
//!
//! Besides the World's own checks on every action, each pass checks what the README
//! promises about the rollout as a whole: no weight past a gate (timed pause, analysis,
//! manual pause) before the gate opened, the old slot scaled down only once the delay
//! passed since the read-back first showed it at 0, and the rollout still completes.

use super::*;

/// One disturbance of a scripted rollout.
#[derive(Debug, Clone, Copy, Default)]
struct Script {
    /// The pass before which the persisted status is dropped.
    drop_status_at: Option<usize>,
    /// (pass, n): only the first n actions of that pass are applied.
    partial_at: Option<(usize, usize)>,
    /// The pass from which the canary slot has no healthy targets, for two passes.
    unhealthy_at: Option<usize>,
    /// The pass from which the stable (blue) slot has no healthy targets, for two passes.
    stable_unhealthy_at: Option<usize>,
    /// The pass before which an operator aborts the rollout.
    abort_at: Option<usize>,
    /// Passes a new weight takes to show in the read-back.
    weight_lag: usize,
}

/// How a scripted rollout went.
#[derive(Debug)]
struct Run {
    passes: usize,
    completed: bool,
    /// The last status message.
    last: String,
}

const PASS_EVERY: Duration = Duration::from_secs(20);
const MAX_PASSES: usize = 120;

fn hash_of(app: &Application, workload: &str) -> String {
    let wl = app
        .spec
        .workloads
        .iter()
        .find(|w| w.name == workload)
        .unwrap();
    let m = wl.model.as_ref().map(|_| ResolvedModel {
        version: "v1".into(),
        uri: "s3://models/clf/v1".into(),
        sha256: "ab".repeat(32),
    });
    crate::taskdef::render(app, wl, m.as_ref()).content_hash()
}

/// What must have happened before the green slot goes past a weight.
#[derive(Debug, Clone)]
struct Gates {
    /// (weight, pause): green goes past `weight` only `pause` after it first read it.
    timed: Option<(u32, Duration)>,
    /// Green goes past this weight only once the analysis (step index `.1`) passed.
    analysis: Option<(u32, usize)>,
    /// Green goes past each of these weights only after a promote given at it.
    manual: Vec<u32>,
    scale_down_delay: Duration,
    abort_scale_down_delay: Duration,
}

/// Drives `workload` of `app` from its converged revision to `image` under `script`,
/// checking `gates` on every planned weight.
fn drive(app: &Application, workload: &str, image: &str, gates: &Gates, script: Script) -> Run {
    let mut w = World::converged_with(app.clone());
    w.weight_lag = script.weight_lag;
    // The registry registers whatever it is asked to: a duplicate revision is the
    // planner's (the observation never forgets a definition here).
    w.lookup_before_register = false;
    w.app = with_image(w.app.clone(), workload, image);
    let new_hash = hash_of(&w.app, workload);
    let scale_down_delay = gates.scale_down_delay;
    let mut version = 0;
    let mut analysed = false;
    let mut promoted_at: Vec<u32> = Vec::new();
    let mut first_at_timed: Option<Timestamp> = None;
    let mut blue_zero_since: Option<Timestamp> = None;
    let mut green_zero_since: Option<Timestamp> = None;
    let mut aborted = false;
    let mut late_abort = false;
    let mut healthy_again: Option<usize> = None;
    for i in 0..MAX_PASSES {
        let ctx = format!("{script:?}, pass {i}");
        // The abort first: whether it comes in time is judged on the status before a
        // drop in the same pass.
        if script.abort_at == Some(i) {
            version += 1;
            w.operator(workload, OperatorActionKind::Abort, version);
            // An abort after the promotion has nothing left to abort, unless the status
            // is lost while the old slot still runs: then a pending abort cannot be told
            // from one that came in time, and the planner goes back to the old slot.
            // Either end is fine then.
            late_abort = true;
            aborted = w
                .status
                .as_ref()
                .and_then(|s| s.workloads.get(workload))
                .and_then(|s| s.stable.as_ref())
                .is_none_or(|r| r.hash != new_hash);
        }
        if script.drop_status_at == Some(i) {
            w.status = None;
        }
        if let Some((at, n)) = script.partial_at
            && at == i
        {
            w.apply_only = Some(n);
        }
        if script.unhealthy_at == Some(i)
            && w.observed.workloads[workload]
                .slots
                .contains_key(&Slot::Green)
        {
            w.tasks_healthy = false;
            w.slot(workload, Slot::Green).healthy_targets = 0;
            healthy_again = Some(i + 2);
        }
        if script.stable_unhealthy_at == Some(i) {
            w.slot(workload, Slot::Blue).healthy_targets = 0;
        }
        if script.stable_unhealthy_at.is_some_and(|at| at + 2 == i) {
            let s = w.slot(workload, Slot::Blue);
            s.healthy_targets = s.desired_count;
        }
        if healthy_again == Some(i) {
            w.tasks_healthy = true;
            let s = w.slot(workload, Slot::Green);
            s.healthy_targets = s.desired_count;
        }
        let (blue, green) = w.weights(workload);
        if green == 0 {
            green_zero_since.get_or_insert(w.now);
        } else {
            green_zero_since = None;
        }
        if blue == 0 {
            blue_zero_since.get_or_insert(w.now);
        } else {
            blue_zero_since = None;
        }
        if gates.timed.is_some_and(|(at, _)| green == at) {
            first_at_timed.get_or_insert(w.now);
        }
        let p = w.pass();
        for a in actions_of(&p, workload) {
            match a {
                Action::SetWeights { green, .. } => {
                    assert!(
                        !aborted || *green == 0,
                        "{ctx}: green {green}% after the operator's abort"
                    );
                    if let Some((at, pause)) = gates.timed
                        && *green > at
                    {
                        assert!(
                            first_at_timed.is_some_and(|t| w.now >= t.plus(pause)),
                            "{ctx}: green {green}% before the {pause:?} pause at {at}% ran"
                        );
                    }
                    if let Some((at, _)) = gates.analysis
                        && *green > at
                    {
                        assert!(analysed, "{ctx}: green {green}% before the analysis passed");
                    }
                    for m in &gates.manual {
                        assert!(
                            *green <= *m || promoted_at.contains(m),
                            "{ctx}: green {green}% before a promote at the manual pause at {m}%"
                        );
                    }
                }
                Action::UpdateService {
                    service,
                    desired_count: Some(0),
                    ..
                } if service == &format!("{workload}-blue") => {
                    assert!(
                        blue_zero_since.is_some_and(|t| w.now >= t.plus(scale_down_delay)),
                        "{ctx}: blue scaled down {:?} after reading 0 (delay {scale_down_delay:?})",
                        blue_zero_since.map(|t| t.until(w.now))
                    );
                }
                Action::UpdateService {
                    service,
                    desired_count: Some(0),
                    ..
                } if service == &format!("{workload}-green") => {
                    let delay = gates.abort_scale_down_delay;
                    assert!(
                        green_zero_since.is_some_and(|t| w.now >= t.plus(delay)),
                        "{ctx}: green scaled down {:?} after reading 0 (delay {delay:?})",
                        green_zero_since.map(|t| t.until(w.now))
                    );
                }
                _ => {}
            }
        }
        // The analysis runner: the canary's analysis passes.
        if let Some(run) = w.live_runs(workload).first()
            && !w.answers.contains_key(&run.id)
        {
            assert_eq!(run.hash, new_hash, "{ctx}");
            assert_eq!(
                run.step_index,
                gates.analysis.map(|(_, i)| i),
                "{ctx}: the analysis step"
            );
            w.finish_analysis(workload, AnalysisPhase::Succeeded);
            analysed = true;
        }
        // The operator: promotes a manual pause, once seen at the pause's weight.
        let s = w.status(workload).clone();
        let green_now = w.weights(workload).1;
        if s.phase == Phase::Paused
            && s.message.contains("promote")
            && gates.manual.contains(&green_now)
        {
            version += 1;
            w.operator(workload, OperatorActionKind::Promote, version);
            promoted_at.push(green_now);
        }
        let slots = &w.observed.workloads[workload].slots;
        let ended_aborted = s.phase == Phase::Aborted
            && s.canary.is_none()
            && slots.get(&Slot::Green).is_none_or(|g| g.desired_count == 0)
            && w.weights(workload) == (100, 0);
        let ended_promoted = s.stable.as_ref().is_some_and(|r| r.hash == new_hash)
            && s.canary.is_none()
            && slots[&Slot::Blue].desired_count == 0
            && w.weights(workload) == (0, 100);
        let done = if aborted {
            ended_aborted
        } else if late_abort {
            ended_aborted || ended_promoted
        } else {
            ended_promoted
        };
        for (hash, n) in &w.revisions {
            assert_eq!(*n, 1, "{ctx}: {hash} registered {n} times");
        }
        if done && p.actions.is_empty() {
            return Run {
                passes: i,
                completed: true,
                last: s.message,
            };
        }
        w.now = w.now.plus(PASS_EVERY);
    }
    let s = w.status(workload);
    Run {
        passes: MAX_PASSES,
        completed: false,
        last: format!(
            "{:?}: {} (weights {:?})",
            s.phase,
            s.message,
            w.weights(workload)
        ),
    }
}

/// Every disturbance at every pass of a rollout of `workload`.
fn sweep(app: &Application, workload: &str, image: &str, gates: Gates) {
    let baseline = drive(app, workload, image, &gates, Script::default());
    assert!(baseline.completed, "{baseline:?}");
    let n = baseline.passes + 4;
    let mut runs = 0;
    for lag in 0..=2 {
        for k in 0..n {
            for script in [
                Script {
                    drop_status_at: Some(k),
                    ..Default::default()
                },
                Script {
                    partial_at: Some((k, 0)),
                    ..Default::default()
                },
                Script {
                    partial_at: Some((k, 1)),
                    ..Default::default()
                },
                Script {
                    unhealthy_at: Some(k),
                    ..Default::default()
                },
                Script {
                    drop_status_at: Some(k),
                    unhealthy_at: Some(k),
                    ..Default::default()
                },
                Script {
                    stable_unhealthy_at: Some(k),
                    ..Default::default()
                },
                Script {
                    abort_at: Some(k),
                    ..Default::default()
                },
                Script {
                    abort_at: Some(k),
                    drop_status_at: Some(k + 1),
                    ..Default::default()
                },
                Script {
                    abort_at: Some(k),
                    unhealthy_at: Some(k),
                    ..Default::default()
                },
                Script {
                    drop_status_at: Some(k),
                    stable_unhealthy_at: Some(k),
                    ..Default::default()
                },
            ] {
                let script = Script {
                    weight_lag: lag,
                    ..script
                };
                let run = drive(app, workload, image, &gates, script);
                assert!(
                    run.completed,
                    "{script:?}: the rollout never completed: {}",
                    run.last
                );
                runs += 1;
            }
        }
    }
    assert!(runs >= 3 * 10 * 10, "only {runs} runs");
}

/// The test document's api canary: `setWeight 20, pause 1m, analysis, setWeight 50,
/// pause {}, setWeight 100`.
#[test]
fn canary_rollout_keeps_every_gate_under_any_one_disturbance_at_any_pass() {
    let gates = Gates {
        timed: Some((20, Duration::from_secs(60))),
        analysis: Some((20, 2)),
        manual: vec![50],
        scale_down_delay: Duration::from_secs(30),
        abort_scale_down_delay: Duration::from_secs(20),
    };
    sweep(&doc(), "api", "api:2", gates);
}

/// Two manual pauses, the second one past half the traffic: a lost status at either
/// must not take the heavier canary as stable, nor reuse the first pause's promote.
#[test]
fn canary_with_two_manual_pauses_keeps_both_under_any_one_disturbance_at_any_pass() {
    let app = with_steps(
        doc(),
        "api",
        "[{setWeight: 20}, {pause: {}}, {setWeight: 60}, {pause: {}}, {setWeight: 100}]",
    );
    let gates = Gates {
        timed: None,
        analysis: None,
        manual: vec![20, 60],
        scale_down_delay: Duration::from_secs(30),
        abort_scale_down_delay: Duration::from_secs(20),
    };
    sweep(&app, "api", "api:2", gates);
}

/// The test document's ml blue/green: manual promotion, `scaleDownDelay: 1m`.
#[test]
fn blue_green_rollout_keeps_every_gate_under_any_one_disturbance_at_any_pass() {
    let gates = Gates {
        timed: None,
        analysis: None,
        manual: vec![0],
        scale_down_delay: Duration::from_secs(60),
        abort_scale_down_delay: Duration::from_secs(60),
    };
    sweep(&doc(), "ml", "ml:2", gates);
}

/// Two disturbances: the status dropped at pass `k` and, at pass `j`, a plan applied
/// not at all or an operator's abort, for every pair, under each lag.
fn sweep_pairs(app: &Application, workload: &str, image: &str, gates: Gates) {
    let baseline = drive(app, workload, image, &gates, Script::default());
    assert!(baseline.completed, "{baseline:?}");
    let n = baseline.passes + 2;
    let mut runs = 0;
    for lag in 0..=1 {
        for k in 0..n {
            for j in 0..n {
                for second in [
                    Script {
                        partial_at: Some((j, 0)),
                        ..Default::default()
                    },
                    Script {
                        abort_at: Some(j),
                        ..Default::default()
                    },
                    Script {
                        unhealthy_at: Some(j),
                        ..Default::default()
                    },
                ] {
                    let script = Script {
                        drop_status_at: Some(k),
                        weight_lag: lag,
                        ..second
                    };
                    let run = drive(app, workload, image, &gates, script);
                    assert!(run.completed, "{script:?}: never completed: {}", run.last);
                    runs += 1;
                }
            }
        }
    }
    assert!(
        n >= 8 && runs == 2 * 3 * n * n,
        "{runs} runs over {n} passes"
    );
}

#[test]
fn canary_rollout_keeps_every_gate_under_a_lost_status_and_a_second_disturbance() {
    let gates = Gates {
        timed: Some((20, Duration::from_secs(60))),
        analysis: Some((20, 2)),
        manual: vec![50],
        scale_down_delay: Duration::from_secs(30),
        abort_scale_down_delay: Duration::from_secs(20),
    };
    sweep_pairs(&doc(), "api", "api:2", gates);
}

#[test]
fn blue_green_rollout_keeps_every_gate_under_a_lost_status_and_a_second_disturbance() {
    let gates = Gates {
        timed: None,
        analysis: None,
        manual: vec![0],
        scale_down_delay: Duration::from_secs(60),
        abort_scale_down_delay: Duration::from_secs(60),
    };
    sweep_pairs(&doc(), "ml", "ml:2", gates);
}
