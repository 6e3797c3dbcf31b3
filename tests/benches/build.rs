//! Benchmark: a generated Magento-sized upstream built embedded (1 and 2 in-process workers) and
//! distributed (RabbitMQ + S3 with 1, 2 and 4 `worker` processes).
//!
//! `scripts/bench.sh` builds the release binaries and runs `cargo bench -p tests --bench build`,
//! which prints a table (archives/s, MB/s). The distributed rows need RabbitMQ on 127.0.0.1:5672
//! and moto (both from `scripts/test-setup.sh`); `BENCH_DISTRIBUTED=0` skips them. Sizes can be changed
//! with `BENCH_MODULES` (default 300), `BENCH_FILES` (files per module, default 80) and
//! `BENCH_TAGS` (default 12). Every tag after the first changes a quarter of the modules, so each
//! tag adds new module versions plus a new base package, as Magento releases do. Timings are not
//! asserted anywhere: compare the rows of one run with each other.

use std::path::Path;
use std::time::Instant;

use tests::{Upstream, build, load_config};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Deterministic pseudo-random PHP-looking text of about `size` bytes.
fn php_file(seed: u64, size: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = String::with_capacity(size + 64);
    out.push_str("<?php\n/**\n * Copyright (c) generated benchmark file.\n */\ndeclare(strict_types=1);\n\n");
    while out.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.push_str(&format!(
            "    public function method{:x}(int $value): int {{ return $value * {}; }}\n",
            state,
            state % 977
        ));
    }
    out.into_bytes()
}

fn module_name(index: usize) -> String {
    format!("Module{index:03}")
}

fn write_module(upstream: &mut Upstream, index: usize, files: usize, patch: usize) {
    let name = module_name(index);
    let dir = format!("app/code/Magento/{name}");
    let composer = format!(
        r#"{{"name":"magento/module-{}","description":"Benchmark module","type":"magento2-module","license":["OSL-3.0","AFL-3.0"],"version":"100.0.{patch}","require":{{"php":"~8.1.0||~8.2.0","magento/framework":"103.0.*"}},"autoload":{{"files":["registration.php"],"psr-4":{{"Magento\\{name}\\":""}}}}}}"#,
        name.to_lowercase()
    );
    upstream.file(&format!("{dir}/composer.json"), composer);
    upstream.file(&format!("{dir}/registration.php"), php_file(index as u64, 300));
    for file in 0..files.saturating_sub(2) {
        let folder =
            ["Model", "Controller/Adminhtml", "Block", "etc", "view/frontend/templates", "Test/Unit/Model"][file % 6];
        let size = 1000 + (file * 397 + index * 131) % 5000;
        // The changed file of a patch release gets new content; the rest stays the same blob.
        let seed = (index * 1000 + file) as u64 + if file == 0 { patch as u64 * 7_919 } else { 0 };
        upstream.file(&format!("{dir}/{folder}/File{file:03}.php"), php_file(seed, size));
    }
}

fn generate(path: &Path, modules: usize, files: usize, tags: usize) -> (Upstream, usize, usize) {
    let mut upstream = Upstream::create(path);
    let base = r#"{"name":"magento/magento2-base","description":"Benchmark base","type":"magento2-component","license":["OSL-3.0"],"require":{"php":"~8.1.0||~8.2.0"}}"#;
    upstream.file("composer.json", base);
    for i in 0..2000 {
        let folder =
            ["lib/web/js", "setup/src/Magento/Setup", "dev/tools", "pub/static", "lib/internal/Magento/Framework"]
                [i % 5];
        upstream.file(&format!("{folder}/f{i:04}.php"), php_file(1_000_000 + i as u64, 800 + i % 3000));
    }
    let mut patches = vec![0usize; modules];
    for (index, patch) in patches.iter().enumerate() {
        write_module(&mut upstream, index, files, *patch);
    }
    let mut expected_archives = 0;
    for tag in 0..tags {
        if tag > 0 {
            for index in (0..modules).filter(|i| (i + tag) % 4 == 0) {
                patches[index] += 1;
                write_module(&mut upstream, index, files, patches[index]);
            }
            expected_archives += modules.div_ceil(4);
        } else {
            expected_archives += modules;
        }
        let version = format!("2.4.{tag}");
        upstream.file("composer.json", base.replace("\"require\"", &format!("\"version\":\"{version}\",\"require\"")));
        upstream.commit_and_tag(&version);
        expected_archives += 1;
    }
    let file_count = upstream.files.len();
    (upstream, file_count, expected_archives)
}

const CONFIG: &str = r#"
[repository]
base_url = "https://repo.example.org/"

[[upstreams]]
key = "magento2"
url = "https://github.com/mage-os/mirror-magento2.git"
from_tag = "2.4.0"

[[upstreams.package_dirs]]
label = "modules"
dir = "app/code/Magento"

[[upstreams.single_packages]]
label = "base"
dir = ""
excludes = ["app/code/", "composer.lock"]
empty_dirs = ["app/code/Magento"]
"#;

#[tokio::main]
async fn main() {
    let modules = env_usize("BENCH_MODULES", 300);
    let files = env_usize("BENCH_FILES", 80);
    let tags = env_usize("BENCH_TAGS", 12);
    let temp = tempfile::tempdir().expect("temp dir");
    let started = Instant::now();
    let (mut upstream, file_count, expected) =
        generate(&temp.path().join("upstream/mirror-magento2.git"), modules, files, tags);
    eprintln!(
        "generated upstream: {modules} modules, {file_count} files at the last tag, {tags} tags in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    let config_path = temp.path().join("bench.toml");
    std::fs::write(&config_path, CONFIG).expect("config");
    let cache = temp.path().join("cache");

    // Warm the git cache (the clone is not what we measure).
    let warm = load_config(&config_path, &temp.path().join("upstream"), &cache, 1);
    let started = Instant::now();
    let manifest = coordinator::manifest::Manifest::default();
    let planned =
        coordinator::build::plan_build(&warm, &manifest, &coordinator::build::Scope::All).await.expect("plan");
    eprintln!("clone + plan: {:.2}s, {} jobs planned", started.elapsed().as_secs_f64(), planned.to_build.len());
    assert_eq!(planned.to_build.len(), expected, "generator and plan disagree");

    println!("| embedded: workers | archives | MB written | seconds | of which fetch+plan | archives/s | MB/s |");
    println!("|--------:|---------:|-----------:|--------:|--------------------:|-----------:|-----:|");
    let mut first_seconds = None;
    let mut embedded_two = None;
    for workers in [1usize, 2] {
        let out = temp.path().join(format!("out-{workers}"));
        let config = load_config(&config_path, &temp.path().join("upstream"), &cache, workers);
        shared::git::clear_blob_cache();
        let started = Instant::now();
        let report = build(config, &out).await;
        let seconds = started.elapsed().as_secs_f64();
        assert!(report.failed.is_empty(), "{}", report.summary());
        let bytes: u64 = report.built.iter().filter_map(|b| b.size).sum();
        let megabytes = bytes as f64 / 1_000_000.0;
        println!(
            "| {workers} | {} | {megabytes:.1} | {seconds:.2} | {:.2} | {:.1} | {:.1} |",
            report.built.len(),
            report.planning_seconds,
            report.built.len() as f64 / seconds,
            megabytes / seconds
        );
        first_seconds.get_or_insert(seconds);
        if workers == 2 {
            embedded_two = Some(seconds);
        }
    }
    incremental(&config_path, temp.path(), &cache, &mut upstream, files).await;
    if std::env::var("BENCH_DISTRIBUTED").as_deref() == Ok("0") {
        return;
    }
    let distributed_two = distributed(&config_path, temp.path(), &cache, expected).await;
    if let Some(embedded_two) = embedded_two {
        println!(
            "\ndistributed with 2 worker processes / embedded with 2 workers: {:.2}x the time",
            distributed_two / embedded_two
        );
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

/// Distributed rows: the machine's broker, N worker processes (each `BENCH_WORKER_CONCURRENCY`
/// jobs at once, default 2) sharing the warm git cache (read-only once it has every commit),
/// storing into a shared folder and into one S3 server (moto).
async fn distributed(config_path: &Path, dir: &Path, cache: &Path, expected: usize) -> f64 {
    use tests::services::{Process, S3Server, amqp_url, binary, unique_prefix};
    let mut two = 0.0;
    let s3 = S3Server::start();
    println!();
    println!("| mode | worker processes | archives | seconds | jobs/s | MB/s |");
    println!("|------|-----------------:|---------:|--------:|-------:|-----:|");
    let s3s_fs = S3sFs::start(dir);
    let default_storages = if s3s_fs.is_some() { "local,s3,s3s-fs" } else { "local,s3" };
    let storages = std::env::var("BENCH_STORAGE").unwrap_or_else(|_| default_storages.to_owned());
    // Jobs at once per worker process: its cores, as a worker on its own machine would run.
    let concurrency = env_usize("BENCH_WORKER_CONCURRENCY", 2);
    for storage in storages.split(',') {
        for processes in [1usize, 2, 4] {
            let bucket = format!("bench-{storage}-{processes}");
            let prefix = unique_prefix("bench");
            let out = dir.join(format!("out-{storage}-{processes}"));
            let text = match storage {
                // The same queue, archives into a folder all processes share.
                "local" => {
                    let mut text =
                        tests::distributed_config(config_path, &amqp_url(), &prefix, "http://unused", &bucket, "");
                    text.truncate(text.find("\n[storage]").expect("storage section"));
                    text
                }
                "s3" => {
                    s3.create_public_bucket(&bucket);
                    tests::distributed_config(config_path, &amqp_url(), &prefix, &s3.endpoint(), &bucket, "")
                }
                "s3s-fs" => {
                    let server = s3s_fs.as_ref().expect("s3s-fs installed");
                    std::fs::create_dir_all(server.root.join(&bucket)).expect("bucket folder");
                    tests::distributed_config(config_path, &amqp_url(), &prefix, &server.endpoint(), &bucket, "")
                        .replace("access_key_id = \"test\"", "conditional_writes = false\naccess_key_id = \"test\"")
                }
                other => panic!("unknown BENCH_STORAGE entry {other}"),
            };
            let path = dir.join(format!("bench-{storage}-{processes}.toml"));
            std::fs::write(&path, text).expect("config");
            let workers: Vec<Process> = (0..processes)
                .map(|i| {
                    Process::spawn(
                        &format!("worker-{i}"),
                        &binary("worker"),
                        &["--config", path.to_str().unwrap()],
                        &[
                            ("FARM_BUILD__CACHE_DIR", cache.display().to_string()),
                            ("FARM_BUILD__WORKERS", concurrency.to_string()),
                            ("FARM_REPOSITORY__OUTPUT", out.display().to_string()),
                            ("RUST_LOG", "warn".to_owned()),
                        ],
                    )
                })
                .collect();
            let config = load_config(&path, &dir.join("upstream"), cache, 2);
            shared::git::clear_blob_cache();
            let started = Instant::now();
            let report = build(config, &out).await;
            let seconds = started.elapsed().as_secs_f64();
            assert!(report.failed.is_empty(), "{}", report.summary());
            assert_eq!(report.built.len(), expected);
            let bytes: u64 = report.built.iter().filter_map(|b| b.size).sum();
            let label = match storage {
                "local" => "RabbitMQ + shared folder",
                "s3" => "RabbitMQ + S3: moto",
                _ => "RabbitMQ + S3: s3s-fs",
            };
            println!(
                "| distributed ({label}) | {processes} | {} | {seconds:.2} | {:.1} | {:.1} |",
                report.built.len(),
                report.built.len() as f64 / seconds,
                bytes as f64 / 1_000_000.0 / seconds
            );
            drop(workers);
            tests::services::delete_topology_async(&amqp_url(), &prefix).await;
            if processes == 2 && storage == "s3" {
                two = seconds;
            }
        }
        if storage != "local" {
            let endpoint = match storage {
                "s3" => s3.endpoint(),
                _ => s3s_fs.as_ref().expect("s3s-fs").endpoint(),
            };
            if storage == "s3" {
                s3.create_public_bucket("bench-raw");
            } else {
                std::fs::create_dir_all(s3s_fs.as_ref().expect("s3s-fs").root.join("bench-raw")).expect("bucket");
            }
            // The embedded run's archives (out-2), the same bytes the workers uploaded.
            raw_uploads(storage, &endpoint, &dir.join("out-2").join("packages"), concurrency * 2).await;
        }
    }
    two
}

/// The S3 server's own ceiling: the archives of one distributed run uploaded again into a fresh
/// bucket straight from this process (same client, same checks), no queue, no git.
async fn raw_uploads(storage: &str, endpoint: &str, root: &Path, parallel: usize) {
    use shared::storage::Storage as _;
    let text = format!(
        "[repository]\nbase_url = \"http://x/\"\n[storage]\nkind = \"s3\"\nbucket = \"bench-raw\"\nendpoint = \"{endpoint}\"\n\
         access_key_id = \"test\"\nsecret_access_key = \"test\"\nconditional_writes = {}\n",
        storage == "s3"
    );
    let config = shared::config::FarmConfig::from_toml(&text).expect("raw config");
    let scratch = tempfile::tempdir().expect("scratch");
    let target = std::sync::Arc::new(
        shared::s3::S3Storage::connect(&config.storage, scratch.path().to_owned()).await.expect("s3 client"),
    );
    let files: Vec<std::path::PathBuf> =
        tests::snapshot(root).into_keys().filter(|k| k.extension().is_some_and(|e| e == "zip")).collect();
    let started = Instant::now();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(parallel));
    let mut tasks = tokio::task::JoinSet::new();
    let mut bytes = 0u64;
    for relative in files.clone() {
        let path = root.join(&relative);
        bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let (target, limit) = (std::sync::Arc::clone(&target), std::sync::Arc::clone(&limit));
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let sha1 = shared::storage::sha1_of_file(&path).expect("sha1");
            let key = format!("packages/{}", relative.display());
            target.put_archive(&key, &path, &sha1).await.expect("raw upload");
        });
    }
    while tasks.join_next().await.is_some() {}
    let seconds = started.elapsed().as_secs_f64();
    let label = if storage == "s3" { "moto" } else { "s3s-fs" };
    println!(
        "| ceiling: the same archives uploaded to {label} directly, {parallel} at a time | - | {} | {seconds:.2} | {:.1} | {:.1} |",
        files.len(),
        files.len() as f64 / seconds,
        bytes as f64 / 1_000_000.0 / seconds
    );
}

/// s3s-fs (`cargo install s3s-fs --version 0.14.1 --features binary`), if installed: a Rust S3
/// server storing objects as files. Optional; `BENCH_S3S_FS` names the binary.
struct S3sFs {
    child: std::process::Child,
    port: u16,
    root: std::path::PathBuf,
}

impl S3sFs {
    fn start(dir: &Path) -> Option<S3sFs> {
        let program = std::env::var_os("BENCH_S3S_FS").map(std::path::PathBuf::from).unwrap_or_else(|| {
            let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_else(|| "/root".into());
            home.join(".cache/composer-farm/s3s-fs/bin/s3s-fs")
        });
        if !program.is_file() {
            return None;
        }
        let root = dir.join("s3s-fs");
        std::fs::create_dir_all(&root).ok()?;
        let port = tests::free_port();
        let child = std::process::Command::new(program)
            .args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", "test", "--secret-key", "test"])
            .arg(&root)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        tests::services::wait_for_port(port, std::time::Duration::from_secs(30));
        Some(S3sFs { child, port, root })
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
