//! The plan against the manifest: which winning candidates and prebuilt archives are new, which
//! are already published (and whether their source moved since), and which a prebuilt archive
//! provides instead of git.

use std::collections::HashSet;

use shared::additional::{AdditionalPackage, AdditionalPackages};

use super::candidate::Candidate;
use super::findings::{Findings, Provided, Rejection, SourceChanged};
use crate::manifest::{Manifest, ManifestEntry, PackageId, Provenance};

/// What is left to do after comparing with the manifest.
#[derive(Debug, Default)]
pub struct Left {
    /// Candidates to build.
    pub to_build: Vec<Candidate>,
    /// Prebuilt archives to publish.
    pub additional: Vec<AdditionalPackage>,
    /// name@version already published.
    pub unchanged: Vec<String>,
}

/// Compares the winners and the prebuilt archives with what the manifest has published.
pub fn against_manifest(
    winners: Vec<Candidate>,
    additional: AdditionalPackages,
    manifest: &Manifest,
    findings: &mut Findings,
) -> Left {
    let mut left = Left::default();
    let mut built_ids = HashSet::new();
    for candidate in winners {
        // As the reference: a name@version a prebuilt archive provides is never written from git.
        let (final_name, final_version) = &candidate.final_identity;
        if let Some(file) = additional.provider(final_name, final_version) {
            findings.provided.push(Provided {
                package: candidate.package.clone(),
                version: candidate.version.clone(),
                upstream: candidate.upstream.clone(),
                tag: candidate.tag.clone(),
                file: file.to_owned(),
            });
            continue;
        }
        built_ids.insert(candidate.id());
        let published = manifest.packages.get(&candidate.id());
        match published {
            // A branch version moves: a new content digest (so a new key) is a new archive.
            Some(published) if candidate.branch && published.key != candidate.target_key() => {
                left.to_build.push(candidate);
            }
            Some(published) => {
                if let Some(what) = source_difference(published, &candidate) {
                    findings.source_changed.push(SourceChanged {
                        package: candidate.package.clone(),
                        version: candidate.version.clone(),
                        published_from: published.git_ref.clone(),
                        now_from: candidate.tag.clone(),
                        what,
                    });
                }
                left.unchanged.push(candidate.id());
            }
            None => left.to_build.push(candidate),
        }
    }
    for package in additional.packages {
        let id = PackageId::new(&package.name, &package.version).to_string();
        if built_ids.contains(&id) {
            findings.rejected.push(Rejection {
                upstream: Provenance::Additional,
                tag: None,
                dir: Some(package.file_name.clone()),
                reason: format!("{id} is also built from git (its file name does not follow <vendor>-<name>-<version>.zip); not published"),
            });
        } else if manifest.contains(&id) {
            left.unchanged.push(id);
        } else {
            left.additional.push(package);
        }
    }
    left
}

/// How today's winning candidate differs from what was published, if it does (only for entries
/// this farm built from the same upstream; prebuilt and adopted archives have no git source).
fn source_difference(published: &ManifestEntry, candidate: &Candidate) -> Option<String> {
    if published.upstream != candidate.upstream {
        return None;
    }
    if !published.composer.is_pretty(&candidate.composer_json) {
        Some("the generated composer.json differs".to_owned())
    } else if published.tree_id != candidate.tree_id.to_string() {
        Some(format!("the package tree differs ({} -> {})", published.tree_id, candidate.tree_id))
    } else {
        None
    }
}
