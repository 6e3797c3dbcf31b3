//! Prebuilt additional packages (reference 3.11): a name@version they provide is not built from
//! git, and the prebuilt zips are published as they are under `packages/additional/`.

use std::sync::Arc;

use shared::archive::{ArchiveBuilder, FILE_MODE};
use tests::{archive_rows, build, expected_parity_rows, fixture, load_config, restore_parity_upstream};

fn prebuilt(dir: &std::path::Path, file_name: &str, composer: &str) -> Vec<u8> {
    let mut builder = ArchiveBuilder::new();
    builder.add_file("composer.json", Arc::from(composer.as_bytes()), FILE_MODE);
    builder.add_file("README.md", Arc::from(&b"prebuilt\n"[..]), FILE_MODE);
    let mut bytes = Vec::new();
    builder.write_to(&mut bytes).unwrap();
    std::fs::write(dir.join(file_name), &bytes).unwrap();
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn additional_packages_replace_builds_and_are_published_as_they_are() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let additional = temp.path().join("additional");
    std::fs::create_dir_all(&additional).unwrap();
    let cms = prebuilt(
        &additional,
        "acme-module-cms-100.0.0.zip",
        r#"{"name":"acme/module-cms","version":"100.0.0","type":"library"}"#,
    );
    prebuilt(&additional, "acme-acme2-base-1.0.0-patch1.zip", r#"{"name":"acme/acme2-base","version":"1.0.0-p1"}"#);
    prebuilt(&additional, "other-extra-1.2.3.zip", r#"{"name":"other/extra","version":"1.2.3"}"#);
    std::fs::write(additional.join("broken-1.0.zip"), b"not a zip").unwrap();

    let out = temp.path().join("out");
    let mut config = load_config(&fixture("parity.toml"), &upstream, &temp.path().join("cache"), 2);
    config.repository.additional_packages = Some(additional.clone());
    let report = build(config, &out).await;

    let provided: Vec<String> =
        report.provided.iter().map(|p| format!("{}@{} {}", p.package, p.version, p.file)).collect();
    assert_eq!(
        provided,
        [
            "acme/module-cms@100.0.0 acme-module-cms-100.0.0.zip",
            "acme/acme2-base@1.0.0-p1 acme-acme2-base-1.0.0-patch1.zip"
        ]
    );
    assert!(report.rejected.iter().any(|r| r.dir.as_deref() == Some("broken-1.0.zip")), "{}", report.summary());
    assert!(report.failed.is_empty(), "{}", report.summary());

    // Everything else is byte-identical to the reference; the two provided ones are not built.
    let rows = archive_rows(&out.join("packages"));
    let expected: String = expected_parity_rows()
        .lines()
        .filter(|l| !l.starts_with("acme/module-cms-100.0.0.zip") && !l.starts_with("acme/acme2-base-1.0.0-p1.zip"))
        .map(|l| format!("{l}\n"))
        .collect();
    let built_rows: String = rows.lines().filter(|l| !l.starts_with("additional/")).map(|l| format!("{l}\n")).collect();
    assert_eq!(built_rows, expected);
    assert_eq!(rows.lines().filter(|l| l.starts_with("additional/")).count(), 3);
    assert_eq!(std::fs::read(out.join("packages/additional/acme-module-cms-100.0.0.zip")).unwrap(), cms);

    let p2 = std::fs::read_to_string(out.join("p2/acme/module-cms.json")).unwrap();
    assert!(p2.contains("/packages/additional/acme-module-cms-100.0.0.zip"), "{p2}");
    let root = std::fs::read_to_string(out.join("packages.json")).unwrap();
    assert!(root.contains("\"other/extra\""), "{root}");

    // Nothing left to do on a second build.
    let mut config = load_config(&fixture("parity.toml"), &upstream, &temp.path().join("cache"), 2);
    config.repository.additional_packages = Some(additional);
    let again = build(config, &out).await;
    assert!(again.built.is_empty(), "{}", again.summary());
}
