//! What a `worker` process reads of the configuration, and its checks.

use std::path::PathBuf;

use serde::Deserialize;

use super::build::{BuildConfig, default_cache_dir};
use super::error::ConfigError;
use super::queue::QueueConfig;
use super::storage::{StorageConfig, StorageKind};

/// What a `worker` process reads: the same file (or environment) as the coordinator, but only
/// the sections a worker needs; the others are ignored, so one file can serve both.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkerConfig {
    /// Concurrency (`workers`) and git cache folder.
    #[serde(default)]
    pub build: BuildConfig,
    /// The broker to consume from (required).
    #[serde(default)]
    pub queue: Option<QueueConfig>,
    /// Where archives go (S3 in a farm; a local folder works for a single machine).
    #[serde(default)]
    pub storage: StorageConfig,
    /// Output folder when storage is local.
    #[serde(default)]
    pub repository: Option<WorkerRepositoryConfig>,
}

/// The part of `[repository]` a worker reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct WorkerRepositoryConfig {
    /// Output folder for local storage.
    #[serde(default)]
    pub output: Option<PathBuf>,
}

impl WorkerConfig {
    /// Checks values: a worker needs a queue.
    pub fn validate(&self) -> Result<(), ConfigError> {
        match &self.queue {
            Some(queue) => queue.validate()?,
            None => {
                return Err(ConfigError::Invalid(
                    "a worker needs [queue] url (or FARM_QUEUE__URL) to take jobs from".to_owned(),
                ));
            }
        }
        self.storage.validate()?;
        if self.storage.kind == StorageKind::Local && self.repository.as_ref().and_then(|r| r.output.as_ref()).is_none()
        {
            return Err(ConfigError::Invalid(
                "with local storage a worker needs repository.output (or set storage.kind = \"s3\")".to_owned(),
            ));
        }
        Ok(())
    }

    /// Concurrent jobs after defaults (0 = one per core).
    pub fn concurrency(&self) -> usize {
        self.build.jobs_at_once()
    }

    /// The git cache folder after defaults.
    pub fn cache_dir(&self) -> PathBuf {
        self.build.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }
}
