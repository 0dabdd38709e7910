//! Model rollouts end to end against moto: the SSM model pointer (as the seed's
//! `/ml-service/model-version`) moved to a new version starts a canary whose task
//! definition carries `MODEL_URI`, `MODEL_VERSION` and `MODEL_SHA256`; a version whose
//! `metadata.json` or `model.onnx` is missing blocks with a clear status and deploys
//! nothing; the pointer reverted mid-canary aborts it safely.

mod common;
mod ops;

use std::collections::BTreeMap;

use common::moto;
use ops::{App, Kill, phase, step};
use sha2::Digest;

async fn put(bucket: &str, key: &str, body: &[u8]) {
    moto::clients()
        .await
        .s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(body.to_vec().into())
        .send()
        .await
        .expect("put object");
}

async fn point(pointer: &str, version: &str) {
    moto::clients()
        .await
        .ssm
        .put_parameter()
        .name(pointer)
        .value(version)
        .r#type(aws_sdk_ssm::types::ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("pointer");
}

/// The MODEL_* environment of the task definition a service runs.
async fn model_env(app: &App, service: &str) -> BTreeMap<String, String> {
    let (_, arn) = moto::service(&app.world, service).await.expect("service");
    let def = moto::clients()
        .await
        .ecs
        .describe_task_definition()
        .task_definition(arn)
        .send()
        .await
        .expect("task definition");
    def.task_definition()
        .map(|d| d.container_definitions())
        .unwrap_or_default()
        .iter()
        .flat_map(|c| c.environment())
        .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
        .filter(|(k, _)| k.starts_with("MODEL_"))
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    hex(&sha2::Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn the_model_pointer_drives_a_canary_and_a_bad_version_deploys_nothing() {
    let app = App::new().await;
    let bucket = moto::unique("models");
    moto::clients()
        .await
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    for v in ["v1", "v2"] {
        let onnx = format!("onnx {v}").into_bytes();
        put(&bucket, &format!("churn/{v}/model.onnx"), &onnx).await;
        let meta = format!(r#"{{"version": "{v}", "sha256": "{}"}}"#, sha(&onnx));
        put(
            &bucket,
            &format!("churn/{v}/metadata.json"),
            meta.as_bytes(),
        )
        .await;
    }
    // v3 has no metadata.json; v4 no model.onnx.
    put(&bucket, "churn/v3/model.onnx", b"onnx v3").await;
    let meta4 = format!(r#"{{"sha256": "{}"}}"#, sha(b"gone"));
    put(&bucket, "churn/v4/metadata.json", meta4.as_bytes()).await;
    let pointer = format!("/{}/ml-service/model-version", moto::unique("m"));
    point(&pointer, "v1").await;
    let store = format!("s3://{bucket}/churn");
    app.write_with("api:1", Some((&store, &pointer)));
    let _controller = Kill(app.run());

    app.until("v1 serves all traffic", |s, w| {
        phase(s) == "Healthy" && w == Some((100, 0))
    })
    .await;
    let env = model_env(&app, "api-blue").await;
    assert_eq!(
        env.get("MODEL_VERSION").map(String::as_str),
        Some("v1"),
        "{env:?}"
    );
    assert_eq!(
        env.get("MODEL_URI"),
        Some(&format!("{store}/v1")),
        "{env:?}"
    );
    assert_eq!(env.get("MODEL_SHA256"), Some(&sha(b"onnx v1")), "{env:?}");
    let family = format!("{}-api", app.world.infra.app_name);
    assert_eq!(moto::revisions(&family).await.len(), 1);

    // A version that cannot be checked blocks, saying why, and deploys nothing.
    for (version, says) in [("v3", "v3/metadata.json"), ("v4", "v4/model.onnx")] {
        point(&pointer, version).await;
        app.until(&format!("{version} blocked"), |s, _| {
            s.workloads["api"]
                .condition("Blocked")
                .is_some_and(|c| c.status && c.message.contains(says))
        })
        .await;
        assert_eq!(
            moto::revisions(&family).await.len(),
            1,
            "{version} deployed nothing"
        );
        assert_eq!(app.weights().await, Some((100, 0)));
        assert!(
            step(&app.read_status().unwrap()).is_none(),
            "no rollout started"
        );
    }

    // v2: a canary with v2's model on green.
    point(&pointer, "v2").await;
    app.until("the v2 canary at its pause with 20%", |s, w| {
        step(s) == Some(1) && w == Some((80, 20))
    })
    .await;
    let env = model_env(&app, "api-green").await;
    assert_eq!(
        env.get("MODEL_VERSION").map(String::as_str),
        Some("v2"),
        "{env:?}"
    );
    assert_eq!(env.get("MODEL_SHA256"), Some(&sha(b"onnx v2")), "{env:?}");
    assert_eq!(moto::revisions(&family).await.len(), 2);

    // The pointer back to v1 mid-canary: the canary is aborted, weight back on v1.
    point(&pointer, "v1").await;
    app.until("back on v1 with all traffic, the canary gone", |s, w| {
        let api = &s.workloads["api"];
        w == Some((100, 0))
            && api.canary.is_none()
            && api.stable.as_ref().and_then(|r| r.slot) == Some(tugboat::document::Slot::Blue)
    })
    .await;
    let s = app.read_status().unwrap();
    assert!(
        s.workloads["api"]
            .events
            .iter()
            .any(|e| e.reason == "Aborted"),
        "{:#?}",
        s.workloads["api"].events
    );
    assert_eq!(
        model_env(&app, "api-blue")
            .await
            .get("MODEL_VERSION")
            .map(String::as_str),
        Some("v1")
    );
    assert_eq!(
        moto::revisions(&family).await.len(),
        2,
        "no duplicate revision"
    );
}
