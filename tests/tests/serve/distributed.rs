//! `coordinator serve` in the distributed mode: a webhook's build goes through RabbitMQ to a
//! `worker` process and into an S3 bucket (SeaweedFS).

use std::time::{Duration, Instant};

use serde_json::json;
use tests::seaweed::S3Server;
use tests::services::{Process, amqp_url, binary, delete_topology, unique_prefix};

use super::{GITHUB_SECRET, Served, Settings, built_ids, metric, push_body, set_module};

#[test]
fn a_signed_push_reaches_a_worker_through_rabbitmq_and_s3() {
    let broker = amqp_url();
    let s3 = S3Server::start();
    s3.create_public_bucket("composer");
    let mut served = Served::new(Settings::default());
    let prefix = unique_prefix("serve");
    let text = tests::distributed_config(&served.config, &broker, &prefix, &s3.endpoint(), "composer", "");
    std::fs::write(&served.config, text).unwrap();
    let cache = served.dir.path().join("worker-cache");
    let mut worker = Process::spawn(
        "worker",
        &binary("worker"),
        &["--config", served.config.to_str().unwrap()],
        &[("FARM_BUILD__CACHE_DIR", cache.display().to_string())],
    );
    served.start();
    let zips = |s3: &S3Server| s3.objects("composer").keys().filter(|k| k.ends_with(".zip")).count();

    let first = served.wait_builds(1);
    assert_eq!(built_ids(&first), 8, "{first:#}");
    assert_eq!(zips(&s3), 8);

    set_module(&mut served.upstream, 1, "1.0.0", "changed", 10);
    let commit = served.upstream.commit("change module 1").to_string();
    let body = push_body("acme/upstream", "refs/heads/main", &commit);
    let (status, answer) = served.github("push", "dist-1", &body, Some(GITHUB_SECRET));
    assert_eq!((status, &answer["status"]), (202, &json!("accepted")), "{answer}");
    let second = served.wait_builds(2);
    assert_eq!(built_ids(&second), 1, "{second:#}");
    assert_eq!(zips(&s3), 9);
    assert!(s3.objects("composer").contains_key(".farm/manifest.json"));

    // Queue depth is sampled from the broker (every 5 s).
    let jobs_queue = format!("farm_queue_depth{{queue=\"{prefix}.jobs\"}}");
    let started = Instant::now();
    let metrics = loop {
        let text = served.client.get(served.url("/metrics")).send().unwrap().text().unwrap();
        if text.contains(&jobs_queue) || started.elapsed() > Duration::from_secs(30) {
            break text;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(metric(&metrics, &jobs_queue), 0.0);
    assert_eq!(metric(&metrics, "farm_jobs_published_total"), 9.0);
    assert_eq!(metric(&metrics, "farm_jobs_succeeded_total"), 9.0);
    assert_eq!(served.stop(), 0);
    worker.signal("TERM");
    assert_eq!(worker.wait(Duration::from_secs(60)), 0);
    delete_topology(&broker, &prefix);
}
