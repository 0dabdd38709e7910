//! `tugboat validate`: checks documents without applying them, for editors, pre-commit
//! hooks and CI.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::validate::{self, LoadFileError};

/// Check desired-state documents without applying them.
///
/// Prints every problem of every file (file:line:column: path: message), `FILE: ok` for
/// good ones, and exits non-zero if any file has a problem.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  tugboat validate -f manifests/prod.yaml
  tugboat validate -f manifests/*.yaml
  cat manifests/dev.yaml | tugboat validate -f -

Exit status: 0 when every document is valid, 1 otherwise.")]
pub struct Args {
    /// Documents to check (`-` reads standard input). Repeat or list several.
    #[arg(short = 'f', long = "file", value_name = "FILE", required = true, num_args = 1..)]
    pub files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let report = check(&args.files);
    super::print(&report.text)?;
    if report.invalid == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "{} of {} documents invalid",
            report.invalid,
            args.files.len()
        );
        Ok(ExitCode::FAILURE)
    }
}

/// What `tugboat validate` found: the text it prints and how many files failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub text: String,
    pub invalid: usize,
}

/// Checks every file (`-` is standard input), collecting every problem of every file.
pub fn check(files: &[PathBuf]) -> Report {
    let mut report = Report {
        text: String::new(),
        invalid: 0,
    };
    for file in files {
        let outcome = if file.as_os_str() == "-" {
            load_stdin()
        } else {
            validate::load_file(file)
        };
        let lines = match outcome {
            Ok(_) => {
                report.text.push_str(&format!("{}: ok\n", file.display()));
                continue;
            }
            Err(LoadFileError::Invalid(errors)) => errors.to_string(),
            Err(err @ LoadFileError::Read { .. }) => {
                let cause = std::error::Error::source(&err)
                    .map(|c| format!(": {c}"))
                    .unwrap_or_default();
                format!("{err}{cause}")
            }
        };
        report.invalid += 1;
        report.text.push_str(&lines);
        report.text.push('\n');
    }
    report
}

fn load_stdin() -> Result<crate::document::Application, LoadFileError> {
    validate::load_reader(std::io::stdin().lock(), "-")
}
