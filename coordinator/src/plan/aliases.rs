//! Alias metapackages (spec 3.10): `magento/*` names that a vendor package replaces, published as
//! metapackages that require the vendor package.

use std::collections::HashSet;

use git2::Oid;
use serde_json::Value;
use shared::distribution;

use super::candidate::{Candidate, Precedence};
use super::findings::Rejection;
use crate::manifest::{PackageId, Provenance};

/// Alias metapackages (spec 3.10): for every `magento/*` a built vendor package replaces, a
/// `magento/*` metapackage requiring the vendor package, unless that name@version is built.
pub fn alias_candidates(winners: &[Candidate], vendor: &str, published: &dyn Fn(&str) -> bool) -> Vec<Candidate> {
    let prefix = format!("{vendor}/");
    let mut packages = Vec::new();
    for candidate in winners.iter().filter(|c| c.package.starts_with(&prefix)) {
        let Ok(Value::Object(config)) = shared::json::parse(&candidate.composer_json) else { continue };
        let replace = match config.get("replace") {
            Some(Value::Object(replace)) => replace.clone(),
            _ => continue,
        };
        packages.push((candidate.package.clone(), candidate.version.clone(), replace));
    }
    let built: HashSet<String> = winners.iter().map(Candidate::id).collect();
    distribution::alias_winners(&packages)
        .into_iter()
        .filter(|alias| {
            let id = PackageId::new(&alias.magento_name, &alias.magento_version).to_string();
            !built.contains(&id) && !published(&id)
        })
        .map(|alias| Candidate {
            composer_json: distribution::alias_composer_json(
                &alias.magento_name,
                &alias.magento_version,
                &alias.mage_os_name,
                &alias.mage_os_version,
            ),
            key: shared::identity::archive_key(&alias.magento_name, &alias.magento_version, None),
            final_identity: (alias.magento_name.clone(), alias.magento_version.clone()),
            package: alias.magento_name,
            version: alias.magento_version,
            precedence: Precedence::FirstWins,
            upstream: Provenance::Alias,
            repo_url: String::new(),
            tag: PackageId::new(&alias.mage_os_name, &alias.mage_os_version).to_string(),
            branch: false,
            commit: Oid::zero(),
            tree_id: Oid::zero(),
            content: shared::messages::Content::ComposerJsonOnly,
            flavour: None,
            files: Vec::new(),
        })
        .collect()
}

/// The alias metapackages of a release target with aliases (vendor other than `magento`), each
/// checked as every package is; one that fails is rejected with the reason.
pub fn add_aliases(
    winners: &mut Vec<Candidate>,
    rejected: &mut Vec<Rejection>,
    vendor: &str,
    published: &dyn Fn(&str) -> bool,
) {
    if vendor == shared::config::DEFAULT_VENDOR {
        return;
    }
    for alias in alias_candidates(winners, vendor, published) {
        match shared::identity::check(&alias.package, &alias.version, &alias.key) {
            Ok(()) => winners.push(alias),
            Err(reason) => rejected.push(Rejection {
                upstream: Provenance::Alias,
                tag: Some(alias.tag.clone()),
                dir: None,
                reason: format!("no alias metapackage: {reason}"),
            }),
        }
    }
}
