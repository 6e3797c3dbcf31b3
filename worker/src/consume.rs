//! The distributed worker loop: consume jobs from RabbitMQ until stopped, build, store, report.
//!
//! Per delivery, in this order: build the archive, store it (create-if-absent), publish the
//! result (confirmed by the broker), then acknowledge the job. A worker that dies at any point
//! leaves the job unacknowledged, so the broker hands it to another worker; storing is idempotent,
//! so the redelivery is harmless. A failure that may pass (fetch, storage) is retried through the
//! delay queue up to `max_attempts`; then, like a message that is not a job at all, it is
//! dead-lettered with the reason. The loop reconnects with backoff when the broker goes away.

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
    /// Jobs at once (also the prefetch).
    pub concurrency: usize,
    /// Name shown in the broker's connection list.
    pub name: String,
}

impl WorkerContext {
    /// Opens storage and the cache from configuration.
    pub async fn from_config(config: &WorkerConfig) -> anyhow::Result<WorkerContext> {
        use anyhow::Context as _;
        let queue = config.queue.clone().context("no [queue] configured")?;
        let cache_dir = config.cache_dir();
        let storage = match config.storage.kind {
            StorageKind::S3 => AnyStorage::S3(
                shared::s3::S3Storage::connect(
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
        Ok(WorkerContext {
            queue,
            cache: Arc::new(GitCache::new(cache_dir)),
            storage: Arc::new(storage),
            concurrency: config.concurrency(),
            name: format!("farm-worker {} pid {}", shared::storage::hostname(), std::process::id()),
        })
    }
}

/// Consumes jobs until `stop` is cancelled: then takes no new job, finishes the ones in hand and
/// returns (jobs prefetched but not started go back to the queue when the connection closes).
pub async fn run(context: WorkerContext, stop: CancellationToken) -> anyhow::Result<()> {
    let topology = Topology::new(&context.queue);
    info!(concurrency = context.concurrency, queue = %topology.jobs(), "worker starting");
    let mut pauses = amqp::reconnect_backoff();
    loop {
        let connection = match amqp::connect_with_backoff(&context.queue.url, &context.name, &stop, None).await {
            Some(Ok(connection)) => connection,
            Some(Err(error)) => return Err(error.into()),
            None => break,
        };
        let began = tokio::time::Instant::now();
        match serve(&connection, &context, &topology, &stop).await {
            Ok(()) => {
                let _ = connection.close(200, "worker stopping".into()).await;
                break;
            }
            Err(error) => {
                warn!(%error, "lost the broker; reconnecting");
                let _ = connection.close(200, "reconnecting".into()).await;
                // A session that fails at once again and again (e.g. the broker refuses our queue
                // declaration) must not spin; one that lasted starts the delays over.
                if began.elapsed() > Duration::from_secs(30) {
                    pauses = amqp::reconnect_backoff();
                }
                let pause = pauses.next().unwrap_or(Duration::from_secs(15));
                if !amqp::sleep_unless_stopped(pause, &stop).await {
                    break;
                }
            }
        }
    }
    context.storage.cleanup();
    info!("worker stopped");
    Ok(())
}

/// One connection's life: consume until the connection fails (`Err`) or `stop` (`Ok`).
async fn serve(
    connection: &lapin::Connection,
    context: &WorkerContext,
    topology: &Topology,
    stop: &CancellationToken,
) -> Result<(), AmqpError> {
    let channel = amqp::open_channel(connection, topology).await?;
    let prefetch = u16::try_from(context.concurrency.max(1)).unwrap_or(u16::MAX);
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
    let mut tasks = tokio::task::JoinSet::new();
    let outcome = loop {
        tokio::select! {
            _ = stop.cancelled() => {
                info!(in_progress = tasks.len(), "stopping: no new jobs; finishing the ones in hand");
                let _ = channel.basic_cancel(tag.as_str().into(), BasicCancelOptions::default()).await;
                break Ok(());
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
    info!(job_id = %job.job_id.0, package = %job.package, version = %job.version, attempt, "job started");
    let mut executed =
        crate::execute_classified(Arc::clone(&context.cache), Arc::clone(&context.storage), job.clone()).await;
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
