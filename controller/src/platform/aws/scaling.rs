//! Application Auto Scaling of the workloads' ECS services, through the SDK.
//!
//! Guarantees:
//! - Observed and healed like the other resources: every pass that has a scaled workload
//!   (or found a target the pass before, or is this platform's first) reads the app's
//!   services' scalable targets in one DescribeScalableTargets per 50 services, and the
//!   policies and scheduled actions of the targets found, back into the document's
//!   shape (`ObservedScaling`); the planner compares and asks again.
//! - Exactly the document's: EnsureScaling registers the range, puts one target-tracking
//!   policy per metric (named `tugboat-<metric>`) and each scheduled action, and deletes
//!   any other policy or scheduled action on the target. RemoveScaling deletes them and
//!   deregisters the target (moto keeps policies of a deregistered target; AWS does not).
//! - Every call is counted by its IAM action name (`application-autoscaling:...`) and
//!   spends a token of [`QuotaClass::Scaling`].
//! - Request building is pure ([`register_request`], [`policy_request`],
//!   [`scheduled_request`], [`resource_label`]) and unit-tested without a network.

use std::collections::BTreeMap;

use aws_sdk_applicationautoscaling as aas;
use aws_sdk_applicationautoscaling::types::{
    MetricType, PolicyType, PredefinedMetricSpecification, ScalableDimension, ServiceNamespace,
    TargetTrackingScalingPolicyConfiguration,
};

use crate::budget::QuotaClass;
use crate::document::{
    Application, AutoScaling, AwsPlatform as AwsSettings, PredefinedMetric, ScalableTargetAction,
    ScheduledAction, Slot, TargetTracking, Workload,
};
use crate::observed::ObservedScaling;

use super::{AwsPlatform, classify};
use crate::platform::{CallKind, PlatformError, service_name};

/// At most this many resource IDs per DescribeScalableTargets (the API's limit).
const RESOURCE_IDS_PER_CALL: usize = 50;

/// `service/<cluster name>/<service>`: Application Auto Scaling's ID of an ECS service.
pub fn resource_id(cluster: &str, service: &str) -> String {
    let cluster = cluster
        .rsplit_once(":cluster/")
        .map_or(cluster, |(_, name)| name);
    format!("service/{cluster}/{service}")
}

/// The policy tugboat keeps for `metric` on a target.
pub fn policy_name(metric: PredefinedMetric) -> String {
    format!("tugboat-{}", metric.as_str())
}

/// `app/<lb>/<id>/targetgroup/<tg>/<id>`, the label `ALBRequestCountPerTarget` needs,
/// from the listener's and the target group's ARNs.
pub fn resource_label(listener_arn: &str, target_group_arn: &str) -> Option<String> {
    let lb = listener_arn.split_once(":listener/")?.1;
    let parts: Vec<&str> = lb.split('/').collect();
    let [kind, name, id, ..] = parts.as_slice() else {
        return None;
    };
    let tg = target_group_arn.split_once(":targetgroup/")?.1;
    Some(format!("{kind}/{name}/{id}/targetgroup/{tg}"))
}

fn metric_type(metric: PredefinedMetric) -> MetricType {
    MetricType::from(metric.as_str())
}

fn document_metric(metric: &MetricType) -> Option<PredefinedMetric> {
    [
        PredefinedMetric::EcsServiceAverageCpuUtilization,
        PredefinedMetric::EcsServiceAverageMemoryUtilization,
        PredefinedMetric::AlbRequestCountPerTarget,
    ]
    .into_iter()
    .find(|m| m.as_str() == metric.as_str())
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

type RegisterRequest =
    aas::operation::register_scalable_target::builders::RegisterScalableTargetFluentBuilder;
type PolicyRequest = aas::operation::put_scaling_policy::builders::PutScalingPolicyFluentBuilder;
type ScheduledRequest =
    aas::operation::put_scheduled_action::builders::PutScheduledActionFluentBuilder;

/// RegisterScalableTarget for the service at the document's range.
pub fn register_request(
    client: &aas::Client,
    resource: &str,
    scaling: &AutoScaling,
) -> RegisterRequest {
    client
        .register_scalable_target()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(resource)
        .min_capacity(to_i32(scaling.min_capacity))
        .max_capacity(to_i32(scaling.max_capacity))
}

/// PutScalingPolicy for one target-tracking policy (`label`: the ALB resource label,
/// for `ALBRequestCountPerTarget`).
pub fn policy_request(
    client: &aas::Client,
    resource: &str,
    policy: &TargetTracking,
    label: Option<String>,
) -> Result<PolicyRequest, aws_smithy_types::error::operation::BuildError> {
    let metric = PredefinedMetricSpecification::builder()
        .predefined_metric_type(metric_type(policy.predefined_metric))
        .set_resource_label(label)
        .build()?;
    let configuration = TargetTrackingScalingPolicyConfiguration::builder()
        .target_value(policy.target_value)
        .predefined_metric_specification(metric)
        .set_scale_in_cooldown(policy.scale_in_cooldown.map(to_i32))
        .set_scale_out_cooldown(policy.scale_out_cooldown.map(to_i32))
        .set_disable_scale_in(policy.disable_scale_in)
        .build()?;
    Ok(client
        .put_scaling_policy()
        .policy_name(policy_name(policy.predefined_metric))
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(resource)
        .policy_type(PolicyType::TargetTrackingScaling)
        .target_tracking_scaling_policy_configuration(configuration))
}

/// PutScheduledAction for one scheduled action.
pub fn scheduled_request(
    client: &aas::Client,
    resource: &str,
    action: &ScheduledAction,
) -> ScheduledRequest {
    client
        .put_scheduled_action()
        .service_namespace(ServiceNamespace::Ecs)
        .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
        .resource_id(resource)
        .scheduled_action_name(&action.scheduled_action_name)
        .schedule(&action.schedule)
        .set_timezone(action.timezone.clone())
        .scalable_target_action(
            aas::types::ScalableTargetAction::builder()
                .set_min_capacity(action.scalable_target_action.min_capacity.map(to_i32))
                .set_max_capacity(action.scalable_target_action.max_capacity.map(to_i32))
                .build(),
        )
}

fn not_negative(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A target-tracking policy read back; `None` for policies tugboat cannot express.
fn observed_policy(p: &aas::types::ScalingPolicy) -> Option<TargetTracking> {
    let c = p.target_tracking_scaling_policy_configuration()?;
    let metric = document_metric(
        c.predefined_metric_specification()?
            .predefined_metric_type(),
    )?;
    Some(TargetTracking {
        predefined_metric: metric,
        target_value: c.target_value(),
        scale_in_cooldown: c.scale_in_cooldown().map(not_negative),
        scale_out_cooldown: c.scale_out_cooldown().map(not_negative),
        disable_scale_in: c.disable_scale_in(),
    })
}

fn observed_scheduled(a: &aas::types::ScheduledAction) -> ScheduledAction {
    let range = a.scalable_target_action();
    ScheduledAction {
        scheduled_action_name: a.scheduled_action_name().to_string(),
        schedule: a.schedule().to_string(),
        timezone: a.timezone().map(str::to_string),
        scalable_target_action: ScalableTargetAction {
            min_capacity: range.and_then(|r| r.min_capacity()).map(not_negative),
            max_capacity: range.and_then(|r| r.max_capacity()).map(not_negative),
        },
    }
}

/// The target group behind `service` of `workload`, for the ALB request metric.
fn target_group_of<'a>(workload: &'a Workload, service: &str) -> Option<&'a str> {
    let route = workload.route.as_ref()?;
    if service == service_name(&workload.name, Some(Slot::Green)) {
        Some(&route.target_groups.green)
    } else {
        Some(&route.target_groups.blue)
    }
}

impl AwsPlatform {
    /// The app's scalable targets by workload (see the module docs for when it reads).
    pub(super) async fn observe_scaling(
        &self,
        app: &Application,
        aws: &AwsSettings,
    ) -> Result<BTreeMap<String, Vec<ObservedScaling>>, PlatformError> {
        let wanted = app.spec.workloads.iter().any(|w| w.auto_scaling.is_some());
        let (checked, seen) = {
            let cache = self.cache();
            (cache.scaling_checked, cache.scaling_seen)
        };
        if !wanted && checked && !seen {
            return Ok(BTreeMap::new());
        }
        // Resource ID -> (workload, service), for every service the app may run.
        let mut ids: BTreeMap<String, (String, String)> = BTreeMap::new();
        for w in &app.spec.workloads {
            let slots: Vec<Option<Slot>> = if w.is_progressive() {
                vec![Some(Slot::Blue), Some(Slot::Green)]
            } else {
                vec![None]
            };
            for slot in slots {
                let service = service_name(&w.name, slot);
                ids.insert(
                    resource_id(&aws.cluster, &service),
                    (w.name.clone(), service),
                );
            }
        }
        let keys: Vec<String> = ids.keys().cloned().collect();
        let mut targets = Vec::new();
        for chunk in keys.chunks(RESOURCE_IDS_PER_CALL) {
            let mut next: Option<String> = None;
            loop {
                self.spend(
                    "application-autoscaling:DescribeScalableTargets",
                    QuotaClass::Scaling,
                    CallKind::Describe,
                )
                .await;
                let out = self
                    .clients
                    .scaling
                    .describe_scalable_targets()
                    .service_namespace(ServiceNamespace::Ecs)
                    .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                    .set_resource_ids(Some(chunk.to_vec()))
                    .set_next_token(next.take())
                    .send()
                    .await
                    .map_err(|e| {
                        classify(
                            "application-autoscaling:DescribeScalableTargets",
                            "scalable targets",
                            e,
                        )
                    })?;
                targets.extend(out.scalable_targets().iter().cloned());
                match out.next_token() {
                    Some(t) if !t.is_empty() => next = Some(t.to_string()),
                    _ => break,
                }
            }
        }
        let mut found: BTreeMap<String, Vec<ObservedScaling>> = BTreeMap::new();
        for target in &targets {
            let Some((workload, service)) = ids.get(target.resource_id()) else {
                continue;
            };
            let resource = target.resource_id().to_string();
            self.spend(
                "application-autoscaling:DescribeScalingPolicies",
                QuotaClass::Scaling,
                CallKind::Describe,
            )
            .await;
            let policies = self
                .clients
                .scaling
                .describe_scaling_policies()
                .service_namespace(ServiceNamespace::Ecs)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .resource_id(&resource)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "application-autoscaling:DescribeScalingPolicies",
                        &format!("scaling policies of {service}"),
                        e,
                    )
                })?;
            self.spend(
                "application-autoscaling:DescribeScheduledActions",
                QuotaClass::Scaling,
                CallKind::Describe,
            )
            .await;
            let scheduled = self
                .clients
                .scaling
                .describe_scheduled_actions()
                .service_namespace(ServiceNamespace::Ecs)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .resource_id(&resource)
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "application-autoscaling:DescribeScheduledActions",
                        &format!("scheduled actions of {service}"),
                        e,
                    )
                })?;
            // Exact IDs only: an emulator may match them as substrings.
            let policies: Vec<&aas::types::ScalingPolicy> = policies
                .scaling_policies()
                .iter()
                .filter(|p| p.resource_id() == resource)
                .collect();
            let target_tracking: Vec<TargetTracking> =
                policies.iter().filter_map(|p| observed_policy(p)).collect();
            // Policies tugboat cannot express (step scaling, custom metrics): EnsureScaling
            // deletes them, so they count as a difference.
            let unmanaged_policies: Vec<String> = policies
                .iter()
                .filter(|p| observed_policy(p).is_none())
                .map(|p| p.policy_name().to_string())
                .collect();
            let scheduled_actions = scheduled
                .scheduled_actions()
                .iter()
                .filter(|a| a.resource_id() == resource)
                .map(observed_scheduled)
                .collect();
            found
                .entry(workload.clone())
                .or_default()
                .push(ObservedScaling {
                    service: service.clone(),
                    unmanaged_policies,
                    auto_scaling: AutoScaling {
                        min_capacity: target.min_capacity().try_into().unwrap_or(0),
                        max_capacity: target.max_capacity().try_into().unwrap_or(0),
                        target_tracking,
                        scheduled_actions,
                    },
                });
        }
        let mut cache = self.cache();
        cache.scaling_checked = true;
        cache.scaling_seen = !found.is_empty();
        Ok(found)
    }

    /// EnsureScaling: the range, the policies and the scheduled actions, and nothing else.
    pub(super) async fn ensure_scaling(
        &self,
        app: &Application,
        aws: &AwsSettings,
        workload: &str,
        service: &str,
        scaling: &AutoScaling,
    ) -> Result<(), PlatformError> {
        let resource = resource_id(&aws.cluster, service);
        let what = format!("scaling of {service}");
        self.spend(
            "application-autoscaling:RegisterScalableTarget",
            QuotaClass::Scaling,
            CallKind::Mutate,
        )
        .await;
        register_request(&self.clients.scaling, &resource, scaling)
            .send()
            .await
            .map_err(|e| classify("application-autoscaling:RegisterScalableTarget", &what, e))?;
        let spec = app.workload(workload);
        for policy in &scaling.target_tracking {
            let label = (policy.predefined_metric == PredefinedMetric::AlbRequestCountPerTarget)
                .then(|| {
                    let tg = spec.and_then(|w| target_group_of(w, service))?;
                    resource_label(aws.listener_arn.as_deref()?, tg)
                })
                .flatten();
            let request =
                policy_request(&self.clients.scaling, &resource, policy, label).map_err(|e| {
                    PlatformError::Rejected {
                        api: "application-autoscaling:PutScalingPolicy",
                        message: e.to_string(),
                        source: None,
                    }
                })?;
            self.spend(
                "application-autoscaling:PutScalingPolicy",
                QuotaClass::Scaling,
                CallKind::Mutate,
            )
            .await;
            request
                .send()
                .await
                .map_err(|e| classify("application-autoscaling:PutScalingPolicy", &what, e))?;
        }
        for action in &scaling.scheduled_actions {
            self.spend(
                "application-autoscaling:PutScheduledAction",
                QuotaClass::Scaling,
                CallKind::Mutate,
            )
            .await;
            scheduled_request(&self.clients.scaling, &resource, action)
                .send()
                .await
                .map_err(|e| classify("application-autoscaling:PutScheduledAction", &what, e))?;
        }
        let keep_policies: Vec<String> = scaling
            .target_tracking
            .iter()
            .map(|p| policy_name(p.predefined_metric))
            .collect();
        let keep_actions: Vec<&str> = scaling
            .scheduled_actions
            .iter()
            .map(|a| a.scheduled_action_name.as_str())
            .collect();
        self.delete_others(&resource, service, &keep_policies, &keep_actions)
            .await
    }

    /// RemoveScaling: policies and scheduled actions deleted, the target deregistered.
    pub(super) async fn remove_scaling(
        &self,
        aws: &AwsSettings,
        service: &str,
    ) -> Result<(), PlatformError> {
        let resource = resource_id(&aws.cluster, service);
        self.delete_others(&resource, service, &[], &[]).await?;
        self.spend(
            "application-autoscaling:DeregisterScalableTarget",
            QuotaClass::Scaling,
            CallKind::Mutate,
        )
        .await;
        match self
            .clients
            .scaling
            .deregister_scalable_target()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(&resource)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match classify(
                "application-autoscaling:DeregisterScalableTarget",
                &format!("scaling of {service}"),
                e,
            ) {
                // Gone already (a retry after a lost answer): in place.
                PlatformError::NotFound { .. } => Ok(()),
                PlatformError::Rejected { message, .. }
                    if message.contains("No scalable target") =>
                {
                    Ok(())
                }
                other => Err(other),
            },
        }
    }

    /// Deletes the target's policies and scheduled actions not named in `keep_*`.
    async fn delete_others(
        &self,
        resource: &str,
        service: &str,
        keep_policies: &[String],
        keep_actions: &[&str],
    ) -> Result<(), PlatformError> {
        let what = format!("scaling of {service}");
        self.spend(
            "application-autoscaling:DescribeScalingPolicies",
            QuotaClass::Scaling,
            CallKind::Describe,
        )
        .await;
        let policies = self
            .clients
            .scaling
            .describe_scaling_policies()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource)
            .send()
            .await
            .map_err(|e| classify("application-autoscaling:DescribeScalingPolicies", &what, e))?;
        for p in policies.scaling_policies() {
            if p.resource_id() != resource || keep_policies.iter().any(|k| k == p.policy_name()) {
                continue;
            }
            self.spend(
                "application-autoscaling:DeleteScalingPolicy",
                QuotaClass::Scaling,
                CallKind::Mutate,
            )
            .await;
            self.clients
                .scaling
                .delete_scaling_policy()
                .policy_name(p.policy_name())
                .service_namespace(ServiceNamespace::Ecs)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .resource_id(resource)
                .send()
                .await
                .map_err(|e| classify("application-autoscaling:DeleteScalingPolicy", &what, e))?;
        }
        self.spend(
            "application-autoscaling:DescribeScheduledActions",
            QuotaClass::Scaling,
            CallKind::Describe,
        )
        .await;
        let scheduled = self
            .clients
            .scaling
            .describe_scheduled_actions()
            .service_namespace(ServiceNamespace::Ecs)
            .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
            .resource_id(resource)
            .send()
            .await
            .map_err(|e| classify("application-autoscaling:DescribeScheduledActions", &what, e))?;
        for a in scheduled.scheduled_actions() {
            if a.resource_id() != resource || keep_actions.contains(&a.scheduled_action_name()) {
                continue;
            }
            self.spend(
                "application-autoscaling:DeleteScheduledAction",
                QuotaClass::Scaling,
                CallKind::Mutate,
            )
            .await;
            self.clients
                .scaling
                .delete_scheduled_action()
                .scheduled_action_name(a.scheduled_action_name())
                .service_namespace(ServiceNamespace::Ecs)
                .scalable_dimension(ScalableDimension::EcsServiceDesiredCount)
                .resource_id(resource)
                .send()
                .await
                .map_err(|e| classify("application-autoscaling:DeleteScheduledAction", &what, e))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> aas::Client {
        aas::Client::from_conf(
            aas::Config::builder()
                .behavior_version(aas::config::BehaviorVersion::latest())
                .region(aas::config::Region::new("us-east-1"))
                .build(),
        )
    }

    #[test]
    fn resource_ids_and_labels_follow_application_auto_scaling() {
        assert_eq!(resource_id("prod", "api-blue"), "service/prod/api-blue");
        assert_eq!(
            resource_id("arn:aws:ecs:eu-west-1:123456789012:cluster/prod", "api"),
            "service/prod/api"
        );
        assert_eq!(
            resource_label(
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/shop/50dc6c495c0c9188/f2f7dc8efc522ab2",
                "arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/api-blue/943f017f100becff"
            )
            .as_deref(),
            Some("app/shop/50dc6c495c0c9188/targetgroup/api-blue/943f017f100becff")
        );
        assert_eq!(resource_label("not-an-arn", "x"), None);
    }

    #[test]
    fn the_requests_carry_the_documents_range_policy_and_schedule() {
        let scaling: AutoScaling = serde_json::from_value(serde_json::json!({
            "minCapacity": 2, "maxCapacity": 12,
            "targetTracking": [{"predefinedMetric": "ALBRequestCountPerTarget", "targetValue": 500.0,
                                "scaleInCooldown": 300, "scaleOutCooldown": 60}],
            "scheduledActions": [{"scheduledActionName": "mornings", "schedule": "cron(0 8 ? * MON-FRI *)",
                                  "timezone": "Europe/Berlin", "scalableTargetAction": {"minCapacity": 6}}]
        }))
        .expect("scaling");
        let c = client();
        let register = register_request(&c, "service/prod/api-blue", &scaling);
        let input = register.as_input();
        assert_eq!(
            (input.get_min_capacity(), input.get_max_capacity()),
            (&Some(2), &Some(12))
        );
        assert_eq!(
            input.get_scalable_dimension(),
            &Some(ScalableDimension::EcsServiceDesiredCount)
        );
        let policy = policy_request(
            &c,
            "service/prod/api-blue",
            &scaling.target_tracking[0],
            Some("app/shop/1/targetgroup/api-blue/2".into()),
        )
        .expect("policy");
        let input = policy.as_input();
        assert_eq!(
            input.get_policy_name().as_deref(),
            Some("tugboat-ALBRequestCountPerTarget")
        );
        let config = input
            .get_target_tracking_scaling_policy_configuration()
            .as_ref()
            .expect("target tracking");
        assert_eq!(config.target_value(), 500.0);
        assert_eq!(
            (config.scale_in_cooldown(), config.scale_out_cooldown()),
            (Some(300), Some(60))
        );
        let metric = config.predefined_metric_specification().expect("metric");
        assert_eq!(
            metric.predefined_metric_type(),
            &MetricType::AlbRequestCountPerTarget
        );
        assert_eq!(
            metric.resource_label(),
            Some("app/shop/1/targetgroup/api-blue/2")
        );
        let scheduled =
            scheduled_request(&c, "service/prod/api-blue", &scaling.scheduled_actions[0]);
        let input = scheduled.as_input();
        assert_eq!(input.get_timezone().as_deref(), Some("Europe/Berlin"));
        let range = input.get_scalable_target_action().as_ref().expect("range");
        assert_eq!(
            (range.min_capacity(), range.max_capacity()),
            (Some(6), None)
        );
    }
}
