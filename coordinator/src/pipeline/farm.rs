//! The farm: what the builds of one coordinator process share (the storage, its lock, the
//! manifest, metrics and shutdown), and the writes that happen one at a time (manifest saves and
//! metadata publishing). Builds of different upstreams may run at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use shared::config::{FarmConfig, Gate, StorageKind};
use shared::messages::BuildId;
use shared::storage::s3::S3Storage;
use shared::storage::{AnyStorage, LocalStorage};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::health::{HealthRecord, HealthReport};
use crate::manifest::{Manifest, ManifestEntry, UpstreamRecord};
use crate::metrics::Metrics;

/// Builds of different upstreams may run at once: each records its results in the shared
/// manifest, and saving the manifest and publishing the metadata happen one at a time.
pub struct Farm {
    config: FarmConfig,
    pub(super) storage: Arc<AnyStorage>,
    /// Taken out when the farm closes.
    lock: std::sync::Mutex<Option<crate::lock::StorageLock>>,
    pub(super) manifest: tokio::sync::Mutex<Manifest>,
    /// Serialises manifest saves and metadata publishing.
    writes: tokio::sync::Mutex<()>,
    /// Only an output this farm already manages has metadata that is ours to prune.
    farm_managed: AtomicBool,
    pub(super) metrics: Arc<Metrics>,
    /// Cancelled on shutdown: running builds stop waiting for results after `grace`.
    pub(super) stopping: CancellationToken,
    pub(super) grace: Duration,
    builds_started: AtomicU64,
    /// The repository's health over time (`.farm/health.json`).
    health: std::sync::Mutex<HealthRecord>,
    /// Signs each build's provenance (none configured: no provenance).
    signer: Option<crate::provenance::Signer>,
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
        shared::git::configure(shared::git::GitMemory::of(&config.build));
        let signer = super::attest::signer(&config)?;
        if let Some(signer) = &signer {
            info!(key_id = %signer.key_id(), "builds sign their provenance");
        }
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
        let health = std::sync::Mutex::new(HealthRecord::load(storage.as_ref()).await);
        Ok(Farm {
            health,
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
            signer,
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
    pub(super) fn lock_check(&self) -> Result<(), shared::storage::StorageError> {
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

    /// A build id that does not repeat: it names the build's provenance statement, which must
    /// never overwrite an earlier one (the seconds, pid and count alone repeat for farms opened
    /// in one process, or for containers whose pid is 1, within a second; the nanoseconds do not).
    pub(super) fn next_build_id(&self) -> BuildId {
        let n = self.builds_started.fetch_add(1, Ordering::Relaxed);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        BuildId(format!("{}-{}-{n}-{:09}", now.as_secs(), std::process::id(), now.subsec_nanos()))
    }

    /// Plans the scope, builds what changed, records it and publishes the metadata. Every log
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
        let adopted = entries.len();
        {
            let mut manifest = self.manifest.lock().await;
            for entry in entries {
                manifest.record(entry);
            }
        }
        self.farm_managed.store(true, Ordering::SeqCst);
        self.save_manifest().await?;
        let build_id = format!("adopt-{}", self.next_build_id().0);
        let started_on = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
        let inputs = serde_json::json!({"adopted": adopted});
        self.attest(super::attest::Attested { build_id: &build_id, started_on: &started_on, inputs }).await
    }

    /// Saves the manifest as it is now (one save at a time, so a later save never loses to an
    /// earlier one). What changed goes out as one segment (or, now and then, a new snapshot), so
    /// a save costs O(changes); a save that fails makes the next one a whole snapshot.
    pub(super) async fn save_manifest(&self) -> anyhow::Result<()> {
        let _writing = self.writes.lock().await;
        let Some(write) = self.manifest.lock().await.take_save() else { return Ok(()) };
        match Manifest::write(self.storage.as_ref(), write).await {
            Ok(saved) => {
                debug!(?saved, "manifest saved");
                Ok(())
            }
            Err(error) => {
                self.manifest.lock().await.save_failed();
                Err(error).context("cannot save manifest")
            }
        }
    }

    /// Signs what no statement names yet (nothing without a key): what this build recorded, and
    /// what an earlier build recorded unsigned (no key then, or it stopped before it signed).
    /// Then records the statement in those entries and saves the manifest, so the next build
    /// signs only what is new.
    pub(super) async fn attest(&self, attested: super::attest::Attested<'_>) -> anyhow::Result<()> {
        let Some(signer) = &self.signer else { return Ok(()) };
        // A copy of what is signed: the manifest is never held across storage I/O.
        let unsigned = super::attest::unsigned(&*self.manifest.lock().await);
        if unsigned.is_empty() {
            return Ok(());
        }
        let key = {
            let _writing = self.writes.lock().await;
            with_retries("publish the provenance", || async {
                self.lock_check()?;
                super::attest::publish(self.storage.as_ref(), &self.config, &unsigned, signer, attested.clone()).await
            })
            .await?
        };
        {
            let mut manifest = self.manifest.lock().await;
            for mut entry in unsigned {
                entry.attested = Some(key.clone());
                manifest.record(entry);
            }
        }
        with_retries("save the manifest", || async {
            self.lock_check()?;
            self.save_manifest().await
        })
        .await
    }

    /// Publishes the metadata of the manifest as it is now, and checks its health: with
    /// `health.gate = "block"` the candidate is checked first and a broken one is not published;
    /// otherwise it is published, then checked. Both look at the same versions.
    pub(super) async fn publish(&self, build_id: &BuildId) -> anyhow::Result<HealthReport> {
        let _writing = self.writes.lock().await;
        let versions = self.manifest.lock().await.published_versions();
        let candidate = match self.config.health.gate {
            Gate::Block => Some(self.assess(&versions).await),
            Gate::Report => None,
        };
        let blocked = candidate.as_ref().filter(|c| c.is_broken()).map(blocked_because);
        if let Some(why) = &blocked {
            warn!(reason = %why, "health gate: the new metadata is not published");
        } else {
            with_retries("publish the metadata", || async {
                self.lock_check()?;
                self.publish_metadata(&versions).await
            })
            .await?;
        }
        let health = match candidate {
            Some(candidate) => HealthReport { published: blocked.is_none(), blocked, ..candidate },
            None => HealthReport { published: true, ..self.assess(&versions).await },
        };
        self.record_health(build_id, &health).await;
        Ok(health)
    }

    async fn publish_metadata(&self, versions: &[shared::metadata::PublishedVersion]) -> anyhow::Result<usize> {
        let prune = self.farm_managed.load(Ordering::Relaxed);
        let uploads = self.config.storage.uploads;
        let published = crate::publish::publish_metadata(
            self.storage.as_ref(),
            &self.config.repository.base_url,
            versions,
            prune,
            uploads,
            self.config.repository.feed_retention,
        )
        .await?;
        self.farm_managed.store(true, Ordering::Relaxed);
        Ok(published.written)
    }

    /// The native check and the probes on these versions, served from this farm's storage.
    async fn assess(&self, versions: &[shared::metadata::PublishedVersion]) -> HealthReport {
        let scratch = self.config.cache_dir().join("probes").join(std::process::id().to_string());
        let subject = crate::health::Subject {
            health: &self.config.health,
            flavours: &self.config.target.flavours,
            served: crate::health::Served::Loopback(crate::health::server::Archives::Storage(Arc::clone(
                &self.storage,
            ))),
            scratch: &scratch,
        };
        let report = crate::health::assess(versions, subject).await;
        let _ = std::fs::remove_dir_all(&scratch);
        report
    }

    /// Adds a result to the health record (stored) and the metrics.
    async fn record_health(&self, build_id: &BuildId, report: &HealthReport) {
        use crate::metrics::ProbeLabel;
        if let Some(check) = &report.consistency {
            let label = ProbeLabel { probe: "consistency".to_owned() };
            self.metrics.repository_healthy.get_or_create(&label).set(i64::from(check.problem_count == 0));
        }
        for probe in &report.probes {
            let label = ProbeLabel { probe: probe.name.clone() };
            if probe.status == crate::health::ProbeStatus::Skipped {
                self.metrics.repository_healthy.remove(&label);
                continue;
            }
            self.metrics
                .repository_healthy
                .get_or_create(&label)
                .set(i64::from(probe.status == crate::health::ProbeStatus::Passed));
            self.metrics.probe_duration.get_or_create(&label).observe(probe.duration_seconds);
        }
        let record = {
            let mut record = self.health.lock().expect("health record");
            record.add(&build_id.0, report);
            record.clone()
        };
        if let Err(error) = record.save(self.storage.as_ref()).await {
            warn!(%error, "cannot store the health record");
        }
    }

    /// The repository's health over time.
    pub fn health(&self) -> HealthRecord {
        self.health.lock().expect("health record").clone()
    }
}

/// Why a blocking gate kept a candidate back.
fn blocked_because(report: &HealthReport) -> String {
    let mut reasons = Vec::new();
    if let Some(check) = report.consistency.as_ref().filter(|c| c.problem_count > 0) {
        let first = check.problems.first().map(|p| format!(", first: {}", p.message)).unwrap_or_default();
        reasons.push(format!("{} consistency problems{first}", check.problem_count));
    }
    let failed: Vec<&str> = report
        .probes
        .iter()
        .filter(|p| p.status == crate::health::ProbeStatus::Failed)
        .map(|p| p.name.as_str())
        .collect();
    if !failed.is_empty() {
        reasons.push(format!("probes failed: {}", failed.join(", ")));
    }
    format!("health gate \"block\": the candidate is broken ({})", reasons.join("; "))
}

/// Runs `attempt` until it succeeds, up to 7 tries over about two minutes (2 s doubling to 32 s).
/// A lost lock is not retried.
pub(super) async fn with_retries<T, F, Fut>(what: &str, mut attempt: F) -> anyhow::Result<T>
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
