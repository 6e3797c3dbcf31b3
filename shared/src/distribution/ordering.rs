//! The reference's orders: the latest tag and upstream release (its version order), the sorting
//! gate of spec 5.7, JavaScript's key sort and the base package's link sort.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Map, Value};

use super::rename::LINK_SECTIONS;
use crate::js::truthy;
use crate::release::Release;
use crate::version::{self, Comparison};

/// `determineLatestUpstreamMagentoRelease`'s stable filter (the reference's regex has `/i`).
static STABLE_RELEASE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i-u)^v?[0-9]+\.[0-9]+(?:\.[0-9]+)?(?:-p[0-9]+(?:\.[0-9]+)?)?$").expect("valid regex")
});
/// The sorting gates' "numeric version" test (`/^\d+\.\d+/`).
pub(super) static NUMERIC_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+").expect("valid regex"));

/// `getLatestTag` over a tag list: tags starting with `v` are dropped, the rest ordered with
/// [`version::compare`] and the last one taken; tags that comparison rejects are ignored (the
/// reference would crash on them).
pub fn latest_tag<'a>(tags: impl IntoIterator<Item = &'a str>) -> Option<String> {
    last_in_reference_order(tags.into_iter().filter(|tag| !tag.starts_with('v')))
}

/// `determineLatestUpstreamMagentoRelease`'s choice: the highest version (reference order) among
/// those matching `^v?\d+\.\d+(\.\d+)?(-p\d+(\.\d+)?)?$`, so `2.4.7-p3` beats `2.4.7` and
/// pre-releases are ignored.
pub fn latest_stable_release<'a>(versions: impl IntoIterator<Item = &'a str>) -> Option<String> {
    last_in_reference_order(versions.into_iter().filter(|v| STABLE_RELEASE.is_match(v)))
}

/// The last element after the reference's stable `sort(compareTags)`: the last maximum in input
/// order.
fn last_in_reference_order<'a>(versions: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<&str> = None;
    for candidate in versions.filter(|v| version::validate(v).is_ok()) {
        let below = best
            .is_some_and(|current| version::compare(candidate, current).is_ok_and(|c| c.ordering() == Ordering::Less));
        if !below {
            best = Some(candidate);
        }
    }
    best.map(str::to_owned)
}

/// The sorting gate of spec 5.7: true when the version does not start with `\d+\.\d+` (e.g.
/// `dev-main`) or compares `>=` the boundary. A numeric version the comparison rejects (the
/// reference would crash) does not pass.
pub fn sort_gate(version: &str, boundary: &str) -> bool {
    if NUMERIC_START.is_match(version) {
        version::compare(version, boundary).is_ok_and(Comparison::is_ge)
    } else {
        true
    }
}

/// Sorts an object's keys in UTF-16 code unit order (JavaScript's default `sort()`), in place.
pub fn sort_keys(map: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
    entries.sort_by(|(a, _), (b, _)| a.encode_utf16().cmp(b.encode_utf16()));
    map.extend(entries);
}

/// `transformMageOSBaseSortLinks` with the boundary as a parameter (the reference uses `3.2.1`):
/// with `release.version || release.ref` passing [`sort_gate`], the keys of every existing link
/// section (`require`, `require-dev`, `suggest`, `replace`, `conflict`) are sorted.
pub fn sort_base_links(config: &mut Map<String, Value>, release: &Release<'_>, since: &str) {
    let version = truthy(release.version).unwrap_or(release.git_ref);
    if !sort_gate(version, since) {
        return;
    }
    for section in LINK_SECTIONS {
        if let Some(Value::Object(links)) = config.get_mut(section) {
            sort_keys(links);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::distribution::test_support::{compact, obj, release};

    #[test]
    fn latest_upstream_release_is_the_highest_stable_one() {
        let versions =
            ["2.4.6", "2.4.7", "2.4.7-p3", "2.4.8-beta1", "2.4.7-p2", "2.4.8-rc1", "2.4.8-alpha", "2.4.7-p10"];
        assert_eq!(latest_stable_release(versions).as_deref(), Some("2.4.7-p10"));
        assert_eq!(latest_stable_release(["2.4.7", "2.4.7-p3"]).as_deref(), Some("2.4.7-p3"));
        assert_eq!(latest_stable_release(["2.4.7-p3", "2.4.7"]).as_deref(), Some("2.4.7-p3"));
        assert_eq!(latest_stable_release(["2.4.8-beta1", "dev-main"]), None);
        assert_eq!(latest_stable_release([]), None);
    }

    #[test]
    fn latest_tags() {
        assert_eq!(latest_tag(["1.0.0", "2.0.0", "1.5.0", "2.1.0"]).as_deref(), Some("2.1.0"));
        assert_eq!(latest_tag(["v1.0.0", "1.0.0", "v2.0.0", "1.5.0"]).as_deref(), Some("1.5.0"));
        assert_eq!(latest_tag(["v1.0.0", "v2.0.0"]), None);
        assert_eq!(latest_tag([]), None);
        assert_eq!(latest_tag(["1.0.0", "1.0.0-beta1", "1.0.0-alpha1", "0.9.0"]).as_deref(), Some("1.0.0"));
        assert_eq!(latest_tag(["2.4.6-p1", "2.4.6", "2.4.5-p10"]).as_deref(), Some("2.4.6-p1"));
        assert_eq!(latest_tag(["1.0.0", "nightly", "release-candidate"]).as_deref(), Some("1.0.0"));
        // Equal versions: the stable sort leaves the later one last.
        assert_eq!(latest_tag(["1.0", "1.0.0"]).as_deref(), Some("1.0.0"));
    }

    #[test]
    fn sorting_gates_and_key_order() {
        assert!(sort_gate("dev-main", "3.2.1"));
        assert!(sort_gate("", "3.2.1"));
        assert!(sort_gate("3.2.1", "3.2.1"));
        assert!(sort_gate("3.3.0", "3.2.1"));
        assert!(!sort_gate("3.2.0", "3.2.1"));
        assert!(sort_gate("2.0.0-p1", "2.0.0"));
        assert!(!sort_gate("2.0-develop", "2.0.0"), "a numeric version the comparison rejects does not pass");
        // UTF-16 order puts U+1F600 (a surrogate pair) before U+E000; byte order would not.
        let mut map = obj(r#"{"b":1,"a":2,"B":3,"\uE000":4,"\ud83d\ude00":5,"a/b":6,"a-b":7}"#);
        sort_keys(&mut map);
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        assert_eq!(keys, ["B", "a", "a-b", "a/b", "b", "\u{1F600}", "\u{E000}"]);
        assert_eq!(map["\u{E000}"], 4);
    }

    #[test]
    fn base_links_sorting() {
        let (empty, none) = (BTreeMap::new(), BTreeSet::new());
        let input = r#"{"name":"mage-os/magento2-base","replace":{"trentrichardson/jquery-timepicker-addon":"1.4.3","components/jquery":"1.11.0","components/jqueryui":"1.10.4","twbs/bootstrap":"3.1.0"}}"#;
        let sorted = r#"{"name":"mage-os/magento2-base","replace":{"components/jquery":"1.11.0","components/jqueryui":"1.10.4","trentrichardson/jquery-timepicker-addon":"1.4.3","twbs/bootstrap":"3.1.0"}}"#;
        let base = release(&empty, &empty, &none);
        let run = |release: Release<'_>| {
            let mut config = obj(input);
            sort_base_links(&mut config, &release, "3.2.1");
            compact(&config)
        };
        assert_eq!(run(Release { version: Some("3.2.1"), git_ref: "", ..base }), sorted);
        assert_eq!(run(Release { version: None, git_ref: "3.3.0", ..base }), sorted);
        assert_eq!(run(Release { version: None, git_ref: "3.2.0", ..base }), input);
        assert_eq!(run(Release { version: None, git_ref: "3.1.0", ..base }), input);
        assert_eq!(run(Release { version: Some("dev-main"), git_ref: "", ..base }), sorted);

        let mut config = obj(
            r#"{"name":"mage-os/magento2-base","require":{"symfony/console":"^6.4","colinmollenhour/credis":"^1.15"},"conflict":{"gene/bluefoot":"*","a/a":"*"},"suggest":{"zzz/z":"z","aaa/a":"a"},"require-dev":{"b/b":"1","a/a":"1"}}"#,
        );
        sort_base_links(&mut config, &Release { version: Some("3.2.1"), ..base }, "3.2.1");
        assert_eq!(
            compact(&config),
            r#"{"name":"mage-os/magento2-base","require":{"colinmollenhour/credis":"^1.15","symfony/console":"^6.4"},"conflict":{"a/a":"*","gene/bluefoot":"*"},"suggest":{"aaa/a":"a","zzz/z":"z"},"require-dev":{"a/a":"1","b/b":"1"}}"#
        );
        let mut config = obj(r#"{"name":"mage-os/magento2-base"}"#);
        sort_base_links(&mut config, &Release { version: Some("3.2.1"), ..base }, "3.2.1");
        assert_eq!(compact(&config), r#"{"name":"mage-os/magento2-base"}"#);
    }
}
