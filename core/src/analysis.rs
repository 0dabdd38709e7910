//! Analysis runs, purely: when a measurement is due, what one answer counts as, and what
//! a run's measurements add up to, with Argo Rollouts' semantics and `now` passed in.
//!
//! A run ([`AnalysisRunStatus`]) lives in the persisted status; the controller's runner
//! asks [`due`] which measurements to take at `now`, takes them through the providers
//! and hands them back as [`TakenMeasurement`]s in the observation; the planner folds
//! them in with [`absorb`]. So a restart loses no measurement that was persisted, and a
//! run resumes where it stood.
//!
//! Semantics (one template is one Argo metric):
//! - `count` measurements with a verdict (errors do not count), `interval` apart (default
//!   1m when `count` is above 1; after an error, the interval or [`ERROR_RETRY_INTERVAL`]); the first `initialDelay` after
//!   the run started. Without `count`: once without `interval`, until the run is
//!   stopped with it.
//! - A metric fails once more than `failureLimit` measurements failed, is inconclusive
//!   once more than `inconclusiveLimit` were, is in error once more than
//!   `consecutiveErrorLimit` errors came in a row, and succeeds once `count` is reached.
//! - A measurement: a provider error is an error; with `minimumSamples`, fewer samples
//!   is inconclusive; no data counts as `noData` says (default inconclusive); otherwise
//!   `failureCondition` true is a failure, `successCondition` true a success, neither an
//!   inconclusive when a failure condition exists and a failure when it does not. A
//!   condition that does not apply to the answer is an error.
//! - A run fails as soon as one of its metrics fails or errs (dry-run metrics aside), is
//!   otherwise running while any metric runs, inconclusive when one is, and succeeded.
//!   Dry-run metrics are measured and shown and never decide anything.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::condition::{Condition, Value, format_number};
use crate::document::{AnalysisArg, AnalysisTemplate, Application, ArgSource, NoData};
use crate::observed::{Answer, TakenMeasurement};
use crate::status::{
    AnalysisPhase, AnalysisRunKind, AnalysisRunStatus, AppStatus, MAX_MEASUREMENTS, Measurement,
    MeasurementPhase, MetricPhase, MetricStatus, Timestamp,
};

/// Argo Rollouts' default `consecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: u32 = 4;
/// How soon a measurement that errored is retried when the template has no `interval`
/// (Argo's `DefaultErrorRetryInterval`).
pub const ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Why a template's arguments cannot be filled in.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgError {
    #[error(
        "`{{{{args.{name}}}}}` has no value: declare it in the template's `args` and pass it from the step"
    )]
    Missing { name: String },
    #[error("`{{{{` at character {position} is never closed with `}}}}`")]
    Unclosed { position: usize },
    #[error("`{{{{{text}}}}}` is not an argument; write `{{{{args.NAME}}}}`")]
    NotAnArg { text: String },
}

/// How many measurements a metric takes: `None` means until the run is stopped.
///
/// ```
/// # use tugboat_core::analysis::effective_count;
/// # let t = |count, interval: Option<&str>| tugboat_core::document::AnalysisTemplate {
/// #   count, interval: interval.map(|i| i.parse().unwrap()), ..serde_json::from_value(
/// #   serde_json::json!({"name":"t","provider":{"web":{"url":"http://x"}},"query":"/",
/// #   "successCondition":"true"})).unwrap() };
/// assert_eq!(effective_count(&t(None, None)), Some(1));
/// assert_eq!(effective_count(&t(Some(3), Some("1m"))), Some(3));
/// assert_eq!(effective_count(&t(None, Some("1m"))), None);
/// ```
pub fn effective_count(t: &AnalysisTemplate) -> Option<u32> {
    match (t.count, t.interval) {
        (Some(c), _) => Some(c),
        (None, None) => Some(1),
        (None, Some(_)) => None,
    }
}

/// The time between measurements: `interval`, or [`DEFAULT_INTERVAL`] when `count` is
/// above 1 and no interval is written; `None`: back to back (a single measurement).
pub fn interval(t: &AnalysisTemplate) -> Option<Duration> {
    match (t.interval, t.count) {
        (Some(i), _) => Some(i.0),
        (None, Some(c)) if c > 1 => Some(DEFAULT_INTERVAL),
        (None, _) => None,
    }
}

/// The interval of a template with `count` above 1 and no `interval`.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// The id of a step run: one per step attempt of a rollout.
pub fn step_run_id(hash: &str, step_index: usize, attempt: Timestamp) -> String {
    format!("{hash}/step-{step_index}/{}", attempt.0)
}

/// The id of a background run.
pub fn background_run_id(hash: &str, started_at: Timestamp) -> String {
    format!("{hash}/background/{}", started_at.0)
}

/// A new run of `templates` (all of them, in order), Running with no measurement.
pub fn new_run(
    id: String,
    kind: AnalysisRunKind,
    hash: &str,
    step_index: Option<usize>,
    started_at: Timestamp,
    templates: &[&AnalysisTemplate],
    args: BTreeMap<String, String>,
) -> AnalysisRunStatus {
    AnalysisRunStatus {
        id,
        kind,
        hash: hash.to_string(),
        step_index,
        started_at,
        phase: AnalysisPhase::Running,
        message: String::new(),
        args,
        metrics: templates
            .iter()
            .map(|t| MetricStatus {
                template: t.name.clone(),
                dry_run: t.dry_run,
                ..MetricStatus::default()
            })
            .collect(),
        finished_at: None,
        effect: None,
    }
}

/// What the rollout knows that `valueFrom` can name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutFacts {
    pub workload: String,
    pub canary_target_group: String,
    pub stable_target_group: String,
    pub canary_slot: String,
    pub stable_slot: String,
    pub canary_service: String,
    pub stable_service: String,
    pub canary_hash: String,
    pub stable_hash: String,
    pub model_version: String,
}

impl RolloutFacts {
    fn get(&self, source: ArgSource) -> &str {
        match source {
            ArgSource::CanaryTargetGroup => &self.canary_target_group,
            ArgSource::StableTargetGroup => &self.stable_target_group,
            ArgSource::CanarySlot => &self.canary_slot,
            ArgSource::StableSlot => &self.stable_slot,
            ArgSource::CanaryServiceName => &self.canary_service,
            ArgSource::StableServiceName => &self.stable_service,
            ArgSource::CanaryHash => &self.canary_hash,
            ArgSource::StableHash => &self.stable_hash,
            ArgSource::ModelVersion => &self.model_version,
            ArgSource::WorkloadName => &self.workload,
        }
    }
}

/// The arguments of a run: the templates' defaults, overridden by what the step passes
/// (`value`, or `valueFrom` the rollout). An argument a template declares without a
/// default and the step does not pass is an error naming it.
pub fn resolve_args(
    templates: &[&AnalysisTemplate],
    passed: &[AnalysisArg],
    facts: &RolloutFacts,
) -> Result<BTreeMap<String, String>, ArgError> {
    let mut args = BTreeMap::new();
    for t in templates {
        for a in &t.args {
            if let Some(v) = &a.value {
                args.entry(a.name.clone()).or_insert_with(|| v.clone());
            }
        }
    }
    for a in passed {
        let value = match (&a.value, a.value_from) {
            (Some(v), _) => v.clone(),
            (None, Some(source)) => facts.get(source).to_string(),
            (None, None) => continue,
        };
        args.insert(a.name.clone(), value);
    }
    for t in templates {
        for a in &t.args {
            if !args.contains_key(&a.name) {
                return Err(ArgError::Missing {
                    name: a.name.clone(),
                });
            }
        }
    }
    Ok(args)
}

/// `text` with every `{{args.NAME}}` replaced by its value.
///
/// ```
/// # use std::collections::BTreeMap;
/// # use tugboat_core::analysis::substitute;
/// let args = BTreeMap::from([("tg".to_string(), "targetgroup/a/1".to_string())]);
/// assert_eq!(substitute("x{{ args.tg }}y", &args).unwrap(), "xtargetgroup/a/1y");
/// assert!(substitute("{{args.nope}}", &args).is_err());
/// ```
pub fn substitute(text: &str, args: &BTreeMap<String, String>) -> Result<String, ArgError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ArgError::Unclosed {
                position: offset + start + 1,
            });
        };
        let inner = after[..end].trim();
        let Some(name) = inner.strip_prefix("args.") else {
            return Err(ArgError::NotAnArg {
                text: inner.to_string(),
            });
        };
        let value = args.get(name.trim()).ok_or_else(|| ArgError::Missing {
            name: name.trim().to_string(),
        })?;
        out.push_str(value);
        offset += start + 2 + end + 2;
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of the `{{args.NAME}}` placeholders in `text` (for validation).
pub fn placeholders(text: &str) -> Result<Vec<String>, ArgError> {
    let mut names = Vec::new();
    let mut rest = text;
    let mut offset = 0;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(ArgError::Unclosed {
                position: offset + start + 1,
            });
        };
        let inner = after[..end].trim();
        match inner.strip_prefix("args.") {
            Some(name) => names.push(name.trim().to_string()),
            None => {
                return Err(ArgError::NotAnArg {
                    text: inner.to_string(),
                });
            }
        }
        offset += start + 2 + end + 2;
        rest = &after[end + 2..];
    }
    Ok(names)
}

/// When `metric` needs its next measurement, `None` once it has completed.
///
/// ```
/// # use std::time::Duration;
/// # use tugboat_core::analysis::next_due;
/// # use tugboat_core::status::*;
/// # let t: tugboat_core::document::AnalysisTemplate = serde_json::from_value(serde_json::json!({
/// #   "name":"t","provider":{"web":{"url":"http://x"}},"query":"/","successCondition":"true",
/// #   "interval":"1m","count":3,"initialDelay":"30s"})).unwrap();
/// let start = Timestamp::from_secs(1000);
/// let mut m = MetricStatus::default();
/// assert_eq!(next_due(&t, &m, start), Some(Timestamp::from_secs(1030)));
/// m.measurements.push(Measurement { phase: MeasurementPhase::Successful, value: None,
///     started_at: Timestamp::from_secs(1030), finished_at: Timestamp::from_secs(1031),
///     message: String::new() });
/// assert_eq!(next_due(&t, &m, start), Some(Timestamp::from_secs(1091)));
/// ```
pub fn next_due(
    t: &AnalysisTemplate,
    metric: &MetricStatus,
    started_at: Timestamp,
) -> Option<Timestamp> {
    if metric.phase.is_completed() {
        return None;
    }
    match metric.measurements.last() {
        None => Some(started_at.plus(t.initial_delay.map_or(Duration::ZERO, |d| d.0))),
        Some(last) if last.phase == MeasurementPhase::Error => Some(
            last.finished_at
                .plus(interval(t).unwrap_or(ERROR_RETRY_INTERVAL)),
        ),
        Some(last) => Some(last.finished_at.plus(interval(t).unwrap_or(Duration::ZERO))),
    }
}

/// Whether the run still measures: running and not stopped.
pub fn is_live(run: &AnalysisRunStatus) -> bool {
    run.phase == AnalysisPhase::Running && run.finished_at.is_none()
}

/// The earliest time any metric of a live run is due; `None` when nothing is.
pub fn run_next_due(app: &Application, run: &AnalysisRunStatus) -> Option<Timestamp> {
    if !is_live(run) {
        return None;
    }
    run.metrics
        .iter()
        .filter_map(|m| next_due(template(app, &m.template)?, m, run.started_at))
        .min()
}

/// A measurement the runner is to take now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueMeasurement {
    pub workload: String,
    pub run: String,
    pub template: String,
    pub args: BTreeMap<String, String>,
}

/// Every measurement due at `now` in the live runs of `status`, for templates the
/// document has. At most one per metric per pass.
pub fn due(app: &Application, status: &AppStatus, now: Timestamp) -> Vec<DueMeasurement> {
    let mut out = Vec::new();
    for (workload, ws) in &status.workloads {
        for run in ws.analysis_runs.iter().filter(|r| is_live(r)) {
            for m in &run.metrics {
                let Some(t) = template(app, &m.template) else {
                    continue;
                };
                if next_due(t, m, run.started_at).is_some_and(|at| at <= now) {
                    out.push(DueMeasurement {
                        workload: workload.clone(),
                        run: run.id.clone(),
                        template: m.template.clone(),
                        args: run.args.clone(),
                    });
                }
            }
        }
    }
    out
}

pub fn template<'a>(app: &'a Application, name: &str) -> Option<&'a AnalysisTemplate> {
    app.spec.analysis_templates.iter().find(|t| t.name == name)
}

/// What one answer counts as, by the template's rules (see the module docs).
pub fn judge(t: &AnalysisTemplate, taken: &TakenMeasurement) -> Measurement {
    let (phase, value, message) = judge_answer(t, &taken.answer, taken.samples.as_ref());
    Measurement {
        phase,
        value,
        started_at: taken.started_at,
        finished_at: taken.finished_at,
        message,
    }
}

fn judge_answer(
    t: &AnalysisTemplate,
    answer: &Answer,
    samples: Option<&Answer>,
) -> (MeasurementPhase, Option<String>, String) {
    use MeasurementPhase::*;
    let (value, no_data) = match answer {
        Answer::Error(e) => return (Error, None, e.clone()),
        Answer::NoData(why) => (None, why.as_str()),
        Answer::Value(v) => (Some(v), ""),
    };
    let shown = value.map(Value::display);
    if let Some(minimum) = t.minimum_samples {
        let n = match samples {
            None => return (Error, shown, "the sampleQuery was not measured".into()),
            Some(Answer::Error(e)) => return (Error, shown, format!("sampleQuery: {e}")),
            Some(Answer::NoData(_)) => 0.0,
            Some(Answer::Value(v)) => match v.as_number() {
                Some(n) => n,
                None => {
                    return (
                        Error,
                        shown,
                        format!("sampleQuery answered {}, not a number", v.display()),
                    );
                }
            },
        };
        if n.is_nan() || n < minimum as f64 {
            return (
                Inconclusive,
                shown,
                format!(
                    "{} samples, fewer than minimumSamples {minimum}",
                    format_number(n)
                ),
            );
        }
    }
    let Some(value) = value else {
        let phase = match t.no_data.unwrap_or(NoData::Inconclusive) {
            NoData::Pass => Successful,
            NoData::Fail => Failed,
            NoData::Inconclusive => Inconclusive,
        };
        return (phase, None, format!("no data: {no_data}"));
    };
    let check = |text: &str, which: &str| -> Result<bool, String> {
        let condition =
            Condition::parse(text).map_err(|e| format!("{which} does not parse: {e}"))?;
        condition
            .evaluate(value)
            .map_err(|e| format!("{which} `{text}`: {e}"))
    };
    let success = match check(&t.success_condition, "successCondition") {
        Ok(b) => b,
        Err(e) => return (Error, shown, e),
    };
    let failure = match t
        .failure_condition
        .as_deref()
        .map(|f| check(f, "failureCondition"))
    {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => return (Error, shown, e),
    };
    let phase = match (failure, success) {
        (Some(true), _) => Failed,
        (_, true) => Successful,
        (Some(false), false) => Inconclusive,
        (None, false) => Failed,
    };
    (phase, shown, String::new())
}

/// Records `measurement` into `metric`: counters, retention, then its phase.
pub fn record(t: &AnalysisTemplate, metric: &mut MetricStatus, measurement: Measurement) {
    match measurement.phase {
        MeasurementPhase::Successful => {
            metric.successful += 1;
            metric.count += 1;
            metric.consecutive_error = 0;
        }
        MeasurementPhase::Failed => {
            metric.failed += 1;
            metric.count += 1;
            metric.consecutive_error = 0;
        }
        MeasurementPhase::Inconclusive => {
            metric.inconclusive += 1;
            metric.count += 1;
            metric.consecutive_error = 0;
        }
        MeasurementPhase::Error => {
            metric.error += 1;
            metric.consecutive_error += 1;
        }
    }
    metric.measurements.push(measurement);
    if metric.measurements.len() > MAX_MEASUREMENTS {
        let excess = metric.measurements.len() - MAX_MEASUREMENTS;
        metric.measurements.drain(..excess);
    }
    metric.phase = assess_metric(t, metric);
    metric.message = metric_message(t, metric);
}

/// A metric's phase from its counters.
pub fn assess_metric(t: &AnalysisTemplate, m: &MetricStatus) -> MetricPhase {
    let error_limit = t
        .consecutive_error_limit
        .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT);
    if m.failed > t.failure_limit {
        MetricPhase::Failed
    } else if m.inconclusive > t.inconclusive_limit {
        MetricPhase::Inconclusive
    } else if m.consecutive_error > error_limit {
        MetricPhase::Error
    } else if effective_count(t).is_some_and(|c| m.count >= c) {
        MetricPhase::Successful
    } else {
        MetricPhase::Running
    }
}

fn metric_message(t: &AnalysisTemplate, m: &MetricStatus) -> String {
    let last = m.measurements.last();
    let value = last
        .and_then(|l| l.value.clone())
        .map(|v| format!("; last value {v}"))
        .unwrap_or_default();
    let why = last
        .filter(|l| !l.message.is_empty())
        .map(|l| format!(" ({})", l.message))
        .unwrap_or_default();
    match m.phase {
        MetricPhase::Failed => format!(
            "{} of {} measurements failed, more than failureLimit {}{value}{why}",
            m.failed, m.count, t.failure_limit
        ),
        MetricPhase::Inconclusive => format!(
            "{} of {} measurements inconclusive, more than inconclusiveLimit {}{value}{why}",
            m.inconclusive, m.count, t.inconclusive_limit
        ),
        MetricPhase::Error => format!(
            "{} provider errors in a row, more than consecutiveErrorLimit {}{why}",
            m.consecutive_error,
            t.consecutive_error_limit
                .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT)
        ),
        MetricPhase::Successful => {
            format!("{} of {} measurements passed{value}", m.successful, m.count)
        }
        MetricPhase::Running => match effective_count(t) {
            Some(c) => format!("{} of {c} measured{value}{why}", m.count),
            None => format!("{} measured{value}{why}", m.count),
        },
    }
}

/// A run's phase and message from its metrics (see the module docs). A metric whose
/// template the document no longer has fails the run: nothing judges it any more.
pub fn assess_run(app: &Application, run: &AnalysisRunStatus) -> (AnalysisPhase, String) {
    let mut failed = Vec::new();
    let mut inconclusive = Vec::new();
    let mut running = false;
    for m in &run.metrics {
        if template(app, &m.template).is_none() {
            failed.push(format!(
                "{}: the template is no longer in the document",
                m.template
            ));
            continue;
        }
        match m.phase {
            MetricPhase::Running => running = true,
            _ if m.dry_run => {}
            MetricPhase::Failed | MetricPhase::Error => {
                failed.push(format!("{}: {}", m.template, m.message))
            }
            MetricPhase::Inconclusive => {
                inconclusive.push(format!("{}: {}", m.template, m.message))
            }
            MetricPhase::Successful => {}
        }
    }
    if !failed.is_empty() {
        (AnalysisPhase::Failed, failed.join("; "))
    } else if running {
        (AnalysisPhase::Running, String::new())
    } else if !inconclusive.is_empty() {
        (AnalysisPhase::Inconclusive, inconclusive.join("; "))
    } else {
        (AnalysisPhase::Succeeded, String::new())
    }
}

/// Records the measurements taken for `run` (those naming it, for metrics still running,
/// newer than the metric's last measurement, so recording the same observation twice
/// changes nothing), then assesses it; a verdict stamps `finished_at`. Returns whether
/// anything changed.
pub fn absorb(
    app: &Application,
    run: &mut AnalysisRunStatus,
    taken: &[TakenMeasurement],
    now: Timestamp,
) -> bool {
    if !is_live(run) {
        return false;
    }
    let mut changed = false;
    for tm in taken.iter().filter(|tm| tm.run == run.id) {
        let Some(t) = template(app, &tm.template) else {
            continue;
        };
        let Some(metric) = run.metrics.iter_mut().find(|m| m.template == tm.template) else {
            continue;
        };
        let newer = metric
            .measurements
            .last()
            .is_none_or(|last| tm.started_at > last.started_at);
        if metric.phase.is_completed() || !newer {
            continue;
        }
        record(t, metric, judge(t, tm));
        changed = true;
    }
    let (phase, message) = assess_run(app, run);
    if phase != run.phase || message != run.message {
        changed = true;
    }
    run.phase = phase;
    run.message = message;
    if phase != AnalysisPhase::Running {
        run.finished_at = Some(now);
    }
    changed
}

/// A short account of a run for status lines: `errors: 2 of 3 measured; last value 0.01`.
pub fn summary(run: &AnalysisRunStatus) -> String {
    if !run.message.is_empty() {
        return run.message.clone();
    }
    run.metrics
        .iter()
        .map(|m| format!("{}: {}", m.template, m.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A statistic of an ALB metric, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlbStatistic {
    Sum,
    Average,
    Minimum,
    Maximum,
    SampleCount,
    /// e.g. `p99` is `Percentile(99.0)`.
    Percentile(f64),
}

impl AlbStatistic {
    /// CloudWatch's name: `Sum`, `Average`, `p99`.
    pub fn cloudwatch_name(&self) -> String {
        match self {
            AlbStatistic::Sum => "Sum".into(),
            AlbStatistic::Average => "Average".into(),
            AlbStatistic::Minimum => "Minimum".into(),
            AlbStatistic::Maximum => "Maximum".into(),
            AlbStatistic::SampleCount => "SampleCount".into(),
            AlbStatistic::Percentile(p) => format!("p{}", format_number(*p)),
        }
    }
}

/// One statistic of one ALB metric: `sum(RequestCount)`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlbTerm {
    pub statistic: AlbStatistic,
    pub metric: String,
}

/// A CloudWatch template's query: `[FACTOR *] STAT(METRIC) [/ STAT(METRIC)]`, e.g.
/// `100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)` or
/// `p99(TargetResponseTime)`. The ratio is computed by tugboat, not by metric math.
#[derive(Debug, Clone, PartialEq)]
pub struct AlbQuery {
    pub factor: f64,
    pub numerator: AlbTerm,
    pub denominator: Option<AlbTerm>,
}

/// The ALB metrics of the `AWS/ApplicationELB` namespace that have a TargetGroup
/// dimension, which a query may name.
pub const ALB_TARGET_GROUP_METRICS: &[&str] = &[
    "RequestCount",
    "RequestCountPerTarget",
    "HTTPCode_Target_2XX_Count",
    "HTTPCode_Target_3XX_Count",
    "HTTPCode_Target_4XX_Count",
    "HTTPCode_Target_5XX_Count",
    "TargetResponseTime",
    "TargetConnectionErrorCount",
    "TargetTLSNegotiationErrorCount",
    "HealthyHostCount",
    "UnHealthyHostCount",
];

/// Why a CloudWatch query does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0}; write e.g. `sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)` or `p99(TargetResponseTime)`"
)]
pub struct AlbQueryError(pub String);

/// Parses a CloudWatch template's query.
///
/// ```
/// # use tugboat_core::analysis::*;
/// let q = parse_alb_query("100 * sum(HTTPCode_Target_5XX_Count) / sum(RequestCount)").unwrap();
/// assert_eq!(q.factor, 100.0);
/// assert_eq!(q.denominator.unwrap().metric, "RequestCount");
/// let p = parse_alb_query("p99(TargetResponseTime)").unwrap();
/// assert_eq!(p.numerator.statistic, AlbStatistic::Percentile(99.0));
/// assert!(parse_alb_query("sum(Bogus)").is_err());
/// ```
pub fn parse_alb_query(text: &str) -> Result<AlbQuery, AlbQueryError> {
    let text = text.trim();
    let (factor, rest) = match text.split_once('*') {
        Some((f, rest)) => {
            let f: f64 = f
                .trim()
                .parse()
                .map_err(|_| AlbQueryError(format!("{:?} is not a number", f.trim())))?;
            (f, rest)
        }
        None => (1.0, text),
    };
    let (num, den) = match rest.split_once('/') {
        Some((n, d)) => (n, Some(d)),
        None => (rest, None),
    };
    Ok(AlbQuery {
        factor,
        numerator: parse_term(num)?,
        denominator: den.map(parse_term).transpose()?,
    })
}

fn parse_term(text: &str) -> Result<AlbTerm, AlbQueryError> {
    let text = text.trim();
    let (stat, metric) = text
        .strip_suffix(')')
        .and_then(|t| t.split_once('('))
        .ok_or_else(|| AlbQueryError(format!("{text:?} is not STAT(METRIC)")))?;
    let statistic = match stat.trim() {
        "sum" => AlbStatistic::Sum,
        "avg" | "average" => AlbStatistic::Average,
        "min" => AlbStatistic::Minimum,
        "max" => AlbStatistic::Maximum,
        "count" => AlbStatistic::SampleCount,
        p if p.starts_with('p') => {
            let n: f64 = p[1..]
                .parse()
                .ok()
                .filter(|n: &f64| *n > 0.0 && *n < 100.0)
                .ok_or_else(|| AlbQueryError(format!("{p:?} is not a percentile such as p99")))?;
            AlbStatistic::Percentile(n)
        }
        other => {
            return Err(AlbQueryError(format!(
                "unknown statistic {other:?} (sum, avg, min, max, count, pNN)"
            )));
        }
    };
    let metric = metric.trim();
    if !ALB_TARGET_GROUP_METRICS.contains(&metric) {
        return Err(AlbQueryError(format!(
            "{metric:?} is not an ALB target-group metric ({})",
            ALB_TARGET_GROUP_METRICS.join(", ")
        )));
    }
    Ok(AlbTerm {
        statistic,
        metric: metric.to_string(),
    })
}

#[cfg(test)]
mod tests;
