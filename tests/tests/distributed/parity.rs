//! Coordinator plus two worker processes build the parity fixture through RabbitMQ into S3.

use std::time::Duration;

use crate::{Farm, Options, composer_installs, expect_exit, stored_report};

#[test]
fn parity_fixture_through_rabbitmq_and_s3() {
    let farm = Farm::parity("parity", &tests::services::amqp_url(), Options::default());
    let mut workers = [farm.worker("worker-a", 2), farm.worker("worker-b", 2)];
    // Both consume before the first job is published, so the broker shares the jobs between them.
    for worker in &mut workers {
        assert!(worker.wait_for("consuming jobs", 1, Duration::from_secs(120)), "a worker never consumed");
    }
    let mut coordinator = farm.coordinator();
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));

    assert_eq!(farm.archive_rows(), tests::expected_parity_rows());
    let report = stored_report(&farm);
    assert_eq!(report["mode"], "distributed");
    assert_eq!(report["built"].as_array().unwrap().len(), 35);
    // Both workers took jobs.
    for worker in &workers {
        assert!(worker.count("job done") > 0, "a worker built nothing");
    }

    let (code, lines) = farm.verify();
    assert_eq!(code, 0, "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("35 archives")), "{lines:#?}");
    composer_installs(&farm, "acme/module-catalog", "100.1.0");

    // A second build publishes nothing new and changes no object.
    let before = farm.s3.objects(&farm.bucket);
    let mut again = farm.coordinator();
    expect_exit(&mut again, 0, Duration::from_secs(300));
    let after = farm.s3.objects(&farm.bucket);
    let content = |objects: &std::collections::BTreeMap<String, Vec<u8>>| {
        objects
            .iter()
            // The report and the health record say what each build did; nothing else changes.
            .filter(|(k, _)| k.as_str() != ".farm/report.json" && k.as_str() != ".farm/health.json")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(content(&before), content(&after));
    assert_eq!(stored_report(&farm)["built"].as_array().unwrap().len(), 0);

    // verify notices an archive whose bytes no longer match the metadata, and one that is gone.
    // (Written with the farm's own S3 client: the bucket policy lets anonymous clients only read.)
    let tampered = "packages/acme/module-cms-100.0.0.zip";
    let gone = "packages/acme/suite-1.1.0.zip";
    let config = shared::config::FarmConfig::load(&farm.config).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        use shared::storage::Storage as _;
        let scratch = farm.path("scratch");
        let storage = shared::storage::s3::S3Storage::connect(&config.storage, scratch).await.unwrap();
        storage.put_replace(tampered, b"not the archive".to_vec()).await.unwrap();
        storage.delete(gone).await.unwrap();
    });
    let (code, lines) = farm.verify();
    assert_eq!(code, 1, "{lines:#?}");
    let problems: Vec<&String> = lines.iter().filter(|l| l.starts_with("  ")).collect();
    assert_eq!(problems.len(), 2, "{lines:#?}");
    assert!(problems.iter().any(|l| l.contains(tampered) && l.contains("sha1")), "{lines:#?}");
    assert!(problems.iter().any(|l| l.contains(gone) && l.contains("404")), "{lines:#?}");
}
