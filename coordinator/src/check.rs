//! `coordinator check`: the health checks a build runs, against any Composer repository (ours
//! or someone else's, a URL or a folder): the native consistency check and, with a
//! configuration, its probes; with `--against`, file parity with another repository.

use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;
use shared::config::{Flavour, HealthConfig};

use crate::fetch::{Credentials, Limits, Source};
use crate::health::server::Archives;
use crate::health::{HealthReport, Served, Subject};
use crate::parity::ParityReport;

/// What to check and how.
pub struct CheckOptions {
    /// The repository: a URL (where `packages.json` is served) or a folder.
    pub from: String,
    /// Where a folder's metadata says it is published (its dist URLs start with it).
    pub public_base: String,
    /// `[health]` (checks, probes) and the flavours to check for leaks.
    pub health: HealthConfig,
    /// The configured flavours.
    pub flavours: Vec<Flavour>,
    /// Another repository to compare file by file.
    pub against: Option<String>,
    /// Credentials per host (`auth.json`), for both repositories.
    pub credentials: Credentials,
    /// Timeouts and limits of every download.
    pub limits: Limits,
    /// Hosts links may lead to besides each repository's own.
    pub allowed_hosts: Vec<String>,
    /// Archive pairs compared at once.
    pub concurrency: usize,
    /// Scratch folder (probe projects, downloaded archives).
    pub scratch: PathBuf,
}

/// What `check` found.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The repository checked.
    pub from: String,
    /// Package names it lists.
    pub packages: usize,
    /// Versions it lists.
    pub versions: usize,
    /// Metadata documents that could not be read.
    pub listing_problems: Vec<String>,
    /// The health checks' result, as in a build report.
    pub health: HealthReport,
    /// File parity with `--against`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parity: Option<ParityReport>,
}

impl CheckReport {
    /// Whether everything checked out.
    pub fn is_clean(&self) -> bool {
        self.listing_problems.is_empty()
            && !self.health.is_broken()
            && self.parity.as_ref().is_none_or(ParityReport::is_clean)
    }

    /// Lines for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "check {}: {} packages, {} versions", self.from, self.packages, self.versions);
        let unreadable: Vec<String> = self.listing_problems.iter().map(|p| format!("unreadable: {p}")).collect();
        out.push_str(&crate::fetch::summarise(&unreadable));
        out.push_str(&self.health.summary());
        if let Some(parity) = &self.parity {
            out.push_str(&parity.summary());
        }
        out
    }
}

/// Runs the checks.
pub async fn check(options: CheckOptions) -> anyhow::Result<CheckReport> {
    std::fs::create_dir_all(&options.scratch)?;
    let open = |from: &str| {
        Source::open(from, &options.public_base, options.limits.clone(), &options.allowed_hosts)
            .map(|source| source.with_credentials(options.credentials.clone()))
    };
    let source = open(&options.from)?;
    let mut listing = crate::listing::read(&source).await?;
    let served = if source.is_folder() {
        // Probes are served the folder's archives at their keys.
        let root = format!("{}/", source.base());
        for listed in &mut listing.versions {
            if let Ok(path) = &listed.dist {
                listed.version.key = path.strip_prefix(&root).unwrap_or(path).to_owned();
            }
        }
        Served::Loopback(Archives::Folder(PathBuf::from(source.base())))
    } else {
        Served::At(format!("{}/", source.base()))
    };
    let versions: Vec<_> = listing.versions.iter().map(|l| l.version.clone()).collect();
    let subject = Subject { health: &options.health, flavours: &options.flavours, served, scratch: &options.scratch };
    let mut health = crate::health::assess(&versions, subject).await;
    health.published = true;
    let parity = match &options.against {
        None => None,
        Some(against) => {
            let other = open(against)?;
            let theirs = crate::listing::read(&other).await?;
            listing.problems.extend(theirs.problems.iter().map(|p| format!("{against}: {p}")));
            Some(
                crate::parity::compare((&source, &listing), (&other, &theirs), &options.scratch, options.concurrency)
                    .await,
            )
        }
    };
    Ok(CheckReport {
        from: source.base(),
        packages: listing.packages,
        versions: listing.versions.len(),
        listing_problems: listing.problems,
        health,
        parity,
    })
}
