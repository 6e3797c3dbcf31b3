//! `[repository]`: the published Composer repository, and the check of its base URL.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::de::duration;
use super::error::ConfigError;
use super::redact::redact_url;

/// The published repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepositoryConfig {
    /// Public URL the repository is served from; dist URLs and `metadata-url` start with it.
    pub base_url: String,
    /// Output folder of the embedded mode (`--out` overrides it).
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Folder of prebuilt archives (the reference's `resource/additional-packages`): a
    /// name@version they provide is not built from git; they are published as they are under
    /// `packages/additional/`.
    #[serde(default)]
    pub additional_packages: Option<PathBuf>,
    /// Build into an output folder that already holds a Composer repository the farm did not
    /// make, replacing its metadata (`--adopt-existing`; refused otherwise).
    #[serde(default)]
    pub adopt_existing: bool,
    /// How long the change feed (`metadata/changes.json`) keeps an action; a mirror that last
    /// looked longer ago is told to resync.
    #[serde(default = "default_feed_retention", with = "duration")]
    pub feed_retention: Duration,
    /// Private ed25519 key (PKCS#8 PEM, or a 32-byte seed in hex or base64) that signs each
    /// build's provenance; `FARM_PROVENANCE_KEY` (the key itself) takes precedence. Without
    /// either, builds publish no provenance.
    #[serde(default)]
    pub provenance_key: Option<PathBuf>,
}

fn default_feed_retention() -> Duration {
    Duration::from_secs(30 * 24 * 3600)
}

/// The published base URL: http(s) with a host, no credentials, query or fragment (every dist URL
/// and the metadata's links start with it).
pub(super) fn check_base_url(base_url: &str) -> Result<(), ConfigError> {
    let invalid =
        |why: &str| Err(ConfigError::Invalid(format!("repository.base_url {why}, got '{}'", redact_url(base_url))));
    let Ok(url) = url::Url::parse(base_url) else { return invalid("must be an http(s) URL") };
    if !matches!(url.scheme(), "http" | "https") {
        return invalid("must be an http(s) URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return invalid("needs a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return invalid("must not hold credentials (they would be published in every dist URL)");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return invalid("must not have a query or fragment");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FarmConfig;

    #[test]
    fn base_url_needs_a_host_and_no_secrets() {
        let with = |base: &str| FarmConfig::from_toml(&format!("[repository]\nbase_url = \"{base}\"\n"));
        assert!(with("https://repo.example.org/").is_ok());
        assert!(with("http://127.0.0.1:8080/repo/").is_ok());
        for bad in
            ["http://", "http:///", "ftp://h/", "repo.example.org", "https://u:p@h/", "https://h/?x=1", "https://h/#f"]
        {
            assert!(matches!(with(bad), Err(ConfigError::Invalid(_))), "{bad} accepted");
        }
        let message = with("https://u:secret@h/").unwrap_err().to_string();
        assert!(!message.contains("secret"), "{message}");
    }
}
