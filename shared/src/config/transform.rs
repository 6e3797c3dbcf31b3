//! composer.json adjustments of an upstream's packages: the reference's JavaScript `transform`
//! functions as data, a condition on the package version and a list of set/remove actions.

use serde::Deserialize;

/// A composer.json adjustment for one package.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transform {
    /// Composer name the transform applies to.
    pub package: String,
    /// Conditions on the package's final version; all must hold.
    #[serde(default)]
    pub when: Condition,
    /// Actions in order.
    pub actions: Vec<Action>,
}

/// Conditions on a version. An empty condition always holds.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The version equals this.
    #[serde(default)]
    pub version: Option<String>,
    /// The version starts with this text.
    #[serde(default)]
    pub version_prefix: Option<String>,
    /// The version compares `>=` this one (reference order).
    #[serde(default)]
    pub version_at_least: Option<String>,
    /// The version compares `<` this one (reference order).
    #[serde(default)]
    pub version_below: Option<String>,
}

/// One composer.json edit.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Action {
    /// Set the value at a key path; missing objects on the way are created, an existing key keeps
    /// its position, a new key is appended last.
    Set {
        /// Key path.
        set: Vec<String>,
        /// Any JSON value.
        value: serde_json::Value,
    },
    /// Remove the key at a path, if present.
    Remove {
        /// Key path.
        remove: Vec<String>,
    },
}
