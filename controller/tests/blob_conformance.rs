//! One conformance suite for every [`BlobStore`] backend, like object_store's
//! `integration.rs`: the same async functions run against memory and files in-process and
//! against S3 and SSM on the AWS emulator (moto's server, which enforces S3's `If-Match` /
//! `If-None-Match`).
//!
//! `cargo test -p tugboat --test blob_conformance memory` (or `file`) needs nothing; the
//! `s3` and `ssm` runs need `.ci/test -p tugboat --test blob_conformance`.

mod common;

use std::sync::Arc;

use tugboat::blob::file::FileStore;
use tugboat::blob::memory::MemoryStore;
use tugboat::blob::s3::S3Store;
use tugboat::blob::ssm::{ADVANCED_MAX_BYTES, SsmStore};
use tugboat::blob::{BlobError, BlobStore, GetOptions, GetResult, PutMode, Version};

/// A backend under test and what it promises.
struct Backend {
    store: Arc<dyn BlobStore>,
    /// Prepended to every location, so tests sharing a store (the emulator) never meet.
    prefix: String,
    /// The largest value the backend takes, if it has a limit of its own.
    max_put: Option<usize>,
    /// Whether two racing `Update(v)` writers are promised to have exactly one winner.
    race: Race,
    /// Keeps a temporary directory alive for the file backend.
    _dir: Option<tempfile::TempDir>,
}

enum Race {
    ExactlyOneWins,
    /// The backend (or the emulator standing in for it) cannot promise it; why.
    NotPromised(&'static str),
}

impl Backend {
    fn at(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

async fn memory() -> Backend {
    Backend {
        store: Arc::new(MemoryStore::new()),
        prefix: String::new(),
        max_put: None,
        race: Race::ExactlyOneWins,
        _dir: None,
    }
}

async fn file() -> Backend {
    let dir = tempfile::tempdir().expect("tempdir");
    Backend {
        store: Arc::new(FileStore::new(dir.path())),
        prefix: "state/".to_owned(),
        max_put: None,
        race: Race::ExactlyOneWins,
        _dir: Some(dir),
    }
}

async fn s3() -> Backend {
    let config = common::emulator_config().await;
    let bucket = common::fresh_bucket(&config).await;
    Backend {
        store: Arc::new(S3Store::new(tugboat::aws::s3(&config), bucket)),
        prefix: "tugboat/".to_owned(),
        max_put: None,
        // Real S3 evaluates the condition and the write as one step. moto's threaded
        // server checks, then writes; it held in practice (15 of 15 rounds) only because
        // the GIL rarely switches in between, which is not a promise.
        race: Race::NotPromised("moto does not serialise conditional writes"),
        _dir: None,
    }
}

async fn ssm() -> Backend {
    let config = common::emulator_config().await;
    Backend {
        store: Arc::new(SsmStore::new(tugboat::aws::ssm(&config))),
        prefix: format!("/{}/", common::unique_name("tugboat-blob")),
        max_put: Some(ADVANCED_MAX_BYTES),
        race: Race::NotPromised("SSM has no conditional put"),
        _dir: None,
    }
}

fn found(result: Result<GetResult, BlobError>) -> (Vec<u8>, Version) {
    match result {
        Ok(GetResult::Found { bytes, version }) => (bytes, version),
        other => panic!("expected a value, got {other:?}"),
    }
}

// ----- The suite: one async fn per promise. -----

async fn get_of_a_missing_value_is_not_found(b: Backend) {
    let location = b.at("absent");
    let got = b.store.get(&location, None).await;
    assert!(matches!(got, Err(BlobError::NotFound { .. })), "{got:?}");
    let head = b.store.head(&location).await;
    assert!(matches!(head, Err(BlobError::NotFound { .. })), "{head:?}");
    let err = got.expect_err("checked above");
    assert!(err.to_string().contains(&b.store.uri(&location)), "{err}");
}

async fn create_over_an_existing_value_is_already_exists(b: Backend) {
    let location = b.at("created");
    let first = b
        .store
        .put(&location, b"first".to_vec(), PutMode::Create)
        .await
        .expect("nothing there yet");
    let second = b
        .store
        .put(&location, b"second".to_vec(), PutMode::Create)
        .await;
    assert!(
        matches!(second, Err(BlobError::AlreadyExists { .. })),
        "{second:?}"
    );
    let (bytes, version) = found(b.store.get(&location, None).await);
    assert_eq!(bytes, b"first", "the losing create changed nothing");
    assert_eq!(version, first);
}

async fn update_with_a_stale_version_is_precondition_and_changes_nothing(b: Backend) {
    let location = b.at("updated");
    let v1 = b
        .store
        .put(&location, b"one".to_vec(), PutMode::Create)
        .await
        .expect("create");
    let v2 = b
        .store
        .put(&location, b"two".to_vec(), PutMode::Update(v1.clone()))
        .await
        .expect("the current version matches");
    let stale = b
        .store
        .put(&location, b"three".to_vec(), PutMode::Update(v1.clone()))
        .await;
    match stale {
        Err(BlobError::Precondition { expected, uri }) => {
            assert_eq!(expected, v1);
            assert_eq!(uri, b.store.uri(&location));
        }
        other => panic!("expected a precondition failure, got {other:?}"),
    }
    let (bytes, version) = found(b.store.get(&location, None).await);
    assert_eq!(bytes, b"two", "the stale update changed nothing");
    assert_eq!(version, v2);
}

async fn update_of_a_missing_value_is_precondition(b: Backend) {
    let location = b.at("never-written");
    let expected = Version::from("1");
    let update = b
        .store
        .put(&location, b"x".to_vec(), PutMode::Update(expected))
        .await;
    assert!(
        matches!(update, Err(BlobError::Precondition { .. })),
        "{update:?}"
    );
    let got = b.store.get(&location, None).await;
    assert!(matches!(got, Err(BlobError::NotFound { .. })), "{got:?}");
}

async fn get_with_the_current_version_is_not_modified(b: Backend) {
    let location = b.at("conditional");
    let v1 = b
        .store
        .put(&location, b"one".to_vec(), PutMode::Create)
        .await
        .expect("create");
    assert_eq!(
        b.store.get(&location, Some(&v1)).await.expect("read"),
        GetResult::NotModified
    );
    let v2 = b
        .store
        .put(&location, b"two".to_vec(), PutMode::Update(v1.clone()))
        .await
        .expect("update");
    let (bytes, version) = found(b.store.get(&location, Some(&v1)).await);
    assert_eq!(bytes, b"two", "an old version reads the new value");
    assert_eq!(version, v2);
}

async fn overwrite_writes_whatever_is_there(b: Backend) {
    let location = b.at("overwritten");
    let v1 = b
        .store
        .put(&location, b"one".to_vec(), PutMode::Overwrite)
        .await
        .expect("overwrite creates");
    let v2 = b
        .store
        .put(&location, b"two".to_vec(), PutMode::Overwrite)
        .await
        .expect("overwrite replaces");
    assert_ne!(v1, v2);
    let (bytes, version) = found(b.store.get(&location, None).await);
    assert_eq!(bytes, b"two");
    assert_eq!(version, v2);
}

async fn versions_change_on_every_write_and_reads_report_them(b: Backend) {
    let location = b.at("versions");
    let mut mode = PutMode::Create;
    let mut seen: Vec<Version> = Vec::new();
    for round in 0..4 {
        let bytes = format!("value {round}").into_bytes();
        let version = b
            .store
            .put(&location, bytes.clone(), mode)
            .await
            .expect("write");
        assert!(!seen.contains(&version), "{version} was handed out before");
        let (read, read_version) = found(b.store.get(&location, None).await);
        assert_eq!(read, bytes);
        assert_eq!(read_version, version, "a read reports the written version");
        assert_eq!(b.store.head(&location).await.expect("head"), version);
        seen.push(version.clone());
        mode = PutMode::Update(version);
    }
}

async fn large_values_round_trip_up_to_the_backends_limit(b: Backend) {
    let location = b.at("large");
    let size = b.max_put.unwrap_or(1024 * 1024);
    // Text, so SSM takes it; not all one byte, so truncation would show.
    let value: Vec<u8> = (0..size).map(|i| b'a' + (i % 26) as u8).collect();
    let version = b
        .store
        .put(&location, value.clone(), PutMode::Create)
        .await
        .expect("a value at the limit");
    let (bytes, read_version) = found(b.store.get(&location, None).await);
    assert_eq!(bytes.len(), size);
    assert!(bytes == value, "the large value reads back unchanged");
    assert_eq!(read_version, version);

    // A reader's limit refuses it.
    let limited = b
        .store
        .get_opts(
            &location,
            GetOptions {
                if_none_match: None,
                max_bytes: size as u64 - 1,
            },
        )
        .await;
    assert!(
        matches!(limited, Err(BlobError::TooLarge { size: s, .. }) if s == size as u64),
        "{limited:?}"
    );

    if let Some(limit) = b.max_put {
        let over = vec![b'x'; limit + 1];
        let refused = b
            .store
            .put(&location, over, PutMode::Update(version.clone()))
            .await;
        assert!(
            matches!(refused, Err(BlobError::TooLarge { limit: l, .. }) if l == limit as u64),
            "{refused:?}"
        );
        assert_eq!(b.store.head(&location).await.expect("head"), version);
    }
}

async fn racing_updates_of_one_version(b: Backend) {
    // Several rounds: a broken lock shows in some of them, not necessarily the first.
    for round in 0..5 {
        let location = b.at(&format!("race-{round}"));
        let v0 = b
            .store
            .put(&location, b"start".to_vec(), PutMode::Create)
            .await
            .expect("create");
        let left = b
            .store
            .put(&location, b"left".to_vec(), PutMode::Update(v0.clone()));
        let right = b
            .store
            .put(&location, b"right".to_vec(), PutMode::Update(v0.clone()));
        let (left, right) = tokio::join!(left, right);
        let (bytes, version) = found(b.store.get(&location, None).await);
        let winners: Vec<(&[u8], &Version)> = [(&b"left"[..], &left), (&b"right"[..], &right)]
            .into_iter()
            .filter_map(|(bytes, result)| result.as_ref().ok().map(|v| (bytes, v)))
            .collect();
        match b.race {
            Race::ExactlyOneWins => {
                assert_eq!(winners.len(), 1, "round {round}: {left:?} / {right:?}");
                let loser = if left.is_ok() { &right } else { &left };
                assert!(
                    matches!(loser, Err(BlobError::Precondition { .. })),
                    "round {round}: {loser:?}"
                );
                assert_eq!(bytes, winners[0].0, "round {round}: the winner's bytes");
                assert_eq!(&version, winners[0].1);
            }
            Race::NotPromised(why) => {
                // At least the last writer's value is stored whole.
                assert!(!winners.is_empty(), "round {round} ({why}): nobody won");
                assert!(
                    winners.iter().any(|(b, v)| *b == bytes && **v == version),
                    "round {round} ({why}): the stored value is a winner's"
                );
            }
        }
    }
}

/// One test per promise and backend, named `BACKEND::PROMISE`.
macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            conformance!(@case $backend, get_of_a_missing_value_is_not_found);
            conformance!(@case $backend, create_over_an_existing_value_is_already_exists);
            conformance!(@case $backend, update_with_a_stale_version_is_precondition_and_changes_nothing);
            conformance!(@case $backend, update_of_a_missing_value_is_precondition);
            conformance!(@case $backend, get_with_the_current_version_is_not_modified);
            conformance!(@case $backend, overwrite_writes_whatever_is_there);
            conformance!(@case $backend, versions_change_on_every_write_and_reads_report_them);
            conformance!(@case $backend, large_values_round_trip_up_to_the_backends_limit);
            conformance!(@case $backend, racing_updates_of_one_version);
        }
    };
    (@case $backend:ident, $case:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $case() {
            super::$case(super::$backend().await).await;
        }
    };
}

conformance!(memory);
conformance!(file);
conformance!(s3);
conformance!(ssm);

// ----- What only one backend does. -----

#[tokio::test]
async fn s3_names_a_missing_bucket_on_read_and_write() {
    let config = common::emulator_config().await;
    let bucket = common::unique_name("tugboat-absent");
    let store = S3Store::new(tugboat::aws::s3(&config), bucket.clone());

    let read = store.get("k", None).await;
    let write = store.put("k", b"x".to_vec(), PutMode::Create).await;

    for result in [read.map(|_| ()), write.map(|_| ())] {
        match result {
            Err(BlobError::BucketNotFound { bucket: b, uri }) => {
                assert_eq!(b, bucket);
                assert_eq!(uri, format!("s3://{bucket}/k"));
            }
            other => panic!("expected the missing bucket, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn ssm_refuses_bytes_that_are_not_text() {
    let config = common::emulator_config().await;
    let store = SsmStore::new(tugboat::aws::ssm(&config));
    let name = format!("/{}/binary", common::unique_name("tugboat-blob"));

    let refused = store.put(&name, vec![0xff, 0xfe], PutMode::Create).await;

    match refused {
        Err(err @ BlobError::Other { .. }) => {
            assert!(err.to_string().contains("not UTF-8"), "{err}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let got = store.get(&name, None).await;
    assert!(matches!(got, Err(BlobError::NotFound { .. })), "{got:?}");
}
