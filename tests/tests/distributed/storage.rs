//! `S3Storage` against SeaweedFS directly: single and multipart uploads carry the same bytes and
//! the same sha1, nothing is ever overwritten (also by concurrent writers), and a wrong key is a
//! clear error naming the endpoint and the bucket.

use std::path::Path;

use shared::archive::ArchiveDigest;
use shared::storage::s3::S3Storage;
use shared::storage::{Storage as _, StorageError, Stored};
use tests::seaweed::S3Server;

/// Deterministic bytes that do not compress (not that S3 would); `seed` must be odd, and
/// different seeds give different bytes.
fn bytes(seed: u64, size: usize) -> Vec<u8> {
    assert!(seed % 2 == 1, "xorshift needs a non-zero state; odd seeds keep them distinct");
    let mut state = seed;
    (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

fn file(dir: &Path, name: &str, content: &[u8]) -> (std::path::PathBuf, ArchiveDigest) {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let digest = shared::archive::digest_file(&path).unwrap();
    (path, digest)
}

async fn storage(s3: &S3Server, dir: &Path, multipart_threshold: u64) -> S3Storage {
    let mut config = tests::seaweed::storage_config(&s3.endpoint(), "composer");
    config.multipart_threshold = multipart_threshold;
    config.multipart_part_size = shared::config::MIN_PART_SIZE;
    S3Storage::connect(&config, dir.join("scratch")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_and_multipart_uploads_store_the_same_bytes_and_never_overwrite() {
    let s3 = S3Server::start();
    s3.create_public_bucket("composer");
    let dir = tempfile::tempdir().unwrap();
    let store = storage(&s3, dir.path(), 8 << 20).await;

    // 12 MiB: three parts of 5, 5 and 2 MiB. 100 KiB: one PUT.
    let (big, big_digest) = file(dir.path(), "big.zip", &bytes(1, 12 << 20));
    let (small, small_digest) = file(dir.path(), "small.zip", &bytes(3, 100 << 10));
    assert_eq!(store.put_archive("packages/acme/big-1.0.0.zip", &big, &big_digest).await.unwrap(), Stored::Created);
    assert_eq!(
        store.put_archive("packages/acme/small-1.0.0.zip", &small, &small_digest).await.unwrap(),
        Stored::Created
    );
    // The same bytes again: accepted as identical, for both paths.
    assert_eq!(
        store.put_archive("packages/acme/big-1.0.0.zip", &big, &big_digest).await.unwrap(),
        Stored::AlreadyIdentical
    );
    assert_eq!(
        store.put_archive("packages/acme/small-1.0.0.zip", &small, &small_digest).await.unwrap(),
        Stored::AlreadyIdentical
    );
    // Other bytes under a published key: drift, refused, the published object kept.
    let (other, other_digest) = file(dir.path(), "other.zip", &bytes(5, 12 << 20));
    let error = store.put_archive("packages/acme/big-1.0.0.zip", &other, &other_digest).await.unwrap_err();
    assert!(matches!(error, StorageError::Drift { .. }), "{error}");

    let objects = tokio::task::spawn_blocking(move || {
        let objects = s3.objects("composer");
        drop(s3);
        objects
    })
    .await
    .unwrap();
    let archives: Vec<&String> = objects.keys().filter(|k| k.starts_with("packages/")).collect();
    assert_eq!(archives.len(), 2, "{:?}", objects.keys());
    assert_eq!(objects["packages/acme/big-1.0.0.zip"], std::fs::read(&big).unwrap());
    assert_eq!(objects["packages/acme/small-1.0.0.zip"], std::fs::read(&small).unwrap());
    // No probe, temp or part object is left behind.
    assert!(objects.keys().all(|k| k.starts_with("packages/")), "{:?}", objects.keys());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_concurrent_writers_of_one_key_exactly_one_wins() {
    let s3 = S3Server::start();
    s3.create_public_bucket("composer");
    let dir = tempfile::tempdir().unwrap();
    // A single PUT and a multipart upload (6 MiB in 5 MiB parts), each writer with other bytes.
    for threshold in [64 << 20, 5 << 20] {
        let store = std::sync::Arc::new(storage(&s3, dir.path(), threshold).await);
        let key = format!("packages/acme/race-{threshold}.zip");
        let mut writers = tokio::task::JoinSet::new();
        for writer in 0..8u64 {
            let (path, digest) =
                file(dir.path(), &format!("race-{threshold}-{writer}.zip"), &bytes(2 * writer + 11, 6 << 20));
            let (store, key) = (std::sync::Arc::clone(&store), key.clone());
            writers.spawn(async move { (store.put_archive(&key, &path, &digest).await, path) });
        }
        let mut created = Vec::new();
        let mut drift = 0;
        while let Some(joined) = writers.join_next().await {
            match joined.unwrap() {
                (Ok(Stored::Created), path) => created.push(path),
                (Err(StorageError::Drift { .. }), _) => drift += 1,
                (other, _) => {
                    panic!("threshold {threshold}: unexpected outcome {:?}", other.map_err(|e| e.to_string()))
                }
            }
        }
        assert_eq!((created.len(), drift), (1, 7), "threshold {threshold}");
        let stored = store.get(&key).await.unwrap().unwrap();
        assert_eq!(stored, std::fs::read(&created[0]).unwrap(), "the winner's bytes are stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_a_clear_error_naming_endpoint_and_bucket() {
    let s3 = S3Server::start();
    s3.create_public_bucket("composer");
    let dir = tempfile::tempdir().unwrap();
    let mut config = tests::seaweed::storage_config(&s3.endpoint(), "composer");
    config.secret_access_key = Some("not-the-secret".to_owned());
    let store = S3Storage::connect(&config, dir.path().join("scratch")).await.unwrap();
    let error = shared::storage::probe(&store).await.unwrap_err().to_string();
    assert!(error.contains(&s3.endpoint()) && error.contains("bucket composer"), "{error}");
    assert!(error.contains("403") && error.contains("SignatureDoesNotMatch"), "{error}");
    tokio::task::spawn_blocking(move || drop(s3)).await.unwrap();
}
