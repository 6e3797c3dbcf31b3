//! The native consistency check: every requirement on a package this repository publishes (or
//! replaces, or provides) is satisfied by some published version, with Composer's constraint and
//! stability rules; no requirement names a package of the repository's own vendors that exists
//! nowhere; every product's and project's requirement chain leads to published versions; and no
//! flavour's product installs, through what it keeps, a package the flavour leaves out.
//!
//! It looks at one link at a time (is there a version at all?), not at the whole solution: two
//! requirements that each have versions but exclude each other are the real-client probes' job.

use std::collections::{HashMap, VecDeque};

use serde::Serialize;
use shared::config::Flavour;
use shared::constraint::{Constraint, Stability, php_version_compare};

use super::index::{Index, Offer, Release};

/// Platform packages (Composer's `PlatformRepository::PLATFORM_PACKAGE_REGEX`): never in a
/// repository.
static PLATFORM: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i-u)^(?:php(?:-64bit|-ipv6|-zts|-debug)?|hhvm|(?:ext|lib)-[a-z0-9](?:[_.-]?[a-z0-9]+)*|composer(?:-(?:plugin|runtime)-api)?)$",
    )
    .expect("valid regex")
});

/// What the check is told.
pub struct CheckOptions<'c> {
    /// Least stable version a requirement may be satisfied by (a project: its own).
    pub minimum_stability: Stability,
    /// Names from other repositories (`*` patterns): not checked.
    pub external: &'c [String],
    /// The configured flavours (their products are checked for leaks).
    pub flavours: &'c [Flavour],
}

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// No published version matches the constraint.
    Unsatisfiable,
    /// Versions match, but all are less stable than allowed.
    TooUnstable,
    /// The name is of one of the repository's vendors but exists nowhere.
    Missing,
    /// Composer cannot parse the constraint.
    InvalidConstraint,
    /// A flavour's product installs a package the flavour leaves out.
    FlavourLeak,
}

/// One problem: `package version requires X constraint`, and what exists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    /// The package whose requirement fails.
    pub package: String,
    /// Its version.
    pub version: String,
    /// The name required (for a leak: the package left out).
    pub requires: String,
    /// The constraint (empty for a leak).
    pub constraint: String,
    /// What is wrong.
    pub kind: ProblemKind,
    /// The versions that exist of the name (newest first), with what replaces or provides it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub available: Vec<String>,
    /// A product or project that needs the failing package, and the packages in between.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
    /// The whole problem in words.
    pub message: String,
}

/// The check's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Consistency {
    /// Versions checked.
    pub versions: usize,
    /// Requirements on this repository's packages checked.
    pub links: usize,
    /// Requirements on other repositories' packages (not checked).
    pub external_links: usize,
    /// What is wrong with the current versions: the newest of each package (every dev branch),
    /// and whatever a current product or project needs.
    pub problems: Vec<Problem>,
    /// What is wrong with versions nothing current needs (published versions never change, so
    /// these stay; they do not make the repository broken).
    pub historical: Vec<Problem>,
}

/// One requirement's answer.
#[derive(Debug, Clone)]
enum Answer {
    External,
    Satisfied(Vec<usize>),
    Failed(ProblemKind, String),
}

/// Runs the check over every published version.
pub fn check(index: &Index, options: &CheckOptions) -> Consistency {
    let mut checker = Checker { index, options, answers: HashMap::new() };
    let mut result = Consistency { versions: index.releases.len(), ..Consistency::default() };
    let mut problems = Vec::new();
    let mut owners = Vec::new();
    for (at, release) in index.releases.iter().enumerate() {
        for (name, text) in release.requires() {
            match checker.answer(release, name, text) {
                Answer::External => result.external_links += 1,
                Answer::Satisfied(_) => result.links += 1,
                Answer::Failed(kind, detail) => {
                    result.links += usize::from(kind != ProblemKind::Missing);
                    owners.push(at);
                    problems.push(checker.problem(release, name, text, kind, &detail));
                }
            }
        }
    }
    let current = current_releases(index);
    checker.add_chains(&mut problems, &owners, &current);
    for (problem, owner) in problems.iter_mut().zip(&owners) {
        if !problem.chain.is_empty() {
            problem.message = format!("{} (needed by {})", problem.message, problem.chain.join(" → "));
        }
        let relevant = current[*owner] || !problem.chain.is_empty();
        if relevant { result.problems.push(problem.clone()) } else { result.historical.push(problem.clone()) }
    }
    result.problems.extend(checker.flavour_leaks(&current));
    let order =
        |a: &Problem, b: &Problem| (&a.package, &a.version, &a.requires).cmp(&(&b.package, &b.version, &b.requires));
    result.problems.sort_by(order);
    result.historical.sort_by(order);
    result
}

/// Per release, whether it is current: a dev branch, or the newest numbered version of its name.
fn current_releases(index: &Index) -> Vec<bool> {
    let mut newest: HashMap<&str, usize> = HashMap::new();
    let mut current = vec![false; index.releases.len()];
    for (at, release) in index.releases.iter().enumerate() {
        match release.normalized.first().filter(|v| !v.starts_with("dev-")) {
            None => current[at] = true,
            Some(version) => {
                let slot = newest.entry(release.name.as_str()).or_insert(at);
                let best = &index.releases[*slot].normalized[0];
                if php_version_compare(version, best) == std::cmp::Ordering::Greater {
                    *slot = at;
                }
            }
        }
    }
    for at in newest.into_values() {
        current[at] = true;
    }
    current
}

struct Checker<'i, 'a, 'c> {
    index: &'i Index<'a>,
    options: &'i CheckOptions<'c>,
    /// (name, constraint, stability allowed) → answer.
    answers: HashMap<(String, String, Stability), Answer>,
}

impl Checker<'_, '_, '_> {
    /// Whether (and by which versions) a requirement of `release` is satisfied.
    fn answer(&mut self, release: &Release, name: &str, text: &str) -> Answer {
        if PLATFORM.is_match(name) || self.is_external(name) {
            return Answer::External;
        }
        if !self.index.knows(name) {
            let own = name.split_once('/').is_some_and(|(vendor, _)| self.index.vendors().contains(vendor));
            return if own { Answer::Failed(ProblemKind::Missing, String::new()) } else { Answer::External };
        }
        let allowed = self.allowed_stability(release, text);
        let key = (name.to_owned(), text.to_owned(), allowed);
        if let Some(answer) = self.answers.get(&key) {
            return answer.clone();
        }
        let answer = match Constraint::parse(text) {
            Err(error) => Answer::Failed(ProblemKind::InvalidConstraint, error.to_string()),
            Ok(constraint) => {
                let matching = self.index.matching(name, &constraint);
                let stable: Vec<usize> =
                    matching.iter().copied().filter(|at| self.index.releases[*at].stability <= allowed).collect();
                match (matching.is_empty(), stable.is_empty()) {
                    (_, false) => Answer::Satisfied(stable),
                    (true, _) => Answer::Failed(ProblemKind::Unsatisfiable, String::new()),
                    (false, true) => {
                        let labels: Vec<String> =
                            matching.iter().take(5).map(|at| self.index.releases[*at].version.to_owned()).collect();
                        Answer::Failed(ProblemKind::TooUnstable, labels.join(", "))
                    }
                }
            }
        };
        self.answers.insert(key, answer.clone());
        answer
    }

    fn is_external(&self, name: &str) -> bool {
        self.options.external.iter().any(|pattern| shared::config::name_matches(pattern, name))
    }

    /// The least stable version this requirement may take: a project is a root package, so its
    /// own `minimum-stability` and its requirements' stability flags count; any other package
    /// gets the check's setting.
    fn allowed_stability(&self, release: &Release, text: &str) -> Stability {
        if release.kind() != "project" {
            return self.options.minimum_stability;
        }
        let own = release.minimum_stability.as_deref().and_then(Stability::parse).unwrap_or(Stability::Stable);
        own.max(flag_stability(text))
    }

    fn problem(&self, release: &Release, name: &str, text: &str, kind: ProblemKind, detail: &str) -> Problem {
        let available = self.available(name);
        let head = format!("{} requires {name} {text}", release.label());
        let message = match kind {
            ProblemKind::Unsatisfiable if available.is_empty() => format!("{head}, but no version of it is published"),
            ProblemKind::Unsatisfiable => {
                format!("{head}, but no published version matches; published: {}", shown(&available))
            }
            ProblemKind::TooUnstable => format!(
                "{head}, but only {detail} match, less stable than minimum-stability {}",
                self.allowed_stability(release, text).as_str()
            ),
            ProblemKind::Missing => format!("{head}, which this repository does not publish, replace or provide"),
            ProblemKind::InvalidConstraint => format!("{head}: not a valid Composer constraint ({detail})"),
            ProblemKind::FlavourLeak => head,
        };
        Problem {
            package: release.name.clone(),
            version: release.version.to_owned(),
            requires: name.to_owned(),
            constraint: text.to_owned(),
            kind,
            available,
            chain: Vec::new(),
            message,
        }
    }

    /// What exists of `name`: its versions newest first, then who replaces or provides it.
    fn available(&self, name: &str) -> Vec<String> {
        let mut own: Vec<&str> = Vec::new();
        let mut others = Vec::new();
        for (at, offer) in self.index.offers(name) {
            let release = &self.index.releases[*at];
            match offer {
                Offer::Is => own.push(release.version),
                Offer::Replaces(c) => others.push(format!("{} (replaces {name} {})", release.label(), c.pretty())),
                Offer::Provides(c) => others.push(format!("{} (provides {name} {})", release.label(), c.pretty())),
            }
        }
        own.sort_by(|a, b| shared::version::total_cmp(b, a));
        own.dedup();
        own.into_iter().map(str::to_owned).chain(others).collect()
    }

    /// The newest satisfying version (a numbered one before a dev branch).
    fn best(&self, candidates: &[usize]) -> Option<usize> {
        candidates.iter().copied().max_by(|a, b| {
            let (a, b) = (&self.index.releases[*a], &self.index.releases[*b]);
            let key = |r: &Release| r.normalized.first().filter(|v| !v.starts_with("dev-")).cloned();
            match (key(a), key(b)) {
                (Some(x), Some(y)) => php_version_compare(&x, &y),
                (x, y) => x.is_some().cmp(&y.is_some()),
            }
        })
    }

    /// Walks from `root` through the newest satisfying version of each requirement; returns
    /// each release reached with the release it was reached from.
    fn walk(&mut self, root: usize) -> Vec<(usize, Option<usize>)> {
        let mut parent: HashMap<usize, Option<usize>> = HashMap::from([(root, None)]);
        let mut order = vec![(root, None)];
        let mut queue = VecDeque::from([root]);
        while let Some(at) = queue.pop_front() {
            let release = &self.index.releases[at];
            for (name, text) in release.requires() {
                let Answer::Satisfied(candidates) = self.answer(release, name, text) else { continue };
                if let Some(next) = self.best(&candidates)
                    && !parent.contains_key(&next)
                {
                    parent.insert(next, Some(at));
                    order.push((next, Some(at)));
                    queue.push_back(next);
                }
            }
        }
        order
    }

    fn path(&self, reached: &[(usize, Option<usize>)], to: usize) -> Vec<String> {
        let parents: HashMap<usize, Option<usize>> = reached.iter().copied().collect();
        let mut path = vec![self.index.releases[to].label()];
        let mut at = parents.get(&to).copied().flatten();
        while let Some(step) = at {
            path.push(self.index.releases[step].label());
            at = parents.get(&step).copied().flatten();
        }
        path.reverse();
        path
    }

    /// Gives each problem of a package a current product or project reaches the (shortest)
    /// chain that leads there.
    fn add_chains(&mut self, problems: &mut [Problem], owners: &[usize], current: &[bool]) {
        if problems.is_empty() {
            return;
        }
        let mut failing: HashMap<usize, Vec<usize>> = HashMap::new();
        for (problem, owner) in owners.iter().enumerate() {
            failing.entry(*owner).or_default().push(problem);
        }
        let roots: Vec<usize> = (0..self.index.releases.len())
            .filter(|at| current[*at] && matches!(self.index.releases[*at].kind(), "metapackage" | "project"))
            .collect();
        for root in roots {
            let reached = self.walk(root);
            for (at, _) in &reached {
                for problem in failing.get(at).into_iter().flatten() {
                    let chain = self.path(&reached, *at);
                    let known = &problems[*problem].chain;
                    if chain.len() > 1 && (known.is_empty() || chain.len() < known.len()) {
                        problems[*problem].chain = chain;
                    }
                }
            }
        }
    }

    /// Every package a flavour's product installs that the flavour's rules leave out.
    fn flavour_leaks(&mut self, current: &[bool]) -> Vec<Problem> {
        let mut problems = Vec::new();
        for flavour in self.options.flavours {
            let suffix = format!("/{}", flavour.product_name());
            let products: Vec<usize> = (0..self.index.releases.len())
                .filter(|at| current[*at] && self.index.releases[*at].name.ends_with(&suffix))
                .collect();
            for product in products {
                let reached = self.walk(product);
                for (at, _) in reached.iter().skip(1) {
                    let release = &self.index.releases[*at];
                    if !flavour.excludes(&release.name, Some(release.kind())) {
                        continue;
                    }
                    let chain = self.path(&reached, *at);
                    let root = &self.index.releases[product];
                    let through = chain[1..chain.len() - 1].join(" → ");
                    problems.push(Problem {
                        package: root.name.clone(),
                        version: root.version.to_owned(),
                        requires: release.name.clone(),
                        constraint: String::new(),
                        kind: ProblemKind::FlavourLeak,
                        available: Vec::new(),
                        message: format!(
                            "{} leaves out {}, but installs it ({}) through {through}",
                            root.label(),
                            release.name,
                            release.version
                        ),
                        chain,
                    });
                }
            }
        }
        problems
    }
}

/// The stability a root requirement asks for: an `@flag`, else the least stable explicit version
/// in it (Composer's `RootPackageLoader::extractStabilityFlags`).
fn flag_stability(text: &str) -> Stability {
    let parts = text.split(['|', ',', ' ']).filter(|p| !p.is_empty());
    let mut flagged = None;
    let mut explicit = Stability::Stable;
    for part in parts {
        if let Some((_, flag)) = part.rsplit_once('@')
            && let Some(stability) = Stability::parse(flag)
        {
            flagged = Some(flagged.map_or(stability, |f: Stability| f.max(stability)));
            continue;
        }
        let version = part.trim_start_matches(['=', '<', '>', '~', '^', '!']);
        if !version.is_empty() && shared::version::composer_normalize(version).is_ok() {
            explicit = explicit.max(shared::constraint::stability_of(version));
        }
    }
    flagged.unwrap_or(explicit)
}

fn shown(versions: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = versions.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if versions.len() > SHOWN {
        text.push_str(&format!(" and {} more", versions.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value};
    use shared::metadata::PublishedVersion;

    use super::*;

    fn version(name: &str, version: &str, composer: &str) -> PublishedVersion {
        let mut object: Map<String, Value> = serde_json::from_str(composer).unwrap();
        object.insert("name".into(), name.into());
        PublishedVersion {
            name: name.to_owned(),
            version: version.to_owned(),
            composer: shared::metadata::ComposerJson::of_map(&object),
            key: format!("packages/{name}-{version}.zip"),
            sha1: "0".repeat(40),
        }
    }

    fn run(versions: &[PublishedVersion], stability: Stability, flavours: &[Flavour]) -> Consistency {
        let options =
            CheckOptions { minimum_stability: stability, external: &["acme/from-packagist".to_owned()], flavours };
        check(&Index::new(versions), &options)
    }

    fn kinds(result: &Consistency) -> Vec<(String, ProblemKind)> {
        result
            .problems
            .iter()
            .map(|p| (format!("{} {} -> {} {}", p.package, p.version, p.requires, p.constraint), p.kind))
            .collect()
    }

    #[test]
    fn a_sibling_pin_to_a_version_that_does_not_exist_is_named_with_what_exists_and_who_needs_it() {
        let versions = [
            version(
                "acme/product",
                "2.0.0",
                r#"{"type":"metapackage","require":{"acme/catalog":"2.0.0","php":"~8.2","ext-intl":"*"}}"#,
            ),
            version(
                "acme/catalog",
                "2.0.0",
                r#"{"require":{"acme/eav":"103.0.9","acme/from-packagist":"^1","other/lib":"^3"}}"#,
            ),
            version("acme/eav", "103.0.8", "{}"),
            version("acme/eav", "103.0.7", "{}"),
        ];
        let result = run(&versions, Stability::Dev, &[]);
        assert_eq!(kinds(&result), [("acme/catalog 2.0.0 -> acme/eav 103.0.9".to_owned(), ProblemKind::Unsatisfiable)]);
        let problem = &result.problems[0];
        assert_eq!(problem.available, ["103.0.8", "103.0.7"]);
        assert_eq!(problem.chain, ["acme/product 2.0.0", "acme/catalog 2.0.0"]);
        assert_eq!(
            problem.message,
            "acme/catalog 2.0.0 requires acme/eav 103.0.9, but no published version matches; published: 103.0.8, 103.0.7 (needed by acme/product 2.0.0 → acme/catalog 2.0.0)"
        );
        // php, ext-intl, the configured external name and another vendor's package are not checked.
        assert_eq!((result.links, result.external_links), (2, 4));
    }

    #[test]
    fn a_problem_of_a_version_nothing_current_needs_is_historical() {
        let versions = [
            version("acme/product", "2.0.1", r#"{"type":"metapackage","require":{"acme/catalog":"2.0.1"}}"#),
            version("acme/product", "2.0.0", r#"{"type":"metapackage","require":{"acme/catalog":"2.0.0"}}"#),
            version("acme/catalog", "2.0.1", r#"{"require":{"acme/eav":"1.0.1"}}"#),
            version("acme/catalog", "2.0.0", r#"{"require":{"acme/eav":"9.9.9"}}"#),
            version("acme/eav", "1.0.1", "{}"),
        ];
        let result = run(&versions, Stability::Dev, &[]);
        assert!(result.problems.is_empty(), "{:?}", result.problems);
        assert_eq!(result.historical.len(), 1);
        assert_eq!(result.historical[0].requires, "acme/eav");
        // A current product pinning the old version makes it current again.
        let mut pinned = versions.to_vec();
        pinned[0] = version("acme/product", "2.0.1", r#"{"type":"metapackage","require":{"acme/catalog":"2.0.0"}}"#);
        let result = run(&pinned, Stability::Dev, &[]);
        assert_eq!(kinds(&result), [("acme/catalog 2.0.0 -> acme/eav 9.9.9".to_owned(), ProblemKind::Unsatisfiable)]);
        assert_eq!(result.problems[0].chain, ["acme/product 2.0.1", "acme/catalog 2.0.0"]);
    }

    #[test]
    fn replace_and_provide_satisfy_requirements_with_their_constraints() {
        let versions = [
            version("mage-os/module-a", "2.4.7", r#"{"replace":{"magento/module-a":"self.version"}}"#),
            version("mage-os/cache", "1.0.0", r#"{"provide":{"psr/cache-implementation":"^1.0 || ^2.0"}}"#),
            version(
                "mage-os/module-b",
                "2.4.7",
                r#"{"require":{"magento/module-a":"2.4.*","psr/cache-implementation":"2.0.0","mage-os/module-a":"^2.4"}}"#,
            ),
            version(
                "mage-os/module-c",
                "2.4.7",
                r#"{"require":{"magento/module-a":"^2.5","psr/cache-implementation":"^3"}}"#,
            ),
        ];
        let result = run(&versions, Stability::Dev, &[]);
        assert_eq!(
            kinds(&result),
            [
                ("mage-os/module-c 2.4.7 -> magento/module-a ^2.5".to_owned(), ProblemKind::Unsatisfiable),
                ("mage-os/module-c 2.4.7 -> psr/cache-implementation ^3".to_owned(), ProblemKind::Unsatisfiable),
            ]
        );
        assert_eq!(result.problems[0].available, ["mage-os/module-a 2.4.7 (replaces magento/module-a 2.4.7)"]);
    }

    #[test]
    fn a_name_of_our_vendor_that_exists_nowhere_and_a_constraint_composer_cannot_read() {
        let versions = [
            version("acme/a", "1.0.0", r#"{"require":{"acme/gone":"^1.0","acme/b":"not a constraint"}}"#),
            version("acme/b", "1.0.0", "{}"),
        ];
        let result = run(&versions, Stability::Dev, &[]);
        assert_eq!(
            kinds(&result),
            [
                ("acme/a 1.0.0 -> acme/b not a constraint".to_owned(), ProblemKind::InvalidConstraint),
                ("acme/a 1.0.0 -> acme/gone ^1.0".to_owned(), ProblemKind::Missing),
            ]
        );
        assert!(result.problems[1].message.ends_with("which this repository does not publish, replace or provide"));
    }

    #[test]
    fn stability_the_checks_setting_and_a_projects_own() {
        let versions = [
            version("acme/lib", "1.1.0-a20261121", "{}"),
            version("acme/app", "1.0.0", r#"{"require":{"acme/lib":"^1.1"}}"#),
            version(
                "acme/project",
                "1.0.0",
                r#"{"type":"project","minimum-stability":"alpha","require":{"acme/lib":"^1.1"}}"#,
            ),
            version("acme/strict", "1.0.0", r#"{"type":"project","require":{"acme/lib":"^1.1"}}"#),
            version("acme/flagged", "1.0.0", r#"{"type":"project","require":{"acme/lib":"^1.1@alpha"}}"#),
        ];
        let dev = run(&versions, Stability::Dev, &[]);
        assert_eq!(kinds(&dev), [("acme/strict 1.0.0 -> acme/lib ^1.1".to_owned(), ProblemKind::TooUnstable)]);
        let stable = run(&versions, Stability::Stable, &[]);
        assert_eq!(
            kinds(&stable),
            [
                ("acme/app 1.0.0 -> acme/lib ^1.1".to_owned(), ProblemKind::TooUnstable),
                ("acme/strict 1.0.0 -> acme/lib ^1.1".to_owned(), ProblemKind::TooUnstable),
            ]
        );
        assert_eq!(
            stable.problems[0].message,
            "acme/app 1.0.0 requires acme/lib ^1.1, but only 1.1.0-a20261121 match, less stable than minimum-stability stable"
        );
    }

    #[test]
    fn dev_branches_and_their_aliases() {
        let versions = [
            version("acme/lib", "dev-main", r#"{"extra":{"branch-alias":{"dev-main":"2.4.x-dev"}}}"#),
            version("acme/a", "1.0.0", r#"{"require":{"acme/lib":"dev-main"}}"#),
            version("acme/b", "1.0.0", r#"{"require":{"acme/lib":"2.4.*@dev"}}"#),
            version("acme/c", "1.0.0", r#"{"require":{"acme/lib":"dev-develop"}}"#),
        ];
        let result = run(&versions, Stability::Dev, &[]);
        assert_eq!(kinds(&result), [("acme/c 1.0.0 -> acme/lib dev-develop".to_owned(), ProblemKind::Unsatisfiable)]);
    }

    #[test]
    fn a_flavour_product_that_installs_what_the_flavour_leaves_out() {
        let flavour: Flavour = toml::from_str("name = \"minimal\"\nexclude = [\"acme/module-graph-ql\"]").unwrap();
        let versions = [
            version(
                "acme/product-minimal-edition",
                "2.0.0",
                r#"{"type":"metapackage","require":{"acme/module-catalog-graph-ql":"2.0.0"}}"#,
            ),
            version("acme/module-catalog-graph-ql", "2.0.0", r#"{"require":{"acme/module-graph-ql":"2.0.0"}}"#),
            version("acme/module-graph-ql", "2.0.0", "{}"),
        ];
        let result = run(&versions, Stability::Dev, std::slice::from_ref(&flavour));
        assert_eq!(
            kinds(&result),
            [("acme/product-minimal-edition 2.0.0 -> acme/module-graph-ql ".to_owned(), ProblemKind::FlavourLeak)]
        );
        assert_eq!(
            result.problems[0].message,
            "acme/product-minimal-edition 2.0.0 leaves out acme/module-graph-ql, but installs it (2.0.0) through acme/module-catalog-graph-ql 2.0.0"
        );
    }
}
