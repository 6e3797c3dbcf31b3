//! What a published package may be called and where its archive may live: Composer's name rules,
//! its version parser, and the archive-key rules every storage backend can hold. One check shared
//! by planning, additional packages, alias metapackages and `adopt`.
//!
//! Names follow Composer 2: the `ValidatingArrayLoader` pattern for `name`, then
//! `hasPackageNamingError` (the lower-case word pattern, reserved Windows device names, no `.json`
//! suffix, no upper case). Keys are what a local folder and an S3 bucket both accept and a dist URL
//! can carry unescaped: printable ASCII without URL delimiters, segments of at most 255 bytes (the
//! usual file-name limit), at most 1,024 bytes in all (S3's key limit), below `packages/`, ending in
//! `.zip`.

use std::sync::LazyLock;

use regex::Regex;

/// The folder below which every archive key lies.
pub const ARCHIVE_PREFIX: &str = "packages/";
/// Storage folder (relative to the repository root) the prebuilt zips are published under.
pub const ADDITIONAL_PREFIX: &str = "packages/additional";
/// Longest key segment (a file or folder name on common file systems).
pub const MAX_SEGMENT_BYTES: usize = 255;
/// Longest key (S3's limit).
pub const MAX_KEY_BYTES: usize = 1024;

/// Why a name, version or key cannot be published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Composer would refuse the package name.
    #[error("package name '{name}' is invalid: {reason}")]
    Name {
        /// The name, with control characters escaped.
        name: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// Composer's version parser refuses the version.
    #[error("version '{version}' of {name} is invalid: Composer cannot parse it")]
    Version {
        /// Package name.
        name: String,
        /// The version, with control characters escaped.
        version: String,
    },
    /// The archive key cannot be stored or served.
    #[error("archive key '{key}' cannot be published: {reason}")]
    Key {
        /// The key, with control characters escaped.
        key: String,
        /// Which rule it breaks.
        reason: String,
    },
}

/// Composer's strict name pattern (`ValidatingArrayLoader`), matched case-insensitively as there.
static STRICT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$").expect("valid regex"));
/// `hasPackageNamingError`'s word pattern (case-insensitive there; upper case is refused after).
static WORDS_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z0-9](?:[_.-]?[A-Za-z0-9]+)*/[A-Za-z0-9](?:(?:[_.]|-{1,2})?[A-Za-z0-9]+)*$")
        .expect("valid regex")
});
const RESERVED: [&str; 22] = [
    "nul", "con", "prn", "aux", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8", "com9", "lpt1", "lpt2",
    "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Shows a value in a message without letting it break the line it is on.
pub fn shown(value: &str) -> String {
    let mut out: String = value
        .chars()
        .take(200)
        .flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] })
        .collect();
    if value.chars().count() > 200 {
        out.push('…');
    }
    out
}

/// Checks a package name against Composer 2's rules.
pub fn validate_name(name: &str) -> Result<(), IdentityError> {
    let refuse = |reason: &str| Err(IdentityError::Name { name: shown(name), reason: reason.to_owned() });
    if !STRICT_NAME.is_match(name) || !WORDS_NAME.is_match(name) {
        return refuse(
            "it must be vendor/name, each words of a-z and 0-9 separated by '-', '.' or '_' \
             (Composer's ^[a-z0-9]([_.-]?[a-z0-9]+)*/[a-z0-9](([_.]|-{1,2})?[a-z0-9]+)*$)",
        );
    }
    let lower = name.to_ascii_lowercase();
    if lower.split('/').any(|part| RESERVED.contains(&part)) {
        return refuse(
            "vendor and package names cannot be a reserved device name (nul, con, prn, aux, com1-9, lpt1-9)",
        );
    }
    if name.ends_with(".json") {
        return refuse("package names cannot end in .json");
    }
    if lower != name {
        return refuse("package names must be lower case");
    }
    Ok(())
}

/// Checks a version with Composer's `VersionParser::normalize`.
pub fn validate_version(name: &str, version: &str) -> Result<(), IdentityError> {
    let bad = || IdentityError::Version { name: name.to_owned(), version: shown(version) };
    if version.is_empty() || version.chars().any(char::is_control) {
        return Err(bad());
    }
    crate::version::composer_normalize(version).map(|_| ()).map_err(|_| bad())
}

/// Checks an archive key: below `packages/`, a `.zip` file, only characters a dist URL carries
/// unescaped, within the length limits of file systems and S3.
pub fn validate_key(key: &str) -> Result<(), IdentityError> {
    let refuse = |reason: String| Err(IdentityError::Key { key: shown(key), reason });
    if !key.starts_with(ARCHIVE_PREFIX) || !key.ends_with(".zip") {
        return refuse(format!("archives are {ARCHIVE_PREFIX}….zip"));
    }
    if key.len() > MAX_KEY_BYTES {
        return refuse(format!("{} bytes, over the limit of {MAX_KEY_BYTES}", key.len()));
    }
    if let Some(c) = key.chars().find(|c| !is_key_char(*c)) {
        return refuse(format!("it holds {:?}, which a dist URL cannot carry unescaped", c));
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." || segment.starts_with('.') {
            return refuse("every segment must be a plain name (not empty, not starting with '.')".to_owned());
        }
        if segment.len() > MAX_SEGMENT_BYTES {
            return refuse(format!(
                "a segment of {} bytes, over the file-name limit of {MAX_SEGMENT_BYTES}",
                segment.len()
            ));
        }
    }
    Ok(())
}

/// Hex digits of a branch archive's content digest in its key.
pub const BRANCH_DIGEST_DIGITS: usize = 12;

/// The version as it appears in an archive key: a branch's '/' becomes '-' (Composer's version
/// keeps it).
pub fn key_version(version: &str) -> String {
    version.replace('/', "-")
}

/// The farm's archive key for `name` at `key_version`: `packages/<name>-<key_version>.zip`, with
/// the content digest's first [`BRANCH_DIGEST_DIGITS`] digits for branch builds (the reference's
/// layout, so existing dist URLs keep working).
pub fn archive_key(name: &str, key_version: &str, digest: Option<&str>) -> String {
    match digest {
        Some(digest) => {
            let short = digest.get(..BRANCH_DIGEST_DIGITS).unwrap_or(digest);
            format!("{ARCHIVE_PREFIX}{name}-{key_version}-{short}.zip")
        }
        None => format!("{ARCHIVE_PREFIX}{name}-{key_version}.zip"),
    }
}

/// The key of a prebuilt archive from the additional packages folder: published under its own
/// file name below [`ADDITIONAL_PREFIX`].
pub fn prebuilt_key(file_name: &str) -> String {
    format!("{ADDITIONAL_PREFIX}/{file_name}")
}

/// Characters allowed in keys: unreserved URL characters plus the sub-delimiters versions use.
fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-._~+!$&'()*,;=@".contains(c)
}

/// Checks everything a published name@version needs: the name, the version and its archive key.
pub fn check(name: &str, version: &str, key: &str) -> Result<(), IdentityError> {
    validate_name(name)?;
    validate_version(name, version)?;
    validate_key(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composer_names() {
        for good in [
            "magento/module-catalog",
            "mage-os/product-community-edition",
            "magento/language-pt_br",
            "magento/magento2-base",
            "a/b",
            "acme/x--y",
            "acme.co/x.y",
            "magento/framework-message-queue",
        ] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for bad in [
            "col/x~dev",
            "Col/X",
            "acme/A",
            "acme/a b",
            "acme/a\nb",
            "acme/a?x",
            "acme/a#x",
            "acme",
            "a/b/c",
            "/b",
            "a/",
            "a//b",
            "../x",
            "acme/-x",
            "acme--x/y",
            "acme/x-",
            "acme/x_-y",
            "acme/con",
            "LPT1/x",
            "acme/x.json",
            "acme/x\0",
            "",
            "ä/b",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
        let message = validate_name("acme/a\nb").unwrap_err().to_string();
        assert!(!message.contains('\n') && message.contains("acme/a\\nb"), "{message}");
    }

    #[test]
    fn versions() {
        assert!(validate_version("a/b", "1.0.0").is_ok());
        assert!(validate_version("a/b", "103.0.7-p3").is_ok());
        assert!(validate_version("a/b", "dev-main").is_ok());
        assert!(validate_version("a/b", "").is_err());
        assert!(validate_version("a/b", "1.0\0").is_err());
        assert!(validate_version("a/b", "not a version").is_err());
    }

    #[test]
    fn archive_keys_in_the_reference_layout() {
        assert_eq!(archive_key("acme/a", "1.0.0", None), "packages/acme/a-1.0.0.zip");
        let digest = "0123456789abcdef0123456789abcdef01234567";
        assert_eq!(
            archive_key("acme/a", &key_version("dev-feature/x"), Some(digest)),
            "packages/acme/a-dev-feature-x-0123456789ab.zip"
        );
    }

    #[test]
    fn keys() {
        for good in [
            "packages/acme/a-1.0.0.zip",
            "packages/mage-os/framework-103.0.9.1-a20260804+p3.zip",
            "packages/acme/a-dev-feature-x-0123456789ab.zip",
            "packages/additional/magento-module-a-2.2.1-patch1.zip",
        ] {
            assert_eq!(validate_key(good), Ok(()), "{good}");
        }
        let long_segment = format!("packages/acme/{}.zip", "a".repeat(252));
        for bad in [
            ".farm/manifest.json",
            "evil.php",
            "packages/acme/a.php",
            "packages/.farm/x.zip",
            "packages/../x.zip",
            "packages//x.zip",
            "packages/acme/a b.zip",
            "packages/acme/a?b.zip",
            "packages/acme/a#b.zip",
            "packages/acme/a%2f.zip",
            "packages/acme/a\0.zip",
            "packages/acme\\a.zip",
            long_segment.as_str(),
        ] {
            assert!(validate_key(bad).is_err(), "{bad:?} accepted");
        }
        assert!(validate_key(&format!("packages/{}x.zip", "a/".repeat(600))).is_err());
    }
}
