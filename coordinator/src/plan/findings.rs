//! What planning reports besides jobs: rejected input, unreadable upstreams, the tags planned,
//! archives provided by prebuilt packages and published versions whose source moved.

use serde::Serialize;

use crate::manifest::Provenance;

/// Upstream input that does not give a package (reported, not built).
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// Upstream key, or what else gave the input.
    pub upstream: Provenance,
    /// Tag, if the problem is tied to one.
    pub tag: Option<String>,
    /// Package folder, if the problem is tied to one.
    pub dir: Option<String>,
    /// Why.
    pub reason: String,
}

/// An upstream that could not be read at all.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryFailure {
    /// Upstream key.
    pub upstream: String,
    /// Resolved URL.
    pub url: String,
    /// Why.
    pub reason: String,
}

/// A name@version taken from the additional packages instead of git.
#[derive(Debug, Clone, Serialize)]
pub struct Provided {
    /// Composer name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Upstream and tag whose build it replaces.
    pub upstream: Provenance,
    /// Tag.
    pub tag: String,
    /// The prebuilt archive's file name.
    pub file: String,
}

/// A published name@version that a build today would produce from different input.
#[derive(Debug, Clone, Serialize)]
pub struct SourceChanged {
    /// Composer name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Tag the published archive was built from.
    pub published_from: String,
    /// Tag that would produce it now.
    pub now_from: String,
    /// What differs.
    pub what: String,
}

/// Tags planned for one upstream.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamTags {
    /// Upstream key.
    pub upstream: String,
    /// Tags in processing order.
    pub tags: Vec<String>,
}

/// Everything planning found besides the jobs, for the build report.
#[derive(Debug, Default)]
pub struct Findings {
    /// Upstream input that gives no package.
    pub rejected: Vec<Rejection>,
    /// Upstreams that could not be read at all.
    pub repository_failures: Vec<RepositoryFailure>,
    /// Tags planned per upstream.
    pub tags: Vec<UpstreamTags>,
    /// name@version a prebuilt archive provides instead of git.
    pub provided: Vec<Provided>,
    /// Published name@version whose source now differs.
    pub source_changed: Vec<SourceChanged>,
    /// What each flavour's rules removed from its product metapackage.
    pub flavours: Vec<super::flavours::FlavourNote>,
    /// The explicit inputs the versions and metadata were made from.
    pub inputs: super::inputs::Inputs,
}
