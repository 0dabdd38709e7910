//! The observation a pass plans from, assembled from its three parts: the platform's
//! (services, task definitions, rules), the operator inbox's (overrides) and the model
//! resolver's (resolved models).
//!
//! Guarantees: the three are read concurrently and all three must answer for the pass
//! to plan; override values that do not parse are carried to the status (never dropped
//! silently); the calls of all three are counted together ([`SideInputs::api_calls`]
//! plus the platform's).

use std::collections::BTreeMap;
use std::sync::Arc;

#[cfg(feature = "aws")]
use crate::budget::Budgets;
use crate::document::Application;
use crate::inbox::Inbox;
use crate::inbox::file::FileInbox;
use crate::inbox::memory::MemoryInbox;
#[cfg(feature = "aws")]
use crate::inbox::ssm::SsmInbox;
use crate::models::ModelResolver;
use crate::models::memory::MemoryModels;
use crate::models::store::StoreResolver;
use crate::observed::ObservedState;
#[cfg(feature = "aws")]
use crate::platform::aws::AwsClients;
use crate::platform::{CallCounts, Platform, PlatformError};

use super::reconciler::PassError;

/// The components a pass reads besides the platform.
#[derive(Debug, Clone)]
pub struct SideInputs {
    pub inbox: Arc<dyn Inbox>,
    pub models: Arc<dyn ModelResolver>,
}

impl SideInputs {
    /// An empty in-memory inbox and model store: no overrides, and every model the
    /// document names unresolved. For tests and tools that have neither.
    pub fn none() -> Self {
        Self {
            inbox: Arc::new(MemoryInbox::new()),
            models: Arc::new(MemoryModels::new()),
        }
    }

    /// The AWS side inputs: overrides in SSM, models from SSM pointers and S3.
    #[cfg(feature = "aws")]
    pub fn aws(clients: &AwsClients, budgets: Arc<Budgets>) -> Self {
        Self {
            inbox: Arc::new(SsmInbox::new(clients.ssm.clone(), budgets.clone())),
            models: Arc::new(StoreResolver::aws(
                clients.ssm.clone(),
                clients.s3.clone(),
                budgets,
            )),
        }
    }

    /// The local side inputs: overrides in files under `<state_dir>/overrides`, models
    /// from pointer files under `<state_dir>/models` and `file://` stores.
    pub fn local(state_dir: impl AsRef<std::path::Path>) -> Self {
        Self {
            inbox: Arc::new(FileInbox::in_state_dir(state_dir.as_ref())),
            models: Arc::new(StoreResolver::local(state_dir.as_ref())),
        }
    }

    /// Every call the side inputs made so far.
    pub fn api_calls(&self) -> CallCounts {
        self.inbox.api_calls().plus(&self.models.api_calls())
    }
}

/// What a pass plans from.
#[derive(Debug, Default)]
pub struct Assembled {
    pub state: ObservedState,
    /// Workloads the platform could not observe (not acted on this pass).
    pub unobserved: BTreeMap<String, PlatformError>,
    /// Override values that do not parse, per workload, naming where they are.
    pub override_problems: BTreeMap<String, Vec<String>>,
}

/// Observes the platform and reads the side inputs, concurrently.
pub async fn observe<P: Platform + ?Sized>(
    platform: &P,
    inputs: &SideInputs,
    app: &Application,
) -> Result<Assembled, PassError> {
    let (observation, overrides, models) = tokio::join!(
        platform.observe(app),
        inputs.inbox.read(app),
        inputs.models.resolve(app)
    );
    let observation = observation.map_err(PassError::Observe)?;
    let overrides = overrides.map_err(PassError::ReadOverrides)?;
    let models = models.map_err(PassError::ResolveModels)?;
    let mut state = observation.state;
    state.overrides = overrides.by_workload;
    state.models = models;
    Ok(Assembled {
        state,
        unobserved: observation.workload_errors,
        override_problems: overrides.problems,
    })
}
