//! Which names a package archive may hold: git's own rules for tree entry names, ported.
//!
//! A tree entry name is one path component. Git refuses to check out a tree (`verify_path` and
//! `verify_dotfile` in `read-cache.c`) and a hosting server refuses to receive it (`fsck_tree`:
//! `emptyName`, `hasDot`, `hasDotdot`, `fullPathname`, `hasDotgit`) when a name is empty, `.`,
//! `..`, holds a `/`, or is the repository's own `.git` folder in any of the spellings a file
//! system folds onto it: any letter case, NTFS's short name `git~1`, trailing dots and spaces or
//! an alternate data stream (`core.protectNTFS`, on by default everywhere since git 2.24), and
//! code points HFS+ ignores (`core.protectHFS`). We refuse the same names, plus a backslash (a
//! path separator for Windows, for PHP on Windows and for zip tools that "fix" such names: git
//! refuses it with `core.protectNTFS` on Windows) and a NUL byte (which no tree can hold, but the
//! rules must be total).
//!
//! Not ported, on purpose: Windows' own name rules (`CON`, `AUX`, drive prefixes, a trailing dot
//! or space on other names, `:`), which git applies only when it runs on Windows and which refuse
//! names that are ordinary on Linux; and the `.gitmodules` rules, which concern symlinks only
//! (symlinks are never archived).
//!
//! Legitimate dot files (`.gitattributes`, `.gitignore`, `.github/`, `.gitkeep`) pass.

/// Why a name is refused. The text names git's rule (its `fsck` message id or config switch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathRule {
    /// An empty component (also what a leading, trailing or doubled `/` gives).
    #[error("an empty name (git fsck: emptyName)")]
    Empty,
    /// `.`.
    #[error("the name '.' (git fsck: hasDot)")]
    Dot,
    /// `..`: a step out of the folder.
    #[error("the name '..', which leaves its folder (git fsck: hasDotdot)")]
    DotDot,
    /// A `/` inside one tree entry name.
    #[error("a '/' inside one name (git fsck: fullPathname)")]
    Slash,
    /// A NUL byte.
    #[error("a NUL byte")]
    Nul,
    /// `.git` in some letter case.
    #[error("the repository folder '.git' in some letter case (git verify_path; fsck: hasDotgit)")]
    DotGit,
    /// A name NTFS resolves to `.git`.
    #[error(
        "a name NTFS resolves to '.git': short name git~1, trailing dots or spaces, or a ':' stream \
         (git core.protectNTFS; fsck: hasDotgit)"
    )]
    NtfsDotGit,
    /// `.git` with code points HFS+ ignores.
    #[error("'.git' with invisible code points HFS+ ignores (git core.protectHFS; fsck: hasDotgit)")]
    HfsDotGit,
    /// A backslash.
    #[error("a backslash, a path separator on Windows (git verify_path with core.protectNTFS on Windows)")]
    Backslash,
}

/// A path with a component git's rules refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} holds {rule}", shown(path))]
pub struct PathError {
    /// The whole path.
    pub path: String,
    /// The rule its first refused component breaks.
    pub rule: PathRule,
}

/// Checks one tree entry name (a single path component).
pub fn check_name(name: &str) -> Result<(), PathRule> {
    if name.is_empty() {
        return Err(PathRule::Empty);
    }
    if name.contains('\0') {
        return Err(PathRule::Nul);
    }
    match name {
        "." => return Err(PathRule::Dot),
        ".." => return Err(PathRule::DotDot),
        _ => {}
    }
    if name.contains('/') {
        return Err(PathRule::Slash);
    }
    if name.eq_ignore_ascii_case(".git") {
        return Err(PathRule::DotGit);
    }
    if is_ntfs_dotgit(name) {
        return Err(PathRule::NtfsDotGit);
    }
    if is_hfs_dotgit(name) {
        return Err(PathRule::HfsDotGit);
    }
    if name.contains('\\') {
        return Err(PathRule::Backslash);
    }
    Ok(())
}

/// Checks a package-relative path of `/`-separated components (no leading or trailing `/`).
pub fn check_path(path: &str) -> Result<(), PathError> {
    for component in path.split('/') {
        check_name(component).map_err(|rule| PathError { path: path.to_owned(), rule })?;
    }
    Ok(())
}

/// Checks a zip entry name: a file's path, or a folder's path with one trailing `/`.
pub fn check_entry_name(name: &str, directory: bool) -> Result<(), PathError> {
    let path = if directory {
        name.strip_suffix('/').ok_or_else(|| PathError { path: name.to_owned(), rule: PathRule::Empty })?
    } else {
        name
    };
    check_path(path).map_err(|error| PathError { path: name.to_owned(), rule: error.rule })
}

/// A path as reports show it: quoted, with control and invisible characters escaped (a refused
/// name may hold code points that hide or reorder text), cut to 200 characters.
pub fn shown(path: &str) -> String {
    const SHOWN_CHARS: usize = 200;
    let mut out = String::from("'");
    for (index, character) in path.chars().enumerate() {
        if index == SHOWN_CHARS {
            out.push_str(&format!("…' ({} bytes)", path.len()));
            return out;
        }
        out.extend(character.escape_debug());
    }
    out.push('\'');
    out
}

/// git's `is_ntfs_dotgit`: `.git` or `git~1` (any case), then only dots and spaces up to the end,
/// a separator (`/` or `\`) or a `:` (an alternate data stream).
fn is_ntfs_dotgit(name: &str) -> bool {
    let bytes = name.as_bytes();
    let rest = if bytes.len() >= 4 && bytes[..4].eq_ignore_ascii_case(b".git") {
        &bytes[4..]
    } else if bytes.len() >= 5 && bytes[..3].eq_ignore_ascii_case(b"git") && &bytes[3..5] == b"~1" {
        &bytes[5..]
    } else {
        return false;
    };
    for &byte in rest {
        match byte {
            b'\\' | b'/' | b':' => return true,
            b'.' | b' ' => {}
            _ => return false,
        }
    }
    true
}

/// git's `is_hfs_dotgit`: `.git` (any case) once the code points HFS+ ignores are left out,
/// followed by nothing or a `/`.
fn is_hfs_dotgit(name: &str) -> bool {
    let mut significant = name.chars().filter(|c| !is_hfs_ignorable(*c));
    let mut expect =
        |wanted: char| significant.next().is_some_and(|c| c.to_ascii_lowercase() == wanted && c.is_ascii());
    if !(expect('.') && expect('g') && expect('i') && expect('t')) {
        return false;
    }
    matches!(significant.next(), None | Some('/'))
}

/// The code points git's `next_hfs_char` skips (HFS+ drops them when comparing names).
fn is_hfs_ignorable(c: char) -> bool {
    matches!(c, '\u{200c}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{206a}'..='\u{206f}' | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_and_legitimate_dot_files_pass() {
        for name in [
            "composer.json",
            "Model",
            ".gitattributes",
            ".gitignore",
            ".github",
            ".gitkeep",
            ".gitmodules",
            ".git-blame-ignore-revs",
            ".git.bak",
            ".gitx",
            "git",
            "git~2",
            "git~10",
            "...",
            ".htaccess",
            "a..b",
            "über.txt",
            "name with spaces",
            "C:",
            "CON",
            "trailing.",
            "\u{200c}git",
        ] {
            assert_eq!(check_name(name), Ok(()), "{name:?}");
        }
    }

    #[test]
    fn structural_names_are_refused() {
        assert_eq!(check_name(""), Err(PathRule::Empty));
        assert_eq!(check_name("."), Err(PathRule::Dot));
        assert_eq!(check_name(".."), Err(PathRule::DotDot));
        assert_eq!(check_name("../x"), Err(PathRule::Slash));
        assert_eq!(check_name("/abs"), Err(PathRule::Slash));
        assert_eq!(check_name("a/b"), Err(PathRule::Slash));
        assert_eq!(check_name("a\0b"), Err(PathRule::Nul));
        assert_eq!(check_name("..\\..\\x"), Err(PathRule::Backslash));
        assert_eq!(check_name("a\\b.php"), Err(PathRule::Backslash));
    }

    #[test]
    fn dot_git_in_every_case_is_refused() {
        for name in [".git", ".GIT", ".Git", ".gIt", ".giT"] {
            assert_eq!(check_name(name), Err(PathRule::DotGit), "{name:?}");
        }
    }

    #[test]
    fn ntfs_aliases_of_dot_git_are_refused() {
        for name in [
            "git~1",
            "GIT~1",
            "Git~1",
            ".git.",
            ".git ",
            ".git. .",
            ".GIT...",
            "git~1.",
            "git~1 ",
            ".git:",
            ".git::$INDEX_ALLOCATION",
            ".git:stream",
            "git~1:x",
            ".git\\config",
            ".git .\\hooks",
        ] {
            assert_eq!(check_name(name), Err(PathRule::NtfsDotGit), "{name:?}");
        }
    }

    #[test]
    fn hfs_ignorable_code_points_inside_dot_git_are_refused() {
        for name in [
            ".g\u{200c}it",
            "\u{200d}.git",
            ".git\u{200e}",
            ".\u{200f}GIT",
            ".gi\u{202a}t",
            ".g\u{202e}it",
            ".g\u{206a}i\u{206f}t",
            "\u{feff}.git",
        ] {
            assert_eq!(check_name(name), Err(PathRule::HfsDotGit), "{name:?}");
        }
        // Other invisible code points are not folded by HFS+ (git allows them), nor are
        // non-ASCII letters that look like ASCII.
        assert_eq!(check_name(".g\u{200b}it"), Ok(()));
        assert_eq!(check_name(".\u{0147}it"), Ok(()));
        assert_eq!(check_name(".g\u{200c}itx"), Ok(()));
    }

    #[test]
    fn paths_are_checked_component_by_component() {
        assert_eq!(check_path("a/b/c.php"), Ok(()));
        assert_eq!(check_path(".github/workflows/ci.yml"), Ok(()));
        for (path, rule) in [
            ("a/../../y", PathRule::DotDot),
            ("/abs", PathRule::Empty),
            ("a//b", PathRule::Empty),
            ("a/", PathRule::Empty),
            ("", PathRule::Empty),
            ("x/.GIT/config", PathRule::DotGit),
            ("./x", PathRule::Dot),
            ("x/y\\..\\z", PathRule::Backslash),
        ] {
            assert_eq!(check_path(path), Err(PathError { path: path.to_owned(), rule }), "{path:?}");
        }
    }

    #[test]
    fn entry_names_of_folders_end_in_one_slash() {
        assert_eq!(check_entry_name("a/b/", true), Ok(()));
        assert_eq!(check_entry_name("a/b.php", false), Ok(()));
        assert!(check_entry_name("a/b", true).is_err());
        assert!(check_entry_name("a//", true).is_err());
        assert!(check_entry_name("/", true).is_err());
        assert!(check_entry_name("a/", false).is_err());
        assert_eq!(check_entry_name(".git/", true).unwrap_err().rule, PathRule::DotGit);
    }

    #[test]
    fn shown_paths_are_escaped_and_bounded() {
        assert_eq!(shown("a/.g\u{200c}it"), "'a/.g\\u{200c}it'");
        assert_eq!(shown("a\nb"), "'a\\nb'");
        let long = "x".repeat(70_000);
        let text = shown(&long);
        assert!(text.len() < 230 && text.ends_with("(70000 bytes)"), "{text}");
    }
}
