//! The wire messages between coordinator and workers: the only types that cross the queue.
//!
//! JSON with an explicit `schema` version. Unknown fields are ignored (no `deny_unknown_fields`),
//! so a newer coordinator can add fields during a rolling upgrade. The embedded mode sends these
//! same messages, serialised, through its in-process queue, so both modes share one format.
//! Documented in `docs/messages.md`.

use serde::{Deserialize, Serialize};

/// Version of the message format; bump it when a field changes meaning.
pub const SCHEMA_VERSION: u32 = 1;

/// Identifies one build (one `coordinator build` run or one triggered rebuild).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BuildId(pub String);

/// Identifies one job within a build.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub String);

// -- BuildJob -----------------------------------------------------------------------------------

/// Build one archive: `package@version` from a git commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildJob {
    /// Message format version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// This job.
    pub job_id: JobId,
    /// The build it belongs to.
    pub build_id: BuildId,
    /// Composer package name.
    pub package: String,
    /// Package version (as it names the archive).
    pub version: String,
    /// Where the content comes from.
    pub source: Source,
    /// What goes into the archive besides the generated composer.json.
    pub content: Content,
    /// The exact composer.json text placed at the package root.
    pub composer_json: String,
    /// Storage key of the archive, e.g. `packages/magento/module-catalog-103.0.7.zip`.
    pub target_key: String,
    /// Delivery attempt, starting at 1.
    pub attempt: u32,
    /// Files added after the package's own, in order: a path the archive already has keeps its
    /// position with the new content (the reference's file replacements), a new path is
    /// appended (extra files of metapackages).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<ExtraFile>,
}

/// A file a job adds to the archive (mode 644).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraFile {
    /// Package-relative path.
    pub path: String,
    /// Content, UTF-8 text.
    pub text: String,
}

/// A git commit of an upstream repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// Git URL (after `upstream_base` substitution).
    pub repo_url: String,
    /// The tag or branch the commit was taken from (for reports).
    pub git_ref: String,
    /// Full commit id.
    pub commit: String,
}

/// The files of an archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Every regular file below `dir`, minus excludes, plus the empty directories.
    PackageTree {
        /// Repository-relative folder, `""` for the root.
        dir: String,
        /// Repository-relative path prefixes to leave out.
        excludes: Vec<String>,
        /// Package-relative folders to add as empty directory entries.
        empty_dirs: Vec<String>,
    },
    /// The composer.json alone (metapackages).
    ComposerJsonOnly,
}

// -- BuildResult --------------------------------------------------------------------------------

/// What became of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildResult {
    /// Message format version ([`SCHEMA_VERSION`]).
    pub schema: u32,
    /// The job this answers.
    pub job_id: JobId,
    /// The build it belongs to.
    pub build_id: BuildId,
    /// The outcome.
    pub outcome: Outcome,
    /// Deliveries it took (1: no retry). Added in place (older senders omit it: 1).
    #[serde(default = "first_attempt")]
    pub attempts: u32,
}

fn first_attempt() -> u32 {
    1
}

/// The outcome of a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// The archive is stored at `key`.
    Built {
        /// Storage key.
        key: String,
        /// Archive size in bytes.
        size: u64,
        /// Lower-case hex SHA-1 of the archive.
        sha1: String,
        /// Lower-case hex SHA-256 of the archive.
        sha256: String,
        /// Things worth a look that did not stop the build (e.g. a symlink pointing outside the
        /// repository, which is left out as every symlink is).
        #[serde(default)]
        warnings: Vec<String>,
    },
    /// The archive could not be built; nothing was stored.
    Failed {
        /// Why, for the report.
        reason: String,
    },
}

/// A message could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON of the expected shape.
    #[error("cannot decode message: {0}")]
    Decode(#[from] serde_json::Error),
    /// A schema this build does not understand.
    #[error("message schema {found} is newer than the supported {SCHEMA_VERSION}")]
    Schema {
        /// The schema in the message.
        found: u32,
    },
}

impl BuildJob {
    /// Encodes the job as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job always serialises")
    }

    /// Decodes a job, checking the schema.
    pub fn decode(bytes: &[u8]) -> Result<BuildJob, MessageError> {
        let job: BuildJob = serde_json::from_slice(bytes)?;
        check_schema(job.schema)?;
        Ok(job)
    }
}

impl BuildResult {
    /// Encodes the result as JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a result always serialises")
    }

    /// Decodes a result, checking the schema.
    pub fn decode(bytes: &[u8]) -> Result<BuildResult, MessageError> {
        let result: BuildResult = serde_json::from_slice(bytes)?;
        check_schema(result.schema)?;
        Ok(result)
    }
}

fn check_schema(found: u32) -> Result<(), MessageError> {
    if found > SCHEMA_VERSION { Err(MessageError::Schema { found }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> BuildJob {
        BuildJob {
            schema: SCHEMA_VERSION,
            job_id: JobId("j1".into()),
            build_id: BuildId("b1".into()),
            package: "acme/module-a".into(),
            version: "1.0.0".into(),
            source: Source { repo_url: "/srv/a.git".into(), git_ref: "1.0.0".into(), commit: "0".repeat(40) },
            content: Content::PackageTree { dir: "app/code/A".into(), excludes: vec!["x/".into()], empty_dirs: vec![] },
            composer_json: "{}".into(),
            target_key: "packages/acme/module-a-1.0.0.zip".into(),
            attempt: 1,
            files: Vec::new(),
        }
    }

    #[test]
    fn roundtrip_and_unknown_fields_are_tolerated() {
        let job = job();
        assert_eq!(BuildJob::decode(&job.encode()).unwrap(), job);
        let mut value: serde_json::Value = serde_json::from_slice(&job.encode()).unwrap();
        value["priority"] = serde_json::json!(5);
        value["content"]["future"] = serde_json::json!(true);
        assert_eq!(BuildJob::decode(value.to_string().as_bytes()).unwrap(), job);
    }

    #[test]
    fn newer_schema_and_garbage_are_errors() {
        let mut value: serde_json::Value = serde_json::from_slice(&job().encode()).unwrap();
        value["schema"] = serde_json::json!(99);
        assert!(matches!(BuildJob::decode(value.to_string().as_bytes()), Err(MessageError::Schema { found: 99 })));
        assert!(matches!(BuildJob::decode(b"not json"), Err(MessageError::Decode(_))));
    }

    #[test]
    fn result_roundtrip() {
        let result = BuildResult {
            schema: SCHEMA_VERSION,
            job_id: JobId("j1".into()),
            build_id: BuildId("b1".into()),
            outcome: Outcome::Failed { reason: "boom".into() },
            attempts: 2,
        };
        assert_eq!(BuildResult::decode(&result.encode()).unwrap(), result);
    }
}
