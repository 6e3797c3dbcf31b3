//! Bad upstream input: each problem is reported against its package, tag or repository, everything
//! else is built, and nothing half-written is left in the output.

use tests::{Kind, Upstream, build, snapshot};

const CONFIG: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "bad"
url = "https://github.com/mage-os/bad.git"
from_tag = "1.0.0"

[[upstreams.package_dirs]]
dir = "modules"

[[upstreams]]
key = "gone"
url = "https://github.com/mage-os/does-not-exist.git"
from_tag = "1.0.0"

[[upstreams.single_packages]]
dir = ""
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_is_reported_and_the_rest_is_built() {
    let temp = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::create(&temp.path().join("upstream/bad.git"));
    upstream
        .file("modules/Good/composer.json", r#"{"name":"acme/good","version":"1.0.0"}"#)
        .file("modules/Good/Good.php", "<?php\n")
        .entry("modules/Good/escape", "../../../../etc/passwd", Kind::Symlink)
        .entry("modules/Good/link.php", "Good.php", Kind::Symlink)
        .file("modules/Malformed/composer.json", "{\"name\": \"acme/malformed\", \"version\": \"1.0.0\",}")
        .file("modules/NoName/composer.json", r#"{"version":"1.0.0"}"#)
        .file("modules/NoVersion/composer.json", r#"{"name":"acme/noversion"}"#)
        .file("modules/NotJsonObject/composer.json", "[1, 2]")
        .file("modules/Traversal/composer.json", r#"{"name":"../../escape","version":"1.0.0"}"#)
        .file("modules/OddVersion/composer.json", r#"{"name":"acme/odd","version":"1.0.0-1"}"#);
    let commit = upstream.commit_and_tag("1.0.0");
    upstream.repo.reference("refs/tags/release-candidate", commit, true, "not a version").unwrap();

    let config_path = temp.path().join("farm.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let out = temp.path().join("out");
    let config = tests::load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 2);
    let report = build(config, &out).await;

    // Built: the good module, with the escaping symlink reported and left out.
    assert_eq!(report.built.len(), 1, "{}", report.summary());
    let good = &report.built[0];
    assert_eq!((good.package.as_str(), good.version.as_str()), ("acme/good", "1.0.0"));
    assert_eq!(good.warnings.len(), 1, "{:?}", good.warnings);
    assert!(
        good.warnings[0].contains("modules/Good/escape") && good.warnings[0].contains("outside"),
        "{:?}",
        good.warnings
    );

    let reason_for = |dir: &str| -> String {
        report
            .rejected
            .iter()
            .filter(|r| r.dir.as_deref() == Some(dir))
            .map(|r| r.reason.clone())
            .collect::<Vec<_>>()
            .join("; ")
    };
    assert!(reason_for("modules/Malformed").contains("not valid JSON"), "{}", report.summary());
    assert!(reason_for("modules/NoName").contains("no package name"), "{}", report.summary());
    assert!(reason_for("modules/NoVersion").contains("acme/noversion has no version"), "{}", report.summary());
    assert!(reason_for("modules/NotJsonObject").contains("not a JSON object"), "{}", report.summary());
    assert!(reason_for("modules/Traversal").contains("package name '../../escape' is invalid"), "{}", report.summary());
    assert!(
        reason_for("modules/OddVersion").contains("version '1.0.0-1' of acme/odd is invalid"),
        "{}",
        report.summary()
    );
    let tag_rejection =
        report.rejected.iter().find(|r| r.tag.as_deref() == Some("release-candidate")).expect("tag reported");
    assert!(tag_rejection.reason.contains("not a version"), "{}", tag_rejection.reason);

    assert_eq!(report.repository_failures.len(), 1);
    assert_eq!(report.repository_failures[0].upstream, "gone");
    assert!(report.repository_failures[0].reason.contains("cannot fetch"), "{}", report.repository_failures[0].reason);
    assert!(!report.succeeded(false));

    // The output holds exactly the good archive, its metadata and the farm's state; no temp files.
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
    let archive = std::fs::read(out.join("packages/acme/good-1.0.0.zip")).unwrap();
    let names = String::from_utf8_lossy(&archive);
    assert!(names.contains("Good.php") && !names.contains("escape") && !names.contains("link.php"));
}
