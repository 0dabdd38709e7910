//! An in-memory provider for loop tests: answers set by the test, per template, and a
//! count of the measurements taken. Same trait, same guarantees as the real providers
//! (it never fails; an unset template answers an error saying so).

use std::collections::BTreeMap;
use std::sync::Mutex;

use crate::observed::Answer;
use crate::platform::BoxFuture;

use super::{MetricProvider, MetricRequest};

/// Answers from a table, by template name.
#[derive(Debug, Default)]
pub struct MemoryProvider {
    answers: Mutex<BTreeMap<String, Answer>>,
    taken: Mutex<BTreeMap<String, usize>>,
}

impl MemoryProvider {
    pub fn new() -> Self {
        Self::default()
    }

    /// From now on, `template` answers `answer`.
    pub fn set(&self, template: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(template.to_string(), answer);
    }

    /// Measurements taken of `template` so far.
    pub fn taken(&self, template: &str) -> usize {
        self.taken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(template)
            .copied()
            .unwrap_or(0)
    }
}

impl MetricProvider for MemoryProvider {
    fn measure<'a>(&'a self, request: &'a MetricRequest) -> BoxFuture<'a, Answer> {
        Box::pin(async move {
            let name = &request.template.name;
            *self
                .taken
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(name.clone())
                .or_default() += 1;
            self.answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(name)
                .cloned()
                .unwrap_or_else(|| Answer::Error(format!("template {name}: no answer set")))
        })
    }
}
