//! A Composer repository's versions as the solver sees them: each version with its normalized
//! forms (and branch aliases) and stability, and per name every version that is or replaces or
//! provides it; answers "which published versions satisfy this requirement".

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use shared::constraint::{Constraint, Stability, stability_of};
use shared::metadata::PublishedVersion;

/// One published version.
#[derive(Debug)]
pub struct Release<'a> {
    /// Composer name, lower case.
    pub name: String,
    /// Version as published.
    pub version: &'a str,
    /// `version_normalized`, and the normalized branch aliases of a dev version.
    pub normalized: Vec<String>,
    /// Its stability.
    pub stability: Stability,
    /// The composer `type` (`library` when absent).
    kind: String,
    /// `require` links, see [`Release::requires`].
    requires: Vec<(String, String)>,
    /// Its `minimum-stability`, if it sets one.
    pub minimum_stability: Option<String>,
}

impl Release<'_> {
    /// `name version`, as a PHP developer reads it.
    pub fn label(&self) -> String {
        format!("{} {}", self.name, self.version)
    }

    /// The composer `type` (`library` when absent).
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// `require` links as (lower-case name, constraint text); non-string constraints are
    /// given as their JSON text (Composer would refuse them, and so will the check).
    pub fn requires(&self) -> &[(String, String)] {
        &self.requires
    }
}

fn links(composer: &Map<String, Value>, key: &str) -> Vec<(String, String)> {
    match composer.get(key) {
        Some(Value::Object(links)) => links
            .iter()
            .map(|(name, c)| (name.to_lowercase(), c.as_str().map_or_else(|| c.to_string(), str::to_owned)))
            .collect(),
        _ => Vec::new(),
    }
}

/// How a version offers a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offer {
    /// It is that package.
    Is,
    /// It replaces it (with this constraint).
    Replaces(Constraint),
    /// It provides it (with this constraint).
    Provides(Constraint),
}

/// Every published version, and who offers each name.
pub struct Index<'a> {
    /// The versions, in the order given.
    pub releases: Vec<Release<'a>>,
    offers: HashMap<String, Vec<(usize, Offer)>>,
    vendors: BTreeSet<String>,
}

impl<'a> Index<'a> {
    /// Indexes published versions.
    pub fn new(versions: &'a [PublishedVersion]) -> Index<'a> {
        let mut index =
            Index { releases: Vec::with_capacity(versions.len()), offers: HashMap::new(), vendors: BTreeSet::new() };
        for published in versions {
            // Parsed once here, and only what the checks read is kept.
            let composer = published.composer.to_map();
            let release = release(published, &composer);
            let at = index.releases.len();
            if let Some((vendor, _)) = release.name.split_once('/') {
                index.vendors.insert(vendor.to_owned());
            }
            index.offers.entry(release.name.clone()).or_default().push((at, Offer::Is));
            for (key, make) in [("replace", Offer::Replaces as fn(Constraint) -> Offer), ("provide", Offer::Provides)] {
                for (name, text) in links(&composer, key) {
                    let text = if text == "self.version" { release.version.to_owned() } else { text };
                    // An unparsable link offers nothing (Composer refuses the package).
                    if let Ok(constraint) = Constraint::parse(&text) {
                        index.offers.entry(name).or_default().push((at, make(constraint)));
                    }
                }
            }
            index.releases.push(release);
        }
        index
    }

    /// Whether some version is, replaces or provides `name`.
    pub fn knows(&self, name: &str) -> bool {
        self.offers.contains_key(name)
    }

    /// Vendors of the names published (not of the names only replaced or provided).
    pub fn vendors(&self) -> &BTreeSet<String> {
        &self.vendors
    }

    /// The versions offering `name`, as (release index, how).
    pub fn offers(&self, name: &str) -> &[(usize, Offer)] {
        self.offers.get(name).map_or(&[], Vec::as_slice)
    }

    /// Releases offering `name` in a way that satisfies `constraint` (stability aside), each
    /// once.
    pub fn matching(&self, name: &str, constraint: &Constraint) -> Vec<usize> {
        let mut found: Vec<usize> = self
            .offers(name)
            .iter()
            .filter(|(at, offer)| match offer {
                Offer::Is => self.releases[*at].normalized.iter().any(|v| constraint.matches_version(v)),
                Offer::Replaces(link) | Offer::Provides(link) => constraint.matches(link),
            })
            .map(|(at, _)| *at)
            .collect();
        found.dedup();
        found
    }
}

fn release<'a>(published: &'a PublishedVersion, composer: &Map<String, Value>) -> Release<'a> {
    let mut normalized: Vec<String> = shared::version::composer_normalize(&published.version).into_iter().collect();
    if shared::metadata::is_dev(&published.version) {
        let alias = composer
            .get("extra")
            .and_then(|e| e.get("branch-alias"))
            .and_then(|a| a.get(&published.version))
            .and_then(Value::as_str);
        if let Some(Ok(alias)) = alias.map(shared::version::composer_normalize) {
            normalized.push(alias);
        }
    }
    Release {
        name: published.name.to_lowercase(),
        version: &published.version,
        normalized,
        stability: stability_of(&published.version),
        kind: composer.get("type").and_then(Value::as_str).unwrap_or("library").to_owned(),
        requires: links(composer, "require"),
        minimum_stability: composer.get("minimum-stability").and_then(Value::as_str).map(str::to_owned),
    }
}
