//! Packages over a zip format limit (a path longer than 65,535 bytes, more entries than the
//! 16-bit count holds): each fails with the limit and the value, nothing of it is written, and
//! the rest is built.

use tests::{Upstream, build, snapshot};

const CONFIG: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "big"
url = "https://github.com/mage-os/big.git"
from_tag = "1.0.0"

[[upstreams.package_dirs]]
dir = "modules"
"#;

/// Folder names of 255 bytes (the usual file system limit), nested deep enough for 70,000 bytes.
fn long_path() -> String {
    let levels = 70_000 / 256 + 1;
    let folders: Vec<String> = (0..levels).map(|i| format!("d{i:03}{}", "x".repeat(251))).collect();
    format!("{}/deep.php", folders.join("/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packages_over_a_zip_limit_fail_cleanly_and_leave_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::create(&temp.path().join("upstream/big.git"));
    upstream
        .file("modules/Good/composer.json", r#"{"name":"acme/good","version":"1.0.0"}"#)
        .file("modules/Good/Good.php", "<?php\n")
        .file("modules/LongPath/composer.json", r#"{"name":"acme/long-path","version":"1.0.0"}"#)
        .file(&format!("modules/LongPath/{}", long_path()), "<?php\n")
        .file("modules/ManyEntries/composer.json", r#"{"name":"acme/many-entries","version":"1.0.0"}"#);
    for folder in 0..70 {
        for file in 0..1000 {
            upstream.file(&format!("modules/ManyEntries/f{folder:02}/e{file:03}.txt"), "x");
        }
    }
    upstream.commit_and_tag("1.0.0");

    let config_path = temp.path().join("farm.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let out = temp.path().join("out");
    let config = tests::load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 2);
    let report = build(config, &out).await;

    let built: Vec<&str> = report.built.iter().map(|b| b.package.as_str()).collect();
    assert_eq!(built, ["acme/good"], "{}", report.summary());
    let reason_of = |package: &str| {
        let failed = report.failed.iter().find(|f| f.package == package);
        failed.and_then(|f| f.reason.clone()).unwrap_or_else(|| panic!("{package} not failed: {}", report.summary()))
    };
    // The first entry over the limit is the folder 256 levels down: 256 × 256 bytes.
    let reason = reason_of("acme/long-path");
    assert!(
        reason.starts_with("zip format limit: an entry name of 65536 bytes ('d000")
            && reason.contains("over the 65535 bytes a zip entry name can have"),
        "{reason}"
    );
    // 70,000 files, 70 folders and composer.json.
    let reason = reason_of("acme/many-entries");
    assert!(
        reason.starts_with("zip format limit: 70071 entries, over the 65534 a zip archive can hold without ZIP64"),
        "{reason}"
    );
    assert_eq!(report.failed.len(), 2);

    // Nothing of the failed packages is written: no archive, no metadata, no temp file.
    let files: std::collections::BTreeSet<String> = snapshot(&out).keys().map(|p| p.display().to_string()).collect();
    let expected = [
        ".farm/manifest.json",
        ".farm/metadata-index.json",
        "p2/acme/good.json",
        "p2/acme/good~dev.json",
        "packages.json",
        "packages/acme/good-1.0.0.zip",
    ];
    assert_eq!(files, expected.iter().map(|s| s.to_string()).collect());
    let manifest = std::fs::read_to_string(out.join(".farm/manifest.json")).unwrap();
    assert!(!manifest.contains("long-path") && !manifest.contains("many-entries"), "{manifest}");
}
