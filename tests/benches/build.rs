//! Benchmark: an embedded build of a generated Magento-sized upstream with 1 and 2 workers.
//!
//! `cargo bench -p tests --bench build` prints a table (archives/s, MB/s). Sizes can be changed
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

fn generate(path: &Path, modules: usize, files: usize, tags: usize) -> (usize, usize) {
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
    (upstream.files.len(), expected_archives)
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
    let (file_count, expected) = generate(&temp.path().join("upstream/mirror-magento2.git"), modules, files, tags);
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
    let planned = coordinator::build::plan_build(&warm, &manifest).await.expect("plan");
    eprintln!("clone + plan: {:.2}s, {} jobs planned", started.elapsed().as_secs_f64(), planned.to_build.len());
    assert_eq!(planned.to_build.len(), expected, "generator and plan disagree");

    println!("| workers | archives | MB written | seconds | of which fetch+plan | archives/s | MB/s |");
    println!("|--------:|---------:|-----------:|--------:|--------------------:|-----------:|-----:|");
    let mut first_seconds = None;
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
            println!(
                "\nspeed-up with 2 workers: {:.2}x (includes fetch and planning in both rows)",
                first_seconds.unwrap_or(seconds) / seconds
            );
        }
    }
}
