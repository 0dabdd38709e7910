//! `tugboat schema`: prints the document's JSON Schema or its Kubernetes CRD.

use std::process::ExitCode;

use crate::schema;

/// Print the JSON Schema of desired-state documents, or the Kubernetes CRD.
///
/// The same output is checked in under `crds/`; editors validate manifests against
/// `crds/tugboat.schema.json` through their `# yaml-language-server: $schema=` line.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  tugboat schema > crds/tugboat.schema.json
  tugboat schema --format crd > crds/application.crd.yaml
  tugboat schema --format crd | kubectl apply -f -")]
pub struct Args {
    /// What to print.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

/// Output formats of `tugboat schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// JSON Schema (draft-07), for editors and other tools.
    Json,
    /// Kubernetes CustomResourceDefinition (apiextensions.k8s.io/v1), as YAML.
    Crd,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let text = match args.format {
        Format::Json => schema::json_schema_text()?,
        Format::Crd => schema::crd_yaml()?,
    };
    super::print(&text)?;
    Ok(ExitCode::SUCCESS)
}
