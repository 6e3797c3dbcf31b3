//! `coordinator verify`: reads the published repository over HTTP as a Composer client does
//! (packages.json, every p2 file) and checks that every dist URL resolves and its sha1 matches.

use std::fmt::Write as _;

use anyhow::Context;
use futures_util::StreamExt as _;
use serde_json::{Map, Value};
use sha1::Digest as _;
use tracing::info;

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
        for problem in &self.problems {
            let _ = writeln!(out, "  {problem}");
        }
        out
    }
}

/// Checks the repository served at `base_url` with up to `concurrency` downloads at once.
pub async fn verify(base_url: &str, concurrency: usize) -> anyhow::Result<VerifyReport> {
    let client = reqwest::Client::builder()
        .user_agent(concat!("composer-farm-verify/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot create HTTP client")?;
    let base = base_url.trim_end_matches('/');
    let root_url = format!("{base}/packages.json");
    let root: Value = fetch_json(&client, &root_url).await?.with_context(|| format!("{root_url} does not exist"))?;
    let mut report = VerifyReport::default();
    let metadata_url = root["metadata-url"].as_str().context("packages.json has no metadata-url")?;
    let names: Vec<String> = root["available-packages"]
        .as_array()
        .context("packages.json has no available-packages list")?
        .iter()
        .filter_map(|n| n.as_str().map(str::to_owned))
        .collect();
    report.packages = names.len();
    let mut dists = Vec::new();
    for name in &names {
        for (suffix, required) in [("", true), ("~dev", false)] {
            let url = resolve(base, &metadata_url.replace("%package%", &format!("{name}{suffix}")));
            match fetch_json(&client, &url).await {
                Ok(Some(document)) => match expand(&document, name) {
                    Ok(versions) => {
                        for version in versions {
                            let label = format!("{name} {}", version["version"].as_str().unwrap_or("?"));
                            match (version["dist"]["url"].as_str(), version["dist"]["shasum"].as_str()) {
                                (Some(dist), Some(sha1)) => {
                                    dists.push((label, resolve(base, dist), sha1.to_owned()));
                                }
                                _ => report.problems.push(format!("{label}: no dist url or shasum in {url}")),
                            }
                        }
                    }
                    Err(problem) => report.problems.push(format!("{url}: {problem}")),
                },
                Ok(None) if required => report.problems.push(format!("{url}: missing (listed in packages.json)")),
                Ok(None) => {}
                Err(error) => report.problems.push(format!("{url}: {error:#}")),
            }
        }
    }
    report.archives = dists.len();
    info!(archives = dists.len(), "checking archives");
    let mut checks = futures_util::stream::iter(dists.into_iter().map(|(label, url, expected)| {
        let client = client.clone();
        async move { (label, check_archive(&client, &url, &expected).await) }
    }))
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

/// Downloads an archive and compares its sha1; returns its size.
async fn check_archive(client: &reqwest::Client, url: &str, expected: &str) -> Result<u64, String> {
    let response =
        client.get(url).send().await.map_err(|e| format!("{url}: {}", shared::telemetry::error_chain(&e)))?;
    if !response.status().is_success() {
        return Err(format!("{url}: HTTP {}", response.status()));
    }
    let bytes = response.bytes().await.map_err(|e| format!("{url}: {}", shared::telemetry::error_chain(&e)))?;
    let actual = hex::encode(sha1::Sha1::digest(&bytes));
    if actual != expected {
        return Err(format!("{url}: sha1 {actual}, the metadata says {expected}"));
    }
    Ok(bytes.len() as u64)
}

/// GETs a JSON document; `None` on 404.
pub(crate) async fn fetch_json(client: &reqwest::Client, url: &str) -> anyhow::Result<Option<Value>> {
    let response = client.get(url).send().await.with_context(|| format!("cannot GET {url}"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !response.status().is_success() {
        anyhow::bail!("GET {url}: HTTP {}", response.status());
    }
    let bytes = response.bytes().await.with_context(|| format!("cannot read {url}"))?;
    Ok(Some(serde_json::from_slice(&bytes).with_context(|| format!("{url} is not JSON"))?))
}

/// Expands a p2 document's version list (`composer/2.0` minified: each entry lists only what
/// changed from the previous one; `"__unset"` removes a key).
pub(crate) fn expand(document: &Value, name: &str) -> Result<Vec<Map<String, Value>>, String> {
    let entries = document["packages"][name].as_array().ok_or_else(|| format!("no version list for {name}"))?;
    let minified = document["minified"].as_str() == Some("composer/2.0");
    let mut current = Map::new();
    let mut versions = Vec::with_capacity(entries.len());
    for entry in entries {
        let entry = entry.as_object().ok_or("a version entry is not an object")?;
        if !minified {
            current.clear();
        }
        for (key, value) in entry {
            if value.as_str() == Some("__unset") {
                current.remove(key);
            } else {
                current.insert(key.clone(), value.clone());
            }
        }
        versions.push(current.clone());
    }
    Ok(versions)
}

/// A URL from the metadata, absolute or relative to the repository.
pub(crate) fn resolve(base: &str, url: &str) -> String {
    if url.starts_with("http://") || url.starts_with("https://") {
        url.to_owned()
    } else {
        format!("{base}/{}", url.trim_start_matches('/'))
    }
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
        assert_eq!(resolve("http://h/x", "p/a.zip"), "http://h/x/p/a.zip");
    }
}
