//! `tugboat import` over the corpus in `tests/corpus/`: each task definition (with its
//! service, when there is one) imports into a workload that validates, and the definition
//! tugboat would register for it equals the input in every field tugboat carries. Every
//! other field is a note of the import, and the notes are exactly the expected ones: a
//! field dropped without a note, or a supported field reported as unsupported, fails.

mod importing;

use std::collections::BTreeSet;

use importing::{EXPECTED_UNSUPPORTED, compare, corpus, document, read, service_of, task_files};
use serde_json::json;
use tugboat::cli::import::{self, NoteKind};

#[test]
fn every_corpus_definition_round_trips_through_import() {
    let files = task_files();
    assert_eq!(
        files.len(),
        EXPECTED_UNSUPPORTED.len(),
        "one expectation per corpus file"
    );
    for (stem, file) in files {
        let original = read(&file);
        let service = service_of(&stem);
        let imported = import::import(&original, service.as_ref(), None)
            .unwrap_or_else(|e| panic!("{stem}: {e}"));

        let unsupported: BTreeSet<String> = imported
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Unsupported)
            .map(|n| n.path_text())
            .collect();
        let expected: BTreeSet<String> = EXPECTED_UNSUPPORTED
            .iter()
            .find(|(s, _)| *s == stem)
            .unwrap_or_else(|| panic!("no expectation for {stem}"))
            .1
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            unsupported, expected,
            "{stem}: the fields reported as not carried"
        );

        let yaml = import::render(&imported, &format!("{stem}.task.json")).expect("renders");
        for note in imported
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Unsupported)
        {
            assert!(
                yaml.contains(&format!("#   {}: ", note.path_text())),
                "{stem}: {yaml}"
            );
        }
        let app = tugboat::validate::load(&document(&yaml), &stem).unwrap_or_else(|e| {
            panic!("{stem}: the imported workload does not validate:\n{e}\n{yaml}")
        });
        let workload = &app.spec.workloads[0];
        let registered = tugboat::taskdef::render(&app, workload, None).ecs_json();

        let (expected, actual) = compare(&original, &imported, &registered);
        assert_eq!(
            expected, actual,
            "{stem}: the definition tugboat would register differs from the input (left: input, right: tugboat)"
        );
        // The family follows tugboat's rule.
        assert_eq!(registered["family"], format!("imported-{}", workload.name));
    }
}

#[test]
fn the_service_gives_the_name_the_count_the_rolling_settings_and_the_main_container() {
    let td = read(&corpus().join("describe-output.task.json"));
    let svc = read(&corpus().join("describe-output.service.json"));
    let imported = import::import(&td, Some(&svc), None).expect("imports");
    let w = &imported.workload;
    assert_eq!(w.name, "orders-api");
    assert_eq!(w.desired_count, 3);
    assert_eq!(w.container_port, Some(8080));
    let tugboat::document::Strategy::Rolling(r) = &w.strategy else {
        panic!("{:?}", w.strategy)
    };
    assert_eq!(
        (r.maximum_percent, r.minimum_healthy_percent),
        (Some(200), Some(100))
    );
}

#[test]
fn the_main_container_is_the_one_the_load_balancer_names() {
    let td = read(&corpus().join("copilot.task.json"));
    let svc = json!({"serviceName": "frontend", "desiredCount": 2,
        "loadBalancers": [{"targetGroupArn": "arn:tg", "containerName": "nginx", "containerPort": 80}]});
    let imported = import::import(&td, Some(&svc), None).expect("imports");
    assert_eq!(imported.workload.container_name.as_deref(), Some("nginx"));
    assert_eq!(imported.workload.container_port, Some(80));
    assert_eq!(imported.workload.sidecars[0].name, "frontend");
}

/// describe-services keeps Service Connect on the primary deployment and Cloud Map on
/// the service: both come over in ECS's shape (the idle timeout is a note), and the
/// document tugboat writes sends them back on CreateService as they were.
#[test]
fn service_discovery_comes_from_the_primary_deployment_and_the_registries() {
    let td = read(&corpus().join("service-connect.task.json"));
    let svc = read(&corpus().join("service-connect.service.json"));
    let imported = import::import(&td, Some(&svc), None).expect("imports");
    let settings = imported.workload.service.clone().expect("service settings");
    let got = serde_json::to_value(&settings).expect("json");
    let input = &svc["services"][0];
    let mut sc = input["deployments"][0]["serviceConnectConfiguration"].clone();
    sc["services"][0]
        .as_object_mut()
        .expect("object")
        .remove("timeout");
    assert_eq!(got["serviceConnectConfiguration"], sc);
    assert_eq!(got["serviceRegistries"], input["serviceRegistries"]);
    let yaml = import::render(&imported, "service-connect.task.json").expect("renders");
    let app = tugboat::validate::load(&document(&yaml), "service-connect").expect("validates");
    assert_eq!(app.spec.workloads[0].service.as_ref(), Some(&settings));
}
