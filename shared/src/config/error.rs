//! The error of loading or checking the configuration.

/// Configuration could not be loaded or is inconsistent.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or parsed.
    #[error("cannot load configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A value is present but not acceptable.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}
