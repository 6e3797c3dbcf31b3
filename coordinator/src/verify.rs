//! `coordinator verify`: reads the published repository over HTTP as a Composer client does
//! (packages.json, every p2 file) and checks that every dist URL resolves and its sha1 matches,
//! through [`crate::fetch`]: timeouts, byte and version limits, links on the repository's origin.
//!
//! With a public key it also checks the signed provenance: every statement that
//! `provenance/index.json` lists must be signed with that key, and every archive (by name,
//! version and the sha256 of the bytes downloaded) must be a subject of one of them.

use std::collections::HashSet;
use std::fmt::Write as _;

use shared::archive::ArchiveDigest;

use futures_util::StreamExt as _;
use tracing::info;

use crate::fetch::{Limits, Source};
use crate::provenance::Verifier;

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Package names listed.
    pub packages: usize,
    /// Versions (dist archives) checked.
    pub archives: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Everything wrong, one line each.
    pub problems: Vec<String>,
    /// Signed statements that verified (with a key).
    pub statements: Option<usize>,
}

impl VerifyReport {
    /// A summary for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "verify: {} packages, {} archives ({} bytes) checked, {} problems",
            self.packages,
            self.archives,
            self.bytes,
            self.problems.len()
        );
        if let Some(statements) = self.statements {
            let _ = writeln!(out, "verify: {statements} signed provenance statements verified");
        }
        out.push_str(&crate::fetch::summarise(&self.problems));
        out
    }
}

/// Checks the repository served at `base_url` with up to `concurrency` downloads at once, within
/// `limits`; links may lead to `allowed_hosts` besides the repository's own origin.
pub async fn verify(
    base_url: &str,
    concurrency: usize,
    limits: Limits,
    allowed_hosts: &[String],
    provenance: Option<&Verifier>,
) -> anyhow::Result<VerifyReport> {
    let source = Source::http(base_url, limits, allowed_hosts)?;
    let attested = match provenance {
        Some(verifier) => Some(attested_subjects(&source, verifier).await?),
        None => None,
    };
    let listing = crate::listing::read(&source).await?;
    let mut report = VerifyReport { packages: listing.packages, problems: listing.problems, ..VerifyReport::default() };
    let mut dists = Vec::with_capacity(listing.versions.len());
    for listed in &listing.versions {
        match (&listed.dist, listed.version.sha1.is_empty()) {
            (Ok(url), false) => dists.push((listed, url.clone())),
            (Err(error), _) => report.problems.push(format!("{}: {error}", listed.label())),
            (Ok(_), true) => report.problems.push(format!("{}: no shasum", listed.label())),
        }
    }
    report.archives = dists.len();
    info!(archives = dists.len(), "checking archives");
    let source = &source;
    let mut checks = futures_util::stream::iter(
        dists
            .into_iter()
            .map(|(listed, url)| async move { (listed, check_archive(source, &url, &listed.version.sha1).await) }),
    )
    .buffer_unordered(concurrency.max(1));
    while let Some((listed, outcome)) = checks.next().await {
        match outcome {
            Ok(digest) => {
                report.bytes += digest.size;
                if let Some(attested) = &attested
                    && !attested.subjects.contains(&(
                        listed.version.name.to_lowercase(),
                        listed.version.version.clone(),
                        digest.sha256.clone(),
                    ))
                {
                    report.problems.push(format!(
                        "{}: no signed statement names this archive (sha256 {})",
                        listed.label(),
                        digest.sha256
                    ));
                }
            }
            Err(problem) => report.problems.push(format!("{}: {problem}", listed.label())),
        }
    }
    if let Some(attested) = attested {
        report.statements = Some(attested.statements);
        report.problems.extend(attested.problems);
    }
    report.problems.sort();
    Ok(report)
}

/// Downloads an archive (streamed, within the archive limit) and compares its sha1; returns its
/// size and digests.
async fn check_archive(source: &Source, url: &str, expected: &str) -> Result<ArchiveDigest, String> {
    let digests = source.digest(url).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{url}: HTTP 404"))?;
    if digests.sha1 != expected {
        return Err(format!("{url}: sha1 {}, the metadata says {expected}", digests.sha1));
    }
    Ok(digests)
}

/// What the repository's signed statements vouch for.
struct Attested {
    /// (lower-cased name, version, sha256) of every subject of a statement that verified.
    subjects: HashSet<(String, String, String)>,
    /// Statements that verified.
    statements: usize,
    /// Statements that did not, or could not be read.
    problems: Vec<String>,
}

/// Reads every statement `provenance/index.json` lists and checks it with `verifier`.
async fn attested_subjects(source: &Source, verifier: &Verifier) -> anyhow::Result<Attested> {
    let mut attested = Attested { subjects: HashSet::new(), statements: 0, problems: Vec::new() };
    let index = source.metadata(crate::pipeline::attest::INDEX_KEY).await?;
    let Some(index) = index else {
        attested
            .problems
            .push(format!("{}: no provenance index; nothing is signed", crate::pipeline::attest::INDEX_KEY));
        return Ok(attested);
    };
    let keys: Vec<String> =
        index["statements"].as_array().into_iter().flatten().filter_map(|k| k.as_str().map(str::to_owned)).collect();
    for key in keys {
        // A statement file is read whole to be verified (within the archive limit).
        let mut bytes = Vec::new();
        match source.archive(&key, &mut bytes).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                attested.problems.push(format!("{key}: listed in the provenance index but missing"));
                continue;
            }
            Err(error) => {
                attested.problems.push(format!("{key}: {error}"));
                continue;
            }
        }
        match crate::provenance::open_all(&bytes, verifier) {
            Ok(statements) => {
                for statement in statements {
                    attested.statements += 1;
                    attested.subjects.extend(
                        statement
                            .subjects
                            .into_iter()
                            .map(|s| (s.name.to_lowercase(), s.version, s.sha256.to_lowercase())),
                    );
                }
            }
            Err(error) => attested.problems.push(format!("{key}: {error}")),
        }
    }
    Ok(attested)
}
