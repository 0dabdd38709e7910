//! `tugboat apply` as a process, writing through the blob store: `--create-only` is
//! `Create`, `--expect-revision` is `Update(revision)`, neither is `Update(current)`.
//! Files need nothing; the SSM test needs `.ci/test` (the emulator).

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::minimal_document as document;
use tugboat::source::content_revision;

fn apply(file: &Path, to: &str, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tugboat"))
        .args(["apply", "-f"])
        .arg(file)
        .args(["--to", to])
        .args(extra)
        .output()
        .expect("run the tugboat binary")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write the input document");
    path
}

#[test]
fn create_only_refuses_a_file_that_exists_and_leaves_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = write(dir.path(), "one.yaml", &document("backend:1"));
    let two = write(dir.path(), "two.yaml", &document("backend:2"));
    let target = dir.path().join("out/app.yaml");
    let uri = format!("file://{}", target.display());

    let created = apply(&one, &uri, &["--create-only"]);
    assert!(created.status.success(), "{}", stderr(&created));
    let again = apply(&two, &uri, &["--create-only"]);

    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("a document already exists at"),
        "{}",
        stderr(&again)
    );
    let stored = std::fs::read_to_string(&target).expect("read back");
    assert_eq!(stored, document("backend:1"));
}

#[test]
fn a_stale_expected_revision_of_a_file_exits_3_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = write(dir.path(), "one.yaml", &document("backend:1"));
    let two = write(dir.path(), "two.yaml", &document("backend:2"));
    let three = write(dir.path(), "three.yaml", &document("backend:3"));
    let target = dir.path().join("app.yaml");
    let uri = format!("file://{}", target.display());
    let first = content_revision(document("backend:1").as_bytes());

    assert!(apply(&one, &uri, &[]).status.success());
    let second = apply(&two, &uri, &["--expect-revision", &first]);
    assert!(second.status.success(), "{}", stderr(&second));
    let stale = apply(&three, &uri, &["--expect-revision", &first]);

    assert_eq!(stale.status.code(), Some(3), "{}", stderr(&stale));
    assert!(
        stderr(&stale).contains("re-run apply"),
        "{}",
        stderr(&stale)
    );
    let stored = std::fs::read_to_string(&target).expect("read back");
    assert_eq!(
        stored,
        document("backend:2"),
        "the stale apply changed nothing"
    );
}

#[test]
fn apply_prints_the_revision_the_store_gave() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = write(dir.path(), "one.yaml", &document("backend:1"));
    let uri = format!("file://{}", dir.path().join("app.yaml").display());

    let output = apply(&one, &uri, &[]);

    let stdout = String::from_utf8_lossy(&output.stdout);
    let expected = content_revision(document("backend:1").as_bytes());
    assert!(
        stdout.contains(&format!("to {uri}: revision {expected}")),
        "{stdout}"
    );
}

#[test]
fn a_bad_uri_is_named_with_what_a_good_one_looks_like() {
    let dir = tempfile::tempdir().expect("tempdir");
    let one = write(dir.path(), "one.yaml", &document("backend:1"));

    let output = apply(&one, "s3://bucket-only", &[]);

    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("s3://bucket-only"), "{err}");
    assert!(err.contains("needs a key"), "{err}");
}

#[tokio::test]
async fn a_stale_expected_revision_on_ssm_exits_3_and_changes_nothing() {
    let config = common::emulator_config().await;
    let name = format!("/{}/app", common::unique_name("tugboat-apply"));
    let uri = format!("ssm:{name}");
    let dir = tempfile::tempdir().expect("tempdir");
    let one = write(dir.path(), "one.yaml", &document("backend:1"));
    let two = write(dir.path(), "two.yaml", &document("backend:2"));

    assert!(apply(&one, &uri, &["--create-only"]).status.success());
    assert!(
        apply(&two, &uri, &["--expect-revision", "1"])
            .status
            .success()
    );
    let stale = apply(&one, &uri, &["--expect-revision", "1"]);
    let exists = apply(&one, &uri, &["--create-only"]);

    assert_eq!(stale.status.code(), Some(3), "{}", stderr(&stale));
    assert_eq!(exists.status.code(), Some(1), "{}", stderr(&exists));
    let stored = tugboat::aws::ssm(&config)
        .get_parameter()
        .name(&name)
        .send()
        .await
        .expect("the parameter")
        .parameter
        .expect("a parameter");
    assert_eq!(stored.version, 2);
    assert_eq!(
        stored.value.as_deref(),
        Some(document("backend:2").as_str())
    );
}
