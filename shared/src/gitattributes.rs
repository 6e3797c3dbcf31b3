//! Checkout-time end-of-line conversion from `.gitattributes`, as `git checkout` applies it.
//!
//! The reference generator reads files from a checked-out working tree, so a file marked
//! `eol=crlf` is archived with CRLF line ends although the blob has LF. We read blobs straight from
//! the object database, so we apply the same conversion here. Only what changes bytes on checkout
//! with git's defaults (`core.autocrlf` unset, `core.eol` native = LF on Linux, which is how the
//! reference runs) is modelled: the `text`, `eol` and legacy `crlf` attributes, the built-in
//! `binary` macro and `[attr]` macros from the root file. `ident`, `filter` and
//! `working-tree-encoding` are not applied (the reference's environment configures no filters).
//!
//! Precedence follows gitattributes(5): a `.gitattributes` file deeper in the tree overrides one
//! closer to the root, and within a file a later line overrides an earlier one.

use std::collections::HashMap;

/// The state of one attribute for a path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Set,
    Unset,
    Unspecified,
    Value(String),
}

/// One line of a `.gitattributes` file.
#[derive(Debug, Clone)]
struct Rule {
    pattern: Pattern,
    /// Assignments in order, macros already expanded.
    assignments: Vec<(String, State)>,
}

#[derive(Debug, Clone)]
struct Pattern {
    /// Glob text with the leading `/` removed.
    glob: String,
    /// True when the pattern has no `/` and so matches the basename at any depth.
    basename_only: bool,
}

/// The parsed `.gitattributes` file of one directory.
#[derive(Debug, Clone, Default)]
pub struct AttributesFile {
    rules: Vec<Rule>,
}

/// Macros usable in attribute files: the built-in `binary` plus `[attr]` lines of the root file.
#[derive(Debug, Clone)]
pub struct Macros(HashMap<String, Vec<(String, State)>>);

impl Default for Macros {
    fn default() -> Self {
        let binary = vec![
            ("diff".to_owned(), State::Unset),
            ("merge".to_owned(), State::Unset),
            ("text".to_owned(), State::Unset),
        ];
        Macros(HashMap::from([("binary".to_owned(), binary)]))
    }
}

impl AttributesFile {
    /// Parses a `.gitattributes` file. `macros` gains the `[attr]` definitions when `is_root`.
    pub fn parse(text: &str, macros: &mut Macros, is_root: bool) -> Self {
        let mut rules = Vec::new();
        for line in text.lines() {
            let line = line.trim_start_matches([' ', '\t']).trim_end_matches(['\r', ' ', '\t']);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (pattern, rest) = split_pattern(line);
            let tokens: Vec<&str> = rest.split([' ', '\t']).filter(|t| !t.is_empty()).collect();
            if let Some(name) = pattern.strip_prefix("[attr]") {
                if is_root {
                    let expanded = expand(&tokens, macros);
                    macros.0.insert(name.to_owned(), expanded);
                }
                continue;
            }
            if pattern.starts_with('!') {
                // Negative patterns are forbidden in attribute files; git ignores the line.
                continue;
            }
            let anchored = pattern.trim_start_matches('/');
            let basename_only = !pattern.contains('/');
            rules.push(Rule {
                pattern: Pattern { glob: anchored.to_owned(), basename_only },
                assignments: expand(&tokens, macros),
            });
        }
        AttributesFile { rules }
    }

    fn apply(&self, relative_path: &str, states: &mut HashMap<String, State>) {
        let basename = relative_path.rsplit('/').next().unwrap_or(relative_path);
        for rule in &self.rules {
            let subject = if rule.pattern.basename_only { basename } else { relative_path };
            if wildmatch(rule.pattern.glob.as_bytes(), subject.as_bytes()) {
                for (name, state) in &rule.assignments {
                    states.insert(name.clone(), state.clone());
                }
            }
        }
    }
}

/// A pattern may be a C-style quoted string; return it and the rest of the line.
fn split_pattern(line: &str) -> (String, &str) {
    if let Some(quoted) = line.strip_prefix('"') {
        let mut pattern = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return (pattern, &quoted[i + 1..]),
                '\\' => match chars.next() {
                    Some((_, 'n')) => pattern.push('\n'),
                    Some((_, 't')) => pattern.push('\t'),
                    Some((_, other)) => pattern.push(other),
                    None => break,
                },
                other => pattern.push(other),
            }
        }
        return (pattern, "");
    }
    match line.find([' ', '\t']) {
        Some(i) => (line[..i].to_owned(), &line[i..]),
        None => (line.to_owned(), ""),
    }
}

fn expand(tokens: &[&str], macros: &Macros) -> Vec<(String, State)> {
    let mut out = Vec::new();
    for token in tokens {
        let (name, state) = if let Some(name) = token.strip_prefix('-') {
            (name, State::Unset)
        } else if let Some(name) = token.strip_prefix('!') {
            (name, State::Unspecified)
        } else if let Some((name, value)) = token.split_once('=') {
            (name, State::Value(value.to_owned()))
        } else {
            (*token, State::Set)
        };
        if state == State::Set
            && let Some(expansion) = macros.0.get(name)
        {
            out.push((name.to_owned(), State::Set));
            out.extend(expansion.iter().cloned());
            continue;
        }
        out.push((name.to_owned(), state));
    }
    out
}

/// What checkout does to a file's line ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EolConversion {
    /// Bytes are written as stored.
    None,
    /// `eol=crlf` on a text file: every LF not preceded by CR becomes CRLF.
    ToCrlf,
    /// `text=auto eol=crlf`: as `ToCrlf`, but only for files git detects as text without CRs.
    AutoToCrlf,
}

/// Decides the conversion for `path` from the attribute files that apply to it, given as
/// `(directory, file)` pairs ordered from the root down (directory `""` is the root).
pub fn conversion_for(path: &str, files: &[(&str, &AttributesFile)]) -> EolConversion {
    let mut states: HashMap<String, State> = HashMap::new();
    for (dir, file) in files {
        let relative = if dir.is_empty() {
            path
        } else {
            match path.strip_prefix(dir).and_then(|rest| rest.strip_prefix('/')) {
                Some(rest) => rest,
                None => continue,
            }
        };
        file.apply(relative, &mut states);
    }
    decide(&states)
}

/// git's `convert_attrs` with `core.autocrlf=false` and `core.eol=lf`.
fn decide(states: &HashMap<String, State>) -> EolConversion {
    #[derive(PartialEq)]
    #[allow(clippy::enum_variant_names)] // git's own names: CRLF_TEXT_CRLF, CRLF_AUTO_CRLF
    enum Crlf {
        Undefined,
        Binary,
        Text,
        TextInput,
        TextCrlf,
        Auto,
        AutoInput,
        AutoCrlf,
    }
    let check_crlf = |state: Option<&State>| match state {
        Some(State::Set) => Crlf::Text,
        Some(State::Unset) => Crlf::Binary,
        Some(State::Value(v)) if v == "input" => Crlf::TextInput,
        Some(State::Value(v)) if v == "auto" => Crlf::Auto,
        _ => Crlf::Undefined,
    };
    let mut action = check_crlf(states.get("text"));
    if action == Crlf::Undefined {
        action = check_crlf(states.get("crlf"));
    }
    if action != Crlf::Binary {
        let eol = match states.get("eol") {
            Some(State::Value(v)) if v == "lf" => Some(false),
            Some(State::Value(v)) if v == "crlf" => Some(true),
            _ => None,
        };
        action = match (action, eol) {
            (Crlf::Auto, Some(false)) => Crlf::AutoInput,
            (Crlf::Auto, Some(true)) => Crlf::AutoCrlf,
            (_, Some(false)) => Crlf::TextInput,
            (_, Some(true)) => Crlf::TextCrlf,
            (other, None) => other,
        };
    }
    match action {
        Crlf::TextCrlf => EolConversion::ToCrlf,
        Crlf::AutoCrlf => EolConversion::AutoToCrlf,
        // `text` alone and `auto` use core.eol (LF): nothing changes on checkout.
        Crlf::Undefined | Crlf::Binary | Crlf::Text | Crlf::TextInput | Crlf::Auto | Crlf::AutoInput => {
            EolConversion::None
        }
    }
}

/// Applies a conversion to blob content as git's `crlf_to_worktree` does. Returns `None` when the
/// bytes stay as they are.
pub fn convert(data: &[u8], conversion: EolConversion) -> Option<Vec<u8>> {
    if conversion == EolConversion::None || data.is_empty() {
        return None;
    }
    let stats = Stats::gather(data);
    if stats.lone_lf == 0 {
        return None;
    }
    if conversion == EolConversion::AutoToCrlf && (stats.lone_cr > 0 || stats.crlf > 0 || stats.is_binary()) {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() + stats.lone_lf);
    let mut last = 0u8;
    for &byte in data {
        if byte == b'\n' && last != b'\r' {
            out.push(b'\r');
        }
        out.push(byte);
        last = byte;
    }
    Some(out)
}

/// git's `gather_stats`.
#[derive(Default)]
struct Stats {
    nul: usize,
    lone_cr: usize,
    lone_lf: usize,
    crlf: usize,
    printable: usize,
    nonprintable: usize,
}

impl Stats {
    fn gather(data: &[u8]) -> Stats {
        let mut stats = Stats::default();
        let mut i = 0;
        while i < data.len() {
            let c = data[i];
            if c == b'\r' {
                if data.get(i + 1) == Some(&b'\n') {
                    stats.crlf += 1;
                    i += 1;
                } else {
                    stats.lone_cr += 1;
                }
            } else if c == b'\n' {
                stats.lone_lf += 1;
            } else if c == 127 {
                stats.nonprintable += 1;
            } else if c < 32 {
                match c {
                    b'\x08' | b'\t' | b'\x1b' | b'\x0c' => stats.printable += 1,
                    0 => {
                        stats.nul += 1;
                        stats.nonprintable += 1;
                    }
                    _ => stats.nonprintable += 1,
                }
            } else {
                stats.printable += 1;
            }
            i += 1;
        }
        if data.last() == Some(&0x1a) {
            stats.nonprintable = stats.nonprintable.saturating_sub(1);
        }
        stats
    }

    fn is_binary(&self) -> bool {
        self.lone_cr > 0 || self.nul > 0 || (self.printable >> 7) < self.nonprintable
    }
}

/// git's `wildmatch` with `WM_PATHNAME`: `*` and `?` do not match `/`, `**` between slashes
/// matches any number of directories.
pub fn wildmatch(pattern: &[u8], text: &[u8]) -> bool {
    matches!(do_match(pattern, text), Match::Yes)
}

enum Match {
    Yes,
    No,
    AbortAll,
    AbortToStarStar,
}

fn do_match(pattern: &[u8], text: &[u8]) -> Match {
    let (mut p, mut t) = (0usize, 0usize);
    while p < pattern.len() {
        let pc = pattern[p];
        if t >= text.len() && pc != b'*' {
            return Match::AbortAll;
        }
        match pc {
            b'\\' => {
                p += 1;
                if p >= pattern.len() || pattern[p] != text[t] {
                    return Match::No;
                }
            }
            b'?' => {
                if text[t] == b'/' {
                    return Match::No;
                }
            }
            b'*' => {
                let star_start = p;
                p += 1;
                let double = p < pattern.len() && pattern[p] == b'*';
                let mut match_slash = false;
                if double {
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    let before_ok = star_start == 0 || pattern[star_start - 1] == b'/';
                    let after_ok = p == pattern.len() || pattern[p] == b'/';
                    if before_ok && after_ok {
                        // "**/" may match nothing at all: try skipping it.
                        if p < pattern.len()
                            && pattern[p] == b'/'
                            && let Match::Yes = do_match(&pattern[p + 1..], &text[t..])
                        {
                            return Match::Yes;
                        }
                        match_slash = true;
                    }
                }
                if p == pattern.len() {
                    // Trailing star: matches the rest unless it must stop at a slash.
                    if !match_slash && text[t..].contains(&b'/') {
                        return Match::AbortToStarStar;
                    }
                    return Match::Yes;
                }
                loop {
                    if t > text.len() {
                        break;
                    }
                    match do_match(&pattern[p..], &text[t..]) {
                        Match::Yes => return Match::Yes,
                        Match::No => {}
                        Match::AbortToStarStar if match_slash => {}
                        other => return other,
                    }
                    if t >= text.len() || (!match_slash && text[t] == b'/') {
                        break;
                    }
                    t += 1;
                }
                return if match_slash { Match::AbortAll } else { Match::AbortToStarStar };
            }
            b'[' => {
                p += 1;
                let negate = p < pattern.len() && (pattern[p] == b'!' || pattern[p] == b'^');
                if negate {
                    p += 1;
                }
                let c = text[t];
                let mut matched = false;
                let mut first = true;
                let mut prev: Option<u8> = None;
                loop {
                    if p >= pattern.len() {
                        return Match::AbortAll;
                    }
                    let mut pc = pattern[p];
                    if pc == b']' && !first {
                        break;
                    }
                    first = false;
                    if pc == b'\\' && p + 1 < pattern.len() {
                        p += 1;
                        pc = pattern[p];
                    } else if pc == b'-' && prev.is_some() && p + 1 < pattern.len() && pattern[p + 1] != b']' {
                        p += 1;
                        let mut hi = pattern[p];
                        if hi == b'\\' && p + 1 < pattern.len() {
                            p += 1;
                            hi = pattern[p];
                        }
                        if let Some(lo) = prev
                            && lo <= c
                            && c <= hi
                        {
                            matched = true;
                        }
                        prev = None;
                        p += 1;
                        continue;
                    }
                    if pc == c {
                        matched = true;
                    }
                    prev = Some(pc);
                    p += 1;
                }
                if matched == negate || c == b'/' {
                    return Match::No;
                }
            }
            literal => {
                if literal != text[t] {
                    return Match::No;
                }
            }
        }
        p += 1;
        t += 1;
    }
    if t == text.len() { Match::Yes } else { Match::No }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversion(attributes: &str, path: &str) -> EolConversion {
        let mut macros = Macros::default();
        let file = AttributesFile::parse(attributes, &mut macros, true);
        conversion_for(path, &[("", &file)])
    }

    #[test]
    fn eol_crlf_converts_lone_lf_only() {
        assert_eq!(
            conversion("*.cmd text eol=crlf\n/SECURITY.md export-ignore", "bin/acme.cmd"),
            EolConversion::ToCrlf
        );
        assert_eq!(convert(b"a\nb\r\nc\n", EolConversion::ToCrlf).unwrap(), b"a\r\nb\r\nc\r\n");
        assert_eq!(conversion("*.cmd text eol=crlf", "bin/acme.sh"), EolConversion::None);
    }

    #[test]
    fn binary_and_later_lines_win() {
        assert_eq!(conversion("* eol=crlf\n*.png binary", "a/b.png"), EolConversion::None);
        // `-text` makes the file binary; git then ignores `eol`.
        assert_eq!(conversion("*.txt -text\n*.txt eol=crlf", "x.txt"), EolConversion::None);
        assert_eq!(conversion("*.txt -text\n*.txt text eol=crlf", "x.txt"), EolConversion::ToCrlf);
        assert_eq!(conversion("* text=auto eol=crlf", "x.txt"), EolConversion::AutoToCrlf);
        assert_eq!(conversion("* text", "x.txt"), EolConversion::None);
    }

    #[test]
    fn auto_leaves_binary_and_mixed_files_alone() {
        assert!(convert(b"a\0b\n", EolConversion::AutoToCrlf).is_none());
        assert!(convert(b"a\r\nb\n", EolConversion::AutoToCrlf).is_none());
        assert_eq!(convert(b"a\nb\n", EolConversion::AutoToCrlf).unwrap(), b"a\r\nb\r\n");
    }

    #[test]
    fn deeper_files_override_and_patterns_are_relative() {
        let mut macros = Macros::default();
        let root = AttributesFile::parse("*.sh eol=crlf\n/top.txt eol=crlf", &mut macros, true);
        let sub = AttributesFile::parse("*.sh -text", &mut macros, false);
        let files = [("", &root), ("sub", &sub)];
        assert_eq!(conversion_for("a.sh", &files), EolConversion::ToCrlf);
        assert_eq!(conversion_for("sub/a.sh", &files), EolConversion::None);
        assert_eq!(conversion_for("top.txt", &files), EolConversion::ToCrlf);
        assert_eq!(conversion_for("sub/top.txt", &files), EolConversion::None);
    }

    #[test]
    fn wildmatch_follows_git() {
        assert!(wildmatch(b"*.cmd", b"acme.cmd"));
        assert!(!wildmatch(b"*.cmd", b"bin/acme.cmd"));
        assert!(wildmatch(b"bin/*.cmd", b"bin/acme.cmd"));
        assert!(wildmatch(b"**/*.cmd", b"a/b/acme.cmd"));
        assert!(wildmatch(b"**/*.cmd", b"acme.cmd"));
        assert!(wildmatch(b"docs/**", b"docs/a/b"));
        assert!(wildmatch(b"a/**/b", b"a/b"));
        assert!(wildmatch(b"a/**/b", b"a/x/y/b"));
        assert!(wildmatch(b"[a-c]?.t[!x]t", b"bz.tat"));
        assert!(!wildmatch(b"[a-c]?.t[!x]t", b"bz.txt"));
        assert!(!wildmatch(b"a?b", b"a/b"));
    }

    #[test]
    fn root_macros_expand() {
        assert_eq!(conversion("[attr]windows text eol=crlf\n*.bat windows", "x.bat"), EolConversion::ToCrlf);
    }
}
