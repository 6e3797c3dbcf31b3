//! Real-client probes: the `composer` binary resolves (or installs) a configured requirement set
//! against a repository, in a fresh project with a fresh `COMPOSER_HOME`, within a time limit.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shared::config::ProbeConfig;
use tokio::io::AsyncReadExt as _;

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeStatus {
    /// Composer resolved (and, with `install`, installed) the requirements.
    Passed,
    /// It could not, or did not finish in time.
    Failed,
    /// It did not run (no `composer` binary).
    Skipped,
}

/// One probe's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    /// The probe's name.
    pub name: String,
    /// Passed, failed or skipped.
    pub status: ProbeStatus,
    /// Wall time of the Composer run.
    pub duration_seconds: f64,
    /// Composer's own words: the solver's explanation when it failed, or why it was skipped.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub explanation: String,
    /// The lock's packages (`name version`), when it passed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved: Vec<String>,
}

/// The most of Composer's output a result keeps.
const MAX_EXPLANATION: usize = 16 * 1024;

/// Finds `composer` (a bare name is looked up on `PATH`).
pub fn find_composer(composer: &Path) -> Option<PathBuf> {
    if composer.components().count() > 1 {
        return composer.is_file().then(|| composer.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(composer)).find(|candidate| candidate.is_file())
}

/// Runs one probe against the Composer repository at `repository` (a URL), in a project folder
/// made under `scratch`.
pub async fn run(probe: &ProbeConfig, composer: &Path, repository: &str, scratch: &Path) -> ProbeOutcome {
    let outcome = |status, explanation: String, started: Instant| ProbeOutcome {
        name: probe.name.clone(),
        status,
        duration_seconds: started.elapsed().as_secs_f64(),
        explanation,
        resolved: Vec::new(),
    };
    let started = Instant::now();
    let Some(binary) = find_composer(composer) else {
        let why = format!("probe skipped: composer not found ({} is not on PATH)", composer.display());
        return outcome(ProbeStatus::Skipped, why, started);
    };
    let project = match tempfile::Builder::new().prefix("probe-").tempdir_in(scratch) {
        Ok(project) => project,
        Err(error) => {
            return outcome(ProbeStatus::Failed, format!("cannot make the probe's project folder: {error}"), started);
        }
    };
    if let Err(error) = std::fs::write(project.path().join("composer.json"), project_json(probe, repository)) {
        return outcome(ProbeStatus::Failed, format!("cannot write the probe's composer.json: {error}"), started);
    }
    let started = Instant::now();
    match tokio::time::timeout(probe.timeout, composer_update(&binary, probe, project.path())).await {
        Err(_) => {
            let why = format!("composer did not finish within {}", humantime::format_duration(probe.timeout));
            outcome(ProbeStatus::Failed, why, started)
        }
        Ok(Err(error)) => outcome(ProbeStatus::Failed, format!("cannot run {}: {error}", binary.display()), started),
        Ok(Ok((false, output))) => outcome(ProbeStatus::Failed, explanation(&output), started),
        Ok(Ok((true, _))) => ProbeOutcome {
            resolved: locked_packages(&project.path().join("composer.lock")),
            ..outcome(ProbeStatus::Passed, String::new(), started)
        },
    }
}

/// The probe project: only this repository (and the probe's extra ones), no plugins, no
/// scripts, plain HTTP allowed (the repository is served on loopback).
fn project_json(probe: &ProbeConfig, repository: &str) -> Vec<u8> {
    let mut repositories = vec![json!({"type": "composer", "url": repository})];
    let packagist = probe.repositories.iter().any(|r| r == "packagist.org");
    for extra in probe.repositories.iter().filter(|r| *r != "packagist.org") {
        repositories.push(json!({"type": "composer", "url": extra}));
    }
    if !packagist {
        repositories.push(json!({"packagist.org": false}));
    }
    let project = json!({
        "name": "composer-farm/health-probe",
        "description": format!("health probe {}", probe.name),
        "type": "project",
        "repositories": repositories,
        "require": probe.require,
        "minimum-stability": probe.minimum_stability,
        "prefer-stable": true,
        "config": {"secure-http": false, "allow-plugins": false, "notify-on-install": false}
    });
    serde_json::to_vec_pretty(&project).expect("probe project serialises")
}

/// `composer update`: whether it succeeded, and what it printed (stderr, then stdout).
async fn composer_update(binary: &Path, probe: &ProbeConfig, project: &Path) -> std::io::Result<(bool, String)> {
    let home = project.join(".composer-home");
    let mut command = tokio::process::Command::new(binary);
    command
        .arg("update")
        .args(["--no-interaction", "--no-progress", "--no-plugins", "--no-scripts", "--no-autoloader"])
        .args(if probe.install { None } else { Some("--no-install") })
        .args(if probe.platform { None } else { Some("--ignore-platform-reqs") })
        .current_dir(project)
        .env("COMPOSER_HOME", &home)
        .env("COMPOSER_CACHE_DIR", home.join("cache"))
        .env("COMPOSER_ALLOW_SUPERUSER", "1")
        .env("COMPOSER_NO_AUDIT", "1")
        .env_remove("COMPOSER")
        .env_remove("COMPOSER_AUTH")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn()?;
    let (mut stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let (read_out, read_err, status) =
        tokio::join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err), child.wait());
    read_out?;
    read_err?;
    let mut text = String::from_utf8_lossy(&err).into_owned();
    text.push_str(&String::from_utf8_lossy(&out));
    Ok((status?.success(), text))
}

/// The part of Composer's output that explains a failure (from "Your requirements could not be
/// resolved" when it says so), at most [`MAX_EXPLANATION`] bytes.
fn explanation(output: &str) -> String {
    let start = output.find("Your requirements could not be resolved").unwrap_or(0);
    let mut text = output[start..].trim().to_owned();
    if text.len() > MAX_EXPLANATION {
        let mut end = MAX_EXPLANATION;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("\n[...]");
    }
    text
}

/// `name version` of every package in a lock file.
fn locked_packages(lock: &Path) -> Vec<String> {
    let Ok(bytes) = std::fs::read(lock) else { return Vec::new() };
    let Ok(lock) = serde_json::from_slice::<Value>(&bytes) else { return Vec::new() };
    let mut packages: Vec<String> = lock["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some(format!("{} {}", p["name"].as_str()?, p["version"].as_str()?)))
        .collect();
    packages.sort();
    packages
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe() -> ProbeConfig {
        ProbeConfig {
            name: "p".into(),
            require: [("acme/a".to_owned(), "^1.0".to_owned())].into(),
            minimum_stability: "alpha".into(),
            install: false,
            repositories: vec!["packagist.org".into(), "https://extra.example".into()],
            platform: false,
            timeout: std::time::Duration::from_secs(5),
        }
    }

    #[test]
    fn the_project_names_only_the_repositories_asked_for() {
        let project: Value = serde_json::from_slice(&project_json(&probe(), "http://127.0.0.1:1/")).unwrap();
        assert_eq!(project["repositories"][0]["url"], "http://127.0.0.1:1/");
        assert_eq!(project["repositories"][1]["url"], "https://extra.example");
        assert_eq!(project["repositories"].as_array().unwrap().len(), 2, "packagist stays on when asked for");
        assert_eq!(project["minimum-stability"], "alpha");
        let only = ProbeConfig { repositories: Vec::new(), ..probe() };
        let project: Value = serde_json::from_slice(&project_json(&only, "http://127.0.0.1:1/")).unwrap();
        assert_eq!(project["repositories"][1], json!({"packagist.org": false}));
    }

    #[tokio::test]
    async fn a_missing_composer_skips_the_probe() {
        let scratch = tempfile::tempdir().unwrap();
        let outcome = run(&probe(), Path::new("no-such-composer-binary"), "http://127.0.0.1:1/", scratch.path()).await;
        assert_eq!(outcome.status, ProbeStatus::Skipped);
        assert!(outcome.explanation.starts_with("probe skipped: composer not found"), "{}", outcome.explanation);
    }

    #[test]
    fn the_explanation_starts_where_composer_explains() {
        let text = "Loading composer repositories\nYour requirements could not be resolved to an installable set of packages.\n  Problem 1";
        assert!(explanation(text).starts_with("Your requirements"));
        assert_eq!(explanation(&"x".repeat(MAX_EXPLANATION + 10)).len(), MAX_EXPLANATION + "\n[...]".len());
    }
}
