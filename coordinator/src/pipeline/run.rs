//! One build, from plan to report, in three steps with typed hand-offs: [`prepare`] plans and
//! turns the plan into jobs (resuming what a stopped build stored), [`collect`] sends the jobs
//! and records each answer, [`finish`] records the rest, saves the manifest, publishes the
//! metadata (last) and stores the report.
//!
//! [`prepare`]: BuildRun::prepare
//! [`collect`]: super::collect::collect
//! [`finish`]: BuildRun::finish

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use shared::additional::AdditionalPackage;
use shared::config::FarmConfig;
use shared::messages::{BuildId, BuildJob, JobId};
use shared::storage::{STATE_PREFIX, Storage};
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info};

use super::collect::{self, Collected};
use super::farm::{Farm, with_retries};
use super::{inflight, record};
use crate::manifest::UpstreamRecord;
use crate::metrics::{BuildLabels, Metrics, UpstreamLabel};
use crate::plan::candidate::Candidate;
use crate::plan::{self, Scope, rules_fingerprint};
use crate::report::{BuildReport, PackageOutcome};

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

/// Runs a whole build of every upstream (`coordinator build`) and returns its report (also stored
/// as `.farm/report.json`).
pub async fn run(options: BuildOptions) -> anyhow::Result<BuildReport> {
    run_scoped(options, Scope::All).await
}

/// [`run`] of a scope: [`Scope::Changed`] plans only the refs that moved (`build --changed`).
pub async fn run_scoped(options: BuildOptions, scope: Scope) -> anyhow::Result<BuildReport> {
    let farm = Farm::open(
        options.config.clone(),
        &options.out,
        Arc::new(Metrics::new()),
        CancellationToken::new(),
        Duration::ZERO,
    )
    .await?;
    let result = farm.build(scope, "command line", options.progress).await;
    farm.close().await;
    result
}

impl Farm {
    /// Plans the scope, builds what changed, records it and publishes the metadata. Every log
    /// line of the build carries its id.
    pub async fn build(&self, scope: Scope, trigger: &str, progress: bool) -> anyhow::Result<BuildReport> {
        let build_id = self.next_build_id();
        let span = tracing::info_span!("build", build_id = %build_id.0, scope = %scope.label());
        let started = Instant::now();
        let result = BuildRun::run(self, build_id, &scope, trigger, progress).instrument(span).await;
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
}

/// A build in progress: the farm it runs on, its id and clock, the report so far.
struct BuildRun<'f> {
    farm: &'f Farm,
    build_id: BuildId,
    started: Instant,
    report: BuildReport,
}

/// What [`BuildRun::prepare`] hands on: the jobs and the candidate each answers for, and what
/// the plan left for [`BuildRun::finish`].
struct Prepared {
    jobs: Vec<BuildJob>,
    pending: HashMap<String, Candidate>,
    additional: Vec<AdditionalPackage>,
    refs: BTreeMap<String, BTreeMap<String, String>>,
}

impl BuildRun<'_> {
    async fn run(
        farm: &Farm,
        build_id: BuildId,
        scope: &Scope,
        trigger: &str,
        progress: bool,
    ) -> anyhow::Result<BuildReport> {
        let workers = farm.config().workers();
        info!(trigger, workers, "starting build");
        let mut run = BuildRun { farm, build_id, started: Instant::now(), report: BuildReport::default() };
        let prepared = run.prepare(scope, trigger).await?;
        let collected =
            collect::collect(farm, &run.build_id, prepared.jobs, prepared.pending, &mut run.report, progress).await?;
        run.finish(collected, prepared.additional, prepared.refs).await
    }

    /// Plans, records the archives a stopped build stored, and makes the jobs (noted in the
    /// in-flight records before they go out).
    async fn prepare(&mut self, scope: &Scope, trigger: &str) -> anyhow::Result<Prepared> {
        let farm = self.farm;
        let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
        let snapshot = farm.manifest.lock().await.clone();
        let planned = plan::plan(farm.config(), &snapshot, scope).await?;
        drop(snapshot);
        let config = farm.config();
        self.report = BuildReport {
            build_id: self.build_id.0.clone(),
            started_at,
            trigger: trigger.to_owned(),
            workers: config.workers(),
            mode: if config.is_distributed() { "distributed" } else { "embedded" }.to_owned(),
            unchanged: planned.unchanged,
            ..BuildReport::planned(planned.findings)
        };
        // The upstreams planned (an unreadable one has no refs and is left as it was).
        let upstreams: Vec<String> = planned.refs.keys().cloned().collect();
        let to_build = self.resume(planned.to_build, &upstreams).await;
        self.report.planning_seconds = self.started.elapsed().as_secs_f64();
        info!(
            jobs = to_build.len(),
            unchanged = self.report.unchanged.len(),
            resumed = self.report.resumed.len(),
            rejected = self.report.rejected.len(),
            "plan ready"
        );
        let (jobs, pending) = self.jobs(to_build);
        inflight::write(farm.storage.as_ref(), pending.values()).await;
        Ok(Prepared { jobs, pending, additional: planned.additional, refs: planned.refs })
    }

    /// Archives a stopped build stored but never recorded are checked and recorded, not built.
    /// Returns the candidates left to build.
    async fn resume(&mut self, to_build: Vec<Candidate>, upstreams: &[String]) -> Vec<Candidate> {
        let storage = self.farm.storage.as_ref();
        let inflight = inflight::keys(storage, upstreams).await;
        let mut left = Vec::with_capacity(to_build.len());
        for candidate in to_build {
            if inflight.contains(&candidate.target_key())
                && let Some(entry) = record::stored_archive_of(storage, &candidate).await
            {
                info!(package = %candidate.package, version = %candidate.version, "archive stored by a stopped build; recorded");
                self.report.resumed.push(candidate.id());
                self.farm.manifest.lock().await.record(entry);
                continue;
            }
            left.push(candidate);
        }
        left
    }

    /// One job per candidate, in plan order, and the candidate each job id answers for.
    fn jobs(&self, to_build: Vec<Candidate>) -> (Vec<BuildJob>, HashMap<String, Candidate>) {
        let mut pending = HashMap::new();
        let mut jobs = Vec::with_capacity(to_build.len());
        for (index, candidate) in to_build.into_iter().enumerate() {
            let job = candidate.job(&self.build_id, JobId(format!("{}-{index}", self.build_id.0)));
            pending.insert(job.job_id.0.clone(), candidate);
            jobs.push(job);
        }
        (jobs, pending)
    }

    /// Records what is left (unanswered jobs as failures, prebuilt archives, the refs of every
    /// upstream now complete), saves the manifest, publishes the metadata and stores the report.
    async fn finish(
        mut self,
        collected: Collected,
        additional: Vec<AdditionalPackage>,
        refs: BTreeMap<String, BTreeMap<String, String>>,
    ) -> anyhow::Result<BuildReport> {
        let farm = self.farm;
        let Collected { unanswered, missing_reason } = collected;
        for candidate in &unanswered {
            let outcome = PackageOutcome { reason: Some(missing_reason.clone()), ..record::outcome_for(candidate) };
            self.report.failed.push(outcome);
        }
        for package in additional {
            record::additional(farm.storage.as_ref(), &farm.manifest, &mut self.report, package).await;
        }
        record::sort_outcomes(&mut self.report);
        let upstreams: Vec<String> = refs.keys().cloned().collect();
        self.record_refs(refs).await;
        // Archives are stored; record them, then publish metadata that names only stored archives.
        // Storage may be unreachable for a while (the S3 outage the workers survive): retry.
        if farm.manifest.lock().await.has_changes() {
            with_retries("save the manifest", || async {
                farm.lock_check()?;
                farm.save_manifest().await
            })
            .await?;
        }
        farm.attest(super::attest::Attested {
            build_id: &self.build_id.0,
            started_on: &self.report.started_at,
            inputs: serde_json::to_value(&self.report.inputs).expect("inputs serialise"),
        })
        .await?;
        self.report.health = Some(farm.publish(&self.build_id).await?);
        inflight::finish(farm.storage.as_ref(), &upstreams, &unanswered).await;
        self.save_report().await
    }

    /// Upstreams where every package is published are done at these refs: polling compares
    /// against them. One with failures is planned again at the next poll.
    async fn record_refs(&self, refs: BTreeMap<String, BTreeMap<String, String>>) {
        let (farm, config) = (self.farm, self.farm.config());
        for (key, refs) in refs {
            if self.report.failed.iter().any(|f| f.upstream.is_upstream(&key)) {
                continue;
            }
            let Some(upstream) = config.upstreams.iter().find(|u| u.key == key) else { continue };
            let record = UpstreamRecord { rules: rules_fingerprint(config, upstream), refs };
            farm.manifest.lock().await.record_upstream(key.clone(), record);
            let seconds = crate::lock::unix_seconds() as i64;
            farm.metrics.last_success.get_or_create(&UpstreamLabel { upstream: key }).set(seconds);
        }
    }

    /// Stores the report as `.farm/report.json` and returns it.
    async fn save_report(mut self) -> anyhow::Result<BuildReport> {
        self.report.duration_seconds = self.started.elapsed().as_secs_f64();
        self.report.peak_rss_bytes = shared::telemetry::peak_rss_bytes();
        let mut report_bytes = serde_json::to_vec_pretty(&self.report).expect("report serialises");
        report_bytes.push(b'\n');
        let storage = self.farm.storage.as_ref();
        with_retries("save the report", || async {
            storage
                .put_replace(&format!("{STATE_PREFIX}/report.json"), report_bytes.clone())
                .await
                .context("cannot save report")
        })
        .await?;
        info!(
            built = self.report.built.len(),
            failed = self.report.failed.len(),
            seconds = self.report.duration_seconds,
            peak_rss_bytes = self.report.peak_rss_bytes,
            "build finished"
        );
        Ok(self.report)
    }
}
