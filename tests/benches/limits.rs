//! Benchmark: the farm at its limits ("performance at the limit"): generated upstreams
//! (`tests::generated`) as large as the real ones and larger, each built by the release
//! `coordinator` binary as a child process (`coordinator build ... --out DIR --workers N`, embedded
//! into a local folder, `RUST_LOG=warn`).
//!
//! `scripts/bench.sh` builds the release binaries and runs `cargo bench -p tests --bench limits`
//! (after the `build` bench), which prints the machine, one table and the targets the farm aims
//! for as "target ... measured ... met/missed" lines. The rows, in the order they run:
//!
//! - `mirror`: an upstream shaped like the Mage-OS mirror (150 modules of 100 mostly 1–6 KB PHP
//!   files, a base package of 1,000 files, 130 tags, a fifteenth of the modules changed at each
//!   tag), warm git cache. Also its floor, measured in this process on the same input with 2
//!   threads: inflating every unique blob of the tags' trees once (git2, from the cached clone)
//!   plus SHA-1 and CRC-32 of every archive's bytes (read into memory first, untimed); the table
//!   shows seconds/floor and the two parts are printed below it, with the disk's floor: writing
//!   the same bytes into files and one `sync` (a durable build cannot be faster than that);
//! - `mirror-cold`: the same with an empty git cache, so the clone is measured too;
//! - `binary`: 517 archives, every third module with one file of 1–8 MiB of incompressible bytes
//!   (the same blob at every tag) beside its small PHP files;
//! - `scale-1x`, `scale-4x`, `scale-16x`: upstreams shaped like magento2 (250 modules of 145
//!   files, about 500 KB per archive, every module changed at every tag) with 5, 20 and 80 tags:
//!   1,255, 5,020 and 20,080 archives (16x writes about 10.9 GB), each generated separately;
//! - `scale-nochange`: the 16x output built again with nothing new (0 built); `scale-nochange
//!   --changed` the same with `build --changed` (only refs that moved are planned, as `serve`
//!   does on a poll);
//! - `scale-branch`: the 16x upstream and output with `branches = ["main"]`: a first build of the
//!   `dev-main` versions (untimed), then one module changed on `main` and the build timed (1
//!   built); `scale-branch --changed` the same with `build --changed`.
//!
//! Columns: archives built, packages unchanged, MB written, wall seconds (spawn to exit), CPU
//! seconds (user + system of the coordinator, from `/proc/self/stat`), peak MiB (the report's
//! `peak_rss_bytes`), archives/s, floor seconds, seconds/floor. Every row checks that the build
//! succeeded and built exactly the archives expected; timings are never asserted. Generation is
//! not measured; each output is deleted after the rows that use it (16x needs about 11 GB). Before
//! every build the bench runs `sync` (untimed), so that no build waits for the writeback of the
//! one before.
//!
//! Environment:
//! - `BENCH_LIMITS_ROWS`: a comma-separated subset of the rows (default: all), e.g.
//!   `mirror,binary`; `scale-nochange` and `scale-branch` build the 16x output first (untimed)
//!   when `scale-16x` is not chosen;
//! - `BENCH_RUNS` (default 1): runs of every row; the table shows medians of wall time, CPU time
//!   and peak memory (and of the floor's parts);
//! - `BENCH_WORKERS` (default: one per core): `--workers` of every build;
//! - `BENCH_LIMITS_SCALE=small`: every upstream about ten times smaller (and the binary files
//!   as large), to check the bench itself in minutes; the targets mean nothing then;
//! - `BENCH_LIMITS_DIR` (default: the system's temporary folder): where the upstreams, caches
//!   and outputs go.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use git2::{ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use tests::bench::{EmbeddedBuild, Sample, chosen, clock_ticks, env_usize, machine, median};
use tests::generated::{CONFIG, Generated, Shape, generate, write_module};
use tests::load_config;

/// Longest one build may take before the bench gives up.
const ROW_LIMIT: Duration = Duration::from_secs(3 * 3600);
/// Threads of the floor measurement.
const FLOOR_THREADS: usize = 2;

/// The upstreams of one run of the bench.
struct Sizes {
    mirror: Shape,
    binary: Shape,
    /// The scale rows' upstreams: 1x, 4x, 16x.
    scales: [Shape; 3],
}

impl Sizes {
    fn full() -> Sizes {
        let mirror = Shape { modules: 150, files: 100, tags: 130, base_files: 1000, change_every: 15, binary_every: 0 };
        let binary = Shape { modules: 100, files: 20, tags: 17, base_files: 200, change_every: 4, binary_every: 3 };
        let scale = |tags| Shape { modules: 250, files: 145, tags, base_files: 2000, change_every: 1, binary_every: 0 };
        Sizes { mirror, binary, scales: [scale(5), scale(20), scale(80)] }
    }

    fn small() -> Sizes {
        let mirror = Shape { modules: 30, files: 50, tags: 26, base_files: 200, change_every: 10, binary_every: 0 };
        let binary = Shape { modules: 20, files: 10, tags: 6, base_files: 50, change_every: 4, binary_every: 3 };
        let scale = |tags| Shape { modules: 50, files: 30, tags, base_files: 200, change_every: 1, binary_every: 0 };
        Sizes { mirror, binary, scales: [scale(2), scale(8), scale(32)] }
    }
}

/// The floor of a row: what the input needs at the least, in this process.
#[derive(Debug, Clone, Copy)]
struct Floor {
    /// Seconds to inflate every unique blob once.
    inflate: f64,
    /// Unique blobs and their bytes.
    blobs: usize,
    blob_bytes: u64,
    /// Seconds to SHA-1 and CRC-32 every archive.
    hash: f64,
    /// Archives and their bytes.
    archives: usize,
    archive_bytes: u64,
    /// Seconds to write the archives' bytes into files of the output's file system and make them
    /// durable (one `sync`): what the disk allows, whatever the CPU does.
    write: f64,
}

impl Floor {
    /// The CPU floor: inflating and hashing.
    fn seconds(&self) -> f64 {
        self.inflate + self.hash
    }
}

/// A finished row of the table.
struct Line {
    id: &'static str,
    sample: Sample,
    floor: Option<Floor>,
}

/// A generated upstream with its configuration, in a folder of its own.
struct Input {
    dir: PathBuf,
    config: PathBuf,
    generated: Generated,
    shape: Shape,
}

/// What every row needs.
struct Bench {
    root: PathBuf,
    ticks: f64,
    runs: usize,
    workers: usize,
    lines: Vec<Line>,
    started: Instant,
}

fn main() {
    // Before any other child process: getconf is reaped, and counted, too.
    let ticks = clock_ticks();
    let scale = std::env::var("BENCH_LIMITS_SCALE").unwrap_or_else(|_| "full".to_owned());
    let sizes = match scale.as_str() {
        "full" | "" => Sizes::full(),
        "small" => Sizes::small(),
        other => panic!("BENCH_LIMITS_SCALE={other}: expected `small` or `full`"),
    };
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    let temp = match std::env::var_os("BENCH_LIMITS_DIR") {
        Some(dir) => tempfile::tempdir_in(dir),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let mut bench = Bench {
        root: temp.path().to_owned(),
        ticks,
        runs: env_usize("BENCH_RUNS", 1).max(1),
        workers: env_usize("BENCH_WORKERS", cores).max(1),
        lines: Vec::new(),
        started: Instant::now(),
    };
    let on = |id: &str| chosen("BENCH_LIMITS_ROWS", id);

    if on("mirror") || on("mirror-cold") {
        let input = bench.input("mirror", sizes.mirror);
        if on("mirror") {
            bench.warm_row("mirror", &input, true);
        }
        if on("mirror-cold") {
            bench.cold_row("mirror-cold", &input);
        }
        bench.remove(&input.dir);
    }
    if on("binary") {
        let input = bench.input("binary", sizes.binary);
        bench.warm_row("binary", &input, false);
        bench.remove(&input.dir);
    }
    let ids = ["scale-1x", "scale-4x"];
    for (id, shape) in ids.into_iter().zip(sizes.scales) {
        if on(id) {
            let input = bench.input(id, shape);
            bench.warm_row(id, &input, false);
            bench.remove(&input.dir);
        }
    }
    let (nochange, branch) = (on("scale-nochange"), on("scale-branch"));
    if on("scale-16x") || nochange || branch {
        let mut input = bench.input("scale-16x", sizes.scales[2]);
        let out = if on("scale-16x") {
            bench.warm_row("scale-16x", &input, false)
        } else {
            bench.warm(&input);
            let out = input.dir.join("out");
            bench.progress("scale-16x: first build (untimed, for the rows after it)");
            let sample = bench.build("scale-16x", &input.config, &input, &out, &input.dir.join("cache"), &[]);
            assert_eq!(sample.built, input.generated.archives, "scale-16x: archives built");
            out
        };
        if nochange {
            bench.nochange_row("scale-nochange", &input, &out, &[]);
            bench.nochange_row("scale-nochange --changed", &input, &out, &["--changed"]);
        }
        if branch {
            bench.branch_row("scale-branch", &mut input, &out, &[]);
            bench.branch_row("scale-branch --changed", &mut input, &out, &["--changed"]);
        }
        bench.remove(&input.dir);
    }
    bench.print();
}

impl Bench {
    fn progress(&self, what: &str) {
        eprintln!("[limits {:7.1}s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// Generates the upstream of `id` with `shape` into a folder of its own, with the config.
    fn input(&self, id: &str, shape: Shape) -> Input {
        let dir = self.root.join(id);
        let started = Instant::now();
        let generated = generate(&dir.join("upstream/mirror-magento2.git"), shape);
        self.progress(&format!(
            "{id}: generated {} modules, {} files at the last tag, {} tags: {} archives of {:.1} MB of files in {:.1}s",
            shape.modules,
            generated.files,
            shape.tags,
            generated.archives,
            generated.content_bytes as f64 / 1e6,
            started.elapsed().as_secs_f64()
        ));
        let config = dir.join("bench.toml");
        std::fs::write(&config, CONFIG).expect("config");
        Input { dir, config, generated, shape }
    }

    /// One embedded build of `input` with `config` into `out` with the git cache `cache`, and
    /// `extra` arguments of `coordinator build`.
    fn build(&self, label: &str, config: &Path, input: &Input, out: &Path, cache: &Path, extra: &[&str]) -> Sample {
        // What earlier builds wrote is on disk before the clock starts (untimed, and reaped before
        // the build's CPU time is read), so a build does not pay for the writeback of the last.
        let synced = std::process::Command::new("sync").status();
        assert!(synced.is_ok_and(|status| status.success()), "sync failed");
        EmbeddedBuild {
            config: config.to_owned(),
            upstream_base: input.dir.join("upstream"),
            cache: cache.to_owned(),
            out: out.to_owned(),
            workers: self.workers,
            limit: ROW_LIMIT,
            extra: extra.iter().map(|arg| arg.to_string()).collect(),
        }
        .run(label, self.ticks)
    }

    /// Clones `input`'s upstream into its git cache (`dir/cache`), untimed, and returns the
    /// clone's folder.
    fn warm(&self, input: &Input) -> PathBuf {
        let cache = input.dir.join("cache");
        let config = load_config(&input.config, &input.dir.join("upstream"), &cache, 1);
        let url = config.resolve_url(&config.upstreams[0].url);
        let git = shared::git::GitCache::new(config.cache_dir());
        let started = Instant::now();
        git.sync(&url).expect("clone into the git cache");
        self.progress(&format!("clone into the git cache: {:.1}s (not measured)", started.elapsed().as_secs_f64()));
        git.path_for(&url)
    }

    /// A row with a warm git cache: `runs` builds, each into a fresh output; returns the last
    /// output (kept), after measuring the floor on it when `floor`.
    fn warm_row(&mut self, id: &'static str, input: &Input, floor: bool) -> PathBuf {
        let clone = self.warm(input);
        let cache = input.dir.join("cache");
        let mut samples = Vec::new();
        let mut out = PathBuf::new();
        for run in 0..self.runs {
            if run > 0 {
                self.remove(&out);
            }
            out = input.dir.join(format!("out-{run}"));
            self.progress(&format!("{id}: run {} of {}", run + 1, self.runs));
            let sample = self.build(id, &input.config, input, &out, &cache, &[]);
            assert_eq!(sample.built, input.generated.archives, "{id}: archives built");
            self.progress(&format!("{id}: {:.2}s, {} archives", sample.seconds, sample.built));
            samples.push(sample);
        }
        let floor = floor.then(|| self.floor(id, &clone, &out));
        self.lines.push(Line { id, sample: Sample::median_of(&samples), floor });
        out
    }

    /// A row with an empty git cache at every run (the clone is measured).
    fn cold_row(&mut self, id: &'static str, input: &Input) {
        let mut samples = Vec::new();
        for run in 0..self.runs {
            let (out, cache) = (input.dir.join(format!("cold-out-{run}")), input.dir.join(format!("cold-cache-{run}")));
            self.progress(&format!("{id}: run {} of {}", run + 1, self.runs));
            let sample = self.build(id, &input.config, input, &out, &cache, &[]);
            assert_eq!(sample.built, input.generated.archives, "{id}: archives built");
            self.progress(&format!("{id}: {:.2}s, {} archives", sample.seconds, sample.built));
            samples.push(sample);
            self.remove(&out);
            self.remove(&cache);
        }
        self.lines.push(Line { id, sample: Sample::median_of(&samples), floor: None });
    }

    /// Builds `out` again with nothing new, `runs` times: 0 built (`extra`: `--changed` plans
    /// only the refs that moved, as `serve` does).
    fn nochange_row(&mut self, id: &'static str, input: &Input, out: &Path, extra: &[&str]) {
        let cache = input.dir.join("cache");
        let mut samples = Vec::new();
        for run in 0..self.runs {
            self.progress(&format!("{id}: run {} of {}", run + 1, self.runs));
            let sample = self.build(id, &input.config, input, out, &cache, extra);
            assert_eq!(sample.built, 0, "{id}: archives built with nothing new");
            self.progress(&format!("{id}: {:.2}s, {} unchanged", sample.seconds, sample.unchanged));
            samples.push(sample);
        }
        self.lines.push(Line { id, sample: Sample::median_of(&samples), floor: None });
    }

    /// With `main` built too: a first build (untimed), then at every run one module changed on
    /// `main` and the build timed: 1 built.
    fn branch_row(&mut self, id: &'static str, input: &mut Input, out: &Path, extra: &[&str]) {
        let cache = input.dir.join("cache");
        let config = input.dir.join("bench-branch.toml");
        let text = CONFIG.replace("from_tag = \"2.4.0\"", "from_tag = \"2.4.0\"\nbranches = [\"main\"]");
        assert_ne!(text, CONFIG, "the generated config has from_tag = \"2.4.0\"");
        std::fs::write(&config, text).expect("config");
        self.progress(&format!("{id}: first build with main (untimed)"));
        let first = self.build(id, &config, input, out, &cache, &[]);
        self.progress(&format!(
            "{id}: first build with main: {} built, {} unchanged in {:.2}s (not measured)",
            first.built, first.unchanged, first.seconds
        ));
        let mut samples = Vec::new();
        for run in 0..self.runs {
            // A patch level of its own per row and run.
            let patch = 1_000 + run + if extra.is_empty() { 0 } else { 500 };
            write_module(&mut input.generated.upstream, 7, input.shape.files, patch);
            input.generated.upstream.commit("nightly: one module changed");
            self.progress(&format!("{id}: run {} of {}", run + 1, self.runs));
            let sample = self.build(id, &config, input, out, &cache, extra);
            assert_eq!(sample.built, 1, "{id}: archives built after one module changed on main");
            self.progress(&format!("{id}: {:.2}s, {} built", sample.seconds, sample.built));
            samples.push(sample);
        }
        self.lines.push(Line { id, sample: Sample::median_of(&samples), floor: None });
    }

    /// The floor of a build of the clone `clone` whose output is `out`, `runs` times (medians).
    fn floor(&self, id: &str, clone: &Path, out: &Path) -> Floor {
        let repo = Repository::open_bare(clone).expect("the cached clone");
        let blobs = unique_blobs(&repo);
        let archives = read_archives(out);
        self.progress(&format!(
            "{id}: floor input: {} unique blobs, {} archives ({:.1} MB) read",
            blobs.len(),
            archives.len(),
            archives.iter().map(|a| a.len() as u64).sum::<u64>() as f64 / 1e6
        ));
        let mut inflates = Vec::new();
        let mut hashes = Vec::new();
        let mut writes = Vec::new();
        let mut blob_bytes = 0;
        for _ in 0..self.runs {
            let (seconds, bytes) = inflate(clone, &blobs);
            inflates.push(seconds);
            blob_bytes = bytes;
            hashes.push(hash(&archives));
            writes.push(write(&out.with_extension("write-floor"), &archives));
        }
        let floor = Floor {
            inflate: median(inflates),
            blobs: blobs.len(),
            blob_bytes,
            hash: median(hashes),
            archives: archives.len(),
            archive_bytes: archives.iter().map(|a| a.len() as u64).sum(),
            write: median(writes),
        };
        self.progress(&format!(
            "{id}: floor {:.2}s ({:.2}s + {:.2}s), durable write {:.2}s",
            floor.seconds(),
            floor.inflate,
            floor.hash,
            floor.write
        ));
        floor
    }

    fn remove(&self, path: &Path) {
        if path.as_os_str().is_empty() || !path.exists() {
            return;
        }
        let started = Instant::now();
        std::fs::remove_dir_all(path).unwrap_or_else(|e| panic!("cannot remove {}: {e}", path.display()));
        self.progress(&format!("removed {} in {:.1}s", path.display(), started.elapsed().as_secs_f64()));
    }

    fn print(&self) {
        let find = |id: &str| self.lines.iter().find(|line| line.id == id);
        println!();
        println!("machine: {}", machine());
        println!(
            "limits: embedded builds ({} workers) into a local folder by the release coordinator; seconds, CPU \
             seconds and peak MiB are medians of BENCH_RUNS={} run(s); CPU = user + system of the coordinator; \
             peak = its peak resident memory (the report's peak_rss_bytes); floor = inflating every unique blob once \
             + SHA-1 and CRC-32 of every archive, {FLOOR_THREADS} threads in the bench process.",
            self.workers, self.runs
        );
        println!(
            "| row | archives | unchanged | MB | seconds | CPU s | peak MiB | archives/s | floor s | seconds/floor |"
        );
        println!(
            "|-----|---------:|----------:|---:|--------:|------:|---------:|-----------:|--------:|--------------:|"
        );
        for Line { id, sample, floor } in &self.lines {
            let (floor_s, ratio) = match floor {
                Some(floor) => (format!("{:.2}", floor.seconds()), format!("{:.2}", sample.seconds / floor.seconds())),
                None => ("-".to_owned(), "-".to_owned()),
            };
            println!(
                "| {id} | {} | {} | {:.1} | {:.2} | {:.2} | {:.0} | {:.1} | {floor_s} | {ratio} |",
                sample.built,
                sample.unchanged,
                sample.megabytes(),
                sample.seconds,
                sample.cpu,
                sample.peak_mib,
                sample.archives_per_second(),
            );
        }
        println!();
        for line in &self.lines {
            if let Some(floor) = line.floor {
                println!(
                    "floor of {}: inflate {} unique blobs ({:.1} MB) {:.3}s + SHA-1 and CRC-32 of {} archives \
                     ({:.1} MB) {:.3}s = {:.3}s; writing those bytes into files and one sync: {:.3}s ({:.0} MB/s, \
                     the disk's floor of a durable build)",
                    line.id,
                    floor.blobs,
                    floor.blob_bytes as f64 / 1e6,
                    floor.inflate,
                    floor.archives,
                    floor.archive_bytes as f64 / 1e6,
                    floor.hash,
                    floor.seconds(),
                    floor.write,
                    floor.archive_bytes as f64 / 1e6 / floor.write
                );
            }
        }
        let sample = |id: &str| find(id).map(|line| line.sample);
        let mirror = find("mirror");
        let ratio = |of: Option<f64>, base: Option<f64>| match (of, base) {
            (Some(of), Some(base)) if base > 0.0 => Some(of / base),
            _ => None,
        };
        let targets: [(&str, &str, f64, Option<f64>); 10] = [
            ("seconds(mirror)", "<=", 1.9, sample("mirror").map(|s| s.seconds)),
            (
                "seconds(mirror)/floor(mirror)",
                "<=",
                2.0,
                mirror.and_then(|line| line.floor.map(|floor| line.sample.seconds / floor.seconds())),
            ),
            ("peak MiB(mirror)", "<=", 200.0, sample("mirror").map(|s| s.peak_mib)),
            ("peak MiB(binary)", "<=", 200.0, sample("binary").map(|s| s.peak_mib)),
            (
                "archives/s(scale-16x)/archives/s(scale-1x) (linear)",
                ">=",
                0.8,
                ratio(
                    sample("scale-16x").map(|s| s.archives_per_second()),
                    sample("scale-1x").map(|s| s.archives_per_second()),
                ),
            ),
            (
                "peak MiB(scale-16x)/peak MiB(scale-1x) (flat)",
                "<=",
                1.25,
                ratio(sample("scale-16x").map(|s| s.peak_mib), sample("scale-1x").map(|s| s.peak_mib)),
            ),
            ("seconds(scale-nochange)", "<=", 2.0, sample("scale-nochange").map(|s| s.seconds)),
            ("seconds(scale-branch)", "<=", 2.0, sample("scale-branch").map(|s| s.seconds)),
            ("seconds(scale-nochange --changed)", "<=", 2.0, sample("scale-nochange --changed").map(|s| s.seconds)),
            ("seconds(scale-branch --changed)", "<=", 2.0, sample("scale-branch --changed").map(|s| s.seconds)),
        ];
        for (name, op, limit, measured) in targets {
            match measured {
                Some(measured) => {
                    let met = if op == "<=" { measured <= limit } else { measured >= limit };
                    let verdict = if met { "met" } else { "missed" };
                    println!("target {name} {op} {limit:.2}: measured {measured:.2}: {verdict}");
                }
                None => println!("target {name} {op} {limit:.2}: not measured"),
            }
        }
    }
}

/// Every unique blob of the trees of the repository's tags (untimed), each tree walked once.
fn unique_blobs(repo: &Repository) -> Vec<Oid> {
    let mut trees = std::collections::HashSet::new();
    let mut blobs = std::collections::HashSet::new();
    let tags = repo.tag_names(None).expect("tags");
    for name in tags.iter().flatten() {
        let tree = repo.revparse_single(&format!("refs/tags/{name}")).and_then(|o| o.peel_to_tree()).expect("tag tree");
        if !trees.insert(tree.id()) {
            continue;
        }
        tree.walk(TreeWalkMode::PreOrder, |_, entry| match entry.kind() {
            Some(ObjectType::Tree) if !trees.insert(entry.id()) => TreeWalkResult::Skip,
            Some(ObjectType::Blob) => {
                blobs.insert(entry.id());
                TreeWalkResult::Ok
            }
            _ => TreeWalkResult::Ok,
        })
        .expect("walk");
    }
    let mut blobs: Vec<Oid> = blobs.into_iter().collect();
    blobs.sort();
    blobs
}

/// Seconds to inflate every blob of `blobs` once, split over [`FLOOR_THREADS`] threads that each
/// open the repository at `path` (before the clock starts), and the blobs' bytes.
fn inflate(path: &Path, blobs: &[Oid]) -> (f64, u64) {
    let chunk = blobs.len().div_ceil(FLOOR_THREADS).max(1);
    let repos: Vec<Repository> =
        (0..FLOOR_THREADS).map(|_| Repository::open_bare(path).expect("the cached clone")).collect();
    let started = Instant::now();
    let bytes: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = blobs
            .chunks(chunk)
            .zip(repos)
            .map(|(part, repo)| {
                scope.spawn(move || {
                    part.iter().map(|oid| repo.find_blob(*oid).expect("blob").content().len() as u64).sum::<u64>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("inflate thread")).sum()
    });
    (started.elapsed().as_secs_f64(), bytes)
}

/// Seconds to write every archive's bytes into its own file below `dir` (created, then removed)
/// and make them durable with one `sync`, after a `sync` of what was there (untimed).
fn write(dir: &Path, archives: &[Arc<[u8]>]) -> f64 {
    use std::io::Write as _;
    std::fs::create_dir_all(dir).expect("write floor folder");
    let sync = || assert!(std::process::Command::new("sync").status().is_ok_and(|s| s.success()), "sync failed");
    sync();
    let started = Instant::now();
    for (index, bytes) in archives.iter().enumerate() {
        let mut file = std::fs::File::create(dir.join(format!("{index}.zip"))).expect("floor file");
        file.write_all(bytes).expect("floor write");
    }
    sync();
    let seconds = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(dir).expect("remove the write floor folder");
    seconds
}

/// Every archive below `out`, read into memory.
fn read_archives(out: &Path) -> Vec<Arc<[u8]>> {
    let mut archives = Vec::new();
    let mut stack = vec![out.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("output folder") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|ext| ext == "zip") {
                archives.push(Arc::from(std::fs::read(&path).expect("archive")));
            }
        }
    }
    archives
}

/// Seconds to SHA-1 and CRC-32 every archive, split over [`FLOOR_THREADS`] threads.
fn hash(archives: &[Arc<[u8]>]) -> f64 {
    use sha1::Digest as _;
    let chunk = archives.len().div_ceil(FLOOR_THREADS).max(1);
    let started = Instant::now();
    let check: u64 = std::thread::scope(|scope| {
        let handles: Vec<_> = archives
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|bytes| {
                            let sha1 = sha1::Sha1::digest(bytes);
                            // crc32fast, as the archive writer sums an entry.
                            let crc = shared::archive::Content::new(Arc::clone(bytes)).crc();
                            u64::from(sha1[0]) ^ u64::from(crc)
                        })
                        .fold(0u64, |a, b| a.wrapping_add(b))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("hash thread")).fold(0u64, u64::wrapping_add)
    });
    let seconds = started.elapsed().as_secs_f64();
    std::hint::black_box(check);
    seconds
}
