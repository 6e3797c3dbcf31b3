//! Helpers of the distribution rules' unit tests: JSON objects from text and back, string maps and
//! sets, and a new Mage-OS release.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use crate::json;
use crate::release::Release;

pub(super) fn obj(text: &str) -> Map<String, Value> {
    match json::parse(text).expect("test JSON") {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub(super) fn compact(map: &Map<String, Value>) -> String {
    json::stringify_compact(&Value::Object(map.clone()))
}

pub(super) fn strings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

pub(super) fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A new Mage-OS release 1.0.0 (the reference tests' `createRelease`).
pub(super) fn release<'a>(
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
