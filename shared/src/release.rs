//! What a nightly or release build knows ([`Release`], the reference's `buildState`) and the check
//! of a release version (`validateVersionString`): the configuration checks `target.release` with
//! it, and the distribution and composer.json rules read the build state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;

use crate::js::truthy;

/// `validateVersionString`: two numbers and an optional lower-case suffix.
static RELEASE_TWO_PARTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+(?:-[a-z][a-z0-9.]*)?$").expect("valid regex"));
/// `validateVersionString`: three numbers and an optional lower-case suffix.
static RELEASE_THREE_PARTS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9]+\.[0-9]+\.[0-9]+(?:-[a-z][a-z0-9.]*)?$").expect("valid regex"));

/// `validateVersionString`: `X.Y` or `X.Y.Z` with an optional lower-case `-suffix`. The error
/// names the parameter (`Version` when empty) and the value, as the reference's message does.
pub fn validate_release_version(parameter: &str, version: &str) -> Result<(), String> {
    if RELEASE_TWO_PARTS.is_match(version) || RELEASE_THREE_PARTS.is_match(version) {
        return Ok(());
    }
    let name = if parameter.is_empty() { "Version" } else { parameter };
    Err(format!("{name} \"{version}\" is not a valid version (X.Y.Z[-suffix])."))
}

/// What a nightly or release build knows: the reference's `buildState` plus the vendor and the
/// Packagist list.
#[derive(Debug, Clone, Copy)]
pub struct Release<'a> {
    /// Composer vendor of the build (`mage-os`); `magento` disables renames and Packagist checks.
    pub vendor: &'a str,
    /// `release.version`: the version of a new release (absent for nightlies and history).
    pub version: Option<&'a str>,
    /// `release.fallbackVersion`: the version of packages nothing else gives one.
    pub fallback_version: Option<&'a str>,
    /// `release.ref`: the ref being built.
    pub git_ref: &'a str,
    /// `release.dependencyVersions`: package name to version; `*` applies to every own package.
    pub dependency_versions: &'a BTreeMap<String, String>,
    /// `release.replaceVersions`: upstream `magento/*` name to its installed version.
    pub replace_versions: &'a BTreeMap<String, String>,
    /// Names of the vendor's packages on Packagist (never consulted for vendor `magento`).
    pub on_packagist: &'a BTreeSet<String>,
    /// `release.composerRepoUrl`, written into project metapackages.
    pub composer_repo_url: &'a str,
}

impl Release<'_> {
    /// `isOnPackagist(vendor, name)`: always false for vendor `magento`.
    pub(crate) fn is_on_packagist(&self, name: &str) -> bool {
        self.vendor != "magento" && self.on_packagist.contains(name)
    }

    /// `dependencyVersions[name]` when truthy.
    pub(crate) fn pinned(&self, name: &str) -> Option<&str> {
        truthy(self.dependency_versions.get(name).map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_version_validation() {
        let accepted = [
            "1.0",
            "2.4",
            "10.20",
            "0.1",
            "999.999",
            "1.0.0",
            "2.4.6",
            "10.20.30",
            "0.0.1",
            "999.999.999",
            "1.0-beta",
            "2.4-p2",
            "1.0-alpha",
            "1.0.0-alpha",
            "2.4.6-patch2",
            "1.0.0-beta",
            "2.4.6-p2",
            "1.0-beta.1",
            "2.4-p2.1",
            "1.0.0-rc.1",
            "2.4.6-dev",
            "01.0",
            "1.01",
            "1.0.01",
        ];
        for version in accepted {
            assert_eq!(validate_release_version("mageosRelease", version), Ok(()), "{version}");
        }
        let rejected = [
            "",
            "1",
            ".1",
            "1.",
            "1..0",
            "1.2.3.4",
            "1.2.3.4.5",
            "a.b",
            "a.b.c",
            "1.a",
            "a.1",
            "1.2.a",
            "1.0-1beta",
            "1.0-",
            "1.0--beta",
            "1.0-BETA",
            "1.0\n",
        ];
        for version in rejected {
            assert!(validate_release_version("mageosRelease", version).is_err(), "{version:?}");
        }
        let message = validate_release_version("MyVersion", "invalid-version").unwrap_err();
        assert_eq!(message, r#"MyVersion "invalid-version" is not a valid version (X.Y.Z[-suffix])."#);
        assert!(validate_release_version("", "bad").unwrap_err().starts_with("Version \"bad\""));
    }
}
