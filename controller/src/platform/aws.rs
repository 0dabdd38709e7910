//! The AWS platform: ECS services and task definitions, ALB listener rules and target
//! health — through the SDK. Operator overrides (SSM) and model resolution (SSM
//! pointers, S3 metadata) are not observed here: see [`crate::inbox::ssm`] and
//! [`crate::models::store`].
//!
//! What it guarantees, beyond the [`Platform`] contract:
//! - Describes are batched (DescribeServices 10 names a call, DescribeRules one listener
//!   a page, DescribeTags 20 ARNs a call) and cached where AWS makes them immutable: a
//!   task definition never changes once registered, so it is described once per process;
//!   a rule's tags once per rule. The listener's rules are read every pass, first.
//! - Two things are reused, for at most [`REST_CACHE_MAX_AGE`] (one resync), and only
//!   while the workload is at rest, so a no-op pass stays cheap and weight never moves
//!   on health older than one pass. At rest means: the rule read this pass sends 100%
//!   to one slot and 0% to the other with nothing unexpected on it, the other slot is
//!   idle (0 tasks desired, running and pending, one deployment) or absent, and the
//!   weighted slot has no deployment in flight. Then the weighted slot's target health
//!   is reused while its service is unchanged with every desired task healthy, and the
//!   idle or absent slot is not described again. A rolling service (no slots, no
//!   weights) reuses its health and its idle state on its own state alone. While a
//!   rollout is in flight or the weights are split, every slot is described and every
//!   target group's health read each pass. A change by hand at rest is seen within one
//!   resync; a restart starts cold.
//! - Every call draws a token from its quota class's bucket ([`Budgets`]) first and is
//!   counted. The SDK retries each call that is safe to repeat (standard mode, 3
//!   attempts, set on purpose in [`crate::aws::sdk_config`]); nothing here retries
//!   those again.
//! - RegisterTaskDefinition first looks for an existing revision of the family carrying
//!   the same content-hash tag, so a controller killed between register and update never
//!   makes a duplicate revision. It has no client token, so the SDK never repeats it: an
//!   answer that arrives after the attempt timeout may still mean a registered revision.
//!   The platform retries it itself (same attempts and backoff) and looks for the
//!   content-hash tag again before each retry. CreateService passes a client token
//!   derived from the service and definition, so a retried create is idempotent at AWS
//!   too. CreateRule has no token either and is not retried within a pass: the next
//!   observation finds the rule by its tags.
//! - A workload's listener rule has one shape: one path-pattern condition and one
//!   forward action to its blue and green target groups. Anything else on it (a third
//!   target group, another action, an extra condition) is reported, one line each, in
//!   `ObservedRule::unexpected`, and SetWeights then rewrites the rule whole (ModifyRule
//!   with both conditions and actions), which removes it.
//! - Everything created carries `tugboat:managed-by=<app>/<env>` and
//!   `tugboat:workload=<name>` (and the document's labels); a service or rule without the
//!   owner tag is never changed ([`PlatformError::NotOwned`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_ecs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_ecs::types as ecs;
use aws_sdk_elasticloadbalancingv2::types as elb;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::aws::ErrorKind;

mod scaling;
use crate::budget::{Budgets, QuotaClass};
use crate::document::{Application, AwsPlatform as AwsSettings, Platform as PlatformSpec, Slot};
use crate::observed::{ObservedRule, ObservedService, ObservedState, ObservedWorkload};
use crate::plan::Action;
use crate::taskdef::{HASH_TAG, MANAGED_BY_TAG, TaskDefinition, WORKLOAD_TAG};

use super::{
    ActionOutcome, CallCounter, CallCounts, CallEstimate, CallKind, Observation, Platform,
    PlatformError, owner, service_name,
};

/// How long an observation made at rest (an idle slot, a fully healthy target group) is
/// reused: the default resync period, so drift at rest is seen within one resync.
pub const REST_CACHE_MAX_AGE: Duration = Duration::from_secs(30);
use super::aws_cost::REVISIONS_SEARCHED;
pub use super::aws_cost::estimate_calls;

/// The SDK clients the platform talks through.
#[derive(Debug, Clone)]
pub struct AwsClients {
    pub ecs: aws_sdk_ecs::Client,
    pub elb: aws_sdk_elasticloadbalancingv2::Client,
    pub ssm: aws_sdk_ssm::Client,
    pub s3: aws_sdk_s3::Client,
    /// Application Auto Scaling, for workloads' `autoScaling`.
    pub scaling: aws_sdk_applicationautoscaling::Client,
}

impl AwsClients {
    /// Clients for `region` from the environment's credentials and endpoint
    /// (`AWS_ENDPOINT_URL` points them at an emulator).
    pub async fn from_env(region: &str) -> Self {
        Self::from_sdk_config(&crate::aws::sdk_config(Some(region)).await)
    }

    pub fn from_sdk_config(config: &aws_config::SdkConfig) -> Self {
        Self {
            ecs: crate::aws::ecs(config),
            elb: crate::aws::elbv2(config),
            ssm: crate::aws::ssm(config),
            s3: crate::aws::s3(config),
            scaling: aws_sdk_applicationautoscaling::Client::new(config),
        }
    }
}

/// ECS, ELBv2, SSM and S3 behind the [`Platform`] trait.
#[derive(Debug)]
pub struct AwsPlatform {
    clients: AwsClients,
    budgets: Arc<Budgets>,
    calls: CallCounter,
    cache: Mutex<Cache>,
    rest_cache_max_age: Duration,
}

#[derive(Debug, Default)]
struct Cache {
    /// By ARN; immutable at AWS.
    task_definitions: HashMap<String, CachedTaskDefinition>,
    /// Rule ARN -> tags.
    rule_tags: HashMap<String, BTreeMap<String, String>>,
    /// Target group ARN -> health read at rest.
    target_health: HashMap<String, CachedHealth>,
    /// `<cluster>/<service>` -> an idle slot as last described (`None`: it did not
    /// exist), and when.
    idle_services: HashMap<String, (Option<ecs::Service>, Instant)>,
    /// From the last observe, for idempotent applies: service name -> state.
    services: HashMap<String, CachedService>,
    /// From the last observe: workload -> its rule.
    rules: HashMap<String, CachedRule>,
    /// From the last observe (and applies since): workload -> its header route's rule
    /// ARN and what it holds.
    header_rules: HashMap<String, (String, crate::observed::ObservedHeaderRoute)>,
    /// Whether scalable targets were read once, and whether the last read found any
    /// (`scaling::observe_scaling` reads again while either a workload is scaled or one
    /// was found).
    scaling_checked: bool,
    scaling_seen: bool,
}

#[derive(Debug, Clone)]
struct CachedTaskDefinition {
    family: String,
    revision: i32,
    content_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
struct HealthKey {
    task_definition: Option<String>,
    desired: u32,
    running: u32,
}

#[derive(Debug, Clone)]
struct CachedHealth {
    key: HealthKey,
    healthy: u32,
    read_at: Instant,
}

#[derive(Debug, Clone)]
struct CachedService {
    owned: bool,
    task_definition: Option<String>,
    desired: u32,
}

#[derive(Debug, Clone)]
struct CachedRule {
    arn: String,
    owned: bool,
    priority: Option<u32>,
    /// Target group ARN -> weight.
    weights: BTreeMap<String, u32>,
    path_patterns: Vec<String>,
    /// Something beyond tugboat's shape is on the rule (`ObservedRule::unexpected`):
    /// SetWeights rewrites it even when weights and paths match.
    drifted: bool,
}

impl AwsPlatform {
    pub fn new(clients: AwsClients, budgets: Arc<Budgets>) -> Self {
        Self {
            clients,
            budgets,
            calls: CallCounter::default(),
            cache: Mutex::new(Cache::default()),
            rest_cache_max_age: REST_CACHE_MAX_AGE,
        }
    }

    /// How long observations made at rest are reused; zero re-reads everything every pass.
    pub fn with_rest_cache_max_age(mut self, max_age: Duration) -> Self {
        self.rest_cache_max_age = max_age;
        self
    }

    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// A service we change is no longer at rest: describe it next pass.
    fn forget_idle(&self, cluster: &str, service: &str) {
        self.cache()
            .idle_services
            .remove(&format!("{cluster}/{service}"));
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for a token of `class` and counts the call.
    async fn spend(&self, api: &'static str, class: QuotaClass, kind: CallKind) {
        self.budgets.acquire(class).await;
        self.calls.record(api, kind);
        tracing::debug!(api, "aws call");
    }
}

fn settings(app: &Application) -> Result<&AwsSettings, PlatformError> {
    match &app.spec.platform {
        PlatformSpec::Aws(aws) => Ok(aws),
        PlatformSpec::Local(_) => Err(PlatformError::Unsupported(
            "the document's spec.platform is `local`; the AWS platform needs `spec.platform.aws`"
                .into(),
        )),
    }
}

/// Turns an SDK error into a kind the loop acts on (reading it through
/// [`crate::aws::classify`]). `what` names the resource for not-found errors.
pub(crate) fn classify<E>(api: &'static str, what: &str, err: SdkError<E>) -> PlatformError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = crate::aws::describe(&err);
    match crate::aws::classify(&err) {
        ErrorKind::Throttling => PlatformError::Throttled {
            api,
            source: Box::new(err),
        },
        ErrorKind::Transient => PlatformError::Unavailable {
            api,
            message,
            source: Some(Box::new(err)),
        },
        ErrorKind::NotFound => PlatformError::NotFound {
            what: what.to_string(),
            message,
        },
        ErrorKind::AccessDenied => PlatformError::AccessDenied { api, message },
        ErrorKind::PreconditionFailed | ErrorKind::NotModified | ErrorKind::Other => {
            PlatformError::Rejected {
                api,
                message,
                source: Some(Box::new(err)),
            }
        }
    }
}

/// A copy of `err` for another workload affected by the same failed batch call.
fn share(err: &PlatformError) -> PlatformError {
    match err {
        PlatformError::NotFound { what, message } => PlatformError::NotFound {
            what: what.clone(),
            message: message.clone(),
        },
        PlatformError::AccessDenied { api, message } => PlatformError::AccessDenied {
            api,
            message: message.clone(),
        },
        PlatformError::NotOwned { what, owner } => PlatformError::NotOwned {
            what: what.clone(),
            owner: owner.clone(),
        },
        other => PlatformError::Rejected {
            api: "batch",
            message: other.to_string(),
            source: None,
        },
    }
}

fn to_u32(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// `arn:...:task-definition/<family>:<revision>` -> (family, revision).
fn parse_task_definition_arn(arn: &str) -> Option<(&str, i32)> {
    let tail = arn.rsplit_once("task-definition/")?.1;
    let (family, revision) = tail.rsplit_once(':')?;
    Some((family, revision.parse().ok()?))
}

/// The slot carrying all of a workload's traffic when its rule is at rest: weights
/// 100/0 and nothing unexpected on the rule. `None` while weights are split or drifted.
fn weighted_slot(rule: &ObservedRule) -> Option<Slot> {
    if !rule.unexpected.is_empty() {
        return None;
    }
    match (rule.weight(Slot::Blue), rule.weight(Slot::Green)) {
        (100, 0) => Some(Slot::Blue),
        (0, 100) => Some(Slot::Green),
        _ => None,
    }
}

/// An idle slot: nothing desired, nothing running, no deployment under way.
fn is_idle(service: &ecs::Service) -> bool {
    service.desired_count() == 0
        && service.running_count() == 0
        && service.pending_count() == 0
        && service.deployments().len() <= 1
}

/// Whether ECS tags mark the resource as this application's.
fn ecs_owned(tags: &[ecs::Tag], me: &str) -> bool {
    tags.iter()
        .any(|t| t.key() == Some(MANAGED_BY_TAG) && t.value() == Some(me))
}

/// One service the application should have.
struct WantedService<'a> {
    workload: &'a str,
    slot: Option<Slot>,
    name: String,
    target_group: Option<&'a str>,
}

impl Platform for AwsPlatform {
    async fn observe(&self, app: &Application) -> Result<Observation, PlatformError> {
        let aws = settings(app)?;
        let me = owner(app);
        let mut observation = Observation::default();

        let wanted: Vec<WantedService<'_>> = app
            .spec
            .workloads
            .iter()
            .flat_map(|w| {
                let slots: Vec<Option<Slot>> = if w.is_progressive() {
                    vec![Some(Slot::Blue), Some(Slot::Green)]
                } else {
                    vec![None]
                };
                slots.into_iter().map(move |slot| WantedService {
                    workload: &w.name,
                    slot,
                    name: service_name(&w.name, slot),
                    target_group: w.route.as_ref().map(|r| match slot {
                        Some(Slot::Green) => r.target_groups.green.as_str(),
                        _ => r.target_groups.blue.as_str(),
                    }),
                })
            })
            .collect();

        // Rules first: whether anything from an earlier pass may be reused depends on
        // the weights read now (module docs).
        let rules = self
            .observe_rules(app, aws, &me, &mut observation.workload_errors)
            .await?;
        let weighted: HashMap<String, Slot> = rules
            .iter()
            .filter_map(|(workload, (rule, _))| Some((workload.clone(), weighted_slot(rule)?)))
            .collect();

        let services = self
            .describe_services(
                &aws.cluster,
                &wanted,
                &weighted,
                &mut observation.workload_errors,
            )
            .await?;

        let mut cached_services = HashMap::new();
        for want in &wanted {
            if observation.workload_errors.contains_key(want.workload) {
                continue;
            }
            let Some(service) = services.get(&want.name) else {
                continue;
            };
            let at_rest = match want.slot {
                // A rolling service moves no weight; its own state decides.
                None => true,
                Some(slot) => {
                    let idle_other = services
                        .get(&service_name(want.workload, Some(slot.other())))
                        .is_none_or(is_idle);
                    weighted.get(want.workload) == Some(&slot) && idle_other
                }
            };
            let observed = match self
                .observe_service(service, want.target_group, &me, at_rest)
                .await
            {
                Ok(observed) => observed,
                Err(err) if err.is_transient() => return Err(err),
                Err(err) => {
                    observation
                        .workload_errors
                        .insert(want.workload.to_string(), err);
                    continue;
                }
            };
            cached_services.insert(
                want.name.clone(),
                CachedService {
                    owned: observed.owned,
                    task_definition: observed.task_definition_arn.clone(),
                    desired: observed.desired_count,
                },
            );
            let entry = observation
                .state
                .workloads
                .entry(want.workload.to_string())
                .or_default();
            match want.slot {
                Some(slot) => {
                    entry.slots.insert(slot, observed);
                }
                None => entry.service = Some(observed),
            }
        }

        // Scalable targets: an error matters only when the document scales something
        // (a role without Application Auto Scaling permissions is fine otherwise).
        let wanted_scaling = app.spec.workloads.iter().any(|w| w.auto_scaling.is_some());
        let scaling = match self.observe_scaling(app, aws).await {
            Ok(found) => found,
            Err(err) if wanted_scaling => return Err(err),
            Err(err) => {
                tracing::warn!(error = %err, "could not read scalable targets; no workload is scaled");
                let mut cache = self.cache();
                cache.scaling_checked = true;
                cache.scaling_seen = false;
                BTreeMap::new()
            }
        };
        for (workload, targets) in scaling {
            if observation.workload_errors.contains_key(&workload) {
                continue;
            }
            observation
                .state
                .workloads
                .entry(workload)
                .or_insert_with(ObservedWorkload::default)
                .scaling = targets;
        }

        let header_rules = self.cache().header_rules.clone();
        for (workload, (_, route)) in header_rules {
            if observation.workload_errors.contains_key(&workload) {
                continue;
            }
            observation
                .state
                .workloads
                .entry(workload)
                .or_insert_with(ObservedWorkload::default)
                .header_route = Some(route);
        }

        let mut cached_rules = HashMap::new();
        for (workload, (rule, cached)) in rules {
            if observation.workload_errors.contains_key(&workload) {
                continue;
            }
            cached_rules.insert(workload.clone(), cached);
            observation
                .state
                .workloads
                .entry(workload)
                .or_insert_with(ObservedWorkload::default)
                .rule = Some(rule);
        }

        {
            let mut cache = self.cache();
            cache.services = cached_services;
            cache.rules = cached_rules;
            let families: Vec<String> = app
                .spec
                .workloads
                .iter()
                .map(|w| crate::taskdef::family(app, w))
                .collect();
            for (arn, d) in &cache.task_definitions {
                if let Some(hash) = &d.content_hash
                    && families.contains(&d.family)
                {
                    observation
                        .state
                        .task_definitions
                        .entry(hash.clone())
                        .or_insert_with(|| arn.clone());
                }
            }
        }

        Ok(observation)
    }

    async fn apply(
        &self,
        app: &Application,
        action: &Action,
        task_definition_arn: Option<&str>,
    ) -> Result<ActionOutcome, PlatformError> {
        let aws = settings(app)?;
        let me = owner(app);
        match action {
            Action::RegisterTaskDefinition {
                workload,
                content_hash,
                definition,
            } => {
                self.register_task_definition(app, &me, workload, content_hash, definition)
                    .await
            }
            Action::CreateService {
                workload,
                service,
                slot,
                content_hash,
                desired_count,
                target_group,
                container_name,
                container_port,
            } => {
                let arn =
                    task_definition_arn.ok_or_else(|| PlatformError::UnknownTaskDefinition {
                        workload: workload.clone(),
                        content_hash: content_hash.clone(),
                    })?;
                if let Some(existing) = self.cache().services.get(service) {
                    return if existing.owned {
                        Ok(ActionOutcome::AlreadyInPlace)
                    } else {
                        Err(PlatformError::NotOwned {
                            what: format!("ECS service {service}"),
                            owner: me,
                        })
                    };
                }
                let spec = app.workload(workload);
                let rolling = spec.and_then(|w| match &w.strategy {
                    crate::document::Strategy::Rolling(r) => Some(r.clone()),
                    _ => None,
                });
                let awsvpc = ecs::AwsVpcConfiguration::builder()
                    .set_subnets(Some(aws.subnets.clone()))
                    .set_security_groups(Some(aws.security_groups.clone()))
                    .assign_public_ip(match aws.assign_public_ip {
                        crate::document::AssignPublicIp::Enabled => ecs::AssignPublicIp::Enabled,
                        crate::document::AssignPublicIp::Disabled => ecs::AssignPublicIp::Disabled,
                    })
                    .build()
                    .map_err(|e| PlatformError::Rejected {
                        api: "ecs:CreateService",
                        message: e.to_string(),
                        source: None,
                    })?;
                let settings = spec.and_then(|w| w.service.clone()).unwrap_or_default();
                let deployment = deployment_configuration(rolling.as_ref(), &settings, *slot);
                let mut request = self
                    .clients
                    .ecs
                    .create_service()
                    .cluster(&aws.cluster)
                    .service_name(service)
                    .task_definition(arn)
                    .desired_count(i32::try_from(*desired_count).unwrap_or(i32::MAX))
                    .network_configuration(
                        ecs::NetworkConfiguration::builder()
                            .awsvpc_configuration(awsvpc)
                            .build(),
                    )
                    .deployment_configuration(deployment)
                    .propagate_tags(ecs::PropagateTags::Service)
                    .client_token(client_token(service, arn))
                    .set_tags(Some(ecs_tags(app, &me, workload, None)));
                request = with_service_settings(request, &settings);
                if let Some(tg) = target_group {
                    request = request.load_balancers(
                        ecs::LoadBalancer::builder()
                            .target_group_arn(tg)
                            .container_name(container_name)
                            .container_port(i32::from(*container_port))
                            .build(),
                    );
                    // Further ports in their own target groups (rolling workloads only:
                    // validation refuses them on slots).
                    let extra = spec
                        .and_then(|w| w.route.as_ref())
                        .map(|r| r.additional_target_groups.as_slice())
                        .unwrap_or_default();
                    for more in extra.iter().filter(|_| slot.is_none()) {
                        request = request.load_balancers(
                            ecs::LoadBalancer::builder()
                                .target_group_arn(&more.target_group_arn)
                                .container_name(
                                    more.container_name.as_deref().unwrap_or(container_name),
                                )
                                .container_port(i32::from(more.container_port))
                                .build(),
                        );
                    }
                }
                self.forget_idle(&aws.cluster, service);
                self.spend(
                    "ecs:CreateService",
                    QuotaClass::EcsServiceChange,
                    CallKind::Mutate,
                )
                .await;
                request.send().await.map_err(|e| {
                    classify("ecs:CreateService", &format!("ECS service {service}"), e)
                })?;
                self.cache().services.insert(
                    service.clone(),
                    CachedService {
                        owned: true,
                        task_definition: Some(arn.to_string()),
                        desired: *desired_count,
                    },
                );
                Ok(ActionOutcome::Changed)
            }
            Action::UpdateService {
                workload,
                service,
                desired_count,
                ..
            } => {
                let known = self.cache().services.get(service).cloned();
                let known = match known {
                    Some(k) => k,
                    None => {
                        return Err(PlatformError::NotFound {
                            what: format!("ECS service {service} in cluster {}", aws.cluster),
                            message: "it was not seen by the last observation".into(),
                        });
                    }
                };
                if !known.owned {
                    return Err(PlatformError::NotOwned {
                        what: format!("ECS service {service}"),
                        owner: me,
                    });
                }
                let new_definition = task_definition_arn
                    .filter(|arn| known.task_definition.as_deref() != Some(*arn));
                let new_count = desired_count.filter(|c| *c != known.desired);
                if new_definition.is_none() && new_count.is_none() {
                    return Ok(ActionOutcome::AlreadyInPlace);
                }
                self.forget_idle(&aws.cluster, service);
                self.spend(
                    "ecs:UpdateService",
                    QuotaClass::EcsServiceChange,
                    CallKind::Mutate,
                )
                .await;
                let mut request = self
                    .clients
                    .ecs
                    .update_service()
                    .cluster(&aws.cluster)
                    .service(service)
                    .set_task_definition(new_definition.map(str::to_string))
                    .set_desired_count(new_count.map(|c| i32::try_from(c).unwrap_or(i32::MAX)));
                // Service settings are part of the revision: they go with a new definition
                // (a count-only change leaves them as they are).
                if let (Some(_), Some(settings)) = (
                    new_definition,
                    app.workload(workload).and_then(|w| w.service.as_ref()),
                ) {
                    request = request
                        .set_capacity_provider_strategy(capacity_providers(settings))
                        .set_platform_version(settings.platform_version.clone())
                        .set_enable_execute_command(settings.enable_execute_command)
                        .set_health_check_grace_period_seconds(
                            settings.health_check_grace_period_seconds.map(to_i32),
                        )
                        .set_service_connect_configuration(service_connect(settings));
                }
                // Cloud Map registration follows the revision too; an empty list removes
                // a registration the document no longer has.
                if new_definition.is_some() {
                    let registries = app
                        .workload(workload)
                        .and_then(|w| w.service.as_ref())
                        .and_then(service_registries)
                        .unwrap_or_default();
                    request = request.set_service_registries(Some(registries));
                }
                request.send().await.map_err(|e| {
                    classify("ecs:UpdateService", &format!("ECS service {service}"), e)
                })?;
                let mut cache = self.cache();
                if let Some(entry) = cache.services.get_mut(service) {
                    if let Some(arn) = new_definition {
                        entry.task_definition = Some(arn.to_string());
                    }
                    if let Some(count) = new_count {
                        entry.desired = count;
                    }
                }
                Ok(ActionOutcome::Changed)
            }
            Action::SetWeights {
                workload,
                path_patterns,
                priority,
                blue_target_group,
                green_target_group,
                blue,
                green,
            } => {
                let listener = aws.listener_arn.as_deref().ok_or_else(|| {
                    PlatformError::Unsupported(format!(
                        "workload {workload} has a route but spec.platform.aws.listenerArn is not set"
                    ))
                })?;
                let wanted = BTreeMap::from([
                    (blue_target_group.clone(), *blue),
                    (green_target_group.clone(), *green),
                ]);
                let route = app.workload(workload).and_then(|w| w.route.as_ref());
                let forward = forward_action(
                    &wanted,
                    route.and_then(|r| r.target_group_stickiness_config.as_ref()),
                );
                let conditions = rule_conditions(path_patterns, route);
                let known = self.cache().rules.get(workload).cloned();
                match known {
                    Some(rule) if !rule.owned => Err(PlatformError::NotOwned {
                        what: format!("listener rule {} (priority {priority})", rule.arn),
                        owner: me,
                    }),
                    Some(rule) => {
                        let mut changed = false;
                        if rule.priority != Some(*priority) {
                            // The document moved the route; the rule is found by its tags.
                            self.spend(
                                "elbv2:SetRulePriorities",
                                QuotaClass::ElbMutate,
                                CallKind::Mutate,
                            )
                            .await;
                            self.clients
                                .elb
                                .set_rule_priorities()
                                .rule_priorities(
                                    elb::RulePriorityPair::builder()
                                        .rule_arn(&rule.arn)
                                        .priority(i32::try_from(*priority).unwrap_or(i32::MAX))
                                        .build(),
                                )
                                .send()
                                .await
                                .map_err(|e| {
                                    classify(
                                        "elbv2:SetRulePriorities",
                                        &format!("listener rule {}", rule.arn),
                                        e,
                                    )
                                })?;
                            if let Some(entry) = self.cache().rules.get_mut(workload) {
                                entry.priority = Some(*priority);
                            }
                            changed = true;
                        }
                        // ModifyRule sends the whole rule, conditions and actions, so
                        // anything added by hand goes away with it.
                        if rule.weights != wanted
                            || rule.path_patterns != *path_patterns
                            || rule.drifted
                        {
                            self.spend("elbv2:ModifyRule", QuotaClass::ElbMutate, CallKind::Mutate)
                                .await;
                            self.clients
                                .elb
                                .modify_rule()
                                .rule_arn(&rule.arn)
                                .set_conditions(Some(conditions.clone()))
                                .actions(forward)
                                .send()
                                .await
                                .map_err(|e| {
                                    classify(
                                        "elbv2:ModifyRule",
                                        &format!("listener rule {}", rule.arn),
                                        e,
                                    )
                                })?;
                            if let Some(entry) = self.cache().rules.get_mut(workload) {
                                entry.weights = wanted;
                                entry.path_patterns = path_patterns.clone();
                                entry.drifted = false;
                            }
                            changed = true;
                        }
                        Ok(if changed {
                            ActionOutcome::Changed
                        } else {
                            ActionOutcome::AlreadyInPlace
                        })
                    }
                    None => {
                        self.spend("elbv2:CreateRule", QuotaClass::ElbMutate, CallKind::Mutate)
                            .await;
                        let created = self
                            .clients
                            .elb
                            .create_rule()
                            .listener_arn(listener)
                            .priority(i32::try_from(*priority).unwrap_or(i32::MAX))
                            .set_conditions(Some(conditions.clone()))
                            .actions(forward)
                            .set_tags(Some(elb_tags(app, &me, workload)))
                            // No client token: a repeat after a lost answer fails with
                            // PriorityInUse; the next pass finds the rule by its tags.
                            .customize()
                            .config_override(crate::aws::elbv2_without_retries())
                            .send()
                            .await
                            .map_err(|e| {
                                classify("elbv2:CreateRule", &format!("listener {listener}"), e)
                            })?;
                        if let Some(arn) = created.rules().first().and_then(|r| r.rule_arn()) {
                            let mut cache = self.cache();
                            cache.rule_tags.insert(
                                arn.to_string(),
                                BTreeMap::from([
                                    (MANAGED_BY_TAG.to_string(), me.clone()),
                                    (WORKLOAD_TAG.to_string(), workload.clone()),
                                ]),
                            );
                            cache.rules.insert(
                                workload.clone(),
                                CachedRule {
                                    arn: arn.to_string(),
                                    owned: true,
                                    priority: Some(*priority),
                                    weights: wanted,
                                    path_patterns: path_patterns.clone(),
                                    drifted: false,
                                },
                            );
                        }
                        Ok(ActionOutcome::Changed)
                    }
                }
            }
            Action::SetHeaderRoute {
                workload,
                name,
                priority,
                path_patterns,
                slot,
                target_group,
                matches,
            } => {
                let listener = aws.listener_arn.as_deref().ok_or_else(|| {
                    PlatformError::Unsupported(format!(
                        "workload {workload} has a route but spec.platform.aws.listenerArn is not set"
                    ))
                })?;
                let route = app.workload(workload).and_then(|w| w.route.as_ref());
                let conditions = header_rule_conditions(path_patterns, route, matches);
                let forward = forward_action(&BTreeMap::from([(target_group.clone(), 100)]), None);
                let wanted = crate::observed::ObservedHeaderRoute {
                    name: name.clone(),
                    slot: Some(*slot),
                    priority: Some(*priority),
                    matches: matches.clone(),
                };
                let known = self.cache().header_rules.get(workload).cloned();
                match known {
                    Some((_, seen)) if seen == wanted => Ok(ActionOutcome::AlreadyInPlace),
                    // Same priority: ModifyRule rewrites conditions and forward whole.
                    Some((arn, seen)) if seen.priority == Some(*priority) => {
                        self.spend("elbv2:ModifyRule", QuotaClass::ElbMutate, CallKind::Mutate)
                            .await;
                        self.clients
                            .elb
                            .modify_rule()
                            .rule_arn(&arn)
                            .set_conditions(Some(conditions))
                            .actions(forward)
                            .send()
                            .await
                            .map_err(|e| {
                                classify("elbv2:ModifyRule", &format!("listener rule {arn}"), e)
                            })?;
                        self.cache()
                            .header_rules
                            .insert(workload.clone(), (arn, wanted));
                        Ok(ActionOutcome::Changed)
                    }
                    known => {
                        // At another priority (the document moved the route): the old
                        // rule goes first, so the new one never shares its listener slot.
                        if let Some((arn, _)) = known {
                            self.delete_rule(&arn).await?;
                            self.cache().header_rules.remove(workload);
                        }
                        self.spend("elbv2:CreateRule", QuotaClass::ElbMutate, CallKind::Mutate)
                            .await;
                        let mut tags: Vec<elb::Tag> = app
                            .metadata
                            .labels
                            .iter()
                            .map(|(k, v)| (k.as_str(), v.as_str()))
                            .chain([
                                (MANAGED_BY_TAG, me.as_str()),
                                (HEADER_ROUTE_OF_TAG, workload.as_str()),
                                (HEADER_ROUTE_TAG, name.as_str()),
                            ])
                            .map(|(k, v)| elb::Tag::builder().key(k).value(v).build())
                            .collect();
                        tags.dedup_by(|a, b| a.key() == b.key());
                        let created = self
                            .clients
                            .elb
                            .create_rule()
                            .listener_arn(listener)
                            .priority(i32::try_from(*priority).unwrap_or(i32::MAX))
                            .set_conditions(Some(conditions))
                            .actions(forward)
                            .set_tags(Some(tags))
                            .customize()
                            .config_override(crate::aws::elbv2_without_retries())
                            .send()
                            .await
                            .map_err(|e| {
                                classify("elbv2:CreateRule", &format!("listener {listener}"), e)
                            })?;
                        if let Some(arn) = created.rules().first().and_then(|r| r.rule_arn()) {
                            let mut cache = self.cache();
                            cache.rule_tags.insert(
                                arn.to_string(),
                                BTreeMap::from([
                                    (MANAGED_BY_TAG.to_string(), me.clone()),
                                    (HEADER_ROUTE_OF_TAG.to_string(), workload.clone()),
                                    (HEADER_ROUTE_TAG.to_string(), name.clone()),
                                ]),
                            );
                            cache
                                .header_rules
                                .insert(workload.clone(), (arn.to_string(), wanted));
                        }
                        Ok(ActionOutcome::Changed)
                    }
                }
            }
            Action::RemoveHeaderRoute { workload, .. } => {
                let Some((arn, _)) = self.cache().header_rules.get(workload).cloned() else {
                    return Ok(ActionOutcome::AlreadyInPlace);
                };
                self.delete_rule(&arn).await?;
                let mut cache = self.cache();
                cache.header_rules.remove(workload);
                cache.rule_tags.remove(&arn);
                Ok(ActionOutcome::Changed)
            }
            // Analysis runs in the controller against metrics, not on the platform.
            Action::StartAnalysis { .. } => Ok(ActionOutcome::NotApplicable),
            Action::EnsureScaling {
                workload,
                service,
                auto_scaling,
            } => {
                self.ensure_scaling(app, aws, workload, service, auto_scaling)
                    .await?;
                self.cache().scaling_seen = true;
                Ok(ActionOutcome::Changed)
            }
            Action::RemoveScaling { service, .. } => {
                self.remove_scaling(aws, service).await?;
                Ok(ActionOutcome::Changed)
            }
        }
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }

    fn estimate_calls(&self, action: &Action, observed: &ObservedState) -> CallEstimate {
        estimate_calls(action, observed)
    }
}

impl AwsPlatform {
    /// DescribeServices in batches of 10. A batch that fails for a reason that will not
    /// pass by itself marks its workloads as failed; a transient failure fails the pass.
    ///
    /// An idle or absent slot described earlier is reused only while the workload's rule
    /// is at rest with all weight on the other slot (`weighted`); a rolling service's
    /// idle state is reused as before.
    async fn describe_services(
        &self,
        cluster: &str,
        wanted: &[WantedService<'_>],
        weighted: &HashMap<String, Slot>,
        errors: &mut BTreeMap<String, PlatformError>,
    ) -> Result<HashMap<String, ecs::Service>, PlatformError> {
        let mut found = HashMap::new();
        let mut to_describe = Vec::new();
        {
            let cache = self.cache();
            for want in wanted {
                let may_reuse = match want.slot {
                    None => true,
                    Some(slot) => weighted.get(want.workload) == Some(&slot.other()),
                };
                match cache.idle_services.get(&format!("{cluster}/{}", want.name)) {
                    Some((service, read_at))
                        if may_reuse && read_at.elapsed() < self.rest_cache_max_age =>
                    {
                        if let Some(service) = service {
                            found.insert(want.name.clone(), service.clone());
                        }
                    }
                    _ => to_describe.push(want),
                }
            }
        }
        for batch in to_describe.chunks(10) {
            self.spend(
                "ecs:DescribeServices",
                QuotaClass::EcsDescribe,
                CallKind::Describe,
            )
            .await;
            let result = self
                .clients
                .ecs
                .describe_services()
                .cluster(cluster)
                .set_services(Some(batch.iter().map(|w| w.name.clone()).collect()))
                .include(ecs::ServiceField::Tags)
                .send()
                .await;
            match result {
                Ok(output) => {
                    let mut cache = self.cache();
                    let now = Instant::now();
                    // Absent (never created, or deleted) is a state at rest too.
                    for want in batch {
                        cache
                            .idle_services
                            .insert(format!("{cluster}/{}", want.name), (None, now));
                    }
                    for service in output.services() {
                        // A deleted service lingers as INACTIVE; it is gone for our purposes.
                        if service.status() == Some("INACTIVE") {
                            continue;
                        }
                        let Some(name) = service.service_name() else {
                            continue;
                        };
                        let key = format!("{cluster}/{name}");
                        if is_idle(service) {
                            cache
                                .idle_services
                                .insert(key, (Some(service.clone()), now));
                        } else {
                            cache.idle_services.remove(&key);
                        }
                        found.insert(name.to_string(), service.clone());
                    }
                }
                Err(e) => {
                    let err =
                        classify("ecs:DescribeServices", &format!("ECS cluster {cluster}"), e);
                    if err.is_transient() {
                        return Err(err);
                    }
                    for w in batch {
                        errors.insert(w.workload.to_string(), share(&err));
                    }
                }
            }
        }
        Ok(found)
    }

    /// `at_rest`: the workload is at rest (all weight on this slot, the other idle), so
    /// target health read at rest may be reused; otherwise it is read now.
    async fn observe_service(
        &self,
        service: &ecs::Service,
        target_group: Option<&str>,
        me: &str,
        at_rest: bool,
    ) -> Result<ObservedService, PlatformError> {
        let name = service.service_name().unwrap_or_default().to_string();
        let task_definition_arn = service.task_definition().map(str::to_string);
        let content_hash = match &task_definition_arn {
            Some(arn) => self.task_definition(arn).await?.content_hash,
            None => None,
        };
        let desired_count = to_u32(service.desired_count());
        let running_count = to_u32(service.running_count());
        let primary = service
            .deployments()
            .iter()
            .find(|d| d.status() == Some("PRIMARY"));
        let rollout = primary.and_then(|d| d.rollout_state());
        let deployment_failed = rollout == Some(&ecs::DeploymentRolloutState::Failed);
        // Real ECS reports COMPLETED. An emulator that never advances deployments still
        // shows one deployment with every task running, which is what "complete" means.
        let deployment_complete = rollout == Some(&ecs::DeploymentRolloutState::Completed)
            || (!deployment_failed
                && service.deployments().len() <= 1
                && running_count == desired_count
                && service.pending_count() == 0);
        let healthy_targets = match target_group {
            Some(tg) => {
                let key = HealthKey {
                    task_definition: task_definition_arn.clone(),
                    desired: desired_count,
                    running: running_count,
                };
                // A deployment in flight is motion too.
                let reuse = at_rest && service.deployments().len() <= 1;
                self.healthy_targets(tg, key, reuse).await?
            }
            None => 0,
        };
        Ok(ObservedService {
            name,
            owned: ecs_owned(service.tags(), me),
            content_hash,
            task_definition_arn,
            desired_count,
            running_count,
            deployment_complete,
            deployment_failed,
            healthy_targets,
        })
    }

    /// A task definition's family, revision and content hash, described once per ARN.
    async fn task_definition(&self, arn: &str) -> Result<CachedTaskDefinition, PlatformError> {
        if let Some(cached) = self.cache().task_definitions.get(arn) {
            return Ok(cached.clone());
        }
        self.spend(
            "ecs:DescribeTaskDefinition",
            QuotaClass::EcsDescribe,
            CallKind::Describe,
        )
        .await;
        let output = self
            .clients
            .ecs
            .describe_task_definition()
            .task_definition(arn)
            .include(ecs::TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "ecs:DescribeTaskDefinition",
                    &format!("task definition {arn}"),
                    e,
                )
            })?;
        let (family, revision) = output
            .task_definition()
            .map(|d| (d.family().unwrap_or_default().to_string(), d.revision()))
            .unwrap_or_default();
        let content_hash = output
            .tags()
            .iter()
            .find(|t| t.key() == Some(HASH_TAG))
            .and_then(|t| t.value())
            .map(str::to_string);
        let cached = CachedTaskDefinition {
            family,
            revision,
            content_hash,
        };
        self.cache()
            .task_definitions
            .insert(arn.to_string(), cached.clone());
        Ok(cached)
    }

    /// Healthy targets in `tg`. An earlier read is reused only when `reuse` (the
    /// workload is at rest) and the service is unchanged since; every fresh read
    /// replaces it, so what is reused is never older than the newest read.
    async fn healthy_targets(
        &self,
        tg: &str,
        key: HealthKey,
        reuse: bool,
    ) -> Result<u32, PlatformError> {
        if key.desired == 0 && key.running == 0 {
            // Nothing of ours can be healthy in an idle slot; leftover targets drain.
            return Ok(0);
        }
        if reuse
            && let Some(cached) = self.cache().target_health.get(tg)
            && cached.key == key
            && cached.read_at.elapsed() < self.rest_cache_max_age
        {
            return Ok(cached.healthy);
        }
        self.spend(
            "elbv2:DescribeTargetHealth",
            QuotaClass::ElbDescribe,
            CallKind::Describe,
        )
        .await;
        let output = self
            .clients
            .elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .map_err(|e| {
                classify(
                    "elbv2:DescribeTargetHealth",
                    &format!("target group {tg}"),
                    e,
                )
            })?;
        let healthy = output
            .target_health_descriptions()
            .iter()
            .filter(|d| {
                d.target_health().and_then(|h| h.state())
                    == Some(&elb::TargetHealthStateEnum::Healthy)
            })
            .count() as u32;
        let mut cache = self.cache();
        // Only a service at rest is worth remembering; anything in motion is re-read.
        if healthy >= key.desired && key.running == key.desired {
            cache.target_health.insert(
                tg.to_string(),
                CachedHealth {
                    key,
                    healthy,
                    read_at: Instant::now(),
                },
            );
        } else {
            cache.target_health.remove(tg);
        }
        Ok(healthy)
    }

    /// The listener's rule for each routed workload: the one tagged as this
    /// application's for the workload, else the one at the route's priority (whose
    /// ownership then decides whether tugboat may touch it).
    async fn observe_rules(
        &self,
        app: &Application,
        aws: &AwsSettings,
        me: &str,
        errors: &mut BTreeMap<String, PlatformError>,
    ) -> Result<BTreeMap<String, (ObservedRule, CachedRule)>, PlatformError> {
        let routed: Vec<_> = app
            .spec
            .workloads
            .iter()
            .filter(|w| w.route.is_some() && !errors.contains_key(&w.name))
            .collect();
        let mut out = BTreeMap::new();
        if routed.is_empty() {
            return Ok(out);
        }
        let Some(listener) = aws.listener_arn.as_deref() else {
            for w in routed {
                errors.insert(
                    w.name.clone(),
                    PlatformError::Unsupported(format!(
                        "workload {} has a route but spec.platform.aws.listenerArn is not set",
                        w.name
                    )),
                );
            }
            return Ok(out);
        };
        let rules = match self.describe_rules(listener).await {
            Ok(rules) => rules,
            Err(err) if err.is_transient() => return Err(err),
            Err(err) => {
                for w in routed {
                    errors.insert(w.name.clone(), share(&err));
                }
                return Ok(out);
            }
        };
        // Tags of every rule on the listener, read once per rule: tugboat's own rule is
        // found by its tags even when the document moved it to another priority.
        let arns: Vec<String> = rules
            .iter()
            .filter(|r| r.is_default() != Some(true))
            .filter_map(|r| r.rule_arn().map(str::to_string))
            .collect();
        if let Err(err) = self.load_rule_tags(&arns).await {
            if err.is_transient() {
                return Err(err);
            }
            for w in routed {
                errors.insert(w.name.clone(), share(&err));
            }
            return Ok(out);
        }
        let matched: Vec<(&crate::document::Workload, &elb::Rule)> = {
            let cache = self.cache();
            let tagged_for = |workload: &str| {
                rules.iter().find(|r| {
                    let tags = r.rule_arn().and_then(|a| cache.rule_tags.get(a));
                    tags.is_some_and(|t| {
                        t.get(MANAGED_BY_TAG).is_some_and(|o| o == me)
                            && t.get(WORKLOAD_TAG).is_some_and(|n| n == workload)
                    })
                })
            };
            routed
                .iter()
                .filter_map(|w| {
                    let route = w.route.as_ref()?;
                    let at_priority = rules
                        .iter()
                        .find(|r| r.priority() == Some(route.priority.to_string().as_str()));
                    Some((*w, tagged_for(&w.name).or(at_priority)?))
                })
                .collect()
        };
        let mut cache = self.cache();
        cache.header_rules = routed
            .iter()
            .filter_map(|w| {
                let route = w.route.as_ref()?;
                let rule = rules.iter().find(|r| {
                    let tags = r.rule_arn().and_then(|a| cache.rule_tags.get(a));
                    tags.is_some_and(|t| {
                        t.get(MANAGED_BY_TAG).is_some_and(|o| o == me)
                            && t.get(HEADER_ROUTE_OF_TAG).is_some_and(|n| *n == w.name)
                    })
                })?;
                let arn = rule.rule_arn()?.to_string();
                let name = cache.rule_tags.get(&arn)?.get(HEADER_ROUTE_TAG)?.clone();
                Some((
                    w.name.clone(),
                    (arn, observed_header_route(rule, name, route)),
                ))
            })
            .collect();
        for (w, rule) in matched {
            let Some(route) = &w.route else { continue };
            let arn = rule.rule_arn().unwrap_or_default().to_string();
            let owned = cache
                .rule_tags
                .get(&arn)
                .and_then(|t| t.get(MANAGED_BY_TAG))
                .is_some_and(|o| o == me);
            let weights_by_tg = forward_weights(rule);
            let weights = route.target_groups.slot_weights(&weights_by_tg);
            let path_patterns: Vec<String> = rule
                .conditions()
                .iter()
                .filter(|c| c.field() == Some("path-pattern"))
                .flat_map(|c| match c.path_pattern_config() {
                    Some(cfg) => cfg.values().to_vec(),
                    None => c.values().to_vec(),
                })
                .collect();
            let unexpected = unexpected_on_rule(
                rule,
                &route.target_groups.blue,
                &route.target_groups.green,
                Some(route),
            );
            out.insert(
                w.name.clone(),
                (
                    ObservedRule {
                        arn: Some(arn.clone()),
                        owned,
                        weights,
                        priority: rule.priority().and_then(|p| p.parse().ok()),
                        path_patterns: path_patterns.clone(),
                        unexpected: unexpected.clone(),
                    },
                    CachedRule {
                        arn,
                        owned,
                        priority: rule.priority().and_then(|p| p.parse().ok()),
                        weights: weights_by_tg,
                        path_patterns,
                        drifted: !unexpected.is_empty(),
                    },
                ),
            );
        }
        Ok(out)
    }

    /// DeleteRule; a rule already gone counts as deleted.
    async fn delete_rule(&self, arn: &str) -> Result<(), PlatformError> {
        self.spend("elbv2:DeleteRule", QuotaClass::ElbMutate, CallKind::Mutate)
            .await;
        match self.clients.elb.delete_rule().rule_arn(arn).send().await {
            Ok(_) => Ok(()),
            Err(e) => match classify("elbv2:DeleteRule", &format!("listener rule {arn}"), e) {
                PlatformError::NotFound { .. } => Ok(()),
                other => Err(other),
            },
        }
    }

    async fn describe_rules(&self, listener: &str) -> Result<Vec<elb::Rule>, PlatformError> {
        let mut rules = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.spend(
                "elbv2:DescribeRules",
                QuotaClass::ElbDescribe,
                CallKind::Describe,
            )
            .await;
            let output = self
                .clients
                .elb
                .describe_rules()
                .listener_arn(listener)
                .page_size(400)
                .set_marker(marker.take())
                .send()
                .await
                .map_err(|e| classify("elbv2:DescribeRules", &format!("listener {listener}"), e))?;
            rules.extend(output.rules().iter().cloned());
            match output.next_marker() {
                Some(next) if !next.is_empty() => marker = Some(next.to_string()),
                _ => return Ok(rules),
            }
        }
    }

    /// Reads the tags of rules not seen before, 20 ARNs a call.
    async fn load_rule_tags(&self, arns: &[String]) -> Result<(), PlatformError> {
        let missing: Vec<String> = {
            let cache = self.cache();
            arns.iter()
                .filter(|a| !cache.rule_tags.contains_key(*a))
                .cloned()
                .collect()
        };
        for batch in missing.chunks(20) {
            self.spend(
                "elbv2:DescribeTags",
                QuotaClass::ElbDescribe,
                CallKind::Describe,
            )
            .await;
            let output = self
                .clients
                .elb
                .describe_tags()
                .set_resource_arns(Some(batch.to_vec()))
                .send()
                .await
                .map_err(|e| classify("elbv2:DescribeTags", "listener rules", e))?;
            let mut cache = self.cache();
            for description in output.tag_descriptions() {
                let Some(arn) = description.resource_arn() else {
                    continue;
                };
                let tags = description
                    .tags()
                    .iter()
                    .filter_map(|t| {
                        Some((
                            t.key()?.to_string(),
                            t.value().unwrap_or_default().to_string(),
                        ))
                    })
                    .collect();
                cache.rule_tags.insert(arn.to_string(), tags);
            }
        }
        Ok(())
    }

    /// Returns a registered revision with `content_hash`, registering one only when the
    /// family's newest revisions have none.
    async fn register_task_definition(
        &self,
        app: &Application,
        me: &str,
        workload: &str,
        content_hash: &str,
        definition: &TaskDefinition,
    ) -> Result<ActionOutcome, PlatformError> {
        if let Some(arn) = self.find_cached_definition(&definition.family, content_hash) {
            return Ok(ActionOutcome::TaskDefinition { arn, reused: true });
        }
        if let Some(arn) = self
            .find_registered(&definition.family, content_hash)
            .await?
        {
            return Ok(ActionOutcome::TaskDefinition { arn, reused: true });
        }
        let request = register_request(&self.clients.ecs, definition)?.set_tags(Some(ecs_tags(
            app,
            me,
            workload,
            Some(content_hash),
        )));
        // RegisterTaskDefinition has no client token, so the SDK must not repeat it: an
        // attempt that timed out may still have registered. Each retry here first looks
        // for a revision with the hash, as the first attempt did.
        let mut attempt = 1;
        let output = loop {
            self.spend(
                "ecs:RegisterTaskDefinition",
                QuotaClass::RegisterTaskDefinition,
                CallKind::Mutate,
            )
            .await;
            let sent = request
                .clone()
                .customize()
                .config_override(crate::aws::ecs_without_retries())
                .send()
                .await;
            let err = match sent {
                Ok(output) => break output,
                Err(e) => classify(
                    "ecs:RegisterTaskDefinition",
                    &format!("task-definition family {}", definition.family),
                    e,
                ),
            };
            if !err.is_transient() || attempt >= crate::aws::MAX_ATTEMPTS {
                return Err(err);
            }
            tracing::warn!(
                family = %definition.family,
                attempt,
                error = %err,
                "RegisterTaskDefinition failed; looking for the revision before trying again"
            );
            tokio::time::sleep(crate::aws::retry_delay(attempt)).await;
            if let Some(arn) = self
                .find_registered(&definition.family, content_hash)
                .await?
            {
                return Ok(ActionOutcome::TaskDefinition { arn, reused: true });
            }
            attempt += 1;
        };
        let registered = output.task_definition();
        let arn = registered
            .and_then(|d| d.task_definition_arn())
            .ok_or_else(|| PlatformError::Rejected {
                api: "ecs:RegisterTaskDefinition",
                message: "the response carried no task definition ARN".into(),
                source: None,
            })?
            .to_string();
        self.cache().task_definitions.insert(
            arn.clone(),
            CachedTaskDefinition {
                family: definition.family.clone(),
                revision: registered.map(|d| d.revision()).unwrap_or_default(),
                content_hash: Some(content_hash.to_string()),
            },
        );
        Ok(ActionOutcome::TaskDefinition { arn, reused: false })
    }

    fn find_cached_definition(&self, family: &str, content_hash: &str) -> Option<String> {
        self.cache()
            .task_definitions
            .iter()
            .filter(|(_, d)| d.family == family && d.content_hash.as_deref() == Some(content_hash))
            .max_by_key(|(_, d)| d.revision)
            .map(|(arn, _)| arn.clone())
    }

    /// The newest active revision of `family` tagged with `content_hash`, if one is
    /// among the [`REVISIONS_SEARCHED`] newest.
    async fn find_registered(
        &self,
        family: &str,
        content_hash: &str,
    ) -> Result<Option<String>, PlatformError> {
        for arn in self.newest_revisions(family).await? {
            let described = self.task_definition(&arn).await?;
            if described.content_hash.as_deref() == Some(content_hash) {
                return Ok(Some(arn));
            }
        }
        Ok(None)
    }

    /// The ARNs of the family's newest active revisions, newest first.
    async fn newest_revisions(&self, family: &str) -> Result<Vec<String>, PlatformError> {
        let mut arns: Vec<(i32, String)> = Vec::new();
        let mut next: Option<String> = None;
        loop {
            self.spend(
                "ecs:ListTaskDefinitions",
                QuotaClass::EcsDescribe,
                CallKind::Describe,
            )
            .await;
            let output = self
                .clients
                .ecs
                .list_task_definitions()
                .family_prefix(family)
                .status(ecs::TaskDefinitionStatus::Active)
                .sort(ecs::SortOrder::Desc)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    classify(
                        "ecs:ListTaskDefinitions",
                        &format!("task-definition family {family}"),
                        e,
                    )
                })?;
            for arn in output.task_definition_arns() {
                // familyPrefix is a prefix: `shop-api` also lists `shop-api-v2`.
                if let Some((f, revision)) = parse_task_definition_arn(arn)
                    && f == family
                {
                    arns.push((revision, arn.clone()));
                }
            }
            // Sorted newest first: once a page is full of revisions we have enough.
            match output.next_token() {
                Some(token) if !token.is_empty() && arns.len() < REVISIONS_SEARCHED => {
                    next = Some(token.to_string())
                }
                _ => break,
            }
        }
        arns.sort_by_key(|a| std::cmp::Reverse(a.0));
        arns.truncate(REVISIONS_SEARCHED);
        Ok(arns.into_iter().map(|(_, arn)| arn).collect())
    }
}

/// A CreateService client token (at most 36 characters): the same service on the same
/// definition always sends the same token, so AWS treats a retried create as one.
fn client_token(service: &str, task_definition_arn: &str) -> String {
    let digest = Sha256::digest(format!("{service}\n{task_definition_arn}"));
    hex::encode(&digest[..16])
}

/// The tags tugboat puts on what it creates: the application's labels, the owner, the
/// workload and (for task definitions) the content hash. One list for every service, so
/// ECS and ELB resources can never be tagged differently.
fn tag_pairs<'a>(
    app: &'a Application,
    me: &'a str,
    workload: &'a str,
    hash: Option<&'a str>,
) -> impl Iterator<Item = (&'a str, &'a str)> {
    app.metadata
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([(MANAGED_BY_TAG, me), (WORKLOAD_TAG, workload)])
        .chain(hash.map(|h| (HASH_TAG, h)))
}

fn ecs_tags(app: &Application, me: &str, workload: &str, hash: Option<&str>) -> Vec<ecs::Tag> {
    tag_pairs(app, me, workload, hash)
        .map(|(k, v)| ecs::Tag::builder().key(k).value(v).build())
        .collect()
}

fn elb_tags(app: &Application, me: &str, workload: &str) -> Vec<elb::Tag> {
    tag_pairs(app, me, workload, None)
        .map(|(k, v)| elb::Tag::builder().key(k).value(v).build())
        .collect()
}

/// The forward action to `weights`, sticky as the route says (off by default, so a
/// weight change moves traffic at once).
fn forward_action(
    weights: &BTreeMap<String, u32>,
    stickiness: Option<&crate::document::TargetGroupStickinessConfig>,
) -> elb::Action {
    let groups = weights
        .iter()
        .map(|(tg, w)| {
            elb::TargetGroupTuple::builder()
                .target_group_arn(tg)
                .weight(i32::try_from(*w).unwrap_or(0))
                .build()
        })
        .collect();
    elb::Action::builder()
        .r#type(elb::ActionTypeEnum::Forward)
        .forward_config(
            elb::ForwardActionConfig::builder()
                .set_target_groups(Some(groups))
                .target_group_stickiness_config(
                    elb::TargetGroupStickinessConfig::builder()
                        .enabled(stickiness.is_some_and(|s| s.enabled))
                        .set_duration_seconds(
                            stickiness
                                .filter(|s| s.enabled)
                                .and_then(|s| s.duration_seconds)
                                .map(to_i32),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

/// Tag naming the workload whose header route a rule is (not [`WORKLOAD_TAG`], so the
/// weighted rule's lookup never finds it).
pub const HEADER_ROUTE_OF_TAG: &str = "tugboat:header-route-of";
/// Tag holding the header route's name (Argo's `setHeaderRoute.name`).
pub const HEADER_ROUTE_TAG: &str = "tugboat:header-route";

/// A header route's conditions: the weighted rule's (paths, the route's conditions),
/// then one `http-header` condition per match.
fn header_rule_conditions(
    path_patterns: &[String],
    route: Option<&crate::document::Route>,
    matches: &[crate::document::HeaderRouteMatch],
) -> Vec<elb::RuleCondition> {
    let mut out = rule_conditions(path_patterns, route);
    out.extend(
        matches
            .iter()
            .filter_map(|m| m.rule_condition())
            .map(|c| elb_condition(&c)),
    );
    out
}

/// A header route read back: the slot its forward goes to alone, its priority, and its
/// `http-header` conditions beyond the route's own, as matches (a value ending in `*` is
/// a `prefix`, as [`crate::document::HeaderValueMatch::alb_value`] writes it; validation
/// keeps `*` and `?` out of the values themselves).
fn observed_header_route(
    rule: &elb::Rule,
    name: String,
    route: &crate::document::Route,
) -> crate::observed::ObservedHeaderRoute {
    let forward = forward_weights(rule);
    let to: Vec<&String> = forward
        .iter()
        .filter(|(_, w)| **w > 0)
        .map(|(tg, _)| tg)
        .collect();
    let slot = match to.as_slice() {
        [tg] if **tg == route.target_groups.blue => Some(Slot::Blue),
        [tg] if **tg == route.target_groups.green => Some(Slot::Green),
        _ => None,
    };
    let mut own: Vec<crate::document::RuleCondition> = route.conditions.clone();
    let mut matches = Vec::new();
    for c in rule.conditions() {
        let Some(doc) = document_condition(c) else {
            continue;
        };
        if let Some(i) = own.iter().position(|o| *o == doc) {
            own.remove(i);
            continue;
        }
        let Some(h) = doc.http_header_config else {
            continue;
        };
        for value in h.values {
            let header_value = match value.strip_suffix('*') {
                Some(prefix) => crate::document::HeaderValueMatch {
                    prefix: Some(prefix.to_string()),
                    ..Default::default()
                },
                None => crate::document::HeaderValueMatch {
                    exact: Some(value),
                    ..Default::default()
                },
            };
            matches.push(crate::document::HeaderRouteMatch {
                header_name: h.http_header_name.clone(),
                header_value,
            });
        }
    }
    crate::observed::ObservedHeaderRoute {
        name,
        slot,
        priority: rule.priority().and_then(|p| p.parse().ok()),
        matches,
    }
}

/// The rule's conditions: the path patterns, then the route's other conditions.
fn rule_conditions(
    path_patterns: &[String],
    route: Option<&crate::document::Route>,
) -> Vec<elb::RuleCondition> {
    let mut out = vec![path_condition(path_patterns)];
    out.extend(
        route
            .iter()
            .flat_map(|r| r.conditions.iter())
            .map(elb_condition),
    );
    out
}

/// One document condition in ELB's types.
fn elb_condition(c: &crate::document::RuleCondition) -> elb::RuleCondition {
    let values = |v: &Option<crate::document::ValuesConfig>| {
        v.as_ref().map(|v| v.values.clone()).unwrap_or_default()
    };
    let mut b = elb::RuleCondition::builder().field(c.field.as_str());
    match c.field {
        crate::document::ConditionField::HostHeader => {
            b = b.host_header_config(
                elb::HostHeaderConditionConfig::builder()
                    .set_values(Some(values(&c.host_header_config)))
                    .build(),
            );
        }
        crate::document::ConditionField::HttpHeader => {
            let h = c.http_header_config.as_ref();
            b = b.http_header_config(
                elb::HttpHeaderConditionConfig::builder()
                    .set_http_header_name(h.map(|h| h.http_header_name.clone()))
                    .set_values(h.map(|h| h.values.clone()))
                    .build(),
            );
        }
        crate::document::ConditionField::HttpRequestMethod => {
            b = b.http_request_method_config(
                elb::HttpRequestMethodConditionConfig::builder()
                    .set_values(Some(values(&c.http_request_method_config)))
                    .build(),
            );
        }
        crate::document::ConditionField::QueryString => {
            let pairs = c
                .query_string_config
                .iter()
                .flat_map(|q| q.values.iter())
                .map(|kv| {
                    elb::QueryStringKeyValuePair::builder()
                        .set_key(kv.key.clone())
                        .value(&kv.value)
                        .build()
                })
                .collect();
            b = b.query_string_config(
                elb::QueryStringConditionConfig::builder()
                    .set_values(Some(pairs))
                    .build(),
            );
        }
        crate::document::ConditionField::SourceIp => {
            b = b.source_ip_config(
                elb::SourceIpConditionConfig::builder()
                    .set_values(Some(values(&c.source_ip_config)))
                    .build(),
            );
        }
    }
    b.build()
}

/// An ELB condition read back in the document's shape, if it is one tugboat renders.
fn document_condition(c: &elb::RuleCondition) -> Option<crate::document::RuleCondition> {
    use crate::document::{
        ConditionField as F, HttpHeaderConfig, QueryStringConfig, QueryStringKeyValue,
        RuleCondition, ValuesConfig,
    };
    let field = match c.field()? {
        "host-header" => F::HostHeader,
        "http-header" => F::HttpHeader,
        "http-request-method" => F::HttpRequestMethod,
        "query-string" => F::QueryString,
        "source-ip" => F::SourceIp,
        _ => return None,
    };
    let list = |v: Option<&[String]>| ValuesConfig {
        values: v
            .map(<[String]>::to_vec)
            .unwrap_or_else(|| c.values().to_vec()),
    };
    let mut out = RuleCondition {
        field,
        host_header_config: None,
        http_header_config: None,
        http_request_method_config: None,
        query_string_config: None,
        source_ip_config: None,
    };
    match field {
        F::HostHeader => {
            out.host_header_config = Some(list(c.host_header_config().map(|h| h.values())));
        }
        F::HttpHeader => {
            let h = c.http_header_config()?;
            out.http_header_config = Some(HttpHeaderConfig {
                http_header_name: h.http_header_name()?.to_string(),
                values: h.values().to_vec(),
            });
        }
        F::HttpRequestMethod => {
            out.http_request_method_config =
                Some(list(c.http_request_method_config().map(|m| m.values())));
        }
        F::QueryString => {
            out.query_string_config = Some(QueryStringConfig {
                values: c
                    .query_string_config()?
                    .values()
                    .iter()
                    .map(|kv| QueryStringKeyValue {
                        key: kv.key().map(str::to_string),
                        value: kv.value().unwrap_or_default().to_string(),
                    })
                    .collect(),
            });
        }
        F::SourceIp => {
            out.source_ip_config = Some(list(c.source_ip_config().map(|s| s.values())));
        }
    }
    Some(out)
}

fn path_condition(path_patterns: &[String]) -> elb::RuleCondition {
    elb::RuleCondition::builder()
        .field("path-pattern")
        .path_pattern_config(
            elb::PathPatternConditionConfig::builder()
                .set_values(Some(path_patterns.to_vec()))
                .build(),
        )
        .build()
}

/// Target group ARN -> weight of a rule's forward action (a plain forward counts 100).
fn forward_weights(rule: &elb::Rule) -> BTreeMap<String, u32> {
    let mut out = BTreeMap::new();
    for action in rule.actions() {
        if action.r#type() != Some(&elb::ActionTypeEnum::Forward) {
            continue;
        }
        match action.forward_config() {
            Some(cfg) if !cfg.target_groups().is_empty() => {
                for tuple in cfg.target_groups() {
                    if let Some(arn) = tuple.target_group_arn() {
                        out.insert(arn.to_string(), to_u32(tuple.weight().unwrap_or(1)));
                    }
                }
            }
            _ => {
                if let Some(arn) = action.target_group_arn() {
                    out.insert(arn.to_string(), 100);
                }
            }
        }
    }
    out
}

/// Everything on `rule` beyond the shape tugboat gives it (one path-pattern condition,
/// one forward action to the workload's `blue` and `green` target groups, stickiness
/// off), one line each. Path values that differ from the document's are not listed:
/// `ObservedRule::path_patterns` carries them.
fn unexpected_on_rule(
    rule: &elb::Rule,
    blue: &str,
    green: &str,
    route: Option<&crate::document::Route>,
) -> Vec<String> {
    let mut out = Vec::new();
    let mut path_seen = false;
    // The route's own conditions are expected once each, in any order.
    let mut expected: Vec<&crate::document::RuleCondition> =
        route.iter().flat_map(|r| r.conditions.iter()).collect();
    for condition in rule.conditions() {
        let field = condition.field().unwrap_or("unnamed");
        if field == "path-pattern" && !path_seen {
            path_seen = true;
            continue;
        }
        if let Some(seen) = document_condition(condition)
            && let Some(i) = expected.iter().position(|e| **e == seen)
        {
            expected.remove(i);
            continue;
        }
        out.push(format!(
            "has an extra {field} condition{}",
            condition_detail(condition)
        ));
    }
    for missing in expected {
        out.push(format!(
            "lacks the document's {} condition",
            missing.field.as_str()
        ));
    }
    let wanted_sticky = route
        .and_then(|r| r.target_group_stickiness_config.as_ref())
        .filter(|s| s.enabled);
    let mut forward_seen = false;
    for action in rule.actions() {
        let kind = action.r#type().map_or("unnamed", |t| t.as_str());
        if action.r#type() != Some(&elb::ActionTypeEnum::Forward) || forward_seen {
            out.push(format!("has an extra {kind} action"));
            continue;
        }
        forward_seen = true;
        let groups: Vec<&str> = match action.forward_config() {
            Some(cfg) if !cfg.target_groups().is_empty() => cfg
                .target_groups()
                .iter()
                .filter_map(|t| t.target_group_arn())
                .collect(),
            _ => action.target_group_arn().into_iter().collect(),
        };
        for tg in groups {
            if tg != blue && tg != green {
                out.push(format!("forwards to a third target group {tg}"));
            }
        }
        let config = action
            .forward_config()
            .and_then(|c| c.target_group_stickiness_config());
        let sticky = config.and_then(|c| c.enabled()) == Some(true);
        match wanted_sticky {
            None if sticky => out.push("has target group stickiness on".to_string()),
            Some(_) if !sticky => out.push("has target group stickiness off".to_string()),
            Some(w)
                if sticky
                    && w.duration_seconds.map(to_i32)
                        != config.and_then(|c| c.duration_seconds()) =>
            {
                out.push(format!(
                    "has target group stickiness for {:?} seconds instead of {:?}",
                    config.and_then(|c| c.duration_seconds()),
                    w.duration_seconds
                ));
            }
            _ => {}
        }
    }
    out
}

/// ` ["a", "b"]` or ` X-Canary: ["1"]`: what an extra condition matches, for the line.
fn condition_detail(condition: &elb::RuleCondition) -> String {
    let (name, values): (Option<&str>, &[String]) = if let Some(c) = condition.host_header_config()
    {
        (None, c.values())
    } else if let Some(c) = condition.path_pattern_config() {
        (None, c.values())
    } else if let Some(c) = condition.http_header_config() {
        (c.http_header_name(), c.values())
    } else if let Some(c) = condition.http_request_method_config() {
        (None, c.values())
    } else if let Some(c) = condition.source_ip_config() {
        (None, c.values())
    } else {
        (None, condition.values())
    };
    match (name, values.is_empty()) {
        (Some(name), _) => format!(" {name}: {values:?}"),
        (None, false) => format!(" {values:?}"),
        (None, true) => String::new(),
    }
}

fn register_request(
    client: &aws_sdk_ecs::Client,
    definition: &TaskDefinition,
) -> Result<
    aws_sdk_ecs::operation::register_task_definition::builders::RegisterTaskDefinitionFluentBuilder,
    PlatformError,
> {
    let invalid = |e: aws_sdk_ecs::error::BuildError| PlatformError::Rejected {
        api: "ecs:RegisterTaskDefinition",
        message: format!("task definition {}: {e}", definition.family),
        source: None,
    };
    let mut request = client
        .register_task_definition()
        .family(&definition.family)
        .requires_compatibilities(ecs::Compatibility::Fargate)
        .network_mode(ecs::NetworkMode::Awsvpc)
        .cpu(definition.cpu.to_string())
        .memory(definition.memory.to_string())
        .set_execution_role_arn(definition.execution_role_arn.clone())
        .set_task_role_arn(definition.task_role_arn.clone());
    for c in definition.containers() {
        request = request.container_definitions(container_request(c).map_err(invalid)?);
    }
    for v in &definition.volumes {
        request = request.volumes(volume_request(v).map_err(invalid)?);
    }
    if let Some(p) = &definition.runtime_platform {
        request = request.runtime_platform(
            ecs::RuntimePlatform::builder()
                .set_cpu_architecture(
                    p.cpu_architecture
                        .map(|a| ecs::CpuArchitecture::from(a.as_str())),
                )
                .set_operating_system_family(
                    p.operating_system_family.map(|_| ecs::OsFamily::Linux),
                )
                .build(),
        );
    }
    if let Some(e) = &definition.ephemeral_storage {
        request = request.ephemeral_storage(
            ecs::EphemeralStorage::builder()
                .size_in_gib(to_i32(e.size_in_gib))
                .build(),
        );
    }
    Ok(request)
}

/// The deployment configuration of a new service: ECS's circuit breaker as the document
/// says (on by default), with rollback only for a rolling workload's single service.
fn deployment_configuration(
    rolling: Option<&crate::document::RollingStrategy>,
    settings: &crate::document::ServiceSettings,
    slot: Option<Slot>,
) -> ecs::DeploymentConfiguration {
    let breaker = settings.deployment_circuit_breaker.as_ref();
    ecs::DeploymentConfiguration::builder()
        .deployment_circuit_breaker(
            ecs::DeploymentCircuitBreaker::builder()
                .enable(breaker.is_none_or(|b| b.enable))
                // Slots are rolled back by moving weight, not by ECS.
                .rollback(slot.is_none() && breaker.is_none_or(|b| b.rollback))
                .build(),
        )
        .set_maximum_percent(
            rolling
                .and_then(|r| r.maximum_percent)
                .and_then(|p| i32::try_from(p).ok()),
        )
        .set_minimum_healthy_percent(
            rolling
                .and_then(|r| r.minimum_healthy_percent)
                .and_then(|p| i32::try_from(p).ok()),
        )
        .build()
}

type CreateServiceRequest =
    aws_sdk_ecs::operation::create_service::builders::CreateServiceFluentBuilder;

/// The service settings on a CreateService request: the FARGATE launch type, or the
/// capacity provider strategy instead (ECS refuses both).
fn with_service_settings(
    request: CreateServiceRequest,
    settings: &crate::document::ServiceSettings,
) -> CreateServiceRequest {
    request
        .set_launch_type(
            settings
                .capacity_provider_strategy
                .is_empty()
                .then_some(ecs::LaunchType::Fargate),
        )
        .set_capacity_provider_strategy(capacity_providers(settings))
        .set_platform_version(settings.platform_version.clone())
        .set_enable_execute_command(settings.enable_execute_command)
        .set_health_check_grace_period_seconds(
            settings.health_check_grace_period_seconds.map(to_i32),
        )
        .set_service_connect_configuration(service_connect(settings))
        .set_service_registries(service_registries(settings))
}

/// `serviceConnectConfiguration` of a service as the document has it, or none (ECS keeps
/// what the service has; `enabled: false` in the document turns it off).
fn service_connect(
    settings: &crate::document::ServiceSettings,
) -> Option<ecs::ServiceConnectConfiguration> {
    let sc = settings.service_connect_configuration.as_ref()?;
    let services = sc
        .services
        .iter()
        .filter_map(|svc| {
            let aliases = svc
                .client_aliases
                .iter()
                .filter_map(|a| {
                    ecs::ServiceConnectClientAlias::builder()
                        .port(i32::from(a.port))
                        .set_dns_name(a.dns_name.clone())
                        .build()
                        .ok()
                })
                .collect::<Vec<_>>();
            ecs::ServiceConnectService::builder()
                .port_name(&svc.port_name)
                .set_discovery_name(svc.discovery_name.clone())
                .set_client_aliases((!aliases.is_empty()).then_some(aliases))
                .build()
                .ok()
        })
        .collect::<Vec<_>>();
    let logs = sc.log_configuration.as_ref().and_then(|log| {
        ecs::LogConfiguration::builder()
            .log_driver(ecs::LogDriver::from(log.log_driver.as_str()))
            .set_options(Some(log.options.clone().into_iter().collect()))
            .build()
            .ok()
    });
    Some(
        ecs::ServiceConnectConfiguration::builder()
            .enabled(sc.enabled)
            .set_namespace(sc.namespace.clone())
            .set_services((!services.is_empty()).then_some(services))
            .set_log_configuration(logs)
            .build(),
    )
}

/// `serviceRegistries` of a service: the document's list (an empty list on an update
/// removes what the service had, as ECS takes it).
fn service_registries(
    settings: &crate::document::ServiceSettings,
) -> Option<Vec<ecs::ServiceRegistry>> {
    Some(
        settings
            .service_registries
            .iter()
            .map(|r| {
                ecs::ServiceRegistry::builder()
                    .registry_arn(&r.registry_arn)
                    .set_port(r.port.map(i32::from))
                    .set_container_name(r.container_name.clone())
                    .set_container_port(r.container_port.map(i32::from))
                    .build()
            })
            .collect(),
    )
    .filter(|list: &Vec<_>| !list.is_empty())
}

/// `capacityProviderStrategy` of a service, or none (the FARGATE launch type).
fn capacity_providers(
    settings: &crate::document::ServiceSettings,
) -> Option<Vec<ecs::CapacityProviderStrategyItem>> {
    (!settings.capacity_provider_strategy.is_empty()).then(|| {
        settings
            .capacity_provider_strategy
            .iter()
            .filter_map(|c| {
                ecs::CapacityProviderStrategyItem::builder()
                    .capacity_provider(&c.capacity_provider)
                    .set_base(c.base.map(to_i32))
                    .set_weight(c.weight.map(to_i32))
                    .build()
                    .ok()
            })
            .collect()
    })
}

fn to_i32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// One container of the request, in the SDK's types; the same fields, in the same
/// shape, as [`TaskDefinition::ecs_json`].
fn container_request(
    c: &crate::taskdef::ContainerDefinition,
) -> Result<ecs::ContainerDefinition, aws_sdk_ecs::error::BuildError> {
    let o = &c.options;
    let mut container = ecs::ContainerDefinition::builder()
        .name(&c.name)
        .image(&c.image)
        // The main container is essential unless the document says otherwise, as in ECS.
        .essential(o.essential.unwrap_or(true))
        .set_cpu(o.cpu.map(to_i32))
        .set_memory(o.memory.map(to_i32))
        .set_memory_reservation(o.memory_reservation.map(to_i32))
        .set_environment(Some(
            c.environment
                .iter()
                .map(|(k, v)| ecs::KeyValuePair::builder().name(k).value(v).build())
                .collect(),
        ))
        .set_working_directory(o.working_directory.clone())
        .set_user(o.user.clone())
        .set_readonly_root_filesystem(o.readonly_root_filesystem)
        .set_stop_timeout(o.stop_timeout.map(to_i32));
    for p in c.port_mappings() {
        container = container.port_mappings(
            ecs::PortMapping::builder()
                .container_port(i32::from(p.container_port))
                .set_host_port(p.host_port.map(i32::from))
                .protocol(match p.protocol {
                    Some(crate::document::PortProtocol::Udp) => ecs::TransportProtocol::Udp,
                    _ => ecs::TransportProtocol::Tcp,
                })
                .set_name(p.name.clone())
                .set_app_protocol(p.app_protocol.map(|a| {
                    ecs::ApplicationProtocol::from(match a {
                        crate::document::AppProtocol::Http => "http",
                        crate::document::AppProtocol::Http2 => "http2",
                        crate::document::AppProtocol::Grpc => "grpc",
                    })
                }))
                .build(),
        );
    }
    for (name, value_from) in &c.secrets {
        container = container.secrets(
            ecs::Secret::builder()
                .name(name)
                .value_from(value_from)
                .build()?,
        );
    }
    if let Some(hc) = &c.health_check {
        container = container.health_check(
            ecs::HealthCheck::builder()
                .set_command(Some(hc.command.clone()))
                .interval(i32::try_from(hc.interval).unwrap_or(30))
                .timeout(i32::try_from(hc.timeout).unwrap_or(5))
                .retries(i32::try_from(hc.retries).unwrap_or(3))
                .start_period(i32::try_from(hc.start_period).unwrap_or(0))
                .build()?,
        );
    }
    if let Some(log) = &c.log_configuration {
        container = container.log_configuration(
            ecs::LogConfiguration::builder()
                .log_driver(ecs::LogDriver::from(log.log_driver.as_str()))
                .set_options(Some(log.options.clone().into_iter().collect()))
                .build()?,
        );
    }
    for d in &o.depends_on {
        container = container.depends_on(
            ecs::ContainerDependency::builder()
                .container_name(&d.container_name)
                .condition(ecs::ContainerCondition::from(d.condition.as_str()))
                .build()?,
        );
    }
    if !o.command.is_empty() {
        container = container.set_command(Some(o.command.clone()));
    }
    if !o.entry_point.is_empty() {
        container = container.set_entry_point(Some(o.entry_point.clone()));
    }
    for u in &o.ulimits {
        container = container.ulimits(
            ecs::Ulimit::builder()
                .name(ecs::UlimitName::from(u.name.as_str()))
                .soft_limit(u.soft_limit)
                .hard_limit(u.hard_limit)
                .build()?,
        );
    }
    if let Some(lp) = &o.linux_parameters {
        container = container.linux_parameters(
            ecs::LinuxParameters::builder()
                .set_init_process_enabled(lp.init_process_enabled)
                .build(),
        );
    }
    if let Some(rc) = &o.repository_credentials {
        container = container.repository_credentials(
            ecs::RepositoryCredentials::builder()
                .credentials_parameter(&rc.credentials_parameter)
                .build()?,
        );
    }
    if let Some(f) = &o.firelens_configuration {
        container = container.firelens_configuration(
            ecs::FirelensConfiguration::builder()
                .r#type(match f.kind {
                    crate::document::FirelensType::Fluentbit => {
                        ecs::FirelensConfigurationType::Fluentbit
                    }
                    crate::document::FirelensType::Fluentd => {
                        ecs::FirelensConfigurationType::Fluentd
                    }
                })
                .set_options(
                    (!f.options.is_empty()).then(|| f.options.clone().into_iter().collect()),
                )
                .build()?,
        );
    }
    for m in &o.mount_points {
        container = container.mount_points(
            ecs::MountPoint::builder()
                .source_volume(&m.source_volume)
                .container_path(&m.container_path)
                .set_read_only(m.read_only)
                .build(),
        );
    }
    Ok(container.build())
}

fn volume_request(
    v: &crate::document::Volume,
) -> Result<ecs::Volume, aws_sdk_ecs::error::BuildError> {
    let mut volume = ecs::Volume::builder().name(&v.name);
    if let Some(efs) = &v.efs_volume_configuration {
        let toggle = |t: crate::document::Toggle| ecs::EfsTransitEncryption::from(t.as_str());
        volume = volume.efs_volume_configuration(
            ecs::EfsVolumeConfiguration::builder()
                .file_system_id(&efs.file_system_id)
                .set_root_directory(efs.root_directory.clone())
                .set_transit_encryption(efs.transit_encryption.map(toggle))
                .set_transit_encryption_port(efs.transit_encryption_port.map(i32::from))
                .set_authorization_config(efs.authorization_config.as_ref().map(|a| {
                    ecs::EfsAuthorizationConfig::builder()
                        .set_access_point_id(a.access_point_id.clone())
                        .set_iam(
                            a.iam
                                .map(|t| ecs::EfsAuthorizationConfigIam::from(t.as_str())),
                        )
                        .build()
                }))
                .build()?,
        );
    }
    Ok(volume.build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml_json: serde_json::Value) -> crate::document::ServiceSettings {
        serde_json::from_value(yaml_json).expect("settings")
    }

    /// moto's CreateService ignores these settings, so the request itself is checked.
    #[tokio::test]
    async fn service_settings_reach_the_create_service_request() {
        let config = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .region(aws_sdk_ecs::config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_ecs::Client::from_conf(config);
        let spot = settings(serde_json::json!({
            "platformVersion": "1.4.0", "enableExecuteCommand": true,
            "healthCheckGracePeriodSeconds": 45,
            "capacityProviderStrategy": [
                {"capacityProvider": "FARGATE", "base": 1, "weight": 1},
                {"capacityProvider": "FARGATE_SPOT", "weight": 3}]
        }));
        let request = with_service_settings(client.create_service(), &spot);
        let input = request.as_input();
        assert_eq!(input.get_launch_type(), &None);
        let providers: Vec<(String, Option<i32>, Option<i32>)> = input
            .get_capacity_provider_strategy()
            .iter()
            .flatten()
            .map(|c| {
                (
                    c.capacity_provider().to_string(),
                    Some(c.base()),
                    Some(c.weight()),
                )
            })
            .collect();
        assert_eq!(
            providers,
            [
                ("FARGATE".to_string(), Some(1), Some(1)),
                ("FARGATE_SPOT".to_string(), Some(0), Some(3))
            ]
        );
        assert_eq!(input.get_platform_version().as_deref(), Some("1.4.0"));
        assert_eq!(input.get_enable_execute_command(), &Some(true));
        assert_eq!(input.get_health_check_grace_period_seconds(), &Some(45));

        let plain =
            with_service_settings(client.create_service(), &settings(serde_json::json!({})));
        assert_eq!(
            plain.as_input().get_launch_type(),
            &Some(ecs::LaunchType::Fargate)
        );
        assert_eq!(plain.as_input().get_capacity_provider_strategy(), &None);
    }

    /// moto drops `serviceConnectConfiguration`, so the request carries the check.
    #[tokio::test]
    async fn service_connect_reaches_the_create_service_request_in_ecs_shape() {
        let config = aws_sdk_ecs::Config::builder()
            .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
            .region(aws_sdk_ecs::config::Region::new("us-east-1"))
            .build();
        let client = aws_sdk_ecs::Client::from_conf(config);
        let published = settings(serde_json::json!({
            "serviceConnectConfiguration": {
                "enabled": true, "namespace": "prediction.local",
                "services": [{"portName": "http", "discoveryName": "ml-model-service",
                              "clientAliases": [{"port": 8000, "dnsName": "ml-model-service"}]}],
                "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/ecs/sc"}}
            }
        }));
        let request = with_service_settings(client.create_service(), &published);
        let sc = request
            .as_input()
            .get_service_connect_configuration()
            .clone()
            .expect("service connect on the request");
        assert!(sc.enabled());
        assert_eq!(sc.namespace(), Some("prediction.local"));
        let svc = &sc.services()[0];
        assert_eq!(
            (svc.port_name(), svc.discovery_name()),
            ("http", Some("ml-model-service"))
        );
        let alias = &svc.client_aliases()[0];
        assert_eq!(
            (alias.port(), alias.dns_name()),
            (8000, Some("ml-model-service"))
        );
        let logs = sc.log_configuration().expect("proxy logs");
        assert_eq!(logs.log_driver(), &ecs::LogDriver::Awslogs);
        // A client alone publishes nothing; no configuration sends none.
        let client_only = settings(serde_json::json!({
            "serviceConnectConfiguration": {"enabled": true, "namespace": "prediction.local"}
        }));
        let sc = service_connect(&client_only).expect("client");
        assert!(sc.enabled() && sc.services().is_empty());
        assert_eq!(service_connect(&settings(serde_json::json!({}))), None);
        assert_eq!(service_registries(&settings(serde_json::json!({}))), None);
    }

    #[test]
    fn the_circuit_breaker_follows_the_document_and_never_rolls_a_slot_back() {
        let off = settings(serde_json::json!({"deploymentCircuitBreaker": {"enable": false}}));
        let d = deployment_configuration(None, &off, None);
        let b = d.deployment_circuit_breaker().expect("breaker");
        assert!(!b.enable() && !b.rollback());
        let default = settings(serde_json::json!({}));
        let rolling = deployment_configuration(None, &default, None);
        let b = rolling.deployment_circuit_breaker().expect("breaker");
        assert!(b.enable() && b.rollback());
        let slot = deployment_configuration(None, &default, Some(Slot::Green));
        let b = slot.deployment_circuit_breaker().expect("breaker");
        assert!(b.enable() && !b.rollback());
    }

    #[test]
    fn task_definition_arns_split_into_family_and_revision() {
        assert_eq!(
            parse_task_definition_arn(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/shop-api:7"
            ),
            Some(("shop-api", 7))
        );
        assert_eq!(parse_task_definition_arn("shop-api"), None);
    }

    #[test]
    fn client_tokens_fit_ecs_and_depend_on_service_and_definition() {
        let a = client_token("api-blue", "arn:td/shop-api:1");
        assert_eq!(a.len(), 32);
        assert_eq!(a, client_token("api-blue", "arn:td/shop-api:1"));
        assert_ne!(a, client_token("api-green", "arn:td/shop-api:1"));
    }

    #[test]
    fn only_a_clean_rule_at_100_0_puts_a_workload_at_rest() {
        let rule = |blue: u32, green: u32, unexpected: &[&str]| ObservedRule {
            arn: None,
            owned: true,
            weights: BTreeMap::from([(Slot::Blue, blue), (Slot::Green, green)]),
            priority: None,
            path_patterns: Vec::new(),
            unexpected: unexpected.iter().map(|u| u.to_string()).collect(),
        };
        assert_eq!(weighted_slot(&rule(100, 0, &[])), Some(Slot::Blue));
        assert_eq!(weighted_slot(&rule(0, 100, &[])), Some(Slot::Green));
        assert_eq!(weighted_slot(&rule(90, 10, &[])), None);
        assert_eq!(weighted_slot(&rule(0, 0, &[])), None);
        assert_eq!(
            weighted_slot(&rule(100, 0, &["forwards to a third target group tg-x"])),
            None
        );
    }

    fn tuple(tg: &str, weight: i32) -> elb::TargetGroupTuple {
        elb::TargetGroupTuple::builder()
            .target_group_arn(tg)
            .weight(weight)
            .build()
    }

    /// Every condition field, rendered in ELB's types and read back, is the document's
    /// (query-string is checked here only: the emulator test fills ELB's 5 values).
    #[test]
    fn route_conditions_read_back_as_written() {
        let conditions: Vec<crate::document::RuleCondition> = serde_json::from_value(serde_json::json!([
            {"field": "host-header", "hostHeaderConfig": {"values": ["*.example.com"]}},
            {"field": "http-header", "httpHeaderConfig": {"httpHeaderName": "X-Canary", "values": ["1"]}},
            {"field": "http-request-method", "httpRequestMethodConfig": {"values": ["GET", "HEAD"]}},
            {"field": "query-string", "queryStringConfig": {"values": [{"key": "version", "value": "v2"}, {"value": "beta"}]}},
            {"field": "source-ip", "sourceIpConfig": {"values": ["192.0.2.0/24"]}}
        ]))
        .expect("conditions");
        for c in &conditions {
            assert_eq!(document_condition(&elb_condition(c)).as_ref(), Some(c));
        }
        let route: crate::document::Route = serde_json::from_value(serde_json::json!({
            "pathPatterns": ["/api/*"], "priority": 1,
            "targetGroups": {"blue": "tg-b", "green": "tg-g"},
            "conditions": conditions,
            "targetGroupStickinessConfig": {"enabled": true, "durationSeconds": 60}
        }))
        .expect("route");
        let weights = BTreeMap::from([("tg-b".to_string(), 100), ("tg-g".to_string(), 0)]);
        let rule = elb::Rule::builder()
            .set_conditions(Some(rule_conditions(&route.path_patterns, Some(&route))))
            .actions(forward_action(
                &weights,
                route.target_group_stickiness_config.as_ref(),
            ))
            .build();
        assert_eq!(
            unexpected_on_rule(&rule, "tg-b", "tg-g", Some(&route)),
            Vec::<String>::new()
        );
        // The same rule against a route without them: every extra is one line.
        let plain = crate::document::Route {
            conditions: Vec::new(),
            target_group_stickiness_config: None,
            ..route.clone()
        };
        assert_eq!(
            unexpected_on_rule(&rule, "tg-b", "tg-g", Some(&plain)).len(),
            6
        );
    }

    #[test]
    fn tugboats_own_rule_has_nothing_unexpected_and_extras_are_one_line_each() {
        let weights = BTreeMap::from([("tg-b".to_string(), 90), ("tg-g".to_string(), 10)]);
        let own = elb::Rule::builder()
            .conditions(path_condition(&["/api/*".to_string()]))
            .actions(forward_action(&weights, None))
            .build();
        assert_eq!(
            unexpected_on_rule(&own, "tg-b", "tg-g", None),
            Vec::<String>::new()
        );

        let sticky_forward = elb::Action::builder()
            .r#type(elb::ActionTypeEnum::Forward)
            .forward_config(
                elb::ForwardActionConfig::builder()
                    .target_groups(tuple("tg-b", 90))
                    .target_groups(tuple("tg-x", 10))
                    .target_group_stickiness_config(
                        elb::TargetGroupStickinessConfig::builder()
                            .enabled(true)
                            .build(),
                    )
                    .build(),
            )
            .build();
        let fixed = elb::Action::builder()
            .r#type(elb::ActionTypeEnum::FixedResponse)
            .build();
        let drifted = elb::Rule::builder()
            .conditions(path_condition(&["/api/*".to_string()]))
            .conditions(path_condition(&["/admin/*".to_string()]))
            .actions(sticky_forward)
            .actions(fixed)
            .build();
        assert_eq!(
            unexpected_on_rule(&drifted, "tg-b", "tg-g", None),
            vec![
                r#"has an extra path-pattern condition ["/admin/*"]"#.to_string(),
                "forwards to a third target group tg-x".to_string(),
                "has target group stickiness on".to_string(),
                "has an extra fixed-response action".to_string(),
            ]
        );
    }
}
