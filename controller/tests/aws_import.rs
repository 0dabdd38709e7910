//! `tugboat import` end to end against moto's server: every corpus definition, imported
//! and registered through the AWS platform (the SDK request, not the JSON rendering),
//! reads back from ECS as the input in every field tugboat carries.

mod common;
mod importing;

use common::moto;
use importing::{compare, document, read, service_of, task_files};
use serde_json::{Value, json};
use tugboat::cli::import;
use tugboat::plan::Action;
use tugboat::platform::{ActionOutcome, Platform};

/// DescribeTaskDefinition as raw JSON (the SDK's types would hide what moto stored).
async fn describe_raw(arn: &str) -> Value {
    let response = reqwest::Client::new()
        .post(moto::endpoint())
        .header(
            "Authorization",
            format!(
                "AWS4-HMAC-SHA256 Credential=test/20260101/{}/ecs/aws4_request, \
                 SignedHeaders=host, Signature=0",
                moto::REGION
            ),
        )
        .header("Content-Type", "application/x-amz-json-1.1")
        .header(
            "X-Amz-Target",
            "AmazonEC2ContainerServiceV20141113.DescribeTaskDefinition",
        )
        .body(json!({"taskDefinition": arn}).to_string())
        .send()
        .await
        .expect("ECS call reaches moto");
    let status = response.status();
    let body = response.text().await.expect("body");
    assert!(status.is_success(), "DescribeTaskDefinition failed: {body}");
    let mut v: Value = serde_json::from_str(&body).expect("JSON");
    v["taskDefinition"].take()
}

#[tokio::test]
async fn every_imported_corpus_definition_registers_in_ecs_as_the_input() {
    let platform = moto::platform().await;
    for (stem, file) in task_files() {
        let original = read(&file);
        let imported = import::import(&original, service_of(&stem).as_ref(), None)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));
        let yaml = import::render(&imported, &stem).expect("renders");
        // A unique application name: families are global in the shared emulator.
        let text = document(&yaml).replacen(
            "name: imported,",
            &format!("name: {},", moto::unique("imp")),
            1,
        );
        let app = tugboat::validate::load(&text, &stem).unwrap_or_else(|e| panic!("{stem}: {e}"));
        let workload = &app.spec.workloads[0];
        let definition = tugboat::taskdef::render(&app, workload, None);
        let outcome = platform
            .apply(
                &app,
                &Action::RegisterTaskDefinition {
                    workload: workload.name.clone(),
                    content_hash: definition.content_hash(),
                    definition,
                },
                None,
            )
            .await
            .unwrap_or_else(|e| panic!("{stem}: register: {e}"));
        let ActionOutcome::TaskDefinition { arn, .. } = outcome else {
            panic!("{stem}: register answered {outcome:?}");
        };
        let stored = describe_raw(&arn).await;
        let (expected, actual) = compare(&original, &imported, &stored);
        assert_eq!(
            expected, actual,
            "{stem}: what ECS stored differs from the input (left: input, right: ECS)"
        );
    }
}
