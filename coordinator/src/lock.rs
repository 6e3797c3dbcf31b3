//! One coordinator per bucket: a lock object (`.farm/lock`) created only if absent, kept fresh by a
//! heartbeat, removed at the end. Two builds writing one repository's manifest and metadata would
//! lose each other's entries. A lock whose heartbeat stopped (a killed coordinator) is taken over
//! after [`STALE_AFTER`].

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use shared::s3::S3Storage;
use shared::storage::{STATE_PREFIX, Storage, StorageError, Stored};
use tracing::{info, warn};

/// A lock not refreshed for this long belongs to a coordinator that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(5 * 60);
/// How often the holder refreshes it.
const HEARTBEAT: Duration = Duration::from_secs(60);

fn key() -> String {
    format!("{STATE_PREFIX}/lock")
}

#[derive(Debug, Serialize, Deserialize)]
struct LockBody {
    owner: String,
    build_id: String,
    /// Seconds since the Unix epoch of the last heartbeat.
    heartbeat: u64,
}

fn now() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The held lock; released when dropped (best effort) or by [`StorageLock::release`].
#[derive(Debug)]
pub struct StorageLock {
    storage: S3Storage,
    heartbeat: tokio::task::JoinHandle<()>,
    released: bool,
}

impl StorageLock {
    /// Takes the lock or fails with [`StorageError::Locked`] naming the holder.
    pub async fn acquire(storage: &S3Storage, build_id: &str) -> Result<StorageLock, StorageError> {
        let owner = format!("{} pid {}", shared::storage::hostname(), std::process::id());
        let build_id = build_id.to_owned();
        let body = move |heartbeat| {
            serde_json::to_vec(&LockBody { owner: owner.clone(), build_id: build_id.clone(), heartbeat })
                .expect("lock body serialises")
        };
        for _ in 0..2 {
            let bytes = body(now());
            let file = storage.scratch_dir().join("lock");
            std::fs::write(&file, &bytes).map_err(|source| StorageError::Io { key: key(), source })?;
            let sha1 =
                shared::storage::sha1_of_file(&file).map_err(|source| StorageError::Io { key: key(), source })?;
            match storage.put_archive(&key(), &file, &sha1).await {
                Ok(Stored::Created) | Ok(Stored::AlreadyIdentical) => {
                    let refresher = storage.clone();
                    let body = body.clone();
                    let heartbeat = tokio::spawn(async move {
                        loop {
                            tokio::time::sleep(HEARTBEAT).await;
                            if let Err(error) = refresher.put_replace(&key(), body(now())).await {
                                warn!(%error, "cannot refresh the storage lock");
                            }
                        }
                    });
                    return Ok(StorageLock { storage: storage.clone(), heartbeat, released: false });
                }
                Err(StorageError::Drift { .. }) => {
                    let held = storage.get(&key()).await?.unwrap_or_default();
                    let holder: Option<LockBody> = serde_json::from_slice(&held).ok();
                    let age = holder.as_ref().map_or(u64::MAX, |h| now().saturating_sub(h.heartbeat));
                    if age < STALE_AFTER.as_secs() {
                        let holder = holder.expect("age is finite only for a parsed holder");
                        return Err(StorageError::Locked(format!(
                            "the bucket is in use by another coordinator ({}, build {}, heartbeat {age}s ago); \
                             if it is gone, its lock expires {}s after its last heartbeat",
                            holder.owner,
                            holder.build_id,
                            STALE_AFTER.as_secs()
                        )));
                    }
                    warn!(age_seconds = age, "taking over a stale storage lock");
                    storage.delete(&key()).await?;
                }
                Err(other) => return Err(other),
            }
        }
        Err(StorageError::Locked("another coordinator took the lock at the same moment".to_owned()))
    }

    /// Removes the lock.
    pub async fn release(mut self) {
        self.heartbeat.abort();
        self.released = true;
        match self.storage.delete(&key()).await {
            Ok(()) => info!("storage lock released"),
            Err(error) => warn!(%error, "cannot remove the storage lock; it expires by itself"),
        }
    }
}

impl Drop for StorageLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if !self.released {
            let storage = self.storage.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = storage.delete(&key()).await;
                });
            }
        }
    }
}
