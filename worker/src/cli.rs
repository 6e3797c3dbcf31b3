//! Command line of the `worker` binary.
//!
//! Until the broker adapter exists (distributed mode), the worker binary builds jobs given as JSON
//! on standard input, one per line, into a local folder, and prints one `BuildResult` per line.
//! This is the same code path the in-process workers of `coordinator build` use.

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
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Worker commands.
#[derive(Debug, Subcommand)]
pub enum Command {
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
    match cli.command {
        Command::BuildJobs { out, cache_dir } => {
            let storage = Arc::new(LocalStorage::open(&out).context("cannot open output folder")?);
            let cache = Arc::new(GitCache::new(cache_dir));
            let mut all_ok = true;
            for line in std::io::stdin().lock().lines() {
                let line = line.context("cannot read standard input")?;
                if line.trim().is_empty() {
                    continue;
                }
                let job = BuildJob::decode(line.as_bytes()).context("cannot decode job")?;
                let result = crate::execute(Arc::clone(&cache), Arc::clone(&storage), job).await;
                all_ok &= matches!(result.outcome, shared::messages::Outcome::Built { .. });
                println!("{}", String::from_utf8(result.encode()).expect("JSON is UTF-8"));
            }
            storage.cleanup();
            Ok(all_ok)
        }
    }
}
