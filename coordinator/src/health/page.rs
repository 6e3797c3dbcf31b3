//! The health section of the HTML status page: the state and since when, the last healthy build,
//! what is broken in words, and each check's result over the last builds.

use html_escape::encode_text as text;

use super::probe::ProbeStatus;
use super::record::HealthRecord;
use super::{HealthState, ProbeOutcome};

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
