//! Helpers the benchmarks share (`tests/benches/build.rs`, `tests/benches/limits.rs`): settings from
//! the environment, medians, the CPU time of reaped child processes, the machine's description, and
//! one embedded `coordinator build` run as a child process with its report read back.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::services::binary;

/// `name` from the environment as a number; `default` when unset or not a number.
pub fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether `name` is in the comma-separated list of the environment variable `variable`
/// (case-insensitive); every name is when the variable is unset or empty.
pub fn chosen(variable: &str, name: &str) -> bool {
    match std::env::var(variable) {
        Ok(list) if !list.trim().is_empty() => list.split(',').any(|item| item.trim().eq_ignore_ascii_case(name)),
        _ => true,
    }
}

/// The median of `values` (the mean of the middle two for an even count); `values` must not be
/// empty.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len().is_multiple_of(2) { (values[middle - 1] + values[middle]) / 2.0 } else { values[middle] }
}

/// User + system CPU seconds of this process's reaped children (and of the children they
/// reaped): `cutime` + `cstime`, fields 16 and 17 of `/proc/self/stat`.
pub fn children_cpu_seconds(ticks_per_second: f64) -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Field 2 is the command in parentheses, which may hold spaces and ')': field 3 on follow the
    // last ')'.
    let rest = &stat[stat.rfind(')').expect("/proc/self/stat has a command field") + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> i64 {
        fields.get(number - 3).and_then(|f| f.parse().ok()).unwrap_or_else(|| panic!("/proc/self/stat field {number}"))
    };
    (field(16) + field(17)) as f64 / ticks_per_second
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 if that fails). Call it before the child
/// processes that are measured: `getconf` is reaped, and counted, too.
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

/// One line about the machine: cores (`available_parallelism`), the CPU model
/// (`/proc/cpuinfo`) and the kernel (`uname -r`).
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, value)| value.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let kernel = std::process::Command::new("uname")
        .arg("-r")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|text| text.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    format!("{cores} cores, {model}, Linux {kernel}")
}

/// One run of a build, as the report and the clock saw it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sample {
    /// Archives built (the report's `built`).
    pub built: usize,
    /// Packages left as they were (the report's `unchanged`).
    pub unchanged: usize,
    /// Bytes of the archives built (the sum of their `size`).
    pub bytes: u64,
    /// Wall seconds, from starting the build to its end.
    pub seconds: f64,
    /// User + system CPU seconds of the build's processes.
    pub cpu: f64,
    /// Peak resident memory in MiB (of the largest process of the build).
    pub peak_mib: f64,
}

impl Sample {
    /// [`Sample::bytes`] in MB (10^6 bytes).
    pub fn megabytes(&self) -> f64 {
        self.bytes as f64 / 1_000_000.0
    }

    /// Archives built per wall second.
    pub fn archives_per_second(&self) -> f64 {
        if self.seconds > 0.0 { self.built as f64 / self.seconds } else { 0.0 }
    }

    /// The counts of the last of `samples` with the median seconds, CPU seconds and peak memory
    /// of all of them; `samples` must not be empty.
    pub fn median_of(samples: &[Sample]) -> Sample {
        let last = *samples.last().expect("a sample");
        let of = |field: fn(&Sample) -> f64| median(samples.iter().map(field).collect());
        Sample { seconds: of(|s| s.seconds), cpu: of(|s| s.cpu), peak_mib: of(|s| s.peak_mib), ..last }
    }
}

/// A finished build's report (`.farm/report.json` of the output folder `out`), as JSON.
pub fn read_report(out: &Path) -> serde_json::Value {
    let path = out.join(".farm/report.json");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).expect("report JSON")
}

/// The counts of a build report: archives built and their bytes, packages unchanged; the peak
/// memory is the report's `peak_rss_bytes`. Fails when the report lists failed packages.
pub fn report_sample(label: &str, report: &serde_json::Value, seconds: f64, cpu: f64) -> Sample {
    let count = |field: &str| report[field].as_array().map_or(0, Vec::len);
    assert_eq!(count("failed"), 0, "{label}: failed packages: {}", report["failed"]);
    let bytes: u64 = report["built"].as_array().into_iter().flatten().filter_map(|b| b["size"].as_u64()).sum();
    let peak = report["peak_rss_bytes"].as_u64().unwrap_or(0);
    Sample {
        built: count("built"),
        unchanged: count("unchanged"),
        bytes,
        seconds,
        cpu,
        peak_mib: peak as f64 / (1 << 20) as f64,
    }
}

/// An embedded build by the release `coordinator` binary as a child process:
/// `coordinator build --config C --upstream-base U --cache-dir K --out O --workers N` with
/// `RUST_LOG=warn`.
#[derive(Debug, Clone)]
pub struct EmbeddedBuild {
    /// The farm configuration file.
    pub config: PathBuf,
    /// The folder of the upstream repositories (`--upstream-base`).
    pub upstream_base: PathBuf,
    /// The git cache folder.
    pub cache: PathBuf,
    /// The output folder.
    pub out: PathBuf,
    /// In-process workers.
    pub workers: usize,
    /// Longest the build may take before the bench gives up.
    pub limit: Duration,
    /// More arguments of `coordinator build` (e.g. `--changed`).
    pub extra: Vec<String>,
}

impl EmbeddedBuild {
    /// Runs the build once and returns its [`Sample`]: wall time from spawning the coordinator to
    /// its exit, CPU time of it (reaped) from [`children_cpu_seconds`] with `ticks` per second,
    /// counts and peak memory from its report. Fails when the build exits non-zero or reports
    /// failed packages.
    pub fn run(&self, label: &str, ticks: f64) -> Sample {
        let [config, upstream_base, cache, out] =
            [&self.config, &self.upstream_base, &self.cache, &self.out].map(|path| path.display().to_string());
        let workers = self.workers.to_string();
        let args = [
            "build",
            "--config",
            config.as_str(),
            "--upstream-base",
            upstream_base.as_str(),
            "--cache-dir",
            cache.as_str(),
            "--out",
            out.as_str(),
            "--workers",
            workers.as_str(),
        ];
        let program = binary("coordinator");
        let mut command = std::process::Command::new(&program);
        command.args(args).args(&self.extra).env("RUST_LOG", "warn").env("NO_COLOR", "1");
        // Warnings go to the bench's stderr; the summary on stdout is not needed (the report is).
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        let before = children_cpu_seconds(ticks);
        let started = Instant::now();
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        // Polled often (not a blocking wait) so that the limit holds; 2 ms is noise even for the
        // shortest builds.
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the coordinator") {
                break status;
            }
            if started.elapsed() > self.limit {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{label}: coordinator build did not exit within {:?}", self.limit);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let seconds = started.elapsed().as_secs_f64();
        let cpu = children_cpu_seconds(ticks) - before;
        assert!(status.success(), "{label}: coordinator build exited with {status}");
        report_sample(label, &read_report(&self.out), seconds, cpu)
    }
}
