//! In-flight records (`.farm/inflight/<upstream>.json`): before jobs go out, the archive keys each
//! upstream's jobs will write; after the build, only the keys still unanswered. A build stopped
//! half-way is resumed from storage (the next build records what was stored) instead of rebuilt.

use std::collections::{BTreeMap, HashSet};

use shared::storage::{STATE_PREFIX, Storage};
use tracing::warn;

use crate::plan::candidate::Candidate;

/// Archive keys a build of one upstream is writing.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Inflight {
    keys: Vec<String>,
}

/// The record's storage key for an upstream (or `aliases`).
fn inflight_key(upstream: &str) -> String {
    let safe: String =
        upstream.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    format!("{STATE_PREFIX}/inflight/{safe}.json")
}

/// Keys that stopped builds of these upstreams may have stored without recording them.
pub async fn keys(storage: &impl Storage, upstreams: &[String]) -> HashSet<String> {
    let mut keys = HashSet::new();
    for upstream in upstreams {
        match storage.get(&inflight_key(upstream)).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Inflight>(&bytes) {
                Ok(record) => keys.extend(record.keys),
                Err(error) => warn!(%upstream, %error, "unreadable in-flight record ignored"),
            },
            Ok(None) => {}
            Err(error) => {
                warn!(%upstream, %error, "cannot read the in-flight record; its archives are built again")
            }
        }
    }
    keys
}

/// Before dispatching: notes the keys each upstream's jobs will write.
pub async fn write<'c>(storage: &impl Storage, candidates: impl Iterator<Item = &'c Candidate>) {
    let mut by_upstream: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for candidate in candidates {
        by_upstream.entry(candidate.upstream.as_str()).or_default().push(candidate.target_key());
    }
    for (upstream, mut keys) in by_upstream {
        keys.sort();
        put(storage, upstream, keys).await;
    }
}

/// After a build: the in-flight record keeps only the keys still unanswered.
pub async fn finish(storage: &impl Storage, upstreams: &[String], unanswered: &[Candidate]) {
    for upstream in upstreams {
        let mut keys: Vec<String> =
            unanswered.iter().filter(|c| c.upstream.as_str() == upstream).map(Candidate::target_key).collect();
        if keys.is_empty() {
            if let Err(error) = storage.delete(&inflight_key(upstream)).await {
                warn!(%upstream, %error, "cannot delete the in-flight record");
            }
        } else {
            keys.sort();
            put(storage, upstream, keys).await;
        }
    }
}

async fn put(storage: &impl Storage, upstream: &str, keys: Vec<String>) {
    let mut bytes = serde_json::to_vec_pretty(&Inflight { keys }).expect("record serialises");
    bytes.push(b'\n');
    if let Err(error) = storage.put_replace(&inflight_key(upstream), bytes).await {
        warn!(%upstream, %error, "cannot write the in-flight record; a stopped build would rebuild its archives");
    }
}
