//! `coordinator serve`: the always-on coordinator. Polls every upstream, takes webhooks, and
//! builds one upstream at a time per upstream (different upstreams in parallel); triggers of one
//! upstream within the coalescing window give one build. Shuts down gracefully on SIGTERM/SIGINT.
//!
//! Per upstream there is a scheduler task (trigger → window → build) and a poller task (fetch →
//! compare the refs with those the manifest records for the last complete build → trigger).
//! Webhooks and the trigger endpoint feed the same schedulers.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use shared::config::{FarmConfig, redact_url};
use shared::git::GitCache;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::build::Farm;
use crate::metrics::{Metrics, QueueLabel};
use crate::plan::{Scope, rules_fingerprint};
use crate::status::{BuildSummary, StatusBoard, UpstreamState};

/// Settings of `serve` after command-line overrides.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration.
    pub config: FarmConfig,
    /// Output folder (local storage).
    pub out: PathBuf,
}

/// Where triggers of each upstream go. Sending never blocks: a full channel means a build is
/// already due.
#[derive(Clone)]
pub struct Triggers {
    senders: Arc<HashMap<String, mpsc::Sender<String>>>,
}

impl Triggers {
    /// Asks for a build of the upstream; `why` ends up in the status and the build report.
    pub fn send(&self, upstream: &str, why: &str) {
        if let Some(sender) = self.senders.get(upstream) {
            let _ = sender.try_send(why.to_owned());
        }
    }
}

/// Runs until SIGTERM/SIGINT (or until the storage lock is lost: then an error).
pub async fn run(options: ServeOptions) -> anyhow::Result<()> {
    let config = options.config;
    let stopping = CancellationToken::new();
    let metrics = Arc::new(Metrics::new());
    let listener = tokio::net::TcpListener::bind(&config.serve.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.serve.listen))?;
    let address = listener.local_addr().context("listening socket has no address")?;
    tokio::spawn(watch_signals(stopping.clone()));
    // Another coordinator may still hold the bucket (a rolling restart, or one killed less than
    // the lock's expiry ago): wait for it rather than exit.
    let farm = loop {
        let opened = Farm::open(
            config.clone(),
            &options.out,
            Arc::clone(&metrics),
            stopping.clone(),
            config.serve.shutdown_grace,
        )
        .await;
        match opened {
            Ok(farm) => break Arc::new(farm),
            Err(error)
                if matches!(
                    error.downcast_ref::<shared::storage::StorageError>(),
                    Some(shared::storage::StorageError::Locked(_))
                ) =>
            {
                warn!(
                    error = format!("{error:#}"),
                    "the storage is locked by another coordinator; trying again in 15s"
                );
                if !shared::amqp::sleep_unless_stopped(Duration::from_secs(15), &stopping).await {
                    return Ok(());
                }
            }
            Err(error) => return Err(error),
        }
    };
    let mode = if config.is_distributed() { "distributed" } else { "embedded" };
    let upstreams: Vec<(String, String)> =
        config.upstreams.iter().map(|u| (u.key.clone(), redact_url(&config.resolve_url(&u.url)))).collect();
    let status = Arc::new(StatusBoard::new(mode, &upstreams));

    let mut senders = HashMap::new();
    let mut tasks = tokio::task::JoinSet::new();
    for upstream in &config.upstreams {
        let (sender, receiver) = mpsc::channel(64);
        senders.insert(upstream.key.clone(), sender);
        let scheduler = Scheduler {
            upstream: upstream.key.clone(),
            farm: Arc::clone(&farm),
            status: Arc::clone(&status),
            coalesce: config.serve.coalesce,
            stopping: stopping.clone(),
        };
        tasks.spawn(scheduler.run(receiver));
    }
    let triggers = Triggers { senders: Arc::new(senders) };
    for upstream in &config.upstreams {
        if config.serve.poll_interval.is_zero() {
            // No polling: catch up once at start (a restarted coordinator resumes here).
            triggers.send(&upstream.key, "startup");
        } else {
            let poller = Poller {
                upstream: upstream.key.clone(),
                farm: Arc::clone(&farm),
                status: Arc::clone(&status),
                triggers: triggers.clone(),
                interval: config.serve.poll_interval,
                stopping: stopping.clone(),
            };
            tasks.spawn(poller.run());
        }
    }
    if let Some(queue) = config.queue.clone() {
        tasks.spawn(sample_queue_depth(queue, Arc::clone(&metrics), stopping.clone()));
    }
    let lock_lost = CancellationToken::new();
    tasks.spawn(watch_lock(Arc::clone(&farm), stopping.clone(), lock_lost.clone()));

    let state = Arc::new(crate::http::AppState::new(
        Arc::clone(&farm),
        Arc::clone(&status),
        Arc::clone(&metrics),
        triggers,
        stopping.clone(),
    ));
    info!(%address, mode, upstreams = config.upstreams.len(), "serving");
    // The server returns once stopping and its open connections are closed: no new hooks; then
    // running builds wind down.
    crate::http::serve(listener, crate::http::router(state), &config.serve, stopping.clone()).await;
    info!("no longer accepting hooks; finishing builds in flight");
    while let Some(joined) = tasks.join_next().await {
        if let Err(error) = joined {
            error!(%error, "a task of serve panicked");
        }
    }
    farm.close().await;
    if lock_lost.is_cancelled() {
        anyhow::bail!("stopped: another coordinator took the storage lock");
    }
    info!("stopped");
    Ok(())
}

/// Builds one upstream when triggered; triggers within `coalesce` of the first give one build,
/// and triggers during a build give (at most) one more.
struct Scheduler {
    upstream: String,
    farm: Arc<Farm>,
    status: Arc<StatusBoard>,
    coalesce: Duration,
    stopping: CancellationToken,
}

impl Scheduler {
    async fn run(self, mut receiver: mpsc::Receiver<String>) {
        loop {
            let first = tokio::select! {
                trigger = receiver.recv() => match trigger {
                    Some(trigger) => trigger,
                    None => return,
                },
                () = self.stopping.cancelled() => return,
            };
            self.status.set_state(&self.upstream, UpstreamState::Waiting, Some(&first));
            let mut triggers = vec![first];
            let window = tokio::time::sleep(self.coalesce);
            tokio::pin!(window);
            loop {
                tokio::select! {
                    () = &mut window => break,
                    trigger = receiver.recv() => match trigger {
                        Some(trigger) => triggers.push(trigger),
                        None => break,
                    },
                    // Not started yet: the next start (or poll) picks the change up.
                    () = self.stopping.cancelled() => return,
                }
            }
            let trigger = describe(&triggers);
            self.status.set_state(&self.upstream, UpstreamState::Building, Some(&trigger));
            let result = self.farm.build(Scope::Upstream(self.upstream.clone()), &trigger, false).await;
            let summary = match result {
                Ok(report) => {
                    // One log line per fact (JSON-friendly), not the multi-line summary.
                    for failed in &report.failed {
                        let reason = failed.reason.as_deref().unwrap_or("unknown");
                        warn!(build_id = %report.build_id, package = %failed.package, version = %failed.version, reason, "package failed");
                    }
                    for failure in &report.repository_failures {
                        warn!(build_id = %report.build_id, upstream = %failure.upstream, reason = %failure.reason, "upstream failed");
                    }
                    info!(
                        build_id = %report.build_id,
                        upstream = %self.upstream,
                        built = report.built.len(),
                        unchanged = report.unchanged.len(),
                        resumed = report.resumed.len(),
                        failed = report.failed.len(),
                        rejected = report.rejected.len(),
                        "build report"
                    );
                    BuildSummary::of(&report, &self.upstream, &trigger)
                }
                Err(error) => {
                    let message = format!("{error:#}");
                    error!(upstream = %self.upstream, error = %message, "build failed");
                    BuildSummary::failed_to_run(&self.upstream, &trigger, message)
                }
            };
            self.status.finished(summary);
        }
    }
}

/// `poll`, `github push refs/heads/main abc123`, or `3 triggers: ...`.
fn describe(triggers: &[String]) -> String {
    match triggers {
        [one] => one.clone(),
        [first, ..] => format!("{} triggers, first: {first}", triggers.len()),
        [] => String::new(),
    }
}

/// Fetches one upstream every `interval` and triggers a build when its refs or rules differ from
/// what the last complete build recorded (also right at start, so a restart resumes).
struct Poller {
    upstream: String,
    farm: Arc<Farm>,
    status: Arc<StatusBoard>,
    triggers: Triggers,
    interval: Duration,
    stopping: CancellationToken,
}

impl Poller {
    async fn run(self) {
        loop {
            // A build already waiting or running fetches anyway.
            if !self.status.is_busy(&self.upstream) {
                match self.changed().await {
                    Ok(Some(why)) => {
                        info!(upstream = %self.upstream, %why, "poll found changes");
                        self.triggers.send(&self.upstream, &format!("poll: {why}"));
                        self.status.polled(&self.upstream, None);
                    }
                    Ok(None) => self.status.polled(&self.upstream, None),
                    Err(error) => {
                        let message = format!("{error:#}");
                        warn!(upstream = %self.upstream, error = %message, "poll failed");
                        self.status.polled(&self.upstream, Some(message));
                    }
                }
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = self.stopping.cancelled() => return,
            }
        }
    }

    /// What changed since the last complete build, if anything.
    async fn changed(&self) -> anyhow::Result<Option<String>> {
        let config = self.farm.config().clone();
        let key = self.upstream.clone();
        let (refs, rules) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let upstream = config.upstreams.iter().find(|u| u.key == key).context("upstream vanished")?;
            let url = config.resolve_url(&upstream.url);
            let repo = GitCache::new(config.cache_dir()).sync(&url)?;
            let (refs, _) = crate::plan::refs::select_refs(upstream, &repo)?;
            Ok((refs.map(), rules_fingerprint(&config, upstream)))
        })
        .await
        .context("poll task panicked")??;
        let Some(record) = self.farm.upstream_record(&self.upstream).await else {
            return Ok(Some("no complete build recorded yet".to_owned()));
        };
        if record.rules != rules {
            return Ok(Some("the rules or the program changed".to_owned()));
        }
        let new_or_moved: Vec<&String> = refs
            .iter()
            .filter(|(name, commit)| record.refs.get(*name) != Some(*commit))
            .map(|(name, _)| name)
            .collect();
        if let Some(first) = new_or_moved.first() {
            return Ok(Some(format!("{} new or moved ref(s), e.g. {first}", new_or_moved.len())));
        }
        Ok(None)
    }
}

/// Samples the broker's queue depths into the metrics every 5 s.
async fn sample_queue_depth(queue: shared::config::QueueConfig, metrics: Arc<Metrics>, stopping: CancellationToken) {
    use lapin::options::QueueDeclareOptions;
    let topology = shared::amqp::Topology::new(&queue);
    let names = [topology.jobs(), topology.retry(), topology.dead()];
    let name = format!("farm-coordinator {} metrics", shared::storage::hostname());
    loop {
        let Some(Ok(connection)) = shared::amqp::connect_with_backoff(&queue.url, &name, &stopping, None).await else {
            return;
        };
        while connection.status().connected() {
            for queue_name in &names {
                // A passive declare of a queue that does not exist yet (no build ran) closes the
                // channel: one channel per queue.
                let Ok(channel) = connection.create_channel().await else { break };
                let passive = QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() };
                if let Ok(declared) = channel
                    .queue_declare(queue_name.as_str().into(), passive, lapin::types::FieldTable::default())
                    .await
                {
                    let label = QueueLabel { queue: queue_name.clone() };
                    metrics.queue_depth.get_or_create(&label).set(i64::from(declared.message_count()));
                    let _ = channel.close(200, "sampled".into()).await;
                }
            }
            if !shared::amqp::sleep_unless_stopped(Duration::from_secs(5), &stopping).await {
                let _ = connection.close(200, "stopping".into()).await;
                return;
            }
        }
        warn!("lost the broker connection used for queue depths; reconnecting");
    }
}

/// Stops serving when another coordinator took the storage lock.
async fn watch_lock(farm: Arc<Farm>, stopping: CancellationToken, lost: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(10)) => {}
            () = stopping.cancelled() => return,
        }
        if !farm.lock_held() {
            error!("the storage lock was lost; stopping");
            lost.cancel();
            stopping.cancel();
            return;
        }
    }
}

/// First SIGTERM/SIGINT: graceful stop. Second: exit at once.
async fn watch_signals(stopping: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        warn!("cannot install signal handlers");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = interrupt.recv() => {}
    }
    info!("signal received: stopping (a second signal exits at once)");
    stopping.cancel();
    tokio::select! {
        _ = term.recv() => {}
        _ = interrupt.recv() => {}
    }
    warn!("second signal: exiting now");
    std::process::exit(130);
}
