//! A Composer repository's listing, read through [`crate::fetch`] as a Composer 2 client reads
//! it: `packages.json`, then each name's `p2` files (`metadata-url` with `available-packages`),
//! or the versions `packages.json` holds inline. Used by `verify` and `check`.

use anyhow::Context as _;
use serde_json::{Map, Value};
use shared::identity::shown;
use shared::metadata::PublishedVersion;

use crate::fetch::Source;

/// One version the repository lists.
#[derive(Debug, Clone)]
pub struct Listed {
    /// Name, version and the version object (in `composer`); `key` holds the dist URL as
    /// listed and `sha1` its shasum (both empty when absent).
    pub version: PublishedVersion,
    /// The dist URL resolved against the source, or why it cannot be used.
    pub dist: Result<String, String>,
}

impl Listed {
    /// `name version`, shown safely.
    pub fn label(&self) -> String {
        format!("{} {}", shown(&self.version.name), shown(&self.version.version))
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        crate::manifest::PackageId::new(&self.version.name, &self.version.version).to_string()
    }
}

/// What the repository lists.
#[derive(Debug, Default)]
pub struct Listing {
    /// Package names.
    pub packages: usize,
    /// Every version.
    pub versions: Vec<Listed>,
    /// Documents that could not be read or understood, one line each.
    pub problems: Vec<String>,
}

/// Reads the whole listing of `source`.
pub async fn read(source: &Source) -> anyhow::Result<Listing> {
    let base = source.base();
    let root = source.metadata("packages.json").await?.with_context(|| format!("{base}: no packages.json"))?;
    let mut listing = Listing::default();
    if let Some(inline) = root["packages"].as_object().filter(|p| !p.is_empty()) {
        listing.packages = inline.len();
        for (name, versions) in inline {
            let entries: Vec<Map<String, Value>> =
                versions.as_object().into_iter().flatten().filter_map(|(_, v)| v.as_object().cloned()).collect();
            add(source, name, entries, &mut listing);
        }
    }
    let Some(metadata_url) = root["metadata-url"].as_str() else {
        anyhow::ensure!(listing.packages > 0, "{base}: packages.json has neither metadata-url nor inline packages");
        return Ok(listing);
    };
    let names: Vec<String> = root["available-packages"]
        .as_array()
        .context("packages.json has a metadata-url but no available-packages list")?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    let limit = source.limits().max_packages;
    anyhow::ensure!(names.len() <= limit, "packages.json lists {} packages, over the limit of {limit}", names.len());
    listing.packages += names.len();
    for name in &names {
        for (suffix, required) in [("", true), ("~dev", false)] {
            let location = metadata_url.replace("%package%", &format!("{name}{suffix}"));
            match source.metadata(&location).await {
                Ok(Some(document)) => match expand(&document, name) {
                    Ok(entries) => add(source, name, entries, &mut listing),
                    Err(problem) => listing.problems.push(format!("{location}: {problem}")),
                },
                Ok(None) if required => listing.problems.push(format!("{location}: missing (listed in packages.json)")),
                Ok(None) => {}
                Err(error) => listing.problems.push(error.to_string()),
            }
        }
    }
    Ok(listing)
}

fn add(source: &Source, name: &str, entries: Vec<Map<String, Value>>, listing: &mut Listing) {
    for composer in entries {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).unwrap_or_default().to_owned();
        let version = text(composer.get("version"));
        let dist = composer.get("dist");
        let url = text(dist.and_then(|d| d.get("url")));
        let sha1 = text(dist.and_then(|d| d.get("shasum")));
        let resolved = if url.is_empty() {
            Err("no dist url".to_owned())
        } else {
            source.resolve(&url).map_err(|e| e.to_string())
        };
        let name = composer.get("name").and_then(Value::as_str).unwrap_or(name).to_owned();
        let composer = shared::metadata::ComposerJson::of_map(&composer);
        listing
            .versions
            .push(Listed { version: PublishedVersion { name, version, composer, key: url, sha1 }, dist: resolved });
    }
}

/// A p2 document's version list for `name`, expanded by [`shared::metadata::expand`] (the
/// inverse of the minifier `publish` writes with, keeping every version's key order): a
/// `composer/2.0` minified list inherits from entry to entry (`"__unset"` removes a key); in any
/// other list each entry stands alone. Used by `verify`, `check` and `adopt`.
pub(crate) fn expand(document: &Value, name: &str) -> Result<Vec<Map<String, Value>>, String> {
    let entries = document["packages"][name].as_array().ok_or_else(|| format!("no version list for {name}"))?;
    if !entries.iter().all(Value::is_object) {
        return Err("a version entry is not an object".to_owned());
    }
    if document["minified"].as_str() == Some("composer/2.0") {
        return Ok(shared::metadata::expand(entries));
    }
    Ok(entries.iter().flat_map(|entry| shared::metadata::expand(std::slice::from_ref(entry))).collect())
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn minified_versions_inherit_and_unset() {
        let document = serde_json::json!({
            "minified": "composer/2.0",
            "packages": {"a/b": [
                {"name": "a/b", "version": "2.0.0", "type": "library", "dist": {"url": "u2", "shasum": "s2"}},
                {"version": "1.0.0", "type": "__unset", "dist": {"url": "u1", "shasum": "s1"}}
            ]}
        });
        let versions = expand(&document, "a/b").unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[1]["name"], "a/b");
        assert!(versions[1].get("type").is_none());
        assert_eq!(versions[1]["dist"]["url"], "u1");
    }

    #[test]
    fn expanded_versions_keep_their_key_order() {
        let document = serde_json::json!({
            "minified": "composer/2.0",
            "packages": {"a/b": [
                {"name": "a/b", "version": "2.0.0", "type": "library", "license": ["MIT"], "dist": {"url": "u2"}},
                {"version": "1.0.0", "type": "__unset", "dist": {"url": "u1"}}
            ]}
        });
        let versions = expand(&document, "a/b").unwrap();
        let keys: Vec<&str> = versions[1].keys().map(String::as_str).collect();
        assert_eq!(keys, ["name", "version", "license", "dist"]);
        assert_eq!(versions, shared::metadata::expand(document["packages"]["a/b"].as_array().unwrap()));
    }

    #[test]
    fn unminified_versions_stand_alone() {
        let document = serde_json::json!({"packages": {"a/b": [
            {"name": "a/b", "version": "2.0.0", "type": "library"},
            {"version": "1.0.0"}
        ]}});
        let versions = expand(&document, "a/b").unwrap();
        assert_eq!(versions[1].len(), 1, "{versions:?}");
        let broken = serde_json::json!({"packages": {"a/b": [{"version": "1.0.0"}, "x"]}});
        assert_eq!(expand(&broken, "a/b").unwrap_err(), "a version entry is not an object");
    }
}
