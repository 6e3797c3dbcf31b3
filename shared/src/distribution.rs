//! The version, rename and metapackage rules of the reference generator's nightly and release
//! builds (reference spec 3.8, 3.10, 5.3, 5.4, 5.5 and 5.7), as pure functions.
//!
//! Everything here works on composer.json objects whose key order decides the archive bytes: a
//! key assigned when it already exists keeps its position, a new key is appended last, exactly as
//! JavaScript objects behave. Where the reference relies on JavaScript semantics (`a || b` with
//! empty strings being false, `undefined` values vanishing from `JSON.stringify`), the functions
//! say how they reproduce it.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use crate::json;
use crate::rules::{SAMPLE_DATA_PREFIX, js_truthy};
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
/// The link sections a vendor rename and the base-package sort touch.
const LINK_SECTIONS: [&str; 5] = ["require", "require-dev", "suggest", "replace", "conflict"];
/// The sections whose constraints get pinned versions.
const PINNED_SECTIONS: [&str; 3] = ["require", "require-dev", "suggest"];
/// The upstream package whose version a Mage-OS product records in `extra.magento_version`.
const UPSTREAM_PRODUCT: &str = "magento/product-community-edition";

/// `calcNightlyBuildPackageBaseVersion`'s input check (ASCII, case-insensitive as `/i`).
static NIGHTLY_BASE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i-u)^v?(?:[0-9]+\.){0,3}[0-9]+(?:-[a-z][0-9a-z_]*)?$").expect("valid regex"));
/// `addSuffixToVersion`'s unanchored match; JavaScript's `.` stops at line terminators.
static SUFFIX_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(v?)((?:[0-9]+\.?){1,4})(-[^+]+)?(\+[^\n\r\x{2028}\x{2029}]+)?").expect("valid regex")
});
/// Nightly versions (`-a20260101`) count as alpha.
static ALPHA_BUILD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-a[0-9]").expect("valid regex"));
/// `validateVersionString`: two numbers and an optional lower-case suffix.
static RELEASE_TWO_PARTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+(?:-[a-z][a-z0-9.]*)?$").expect("valid regex"));
/// `validateVersionString`: three numbers and an optional lower-case suffix.
static RELEASE_THREE_PARTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[a-z][a-z0-9.]*)?$").expect("valid regex"));
/// `determineLatestUpstreamMagentoRelease`'s stable filter (the reference's regex has `/i`).
static STABLE_RELEASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i-u)^v?[0-9]+\.[0-9]+(?:\.[0-9]+)?(?:-p[0-9]+(?:\.[0-9]+)?)?$").expect("valid regex")
});
/// The sorting gates' "numeric version" test (`/^\d+\.\d+/`).
static NUMERIC_START: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+").expect("valid regex"));

/// A version that `calcNightlyBuildPackageBaseVersion` rejects (the reference aborts the build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' cannot have a nightly version (expected up to four numbers and an optional -suffix)")]
pub struct InvalidNightlyVersion(pub String);

/// `calcNightlyBuildPackageBaseVersion`: below four numbers `.1` is appended, otherwise the fourth
/// is incremented; a `-suffix` comes back as `-alpha+suffix` (`1.0-dev` is `1.0.1-alpha+dev`).
pub fn nightly_base_version(version: &str) -> Result<String, InvalidNightlyVersion> {
    if !NIGHTLY_BASE.is_match(version) {
        return Err(InvalidNightlyVersion(version.to_owned()));
    }
    let (numbers, suffix) = match version.find('-') {
        Some(pos) => (&version[..pos], &version[pos + 1..]),
        None => (version, ""),
    };
    let mut parts: Vec<String> = numbers.split('.').map(str::to_owned).collect();
    if parts.len() < 4 {
        parts.push("1".to_owned());
    } else if let Some(last) = parts.last_mut() {
        *last = js_increment(last);
    }
    let mut out = parts.join(".");
    if !suffix.is_empty() {
        out.push_str("-alpha+");
        out.push_str(suffix);
    }
    Ok(out)
}

/// JavaScript's `part++` on a digit string: `Number(part) + 1`, printed as JavaScript prints it.
fn js_increment(digits: &str) -> String {
    let next = digits.parse::<f64>().unwrap_or(f64::NAN) + 1.0;
    if next.is_infinite() { "Infinity".to_owned() } else { json::format_f64(next) }
}

/// `addSuffixToVersion(version, date)`: the first `v?<up to four numbers>` in the string keeps its
/// `v` and numbers, gets `-a<date>` and keeps a `+build` part; the rest is dropped. A string
/// without digits gets `-a<date>` appended, or `-alpha` when the date is empty (`'' → -alpha`,
/// `--- → ----a<date>`).
pub fn add_suffix_to_version(version: &str, date: &str) -> String {
    match SUFFIX_TARGET.captures(version) {
        Some(found) => {
            let build = found.get(4).map_or("", |m| m.as_str());
            format!("{}{}-a{date}{build}", &found[1], &found[2])
        }
        None => format!("{version}-a{}", if date.is_empty() { "lpha" } else { date }),
    }
}

/// The whole per-package nightly transform: an empty version counts as `0.0.1`, then
/// [`nightly_base_version`], then [`add_suffix_to_version`] (`2.4.5 → 2.4.5.1-a20240115`,
/// `103.0.5-p1 → 103.0.5.1-a20240115+p1`).
pub fn nightly_version(version: &str, date: &str) -> Result<String, InvalidNightlyVersion> {
    let base = nightly_base_version(if version.is_empty() { "0.0.1" } else { version })?;
    Ok(add_suffix_to_version(&base, date))
}

/// `getVersionStability`: `"dev"`, `"alpha"`, `"beta"`, `"RC"` or `"stable"` (lower-cased
/// substring tests in that order; nightly `-a<date>` versions are alpha, `-pN` is stable).
pub fn version_stability(version: &str) -> &'static str {
    let version = version.to_lowercase();
    if version.starts_with("dev-") || version.contains("-dev") {
        "dev"
    } else if version.contains("-alpha") || ALPHA_BUILD.is_match(&version) {
        "alpha"
    } else if version.contains("-beta") {
        "beta"
    } else if version.contains("-rc") {
        "RC"
    } else {
        "stable"
    }
}

/// `validateVersionString`: `X.Y` or `X.Y.Z` with an optional lower-case `-suffix`. The error
/// names the parameter (`Version` when empty) and the value, as the reference's message does.
pub fn validate_release_version(parameter: &str, version: &str) -> Result<(), String> {
    if RELEASE_TWO_PARTS.is_match(version) || RELEASE_THREE_PARTS.is_match(version) {
        return Ok(());
    }
    let name = if parameter.is_empty() { "Version" } else { parameter };
    Err(format!("{name} \"{version}\" is not a valid version (X.Y.Z[-suffix])."))
}

/// `getLatestTag` over a tag list: tags starting with `v` are dropped, the rest ordered with
/// [`version::compare`] and the last one taken; tags that comparison rejects are ignored (the
/// reference would crash on them).
pub fn latest_tag<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    last_in_reference_order(tags.into_iter().filter(|tag| !tag.starts_with('v')))
}

/// `determineLatestUpstreamMagentoRelease`'s choice: the highest version (reference order) among
/// those matching `^v?\d+\.\d+(\.\d+)?(-p\d+(\.\d+)?)?$`, so `2.4.7-p3` beats `2.4.7` and
/// pre-releases are ignored.
pub fn latest_stable_release<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<String> {
    last_in_reference_order(versions.into_iter().filter(|v| STABLE_RELEASE.is_match(v)))
}

/// The last element after the reference's stable `sort(compareTags)`: the last maximum in input
/// order.
fn last_in_reference_order<'a>(versions: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<&str> = None;
    for candidate in versions.filter(|v| version::validate(v).is_ok()) {
        let below = best
            .is_some_and(|current| version::compare(candidate, current).is_ok_and(|c| c.ordering() == Ordering::Less));
        if !below {
            best = Some(candidate);
        }
    }
    best.map(str::to_owned)
}

/// The sorting gate of spec 5.7: true when the version does not start with `\d+\.\d+` (e.g.
/// `dev-main`) or compares `>=` the boundary. A numeric version the comparison rejects (the
/// reference would crash) does not pass.
pub fn sort_gate(version: &str, boundary: &str) -> bool {
    if NUMERIC_START.is_match(version) {
        version::compare(version, boundary).is_ok_and(Comparison::is_ge)
    } else {
        true
    }
}

/// Sorts an object's keys in UTF-16 code unit order (JavaScript's default `sort()`), in place.
pub fn sort_keys(map: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    map.extend(entries);
}

/// What a nightly or release build knows: the reference's `buildState` plus the vendor and the
/// Packagist list.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// Composer vendor of the build (`mage-os`); `magento` disables renames and Packagist checks.
    pub vendor: &'a str,
    /// `release.version`: the version of a new release (absent for nightlies and history).
    pub version: Option<&'a str>,
    /// `release.fallbackVersion`: the version of packages nothing else gives one.
    pub fallback_version: Option<&'a str>,
    /// `release.ref`: the ref being built.
    pub git_ref: &'a str,
    /// `release.dependencyVersions`: package name to version; `*` applies to every own package.
    pub dependency_versions: &'a BTreeMap<String, String>,
    /// `release.replaceVersions`: upstream `magento/*` name to its installed version.
    pub replace_versions: &'a BTreeMap<String, String>,
    /// Names of the vendor's packages on Packagist (never consulted for vendor `magento`).
    pub on_packagist: &'a BTreeSet<String>,
    /// `release.composerRepoUrl`, written into project metapackages.
    pub composer_repo_url: &'a str,
}

impl Release<'_> {
    /// `isOnPackagist(vendor, name)`: always false for vendor `magento`.
    fn is_on_packagist(&self, name: &str) -> bool {
        self.vendor != "magento" && self.on_packagist.contains(name)
    }

    /// `dependencyVersions[name]` when truthy.
    fn pinned(&self, name: &str) -> Option<&str> {
        truthy(self.dependency_versions.get(name).map(String::as_str))
    }
}

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

/// `transformMageOSBaseSortLinks` with the boundary as a parameter (the reference uses `3.2.1`):
/// with `release.version || release.ref` passing [`sort_gate`], the keys of every existing link
/// section (`require`, `require-dev`, `suggest`, `replace`, `conflict`) are sorted.
pub fn sort_base_links(config: &mut Map<String, Value>, release: &Release<'_>, since: &str) {
    let version = truthy(release.version).unwrap_or(release.git_ref);
    if !sort_gate(version, since) {
        return;
    }
    for section in LINK_SECTIONS {
        if let Some(Value::Object(links)) = config.get_mut(section) {
            sort_keys(links);
        }
    }
}

/// The composer.json text of a `magento/*` alias metapackage (spec 3.10), as
/// `JSON.stringify(…, null, 2)`: `name`, `description`, `type`, `version`, `require`. (A stored
/// copy of the reference's `package-aliases.js` of another commit also writes
/// `extra.mage-os-alias`; the pinned commit the spec describes does not.)
pub fn alias_composer_json(
    magento_name: &str,
    magento_version: &str,
    mage_os_name: &str,
    mage_os_version: &str,
) -> String {
    let text = |s: &str| Value::String(s.to_owned());
    let config = Map::from_iter([
        ("name".to_owned(), text(magento_name)),
        (
            "description".to_owned(),
            Value::String(format!(
                "Alias metapackage for {mage_os_name}. Allows extensions requiring {magento_name} to use the Mage-OS equivalent."
            )),
        ),
        ("type".to_owned(), text("metapackage")),
        ("version".to_owned(), text(magento_version)),
        ("require".to_owned(), Value::Object(Map::from_iter([(mage_os_name.to_owned(), text(mage_os_version))]))),
    ]);
    json::stringify_pretty(&Value::Object(config))
}

/// One alias metapackage to write: `magento_name` at `magento_version` requiring `mage_os_name` at
/// `mage_os_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The upstream name the alias is published under (`magento/module-catalog`).
    pub magento_name: String,
    /// The upstream version the alias is published at.
    pub magento_version: String,
    /// The Mage-OS package the alias requires.
    pub mage_os_name: String,
    /// The Mage-OS version the alias requires.
    pub mage_os_version: String,
}

/// Chooses the alias winners (spec 3.10). Input: `(name, version, replace)` of every built Mage-OS
/// package in scan order. Each `magento/*` replace entry is a candidate keyed by
/// `<magentoName>:<magentoVersion>`; a later candidate replaces the kept one only when its Mage-OS
/// version is strictly greater ([`version::compare`]). Winners come in first-seen key order. A
/// version the comparison rejects ends that package's scan, as the reference's per-archive
/// `try` does; replace values that are neither strings nor numbers are skipped.
pub fn alias_winners(packages: &[(String, String, Map<String, Value>)]) -> Vec<Alias> {
    let mut winners: Vec<Alias> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    'packages: for (mage_os_name, mage_os_version, replace) in packages {
        for (magento_name, magento_version) in replace {
            if !magento_name.starts_with("magento/") {
                continue;
            }
            let magento_version = match magento_version {
                Value::String(s) => s.clone(),
                Value::Number(n) => json::format_js_number(n),
                _ => continue,
            };
            let alias = Alias {
                magento_name: magento_name.clone(),
                magento_version,
                mage_os_name: mage_os_name.clone(),
                mage_os_version: mage_os_version.clone(),
            };
            let key = format!("{}:{}", alias.magento_name, alias.magento_version);
            match index.get(&key) {
                None => {
                    index.insert(key, winners.len());
                    winners.push(alias);
                }
                Some(&at) => match version::compare(mage_os_version, &winners[at].mage_os_version) {
                    Ok(Comparison::Ordered(Ordering::Greater)) => winners[at] = alias,
                    Ok(_) => {}
                    Err(_) => continue 'packages,
                },
            }
        }
    }
    winners
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

/// `Object.assign(target, source)` for JSON objects.
fn assign(target: &mut Map<String, Value>, source: &Map<String, Value>) {
    for (key, value) in source {
        target.insert(key.clone(), value.clone());
    }
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

/// A string that JavaScript treats as true (`None` is `undefined`).
fn truthy(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.is_empty())
}

/// JavaScript's `String(value)` (`None` is `undefined`).
fn js_string(value: Option<&Value>) -> String {
    match value {
        None => "undefined".to_owned(),
        Some(Value::Null) => "null".to_owned(),
        Some(Value::Bool(b)) => b.to_string(),
        Some(Value::Number(n)) => json::format_js_number(n),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| if item.is_null() { String::new() } else { js_string(Some(item)) })
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Object(_)) => "[object Object]".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "20240115";

    fn obj(text: &str) -> Map<String, Value> {
        match json::parse(text).expect("test JSON") {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn compact(map: &Map<String, Value>) -> String {
        json::stringify_compact(&Value::Object(map.clone()))
    }

    fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    /// A new Mage-OS release 1.0.0 (the reference tests' `createRelease`).
    fn release<'a>(
        deps: &'a BTreeMap<String, String>,
        replace: &'a BTreeMap<String, String>,
        packagist: &'a BTreeSet<String>,
    ) -> Release<'a> {
        Release {
            vendor: "mage-os",
            version: Some("1.0.0"),
            fallback_version: Some("1.0.0"),
            git_ref: "v1.0.0",
            dependency_versions: deps,
            replace_versions: replace,
            on_packagist: packagist,
            composer_repo_url: "https://repo.mage-os.org/",
        }
    }

    // ---- release-branch-build-tools ------------------------------------------------------------

    #[test]
    fn nightly_base_versions() {
        let cases = [
            ("2.4.5", "2.4.5.1"),
            ("2.4", "2.4.1"),
            ("1", "1.1"),
            ("2.4.5.0", "2.4.5.1"),
            ("2.4.5.1", "2.4.5.2"),
            ("2.4.5.9", "2.4.5.10"),
            ("103.0.2", "103.0.2.1"),
            ("103.0.2.1", "103.0.2.2"),
            ("v2.4.5", "v2.4.5.1"),
            ("v103.0.2.1", "v103.0.2.2"),
            ("2.4.5-beta1", "2.4.5.1-alpha+beta1"),
            ("1.2.0-dev", "1.2.0.1-alpha+dev"),
            ("1.0-dev", "1.0.1-alpha+dev"),
            ("0.4.0-beta1", "0.4.0.1-alpha+beta1"),
            ("0.3.4-p2", "0.3.4.1-alpha+p2"),
            ("1.0.0-alpha", "1.0.0.1-alpha+alpha"),
            ("2.0.0-RC1", "2.0.0.1-alpha+RC1"),
            ("1.2.3.4", "1.2.3.5"),
            ("1.2.3.09", "1.2.3.10"),
        ];
        for (input, expected) in cases {
            assert_eq!(nightly_base_version(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn nightly_base_version_rejects_what_the_reference_throws_on() {
        for input in [
            "",
            "invalid",
            "not-a-version",
            "1a",
            "1.x",
            "2.4.5.6.7",
            "2.4.5-",
            "-1.0.0",
            "   ",
            "\t",
            "\n",
            "2.4.5+build.123",
        ] {
            assert_eq!(nightly_base_version(input), Err(InvalidNightlyVersion(input.to_owned())), "{input:?}");
        }
        assert!(InvalidNightlyVersion("x".into()).to_string().contains("'x'"));
    }

    #[test]
    fn suffixes_as_add_suffix_to_version() {
        let cases = [
            ("2.4.5", DATE, "2.4.5-a20240115"),
            ("2.4.5.1", DATE, "2.4.5.1-a20240115"),
            ("1", DATE, "1-a20240115"),
            ("2.4", DATE, "2.4-a20240115"),
            ("2.4.5-beta1", DATE, "2.4.5-a20240115"),
            ("2.4.5+legacy", DATE, "2.4.5-a20240115+legacy"),
            ("2.4.5-beta1+legacy", DATE, "2.4.5-a20240115+legacy"),
            ("2.4.5", "", "2.4.5-a"),
            ("abc", "", "abc-alpha"),
            ("abc", DATE, "abc-a20240115"),
            ("---", DATE, "----a20240115"),
            ("", "", "-alpha"),
            ("v2.4.5", DATE, "v2.4.5-a20240115"),
            ("0.0.0", DATE, "0.0.0-a20240115"),
            ("103.0.2.1", DATE, "103.0.2.1-a20240115"),
        ];
        for (version, date, expected) in cases {
            assert_eq!(add_suffix_to_version(version, date), expected, "{version:?} {date:?}");
        }
    }

    #[test]
    fn nightly_versions_of_the_spec_map_examples() {
        let cases = [
            ("2.4.5", "2.4.5.1-a20240115"),
            ("103.0.1.2", "103.0.1.3-a20240115"),
            ("2.4.5.9", "2.4.5.10-a20240115"),
            ("1.0-dev", "1.0.1-a20240115+dev"),
            ("103.0.5-p1", "103.0.5.1-a20240115+p1"),
            ("0.4.0-beta1", "0.4.0.1-a20240115+beta1"),
            ("", "0.0.1.1-a20240115"),
            ("v2.4.5", "v2.4.5.1-a20240115"),
            ("103.0.2", "103.0.2.1-a20240115"),
            ("0.3.4-beta1", "0.3.4.1-a20240115+beta1"),
            ("1.0.0.0", "1.0.0.1-a20240115"),
            ("1", "1.1-a20240115"),
        ];
        for (input, expected) in cases {
            assert_eq!(nightly_version(input, DATE).as_deref(), Ok(expected), "{input:?}");
        }
        assert_eq!(nightly_version("2.4.5", "").as_deref(), Ok("2.4.5.1-a"));
        assert_eq!(nightly_version("   ", DATE), Err(InvalidNightlyVersion("   ".into())));
    }

    #[test]
    fn latest_upstream_release_is_the_highest_stable_one() {
        let versions =
            ["2.4.6", "2.4.7", "2.4.7-p3", "2.4.8-beta1", "2.4.7-p2", "2.4.8-rc1", "2.4.8-alpha", "2.4.7-p10"];
        assert_eq!(latest_stable_release(versions).as_deref(), Some("2.4.7-p10"));
        assert_eq!(latest_stable_release(["2.4.7", "2.4.7-p3"]).as_deref(), Some("2.4.7-p3"));
        assert_eq!(latest_stable_release(["2.4.7-p3", "2.4.7"]).as_deref(), Some("2.4.7-p3"));
        assert_eq!(latest_stable_release(["2.4.8-beta1", "dev-main"]), None);
        assert_eq!(latest_stable_release([]), None);
    }

    // ---- package-modules -------------------------------------------------------------------------

    #[test]
    fn stabilities() {
        let cases = [
            ("dev-master", "dev"),
            ("DEV-master", "dev"),
            ("1.0-dev", "dev"),
            ("dev-alpha", "dev"),
            ("1.0.0-alpha", "alpha"),
            ("1.0.0-alpha2", "alpha"),
            ("1.0.0-ALPHA1", "alpha"),
            ("1.0.0-alpha-beta", "alpha"),
            ("2.4.7.1-a20260101", "alpha"),
            ("1.0.0.1-a20240115+dev", "alpha"),
            ("1.0.0-beta", "beta"),
            ("1.0.0-beta3", "beta"),
            ("1.0.0-rc1", "RC"),
            ("1.0.0-RC1", "RC"),
            ("1.0.0-Rc2", "RC"),
            ("1.0.0-rc", "RC"),
            ("1", "stable"),
            ("1.0.0.0", "stable"),
            ("2.4.5-p1", "stable"),
            ("", "stable"),
        ];
        for (version, expected) in cases {
            assert_eq!(version_stability(version), expected, "{version}");
        }
    }

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
    fn latest_tags() {
        assert_eq!(latest_tag(["1.0.0", "2.0.0", "1.5.0", "2.1.0"]).as_deref(), Some("2.1.0"));
        assert_eq!(latest_tag(["v1.0.0", "1.0.0", "v2.0.0", "1.5.0"]).as_deref(), Some("1.5.0"));
        assert_eq!(latest_tag(["v1.0.0", "v2.0.0"]), None);
        assert_eq!(latest_tag([]), None);
        assert_eq!(latest_tag(["1.0.0", "1.0.0-beta1", "1.0.0-alpha1", "0.9.0"]).as_deref(), Some("1.0.0"));
        assert_eq!(latest_tag(["2.4.6-p1", "2.4.6", "2.4.5-p10"]).as_deref(), Some("2.4.6-p1"));
        assert_eq!(latest_tag(["1.0.0", "nightly", "release-candidate"]).as_deref(), Some("1.0.0"));
        // Equal versions: the stable sort leaves the later one last.
        assert_eq!(latest_tag(["1.0", "1.0.0"]).as_deref(), Some("1.0.0"));
    }

    #[test]
    fn sorting_gates_and_key_order() {
        assert!(sort_gate("dev-main", "3.2.1"));
        assert!(sort_gate("", "3.2.1"));
        assert!(sort_gate("3.2.1", "3.2.1"));
        assert!(sort_gate("3.3.0", "3.2.1"));
        assert!(!sort_gate("3.2.0", "3.2.1"));
        assert!(sort_gate("2.0.0-p1", "2.0.0"));
        assert!(!sort_gate("2.0-develop", "2.0.0"), "a numeric version the comparison rejects does not pass");
        // UTF-16 order puts U+1F600 (a surrogate pair) before U+E000; byte order would not.
        let mut map = obj(r#"{"b":1,"a":2,"B":3,"\uE000":4,"\ud83d\ude00":5,"a/b":6,"a-b":7}"#);
        sort_keys(&mut map);
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["B", "a", "a-b", "a/b", "b", "\u{1F600}", "\u{E000}"]);
        assert_eq!(map["\u{E000}"], 4);
    }

    // ---- release-build-tools ---------------------------------------------------------------------

    #[test]
    fn release_version_validation() {
        let accepted = [
            "1.0",
            "2.4",
            "10.20",
            "0.1",
            "999.999",
            "1.0.0",
            "2.4.6",
            "10.20.30",
            "0.0.1",
            "999.999.999",
            "1.0-beta",
            "2.4-p2",
            "1.0-alpha",
            "1.0.0-alpha",
            "2.4.6-patch2",
            "1.0.0-beta",
            "2.4.6-p2",
            "1.0-beta.1",
            "2.4-p2.1",
            "1.0.0-rc.1",
            "2.4.6-dev",
            "01.0",
            "1.01",
            "1.0.01",
        ];
        for version in accepted {
            assert_eq!(validate_release_version("mageosRelease", version), Ok(()), "{version}");
        }
        let rejected = [
            "",
            "1",
            ".1",
            "1.",
            "1..0",
            "1.2.3.4",
            "1.2.3.4.5",
            "a.b",
            "a.b.c",
            "1.a",
            "a.1",
            "1.2.a",
            "1.0-1beta",
            "1.0-",
            "1.0--beta",
            "1.0-BETA",
            "1.0\n",
        ];
        for version in rejected {
            assert!(validate_release_version("mageosRelease", version).is_err(), "{version:?}");
        }
        let message = validate_release_version("MyVersion", "invalid-version").unwrap_err();
        assert_eq!(message, r#"MyVersion "invalid-version" is not a valid version (X.Y.Z[-suffix])."#);
        assert!(validate_release_version("", "bad").unwrap_err().starts_with("Version \"bad\""));
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

    #[test]
    fn base_links_sorting() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let input = r#"{"name":"mage-os/magento2-base","replace":{"trentrichardson/jquery-timepicker-addon":"1.4.3","components/jquery":"1.11.0","components/jqueryui":"1.10.4","twbs/bootstrap":"3.1.0"}}"#;
        let sorted = r#"{"name":"mage-os/magento2-base","replace":{"components/jquery":"1.11.0","components/jqueryui":"1.10.4","trentrichardson/jquery-timepicker-addon":"1.4.3","twbs/bootstrap":"3.1.0"}}"#;
        let base = release(&empty, &empty, &none);
        let run = |release: Release<'_>| {
            let mut config = obj(input);
            sort_base_links(&mut config, &release, "3.2.1");
            compact(&config)
        };
        assert_eq!(run(Release { version: Some("3.2.1"), git_ref: "", ..base }), sorted);
        assert_eq!(run(Release { version: None, git_ref: "3.3.0", ..base }), sorted);
        assert_eq!(run(Release { version: None, git_ref: "3.2.0", ..base }), input);
        assert_eq!(run(Release { version: None, git_ref: "3.1.0", ..base }), input);
        assert_eq!(run(Release { version: Some("dev-main"), git_ref: "", ..base }), sorted);

        let mut config = obj(
            r#"{"name":"mage-os/magento2-base","require":{"symfony/console":"^6.4","colinmollenhour/credis":"^1.15"},"conflict":{"gene/bluefoot":"*","a/a":"*"},"suggest":{"zzz/z":"z","aaa/a":"a"},"require-dev":{"b/b":"1","a/a":"1"}}"#,
        );
        sort_base_links(&mut config, &Release { version: Some("3.2.1"), ..base }, "3.2.1");
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/magento2-base","require":{"colinmollenhour/credis":"^1.15","symfony/console":"^6.4"},"conflict":{"a/a":"*","gene/bluefoot":"*"},"suggest":{"aaa/a":"a","zzz/z":"z"},"require-dev":{"a/a":"1","b/b":"1"}}"#
        );
        let mut config = obj(r#"{"name":"mage-os/magento2-base"}"#);
        sort_base_links(&mut config, &Release { version: Some("3.2.1"), ..base }, "3.2.1");
        assert_eq!(compact(&config), r#"{"name":"mage-os/magento2-base"}"#);
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

    // ---- aliases ---------------------------------------------------------------------------------

    #[test]
    fn alias_content() {
        assert_eq!(
            alias_composer_json("magento/module-catalog", "103.0.7", "mage-os/module-catalog", "2.1.0"),
            r#"{
  "name": "magento/module-catalog",
  "description": "Alias metapackage for mage-os/module-catalog. Allows extensions requiring magento/module-catalog to use the Mage-OS equivalent.",
  "type": "metapackage",
  "version": "103.0.7",
  "require": {
    "mage-os/module-catalog": "2.1.0"
  }
}"#
        );
    }

    #[test]
    fn alias_winners_take_the_highest_mage_os_version() {
        let package = |name: &str, version: &str, replace: &str| (name.to_owned(), version.to_owned(), obj(replace));
        let packages = vec![
            package("mage-os/module-catalog", "2.0.0", r#"{"magento/module-catalog":"103.0.7"}"#),
            package(
                "mage-os/module-sales",
                "2.1.0",
                r#"{"magento/module-sales":"101.0.5","laminas/laminas-code":"4.0.0"}"#,
            ),
            package("mage-os/module-catalog", "2.1.0", r#"{"magento/module-catalog":"103.0.7"}"#),
            package("mage-os/module-catalog", "2.0.5", r#"{"magento/module-catalog":"103.0.7"}"#),
            package("mage-os/module-catalog-legacy", "2.1.0", r#"{"magento/module-catalog":"103.0.7"}"#),
            package("mage-os/module-customer", "2.1.0", "{}"),
            package("mage-os/module-x", "1.0.0", r#"{"magento/module-x":103}"#),
        ];
        let alias = |magento_name: &str, magento_version: &str, mage_os_name: &str, mage_os_version: &str| Alias {
            magento_name: magento_name.to_owned(),
            magento_version: magento_version.to_owned(),
            mage_os_name: mage_os_name.to_owned(),
            mage_os_version: mage_os_version.to_owned(),
        };
        assert_eq!(
            alias_winners(&packages),
            vec![
                alias("magento/module-catalog", "103.0.7", "mage-os/module-catalog", "2.1.0"),
                alias("magento/module-sales", "101.0.5", "mage-os/module-sales", "2.1.0"),
                alias("magento/module-x", "103", "mage-os/module-x", "1.0.0"),
            ]
        );
        // A version the comparison rejects ends that package's scan only.
        let packages = vec![
            package("mage-os/a", "1.0.0", r#"{"magento/a":"1"}"#),
            package("mage-os/a", "nightly", r#"{"magento/a":"1","magento/b":"1"}"#),
            package("mage-os/c", "1.0.0", r#"{"magento/c":"1"}"#),
        ];
        let winners: Vec<String> = alias_winners(&packages).into_iter().map(|a| a.magento_name).collect();
        assert_eq!(winners, ["magento/a", "magento/c"]);
    }
}
