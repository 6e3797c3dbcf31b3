//! What `coordinator serve` is doing, for `GET /status` (JSON) and the HTML status page: the
//! state of every upstream, the most recent builds with their failures, and the repository's
//! health (rendered by [`crate::health::page`]).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::health::HealthRecord;
use crate::report::BuildReport;

/// Builds kept in the recent list.
const RECENT_BUILDS: usize = 50;

/// What an upstream is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamState {
    /// Nothing to do.
    Idle,
    /// Triggered; waiting for the coalescing window to close.
    Waiting,
    /// A build is running.
    Building,
}

/// One upstream's state.
#[derive(Debug, Clone, Serialize)]
pub struct UpstreamStatus {
    /// Upstream key.
    pub upstream: String,
    /// Repository URL (credentials removed).
    pub url: String,
    /// What it is doing.
    pub state: UpstreamState,
    /// What triggered the current or last build.
    pub last_trigger: Option<String>,
    /// Id of the last build.
    pub last_build: Option<String>,
    /// When the last build in which nothing failed finished (RFC 3339).
    pub last_success_at: Option<String>,
    /// Why the last build failed or stopped, if it did.
    pub last_error: Option<String>,
    /// When polling last fetched it (RFC 3339).
    pub last_poll_at: Option<String>,
    /// Why the last poll failed, if it did.
    pub last_poll_error: Option<String>,
}

/// A package that failed in a build.
#[derive(Debug, Clone, Serialize)]
pub struct FailureNote {
    /// `name@version`.
    pub package: String,
    /// Why.
    pub reason: String,
}

/// A finished (or aborted) build.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSummary {
    /// Build id (also on every log line of the build).
    pub build_id: String,
    /// Upstream key, or `all`.
    pub upstream: String,
    /// What triggered it.
    pub trigger: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// Duration in seconds.
    pub duration_seconds: f64,
    /// Archives built.
    pub built: usize,
    /// Packages already published.
    pub unchanged: usize,
    /// Archives a stopped build had stored, recorded without building them again.
    pub resumed: usize,
    /// Rejected input (see the build report).
    pub rejected: usize,
    /// Failed packages with reasons.
    pub failed: Vec<FailureNote>,
    /// Why the build itself stopped, if it did.
    pub error: Option<String>,
}

impl BuildSummary {
    /// A build that could not run (planning or storage failed before any outcome).
    pub fn failed_to_run(upstream: &str, trigger: &str, error: String) -> BuildSummary {
        BuildSummary {
            build_id: String::new(),
            upstream: upstream.to_owned(),
            trigger: trigger.to_owned(),
            started_at: String::new(),
            duration_seconds: 0.0,
            built: 0,
            unchanged: 0,
            resumed: 0,
            rejected: 0,
            failed: Vec::new(),
            error: Some(error),
        }
    }

    /// Summarises a report.
    pub fn of(report: &BuildReport, upstream: &str, trigger: &str) -> BuildSummary {
        BuildSummary {
            build_id: report.build_id.clone(),
            upstream: upstream.to_owned(),
            trigger: trigger.to_owned(),
            started_at: report.started_at.clone(),
            duration_seconds: report.duration_seconds,
            built: report.built.len(),
            unchanged: report.unchanged.len(),
            resumed: report.resumed.len(),
            rejected: report.rejected.len(),
            failed: report
                .failed
                .iter()
                .map(|f| FailureNote {
                    package: format!("{}@{}", f.package, f.version),
                    reason: f.reason.clone().unwrap_or_default(),
                })
                .chain(
                    report
                        .repository_failures
                        .iter()
                        .map(|f| FailureNote { package: format!("upstream {}", f.upstream), reason: f.reason.clone() }),
                )
                .collect(),
            error: None,
        }
    }
}

/// The whole status document.
#[derive(Debug, Clone, Serialize)]
pub struct StatusDocument {
    /// When the process started (RFC 3339).
    pub started_at: String,
    /// `embedded` or `distributed`.
    pub mode: String,
    /// Every upstream in config order.
    pub upstreams: Vec<UpstreamStatus>,
    /// Recent builds, newest first.
    pub recent_builds: Vec<BuildSummary>,
    /// Whether the published repository installs, since when, and the last builds' checks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthRecord>,
}

/// Shared, updated by the schedulers and pollers.
pub struct StatusBoard {
    inner: Mutex<StatusDocument>,
    order: BTreeMap<String, usize>,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

impl StatusBoard {
    /// A board for these upstreams (`(key, url)`), all idle.
    pub fn new(mode: &str, upstreams: &[(String, String)]) -> StatusBoard {
        let list = upstreams
            .iter()
            .map(|(key, url)| UpstreamStatus {
                upstream: key.clone(),
                url: url.clone(),
                state: UpstreamState::Idle,
                last_trigger: None,
                last_build: None,
                last_success_at: None,
                last_error: None,
                last_poll_at: None,
                last_poll_error: None,
            })
            .collect();
        StatusBoard {
            order: upstreams.iter().enumerate().map(|(i, (key, _))| (key.clone(), i)).collect(),
            inner: Mutex::new(StatusDocument {
                started_at: now(),
                mode: mode.to_owned(),
                upstreams: list,
                recent_builds: Vec::new(),
                health: None,
            }),
        }
    }

    fn update(&self, upstream: &str, change: impl FnOnce(&mut UpstreamStatus)) {
        if let Some(&index) = self.order.get(upstream) {
            let mut inner = self.inner.lock().expect("status lock");
            change(&mut inner.upstreams[index]);
        }
    }

    /// Sets an upstream's state (and the trigger that caused it).
    pub fn set_state(&self, upstream: &str, state: UpstreamState, trigger: Option<&str>) {
        self.update(upstream, |status| {
            status.state = state;
            if let Some(trigger) = trigger {
                status.last_trigger = Some(trigger.to_owned());
            }
        });
    }

    /// Whether a build of the upstream is waiting or running.
    pub fn is_busy(&self, upstream: &str) -> bool {
        let Some(&index) = self.order.get(upstream) else { return false };
        self.inner.lock().expect("status lock").upstreams[index].state != UpstreamState::Idle
    }

    /// Records a poll.
    pub fn polled(&self, upstream: &str, error: Option<String>) {
        self.update(upstream, |status| {
            status.last_poll_at = Some(now());
            status.last_poll_error = error;
        });
    }

    /// Records a finished build and sets the upstream idle.
    pub fn finished(&self, summary: BuildSummary) {
        let upstream = summary.upstream.clone();
        let clean = summary.error.is_none() && summary.failed.is_empty();
        let error = summary
            .error
            .clone()
            .or_else(|| (!summary.failed.is_empty()).then(|| format!("{} package(s) failed", summary.failed.len())));
        let build_id = summary.build_id.clone();
        self.update(&upstream, |status| {
            status.state = UpstreamState::Idle;
            status.last_build = Some(build_id);
            status.last_error = error;
            if clean {
                status.last_success_at = Some(now());
            }
        });
        let mut inner = self.inner.lock().expect("status lock");
        inner.recent_builds.insert(0, summary);
        inner.recent_builds.truncate(RECENT_BUILDS);
    }

    /// A copy of the document.
    pub fn snapshot(&self) -> StatusDocument {
        self.inner.lock().expect("status lock").clone()
    }
}

/// The HTML status page.
pub fn render_html(document: &StatusDocument) -> String {
    use html_escape::encode_text as text;
    let option = |value: &Option<String>| value.as_deref().map(|v| text(v).into_owned()).unwrap_or_default();
    let mut html = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"30\">\
         <title>Composer farm status</title><style>body{font-family:sans-serif;margin:2em}\
         table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:.3em .6em;\
         text-align:left;vertical-align:top}.bad{color:#b00}.ok{color:#070}</style></head><body>\n",
    );
    html.push_str(&format!(
        "<h1>Composer farm</h1><p>Mode: {}. Running since {}. <a href=\"/status\">JSON</a> · \
         <a href=\"/metrics\">metrics</a></p>\n{}<h2>Upstreams</h2>\n<table><tr><th>upstream</th><th>state</th>\
         <th>last trigger</th><th>last success</th><th>last error</th><th>last poll</th></tr>\n",
        text(&document.mode),
        text(&document.started_at),
        document.health.as_ref().map(crate::health::page::render).unwrap_or_default()
    ));
    for upstream in &document.upstreams {
        let state = serde_json::to_value(upstream.state).ok().and_then(|v| v.as_str().map(str::to_owned));
        let poll = match &upstream.last_poll_error {
            Some(error) => format!("<span class=\"bad\">{}</span>", text(error)),
            None => option(&upstream.last_poll_at),
        };
        html.push_str(&format!(
            "<tr><td>{}<br><small>{}</small></td><td>{}</td><td>{}</td><td>{}</td><td class=\"bad\">{}</td><td>{}</td></tr>\n",
            text(&upstream.upstream),
            text(&upstream.url),
            option(&state),
            option(&upstream.last_trigger),
            option(&upstream.last_success_at),
            option(&upstream.last_error),
            poll
        ));
    }
    html.push_str(
        "</table>\n<h2>Recent builds</h2>\n<table><tr><th>build</th><th>upstream</th><th>trigger</th><th>started</th>\
         <th>seconds</th><th>built</th><th>unchanged</th><th>resumed</th><th>failures</th></tr>\n",
    );
    for build in &document.recent_builds {
        let mut failures: Vec<String> =
            build.failed.iter().map(|f| format!("{}: {}", text(&f.package), text(&f.reason))).collect();
        if let Some(error) = &build.error {
            failures.insert(0, text(error).into_owned());
        }
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td class=\"bad\">{}</td></tr>\n",
            text(&build.build_id),
            text(&build.upstream),
            text(&build.trigger),
            text(&build.started_at),
            build.duration_seconds,
            build.built,
            build.unchanged,
            build.resumed,
            failures.join("<br>")
        ));
    }
    html.push_str("</table></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_what_upstreams_send() {
        let board = StatusBoard::new("embedded", &[("acme".into(), "https://example.test/acme.git".into())]);
        board.finished(BuildSummary {
            build_id: "b1".into(),
            upstream: "acme".into(),
            trigger: "push <script>".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            duration_seconds: 1.0,
            built: 1,
            unchanged: 0,
            resumed: 0,
            rejected: 0,
            failed: vec![FailureNote { package: "acme/a@1.0.0".into(), reason: "<b>bad</b>".into() }],
            error: None,
        });
        let html = render_html(&board.snapshot());
        assert!(html.contains("push &lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;b&gt;bad&lt;/b&gt;"), "{html}");
        assert!(!html.contains("<script>"));
        let document = board.snapshot();
        assert_eq!(document.upstreams[0].state, UpstreamState::Idle);
        assert_eq!(document.upstreams[0].last_error.as_deref(), Some("1 package(s) failed"));
    }
}
