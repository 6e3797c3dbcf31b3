//! `coordinator adopt`: takes over an existing Composer repository (for example the public
//! mirror) by reading its metadata into the build manifest, so the next build skips every
//! name@version it already publishes and the immutability guard knows every published sha1.
//!
//! Nothing published is rebuilt or changed: an archive already in the farm's storage must have
//! exactly the sha1 the metadata gives; a missing one is downloaded from the source, checked
//! against that sha1 and stored under the same key. Adoption is all or nothing: if any listed
//! version cannot be taken over, nothing is stored and nothing is recorded (metadata rendered from
//! a partial manifest would drop the versions left out, and an archive stored early could occupy a
//! key a later build needs), and a rerun after the fix checks again.
//!
//! The source is not trusted for anything but the content of the archives it lists: it is read
//! through [`crate::fetch`] (timeouts, byte limits, same origin), every name, version and key gets
//! the checks planning applies, an archive may only sit at its own key (never `.farm/`, metadata or
//! another package's archive), and its composer.json must name the listed package.

use std::fmt::Write as _;

use anyhow::Context;
use futures_util::StreamExt as _;
use serde_json::{Map, Value};
use shared::archive::ArchiveDigest;
use shared::identity::shown;
use shared::storage::Storage;
use tracing::info;

use crate::fetch::{Limits, Source};
use crate::manifest::{ManifestEntry, Origin, StoredArchive};
use crate::pipeline::Farm;

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
        out.push_str(&crate::fetch::summarise(&self.problems));
        out
    }
}

/// One published version found in the source's metadata.
struct Listed {
    name: String,
    version: String,
    dist: String,
    sha1: String,
}

/// An archive checked and ready to be stored and recorded.
struct Staged {
    entry: ManifestEntry,
    /// The downloaded file, when the farm's storage does not have the archive yet.
    file: Option<tempfile::TempPath>,
}

/// Reads the repository at `from` (URL or folder) into the farm's manifest.
pub async fn adopt(farm: &Farm, from: &str, options: &AdoptOptions) -> anyhow::Result<AdoptReport> {
    let base_url = farm.config().repository.base_url.trim_end_matches('/').to_owned();
    let source = Source::open(from, &base_url, options.limits.clone(), &options.allowed_hosts)?;
    let mut report = AdoptReport::default();
    let listed = list_versions(&source, &mut report).await?;
    report.listed = listed.len();
    let source_base = source.base();
    let mut todo = Vec::new();
    for item in listed {
        if farm.knows(&format!("{}@{}", item.name, item.version)).await {
            report.known += 1;
            continue;
        }
        match adopted_key(&item, &[source_base.as_str(), base_url.as_str()]) {
            Ok(key) => todo.push((item, key)),
            Err(problem) => report.problems.push(format!("{} {}: {problem}; not adopted", item.name, item.version)),
        }
    }
    if !report.problems.is_empty() {
        report.problems.sort();
        return Ok(report);
    }
    info!(versions = todo.len(), "checking archives");
    let storage = farm.storage();
    let source = &source;
    let repo = shared::config::redact_url(&source_base);
    let mut outcomes = futures_util::stream::iter(todo.into_iter().map(|(item, key)| {
        let repo = repo.clone();
        async move {
            let outcome = stage(storage, source, &item, key, repo).await;
            (item, outcome)
        }
    }))
    .buffer_unordered(options.concurrency.max(1));
    let mut staged = Vec::new();
    while let Some((item, outcome)) = outcomes.next().await {
        match outcome {
            Ok(archive) => staged.push(archive),
            Err(problem) => report.problems.push(format!("{} {}: {problem}", item.name, item.version)),
        }
    }
    drop(outcomes);
    report.problems.sort();
    report.adopted = staged.len();
    if !report.problems.is_empty() || staged.is_empty() {
        // Nothing is stored: the downloaded files are removed with `staged`.
        return Ok(report);
    }
    let mut entries = Vec::with_capacity(staged.len());
    for archive in staged {
        if let Some(file) = &archive.file {
            // Size and digests as the download measured them (and the sha1 was checked against).
            let entry = &archive.entry;
            let digest = ArchiveDigest { size: entry.size, sha1: entry.sha1.clone(), sha256: entry.sha256.clone() };
            storage
                .put_archive(&archive.entry.key, file, &digest)
                .await
                .with_context(|| format!("cannot store {}", archive.entry.key))?;
            report.copied += 1;
        }
        entries.push(archive.entry);
    }
    farm.record_adopted(entries).await?;
    report.recorded = true;
    Ok(report)
}

/// How `adopt` reads its source.
#[derive(Debug, Clone)]
pub struct AdoptOptions {
    /// Archives checked or downloaded at once.
    pub concurrency: usize,
    /// Timeouts and byte limits.
    pub limits: Limits,
    /// Hosts (or `scheme://host:port` origins) links may lead to besides the source's own.
    pub allowed_hosts: Vec<String>,
}

impl Default for AdoptOptions {
    fn default() -> Self {
        AdoptOptions { concurrency: 8, limits: Limits::default(), allowed_hosts: Vec::new() }
    }
}

/// The storage key an adopted archive keeps: its dist URL's path inside the repository, which must
/// be the key the farm itself would give this name@version (`packages/<name>-<version>.zip`, or
/// with a branch digest for `dev-` versions), a prebuilt archive's key (`packages/additional/…`),
/// or a layout no farm key has (more folders below `packages/`). Never metadata, `.farm/`, or
/// another package's archive.
fn adopted_key(item: &Listed, bases: &[&str]) -> Result<String, String> {
    shared::identity::validate_name(&item.name).map_err(|e| e.to_string())?;
    shared::identity::validate_version(&item.name, &item.version).map_err(|e| e.to_string())?;
    let key = bases
        .iter()
        .find_map(|base| item.dist.strip_prefix(&format!("{base}/")))
        .or_else(|| (!item.dist.contains("://")).then(|| item.dist.trim_start_matches('/')))
        .ok_or_else(|| format!("dist URL {} is outside the repository ({})", item.dist, bases.join(", ")))?;
    shared::identity::validate_key(key).map_err(|e| e.to_string())?;
    let own = shared::identity::archive_key(&item.name, &shared::identity::key_version(&item.version), None);
    let own_stem = own.strip_suffix(".zip").unwrap_or(&own);
    let own_key = key == own
        || key.strip_prefix(&format!("{own_stem}-")).and_then(|rest| rest.strip_suffix(".zip")).is_some_and(|digest| {
            item.version.starts_with("dev-")
                && digest.len() == shared::identity::BRANCH_DIGEST_DIGITS
                && digest.bytes().all(|b| b.is_ascii_hexdigit())
        });
    let additional = key
        .strip_prefix(shared::additional::ADDITIONAL_PREFIX)
        .and_then(|rest| rest.strip_prefix('/'))
        .is_some_and(|file| !file.contains('/'));
    let foreign_layout = key[shared::identity::ARCHIVE_PREFIX.len()..].matches('/').count() >= 2;
    if own_key || additional || foreign_layout {
        Ok(key.to_owned())
    } else {
        Err(format!(
            "dist URL {} is at a key the farm gives another package's archive (this one's is {own})",
            item.dist
        ))
    }
}

/// Checks one archive: the farm's stored copy, or a download into a temp file (kept for storing
/// once every archive has checked out). The sha1 must be the metadata's, and the archive a zip
/// whose composer.json names the listed package.
async fn stage(
    storage: &shared::storage::AnyStorage,
    source: &Source,
    item: &Listed,
    key: String,
    repo: String,
) -> Result<Staged, String> {
    let (digests, composer, file) = match storage.get(&key).await.map_err(|e| e.to_string())? {
        Some(bytes) => {
            let stored = StoredArchive::of_bytes(key.clone(), &bytes);
            if stored.sha1 != item.sha1 {
                let actual = &stored.sha1;
                return Err(format!(
                    "the archive at {key} has sha1 {actual}, the metadata says {}; not adopted",
                    item.sha1
                ));
            }
            let composer = archive_composer_json(std::io::Cursor::new(&bytes), &item.name);
            (ArchiveDigest { size: stored.size, sha1: stored.sha1, sha256: stored.sha256 }, composer, None)
        }
        None => {
            let mut temp = scratch_file(storage)?;
            let location = match source.is_folder() {
                true => key.as_str(),
                false => item.dist.as_str(),
            };
            let digests = source
                .archive(location, temp.as_file_mut())
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("{} does not exist; not adopted", item.dist))?;
            if digests.sha1 != item.sha1 {
                return Err(format!(
                    "{} has sha1 {}, the metadata says {}; not adopted",
                    item.dist, digests.sha1, item.sha1
                ));
            }
            let reopened = temp.reopen().map_err(|e| e.to_string())?;
            let composer = archive_composer_json(std::io::BufReader::new(reopened), &item.name);
            (digests, composer, Some(temp.into_temp_path()))
        }
    };
    let composer = composer.map_err(|e| format!("{key}: {e}; not adopted"))?;
    let stored = StoredArchive { key, size: digests.size, sha1: digests.sha1, sha256: digests.sha256 };
    let origin = Origin { repo, ..Origin::adopted() };
    let entry = ManifestEntry::new(
        item.name.clone(),
        item.version.clone(),
        stored,
        shared::metadata::ComposerJson::of_map(&composer),
        origin,
    );
    Ok(Staged { entry, file })
}

fn scratch_file(storage: &shared::storage::AnyStorage) -> Result<tempfile::NamedTempFile, String> {
    let scratch = storage.scratch_dir();
    std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
    tempfile::NamedTempFile::new_in(&scratch).map_err(|e| e.to_string())
}

/// The archive's root composer.json, which must name `name`.
fn archive_composer_json(
    archive: impl std::io::Read + std::io::Seek,
    name: &str,
) -> Result<Map<String, Value>, String> {
    let composer = shared::additional::composer_json_of_zip(archive)?;
    match composer.get("name").and_then(Value::as_str) {
        Some(own) if own.eq_ignore_ascii_case(name) => Ok(composer),
        Some(own) => Err(format!("its composer.json names {}, not {name}", shared::identity::shown(own))),
        None => Err("its composer.json has no name".to_owned()),
    }
}

/// Every version the source's metadata lists: Composer 2 `metadata-url` with
/// `available-packages`, and inline or included (satis) `packages`.
async fn list_versions(source: &Source, report: &mut AdoptReport) -> anyhow::Result<Vec<Listed>> {
    let documents = documents(source, report).await?;
    let mut listed: Vec<Listed> = Vec::new();
    // name@version to its index in `listed`: satis lists every version twice (p2 and include).
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (location, document) in documents {
        let Some(packages) = document["packages"].as_object() else { continue };
        for (name, versions) in packages {
            let Some(versions) = versions_of(&location, &document, name, versions, report) else { continue };
            for version in versions {
                let Some(item) = listed_version(&location, name, &version, report) else { continue };
                let id = format!("{name}@{}", item.version);
                match seen.get(&id) {
                    Some(&index) if listed[index].sha1 == item.sha1 && listed[index].dist == item.dist => {}
                    Some(&index) => report.problems.push(format!(
                        "{name} {}: listed twice with different archives ({} sha1 {}, {} sha1 {})",
                        item.version, listed[index].dist, listed[index].sha1, item.dist, item.sha1
                    )),
                    None => {
                        seen.insert(id, listed.len());
                        listed.push(item);
                    }
                }
            }
        }
    }
    Ok(listed)
}

/// The metadata documents a repository lists: p2 files, packages.json itself, includes.
async fn documents(source: &Source, report: &mut AdoptReport) -> anyhow::Result<Vec<(String, Value)>> {
    let root = source.metadata("packages.json").await?.context("the source has no packages.json")?;
    let mut documents: Vec<(String, Value)> = Vec::new();
    if let (Some(metadata_url), Some(names)) = (root["metadata-url"].as_str(), root["available-packages"].as_array()) {
        let limit = source.limits().max_packages;
        anyhow::ensure!(
            names.len() <= limit,
            "packages.json lists {} packages, over the limit of {limit}",
            names.len()
        );
        for name in names.iter().filter_map(Value::as_str) {
            if let Err(error) = shared::identity::validate_name(name) {
                report.problems.push(format!("packages.json: {error}"));
                continue;
            }
            for suffix in ["", "~dev"] {
                let location = metadata_url.replace("%package%", &format!("{name}{suffix}"));
                match source.metadata(&location).await {
                    Ok(Some(document)) => documents.push((location, document)),
                    Ok(None) => {}
                    Err(error) => report.problems.push(error.to_string()),
                }
            }
        }
    }
    if root["packages"].as_object().is_some_and(|p| !p.is_empty()) {
        documents.push(("packages.json".to_owned(), root.clone()));
    }
    if let Some(includes) = root["includes"].as_object() {
        for location in includes.keys() {
            match source.metadata(location).await {
                Ok(Some(document)) => documents.push((location.clone(), document)),
                Ok(None) => report.problems.push(format!("{location} is listed but missing")),
                Err(error) => report.problems.push(error.to_string()),
            }
        }
    }
    Ok(documents)
}

/// The versions one document lists for `name` (the version limit is checked when it is read).
fn versions_of(
    location: &str,
    document: &Value,
    name: &str,
    versions: &Value,
    report: &mut AdoptReport,
) -> Option<Vec<Map<String, Value>>> {
    match versions {
        // Composer 2 (possibly minified) lists.
        Value::Array(_) => match crate::listing::expand(document, name) {
            Ok(versions) => Some(versions),
            Err(problem) => {
                report.problems.push(format!("{location}: {problem}"));
                None
            }
        },
        // Composer 1 / satis: version to package.
        Value::Object(by_version) => Some(by_version.values().filter_map(|v| v.as_object().cloned()).collect()),
        _ => None,
    }
}

/// One version entry's name, version, dist URL and sha1, or a problem.
fn listed_version(
    location: &str,
    name: &str,
    version: &Map<String, Value>,
    report: &mut AdoptReport,
) -> Option<Listed> {
    let Some(label) = version.get("version").and_then(Value::as_str).filter(|v| !v.is_empty()) else {
        report.problems.push(format!("{}: an entry without a version in {location}", shown(name)));
        return None;
    };
    let dist = version.get("dist");
    let url = dist.and_then(|d| d.get("url")).and_then(Value::as_str);
    let sha1 = dist.and_then(|d| d.get("shasum")).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (Some(url), Some(sha1)) = (url, sha1) else {
        report.problems.push(format!("{} {}: no dist url or sha1 in {location}", shown(name), shown(label)));
        return None;
    };
    Some(Listed { name: name.to_owned(), version: label.to_owned(), dist: url.to_owned(), sha1: sha1.to_owned() })
}
