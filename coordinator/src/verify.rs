//! `coordinator verify`: reads the published repository over HTTP as a Composer client does
//! (packages.json, every p2 file) and checks that every dist URL resolves and its sha1 matches,
//! through [`crate::fetch`]: timeouts, byte and version limits, links on the repository's origin.

use std::fmt::Write as _;

use anyhow::Context;
use futures_util::StreamExt as _;
use serde_json::{Map, Value};
use shared::identity::shown;
use tracing::info;

use crate::fetch::{Limits, Source};

/// What `verify` found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Package names listed.
    pub packages: usize,
    /// Versions (dist archives) checked.
    pub archives: usize,
    /// Bytes downloaded.
    pub bytes: u64,
    /// Everything wrong, one line each.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// A summary for the terminal.
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "verify: {} packages, {} archives ({} bytes) checked, {} problems",
            self.packages,
            self.archives,
            self.bytes,
            self.problems.len()
        );
        out.push_str(&crate::fetch::summarise(&self.problems));
        out
    }
}

/// Checks the repository served at `base_url` with up to `concurrency` downloads at once, within
/// `limits`; links may lead to `allowed_hosts` besides the repository's own origin.
pub async fn verify(
    base_url: &str,
    concurrency: usize,
    limits: Limits,
    allowed_hosts: &[String],
) -> anyhow::Result<VerifyReport> {
    let source = Source::http(base_url, limits, allowed_hosts)?;
    let root = source.metadata("packages.json").await?.with_context(|| format!("{base_url}: no packages.json"))?;
    let mut report = VerifyReport::default();
    let metadata_url = root["metadata-url"].as_str().context("packages.json has no metadata-url")?;
    let names: Vec<String> = root["available-packages"]
        .as_array()
        .context("packages.json has no available-packages list")?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    let limit = source.limits().max_packages;
    anyhow::ensure!(names.len() <= limit, "packages.json lists {} packages, over the limit of {limit}", names.len());
    report.packages = names.len();
    let mut dists = Vec::new();
    for name in &names {
        for (suffix, required) in [("", true), ("~dev", false)] {
            let location = metadata_url.replace("%package%", &format!("{name}{suffix}"));
            match source.metadata(&location).await {
                Ok(Some(document)) => dists.extend(listed_dists(&source, &location, &document, name, &mut report)),
                Ok(None) if required => report.problems.push(format!("{location}: missing (listed in packages.json)")),
                Ok(None) => {}
                Err(error) => report.problems.push(error.to_string()),
            }
        }
    }
    report.archives = dists.len();
    info!(archives = dists.len(), "checking archives");
    let source = &source;
    let mut checks = futures_util::stream::iter(
        dists
            .into_iter()
            .map(|(label, url, expected)| async move { (label, check_archive(source, &url, &expected).await) }),
    )
    .buffer_unordered(concurrency.max(1));
    while let Some((label, outcome)) = checks.next().await {
        match outcome {
            Ok(size) => report.bytes += size,
            Err(problem) => report.problems.push(format!("{label}: {problem}")),
        }
    }
    report.problems.sort();
    Ok(report)
}

/// The `(label, dist URL, sha1)` of every version a p2 document lists.
fn listed_dists(
    source: &Source,
    location: &str,
    document: &Value,
    name: &str,
    report: &mut VerifyReport,
) -> Vec<(String, String, String)> {
    let versions = match expand(document, name) {
        Ok(versions) => versions,
        Err(problem) => {
            report.problems.push(format!("{location}: {problem}"));
            return Vec::new();
        }
    };
    let mut dists = Vec::with_capacity(versions.len());
    for version in versions {
        let label = format!("{} {}", shown(name), shown(version.get("version").and_then(Value::as_str).unwrap_or("?")));
        let dist = version.get("dist");
        let url = dist.and_then(|d| d.get("url")).and_then(Value::as_str);
        let sha1 = dist.and_then(|d| d.get("shasum")).and_then(Value::as_str);
        match (url, sha1) {
            (Some(url), Some(sha1)) => match source.resolve(url) {
                Ok(url) => dists.push((label, url, sha1.to_owned())),
                Err(error) => report.problems.push(format!("{label}: {error}")),
            },
            _ => report.problems.push(format!("{label}: no dist url or shasum in {location}")),
        }
    }
    dists
}

/// Downloads an archive (streamed, within the archive limit) and compares its sha1; returns its
/// size.
async fn check_archive(source: &Source, url: &str, expected: &str) -> Result<u64, String> {
    let digests = source.digest(url).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("{url}: HTTP 404"))?;
    if digests.sha1 != expected {
        return Err(format!("{url}: sha1 {}, the metadata says {expected}", digests.sha1));
    }
    Ok(digests.size)
}

/// A p2 document's version list for `name`, expanded by [`shared::metadata::expand`] (the
/// inverse of the minifier `publish` writes with, keeping every version's key order): a
/// `composer/2.0` minified list inherits from entry to entry (`"__unset"` removes a key); in any
/// other list each entry stands alone. Used by `verify` and `adopt`.
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
    use super::*;

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
