//! Crash safety of the local output: a `coordinator build` SIGKILLed at twenty points (while
//! archives are stored, right after a manifest save, while the metadata is published) never
//! leaves a torn archive under a final name, never publishes metadata the manifest does not
//! hold, and the next build completes with the bytes a build without crashes makes.
//!
//! Uses the debug `coordinator` binary (`cargo build -p coordinator` first, as `scripts/test.sh`
//! does). The kill points are events in the build's log (the k-th result, a manifest save), never
//! times.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::path::Path;
use std::time::Duration;

use coordinator::manifest::Manifest;
use sha1::Digest as _;
use tests::generated::{CONFIG, Shape, generate, write_module};
use tests::services::{Process, binary};
use tests::{build, load_config};

/// Kills in one test.
const KILLS: usize = 20;
/// Longest one build may take (a hang fails the test instead of blocking it).
const LIMIT: Duration = Duration::from_secs(600);

/// A deterministic sequence of kill points (xorshift), so a failure can be replayed.
struct Points(u64);

impl Points {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % below as u64) as usize
    }
}

/// Where a build is killed: after the k-th result it records, or after its n-th manifest save
/// (the next thing is more results, or publishing the metadata).
#[derive(Debug, Clone, Copy)]
enum Point {
    Result(usize),
    Save(usize),
}

impl Point {
    fn needle(self) -> (&'static str, usize) {
        match self {
            Point::Result(k) => (" done", k),
            Point::Save(n) => ("manifest saved", n),
        }
    }
}

#[test]
fn builds_killed_at_twenty_points_never_publish_a_torn_or_unrecorded_archive() {
    let temp = tempfile::tempdir().unwrap();
    let files = 12;
    let shape = Shape { modules: 80, files, tags: 6, base_files: 40, change_every: 4, binary_every: 0 };
    let mut upstream = generate(&temp.path().join("upstream/mirror-magento2.git"), shape).upstream;
    let config = temp.path().join("crash.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let out = temp.path().join("out");
    let cache = temp.path().join("cache");
    let (config_arg, out_arg, cache_arg) =
        (config.display().to_string(), out.display().to_string(), cache.display().to_string());
    let upstream_arg = temp.path().join("upstream").display().to_string();
    let args = [
        "build",
        "--config",
        config_arg.as_str(),
        "--upstream-base",
        upstream_arg.as_str(),
        "--cache-dir",
        cache_arg.as_str(),
        "--out",
        out_arg.as_str(),
        "--workers",
        "2",
    ];
    let env = [("RUST_LOG", "info,coordinator::pipeline::farm=debug".to_owned())];

    let mut points = Points(0x9E37_79B9_7F4A_7C15);
    let mut published_ever: BTreeMap<String, String> = BTreeMap::new();
    let (mut kills, mut completed, mut changes) = (0, 0, 0);
    while kills < KILLS {
        let point =
            if points.next(3) == 0 { Point::Save(1 + points.next(2)) } else { Point::Result(1 + points.next(120)) };
        let (needle, count) = point.needle();
        let mut run = Process::spawn(&format!("build-{kills}"), &binary("coordinator"), &args, &env);
        if run.wait_for(needle, count, LIMIT) {
            run.kill();
            kills += 1;
        } else {
            // It finished before the kill point: give the next build something new to do.
            assert_eq!(run.wait(LIMIT), 0, "an uninterrupted build failed: {:#?}", run.lines());
            completed += 1;
            changes += 1;
            for module in (0..80).filter(|m| (m + changes) % 3 == 0) {
                write_module(&mut upstream, module, files, 100 + changes);
            }
            upstream.commit_and_tag(&format!("2.4.{}", 5 + changes));
        }
        check_invariants(&out, &mut published_ever, point);
    }
    let mut last = Process::spawn("build-last", &binary("coordinator"), &args, &env);
    assert_eq!(last.wait(LIMIT), 0, "the build after the kills failed: {:#?}", last.lines());
    check_invariants(&out, &mut published_ever, Point::Result(0));
    eprintln!("{kills} kills, {completed} builds completed between them, {} versions published", published_ever.len());

    // The same upstream built once without crashes: the same archives and metadata.
    let clean = temp.path().join("clean");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(build(load_config(&config, &temp.path().join("upstream"), &cache, 2), &clean));
    assert!(report.failed.is_empty(), "{}", report.summary());
    let public = |dir: &Path| -> BTreeMap<_, _> {
        tests::snapshot(dir).into_iter().filter(|(path, _)| !path.starts_with(".farm")).collect()
    };
    let (crashed, clean) = (public(&out), public(&clean));
    assert_eq!(crashed.keys().collect::<Vec<_>>(), clean.keys().collect::<Vec<_>>());
    for (path, bytes) in &clean {
        assert!(crashed[path] == *bytes, "{} differs from the build without crashes", path.display());
    }
}

/// After a kill: every archive under a final name is whole (and the manifest's sha1, when it has
/// it); every version the metadata publishes is in the manifest with that archive's sha1; nothing
/// the metadata ever published has left the manifest.
fn check_invariants(out: &Path, published_ever: &mut BTreeMap<String, String>, point: Point) {
    let manifest = Manifest::read_folder(out).unwrap_or_else(|e| panic!("after a kill at {point:?}: {e}"));
    let by_key: BTreeMap<&str, &str> =
        manifest.packages.values().map(|entry| (entry.key.as_str(), entry.sha1.as_str())).collect();
    for (path, bytes) in tests::snapshot(out) {
        let key = path.to_string_lossy().into_owned();
        if !key.starts_with("packages/") {
            continue;
        }
        assert_whole_zip(&key, &bytes, point);
        if let Some(sha1) = by_key.get(key.as_str()) {
            assert_eq!(hex::encode(sha1::Sha1::digest(&bytes)), *sha1, "{key}: not the recorded bytes after {point:?}");
        }
    }
    for (id, sha1) in published(out) {
        let entry = manifest.packages.get(&id).unwrap_or_else(|| panic!("{id} is published but not in the manifest"));
        assert_eq!(entry.sha1, sha1, "{id}: the metadata's sha1 is not the manifest's");
        assert!(out.join(&entry.key).is_file(), "{id}: published, but {} is not stored", entry.key);
        published_ever.insert(id, sha1);
    }
    let lost: BTreeSet<&String> = published_ever.keys().filter(|id| !manifest.packages.contains_key(*id)).collect();
    assert!(lost.is_empty(), "the manifest lost published entries after {point:?}: {lost:?}");
}

/// name@version → dist shasum of every version in the published p2 files.
fn published(out: &Path) -> BTreeMap<String, String> {
    let mut versions = BTreeMap::new();
    for (path, bytes) in tests::snapshot(&out.join("p2")) {
        let json: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("p2/{} is not whole JSON: {e}", path.display()));
        for (name, list) in json["packages"].as_object().into_iter().flatten() {
            for version in list.as_array().into_iter().flatten() {
                // Minified lists carry the name and the version only where they change.
                let Some(v) = version["version"].as_str() else { continue };
                if let Some(sha1) = version["dist"]["shasum"].as_str() {
                    versions.insert(format!("{name}@{v}"), sha1.to_owned());
                }
            }
        }
    }
    versions
}

/// Every entry of the zip reads back with its recorded CRC-32.
fn assert_whole_zip(key: &str, bytes: &[u8], point: Point) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .unwrap_or_else(|e| panic!("{key} is torn after a kill at {point:?}: {e}"));
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let mut content = Vec::new();
        entry.read_to_end(&mut content).unwrap_or_else(|e| panic!("{key}: entry {index} is torn: {e}"));
    }
}
