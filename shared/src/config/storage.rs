//! `[storage]`: where archives and metadata are stored (a local folder or an S3 bucket).

use serde::Deserialize;

use super::de::default_true;
use super::error::ConfigError;

/// Where the repository is stored (`[storage]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (default) or `s3`.
    #[serde(default)]
    pub kind: StorageKind,
    /// Bucket name (s3).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket, e.g. `mirror/` (s3); empty for the bucket root.
    #[serde(default)]
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers (MinIO, ...); absent for AWS S3.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region; absent means the AWS chain (`AWS_REGION`, profile), else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Access key; absent means the AWS chain (`AWS_ACCESS_KEY_ID`, profile, instance role).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret key, with `access_key_id`.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// The server honours `If-None-Match: *` on PUT (AWS S3, MinIO, Ceph RGW do). Set false for
    /// servers that ignore it (garage, s3s-fs): then every archive upload is preceded by a HEAD,
    /// which still never overwrites but leaves a window between two concurrent writers.
    #[serde(default = "default_true")]
    pub conditional_writes: bool,
    /// Uploads in flight at once, per process (a worker, or an embedded build), for archives and
    /// for the coordinator's metadata writes. Building uses one job per core; this many archives
    /// may be on their way to storage beside them, which hides the latency of each request.
    #[serde(default = "default_uploads")]
    pub uploads: usize,
    /// Archives of at least this many bytes go up as a multipart upload (s3).
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold: u64,
    /// The part size of multipart uploads, at least 5 MiB (s3).
    #[serde(default = "default_multipart_part_size")]
    pub multipart_part_size: u64,
}

fn default_uploads() -> usize {
    32
}
fn default_multipart_threshold() -> u64 {
    64 << 20
}
fn default_multipart_part_size() -> u64 {
    16 << 20
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: StorageKind::default(),
            bucket: None,
            prefix: String::new(),
            endpoint: None,
            region: None,
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            conditional_writes: true,
            uploads: default_uploads(),
            multipart_threshold: default_multipart_threshold(),
            multipart_part_size: default_multipart_part_size(),
        }
    }
}

/// The smallest part S3 accepts (all but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// Storage backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local folder (`repository.output`).
    #[default]
    Local,
    /// An S3 bucket.
    S3,
}

impl StorageConfig {
    /// Checks values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kind == StorageKind::S3 {
            if self.bucket.as_deref().unwrap_or("").is_empty() {
                return Err(ConfigError::Invalid("storage: kind = \"s3\" needs a bucket".to_owned()));
            }
            if self.access_key_id.is_some() != self.secret_access_key.is_some() {
                return Err(ConfigError::Invalid(
                    "storage: set both access_key_id and secret_access_key, or neither".to_owned(),
                ));
            }
            if self.prefix.starts_with('/') {
                return Err(ConfigError::Invalid("storage: prefix must not start with '/'".to_owned()));
            }
            if self.multipart_part_size < MIN_PART_SIZE || self.multipart_threshold < self.multipart_part_size {
                return Err(ConfigError::Invalid(format!(
                    "storage: multipart_part_size must be at least {MIN_PART_SIZE} bytes (5 MiB) and at most multipart_threshold"
                )));
            }
        }
        if self.uploads == 0 {
            return Err(ConfigError::Invalid("storage: uploads must be at least 1".to_owned()));
        }
        Ok(())
    }
}
