//! What stands in for [`aws`](https://docs.rs/aws-config) in a build without the `aws`
//! feature (`./up`'s: the local platform never calls AWS, and the SDK is about a quarter
//! of a fresh build).
//!
//! Guarantees:
//! - The client types exist but have no values, so every place that may hold a client
//!   (`Option<S3Client>`) compiles unchanged and holds `None`; no code path can reach
//!   AWS.
//! - Every AWS location (`s3://`, `ssm:`) and every `platform: aws` document is refused
//!   with [`NOT_BUILT`], which says how to get a build that has it; nothing is half done
//!   first.

/// Stands in for `aws_sdk_s3::Client`: uninhabited, so no value of it exists.
#[derive(Debug, Clone)]
pub enum S3Client {}

/// Stands in for `aws_sdk_ssm::Client`, as [`S3Client`].
#[derive(Debug, Clone)]
pub enum SsmClient {}

/// No S3 client, ever: S3 locations are then refused with [`NOT_BUILT`] where they are
/// opened.
pub async fn s3_for(_uri: &str, _region: Option<&str>) -> Option<S3Client> {
    None
}

/// Why an AWS location or platform is refused, and how to get a build that has it.
pub const NOT_BUILT: &str = "this tugboat was built without AWS support (the `aws` cargo \
     feature is off, as in ./up's build); build it with the feature (the default: `cargo \
     build --release -p tugboat`) to use AWS";
