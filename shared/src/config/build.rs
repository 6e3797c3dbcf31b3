//! `[build]`: how the build runs (in-process workers, the git cache, the upstream URL prefix).

use std::path::PathBuf;

use serde::Deserialize;

/// The prefix of upstream URLs that `--upstream-base` replaces by default.
pub const DEFAULT_UPSTREAM_PREFIX: &str = "https://github.com/mage-os";

/// How the build runs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BuildConfig {
    /// In-process workers building archives at once; 0 means one per CPU core.
    #[serde(default)]
    pub workers: usize,
    /// Where bare clones of the upstreams are cached; default `$XDG_CACHE_HOME/composer-farm/git`
    /// (or `~/.cache/composer-farm/git`).
    #[serde(default)]
    pub cache_dir: Option<PathBuf>,
    /// Replaces [`DEFAULT_UPSTREAM_PREFIX`] at the start of every upstream URL, to build from a
    /// local or private mirror (`--upstream-base`, `FARM_UPSTREAM_BASE`).
    #[serde(default)]
    pub upstream_base: Option<String>,
    /// The prefix that `upstream_base` replaces.
    #[serde(default = "default_upstream_prefix")]
    pub upstream_prefix: String,
    /// MiB of file contents kept in memory across jobs, so a file that many versions share is
    /// read from git once (0: none).
    #[serde(default = "default_blob_cache_mib")]
    pub blob_cache_mib: u64,
    /// Files larger than this (KiB) are read for each archive and never cached.
    #[serde(default = "default_largest_cached_blob_kib")]
    pub largest_cached_blob_kib: u64,
    /// MiB of git pack files kept mapped into memory at once.
    #[serde(default = "default_pack_map_mib")]
    pub pack_map_mib: u64,
    /// MiB of parsed git objects (trees, commits) libgit2 keeps for reuse, process-wide. Its own
    /// default is 256 MiB, which a long build fills with trees it never reads again.
    #[serde(default = "default_object_cache_mib")]
    pub object_cache_mib: u64,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            workers: 0,
            cache_dir: None,
            upstream_base: None,
            upstream_prefix: default_upstream_prefix(),
            blob_cache_mib: default_blob_cache_mib(),
            largest_cached_blob_kib: default_largest_cached_blob_kib(),
            pack_map_mib: default_pack_map_mib(),
            object_cache_mib: default_object_cache_mib(),
        }
    }
}

impl BuildConfig {
    /// `workers` after its default: 0 means one per CPU core.
    pub fn jobs_at_once(&self) -> usize {
        match self.workers {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

fn default_blob_cache_mib() -> u64 {
    64
}

fn default_largest_cached_blob_kib() -> u64 {
    512
}

fn default_pack_map_mib() -> u64 {
    32
}

fn default_object_cache_mib() -> u64 {
    4
}

fn default_upstream_prefix() -> String {
    DEFAULT_UPSTREAM_PREFIX.to_owned()
}

/// `$XDG_CACHE_HOME/composer-farm/git`, else `~/.cache/composer-farm/git`.
pub(super) fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("composer-farm").join("git")
}
