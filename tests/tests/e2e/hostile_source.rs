//! `adopt` and `verify` against hostile sources, as an attacker would serve them: planted keys,
//! bad names, links and redirects to other hosts, folder escapes, silent and endless servers, a
//! million versions. Each test asserts what was refused, that nothing was written, the exit code
//! and message, and that memory stayed bounded.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use serde_json::json;
use sha1::Digest as _;
use tests::hostile::{Answer, HostileServer, peak_rss_kib};
use tests::services::binary;
use tests::{Upstream, snapshot, write_shop_config};

/// A zip holding only a composer.json naming `name`.
fn zip_named(name: &str) -> Vec<u8> {
    let mut builder = shared::archive::ArchiveBuilder::new();
    let composer = format!(r#"{{"name":"{name}","version":"1.0.0"}}"#);
    builder.add_file("composer.json", Arc::from(composer.as_bytes()), shared::archive::FILE_MODE);
    let mut bytes = Vec::new();
    builder.write_to(&mut bytes).unwrap();
    bytes
}

fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(sha1::Sha1::digest(bytes))
}

/// A satis-style version entry.
fn entry(name: &str, dist: &str, bytes: &[u8]) -> serde_json::Value {
    json!({"name": name, "version": "1.0.0", "dist": {"type": "zip", "url": dist, "shasum": sha1_hex(bytes)}})
}

fn coordinator(args: &[&str], config: &Path, out: &Path) -> Command {
    let mut command = Command::new(binary("coordinator"));
    command.args(args).arg("--config").arg(config).arg("--out").arg(out);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// `coordinator verify` of the repository at `base_url`.
fn verify(config: &Path, base_url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(binary("coordinator"));
    command.args(["verify", "--config"]).arg(config).args(["--base-url", base_url]).args(args);
    command
}

/// The process's stderr, after checking its exit code.
fn exited(output: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(code), "{stderr}");
    stderr
}

async fn run(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().unwrap()).await.unwrap()
}

/// Files under `out` outside `.farm/`.
fn published(out: &Path) -> Vec<PathBuf> {
    snapshot(out).into_keys().filter(|path| !path.starts_with(".farm")).collect()
}

struct Farm {
    _temp: tempfile::TempDir,
    config: PathBuf,
    out: PathBuf,
    upstream_base: PathBuf,
}

fn farm() -> Farm {
    let temp = tempfile::tempdir().unwrap();
    let config = temp.path().join("farm.toml");
    write_shop_config(&config, "https://repo.example.org/");
    let upstream_base = temp.path().join("upstream");
    let mut upstream = Upstream::create(&upstream_base.join("shop.git"));
    upstream
        .file("packages/A/composer.json", r#"{"name":"acme/a","version":"1.0.0"}"#)
        .file("packages/A/a.php", "<?php\n");
    upstream.commit_and_tag("1.0.0");
    let out = temp.path().join("out");
    Farm { config, out, upstream_base, _temp: temp }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adopt_from_a_hostile_source_writes_nothing_and_the_next_build_is_clean() {
    let farm = farm();
    let server = HostileServer::start().await;
    let src = server.url.clone();
    let manifest = br#"{"packages":{"acme/a@1.0.0":{"key":"packages/evil.zip"}}}"#.to_vec();
    let php = b"<?php system($_GET['c']);".to_vec();
    let ok = zip_named("acme/ok");
    let planted = zip_named("acme/c");
    let packages = json!({"packages": {
        "acme/a": {"1.0.0": entry("acme/a", &format!("{src}/.farm/manifest.json"), &manifest)},
        "acme/b": {"1.0.0": entry("acme/b", &format!("{src}/evil.php"), &php)},
        "acme/c": {"1.0.0": entry("acme/c", &format!("{src}/packages/acme/d-1.0.0.zip"), &planted)},
        "acme/ok": {"1.0.0": entry("acme/ok", &format!("{src}/packages/acme/ok-1.0.0.zip"), &ok)},
        "Col/X": {"1.0.0": entry("Col/X", &format!("{src}/packages/Col/X-1.0.0.zip"), &ok)},
        "col/x~dev": {"1.0.0": entry("col/x~dev", &format!("{src}/packages/col/x~dev-1.0.0.zip"), &ok)},
        "acme/liar": {"1.0.0": entry("acme/liar", &format!("{src}/packages/acme/liar-1.0.0.zip"), &ok)},
    }});
    server
        .answer("/packages.json", Answer::Body(packages.to_string().into_bytes()))
        .answer("/.farm/manifest.json", Answer::Body(manifest))
        .answer("/evil.php", Answer::Body(php))
        .answer("/packages/acme/d-1.0.0.zip", Answer::Body(planted))
        .answer("/packages/acme/ok-1.0.0.zip", Answer::Body(ok.clone()))
        .answer("/packages/acme/liar-1.0.0.zip", Answer::Body(ok));

    let mut adopt = coordinator(&["adopt"], &farm.config, &farm.out);
    adopt.arg("--from").arg(&src);
    let output = run(adopt).await;
    let stderr = exited(&output, 1);
    assert!(stderr.contains("nothing recorded"), "{stderr}");
    for refused in [
        "acme/a 1.0.0: archive key '.farm/manifest.json' cannot be published",
        "acme/b 1.0.0: archive key 'evil.php' cannot be published",
        "acme/c 1.0.0: dist URL",
        "package name 'Col/X' is invalid",
        "package name 'col/x~dev' is invalid",
    ] {
        assert!(stderr.contains(refused), "missing {refused:?} in {stderr}");
    }
    assert_eq!(published(&farm.out), Vec::<PathBuf>::new(), "adopt wrote outside .farm/");
    assert!(!farm.out.join(".farm/manifest.json").exists(), "a manifest was recorded");

    // The next build trusts nothing of the source and builds the real package.
    let mut build = coordinator(&["build"], &farm.config, &farm.out);
    build.arg("--upstream-base").arg(&farm.upstream_base).arg("--cache-dir").arg(farm.out.with_extension("cache"));
    let output = run(build).await;
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(farm.out.join("packages/acme/a-1.0.0.zip").is_file());
    assert!(!farm.out.join("evil.php").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_archive_is_refused_and_nothing_is_stored() {
    let farm = farm();
    let server = HostileServer::start().await;
    let src = server.url.clone();
    let ok = zip_named("acme/ok");
    let liar = zip_named("acme/other");
    let packages = json!({"packages": {
        "acme/ok": {"1.0.0": entry("acme/ok", &format!("{src}/packages/acme/ok-1.0.0.zip"), &ok)},
        "acme/liar": {"1.0.0": entry("acme/liar", &format!("{src}/packages/acme/liar-1.0.0.zip"), &liar)},
    }});
    server
        .answer("/packages.json", Answer::Body(packages.to_string().into_bytes()))
        .answer("/packages/acme/ok-1.0.0.zip", Answer::Body(ok))
        .answer("/packages/acme/liar-1.0.0.zip", Answer::Body(liar));
    let mut adopt = coordinator(&["adopt"], &farm.config, &farm.out);
    adopt.arg("--from").arg(&src);
    let output = run(adopt).await;
    let stderr = exited(&output, 1);
    assert!(stderr.contains("its composer.json names acme/other, not acme/liar"), "{stderr}");
    // The good archive was checked but not stored: adoption is all or nothing.
    assert_eq!(published(&farm.out), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_and_redirects_to_other_hosts_are_not_followed() {
    let farm = farm();
    let mut other = HostileServer::start().await;
    let server = HostileServer::start().await;
    let src = server.url.clone();
    let elsewhere = other.url.clone();
    let ok = zip_named("acme/ok");
    let root = json!({
        "metadata-url": "/p2/%package%.json",
        "available-packages": ["acme/ok", "acme/moved"],
        "includes": {format!("{elsewhere}/include.json"): {"sha1": "x"}},
    });
    let p2 =
        json!({"packages": {"acme/ok": [entry("acme/ok", &format!("{elsewhere}/packages/acme/ok-1.0.0.zip"), &ok)]}});
    server
        .answer("/packages.json", Answer::Body(root.to_string().into_bytes()))
        .answer("/p2/acme/ok.json", Answer::Body(p2.to_string().into_bytes()))
        .answer("/p2/acme/moved.json", Answer::Redirect(format!("{elsewhere}/p2/acme/moved.json")));
    other.answer("/packages/acme/ok-1.0.0.zip", Answer::Body(ok));

    let mut adopt = coordinator(&["adopt"], &farm.config, &farm.out);
    adopt.arg("--from").arg(&src);
    let output = run(adopt).await;
    let stderr = exited(&output, 1);
    assert!(stderr.contains(&format!("{elsewhere}/include.json: on another origin")), "{stderr}");
    assert!(stderr.contains("leaves the source's origin"), "{stderr}");
    assert!(stderr.contains(&format!("{elsewhere}/packages/acme/ok-1.0.0.zip")), "{stderr}");
    assert_eq!(other.seen(), Vec::<String>::new(), "the other host was asked");
    assert_eq!(published(&farm.out), Vec::<PathBuf>::new());

    // `verify` keeps to the same rule.
    let output = run(verify(&farm.config, &src, &[])).await;
    let stderr = exited(&output, 1);
    assert!(stderr.contains("on another origin"), "{stderr}");
    assert_eq!(other.seen(), Vec::<String>::new(), "verify asked the other host");

    // Allowed explicitly, the other host is used.
    let output = run(verify(&farm.config, &src, &["--allow-host", &elsewhere])).await;
    assert!(
        other.seen().contains(&"/packages/acme/ok-1.0.0.zip".to_owned()),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folder_sources_cannot_be_left() {
    let farm = farm();
    let temp = tempfile::tempdir().unwrap();
    let source = temp.path().join("repo");
    std::fs::create_dir_all(source.join("p2")).unwrap();
    let secret = zip_named("acme/secret");
    let outside = json!({"packages": {"acme/secret": {"1.0.0": entry("acme/secret", "packages/acme/secret-1.0.0.zip", &secret)}}});
    std::fs::write(temp.path().join("outside.json"), outside.to_string()).unwrap();
    std::os::unix::fs::symlink(temp.path().join("outside.json"), source.join("p2/link.json")).unwrap();
    let root = json!({"includes": {"../outside.json": {}, "p2/link.json": {}, "/etc/passwd": {}}});
    std::fs::write(source.join("packages.json"), root.to_string()).unwrap();

    let mut adopt = coordinator(&["adopt"], &farm.config, &farm.out);
    adopt.arg("--from").arg(&source);
    let output = run(adopt).await;
    let stderr = exited(&output, 1);
    assert!(stderr.contains("../outside.json: outside the folder"), "{stderr}");
    assert!(stderr.contains("p2/link.json: outside the folder"), "{stderr}");
    assert!(stderr.contains("/etc/passwd"), "{stderr}");
    assert!(!stderr.contains("acme/secret"), "read outside the folder: {stderr}");
    assert_eq!(published(&farm.out), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_oversized_and_endless_servers_are_given_up() {
    let farm = farm();
    let server = HostileServer::start().await;
    let src = server.url.clone();
    server.answer("/packages.json", Answer::Silent);
    let mut adopt = coordinator(&["adopt", "--read-timeout", "1s", "--from", &src], &farm.config, &farm.out);
    adopt.arg("--connect-timeout").arg("1s");
    let output = run(adopt).await;
    let stderr = exited(&output, 2);
    assert!(stderr.contains("packages.json: timed out"), "{stderr}");
    server.release();

    // Declares 200 MB: refused before a byte of the body is read.
    server.answer("/packages.json", Answer::Declared(200 << 20));
    let output = run(coordinator(&["adopt", "--from", &src], &farm.config, &farm.out)).await;
    let stderr = exited(&output, 2);
    assert!(stderr.contains("larger than the limit of 33554432 bytes"), "{stderr}");

    // Never ends: reading stops at the limit.
    server.answer("/packages.json", Answer::Endless);
    let mut adopt = coordinator(&["adopt", "--from", &src], &farm.config, &farm.out);
    adopt.args(["--max-metadata-bytes", "1048576"]);
    let output = run(adopt).await;
    let stderr = exited(&output, 2);
    assert!(stderr.contains("larger than the limit of 1048576 bytes"), "{stderr}");
    let streamed = server.streamed.load(std::sync::atomic::Ordering::SeqCst);
    assert!(streamed < 64 << 20, "the client kept reading: {streamed} bytes sent");

    // verify gives up the same way.
    server.answer("/packages.json", Answer::Declared(200 << 20));
    let output = run(verify(&farm.config, &src, &[])).await;
    let stderr = exited(&output, 2);
    assert!(stderr.contains("larger than the limit"), "{stderr}");
    assert_eq!(published(&farm.out), Vec::<PathBuf>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_versions_is_one_problem_in_bounded_memory() {
    let farm = farm();
    let mut server = HostileServer::start().await;
    let src = server.url.clone();
    let root = json!({"metadata-url": "/p2/%package%.json", "available-packages": ["acme/many"]});
    let mut p2 = String::from(r#"{"minified":"composer/2.0","packages":{"acme/many":["#);
    for i in 0..1_000_000 {
        if i > 0 {
            p2.push(',');
        }
        p2.push_str(&format!(r#"{{"version":"1.0.{i}"}}"#));
    }
    p2.push_str("]}}");
    server
        .answer("/packages.json", Answer::Body(root.to_string().into_bytes()))
        .answer("/p2/acme/many.json", Answer::Body(p2.into_bytes()))
        .answer("/p2/acme/many~dev.json", Answer::Silent);
    let child = coordinator(&["adopt", "--from", &src], &farm.config, &farm.out).spawn().unwrap();
    // The big document has been read and judged once the client asks for the next one.
    while server.next_request().await != "/p2/acme/many~dev.json" {}
    let peak_kib = peak_rss_kib(child.id()).expect("the process is running");
    server.release();
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
    let stderr = exited(&output, 1);
    assert!(stderr.contains("acme/many lists more than 10000 versions, over the limit"), "{stderr}");
    assert!(stderr.lines().count() < 60, "{} lines printed", stderr.lines().count());
    eprintln!("peak RSS of adopt while the 22 MB document was judged: {} MiB", peak_kib >> 10);
    // The document's bytes, not a tree of its million values.
    assert!(peak_kib < 150 << 10, "peak RSS {} MiB while reading a 22 MB document", peak_kib >> 10);
}
