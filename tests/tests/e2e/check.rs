//! `coordinator check` through the command line: the parity fixture's repository as it really
//! is, and file parity between two repositories that differ in one file and one file mode.

use std::io::{Read as _, Write as _};
use std::path::Path;

use clap::Parser as _;
use coordinator::cli::{Cli, run};
use tests::{Kind, Upstream, build, fixture, load_config, restore_parity_upstream, write_shop_config};

/// Runs `coordinator check ARGS --report FILE`; returns the exit code and the JSON report.
async fn check(args: &[&str], report: &Path) -> (u8, serde_json::Value) {
    let mut argv = vec!["coordinator", "check"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--report", report.to_str().unwrap()]);
    let code = run(Cli::parse_from(argv)).await.expect("check runs");
    (code, serde_json::from_slice(&std::fs::read(report).unwrap()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_the_parity_fixture_as_it_is() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let out = temp.path().join("out");
    build(load_config(&fixture("parity.toml"), &upstream, &temp.path().join("cache"), 2), &out).await;
    let (code, report) = check(&["--from", out.to_str().unwrap()], &temp.path().join("report.json")).await;
    let health = &report["health"];
    let problems: Vec<&str> =
        health["consistency"]["problems"].as_array().unwrap().iter().map(|p| p["message"].as_str().unwrap()).collect();
    // The fixture's base package requires the installer plugin, which the reference takes from
    // Packagist (as magento2-base requires magento/magento-composer-installer): under the
    // repository's own vendor and published nowhere, so the current base is broken.
    assert_eq!(
        problems,
        [
            "acme/acme2-base 1.1.0 requires acme/acme-installer ^1.0, which this repository does not publish, replace or provide"
        ]
    );
    assert_eq!(health["state"], "broken");
    // Older versions with problems nothing current needs: the other base versions, and the suite
    // at 1.1.0-beta1, whose backup module is invalid JSON at that tag and so was never built.
    let historical: Vec<&str> = health["consistency"]["historical"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["message"].as_str().unwrap())
        .collect();
    let mut expected: Vec<String> = ["1.0.0", "1.0.0-p1", "1.0.0-p10", "1.0.0-p2", "1.1.0-beta1"]
        .iter()
        .map(|v| format!("acme/acme2-base {v} requires acme/acme-installer ^1.0, which this repository does not publish, replace or provide"))
        .collect();
    expected.push(
        "acme/suite 1.1.0-beta1 requires acme/module-backup 100.1.0-beta1, but no published version matches; published: 100.1.0".to_owned(),
    );
    assert_eq!(historical, expected);
    assert_eq!((report["packages"].as_u64(), report["versions"].as_u64()), (Some(11), Some(35)));
    assert_eq!(code, 1);

    // Told that the installer comes from elsewhere, the repository is healthy.
    let (code, report) = check(
        &["--from", out.to_str().unwrap(), "--external", "acme/acme-installer"],
        &temp.path().join("report2.json"),
    )
    .await;
    assert_eq!(report["health"]["state"], "healthy", "{report:#}");
    assert_eq!(code, 0);
}

fn shop(upstream: &mut Upstream, cart: &str, run_kind: Kind) {
    upstream
        .file(
            "packages/Module/composer.json",
            r#"{"name":"acme/module-shop","type":"library","version":"1.0.0","require":{"acme/library-money":"^2.0"}}"#,
        )
        .file("packages/Module/Cart.php", cart)
        .file("packages/Money/composer.json", r#"{"name":"acme/library-money","type":"library","version":"2.1.0"}"#)
        .entry("packages/Money/bin/convert", "#!/bin/sh\necho money\n", run_kind)
        .file(
            "packages/Other/composer.json",
            r#"{"name":"acme/other","type":"library","version":"3.0.0","require":{"acme/library-money":"*"}}"#,
        )
        .file("packages/Other/a.php", "<?php // a\n")
        .file("packages/Other/z/b.php", "<?php // b\n");
    upstream.commit_and_tag("1.0.0");
}

/// The archive at `path` written again: entries in reverse order, another timestamp, deflated.
fn rezip(path: &Path) {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut entries = Vec::new();
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).unwrap();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        entries.push((entry.name().unwrap().into_owned(), entry.unix_mode(), bytes));
    }
    drop(archive);
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let time = zip::DateTime::from_date_and_time(2001, 2, 3, 4, 5, 6).unwrap();
    for (name, mode, bytes) in entries.into_iter().rev() {
        let mut options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(time);
        if let Some(mode) = mode {
            options = options.unix_permissions(mode);
        }
        if name.ends_with('/') {
            writer.add_directory(name, options).unwrap();
        } else {
            writer.start_file(name, options).unwrap();
            writer.write_all(&bytes).unwrap();
        }
    }
    writer.finish().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_against_names_exactly_the_file_and_the_mode_that_differ() {
    let temp = tempfile::tempdir().unwrap();
    let mut outs = Vec::new();
    for (side, cart, kind) in
        [("ours", "<?php class Cart {}\n", Kind::File), ("theirs", "<?php class Cart { }\n", Kind::Executable)]
    {
        let root = temp.path().join(side);
        shop(&mut Upstream::create(&root.join("upstream/shop.git")), cart, kind);
        let config = root.join("farm.toml");
        write_shop_config(&config, &format!("https://{side}.example/"));
        let out = root.join("out");
        let report = build(load_config(&config, &root.join("upstream"), &root.join("cache"), 2), &out).await;
        assert_eq!(report.built.len(), 3, "{}", report.summary());
        outs.push(out);
    }
    // Their copy of an unchanged package is zipped differently: same files, other bytes.
    let other = outs[1].join("packages/acme/other-3.0.0.zip");
    let before = std::fs::read(&other).unwrap();
    rezip(&other);
    assert_ne!(std::fs::read(&other).unwrap(), before);

    let (code, report) = check(
        &["--from", outs[0].to_str().unwrap(), "--against", outs[1].to_str().unwrap()],
        &temp.path().join("report.json"),
    )
    .await;
    let parity = &report["parity"];
    assert_eq!(parity["compared"], 3, "{parity:#}");
    assert_eq!(parity["identical"], 1, "{parity:#}");
    let differing: Vec<(String, Vec<String>)> = parity["differing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let lines = p["differences"].as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_owned()).collect();
            (p["package"].as_str().unwrap().to_owned(), lines)
        })
        .collect();
    assert_eq!(
        differing,
        [
            ("acme/library-money@2.1.0".to_owned(), vec!["bin/convert: mode 644 vs 755".to_owned()]),
            ("acme/module-shop@1.0.0".to_owned(), vec!["Cart.php: content differs (20 vs 21 bytes)".to_owned()]),
        ]
    );
    assert_eq!(parity["only_here"], serde_json::json!([]));
    assert_eq!(parity["only_there"], serde_json::json!([]));
    assert_eq!(code, 1);
}
