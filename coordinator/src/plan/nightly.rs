//! The nightly version map's entries of one upstream (spec 5.3 step 1): every package's name and
//! version, read at the latest tag.

use std::path::Path;

use git2::Repository;
use serde_json::Value;
use shared::config::{Flavour, MetapackageKind, UpstreamConfig};
use shared::distribution;
use shared::git::{self, FileLookup, GitError, TagRef};

use super::inputs::template_text;

static VERSION_LIKE: std::sync::LazyLock<regex::Regex> =
    std::sync::LazyLock::new(|| regex::Regex::new(r"^v?([0-9]+\.){0,3}[0-9]+").expect("valid regex"));

/// The nightly version map's entries of one upstream (spec 5.3 step 1): the latest tag (or the
/// `ref` branch when there is none) and, read at it, every package's name and version. `latest`
/// is the latest of the repository's tags.
pub fn nightly_entries(
    upstream: &UpstreamConfig,
    repo: &Repository,
    latest: Option<&TagRef>,
    resources: Option<&Path>,
    flavours: &[Flavour],
) -> Result<(String, Vec<(String, String)>), GitError> {
    let (base, commit) = match latest {
        Some(tag) => (tag.name.clone(), tag.commit),
        None => {
            let branch = upstream.git_ref.clone().unwrap_or_else(|| "HEAD".to_owned());
            let reference = if branch == "HEAD" { "HEAD".to_owned() } else { format!("refs/heads/{branch}") };
            match repo.refname_to_id(&reference) {
                Ok(commit) => (branch, commit),
                Err(_) => return Ok((branch, Vec::new())),
            }
        }
    };
    let root = git::commit_tree(repo, commit)?;
    let mut entries = Vec::new();
    let rename = |name: String| distribution::to_vendor(&name, &upstream.vendor).unwrap_or(name);
    let read_identity = |dir: &str| -> Result<Option<(String, Option<String>)>, GitError> {
        let Some(tree) = git::subtree(repo, &root, dir)? else { return Ok(None) };
        let FileLookup::Found(bytes) = git::read_file(repo, &tree, "composer.json")? else { return Ok(None) };
        Ok(identity(&String::from_utf8_lossy(&bytes)))
    };
    let module_version = |version: Option<String>| -> String {
        let version = version.unwrap_or_else(|| base.clone());
        if VERSION_LIKE.is_match(&version) { version } else { String::new() }
    };
    for definition in &upstream.package_dirs {
        let Some(parent) = git::subtree(repo, &root, &definition.dir)? else { continue };
        for (name, _) in git::subfolders(&parent) {
            let folder = if definition.dir.is_empty() { name } else { format!("{}/{name}", definition.dir) };
            if definition.excludes.iter().any(|e| folder == e.trim_end_matches('/') || folder.starts_with(e.as_str())) {
                continue;
            }
            if let Some((name, version)) = read_identity(&folder)? {
                entries.push((rename(name), module_version(version)));
            }
        }
    }
    for definition in &upstream.single_packages {
        let found = match &definition.composer_template {
            Some(template) => template_text(resources, template, None).ok().flatten().and_then(|text| identity(&text)),
            None => read_identity(&definition.dir)?,
        };
        if let Some((name, version)) = found {
            entries.push((rename(name), module_version(version)));
        }
    }
    for definition in &upstream.metapackage_dirs {
        if let Some((name, version)) = read_identity(&definition.dir)? {
            entries.push((rename(name), version.unwrap_or_else(|| base.clone())));
        }
    }
    for meta in &upstream.metapackages {
        entries.push((format!("{}/{}", upstream.vendor, meta.name), base.clone()));
        // Flavours are made with the product: they get its version.
        if meta.kind == MetapackageKind::Product {
            for flavour in flavours {
                entries.push((format!("{}/{}", upstream.vendor, flavour.product_name()), base.clone()));
                if flavour.project {
                    entries.push((format!("{}/{}", upstream.vendor, flavour.project_name()), base.clone()));
                }
            }
        }
    }
    Ok((base, entries))
}

/// Name and (truthy) version of a composer.json text.
fn identity(text: &str) -> Option<(String, Option<String>)> {
    let Ok(Value::Object(config)) = shared::json::parse(text) else { return None };
    let name = config.get("name")?.as_str().filter(|n| !n.is_empty())?.to_owned();
    Some((name, shared::rules::truthy_version(&config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_like_prefixes() {
        for yes in ["2.4.5", "v2.4", "103.0.5-p1", "1", "1.0-dev"] {
            assert!(VERSION_LIKE.is_match(yes), "{yes}");
        }
        for no in ["dev-main", "", "x1.0"] {
            assert!(!VERSION_LIKE.is_match(no), "{no}");
        }
    }
}
