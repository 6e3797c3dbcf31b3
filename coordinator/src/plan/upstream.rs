//! Planning one upstream: per package definition and ref, the composer.json read from git and
//! rewritten by the reference's rules into a [`Candidate`], in the reference generator's
//! processing order (spec 4.6): per upstream package folders, then single packages, then
//! metapackage folders, then community-edition metapackages; per definition refs in order (outer
//! loop), folders in byte order (inner loop).
//!
//! Planning reads only composer.json files and tree ids from git (no checkout). The whole
//! composer.json rewrite happens here, so a job carries the exact composer.json bytes and workers
//! apply no rules.

use std::collections::{BTreeMap, HashMap};

use git2::{Oid, Repository};
use serde_json::Value;
use shared::config::{
    FarmConfig, Flavour, MetapackageDefinition, MetapackageKind, PackageDefinition, UpstreamConfig, VersionRule,
};
use shared::git::{self, FileLookup, GitError, TagRef};
use shared::messages::Content;
use shared::rules::{self, RuleContext};
use shared::version;

use super::candidate::{Candidate, Precedence};
use super::digest::content_digest;
use super::findings::Rejection;
use super::inputs::TargetState;
use super::metapackage::{self, MetaRequest};
use super::refs::{RefMode, select_refs};
use crate::manifest::Provenance;

/// Excludes the reference adds to every package definition (repository-relative, so they only
/// affect a package at the repository root).
pub const IMPLICIT_EXCLUDES: [&str; 2] = ["composer.json", ".git/"];

/// What planning found for one upstream.
#[derive(Debug, Default)]
pub struct UpstreamPlan {
    /// Candidates in processing order.
    pub candidates: Vec<Candidate>,
    /// Rejected input.
    pub rejections: Vec<Rejection>,
    /// Tags built from, in processing order.
    pub tags: Vec<String>,
    /// Every ref selected (`refs/tags/<t>`, `refs/heads/<b>`) with its commit: what the build
    /// records as done, and what polling compares against.
    pub refs: BTreeMap<String, String>,
    /// Refs selected but not planned, since the last complete build had them at the same commit
    /// (names as in [`Candidate::tag`]).
    pub skipped: Vec<String>,
}

/// Plans one upstream from its synced repository against the target's inputs.
pub fn plan_upstream(
    config: &FarmConfig,
    upstream: &UpstreamConfig,
    repo: &Repository,
    state: &TargetState,
    known: Option<&BTreeMap<String, String>>,
) -> Result<UpstreamPlan, GitError> {
    let repo_url = config.resolve_url(&upstream.url);
    let mut plan = UpstreamPlan::default();
    let mut modes = ref_modes(upstream, repo, state, &mut plan)?;
    if let Some(known) = known {
        // A tag or branch at the commit the last complete build had: every package it makes is
        // published (that build had the same rules), so it is not read again.
        modes.retain(|(tag, mode)| {
            let name = match mode {
                RefMode::Tag => format!("refs/tags/{}", tag.name),
                RefMode::Branch(_) => format!("refs/heads/{}", tag.name),
                RefMode::Nightly | RefMode::Release(_) => return true,
            };
            let unchanged = known.get(&name) == Some(&tag.commit.to_string());
            if unchanged {
                plan.skipped.push(tag.name.clone());
            }
            !unchanged
        });
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
            reader.package(definition, (&definition.dir, None), tag, Precedence::FirstWins, mode)?;
        }
    }
    for definition in &upstream.metapackage_dirs {
        for (tag, mode) in &modes {
            reader.package(definition, (&definition.dir, None), tag, Precedence::LastWins, mode)?;
        }
    }
    for meta in &upstream.metapackages {
        let from = meta.from_tag.as_ref().or(upstream.from_tag.as_ref());
        for (request, flavour) in &metapackage_requests(meta, &config.target.flavours) {
            for (tag, mode) in &modes {
                if metapackage_wanted(mode, tag, *flavour, from) {
                    reader.metapackage(request, tag, mode)?;
                }
            }
        }
    }
    Ok(plan)
}

/// The refs to plan and how each is built: the selected tags and branches (not for a nightly),
/// then the `ref` branch head of a nightly or a new release. Records the tags and refs in `plan`.
fn ref_modes(
    upstream: &UpstreamConfig,
    repo: &Repository,
    state: &TargetState,
    plan: &mut UpstreamPlan,
) -> Result<Vec<(TagRef, RefMode)>, GitError> {
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
            upstream: Provenance::Git(upstream.key.clone()),
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
                upstream: Provenance::Git(upstream.key.clone()),
                tag: Some(branch.clone()),
                dir: None,
                reason: "the upstream has no such branch (ref): nothing is built from it".to_owned(),
            }),
        }
    }
    Ok(modes)
}

/// The community-edition metapackages one definition makes: itself and, for a product, every
/// flavour's product (and project), each with the flavour it belongs to.
fn metapackage_requests<'f>(
    meta: &MetapackageDefinition,
    flavours: &'f [Flavour],
) -> Vec<(MetaRequest<'f>, Option<&'f Flavour>)> {
    let own =
        MetaRequest { name: meta.name.clone(), kind: meta.kind, flavour: None, extra_files: meta.extra_files.clone() };
    let mut requests = vec![(own, None)];
    if meta.kind == MetapackageKind::Product {
        for (index, flavour) in flavours.iter().enumerate() {
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
    requests
}

/// Whether a metapackage is made at this ref: at tags from `from` on (a flavour's from its
/// `since`), never at development branches, always at a nightly or release head.
fn metapackage_wanted(mode: &RefMode, tag: &TagRef, flavour: Option<&Flavour>, from: Option<&String>) -> bool {
    let at_or_after = |start: &str| version::compare(&tag.name, start).is_ok_and(|c| c.is_ge());
    match mode {
        RefMode::Tag => {
            let since_ok = match flavour {
                Some(flavour) => flavour.since.as_deref().is_some_and(at_or_after),
                None => true,
            };
            since_ok && from.is_none_or(|from| at_or_after(from))
        }
        RefMode::Branch(_) => false,
        RefMode::Nightly | RefMode::Release(_) => true,
    }
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
            upstream: Provenance::Git(self.upstream.key.clone()),
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
        for (name, tree) in git::subfolders(&parent) {
            let folder = if definition.dir.is_empty() { name } else { format!("{}/{name}", definition.dir) };
            let excluded =
                definition.excludes.iter().any(|e| folder == e.trim_end_matches('/') || folder.starts_with(e.as_str()));
            if !excluded {
                // The folder's tree is known: looking it up by path again would read and parse
                // the (large, uncached) parent tree once per package.
                self.package(definition, (&folder, Some(tree)), tag, Precedence::FirstWins, mode)?;
            }
        }
        Ok(())
    }

    /// One package from `dir/composer.json` (or the definition's template); `folder` is the
    /// folder and, when the caller has it, its tree id.
    fn package(
        &mut self,
        definition: &PackageDefinition,
        folder: (&str, Option<Oid>),
        tag: &TagRef,
        precedence: Precedence,
        mode: &RefMode,
    ) -> Result<(), GitError> {
        let (dir, known) = folder;
        let root = self.root(tag.commit)?;
        let tree = match known {
            Some(id) => Some(self.repo.find_tree(id).map_err(|source| GitError::Git {
                context: format!("cannot read folder {dir} at {}", tag.name),
                source,
            })?),
            None => git::subtree(self.repo, &root, dir)?,
        };
        let Some(tree) = tree else {
            return self.reject(&tag.name, dir, "package folder does not exist at this tag".to_owned());
        };
        let text = match self.composer_text(definition, &tree, tag, mode)? {
            Ok(text) => text,
            Err(reason) => return self.reject(&tag.name, dir, reason),
        };
        let context = self.rule_context(definition, tag, precedence, mode);
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
        let content = package_content(definition, dir, context.git_ref, precedence);
        let digest = if branch {
            Some(content_digest(self.repo, &root, dir, &tree, &rewritten.composer_json, &content)?)
        } else {
            None
        };
        // The reference's file replacements of one name@version (tags, branch heads).
        let files = if !branch && precedence == Precedence::FirstWins {
            match self.replacement_files(&rewritten.name, &rewritten.version) {
                Ok(files) => files,
                Err(reason) => return self.reject(&tag.name, dir, format!("replacement file: {reason}")),
            }
        } else {
            Vec::new()
        };
        let candidate = Candidate {
            package: rewritten.name,
            version: rewritten.version,
            composer_json: rewritten.composer_json,
            precedence,
            upstream: Provenance::Git(self.upstream.key.clone()),
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

    /// The package's composer.json text: the folder's file, or the definition's template (at a
    /// tag, its history file). The inner error is why the package is rejected.
    fn composer_text(
        &self,
        definition: &PackageDefinition,
        tree: &git2::Tree<'_>,
        tag: &TagRef,
        mode: &RefMode,
    ) -> Result<Result<String, String>, GitError> {
        let Some(template) = &definition.composer_template else {
            return Ok(match git::read_file(self.repo, tree, "composer.json")? {
                // Node decodes invalid UTF-8 with replacement characters; so do we.
                FileLookup::Found(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
                FileLookup::Missing => Err("no composer.json".to_owned()),
                FileLookup::NotAFile => Err("composer.json is not a regular file".to_owned()),
            });
        };
        let at_tag = (*mode == RefMode::Tag).then_some(tag.name.as_str());
        Ok(match self.state.template_text(template, at_tag) {
            Ok(Some(text)) => Ok(text),
            Ok(None) if at_tag.is_some() => Err(format!(
                "no history file for this tag ({template} with history/ and {}.json): skipped, as the reference",
                tag.name
            )),
            Ok(None) => Err(format!("template {template} does not exist")),
            Err(reason) => Err(reason),
        })
    }

    /// The reference's rules for a package at this ref: the tag's pins, a branch's `dev-` version,
    /// the nightly map or the release, and a template's base dependencies.
    fn rule_context<'c>(
        &'c self,
        definition: &'c PackageDefinition,
        tag: &'c TagRef,
        precedence: Precedence,
        mode: &'c RefMode,
    ) -> RuleContext<'c> {
        let (state, upstream) = (self.state, self.upstream);
        let templated = definition.composer_template.is_some();
        let mut context = RuleContext::tagged(&upstream.vendor, &rules::NO_VERSIONS, None, &upstream.transforms);
        context.composer_repo_url = &self.config.repository.base_url;
        context.sort_links_since = definition.sort_links_since.as_deref();
        context.git_ref = &tag.name;
        match mode {
            RefMode::Tag => {
                context.pins = upstream.pinned_versions.get(&tag.name).unwrap_or(&rules::NO_VERSIONS);
                // Metapackages fall back to the tag name; folder packages without a version are skipped.
                context.fallback_version = (precedence == Precedence::LastWins).then_some(tag.name.as_str());
            }
            RefMode::Branch(dev) => {
                context.forced_version = Some(dev);
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
        context
    }

    /// The configured replacement files of one name@version, read from the resources folder.
    fn replacement_files(&self, name: &str, version: &str) -> Result<Vec<shared::messages::ExtraFile>, String> {
        let mut files = Vec::new();
        for replacement in &self.upstream.file_replacements {
            if replacement.package != name || replacement.version != version {
                continue;
            }
            for path in &replacement.files {
                let source = format!("replace/{}/{}/{path}", replacement.package, replacement.version);
                files
                    .push(shared::messages::ExtraFile { path: path.clone(), text: self.state.resource_text(&source)? });
            }
        }
        Ok(files)
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
                metapackage::tagged_metapackage(state, upstream, request, root_config, &tag.name, pins, base_url)
                    .and_then(|(mut config, verbatim)| {
                        let version = rules::truthy_version(&config).unwrap_or_else(|| tag.name.clone());
                        let name = format!("{vendor}/{}", request.name);
                        rules::apply_transforms_to(&mut config, &name, &version, vendor, &upstream.transforms)
                            .map_err(|e| e.to_string())?;
                        Ok((config, verbatim))
                    })
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
                metapackage::branch_metapackage(state, upstream, request, root_config, &release)
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
            upstream: Provenance::Git(self.upstream.key.clone()),
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

/// What a package's archive holds: a folder package's tree minus its excludes (the conditional
/// ones that apply at `git_ref`, and the reference's implicit ones), or a metapackage's
/// composer.json alone.
fn package_content(definition: &PackageDefinition, dir: &str, git_ref: &str, precedence: Precedence) -> Content {
    if precedence == Precedence::LastWins {
        return Content::ComposerJsonOnly;
    }
    let mut excludes = definition.excludes.clone();
    for conditional in &definition.conditional_excludes {
        if conditional.applies_at(git_ref) && !excludes.contains(&conditional.path) {
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
