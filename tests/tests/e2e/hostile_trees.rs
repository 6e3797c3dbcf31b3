//! Tree entry names git refuses to check out, written as raw tree objects the way a hostile
//! upstream can: `.git` in every spelling (folder and file), `.`, `..`, a `/` inside a name,
//! absolute names, backslashes, an empty name. Each such package fails with the path and the
//! rule, nothing of it is published, the rest is built, and every published zip passes
//! `unzip -t` and PHP's `ZipArchive::extractTo`.

use std::path::Path;

use shared::git::GitCache;
use shared::messages::{BuildId, BuildJob, Content, JobId, SCHEMA_VERSION, Source};
use shared::pathcheck;
use tests::{Kind, Upstream, build, snapshot};

const CONFIG: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "evil"
url = "https://github.com/mage-os/evil.git"
from_tag = "1.0.0"

[[upstreams.package_dirs]]
dir = "modules"
excludes = ["modules/Excluded/.GIT/"]
"#;

/// Attacker's git config: `git status` in an unzipped package would run the fsmonitor command.
const FSMONITOR: &str = "[core]\n\tfsmonitor = \"touch /tmp/pwned; false\"\n";

/// Package folder, raw path below it, kind, and what the failure reason must name.
const REFUSED: &[(&str, &[&[u8]], Kind, &str)] = &[
    ("DotGitUpper", &[b".GIT", b"config"], Kind::File, "'.git' in some letter case"),
    ("DotGitMixed", &[b"sub", b".Git"], Kind::File, "'.git' in some letter case"),
    ("DotGitLower", &[b".git", b"hooks", b"post-checkout"], Kind::Executable, "'.git' in some letter case"),
    ("DotGitShort", &[b"git~1", b"config"], Kind::File, "NTFS"),
    ("DotGitTrailing", &[b".git. ", b"config"], Kind::File, "NTFS"),
    ("DotGitStream", &[b".git::$INDEX_ALLOCATION", b"config"], Kind::File, "NTFS"),
    ("DotGitHfs", &[".g\u{200c}it".as_bytes(), b"config"], Kind::File, "HFS+"),
    ("Dot", &[b".", b"x.php"], Kind::File, "the name '.'"),
    ("DotDot", &[b"..", b"x.php"], Kind::File, "the name '..'"),
    ("SlashInName", &[b"../../../../tmp/x.php"], Kind::File, "a '/' inside one name"),
    ("DeepEscape", &[b"a", b"../../y.php"], Kind::File, "a '/' inside one name"),
    ("Absolute", &[b"/etc/cron.d/x"], Kind::File, "a '/' inside one name"),
    ("Backslash", &[b"..\\..\\evil.php"], Kind::File, "a backslash"),
    ("SymlinkDotGit", &[b".GIT"], Kind::Symlink, "'.git' in some letter case"),
];

fn upstream(path: &Path) {
    let mut upstream = Upstream::create(path);
    upstream
        .file("modules/Good/composer.json", r#"{"name":"acme/good","version":"1.0.0"}"#)
        .file("modules/Good/Good.php", "<?php\n")
        .file("modules/Good/.gitattributes", "*.php text eol=lf\n")
        .file("modules/Good/.gitignore", "/vendor/\n")
        .file("modules/Good/.gitkeep", "")
        .file("modules/Good/.github/workflows/ci.yml", "on: push\n")
        .file("modules/Good/git/notes.txt", "a folder named git is fine\n")
        .file("modules/Excluded/composer.json", r#"{"name":"acme/excluded","version":"1.0.0"}"#)
        .file("modules/Excluded/Excluded.php", "<?php\n")
        .raw_entry(&[b"modules", b"Excluded", b".GIT", b"config"], FSMONITOR, Kind::File);
    for (dir, below, kind, _) in REFUSED {
        let name = format!("acme/{}", dir.to_lowercase());
        upstream.file(&format!("modules/{dir}/composer.json"), format!(r#"{{"name":"{name}","version":"1.0.0"}}"#));
        upstream.file(&format!("modules/{dir}/Module.php"), "<?php\n");
        let mut components: Vec<&[u8]> = vec![b"modules", dir.as_bytes()];
        components.extend_from_slice(below);
        upstream.raw_entry(&components, FSMONITOR, kind.clone());
    }
    upstream.commit_and_tag("1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entries_git_refuses_fail_their_package_and_are_never_published() {
    let temp = tempfile::tempdir().unwrap();
    upstream(&temp.path().join("upstream/evil.git"));
    let config_path = temp.path().join("farm.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let out = temp.path().join("out");
    let config = tests::load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 2);
    let report = build(config, &out).await;

    let built: Vec<&str> = report.built.iter().map(|b| b.package.as_str()).collect();
    assert_eq!(built, ["acme/excluded", "acme/good"], "{}", report.summary());
    assert!(report.repository_failures.is_empty(), "{}", report.summary());
    let reason_of = |package: &str| -> String {
        let failed = report.failed.iter().find(|f| f.package == package);
        failed.and_then(|f| f.reason.clone()).unwrap_or_else(|| panic!("{package} not failed: {}", report.summary()))
    };
    for (dir, below, _, rule) in REFUSED {
        let reason = reason_of(&format!("acme/{}", dir.to_lowercase()));
        // The path up to the first refused component.
        let mut path = format!("modules/{dir}");
        for component in *below {
            let component = String::from_utf8_lossy(component);
            path = format!("{path}/{component}");
            if pathcheck::check_name(&component).is_err() {
                break;
            }
        }
        let shown = pathcheck::shown(&path);
        assert!(reason.contains(&shown) && reason.contains(rule), "{dir}: {reason}");
        assert!(reason.contains("refused by git's path rules"), "{dir}: {reason}");
    }
    assert_eq!(report.failed.len(), REFUSED.len(), "{}", report.summary());

    // Only the two built packages are in the output: no archive, no metadata of a failed one.
    let files: std::collections::BTreeSet<String> = snapshot(&out).keys().map(|p| p.display().to_string()).collect();
    let expected = [
        ".farm/manifest.json",
        ".farm/metadata-index.json",
        "p2/acme/excluded.json",
        "p2/acme/excluded~dev.json",
        "p2/acme/good.json",
        "p2/acme/good~dev.json",
        "packages.json",
        "packages/acme/excluded-1.0.0.zip",
        "packages/acme/good-1.0.0.zip",
    ];
    assert_eq!(files, expected.iter().map(|s| s.to_string()).collect());

    let good = check_published(&out.join("packages/acme/good-1.0.0.zip"), temp.path());
    for name in [".gitattributes", ".gitignore", ".gitkeep", ".github/workflows/ci.yml", "git/notes.txt", "Good.php"] {
        assert!(good.iter().any(|n| n == name), "{name} missing from {good:?}");
    }
    let excluded = check_published(&out.join("packages/acme/excluded-1.0.0.zip"), temp.path());
    assert_eq!(excluded, ["composer.json", "Excluded.php"]);
}

/// libgit2 cannot parse a tree with an empty name at all. Fetching such an upstream from a local
/// path fails (libgit2 packs the objects by walking the trees), so the whole upstream is reported
/// and nothing is built; a worker that has the objects anyway fails the package for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_name_fails_the_upstream_or_the_package_and_publishes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let make = |path: &Path| {
        let mut upstream = Upstream::create(path);
        upstream.file("modules/Empty/composer.json", r#"{"name":"acme/empty","version":"1.0.0"}"#).raw_entry(
            &[b"modules", b"Empty", b"sub", b""],
            "x",
            Kind::File,
        );
        upstream.commit_and_tag("1.0.0")
    };
    make(&temp.path().join("upstream/evil.git"));
    let config_path = temp.path().join("farm.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let out = temp.path().join("out");
    let config = tests::load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 2);
    let report = build(config, &out).await;
    assert!(report.built.is_empty(), "{}", report.summary());
    assert_eq!(report.repository_failures.len(), 1, "{}", report.summary());
    assert!(report.repository_failures[0].reason.contains("can't parse filename"), "{}", report.summary());
    assert!(!out.join("packages").exists() && !out.join("p2").exists());

    // The worker, given a clone that holds the tree.
    let url = "https://github.com/mage-os/empty.git";
    let cache = GitCache::new(temp.path().join("worker-cache"));
    let commit = make(&cache.path_for(url));
    let job = BuildJob {
        schema: SCHEMA_VERSION,
        job_id: JobId("j".to_owned()),
        build_id: BuildId("b".to_owned()),
        package: "acme/empty".to_owned(),
        version: "1.0.0".to_owned(),
        source: Source { repo_url: url.to_owned(), git_ref: "1.0.0".to_owned(), commit: commit.to_string() },
        content: Content::PackageTree { dir: "modules/Empty".to_owned(), excludes: Vec::new(), empty_dirs: Vec::new() },
        composer_json: "{}".to_owned(),
        target_key: "packages/acme/empty-1.0.0.zip".to_owned(),
        attempt: 1,
        files: Vec::new(),
    };
    let scratch = temp.path().join("scratch");
    let error = worker::build_archive(&cache, &job, &scratch).unwrap_err();
    assert!(!error.is_transient(), "{error}");
    let text = error.to_string();
    assert!(text.contains("modules/Empty/sub") && text.contains("can't parse filename"), "{text}");
    assert_eq!(std::fs::read_dir(&scratch).map(|d| d.count()).unwrap_or(0), 0, "a temp file was left");
}

/// Integrity (`unzip -t`), extraction with PHP's ZipArchive into a fresh folder that nothing
/// leaves, and every name allowed by git's rules; returns the entry names.
fn check_published(zip: &Path, temp: &Path) -> Vec<String> {
    let test = tests::unzip_test(zip);
    assert!(test.status.success(), "unzip -t {}: {}", zip.display(), String::from_utf8_lossy(&test.stdout));
    let outside = tempfile::tempdir_in(temp).unwrap();
    let target = outside.path().join("extract");
    let php = tests::php_extract(zip, &target);
    assert!(php.status.success(), "ZipArchive::extractTo: {}", String::from_utf8_lossy(&php.stderr));
    let around: Vec<_> = std::fs::read_dir(outside.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(around, ["extract"], "extraction wrote outside its folder");

    let mut archive = zip::ZipArchive::new(std::fs::File::open(zip).unwrap()).unwrap();
    let mut names = Vec::new();
    for index in 0..archive.len() {
        let name = String::from_utf8(archive.by_index_raw(index).unwrap().name_raw().to_vec()).expect("UTF-8 name");
        let directory = name.ends_with('/');
        assert_eq!(pathcheck::check_entry_name(&name, directory), Ok(()), "{name:?}");
        let lower = name.to_lowercase();
        assert!(!lower.split('/').any(|c| c == ".git" || c == ".." || c.contains('\\')), "{name:?}");
        assert!(target.join(name.trim_end_matches('/')).exists(), "{name} not extracted");
        names.push(name);
    }
    names
}
