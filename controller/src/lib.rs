//! tugboat keeps an application on Amazon ECS at the state written in a versioned YAML
//! document, and moves it there safely through blue/green and canary steps on ALB
//! weighted target groups.
//!
//! The crate is a small pure core ([`document`], [`validate`], [`taskdef`], [`plan`])
//! with thin shells around it (sources, platforms, the loop, the CLI). Everything the
//! binary does is reachable from here so tests and tools can call it.

pub mod aws;
pub mod budget;
pub mod cli;
pub mod condition;
pub mod document;
pub mod executor;
pub mod observed;
pub mod plan;
pub mod platform;
pub mod reconcile;
pub mod schema;
pub mod server;
pub mod source;
pub mod status;
pub mod status_store;
pub mod taskdef;
pub mod validate;
