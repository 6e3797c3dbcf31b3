//! One coordinator per bucket: a lock object (`.farm/lock`) created only if absent, kept fresh by a
//! heartbeat, removed at the end. Two builds writing one repository's manifest and metadata would
//! lose each other's entries. A lock whose heartbeat stopped (a killed coordinator) is taken over
//! after [`STALE_AFTER`], or at once by a coordinator on the same host when the holder's process is
//! gone (a cron job restarted after a crash).
//!
//! The heartbeat reads the lock before refreshing it: if another coordinator took it over (this
//! one stalled, or both took over a stale lock at once), or no heartbeat succeeded for half of
//! [`STALE_AFTER`], the lock counts as lost and [`StorageLock::check`] fails, which the build
//! calls before every manifest or metadata write. Release deletes the lock only if it is ours.
//! What remains is a window of one heartbeat in which two coordinators may both believe they hold
//! it; S3 offers no compare-and-swap that every S3-compatible server implements.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use shared::storage::s3::S3Storage;
use shared::storage::{STATE_PREFIX, Storage, StorageError, Stored};
use tracing::{error, info, warn};

/// A lock not refreshed for this long belongs to a coordinator that is gone.
pub const STALE_AFTER: Duration = Duration::from_secs(5 * 60);
/// How often the holder refreshes it.
const HEARTBEAT: Duration = Duration::from_secs(30);

fn key() -> String {
    format!("{STATE_PREFIX}/lock")
}

#[derive(Debug, Serialize, Deserialize)]
struct LockBody {
    owner: String,
    build_id: String,
    /// Seconds since the Unix epoch of the last heartbeat.
    heartbeat: u64,
    /// The holder's host name and process id (absent in locks of older farms).
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    pid: Option<u32>,
}

impl LockBody {
    /// Whether the holder is a process of this host that no longer runs.
    fn holder_process_gone(&self) -> bool {
        match (&self.host, self.pid) {
            (Some(host), Some(pid)) => {
                *host == shared::storage::hostname()
                    && pid != std::process::id()
                    && !std::path::Path::new(&format!("/proc/{pid}")).exists()
            }
            _ => false,
        }
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The held lock; released when dropped (best effort) or by [`StorageLock::release`].
#[derive(Debug)]
pub struct StorageLock {
    storage: S3Storage,
    build_id: String,
    heartbeat: tokio::task::JoinHandle<()>,
    lost: std::sync::Arc<std::sync::atomic::AtomicBool>,
    released: bool,
}

/// Whether the lock object names this build.
async fn held_by(storage: &S3Storage, build_id: &str) -> Result<bool, StorageError> {
    let bytes = storage.get(&key()).await?;
    Ok(bytes.and_then(|b| serde_json::from_slice::<LockBody>(&b).ok()).is_some_and(|body| body.build_id == build_id))
}

impl StorageLock {
    /// Takes the lock or fails with [`StorageError::Locked`] naming the holder.
    pub async fn acquire(storage: &S3Storage, build_id: &str) -> Result<StorageLock, StorageError> {
        let owner = format!("{} pid {}", shared::storage::hostname(), std::process::id());
        let build_id = build_id.to_owned();
        let body_build_id = build_id.clone();
        let body = move |heartbeat| {
            serde_json::to_vec(&LockBody {
                owner: owner.clone(),
                build_id: body_build_id.clone(),
                heartbeat,
                host: Some(shared::storage::hostname()),
                pid: Some(std::process::id()),
            })
            .expect("lock body serialises")
        };
        for _ in 0..2 {
            let bytes = body(unix_seconds());
            let file = storage.scratch_dir().join("lock");
            std::fs::write(&file, &bytes).map_err(|source| StorageError::Io { key: key(), source })?;
            let digest =
                shared::archive::digest_file(&file).map_err(|source| StorageError::Io { key: key(), source })?;
            match storage.put_archive(&key(), &file, &digest).await {
                Ok(Stored::Created) | Ok(Stored::AlreadyIdentical) => {
                    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
                    let (refresher, body, flag, ours) =
                        (storage.clone(), body.clone(), std::sync::Arc::clone(&lost), build_id.clone());
                    let heartbeat = tokio::spawn(async move {
                        let mut last_success = tokio::time::Instant::now();
                        loop {
                            tokio::time::sleep(HEARTBEAT).await;
                            let refreshed = match held_by(&refresher, &ours).await {
                                Ok(true) => refresher.put_replace(&key(), body(unix_seconds())).await.map(|()| true),
                                Ok(false) => Ok(false),
                                Err(error) => Err(error),
                            };
                            match refreshed {
                                Ok(true) => last_success = tokio::time::Instant::now(),
                                Ok(false) => {
                                    error!("another coordinator took over the storage lock; this build stops writing");
                                    flag.store(true, std::sync::atomic::Ordering::SeqCst);
                                    return;
                                }
                                Err(error) => {
                                    warn!(%error, "cannot refresh the storage lock");
                                    if last_success.elapsed() > STALE_AFTER / 2 {
                                        error!(
                                            "the storage lock could not be refreshed for too long; it counts as lost"
                                        );
                                        flag.store(true, std::sync::atomic::Ordering::SeqCst);
                                        return;
                                    }
                                }
                            }
                        }
                    });
                    return Ok(StorageLock { storage: storage.clone(), build_id, heartbeat, lost, released: false });
                }
                Err(StorageError::Drift { .. }) => {
                    let held = storage.get(&key()).await?.unwrap_or_default();
                    let holder: Option<LockBody> = serde_json::from_slice(&held).ok();
                    let age = holder.as_ref().map_or(u64::MAX, |h| unix_seconds().saturating_sub(h.heartbeat));
                    let gone = holder.as_ref().is_some_and(LockBody::holder_process_gone);
                    if gone {
                        warn!(
                            age_seconds = age,
                            "taking over the storage lock of a coordinator process of this host that is gone"
                        );
                    } else if age < STALE_AFTER.as_secs() {
                        let holder = holder.expect("age is finite only for a parsed holder");
                        return Err(StorageError::Locked(format!(
                            "the bucket is in use by another coordinator ({}, build {}, heartbeat {age}s ago); \
                             if it is gone, its lock expires {}s after its last heartbeat",
                            holder.owner,
                            holder.build_id,
                            STALE_AFTER.as_secs()
                        )));
                    } else {
                        warn!(age_seconds = age, "taking over a stale storage lock");
                    }
                    storage.delete(&key()).await?;
                }
                Err(other) => return Err(other),
            }
        }
        Err(StorageError::Locked("another coordinator took the lock at the same moment".to_owned()))
    }

    /// Fails if the lock was lost (taken over, or not refreshed for too long).
    pub fn check(&self) -> Result<(), StorageError> {
        if self.lost.load(std::sync::atomic::Ordering::SeqCst) {
            Err(StorageError::Locked(
                "this coordinator lost the bucket lock (another coordinator took it over, or it could not be \
                 refreshed); nothing more is written"
                    .to_owned(),
            ))
        } else {
            Ok(())
        }
    }

    /// Removes the lock if it is still ours.
    pub async fn release(mut self) {
        self.heartbeat.abort();
        self.released = true;
        match held_by(&self.storage, &self.build_id).await {
            Ok(true) => match self.storage.delete(&key()).await {
                Ok(()) => info!("storage lock released"),
                Err(error) => warn!(%error, "cannot remove the storage lock; it expires by itself"),
            },
            Ok(false) => warn!("the storage lock is not ours any more; left as it is"),
            Err(error) => warn!(%error, "cannot read the storage lock; it expires by itself"),
        }
    }
}

impl Drop for StorageLock {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if !self.released {
            let (storage, build_id) = (self.storage.clone(), self.build_id.clone());
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    if held_by(&storage, &build_id).await.unwrap_or(false) {
                        let _ = storage.delete(&key()).await;
                    }
                });
            }
        }
    }
}
