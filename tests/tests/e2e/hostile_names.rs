//! Names, versions and URLs an attacker (or an unlucky upstream) controls: package names Composer
//! refuses, names that would collide in the metadata, names and versions no file system holds,
//! and credentials in an upstream URL's query string.

use std::collections::BTreeSet;

use tests::{Upstream, build, load_config, snapshot};

const CONFIG: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "shop"
url = "https://github.com/mage-os/shop.git?private_token=glpat-SECRET-TOKEN"
from_tag = "1.0.0"

[[upstreams.package_dirs]]
dir = "modules"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_composer_refuses_are_rejected_at_planning_and_nothing_collides() {
    let temp = tempfile::tempdir().unwrap();
    // The upstream's folder name carries the query string: a local path may hold '?'.
    let mut upstream = Upstream::create(&temp.path().join("upstream/shop.git?private_token=glpat-SECRET-TOKEN"));
    let long = format!("acme/{}", "a".repeat(300));
    let modules: [(&str, String); 11] = [
        ("Good", r#"{"name":"col/x","version":"1.0.0"}"#.to_owned()),
        ("DevSuffix", r#"{"name":"col/x~dev","version":"1.0.0"}"#.to_owned()),
        ("Upper", r#"{"name":"Col/X","version":"1.0.0"}"#.to_owned()),
        ("Space", r#"{"name":"acme/a b","version":"1.0.0"}"#.to_owned()),
        ("Newline", r#"{"name":"acme/a\nb","version":"1.0.0"}"#.to_owned()),
        ("Query", r#"{"name":"acme/x?#","version":"1.0.0"}"#.to_owned()),
        ("Nul", r#"{"name":"acme/n\u0000ul","version":"1.0.0"}"#.to_owned()),
        ("NulVersion", r#"{"name":"acme/nulversion","version":"1.0.0\u0000"}"#.to_owned()),
        ("Long", format!(r#"{{"name":"{long}","version":"1.0.0"}}"#)),
        ("Device", r#"{"name":"acme/con","version":"1.0.0"}"#.to_owned()),
        // Found by fuzzing: the version parser sliced the first four bytes and panicked.
        ("MultibyteVersion", r#"{"name":"acme/multibyte","version":"\u00b1\u00cb03.0.9.1"}"#.to_owned()),
    ];
    for (dir, composer) in &modules {
        upstream
            .file(&format!("modules/{dir}/composer.json"), composer.as_str())
            .file(&format!("modules/{dir}/a.php"), "<?php\n");
    }
    upstream.commit_and_tag("1.0.0");

    let config_path = temp.path().join("farm.toml");
    std::fs::write(&config_path, CONFIG).unwrap();
    let out = temp.path().join("out");
    let cache = temp.path().join("cache");
    let report = build(load_config(&config_path, &temp.path().join("upstream"), &cache, 2), &out).await;

    assert_eq!(report.built.iter().map(|b| b.package.as_str()).collect::<Vec<_>>(), ["col/x"], "{}", report.summary());
    // Nothing reached storage to fail there (a bad name used to fail as transient, every run).
    assert!(report.failed.is_empty(), "{}", report.summary());
    let reason = |dir: &str| {
        report.rejected.iter().find(|r| r.dir.as_deref() == Some(&format!("modules/{dir}"))).map(|r| r.reason.clone())
    };
    for (dir, _) in &modules[1..] {
        let reason = reason(dir).unwrap_or_else(|| panic!("modules/{dir} not rejected: {}", report.summary()));
        assert!(reason.contains("is invalid") || reason.contains("cannot be published"), "modules/{dir}: {reason}");
        assert!(!reason.contains('\n') && !reason.contains('\0'), "modules/{dir}: unescaped {reason:?}");
    }
    assert!(reason("Long").unwrap().contains("over the file-name limit of 255"), "{:?}", reason("Long"));
    assert!(reason("Upper").unwrap().contains("lower case"), "{:?}", reason("Upper"));

    // One entry for col/x, in its own file; no '~dev' file written by another name.
    let files: BTreeSet<String> = snapshot(&out).keys().map(|p| p.display().to_string()).collect();
    let expected: BTreeSet<String> = [
        ".farm/manifest.json",
        ".farm/metadata-index.json",
        "p2/col/x.json",
        "p2/col/x~dev.json",
        "packages.json",
        "packages/col/x-1.0.0.zip",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(files, expected);
    let zip = out.join("packages/col/x-1.0.0.zip");
    let test = tests::unzip_test(&zip);
    assert!(test.status.success(), "unzip -t: {}", String::from_utf8_lossy(&test.stdout));
    let php = tests::php_extract(&zip, &temp.path().join("extract"));
    assert!(php.status.success(), "ZipArchive::extractTo: {}", String::from_utf8_lossy(&php.stderr));
    let p2: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("p2/col/x.json")).unwrap()).unwrap();
    assert_eq!(p2["packages"]["col/x"].as_array().unwrap().len(), 1);

    // The token in the upstream URL is nowhere: not in the output, the report, or a cache folder name.
    let report_json = serde_json::to_string(&report).unwrap();
    assert!(!report_json.contains("SECRET"), "{report_json}");
    let manifest = std::fs::read_to_string(out.join(".farm/manifest.json")).unwrap();
    assert!(manifest.contains("shop.git?private_token=***"), "{manifest}");
    for (path, bytes) in snapshot(&out) {
        assert!(!String::from_utf8_lossy(&bytes).contains("SECRET"), "{} holds the token", path.display());
    }
    for entry in std::fs::read_dir(&cache).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(!name.contains("SECRET"), "cache folder {name}");
    }
}
