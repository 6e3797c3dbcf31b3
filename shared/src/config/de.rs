//! Deserialization helpers the sections share: the `true` default, durations as humane text and socket addresses.

pub(super) fn default_true() -> bool {
    true
}

/// Durations as humane text (`"5s"`, `"2m 30s"`).
pub(super) mod duration {
    use std::time::Duration;

    use serde::Deserialize;

    pub(in crate::config) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text).map_err(|e| serde::de::Error::custom(format!("'{text}': {e}")))
    }
}

/// Socket addresses as text (`"127.0.0.1:8080"`, `"[::1]:8080"`), with an error that shows one.
pub(super) mod socket_address {
    use std::net::SocketAddr;

    use serde::Deserialize;

    pub(in crate::config) fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<SocketAddr, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(|_| serde::de::Error::custom(format!("'{text}' is not an address like 127.0.0.1:8080")))
    }
}
