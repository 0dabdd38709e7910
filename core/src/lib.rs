//! tugboat-core: the pure heart of tugboat.
//!
//! The desired document ([`document`]) and its validation ([`validate`], [`condition`]),
//! the pure side of analysis runs ([`analysis`]: when a measurement is due, what the
//! measurements add up to),
//! the generated schema ([`schema`]), what a platform observed ([`observed`]), the
//! persisted rollout status ([`status`]), rendered task definitions ([`taskdef`]) and
//! the planner ([`plan`]), the fold of one pass's facts into the status to persist
//! ([`pass`]), the operator overrides' values ([`operator`]), the webhook events a
//! pass produced ([`notify`]) and leader election's lease decisions ([`lease`]).
//!
//! Guarantee: nothing here performs I/O beyond reading a document the caller hands in,
//! reads a clock the caller did not pass, or depends on an async runtime, the AWS SDK or
//! an HTTP stack (CI checks the dependency tree). [`status::Timestamp::now`] exists for
//! the shells; nothing in this crate calls it. Every function is testable with plain
//! values, and its tests build in seconds.

pub mod analysis;
pub mod condition;
pub mod document;
pub mod iam;
pub mod lease;
pub mod notify;
pub mod observed;
pub mod operator;
pub mod pass;
pub mod plan;
pub mod schema;
pub mod status;
pub mod taskdef;
pub mod validate;
