//! Composer's version constraints, to check that every `require` of a published repository can be
//! satisfied by some published version (directly or through `replace`/`provide` links).
//!
//! A port of composer/semver 3.x: `VersionParser::parseConstraints` and `parseStability`, the
//! `Constraint`, `MultiConstraint`, `MatchAllConstraint` and `MatchNoneConstraint` classes with
//! their `matches` (an intersection test, imprecise where Composer's is: two conjunctions match when
//! every pair of their parts does), and PHP's `version_compare`, which Composer compares with.
//!
//! PCRE is reproduced rather than approximated: patterns run on bytes with ASCII-only `\s`, `\d`
//! and case folding, `$` also matches before a final newline, and the and-split's lookarounds are
//! hand-written. Versions inside constraints are normalized by [`composer_normalize`].

use std::cmp::Ordering;
use std::fmt;
use std::sync::LazyLock;

use regex::bytes::{Captures, Regex};

use crate::version::composer_normalize;

/// How stable a version is, ordered as Composer's `BasePackage::$stabilities`: `stable` (0) is the
/// least, then `RC` (5), `beta` (10), `alpha` (15) and `dev` (20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stability {
    /// A release (also a `patch`/`pl`/`p` release).
    Stable,
    /// A release candidate.
    Rc,
    /// A beta.
    Beta,
    /// An alpha.
    Alpha,
    /// A development version: a branch, or a `-dev` suffix.
    Dev,
}

impl Stability {
    /// Reads a stability word case-insensitively (`VersionParser::normalizeStability`): `rc` and
    /// `RC` are [`Stability::Rc`]; anything but the five words is `None`.
    pub fn parse(word: &str) -> Option<Stability> {
        match word.to_ascii_lowercase().as_str() {
            "stable" => Some(Stability::Stable),
            "rc" => Some(Stability::Rc),
            "beta" => Some(Stability::Beta),
            "alpha" => Some(Stability::Alpha),
            "dev" => Some(Stability::Dev),
            _ => None,
        }
    }

    /// Composer's spelling: `stable`, `RC`, `beta`, `alpha`, `dev`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Stability::Stable => "stable",
            Stability::Rc => "RC",
            Stability::Beta => "beta",
            Stability::Alpha => "alpha",
            Stability::Dev => "dev",
        }
    }

    /// Composer's number for it (`BasePackage::$stabilities`): 0, 5, 10, 15 or 20.
    pub fn priority(&self) -> u8 {
        match self {
            Stability::Stable => 0,
            Stability::Rc => 5,
            Stability::Beta => 10,
            Stability::Alpha => 15,
            Stability::Dev => 20,
        }
    }
}

/// A comparison operator of a single constraint, shown as Composer shows it (`=` and `<>` are read
/// as `==` and `!=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `==` (also written `=`).
    Eq,
    /// `<`.
    Lt,
    /// `<=`.
    Le,
    /// `>`.
    Gt,
    /// `>=`.
    Ge,
    /// `!=` (also written `<>`).
    Ne,
}

impl Operator {
    /// Composer's `__toString` spelling: `==`, `<`, `<=`, `>`, `>=` or `!=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "==",
            Operator::Lt => "<",
            Operator::Le => "<=",
            Operator::Gt => ">",
            Operator::Ge => ">=",
            Operator::Ne => "!=",
        }
    }

    fn from_composer(text: &str) -> Option<Operator> {
        Some(match text {
            "=" | "==" => Operator::Eq,
            "<" => Operator::Lt,
            "<=" => Operator::Le,
            ">" => Operator::Gt,
            ">=" => Operator::Ge,
            "<>" | "!=" => Operator::Ne,
            _ => return None,
        })
    }

    /// `str_replace('=', '', $op)`, which `matchSpecific` compares.
    fn without_equals(self) -> &'static str {
        match self {
            Operator::Eq => "",
            Operator::Lt | Operator::Le => "<",
            Operator::Gt | Operator::Ge => ">",
            Operator::Ne => "!",
        }
    }

    /// Whether `version_compare($a, $b, $op)` is true when `version_compare($a, $b)` is `ordering`.
    fn holds(self, ordering: Ordering) -> bool {
        match self {
            Operator::Eq => ordering == Ordering::Equal,
            Operator::Lt => ordering == Ordering::Less,
            Operator::Le => ordering != Ordering::Greater,
            Operator::Gt => ordering == Ordering::Greater,
            Operator::Ge => ordering != Ordering::Less,
            Operator::Ne => ordering != Ordering::Equal,
        }
    }
}

/// A constraint that Composer's `VersionParser::parseConstraints` rejects (it throws
/// `UnexpectedValueException`): `message` is Composer's exception message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid version constraint \"{constraint}\": {message}")]
pub struct ConstraintError {
    /// The whole constraint text, as given.
    pub constraint: String,
    /// Why, as Composer words it (`Could not parse version constraint …: Invalid version string …`).
    pub message: String,
}

/// A parsed version constraint: Composer's constraint tree and its pretty (original) text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    node: Node,
    pretty: String,
}

/// Composer's `ConstraintInterface` implementations.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    /// `Constraint`: an operator and a normalized version (or `dev-` branch).
    Single(Single),
    /// `MultiConstraint`: at least two parts, all of which (conjunctive) or one of which must hold.
    Multi { items: Vec<Node>, conjunctive: bool },
    /// `MatchAllConstraint` (`*`).
    All,
    /// `MatchNoneConstraint`.
    Nothing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Single {
    op: Operator,
    version: String,
}

impl Node {
    fn single(op: Operator, version: impl Into<String>) -> Node {
        Node::Single(Single { op, version: version.into() })
    }

    fn conjunction(items: Vec<Node>) -> Node {
        Node::Multi { items, conjunctive: true }
    }
}

impl fmt::Display for Node {
    /// Composer's `__toString`: `>= 1.0.0.0-dev`, `[a b]` (and), `[a || b]` (or), `*`, `[]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Single(single) => write!(f, "{} {}", single.op.as_str(), single.version),
            Node::All => f.write_str("*"),
            Node::Nothing => f.write_str("[]"),
            Node::Multi { items, conjunctive } => {
                f.write_str("[")?;
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        f.write_str(if *conjunctive { " " } else { " || " })?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
        }
    }
}

impl Constraint {
    /// `VersionParser::parseConstraints`: `||`/`|` alternatives of `,`/space conjunctions of single
    /// constraints (`^`, `~`, wildcards, hyphen ranges, comparisons, `dev-` branches, `@flags`,
    /// `#refs` and ` as ` aliases).
    pub fn parse(text: &str) -> Result<Constraint, ConstraintError> {
        let error = |message| ConstraintError { constraint: text.to_owned(), message };
        let mut groups = Vec::new();
        for alternative in split_by(&OR_SPLIT, php_trim(text)) {
            let mut parts = Vec::new();
            for part in split_and(alternative) {
                parts.extend(parse_single(part).map_err(error)?);
            }
            groups.push(if parts.len() == 1 { parts.remove(0) } else { Node::conjunction(parts) });
        }
        let node = create(groups, false);
        // `getPrettyString` falls back to `__toString` when the pretty string is falsy in PHP.
        let pretty = if text.is_empty() || text == "0" { node.to_string() } else { text.to_owned() };
        Ok(Constraint { node, pretty })
    }

    /// Composer's `ConstraintInterface::matches`: whether the two constraints intersect, as
    /// Composer decides it (a `require` matched against a provided or replaced link).
    pub fn matches(&self, other: &Constraint) -> bool {
        node_matches(&self.node, &other.node)
    }

    /// Whether an already normalized version (see [`composer_normalize`]) satisfies the
    /// constraint: `matches` against `new Constraint('==', $version)`, as `Semver::satisfies`.
    pub fn matches_version(&self, normalized_version: &str) -> bool {
        node_matches(&self.node, &Node::single(Operator::Eq, normalized_version))
    }

    /// `new Constraint('==', $version)`: what a package of that normalized version provides.
    pub fn exact(normalized_version: &str) -> Constraint {
        Constraint::with_operator(Operator::Eq, normalized_version)
    }

    /// `new Constraint($op, $version)` for a normalized version.
    pub fn with_operator(op: Operator, normalized_version: &str) -> Constraint {
        Constraint::from_node(Node::single(op, normalized_version))
    }

    /// `MatchAllConstraint`: `*`, which matches everything.
    pub fn match_all() -> Constraint {
        Constraint::from_node(Node::All)
    }

    /// `MatchNoneConstraint`, which matches nothing.
    pub fn match_none() -> Constraint {
        Constraint::from_node(Node::Nothing)
    }

    /// `getPrettyString`: the text it was parsed from, else its `__toString` form.
    pub fn pretty(&self) -> &str {
        &self.pretty
    }

    fn from_node(node: Node) -> Constraint {
        let pretty = node.to_string();
        Constraint { node, pretty }
    }
}

impl fmt::Display for Constraint {
    /// Composer's `__toString` form, e.g. `[>= 1.0.0.0-dev < 2.0.0.0-dev]` for `^1.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.node.fmt(f)
    }
}

// ---------------------------------------------------------------------------------------------
// Matching: `matches` of each class, `Constraint::matchSpecific` and `Constraint::versionCompare`.

/// `$this->matches($provider)`, dispatched on the class of `$this` as PHP does.
fn node_matches(this: &Node, provider: &Node) -> bool {
    match this {
        Node::All => true,
        Node::Nothing => false,
        Node::Single(single) => match provider {
            Node::Single(other) => match_specific(single, other, false),
            // "turn matching around to find a match"
            _ => node_matches(provider, this),
        },
        Node::Multi { items, conjunctive: false } => items.iter().any(|item| node_matches(provider, item)),
        Node::Multi { items, conjunctive: true } => {
            // A conjunction against a disjunction iterates over the disjunction.
            if matches!(provider, Node::Multi { conjunctive: false, .. }) {
                return node_matches(provider, this);
            }
            items.iter().all(|item| node_matches(provider, item))
        }
    }
}

fn is_branch(version: &str) -> bool {
    version.starts_with("dev-")
}

/// `Constraint::matchSpecific`: whether two single constraints intersect.
fn match_specific(this: &Single, provider: &Single, compare_branches: bool) -> bool {
    let no_equal_op = this.op.without_equals();
    let provider_no_equal_op = provider.op.without_equals();
    let (is_equal, is_non_equal) = (this.op == Operator::Eq, this.op == Operator::Ne);
    let (provider_equal, provider_non_equal) = (provider.op == Operator::Eq, provider.op == Operator::Ne);

    // `!=` matches unless the other side is `==` the same version: always a solution otherwise.
    if is_non_equal || provider_non_equal {
        if is_non_equal && !provider_non_equal && !provider_equal && is_branch(&provider.version) {
            return false;
        }
        if provider_non_equal && !is_non_equal && !is_equal && is_branch(&this.version) {
            return false;
        }
        if !is_equal && !provider_equal {
            return true;
        }
        return version_compare(&provider.version, &this.version, Operator::Ne, compare_branches);
    }
    // Both bounds in the same direction (`<= 2.0` and `< 1.0`): always a solution.
    if this.op != Operator::Eq && no_equal_op == provider_no_equal_op {
        return !(is_branch(&this.version) || is_branch(&provider.version));
    }
    let (version1, version2, op) = if is_equal {
        (&this.version, &provider.version, provider.op)
    } else {
        (&provider.version, &this.version, this.op)
    };
    if version_compare(version1, version2, op, compare_branches) {
        // Special case: require `>= 1.0` and provide `< 1.0` touch at 1.0 but do not intersect.
        let provider_strict = provider.op.as_str() == provider_no_equal_op;
        let this_inclusive = this.op.as_str() != no_equal_op;
        return !(provider_strict
            && this_inclusive
            && php_version_compare(&provider.version, &this.version) == Ordering::Equal);
    }
    false
}

/// `Constraint::versionCompare`: `version_compare` where `dev-` branches only equal themselves
/// and, unless `compare_branches`, never satisfy an ordering.
fn version_compare(a: &str, b: &str, op: Operator, compare_branches: bool) -> bool {
    let (a_branch, b_branch) = (is_branch(a), is_branch(b));
    if op == Operator::Ne && (a_branch || b_branch) {
        return a != b;
    }
    if a_branch && b_branch {
        return op == Operator::Eq && a == b;
    }
    if !compare_branches && (a_branch || b_branch) {
        return false;
    }
    op.holds(php_version_compare(a, b))
}

// ---------------------------------------------------------------------------------------------
// `MultiConstraint::create` and its one optimization.

/// `MultiConstraint::create`: nothing is `*`, one part is itself; alternatives that continue each
/// other (`[>= 1 < 2] || [>= 2 < 3]`) are merged (`[>= 1 < 3]`).
fn create(mut items: Vec<Node>, conjunctive: bool) -> Node {
    if items.len() <= 1 {
        return items.pop().unwrap_or(Node::All);
    }
    if !conjunctive {
        items = merge_contiguous(items);
        if items.len() == 1 {
            return items.remove(0);
        }
    }
    Node::Multi { items, conjunctive }
}

/// `MultiConstraint::optimizeConstraints` for a disjunction (unchanged if nothing merges).
fn merge_contiguous(items: Vec<Node>) -> Vec<Node> {
    let mut items = items.into_iter();
    let Some(mut left) = items.next() else {
        return Vec::new();
    };
    let mut merged = Vec::new();
    for right in items {
        match join_ranges(&left, &right) {
            Some(joined) => left = joined,
            None => merged.push(std::mem::replace(&mut left, right)),
        }
    }
    merged.push(left);
    merged
}

/// Composer compares the `__toString` forms: `[>= a < b]` and `[>= b < c]` give `[>= a < c]`.
fn join_ranges(left: &Node, right: &Node) -> Option<Node> {
    let (Node::Multi { items: l, conjunctive: true }, Node::Multi { items: r, conjunctive: true }) = (left, right)
    else {
        return None;
    };
    let [l0, l1] = l.as_slice() else { return None };
    let [r0, r1] = r.as_slice() else { return None };
    let (l0s, l1s, r0s, r1s) = (l0.to_string(), l1.to_string(), r0.to_string(), r1.to_string());
    let contiguous = l0s.starts_with(">=")
        && l1s.starts_with('<')
        && r0s.starts_with(">=")
        && r1s.starts_with('<')
        && l1s.get(2..).unwrap_or("") == r0s.get(3..).unwrap_or("");
    contiguous.then(|| Node::conjunction(vec![l0.clone(), r1.clone()]))
}

// ---------------------------------------------------------------------------------------------
// Parsing: the patterns of `VersionParser`, translated from PCRE.

/// PCRE's `\s` without the `u` flag (PCRE2 includes the vertical tab).
const WS: &str = r"\t\n\x0B\x0C\r ";
/// PCRE's `$` without the `D` modifier: the end, or just before a final newline.
const END: &str = r"\n?\z";
/// `VersionParser::$modifierRegex` (its possessive `*+` cannot change a match here).
const MODIFIER: &str = r"[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?[0-9]+)*)?)?([.-]?dev)?";

/// Groups: 1-4 numbers, 5 stability, 6 its number, 7 `dev`, 8 `x-dev` (as `$versionRegex`).
fn version_regex() -> String {
    format!(r"v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:\.([0-9]+))?(?:{MODIFIER}|\.([xX*][.-]?dev))(?:\+[^{WS}]+)?")
}

/// Compiles a PCRE-without-`u` pattern: bytes, ASCII classes and ASCII-only case folding.
fn pcre(pattern: &str) -> Regex {
    Regex::new(&format!("(?-u){pattern}")).expect("constraint patterns are valid")
}

static OR_SPLIT: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"[{WS}]*\|\|?[{WS}]*")));
static ALIAS: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"^([^,{WS}]+) +as +([^,{WS}]+){END}")));
static STABILITY_FLAG: LazyLock<Regex> =
    LazyLock::new(|| pcre(&format!(r"(?i)^([^,{WS}]*?)@(stable|RC|beta|alpha|dev){END}")));
static REFERENCE: LazyLock<Regex> =
    LazyLock::new(|| pcre(&format!(r"(?i)^(dev-[^,{WS}@]+?|[^,{WS}@]+?\.x-dev)#.+{END}")));
static ANY: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"(?i)^(v)?[xX*](\.[xX*])*{END}")));
static TILDE: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"(?i)^~>?{}{END}", version_regex())));
static CARET: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"(?i)^\^{}{END}", version_regex())));
static X_RANGE: LazyLock<Regex> =
    LazyLock::new(|| pcre(&format!(r"^v?([0-9]+)(?:\.([0-9]+))?(?:\.([0-9]+))?(?:\.[xX*])+{END}")));
/// Groups: 1 from (2-9 as in [`version_regex`]), 10 to (11-18).
static HYPHEN: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"(?i)^({v}) +- +({v}){END}", v = version_regex())));
static BASIC: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"^(<>|!=|>=?|<=?|==?)?[{WS}]*(.*)")));
static BRANCH_LIKE: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"^[0-9a-zA-Z./-]+{END}")));
static MODIFIER_SUFFIX: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"-{MODIFIER}{END}")));
static STABILITY_SUFFIX: LazyLock<Regex> = LazyLock::new(|| pcre(&format!(r"(?i){MODIFIER}(?:\+.*)?{END}")));
static REFERENCE_SUFFIX: LazyLock<Regex> = LazyLock::new(|| pcre(r"#.+(\n?)\z"));

/// A capture group as text ("" when it did not take part). Every group starts and ends next to an
/// ASCII byte or an end of the text, so it is whole UTF-8.
fn group<'t>(captures: &Captures<'t>, index: usize) -> &'t str {
    captures.get(index).and_then(|m| std::str::from_utf8(m.as_bytes()).ok()).unwrap_or("")
}

/// PHP's `empty()` on a capture group: unset, `""` and `"0"` are empty.
fn php_empty(captures: &Captures<'_>, index: usize) -> bool {
    matches!(group(captures, index), "" | "0")
}

/// PHP's `trim()` with its default characters (not `\f`, unlike Rust's `trim`).
fn php_trim(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r', '\0', '\x0B'])
}

/// `preg_split` keeping empty pieces; the separators are ASCII, so the pieces are whole UTF-8.
fn split_by<'t>(separator: &Regex, text: &'t str) -> Vec<&'t str> {
    let mut pieces = Vec::new();
    let mut last = 0;
    for found in separator.find_iter(text.as_bytes()) {
        pieces.push(&text[last..found.start()]);
        last = found.end();
    }
    pieces.push(&text[last..]);
    pieces
}

/// `preg_split('{(?<!^|as|[=>< ,]) *(?<!-)[, ](?!-) *(?!,|as|$)}', …)`, searched as PCRE does.
fn split_and(text: &str) -> Vec<&str> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut last = 0;
    while let Some((start, end)) = (last..bytes.len()).find_map(|s| and_separator_at(bytes, s).map(|e| (s, e))) {
        pieces.push(&text[last..start]);
        last = end;
    }
    pieces.push(&text[last..]);
    pieces
}

/// The end of the and-separator starting at `start`, trying the space runs longest first.
fn and_separator_at(bytes: &[u8], start: usize) -> Option<usize> {
    if start == 0 || bytes[..start].ends_with(b"as") || b"=>< ,".contains(&bytes[start - 1]) {
        return None;
    }
    let spaces = |from: usize| bytes[from..].iter().take_while(|&&b| b == b' ').count();
    for separator in (start..=start + spaces(start)).rev() {
        if bytes[separator - 1] == b'-'
            || !matches!(bytes.get(separator), Some(b',' | b' '))
            || bytes.get(separator + 1) == Some(&b'-')
        {
            continue;
        }
        let after = separator + 1;
        for end in (after..=after + spaces(after)).rev() {
            let rest = &bytes[end..];
            // PCRE's `$` (the trim and the or-split leave no final newline here, but it is the pattern).
            let at_end = rest.is_empty() || rest == b"\n";
            if rest.first() != Some(&b',') && !rest.starts_with(b"as") && !at_end {
                return Some(end);
            }
        }
    }
    None
}

/// `VersionParser::normalize`: the alias stripping it starts with, then [`composer_normalize`].
/// The error is Composer's message.
fn normalize(version: &str) -> Result<String, String> {
    let version = php_trim(version);
    let unaliased = ALIAS.captures(version.as_bytes()).map_or(version, |c| group(&c, 1));
    composer_normalize(unaliased).map_err(|_| format!("Invalid version string \"{version}\""))
}

/// `VersionParser::parseConstraint`: one single constraint, which may stand for two bounds.
fn parse_single(text: &str) -> Result<Vec<Node>, String> {
    let mut constraint = text;
    if let Some(c) = ALIAS.captures(constraint.as_bytes()) {
        constraint = group(&c, 1);
    }
    let mut stability_modifier = None;
    if let Some(c) = STABILITY_FLAG.captures(constraint.as_bytes()) {
        constraint = if group(&c, 1).is_empty() { "*" } else { group(&c, 1) };
        // Case-sensitive in Composer: `@STABLE` is kept as a modifier.
        stability_modifier = Some(group(&c, 2)).filter(|flag| *flag != "stable");
    }
    if let Some(c) = REFERENCE.captures(constraint.as_bytes()) {
        constraint = group(&c, 1);
    }
    if let Some(c) = ANY.captures(constraint.as_bytes()) {
        if php_empty(&c, 1) && php_empty(&c, 2) {
            return Ok(vec![Node::All]);
        }
        return Ok(vec![Node::single(Operator::Ge, "0.0.0.0-dev")]);
    }
    if let Some(c) = TILDE.captures(constraint.as_bytes()) {
        return tilde_range(constraint, &c);
    }
    if let Some(c) = CARET.captures(constraint.as_bytes()) {
        return caret_range(constraint, &c);
    }
    if let Some(c) = X_RANGE.captures(constraint.as_bytes()) {
        return Ok(x_range(&c));
    }
    if let Some(c) = HYPHEN.captures(constraint.as_bytes()) {
        return hyphen_range(&c);
    }
    comparison(constraint, stability_modifier)
}

/// Whether a capture group took part with text (`isset($m[$i]) && '' !== $m[$i]`).
fn has(captures: &Captures<'_>, index: usize) -> bool {
    !group(captures, index).is_empty()
}

/// The `-dev` that an unsuffixed `~`/`^` lower bound gets, to admit the bound's pre-releases.
fn unstable_suffix(c: &Captures<'_>, groups: [usize; 3]) -> &'static str {
    if groups.iter().all(|&i| php_empty(c, i)) { "-dev" } else { "" }
}

/// `~1.2` is `>=1.2 <2.0`, `~1.2.3` is `>=1.2.3 <1.3`; `~2.x-dev` counts its wildcard.
fn tilde_range(constraint: &str, c: &Captures<'_>) -> Result<Vec<Node>, String> {
    if constraint.starts_with("~>") {
        return Err(format!(
            "Could not parse version constraint {constraint}: Invalid operator \"~>\", you probably meant to use the \"~\" operator"
        ));
    }
    let mut position = (2..=4).rev().find(|&i| has(c, i)).unwrap_or(1);
    if !php_empty(c, 8) {
        position += 1;
    }
    let suffix = unstable_suffix(c, [5, 7, 8]);
    let low = normalize(&format!("{constraint}{suffix}")[1..])?;
    let high = manipulate(&numbers(c, 1), (position - 1).max(1), true);
    Ok(vec![Node::single(Operator::Ge, low), Node::single(Operator::Lt, format!("{high}-dev"))])
}

/// `^1.2.3` is `>=1.2.3 <2.0`; `^0.2.3` is `>=0.2.3 <0.3`; `^0.0.3` is `>=0.0.3 <0.0.4`.
fn caret_range(constraint: &str, c: &Captures<'_>) -> Result<Vec<Node>, String> {
    let position = if group(c, 1) != "0" || !has(c, 2) {
        1
    } else if group(c, 2) != "0" || !has(c, 3) {
        2
    } else {
        3
    };
    let suffix = unstable_suffix(c, [5, 7, 8]);
    let low = normalize(&format!("{constraint}{suffix}")[1..])?;
    let high = manipulate(&numbers(c, 1), position, true);
    Ok(vec![Node::single(Operator::Ge, low), Node::single(Operator::Lt, format!("{high}-dev"))])
}

/// `1.2.*` is `>=1.2.0.0-dev <1.3.0.0-dev`; `0.*` has no lower bound.
fn x_range(c: &Captures<'_>) -> Vec<Node> {
    let position = if has(c, 3) {
        3
    } else if has(c, 2) {
        2
    } else {
        1
    };
    let parts = numbers(c, 1);
    let low = format!("{}-dev", manipulate(&parts, position, false));
    let high = Node::single(Operator::Lt, format!("{}-dev", manipulate(&parts, position, true)));
    if low == "0.0.0.0-dev" { vec![high] } else { vec![Node::single(Operator::Ge, low), high] }
}

/// `1.0 - 2.0` is `>=1.0.0.0-dev <2.1.0.0-dev`: a partial upper version admits all it starts.
fn hyphen_range(c: &Captures<'_>) -> Result<Vec<Node>, String> {
    let low_suffix = unstable_suffix(c, [6, 8, 9]);
    let low = normalize(group(c, 1))?;
    let lower = Node::single(Operator::Ge, format!("{low}{low_suffix}"));
    // Composer's `$empty` here does not count "0" as empty.
    let unset = |i: usize| group(c, i).is_empty();
    let inclusive = (!unset(12) && !unset(13)) || !php_empty(c, 15) || !php_empty(c, 17) || !php_empty(c, 18);
    let high = normalize(group(c, 10))?;
    let upper = if inclusive {
        Node::single(Operator::Le, high)
    } else {
        let high = manipulate(&numbers(c, 11), if unset(12) { 1 } else { 2 }, true);
        Node::single(Operator::Lt, format!("{high}-dev"))
    };
    Ok(vec![lower, upper])
}

/// `>=1.0`, `<2.0@dev`, `dev-main`, `1.0.0`: an operator (default `=`) and a version.
fn comparison(constraint: &str, stability_modifier: Option<&str>) -> Result<Vec<Node>, String> {
    let failure = |e: String| format!("Could not parse version constraint {constraint}: {e}");
    let Some(c) = BASIC.captures(constraint.as_bytes()) else {
        return Err(format!("Could not parse version constraint {constraint}"));
    };
    let (op_text, rest) = (group(&c, 1), group(&c, 2));
    let mut version = match normalize(rest) {
        Ok(version) => version,
        // Recover `foobar-dev`, which should have been `dev-foobar`.
        Err(e) if rest.ends_with("-dev") && BRANCH_LIKE.is_match(rest.as_bytes()) => {
            normalize(&format!("dev-{}", &rest[..rest.len() - 4])).map_err(|_| failure(e))?
        }
        Err(e) => return Err(failure(e)),
    };
    let op_text = if op_text.is_empty() { "=" } else { op_text };
    let modifier = stability_modifier.filter(|m| !m.is_empty() && op_text != "==" && op_text != "=");
    match modifier {
        Some(modifier) if stability_of(&version) == Stability::Stable => version = format!("{version}-{modifier}"),
        _ if op_text == "<" || op_text == ">=" => {
            let suffixed = MODIFIER_SUFFIX.is_match(rest.to_ascii_lowercase().as_bytes());
            if !suffixed && !rest.starts_with("dev-") {
                version.push_str("-dev");
            }
        }
        _ => {}
    }
    let op = Operator::from_composer(op_text).unwrap_or(Operator::Eq);
    Ok(vec![Node::single(op, version)])
}

/// The four numbers of a version pattern whose first number is group `first`.
fn numbers<'t>(c: &Captures<'t>, first: usize) -> [&'t str; 4] {
    [group(c, first), group(c, first + 1), group(c, first + 2), group(c, first + 3)]
}

/// `VersionParser::manipulateVersionString`: the numbers after `position` become `0`, and the one
/// at `position` is incremented if asked (PHP arithmetic on the numeric string).
fn manipulate(parts: &[&str; 4], position: usize, increment: bool) -> String {
    let part = |index: usize| -> String {
        match (index + 1).cmp(&position) {
            Ordering::Greater => "0".to_owned(),
            Ordering::Equal if increment => php_increment(parts[index]),
            _ => parts[index].to_owned(),
        }
    };
    format!("{}.{}.{}.{}", part(0), part(1), part(2), part(3))
}

/// PHP's `$digits + 1`: an integer while it fits `PHP_INT_MAX`, else a float printed with PHP's
/// default `precision` of 14 (`1.0E+20`).
fn php_increment(digits: &str) -> String {
    if let Some(next) = digits.parse::<i64>().ok().and_then(|n| n.checked_add(1)) {
        return next.to_string();
    }
    if digits.is_empty() {
        return "1".to_owned();
    }
    let value = digits.parse::<f64>().unwrap_or(f64::INFINITY) + 1.0;
    if value.is_infinite() {
        return "INF".to_owned();
    }
    // Past 9.2E+18 PHP always uses the exponent form: 14 significant digits, no trailing zeros.
    let formatted = format!("{value:.13e}");
    let (mantissa, exponent) = formatted.split_once('e').unwrap_or((&formatted, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    let point = if mantissa.contains('.') { "" } else { ".0" };
    format!("{mantissa}{point}E+{exponent}")
}

/// `VersionParser::parseStability`: `dev-` branches and `-dev` suffixes are dev; `alpha`/`a`,
/// `beta`/`b` and `RC` name theirs; `patch`/`pl`/`p` and plain versions are stable.
pub fn stability_of(version: &str) -> Stability {
    let version = REFERENCE_SUFFIX.replace(version.as_bytes(), &b"${1}"[..]);
    if version.starts_with(b"dev-") || version.ends_with(b"-dev") {
        return Stability::Dev;
    }
    let lower = version.to_ascii_lowercase();
    let Some(c) = STABILITY_SUFFIX.captures(&lower) else {
        return Stability::Stable;
    };
    if !php_empty(&c, 3) {
        return Stability::Dev;
    }
    match group(&c, 1) {
        "beta" | "b" => Stability::Beta,
        "alpha" | "a" => Stability::Alpha,
        "rc" => Stability::Rc,
        _ => Stability::Stable,
    }
}

// ---------------------------------------------------------------------------------------------
// PHP's `version_compare` (ext/standard/versioning.c), byte for byte.

/// PHP's `version_compare($a, $b)`: both are canonicalized (`-`, `_`, `+` become `.`, and a `.` is
/// put between letters and digits), then compared part by part, numbers as numbers and words by
/// `anything else < dev < alpha = a < beta = b < RC = rc < # (a number) < pl = p`.
pub fn php_version_compare(a: &str, b: &str) -> Ordering {
    // PHP passes C strings: a NUL ends them.
    let until_nul = |s: &str| -> Vec<u8> { s.bytes().take_while(|&b| b != 0).collect() };
    compare_c(&until_nul(a), &until_nul(b))
}

/// `php_version_compare` on C strings (its recursion passes the rest of a canonical string).
fn compare_c(orig1: &[u8], orig2: &[u8]) -> Ordering {
    if orig1.is_empty() || orig2.is_empty() {
        return (!orig1.is_empty()).cmp(&!orig2.is_empty());
    }
    let canonical = |v: &[u8]| if v[0] == b'#' { v.to_vec() } else { canonicalize(v) };
    let (ver1, ver2) = (canonical(orig1), canonical(orig2));
    let dot = |v: &[u8], from: usize| v[from..].iter().position(|&b| b == b'.').map(|i| from + i);
    let (mut p1, mut p2) = (0, 0);
    let (mut n1, mut n2) = (Some(0), Some(0));
    let mut compare = Ordering::Equal;
    while p1 < ver1.len() && p2 < ver2.len() && n1.is_some() && n2.is_some() {
        n1 = dot(&ver1, p1);
        n2 = dot(&ver2, p2);
        compare = compare_parts(&ver1[p1..n1.unwrap_or(ver1.len())], &ver2[p2..n2.unwrap_or(ver2.len())]);
        if compare != Ordering::Equal {
            break;
        }
        p1 = n1.map_or(p1, |n| n + 1);
        p2 = n2.map_or(p2, |n| n + 1);
    }
    if compare == Ordering::Equal {
        let digit_at = |v: &[u8], p: usize| v.get(p).is_some_and(u8::is_ascii_digit);
        if n1.is_some() {
            compare = if digit_at(&ver1, p1) { Ordering::Greater } else { compare_c(&ver1[p1..], b"#N#") };
        } else if n2.is_some() {
            compare = if digit_at(&ver2, p2) { Ordering::Less } else { compare_c(b"#N#", &ver2[p2..]) };
        }
    }
    compare
}

/// One part against another: numbers numerically, words by their special form, a number as `#`.
fn compare_parts(part1: &[u8], part2: &[u8]) -> Ordering {
    let digit = |p: &[u8]| p.first().is_some_and(u8::is_ascii_digit);
    match (digit(part1), digit(part2)) {
        (true, true) => strtol(part1).cmp(&strtol(part2)),
        (false, false) => special_form(part1).cmp(&special_form(part2)),
        (true, false) => special_form(b"#N#").cmp(&special_form(part2)),
        (false, true) => special_form(part1).cmp(&special_form(b"#N#")),
    }
}

/// C's `strtol(p, NULL, 10)` on a part that starts with a digit (saturating at `LONG_MAX`).
fn strtol(part: &[u8]) -> i64 {
    part.iter()
        .take_while(|b| b.is_ascii_digit())
        .fold(0i64, |n, &d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')))
}

/// `compare_special_version_forms`: the order of the first form that the part starts with.
fn special_form(part: &[u8]) -> i8 {
    const FORMS: [(&[u8], i8); 10] = [
        (b"dev", 0),
        (b"alpha", 1),
        (b"a", 1),
        (b"beta", 2),
        (b"b", 2),
        (b"RC", 3),
        (b"rc", 3),
        (b"#", 4),
        (b"pl", 5),
        (b"p", 5),
    ];
    FORMS.iter().find(|(name, _)| part.starts_with(name)).map_or(-1, |&(_, order)| order)
}

/// `php_canonicalize_version`: `s/[-_+]/./g`, a `.` at each digit/non-digit change, other
/// non-alphanumerics to `.`, no doubled `.`; the first byte is kept as it is.
fn canonicalize(version: &[u8]) -> Vec<u8> {
    let is_digit = |b: u8| b.is_ascii_digit();
    let is_non_digit = |b: u8| !b.is_ascii_digit() && b != b'.';
    let mut out = Vec::with_capacity(version.len() * 2);
    let mut previous = version[0];
    out.push(previous);
    for &byte in &version[1..] {
        let last_out = out.last().copied().unwrap_or(0);
        let dot = |out: &mut Vec<u8>| {
            if last_out != b'.' {
                out.push(b'.');
            }
        };
        if matches!(byte, b'-' | b'_' | b'+') {
            dot(&mut out);
        } else if (is_non_digit(previous) && is_digit(byte)) || (is_digit(previous) && is_non_digit(byte)) {
            dot(&mut out);
            out.push(byte);
        } else if !byte.is_ascii_alphanumeric() {
            dot(&mut out);
        } else {
            out.push(byte);
        }
        previous = byte;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        match Constraint::parse(text) {
            Ok(constraint) => constraint.to_string(),
            Err(e) => panic!("{text:?} should parse: {e}"),
        }
    }

    fn assert_parses(table: &[(&str, &str)]) {
        for &(input, expected) in table {
            assert_eq!(parsed(input), expected, "parseConstraints({input:?})");
        }
    }

    /// `new MultiConstraint([$min, $max])`, or `$max` alone when `$min` is null, as strings.
    fn assert_ranges(table: &[(&str, Option<&str>, &str)]) {
        for &(input, min, max) in table {
            let expected = min.map_or(max.to_owned(), |min| format!("[{min} {max}]"));
            assert_eq!(parsed(input), expected, "parseConstraints({input:?})");
        }
    }

    // composer/semver tests/VersionParserTest.php, simpleConstraints.
    const SIMPLE: &[(&str, &str)] = &[
        ("*", "*"),
        ("v*", ">= 0.0.0.0-dev"),
        ("*.*", ">= 0.0.0.0-dev"),
        ("v*.*", ">= 0.0.0.0-dev"),
        ("*.x.*", ">= 0.0.0.0-dev"),
        ("x.X.x.*", ">= 0.0.0.0-dev"),
        ("<>1.0.0", "!= 1.0.0.0"),
        ("!=1.0.0", "!= 1.0.0.0"),
        (">1.0.0", "> 1.0.0.0"),
        ("<1.2.3.4", "< 1.2.3.4-dev"),
        ("<=1.2.3", "<= 1.2.3.0"),
        (">=1.2.3", ">= 1.2.3.0-dev"),
        ("=1.2.3", "== 1.2.3.0"),
        ("==1.2.3", "== 1.2.3.0"),
        ("1.2.3", "== 1.2.3.0"),
        ("=1.0", "== 1.0.0.0"),
        ("1.2.3b5", "== 1.2.3.0-beta5"),
        ("1.2.3a1", "== 1.2.3.0-alpha1"),
        ("1.2.3p1234", "== 1.2.3.0-patch1234"),
        ("1.2.3pl1234", "== 1.2.3.0-patch1234"),
        (">= 1.2.3", ">= 1.2.3.0-dev"),
        ("< 1.2.3", "< 1.2.3.0-dev"),
        ("> 1.2.3", "> 1.2.3.0"),
        (">=dev-master", ">= dev-master"),
        ("dev-master", "== dev-master"),
        ("dev-feature-a", "== dev-feature-a"),
        ("dev-some-fix", "== dev-some-fix"),
        ("dev-CAPS", "== dev-CAPS"),
        ("dev-master as 1.0.0", "== dev-master"),
        ("<1.2.3.4-stable", "< 1.2.3.4"),
        (">=1.2.3.4-stable", ">= 1.2.3.4"),
    ];

    // composer/semver tests/VersionParserTest.php, wildcardConstraints.
    const WILDCARD: &[(&str, Option<&str>, &str)] = &[
        ("v2.*", Some(">= 2.0.0.0-dev"), "< 3.0.0.0-dev"),
        ("2.*.*", Some(">= 2.0.0.0-dev"), "< 3.0.0.0-dev"),
        ("20.*", Some(">= 20.0.0.0-dev"), "< 21.0.0.0-dev"),
        ("20.*.*", Some(">= 20.0.0.0-dev"), "< 21.0.0.0-dev"),
        ("2.0.*", Some(">= 2.0.0.0-dev"), "< 2.1.0.0-dev"),
        ("2.x", Some(">= 2.0.0.0-dev"), "< 3.0.0.0-dev"),
        ("2.x.x", Some(">= 2.0.0.0-dev"), "< 3.0.0.0-dev"),
        ("2.2.x", Some(">= 2.2.0.0-dev"), "< 2.3.0.0-dev"),
        ("2.10.X", Some(">= 2.10.0.0-dev"), "< 2.11.0.0-dev"),
        ("2.1.3.*", Some(">= 2.1.3.0-dev"), "< 2.1.4.0-dev"),
        ("0.*", None, "< 1.0.0.0-dev"),
        ("0.*.*", None, "< 1.0.0.0-dev"),
        ("0.x", None, "< 1.0.0.0-dev"),
        ("0.x.x", None, "< 1.0.0.0-dev"),
    ];

    // composer/semver tests/VersionParserTest.php, tildeConstraints.
    const TILDE_CASES: &[(&str, Option<&str>, &str)] = &[
        ("~v1", Some(">= 1.0.0.0-dev"), "< 2.0.0.0-dev"),
        ("~1.0", Some(">= 1.0.0.0-dev"), "< 2.0.0.0-dev"),
        ("~1.0.0", Some(">= 1.0.0.0-dev"), "< 1.1.0.0-dev"),
        ("~1.2", Some(">= 1.2.0.0-dev"), "< 2.0.0.0-dev"),
        ("~1.2.3", Some(">= 1.2.3.0-dev"), "< 1.3.0.0-dev"),
        ("~1.2.3.4", Some(">= 1.2.3.4-dev"), "< 1.2.4.0-dev"),
        ("~1.2-beta", Some(">= 1.2.0.0-beta"), "< 2.0.0.0-dev"),
        ("~1.2-b2", Some(">= 1.2.0.0-beta2"), "< 2.0.0.0-dev"),
        ("~1.2-BETA2", Some(">= 1.2.0.0-beta2"), "< 2.0.0.0-dev"),
        ("~1.2.2-dev", Some(">= 1.2.2.0-dev"), "< 1.3.0.0-dev"),
        ("~1.2.2-stable", Some(">= 1.2.2.0"), "< 1.3.0.0-dev"),
        ("~201903.0", Some(">= 201903.0-dev"), "< 201904.0.0.0-dev"),
        ("~201903.0-beta", Some(">= 201903.0-beta"), "< 201904.0.0.0-dev"),
        ("~201903.0-stable", Some(">= 201903.0"), "< 201904.0.0.0-dev"),
        ("~201903.205830.1-stable", Some(">= 201903.205830.1"), "< 201903.205831.0.0-dev"),
        ("~2.x-dev", Some(">= 2.9999999.9999999.9999999-dev"), "< 3.0.0.0-dev"),
        ("~2.0.x-dev", Some(">= 2.0.9999999.9999999-dev"), "< 2.1.0.0-dev"),
        ("~2.0.3.x-dev", Some(">= 2.0.3.9999999-dev"), "< 2.0.4.0-dev"),
        ("~0.x-dev", Some(">= 0.9999999.9999999.9999999-dev"), "< 1.0.0.0-dev"),
    ];

    // composer/semver tests/VersionParserTest.php, caretConstraints.
    const CARET_CASES: &[(&str, Option<&str>, &str)] = &[
        ("^v1", Some(">= 1.0.0.0-dev"), "< 2.0.0.0-dev"),
        ("^0", Some(">= 0.0.0.0-dev"), "< 1.0.0.0-dev"),
        ("^0.0", Some(">= 0.0.0.0-dev"), "< 0.1.0.0-dev"),
        ("^1.2", Some(">= 1.2.0.0-dev"), "< 2.0.0.0-dev"),
        ("^1.2.3-beta.2", Some(">= 1.2.3.0-beta2"), "< 2.0.0.0-dev"),
        ("^1.2.3.4", Some(">= 1.2.3.4-dev"), "< 2.0.0.0-dev"),
        ("^1.2.3", Some(">= 1.2.3.0-dev"), "< 2.0.0.0-dev"),
        ("^0.2.3", Some(">= 0.2.3.0-dev"), "< 0.3.0.0-dev"),
        ("^0.2", Some(">= 0.2.0.0-dev"), "< 0.3.0.0-dev"),
        ("^0.2.0", Some(">= 0.2.0.0-dev"), "< 0.3.0.0-dev"),
        ("^0.0.3", Some(">= 0.0.3.0-dev"), "< 0.0.4.0-dev"),
        ("^0.0.3-alpha", Some(">= 0.0.3.0-alpha"), "< 0.0.4.0-dev"),
        ("^0.0.3-dev", Some(">= 0.0.3.0-dev"), "< 0.0.4.0-dev"),
        ("^0.0.3-stable", Some(">= 0.0.3.0"), "< 0.0.4.0-dev"),
        ("^201903.0", Some(">= 201903.0-dev"), "< 201904.0.0.0-dev"),
        ("^201903.0-beta", Some(">= 201903.0-beta"), "< 201904.0.0.0-dev"),
        ("^201903.205830.1-stable", Some(">= 201903.205830.1"), "< 201904.0.0.0-dev"),
        ("^2.x-dev", Some(">= 2.9999999.9999999.9999999-dev"), "< 3.0.0.0-dev"),
        ("^2.0.*-dev", Some(">= 2.0.9999999.9999999-dev"), "< 3.0.0.0-dev"),
        ("^2.0.x-dev", Some(">= 2.0.9999999.9999999-dev"), "< 3.0.0.0-dev"),
        ("^2.0.3.x-dev", Some(">= 2.0.3.9999999-dev"), "< 3.0.0.0-dev"),
        ("^0.x-dev", Some(">= 0.9999999.9999999.9999999-dev"), "< 1.0.0.0-dev"),
    ];

    // composer/semver tests/VersionParserTest.php, hyphenConstraints.
    const HYPHEN_CASES: &[(&str, Option<&str>, &str)] = &[
        ("v1 - v2", Some(">= 1.0.0.0-dev"), "< 3.0.0.0-dev"),
        ("1.2.3 - 2.3.4.5", Some(">= 1.2.3.0-dev"), "<= 2.3.4.5"),
        ("1.2-beta - 2.3", Some(">= 1.2.0.0-beta"), "< 2.4.0.0-dev"),
        ("1.2-beta - 2.3-dev", Some(">= 1.2.0.0-beta"), "<= 2.3.0.0-dev"),
        ("1.2-RC - 2.3.1", Some(">= 1.2.0.0-RC"), "<= 2.3.1.0"),
        ("1.2.3-alpha - 2.3-RC", Some(">= 1.2.3.0-alpha"), "<= 2.3.0.0-RC"),
        ("1 - 2.0", Some(">= 1.0.0.0-dev"), "< 2.1.0.0-dev"),
        ("1 - 2.1", Some(">= 1.0.0.0-dev"), "< 2.2.0.0-dev"),
        ("1.2 - 2.1.0", Some(">= 1.2.0.0-dev"), "<= 2.1.0.0"),
        ("1.3 - 2.1.3", Some(">= 1.3.0.0-dev"), "<= 2.1.3.0"),
        ("2.0.3.x-dev - 3.0.3.x-dev", Some(">= 2.0.3.9999999-dev"), "<= 3.0.3.9999999-dev"),
        ("2.0.x-dev - 3.0.x-dev", Some(">= 2.0.9999999.9999999-dev"), "<= 3.0.9999999.9999999-dev"),
        ("2.x-dev - 3.x-dev", Some(">= 2.9999999.9999999.9999999-dev"), "<= 3.9999999.9999999.9999999-dev"),
        ("0.x-dev - 1.x-dev", Some(">= 0.9999999.9999999.9999999-dev"), "<= 1.9999999.9999999.9999999-dev"),
    ];

    // composer/semver tests/VersionParserTest.php, constraintProvider.
    const CONSTRAINT_PROVIDER: &[(&str, &str)] = &[
        ("3.x-dev", "== 3.9999999.9999999.9999999-dev"),
        ("3-dev", "== 3.0.0.0-dev"),
        ("dev-3.x", "== dev-3.x"),
        ("xsd2php-dev", "== dev-xsd2php"),
        ("3.next-dev", "== dev-3.next"),
        ("foobar-dev", "== dev-foobar"),
        ("dev-xsd2php", "== dev-xsd2php"),
        ("dev-3.next", "== dev-3.next"),
        ("dev-foobar", "== dev-foobar"),
        ("dev-1.0.0-dev<1.0.5-dev", "== dev-1.0.0-dev<1.0.5-dev"),
        ("dev-1.0.0-dev<1.0.5", "== dev-1.0.0-dev<1.0.5"),
        ("foobar-dev as 2.1.0", "== dev-foobar"),
        ("foobar-dev as 2.1.0 || 3.5", "[== dev-foobar || == 3.5.0.0]"),
        ("foobar-dev as 2.1.0 || 3.5 as 1.5", "[== dev-foobar || == 3.5.0.0]"),
        ("2.1.0 - 2.3-dev", "[>= 2.1.0.0-dev <= 2.3.0.0-dev]"),
        ("1.0 - 2.0.x-dev", "[>= 1.0.0.0-dev <= 2.0.9999999.9999999-dev]"),
        ("^1.", "[>= 1.0.0.0-dev < 2.0.0.0-dev]"),
        ("~1.", "[>= 1.0.0.0-dev < 2.0.0.0-dev]"),
        ("1.2.", "== 1.2.0.0"),
        ("1.2..dev", "== 1.2.0.0-dev"),
        ("1.2-.dev", "== 1.2.0.0-dev"),
        ("1.2_-dev", "== 1.2.0.0-dev"),
        ("~2.5.9|~2.6,>=2.6.2", "[[>= 2.5.9.0-dev < 2.6.0.0-dev] || [>= 2.6.0.0-dev < 3.0.0.0-dev >= 2.6.2.0-dev]]"),
    ];

    // composer/semver tests/VersionParserTest.php: multiConstraintProvider, multiConstraintProvider2,
    // testParseConstraintsIgnoresStabilityFlag, testParseConstraintsIgnoresReferenceOnDevVersion,
    // testParseConstraintsMultiWithStabilitySuffix and testParseConstraintsMultiWithStabilities*.
    const MULTI: &[(&str, &str)] = &[
        (">2.0,<=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0 <=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0  <=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0, <=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0 ,<=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0 , <=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0   , <=3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        ("> 2.0   <=  3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        ("> 2.0  ,  <=  3.0", "[> 2.0.0.0 <= 3.0.0.0]"),
        ("  > 2.0  ,  <=  3.0 ", "[> 2.0.0.0 <= 3.0.0.0]"),
        (">2.0,<2.0.5 | >2.0.6", "[[> 2.0.0.0 < 2.0.5.0-dev] || > 2.0.6.0]"),
        (">2.0,<2.0.5 || >2.0.6", "[[> 2.0.0.0 < 2.0.5.0-dev] || > 2.0.6.0]"),
        ("> 2.0 , <2.0.5 | >  2.0.6", "[[> 2.0.0.0 < 2.0.5.0-dev] || > 2.0.6.0]"),
        ("1.0@dev", "== 1.0.0.0"),
        (">=1.0@beta", ">= 1.0.0.0-beta"),
        ("dev-load-varnish-only-when-used as ^2.0@dev", "== dev-load-varnish-only-when-used"),
        ("dev-load-varnish-only-when-used@dev as ^2.0@dev", "== dev-load-varnish-only-when-used"),
        ("1.0.x-dev#abcd123", "== 1.0.9999999.9999999-dev"),
        ("1.0.x-dev#trunk/@123", "== 1.0.9999999.9999999-dev"),
        (">=1.1.0-alpha4,<1.2.x-dev", "[>= 1.1.0.0-alpha4 < 1.2.9999999.9999999-dev]"),
        (">=1.1.0-alpha4,<1.2-beta2", "[>= 1.1.0.0-alpha4 < 1.2.0.0-beta2]"),
        (">2.0@stable,<=3.0@dev", "[> 2.0.0.0 <= 3.0.0.0-dev]"),
        (">2.0@stable,@dev", "[> 2.0.0.0 *]"),
        (">2.0@stable || 0@dev", "[> 2.0.0.0 || == 0.0.0.0]"),
    ];

    // composer/semver tests/Constraint/MultiConstraintTest.php, multiConstraintOptimizations (the
    // expected MultiConstraint trees written as their __toString).
    const OPTIMIZATIONS: &[(&str, &str)] = &[
        ("^2.5 || ^3.0", "[>= 2.5.0.0-dev < 4.0.0.0-dev]"),
        ("^2.5 || ^3.0 || ^4.0", "[>= 2.5.0.0-dev < 5.0.0.0-dev]"),
        (
            "~2.5.9 || ~2.6, >=2.6.2",
            "[[>= 2.5.9.0-dev < 2.6.0.0-dev] || [>= 2.6.0.0-dev < 3.0.0.0-dev >= 2.6.2.0-dev]]",
        ),
        (
            "^1.0 || ^2.0 !=2.0.1 || ^3.0 || ^4.0",
            "[[>= 1.0.0.0-dev < 2.0.0.0-dev] || [>= 2.0.0.0-dev < 3.0.0.0-dev != 2.0.1.0] || [>= 3.0.0.0-dev < 5.0.0.0-dev]]",
        ),
        (
            "^1.0 != 1.0.1 || ^2.0 !=2.0.1 || ^3.0 || ^4.0 != 4.0.1",
            "[[>= 1.0.0.0-dev < 2.0.0.0-dev != 1.0.1.0] || [>= 2.0.0.0-dev < 3.0.0.0-dev != 2.0.1.0] \
             || [>= 3.0.0.0-dev < 4.0.0.0-dev] || [>= 4.0.0.0-dev < 5.0.0.0-dev != 4.0.1.0]]",
        ),
        ("~0.1 || ~1.0 !=1.0.1", "[[>= 0.1.0.0-dev < 1.0.0.0-dev] || [>= 1.0.0.0-dev < 2.0.0.0-dev != 1.0.1.0]]"),
        ("^0.2 || ^1.0", "[[>= 0.2.0.0-dev < 0.3.0.0-dev] || [>= 1.0.0.0-dev < 2.0.0.0-dev]]"),
        ("^0.1 || ^1.0 || ^2.0", "[[>= 0.1.0.0-dev < 0.2.0.0-dev] || [>= 1.0.0.0-dev < 3.0.0.0-dev]]"),
        ("^1.0 || 2.1 || ^3.0", "[[>= 1.0.0.0-dev < 2.0.0.0-dev] || == 2.1.0.0 || [>= 3.0.0.0-dev < 4.0.0.0-dev]]"),
    ];

    // composer/semver tests/VersionParserTest.php: failingConstraints, then
    // testParseConstraintsFailsOnBadReference and testParseConstraintsNudgesRubyDevs….
    const FAILING: &[&str] = &[
        "",
        "1.0.0-meh",
        ">2.0,,<=3.0",
        ">2.0 ,, <=3.0",
        ">2.0 ||| <=3.0",
        ",^1@dev || ^4@dev",
        ",^1@dev",
        "|| ^1@dev",
        "^1@dev ||",
        "^1@dev ,",
        "^2.0.*",
        "^2.0.x",
        "^2.0.x-beta",
        "^2.*",
        "^2.x",
        "^2.x-beta",
        "^2.1.2.*",
        "^2.1.2.x",
        "^2.1.2.x-beta",
        "~2.0.*",
        "~2.0.x",
        "~2.0.x-beta",
        "~2.*",
        "~2.x",
        "~2.x-beta",
        "~2.1.2.*",
        "~2.1.2.x",
        "~2.1.2.x-beta",
        "1.x - 2.*",
        "2.x.x.x-dev - 3.x.x.x-dev",
        "^1.*-beta-dev",
        "^1. *-dev",
        "~1.*-beta-dev",
        "1.0.0-dev<1.0.5-dev",
        "*-dev",
        "^",
        "^8 || ^",
        "~",
        "~1 ~",
        "1.0#abcd123",
        "1.0#trunk/@123",
        "~>1.2",
    ];

    // Edge cases checked against composer/semver 3.3.2 on PHP 8.2 (Debian's php-composer-semver),
    // run on this machine: PCRE's `$` before a final newline, `.` stopping at a newline, PHP
    // arithmetic past PHP_INT_MAX, PHP's falsy "0", case-sensitive `@stable`, the `-dev` that `<`
    // and `>=` add when the lower-cased version has no `-modifier`, aliases and spacing.
    const ORACLE_PARSE: &[(&str, &str)] = &[
        ("1.x\n", "[>= 1.0.0.0-dev < 2.0.0.0-dev]"),
        ("1.0\n 2.0", "[== 1.0.0.0 == 2.0.0.0]"),
        (">1.0\n<2.0", "> 1.0.0.0"),
        ("1.0 - 2.0\n", "[>= 1.0.0.0-dev < 2.1.0.0-dev]"),
        ("1.0@dev\n", "== 1.0.0.0"),
        ("99999999999999999999.x", "[>= 99999999999999999999.0.0.0-dev < 1.0E+20.0.0.0-dev]"),
        ("9223372036854775807.x", "[>= 9223372036854775807.0.0.0-dev < 9.2233720368548E+18.0.0.0-dev]"),
        ("9223372036854775806.*", "[>= 9223372036854775806.0.0.0-dev < 9223372036854775807.0.0.0-dev]"),
        ("007.x", "[>= 007.0.0.0-dev < 8.0.0.0-dev]"),
        ("~007.1", "[>= 007.1.0.0-dev < 8.0.0.0-dev]"),
        ("01.02.x", "[>= 01.02.0.0-dev < 01.3.0.0-dev]"),
        ("00", "== 00.0.0.0"),
        ("\x0c1.0", "== 1.0.0.0"),
        (">\x0c1.0", "> 1.0.0.0"),
        ("1.0\0", "== 1.0.0.0"),
        ("dev-é as 1.0", "== dev-é"),
        (">= 1.0 as 2.0", ">= 1.0.0.0-dev"),
        ("> 1.0 as 2.0", "> 1.0.0.0"),
        ("dev-foo as 1.0 , 2.0", "[== dev-foo == 2.0.0.0]"),
        (">1.0@STABLE", "> 1.0.0.0-STABLE"),
        (">1.0@rc", "> 1.0.0.0-rc"),
        ("<1.0@dev", "< 1.0.0.0-dev"),
        ("<1.2.3-rc1", "< 1.2.3.0-RC1-dev"),
        (">=1.0-", ">= 1.0.0.0"),
        ("<1.0beta", "< 1.0.0.0-beta-dev"),
        ("<1.0-beta", "< 1.0.0.0-beta"),
        ("<dev-foo", "< dev-foo"),
        (">=foo-dev", ">= dev-foo"),
        (">=master", ">= dev-master-dev"),
        ("1 - 2", "[>= 1.0.0.0-dev < 3.0.0.0-dev]"),
        ("1.0\n||\n2.0", "[== 1.0.0.0 || == 2.0.0.0]"),
        ("1.0\x0b||\x0b2.0", "[== 1.0.0.0 || == 2.0.0.0]"),
        ("V*", ">= 0.0.0.0-dev"),
        ("~V1.0", "[>= 1.0.0.0-dev < 2.0.0.0-dev]"),
        ("X", "*"),
        ("*.*.*.*.*", ">= 0.0.0.0-dev"),
        ("1.x.x.x.x", "[>= 1.0.0.0-dev < 2.0.0.0-dev]"),
        ("1.2.3.4.x-dev", "== dev-1.2.3.4.x"),
        ("DEV-master#abc", "== dev-master"),
        ("1.0.X-DEV#abc", "== 1.0.9999999.9999999-dev"),
        ("master", "== dev-master"),
        ("^1.0+build", "[>= 1.0.0.0 < 2.0.0.0-dev]"),
        ("~1.x-dev@dev", "[>= 1.9999999.9999999.9999999-dev < 2.0.0.0-dev]"),
        ("@dev,@beta", "[* *]"),
        ("1.0@dev as 2.0@dev", "== 1.0.0.0"),
        (">=2010-01-02", ">= 2010.01.02-dev"),
        ("~2010.01.02", "[>= 2010.01.02.0-dev < 2010.2.0.0-dev]"),
        ("^20100102", "[>= 20100102-dev < 20100103.0.0.0-dev]"),
        ("^1.0-patch", "[>= 1.0.0.0-patch < 2.0.0.0-dev]"),
    ];

    // The same oracle, for constraints that composer/semver 3.3.2 rejects.
    const ORACLE_FAILING: &[&str] = &[
        "1  -  2",
        "1\t-\t2",
        "1 -2",
        "1- 2",
        "1.0 as 2.0 as 3.0",
        "1.0 as",
        "1.0 ,as 2",
        "1.0 | | 2.0",
        "1.0 |\n| 2.0",
        "V1.*",
        "1.2.3.4.*",
        "~1.2.3.4.x-dev",
        "1.0.x-dev#",
        "^1.0+",
        "0 - 99999999999999999999",
        "2010-01-02 - 2011-01-01",
    ];

    #[test]
    fn parses_composer_simple_constraints() {
        assert_parses(SIMPLE);
    }

    #[test]
    fn parses_wildcard_tilde_caret_and_hyphen_ranges() {
        assert_ranges(WILDCARD);
        assert_ranges(TILDE_CASES);
        assert_ranges(CARET_CASES);
        assert_ranges(HYPHEN_CASES);
    }

    #[test]
    fn parses_branches_aliases_flags_and_conjunctions() {
        assert_parses(CONSTRAINT_PROVIDER);
        assert_parses(MULTI);
        assert_parses(OPTIMIZATIONS);
    }

    #[test]
    fn parses_as_composer_does_at_the_edges() {
        assert_parses(ORACLE_PARSE);
        for &input in ORACLE_FAILING {
            assert!(Constraint::parse(input).is_err(), "{input:?} should be rejected");
        }
    }

    #[test]
    fn rejects_what_composer_rejects_naming_the_constraint() {
        for &input in FAILING {
            let error = Constraint::parse(input).expect_err(input);
            assert_eq!(error.constraint, input);
            assert!(error.to_string().contains(&format!("\"{input}\"")), "{error}");
        }
        let ruby = Constraint::parse("~>1.2").expect_err("~>");
        assert!(ruby.message.contains("Invalid operator \"~>\", you probably meant to use the \"~\" operator"));
        let bad = Constraint::parse(">=1.0 <foo").expect_err("foo");
        assert_eq!(bad.message, "Could not parse version constraint <foo: Invalid version string \"foo\"");
    }

    #[test]
    fn keeps_the_pretty_string() {
        let parsed = Constraint::parse(" ^1.0 || ^2.0 ").expect("valid");
        assert_eq!(parsed.pretty(), " ^1.0 || ^2.0 ");
        assert_eq!(parsed.to_string(), "[>= 1.0.0.0-dev < 3.0.0.0-dev]");
        // PHP's "0" is falsy, so getPrettyString falls back to __toString.
        assert_eq!(Constraint::parse("0").expect("valid").pretty(), "== 0.0.0.0");
        assert_eq!(Constraint::exact("1.0.0.0").pretty(), "== 1.0.0.0");
        assert_eq!(Constraint::match_all().to_string(), "*");
        assert_eq!(Constraint::match_none().to_string(), "[]");
        assert_eq!(Constraint::with_operator(Operator::Ne, "1.0").to_string(), "!= 1.0");
    }

    // composer/semver tests/VersionParserTest.php, stabilityProvider.
    const STABILITIES: &[(&str, &str)] = &[
        ("stable", "1"),
        ("stable", "1.0"),
        ("stable", "3.2.1"),
        ("stable", "v3.2.1"),
        ("dev", "v2.0.x-dev"),
        ("dev", "v2.0.x-dev#abc123"),
        ("dev", "v2.0.x-dev#trunk/@123"),
        ("RC", "3.0-RC2"),
        ("dev", "dev-master"),
        ("dev", "3.1.2-dev"),
        ("dev", "dev-feature+issue-1"),
        ("stable", "3.1.2-p1"),
        ("stable", "3.1.2-pl2"),
        ("stable", "3.1.2-patch"),
        ("alpha", "3.1.2-alpha5"),
        ("beta", "3.1.2-beta"),
        ("beta", "2.0B1"),
        ("alpha", "1.2.0a1"),
        ("alpha", "1.2_a1"),
        ("RC", "2.0.0rc1"),
        ("alpha", "1.0.0-alpha11+cs-1.1.0"),
        ("dev", "1-2_dev"),
        // Checked against composer/semver 3.3.2 on PHP 8.2 (see ORACLE_PARSE).
        ("dev", "1.0-DEV"),
        ("dev", "1.0dev"),
        ("dev", "1.0-alpha-dev"),
        ("stable", "1.0#x"),
        ("dev", "1.0-dev#x\n"),
        ("RC", "1.0Rc"),
        ("stable", "1.0-pre"),
        ("stable", "1.0.0-STABLE"),
        ("beta", "1.0-beta#dev-x"),
        ("dev", "dev-foo#x"),
        ("dev", "1.0.x-DEV"),
        ("beta", "2.0-Beta3"),
        ("beta", "1.0-b"),
        ("RC", "1.0.0-rc.1+build"),
        ("dev", "1.0-patch-dev"),
    ];

    #[test]
    fn reads_stabilities_as_composer() {
        for &(expected, version) in STABILITIES {
            assert_eq!(stability_of(version).as_str(), expected, "parseStability({version:?})");
        }
    }

    #[test]
    fn orders_and_spells_stabilities() {
        let all = [Stability::Stable, Stability::Rc, Stability::Beta, Stability::Alpha, Stability::Dev];
        assert!(all.windows(2).all(|pair| pair[0] < pair[1] && pair[0].priority() < pair[1].priority()));
        assert_eq!(all.map(|s| s.priority()), [0, 5, 10, 15, 20]);
        for stability in all {
            assert_eq!(Stability::parse(stability.as_str()), Some(stability));
        }
        assert_eq!(Stability::parse("rc"), Some(Stability::Rc));
        assert_eq!(Stability::parse("DEV"), Some(Stability::Dev));
        assert_eq!(Stability::parse("patch"), None);
    }

    fn leaf(op: &str, version: &str) -> Node {
        Node::single(Operator::from_composer(op).expect("operator"), version)
    }

    // composer/semver tests/Constraint/ConstraintTest.php, successfulVersionMatches (require,
    // provide; the test also asserts the reverse).
    const SUCCESSFUL_MATCHES: &[(&str, &str, &str, &str)] = &[
        ("==", "2", "==", "2"),
        ("==", "2", "<", "3"),
        ("==", "2", "<=", "2"),
        ("==", "2", "<=", "3"),
        ("==", "2", ">=", "1"),
        ("==", "2", ">=", "2"),
        ("==", "2", ">", "1"),
        ("==", "2", "!=", "1"),
        ("==", "2", "!=", "3"),
        ("<", "2", "==", "1"),
        ("<", "2", "<", "1"),
        ("<", "2", "<", "2"),
        ("<", "2", "<", "3"),
        ("<", "2", "<=", "1"),
        ("<", "2", "<=", "2"),
        ("<", "2", "<=", "3"),
        ("<", "2", ">=", "1"),
        ("<", "2", ">", "1"),
        ("<", "2", "!=", "1"),
        ("<", "2", "!=", "2"),
        ("<", "2", "!=", "3"),
        ("<=", "2", "==", "1"),
        ("<=", "2", "==", "2"),
        ("<=", "2", "<", "1"),
        ("<=", "2", "<", "2"),
        ("<=", "2", "<", "3"),
        ("<=", "2", "<=", "1"),
        ("<=", "2", "<=", "2"),
        ("<=", "2", "<=", "3"),
        ("<=", "2", ">=", "1"),
        ("<=", "2", ">=", "2"),
        ("<=", "2", ">", "1"),
        ("<=", "2", "!=", "1"),
        ("<=", "2", "!=", "2"),
        ("<=", "2", "!=", "3"),
        (">=", "2", "==", "2"),
        (">=", "2", "==", "3"),
        (">=", "2", "<", "3"),
        (">=", "2", "<=", "2"),
        (">=", "2", "<=", "3"),
        (">=", "2", ">=", "1"),
        (">=", "2", ">=", "2"),
        (">=", "2", ">=", "3"),
        (">=", "2", ">", "1"),
        (">=", "2", ">", "2"),
        (">=", "2", ">", "3"),
        (">=", "2", "!=", "1"),
        (">=", "2", "!=", "2"),
        (">=", "2", "!=", "3"),
        (">", "2", "==", "3"),
        (">", "2", "<", "3"),
        (">", "2", "<=", "3"),
        (">", "2", ">=", "1"),
        (">", "2", ">=", "2"),
        (">", "2", ">=", "3"),
        (">", "2", ">", "1"),
        (">", "2", ">", "2"),
        (">", "2", ">", "3"),
        (">", "2", "!=", "1"),
        (">", "2", "!=", "2"),
        (">", "2", "!=", "3"),
        ("!=", "2", "!=", "1"),
        ("!=", "2", "!=", "2"),
        ("!=", "2", "!=", "3"),
        ("!=", "2", "==", "1"),
        ("!=", "2", "==", "3"),
        ("!=", "2", "<", "1"),
        ("!=", "2", "<", "2"),
        ("!=", "2", "<", "3"),
        ("!=", "2", "<=", "1"),
        ("!=", "2", "<=", "2"),
        ("!=", "2", "<=", "3"),
        ("!=", "2", ">=", "1"),
        ("!=", "2", ">=", "2"),
        ("!=", "2", ">=", "3"),
        ("!=", "2", ">", "1"),
        ("!=", "2", ">", "2"),
        ("!=", "2", ">", "3"),
        ("==", "dev-foo-bar", "==", "dev-foo-bar"),
        ("==", "dev-events+issue-17", "==", "dev-events+issue-17"),
        ("==", "dev-foo-bar", "!=", "dev-foo-xyz"),
        ("!=", "dev-foo-bar", "!=", "dev-foo-xyz"),
        ("==", "0.12", "!=", "dev-foo"),
        ("<", "0.12", "!=", "dev-foo"),
        ("<=", "0.12", "!=", "dev-foo"),
        (">=", "0.12", "!=", "dev-foo"),
        (">", "0.12", "!=", "dev-foo"),
        ("!=", "0.12", "==", "dev-foo"),
        ("!=", "0.12", "!=", "dev-foo"),
    ];

    // composer/semver tests/Constraint/ConstraintTest.php, failingVersionMatches, except its
    // regular blocks: every operator pair of different and of same branch names, and the
    // branch-vs-number pairs, are generated in `failing_version_matches`.
    const FAILING_MATCHES: &[(&str, &str, &str, &str)] = &[
        ("==", "2", "==", "1"),
        ("==", "2", "==", "3"),
        ("==", "2", "<", "1"),
        ("==", "2", "<", "2"),
        ("==", "2", "<=", "1"),
        ("==", "2", ">=", "3"),
        ("==", "2", ">", "2"),
        ("==", "2", ">", "3"),
        ("==", "2", "!=", "2"),
        ("<", "2", "==", "2"),
        ("<", "2", "==", "3"),
        ("<", "2", ">=", "2"),
        ("<", "2", ">=", "3"),
        ("<", "2", ">", "2"),
        ("<", "2", ">", "3"),
        ("<=", "2", "==", "3"),
        ("<=", "2", ">=", "3"),
        ("<=", "2", ">", "2"),
        ("<=", "2", ">", "3"),
        (">=", "2", "==", "1"),
        (">=", "2", "<", "1"),
        (">=", "2", "<", "2"),
        (">=", "2", "<=", "1"),
        (">", "2", "==", "1"),
        (">", "2", "==", "2"),
        (">", "2", "<", "1"),
        (">", "2", "<", "2"),
        (">", "2", "<=", "1"),
        (">", "2", "<=", "2"),
        ("!=", "2", "==", "2"),
        ("==", "2.0-b2", "<", "2.0-beta2"),
        ("==", "dev-foo-dist", "==", "dev-foo-zist"),
        ("!=", "0.12", "<", "dev-foo"),
        ("!=", "0.12", "<=", "dev-foo"),
        ("!=", "0.12", ">=", "dev-foo"),
        ("!=", "0.12", ">", "dev-foo"),
    ];

    /// The generated blocks of failingVersionMatches, for a require of `==`, `<`, `<=`, `>=` or
    /// `>`: against a different branch every provide operator but `==`/`!=`; against the same
    /// branch every one but `==`/`==`; a number against a branch, every operator but `!=`.
    fn generated_failing_matches() -> Vec<(&'static str, &'static str, &'static str, &'static str)> {
        let ops = ["==", "<", "<=", ">=", ">"];
        let mut cases = Vec::new();
        for require in ops {
            for provide in ["==", "<", "<=", ">=", ">", "!="] {
                if !(require == "==" && provide == "!=") {
                    cases.push((require, "dev-foo-bar", provide, "dev-foo-xyz"));
                }
                if !(require == "==" && provide == "==") {
                    cases.push((require, "dev-foo-bar", provide, "dev-foo-bar"));
                }
            }
            for provide in ops {
                cases.push((require, "0.12", provide, "dev-foo"));
            }
        }
        cases
    }

    #[test]
    fn single_constraints_match_as_composer_both_ways() {
        for &(rop, rv, pop, pv) in SUCCESSFUL_MATCHES {
            let (require, provide) = (leaf(rop, rv), leaf(pop, pv));
            assert!(node_matches(&require, &provide), "{require} should match {provide}");
            assert!(node_matches(&provide, &require), "{provide} should match {require}");
        }
        let generated = generated_failing_matches();
        assert_eq!(generated.len(), 83);
        for &(rop, rv, pop, pv) in FAILING_MATCHES.iter().chain(&generated) {
            let (require, provide) = (leaf(rop, rv), leaf(pop, pv));
            assert!(!node_matches(&require, &provide), "{require} should not match {provide}");
            assert!(!node_matches(&provide, &require), "{provide} should not match {require}");
        }
    }

    #[test]
    fn compares_branches_only_when_asked() {
        // composer/semver tests/Constraint/ConstraintTest.php, testComparableBranches.
        let provide = Single { op: Operator::Eq, version: "dev-foo".to_owned() };
        let above = Single { op: Operator::Gt, version: "0.12".to_owned() };
        let below = Single { op: Operator::Lt, version: "0.12".to_owned() };
        assert!(!match_specific(&above, &provide, false));
        assert!(!match_specific(&above, &provide, true));
        assert!(!match_specific(&below, &provide, false));
        assert!(match_specific(&below, &provide, true));
    }

    /// `Constraint::compile($otherOperator)` evaluated for the provided `$v` (`$b`: a branch),
    /// which ConstraintTest::testCompile asserts agrees with `matches` on its matrix.
    fn compiled(this: &Single, other: Operator, v: &str) -> bool {
        use Operator::{Eq, Ge, Gt, Le, Lt, Ne};
        let b = is_branch(v);
        let vc = |x: &str, y: &str, op: Operator| op.holds(php_version_compare(x, y));
        let version = this.version.as_str();
        if is_branch(version) {
            return match (this.op, other) {
                (Eq, Eq) => b && v == version,
                (Eq, Ne) | (Ne, Eq) => !b || v != version,
                (Ne, Ne) => true,
                (Ne, _) => !b,
                _ => false,
            };
        }
        match (this.op, other) {
            (Eq, Eq) => vc(v, version, Eq),
            (Eq, Ne) => b || vc(v, version, Ne),
            (Eq, _) => !b && vc(version, v, other),
            (Ne, Eq) => b || vc(v, version, Ne),
            (Ne, Ne) => true,
            (Ne, _) => !b,
            (Lt | Le, Lt | Le) | (Gt | Ge, Gt | Ge) => !b,
            (_, Ne) => true,
            (Le, Gt) | (Ge, Lt) => !b && vc(v, version, Ne) && vc(v, version, this.op),
            _ => !b && vc(v, version, this.op),
        }
    }

    #[test]
    fn matches_agree_with_composers_compiled_matcher() {
        // composer/semver tests/Constraint/ConstraintTest.php, matrix.
        let versions = ["1.0", "2.0", "dev-master", "dev-foo", "3.0-b2", "3.0-beta2"];
        let ops = ["==", "!=", ">", "<", ">=", "<="];
        let (mut count, mut true_count) = (0, 0);
        for rv in versions {
            for rop in ops {
                for pv in versions {
                    for pop in ops {
                        let (require, provide) = (leaf(rop, rv), leaf(pop, pv));
                        let (Node::Single(r), Node::Single(p)) = (&require, &provide) else { unreachable!() };
                        let expected = compiled(r, p.op, pv);
                        assert_eq!(node_matches(&require, &provide), expected, "{require} vs {provide}");
                        count += 1;
                        true_count += usize::from(expected);
                    }
                }
            }
        }
        assert_eq!(count, 1296);
        assert!(true_count > 300 && true_count < 1000, "{true_count}");
    }

    #[test]
    fn multi_constraints_match_as_composer() {
        // composer/semver tests/Constraint/MultiConstraintTest.php.
        let multi = |items: Vec<Node>, conjunctive| Node::Multi { items, conjunctive };
        let start_end = || vec![leaf(">", "1.0"), leaf("<", "1.2")];
        let both = |a: &Node, b: &Node| (node_matches(a, b), node_matches(b, a));
        assert_eq!(both(&multi(start_end(), true), &leaf("==", "1.1")), (true, true));
        let provided = multi(vec![leaf(">=", "1.1"), leaf("<", "2.0")], true);
        assert_eq!(both(&multi(start_end(), true), &provided), (true, true));
        assert_eq!(both(&multi(start_end(), false), &multi(start_end(), false)), (true, true));
        let outside = multi(vec![leaf("<", "1.0"), leaf(">", "2.0")], false);
        assert_eq!(both(&multi(start_end(), true), &outside), (false, false));
        assert_eq!(both(&multi(start_end(), true), &leaf("==", "1.2")), (false, false));
        let never = multi(vec![leaf(">", "dev-foo"), leaf(">", "dev-bar")], false);
        assert_eq!(both(&never, &leaf("==", "1.1")), (false, false));
        let always = multi(vec![leaf("!=", "dev-foo"), leaf("!=", "dev-bar")], true);
        assert_eq!(both(&always, &leaf("!=", "1.1")), (true, true));
        assert_eq!(multi(start_end(), true).to_string(), "[> 1.0 < 1.2]");
        assert_eq!(create(Vec::new(), true), Node::All);
        let with_all = vec![leaf(">=", "2.5.0.0-dev"), leaf("<=", "3.0.0.0-dev"), Node::All];
        assert_eq!(create(with_all, true).to_string(), "[>= 2.5.0.0-dev <= 3.0.0.0-dev *]");
        assert_eq!(create(vec![leaf(">=", "2.5.0.0-dev"), Node::All], false).to_string(), "[>= 2.5.0.0-dev || *]");
        // MatchNoneConstraint::matches is always false, MatchAllConstraint::matches always true.
        assert!(!node_matches(&Node::Nothing, &Node::All) && node_matches(&Node::All, &Node::Nothing));
        assert!(!node_matches(&leaf("==", "1.0"), &Node::Nothing));
    }

    // Parsed constraints against parsed constraints, checked against composer/semver 3.3.2 on
    // PHP 8.2: the first is Composer's imprecision (every pair of parts intersects, the whole
    // does not), then VersionParserTest::testComplexConjunctive and MultiConstraint's comment.
    const ORACLE_MATCHES: &[(&str, &str, bool)] = &[
        ("^2.0", "<2.5 >2.6", true),
        ("<2.5 >2.6", "^2.0", true),
        (">1 <2", "<1 || >2", false),
        ("~0.1 || ~1.0 !=1.0.1", "1.0.1", false),
        ("1.0 - 2.0", "2.1 - 3.0", false),
        ("^1.0", "dev-master", false),
        ("dev-master", "dev-master", true),
        ("dev-master", "dev-main", false),
        ("*", "dev-foo", true),
        (">=1.0", "dev-foo", false),
        ("!=1.0", "dev-foo", true),
        ("^1.0 || dev-main", "dev-main", true),
        (">=1.0 <1.1", ">1.1 <1.2", false),
        (">=1.0 <=1.1", ">=1.1 <1.2", true),
        (">=1.0 <1.1", ">=1.1 <1.2", false),
        ("<1.0", ">=1.0", false),
        ("<=1.0", ">=1.0", true),
        (">1.0", "<=1.0", false),
        ("1.0.*", "1.0.5", true),
        ("^1.2 <1.2.5", "1.2.7", false),
    ];

    #[test]
    fn parsed_constraints_match_as_composer() {
        for &(a, b, expected) in ORACLE_MATCHES {
            let (a_parsed, b_parsed) = (Constraint::parse(a).expect(a), Constraint::parse(b).expect(b));
            assert_eq!(a_parsed.matches(&b_parsed), expected, "{a} matches {b}");
        }
    }

    /// `Semver::satisfies`: the version normalized, then `matches` against `== version`.
    fn satisfies(version: &str, constraints: &str) -> bool {
        let normalized = normalize(version).unwrap_or_else(|e| panic!("{e}"));
        Constraint::parse(constraints).expect(constraints).matches_version(&normalized)
    }

    // composer/semver tests/SemverTest.php, satisfiesProviderPositive.
    const SATISFIES: &[(&str, &str)] = &[
        ("1.2.3", "1.0.0 - 2.0.0"),
        ("1.2.3", "^1.2.3+build"),
        ("1.3.0", "^1.2.3+build"),
        ("2.4.3-alpha", "1.2.3+asdf - 2.4.3+asdf"),
        ("1.3.0-beta", ">1.2"),
        ("1.2.3-beta", "<=1.2.3"),
        ("1.2.3-beta", "^1.2.3"),
        ("1.2.3", "1.2.3+asdf - 2.4.3+asdf"),
        ("1.0.0", "1.0.0"),
        ("1.2.3", "*"),
        ("v1.2.3", "*"),
        ("1.0.0", ">=1.0.0"),
        ("1.0.1", ">=1.0.0"),
        ("1.1.0", ">=1.0.0"),
        ("1.0.1", ">1.0.0"),
        ("1.1.0", ">1.0.0"),
        ("2.0.0", "<=2.0.0"),
        ("1.9999.9999", "<=2.0.0"),
        ("0.2.9", "<=2.0.0"),
        ("1.9999.9999", "<2.0.0"),
        ("0.2.9", "<2.0.0"),
        ("1.0.0", ">= 1.0.0"),
        ("1.0.1", ">=  1.0.0"),
        ("1.1.0", ">=   1.0.0"),
        ("1.0.1", "> 1.0.0"),
        ("1.1.0", ">  1.0.0"),
        ("2.0.0", "<=   2.0.0"),
        ("1.9999.9999", "<= 2.0.0"),
        ("0.2.9", "<=  2.0.0"),
        ("1.9999.9999", "<    2.0.0"),
        ("0.2.9", "<\t2.0.0"),
        ("v0.1.97", ">=0.1.97"),
        ("0.1.97", ">=0.1.97"),
        ("1.2.4", "0.1.20 || 1.2.4"),
        ("0.0.0", ">=0.2.3 || <0.0.1"),
        ("0.2.3", ">=0.2.3 || <0.0.1"),
        ("0.2.4", ">=0.2.3 || <0.0.1"),
        ("2.1.3", "2.x.x"),
        ("1.2.3", "1.2.x"),
        ("2.1.3", "1.2.x || 2.x"),
        ("1.2.3", "1.2.x || 2.x"),
        ("1.2.3", "x"),
        ("2.1.3", "2.*.*"),
        ("1.2.3", "1.2.*"),
        ("2.1.3", "1.2.* || 2.*"),
        ("1.2.3", "1.2.* || 2.*"),
        ("1.2.3", "*"),
        ("2.9.0", "~2.4"),
        ("2.4.5", "~2.4"),
        ("1.2.3", "~1"),
        ("1.4.7", "~1.0"),
        ("1.0.0", ">=1"),
        ("1.0.0", ">= 1"),
        ("1.2.8", ">1.2"),
        ("1.1.1", "<1.2"),
        ("1.1.1", "< 1.2"),
        ("1.2.3", "~1.2.1 >=1.2.3"),
        ("1.2.3", "~1.2.1 =1.2.3"),
        ("1.2.3", "~1.2.1 1.2.3"),
        ("1.2.3", "~1.2.1 >=1.2.3 1.2.3"),
        ("1.2.3", "~1.2.1 1.2.3 >=1.2.3"),
        ("1.2.3", "~1.2.1 1.2.3"),
        ("1.2.3", ">=1.2.1 1.2.3"),
        ("1.2.3", "1.2.3 >=1.2.1"),
        ("1.2.3", ">=1.2.3 >=1.2.1"),
        ("1.2.3", ">=1.2.1 >=1.2.3"),
        ("1.2.8", ">=1.2"),
        ("1.8.1", "^1.2.3"),
        ("0.1.2", "^0.1.2"),
        ("0.1.2", "^0.1"),
        ("1.4.2", "^1.2"),
        ("1.4.2", "^1.2 ^1"),
        ("0.0.1-beta", "^0.0.1-alpha"),
    ];

    // composer/semver tests/SemverTest.php, satisfiesProviderNegative.
    const NOT_SATISFIES: &[(&str, &str)] = &[
        ("2.2.3", "1.0.0 - 2.0.0"),
        ("2.0.0", "^1.2.3+build"),
        ("1.2.0", "^1.2.3+build"),
        ("1.0.0beta", "1"),
        ("1.0.0beta", "<1"),
        ("1.0.0beta", "< 1"),
        ("1.0.1", "1.0.0"),
        ("0.0.0", ">=1.0.0"),
        ("0.0.1", ">=1.0.0"),
        ("0.1.0", ">=1.0.0"),
        ("0.0.1", ">1.0.0"),
        ("0.1.0", ">1.0.0"),
        ("3.0.0", "<=2.0.0"),
        ("2.9999.9999", "<=2.0.0"),
        ("2.2.9", "<=2.0.0"),
        ("2.9999.9999", "<2.0.0"),
        ("2.2.9", "<2.0.0"),
        ("v0.1.93", ">=0.1.97"),
        ("0.1.93", ">=0.1.97"),
        ("1.2.3", "0.1.20 || 1.2.4"),
        ("0.0.3", ">=0.2.3 || <0.0.1"),
        ("0.2.2", ">=0.2.3 || <0.0.1"),
        ("1.1.3", "2.x.x"),
        ("3.1.3", "2.x.x"),
        ("1.3.3", "1.2.x"),
        ("3.1.3", "1.2.x || 2.x"),
        ("1.1.3", "1.2.x || 2.x"),
        ("1.1.3", "2.*.*"),
        ("3.1.3", "2.*.*"),
        ("1.3.3", "1.2.*"),
        ("3.1.3", "1.2.* || 2.*"),
        ("1.1.3", "1.2.* || 2.*"),
        ("1.1.2", "2"),
        ("2.4.1", "2.3"),
        ("3.0.0", "~2.4"),
        ("2.3.9", "~2.4"),
        ("0.2.3", "~1"),
        ("1.0.0", "<1"),
        ("1.1.1", ">=1.2"),
        ("2.0.0beta", "1"),
        ("0.5.4-alpha", "~v0.5.4-beta"),
        ("1.2.3-beta", "<1.2.3"),
        ("2.0.0-alpha", "^1.2.3"),
        ("1.2.2", "^1.2.3"),
        ("1.1.9", "^1.2"),
    ];

    #[test]
    fn satisfies_as_composer() {
        for &(version, constraints) in SATISFIES {
            assert!(satisfies(version, constraints), "{version} should satisfy {constraints}");
        }
        for &(version, constraints) in NOT_SATISFIES {
            assert!(!satisfies(version, constraints), "{version} should not satisfy {constraints}");
        }
        // composer/semver tests/SemverTest.php, satisfiedByProvider.
        let satisfied_by: &[(&str, &[&str], &[&str])] = &[
            ("~1.0", &["1.0", "1.2", "1.9999.9999", "2.0", "2.1", "0.9999.9999"], &["1.0", "1.2", "1.9999.9999"]),
            (
                ">1.0 <3.0 || >=4.0",
                &["1.0", "1.1", "2.9999.9999", "3.0", "3.1", "3.9999.9999", "4.0", "4.1"],
                &["1.1", "2.9999.9999", "4.0", "4.1"],
            ),
            ("^0.2.0", &["0.1.1", "0.1.9999", "0.2.0", "0.2.1", "0.3.0"], &["0.2.0", "0.2.1"]),
        ];
        for &(constraints, versions, expected) in satisfied_by {
            let found: Vec<&str> = versions.iter().copied().filter(|v| satisfies(v, constraints)).collect();
            assert_eq!(found, expected, "{constraints}");
        }
    }

    #[test]
    fn php_version_compare_follows_php_src_tests() {
        // php-src ext/standard/tests/versioning/version_compare.phpt (PHP 5+): four pairs, then
        // every pair of "1.0" + each special form, whose expected order is by rank.
        let order = |a: &str, b: &str| php_version_compare(a, b);
        assert_eq!(order("1", "2"), Ordering::Less);
        assert_eq!(order("10", "2"), Ordering::Greater);
        assert_eq!(order("1.0", "1.1"), Ordering::Less);
        assert_eq!(order("1.2", "1.0.1"), Ordering::Greater);
        let forms = [("-dev", 0), ("a1", 1), ("b1", 2), ("RC1", 3), ("rc1", 3), ("", 4), ("pl1", 5)];
        let ops = [Operator::Lt, Operator::Le, Operator::Gt, Operator::Ge, Operator::Eq, Operator::Ne];
        for (f1, rank1) in forms {
            for (f2, rank2) in forms {
                let (v1, v2) = (format!("1.0{f1}"), format!("1.0{f2}"));
                let expected: i32 = rank1 - rank2;
                assert_eq!(order(&v1, &v2), expected.cmp(&0), "{v1} vs {v2}");
                for op in ops {
                    assert_eq!(op.holds(order(&v1, &v2)), op.holds(expected.cmp(&0)), "{v1} {} {v2}", op.as_str());
                }
            }
        }
    }

    // PHP 8.2's version_compare, run on this machine: the documented form order (anything else
    // < dev < alpha = a < beta = b < RC = rc < # < pl = p, by prefix), canonicalization, C-string
    // and strtol behaviour, and the quirks of the end of the comparison ("1." < "1.").
    const PHP_VERSION_COMPARE: &[(&str, &str, i8)] = &[
        ("1.", "1", -1),
        ("1", "1.", 1),
        ("1.", "1.", -1),
        ("1..", "1.", -1),
        (".1", "1", -1),
        ("#1", "1", 0),
        ("1", "#1", 0),
        ("#", "1", 0),
        ("#N#", "1", 0),
        ("-1", "1", -1),
        ("1-", "1", -1),
        ("1~2", "1.2", -1),
        ("1~2", "1.~.2", -1),
        ("a~", "a", -1),
        ("1.0Rc1", "1.0", -1),
        ("1.0Rc1", "1.0-dev", -1),
        ("1.0patch1", "1.0", 1),
        ("1.0p1", "1.0pl1", 0),
        ("1.0foo", "1.0dev", -1),
        ("1.0foo", "1.0", -1),
        ("1.0develop", "1.0dev", 0),
        ("1.0abc", "1.0alpha", 0),
        ("1.0bar", "1.0beta", 0),
        ("99999999999999999999", "99999999999999999998", 0),
        ("9223372036854775807", "9223372036854775808", 0),
        ("1.0\0a", "1.0", 0),
        ("é", "1", -1),
        ("é", "dev", -1),
        ("1.é", "1", -1),
        ("", "1", -1),
        ("1", "", 1),
        ("", "", 0),
        ("5.2", "5.2.0", -1),
        ("4.3.2RC1", "4.3.2.RC.1", 0),
        ("4.3.2RC1", "4.3.2", -1),
        ("1.0.0-beta", "1.0.0beta", 0),
        ("1.0alpha", "1.0a", 0),
        ("1.0-stable", "1.0", -1),
        ("1.0stable", "1.0-dev", -1),
        ("dev-foo", "dev-bar", -1),
        ("1.0_1", "1.0+1", 0),
        ("1.0...1", "1.0.1", 0),
        ("1.0.0.0-dev", "1.0.0.0", -1),
        ("1.0.0.0-patch1", "1.0.0.0", 1),
        ("1.0.0.0-RC1-dev", "1.0.0.0-RC1", -1),
        ("9999999-dev", "1.0.0.0", 1),
        ("1.0.0.0-beta2", "1.0.0.0-beta10", -1),
        ("1.0.0.0-alpha3.1", "1.0.0.0-alpha3", 1),
        ("1.0 ", "1.0", -1),
        (" 1.0", "1.0", -1),
        ("1.0a", "1.0.a", 0),
        ("10", "9", 1),
        ("010", "9", 1),
        ("1.10", "1.9", 1),
        ("1.0RC", "1.0rc", 0),
        ("1.0#", "1.0", 0),
        ("1.0#1", "1.0.1", 1),
        ("1.0pl", "1.0.0", 1),
        // PHP 4's version_compare.phpt had this equal; PHP 5+ canonicalizes the ")" to a final ".".
        ("1.2(message)", "1.2(message)", -1),
    ];

    #[test]
    fn php_version_compare_matches_php() {
        for &(a, b, expected) in PHP_VERSION_COMPARE {
            assert_eq!(php_version_compare(a, b), expected.cmp(&0), "version_compare({a:?}, {b:?})");
        }
    }

    #[test]
    fn version_compare_of_branches_is_composers() {
        // Constraint::versionCompare: `!=` compares strings, two branches are only `==`.
        assert!(version_compare("dev-a", "dev-b", Operator::Ne, false));
        assert!(!version_compare("dev-a", "dev-a", Operator::Ne, false));
        assert!(version_compare("dev-a", "1.0", Operator::Ne, false));
        assert!(version_compare("dev-a", "dev-a", Operator::Eq, false));
        assert!(!version_compare("dev-a", "dev-a", Operator::Ge, true));
        assert!(!version_compare("dev-a", "1.0", Operator::Lt, false));
        // compareBranches hands a branch to version_compare: "dev-a" is below "1.0".
        assert!(version_compare("dev-a", "1.0", Operator::Lt, true));
        assert!(version_compare("1.0", "1.0.0", Operator::Lt, false));
    }
}
