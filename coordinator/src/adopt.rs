//! `coordinator adopt`: takes over an existing Composer repository (for example the public
//! mirror) by reading its metadata into the build manifest, so the next build skips every
//! name@version it already publishes and the immutability guard knows every published sha1.
//!
//! Nothing published is rebuilt or changed: an archive already in the farm's storage must have
//! exactly the sha1 the metadata gives; a missing one is downloaded from the source, checked
//! against that sha1 and stored under the same key. Adoption is all or nothing: if any listed
//! version cannot be taken over, nothing is recorded (metadata rendered from a partial manifest
//! would drop the versions left out), and a rerun after the fix checks again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::StreamExt as _;
use serde_json::{Map, Value};
use shared::storage::Storage;
use tracing::info;

use crate::build::{Farm, StoredArchive};
use crate::manifest::ManifestEntry;

/// What `adopt` did.
#[derive(Debug, Default)]
pub struct AdoptReport {
    /// Versions listed by the source.
    pub listed: usize,
    /// Versions taken over (checked, or copied and checked).
    pub adopted: usize,
    /// Whether they were recorded in the manifest (only when there is no problem).
    pub recorded: bool,
    /// Of those, archives copied into the farm's storage.
    pub copied: usize,
    /// Versions the manifest already had.
    pub known: usize,
    /// Everything that could not be adopted, one line each.
    pub problems: Vec<String>,
}

impl AdoptReport {
    /// A summary for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "adopt: {} versions listed, {} adopted ({} archives copied), {} already known, {} problems{}",
            self.listed,
            self.adopted,
            self.copied,
            self.known,
            self.problems.len(),
            if self.problems.is_empty() { "" } else { "; nothing recorded (fix them and run adopt again)" }
        );
        for problem in &self.problems {
            let _ = writeln!(out, "  {problem}");
        }
        out
    }
}

/// Where the repository to adopt is read from.
enum Source {
    /// Served over HTTP(S) at this base URL.
    Http { base: String, client: reqwest::Client },
    /// A folder holding `packages.json` (the repository root), published at `public`.
    Folder { root: PathBuf, public: String },
}

impl Source {
    fn new(from: &str, public_base: &str) -> anyhow::Result<Source> {
        if from.starts_with("http://") || from.starts_with("https://") {
            let base = from.trim_end_matches('/').trim_end_matches("/packages.json").to_owned();
            let client = reqwest::Client::builder()
                .user_agent(concat!("composer-farm-adopt/", env!("CARGO_PKG_VERSION")))
                .build()
                .context("cannot create HTTP client")?;
            return Ok(Source::Http { base, client });
        }
        let path = Path::new(from);
        let root = if path.is_file() { path.parent().unwrap_or(Path::new(".")).to_owned() } else { path.to_owned() };
        anyhow::ensure!(root.join("packages.json").is_file(), "{} holds no packages.json", root.display());
        Ok(Source::Folder { root, public: public_base.trim_end_matches('/').to_owned() })
    }

    fn base(&self) -> String {
        match self {
            Source::Http { base, .. } => base.clone(),
            Source::Folder { root, .. } => root.display().to_string(),
        }
    }

    /// A document by URL (absolute) or repository-relative path; `None` if it does not exist.
    async fn bytes(&self, location: &str) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Source::Http { base, client } => {
                let url = crate::verify::resolve(base, location);
                let response = client.get(&url).send().await.with_context(|| format!("cannot GET {url}"))?;
                if response.status() == reqwest::StatusCode::NOT_FOUND {
                    return Ok(None);
                }
                anyhow::ensure!(response.status().is_success(), "GET {url}: HTTP {}", response.status());
                Ok(Some(response.bytes().await.with_context(|| format!("cannot read {url}"))?.to_vec()))
            }
            Source::Folder { root, public } => {
                // Metadata names files by their public URL: the path below the public base, or
                // (another host) the URL's path.
                let relative = match location.strip_prefix(&format!("{public}/")) {
                    Some(rest) => rest,
                    None => match location.split_once("://") {
                        Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
                        None => location,
                    },
                }
                .trim_start_matches('/');
                match std::fs::read(root.join(relative)) {
                    Ok(bytes) => Ok(Some(bytes)),
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(error) => Err(error).with_context(|| format!("cannot read {}", root.join(relative).display())),
                }
            }
        }
    }

    async fn json(&self, location: &str) -> anyhow::Result<Option<Value>> {
        match self.bytes(location).await? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{location} is not JSON"))?)),
            None => Ok(None),
        }
    }
}

/// One published version found in the source's metadata.
struct Listed {
    name: String,
    version: String,
    dist: String,
    sha1: String,
}

/// Reads the repository at `from` (URL or folder) into the farm's manifest.
pub async fn adopt(farm: &Farm, from: &str, concurrency: usize) -> anyhow::Result<AdoptReport> {
    let source = Source::new(from, &farm.config().repository.base_url)?;
    let mut report = AdoptReport::default();
    let listed = list_versions(&source, &mut report).await?;
    report.listed = listed.len();
    let base_url = farm.config().repository.base_url.trim_end_matches('/').to_owned();
    let source_base = source.base();
    let mut todo = Vec::new();
    for item in listed {
        if farm.knows(&format!("{}@{}", item.name, item.version)).await {
            report.known += 1;
            continue;
        }
        // The key is the dist URL's path inside the repository.
        let key = [source_base.as_str(), base_url.as_str()]
            .iter()
            .find_map(|base| item.dist.strip_prefix(&format!("{base}/")))
            .or_else(|| (!item.dist.contains("://")).then(|| item.dist.trim_start_matches('/')))
            .map(str::to_owned);
        match key.filter(|k| shared::storage::check_key(k).is_ok()) {
            Some(key) => todo.push((item, key)),
            None => report.problems.push(format!(
                "{} {}: dist URL {} is outside the repository ({base_url}); not adopted",
                item.name, item.version, item.dist
            )),
        }
    }
    info!(versions = todo.len(), "adopting");
    let storage = farm.storage();
    let source = &source;
    let mut outcomes = futures_util::stream::iter(todo.into_iter().map(|(item, key)| async move {
        let outcome = take_over(storage, source, &item, &key).await;
        (item, key, outcome)
    }))
    .buffer_unordered(concurrency.max(1));
    let mut entries = Vec::new();
    while let Some((item, key, outcome)) = outcomes.next().await {
        match outcome {
            Ok((bytes, stored, copied)) => {
                let composer = match shared::additional::composer_json_of_zip(&bytes) {
                    Ok(composer) => composer,
                    Err(error) => {
                        report.problems.push(format!("{} {}: {key}: {error}; not adopted", item.name, item.version));
                        continue;
                    }
                };
                report.copied += usize::from(copied);
                report.adopted += 1;
                entries.push(ManifestEntry {
                    name: item.name,
                    version: item.version,
                    key: stored.key,
                    size: stored.size,
                    sha1: stored.sha1,
                    sha256: stored.sha256,
                    upstream: "adopted".to_owned(),
                    repo: shared::config::redact_url(&source_base),
                    git_ref: String::new(),
                    commit: String::new(),
                    tree_id: String::new(),
                    composer,
                });
            }
            Err(problem) => report.problems.push(format!("{} {}: {problem}", item.name, item.version)),
        }
    }
    report.problems.sort();
    if report.problems.is_empty() && !entries.is_empty() {
        farm.record_adopted(entries).await?;
        report.recorded = true;
    }
    Ok(report)
}

/// The archive's bytes and digests from the farm's storage (checked against the metadata's
/// sha1) or, when it is not there yet, from the source (checked, then stored). `true` when copied.
async fn take_over(
    storage: &shared::storage::AnyStorage,
    source: &Source,
    item: &Listed,
    key: &str,
) -> Result<(Vec<u8>, StoredArchive, bool), String> {
    if let Some(bytes) = storage.get(key).await.map_err(|e| e.to_string())? {
        let stored = StoredArchive::of_bytes(key.to_owned(), &bytes);
        if stored.sha1 != item.sha1 {
            let actual = &stored.sha1;
            return Err(format!("the archive at {key} has sha1 {actual}, the metadata says {}; not adopted", item.sha1));
        }
        return Ok((bytes, stored, false));
    }
    // A folder's metadata names the archives by their public URL; the file is at the key.
    let location = match source {
        Source::Folder { .. } => key,
        Source::Http { .. } => item.dist.as_str(),
    };
    let bytes = source
        .bytes(location)
        .await
        .map_err(|e| format!("{e:#}"))?
        .ok_or_else(|| format!("{} does not exist; not adopted", item.dist))?;
    let stored = StoredArchive::of_bytes(key.to_owned(), &bytes);
    if stored.sha1 != item.sha1 {
        return Err(format!("{} has sha1 {}, the metadata says {}; not adopted", item.dist, stored.sha1, item.sha1));
    }
    let scratch = storage.scratch_dir();
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    let temp = tempfile::NamedTempFile::new_in(&scratch).map_err(|e| e.to_string())?;
    std::fs::write(temp.path(), &bytes).map_err(|e| e.to_string())?;
    storage.put_archive(key, &temp.into_temp_path(), &stored.sha1).await.map_err(|e| e.to_string())?;
    Ok((bytes, stored, true))
}

/// Every version the source's metadata lists: Composer 2 `metadata-url` with
/// `available-packages`, and inline or included (satis) `packages`.
async fn list_versions(source: &Source, report: &mut AdoptReport) -> anyhow::Result<Vec<Listed>> {
    let root = source.json("packages.json").await?.context("the source has no packages.json")?;
    let mut documents: Vec<(String, Value)> = Vec::new();
    if let (Some(metadata_url), Some(names)) = (root["metadata-url"].as_str(), root["available-packages"].as_array()) {
        for name in names.iter().filter_map(Value::as_str) {
            for suffix in ["", "~dev"] {
                let location = metadata_url.replace("%package%", &format!("{name}{suffix}"));
                if let Some(document) = source.json(&location).await? {
                    documents.push((location, document));
                }
            }
        }
    }
    if root["packages"].as_object().is_some_and(|p| !p.is_empty()) {
        documents.push(("packages.json".to_owned(), root.clone()));
    }
    if let Some(includes) = root["includes"].as_object() {
        for location in includes.keys() {
            let document = source.json(location).await?.with_context(|| format!("{location} is listed but missing"))?;
            documents.push((location.clone(), document));
        }
    }
    let mut listed: Vec<Listed> = Vec::new();
    // name@version to its index in `listed`: satis lists every version twice (p2 and include).
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (location, document) in documents {
        let Some(packages) = document["packages"].as_object() else { continue };
        for (name, versions) in packages {
            let versions: Vec<Map<String, Value>> = match versions {
                // Composer 2 (possibly minified) lists.
                Value::Array(_) => match crate::verify::expand(&document, name) {
                    Ok(versions) => versions,
                    Err(problem) => {
                        report.problems.push(format!("{location}: {problem}"));
                        continue;
                    }
                },
                // Composer 1 / satis: version to package.
                Value::Object(by_version) => by_version.values().filter_map(|v| v.as_object().cloned()).collect(),
                _ => continue,
            };
            for version in versions {
                let Some(label) = version["version"].as_str().filter(|v| !v.is_empty()) else {
                    report.problems.push(format!("{name}: an entry without a version in {location}"));
                    continue;
                };
                let (Some(dist), Some(sha1)) = (version["dist"]["url"].as_str(), version["dist"]["shasum"].as_str())
                else {
                    report.problems.push(format!("{name} {label}: no dist url or sha1 in {location}"));
                    continue;
                };
                if sha1.is_empty() {
                    report.problems.push(format!("{name} {label}: no dist url or sha1 in {location}"));
                    continue;
                }
                let id = format!("{name}@{label}");
                match seen.get(&id) {
                    Some(&index) if listed[index].sha1 == sha1 && listed[index].dist == dist => {}
                    Some(&index) => report.problems.push(format!(
                        "{name} {label}: listed twice with different archives ({} sha1 {}, {dist} sha1 {sha1})",
                        listed[index].dist, listed[index].sha1
                    )),
                    None => {
                        seen.insert(id, listed.len());
                        listed.push(Listed {
                            name: name.clone(),
                            version: label.to_owned(),
                            dist: dist.to_owned(),
                            sha1: sha1.to_owned(),
                        });
                    }
                }
            }
        }
    }
    Ok(listed)
}
