//! Faults during a distributed build: workers killed mid-job, the broker restarted, S3
//! unreachable for a while, poison messages. Each build must still finish with exactly the
//! parity archives (nothing lost, nothing corrupt) or, for poison, report what was dead-lettered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tests::services::{PrivateRabbit, Process, amqp_url};

use crate::{Farm, Options, expect_exit, stored_report};

/// job ids with a "job started" line but no "job done" line in this process.
fn unfinished_jobs(process: &Process) -> BTreeSet<String> {
    let mut state: BTreeMap<String, bool> = BTreeMap::new();
    for line in process.lines() {
        let Some(id) = job_id_of(&line) else {
            continue;
        };
        if line.contains("job started") {
            state.entry(id.to_owned()).or_insert(false);
        } else if line.contains("job done") {
            state.insert(id.to_owned(), true);
        }
    }
    state.into_iter().filter(|(_, done)| !done).map(|(id, _)| id).collect()
}

/// The `job_id` field of a log line (JSON when logs go to a pipe; `job_id=` in text).
fn job_id_of(line: &str) -> Option<String> {
    match serde_json::from_str::<serde_json::Value>(line) {
        Ok(value) => value["fields"]["job_id"].as_str().map(str::to_owned),
        Err(_) => line.split("job_id=").nth(1).and_then(|rest| rest.split_whitespace().next()).map(str::to_owned),
    }
}

fn assert_complete(farm: &Farm) {
    assert_eq!(farm.archive_rows(), tests::expected_parity_rows(), "archives in the bucket differ");
    let report = stored_report(farm);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0, "{report:#}");
    let (code, lines) = farm.verify();
    assert_eq!(code, 0, "{lines:#?}");
}

#[test]
fn workers_killed_mid_job_lose_nothing() {
    let farm = Farm::parity("sigkill", &amqp_url(), Options { proxy: true, ..Options::default() });
    // A slow link to S3 makes each job take long enough to be killed in the middle of.
    farm.proxy.as_ref().unwrap().set_delay(Duration::from_millis(40));
    let mut coordinator = farm.coordinator();
    let mut interrupted = BTreeSet::new();
    for round in 0..4 {
        let mut victim = farm.worker(&format!("victim-{round}"), 2);
        assert!(victim.wait_for("job started", 2, Duration::from_secs(120)), "round {round}: no job started");
        victim.kill();
        interrupted.extend(unfinished_jobs(&victim));
    }
    assert!(!interrupted.is_empty(), "no worker was killed in the middle of a job");
    let survivors = [farm.worker("survivor-a", 2), farm.worker("survivor-b", 2)];
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
    // Every interrupted job was handed to another worker and finished there.
    let finished: BTreeSet<String> = survivors
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| l.contains("job done"))
        .filter_map(|l| job_id_of(&l))
        .collect();
    let redone: Vec<&String> = interrupted.iter().filter(|id| finished.contains(*id)).collect();
    assert!(!redone.is_empty(), "interrupted jobs {interrupted:?} were not redelivered");
    farm.proxy.as_ref().unwrap().set_delay(Duration::ZERO);
    assert_complete(&farm);
}

#[test]
fn broker_restart_mid_build() {
    let temp = tempfile::tempdir().unwrap();
    let rabbit = PrivateRabbit::start(&temp.path().join("rabbit"));
    let farm = Farm::parity("restart", &rabbit.url(), Options { proxy: true, ..Options::default() });
    farm.proxy.as_ref().unwrap().set_delay(Duration::from_millis(40));
    let mut worker = farm.worker("worker", 2);
    let mut coordinator = farm.coordinator();
    assert!(worker.wait_for("job done", 4, Duration::from_secs(120)), "no progress before the restart");
    rabbit.stop_node();
    let done_at_stop = worker.count("job done");
    std::thread::sleep(Duration::from_secs(2));
    rabbit.start_node();
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
    assert!(done_at_stop < 35, "the build finished before the broker went away");
    assert!(worker.count("lost the broker") > 0, "the worker never noticed the restart");
    assert!(coordinator.count("lost the broker") > 0, "the coordinator never noticed the restart");
    farm.proxy.as_ref().unwrap().set_delay(Duration::ZERO);
    assert_complete(&farm);
}

#[test]
fn s3_unreachable_for_a_while() {
    let farm = Farm::parity(
        "s3-outage",
        &amqp_url(),
        Options {
            proxy: true,
            queue: "retry_delay = \"1s\"\nretry_delay_max = \"3s\"\nmax_attempts = 10\n",
            ..Options::default()
        },
    );
    let proxy = farm.proxy.as_ref().unwrap();
    proxy.set_delay(Duration::from_millis(20));
    let mut worker = farm.worker("worker", 2);
    let mut coordinator = farm.coordinator();
    assert!(worker.wait_for("job done", 3, Duration::from_secs(120)), "no progress before the outage");
    proxy.disable();
    assert!(worker.wait_for("job will be retried", 2, Duration::from_secs(120)), "no retry during the outage");
    std::thread::sleep(Duration::from_secs(5));
    proxy.enable();
    proxy.set_delay(Duration::ZERO);
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
    assert_complete(&farm);
}

#[test]
fn poison_messages_are_dead_lettered_and_reported() {
    // A second upstream whose repository disappears after planning: its job can never be built
    // (every fetch fails), so it is retried up to max_attempts and then dead-lettered.
    let farm = Farm::parity(
        "poison",
        &amqp_url(),
        Options {
            queue: "retry_delay = \"1s\"\nmax_attempts = 3\n",
            upstreams: "[[upstreams]]\nkey = \"vanishing\"\nurl = \"https://github.com/mage-os/vanishing.git\"\n\n[[upstreams.single_packages]]\ndir = \"\"\n",
            ..Options::default()
        },
    );
    let mut vanishing = tests::Upstream::create(&farm.upstream_base.join("vanishing.git"));
    vanishing.file("composer.json", r#"{"name":"acme/vanishing","version":"1.0.0","type":"library"}"#);
    vanishing.commit_and_tag("1.0.0");
    drop(vanishing);

    let mut coordinator = farm.coordinator();
    assert!(coordinator.wait_for("jobs published", 1, Duration::from_secs(120)), "jobs were not published");
    std::fs::remove_dir_all(farm.upstream_base.join("vanishing.git")).unwrap();

    // And a message that is not a job at all.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let jobs_queue = format!("{}.jobs", farm.prefix);
    let dead_queue = format!("{}.dead", farm.prefix);
    runtime.block_on(async {
        let connection = shared::amqp::connect(&amqp_url(), "test").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .basic_publish(
                "".into(),
                jobs_queue.as_str().into(),
                BasicPublishOptions::default(),
                b"{this is not a job",
                lapin::BasicProperties::default(),
            )
            .await
            .unwrap()
            .await
            .unwrap();
        connection.close(200, "done".into()).await.unwrap();
    });

    let workers = [farm.worker("worker-a", 2), farm.worker("worker-b", 2)];
    expect_exit(&mut coordinator, 1, Duration::from_secs(300));

    let report = stored_report(&farm);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{report:#}");
    assert_eq!(failed[0]["package"], "acme/vanishing");
    let reason = failed[0]["reason"].as_str().unwrap();
    assert!(reason.contains("dead-lettered") && reason.contains("gave up after 3 attempts"), "{reason}");
    let letters = report["dead_letters"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{report:#}");
    assert!(letters[0]["reason"].as_str().unwrap().contains("not a build job"), "{letters:?}");
    assert!(coordinator.lines().iter().any(|l| l.contains("failed: acme/vanishing 1.0.0")));
    assert!(workers.iter().any(|w| w.count("dead-lettering an unreadable message") == 1));
    // Everything else was built.
    assert_eq!(farm.archive_rows(), tests::expected_parity_rows());

    // Both stay in the dead-letter queue for operators.
    let dead = runtime.block_on(async {
        let connection = shared::amqp::connect(&amqp_url(), "test").await.unwrap();
        let channel = connection.create_channel().await.unwrap();
        let queue = channel
            .queue_declare(
                dead_queue.as_str().into(),
                QueueDeclareOptions { passive: true, ..QueueDeclareOptions::default() },
                FieldTable::default(),
            )
            .await
            .unwrap();
        queue.message_count()
    });
    assert_eq!(dead, 2);
}

#[test]
fn sigterm_lets_a_worker_finish_the_jobs_in_hand() {
    let farm = Farm::parity("sigterm", &amqp_url(), Options { proxy: true, ..Options::default() });
    farm.proxy.as_ref().unwrap().set_delay(Duration::from_millis(40));
    let mut coordinator = farm.coordinator();
    let mut leaving = farm.worker("leaving", 2);
    assert!(leaving.wait_for("job started", 2, Duration::from_secs(120)), "no job started");
    leaving.signal("TERM");
    assert_eq!(leaving.wait(Duration::from_secs(120)), 0, "a stopped worker exits 0");
    assert!(leaving.count("stopping: no new jobs") == 1);
    assert!(unfinished_jobs(&leaving).is_empty(), "jobs in hand were abandoned: {:?}", unfinished_jobs(&leaving));
    let started = leaving.count("job started");
    assert!(started < 35, "the worker did everything before it was stopped");
    let _staying = farm.worker("staying", 2);
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
    farm.proxy.as_ref().unwrap().set_delay(Duration::ZERO);
    assert_complete(&farm);
}

#[test]
fn missing_results_are_reported_after_the_timeout() {
    // No worker at all: nothing comes back.
    let farm =
        Farm::parity("timeout", &amqp_url(), Options { queue: "result_timeout = \"3s\"\n", ..Options::default() });
    let mut coordinator = farm.coordinator();
    expect_exit(&mut coordinator, 1, Duration::from_secs(120));
    let report = stored_report(&farm);
    let failed = report["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 35);
    for line in failed {
        assert!(line["reason"].as_str().unwrap().contains("no result within 3s"), "{line}");
    }
    // Metadata names nothing that was not built.
    let objects = farm.s3.objects(&farm.bucket);
    assert!(objects.keys().all(|key| !key.starts_with("packages/")), "{:?}", objects.keys());
    assert_eq!(tests::object_rows(&objects), "");
}

#[test]
fn s3_unreachable_for_the_coordinator_when_it_writes_the_metadata() {
    // The coordinator reaches S3 through the proxy, the workers directly: cut the coordinator's
    // path after it published the jobs; it gets every result but cannot write the manifest and
    // metadata until the path is back.
    let farm = Farm::parity("s3-outage-coordinator", &amqp_url(), Options { proxy: true, ..Options::default() });
    let proxy = farm.proxy.as_ref().unwrap();
    let mut coordinator = farm.coordinator();
    assert!(coordinator.wait_for("jobs published", 1, Duration::from_secs(120)), "jobs were not published");
    proxy.disable();
    let _worker = farm.worker_with("worker", 2, &[("FARM_STORAGE__ENDPOINT", farm.s3.endpoint())]);
    assert!(coordinator.wait_for("cannot save the manifest yet", 1, Duration::from_secs(120)), "no retry seen");
    std::thread::sleep(Duration::from_secs(3));
    proxy.enable();
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
    assert_complete(&farm);
}
