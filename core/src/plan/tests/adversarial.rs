//! Red-team findings: inputs a user or a reviewer can produce (a recorded observation, a
//! lost status, a stale inbox, a slow load balancer) that broke a safety promise of the
//! README ("What a rollout never does"). Each test failed on the planner before the fix
//! named in its doc comment.

use super::*;
use crate::observed::WeightPin;

use super::safety::canary_at_manual_pause_60;

/// Found with `tugboat diff --observed`: a canary waits at its manual pause, the status
/// is lost, and the operator inbox still holds the `promote` written for an earlier
/// rollout (SSM keeps the last value). Without status `handledActionVersion` reads 0, so
/// the old promote was taken again and the pause skipped (`SetWeights 0/100`).
#[test]
fn lost_status_never_acts_on_a_promote_written_before_the_restart() {
    let mut w = canary_at_manual_pause_60();
    // The promote that ended the previous pause is still in the inbox, handled.
    w.operator("api", OperatorActionKind::Promote, 3);
    w.status
        .as_mut()
        .unwrap()
        .workloads
        .get_mut("api")
        .unwrap()
        .handled_action_version = 3;
    assert!(kinds(&w.pass(), "api").is_empty(), "handled: nothing moves");
    w.status = None;
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), Vec::<&str>::new(), "{:#?}", p.actions);
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Paused, "{}", s.message);
    assert_eq!(s.canary.as_ref().map(|c| c.step_index), Some(1));
    assert_eq!(w.weights("api"), (40, 60));
    // Still paused a pass later, and a promote written now (a new version) continues.
    assert!(kinds(&w.pass(), "api").is_empty());
    w.operator("api", OperatorActionKind::Promote, 4);
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 0,
            green: 100,
            ..
        }]
    ));
}

/// Found with `tugboat diff --observed`: an operator pins the canary at 50% while it is
/// at step 2 (20%, timed pause), the status is lost. The observed 50% is the pin's, not a
/// step's, but the rollout resumed after `setWeight 50`; once the pin expired it waited
/// at the manual pause, the timed pause and the analysis never ran.
#[test]
fn lost_status_under_a_weight_pin_does_not_resume_past_the_analysis() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20, at the timed pause
    let expires = w.now.plus(Duration::from_secs(600));
    w.observed
        .overrides
        .entry("api".into())
        .or_default()
        .weight_pin = Some(WeightPin {
        weight: 50,
        reason: None,
        expires: Some(expires),
    });
    w.pass();
    assert_eq!(w.weights("api"), (50, 50), "the pin holds 50%");
    w.status = None;
    w.pass();
    w.now = expires.plus(Duration::from_secs(1));
    w.observed.overrides.clear();
    // Walk on: whatever the planner does now, the analysis must be started before the
    // canary goes past 20% again, and no promote is given.
    let mut analysis_started = false;
    for _ in 0..20 {
        let p = w.pass();
        if kinds(&p, "api").contains(&"analysis") {
            analysis_started = true;
            break;
        }
        w.now = w.now.plus(Duration::from_secs(30));
    }
    assert!(
        analysis_started,
        "no analysis ran; the rollout is at step {:?}: {}",
        w.status("api").canary.as_ref().map(|c| c.step_index + 1),
        w.status("api").message
    );
    assert_eq!(
        w.weights("api"),
        (80, 20),
        "analysed at the weight before it"
    );
}

/// Found with `tugboat diff --observed`: a pin at 100% on the canary, then the status is
/// lost. The rule (green 100, blue 0) looked like a finished rollout, so green was taken
/// as stable and blue, the only revision that passed nothing yet, scaled down after the
/// delay: the timed pause, the analysis and the manual pause never ran.
#[test]
fn lost_status_under_a_full_weight_pin_neither_promotes_nor_scales_down() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    let expires = w.now.plus(Duration::from_secs(600));
    w.observed
        .overrides
        .entry("api".into())
        .or_default()
        .weight_pin = Some(WeightPin {
        weight: 100,
        reason: Some("load test".into()),
        expires: Some(expires),
    });
    w.pass();
    assert_eq!(w.weights("api"), (0, 100), "the pin holds 100%");
    w.status = None;
    let mut analysis_started = false;
    for i in 0..40 {
        if i == 20 {
            w.now = expires.plus(Duration::from_secs(1));
            w.observed.overrides.clear();
        }
        let p = w.pass();
        assert!(
            !actions_of(&p, "api").iter().any(|a| matches!(a,
                Action::UpdateService { service, desired_count: Some(0), .. } if service == "api-blue")),
            "pass {i}: the stable blue slot is scaled down: {}",
            w.status("api").message
        );
        if kinds(&p, "api").contains(&"analysis") {
            analysis_started = true;
            break;
        }
        w.now = w.now.plus(Duration::from_secs(30));
    }
    assert!(analysis_started, "{}", w.status("api").message);
    let s = w.status("api");
    assert_eq!(s.stable.as_ref().and_then(|r| r.slot), Some(Slot::Blue));
    assert_eq!(w.weights("api"), (80, 20));
}

/// Found by the red team: the model fails to resolve right after a restart that lost the
/// status (both on a controller coming up while SSM or S3 is failing). With no status,
/// the blocked workload's safety reactions had nothing to act on: the canary lost its
/// healthy targets and kept its 20%.
#[test]
fn blocked_workload_without_status_still_moves_weight_off_a_canary_without_healthy_targets() {
    let mut w = super::safety::model_canary_at_20();
    w.status = None;
    super::safety::model_fails(&mut w);
    w.slot("api", Slot::Green).healthy_targets = 0;
    let p = w.pass();
    assert!(
        matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights {
                blue: 100,
                green: 0,
                ..
            }]
        ),
        "{:#?}\n{}",
        actions_of(&p, "api"),
        w.status("api").message
    );
    assert_eq!(w.status("api").phase, Phase::Blocked);
}

/// A service tugboat does not own appears mid-rollout right after a restart that lost
/// the status: the operator's abort was ignored (the safety reactions needed a status).
/// The document's revision is known here, so the rollout is inferred and the abort
/// returns the weight to the stable slot, touching nothing tugboat does not own.
#[test]
fn blocked_by_an_unowned_service_without_status_still_honours_an_operator_abort() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    w.status = None;
    w.slot("api", Slot::Green).owned = false;
    w.operator("api", OperatorActionKind::Abort, 1);
    let p = w.pass();
    assert!(
        matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights {
                blue: 100,
                green: 0,
                ..
            }]
        ),
        "{:#?}\n{}",
        actions_of(&p, "api"),
        w.status("api").message
    );
    assert_eq!(w.events("api", reason::OPERATOR_ABORT), 1);
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert!(
        kinds(&p, "api").is_empty(),
        "the unowned canary is not scaled down"
    );
    assert_eq!(w.status("api").phase, Phase::Blocked);
}

/// Without status and without the model, nobody can tell which slot is stable: an abort
/// is not guessed at (sending all traffic to the wrong slot would promote the canary).
/// It stays pending, and an event says why and what to do.
#[test]
fn blocked_model_without_status_keeps_an_abort_pending_and_says_why() {
    let mut w = super::safety::model_canary_at_20();
    w.status = None;
    super::safety::model_fails(&mut w);
    w.operator("api", OperatorActionKind::Abort, 1);
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), Vec::<&str>::new());
    let s = w.status("api");
    assert_eq!(s.handled_action_version, 0, "the abort is still pending");
    let said = s
        .events
        .iter()
        .filter(|e| e.message.contains("cannot tell which slot is stable"))
        .count();
    assert_eq!(said, 1, "{:#?}", s.events);
    w.pass();
    let said_again = w
        .status("api")
        .events
        .iter()
        .filter(|e| e.message.contains("cannot tell which slot is stable"))
        .count();
    assert_eq!(said_again, 1, "said once, not every pass");
    // The model resolves again: the pending abort is taken.
    w.observed.models.insert("clf".into(), model("v1"));
    let p = w.pass();
    assert!(matches!(
        actions_of(&p, "api")[..],
        [Action::SetWeights {
            blue: 100,
            green: 0,
            ..
        }]
    ));
}

/// Found with `tugboat diff --observed`: ALB weights are relative (0-999 each), so a rule
/// set by hand to blue 100 / green 100 sends half the traffic to each. Without status,
/// the planner read green's 100 as 100% and finished the rollout (`SetWeights 0/100`),
/// skipping the timed pause, the analysis and the manual pause.
#[test]
fn lost_status_reads_rule_weights_as_shares_of_their_sum() {
    for (raw, share, step_index) in [((100, 100), 50, 4), ((800, 200), 20, 1), ((4, 1), 20, 1)] {
        let (mut w, _) = canary_started();
        w.pass();
        w.pass(); // 80/20
        w.status = None;
        w.rule("api").weights = BTreeMap::from([(Slot::Blue, raw.0), (Slot::Green, raw.1)]);
        let p = w.pass();
        for a in actions_of(&p, "api") {
            if let Action::SetWeights { blue, green, .. } = a {
                assert_eq!(
                    (*blue, *green),
                    (100 - share, share),
                    "{raw:?}: only the same shares, written as percentages"
                );
            }
        }
        let s = w.status("api");
        assert_eq!(
            s.canary.as_ref().map(|c| c.step_index),
            Some(step_index),
            "{raw:?}: {}",
            s.message
        );
        assert!(!s.operator_paused, "{raw:?}: a step's weight, no hold");
    }
    // 20.5% is no step's weight, though it rounds down to one: it holds for an operator.
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.status = None;
    w.rule("api").weights = BTreeMap::from([(Slot::Blue, 795), (Slot::Green, 205)]);
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), Vec::<&str>::new());
    let s = w.status("api");
    assert!(s.operator_paused, "{}", s.message);
    assert_eq!(s.phase, Phase::Paused);
}

/// Drives passes (30 s apart) until a `StartAnalysis` is planned; panics if the canary
/// goes past `limit`% first, or after `max` passes.
fn analysis_before_weight_past(w: &mut World, limit: u32, max: usize) {
    for i in 0..max {
        let p = w.pass();
        for a in actions_of(&p, "api") {
            match a {
                Action::StartAnalysis { .. } => return,
                Action::SetWeights { green, .. } if *green > limit => panic!(
                    "pass {i}: green {green}% with no new analysis: {}",
                    w.status("api").message
                ),
                _ => {}
            }
        }
        w.now = w.now.plus(Duration::from_secs(30));
    }
    panic!("no analysis in {max} passes: {}", w.status("api").message);
}

/// Found by the red team: an analysis run is known only by (hash, step), so the run that
/// succeeded in an earlier attempt of the same revision (aborted later by an operator,
/// then retried) was taken as this attempt's: the retried rollout went past its
/// analysis step without analysing anything.
#[test]
fn a_retried_rollout_runs_its_analysis_again() {
    let mut w = canary_past_analysis();
    w.pass(); // analysis succeeded: 50%
    w.pass(); // at the manual pause
    assert_eq!(w.weights("api"), (50, 50));
    w.operator("api", OperatorActionKind::Abort, 1);
    for _ in 0..6 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(30));
    }
    assert_eq!(w.status("api").phase, Phase::Aborted);
    assert!(
        w.status("api").canary.is_none(),
        "{}",
        w.status("api").message
    );
    w.operator("api", OperatorActionKind::Retry, 2);
    analysis_before_weight_past(&mut w, 20, 20);
}

/// As above, for a restart: after a lost status the rollout resumes before its
/// analysis; a run that finished before the restart is not this attempt's either.
#[test]
fn a_rollout_resumed_without_status_runs_its_analysis_again() {
    let mut w = canary_past_analysis();
    w.status = None;
    analysis_before_weight_past(&mut w, 20, 20);
}

/// Found with `tugboat diff --status`: the step list is the document's, the step index
/// the status's. Editing the steps mid-rollout (say, adding an analysis because the
/// canary looks wrong) kept the index: a rollout at the manual pause at 30% (index 5 of
/// `10, pause, 20, pause, 30, pause, 100`) landed on index 5 of the new list, its final
/// `setWeight 100`, and shifted everything without the new pause and analysis.
#[test]
fn editing_the_steps_mid_rollout_never_skips_the_new_gates() {
    let old = "[{setWeight: 10}, {pause: {}}, {setWeight: 20}, {pause: {}}, {setWeight: 30}, \
               {pause: {}}, {setWeight: 100}]";
    let mut w = World::converged_with(with_steps(doc(), "api", old));
    w.app = with_image(w.app.clone(), "api", "api:2");
    for v in 1..=2 {
        for _ in 0..3 {
            w.pass();
        }
        w.operator("api", OperatorActionKind::Promote, v);
    }
    for _ in 0..3 {
        w.pass();
    }
    assert_eq!(w.weights("api"), (70, 30));
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 5);
    // The document's steps become `20, pause 1m, analysis, 50, pause {}, 100`: 30% is
    // no step's weight there, so the rollout holds until an operator says go on.
    w.app = with_image(doc(), "api", "api:2");
    let p = w.pass();
    assert_eq!(
        kinds(&p, "api"),
        Vec::<&str>::new(),
        "{}",
        w.status("api").message
    );
    assert_eq!(w.status("api").phase, Phase::Paused);
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    w.operator("api", OperatorActionKind::Resume, 3);
    analysis_before_weight_past(&mut w, 30, 20);
}

/// A status whose step index is past the end of the step list (hand-edited, or from a
/// longer list) does not finish the rollout.
#[test]
fn a_step_index_past_the_end_does_not_finish_the_rollout() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    w.status
        .as_mut()
        .unwrap()
        .workloads
        .get_mut("api")
        .unwrap()
        .canary
        .as_mut()
        .unwrap()
        .step_index = 99;
    analysis_before_weight_past(&mut w, 20, 20);
}

/// Sets the api workload's persisted status with `edit`.
fn edit_status(w: &mut World, edit: impl FnOnce(&mut WorkloadStatus)) {
    edit(w.status.as_mut().unwrap().workloads.get_mut("api").unwrap());
}

/// No action moves the canary's revision onto a slot that carries weight, or weight
/// onto the slot that runs it.
fn assert_revision_not_forced(p: &Plan) {
    for a in actions_of(p, "api") {
        match a {
            Action::UpdateService {
                service,
                content_hash,
                ..
            } => assert!(
                content_hash.is_none(),
                "{service} switched to {content_hash:?} while it carries traffic"
            ),
            Action::SetWeights { blue, green, .. } => {
                panic!("weights moved to {blue}/{green} on a status that contradicts what runs")
            }
            _ => {}
        }
    }
}

/// Found with `tugboat diff --status`: a status naming the same slot as stable and as
/// the canary (edited by hand, or corrupted) made the planner switch that slot, which
/// carries 80% of traffic, to the canary's revision and send it all traffic.
#[test]
fn a_status_naming_one_slot_stable_and_canary_changes_nothing() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    edit_status(&mut w, |s| s.canary.as_mut().unwrap().slot = Slot::Blue);
    let p = w.pass();
    assert_revision_not_forced(&p);
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Blocked, "{}", s.message);
    assert!(s.message.contains("status"), "{}", s.message);
}

/// Found with `tugboat diff --status`: a status from an old copy that has the slots the
/// other way round (stable green, canary blue) while blue serves 80% of the old
/// revision: the planner switched both weighted slots' revisions at once and sent all
/// traffic to green.
#[test]
fn a_status_with_the_slots_the_other_way_round_changes_nothing() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20: blue old, green the canary
    edit_status(&mut w, |s| {
        s.stable.as_mut().unwrap().slot = Some(Slot::Green);
        s.canary.as_mut().unwrap().slot = Slot::Blue;
    });
    let p = w.pass();
    assert_revision_not_forced(&p);
    assert_eq!(w.status("api").phase, Phase::Blocked);
}

/// Found by the sweep (an abort, then the status lost a pass later, under a slow load
/// balancer) and reproduced without the lag: an operator aborts a canary that just got
/// 100%, the abort's `SetWeights` fails, and the status is lost. The rule still reads
/// green 100 / blue 0, so green, the aborted canary, was taken as stable, the pending
/// abort had nothing to act on, and blue was scaled down after the delay.
#[test]
fn lost_status_right_after_an_abort_never_promotes_the_aborted_canary() {
    let mut w = canary_at_manual_pause_60();
    w.operator("api", OperatorActionKind::Promote, 1);
    w.pass(); // SetWeights 0/100 applied
    assert_eq!(w.weights("api"), (0, 100));
    w.operator("api", OperatorActionKind::Abort, 2);
    w.apply_only = Some(0); // the abort's SetWeights 100/0 fails
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["weights"]);
    assert!(
        w.status("api")
            .canary
            .as_ref()
            .is_some_and(|c| c.aborted.is_some())
    );
    w.status = None;
    let p = w.pass();
    assert!(
        matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights {
                blue: 100,
                green: 0,
                ..
            }]
        ),
        "{:#?}\n{}",
        actions_of(&p, "api"),
        w.status("api").message
    );
    for _ in 0..6 {
        w.now = w.now.plus(Duration::from_secs(30));
        w.pass();
    }
    let s = w.status("api");
    assert_eq!(
        s.stable.as_ref().and_then(|r| r.slot),
        Some(Slot::Blue),
        "{}",
        s.message
    );
    assert_eq!(w.weights("api"), (100, 0));
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
}

/// Found by the sweep (an abort under a load balancer whose read-back lags two passes):
/// the canary's first `setWeight 20` was still on its way when the operator aborted, and
/// the read-back (100/0, from before it) matched the abort's goal, so the drain delay
/// started at once and the canary was scaled down just before the late 20% landed on it.
/// A canary weight requested and never read back is now superseded by sending the
/// stable weights again, and the drain counts from a later read-back.
#[test]
fn an_abort_never_drains_on_a_read_back_older_than_its_last_weight_request() {
    let (mut w, _) = canary_started(); // green created
    w.weight_lag = 2;
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["weights"], "setWeight 20 sent");
    assert_eq!(w.weights("api"), (100, 0), "not read back yet");
    w.operator("api", OperatorActionKind::Abort, 1);
    // The World checks every scale-down against the weights the balancer really has.
    for _ in 0..12 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(20));
    }
    let s = w.status("api");
    assert_eq!(s.phase, Phase::Aborted, "{}", s.message);
    assert!(s.canary.is_none(), "{}", s.message);
    assert_eq!(w.weights("api"), (100, 0));
    assert_eq!(w.slot("api", Slot::Green).desired_count, 0);
}

/// While a status contradicts what runs nothing can act, so an operator action written
/// then stays pending: before, the abort was marked handled and lost, and once the
/// status was corrected by hand (keeping `handledActionVersion`) it never happened.
#[test]
fn an_abort_written_while_the_status_contradicts_what_runs_is_kept_for_later() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    let swap = |s: &mut WorkloadStatus| {
        let stable = s.stable.as_mut().unwrap();
        let canary = s.canary.as_mut().unwrap();
        stable.slot = Some(canary.slot);
        canary.slot = canary.slot.other();
    };
    edit_status(&mut w, swap);
    w.operator("api", OperatorActionKind::Abort, 1);
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), Vec::<&str>::new());
    assert_eq!(w.status("api").phase, Phase::Blocked);
    assert_eq!(w.status("api").handled_action_version, 0, "still pending");
    edit_status(&mut w, swap); // corrected by hand
    let p = w.pass();
    assert!(
        matches!(
            actions_of(&p, "api")[..],
            [Action::SetWeights {
                blue: 100,
                green: 0,
                ..
            }]
        ),
        "{:#?}\n{}",
        actions_of(&p, "api"),
        w.status("api").message
    );
}

/// Found by the red team: a timed pause's clock kept running while its canary had lost
/// its healthy targets and its weight. A canary unhealthy for the whole 1m pause at 20%
/// got its 20% back and went straight to the analysis: the minute at 20% never
/// happened. The pause now counts from the read-back of its weight.
#[test]
fn a_timed_pause_counts_only_while_the_canary_holds_its_weight() {
    let (mut w, _) = canary_started();
    w.pass(); // 80/20 sent
    w.pass(); // read back: the 1m pause starts
    assert_eq!(w.status("api").canary.as_ref().unwrap().step_index, 1);
    w.slot("api", Slot::Green).healthy_targets = 0;
    for _ in 0..4 {
        w.now = w.now.plus(Duration::from_secs(30));
        w.pass();
    }
    assert_eq!(w.weights("api"), (100, 0), "weight back on stable");
    w.slot("api", Slot::Green).healthy_targets = 2;
    let mut back_at: Option<Timestamp> = None;
    for i in 0..12 {
        w.now = w.now.plus(Duration::from_secs(10));
        if w.weights("api") == (80, 20) {
            back_at.get_or_insert(w.now);
        }
        let p = w.pass();
        if kinds(&p, "api").contains(&"analysis") {
            let back = back_at.expect("the analysis starts after the weight is back");
            assert!(
                w.now >= back.plus(Duration::from_secs(60)),
                "pass {i}: analysis {:?} after 20% was read back again, before the 1m pause",
                back.until(w.now)
            );
            return;
        }
    }
    panic!("no analysis: {}", w.status("api").message);
}

/// Found by the red team: an analysis kept its run while its canary lost its healthy
/// targets and its traffic, so a verdict measured on no traffic at all (succeeded, the
/// canary had no errors to show) moved the canary on once it recovered. The run belongs
/// to the step's clock, which restarts when the step's weight comes back.
#[test]
fn an_analysis_measured_while_its_canary_had_no_traffic_is_run_again() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass();
    w.now = w.now.plus(Duration::from_secs(60));
    let p = w.pass();
    assert_eq!(kinds(&p, "api"), ["analysis"]);
    w.slot("api", Slot::Green).healthy_targets = 0;
    w.pass();
    assert_eq!(w.weights("api"), (100, 0), "the canary lost its traffic");
    w.finish_analysis("api", AnalysisPhase::Succeeded);
    w.slot("api", Slot::Green).healthy_targets = 2;
    analysis_before_weight_past(&mut w, 20, 10);
}

/// Found with `tugboat diff --observed`: after an aborted rollout had drained (the
/// canary slot scaled to 0, still on the aborted revision), a lost status rolled the
/// aborted revision out again at once, as if it were new; the abort's promise ("not
/// again until an operator retries or the document changes") was lost with the status.
#[test]
fn lost_status_after_an_abort_does_not_roll_the_aborted_revision_out_again() {
    let (mut w, _) = canary_started();
    w.pass();
    w.pass(); // 80/20
    w.operator("api", OperatorActionKind::Abort, 1);
    for _ in 0..6 {
        w.pass();
        w.now = w.now.plus(Duration::from_secs(30));
    }
    assert_eq!(w.status("api").phase, Phase::Aborted);
    assert!(w.status("api").canary.is_none());
    assert_eq!(w.slot("api", Slot::Green).desired_count, 0);
    w.observed.overrides.clear(); // the abort long handled and gone from the inbox
    w.status = None;
    for _ in 0..3 {
        let p = w.pass();
        assert_eq!(
            kinds(&p, "api"),
            Vec::<&str>::new(),
            "{}",
            w.status("api").message
        );
        assert_eq!(w.status("api").phase, Phase::Aborted);
        w.now = w.now.plus(Duration::from_secs(30));
    }
    w.operator("api", OperatorActionKind::Retry, 2);
    let p = w.pass();
    assert!(
        actions_of(&p, "api").iter().any(|a| matches!(a,
            Action::UpdateService { service, desired_count: Some(2), .. } if service == "api-green")),
        "a retry rolls it out: {:#?}",
        actions_of(&p, "api")
    );
}
