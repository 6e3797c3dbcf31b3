//! The health section of the HTML status page: the state and since when, the last healthy build,
//! what is broken in words, and each check's result over the last builds.

use html_escape::encode_text as text;

use super::probe::ProbeOutcome;
use super::probe::ProbeStatus;
use super::record::HealthRecord;
use super::report::HealthState;

/// Problems listed on the page (the JSON has all that were kept).
const SHOWN_PROBLEMS: usize = 50;

/// The section's HTML.
pub fn render(record: &HealthRecord) -> String {
    let mut html = String::from("<h2>Repository health</h2>\n");
    let class = match record.state {
        HealthState::Healthy => "ok",
        HealthState::Broken => "bad",
        HealthState::Unknown => "",
    };
    let since = match (&record.since, &record.since_build) {
        (Some(at), Some(build)) => format!(" since {} (build {})", text(at), text(build)),
        _ => String::new(),
    };
    let last = match (&record.last_healthy_build, &record.last_healthy_at) {
        (Some(build), Some(at)) => format!("Last healthy build: {} at {}.", text(build), text(at)),
        _ => "No healthy build yet.".to_owned(),
    };
    html.push_str(&format!(
        "<p><strong class=\"{class}\">{}</strong>{since}. {last}</p>\n",
        record.state.as_str().to_uppercase()
    ));
    if let Some(latest) = &record.latest {
        if let Some(why) = &latest.blocked {
            html.push_str(&format!("<p class=\"bad\">{}</p>\n", text(why)));
        }
        if let Some(check) = latest.consistency.as_ref().filter(|c| c.problem_count > 0) {
            html.push_str(&format!("<h3>{} problems</h3>\n<ul>\n", check.problem_count));
            for problem in check.problems.iter().take(SHOWN_PROBLEMS) {
                html.push_str(&format!("<li>{}</li>\n", text(&problem.message)));
            }
            if check.problem_count > SHOWN_PROBLEMS {
                html.push_str(&format!(
                    "<li>… {} more in <a href=\"/status\">/status</a></li>\n",
                    check.problem_count - SHOWN_PROBLEMS
                ));
            }
            html.push_str("</ul>\n");
        }
        for probe in latest.probes.iter().filter(|p| p.status != ProbeStatus::Passed) {
            html.push_str(&probe_failure(probe));
        }
    }
    html.push_str(&history(record));
    html
}

fn probe_failure(probe: &ProbeOutcome) -> String {
    let verb = if probe.status == ProbeStatus::Skipped { "skipped" } else { "failed" };
    format!("<h3>Probe {} {verb}</h3>\n<pre>{}</pre>\n", text(&probe.name), text(&probe.explanation))
}

/// One row per check (the native check, then each probe), one column per build, newest first.
fn history(record: &HealthRecord) -> String {
    if record.builds.is_empty() {
        return String::new();
    }
    let mut names: Vec<String> = vec!["consistency".to_owned()];
    for build in &record.builds {
        for probe in &build.probes {
            if !names.contains(&probe.name) {
                names.push(probe.name.clone());
            }
        }
    }
    let mut html = String::from("<h3>Last builds</h3>\n<table><tr><th>check</th>");
    for build in &record.builds {
        html.push_str(&format!("<th title=\"{}\">{}</th>", text(&build.checked_at), text(&build.build_id)));
    }
    html.push_str("</tr>\n");
    for name in &names {
        html.push_str(&format!("<tr><td>{}</td>", text(name)));
        for build in &record.builds {
            let cell = if name == "consistency" {
                match build.problems {
                    0 if build.state != HealthState::Unknown => "<td class=\"ok\">ok</td>".to_owned(),
                    0 => "<td>–</td>".to_owned(),
                    n => format!("<td class=\"bad\">{n} problems</td>"),
                }
            } else {
                match build.probes.iter().find(|p| &p.name == name) {
                    Some(p) if p.status == ProbeStatus::Passed => {
                        format!("<td class=\"ok\">passed {:.1}s</td>", p.duration_seconds)
                    }
                    Some(p) if p.status == ProbeStatus::Failed => {
                        format!("<td class=\"bad\">failed {:.1}s</td>", p.duration_seconds)
                    }
                    Some(_) => "<td>skipped</td>".to_owned(),
                    None => "<td>–</td>".to_owned(),
                }
            };
            html.push_str(&cell);
        }
        html.push_str("</tr>\n");
    }
    html.push_str("<tr><td>published</td>");
    for build in &record.builds {
        html.push_str(if build.published { "<td>yes</td>" } else { "<td class=\"bad\">no</td>" });
    }
    html.push_str("</tr>\n</table>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::report::{ConsistencyView, HealthReport, ProblemView};

    fn report(state: HealthState, problem: Option<&str>, probe: ProbeStatus) -> HealthReport {
        let problems: Vec<ProblemView> = problem
            .map(|message| ProblemView {
                package: "acme/a 1.0.0".into(),
                requires: "acme/b".into(),
                constraint: "^2".into(),
                kind: "unsatisfiable".into(),
                available: vec!["1.0.0".into()],
                chain: Vec::new(),
                message: message.into(),
            })
            .into_iter()
            .collect();
        HealthReport {
            state,
            checked_at: "2026-12-03T00:00:00Z".into(),
            consistency: Some(ConsistencyView {
                problem_count: problems.len(),
                problems,
                ..ConsistencyView::default()
            }),
            probes: vec![ProbeOutcome {
                name: "product".into(),
                status: probe,
                duration_seconds: 1.5,
                explanation: "Problem 1 <script>alert(1)</script>".into(),
                resolved: Vec::new(),
            }],
            published: true,
            blocked: None,
        }
    }

    #[test]
    fn the_section_says_what_is_broken_escaped_and_keeps_the_history() {
        let mut record = HealthRecord::default();
        record
            .add("b1", &report(HealthState::Broken, Some("acme/a 1.0.0 requires acme/b ^2 <b>"), ProbeStatus::Failed));
        let html = render(&record);
        assert!(html.contains("<strong class=\"bad\">BROKEN</strong> since 2026-12-03T00:00:00Z (build b1)"), "{html}");
        assert!(html.contains("No healthy build yet."), "{html}");
        assert!(html.contains("<li>acme/a 1.0.0 requires acme/b ^2 &lt;b&gt;</li>"), "{html}");
        assert!(html.contains("Problem 1 &lt;script&gt;"), "{html}");
        assert!(!html.contains("<script>"), "{html}");

        record.add("b2", &report(HealthState::Healthy, None, ProbeStatus::Passed));
        let html = render(&record);
        assert!(html.contains("HEALTHY</strong> since"), "{html}");
        assert!(html.contains("Last healthy build: b2"), "{html}");
        // Newest first: b2 then b1, one row per check.
        let b2 = html.find("<th title=\"2026-12-03T00:00:00Z\">b2</th>").unwrap();
        let b1 = html.find("<th title=\"2026-12-03T00:00:00Z\">b1</th>").unwrap();
        assert!(b2 < b1, "{html}");
        assert!(
            html.contains(
                "<tr><td>product</td><td class=\"ok\">passed 1.5s</td><td class=\"bad\">failed 1.5s</td></tr>"
            ),
            "{html}"
        );
        assert!(
            html.contains("<tr><td>consistency</td><td class=\"ok\">ok</td><td class=\"bad\">1 problems</td></tr>"),
            "{html}"
        );
        assert_eq!(record.builds.len(), 2);
        assert_eq!(record.since_build.as_deref(), Some("b2"));
    }

    #[test]
    fn the_history_keeps_twenty_builds_and_an_unknown_result_keeps_the_state() {
        let mut record = HealthRecord::default();
        record.add("b0", &report(HealthState::Broken, Some("x"), ProbeStatus::Failed));
        for n in 1..=25 {
            record.add(&format!("b{n}"), &HealthReport { state: HealthState::Unknown, ..HealthReport::default() });
        }
        assert_eq!(record.builds.len(), super::super::record::HISTORY);
        assert_eq!(record.state, HealthState::Broken);
        assert_eq!(record.since_build.as_deref(), Some("b0"));
    }
}
