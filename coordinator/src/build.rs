//! `coordinator build` in the embedded mode: sync upstreams, plan, run in-process workers over the
//! in-process queue, record results in the manifest, then publish metadata (last).

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use shared::additional::{AdditionalPackage, AdditionalPackages};
use shared::config::StorageKind;
use shared::config::{FarmConfig, redact_url};
use shared::git::GitCache;
use shared::messages::{BuildId, BuildJob, JobId, Outcome, SCHEMA_VERSION, Source};
use shared::s3::S3Storage;
use shared::storage::{AnyStorage, LocalStorage, STATE_PREFIX, Storage};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::dispatch::{self, Event};
use crate::report::DeadLetterNote;

use crate::manifest::{Manifest, ManifestEntry};
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
}

/// Syncs every upstream and plans the build against the manifest.
pub async fn plan_build(config: &FarmConfig, manifest: &Manifest) -> anyhow::Result<Planned> {
    let cache = Arc::new(GitCache::new(config.cache_dir()));
    let config = Arc::new(config.clone());
    // Upstreams are fetched and planned in parallel (bounded), and combined in config order.
    let limit = Arc::new(tokio::sync::Semaphore::new(config.workers().max(1)));
    let mut tasks = Vec::new();
    for index in 0..config.upstreams.len() {
        let (cache, config, limit) = (Arc::clone(&cache), Arc::clone(&config), Arc::clone(&limit));
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore is never closed");
            tokio::task::spawn_blocking(move || {
                let upstream = &config.upstreams[index];
                let url = config.resolve_url(&upstream.url);
                let shown = redact_url(&url);
                info!(upstream = %upstream.key, url = %shown, "fetching upstream");
                let repo = cache.sync(&url).map_err(|e| RepositoryFailure {
                    upstream: upstream.key.clone(),
                    url: shown.clone(),
                    reason: e.to_string(),
                })?;
                info!(upstream = %upstream.key, "planning");
                plan::plan_upstream(&config, upstream, &repo).map_err(|e| RepositoryFailure {
                    upstream: upstream.key.clone(),
                    url: shown,
                    reason: e.to_string(),
                })
            })
            .await
        }));
    }
    let mut planned = Planned::default();
    let mut candidates = Vec::new();
    for (index, task) in tasks.into_iter().enumerate() {
        let upstream = &config.upstreams[index];
        match task.await.context("planning task panicked")?.context("planning task panicked")? {
            Ok(upstream_plan) => {
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
    let mut built_ids = std::collections::HashSet::new();
    for candidate in plan::resolve(candidates) {
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
        if let Some(published) = manifest.packages.get(&candidate.id()) {
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

/// Runs a whole embedded build and returns its report (also stored as `.farm/report.json`).
pub async fn run(options: BuildOptions) -> anyhow::Result<BuildReport> {
    let started = Instant::now();
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let build_id = BuildId(format!(
        "{}-{}",
        SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        std::process::id()
    ));
    let config = &options.config;
    let workers = config.workers();
    info!(build_id = %build_id.0, out = %options.out.display(), workers, "starting build");

    let storage = Arc::new(open_storage(config, &options.out).await?);
    let lock = match storage.as_ref() {
        AnyStorage::S3(s3) => Some(crate::lock::StorageLock::acquire(s3, &build_id.0).await?),
        AnyStorage::Local(_) => None,
    };
    // The lock goes on every path, also when the build fails half-way.
    let result = run_locked(&options, build_id, started, started_at, storage, lock.as_ref()).await;
    if let Some(lock) = lock {
        lock.release().await;
    }
    result
}

/// The build itself, with the storage (and its lock, for a bucket) held.
async fn run_locked(
    options: &BuildOptions,
    build_id: BuildId,
    started: Instant,
    started_at: String,
    storage: Arc<AnyStorage>,
    lock: Option<&crate::lock::StorageLock>,
) -> anyhow::Result<BuildReport> {
    let config = &options.config;
    let workers = config.workers();
    // Every write of the manifest or metadata first checks that the bucket is still ours.
    let still_ours = || lock.map_or(Ok(()), |lock| lock.check());
    let mut manifest = Manifest::load(storage.as_ref()).await.context("cannot load manifest")?;
    // Only an output this farm already manages has metadata that is ours to prune.
    let farm_managed = !manifest.packages.is_empty();
    // Entries are only ever added (a planned id is never in the manifest), so a changed count
    // means there is something to save.
    let entries_at_start = manifest.packages.len();
    let planned = plan_build(config, &manifest).await?;
    let mut report = planned.report;
    report.planning_seconds = started.elapsed().as_secs_f64();
    report.build_id = build_id.0.clone();
    report.started_at = started_at;
    report.workers = workers;
    report.mode = if config.is_distributed() { "distributed" } else { "embedded" }.to_owned();
    report.unchanged = planned.unchanged;
    info!(
        jobs = planned.to_build.len(),
        unchanged = report.unchanged.len(),
        rejected = report.rejected.len(),
        "plan ready"
    );

    let mut pending: HashMap<String, Candidate> = HashMap::new();
    let mut jobs = Vec::with_capacity(planned.to_build.len());
    for (index, candidate) in planned.to_build.into_iter().enumerate() {
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
        };
        pending.insert(job.job_id.0.clone(), candidate);
        jobs.push(job);
    }

    let (events, mut received) = tokio::sync::mpsc::channel(1024);
    let done = CancellationToken::new();
    let dispatcher = match &config.queue {
        None => {
            let cache = Arc::new(GitCache::new(config.cache_dir()));
            tokio::spawn(dispatch::in_process(jobs, events, cache, Arc::clone(&storage), workers))
        }
        Some(queue) => tokio::spawn(dispatch::amqp(queue.clone(), build_id.clone(), jobs, events, done.clone())),
    };
    let idle_limit = config.queue.as_ref().map(|queue| queue.result_timeout);

    let progress = progress_bar(options.progress, pending.len() as u64);
    let total = pending.len();
    let mut timed_out = false;
    // Only this build's results and dead letters move the deadline; other builds' traffic does not.
    let mut deadline = idle_limit.map(|limit| tokio::time::Instant::now() + limit);
    while !pending.is_empty() {
        let event = match deadline {
            Some(at) => match tokio::time::timeout_at(at, received.recv()).await {
                Ok(event) => event,
                Err(_) => {
                    timed_out = true;
                    break;
                }
            },
            None => received.recv().await,
        };
        let (candidate, outcome) = match event {
            None => break,
            Some(Event::Result(result)) => match pending.remove(&result.job_id.0) {
                Some(candidate) => (candidate, result.outcome),
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
                        (candidate, Outcome::Failed { reason: format!("dead-lettered: {}", letter.reason) })
                    }
                    None => {
                        if letter.build_id.is_none() {
                            warn!(reason = %letter.reason, "a message that is not a job was dead-lettered");
                            report.dead_letters.push(DeadLetterNote { reason: letter.reason, excerpt: letter.excerpt });
                        }
                        continue;
                    }
                }
            }
        };
        if let (Some(at), Some(limit)) = (deadline.as_mut(), idle_limit) {
            *at = tokio::time::Instant::now() + limit;
        }
        record_outcome(storage.as_ref(), &mut manifest, &mut report, &candidate, outcome).await?;
        let done_count = report.built.len() + report.failed.len();
        // A killed build resumes from here instead of from the start.
        // (Best effort: storage may be away for a while; the final save retries.)
        if done_count % MANIFEST_SAVE_EVERY == 0 {
            still_ours()?;
            if let Err(error) = manifest.save(storage.as_ref()).await {
                warn!(%error, "cannot save the manifest now; the final save tries again");
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
    let dispatch_error = match tokio::time::timeout(std::time::Duration::from_secs(30), dispatcher).await {
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
        (None, Some(limit)) if timed_out => format!(
            "no result within {} (result_timeout): the job may still be queued or running; a later build picks it up",
            humantime::format_duration(limit)
        ),
        _ => "no result came back from the worker".to_owned(),
    };
    if !pending.is_empty() {
        warn!(missing = pending.len(), reason = %missing_reason, "results missing");
    }
    for (_, candidate) in pending {
        let outcome = PackageOutcome { reason: Some(missing_reason.clone()), ..outcome_for(&candidate) };
        report.failed.push(outcome);
    }
    for package in planned.additional {
        publish_additional(storage.as_ref(), &mut manifest, &mut report, package).await;
    }
    sort_outcomes(&mut report);

    // Archives are stored; record them, then publish metadata that names only stored archives.
    // Storage may be unreachable for a while (the S3 outage the workers survive): retry.
    if manifest.packages.len() != entries_at_start {
        with_retries("save the manifest", || async {
            still_ours()?;
            manifest.save(storage.as_ref()).await.context("cannot save manifest")
        })
        .await?;
    }
    with_retries("publish the metadata", || async {
        still_ours()?;
        publish_metadata(storage.as_ref(), &config.repository.base_url, &manifest, farm_managed).await
    })
    .await?;
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
    storage.cleanup();
    Ok(report)
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
        StorageKind::Local => AnyStorage::Local(LocalStorage::open(out).context("cannot open output folder")?),
    })
}

/// Records a job's outcome in the manifest and the report.
async fn record_outcome(
    storage: &AnyStorage,
    manifest: &mut Manifest,
    report: &mut BuildReport,
    candidate: &Candidate,
    outcome: Outcome,
) -> anyhow::Result<()> {
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
        }
        Outcome::Failed { reason } => {
            let kept = adopt_published(storage, manifest, candidate).await;
            line.reason = Some(match kept {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            });
            report.failed.push(line);
        }
    }
    Ok(())
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
struct StoredArchive {
    key: String,
    size: u64,
    sha1: String,
    sha256: String,
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
    if manifest.contains(&candidate.id()) {
        return None;
    }
    let bytes = storage.get(&key).await.ok()??;
    let composer = match shared::additional::composer_json_of_zip(&bytes) {
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
    use sha1::Digest as _;
    let sha1 = hex::encode(sha1::Sha1::digest(&bytes));
    let stored = StoredArchive {
        key,
        size: bytes.len() as u64,
        sha1: sha1.clone(),
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
    };
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
) {
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
        Ok(copy) => storage.put_archive(&package.key(), &copy, &package.sha1).await.map_err(|e| e.to_string()),
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
        }
        Err(reason) => {
            outcome.reason = Some(reason);
            report.failed.push(outcome);
        }
    }
}

/// Renders metadata from the manifest and writes the files that changed, `packages.json` last.
/// In an output the farm already managed (`prune`), it then removes the p2 files of names the new
/// `packages.json` no longer lists (only possible after the manifest was edited by hand); in an
/// output written by another tool, nothing it did not write is deleted.
pub async fn publish_metadata(
    storage: &impl Storage,
    base_url: &str,
    manifest: &Manifest,
    prune: bool,
) -> anyhow::Result<usize> {
    let previous_names = if prune { listed_names(storage).await? } else { Vec::new() };
    let files = shared::metadata::render(base_url, &manifest.published_versions());
    let mut written = 0;
    let mut current_names = std::collections::HashSet::new();
    for file in files {
        if let Some(name) = file.key.strip_prefix("p2/").and_then(|k| k.strip_suffix(".json")) {
            current_names.insert(name.trim_end_matches("~dev").to_owned());
        }
        if storage.get(&file.key).await?.as_deref() == Some(file.bytes.as_slice()) {
            continue;
        }
        storage.put_replace(&file.key, file.bytes).await.with_context(|| format!("cannot write {}", file.key))?;
        written += 1;
    }
    for name in previous_names.iter().filter(|name| !current_names.contains(*name)) {
        warn!(package = %name, "no published version left; removing its metadata");
        for key in [format!("p2/{name}.json"), format!("p2/{name}~dev.json")] {
            storage.delete(&key).await.with_context(|| format!("cannot delete {key}"))?;
        }
    }
    storage.flush().await?;
    info!(written, "metadata published");
    Ok(written)
}

/// The names the published `packages.json` lists (none if there is none yet).
async fn listed_names(storage: &impl Storage) -> anyhow::Result<Vec<String>> {
    let Some(bytes) = storage.get("packages.json").await? else {
        return Ok(Vec::new());
    };
    let root: serde_json::Value = serde_json::from_slice(&bytes).context("published packages.json is not JSON")?;
    Ok(root["available-packages"]
        .as_array()
        .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
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
