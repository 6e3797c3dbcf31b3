//! Planning: which (tag, folder) produces each name@version, and what is left to build.
//!
//! Planning reads only composer.json files and tree ids from git (no checkout) and walks the
//! candidates in the reference generator's processing order (spec 4.6): upstreams in config order;
//! per upstream package folders, then single packages, then metapackage folders; per definition
//! tags in `git tag` byte order (outer loop), folders in byte order (inner loop). For folder and
//! single packages the first candidate of a name@version wins; metapackages are rewritten, so the
//! last one wins. The whole composer.json rewrite happens here, so a job carries the exact
//! composer.json bytes and workers apply no rules.

use std::collections::{BTreeMap, HashMap};

use git2::{Oid, Repository};
use serde::Serialize;
use serde_json::Value;
use shared::config::{FarmConfig, MetapackageKind, PackageDefinition, UpstreamConfig, VersionRule};
use shared::git::{self, FileLookup, GitError, TagRef};
use shared::messages::Content;
use shared::rules::{self, RuleContext};
use shared::version;

use crate::distro::{self, MetaRequest, TargetState};

/// Excludes the reference adds to every package definition (repository-relative, so they only
/// affect a package at the repository root).
pub const IMPLICIT_EXCLUDES: [&str; 2] = ["composer.json", ".git/"];

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
    pub upstream: String,
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
        format!("{}@{}", self.package, self.version)
    }

    /// The archive's storage key: the reference's layout `packages/<name>-<version>.zip` for
    /// tags; for branches `packages/<name>-<version>-<digest>.zip`, the digest (12 hex digits)
    /// taken over everything the archive bytes depend on: tree, composer.json and content rules.
    pub fn target_key(&self) -> String {
        self.key.clone()
    }
}

/// Upstream input that does not give a package (reported, not built).
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    /// Upstream key.
    pub upstream: String,
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

/// What planning found for one upstream.
#[derive(Debug, Default)]
pub struct UpstreamPlan {
    /// Candidates in processing order.
    pub candidates: Vec<Candidate>,
    /// Rejected input.
    pub rejections: Vec<Rejection>,
    /// Tags built from, in processing order.
    pub tags: Vec<String>,
    /// Every ref planned (`refs/tags/<t>`, `refs/heads/<b>`) with its commit: what the build
    /// records as done, and what polling compares against.
    pub refs: BTreeMap<String, String>,
}

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
                upstream: upstream.key.clone(),
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
enum RefMode {
    /// A tag, as tagged (mirror, release history).
    Tag,
    /// A development branch as `dev-<branch>`.
    Branch(String),
    /// The `ref` branch head with nightly versions.
    Nightly,
    /// The `ref` branch head as the new release.
    Release(String),
}

/// Plans one upstream from its synced repository against the target's inputs.
pub fn plan_upstream(
    config: &FarmConfig,
    upstream: &UpstreamConfig,
    repo: &Repository,
    state: &TargetState,
) -> Result<UpstreamPlan, GitError> {
    let repo_url = config.resolve_url(&upstream.url);
    let mut plan = UpstreamPlan::default();
    let (refs, rejections) = select_refs(upstream, repo)?;
    plan.rejections = rejections;
    let mut modes: Vec<(TagRef, RefMode)> = Vec::new();
    if state.rule != VersionRule::Nightly {
        // Tags first, then branches: their versions (`dev-<branch>`) never meet a tag's.
        plan.tags = refs.tags.iter().map(|t| t.name.clone()).collect();
        plan.refs = refs.map();
        modes.extend(refs.tags.iter().map(|t| (t.clone(), RefMode::Tag)));
        modes.extend(refs.branches.iter().map(|b| (b.clone(), RefMode::Branch(format!("dev-{}", b.name)))));
    }
    let head_mode = match (state.rule, &state.release) {
        (VersionRule::Nightly, _) => Some(RefMode::Nightly),
        (VersionRule::Release, Some(release)) => Some(RefMode::Release(release.clone())),
        _ => None,
    };
    if let (Some(RefMode::Release(release)), Some(branch)) = (&head_mode, &upstream.git_ref)
        && repo.refname_to_id(&format!("refs/tags/{release}")).is_ok()
    {
        plan.rejections.push(Rejection {
            upstream: upstream.key.clone(),
            tag: Some(release.clone()),
            dir: None,
            reason: format!(
                "release {release} is already a tag of this upstream: it is history now (built from the tag when selected), not built again from {branch}"
            ),
        });
    } else if let (Some(mode), Some(branch)) = (head_mode, &upstream.git_ref) {
        match repo.refname_to_id(&format!("refs/heads/{branch}")) {
            Ok(commit) => {
                plan.refs.insert(format!("refs/heads/{branch}"), commit.to_string());
                modes.push((TagRef { name: branch.clone(), commit }, mode));
            }
            Err(_) => plan.rejections.push(Rejection {
                upstream: upstream.key.clone(),
                tag: Some(branch.clone()),
                dir: None,
                reason: "the upstream has no such branch (ref): nothing is built from it".to_owned(),
            }),
        }
    }

    let mut reader =
        Reader { repo, config, upstream, repo_url: &repo_url, plan: &mut plan, state, trees: HashMap::new() };
    for definition in &upstream.package_dirs {
        for (tag, mode) in &modes {
            reader.package_dir(definition, tag, mode)?;
        }
    }
    for definition in &upstream.single_packages {
        for (tag, mode) in &modes {
            reader.package(definition, &definition.dir, tag, Precedence::FirstWins, mode)?;
        }
    }
    for definition in &upstream.metapackage_dirs {
        for (tag, mode) in &modes {
            reader.package(definition, &definition.dir, tag, Precedence::LastWins, mode)?;
        }
    }
    for meta in &upstream.metapackages {
        let mut requests = vec![(
            MetaRequest {
                name: meta.name.clone(),
                kind: meta.kind,
                flavour: None,
                extra_files: meta.extra_files.clone(),
            },
            None,
        )];
        if meta.kind == MetapackageKind::Product {
            for (index, flavour) in config.target.flavours.iter().enumerate() {
                let product = MetaRequest {
                    name: flavour.product_name(),
                    kind: MetapackageKind::Product,
                    flavour: Some((index, flavour)),
                    extra_files: Vec::new(),
                };
                requests.push((product, Some(flavour)));
                if flavour.project {
                    let project = MetaRequest {
                        name: flavour.project_name(),
                        kind: MetapackageKind::Project,
                        flavour: None,
                        extra_files: Vec::new(),
                    };
                    requests.push((project, Some(flavour)));
                }
            }
        }
        for (request, flavour) in &requests {
            let from = meta.from_tag.as_ref().or(upstream.from_tag.as_ref());
            for (tag, mode) in &modes {
                let wanted = match mode {
                    RefMode::Tag => {
                        let since_ok = match flavour {
                            Some(flavour) => flavour
                                .since
                                .as_ref()
                                .is_some_and(|since| version::compare(&tag.name, since).is_ok_and(|c| c.is_ge())),
                            None => true,
                        };
                        since_ok && from.is_none_or(|from| version::compare(&tag.name, from).is_ok_and(|c| c.is_ge()))
                    }
                    RefMode::Branch(_) => false,
                    RefMode::Nightly | RefMode::Release(_) => true,
                };
                if wanted {
                    reader.metapackage(request, tag, mode)?;
                }
            }
        }
    }
    Ok(plan)
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
        upstream: upstream.key.clone(),
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

struct Reader<'a, 'p> {
    repo: &'a Repository,
    config: &'a FarmConfig,
    upstream: &'a UpstreamConfig,
    repo_url: &'a str,
    plan: &'p mut UpstreamPlan,
    state: &'a TargetState,
    /// Root tree per commit, so each tag's tree is looked up once.
    trees: HashMap<Oid, git2::Tree<'a>>,
}

impl<'a> Reader<'a, '_> {
    fn root(&mut self, commit: Oid) -> Result<git2::Tree<'a>, GitError> {
        if let Some(tree) = self.trees.get(&commit) {
            return Ok(tree.clone());
        }
        let tree = git::commit_tree(self.repo, commit)?;
        self.trees.insert(commit, tree.clone());
        Ok(tree)
    }

    /// Records rejected input; planning of the rest goes on.
    fn reject(&mut self, tag: &str, dir: &str, reason: String) -> Result<(), GitError> {
        self.plan.rejections.push(Rejection {
            upstream: self.upstream.key.clone(),
            tag: Some(tag.to_owned()),
            dir: Some(dir.to_owned()),
            reason,
        });
        Ok(())
    }

    /// One package per immediate, non-hidden subfolder, minus folder excludes.
    fn package_dir(&mut self, definition: &PackageDefinition, tag: &TagRef, mode: &RefMode) -> Result<(), GitError> {
        let root = self.root(tag.commit)?;
        let Some(parent) = git::subtree(self.repo, &root, &definition.dir)? else {
            return self.reject(&tag.name, &definition.dir, "package folder does not exist at this tag".to_owned());
        };
        for (name, _) in git::subfolders(&parent) {
            let folder = if definition.dir.is_empty() { name } else { format!("{}/{name}", definition.dir) };
            let excluded =
                definition.excludes.iter().any(|e| folder == e.trim_end_matches('/') || folder.starts_with(e.as_str()));
            if !excluded {
                self.package(definition, &folder, tag, Precedence::FirstWins, mode)?;
            }
        }
        Ok(())
    }

    /// One package from `dir/composer.json` (or the definition's template).
    fn package(
        &mut self,
        definition: &PackageDefinition,
        dir: &str,
        tag: &TagRef,
        precedence: Precedence,
        mode: &RefMode,
    ) -> Result<(), GitError> {
        let root = self.root(tag.commit)?;
        let Some(tree) = git::subtree(self.repo, &root, dir)? else {
            return self.reject(&tag.name, dir, "package folder does not exist at this tag".to_owned());
        };
        let text = match &definition.composer_template {
            Some(template) => {
                let at_tag = (*mode == RefMode::Tag).then_some(tag.name.as_str());
                match self.state.template_text(template, at_tag) {
                    Ok(Some(text)) => text,
                    Ok(None) if at_tag.is_some() => {
                        let reason = format!(
                            "no history file for this tag ({template} with history/ and {}.json): skipped, as the reference",
                            tag.name
                        );
                        return self.reject(&tag.name, dir, reason);
                    }
                    Ok(None) => return self.reject(&tag.name, dir, format!("template {template} does not exist")),
                    Err(reason) => return self.reject(&tag.name, dir, reason),
                }
            }
            None => match git::read_file(self.repo, &tree, "composer.json")? {
                // Node decodes invalid UTF-8 with replacement characters; so do we.
                FileLookup::Found(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                FileLookup::Missing => return self.reject(&tag.name, dir, "no composer.json".to_owned()),
                FileLookup::NotAFile => {
                    return self.reject(&tag.name, dir, "composer.json is not a regular file".to_owned());
                }
            },
        };
        let templated = definition.composer_template.is_some();
        let dev_version;
        let state = self.state;
        let mut context =
            RuleContext::tagged(&self.upstream.vendor, &rules::NO_VERSIONS, None, &self.upstream.transforms);
        context.composer_repo_url = &self.config.repository.base_url;
        context.sort_links_since = definition.sort_links_since.as_deref();
        context.git_ref = &tag.name;
        match mode {
            RefMode::Tag => {
                context.pins = self.upstream.pinned_versions.get(&tag.name).unwrap_or(&rules::NO_VERSIONS);
                // Metapackages fall back to the tag name; folder packages without a version are skipped.
                context.fallback_version = (precedence == Precedence::LastWins).then_some(tag.name.as_str());
            }
            RefMode::Branch(dev) => {
                dev_version = dev.clone();
                context.forced_version = Some(&dev_version);
                context.require = if templated { state.base_require.as_ref() } else { None };
            }
            RefMode::Nightly => {
                context.pins = &state.nightly;
                context.fallback_version = state.fallback.as_deref();
                context.replace_versions = &state.replace_versions;
                context.on_packagist = &state.on_packagist;
                context.require = if templated { state.base_require.as_ref() } else { None };
            }
            RefMode::Release(release) => {
                context.pins = &state.release_pins;
                context.fallback_version = Some(release);
                context.git_ref = release;
                context.replace_versions = &state.replace_versions;
                context.on_packagist = &state.on_packagist;
                // The reference's release preparation rewrites the repository's composer.json
                // files, not the template; a metapackage's version is the release's first.
                context.release_version = (!templated).then_some(release.as_str());
                context.forced_version = (precedence == Precedence::LastWins).then_some(release.as_str());
                context.require = if templated { state.base_require.as_ref() } else { None };
            }
        }
        let rewritten = match rules::rewrite(&text, &context) {
            Ok(rewritten) => rewritten,
            Err(error) => return self.reject(&tag.name, dir, error.to_string()),
        };
        if *mode == RefMode::Nightly
            && let Some(reason) = self.state.nightly_failed.get(&rewritten.name)
        {
            let reason = format!("{}: {reason}", rewritten.name);
            return self.reject(&tag.name, dir, reason);
        }
        let branch = matches!(mode, RefMode::Branch(_));
        let content = match precedence {
            Precedence::FirstWins => {
                let mut excludes = definition.excludes.clone();
                for conditional in &definition.conditional_excludes {
                    if conditional.applies_at(context.git_ref) && !excludes.contains(&conditional.path) {
                        excludes.push(conditional.path.clone());
                    }
                }
                for implicit in IMPLICIT_EXCLUDES {
                    if !excludes.iter().any(|e| e == implicit) {
                        excludes.push(implicit.to_owned());
                    }
                }
                Content::PackageTree { dir: dir.to_owned(), excludes, empty_dirs: definition.empty_dirs.clone() }
            }
            Precedence::LastWins => Content::ComposerJsonOnly,
        };
        let digest = if branch {
            Some(content_digest(self.repo, &root, dir, &tree, &rewritten.composer_json, &content)?)
        } else {
            None
        };
        // The reference's file replacements of one name@version (tags, branch heads).
        let mut files = Vec::new();
        if !branch && precedence == Precedence::FirstWins {
            for replacement in &self.upstream.file_replacements {
                if replacement.package != rewritten.name || replacement.version != rewritten.version {
                    continue;
                }
                for path in &replacement.files {
                    let source = format!("replace/{}/{}/{path}", replacement.package, replacement.version);
                    match self.state.resource_text(&source) {
                        Ok(text) => files.push(shared::messages::ExtraFile { path: path.clone(), text }),
                        Err(reason) => return self.reject(&tag.name, dir, format!("replacement file: {reason}")),
                    }
                }
            }
        }
        let candidate = Candidate {
            package: rewritten.name,
            version: rewritten.version,
            composer_json: rewritten.composer_json,
            precedence,
            upstream: self.upstream.key.clone(),
            repo_url: self.repo_url.to_owned(),
            tag: tag.name.clone(),
            branch,
            key: String::new(),
            commit: tag.commit,
            tree_id: tree.id(),
            content,
            final_identity: rewritten.final_identity,
            flavour: None,
            files,
        };
        self.push(candidate, None, digest.as_deref(), dir)
    }

    /// Checks a candidate's name and version, names its archive and adds it to the plan. The
    /// archive is `packages/<name>-<version>.zip`, with `key_version` instead of the version
    /// where the reference names it otherwise, and the digest's first 12 digits for branches.
    fn push(
        &mut self,
        mut candidate: Candidate,
        key_version: Option<&str>,
        digest: Option<&str>,
        dir: &str,
    ) -> Result<(), GitError> {
        // A branch name may hold '/', which a key must not; Composer's version keeps it.
        let key_version = key_version.map_or_else(|| shared::identity::key_version(&candidate.version), str::to_owned);
        candidate.key = shared::identity::archive_key(&candidate.package, &key_version, digest);
        if let Err(error) = shared::identity::check(&candidate.package, &candidate.version, &candidate.key) {
            return self.reject(&candidate.tag.clone(), dir, error.to_string());
        }
        self.plan.candidates.push(candidate);
        Ok(())
    }

    /// A community-edition metapackage (or a flavour of one) from the root composer.json.
    fn metapackage(&mut self, request: &MetaRequest<'_>, tag: &TagRef, mode: &RefMode) -> Result<(), GitError> {
        let root = self.root(tag.commit)?;
        let label = format!("metapackage {}", request.name);
        let text = match git::read_file(self.repo, &root, "composer.json")? {
            FileLookup::Found(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => return self.reject(&tag.name, &label, "no root composer.json".to_owned()),
        };
        let mut root_config = match shared::json::parse(&text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return self.reject(&tag.name, &label, "the root composer.json is not an object".to_owned()),
            Err(error) => return self.reject(&tag.name, &label, format!("root composer.json: {error}")),
        };
        let (state, upstream) = (self.state, self.upstream);
        let vendor = upstream.vendor.as_str();
        let base_url = self.config.repository.base_url.as_str();
        if *mode == RefMode::Nightly
            && let Some(reason) = state.nightly_failed.get(&format!("{vendor}/{}", request.name))
        {
            return self.reject(&tag.name, &label, reason.clone());
        }
        let made = match mode {
            RefMode::Tag => {
                let pins = upstream.pinned_versions.get(&tag.name).unwrap_or(&rules::NO_VERSIONS);
                distro::tagged_metapackage(state, upstream, request, root_config, &tag.name, pins, base_url).and_then(
                    |(mut config, verbatim)| {
                        let version = rules::truthy_version(&config).unwrap_or_else(|| tag.name.clone());
                        let name = format!("{vendor}/{}", request.name);
                        rules::apply_transforms_to(&mut config, &name, &version, vendor, &upstream.transforms)
                            .map_err(|e| e.to_string())?;
                        Ok((config, verbatim))
                    },
                )
            }
            RefMode::Branch(_) => return Ok(()),
            RefMode::Nightly | RefMode::Release(_) => {
                let pins = if *mode == RefMode::Nightly { &state.nightly } else { &state.release_pins };
                let mut release = state.release_state(vendor, &tag.name, pins, base_url);
                if let RefMode::Release(version) = mode {
                    release.version = Some(version);
                    release.fallback_version = Some(version);
                    release.git_ref = version;
                    // The release preparation rewrites the root composer.json too when a project
                    // metapackage is made from it.
                    if upstream.metapackages.iter().any(|m| m.kind == MetapackageKind::Project) {
                        shared::distribution::magento_to_mage_os(&mut root_config, &release);
                    }
                } else {
                    release.fallback_version = state.fallback.as_deref();
                }
                distro::branch_metapackage(state, upstream, request, root_config, &release)
            }
        };
        let (config, verbatim) = match made {
            Ok(made) => made,
            Err(reason) => return self.reject(&tag.name, &label, reason),
        };
        let name = match config.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => format!("{vendor}/{}", request.name),
        };
        let version = rules::truthy_version(&config).unwrap_or_else(|| tag.name.clone());
        let key_version = (*mode == RefMode::Tag).then(|| tag.name.clone());
        let mut files = Vec::new();
        if *mode == RefMode::Tag {
            for extra in request.extra_files.iter().filter(|f| f.refs.contains(&tag.name)) {
                match self.state.resource_text(&extra.source) {
                    Ok(text) => files.push(shared::messages::ExtraFile { path: extra.path.clone(), text }),
                    Err(reason) => return self.reject(&tag.name, &label, format!("extra file: {reason}")),
                }
            }
        }
        let composer_json = shared::json::stringify_pretty(&Value::Object(config));
        let candidate = Candidate {
            final_identity: (name.clone(), version.clone()),
            package: name,
            version,
            composer_json,
            precedence: Precedence::LastWins,
            upstream: self.upstream.key.clone(),
            repo_url: self.repo_url.to_owned(),
            tag: tag.name.clone(),
            branch: false,
            key: String::new(),
            commit: tag.commit,
            tree_id: root.id(),
            content: Content::ComposerJsonOnly,
            flavour: if verbatim { None } else { request.flavour.map(|(index, _)| index) },
            files,
        };
        self.push(candidate, key_version.as_deref(), None, &label)
    }
}

/// sha1 (hex) over what an archive's bytes are made from: the entries of the package tree that
/// are not excluded (an excluded subfolder, such as the modules below the root package, may
/// change without changing the archive), the `.gitattributes` of the folders above it (they
/// decide eol conversion), the composer.json and the content rules.
fn content_digest(
    repo: &Repository,
    root: &git2::Tree<'_>,
    dir: &str,
    tree: &git2::Tree<'_>,
    composer_json: &str,
    content: &Content,
) -> Result<String, GitError> {
    use sha1::Digest as _;
    let mut hasher = sha1::Sha1::new();
    let excludes: &[String] = match content {
        Content::PackageTree { excludes, .. } => excludes,
        Content::ComposerJsonOnly => &[],
    };
    let prefix = if dir.is_empty() { String::new() } else { format!("{dir}/") };
    digest_tree(repo, tree, &prefix, excludes, &mut hasher)?;
    // .gitattributes of the root and of every folder above the package.
    let mut ancestor = Some(root.clone());
    let mut path = String::new();
    let segments: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
    for index in 0..=segments.len() {
        let Some(current) = ancestor.take() else { break };
        if index < segments.len()
            && let Some(entry) = current.get_name(".gitattributes")
        {
            hasher.update(format!("attributes {path}\0").as_bytes());
            hasher.update(entry.id().as_bytes());
        }
        if let Some(segment) = segments.get(index) {
            path = format!("{path}{segment}/");
            ancestor = git::subtree(repo, &current, segment)?;
        }
    }
    hasher.update(composer_json.as_bytes());
    hasher.update(serde_json::to_vec(content).expect("content serialises"));
    Ok(hex::encode(hasher.finalize()))
}

/// Hashes the entries below `prefix` that the excludes (repository-relative path prefixes) leave
/// in; only folders holding an exclude are walked, the others count by their tree id.
fn digest_tree(
    repo: &Repository,
    tree: &git2::Tree<'_>,
    prefix: &str,
    excludes: &[String],
    hasher: &mut sha1::Sha1,
) -> Result<(), GitError> {
    use sha1::Digest as _;
    for entry in tree.iter() {
        let name = String::from_utf8_lossy(entry.name_bytes());
        let is_tree = entry.kind() == Some(git2::ObjectType::Tree);
        let path = if is_tree { format!("{prefix}{name}/") } else { format!("{prefix}{name}") };
        if excludes.iter().any(|e| path.starts_with(e.as_str())) {
            continue;
        }
        if is_tree && excludes.iter().any(|e| e.starts_with(path.as_str())) {
            let subtree = repo
                .find_tree(entry.id())
                .map_err(|e| GitError::Git { context: format!("cannot read tree {path}"), source: e })?;
            digest_tree(repo, &subtree, &path, excludes, hasher)?;
            continue;
        }
        hasher.update(format!("{:o} {path}\0", entry.filemode()).as_bytes());
        hasher.update(entry.id().as_bytes());
    }
    Ok(())
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
