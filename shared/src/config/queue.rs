//! `[queue]`: the RabbitMQ job queue of the distributed mode.

use std::time::Duration;

use serde::Deserialize;

use super::de::duration;
use super::error::ConfigError;

/// The RabbitMQ job queue of the distributed mode (`[queue]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// AMQP URL, e.g. `amqp://user:password@rabbitmq:5672/%2f` (`FARM_QUEUE__URL`).
    pub url: String,
    /// Prefix of every queue and exchange name, so several farms can share a broker.
    #[serde(default = "default_queue_prefix")]
    pub prefix: String,
    /// Tries of a job that fails for a passing reason (git fetch, storage unreachable) before it
    /// is dead-lettered and reported as failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with every further attempt.
    #[serde(default = "default_retry_delay", with = "duration")]
    pub retry_delay: Duration,
    /// Upper bound of the retry delay.
    #[serde(default = "default_retry_delay_max", with = "duration")]
    pub retry_delay_max: Duration,
    /// Deliveries of one job the broker allows before dead-lettering it (bounds a job that
    /// kills its worker every time).
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// The coordinator gives up waiting when no result arrived for this long, and reports what
    /// did not come back.
    #[serde(default = "default_result_timeout", with = "duration")]
    pub result_timeout: Duration,
}

fn default_queue_prefix() -> String {
    "farm".to_owned()
}
fn default_max_attempts() -> u32 {
    5
}
fn default_retry_delay() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_delay_max() -> Duration {
    Duration::from_secs(300)
}
fn default_delivery_limit() -> u32 {
    10
}
fn default_result_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

impl QueueConfig {
    /// Checks values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| Err(ConfigError::Invalid(format!("queue: {message}")));
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            return invalid("url must start with amqp:// or amqps://");
        }
        if self.prefix.is_empty() || !self.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return invalid("prefix must be non-empty letters, digits, '-', '_' or '.'");
        }
        if self.max_attempts == 0 || self.delivery_limit == 0 {
            return invalid("max_attempts and delivery_limit must be at least 1");
        }
        if self.result_timeout.is_zero() {
            return invalid("result_timeout must be positive");
        }
        Ok(())
    }
}
