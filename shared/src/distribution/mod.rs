//! The version, rename and metapackage rules of the reference generator's nightly and release
//! builds (reference spec 3.8, 3.10, 5.3, 5.4, 5.5 and 5.7), as pure functions.
//!
//! Everything here works on composer.json objects whose key order decides the archive bytes: a
//! key assigned when it already exists keeps its position, a new key is appended last, exactly as
//! JavaScript objects behave. Where the reference relies on JavaScript semantics (`a || b` with
//! empty strings being false, `undefined` values vanishing from `JSON.stringify`), the functions
//! say how they reproduce it.
//!
//! One module per family of rules: nightly versions, the reference's orders and sorts, vendor
//! renames and pinned versions, the community-edition metapackages and the alias metapackages. The
//! JavaScript semantics they reproduce are in [`crate::js`], the build state in [`crate::release`].

mod alias;
mod edition;
mod nightly;
mod ordering;
mod rename;
#[cfg(test)]
mod test_support;

pub use alias::{Alias, alias_composer_json, alias_winners};
pub use edition::{community_product, community_project, mage_os_product, mage_os_project};
pub use nightly::{
    InvalidNightlyVersion, add_suffix_to_version, nightly_base_version, nightly_version, version_stability,
};
pub use ordering::{latest_stable_release, latest_tag, sort_base_links, sort_gate, sort_keys};
pub use rename::{SAMPLE_DATA_PREFIX, magento_to_mage_os, set_dependency_versions, to_vendor, vendor_rename};

pub use crate::release::{Release, validate_release_version};
