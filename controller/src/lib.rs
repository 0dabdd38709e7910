//! tugboat keeps an application on Amazon ECS at the state written in a versioned YAML
//! document, and moves it there safely through blue/green and canary steps on ALB
//! weighted target groups.
//!
//! The pure core lives in the `tugboat-core` crate ([`document`], [`validate`],
//! [`taskdef`], [`plan`], ...), re-exported here so `tugboat::plan` and friends keep
//! working; this crate holds the thin shells around it (sources, platforms, the loop,
//! the CLI). Everything the binary does is reachable from here so tests and tools can
//! call it.

pub mod aws;
pub mod blob;
pub mod budget;
pub mod cli;
pub mod executor;
pub mod platform;
pub mod reconcile;
pub mod server;
pub mod source;
pub mod status_store;

pub use tugboat_core::{condition, document, observed, plan, schema, status, taskdef, validate};
