//! `tugboat apply`: validate a document here, then upload it where the controller reads
//! it. An invalid document is never uploaded.
//!
//! Every write is conditional ([`crate::blob::PutMode`]): `--create-only` is `Create`,
//! `--expect-revision R` is `Update(R)`, and without either the revision present when
//! apply starts is read and the write is `Update(current)` (`Create` if there is none).
//! On SSM, which has no conditional write, the version is checked just before writing.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

#[cfg(feature = "aws")]
use crate::document::Platform;
use crate::source::{self, DocumentSource, Expect, MAX_DOCUMENT_BYTES, SourceError, SourceUri};

/// Exit code when the document changed under us (a concurrent apply): re-running is the
/// fix, so scripts may want to tell it apart from other failures.
pub const EXIT_CONFLICT: u8 = 3;

const EXAMPLES: &str = "\
Examples:
  # Upload to S3. By default the current ETag is read and the write only succeeds if it
  # still holds, so two CI jobs racing cannot silently overwrite each other.
  tugboat apply -f manifests/prod.yaml --to s3://acme-tugboat/prediction-app/prod.yaml

  # Only write over the revision you reviewed (an ETag printed by an earlier apply).
  tugboat apply -f manifests/prod.yaml --to s3://acme-tugboat/prediction-app/prod.yaml \\
      --expect-revision '\"9b2cf535f27731c974343645a3985328\"'

  # SSM: the current version is checked just before writing (SSM has no conditional
  # write); documents over 4 KiB go to the Advanced tier, 8 KiB at most.
  tugboat apply -f manifests/dev.yaml --to ssm:/tugboat/dev/prediction-app

  # Fail if a document is already there.
  tugboat apply -f manifests/dev.yaml --to ssm:/tugboat/dev/prediction-app --create-only

  # A local file, replaced atomically (and under a lock, so two applies cannot both win).
  tugboat apply -f manifests/local.yaml --to file:///var/lib/tugboat/local.yaml

Prints the new revision: the S3 ETag, the SSM parameter version, or the file's sha256.
Exit codes: 0 uploaded; 1 invalid document or any other error; 3 the document changed
since the expected revision (re-run apply).";

/// Validate a document locally, then upload it to S3, SSM or a file.
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXAMPLES, after_help = "See --help for examples.")]
pub struct Args {
    /// The document to upload.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: PathBuf,

    /// Where to upload: s3://BUCKET/KEY, ssm:/PARAMETER or file://PATH.
    #[arg(long = "to", value_name = "URI")]
    pub to: String,

    /// Write only over this revision (S3 ETag, SSM version, or a file's sha256:...),
    /// e.g. the one a previous apply printed. Without it, the revision present when
    /// apply starts is expected.
    #[arg(long, value_name = "REVISION", conflicts_with = "create_only")]
    pub expect_revision: Option<String>,

    /// Fail if a document already exists at the location.
    #[arg(long)]
    pub create_only: bool,

    /// AWS region of the bucket or parameter. Default: the region chain (AWS_REGION,
    /// profile), else the document's spec.platform.aws.region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let uri: SourceUri = args.to.parse()?;
    let text = read_document(&args.file).await?;
    let origin = args.file.display().to_string();
    let document = match source::load_document(&text, &origin) {
        Ok(document) => document,
        Err(invalid) => {
            eprintln!("{invalid}");
            eprintln!(
                "{origin}: not uploaded: {} problem(s) in the document",
                invalid.errors.len()
            );
            return Ok(ExitCode::FAILURE);
        }
    };

    let blob = open_target(&uri, args.region.as_deref(), &document).await?;
    let target = DocumentSource::with_blob(uri.clone(), blob);

    let expect = match (args.expect_revision, args.create_only) {
        (Some(revision), _) => Expect::Revision(revision),
        (None, true) => Expect::Absent,
        (None, false) => Expect::Current,
    };
    match target.publish(&text, &expect).await {
        Ok(revision) => {
            super::println(&format!("applied {origin} to {uri}: revision {revision}"))?;
            Ok(ExitCode::SUCCESS)
        }
        Err(err @ SourceError::Conflict { .. }) => {
            eprintln!("error: {err}");
            Ok(ExitCode::from(EXIT_CONFLICT))
        }
        Err(err) => Err(err.into()),
    }
}

/// The store `uri` names, for writing `document` to. For S3 and SSM the AWS configuration
/// is loaded with `region`, else the document's own region when the chain has none.
#[cfg(feature = "aws")]
async fn open_target(
    uri: &SourceUri,
    region: Option<&str>,
    document: &crate::document::Application,
) -> anyhow::Result<crate::blob::Blob> {
    if !uri.needs_aws() {
        return Ok(uri.open(None).await?);
    }
    let mut config = crate::aws::sdk_config(region).await;
    if config.region().is_none()
        && let Platform::Aws(platform) = &document.spec.platform
    {
        config = crate::aws::sdk_config(Some(&platform.region)).await;
    }
    Ok(uri.open_with_config(&config))
}

/// Without AWS only files can be written; an AWS location says how to get a build with it.
#[cfg(not(feature = "aws"))]
async fn open_target(
    uri: &SourceUri,
    region: Option<&str>,
    _: &crate::document::Application,
) -> anyhow::Result<crate::blob::Blob> {
    Ok(uri.open(region).await?)
}

async fn read_document(path: &std::path::Path) -> anyhow::Result<String> {
    let metadata = tokio::fs::metadata(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    anyhow::ensure!(
        metadata.len() <= MAX_DOCUMENT_BYTES,
        "{} is {} bytes; documents are limited to {MAX_DOCUMENT_BYTES} bytes",
        path.display(),
        metadata.len()
    );
    let bytes = tokio::fs::read(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
}
