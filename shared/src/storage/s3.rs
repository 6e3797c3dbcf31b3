//! S3-compatible object storage (AWS S3, MinIO, SeaweedFS, ...) behind the [`Storage`] trait.
//!
//! Same guarantees as the local folder:
//! - archives are created only if absent: a PUT (or the completion of a multipart upload) with
//!   `If-None-Match: *` (two writers racing cannot both win), preceded by a HEAD when
//!   `storage.conditional_writes = false` says the server ignores that header. An existing object
//!   with the same sha1 is accepted, one with a different sha1 is drift: refused and kept;
//! - every upload carries its length, its SHA-256 as `x-amz-checksum-sha256` and as the signed
//!   payload hash, so the server refuses a body that does not match. Nothing is hashed here: the
//!   digests come from the pass that wrote the archive ([`ArchiveDigest`]), and bodies stream
//!   from the file. A single PUT is checked by the SHA-256 the server echoes, else by reading
//!   back size and the sha1 we attach as metadata; a multipart upload (archives of at least
//!   `storage.multipart_threshold` bytes) signs each part's SHA-256 and is read back;
//! - metadata files are single PUTs, which S3 makes visible atomically.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use base64::Engine as _;
use sha1::Digest as _;
use tracing::debug;

use crate::archive::ArchiveDigest;
use crate::config::StorageConfig;
use crate::storage::api::{Storage, StorageError, Stored};

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
    multipart_threshold: u64,
    part_size: u64,
    /// Where it is, for error messages: `<endpoint> bucket <bucket>`.
    location: String,
}

/// An SDK client from configuration: endpoint, region, path style and credentials from the
/// config, else the usual AWS chain (environment, profile, instance role). Connections are pooled
/// and reused by the client.
pub async fn sdk_client(config: &StorageConfig) -> Client {
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
    Client::from_conf(builder.build())
}

impl S3Storage {
    /// Connects from configuration (see [`sdk_client`]). `scratch` is a local folder for archives
    /// before upload.
    pub async fn connect(config: &StorageConfig, scratch: PathBuf) -> Result<S3Storage, StorageError> {
        let bucket = config.bucket.clone().ok_or_else(|| StorageError::InvalidKey("no bucket configured".into()))?;
        std::fs::create_dir_all(&scratch)
            .map_err(|source| StorageError::Io { key: scratch.display().to_string(), source })?;
        let mut prefix = config.prefix.clone();
        if !prefix.is_empty() && !prefix.ends_with('/') {
            prefix.push('/');
        }
        let location = format!("{} bucket {bucket}", config.endpoint.as_deref().unwrap_or("AWS S3"));
        Ok(S3Storage {
            client: sdk_client(config).await,
            bucket,
            prefix,
            scratch,
            conditional_writes: config.conditional_writes,
            multipart_threshold: config.multipart_threshold,
            part_size: config.multipart_part_size.max(crate::config::MIN_PART_SIZE),
            location,
        })
    }

    /// `<endpoint> bucket <bucket>`, for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// A storage error for a failed request, naming the operation, the endpoint and the bucket.
    fn remote<E>(
        &self,
        key: &str,
        operation: &str,
        error: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> StorageError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = match &error {
            SdkError::ServiceError(service) => {
                let inner = service.err();
                format!(
                    "{operation} on {} failed: HTTP {} {}{}",
                    self.location,
                    service.raw().status().as_u16(),
                    inner.code().unwrap_or("error"),
                    inner.message().map(|m| format!(": {m}")).unwrap_or_default()
                )
            }
            other => format!("{operation} on {} failed: {}", self.location, crate::telemetry::error_chain(other)),
        };
        StorageError::Remote { key: key.to_owned(), message }
    }

    /// One conditional PUT, the body streamed from the file.
    async fn put_single(
        &self,
        key: &str,
        object: &str,
        file: &Path,
        digest: &ArchiveDigest,
    ) -> Result<Upload, StorageError> {
        let sha256 = hex::decode(&digest.sha256).map_err(|_| StorageError::Remote {
            key: key.to_owned(),
            message: format!("not a SHA-256: {}", digest.sha256),
        })?;
        let sha256 = base64::engine::general_purpose::STANDARD.encode(sha256);
        let body = ByteStream::read_from()
            .path(file)
            .buffer_size(usize::try_from(digest.size.clamp(4096, 256 * 1024)).unwrap_or(4096))
            .build()
            .await
            .map_err(|e| StorageError::Io { key: key.to_owned(), source: std::io::Error::other(e) })?;
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(object)
            .if_none_match("*")
            .content_type("application/zip")
            .content_length(digest.size as i64)
            .checksum_sha256(&sha256)
            .metadata(SHA1_METADATA, &digest.sha1)
            .body(body)
            .customize()
            .interceptor(SignedPayload(digest.sha256.clone()))
            .send()
            .await;
        match put {
            // The server computed the SHA-256 of what it stored (AWS, MinIO, SeaweedFS): it must be ours.
            Ok(output) => match output.checksum_sha256() {
                Some(echoed) if echoed == sha256 => Ok(Upload::Verified),
                Some(echoed) => Err(StorageError::Remote {
                    key: key.to_owned(),
                    message: format!("upload checksum mismatch: sent {}, server stored {echoed}", digest.sha256),
                }),
                None => Ok(Upload::Unverified),
            },
            Err(error) if status(&error) == Some(412) => Ok(Upload::Exists),
            Err(error) => Err(self.remote(key, "PUT", error)),
        }
    }

    /// A multipart upload: parts of `part_size` bytes, each read and hashed for its signature,
    /// completed with `If-None-Match: *`; aborted when anything fails.
    async fn put_multipart(
        &self,
        key: &str,
        object: &str,
        file: &Path,
        digest: &ArchiveDigest,
    ) -> Result<Upload, StorageError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(object)
            .content_type("application/zip")
            .metadata(SHA1_METADATA, &digest.sha1)
            .send()
            .await
            .map_err(|e| self.remote(key, "CreateMultipartUpload", e))?;
        let upload_id = created.upload_id().unwrap_or_default().to_owned();
        let uploaded = self.upload_parts(key, object, file, digest.size, &upload_id).await;
        let completed = match uploaded {
            Ok(parts) => {
                let complete = self
                    .client
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(object)
                    .upload_id(&upload_id)
                    .if_none_match("*")
                    .multipart_upload(
                        aws_sdk_s3::types::CompletedMultipartUpload::builder().set_parts(Some(parts)).build(),
                    )
                    .send()
                    .await;
                match complete {
                    Ok(_) => return Ok(Upload::Unverified),
                    Err(error) if status(&error) == Some(412) => Ok(Upload::Exists),
                    Err(error) => Err(self.remote(key, "CompleteMultipartUpload", error)),
                }
            }
            Err(error) => Err(error),
        };
        // Parts of an upload that did not complete cost storage until aborted.
        let abort =
            self.client.abort_multipart_upload().bucket(&self.bucket).key(object).upload_id(&upload_id).send().await;
        if let Err(error) = abort {
            debug!(key, error = %crate::telemetry::error_chain(&error), "could not abort a multipart upload");
        }
        completed
    }

    /// Uploads the parts of `file`, one after another; returns them for the completion.
    async fn upload_parts(
        &self,
        key: &str,
        object: &str,
        file: &Path,
        size: u64,
        upload_id: &str,
    ) -> Result<Vec<aws_sdk_s3::types::CompletedPart>, StorageError> {
        let io = |source| StorageError::Io { key: key.to_owned(), source };
        let mut parts = Vec::new();
        let mut offset = 0u64;
        let mut number = 1i32;
        while offset < size {
            let length = self.part_size.min(size - offset);
            let (path, start) = (file.to_owned(), offset);
            let bytes = tokio::task::spawn_blocking(move || read_at(&path, start, length))
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)?;
            let sha256 = sha2::Sha256::digest(&bytes);
            let part = self
                .client
                .upload_part()
                .bucket(&self.bucket)
                .key(object)
                .upload_id(upload_id)
                .part_number(number)
                .content_length(length as i64)
                .body(ByteStream::from(bytes))
                .customize()
                .interceptor(SignedPayload(hex::encode(sha256)))
                .send()
                .await
                .map_err(|e| self.remote(key, "UploadPart", e))?;
            parts.push(
                aws_sdk_s3::types::CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_owned))
                    .build(),
            );
            offset += length;
            number += 1;
        }
        Ok(parts)
    }

    /// The full object key of a repository key.
    fn object_key(&self, key: &str) -> Result<String, StorageError> {
        crate::storage::api::check_key(key)?;
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
            Err(error) => Err(self.remote(key, "HEAD", error)),
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

    async fn put_archive(&self, key: &str, file: &Path, digest: &ArchiveDigest) -> Result<Stored, StorageError> {
        let object = self.object_key(key)?;
        let sha1 = digest.sha1.as_str();
        // A server that ignores `If-None-Match` would overwrite: look first.
        if !self.conditional_writes
            && let Some((_, recorded)) = self.head(key).await?
        {
            return self.compare_existing(key, recorded, sha1).await;
        }
        let upload = if digest.size >= self.multipart_threshold {
            self.put_multipart(key, &object, file, digest).await?
        } else {
            self.put_single(key, &object, file, digest).await?
        };
        match upload {
            Upload::Verified => {
                debug!(key, size = digest.size, "archive uploaded and checked");
                return Ok(Stored::Created);
            }
            // It exists (someone stored it first, or the same job ran twice): compare.
            Upload::Exists => {
                return match self.head(key).await? {
                    Some((_, recorded)) => self.compare_existing(key, recorded, sha1).await,
                    // Gone again (deleted, or a lagging server): not drift; try again later.
                    None => Err(StorageError::Remote {
                        key: key.to_owned(),
                        message: "the server refused the write as existing, but the object is not there".into(),
                    }),
                };
            }
            Upload::Unverified => {}
        }
        // Nothing in the answer proves the content: read back size and our sha1.
        let size = digest.size;
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
        let sha256 = sha2::Sha256::digest(&bytes);
        let content_type = if key.ends_with(".json") { "application/json" } else { "application/octet-stream" };
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(&object)
            .content_type(content_type)
            .content_length(bytes.len() as i64)
            .checksum_sha256(base64::engine::general_purpose::STANDARD.encode(sha256))
            .body(ByteStream::from(bytes))
            .customize()
            .interceptor(SignedPayload(hex::encode(sha256)))
            .send()
            .await
            .map_err(|e| self.remote(key, "PUT", e))?;
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
            Err(error) => Err(self.remote(key, "GET", error)),
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
            Err(error) => Err(self.remote(key, "DELETE", error)),
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

/// How an upload ended, short of reading it back.
enum Upload {
    /// The server proved it stored our bytes (it echoed our SHA-256).
    Verified,
    /// Stored, but nothing in the answer proves the content.
    Unverified,
    /// Refused: an object exists at the key.
    Exists,
}

/// `length` bytes of `path` from `offset`.
fn read_at(path: &Path, offset: u64, length: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Read as _, Seek as _};
    let mut file = std::fs::File::open(path)?;
    file.seek(std::io::SeekFrom::Start(offset))?;
    let mut bytes = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
    file.take(length).read_to_end(&mut bytes)?;
    if bytes.len() as u64 != length {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "the archive file is shorter than its digest says",
        ));
    }
    Ok(bytes)
}

/// Signs a request with a payload hash computed beforehand (the SDK would otherwise read and hash
/// the body again, or leave it unsigned when it streams).
#[derive(Debug)]
struct SignedPayload(String);

impl aws_smithy_runtime_api::client::interceptors::Intercept for SignedPayload {
    fn name(&self) -> &'static str {
        "SignedPayload"
    }

    fn read_before_signing(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef<'_>,
        _components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
        cfg: &mut aws_smithy_types::config_bag::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state().store_put(aws_runtime::auth::PayloadSigningOverride::Precomputed(self.0.clone()));
        Ok(())
    }
}
