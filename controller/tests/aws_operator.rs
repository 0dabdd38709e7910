//! The operator verbs end to end against moto's server: `tugboat run` as a process, the
//! verbs as processes writing SSM parameters, and the listener rule they move.
//!
//! moto runs no tasks: [`moto::settle`] plays ECS (services reach their desired count)
//! and the target groups hold registered IPs standing for healthy tasks.

mod common;
mod ops;

use std::time::{Duration, Instant};

use common::moto;
use ops::{App, Kill, at_the_pause, phase, step, text};

#[tokio::test]
async fn set_weight_pins_the_rule_clear_resumes_and_promote_finishes() {
    let app = App::new().await;
    let _controller = Kill(app.run());
    at_the_pause(&app).await;

    let out = app.verb(&[
        "set-weight",
        "api",
        "50",
        "--reason",
        "INC-9",
        "--for",
        "1h",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("the pin on the rule and in the status", |s, w| {
        let pin = s.workloads["api"].pin.as_ref();
        w == Some((50, 50)) && pin.is_some_and(|p| p.weight == 50 && p.until.is_some())
    })
    .await;
    let s = app.read_status().unwrap();
    let pin = s.workloads["api"].pin.clone().unwrap();
    assert_eq!(pin.reason.as_deref(), Some("INC-9"), "{pin:?}");
    assert!(
        pin.since.is_some(),
        "when it was written, from SSM: {pin:?}"
    );
    assert_eq!(step(&s), Some(1), "a pin never moves the step");

    // The SSM parameter the verb wrote, with the reason as its description.
    let ssm = moto::clients().await.ssm;
    let name = format!("{}/api/weight", app.prefix);
    let got = ssm
        .get_parameter()
        .name(&name)
        .send()
        .await
        .expect("parameter");
    let value = got.parameter().and_then(|p| p.value()).unwrap_or_default();
    assert!(value.contains("\"weight\":50"), "{value}");

    // Out of range: refused, nothing written.
    let out = app.verb(&["set-weight", "api", "101"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let again = ssm
        .get_parameter()
        .name(&name)
        .send()
        .await
        .expect("parameter");
    assert_eq!(
        again.parameter().map(|p| p.version()),
        got.parameter().map(|p| p.version()),
        "a refused command writes nothing"
    );

    let out = app.verb(&["set-weight", "api", "--clear"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("the pause's 20% back once the pin is gone", |s, w| {
        s.workloads["api"].pin.is_none() && w == Some((80, 20)) && step(s) == Some(1)
    })
    .await;

    let out = app.verb(&["promote", "api", "--reason", "metrics fine"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("promoted to green", |s, w| {
        phase(s) == "Healthy" && step(s).is_none() && w == Some((0, 100))
    })
    .await;
    let s = app.read_status().unwrap();
    assert!(
        s.workloads["api"]
            .events
            .iter()
            .any(|e| e.message.contains("metrics fine")),
        "the reason is in the events: {:#?}",
        s.workloads["api"].events
    );
    // No rollout now: set-weight is refused.
    let out = app.verb(&["set-weight", "api", "10"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[tokio::test]
async fn abort_puts_the_weight_back_and_scales_the_canary_down() {
    let app = App::new().await;
    let _controller = Kill(app.run());
    at_the_pause(&app).await;
    let out = app.verb(&["abort", "api", "--reason", "5xx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("aborted, weight back on blue", |s, w| {
        phase(s) == "Aborted" && w == Some((100, 0))
    })
    .await;
    // While the abort unwinds a retry would be spent on nothing: refused.
    if app
        .read_status()
        .is_some_and(|s| s.workloads["api"].canary.is_some())
    {
        let out = app.verb(&["retry", "api"]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    app.until(
        "the abort unwound: no canary, the revision rejected",
        |s, _| {
            let api = &s.workloads["api"];
            api.canary.is_none() && api.aborted_hash.is_some()
        },
    )
    .await;
    assert_eq!(
        moto::service(&app.world, "api-green").await.map(|s| s.0),
        Some(0),
        "the canary scaled down"
    );
    let out = app.verb(&["retry", "api"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("retried: the canary at its 20% again", |s, w| {
        step(s) == Some(1) && w == Some((80, 20))
    })
    .await;
}

#[tokio::test]
async fn undo_after_a_restart_goes_back_fast_to_the_revision_stable_before() {
    let app = App::new().await;
    let controller = Kill(app.run());
    at_the_pause(&app).await;
    let first = app.read_status().unwrap().workloads["api"]
        .stable
        .clone()
        .unwrap()
        .hash;
    let out = app.verb(&["promote", "api"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("api:2 stable on green, blue scaled down", |s, w| {
        let api = &s.workloads["api"];
        phase(s) == "Healthy"
            && api.canary.is_none()
            && w == Some((0, 100))
            && api.scale_down.is_none()
    })
    .await;
    // The controller restarts: only the persisted status remembers api:1.
    drop(controller);
    let _controller = Kill(app.run());
    let s = app.read_status().unwrap();
    assert_eq!(s.workloads["api"].stable_history.first(), Some(&first));

    let out = app.verb(&["undo", "api", "--reason", "INC-77"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    app.until("api:1 stable again on blue with all traffic", |s, w| {
        let api = &s.workloads["api"];
        api.stable.as_ref().is_some_and(|r| r.hash == first) && w == Some((100, 0))
    })
    .await;
    let s = app.read_status().unwrap();
    let api = &s.workloads["api"];
    assert!(
        api.undo.as_ref().is_some_and(|u| u.fast && !u.ended),
        "{:?}",
        api.undo
    );
    assert!(
        api.events
            .iter()
            .any(|e| e.message.contains("every step skipped")),
        "{:#?}",
        api.events
    );
    let undone_at = api
        .events
        .iter()
        .find(|e| e.reason == "Undo")
        .map(|e| e.at)
        .expect("an Undo event");
    assert!(
        !api.events
            .iter()
            .any(|e| e.at >= undone_at && e.message.contains("step 1 of 3 completed")),
        "no step ran after the undo: {:#?}",
        api.events
    );
    // A new document revision ends the undo.
    app.write("api:3");
    app.until("api:3 rolling out, the undo ended", |s, _| {
        let api = &s.workloads["api"];
        api.undo.as_ref().is_some_and(|u| u.ended) && api.canary.is_some()
    })
    .await;
}

/// The benchmark behind `bench/operator.sh` (not a test: no timed assertion). Time from
/// `tugboat set-weight` starting to the rule reading back the weight it asked for
/// (the ModifyRule it caused), over 24 changes; and, as the baseline measured in the
/// same run, the time the command itself takes to exit. Prints p50 and p90 of each.
#[tokio::test]
#[ignore = "a benchmark: bench/operator.sh runs it"]
async fn bench_operator_command_to_modify_rule() {
    let app = App::new().await;
    let _controller = Kill(app.run());
    at_the_pause(&app).await;
    let mut to_rule = Vec::new();
    let mut command = Vec::new();
    for i in 0..24 {
        let weight = if i % 2 == 0 { 30 } else { 40 };
        let started = Instant::now();
        let out = app.verb(&["set-weight", "api", &weight.to_string()]);
        command.push(started.elapsed());
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        let deadline = started + Duration::from_secs(60);
        loop {
            if app.weights().await == Some((100 - weight, weight)) {
                break;
            }
            assert!(Instant::now() < deadline, "the rule never showed {weight}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        to_rule.push(started.elapsed());
        // Let the status settle so the next change starts from rest.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let pct = |v: &mut Vec<Duration>, p: f64| {
        v.sort();
        v[((v.len() as f64 - 1.0) * p).round() as usize]
    };
    let (p50, p90) = (pct(&mut to_rule, 0.5), pct(&mut to_rule, 0.9));
    let (b50, b90) = (pct(&mut command, 0.5), pct(&mut command, 0.9));
    println!(
        "BENCH changes={} command_to_rule p50={:.0}ms p90={:.0}ms | command_exit (baseline) \
         p50={:.0}ms p90={:.0}ms | ratio p50={:.2} p90={:.2}",
        to_rule.len(),
        p50.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3,
        b50.as_secs_f64() * 1e3,
        b90.as_secs_f64() * 1e3,
        p50.as_secs_f64() / b50.as_secs_f64(),
        p90.as_secs_f64() / b90.as_secs_f64(),
    );
}
