//! Vendor renames and pinned dependency versions (reference spec 5.5): `applyVendorRename`,
//! `setDependencyVersions` and `updateComposerConfigFromMagentoToMageOs`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::js::truthy;
use crate::release::Release;

/// The text the reference prefixes to sample-data suggestions (needed by `sampledata:deploy`).
pub const SAMPLE_DATA_PREFIX: &str = "Sample Data version: ";
/// The link sections a vendor rename and the base-package sort touch.
pub(super) const LINK_SECTIONS: [&str; 5] = ["require", "require-dev", "suggest", "replace", "conflict"];
/// The sections whose constraints get pinned versions.
const PINNED_SECTIONS: [&str; 3] = ["require", "require-dev", "suggest"];

/// `applyVendorRename` (spec 5.5): the name moves from `magento/` to the vendor; in the link
/// sections a `magento/*` key moves only when `dependency_versions` is `None` or holds the renamed
/// key (third-party `magento/*` packages that are not built keep their name); key order is kept.
/// When `replace_versions` has the original name, `replace[original]` is set to it (appended last
/// in `replace`, which is created as the last top-level key if absent). No-op for vendor
/// `magento`.
pub fn vendor_rename(
    config: &mut Map<String, Value>,
    vendor: &str,
    dependency_versions: Option<&BTreeMap<String, String>>,
    replace_versions: &BTreeMap<String, String>,
) {
    if vendor == "magento" {
        return;
    }
    let original = match config.get("name") {
        Some(Value::String(name)) => Some(name.clone()),
        _ => None,
    };
    if let Some(Value::String(name)) = config.get_mut("name")
        && let Some(renamed) = to_vendor(name, vendor)
    {
        *name = renamed;
    }
    for section in LINK_SECTIONS {
        if let Some(Value::Object(links)) = config.get_mut(section) {
            rename_keys(links, |key| match to_vendor(key, vendor) {
                Some(renamed) if dependency_versions.is_none_or(|known| known.contains_key(&renamed)) => Some(renamed),
                _ => None,
            });
        }
    }
    let Some(original) = original else { return };
    let Some(upstream) = truthy(replace_versions.get(&original).map(String::as_str)) else { return };
    let upstream = Value::String(upstream.to_owned());
    match config.get_mut("replace") {
        Some(Value::Object(replace)) => {
            replace.insert(original, upstream);
        }
        _ => {
            config.insert("replace".to_owned(), Value::Object(Map::from_iter([(original, upstream)])));
        }
    }
}

/// `setDependencyVersions` (spec 5.5): in `require`, `require-dev` and `suggest` a key gets
/// `dependencyVersions[key]` when that is non-empty, else `dependencyVersions['*']` when that is
/// non-empty and the key is one of the vendor's own packages not on Packagist. Sample-data
/// suggestions (`*-sample-data`, `*/sample-data-*`) then get the `Sample Data version: ` prefix
/// unless they already contain it.
pub fn set_dependency_versions(config: &mut Map<String, Value>, release: &Release<'_>) {
    let wildcard = release.pinned("*");
    let own = format!("{}/", release.vendor);
    for section in PINNED_SECTIONS {
        let Some(Value::Object(links)) = config.get_mut(section) else { continue };
        for (key, value) in links.iter_mut() {
            let chosen = release.pinned(key).or_else(|| {
                let own_unpublished =
                    !release.vendor.is_empty() && key.starts_with(&own) && !release.is_on_packagist(key);
                wildcard.filter(|_| own_unpublished)
            });
            if let Some(chosen) = chosen {
                *value = Value::String(chosen.to_owned());
            }
            if section == "suggest"
                && (key.ends_with("-sample-data") || key.contains("/sample-data-"))
                && let Value::String(text) = value
                && !text.contains(SAMPLE_DATA_PREFIX)
            {
                text.insert_str(0, SAMPLE_DATA_PREFIX);
            }
        }
    }
}

/// `updateComposerConfigFromMagentoToMageOs` (spec 5.5): `version` becomes `release.version ||
/// release.ref`; the name and every `magento/*` key of `require`, `require-dev`, `suggest` and
/// `replace` move to the vendor; the vendor's keys in `require`, `require-dev` and `suggest` not
/// on Packagist get `version || fallbackVersion || dependencyVersions[key] ||
/// dependencyVersions['*']` (a key left without any value is dropped, as `JSON.stringify` drops
/// `undefined`); the vendor's `*-sample-data` suggestions get `Sample Data version: <version ||
/// fallbackVersion>`; `config.allow-plugins` keys are renamed in place of order; when
/// `replaceVersions` has the original name, `replace` becomes exactly `{original: version}`.
pub fn magento_to_mage_os(config: &mut Map<String, Value>, release: &Release<'_>) {
    let vendor = release.vendor;
    let original = config.get("name").cloned();
    let version = truthy(release.version).unwrap_or(release.git_ref);
    config.insert("version".to_owned(), Value::String(version.to_owned()));
    if let Some(Value::String(name)) = config.get_mut("name")
        && let Some(renamed) = to_vendor(name, vendor)
    {
        *name = renamed;
    }
    for section in ["require", "require-dev", "suggest", "replace"] {
        if let Some(Value::Object(links)) = config.get_mut(section) {
            rename_keys(links, |key| to_vendor(key, vendor));
        }
    }
    let own = format!("{vendor}/");
    for section in PINNED_SECTIONS {
        let Some(Value::Object(links)) = config.get_mut(section) else { continue };
        let keys: Vec<String> = links.keys().filter(|key| key.starts_with(&own)).cloned().collect();
        for key in keys {
            // `None` is JavaScript's `undefined`.
            let mut value = links.get(&key).cloned();
            if !release.is_on_packagist(&key) {
                value = truthy(release.version)
                    .or(truthy(release.fallback_version))
                    .or_else(|| release.pinned(&key))
                    .or_else(|| release.dependency_versions.get("*").map(String::as_str))
                    .map(|v| Value::String(v.to_owned()));
            }
            if section == "suggest" && key.ends_with("-sample-data") {
                let shown = truthy(release.version).or(release.fallback_version).unwrap_or("undefined");
                value = Some(Value::String(format!("{SAMPLE_DATA_PREFIX}{shown}")));
            }
            match value {
                Some(value) => {
                    links.insert(key, value);
                }
                None => {
                    links.shift_remove(&key);
                }
            }
        }
    }
    if let Some(Value::Object(settings)) = config.get_mut("config")
        && let Some(Value::Object(plugins)) = settings.get_mut("allow-plugins")
    {
        // The reference deletes and re-adds every key in turn, which keeps their relative order.
        let keys: Vec<String> = plugins.keys().cloned().collect();
        for key in keys {
            let value = plugins.shift_remove(&key).unwrap_or(Value::Null);
            let new_key = to_vendor(&key, vendor).unwrap_or(key);
            plugins.insert(new_key, value);
        }
    }
    if let Some(Value::String(original)) = original
        && let Some(upstream) = truthy(release.replace_versions.get(&original).map(String::as_str))
    {
        let replace = Map::from_iter([(original, Value::String(upstream.to_owned()))]);
        config.insert("replace".to_owned(), Value::Object(replace));
    }
}

/// `magento/<rest>` as `<vendor>/<rest>`; `None` for other names.
pub fn to_vendor(name: &str, vendor: &str) -> Option<String> {
    name.strip_prefix("magento/").map(|rest| format!("{vendor}/{rest}"))
}

/// Rebuilds an object with some keys renamed, keeping the order (a collision keeps the first
/// position and the last value, as the reference's rebuild does).
fn rename_keys(links: &mut Map<String, Value>, rename: impl Fn(&str) -> Option<String>) {
    let mut rebuilt = Map::new();
    for (key, value) in std::mem::take(links) {
        let new_key = rename(&key).unwrap_or(key);
        rebuilt.insert(new_key, value);
    }
    *links = rebuilt;
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::distribution::test_support::{compact, names, obj, release, strings};
    use crate::js::js_string;

    #[test]
    fn dependency_versions_from_the_map_and_the_wildcard() {
        let packagist = names(&["mage-os/published-package"]);
        let empty = BTreeMap::new();
        let deps = strings(&[("magento/framework", "103.0.6"), ("magento/module-dev", "100.4.5")]);
        let mut config = obj(
            r#"{"require":{"php":"~8.1","magento/framework":"*","magento/module-store":"*"},"require-dev":{"magento/module-dev":"*"}}"#,
        );
        set_dependency_versions(&mut config, &release(&deps, &empty, &packagist));
        assert_eq!(
            compact(&config),
            r#"{"require":{"php":"~8.1","magento/framework":"103.0.6","magento/module-store":"*"},"require-dev":{"magento/module-dev":"100.4.5"}}"#
        );

        // '*' applies to the vendor's own packages only, and not to those on Packagist.
        let deps = strings(&[("*", "1.0.0")]);
        let mut config = obj(
            r#"{"require":{"mage-os/framework":"*","mage-os/published-package":"2.0.0","laminas/laminas-code":"^4"}}"#,
        );
        set_dependency_versions(&mut config, &release(&deps, &empty, &packagist));
        assert_eq!(
            compact(&config),
            r#"{"require":{"mage-os/framework":"1.0.0","mage-os/published-package":"2.0.0","laminas/laminas-code":"^4"}}"#
        );

        // Vendor magento never consults Packagist, but '*' still needs the vendor prefix.
        let packagist = names(&["magento/framework"]);
        let mut config = obj(r#"{"require":{"magento/framework":"*","other/x":"1"}}"#);
        set_dependency_versions(&mut config, &Release { vendor: "magento", ..release(&deps, &empty, &packagist) });
        assert_eq!(compact(&config), r#"{"require":{"magento/framework":"1.0.0","other/x":"1"}}"#);

        // An empty pin is no pin.
        let deps = strings(&[("a/b", "")]);
        let mut config = obj(r#"{"require":{"a/b":"^1"}}"#);
        set_dependency_versions(&mut config, &release(&deps, &empty, &packagist));
        assert_eq!(compact(&config), r#"{"require":{"a/b":"^1"}}"#);
    }

    #[test]
    fn sample_data_suggestions_get_the_prefix_once() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let mut config = obj(
            r#"{"suggest":{"magento/module-catalog-sample-data":"100.4.0","magento/sample-data-media":"Media files","magento/module-x-sample-data":"Sample Data version: 1","magento/module-catalog":"Catalog module"}}"#,
        );
        set_dependency_versions(&mut config, &release(&empty, &empty, &none));
        assert_eq!(
            compact(&config),
            r#"{"suggest":{"magento/module-catalog-sample-data":"Sample Data version: 100.4.0","magento/sample-data-media":"Sample Data version: Media files","magento/module-x-sample-data":"Sample Data version: 1","magento/module-catalog":"Catalog module"}}"#
        );
        // The pinned value is what gets the prefix.
        let deps = strings(&[("*", "2.0.0")]);
        let mut config = obj(r#"{"suggest":{"mage-os/module-catalog-sample-data":"*"}}"#);
        set_dependency_versions(&mut config, &release(&deps, &empty, &none));
        assert_eq!(
            compact(&config),
            r#"{"suggest":{"mage-os/module-catalog-sample-data":"Sample Data version: 2.0.0"}}"#
        );
        // Missing sections are fine.
        let mut config = obj(r#"{"name":"magento/module-test"}"#);
        set_dependency_versions(&mut config, &release(&deps, &empty, &none));
        assert_eq!(compact(&config), r#"{"name":"magento/module-test"}"#);
    }

    #[test]
    fn magento_to_mage_os_full_example() {
        let deps = strings(&[("*", "1.0.0")]);
        let replace = strings(&[("magento/module-catalog", "103.0.4")]);
        let none = BTreeSet::new();
        let mut config = obj(
            r#"{"name":"magento/module-catalog","description":"Magento Catalog Module","version":"103.0.4","require":{"php":"^7.4|^8.0","magento/framework":"^103.0","magento/module-store":"^101.0","magento/module-eav":"^102.0"},"require-dev":{"magento/module-developer":"^100.4"},"suggest":{"magento/module-catalog-sample-data":"Sample Data version: 100.4.*"},"config":{"sort-packages":true,"allow-plugins":{"magento/magento-composer-installer":true}}}"#,
        );
        magento_to_mage_os(&mut config, &release(&deps, &replace, &none));
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/module-catalog","description":"Magento Catalog Module","version":"1.0.0","require":{"php":"^7.4|^8.0","mage-os/framework":"1.0.0","mage-os/module-store":"1.0.0","mage-os/module-eav":"1.0.0"},"require-dev":{"mage-os/module-developer":"1.0.0"},"suggest":{"mage-os/module-catalog-sample-data":"Sample Data version: 1.0.0"},"config":{"sort-packages":true,"allow-plugins":{"mage-os/magento-composer-installer":true}},"replace":{"magento/module-catalog":"103.0.4"}}"#
        );

        // A previous replace is discarded but keeps its position; a missing version is appended.
        let mut config = obj(
            r#"{"name":"magento/product-community-edition","type":"metapackage","replace":{"magento/module-old":"100.0.0"},"require":{"magento/magento2-base":"2.4.6"}}"#,
        );
        let replace = strings(&[("magento/product-community-edition", "2.4.6")]);
        magento_to_mage_os(&mut config, &release(&deps, &replace, &none));
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/product-community-edition","type":"metapackage","replace":{"magento/product-community-edition":"2.4.6"},"require":{"mage-os/magento2-base":"1.0.0"},"version":"1.0.0"}"#
        );

        // Without a replace version the renamed replace section stays.
        let mut config = obj(r#"{"name":"magento/module-a","replace":{"magento/module-old":"1"}}"#);
        magento_to_mage_os(&mut config, &release(&deps, &BTreeMap::new(), &none));
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/module-a","replace":{"mage-os/module-old":"1"},"version":"1.0.0"}"#
        );
    }

    #[test]
    fn magento_to_mage_os_names_plugins_and_packagist() {
        let deps = strings(&[("*", "1.0.0")]);
        let empty = BTreeMap::new();
        let packagist = names(&["mage-os/framework"]);
        let mut config = obj(
            r#"{"name":"other/magento-extension","require":{"magento/framework":"^102.0 || ^103.0","magento/module-store":"*","laminas/laminas-mvc":"^3.0"},"config":{"allow-plugins":{"magento/composer-dependency-version-audit-plugin":true,"laminas/laminas-dependency-plugin":false,"magento/magento-composer-installer":false}}}"#,
        );
        magento_to_mage_os(&mut config, &Release { version: Some("1.5.0"), ..release(&deps, &empty, &packagist) });
        assert_eq!(
            compact(&config),
            r#"{"name":"other/magento-extension","require":{"mage-os/framework":"^102.0 || ^103.0","mage-os/module-store":"1.5.0","laminas/laminas-mvc":"^3.0"},"config":{"allow-plugins":{"mage-os/composer-dependency-version-audit-plugin":true,"laminas/laminas-dependency-plugin":false,"mage-os/magento-composer-installer":false}},"version":"1.5.0"}"#
        );

        // Only the leading magento/ is replaced.
        let mut config = obj(r#"{"name":"magento/magento-composer-installer","config":{"allow-plugins":{}}}"#);
        magento_to_mage_os(&mut config, &release(&deps, &empty, &packagist));
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/magento-composer-installer","config":{"allow-plugins":{}},"version":"1.0.0"}"#
        );

        // Sample data suggestions are labelled even when on Packagist.
        let packagist = names(&["mage-os/module-catalog-sample-data"]);
        let mut config = obj(r#"{"name":"magento/m","suggest":{"magento/module-catalog-sample-data":"*"}}"#);
        magento_to_mage_os(&mut config, &Release { version: Some("2.0.0"), ..release(&deps, &empty, &packagist) });
        assert_eq!(config["suggest"]["mage-os/module-catalog-sample-data"], "Sample Data version: 2.0.0");
    }

    #[test]
    fn magento_to_mage_os_fallback_chain() {
        let empty = BTreeMap::new();
        let none = BTreeSet::new();
        let framework = |release: &Release<'_>| {
            let mut config = obj(r#"{"name":"magento/module-catalog","require":{"magento/framework":"*"}}"#);
            magento_to_mage_os(&mut config, release);
            (compact(&config["require"].as_object().cloned().unwrap_or_default()), js_string(config.get("version")))
        };
        let deps = strings(&[("*", "0.8.0")]);
        let base = release(&deps, &empty, &none);
        let with_version = Release { fallback_version: Some("0.9.0"), ..base };
        assert_eq!(framework(&with_version).0, r#"{"mage-os/framework":"1.0.0"}"#);
        let nightly = Release { version: None, git_ref: "main", fallback_version: Some("0.9.0"), ..base };
        assert_eq!(framework(&nightly), (r#"{"mage-os/framework":"0.9.0"}"#.to_owned(), "main".to_owned()));
        let pinned = strings(&[("mage-os/framework", "0.7.0"), ("*", "0.8.0")]);
        let only_pins =
            Release { version: None, git_ref: "main", fallback_version: None, ..release(&pinned, &empty, &none) };
        assert_eq!(framework(&only_pins).0, r#"{"mage-os/framework":"0.7.0"}"#);
        let only_wildcard = Release { version: None, git_ref: "main", fallback_version: None, ..base };
        assert_eq!(framework(&only_wildcard).0, r#"{"mage-os/framework":"0.8.0"}"#);
        // Nothing at all: the value is `undefined`, which JSON.stringify leaves out.
        let nothing =
            Release { version: None, git_ref: "main", fallback_version: None, ..release(&empty, &empty, &none) };
        assert_eq!(framework(&nothing).0, "{}");
        // An empty release version is false too.
        let empty_version = Release { version: Some(""), ..nightly };
        assert_eq!(framework(&empty_version), (r#"{"mage-os/framework":"0.9.0"}"#.to_owned(), "main".to_owned()));
    }

    // ---- applyVendorRename -----------------------------------------------------------------------

    #[test]
    fn vendor_rename_keeps_unbuilt_magento_packages() {
        let built = strings(&[("mage-os/framework", "1.0.0"), ("mage-os/module-a", "1.0.0")]);
        let empty = BTreeMap::new();
        let input = r#"{"name":"magento/module-a","require":{"magento/framework":"*","magento/zend-db":"*","php":"~8.1"},"conflict":{"magento/module-a":"*"}}"#;
        let mut config = obj(input);
        vendor_rename(&mut config, "mage-os", Some(&built), &empty);
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/module-a","require":{"mage-os/framework":"*","magento/zend-db":"*","php":"~8.1"},"conflict":{"mage-os/module-a":"*"}}"#
        );
        let mut config = obj(input);
        vendor_rename(&mut config, "mage-os", None, &empty);
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/module-a","require":{"mage-os/framework":"*","mage-os/zend-db":"*","php":"~8.1"},"conflict":{"mage-os/module-a":"*"}}"#
        );
        let mut config = obj(input);
        vendor_rename(&mut config, "magento", None, &strings(&[("magento/module-a", "1")]));
        assert_eq!(compact(&config), compact(&obj(input)));
    }

    #[test]
    fn vendor_rename_adds_the_upstream_replace_entry_last() {
        let upstream = strings(&[("magento/magento2-base", "2.4.7")]);
        let mut config =
            obj(r#"{"name":"magento/magento2-base","replace":{"magento/module-x":"*","a/b":"1"},"extra":{}}"#);
        vendor_rename(&mut config, "mage-os", Some(&BTreeMap::new()), &upstream);
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/magento2-base","replace":{"magento/module-x":"*","a/b":"1","magento/magento2-base":"2.4.7"},"extra":{}}"#
        );
        let mut config = obj(r#"{"name":"magento/magento2-base","require":{},"extra":{}}"#);
        vendor_rename(&mut config, "mage-os", None, &upstream);
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/magento2-base","require":{},"extra":{},"replace":{"magento/magento2-base":"2.4.7"}}"#
        );
        // No upstream version for the name: nothing added.
        let mut config = obj(r#"{"name":"magento/module-y"}"#);
        vendor_rename(&mut config, "mage-os", None, &upstream);
        assert_eq!(compact(&config), r#"{"name":"mage-os/module-y"}"#);
    }
}
