//! Composer 2 repository metadata: `packages.json` and minified `p2/<vendor>/<name>[~dev].json`.
//!
//! Pure: given every published package version, it returns the files' bytes. Output is
//! deterministic (names sorted, versions newest first in the reference's version order, stable
//! keys), so an unchanged package gives a byte-identical p2 file. The format follows
//! `composer-repository.md`: `metadata-url` and every dist URL are absolute, `shasum` is the
//! archive's sha1, versions are minified with the `composer/2.0` algorithm.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::json;

/// A package's composer.json object as its compact text (`JSON.stringify` form), parsed where it
/// is read. Every published version keeps one, in the manifest and in what is published from it:
/// as text it takes a fraction of the memory of a parsed tree (a map and a string per key), which
/// on a repository of 20,000 versions was tens of MiB. Clones share the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComposerJson(Arc<str>);

impl ComposerJson {
    /// The compact text of `map`.
    pub fn of_map(map: &Map<String, Value>) -> ComposerJson {
        ComposerJson(json::stringify_compact_object(map).into())
    }

    /// The object whose `JSON.stringify(object, null, 2)` text is `pretty` (as the archive
    /// holds it), without parsing it. The caller vouches that `pretty` is such a text: one
    /// [`json::stringify_pretty`] wrote.
    pub fn of_pretty(pretty: &str) -> ComposerJson {
        ComposerJson(json::compact_of_pretty(pretty).into())
    }

    /// The compact text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object, parsed.
    pub fn to_map(&self) -> Map<String, Value> {
        // Only objects are ever held (see `of_map`, `of_pretty` and `deserialize`).
        serde_json::from_str(&self.0).unwrap_or_default()
    }

    /// Whether this is the object whose pretty text (`json::stringify_pretty`) is `pretty`.
    pub fn is_pretty(&self, pretty: &str) -> bool {
        // Whitespace aside the two texts are the same; an entry a farm before this one stored
        // may keep its keys or numbers as that farm wrote them, so a mismatch is checked parsed.
        json::compact_of_pretty(pretty) == *self.0 || json::stringify_pretty_object(&self.to_map()) == pretty
    }
}

impl Default for ComposerJson {
    fn default() -> ComposerJson {
        ComposerJson(Arc::from("{}"))
    }
}

/// Stored as the JSON object itself.
impl Serialize for ComposerJson {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let raw = serde_json::value::RawValue::from_string(self.0.to_string()).map_err(serde::ser::Error::custom)?;
        raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ComposerJson {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ComposerJson, D::Error> {
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get().trim();
        if !text.starts_with('{') {
            return Err(serde::de::Error::custom("a composer.json must be an object"));
        }
        Ok(ComposerJson(text.into()))
    }
}

/// One published version of a package.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedVersion {
    /// Composer name.
    pub name: String,
    /// Version.
    pub version: String,
    /// The package's composer.json as it is inside the archive (shared with the manifest entry
    /// it comes from: publishing copies no composer.json).
    pub composer: ComposerJson,
    /// Storage key of the archive, relative to the repository root.
    pub key: String,
    /// sha1 of the archive.
    pub sha1: String,
}

/// One metadata file: its storage key and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataFile {
    /// Storage key, e.g. `p2/acme/module-a.json`.
    pub key: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// Where the change feed for mirrors is published (advertised as `metadata-changes-url`).
pub const CHANGES_KEY: &str = "metadata/changes.json";

/// Everything to publish, p2 files first and `packages.json` last (write them in this order).
pub fn render(base_url: &str, versions: &[PublishedVersion]) -> Vec<MetadataFile> {
    let base = base_url.trim_end_matches('/');
    let mut by_name: BTreeMap<String, Vec<&PublishedVersion>> = BTreeMap::new();
    for version in versions {
        by_name.entry(version.name.to_lowercase()).or_default().push(version);
    }
    let mut files = Vec::with_capacity(by_name.len() * 2 + 1);
    for (name, mut list) in by_name {
        list.sort_by(|a, b| newest_first(&a.version, &b.version));
        let (dev, stable): (Vec<&PublishedVersion>, Vec<&PublishedVersion>) =
            list.into_iter().partition(|v| is_dev(&v.version));
        files.push(p2_file(base, &name, "", &stable));
        files.push(p2_file(base, &name, "~dev", &dev));
    }
    let names: Vec<Value> = files
        .iter()
        .filter_map(|f| f.key.strip_prefix("p2/").and_then(|k| k.strip_suffix(".json")))
        .filter(|k| !k.ends_with("~dev"))
        .map(|k| Value::String(k.to_owned()))
        .collect();
    let mut root = Map::new();
    root.insert("packages".to_owned(), Value::Array(Vec::new()));
    root.insert("metadata-url".to_owned(), Value::String(format!("{base}/p2/%package%.json")));
    root.insert("available-packages".to_owned(), Value::Array(names));
    root.insert("metadata-changes-url".to_owned(), Value::String(format!("{base}/{CHANGES_KEY}")));
    files.push(MetadataFile {
        key: "packages.json".to_owned(),
        bytes: json::stringify_compact(&Value::Object(root)).into_bytes(),
    });
    files
}

/// Composer's dev stability: `dev-` branches and `-dev` suffixes.
pub fn is_dev(version: &str) -> bool {
    version.starts_with("dev-") || version.ends_with("-dev")
}

fn newest_first(a: &str, b: &str) -> std::cmp::Ordering {
    crate::version::total_cmp(b, a)
}

fn p2_file(base: &str, name: &str, suffix: &str, versions: &[&PublishedVersion]) -> MetadataFile {
    let full: Vec<Map<String, Value>> = versions.iter().map(|v| version_object(base, v)).collect();
    let mut packages = Map::new();
    packages.insert(name.to_owned(), Value::Array(minify(&full)));
    let mut root = Map::new();
    root.insert("minified".to_owned(), Value::String("composer/2.0".to_owned()));
    root.insert("packages".to_owned(), Value::Object(packages));
    MetadataFile {
        key: format!("p2/{name}{suffix}.json"),
        bytes: json::stringify_compact(&Value::Object(root)).into_bytes(),
    }
}

/// The version object: the package's composer.json (top-level `null`s dropped, see the minifier
/// caveat) with `name`, `version` and `dist`.
fn version_object(base: &str, version: &PublishedVersion) -> Map<String, Value> {
    let mut object = Map::new();
    object.insert("name".to_owned(), Value::String(version.name.clone()));
    object.insert("version".to_owned(), Value::String(version.version.clone()));
    if let Ok(normalized) = crate::version::composer_normalize(&version.version) {
        object.insert("version_normalized".to_owned(), Value::String(normalized));
    }
    for (key, value) in version.composer.to_map() {
        if key == "name" || key == "version" || key == "dist" || key == "source" || value.is_null() {
            continue;
        }
        object.insert(key, value);
    }
    let mut dist = Map::new();
    dist.insert("type".to_owned(), Value::String("zip".to_owned()));
    dist.insert("url".to_owned(), Value::String(format!("{base}/{}", version.key)));
    dist.insert("shasum".to_owned(), Value::String(version.sha1.clone()));
    // A dev version's archive changes under the same version: the reference (here the archive's
    // sha1) is how Composer tells that an installed or locked dev package is out of date.
    if is_dev(&version.version) {
        dist.insert("reference".to_owned(), Value::String(version.sha1.clone()));
    }
    object.insert("dist".to_owned(), Value::Object(dist));
    object
}

/// composer/metadata-minifier's `minify`: the first version in full, then only the top-level keys
/// that changed, and `"__unset"` for keys that disappeared.
pub fn minify(versions: &[Map<String, Value>]) -> Vec<Value> {
    let mut out = Vec::with_capacity(versions.len());
    let mut state: Option<Map<String, Value>> = None;
    for version in versions {
        match &mut state {
            None => {
                out.push(Value::Object(version.clone()));
                state = Some(version.clone());
            }
            Some(previous) => {
                let mut diff = Map::new();
                for (key, value) in version {
                    if previous.get(key) != Some(value) {
                        diff.insert(key.clone(), value.clone());
                    }
                }
                for key in previous.keys() {
                    if !version.contains_key(key) {
                        diff.insert(key.clone(), Value::String("__unset".to_owned()));
                    }
                }
                out.push(Value::Object(diff));
                *previous = version.clone();
            }
        }
    }
    out
}

/// composer/metadata-minifier's `expand` (used by tests and `verify`).
pub fn expand(minified: &[Value]) -> Vec<Map<String, Value>> {
    let mut out: Vec<Map<String, Value>> = Vec::with_capacity(minified.len());
    let mut state = Map::new();
    for entry in minified {
        if let Value::Object(entry) = entry {
            for (key, value) in entry {
                if value == "__unset" {
                    state.shift_remove(key);
                } else {
                    state.insert(key.clone(), value.clone());
                }
            }
        }
        out.push(state.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published(name: &str, version: &str, require: &str) -> PublishedVersion {
        let composer: Map<String, Value> = serde_json::from_str(&format!(
            r#"{{"name":"{name}","type":"library","require":{require},"homepage":null}}"#
        ))
        .unwrap();
        PublishedVersion {
            name: name.to_owned(),
            version: version.to_owned(),
            composer: ComposerJson::of_map(&composer),
            key: format!("packages/{name}-{version}.zip"),
            sha1: "ab".repeat(20),
        }
    }

    #[test]
    fn composer_json_is_kept_as_compact_text_and_stored_as_the_object() {
        let pretty = json::stringify_pretty(&serde_json::json!({"name": "acme/a", "require": {"php": "^8 || ^7.4"}}));
        let composer = ComposerJson::of_pretty(&pretty);
        assert_eq!(composer.as_str(), r#"{"name":"acme/a","require":{"php":"^8 || ^7.4"}}"#);
        assert_eq!(composer, ComposerJson::of_map(&composer.to_map()));
        assert!(composer.is_pretty(&pretty));
        assert!(!composer.is_pretty(&pretty.replace("^8 ", "^9 ")));

        #[derive(Serialize, Deserialize)]
        struct Holder {
            composer: ComposerJson,
        }
        let stored = serde_json::to_string(&Holder { composer: composer.clone() }).unwrap();
        assert_eq!(stored, format!(r#"{{"composer":{}}}"#, composer.as_str()));
        assert_eq!(serde_json::from_str::<Holder>(&stored).unwrap().composer, composer);
        for not_an_object in [r#"{"composer":[1]}"#, r#"{"composer":"{}"}"#, r#"{"composer":{"a":}}"#] {
            assert!(serde_json::from_str::<Holder>(not_an_object).is_err(), "{not_an_object}");
        }
        // A manifest an older farm wrote keeps its keys in its own order: still the same object.
        let legacy: Holder = serde_json::from_str(r#"{"composer":{"b":1.0,"2":true}}"#).unwrap();
        let pretty = json::stringify_pretty(&serde_json::json!({"2": true, "b": 1}));
        assert!(legacy.composer.is_pretty(&pretty));
    }

    #[test]
    fn layout_and_roundtrip() {
        let versions = vec![
            published("acme/a", "1.0.0", r#"{"php":"^8"}"#),
            published("acme/a", "1.0.0-p2", r#"{"php":"^8"}"#),
            published("acme/a", "1.0.0-p10", r#"{"php":"^8.1"}"#),
            published("acme/a", "dev-main", r#"{}"#),
            published("acme/b", "2.0", r#"{}"#),
        ];
        let files = render("https://repo.example.org/", &versions);
        let keys: Vec<&str> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(
            keys,
            ["p2/acme/a.json", "p2/acme/a~dev.json", "p2/acme/b.json", "p2/acme/b~dev.json", "packages.json"]
        );
        let root: Value = serde_json::from_slice(&files[4].bytes).unwrap();
        assert_eq!(root["metadata-url"], "https://repo.example.org/p2/%package%.json");
        assert_eq!(root["available-packages"], serde_json::json!(["acme/a", "acme/b"]));
        let p2: Value = serde_json::from_slice(&files[0].bytes).unwrap();
        assert_eq!(p2["minified"], "composer/2.0");
        let expanded = expand(p2["packages"]["acme/a"].as_array().unwrap());
        let order: Vec<&str> = expanded.iter().map(|v| v["version"].as_str().unwrap()).collect();
        assert_eq!(order, ["1.0.0-p10", "1.0.0-p2", "1.0.0"]);
        assert_eq!(expanded[1]["require"]["php"], "^8");
        assert_eq!(expanded[1]["version_normalized"], "1.0.0.0-patch2");
        assert_eq!(expanded[2]["dist"]["url"], "https://repo.example.org/packages/acme/a-1.0.0.zip");
        assert!(!expanded[0].contains_key("homepage"));
        let dev: Value = serde_json::from_slice(&files[1].bytes).unwrap();
        assert_eq!(dev["packages"]["acme/a"][0]["version"], "dev-main");
        assert!(dev["packages"]["acme/a"][0]["dist"]["reference"].is_string());
    }

    #[test]
    fn minify_marks_removed_keys() {
        let a: Map<String, Value> = serde_json::from_str(r#"{"v":"2","x":1}"#).unwrap();
        let b: Map<String, Value> = serde_json::from_str(r#"{"v":"1"}"#).unwrap();
        let minified = minify(&[a.clone(), b.clone()]);
        assert_eq!(minified[1], serde_json::json!({"v":"1","x":"__unset"}));
        assert_eq!(expand(&minified), vec![a, b]);
    }
}
