//! `coordinator verify`: reads the published repository over HTTP as a Composer client does
//! (packages.json, every p2 file) and checks that every dist URL resolves and its sha1 matches,
//! through [`crate::fetch`]: timeouts, byte and version limits, links on the repository's origin.

use std::fmt::Write as _;

use futures_util::StreamExt as _;
use tracing::info;

use crate::fetch::{Limits, Source};

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
) -> anyhow::Result<VerifyReport> {
    let source = Source::http(base_url, limits, allowed_hosts)?;
    let listing = crate::listing::read(&source).await?;
    let mut report = VerifyReport { packages: listing.packages, problems: listing.problems, ..VerifyReport::default() };
    let mut dists = Vec::with_capacity(listing.versions.len());
    for listed in &listing.versions {
        match (&listed.dist, listed.version.sha1.is_empty()) {
            (Ok(url), false) => dists.push((listed.label(), url.clone(), listed.version.sha1.clone())),
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
            .map(|(label, url, expected)| async move { (label, check_archive(source, &url, &expected).await) }),
    )
    .buffer_unordered(concurrency.max(1));
    while let Some((label, outcome)) = checks.next().await {
        match outcome {
            Ok(size) => report.bytes += size,
            Err(problem) => report.problems.push(format!("{label}: {problem}")),
        }
    }
    report.problems.sort();
    Ok(report)
}

/// Downloads an archive (streamed, within the archive limit) and compares its sha1; returns its
/// size.
async fn check_archive(source: &Source, url: &str, expected: &str) -> Result<u64, String> {
    let digests = source.digest(url).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{url}: HTTP 404"))?;
    if digests.sha1 != expected {
        return Err(format!("{url}: sha1 {}, the metadata says {expected}", digests.sha1));
    }
    Ok(digests.size)
}
