//! `tugboat schema`.

use std::process::ExitCode;

/// Placeholder arguments; replaced by the real command.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tugboat schema is not built yet")
}
