//! The inbox in SSM Parameter Store: `<prefix>/<workload>/weight` and
//! `<prefix>/<workload>/action` under the application's overrides prefix.
//!
//! Guarantees, beyond the [`Inbox`] contract: one `GetParametersByPath` (recursive,
//! paged) per read, drawn from the SSM budget and counted; an action's version is the
//! SSM parameter's own version, which SSM raises on every write.
//!
//! Who wrote a value and why comes from SSM itself: [`Inbox::write_recorded`] puts the
//! reason in the parameter's description, and a read looks up the metadata of the
//! parameters under the prefix (`DescribeParameters`, one paged call, only when a
//! parameter's version is new since the last lookup): the last modifying user (the
//! caller's IAM ARN, as SSM's parameter history keeps it), the description and the
//! modification date. At rest, with nothing new, a read stays one call.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::budget::{Budgets, QuotaClass};
use crate::document::Application;
use crate::observed::OverrideRecord;
use crate::platform::aws::classify;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};
use crate::status::Timestamp;

use super::{Entry, Inbox, Key, Overrides, collect};

/// Overrides in SSM.
#[derive(Debug)]
pub struct SsmInbox {
    ssm: aws_sdk_ssm::Client,
    budgets: Arc<Budgets>,
    calls: CallCounter,
    /// Parameter name -> (version, record) from the last metadata lookup.
    records: Mutex<BTreeMap<String, (u64, OverrideRecord)>>,
}

/// What the description holds when the writer gave no reason.
pub const NO_REASON: &str = "set by tugboat; no reason given";

impl SsmInbox {
    pub fn new(ssm: aws_sdk_ssm::Client, budgets: Arc<Budgets>) -> Self {
        Self {
            ssm,
            budgets,
            calls: CallCounter::default(),
            records: Mutex::default(),
        }
    }

    fn cached(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (u64, OverrideRecord)>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Fills the record cache for every parameter under `prefix` (one paged call).
    async fn look_up_records(&self, prefix: &str) -> Result<(), PlatformError> {
        use aws_sdk_ssm::types::ParameterStringFilter;
        let filter = ParameterStringFilter::builder()
            .key("Path")
            .option("Recursive")
            .values(prefix)
            .build()
            .map_err(|e| PlatformError::Rejected {
                api: "ssm:DescribeParameters",
                message: e.to_string(),
                source: None,
            })?;
        let mut next: Option<String> = None;
        let mut found = BTreeMap::new();
        loop {
            self.spend("ssm:DescribeParameters", CallKind::Describe)
                .await;
            let output = self
                .ssm
                .describe_parameters()
                .parameter_filters(filter.clone())
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    classify("ssm:DescribeParameters", &format!("SSM path {prefix}"), e)
                })?;
            for meta in output.parameters() {
                let Some(name) = meta.name() else { continue };
                found.insert(
                    name.to_string(),
                    (u64::try_from(meta.version()).unwrap_or(0), record_of(meta)),
                );
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
        *self.cached() = found;
        Ok(())
    }

    async fn spend(&self, api: &'static str, kind: CallKind) {
        self.budgets.acquire(QuotaClass::Ssm).await;
        self.calls.record(api, kind);
    }

    async fn read_all(&self, app: &Application) -> Result<Overrides, PlatformError> {
        let prefix = app.overrides_prefix();
        let mut entries = Vec::new();
        let mut next: Option<String> = None;
        loop {
            self.spend("ssm:GetParametersByPath", CallKind::Describe)
                .await;
            let output = self
                .ssm
                .get_parameters_by_path()
                .path(&prefix)
                .recursive(true)
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| {
                    classify("ssm:GetParametersByPath", &format!("SSM path {prefix}"), e)
                })?;
            for parameter in output.parameters() {
                let (Some(name), Some(value)) = (parameter.name(), parameter.value()) else {
                    continue;
                };
                let Some(relative) = name.strip_prefix(&prefix) else {
                    continue;
                };
                entries.push(Entry {
                    location: format!("SSM parameter {name}"),
                    relative: relative.to_string(),
                    value: value.to_string(),
                    version: u64::try_from(parameter.version()).unwrap_or(0),
                    record: None,
                });
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
        let stale = {
            let cached = self.cached();
            entries.iter().any(|e| {
                let name = format!("{}{}", prefix, e.relative);
                cached.get(&name).is_none_or(|(v, _)| *v != e.version)
            })
        };
        if stale {
            // The record is a nicety: a failed lookup leaves the values without one
            // rather than failing the read the loop steers by.
            if let Err(e) = self.look_up_records(&prefix).await {
                tracing::warn!(error = %e, "who wrote the overrides is unknown this pass");
            }
        }
        let cached = self.cached();
        for e in &mut entries {
            let name = format!("{}{}", prefix, e.relative);
            e.record = cached
                .get(&name)
                .filter(|(v, _)| *v == e.version)
                .map(|(_, r)| r.clone());
        }
        drop(cached);
        Ok(collect(entries))
    }

    async fn put(
        &self,
        app: &Application,
        workload: &str,
        key: Key,
        value: &str,
        record: Option<&OverrideRecord>,
    ) -> Result<(), PlatformError> {
        let name = parameter_name(&app.overrides_prefix(), workload, key);
        self.spend("ssm:PutParameter", CallKind::Mutate).await;
        // Always a description: SSM keeps the previous one on an overwrite without one,
        // which would credit this write with an earlier writer's reason. (A hand write
        // with `aws ssm put-parameter` and no `--description` does keep it.)
        let description = description(record.and_then(|r| r.reason.as_deref()));
        self.ssm
            .put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .description(description)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| classify("ssm:PutParameter", &format!("SSM parameter {name}"), e))?;
        Ok(())
    }

    async fn delete(
        &self,
        app: &Application,
        workload: &str,
        key: Key,
    ) -> Result<bool, PlatformError> {
        let name = parameter_name(&app.overrides_prefix(), workload, key);
        self.spend("ssm:DeleteParameter", CallKind::Mutate).await;
        match self.ssm.delete_parameter().name(&name).send().await {
            Ok(_) => Ok(true),
            Err(e) => match classify("ssm:DeleteParameter", &format!("SSM parameter {name}"), e) {
                PlatformError::NotFound { .. } => Ok(false),
                other => Err(other),
            },
        }
    }
}

/// The parameter description for a reason: SSM keeps at most 1024 characters.
fn description(reason: Option<&str>) -> String {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(r) => r.chars().take(1024).collect(),
        None => NO_REASON.to_string(),
    }
}

/// Who, why and when from a parameter's metadata. moto answers `N/A` for the user.
fn record_of(meta: &aws_sdk_ssm::types::ParameterMetadata) -> OverrideRecord {
    let by = meta
        .last_modified_user()
        .filter(|u| !u.is_empty() && *u != "N/A")
        .map(str::to_string);
    let reason = meta
        .description()
        .filter(|d| !d.is_empty() && *d != NO_REASON)
        .map(str::to_string);
    let at = meta
        .last_modified_date()
        .map(|d| Timestamp(u64::try_from(d.to_millis().unwrap_or(0)).unwrap_or(0)));
    OverrideRecord { by, reason, at }
}

/// `<prefix>/<workload>/<key>`.
pub fn parameter_name(prefix: &str, workload: &str, key: Key) -> String {
    format!("{}/{workload}/{key}", prefix.trim_end_matches('/'))
}

impl Inbox for SsmInbox {
    fn read<'a>(&'a self, app: &'a Application) -> BoxFuture<'a, Result<Overrides, PlatformError>> {
        Box::pin(self.read_all(app))
    }

    fn write<'a>(
        &'a self,
        app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        Box::pin(self.put(app, workload, key, value, None))
    }

    fn write_recorded<'a>(
        &'a self,
        app: &'a Application,
        workload: &'a str,
        key: Key,
        value: &'a str,
        record: &'a OverrideRecord,
    ) -> BoxFuture<'a, Result<(), PlatformError>> {
        Box::pin(self.put(app, workload, key, value, Some(record)))
    }

    fn clear<'a>(
        &'a self,
        app: &'a Application,
        workload: &'a str,
        key: Key,
    ) -> BoxFuture<'a, Result<bool, PlatformError>> {
        Box::pin(self.delete(app, workload, key))
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_names_sit_under_the_prefix_once() {
        assert_eq!(
            parameter_name("/tugboat/prod/app/", "api", Key::Action),
            "/tugboat/prod/app/api/action"
        );
        assert_eq!(
            parameter_name("/tugboat/prod/app", "api", Key::Weight),
            "/tugboat/prod/app/api/weight"
        );
    }
}
