//! Farm configuration: a TOML file plus `FARM_*` environment overrides, loaded with the `config` crate.
//!
//! Everything that decides what is built is data here: the published repository, the upstream git
//! repositories and, per upstream, the package rules of the reference generator (package folders,
//! single packages, metapackage folders, excludes, empty directories, the first tag, per-tag version
//! pins and composer.json adjustments). The reference's JavaScript transform functions become
//! [`Transform`] entries: a condition on the package version and a list of set/remove actions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The prefix of upstream URLs that `--upstream-base` replaces by default.
pub const DEFAULT_UPSTREAM_PREFIX: &str = "https://github.com/mage-os";

/// The vendor the reference generator uses when a repository sets none.
pub const DEFAULT_VENDOR: &str = "magento";

/// Configuration could not be loaded or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or parsed.
    #[error("cannot load configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is present but not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FarmConfig {
    /// The Composer repository that is published.
    pub repository: RepositoryConfig,
    /// How the build runs.
    #[serde(default)]
    pub build: BuildConfig,
    /// The job queue: absent means the in-process queue of the embedded mode.
    #[serde(default)]
    pub queue: Option<QueueConfig>,
    /// Where archives and metadata are stored: absent means the local folder of
    /// `repository.output` / `--out`.
    #[serde(default)]
    pub storage: StorageConfig,
    /// Upstream git repositories in build order (the order decides precedence, spec 4.6).
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    /// The always-on coordinator (`coordinator serve`): HTTP endpoint, polling, webhooks.
    #[serde(default)]
    pub serve: ServeConfig,
    /// What kind of repository this is: version rule, vendor, explicit inputs, flavours.
    #[serde(default)]
    pub target: TargetConfig,
}

/// How package versions are chosen (`target.versions`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum VersionRule {
    /// Every selected tag as it is tagged (the mirror, and a release's history).
    #[default]
    Tagged,
    /// Each upstream's `ref` branch head as `<latest tag>.1-a<YYYYMMDD>[+suffix]` (spec 5.3).
    Nightly,
    /// The history tags as tagged, plus (with `release`) one new version for every package built
    /// from each upstream's `ref` branch head (spec 5.4).
    Release,
}

/// The distribution this configuration publishes (`[target]`): the mirror, an upstream nightly,
/// a Mage-OS nightly or a Mage-OS release. Everything the reference generator looks up live is an
/// explicit input here, and every input is recorded in the build report.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// The version rule.
    #[serde(default)]
    pub versions: VersionRule,
    /// Vendor of upstreams that set none (default `magento`); another vendor renames the
    /// `magento/*` packages this configuration builds.
    #[serde(default)]
    pub vendor: Option<String>,
    /// Nightly: the `YYYYMMDD` in versions. Absent: the date of the build's start in UTC.
    #[serde(default)]
    pub date: Option<String>,
    /// Release: the version every package of the new release gets (e.g. `3.3.0`). Absent: only
    /// the history (tags from `from_tag`) is built.
    #[serde(default)]
    pub release: Option<String>,
    /// Folder with the reference's data files: `history/<vendor>/<package>/<version>.json` and
    /// `composer-templates/<vendor>/<package>/{template,dependencies-template}.json`.
    #[serde(default)]
    pub resources: Option<PathBuf>,
    /// Versions of the upstream release the build replaces (`replace` entries point at them): a
    /// `composer.lock`, the output of `composer show --format=json`, or a JSON object of name to
    /// version.
    #[serde(default)]
    pub upstream_versions: Option<PathBuf>,
    /// Packages of the vendor that are on Packagist: their constraints are kept instead of being
    /// pinned to the release (the reference asks Packagist's search API at build time).
    #[serde(default)]
    pub on_packagist: Vec<String>,
    /// Release: alias metapackages so that `magento/*` requirements install the vendor's packages.
    #[serde(default = "default_true")]
    pub aliases: bool,
    /// The require section of template-based packages (the base package), as a JSON object file.
    /// The reference computes it with PHP tooling (class usage to installed packages); the farm
    /// takes the result as an input. Absent: the template's own require is kept, and the report
    /// says so.
    #[serde(default)]
    pub base_require: Option<PathBuf>,
    /// Flavours: product and project metapackages whose require is the community edition's,
    /// filtered by rules.
    #[serde(default)]
    pub flavours: Vec<Flavour>,
}

/// A distribution flavour (`[[target.flavours]]`): `<vendor>/product-<name>-edition` requires
/// the entries of the product community edition's `require` that the rules keep, and
/// `<vendor>/project-<name>-edition` is a project requiring it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flavour {
    /// Flavour name: `minimal` gives `product-minimal-edition` and `project-minimal-edition`.
    pub name: String,
    /// Description of the product metapackage.
    #[serde(default)]
    pub description: Option<String>,
    /// First history tag that has this flavour (inclusive). Absent: only new releases.
    #[serde(default)]
    pub since: Option<String>,
    /// Keep only requirements whose name matches one of these (`*` matches any text); empty:
    /// keep all.
    #[serde(default)]
    pub include: Vec<String>,
    /// Drop requirements whose name matches one of these.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Drop requirements on built packages of these composer types (e.g. `magento2-theme`).
    #[serde(default)]
    pub exclude_types: Vec<String>,
    /// Always keep these names, whatever the other rules say.
    #[serde(default)]
    pub keep: Vec<String>,
    /// Also drop every built package that requires a dropped one (directly or through other
    /// built packages), so nothing dropped comes back as a dependency.
    #[serde(default)]
    pub closed: bool,
    /// Also build `project-<name>-edition`.
    #[serde(default = "default_true")]
    pub project: bool,
}

impl Flavour {
    /// The product metapackage's name without vendor.
    pub fn product_name(&self) -> String {
        format!("product-{}-edition", self.name)
    }

    /// The project metapackage's name without vendor.
    pub fn project_name(&self) -> String {
        format!("project-{}-edition", self.name)
    }
}

/// `*`-wildcard match of a package name (the whole name; `*` matches any text, also `/`).
pub fn name_matches(pattern: &str, name: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || name.len() < first.len() + last.len() || !name.ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// A secret from the configuration; never printed (`Debug` shows `[redacted]`).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes, for comparing and signing only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `coordinator serve` (`[serve]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address of the HTTP endpoint (webhooks, health, metrics, status).
    #[serde(default = "default_listen")]
    pub listen: String,
    /// How often every upstream is fetched to look for new tags and moved branches; `0s` turns
    /// polling off (webhooks only).
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// Triggers of one upstream within this window after the first give one build.
    #[serde(default = "default_coalesce", with = "duration")]
    pub coalesce: Duration,
    /// On SIGTERM, how long running builds may still wait for results before they record what
    /// they have and stop (jobs left in the queue are picked up after a restart).
    #[serde(default = "default_shutdown_grace", with = "duration")]
    pub shutdown_grace: Duration,
    /// Largest webhook body accepted, in bytes (larger: 413).
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// Time a client has to send a request's headers, counted from the accepted connection or
    /// from the first byte of a kept-alive connection's next request (then closed unanswered).
    #[serde(default = "default_header_timeout", with = "duration")]
    pub header_timeout: Duration,
    /// Time a client has to send a webhook's whole body once its headers passed (then 408).
    #[serde(default = "default_body_timeout", with = "duration")]
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    #[serde(default = "default_idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's accept queue, unaccepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Bytes of webhook bodies held in memory at once, over all requests; a body that would
    /// exceed it is refused with 503 before it is read.
    #[serde(default = "default_max_body_memory")]
    pub max_body_memory: usize,
    /// Secret of GitHub webhooks (`X-Hub-Signature-256`); absent turns `/hooks/github` off.
    #[serde(default)]
    pub github_secret: Option<Secret>,
    /// Secret token of GitLab webhooks (`X-Gitlab-Token`); absent turns `/hooks/gitlab` off.
    #[serde(default)]
    pub gitlab_token: Option<Secret>,
    /// Bearer token of `/hooks/trigger`; absent turns it off.
    #[serde(default)]
    pub trigger_token: Option<Secret>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            poll_interval: default_poll_interval(),
            coalesce: default_coalesce(),
            shutdown_grace: default_shutdown_grace(),
            max_body: default_max_body(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_body_memory: default_max_body_memory(),
            github_secret: None,
            gitlab_token: None,
            trigger_token: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:8080".to_owned()
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_coalesce() -> Duration {
    Duration::from_secs(60)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(20)
}
fn default_max_body() -> usize {
    5 * 1024 * 1024
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_connections() -> usize {
    256
}
fn default_max_body_memory() -> usize {
    64 * 1024 * 1024
}

/// Most connections `serve.max_connections` may allow (each is a file descriptor).
pub const MAX_CONNECTIONS: usize = 65_536;

impl ServeConfig {
    /// Checks values: secrets long enough, an address to listen on, limits that can be met.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(format!("serve.{message}")));
        for (name, secret) in [
            ("github_secret", &self.github_secret),
            ("gitlab_token", &self.gitlab_token),
            ("trigger_token", &self.trigger_token),
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().len() < 8) {
                return invalid(format!("{name} is shorter than 8 characters; leave it out to turn the hook off"));
            }
        }
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return invalid(format!("listen must be an address like 127.0.0.1:8080, got '{}'", self.listen));
        }
        for (name, timeout) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if timeout.is_zero() {
                return invalid(format!("{name} must be longer than 0s"));
            }
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return invalid(format!("max_connections must be 1 to {MAX_CONNECTIONS}, got {}", self.max_connections));
        }
        if self.max_body > self.max_body_memory {
            return invalid(format!(
                "max_body ({}) is larger than max_body_memory ({}): no body of that size could ever be read",
                self.max_body, self.max_body_memory
            ));
        }
        Ok(())
    }
}

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

/// The RabbitMQ job queue of the distributed mode (`[queue]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// AMQP URL, e.g. `amqp://user:password@rabbitmq:5672/%2f` (`FARM_QUEUE__URL`).
    pub url: String,
    /// Prefix of every queue and exchange name, so several farms can share a broker.
    #[serde(default = "default_queue_prefix")]
    pub prefix: String,
    /// Tries of a job that fails for a passing reason (git fetch, storage unreachable) before it
    /// is dead-lettered and reported as failed.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with every further attempt.
    #[serde(default = "default_retry_delay", with = "duration")]
    pub retry_delay: Duration,
    /// Upper bound of the retry delay.
    #[serde(default = "default_retry_delay_max", with = "duration")]
    pub retry_delay_max: Duration,
    /// Deliveries of one job the broker allows before dead-lettering it (bounds a job that
    /// kills its worker every time).
    #[serde(default = "default_delivery_limit")]
    pub delivery_limit: u32,
    /// The coordinator gives up waiting when no result arrived for this long, and reports what
    /// did not come back.
    #[serde(default = "default_result_timeout", with = "duration")]
    pub result_timeout: Duration,
}

fn default_queue_prefix() -> String {
    "farm".to_owned()
}
fn default_max_attempts() -> u32 {
    5
}
fn default_retry_delay() -> Duration {
    Duration::from_secs(5)
}
fn default_retry_delay_max() -> Duration {
    Duration::from_secs(300)
}
fn default_delivery_limit() -> u32 {
    10
}
fn default_result_timeout() -> Duration {
    Duration::from_secs(30 * 60)
}

/// Where the repository is stored (`[storage]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (default) or `s3`.
    #[serde(default)]
    pub kind: StorageKind,
    /// Bucket name (s3).
    #[serde(default)]
    pub bucket: Option<String>,
    /// Key prefix inside the bucket, e.g. `mirror/` (s3); empty for the bucket root.
    #[serde(default)]
    pub prefix: String,
    /// Endpoint URL for S3-compatible servers (MinIO, ...); absent for AWS S3.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Region; absent means the AWS chain (`AWS_REGION`, profile), else `us-east-1`.
    #[serde(default)]
    pub region: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), needed by most S3-compatible servers.
    #[serde(default = "default_true")]
    pub path_style: bool,
    /// Access key; absent means the AWS chain (`AWS_ACCESS_KEY_ID`, profile, instance role).
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Secret key, with `access_key_id`.
    #[serde(default)]
    pub secret_access_key: Option<String>,
    /// The server honours `If-None-Match: *` on PUT (AWS S3, MinIO, Ceph RGW do). Set false for
    /// servers that ignore it (garage, s3s-fs): then every archive upload is preceded by a HEAD,
    /// which still never overwrites but leaves a window between two concurrent writers.
    #[serde(default = "default_true")]
    pub conditional_writes: bool,
    /// Uploads in flight at once, per process (a worker, or an embedded build), for archives and
    /// for the coordinator's metadata writes. Building uses one job per core; this many archives
    /// may be on their way to storage beside them, which hides the latency of each request.
    #[serde(default = "default_uploads")]
    pub uploads: usize,
    /// Archives of at least this many bytes go up as a multipart upload (s3).
    #[serde(default = "default_multipart_threshold")]
    pub multipart_threshold: u64,
    /// The part size of multipart uploads, at least 5 MiB (s3).
    #[serde(default = "default_multipart_part_size")]
    pub multipart_part_size: u64,
}

fn default_true() -> bool {
    true
}
fn default_uploads() -> usize {
    32
}
fn default_multipart_threshold() -> u64 {
    64 << 20
}
fn default_multipart_part_size() -> u64 {
    16 << 20
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: StorageKind::default(),
            bucket: None,
            prefix: String::new(),
            endpoint: None,
            region: None,
            path_style: true,
            access_key_id: None,
            secret_access_key: None,
            conditional_writes: true,
            uploads: default_uploads(),
            multipart_threshold: default_multipart_threshold(),
            multipart_part_size: default_multipart_part_size(),
        }
    }
}

/// The smallest part S3 accepts (all but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;

/// Storage backends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// A local folder (`repository.output`).
    #[default]
    Local,
    /// An S3 bucket.
    S3,
}

/// Durations as humane text (`"5s"`, `"2m 30s"`).
mod duration {
    use std::time::Duration;

    use serde::Deserialize;

    pub(super) fn deserialize<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("'{text}': {e}")))
    }
}

impl QueueConfig {
    /// Checks values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: &str| Err(ConfigError::Invalid(format!("queue: {message}")));
        if !(self.url.starts_with("amqp://") || self.url.starts_with("amqps://")) {
            return invalid("url must start with amqp:// or amqps://");
        }
        if self.prefix.is_empty() || !self.prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return invalid("prefix must be non-empty letters, digits, '-', '_' or '.'");
        }
        if self.max_attempts == 0 || self.delivery_limit == 0 {
            return invalid("max_attempts and delivery_limit must be at least 1");
        }
        if self.result_timeout.is_zero() {
            return invalid("result_timeout must be positive");
        }
        Ok(())
    }
}

impl StorageConfig {
    /// Checks values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.kind == StorageKind::S3 {
            if self.bucket.as_deref().unwrap_or("").is_empty() {
                return Err(ConfigError::Invalid("storage: kind = \"s3\" needs a bucket".to_owned()));
            }
            if self.access_key_id.is_some() != self.secret_access_key.is_some() {
                return Err(ConfigError::Invalid(
                    "storage: set both access_key_id and secret_access_key, or neither".to_owned(),
                ));
            }
            if self.prefix.starts_with('/') {
                return Err(ConfigError::Invalid("storage: prefix must not start with '/'".to_owned()));
            }
            if self.multipart_part_size < MIN_PART_SIZE || self.multipart_threshold < self.multipart_part_size {
                return Err(ConfigError::Invalid(format!(
                    "storage: multipart_part_size must be at least {MIN_PART_SIZE} bytes (5 MiB) and at most multipart_threshold"
                )));
            }
        }
        if self.uploads == 0 {
            return Err(ConfigError::Invalid("storage: uploads must be at least 1".to_owned()));
        }
        Ok(())
    }
}

impl WorkerConfig {
    /// Loads the worker's sections from a file (if any) plus `FARM_*` environment overrides.
    pub fn load(path: Option<&Path>) -> Result<WorkerConfig, ConfigError> {
        let mut builder = config::Config::builder();
        if let Some(path) = path {
            builder = builder.add_source(config::File::from(path).format(config::FileFormat::Toml));
        }
        let parsed: WorkerConfig = builder.add_source(environment_overrides()).build()?.try_deserialize()?;
        parsed.validate()?;
        Ok(parsed)
    }

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

/// The published repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// Public URL the repository is served from; dist URLs and `metadata-url` start with it.
    pub base_url: String,
    /// Output folder of the embedded mode (`--out` overrides it).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Folder of prebuilt archives (the reference's `resource/additional-packages`): a
    /// name@version they provide is not built from git; they are published as they are under
    /// `packages/additional/`.
    #[serde(default)]
    pub additional_packages: Option<PathBuf>,
    /// Build into an output folder that already holds a Composer repository the farm did not
    /// make, replacing its metadata (`--adopt-existing`; refused otherwise).
    #[serde(default)]
    pub adopt_existing: bool,
}

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
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig { workers: 0, cache_dir: None, upstream_base: None, upstream_prefix: default_upstream_prefix() }
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

fn default_upstream_prefix() -> String {
    DEFAULT_UPSTREAM_PREFIX.to_owned()
}

/// One upstream git repository and the packages built from it (the reference's
/// `repositoryBuildDefinition`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Short name, used in reports (the reference's config key).
    pub key: String,
    /// Git URL.
    pub url: String,
    /// Composer vendor of the built packages; other than `magento` renames `magento/*` names.
    /// Default: `target.vendor`, else `magento`.
    #[serde(default)]
    pub vendor: String,
    /// The branch nightly and release builds read (the reference's `ref`), e.g. `2.4-develop`.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// First tag to build (inclusive, compared with the reference's version order).
    #[serde(default)]
    pub from_tag: Option<String>,
    /// Tags never to build.
    #[serde(default)]
    pub skip_tags: Vec<String>,
    /// Tags to create for untagged commits (the reference's `extraRefToRelease`).
    #[serde(default)]
    pub extra_tags: Vec<ExtraTag>,
    /// Folders whose every immediate, non-hidden subfolder is one package (`packageDirs`).
    #[serde(default)]
    pub package_dirs: Vec<PackageDefinition>,
    /// Folders that are one package each (`packageIndividual`).
    #[serde(default)]
    pub single_packages: Vec<PackageDefinition>,
    /// Folders whose composer.json alone is a package, e.g. a metapackage (`packageMetaFromDirs`).
    #[serde(default)]
    pub metapackage_dirs: Vec<PackageDefinition>,
    /// Per tag, versions that replace a package's own version and every dependency constraint on it
    /// (the reference's `fixVersions`).
    #[serde(default)]
    pub pinned_versions: BTreeMap<String, BTreeMap<String, String>>,
    /// composer.json adjustments (the reference's `transform` functions, as data).
    #[serde(default)]
    pub transforms: Vec<Transform>,
    /// Development branches built as `dev-<branch>` versions (published in the `~dev` metadata
    /// files; each content change gets a new archive).
    #[serde(default)]
    pub branches: Vec<String>,
    /// Metapackages made from the repository's root composer.json (the reference's
    /// `extraMetapackages`): the project and product community editions.
    #[serde(default)]
    pub metapackages: Vec<MetapackageDefinition>,
    /// Files replaced inside one package version's archive (the reference's
    /// `packageReplacements`), read from `<target.resources>/replace/<package>/<version>/<file>`.
    #[serde(default)]
    pub file_replacements: Vec<FileReplacement>,
    /// Repository names (`owner/name`, as webhooks send them) that trigger this upstream;
    /// default: the last two path segments of `url` without `.git`.
    #[serde(default)]
    pub webhook_names: Vec<String>,
}

impl UpstreamConfig {
    /// The names a webhook may give this upstream's repository (lower case).
    pub fn hook_names(&self) -> Vec<String> {
        if !self.webhook_names.is_empty() {
            return self.webhook_names.iter().map(|n| n.trim_matches('/').to_lowercase()).collect();
        }
        let path = self.url.trim_end_matches('/').trim_end_matches(".git");
        // `git@host:owner/name` and `https://host/owner/name` alike.
        let segments: Vec<&str> = path.rsplit(['/', ':']).take(2).collect();
        match segments.as_slice() {
            [name, owner] if !name.is_empty() && !owner.is_empty() => vec![format!("{owner}/{name}").to_lowercase()],
            _ => Vec::new(),
        }
    }
}

/// `FARM_<SECTION>__<KEY>` variables override file values. Only names with `__` are taken, so
/// the command-line variables (`FARM_OUT`, `FARM_UPSTREAM_BASE`, ...) do not leak in as unknown keys.
fn environment_overrides() -> config::Environment {
    let variables: config::Map<String, String> = std::env::vars()
        .filter(|(name, _)| name.strip_prefix("FARM_").is_some_and(|rest| rest.contains("__")))
        .collect();
    config::Environment::with_prefix("FARM")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .source(Some(variables))
}

/// A metapackage made from the repository's root composer.json (`extraMetapackages`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetapackageDefinition {
    /// Name without vendor, e.g. `product-community-edition`.
    pub name: String,
    /// Which community-edition transform makes it (spec 3.8).
    pub kind: MetapackageKind,
    /// First tag it is built from (default: the upstream's `from_tag`).
    #[serde(default)]
    pub from_tag: Option<String>,
    /// Files added after composer.json at some tags (tagged builds).
    #[serde(default)]
    pub extra_files: Vec<MetapackageFile>,
}

/// A file added to a metapackage's archive at some tags (the reference adds a `.gitignore` to
/// project-community-edition 2.4.0 and 2.4.0-p1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetapackageFile {
    /// Path inside the archive.
    pub path: String,
    /// Its content: a file relative to `target.resources`.
    pub source: String,
    /// The tags whose archive gets it.
    pub refs: Vec<String>,
}

/// Files replaced inside one package version (`packageReplacements`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReplacement {
    /// Composer name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Package-relative paths; the content of each is
    /// `<target.resources>/replace/<package>/<version>/<path>`.
    pub files: Vec<String>,
}

/// The two community-edition metapackages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetapackageKind {
    /// `project-*`: a Composer project requiring the product.
    Project,
    /// `product-*`: the metapackage requiring every package of the distribution.
    Product,
}

/// An exclude that applies except at some tags (the reference's exclude functions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalExclude {
    /// Repository-relative path prefix.
    pub path: String,
    /// Not excluded at these refs.
    #[serde(default)]
    pub unless_ref_in: Vec<String>,
    /// Not excluded at refs starting with this text.
    #[serde(default)]
    pub unless_ref_prefix: Option<String>,
}

impl ConditionalExclude {
    /// Whether the path is excluded at `git_ref`.
    pub fn applies_at(&self, git_ref: &str) -> bool {
        !self.unless_ref_in.iter().any(|r| r == git_ref)
            && !self.unless_ref_prefix.as_deref().is_some_and(|p| git_ref.starts_with(p))
    }
}

/// A tag to create at a commit that upstream never tagged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraTag {
    /// Tag name.
    pub tag: String,
    /// Full commit id.
    pub commit: String,
}

/// A package folder rule (`packageDefinition`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageDefinition {
    /// Human-readable name for logs and reports.
    #[serde(default)]
    pub label: String,
    /// Repository-relative folder; `""` is the repository root.
    pub dir: String,
    /// Repository-relative path prefixes to leave out (plain string prefix, no path boundary).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Package-relative folders added as empty directory entries.
    #[serde(default)]
    pub empty_dirs: Vec<String>,
    /// Excludes that apply except at some refs.
    #[serde(default)]
    pub conditional_excludes: Vec<ConditionalExclude>,
    /// The composer.json comes from this template (relative to `target.resources`, e.g.
    /// `composer-templates/magento/magento2-base/template.json`) instead of the repository: at a
    /// tag the history file `history/.../<tag>.json` is used when present; tagged builds skip a
    /// tag without one; nightly and release builds use the template with `target.base_require`.
    #[serde(default)]
    pub composer_template: Option<String>,
    /// Sort the link sections (require, require-dev, suggest, replace, conflict) of versions that
    /// are not numeric or compare at least this (the reference's base package rule, `3.2.1`).
    #[serde(default)]
    pub sort_links_since: Option<String>,
}

/// A composer.json adjustment for one package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Composer name the transform applies to.
    pub package: String,
    /// Conditions on the package's final version; all must hold.
    #[serde(default)]
    pub when: Condition,
    /// Actions in order.
    pub actions: Vec<Action>,
}

/// Conditions on a version. An empty condition always holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The version equals this.
    #[serde(default)]
    pub version: Option<String>,
    /// The version starts with this text.
    #[serde(default)]
    pub version_prefix: Option<String>,
    /// The version compares `>=` this one (reference order).
    #[serde(default)]
    pub version_at_least: Option<String>,
    /// The version compares `<` this one (reference order).
    #[serde(default)]
    pub version_below: Option<String>,
}

/// One composer.json edit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Action {
    /// Set the value at a key path; missing objects on the way are created, an existing key keeps
    /// its position, a new key is appended last.
    Set {
        /// Key path.
        set: Vec<String>,
        /// Any JSON value.
        value: serde_json::Value,
    },
    /// Remove the key at a path, if present.
    Remove {
        /// Key path.
        remove: Vec<String>,
    },
}

impl FarmConfig {
    /// Loads a TOML file, then applies `FARM_*` environment overrides (`FARM_BUILD__WORKERS=4`,
    /// `FARM_REPOSITORY__BASE_URL=...`).
    pub fn load(path: &Path) -> Result<FarmConfig, ConfigError> {
        let settings = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(environment_overrides())
            .build()?;
        let mut parsed: FarmConfig = settings.try_deserialize()?;
        parsed.apply_defaults();
        parsed.validate()?;
        Ok(parsed)
    }

    /// Parses TOML text without environment overrides (tests, embedded configs).
    pub fn from_toml(text: &str) -> Result<FarmConfig, ConfigError> {
        let settings =
            config::Config::builder().add_source(config::File::from_str(text, config::FileFormat::Toml)).build()?;
        let mut parsed: FarmConfig = settings.try_deserialize()?;
        parsed.apply_defaults();
        parsed.validate()?;
        Ok(parsed)
    }

    /// Fills values that default to other values (an upstream's vendor to `target.vendor`).
    pub fn apply_defaults(&mut self) {
        let vendor = self.target.vendor.clone().unwrap_or_else(|| DEFAULT_VENDOR.to_owned());
        for upstream in &mut self.upstreams {
            if upstream.vendor.is_empty() {
                upstream.vendor = vendor.clone();
            }
        }
    }

    /// Checks the `[target]` section against the upstreams.
    fn validate_target(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        let target = &self.target;
        if let Some(date) = &target.date
            && !(date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
        {
            return invalid(format!("target.date must be YYYYMMDD, got '{date}'"));
        }
        if let Some(release) = &target.release {
            if target.versions != VersionRule::Release {
                return invalid("target.release needs target.versions = \"release\"".to_owned());
            }
            crate::distribution::validate_release_version("target.release", release).map_err(ConfigError::Invalid)?;
        }
        let needs_ref = match target.versions {
            VersionRule::Tagged => false,
            VersionRule::Nightly => true,
            VersionRule::Release => target.release.is_some(),
        };
        for upstream in &self.upstreams {
            if needs_ref && upstream.git_ref.as_deref().is_none_or(str::is_empty) {
                return invalid(format!(
                    "upstream '{}' needs `ref` (the branch to build) for this target",
                    upstream.key
                ));
            }
            if let Some(git_ref) = &upstream.git_ref
                && !git2::Reference::is_valid_name(&format!("refs/heads/{git_ref}"))
            {
                return invalid(format!("upstream '{}': ref '{git_ref}' is not a valid branch name", upstream.key));
            }
            let templated =
                upstream.single_packages.iter().chain(&upstream.package_dirs).any(|d| d.composer_template.is_some());
            if (templated || !upstream.metapackages.is_empty() || !upstream.file_replacements.is_empty())
                && target.resources.is_none()
            {
                return invalid(format!(
                    "upstream '{}' uses composer templates or metapackages: set target.resources (the folder of history files and templates)",
                    upstream.key
                ));
            }
            for meta in &upstream.metapackages {
                if let Some(from) = &meta.from_tag {
                    crate::version::validate(from).map_err(|e| {
                        ConfigError::Invalid(format!(
                            "upstream '{}': metapackage {}: from_tag: {e}",
                            upstream.key, meta.name
                        ))
                    })?;
                }
            }
        }
        let mut names = std::collections::HashSet::new();
        for flavour in &target.flavours {
            if flavour.name.is_empty()
                || !flavour.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return invalid(format!("flavour name '{}' must be lower-case letters, digits and '-'", flavour.name));
            }
            if flavour.name == "community" || !names.insert(flavour.name.as_str()) {
                return invalid(format!(
                    "flavour '{}' is defined twice (or clashes with the community edition)",
                    flavour.name
                ));
            }
            if let Some(since) = &flavour.since {
                crate::version::validate(since)
                    .map_err(|e| ConfigError::Invalid(format!("flavour '{}': since: {e}", flavour.name)))?;
            }
        }
        if !target.flavours.is_empty()
            && !self.upstreams.iter().any(|u| u.metapackages.iter().any(|m| m.kind == MetapackageKind::Product))
        {
            return invalid("flavours need an upstream with a product metapackage (kind = \"product\")".to_owned());
        }
        Ok(())
    }

    /// Checks values (also after command-line overrides).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_target()?;
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        check_base_url(&self.repository.base_url)?;
        if let Some(queue) = &self.queue {
            queue.validate()?;
        }
        self.storage.validate()?;
        self.serve.validate()?;
        let mut keys = std::collections::HashSet::new();
        for upstream in &self.upstreams {
            check_upstream_key(&upstream.key)?;
            if !keys.insert(upstream.key.as_str()) {
                return invalid(format!("upstream key '{}' is used twice", upstream.key));
            }
            for branch in &upstream.branches {
                if git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
                    continue;
                }
                return invalid(format!("upstream '{}': '{branch}' is not a valid branch name", upstream.key));
            }
            if let Some(from) = &upstream.from_tag {
                crate::version::validate(from)
                    .map_err(|e| ConfigError::Invalid(format!("upstream '{}': from_tag: {e}", upstream.key)))?;
            }
            for extra in &upstream.extra_tags {
                if extra.commit.len() != 40 || !extra.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return invalid(format!(
                        "upstream '{}': extra tag '{}' needs a full commit id",
                        upstream.key, extra.tag
                    ));
                }
            }
            for transform in &upstream.transforms {
                for action in &transform.actions {
                    let path = match action {
                        Action::Set { set, .. } => set,
                        Action::Remove { remove } => remove,
                    };
                    if path.is_empty() {
                        return invalid(format!(
                            "upstream '{}': a transform of {} has an empty path",
                            upstream.key, transform.package
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// The upstream URL after `upstream_base` substitution.
    pub fn resolve_url(&self, url: &str) -> String {
        match &self.build.upstream_base {
            Some(base) => match url.strip_prefix(self.build.upstream_prefix.as_str()) {
                Some(rest) => format!("{}{}", base.trim_end_matches('/'), rest),
                None => url.to_owned(),
            },
            None => url.to_owned(),
        }
    }

    /// The git cache folder after defaults.
    pub fn cache_dir(&self) -> PathBuf {
        self.build.cache_dir.clone().unwrap_or_else(default_cache_dir)
    }

    /// Whether jobs go through a broker.
    pub fn is_distributed(&self) -> bool {
        self.queue.is_some()
    }

    /// Number of in-process workers after defaults.
    pub fn workers(&self) -> usize {
        self.build.jobs_at_once()
    }
}

/// The published base URL: http(s) with a host, no credentials, query or fragment (every dist URL
/// and the metadata's links start with it).
fn check_base_url(base_url: &str) -> Result<(), ConfigError> {
    let invalid =
        |why: &str| Err(ConfigError::Invalid(format!("repository.base_url {why}, got '{}'", redact_url(base_url))));
    let Ok(url) = url::Url::parse(base_url) else { return invalid("must be an http(s) URL") };
    if !matches!(url.scheme(), "http" | "https") {
        return invalid("must be an http(s) URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return invalid("needs a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("must not hold credentials (they would be published in every dist URL)");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return invalid("must not have a query or fragment");
    }
    Ok(())
}

/// Upstream keys name metrics labels, report entries and log fields: a short plain word.
fn check_upstream_key(key: &str) -> Result<(), ConfigError> {
    let plain = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "upstream key {key:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
    )))
}

/// `$XDG_CACHE_HOME/composer-farm/git`, else `~/.cache/composer-farm/git`.
fn default_cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("composer-farm").join("git")
}

/// The URL with any `user:password@` part replaced by `***@`, for logs, reports and the manifest
/// (the manifest and report live next to the published files).
pub fn redact_url(url: &str) -> String {
    let (without_query, query) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    format!("{}{}", redact_user_info(without_query), redact_query(query))
}

/// `scheme://user:pass@host/…` to `scheme://***@host/…`.
fn redact_user_info(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    // A password may hold '/' (base64 secrets often do), so the user info ends at the last '@',
    // not at the first '/'. An '@' after a '/' with no ':' before it is a path, not credentials.
    match rest.rfind('@') {
        Some(at) if rest[..at].contains(':') || !rest[..at].contains('/') => {
            format!("{scheme}://***@{}", &rest[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Every query (and fragment) parameter value to `***`: tokens travel as `?private_token=`,
/// `?access_token=` or signed-URL parameters, and no value there is needed to read a log.
fn redact_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(delimiter) = rest.chars().next() {
        out.push(delimiter);
        rest = &rest[delimiter.len_utf8()..];
        let end = rest.find(['&', ';', '#']).unwrap_or(rest.len());
        let (parameter, tail) = rest.split_at(end);
        match parameter.split_once('=') {
            Some((name, _)) => {
                out.push_str(name);
                out.push_str("=***");
            }
            None if parameter.is_empty() => {}
            None => out.push_str("***"),
        }
        rest = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISTRIBUTED: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[queue]
url = "amqp://farm:secret@rabbitmq:5672/%2f"
retry_delay = "2m 30s"

[storage]
kind = "s3"
bucket = "composer"

[[upstreams]]
key = "pb"
url = "https://github.com/mage-os/mirror-magento2-page-builder.git"
"#;

    #[test]
    fn queue_and_storage_sections_with_defaults() {
        let config = FarmConfig::from_toml(DISTRIBUTED).unwrap();
        assert!(config.is_distributed());
        let queue = config.queue.as_ref().unwrap();
        assert_eq!(queue.prefix, "farm");
        assert_eq!(queue.retry_delay, Duration::from_secs(150));
        assert_eq!(queue.max_attempts, 5);
        assert_eq!(config.storage.kind, StorageKind::S3);
        assert!(config.storage.path_style);
        assert!(!FarmConfig::from_toml("[repository]\nbase_url = \"https://x/\"\n").unwrap().is_distributed());
    }

    #[test]
    fn bad_queue_and_storage_values_are_refused() {
        let cases = [
            ("amqp://farm:secret@rabbitmq", "http://rabbitmq", "url must start with amqp"),
            ("retry_delay = \"2m 30s\"", "retry_delay = \"soon\"", "soon"),
            ("bucket = \"composer\"", "bucket = \"\"", "needs a bucket"),
            ("kind = \"s3\"", "kind = \"ftp\"", "ftp"),
        ];
        for (from, to, message) in cases {
            let error = FarmConfig::from_toml(&DISTRIBUTED.replace(from, to)).unwrap_err().to_string();
            assert!(error.contains(message), "{to}: {error}");
        }
    }

    #[test]
    fn a_worker_reads_its_sections_of_the_coordinator_file_and_needs_a_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("farm.toml");
        std::fs::write(&path, DISTRIBUTED).unwrap();
        let worker = WorkerConfig::load(Some(&path)).unwrap();
        assert_eq!(worker.queue.unwrap().url, "amqp://farm:secret@rabbitmq:5672/%2f");
        assert_eq!(worker.storage.bucket.as_deref(), Some("composer"));
        std::fs::write(&path, "[storage]\nkind = \"s3\"\nbucket = \"b\"\n").unwrap();
        let error = WorkerConfig::load(Some(&path)).unwrap_err().to_string();
        assert!(error.contains("needs [queue] url"), "{error}");
    }

    const SAMPLE: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "pb"
url = "https://github.com/mage-os/mirror-magento2-page-builder.git"
from_tag = "1.7.0"

[[upstreams.package_dirs]]
dir = "app/code/Magento"
excludes = ["app/code/Magento/_metapackage/"]

[upstreams.pinned_versions."1.7.0-RC1"]
"Magento/Module-Page-Builder" = "2.2.1"

[[upstreams.transforms]]
package = "magento/module-page-builder"
when = { version = "2.2.1" }
actions = [
  { set = ["require", "magento/framework"], value = "~103.0.3" },
  { set = ["extra", "map"], value = [["a", "b"]] },
  { remove = ["suggest", "x/y"] },
]
"#;

    #[test]
    fn dotted_and_mixed_case_keys_survive() {
        let config = FarmConfig::from_toml(SAMPLE).unwrap();
        let upstream = &config.upstreams[0];
        let pins = &upstream.pinned_versions["1.7.0-RC1"];
        assert_eq!(pins["Magento/Module-Page-Builder"], "2.2.1");
        assert_eq!(upstream.vendor, "magento");
        assert_eq!(upstream.transforms[0].actions.len(), 3);
        assert!(matches!(&upstream.transforms[0].actions[1], Action::Set { value, .. } if value.is_array()));
        assert!(matches!(&upstream.transforms[0].actions[2], Action::Remove { .. }));
    }

    #[test]
    fn object_values_keep_their_key_order() {
        let keys: Vec<String> = (0..40).map(|i| format!("k{:02}-{}", 40 - i, i * 7 % 13)).collect();
        let table: String = keys.iter().map(|k| format!("\"{k}\" = 1")).collect::<Vec<_>>().join(", ");
        let text = SAMPLE.replace(r#"value = [["a", "b"]]"#, &format!("value = {{ {table} }}"));
        let config = FarmConfig::from_toml(&text).unwrap();
        let Action::Set { value, .. } = &config.upstreams[0].transforms[0].actions[1] else { panic!("set") };
        let loaded: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(loaded, keys.iter().collect::<Vec<_>>());
    }

    #[test]
    fn upstream_base_replaces_the_prefix() {
        let mut config = FarmConfig::from_toml(SAMPLE).unwrap();
        config.build.upstream_base = Some("/srv/git/".to_owned());
        assert_eq!(config.resolve_url(&config.upstreams[0].url), "/srv/git/mirror-magento2-page-builder.git");
        assert_eq!(config.resolve_url("https://gitlab.example/x.git"), "https://gitlab.example/x.git");
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(redact_url("https://user:tok@git.example/a/b.git"), "https://***@git.example/a/b.git");
        assert_eq!(redact_url("https://git.example/a@b.git"), "https://git.example/a@b.git");
        assert_eq!(redact_url("/srv/git/a.git"), "/srv/git/a.git");
        assert_eq!(redact_url("amqp://farm:ab/cd+ef==@rabbitmq:5672/%2f"), "amqp://***@rabbitmq:5672/%2f");
        assert_eq!(redact_url("amqps://farm:p@ss@mq.example/vhost"), "amqps://***@mq.example/vhost");
        assert_eq!(
            redact_url("https://gitlab.example/a/b.git?private_token=glpat-123&x=1"),
            "https://gitlab.example/a/b.git?private_token=***&x=***"
        );
        assert_eq!(redact_url("https://h/r.git?access_token=abc#frag"), "https://h/r.git?access_token=***#***");
        assert_eq!(redact_url("https://u:p@h/r.git?tok"), "https://***@h/r.git?***");
        assert_eq!(redact_url("https://h/a@b?x=@y"), "https://h/a@b?x=***");
    }

    #[test]
    fn base_url_needs_a_host_and_no_secrets() {
        let with = |base: &str| FarmConfig::from_toml(&format!("[repository]\nbase_url = \"{base}\"\n"));
        assert!(with("https://repo.example.org/").is_ok());
        assert!(with("http://127.0.0.1:8080/repo/").is_ok());
        for bad in
            ["http://", "http:///", "ftp://h/", "repo.example.org", "https://u:p@h/", "https://h/?x=1", "https://h/#f"]
        {
            assert!(matches!(with(bad), Err(ConfigError::Invalid(_))), "{bad} accepted");
        }
        let message = with("https://u:secret@h/").unwrap_err().to_string();
        assert!(!message.contains("secret"), "{message}");
    }

    #[test]
    fn upstream_keys_are_plain_words() {
        let with = |key: &str| {
            FarmConfig::from_toml(&format!(
                "[repository]\nbase_url = \"https://x/\"\n[[upstreams]]\nkey = {key:?}\nurl = \"/a\"\n"
            ))
        };
        assert!(with("magento2").is_ok());
        assert!(with("security-package.v2_x").is_ok());
        for bad in ["", "a\"} 1\nfake_metric{x=\"", "a b", "-a", "ä", &"a".repeat(65)] {
            assert!(matches!(with(bad), Err(ConfigError::Invalid(_))), "{bad:?} accepted");
        }
    }

    #[test]
    fn invalid_from_tag_is_rejected() {
        let text = SAMPLE.replace("from_tag = \"1.7.0\"", "from_tag = \"latest\"");
        assert!(matches!(FarmConfig::from_toml(&text), Err(ConfigError::Invalid(_))));
    }

    #[test]
    fn example_configs_parse() {
        let load = |name: &str| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples").join(name);
            FarmConfig::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let mirror = load("mage-os-mirror.toml");
        assert_eq!((mirror.upstreams.len(), mirror.target.versions), (26, VersionRule::Tagged));
        let upstream_nightly = load("mage-os-upstream-nightly.toml");
        assert_eq!(upstream_nightly.target.versions, VersionRule::Nightly);
        assert!(upstream_nightly.upstreams.iter().all(|u| u.vendor == "magento" && u.git_ref.is_some()));
        let nightly = load("mage-os-nightly.toml");
        assert!(nightly.upstreams.iter().all(|u| u.vendor == "mage-os"));
        let release = load("mage-os-release.toml");
        assert_eq!(release.target.versions, VersionRule::Release);
        let flavours: Vec<&str> = release.target.flavours.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(flavours, ["minimal", "headless", "headful"]);
    }

    #[test]
    fn target_rules_are_checked() {
        let base = "[repository]\nbase_url = \"https://x/\"\n";
        let nightly = format!("{base}[target]\nversions = \"nightly\"\n[[upstreams]]\nkey = \"a\"\nurl = \"/a\"\n");
        let error = FarmConfig::from_toml(&nightly).unwrap_err().to_string();
        assert!(error.contains("needs `ref`"), "{error}");
        let dated = format!("{base}[target]\ndate = \"2026-11-21\"\n");
        assert!(FarmConfig::from_toml(&dated).unwrap_err().to_string().contains("YYYYMMDD"));
        let release = format!("{base}[target]\nversions = \"release\"\nrelease = \"3\"\n");
        assert!(FarmConfig::from_toml(&release).unwrap_err().to_string().contains("target.release"));
        let vendor = format!("{base}[target]\nvendor = \"mage-os\"\n[[upstreams]]\nkey = \"a\"\nurl = \"/a\"\n");
        assert_eq!(FarmConfig::from_toml(&vendor).unwrap().upstreams[0].vendor, "mage-os");
        assert!(name_matches("mage-os/module-*graph-ql*", "mage-os/module-catalog-graph-ql"));
        assert!(name_matches("*", "php") && name_matches("php", "php") && !name_matches("php", "php-x"));
        assert!(!name_matches("mage-os/theme-*", "mage-os/module-theme"));
    }

    #[test]
    fn webhook_names_default_to_the_url_path() {
        let upstream = |url: &str, names: &str| -> UpstreamConfig {
            toml::from_str(&format!("key = \"k\"\nurl = \"{url}\"\n{names}")).unwrap()
        };
        assert_eq!(
            upstream("https://github.com/mage-os/mirror-magento2.git", "").hook_names(),
            ["mage-os/mirror-magento2"]
        );
        assert_eq!(upstream("git@github.com:Mage-OS/Inventory.git", "").hook_names(), ["mage-os/inventory"]);
        assert_eq!(upstream("/srv/git/acme/upstream.git/", "").hook_names(), ["acme/upstream"]);
        assert_eq!(upstream("/x", "webhook_names = [\"Group/Sub/Repo\"]").hook_names(), ["group/sub/repo"]);
        let secret = Secret::from("s3cr3t");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }

    #[test]
    fn serve_limits_default_and_are_checked() {
        let base = "[repository]\nbase_url = \"https://x/\"\n[serve]\n";
        let serve = FarmConfig::from_toml(base).unwrap().serve;
        assert_eq!(serve.header_timeout, Duration::from_secs(10));
        assert_eq!(serve.body_timeout, Duration::from_secs(30));
        assert_eq!(serve.idle_timeout, Duration::from_secs(60));
        assert_eq!((serve.max_connections, serve.max_body_memory), (256, 64 << 20));
        let set = FarmConfig::from_toml(&format!("{base}header_timeout = \"2s\"\nmax_connections = 16\n")).unwrap();
        assert_eq!((set.serve.header_timeout, set.serve.max_connections), (Duration::from_secs(2), 16));
        for (line, expected) in [
            ("idle_timeout = \"0s\"", "serve.idle_timeout must be longer than 0s"),
            ("max_connections = 0", "serve.max_connections must be 1 to 65536"),
            ("max_body_memory = 1024", "serve.max_body (5242880) is larger than max_body_memory (1024)"),
            ("gitlab_token = \"short\"", "serve.gitlab_token is shorter than 8 characters"),
            ("listen = \"localhost\"", "serve.listen must be an address"),
        ] {
            let error = FarmConfig::from_toml(&format!("{base}{line}\n")).unwrap_err().to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
