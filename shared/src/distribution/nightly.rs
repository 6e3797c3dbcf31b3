//! Nightly versions (reference spec 5.3): `calcNightlyBuildPackageBaseVersion`,
//! `addSuffixToVersion`, the two together, and the stability a version has (`getVersionStability`).

use std::sync::LazyLock;

use regex::Regex;

use crate::js::js_increment;

/// `calcNightlyBuildPackageBaseVersion`'s input check (ASCII, case-insensitive as `/i`).
static NIGHTLY_BASE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i-u)^v?(?:[0-9]+\.){0,3}[0-9]+(?:-[a-z][0-9a-z_]*)?$").expect("valid regex"));
/// `addSuffixToVersion`'s unanchored match; JavaScript's `.` stops at line terminators.
static SUFFIX_TARGET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(v?)((?:[0-9]+\.?){1,4})(-[^+]+)?(\+[^\n\r\x{2028}\x{2029}]+)?").expect("valid regex")
});
/// Nightly versions (`-a20260101`) count as alpha.
static ALPHA_BUILD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"-a[0-9]").expect("valid regex"));

/// A version that `calcNightlyBuildPackageBaseVersion` rejects (the reference aborts the build).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' cannot have a nightly version (expected up to four numbers and an optional -suffix)")]
pub struct InvalidNightlyVersion(pub String);

/// `calcNightlyBuildPackageBaseVersion`: below four numbers `.1` is appended, otherwise the fourth
/// is incremented; a `-suffix` comes back as `-alpha+suffix` (`1.0-dev` is `1.0.1-alpha+dev`).
pub fn nightly_base_version(version: &str) -> Result<String, InvalidNightlyVersion> {
    if !NIGHTLY_BASE.is_match(version) {
        return Err(InvalidNightlyVersion(version.to_owned()));
    }
    let (numbers, suffix) = match version.find('-') {
        Some(pos) => (&version[..pos], &version[pos + 1..]),
        None => (version, ""),
    };
    let mut parts: Vec<String> = numbers.split('.').map(str::to_owned).collect();
    if parts.len() < 4 {
        parts.push("1".to_owned());
    } else if let Some(last) = parts.last_mut() {
        *last = js_increment(last);
    }
    let mut out = parts.join(".");
    if !suffix.is_empty() {
        out.push_str("-alpha+");
        out.push_str(suffix);
    }
    Ok(out)
}

/// `addSuffixToVersion(version, date)`: the first `v?<up to four numbers>` in the string keeps its
/// `v` and numbers, gets `-a<date>` and keeps a `+build` part; the rest is dropped. A string
/// without digits gets `-a<date>` appended, or `-alpha` when the date is empty (`'' → -alpha`,
/// `--- → ----a<date>`).
pub fn add_suffix_to_version(version: &str, date: &str) -> String {
    match SUFFIX_TARGET.captures(version) {
        Some(found) => {
            let build = found.get(4).map_or("", |m| m.as_str());
            format!("{}{}-a{date}{build}", &found[1], &found[2])
        }
        None => format!("{version}-a{}", if date.is_empty() { "lpha" } else { date }),
    }
}

/// The whole per-package nightly transform: an empty version counts as `0.0.1`, then
/// [`nightly_base_version`], then [`add_suffix_to_version`] (`2.4.5 → 2.4.5.1-a20240115`,
/// `103.0.5-p1 → 103.0.5.1-a20240115+p1`).
pub fn nightly_version(version: &str, date: &str) -> Result<String, InvalidNightlyVersion> {
    let base = nightly_base_version(if version.is_empty() { "0.0.1" } else { version })?;
    Ok(add_suffix_to_version(&base, date))
}

/// `getVersionStability`: `"dev"`, `"alpha"`, `"beta"`, `"RC"` or `"stable"` (lower-cased
/// substring tests in that order; nightly `-a<date>` versions are alpha, `-pN` is stable).
pub fn version_stability(version: &str) -> &'static str {
    let version = version.to_lowercase();
    if version.starts_with("dev-") || version.contains("-dev") {
        "dev"
    } else if version.contains("-alpha") || ALPHA_BUILD.is_match(&version) {
        "alpha"
    } else if version.contains("-beta") {
        "beta"
    } else if version.contains("-rc") {
        "RC"
    } else {
        "stable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &str = "20240115";

    // ---- release-branch-build-tools ------------------------------------------------------------

    #[test]
    fn nightly_base_versions() {
        let cases = [
            ("2.4.5", "2.4.5.1"),
            ("2.4", "2.4.1"),
            ("1", "1.1"),
            ("2.4.5.0", "2.4.5.1"),
            ("2.4.5.1", "2.4.5.2"),
            ("2.4.5.9", "2.4.5.10"),
            ("103.0.2", "103.0.2.1"),
            ("103.0.2.1", "103.0.2.2"),
            ("v2.4.5", "v2.4.5.1"),
            ("v103.0.2.1", "v103.0.2.2"),
            ("2.4.5-beta1", "2.4.5.1-alpha+beta1"),
            ("1.2.0-dev", "1.2.0.1-alpha+dev"),
            ("1.0-dev", "1.0.1-alpha+dev"),
            ("0.4.0-beta1", "0.4.0.1-alpha+beta1"),
            ("0.3.4-p2", "0.3.4.1-alpha+p2"),
            ("1.0.0-alpha", "1.0.0.1-alpha+alpha"),
            ("2.0.0-RC1", "2.0.0.1-alpha+RC1"),
            ("1.2.3.4", "1.2.3.5"),
            ("1.2.3.09", "1.2.3.10"),
        ];
        for (input, expected) in cases {
            assert_eq!(nightly_base_version(input).as_deref(), Ok(expected), "{input}");
        }
    }

    #[test]
    fn nightly_base_version_rejects_what_the_reference_throws_on() {
        for input in [
            "",
            "invalid",
            "not-a-version",
            "1a",
            "1.x",
            "2.4.5.6.7",
            "2.4.5-",
            "-1.0.0",
            "   ",
            "\t",
            "\n",
            "2.4.5+build.123",
        ] {
            assert_eq!(nightly_base_version(input), Err(InvalidNightlyVersion(input.to_owned())), "{input:?}");
        }
        assert!(InvalidNightlyVersion("x".into()).to_string().contains("'x'"));
    }

    #[test]
    fn suffixes_as_add_suffix_to_version() {
        let cases = [
            ("2.4.5", DATE, "2.4.5-a20240115"),
            ("2.4.5.1", DATE, "2.4.5.1-a20240115"),
            ("1", DATE, "1-a20240115"),
            ("2.4", DATE, "2.4-a20240115"),
            ("2.4.5-beta1", DATE, "2.4.5-a20240115"),
            ("2.4.5+legacy", DATE, "2.4.5-a20240115+legacy"),
            ("2.4.5-beta1+legacy", DATE, "2.4.5-a20240115+legacy"),
            ("2.4.5", "", "2.4.5-a"),
            ("abc", "", "abc-alpha"),
            ("abc", DATE, "abc-a20240115"),
            ("---", DATE, "----a20240115"),
            ("", "", "-alpha"),
            ("v2.4.5", DATE, "v2.4.5-a20240115"),
            ("0.0.0", DATE, "0.0.0-a20240115"),
            ("103.0.2.1", DATE, "103.0.2.1-a20240115"),
        ];
        for (version, date, expected) in cases {
            assert_eq!(add_suffix_to_version(version, date), expected, "{version:?} {date:?}");
        }
    }

    #[test]
    fn nightly_versions_of_the_spec_map_examples() {
        let cases = [
            ("2.4.5", "2.4.5.1-a20240115"),
            ("103.0.1.2", "103.0.1.3-a20240115"),
            ("2.4.5.9", "2.4.5.10-a20240115"),
            ("1.0-dev", "1.0.1-a20240115+dev"),
            ("103.0.5-p1", "103.0.5.1-a20240115+p1"),
            ("0.4.0-beta1", "0.4.0.1-a20240115+beta1"),
            ("", "0.0.1.1-a20240115"),
            ("v2.4.5", "v2.4.5.1-a20240115"),
            ("103.0.2", "103.0.2.1-a20240115"),
            ("0.3.4-beta1", "0.3.4.1-a20240115+beta1"),
            ("1.0.0.0", "1.0.0.1-a20240115"),
            ("1", "1.1-a20240115"),
        ];
        for (input, expected) in cases {
            assert_eq!(nightly_version(input, DATE).as_deref(), Ok(expected), "{input:?}");
        }
        assert_eq!(nightly_version("2.4.5", "").as_deref(), Ok("2.4.5.1-a"));
        assert_eq!(nightly_version("   ", DATE), Err(InvalidNightlyVersion("   ".into())));
    }

    // ---- package-modules -------------------------------------------------------------------------

    #[test]
    fn stabilities() {
        let cases = [
            ("dev-master", "dev"),
            ("DEV-master", "dev"),
            ("1.0-dev", "dev"),
            ("dev-alpha", "dev"),
            ("1.0.0-alpha", "alpha"),
            ("1.0.0-alpha2", "alpha"),
            ("1.0.0-ALPHA1", "alpha"),
            ("1.0.0-alpha-beta", "alpha"),
            ("2.4.7.1-a20260101", "alpha"),
            ("1.0.0.1-a20240115+dev", "alpha"),
            ("1.0.0-beta", "beta"),
            ("1.0.0-beta3", "beta"),
            ("1.0.0-rc1", "RC"),
            ("1.0.0-RC1", "RC"),
            ("1.0.0-Rc2", "RC"),
            ("1.0.0-rc", "RC"),
            ("1", "stable"),
            ("1.0.0.0", "stable"),
            ("2.4.5-p1", "stable"),
            ("", "stable"),
        ];
        for (version, expected) in cases {
            assert_eq!(version_stability(version), expected, "{version}");
        }
    }
}
