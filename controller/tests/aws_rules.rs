//! Drift on tugboat's listener rule beyond its two weighted target groups, against
//! moto's server: a third target group or an extra condition added by hand with another
//! SDK client is named in `ObservedRule::unexpected`, and applying SetWeights rewrites
//! the rule whole, so only the path condition and the two target groups remain.

mod common;

use std::collections::BTreeMap;

use aws_sdk_elasticloadbalancingv2::types as elb;
use common::moto::{self, World};
use common::{Spec, app};
use tugboat::document::Application;
use tugboat::observed::ObservedRule;
use tugboat::plan::Action;
use tugboat::platform::aws::AwsPlatform;
use tugboat::platform::{ActionOutcome, Platform};

const PRIORITY: u32 = 10;

fn set_weights(world: &World, blue: u32, green: u32) -> Action {
    let (blue_tg, green_tg) = world.tg("api");
    Action::SetWeights {
        workload: "api".into(),
        path_patterns: vec!["/api/*".into()],
        priority: PRIORITY,
        blue_target_group: blue_tg,
        green_target_group: green_tg,
        blue,
        green,
    }
}

/// The canary workload `api` with its rule created by the platform at 90/10.
async fn world_with_rule() -> (World, Application, AwsPlatform) {
    // `spare` only lends its target groups, to stand in for one added by hand.
    let world = moto::world(&["api", "spare"], 0).await;
    let (blue, green) = world.tg("api");
    let app = app(
        &world.infra,
        &[Spec::canary("api", "api:1", &blue, &green, PRIORITY)],
    );
    let platform = moto::platform().await;
    platform
        .apply(&app, &set_weights(&world, 90, 10), None)
        .await
        .expect("create the rule");
    (world, app, platform)
}

async fn observed_rule(platform: &AwsPlatform, app: &Application) -> ObservedRule {
    let observation = platform.observe(app).await.expect("observe");
    assert!(
        observation.workload_errors.is_empty(),
        "{:?}",
        observation.workload_errors
    );
    observation.state.workloads["api"]
        .rule
        .clone()
        .expect("the rule is observed")
}

/// The rule at `PRIORITY` as AWS has it.
async fn aws_rule(world: &World) -> elb::Rule {
    moto::clients()
        .await
        .elb
        .describe_rules()
        .listener_arn(world.infra.listener_arn.as_deref().expect("listener"))
        .send()
        .await
        .expect("describe rules")
        .rules()
        .iter()
        .find(|r| r.priority() == Some(&PRIORITY.to_string()))
        .cloned()
        .expect("a rule at the priority")
}

fn path_condition(values: &[&str]) -> elb::RuleCondition {
    elb::RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            elb::PathPatternConditionConfig::builder()
                .set_values(Some(values.iter().map(|v| v.to_string()).collect()))
                .build(),
        )
        .build()
}

/// Asserts AWS holds exactly tugboat's rule: the one path condition and a forward to
/// blue and green with these weights.
async fn assert_rewritten(world: &World, blue: i32, green: i32) {
    let rule = aws_rule(world).await;
    let conditions: Vec<(Option<&str>, Vec<String>)> = rule
        .conditions()
        .iter()
        .map(|c| {
            (
                c.field(),
                c.path_pattern_config()
                    .map(|p| p.values().to_vec())
                    .unwrap_or_else(|| c.values().to_vec()),
            )
        })
        .collect();
    assert_eq!(
        conditions,
        vec![(Some("path-pattern"), vec!["/api/*".to_string()])],
        "only the path condition is left: {rule:?}"
    );
    assert_eq!(rule.actions().len(), 1, "one action: {rule:?}");
    let (blue_tg, green_tg) = world.tg("api");
    let weights = moto::rule_weights(world, PRIORITY).await.expect("rule").1;
    assert_eq!(
        weights,
        BTreeMap::from([(blue_tg, blue), (green_tg, green)]),
        "exactly the two target groups"
    );
}

#[tokio::test]
async fn a_third_target_group_on_the_rule_is_reported_and_set_weights_removes_it() {
    let (world, app, platform) = world_with_rule().await;
    let rule = observed_rule(&platform, &app).await;
    assert!(rule.unexpected.is_empty(), "{:?}", rule.unexpected);

    let (blue, green) = world.tg("api");
    let third = world.tg("spare").0;
    let forward = elb::Action::builder()
        .r#type(elb::ActionTypeEnum::Forward)
        .forward_config(
            elb::ForwardActionConfig::builder()
                .set_target_groups(Some(
                    [(&blue, 80), (&green, 10), (&third, 10)]
                        .into_iter()
                        .map(|(tg, w)| {
                            elb::TargetGroupTuple::builder()
                                .target_group_arn(tg)
                                .weight(w)
                                .build()
                        })
                        .collect(),
                ))
                .build(),
        )
        .build();
    moto::clients()
        .await
        .elb
        .modify_rule()
        .rule_arn(rule.arn.as_deref().expect("arn"))
        .actions(forward)
        .send()
        .await
        .expect("add a third target group by hand");

    let drifted = observed_rule(&platform, &app).await;
    assert_eq!(drifted.unexpected.len(), 1, "{:?}", drifted.unexpected);
    assert!(
        drifted.unexpected[0].contains(&third),
        "the line names the third target group: {:?}",
        drifted.unexpected
    );

    let outcome = platform
        .apply(&app, &set_weights(&world, 90, 10), None)
        .await
        .expect("set weights");
    assert_eq!(outcome, ActionOutcome::Changed);
    assert_rewritten(&world, 90, 10).await;
    assert!(observed_rule(&platform, &app).await.unexpected.is_empty());
}

#[tokio::test]
async fn extra_conditions_on_the_rule_are_reported_and_set_weights_removes_them() {
    let (world, app, platform) = world_with_rule().await;
    let rule = observed_rule(&platform, &app).await;

    let host = elb::RuleCondition::builder()
        .field("host-header")
        .host_header_config(
            elb::HostHeaderConditionConfig::builder()
                .values("admin.example.com")
                .build(),
        )
        .build();
    let header = elb::RuleCondition::builder()
        .field("http-header")
        .http_header_config(
            elb::HttpHeaderConditionConfig::builder()
                .http_header_name("X-Canary")
                .values("1")
                .build(),
        )
        .build();
    moto::clients()
        .await
        .elb
        .modify_rule()
        .rule_arn(rule.arn.as_deref().expect("arn"))
        .conditions(path_condition(&["/api/*"]))
        .conditions(host)
        .conditions(header)
        .send()
        .await
        .expect("add conditions by hand");

    let drifted = observed_rule(&platform, &app).await;
    assert_eq!(
        drifted.path_patterns,
        vec!["/api/*".to_string()],
        "the path is as the document says"
    );
    assert_eq!(drifted.unexpected.len(), 2, "{:?}", drifted.unexpected);
    assert!(
        drifted.unexpected[0].contains("host-header")
            && drifted.unexpected[0].contains("admin.example.com"),
        "{:?}",
        drifted.unexpected
    );
    assert!(
        drifted.unexpected[1].contains("http-header") && drifted.unexpected[1].contains("X-Canary"),
        "{:?}",
        drifted.unexpected
    );

    // Weights and path already match: only the extras make this a change.
    let outcome = platform
        .apply(&app, &set_weights(&world, 90, 10), None)
        .await
        .expect("set weights");
    assert_eq!(outcome, ActionOutcome::Changed);
    assert_rewritten(&world, 90, 10).await;
    assert!(observed_rule(&platform, &app).await.unexpected.is_empty());
}

/// The route's conditions beyond the path and its stickiness reach the rule in ELB's
/// shape, read back as in place (nothing unexpected, so no rewrite each pass), and a
/// condition removed by hand is named and put back by the next SetWeights.
#[tokio::test]
async fn route_conditions_and_stickiness_reach_the_rule_and_read_back_in_place() {
    let world = moto::world(&["api"], 0).await;
    let (blue, green) = world.tg("api");
    let base = app(
        &world.infra,
        &[Spec::canary("api", "api:1", &blue, &green, PRIORITY)],
    );
    let mut doc = serde_json::to_value(&base).expect("serializes");
    doc["spec"]["workloads"][0]["route"]["conditions"] = serde_json::json!([
        {"field": "host-header", "hostHeaderConfig": {"values": ["api.example.com"]}},
        {"field": "http-header", "httpHeaderConfig": {"httpHeaderName": "X-Tenant", "values": ["acme"]}},
        {"field": "http-request-method", "httpRequestMethodConfig": {"values": ["POST"]}},
        {"field": "source-ip", "sourceIpConfig": {"values": ["10.0.0.0/8"]}}
    ]);
    doc["spec"]["workloads"][0]["route"]["targetGroupStickinessConfig"] =
        serde_json::json!({"enabled": true, "durationSeconds": 300});
    doc["spec"]["status"] = serde_json::json!({"uri": "s3://tugboat-test/api/status.json"});
    let app: Application = serde_json::from_value(doc).expect("document shape");
    let problems = tugboat::validate::validate(&app);
    assert!(problems.is_empty(), "{problems:?}");
    let platform = moto::platform().await;
    platform
        .apply(&app, &set_weights(&world, 90, 10), None)
        .await
        .expect("create the rule");

    let rule = aws_rule(&world).await;
    let fields: Vec<&str> = rule.conditions().iter().filter_map(|c| c.field()).collect();
    assert_eq!(
        fields,
        [
            "path-pattern",
            "host-header",
            "http-header",
            "http-request-method",
            "source-ip"
        ]
    );
    let header = rule.conditions()[2]
        .http_header_config()
        .expect("header config");
    assert_eq!(
        (header.http_header_name(), header.values()),
        (Some("X-Tenant"), &["acme".to_string()][..])
    );
    let sticky = rule.actions()[0]
        .forward_config()
        .and_then(|f| f.target_group_stickiness_config())
        .expect("stickiness");
    assert_eq!(
        (sticky.enabled(), sticky.duration_seconds()),
        (Some(true), Some(300))
    );

    let observed = observed_rule(&platform, &app).await;
    assert!(observed.unexpected.is_empty(), "{:?}", observed.unexpected);
    let again = platform
        .apply(&app, &set_weights(&world, 90, 10), None)
        .await
        .expect("apply again");
    assert_eq!(again, ActionOutcome::AlreadyInPlace);

    // Someone drops the header condition by hand: named, and put back.
    let kept: Vec<elb::RuleCondition> = rule
        .conditions()
        .iter()
        .filter(|c| c.field() != Some("http-header"))
        .cloned()
        .collect();
    moto::clients()
        .await
        .elb
        .modify_rule()
        .rule_arn(rule.rule_arn().expect("arn"))
        .set_conditions(Some(kept))
        .send()
        .await
        .expect("modify by hand");
    let observed = observed_rule(&platform, &app).await;
    assert_eq!(
        observed.unexpected,
        ["lacks the document's http-header condition"]
    );
    platform
        .apply(&app, &set_weights(&world, 90, 10), None)
        .await
        .expect("rewrite");
    assert_eq!(aws_rule(&world).await.conditions().len(), 5);
}

/// The `setHeaderRoute` rule for `api`: testers' `x-canary: true` to green alone.
fn set_header_route(world: &World) -> Action {
    let (_, green_tg) = world.tg("api");
    Action::SetHeaderRoute {
        workload: "api".into(),
        name: "testers".into(),
        priority: PRIORITY - 1,
        path_patterns: vec!["/api/*".into()],
        slot: tugboat::document::Slot::Green,
        target_group: green_tg,
        matches: vec![tugboat::document::HeaderRouteMatch {
            header_name: "x-canary".into(),
            header_value: tugboat::document::HeaderValueMatch {
                exact: Some("true".into()),
                ..Default::default()
            },
        }],
    }
}

async fn rule_at(world: &World, priority: u32) -> Option<elb::Rule> {
    moto::clients()
        .await
        .elb
        .describe_rules()
        .listener_arn(world.infra.listener_arn.as_deref().expect("listener"))
        .send()
        .await
        .expect("describe rules")
        .rules()
        .iter()
        .find(|r| r.priority() == Some(&priority.to_string()))
        .cloned()
}

#[tokio::test]
async fn header_route_is_its_own_rule_read_back_after_a_restart_and_deleted() {
    let (world, app, platform) = world_with_rule().await;
    let action = set_header_route(&world);
    let outcome = platform
        .apply(&app, &action, None)
        .await
        .expect("create the header route");
    assert_eq!(outcome, ActionOutcome::Changed);

    // ELB's shape: the route's path, then the http-header condition; 100% to green.
    let rule = rule_at(&world, PRIORITY - 1)
        .await
        .expect("a rule just before");
    let fields: Vec<&str> = rule.conditions().iter().filter_map(|c| c.field()).collect();
    assert_eq!(fields, ["path-pattern", "http-header"]);
    let header = rule.conditions()[1]
        .http_header_config()
        .expect("header config");
    assert_eq!(
        (header.http_header_name(), header.values()),
        (Some("x-canary"), &["true".to_string()][..])
    );
    let (blue_tg, green_tg) = world.tg("api");
    let forward: Vec<(Option<&str>, Option<i32>)> = rule.actions()[0]
        .forward_config()
        .expect("forward")
        .target_groups()
        .iter()
        .map(|t| (t.target_group_arn(), t.weight()))
        .collect();
    assert_eq!(forward, [(Some(green_tg.as_str()), Some(100))]);
    // The weighted rule is untouched, and is not mistaken for the header route.
    let weights = moto::rule_weights(&world, PRIORITY).await.expect("rule").1;
    assert_eq!(weights, BTreeMap::from([(blue_tg, 90), (green_tg, 10)]));

    // A restarted controller (a new platform, empty caches) reads it back from the
    // rule and its tags, exactly as the planner asked for it.
    let restarted = moto::platform().await;
    let observation = restarted.observe(&app).await.expect("observe");
    let seen = observation.state.workloads["api"]
        .header_route
        .clone()
        .expect("the header route is observed");
    let Action::SetHeaderRoute { matches, .. } = &action else {
        unreachable!()
    };
    assert_eq!(seen.name, "testers");
    assert_eq!(seen.slot, Some(tugboat::document::Slot::Green));
    assert_eq!(seen.priority, Some(PRIORITY - 1));
    assert_eq!(&seen.matches, matches);
    let rule_seen = observation.state.workloads["api"]
        .rule
        .clone()
        .expect("rule");
    assert_eq!(
        rule_seen.priority,
        Some(PRIORITY),
        "the weighted rule stays itself"
    );
    assert_eq!(
        restarted.apply(&app, &action, None).await.expect("again"),
        ActionOutcome::AlreadyInPlace
    );

    let before = restarted.api_calls();
    let removed = restarted
        .apply(
            &app,
            &Action::RemoveHeaderRoute {
                workload: "api".into(),
                name: "testers".into(),
            },
            None,
        )
        .await
        .expect("remove the header route");
    assert_eq!(removed, ActionOutcome::Changed);
    let calls = restarted.api_calls().since(&before);
    assert_eq!(calls.by_api.get("elbv2:DeleteRule"), Some(&1), "{calls:?}");
    assert!(rule_at(&world, PRIORITY - 1).await.is_none(), "deleted");
    assert!(
        rule_at(&world, PRIORITY).await.is_some(),
        "the weighted rule stays"
    );
    let observation = restarted.observe(&app).await.expect("observe");
    assert!(observation.state.workloads["api"].header_route.is_none());
}
