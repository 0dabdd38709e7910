//! Measuring analysis templates: one [`MetricProvider`] trait with a module per provider
//! ([`web`], [`prometheus`], [`cloudwatch`], and [`memory`] for loop tests), and the
//! [`Runner`] a pass calls before planning.
//!
//! The runner is thin: the persisted status says which measurements are due at `now`
//! ([`tugboat_core::analysis::due`]); the runner takes them, concurrently, and hands the
//! answers to the planner as [`TakenMeasurement`]s in the observation. What an answer
//! counts as, and what the answers add up to, is decided in the core. No background task
//! holds anything: a restart loses at most the measurements of the pass it interrupted,
//! which are taken again.
//!
//! Guarantees every provider keeps:
//! - It never fails and never panics: whatever goes wrong (unreachable, timed out,
//!   garbage, a query the server rejects, an argument without a value) is an
//!   [`Answer::Error`] naming the template and the cause, which the analysis counts
//!   against `consecutiveErrorLimit`; nothing is a silent pass.
//! - Nothing found is [`Answer::NoData`], never a number made up.
//! - Secret values (header values and credentials read through [`Secrets`]) never appear
//!   in an answer, an error or a log line; only their source's name does.
//! - Each measurement is bounded by the template's timeout (the runner enforces it too).

pub mod cloudwatch;
pub mod local;
pub mod memory;
pub mod prometheus;
pub mod secrets;
pub mod web;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::document::{AnalysisTemplate, Application, MetricProvider as ProviderSpec, Platform};
use crate::observed::{Answer, TakenMeasurement};
use crate::platform::BoxFuture;
use crate::status::{AppStatus, Timestamp};

#[cfg(feature = "aws")]
pub use secrets::SsmSecrets;
pub use secrets::{EnvSecrets, Secrets};

/// The default timeout of a web or Prometheus measurement.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a CloudWatch measurement may take (the SDK's own per-call timeout is 30 s).
pub const CLOUDWATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// One query of one template, its arguments filled in where the provider needs them.
#[derive(Debug, Clone)]
pub struct MetricRequest {
    pub template: AnalysisTemplate,
    /// The query to answer: the template's `query` or its `sampleQuery`, arguments
    /// substituted.
    pub query: String,
    /// The run's arguments, for the provider's other fields (URL, headers, body,
    /// dimensions).
    pub args: BTreeMap<String, String>,
    /// The load balancer of the document's listener (`app/NAME/ID`), for CloudWatch.
    pub load_balancer: Option<String>,
    /// The pass's time: CloudWatch's window ends here.
    pub now: Timestamp,
}

/// A metric source. See the module docs for what every implementation guarantees.
pub trait MetricProvider: Send + Sync + fmt::Debug {
    /// Answers `request`. Never fails: errors are [`Answer::Error`].
    fn measure<'a>(&'a self, request: &'a MetricRequest) -> BoxFuture<'a, Answer>;
}

/// The providers a runner measures with, one per kind of template.
#[derive(Debug, Clone)]
pub struct Providers {
    pub web: Arc<dyn MetricProvider>,
    pub prometheus: Arc<dyn MetricProvider>,
    pub cloudwatch: Arc<dyn MetricProvider>,
}

impl Providers {
    fn for_template(&self, t: &AnalysisTemplate) -> Arc<dyn MetricProvider> {
        match &t.provider {
            ProviderSpec::Web(_) => self.web.clone(),
            ProviderSpec::Prometheus(_) => self.prometheus.clone(),
            ProviderSpec::Cloudwatch(_) => self.cloudwatch.clone(),
        }
    }

    /// Web and Prometheus over plain HTTP, secrets from environment variables, and no
    /// ALB metrics (`cloudwatch` templates answer an error saying so).
    pub fn without_aws() -> Self {
        let secrets: Arc<dyn Secrets> = Arc::new(EnvSecrets);
        Self {
            web: Arc::new(web::Web::new(secrets.clone())),
            prometheus: Arc::new(prometheus::Prometheus::new(secrets)),
            cloudwatch: Arc::new(Unavailable(
                "no ALB metric source on this platform (CloudWatch is AWS's)",
            )),
        }
    }

    /// On the local platform: web and Prometheus as [`Providers::without_aws`], and the
    /// ALB metrics of `cloudwatch` templates from the local router's counters.
    pub fn local(router: crate::platform::local::stats::RouterStats) -> Self {
        Self {
            cloudwatch: Arc::new(cloudwatch::Cloudwatch::new(Arc::new(
                local::LocalAlbSource::new(router),
            ))),
            ..Self::without_aws()
        }
    }

    /// On AWS: secrets from the environment or SSM (SecureString), ALB metrics from
    /// CloudWatch.
    #[cfg(feature = "aws")]
    pub fn aws(ssm: aws_sdk_ssm::Client, cloudwatch: aws_sdk_cloudwatch::Client) -> Self {
        let secrets: Arc<dyn Secrets> = Arc::new(SsmSecrets::new(ssm));
        Self {
            web: Arc::new(web::Web::new(secrets.clone())),
            prometheus: Arc::new(prometheus::Prometheus::new(secrets)),
            cloudwatch: Arc::new(cloudwatch::Cloudwatch::new(Arc::new(
                cloudwatch::CloudwatchSource::new(cloudwatch),
            ))),
        }
    }
}

/// A provider that cannot measure here; every answer says why.
#[derive(Debug)]
pub struct Unavailable(pub &'static str);

impl MetricProvider for Unavailable {
    fn measure<'a>(&'a self, request: &'a MetricRequest) -> BoxFuture<'a, Answer> {
        Box::pin(
            async move { Answer::Error(format!("template {}: {}", request.template.name, self.0)) },
        )
    }
}

/// Takes the measurements a pass owes.
#[derive(Debug, Clone)]
pub struct Runner {
    providers: Providers,
}

impl Runner {
    pub fn new(providers: Providers) -> Self {
        Self { providers }
    }

    /// Every measurement due at `now` in the runs of `status`, taken concurrently, by
    /// workload. Each is stamped with `now` (the pass's clock, which the planner also
    /// reads), so a recorded pass replays the same.
    pub async fn measure(
        &self,
        app: &Application,
        status: Option<&AppStatus>,
        now: Timestamp,
    ) -> BTreeMap<String, Vec<TakenMeasurement>> {
        let Some(status) = status else {
            return BTreeMap::new();
        };
        let due = tugboat_core::analysis::due(app, status, now);
        if due.is_empty() {
            return BTreeMap::new();
        }
        let load_balancer = load_balancer_of(app);
        let mut tasks = tokio::task::JoinSet::new();
        for (order, d) in due.into_iter().enumerate() {
            let Some(t) = tugboat_core::analysis::template(app, &d.template).cloned() else {
                continue;
            };
            let provider = self.providers.for_template(&t);
            let load_balancer = load_balancer.clone();
            tasks.spawn(async move {
                let request = |query: &str| -> Result<MetricRequest, Answer> {
                    let query = tugboat_core::analysis::substitute(query, &d.args)
                        .map_err(|e| Answer::Error(format!("template {}: {e}", t.name)))?;
                    Ok(MetricRequest {
                        template: t.clone(),
                        query,
                        args: d.args.clone(),
                        load_balancer: load_balancer.clone(),
                        now,
                    })
                };
                let limit = timeout_of(&t) + Duration::from_secs(1);
                let ask = |req: Result<MetricRequest, Answer>| {
                    let provider = provider.clone();
                    let name = t.name.clone();
                    async move {
                        let req = match req {
                            Ok(r) => r,
                            Err(answer) => return answer,
                        };
                        match tokio::time::timeout(limit, provider.measure(&req)).await {
                            Ok(answer) => answer,
                            Err(_) => Answer::Error(format!(
                                "template {name}: no answer within {}",
                                humantime::format_duration(limit)
                            )),
                        }
                    }
                };
                let answer = ask(request(&t.query)).await;
                let samples = match &t.sample_query {
                    Some(q) if t.minimum_samples.is_some() => Some(ask(request(q)).await),
                    _ => None,
                };
                (
                    order,
                    d.workload,
                    TakenMeasurement {
                        run: d.run,
                        template: d.template,
                        started_at: now,
                        finished_at: now,
                        answer,
                        samples,
                    },
                )
            });
        }
        let mut taken = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(t) => taken.push(t),
                Err(e) => tracing::error!(error = %e, "an analysis measurement task failed"),
            }
        }
        // In the order `due` gave, so a pass's observation does not depend on timing.
        taken.sort_by_key(|(order, _, _)| *order);
        let mut out: BTreeMap<String, Vec<TakenMeasurement>> = BTreeMap::new();
        for (_, workload, m) in taken {
            if let Answer::Error(e) = &m.answer {
                tracing::warn!(workload, template = m.template, error = %e, "analysis measurement failed");
            }
            out.entry(workload).or_default().push(m);
        }
        out
    }
}

/// A template's measurement timeout.
pub fn timeout_of(t: &AnalysisTemplate) -> Duration {
    match &t.provider {
        ProviderSpec::Web(w) => w.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        ProviderSpec::Prometheus(p) => p.timeout.map_or(DEFAULT_TIMEOUT, |d| d.0),
        ProviderSpec::Cloudwatch(_) => CLOUDWATCH_TIMEOUT,
    }
}

/// The `LoadBalancer` dimension of the document's listener, if it has one.
fn load_balancer_of(app: &Application) -> Option<String> {
    match &app.spec.platform {
        Platform::Aws(aws) => aws
            .listener_arn
            .as_deref()
            .and_then(cloudwatch::load_balancer_dimension),
        Platform::Local(_) => None,
    }
}

/// A provider's HTTP answer body, cut short for messages (answers can be large).
pub(crate) fn excerpt(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 160 {
        format!("{}...", one_line.chars().take(157).collect::<String>())
    } else {
        one_line
    }
}
