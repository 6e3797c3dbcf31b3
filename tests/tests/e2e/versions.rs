//! Composer's version rules, checked against Composer itself: every version of a generated corpus
//! is normalized by `shared::version::composer_normalize` and by PHP's composer/semver (the
//! library the `composer` client ships; Debian installs it with the client), and both must agree
//! on the result or on refusing it. `version_normalized` in the metadata and the identity checks
//! depend on this.

use std::process::Command;

const SEMVER_AUTOLOAD: &str = "/usr/share/php/Composer/Semver/autoload.php";

/// Versions shaped as upstreams write them, with every stability spelling and suffix Composer
/// knows, and some it refuses.
fn corpus() -> Vec<String> {
    let bases = ["1", "1.2", "1.2.3", "103.0.7.1", "v2.4", "2026.01.02", "20260102", "99999.1", "100000.1"];
    let stabilities = [
        "",
        "-a1",
        "-alpha.2",
        "-b",
        "-beta3",
        "-RC1",
        "-rc.2",
        "-p",
        "-p4",
        "-p3.1",
        "-pl1",
        "-patch2",
        "-stable",
        "-dev",
        ".dev",
        "_beta",
        "-SNAPSHOT",
        "-1",
        "-a20261121",
    ];
    let suffixes = ["", "-dev", "+build.1", "+p3", "@dev", " "];
    let mut versions = Vec::new();
    for base in bases {
        for stability in stabilities {
            for suffix in suffixes {
                versions.push(format!("{base}{stability}{suffix}"));
            }
        }
    }
    for other in [
        "dev-main",
        "dev-feature/x",
        "dev-",
        "master",
        "trunk",
        "default",
        "1.x-dev",
        "2.4.x-dev",
        "1.*-dev",
        "10.2.x",
        "*",
        "",
        "1.0.0 beta",
        "é1.0",
        "1.2.3.4.5",
        "1.0-beta.1-dev",
        " 1.0 ",
    ] {
        versions.push(other.to_owned());
    }
    versions
}

#[test]
fn version_normalization_agrees_with_composer() {
    assert!(
        std::path::Path::new(SEMVER_AUTOLOAD).is_file(),
        "{SEMVER_AUTOLOAD} is missing: scripts/test-setup.sh installs Composer from Debian's packages"
    );
    let versions = corpus();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("versions.json");
    std::fs::write(&list, serde_json::to_vec(&versions).unwrap()).unwrap();
    let script = format!(
        r#"require '{SEMVER_AUTOLOAD}';
$parser = new Composer\Semver\VersionParser();
$out = [];
foreach (json_decode(file_get_contents($argv[1])) as $v) {{
    try {{ $out[] = $parser->normalize($v); }} catch (\Throwable $e) {{ $out[] = null; }}
}}
echo json_encode($out);"#
    );
    let output = Command::new("php").arg("-r").arg(&script).arg(&list).output().expect("php runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let composer: Vec<Option<String>> = serde_json::from_slice(&output.stdout).expect("php answers JSON");
    assert_eq!(composer.len(), versions.len());
    let mut differ = Vec::new();
    for (version, expected) in versions.iter().zip(&composer) {
        let ours = shared::version::composer_normalize(version).ok();
        if &ours != expected {
            differ.push(format!("{version:?}: composer {expected:?}, ours {ours:?}"));
        }
    }
    let valid = composer.iter().filter(|c| c.is_some()).count();
    assert!(differ.is_empty(), "{} of {} versions differ:\n{}", differ.len(), versions.len(), differ.join("\n"));
    assert!(valid > versions.len() / 2 && valid < versions.len(), "the corpus must hold valid and invalid versions");
}
