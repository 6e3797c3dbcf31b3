//! RabbitMQ transport of the distributed mode (lapin): queue topology, connecting with backoff,
//! the one reconnect loop ([`reconnecting`]) that the coordinator's dispatch and the worker both
//! run their broker sessions in, message properties and publishing with publisher confirms.
//!
//! Topology (every name starts with the configured prefix, default `farm`):
//! - `farm.jobs`: quorum queue of [`BuildJob`]s. `x-delivery-limit` bounds how often the broker
//!   hands out a job whose worker died on it; then it is dead-lettered to `farm.dlx`.
//! - `farm.jobs.retry`: durable queue without consumers. A job that failed for a passing reason is
//!   published here with a per-message expiry; when it expires the broker moves it back to
//!   `farm.jobs` (delayed retry without a plugin). The broker expires messages only at the head of
//!   a queue, so a long delay holds back shorter ones queued behind it: a retry is never early,
//!   sometimes late.
//! - `farm.dlx`: fanout exchange for dead letters, bound to the durable queue `farm.dead` (kept
//!   for operators) and, while a build runs, to the coordinator's own watch queue.
//! - `farm.results.<build id>`: durable queue of one build's [`BuildResult`]s (the job's
//!   `reply_to`); it expires a day after its last use.
//!
//! [`BuildJob`]: crate::messages::BuildJob
//! [`BuildResult`]: crate::messages::BuildResult

use std::time::Duration;

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::{QueueConfig, redact_url};
use crate::messages::{BuildId, BuildJob, BuildResult};

/// Header counting the tries of a job (1 for the first delivery).
pub const ATTEMPT_HEADER: &str = "x-farm-attempt";
/// Header saying why a message was dead-lettered by a worker.
pub const REASON_HEADER: &str = "x-farm-reason";

/// How long an idle results queue lives (a coordinator that died does not leave it forever).
const RESULTS_QUEUE_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// A broker operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AmqpError {
    /// The connection, channel or an operation on it failed.
    #[error("AMQP: {0}")]
    Lapin(#[from] lapin::Error),
    /// The broker did not take responsibility for a published message.
    #[error("the broker refused a message (publisher nack)")]
    Nacked,
    /// A job task panicked (its delivery is given back by ending the session).
    #[error("a job task failed: {0}")]
    TaskFailed(String),
    /// The broker ended a consumer (queue deleted, connection lost).
    #[error("the broker closed the consumer")]
    ConsumerClosed,
    /// Connecting was given up.
    #[error("cannot reach the broker at {url} within {waited:?}: {last}")]
    Unreachable {
        /// Redacted URL.
        url: String,
        /// How long we tried.
        waited: Duration,
        /// The last error.
        last: String,
    },
}

/// Names and arguments of the queues and exchanges.
#[derive(Debug, Clone)]
pub struct Topology {
    prefix: String,
    delivery_limit: u32,
}

impl Topology {
    /// The topology of a configuration.
    pub fn new(config: &QueueConfig) -> Topology {
        Topology { prefix: config.prefix.clone(), delivery_limit: config.delivery_limit }
    }

    /// The job queue.
    pub fn jobs(&self) -> String {
        format!("{}.jobs", self.prefix)
    }

    /// The delayed-retry queue.
    pub fn retry(&self) -> String {
        format!("{}.jobs.retry", self.prefix)
    }

    /// The dead-letter exchange.
    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dlx", self.prefix)
    }

    /// The queue keeping dead letters for operators.
    pub fn dead(&self) -> String {
        format!("{}.dead", self.prefix)
    }

    /// The results queue of a build.
    pub fn results(&self, build: &BuildId) -> String {
        format!("{}.results.{}", self.prefix, build.0)
    }

    /// Declares the shared queues and exchanges (idempotent). Fails if a queue exists with other
    /// arguments (e.g. another `delivery_limit`): delete it or keep the old value.
    pub async fn declare(&self, channel: &Channel) -> Result<(), AmqpError> {
        let durable = QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() };
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Fanout,
                ExchangeDeclareOptions { durable: true, ..ExchangeDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        let mut dead_args = FieldTable::default();
        dead_args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        channel.queue_declare(self.dead().into(), durable, dead_args).await?;
        self.bind_to_dead_letters(channel, &self.dead()).await?;
        let mut job_args = FieldTable::default();
        job_args.insert("x-queue-type".into(), AMQPValue::LongString("quorum".into()));
        job_args.insert("x-delivery-limit".into(), AMQPValue::LongLongInt(i64::from(self.delivery_limit)));
        job_args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString(self.dead_letter_exchange().into()));
        // Quorum queues dead-letter at most once by default (a dead letter the exchange cannot
        // take is dropped); at-least-once keeps it until the dead-letter queue confirmed it.
        job_args.insert("x-dead-letter-strategy".into(), AMQPValue::LongString("at-least-once".into()));
        job_args.insert("x-overflow".into(), AMQPValue::LongString("reject-publish".into()));
        channel.queue_declare(self.jobs().into(), durable, job_args).await?;
        let mut retry_args = FieldTable::default();
        retry_args.insert("x-dead-letter-exchange".into(), AMQPValue::LongString("".into()));
        retry_args.insert("x-dead-letter-routing-key".into(), AMQPValue::LongString(self.jobs().into()));
        channel.queue_declare(self.retry().into(), durable, retry_args).await?;
        Ok(())
    }

    /// Declares the results queue of a build and returns its name.
    pub async fn declare_results(&self, channel: &Channel, build: &BuildId) -> Result<String, AmqpError> {
        let name = self.results(build);
        let mut args = FieldTable::default();
        args.insert("x-expires".into(), AMQPValue::LongLongInt(RESULTS_QUEUE_EXPIRY.as_millis() as i64));
        channel
            .queue_declare(
                name.as_str().into(),
                QueueDeclareOptions { durable: true, ..QueueDeclareOptions::default() },
                args,
            )
            .await?;
        Ok(name)
    }

    /// Declares a private queue that receives a copy of every dead letter while the connection
    /// lives, and returns its name.
    pub async fn declare_dead_letter_watch(&self, channel: &Channel) -> Result<String, AmqpError> {
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions { exclusive: true, auto_delete: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await?;
        let name = queue.name().as_str().to_owned();
        self.bind_to_dead_letters(channel, &name).await?;
        Ok(name)
    }

    /// Makes `queue` receive every dead letter (the exchange is a fanout).
    async fn bind_to_dead_letters(&self, channel: &Channel, queue: &str) -> Result<(), AmqpError> {
        channel
            .queue_bind(
                queue.into(),
                self.dead_letter_exchange().into(),
                "".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

/// Whether an error will repeat on every reconnect: the broker refuses our queue declarations
/// (`PRECONDITION_FAILED`: a queue exists with other arguments, e.g. another `delivery_limit`) or
/// our credentials (`ACCESS_REFUSED`). Reconnecting cannot help; the operator must.
pub fn is_fatal(error: &AmqpError) -> bool {
    let text = error.to_string();
    text.contains("PRECONDITION_FAILED") || text.contains("ACCESS_REFUSED")
}

/// Connects once.
pub async fn connect(url: &str, name: &str) -> Result<Connection, AmqpError> {
    let properties = ConnectionProperties::default().with_connection_name(LongString::from(name.to_owned()));
    Ok(Connection::connect(url, properties).await?)
}

/// Delays between reconnects, and between broker sessions that keep failing at once: 0.5 s
/// doubling to 15 s, without end.
pub fn reconnect_backoff() -> backon::ExponentialBackoff {
    use backon::BackoffBuilder as _;
    backon::ExponentialBuilder::new()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(15))
        .with_factor(2.0)
        .without_max_times()
        .build()
}

/// Sleeps `delay` unless `stop` is cancelled first; false when it was.
pub async fn sleep_unless_stopped(delay: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(delay) => true,
    }
}

/// Connects, retrying with [`reconnect_backoff`] until it works, `stop` is cancelled (`None`) or
/// `give_up` has passed (an error).
pub async fn connect_with_backoff(
    url: &str,
    name: &str,
    stop: &CancellationToken,
    give_up: Option<Duration>,
) -> Option<Result<Connection, AmqpError>> {
    let started = tokio::time::Instant::now();
    let mut delays = reconnect_backoff();
    loop {
        if stop.is_cancelled() {
            return None;
        }
        let delay = match connect(url, name).await {
            Ok(connection) => {
                info!(url = %redact_url(url), "connected to the broker");
                return Some(Ok(connection));
            }
            Err(error) => {
                let waited = started.elapsed();
                if give_up.is_some_and(|limit| waited >= limit) {
                    return Some(Err(AmqpError::Unreachable { url: redact_url(url), waited, last: error.to_string() }));
                }
                let delay = delays.next().unwrap_or(Duration::from_secs(15));
                warn!(url = %redact_url(url), %error, retry_in = ?delay, "broker unreachable");
                delay
            }
        };
        if !sleep_unless_stopped(delay, stop).await {
            return None;
        }
    }
}

/// How a [`Session`] ended when it did not lose the broker.
#[derive(Debug)]
pub enum SessionEnd<T> {
    /// Done: [`reconnecting`] returns this (the session closed its connection).
    Finished(T),
    /// Connect again without a pause: the session gave its connection up for a reason of its own
    /// (and closed it).
    Reconnect,
}

/// One connection's life in a loop that outlives the broker ([`reconnecting`]): the coordinator
/// publishing a build's jobs and reading its results, a worker consuming jobs.
pub trait Session {
    /// What a finished session gives back.
    type Output;

    /// Runs on one connection until it ends; an error means the broker (or the connection to it)
    /// was lost, and a new connection gets a new run.
    fn run<'a>(
        &'a mut self,
        connection: &'a Connection,
    ) -> impl Future<Output = Result<SessionEnd<Self::Output>, AmqpError>> + Send + 'a;

    /// Called before every connect; false ends the loop as a stop does. A worker waits here until
    /// its storage works.
    fn before_connecting(&mut self) -> impl Future<Output = bool> + Send + '_ {
        std::future::ready(true)
    }
}

/// Where [`reconnecting`] connects, and when it gives up.
#[derive(Debug, Clone, Copy)]
pub struct Broker<'a> {
    /// The broker's URL (logged redacted).
    pub url: &'a str,
    /// Name shown in the broker's connection list.
    pub name: &'a str,
    /// Connecting fails with [`AmqpError::Unreachable`] once the broker was unreachable this long;
    /// `None`: keep trying.
    pub give_up: Option<Duration>,
    /// Whether an error that every reconnect would meet again ([`is_fatal`]) ends the loop with
    /// that error; otherwise it is retried with the backoff like any other.
    pub fatal_ends: bool,
}

/// Runs `session` on a connection to the broker, and on a new one whenever the broker is lost
/// ("lost the broker; reconnecting", then a pause from [`reconnect_backoff`]: a session that fails
/// at once again and again must not spin; one that lasted 30 s starts the pauses over). Returns
/// the session's output, `None` once `stop` is cancelled (or [`Session::before_connecting`] says
/// so), or the error that ended it: the broker unreachable for `give_up`, or a fatal error.
pub async fn reconnecting<S: Session + Send>(
    broker: &Broker<'_>,
    stop: &CancellationToken,
    session: &mut S,
) -> Result<Option<S::Output>, AmqpError> {
    let mut pauses = reconnect_backoff();
    loop {
        if !session.before_connecting().await {
            return Ok(None);
        }
        let connection = match connect_with_backoff(broker.url, broker.name, stop, broker.give_up).await {
            None => return Ok(None),
            Some(connection) => connection?,
        };
        let began = tokio::time::Instant::now();
        match session.run(&connection).await {
            Ok(SessionEnd::Finished(output)) => return Ok(Some(output)),
            Ok(SessionEnd::Reconnect) => {}
            Err(error) if broker.fatal_ends && is_fatal(&error) => {
                let _ = connection.close(200, "giving up".into()).await;
                return Err(error);
            }
            Err(error) => {
                warn!(%error, "lost the broker; reconnecting");
                let _ = connection.close(200, "reconnecting".into()).await;
                if began.elapsed() > Duration::from_secs(30) {
                    pauses = reconnect_backoff();
                }
                let pause = pauses.next().unwrap_or(Duration::from_secs(15));
                if !sleep_unless_stopped(pause, stop).await {
                    return Ok(None);
                }
            }
        }
    }
}

/// Opens a channel with publisher confirms and declares the shared topology.
pub async fn open_channel(connection: &Connection, topology: &Topology) -> Result<Channel, AmqpError> {
    let channel = connection.create_channel().await?;
    channel.confirm_select(ConfirmSelectOptions::default()).await?;
    topology.declare(&channel).await?;
    Ok(channel)
}

/// Publishes and waits for the broker's confirm.
pub async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    payload: &[u8],
    properties: BasicProperties,
) -> Result<(), AmqpError> {
    let confirm = channel
        .basic_publish(exchange.into(), routing_key.into(), BasicPublishOptions::default(), payload, properties)
        .await?
        .await?;
    if confirm.is_ack() { Ok(()) } else { Err(AmqpError::Nacked) }
}

/// Properties of a job message: persistent, JSON, id, where results go, attempt 1.
pub fn job_properties(job: &BuildJob, reply_to: &str) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(job.job_id.0.as_str().into())
        .with_correlation_id(job.build_id.0.as_str().into())
        .with_reply_to(reply_to.into())
        .with_headers(attempt_headers(None, 1))
}

/// Properties of a result message.
pub fn result_properties(result: &BuildResult) -> BasicProperties {
    BasicProperties::default()
        .with_delivery_mode(2)
        .with_content_type("application/json".into())
        .with_message_id(result.job_id.0.as_str().into())
        .with_correlation_id(result.build_id.0.as_str().into())
}

/// The message's headers with the attempt counter set.
pub fn attempt_headers(headers: Option<&FieldTable>, attempt: u32) -> FieldTable {
    let mut table = headers.cloned().unwrap_or_default();
    table.insert(ATTEMPT_HEADER.into(), AMQPValue::LongLongInt(i64::from(attempt)));
    table
}

/// The try number of a delivered job (1 when the header is missing).
pub fn attempt_of(properties: &BasicProperties) -> u32 {
    properties
        .headers()
        .as_ref()
        .and_then(|headers| headers.inner().get(ATTEMPT_HEADER))
        .and_then(integer)
        .map_or(1, |n| n.clamp(1, i64::from(u32::MAX)) as u32)
}

/// A header's text value.
pub fn header_text(properties: &BasicProperties, name: &str) -> Option<String> {
    let value = properties.headers().as_ref()?.inner().get(name)?.clone();
    text(&value)
}

/// Why the broker or a worker dead-lettered a message, for reports.
pub fn dead_letter_reason(properties: &BasicProperties) -> String {
    if let Some(reason) = header_text(properties, REASON_HEADER) {
        return reason;
    }
    // Dead-lettered by the broker: the first x-death entry says why.
    let death =
        properties.headers().as_ref().and_then(|headers| headers.inner().get("x-death").cloned()).and_then(|value| {
            match value {
                AMQPValue::FieldArray(array) => array.as_slice().first().cloned(),
                _ => None,
            }
        });
    match death {
        Some(AMQPValue::FieldTable(table)) => {
            let field = |name: &str| table.inner().get(name).and_then(text).unwrap_or_default();
            let count = table.inner().get("count").and_then(integer).unwrap_or(0);
            match field("reason").as_str() {
                "delivery_limit" => format!(
                    "the broker dead-lettered it after too many deliveries (queue {}): a worker died or gave it \
                     back each time",
                    field("queue")
                ),
                reason => format!("dead-lettered by the broker ({reason}, queue {}, count {count})", field("queue")),
            }
        }
        _ => "dead-lettered (no reason recorded)".to_owned(),
    }
}

/// The delay before try `next_attempt` (2, 3, ...): `retry_delay` doubling, at most
/// `retry_delay_max`.
pub fn retry_delay(config: &QueueConfig, next_attempt: u32) -> Duration {
    let doublings = next_attempt.saturating_sub(2).min(20);
    config.retry_delay.saturating_mul(1 << doublings).min(config.retry_delay_max)
}

fn integer(value: &AMQPValue) -> Option<i64> {
    Some(match value {
        AMQPValue::ShortShortInt(n) => i64::from(*n),
        AMQPValue::ShortShortUInt(n) => i64::from(*n),
        AMQPValue::ShortInt(n) => i64::from(*n),
        AMQPValue::ShortUInt(n) => i64::from(*n),
        AMQPValue::LongInt(n) => i64::from(*n),
        AMQPValue::LongUInt(n) => i64::from(*n),
        AMQPValue::LongLongInt(n) => *n,
        _ => return None,
    })
}

fn text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_config() -> QueueConfig {
        crate::config::FarmConfig::from_toml(
            "[repository]\nbase_url = \"https://x\"\n[queue]\nurl = \"amqp://localhost\"\nretry_delay = \"2s\"\nretry_delay_max = \"10s\"\n",
        )
        .unwrap()
        .queue
        .unwrap()
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let config = queue_config();
        let delays: Vec<u64> = (2..=6).map(|attempt| retry_delay(&config, attempt).as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 10, 10]);
    }

    #[test]
    fn attempts_are_read_back_from_headers() {
        let properties = BasicProperties::default().with_headers(attempt_headers(None, 3));
        assert_eq!(attempt_of(&properties), 3);
        assert_eq!(attempt_of(&BasicProperties::default()), 1);
        let mut headers = attempt_headers(None, 2);
        headers.insert(REASON_HEADER.into(), AMQPValue::LongString("cannot parse".into()));
        let properties = BasicProperties::default().with_headers(headers);
        assert_eq!(dead_letter_reason(&properties), "cannot parse");
    }

    #[test]
    fn names_carry_the_prefix() {
        let topology = Topology::new(&queue_config());
        assert_eq!(topology.jobs(), "farm.jobs");
        assert_eq!(topology.results(&BuildId("b1".into())), "farm.results.b1");
    }
}
