//! Git access with git2: a cache of bare clones, tags in the reference's order, and package trees
//! read straight from the object database (no working tree, no `git` subprocess).
//!
//! What a package archive holds is what `git checkout` would write as regular files below the
//! package folder: blobs with mode 100644/100755, after `.gitattributes` eol conversion. Symlinks
//! and submodule entries never become entries (as in the reference); a symlink that points outside
//! the repository is reported as a warning, and its target is never read. A tree entry whose name
//! git refuses to check out (`.git` in any spelling, `..`, a backslash; see [`crate::pathcheck`])
//! fails the package with [`GitError::UnsafePath`], unless an exclude leaves it out.
//!
//! libgit2's strict hash verification (hashing every object again, with SHA-1 collision
//! detection, each time it is read) is turned off: every object's id was computed from its
//! content when the pack was indexed at fetch, and zlib's checksum catches a damaged object on
//! disk. It cost about a tenth of a build's CPU (`sha1_compression_states` and `ubc_check` in a
//! profile of the workers).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use git2::{AutotagOption, FetchOptions, ObjectType, Oid, Repository, Tree};
use sha1::Digest as _;

use crate::archive::Content;
use crate::config::redact_url;
use crate::gitattributes::{self, AttributesFile, EolConversion, Macros};
use crate::pathcheck::{self, PathRule};

/// How much memory git reads may hold, process-wide (`[build]` `blob_cache_mib`,
/// `largest_cached_blob_kib`, `pack_map_mib`, `object_cache_mib`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GitMemory {
    /// Bytes of blob content kept across jobs (0: none).
    pub blob_cache_bytes: u64,
    /// Blobs larger than this are read for each archive and dropped after it, never cached.
    pub largest_cached_blob: u64,
    /// Bytes of pack files libgit2 keeps mapped at once (it reads packs through mapped windows,
    /// whose touched pages count as the process's resident memory).
    pub pack_map_bytes: u64,
    /// Bytes of parsed objects libgit2 caches (its object cache's limit, all repositories).
    pub object_cache_bytes: u64,
}

impl GitMemory {
    /// The limits `[build]` sets.
    pub fn of(build: &crate::config::BuildConfig) -> GitMemory {
        GitMemory {
            blob_cache_bytes: build.blob_cache_mib << 20,
            largest_cached_blob: build.largest_cached_blob_kib << 10,
            pack_map_bytes: build.pack_map_mib << 20,
            object_cache_bytes: build.object_cache_mib << 20,
        }
    }
}

static MEMORY: std::sync::OnceLock<GitMemory> = std::sync::OnceLock::new();

/// Sets the process's git memory limits. They hold from the first git read on, so this is called
/// first; a process that already read (such as a test running several farms) keeps the first,
/// and says so.
pub fn configure(memory: GitMemory) {
    let in_force = *MEMORY.get_or_init(|| memory);
    if in_force != memory {
        tracing::debug!(?in_force, ignored = ?memory, "git memory limits were already set in this process");
    }
}

fn memory() -> GitMemory {
    *MEMORY.get_or_init(|| GitMemory::of(&crate::config::BuildConfig::default()))
}

/// Process-wide libgit2 settings, applied once before the first repository is opened.
#[allow(unsafe_code)]
fn configure_libgit2() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        git2::opts::strict_hash_verification(false);
        let map = usize::try_from(memory().pack_map_bytes).unwrap_or(usize::MAX).max(1 << 20);
        // SAFETY: libgit2's global options are not synchronised; this runs once (under `ONCE`),
        // before this process opens any repository, so no other libgit2 call runs concurrently
        // with it. A window is at most a quarter of the limit, so the limit can hold several.
        let set = unsafe {
            git2::opts::set_mwindow_size((map / 4).max(1 << 20))
                .and_then(|()| git2::opts::set_mwindow_mapped_limit(map))
        };
        if let Err(error) = set {
            tracing::warn!(%error, "cannot limit libgit2's mapped pack windows");
        }
        let cache = libc::ssize_t::try_from(memory().object_cache_bytes).unwrap_or(libc::ssize_t::MAX);
        // SAFETY: as above (once, before any repository is opened); the option takes one ssize_t
        // by value, as libgit2's `git_libgit2_opts` documents for GIT_OPT_SET_CACHE_MAX_SIZE.
        let status =
            unsafe { libgit2_sys::git_libgit2_opts(libgit2_sys::GIT_OPT_SET_CACHE_MAX_SIZE as libc::c_int, cache) };
        if status < 0 {
            tracing::warn!("cannot limit libgit2's object cache");
        }
    });
}

/// A git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// libgit2 reported an error.
    #[error("{context}: {source}")]
    Git {
        /// What we were doing.
        context: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// Fetching from the upstream failed (network, server, missing repository): may pass.
    #[error("cannot fetch {url}: {source}")]
    Fetch {
        /// Redacted URL.
        url: String,
        /// libgit2's error.
        #[source]
        source: git2::Error,
    },
    /// The cache folder could not be prepared.
    #[error("cannot prepare git cache {path}: {source}")]
    Cache {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A folder that should exist at the commit does not.
    #[error("folder '{dir}' does not exist at {commit}")]
    MissingDir {
        /// Repository-relative folder.
        dir: String,
        /// Commit id.
        commit: String,
    },
    /// A path in the tree is not UTF-8, so it cannot be a zip entry name the reference would write.
    #[error("path '{0}' is not valid UTF-8")]
    NonUtf8Path(String),
    /// A tree entry name git refuses to check out (see [`crate::pathcheck`]): the package is not
    /// built, as a checkout of the tree would fail.
    #[error(
        "tree entry {} is refused by git's path rules: {rule}; the package is not built (an excludes entry for the path leaves it out)",
        pathcheck::shown(path)
    )]
    UnsafePath {
        /// Repository-relative path of the entry.
        path: String,
        /// The rule its name breaks.
        rule: PathRule,
    },
    /// A folder deeper than git traverses ([`MAX_TREE_DEPTH`]).
    #[error(
        "folder {} is more than {MAX_TREE_DEPTH} levels deep (git's core.maxTreeDepth); the package is not built",
        pathcheck::shown(path)
    )]
    TooDeep {
        /// Repository-relative path of the folder.
        path: String,
    },
}

impl GitError {
    /// Whether trying again later may succeed (fetching, the local cache), as opposed to errors
    /// about the content (a missing folder or commit after a successful fetch).
    pub fn is_transient(&self) -> bool {
        matches!(self, GitError::Fetch { .. } | GitError::Cache { .. })
    }
}

fn git_err(context: impl Into<String>) -> impl FnOnce(git2::Error) -> GitError {
    move |source| GitError::Git { context: context.into(), source }
}

/// A folder of bare clones, one per upstream URL.
#[derive(Debug, Clone)]
pub struct GitCache {
    root: PathBuf,
}

impl GitCache {
    /// A cache rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        configure_libgit2();
        GitCache { root: root.into() }
    }

    /// The bare clone's folder for `url`: the last path segment plus a hash of the whole URL, so
    /// that same-named repositories of different owners do not collide.
    pub fn path_for(&self, url: &str) -> PathBuf {
        let trimmed = url.trim_end_matches('/');
        // The name shown is the last path segment without query, fragment or user info: tokens
        // travel there and must not become a folder name (the hash still tells URLs apart).
        let path = trimmed.split(['?', '#']).next().unwrap_or_default().trim_end_matches('/');
        let last = path.rsplit(['/', ':', '@']).next().filter(|s| !s.is_empty()).unwrap_or("repo");
        let stem = last.strip_suffix(".git").unwrap_or(last);
        let safe: String =
            stem.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
        let digest = hex::encode(sha1::Sha1::digest(trimmed.as_bytes()));
        self.root.join(format!("{safe}-{}.git", &digest[..12]))
    }

    /// Clones or updates the bare mirror of `url`: every branch and tag, forced (a moved tag is
    /// followed; immutability of published archives is enforced by storage, not here).
    pub fn sync(&self, url: &str) -> Result<Repository, GitError> {
        let path = self.path_for(url);
        // One fetch per clone at a time in this process: libgit2 fails on concurrent ref locks.
        let clone_lock = {
            static LOCKS: LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<std::sync::Mutex<()>>>>> =
                LazyLock::new(Default::default);
            Arc::clone(LOCKS.lock().expect("lock map").entry(path.clone()).or_default())
        };
        let _guard = clone_lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        std::fs::create_dir_all(&self.root).map_err(|source| GitError::Cache { path: self.root.clone(), source })?;
        // And across processes sharing the cache folder (workers on one machine): an exclusive
        // lock on a sibling file, released when the file closes (also when the process dies).
        let lock_path = path.with_extension("git.lock");
        let _process_lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|source| GitError::Cache { path: lock_path.clone(), source })?;
        let repo = match Repository::open_bare(&path) {
            Ok(repo) => repo,
            Err(_) => {
                if path.exists() {
                    // A half-created clone from an interrupted run: start again.
                    std::fs::remove_dir_all(&path).map_err(|source| GitError::Cache { path: path.clone(), source })?;
                }
                Repository::init_bare(&path).map_err(git_err(format!("cannot create {}", path.display())))?
            }
        };
        {
            let shown = redact_url(url);
            let mut remote = repo.remote_anonymous(url).map_err(git_err(format!("bad upstream URL {shown}")))?;
            let mut options = FetchOptions::new();
            options.download_tags(AutotagOption::All).prune(git2::FetchPrune::On);
            remote
                .fetch(&["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"], Some(&mut options), None)
                .map_err(|source| GitError::Fetch { url: shown.clone(), source })?;
        }
        Ok(repo)
    }

    /// Opens the existing clone of `url`, fetching it first if it does not have `commit`.
    pub fn open_with_commit(&self, url: &str, commit: Oid) -> Result<Repository, GitError> {
        if let Ok(repo) = Repository::open_bare(self.path_for(url))
            && repo.find_commit(commit).is_ok()
        {
            return Ok(repo);
        }
        let repo = self.sync(url)?;
        repo.find_commit(commit).map_err(git_err(format!("commit {commit} not found in {}", redact_url(url))))?;
        Ok(repo)
    }
}

/// A tag and the commit it points to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRef {
    /// Tag name without `refs/tags/`.
    pub name: String,
    /// The commit the tag peels to.
    pub commit: Oid,
}

/// A tag that cannot be built from, with the reason.
pub type UnusableTag = (String, String);

/// Lists tags in `git tag` order (byte order of the names). Tags that do not point to a commit
/// are returned separately with a reason.
pub fn list_tags(repo: &Repository) -> Result<(Vec<TagRef>, Vec<UnusableTag>), GitError> {
    let mut tags = Vec::new();
    let mut unusable = Vec::new();
    let references = repo.references_glob("refs/tags/*").map_err(git_err("cannot list tags"))?;
    for reference in references {
        let reference = reference.map_err(git_err("cannot read a tag"))?;
        let Some(name) = reference.name().and_then(|n| n.strip_prefix("refs/tags/")) else {
            unusable.push((
                String::from_utf8_lossy(reference.name_bytes()).into_owned(),
                "tag name is not UTF-8".to_owned(),
            ));
            continue;
        };
        match reference.peel(ObjectType::Commit) {
            Ok(object) => tags.push(TagRef { name: name.to_owned(), commit: object.id() }),
            Err(e) => unusable.push((name.to_owned(), format!("does not point to a commit: {}", e.message()))),
        }
    }
    tags.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    Ok((tags, unusable))
}

/// The tree of a commit.
pub fn commit_tree(repo: &Repository, commit: Oid) -> Result<Tree<'_>, GitError> {
    let commit = repo.find_commit(commit).map_err(git_err(format!("commit {commit} not found")))?;
    commit.tree().map_err(git_err("cannot read commit tree"))
}

/// The subtree at a repository-relative folder (`""` is the root), if it exists and is a folder.
pub fn subtree<'r>(repo: &'r Repository, root: &Tree<'r>, dir: &str) -> Result<Option<Tree<'r>>, GitError> {
    if dir.is_empty() {
        return Ok(Some(root.clone()));
    }
    let entry = match root.get_path(Path::new(dir)) {
        Ok(entry) => entry,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
        Err(e) => return Err(git_err(format!("cannot look up {dir}"))(e)),
    };
    if entry.kind() != Some(ObjectType::Tree) {
        return Ok(None);
    }
    let tree = repo.find_tree(entry.id()).map_err(git_err(format!("cannot read folder {dir}")))?;
    Ok(Some(tree))
}

/// Immediate subfolders of a tree as `(name, tree id)`, in byte order, without dot-folders (the
/// reference's `dir/*/` glob never finds them), symlinks or submodules.
pub fn subfolders(tree: &Tree<'_>) -> Vec<(String, Oid)> {
    let mut folders: Vec<(String, Oid)> = tree
        .iter()
        .filter(|entry| entry.kind() == Some(ObjectType::Tree))
        .filter_map(|entry| entry.name().map(|name| (name.to_owned(), entry.id())))
        .filter(|(name, _)| !name.starts_with('.'))
        .collect();
    folders.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    folders
}

/// What a regular file lookup found.
#[derive(Debug)]
pub enum FileLookup {
    /// A regular file's content.
    Found(Vec<u8>),
    /// Nothing at that path.
    Missing,
    /// Something other than a regular file (folder, symlink, submodule).
    NotAFile,
}

/// Reads a regular file from a tree.
pub fn read_file(repo: &Repository, tree: &Tree<'_>, path: &str) -> Result<FileLookup, GitError> {
    let entry = match tree.get_path(Path::new(path)) {
        Ok(entry) => entry,
        Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(FileLookup::Missing),
        Err(e) => return Err(git_err(format!("cannot look up {path}"))(e)),
    };
    if entry.kind() != Some(ObjectType::Blob) || !is_regular_mode(entry.filemode()) {
        return Ok(FileLookup::NotAFile);
    }
    let blob = repo.find_blob(entry.id()).map_err(git_err(format!("cannot read {path}")))?;
    Ok(FileLookup::Found(blob.content().to_vec()))
}

fn is_regular_mode(mode: i32) -> bool {
    matches!(mode, 0o100644 | 0o100755 | 0o100664)
}

/// One file of a package, ready for the archive.
#[derive(Debug, Clone)]
pub struct PackageFile {
    /// Package-relative path.
    pub path: String,
    /// Bytes as checkout would write them, with their CRC-32.
    pub data: Content,
    /// True for git mode 100755.
    pub executable: bool,
}

/// The files of a package and anything worth reporting about them.
#[derive(Debug, Default)]
pub struct PackageFiles {
    /// Regular files, in tree order.
    pub files: Vec<PackageFile>,
    /// Warnings for the build report.
    pub warnings: Vec<String>,
}

/// Collects the regular files below `dir` at `commit`, minus every path for which some exclude is
/// equal or a prefix (repository-relative, no path boundary), minus the package-root composer.json
/// (the generated one replaces it).
pub fn collect_package_files(
    repo: &Repository,
    commit: Oid,
    dir: &str,
    excludes: &[String],
) -> Result<PackageFiles, GitError> {
    let root = commit_tree(repo, commit)?;
    let mut macros = Macros::default();
    let mut attributes: Vec<(String, AttributesFile)> = Vec::new();
    if let Some(file) = attributes_in(repo, &root, &mut macros, true)? {
        attributes.push((String::new(), file));
    }
    // Attribute files of the folders between the root and the package folder also apply.
    let mut current = root.clone();
    let mut walked = String::new();
    if !dir.is_empty() {
        for component in dir.split('/') {
            walked = if walked.is_empty() { component.to_owned() } else { format!("{walked}/{component}") };
            current = match subtree(repo, &current, component)? {
                Some(tree) => tree,
                None => return Err(GitError::MissingDir { dir: dir.to_owned(), commit: commit.to_string() }),
            };
            if let Some(file) = attributes_in(repo, &current, &mut macros, false)? {
                attributes.push((walked.clone(), file));
            }
        }
    }
    let mut walker = Walker { repo, excludes, macros, attributes, out: PackageFiles::default() };
    walker.walk(current, dir)?;
    Ok(walker.out)
}

fn attributes_in(
    repo: &Repository,
    tree: &Tree<'_>,
    macros: &mut Macros,
    is_root: bool,
) -> Result<Option<AttributesFile>, GitError> {
    match tree.get_name(".gitattributes") {
        Some(entry) if entry.kind() == Some(ObjectType::Blob) => {
            let blob = repo.find_blob(entry.id()).map_err(git_err("cannot read .gitattributes"))?;
            let text = String::from_utf8_lossy(blob.content());
            Ok(Some(AttributesFile::parse(&text, macros, is_root)))
        }
        _ => Ok(None),
    }
}

/// git's `core.maxTreeDepth` default: the deepest folder (in path components from the repository
/// root) git itself traverses, and so the deepest a package may have.
pub const MAX_TREE_DEPTH: usize = 4096;

/// One folder being walked: its tree, the next entry to look at, its paths, and whether it added
/// a `.gitattributes` file to [`Walker::attributes`].
struct Frame<'r> {
    tree: Tree<'r>,
    next: usize,
    repo_dir: String,
    package_dir: String,
    attributes: bool,
}

struct Walker<'a> {
    repo: &'a Repository,
    excludes: &'a [String],
    macros: Macros,
    /// `.gitattributes` files that apply at the current depth, root first.
    attributes: Vec<(String, AttributesFile)>,
    out: PackageFiles,
}

impl<'a> Walker<'a> {
    fn excluded(&self, repo_path: &str) -> bool {
        self.excludes.iter().any(|e| repo_path.starts_with(e.as_str()))
    }

    /// Walks the package folder depth first in tree order, with a stack of folders instead of
    /// recursion: a hostile tree thousands of levels deep fails the package
    /// ([`GitError::TooDeep`]) instead of overflowing the thread's stack, which would abort the
    /// whole process.
    fn walk(&mut self, tree: Tree<'a>, repo_dir: &str) -> Result<(), GitError> {
        let base_depth = repo_dir.split('/').filter(|s| !s.is_empty()).count();
        let root =
            Frame { tree, next: 0, repo_dir: repo_dir.to_owned(), package_dir: String::new(), attributes: false };
        let mut stack = vec![root];
        while let Some(frame) = stack.last_mut() {
            let Some(entry) = frame.tree.get(frame.next).map(|entry| entry.to_owned()) else {
                if stack.pop().is_some_and(|done| done.attributes) {
                    self.attributes.pop();
                }
                continue;
            };
            frame.next += 1;
            if let Some(folder) = self.entry(&entry, &frame.repo_dir, &frame.package_dir)? {
                if base_depth + stack.len() > MAX_TREE_DEPTH {
                    return Err(GitError::TooDeep { path: folder.repo_dir });
                }
                stack.push(folder);
            }
        }
        Ok(())
    }

    /// Takes in one tree entry; a folder to walk next is returned.
    fn entry(
        &mut self,
        entry: &git2::TreeEntry<'_>,
        repo_dir: &str,
        package_dir: &str,
    ) -> Result<Option<Frame<'a>>, GitError> {
        let name = std::str::from_utf8(entry.name_bytes()).map_err(|_| {
            GitError::NonUtf8Path(format!("{repo_dir}/{}", String::from_utf8_lossy(entry.name_bytes())))
        })?;
        let repo_path = join(repo_dir, name);
        let folder = entry.filemode() == 0o040000;
        // Every file below a folder starts with "<folder>/", so an exclude that is a prefix of
        // that removes the whole folder.
        let excluded = if folder { self.excluded(&format!("{repo_path}/")) } else { self.excluded(&repo_path) };
        if excluded {
            return Ok(None);
        }
        // Whatever its kind: git refuses the whole tree, and so do we (an exclude is the way to
        // build the package without the entry, as the check comes after it).
        pathcheck::check_name(name).map_err(|rule| GitError::UnsafePath { path: repo_path.clone(), rule })?;
        let package_path = join(package_dir, name);
        match entry.filemode() {
            0o040000 => return self.folder(entry, repo_path, package_path).map(Some),
            // The package-root composer.json is replaced by the generated one.
            mode if is_regular_mode(mode) && package_path != "composer.json" => {
                self.file(entry, &repo_path, package_path, mode == 0o100755)?;
            }
            0o120000 => self.symlink(entry, repo_dir, &repo_path)?,
            // Submodules (160000) produce nothing, as in a checkout without submodules.
            _ => {}
        }
        Ok(None)
    }

    fn folder(
        &mut self,
        entry: &git2::TreeEntry<'_>,
        repo_path: String,
        package_path: String,
    ) -> Result<Frame<'a>, GitError> {
        let tree = self.repo.find_tree(entry.id()).map_err(git_err(format!("cannot read folder {repo_path}")))?;
        let attributes = match attributes_in(self.repo, &tree, &mut self.macros, false)? {
            Some(file) => {
                self.attributes.push((repo_path.clone(), file));
                true
            }
            None => false,
        };
        Ok(Frame { tree, next: 0, repo_dir: repo_path, package_dir: package_path, attributes })
    }

    fn file(
        &mut self,
        entry: &git2::TreeEntry<'_>,
        repo_path: &str,
        package_path: String,
        executable: bool,
    ) -> Result<(), GitError> {
        let conversion = self.conversion(repo_path);
        let read = || {
            let blob = self.repo.find_blob(entry.id()).map_err(git_err(format!("cannot read {repo_path}")))?;
            let data: Arc<[u8]> = match gitattributes::convert(blob.content(), conversion) {
                Some(converted) => Arc::from(converted),
                None => Arc::from(blob.content()),
            };
            Ok::<Content, GitError>(Content::new(data))
        };
        let limits = memory();
        let key = (entry.id(), conversion);
        let data = match blob_cache().get(&key) {
            Some(data) => data,
            None => {
                let data = read()?;
                // A large blob is read again for each archive, never cached: it would evict the
                // small ones every version of a package shares.
                if limits.blob_cache_bytes > 0 && data.len() as u64 <= limits.largest_cached_blob {
                    blob_cache().insert(key, data.clone());
                }
                data
            }
        };
        self.out.files.push(PackageFile { path: package_path, data, executable });
        Ok(())
    }

    fn symlink(&mut self, entry: &git2::TreeEntry<'_>, repo_dir: &str, repo_path: &str) -> Result<(), GitError> {
        let blob = self.repo.find_blob(entry.id()).map_err(git_err(format!("cannot read symlink {repo_path}")))?;
        let target = String::from_utf8_lossy(blob.content()).into_owned();
        if points_outside(repo_dir, &target) {
            self.out.warnings.push(format!(
                "symlink {repo_path} -> {target} points outside the repository; left out (symlinks are never archived)"
            ));
        }
        Ok(())
    }

    fn conversion(&self, repo_path: &str) -> EolConversion {
        if self.attributes.is_empty() {
            return EolConversion::None;
        }
        let files: Vec<(&str, &AttributesFile)> = self.attributes.iter().map(|(d, f)| (d.as_str(), f)).collect();
        gitattributes::conversion_for(repo_path, &files)
    }
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() { name.to_owned() } else { format!("{dir}/{name}") }
}

/// Whether a symlink in `link_dir` with `target` resolves outside the repository root.
fn points_outside(link_dir: &str, target: &str) -> bool {
    if target.starts_with('/') {
        return true;
    }
    let mut depth: i64 = link_dir.split('/').filter(|s| !s.is_empty()).count() as i64;
    for component in target.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Blob contents after eol conversion, keyed by blob id and conversion, shared by every worker
/// thread of the process. Consecutive versions of a package (and the base package at every tag)
/// share most blobs; the cache makes each blob inflate (and its CRC-32 be computed) about once per
/// build instead of once per archive. Blob ids are content hashes, so entries are valid across
/// repositories and tags. Bounded by bytes ([`GitMemory`]).
fn blob_cache() -> &'static BlobCache {
    static CACHE: LazyLock<BlobCache> = LazyLock::new(|| {
        let bytes = memory().blob_cache_bytes.max(1);
        quick_cache::sync::Cache::with_weighter(((bytes >> 12) as usize).clamp(64, 1 << 20), bytes, BlobWeight)
    });
    &CACHE
}

/// Empties the blob cache (benchmarks compare cold runs; memory can be returned after a build).
pub fn clear_blob_cache() {
    blob_cache().clear();
}

type BlobCache = quick_cache::sync::Cache<(Oid, EolConversion), Content, BlobWeight>;

#[derive(Clone)]
struct BlobWeight;

impl quick_cache::Weighter<(Oid, EolConversion), Content> for BlobWeight {
    fn weight(&self, _key: &(Oid, EolConversion), value: &Content) -> u64 {
        // Never 0: quick_cache treats weight 0 as "not evictable".
        value.len() as u64 + 64
    }
}

/// A per-thread cache of opened repositories, so a worker thread does not reopen (and re-read the
/// pack indexes of) the same repository for every job.
pub fn with_repository<T>(path: &Path, f: impl FnOnce(&Repository) -> T) -> Result<T, GitError> {
    thread_local! {
        static OPEN: std::cell::RefCell<HashMap<PathBuf, Repository>> = std::cell::RefCell::new(HashMap::new());
    }
    configure_libgit2();
    OPEN.with(|open| {
        let mut open = open.borrow_mut();
        if !open.contains_key(path) {
            let repo = Repository::open_bare(path).map_err(git_err(format!("cannot open {}", path.display())))?;
            open.insert(path.to_owned(), repo);
        }
        Ok(f(open.get(path).expect("just inserted")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlink_targets_outside_the_repository() {
        assert!(points_outside("", "/etc/passwd"));
        assert!(points_outside("", "../x"));
        assert!(points_outside("a/b", "../../../x"));
        assert!(!points_outside("a/b", "../../x"));
        assert!(!points_outside("a", "Foo.php"));
        assert!(!points_outside("a", "./b/../c"));
    }

    #[test]
    fn cache_paths_do_not_collide_across_owners() {
        let cache = GitCache::new("/c");
        let a = cache.path_for("https://github.com/a/repo.git");
        let b = cache.path_for("https://github.com/b/repo.git");
        assert_ne!(a, b);
        assert!(a.file_name().unwrap().to_str().unwrap().starts_with("repo-"));
        let token = cache.path_for("https://gitlab.example/a/repo.git?private_token=glpat-secret");
        let name = token.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with("repo-") && !name.contains("secret") && !name.contains("token"), "{name}");
    }

    /// A commit whose tree nests `depth` folders `d`, with a file at the bottom.
    fn nested(repo: &Repository, depth: usize) -> Oid {
        let blob = repo.blob(b"x").unwrap();
        let mut builder = repo.treebuilder(None).unwrap();
        builder.insert("f.txt", blob, 0o100644).unwrap();
        let mut tree = builder.write().unwrap();
        for _ in 0..depth {
            let mut builder = repo.treebuilder(None).unwrap();
            builder.insert("d", tree, 0o040000).unwrap();
            tree = builder.write().unwrap();
        }
        let signature = git2::Signature::new("t", "t@example.org", &git2::Time::new(0, 0)).unwrap();
        repo.commit(None, &signature, &signature, "deep", &repo.find_tree(tree).unwrap(), &[]).unwrap()
    }

    #[test]
    fn trees_deeper_than_git_traverses_fail_without_exhausting_the_stack() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_bare(dir.path()).unwrap();
        let (at_limit, over_limit) = (nested(&repo, MAX_TREE_DEPTH), nested(&repo, MAX_TREE_DEPTH + 1));
        let path = dir.path().to_owned();
        // A small stack: the walk must not recurse per level (a stack overflow aborts the process).
        let outcome = std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || {
                let repo = Repository::open_bare(&path).unwrap();
                let files = collect_package_files(&repo, at_limit, "", &[]).unwrap().files;
                let error = collect_package_files(&repo, over_limit, "", &[]).unwrap_err();
                (files.len(), files[0].path.len(), error.to_string(), error.is_transient())
            })
            .unwrap()
            .join()
            .unwrap();
        let (count, path_len, message, transient) = outcome;
        assert_eq!((count, path_len), (1, 2 * MAX_TREE_DEPTH + "f.txt".len()));
        assert!(message.contains("more than 4096 levels deep") && !transient, "{message}");
    }
}
