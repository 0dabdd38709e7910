//! `tugboat diff` says what a document means beyond what it says: a canary whose last
//! `setWeight` is below 100 finishes at 100. Pause durations may be plain seconds.

const DOC: &str = r#"
apiVersion: tugboat.dev/v1alpha1
kind: Application
metadata: {name: shop, environment: test}
spec:
  platform: {local: {listen: "127.0.0.1:8080"}}
  status: {uri: "file:///tmp/status.json"}
  workloads:
    - name: api
      image: api:2
      cpu: 256
      memory: 512
      desiredCount: 2
      containerPort: 8000
      route:
        pathPatterns: ["/api/*"]
        priority: 10
        targetGroups: {blue: tg-b, green: tg-g}
      strategy:
        canary:
          steps: [{setWeight: 10}, {pause: {duration: 30}}, {setWeight: 50}]
    - name: web
      image: web:1
      cpu: 256
      memory: 512
      desiredCount: 1
      containerPort: 8000
      strategy: {rolling: {}}
"#;

#[test]
fn diff_notes_a_canary_that_ends_below_100() {
    let app = tugboat::validate::load(DOC, "doc.yaml").unwrap_or_else(|e| panic!("{e}"));
    let notes = tugboat::cli::diff::document_notes(&app);
    assert_eq!(
        notes,
        "note: workload `api`'s last setWeight is 50: after its steps the rollout moves all traffic to the new revision (a final `setWeight: 100`, as in Argo Rollouts)\n"
    );
    // `pause: {duration: 30}` is plain seconds, as in Argo Rollouts.
    let tugboat::document::Strategy::Canary(c) = &app.spec.workloads[0].strategy else {
        panic!("canary")
    };
    assert_eq!(
        c.steps[1],
        tugboat::document::CanaryStep::Pause(tugboat::document::PauseStep {
            duration: Some(tugboat::document::DurationSpec::from_secs(30))
        })
    );
    let quoted = DOC.replace("duration: 30}", "duration: \"45\"}");
    let app2 = tugboat::validate::load(&quoted, "doc.yaml").unwrap_or_else(|e| panic!("{e}"));
    let tugboat::document::Strategy::Canary(c) = &app2.spec.workloads[0].strategy else {
        panic!("canary")
    };
    assert!(
        matches!(&c.steps[1], tugboat::document::CanaryStep::Pause(p) if p.duration == Some(tugboat::document::DurationSpec::from_secs(45)))
    );
    let negative = DOC.replace("duration: 30}", "duration: -5}");
    assert!(tugboat::validate::load(&negative, "doc.yaml").is_err());
    let full = DOC.replace("{setWeight: 50}]", "{setWeight: 100}]");
    let app = tugboat::validate::load(&full, "doc.yaml").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tugboat::cli::diff::document_notes(&app), "");
}
