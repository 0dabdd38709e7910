//! One suite for every operator inbox (memory, files, SSM through moto): what an
//! operator writes is what the loop reads, each write of an action is a new version, and
//! a value that does not parse is reported by name without hiding the others.
#![allow(dead_code)]

use tugboat::document::Application;
use tugboat::inbox::{Inbox, Key};
use tugboat::observed::{OperatorActionKind, WeightPin};
use tugboat::operator::{format_action, format_weight_pin};
use tugboat::status::Timestamp;

use super::{Infra, Spec, app};

/// A document with workloads `api` and `worker`, named `name` (unique per test against
/// a shared SSM).
pub fn shop(name: &str) -> Application {
    let mut infra = Infra::fake();
    infra.app_name = name.to_string();
    app(
        &infra,
        &[
            Spec::rolling("api", "api:1"),
            Spec::rolling("worker", "worker:1"),
        ],
    )
}

pub async fn an_empty_inbox_reads_empty(inbox: &dyn Inbox, app: &Application) {
    let read = inbox.read(app).await.expect("read");
    assert!(read.by_workload.is_empty(), "{read:?}");
    assert!(read.problems.is_empty(), "{read:?}");
}

pub async fn written_values_read_back_as_overrides(inbox: &dyn Inbox, app: &Application) {
    let pin = WeightPin {
        weight: 0,
        reason: Some("INC-42".into()),
        expires: Some(Timestamp::from_secs(1_893_456_000)),
    };
    inbox
        .write(app, "api", Key::Weight, &format_weight_pin(&pin))
        .await
        .expect("write weight");
    inbox
        .write(
            app,
            "api",
            Key::Action,
            format_action(OperatorActionKind::Pause),
        )
        .await
        .expect("write action");
    let read = inbox.read(app).await.expect("read");
    assert!(read.problems.is_empty(), "{:?}", read.problems);
    let api = read.by_workload.get("api").expect("api has overrides");
    assert_eq!(api.weight_pin.as_ref(), Some(&pin));
    assert_eq!(
        api.action.as_ref().map(|a| a.kind),
        Some(OperatorActionKind::Pause)
    );
    assert!(
        !read.by_workload.contains_key("worker"),
        "a workload nobody wrote to has no overrides: {read:?}"
    );
    assert!(
        inbox.api_calls().total() >= 3,
        "calls are counted: {}",
        inbox.api_calls()
    );
}

pub async fn each_write_of_an_action_is_a_new_higher_version(inbox: &dyn Inbox, app: &Application) {
    let version = |read: &tugboat::inbox::Overrides| {
        read.by_workload
            .get("api")
            .and_then(|o| o.action.as_ref())
            .map(|a| (a.kind, a.version))
            .expect("an action")
    };
    inbox
        .write(app, "api", Key::Action, "abort")
        .await
        .expect("write");
    let (kind, first) = version(&inbox.read(app).await.expect("read"));
    assert_eq!(kind, OperatorActionKind::Abort);
    let (_, again) = version(&inbox.read(app).await.expect("read"));
    assert_eq!(
        again, first,
        "reading again is the same action, handled once"
    );
    // The same word written again is a new action.
    inbox
        .write(app, "api", Key::Action, "abort")
        .await
        .expect("write");
    let (_, second) = version(&inbox.read(app).await.expect("read"));
    assert!(second > first, "{second} > {first}");
    inbox
        .write(app, "api", Key::Action, "promote")
        .await
        .expect("write");
    let (kind, third) = version(&inbox.read(app).await.expect("read"));
    assert_eq!(kind, OperatorActionKind::Promote);
    assert!(third > second, "{third} > {second}");
}

pub async fn a_value_that_does_not_parse_is_reported_by_name_and_the_rest_still_read(
    inbox: &dyn Inbox,
    app: &Application,
) {
    inbox
        .write(app, "api", Key::Weight, "lots")
        .await
        .expect("write");
    inbox
        .write(app, "api", Key::Action, "rollback")
        .await
        .expect("write");
    inbox
        .write(app, "worker", Key::Weight, "5")
        .await
        .expect("write");
    let read = inbox
        .read(app)
        .await
        .expect("a bad value never fails the read");
    let problems = read.problems.get("api").expect("api's problems reported");
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("api/weight") && p.contains("lots")),
        "names the weight and its value: {problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("api/action") && p.contains("rollback")),
        "names the action and its value: {problems:?}"
    );
    let api = read
        .by_workload
        .get("api")
        .expect("api learns of its bad weight");
    assert_eq!(api.weight_pin, None, "{read:?}");
    assert_eq!(api.action, None, "{read:?}");
    assert!(
        api.unreadable_weight
            .as_deref()
            .is_some_and(|w| w.contains("api/weight") && w.contains("lots")),
        "the unreadable weight is on the workload, so its rollout holds: {read:?}"
    );
    assert_eq!(
        read.by_workload
            .get("worker")
            .and_then(|o| o.weight_pin.as_ref())
            .map(|p| p.weight),
        Some(5),
        "other workloads' overrides still read"
    );
    assert!(!read.problems.contains_key("worker"));
}

/// What `write_recorded` keeps beside a value: the reason always; who, where the backend
/// knows (`by_known`: SSM through moto answers `N/A` for the user, which is no one).
pub async fn a_recorded_write_reads_back_with_who_and_why(
    inbox: &dyn Inbox,
    app: &Application,
    by_known: bool,
) {
    use tugboat::observed::OverrideRecord;
    let record = OverrideRecord {
        by: Some("alice".into()),
        reason: Some("INC-42: errors on /api".into()),
        at: None,
    };
    let before = Timestamp::now();
    inbox
        .write_recorded(app, "api", Key::Weight, "30", &record)
        .await
        .expect("write");
    inbox
        .write_recorded(app, "api", Key::Action, "pause", &record)
        .await
        .expect("write");
    let read = inbox.read(app).await.expect("read");
    let api = read.by_workload.get("api").expect("api");
    for (what, got) in [
        ("weight", &api.weight_record),
        ("action", &api.action_record),
    ] {
        let got = got
            .as_ref()
            .unwrap_or_else(|| panic!("the {what} has a record: {api:?}"));
        assert_eq!(got.reason, record.reason, "{what}");
        if by_known {
            assert_eq!(got.by.as_deref(), Some("alice"), "{what}");
        }
        let at = got
            .at
            .unwrap_or_else(|| panic!("the {what} has a time: {got:?}"));
        // moto keeps seconds: a minute of slack either way, no more.
        assert!(
            at.0 + 60_000 >= before.0 && at.0 <= Timestamp::now().0 + 60_000,
            "{what} at {at} (written after {before})"
        );
    }
    // A write without a record (by hand) is not credited to the previous writer.
    inbox
        .write(app, "api", Key::Weight, "40")
        .await
        .expect("write");
    let read = inbox.read(app).await.expect("read");
    let api = read.by_workload.get("api").expect("api");
    assert_eq!(api.weight_pin.as_ref().map(|p| p.weight), Some(40));
    assert!(
        api.weight_record
            .as_ref()
            .is_none_or(|r| r.reason != record.reason),
        "a hand-written value keeps no earlier reason: {api:?}"
    );
}

/// `clear` removes a value, says whether there was one, and leaves the others.
pub async fn a_cleared_value_is_gone_and_the_others_stay(inbox: &dyn Inbox, app: &Application) {
    inbox
        .write(app, "api", Key::Weight, "5")
        .await
        .expect("write");
    inbox
        .write(app, "worker", Key::Weight, "7")
        .await
        .expect("write");
    assert!(inbox.clear(app, "api", Key::Weight).await.expect("clear"));
    assert!(
        !inbox
            .clear(app, "api", Key::Weight)
            .await
            .expect("clear again"),
        "clearing what is not there is no error, and says so"
    );
    let read = inbox.read(app).await.expect("read");
    assert!(
        read.by_workload
            .get("api")
            .is_none_or(|o| o.weight_pin.is_none()),
        "{read:?}"
    );
    assert_eq!(
        read.by_workload
            .get("worker")
            .and_then(|o| o.weight_pin.as_ref())
            .map(|p| p.weight),
        Some(7)
    );
}
