//! `[health]`: after every build, whether the repository about to be published installs: the
//! native consistency check, the real-client probes and the release gate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de::{default_true, duration};
use super::error::ConfigError;

/// Composer stabilities, as `minimum-stability` spells them.
pub const STABILITIES: [&str; 5] = ["stable", "RC", "beta", "alpha", "dev"];

/// What a broken result does to the build that found it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Publish anyway and report (nightlies, which may be broken for a while).
    #[default]
    Report,
    /// Check the candidate metadata before `packages.json` is published; when it is broken,
    /// publish nothing new (releases).
    Block,
}

/// The `[health]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthConfig {
    /// Run the native consistency check after every build.
    #[serde(default = "default_true")]
    pub check: bool,
    /// The least stable version a requirement may be satisfied by in the native check (a
    /// `project` package is checked with its own `minimum-stability` instead). Default `dev`:
    /// any published version.
    #[serde(default = "default_minimum_stability")]
    pub minimum_stability: String,
    /// Names (`*` matches any text) that come from other repositories (Packagist): a
    /// requirement on one is not checked. Names of vendors this repository does not publish are
    /// never checked.
    #[serde(default)]
    pub external: Vec<String>,
    /// `report` (default) or `block`.
    #[serde(default)]
    pub gate: Gate,
    /// The Composer binary the probes run (a name on `PATH` or a path).
    #[serde(default = "default_composer")]
    pub composer: PathBuf,
    /// Real-client probes, run after every build.
    #[serde(default)]
    pub probes: Vec<ProbeConfig>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        HealthConfig {
            check: true,
            minimum_stability: default_minimum_stability(),
            external: Vec::new(),
            gate: Gate::Report,
            composer: default_composer(),
            probes: Vec::new(),
        }
    }
}

/// One `[[health.probes]]`: a requirement set the real Composer client must resolve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbeConfig {
    /// Shown on the status page and as the metric's `probe` label.
    pub name: String,
    /// Package name → constraint, as a project's `require`.
    pub require: BTreeMap<String, String>,
    /// The probe project's `minimum-stability`.
    #[serde(default = "default_probe_stability")]
    pub minimum_stability: String,
    /// Download every dist and check its sha1 (`composer update`), not only resolve
    /// (`composer update --no-install`).
    #[serde(default)]
    pub install: bool,
    /// Further Composer repositories for third-party packages (URLs; `packagist.org` keeps
    /// Packagist on). By default only this repository is used.
    #[serde(default)]
    pub repositories: Vec<String>,
    /// Check the PHP version and extensions of the machine running the probe (off by default:
    /// the farm's machine is not a shop's).
    #[serde(default)]
    pub platform: bool,
    /// Longest time the probe may take; it then fails.
    #[serde(default = "default_probe_timeout", with = "duration")]
    pub timeout: Duration,
}

fn default_minimum_stability() -> String {
    "dev".to_owned()
}

fn default_probe_stability() -> String {
    "stable".to_owned()
}

fn default_composer() -> PathBuf {
    PathBuf::from("composer")
}

fn default_probe_timeout() -> Duration {
    Duration::from_secs(600)
}

impl HealthConfig {
    /// Checks stabilities, probe names and timeouts.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| ConfigError::Invalid(format!("health: {message}"));
        check_stability(&self.minimum_stability).map_err(invalid)?;
        let mut names = std::collections::HashSet::new();
        for probe in &self.probes {
            let label = &probe.name;
            if label.is_empty() || !label.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
                return Err(invalid(format!("probe name '{label}' must be letters, digits, '-', '_' or '.'")));
            }
            if !names.insert(label.as_str()) {
                return Err(invalid(format!("two probes are named '{label}'")));
            }
            if probe.require.is_empty() {
                return Err(invalid(format!("probe '{label}' requires nothing")));
            }
            check_stability(&probe.minimum_stability).map_err(|m| invalid(format!("probe '{label}': {m}")))?;
            if probe.timeout.is_zero() {
                return Err(invalid(format!("probe '{label}': timeout must be above 0")));
            }
        }
        Ok(())
    }
}

fn check_stability(word: &str) -> Result<(), String> {
    if STABILITIES.iter().any(|s| s.eq_ignore_ascii_case(word)) {
        Ok(())
    } else {
        Err(format!("minimum_stability '{word}' is not one of {}", STABILITIES.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use crate::config::FarmConfig;

    const BASE: &str = "[repository]\nbase_url = \"https://repo.example/\"\n";

    #[test]
    fn defaults_and_probes() {
        let config = FarmConfig::from_toml(BASE).unwrap();
        assert!(config.health.check);
        assert_eq!(config.health.gate, super::Gate::Report);
        assert!(config.health.probes.is_empty());
        let text = format!(
            "{BASE}[health]\ngate = \"block\"\n[[health.probes]]\nname = \"product\"\nminimum_stability = \"alpha\"\n\
             require = {{ \"mage-os/product-community-edition\" = \"*\" }}\ntimeout = \"2m\"\n"
        );
        let config = FarmConfig::from_toml(&text).unwrap();
        assert_eq!(config.health.gate, super::Gate::Block);
        let probe = &config.health.probes[0];
        assert_eq!(probe.require["mage-os/product-community-edition"], "*");
        assert_eq!(probe.timeout, std::time::Duration::from_secs(120));
        assert!(!probe.install);
    }

    #[test]
    fn bad_health_values_are_refused() {
        for (section, expected) in [
            ("[health]\nminimum_stability = \"nightly\"\n", "is not one of"),
            ("[health]\ngate = \"maybe\"\n", "maybe"),
            ("[[health.probes]]\nname = \"a b\"\nrequire = { \"a/b\" = \"*\" }\n", "must be letters"),
            ("[[health.probes]]\nname = \"p\"\nrequire = {}\n", "requires nothing"),
            (
                "[[health.probes]]\nname = \"p\"\nrequire = { \"a/b\" = \"*\" }\n[[health.probes]]\nname = \"p\"\nrequire = { \"a/b\" = \"*\" }\n",
                "two probes",
            ),
        ] {
            let error = FarmConfig::from_toml(&format!("{BASE}{section}")).unwrap_err().to_string();
            assert!(error.contains(expected), "{section}: {error}");
        }
    }
}
