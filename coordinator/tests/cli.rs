//! The `coordinator` binary's interface as operators and our acceptance checks use it:
//! `coordinator build --config F --upstream-base DIR --out OUT [--base-url URL]`, exit codes, env vars.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn parity() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/parity")
}

fn restore_upstream(dir: &Path) {
    let status = Command::new("git")
        .args(["clone", "--quiet", "--mirror"])
        .arg(parity().join("fixture.bundle"))
        .arg(dir.join("src-repo.git"))
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "cannot restore the parity bundle");
}

fn coordinator() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_coordinator"));
    command.env("RUST_LOG", "warn").env_remove("FARM_UPSTREAM_BASE").env_remove("FARM_BASE_URL");
    command
}

/// `coordinator build --config C --upstream-base U --out O --cache-dir D`, for more arguments.
fn build(config: &Path, upstream: &Path, out: &Path, cache: &Path) -> Command {
    let mut command = coordinator();
    command.args(["build", "--config"]).arg(config).arg("--upstream-base").arg(upstream).arg("--out").arg(out);
    command.arg("--cache-dir").arg(cache);
    command
}

fn fixture_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/parity.toml")
}

#[test]
fn build_with_flags_then_plan_shows_nothing_to_do() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = temp.path().join("upstream");
    restore_upstream(&upstream);
    let out = temp.path().join("out");
    let output = build(&fixture_config(), &upstream, &out, &temp.path().join("cache"))
        .args(["--base-url", "https://mirror.example.org/sub/"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("35 built"), "{stderr}");

    let expected: Vec<String> = std::fs::read_to_string(parity().join("expected.tsv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect();
    for name in &expected {
        assert!(out.join("packages").join(name).is_file(), "missing {name}");
    }
    let root: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("packages.json")).unwrap()).unwrap();
    assert_eq!(root["metadata-url"], "https://mirror.example.org/sub/p2/%package%.json");
    let p2 = std::fs::read_to_string(out.join("p2/acme/framework.json")).unwrap();
    assert!(p2.contains("\"url\":\"https://mirror.example.org/sub/packages/acme/framework-100.1.0.zip\""), "{p2}");

    // The upstream base from the environment works the same; a dry run now plans nothing.
    let output = coordinator()
        .args(["plan", "--config"])
        .arg(fixture_config())
        .arg("--out")
        .arg(&out)
        .arg("--cache-dir")
        .arg(temp.path().join("cache"))
        .env("FARM_UPSTREAM_BASE", &upstream)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(stdout.lines().filter(|l| l.starts_with("unchanged ")).count(), 35, "{stdout}");
    assert!(!stdout.lines().any(|l| l.starts_with("build ")), "{stdout}");
}

#[test]
fn unreadable_upstream_fails_the_exit_code_and_bad_config_is_fatal() {
    let temp = tempfile::tempdir().unwrap();
    let output = build(
        &fixture_config(),
        &temp.path().join("nothing-here"),
        &temp.path().join("out"),
        &temp.path().join("cache"),
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("repository failed: acme"), "{stderr}");

    let bad = temp.path().join("bad.toml");
    std::fs::write(&bad, "[repository]\nbase_url = \"ftp://x\"\n").unwrap();
    let output =
        coordinator().args(["build", "--config"]).arg(&bad).arg("--out").arg(temp.path().join("o")).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("base_url must be an http(s) URL"));
}

/// Invariant 1 across processes: two separate runs (1 and 2 workers) of the binary give the same
/// bytes, including a composer.json transform whose object value comes from TOML.
#[test]
fn separate_processes_produce_identical_repositories() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = temp.path().join("upstream");
    restore_upstream(&upstream);
    let config = temp.path().join("farm.toml");
    let mut text = std::fs::read_to_string(fixture_config()).unwrap();
    text.push_str(
        r#"
[[upstreams.transforms]]
package = "acme/module-catalog"
when = { version_at_least = "100.1.0" }
actions = [{ set = ["extra", "custom"], value = { zeta = 1, alpha = 2, mid = { y = 1, b = 2 } } }]
"#,
    );
    std::fs::write(&config, text).unwrap();
    let mut snapshots = Vec::new();
    for workers in ["1", "2"] {
        let out = temp.path().join(format!("out-{workers}"));
        let status = build(&config, &upstream, &out, &temp.path().join(format!("cache-{workers}")))
            .args(["--workers", workers])
            .status()
            .unwrap();
        assert!(status.success());
        snapshots.push(files(&out));
    }
    assert_eq!(snapshots[0], snapshots[1]);
    let p2 = String::from_utf8(snapshots[0][Path::new("p2/acme/module-catalog.json")].clone()).unwrap();
    assert!(p2.contains(r#""custom":{"zeta":1,"alpha":2,"mid":{"y":1,"b":2}}"#), "{p2}");
}

/// Every file below `dir` except the per-run report, the health record (build ids and times)
/// and the lock.
fn files(dir: &Path) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).unwrap().to_owned();
                // Process state with times and ids, and the change feed (it stamps each publish).
                if ![".farm/report.json", ".farm/health.json", ".farm/lock", "metadata/changes.json"]
                    .iter()
                    .any(|skip| relative.starts_with(skip))
                {
                    out.insert(relative, std::fs::read(&path).unwrap());
                }
            }
        }
    }
    out
}

#[test]
fn adopt_from_the_own_output_knows_everything_and_a_bad_source_exits_2() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = temp.path().join("upstream");
    restore_upstream(&upstream);
    let out = temp.path().join("out");
    let built = build(&fixture_config(), &upstream, &out, &temp.path().join("cache")).output().unwrap();
    assert_eq!(built.status.code(), Some(0), "{}", String::from_utf8_lossy(&built.stderr));
    let adopt = |from: &Path| {
        coordinator()
            .args(["adopt", "--config"])
            .arg(fixture_config())
            .arg("--out")
            .arg(&out)
            .arg("--from")
            .arg(from)
            .output()
            .unwrap()
    };
    let output = adopt(&out);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("35 versions listed, 0 adopted (0 archives copied), 35 already known, 0 problems"),
        "{stderr}"
    );
    let output = adopt(&temp.path().join("nowhere"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds no packages.json"), "{stderr}");
}

#[test]
fn a_foreign_repository_the_root_or_home_is_refused_as_output() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = temp.path().join("upstream");
    restore_upstream(&upstream);
    let cache = temp.path().join("cache");
    // A Composer repository the farm did not make: its metadata would be replaced.
    let foreign = temp.path().join("foreign");
    std::fs::create_dir_all(foreign.join("p2/other")).unwrap();
    std::fs::write(foreign.join("packages.json"), br#"{"packages":{}}"#).unwrap();
    std::fs::write(foreign.join("p2/other/x.json"), b"{}").unwrap();
    let output = build(&fixture_config(), &upstream, &foreign, &cache).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("holds a Composer repository the farm did not make"), "{stderr}");
    assert_eq!(std::fs::read(foreign.join("packages.json")).unwrap(), br#"{"packages":{}}"#);
    assert!(!foreign.join(".farm").exists() && !foreign.join("packages").exists(), "wrote into the foreign folder");
    // Told so, the farm builds into it.
    let output = build(&fixture_config(), &upstream, &foreign, &cache).arg("--adopt-existing").output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(foreign.join(".farm/manifest.json").is_file());

    // The file system root and the home folder are never outputs, not even with the flag.
    let home = temp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    for (out, expected) in [(Path::new("/"), "file system root"), (home.as_path(), "home folder")] {
        let output = build(&fixture_config(), &upstream, out, &cache)
            .arg("--adopt-existing")
            .env("HOME", &home)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
    assert!(!home.join(".farm").exists() && !Path::new("/.farm").exists());
}
