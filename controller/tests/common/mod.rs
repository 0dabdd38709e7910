//! Documents for the loop and platform tests.
#![allow(dead_code)]

use tugboat::document::Application;
use tugboat::reconcile::DesiredDocument;

pub mod moto;

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
