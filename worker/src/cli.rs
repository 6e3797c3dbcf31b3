//! Command line of the `worker` binary.
//!
//! `worker [--config FILE]` consumes jobs from RabbitMQ until SIGTERM/SIGINT (the distributed
//! mode). `worker check` says whether its storage and broker work (exit 0 or 1). `worker build-jobs` builds jobs given as JSON lines on standard input into a local
//! folder and prints one `BuildResult` per line (the same code path, for debugging a job).

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use shared::git::GitCache;
use shared::messages::BuildJob;
use shared::storage::LocalStorage;

/// Builds Composer package archives from git.
#[derive(Debug, Parser)]
#[command(name = "worker", version, about)]
pub struct Cli {
    /// Configuration file (TOML); only `[build]`, `[queue]`, `[storage]` and
    /// `repository.output` are read. Without it, settings come from `FARM_*` variables alone.
    #[arg(long, env = "FARM_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Something other than consuming jobs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Worker commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check once that this worker could work: its storage takes a write, a read and a delete,
    /// and its broker accepts a connection. Prints what failed; exits 0 when both work, else 1
    /// (a container health check, or a look before starting).
    Check,
    /// Build the jobs read from standard input (JSON, one per line) into a local folder; print
    /// one result per line. Exits 1 if any job failed.
    BuildJobs {
        /// Repository root to store archives in.
        #[arg(long, env = "FARM_OUT")]
        out: PathBuf,
        /// Git cache folder.
        #[arg(long, env = "FARM_CACHE_DIR")]
        cache_dir: PathBuf,
    },
}

/// Runs the command; returns whether every job succeeded.
pub async fn run(cli: Cli) -> anyhow::Result<bool> {
    shared::alloc::bound_heap();
    match cli.command {
        None => {
            let config = shared::config::WorkerConfig::load(cli.config.as_deref())?;
            let context = crate::consume::WorkerContext::from_config(&config).await?;
            let stop = shared::shutdown::on_signals_or_warn(SIGNAL_NOTICES);
            crate::consume::run(context, stop).await?;
            Ok(true)
        }
        Some(Command::Check) => {
            let config = shared::config::WorkerConfig::load(cli.config.as_deref())?;
            let context = crate::consume::WorkerContext::from_config(&config).await?;
            Ok(crate::consume::check(&context).await)
        }
        Some(Command::BuildJobs { out, cache_dir }) => {
            let storage = Arc::new(LocalStorage::open(&out).context("cannot open output folder")?);
            let cache = Arc::new(GitCache::new(cache_dir));
            let pipeline = crate::Pipeline::new(1, 1);
            let mut all_ok = true;
            for line in std::io::stdin().lock().lines() {
                let line = line.context("cannot read standard input")?;
                if line.trim().is_empty() {
                    continue;
                }
                let job = BuildJob::decode(line.as_bytes()).context("cannot decode job")?;
                let result = crate::execute(Arc::clone(&cache), Arc::clone(&storage), &pipeline, job).await;
                all_ok &= matches!(result.outcome, shared::messages::Outcome::Built { .. });
                println!("{}", String::from_utf8(result.encode()).expect("JSON is UTF-8"));
            }
            storage.cleanup();
            Ok(all_ok)
        }
    }
}

/// First SIGTERM/SIGINT: stop taking jobs and finish the ones in hand. Second: exit at once (the
/// broker hands unfinished jobs to another worker).
const SIGNAL_NOTICES: shared::shutdown::Notices = shared::shutdown::Notices {
    stopping: "signal received: finishing the jobs in hand (signal again to exit now)",
    exiting: "second signal: exiting now; unfinished jobs go back to the queue",
};
