//! The explicit inputs of nightly and release builds (date, upstream versions, Packagist list,
//! base dependencies, history folder), read once per build into a [`TargetState`].
//!
//! Everything the reference generator looks up live is read here from configuration or files and
//! recorded in the build report ([`Inputs`]), so the same inputs always give the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use shared::config::{FarmConfig, VersionRule};
use shared::distribution::{self, Release};

/// An input file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// Not readable.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Not in an understood format.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The explicit inputs of a build, as recorded in the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inputs {
    /// `tagged`, `nightly` or `release`.
    pub versions: String,
    /// Nightly date (`YYYYMMDD`) and where it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    /// The new release's version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// Upstream versions file, its sha256 and how many versions it gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upstream_versions: Option<FileInput>,
    /// Vendor packages treated as on Packagist.
    pub on_packagist: Vec<String>,
    /// The base package's dependencies: a file, or `template (not analysed)`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_require: Option<String>,
    /// History and template folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resources: Option<String>,
    /// Nightly: per upstream, the tag (or branch) its versions were taken from.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub nightly_bases: BTreeMap<String, String>,
    /// Dependencies-template URLs resolved to the latest tag of a configured upstream.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub resolved_templates: BTreeMap<String, String>,
}

/// A file input.
#[derive(Debug, Clone, Serialize)]
pub struct FileInput {
    /// Its path.
    pub path: String,
    /// sha256 of its bytes.
    pub sha256: String,
    /// Entries read.
    pub entries: usize,
}

/// What a build of this target knows before planning packages. Shared by the upstreams'
/// planning tasks; the one thing they add, resolved dependency templates, goes behind a lock.
#[derive(Debug, Default)]
pub struct TargetState {
    /// Version rule.
    pub rule: VersionRule,
    /// Nightly date.
    pub date: String,
    /// Nightly: package name to nightly version, over all upstreams.
    pub nightly: BTreeMap<String, String>,
    /// Nightly: names whose version cannot have a nightly form, with the reason.
    pub nightly_failed: BTreeMap<String, String>,
    /// Nightly: the version of packages the map does not know (`0.0.1.1-a<date>`).
    pub fallback: Option<String>,
    /// The new release.
    pub release: Option<String>,
    /// `{"*": release}`.
    pub release_pins: BTreeMap<String, String>,
    /// Upstream name to version (replace entries).
    pub replace_versions: BTreeMap<String, String>,
    /// Vendor packages on Packagist.
    pub on_packagist: BTreeSet<String>,
    /// The base package's require, if given.
    pub base_require: Option<Map<String, Value>>,
    /// History and template folder.
    pub resources: Option<PathBuf>,
    /// Latest tag per configured upstream URL (dependencies templates).
    pub latest_tags: HashMap<String, String>,
    /// The record for the report (without the resolved templates, see [`TargetState::inputs`]).
    pub inputs: Inputs,
    /// Dependency-template URLs resolved while planning.
    resolved_templates: std::sync::Mutex<BTreeMap<String, String>>,
}

impl TargetState {
    /// Reads the target's inputs. `started` is the build's start; a nightly without a configured
    /// date takes its UTC date.
    pub fn load(config: &FarmConfig, started: std::time::SystemTime) -> Result<TargetState, InputError> {
        let target = &config.target;
        let mut state = TargetState {
            rule: target.versions,
            release: target.release.clone(),
            resources: target.resources.clone(),
            on_packagist: target.on_packagist.iter().cloned().collect(),
            ..TargetState::default()
        };
        state.inputs.versions = format!("{:?}", target.versions).to_lowercase();
        state.inputs.on_packagist = target.on_packagist.clone();
        state.inputs.resources = target.resources.as_ref().map(|p| p.display().to_string());
        if target.versions == VersionRule::Nightly {
            state.date = target
                .date
                .clone()
                .unwrap_or_else(|| humantime::format_rfc3339_seconds(started).to_string()[..10].replace('-', ""));
            let source = if target.date.is_some() { "configured" } else { "build start, UTC" };
            state.inputs.date = Some(format!("{} ({source})", state.date));
            state.fallback = distribution::nightly_version("0.0.1", &state.date).ok();
        }
        if let Some(release) = &target.release {
            state.release_pins.insert("*".to_owned(), release.clone());
            state.inputs.release = Some(release.clone());
        }
        if let Some(path) = &target.upstream_versions {
            let bytes = read(path)?;
            state.replace_versions =
                parse_versions(&bytes).map_err(|reason| InputError::Format { path: path.clone(), reason })?;
            // They become `replace` constraints and alias versions: one Composer cannot parse
            // would break the metadata of every package that names it.
            for (name, version) in &state.replace_versions {
                if let Err(error) = shared::version::composer_normalize(version) {
                    return Err(InputError::Format { path: path.clone(), reason: format!("{name}: {error}") });
                }
            }
            state.inputs.upstream_versions = Some(FileInput {
                path: path.display().to_string(),
                sha256: sha256(&bytes),
                entries: state.replace_versions.len(),
            });
        }
        let templated = config
            .upstreams
            .iter()
            .flat_map(|u| u.single_packages.iter().chain(&u.package_dirs))
            .any(|d| d.composer_template.is_some());
        if let Some(path) = &target.base_require {
            let bytes = read(path)?;
            let value: Value = shared::json::parse(&String::from_utf8_lossy(&bytes))
                .map_err(|e| InputError::Format { path: path.clone(), reason: e.to_string() })?;
            let Value::Object(map) = value else {
                return Err(InputError::Format { path: path.clone(), reason: "not a JSON object".to_owned() });
            };
            state.inputs.base_require = Some(format!("{} (sha256 {})", path.display(), sha256(&bytes)));
            state.base_require = Some(map);
        } else if templated && target.versions != VersionRule::Tagged {
            state.inputs.base_require =
                Some("template (not analysed: set target.base_require to the computed dependencies)".to_owned());
        }
        Ok(state)
    }

    /// Adds an upstream's nightly version entries (call in configuration order; later wins).
    pub fn add_nightly_entries(&mut self, upstream: &str, base: &str, entries: Vec<(String, String)>) {
        self.inputs.nightly_bases.insert(upstream.to_owned(), base.to_owned());
        for (name, version) in entries {
            match distribution::nightly_version(&version, &self.date) {
                Ok(nightly) => {
                    self.nightly_failed.remove(&name);
                    self.nightly.insert(name, nightly);
                }
                Err(error) => {
                    self.nightly.remove(&name);
                    self.nightly_failed.insert(name, error.to_string());
                }
            }
        }
    }

    /// Records an upstream's latest tag (dependencies templates name repositories by URL).
    pub fn add_latest_tag(&mut self, url: &str, tag: Option<String>) {
        if let Some(tag) = tag {
            self.latest_tags.insert(normalize_url(url), tag);
        }
    }

    /// The release state for the reference's rules.
    pub fn release_state<'a>(
        &'a self,
        vendor: &'a str,
        git_ref: &'a str,
        dependency_versions: &'a BTreeMap<String, String>,
        composer_repo_url: &'a str,
    ) -> Release<'a> {
        Release {
            vendor,
            version: None,
            fallback_version: None,
            git_ref,
            dependency_versions,
            replace_versions: &self.replace_versions,
            on_packagist: &self.on_packagist,
            composer_repo_url,
        }
    }

    /// `getAdditionalConfiguration`: the history file of `package` at `version`, else the
    /// dependencies template (URLs resolved to the latest tag of the configured upstream with
    /// that URL), else `{require: {}}`.
    pub fn additional_configuration(&self, package: &str, version: &str) -> Result<Map<String, Value>, String> {
        let Some(resources) = &self.resources else {
            return Ok(empty_require());
        };
        let history = resources.join("history").join(package).join(format!("{version}.json"));
        if let Some(map) = read_object(&history)? {
            return Ok(map);
        }
        let template = resources.join("composer-templates").join(package).join("dependencies-template.json");
        let Some(document) = read_object(&template)? else {
            return Ok(empty_require());
        };
        let mut require = Map::new();
        if let Some(Value::Object(dependencies)) = document.get("dependencies") {
            for (name, spec) in dependencies {
                let value = match spec.as_str() {
                    Some(url) if url.starts_with("http") => {
                        let tag = self.latest_tags.get(&normalize_url(url)).cloned().ok_or_else(|| {
                            format!(
                                "{}: {name} names {url}, which is not an upstream of this configuration with tags; write a constraint instead",
                                template.display()
                            )
                        })?;
                        self.resolved_templates
                            .lock()
                            .expect("resolved templates lock")
                            .insert(url.to_owned(), tag.clone());
                        Value::String(tag)
                    }
                    _ => spec.clone(),
                };
                require.insert(name.clone(), value);
            }
        }
        let mut additional = Map::new();
        additional.insert("require".to_owned(), Value::Object(require));
        Ok(additional)
    }

    /// A text file below `resources` (replacement and extra files).
    pub fn resource_text(&self, relative: &str) -> Result<String, String> {
        let Some(resources) = &self.resources else {
            return Err("target.resources is not set".to_owned());
        };
        if relative.split('/').any(|segment| segment == "..") {
            return Err(format!("{relative} leaves the resources folder"));
        }
        let path = resources.join(relative);
        let bytes = std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        String::from_utf8(bytes).map_err(|_| format!("{} is not UTF-8 text", path.display()))
    }

    /// The template text of a template-based package and, at a tag, its history file instead.
    pub fn template_text(&self, template: &str, tag: Option<&str>) -> Result<Option<String>, String> {
        template_text(self.resources.as_deref(), template, tag)
    }

    /// The inputs for the report, with the dependency templates resolved so far.
    pub fn inputs(&self) -> Inputs {
        let mut inputs = self.inputs.clone();
        inputs.resolved_templates = self.resolved_templates.lock().expect("resolved templates lock").clone();
        inputs
    }
}

/// The text of a template below `resources` or, at a tag, of its history file instead
/// (`composer-templates` → `history`, `template.json` → `<tag>.json`); `None` when it does not
/// exist.
pub fn template_text(resources: Option<&Path>, template: &str, tag: Option<&str>) -> Result<Option<String>, String> {
    let Some(resources) = resources else {
        return Err("target.resources is not set".to_owned());
    };
    let path = match tag {
        Some(tag) => {
            let history =
                template.replacen("composer-templates", "history", 1).replace("template.json", &format!("{tag}.json"));
            resources.join(history)
        }
        None => resources.join(template),
    };
    match std::fs::read(&path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

fn empty_require() -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("require".to_owned(), Value::Object(Map::new()));
    map
}

fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|source| InputError::Read { path: path.to_owned(), source })
}

fn read_object(path: &Path) -> Result<Option<Map<String, Value>>, String> {
    match std::fs::read(path) {
        Ok(bytes) => match shared::json::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(format!("{} is not a JSON object", path.display())),
            Err(error) => Err(format!("{}: {error}", path.display())),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("cannot read {}: {error}", path.display())),
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

fn normalize_url(url: &str) -> String {
    url.trim_end_matches('/').trim_end_matches(".git").to_lowercase()
}

/// Name to version from a `composer.lock`, `composer show --format=json` output or a flat object.
pub fn parse_versions(bytes: &[u8]) -> Result<BTreeMap<String, String>, String> {
    let value: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let mut versions = BTreeMap::new();
    let lists: Vec<&Value> = ["packages", "packages-dev", "installed"].iter().filter_map(|k| value.get(*k)).collect();
    if lists.iter().any(|l| l.is_array()) {
        for list in lists {
            for package in list.as_array().into_iter().flatten() {
                if let (Some(name), Some(version)) = (package["name"].as_str(), package["version"].as_str()) {
                    versions.insert(name.to_owned(), version.to_owned());
                }
            }
        }
    } else if let Value::Object(map) = &value {
        for (name, version) in map {
            let version = version.as_str().ok_or_else(|| format!("the version of {name} is not a string"))?;
            versions.insert(name.clone(), version.to_owned());
        }
    } else {
        return Err("expected a composer.lock, `composer show --format=json` output or an object".to_owned());
    }
    Ok(versions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_versions_in_three_formats() {
        let lock = br#"{"packages":[{"name":"magento/framework","version":"103.0.7"}],"packages-dev":[{"name":"a/b","version":"1.0"}]}"#;
        let parsed = parse_versions(lock).unwrap();
        assert_eq!(parsed["magento/framework"], "103.0.7");
        assert_eq!(parsed["a/b"], "1.0");
        let show = br#"{"installed":[{"name":"magento/module-catalog","version":"104.0.7-p3","description":"x"}]}"#;
        assert_eq!(parse_versions(show).unwrap()["magento/module-catalog"], "104.0.7-p3");
        assert_eq!(parse_versions(br#"{"magento/a":"1"}"#).unwrap()["magento/a"], "1");
        assert!(parse_versions(br#"{"magento/a":1}"#).is_err());
        assert!(parse_versions(b"[1]").is_err());
    }

    #[test]
    fn the_nightly_date_is_the_build_start_in_utc_unless_configured() {
        let text = "[repository]\nbase_url = \"https://x/\"\n[target]\nversions = \"nightly\"\n";
        let config = FarmConfig::from_toml(text).unwrap();
        // 2026-11-21T23:30:00Z: still the 21st in UTC (the 22nd east of Greenwich).
        let started = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_795_303_800);
        let state = TargetState::load(&config, started).unwrap();
        assert_eq!(state.date, "20261121");
        assert_eq!(state.fallback.as_deref(), Some("0.0.1.1-a20261121"));
        assert_eq!(state.inputs.date.as_deref(), Some("20261121 (build start, UTC)"));
        let config = FarmConfig::from_toml(&format!("{text}date = \"20250101\"\n")).unwrap();
        assert_eq!(TargetState::load(&config, started).unwrap().date, "20250101");
    }

    #[test]
    fn dependency_templates_resolve_urls_to_a_configured_upstreams_latest_tag() {
        let resources = tempfile::tempdir().unwrap();
        let template = resources.path().join("composer-templates/magento/product-community-edition");
        std::fs::create_dir_all(&template).unwrap();
        std::fs::write(
            template.join("dependencies-template.json"),
            r#"{"dependencies":{"magento/security-package":"https://github.com/mage-os/mirror-security-package.git","magento/x":"^1.0"}}"#,
        )
        .unwrap();
        let mut state = TargetState { resources: Some(resources.path().to_owned()), ..TargetState::default() };
        state.add_latest_tag("https://github.com/mage-os/mirror-security-package", Some("1.1.6".to_owned()));
        let additional = state.additional_configuration("magento/product-community-edition", "2.4.7").unwrap();
        assert_eq!(
            shared::json::stringify_compact(&additional["require"]),
            r#"{"magento/security-package":"1.1.6","magento/x":"^1.0"}"#
        );
        assert_eq!(
            state.inputs().resolved_templates["https://github.com/mage-os/mirror-security-package.git"],
            "1.1.6"
        );
        let unknown = TargetState { resources: Some(resources.path().to_owned()), ..TargetState::default() };
        let error = unknown.additional_configuration("magento/product-community-edition", "2.4.7").unwrap_err();
        assert!(error.contains("not an upstream of this configuration"), "{error}");
    }
}
