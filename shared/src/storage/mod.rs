//! Object storage for archives and metadata. The embedded mode uses a local folder.
//!
//! Two write paths with different guarantees:
//! - archives are created only if absent; an existing object with the same bytes is accepted (a
//!   redelivered job is harmless), one with different bytes is refused as drift and kept
//!   (invariant 2: a published name@version never changes);
//! - metadata files are replaced atomically (temp file + rename), so a reader never sees a
//!   half-written file.
//!
//! [`Storage`] is the contract (module `api`), [`LocalStorage`] the local folder and
//! [`s3::S3Storage`] the S3 bucket (module `s3`); [`AnyStorage`] is whichever of them is configured.

use std::path::{Path, PathBuf};

use crate::archive::ArchiveDigest;

pub(crate) mod api;
mod durable;
mod local;
pub mod s3;

pub use api::{STATE_PREFIX, Storage, StorageError, Stored, check_key, hostname, probe, unique_process_name};
pub use local::{LocalStorage, check_output_folder, sha1_of_file};

/// The configured backend: a local folder or an S3 bucket (the trait is not object-safe, so an
/// enum dispatches).
#[derive(Debug, Clone)]
pub enum AnyStorage {
    /// A local folder.
    Local(LocalStorage),
    /// An S3 bucket.
    S3(crate::storage::s3::S3Storage),
}

impl AnyStorage {
    /// Removes this process's local temp files (end of a build, a worker stopping).
    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(self.scratch_dir());
    }

    /// Where it is, for messages: the folder, or the endpoint and bucket.
    pub fn location(&self) -> String {
        match self {
            AnyStorage::Local(s) => s.root().display().to_string(),
            AnyStorage::S3(s) => s.location().to_owned(),
        }
    }
}

impl Storage for AnyStorage {
    fn scratch_dir(&self) -> PathBuf {
        match self {
            AnyStorage::Local(s) => s.scratch_dir(),
            AnyStorage::S3(s) => s.scratch_dir(),
        }
    }

    async fn put_archive(&self, key: &str, file: &Path, digest: &ArchiveDigest) -> Result<Stored, StorageError> {
        match self {
            AnyStorage::Local(s) => s.put_archive(key, file, digest).await,
            AnyStorage::S3(s) => s.put_archive(key, file, digest).await,
        }
    }

    async fn put_replace(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        match self {
            AnyStorage::Local(s) => s.put_replace(key, bytes).await,
            AnyStorage::S3(s) => s.put_replace(key, bytes).await,
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        match self {
            AnyStorage::Local(s) => s.get(key).await,
            AnyStorage::S3(s) => s.get(key).await,
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        match self {
            AnyStorage::Local(s) => s.exists(key).await,
            AnyStorage::S3(s) => s.exists(key).await,
        }
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match self {
            AnyStorage::Local(s) => s.delete(key).await,
            AnyStorage::S3(s) => s.delete(key).await,
        }
    }

    async fn flush(&self) -> Result<(), StorageError> {
        match self {
            AnyStorage::Local(s) => s.flush().await,
            AnyStorage::S3(s) => s.flush().await,
        }
    }
}
