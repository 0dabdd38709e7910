//! The conformance suite on AWS, through the real SDK against moto's server
//! (`AWS_ENDPOINT_URL`, set by `.ci/test`). Each test builds its own world.

mod common;

use aws_sdk_elasticloadbalancingv2::types as elb;
use common::Infra;
use common::conformance::{self, Harness};
use common::moto::{self, World};
use tugboat::platform::aws::AwsPlatform;

#[derive(Debug)]
struct Moto {
    world: World,
}

impl Moto {
    async fn new() -> Self {
        Self {
            world: moto::world(&["api"], 2).await,
        }
    }
}

async fn image(task_definition_arn: &str) -> String {
    moto::clients()
        .await
        .ecs
        .describe_task_definition()
        .task_definition(task_definition_arn)
        .send()
        .await
        .expect("describe task definition")
        .task_definition()
        .and_then(|d| d.container_definitions().first())
        .and_then(|c| c.image())
        .unwrap_or_default()
        .to_string()
}

impl Harness for Moto {
    type P = AwsPlatform;

    async fn platform(&self) -> AwsPlatform {
        moto::platform().await
    }

    async fn inputs(&self) -> tugboat::runtime::SideInputs {
        moto::inputs().await
    }

    fn infra(&self) -> &Infra {
        &self.world.infra
    }

    fn target_groups(&self, workload: &str) -> (String, String) {
        self.world.tg(workload)
    }

    async fn settle(&self) {
        moto::settle(&self.world).await;
    }

    async fn service(&self, name: &str) -> Option<(u32, String)> {
        let (count, arn) = moto::service(&self.world, name).await?;
        Some((
            u32::try_from(count).expect("non-negative"),
            image(&arn).await,
        ))
    }

    async fn weights(&self, workload: &str) -> Option<(u32, u32)> {
        let (blue, green) = self.world.tg(workload);
        let (_, weights) = moto::rule_weights(&self.world, 10).await?;
        let weight = |tg: &str| u32::try_from(weights.get(tg).copied().unwrap_or(0)).unwrap_or(0);
        Some((weight(&blue), weight(&green)))
    }

    async fn revisions(&self, workload: &str) -> Vec<String> {
        let family = format!("{}-{workload}", self.world.infra.app_name);
        let mut images = Vec::new();
        for arn in moto::revisions(&family).await {
            images.push(image(&arn).await);
        }
        images
    }

    async fn scale_by_hand(&self, service: &str, count: u32) {
        moto::clients()
            .await
            .ecs
            .update_service()
            .cluster(&self.world.infra.cluster)
            .service(service)
            .desired_count(i32::try_from(count).expect("small"))
            .send()
            .await
            .expect("scale by hand");
    }

    async fn reweight_by_hand(&self, workload: &str, blue: u32, green: u32) {
        let (blue_tg, green_tg) = self.world.tg(workload);
        let (rule_arn, _) = moto::rule_weights(&self.world, 10).await.expect("rule");
        let tuple = |tg: &str, weight: u32| {
            elb::TargetGroupTuple::builder()
                .target_group_arn(tg)
                .weight(i32::try_from(weight).expect("small"))
                .build()
        };
        let forward = elb::Action::builder()
            .r#type(elb::ActionTypeEnum::Forward)
            .forward_config(
                elb::ForwardActionConfig::builder()
                    .target_groups(tuple(&blue_tg, blue))
                    .target_groups(tuple(&green_tg, green))
                    .build(),
            )
            .build();
        moto::clients()
            .await
            .elb
            .modify_rule()
            .rule_arn(rule_arn)
            .actions(forward)
            .send()
            .await
            .expect("reweight by hand");
    }
}

#[tokio::test]
async fn conformance_first_deployment_then_a_no_op_pass() {
    conformance::first_deployment_then_a_no_op_pass(&Moto::new().await).await;
}

#[tokio::test]
async fn conformance_drift_by_hand_is_healed_and_recorded() {
    conformance::drift_by_hand_is_healed_and_recorded(&Moto::new().await).await;
}

#[tokio::test]
async fn conformance_a_new_image_registers_one_revision_on_the_idle_slot() {
    conformance::a_new_image_registers_one_revision_on_the_idle_slot(&Moto::new().await).await;
}

#[tokio::test]
async fn conformance_crashes_between_calls_leave_no_duplicates() {
    conformance::crashes_between_calls_leave_no_duplicates(&Moto::new().await).await;
}

// ----- The inbox suite on SSM. -----

mod inbox_suite {
    use super::common::inbox::{self, shop};
    use super::moto;
    use tugboat::inbox::Inbox;
    use tugboat::inbox::ssm::SsmInbox;

    async fn ssm() -> (SsmInbox, tugboat::document::Application) {
        let inbox = SsmInbox::new(
            moto::clients().await.ssm,
            std::sync::Arc::new(tugboat::budget::Budgets::new()),
        );
        (inbox, shop(&moto::unique("inbox")))
    }

    #[tokio::test]
    async fn ssm_inbox_empty() {
        let (inbox, app) = ssm().await;
        inbox::an_empty_inbox_reads_empty(&inbox, &app).await;
    }

    #[tokio::test]
    async fn ssm_inbox_written_values_read_back() {
        let (inbox, app) = ssm().await;
        inbox::written_values_read_back_as_overrides(&inbox, &app).await;
    }

    #[tokio::test]
    async fn ssm_inbox_each_action_write_is_a_new_version() {
        let (inbox, app) = ssm().await;
        inbox::each_write_of_an_action_is_a_new_higher_version(&inbox, &app).await;
    }

    #[tokio::test]
    async fn ssm_inbox_recorded_writes_read_back_with_who_and_why() {
        let (inbox, app) = ssm().await;
        inbox::a_recorded_write_reads_back_with_who_and_why(&inbox, &app, false).await;
        // The metadata is looked up once per new version: an unchanged read is one call.
        let before = inbox.api_calls().total();
        inbox.read(&app).await.expect("read");
        assert_eq!(
            inbox.api_calls().total(),
            before + 1,
            "{}",
            inbox.api_calls()
        );
    }

    #[tokio::test]
    async fn ssm_inbox_cleared_values_are_gone() {
        let (inbox, app) = ssm().await;
        inbox::a_cleared_value_is_gone_and_the_others_stay(&inbox, &app).await;
    }

    #[tokio::test]
    async fn ssm_inbox_bad_values_are_reported() {
        let (inbox, app) = ssm().await;
        inbox::a_value_that_does_not_parse_is_reported_by_name_and_the_rest_still_read(
            &inbox, &app,
        )
        .await;
    }
}

#[tokio::test]
async fn conformance_a_header_route_reaches_the_canary_alone_and_goes_at_abort() {
    conformance::a_header_route_reaches_the_canary_alone_and_goes_at_abort(&Moto::new().await)
        .await;
}
