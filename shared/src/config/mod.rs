//! Farm configuration: a TOML file plus `FARM_*` environment overrides, loaded with the `config` crate.
//!
//! Everything that decides what is built is data here: the published repository, the upstream git
//! repositories and, per upstream, the package rules of the reference generator (package folders,
//! single packages, metapackage folders, excludes, empty directories, the first tag, per-tag version
//! pins and composer.json adjustments). The reference's JavaScript transform functions become
//! [`Transform`] entries: a condition on the package version and a list of set/remove actions.
//!
//! One module per section, each with its checks; this one loads the whole file and checks it,
//! section by section.

use std::path::{Path, PathBuf};

use serde::Deserialize;

mod build;
mod de;
mod error;
mod health;
mod queue;
mod redact;
mod repository;
mod serve;
mod storage;
mod target;
mod transform;
mod upstream;
mod worker;

pub use build::{BuildConfig, DEFAULT_UPSTREAM_PREFIX};
pub use error::ConfigError;
pub use health::{Gate, HealthConfig, ProbeConfig, STABILITIES};
pub use queue::QueueConfig;
pub use redact::redact_url;
pub use repository::RepositoryConfig;
pub use serve::{MAX_CONNECTIONS, Secret, ServeConfig};
pub use storage::{MIN_PART_SIZE, StorageConfig, StorageKind};
pub use target::{DEFAULT_VENDOR, Flavour, TargetConfig, VersionRule, name_matches};
pub use transform::{Action, Condition, Transform};
pub use upstream::{
    ConditionalExclude, ExtraTag, FileReplacement, MetapackageDefinition, MetapackageFile, MetapackageKind,
    PackageDefinition, RESERVED_UPSTREAM_KEYS, UpstreamConfig,
};
pub use worker::{WorkerConfig, WorkerRepositoryConfig};

use build::default_cache_dir;
use repository::check_base_url;

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
    /// After every build: is what is published installable (checks, probes, gate).
    #[serde(default)]
    pub health: HealthConfig,
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

    /// Checks values (also after command-line overrides).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.target.validate(&self.upstreams)?;
        check_base_url(&self.repository.base_url)?;
        if let Some(queue) = &self.queue {
            queue.validate()?;
        }
        self.storage.validate()?;
        self.serve.validate()?;
        self.health.validate()?;
        upstream::validate(&self.upstreams)
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
}
