//! Test harness shared by the end-to-end tests and the benchmark: the parity fixture, generated
//! upstream git repositories, in-process builds, a PHP web server and the real Composer client.
//!
//! Tests may read `../shared/parity` (beside the checkout); the product never does.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use coordinator::pipeline::BuildOptions;
use coordinator::report::BuildReport;
use git2::{Oid, Repository, Signature, Time};
use shared::config::FarmConfig;

/// `shared/` beside the checkout.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

/// The parity fixture folder.
pub fn parity_dir() -> PathBuf {
    let dir = shared_dir().join("parity");
    assert!(
        dir.join("fixture.bundle").is_file(),
        "parity fixture missing at {} (shared/ must sit beside the checkout)",
        dir.display()
    );
    dir
}

/// A file under `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// Restores the parity upstream as `<dir>/src-repo.git` and returns `dir` (the upstream base).
/// Uses the `git` command: bundles are a git CLI format that libgit2 cannot read.
pub fn restore_parity_upstream(dir: &Path) -> PathBuf {
    let target = dir.join("src-repo.git");
    if !target.exists() {
        let status = Command::new("git")
            .args(["clone", "--quiet", "--mirror"])
            .arg(parity_dir().join("fixture.bundle"))
            .arg(&target)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stderr(Stdio::null())
            .status()
            .expect("git runs");
        assert!(status.success(), "git clone of the parity bundle failed");
    }
    dir.to_owned()
}

/// The expected `name<TAB>bytes<TAB>sha256` rows of the parity fixture, header removed.
pub fn expected_parity_rows() -> String {
    let text = std::fs::read_to_string(parity_dir().join("expected.tsv")).expect("expected.tsv");
    text.lines().skip(1).map(|l| format!("{l}\n")).collect()
}

/// `name<TAB>bytes<TAB>sha256` rows for every zip below `packages`, sorted bytewise.
pub fn archive_rows(packages: &Path) -> String {
    let mut rows = Vec::new();
    for (relative, bytes) in snapshot(packages) {
        let name = relative.to_string_lossy().into_owned();
        if name.ends_with(".zip") {
            use sha2::Digest as _;
            rows.push(format!("{name}\t{}\t{}\n", bytes.len(), hex::encode(sha2::Sha256::digest(&bytes))));
        }
    }
    rows.sort();
    rows.concat()
}

/// Every file below `dir` (relative path to bytes), skipping the per-run report, the health
/// record and the lock file (process state with build ids and times, not repository content),
/// and the change feed (its actions carry the time of each publish).
/// The manifest of a finished build's output folder (snapshot and segments), as JSON.
pub fn manifest(out: &Path) -> serde_json::Value {
    let manifest = coordinator::manifest::Manifest::read_folder(out).expect("manifest");
    serde_json::to_value(&manifest).expect("manifest as JSON")
}

pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&current) else { continue };
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("below dir").to_owned();
                let state = [".farm/report.json", ".farm/health.json", ".farm/lock", "metadata/changes.json"];
                if !state.iter().any(|skip| relative == Path::new(skip)) {
                    out.insert(relative, std::fs::read(&path).expect("readable"));
                }
            }
        }
    }
    out
}

/// Loads a config with the test's upstream base, cache and worker count.
pub fn load_config(path: &Path, upstream_base: &Path, cache: &Path, workers: usize) -> FarmConfig {
    let mut config = FarmConfig::load(path).expect("config loads");
    config.build.upstream_base = Some(upstream_base.display().to_string());
    config.build.cache_dir = Some(cache.to_owned());
    config.build.workers = workers;
    config
}

/// Runs an embedded build in-process.
pub async fn build(config: FarmConfig, out: &Path) -> BuildReport {
    coordinator::pipeline::run(BuildOptions { config, out: out.to_owned(), progress: false }).await.expect("build runs")
}

/// How a generated file is stored in git.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// Mode 100644.
    File,
    /// Mode 100755.
    Executable,
    /// Mode 120000; the content is the link target.
    Symlink,
}

/// A bare upstream repository written directly with git2 (commits on `main`, tags).
pub struct Upstream {
    /// The repository.
    pub repo: Repository,
    /// Files of the next commit.
    pub files: BTreeMap<String, (Vec<u8>, Kind)>,
    /// Entries of the next commit whose path components are raw bytes (see [`Upstream::raw_entry`]).
    pub raw: BTreeMap<Vec<Vec<u8>>, (Vec<u8>, Kind)>,
    commits: i64,
    /// The blob last written for each plain path, with its content: a path whose content did not
    /// change since the last commit is not hashed again (generated upstreams commit tens of
    /// thousands of unchanged files per tag).
    blobs: RefCell<HashMap<String, (Vec<u8>, Oid)>>,
}

impl Upstream {
    /// Creates a bare repository at `path`.
    pub fn create(path: &Path) -> Upstream {
        let repo = Repository::init_bare(path).expect("init bare");
        Upstream { repo, files: BTreeMap::new(), raw: BTreeMap::new(), commits: 0, blobs: RefCell::default() }
    }

    /// Sets a regular file for the next commit.
    pub fn file(&mut self, path: &str, content: impl Into<Vec<u8>>) -> &mut Self {
        self.files.insert(path.to_owned(), (content.into(), Kind::File));
        self
    }

    /// Sets a file of any kind for the next commit.
    pub fn entry(&mut self, path: &str, content: impl Into<Vec<u8>>, kind: Kind) -> &mut Self {
        self.files.insert(path.to_owned(), (content.into(), kind));
        self
    }

    /// Sets an entry for the next commit at a path given as raw components: any bytes but NUL,
    /// also `..`, `.GIT`, a `/` inside one name or an empty name, as a hostile upstream can
    /// write them. Folders holding such a name are written as raw tree objects, since libgit2's
    /// tree builder refuses those names (and git's fsck would).
    pub fn raw_entry(&mut self, components: &[&[u8]], content: impl Into<Vec<u8>>, kind: Kind) -> &mut Self {
        self.raw.insert(components.iter().map(|c| c.to_vec()).collect(), (content.into(), kind));
        self
    }

    /// Removes every file below `prefix`.
    pub fn remove_prefix(&mut self, prefix: &str) -> &mut Self {
        self.files.retain(|path, _| !path.starts_with(prefix));
        self
    }

    /// Commits the current files on `main` and returns the commit id.
    pub fn commit(&mut self, message: &str) -> Oid {
        let tree = self.write_tree();
        self.commits += 1;
        let signature = Signature::new("Test", "test@example.org", &Time::new(1_600_000_000 + self.commits * 60, 0))
            .expect("signature");
        let parent = self.repo.find_reference("refs/heads/main").ok().and_then(|r| r.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let tree = self.repo.find_tree(tree).expect("tree");
        let oid = self.repo.commit(None, &signature, &signature, message, &tree, &parents).expect("commit");
        self.repo.reference("refs/heads/main", oid, true, "commit").expect("update main");
        self.repo.set_head("refs/heads/main").expect("head");
        oid
    }

    /// Commits and tags (lightweight) the result.
    pub fn commit_and_tag(&mut self, tag: &str) -> Oid {
        let oid = self.commit(&format!("release {tag}"));
        self.repo.reference(&format!("refs/tags/{tag}"), oid, true, "tag").expect("tag");
        oid
    }

    fn write_tree(&self) -> Oid {
        let mut root = TreeDir::default();
        let mut blobs = self.blobs.borrow_mut();
        let raw = self.raw.iter().map(|(components, entry)| (components.clone(), entry, None));
        let plain = self.files.iter().map(|(path, entry)| {
            (path.split('/').map(|part| part.as_bytes().to_vec()).collect::<Vec<_>>(), entry, Some(path))
        });
        for (mut parts, (content, kind), path) in plain.chain(raw) {
            let is_raw = path.is_none();
            let cached =
                path.and_then(|path| blobs.get(path)).filter(|(bytes, _)| bytes == content).map(|(_, oid)| *oid);
            let blob = match (cached, path) {
                (Some(oid), _) => oid,
                (None, Some(path)) => {
                    let oid = self.repo.blob(content).expect("blob");
                    blobs.insert(path.clone(), (content.clone(), oid));
                    oid
                }
                (None, None) => self.repo.blob(content).expect("blob"),
            };
            let mode = match kind {
                Kind::File => 0o100644,
                Kind::Executable => 0o100755,
                Kind::Symlink => 0o120000,
            };
            let name = parts.pop().expect("non-empty path");
            let mut dir = &mut root;
            for part in parts {
                dir.raw |= is_raw;
                dir = dir.dirs.entry(part).or_default();
            }
            dir.raw |= is_raw;
            dir.files.insert(name, (blob, mode));
        }
        root.write(&self.repo)
    }
}

/// A folder of the next commit's tree.
#[derive(Default)]
struct TreeDir {
    files: BTreeMap<Vec<u8>, (Oid, i32)>,
    dirs: BTreeMap<Vec<u8>, TreeDir>,
    /// Holds (or leads to) a raw entry: written as a raw tree object when it holds one itself.
    raw: bool,
}

impl TreeDir {
    fn write(&self, repo: &Repository) -> Oid {
        let subtrees: Vec<(&Vec<u8>, Oid)> = self.dirs.iter().map(|(name, sub)| (name, sub.write(repo))).collect();
        let all_plain =
            self.files.keys().chain(self.dirs.keys()).all(|name| std::str::from_utf8(name).is_ok_and(git2_accepts));
        if !self.raw || all_plain {
            let mut builder = repo.treebuilder(None).expect("treebuilder");
            for (name, oid) in &subtrees {
                builder.insert(std::str::from_utf8(name).expect("UTF-8"), *oid, 0o040000).expect("insert tree");
            }
            for (name, (oid, mode)) in &self.files {
                builder.insert(std::str::from_utf8(name).expect("UTF-8"), *oid, *mode).expect("insert blob");
            }
            return builder.write().expect("write tree");
        }
        // git's tree order: names as bytes, a folder's name as if followed by '/'.
        let mut entries: Vec<(Vec<u8>, &[u8], i32, Oid)> = Vec::new();
        for (name, oid) in subtrees {
            entries.push(([name.as_slice(), b"/"].concat(), name, 0o040000, oid));
        }
        for (name, (oid, mode)) in &self.files {
            entries.push((name.clone(), name, *mode, *oid));
        }
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let mut bytes = Vec::new();
        for (_, name, mode, oid) in entries {
            bytes.extend_from_slice(format!("{mode:o} ").as_bytes());
            bytes.extend_from_slice(name);
            bytes.push(0);
            bytes.extend_from_slice(oid.as_bytes());
        }
        repo.odb().expect("odb").write(git2::ObjectType::Tree, &bytes).expect("write raw tree")
    }
}

/// Whether libgit2's tree builder takes `name` (it refuses what git's path rules refuse).
fn git2_accepts(name: &str) -> bool {
    shared::pathcheck::check_name(name).is_ok()
}

/// A free loopback port (bound and released; good enough for tests on one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// PHP's built-in web server serving a folder on 127.0.0.1; stopped on drop.
pub struct PhpServer {
    child: Child,
    /// Base URL with a trailing slash.
    pub url: String,
}

impl PhpServer {
    /// Starts `php -S` on `port` for `root` and waits until it accepts connections.
    pub fn start(root: &Path, port: u16) -> PhpServer {
        let child = Command::new(require_tool("php"))
            .args(["-S", &format!("127.0.0.1:{port}"), "-t"])
            .arg(root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("php -S starts");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "php -S did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        PhpServer { child, url: format!("http://127.0.0.1:{port}/") }
    }
}

impl Drop for PhpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a tool the test needs; fails with the setup command to run when it is missing.
pub fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|path| path.is_file());
    found.unwrap_or_else(|| {
        panic!("`{name}` is not installed: run scripts/test-setup.sh (installs php-cli and composer from Debian)")
    })
}

/// `unzip -t` of an archive (integrity of every entry and the central directory).
pub fn unzip_test(zip: &Path) -> Output {
    Command::new(require_tool("unzip")).arg("-t").arg(zip).output().expect("unzip runs")
}

/// Extracts an archive with PHP's `ZipArchive::extractTo` (what Composer falls back to without
/// `unzip`) into `target`; fails when PHP cannot open the archive or extract an entry.
pub fn php_extract(zip: &Path, target: &Path) -> Output {
    const SCRIPT: &str = r#"
        $zip = new ZipArchive();
        $opened = $zip->open($argv[1], ZipArchive::CHECKCONS);
        if ($opened !== true) { fwrite(STDERR, "cannot open: error $opened\n"); exit(2); }
        if (!$zip->extractTo($argv[2])) { fwrite(STDERR, "extractTo failed: " . $zip->getStatusString() . "\n"); exit(3); }
        echo $zip->numFiles, "\n";
    "#;
    Command::new(require_tool("php"))
        .args(["-d", "display_errors=stderr", "-r", SCRIPT, "--"])
        .arg(zip)
        .arg(target)
        .output()
        .expect("php runs")
}

/// Runs the real Composer client in `project` with a fresh home and cache, packagist.org off.
pub fn composer(project: &Path, args: &[&str]) -> Output {
    let home = project.join(".composer-home");
    Command::new(require_tool("composer"))
        .args(args)
        .args(["--no-interaction", "--no-progress"])
        .current_dir(project)
        .env("COMPOSER_HOME", &home)
        .env("COMPOSER_CACHE_DIR", home.join("cache"))
        .env("COMPOSER_ALLOW_SUPERUSER", "1")
        .env("COMPOSER_NO_AUDIT", "1")
        .output()
        .expect("composer runs")
}

/// Writes a configuration with one upstream `shop` (`https://github.com/mage-os/shop.git`, tags
/// from 1.0.0) whose every folder under `packages/` is a package.
pub fn write_shop_config(path: &Path, base_url: &str) {
    let text = format!(
        r#"
[repository]
base_url = "{base_url}"

[[upstreams]]
key = "shop"
url = "https://github.com/mage-os/shop.git"
from_tag = "1.0.0"

[[upstreams.package_dirs]]
dir = "packages"
"#
    );
    std::fs::write(path, text).expect("write config");
}

/// A consumer project that only knows `repository_url`.
pub fn composer_project(dir: &Path, repository_url: &str, require: &[(&str, &str)]) {
    let require: serde_json::Map<String, serde_json::Value> = require
        .iter()
        .map(|(name, constraint)| ((*name).to_owned(), serde_json::Value::String((*constraint).to_owned())))
        .collect();
    let project = serde_json::json!({
        "name": "test/consumer",
        "repositories": [{"type": "composer", "url": repository_url}, {"packagist.org": false}],
        "require": require,
        "minimum-stability": "stable",
        "config": {"secure-http": false, "allow-plugins": false}
    });
    std::fs::create_dir_all(dir).expect("project dir");
    std::fs::write(dir.join("composer.json"), serde_json::to_vec_pretty(&project).expect("json"))
        .expect("write composer.json");
}

pub mod bench;
pub mod generated;
pub mod hostile;
pub mod latency;
pub mod seaweed;
pub mod services;

/// `name<TAB>bytes<TAB>sha256` rows for the zips among storage objects under `packages/`.
pub fn object_rows(objects: &BTreeMap<String, Vec<u8>>) -> String {
    use sha2::Digest as _;
    let mut rows: Vec<String> = objects
        .iter()
        .filter_map(|(key, bytes)| {
            let name = key.strip_prefix("packages/")?;
            name.ends_with(".zip")
                .then(|| format!("{name}\t{}\t{}\n", bytes.len(), hex::encode(sha2::Sha256::digest(bytes))))
        })
        .collect();
    rows.sort();
    rows.concat()
}

/// A farm configuration for an embedded build into S3: the TOML of `base` (upstreams) with its
/// `base_url` pointed at the bucket and a `[storage]` section for the bucket of the test server
/// (`seaweed`) with its keys.
pub fn s3_config(base: &Path, endpoint: &str, bucket: &str) -> String {
    let text = std::fs::read_to_string(base).expect("base config");
    let text = text.replace("base_url = \"http://127.0.0.1:8080/\"", &format!("base_url = \"{endpoint}/{bucket}/\""));
    format!(
        "{text}\n[storage]\nkind = \"s3\"\nbucket = \"{bucket}\"\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\n\
         access_key_id = \"{}\"\nsecret_access_key = \"{}\"\n",
        seaweed::ACCESS_KEY,
        seaweed::SECRET_KEY
    )
}

/// A farm configuration for the distributed mode: [`s3_config`] with a `[queue]` section for a
/// broker and a prefix appended.
pub fn distributed_config(
    base: &Path,
    amqp_url: &str,
    prefix: &str,
    endpoint: &str,
    bucket: &str,
    extra_queue: &str,
) -> String {
    let text = s3_config(base, endpoint, bucket);
    // A test that hangs fails within minutes, not the product's default half hour.
    let timeout = if extra_queue.contains("result_timeout") { "" } else { "result_timeout = \"5m\"\n" };
    format!("{text}\n[queue]\nurl = \"{amqp_url}\"\nprefix = \"{prefix}\"\n{timeout}{extra_queue}\n")
}
