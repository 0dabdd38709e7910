//! `tugboat diff`.

use std::process::ExitCode;

/// Placeholder arguments; replaced by the real command.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("tugboat diff is not built yet")
}
