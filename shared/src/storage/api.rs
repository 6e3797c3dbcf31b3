//! The storage contract every backend keeps: the [`Storage`] trait, its errors, how an archive
//! write ended, the key rule, and the probe that tries a backend (with the process names it and
//! the backends' temp folders use).

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::archive::ArchiveDigest;

/// Folder (relative to the storage root) for the farm's own state: manifest, reports, temp files.
pub const STATE_PREFIX: &str = ".farm";

/// A storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// I/O on the backing store failed.
    #[error("storage I/O on {key}: {source}")]
    Io {
        /// Object key.
        key: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// An object exists under the key with different bytes; it was kept.
    #[error(
        "{key} is already published with sha1 {existing_sha1}; the new build has sha1 {new_sha1}: refused, the published archive is kept"
    )]
    Drift {
        /// Object key.
        key: String,
        /// sha1 of the published object.
        existing_sha1: String,
        /// sha1 of the refused bytes.
        new_sha1: String,
    },
    /// The object store answered with an error or could not be reached.
    #[error("storage {key}: {message}")]
    Remote {
        /// Object key.
        key: String,
        /// What went wrong.
        message: String,
    },
    /// Another coordinator holds the storage lock.
    #[error("{0}")]
    Locked(String),
    /// The key would leave the storage root.
    #[error("invalid object key '{0}'")]
    InvalidKey(String),
    /// Another process holds the output folder.
    #[error("{0} is in use by another build (lock held on .farm/lock)")]
    Busy(PathBuf),
    /// The output folder is one the farm must not write into.
    #[error("{path}: {reason}")]
    RefusedOutput {
        /// The folder.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

impl StorageError {
    /// Whether trying again later may succeed (an unreachable or failing server, a full disk),
    /// as opposed to a refusal that will not change (drift, a bad key).
    pub fn is_transient(&self) -> bool {
        match self {
            // A name the file system cannot hold (too long, a NUL byte) stays so on every retry.
            StorageError::Io { source, .. } => {
                !matches!(source.kind(), std::io::ErrorKind::InvalidFilename | std::io::ErrorKind::InvalidInput)
            }
            StorageError::Remote { .. } => true,
            _ => false,
        }
    }
}

/// Refuses keys that could leave the storage root or address a folder: empty, absolute, or with
/// empty, `.` or `..` segments. The same rule for every backend.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    let bad = key.is_empty()
        || key.starts_with('/')
        || key.split('/').any(|segment| segment.is_empty() || segment == "." || segment == "..");
    if bad { Err(StorageError::InvalidKey(key.to_owned())) } else { Ok(()) }
}

/// How an archive write ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The object was created.
    Created,
    /// The same bytes were already there.
    AlreadyIdentical,
}

/// Where the repository is published.
pub trait Storage: Send + Sync + 'static {
    /// A local folder for temporary archive files before they are stored.
    fn scratch_dir(&self) -> PathBuf;

    /// Stores the archive file at `key` unless an object exists there (see the module docs).
    /// `digest` is the file's size and digests, computed when it was written: no backend reads
    /// the file to hash it again.
    fn put_archive(
        &self,
        key: &str,
        file: &Path,
        digest: &ArchiveDigest,
    ) -> impl Future<Output = Result<Stored, StorageError>> + Send;

    /// Replaces the object at `key` atomically.
    fn put_replace(&self, key: &str, bytes: Vec<u8>) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Reads the object at `key`, if any.
    fn get(&self, key: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;

    /// Whether an object exists at `key`.
    fn exists(&self, key: &str) -> impl Future<Output = Result<bool, StorageError>> + Send;

    /// Deletes the object at `key` if present (metadata only; archives are never deleted).
    fn delete(&self, key: &str) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Makes every write so far durable (for a local folder: fsync the directories that gained
    /// names). Called before the manifest records archives, so a crash never leaves a manifest that
    /// names an archive whose directory entry was lost.
    fn flush(&self) -> impl Future<Output = Result<(), StorageError>> + Send;
}

/// `<host>-<pid>-<random>`: a name for temp folders and consumer tags that no other process uses,
/// also when containers on several machines share a folder (their pids often coincide).
pub fn unique_process_name() -> String {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("{}-{}-{nanos:08x}", hostname(), std::process::id())
}

/// This machine's name, for temp folder and lock owner names.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Whether this process can use the storage: writes a small object under `.farm/probes/`, reads it
/// back and deletes it. Fails with the first error (an endpoint that does not answer, a key the
/// server refuses, a missing bucket, a read-only folder).
pub async fn probe(storage: &impl Storage) -> Result<(), StorageError> {
    let name = unique_process_name();
    let key = format!("{STATE_PREFIX}/probes/{name}");
    let body = format!("probe from {name}\n").into_bytes();
    storage.put_replace(&key, body.clone()).await?;
    let read = storage.get(&key).await?;
    storage.delete(&key).await?;
    if read.as_deref() != Some(body.as_slice()) {
        return Err(StorageError::Remote {
            key,
            message: "a probe object read back differs from what was written".to_owned(),
        });
    }
    Ok(())
}
