//! Builds: sync upstreams, plan, dispatch jobs (in-process workers or RabbitMQ), record results
//! in the manifest, then publish metadata (last). [`Farm`] holds what builds share (storage, its
//! lock, the manifest), so `coordinator serve` can run builds of different upstreams at once.

use std::collections::{HashMap, HashSet};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use shared::additional::{AdditionalPackage, AdditionalPackages};
use shared::config::StorageKind;
use shared::config::{FarmConfig, VersionRule, redact_url};
use shared::git::GitCache;
use shared::messages::{BuildId, BuildJob, JobId, Outcome, SCHEMA_VERSION, Source};
use shared::s3::S3Storage;
use shared::storage::{AnyStorage, LocalStorage, STATE_PREFIX, Storage};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, debug, info, warn};

use crate::dispatch::{self, Event};
use crate::distro::{self, TargetState};
use crate::report::DeadLetterNote;

use crate::manifest::{Manifest, ManifestEntry, UpstreamRecord};
use crate::metrics::{BuildLabels, Metrics, UpstreamLabel};
use crate::plan::{self, Candidate, Rejection, RepositoryFailure};
use crate::report::{BuildReport, PackageOutcome, Provided, SourceChanged, UpstreamTags};

/// Results between intermediate manifest saves.
const MANIFEST_SAVE_EVERY: usize = 100;

/// Settings of one build after command-line overrides.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The configuration.
    pub config: FarmConfig,
    /// Output folder (repository root).
    pub out: PathBuf,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
}

/// What planning decided, before anything is built.
#[derive(Debug, Default)]
pub struct Planned {
    /// Jobs to run, one per name@version.
    pub to_build: Vec<Candidate>,
    /// Prebuilt archives to publish (not yet in the manifest).
    pub additional: Vec<AdditionalPackage>,
    /// name@version already published.
    pub unchanged: Vec<String>,
    /// The report so far (rejections, repository failures, tags).
    pub report: BuildReport,
    /// Per planned upstream, the refs read (`refs/...` to commit).
    pub refs: std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
}

/// What a build covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every upstream (`coordinator build`).
    All,
    /// One upstream (`coordinator serve`: a webhook or poll for its repository).
    Upstream(String),
}

impl Scope {
    /// Whether the upstream is part of the build.
    pub fn includes(&self, upstream: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::Upstream(key) => key == upstream,
        }
    }

    /// `all` or the upstream key (metric label, status).
    pub fn label(&self) -> &str {
        match self {
            Scope::All => "all",
            Scope::Upstream(key) => key,
        }
    }
}

/// Fingerprint of what decides an upstream's packages besides git: its rules and this program's
/// version. Recorded with the refs; a change makes polling plan the upstream again.
pub fn rules_fingerprint(config: &FarmConfig, upstream: &shared::config::UpstreamConfig) -> String {
    use sha2::Digest as _;
    let mut text = format!(
        "{}\n{}\n{upstream:?}\n{:?}",
        env!("CARGO_PKG_VERSION"),
        config.resolve_url(&upstream.url),
        config.target
    );
    // The input files' contents decide versions and composer.json too.
    for path in [&config.target.upstream_versions, &config.target.base_require].into_iter().flatten() {
        let digest = std::fs::read(path).map(|bytes| hex::encode(sha2::Sha256::digest(&bytes)));
        text.push_str(&format!("\n{}: {}", path.display(), digest.unwrap_or_else(|e| e.to_string())));
    }
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Syncs the upstreams in scope and plans the build against the manifest.
pub async fn plan_build(config: &FarmConfig, manifest: &Manifest, scope: &Scope) -> anyhow::Result<Planned> {
    let cache = Arc::new(GitCache::new(config.cache_dir()));
    let mut state = TargetState::load(config, SystemTime::now()).context("cannot read the target's inputs")?;
    if let Scope::Upstream(key) = scope
        && !config.upstreams.iter().any(|u| &u.key == key)
    {
        anyhow::bail!("no upstream '{key}' in the configuration");
    }
    // Nightly versions pin every package to its siblings' versions, and release metapackages and
    // aliases span upstreams: such targets always plan every upstream.
    let spanning = config.target.versions != VersionRule::Tagged;
    let scope = if spanning { &Scope::All } else { scope };
    let config = Arc::new(config.clone());
    // Upstreams are fetched and planned in parallel (bounded), and combined in config order.
    let limit = Arc::new(tokio::sync::Semaphore::new(config.workers().max(1)));
    let in_scope: Vec<usize> =
        (0..config.upstreams.len()).filter(|&i| scope.includes(&config.upstreams[i].key)).collect();
    // First pass: fetch, and read what spans upstreams (latest tags, the nightly version map).
    let mut tasks = Vec::new();
    for &index in &in_scope {
        let (cache, config, limit) = (Arc::clone(&cache), Arc::clone(&config), Arc::clone(&limit));
        let (nightly, resources) = (state.rule == VersionRule::Nightly, state.resources.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let upstream = &config.upstreams[index];
                let url = config.resolve_url(&upstream.url);
                let shown = redact_url(&url);
                let failure = |e: shared::git::GitError| RepositoryFailure {
                    upstream: upstream.key.clone(),
                    url: shown.clone(),
                    reason: e.to_string(),
                };
                info!(upstream = %upstream.key, url = %shown, "fetching upstream");
                let repo = cache.sync(&url).map_err(failure)?;
                let (tags, _) = shared::git::list_tags(&repo).map_err(failure)?;
                let latest = shared::distribution::latest_tag(tags.iter().map(|t| t.name.as_str()))
                    .and_then(|name| tags.into_iter().find(|t| t.name == name));
                let nightly = if nightly {
                    let flavours = &config.target.flavours;
                    Some(
                        distro::nightly_entries(upstream, &repo, latest.as_ref(), resources.as_deref(), flavours)
                            .map_err(failure)?,
                    )
                } else {
                    None
                };
                Ok::<_, RepositoryFailure>((repo, latest, nightly))
            })
            .await
        }));
    }
    let mut synced = Vec::new();
    let mut planned = Planned::default();
    for (&index, task) in in_scope.iter().zip(tasks) {
        let upstream = &config.upstreams[index];
        match task.await.context("fetching task panicked")?.context("fetching task panicked")? {
            Ok((repo, latest, nightly)) => {
                state.add_latest_tag(&upstream.url, latest.map(|tag| tag.name));
                if let Some((base, entries)) = nightly {
                    state.add_nightly_entries(&upstream.key, &base, entries);
                }
                synced.push((index, repo));
            }
            Err(failure) => {
                warn!(upstream = %failure.upstream, reason = %failure.reason, "upstream failed");
                planned.report.repository_failures.push(failure);
            }
        }
    }
    if spanning && !planned.report.repository_failures.is_empty() {
        // Without every upstream the version map and the metapackages would be incomplete, and
        // what was published under these versions could never be made whole (the reference
        // aborts too). Nothing is built; the failures are reported.
        warn!("an upstream could not be read: nothing is built for this nightly or release target");
        return Ok(planned);
    }
    // Second pass: plan every upstream against the complete inputs.
    let state = Arc::new(state);
    let mut tasks = Vec::new();
    for (index, repo) in synced {
        let (config, limit, state) = (Arc::clone(&config), Arc::clone(&limit), Arc::clone(&state));
        tasks.push((
            index,
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore is never closed");
                tokio::task::spawn_blocking(move || {
                    let upstream = &config.upstreams[index];
                    info!(upstream = %upstream.key, "planning");
                    plan::plan_upstream(&config, upstream, &repo, &state).map_err(|e| RepositoryFailure {
                        upstream: upstream.key.clone(),
                        url: redact_url(&config.resolve_url(&upstream.url)),
                        reason: e.to_string(),
                    })
                })
                .await
            }),
        ));
    }
    let mut candidates = Vec::new();
    for (index, task) in tasks {
        let upstream = &config.upstreams[index];
        match task.await.context("planning task panicked")?.context("planning task panicked")? {
            Ok(upstream_plan) => {
                planned.refs.insert(upstream.key.clone(), upstream_plan.refs);
                planned.report.rejected.extend(upstream_plan.rejections);
                planned.report.tags.push(UpstreamTags { upstream: upstream.key.clone(), tags: upstream_plan.tags });
                candidates.extend(upstream_plan.candidates);
            }
            Err(failure) => {
                warn!(upstream = %failure.upstream, reason = %failure.reason, "upstream failed");
                planned.report.repository_failures.push(failure);
            }
        }
    }
    let additional = match &config.repository.additional_packages {
        Some(dir) => {
            let shown = dir.display().to_string();
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || AdditionalPackages::scan(&dir))
                .await
                .context("scan task panicked")?
                .with_context(|| format!("cannot read additional packages folder {shown}"))?
        }
        None => AdditionalPackages::default(),
    };
    for (file, reason) in &additional.problems {
        planned.report.rejected.push(Rejection {
            upstream: "additional".to_owned(),
            tag: None,
            dir: Some(file.clone()),
            reason: reason.clone(),
        });
    }
    let mut winners = plan::resolve(candidates);
    planned.report.flavours = distro::apply_flavours(&mut winners, &config.target.flavours);
    if config.target.versions == VersionRule::Release && config.target.aliases {
        let vendor = config.target.vendor.clone().unwrap_or_else(|| shared::config::DEFAULT_VENDOR.to_owned());
        if vendor != shared::config::DEFAULT_VENDOR {
            for alias in distro::alias_candidates(&winners, &vendor, &|id| manifest.contains(id)) {
                match shared::identity::check(&alias.package, &alias.version, &alias.key) {
                    Ok(()) => winners.push(alias),
                    Err(reason) => planned.report.rejected.push(Rejection {
                        upstream: "aliases".to_owned(),
                        tag: Some(alias.tag.clone()),
                        dir: None,
                        reason: format!("no alias metapackage: {reason}"),
                    }),
                }
            }
        }
    }
    planned.report.inputs = state.inputs();
    let mut built_ids = std::collections::HashSet::new();
    for candidate in winners {
        // As the reference: a name@version a prebuilt archive provides is never written from git.
        let (final_name, final_version) = &candidate.final_identity;
        if let Some(file) = additional.provider(final_name, final_version) {
            planned.report.provided.push(Provided {
                package: candidate.package.clone(),
                version: candidate.version.clone(),
                upstream: candidate.upstream.clone(),
                tag: candidate.tag.clone(),
                file: file.to_owned(),
            });
            continue;
        }
        built_ids.insert(candidate.id());
        let published = manifest.packages.get(&candidate.id());
        // A branch version moves: a new content digest (so a new key) is a new archive.
        if candidate.branch && published.is_some_and(|p| p.key != candidate.target_key()) {
            planned.to_build.push(candidate);
        } else if let Some(published) = published {
            if let Some(what) = source_difference(published, &candidate) {
                planned.report.source_changed.push(SourceChanged {
                    package: candidate.package.clone(),
                    version: candidate.version.clone(),
                    published_from: published.git_ref.clone(),
                    now_from: candidate.tag.clone(),
                    what,
                });
            }
            planned.unchanged.push(candidate.id());
        } else {
            planned.to_build.push(candidate);
        }
    }
    for package in additional.packages {
        let id = format!("{}@{}", package.name, package.version);
        if built_ids.contains(&id) {
            planned.report.rejected.push(Rejection {
                upstream: "additional".to_owned(),
                tag: None,
                dir: Some(package.file_name.clone()),
                reason: format!("{id} is also built from git (its file name does not follow <vendor>-<name>-<version>.zip); not published"),
            });
        } else if manifest.contains(&id) {
            planned.unchanged.push(id);
        } else {
            planned.additional.push(package);
        }
    }
    Ok(planned)
}

/// How today's winning candidate differs from what was published, if it does (only for entries
/// this farm built from the same upstream; prebuilt and adopted archives have no git source).
fn source_difference(published: &ManifestEntry, candidate: &Candidate) -> Option<String> {
    if published.upstream != candidate.upstream {
        return None;
    }
    let published_json = shared::json::stringify_pretty(&serde_json::Value::Object(published.composer.clone()));
    if published_json != candidate.composer_json {
        Some("the generated composer.json differs".to_owned())
    } else if published.tree_id != candidate.tree_id.to_string() {
        Some(format!("the package tree differs ({} -> {})", published.tree_id, candidate.tree_id))
    } else {
        None
    }
}

/// Runs a whole build of every upstream (`coordinator build`) and returns its report (also stored
/// as `.farm/report.json`).
pub async fn run(options: BuildOptions) -> anyhow::Result<BuildReport> {
    let farm = Farm::open(
        options.config.clone(),
        &options.out,
        Arc::new(Metrics::new()),
        CancellationToken::new(),
        Duration::ZERO,
    )
    .await?;
    let result = farm.build(Scope::All, "command line", options.progress).await;
    farm.close().await;
    result
}

/// The storage, its lock and the manifest, shared by the builds of one coordinator process.
/// Builds of different upstreams may run at once: each records its results in the shared
/// manifest, and saving the manifest and publishing the metadata happen one at a time.
pub struct Farm {
    config: FarmConfig,
    storage: Arc<AnyStorage>,
    /// Taken out when the farm closes.
    lock: std::sync::Mutex<Option<crate::lock::StorageLock>>,
    manifest: tokio::sync::Mutex<Manifest>,
    /// Serialises manifest saves and metadata publishing.
    writes: tokio::sync::Mutex<()>,
    /// Only an output this farm already manages has metadata that is ours to prune.
    farm_managed: AtomicBool,
    metrics: Arc<Metrics>,
    /// Cancelled on shutdown: running builds stop waiting for results after `grace`.
    stopping: CancellationToken,
    grace: Duration,
    builds_started: AtomicU64,
}

impl Farm {
    /// Opens the configured storage, takes the bucket's lock and loads the manifest.
    pub async fn open(
        config: FarmConfig,
        out: &std::path::Path,
        metrics: Arc<Metrics>,
        stopping: CancellationToken,
        grace: Duration,
    ) -> anyhow::Result<Farm> {
        let storage = Arc::new(open_storage(&config, out).await?);
        let owner = format!("{}-{}", shared::storage::hostname(), std::process::id());
        let lock = match storage.as_ref() {
            AnyStorage::S3(s3) => Some(crate::lock::StorageLock::acquire(s3, &owner).await?),
            AnyStorage::Local(_) => None,
        };
        let manifest = match Manifest::load(storage.as_ref()).await.context("cannot load manifest") {
            Ok(manifest) => manifest,
            Err(error) => {
                if let Some(lock) = lock {
                    lock.release().await;
                }
                return Err(error);
            }
        };
        Ok(Farm {
            farm_managed: AtomicBool::new(!manifest.packages.is_empty()),
            manifest: tokio::sync::Mutex::new(manifest),
            writes: tokio::sync::Mutex::new(()),
            config,
            storage,
            lock: std::sync::Mutex::new(lock),
            metrics,
            stopping,
            grace,
            builds_started: AtomicU64::new(0),
        })
    }

    /// Releases the bucket's lock (later writes fail) and removes temporary files. (The local
    /// folder's lock goes when the last handle of the storage is dropped.)
    pub async fn close(&self) {
        let lock = self.lock.lock().expect("lock slot").take();
        if let Some(lock) = lock {
            lock.release().await;
        }
        self.storage.cleanup();
    }

    /// Whether the bucket is still ours (no lock: a local folder, locked by the storage itself).
    fn lock_check(&self) -> Result<(), shared::storage::StorageError> {
        self.lock.lock().expect("lock slot").as_ref().map_or(Ok(()), |lock| lock.check())
    }

    /// The configuration.
    pub fn config(&self) -> &FarmConfig {
        &self.config
    }

    /// Whether the bucket is still ours (always, for a local folder).
    pub fn lock_held(&self) -> bool {
        self.lock_check().is_ok()
    }

    /// What the manifest records of an upstream's last complete build.
    pub async fn upstream_record(&self, upstream: &str) -> Option<UpstreamRecord> {
        self.manifest.lock().await.upstreams.get(upstream).cloned()
    }

    fn next_build_id(&self) -> BuildId {
        let n = self.builds_started.fetch_add(1, Ordering::Relaxed);
        BuildId(format!("{}-{}-{n}", crate::lock::unix_seconds(), std::process::id()))
    }

    /// Plans the scope, builds what changed, records it and publishes the metadata. Every log
    /// line of the build carries its id.
    pub async fn build(&self, scope: Scope, trigger: &str, progress: bool) -> anyhow::Result<BuildReport> {
        let build_id = self.next_build_id();
        let span = tracing::info_span!("build", build_id = %build_id.0, scope = %scope.label());
        let started = Instant::now();
        let result = self.build_inner(build_id, &scope, trigger, progress).instrument(span).await;
        let label = UpstreamLabel { upstream: scope.label().to_owned() };
        self.metrics.build_duration.get_or_create(&label).observe(started.elapsed().as_secs_f64());
        let outcome = match &result {
            Ok(report) if report.failed.is_empty() && report.repository_failures.is_empty() => "succeeded",
            Ok(_) => "failed",
            Err(_) => "error",
        };
        self.metrics.builds.get_or_create(&BuildLabels { upstream: label.upstream, result: outcome.to_owned() }).inc();
        result
    }

    async fn build_inner(
        &self,
        build_id: BuildId,
        scope: &Scope,
        trigger: &str,
        progress: bool,
    ) -> anyhow::Result<BuildReport> {
        let started = Instant::now();
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let config = &self.config;
        let storage = &self.storage;
        let workers = config.workers();
        info!(trigger, workers, "starting build");
        let snapshot = self.manifest.lock().await.clone();
        let planned = plan_build(config, &snapshot, scope).await?;
        drop(snapshot);
        let mut report = planned.report;
        report.build_id = build_id.0.clone();
        report.started_at = started_at;
        report.trigger = trigger.to_owned();
        report.workers = workers;
        report.mode = if config.is_distributed() { "distributed" } else { "embedded" }.to_owned();
        report.unchanged = planned.unchanged;
        let mut dirty = false;

        // Archives a stopped build stored but never recorded are checked and recorded, not built.
        // The upstreams planned (an unreadable one has no refs and is left as it was).
        let planned_upstreams: Vec<String> = planned.refs.keys().cloned().collect();
        let inflight = self.inflight_keys(&planned_upstreams).await;
        let mut to_build = Vec::with_capacity(planned.to_build.len());
        for candidate in planned.to_build {
            if inflight.contains(&candidate.target_key())
                && let Some(entry) = stored_archive_of(storage.as_ref(), &candidate).await
            {
                info!(package = %candidate.package, version = %candidate.version, "archive stored by a stopped build; recorded");
                report.resumed.push(candidate.id());
                self.manifest.lock().await.packages.insert(candidate.id(), entry);
                dirty = true;
                continue;
            }
            to_build.push(candidate);
        }
        report.planning_seconds = started.elapsed().as_secs_f64();
        info!(
            jobs = to_build.len(),
            unchanged = report.unchanged.len(),
            resumed = report.resumed.len(),
            rejected = report.rejected.len(),
            "plan ready"
        );

        let mut pending: HashMap<String, Candidate> = HashMap::new();
        let mut jobs = Vec::with_capacity(to_build.len());
        for (index, candidate) in to_build.into_iter().enumerate() {
            let job = BuildJob {
                schema: SCHEMA_VERSION,
                job_id: JobId(format!("{}-{index}", build_id.0)),
                build_id: build_id.clone(),
                package: candidate.package.clone(),
                version: candidate.version.clone(),
                source: Source {
                    repo_url: candidate.repo_url.clone(),
                    git_ref: candidate.tag.clone(),
                    commit: candidate.commit.to_string(),
                },
                content: candidate.content.clone(),
                composer_json: candidate.composer_json.clone(),
                target_key: candidate.target_key(),
                attempt: 1,
                files: candidate.files.clone(),
            };
            pending.insert(job.job_id.0.clone(), candidate);
            jobs.push(job);
        }
        self.write_inflight(pending.values()).await;

        let (events, mut received) = tokio::sync::mpsc::channel(1024);
        let done = CancellationToken::new();
        self.metrics.jobs_published.inc_by(jobs.len() as u64);
        self.metrics.jobs_pending.inc_by(jobs.len() as i64);
        let dispatcher = match &config.queue {
            None => {
                let cache = Arc::new(GitCache::new(config.cache_dir()));
                let pipeline = worker::Pipeline::new(workers, config.storage.uploads);
                tokio::spawn(dispatch::in_process(jobs, events, cache, Arc::clone(storage), pipeline, done.clone()))
            }
            Some(queue) => tokio::spawn(dispatch::amqp(queue.clone(), build_id.clone(), jobs, events, done.clone())),
        };
        let idle_limit = config.queue.as_ref().map(|queue| queue.result_timeout);

        let progress = progress_bar(progress, pending.len() as u64);
        let total = pending.len();
        let mut timed_out = false;
        let mut stopped = false;
        // The in-process queue has every job at once; the broker's confirms say when they are out.
        let mut published = config.queue.is_none();
        let mut stop_at: Option<tokio::time::Instant> = None;
        // Only this build's results and dead letters move the deadline; other builds' traffic does not.
        let mut deadline = idle_limit.map(|limit| tokio::time::Instant::now() + limit);
        while !pending.is_empty() {
            // On shutdown: jobs are published first, then results are awaited for `grace`.
            if stop_at.is_none() && published && self.stopping.is_cancelled() {
                info!(pending = pending.len(), grace = ?self.grace, "stopping: waiting for results in flight");
                stop_at = Some(tokio::time::Instant::now() + self.grace);
            }
            let wake = [deadline, stop_at].into_iter().flatten().min();
            let watch_stop = stop_at.is_none() && published;
            let event = tokio::select! {
                event = received.recv() => event,
                () = sleep_until(wake) => {
                    if stop_at.is_some_and(|at| tokio::time::Instant::now() >= at) {
                        stopped = true;
                    } else {
                        timed_out = true;
                    }
                    break;
                }
                () = self.stopping.cancelled(), if watch_stop => continue,
            };
            let (candidate, outcome, attempts) = match event {
                None => break,
                Some(Event::Published) => {
                    published = true;
                    continue;
                }
                Some(Event::Result(result)) => match pending.remove(&result.job_id.0) {
                    Some(candidate) => (candidate, result.outcome, result.attempts),
                    None => {
                        // A redelivered job answers twice; the first answer counted.
                        debug!(job_id = %result.job_id.0, "result for a job already answered (or of another build)");
                        continue;
                    }
                },
                Some(Event::DeadLetter(letter)) => {
                    let ours = letter.build_id.as_deref() == Some(build_id.0.as_str());
                    match letter.job_id.as_ref().filter(|_| ours).and_then(|id| pending.remove(id)) {
                        Some(candidate) => {
                            let reason = format!("dead-lettered: {}", letter.reason);
                            (candidate, Outcome::Failed { reason }, 1)
                        }
                        None => {
                            if letter.build_id.is_none() {
                                warn!(reason = %letter.reason, "a message that is not a job was dead-lettered");
                                report
                                    .dead_letters
                                    .push(DeadLetterNote { reason: letter.reason, excerpt: letter.excerpt });
                            }
                            continue;
                        }
                    }
                }
            };
            if let (Some(at), Some(limit)) = (deadline.as_mut(), idle_limit) {
                *at = tokio::time::Instant::now() + limit;
            }
            self.metrics.jobs_pending.dec();
            self.metrics.jobs_retried.inc_by(u64::from(attempts.saturating_sub(1)));
            match &outcome {
                Outcome::Built { size, .. } => {
                    self.metrics.jobs_succeeded.inc();
                    self.metrics.bytes_uploaded.inc_by(*size);
                    dirty = true;
                }
                Outcome::Failed { .. } => {
                    self.metrics.jobs_failed.inc();
                }
            }
            {
                let mut manifest = self.manifest.lock().await;
                dirty |= record_outcome(storage.as_ref(), &mut manifest, &mut report, &candidate, outcome).await?;
            }
            let done_count = report.built.len() + report.failed.len();
            // A killed build resumes from here instead of from the start.
            // (Best effort: storage may be away for a while; the final save retries.)
            if done_count % MANIFEST_SAVE_EVERY == 0 {
                self.lock_check()?;
                if let Err(error) = self.save_manifest().await {
                    warn!(error = format!("{error:#}"), "cannot save the manifest now; the final save tries again");
                }
            }
            match &progress {
                Some(bar) => {
                    bar.set_message(format!("{} {}", candidate.package, candidate.version));
                    bar.inc(1);
                }
                None => info!(package = %candidate.package, version = %candidate.version, "{done_count}/{total} done"),
            }
        }
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        done.cancel();
        drop(received);
        // The dispatcher stops at `done`; one stuck on an unresponsive broker is not waited for.
        let abort = dispatcher.abort_handle();
        let dispatch_error = match tokio::time::timeout(Duration::from_secs(30), dispatcher).await {
            Ok(joined) => joined.context("dispatcher panicked")?.err().map(|error| error.to_string()),
            Err(_) => {
                abort.abort();
                warn!("the dispatcher did not stop within 30s; abandoned");
                None
            }
        };
        // A job whose result never arrived is a failure, not silence.
        let missing_reason = match (&dispatch_error, idle_limit) {
            (Some(error), _) => format!("no result: {error}"),
            _ if stopped => "the coordinator stopped before the result came back; the next build records the \
                             archive if it was stored, else builds it"
                .to_owned(),
            (None, Some(limit)) if timed_out => format!(
                "no result within {} (result_timeout): the job may still be queued or running; a later build picks it up",
                humantime::format_duration(limit)
            ),
            _ => "no result came back from the worker".to_owned(),
        };
        if !pending.is_empty() {
            warn!(missing = pending.len(), reason = %missing_reason, "results missing");
            self.metrics.jobs_pending.dec_by(pending.len() as i64);
            // Jobs cut off by a shutdown are not failures: the next start finishes them.
            if !stopped {
                self.metrics.jobs_failed.inc_by(pending.len() as u64);
            }
        }
        let unanswered: Vec<Candidate> = pending.into_values().collect();
        for candidate in &unanswered {
            let outcome = PackageOutcome { reason: Some(missing_reason.clone()), ..outcome_for(candidate) };
            report.failed.push(outcome);
        }
        for package in planned.additional {
            let mut manifest = self.manifest.lock().await;
            dirty |= publish_additional(storage.as_ref(), &mut manifest, &mut report, package).await;
        }
        sort_outcomes(&mut report);

        // Upstreams where every package is published are done at these refs: polling compares
        // against them. One with failures is planned again at the next poll.
        for (key, refs) in planned.refs {
            if report.failed.iter().any(|f| f.upstream == key) {
                continue;
            }
            let Some(upstream) = config.upstreams.iter().find(|u| u.key == key) else { continue };
            let record = UpstreamRecord { rules: rules_fingerprint(config, upstream), refs };
            let mut manifest = self.manifest.lock().await;
            if manifest.upstreams.get(&key).is_none_or(|old| old.refs != record.refs || old.rules != record.rules) {
                manifest.upstreams.insert(key.clone(), record);
                dirty = true;
            }
            drop(manifest);
            let seconds = crate::lock::unix_seconds() as i64;
            self.metrics.last_success.get_or_create(&UpstreamLabel { upstream: key }).set(seconds);
        }

        // Archives are stored; record them, then publish metadata that names only stored archives.
        // Storage may be unreachable for a while (the S3 outage the workers survive): retry.
        if dirty {
            with_retries("save the manifest", || async {
                self.lock_check()?;
                self.save_manifest().await
            })
            .await?;
        }
        with_retries("publish the metadata", || async {
            self.lock_check()?;
            self.publish().await
        })
        .await?;
        self.finish_inflight(&planned_upstreams, &unanswered).await;
        report.duration_seconds = started.elapsed().as_secs_f64();
        let mut report_bytes = serde_json::to_vec_pretty(&report).expect("report serialises");
        report_bytes.push(b'\n');
        with_retries("save the report", || async {
            storage
                .put_replace(&format!("{STATE_PREFIX}/report.json"), report_bytes.clone())
                .await
                .context("cannot save report")
        })
        .await?;
        info!(
            built = report.built.len(),
            failed = report.failed.len(),
            seconds = report.duration_seconds,
            "build finished"
        );
        Ok(report)
    }

    /// The storage the farm publishes to.
    pub fn storage(&self) -> &AnyStorage {
        &self.storage
    }

    /// Whether the manifest already has `name@version`.
    pub async fn knows(&self, id: &str) -> bool {
        self.manifest.lock().await.contains(id)
    }

    /// Records archives taken over from an existing repository, and saves the manifest.
    pub async fn record_adopted(&self, entries: Vec<ManifestEntry>) -> anyhow::Result<()> {
        {
            let mut manifest = self.manifest.lock().await;
            for entry in entries {
                manifest.packages.insert(format!("{}@{}", entry.name, entry.version), entry);
            }
        }
        self.farm_managed.store(true, Ordering::SeqCst);
        self.save_manifest().await
    }

    /// Saves the manifest as it is now (one save at a time, so a later save never loses to an
    /// earlier one).
    async fn save_manifest(&self) -> anyhow::Result<()> {
        let _writing = self.writes.lock().await;
        let bytes = self.manifest.lock().await.to_bytes();
        Manifest::save_bytes(self.storage.as_ref(), bytes).await.context("cannot save manifest")
    }

    /// Publishes the metadata of the manifest as it is now.
    async fn publish(&self) -> anyhow::Result<usize> {
        let _writing = self.writes.lock().await;
        let versions = self.manifest.lock().await.published_versions();
        let prune = self.farm_managed.load(Ordering::Relaxed);
        let uploads = self.config.storage.uploads;
        let published = crate::publish::publish_metadata(
            self.storage.as_ref(),
            &self.config.repository.base_url,
            &versions,
            prune,
            uploads,
        )
        .await?;
        self.farm_managed.store(true, Ordering::Relaxed);
        Ok(published.written)
    }

    /// Keys that stopped builds of these upstreams may have stored without recording them.
    async fn inflight_keys(&self, upstreams: &[String]) -> HashSet<String> {
        let mut keys = HashSet::new();
        for upstream in upstreams {
            match self.storage.get(&inflight_key(upstream)).await {
                Ok(Some(bytes)) => match serde_json::from_slice::<Inflight>(&bytes) {
                    Ok(record) => keys.extend(record.keys),
                    Err(error) => warn!(%upstream, %error, "unreadable in-flight record ignored"),
                },
                Ok(None) => {}
                Err(error) => {
                    warn!(%upstream, %error, "cannot read the in-flight record; its archives are built again")
                }
            }
        }
        keys
    }

    /// Before dispatching: notes the keys each upstream's jobs will write, so that a build
    /// stopped half-way is resumed from storage instead of rebuilt.
    async fn write_inflight<'c>(&self, candidates: impl Iterator<Item = &'c Candidate>) {
        let mut by_upstream: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
        for candidate in candidates {
            by_upstream.entry(candidate.upstream.as_str()).or_default().push(candidate.target_key());
        }
        for (upstream, mut keys) in by_upstream {
            keys.sort();
            self.put_inflight(upstream, keys).await;
        }
    }

    /// After a build: the in-flight record keeps only the keys still unanswered.
    async fn finish_inflight(&self, upstreams: &[String], unanswered: &[Candidate]) {
        for upstream in upstreams {
            let mut keys: Vec<String> =
                unanswered.iter().filter(|c| &c.upstream == upstream).map(Candidate::target_key).collect();
            if keys.is_empty() {
                if let Err(error) = self.storage.delete(&inflight_key(upstream)).await {
                    warn!(%upstream, %error, "cannot delete the in-flight record");
                }
            } else {
                keys.sort();
                self.put_inflight(upstream, keys).await;
            }
        }
    }

    async fn put_inflight(&self, upstream: &str, keys: Vec<String>) {
        let mut bytes = serde_json::to_vec_pretty(&Inflight { keys }).expect("record serialises");
        bytes.push(b'\n');
        if let Err(error) = self.storage.put_replace(&inflight_key(upstream), bytes).await {
            warn!(%upstream, %error, "cannot write the in-flight record; a stopped build would rebuild its archives");
        }
    }
}

/// Archive keys a build of one upstream is writing (`.farm/inflight/<upstream>.json`).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Inflight {
    keys: Vec<String>,
}

fn inflight_key(upstream: &str) -> String {
    let safe: String =
        upstream.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{STATE_PREFIX}/inflight/{safe}.json")
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The manifest entry for an archive a stopped build stored: only if it is there, is this
/// package at this version, and carries exactly the composer.json the plan generated.
async fn stored_archive_of(storage: &AnyStorage, candidate: &Candidate) -> Option<ManifestEntry> {
    let key = candidate.target_key();
    let bytes = storage.get(&key).await.ok()??;
    let composer = shared::additional::composer_json_of_zip(std::io::Cursor::new(&bytes)).ok()?;
    let expected: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&candidate.composer_json).ok()?;
    if composer != expected {
        warn!(%key, "a stored archive does not carry the planned composer.json; building it again");
        return None;
    }
    Some(manifest_entry(candidate, StoredArchive::of_bytes(key, &bytes), composer))
}

/// Runs `attempt` until it succeeds, up to 7 tries over about two minutes (2 s doubling to 32 s).
/// A lost lock is not retried.
async fn with_retries<T, F, Fut>(what: &str, mut attempt: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    use backon::BackoffBuilder as _;
    let delays = backon::ExponentialBuilder::new()
        .with_min_delay(std::time::Duration::from_secs(2))
        .with_max_delay(std::time::Duration::from_secs(32))
        .with_factor(2.0)
        .with_max_times(6)
        .build();
    for delay in delays {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if error.downcast_ref::<shared::storage::StorageError>().is_some_and(|e| !e.is_transient()) => {
                return Err(error);
            }
            Err(error) => {
                warn!(error = format!("{error:#}"), retry_in = ?delay, "cannot {what} yet");
                tokio::time::sleep(delay).await;
            }
        }
    }
    attempt().await
}

/// Opens the configured storage: the S3 bucket, or the local output folder (locked).
pub async fn open_storage(config: &FarmConfig, out: &std::path::Path) -> anyhow::Result<AnyStorage> {
    Ok(match config.storage.kind {
        StorageKind::S3 => {
            let scratch = config.cache_dir().join("tmp").join(format!("coordinator-{}", std::process::id()));
            AnyStorage::S3(S3Storage::connect(&config.storage, scratch).await.context("cannot set up S3 storage")?)
        }
        StorageKind::Local => {
            if let Some(warning) = shared::storage::check_output_folder(out, config.repository.adopt_existing)? {
                warn!("{warning}");
            }
            AnyStorage::Local(LocalStorage::open(out).context("cannot open output folder")?)
        }
    })
}

/// Records a job's outcome in the manifest and the report.
async fn record_outcome(
    storage: &AnyStorage,
    manifest: &mut Manifest,
    report: &mut BuildReport,
    candidate: &Candidate,
    outcome: Outcome,
) -> anyhow::Result<bool> {
    let mut line = outcome_for(candidate);
    match outcome {
        Outcome::Built { key, size, sha1, sha256, warnings } => {
            let composer =
                serde_json::from_str(&candidate.composer_json).context("generated composer.json is an object")?;
            let stored = StoredArchive { key, size, sha1: sha1.clone(), sha256 };
            manifest.packages.insert(candidate.id(), manifest_entry(candidate, stored, composer));
            line.size = Some(size);
            line.sha1 = Some(sha1);
            line.warnings = warnings;
            report.built.push(line);
            Ok(true)
        }
        Outcome::Failed { reason } => {
            let before = manifest.packages.get(&candidate.id()).map(|e| e.key.clone());
            let kept = adopt_published(storage, manifest, candidate).await;
            line.reason = Some(match kept {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            });
            report.failed.push(line);
            Ok(manifest.packages.get(&candidate.id()).map(|e| e.key.clone()) != before)
        }
    }
}

/// A report line for a candidate, before its outcome is known.
fn outcome_for(candidate: &Candidate) -> PackageOutcome {
    PackageOutcome {
        package: candidate.package.clone(),
        version: candidate.version.clone(),
        upstream: candidate.upstream.clone(),
        tag: candidate.tag.clone(),
        size: None,
        sha1: None,
        reason: None,
        warnings: Vec::new(),
    }
}

/// Where and what an archive is in storage.
pub(crate) struct StoredArchive {
    pub(crate) key: String,
    pub(crate) size: u64,
    pub(crate) sha1: String,
    pub(crate) sha256: String,
}

impl StoredArchive {
    /// An archive read back from storage, described by its own bytes.
    pub(crate) fn of_bytes(key: String, bytes: &[u8]) -> StoredArchive {
        use sha1::Digest as _;
        StoredArchive {
            key,
            size: bytes.len() as u64,
            sha1: hex::encode(sha1::Sha1::digest(bytes)),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }
}

/// The manifest entry for a candidate's archive.
fn manifest_entry(
    candidate: &Candidate,
    stored: StoredArchive,
    composer: serde_json::Map<String, serde_json::Value>,
) -> ManifestEntry {
    ManifestEntry {
        name: candidate.package.clone(),
        version: candidate.version.clone(),
        key: stored.key,
        size: stored.size,
        sha1: stored.sha1,
        sha256: stored.sha256,
        upstream: candidate.upstream.clone(),
        repo: redact_url(&candidate.repo_url),
        git_ref: candidate.tag.clone(),
        commit: candidate.commit.to_string(),
        tree_id: candidate.tree_id.to_string(),
        composer,
    }
}

/// A job failed but an archive exists at its key that the manifest does not know (published
/// before the farm managed this output, or the manifest was lost): keep it, and index it with its
/// own bytes' sha1 so the metadata stays true. Returns a note for the report.
async fn adopt_published(storage: &impl Storage, manifest: &mut Manifest, candidate: &Candidate) -> Option<String> {
    let key = candidate.target_key();
    if manifest.packages.get(&candidate.id()).is_some_and(|entry| entry.key == key) {
        return None;
    }
    let bytes = storage.get(&key).await.ok()??;
    let composer = match shared::additional::composer_json_of_zip(std::io::Cursor::new(&bytes)) {
        Ok(composer) => composer,
        Err(error) => {
            return Some(format!(
                "the object at {key} is not a usable package ({error}); it is left out of the metadata"
            ));
        }
    };
    let identity = (composer.get("name").and_then(|v| v.as_str()), composer.get("version").and_then(|v| v.as_str()));
    if identity != (Some(candidate.package.as_str()), Some(candidate.version.as_str())) {
        return Some(format!("the object at {key} is another package; it is left out of the metadata"));
    }
    let stored = StoredArchive::of_bytes(key, &bytes);
    let sha1 = stored.sha1.clone();
    // Not built from git by this farm: no source ref, commit or tree to record.
    let entry = ManifestEntry {
        upstream: "adopted".to_owned(),
        git_ref: String::new(),
        commit: String::new(),
        tree_id: String::new(),
        ..manifest_entry(candidate, stored, composer)
    };
    manifest.packages.insert(candidate.id(), entry);
    Some(format!("the published archive (sha1 {sha1}) is kept and indexed"))
}

/// Publishes a prebuilt archive as it is (same create-if-absent guard as built archives).
async fn publish_additional(
    storage: &impl Storage,
    manifest: &mut Manifest,
    report: &mut BuildReport,
    package: AdditionalPackage,
) -> bool {
    let mut outcome = PackageOutcome {
        package: package.name.clone(),
        version: package.version.clone(),
        upstream: "additional".to_owned(),
        tag: package.file_name.clone(),
        size: Some(package.size),
        sha1: Some(package.sha1.clone()),
        reason: None,
        warnings: Vec::new(),
    };
    // Publish a copy: storage may link its input into place, and the operator's file must stay theirs.
    let copy = tempfile::NamedTempFile::new_in(storage.scratch_dir())
        .and_then(|temp| std::fs::copy(&package.path, temp.path()).map(|_| temp.into_temp_path()));
    let stored = match copy {
        Ok(copy) => match shared::archive::digest_file(&copy) {
            Ok(digest) => storage.put_archive(&package.key(), &copy, &digest).await.map_err(|e| e.to_string()),
            Err(error) => Err(format!("cannot read {}: {error}", package.path.display())),
        },
        Err(error) => Err(format!("cannot copy {}: {error}", package.path.display())),
    };
    match stored {
        Ok(_) => {
            manifest.packages.insert(
                format!("{}@{}", package.name, package.version),
                ManifestEntry {
                    key: package.key(),
                    name: package.name,
                    version: package.version,
                    size: package.size,
                    sha1: package.sha1,
                    sha256: package.sha256,
                    upstream: "additional".to_owned(),
                    repo: package.path.display().to_string(),
                    git_ref: package.file_name,
                    commit: String::new(),
                    tree_id: String::new(),
                    composer: package.composer,
                },
            );
            report.built.push(outcome);
            true
        }
        Err(reason) => {
            outcome.reason = Some(reason);
            report.failed.push(outcome);
            false
        }
    }
}

fn sort_outcomes(report: &mut BuildReport) {
    let key = |o: &PackageOutcome| (o.package.clone(), o.version.clone());
    report.built.sort_by_key(key);
    report.failed.sort_by_key(key);
    report.unchanged.sort();
}

fn progress_bar(enabled: bool, total: u64) -> Option<ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() || total == 0 {
        return None;
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {per_sec} {msg}")
            .expect("valid template"),
    );
    Some(bar)
}
