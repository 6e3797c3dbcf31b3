//! Repository health: whether what the farm publishes (or any Composer repository) installs.
//! [`index`] models the versions as Composer's solver sees them, [`consistency`] is the native
//! check of every requirement, [`probe`] runs the real `composer` client against a
//! [`server`] on loopback; [`report`] is what one assessment found, [`record`] keeps the state and
//! history, and [`page`] shows them on the status page.

pub mod consistency;
pub mod index;
pub mod page;
pub mod probe;
pub mod record;
pub mod report;
pub mod server;

use std::path::Path;

use shared::config::{Flavour, HealthConfig};
use shared::constraint::Stability;
use shared::metadata::PublishedVersion;
use tracing::{info, warn};

pub use consistency::{Consistency, Problem, ProblemKind};
pub use probe::{ProbeOutcome, ProbeStatus};
pub use record::HealthRecord;
pub use report::{ConsistencyView, HealthReport, HealthState, ProblemView};
use server::{Archives, ProbeServer};

/// What an assessment looks at besides the versions.
pub struct Subject<'a> {
    /// The `[health]` settings.
    pub health: &'a HealthConfig,
    /// The configured flavours (checked for leaks).
    pub flavours: &'a [Flavour],
    /// Where probes find the repository.
    pub served: Served,
    /// Folder for the probes' projects.
    pub scratch: &'a Path,
}

/// Where probes find the repository.
pub enum Served {
    /// Render these versions' metadata on a loopback server; archives from here.
    Loopback(Archives),
    /// The repository is already served at this URL.
    At(String),
}

/// Checks `versions` (the native check, then every probe) as `subject` says.
pub async fn assess(versions: &[PublishedVersion], subject: Subject<'_>) -> HealthReport {
    let health = subject.health;
    let checked_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let consistency = health.check.then(|| {
        let minimum_stability = Stability::parse(&health.minimum_stability).unwrap_or(Stability::Dev);
        let options =
            consistency::CheckOptions { minimum_stability, external: &health.external, flavours: subject.flavours };
        ConsistencyView::from(&consistency::check(&index::Index::new(versions), &options))
    });
    let probes = run_probes(versions, health, subject.served, subject.scratch).await;
    let failed = consistency.as_ref().is_some_and(|c| c.problem_count > 0)
        || probes.iter().any(|p| p.status == ProbeStatus::Failed);
    let ran = consistency.is_some() || probes.iter().any(|p| p.status != ProbeStatus::Skipped);
    let state = match (failed, ran) {
        (true, _) => HealthState::Broken,
        (false, true) => HealthState::Healthy,
        (false, false) => HealthState::Unknown,
    };
    info!(state = state.as_str(), problems = consistency.as_ref().map_or(0, |c| c.problem_count), "repository health");
    HealthReport { state, checked_at, consistency, probes, published: false, blocked: None }
}

async fn run_probes(
    versions: &[PublishedVersion],
    health: &HealthConfig,
    served: Served,
    scratch: &Path,
) -> Vec<ProbeOutcome> {
    if health.probes.is_empty() {
        return Vec::new();
    }
    if let Err(error) = std::fs::create_dir_all(scratch) {
        warn!(%error, "cannot make the probes' scratch folder");
    }
    let (_server, url) = match served {
        Served::At(url) => (None, url),
        Served::Loopback(archives) => {
            match ProbeServer::start(|base| shared::metadata::render(base, versions), archives).await {
                Ok(server) => {
                    let url = server.url.clone();
                    (Some(server), url)
                }
                Err(error) => {
                    let why = format!("cannot serve the repository on loopback: {error}");
                    return health.probes.iter().map(|p| failed_probe(&p.name, &why)).collect();
                }
            }
        }
    };
    let mut outcomes = Vec::with_capacity(health.probes.len());
    for probe in &health.probes {
        let outcome = probe::run(probe, &health.composer, &url, scratch).await;
        info!(probe = %probe.name, status = ?outcome.status, seconds = outcome.duration_seconds, "health probe");
        outcomes.push(outcome);
    }
    outcomes
}

fn failed_probe(name: &str, why: &str) -> ProbeOutcome {
    ProbeOutcome {
        name: name.to_owned(),
        status: ProbeStatus::Failed,
        duration_seconds: 0.0,
        explanation: why.to_owned(),
        resolved: Vec::new(),
    }
}
