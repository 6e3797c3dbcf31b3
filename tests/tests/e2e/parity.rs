//! The parity fixture: 35 archives byte-identical to the reference generator's, no more, no fewer.

use tests::{archive_rows, build, expected_parity_rows, fixture, load_config, restore_parity_upstream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parity_fixture_builds_byte_identical_archives() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let out = temp.path().join("out");
    let config = load_config(&fixture("parity.toml"), &upstream, &temp.path().join("cache"), 2);
    let report = build(config, &out).await;

    assert_eq!(archive_rows(&out.join("packages")), expected_parity_rows());
    assert_eq!(report.built.len(), 35);
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert!(report.repository_failures.is_empty());
    // The reference's per-module failures are reported, not fatal: Legacy has no composer.json
    // at any tag, Backup is invalid JSON at 1.1.0-beta1, Sales has no version where no pin applies.
    let rejected: Vec<String> = report
        .rejected
        .iter()
        .map(|r| format!("{} {}", r.tag.as_deref().unwrap_or(""), r.dir.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(rejected.iter().filter(|r| r.ends_with("app/code/Acme/Legacy")).count(), 6);
    assert!(rejected.contains(&"1.1.0-beta1 app/code/Acme/Backup".to_owned()));
    assert!(rejected.contains(&"1.0.0-p1 app/code/Acme/Sales".to_owned()));
    assert_eq!(report.tags[0].tags, ["1.0.0", "1.0.0-p1", "1.0.0-p10", "1.0.0-p2", "1.1.0", "1.1.0-beta1"]);
}
