//! The inbox in SSM Parameter Store: `<prefix>/<workload>/weight` and
//! `<prefix>/<workload>/action` under the application's overrides prefix.
//!
//! Guarantees, beyond the [`Inbox`] contract: one `GetParametersByPath` (recursive,
//! paged) per read, drawn from the SSM budget and counted; an action's version is the
//! SSM parameter's own version, which SSM raises on every write.

use std::sync::Arc;

use crate::budget::{Budgets, QuotaClass};
use crate::document::Application;
use crate::platform::aws::classify;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};

use super::{Entry, Inbox, Key, Overrides, collect};

/// Overrides in SSM.
#[derive(Debug)]
pub struct SsmInbox {
    ssm: aws_sdk_ssm::Client,
    budgets: Arc<Budgets>,
    calls: CallCounter,
}

impl SsmInbox {
    pub fn new(ssm: aws_sdk_ssm::Client, budgets: Arc<Budgets>) -> Self {
        Self {
            ssm,
            budgets,
            calls: CallCounter::default(),
        }
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
                });
            }
            match output.next_token() {
                Some(token) if !token.is_empty() => next = Some(token.to_string()),
                _ => break,
            }
        }
        Ok(collect(entries))
    }

    async fn put(
        &self,
        app: &Application,
        workload: &str,
        key: Key,
        value: &str,
    ) -> Result<(), PlatformError> {
        let name = parameter_name(&app.overrides_prefix(), workload, key);
        self.spend("ssm:PutParameter", CallKind::Mutate).await;
        self.ssm
            .put_parameter()
            .name(&name)
            .value(value)
            .r#type(aws_sdk_ssm::types::ParameterType::String)
            .overwrite(true)
            .send()
            .await
            .map_err(|e| classify("ssm:PutParameter", &format!("SSM parameter {name}"), e))?;
        Ok(())
    }
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
        Box::pin(self.put(app, workload, key, value))
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
