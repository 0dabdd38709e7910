//! The `tugboat` binary: argument parsing only; every command lives in `tugboat::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tugboat::cli;

/// Keeps an application on Amazon ECS at the state written in a versioned YAML document,
/// and moves it there safely (blue/green and canary on ALB weighted target groups).
#[derive(Debug, Parser)]
#[command(name = "tugboat", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Validate(cli::validate::Args),
    Schema(cli::schema::Args),
    Diff(cli::diff::Args),
    Apply(cli::apply::Args),
    Run(cli::run::Args),
    Status(cli::status::Args),
    Import(cli::import::Args),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate(args) => cli::validate::run(args),
        Command::Schema(args) => cli::schema::run(args),
        Command::Diff(args) => cli::diff::run(args).await,
        Command::Apply(args) => cli::apply::run(args).await,
        Command::Run(args) => cli::run::run(args).await,
        Command::Status(args) => cli::status::run(args).await,
        Command::Import(args) => cli::import::run(args),
    };
    match result {
        Ok(code) => code,
        // The reader of our output went away (`tugboat diff ... | head -1`): it has what
        // it wanted, so end quietly and successfully.
        Err(err) if cli::is_stdout_closed(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
