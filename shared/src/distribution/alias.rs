//! The `magento/*` alias metapackages of a Mage-OS release (reference spec 3.10): their
//! composer.json, and which built package each alias requires.

use std::cmp::Ordering;
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::json;
use crate::version::{self, Comparison};

/// The composer.json text of a `magento/*` alias metapackage (spec 3.10), as
/// `JSON.stringify(…, null, 2)`: `name`, `description`, `type`, `version`, `require`. (A stored
/// copy of the reference's `package-aliases.js` of another commit also writes
/// `extra.mage-os-alias`; the pinned commit the spec describes does not.)
pub fn alias_composer_json(
    magento_name: &str,
    magento_version: &str,
    mage_os_name: &str,
    mage_os_version: &str,
) -> String {
    let text = |s: &str| Value::String(s.to_owned());
    let config = Map::from_iter([
        ("name".to_owned(), text(magento_name)),
        (
            "description".to_owned(),
            Value::String(format!(
                "Alias metapackage for {mage_os_name}. Allows extensions requiring {magento_name} to use the Mage-OS equivalent."
            )),
        ),
        ("type".to_owned(), text("metapackage")),
        ("version".to_owned(), text(magento_version)),
        ("require".to_owned(), Value::Object(Map::from_iter([(mage_os_name.to_owned(), text(mage_os_version))]))),
    ]);
    json::stringify_pretty(&Value::Object(config))
}

/// One alias metapackage to write: `magento_name` at `magento_version` requiring `mage_os_name` at
/// `mage_os_version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The upstream name the alias is published under (`magento/module-catalog`).
    pub magento_name: String,
    /// The upstream version the alias is published at.
    pub magento_version: String,
    /// The Mage-OS package the alias requires.
    pub mage_os_name: String,
    /// The Mage-OS version the alias requires.
    pub mage_os_version: String,
}

/// Chooses the alias winners (spec 3.10). Input: `(name, version, replace)` of every built Mage-OS
/// package in scan order. Each `magento/*` replace entry is a candidate keyed by
/// `<magentoName>:<magentoVersion>`; a later candidate replaces the kept one only when its Mage-OS
/// version is strictly greater ([`version::compare`]). Winners come in first-seen key order. A
/// version the comparison rejects ends that package's scan, as the reference's per-archive
/// `try` does; replace values that are neither strings nor numbers are skipped.
pub fn alias_winners(packages: &[(String, String, Map<String, Value>)]) -> Vec<Alias> {
    let mut winners: Vec<Alias> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    'packages: for (mage_os_name, mage_os_version, replace) in packages {
        for (magento_name, magento_version) in replace {
            if !magento_name.starts_with("magento/") {
                continue;
            }
            let magento_version = match magento_version {
                Value::String(s) => s.clone(),
                Value::Number(n) => json::format_js_number(n),
                _ => continue,
            };
            let alias = Alias {
                magento_name: magento_name.clone(),
                magento_version,
                mage_os_name: mage_os_name.clone(),
                mage_os_version: mage_os_version.clone(),
            };
            let key = format!("{}:{}", alias.magento_name, alias.magento_version);
            match index.get(&key) {
                None => {
                    index.insert(key, winners.len());
                    winners.push(alias);
                }
                Some(&at) => match version::compare(mage_os_version, &winners[at].mage_os_version) {
                    Ok(Comparison::Ordered(Ordering::Greater)) => winners[at] = alias,
                    Ok(_) => {}
                    Err(_) => continue 'packages,
                },
            }
        }
    }
    winners
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distribution::test_support::obj;

    // ---- aliases ---------------------------------------------------------------------------------

    #[test]
    fn alias_content() {
        assert_eq!(
            alias_composer_json("magento/module-catalog", "103.0.7", "mage-os/module-catalog", "2.1.0"),
            r#"{
  "name": "magento/module-catalog",
  "description": "Alias metapackage for mage-os/module-catalog. Allows extensions requiring magento/module-catalog to use the Mage-OS equivalent.",
  "type": "metapackage",
  "version": "103.0.7",
  "require": {
    "mage-os/module-catalog": "2.1.0"
  }
}"#
        );
    }

    #[test]
    fn alias_winners_take_the_highest_mage_os_version() {
        let package = |name: &str, version: &str, replace: &str| (name.to_owned(), version.to_owned(), obj(replace));
        let packages = vec![
            package("mage-os/module-catalog", "2.0.0", r#"{"magento/module-catalog":"103.0.7"}"#),
            package(
                "mage-os/module-sales",
                "2.1.0",
                r#"{"magento/module-sales":"101.0.5","laminas/laminas-code":"4.0.0"}"#,
            ),
            package("mage-os/module-catalog", "2.1.0", r#"{"magento/module-catalog":"103.0.7"}"#),
            package("mage-os/module-catalog", "2.0.5", r#"{"magento/module-catalog":"103.0.7"}"#),
            package("mage-os/module-catalog-legacy", "2.1.0", r#"{"magento/module-catalog":"103.0.7"}"#),
            package("mage-os/module-customer", "2.1.0", "{}"),
            package("mage-os/module-x", "1.0.0", r#"{"magento/module-x":103}"#),
        ];
        let alias = |magento_name: &str, magento_version: &str, mage_os_name: &str, mage_os_version: &str| Alias {
            magento_name: magento_name.to_owned(),
            magento_version: magento_version.to_owned(),
            mage_os_name: mage_os_name.to_owned(),
            mage_os_version: mage_os_version.to_owned(),
        };
        assert_eq!(
            alias_winners(&packages),
            vec![
                alias("magento/module-catalog", "103.0.7", "mage-os/module-catalog", "2.1.0"),
                alias("magento/module-sales", "101.0.5", "mage-os/module-sales", "2.1.0"),
                alias("magento/module-x", "103", "mage-os/module-x", "1.0.0"),
            ]
        );
        // A version the comparison rejects ends that package's scan only.
        let packages = vec![
            package("mage-os/a", "1.0.0", r#"{"magento/a":"1"}"#),
            package("mage-os/a", "nightly", r#"{"magento/a":"1","magento/b":"1"}"#),
            package("mage-os/c", "1.0.0", r#"{"magento/c":"1"}"#),
        ];
        let winners: Vec<String> = alias_winners(&packages).into_iter().map(|a| a.magento_name).collect();
        assert_eq!(winners, ["magento/a", "magento/c"]);
    }
}
