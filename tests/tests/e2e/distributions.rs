//! The Mage-OS distribution targets on a generated magento2-like upstream: upstream nightly,
//! Mage-OS nightly and Mage-OS release (history, new release, metapackages, aliases, flavours),
//! installed with the real Composer client.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tests::{PhpServer, Upstream, build, composer, composer_project, free_port, load_config};

pub(crate) const DATE: &str = "20261121";

/// A magento2-like repository: a framework, modules (one GraphQL pair), a theme, a root
/// composer.json. `vendor` names the packages; `versions` gives each package's version (absent:
/// no version key).
pub(crate) fn magento_files(
    upstream: &mut Upstream,
    vendor: &str,
    versions: &BTreeMap<&str, &str>,
    with_new_module: bool,
) {
    upstream.remove_prefix("");
    let version = |name: &str| versions.get(name).map(|v| format!(r#","version":"{v}""#)).unwrap_or_default();
    let package = |upstream: &mut Upstream, dir: &str, name: &str, kind: &str, require: &str, extra: &str| {
        let json = format!(
            r#"{{"name":"{vendor}/{name}","description":"{name}","type":"{kind}"{}{extra},"license":["OSL-3.0"],"require":{{"php":">=7.4"{require}}}}}"#,
            version(name)
        );
        upstream.file(&format!("{dir}/composer.json"), json);
        upstream.file(&format!("{dir}/registration.php"), format!("<?php // {name}\n"));
    };
    package(upstream, "lib/internal/Magento/Framework", "framework", "magento2-library", "", "");
    package(
        upstream,
        "app/code/Magento/Theme",
        "module-theme",
        "magento2-module",
        &format!(r#","{vendor}/framework":"*""#),
        "",
    );
    package(
        upstream,
        "app/code/Magento/Catalog",
        "module-catalog",
        "magento2-module",
        &format!(r#","{vendor}/framework":"*","{vendor}/module-theme":"*""#),
        &format!(r#","suggest":{{"{vendor}/module-catalog-sample-data":"100.4.*","{vendor}/module-theme":"*"}}"#),
    );
    package(
        upstream,
        "app/code/Magento/GraphQl",
        "module-graph-ql",
        "magento2-module",
        &format!(r#","{vendor}/framework":"*""#),
        "",
    );
    package(
        upstream,
        "app/code/Magento/CatalogGraphQl",
        "module-catalog-graph-ql",
        "magento2-module",
        &format!(r#","{vendor}/module-catalog":"*","{vendor}/module-graph-ql":"*""#),
        "",
    );
    package(
        upstream,
        "app/design/frontend/Magento/luma",
        "theme-frontend-luma",
        "magento2-theme",
        &format!(r#","{vendor}/module-theme":"*","{vendor}/module-catalog":"*""#),
        "",
    );
    if with_new_module {
        package(
            upstream,
            "app/code/Magento/Fresh",
            "module-fresh",
            "magento2-module",
            &format!(r#","{vendor}/framework":"*""#),
            "",
        );
    }
    let names = [
        "framework",
        "module-theme",
        "module-catalog",
        "module-graph-ql",
        "module-catalog-graph-ql",
        "theme-frontend-luma",
    ];
    let replace: Vec<String> = names.iter().map(|n| format!(r#""{vendor}/{n}":"*""#)).collect();
    upstream.file(
        "composer.json",
        format!(
            r#"{{"name":"{vendor}/magento2ce","description":"Magento 2","type":"project"{},"license":["OSL-3.0"],"require":{{"php":">=7.4"}},"replace":{{{}}},"minimum-stability":"stable"}}"#,
            version("magento2ce"),
            replace.join(",")
        ),
    );
    upstream.file("index.php", "<?php // entry\n").file("app/etc/di.xml", "<config/>\n");
}

/// The history files and templates (the reference keeps them under resource/).
pub(crate) fn write_resources(dir: &Path) {
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let template = r#"{"name":"magento/magento2-base","description":"Magento 2 (Open Source)","type":"magento2-component","license":["OSL-3.0"],"require":{"php":"~7.4"},"extra":{"map":[["index.php","index.php"]]}}"#;
    write("composer-templates/magento/magento2-base/template.json", template);
    write(
        "composer-templates/mage-os/magento2-base/template.json",
        &template
            .replace(r#""type""#, r#""version":0,"type""#)
            .replace("magento/magento2-base", "mage-os/magento2-base"),
    );
    write(
        "history/mage-os/magento2-base/1.0.0.json",
        r#"{"name":"mage-os/magento2-base","description":"history 1.0.0","type":"magento2-component","version":"1.0.0","require":{"php":">=7.4","mage-os/framework":"1.0.0"},"replace":{"z/z":"1","a/a":"1"}}"#,
    );
    write(
        "history/mage-os/product-community-edition/1.0.0.json",
        r#"{"require":{"acme/add-on":"^1.0"},"extra":{"magento_version":"2.4.6"}}"#,
    );
    write(
        "history/mage-os/project-community-edition/1.0.0.json",
        r#"{"require":{"mage-os/composer-root-update-plugin":"^2.0"}}"#,
    );
    write("composer-templates/mage-os/project-community-edition/dependencies-template.json", r#"{"dependencies":{}}"#);
}

pub(crate) fn config_text(
    base_url: &str,
    target: &str,
    vendor: &str,
    template_vendor: &str,
    extra_upstream: &str,
) -> String {
    format!(
        r#"
[repository]
base_url = "{base_url}"

{target}

[[upstreams]]
key = "magento2"
url = "https://github.com/mage-os/magento2.git"
ref = "main"
vendor = "{vendor}"
from_tag = "1.0.0"
{extra_upstream}

[[upstreams.package_dirs]]
dir = "app/code/Magento"

[[upstreams.single_packages]]
label = "base"
dir = ""
composer_template = "composer-templates/{template_vendor}/magento2-base/template.json"
excludes = ["app/code/", "app/design/", "lib/internal/Magento/Framework/"]
empty_dirs = ["app/code/Magento"]

[[upstreams.single_packages]]
dir = "lib/internal/Magento/Framework"

[[upstreams.single_packages]]
dir = "app/design/frontend/Magento/luma"

[[upstreams.metapackages]]
name = "project-community-edition"
kind = "project"

[[upstreams.metapackages]]
name = "product-community-edition"
kind = "product"
"#
    )
}

pub(crate) struct Built {
    pub(crate) out: PathBuf,
    pub(crate) report: coordinator::report::BuildReport,
}

impl Built {
    /// name@version → composer.json inside the archive (from the manifest).
    pub(crate) fn packages(&self) -> BTreeMap<String, Value> {
        let manifest = tests::manifest(&self.out);
        manifest["packages"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(id, entry)| (id.clone(), entry["composer"].clone()))
            .collect()
    }

    pub(crate) fn composer(&self, id: &str) -> Value {
        self.packages()
            .remove(id)
            .unwrap_or_else(|| panic!("{id} not built; built: {:?}", self.packages().keys().collect::<Vec<_>>()))
    }
}

pub(crate) async fn run(temp: &Path, name: &str, config: &str) -> Built {
    let path = temp.join(format!("{name}.toml"));
    std::fs::write(&path, config).unwrap();
    let config = load_config(&path, &temp.join("upstream"), &temp.join("cache"), 2);
    let out = temp.join(name);
    let report = build(config, &out).await;
    assert!(report.failed.is_empty() && report.repository_failures.is_empty(), "{}", report.summary());
    Built { out, report }
}

/// Upstream at tag 2.4.7 with assorted version shapes, `main` one commit ahead with a module the
/// tag does not have.
fn upstream_for_nightly(temp: &Path, vendor: &str) {
    let mut upstream = Upstream::create(&temp.join("upstream/magento2.git"));
    let tagged = BTreeMap::from([
        ("framework", "103.0.7"),
        ("module-catalog", "104.0.7-p1"),
        ("module-graph-ql", "100.4.7-beta1"),
        ("module-theme", "1.0-dev"),
        ("theme-frontend-luma", "100.4.7.3"),
        ("magento2ce", "2.4.7"),
    ]);
    // A third-party magento/* package this build does not make.
    let third_party = |upstream: &mut Upstream| {
        let entry = upstream.files.get_mut("app/code/Magento/Catalog/composer.json").unwrap();
        let text = String::from_utf8(entry.0.clone()).unwrap();
        entry.0 = text
            .replacen(r#""require":{"php":">=7.4""#, r#""require":{"php":">=7.4","magento/zend-db":"^1.16""#, 1)
            .into_bytes();
    };
    magento_files(&mut upstream, vendor, &tagged, false);
    third_party(&mut upstream);
    upstream.commit_and_tag("2.4.7");
    magento_files(&mut upstream, vendor, &tagged, true);
    third_party(&mut upstream);
    upstream.file("app/code/Magento/Catalog/Model.php", "<?php // changed on the branch\n");
    upstream.commit("develop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_nightly_versions_and_sibling_pins() {
    let temp = tempfile::tempdir().unwrap();
    upstream_for_nightly(temp.path(), "magento");
    write_resources(&temp.path().join("resource"));
    let target = format!(
        "[target]\nversions = \"nightly\"\ndate = \"{DATE}\"\nresources = \"{}\"",
        temp.path().join("resource").display()
    );
    let built = run(
        temp.path(),
        "upstream-nightly",
        &config_text("https://upstream-nightly.example", &target, "magento", "magento", ""),
    )
    .await;
    let ids: Vec<String> = built.packages().keys().cloned().collect();
    let expected = [
        "magento/framework@103.0.7.1-a20261121",
        "magento/magento2-base@2.4.7.1-a20261121",
        "magento/module-catalog-graph-ql@2.4.7.1-a20261121",
        "magento/module-catalog@104.0.7.1-a20261121+p1",
        "magento/module-fresh@0.0.1.1-a20261121",
        "magento/module-graph-ql@100.4.7.1-a20261121+beta1",
        "magento/module-theme@1.0.1-a20261121+dev",
        "magento/product-community-edition@2.4.7.1-a20261121",
        "magento/project-community-edition@2.4.7.1-a20261121",
        "magento/theme-frontend-luma@100.4.7.4-a20261121",
    ];
    assert_eq!(ids, expected, "{}", built.report.summary());
    // Siblings are pinned to each other's nightly versions; the sample-data suggestion gets its prefix.
    let graph = built.composer("magento/module-catalog-graph-ql@2.4.7.1-a20261121");
    assert_eq!(graph["require"]["magento/module-catalog"], "104.0.7.1-a20261121+p1");
    assert_eq!(graph["require"]["magento/module-graph-ql"], "100.4.7.1-a20261121+beta1");
    let catalog = built.composer("magento/module-catalog@104.0.7.1-a20261121+p1");
    assert_eq!(catalog["suggest"]["magento/module-catalog-sample-data"], "Sample Data version: 100.4.*");
    assert_eq!(catalog["suggest"]["magento/module-theme"], "1.0.1-a20261121+dev");
    // The product requires every package at its nightly version, the base package last.
    let product = built.composer("magento/product-community-edition@2.4.7.1-a20261121");
    let require = product["require"].as_object().unwrap();
    assert_eq!(require["magento/framework"], "103.0.7.1-a20261121");
    assert_eq!(require["magento/theme-frontend-luma"], "100.4.7.4-a20261121");
    assert_eq!(require.keys().next_back().unwrap(), "magento/magento2-base");
    assert_eq!(product["type"], "metapackage");
    let project = built.composer("magento/project-community-edition@2.4.7.1-a20261121");
    assert_eq!(project["minimum-stability"], "alpha");
    assert_eq!(project["require"]["magento/product-community-edition"], "2.4.7.1-a20261121");
    assert_eq!(project["repositories"][0]["url"], "https://upstream-nightly.example");
    // The base package: the template, its require kept (no dependency list given) and reported.
    let base = built.composer("magento/magento2-base@2.4.7.1-a20261121");
    assert_eq!(base["extra"]["map"][0][0], "index.php");
    assert!(built.report.inputs.base_require.as_deref().unwrap().starts_with("template (not analysed"));
    assert_eq!(built.report.inputs.date.as_deref(), Some("20261121 (configured)"));
    assert_eq!(built.report.inputs.nightly_bases["magento2"], "2.4.7");
    let archive = std::fs::read(built.out.join("packages/magento/magento2-base-2.4.7.1-a20261121.zip")).unwrap();
    let names = zip_names(&archive);
    assert!(names.contains(&"index.php".to_owned()) && names.contains(&"app/code/Magento/".to_owned()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("app/code/Magento/Catalog")), "{names:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mage_os_nightly_renames_and_replaces() {
    let temp = tempfile::tempdir().unwrap();
    upstream_for_nightly(temp.path(), "magento");
    let resources = temp.path().join("resource");
    write_resources(&resources);
    let versions = temp.path().join("upstream-release.lock");
    std::fs::write(
        &versions,
        r#"{"packages":[{"name":"magento/module-catalog","version":"104.0.7-p3"},{"name":"magento/framework","version":"103.0.7-p3"},{"name":"magento/product-community-edition","version":"2.4.7-p3"},{"name":"magento/magento2-base","version":"2.4.7-p3"}]}"#,
    )
    .unwrap();
    let target = format!(
        "[target]\nversions = \"nightly\"\nvendor = \"mage-os\"\ndate = \"{DATE}\"\nresources = \"{}\"\nupstream_versions = \"{}\"\n[[target.flavours]]\nname = \"headful\"\nexclude = [\"mage-os/module-*graph-ql*\"]\nclosed = true",
        resources.display(),
        versions.display()
    );
    let built =
        run(temp.path(), "nightly", &config_text("https://nightly.example", &target, "mage-os", "magento", "")).await;
    let catalog = built.composer("mage-os/module-catalog@104.0.7.1-a20261121+p1");
    assert_eq!(catalog["name"], "mage-os/module-catalog");
    let require = catalog["require"].as_object().unwrap();
    assert_eq!(require["mage-os/framework"], "103.0.7.1-a20261121");
    assert_eq!(require["magento/zend-db"], "^1.16", "a magento/* package not built keeps its name");
    // The upstream version the package replaces, appended as the last key.
    assert_eq!(shared::json::stringify_compact(&catalog["replace"]), r#"{"magento/module-catalog":"104.0.7-p3"}"#);
    assert_eq!(catalog.as_object().unwrap().keys().next_back().unwrap(), "replace");
    // A sample-data package that is not built keeps its magento name and gets the prefix.
    assert_eq!(catalog["suggest"]["magento/module-catalog-sample-data"], "Sample Data version: 100.4.*");
    let theme = built.composer("mage-os/module-theme@1.0.1-a20261121+dev");
    assert!(theme.get("replace").is_none(), "no upstream version: no replace entry");
    let product = built.composer("mage-os/product-community-edition@2.4.7.1-a20261121");
    assert_eq!(product["extra"]["magento_version"], "2.4.7-p3");
    assert_eq!(product["require"]["mage-os/module-catalog"], "104.0.7.1-a20261121+p1");
    let keys: Vec<&String> = product["require"].as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "the Mage-OS product sorts its require");
    let base = built.composer("mage-os/magento2-base@2.4.7.1-a20261121");
    assert_eq!(base["replace"]["magento/magento2-base"], "2.4.7-p3");
    // A flavour is versioned with the product.
    let headful = built.composer("mage-os/product-headful-edition@2.4.7.1-a20261121");
    let require = headful["require"].as_object().unwrap();
    assert!(
        require.contains_key("mage-os/module-catalog") && !require.keys().any(|k| k.contains("graph-ql")),
        "{require:?}"
    );
    assert_eq!(
        built.composer("mage-os/project-headful-edition@2.4.7.1-a20261121")["require"]["mage-os/product-headful-edition"],
        "2.4.7.1-a20261121"
    );
    assert!(!built.packages().keys().any(|id| id.starts_with("magento/")), "nightly builds no aliases");
    assert_eq!(built.report.inputs.upstream_versions.as_ref().unwrap().entries, 4);
}

/// Release upstream: tag 1.0.0 carries Mage-OS names (a published release), `main` carries the
/// upstream magento names and versions the new release is made from.
pub(crate) fn upstream_for_release(temp: &Path) {
    let mut upstream = Upstream::create(&temp.join("upstream/magento2.git"));
    let history = BTreeMap::from([
        ("framework", "1.0.0"),
        ("module-catalog", "1.0.0"),
        ("module-graph-ql", "1.0.0"),
        ("module-theme", "1.0.0"),
        ("module-catalog-graph-ql", "1.0.0"),
        ("theme-frontend-luma", "1.0.0"),
        ("magento2ce", "1.0.0"),
    ]);
    magento_files(&mut upstream, "mage-os", &history, false);
    upstream.commit_and_tag("1.0.0");
    let current = BTreeMap::from([
        ("framework", "103.0.7-p3"),
        ("module-catalog", "104.0.7-p3"),
        ("module-graph-ql", "100.4.7-p3"),
        ("module-theme", "101.1.7-p3"),
        ("module-catalog-graph-ql", "100.4.7-p3"),
        ("theme-frontend-luma", "100.4.7-p3"),
        ("magento2ce", "2.4.7-p3"),
    ]);
    magento_files(&mut upstream, "magento", &current, true);
    upstream.commit("upstream 2.4.7-p3");
}

pub(crate) fn release_config(temp: &Path, base_url: &str, release: Option<&str>) -> String {
    let resources = temp.join("resource");
    write_resources(&resources);
    let versions = temp.join("upstream.json");
    let names = [
        "framework",
        "module-catalog",
        "module-graph-ql",
        "module-theme",
        "module-catalog-graph-ql",
        "theme-frontend-luma",
    ];
    let mut map: serde_json::Map<String, Value> =
        names.iter().map(|n| (format!("magento/{n}"), Value::from("100.4.7-p3"))).collect();
    map.insert("magento/module-catalog".into(), "104.0.7-p3".into());
    map.insert("magento/product-community-edition".into(), "2.4.7-p3".into());
    std::fs::write(&versions, serde_json::to_vec(&map).unwrap()).unwrap();
    let base_require = temp.join("base-require.json");
    std::fs::write(&base_require, r#"{"php":">=7.4","magento/framework":"103.0.*"}"#).unwrap();
    let release = release.map(|r| format!("release = \"{r}\"")).unwrap_or_default();
    let target = format!(
        r#"[target]
versions = "release"
vendor = "mage-os"
{release}
resources = "{}"
upstream_versions = "{}"
base_require = "{}"

[[target.flavours]]
name = "minimal"
include = ["php", "mage-os/framework", "mage-os/module-theme", "mage-os/magento2-base"]

[[target.flavours]]
name = "headless"
description = "Headless: no storefront theme"
exclude_types = ["magento2-theme"]
closed = true

[[target.flavours]]
name = "headful"
description = "No GraphQL"
exclude = ["mage-os/module-*graph-ql*"]
closed = true
"#,
        resources.display(),
        versions.display(),
        base_require.display()
    );
    config_text(base_url, &target, "mage-os", "mage-os", "")
        .replace("dir = \"\"\ncomposer_template", "dir = \"\"\nsort_links_since = \"3.2.1\"\ncomposer_template")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mage_os_release_with_history_aliases_and_flavours_installs_with_composer() {
    let temp = tempfile::tempdir().unwrap();
    upstream_for_release(temp.path());
    let port = free_port();
    let base_url = format!("http://127.0.0.1:{port}/");
    let history_only = run(temp.path(), "history", &release_config(temp.path(), &base_url, None)).await;
    let built = run(temp.path(), "release", &release_config(temp.path(), &base_url, Some("2.0.0"))).await;

    // History: the tags as tagged; the base package from its history file, links sorted.
    let base = built.composer("mage-os/magento2-base@1.0.0");
    assert_eq!(base["description"], "history 1.0.0");
    // Below the sorting boundary (3.2.1) the published order stays.
    assert_eq!(shared::json::stringify_compact(&base["replace"]), r#"{"z/z":"1","a/a":"1"}"#);
    let history_product = built.composer("mage-os/product-community-edition@1.0.0");
    assert_eq!(history_product["require"]["acme/add-on"], "^1.0");
    // The history is byte-identical with and without a new release.
    for (id, entry) in manifest_entries(&history_only.out) {
        let again = &manifest_entries(&built.out)[&id];
        assert_eq!(entry["sha1"], again["sha1"], "{id} differs when a release is added");
    }

    // The new release: one version, the vendor rename, pins and replace entries.
    let catalog = built.composer("mage-os/module-catalog@2.0.0");
    assert_eq!(catalog["require"]["mage-os/framework"], "2.0.0");
    assert_eq!(catalog["suggest"]["mage-os/module-catalog-sample-data"], "Sample Data version: 2.0.0");
    assert_eq!(shared::json::stringify_compact(&catalog["replace"]), r#"{"magento/module-catalog":"104.0.7-p3"}"#);
    let fresh = built.composer("mage-os/module-fresh@2.0.0");
    assert!(fresh.get("replace").is_none());
    let base = built.composer("mage-os/magento2-base@2.0.0");
    assert_eq!(shared::json::stringify_compact(&base["require"]), r#"{"mage-os/framework":"2.0.0","php":">=7.4"}"#);
    let product = built.composer("mage-os/product-community-edition@2.0.0");
    assert_eq!(product["extra"]["magento_version"], "2.4.7-p3");
    assert_eq!(product["require"]["mage-os/magento2-base"], "2.0.0");
    let project = built.composer("mage-os/project-community-edition@2.0.0");
    assert_eq!(project["require"]["mage-os/product-community-edition"], "2.0.0");
    assert_eq!(project["repositories"][0]["url"], base_url.as_str());

    // Aliases: magento/* at the upstream version requiring the Mage-OS package.
    let alias = built.composer("magento/module-catalog@104.0.7-p3");
    assert_eq!(
        shared::json::stringify_compact(&alias),
        r#"{"name":"magento/module-catalog","description":"Alias metapackage for mage-os/module-catalog. Allows extensions requiring magento/module-catalog to use the Mage-OS equivalent.","type":"metapackage","version":"104.0.7-p3","require":{"mage-os/module-catalog":"2.0.0"}}"#
    );

    // Flavours: rules over the product's require.
    let require_of =
        |id: &str| -> Vec<String> { built.composer(id)["require"].as_object().unwrap().keys().cloned().collect() };
    let headless = require_of("mage-os/product-headless-edition@2.0.0");
    assert!(!headless.iter().any(|n| n.contains("theme-frontend")), "{headless:?}");
    assert!(headless.contains(&"mage-os/module-catalog-graph-ql".to_owned()));
    let headful = require_of("mage-os/product-headful-edition@2.0.0");
    assert!(!headful.iter().any(|n| n.contains("graph-ql")), "{headful:?}");
    assert!(headful.contains(&"mage-os/theme-frontend-luma".to_owned()));
    let minimal = require_of("mage-os/product-minimal-edition@2.0.0");
    assert_eq!(minimal, ["mage-os/framework", "mage-os/magento2-base", "mage-os/module-theme", "php"]);
    let project = built.composer("mage-os/project-headless-edition@2.0.0");
    assert_eq!(project["require"]["mage-os/product-headless-edition"], "2.0.0");
    assert!(
        !built.packages().contains_key("mage-os/product-headless-edition@1.0.0"),
        "no flavour for history without `since`"
    );

    // The real Composer client installs each flavour; switching is one requirement.
    let server = PhpServer::start(&built.out, port);
    for (flavour, forbidden) in [("headless", "theme-frontend"), ("headful", "graph-ql"), ("minimal", "module-catalog")]
    {
        let project = temp.path().join(format!("consumer-{flavour}"));
        composer_project(&project, &server.url, &[(&format!("mage-os/product-{flavour}-edition"), "2.0.0")]);
        let output = composer(&project, &["install"]);
        assert!(
            output.status.success(),
            "{flavour}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let installed = installed_names(&project);
        assert!(installed.contains(&"mage-os/framework".to_owned()), "{flavour}: {installed:?}");
        assert!(!installed.iter().any(|n| n.contains(forbidden)), "{flavour} installed {installed:?}");
    }
    // An extension requiring the upstream name installs the Mage-OS package through the alias.
    let project = temp.path().join("consumer-extension");
    composer_project(&project, &server.url, &[("magento/module-catalog", "104.0.7-p3")]);
    let output = composer(&project, &["install"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(installed_names(&project).contains(&"mage-os/module-catalog".to_owned()));
}

fn installed_names(project: &Path) -> Vec<String> {
    let lock: Value = serde_json::from_slice(&std::fs::read(project.join("composer.lock")).unwrap()).unwrap();
    lock["packages"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap().to_owned()).collect()
}

fn manifest_entries(out: &Path) -> BTreeMap<String, Value> {
    let manifest = tests::manifest(out);
    manifest["packages"].as_object().unwrap().clone().into_iter().collect()
}

fn zip_text(bytes: &[u8], name: &str) -> String {
    use std::io::Read as _;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut text = String::new();
    archive.by_name(name).unwrap().read_to_string(&mut text).unwrap();
    text
}

pub(crate) fn zip_names(bytes: &[u8]) -> Vec<String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..archive.len()).map(|i| archive.by_index(i).unwrap().name().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_spanning_upstreams_builds_nothing_without_all_of_them_and_never_re_releases_a_tag() {
    let temp = tempfile::tempdir().unwrap();
    upstream_for_release(temp.path());
    // Nightly with a second upstream that cannot be read: no partial version map is published.
    write_resources(&temp.path().join("resource"));
    let target = format!(
        "[target]\nversions = \"nightly\"\ndate = \"{DATE}\"\nresources = \"{}\"",
        temp.path().join("resource").display()
    );
    let missing = "\n[[upstreams]]\nkey = \"gone\"\nurl = \"https://github.com/mage-os/gone.git\"\nref = \"main\"\n";
    let text = config_text("https://n.example", &target, "magento", "magento", "") + missing;
    let path = temp.path().join("partial.toml");
    std::fs::write(&path, text).unwrap();
    let out = temp.path().join("partial");
    let report = build(load_config(&path, &temp.path().join("upstream"), &temp.path().join("cache"), 2), &out).await;
    assert_eq!(report.repository_failures.len(), 1, "{}", report.summary());
    assert!(report.built.is_empty() && report.unchanged.is_empty(), "{}", report.summary());

    // A release whose version is already a tag is history: rejected for the branch, built from the tag.
    let built = run(temp.path(), "again", &release_config(temp.path(), "https://r.example/", Some("1.0.0"))).await;
    assert!(built.report.rejected.iter().any(|r| r.reason.contains("already a tag")), "{}", built.report.summary());
    assert!(
        built.packages().keys().all(|id| id.ends_with("@1.0.0")),
        "{:?}",
        built.packages().keys().collect::<Vec<_>>()
    );
    assert_eq!(built.composer("mage-os/module-catalog@1.0.0")["name"], "mage-os/module-catalog");
    assert!(
        built.composer("mage-os/module-catalog@1.0.0").get("replace").is_none(),
        "built from the tag, not the branch"
    );
}

/// The mirror (tagged) with magento2's special packages: the base package from its history file
/// (skipped at a tag without one), and the community editions made from the root composer.json
/// with the history add-ons and the tag's pins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirror_base_package_and_community_editions_at_tags() {
    let temp = tempfile::tempdir().unwrap();
    let mut upstream = Upstream::create(&temp.path().join("upstream/magento2.git"));
    let mut versions =
        BTreeMap::from([("framework", "103.0.6"), ("module-catalog", "104.0.6"), ("magento2ce", "2.4.6")]);
    magento_files(&mut upstream, "magento", &versions, false);
    upstream.commit_and_tag("2.4.6");
    versions.extend([("framework", "103.0.7"), ("module-catalog", "104.0.7"), ("magento2ce", "2.4.7")]);
    magento_files(&mut upstream, "magento", &versions, false);
    upstream.commit_and_tag("2.4.7");
    let resources = temp.path().join("resource");
    write_resources(&resources);
    let write = |path: &str, text: &str| {
        let path = resources.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write(
        "history/magento/magento2-base/2.4.7.json",
        r#"{"name":"magento/magento2-base","description":"Magento 2 (Open Source)","type":"magento2-component","version":"2.4.7","require":{"php":"~8.2.0","magento/framework":"103.0.7"}}"#,
    );
    write(
        "history/magento/product-community-edition/2.4.7.json",
        r#"{"require":{"magento/security-package":"1.1.6"}}"#,
    );
    write(
        "history/magento/project-community-edition/2.4.7.json",
        r#"{"require":{"magento/composer-root-update-plugin":"~2.0"}}"#,
    );
    let target = format!("[target]\nresources = \"{}\"", resources.display());
    write("replace/magento/module-catalog/104.0.7-p9/registration.php", "<?php // fixed\n");
    write("history/magento/project-community-edition/2.4.0-gitignore", "/vendor/\n");
    let pins = r#"
[[upstreams.file_replacements]]
package = "magento/module-catalog"
version = "104.0.7-p9"
files = ["registration.php"]

[upstreams.pinned_versions."2.4.7"]
"magento/module-catalog" = "104.0.7-p9"
"#;
    let text = config_text("https://mirror.example/", &target, "magento", "magento", pins)
        .replace("from_tag = \"1.0.0\"", "from_tag = \"2.4.6\"");
    let text = text.replace(
        "name = \"project-community-edition\"\nkind = \"project\"\n",
        "name = \"project-community-edition\"\nkind = \"project\"\nextra_files = [{ path = \".gitignore\", source = \"history/magento/project-community-edition/2.4.0-gitignore\", refs = [\"2.4.6\"] }]\n",
    );
    let built = run(temp.path(), "mirror", &text).await;
    // The replaced file keeps its place in the archive, with the new content.
    let plain = zip_names(&std::fs::read(built.out.join("packages/magento/module-catalog-104.0.6.zip")).unwrap());
    let catalog = std::fs::read(built.out.join("packages/magento/module-catalog-104.0.7-p9.zip")).unwrap();
    assert_eq!(zip_names(&catalog), plain);
    assert_eq!(zip_text(&catalog, "registration.php"), "<?php // fixed\n");
    // The extra file follows composer.json, at the configured tag only.
    let project = std::fs::read(built.out.join("packages/magento/project-community-edition-2.4.6.zip")).unwrap();
    assert_eq!(zip_names(&project), ["composer.json", ".gitignore"]);
    assert_eq!(zip_text(&project, ".gitignore"), "/vendor/\n");
    let project = std::fs::read(built.out.join("packages/magento/project-community-edition-2.4.7.zip")).unwrap();
    assert_eq!(zip_names(&project), ["composer.json"]);

    let base = built.composer("magento/magento2-base@2.4.7");
    assert_eq!(base["require"]["magento/framework"], "103.0.7", "the history file, verbatim");
    assert!(!built.packages().contains_key("magento/magento2-base@2.4.6"));
    assert!(
        built.report.rejected.iter().any(|r| r.tag.as_deref() == Some("2.4.6") && r.reason.contains("no history file")),
        "{}",
        built.report.summary()
    );
    assert_eq!(built.composer("magento/module-catalog@104.0.7-p9")["version"], "104.0.7-p9");

    let product = built.composer("magento/product-community-edition@2.4.7");
    assert_eq!(product["description"], "eCommerce Platform for Growth (Community Edition)");
    assert_eq!(product["type"], "metapackage");
    let require = product["require"].as_object().unwrap();
    // Root require, then the root's replace entries (pinned for the tag), then the add-ons, then the base.
    let keys: Vec<&str> = require.keys().map(String::as_str).collect();
    assert_eq!(keys.first(), Some(&"php"));
    assert_eq!(keys[keys.len() - 2..], ["magento/security-package", "magento/magento2-base"]);
    assert_eq!(require["magento/module-catalog"], "104.0.7-p9");
    assert_eq!(require["magento/magento2-base"], "2.4.7");
    for gone in ["replace", "minimum-stability", "extra"] {
        assert!(product.get(gone).is_none(), "{gone} left in the product");
    }
    let project = built.composer("magento/project-community-edition@2.4.7");
    assert_eq!(
        shared::json::stringify_compact(&project["require"]),
        r#"{"magento/product-community-edition":"2.4.7","magento/composer-root-update-plugin":"~2.0"}"#
    );
    assert_eq!(project["extra"]["magento-force"], "override");
    assert_eq!(project["minimum-stability"], "stable");
    assert_eq!(project["repositories"][0]["url"], "https://mirror.example/");
    assert!(built.out.join("packages/magento/project-community-edition-2.4.7.zip").is_file());
    // 2.4.6 has no history add-ons: the dependencies template (none for the product) gives none.
    let old = built.composer("magento/product-community-edition@2.4.6");
    assert!(!old["require"].as_object().unwrap().contains_key("magento/security-package"));
}
