//! Each build's signed provenance, published beside the metadata: the archives no statement
//! names yet (those the build recorded: built, resumed, prebuilt or adopted; and those an earlier
//! build recorded unsigned) as subjects, the git refs they were built from
//! as materials, signed with the farm's key (see [`crate::provenance`]), at
//! `provenance/<build id>.intoto.jsonl`, listed in `provenance/index.json` for verifiers.
//!
//! Written after the archives are stored and before the metadata names them: a client never sees
//! an archive in the metadata whose statement is not there yet.

use std::collections::BTreeMap;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use shared::config::{FarmConfig, redact_url};
use shared::storage::Storage;
use tracing::info;

use crate::manifest::{Manifest, ManifestEntry};
use crate::provenance::{BuildFacts, Material, Signer, Subject};

/// The list of every statement published, for verifiers of a remote repository.
pub const INDEX_KEY: &str = "provenance/index.json";

/// Where a build's statement is published.
pub fn statement_key(build_id: &str) -> String {
    format!("provenance/{build_id}.intoto.jsonl")
}

/// `provenance/index.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Index {
    /// Statement keys, oldest first.
    pub statements: Vec<String>,
}

/// The signing key: `FARM_PROVENANCE_KEY` (the key itself), else `repository.provenance_key`
/// (a file); `None` when neither is set.
pub fn signer(config: &FarmConfig) -> anyhow::Result<Option<Signer>> {
    if let Some(text) = std::env::var("FARM_PROVENANCE_KEY").ok().filter(|t| !t.trim().is_empty()) {
        return Ok(Some(Signer::from_pem(&text).context("FARM_PROVENANCE_KEY is not a usable ed25519 key")?));
    }
    match &config.repository.provenance_key {
        Some(path) => Ok(Some(Signer::load(path).context("repository.provenance_key is not a usable ed25519 key")?)),
        None => Ok(None),
    }
}

/// The entries no statement names yet.
pub fn unsigned(manifest: &Manifest) -> Vec<ManifestEntry> {
    manifest.packages.values().filter(|entry| entry.attested.is_none()).cloned().collect()
}

/// What one statement covers.
#[derive(Debug, Clone)]
pub struct Attested<'a> {
    /// The build id.
    pub build_id: &'a str,
    /// When it started (RFC 3339).
    pub started_on: &'a str,
    /// Its recorded inputs (the report's `inputs`).
    pub inputs: serde_json::Value,
}

/// Signs and publishes the statement of `attested` naming `entries`; returns its key.
pub async fn publish(
    storage: &impl Storage,
    config: &FarmConfig,
    entries: &[ManifestEntry],
    signer: &Signer,
    attested: Attested<'_>,
) -> anyhow::Result<String> {
    let facts = BuildFacts {
        build_id: attested.build_id.to_owned(),
        started_on: attested.started_on.to_owned(),
        finished_on: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        farm_version: env!("CARGO_PKG_VERSION").to_owned(),
        inputs: attested.inputs,
        rules: rules(config, entries),
        subjects: entries.iter().map(subject).collect(),
        materials: entries.iter().filter_map(material).collect(),
    };
    let key = statement_key(attested.build_id);
    storage
        .put_replace(&key, crate::provenance::sign(&facts, signer))
        .await
        .context("cannot publish the provenance")?;
    let mut index = match storage.get(INDEX_KEY).await? {
        Some(bytes) => serde_json::from_slice(&bytes).unwrap_or_default(),
        None => Index::default(),
    };
    if !index.statements.contains(&key) {
        index.statements.push(key.clone());
    }
    let bytes = serde_json::to_vec(&index).expect("index serialises");
    storage.put_replace(INDEX_KEY, bytes).await.context("cannot publish the provenance index")?;
    info!(statement = %key, subjects = facts.subjects.len(), key_id = %signer.key_id(), "provenance signed");
    Ok(key)
}

fn subject(entry: &ManifestEntry) -> Subject {
    Subject {
        name: entry.name.clone(),
        version: entry.version.clone(),
        key: entry.key.clone(),
        sha256: entry.sha256.clone(),
        sha1: entry.sha1.clone(),
    }
}

/// The git ref an entry was built from (prebuilt and adopted archives have none).
fn material(entry: &ManifestEntry) -> Option<Material> {
    (!entry.commit.is_empty()).then(|| Material {
        repo: redact_url(&entry.repo),
        git_ref: entry.git_ref.clone(),
        commit: entry.commit.clone(),
    })
}

/// The rules fingerprint of every upstream the entries came from.
fn rules(config: &FarmConfig, entries: &[ManifestEntry]) -> BTreeMap<String, String> {
    config
        .upstreams
        .iter()
        .filter(|upstream| entries.iter().any(|entry| entry.upstream.is_upstream(&upstream.key)))
        .map(|upstream| (upstream.key.clone(), crate::plan::rules_fingerprint(config, upstream)))
        .collect()
}
