//! `[[upstreams]]`: the upstream git repositories and, per upstream, the package rules of the
//! reference generator (package folders, single packages, metapackages, excludes, extra tags,
//! version pins, transforms, file replacements), and their checks.

use std::collections::BTreeMap;

use serde::Deserialize;

use super::error::ConfigError;
use super::transform::{Action, Transform};

/// One upstream git repository and the packages built from it (the reference's
/// `repositoryBuildDefinition`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Short name, used in reports (the reference's config key).
    pub key: String,
    /// Git URL.
    pub url: String,
    /// Composer vendor of the built packages; other than `magento` renames `magento/*` names.
    /// Default: `target.vendor`, else `magento`.
    #[serde(default)]
    pub vendor: String,
    /// The branch nightly and release builds read (the reference's `ref`), e.g. `2.4-develop`.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// First tag to build (inclusive, compared with the reference's version order).
    #[serde(default)]
    pub from_tag: Option<String>,
    /// Tags never to build.
    #[serde(default)]
    pub skip_tags: Vec<String>,
    /// Tags to create for untagged commits (the reference's `extraRefToRelease`).
    #[serde(default)]
    pub extra_tags: Vec<ExtraTag>,
    /// Folders whose every immediate, non-hidden subfolder is one package (`packageDirs`).
    #[serde(default)]
    pub package_dirs: Vec<PackageDefinition>,
    /// Folders that are one package each (`packageIndividual`).
    #[serde(default)]
    pub single_packages: Vec<PackageDefinition>,
    /// Folders whose composer.json alone is a package, e.g. a metapackage (`packageMetaFromDirs`).
    #[serde(default)]
    pub metapackage_dirs: Vec<PackageDefinition>,
    /// Per tag, versions that replace a package's own version and every dependency constraint on it
    /// (the reference's `fixVersions`).
    #[serde(default)]
    pub pinned_versions: BTreeMap<String, BTreeMap<String, String>>,
    /// composer.json adjustments (the reference's `transform` functions, as data).
    #[serde(default)]
    pub transforms: Vec<Transform>,
    /// Development branches built as `dev-<branch>` versions (published in the `~dev` metadata
    /// files; each content change gets a new archive).
    #[serde(default)]
    pub branches: Vec<String>,
    /// Metapackages made from the repository's root composer.json (the reference's
    /// `extraMetapackages`): the project and product community editions.
    #[serde(default)]
    pub metapackages: Vec<MetapackageDefinition>,
    /// Files replaced inside one package version's archive (the reference's
    /// `packageReplacements`), read from `<target.resources>/replace/<package>/<version>/<file>`.
    #[serde(default)]
    pub file_replacements: Vec<FileReplacement>,
    /// Repository names (`owner/name`, as webhooks send them) that trigger this upstream;
    /// default: the last two path segments of `url` without `.git`.
    #[serde(default)]
    pub webhook_names: Vec<String>,
}

impl UpstreamConfig {
    /// The names a webhook may give this upstream's repository (lower case).
    pub fn hook_names(&self) -> Vec<String> {
        if !self.webhook_names.is_empty() {
            return self.webhook_names.iter().map(|n| n.trim_matches('/').to_lowercase()).collect();
        }
        let path = self.url.trim_end_matches('/').trim_end_matches(".git");
        // `git@host:owner/name` and `https://host/owner/name` alike.
        let segments: Vec<&str> = path.rsplit(['/', ':']).take(2).collect();
        match segments.as_slice() {
            [name, owner] if !name.is_empty() && !owner.is_empty() => vec![format!("{owner}/{name}").to_lowercase()],
            _ => Vec::new(),
        }
    }
}

/// A metapackage made from the repository's root composer.json (`extraMetapackages`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetapackageDefinition {
    /// Name without vendor, e.g. `product-community-edition`.
    pub name: String,
    /// Which community-edition transform makes it (spec 3.8).
    pub kind: MetapackageKind,
    /// First tag it is built from (default: the upstream's `from_tag`).
    #[serde(default)]
    pub from_tag: Option<String>,
    /// Files added after composer.json at some tags (tagged builds).
    #[serde(default)]
    pub extra_files: Vec<MetapackageFile>,
}

/// A file added to a metapackage's archive at some tags (the reference adds a `.gitignore` to
/// project-community-edition 2.4.0 and 2.4.0-p1).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetapackageFile {
    /// Path inside the archive.
    pub path: String,
    /// Its content: a file relative to `target.resources`.
    pub source: String,
    /// The tags whose archive gets it.
    pub refs: Vec<String>,
}

/// Files replaced inside one package version (`packageReplacements`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileReplacement {
    /// Composer name.
    pub package: String,
    /// Version.
    pub version: String,
    /// Package-relative paths; the content of each is
    /// `<target.resources>/replace/<package>/<version>/<path>`.
    pub files: Vec<String>,
}

/// The two community-edition metapackages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetapackageKind {
    /// `project-*`: a Composer project requiring the product.
    Project,
    /// `product-*`: the metapackage requiring every package of the distribution.
    Product,
}

/// An exclude that applies except at some tags (the reference's exclude functions).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionalExclude {
    /// Repository-relative path prefix.
    pub path: String,
    /// Not excluded at these refs.
    #[serde(default)]
    pub unless_ref_in: Vec<String>,
    /// Not excluded at refs starting with this text.
    #[serde(default)]
    pub unless_ref_prefix: Option<String>,
}

impl ConditionalExclude {
    /// Whether the path is excluded at `git_ref`.
    pub fn applies_at(&self, git_ref: &str) -> bool {
        !self.unless_ref_in.iter().any(|r| r == git_ref)
            && !self.unless_ref_prefix.as_deref().is_some_and(|p| git_ref.starts_with(p))
    }
}

/// A tag to create at a commit that upstream never tagged.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraTag {
    /// Tag name.
    pub tag: String,
    /// Full commit id.
    pub commit: String,
}

/// A package folder rule (`packageDefinition`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageDefinition {
    /// Human-readable name for logs and reports.
    #[serde(default)]
    pub label: String,
    /// Repository-relative folder; `""` is the repository root.
    pub dir: String,
    /// Repository-relative path prefixes to leave out (plain string prefix, no path boundary).
    #[serde(default)]
    pub excludes: Vec<String>,
    /// Package-relative folders added as empty directory entries.
    #[serde(default)]
    pub empty_dirs: Vec<String>,
    /// Excludes that apply except at some refs.
    #[serde(default)]
    pub conditional_excludes: Vec<ConditionalExclude>,
    /// The composer.json comes from this template (relative to `target.resources`, e.g.
    /// `composer-templates/magento/magento2-base/template.json`) instead of the repository: at a
    /// tag the history file `history/.../<tag>.json` is used when present; tagged builds skip a
    /// tag without one; nightly and release builds use the template with `target.base_require`.
    #[serde(default)]
    pub composer_template: Option<String>,
    /// Sort the link sections (require, require-dev, suggest, replace, conflict) of versions that
    /// are not numeric or compare at least this (the reference's base package rule, `3.2.1`).
    #[serde(default)]
    pub sort_links_since: Option<String>,
}

/// Checks every upstream: keys plain and unique, branch names, tags and transform paths.
pub(super) fn validate(upstreams: &[UpstreamConfig]) -> Result<(), ConfigError> {
    let invalid = |message: String| Err(ConfigError::Invalid(message));
    let mut keys = std::collections::HashSet::new();
    for upstream in upstreams {
        check_upstream_key(&upstream.key)?;
        if !keys.insert(upstream.key.as_str()) {
            return invalid(format!("upstream key '{}' is used twice", upstream.key));
        }
        for branch in &upstream.branches {
            if git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
                continue;
            }
            return invalid(format!("upstream '{}': '{branch}' is not a valid branch name", upstream.key));
        }
        if let Some(from) = &upstream.from_tag {
            crate::version::validate(from)
                .map_err(|e| ConfigError::Invalid(format!("upstream '{}': from_tag: {e}", upstream.key)))?;
        }
        for extra in &upstream.extra_tags {
            if extra.commit.len() != 40 || !extra.commit.bytes().all(|b| b.is_ascii_hexdigit()) {
                return invalid(format!(
                    "upstream '{}': extra tag '{}' needs a full commit id",
                    upstream.key, extra.tag
                ));
            }
        }
        for transform in &upstream.transforms {
            for action in &transform.actions {
                let path = match action {
                    Action::Set { set, .. } => set,
                    Action::Remove { remove } => remove,
                };
                if path.is_empty() {
                    return invalid(format!(
                        "upstream '{}': a transform of {} has an empty path",
                        upstream.key, transform.package
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Words the manifest and reports use for packages that come from no upstream (alias
/// metapackages, prebuilt archives, adopted versions), so no upstream may be called so.
pub const RESERVED_UPSTREAM_KEYS: [&str; 3] = ["aliases", "additional", "adopted"];

/// Upstream keys name metrics labels, report entries and log fields: a short plain word.
fn check_upstream_key(key: &str) -> Result<(), ConfigError> {
    if RESERVED_UPSTREAM_KEYS.contains(&key) {
        return Err(ConfigError::Invalid(format!(
            "upstream key {key:?} is reserved: reports and the manifest use it for packages from no upstream"
        )));
    }
    let plain = !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphanumeric())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if plain {
        return Ok(());
    }
    Err(ConfigError::Invalid(format!(
        "upstream key {key:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ConfigError, FarmConfig, Secret};

    #[test]
    fn upstream_keys_are_plain_words() {
        let with = |key: &str| {
            FarmConfig::from_toml(&format!(
                "[repository]\nbase_url = \"https://x/\"\n[[upstreams]]\nkey = {key:?}\nurl = \"/a\"\n"
            ))
        };
        assert!(with("magento2").is_ok());
        assert!(with("security-package.v2_x").is_ok());
        for bad in ["", "a\"} 1\nfake_metric{x=\"", "a b", "-a", "ä", &"a".repeat(65), "aliases", "adopted"] {
            assert!(matches!(with(bad), Err(ConfigError::Invalid(_))), "{bad:?} accepted");
        }
    }

    #[test]
    fn webhook_names_default_to_the_url_path() {
        let upstream = |url: &str, names: &str| -> UpstreamConfig {
            toml::from_str(&format!("key = \"k\"\nurl = \"{url}\"\n{names}")).unwrap()
        };
        assert_eq!(
            upstream("https://github.com/mage-os/mirror-magento2.git", "").hook_names(),
            ["mage-os/mirror-magento2"]
        );
        assert_eq!(upstream("git@github.com:Mage-OS/Inventory.git", "").hook_names(), ["mage-os/inventory"]);
        assert_eq!(upstream("/srv/git/acme/upstream.git/", "").hook_names(), ["acme/upstream"]);
        assert_eq!(upstream("/x", "webhook_names = [\"Group/Sub/Repo\"]").hook_names(), ["group/sub/repo"]);
        let secret = Secret::from("s3cr3t");
        assert_eq!(format!("{secret:?}"), "[redacted]");
    }
}
