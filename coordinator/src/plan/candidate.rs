//! A candidate: one name@version the plan could build, where it comes from, and which candidate
//! wins when several produce the same name@version (precedence, spec 4.6).

use std::collections::HashMap;

use git2::Oid;
use serde::Serialize;
use shared::messages::{BuildId, BuildJob, Content, JobId, SCHEMA_VERSION, Source};

use crate::manifest::{PackageId, Provenance};

/// Which candidate keeps a name@version when several produce it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precedence {
    /// Folder and single packages: the first one processed.
    FirstWins,
    /// Metapackages: the last one processed.
    LastWins,
}

/// One package build the plan wants.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Composer name.
    pub package: String,
    /// Version.
    pub version: String,
    /// The generated composer.json text.
    pub composer_json: String,
    /// Precedence rule of the definition that produced it.
    pub precedence: Precedence,
    /// Upstream key.
    pub upstream: Provenance,
    /// Resolved git URL.
    pub repo_url: String,
    /// Tag, or branch for a branch build.
    pub tag: String,
    /// Built from a development branch (`dev-<branch>`): the version moves, so the archive key
    /// carries a digest of the content and a changed package gets a new archive.
    pub branch: bool,
    /// The archive's storage key.
    pub key: String,
    /// Commit the tag points to.
    pub commit: Oid,
    /// Tree id of the package folder at the tag.
    pub tree_id: Oid,
    /// Archive content.
    pub content: Content,
    /// Name and version after transforms (the additional-packages lookup uses them).
    pub final_identity: (String, String),
    /// A flavour's product metapackage (index into `target.flavours`): its require is filtered
    /// once every upstream is planned.
    pub flavour: Option<usize>,
    /// Files added after the package's own (replacements, metapackage extras).
    pub files: Vec<shared::messages::ExtraFile>,
}

impl Candidate {
    /// `name@version`.
    pub fn id(&self) -> String {
        PackageId::new(&self.package, &self.version).to_string()
    }

    /// The archive's storage key: the reference's layout `packages/<name>-<version>.zip` for
    /// tags; for branches `packages/<name>-<version>-<digest>.zip`, the digest (12 hex digits)
    /// taken over everything the archive bytes depend on: tree, composer.json and content rules.
    pub fn target_key(&self) -> String {
        self.key.clone()
    }

    /// The job that builds it (first attempt).
    pub fn job(&self, build_id: &BuildId, job_id: JobId) -> BuildJob {
        BuildJob {
            schema: SCHEMA_VERSION,
            job_id,
            build_id: build_id.clone(),
            package: self.package.clone(),
            version: self.version.clone(),
            source: Source {
                repo_url: self.repo_url.clone(),
                git_ref: self.tag.clone(),
                commit: self.commit.to_string(),
            },
            content: self.content.clone(),
            composer_json: self.composer_json.clone(),
            target_key: self.target_key(),
            attempt: 1,
            files: self.files.clone(),
        }
    }
}

/// Applies precedence across all candidates (in processing order): one winner per name@version.
pub fn resolve(candidates: Vec<Candidate>) -> Vec<Candidate> {
    let mut winners: Vec<Candidate> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for candidate in candidates {
        match index.get(&candidate.id()) {
            None => {
                index.insert(candidate.id(), winners.len());
                winners.push(candidate);
            }
            Some(&i) => {
                if candidate.precedence == Precedence::LastWins {
                    winners[i] = candidate;
                }
            }
        }
    }
    winners
}
