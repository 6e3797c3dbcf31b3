//! Version comparison compatible with the reference generator's `compareTags` (spec 5.1).
//!
//! Magento versions are not semver: they have up to four numeric parts and Adobe's `-pN` patch
//! suffix, which sorts *above* the unpatched release (`2.4.6-p1 > 2.4.6`). The reference compares
//! with the `compare-versions` 4.1.4 npm package after splitting off the patch part; this module
//! reproduces both, including their quirks (`beta10 < beta2`, `a10` segments compared as text).
//! A string that `compare-versions` rejects is an error here instead of a crash of the whole run.

use std::cmp::Ordering;
use std::sync::LazyLock;

use regex::Regex;

/// A version that Composer's `VersionParser::normalize` rejects: a repository listing it would
/// make the client fail on the package's whole metadata file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a valid Composer version")]
pub struct InvalidComposerVersion(pub String);

const MODIFIER: &str = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?[0-9]+)*)?)?([.-]?dev)?";

static CLASSICAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i-u)^v?([0-9]{{1,5}})(\.[0-9]+)?(\.[0-9]+)?(\.[0-9]+)?{MODIFIER}$")).expect("valid regex")
});
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(r"(?i-u)^v?([0-9]{{4}}(?:[.:-]?[0-9]{{2}}){{1,6}}(?:[.:-]?[0-9]{{1,3}})?){MODIFIER}$"))
        .expect("valid regex")
});
static DEV_SUFFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(.*?)(?i-u:[.-]?dev)$").expect("valid regex"));
static NUMERIC_BRANCH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i-u)^v?([0-9]+)(\.(?:[0-9]+|[xX*]))?(\.(?:[0-9]+|[xX*]))?(\.(?:[0-9]+|[xX*]))?$")
        .expect("valid regex")
});
static STABILITY_FLAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i-u)@(?:stable|RC|beta|alpha|dev)$").expect("valid regex"));
static BUILD_METADATA: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([^,\t\n\x0B\x0C\r +]+)\+[^\t\n\x0B\x0C\r ]+$").expect("valid regex"));

/// Composer's `VersionParser::normalize` for package versions (composer/semver): `2.4.7-p3` is
/// `2.4.7.0-patch3`, `1.0-dev` is `1.0.0.0-dev`, `dev-main` stays, `1.0.0-1` is invalid.
pub fn composer_normalize(version: &str) -> Result<String, InvalidComposerVersion> {
    let invalid = || InvalidComposerVersion(version.to_owned());
    let mut current = php_trim(version).to_owned();
    if let Some(flag) = STABILITY_FLAG.find(&current) {
        current.truncate(flag.start());
    }
    if matches!(current.as_str(), "master" | "trunk" | "default") {
        current = format!("dev-{current}");
    }
    // `get`: a version is upstream input and may start with a multi-byte character.
    if current.get(..4).is_some_and(|prefix| prefix.eq_ignore_ascii_case("dev-")) {
        return Ok(format!("dev-{}", &current[4..]));
    }
    if let Some(captures) = BUILD_METADATA.captures(&current) {
        current = captures[1].to_owned();
    }
    let (mut normalized, captures, index) = if let Some(c) = CLASSICAL.captures(&current) {
        let part = |i: usize| c.get(i).map_or(".0".to_owned(), |m| m.as_str().to_owned());
        (format!("{}{}{}{}", &c[1], part(2), part(3), part(4)), c, 5)
    } else if let Some(c) = DATE.captures(&current) {
        (c[1].chars().map(|ch| if ch.is_ascii_digit() { ch } else { '.' }).collect(), c, 2)
    } else {
        let branch = DEV_SUFFIX.captures(&current).ok_or_else(invalid)?;
        let numeric = NUMERIC_BRANCH.captures(php_trim(&branch[1])).ok_or_else(invalid)?;
        let mut out = String::new();
        for i in 1..5 {
            out.push_str(&numeric.get(i).map_or(".x".to_owned(), |m| m.as_str().replace(['*', 'X'], "x")));
        }
        return Ok(format!("{}-dev", out.replace('x', "9999999")));
    };
    if let Some(stability) = captures.get(index).map(|m| m.as_str()).filter(|s| !s.is_empty()) {
        if stability == "stable" {
            return Ok(normalized);
        }
        let expanded = match stability.to_ascii_lowercase().as_str() {
            "a" => "alpha".to_owned(),
            "b" => "beta".to_owned(),
            "p" | "pl" => "patch".to_owned(),
            "rc" => "RC".to_owned(),
            other => other.to_owned(),
        };
        let number = captures.get(index + 1).map_or("", |m| m.as_str()).trim_start_matches(['.', '-']);
        normalized = format!("{normalized}-{expanded}{number}");
    }
    if captures.get(index + 2).is_some_and(|m| !m.as_str().is_empty()) {
        normalized.push_str("-dev");
    }
    Ok(normalized)
}

/// PHP's `trim` with its default characters (space, tab, newline, carriage return, NUL, vertical
/// tab): not Unicode white space, which Composer keeps and then refuses.
fn php_trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// A version string that the reference's comparison rejects.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a version (expected digits and dots, an optional -prerelease and +build)")]
pub struct InvalidVersion(pub String);

/// The reference's semver-ish pattern (compare-versions 4.1.4), ASCII case-insensitive; JavaScript's
/// `\d` is ASCII-only, hence `[0-9]`.
static SEMVER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i-u)^[v^~<>=]*?([0-9]+)(?:\.([x*]|[0-9]+)(?:\.([x*]|[0-9]+)(?:\.([x*]|[0-9]+))?(?:-([0-9a-z\-]+(?:\.[0-9a-z\-]+)*))?(?:\+[0-9a-z\-]+(?:\.[0-9a-z\-]+)*)?)?)?$",
    )
    .expect("valid regex")
});

/// Adobe patch releases: `<base>-p<patch>`, matched anywhere in the string as the reference does.
static PATCH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"v?([0-9.]+)-p([0-9.]+)").expect("valid regex"));

/// The result of comparing two versions, as the reference's number-returning comparator.
///
/// `Unordered` stands for JavaScript's `NaN`, which the reference produces when two patch parts
/// are not numbers (`1.2-p1.1.1`); every `>=`/`<=` test on it is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// A definite order.
    Ordered(Ordering),
    /// No order (JavaScript `NaN`).
    Unordered,
}

impl Comparison {
    /// `compareTags(a, b) >= 0`.
    pub fn is_ge(self) -> bool {
        matches!(self, Comparison::Ordered(Ordering::Greater | Ordering::Equal))
    }

    /// `compareTags(a, b) <= 0`.
    pub fn is_le(self) -> bool {
        matches!(self, Comparison::Ordered(Ordering::Less | Ordering::Equal))
    }

    /// The order to use where a total order is required (a sort); `NaN` counts as equal, as in
    /// `Array.prototype.sort`.
    pub fn ordering(self) -> Ordering {
        match self {
            Comparison::Ordered(order) => order,
            Comparison::Unordered => Ordering::Equal,
        }
    }
}

/// Compares two versions the way the reference's `compareVersions`/`compareTags` does.
pub fn compare(a: &str, b: &str) -> Result<Comparison, InvalidVersion> {
    let patch_a = PATCH.captures(a);
    let patch_b = PATCH.captures(b);
    let base_a = patch_a.as_ref().map_or(a, |c| c.get(1).expect("group").as_str());
    let base_b = patch_b.as_ref().map_or(b, |c| c.get(1).expect("group").as_str());
    let base = compare_versions_lib(base_a, base_b)?;
    if base != Ordering::Equal {
        return Ok(Comparison::Ordered(base));
    }
    match (patch_a, patch_b) {
        (Some(pa), Some(pb)) => {
            let na = js_number(pa.get(2).expect("group").as_str());
            let nb = js_number(pb.get(2).expect("group").as_str());
            Ok(match na.partial_cmp(&nb) {
                Some(order) => Comparison::Ordered(order),
                None => Comparison::Unordered,
            })
        }
        (Some(_), None) => Ok(Comparison::Ordered(Ordering::Greater)),
        (None, Some(_)) => Ok(Comparison::Ordered(Ordering::Less)),
        (None, None) => Ok(Comparison::Ordered(Ordering::Equal)),
    }
}

/// Checks that `version` is something the reference can compare (its `fromTag` filter would
/// otherwise throw).
pub fn validate(version: &str) -> Result<(), InvalidVersion> {
    let base = PATCH.captures(version).map_or(version, |c| c.get(1).expect("group").as_str());
    parse_lib(base).map(|_| ())
}

/// A total order for sorting: versions the reference orders cleanly (no wildcards, numeric
/// patch parts) come first in reference order, ties and everything else by bytes. Mixing the
/// reference order with a fallback inside one comparator would not be transitive, and Rust's sort
/// may panic on such a comparator.
pub fn total_cmp(a: &str, b: &str) -> Ordering {
    match (sortable(a), sortable(b)) {
        (true, true) => compare(a, b).map_or(Ordering::Equal, Comparison::ordering).then_with(|| a.cmp(b)),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => a.cmp(b),
    }
}

fn sortable(version: &str) -> bool {
    !version.contains(['x', 'X', '*'])
        && compare(version, version).is_ok_and(|c| c == Comparison::Ordered(Ordering::Equal))
}

/// Sorts versions ascending with [`total_cmp`].
pub fn sort_versions(versions: &mut [String]) {
    versions.sort_by(|a, b| total_cmp(a, b));
}

/// One parsed version of compare-versions: four numeric-or-wildcard parts and a pre-release.
struct Parsed<'a> {
    parts: [Option<&'a str>; 4],
    prerelease: Option<&'a str>,
}

fn parse_lib(version: &str) -> Result<Parsed<'_>, InvalidVersion> {
    let captures = SEMVER.captures(version).ok_or_else(|| InvalidVersion(version.to_owned()))?;
    let group = |i: usize| captures.get(i).map(|m| m.as_str());
    Ok(Parsed { parts: [group(1), group(2), group(3), group(4)], prerelease: group(5) })
}

/// compare-versions 4.1.4's `compareVersions`.
fn compare_versions_lib(a: &str, b: &str) -> Result<Ordering, InvalidVersion> {
    let pa = parse_lib(a)?;
    let pb = parse_lib(b)?;
    let numeric = compare_segments(&pa.parts.map(|p| p.unwrap_or("0")), &pb.parts.map(|p| p.unwrap_or("0")));
    if numeric != Ordering::Equal {
        return Ok(numeric);
    }
    Ok(match (pa.prerelease, pb.prerelease) {
        (Some(x), Some(y)) => {
            let xs: Vec<&str> = x.split('.').collect();
            let ys: Vec<&str> = y.split('.').collect();
            compare_segments(&xs, &ys)
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    })
}

fn compare_segments(a: &[&str], b: &[&str]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let order = compare_strings(a.get(i).copied().unwrap_or("0"), b.get(i).copied().unwrap_or("0"));
        if order != Ordering::Equal {
            return order;
        }
    }
    Ordering::Equal
}

/// compare-versions' `compareStrings`: wildcards equal anything; `parseInt` decides whether a
/// segment is a number; a number against a string compares as strings.
fn compare_strings(a: &str, b: &str) -> Ordering {
    let wildcard = |s: &str| matches!(s, "*" | "x" | "X");
    if wildcard(a) || wildcard(b) {
        return Ordering::Equal;
    }
    match (parse_int(a), parse_int(b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        (Some(x), None) => js_string_cmp(&format_int(x), b),
        (None, Some(y)) => js_string_cmp(a, &format_int(y)),
        (None, None) => js_string_cmp(a, b),
    }
}

/// JavaScript `parseInt(s, 10)`: optional sign, then leading decimal digits; `None` is `NaN`.
fn parse_int(s: &str) -> Option<f64> {
    let trimmed = s.trim_start();
    let (negative, rest) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let digits: &str = &rest[..rest.bytes().take_while(u8::is_ascii_digit).count()];
    if digits.is_empty() {
        return None;
    }
    let value: f64 = digits.parse().ok()?;
    Some(if negative { -value } else { value })
}

fn format_int(value: f64) -> String {
    crate::json::format_f64(value)
}

/// JavaScript `Number(s)` for the patch part (digits and dots only here).
fn js_number(s: &str) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    if s.bytes().filter(|b| *b == b'.').count() > 1 || s == "." {
        return f64::NAN;
    }
    s.parse().unwrap_or(f64::NAN)
}

/// JavaScript string comparison: UTF-16 code units.
fn js_string_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap().ordering()
    }

    #[test]
    fn reference_test_vectors() {
        use Ordering::*;
        assert_eq!(cmp("1.0", "2.0"), Less);
        assert_eq!(cmp("2.0", "2.0"), Equal);
        assert_eq!(cmp("2.4-p1", "2.4"), Greater);
        assert_eq!(cmp("2.4-p1", "2.4-p2"), Less);
        assert_eq!(cmp("2.4-p10", "2.4-p9"), Greater);
        assert_eq!(cmp("2.4-p10", "2.4-p2"), Greater);
        assert_eq!(cmp("2.4.6-p1", "2.4.7"), Less);
        assert_eq!(cmp("1.2.3-p1.1", "1.2.3-p1.2"), Less);
        assert_eq!(cmp("1.2.3-p1.2", "1.2.3-p2"), Less);
        assert_eq!(cmp("1.2.3-p2.1", "1.2.3-p1.1"), Greater);
        assert_eq!(cmp("1.2.3-p0.1", "1.2.3"), Greater);
        assert_eq!(cmp("1.2.3-p0.1", "1.2.3-p1"), Less);
        assert_eq!(cmp("1.2.3-p0.1", "1.2.3-p0"), Greater);
        assert_eq!(cmp("v1.0", "1.0"), Equal);
        assert_eq!(cmp("v2.4-p1", "2.4-p1"), Equal);
    }

    #[test]
    fn composer_trims_only_phps_white_space() {
        assert_eq!(composer_normalize(" 1.0\t\n").unwrap(), "1.0.0.0");
        for version in ["1.0\u{a0}", "\u{a0}1.0", "1.0\x0C"] {
            assert!(composer_normalize(version).is_err(), "{version:?} is refused by Composer");
        }
        // PHP's `\s` is ASCII: a Unicode space is just another byte of the build metadata.
        assert_eq!(composer_normalize("1.0+build\u{2003}x").unwrap(), "1.0.0.0");
    }

    #[test]
    fn prereleases_follow_compare_versions() {
        use Ordering::*;
        assert_eq!(cmp("1.1.0-beta1", "1.1.0"), Less);
        assert_eq!(cmp("1.1.0-beta1", "1.0.0"), Greater);
        assert_eq!(cmp("1.0.0-beta10", "1.0.0-beta2"), Less);
        assert_eq!(cmp("1.0.0-1", "1.0.0-beta"), Less);
        assert_eq!(cmp("1.0.0.1", "1.0.0"), Greater);
        assert_eq!(cmp("0.9.0", "1.0.0"), Less);
        assert_eq!(cmp("1.0.0-p10", "1.0.0"), Greater);
    }

    #[test]
    fn non_versions_are_errors_not_crashes() {
        assert!(compare("release-candidate", "1.0.0").is_err());
        assert!(compare("1.0-beta", "1.0.0").is_err());
        assert!(validate("2.4-p2").is_ok());
        assert!(validate("v1.0").is_ok());
        assert!(validate("nightly").is_err());
    }

    #[test]
    fn sorting_mixed_input_is_total_and_does_not_panic() {
        let mut versions: Vec<String> = (0..200)
            .map(|i| ["9.0.0", "10.0.0", "5!", "1.2-p1.1.1", "2.x", "1.0.0-p2", "1.0.0"][i % 7].to_owned())
            .collect();
        sort_versions(&mut versions);
        let firsts: Vec<&str> = versions.iter().map(String::as_str).fold(Vec::new(), |mut acc, v| {
            if acc.last() != Some(&v) {
                acc.push(v);
            }
            acc
        });
        assert_eq!(firsts, ["1.0.0", "1.0.0-p2", "9.0.0", "10.0.0", "1.2-p1.1.1", "2.x", "5!"]);
    }

    #[test]
    fn composer_normalisation_matches_composer() {
        let cases = [
            ("1.0.0", "1.0.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("0", "0.0.0.0"),
            ("v1.0.0", "1.0.0.0"),
            ("2.4.7-p3", "2.4.7.0-patch3"),
            ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
            ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"),
            ("1.0-dev", "1.0.0.0-dev"),
            ("10.4.13beta.2", "10.4.13.0-beta2"),
            ("1.1.0-beta1", "1.1.0.0-beta1"),
            ("2010.01.02", "2010.01.02.0"),
            ("20100102-203040", "20100102.203040"),
            ("1.0.0+foo", "1.0.0.0"),
            ("dev-main", "dev-main"),
            ("master", "dev-master"),
            ("1.x-dev", "1.9999999.9999999.9999999-dev"),
            ("103.0.5.1-a20260101+p1", "103.0.5.1-alpha20260101"),
            ("1.0.0-stable", "1.0.0.0"),
        ];
        for (input, expected) in cases {
            assert_eq!(composer_normalize(input).as_deref(), Ok(expected), "{input}");
        }
        // Multi-byte characters where "dev-" would be (found by the composer_identity fuzz target:
        // slicing the first four bytes panicked and took the planning task down).
        for invalid in ["1.0.0-1", "1.0.0.0.1", "foo", "1.0.0-foo", "", "feature-dev", "\u{b1cb}03.0.9.1", "dé-1", "ä"]
        {
            assert!(composer_normalize(invalid).is_err(), "{invalid} should be invalid");
        }
    }

    #[test]
    fn non_numeric_patch_parts_are_unordered() {
        let result = compare("1.2-p1.1.1", "1.2-p1").unwrap();
        assert_eq!(result, Comparison::Unordered);
        assert!(!result.is_ge());
        assert!(!result.is_le());
    }
}
