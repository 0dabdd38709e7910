//! A [`BlobStore`] on SSM Parameter Store; locations are parameter names, versions are
//! parameter versions (`1`, `2`, ...).
//!
//! Guarantees and limits:
//! - Values are text (SSM stores strings): bytes that are not UTF-8 are refused. An empty
//!   value is refused by SSM itself.
//! - Values up to 4 KiB fit the Standard tier; up to 8 KiB need the Advanced tier (charged
//!   per parameter), which is chosen for them. Larger values are
//!   [`BlobError::TooLarge`] before any call. Intelligent tiering is asked for otherwise,
//!   so an Advanced parameter is never downgraded (which PutParameter would reject).
//! - `Create` is `PutParameter` with `Overwrite=false`: exact, SSM refuses an existing
//!   name.
//! - `Update(v)` **cannot be made exact**: SSM has no conditional put. The current version
//!   is read just before the write, and the write is refused if it is not `v`; a writer
//!   that lands between that read and the write is overwritten. The race is detected
//!   afterwards (the new version is not `v + 1`) and logged, not undone. Callers that
//!   need an exact compare-and-swap (a lease) must use S3 or files.
//! - Reads always fetch the value (GetParameter has no conditional form); an unchanged
//!   version is still reported as [`GetResult::NotModified`]. SecureString parameters are
//!   decrypted.

use aws_sdk_ssm::types::{ParameterTier, ParameterType};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{BlobError, BlobStore, BoxFuture, GetOptions, GetResult, PutMode, Version};
use crate::aws;

/// SSM's Standard tier holds up to 4 KiB; Advanced (charged per parameter) up to 8 KiB
/// (defined beside [`super::BlobUri`], so builds without AWS can name them in messages).
pub const STANDARD_MAX_BYTES: usize = super::SSM_STANDARD_MAX_BYTES;
pub const ADVANCED_MAX_BYTES: usize = super::SSM_ADVANCED_MAX_BYTES;

const READ_NEEDS: &str = "the caller needs ssm:GetParameter (and kms:Decrypt for a SecureString)";
const WRITE_NEEDS: &str = "the caller needs ssm:PutParameter (and ssm:GetParameter)";

/// Parameters in one account and region.
#[derive(Debug, Clone)]
pub struct SsmStore {
    client: aws_sdk_ssm::Client,
}

impl SsmStore {
    pub fn new(client: aws_sdk_ssm::Client) -> Self {
        Self { client }
    }

    async fn get_parameter(
        &self,
        name: &str,
        options: GetOptions<'_>,
    ) -> Result<GetResult, BlobError> {
        let (value, version) = self.read(name, "reading", READ_NEEDS, true).await?;
        if options.if_none_match == Some(&version) {
            return Ok(GetResult::NotModified);
        }
        if value.len() as u64 > options.max_bytes {
            return Err(BlobError::TooLarge {
                uri: uri_of(name),
                size: value.len() as u64,
                limit: options.max_bytes,
                what: "the reader accepts",
            });
        }
        Ok(GetResult::Found {
            bytes: value.into_bytes(),
            version,
        })
    }

    /// The value and version of `name`. `decrypt` only for callers that want the value:
    /// the version alone needs no kms:Decrypt on a SecureString.
    async fn read(
        &self,
        name: &str,
        doing: &'static str,
        needs: &'static str,
        decrypt: bool,
    ) -> Result<(String, Version), BlobError> {
        let output = self
            .client
            .get_parameter()
            .name(name)
            // A SecureString needs it for its value; for a String it is ignored.
            .with_decryption(decrypt)
            .send()
            .await
            .map_err(|err| error(err, doing, needs, name))?;
        let parameter = output
            .parameter
            .ok_or_else(|| BlobError::NotFound { uri: uri_of(name) })?;
        Ok((
            parameter.value.unwrap_or_default(),
            Version(parameter.version.to_string()),
        ))
    }

    async fn put_parameter(
        &self,
        name: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, BlobError> {
        let uri = uri_of(name);
        if bytes.len() > ADVANCED_MAX_BYTES {
            return Err(BlobError::TooLarge {
                uri,
                size: bytes.len() as u64,
                limit: ADVANCED_MAX_BYTES as u64,
                what: "an SSM parameter holds (Advanced tier; Standard holds 4 KiB)",
            });
        }
        let text = String::from_utf8(bytes).map_err(|err| BlobError::Other {
            doing: "writing",
            uri: uri.clone(),
            detail: "SSM parameters hold text, and the value is not UTF-8".to_owned(),
            source: Box::new(err),
        })?;
        if let PutMode::Update(expected) = &mode {
            self.check_version(name, expected).await?;
        }
        let output = self
            .client
            .put_parameter()
            .name(name)
            .value(text.as_str())
            .r#type(ParameterType::String)
            .tier(tier(text.len()))
            .overwrite(!matches!(mode, PutMode::Create))
            .description("written by tugboat")
            .send()
            .await
            .map_err(|err| match err.code() {
                Some("ParameterAlreadyExists") => BlobError::AlreadyExists { uri: uri.clone() },
                _ => error(err, "writing", WRITE_NEEDS, name),
            })?;
        let written = Version(output.version.to_string());
        if let PutMode::Update(expected) = &mode
            && !follows(expected, &written)
        {
            tracing::warn!(
                %uri,
                expected = %expected,
                written = %written,
                "another writer changed the parameter between tugboat's check and its write; \
                 that write was overwritten (SSM has no conditional put)"
            );
        }
        Ok(written)
    }

    /// The best SSM allows for `Update`: the version right before the write.
    async fn check_version(&self, name: &str, expected: &Version) -> Result<(), BlobError> {
        let current = match self.read(name, "writing", WRITE_NEEDS, false).await {
            Ok((_, version)) => Some(version),
            Err(BlobError::NotFound { .. }) => None,
            Err(err) => return Err(err),
        };
        if current.as_ref() == Some(expected) {
            Ok(())
        } else {
            Err(BlobError::Precondition {
                uri: uri_of(name),
                expected: expected.clone(),
            })
        }
    }
}

impl BlobStore for SsmStore {
    fn uri(&self, location: &str) -> String {
        uri_of(location)
    }

    fn get_opts<'a>(
        &'a self,
        location: &'a str,
        options: GetOptions<'a>,
    ) -> BoxFuture<'a, Result<GetResult, BlobError>> {
        Box::pin(self.get_parameter(location, options))
    }

    fn head<'a>(&'a self, location: &'a str) -> BoxFuture<'a, Result<Version, BlobError>> {
        Box::pin(async move {
            self.read(location, "reading", READ_NEEDS, false)
                .await
                .map(|(_, version)| version)
        })
    }

    fn put<'a>(
        &'a self,
        location: &'a str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<Version, BlobError>> {
        Box::pin(self.put_parameter(location, bytes, mode))
    }
}

fn uri_of(name: &str) -> String {
    format!("ssm:{name}")
}

/// Standard holds 4 KiB; above that the parameter must be Advanced. Intelligent tiering
/// picks the cheapest tier that fits and never downgrades an Advanced parameter.
fn tier(len: usize) -> ParameterTier {
    if len > STANDARD_MAX_BYTES {
        ParameterTier::Advanced
    } else {
        ParameterTier::IntelligentTiering
    }
}

/// Whether `written` is the version right after `expected` (no writer in between).
fn follows(expected: &Version, written: &Version) -> bool {
    match (
        expected.as_str().parse::<u64>(),
        written.as_str().parse::<u64>(),
    ) {
        (Ok(expected), Ok(written)) => written == expected + 1,
        _ => false,
    }
}

fn error<E>(
    err: SdkError<E, HttpResponse>,
    doing: &'static str,
    needs: &'static str,
    name: &str,
) -> BlobError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let uri = uri_of(name);
    let detail = aws::describe(&err);
    // Concurrent PutParameter calls on one name: SSM asks to try again.
    if err.code() == Some("TooManyUpdates") {
        return BlobError::Transient {
            doing,
            uri,
            detail,
            source: Box::new(err),
        };
    }
    BlobError::from_sdk(
        aws::classify(&err),
        doing,
        uri,
        needs,
        detail,
        Box::new(err),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_over_4_kib_go_to_the_advanced_tier() {
        assert_eq!(tier(STANDARD_MAX_BYTES), ParameterTier::IntelligentTiering);
        assert_eq!(tier(STANDARD_MAX_BYTES + 1), ParameterTier::Advanced);
    }

    #[test]
    fn a_racing_writer_shows_as_a_gap_in_versions() {
        assert!(follows(&Version::from("3"), &Version::from("4")));
        assert!(!follows(&Version::from("3"), &Version::from("5")));
        assert!(!follows(&Version::from("x"), &Version::from("4")));
    }
}
