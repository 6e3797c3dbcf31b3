//! Prometheus metrics of the coordinator (`GET /metrics`): jobs, queue depth, build durations,
//! bytes uploaded, last success per upstream, webhooks, build triggers, polls and repository
//! health.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Labels naming an upstream.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabel {
    /// Upstream key (`all` for a build of every upstream).
    pub upstream: String,
}

/// Labels of a finished build.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// Upstream key, or `all`.
    pub upstream: String,
    /// `succeeded` (nothing failed), `failed` (some packages failed) or `error` (the build stopped).
    pub result: String,
}

/// Labels of a broker queue.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabel {
    /// Queue name.
    pub queue: String,
}

/// Labels of a webhook request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HookLabels {
    /// `github`, `gitlab` or `trigger`.
    pub source: String,
    /// HTTP status answered.
    pub status: u16,
}

/// Labels of a health probe.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabel {
    /// The probe's name, or `consistency` for the native check.
    pub probe: String,
}

/// Labels of a poll.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    /// Upstream key.
    pub upstream: String,
    /// `changed` (a build was triggered), `unchanged` (nothing to build) or `failed`.
    pub result: String,
}

type DurationFamily = Family<UpstreamLabel, Histogram, fn() -> Histogram>;

/// Every metric, registered once.
pub struct Metrics {
    registry: Registry,
    /// Jobs handed to the queue.
    pub jobs_published: Counter,
    /// Jobs whose archive was stored.
    pub jobs_succeeded: Counter,
    /// Jobs that failed (after their retries) or never answered.
    pub jobs_failed: Counter,
    /// Extra deliveries jobs took (a result after 3 attempts counts 2).
    pub jobs_retried: Counter,
    /// Jobs published and not answered yet, over all running builds.
    pub jobs_pending: Gauge,
    /// Messages in the broker's queues (distributed mode), sampled.
    pub queue_depth: Family<QueueLabel, Gauge>,
    /// Build durations.
    pub build_duration: DurationFamily,
    /// Bytes of archives stored.
    pub bytes_uploaded: Counter,
    /// Finished builds.
    pub builds: Family<BuildLabels, Counter>,
    /// Unix time of each upstream's last build where nothing failed.
    pub last_success: Family<UpstreamLabel, Gauge>,
    /// Webhook requests by answer.
    pub webhooks: Family<HookLabels, Counter>,
    /// Build triggers handed to an upstream's scheduler (webhooks, the trigger endpoint, polls,
    /// startup). With the triggers each build says it took, this shows that none is left waiting.
    pub triggers: Family<UpstreamLabel, Counter>,
    /// Polls by what they found.
    pub polls: Family<PollLabels, Counter>,
    /// 1 when the last health check or probe passed, 0 when it failed (a skipped probe is
    /// not set).
    pub repository_healthy: Family<ProbeLabel, Gauge>,
    /// Durations of health probes.
    pub probe_duration: Family<ProbeLabel, Histogram, fn() -> Histogram>,
}

fn probe_histogram() -> Histogram {
    // 0.25 s to about 68 min.
    Histogram::new(exponential_buckets(0.25, 2.0, 15))
}

fn duration_histogram() -> Histogram {
    // 1 s to about 4.5 h.
    Histogram::new(exponential_buckets(1.0, 2.0, 15))
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Creates and registers the metrics (prefix `farm_`).
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("farm");
        let metrics = Metrics {
            jobs_published: Counter::default(),
            jobs_succeeded: Counter::default(),
            jobs_failed: Counter::default(),
            jobs_retried: Counter::default(),
            jobs_pending: Gauge::default(),
            queue_depth: Family::default(),
            build_duration: Family::new_with_constructor(duration_histogram as fn() -> Histogram),
            bytes_uploaded: Counter::default(),
            builds: Family::default(),
            last_success: Family::default(),
            webhooks: Family::default(),
            triggers: Family::default(),
            polls: Family::default(),
            repository_healthy: Family::default(),
            probe_duration: Family::new_with_constructor(probe_histogram as fn() -> Histogram),
            registry: Registry::default(),
        };
        registry.register("jobs_published", "Build jobs handed to the queue", metrics.jobs_published.clone());
        registry.register("jobs_succeeded", "Build jobs whose archive was stored", metrics.jobs_succeeded.clone());
        registry.register(
            "jobs_failed",
            "Build jobs that failed after their retries or never answered",
            metrics.jobs_failed.clone(),
        );
        registry.register("jobs_retried", "Extra deliveries build jobs took", metrics.jobs_retried.clone());
        registry.register("jobs_pending", "Jobs published and not answered yet", metrics.jobs_pending.clone());
        registry.register("queue_depth", "Messages in the broker's queues (sampled)", metrics.queue_depth.clone());
        registry.register_with_unit(
            "build_duration",
            "Duration of builds",
            Unit::Seconds,
            metrics.build_duration.clone(),
        );
        registry.register_with_unit(
            "uploaded",
            "Bytes of archives stored",
            Unit::Bytes,
            metrics.bytes_uploaded.clone(),
        );
        registry.register("builds", "Finished builds by result", metrics.builds.clone());
        registry.register_with_unit(
            "last_success_timestamp",
            "Unix time of the upstream's last build in which nothing failed",
            Unit::Seconds,
            metrics.last_success.clone(),
        );
        registry.register("webhook_requests", "Webhook requests by answer", metrics.webhooks.clone());
        registry.register("triggers", "Build triggers handed to an upstream's scheduler", metrics.triggers.clone());
        registry.register("polls", "Polls of an upstream by what they found", metrics.polls.clone());
        registry.register(
            "repository_healthy",
            "1 if the repository passed the health check or probe at the last build, 0 if not",
            metrics.repository_healthy.clone(),
        );
        registry.register_with_unit(
            "probe_duration",
            "Duration of health probes",
            Unit::Seconds,
            metrics.probe_duration.clone(),
        );
        Metrics { registry, ..metrics }
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_named_and_counted() {
        let metrics = Metrics::new();
        metrics.jobs_published.inc_by(3);
        metrics.bytes_uploaded.inc_by(1000);
        metrics.build_duration.get_or_create(&UpstreamLabel { upstream: "acme".into() }).observe(2.5);
        metrics.last_success.get_or_create(&UpstreamLabel { upstream: "acme".into() }).set(1_700_000_000);
        metrics.triggers.get_or_create(&UpstreamLabel { upstream: "acme".into() }).inc();
        metrics.polls.get_or_create(&PollLabels { upstream: "acme".into(), result: "unchanged".into() }).inc_by(2);
        let text = metrics.encode();
        assert!(text.contains("farm_jobs_published_total 3"), "{text}");
        assert!(text.contains("farm_uploaded_bytes_total 1000"), "{text}");
        assert!(text.contains("farm_build_duration_seconds_count{upstream=\"acme\"} 1"), "{text}");
        assert!(text.contains("farm_last_success_timestamp_seconds{upstream=\"acme\"} 1700000000"), "{text}");
        assert!(text.contains("farm_triggers_total{upstream=\"acme\"} 1"), "{text}");
        assert!(text.contains("farm_polls_total{upstream=\"acme\",result=\"unchanged\"} 2"), "{text}");
        assert!(text.ends_with("# EOF\n"));
    }
}
