//! Publishing the Composer metadata the manifest describes, with storage work in proportion to
//! what changed.
//!
//! The farm keeps an index of what it last published: `.farm/metadata-index.json`, each metadata
//! key with the SHA-256 of its bytes. A publish renders every file in memory, compares each with
//! the index and writes only the files whose bytes differ, `storage.uploads` at a time,
//! `packages.json` last (so clients never see a root that names a file not yet written). A file
//! the index does not know (a first build, an index lost or deleted by an operator, a file whose
//! write a crash interrupted) is written again, and the change feed names it: a crashed publish
//! may have written it without telling the feed, and its `Last-Modified` must not be older than
//! the feed's action.
//!
//! Crash safety: before writing, the index is saved without the keys about to change; after, with
//! their new digests. An index therefore never vouches for bytes that are not in storage.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use anyhow::Context as _;
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::{Deserialize, Serialize};
use sha2::Digest as _;
use shared::metadata::{MetadataFile, PublishedVersion};
use shared::storage::{STATE_PREFIX, Storage};
use tracing::{info, warn};

use crate::feed;

/// Where the index lives.
pub fn index_key() -> String {
    format!("{STATE_PREFIX}/metadata-index.json")
}

/// Metadata key → hex SHA-256 of the bytes published there.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Index {
    files: BTreeMap<String, String>,
}

impl Index {
    async fn load(storage: &impl Storage) -> anyhow::Result<Index> {
        match storage.get(&index_key()).await? {
            Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                // Losing the index costs one comparison per file, not correctness.
                warn!(%error, "the metadata index is unreadable; comparing every file with storage once");
                Index::default()
            })),
            None => Ok(Index::default()),
        }
    }

    async fn save(&self, storage: &impl Storage) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(self).expect("index serialises");
        storage.put_replace(&index_key(), bytes).await.context("cannot save the metadata index")
    }
}

/// What one publish did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Published {
    /// Files written.
    pub written: usize,
    /// Files removed (names with no version left).
    pub removed: usize,
}

/// Renders metadata from the versions and writes the files that changed (see the module docs).
/// In an output the farm already managed (`prune`), it then removes the p2 files of names the new
/// `packages.json` no longer lists (only possible after the manifest was edited by hand); in an
/// output written by another tool, nothing it did not write is deleted.
pub async fn publish_metadata(
    storage: &impl Storage,
    base_url: &str,
    versions: &[PublishedVersion],
    prune: bool,
    uploads: usize,
    feed_retention: Duration,
) -> anyhow::Result<Published> {
    let mut index = Index::load(storage).await?;
    let previous_names = if prune { listed_names(storage).await? } else { Vec::new() };
    let files = shared::metadata::render(base_url, versions);
    let mut current_names = HashSet::new();
    let mut changes = Vec::new();
    // Mirrors re-fetch every p2 file written. A file the index does not know (one a crashed
    // publish may have written without telling the feed) is written again, so that its
    // Last-Modified is not older than the action that names it.
    let mut feed_changes = Vec::new();
    for file in files {
        let package = feed::package_of(&file.key).map(str::to_owned);
        if let Some(package) = &package {
            current_names.insert(package.trim_end_matches("~dev").to_owned());
        }
        let digest = hex::encode(sha2::Sha256::digest(&file.bytes));
        if index.files.get(&file.key) != Some(&digest) {
            feed_changes.extend(package.map(|package| (package, feed::Kind::Update)));
            changes.push((file, digest));
        }
    }
    let mut published = Published::default();
    let removed: Vec<&String> = previous_names.iter().filter(|name| !current_names.contains(*name)).collect();
    for name in &removed {
        feed_changes.extend([(name.to_string(), feed::Kind::Delete), (format!("{name}~dev"), feed::Kind::Delete)]);
    }
    if changes.is_empty() && removed.is_empty() {
        return Ok(published);
    }
    // Taken before any file is written: no action is newer than the file it names.
    let stamp = feed::now();
    // The index stops vouching for what is about to change before anything changes.
    if !changes.is_empty() {
        for (file, _) in &changes {
            index.files.remove(&file.key);
        }
        index.save(storage).await?;
    }
    let (root, rest): (Vec<_>, Vec<_>) = changes.into_iter().partition(|(file, _)| file.key == "packages.json");
    published.written += write_all(storage, rest, uploads, &mut index).await?;
    // The feed names files once they are written, and before the root that lists them.
    let previous_feed = feed::Feed::load(storage).await?;
    if !feed_changes.is_empty() || previous_feed.is_none() {
        let next = feed::Feed::record(previous_feed, feed_changes, stamp, feed_retention);
        storage.put_replace(feed::FEED_KEY, next.to_bytes()).await.context("cannot write the change feed")?;
    }
    published.written += write_all(storage, root, uploads, &mut index).await?;
    for name in removed {
        warn!(package = %name, "no published version left; removing its metadata");
        for key in [format!("p2/{name}.json"), format!("p2/{name}~dev.json")] {
            storage.delete(&key).await.with_context(|| format!("cannot delete {key}"))?;
            index.files.remove(&key);
            published.removed += 1;
        }
    }
    storage.flush().await?;
    index.save(storage).await?;
    info!(written = published.written, removed = published.removed, "metadata published");
    Ok(published)
}

/// Writes the files, `uploads` at a time, and records their digests; returns how many.
async fn write_all(
    storage: &impl Storage,
    files: Vec<(MetadataFile, String)>,
    uploads: usize,
    index: &mut Index,
) -> anyhow::Result<usize> {
    let written: Vec<(String, String)> = futures_util::stream::iter(files)
        .map(|(file, digest)| async move {
            storage.put_replace(&file.key, file.bytes).await.with_context(|| format!("cannot write {}", file.key))?;
            Ok::<_, anyhow::Error>((file.key, digest))
        })
        .buffer_unordered(uploads.max(1))
        .try_collect()
        .await?;
    let count = written.len();
    index.files.extend(written);
    Ok(count)
}

/// The names the published `packages.json` lists (none if there is none yet).
async fn listed_names(storage: &impl Storage) -> anyhow::Result<Vec<String>> {
    let Some(bytes) = storage.get("packages.json").await? else {
        return Ok(Vec::new());
    };
    let root: serde_json::Value = serde_json::from_slice(&bytes).context("published packages.json is not JSON")?;
    Ok(root["available-packages"]
        .as_array()
        .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use shared::storage::{LocalStorage, StorageError, Stored};

    use super::*;

    /// A local folder that counts reads and writes of metadata.
    struct Counting {
        inner: LocalStorage,
        gets: AtomicUsize,
        puts: AtomicUsize,
    }

    impl Storage for Counting {
        fn scratch_dir(&self) -> std::path::PathBuf {
            self.inner.scratch_dir()
        }
        async fn put_archive(
            &self,
            key: &str,
            file: &std::path::Path,
            digest: &shared::archive::ArchiveDigest,
        ) -> Result<Stored, StorageError> {
            self.inner.put_archive(key, file, digest).await
        }
        async fn put_replace(&self, key: &str, bytes: Vec<u8>) -> Result<(), StorageError> {
            if key != index_key() && key != feed::FEED_KEY {
                self.puts.fetch_add(1, Ordering::SeqCst);
            }
            self.inner.put_replace(key, bytes).await
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
            if key != index_key() && key != feed::FEED_KEY {
                self.gets.fetch_add(1, Ordering::SeqCst);
            }
            self.inner.get(key).await
        }
        async fn exists(&self, key: &str) -> Result<bool, StorageError> {
            self.inner.exists(key).await
        }
        async fn delete(&self, key: &str) -> Result<(), StorageError> {
            self.inner.delete(key).await
        }
        async fn flush(&self) -> Result<(), StorageError> {
            self.inner.flush().await
        }
    }

    const RETENTION: Duration = Duration::from_secs(3600);

    fn version(name: &str, version: &str) -> PublishedVersion {
        let composer = serde_json::json!({"name": name, "version": version, "type": "library"});
        PublishedVersion {
            name: name.to_owned(),
            version: version.to_owned(),
            composer: shared::metadata::ComposerJson::of_map(composer.as_object().unwrap()),
            key: format!("packages/{name}-{version}.zip"),
            sha1: "0".repeat(40),
        }
    }

    fn counts(storage: &Counting) -> (usize, usize) {
        (storage.gets.swap(0, Ordering::SeqCst), storage.puts.swap(0, Ordering::SeqCst))
    }

    #[tokio::test]
    async fn a_publish_touches_only_what_changed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Counting {
            inner: LocalStorage::open(dir.path()).unwrap(),
            gets: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
        };
        let mut versions: Vec<PublishedVersion> = (0..50).map(|i| version(&format!("acme/p{i}"), "1.0.0")).collect();
        let first = publish_metadata(&storage, "https://repo.example/", &versions, false, 8, RETENTION).await.unwrap();
        // 50 p2 files, 50 (empty) ~dev files and packages.json, written (no index yet).
        assert_eq!(first.written, 101);
        counts(&storage);

        // Nothing changed: no metadata file is read or written (but packages.json, read once for
        // the names to prune).
        let again = publish_metadata(&storage, "https://repo.example/", &versions, true, 8, RETENTION).await.unwrap();
        assert_eq!(again, Published::default());
        assert_eq!(counts(&storage), (1, 0));

        // One new version of one package: its p2 file only (the root lists the same names).
        versions.push(version("acme/p7", "1.1.0"));
        let one = publish_metadata(&storage, "https://repo.example/", &versions, true, 8, RETENTION).await.unwrap();
        assert_eq!(one.written, 1);
        assert_eq!(counts(&storage), (1, 1));
        let p7: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("p2/acme/p7.json")).unwrap()).unwrap();
        assert_eq!(p7["packages"]["acme/p7"].as_array().unwrap().len(), 2);

        // The index is lost: every file is written once more (and named by the feed), then
        // nothing again.
        std::fs::remove_file(dir.path().join(index_key())).unwrap();
        let lost = publish_metadata(&storage, "https://repo.example/", &versions, true, 8, RETENTION).await.unwrap();
        assert_eq!(lost.written, 101);
        assert_eq!(counts(&storage), (1, 101));
        let after = publish_metadata(&storage, "https://repo.example/", &versions, true, 8, RETENTION).await.unwrap();
        assert_eq!(after, Published::default());
    }

    #[tokio::test]
    async fn an_index_never_vouches_for_a_file_whose_write_was_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Counting {
            inner: LocalStorage::open(dir.path()).unwrap(),
            gets: AtomicUsize::new(0),
            puts: AtomicUsize::new(0),
        };
        let old = vec![version("acme/a", "1.0.0")];
        publish_metadata(&storage, "https://repo.example/", &old, false, 4, RETENTION).await.unwrap();
        let before = std::fs::read(dir.path().join("p2/acme/a.json")).unwrap();
        // A later build wrote a new p2 file and died before saving the index: the index was
        // saved without the key first, so the old bytes are not vouched for.
        let mut index = Index::load(&storage.inner).await.unwrap();
        index.files.remove("p2/acme/a.json");
        index.save(&storage.inner).await.unwrap();
        std::fs::write(dir.path().join("p2/acme/a.json"), b"{\"half\":").unwrap();
        publish_metadata(&storage, "https://repo.example/", &old, true, 4, RETENTION).await.unwrap();
        assert_eq!(std::fs::read(dir.path().join("p2/acme/a.json")).unwrap(), before);
    }

    #[tokio::test]
    async fn the_feed_names_what_each_publish_changed() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).unwrap();
        let feed = || async { feed::Feed::load(&storage).await.unwrap().unwrap() };
        let mut versions = vec![version("acme/a", "1.0.0"), version("acme/b", "1.0.0")];
        publish_metadata(&storage, "https://repo.example/", &versions, false, 4, RETENTION).await.unwrap();
        let first = feed().await;
        let packages: Vec<&str> = first.actions.iter().map(|a| a.package.as_str()).collect();
        assert_eq!(packages, ["acme/a", "acme/a~dev", "acme/b", "acme/b~dev"]);

        // Nothing changed: the feed is not touched.
        publish_metadata(&storage, "https://repo.example/", &versions, true, 4, RETENTION).await.unwrap();
        assert_eq!(feed().await, first);

        // A new version of a, and b gone: one update, two deletes, newer than what a follower saw.
        versions.push(version("acme/a", "1.1.0"));
        versions.retain(|v| v.name != "acme/b");
        publish_metadata(&storage, "https://repo.example/", &versions, true, 4, RETENTION).await.unwrap();
        let feed::Answer::Changes(body) = feed::Feed::answer(Some(&feed().await), Some(&first.timestamp.to_string()))
        else {
            panic!("not an answer")
        };
        let actions: Vec<(String, String)> = body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["type"].as_str().unwrap().to_owned(), a["package"].as_str().unwrap().to_owned()))
            .collect();
        let expected = [("update", "acme/a"), ("delete", "acme/b"), ("delete", "acme/b~dev")];
        assert_eq!(actions, expected.map(|(t, p)| (t.to_owned(), p.to_owned())));
        assert!(!dir.path().join("p2/acme/b.json").exists());
        let root: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("packages.json")).unwrap()).unwrap();
        assert_eq!(root["metadata-changes-url"], "https://repo.example/metadata/changes.json");
    }
}
