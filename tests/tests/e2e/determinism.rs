//! Invariant 1: the same inputs give the same bytes at any parallelism; a second build into the
//! same output builds nothing and changes nothing.

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
