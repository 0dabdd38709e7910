//! Table tests of `rollout_state`: one row per state, from a status and an observation.

use super::*;
use crate::status::{Abort, CanaryStatus, Revision, ScaleDown};

/// `[setWeight 20, pause 1m, analysis, setWeight 50, pause {}, setWeight 100]`
fn api_steps() -> Vec<Step> {
    effective_steps(&doc().workload("api").unwrap().strategy)
}

fn rev(slot: Slot, hash: &str) -> Revision {
    Revision {
        slot: Some(slot),
        hash: hash.into(),
    }
}

fn canary(hash: &str, aborted: bool) -> CanaryStatus {
    CanaryStatus {
        slot: Slot::Green,
        hash: hash.into(),
        started_at: T0,
        step_index: 1,
        step_started_at: T0,
        healthy_at: None,
        aborted: aborted.then(|| Abort {
            reason: "test".into(),
            at: T0,
            weight_restored_at: None,
        }),
        steps: None,
        held_since: None,
    }
}

fn svc(name: &str, hash: &str, count: u32) -> ObservedService {
    ObservedService {
        name: name.into(),
        owned: true,
        content_hash: Some(hash.into()),
        desired_count: count,
        running_count: count,
        healthy_targets: count,
        ..Default::default()
    }
}

fn seen(blue: Option<&str>, green: Option<&str>, weights: Option<(u32, u32)>) -> ObservedWorkload {
    let mut w = ObservedWorkload::default();
    if let Some(h) = blue {
        w.slots.insert(Slot::Blue, svc("api-blue", h, 2));
    }
    if let Some(h) = green {
        w.slots.insert(Slot::Green, svc("api-green", h, 2));
    }
    w.rule = weights.map(|(b, g)| ObservedRule {
        arn: Some("arn:rule".into()),
        owned: true,
        weights: BTreeMap::from([(Slot::Blue, b), (Slot::Green, g)]),
        priority: Some(10),
        path_patterns: vec!["/api/*".into()],
        unexpected: Vec::new(),
    });
    w
}

fn status(stable: Option<Revision>, canary: Option<CanaryStatus>) -> WorkloadStatus {
    WorkloadStatus {
        stable,
        canary,
        ..Default::default()
    }
}

#[test]
fn rollout_state_table_with_persisted_status() {
    let sd = ScaleDown {
        slot: Slot::Green,
        at: T0,
    };
    let mut scaling = status(Some(rev(Slot::Blue, "a")), None);
    scaling.scale_down = Some(sd.clone());
    let mut rejected = status(Some(rev(Slot::Blue, "a")), None);
    rejected.aborted_hash = Some("b".into());
    let observed = seen(Some("a"), Some("b"), Some((80, 20)));
    let rows: Vec<(&str, WorkloadStatus, &str, RolloutState)> = vec![
        (
            "at rest",
            status(Some(rev(Slot::Blue, "a")), None),
            "a",
            RolloutState::AtRest {
                stable: rev(Slot::Blue, "a"),
            },
        ),
        (
            "scaling down",
            scaling,
            "a",
            RolloutState::ScalingDown {
                stable: rev(Slot::Blue, "a"),
                scale_down: sd,
            },
        ),
        (
            "rejected",
            rejected,
            "b",
            RolloutState::Rejected {
                stable: rev(Slot::Blue, "a"),
                hash: "b".into(),
            },
        ),
        (
            "ready",
            status(Some(rev(Slot::Blue, "a")), None),
            "b",
            RolloutState::Ready {
                stable: rev(Slot::Blue, "a"),
            },
        ),
        (
            "canary",
            status(Some(rev(Slot::Blue, "a")), Some(canary("b", false))),
            "b",
            RolloutState::Canary {
                stable: rev(Slot::Blue, "a"),
                canary: canary("b", false),
            },
        ),
        (
            "superseded",
            status(Some(rev(Slot::Blue, "a")), Some(canary("b", false))),
            "c",
            RolloutState::Superseded {
                stable: rev(Slot::Blue, "a"),
                canary: canary("b", false),
            },
        ),
        (
            "reverted",
            status(Some(rev(Slot::Blue, "a")), Some(canary("b", false))),
            "a",
            RolloutState::Reverted {
                stable: rev(Slot::Blue, "a"),
                canary: canary("b", false),
            },
        ),
        (
            "unwinding",
            status(Some(rev(Slot::Blue, "a")), Some(canary("b", true))),
            "b",
            RolloutState::Unwinding {
                stable: rev(Slot::Blue, "a"),
                canary: canary("b", true),
                abort: canary("b", true).aborted.unwrap(),
            },
        ),
    ];
    assert_eq!(rows.len(), 8);
    for (name, status, desired, want) in rows {
        assert_eq!(
            rollout_state(&status, &observed, desired, &api_steps(), Hints::default()),
            want,
            "{name}"
        );
    }
}

#[test]
fn rollout_state_without_status_and_nothing_deployed_is_no_stable() {
    let nothing = ObservedWorkload::default();
    assert_eq!(
        rollout_state(
            &WorkloadStatus::default(),
            &nothing,
            "a",
            &api_steps(),
            Hints::default()
        ),
        RolloutState::NoStable
    );
    // Services but no rule yet: the first deployment was interrupted before routing.
    let unrouted = seen(Some("a"), None, None);
    assert_eq!(
        rollout_state(
            &WorkloadStatus::default(),
            &unrouted,
            "a",
            &api_steps(),
            Hints::default()
        ),
        RolloutState::NoStable
    );
}

#[test]
fn rollout_state_without_status_at_full_weight_takes_the_weighted_slot_as_stable() {
    let observed = seen(Some("a"), Some("b"), Some((0, 100)));
    assert_eq!(
        rollout_state(
            &WorkloadStatus::default(),
            &observed,
            "b",
            &api_steps(),
            Hints::default()
        ),
        RolloutState::AtRest {
            stable: rev(Slot::Green, "b"),
        }
    );
}

/// Without status: one row per line of `infer`'s table.
#[test]
fn rollout_state_without_status_table() {
    let lost = WorkloadStatus::default();
    let rows: Vec<(&str, ObservedWorkload, RolloutState)> = vec![
        (
            "all weight on blue, green runs the desired revision at 0%",
            seen(Some("a"), Some("b"), Some((100, 0))),
            RolloutState::Ready {
                stable: rev(Slot::Blue, "a"),
            },
        ),
        (
            "both weighted, green runs the desired revision at a step's weight",
            seen(Some("a"), Some("b"), Some((50, 50))),
            RolloutState::Resumed {
                stable: rev(Slot::Blue, "a"),
                canary_slot: Slot::Green,
                weight: 50,
                step_index: 4,
                exact: true,
            },
        ),
        (
            "both weighted, the heavier green is not the canary's stable",
            seen(Some("b"), Some("a"), Some((40, 60))),
            RolloutState::Resumed {
                stable: rev(Slot::Green, "a"),
                canary_slot: Slot::Blue,
                weight: 40,
                step_index: 1,
                exact: false,
            },
        ),
        (
            "both weighted, both run the desired revision",
            seen(Some("b"), Some("b"), Some((30, 70))),
            RolloutState::AtRest {
                stable: rev(Slot::Green, "b"),
            },
        ),
    ];
    assert_eq!(rows.len(), 4);
    for (name, observed, want) in rows {
        assert_eq!(
            rollout_state(&lost, &observed, "b", &api_steps(), Hints::default()),
            want,
            "{name}"
        );
    }
    let neither = seen(Some("a"), Some("c"), Some((40, 60)));
    assert!(
        matches!(
            rollout_state(&lost, &neither, "b", &api_steps(), Hints::default()),
            RolloutState::Unknown { message } if message.contains("neither")
        ),
        "both weighted, neither runs the desired revision"
    );
}
