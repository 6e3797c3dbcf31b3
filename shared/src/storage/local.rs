//! A local folder as storage (the embedded mode, or a folder a worker shares with its
//! coordinator), and the check of a folder before it becomes a farm's output.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha1::Digest as _;

use super::api::{STATE_PREFIX, Storage, StorageError, Stored, check_key, unique_process_name};
use crate::archive::ArchiveDigest;

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
    /// Archives waiting for one sync to make them durable.
    batches: super::durable::Batcher,
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
        let storage = LocalStorage {
            root,
            _lock: Some(std::sync::Arc::new(lock)),
            dirty: Default::default(),
            scratch: None,
            batches: Default::default(),
        };
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
        Ok(LocalStorage {
            root,
            _lock: None,
            dirty: Default::default(),
            scratch: Some(scratch),
            batches: Default::default(),
        })
    }
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
        // this must never point at an archive a crash could truncate. One sync covers every
        // archive waiting at that moment.
        let (file, key, sha1) = (file.to_owned(), key.to_owned(), sha1.to_owned());
        self.batches.store(file.clone(), move || link_archive(&file, &path, &key, &sha1)).await
    }

    async fn put_replace(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
        let path = self.path(key)?;
        self.ensure_parent(key, &path)?;
        let io = |source| StorageError::Io { key: key.to_owned(), source };
        let scratch = self.scratch_dir();
        std::fs::create_dir_all(&scratch).map_err(io)?;
        let mut temp = tempfile::NamedTempFile::new_in(&scratch).map_err(io)?;
        std::io::Write::write_all(&mut temp, &bytes).map_err(io)?;
        set_readable(temp.path()).map_err(io)?;
        // Durable before it replaces the old file (with whatever else is waiting), then renamed.
        let temp = temp.into_temp_path();
        let file = temp.to_path_buf();
        let key = key.to_owned();
        self.batches
            .store(file, move || {
                temp.persist(&path).map(|()| Stored::Created).map_err(|e| StorageError::Io { key, source: e.error })
            })
            .await
            .map(drop)
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

/// Gives a durable temp file its final name. A hard link creates the name atomically and fails
/// if it exists: no reader ever sees a partial archive, and two writers cannot both win.
fn link_archive(file: &Path, path: &Path, key: &str, sha1: &str) -> Result<Stored, StorageError> {
    let io = |source| StorageError::Io { key: key.to_owned(), source };
    match std::fs::hard_link(file, path) {
        Ok(()) => Ok(Stored::Created),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = sha1_of_file(path).map_err(io)?;
            if existing == sha1 {
                Ok(Stored::AlreadyIdentical)
            } else {
                Err(StorageError::Drift { key: key.to_owned(), existing_sha1: existing, new_sha1: sha1.to_owned() })
            }
        }
        Err(e) => Err(io(e)),
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
