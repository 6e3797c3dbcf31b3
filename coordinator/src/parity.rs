//! File parity between two Composer repositories (`coordinator check --against`): every
//! name@version both publish is downloaded from both and compared by content
//! ([`crate::contents`]: paths, modes, bytes, composer.json as JSON), never by zip bytes; the
//! versions only one side publishes are listed.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use futures_util::StreamExt as _;
use serde::Serialize;

use crate::contents::{self, ContentLimits};
use crate::fetch::Source;
use crate::listing::{Listed, Listing};

/// One package version whose contents differ.
#[derive(Debug, Clone, Serialize)]
pub struct PackageParity {
    /// `name@version`.
    pub package: String,
    /// What differs, a line each.
    pub differences: Vec<String>,
    /// What differs but does not count (composer.json key order, a stripped top folder).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// The comparison's result.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParityReport {
    /// The other repository.
    pub against: String,
    /// name@version both publish, compared.
    pub compared: usize,
    /// Of which identical in content.
    pub identical: usize,
    /// The others, with their differences.
    pub differing: Vec<PackageParity>,
    /// Identical ones whose comparison still noted something.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub noted: Vec<PackageParity>,
    /// name@version only the checked repository publishes.
    pub only_here: Vec<String>,
    /// name@version only the other repository publishes.
    pub only_there: Vec<String>,
    /// Versions that could not be compared (download or archive errors).
    pub errors: Vec<String>,
}

impl ParityReport {
    /// Whether both publish the same versions with the same contents.
    pub fn is_clean(&self) -> bool {
        self.differing.is_empty() && self.only_here.is_empty() && self.only_there.is_empty() && self.errors.is_empty()
    }

    /// Lines for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "parity against {}: {} compared, {} identical, {} differ, {} only here, {} only there, {} errors",
            self.against,
            self.compared,
            self.identical,
            self.differing.len(),
            self.only_here.len(),
            self.only_there.len(),
            self.errors.len()
        );
        let mut lines = Vec::new();
        for package in &self.differing {
            lines.push(format!("differs: {}", package.package));
            lines.extend(package.differences.iter().map(|line| format!("  {line}")));
        }
        for (what, ids) in [("only here", &self.only_here), ("only there", &self.only_there), ("error", &self.errors)] {
            lines.extend(ids.iter().map(|id| format!("{what}: {id}")));
        }
        // Both repositories' names, escaped, and at most a screenful (the report has them all).
        out.push_str(&crate::fetch::summarise(&lines));
        out
    }
}

/// Compares what `ours` and `theirs` both list, `concurrency` pairs at once, downloading into
/// `scratch` (each pair's files are removed once compared).
pub async fn compare(
    ours: (&Source, &Listing),
    theirs: (&Source, &Listing),
    scratch: &Path,
    concurrency: usize,
) -> ParityReport {
    let index = |listing: &Listing| -> BTreeMap<String, Listed> {
        listing.versions.iter().map(|l| (l.id().to_lowercase(), l.clone())).collect()
    };
    let (here, there) = (index(ours.1), index(theirs.1));
    let mut report = ParityReport { against: theirs.0.base(), ..ParityReport::default() };
    report.only_here = here.keys().filter(|id| !there.contains_key(*id)).cloned().collect();
    report.only_there = there.keys().filter(|id| !here.contains_key(*id)).cloned().collect();
    let pairs: Vec<(&Listed, &Listed)> =
        here.iter().filter_map(|(id, left)| there.get(id).map(|right| (left, right))).collect();
    report.compared = pairs.len();
    let mut results = futures_util::stream::iter(pairs.into_iter().map(|(left, right)| async move {
        (left.id(), compare_pair((ours.0, left), (theirs.0, right), scratch).await)
    }))
    .buffer_unordered(concurrency.max(1));
    while let Some((id, result)) = results.next().await {
        match result {
            Ok(comparison) if comparison.is_identical() => {
                report.identical += 1;
                if !comparison.notes.is_empty() {
                    report.noted.push(PackageParity { package: id, differences: Vec::new(), notes: comparison.notes });
                }
            }
            Ok(comparison) => report.differing.push(PackageParity {
                package: id,
                differences: comparison.differences.iter().map(ToString::to_string).collect(),
                notes: comparison.notes,
            }),
            Err(error) => report.errors.push(format!("{id}: {error}")),
        }
    }
    report.differing.sort_by(|a, b| a.package.cmp(&b.package));
    report.noted.sort_by(|a, b| a.package.cmp(&b.package));
    report.errors.sort();
    report
}

async fn compare_pair(
    left: (&Source, &Listed),
    right: (&Source, &Listed),
    scratch: &Path,
) -> Result<contents::Comparison, String> {
    let (a, b) = (download(left.0, left.1, scratch).await?, download(right.0, right.1, scratch).await?);
    tokio::task::spawn_blocking(move || {
        let limits = ContentLimits::default();
        let read = |file: &tempfile::NamedTempFile, side: &str| {
            contents::read_archive(file.path(), &limits).map_err(|e| format!("{side} archive: {e}"))
        };
        Ok(contents::compare(&read(&a, "our")?, &read(&b, "their")?))
    })
    .await
    .map_err(|e| format!("comparison panicked: {e}"))?
}

async fn download(source: &Source, listed: &Listed, scratch: &Path) -> Result<tempfile::NamedTempFile, String> {
    // The link as listed (a folder's may have been made relative), once it is known to resolve.
    listed.dist.as_ref().map_err(Clone::clone)?;
    let url = &listed.version.key;
    let file = tempfile::NamedTempFile::new_in(scratch).map_err(|e| format!("scratch file: {e}"))?;
    let mut handle = file.reopen().map_err(|e| format!("scratch file: {e}"))?;
    match source.archive(url, &mut handle).await {
        Ok(Some(_)) => Ok(file),
        Ok(None) => Err(format!("{url}: HTTP 404")),
        Err(error) => Err(error.to_string()),
    }
}
