//! The change feed downstream mirrors follow: Packagist's `metadata-changes-url` contract, kept
//! as one file the publisher rewrites and `serve` answers `?since=` from.
//!
//! `metadata/changes.json` holds, per p2 file (`vendor/name` or `vendor/name~dev`), the latest
//! action on it (`update` or `delete`) with its time, the feed's `timestamp` (the time of its last
//! change) and `retained-from` (actions older than this were dropped, or the feed began then). A
//! mirror that asks `?since=T`:
//! - gets every action newer than `T`, and `timestamp` to ask with next time;
//! - gets one `resync` action when `T` is older than `retained-from`;
//! - gets a 400 `{error, timestamp}` when `T` is missing or not a number.
//!
//! As Packagist's: `timestamp` and `since` are unix time in ten-thousandths of a second (opaque to
//! clients), an action's `time` is unix seconds. Each publish is stamped after the last (never
//! equal, never lower) and before it writes a file, so no action's `time` is later than the
//! `Last-Modified` of the file it names (composer/mirror re-fetches until it is not). An
//! answer's `timestamp` is the feed's own last stamp, not the clock, so an action written after
//! an answer always has a higher stamp than the `timestamp` that answer gave. Each action also
//! keeps its `stamp`, which `since` is compared with.
//!
//! A static web server returns the file whatever `since` is: a mirror then sees every retained
//! action (re-fetching a file it has costs a 304) and compares `since` with `retained-from`
//! itself.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use shared::storage::Storage;
use tracing::warn;

/// Feed stamps per second (Packagist's ten-thousandths).
const TICKS_PER_SECOND: u64 = 10_000;

/// Where the feed is published, relative to the repository root.
pub use shared::metadata::CHANGES_KEY as FEED_KEY;

/// What happened to a p2 file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Written: fetch it again.
    Update,
    /// Removed: drop it.
    Delete,
    /// Too old a `since`: fetch everything again (only in answers, never stored).
    Resync,
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// `vendor/name`, `vendor/name~dev`, or `*` (resync).
    pub package: String,
    /// When, in unix seconds.
    pub time: u64,
    /// When, as the feed's stamp (what `since` is compared with).
    pub stamp: u64,
}

/// The stored feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    /// The latest action per p2 file, oldest first.
    pub actions: Vec<Action>,
    /// The feed's last stamp.
    pub timestamp: u64,
    /// Actions before this were dropped (or the feed began here): older `since` values resync.
    #[serde(rename = "retained-from")]
    pub retained_from: u64,
}

/// What a `?since=` request gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 200 with this body.
    Changes(serde_json::Value),
    /// 400 with this body.
    BadRequest(serde_json::Value),
}

/// The clock as a feed time.
pub fn now() -> u64 {
    let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    since_epoch.as_secs() * TICKS_PER_SECOND + u64::from(since_epoch.subsec_micros() / 100)
}

impl Feed {
    /// The published feed; `None` before the first publish. An unreadable one is started anew
    /// (mirrors that followed it are told to resync).
    pub async fn load(storage: &impl Storage) -> anyhow::Result<Option<Feed>> {
        let Some(bytes) = storage.get(FEED_KEY).await? else { return Ok(None) };
        Ok(Feed::parse(&bytes).or_else(|| {
            warn!("the change feed is unreadable; starting it anew (its followers will resync)");
            None
        }))
    }

    /// The feed in `bytes`, if they are one.
    pub fn parse(bytes: &[u8]) -> Option<Feed> {
        serde_json::from_slice(bytes).ok()
    }

    /// The feed's bytes, as published.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec(self).expect("feed serialises");
        bytes.push(b'\n');
        bytes
    }

    /// Records changes at one new stamp (at least `now`, above every earlier stamp) and drops
    /// actions older than `retention`. `feed` is the previous feed, if any.
    pub fn record(
        feed: Option<Feed>,
        changes: impl IntoIterator<Item = (String, Kind)>,
        now: u64,
        retention: Duration,
    ) -> Feed {
        let mut feed = feed.unwrap_or(Feed { actions: Vec::new(), timestamp: 0, retained_from: 0 });
        let stamp = now.max(feed.timestamp + 1);
        if feed.retained_from == 0 {
            feed.retained_from = stamp;
        }
        let changes: HashMap<String, Kind> = changes.into_iter().collect();
        feed.actions.retain(|action| !changes.contains_key(&action.package));
        let time = stamp / TICKS_PER_SECOND;
        let mut added: Vec<Action> =
            changes.into_iter().map(|(package, kind)| Action { kind, package, time, stamp }).collect();
        added.sort_by(|a, b| a.package.cmp(&b.package));
        feed.actions.extend(added);
        feed.timestamp = stamp;
        let horizon = stamp.saturating_sub(retention.as_secs().saturating_mul(TICKS_PER_SECOND));
        if let Some(dropped) = feed.actions.iter().filter(|a| a.stamp < horizon).map(|a| a.stamp).max() {
            feed.retained_from = feed.retained_from.max(dropped);
            feed.actions.retain(|a| a.stamp >= horizon);
        }
        feed
    }

    /// The answer to `?since=` (the raw query value, if any) of the feed (`None`: no publish
    /// yet).
    pub fn answer(feed: Option<&Feed>, since: Option<&str>) -> Answer {
        let timestamp = feed.map_or(0, |f| f.timestamp);
        let Some(since) = since.and_then(|s| s.parse::<u64>().ok()) else {
            return Answer::BadRequest(serde_json::json!({
                "error": "Invalid or missing \"since\" query parameter: store the timestamp you got when you began mirroring and send it, e.g. ?since=".to_owned() + &timestamp.to_string(),
                "timestamp": timestamp,
            }));
        };
        let Some(feed) = feed else {
            return Answer::Changes(serde_json::json!({"actions": [], "timestamp": 0}));
        };
        // Older than what is kept, or newer than anything this feed stamped (a feed started
        // anew): the follower cannot know what it missed.
        let actions = if since < feed.retained_from || since > feed.timestamp {
            let time = feed.timestamp / TICKS_PER_SECOND;
            vec![Action { kind: Kind::Resync, package: "*".to_owned(), time, stamp: feed.timestamp }]
        } else {
            feed.actions.iter().filter(|a| a.stamp > since).cloned().collect()
        };
        Answer::Changes(serde_json::json!({"actions": actions, "timestamp": feed.timestamp}))
    }
}

/// The feed entry of a metadata key: `p2/v/p.json` → `v/p` (other keys have none).
pub fn package_of(key: &str) -> Option<&str> {
    key.strip_prefix("p2/")?.strip_suffix(".json")
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(24 * 3600);
    const TICKS_PER_DAY: u64 = 24 * 3600 * TICKS_PER_SECOND;

    fn update(package: &str) -> (String, Kind) {
        (package.to_owned(), Kind::Update)
    }

    fn changes(answer: Answer) -> Vec<(String, String)> {
        let Answer::Changes(body) = answer else { panic!("not a 200: {answer:?}") };
        body["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["type"].as_str().unwrap().to_owned(), a["package"].as_str().unwrap().to_owned()))
            .collect()
    }

    #[test]
    fn a_follower_gets_what_changed_after_its_timestamp_and_nothing_twice() {
        let first = Feed::record(None, [update("a/a"), update("a/a~dev"), update("b/b")], 1_000, 30 * DAY);
        let seen = first.timestamp;
        assert_eq!(changes(Feed::answer(Some(&first), Some(&seen.to_string()))), vec![]);
        // The clock went back: the stamp still rises.
        let second = Feed::record(Some(first), [update("b/b"), ("c/c".to_owned(), Kind::Delete)], 500, 30 * DAY);
        assert!(second.timestamp > seen);
        assert_eq!(
            changes(Feed::answer(Some(&second), Some(&seen.to_string()))),
            vec![("update".to_owned(), "b/b".to_owned()), ("delete".to_owned(), "c/c".to_owned())]
        );
        assert_eq!(changes(Feed::answer(Some(&second), Some(&second.timestamp.to_string()))), vec![]);
        // One action per file: b/b is there once, at its latest time.
        assert_eq!(second.actions.iter().filter(|a| a.package == "b/b").count(), 1);
    }

    #[test]
    fn a_since_older_than_the_retention_resyncs() {
        let old = Feed::record(None, [update("a/a")], 1_000, 30 * DAY);
        let began = old.timestamp;
        assert_eq!(changes(Feed::answer(Some(&old), Some("0"))), vec![("resync".to_owned(), "*".to_owned())]);
        let later = Feed::record(Some(old), [update("b/b")], 1_000 + 40 * TICKS_PER_DAY, 30 * DAY);
        assert_eq!(later.actions.len(), 1, "a/a's action is past the retention");
        assert_eq!(
            changes(Feed::answer(Some(&later), Some(&(began - 1).to_string()))),
            vec![("resync".to_owned(), "*".to_owned())]
        );
        // A follower that saw the dropped action needs nothing it lost.
        assert_eq!(
            changes(Feed::answer(Some(&later), Some(&began.to_string()))),
            vec![("update".to_owned(), "b/b".to_owned())]
        );
    }

    #[test]
    fn a_missing_or_bad_since_is_a_400_with_the_timestamp() {
        let feed = Feed::record(None, [update("a/a")], 7, 30 * DAY);
        for since in [None, Some(""), Some("x"), Some("-1"), Some("1.5")] {
            let Answer::BadRequest(body) = Feed::answer(Some(&feed), since) else { panic!("{since:?} accepted") };
            assert_eq!(body["timestamp"], feed.timestamp);
            assert!(body["error"].as_str().unwrap().contains("since"));
        }
    }

    #[test]
    fn the_feed_round_trips_through_its_bytes() {
        let feed = Feed::record(None, [update("a/a"), update("b/b~dev")], 42, 30 * DAY);
        assert_eq!(Feed::parse(&feed.to_bytes()), Some(feed));
        assert_eq!(package_of("p2/a/b~dev.json"), Some("a/b~dev"));
        assert_eq!(package_of("packages.json"), None);
    }
}
