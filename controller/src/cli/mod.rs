//! The commands of the `tugboat` binary. This is the binary's edge: commands return
//! `anyhow::Result` and print for humans; the library underneath keeps typed errors.

pub mod apply;
pub mod diff;
pub mod run;
pub mod schema;
pub mod status;
pub mod validate;
