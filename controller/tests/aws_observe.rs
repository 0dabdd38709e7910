//! What a pass reads on AWS besides services and rules, against moto's server: operator
//! overrides from SSM (the inbox), models resolved through S3 metadata and SSM pointers
//! (the resolver), and an idle slot changed by hand once nothing is reused from an
//! earlier pass.

mod common;

use std::time::Duration;

use aws_sdk_ssm::types::ParameterType;
use common::moto;
use common::{Spec, app, desired};
use tugboat::document::Model;
use tugboat::observed::{ModelResolution, OperatorActionKind};
use tugboat::runtime::Reconciler;
use tugboat::status::Timestamp;

const SHA: &str = "c5c48b0686e5d5c9ac7b4db283ad6376fd90ae4680d05b87472ca588ff6d8b5c";

async fn put_parameter(name: &str, value: &str) -> i64 {
    moto::clients()
        .await
        .ssm
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(ParameterType::String)
        .overwrite(true)
        .send()
        .await
        .expect("put parameter")
        .version()
}

#[tokio::test]
async fn overrides_under_the_prefix_become_weight_pins_and_versioned_actions_and_bad_values_are_reported()
 {
    let world = moto::world(&[], 0).await;
    let app = app(
        &world.infra,
        &[
            Spec::rolling("api", "api:1"),
            Spec::rolling("worker", "w:1"),
        ],
    );
    let prefix = app.overrides_prefix();
    put_parameter(
        &format!("{prefix}/api/weight"),
        r#"{"weight": 0, "reason": "INC-1", "expires": "2030-01-01T00:00:00Z"}"#,
    )
    .await;
    put_parameter(&format!("{prefix}/api/action"), "promote").await;
    let version = put_parameter(&format!("{prefix}/api/action"), "abort").await;
    put_parameter(&format!("{prefix}/worker/weight"), "250").await;

    let inputs = moto::inputs().await;
    let read = inputs.inbox.read(&app).await.expect("read the inbox");
    let api = &read.by_workload["api"];
    let pin = api.weight_pin.as_ref().expect("weight pin");
    assert_eq!((pin.weight, pin.reason.as_deref()), (0, Some("INC-1")));
    assert!(pin.expires.is_some());
    let action = api.action.as_ref().expect("action");
    assert_eq!(action.kind, OperatorActionKind::Abort);
    assert_eq!(action.version, u64::try_from(version).expect("positive"));
    let worker = &read.by_workload["worker"];
    assert_eq!(worker.weight_pin, None, "a weight of 250 is not a pin");
    assert!(
        worker
            .unreadable_weight
            .as_deref()
            .is_some_and(|w| w.contains("between 0 and 100")),
        "but the workload learns of it, so its rollout holds: {worker:?}"
    );
    let problems = &read.problems["worker"];
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains(&format!("SSM parameter {prefix}/worker/weight"))
            && problems[0].contains("between 0 and 100"),
        "the problem names the parameter and what is wrong: {}",
        problems[0]
    );
    assert_eq!(
        inputs.api_calls().get("ssm:GetParametersByPath"),
        1,
        "the inbox's calls are counted"
    );
}

#[tokio::test]
async fn models_resolve_through_metadata_and_pointers_and_a_wrong_checksum_is_refused() {
    let world = moto::world(&[], 0).await;
    let clients = moto::clients().await;
    let bucket = moto::unique("models");
    clients
        .s3
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("bucket");
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key("churn/v1/metadata.json")
        .body(
            format!(r#"{{"version": "v1", "sha256": "{SHA}"}}"#)
                .into_bytes()
                .into(),
        )
        .send()
        .await
        .expect("metadata");
    // The artifact itself (the resolver checks that it exists).
    clients
        .s3
        .put_object()
        .bucket(&bucket)
        .key("churn/v1/model.onnx")
        .body(b"onnx".to_vec().into())
        .send()
        .await
        .expect("artifact");
    let pointer = format!("/{}/model-version", moto::unique("ml"));
    put_parameter(&pointer, "v1").await;

    let mut app = app(&world.infra, &[Spec::rolling("api", "api:1")]);
    let store = format!("s3://{bucket}/churn");
    let model =
        |name: &str, version: Option<&str>, parameter: Option<&str>, sha: Option<&str>| Model {
            name: name.into(),
            store_uri: store.clone(),
            version: version.map(Into::into),
            version_parameter: parameter.map(Into::into),
            sha256: sha.map(Into::into),
        };
    app.spec.models = vec![
        model(
            "fixed",
            Some("v1"),
            None,
            Some(&format!("sha256:{}", SHA.to_uppercase())),
        ),
        model("pointer", None, Some(&pointer), None),
        model("tampered", Some("v1"), None, Some(&"0".repeat(64))),
        model("missing", Some("v9"), None, None),
    ];
    let inputs = moto::inputs().await;
    let models = inputs.models.resolve(&app).await.expect("resolve");
    assert!(
        inputs.api_calls().get("s3:GetObject") >= 2,
        "the resolver's calls are counted: {}",
        inputs.api_calls()
    );
    for name in ["fixed", "pointer"] {
        match &models[name] {
            ModelResolution::Resolved(m) => {
                assert_eq!(m.version, "v1");
                assert_eq!(m.sha256, SHA);
                assert_eq!(m.uri, format!("{store}/v1"));
            }
            other => panic!("{name} should resolve: {other:?}"),
        }
    }
    match &models["tampered"] {
        ModelResolution::Failed(why) => assert!(why.contains("expects"), "{why}"),
        other => panic!("a checksum mismatch must not resolve: {other:?}"),
    }
    match &models["missing"] {
        ModelResolution::Failed(why) => assert!(why.contains("v9/metadata.json"), "{why}"),
        other => panic!("a missing version must not resolve: {other:?}"),
    }
}

#[tokio::test]
async fn an_idle_slot_scaled_up_by_hand_is_scaled_back_once_nothing_is_reused() {
    let world = moto::world(&["api"], 2).await;
    let (blue, green) = world.tg("api");
    // Reuse nothing observed at rest, as if a resync period had passed since.
    let platform = moto::platform()
        .await
        .with_rest_cache_max_age(Duration::ZERO);
    let mut reconciler = Reconciler::with_inputs(platform, moto::inputs().await, None);
    let mut now = Timestamp::from_secs(1_000);
    // Converge twice over: a first rollout, then a second so the green slot exists, idle.
    for image in ["api:1", "api:2"] {
        let doc = desired(
            app(
                &world.infra,
                &[Spec::canary("api", image, &blue, &green, 10)],
            ),
            image,
        );
        for _ in 0..20 {
            let report = reconciler.pass(&doc, now).await.expect("pass");
            moto::settle(&world).await;
            now = now.plus(Duration::from_secs(1));
            if report.planned == 0 && report.requeue_after.is_none() {
                break;
            }
        }
    }
    let stable = reconciler.status().expect("status").workloads["api"]
        .stable
        .clone()
        .expect("stable revision");
    let idle = format!("api-{}", stable.slot.expect("a slot").other());
    assert_eq!(
        moto::service(&world, &idle).await.map(|s| s.0),
        Some(0),
        "{:#?}",
        reconciler.status()
    );

    moto::clients()
        .await
        .ecs
        .update_service()
        .cluster(&world.infra.cluster)
        .service(&idle)
        .desired_count(3)
        .send()
        .await
        .expect("scale the idle slot by hand");
    let current = desired(
        app(
            &world.infra,
            &[Spec::canary("api", "api:2", &blue, &green, 10)],
        ),
        "api:2",
    );
    let healing = reconciler.pass(&current, now).await.expect("pass");
    assert!(
        healing.execution.changes() >= 1,
        "{:#?}",
        healing.execution.applied
    );
    assert_eq!(moto::service(&world, &idle).await.map(|s| s.0), Some(0));
}
