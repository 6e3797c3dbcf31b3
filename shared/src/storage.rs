//! Object storage for archives and metadata. The embedded mode uses a local folder.
//!
//! Two write paths with different guarantees:
//! - archives are created only if absent; an existing object with the same bytes is accepted (a
//!   redelivered job is harmless), one with different bytes is refused as drift and kept
//!   (invariant 2: a published name@version never changes);
//! - metadata files are replaced atomically (temp file + rename), so a reader never sees a
//!   half-written file.

use std::future::Future;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha1::Digest as _;

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

/// Whether a folder may be a farm's output, before anything is written into it: never `/` or the
/// home folder, and not a Composer repository the farm did not make (one with `packages.json` or
/// `p2/` but no `.farm/`) unless `adopt_existing`. Returns a warning for a non-empty folder the
/// farm did not make (the farm only writes `packages/`, `p2/`, `packages.json` and `.farm/`).
pub fn check_output_folder(root: &Path, adopt_existing: bool) -> Result<Option<String>, StorageError> {
    let refuse = |reason: &str| Err(StorageError::RefusedOutput { path: root.to_owned(), reason: reason.to_owned() });
    let canonical = match std::fs::canonicalize(root) {
        Ok(path) => path,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StorageError::Io { key: root.display().to_string(), source }),
    };
    if canonical.parent().is_none() {
        return refuse("the file system root cannot be an output folder");
    }
    let home = std::env::var_os("HOME").and_then(|home| std::fs::canonicalize(home).ok());
    if home.as_deref() == Some(canonical.as_path()) {
        return refuse("the home folder cannot be an output folder; use a folder of its own");
    }
    if canonical.join(STATE_PREFIX).is_dir() {
        return Ok(None);
    }
    if canonical.join("packages.json").exists() || canonical.join("p2").exists() {
        if adopt_existing {
            return Ok(Some(format!(
                "{} holds a Composer repository the farm did not make; its packages.json and p2/ files are replaced (--adopt-existing)",
                root.display()
            )));
        }
        return refuse(
            "holds a Composer repository the farm did not make (packages.json or p2/ without .farm/); \
             its metadata would be replaced. Take it over with `coordinator adopt --from <it>` into a new folder, \
             or pass --adopt-existing to build into it",
        );
    }
    let non_empty = std::fs::read_dir(&canonical)
        .map_err(|source| StorageError::Io { key: root.display().to_string(), source })?
        .next()
        .is_some();
    Ok(non_empty.then(|| {
        format!(
            "{} is not empty and was not made by the farm; only packages/, p2/, packages.json and .farm/ are written",
            root.display()
        )
    }))
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

/// A local folder as storage.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
    /// Exclusive lock on `.farm/lock`, held while any clone of this storage lives: two builds
    /// into one folder would race on the manifest and on each other's temp files.
    _lock: Option<std::sync::Arc<std::fs::File>>,
    /// Directories that gained or replaced names since the last [`Storage::flush`].
    dirty: std::sync::Arc<std::sync::Mutex<std::collections::BTreeSet<PathBuf>>>,
    /// A worker's own temp folder (the coordinator uses `.farm/tmp`).
    scratch: Option<PathBuf>,
}

impl LocalStorage {
    /// Storage rooted at `root`, locked for this process; leftovers of an interrupted run's temp
    /// folder are removed. Fails with [`StorageError::Busy`] if another process holds it.
    pub fn open(root: impl Into<PathBuf>) -> Result<LocalStorage, StorageError> {
        let root = root.into();
        let state = root.join(STATE_PREFIX);
        std::fs::create_dir_all(&state)
            .map_err(|source| StorageError::Io { key: state.display().to_string(), source })?;
        let lock_path = state.join("lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| StorageError::Io { key: lock_path.display().to_string(), source })?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StorageError::Busy(root)),
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(StorageError::Io { key: lock_path.display().to_string(), source });
            }
        }
        let storage =
            LocalStorage { root, _lock: Some(std::sync::Arc::new(lock)), dirty: Default::default(), scratch: None };
        let scratch = storage.scratch_dir();
        if scratch.exists() {
            std::fs::remove_dir_all(&scratch)
                .map_err(|source| StorageError::Io { key: scratch.display().to_string(), source })?;
        }
        std::fs::create_dir_all(&scratch)
            .map_err(|source| StorageError::Io { key: scratch.display().to_string(), source })?;
        Ok(storage)
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        Ok(self.root.join(key))
    }

    /// Creates the parent folders of `path` and remembers them (and their parents, which may have
    /// gained a folder) for the next flush.
    fn ensure_parent(&self, key: &str, path: &Path) -> Result<(), StorageError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| StorageError::Io { key: key.to_owned(), source })?;
            let mut dirty = self.dirty.lock().expect("dirty set lock");
            let mut current = Some(parent);
            while let Some(dir) = current.filter(|d| d.starts_with(&self.root)) {
                dirty.insert(dir.to_owned());
                current = dir.parent();
            }
        }
        Ok(())
    }

    /// Removes the temp folder (end of a build).
    pub fn cleanup(&self) {
        let _ = std::fs::remove_dir_all(self.scratch_dir());
    }

    /// The same folder for a `worker` process that shares it with a coordinator (a network
    /// filesystem, or one machine): no lock (the coordinator holds it), and a temp folder of its
    /// own under `.farm/tmp-workers/`.
    pub fn open_for_worker(root: impl Into<PathBuf>) -> Result<LocalStorage, StorageError> {
        let root = root.into();
        let state = root.join(STATE_PREFIX);
        std::fs::create_dir_all(&state)
            .map_err(|source| StorageError::Io { key: state.display().to_string(), source })?;
        let scratch = state.join("tmp-workers").join(unique_process_name());
        std::fs::create_dir_all(&scratch)
            .map_err(|source| StorageError::Io { key: scratch.display().to_string(), source })?;
        Ok(LocalStorage { root, _lock: None, dirty: Default::default(), scratch: Some(scratch) })
    }
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

impl Storage for LocalStorage {
    fn scratch_dir(&self) -> PathBuf {
        self.scratch.clone().unwrap_or_else(|| self.root.join(STATE_PREFIX).join("tmp"))
    }

    async fn put_archive(&self, key: &str, file: &Path, digest: &ArchiveDigest) -> Result<Stored, StorageError> {
        let sha1 = digest.sha1.as_str();
        let path = self.path(key)?;
        self.ensure_parent(key, &path)?;
        let io = |source| StorageError::Io { key: key.to_owned(), source };
        // Temp files are created 0600; published files must be readable by the web server.
        set_readable(file).map_err(io)?;
        // The bytes must be on disk before the name is: the manifest and metadata written after
        // this must never point at an archive a crash could truncate.
        std::fs::File::open(file).and_then(|f| f.sync_all()).map_err(io)?;
        // A hard link creates the name atomically and fails if it exists: no reader ever sees a
        // partial archive, and two writers cannot both win.
        match std::fs::hard_link(file, &path) {
            Ok(()) => Ok(Stored::Created),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let existing = sha1_of_file(&path).map_err(io)?;
                if existing == sha1 {
                    Ok(Stored::AlreadyIdentical)
                } else {
                    Err(StorageError::Drift { key: key.to_owned(), existing_sha1: existing, new_sha1: sha1.to_owned() })
                }
            }
            Err(e) => Err(io(e)),
        }
    }

    async fn put_replace(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.ensure_parent(key, &path)?;
        let io = |source| StorageError::Io { key: key.to_owned(), source };
        let scratch = self.scratch_dir();
        std::fs::create_dir_all(&scratch).map_err(io)?;
        let mut temp = tempfile::NamedTempFile::new_in(&scratch).map_err(io)?;
        std::io::Write::write_all(&mut temp, &bytes).map_err(io)?;
        temp.as_file().sync_all().map_err(io)?;
        set_readable(temp.path()).map_err(io)?;
        temp.persist(&path).map_err(|e| io(e.error))?;
        Ok(())
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StorageError::Io { key: key.to_owned(), source }),
        }
    }

    async fn exists(&self, key: &str) -> Result<bool, StorageError> {
        Ok(self.path(key)?.is_file())
    }

    async fn flush(&self) -> Result<(), StorageError> {
        let dirs = std::mem::take(&mut *self.dirty.lock().expect("dirty set lock"));
        for dir in dirs {
            std::fs::File::open(&dir)
                .and_then(|handle| handle.sync_all())
                .map_err(|source| StorageError::Io { key: dir.display().to_string(), source })?;
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        match std::fs::remove_file(self.path(key)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StorageError::Io { key: key.to_owned(), source: e })
            }
            _ => Ok(()),
        }
    }
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

/// The configured backend: a local folder or an S3 bucket (the trait is not object-safe, so an
/// enum dispatches).
#[derive(Debug, Clone)]
pub enum AnyStorage {
    /// A local folder.
    Local(LocalStorage),
    /// An S3 bucket.
    S3(crate::s3::S3Storage),
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

/// Mode 0644: published files are world-readable (they are served as-is).
fn set_readable(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
}

/// Lower-case hex SHA-1 of a file.
pub fn sha1_of_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha1::Sha1::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn archives_are_never_overwritten_with_other_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).unwrap();
        let write = |bytes: &[u8]| {
            let path = storage.scratch_dir().join(format!("t{}", bytes.len()));
            std::fs::write(&path, bytes).unwrap();
            let digest = crate::archive::digest_file(&path).unwrap();
            (path, digest)
        };
        let (a, sha_a) = write(b"one");
        assert_eq!(storage.put_archive("packages/v/p-1.zip", &a, &sha_a).await.unwrap(), Stored::Created);
        assert_eq!(storage.put_archive("packages/v/p-1.zip", &a, &sha_a).await.unwrap(), Stored::AlreadyIdentical);
        let (b, sha_b) = write(b"other");
        let err = storage.put_archive("packages/v/p-1.zip", &b, &sha_b).await.unwrap_err();
        assert!(matches!(err, StorageError::Drift { .. }), "{err}");
        assert_eq!(std::fs::read(dir.path().join("packages/v/p-1.zip")).unwrap(), b"one");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("packages/v/p-1.zip")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o644);
    }

    #[test]
    fn a_second_opener_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = LocalStorage::open(dir.path()).unwrap();
        assert!(matches!(LocalStorage::open(dir.path()), Err(StorageError::Busy(_))));
        drop(first);
        LocalStorage::open(dir.path()).unwrap();
    }

    #[tokio::test]
    async fn keys_cannot_escape_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).unwrap();
        assert!(matches!(storage.put_replace("../x", vec![]).await, Err(StorageError::InvalidKey(_))));
        storage.put_replace("p2/a/b.json", b"{}".to_vec()).await.unwrap();
        assert_eq!(storage.get("p2/a/b.json").await.unwrap().unwrap(), b"{}");
        assert!(storage.get("p2/a/c.json").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn names_the_file_system_cannot_hold_are_permanent_failures() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).unwrap();
        let file = dir.path().join("a.zip");
        std::fs::write(&file, b"zip").unwrap();
        let digest = crate::archive::digest_file(&file).unwrap();
        for key in [format!("packages/acme/{}.zip", "a".repeat(300)), "packages/acme/a\0b.zip".to_owned()] {
            let error = storage.put_archive(&key, &file, &digest).await.unwrap_err();
            assert!(!error.is_transient(), "{key:?}: {error} counted as transient");
        }
    }

    #[test]
    fn output_folders_the_farm_did_not_make() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(check_output_folder(&dir.path().join("new"), false).unwrap(), None);
        assert_eq!(check_output_folder(dir.path(), false).unwrap(), None);
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        assert!(check_output_folder(dir.path(), false).unwrap().unwrap().contains("not empty"));
        std::fs::write(dir.path().join("packages.json"), b"{}").unwrap();
        assert!(matches!(check_output_folder(dir.path(), false), Err(StorageError::RefusedOutput { .. })));
        assert!(check_output_folder(dir.path(), true).unwrap().unwrap().contains("--adopt-existing"));
        std::fs::create_dir(dir.path().join(STATE_PREFIX)).unwrap();
        assert_eq!(check_output_folder(dir.path(), false).unwrap(), None);
        assert!(matches!(check_output_folder(Path::new("/"), true), Err(StorageError::RefusedOutput { .. })));
    }
}
