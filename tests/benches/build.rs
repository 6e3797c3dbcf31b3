//! Benchmark: one generated Magento-sized upstream (`tests::generated`) built every way the farm
//! runs, so the rows of one run can be compared with each other.
//!
//! `scripts/bench.sh` runs `scripts/test-setup.sh`, builds the release `worker` and `coordinator`
//! binaries and runs `cargo bench -p tests --bench build`, which prints three tables:
//!
//! 1. embedded builds in this process (1 and 2 workers): archives, MB, seconds, archives/s, MB/s;
//! 2. the main table, one row per way of running, each a child process build (so its CPU time can
//!    be measured): `E` embedded into a local folder, `ES` embedded into S3, `D1`/`D2`/`D4` a
//!    coordinator and 1/2/4 `worker` processes through RabbitMQ into S3, `ES30`/`D2-30` as `ES`/`D2`
//!    with S3 behind [`tests::latency::LatencyProxy`] (30 ms per request/response turn, as a
//!    remote S3). Columns: archives, MB, wall seconds, our CPU seconds (user + system of the
//!    coordinator and workers, not of the S3 server), the largest peak resident memory of one of
//!    those processes (the report's `peak_rss_bytes`, the workers' last log line), CPU/E and
//!    time/ES ratios; then the ratios
//!    the farm aims for, as "target ... measured ... met/missed" lines;
//! 3. incremental builds (embedded, with the `main` branch): first, nothing new, one module changed.
//!
//! The S3 and queue rows need RabbitMQ on 127.0.0.1:5672 and SeaweedFS (both from
//! `scripts/test-setup.sh`; the bench starts its own SeaweedFS cluster); `BENCH_DISTRIBUTED=0`
//! skips them (the main table then has `E` only). Environment:
//! - `BENCH_MODULES` (default 300), `BENCH_FILES` (files per module, default 120), `BENCH_TAGS`
//!   (default 12): the upstream's shape; the default makes 1,137 archives of about 540 MB. Every
//!   tag after the first changes a quarter of the modules, so each tag adds new module versions
//!   plus a new base package, as Magento releases do;
//! - `BENCH_RUNS` (default 1): runs of every main-table row (round robin); the table shows the
//!   median wall and CPU time;
//! - `BENCH_ROWS`: a comma-separated subset of the main table's rows (e.g. `E,ES,D2`);
//! - `BENCH_EMBEDDED_WORKERS` (default: one per core): `--workers` of the embedded rows;
//! - `BENCH_WORKER_CONCURRENCY` (default 2): jobs at once per worker process;
//! - `BENCH_GENERATE_ONLY=DIR`: only write the upstream (`DIR/upstream`) and its configuration
//!   (`DIR/bench.toml`), then stop (`scripts/compare-builds.sh` uses it).
//!
//! Every row checks that the build succeeded and made every archive; timings are never asserted.
//! Wall time runs from starting the coordinator to its exit (the workers start just before);
//! every row uses the same warm git cache, so no clone is measured.

use std::path::Path;
use std::time::{Duration, Instant};

use tests::bench::{Sample, children_cpu_seconds, chosen, clock_ticks, env_usize, read_report, report_sample};
use tests::generated::{CONFIG, Shape, generate, write_module};
use tests::latency::LatencyProxy;
use tests::seaweed::S3Server;
use tests::services::{Process, amqp_url, binary, delete_topology, unique_prefix};
use tests::{Upstream, build, load_config};

/// Latency of the "far away" S3 rows, per request/response turn.
const LATENCY: Duration = Duration::from_millis(30);
/// Longest a row's build may take before the bench gives up.
const ROW_LIMIT: Duration = Duration::from_secs(3 * 3600);

fn main() {
    let modules = env_usize("BENCH_MODULES", 300);
    let files = env_usize("BENCH_FILES", 120);
    let tags = env_usize("BENCH_TAGS", 12);
    // Before any other child process: getconf is reaped, and counted, too.
    let ticks = clock_ticks();
    let temp = tempfile::tempdir().expect("temp dir");
    // BENCH_GENERATE_ONLY=DIR: write the upstream and its config into DIR and stop (for
    // scripts/compare-builds.sh, which builds it with two coordinator binaries).
    let only = std::env::var_os("BENCH_GENERATE_ONLY").map(std::path::PathBuf::from);
    let root = only.clone().unwrap_or_else(|| temp.path().to_owned());
    let started = Instant::now();
    let generated = generate(
        &root.join("upstream/mirror-magento2.git"),
        Shape { modules, files, tags, base_files: 2000, change_every: 4, binary_every: 0 },
    );
    let (mut upstream, expected) = (generated.upstream, generated.archives);
    eprintln!(
        "generated upstream: {modules} modules, {} files at the last tag, {tags} tags, {expected} archives to build in {:.1}s",
        generated.files,
        started.elapsed().as_secs_f64()
    );
    let config_path = root.join("bench.toml");
    std::fs::write(&config_path, CONFIG).expect("config");
    if only.is_some() {
        return;
    }
    let cache = temp.path().join("cache");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(in_process(&config_path, temp.path(), &cache, expected));
    main_table(&config_path, temp.path(), &cache, expected, ticks);
    runtime.block_on(incremental(&config_path, temp.path(), &cache, &mut upstream, files));
}

/// Warms the git cache (the clone is not what we measure), then the in-process embedded rows.
async fn in_process(config_path: &Path, dir: &Path, cache: &Path, expected: usize) {
    let warm = load_config(config_path, &dir.join("upstream"), cache, 1);
    let started = Instant::now();
    let manifest = coordinator::manifest::Manifest::default();
    let planned = coordinator::plan::plan(&warm, &manifest, &coordinator::plan::Scope::All).await.expect("plan");
    eprintln!("clone + plan: {:.2}s, {} jobs planned", started.elapsed().as_secs_f64(), planned.to_build.len());
    assert_eq!(planned.to_build.len(), expected, "generator and plan disagree");

    println!(
        "| embedded in-process: workers | archives | MB written | seconds | of which fetch+plan | archives/s | MB/s |"
    );
    println!("|--------:|---------:|-----------:|--------:|--------------------:|-----------:|-----:|");
    for workers in [1usize, 2] {
        let out = dir.join(format!("out-{workers}"));
        let config = load_config(config_path, &dir.join("upstream"), cache, workers);
        shared::git::clear_blob_cache();
        let started = Instant::now();
        let report = build(config, &out).await;
        let seconds = started.elapsed().as_secs_f64();
        assert!(report.failed.is_empty(), "{}", report.summary());
        assert_eq!(report.built.len(), expected);
        let bytes: u64 = report.built.iter().filter_map(|b| b.size).sum();
        let megabytes = bytes as f64 / 1_000_000.0;
        println!(
            "| {workers} | {} | {megabytes:.1} | {seconds:.2} | {:.2} | {:.1} | {:.1} |",
            report.built.len(),
            report.planning_seconds,
            report.built.len() as f64 / seconds,
            megabytes / seconds
        );
        let _ = std::fs::remove_dir_all(&out);
    }
}

/// Incremental rows (embedded, 2 workers): with the `main` branch built too, a first build, a
/// build with nothing new, and a nightly in which one module changed on `main`.
async fn incremental(config_path: &Path, dir: &Path, cache: &Path, upstream: &mut Upstream, files: usize) {
    let with_branch = dir.join("bench-branch.toml");
    let text = std::fs::read_to_string(config_path).expect("config");
    let text = text.replace("from_tag = \"2.4.0\"", "from_tag = \"2.4.0\"\nbranches = [\"main\"]");
    std::fs::write(&with_branch, text).expect("config");
    let out = dir.join("out-incremental");
    println!();
    println!("| incremental (embedded, 2 workers, tags + main) | archives built | unchanged | seconds |");
    println!("|------|---------------:|----------:|--------:|");
    let run = |label: &'static str| {
        let config = load_config(&with_branch, &dir.join("upstream"), cache, 2);
        let out = out.clone();
        async move {
            shared::git::clear_blob_cache();
            let started = Instant::now();
            let report = build(config, &out).await;
            let seconds = started.elapsed().as_secs_f64();
            assert!(report.failed.is_empty(), "{}", report.summary());
            println!("| {label} | {} | {} | {seconds:.2} |", report.built.len(), report.unchanged.len());
            report.built.len()
        }
    };
    run("first build").await;
    assert_eq!(run("nothing new").await, 0);
    write_module(upstream, 7, files, 1_000);
    upstream.commit("nightly: one module changed");
    assert_eq!(run("one module changed on main").await, 1);
}

/// A row of the main table.
struct Row {
    /// Its name in the table.
    label: &'static str,
    /// Into S3 (else into a local folder).
    s3: bool,
    /// Worker processes through RabbitMQ; 0 = embedded.
    processes: usize,
    /// S3 behind the [`LatencyProxy`].
    far: bool,
}

const ROWS: [Row; 7] = [
    Row { label: "E", s3: false, processes: 0, far: false },
    Row { label: "ES", s3: true, processes: 0, far: false },
    Row { label: "D1", s3: true, processes: 1, far: false },
    Row { label: "D2", s3: true, processes: 2, far: false },
    Row { label: "D4", s3: true, processes: 4, far: false },
    Row { label: "ES30", s3: true, processes: 0, far: true },
    Row { label: "D2-30", s3: true, processes: 2, far: true },
];

/// What every row needs.
struct Bench<'a> {
    dir: &'a Path,
    config_path: &'a Path,
    cache: &'a Path,
    expected: usize,
    ticks: f64,
    embedded_workers: usize,
    worker_jobs: usize,
    s3: Option<S3Server>,
    proxy: Option<LatencyProxy>,
}

/// The main table: every row as child processes, CPU time from `/proc/self/stat`.
fn main_table(config_path: &Path, dir: &Path, cache: &Path, expected: usize, ticks: f64) {
    let distributed = std::env::var("BENCH_DISTRIBUTED").as_deref() != Ok("0");
    let rows: Vec<&Row> =
        ROWS.iter().filter(|row| distributed || !row.s3).filter(|row| chosen("BENCH_ROWS", row.label)).collect();
    if rows.is_empty() {
        return;
    }
    let runs = env_usize("BENCH_RUNS", 1).max(1);
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let s3 = rows.iter().any(|row| row.s3).then(S3Server::start);
    let proxy = match &s3 {
        Some(server) if rows.iter().any(|row| row.far) => Some(LatencyProxy::start(server.port, LATENCY)),
        _ => None,
    };
    let bench = Bench {
        dir,
        config_path,
        cache,
        expected,
        ticks,
        embedded_workers: env_usize("BENCH_EMBEDDED_WORKERS", cores),
        worker_jobs: env_usize("BENCH_WORKER_CONCURRENCY", 2),
        s3,
        proxy,
    };
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); rows.len()];
    for run in 0..runs {
        for (row, samples) in rows.iter().zip(samples.iter_mut()) {
            eprintln!("main table: row {} (run {} of {runs})", row.label, run + 1);
            samples.push(bench.run(row, run));
        }
    }

    let medians: Vec<(&str, Sample)> =
        rows.iter().zip(&samples).map(|(row, samples)| (row.label, Sample::median_of(samples))).collect();
    let find = |label: &str| medians.iter().find(|(name, _)| *name == label).map(|(_, sample)| *sample);
    let (e, es) = (find("E"), find("ES"));
    println!();
    println!(
        "main table: E = embedded ({} workers) into a local folder; ES = embedded into S3 (SeaweedFS); \
         D1/D2/D4 = coordinator + 1/2/4 worker processes ({} jobs each) through RabbitMQ into S3; \
         ES30, D2-30 = ES, D2 with {} ms per S3 request/response turn. CPU = user + system seconds of \
         the coordinator and workers (not SeaweedFS); peak = the largest peak resident memory of \
         one of them{}.",
        bench.embedded_workers,
        bench.worker_jobs,
        LATENCY.as_millis(),
        if runs > 1 { format!("; seconds, CPU and peak are medians of {runs} runs") } else { String::new() }
    );
    println!("| row | archives | MB | seconds | CPU seconds | peak MiB | CPU/E | time/ES |");
    println!("|-----|---------:|---:|--------:|------------:|---------:|------:|--------:|");
    for (label, sample) in &medians {
        let ratio = |of: f64, base: Option<f64>| match base {
            Some(base) if base > 0.0 => format!("{:.2}", of / base),
            _ => "-".to_owned(),
        };
        println!(
            "| {label} | {} | {:.1} | {:.2} | {:.2} | {:.0} | {} | {} |",
            sample.built,
            sample.megabytes(),
            sample.seconds,
            sample.cpu,
            sample.peak_mib,
            ratio(sample.cpu, e.map(|e| e.cpu)),
            ratio(sample.seconds, es.map(|es| es.seconds)),
        );
    }
    println!();
    let cpu = |label: &str| find(label).map(|s| s.cpu);
    let time = |label: &str| find(label).map(|s| s.seconds);
    for (name, of, base, limit) in [
        ("CPU(ES)/CPU(E)", cpu("ES"), cpu("E"), 1.2),
        ("time(ES30)/time(ES)", time("ES30"), time("ES"), 1.3),
        ("time(D2)/time(ES)", time("D2"), time("ES"), 1.2),
        ("time(D2-30)/time(ES30)", time("D2-30"), time("ES30"), 1.2),
        ("time(D4)/time(D2)", time("D4"), time("D2"), 1.0),
    ] {
        match (of, base) {
            (Some(of), Some(base)) if base > 0.0 => {
                let measured = of / base;
                let verdict = if measured <= limit { "met" } else { "missed" };
                println!("target {name} <= {limit:.2}: measured {measured:.2}: {verdict}");
            }
            _ => println!("target {name} <= {limit:.2}: not measured"),
        }
    }
    // Only now are the SeaweedFS processes reaped (their CPU is not ours).
    drop(bench);
}

impl Bench<'_> {
    /// Runs one row once: a fresh output (folder or bucket) and queue prefix, every process of the
    /// row exited and reaped before the CPU time is read. The sample's peak memory is the largest
    /// of the row's processes (from the build report and the workers' "worker stopped" lines).
    fn run(&self, row: &Row, run: usize) -> Sample {
        let name = format!("{}-{run}", row.label.to_lowercase());
        let bucket = format!("bench-{name}");
        let prefix = unique_prefix("bench");
        let out = self.dir.join(format!("row-{name}"));
        let endpoint = match (&self.s3, &self.proxy) {
            (Some(_), Some(proxy)) if row.far => proxy.endpoint(),
            (Some(s3), _) => s3.endpoint(),
            (None, _) => String::new(),
        };
        let text = if !row.s3 {
            std::fs::read_to_string(self.config_path).expect("base config")
        } else if row.processes == 0 {
            tests::s3_config(self.config_path, &endpoint, &bucket)
        } else {
            tests::distributed_config(self.config_path, &amqp_url(), &prefix, &endpoint, &bucket, "")
        };
        if row.s3 {
            self.s3.as_ref().expect("S3 server").create_public_bucket(&bucket);
        }
        let config = self.dir.join(format!("row-{name}.toml"));
        std::fs::write(&config, text).expect("row config");
        let config_arg = config.display().to_string();
        let upstream_base = self.dir.join("upstream").display().to_string();
        let cache = self.cache.display().to_string();
        let quiet = [("RUST_LOG", "warn".to_owned())];

        let before = children_cpu_seconds(self.ticks);
        let mut workers: Vec<Process> = (0..row.processes)
            .map(|i| {
                Process::spawn(
                    &format!("{name}-worker-{i}"),
                    &binary("worker"),
                    &["--config", config_arg.as_str()],
                    &[
                        ("FARM_BUILD__CACHE_DIR", cache.clone()),
                        ("FARM_BUILD__WORKERS", self.worker_jobs.to_string()),
                        // Quiet, but the last line (with the peak memory) is kept.
                        ("RUST_LOG", "warn,worker::consume=info".to_owned()),
                    ],
                )
            })
            .collect();
        let out_arg = out.display().to_string();
        let workers_arg = self.embedded_workers.to_string();
        let mut args = vec![
            "build",
            "--config",
            config_arg.as_str(),
            "--upstream-base",
            upstream_base.as_str(),
            "--cache-dir",
            cache.as_str(),
        ];
        if !row.s3 {
            args.extend(["--out", out_arg.as_str()]);
        }
        if row.processes == 0 {
            args.extend(["--workers", workers_arg.as_str()]);
        }
        let started = Instant::now();
        let mut coordinator = Process::spawn(&format!("{name}-coordinator"), &binary("coordinator"), &args, &quiet);
        let code = coordinator.wait(ROW_LIMIT);
        let seconds = started.elapsed().as_secs_f64();
        for worker in &workers {
            worker.signal("TERM");
        }
        for (i, worker) in workers.iter_mut().enumerate() {
            let exit = worker.wait(Duration::from_secs(300));
            if exit != 0 {
                eprintln!("row {}: worker {i} exited with {exit}", row.label);
            }
        }
        let after = children_cpu_seconds(self.ticks);
        let worker_peaks: Vec<u64> = workers.iter().filter_map(|w| peak_in_lines(&w.lines())).collect();
        drop(workers);
        if row.processes > 0 {
            delete_topology(&amqp_url(), &prefix);
        }
        assert_eq!(code, 0, "row {}: coordinator build exited with {code}", row.label);

        let report: serde_json::Value = if row.s3 {
            let url = format!("{}/{bucket}/.farm/report.json", self.s3.as_ref().expect("S3 server").endpoint());
            let bytes = reqwest::blocking::get(&url)
                .and_then(|r| r.error_for_status())
                .and_then(|r| r.bytes())
                .unwrap_or_else(|e| panic!("row {}: cannot read {url}: {e}", row.label));
            serde_json::from_slice(&bytes).expect("report JSON")
        } else {
            read_report(&out)
        };
        let sample = report_sample(&format!("row {}", row.label), &report, seconds, after - before);
        assert_eq!(sample.built, self.expected, "row {}: archives built", row.label);
        if !row.s3 {
            let _ = std::fs::remove_dir_all(&out);
        }
        let peak = worker_peaks.into_iter().chain(report["peak_rss_bytes"].as_u64()).max().unwrap_or(0);
        Sample { peak_mib: peak as f64 / (1 << 20) as f64, ..sample }
    }
}

/// `peak_rss_bytes` of a worker's "worker stopped" JSON log line.
fn peak_in_lines(lines: &[String]) -> Option<u64> {
    lines.iter().rev().find(|line| line.contains("worker stopped")).and_then(|line| {
        let value: serde_json::Value = serde_json::from_str(line).ok()?;
        value["fields"]["peak_rss_bytes"].as_u64()
    })
}
