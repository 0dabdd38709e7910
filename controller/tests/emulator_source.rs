//! Document sources and `tugboat apply` against the AWS emulator through the real SDK:
//! reads from S3 and SSM, the 304 path for an unchanged object, change detection, the
//! typed errors for what does not exist, the watcher keeping the last good document,
//! and conditional writes that refuse a stale revision.
//!
//! Needs `.ci/test` (or `AWS_ENDPOINT_URL` pointing at moto's server).

mod common;

use std::process::Command;
use std::time::Duration;

use aws_sdk_s3::primitives::ByteStream;
use common::minimal_document as document;
use common::{emulator_config, fresh_bucket, unique_name};
use tugboat::aws;
use tugboat::source::{
    DocumentSource, Expect, Fetched, SourceError, SourceUri, Update, WatchConfig, Watcher,
};

async fn put_object(config: &aws_config::SdkConfig, bucket: &str, key: &str, text: &str) {
    aws::s3(config)
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(text.as_bytes().to_vec()))
        .send()
        .await
        .unwrap_or_else(|err| panic!("put s3://{bucket}/{key}: {}", aws::describe(&err)));
}

async fn put_parameter(config: &aws_config::SdkConfig, name: &str, text: &str) {
    aws::ssm(config)
        .put_parameter()
        .name(name)
        .value(text)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .unwrap_or_else(|err| panic!("put parameter {name}: {}", aws::describe(&err)));
}

fn source(config: &aws_config::SdkConfig, uri: &str) -> DocumentSource {
    let uri: SourceUri = uri.parse().expect("a valid URI in the test");
    DocumentSource::new(uri, config)
}

fn changed_text(fetched: Fetched) -> (String, String) {
    match fetched {
        Fetched::Changed { text, revision } => (text, revision),
        Fetched::Unchanged => panic!("expected a changed document, got Unchanged"),
    }
}

#[tokio::test]
async fn s3_document_is_read_then_unchanged_until_it_changes() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    put_object(&config, &bucket, "app.yaml", &document("backend:1")).await;
    let mut source = source(&config, &format!("s3://{bucket}/app.yaml"));

    let (text, first_etag) = changed_text(source.fetch().await.expect("first read"));
    assert_eq!(text, document("backend:1"));
    assert!(
        first_etag.starts_with('"'),
        "the revision is the ETag: {first_etag}"
    );

    assert_eq!(
        source.fetch().await.expect("second read"),
        Fetched::Unchanged
    );

    put_object(&config, &bucket, "app.yaml", &document("backend:2")).await;
    let (text, second_etag) = changed_text(source.fetch().await.expect("read after change"));
    assert_eq!(text, document("backend:2"));
    assert_ne!(second_etag, first_etag);
}

#[tokio::test]
async fn s3_answers_an_unchanged_conditional_get_with_304() {
    // The source relies on this shape of error for `Fetched::Unchanged`.
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    put_object(&config, &bucket, "app.yaml", &document("backend:1")).await;
    let client = aws::s3(&config);
    let etag = client
        .head_object()
        .bucket(&bucket)
        .key("app.yaml")
        .send()
        .await
        .expect("head")
        .e_tag
        .expect("S3 returns an ETag");

    let err = client
        .get_object()
        .bucket(&bucket)
        .key("app.yaml")
        .if_none_match(&etag)
        .send()
        .await
        .expect_err("a matching If-None-Match is not a 200");

    assert_eq!(aws::http_status(&err), Some(304));
    assert!(aws::is_not_modified(&err), "{}", aws::describe(&err));
}

#[tokio::test]
async fn ssm_document_is_read_by_version() {
    let config = emulator_config().await;
    let name = format!("/{}/app", unique_name("tugboat-test"));
    put_parameter(&config, &name, &document("backend:1")).await;
    let mut source = source(&config, &format!("ssm:{name}"));

    let (text, revision) = changed_text(source.fetch().await.expect("first read"));
    assert_eq!(text, document("backend:1"));
    assert_eq!(revision, "1");
    assert_eq!(
        source.fetch().await.expect("second read"),
        Fetched::Unchanged
    );

    put_parameter(&config, &name, &document("backend:2")).await;
    let (text, revision) = changed_text(source.fetch().await.expect("read after change"));
    assert_eq!(text, document("backend:2"));
    assert_eq!(revision, "2");
}

#[tokio::test]
async fn a_missing_bucket_is_named() {
    let config = emulator_config().await;
    let bucket = unique_name("tugboat-absent");
    let mut source = source(&config, &format!("s3://{bucket}/app.yaml"));

    let err = source.fetch().await.expect_err("no such bucket");

    assert!(
        matches!(&err, SourceError::BucketNotFound { bucket: b, .. } if *b == bucket),
        "{err:?}"
    );
    assert!(err.to_string().contains("does not exist"), "{err}");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn a_missing_key_says_how_to_upload_one() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    let uri = format!("s3://{bucket}/absent.yaml");
    let mut source = source(&config, &uri);

    let err = source.fetch().await.expect_err("no such key");

    assert!(
        matches!(&err, SourceError::DocumentNotFound { uri: u } if *u == uri),
        "{err:?}"
    );
    assert!(err.to_string().contains("tugboat apply"), "{err}");
}

#[tokio::test]
async fn a_missing_parameter_is_named() {
    let config = emulator_config().await;
    let name = format!("/{}/absent", unique_name("tugboat-test"));
    let mut source = source(&config, &format!("ssm:{name}"));

    let err = source.fetch().await.expect_err("no such parameter");

    assert!(
        matches!(&err, SourceError::ParameterNotFound { name: n } if *n == name),
        "{err:?}"
    );
    assert!(err.to_string().contains("not found"), "{err}");
}

#[tokio::test]
async fn an_oversized_s3_object_is_refused_before_it_is_read() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    let limit = tugboat::source::MAX_DOCUMENT_BYTES as usize;
    put_object(&config, &bucket, "huge.yaml", &"#".repeat(limit + 1)).await;
    let mut source = source(&config, &format!("s3://{bucket}/huge.yaml"));

    let err = source.fetch().await.expect_err("over the limit");

    assert!(
        matches!(err, SourceError::TooLarge { size, .. } if size == limit as u64 + 1),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_watcher_keeps_the_last_good_s3_document_when_a_bad_one_arrives() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    put_object(&config, &bucket, "app.yaml", &document("backend:1")).await;
    // A short poll keeps the test quick; nothing here depends on timing.
    let poll = WatchConfig {
        poll: Duration::from_millis(10),
        resync: Duration::from_secs(3600),
    };
    let mut watcher = Watcher::new(source(&config, &format!("s3://{bucket}/app.yaml")), poll);
    assert!(matches!(watcher.next().await, Update::Applied { .. }));

    let invalid = document("backend:2").replace("desiredCount: 1", "desiredCount: many");
    put_object(&config, &bucket, "app.yaml", &invalid).await;
    let update = watcher.next().await;

    assert!(matches!(update, Update::Rejected { .. }), "{update:?}");
    let in_force = watcher.in_force().expect("the first document stays");
    assert_eq!(in_force.document.spec.workloads[0].image, "backend:1");
    let problem = watcher
        .problem()
        .expect("the rejection is kept")
        .to_string();
    assert!(
        problem.contains(&format!("s3://{bucket}/app.yaml")),
        "{problem}"
    );

    put_object(&config, &bucket, "app.yaml", &document("backend:3")).await;
    assert!(matches!(watcher.next().await, Update::Applied { .. }));
    assert!(watcher.problem().is_none());
}

#[tokio::test]
async fn a_resync_rereads_the_s3_object_in_full_and_keeps_the_document() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    put_object(&config, &bucket, "app.yaml", &document("backend:1")).await;
    // Every read after the first is a resync: the conditional GET is skipped.
    let always_resync = WatchConfig {
        poll: Duration::from_millis(10),
        resync: Duration::ZERO,
    };
    let uri = format!("s3://{bucket}/app.yaml");
    let mut watcher = Watcher::new(source(&config, &uri), always_resync);
    let Update::Applied { revision } = watcher.next().await else {
        panic!("the first read applies the document");
    };

    assert_eq!(watcher.next().await, Update::Resync);
    assert_eq!(watcher.source().last_revision(), Some(revision.as_str()));
    let in_force = watcher.in_force().expect("still in force");
    assert_eq!(in_force.revision, revision);
}

#[tokio::test]
async fn apply_to_s3_refuses_a_stale_expected_revision() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    let uri = format!("s3://{bucket}/app.yaml");
    let target = source(&config, &uri);

    let first = target
        .publish(&document("backend:1"), &Expect::Absent)
        .await
        .expect("a new object");
    let second = target
        .publish(&document("backend:2"), &Expect::Revision(first.clone()))
        .await
        .expect("the expected revision holds");
    let stale = target
        .publish(&document("backend:3"), &Expect::Revision(first.clone()))
        .await;

    match stale {
        Err(SourceError::Conflict { uri: u, expected }) => {
            assert_eq!(u, uri);
            assert_eq!(expected, first);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    let mut reader = source(&config, &uri);
    let (text, revision) = changed_text(reader.fetch().await.expect("read back"));
    assert_eq!(
        text,
        document("backend:2"),
        "the stale write changed nothing"
    );
    assert_eq!(revision, second);
}

#[tokio::test]
async fn apply_to_s3_without_an_expected_revision_writes_over_the_current_one() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    let target = source(&config, &format!("s3://{bucket}/app.yaml"));

    let first = target
        .publish(&document("backend:1"), &Expect::Current)
        .await
        .expect("creates");
    let second = target
        .publish(&document("backend:2"), &Expect::Current)
        .await
        .expect("replaces");
    let exists = target
        .publish(&document("backend:3"), &Expect::Absent)
        .await;

    assert_ne!(first, second);
    assert!(
        matches!(exists, Err(SourceError::AlreadyExists { .. })),
        "{exists:?}"
    );
}

#[tokio::test]
async fn apply_to_ssm_bumps_the_version() {
    let config = emulator_config().await;
    let name = format!("/{}/app", unique_name("tugboat-test"));
    let target = source(&config, &format!("ssm:{name}"));

    let first = target
        .publish(&document("backend:1"), &Expect::Current)
        .await
        .expect("creates");
    let second = target
        .publish(&document("backend:2"), &Expect::Current)
        .await
        .expect("overwrites");
    let stale = target
        .publish(&document("backend:3"), &Expect::Revision(first.clone()))
        .await;

    assert_eq!((first.as_str(), second.as_str()), ("1", "2"));
    assert!(
        matches!(stale, Err(SourceError::Conflict { .. })),
        "{stale:?}"
    );
}

#[tokio::test]
async fn apply_to_ssm_takes_documents_over_4_kib_and_refuses_over_8_kib() {
    let config = emulator_config().await;
    let name = format!("/{}/app", unique_name("tugboat-test"));
    let target = source(&config, &format!("ssm:{name}"));
    let padding = |bytes: usize| format!("{}# {}\n", document("backend:1"), "x".repeat(bytes));

    let advanced = target
        .publish(&padding(5 * 1024), &Expect::Current)
        .await
        .expect("an Advanced-tier parameter");
    let too_large = target.publish(&padding(9 * 1024), &Expect::Current).await;

    assert_eq!(advanced, "1");
    assert!(
        matches!(too_large, Err(SourceError::TooLargeForSsm { .. })),
        "{too_large:?}"
    );
}

/// `tugboat apply` as a process: flags, messages and exit codes.
fn tugboat_apply(file: &std::path::Path, to: &str, extra: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tugboat"))
        .args(["apply", "-f"])
        .arg(file)
        .args(["--to", to])
        .args(extra)
        .output()
        .expect("run the tugboat binary")
}

#[tokio::test]
async fn the_apply_command_never_uploads_an_invalid_document() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("broken.yaml");
    std::fs::write(
        &file,
        document("backend:1").replace("cpu: 256", "cpuu: 256"),
    )
    .expect("write");

    let output = tugboat_apply(&file, &format!("s3://{bucket}/app.yaml"), &[]);

    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not uploaded"), "{stderr}");
    assert!(stderr.contains("cpuu"), "{stderr}");
    let head = aws::s3(&config)
        .head_object()
        .bucket(&bucket)
        .key("app.yaml")
        .send()
        .await;
    assert!(
        head.is_err_and(|err| aws::is_not_found(&err)),
        "nothing was uploaded"
    );
}

#[tokio::test]
async fn the_apply_command_reports_a_conflict_with_its_own_exit_code() {
    let config = emulator_config().await;
    let bucket = fresh_bucket(&config).await;
    let uri = format!("s3://{bucket}/app.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("app.yaml");
    std::fs::write(&file, document("backend:1")).expect("write");

    let first = tugboat_apply(&file, &uri, &[]);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        stdout.contains(&format!("to {uri}: revision \"")),
        "{stdout}"
    );

    let stale = tugboat_apply(&file, &uri, &["--expect-revision", "0123456789abcdef"]);

    assert_eq!(stale.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&stale.stderr);
    assert!(
        stderr.contains(&format!("the document at {uri} changed since revision")),
        "{stderr}"
    );
    assert!(stderr.contains("re-run apply"), "{stderr}");
}
