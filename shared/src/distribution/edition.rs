//! The community-edition metapackages (reference spec 3.8): the project and product transforms of
//! the upstream root composer.json, and the Mage-OS transforms that follow them.

use serde_json::{Map, Value};

use super::nightly::version_stability;
use super::ordering::{NUMERIC_START, sort_gate, sort_keys};
use super::rename::{magento_to_mage_os, set_dependency_versions};
use crate::js::{assign, js_string, js_truthy, truthy};
use crate::release::Release;
use crate::version::{self, Comparison};

/// Description of the project metapackage from the community-edition transform.
const PROJECT_DESCRIPTION: &str = "Community-built eCommerce Platform for Growth";
/// Description of the product metapackage (and of Mage-OS projects up to 2.0.0).
const PRODUCT_DESCRIPTION: &str = "eCommerce Platform for Growth (Community Edition)";
/// Mage-OS project metapackages list `require` sorted from this release on.
const PROJECT_REQUIRE_SORTED_SINCE: &str = "2.2.1";
/// Mage-OS product metapackages list `require` sorted from this release on.
const PRODUCT_REQUIRE_SORTED_SINCE: &str = "2.0.0";
/// Mage-OS projects up to this release carry the product description.
const LEGACY_DESCRIPTION_UNTIL: &str = "2.0.0";
/// The upstream package whose version a Mage-OS product records in `extra.magento_version`.
const UPSTREAM_PRODUCT: &str = "magento/product-community-edition";

/// `transformMagentoCommunityEditionProject` (spec 3.8). `package_name` is `<vendor>/<meta name>`;
/// `additional` is the resolved `getAdditionalConfiguration` result. Without a `*` pin and with a
/// `prefer-stable` key in `additional`, `additional` is returned unchanged (a full snapshot).
/// Otherwise: keys of `config`, then new keys of `additional`, then new override keys (`name`,
/// `description`, `extra`, `repositories`, `minimum-stability`, `require` =
/// `{<product>: version, ...additional.require}`); `replace` and `suggest` deleted; then
/// [`set_dependency_versions`]. `version = release.version || dependencyVersions[package] || ref`.
pub fn community_project(
    config: Map<String, Value>,
    package_name: &str,
    additional: &Map<String, Value>,
    release: &Release<'_>,
) -> Map<String, Value> {
    if is_snapshot(additional, release) {
        return additional.clone();
    }
    let version = truthy(release.version).or_else(|| release.pinned(package_name)).unwrap_or(release.git_ref);
    let mut require = Map::new();
    require.insert(product_name(package_name, release.vendor), Value::String(version.to_owned()));
    if let Some(Value::Object(extra_require)) = additional.get("require") {
        assign(&mut require, extra_require);
    }
    let repository = Map::from_iter([
        ("type".to_owned(), Value::String("composer".to_owned())),
        ("url".to_owned(), Value::String(release.composer_repo_url.to_owned())),
    ]);
    let overrides = [
        ("name", Value::String(package_name.to_owned())),
        ("description", Value::String(PROJECT_DESCRIPTION.to_owned())),
        ("extra", Value::Object(Map::from_iter([("magento-force".to_owned(), Value::String("override".to_owned()))]))),
        ("repositories", Value::Array(vec![Value::Object(repository)])),
        ("minimum-stability", Value::String(version_stability(version).to_owned())),
        ("require", Value::Object(require)),
    ];
    let mut result = merge_edition(config, additional, overrides, &["replace", "suggest"]);
    set_dependency_versions(&mut result, release);
    result
}

/// The community-edition merge (spec 3.8): `config`, then `additional`, then the overrides
/// (existing keys keep their place, new ones are appended in this order), then `deleted` removed.
fn merge_edition<'k>(
    config: Map<String, Value>,
    additional: &Map<String, Value>,
    overrides: impl IntoIterator<Item = (&'k str, Value)>,
    deleted: &[&str],
) -> Map<String, Value> {
    let mut result = config;
    assign(&mut result, additional);
    for (key, value) in overrides {
        result.insert(key.to_owned(), value);
    }
    for key in deleted {
        result.shift_remove(*key);
    }
    result
}

/// `transformMagentoCommunityEditionProduct` (spec 3.8): same snapshot rule as
/// [`community_project`]; `extra` is deleted from `config`; the merge (keys of `config`, new keys of
/// `additional`, new override keys `name`, `description`, `type`, `require`) takes `require` =
/// `config.require`, then `config.replace` entries of the vendor or `magento/`, then
/// `additional.require`, then `<vendor>/magento2-base: release.version || config.version`; eight
/// keys are deleted; then [`set_dependency_versions`]. A base requirement whose version stays
/// `undefined` (no release version, no `config.version`, no pin) is left out, as `JSON.stringify`
/// does.
pub fn community_product(
    mut config: Map<String, Value>,
    package_name: &str,
    additional: &Map<String, Value>,
    release: &Release<'_>,
) -> Map<String, Value> {
    if is_snapshot(additional, release) {
        return additional.clone();
    }
    config.shift_remove("extra");
    let own = format!("{}/", release.vendor);
    let mut require = Map::new();
    if let Some(Value::Object(links)) = config.get("require") {
        assign(&mut require, links);
    }
    if let Some(Value::Object(replace)) = config.get("replace") {
        for (key, value) in replace {
            if key.starts_with(&own) || key.starts_with("magento/") {
                require.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(Value::Object(links)) = additional.get("require") {
        assign(&mut require, links);
    }
    let base = format!("{}/magento2-base", release.vendor);
    let base_version = match truthy(release.version) {
        Some(version) => Some(Value::String(version.to_owned())),
        None => config.get("version").cloned(),
    };
    let base_undefined = base_version.is_none();
    // `Null` stands in for `undefined` until the pins had their chance to fill it.
    require.insert(base.clone(), base_version.unwrap_or(Value::Null));
    let overrides = [
        ("name", Value::String(package_name.to_owned())),
        ("description", Value::String(PRODUCT_DESCRIPTION.to_owned())),
        ("type", Value::String("metapackage".to_owned())),
        ("require", Value::Object(require)),
    ];
    let deleted =
        ["autoload", "autoload-dev", "config", "conflict", "minimum-stability", "replace", "require-dev", "suggest"];
    let mut result = merge_edition(config, additional, overrides, &deleted);
    set_dependency_versions(&mut result, release);
    if base_undefined
        && let Some(Value::Object(links)) = result.get_mut("require")
        && links.get(&base) == Some(&Value::Null)
    {
        links.shift_remove(&base);
    }
    result
}

/// `transformMageOSCommunityEditionProject` (spec 3.8, after [`community_project`]):
/// [`magento_to_mage_os`], the incoming version restored when there is no release version, the
/// product description for numeric versions up to 2.0.0, `require` sorted when the version passes
/// the 2.2.1 [`sort_gate`].
pub fn mage_os_project(mut config: Map<String, Value>, release: &Release<'_>) -> Map<String, Value> {
    rename_keeping_version(&mut config, release);
    let version = js_string(config.get("version"));
    if NUMERIC_START.is_match(&version)
        && version::compare(&version, LEGACY_DESCRIPTION_UNTIL).is_ok_and(Comparison::is_le)
    {
        config.insert("description".to_owned(), Value::String(PRODUCT_DESCRIPTION.to_owned()));
    }
    sort_require(&mut config, &version, PROJECT_REQUIRE_SORTED_SINCE);
    config
}

/// `transformMageOSCommunityEditionProduct` (spec 3.8, after [`community_product`]):
/// [`magento_to_mage_os`], the incoming version restored when there is no release version,
/// `extra.magento_version` set to the upstream product version when `replaceVersions` has one
/// (`extra` created last if missing), `require` sorted when the version passes the 2.0.0
/// [`sort_gate`].
pub fn mage_os_product(mut config: Map<String, Value>, release: &Release<'_>) -> Map<String, Value> {
    rename_keeping_version(&mut config, release);
    if let Some(upstream) = truthy(release.replace_versions.get(UPSTREAM_PRODUCT).map(String::as_str)) {
        if !config.get("extra").is_some_and(js_truthy) {
            config.insert("extra".to_owned(), Value::Object(Map::new()));
        }
        // A truthy non-object `extra` silently ignores the property, as in JavaScript.
        if let Some(Value::Object(extra)) = config.get_mut("extra") {
            extra.insert("magento_version".to_owned(), Value::String(upstream.to_owned()));
        }
    }
    let version = js_string(config.get("version"));
    sort_require(&mut config, &version, PRODUCT_REQUIRE_SORTED_SINCE);
    config
}

/// The product name of a project: `<vendor>/` + the meta name with its first `project-` replaced.
fn product_name(package_name: &str, vendor: &str) -> String {
    match package_name.strip_prefix(vendor).and_then(|rest| rest.strip_prefix('/')) {
        Some(meta) => format!("{vendor}/{}", meta.replacen("project-", "product-", 1)),
        None => package_name.replacen("project-", "product-", 1),
    }
}

/// The reference's "full composer config" rule: no `*` pin (not a new release) and `additional`
/// has a `prefer-stable` key.
fn is_snapshot(additional: &Map<String, Value>, release: &Release<'_>) -> bool {
    !release.dependency_versions.contains_key("*") && additional.contains_key("prefer-stable")
}

/// [`magento_to_mage_os`], then the version from before restored when there is no release version
/// and it was truthy (nightlies keep their computed version instead of the branch name).
fn rename_keeping_version(config: &mut Map<String, Value>, release: &Release<'_>) {
    let before = config.get("version").cloned();
    magento_to_mage_os(config, release);
    if truthy(release.version).is_none()
        && let Some(before) = before.filter(js_truthy)
    {
        config.insert("version".to_owned(), before);
    }
}

/// Sorts `require` when it is an object and the version passes the gate.
fn sort_require(config: &mut Map<String, Value>, version: &str, since: &str) {
    if let Some(Value::Object(require)) = config.get_mut("require")
        && sort_gate(version, since)
    {
        sort_keys(require);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::distribution::test_support::{compact, obj, release, strings};
    use crate::json;

    // ---- build-metapackage -------------------------------------------------------------------------

    #[test]
    fn project_snapshot_is_returned_verbatim_without_a_wildcard() {
        let snapshot = obj(
            r#"{"prefer-stable":true,"name":"mage-os/project-community-edition","version":"2.4.5","require":{"mage-os/product-community-edition":"2.4.5"}}"#,
        );
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let deps = strings(&[("mage-os/project-community-edition", "2.4.5")]);
        let history = Release { version: None, git_ref: "2.4.5", ..release(&deps, &empty, &none) };
        let config = obj(r#"{"name":"magento/magento2ce","version":"2.4.6"}"#);
        let out = community_project(config.clone(), "mage-os/project-community-edition", &snapshot, &history);
        assert_eq!(out, snapshot);
        let out = community_product(config.clone(), "mage-os/product-community-edition", &snapshot, &history);
        assert_eq!(out, snapshot);

        // A new release ('*' pinned) processes the snapshot as additional configuration.
        let deps = strings(&[("*", "2.4.6")]);
        let new_release = Release { version: Some("2.4.6"), ..release(&deps, &empty, &none) };
        let out = community_project(config, "mage-os/project-community-edition", &snapshot, &new_release);
        assert_ne!(out, snapshot);
        assert_eq!(out["name"], "mage-os/project-community-edition");
    }

    #[test]
    fn project_merge_order_and_overrides() {
        let config = obj(
            r#"{"name":"magento/magento2ce","description":"Original","type":"project","version":"2.4.6","license":["OSL-3.0"],"require":{"magento/magento2-base":"2.4.6","php":"~8.1"},"replace":{"x/y":"*"},"suggest":{"a/b":"c"},"config":{"sort-packages":true},"prefer-stable":true}"#,
        );
        let additional = obj(r#"{"require":{"mage-os/module-x":"*","ext-bcmath":"*"},"autoload":{"psr-4":{}}}"#);
        let deps = strings(&[("*", "1.1.0")]);
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let new_release = Release { version: Some("1.1.0"), ..release(&deps, &empty, &none) };
        let out = community_project(config, "mage-os/project-community-edition", &additional, &new_release);
        assert_eq!(
            compact(&out),
            r#"{"name":"mage-os/project-community-edition","description":"Community-built eCommerce Platform for Growth","type":"project","version":"2.4.6","license":["OSL-3.0"],"require":{"mage-os/product-community-edition":"1.1.0","mage-os/module-x":"1.1.0","ext-bcmath":"*"},"config":{"sort-packages":true},"prefer-stable":true,"autoload":{"psr-4":{}},"extra":{"magento-force":"override"},"repositories":[{"type":"composer","url":"https://repo.mage-os.org/"}],"minimum-stability":"stable"}"#
        );
    }

    #[test]
    fn project_product_requirement_version_chain() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let product_of = |release: &Release<'_>| {
            let out = community_project(Map::new(), "mage-os/project-community-edition", &Map::new(), release);
            (
                js_string(out["require"].get("mage-os/product-community-edition")),
                js_string(out.get("minimum-stability")),
            )
        };
        let pins = strings(&[("mage-os/project-community-edition", "2.4.5")]);
        let with_version = Release { version: Some("2.4.6"), git_ref: "2.4.5", ..release(&pins, &empty, &none) };
        assert_eq!(product_of(&with_version), ("2.4.6".to_owned(), "stable".to_owned()));
        let from_map = Release { version: None, git_ref: "2.4.4", ..release(&pins, &empty, &none) };
        assert_eq!(product_of(&from_map).0, "2.4.5");
        let from_ref = Release { version: None, git_ref: "2.4.4", ..release(&empty, &empty, &none) };
        assert_eq!(product_of(&from_ref).0, "2.4.4");
        let beta = Release { version: Some("2.4.6-beta1"), ..release(&empty, &empty, &none) };
        assert_eq!(product_of(&beta), ("2.4.6-beta1".to_owned(), "beta".to_owned()));
        let nightly_pins = strings(&[("mage-os/project-community-edition", "2.4.7.1-a20240115")]);
        let nightly = Release { version: None, git_ref: "main", ..release(&nightly_pins, &empty, &none) };
        assert_eq!(product_of(&nightly).1, "alpha");

        // Other vendors, and an empty starting config.
        let out = community_project(
            Map::new(),
            "custom-vendor/project-community-edition",
            &Map::new(),
            &Release { vendor: "custom-vendor", ..release(&empty, &empty, &none) },
        );
        assert_eq!(
            compact(&out),
            r#"{"name":"custom-vendor/project-community-edition","description":"Community-built eCommerce Platform for Growth","extra":{"magento-force":"override"},"repositories":[{"type":"composer","url":"https://repo.mage-os.org/"}],"minimum-stability":"stable","require":{"custom-vendor/product-community-edition":"1.0.0"}}"#
        );
    }

    #[test]
    fn product_merge_order_and_deleted_keys() {
        let config = obj(
            r#"{"name":"magento/product-community-edition","description":"d","type":"project","version":"2.4.6","license":["OSL-3.0"],"require":{"php":"~8.1","ext-intl":"*"},"replace":{"magento/module-catalog":"100.0.0","magento/module-sales":"*","mage-os/module-custom":"1.0.0","other/pkg":"2.0.0"},"extra":{"a":"b"},"autoload":{},"autoload-dev":{},"config":{},"conflict":{},"minimum-stability":"stable","require-dev":{},"suggest":{}}"#,
        );
        let additional =
            obj(r#"{"require":{"mage-os/module-extra":"1.0.0","magento/module-catalog":"200.0.0"},"homepage":"h"}"#);
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let new_release = Release { version: Some("1.1.0"), ..release(&empty, &empty, &none) };
        let out = community_product(config, "mage-os/product-community-edition", &additional, &new_release);
        assert_eq!(
            compact(&out),
            r#"{"name":"mage-os/product-community-edition","description":"eCommerce Platform for Growth (Community Edition)","type":"metapackage","version":"2.4.6","license":["OSL-3.0"],"require":{"php":"~8.1","ext-intl":"*","magento/module-catalog":"200.0.0","magento/module-sales":"*","mage-os/module-custom":"1.0.0","mage-os/module-extra":"1.0.0","mage-os/magento2-base":"1.1.0"},"homepage":"h"}"#
        );
    }

    #[test]
    fn product_base_requirement_version() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let base_of = |config: &str, release: &Release<'_>| {
            let out = community_product(obj(config), "mage-os/product-community-edition", &Map::new(), release);
            compact(&out["require"].as_object().cloned().unwrap_or_default())
        };
        let history = Release { version: None, git_ref: "2.4.4", ..release(&empty, &empty, &none) };
        assert_eq!(base_of(r#"{"version":"2.4.5","require":{}}"#, &history), r#"{"mage-os/magento2-base":"2.4.5"}"#);
        assert_eq!(base_of(r#"{"version":0}"#, &history), r#"{"mage-os/magento2-base":0}"#);
        // No version anywhere: `undefined`, left out of the output.
        assert_eq!(base_of(r#"{"require":{"php":"~8.1"}}"#, &history), r#"{"php":"~8.1"}"#);
        // ... unless a pin fills it in (at its place, last).
        let pins = strings(&[("mage-os/magento2-base", "2.4.7.1-a20240115")]);
        let nightly = Release { version: None, git_ref: "main", ..release(&pins, &empty, &none) };
        assert_eq!(
            base_of(r#"{"require":{"php":"~8.1"}}"#, &nightly),
            r#"{"php":"~8.1","mage-os/magento2-base":"2.4.7.1-a20240115"}"#
        );
        let custom = Release { vendor: "custom-vendor", ..release(&empty, &empty, &none) };
        assert_eq!(
            base_of(r#"{"replace":{"custom-vendor/module-custom":"1.0.0","other/package":"2.0.0"}}"#, &custom),
            r#"{"custom-vendor/module-custom":"1.0.0","custom-vendor/magento2-base":"1.0.0"}"#
        );
    }

    #[test]
    fn mage_os_project_description_gate() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        for (version, legacy) in [
            ("0.5.0", true),
            ("1.0.0", true),
            ("1.9.0", true),
            ("2.0.0", true),
            ("2.0.0-p1", false),
            ("2.0.1", false),
            ("2.1.0", false),
            ("2.4.6", false),
            ("3.0.0", false),
        ] {
            let config = obj(&format!(
                r#"{{"name":"magento/project-community-edition","version":"{version}","description":"Original Description","type":"project"}}"#
            ));
            let out = mage_os_project(config, &Release { version: Some(version), ..release(&empty, &empty, &none) });
            let expected = if legacy { PRODUCT_DESCRIPTION } else { "Original Description" };
            assert_eq!(out["description"], expected, "{version}");
            assert_eq!(out["name"], "mage-os/project-community-edition");
        }
    }

    #[test]
    fn mage_os_project_require_sort_gate_and_version_restore() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let input = r#"{"name":"mage-os/project-community-edition","version":"VERSION","require":{"mage-os/product-community-edition":"VERSION","magento/zzz":"1","ext-bcmath":"*"}}"#;
        let run =
            |version: &str, release: &Release<'_>| mage_os_project(obj(&input.replace("VERSION", version)), release);
        let out = run("2.2.0", &Release { version: Some("2.2.0"), ..release(&empty, &empty, &none) });
        assert_eq!(
            compact(out["require"].as_object().unwrap()),
            r#"{"mage-os/product-community-edition":"2.2.0","mage-os/zzz":"2.2.0","ext-bcmath":"*"}"#
        );
        let out = run("2.2.1", &Release { version: Some("2.2.1"), ..release(&empty, &empty, &none) });
        assert_eq!(
            compact(out["require"].as_object().unwrap()),
            r#"{"ext-bcmath":"*","mage-os/product-community-edition":"2.2.1","mage-os/zzz":"2.2.1"}"#
        );
        // A nightly keeps the version it came with instead of the branch, and sorts.
        let nightly = Release { version: None, git_ref: "main", ..release(&empty, &empty, &none) };
        let out = run("2.4.7.1-a20240115", &nightly);
        assert_eq!(out["version"], "2.4.7.1-a20240115");
        assert_eq!(out["require"].as_object().unwrap().keys().next().map(String::as_str), Some("ext-bcmath"));
        // Without an incoming version the branch is the version: non-numeric, so sorted.
        let mut config = obj(input);
        config.shift_remove("version");
        let out = mage_os_project(config, &nightly);
        assert_eq!(out["version"], "main");
        assert_eq!(out["require"].as_object().unwrap().keys().next().map(String::as_str), Some("ext-bcmath"));
    }

    #[test]
    fn mage_os_product_extra_and_sort_gate() {
        let none = BTreeSet::new();
        let empty = BTreeMap::new();
        let deps = strings(&[("*", "1.9.0")]);
        let upstream = strings(&[("magento/product-community-edition", "2.4.6")]);
        let input = r#"{"name":"mage-os/product-community-edition","type":"metapackage","version":"1.9.0","require":{"mage-os/zzz":"1","ext-a":"*"}}"#;
        let old = Release { version: Some("1.9.0"), ..release(&deps, &upstream, &none) };
        let out = mage_os_product(obj(input), &old);
        assert_eq!(
            compact(&out),
            r#"{"name":"mage-os/product-community-edition","type":"metapackage","version":"1.9.0","require":{"mage-os/zzz":"1.9.0","ext-a":"*"},"extra":{"magento_version":"2.4.6"}}"#
        );
        let sorted = Release { version: Some("2.0.0"), ..release(&deps, &empty, &none) };
        let out = mage_os_product(obj(&input.replace("1.9.0", "2.0.0")), &sorted);
        assert_eq!(
            compact(&out),
            r#"{"name":"mage-os/product-community-edition","type":"metapackage","version":"2.0.0","require":{"ext-a":"*","mage-os/zzz":"2.0.0"}}"#
        );
        // An existing extra is kept, magento_version appended.
        let with_extra = input.replace(r#""type""#, r#""extra":{"existing":"value","nested":{"a":true}},"type""#);
        let out = mage_os_product(obj(&with_extra), &old);
        assert_eq!(
            compact(out["extra"].as_object().unwrap()),
            r#"{"existing":"value","nested":{"a":true},"magento_version":"2.4.6"}"#
        );
        // A falsy extra is replaced in place.
        let null_extra = input.replace(r#""type""#, r#""extra":null,"type""#);
        let out = mage_os_product(obj(&null_extra), &old);
        assert_eq!(out.keys().nth(1).map(String::as_str), Some("extra"));
        assert_eq!(compact(out["extra"].as_object().unwrap()), r#"{"magento_version":"2.4.6"}"#);
    }

    #[test]
    fn community_then_mage_os_project_end_to_end() {
        // The nightly Mage-OS project: version restored, require sorted, no replace (the name is
        // already renamed when the Mage-OS transform sees it).
        let deps = strings(&[
            ("mage-os/project-community-edition", "2.4.7.1-a20240115"),
            ("mage-os/module-x", "1.0.0.1-a20240115"),
        ]);
        let upstream = strings(&[("magento/project-community-edition", "2.4.7")]);
        let none = BTreeSet::new();
        let nightly = Release {
            version: None,
            fallback_version: Some("0.0.1.1-a20240115"),
            git_ref: "main",
            ..release(&deps, &upstream, &none)
        };
        let config =
            obj(r#"{"name":"magento/magento2ce","type":"project","version":"2.4.7-dev","require":{"php":"~8.2"}}"#);
        let additional = obj(r#"{"require":{"magento/module-x":"*"}}"#);
        let out = community_project(config, "mage-os/project-community-edition", &additional, &nightly);
        let out = mage_os_project(out, &nightly);
        assert_eq!(
            json::stringify_pretty(&Value::Object(out)),
            r#"{
  "name": "mage-os/project-community-edition",
  "type": "project",
  "version": "2.4.7-dev",
  "require": {
    "mage-os/module-x": "0.0.1.1-a20240115",
    "mage-os/product-community-edition": "0.0.1.1-a20240115"
  },
  "description": "Community-built eCommerce Platform for Growth",
  "extra": {
    "magento-force": "override"
  },
  "repositories": [
    {
      "type": "composer",
      "url": "https://repo.mage-os.org/"
    }
  ],
  "minimum-stability": "alpha"
}"#
        );
    }
}
