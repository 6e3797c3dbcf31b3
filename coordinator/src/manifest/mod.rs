//! The build manifest: every published name@version with its digests and provenance.
//!
//! Stored next to the repository (`.farm/manifest.json`). It is what makes builds incremental
//! (a tagged name@version in the manifest is never built again; a `dev-<branch>` version only when
//! its content digest changed) and what the metadata is rendered from, so metadata never names an
//! archive that is not stored. It also records, per upstream, the refs of the last complete
//! build and a fingerprint of the rules, so polling knows when there is something new.
//! [`journal`] is how it is stored: a snapshot plus segments of what each save changed.

pub mod journal;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::metadata::{ComposerJson, PublishedVersion};
use shared::storage::{STATE_PREFIX, StorageError};

/// Storage key of the manifest.
pub fn manifest_key() -> String {
    format!("{STATE_PREFIX}/manifest.json")
}

/// One published archive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Composer name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Storage key of the archive.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// sha1 of the archive.
    pub sha1: String,
    /// sha256 of the archive.
    pub sha256: String,
    /// Where it came from: an upstream's key, or what else made it (`upstream` in the file).
    pub upstream: Provenance,
    /// Git URL it was built from.
    pub repo: String,
    /// Tag (or branch) it was built from.
    pub git_ref: String,
    /// Commit id.
    pub commit: String,
    /// Tree id of the package folder.
    pub tree_id: String,
    /// The composer.json inside the archive (for metadata; shared with what is published).
    pub composer: ComposerJson,
    /// The signed provenance statement that names it (`provenance/<build>.intoto.jsonl`); none
    /// yet when it was recorded without a key, or by a build that stopped before it signed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attested: Option<String>,
}

/// A package version, `name@version`: the manifest's key and how reports name it. This is the one
/// place the form is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageId<'a> {
    /// Composer name.
    pub name: &'a str,
    /// Version.
    pub version: &'a str,
}

impl<'a> PackageId<'a> {
    /// The id of `name` at `version`.
    pub fn new(name: &'a str, version: &'a str) -> PackageId<'a> {
        PackageId { name, version }
    }
}

impl std::fmt::Display for PackageId<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{}", self.name, self.version)
    }
}

/// What made a published archive or a planned package. Stored and reported as one string (the
/// `upstream` field): an upstream's key, or `aliases`, `additional`, `adopted`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Provenance {
    /// Built from the git upstream with this key.
    Git(String),
    /// An alias metapackage (spec 3.10), made from the vendor package that replaces it.
    Alias,
    /// A prebuilt archive from the additional packages folder.
    Additional,
    /// Taken over from a repository published before this farm managed it.
    Adopted,
}

impl Provenance {
    /// The upstream key, when built from git.
    pub fn upstream(&self) -> Option<&str> {
        match self {
            Provenance::Git(key) => Some(key),
            _ => None,
        }
    }

    /// Whether it was built from the upstream `key`.
    pub fn is_upstream(&self, key: &str) -> bool {
        self.upstream() == Some(key)
    }

    /// The stored and reported form.
    pub fn as_str(&self) -> &str {
        match self {
            Provenance::Git(key) => key,
            Provenance::Alias => "aliases",
            Provenance::Additional => "additional",
            Provenance::Adopted => "adopted",
        }
    }
}

impl From<String> for Provenance {
    fn from(text: String) -> Provenance {
        match text.as_str() {
            "aliases" => Provenance::Alias,
            "additional" => Provenance::Additional,
            "adopted" => Provenance::Adopted,
            _ => Provenance::Git(text),
        }
    }
}

impl From<Provenance> for String {
    fn from(provenance: Provenance) -> String {
        provenance.as_str().to_owned()
    }
}

impl std::fmt::Display for Provenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where and what an archive is in storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArchive {
    /// Storage key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// sha1 (hex).
    pub sha1: String,
    /// sha256 (hex).
    pub sha256: String,
}

impl StoredArchive {
    /// An archive read back from storage, described by its own bytes.
    pub fn of_bytes(key: String, bytes: &[u8]) -> StoredArchive {
        use sha1::Digest as _;
        StoredArchive {
            key,
            size: bytes.len() as u64,
            sha1: hex::encode(sha1::Sha1::digest(bytes)),
            sha256: hex::encode(sha2::Sha256::digest(bytes)),
        }
    }
}

/// The source an entry records: what made it and, for git, the URL, ref, commit and tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// What made it.
    pub provenance: Provenance,
    /// Git URL (redacted), or the prebuilt file's path.
    pub repo: String,
    /// Tag or branch, or the prebuilt file's name.
    pub git_ref: String,
    /// Commit id (git only).
    pub commit: String,
    /// Tree id of the package folder (git only).
    pub tree_id: String,
}

impl Origin {
    /// Taken over from an existing repository: no source is known.
    pub fn adopted() -> Origin {
        Origin {
            provenance: Provenance::Adopted,
            repo: String::new(),
            git_ref: String::new(),
            commit: String::new(),
            tree_id: String::new(),
        }
    }
}

impl ManifestEntry {
    /// The entry of `name` at `version`, stored as `stored`, carrying `composer`, from `origin`.
    pub fn new(
        name: String,
        version: String,
        stored: StoredArchive,
        composer: ComposerJson,
        origin: Origin,
    ) -> ManifestEntry {
        let StoredArchive { key, size, sha1, sha256 } = stored;
        let Origin { provenance, repo, git_ref, commit, tree_id } = origin;
        ManifestEntry {
            name,
            version,
            key,
            size,
            sha1,
            sha256,
            upstream: provenance,
            repo,
            git_ref,
            commit,
            tree_id,
            composer,
            attested: None,
        }
    }

    /// `name@version`.
    pub fn id(&self) -> String {
        PackageId::new(&self.name, &self.version).to_string()
    }
}

/// All published archives, keyed by `name@version`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Format version.
    pub schema: u32,
    /// Entries by `name@version`.
    pub packages: BTreeMap<String, ManifestEntry>,
    /// Per upstream key: what its last complete build read.
    #[serde(default)]
    pub upstreams: BTreeMap<String, UpstreamRecord>,
    /// The snapshot's generation: the segments that follow it are stored under it (none in a
    /// manifest written before segments existed; its first save makes a snapshot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<String>,
    /// Where the next save goes and what it holds.
    #[serde(skip)]
    journal: journal::JournalState,
}

/// The refs an upstream's last complete build (every package built or unchanged) planned.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpstreamRecord {
    /// Fingerprint of the upstream's rules and of this program's version.
    pub rules: String,
    /// `refs/tags/<t>` and `refs/heads/<b>` to commit ids.
    pub refs: BTreeMap<String, String>,
}

/// The manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The stored manifest is not valid.
    #[error("manifest {key} is corrupt: {source}")]
    Corrupt {
        /// Its key.
        key: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl Manifest {
    /// The stored form of a snapshot.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Records an entry under its `name@version` (replacing what was there); the next save holds
    /// it unless it is exactly what was there.
    pub fn record(&mut self, entry: ManifestEntry) {
        let id = entry.id();
        if self.packages.get(&id) != Some(&entry) {
            self.journal.changed_packages.insert(id.clone());
            self.packages.insert(id, entry);
        }
    }

    /// Whether `name@version` is published.
    pub fn contains(&self, id: &str) -> bool {
        self.packages.contains_key(id)
    }

    /// The metadata view of every entry.
    pub fn published_versions(&self) -> Vec<PublishedVersion> {
        self.packages
            .values()
            .map(|entry| PublishedVersion {
                name: entry.name.clone(),
                version: entry.version.clone(),
                composer: entry.composer.clone(),
                key: entry.key.clone(),
                sha1: entry.sha1.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provenance_words_round_trip_and_are_the_reserved_upstream_keys() {
        let words: Vec<&str> =
            [Provenance::Alias, Provenance::Additional, Provenance::Adopted].iter().map(Provenance::as_str).collect();
        assert_eq!(words, shared::config::RESERVED_UPSTREAM_KEYS);
        for word in words {
            assert_eq!(Provenance::from(word.to_owned()).as_str(), word);
            assert_eq!(Provenance::from(word.to_owned()).upstream(), None);
        }
        assert!(Provenance::from("magento2".to_owned()).is_upstream("magento2"));
        assert_eq!(PackageId::new("mage-os/a", "1.0.0").to_string(), "mage-os/a@1.0.0");
    }
}
