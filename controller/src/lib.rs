//! tugboat keeps an application on Amazon ECS at the state written in a versioned YAML
//! document, and moves it there safely through blue/green and canary steps on ALB
//! weighted target groups.
//!
//! The pure core lives in the `tugboat-core` crate ([`document`], [`validate`],
//! [`taskdef`], [`plan`], ...), re-exported here so `tugboat::plan` and friends keep
//! working; this crate holds the thin shells around it (sources, platforms, the loop,
//! the CLI). Inside this crate imports point down: `cli` -> `runtime` -> {`source`,
//! `status_store`, `inbox`, `models`, `analysis`} -> `platform` -> {`aws`, `budget`}.
//!
//! `tugboat::reconcile` is kept as a re-export of [`runtime::reconciler`] so `cli::diff`
//! (owned elsewhere) keeps compiling unchanged; new code uses [`runtime`].
//!
//! Everything the binary does is reachable from here so tests and tools can
//! call it.
//!
//! The `aws` cargo feature (on by default) holds everything that talks to AWS: the AWS
//! platform, the S3 and SSM stores, sources and inbox, CloudWatch analysis and SSM
//! secrets. `./up` builds without it, since the local platform never calls AWS and the
//! SDK is about a quarter of a fresh build; there [`aws`] is a stand-in whose client
//! types have no values, and every AWS location or `platform: aws` document is refused
//! with an error saying how to get a build that has it.

pub mod analysis;
#[cfg(feature = "aws")]
pub mod aws;
/// Without the `aws` feature (`./up`'s build) the same path names the stand-in: the
/// client types exist but have no values.
#[cfg(not(feature = "aws"))]
#[path = "no_aws.rs"]
pub mod aws;
pub mod blob;
pub mod budget;
pub mod cli;
pub mod inbox;
pub mod models;
pub mod platform;
pub mod runtime;
pub mod source;
pub mod status_store;

pub use tugboat_core::{
    condition, document, lease, observed, operator, pass, plan, schema, status, taskdef, validate,
};

/// The pass and its preview, re-exported from [`runtime::reconciler`] for callers that
/// predate [`runtime`] (see the crate docs).
pub use runtime::reconciler as reconcile;
