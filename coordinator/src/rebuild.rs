//! `coordinator verify --rebuild`: proves a published repository reproducible. It reads the
//! repository's metadata (a URL or a folder, as `adopt` does), plans the configuration against an
//! empty manifest, rebuilds each selected name@version from the upstream git repositories in
//! scratch space, and compares the bytes with the published archive, downloaded only when its
//! rebuild exists.
//!
//! Each result is appended to a state file (`--state`) as one JSON line as soon as it is known;
//! a run given the same file skips every name@version it already holds a verdict for
//! (reproduced, or differs) with the same published sha1, so an interrupted run resumes where it
//! stopped and what could not be read or rebuilt is tried again.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use shared::additional::AdditionalPackage;
use shared::archive::ArchiveDigest;
use shared::config::FarmConfig;
use shared::git::GitCache;
use shared::messages::{BuildId, JobId};
use tokio::sync::Semaphore;
use tracing::{info, warn};

use crate::contents::{self, ContentLimits};
use crate::fetch::{Limits, Source};
use crate::listing::Listed;
use crate::manifest::Manifest;
use crate::plan::candidate::Candidate;
use crate::plan::{Plan, Scope};

/// Differences listed per name@version (the first one is always given).
const SHOWN_DIFFERENCES: usize = 20;

/// What to rebuild and compare.
#[derive(Debug, Clone)]
pub struct RebuildOptions {
    /// The published repository: its URL or a folder.
    pub from: String,
    /// Where a folder is published (dist URLs are resolved against it).
    pub public_base: String,
    /// Only names (or `name@version`) matching one of these `*` patterns; all when empty.
    pub only: Vec<String>,
    /// At most this many, chosen by a fixed order of their ids (the same sample every run).
    pub sample: Option<usize>,
    /// Results so far (JSON lines): read to resume, appended to.
    pub state: Option<PathBuf>,
    /// Downloads and rebuilds in flight.
    pub concurrency: usize,
    /// Limits of the published repository's documents and archives.
    pub limits: Limits,
    /// Hosts its links may lead to besides its own.
    pub allowed_hosts: Vec<String>,
    /// Scratch folder (emptied by the caller).
    pub scratch: PathBuf,
}

/// How one name@version came out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// The rebuilt archive has the published archive's bytes.
    Reproduced,
    /// The bytes differ: the first difference, and up to [`SHOWN_DIFFERENCES`] of them.
    Differs {
        /// The first differing entry (file, mode, content or composer.json change).
        first: String,
        /// The differences, published side first.
        differences: Vec<String>,
    },
    /// Its source is gone (or no longer gives this version).
    Unrebuildable {
        /// Why.
        reason: String,
    },
    /// The published archive could not be read.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// One name@version checked (a line of the state file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checked {
    /// `name@version`.
    pub id: String,
    /// The published sha1 (a republished archive is checked again).
    pub sha1: String,
    /// The result.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// What `verify --rebuild` found.
#[derive(Debug, Default, Serialize)]
pub struct RebuildReport {
    /// Versions the repository lists.
    pub listed: usize,
    /// Versions selected (`--only`, `--sample`).
    pub selected: usize,
    /// Results taken from the state file.
    pub resumed: usize,
    /// Every selected version's result, by id.
    pub checked: Vec<Checked>,
    /// Metadata documents that could not be read.
    pub problems: Vec<String>,
}

impl RebuildReport {
    /// How many have this outcome kind.
    fn count(&self, kind: fn(&Outcome) -> bool) -> usize {
        self.checked.iter().filter(|c| kind(&c.outcome)).count()
    }

    /// Reproduced bit for bit.
    pub fn reproduced(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Reproduced))
    }

    /// Every selected version reproduced, and the metadata read cleanly.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.reproduced() == self.checked.len()
    }

    /// A summary for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "verify --rebuild: {} of {} selected versions reproduced bit for bit ({} listed, {} resumed); {} differ, {} cannot be rebuilt, {} unreadable",
            self.reproduced(),
            self.selected,
            self.listed,
            self.resumed,
            self.count(|o| matches!(o, Outcome::Differs { .. })),
            self.count(|o| matches!(o, Outcome::Unrebuildable { .. })),
            self.count(|o| matches!(o, Outcome::Unreadable { .. })),
        );
        for checked in &self.checked {
            match &checked.outcome {
                Outcome::Reproduced => {}
                Outcome::Differs { first, differences } => {
                    let _ = writeln!(out, "  differs: {}: first difference: {first}", checked.id);
                    for line in differences.iter().skip(1) {
                        let _ = writeln!(out, "    {line}");
                    }
                }
                Outcome::Unrebuildable { reason } => {
                    let _ = writeln!(out, "  cannot be rebuilt: {}: {reason}", checked.id);
                }
                Outcome::Unreadable { reason } => {
                    let _ = writeln!(out, "  unreadable: {}: {reason}", checked.id);
                }
            }
        }
        out.push_str(&crate::fetch::summarise(&self.problems));
        out
    }
}

/// How each selected version is rebuilt.
enum Recipe {
    /// A job, as a worker runs it.
    Build(Box<Candidate>),
    /// A prebuilt archive, published as it is.
    Prebuilt(AdditionalPackage),
    /// Nothing gives it any more.
    Gone(String),
}

/// Rebuilds and compares (see the module docs).
pub async fn rebuild(config: &FarmConfig, options: &RebuildOptions) -> anyhow::Result<RebuildReport> {
    let source = Source::open(&options.from, &options.public_base, options.limits.clone(), &options.allowed_hosts)?;
    let listing = crate::listing::read(&source).await?;
    let mut report = RebuildReport { listed: listing.versions.len(), problems: listing.problems, ..Default::default() };
    let selected = select(listing.versions, &options.only, options.sample);
    report.selected = selected.len();
    let mut done = match &options.state {
        Some(path) => load_state(path)?,
        None => HashMap::new(),
    };
    // Only a verdict is kept: what could not be read or rebuilt (an outage, a fetch that failed)
    // is tried again.
    let verdict = |c: &Checked| matches!(c.outcome, Outcome::Reproduced | Outcome::Differs { .. });
    let mut todo = Vec::new();
    for listed in selected {
        match done.remove(&listed.id()).filter(|c| c.sha1 == listed.version.sha1 && verdict(c)) {
            Some(checked) => report.checked.push(checked),
            None => todo.push(listed),
        }
    }
    report.resumed = report.checked.len();
    if !todo.is_empty() {
        info!(versions = todo.len(), resumed = report.resumed, "planning the rebuild");
        let planned = crate::plan::plan(config, &Manifest::default(), &Scope::All).await?;
        let recipes = recipes(&todo, planned);
        let checker = Checker::new(config, options, &source)?;
        let mut results = futures_util::stream::iter(todo.into_iter().zip(recipes))
            .map(|(listed, recipe)| checker.check(listed, recipe))
            .buffer_unordered(options.concurrency.max(1));
        while let Some(checked) = results.next().await {
            checker.remember(&checked)?;
            report.checked.push(checked);
        }
    }
    report.checked.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(report)
}

/// The versions `only` matches (by name or `name@version`), then at most `sample` of them, in
/// a fixed pseudo-random order of their ids.
fn select(versions: Vec<Listed>, only: &[String], sample: Option<usize>) -> Vec<Listed> {
    let matches = |listed: &Listed| {
        only.is_empty()
            || only.iter().any(|pattern| {
                shared::config::name_matches(pattern, &listed.version.name)
                    || shared::config::name_matches(pattern, &listed.id())
            })
    };
    let mut chosen: Vec<Listed> = versions.into_iter().filter(matches).collect();
    if let Some(sample) = sample {
        chosen.sort_by_cached_key(|listed| sha2::Sha256::digest(listed.id().as_bytes()));
        chosen.truncate(sample);
    }
    chosen.sort_by_cached_key(Listed::id);
    chosen
}

/// The recipe of each version, in order.
fn recipes(todo: &[Listed], planned: Plan) -> Vec<Recipe> {
    let failures: Vec<String> = planned
        .findings
        .repository_failures
        .iter()
        .map(|f| format!("upstream {} could not be read: {}", f.upstream, f.reason))
        .collect();
    let names: HashSet<String> = planned.to_build.iter().map(|c| c.package.to_lowercase()).collect();
    let mut built: HashMap<String, Candidate> = planned.to_build.into_iter().map(|c| (c.id(), c)).collect();
    let mut prebuilt: HashMap<String, AdditionalPackage> = planned
        .additional
        .into_iter()
        .map(|p| (crate::manifest::PackageId::new(&p.name, &p.version).to_string(), p))
        .collect();
    todo.iter()
        .map(|listed| {
            let id = listed.id();
            if let Some(candidate) = built.remove(&id) {
                return Recipe::Build(Box::new(candidate));
            }
            if let Some(package) = prebuilt.remove(&id) {
                return Recipe::Prebuilt(package);
            }
            let name = &listed.version.name;
            let reason = if !failures.is_empty() {
                failures.join("; ")
            } else if names.contains(&name.to_lowercase()) {
                format!("no tag or branch of the configured upstreams gives {name} {} any more (its tag is gone, or the rules changed)", listed.version.version)
            } else {
                format!("no configured upstream or prebuilt archive gives {name} any more")
            };
            Recipe::Gone(reason)
        })
        .collect()
}

/// What each check shares.
struct Checker<'a> {
    cache: Arc<GitCache>,
    source: &'a Source,
    scratch: PathBuf,
    builds: Semaphore,
    build_id: BuildId,
    state: Option<std::sync::Mutex<std::fs::File>>,
}

impl<'a> Checker<'a> {
    fn new(config: &FarmConfig, options: &RebuildOptions, source: &'a Source) -> anyhow::Result<Checker<'a>> {
        std::fs::create_dir_all(&options.scratch)
            .with_context(|| format!("cannot create {}", options.scratch.display()))?;
        let state = match &options.state {
            Some(path) => {
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                Some(std::sync::Mutex::new(file))
            }
            None => None,
        };
        Ok(Checker {
            cache: Arc::new(GitCache::new(config.cache_dir())),
            source,
            scratch: options.scratch.clone(),
            builds: Semaphore::new(config.workers().max(1)),
            build_id: BuildId(format!("verify-{}", std::process::id())),
            state,
        })
    }

    /// Appends a result to the state file.
    fn remember(&self, checked: &Checked) -> anyhow::Result<()> {
        let Some(state) = &self.state else { return Ok(()) };
        let mut line = serde_json::to_vec(checked).expect("result serialises");
        line.push(b'\n');
        let mut file = state.lock().expect("state file lock");
        file.write_all(&line).context("cannot append to the state file")
    }

    async fn check(&self, listed: Listed, recipe: Recipe) -> Checked {
        let id = listed.id();
        let sha1 = listed.version.sha1.clone();
        let outcome = self.outcome(&listed, recipe).await;
        Checked { id, sha1, outcome }
    }

    async fn outcome(&self, listed: &Listed, recipe: Recipe) -> Outcome {
        let rebuilt = match self.rebuilt(listed, recipe).await {
            Ok(rebuilt) => rebuilt,
            Err(outcome) => return outcome,
        };
        // The link as listed: the source resolves it (a folder's path, or a URL on its origin).
        if let Err(reason) = &listed.dist {
            return Outcome::Unreadable { reason: reason.clone() };
        }
        let published = match self.download(&listed.version.key).await {
            Ok(published) => published,
            Err(reason) => return Outcome::Unreadable { reason },
        };
        // Composer refuses an archive whose sha1 is not the metadata's, whatever the rebuild says.
        let mismatch = (published.1.sha1 != listed.version.sha1).then(|| {
            format!("the published archive's sha1 is {}, its metadata says {}", published.1.sha1, listed.version.sha1)
        });
        match (compare(published, &rebuilt).await, mismatch) {
            (Outcome::Reproduced, Some(line)) => Outcome::Differs { first: line.clone(), differences: vec![line] },
            (Outcome::Differs { first, mut differences }, Some(line)) => {
                differences.push(line);
                Outcome::Differs { first, differences }
            }
            (outcome, _) => outcome,
        }
    }

    /// The rebuilt archive, or why there is none.
    async fn rebuilt(&self, listed: &Listed, recipe: Recipe) -> Result<Rebuilt, Outcome> {
        match recipe {
            Recipe::Gone(reason) => Err(Outcome::Unrebuildable { reason }),
            Recipe::Prebuilt(package) => {
                let (size, sha256) = (package.size, package.sha256.clone());
                Ok(Rebuilt { file: RebuiltFile::Kept(package.path), size, sha256 })
            }
            Recipe::Build(candidate) => {
                let _slot = self.builds.acquire().await.expect("semaphore never closed");
                let job = candidate.job(&self.build_id, JobId(listed.id()));
                let (cache, scratch) = (Arc::clone(&self.cache), self.scratch.clone());
                let built = tokio::task::spawn_blocking(move || worker::build_archive(&cache, &job, &scratch)).await;
                match built {
                    Ok(Ok(built)) => {
                        let (size, sha256) = (built.digest.size, built.digest.sha256);
                        Ok(Rebuilt { file: RebuiltFile::Built(built.file), size, sha256 })
                    }
                    Ok(Err(error)) => Err(Outcome::Unrebuildable { reason: format!("the rebuild failed: {error}") }),
                    Err(error) => Err(Outcome::Unrebuildable { reason: format!("the rebuild panicked: {error}") }),
                }
            }
        }
    }

    /// Downloads the published archive into scratch space, hashing it on the way.
    async fn download(&self, url: &str) -> Result<(tempfile::TempPath, ArchiveDigest), String> {
        let temp =
            tempfile::NamedTempFile::new_in(&self.scratch).map_err(|e| format!("cannot create a temp file: {e}"))?;
        let mut file = temp.as_file().try_clone().map_err(|e| format!("cannot open a temp file: {e}"))?;
        match self.source.archive(url, &mut file).await {
            Ok(Some(digest)) => Ok((temp.into_temp_path(), digest)),
            Ok(None) => Err(format!("{url} does not exist")),
            Err(error) => Err(error.to_string()),
        }
    }
}

/// A rebuilt archive and its digest.
struct Rebuilt {
    file: RebuiltFile,
    size: u64,
    sha256: String,
}

/// Where a rebuilt archive is: a temp file, or a prebuilt archive where it lies.
enum RebuiltFile {
    Built(tempfile::TempPath),
    Kept(PathBuf),
}

impl Rebuilt {
    fn path(&self) -> &Path {
        match &self.file {
            RebuiltFile::Built(path) => path,
            RebuiltFile::Kept(path) => path,
        }
    }
}

/// Compares the published archive with the rebuilt one: size and SHA-256 first (both hashed as
/// they were written), then, when they differ, what differs (streamed, never read whole).
async fn compare(published: (tempfile::TempPath, ArchiveDigest), rebuilt: &Rebuilt) -> Outcome {
    let (file, digest) = published;
    if digest.size == rebuilt.size && digest.sha256 == rebuilt.sha256 {
        return Outcome::Reproduced;
    }
    let right = rebuilt.path().to_path_buf();
    tokio::task::spawn_blocking(move || differences(&file, &right))
        .await
        .unwrap_or_else(|error| Outcome::Unreadable { reason: format!("the comparison panicked: {error}") })
}

/// What differs between two archives whose bytes differ.
fn differences(published: &Path, rebuilt: &Path) -> Outcome {
    let limits = ContentLimits::default();
    let left = match contents::read_archive(published, &limits) {
        Ok(left) => left,
        Err(error) => {
            let first = format!("the published archive is not a readable zip: {error}");
            return Outcome::Differs { first: first.clone(), differences: vec![first] };
        }
    };
    let right = match contents::read_archive(rebuilt, &limits) {
        Ok(right) => right,
        Err(error) => return Outcome::Unreadable { reason: format!("the rebuilt archive cannot be read: {error}") },
    };
    let comparison = contents::compare(&left, &right);
    let mut differences: Vec<String> =
        comparison.differences.iter().flat_map(|d| d.lines("published", "rebuilt")).collect();
    if differences.is_empty() {
        differences.push(layout_difference(published, rebuilt));
    }
    differences.truncate(SHOWN_DIFFERENCES);
    Outcome::Differs { first: differences[0].clone(), differences }
}

/// Same files, different bytes: the first zip entry whose name, order, method, time, mode or
/// attributes differ.
fn layout_difference(published: &Path, rebuilt: &Path) -> String {
    let entries = |path: &Path| -> Option<Vec<BTreeMap<&'static str, String>>> {
        let mut zip = zip::ZipArchive::new(std::fs::File::open(path).ok()?).ok()?;
        let mut entries = Vec::with_capacity(zip.len());
        for index in 0..zip.len() {
            let entry = zip.by_index_raw(index).ok()?;
            let fields = [
                ("name", String::from_utf8_lossy(entry.name_raw()).into_owned()),
                ("method", format!("{:?}", entry.compression())),
                ("time", format!("{:?}", entry.last_modified())),
                ("mode", format!("{:?}", entry.unix_mode())),
                ("compressed size", entry.compressed_size().to_string()),
                ("extra fields", format!("{:?}", entry.extra_data())),
            ];
            entries.push(fields.into_iter().collect());
        }
        Some(entries)
    };
    let (Some(left), Some(right)) = (entries(published), entries(rebuilt)) else {
        return "same files, different zip bytes".to_owned();
    };
    for (index, (l, r)) in left.iter().zip(&right).enumerate() {
        if let Some((field, value)) = l.iter().find(|(field, value)| r.get(*field) != Some(*value)) {
            return format!("zip entry {index} ({}): {field} is {value} published vs {} rebuilt", l["name"], r[field]);
        }
    }
    if left.len() != right.len() {
        return format!("zip entries: {} published vs {} rebuilt", left.len(), right.len());
    }
    "same files and entries, different zip bytes (archive comment or layout)".to_owned()
}

/// The state file's results by id (a torn last line, from a run that was killed, is skipped).
fn load_state(path: &Path) -> anyhow::Result<HashMap<String, Checked>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut done = HashMap::new();
    for line in text.lines().filter(|line| !line.trim().is_empty()) {
        match serde_json::from_str::<Checked>(line) {
            Ok(checked) => {
                done.insert(checked.id.clone(), checked);
            }
            Err(error) => warn!(%error, "skipping an unreadable line of the state file"),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(name: &str, version: &str) -> Listed {
        Listed {
            version: shared::metadata::PublishedVersion {
                name: name.to_owned(),
                version: version.to_owned(),
                composer: shared::metadata::ComposerJson::default(),
                key: String::new(),
                sha1: "1".repeat(40),
            },
            dist: Ok(String::new()),
        }
    }

    #[test]
    fn selection_matches_names_and_ids_and_samples_the_same_every_time() {
        let versions = || (0..20).map(|i| listed(&format!("acme/p{}", i % 5), &format!("1.0.{i}"))).collect::<Vec<_>>();
        let ids = |chosen: Vec<Listed>| chosen.iter().map(Listed::id).collect::<Vec<_>>();
        assert_eq!(select(versions(), &[], None).len(), 20);
        assert_eq!(select(versions(), &["acme/p1".to_owned()], None).len(), 4);
        assert_eq!(ids(select(versions(), &["acme/p1@1.0.6".to_owned()], None)), ["acme/p1@1.0.6"]);
        let sample = ids(select(versions(), &["acme/*".to_owned()], Some(5)));
        assert_eq!(sample.len(), 5);
        assert_eq!(sample, ids(select(versions().into_iter().rev().collect(), &["acme/*".to_owned()], Some(5))));
    }

    #[test]
    fn the_state_file_resumes_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.jsonl");
        let checked = Checked { id: "a/b@1.0.0".to_owned(), sha1: "1".repeat(40), outcome: Outcome::Reproduced };
        let differs = Checked {
            id: "a/c@1.0.0".to_owned(),
            sha1: "2".repeat(40),
            outcome: Outcome::Differs { first: "x: content differs".to_owned(), differences: vec![] },
        };
        let mut text = String::new();
        for c in [&checked, &differs] {
            text.push_str(&serde_json::to_string(c).unwrap());
            text.push('\n');
        }
        text.push_str("{\"id\":\"a/d@1");
        std::fs::write(&path, text).unwrap();
        let done = load_state(&path).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(done["a/b@1.0.0"], checked);
        assert_eq!(done["a/c@1.0.0"], differs);
    }
}
