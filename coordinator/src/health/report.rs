//! What one assessment found: the verdict, the native check's problems as stored and shown, the
//! probes' outcomes, and whether the metadata was published; and its lines for the terminal.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::consistency::{Consistency, Problem};
use super::probe::{ProbeOutcome, ProbeStatus};

/// Whether the repository works.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Every check and probe that ran passed.
    Healthy,
    /// Something failed.
    Broken,
    /// Nothing was checked.
    #[default]
    Unknown,
}

impl HealthState {
    /// `healthy`, `broken` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Healthy => "healthy",
            HealthState::Broken => "broken",
            HealthState::Unknown => "unknown",
        }
    }
}

/// One assessment of a repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// The verdict.
    pub state: HealthState,
    /// When it was made (RFC 3339).
    pub checked_at: String,
    /// The native check, if it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistency: Option<ConsistencyView>,
    /// Every probe, in configuration order.
    #[serde(default)]
    pub probes: Vec<ProbeOutcome>,
    /// Whether the metadata checked was published.
    pub published: bool,
    /// Why it was not (a blocking gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// The native check's result as stored (problems may be cut; the counts are whole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsistencyView {
    /// Versions checked.
    pub versions: usize,
    /// Requirements on this repository's packages checked.
    pub links: usize,
    /// Requirements on other repositories' packages (not checked).
    pub external_links: usize,
    /// Problems of the current versions (these make the repository broken).
    pub problem_count: usize,
    /// The problems (in a stored record, the first ones).
    pub problems: Vec<ProblemView>,
    /// Problems of versions nothing current needs.
    #[serde(default)]
    pub historical_count: usize,
    /// The first of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub historical: Vec<ProblemView>,
}

/// A problem as stored and shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemView {
    /// `package version`.
    pub package: String,
    /// The name required (or left out, for a flavour leak).
    pub requires: String,
    /// The constraint.
    pub constraint: String,
    /// What kind of problem (`unsatisfiable`, `too_unstable`, `missing`, `invalid_constraint`,
    /// `flavour_leak`).
    pub kind: String,
    /// What exists of the name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub available: Vec<String>,
    /// Who needs it, root first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// In words.
    pub message: String,
}

/// Historical problems kept in a report.
const KEPT_HISTORICAL: usize = 100;

impl From<&Problem> for ProblemView {
    fn from(p: &Problem) -> Self {
        ProblemView {
            package: format!("{} {}", p.package, p.version),
            requires: p.requires.clone(),
            constraint: p.constraint.clone(),
            kind: serde_json::to_value(p.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
            available: p.available.clone(),
            chain: p.chain.clone(),
            message: p.message.clone(),
        }
    }
}

impl From<&Consistency> for ConsistencyView {
    fn from(check: &Consistency) -> Self {
        ConsistencyView {
            versions: check.versions,
            links: check.links,
            external_links: check.external_links,
            problem_count: check.problems.len(),
            problems: check.problems.iter().map(ProblemView::from).collect(),
            historical_count: check.historical.len(),
            historical: check.historical.iter().take(KEPT_HISTORICAL).map(ProblemView::from).collect(),
        }
    }
}

impl HealthReport {
    /// Whether nothing failed (an unknown result is not broken).
    pub fn is_broken(&self) -> bool {
        self.state == HealthState::Broken
    }

    /// Lines for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let check = self.consistency.as_ref();
        let _ = writeln!(
            out,
            "health: {}{}",
            self.state.as_str(),
            check
                .map(|c| format!(
                    " ({} versions, {} requirements checked, {} on other repositories, {} problems, {} in versions nothing current needs)",
                    c.versions, c.links, c.external_links, c.problem_count, c.historical_count
                ))
                .unwrap_or_default()
        );
        // Names come from the repository checked (maybe someone else's): one line each, escaped.
        let problems: Vec<String> =
            check.into_iter().flat_map(|c| &c.problems).map(|p| format!("problem: {}", p.message)).collect();
        out.push_str(&crate::fetch::summarise(&problems));
        for probe in &self.probes {
            let status = serde_json::to_value(probe.status).ok().and_then(|v| v.as_str().map(str::to_owned));
            let _ = writeln!(
                out,
                "  probe {}: {} ({:.1}s)",
                probe.name,
                status.unwrap_or_default(),
                probe.duration_seconds
            );
            if probe.status != ProbeStatus::Passed {
                for line in probe.explanation.lines().take(40) {
                    let _ = writeln!(out, "    {line}");
                }
            }
        }
        if let Some(blocked) = &self.blocked {
            let _ = writeln!(out, "  not published: {blocked}");
        }
        out
    }
}
