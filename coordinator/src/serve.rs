//! `coordinator serve`: the always-on coordinator. Polls every upstream, takes webhooks, and
//! builds one upstream at a time per upstream (different upstreams in parallel); triggers of one
//! upstream within the coalescing window give one build. It serves on the listener it is given
//! and stops gracefully when the shutdown future it is given completes (the command line passes
//! SIGTERM/SIGINT through `shared::shutdown`; a test passes its own).
//!
//! Per upstream there is a scheduler task (trigger → window → build) and a poller task (fetch →
//! compare the refs with those the manifest records for the last complete build → trigger).
//! Webhooks and the trigger endpoint feed the same schedulers through [`crate::triggers`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use shared::config::{FarmConfig, redact_url};
use shared::git::GitCache;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::metrics::{Metrics, PollLabels, QueueLabel};
use crate::pipeline::Farm;
use crate::plan::{Scope, rules_fingerprint};
use crate::report::BuildReport;
use crate::status::{BuildSummary, StatusBoard, UpstreamState};
use crate::triggers::{TriggerReceiver, Triggers};

/// Settings of `serve` after command-line overrides.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The configuration.
    pub config: FarmConfig,
    /// Output folder (local storage).
    pub out: PathBuf,
}

/// Serves on `listener` until `shutdown` completes (or until the storage lock is lost: then an
/// error). Connections that arrive before the farm is open wait in the listener's queue.
pub async fn run(
    options: ServeOptions,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let config = options.config.clone();
    // Cancelled by `shutdown` or by losing the storage lock, and in any case when this returns
    // (which also ends the task waiting for `shutdown`).
    let stopping = CancellationToken::new();
    let _stop_on_return = stopping.clone().drop_guard();
    tokio::spawn({
        let stopping = stopping.clone();
        async move {
            if stopping.run_until_cancelled(shutdown).await.is_some() {
                stopping.cancel();
            }
        }
    });
    let metrics = Arc::new(Metrics::new());
    let address = listener.local_addr().context("listening socket has no address")?;
    let Some(farm) = open_farm(&options, &metrics, &stopping).await? else {
        return Ok(());
    };
    let mode = if config.is_distributed() { "distributed" } else { "embedded" };
    let upstreams: Vec<(String, String)> =
        config.upstreams.iter().map(|u| (u.key.clone(), redact_url(&config.resolve_url(&u.url)))).collect();
    let status = Arc::new(StatusBoard::new(mode, &upstreams));

    let (mut tasks, triggers) = spawn_watchers(&config, &farm, &status, &metrics, &stopping);
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
    let router = match hosted(&config, &farm)? {
        Some(hosted) => {
            info!(base_url = %config.repository.base_url, "serving the repository");
            Arc::new(hosted).route(crate::http::router(state))
        }
        None => crate::http::router(state),
    };
    crate::http::serve(listener, router, &config.serve, stopping.clone()).await;
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

/// The output folder to serve: with `serve.repository` and a local folder (a bucket is served by
/// its own server).
fn hosted(config: &FarmConfig, farm: &Farm) -> anyhow::Result<Option<crate::hosting::Hosted>> {
    match farm.storage() {
        shared::storage::AnyStorage::Local(local) if config.serve.repository => {
            let root = local.root();
            let hosted = crate::hosting::Hosted::new(root, &config.repository.base_url)
                .with_context(|| format!("cannot serve {}", root.display()))?;
            Ok(Some(hosted))
        }
        _ => Ok(None),
    }
}

/// Opens the farm. Another coordinator may still hold the bucket (a rolling restart, or one killed
/// less than the lock's expiry ago): waits for it rather than exit. `None` when stopped meanwhile.
async fn open_farm(
    options: &ServeOptions,
    metrics: &Arc<Metrics>,
    stopping: &CancellationToken,
) -> anyhow::Result<Option<Arc<Farm>>> {
    let config = &options.config;
    loop {
        let opened = Farm::open(
            config.clone(),
            &options.out,
            Arc::clone(metrics),
            stopping.clone(),
            config.serve.shutdown_grace,
        )
        .await;
        match opened {
            Ok(farm) => return Ok(Some(Arc::new(farm))),
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
                if !shared::amqp::sleep_unless_stopped(Duration::from_secs(15), stopping).await {
                    return Ok(None);
                }
            }
            Err(error) => return Err(error),
        }
    }
}

/// Starts a scheduler per upstream, a poller per upstream (or one startup trigger each when
/// polling is off) and the queue-depth sampler. Returns the tasks and the triggers to send to.
fn spawn_watchers(
    config: &FarmConfig,
    farm: &Arc<Farm>,
    status: &Arc<StatusBoard>,
    metrics: &Arc<Metrics>,
    stopping: &CancellationToken,
) -> (tokio::task::JoinSet<()>, Triggers) {
    let mut tasks = tokio::task::JoinSet::new();
    let (triggers, receivers) = Triggers::new(config.upstreams.iter().map(|u| u.key.clone()), Arc::clone(metrics));
    for (upstream, receiver) in receivers {
        let scheduler = Scheduler {
            upstream,
            builder: Arc::clone(farm),
            status: Arc::clone(status),
            coalesce: config.serve.coalesce,
            stopping: stopping.clone(),
        };
        tasks.spawn(scheduler.run(receiver));
    }
    for upstream in &config.upstreams {
        if config.serve.poll_interval.is_zero() {
            // No polling: catch up once at start (a restarted coordinator resumes here).
            triggers.send(&upstream.key, "startup");
        } else {
            let poller = Poller {
                upstream: upstream.key.clone(),
                builder: Arc::clone(farm),
                status: Arc::clone(status),
                triggers: triggers.clone(),
                metrics: Arc::clone(metrics),
                interval: config.serve.poll_interval,
                stopping: stopping.clone(),
            };
            tasks.spawn(poller.run());
        }
    }
    if let Some(queue) = config.queue.clone() {
        tasks.spawn(sample_queue_depth(queue, Arc::clone(metrics), stopping.clone()));
    }
    (tasks, triggers)
}

/// What the schedulers and pollers ask of the farm: the [`Farm`] itself in production, a fake in
/// the tests (so the coalescing and polling logic runs under paused time, without git or storage).
trait Builder: Send + Sync + 'static {
    /// Builds one upstream.
    fn build_upstream(&self, upstream: &str, trigger: &str)
    -> impl Future<Output = anyhow::Result<BuildReport>> + Send;

    /// What changed in the upstream since its last complete build, if anything.
    fn poll_upstream(&self, upstream: &str) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;
}

impl Builder for Farm {
    async fn build_upstream(&self, upstream: &str, trigger: &str) -> anyhow::Result<BuildReport> {
        self.build(Scope::Changed(Some(upstream.to_owned())), trigger, false).await
    }

    async fn poll_upstream(&self, upstream: &str) -> anyhow::Result<Option<String>> {
        changes_since_last_build(self, upstream).await
    }
}

/// Builds one upstream when triggered; triggers within `coalesce` of the first give one build,
/// and triggers during a build give (at most) one more.
struct Scheduler<B> {
    upstream: String,
    builder: Arc<B>,
    status: Arc<StatusBoard>,
    coalesce: Duration,
    stopping: CancellationToken,
}

impl<B: Builder> Scheduler<B> {
    async fn run(self, mut receiver: TriggerReceiver) {
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
            let result = self.builder.build_upstream(&self.upstream, &trigger).await;
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
struct Poller<B> {
    upstream: String,
    builder: Arc<B>,
    status: Arc<StatusBoard>,
    triggers: Triggers,
    metrics: Arc<Metrics>,
    interval: Duration,
    stopping: CancellationToken,
}

impl<B: Builder> Poller<B> {
    async fn run(self) {
        loop {
            // A build already waiting or running fetches anyway.
            if !self.status.is_busy(&self.upstream) {
                let result = match self.builder.poll_upstream(&self.upstream).await {
                    Ok(Some(why)) => {
                        info!(upstream = %self.upstream, %why, "poll found changes");
                        self.triggers.send(&self.upstream, &format!("poll: {why}"));
                        self.status.polled(&self.upstream, None);
                        "changed"
                    }
                    Ok(None) => {
                        self.status.polled(&self.upstream, None);
                        "unchanged"
                    }
                    Err(error) => {
                        let message = format!("{error:#}");
                        warn!(upstream = %self.upstream, error = %message, "poll failed");
                        self.status.polled(&self.upstream, Some(message));
                        "failed"
                    }
                };
                let labels = PollLabels { upstream: self.upstream.clone(), result: result.to_owned() };
                self.metrics.polls.get_or_create(&labels).inc();
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                () = self.stopping.cancelled() => return,
            }
        }
    }
}

/// What changed in `upstream` since its last complete build, if anything: its refs (fetched now)
/// or its rules, against the record the manifest keeps.
async fn changes_since_last_build(farm: &Farm, upstream: &str) -> anyhow::Result<Option<String>> {
    let config = farm.config().clone();
    let key = upstream.to_owned();
    let (refs, rules) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let upstream = config.upstreams.iter().find(|u| u.key == key).context("upstream vanished")?;
        let url = config.resolve_url(&upstream.url);
        let repo = GitCache::new(config.cache_dir()).sync(&url)?;
        let (refs, _) = crate::plan::refs::select_refs(upstream, &repo)?;
        Ok((refs.map(), rules_fingerprint(&config, upstream)))
    })
    .await
    .context("poll task panicked")??;
    let Some(record) = farm.upstream_record(upstream).await else {
        return Ok(Some("no complete build recorded yet".to_owned()));
    };
    if record.rules != rules {
        return Ok(Some("the rules or the program changed".to_owned()));
    }
    let new_or_moved: Vec<&String> =
        refs.iter().filter(|(name, commit)| record.refs.get(*name) != Some(*commit)).map(|(name, _)| name).collect();
    if let Some(first) = new_or_moved.first() {
        return Ok(Some(format!("{} new or moved ref(s), e.g. {first}", new_or_moved.len())));
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    //! The schedulers and pollers under paused time, against a fake farm (no git, no storage):
    //! absence is shown by letting virtual time pass, never by waiting on the wall clock. And
    //! [`run`] itself on a listener and a shutdown the test owns.

    use std::sync::Mutex;

    use tokio::sync::watch;
    use tokio::task::JoinSet;
    use tokio::time::Instant;

    use super::*;

    const UPSTREAM: &str = "acme";

    /// A finished build of the fake.
    #[derive(Debug, Clone)]
    struct Build {
        started: Instant,
        trigger: String,
    }

    /// An upstream whose head the test moves, and builds that record it (as a complete build
    /// records the refs in the manifest) after `build_time` of virtual time.
    struct FakeFarm {
        head: Mutex<u32>,
        recorded: Mutex<Option<u32>>,
        build_time: Duration,
        started: watch::Sender<usize>,
        builds: watch::Sender<Vec<Build>>,
        polls: watch::Sender<usize>,
    }

    impl Builder for FakeFarm {
        async fn build_upstream(&self, upstream: &str, trigger: &str) -> anyhow::Result<BuildReport> {
            assert_eq!(upstream, UPSTREAM);
            let started = Instant::now();
            let head = *self.head.lock().unwrap();
            self.started.send_modify(|count| *count += 1);
            tokio::time::sleep(self.build_time).await;
            *self.recorded.lock().unwrap() = Some(head);
            let mut number = 0;
            self.builds.send_modify(|builds| {
                builds.push(Build { started, trigger: trigger.to_owned() });
                number = builds.len();
            });
            Ok(BuildReport { build_id: format!("build-{number}"), ..BuildReport::default() })
        }

        async fn poll_upstream(&self, upstream: &str) -> anyhow::Result<Option<String>> {
            assert_eq!(upstream, UPSTREAM);
            let head = *self.head.lock().unwrap();
            let recorded = *self.recorded.lock().unwrap();
            self.polls.send_modify(|count| *count += 1);
            Ok(match recorded {
                None => Some("no complete build recorded yet".to_owned()),
                Some(recorded) if recorded != head => Some("1 new or moved ref(s)".to_owned()),
                Some(_) => None,
            })
        }
    }

    /// One upstream's scheduler (and poller) on the fake.
    struct Served {
        farm: Arc<FakeFarm>,
        status: Arc<StatusBoard>,
        triggers: Triggers,
        metrics: Arc<Metrics>,
        stopping: CancellationToken,
        tasks: JoinSet<()>,
    }

    impl Served {
        /// A scheduler with the window `coalesce`, builds of `build_time`, and a poller every
        /// `poll` if there is one.
        fn start(coalesce: Duration, build_time: Duration, poll: Option<Duration>) -> Served {
            let metrics = Arc::new(Metrics::new());
            let status =
                Arc::new(StatusBoard::new("embedded", &[(UPSTREAM.to_owned(), "file:///acme.git".to_owned())]));
            let farm = Arc::new(FakeFarm {
                head: Mutex::new(1),
                recorded: Mutex::new(None),
                build_time,
                started: watch::Sender::new(0),
                builds: watch::Sender::new(Vec::new()),
                polls: watch::Sender::new(0),
            });
            let stopping = CancellationToken::new();
            let (triggers, receivers) = Triggers::new([UPSTREAM.to_owned()], Arc::clone(&metrics));
            let mut tasks = JoinSet::new();
            for (upstream, receiver) in receivers {
                let scheduler = Scheduler {
                    upstream,
                    builder: Arc::clone(&farm),
                    status: Arc::clone(&status),
                    coalesce,
                    stopping: stopping.clone(),
                };
                tasks.spawn(scheduler.run(receiver));
            }
            if let Some(interval) = poll {
                let poller = Poller {
                    upstream: UPSTREAM.to_owned(),
                    builder: Arc::clone(&farm),
                    status: Arc::clone(&status),
                    triggers: triggers.clone(),
                    metrics: Arc::clone(&metrics),
                    interval,
                    stopping: stopping.clone(),
                };
                tasks.spawn(poller.run());
            }
            Served { farm, status, triggers, metrics, stopping, tasks }
        }

        /// Waits until `count` builds finished (in paused time: as long as that takes); all so far.
        async fn builds(&self, count: usize) -> Vec<Build> {
            self.farm.builds.subscribe().wait_for(|builds| builds.len() >= count).await.expect("the fake lives").clone()
        }

        async fn builds_started(&self, count: usize) {
            let _ = self.farm.started.subscribe().wait_for(|started| *started >= count).await.expect("the fake lives");
        }

        async fn polls(&self, count: usize) {
            let _ = self.farm.polls.subscribe().wait_for(|polls| *polls >= count).await.expect("the fake lives");
        }

        fn polled(&self) -> usize {
            *self.farm.polls.borrow()
        }

        fn finished(&self) -> Vec<Build> {
            self.farm.builds.borrow().clone()
        }

        fn state(&self) -> UpstreamState {
            self.status.snapshot().upstreams[0].state
        }

        /// A counter's value (0 before it was first counted).
        fn counter(&self, name: &str) -> u64 {
            let text = self.metrics.encode();
            text.lines()
                .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
                .map_or(0, |value| value.trim().parse().expect("a counter"))
        }

        /// Ten triggers 250 ms apart: 2.25 s from the first to the last.
        async fn burst(&self) -> Instant {
            let first = Instant::now();
            for n in 0..10 {
                self.triggers.send(UPSTREAM, &format!("github push {n}"));
                tokio::time::advance(Duration::from_millis(250)).await;
            }
            first
        }

        async fn stop(&mut self) {
            self.stopping.cancel();
            while let Some(joined) = self.tasks.join_next().await {
                joined.expect("a serve task panicked");
            }
        }
    }

    const TRIGGERS: &str = "farm_triggers_total{upstream=\"acme\"}";
    const POLLS_CHANGED: &str = "farm_polls_total{upstream=\"acme\",result=\"changed\"}";
    const POLLS_UNCHANGED: &str = "farm_polls_total{upstream=\"acme\",result=\"unchanged\"}";

    /// An hour of virtual time: anything still due (a window of 3 s, a build of 20 s) happens in it.
    const AN_HOUR: Duration = Duration::from_secs(3600);

    #[tokio::test(start_paused = true)]
    async fn polls_that_find_nothing_build_nothing() {
        let poll = Duration::from_secs(60);
        let mut served = Served::start(Duration::from_secs(1), Duration::from_secs(20), Some(poll));
        // The first poll finds no record of a complete build: one build.
        let first = served.builds(1).await;
        assert_eq!(first[0].trigger, "poll: no complete build recorded yet");
        // Eleven more polls. A trigger from any of the first ten would have built (1 s window,
        // 20 s build) before the next poll, 60 s later.
        served.polls(served.polled() + 11).await;
        assert_eq!(served.finished().len(), 1, "{:?}", served.finished());
        assert_eq!(served.state(), UpstreamState::Idle);
        assert_eq!(served.counter(POLLS_CHANGED), 1);
        assert!(served.counter(POLLS_UNCHANGED) >= 11);
        assert_eq!(served.counter(TRIGGERS), 1);

        // The head moves: the next poll builds it, once.
        *served.farm.head.lock().unwrap() = 2;
        let second = served.builds(2).await;
        assert_eq!(second[1].trigger, "poll: 1 new or moved ref(s)");
        served.polls(served.polled() + 11).await;
        assert_eq!(served.finished().len(), 2, "{:?}", served.finished());
        assert_eq!(served.counter(POLLS_CHANGED), 2);
        assert_eq!(served.counter(TRIGGERS), 2);
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_of_hooks_within_the_window_gives_one_build() {
        let coalesce = Duration::from_secs(3);
        let mut served = Served::start(coalesce, Duration::from_secs(20), None);
        let first_hook = served.burst().await;
        let builds = served.builds(1).await;
        assert_eq!(builds[0].trigger, "10 triggers, first: github push 0");
        // The window opens when the scheduler takes the first trigger (within the 250 ms after it
        // was sent) and later triggers do not extend it.
        let waited = builds[0].started - first_hook;
        assert!(waited >= coalesce && waited <= coalesce + Duration::from_millis(250), "{waited:?}");
        assert_eq!(served.counter(TRIGGERS), 10);
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn no_build_follows_the_coalesced_one() {
        let mut served = Served::start(Duration::from_secs(3), Duration::from_secs(20), None);
        served.burst().await;
        served.builds(1).await;
        tokio::time::sleep(AN_HOUR).await;
        assert_eq!(served.finished().len(), 1, "{:?}", served.finished());
        assert_eq!(*served.farm.started.borrow(), 1);
        assert_eq!(served.state(), UpstreamState::Idle);
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn triggers_during_a_build_give_one_more_build() {
        let build_time = Duration::from_secs(20);
        let mut served = Served::start(Duration::from_secs(3), build_time, None);
        served.triggers.send(UPSTREAM, "startup");
        served.builds_started(1).await;
        for n in 0..5 {
            served.triggers.send(UPSTREAM, &format!("trigger {n}"));
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        let builds = served.builds(2).await;
        assert_eq!(builds[0].trigger, "startup");
        assert_eq!(builds[1].trigger, "5 triggers, first: trigger 0");
        assert!(builds[1].started >= builds[0].started + build_time, "{builds:?}");
        tokio::time::sleep(AN_HOUR).await;
        assert_eq!(served.finished().len(), 2, "{:?}", served.finished());
        served.stop().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_within_the_window_builds_nothing() {
        let mut served = Served::start(Duration::from_secs(3), Duration::from_secs(20), None);
        served.triggers.send(UPSTREAM, "github push");
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(served.state(), UpstreamState::Waiting);
        served.stop().await;
        assert_eq!(*served.farm.started.borrow(), 0);
    }

    #[tokio::test]
    async fn run_serves_on_the_given_listener_until_its_shutdown() {
        const TOKEN: &str = "trigger-token-for-the-test";
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let config = FarmConfig::from_toml(&format!(
            r#"[repository]
base_url = "http://127.0.0.1:9/repo/"
output = "{out}"

[build]
cache_dir = "{cache}"

[serve]
poll_interval = "0s"
coalesce = "1h"
trigger_token = "{TOKEN}"

[[upstreams]]
key = "acme"
url = "{missing}"

[[upstreams.package_dirs]]
dir = "app/code/Acme"
"#,
            out = out.display(),
            cache = dir.path().join("cache").display(),
            missing = dir.path().join("missing.git").display(),
        ))
        .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let served = tokio::spawn(run(ServeOptions { config, out }, listener, shutdown.clone().cancelled_owned()));

        let client = reqwest::Client::new();
        let url = |path: &str| format!("http://{address}{path}");
        let health = client.get(url("/healthz")).send().await.unwrap();
        assert_eq!((health.status().as_u16(), health.text().await.unwrap().as_str()), (200, "ok\n"));
        assert_eq!(client.get(url("/readyz")).send().await.unwrap().status().as_u16(), 200);
        let triggered = client.post(url("/hooks/trigger")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(triggered.status().as_u16(), 202);
        // The startup catch-up and the trigger; both wait in the hour-long window.
        let metrics = client.get(url("/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains(&format!("{TRIGGERS} 2")), "{metrics}");

        shutdown.cancel();
        served.await.expect("run panicked").expect("run stops cleanly");
        assert!(tokio::net::TcpStream::connect(address).await.is_err(), "the listener is closed");
        assert!(!dir.path().join("out/packages.json").exists(), "nothing was built");
    }
}
