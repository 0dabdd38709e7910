//! The `tugboat` binary: argument parsing only; every command lives in `tugboat::cli`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tugboat::cli;
use tugboat::observed::OperatorActionKind;

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
    Up(cli::up::Args),
    /// Internal: how `tugboat up` starts a child with the parent-death signal set.
    #[command(name = "__exec", hide = true)]
    Exec(cli::up::ExecArgs),
    // Operator verbs (issue 9).
    /// Go past the pause or analysis the rollout waits at (--full: skip every step left).
    Promote(cli::operator::PromoteArgs),
    /// Stop the rollout: traffic back to stable, then the canary scales down.
    Abort(cli::operator::ActionArgs),
    /// Roll an aborted revision out again.
    Retry(cli::operator::ActionArgs),
    /// Hold the rollout at its step until resumed.
    Pause(cli::operator::ActionArgs),
    /// Go on after a pause by an operator.
    Resume(cli::operator::ActionArgs),
    /// Pin the canary weight (0-100), for a while or until cleared.
    SetWeight(cli::operator::SetWeightArgs),
    /// Go back to an earlier stable revision (fast within the rollbackWindow).
    Undo(cli::operator::UndoArgs),
    Import(cli::import::Args),
    IamPolicy(cli::iam_policy::Args),
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
        Command::Up(args) => cli::up::run(args).await,
        Command::Exec(args) => cli::up::exec(args),
        Command::Promote(args) => cli::operator::promote(args).await,
        Command::Abort(args) => cli::operator::action(OperatorActionKind::Abort, args).await,
        Command::Retry(args) => cli::operator::action(OperatorActionKind::Retry, args).await,
        Command::Pause(args) => cli::operator::action(OperatorActionKind::Pause, args).await,
        Command::Resume(args) => cli::operator::action(OperatorActionKind::Resume, args).await,
        Command::SetWeight(args) => cli::operator::set_weight(args).await,
        Command::Undo(args) => cli::operator::undo(args).await,
        Command::Import(args) => cli::import::run(args),
        Command::IamPolicy(args) => cli::iam_policy::run(args),
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
