//! Secret values for providers (header values, Prometheus credentials), read when a
//! measurement is taken: from an environment variable of the controller, or from an SSM
//! parameter (SecureString, decrypted).
//!
//! Guarantee: a [`SecretError`] names where the secret was looked for and why it is not
//! there, never the value; values are handed to the provider and nowhere else.

use std::fmt;

use crate::document::SecretSource;
use crate::platform::BoxFuture;

/// Why a secret could not be read. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {name} is not set (or not UTF-8)")]
    EnvMissing { name: String },
    #[error("SSM parameter {name} could not be read: {reason}")]
    Ssm { name: String, reason: String },
    #[error("SSM parameters are not available on this platform (secret {name})")]
    SsmUnavailable { name: String },
    #[error("the secret names neither `env` nor `ssm`")]
    Unnamed,
}

/// Where secrets come from.
pub trait Secrets: Send + Sync + fmt::Debug {
    fn read<'a>(&'a self, source: &'a SecretSource) -> BoxFuture<'a, Result<String, SecretError>>;
}

fn from_env(name: &str) -> Result<String, SecretError> {
    std::env::var(name).map_err(|_| SecretError::EnvMissing {
        name: name.to_string(),
    })
}

/// Environment variables only.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvSecrets;

impl Secrets for EnvSecrets {
    fn read<'a>(&'a self, source: &'a SecretSource) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            match (&source.env, &source.ssm) {
                (Some(name), _) => from_env(name),
                (None, Some(name)) => Err(SecretError::SsmUnavailable { name: name.clone() }),
                (None, None) => Err(SecretError::Unnamed),
            }
        })
    }
}

/// Environment variables and SSM SecureStrings.
#[cfg(feature = "aws")]
#[derive(Debug, Clone)]
pub struct SsmSecrets {
    ssm: aws_sdk_ssm::Client,
}

#[cfg(feature = "aws")]
impl SsmSecrets {
    pub fn new(ssm: aws_sdk_ssm::Client) -> Self {
        Self { ssm }
    }
}

#[cfg(feature = "aws")]
impl Secrets for SsmSecrets {
    fn read<'a>(&'a self, source: &'a SecretSource) -> BoxFuture<'a, Result<String, SecretError>> {
        Box::pin(async move {
            let name = match (&source.env, &source.ssm) {
                (Some(name), _) => return from_env(name),
                (None, Some(name)) => name,
                (None, None) => return Err(SecretError::Unnamed),
            };
            let out = self
                .ssm
                .get_parameter()
                .name(name)
                .with_decryption(true)
                .send()
                .await
                .map_err(|e| SecretError::Ssm {
                    name: name.clone(),
                    // The error's code and message, never the request (which holds no
                    // value) nor a response body.
                    reason: aws_sdk_ssm::error::ProvideErrorMetadata::code(&e)
                        .map(str::to_string)
                        .unwrap_or_else(|| "the call failed".to_string()),
                })?;
            out.parameter
                .and_then(|p| p.value)
                .ok_or_else(|| SecretError::Ssm {
                    name: name.clone(),
                    reason: "it has no value".to_string(),
                })
        })
    }
}
