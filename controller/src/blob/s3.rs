//! A [`BlobStore`] on one S3 bucket; locations are keys.
//!
//! Guarantees:
//! - An unchanged value costs one conditional GET that S3 answers 304
//!   (`If-None-Match: <etag>`), reported as [`GetResult::NotModified`].
//! - Writes are conditional on S3 itself: `Create` sends `If-None-Match: *`, `Update(v)`
//!   sends `If-Match: v`. S3 evaluates the condition and the write as one step, so two
//!   racing writers cannot both win. A lost race (412, or 409
//!   `ConditionalRequestConflict` when another conditional write is in flight) is
//!   [`BlobError::AlreadyExists`] or [`BlobError::Precondition`].
//! - Values larger than the reader's limit are refused by their Content-Length before the
//!   body is read, and the read stops at the limit if the body is longer than announced.
//! - A missing bucket is [`BlobError::BucketNotFound`], never mistaken for a missing key.

use aws_sdk_s3::primitives::ByteStream;
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{
    BlobError, BlobStore, BoxFuture, GetOptions, GetResult, PutMode, Version, content_version,
};
use crate::aws;

const READ_NEEDS: &str = "the caller needs s3:GetObject on the object (and s3:ListBucket on \
                          the bucket, or a missing key looks like this too)";
const WRITE_NEEDS: &str = "the caller needs s3:PutObject on the object";

/// Keys in one bucket.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    fn uri_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    async fn get_object(&self, key: &str, options: GetOptions<'_>) -> Result<GetResult, BlobError> {
        const DOING: &str = "reading";
        let response = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_if_none_match(options.if_none_match.map(|v| quoted_etag(v.as_str())))
            .send()
            .await;
        let mut object = match response {
            Ok(object) => object,
            Err(err) if aws::is_not_modified(&err) => return Ok(GetResult::NotModified),
            Err(err) => return Err(self.error(err, DOING, READ_NEEDS, key)),
        };
        let too_large = |size| BlobError::TooLarge {
            uri: self.uri_of(key),
            size,
            limit: options.max_bytes,
            what: "the reader accepts",
        };
        let size = object.content_length().unwrap_or(0).max(0) as u64;
        if size > options.max_bytes {
            return Err(too_large(size));
        }
        let etag = object.e_tag().map(str::to_owned);
        // Chunk by chunk, so a body longer than its Content-Length still stops at the cap.
        let mut bytes = Vec::with_capacity(size as usize);
        loop {
            match object.body.try_next().await {
                Ok(Some(chunk)) => {
                    bytes.extend_from_slice(&chunk);
                    if bytes.len() as u64 > options.max_bytes {
                        return Err(too_large(bytes.len() as u64));
                    }
                }
                Ok(None) => break,
                Err(err) => {
                    return Err(BlobError::Transient {
                        doing: DOING,
                        uri: self.uri_of(key),
                        detail: format!("the body was cut off: {err}"),
                        source: Box::new(err),
                    });
                }
            }
        }
        // S3 always sends an ETag; fall back to the content hash rather than fail if a
        // compatible store does not.
        let version = etag.map(Version).unwrap_or_else(|| content_version(&bytes));
        Ok(GetResult::Found { bytes, version })
    }

    async fn head_object(&self, key: &str) -> Result<Version, BlobError> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Version(head.e_tag().unwrap_or_default().to_owned())),
            // A HEAD 404 has no body, so a missing bucket looks like a missing key here;
            // a following write names the bucket.
            Err(err) => Err(self.error(err, "reading", READ_NEEDS, key)),
        }
    }

    async fn put_object(
        &self,
        key: &str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> Result<Version, BlobError> {
        let fallback = content_version(&bytes);
        let request = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .set_content_type(content_type(key).map(str::to_owned))
            .body(ByteStream::from(bytes));
        let request = match &mode {
            PutMode::Overwrite => request,
            PutMode::Create => request.if_none_match("*"),
            PutMode::Update(expected) => request.if_match(quoted_etag(expected.as_str())),
        };
        match request.send().await {
            Ok(output) => Ok(output
                .e_tag()
                .map(|e| Version(e.to_owned()))
                .unwrap_or(fallback)),
            Err(err) => Err(self.put_error(err, key, &mode)),
        }
    }

    /// A failed write: a lost condition becomes the kind the mode names.
    fn put_error<E>(&self, err: SdkError<E, HttpResponse>, key: &str, mode: &PutMode) -> BlobError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let lost =
            aws::is_precondition_failed(&err) || err.code() == Some("ConditionalRequestConflict");
        // `If-Match` on a key that does not exist: 404 NoSuchKey. The version the
        // writer expected is gone just the same.
        let vanished = err.code() == Some("NoSuchKey");
        match mode {
            PutMode::Create if lost => BlobError::AlreadyExists {
                uri: self.uri_of(key),
            },
            PutMode::Update(expected) if lost || vanished => BlobError::Precondition {
                uri: self.uri_of(key),
                expected: expected.clone(),
            },
            _ => self.error(err, "writing", WRITE_NEEDS, key),
        }
    }

    /// Maps an S3 error to what the caller has to do about it.
    fn error<E>(
        &self,
        err: SdkError<E, HttpResponse>,
        doing: &'static str,
        needs: &'static str,
        key: &str,
    ) -> BlobError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let uri = self.uri_of(key);
        if err.code() == Some("NoSuchBucket") {
            return BlobError::BucketNotFound {
                bucket: self.bucket.clone(),
                uri,
            };
        }
        let detail = aws::describe(&err);
        BlobError::from_sdk(
            aws::classify(&err),
            doing,
            uri,
            needs,
            detail,
            Box::new(err),
        )
    }
}

impl BlobStore for S3Store {
    fn uri(&self, location: &str) -> String {
        self.uri_of(location)
    }

    fn get_opts<'a>(
        &'a self,
        location: &'a str,
        options: GetOptions<'a>,
    ) -> BoxFuture<'a, Result<GetResult, BlobError>> {
        Box::pin(self.get_object(location, options))
    }

    fn head<'a>(&'a self, location: &'a str) -> BoxFuture<'a, Result<Version, BlobError>> {
        Box::pin(self.head_object(location))
    }

    fn put<'a>(
        &'a self,
        location: &'a str,
        bytes: Vec<u8>,
        mode: PutMode,
    ) -> BoxFuture<'a, Result<Version, BlobError>> {
        Box::pin(self.put_object(location, bytes, mode))
    }
}

/// S3 wants ETags quoted (`"abc"`); people copy them with or without the quotes.
pub fn quoted_etag(etag: &str) -> String {
    if etag.starts_with('"') || etag.starts_with("W/") {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

/// The Content-Type for a key, from its extension, so the console and `aws s3 cp` show
/// documents and status as text.
fn content_type(key: &str) -> Option<&'static str> {
    let extension = key.rsplit_once('.').map(|(_, ext)| ext)?;
    match extension {
        "yaml" | "yml" => Some("application/yaml"),
        "json" => Some("application/json"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_the_extension() {
        assert_eq!(content_type("app/prod.yaml"), Some("application/yaml"));
        assert_eq!(content_type("app/status.json"), Some("application/json"));
        assert_eq!(content_type("lease"), None);
    }

    #[test]
    fn etags_are_quoted_once() {
        assert_eq!(quoted_etag("abc"), "\"abc\"");
        assert_eq!(quoted_etag("\"abc\""), "\"abc\"");
        assert_eq!(quoted_etag("W/\"abc\""), "W/\"abc\"");
    }
}
