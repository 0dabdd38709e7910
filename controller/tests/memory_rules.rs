//! The in-memory platform mirrors the AWS platform's rule drift (tests/aws_rules.rs): a
//! third target group or an extra added by hand to the fake rule is reported in
//! `ObservedRule::unexpected`, and SetWeights rewrites the rule so they go away.

mod common;

use std::collections::BTreeMap;

use common::{Infra, Spec, app};
use tugboat::document::Application;
use tugboat::observed::ObservedRule;
use tugboat::plan::Action;
use tugboat::platform::memory::MemoryPlatform;
use tugboat::platform::{ActionOutcome, Platform};

const BLUE: &str = "tg-api-blue";
const GREEN: &str = "tg-api-green";

fn set_weights(blue: u32, green: u32) -> Action {
    Action::SetWeights {
        workload: "api".into(),
        path_patterns: vec!["/api/*".into()],
        priority: 10,
        blue_target_group: BLUE.into(),
        green_target_group: GREEN.into(),
        blue,
        green,
    }
}

async fn rule(platform: &MemoryPlatform, app: &Application) -> ObservedRule {
    platform
        .observe(app)
        .await
        .expect("observe")
        .state
        .workloads["api"]
        .rule
        .clone()
        .expect("rule")
}

#[tokio::test]
async fn extras_on_the_fake_rule_are_unexpected_until_set_weights_rewrites_it() {
    let app = app(
        &Infra::fake(),
        &[Spec::canary("api", "api:1", BLUE, GREEN, 10)],
    );
    let platform = MemoryPlatform::new();
    platform
        .apply(&app, &set_weights(90, 10), None)
        .await
        .expect("create the rule");
    assert!(rule(&platform, &app).await.unexpected.is_empty());

    platform.with_state(|s| {
        let rule = s.rules.get_mut("api").expect("rule");
        rule.weights.insert("tg-by-hand".into(), 5);
        s.rule_extras.insert(
            "api".into(),
            vec![r#"has an extra host-header condition ["admin.example.com"]"#.into()],
        );
    });
    let drifted = rule(&platform, &app).await;
    assert_eq!(
        drifted.unexpected,
        vec![
            "forwards to a third target group tg-by-hand".to_string(),
            r#"has an extra host-header condition ["admin.example.com"]"#.to_string(),
        ]
    );

    // Only the extra condition left: weights and path match, the rule is still rewritten.
    platform.with_state(|s| {
        s.rules
            .get_mut("api")
            .expect("rule")
            .weights
            .remove("tg-by-hand");
    });
    assert_eq!(
        platform
            .apply(&app, &set_weights(90, 10), None)
            .await
            .expect("set weights"),
        ActionOutcome::Changed
    );
    assert!(rule(&platform, &app).await.unexpected.is_empty());
    platform.with_state(|s| {
        assert_eq!(
            s.rules["api"].weights,
            BTreeMap::from([(BLUE.to_string(), 90), (GREEN.to_string(), 10)])
        );
    });
    assert_eq!(
        platform
            .apply(&app, &set_weights(90, 10), None)
            .await
            .expect("set weights"),
        ActionOutcome::AlreadyInPlace,
        "a clean rule at the weights is left alone"
    );
}
