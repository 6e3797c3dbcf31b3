//! Distribution targets: the explicit inputs of nightly and release builds (date, upstream
//! versions, Packagist list, base dependencies, history folder), the nightly version map, the
//! community-edition metapackages, flavours and alias metapackages (reference spec 3.8–3.10,
//! 5.3–5.5).
//!
//! Everything the reference generator looks up live is read here from configuration or files and
//! recorded in the build report ([`Inputs`]), so the same inputs always give the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::{Map, Value};
use shared::config::{FarmConfig, Flavour, MetapackageKind, UpstreamConfig, VersionRule};
use shared::distribution::{self, Release};
use shared::git::{self, FileLookup, GitError, TagRef};

use crate::plan::{Candidate, Precedence};

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

static VERSION_LIKE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^v?([0-9]+\.){0,3}[0-9]+").expect("valid regex"));

/// The nightly version map's entries of one upstream (spec 5.3 step 1): the latest tag (or the
/// `ref` branch when there is none) and, read at it, every package's name and version. `latest`
/// is the latest of the repository's tags.
pub fn nightly_entries(
    upstream: &UpstreamConfig,
    repo: &Repository,
    latest: Option<&TagRef>,
    resources: Option<&Path>,
    flavours: &[Flavour],
) -> Result<(String, Vec<(String, String)>), GitError> {
    let (base, commit) = match latest {
        Some(tag) => (tag.name.clone(), tag.commit),
        None => {
            let branch = upstream.git_ref.clone().unwrap_or_else(|| "HEAD".to_owned());
            let reference = if branch == "HEAD" { "HEAD".to_owned() } else { format!("refs/heads/{branch}") };
            match repo.refname_to_id(&reference) {
                Ok(commit) => (branch, commit),
                Err(_) => return Ok((branch, Vec::new())),
            }
        }
    };
    let root = git::commit_tree(repo, commit)?;
    let mut entries = Vec::new();
    let rename = |name: String| distribution::to_vendor(&name, &upstream.vendor).unwrap_or(name);
    let read_identity = |dir: &str| -> Result<Option<(String, Option<String>)>, GitError> {
        let Some(tree) = git::subtree(repo, &root, dir)? else { return Ok(None) };
        let FileLookup::Found(bytes) = git::read_file(repo, &tree, "composer.json")? else { return Ok(None) };
        Ok(identity(&String::from_utf8_lossy(&bytes)))
    };
    let module_version = |version: Option<String>| -> String {
        let version = version.unwrap_or_else(|| base.clone());
        if VERSION_LIKE.is_match(&version) { version } else { String::new() }
    };
    for definition in &upstream.package_dirs {
        let Some(parent) = git::subtree(repo, &root, &definition.dir)? else { continue };
        for (name, _) in git::subfolders(&parent) {
            let folder = if definition.dir.is_empty() { name } else { format!("{}/{name}", definition.dir) };
            if definition.excludes.iter().any(|e| folder == e.trim_end_matches('/') || folder.starts_with(e.as_str())) {
                continue;
            }
            if let Some((name, version)) = read_identity(&folder)? {
                entries.push((rename(name), module_version(version)));
            }
        }
    }
    for definition in &upstream.single_packages {
        let found = match &definition.composer_template {
            Some(template) => template_text(resources, template, None).ok().flatten().and_then(|text| identity(&text)),
            None => read_identity(&definition.dir)?,
        };
        if let Some((name, version)) = found {
            entries.push((rename(name), module_version(version)));
        }
    }
    for definition in &upstream.metapackage_dirs {
        if let Some((name, version)) = read_identity(&definition.dir)? {
            entries.push((rename(name), version.unwrap_or_else(|| base.clone())));
        }
    }
    for meta in &upstream.metapackages {
        entries.push((format!("{}/{}", upstream.vendor, meta.name), base.clone()));
        // Flavours are made with the product: they get its version.
        if meta.kind == MetapackageKind::Product {
            for flavour in flavours {
                entries.push((format!("{}/{}", upstream.vendor, flavour.product_name()), base.clone()));
                if flavour.project {
                    entries.push((format!("{}/{}", upstream.vendor, flavour.project_name()), base.clone()));
                }
            }
        }
    }
    Ok((base, entries))
}

/// Name and (truthy) version of a composer.json text.
fn identity(text: &str) -> Option<(String, Option<String>)> {
    let Ok(Value::Object(config)) = shared::json::parse(text) else { return None };
    let name = config.get("name")?.as_str().filter(|n| !n.is_empty())?.to_owned();
    Some((name, shared::rules::truthy_version(&config)))
}

/// How a community-edition metapackage is made.
pub struct MetaRequest<'a> {
    /// Name without vendor.
    pub name: String,
    /// Project or product.
    pub kind: MetapackageKind,
    /// A flavour's product: filtered later; its description.
    pub flavour: Option<(usize, &'a Flavour)>,
    /// Files added after composer.json at some tags.
    pub extra_files: Vec<shared::config::MetapackageFile>,
}

/// The root composer.json made into a community-edition metapackage at a tag (the mirror and
/// release-history path, `createComposerJsonOnlyPackage`). Returns the config; the archive is
/// named with the tag.
pub fn tagged_metapackage(
    state: &TargetState,
    upstream: &UpstreamConfig,
    request: &MetaRequest<'_>,
    root_config: Map<String, Value>,
    tag: &str,
    pins: &BTreeMap<String, String>,
    composer_repo_url: &str,
) -> Result<(Map<String, Value>, bool), String> {
    let package = format!("{}/{}", upstream.vendor, request.name);
    let additional = state.additional_configuration(&package, tag)?;
    let mut release = state.release_state(&upstream.vendor, tag, pins, composer_repo_url);
    release.fallback_version = Some(tag);
    // History is rebuilt as it was tagged: no replace entries (spec 5.4 step 1).
    release.replace_versions = &shared::rules::NO_VERSIONS;
    let (config, verbatim) = edition_transforms(root_config, &package, &additional, request, &release);
    Ok((config, verbatim))
}

/// The nightly and new-release path (`createMetaPackage`): the root composer.json at the
/// branch head made into `<vendor>/<name>` at the map's (or the release's) version.
pub fn branch_metapackage(
    state: &TargetState,
    upstream: &UpstreamConfig,
    request: &MetaRequest<'_>,
    mut config: Map<String, Value>,
    release: &Release<'_>,
) -> Result<(Map<String, Value>, bool), String> {
    let magento_name = format!("magento/{}", request.name);
    let package = format!("{}/{}", upstream.vendor, request.name);
    let description = config.get("description").cloned().unwrap_or(Value::String(String::new()));
    let license = config.get("license").cloned().unwrap_or(Value::Array(Vec::new()));
    let require = config.get("require").cloned().unwrap_or(Value::Object(Map::new()));
    let version = release
        .version
        .filter(|v| !v.is_empty())
        .or_else(|| release.dependency_versions.get(&magento_name).map(String::as_str).filter(|v| !v.is_empty()))
        .or_else(|| release.dependency_versions.get(&package).map(String::as_str).filter(|v| !v.is_empty()))
        .unwrap_or(release.git_ref)
        .to_owned();
    let kind_type = match request.kind {
        MetapackageKind::Project => "project",
        MetapackageKind::Product => "metapackage",
    };
    config.insert("name".to_owned(), Value::String(magento_name.clone()));
    config.insert("description".to_owned(), description);
    config.insert("type".to_owned(), Value::String(kind_type.to_owned()));
    config.insert("license".to_owned(), license);
    config.insert("require".to_owned(), require);
    config.insert("version".to_owned(), Value::String(version.clone()));
    shared::rules::apply_transforms_to(&mut config, &magento_name, &version, &upstream.vendor, &upstream.transforms)
        .map_err(|e| e.to_string())?;
    let additional = state.additional_configuration(&package, release.git_ref)?;
    let (mut config, verbatim) = edition_transforms(config, &package, &additional, request, release);
    if upstream.vendor != shared::config::DEFAULT_VENDOR {
        distribution::vendor_rename(
            &mut config,
            &upstream.vendor,
            Some(release.dependency_versions),
            release.replace_versions,
        );
        distribution::set_dependency_versions(&mut config, release);
    }
    Ok((config, verbatim))
}

/// The community-edition transforms of spec 3.8 (and the vendor's variants). Returns whether the
/// result is a verbatim history snapshot (flavour filters leave those alone).
fn edition_transforms(
    config: Map<String, Value>,
    package: &str,
    additional: &Map<String, Value>,
    request: &MetaRequest<'_>,
    release: &Release<'_>,
) -> (Map<String, Value>, bool) {
    let verbatim = !release.dependency_versions.contains_key("*") && additional.contains_key("prefer-stable");
    let mage_os = release.vendor != shared::config::DEFAULT_VENDOR;
    let mut config = match request.kind {
        MetapackageKind::Project => {
            let config = distribution::community_project(config, package, additional, release);
            if mage_os { distribution::mage_os_project(config, release) } else { config }
        }
        MetapackageKind::Product => {
            let config = distribution::community_product(config, package, additional, release);
            if mage_os { distribution::mage_os_product(config, release) } else { config }
        }
    };
    if !verbatim
        && let Some((_, flavour)) = request.flavour
        && let Some(description) = &flavour.description
    {
        config.insert("description".to_owned(), Value::String(description.clone()));
    }
    (config, verbatim)
}

/// What flavour filtering dropped, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct FlavourNote {
    /// The product metapackage.
    pub package: String,
    /// Its version.
    pub version: String,
    /// Requirements removed by the rules.
    pub dropped: Vec<String>,
}

/// A planned version's number, type and required names.
type PlannedVersion = (String, Option<String>, BTreeSet<String>);

/// Applies every flavour's rules to its product metapackages (after all upstreams are planned:
/// types and dependencies of every built package are known).
pub fn apply_flavours(candidates: &mut [Candidate], flavours: &[Flavour]) -> Vec<FlavourNote> {
    // Per name, the type and requirements of every planned version.
    let mut graph: HashMap<String, Vec<PlannedVersion>> = HashMap::new();
    for candidate in candidates.iter() {
        let Ok(Value::Object(config)) = shared::json::parse(&candidate.composer_json) else { continue };
        let kind = config.get("type").and_then(Value::as_str).map(str::to_owned);
        let links = match config.get("require") {
            Some(Value::Object(links)) => links.keys().cloned().collect(),
            _ => BTreeSet::new(),
        };
        graph.entry(candidate.package.clone()).or_default().push((candidate.version.clone(), kind, links));
    }
    let mut notes = Vec::new();
    for candidate in candidates.iter_mut() {
        let Some(index) = candidate.flavour else { continue };
        let flavour = &flavours[index];
        // The packages at the flavour's own version (a release: every package), else any version.
        let mut types: HashMap<String, String> = HashMap::new();
        let mut requires: HashMap<String, BTreeSet<String>> = HashMap::new();
        for (name, versions) in &graph {
            let same: Vec<_> = versions.iter().filter(|(v, _, _)| *v == candidate.version).collect();
            let chosen = if same.is_empty() { versions.iter().collect() } else { same };
            for (_, kind, links) in chosen {
                if let Some(kind) = kind {
                    types.insert(name.clone(), kind.clone());
                }
                requires.entry(name.clone()).or_default().extend(links.iter().cloned());
            }
        }
        let Ok(Value::Object(mut config)) = shared::json::parse(&candidate.composer_json) else { continue };
        let Some(Value::Object(require)) = config.get("require").cloned() else { continue };
        let matches = |patterns: &[String], name: &str| patterns.iter().any(|p| shared::config::name_matches(p, name));
        let mut dropped: HashSet<String> = HashSet::new();
        let ruled_out = |name: &str| {
            !matches(&flavour.keep, name)
                && ((!flavour.include.is_empty() && !matches(&flavour.include, name))
                    || matches(&flavour.exclude, name)
                    || types.get(name).is_some_and(|t| flavour.exclude_types.contains(t)))
        };
        for name in types.keys().chain(require.keys()) {
            if ruled_out(name) {
                dropped.insert(name.clone());
            }
        }
        if flavour.closed {
            loop {
                let more: Vec<String> = requires
                    .iter()
                    .filter(|(name, links)| {
                        !dropped.contains(*name)
                            && !matches(&flavour.keep, name)
                            && links.iter().any(|l| dropped.contains(l))
                    })
                    .map(|(name, _)| name.clone())
                    .collect();
                if more.is_empty() {
                    break;
                }
                dropped.extend(more);
            }
        }
        let mut kept = Map::new();
        let mut removed = Vec::new();
        for (name, value) in require {
            if dropped.contains(&name) {
                removed.push(name);
            } else {
                kept.insert(name, value);
            }
        }
        config.insert("require".to_owned(), Value::Object(kept));
        candidate.composer_json = shared::json::stringify_pretty(&Value::Object(config));
        notes.push(FlavourNote {
            package: candidate.package.clone(),
            version: candidate.version.clone(),
            dropped: removed,
        });
    }
    notes
}

/// Alias metapackages (spec 3.10): for every `magento/*` a built vendor package replaces, a
/// `magento/*` metapackage requiring the vendor package, unless that name@version is built.
pub fn alias_candidates(winners: &[Candidate], vendor: &str, published: &dyn Fn(&str) -> bool) -> Vec<Candidate> {
    let prefix = format!("{vendor}/");
    let mut packages = Vec::new();
    for candidate in winners.iter().filter(|c| c.package.starts_with(&prefix)) {
        let Ok(Value::Object(config)) = shared::json::parse(&candidate.composer_json) else { continue };
        let replace = match config.get("replace") {
            Some(Value::Object(replace)) => replace.clone(),
            _ => continue,
        };
        packages.push((candidate.package.clone(), candidate.version.clone(), replace));
    }
    let built: HashSet<String> = winners.iter().map(Candidate::id).collect();
    distribution::alias_winners(&packages)
        .into_iter()
        .filter(|alias| {
            let id = format!("{}@{}", alias.magento_name, alias.magento_version);
            !built.contains(&id) && !published(&id)
        })
        .map(|alias| Candidate {
            composer_json: distribution::alias_composer_json(
                &alias.magento_name,
                &alias.magento_version,
                &alias.mage_os_name,
                &alias.mage_os_version,
            ),
            key: shared::identity::archive_key(&alias.magento_name, &alias.magento_version, None),
            final_identity: (alias.magento_name.clone(), alias.magento_version.clone()),
            package: alias.magento_name,
            version: alias.magento_version,
            precedence: Precedence::FirstWins,
            upstream: "aliases".to_owned(),
            repo_url: String::new(),
            tag: format!("{}@{}", alias.mage_os_name, alias.mage_os_version),
            branch: false,
            commit: Oid::zero(),
            tree_id: Oid::zero(),
            content: shared::messages::Content::ComposerJsonOnly,
            flavour: None,
            files: Vec::new(),
        })
        .collect()
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

    #[test]
    fn version_like_prefixes() {
        for yes in ["2.4.5", "v2.4", "103.0.5-p1", "1", "1.0-dev"] {
            assert!(VERSION_LIKE.is_match(yes), "{yes}");
        }
        for no in ["dev-main", "", "x1.0"] {
            assert!(!VERSION_LIKE.is_match(no), "{no}");
        }
    }
}
