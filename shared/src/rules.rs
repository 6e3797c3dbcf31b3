//! composer.json rewriting: which name and version a package gets at a tag, and the exact text of
//! the composer.json that goes into its archive (reference spec 3.4, 3.6, 4.4, 5.2 and 5.5).
//!
//! The order of steps matters for the bytes (a key added late is appended last), so it follows the
//! reference: vendor rename, name and version choice, version written in place (or appended), pinned
//! dependency constraints and the sample-data suggest prefix, then configured transforms.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

pub use crate::distribution::SAMPLE_DATA_PREFIX;
pub use crate::js::js_truthy;

use crate::config::{Action, Condition, Transform};
use crate::json;
use crate::version;

/// Why a composer.json does not give a package.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleError {
    /// The text is not valid JSON.
    #[error("composer.json is not valid JSON: {0}")]
    InvalidJson(String),
    /// Valid JSON, but not an object.
    #[error("composer.json is not a JSON object")]
    NotAnObject,
    /// No usable `name`.
    #[error("composer.json has no package name")]
    NameMissing,
    /// No version from a pin, the file or a fallback.
    #[error("{0} has no version: composer.json sets none and no pin applies")]
    VersionMissing(String),
    /// A version of a type that cannot name an archive.
    #[error("{0} has a version that is not a string or number")]
    VersionNotString(String),
    /// A transform's path runs through a value that is not an object.
    #[error("transform for {package}: '{key}' in path {path:?} is not an object")]
    TransformPath {
        /// The package being transformed.
        package: String,
        /// Where the path broke.
        key: String,
        /// The whole path.
        path: Vec<String>,
    },
}

/// Everything the rules need besides the composer.json text.
#[derive(Debug, Clone, Copy)]
pub struct RuleContext<'a> {
    /// Vendor of the build; anything but `magento` renames `magento/*` names.
    pub vendor: &'a str,
    /// Versions pinned for this tag (package name to version).
    pub pins: &'a BTreeMap<String, String>,
    /// Version to use when neither a pin nor the file has one (metapackages: the tag).
    pub fallback_version: Option<&'a str>,
    /// Configured transforms of the upstream.
    pub transforms: &'a [Transform],
    /// The version every package gets, ahead of pins and the file's own (branch builds:
    /// `dev-<branch>`).
    pub forced_version: Option<&'a str>,
    /// Upstream name to version: a renamed package whose original name is here gets a `replace`
    /// entry for it.
    pub replace_versions: &'a BTreeMap<String, String>,
    /// Vendor packages on Packagist: a `*` pin does not touch their constraints.
    pub on_packagist: &'a BTreeSet<String>,
    /// The ref being built (release ref or tag): the link-sorting gate reads it.
    pub git_ref: &'a str,
    /// A new release: its version. The composer.json is first rewritten as the reference's
    /// release preparation commits it (`updateComposerConfigFromMagentoToMageOs`).
    pub release_version: Option<&'a str>,
    /// URL written into project metapackages.
    pub composer_repo_url: &'a str,
    /// Replaces the `require` section (template-based packages: the base package's dependencies).
    pub require: Option<&'a Map<String, Value>>,
    /// Sort link sections of versions that are not numeric or at least this.
    pub sort_links_since: Option<&'a str>,
}

/// No versions (an empty pin or replace map).
pub static NO_VERSIONS: BTreeMap<String, String> = BTreeMap::new();
/// No names.
pub static NO_NAMES: BTreeSet<String> = BTreeSet::new();

impl<'a> RuleContext<'a> {
    /// The context of a tagged build: vendor, pins of the tag, fallback and transforms; nothing
    /// else applies.
    pub fn tagged(
        vendor: &'a str,
        pins: &'a BTreeMap<String, String>,
        fallback_version: Option<&'a str>,
        transforms: &'a [Transform],
    ) -> RuleContext<'a> {
        RuleContext {
            vendor,
            pins,
            fallback_version,
            transforms,
            forced_version: None,
            replace_versions: &NO_VERSIONS,
            on_packagist: &NO_NAMES,
            git_ref: "",
            release_version: None,
            composer_repo_url: "",
            require: None,
            sort_links_since: None,
        }
    }

    /// The reference's build state for these rules.
    pub fn release(&self) -> crate::distribution::Release<'a> {
        crate::distribution::Release {
            vendor: self.vendor,
            version: self.release_version,
            fallback_version: self.fallback_version,
            git_ref: self.git_ref,
            dependency_versions: self.pins,
            replace_versions: self.replace_versions,
            on_packagist: self.on_packagist,
            composer_repo_url: self.composer_repo_url,
        }
    }
}

/// A package's identity and its generated composer.json.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// Composer name.
    pub name: String,
    /// Version as it names the archive.
    pub version: String,
    /// The exact composer.json text for the archive (`JSON.stringify(config, null, 2)`).
    pub composer_json: String,
    /// `name` and `version` after transforms, as the reference's additional-packages check reads
    /// them (usually equal to `name` and `version`).
    pub final_identity: (String, String),
}

/// Applies the reference's rules to a package's composer.json.
pub fn rewrite(text: &str, context: &RuleContext<'_>) -> Result<Rewritten, RuleError> {
    let parsed = json::parse(text)
        .map_err(|e| RuleError::InvalidJson(e.to_string().trim_start_matches("invalid JSON: ").to_owned()))?;
    let Value::Object(mut config) = parsed else {
        return Err(RuleError::NotAnObject);
    };
    let release = context.release();
    if context.release_version.is_some() {
        crate::distribution::magento_to_mage_os(&mut config, &release);
    }
    if context.vendor != crate::config::DEFAULT_VENDOR {
        crate::distribution::vendor_rename(&mut config, context.vendor, Some(context.pins), context.replace_versions);
    }
    let name = match config.get("name") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        _ => return Err(RuleError::NameMissing),
    };
    let forced = context.forced_version.map(|v| Value::String(v.to_owned()));
    let version_value =
        match forced.or_else(|| context.pins.get(&name).filter(|v| !v.is_empty()).cloned().map(Value::String)) {
            Some(chosen) => chosen,
            None => match config.get("version") {
                Some(value) if js_truthy(value) => value.clone(),
                _ => match context.fallback_version {
                    Some(fallback) if !fallback.is_empty() => Value::String(fallback.to_owned()),
                    _ => return Err(RuleError::VersionMissing(name)),
                },
            },
        };
    let version = match &version_value {
        Value::String(s) => s.clone(),
        Value::Number(n) => json::format_js_number(n),
        _ => return Err(RuleError::VersionNotString(name)),
    };
    // Existing key: updated in place. Missing: appended as the last key.
    config.insert("version".to_owned(), version_value);
    if let Some(require) = context.require {
        config.insert("require".to_owned(), Value::Object(template_require(require, context.vendor)));
    }
    crate::distribution::set_dependency_versions(&mut config, &release);
    apply_transforms(&mut config, &name, &version, context)?;
    if let Some(since) = context.sort_links_since {
        crate::distribution::sort_base_links(&mut config, &release, since);
    }
    let identity_part = |key: &str, fallback: &str| match config.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => json::format_js_number(n),
        _ => fallback.to_owned(),
    };
    let final_identity = (identity_part("name", &name), identity_part("version", &version));
    let composer_json = json::stringify_pretty(&Value::Object(config));
    Ok(Rewritten { name, version, composer_json, final_identity })
}

/// The require section of a template-based package from the dependency list: keys in JavaScript
/// sort order of their original names, `magento/` renamed to the vendor (spec 3.6 step 8).
fn template_require(require: &Map<String, Value>, vendor: &str) -> Map<String, Value> {
    let mut sorted = require.clone();
    crate::distribution::sort_keys(&mut sorted);
    sorted
        .into_iter()
        .map(|(key, value)| (crate::distribution::to_vendor(&key, vendor).unwrap_or(key), value))
        .collect()
}

/// A composer.json's version as text when it is truthy in JavaScript (a non-empty string or a
/// non-zero number); `None` otherwise.
pub fn truthy_version(config: &Map<String, Value>) -> Option<String> {
    match config.get("version") {
        Some(Value::String(v)) if !v.is_empty() => Some(v.clone()),
        Some(value @ Value::Number(n)) if js_truthy(value) => Some(json::format_js_number(n)),
        _ => None,
    }
}

/// Applies the configured transforms of `name` (or of its `magento/` form) at `version`.
pub fn apply_transforms_to(
    config: &mut Map<String, Value>,
    name: &str,
    version: &str,
    vendor: &str,
    transforms: &[Transform],
) -> Result<(), RuleError> {
    apply_transforms(config, name, version, &RuleContext::tagged(vendor, &NO_VERSIONS, None, transforms))
}

/// Transforms are looked up by the package name, else (reference spec 3.6 step 10) by the name
/// with the build's own vendor replaced by `magento/`.
fn apply_transforms(
    config: &mut Map<String, Value>,
    name: &str,
    version: &str,
    context: &RuleContext<'_>,
) -> Result<(), RuleError> {
    let own: Vec<&Transform> = context.transforms.iter().filter(|t| t.package == name).collect();
    let selected = if own.is_empty() {
        let Some(rest) = name.strip_prefix(&format!("{}/", context.vendor)) else {
            return Ok(());
        };
        let magento_name = format!("magento/{rest}");
        context.transforms.iter().filter(|t| t.package == magento_name).collect()
    } else {
        own
    };
    for transform in selected {
        if !condition_holds(&transform.when, version) {
            continue;
        }
        for action in &transform.actions {
            apply_action(config, action, name)?;
        }
    }
    Ok(())
}

/// Whether a transform's condition holds for a version.
pub fn condition_holds(condition: &Condition, version: &str) -> bool {
    if condition.version.as_deref().is_some_and(|v| v != version) {
        return false;
    }
    if condition.version_prefix.as_deref().is_some_and(|p| !version.starts_with(p)) {
        return false;
    }
    if let Some(floor) = &condition.version_at_least
        && !version::compare(version, floor).is_ok_and(|c| c.is_ge())
    {
        return false;
    }
    if let Some(ceiling) = &condition.version_below
        && !version::compare(version, ceiling).is_ok_and(|c| c.ordering() == std::cmp::Ordering::Less && c.is_le())
    {
        return false;
    }
    true
}

fn apply_action(config: &mut Map<String, Value>, action: &Action, package: &str) -> Result<(), RuleError> {
    let (path, value) = match action {
        Action::Set { set, value } => (set, Some(value)),
        Action::Remove { remove } => (remove, None),
    };
    let (last, parents) = path.split_last().expect("validated: paths are not empty");
    let mut current = config;
    for key in parents {
        if value.is_none() && !current.contains_key(key) {
            return Ok(());
        }
        let entry = current.entry(key.clone()).or_insert_with(|| Value::Object(Map::new()));
        current = match entry {
            Value::Object(map) => map,
            _ => {
                return Err(RuleError::TransformPath {
                    package: package.to_owned(),
                    key: key.clone(),
                    path: path.clone(),
                });
            }
        };
    }
    match value {
        Some(value) => {
            current.insert(last.clone(), value.clone());
        }
        None => {
            current.shift_remove(last);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context<'a>(
        pins: &'a BTreeMap<String, String>,
        transforms: &'a [Transform],
        fallback: Option<&'a str>,
    ) -> RuleContext<'a> {
        RuleContext::tagged("magento", pins, fallback, transforms)
    }

    #[test]
    fn version_stays_in_place_or_is_appended() {
        let pins = BTreeMap::new();
        let out = rewrite(r#"{"name":"a/b","version":"1.0","type":"x"}"#, &context(&pins, &[], None)).unwrap();
        assert_eq!(out.composer_json, "{\n  \"name\": \"a/b\",\n  \"version\": \"1.0\",\n  \"type\": \"x\"\n}");
        let pins = BTreeMap::from([("a/b".to_owned(), "2.0".to_owned())]);
        let out = rewrite(r#"{"name":"a/b","type":"x"}"#, &context(&pins, &[], None)).unwrap();
        assert_eq!(out.version, "2.0");
        assert!(out.composer_json.ends_with("\"type\": \"x\",\n  \"version\": \"2.0\"\n}"));
    }

    #[test]
    fn missing_name_and_version_are_errors() {
        let pins = BTreeMap::new();
        assert_eq!(rewrite(r#"{"version":"1"}"#, &context(&pins, &[], None)), Err(RuleError::NameMissing));
        assert_eq!(
            rewrite(r#"{"name":"a/b"}"#, &context(&pins, &[], None)),
            Err(RuleError::VersionMissing("a/b".into()))
        );
        assert_eq!(rewrite(r#"{"name":"a/b"}"#, &context(&pins, &[], Some("1.0.0"))).unwrap().version, "1.0.0");
        assert!(matches!(rewrite(r#"{"name":"a/b",}"#, &context(&pins, &[], None)), Err(RuleError::InvalidJson(_))));
    }

    #[test]
    fn pins_and_sample_data_prefix() {
        let pins = BTreeMap::from([("psr/log".to_owned(), "1.1.4".to_owned())]);
        let text = r#"{"name":"a/b","version":"1","require":{"psr/log":"^1"},"suggest":{"m/module-x-sample-data":"1.0","m/sample-data-media":"Sample Data version: 2"}}"#;
        let out = rewrite(text, &context(&pins, &[], None)).unwrap();
        let value: Value = serde_json::from_str(&out.composer_json).unwrap();
        assert_eq!(value["require"]["psr/log"], "1.1.4");
        assert_eq!(value["suggest"]["m/module-x-sample-data"], "Sample Data version: 1.0");
        assert_eq!(value["suggest"]["m/sample-data-media"], "Sample Data version: 2");
    }

    #[test]
    fn transforms_follow_conditions_and_keep_positions() {
        let transforms: Vec<Transform> = vec![
            Transform {
                package: "magento/module-x".into(),
                when: Condition {
                    version_prefix: Some("2.4.7-".into()),
                    version_at_least: Some("2.4.7-p6".into()),
                    ..Default::default()
                },
                actions: vec![Action::Set {
                    set: vec!["conflict".into(), "paypal/module-braintree".into()],
                    value: ">=4.7.0".into(),
                }],
            },
            Transform {
                package: "magento/module-x".into(),
                when: Condition::default(),
                actions: vec![
                    Action::Set { set: vec!["require".into(), "a/a".into()], value: "2".into() },
                    Action::Remove { remove: vec!["require".into(), "z/z".into()] },
                ],
            },
        ];
        let pins = BTreeMap::new();
        let text = r#"{"name":"magento/module-x","require":{"a/a":"1","z/z":"1","b/b":"1"}}"#;
        let out = rewrite(text, &context(&pins, &transforms, Some("2.4.7-p6"))).unwrap();
        let value: Value = serde_json::from_str(&out.composer_json).unwrap();
        assert_eq!(json::stringify_compact(&value["require"]), r#"{"a/a":"2","b/b":"1"}"#);
        assert_eq!(value["conflict"]["paypal/module-braintree"], ">=4.7.0");
        let out = rewrite(text, &context(&pins, &transforms, Some("2.4.7-p5"))).unwrap();
        assert!(!out.composer_json.contains("conflict"));
    }

    #[test]
    fn magento_transforms_apply_only_to_the_builds_own_vendor() {
        let transforms = vec![Transform {
            package: "magento/module-x".into(),
            when: Condition::default(),
            actions: vec![Action::Set { set: vec!["extra".into()], value: "hit".into() }],
        }];
        let pins = BTreeMap::new();
        let text = r#"{"name":"acme/module-x","version":"1"}"#;
        assert!(!rewrite(text, &context(&pins, &transforms, None)).unwrap().composer_json.contains("hit"));
        let ctx = RuleContext::tagged("acme", &pins, None, &transforms);
        assert!(rewrite(text, &ctx).unwrap().composer_json.contains("hit"));
    }

    #[test]
    fn vendor_rename_keeps_unbuilt_magento_names() {
        let pins = BTreeMap::from([("mage-os/framework".to_owned(), "1.0.0".to_owned())]);
        let ctx = RuleContext::tagged("mage-os", &pins, None, &[]);
        let text =
            r#"{"name":"magento/module-a","version":"1","require":{"magento/framework":"*","magento/zend-db":"*"}}"#;
        let out = rewrite(text, &ctx).unwrap();
        assert_eq!(out.name, "mage-os/module-a");
        let value: Value = serde_json::from_str(&out.composer_json).unwrap();
        assert_eq!(
            json::stringify_compact(&value["require"]),
            r#"{"mage-os/framework":"1.0.0","magento/zend-db":"*"}"#
        );
    }

    #[test]
    fn a_forced_version_wins_over_pins_and_the_file() {
        let mut pins = BTreeMap::new();
        pins.insert("acme/a".to_owned(), "9.9.9".to_owned());
        let ctx = RuleContext { forced_version: Some("dev-main"), ..RuleContext::tagged("magento", &pins, None, &[]) };
        let rewritten = rewrite(r#"{"name": "acme/a", "version": "1.0.0"}"#, &ctx).unwrap();
        assert_eq!(rewritten.version, "dev-main");
        assert!(rewritten.composer_json.contains(r#""version": "dev-main""#), "{}", rewritten.composer_json);
        // A package without a version of its own still gets one on a branch.
        assert_eq!(rewrite(r#"{"name": "acme/b"}"#, &ctx).unwrap().version, "dev-main");
    }
}
