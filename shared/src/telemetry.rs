//! Tracing setup shared by both binaries: log lines on stderr, filtered by `RUST_LOG`, as JSON
//! when stderr is not a terminal (log collectors) and as text on a terminal; and errors written
//! out with their causes; and the process's peak memory, for reports and benchmarks.

use std::io::IsTerminal as _;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line, with the fields of the enclosing spans (build and job ids).
    Json,
    /// Human-readable lines.
    Text,
}

impl LogFormat {
    /// `FARM_LOG_FORMAT` (`json` or `text`) if set, else JSON unless stderr is a terminal.
    pub fn from_environment() -> LogFormat {
        match std::env::var("FARM_LOG_FORMAT").as_deref() {
            Ok("json") => LogFormat::Json,
            Ok("text") => LogFormat::Text,
            _ if std::io::stderr().is_terminal() => LogFormat::Text,
            _ => LogFormat::Json,
        }
    }
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset.
pub fn init(default_filter: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = match LogFormat::from_environment() {
        // Every span's fields on every line: a job's log line carries its build and job ids.
        LogFormat::Json => builder.json().with_current_span(false).with_span_list(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The error and its sources on one line (the HTTP clients' top-level messages alone, such as
/// "dispatch failure" or "error sending request", do not say what went wrong).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// The process's peak resident memory in bytes (`VmHWM` of `/proc/self/status`; `None` where
/// there is no such file).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: u64 = line.trim_start_matches("VmHWM:").trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn peak_memory_is_read_from_the_process() {
        let held = vec![1u8; 32 << 20];
        let peak = super::peak_rss_bytes().expect("Linux has /proc/self/status");
        assert!(peak >= held.len() as u64, "{peak}");
        assert_eq!(held.iter().map(|b| u64::from(*b)).sum::<u64>(), held.len() as u64);
    }
}
