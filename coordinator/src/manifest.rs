//! The build manifest: every published name@version with its digests and provenance.
//!
//! Stored next to the repository (`.farm/manifest.json`). It is what makes builds incremental
//! (a tagged name@version in the manifest is never built again; a `dev-<branch>` version only when
//! its content digest changed) and what the metadata is rendered from, so metadata never names an
//! archive that is not stored. It also records, per upstream, the refs of the last complete
//! build and a fingerprint of the rules, so polling knows when there is something new.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use shared::metadata::PublishedVersion;
use shared::storage::{STATE_PREFIX, Storage, StorageError};

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
    /// Upstream key.
    pub upstream: String,
    /// Git URL it was built from.
    pub repo: String,
    /// Tag (or branch) it was built from.
    pub git_ref: String,
    /// Commit id.
    pub commit: String,
    /// Tree id of the package folder.
    pub tree_id: String,
    /// The composer.json inside the archive (for metadata).
    pub composer: Map<String, Value>,
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
    /// Loads the manifest, or an empty one if none is stored yet.
    pub async fn load(storage: &impl Storage) -> Result<Manifest, ManifestError> {
        let key = manifest_key();
        match storage.get(&key).await? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|source| ManifestError::Corrupt { key, source }),
            None => Ok(Manifest { schema: 1, ..Manifest::default() }),
        }
    }

    /// The stored form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("manifest serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Stores a manifest's bytes atomically, after making the archives it names durable.
    pub async fn save_bytes(storage: &impl Storage, bytes: Vec<u8>) -> Result<(), StorageError> {
        storage.flush().await?;
        storage.put_replace(&manifest_key(), bytes).await?;
        storage.flush().await
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
