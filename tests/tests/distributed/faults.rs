//! Faults during a distributed build: workers killed mid-job, the broker restarted, S3
//! unreachable for a while, poison messages. Each build must still finish with exactly the
//! parity archives (nothing lost, nothing corrupt) or, for poison, report what was dead-lettered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use tests::services::{PrivateRabbit, Process, amqp_url};

use crate::{Farm, Options, THOUSAND, expect_exit, stored_report};

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

/// Nothing lost, nothing corrupt, nothing dead-lettered: the bucket holds exactly the archives an
/// embedded build makes, the report lists no failure, and `coordinator verify` passes.
fn assert_complete(farm: &Farm) {
    assert_eq!(farm.archive_rows(), farm.expected, "archives in the bucket differ from the embedded build's");
    let report = stored_report(farm);
    assert_eq!(report["failed"].as_array().unwrap().len(), 0, "{report:#}");
    assert_eq!(report["dead_letters"].as_array().map_or(0, Vec::len), 0, "{report:#}");
    let (code, lines) = farm.verify();
    assert_eq!(code, 0, "{lines:#?}");
}

/// Waits until a worker holds at least `count` jobs it started and has not finished.
fn wait_unfinished(process: &Process, count: usize) {
    let started = std::time::Instant::now();
    while unfinished_jobs(process).len() < count {
        assert!(started.elapsed() < Duration::from_secs(300), "no {count} unfinished jobs in hand");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The `job done` lines of all these workers.
fn done(workers: &[&Process]) -> usize {
    workers.iter().map(|w| w.count("job done")).sum()
}

/// Waits until these workers together logged `count` lines containing `needle`.
fn wait_all(workers: &mut [&mut Process], needle: &str, count: usize) {
    let started = std::time::Instant::now();
    while workers.iter().map(|w| w.count(needle)).sum::<usize>() < count {
        assert!(started.elapsed() < Duration::from_secs(300), "no {count} lines '{needle}' from the workers");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn workers_sigkilled_mid_upload_twenty_times_lose_nothing() {
    // Each victim reaches S3 through a held link, so its jobs are still in flight when it is
    // killed; jobs can be interrupted up to 20 times, so the broker's delivery limit is above that.
    let farm = Farm::generated(
        THOUSAND,
        "sigkill",
        &amqp_url(),
        Options { proxy: true, queue: "delivery_limit = 30\n", ..Options::default() },
    );
    let proxy = farm.proxy.as_ref().unwrap();
    let mut coordinator = farm.coordinator();
    let mut interrupted = BTreeSet::new();
    for round in 0..20 {
        // Held once the victim consumes (its storage probe has passed): then its jobs in hand
        // cannot finish, and it is killed holding some.
        let mut victim = farm.worker(&format!("victim-{round}"), 2);
        assert!(victim.wait_for("job started", 1, Duration::from_secs(120)), "round {round}: no job started");
        proxy.hold();
        wait_unfinished(&victim, 2);
        victim.kill();
        interrupted.extend(unfinished_jobs(&victim));
        proxy.release();
    }
    assert!(!interrupted.is_empty(), "no worker was killed in the middle of a job");
    // The survivors store directly.
    let direct = [("FARM_STORAGE__ENDPOINT", farm.s3.endpoint())];
    let survivors = [farm.worker_with("survivor-a", 2, &direct), farm.worker_with("survivor-b", 2, &direct)];
    expect_exit(&mut coordinator, 0, Duration::from_secs(600));
    let finished: BTreeSet<String> = survivors
        .iter()
        .flat_map(|s| s.lines())
        .filter(|l| l.contains("job done"))
        .filter_map(|l| job_id_of(&l))
        .collect();
    assert!(interrupted.iter().all(|id| finished.contains(id)), "interrupted jobs were not all built by the survivors");
    assert_complete(&farm);
}

#[test]
fn the_volume_server_killed_mid_build_then_restarted() {
    let mut farm = Farm::generated(THOUSAND, "volume", &amqp_url(), Options::default());
    let mut workers = [farm.worker("worker-a", 2), farm.worker("worker-b", 2)];
    let mut coordinator = farm.coordinator();
    {
        let mut all: Vec<&mut Process> = workers.iter_mut().collect();
        wait_all(&mut all, "job done", 100);
    }
    farm.s3.kill_volume();
    // The gateway now fails writes (after its own timeout): wait until it says so.
    farm.s3.wait_until_writes_fail();
    let done_at_kill = done(&workers.iter().collect::<Vec<_>>());
    farm.s3.start_volume();
    expect_exit(&mut coordinator, 0, Duration::from_secs(600));
    assert!(done_at_kill < farm.archives, "the build finished before the volume server was killed");
    assert_complete(&farm);
}

#[test]
fn broker_restart_mid_build() {
    let temp = tempfile::tempdir().unwrap();
    let rabbit = PrivateRabbit::start(&temp.path().join("rabbit"));
    // The workers store through a proxy that is held while the broker is away: no job can finish
    // then, so the build is still running when the broker stops and comes back.
    let farm = Farm::generated(THOUSAND, "restart", &rabbit.url(), Options { proxy: true, ..Options::default() });
    let proxy = farm.proxy.as_ref().unwrap();
    let mut workers = [farm.worker("worker-a", 2), farm.worker("worker-b", 2)];
    let mut coordinator = farm.coordinator();
    {
        let mut all: Vec<&mut Process> = workers.iter_mut().collect();
        wait_all(&mut all, "job done", 100);
    }
    proxy.hold();
    rabbit.stop_node();
    let done_at_stop = done(&workers.iter().collect::<Vec<_>>());
    for worker in workers.iter_mut() {
        assert!(worker.wait_for("lost the broker", 1, Duration::from_secs(120)), "a worker never noticed");
    }
    rabbit.start_node();
    proxy.release();
    expect_exit(&mut coordinator, 0, Duration::from_secs(600));
    assert!(done_at_stop < farm.archives, "the build finished before the broker went away");
    // The coordinator notices when it next uses its connection (it may have been only waiting).
    assert!(coordinator.count("lost the broker") > 0, "the coordinator never noticed the restart");
    assert_complete(&farm);
}

#[test]
fn s3_cut_mid_build_costs_no_attempt() {
    // Everyone reaches S3 through the proxy; cutting it makes every worker find its storage
    // unusable: they give their jobs back (no attempt spent, nothing dead-lettered) and wait.
    let farm = Farm::generated(THOUSAND, "s3-cut", &amqp_url(), Options { proxy: true, ..Options::default() });
    let proxy = farm.proxy.as_ref().unwrap();
    let mut workers = [farm.worker("worker-a", 2), farm.worker("worker-b", 2)];
    let mut coordinator = farm.coordinator();
    {
        let mut all: Vec<&mut Process> = workers.iter_mut().collect();
        wait_all(&mut all, "job done", 100);
    }
    proxy.disable();
    // The cut lasts until every worker has failed its probe twice (it keeps taking no jobs).
    for worker in workers.iter_mut() {
        assert!(worker.wait_for("storage unusable", 2, Duration::from_secs(300)), "a worker never noticed the cut");
    }
    let done_at_cut = done(&workers.iter().collect::<Vec<_>>());
    proxy.enable();
    expect_exit(&mut coordinator, 0, Duration::from_secs(600));
    assert!(done_at_cut < farm.archives, "the build finished before S3 was cut");
    assert!(workers.iter().all(|w| w.count("storage works again") >= 1), "a worker did not resume");
    assert_eq!(workers.iter().map(|w| w.count("job will be retried")).sum::<usize>(), 0, "attempts were spent");
    assert_complete(&farm);
}

#[test]
fn the_coordinator_sigkilled_mid_build_and_restarted() {
    let farm = Farm::generated(THOUSAND, "coordinator-kill", &amqp_url(), Options::default());
    let _workers = [farm.worker("worker-a", 2), farm.worker("worker-b", 2)];
    let mut first = farm.coordinator();
    let progress = format!("/{} done", farm.archives);
    assert!(first.wait_for(&progress, 200, Duration::from_secs(300)), "no progress before the kill");
    first.kill();
    let mut second = farm.coordinator();
    expect_exit(&mut second, 0, Duration::from_secs(600));
    assert!(second.count("storage lock of a coordinator process of this host that is gone") == 1);
    assert_complete(&farm);
}

#[test]
fn workers_with_a_broken_storage_setting_give_their_jobs_back() {
    // Two stray workers beside two healthy ones: one with a wrong secret key (it never takes a
    // job), one whose endpoint goes away mid-build (it gives back what it holds and stops).
    let farm = Farm::generated(THOUSAND, "stray", &amqp_url(), Options { proxy: true, ..Options::default() });
    let proxy = farm.proxy.as_ref().unwrap();
    let direct = [("FARM_STORAGE__ENDPOINT", farm.s3.endpoint())];
    let mut coordinator = farm.coordinator_with(&direct);
    let mut vanishing = farm.worker("stray-vanishing", 2);
    assert!(vanishing.wait_for("job done", 5, Duration::from_secs(300)), "the stray worker built nothing");
    proxy.disable();
    let wrong_key =
        [("FARM_STORAGE__ENDPOINT", farm.s3.endpoint()), ("FARM_STORAGE__SECRET_ACCESS_KEY", "wrong".to_owned())];
    let mut refused = farm.worker_with("stray-wrong-key", 2, &wrong_key);
    let healthy = [farm.worker_with("healthy-a", 2, &direct), farm.worker_with("healthy-b", 2, &direct)];
    expect_exit(&mut coordinator, 0, Duration::from_secs(600));
    assert!(refused.wait_for("storage unusable", 1, Duration::from_secs(60)));
    assert_eq!(refused.count("job started"), 0, "a worker that cannot store took a job");
    let said = refused.lines().into_iter().find(|l| l.contains("storage unusable")).unwrap();
    assert!(said.contains(&farm.s3.endpoint()) && said.contains("bucket composer") && said.contains("403"), "{said}");
    assert!(vanishing.count("storage unusable") >= 1, "the vanishing worker never noticed");
    assert!(done(&healthy.iter().collect::<Vec<_>>()) > 0);
    // The endpoint is back (clients read the repository through it).
    proxy.enable();
    assert_complete(&farm);

    // `worker check` says the same, as an exit status.
    let check = |name: &str, env: &[(&str, String)]| {
        let mut process = Process::spawn(
            name,
            &tests::services::binary("worker"),
            &["--config", farm.config.to_str().unwrap(), "check"],
            env,
        );
        (process.wait(Duration::from_secs(120)), process.lines())
    };
    let (code, lines) = check("check-wrong", &wrong_key);
    assert_eq!(code, 1, "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("storage unusable") && l.contains("bucket composer")), "{lines:#?}");
    let (code, lines) = check("check-good", &direct);
    assert_eq!(code, 0, "{lines:#?}");
    assert!(lines.iter().any(|l| l.starts_with("storage ok")), "{lines:#?}");
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
    // Once the worker consumes, its uploads are held until it has been told to stop: jobs in its
    // hand are then unfinished, and it must finish them before it exits.
    let farm = Farm::parity("sigterm", &amqp_url(), Options { proxy: true, ..Options::default() });
    let proxy = farm.proxy.as_ref().unwrap();
    let mut coordinator = farm.coordinator();
    let mut leaving = farm.worker("leaving", 2);
    assert!(leaving.wait_for("job started", 1, Duration::from_secs(120)), "no job started");
    proxy.hold();
    wait_unfinished(&leaving, 1);
    leaving.signal("TERM");
    assert!(leaving.wait_for("stopping: no new jobs", 1, Duration::from_secs(120)), "the worker did not stop");
    proxy.release();
    assert_eq!(leaving.wait(Duration::from_secs(120)), 0, "a stopped worker exits 0");
    assert!(leaving.count("stopping: no new jobs") == 1);
    assert!(unfinished_jobs(&leaving).is_empty(), "jobs in hand were abandoned: {:?}", unfinished_jobs(&leaving));
    let started = leaving.count("job started");
    assert!(started < 35, "the worker did everything before it was stopped");
    let _staying = farm.worker("staying", 2);
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
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
    // The outage lasts until the coordinator has failed to save twice.
    assert!(coordinator.wait_for("cannot save the manifest yet", 2, Duration::from_secs(120)), "no retry seen");
    proxy.enable();
    expect_exit(&mut coordinator, 0, Duration::from_secs(300));
    assert_complete(&farm);
}
