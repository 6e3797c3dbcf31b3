//! Recording: a job's outcome, a resumed archive or a prebuilt package becomes a manifest entry
//! and a report line. Storage is read or written before the manifest is locked, never under it.

use shared::additional::AdditionalPackage;
use shared::config::redact_url;
use shared::messages::Outcome;
use shared::metadata::ComposerJson;
use shared::storage::Storage;
use tokio::sync::Mutex;
use tracing::warn;

use crate::manifest::{Manifest, ManifestEntry, Origin, Provenance, StoredArchive};
use crate::plan::candidate::Candidate;
use crate::report::{BuildReport, PackageOutcome};

/// Records a job's outcome in the manifest and the report.
pub async fn outcome(
    storage: &impl Storage,
    manifest: &Mutex<Manifest>,
    report: &mut BuildReport,
    candidate: &Candidate,
    outcome: Outcome,
) -> anyhow::Result<()> {
    let mut line = outcome_for(candidate);
    match outcome {
        Outcome::Built { key, size, sha1, sha256, warnings } => {
            let composer = ComposerJson::of_pretty(&candidate.composer_json);
            let stored = StoredArchive { key, size, sha1: sha1.clone(), sha256 };
            manifest.lock().await.record(entry_of(candidate, stored, composer));
            line.size = Some(size);
            line.sha1 = Some(sha1);
            line.warnings = warnings;
            report.built.push(line);
        }
        Outcome::Failed { reason } => {
            line.reason = Some(match keep_published(storage, manifest, candidate).await {
                Some(note) => format!("{reason}; {note}"),
                None => reason,
            });
            report.failed.push(line);
        }
    }
    Ok(())
}

/// A report line for a candidate, before its outcome is known.
pub fn outcome_for(candidate: &Candidate) -> PackageOutcome {
    PackageOutcome {
        package: candidate.package.clone(),
        version: candidate.version.clone(),
        upstream: candidate.upstream.clone(),
        tag: candidate.tag.clone(),
        size: None,
        sha1: None,
        reason: None,
        warnings: Vec::new(),
    }
}

/// The manifest entry for a candidate's archive.
fn entry_of(candidate: &Candidate, stored: StoredArchive, composer: ComposerJson) -> ManifestEntry {
    let origin = Origin {
        provenance: candidate.upstream.clone(),
        repo: redact_url(&candidate.repo_url),
        git_ref: candidate.tag.clone(),
        commit: candidate.commit.to_string(),
        tree_id: candidate.tree_id.to_string(),
    };
    ManifestEntry::new(candidate.package.clone(), candidate.version.clone(), stored, composer, origin)
}

/// The manifest entry for an archive a stopped build stored: only if it is there, is this
/// package at this version, and carries exactly the composer.json the plan generated.
pub async fn stored_archive_of(storage: &impl Storage, candidate: &Candidate) -> Option<ManifestEntry> {
    let key = candidate.target_key();
    let bytes = storage.get(&key).await.ok()??;
    let composer = shared::additional::composer_json_of_zip(std::io::Cursor::new(&bytes)).ok()?;
    let expected: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&candidate.composer_json).ok()?;
    if composer != expected {
        warn!(%key, "a stored archive does not carry the planned composer.json; building it again");
        return None;
    }
    Some(entry_of(candidate, StoredArchive::of_bytes(key, &bytes), ComposerJson::of_map(&composer)))
}

/// A job failed but an archive exists at its key that the manifest does not know (published
/// before the farm managed this output, or the manifest was lost): keep it, and index it with its
/// own bytes' sha1 so the metadata stays true. Returns a note for the report.
async fn keep_published(storage: &impl Storage, manifest: &Mutex<Manifest>, candidate: &Candidate) -> Option<String> {
    let key = candidate.target_key();
    if manifest.lock().await.packages.get(&candidate.id()).is_some_and(|entry| entry.key == key) {
        return None;
    }
    let bytes = storage.get(&key).await.ok()??;
    let composer = match shared::additional::composer_json_of_zip(std::io::Cursor::new(&bytes)) {
        Ok(composer) => composer,
        Err(error) => {
            let note = format!("the object at {key} is not a usable package ({error}); it is left out of the metadata");
            return Some(note);
        }
    };
    let identity = (composer.get("name").and_then(|v| v.as_str()), composer.get("version").and_then(|v| v.as_str()));
    if identity != (Some(candidate.package.as_str()), Some(candidate.version.as_str())) {
        return Some(format!("the object at {key} is another package; it is left out of the metadata"));
    }
    let stored = StoredArchive::of_bytes(key, &bytes);
    let sha1 = stored.sha1.clone();
    // Not built from git by this farm: no source ref, commit or tree to record.
    let composer = ComposerJson::of_map(&composer);
    let entry =
        ManifestEntry::new(candidate.package.clone(), candidate.version.clone(), stored, composer, Origin::adopted());
    manifest.lock().await.record(entry);
    Some(format!("the published archive (sha1 {sha1}) is kept and indexed"))
}

/// Publishes a prebuilt archive as it is (same create-if-absent guard as built archives).
pub async fn additional(
    storage: &impl Storage,
    manifest: &Mutex<Manifest>,
    report: &mut BuildReport,
    package: AdditionalPackage,
) {
    let mut outcome = PackageOutcome {
        package: package.name.clone(),
        version: package.version.clone(),
        upstream: Provenance::Additional,
        tag: package.file_name.clone(),
        size: Some(package.size),
        sha1: Some(package.sha1.clone()),
        reason: None,
        warnings: Vec::new(),
    };
    // Publish a copy: storage may link its input into place, and the operator's file must stay theirs.
    let copy = tempfile::NamedTempFile::new_in(storage.scratch_dir())
        .and_then(|temp| std::fs::copy(&package.path, temp.path()).map(|_| temp.into_temp_path()));
    let stored = match copy {
        Ok(copy) => match shared::archive::digest_file(&copy) {
            Ok(digest) => storage.put_archive(&package.key(), &copy, &digest).await.map_err(|e| e.to_string()),
            Err(error) => Err(format!("cannot read {}: {error}", package.path.display())),
        },
        Err(error) => Err(format!("cannot copy {}: {error}", package.path.display())),
    };
    if let Err(reason) = stored {
        outcome.reason = Some(reason);
        report.failed.push(outcome);
        return;
    }
    let stored = StoredArchive { key: package.key(), size: package.size, sha1: package.sha1, sha256: package.sha256 };
    let origin = Origin {
        provenance: Provenance::Additional,
        repo: package.path.display().to_string(),
        git_ref: package.file_name,
        commit: String::new(),
        tree_id: String::new(),
    };
    let composer = ComposerJson::of_map(&package.composer);
    manifest.lock().await.record(ManifestEntry::new(package.name, package.version, stored, composer, origin));
    report.built.push(outcome);
}

/// Report lines in name, version order.
pub fn sort_outcomes(report: &mut BuildReport) {
    let key = |o: &PackageOutcome| (o.package.clone(), o.version.clone());
    report.built.sort_by_key(key);
    report.failed.sort_by_key(key);
    report.unchanged.sort();
}
