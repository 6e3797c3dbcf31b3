//! The in-process job queue of the embedded mode.
//!
//! It carries the same encoded [`BuildJob`] and [`BuildResult`] messages as the broker will, so the
//! embedded mode exercises the wire format on every build. Jobs are consumed by any number of
//! worker tasks; the queue closes when the publisher is dropped and the last job has been taken.
//! It holds at most `capacity` jobs: the publisher waits for room, so a build of twenty thousand
//! jobs does not keep twenty thousand encoded copies.

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};

use crate::messages::{BuildJob, BuildResult, MessageError};

/// Creates a queue of at most `capacity` jobs (at least 1): the coordinator keeps the
/// [`JobPublisher`] and [`ResultReceiver`], workers share clones of the [`JobReceiver`] and
/// [`ResultPublisher`].
pub fn in_process(capacity: usize) -> (JobPublisher, JobReceiver, ResultPublisher, ResultReceiver) {
    let (job_tx, job_rx) = mpsc::channel(capacity.max(1));
    let (result_tx, result_rx) = mpsc::unbounded_channel();
    (
        JobPublisher(job_tx),
        JobReceiver(Arc::new(Mutex::new(job_rx))),
        ResultPublisher(result_tx),
        ResultReceiver(result_rx),
    )
}

/// Publishes jobs. Dropping it closes the queue for new jobs.
#[derive(Debug)]
pub struct JobPublisher(mpsc::Sender<Vec<u8>>);

impl JobPublisher {
    /// Enqueues a job once there is room; false if every worker is gone.
    pub async fn publish(&self, job: &BuildJob) -> bool {
        self.0.send(job.encode()).await.is_ok()
    }
}

/// Takes jobs; clones share one queue.
#[derive(Debug, Clone)]
pub struct JobReceiver(Arc<Mutex<mpsc::Receiver<Vec<u8>>>>);

impl JobReceiver {
    /// The next job, or `None` once the queue is closed and empty.
    pub async fn next(&self) -> Option<Result<BuildJob, MessageError>> {
        let bytes = self.0.lock().await.recv().await?;
        Some(BuildJob::decode(&bytes))
    }
}

/// Publishes results.
#[derive(Debug, Clone)]
pub struct ResultPublisher(mpsc::UnboundedSender<Vec<u8>>);

impl ResultPublisher {
    /// Sends a result to the coordinator; false if it is gone.
    pub fn publish(&self, result: &BuildResult) -> bool {
        self.0.send(result.encode()).is_ok()
    }
}

/// Receives results.
#[derive(Debug)]
pub struct ResultReceiver(mpsc::UnboundedReceiver<Vec<u8>>);

impl ResultReceiver {
    /// The next result, or `None` once every publisher is gone.
    pub async fn next(&mut self) -> Option<Result<BuildResult, MessageError>> {
        let bytes = self.0.recv().await?;
        Some(BuildResult::decode(&bytes))
    }
}
