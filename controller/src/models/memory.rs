//! An in-memory model resolver for tests: resolutions set by the test, by model name.
//!
//! A model the document names and the test did not set is `Failed` ("not in the
//! in-memory store"), as an empty store would answer.

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::document::Application;
use crate::observed::ModelResolution;
use crate::platform::{BoxFuture, CallCounter, CallCounts, CallKind, PlatformError};

use super::ModelResolver;

/// Resolutions by model name.
#[derive(Debug, Default)]
pub struct MemoryModels {
    resolutions: Mutex<BTreeMap<String, ModelResolution>>,
    calls: CallCounter,
}

impl MemoryModels {
    pub fn new() -> Self {
        Self::default()
    }

    /// What resolving `model` answers from now on.
    pub fn set(&self, model: &str, resolution: ModelResolution) {
        self.resolutions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(model.to_string(), resolution);
    }
}

impl ModelResolver for MemoryModels {
    fn resolve<'a>(
        &'a self,
        app: &'a Application,
    ) -> BoxFuture<'a, Result<BTreeMap<String, ModelResolution>, PlatformError>> {
        self.calls
            .record("memory:ResolveModels", CallKind::Describe);
        let known = self
            .resolutions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let out = app
            .spec
            .models
            .iter()
            .map(|m| {
                let resolution = known.get(&m.name).cloned().unwrap_or_else(|| {
                    ModelResolution::Failed(format!(
                        "model {} is not in the in-memory store",
                        m.name
                    ))
                });
                (m.name.clone(), resolution)
            })
            .collect();
        Box::pin(async move { Ok(out) })
    }

    fn api_calls(&self) -> CallCounts {
        self.calls.snapshot()
    }
}
