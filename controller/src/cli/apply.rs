//! `tugboat apply`.

use std::process::ExitCode;

/// Placeholder arguments; replaced by the real command.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tugboat apply is not built yet")
}
