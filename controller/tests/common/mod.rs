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

// ----- Documents for the loop and platform tests. -----

use tugboat::document::Application;
use tugboat::runtime::DesiredDocument;

pub mod conformance;
pub mod inbox;
pub mod moto;
pub mod proxy;

/// Where the application runs; placeholders for the in-memory platform.
#[derive(Debug, Clone)]
pub struct Infra {
    /// `metadata.name`; unique per test against a shared emulator (families are global).
    pub app_name: String,
    pub cluster: String,
    pub subnets: Vec<String>,
    pub security_groups: Vec<String>,
    pub listener_arn: Option<String>,
    pub status_uri: Option<String>,
}

impl Infra {
    pub fn fake() -> Self {
        Self {
            app_name: "shop".into(),
            cluster: "shop".into(),
            subnets: vec!["subnet-1".into()],
            security_groups: vec!["sg-1".into()],
            listener_arn: Some("listener".into()),
            status_uri: None,
        }
    }
}

/// One workload of a test document.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub image: String,
    pub desired_count: u32,
    /// (blue, green) target groups and the rule priority, for progressive workloads.
    pub route: Option<(String, String, u32)>,
}

impl Spec {
    pub fn rolling(name: &str, image: &str) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            desired_count: 1,
            route: None,
        }
    }

    pub fn canary(name: &str, image: &str, blue: &str, green: &str, priority: u32) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            desired_count: 2,
            route: Some((blue.into(), green.into(), priority)),
        }
    }
}

pub fn app(infra: &Infra, workloads: &[Spec]) -> Application {
    let workloads: Vec<_> = workloads
        .iter()
        .map(|w| {
            let mut json = serde_json::json!({
                "name": w.name, "image": w.image, "cpu": 256, "memory": 512,
                "desiredCount": w.desired_count, "containerPort": 8000,
                "strategy": {"rolling": {}},
            });
            if let Some((blue, green, priority)) = &w.route {
                json["route"] = serde_json::json!({
                    "pathPatterns": [format!("/{}/*", w.name)], "priority": priority,
                    "targetGroups": {"blue": blue, "green": green},
                });
                json["strategy"] = serde_json::json!({"canary": {
                    "steps": [{"setWeight": 50}, {"setWeight": 100}],
                    "scaleDownDelay": "0s", "abortScaleDownDelay": "0s"
                }});
            }
            json
        })
        .collect();
    let mut aws = serde_json::json!({
        "region": "us-east-1", "cluster": infra.cluster, "subnets": infra.subnets,
        "securityGroups": infra.security_groups,
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    });
    if let Some(listener) = &infra.listener_arn {
        aws["listenerArn"] = serde_json::json!(listener);
    }
    let mut doc = serde_json::json!({
        "apiVersion": "tugboat.dev/v1alpha1",
        "kind": "Application",
        "metadata": {"name": infra.app_name, "environment": "test"},
        "spec": {"platform": {"aws": aws}, "workloads": workloads},
    });
    if let Some(uri) = &infra.status_uri {
        doc["spec"]["status"] = serde_json::json!({"uri": uri});
    }
    serde_json::from_value(doc).expect("test document matches the schema")
}

pub fn desired(app: Application, revision: &str) -> DesiredDocument {
    DesiredDocument {
        app,
        revision: revision.into(),
    }
}

/// A minimal valid document (one rolling workload, no AWS resources named beyond the
/// platform block); `image` makes revisions differ.
pub fn minimal_document(image: &str) -> String {
    format!(
        "apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata:
  name: demo
  environment: test
spec:
  platform:
    aws:
      region: us-east-1
      cluster: demo
      subnets: [subnet-1]
      securityGroups: [sg-1]
      executionRoleArn: arn:aws:iam::123456789012:role/exec
  workloads:
    - name: backend
      image: {image}
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8000
      strategy:
        rolling: {{}}
"
    )
}
