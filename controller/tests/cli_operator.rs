//! The operator verbs as processes (the real `tugboat` binary) against the file inbox of
//! a local document: what each writes, its exit code (0 done, 1 error, 2 refused, 3
//! conflict), and that a refused or conflicting command changes nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tugboat::document::Slot;
use tugboat::status::{AppStatus, CanaryStatus, Phase, Revision, Timestamp, WorkloadStatus};

struct Fixture {
    dir: tempfile::TempDir,
    doc: PathBuf,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let state = dir.path().join("state");
        let doc = dir.path().join("app.yaml");
        std::fs::write(
            &doc,
            format!(
                "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {{name: shop, environment: local}}
spec:
  platform:
    local: {{listen: 127.0.0.1:18080, stateDir: {state}}}
  status: {{uri: \"file://{status}\"}}
  workloads:
    - name: api
      image: api
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8001
      route: {{pathPatterns: [\"/api/*\"], priority: 10, targetGroups: {{blue: api-blue, green: api-green}}}}
      strategy:
        canary:
          steps: [{{setWeight: 20}}, {{pause: {{}}}}, {{setWeight: 100}}]
    - name: worker
      image: worker
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 9000
      strategy: {{rolling: {{}}}}
",
                state = state.display(),
                status = dir.path().join("status.json").display(),
            ),
        )
        .expect("write doc");
        Fixture { dir, doc }
    }

    fn overrides(&self) -> PathBuf {
        self.dir.path().join("state/overrides")
    }

    fn value(&self, workload: &str, key: &str) -> Option<String> {
        std::fs::read_to_string(self.overrides().join(workload).join(key)).ok()
    }

    /// Writes the persisted status: `api` at `step` of its canary (or at rest).
    fn status(&self, api: WorkloadStatus) {
        let mut status = AppStatus::default();
        status.workloads.insert("api".into(), api);
        std::fs::write(
            self.dir.path().join("status.json"),
            serde_json::to_string(&status).unwrap(),
        )
        .expect("write status");
    }

    fn tugboat(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tugboat"))
            .args(args)
            .arg("-f")
            .arg(&self.doc)
            .env("TUGBOAT_OPERATOR", "alice")
            .output()
            .expect("tugboat runs")
    }

    /// Every file under the inbox with its content, to show nothing changed.
    fn snapshot(&self) -> Vec<(PathBuf, String)> {
        fn walk(p: &Path, out: &mut Vec<(PathBuf, String)>) {
            let Ok(dir) = std::fs::read_dir(p) else {
                return;
            };
            for e in dir.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    let text = std::fs::read_to_string(&path).unwrap_or_default();
                    out.push((path, text));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.overrides(), &mut out);
        out.sort();
        out
    }
}

fn at_step(step_index: usize) -> WorkloadStatus {
    WorkloadStatus {
        phase: Phase::Paused,
        stable: Some(Revision {
            slot: Some(Slot::Blue),
            hash: "aaaa".into(),
        }),
        canary: Some(CanaryStatus {
            slot: Slot::Green,
            hash: "bbbb".into(),
            started_at: Timestamp::from_secs(1),
            step_index,
            step_started_at: Timestamp::from_secs(1),
            healthy_at: None,
            aborted: None,
            steps: None,
            held_since: None,
        }),
        desired_weight: Some(20),
        verified_weight: Some(20),
        step_count: Some(3),
        ..Default::default()
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited")
}

fn text(out: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn set_weight_writes_a_pin_with_expiry_reason_and_who_and_clear_removes_it() {
    let f = Fixture::new();
    f.status(at_step(1));
    let out = f.tugboat(&[
        "set-weight",
        "api",
        "30",
        "--for",
        "30m",
        "--reason",
        "INC-42",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("held at 30%") && said.contains("step 2 of 3"),
        "{said}"
    );
    let value = f.value("api", "weight").expect("the pin is written");
    let pin = tugboat::operator::parse_weight_pin(&value).expect("parses");
    assert_eq!(pin.weight, 30);
    assert_eq!(pin.reason.as_deref(), Some("INC-42"));
    let expires = pin.expires.expect("an expiry");
    let in_30m = Timestamp::now().plus(std::time::Duration::from_secs(1800));
    assert!(
        expires <= in_30m && expires.0 + 120_000 > in_30m.0,
        "{expires}"
    );
    let record = f.value("api", ".weight.record").expect("the local record");
    assert!(
        record.contains("alice") && record.contains("INC-42"),
        "{record}"
    );

    // A new set-weight replaces the pin in force.
    let out = f.tugboat(&["set-weight", "api", "40"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("replacing the pin at 30%"),
        "{}",
        text(&out)
    );
    assert_eq!(f.value("api", "weight").as_deref(), Some("40"));

    // resume does not remove a pin.
    let out = f.tugboat(&["resume", "api"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert!(
        text(&out).contains("set-weight api --clear"),
        "{}",
        text(&out)
    );
    assert_eq!(f.value("api", "weight").as_deref(), Some("40"));

    let out = f.tugboat(&["set-weight", "api", "--clear"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(f.value("api", "weight"), None);
    let out = f.tugboat(&["set-weight", "api", "--clear"]);
    assert_eq!(code(&out), 2, "nothing to clear: {}", text(&out));
}

#[test]
fn refused_commands_say_why_exit_2_and_change_nothing() {
    let f = Fixture::new();
    f.status(at_step(0));
    f.tugboat(&["set-weight", "api", "10"]);
    let before = f.snapshot();
    assert!(!before.is_empty());
    for (args, why) in [
        (&["set-weight", "api", "150"][..], "out of range"),
        (&["set-weight", "nope", "5"][..], "no workload \"nope\""),
        (&["set-weight", "worker", "5"][..], "rolling workload"),
        (&["promote", "api"][..], "not a pause or an analysis"),
        (&["retry", "api"][..], "no aborted rollout"),
        (&["resume", "api"][..], "not paused by an operator"),
    ] {
        let out = f.tugboat(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(text(&out).contains(why), "{args:?}: {}", text(&out));
        assert!(text(&out).contains("nothing was changed"), "{}", text(&out));
        assert_eq!(f.snapshot(), before, "{args:?} changed the inbox");
    }
    // At rest there is no rollout to steer.
    f.status(WorkloadStatus {
        phase: Phase::Healthy,
        ..Default::default()
    });
    for verb in ["abort", "pause", "promote"] {
        let out = f.tugboat(&[verb, "api"]);
        assert_eq!(code(&out), 2, "{verb}: {}", text(&out));
        assert!(
            text(&out).contains("no rollout in progress"),
            "{}",
            text(&out)
        );
    }
    let out = f.tugboat(&["set-weight", "api", "5"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
    assert_eq!(f.snapshot(), before);
}

#[test]
fn an_unhandled_action_is_a_conflict_until_the_controller_takes_it() {
    let f = Fixture::new();
    f.status(at_step(1));
    let out = f.tugboat(&["promote", "api", "--reason", "looks good"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(f.value("api", "action").as_deref(), Some("promote"));
    let before = f.snapshot();
    let out = f.tugboat(&["abort", "api"]);
    assert_eq!(code(&out), 3, "{}", text(&out));
    assert!(text(&out).contains("`promote`"), "{}", text(&out));
    assert_eq!(f.snapshot(), before, "a conflict changes nothing");

    // The controller handled it (its version, the file's mtime in ms, is in the status).
    let mtime = std::fs::metadata(f.overrides().join("api/action"))
        .and_then(|m| m.modified())
        .unwrap()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let mut handled = at_step(1);
    handled.handled_action_version = mtime;
    f.status(handled);
    let out = f.tugboat(&["abort", "api", "--reason", "errors"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("abortScaleDownDelay"), "{}", text(&out));
    assert_eq!(f.value("api", "action").as_deref(), Some("abort"));
    let record = f.value("api", ".action.record").expect("record");
    assert!(
        record.contains("errors") && record.contains("alice"),
        "{record}"
    );
}

#[test]
fn promote_full_and_pause_write_their_words() {
    let f = Fixture::new();
    f.status(at_step(0));
    let out = f.tugboat(&["pause", "api"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(f.value("api", "action").as_deref(), Some("pause"));
    let mut paused = at_step(0);
    paused.operator_paused = true;
    paused.handled_action_version = u64::MAX;
    f.status(paused);
    let out = f.tugboat(&["pause", "api"]);
    assert_eq!(code(&out), 2, "already paused: {}", text(&out));
    let out = f.tugboat(&["promote", "api", "--full"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(f.value("api", "action").as_deref(), Some("promote-full"));
}

#[test]
fn a_document_that_cannot_be_read_is_an_error_exit_1() {
    let out = Command::new(env!("CARGO_BIN_EXE_tugboat"))
        .args(["abort", "api", "-f", "/nonexistent/app.yaml"])
        .output()
        .expect("runs");
    assert_eq!(code(&out), 1, "{}", text(&out));
    assert!(
        text(&out).contains("/nonexistent/app.yaml"),
        "{}",
        text(&out)
    );
}

/// `tugboat status --watch` piped: a line per change, a clean exit 0 on SIGINT, and a
/// quiet exit 0 once its reader has gone.
#[test]
fn status_watch_prints_a_line_per_change_and_ends_cleanly() {
    use std::io::{BufRead, BufReader};
    let f = Fixture::new();
    f.status(at_step(0));
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_tugboat"))
            .args(["status", "--watch", "--interval", "50ms", "-f"])
            .arg(&f.doc)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starts")
    };
    let mut child = spawn();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next = || lines.next().expect("a line").expect("utf-8");
    assert!(
        next().contains("revision"),
        "the first read shows everything"
    );
    let first = next();
    assert!(
        first.contains(" api Paused") && first.contains("step=1/"),
        "{first}"
    );
    // A change: one line, for the workload that changed, naming the pin.
    let mut pinned = at_step(1);
    pinned.pin = Some(tugboat::status::PinStatus {
        weight: 5,
        by: Some("alice".into()),
        reason: Some("INC-42".into()),
        since: None,
        until: None,
    });
    f.status(pinned);
    let line = next();
    assert!(
        line.contains("step=2/")
            && line.contains("[weight pinned at 5% by alice, until cleared: INC-42]"),
        "{line}"
    );
    // Ctrl-C: exit 0.
    let interrupted = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(interrupted.success());
    let exit = child.wait().expect("exits");
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    // The reader goes away: the next change ends the watch quietly with 0.
    let mut child = spawn();
    let stdout = child.stdout.take().unwrap();
    let mut reader = BufReader::new(stdout);
    let mut first = String::new();
    reader.read_line(&mut first).expect("a line");
    drop(reader);
    f.status(at_step(0));
    let exit = child.wait().expect("exits");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(exit.code(), Some(0), "{exit:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn at_rest_after_two_rollouts() -> WorkloadStatus {
    WorkloadStatus {
        phase: Phase::Healthy,
        stable: Some(Revision {
            slot: Some(Slot::Green),
            hash: "bbbb".into(),
        }),
        stable_history: vec!["aaaa".into(), "0000".into()],
        ..Default::default()
    }
}

#[test]
fn undo_writes_the_revision_stable_before_and_cancel_removes_it() {
    let f = Fixture::new();
    f.status(at_rest_after_two_rollouts());
    let out = f.tugboat(&["undo", "api", "--reason", "INC-5"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        text(&out).contains("within the rollbackWindow (3 revisions)"),
        "{}",
        text(&out)
    );
    let undo = tugboat::operator::parse_undo(&f.value("api", "undo").expect("written")).unwrap();
    assert_eq!(
        (undo.revision.as_str(), undo.from.as_str()),
        ("aaaa", "bbbb")
    );

    let before = f.snapshot();
    for (args, why) in [
        (
            &["undo", "api", "--to-revision", "zzzz"][..],
            "was not a stable revision",
        ),
        (
            &["undo", "api", "--to-revision", "bbbb"][..],
            "already runs bbbb",
        ),
        (&["undo", "worker"][..], "rolling workload"),
    ] {
        let out = f.tugboat(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", text(&out));
        assert!(text(&out).contains(why), "{args:?}: {}", text(&out));
        assert_eq!(f.snapshot(), before);
    }
    let out = f.tugboat(&["undo", "api", "--to-revision", "0000"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(
        f.value("api", "undo").unwrap().contains("\"0000\""),
        "an older one by --to-revision"
    );
    let out = f.tugboat(&["undo", "api", "--cancel"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert_eq!(f.value("api", "undo"), None);
    let out = f.tugboat(&["undo", "api", "--cancel"]);
    assert_eq!(code(&out), 2, "{}", text(&out));
}

#[test]
fn undo_during_a_canary_is_an_abort() {
    let f = Fixture::new();
    f.status(at_step(1));
    let out = f.tugboat(&["undo", "api"]);
    assert_eq!(code(&out), 0, "{}", text(&out));
    assert!(text(&out).contains("undo is an abort"), "{}", text(&out));
    assert_eq!(f.value("api", "action").as_deref(), Some("abort"));
    assert_eq!(f.value("api", "undo"), None);
}
