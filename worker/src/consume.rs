//! The distributed worker loop: consume jobs from RabbitMQ until stopped, build, store, report.
//!
//! Per delivery, in this order: build the archive, store it (create-if-absent), publish the
//! result (confirmed by the broker), then acknowledge the job. A worker that dies at any point
//! leaves the job unacknowledged, so the broker hands it to another worker; storing is idempotent,
//! so the redelivery is harmless. A failure that may pass (fetch, storage) is retried through the
//! delay queue up to `max_attempts`; then, like a message that is not a job at all, it is
//! dead-lettered with the reason. The loop reconnects with backoff when the broker goes away.
//!
//! A worker that cannot store takes no jobs: before it consumes, it probes its storage (a small
//! write, read and delete); while the probe fails it says why at ERROR level and tries again with
//! backoff. When a job fails to store during a session, the probe runs again (once at a time):
//! if the storage itself is unusable (an endpoint gone, a key refused), that job and every job in
//! hand go back to the queue as they came, with their attempts unspent, and the worker stops
//! consuming until the probe passes. Healthy workers beside it build them; nothing is
//! dead-lettered for one worker's bad setting. `worker check` runs the same probe once.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel};
use shared::amqp::{self, AmqpError, Topology};
use shared::config::{QueueConfig, StorageKind, WorkerConfig};
use shared::git::GitCache;
use shared::messages::{BuildJob, BuildResult, MessageError, Outcome, SCHEMA_VERSION};
use shared::storage::{AnyStorage, LocalStorage, Storage as _};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// What a worker process needs.
#[derive(Debug, Clone)]
pub struct WorkerContext {
    /// Broker settings.
    pub queue: QueueConfig,
    /// Git clones (the only local state).
    pub cache: Arc<GitCache>,
    /// Where archives go.
    pub storage: Arc<AnyStorage>,
    /// Archives built and stored at once; its jobs in flight are the prefetch.
    pub pipeline: crate::Pipeline,
    /// Name shown in the broker's connection list.
    pub name: String,
    /// Whether the storage works from here.
    pub health: StorageHealth,
}

/// Whether this worker's storage works, shared by its job tasks: set unusable when a store fails
/// and the probe confirms it; the session watches it and stops consuming.
#[derive(Debug, Clone)]
pub struct StorageHealth {
    unusable: Arc<tokio::sync::watch::Sender<bool>>,
    probing: Arc<tokio::sync::Mutex<()>>,
}

impl Default for StorageHealth {
    fn default() -> Self {
        StorageHealth { unusable: Arc::new(tokio::sync::watch::channel(false).0), probing: Arc::default() }
    }
}

impl StorageHealth {
    /// Whether the storage was found unusable (and not found working since).
    pub fn is_unusable(&self) -> bool {
        *self.unusable.borrow()
    }

    /// After a store failed: probes the storage (one probe at a time; a task that waited for
    /// another's probe takes its answer). Returns whether the storage is unusable.
    async fn confirm_after_failure(&self, storage: &AnyStorage) -> bool {
        let _probing = self.probing.lock().await;
        if self.is_unusable() {
            return true;
        }
        match shared::storage::probe(storage).await {
            Ok(()) => false,
            Err(error) => {
                error!(storage = %storage.location(), %error, "storage unusable: giving the jobs in hand back and taking no more until it works");
                self.unusable.send_replace(true);
                true
            }
        }
    }
}

impl WorkerContext {
    /// Opens storage and the cache from configuration.
    pub async fn from_config(config: &WorkerConfig) -> anyhow::Result<WorkerContext> {
        use anyhow::Context as _;
        let queue = config.queue.clone().context("no [queue] configured")?;
        let cache_dir = config.cache_dir();
        let storage = match config.storage.kind {
            StorageKind::S3 => AnyStorage::S3(
                shared::storage::s3::S3Storage::connect(
                    &config.storage,
                    cache_dir.join("tmp").join(shared::storage::unique_process_name()),
                )
                .await
                .context("cannot set up S3 storage")?,
            ),
            StorageKind::Local => {
                let out = config.repository.as_ref().and_then(|r| r.output.clone()).context("no repository.output")?;
                AnyStorage::Local(LocalStorage::open_for_worker(out).context("cannot open output folder")?)
            }
        };
        shared::git::configure(shared::git::GitMemory::of(&config.build));
        Ok(WorkerContext {
            queue,
            cache: Arc::new(GitCache::new(cache_dir)),
            storage: Arc::new(storage),
            pipeline: crate::Pipeline::new(config.concurrency(), config.storage.uploads),
            name: format!("farm-worker {} pid {}", shared::storage::hostname(), std::process::id()),
            health: StorageHealth::default(),
        })
    }
}

/// Consumes jobs until `stop` is cancelled: then takes no new job, finishes the ones in hand and
/// returns (jobs prefetched but not started go back to the queue when the connection closes).
pub async fn run(context: WorkerContext, stop: CancellationToken) -> anyhow::Result<()> {
    let topology = Topology::new(&context.queue);
    info!(
        builds = context.pipeline.builds(),
        uploads = context.pipeline.uploads(),
        queue = %topology.jobs(),
        "worker starting"
    );
    let broker = amqp::Broker { url: &context.queue.url, name: &context.name, give_up: None, fatal_ends: false };
    let mut consuming = Consuming { context: &context, topology: &topology, stop: &stop };
    // Without `give_up` connecting never fails; a broker lost is reconnected to, whatever the error
    // (one that repeats, such as a refused queue declaration, is retried with the growing pause).
    amqp::reconnecting(&broker, &stop, &mut consuming).await?;
    context.storage.cleanup();
    info!(peak_rss_bytes = shared::telemetry::peak_rss_bytes(), "worker stopped");
    Ok(())
}

/// `worker check`: probes the storage and connects to the broker once; prints the verdict of each.
/// Returns whether both work.
pub async fn check(context: &WorkerContext) -> bool {
    let storage = match shared::storage::probe(context.storage.as_ref()).await {
        Ok(()) => {
            println!("storage ok: {}", context.storage.location());
            true
        }
        Err(error) => {
            println!("storage unusable: {error}");
            false
        }
    };
    let never = CancellationToken::new();
    let broker = match amqp::connect_with_backoff(
        &context.queue.url,
        &context.name,
        &never,
        Some(Duration::from_secs(10)),
    )
    .await
    {
        Some(Ok(connection)) => {
            let _ = connection.close(200, "check done".into()).await;
            println!("broker ok: {}", shared::config::redact_url(&context.queue.url));
            true
        }
        Some(Err(error)) => {
            println!("broker unusable: {error}");
            false
        }
        None => false,
    };
    storage && broker
}

/// Probes the storage until it works (logging each failure) or `stop`; returns false on `stop`.
async fn wait_until_storage_works(context: &WorkerContext, stop: &CancellationToken) -> bool {
    let mut pauses = amqp::reconnect_backoff();
    loop {
        match shared::storage::probe(context.storage.as_ref()).await {
            Ok(()) => {
                if context.health.is_unusable() {
                    info!(storage = %context.storage.location(), "storage works again: taking jobs");
                }
                context.health.unusable.send_replace(false);
                return true;
            }
            Err(error) => {
                context.health.unusable.send_replace(true);
                error!(storage = %context.storage.location(), %error, "storage unusable: taking no jobs until it works");
                let pause = pauses.next().unwrap_or(Duration::from_secs(15));
                if !amqp::sleep_unless_stopped(pause, stop).await {
                    return false;
                }
            }
        }
    }
}

/// The worker's broker sessions: before each connect the storage must work; then consume until
/// `stop`, the broker is lost, or the storage is found unusable (then close and start over).
struct Consuming<'a> {
    context: &'a WorkerContext,
    topology: &'a Topology,
    stop: &'a CancellationToken,
}

impl amqp::Session for Consuming<'_> {
    type Output = ();

    async fn run(&mut self, connection: &lapin::Connection) -> Result<amqp::SessionEnd<()>, AmqpError> {
        match serve(connection, self.context, self.topology, self.stop).await? {
            SessionEnd::Stopped => {
                let _ = connection.close(200, "worker stopping".into()).await;
                Ok(amqp::SessionEnd::Finished(()))
            }
            SessionEnd::StorageUnusable => {
                let _ = connection.close(200, "storage unusable".into()).await;
                Ok(amqp::SessionEnd::Reconnect)
            }
        }
    }

    fn before_connecting(&mut self) -> impl Future<Output = bool> + Send + '_ {
        wait_until_storage_works(self.context, self.stop)
    }
}

/// How a session ended without a broker failure.
enum SessionEnd {
    /// `stop` was cancelled.
    Stopped,
    /// The storage turned out unusable; the jobs in hand were given back.
    StorageUnusable,
}

/// One connection's life: consume until the connection fails (`Err`), `stop`, or the storage is
/// found unusable.
async fn serve(
    connection: &lapin::Connection,
    context: &WorkerContext,
    topology: &Topology,
    stop: &CancellationToken,
) -> Result<SessionEnd, AmqpError> {
    let mut unusable = context.health.unusable.subscribe();
    let channel = amqp::open_channel(connection, topology).await?;
    // The prefetch follows the pipeline: enough jobs in hand to keep every build and upload slot busy.
    let prefetch = u16::try_from(context.pipeline.jobs_in_flight()).unwrap_or(u16::MAX);
    channel.basic_qos(prefetch, BasicQosOptions::default()).await?;
    let tag = format!("worker-{}", shared::storage::unique_process_name());
    let mut consumer = channel
        .basic_consume(
            topology.jobs().into(),
            tag.as_str().into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    info!(prefetch, queue = %topology.jobs(), "consuming jobs");
    let mut tasks = tokio::task::JoinSet::new();
    let outcome = loop {
        tokio::select! {
            _ = stop.cancelled() => {
                info!(in_progress = tasks.len(), "stopping: no new jobs; finishing the ones in hand");
                let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(SessionEnd::Stopped);
            }
            // The guard `wait_for` answers with is dropped at once: the session's future stays `Send`.
            () = async { let _ = unusable.wait_for(|unusable| *unusable).await; } => {
                // The jobs in hand see the flag and go back to the queue.
                let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(SessionEnd::StorageUnusable);
            }
            delivery = consumer.next() => match delivery {
                Some(Ok(delivery)) => {
                    let (channel, context, topology) = (channel.clone(), context.clone(), topology.clone());
                    tasks.spawn(async move { handle(&channel, &context, &topology, delivery).await });
                }
                Some(Err(error)) => break Err(AmqpError::from(error)),
                None => break Err(AmqpError::ConsumerClosed),
            },
            Some(finished) = tasks.join_next(), if !tasks.is_empty() => match finished {
                Ok(Ok(())) => {}
                // The job stays unacknowledged and is redelivered; the channel is likely gone.
                Ok(Err(error)) => warn!(%error, "could not finish a delivery"),
                // A panicking job would hold its delivery forever: end the session, so the broker
                // hands every unacknowledged job to another worker (or counts it towards the
                // delivery limit).
                Err(panic) => break Err(AmqpError::TaskFailed(panic.to_string())),
            }
        }
    };
    // Said at once: the jobs in hand may take long to finish (a storage that hangs).
    if let Err(error) = &outcome
        && !tasks.is_empty()
    {
        warn!(%error, in_progress = tasks.len(), "lost the broker; finishing the jobs in hand first (the broker redelivers them)");
    }
    // Jobs in hand finish (their acks need the channel) before the connection is closed.
    while let Some(finished) = tasks.join_next().await {
        if let Ok(Err(error)) = finished {
            warn!(%error, "could not finish a delivery");
        }
    }
    outcome
}

/// Processes one delivery to its acknowledgement.
async fn handle(
    channel: &Channel,
    context: &WorkerContext,
    topology: &Topology,
    delivery: Delivery,
) -> Result<(), AmqpError> {
    let attempt = amqp::attempt_of(&delivery.properties);
    let job = match BuildJob::decode(&delivery.data) {
        Ok(job) => job,
        Err(MessageError::Schema { found }) => {
            // From a newer coordinator during a rolling upgrade: leave it to a newer worker. If
            // there is none, the queue's delivery limit dead-letters it.
            warn!(schema = found, "job of a newer message schema: handing it back");
            // Hold it a moment first, so that it does not cycle through old workers at once.
            tokio::time::sleep(Duration::from_secs(5)).await;
            channel
                .basic_nack(delivery.delivery_tag, BasicNackOptions { requeue: true, ..BasicNackOptions::default() })
                .await?;
            return Ok(());
        }
        Err(decode_error) => {
            // Never a crash, never a retry: it will not parse next time either.
            let reason = format!("not a build job: {decode_error}");
            error!(
                message_id = ?delivery.properties.message_id().as_ref().map(|id| id.as_str().to_owned()),
                bytes = delivery.data.len(),
                %reason,
                "dead-lettering an unreadable message"
            );
            dead_letter(channel, topology, &delivery, &reason, attempt).await?;
            return ack(channel, &delivery).await;
        }
    };
    if context.health.is_unusable() {
        return give_back(channel, topology, &delivery).await;
    }
    info!(job_id = %job.job_id.0, package = %job.package, version = %job.version, attempt, "job started");
    let mut executed = crate::execute_classified(
        Arc::clone(&context.cache),
        Arc::clone(&context.storage),
        &context.pipeline,
        job.clone(),
    )
    .await;
    if executed.storage_failure && context.health.confirm_after_failure(&context.storage).await {
        info!(job_id = %job.job_id.0, "job given back: the storage is unusable from this worker");
        return give_back(channel, topology, &delivery).await;
    }
    // The archive must be durable before the result says so (a shared folder: fsync the new
    // directory entries; S3: nothing to do).
    if matches!(executed.result.outcome, Outcome::Built { .. })
        && let Err(error) = context.storage.flush().await
    {
        executed.result.outcome = Outcome::Failed { reason: format!("cannot make the archive durable: {error}") };
        executed.transient = true;
    }
    let mut result = executed.result;
    if executed.transient {
        let reason = match &result.outcome {
            Outcome::Failed { reason } => reason.clone(),
            Outcome::Built { .. } => String::new(),
        };
        if attempt < context.queue.max_attempts {
            let delay = amqp::retry_delay(&context.queue, attempt + 1);
            warn!(job_id = %job.job_id.0, attempt, retry_in = ?delay, %reason, "job will be retried");
            let properties = delivery
                .properties
                .clone()
                .with_headers(amqp::attempt_headers(delivery.properties.headers().as_ref(), attempt + 1))
                .with_expiration(delay.as_millis().to_string().as_str().into());
            amqp::publish_confirmed(channel, "", &topology.retry(), &delivery.data, properties).await?;
            return ack(channel, &delivery).await;
        }
        let reason = format!("gave up after {attempt} attempts: {reason}");
        error!(job_id = %job.job_id.0, %reason, "dead-lettering a job");
        dead_letter(channel, topology, &delivery, &reason, attempt).await?;
        result = BuildResult {
            schema: SCHEMA_VERSION,
            job_id: result.job_id,
            build_id: result.build_id,
            outcome: Outcome::Failed { reason: format!("dead-lettered to {}: {reason}", topology.dead()) },
            attempts: attempt,
        };
    }
    result.attempts = attempt;
    match delivery.properties.reply_to().as_ref() {
        Some(reply_to) => {
            amqp::publish_confirmed(channel, "", reply_to.as_str(), &result.encode(), amqp::result_properties(&result))
                .await?;
        }
        None => warn!(job_id = %job.job_id.0, "job has no reply_to; result not sent"),
    }
    if matches!(result.outcome, Outcome::Built { .. }) {
        info!(job_id = %job.job_id.0, "job done");
    }
    ack(channel, &delivery).await
}

/// Puts the delivery back on the jobs queue as it came (same headers, so the same attempt
/// count), confirmed, then acknowledges it: a job this worker cannot store costs no attempt.
async fn give_back(channel: &Channel, topology: &Topology, delivery: &Delivery) -> Result<(), AmqpError> {
    amqp::publish_confirmed(channel, "", &topology.jobs(), &delivery.data, delivery.properties.clone()).await?;
    ack(channel, delivery).await
}

/// Publishes the delivery to the dead-letter exchange with the reason (confirmed).
async fn dead_letter(
    channel: &Channel,
    topology: &Topology,
    delivery: &Delivery,
    reason: &str,
    attempt: u32,
) -> Result<(), AmqpError> {
    let mut headers: FieldTable = amqp::attempt_headers(delivery.properties.headers().as_ref(), attempt);
    headers.insert(amqp::REASON_HEADER.into(), AMQPValue::LongString(reason.into()));
    let properties: BasicProperties = delivery.properties.clone().with_headers(headers).with_delivery_mode(2);
    amqp::publish_confirmed(channel, &topology.dead_letter_exchange(), "", &delivery.data, properties).await
}

async fn ack(channel: &Channel, delivery: &Delivery) -> Result<(), AmqpError> {
    channel.basic_ack(delivery.delivery_tag, BasicAckOptions::default()).await?;
    Ok(())
}
