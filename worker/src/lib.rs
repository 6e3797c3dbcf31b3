//! The worker: turns a [`BuildJob`] into a stored archive and a [`BuildResult`].
//!
//! A worker keeps no state between jobs except its cache of git clones (which may be deleted at
//! any time). Building is CPU- and I/O-bound git2 work, so it runs on the blocking thread pool;
//! storing is async. A failed job is data (`Outcome::Failed`), never a crash of the worker.

use std::path::Path;
use std::sync::Arc;

use git2::Oid;
use shared::archive::{ArchiveBuilder, ArchiveDigest, ArchiveError, EXECUTABLE_MODE, FILE_MODE, PackageItem};
use shared::git::{self, GitCache, GitError};
use shared::messages::{BuildJob, BuildResult, Content, Outcome, SCHEMA_VERSION};
use shared::queue::{JobReceiver, ResultPublisher};
use shared::storage::{Storage, StorageError, Stored};
use tracing::{Instrument, debug, info_span, warn};

pub mod cli;
pub mod consume;

/// Why a job failed.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Reading from git failed.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The commit id in the job is malformed.
    #[error("invalid commit id '{0}'")]
    BadCommit(String),
    /// Preparing the temporary archive file failed.
    #[error("cannot write archive: {0}")]
    Write(#[source] std::io::Error),
    /// The archive cannot be written: a name git's path rules refuse or a zip format limit
    /// (permanent), or an I/O error while writing (transient).
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// Storing the archive failed or was refused.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The blocking build task panicked or was cancelled.
    #[error("build task failed: {0}")]
    Task(String),
}

impl JobError {
    /// Whether another try later may succeed: fetch failures, storage unreachable, local I/O.
    /// Anything else (bad commit, missing folder, a tree entry git refuses, a zip limit, drift)
    /// fails the same way every time.
    pub fn is_transient(&self) -> bool {
        match self {
            JobError::Git(error) => error.is_transient(),
            JobError::Storage(error) => error.is_transient(),
            JobError::Archive(error) => error.is_transient(),
            JobError::Write(_) => true,
            JobError::BadCommit(_) | JobError::Task(_) => false,
        }
    }
}

/// A job's result and whether its failure (if any) may pass on another try.
#[derive(Debug)]
pub struct Executed {
    /// The result to report.
    pub result: BuildResult,
    /// The job failed for a reason that may pass (see [`JobError::is_transient`]).
    pub transient: bool,
    /// The job failed because storing its archive failed for a reason that may pass: perhaps the
    /// storage itself is unusable from here (see [`crate::consume`]).
    pub storage_failure: bool,
}

/// An archive written to a temp file, not yet stored.
#[derive(Debug)]
pub struct BuiltArchive {
    /// The temp file; deleted when dropped.
    pub file: tempfile::TempPath,
    /// Size and digests.
    pub digest: ArchiveDigest,
    /// Warnings for the report.
    pub warnings: Vec<String>,
}

/// Builds the archive of a job into a temp file in `scratch` (blocking).
pub fn build_archive(cache: &GitCache, job: &BuildJob, scratch: &Path) -> Result<BuiltArchive, JobError> {
    let commit = Oid::from_str(&job.source.commit).map_err(|_| JobError::BadCommit(job.source.commit.clone()))?;
    let composer_json = shared::archive::Content::from(job.composer_json.as_bytes());
    let (mut builder, warnings) = match &job.content {
        Content::ComposerJsonOnly => {
            let mut builder = ArchiveBuilder::new();
            builder.add_file("composer.json", composer_json, FILE_MODE);
            (builder, Vec::new())
        }
        Content::PackageTree { dir, excludes, empty_dirs } => {
            // Read from the per-thread open repository; a clone without the commit (a fresh worker,
            // a new tag) is fetched first. Errors of the collection itself are not retried.
            let path = cache.path_for(&job.source.repo_url);
            let has_commit = git::with_repository(&path, |repo| repo.find_commit(commit).is_ok()).unwrap_or(false);
            let files = if has_commit {
                git::with_repository(&path, |repo| git::collect_package_files(repo, commit, dir, excludes))??
            } else {
                let repo = cache.open_with_commit(&job.source.repo_url, commit)?;
                git::collect_package_files(&repo, commit, dir, excludes)?
            };
            let mut items: Vec<PackageItem> = Vec::with_capacity(files.files.len() + 1 + empty_dirs.len());
            for file in files.files {
                let mode = if file.executable { EXECUTABLE_MODE } else { FILE_MODE };
                items.push(PackageItem::File { path: file.path, data: file.data, mode });
            }
            items.push(PackageItem::File { path: "composer.json".to_owned(), data: composer_json, mode: FILE_MODE });
            for empty in empty_dirs {
                items.push(PackageItem::EmptyDir { path: empty.clone() });
            }
            (ArchiveBuilder::from_package_items(items), files.warnings)
        }
    };
    // As the reference's JSZip: an existing path is replaced in place, a new one appended.
    for file in &job.files {
        builder.add_file(&file.path, file.text.as_bytes(), FILE_MODE);
    }
    // Names and zip limits are checked before the temp file exists: a package that breaks one
    // leaves nothing behind.
    let checked = builder.check()?;
    std::fs::create_dir_all(scratch).map_err(JobError::Write)?;
    let temp = tempfile::NamedTempFile::new_in(scratch).map_err(JobError::Write)?;
    // Below the allocator's mapping threshold (shared::alloc): a buffer from the heap, not a
    // mapping made and unmapped for every archive.
    let digest = checked.write_to(std::io::BufWriter::with_capacity(256 << 10, temp.as_file()))?;
    Ok(BuiltArchive { file: temp.into_temp_path(), digest, warnings })
}

/// How many archives are built at once (CPU work: one per core) and how many are on their way to
/// storage beside them (I/O: `storage.uploads`). A job holds a build slot while its archive is
/// written and an upload slot while it is stored, never both: slow storage does not idle the
/// cores, and no more than `builds + uploads` jobs (and temp files) are in hand at once.
#[derive(Debug, Clone)]
pub struct Pipeline {
    building: Arc<tokio::sync::Semaphore>,
    storing: Arc<tokio::sync::Semaphore>,
    builds: usize,
    uploads: usize,
}

impl Pipeline {
    /// `builds` archives written and `uploads` stored at once (each at least 1).
    pub fn new(builds: usize, uploads: usize) -> Pipeline {
        let (builds, uploads) = (builds.max(1), uploads.max(1));
        Pipeline {
            building: Arc::new(tokio::sync::Semaphore::new(builds)),
            storing: Arc::new(tokio::sync::Semaphore::new(uploads)),
            builds,
            uploads,
        }
    }

    /// Archives built at once.
    pub fn builds(&self) -> usize {
        self.builds
    }

    /// Archives stored at once.
    pub fn uploads(&self) -> usize {
        self.uploads
    }

    /// Jobs worth taking at once: every build slot and every upload slot busy (also the broker
    /// prefetch of a worker).
    pub fn jobs_in_flight(&self) -> usize {
        self.builds + self.uploads
    }
}

/// Runs one job to its result: build, store, report. Never fails; failures are the outcome.
pub async fn execute<S: Storage>(
    cache: Arc<GitCache>,
    storage: Arc<S>,
    pipeline: &Pipeline,
    job: BuildJob,
) -> BuildResult {
    execute_classified(cache, storage, pipeline, job).await.result
}

/// [`execute`], also saying whether a failure may pass on another try.
pub async fn execute_classified<S: Storage>(
    cache: Arc<GitCache>,
    storage: Arc<S>,
    pipeline: &Pipeline,
    job: BuildJob,
) -> Executed {
    let span = info_span!("job", build_id = %job.build_id.0, job_id = %job.job_id.0, package = %job.package, version = %job.version);
    let (outcome, transient, storage_failure) = async {
        match run_job(&cache, storage.as_ref(), pipeline, &job).await {
            Ok(outcome) => (outcome, false, false),
            Err(error) => {
                warn!(%error, transient = error.is_transient(), "job failed");
                let storage_failure = matches!(&error, JobError::Storage(e) if e.is_transient());
                (Outcome::Failed { reason: error.to_string() }, error.is_transient(), storage_failure)
            }
        }
    }
    .instrument(span)
    .await;
    Executed {
        result: BuildResult {
            schema: SCHEMA_VERSION,
            job_id: job.job_id,
            build_id: job.build_id,
            outcome,
            attempts: job.attempt,
        },
        transient,
        storage_failure,
    }
}

async fn run_job<S: Storage>(
    cache: &Arc<GitCache>,
    storage: &S,
    pipeline: &Pipeline,
    job: &BuildJob,
) -> Result<Outcome, JobError> {
    let scratch = storage.scratch_dir();
    let built = {
        let _slot = pipeline.building.acquire().await.map_err(|e| JobError::Task(e.to_string()))?;
        let cache = Arc::clone(cache);
        let job = job.clone();
        tokio::task::spawn_blocking(move || build_archive(&cache, &job, &scratch))
            .await
            .map_err(|e| JobError::Task(e.to_string()))??
    };
    let stored = {
        let _slot = pipeline.storing.acquire().await.map_err(|e| JobError::Task(e.to_string()))?;
        storage.put_archive(&job.target_key, &built.file, &built.digest).await?
    };
    debug!(?stored, size = built.digest.size, sha1 = %built.digest.sha1, "archive stored");
    if stored == Stored::AlreadyIdentical {
        debug!("identical archive was already stored (redelivered job)");
    }
    Ok(Outcome::Built {
        key: job.target_key.clone(),
        size: built.digest.size,
        sha1: built.digest.sha1,
        sha256: built.digest.sha256,
        warnings: built.warnings,
    })
}

/// Consumes jobs from the in-process queue through `pipeline` until it closes.
pub async fn run_in_process<S: Storage>(
    jobs: JobReceiver,
    results: ResultPublisher,
    cache: Arc<GitCache>,
    storage: Arc<S>,
    pipeline: Pipeline,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..pipeline.jobs_in_flight() {
        let (jobs, results, cache, storage, pipeline) =
            (jobs.clone(), results.clone(), Arc::clone(&cache), Arc::clone(&storage), pipeline.clone());
        tasks.spawn(async move {
            while let Some(job) = jobs.next().await {
                match job {
                    Ok(job) => {
                        let result = execute(Arc::clone(&cache), Arc::clone(&storage), &pipeline, job).await;
                        if !results.publish(&result) {
                            return;
                        }
                    }
                    // The in-process queue only carries what the coordinator encoded; a decode
                    // error means a programming error, logged and skipped.
                    Err(error) => warn!(%error, "undecodable job skipped"),
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use shared::pathcheck::PathRule;

    use super::*;

    #[test]
    fn refused_names_and_zip_limits_are_permanent() {
        let refused = JobError::Git(GitError::UnsafePath { path: "a/.GIT".to_owned(), rule: PathRule::DotGit });
        assert!(!refused.is_transient());
        assert!(!JobError::Archive(ArchiveError::TooManyEntries { count: 70_000 }).is_transient());
        let name = ArchiveError::NameTooLong { name: "'a'".to_owned(), bytes: 70_000, limit: 65_535 };
        assert!(!JobError::Archive(name).is_transient());
        assert!(JobError::Archive(ArchiveError::Io(std::io::Error::other("disk full"))).is_transient());
    }
}
