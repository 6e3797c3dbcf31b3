//! The repository's health over time (`.farm/health.json`): healthy, broken or unknown and since
//! when, the last healthy build, the latest report, and the last builds' results per probe.

use serde::{Deserialize, Serialize};
use shared::storage::{STATE_PREFIX, Storage};
use tracing::warn;

use super::probe::ProbeStatus;
use super::report::{HealthReport, HealthState};

/// Builds remembered.
pub const HISTORY: usize = 20;
/// Problems kept in the stored latest report (the build report has them all).
pub const KEPT_PROBLEMS: usize = 200;

/// Where the record lives.
pub fn key() -> String {
    format!("{STATE_PREFIX}/health.json")
}

/// One build's health, for the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BuildHealth {
    /// The build.
    pub build_id: String,
    /// When its result was checked (RFC 3339).
    pub checked_at: String,
    /// Its state.
    pub state: HealthState,
    /// Problems the native check found.
    pub problems: usize,
    /// Whether its metadata was published (a blocking gate keeps a broken one back).
    pub published: bool,
    /// Each probe's result.
    pub probes: Vec<ProbeRun>,
}

/// A probe's result in one build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeRun {
    /// The probe.
    pub name: String,
    /// Passed, failed or skipped.
    pub status: ProbeStatus,
    /// Seconds it took.
    pub duration_seconds: f64,
}

/// What is remembered of the repository's health.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// The current state.
    pub state: HealthState,
    /// Since when (RFC 3339) and since which build it has been in this state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
    /// The build that brought the current state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_build: Option<String>,
    /// The last build whose result was healthy, and when it was checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_healthy_build: Option<String>,
    /// When that was (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_healthy_at: Option<String>,
    /// The latest report (at most [`KEPT_PROBLEMS`] problems).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest: Option<HealthReport>,
    /// The last [`HISTORY`] builds, newest first.
    #[serde(default)]
    pub builds: Vec<BuildHealth>,
}

impl HealthRecord {
    /// The stored record; an unreadable one starts afresh (it is history, not state the build
    /// depends on).
    pub async fn load(storage: &impl Storage) -> HealthRecord {
        match storage.get(&key()).await {
            Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                warn!(%error, "the health record is unreadable; starting a new one");
                HealthRecord::default()
            }),
            Ok(None) => HealthRecord::default(),
            Err(error) => {
                warn!(error = %error, "cannot read the health record; starting a new one");
                HealthRecord::default()
            }
        }
    }

    /// Stores the record.
    pub async fn save(&self, storage: &impl Storage) -> Result<(), shared::storage::StorageError> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("health record serialises");
        bytes.push(b'\n');
        storage.put_replace(&key(), bytes).await
    }

    /// Adds a build's result: the state (and since when), the last healthy build, the history.
    pub fn add(&mut self, build_id: &str, report: &HealthReport) {
        if report.state == HealthState::Unknown {
            // Nothing was checked: the last known state stands, the history says so.
        } else if self.since.is_none() || self.state != report.state {
            self.state = report.state;
            self.since = Some(report.checked_at.clone());
            self.since_build = Some(build_id.to_owned());
        }
        if report.state == HealthState::Healthy {
            self.last_healthy_build = Some(build_id.to_owned());
            self.last_healthy_at = Some(report.checked_at.clone());
        }
        let problems = report.consistency.as_ref().map_or(0, |c| c.problems.len());
        let mut latest = report.clone();
        if let Some(consistency) = &mut latest.consistency {
            consistency.problems.truncate(KEPT_PROBLEMS);
        }
        self.latest = Some(latest);
        let probes = report
            .probes
            .iter()
            .map(|p| ProbeRun { name: p.name.clone(), status: p.status, duration_seconds: p.duration_seconds })
            .collect();
        self.builds.insert(
            0,
            BuildHealth {
                build_id: build_id.to_owned(),
                checked_at: report.checked_at.clone(),
                state: report.state,
                problems,
                published: report.published,
                probes,
            },
        );
        self.builds.truncate(HISTORY);
    }
}
