//! Batched durability for archives stored in a local folder: temp files wait in a batch, one sync
//! makes the whole batch durable, then each gets its final name. No archive ever sits under its
//! final name before its bytes are on disk, and a build of a thousand archives makes tens of
//! syncs instead of a thousand.
//!
//! Whoever finds no sync running becomes the batch's leader on a blocking thread: it takes what is
//! waiting, makes it durable (`syncfs` of the file system on Linux, which the hard link requires
//! the temp file and the final name to share; elsewhere an `fsync` per file), links each file and
//! answers its waiter, and goes on while more is waiting. Archives that arrive during a sync form
//! the next batch.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

type Answer = Result<super::Stored, super::StorageError>;

/// One archive waiting for its final name.
struct Pending {
    /// The temp file, already complete.
    file: PathBuf,
    /// What to do once it is durable (give it its final name), answered to the waiter.
    link: Box<dyn FnOnce() -> Answer + Send>,
    done: oneshot::Sender<Answer>,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Pending>,
    leader: bool,
}

/// The batches of one storage (shared by its clones).
#[derive(Clone, Default)]
pub(super) struct Batcher {
    queue: Arc<Mutex<Queue>>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher").finish_non_exhaustive()
    }
}

impl Batcher {
    /// Makes `file` durable with whatever else is waiting, then runs `link`; returns its answer.
    pub(super) async fn store(&self, file: PathBuf, link: impl FnOnce() -> Answer + Send + 'static) -> Answer {
        let (done, answer) = oneshot::channel();
        let name = file.display().to_string();
        let lead = {
            let mut queue = self.queue.lock().expect("batch queue");
            queue.waiting.push(Pending { file, link: Box::new(link), done });
            !std::mem::replace(&mut queue.leader, true)
        };
        if lead {
            let batcher = self.clone();
            // Not awaited: the leader answers every waiter, this one included, also if this task
            // is dropped.
            tokio::task::spawn_blocking(move || batcher.lead());
        }
        answer.await.unwrap_or_else(|_| {
            Err(super::StorageError::Io { key: name, source: std::io::Error::other("the batched sync stopped") })
        })
    }

    fn lead(&self) {
        loop {
            let batch = {
                let mut queue = self.queue.lock().expect("batch queue");
                if queue.waiting.is_empty() {
                    queue.leader = false;
                    return;
                }
                std::mem::take(&mut queue.waiting)
            };
            let synced = sync(&batch);
            for pending in batch {
                let answer = match &synced {
                    Ok(()) => (pending.link)(),
                    Err(error) => Err(super::StorageError::Io {
                        key: pending.file.display().to_string(),
                        source: std::io::Error::new(error.kind(), format!("cannot sync: {error}")),
                    }),
                };
                let _ = pending.done.send(answer);
            }
        }
    }
}

/// Makes every file of the batch durable.
fn sync(batch: &[Pending]) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // One call per file system the batch is on (the hard link that follows needs each temp
        // file and its final name on one file system; the temp folders are in the output).
        use std::os::unix::fs::MetadataExt as _;
        let mut devices = std::collections::BTreeSet::new();
        for pending in batch {
            let handle = std::fs::File::open(&pending.file)?;
            if devices.insert(handle.metadata()?.dev()) {
                rustix::fs::syncfs(&handle).map_err(std::io::Error::from)?;
            }
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        for pending in batch {
            std::fs::File::open(&pending.file)?.sync_all()?;
        }
        Ok(())
    }
}
