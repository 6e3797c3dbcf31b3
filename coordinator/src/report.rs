//! The build report: what was built, what was already published, what failed and why.

use std::fmt::Write as _;

use serde::Serialize;

use crate::health::HealthReport;
use crate::manifest::Provenance;
use crate::plan::findings::{Findings, Provided, Rejection, RepositoryFailure, SourceChanged, UpstreamTags};
use crate::plan::flavours::FlavourNote;
use crate::plan::inputs::Inputs;

/// The outcome of one build, per package.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    /// Build id.
    pub build_id: String,
    /// Start time (RFC 3339, UTC).
    pub started_at: String,
    /// Wall time in seconds.
    pub duration_seconds: f64,
    /// Of which fetching upstreams and planning.
    pub planning_seconds: f64,
    /// `embedded` (in-process workers) or `distributed` (RabbitMQ).
    pub mode: String,
    /// In-process workers used (embedded), or planning parallelism (distributed).
    pub workers: usize,
    /// Archives built and stored by this build.
    pub built: Vec<PackageOutcome>,
    /// name@version already published before this build (nothing done).
    pub unchanged: Vec<String>,
    /// name@version whose archive a stopped build had stored without recording it: checked and
    /// recorded, not built again.
    pub resumed: Vec<String>,
    /// What started the build (`command line`, `poll`, `github push ...`).
    pub trigger: String,
    /// Packages that should have been built but were not.
    pub failed: Vec<PackageOutcome>,
    /// name@version not built from git because a prebuilt archive provides it.
    pub provided: Vec<Provided>,
    /// Published name@version whose source now differs (moved tag, new earlier tag, changed pin
    /// or transform): the published archive is kept, as a published version never changes.
    pub source_changed: Vec<SourceChanged>,
    /// Upstream input that gives no package (invalid composer.json, missing name or version,
    /// tags that are not versions, missing folders), as the reference skips it.
    pub rejected: Vec<Rejection>,
    /// Upstreams that could not be read at all.
    pub repository_failures: Vec<RepositoryFailure>,
    /// Tags built per upstream.
    pub tags: Vec<UpstreamTags>,
    /// Messages that were not jobs, dead-lettered while this build ran (jobs of this build that
    /// were dead-lettered are in `failed`).
    pub dead_letters: Vec<DeadLetterNote>,
    /// The explicit inputs the versions and metadata were made from (nightly date, release,
    /// upstream versions, Packagist list, base dependencies, resolved templates).
    pub inputs: Inputs,
    /// What each flavour's rules removed from its product metapackage.
    pub flavours: Vec<FlavourNote>,
    /// Whether the repository as published (or, with a blocking gate, as it would have been)
    /// installs: the native check and the probes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthReport>,
    /// The coordinator process's peak resident memory when the report was saved, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

/// A dead-lettered message that is not a job of any build.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetterNote {
    /// Why it was dead-lettered.
    pub reason: String,
    /// The start of its body.
    pub excerpt: String,
}

/// One package in the report.
#[derive(Debug, Clone, Serialize)]
pub struct PackageOutcome {
    /// Composer name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Upstream key, or what else made it.
    pub upstream: Provenance,
    /// Tag it was built from.
    pub tag: String,
    /// Archive size, when built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Archive sha1, when built.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Warnings (e.g. symlinks pointing outside the repository).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl BuildReport {
    /// A report that starts with what planning found.
    pub fn planned(findings: Findings) -> BuildReport {
        let Findings { rejected, repository_failures, tags, provided, source_changed, flavours, inputs } = findings;
        BuildReport {
            rejected,
            repository_failures,
            tags,
            provided,
            source_changed,
            flavours,
            inputs,
            ..Default::default()
        }
    }

    /// True when nothing failed (rejected upstream input does not count unless `strict`) and
    /// the metadata was published (a blocking health gate may keep it back).
    pub fn succeeded(&self, strict: bool) -> bool {
        self.failed.is_empty()
            && self.repository_failures.is_empty()
            && self.health.as_ref().is_none_or(|h| h.blocked.is_none())
            && (!strict || (self.rejected.is_empty() && self.source_changed.is_empty()))
    }

    /// A human-readable summary for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "build {}: {} built, {} already published, {} resumed, {} provided by additional packages, {} failed, {} repositories failed, {} upstream inputs rejected ({:.1}s, {}, {} workers)",
            self.build_id,
            self.built.len(),
            self.unchanged.len(),
            self.resumed.len(),
            self.provided.len(),
            self.failed.len(),
            self.repository_failures.len(),
            self.rejected.len(),
            self.duration_seconds,
            self.mode,
            self.workers,
        );
        if !self.inputs.versions.is_empty() && self.inputs.versions != "tagged" {
            let inputs = &self.inputs;
            let _ = writeln!(
                out,
                "  inputs: {} versions{}{}{}{}",
                inputs.versions,
                inputs.date.as_ref().map(|d| format!(", date {d}")).unwrap_or_default(),
                inputs.release.as_ref().map(|r| format!(", release {r}")).unwrap_or_default(),
                inputs
                    .upstream_versions
                    .as_ref()
                    .map(|f| format!(", upstream versions {} ({} entries)", f.path, f.entries))
                    .unwrap_or_default(),
                inputs.base_require.as_ref().map(|b| format!(", base require {b}")).unwrap_or_default(),
            );
        }
        for failure in &self.repository_failures {
            let _ = writeln!(out, "  repository failed: {} ({}): {}", failure.upstream, failure.url, failure.reason);
        }
        for failed in &self.failed {
            let reason = failed.reason.as_deref().unwrap_or("unknown");
            let _ = writeln!(
                out,
                "  failed: {} {} ({} {}): {reason}",
                failed.package, failed.version, failed.upstream, failed.tag
            );
        }
        for letter in &self.dead_letters {
            let _ = writeln!(out, "  dead-lettered message (not a job): {} [{}]", letter.reason, letter.excerpt);
        }
        for rejection in &self.rejected {
            let tag = rejection.tag.as_deref().unwrap_or("-");
            let dir = rejection.dir.as_deref().map(|d| if d.is_empty() { "<root>" } else { d }).unwrap_or("-");
            let _ = writeln!(out, "  rejected: {} {tag} {dir}: {}", rejection.upstream, rejection.reason);
        }
        for built in self.built.iter().filter(|b| !b.warnings.is_empty()) {
            for warning in &built.warnings {
                let _ = writeln!(out, "  warning: {} {}: {warning}", built.package, built.version);
            }
        }
        if let Some(health) = &self.health {
            out.push_str(&health.summary());
        }
        out
    }
}
