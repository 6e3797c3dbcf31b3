//! Repository health on a generated magento2-like upstream: a broken sibling pin in a nightly
//! shows as broken on `/status` (and in the metric, and to the real Composer client), the next
//! nightly that fixes it as healthy; a flavour that leaks what it leaves out is reported; a
//! blocking gate publishes nothing new.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use tests::{Upstream, build, free_port, load_config};

use super::distributions::{config_text, magento_files, release_config, upstream_for_release, write_resources};

/// A magento2-like upstream at tag 2.4.7 (no third-party requirement, so Composer can resolve
/// everything from the repository alone).
fn upstream(temp: &Path) {
    let mut upstream = Upstream::create(&temp.join("upstream/magento2.git"));
    let versions = BTreeMap::from([
        ("framework", "103.0.7"),
        ("module-catalog", "104.0.7"),
        ("module-graph-ql", "100.4.7"),
        ("module-theme", "101.1.7"),
        ("module-catalog-graph-ql", "100.4.7"),
        ("theme-frontend-luma", "100.4.7"),
        ("magento2ce", "2.4.7"),
    ]);
    magento_files(&mut upstream, "magento", &versions, false);
    upstream.commit_and_tag("2.4.7");
}

/// An upstream nightly of `date`; `broken` pins the catalog module's theme requirement to a
/// version that does not exist (a transform runs after the sibling pins).
fn nightly_config(temp: &Path, port: u16, date: &str, broken: bool) -> PathBuf {
    let target = format!(
        r#"[target]
versions = "nightly"
date = "{date}"
resources = "{resources}"

[serve]
listen = "127.0.0.1:{port}"
poll_interval = "0s"
coalesce = "0s"
shutdown_grace = "0s"

[health]

[[health.probes]]
name = "product"
minimum_stability = "alpha"
require = {{ "magento/product-community-edition" = "*" }}
timeout = "5m"
"#,
        resources = temp.join("resource").display()
    );
    let transform = if broken {
        "\n[[upstreams.transforms]]\npackage = \"magento/module-catalog\"\nactions = [{ set = [\"require\", \"magento/module-theme\"], value = \"9.9.9\" }]\n"
    } else {
        ""
    };
    let text = config_text("https://nightly.example/", &target, "magento", "magento", transform);
    let path = temp.join(format!("nightly-{date}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// `coordinator serve` in this process until the health record holds `builds` builds; returns
/// the status document and the metrics.
async fn serve_until(temp: &Path, config: &Path, port: u16, builds: usize) -> (Value, String, String) {
    let config = load_config(config, &temp.join("upstream"), &temp.join("cache"), 2);
    let options = coordinator::serve::ServeOptions { config, out: temp.join("out") };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(coordinator::serve::run(options, listener, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("http://127.0.0.1:{port}{path}"));
        async move { request.send().await.unwrap().text().await.unwrap() }
    };
    let status = loop {
        let status: Value = serde_json::from_str(&get("/status").await).unwrap();
        let recorded = status["health"]["builds"].as_array().map_or(0, Vec::len);
        if recorded >= builds && status["upstreams"][0]["state"] == "idle" {
            break status;
        }
        assert!(!server.is_finished(), "serve stopped: {status:#}");
        // Waiting for an event (the record growing), not for a time.
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (metrics, page) = (get("/metrics").await, get("/").await);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    (status, metrics, page)
}

fn metric(metrics: &str, name: &str) -> String {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in\n{metrics}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_nightly_is_broken_on_the_status_page_and_the_next_one_that_fixes_it_healthy() {
    let temp = tempfile::tempdir().unwrap();
    upstream(temp.path());
    write_resources(&temp.path().join("resource"));
    let port = free_port();

    let (status, metrics, page) =
        serve_until(temp.path(), &nightly_config(temp.path(), port, "20261201", true), port, 1).await;
    let health = &status["health"];
    assert_eq!(health["state"], "broken", "{health:#}");
    let check = &health["latest"]["consistency"];
    assert_eq!(check["problem_count"], 1, "{check:#}");
    let problem = &check["problems"][0];
    assert_eq!(problem["package"], "magento/module-catalog 104.0.7.1-a20261201");
    assert_eq!(problem["requires"], "magento/module-theme");
    assert_eq!(problem["constraint"], "9.9.9");
    assert_eq!(problem["available"], serde_json::json!(["101.1.7.1-a20261201"]));
    assert_eq!(problem["chain"][0], "magento/product-community-edition 2.4.7.1-a20261201");
    assert_eq!(metric(&metrics, "farm_repository_healthy{probe=\"consistency\"}"), "0");
    // The real client agrees, in its own words.
    let probe = &health["latest"]["probes"][0];
    assert_eq!(probe["status"], "failed", "{probe:#}");
    let explanation = probe["explanation"].as_str().unwrap();
    assert!(explanation.contains("magento/module-theme") && explanation.contains("9.9.9"), "{explanation}");
    assert_eq!(metric(&metrics, "farm_repository_healthy{probe=\"product\"}"), "0");
    assert!(page.contains("BROKEN"), "{page}");
    assert!(page.contains("requires magento/module-theme 9.9.9, but no published version matches"), "{page}");
    assert!(page.contains("Probe product failed"), "{page}");
    assert!(page.contains("No healthy build yet."), "{page}");

    // The next nightly, without the bad pin: healthy, and the page shows both builds.
    let (status, metrics, page) =
        serve_until(temp.path(), &nightly_config(temp.path(), port, "20261202", false), port, 2).await;
    let health = &status["health"];
    assert_eq!(health["state"], "healthy", "{health:#}");
    let builds = health["builds"].as_array().unwrap();
    assert_eq!(builds.iter().map(|b| b["state"].as_str().unwrap()).collect::<Vec<_>>(), ["healthy", "broken"]);
    assert_eq!(health["last_healthy_build"], builds[0]["build_id"]);
    assert_eq!(health["since_build"], builds[0]["build_id"]);
    // The broken catalog version is still published; nothing current needs it.
    assert_eq!(health["latest"]["consistency"]["problem_count"], 0);
    assert_eq!(health["latest"]["consistency"]["historical_count"], 1);
    let probe = &health["latest"]["probes"][0];
    assert_eq!(probe["status"], "passed", "{probe:#}");
    let resolved: Vec<&str> = probe["resolved"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(resolved.contains(&"magento/product-community-edition 2.4.7.1-a20261202"), "{resolved:?}");
    assert!(resolved.contains(&"magento/module-theme 101.1.7.1-a20261202"), "{resolved:?}");
    assert_eq!(metric(&metrics, "farm_repository_healthy{probe=\"consistency\"}"), "1");
    assert_eq!(metric(&metrics, "farm_repository_healthy{probe=\"product\"}"), "1");
    assert!(page.contains("HEALTHY"), "{page}");
    for build in builds {
        assert!(page.contains(build["build_id"].as_str().unwrap()), "{page}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flavour_whose_product_installs_a_module_it_leaves_out_is_reported() {
    let temp = tempfile::tempdir().unwrap();
    upstream_for_release(temp.path());
    // "headful" leaves out GraphQL modules, but not closed: the catalog GraphQL module it keeps
    // would bring the GraphQL module back.
    let config = release_config(temp.path(), "https://release.example/", Some("2.0.0"))
        .replace("exclude = [\"mage-os/module-*graph-ql*\"]\nclosed = true", "exclude = [\"mage-os/module-graph-ql\"]");
    let path = temp.path().join("release.toml");
    std::fs::write(&path, config).unwrap();
    let report = build(
        load_config(&path, &temp.path().join("upstream"), &temp.path().join("cache"), 2),
        &temp.path().join("out"),
    )
    .await;
    let health = report.health.as_ref().unwrap();
    let leaks: Vec<&str> = health
        .consistency
        .as_ref()
        .unwrap()
        .problems
        .iter()
        .filter(|p| p.kind == "flavour_leak")
        .map(|p| p.message.as_str())
        .collect();
    assert_eq!(
        leaks,
        [
            "mage-os/product-headful-edition 2.0.0 leaves out mage-os/module-graph-ql, but installs it (2.0.0) through mage-os/module-catalog-graph-ql 2.0.0"
        ],
        "{}",
        report.summary()
    );
    assert!(health.is_broken());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocking_gate_with_a_failing_probe_publishes_nothing_new() {
    let temp = tempfile::tempdir().unwrap();
    upstream_for_release(temp.path());
    let out = temp.path().join("out");
    let config = |release: Option<&str>, gate: &str| {
        let text = release_config(temp.path(), "https://release.example/", release).replace(
            "[target]",
            &format!(
                "[health]\ngate = \"{gate}\"\n\n[[health.probes]]\nname = \"release\"\nrequire = {{ \"mage-os/product-community-edition\" = \"2.0.0\" }}\n\n[target]"
            ),
        );
        let path = temp.path().join(format!("release-{gate}.toml"));
        std::fs::write(&path, text).unwrap();
        load_config(&path, &temp.path().join("upstream"), &temp.path().join("cache"), 2)
    };
    // The history alone: published (the probe asks for a release it does not have, and fails).
    let first = build(config(None, "report"), &out).await;
    assert!(first.health.as_ref().unwrap().published);
    let metadata = |out: &Path| -> BTreeMap<PathBuf, Vec<u8>> {
        tests::snapshot(out)
            .into_iter()
            .filter(|(path, _)| !path.starts_with(".farm") && !path.starts_with("packages"))
            .collect()
    };
    let before = metadata(&out);
    assert!(before.keys().any(|p| p.starts_with("p2")), "{:?}", before.keys());

    // The release, with a probe that fails and the gate blocking: built, stored, not published.
    let mut blocked = config(Some("2.0.0"), "block");
    blocked.health.probes[0].require = [("mage-os/product-community-edition".to_owned(), "3.0.0".to_owned())].into();
    let report = build(blocked, &out).await;
    assert!(report.failed.is_empty(), "{}", report.summary());
    assert!(!report.built.is_empty());
    let health = report.health.as_ref().unwrap();
    assert_eq!(health.probes[0].status, coordinator::health::ProbeStatus::Failed, "{}", report.summary());
    assert!(!health.published);
    let why = health.blocked.as_deref().unwrap();
    assert!(why.contains("probes failed: release"), "{why}");
    assert!(!report.succeeded(false));
    assert_eq!(metadata(&out), before, "the gate let new metadata through");
    assert!(report.summary().contains("not published: health gate"), "{}", report.summary());
}
