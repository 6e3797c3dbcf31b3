//! Getting jobs built: in-process workers (embedded mode) or RabbitMQ (distributed mode). Both
//! send what comes back as [`Event`]s to the build loop, which does not care which one runs.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use shared::amqp::{self, AmqpError, Topology};
use shared::config::QueueConfig;
use shared::git::GitCache;
use shared::messages::{BuildId, BuildJob, BuildResult};
use shared::storage::AnyStorage;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Something the workers sent back.
#[derive(Debug)]
pub enum Event {
    /// A job's result.
    Result(BuildResult),
    /// A message was dead-lettered while this build ran.
    DeadLetter(DeadLetter),
    /// Every job is with the broker (confirmed).
    Published,
}

/// A dead-lettered message, as far as it can be read.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// The job id, if the body is a job.
    pub job_id: Option<String>,
    /// The build id, if the body is a job.
    pub build_id: Option<String>,
    /// Why it was dead-lettered.
    pub reason: String,
    /// The start of the body, for messages that are not jobs.
    pub excerpt: String,
}

/// Runs the jobs through in-process workers (`pipeline`: builds and uploads at once) over the
/// in-process queue, until all are done or `done` (then jobs not started are dropped; a job being
/// written finishes in the background).
pub async fn in_process(
    jobs: Vec<BuildJob>,
    events: mpsc::Sender<Event>,
    cache: Arc<GitCache>,
    storage: Arc<AnyStorage>,
    pipeline: worker::Pipeline,
    done: CancellationToken,
) -> Result<(), AmqpError> {
    // Room for two rounds of every build and upload slot: the workers never wait for a job,
    // and each job is encoded (and its planned form dropped) only shortly before it is taken.
    let (publisher, job_receiver, result_publisher, mut results) =
        shared::queue::in_process(2 * pipeline.jobs_in_flight());
    let pool = tokio::spawn(worker::run_in_process(job_receiver, result_publisher, cache, storage, pipeline));
    let feeder = tokio::spawn(async move {
        for job in jobs {
            if !publisher.publish(&job).await {
                break;
            }
        }
    });
    loop {
        let result = tokio::select! {
            result = results.next() => match result {
                Some(result) => result,
                None => break,
            },
            () = done.cancelled() => {
                feeder.abort();
                pool.abort();
                return Ok(());
            }
        };
        match result {
            Ok(result) => {
                if events.send(Event::Result(result)).await.is_err() {
                    break;
                }
            }
            Err(error) => warn!(%error, "undecodable result from the in-process queue"),
        }
    }
    let _ = pool.await;
    Ok(())
}

/// Publishes the jobs to RabbitMQ (confirmed) and forwards results and dead letters until `done`.
/// Survives broker restarts: reconnects with backoff, republishes what was not confirmed, and
/// consumes the durable results queue again. Gives up only when the broker stays unreachable for
/// `result_timeout`.
pub async fn amqp(
    queue: QueueConfig,
    build_id: BuildId,
    jobs: Vec<BuildJob>,
    events: mpsc::Sender<Event>,
    done: CancellationToken,
) -> Result<(), AmqpError> {
    if jobs.is_empty() {
        // Nothing to build, nothing to wait for.
        return Ok(());
    }
    let topology = Topology::new(&queue);
    let name = format!("farm-coordinator {} build {}", shared::storage::hostname(), build_id.0);
    let broker = amqp::Broker { url: &queue.url, name: &name, give_up: Some(queue.result_timeout), fatal_ends: true };
    let mut build =
        BuildSession { topology: &topology, build_id: &build_id, unpublished: jobs, events: &events, done: &done };
    amqp::reconnecting(&broker, &done, &mut build).await?;
    Ok(())
}

/// One build's broker sessions: what is not confirmed yet is published (again), then results and
/// dead letters are forwarded until `done`.
struct BuildSession<'a> {
    topology: &'a Topology,
    build_id: &'a BuildId,
    /// Jobs the broker has not confirmed yet; a session lost mid-way leaves the rest here.
    unpublished: Vec<BuildJob>,
    events: &'a mpsc::Sender<Event>,
    done: &'a CancellationToken,
}

impl amqp::Session for BuildSession<'_> {
    type Output = ();

    async fn run(&mut self, connection: &lapin::Connection) -> Result<amqp::SessionEnd<()>, AmqpError> {
        let (topology, build_id, events, done) = (self.topology, self.build_id, self.events, self.done);
        tokio::select! {
            biased;
            outcome = session(connection, topology, build_id, &mut self.unpublished, events, done) => {
                if let Err(error) = outcome {
                    if !self.unpublished.is_empty() {
                        let unpublished = self.unpublished.len();
                        info!(unpublished, "jobs the broker did not confirm are published again once reconnected");
                    }
                    return Err(error);
                }
            }
            // Publishing can block (a broker alarm withholds confirms): `done` still ends it.
            _ = done.cancelled() => {}
        }
        // Every result is in (or the build gave up waiting): the queue is ours alone.
        let delete = async {
            let channel = connection.create_channel().await?;
            let name = topology.results(build_id);
            channel.queue_delete(name.as_str().into(), QueueDeleteOptions::default()).await
        };
        if let Ok(Err(error)) = tokio::time::timeout(Duration::from_secs(5), delete).await {
            warn!(%error, "cannot delete the results queue; it expires by itself");
        }
        let _ = connection.close(200, "build done".into()).await;
        Ok(amqp::SessionEnd::Finished(()))
    }
}

/// Jobs published per batch before waiting for their confirms.
const PUBLISH_BATCH: usize = 256;

async fn session(
    connection: &lapin::Connection,
    topology: &Topology,
    build_id: &BuildId,
    unpublished: &mut Vec<BuildJob>,
    events: &mpsc::Sender<Event>,
    done: &CancellationToken,
) -> Result<(), AmqpError> {
    let channel = amqp::open_channel(connection, topology).await?;
    let results_queue = topology.declare_results(&channel, build_id).await?;
    let watch_queue = topology.declare_dead_letter_watch(&channel).await?;
    let mut results = channel
        .basic_consume(results_queue.as_str().into(), "".into(), BasicConsumeOptions::default(), FieldTable::default())
        .await?;
    let mut dead_letters = channel
        .basic_consume(
            watch_queue.as_str().into(),
            "".into(),
            BasicConsumeOptions { no_ack: true, ..BasicConsumeOptions::default() },
            FieldTable::default(),
        )
        .await?;

    // Publish in batches; a job leaves `unpublished` only once the broker confirmed it, so a
    // broker lost mid-way gets the rest (and maybe a few twice, which is harmless) next session.
    if !unpublished.is_empty() {
        let total = unpublished.len();
        while !unpublished.is_empty() {
            let batch = unpublished.len().min(PUBLISH_BATCH);
            let mut confirms = Vec::with_capacity(batch);
            for job in &unpublished[..batch] {
                let confirm = channel
                    .basic_publish(
                        "".into(),
                        topology.jobs().into(),
                        BasicPublishOptions::default(),
                        &job.encode(),
                        amqp::job_properties(job, &results_queue),
                    )
                    .await?;
                confirms.push(confirm);
            }
            for confirm in confirms {
                if !confirm.await?.is_ack() {
                    return Err(AmqpError::Nacked);
                }
            }
            unpublished.drain(..batch);
        }
        info!(jobs = total, queue = %topology.jobs(), "jobs published");
    }
    if events.send(Event::Published).await.is_err() {
        return Ok(());
    }

    loop {
        tokio::select! {
            biased;
            _ = done.cancelled() => return Ok(()),
            delivery = results.next() => {
                let delivery = match delivery {
                    Some(delivery) => delivery?,
                    None => return Err(AmqpError::ConsumerClosed),
                };
                match BuildResult::decode(&delivery.data) {
                    Ok(result) => {
                        if events.send(Event::Result(result)).await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(error) => warn!(%error, "unreadable result ignored"),
                }
                channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await?;
            }
            delivery = dead_letters.next() => {
                let delivery = match delivery {
                    Some(delivery) => delivery?,
                    None => return Err(AmqpError::ConsumerClosed),
                };
                let body: Option<serde_json::Value> = serde_json::from_slice(&delivery.data).ok();
                let field = |name: &str| body.as_ref().and_then(|b| b.get(name)).and_then(|v| v.as_str()).map(str::to_owned);
                let excerpt: String = String::from_utf8_lossy(&delivery.data[..delivery.data.len().min(120)]).into_owned();
                let letter = DeadLetter {
                    job_id: field("job_id"),
                    build_id: field("build_id"),
                    reason: amqp::dead_letter_reason(&delivery.properties),
                    excerpt,
                };
                if events.send(Event::DeadLetter(letter)).await.is_err() {
                    return Ok(());
                }
            }
        }
    }
}
