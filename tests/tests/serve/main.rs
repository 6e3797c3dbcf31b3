//! `coordinator serve` as a process: webhooks, polling, coalescing, webhook security, restart.
//! The upstream is a local bare repository written with git2; the coordinator runs embedded
//! (in-process workers, local folder) except in `distributed`, which goes through RabbitMQ and S3.

mod distributed;
mod hostile;
mod repository;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tests::services::{Process, binary, wait_for_port};
use tests::{Upstream, free_port};

const GITHUB_SECRET: &str = "gh-secret-4f1b";
const GITLAB_TOKEN: &str = "gl-token-93ac";
const TRIGGER_TOKEN: &str = "tr-token-77d0";

/// Settings a test varies.
struct Settings {
    poll_interval: &'static str,
    coalesce: &'static str,
    modules: usize,
    /// Bytes of filler per module (makes jobs slow enough to stop a build half-way).
    filler: usize,
    workers: usize,
    /// A root package (the rest of the repository, modules excluded), as magento2-base.
    base: bool,
    /// The `[serve]` limits: `max_body` and any other keys, one per line.
    limits: &'static str,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            poll_interval: "0s",
            coalesce: "1s",
            modules: 3,
            filler: 10,
            workers: 2,
            base: true,
            limits: "max_body = 65536",
        }
    }
}

/// A served farm: an upstream, a config, and the coordinator process.
struct Served {
    dir: tempfile::TempDir,
    upstream: Upstream,
    out: PathBuf,
    config: PathBuf,
    port: u16,
    process: Option<Process>,
    client: reqwest::blocking::Client,
}

fn module_name(index: usize) -> String {
    format!("Module{index:03}")
}

impl Served {
    /// An upstream with `modules` modules at version 1.0.0 (tag `1.0.0`, branch `main`).
    fn new(settings: Settings) -> Served {
        let dir = tempfile::tempdir().expect("temp dir");
        let repo_path = dir.path().join("git/acme/upstream.git");
        std::fs::create_dir_all(&repo_path).expect("repo dir");
        let mut upstream = Upstream::create(&repo_path);
        for index in 0..settings.modules {
            set_module(&mut upstream, index, "1.0.0", "first", settings.filler);
        }
        if settings.base {
            upstream.file("composer.json", r#"{"name": "acme/base", "version": "1.0.0", "type": "metapackage"}"#);
            upstream.file("index.php", "<?php\n");
        }
        upstream.commit_and_tag("1.0.0");
        let out = dir.path().join("out");
        let port = free_port();
        let config = dir.path().join("farm.toml");
        let text = format!(
            r#"[repository]
base_url = "http://127.0.0.1:{port}/repo/"
output = "{out}"

[build]
workers = {workers}
cache_dir = "{cache}"

[serve]
listen = "127.0.0.1:{port}"
poll_interval = "{poll}"
coalesce = "{coalesce}"
shutdown_grace = "0s"
repository = true
{limits}
github_secret = "{GITHUB_SECRET}"
gitlab_token = "{GITLAB_TOKEN}"
trigger_token = "{TRIGGER_TOKEN}"

[[upstreams]]
key = "acme"
url = "{repo}"
branches = ["main"]

[[upstreams.package_dirs]]
dir = "app/code/Acme"
{base}"#,
            base = if settings.base {
                "\n[[upstreams.single_packages]]\ndir = \"\"\nexcludes = [\"app/code/\"]\n"
            } else {
                ""
            },
            out = out.display(),
            workers = settings.workers,
            cache = dir.path().join("cache").display(),
            poll = settings.poll_interval,
            coalesce = settings.coalesce,
            limits = settings.limits,
            repo = repo_path.display(),
        );
        std::fs::write(&config, text).expect("write config");
        let client = reqwest::blocking::Client::builder().timeout(Duration::from_secs(30)).build().expect("client");
        Served { dir, upstream, out, config, port, process: None, client }
    }

    fn start(&mut self) {
        let process = Process::spawn(
            "serve",
            &binary("coordinator"),
            &["serve", "--config", self.config.to_str().expect("utf-8 path")],
            &[],
        );
        wait_for_port(self.port, Duration::from_secs(60));
        self.process = Some(process);
    }

    fn process(&mut self) -> &mut Process {
        self.process.as_mut().expect("started")
    }

    /// SIGTERM and the exit code.
    fn stop(&mut self) -> i32 {
        let mut process = self.process.take().expect("started");
        process.signal("TERM");
        process.wait(Duration::from_secs(60))
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn status(&self) -> Value {
        let text = self.client.get(self.url("/status")).send().expect("GET /status").text().expect("body");
        serde_json::from_str(&text).expect("status JSON")
    }

    /// Waits until `count` builds finished and the upstream is idle; returns the newest.
    fn wait_builds(&self, count: usize) -> Value {
        let started = Instant::now();
        loop {
            let status = self.status();
            let builds = status["recent_builds"].as_array().cloned().unwrap_or_default();
            if builds.len() >= count && status["upstreams"][0]["state"] == "idle" {
                return builds[0].clone();
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no build #{count}: {status:#}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn metrics(&self) -> String {
        self.client.get(self.url("/metrics")).send().expect("GET /metrics").text().expect("body")
    }

    /// Waits until `count` polls in all found nothing new (`farm_polls_total`).
    fn wait_unchanged_polls(&self, count: u64) {
        let started = Instant::now();
        loop {
            let metrics = self.metrics();
            if counter(&metrics, POLLS_UNCHANGED) >= count {
                return;
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no unchanged poll #{count}: {metrics}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asserts that exactly `count` builds finished, the upstream is idle and no trigger is left
    /// waiting: every trigger handed to the scheduler (`farm_triggers_total`) went into one of the
    /// finished builds (each says how many it took). Then no further build can come until a new
    /// trigger arrives. Returns the triggers.
    fn assert_settled(&self, count: usize) -> u64 {
        let status = self.status();
        let builds = status["recent_builds"].as_array().cloned().unwrap_or_default();
        assert_eq!(builds.len(), count, "unexpected build: {status:#}");
        assert_eq!(status["upstreams"][0]["state"], "idle", "unexpected build: {status:#}");
        let taken: u64 = builds.iter().map(|build| triggers_taken(build["trigger"].as_str().expect("trigger"))).sum();
        let metrics = self.metrics();
        let sent = counter(&metrics, TRIGGERS);
        assert_eq!(sent, taken, "a trigger is waiting for a build: {status:#}\n{metrics}");
        sent
    }

    fn post(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
        let mut request = self.client.post(self.url(path)).body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request.send().expect("POST");
        let status = response.status().as_u16();
        (status, serde_json::from_str(&response.text().unwrap_or_default()).unwrap_or(Value::Null))
    }

    /// A GitHub push delivery, signed with `secret` over `signed_body` (the body itself if None).
    fn github(&self, event: &str, delivery: &str, body: &[u8], secret: Option<&str>) -> (u16, Value) {
        let signature = secret.map(|secret| sign(secret, body));
        let mut headers =
            vec![("content-type", "application/json"), ("x-github-event", event), ("x-github-delivery", delivery)];
        if let Some(signature) = &signature {
            headers.push(("x-hub-signature-256", signature));
        }
        self.post("/hooks/github", &headers, body.to_vec())
    }

    fn archives(&self) -> Vec<String> {
        let mut names: Vec<String> = tests::snapshot(&self.out.join("packages"))
            .keys()
            .map(|p| p.to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".zip"))
            .collect();
        names.sort();
        names
    }

    /// The last build's report and its built `name@version`s.
    fn report(&self) -> (Value, Vec<String>) {
        let report: Value =
            serde_json::from_slice(&std::fs::read(self.out.join(".farm/report.json")).expect("report")).expect("json");
        let built = report["built"]
            .as_array()
            .expect("built")
            .iter()
            .map(|b| format!("{}@{}", b["package"].as_str().unwrap(), b["version"].as_str().unwrap()))
            .collect();
        (report, built)
    }

    fn manifest(&self) -> Value {
        tests::manifest(&self.out)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(process) = self.process.as_mut() {
            process.kill();
        }
    }
}

fn set_module(upstream: &mut Upstream, index: usize, version: &str, text: &str, filler: usize) {
    let name = module_name(index);
    let composer =
        json!({"name": format!("acme/module-{}", name.to_lowercase()), "version": version, "type": "magento2-module"});
    upstream.file(&format!("app/code/Acme/{name}/composer.json"), serde_json::to_vec_pretty(&composer).unwrap());
    upstream.file(&format!("app/code/Acme/{name}/Model/Thing.php"), format!("<?php\n// {text}\n"));
    // Incompressible and different per module, so every archive costs real I/O.
    let mut state = (index as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let filler: Vec<u8> = (0..filler)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    upstream.file(&format!("app/code/Acme/{name}/data.bin"), filler);
}

fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn push_body(repository: &str, git_ref: &str, after: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": git_ref,
        "before": "0000000000000000000000000000000000000000",
        "after": after,
        "repository": {"full_name": repository, "clone_url": "https://example.test/acme/upstream.git"},
        "commits": []
    }))
    .expect("json")
}

fn built_ids(build: &Value) -> usize {
    build["built"].as_u64().expect("built count") as usize
}

const TRIGGERS: &str = "farm_triggers_total{upstream=\"acme\"}";
const POLLS_CHANGED: &str = "farm_polls_total{upstream=\"acme\",result=\"changed\"}";
const POLLS_UNCHANGED: &str = "farm_polls_total{upstream=\"acme\",result=\"unchanged\"}";

/// How many triggers a build took: `10 triggers, first: ...`, or one.
fn triggers_taken(trigger: &str) -> u64 {
    trigger.split_once(" triggers, first: ").map_or(1, |(count, _)| count.parse().expect("a trigger count"))
}

/// A counter's value; 0 before it was first counted (a labelled series appears then).
fn counter(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0, |value| value.trim().parse().expect("a counter"))
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
        .trim()
        .parse()
        .expect("number")
}

#[test]
fn a_signed_push_builds_exactly_the_changed_module() {
    let mut served = Served::new(Settings::default());
    served.start();
    // Startup catches up: three modules and the root package, at the tag and on main.
    let first = served.wait_builds(1);
    assert_eq!(built_ids(&first), 8, "{first:#}");
    assert_eq!(first["trigger"], "startup");
    assert_eq!(served.archives().len(), 8);

    set_module(&mut served.upstream, 1, "1.0.0", "changed", 10);
    let commit = served.upstream.commit("change module 1").to_string();
    let body = push_body("acme/upstream", "refs/heads/main", &commit);
    let (status, answer) = served.github("push", "delivery-1", &body, Some(GITHUB_SECRET));
    assert_eq!((status, &answer["status"]), (202, &json!("accepted")), "{answer}");

    // Only the module: the root package's digest leaves out its excluded module folders. Only
    // main moved, so the tag is not planned again: the other three packages on main are the
    // unchanged ones.
    let second = served.wait_builds(2);
    assert_eq!(built_ids(&second), 1, "{second:#}");
    assert_eq!(second["unchanged"], 3, "{second:#}");
    assert!(second["trigger"].as_str().unwrap().starts_with("github push refs/heads/main"), "{second:#}");
    let archives = served.archives();
    assert_eq!(archives.len(), 9, "{archives:#?}");
    // The dev version moved to the new archive; the old one stays for lock files that name it.
    let dev: Value = serde_json::from_slice(
        &std::fs::read(served.out.join("p2/acme/module-module001~dev.json")).expect("~dev metadata"),
    )
    .unwrap();
    let version = &dev["packages"]["acme/module-module001"][0];
    assert_eq!(version["version"], "dev-main");
    let url = version["dist"]["url"].as_str().unwrap();
    let newest = served.manifest()["packages"]["acme/module-module001@dev-main"]["key"].as_str().unwrap().to_owned();
    assert!(url.ends_with(&newest), "{url} vs {newest}");
    assert_eq!(version["dist"]["reference"], version["dist"]["shasum"]);
    let old_dev = archives.iter().filter(|a| a.starts_with("acme/module-module001-dev-main-")).count();
    assert_eq!(old_dev, 2, "{archives:#?}");

    let metrics = served.client.get(served.url("/metrics")).send().unwrap().text().unwrap();
    assert_eq!(metric(&metrics, "farm_jobs_published_total"), 9.0);
    assert_eq!(metric(&metrics, "farm_jobs_succeeded_total"), 9.0);
    assert_eq!(metric(&metrics, "farm_jobs_failed_total"), 0.0);
    assert!(metric(&metrics, "farm_uploaded_bytes_total") > 0.0);
    assert!(metrics.contains("farm_last_success_timestamp_seconds{upstream=\"acme\"}"), "{metrics}");
    assert!(metrics.contains("farm_build_duration_seconds_count{upstream=\"acme\"} 2"), "{metrics}");
    let html = served.client.get(served.url("/")).send().unwrap().text().unwrap();
    assert!(html.contains("github push refs/heads/main"), "{html}");
    assert_eq!(served.stop(), 0);
}

#[test]
fn a_new_tag_is_found_by_polling_alone() {
    let mut served = Served::new(Settings { poll_interval: "1s", coalesce: "0s", ..Settings::default() });
    served.start();
    let first = served.wait_builds(1);
    assert!(first["trigger"].as_str().unwrap().starts_with("poll"), "{first:#}");
    // Polls that find nothing new build nothing: two polls after the build found nothing, and
    // every trigger went into the one build.
    served.wait_unchanged_polls(2);
    assert_eq!(served.assert_settled(1), 1);
    assert_eq!(counter(&served.metrics(), POLLS_CHANGED), 1);

    set_module(&mut served.upstream, 0, "1.0.1", "first", 10);
    served.upstream.commit_and_tag("1.0.1");
    let second = served.wait_builds(2);
    assert!(second["trigger"].as_str().unwrap().starts_with("poll"), "{second:#}");
    let (report, built) = served.report();
    // The new version at the new tag, and main's new content (it moved along).
    assert_eq!(built, ["acme/module-module000@1.0.1", "acme/module-module000@dev-main"], "{report:#}");
    let p2: Value =
        serde_json::from_slice(&std::fs::read(served.out.join("p2/acme/module-module000.json")).unwrap()).unwrap();
    assert_eq!(p2["packages"]["acme/module-module000"][0]["version"], "1.0.1");
    let unchanged = counter(&served.metrics(), POLLS_UNCHANGED);
    served.wait_unchanged_polls(unchanged + 2);
    assert_eq!(served.assert_settled(2), 2);
    assert_eq!(counter(&served.metrics(), POLLS_CHANGED), 2);
    assert_eq!(served.stop(), 0);
}

#[test]
fn a_burst_of_hooks_gives_one_build() {
    let mut served = Served::new(Settings { coalesce: "3s", ..Settings::default() });
    served.start();
    served.wait_builds(1);
    set_module(&mut served.upstream, 2, "1.0.0", "changed", 10);
    let commit = served.upstream.commit("change module 2").to_string();
    for n in 0..10 {
        // Ten different deliveries (a busy branch): different ids, different bodies.
        let body = push_body("acme/upstream", "refs/heads/main", &format!("{commit}{n}"));
        let (status, answer) = served.github("push", &format!("burst-{n}"), &body, Some(GITHUB_SECRET));
        assert_eq!(status, 202, "{answer}");
    }
    let second = served.wait_builds(2);
    assert!(second["trigger"].as_str().unwrap().starts_with("10 triggers"), "{second:#}");
    assert_eq!(built_ids(&second), 1, "{second:#}");
    // No build follows the coalesced one: the startup trigger and the ten hooks are all taken.
    assert_eq!(served.assert_settled(2), 11);
    assert_eq!(served.stop(), 0);
}

#[test]
fn webhook_security() {
    let mut served = Served::new(Settings::default());
    served.start();
    served.wait_builds(1);
    let body = push_body("acme/upstream", "refs/heads/main", "1111111111111111111111111111111111111111");
    let other = push_body("acme/upstream", "refs/heads/main", "2222222222222222222222222222222222222222");

    // Missing, wrong, and a signature over another body: 401.
    assert_eq!(served.github("push", "d-1", &body, None).0, 401);
    assert_eq!(served.github("push", "d-2", &body, Some("not-the-secret")).0, 401);
    let forged = sign(GITHUB_SECRET, &other);
    let headers = [
        ("content-type", "application/json"),
        ("x-github-event", "push"),
        ("x-github-delivery", "d-3"),
        ("x-hub-signature-256", forged.as_str()),
    ];
    assert_eq!(served.post("/hooks/github", &headers, body.clone()).0, 401);
    // Oversize (limit 64 KiB) and not JSON.
    let mut big = serde_json::from_slice::<Value>(&body).unwrap();
    big["padding"] = json!("x".repeat(100_000));
    let big = serde_json::to_vec(&big).unwrap();
    assert_eq!(served.github("push", "d-4", &big, Some(GITHUB_SECRET)).0, 413);
    let form = [
        ("content-type", "application/x-www-form-urlencoded"),
        ("x-github-event", "push"),
        ("x-github-delivery", "d-5"),
    ];
    assert_eq!(served.post("/hooks/github", &form, b"payload=%7B%7D".to_vec()).0, 415);
    // GitLab and the trigger: wrong or missing tokens.
    let gitlab = serde_json::to_vec(
        &json!({"ref": "refs/heads/main", "after": "1", "project": {"path_with_namespace": "acme/upstream"}}),
    )
    .unwrap();
    let gitlab_headers = |token: &'static str| {
        [("content-type", "application/json"), ("x-gitlab-event", "Push Hook"), ("x-gitlab-token", token)]
    };
    assert_eq!(served.post("/hooks/gitlab", &gitlab_headers("wrong"), gitlab.clone()).0, 401);
    assert_eq!(served.post("/hooks/trigger", &[], Vec::new()).0, 401);
    assert_eq!(served.post("/hooks/trigger", &[("authorization", "Bearer nope")], Vec::new()).0, 401);
    let (status, answer) = served.post(
        "/hooks/trigger",
        &[("authorization", &format!("Bearer {TRIGGER_TOKEN}")), ("content-type", "application/json")],
        br#"{"upstream": "nonexistent"}"#.to_vec(),
    );
    assert_eq!(status, 404, "{answer}");
    // Authentic, but nothing to build: 202 with the reason.
    let unknown = push_body("someone/else", "refs/heads/main", "3333333333333333333333333333333333333333");
    let (status, answer) = served.github("push", "d-6", &unknown, Some(GITHUB_SECRET));
    assert_eq!((status, &answer["status"]), (202, &json!("ignored")), "{answer}");
    let feature = push_body("acme/upstream", "refs/heads/feature", "4444444444444444444444444444444444444444");
    assert_eq!(served.github("push", "d-7", &feature, Some(GITHUB_SECRET)).1["status"], "ignored");
    assert_eq!(served.github("ping", "d-8", b"{\"zen\":\"hi\"}", Some(GITHUB_SECRET)).0, 200);
    // None of that built anything: no trigger but the startup one was sent (a trigger is
    // counted before the hook is answered).
    assert_eq!(served.assert_settled(1), 1);

    // One authentic delivery builds; its replay, and the same body under a new id, do not.
    let (status, answer) = served.github("push", "d-9", &body, Some(GITHUB_SECRET));
    assert_eq!((status, &answer["status"]), (202, &json!("accepted")), "{answer}");
    assert_eq!(served.github("push", "d-9", &body, Some(GITHUB_SECRET)).0, 409);
    assert_eq!(served.github("push", "d-10", &body, Some(GITHUB_SECRET)).0, 409);
    let second = served.wait_builds(2);
    assert!(second["trigger"].as_str().unwrap().starts_with("github push"), "{second:#}");
    assert_eq!(served.assert_settled(2), 2);

    for path in ["/healthz", "/readyz"] {
        assert_eq!(served.client.get(served.url(path)).send().unwrap().status().as_u16(), 200, "{path}");
    }
    let metrics = served.client.get(served.url("/metrics")).send().unwrap().text().unwrap();
    assert_eq!(metric(&metrics, "farm_webhook_requests_total{source=\"github\",status=\"401\"}"), 3.0);
    assert_eq!(metric(&metrics, "farm_webhook_requests_total{source=\"github\",status=\"409\"}"), 2.0);
    let lines = served.process().lines();
    for secret in [GITHUB_SECRET, GITLAB_TOKEN, TRIGGER_TOKEN] {
        assert!(!lines.iter().any(|l| l.contains(secret)), "a secret was logged");
    }
    // Logs are JSON (stderr is a pipe) and the build's lines carry its id.
    let build_line = lines.iter().find(|l| l.contains("plan ready")).expect("a plan line");
    let parsed: Value = serde_json::from_str(build_line).expect("JSON log line");
    assert!(parsed["spans"][0]["build_id"].is_string(), "{parsed}");
    assert_eq!(served.stop(), 0);
}

#[test]
fn a_restarted_coordinator_resumes_without_rebuilding() {
    let settings = Settings { modules: 40, filler: 1_500_000, workers: 1, base: false, ..Settings::default() };
    let mut served = Served::new(settings);
    served.start();
    // Stop half-way through the first build (80 jobs).
    assert!(served.process().wait_for("/80 done", 10, Duration::from_secs(120)), "no progress");
    assert_eq!(served.stop(), 0);
    let manifest = served.manifest();
    let recorded: Vec<String> = manifest["packages"].as_object().unwrap().keys().cloned().collect();
    assert!(recorded.len() >= 10 && recorded.len() < 80, "{} recorded", recorded.len());
    assert!(served.out.join(".farm/inflight/acme.json").is_file(), "no in-flight record");
    assert!(manifest["upstreams"].get("acme").is_none(), "an interrupted build is not complete");

    served.start();
    let resumed = served.wait_builds(1);
    let (report, built) = served.report();
    let rebuilt: Vec<&String> = built.iter().filter(|id| recorded.contains(id)).collect();
    assert!(rebuilt.is_empty(), "rebuilt what was published: {rebuilt:?}");
    assert_eq!(report["unchanged"].as_array().unwrap().len(), recorded.len(), "{resumed:#}");
    let resumed_ids = report["resumed"].as_array().unwrap().len();
    assert_eq!(built.len() + resumed_ids + recorded.len(), 80, "{resumed:#}");
    assert!(report["failed"].as_array().unwrap().is_empty(), "{report:#}");
    assert!(!served.out.join(".farm/inflight/acme.json").exists(), "in-flight record left behind");
    assert_eq!(served.stop(), 0);

    // The result is what one uninterrupted build makes, byte for byte.
    let fresh = served.dir.path().join("fresh");
    let mut config = shared::config::FarmConfig::load(&served.config).unwrap();
    config.repository.output = Some(fresh.clone());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let report = runtime.block_on(tests::build(config, &fresh));
    assert_eq!(report.built.len(), 80);
    assert_eq!(tests::archive_rows(&fresh.join("packages")), tests::archive_rows(&served.out.join("packages")));
    assert_eq!(
        std::fs::read(fresh.join("packages.json")).unwrap(),
        std::fs::read(served.out.join("packages.json")).unwrap()
    );
}

#[test]
fn a_killed_coordinator_resumes_from_the_stored_archives() {
    let settings = Settings { modules: 40, filler: 1_500_000, workers: 1, base: false, ..Settings::default() };
    let mut served = Served::new(settings);
    served.start();
    assert!(served.process().wait_for("/80 done", 10, Duration::from_secs(120)), "no progress");
    // No chance to save anything: the manifest is saved every 100 results, so it has none.
    served.process().kill();
    served.process = None;
    let stored = served.archives();
    assert!(stored.len() >= 10 && stored.len() < 80, "{} stored", stored.len());
    assert!(served.out.join(".farm/inflight/acme.json").is_file(), "no in-flight record");

    served.start();
    served.wait_builds(1);
    let (report, _) = served.report();
    // Everything stored before the kill is checked and recorded, not built again.
    assert_eq!(report["resumed"].as_array().unwrap().len(), stored.len(), "{report:#}");
    assert_eq!(report["built"].as_array().unwrap().len(), 80 - stored.len(), "{report:#}");
    assert!(report["failed"].as_array().unwrap().is_empty(), "{report:#}");
    assert_eq!(served.archives().len(), 80);
    assert_eq!(served.manifest()["packages"].as_object().unwrap().len(), 80);
    assert_eq!(served.stop(), 0);
}
