//! Table tests of `rollout_state`: one row per state, from a status and an observation.

use super::*;
use crate::status::{Abort, CanaryStatus, Revision, ScaleDown};

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
        assert_eq!(rollout_state(&status, &observed, desired), want, "{name}");
    }
}

#[test]
fn rollout_state_without_status_and_nothing_deployed_is_no_stable() {
    let nothing = ObservedWorkload::default();
    assert_eq!(
        rollout_state(&WorkloadStatus::default(), &nothing, "a"),
        RolloutState::NoStable
    );
    // Services but no rule yet: the first deployment was interrupted before routing.
    let unrouted = seen(Some("a"), None, None);
    assert_eq!(
        rollout_state(&WorkloadStatus::default(), &unrouted, "a"),
        RolloutState::NoStable
    );
}

#[test]
fn rollout_state_without_status_at_full_weight_takes_the_weighted_slot_as_stable() {
    let observed = seen(Some("a"), Some("b"), Some((0, 100)));
    assert_eq!(
        rollout_state(&WorkloadStatus::default(), &observed, "b"),
        RolloutState::AtRest {
            stable: rev(Slot::Green, "b"),
        }
    );
}
