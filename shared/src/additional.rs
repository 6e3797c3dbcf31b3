//! Prebuilt "additional packages" (reference spec 3.11): archives published as they are.
//!
//! The reference keeps zips downloaded from repo.magento.com (packages without git tags, patch
//! releases) and, for a name@version found among them, writes no archive of its own; the mirror
//! then serves the prebuilt zip from `packages/additional/<file>`. Here the folder is an input
//! (`repository.additional_packages`); the product does not ship the reference's files. The
//! zips are read with the `zip` crate (they come from elsewhere and may be deflated).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};
use sha1::Digest as _;

pub use crate::identity::ADDITIONAL_PREFIX;

/// One prebuilt archive.
#[derive(Debug, Clone)]
pub struct AdditionalPackage {
    /// File name, e.g. `magento-module-page-builder-2.2.1-p1.zip`.
    pub file_name: String,
    /// Where it is read from.
    pub path: PathBuf,
    /// Composer name from its composer.json.
    pub name: String,
    /// Version from its composer.json.
    pub version: String,
    /// Its composer.json (for metadata).
    pub composer: Map<String, Value>,
    /// Size in bytes.
    pub size: u64,
    /// sha1 of the file.
    pub sha1: String,
    /// sha256 of the file.
    pub sha256: String,
}

impl AdditionalPackage {
    /// Storage key the archive is published at.
    pub fn key(&self) -> String {
        crate::identity::prebuilt_key(&self.file_name)
    }
}

/// The scanned folder.
#[derive(Debug, Default, Clone)]
pub struct AdditionalPackages {
    /// Readable archives, sorted by file name.
    pub packages: Vec<AdditionalPackage>,
    /// Files that could not be used, with the reason.
    pub problems: Vec<(String, String)>,
    file_names: HashSet<String>,
}

static PATCHED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?P<main>[0-9.]+)(?:-p(?P<patch>[0-9]+))?$").expect("valid regex"));

impl AdditionalPackages {
    /// Reads every `*.zip` in `dir` (not recursive).
    pub fn scan(dir: &Path) -> std::io::Result<AdditionalPackages> {
        let mut found = AdditionalPackages::default();
        let mut names: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(|entry| entry.ok())
            .filter(|entry| entry.path().is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| name.ends_with(".zip"))
            .collect();
        names.sort();
        for file_name in names {
            let path = dir.join(&file_name);
            match read_package(&path, &file_name) {
                Ok(package) => {
                    found.file_names.insert(file_name);
                    found.packages.push(package);
                }
                Err(reason) => {
                    // The reference's existence check is by file name, so even an unreadable
                    // file stops the build of its name@version.
                    found.file_names.insert(file_name.clone());
                    found.problems.push((file_name, reason));
                }
            }
        }
        Ok(found)
    }

    /// The reference's `isInAdditionalPackages`: the file that provides `name@version`, if any.
    /// `2.2.1-p1` is looked up as `<vendor>-<package>-2.2.1-p1.zip` or `...-2.2.1-patch1.zip`.
    pub fn provider(&self, name: &str, version: &str) -> Option<&str> {
        let (vendor, package) = name.split_once('/')?;
        let (main, patch) = match PATCHED.captures(version) {
            Some(captures) => (captures["main"].to_owned(), captures.name("patch").map(|m| m.as_str().to_owned())),
            None => (version.to_owned(), None),
        };
        let base = format!("{vendor}-{package}-{main}");
        let candidates = match patch {
            Some(patch) => vec![format!("{base}-p{patch}.zip"), format!("{base}-patch{patch}.zip")],
            None => vec![format!("{base}.zip")],
        };
        candidates.into_iter().find_map(|candidate| self.file_names.get(&candidate).map(String::as_str))
    }
}

/// Largest composer.json read from an archive (a zip can claim any size; real ones are kilobytes).
pub const MAX_COMPOSER_JSON_BYTES: u64 = 4 << 20;

/// Reads the root composer.json of a zip archive (any compression the `zip` crate reads).
pub fn composer_json_of_zip(reader: impl std::io::Read + std::io::Seek) -> Result<Map<String, Value>, String> {
    let mut archive = zip::ZipArchive::new(reader).map_err(|e| format!("not a zip archive: {e}"))?;
    let mut text = String::new();
    // The size in the header is the archive's claim; the read is capped either way.
    archive
        .by_name("composer.json")
        .map_err(|e| format!("no composer.json at the archive root: {e}"))?
        .take(MAX_COMPOSER_JSON_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read composer.json: {e}"))?;
    if text.len() as u64 > MAX_COMPOSER_JSON_BYTES {
        return Err(format!("composer.json is larger than {MAX_COMPOSER_JSON_BYTES} bytes"));
    }
    serde_json::from_str(&text).map_err(|e| format!("composer.json is not a JSON object: {e}"))
}

fn read_package(path: &Path, file_name: &str) -> Result<AdditionalPackage, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read: {e}"))?;
    let composer = composer_json_of_zip(std::io::Cursor::new(&bytes))?;
    let name = composer
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| n.contains('/'))
        .ok_or("composer.json has no package name")?;
    let version = composer
        .get("version")
        .and_then(Value::as_str)
        .filter(|v| !v.is_empty())
        .ok_or("composer.json has no version")?;
    crate::identity::check(name, version, &crate::identity::prebuilt_key(file_name)).map_err(|e| e.to_string())?;
    Ok(AdditionalPackage {
        file_name: file_name.to_owned(),
        path: path.to_owned(),
        name: name.to_owned(),
        version: version.to_owned(),
        size: bytes.len() as u64,
        sha1: hex::encode(sha1::Sha1::digest(&bytes)),
        sha256: hex::encode(sha2::Sha256::digest(&bytes)),
        composer,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::archive::{ArchiveBuilder, FILE_MODE};

    fn write_zip(dir: &Path, file_name: &str, composer: &str) {
        let mut builder = ArchiveBuilder::new();
        builder.add_file("composer.json", Arc::from(composer.as_bytes()), FILE_MODE);
        builder.write_to(std::fs::File::create(dir.join(file_name)).unwrap()).unwrap();
    }

    #[test]
    fn lookup_follows_the_reference_naming() {
        let dir = tempfile::tempdir().unwrap();
        write_zip(
            dir.path(),
            "magento-module-a-2.2.1-patch1.zip",
            r#"{"name":"magento/module-a","version":"2.2.1-p1"}"#,
        );
        write_zip(dir.path(), "magento-module-b-1.0.0.zip", r#"{"name":"magento/module-b","version":"1.0.0"}"#);
        std::fs::write(dir.path().join("magento-module-c-3.0.0.zip"), b"not a zip").unwrap();
        let found = AdditionalPackages::scan(dir.path()).unwrap();
        assert_eq!(found.provider("magento/module-a", "2.2.1-p1"), Some("magento-module-a-2.2.1-patch1.zip"));
        assert_eq!(found.provider("magento/module-a", "2.2.1"), None);
        assert_eq!(found.provider("magento/module-b", "1.0.0"), Some("magento-module-b-1.0.0.zip"));
        assert_eq!(found.provider("magento/module-c", "3.0.0"), Some("magento-module-c-3.0.0.zip"));
        assert_eq!(found.packages.len(), 2);
        assert_eq!(found.problems.len(), 1);
        assert_eq!(found.packages[0].key(), "packages/additional/magento-module-a-2.2.1-patch1.zip");
    }
}
