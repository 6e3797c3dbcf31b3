//! What lets a third party trust a published repository: `verify --rebuild` reproduces it from
//! the configuration and git (and names exactly what differs when it does not), and signed
//! provenance ties every archive to the commits it was built from.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use coordinator::fetch::Limits;
use coordinator::provenance::{Signer, Verifier};
use coordinator::rebuild::{Outcome, RebuildOptions, RebuildReport, rebuild};
use shared::config::FarmConfig;
use tests::{PhpServer, Upstream, build, fixture, load_config, restore_parity_upstream, write_shop_config};

fn options(from: &str, public_base: &str, scratch: &Path, state: Option<PathBuf>) -> RebuildOptions {
    RebuildOptions {
        from: from.to_owned(),
        public_base: public_base.to_owned(),
        only: Vec::new(),
        sample: None,
        state,
        concurrency: 4,
        limits: Limits::default(),
        allowed_hosts: Vec::new(),
        scratch: scratch.to_owned(),
    }
}

fn outcome<'r>(report: &'r RebuildReport, id: &str) -> &'r Outcome {
    &report
        .checked
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("{id} not checked: {}", report.summary()))
        .outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_rebuild_reproduces_the_parity_repository_over_http_and_resumes() {
    let temp = tempfile::tempdir().unwrap();
    let upstream = restore_parity_upstream(&temp.path().join("upstream"));
    let port = tests::free_port();
    let base = format!("http://127.0.0.1:{port}/");
    let config = || {
        let mut config = load_config(&fixture("parity.toml"), &upstream, &temp.path().join("cache"), 2);
        config.repository.base_url = base.clone();
        config
    };
    let out = temp.path().join("out");
    assert_eq!(build(config(), &out).await.built.len(), 35);
    let server = PhpServer::start(&out, port);

    // A verifier with its own git cache: nothing of the build is reused.
    let mut verifier_config = config();
    verifier_config.build.cache_dir = Some(temp.path().join("verifier-cache"));
    let state = temp.path().join("state.jsonl");
    let scratch = temp.path().join("scratch");
    let report = rebuild(&verifier_config, &options(&server.url, &base, &scratch, Some(state.clone()))).await.unwrap();
    assert_eq!((report.listed, report.selected, report.reproduced()), (35, 35, 35), "{}", report.summary());
    assert!(report.is_clean(), "{}", report.summary());

    // Again with the same state: every result is taken from it, nothing is rebuilt.
    let again = rebuild(&verifier_config, &options(&server.url, &base, &scratch, Some(state.clone()))).await.unwrap();
    assert_eq!((again.resumed, again.reproduced()), (35, 35), "{}", again.summary());
    // A sample is the same every time, and --only narrows by name.
    let sample = |n| RebuildOptions { sample: Some(n), ..options(&server.url, &base, &scratch, None) };
    let first = rebuild(&verifier_config, &sample(5)).await.unwrap();
    let second = rebuild(&verifier_config, &sample(5)).await.unwrap();
    assert_eq!(first.checked, second.checked);
    assert_eq!(first.reproduced(), 5, "{}", first.summary());
    let only =
        RebuildOptions { only: vec!["acme/module-catalog".to_owned()], ..options(&server.url, &base, &scratch, None) };
    let only = rebuild(&verifier_config, &only).await.unwrap();
    assert!(
        only.selected > 0 && only.checked.iter().all(|c| c.id.starts_with("acme/module-catalog@")),
        "{}",
        only.summary()
    );
}

/// A shop upstream: acme/a (a.php) and acme/b (a description), at 1.0.0.
fn shop(temp: &Path) -> (PathBuf, Upstream) {
    let mut upstream = Upstream::create(&temp.join("upstream/shop.git"));
    upstream
        .file("packages/A/composer.json", r#"{"name":"acme/a","version":"1.0.0"}"#)
        .file("packages/A/a.php", "<?php\necho 'a';\n")
        .file("packages/B/composer.json", r#"{"name":"acme/b","version":"1.0.0","description":"B as built"}"#)
        .file("packages/B/b.php", "<?php\n");
    upstream.commit_and_tag("1.0.0");
    (temp.join("upstream"), upstream)
}

/// Rewrites one entry of a zip in place (same names, order and options otherwise).
fn tamper(zip_path: &Path, entry: &str, change: impl Fn(Vec<u8>) -> Vec<u8>) {
    let bytes = std::fs::read(zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for index in 0..archive.len() {
        let mut file = archive.by_index(index).unwrap();
        let name = file.name().unwrap().to_string();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        let options = zip::write::SimpleFileOptions::default();
        writer.start_file(name.as_str(), options).unwrap();
        writer.write_all(&if name == entry { change(content) } else { content }).unwrap();
    }
    std::fs::write(zip_path, writer.finish().unwrap().into_inner()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_rebuild_names_a_tampered_file_and_a_tampered_composer_json() {
    let temp = tempfile::tempdir().unwrap();
    let (upstream_base, _upstream) = shop(temp.path());
    let base = "https://repo.example/";
    let config_path = temp.path().join("farm.toml");
    write_shop_config(&config_path, base);
    let config = load_config(&config_path, &upstream_base, &temp.path().join("cache"), 2);
    let out = temp.path().join("out");
    assert_eq!(build(config.clone(), &out).await.built.len(), 2);
    tamper(&out.join("packages/acme/a-1.0.0.zip"), "a.php", |mut c| {
        c.extend_from_slice(b"system($_GET['x']);\n");
        c
    });
    tamper(&out.join("packages/acme/b-1.0.0.zip"), "composer.json", |c| {
        String::from_utf8(c).unwrap().replace("B as built", "B as shipped").into_bytes()
    });

    // From the folder, as a local operator would.
    let report =
        rebuild(&config, &options(&out.display().to_string(), base, &temp.path().join("scratch"), None)).await.unwrap();
    assert_eq!(report.reproduced(), 0, "{}", report.summary());
    let Outcome::Differs { first, differences } = outcome(&report, "acme/a@1.0.0") else {
        panic!("{}", report.summary())
    };
    assert!(first.starts_with("a.php: content differs"), "{first}");
    // The metadata still has the built archive's sha1: Composer would refuse the tampered one.
    assert!(differences.last().unwrap().contains("its metadata says"), "{differences:?}");
    let Outcome::Differs { first, differences } = outcome(&report, "acme/b@1.0.0") else {
        panic!("{}", report.summary())
    };
    assert_eq!(first, r#"composer.json: description is "B as shipped" vs "B as built""#, "{differences:?}");
    assert!(!report.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_whose_tag_is_gone_cannot_be_rebuilt_and_says_why() {
    let temp = tempfile::tempdir().unwrap();
    let (upstream_base, upstream) = shop(temp.path());
    let base = "https://repo.example/";
    let config_path = temp.path().join("farm.toml");
    write_shop_config(&config_path, base);
    let config = load_config(&config_path, &upstream_base, &temp.path().join("cache"), 2);
    let out = temp.path().join("out");
    build(config.clone(), &out).await;
    let mut tag = upstream.repo.find_reference("refs/tags/1.0.0").unwrap();
    tag.delete().unwrap();
    let mut fresh = config.clone();
    fresh.build.cache_dir = Some(temp.path().join("fresh-cache"));
    let report =
        rebuild(&fresh, &options(&out.display().to_string(), base, &temp.path().join("scratch"), None)).await.unwrap();
    for id in ["acme/a@1.0.0", "acme/b@1.0.0"] {
        let Outcome::Unrebuildable { reason } = outcome(&report, id) else { panic!("{}", report.summary()) };
        assert!(reason.contains("no configured upstream"), "{reason}");
    }
}

/// A signing key from a fixed seed, written as the farm reads it, and its public key.
fn keys(dir: &Path, seed: u8) -> (PathBuf, PathBuf) {
    let private = dir.join(format!("farm-{seed}.key"));
    std::fs::write(&private, hex::encode([seed; 32])).unwrap();
    let public = dir.join(format!("farm-{seed}.pub"));
    std::fs::write(&public, Signer::load(&private).unwrap().public_pem()).unwrap();
    (private, public)
}

async fn verify(url: &str, key: &Path) -> coordinator::verify::VerifyReport {
    let verifier = Verifier::load(key).unwrap();
    coordinator::verify::verify(url, 4, Limits::default(), &[], Some(&verifier)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provenance_is_signed_per_build_and_verify_checks_every_archive_against_it() {
    let temp = tempfile::tempdir().unwrap();
    let (upstream_base, mut upstream) = shop(temp.path());
    let port = tests::free_port();
    let base = format!("http://127.0.0.1:{port}/");
    let config_path = temp.path().join("farm.toml");
    write_shop_config(&config_path, &base);
    let (private, public) = keys(temp.path(), 7);
    let config = |key: Option<&Path>| -> FarmConfig {
        let mut config = load_config(&config_path, &upstream_base, &temp.path().join("cache"), 2);
        config.repository.provenance_key = key.map(Path::to_owned);
        config
    };
    let out = temp.path().join("out");
    let report = build(config(Some(&private)), &out).await;
    let server = PhpServer::start(&out, port);

    // The statement: both archives by name and sha256, the commit of the tag they came from.
    let statement_path = out.join(format!("provenance/{}.intoto.jsonl", report.build_id));
    let statements =
        coordinator::provenance::open_all(&std::fs::read(&statement_path).unwrap(), &Verifier::load(&public).unwrap())
            .unwrap();
    let subjects: Vec<(String, String)> =
        statements[0].subjects.iter().map(|s| (format!("{}@{}", s.name, s.version), s.sha256.clone())).collect();
    let manifest = tests::manifest(&out);
    for id in ["acme/a@1.0.0", "acme/b@1.0.0"] {
        let sha256 = manifest["packages"][id]["sha256"].as_str().unwrap().to_owned();
        assert!(subjects.contains(&(id.to_owned(), sha256)), "{id} not a subject: {subjects:?}");
    }
    let commit = upstream.repo.find_reference("refs/tags/1.0.0").unwrap().peel_to_commit().unwrap().id().to_string();
    let materials = &statements[0].statement["predicate"]["buildDefinition"]["resolvedDependencies"];
    assert!(materials.to_string().contains(&commit), "{materials}");

    // A good repository verifies.
    let good = verify(&server.url, &public).await;
    assert!(good.problems.is_empty(), "{}", good.summary());
    assert_eq!((good.statements, good.archives), (Some(1), 2));

    // The wrong key: the statement and every archive are named.
    let (_, other) = keys(temp.path(), 8);
    let wrong = verify(&server.url, &other).await;
    let statement_key = format!("provenance/{}.intoto.jsonl", report.build_id);
    assert!(
        wrong.problems.iter().any(|p| p.contains(&statement_key) && p.contains("signature")),
        "{}",
        wrong.summary()
    );
    assert_eq!(wrong.problems.iter().filter(|p| p.contains("no signed statement names this archive")).count(), 2);

    // A new version built without the key: exactly that archive has no statement.
    upstream.file("packages/A/composer.json", r#"{"name":"acme/a","version":"1.1.0"}"#);
    upstream.commit_and_tag("1.1.0");
    build(config(None), &out).await;
    let unsigned = verify(&server.url, &public).await;
    assert_eq!(unsigned.problems.len(), 1, "{}", unsigned.summary());
    assert!(unsigned.problems[0].starts_with("acme/a 1.1.0: no signed statement"), "{}", unsigned.summary());

    // The next build with the key signs what the unsigned one recorded.
    build(config(Some(&private)), &out).await;
    let backfilled = verify(&server.url, &public).await;
    assert!(backfilled.problems.is_empty(), "{}", backfilled.summary());
    assert_eq!(backfilled.statements, Some(2));

    // A tampered statement (one subject's digest changed, payload re-encoded): refused.
    let line = std::fs::read_to_string(&statement_path).unwrap();
    let mut envelope: serde_json::Value = serde_json::from_str(&line).unwrap();
    let engine = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(engine.decode(envelope["payload"].as_str().unwrap()).unwrap()).unwrap();
    let sha256 = manifest["packages"]["acme/a@1.0.0"]["sha256"].as_str().unwrap();
    envelope["payload"] = engine.encode(payload.replace(sha256, &"0".repeat(64))).into();
    std::fs::write(&statement_path, format!("{envelope}\n")).unwrap();
    let tampered = verify(&server.url, &public).await;
    assert!(
        tampered.problems.iter().any(|p| p.contains(&statement_key) && p.contains("signature")),
        "{}",
        tampered.summary()
    );
    assert_eq!(
        tampered.problems.iter().filter(|p| p.contains("no signed statement")).count(),
        2,
        "{}",
        tampered.summary()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adoption_is_signed_too() {
    let temp = tempfile::tempdir().unwrap();
    let (upstream_base, _upstream) = shop(temp.path());
    let port = tests::free_port();
    let base = format!("http://127.0.0.1:{port}/");
    let config_path = temp.path().join("farm.toml");
    write_shop_config(&config_path, &base);
    let live = temp.path().join("live");
    build(load_config(&config_path, &upstream_base, &temp.path().join("cache"), 2), &live).await;
    let server = PhpServer::start(&live, port);

    let (private, public) = keys(temp.path(), 9);
    let mut config = load_config(&config_path, &upstream_base, &temp.path().join("cache"), 2);
    config.repository.provenance_key = Some(private);
    let taken = temp.path().join("taken");
    let farm = coordinator::pipeline::Farm::open(
        config,
        &taken,
        std::sync::Arc::new(coordinator::metrics::Metrics::new()),
        Default::default(),
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    let options = coordinator::adopt::AdoptOptions { concurrency: 2, ..Default::default() };
    let report = coordinator::adopt::adopt(&farm, &server.url, &options).await.unwrap();
    farm.close().await;
    assert_eq!(report.adopted, 2, "{}", report.summary());

    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(taken.join("provenance/index.json")).unwrap()).unwrap();
    let statements = index["statements"].as_array().unwrap();
    assert_eq!(statements.len(), 1, "{index}");
    let key = statements[0].as_str().unwrap();
    assert!(key.starts_with("provenance/adopt-"), "{key}");
    let verified =
        coordinator::provenance::open_all(&std::fs::read(taken.join(key)).unwrap(), &Verifier::load(&public).unwrap())
            .unwrap();
    let mut names: Vec<String> = verified[0].subjects.iter().map(|s| format!("{}@{}", s.name, s.version)).collect();
    names.sort();
    assert_eq!(names, ["acme/a@1.0.0", "acme/b@1.0.0"]);
}
