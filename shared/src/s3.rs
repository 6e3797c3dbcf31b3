//! S3-compatible object storage (AWS S3, MinIO, ...) behind the [`Storage`] trait.
//!
//! Same guarantees as the local folder:
//! - archives are created only if absent: a PUT with `If-None-Match: *` (two writers racing cannot
//!   both win), preceded by a HEAD when `storage.conditional_writes = false` says the server
//!   ignores that header. An existing object with the same sha1 is accepted, one with a different
//!   sha1 is drift: refused and kept;
//! - every upload carries its length, Content-MD5 and SHA-256 (the server rejects a body that does
//!   not match), and is checked: by the SHA-256 or MD5 ETag the server answers with, else by
//!   reading back size and the sha1 we attach as metadata;
//! - metadata files are single PUTs, which S3 makes visible atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use sha1::Digest as _;
use tracing::debug;

use crate::config::StorageConfig;
use crate::storage::{Storage, StorageError, Stored};

/// User metadata key holding the archive's sha1 (`x-amz-meta-sha1`).
const SHA1_METADATA: &str = "sha1";

/// A bucket (and key prefix) as storage.
#[derive(Debug, Clone)]
pub struct S3Storage {
    client: Client,
    bucket: String,
    prefix: String,
    scratch: PathBuf,
    conditional_writes: bool,
}

impl S3Storage {
    /// Connects from configuration: endpoint, region, path style and credentials from the config,
    /// else the usual AWS chain (environment, profile, instance role). `scratch` is a local folder
    /// for archives before upload.
    pub async fn connect(config: &StorageConfig, scratch: PathBuf) -> Result<S3Storage, StorageError> {
        let bucket = config.bucket.clone().ok_or_else(|| StorageError::InvalidKey("no bucket configured".into()))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(http);
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let (Some(key), Some(secret)) = (&config.access_key_id, &config.secret_access_key) {
            loader = loader.credentials_provider(aws_sdk_s3::config::Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "farm-config",
            ));
        }
        let shared = loader.load().await;
        let mut builder = aws_sdk_s3::config::Builder::from(&shared)
            .force_path_style(config.path_style)
            // We send our own SHA-256 with every upload; no second (CRC) checksum in trailers,
            // which not every S3-compatible server understands.
            .request_checksum_calculation(aws_sdk_s3::config::RequestChecksumCalculation::WhenRequired)
            .response_checksum_validation(aws_sdk_s3::config::ResponseChecksumValidation::WhenRequired)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(300))
                    .build(),
            );
        if shared.region().is_none() {
            builder = builder.region(aws_config::Region::new("us-east-1"));
        }
        if let Some(endpoint) = &config.endpoint {
            builder = builder.endpoint_url(endpoint.clone());
        }
        std::fs::create_dir_all(&scratch)
            .map_err(|source| StorageError::Io { key: scratch.display().to_string(), source })?;
        let mut prefix = config.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        Ok(S3Storage {
            client: Client::from_conf(builder.build()),
            bucket,
            prefix,
            scratch,
            conditional_writes: config.conditional_writes,
        })
    }

    /// The full object key of a repository key.
    fn object_key(&self, key: &str) -> Result<String, StorageError> {
        crate::storage::check_key(key)?;
        Ok(format!("{}{key}", self.prefix))
    }

    /// Size and recorded sha1 of an object, if it exists.
    async fn head(&self, key: &str) -> Result<Option<(u64, Option<String>)>, StorageError> {
        let object = self.object_key(key)?;
        match self.client.head_object().bucket(&self.bucket).key(&object).send().await {
            Ok(head) => {
                let size = head.content_length().unwrap_or(0).max(0) as u64;
                let sha1 = head.metadata().and_then(|m| m.get(SHA1_METADATA)).cloned();
                Ok(Some((size, sha1)))
            }
            Err(error) if status(&error) == Some(404) => Ok(None),
            Err(error) => Err(remote(key, "HEAD", error)),
        }
    }

    /// The sha1 of the object at `key`: the recorded one, else computed from its bytes (objects
    /// uploaded by other tools carry no metadata).
    async fn existing_sha1(&self, key: &str, recorded: Option<String>) -> Result<String, StorageError> {
        if let Some(sha1) = recorded {
            return Ok(sha1);
        }
        let bytes = self.get(key).await?.unwrap_or_default();
        Ok(hex::encode(sha1::Sha1::digest(&bytes)))
    }

    async fn compare_existing(&self, key: &str, recorded: Option<String>, sha1: &str) -> Result<Stored, StorageError> {
        let existing = self.existing_sha1(key, recorded).await?;
        if existing == sha1 {
            Ok(Stored::AlreadyIdentical)
        } else {
            Err(StorageError::Drift { key: key.to_owned(), existing_sha1: existing, new_sha1: sha1.to_owned() })
        }
    }
}

impl Storage for S3Storage {
    fn scratch_dir(&self) -> PathBuf {
        self.scratch.clone()
    }

    async fn put_archive(&self, key: &str, file: &Path, sha1: &str) -> Result<Stored, StorageError> {
        let object = self.object_key(key)?;
        // A server that ignores `If-None-Match` would overwrite: look first.
        if !self.conditional_writes
            && let Some((_, recorded)) = self.head(key).await?
        {
            return self.compare_existing(key, recorded, sha1).await;
        }
        let bytes = tokio::fs::read(file).await.map_err(|source| StorageError::Io { key: key.to_owned(), source })?;
        let size = bytes.len() as u64;
        let sha256 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
        let md5 = md5::Md5::digest(&bytes);
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .if_none_match("*")
            .content_type("application/zip")
            .content_length(size as i64)
            .content_md5(base64::engine::general_purpose::STANDARD.encode(md5))
            .checksum_sha256(&sha256)
            .metadata(SHA1_METADATA, sha1)
            .body(ByteStream::from(bytes))
            .send()
            .await;
        let verified = match put {
            // The server computed the SHA-256 of what it stored (AWS, MinIO): it must be ours.
            Ok(output) if output.checksum_sha256().is_some() => {
                let echoed = output.checksum_sha256().unwrap_or_default();
                if echoed != sha256 {
                    return Err(StorageError::Remote {
                        key: key.to_owned(),
                        message: format!("upload checksum mismatch: sent {sha256}, server stored {echoed}"),
                    });
                }
                true
            }
            // A single-part upload's ETag is the MD5 of the stored bytes (unless the server
            // encrypts with KMS); when it matches, the bytes arrived intact.
            Ok(output) => output.e_tag().map(|tag| tag.trim_matches('"')) == Some(hex::encode(md5).as_str()),
            // It exists (someone stored it first, or the same job ran twice): compare.
            Err(error) if status(&error) == Some(412) => {
                return match self.head(key).await? {
                    Some((_, recorded)) => self.compare_existing(key, recorded, sha1).await,
                    // Gone again (deleted, or a lagging server): not drift; try again later.
                    None => Err(StorageError::Remote {
                        key: key.to_owned(),
                        message: "the server refused the write as existing, but the object is not there".into(),
                    }),
                };
            }
            Err(error) => return Err(remote(key, "PUT", error)),
        };
        if verified {
            debug!(key, size, "archive uploaded and checked");
            return Ok(Stored::Created);
        }
        // Nothing in the answer proves the content: read back size and our sha1.
        match self.head(key).await? {
            Some((stored_size, Some(stored_sha1))) if stored_size == size && stored_sha1 == sha1 => {
                debug!(key, size, "archive uploaded and read back");
                Ok(Stored::Created)
            }
            Some((stored_size, stored_sha1)) => Err(StorageError::Remote {
                key: key.to_owned(),
                message: format!(
                    "uploaded {size} bytes with sha1 {sha1}, the server reports {stored_size} bytes with sha1 {}",
                    stored_sha1.as_deref().unwrap_or("(none)")
                ),
            }),
            None => Err(StorageError::Remote { key: key.to_owned(), message: "object missing after upload".into() }),
        }
    }

    async fn put_replace(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let object = self.object_key(key)?;
        let sha256 = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(&bytes));
        let content_type = if key.ends_with(".json") { "application/json" } else { "application/octet-stream" };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .checksum_sha256(sha256)
            .body(ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| remote(key, "PUT", e))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let object = self.object_key(key)?;
        match self.client.get_object().bucket(&self.bucket).key(&object).send().await {
            Ok(output) => {
                let bytes = output
                    .body
                    .collect()
                    .await
                    .map_err(|e| StorageError::Remote { key: key.to_owned(), message: format!("GET body: {e}") })?;
                Ok(Some(bytes.to_vec()))
            }
            Err(error) if status(&error) == Some(404) => Ok(None),
            Err(error) => Err(remote(key, "GET", error)),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.head(key).await?.is_some())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let object = self.object_key(key)?;
        match self.client.delete_object().bucket(&self.bucket).key(&object).send().await {
            Ok(_) => Ok(()),
            Err(error) if status(&error) == Some(404) => Ok(()),
            Err(error) => Err(remote(key, "DELETE", error)),
        }
    }

    async fn flush(&self) -> Result<(), StorageError> {
        // A successful PUT is durable.
        Ok(())
    }
}

/// The HTTP status of a service error, if the server answered.
fn status<E, R>(error: &SdkError<E, R>) -> Option<u16>
where
    R: HttpStatus,
{
    match error {
        SdkError::ServiceError(service) => Some(service.raw().status_code()),
        SdkError::ResponseError(response) => Some(response.raw().status_code()),
        _ => None,
    }
}

/// Access to the status code of the SDK's raw response type.
trait HttpStatus {
    fn status_code(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::http::Response {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

fn remote<E>(key: &str, operation: &str, error: SdkError<E, aws_smithy_runtime_api::http::Response>) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = match &error {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            format!(
                "{operation} failed: HTTP {} {}{}",
                service.raw().status().as_u16(),
                inner.code().unwrap_or("error"),
                inner.message().map(|m| format!(": {m}")).unwrap_or_default()
            )
        }
        other => format!("{operation} failed: {}", crate::telemetry::error_chain(other)),
    };
    StorageError::Remote { key: key.to_owned(), message }
}
