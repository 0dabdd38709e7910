//! Shared by the tests that talk to the AWS emulator (moto's server) through the real
//! SDK: its configuration, and names no other test uses.
//!
//! `.ci/test` starts the emulator and exports `AWS_ENDPOINT_URL`, test credentials and a
//! region. Without `AWS_ENDPOINT_URL` these tests fail with a message saying so: a run
//! that skipped them must never look green.

// Each test file compiles this module on its own and uses a different part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;

/// Panics unless the emulator's endpoint is configured; returns it.
pub fn require_emulator() -> String {
    match std::env::var("AWS_ENDPOINT_URL") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "AWS_ENDPOINT_URL is not set: this test talks to the AWS emulator. Run the tests \
             through .ci/test, which starts moto's server and exports AWS_ENDPOINT_URL, \
             AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_REGION."
        ),
    }
}

/// The SDK configuration tugboat itself uses, pointed at the emulator.
pub async fn emulator_config() -> SdkConfig {
    let endpoint = require_emulator();
    let config = tugboat::aws::sdk_config(None).await;
    assert_eq!(
        config.endpoint_url(),
        Some(endpoint.as_str()),
        "aws-config should pick up AWS_ENDPOINT_URL by itself"
    );
    config
}

/// A name no other test (in this or a concurrent run) uses: lower-case, digits and `-`,
/// valid for S3 buckets (at most 63 characters) and SSM parameters.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates a bucket of its own for one test.
pub async fn fresh_bucket(config: &SdkConfig) -> String {
    let bucket = unique_name("tugboat-test");
    tugboat::aws::s3(config)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap_or_else(|err| {
            panic!(
                "creating bucket {bucket} on the emulator: {}",
                tugboat::aws::describe(&err)
            )
        });
    bucket
}
