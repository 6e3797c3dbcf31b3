//! The `worker build-jobs` command: jobs as JSON lines on stdin, results as JSON lines on stdout.

use std::io::Write;
use std::process::{Command, Stdio};

use shared::messages::{BuildId, BuildJob, BuildResult, Content, JobId, Outcome, SCHEMA_VERSION, Source};

fn job(id: &str, content: Content, commit: &str) -> BuildJob {
    BuildJob {
        schema: SCHEMA_VERSION,
        job_id: JobId(id.to_owned()),
        build_id: BuildId("b".to_owned()),
        package: "acme/meta".to_owned(),
        version: "1.0.0".to_owned(),
        source: Source {
            repo_url: "/nonexistent/repo.git".to_owned(),
            git_ref: "1.0.0".to_owned(),
            commit: commit.to_owned(),
        },
        content,
        composer_json: "{\n  \"name\": \"acme/meta\",\n  \"version\": \"1.0.0\"\n}".to_owned(),
        target_key: format!("packages/acme/{id}-1.0.0.zip"),
        attempt: 1,
        files: Vec::new(),
    }
}

fn run(input: &str, dir: &std::path::Path) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_worker"))
        .args(["build-jobs", "--out"])
        .arg(dir.join("out"))
        .arg("--cache-dir")
        .arg(dir.join("cache"))
        .env("RUST_LOG", "error")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn builds_jobs_from_stdin_and_reports_each() {
    let temp = tempfile::tempdir().unwrap();
    let good = job("meta", Content::ComposerJsonOnly, &"0".repeat(40));
    let missing_repo = job(
        "tree",
        Content::PackageTree { dir: "x".to_owned(), excludes: vec![], empty_dirs: vec![] },
        "1111111111111111111111111111111111111111",
    );
    let input = format!(
        "{}\n{}\n",
        String::from_utf8(good.encode()).unwrap(),
        String::from_utf8(missing_repo.encode()).unwrap()
    );
    let output = run(&input, temp.path());
    assert_eq!(output.status.code(), Some(1), "{}", String::from_utf8_lossy(&output.stderr));
    let results: Vec<BuildResult> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| BuildResult::decode(l.as_bytes()).unwrap()).collect();
    assert_eq!(results.len(), 2);
    assert!(matches!(&results[0].outcome, Outcome::Built { size, .. } if *size > 0));
    assert!(matches!(&results[1].outcome, Outcome::Failed { reason } if reason.contains("/nonexistent/repo.git")));
    assert!(temp.path().join("out/packages/acme/meta-1.0.0.zip").is_file());
    assert!(!temp.path().join("out/packages/acme/tree-1.0.0.zip").exists());
}

#[test]
fn undecodable_input_is_a_clear_error() {
    let temp = tempfile::tempdir().unwrap();
    let output = run("{not json\n", temp.path());
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot decode job"));
}
