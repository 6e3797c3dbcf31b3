//! How the manifest is stored so that a save costs O(what changed): a snapshot
//! (`.farm/manifest.json`) plus numbered change segments of the snapshot's generation
//! (`.farm/manifest.journal/<generation>/<seq>.json`), folded into a new snapshot now and then.
//!
//! Crash safety rests on three rules:
//! - every object is written whole and atomically (`put_replace`: temp file, sync, rename on a
//!   folder; one PUT on S3), after the archives it names are durable;
//! - segment `n` is written only after segment `n - 1`, and a load applies `1, 2, ...` up to the
//!   first one missing, so a save cut short loses only itself (metadata is published from the
//!   manifest only after it was saved, so nothing published is lost);
//! - a compaction writes a snapshot under a new generation: the old generation's segments are then
//!   ignored (and deleted), so a compaction cut short leaves either the old snapshot with its
//!   segments or the new one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::storage::{STATE_PREFIX, Storage, StorageError};
use tracing::warn;

use super::{Manifest, ManifestEntry, ManifestError, UpstreamRecord, manifest_key};

/// Most segments kept before a compaction (each is one request when the manifest loads).
pub const MAX_SEGMENTS: u32 = 128;

/// Segment bytes below which no compaction is made for size alone.
const MIN_JOURNAL_BYTES: u64 = 1 << 20;

/// Storage key of segment `seq` of `generation`.
pub fn segment_key(generation: &str, seq: u32) -> String {
    format!("{STATE_PREFIX}/manifest.journal/{generation}/{seq:06}.json")
}

/// What the journal knows beyond the entries: where the next save goes.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct JournalState {
    /// Segments of the current generation, loaded or written.
    pub segments: u32,
    /// Their bytes, and the snapshot's (a compaction is due when the first outgrows the second).
    pub segment_bytes: u64,
    pub snapshot_bytes: u64,
    /// What changed since the last save.
    pub changed_packages: std::collections::BTreeSet<String>,
    pub changed_upstreams: std::collections::BTreeSet<String>,
    /// A save failed (it may or may not have landed): the next one writes a whole snapshot.
    pub must_compact: bool,
}

/// One segment: the entries and upstream records that changed in one save.
#[derive(Debug, Serialize, Deserialize)]
struct Segment {
    generation: String,
    seq: u32,
    #[serde(default)]
    packages: BTreeMap<String, ManifestEntry>,
    #[serde(default)]
    upstreams: BTreeMap<String, UpstreamRecord>,
}

/// What one save writes, decided under the manifest's lock and written after it is released.
#[derive(Debug)]
pub struct SaveWrite {
    key: String,
    bytes: Vec<u8>,
    /// A new snapshot (else a segment).
    snapshot: bool,
    /// The generation (and its segment count) a new snapshot replaces.
    retires: Option<(String, u32)>,
}

/// How a save went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Nothing had changed.
    Nothing,
    /// A change segment was written.
    Segment,
    /// A new snapshot was written.
    Snapshot,
}

/// A snapshot's generation: a digest of the generation it replaces and of its content. Distinct
/// along one output's history (so an old generation's segments never apply to a new snapshot),
/// and the same for the same history (so two builds of the same input store the same bytes).
fn generation_of(previous: Option<&str>, content: &[u8]) -> String {
    use sha2::Digest as _;
    let mut hash = sha2::Sha256::new();
    hash.update(previous.unwrap_or("").as_bytes());
    hash.update([0]);
    hash.update(content);
    hex::encode(&hash.finalize()[..10])
}

impl Manifest {
    /// Loads the manifest (snapshot and segments), or an empty one if none is stored yet.
    pub async fn load(storage: &impl Storage) -> Result<Manifest, ManifestError> {
        let mut manifest = Manifest::from_snapshot(storage.get(&manifest_key()).await?)?;
        while let Some(key) = manifest.next_segment_key() {
            match storage.get(&key).await? {
                Some(bytes) => manifest.apply_segment(&key, &bytes)?,
                None => break,
            }
        }
        Ok(manifest)
    }

    /// Reads the manifest of a farm's output folder without opening it as storage (no lock is
    /// taken and nothing is written): for tools and tests that look at a finished build.
    pub fn read_folder(root: &std::path::Path) -> Result<Manifest, ManifestError> {
        let read = |key: &str| match std::fs::read(root.join(key)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StorageError::Io { key: key.to_owned(), source }),
        };
        let mut manifest = Manifest::from_snapshot(read(&manifest_key())?)?;
        while let Some(key) = manifest.next_segment_key() {
            match read(&key)? {
                Some(bytes) => manifest.apply_segment(&key, &bytes)?,
                None => break,
            }
        }
        Ok(manifest)
    }

    fn from_snapshot(bytes: Option<Vec<u8>>) -> Result<Manifest, ManifestError> {
        let Some(bytes) = bytes else { return Ok(Manifest { schema: 1, ..Manifest::default() }) };
        let mut manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|source| ManifestError::Corrupt { key: manifest_key(), source })?;
        manifest.journal.snapshot_bytes = bytes.len() as u64;
        Ok(manifest)
    }

    /// The key the next segment has (none before the first snapshot with a generation).
    fn next_segment_key(&self) -> Option<String> {
        self.generation.as_deref().map(|generation| segment_key(generation, self.journal.segments + 1))
    }

    fn apply_segment(&mut self, key: &str, bytes: &[u8]) -> Result<(), ManifestError> {
        let corrupt = |source| ManifestError::Corrupt { key: key.to_owned(), source };
        let segment: Segment = serde_json::from_slice(bytes).map_err(corrupt)?;
        let expected = (self.generation.as_deref(), self.journal.segments + 1);
        if (Some(segment.generation.as_str()), segment.seq) != expected {
            use serde::de::Error as _;
            let found = format!("segment {} of generation {}", segment.seq, segment.generation);
            return Err(corrupt(serde_json::Error::custom(format!("holds {found}"))));
        }
        self.packages.extend(segment.packages);
        self.upstreams.extend(segment.upstreams);
        self.journal.segments += 1;
        self.journal.segment_bytes += bytes.len() as u64;
        Ok(())
    }

    /// Whether anything changed since the last save.
    pub fn has_changes(&self) -> bool {
        !self.journal.changed_packages.is_empty()
            || !self.journal.changed_upstreams.is_empty()
            || self.journal.must_compact
    }

    /// Decides what the next save writes and takes the changes out (the caller writes it with
    /// [`Manifest::write`] and reports a failure with [`Manifest::save_failed`]). A segment of
    /// what changed, or a whole new snapshot: before the first one, after a failed save, when the
    /// segments together outgrow the snapshot (so the bytes written stay proportional to the
    /// bytes changed), or when there are [`MAX_SEGMENTS`].
    pub fn take_save(&mut self) -> Option<SaveWrite> {
        if !self.has_changes() {
            return None;
        }
        let changed_packages = std::mem::take(&mut self.journal.changed_packages);
        let changed_upstreams = std::mem::take(&mut self.journal.changed_upstreams);
        if let Some(generation) = self.generation.clone().filter(|_| !self.journal.must_compact) {
            let seq = self.journal.segments + 1;
            let segment = Segment {
                generation: generation.clone(),
                seq,
                packages: changed_packages
                    .iter()
                    .filter_map(|id| Some((id.clone(), self.packages.get(id)?.clone())))
                    .collect(),
                upstreams: changed_upstreams
                    .iter()
                    .filter_map(|key| Some((key.clone(), self.upstreams.get(key)?.clone())))
                    .collect(),
            };
            let bytes = serde_json::to_vec(&segment).expect("segment serialises");
            let total = self.journal.segment_bytes + bytes.len() as u64;
            if seq <= MAX_SEGMENTS && total <= self.journal.snapshot_bytes.max(MIN_JOURNAL_BYTES) {
                self.journal.segments = seq;
                self.journal.segment_bytes = total;
                return Some(SaveWrite { key: segment_key(&generation, seq), bytes, snapshot: false, retires: None });
            }
        }
        let retires = self.generation.take().map(|old| (old, self.journal.segments));
        let generation = generation_of(retires.as_ref().map(|(old, _)| old.as_str()), &self.to_bytes());
        self.generation = Some(generation);
        let bytes = self.to_bytes();
        self.journal.segments = 0;
        self.journal.segment_bytes = 0;
        self.journal.snapshot_bytes = bytes.len() as u64;
        self.journal.must_compact = false;
        Some(SaveWrite { key: manifest_key(), bytes, snapshot: true, retires })
    }

    /// A save did not complete: what it held must not be lost, so the next save writes a whole
    /// snapshot.
    pub fn save_failed(&mut self) {
        self.journal.must_compact = true;
    }

    /// Writes what [`Manifest::take_save`] decided, after making the archives it names durable.
    /// A compaction then deletes the segments it replaced (a failure there only leaves garbage).
    pub async fn write(storage: &impl Storage, write: SaveWrite) -> Result<Saved, StorageError> {
        storage.flush().await?;
        storage.put_replace(&write.key, write.bytes).await?;
        storage.flush().await?;
        if !write.snapshot {
            return Ok(Saved::Segment);
        }
        for (old, seq) in write.retires.iter().flat_map(|(old, segments)| (1..=*segments).map(move |seq| (old, seq))) {
            if let Err(error) = storage.delete(&segment_key(old, seq)).await {
                warn!(%error, generation = %old, "cannot delete a compacted manifest segment");
            }
        }
        Ok(Saved::Snapshot)
    }

    /// Records an upstream's record; the next save holds it unless it is what was there.
    pub fn record_upstream(&mut self, key: String, record: UpstreamRecord) {
        if self.upstreams.get(&key) != Some(&record) {
            self.journal.changed_upstreams.insert(key.clone());
            self.upstreams.insert(key, record);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Origin, StoredArchive};
    use shared::storage::LocalStorage;

    fn entry(name: &str, version: &str) -> ManifestEntry {
        let stored = StoredArchive::of_bytes(format!("packages/{name}-{version}.zip"), name.as_bytes());
        ManifestEntry::new(name.to_owned(), version.to_owned(), stored, Default::default(), Origin::adopted())
    }

    async fn save(manifest: &mut Manifest, storage: &LocalStorage) -> Saved {
        match manifest.take_save() {
            Some(write) => Manifest::write(storage, write).await.unwrap(),
            None => Saved::Nothing,
        }
    }

    /// A new output whose manifest has one entry, saved (the snapshot).
    async fn saved_once() -> (tempfile::TempDir, LocalStorage, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).unwrap();
        let mut manifest = Manifest::load(&storage).await.unwrap();
        manifest.record(entry("a/a", "1.0.0"));
        assert_eq!(save(&mut manifest, &storage).await, Saved::Snapshot);
        (dir, storage, manifest)
    }

    /// Writes `segment` as the first segment file of its generation, as it could be left behind.
    fn plant(dir: &std::path::Path, segment: &Segment) {
        let path = dir.join(segment_key(&segment.generation, 1));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, serde_json::to_vec(segment).unwrap()).unwrap();
    }

    #[tokio::test]
    async fn saves_write_segments_of_what_changed_and_loads_fold_them_in() {
        let dir = tempfile::tempdir().unwrap();
        let storage = LocalStorage::open(dir.path()).unwrap();
        let mut manifest = Manifest::load(&storage).await.unwrap();
        assert_eq!(save(&mut manifest, &storage).await, Saved::Nothing);
        manifest.record(entry("a/a", "1.0.0"));
        assert_eq!(save(&mut manifest, &storage).await, Saved::Snapshot, "the first save makes the snapshot");
        manifest.record(entry("a/b", "1.0.0"));
        manifest.record_upstream("u".to_owned(), UpstreamRecord { rules: "r".to_owned(), refs: BTreeMap::new() });
        assert_eq!(save(&mut manifest, &storage).await, Saved::Segment);
        let generation = manifest.generation.clone().unwrap();
        let segment = std::fs::read(dir.path().join(segment_key(&generation, 1))).unwrap();
        let segment: serde_json::Value = serde_json::from_slice(&segment).unwrap();
        let ids: Vec<&String> = segment["packages"].as_object().unwrap().keys().collect();
        assert_eq!(ids, ["a/b@1.0.0"], "a segment holds only what changed");
        manifest.record(entry("a/c", "1.0.0"));
        assert_eq!(save(&mut manifest, &storage).await, Saved::Segment);
        // Recording what is already there is no change.
        manifest.record(entry("a/c", "1.0.0"));
        manifest.record_upstream("u".to_owned(), UpstreamRecord { rules: "r".to_owned(), refs: BTreeMap::new() });
        assert_eq!(save(&mut manifest, &storage).await, Saved::Nothing);

        let loaded = Manifest::load(&storage).await.unwrap();
        assert_eq!(loaded.packages, manifest.packages);
        assert_eq!(loaded.upstreams, manifest.upstreams);
        assert_eq!(loaded.journal.segments, 2);
        assert_eq!(Manifest::read_folder(dir.path()).unwrap().packages, manifest.packages);
    }

    #[tokio::test]
    async fn a_failed_save_makes_the_next_one_a_snapshot_and_old_segments_are_ignored() {
        let (dir, storage, mut manifest) = saved_once().await;
        let old = manifest.generation.clone().unwrap();
        manifest.record(entry("a/b", "1.0.0"));
        let lost = manifest.take_save().unwrap();
        drop(lost);
        manifest.save_failed();
        assert!(manifest.has_changes());
        assert_eq!(save(&mut manifest, &storage).await, Saved::Snapshot);
        assert_ne!(manifest.generation.as_deref(), Some(old.as_str()));
        // A segment of the old generation that landed late changes nothing.
        let stray = Segment {
            generation: old.clone(),
            seq: 1,
            packages: [("x/x@1".to_owned(), entry("x/x", "1"))].into(),
            upstreams: BTreeMap::new(),
        };
        plant(dir.path(), &stray);
        let loaded = Manifest::load(&storage).await.unwrap();
        assert_eq!(loaded.packages.keys().collect::<Vec<_>>(), ["a/a@1.0.0", "a/b@1.0.0"]);
    }

    #[tokio::test]
    async fn segments_are_compacted_when_they_outgrow_the_snapshot_or_number_too_many() {
        let (dir, storage, mut manifest) = saved_once().await;
        let first = manifest.generation.clone().unwrap();
        let mut kinds = Vec::new();
        for i in 0..MAX_SEGMENTS + 1 {
            manifest.record(entry("a/a", &format!("2.0.{i}")));
            kinds.push(save(&mut manifest, &storage).await);
        }
        assert!(kinds[..MAX_SEGMENTS as usize].iter().all(|k| *k == Saved::Segment));
        assert_eq!(kinds[MAX_SEGMENTS as usize], Saved::Snapshot);
        assert!(!dir.path().join(segment_key(&first, 1)).exists(), "compacted segments are deleted");
        let loaded = Manifest::load(&storage).await.unwrap();
        assert_eq!(loaded.packages.len(), MAX_SEGMENTS as usize + 2);
        assert_eq!(loaded.journal.segments, 0);
    }

    #[tokio::test]
    async fn a_segment_out_of_place_is_corruption_not_silently_applied() {
        let (dir, storage, manifest) = saved_once().await;
        let generation = manifest.generation.clone().unwrap();
        let wrong = Segment { generation, seq: 7, packages: BTreeMap::new(), upstreams: BTreeMap::new() };
        plant(dir.path(), &wrong);
        let error = Manifest::load(&storage).await.unwrap_err();
        assert!(error.to_string().contains("holds segment 7"), "{error}");
    }
}
