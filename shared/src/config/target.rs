//! `[target]`: what kind of repository this is (the version rule, the vendor, the explicit inputs
//! of nightly and release builds, the flavours), and its checks against the upstreams.

use std::path::PathBuf;

use serde::Deserialize;

use super::de::default_true;
use super::error::ConfigError;
use super::upstream::{MetapackageKind, UpstreamConfig};

/// The vendor the reference generator uses when a repository sets none.
pub const DEFAULT_VENDOR: &str = "magento";

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

    /// Whether the rules leave `name` (a package of composer type `kind`, if known) out of the
    /// flavour's product (before `closed` adds what requires it).
    pub fn rules_out(&self, name: &str, kind: Option<&str>) -> bool {
        let matches = |patterns: &[String]| patterns.iter().any(|p| name_matches(p, name));
        !matches(&self.keep) && ((!self.include.is_empty() && !matches(&self.include)) || self.excludes(name, kind))
    }

    /// Whether `exclude` or `exclude_types` name the package (and `keep` does not): what the
    /// flavour means to leave out, not only what it does not list.
    pub fn excludes(&self, name: &str, kind: Option<&str>) -> bool {
        let matches = |patterns: &[String]| patterns.iter().any(|p| name_matches(p, name));
        !matches(&self.keep)
            && (matches(&self.exclude) || kind.is_some_and(|t| self.exclude_types.iter().any(|e| e == t)))
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

impl TargetConfig {
    /// Checks the `[target]` section against the upstreams.
    pub(super) fn validate(&self, upstreams: &[UpstreamConfig]) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(message));
        let target = self;
        if let Some(date) = &target.date
            && !(date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
        {
            return invalid(format!("target.date must be YYYYMMDD, got '{date}'"));
        }
        if let Some(release) = &target.release {
            if target.versions != VersionRule::Release {
                return invalid("target.release needs target.versions = \"release\"".to_owned());
            }
            crate::release::validate_release_version("target.release", release).map_err(ConfigError::Invalid)?;
        }
        let needs_ref = match target.versions {
            VersionRule::Tagged => false,
            VersionRule::Nightly => true,
            VersionRule::Release => target.release.is_some(),
        };
        for upstream in upstreams {
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
            && !upstreams.iter().any(|u| u.metapackages.iter().any(|m| m.kind == MetapackageKind::Product))
        {
            return invalid("flavours need an upstream with a product metapackage (kind = \"product\")".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FarmConfig;

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
}
