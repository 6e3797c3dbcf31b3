//! `coordinator adopt`: a live repository (served over HTTP, or a folder) is taken over into an
//! empty farm output; the next build publishes nothing new and changes nothing.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use coordinator::pipeline::Farm;
use shared::config::FarmConfig;
use tests::{PhpServer, Upstream, build, load_config, snapshot, write_shop_config as write_config};

async fn adopt(config: FarmConfig, out: &Path, from: &str) -> coordinator::adopt::AdoptReport {
    let farm =
        Farm::open(config, out, Arc::new(coordinator::metrics::Metrics::new()), Default::default(), Duration::ZERO)
            .await
            .unwrap();
    let options = coordinator::adopt::AdoptOptions { concurrency: 4, ..Default::default() };
    let report = coordinator::adopt::adopt(&farm, from, &options).await.unwrap();
    farm.close().await;
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopting_a_live_repository_then_building_publishes_nothing() {
    let temp = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::create(&temp.path().join("upstream/shop.git"));
    upstream
        .file("packages/A/composer.json", r#"{"name":"acme/a","version":"1.0.0","require":{"acme/b":"^1.0"}}"#)
        .file("packages/A/a.php", "<?php\n")
        .file("packages/B/composer.json", r#"{"name":"acme/b","version":"1.0.0"}"#);
    upstream.commit_and_tag("1.0.0");
    upstream.file("packages/B/composer.json", r#"{"name":"acme/b","version":"1.1.0"}"#);
    upstream.commit_and_tag("1.1.0");

    let port = tests::free_port();
    let base_url = format!("http://127.0.0.1:{port}/");
    let config_path = temp.path().join("farm.toml");
    write_config(&config_path, &base_url);
    let config = || load_config(&config_path, &temp.path().join("upstream"), &temp.path().join("cache"), 2);
    let live = temp.path().join("live");
    let first = build(config(), &live).await;
    assert_eq!(first.built.len(), 3, "{}", first.summary());
    let published = snapshot(&live);
    let server = PhpServer::start(&live, port);

    // Over HTTP into an empty output: every archive is copied after its sha1 is checked.
    let taken = temp.path().join("taken");
    let report = adopt(config(), &taken, &server.url).await;
    assert_eq!((report.listed, report.adopted, report.copied), (3, 3, 3), "{}", report.summary());
    assert!(report.problems.is_empty(), "{}", report.summary());
    let again = build(config(), &taken).await;
    assert!(again.built.is_empty(), "built after adopt: {}", again.summary());
    assert_eq!(again.unchanged.len(), 3);
    let after = snapshot(&taken);
    for (path, bytes) in &published {
        if path.starts_with(".farm") {
            continue;
        }
        assert!(after.get(path) == Some(bytes), "{} differs after adopt and build", path.display());
    }
    let manifest = tests::manifest(&taken);
    assert_eq!(manifest["packages"]["acme/a@1.0.0"]["upstream"], "adopted");
    // Adopting again knows everything already.
    let report = adopt(config(), &taken, &server.url).await;
    assert_eq!((report.known, report.adopted), (3, 0));

    // From a folder, where one archive in the farm's storage has other bytes: it is refused and
    // left alone, and nothing is recorded (metadata from a partial manifest would drop versions).
    let folder_taken = temp.path().join("folder-taken");
    let drifted = folder_taken.join("packages/acme/b-1.1.0.zip");
    std::fs::create_dir_all(drifted.parent().unwrap()).unwrap();
    std::fs::write(&drifted, b"not the published archive").unwrap();
    let report = adopt(config(), &folder_taken, &live.display().to_string()).await;
    assert_eq!((report.adopted, report.recorded), (2, false), "{}", report.summary());
    assert_eq!(report.problems.len(), 1, "{}", report.summary());
    assert!(report.problems[0].contains("acme/b 1.1.0") && report.problems[0].contains("sha1"), "{}", report.summary());
    assert_eq!(std::fs::read(&drifted).unwrap(), b"not the published archive");
    let manifest = std::fs::read(folder_taken.join(".farm/manifest.json")).unwrap_or_default();
    assert!(!String::from_utf8_lossy(&manifest).contains("acme/a@1.0.0"), "recorded despite a problem");
    // Nothing was stored either: an archive stored early could occupy a key a build needs.
    let stored: Vec<_> = snapshot(&folder_taken).into_keys().filter(|p| !p.starts_with(".farm")).collect();
    assert_eq!(stored, [Path::new("packages/acme/b-1.1.0.zip")], "adopt stored archives before failing");
    // Once the foreign file is gone, adopting again takes everything over.
    std::fs::remove_file(&drifted).unwrap();
    let report = adopt(config(), &folder_taken, &live.display().to_string()).await;
    assert_eq!((report.adopted, report.recorded, report.copied), (3, true, 3), "{}", report.summary());
}
