//! The refs an upstream's build reads: tags in `git tag` byte order with the configured extra
//! tags, skip list and `from_tag` applied, and the configured branches.

use std::collections::BTreeMap;

use git2::{Oid, Repository};
use shared::config::UpstreamConfig;
use shared::git::{self, GitError, TagRef};
use shared::version;

use super::findings::Rejection;
use crate::manifest::Provenance;

/// The refs a build of this upstream reads: selected tags (in `git tag` order) and configured
/// branches (in config order; a missing branch is rejected).
pub struct SelectedRefs {
    /// Tags.
    pub tags: Vec<TagRef>,
    /// Branch heads (`name` is the branch).
    pub branches: Vec<TagRef>,
}

impl SelectedRefs {
    /// The refs as `refs/...` name to commit.
    pub fn map(&self) -> BTreeMap<String, String> {
        let tags = self.tags.iter().map(|t| (format!("refs/tags/{}", t.name), t.commit.to_string()));
        let heads = self.branches.iter().map(|b| (format!("refs/heads/{}", b.name), b.commit.to_string()));
        tags.chain(heads).collect()
    }
}

/// Reads the refs an upstream's build would use.
pub fn select_refs(upstream: &UpstreamConfig, repo: &Repository) -> Result<(SelectedRefs, Vec<Rejection>), GitError> {
    let mut rejections = Vec::new();
    let tags = select_tags(upstream, repo, &mut rejections)?;
    let mut branches = Vec::new();
    for branch in &upstream.branches {
        match repo.refname_to_id(&format!("refs/heads/{branch}")) {
            Ok(commit) => branches.push(TagRef { name: branch.clone(), commit }),
            Err(_) => rejections.push(Rejection {
                upstream: Provenance::Git(upstream.key.clone()),
                tag: Some(branch.clone()),
                dir: None,
                reason: "branch skipped: the upstream has no such branch".to_owned(),
            }),
        }
    }
    Ok((SelectedRefs { tags, branches }, rejections))
}

/// How a ref is built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum RefMode {
    /// A tag, as tagged (mirror, release history).
    Tag,
    /// A development branch as `dev-<branch>`.
    Branch(String),
    /// The `ref` branch head with nightly versions.
    Nightly,
    /// The `ref` branch head as the new release.
    Release(String),
}

/// Tags to build in `git tag` order: configured extra tags added, skip list and `from_tag` applied;
/// tags that are not versions are rejected with a reason instead of aborting (the reference crashes).
fn select_tags(
    upstream: &UpstreamConfig,
    repo: &Repository,
    rejections: &mut Vec<Rejection>,
) -> Result<Vec<TagRef>, GitError> {
    let (mut tags, unusable) = git::list_tags(repo)?;
    let reject = |tag: &str, reason: String| Rejection {
        upstream: Provenance::Git(upstream.key.clone()),
        tag: Some(tag.to_owned()),
        dir: None,
        reason,
    };
    for (tag, reason) in unusable {
        rejections.push(reject(&tag, format!("tag skipped: {reason}")));
    }
    for extra in &upstream.extra_tags {
        let commit = match Oid::from_str(&extra.commit).ok().filter(|oid| repo.find_commit(*oid).is_ok()) {
            Some(commit) => commit,
            None => {
                rejections.push(reject(
                    &extra.tag,
                    format!("extra tag skipped: commit {} is not in the repository", extra.commit),
                ));
                continue;
            }
        };
        match tags.iter().find(|t| t.name == extra.tag) {
            Some(existing) if existing.commit == commit => {}
            Some(existing) => rejections.push(reject(
                &extra.tag,
                format!(
                    "extra tag ignored: upstream has this tag at {} (configured {commit}); upstream's is used",
                    existing.commit
                ),
            )),
            None => tags.push(TagRef { name: extra.tag.clone(), commit }),
        }
    }
    tags.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    let mut selected = Vec::new();
    for tag in tags {
        if upstream.skip_tags.contains(&tag.name) {
            continue;
        }
        let keep = match &upstream.from_tag {
            Some(from) => version::compare(&tag.name, from).map(|c| c.is_ge()),
            None => version::validate(&tag.name).map(|()| true),
        };
        match keep {
            Ok(true) => selected.push(tag),
            Ok(false) => {}
            Err(error) => rejections.push(reject(&tag.name, format!("tag skipped: {error}"))),
        }
    }
    Ok(selected)
}
