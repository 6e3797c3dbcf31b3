//! Invariant 1: the same inputs give the same bytes at any parallelism; a second build into the
//! same output builds nothing and changes nothing.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use sha1::Digest as _;
use shared::archive::{ArchiveBuilder, FILE_MODE};
use tests::{build, fixture, load_config, restore_parity_upstream, snapshot};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_and_eight_workers_give_identical_output_and_rebuild_is_a_no_op() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let cache = temp.path().join("cache");
    let (out_one, out_eight) = (temp.path().join("one"), temp.path().join("eight"));

    build(load_config(&fixture("parity.toml"), &upstream, &cache, 1), &out_one).await;
    build(load_config(&fixture("parity.toml"), &upstream, &cache, 8), &out_eight).await;
    let one = snapshot(&out_one);
    let eight = snapshot(&out_eight);
    assert_eq!(one.keys().collect::<Vec<_>>(), eight.keys().collect::<Vec<_>>());
    for (path, bytes) in &one {
        assert!(eight[path] == *bytes, "{} differs between 1 and 8 workers", path.display());
    }
    assert!(one.keys().any(|p| p.ends_with("packages.json")));
    assert!(one.keys().any(|p| p.ends_with("p2/acme/module-catalog.json")));

    let modified = |dir: &std::path::Path| -> Vec<(std::path::PathBuf, std::time::SystemTime)> {
        snapshot(dir).keys().map(|p| (p.clone(), std::fs::metadata(dir.join(p)).unwrap().modified().unwrap())).collect()
    };
    let before = modified(&out_one);
    let again = build(load_config(&fixture("parity.toml"), &upstream, &cache, 2), &out_one).await;
    assert!(again.built.is_empty(), "second build built {:?}", again.built);
    assert_eq!(again.unchanged.len(), 35);
    assert_eq!(snapshot(&out_one), one, "second build changed bytes");
    assert_eq!(modified(&out_one), before, "second build rewrote files");
    assert!(!out_one.join(".farm/tmp").exists(), "temp files left behind");
}

/// Invariant 2: an archive already published with other bytes (here: by another generator, and
/// the manifest is lost) is never overwritten. The package fails with the drift named, the
/// published archive stays and is indexed with its own sha1, the rest rebuilds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_archive_with_other_bytes_is_kept_and_reported() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let cache = temp.path().join("cache");
    let out = temp.path().join("out");
    build(load_config(&fixture("parity.toml"), &upstream, &cache, 2), &out).await;

    let mut foreign = ArchiveBuilder::new();
    let composer = br#"{"name": "acme/module-cms", "version": "100.0.0", "type": "library"}"#;
    foreign.add_file("composer.json", Arc::from(&composer[..]), FILE_MODE);
    let mut foreign_bytes = Vec::new();
    foreign.write_to(&mut foreign_bytes).unwrap();
    let archive = out.join("packages/acme/module-cms-100.0.0.zip");
    std::fs::write(&archive, &foreign_bytes).unwrap();
    std::fs::remove_file(out.join(".farm/manifest.json")).unwrap();
    let report = build(load_config(&fixture("parity.toml"), &upstream, &cache, 2), &out).await;

    assert_eq!(report.failed.len(), 1, "{}", report.summary());
    let reason = report.failed[0].reason.as_deref().unwrap();
    assert!(report.failed[0].package == "acme/module-cms" && reason.contains("refused"), "{reason}");
    assert!(reason.contains("kept and indexed"), "{reason}");
    assert_eq!(std::fs::read(&archive).unwrap(), foreign_bytes);
    assert_eq!(report.built.len(), 34);
    let p2 = std::fs::read_to_string(out.join("p2/acme/module-cms.json")).unwrap();
    let sha1 = hex::encode(sha1::Sha1::digest(&foreign_bytes));
    assert!(p2.contains(&format!("\"shasum\":\"{sha1}\"")), "metadata must carry the published archive's sha1: {p2}");
}

/// A published name@version whose source changed (here: a pin edited afterwards) is not rebuilt;
/// the change is reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changed_source_of_a_published_version_is_reported_not_rebuilt() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let cache = temp.path().join("cache");
    let out = temp.path().join("out");
    build(load_config(&fixture("parity.toml"), &upstream, &cache, 2), &out).await;
    let before = snapshot(&out);
    let before_manifest = tests::manifest(&out);

    let mut config = load_config(&fixture("parity.toml"), &upstream, &cache, 2);
    config.upstreams[0].pinned_versions.get_mut("1.1.0").unwrap().insert("psr/log".to_owned(), "1.1.5".to_owned());
    let report = build(config, &out).await;
    assert!(report.built.is_empty(), "{}", report.summary());
    let changed: Vec<String> = report.source_changed.iter().map(|c| format!("{}@{}", c.package, c.version)).collect();
    assert_eq!(changed, ["acme/module-catalog@100.1.0", "acme/module-checkout@100.1.0", "acme/framework@100.1.0"]);
    assert!(report.succeeded(false) && !report.succeeded(true));
    // Archives, metadata and the manifest's packages are untouched; the manifest's record of
    // the upstream's rules moved on (polling would otherwise plan it again and again).
    assert_eq!(tests::manifest(&out)["packages"], before_manifest["packages"]);
    let not_manifest = |files: BTreeMap<PathBuf, Vec<u8>>| -> BTreeMap<PathBuf, Vec<u8>> {
        files
            .into_iter()
            .filter(|(path, _)| !path.starts_with(".farm/manifest.json") && !path.starts_with(".farm/manifest.journal"))
            .collect()
    };
    assert_eq!(not_manifest(snapshot(&out)), not_manifest(before));
}
