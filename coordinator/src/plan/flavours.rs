//! Flavours (spec 5.5): each flavour's rules applied to its product metapackages once every
//! upstream is planned.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value};
use shared::config::Flavour;

use super::candidate::Candidate;

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
        for name in types.keys().chain(require.keys()) {
            if flavour.rules_out(name, types.get(name).map(String::as_str)) {
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
