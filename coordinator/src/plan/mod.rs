//! Planning, in one pass from refs to a [`Plan`]: the upstreams are fetched and read (git only,
//! no storage I/O), each candidate is made by the reference's rules, precedence picks one per
//! name@version, flavours and aliases are applied, prebuilt packages are scanned, and the result
//! is compared with the manifest.
//!
//! Reading order: [`sync`] (fetch and plan the upstreams in parallel) → [`upstream`] (one upstream:
//! [`refs`], composer.json, rules, [`metapackage`], [`digest`]) → [`candidate`] (precedence) →
//! [`flavours`] → [`aliases`] → [`diff`] (against the manifest). [`inputs`] and [`nightly`] are
//! what spans upstreams; [`findings`] what planning reports.

pub mod aliases;
pub mod candidate;
pub mod diff;
pub mod digest;
pub mod findings;
pub mod flavours;
pub mod inputs;
pub mod metapackage;
pub mod nightly;
pub mod refs;
pub mod sync;
pub mod upstream;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use shared::additional::{AdditionalPackage, AdditionalPackages};
use shared::config::{FarmConfig, UpstreamConfig, VersionRule};
use shared::git::GitCache;
use tracing::{info, warn};

use crate::manifest::{Manifest, PackageId, Provenance};
use candidate::Candidate;
use findings::{Findings, Rejection, UpstreamTags};
use inputs::TargetState;

/// What planning decided, before anything is built.
#[derive(Debug, Default)]
pub struct Plan {
    /// Jobs to run, one per name@version, package by package.
    pub to_build: Vec<Candidate>,
    /// Prebuilt archives to publish (not yet in the manifest).
    pub additional: Vec<AdditionalPackage>,
    /// name@version already published.
    pub unchanged: Vec<String>,
    /// Per planned upstream, the refs read (`refs/...` to commit).
    pub refs: BTreeMap<String, BTreeMap<String, String>>,
    /// What planning found besides jobs (rejections, unreadable upstreams, tags, inputs).
    pub findings: Findings,
}

/// What a build covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every upstream (`coordinator build`).
    All,
    /// One upstream, every ref.
    Upstream(String),
    /// One upstream (or, with `None`, every one), only the refs that changed since its last
    /// complete build (`coordinator serve`: a webhook or poll for its repository; `build
    /// --changed`). An upstream's every ref is planned when it has no such build, or its rules or
    /// this program changed since.
    Changed(Option<String>),
}

impl Scope {
    /// Whether the upstream is part of the build.
    pub fn includes(&self, upstream: &str) -> bool {
        match self {
            Scope::All | Scope::Changed(None) => true,
            Scope::Upstream(key) | Scope::Changed(Some(key)) => key == upstream,
        }
    }

    /// `all` or the upstream key (metric label, status).
    pub fn label(&self) -> &str {
        match self {
            Scope::All | Scope::Changed(None) => "all",
            Scope::Upstream(key) | Scope::Changed(Some(key)) => key,
        }
    }
}

/// Fingerprint of what decides an upstream's packages besides git: its rules and this program's
/// version. Recorded with the refs; a change makes polling plan the upstream again.
pub fn rules_fingerprint(config: &FarmConfig, upstream: &UpstreamConfig) -> String {
    use sha2::Digest as _;
    let mut text = format!(
        "{}\n{}\n{upstream:?}\n{:?}",
        env!("CARGO_PKG_VERSION"),
        config.resolve_url(&upstream.url),
        config.target
    );
    // The input files' contents decide versions and composer.json too.
    for path in [&config.target.upstream_versions, &config.target.base_require].into_iter().flatten() {
        let digest = std::fs::read(path).map(|bytes| hex::encode(sha2::Sha256::digest(&bytes)));
        text.push_str(&format!("\n{}: {}", path.display(), digest.unwrap_or_else(|e| e.to_string())));
    }
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

/// Syncs the upstreams in scope and plans the build against the manifest.
pub async fn plan(config: &FarmConfig, manifest: &Manifest, scope: &Scope) -> anyhow::Result<Plan> {
    let cache = Arc::new(GitCache::new(config.cache_dir()));
    let mut state = TargetState::load(config, SystemTime::now()).context("cannot read the target's inputs")?;
    if let Scope::Upstream(key) | Scope::Changed(Some(key)) = scope
        && !config.upstreams.iter().any(|u| &u.key == key)
    {
        anyhow::bail!("no upstream '{key}' in the configuration");
    }
    // Nightly versions pin every package to its siblings' versions, and release metapackages and
    // aliases span upstreams: such targets always plan every upstream.
    let spanning = config.target.versions != VersionRule::Tagged;
    let scope = if spanning { &Scope::All } else { scope };
    let config = Arc::new(config.clone());
    let in_scope: Vec<usize> =
        (0..config.upstreams.len()).filter(|&i| scope.includes(&config.upstreams[i].key)).collect();
    let mut plan = Plan::default();
    let failures = &mut plan.findings.repository_failures;
    let synced = sync::fetch(&config, &cache, &in_scope, &mut state, failures).await?;
    if spanning && !failures.is_empty() {
        // Without every upstream the version map and the metapackages would be incomplete, and
        // what was published under these versions could never be made whole (the reference
        // aborts too). Nothing is built; the failures are reported.
        warn!("an upstream could not be read: nothing is built for this nightly or release target");
        return Ok(plan);
    }
    let state = Arc::new(state);
    let known = known_refs(&config, manifest, scope);
    let mut candidates = Vec::new();
    let mut skipped: HashMap<String, HashSet<String>> = HashMap::new();
    for (index, upstream_plan) in sync::plan(&config, synced, &state, &known, failures).await? {
        let key = config.upstreams[index].key.clone();
        if !upstream_plan.skipped.is_empty() {
            info!(upstream = %key, refs = upstream_plan.skipped.len(), "refs unchanged since the last complete build: not planned");
        }
        skipped.insert(key.clone(), upstream_plan.skipped.into_iter().collect());
        plan.refs.insert(key.clone(), upstream_plan.refs);
        plan.findings.rejected.extend(upstream_plan.rejections);
        plan.findings.tags.push(UpstreamTags { upstream: key, tags: upstream_plan.tags });
        candidates.extend(upstream_plan.candidates);
    }
    let additional = scan_additional(&config, &mut plan.findings).await?;
    let mut winners = candidate::resolve(candidates);
    plan.findings.flavours = flavours::apply_flavours(&mut winners, &config.target.flavours);
    if config.target.versions == VersionRule::Release && config.target.aliases {
        let vendor = config.target.vendor.as_deref().unwrap_or(shared::config::DEFAULT_VENDOR);
        aliases::add_aliases(&mut winners, &mut plan.findings.rejected, vendor, &|id| manifest.contains(id));
    }
    plan.findings.inputs = state.inputs();
    let left = diff::against_manifest(winners, additional, manifest, &mut plan.findings);
    // A version a ref that was not planned published first would have won over this one (as in
    // a plan of every ref): not a change of its source.
    plan.findings.source_changed.retain(|change| {
        let upstream = manifest.packages.get(&PackageId::new(&change.package, &change.version).to_string());
        let key = upstream.and_then(|entry| entry.upstream.upstream());
        !key.and_then(|key| skipped.get(key)).is_some_and(|refs| refs.contains(&change.published_from))
    });
    plan.to_build = left.to_build;
    plan.additional = left.additional;
    plan.unchanged = left.unchanged;
    // Package by package (each package's versions in plan order), not tag by tag: the versions
    // of one package share most of their blobs, and a worker takes a window of consecutive jobs,
    // so each package's blobs are inflated by one worker's cache instead of by every worker's.
    plan.to_build.sort_by(|a, b| (&a.repo_url, &a.package).cmp(&(&b.repo_url, &b.package)));
    Ok(plan)
}

/// For [`Scope::Changed`]: per upstream index, the refs of its last complete build, if that build
/// had the rules (and program) of this one.
fn known_refs(config: &FarmConfig, manifest: &Manifest, scope: &Scope) -> HashMap<usize, BTreeMap<String, String>> {
    if !matches!(scope, Scope::Changed(_)) {
        return HashMap::new();
    }
    config
        .upstreams
        .iter()
        .enumerate()
        .filter(|(_, upstream)| scope.includes(&upstream.key))
        .filter_map(|(index, upstream)| {
            let record = manifest.upstreams.get(&upstream.key)?;
            (record.rules == rules_fingerprint(config, upstream)).then(|| (index, record.refs.clone()))
        })
        .collect()
}

/// The prebuilt archives of `repository.additional_packages`; unusable files are rejected.
async fn scan_additional(config: &FarmConfig, findings: &mut Findings) -> anyhow::Result<AdditionalPackages> {
    let Some(dir) = &config.repository.additional_packages else {
        return Ok(AdditionalPackages::default());
    };
    let shown = dir.display().to_string();
    let dir = dir.clone();
    let additional = tokio::task::spawn_blocking(move || AdditionalPackages::scan(&dir))
        .await
        .context("scan task panicked")?
        .with_context(|| format!("cannot read additional packages folder {shown}"))?;
    for (file, reason) in &additional.problems {
        findings.rejected.push(Rejection {
            upstream: Provenance::Additional,
            tag: None,
            dir: Some(file.clone()),
            reason: reason.clone(),
        });
    }
    Ok(additional)
}
