//! `[serve]`: the always-on coordinator's HTTP endpoint, polling, webhook secrets and limits.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::de::{duration, socket_address};
use super::error::ConfigError;

/// A secret from the configuration; never printed (`Debug` shows `[redacted]`).
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret's bytes, for comparing and signing only.
    pub fn expose(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Secret(value.to_owned())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `coordinator serve` (`[serve]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeConfig {
    /// Address of the HTTP endpoint (webhooks, health, metrics, status).
    #[serde(default = "default_listen", with = "socket_address")]
    pub listen: SocketAddr,
    /// How often every upstream is fetched to look for new tags and moved branches; `0s` turns
    /// polling off (webhooks only).
    #[serde(default = "default_poll_interval", with = "duration")]
    pub poll_interval: Duration,
    /// Triggers of one upstream within this window after the first give one build.
    #[serde(default = "default_coalesce", with = "duration")]
    pub coalesce: Duration,
    /// On SIGTERM, how long running builds may still wait for results before they record what
    /// they have and stop (jobs left in the queue are picked up after a restart).
    #[serde(default = "default_shutdown_grace", with = "duration")]
    pub shutdown_grace: Duration,
    /// Largest webhook body accepted, in bytes (larger: 413).
    #[serde(default = "default_max_body")]
    pub max_body: usize,
    /// Time a client has to send a request's headers, counted from the accepted connection or
    /// from the first byte of a kept-alive connection's next request (then closed unanswered).
    #[serde(default = "default_header_timeout", with = "duration")]
    pub header_timeout: Duration,
    /// Time a client has to send a webhook's whole body once its headers passed (then 408).
    #[serde(default = "default_body_timeout", with = "duration")]
    pub body_timeout: Duration,
    /// How long a kept-alive connection may wait for its next request before it is closed.
    #[serde(default = "default_idle_timeout", with = "duration")]
    pub idle_timeout: Duration,
    /// Connections open at once; further ones wait in the kernel's accept queue, unaccepted.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Bytes of webhook bodies held in memory at once, over all requests; a body that would
    /// exceed it is refused with 503 before it is read.
    #[serde(default = "default_max_body_memory")]
    pub max_body_memory: usize,
    /// Secret of GitHub webhooks (`X-Hub-Signature-256`); absent turns `/hooks/github` off.
    #[serde(default)]
    pub github_secret: Option<Secret>,
    /// Secret token of GitLab webhooks (`X-Gitlab-Token`); absent turns `/hooks/gitlab` off.
    #[serde(default)]
    pub gitlab_token: Option<Secret>,
    /// Bearer token of `/hooks/trigger`; absent turns it off.
    #[serde(default)]
    pub trigger_token: Option<Secret>,
    /// Also serve the repository itself (packages.json, p2/, archives, provenance and the change
    /// feed) from the output folder, when the storage is a local folder (`serve --repository`).
    /// Off by default: the listener takes webhooks and may be reachable from the internet.
    #[serde(default)]
    pub repository: bool,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: default_listen(),
            poll_interval: default_poll_interval(),
            coalesce: default_coalesce(),
            shutdown_grace: default_shutdown_grace(),
            max_body: default_max_body(),
            header_timeout: default_header_timeout(),
            body_timeout: default_body_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_body_memory: default_max_body_memory(),
            github_secret: None,
            gitlab_token: None,
            trigger_token: None,
            repository: false,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_poll_interval() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_coalesce() -> Duration {
    Duration::from_secs(60)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(20)
}
fn default_max_body() -> usize {
    5 * 1024 * 1024
}
fn default_header_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_body_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_connections() -> usize {
    256
}
fn default_max_body_memory() -> usize {
    64 * 1024 * 1024
}

/// Most connections `serve.max_connections` may allow (each is a file descriptor).
pub const MAX_CONNECTIONS: usize = 65_536;

impl ServeConfig {
    /// Checks values: secrets long enough, limits that can be met.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |message: String| Err(ConfigError::Invalid(format!("serve.{message}")));
        for (name, secret) in [
            ("github_secret", &self.github_secret),
            ("gitlab_token", &self.gitlab_token),
            ("trigger_token", &self.trigger_token),
        ] {
            if secret.as_ref().is_some_and(|s| s.expose().len() < 8) {
                return invalid(format!("{name} is shorter than 8 characters; leave it out to turn the hook off"));
            }
        }
        for (name, timeout) in [
            ("header_timeout", self.header_timeout),
            ("body_timeout", self.body_timeout),
            ("idle_timeout", self.idle_timeout),
        ] {
            if timeout.is_zero() {
                return invalid(format!("{name} must be longer than 0s"));
            }
        }
        if !(1..=MAX_CONNECTIONS).contains(&self.max_connections) {
            return invalid(format!("max_connections must be 1 to {MAX_CONNECTIONS}, got {}", self.max_connections));
        }
        if self.max_body > self.max_body_memory {
            return invalid(format!(
                "max_body ({}) is larger than max_body_memory ({}): no body of that size could ever be read",
                self.max_body, self.max_body_memory
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FarmConfig;

    #[test]
    fn serve_limits_default_and_are_checked() {
        let base = "[repository]\nbase_url = \"https://x/\"\n[serve]\n";
        let serve = FarmConfig::from_toml(base).unwrap().serve;
        assert_eq!(serve.header_timeout, Duration::from_secs(10));
        assert_eq!(serve.body_timeout, Duration::from_secs(30));
        assert_eq!(serve.idle_timeout, Duration::from_secs(60));
        assert_eq!((serve.max_connections, serve.max_body_memory), (256, 64 << 20));
        let set = FarmConfig::from_toml(&format!("{base}header_timeout = \"2s\"\nmax_connections = 16\n")).unwrap();
        assert_eq!((set.serve.header_timeout, set.serve.max_connections), (Duration::from_secs(2), 16));
        for (line, expected) in [
            ("idle_timeout = \"0s\"", "serve.idle_timeout must be longer than 0s"),
            ("max_connections = 0", "serve.max_connections must be 1 to 65536"),
            ("max_body_memory = 1024", "serve.max_body (5242880) is larger than max_body_memory (1024)"),
            ("gitlab_token = \"short\"", "serve.gitlab_token is shorter than 8 characters"),
            ("listen = \"localhost\"", "'localhost' is not an address like 127.0.0.1:8080"),
        ] {
            let error = FarmConfig::from_toml(&format!("{base}{line}\n")).unwrap_err().to_string();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
