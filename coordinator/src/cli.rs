//! Command line of the `coordinator` binary.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shared::config::FarmConfig;

use crate::fetch::Limits;
use crate::manifest::Manifest;
use crate::pipeline::{self, BuildOptions};

/// Builds and publishes Composer repositories from upstream git repositories.
#[derive(Debug, Parser)]
#[command(name = "coordinator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Coordinator commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build every package the configuration describes into the output folder, skipping what is
    /// already published, then write the Composer metadata and check the repository's health.
    Build(BuildArgs),
    /// Show what a build would do (nothing is written).
    Plan(CommonArgs),
    /// Keep the repository current: poll the upstreams, take webhooks, build what changed, and
    /// serve health, metrics and status over HTTP until SIGTERM/SIGINT.
    Serve(ServeArgs),
    /// Take over an existing Composer repository: read its metadata (URL or folder) into the
    /// manifest, copying archives the storage lacks after checking their sha1. Nothing published
    /// is rebuilt or changed.
    Adopt(AdoptArgs),
    /// Check the published repository as a client sees it: packages.json, every p2 file, every
    /// dist URL and its sha1. Exits 1 if anything is wrong.
    Verify(VerifyArgs),
    /// Check any Composer repository (a URL or a folder) as builds check theirs: every
    /// requirement resolves within it, the configured probes pass; with --against, every version
    /// both repositories publish has the same files. Exits 1 if anything is wrong.
    Check(CheckArgs),
}

/// Options of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Configuration and output.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Exit 1 when the repository's health is broken (for cron jobs that alert), even if every
    /// package was built.
    #[arg(long)]
    pub fail_on_broken: bool,
    /// Plan only the tags and branches that moved since each upstream's last complete build, as
    /// `serve` does when it polls (a build with other rules or another farm version plans every
    /// ref). The report then lists no findings of the refs left out.
    #[arg(long)]
    pub changed: bool,
}

/// Options of `check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The repository: its URL (where `packages.json` is served) or a folder.
    #[arg(long)]
    pub from: String,
    /// A farm configuration: its `[health]` section (probes, minimum stability, external names)
    /// and flavours are used; `repository.base_url` is where a folder is published.
    #[arg(long, env = "FARM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Compare every name@version both repositories publish, by content, with this repository
    /// (a URL or a folder).
    #[arg(long)]
    pub against: Option<String>,
    /// Composer `auth.json` with credentials (`http-basic`, `bearer`) per host.
    #[arg(long)]
    pub auth: Option<PathBuf>,
    /// The least stable version a requirement may be satisfied by (default: the config's, else
    /// `dev`).
    #[arg(long)]
    pub minimum_stability: Option<String>,
    /// A name (`*` patterns) that comes from another repository; not checked. Repeatable.
    #[arg(long = "external", value_name = "NAME")]
    pub external: Vec<String>,
    /// Write the report as JSON to this file.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Archive pairs compared at once (with --against).
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Timeouts, limits and allowed hosts.
    #[command(flatten)]
    pub fetch: FetchArgs,
}

impl CheckArgs {
    fn options(&self) -> anyhow::Result<crate::check::CheckOptions> {
        let config = match &self.config {
            Some(path) => Some(load(path)?),
            None => None,
        };
        let mut health = config.as_ref().map(|c| c.health.clone()).unwrap_or_default();
        if let Some(stability) = &self.minimum_stability {
            health.minimum_stability = stability.clone();
        }
        health.external.extend(self.external.iter().cloned());
        health.validate()?;
        let credentials = match &self.auth {
            Some(path) => crate::fetch::Credentials::load(path)?,
            None => crate::fetch::Credentials::default(),
        };
        let scratch = std::env::temp_dir().join(format!("coordinator-check-{}", std::process::id()));
        Ok(crate::check::CheckOptions {
            from: self.from.clone(),
            public_base: config.as_ref().map(|c| c.repository.base_url.clone()).unwrap_or_default(),
            flavours: config.map(|c| c.target.flavours).unwrap_or_default(),
            health,
            against: self.against.clone(),
            credentials,
            limits: self.fetch.limits(),
            allowed_hosts: self.fetch.allow_hosts.clone(),
            concurrency: self.concurrency,
            scratch,
        })
    }
}

/// Options of `verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Configuration file (TOML); `repository.base_url` says where the repository is served.
    #[arg(long, env = "FARM_CONFIG")]
    pub config: PathBuf,
    /// Check this URL instead of the configured `repository.base_url`.
    #[arg(long, env = "FARM_BASE_URL")]
    pub base_url: Option<String>,
    /// Downloads at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Timeouts, limits and allowed hosts.
    #[command(flatten)]
    pub fetch: FetchArgs,
    /// `--rebuild` and its options.
    #[command(flatten)]
    pub rebuild: RebuildArgs,
    /// Check the signed provenance: every statement's signature, and that every published
    /// archive is a subject of one (needs --key).
    #[arg(long, requires = "key")]
    pub provenance: bool,
    /// The public key provenance must be signed with (PEM, or 32 bytes in hex or base64).
    #[arg(long, value_name = "PUB", requires = "provenance")]
    pub key: Option<PathBuf>,
}

/// Options of `verify --rebuild`.
#[derive(Debug, Args)]
pub struct RebuildArgs {
    /// Rebuild every selected name@version from the configuration and the upstream git
    /// repositories in scratch space and compare its bytes with the published archive.
    #[arg(long = "rebuild", id = "enabled")]
    pub enabled: bool,
    /// With --rebuild: the repository to reproduce, a URL or a folder (default: the base URL).
    #[arg(long, requires = "enabled")]
    pub from: Option<String>,
    /// With --rebuild: only names (or `name@version`) matching this `*` pattern. Repeatable.
    #[arg(long = "only", value_name = "PATTERN", requires = "enabled")]
    pub only: Vec<String>,
    /// With --rebuild: at most this many versions, the same sample every run.
    #[arg(long, requires = "enabled")]
    pub sample: Option<usize>,
    /// With --rebuild: results so far (JSON lines); a run given the same file resumes.
    #[arg(long, requires = "enabled")]
    pub state: Option<PathBuf>,
    /// With --rebuild: write the report as JSON to this file.
    #[arg(long, requires = "enabled")]
    pub report: Option<PathBuf>,
    /// With --rebuild: replaces `https://github.com/mage-os` at the start of every upstream URL.
    #[arg(long, env = "FARM_UPSTREAM_BASE")]
    pub upstream_base: Option<String>,
    /// With --rebuild: the git cache folder.
    #[arg(long, env = "FARM_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
}

/// How `adopt` and `verify` read a repository they do not control.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Another host (or `scheme://host:port`) the metadata may link to or redirect to; by
    /// default every link must stay on the source's own origin. Repeatable.
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Time to open a connection.
    #[arg(long, default_value_t = Limits::default().connect_timeout.into())]
    pub connect_timeout: humantime::Duration,
    /// Longest silence while reading an answer.
    #[arg(long, default_value_t = Limits::default().read_timeout.into())]
    pub read_timeout: humantime::Duration,
    /// Longest time for one request, body included.
    #[arg(long, default_value_t = Limits::default().total_timeout.into())]
    pub request_timeout: humantime::Duration,
    /// Largest metadata document (packages.json, a p2 file, an include), in bytes.
    #[arg(long, default_value_t = Limits::default().max_metadata_bytes)]
    pub max_metadata_bytes: u64,
    /// Largest archive, in bytes.
    #[arg(long, default_value_t = Limits::default().max_archive_bytes)]
    pub max_archive_bytes: u64,
    /// Most versions one package may list in one document.
    #[arg(long, default_value_t = Limits::default().max_versions)]
    pub max_versions: usize,
}

impl FetchArgs {
    /// The limits these flags set.
    pub fn limits(&self) -> Limits {
        Limits {
            connect_timeout: self.connect_timeout.into(),
            read_timeout: self.read_timeout.into(),
            total_timeout: self.request_timeout.into(),
            max_metadata_bytes: self.max_metadata_bytes,
            max_archive_bytes: self.max_archive_bytes,
            max_versions: self.max_versions,
            ..Limits::default()
        }
    }
}

/// Options of `adopt`.
#[derive(Debug, Args)]
pub struct AdoptArgs {
    /// Configuration and output, as for `build`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// The repository to take over: its URL (where `packages.json` is served) or a folder.
    #[arg(long)]
    pub from: String,
    /// Archives checked or copied at once.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Timeouts, limits and allowed hosts.
    #[command(flatten)]
    pub fetch: FetchArgs,
}

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Configuration and output, as for `build`.
    #[command(flatten)]
    pub common: CommonArgs,
    /// Address to listen on (default: the config's `serve.listen`, else 127.0.0.1:8080).
    #[arg(long, env = "FARM_LISTEN")]
    pub listen: Option<std::net::SocketAddr>,
    /// Also serve the repository (the output folder) under the base URL's path, embedded mode
    /// only (as `serve.repository = true`).
    #[arg(long)]
    pub repository: bool,
}

/// Options shared by `build` and `plan`.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// Configuration file (TOML).
    #[arg(long, env = "FARM_CONFIG")]
    pub config: PathBuf,
    /// Output folder: archives under `packages/`, metadata at `packages.json`.
    #[arg(long, env = "FARM_OUT")]
    pub out: Option<PathBuf>,
    /// Replaces `https://github.com/mage-os` at the start of every upstream URL (e.g. a folder of
    /// bare clones or a private git mirror).
    #[arg(long, env = "FARM_UPSTREAM_BASE")]
    pub upstream_base: Option<String>,
    /// Public URL of the repository; dist URLs and `metadata-url` start with it.
    #[arg(long, env = "FARM_BASE_URL")]
    pub base_url: Option<String>,
    /// In-process workers (default: the config's `build.workers`, else one per core).
    #[arg(long, env = "FARM_WORKERS")]
    pub workers: Option<usize>,
    /// Git cache folder.
    #[arg(long, env = "FARM_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Also fail (exit 1) when upstream input was rejected (invalid composer.json, tags that are
    /// not versions, ...).
    #[arg(long)]
    pub strict: bool,
    /// Build into an output folder that holds a Composer repository the farm did not make,
    /// replacing its packages.json and p2/ files (refused without it).
    #[arg(long)]
    pub adopt_existing: bool,
}

impl CommonArgs {
    /// Loads the config file and applies the command-line overrides.
    pub fn options(&self) -> anyhow::Result<(BuildOptions, bool)> {
        let mut config = load_overridden(
            &self.config,
            Overrides {
                upstream_base: self.upstream_base.as_ref(),
                base_url: self.base_url.as_ref(),
                cache_dir: self.cache_dir.as_ref(),
            },
        )?;
        if let Some(workers) = self.workers {
            config.build.workers = workers;
        }
        config.repository.adopt_existing |= self.adopt_existing;
        config.validate()?;
        let out = match (&self.out, &config.repository.output) {
            (Some(out), _) | (None, Some(out)) => out.clone(),
            // The bucket is the output.
            (None, None) if config.storage.kind == shared::config::StorageKind::S3 => PathBuf::new(),
            (None, None) => {
                anyhow::bail!("no output folder: pass --out or set repository.output (or use [storage] kind = \"s3\")")
            }
        };
        Ok((BuildOptions { config, out, progress: true }, self.strict))
    }
}

/// The command-line values that replace the config file's (`build` and `verify --rebuild`).
struct Overrides<'a> {
    upstream_base: Option<&'a String>,
    base_url: Option<&'a String>,
    cache_dir: Option<&'a PathBuf>,
}

/// Loads a config file; the error names it.
fn load(path: &std::path::Path) -> anyhow::Result<FarmConfig> {
    FarmConfig::load(path).with_context(|| format!("cannot load {}", path.display()))
}

/// Loads the config file and applies `overrides` (the caller validates, after its own).
fn load_overridden(path: &std::path::Path, overrides: Overrides<'_>) -> anyhow::Result<FarmConfig> {
    let mut config = load(path)?;
    if let Some(base) = overrides.upstream_base {
        config.build.upstream_base = Some(base.clone());
    }
    if let Some(url) = overrides.base_url {
        config.repository.base_url = url.clone();
    }
    if let Some(dir) = overrides.cache_dir {
        config.build.cache_dir = Some(dir.clone());
    }
    Ok(config)
}

/// Runs a command; returns the process exit code (0 success, 1 something failed).
pub async fn run(cli: Cli) -> anyhow::Result<u8> {
    shared::alloc::bound_heap();
    match cli.command {
        Command::Build(args) => build(args).await,
        Command::Plan(args) => plan(args).await,
        Command::Serve(args) => serve(args).await,
        Command::Adopt(args) => adopt(args).await,
        Command::Verify(args) => verify(args).await,
        Command::Check(args) => check(args).await,
    }
}

async fn build(args: BuildArgs) -> anyhow::Result<u8> {
    let (options, strict) = args.common.options()?;
    let scope = if args.changed { crate::plan::Scope::Changed(None) } else { crate::plan::Scope::All };
    let report = pipeline::run_scoped(options, scope).await?;
    eprint!("{}", report.summary());
    let broken = args.fail_on_broken && report.health.as_ref().is_some_and(|h| h.is_broken());
    Ok(if report.succeeded(strict) && !broken { 0 } else { 1 })
}

async fn plan(args: CommonArgs) -> anyhow::Result<u8> {
    let (options, strict) = args.options()?;
    let storage = pipeline::open_storage(&options.config, &options.out).await?;
    let manifest = Manifest::load(&storage).await?;
    let planned = crate::plan::plan(&options.config, &manifest, &crate::plan::Scope::All).await?;
    let report = crate::report::BuildReport::planned(planned.findings);
    for candidate in &planned.to_build {
        println!(
            "build {} {} from {} {} ({})",
            candidate.package,
            candidate.version,
            candidate.upstream,
            candidate.tag,
            candidate.target_key()
        );
    }
    for package in &planned.additional {
        println!("publish {} {} from additional package {}", package.name, package.version, package.file_name);
    }
    for provided in &report.provided {
        println!("provided {} {} by additional package {}", provided.package, provided.version, provided.file);
    }
    for id in &planned.unchanged {
        println!("unchanged {id}");
    }
    eprint!("{}", report.summary());
    storage.cleanup();
    Ok(if report.succeeded(strict) { 0 } else { 1 })
}

async fn serve(args: ServeArgs) -> anyhow::Result<u8> {
    let (mut options, _) = args.common.options()?;
    if let Some(listen) = args.listen {
        options.config.serve.listen = listen;
        options.config.validate()?;
    }
    options.config.serve.repository |= args.repository;
    let shutdown = shared::shutdown::on_signals_or_warn(SERVE_SIGNAL_NOTICES);
    let listen = options.config.serve.listen;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let serve = crate::serve::ServeOptions { config: options.config, out: options.out };
    crate::serve::run(serve, listener, shutdown.cancelled_owned()).await?;
    Ok(0)
}

async fn adopt(args: AdoptArgs) -> anyhow::Result<u8> {
    let (options, _) = args.common.options()?;
    let farm = pipeline::Farm::open(
        options.config,
        &options.out,
        std::sync::Arc::new(crate::metrics::Metrics::new()),
        tokio_util::sync::CancellationToken::new(),
        std::time::Duration::ZERO,
    )
    .await?;
    let adopt = crate::adopt::AdoptOptions {
        concurrency: args.concurrency,
        limits: args.fetch.limits(),
        allowed_hosts: args.fetch.allow_hosts.clone(),
    };
    let result = crate::adopt::adopt(&farm, &args.from, &adopt).await;
    farm.close().await;
    let report = result?;
    eprint!("{}", report.summary());
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}

async fn verify(args: VerifyArgs) -> anyhow::Result<u8> {
    if args.rebuild.enabled {
        return rebuild(args).await;
    }
    let config = load(&args.config)?;
    let base_url = args.base_url.unwrap_or(config.repository.base_url);
    let verifier = match &args.key {
        Some(path) => Some(crate::provenance::Verifier::load(path)?),
        None => None,
    };
    let limits = args.fetch.limits();
    let report =
        crate::verify::verify(&base_url, args.concurrency, limits, &args.fetch.allow_hosts, verifier.as_ref()).await?;
    eprint!("{}", report.summary());
    Ok(if report.problems.is_empty() { 0 } else { 1 })
}

async fn rebuild(args: VerifyArgs) -> anyhow::Result<u8> {
    let config = load_overridden(
        &args.config,
        Overrides {
            upstream_base: args.rebuild.upstream_base.as_ref(),
            base_url: args.base_url.as_ref(),
            cache_dir: args.rebuild.cache_dir.as_ref(),
        },
    )?;
    config.validate()?;
    let scratch = config.cache_dir().join("verify").join(std::process::id().to_string());
    let options = crate::rebuild::RebuildOptions {
        from: args.rebuild.from.clone().unwrap_or_else(|| config.repository.base_url.clone()),
        public_base: config.repository.base_url.clone(),
        only: args.rebuild.only.clone(),
        sample: args.rebuild.sample,
        state: args.rebuild.state.clone(),
        concurrency: args.concurrency,
        limits: args.fetch.limits(),
        allowed_hosts: args.fetch.allow_hosts.clone(),
        scratch: scratch.clone(),
    };
    let result = crate::rebuild::rebuild(&config, &options).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = result?;
    if let Some(path) = &args.rebuild.report {
        write_report(path, &report)?;
    }
    eprint!("{}", report.summary());
    Ok(if report.is_clean() { 0 } else { 1 })
}

async fn check(args: CheckArgs) -> anyhow::Result<u8> {
    let options = args.options()?;
    let scratch = options.scratch.clone();
    let result = crate::check::check(options).await;
    let _ = std::fs::remove_dir_all(&scratch);
    let report = result?;
    if let Some(path) = &args.report {
        write_report(path, &report)?;
    }
    eprint!("{}", report.summary());
    Ok(if report.is_clean() { 0 } else { 1 })
}

/// Writes a command's report as pretty JSON (`--report FILE`).
fn write_report(path: &std::path::Path, report: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(report).expect("report serialises");
    bytes.push(b'\n');
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// `serve`: the first SIGTERM/SIGINT stops gracefully (no new hooks, builds in flight finish);
/// a second one exits at once.
const SERVE_SIGNAL_NOTICES: shared::shutdown::Notices = shared::shutdown::Notices {
    stopping: "signal received: stopping (a second signal exits at once)",
    exiting: "second signal: exiting now",
};

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    fn verify_args(args: &[&str]) -> Result<VerifyArgs, clap::Error> {
        let cli = Cli::try_parse_from(["coordinator", "verify", "--config", "farm.toml"].iter().chain(args))?;
        match cli.command {
            Command::Verify(args) => Ok(args),
            other => panic!("not verify: {other:?}"),
        }
    }

    #[test]
    fn rebuild_options_need_rebuild_and_provenance_needs_a_key() {
        let args = verify_args(&["--rebuild", "--sample", "3", "--only", "a/*", "--only", "b/c"]).unwrap();
        assert!(args.rebuild.enabled);
        assert_eq!((args.rebuild.sample, args.rebuild.only.len()), (Some(3), 2));
        assert!(!verify_args(&[]).unwrap().rebuild.enabled);
        assert!(verify_args(&["--sample", "3"]).is_err(), "--sample without --rebuild");
        assert!(verify_args(&["--provenance"]).is_err(), "--provenance without --key");
        let args = verify_args(&["--provenance", "--key", "farm.pub"]).unwrap();
        assert_eq!(args.key, Some(PathBuf::from("farm.pub")));
    }
}
