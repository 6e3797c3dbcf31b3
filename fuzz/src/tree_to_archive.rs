//! Tree entries to archive: what a hostile tree can hand the worker, through the path rules and
//! `ArchiveBuilder::from_package_items` + `write_to`.
//!
//! Input format (easy to write seeds for, see `corpus/tree_to_archive/`): repeated records of
//! `mode (1 byte) | name length (1 byte) | name | data length (1 byte) | data`; a truncated last
//! record keeps what is there. Mode `b'f'` is a regular file, `b'x'` an executable, `b'd'` a
//! configured empty folder, `b'l'` a symlink and `b's'` a submodule (never archived, as in the
//! reader); any other byte is a regular file.
//!
//! Invariants: nothing panics; writing succeeds when every path passes git's path rules (the
//! inputs are far below the zip limits) and fails, before writing a byte, only when one does not;
//! a written archive parses with the `zip` crate, holds exactly the builder's names in its order,
//! each accepted by the rules, with the content last given for each file (checked against its
//! CRC); and writing twice gives the same bytes.

use std::collections::HashMap;
use std::io::Read as _;

use shared::archive::{ArchiveBuilder, ArchiveError, EXECUTABLE_MODE, FILE_MODE, PackageItem};
use shared::pathcheck;

/// One decoded tree entry.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// Mode byte (see the module docs).
    pub mode: u8,
    /// Name bytes, possibly a path, possibly not UTF-8.
    pub name: Vec<u8>,
    /// Content.
    pub data: Vec<u8>,
}

/// Decodes the fuzzer's bytes into entries.
pub fn decode(mut bytes: &[u8]) -> Vec<RawEntry> {
    let take = |len: usize, bytes: &mut &[u8]| -> Vec<u8> {
        let (head, rest) = bytes.split_at(len.min(bytes.len()));
        *bytes = rest;
        head.to_vec()
    };
    let mut entries = Vec::new();
    while let [mode, name_len, rest @ ..] = bytes {
        let (mode, name_len) = (*mode, usize::from(*name_len));
        bytes = rest;
        let name = take(name_len, &mut bytes);
        let data_len = bytes.first().map_or(0, |len| usize::from(*len));
        bytes = bytes.get(1..).unwrap_or(&[]);
        let data = take(data_len, &mut bytes);
        entries.push(RawEntry { mode, name, data });
    }
    entries
}

/// Encodes entries in the input format (for seeds and tests).
pub fn encode(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        out.push(entry.mode);
        out.push(u8::try_from(entry.name.len()).expect("name under 256 bytes"));
        out.extend_from_slice(&entry.name);
        out.push(u8::try_from(entry.data.len()).expect("data under 256 bytes"));
        out.extend_from_slice(&entry.data);
    }
    out
}

/// What the worker would hand the builder for these entries, and whether every archived path
/// passes git's rules. Non-UTF-8 names stop the reader before the rules (`GitError::NonUtf8Path`)
/// and symlinks and submodules are never archived, so those are left out here.
fn items(entries: &[RawEntry]) -> (Vec<PackageItem>, bool) {
    let mut items = Vec::new();
    let mut all_accepted = true;
    for entry in entries {
        let Ok(path) = std::str::from_utf8(&entry.name) else { continue };
        let (item, checked) = match entry.mode {
            b'l' | b's' => continue,
            // A configured folder may end in one `/` (as the reference's do); every `/` in the
            // path, a second trailing one too, makes a folder entry.
            b'd' => (PackageItem::EmptyDir { path: path.to_owned() }, path.strip_suffix('/').unwrap_or(path)),
            mode => {
                let mode = if mode == b'x' { EXECUTABLE_MODE } else { FILE_MODE };
                (
                    PackageItem::File {
                        path: path.to_owned(),
                        data: shared::archive::Content::from(&entry.data[..]),
                        mode,
                    },
                    path,
                )
            }
        };
        all_accepted &= pathcheck::check_path(checked).is_ok();
        items.push(item);
    }
    (items, all_accepted)
}

/// The fuzz target: decode, build, write, and check the invariants (panics on a violation).
pub fn check(bytes: &[u8]) {
    let entries = decode(bytes);
    let (items, all_accepted) = items(&entries);
    let mut contents: HashMap<String, Vec<u8>> = HashMap::new();
    for item in &items {
        if let PackageItem::File { path, data, .. } = item {
            contents.insert(path.clone(), data.to_vec());
        }
    }
    let builder = ArchiveBuilder::from_package_items(items);
    let mut bytes = Vec::new();
    match builder.write_to(&mut bytes) {
        Ok(digest) => {
            // Not `assert!(all_accepted)`: a refused item can be replaced in place by a later
            // accepted one of the same name (a file `a/` by the folder `a/`); what counts is
            // that every name written is accepted, which `check_archive` asserts.
            assert_eq!(digest.size, bytes.len() as u64);
            check_archive(&bytes, &builder.names(), &contents);
            let mut again = Vec::new();
            builder.write_to(&mut again).expect("second write");
            assert!(again == bytes, "writing twice gave different bytes");
        }
        Err(ArchiveError::UnsafeName(error)) => {
            assert!(!all_accepted, "a name the rules accept was refused: {error}");
            assert!(bytes.is_empty(), "bytes were written before the refusal");
        }
        Err(error) => panic!("unexpected error for a small archive: {error}"),
    }
    if all_accepted {
        assert!(!bytes.is_empty(), "every path passes the rules, yet nothing was written");
    }
}

/// The archive parses, holds exactly `names` in order, each accepted by the rules, with the
/// expected contents.
fn check_archive(bytes: &[u8], names: &[&str], contents: &HashMap<String, Vec<u8>>) {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("the zip crate reads the archive");
    assert_eq!(archive.len(), names.len(), "entry count");
    for (index, expected) in names.iter().enumerate() {
        let mut file = archive.by_index(index).expect("entry readable");
        let name = std::str::from_utf8(file.name_raw()).expect("UTF-8 name").to_owned();
        assert_eq!(file.name().expect("name decodes"), name, "decoded name of entry {index}");
        assert_eq!(name, *expected, "entry {index}");
        let directory = name.ends_with('/');
        assert!(pathcheck::check_entry_name(&name, directory).is_ok(), "entry {name:?} breaks the path rules");
        assert!(!plainly_unsafe(&name), "entry {name:?} is plainly unsafe");
        let mut data = Vec::new();
        file.read_to_end(&mut data).expect("content matches its CRC");
        match contents.get(&name) {
            Some(content) if !directory => assert!(data == *content, "content of {name:?}"),
            _ => assert!(data.is_empty(), "folder {name:?} has content"),
        }
    }
}

/// An oracle independent of `pathcheck` for the rules that matter most: no component empty, `.`,
/// `..` or `.git` in any case, no backslash or NUL (the NTFS and HFS spellings are left to the
/// rules' unit tests).
fn plainly_unsafe(name: &str) -> bool {
    let path = name.strip_suffix('/').unwrap_or(name);
    path.split('/').any(|component| {
        component.is_empty()
            || component == "."
            || component == ".."
            || component.eq_ignore_ascii_case(".git")
            || component.contains(['\\', '\0'])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(mode: u8, name: &str, data: &str) -> RawEntry {
        RawEntry { mode, name: name.as_bytes().to_vec(), data: data.as_bytes().to_vec() }
    }

    #[test]
    fn decode_reads_what_encode_writes_and_tolerates_truncation() {
        let entries = [entry(b'f', "a/b.php", "<?php"), entry(b'd', "c", "")];
        let bytes = encode(&entries);
        let decoded = decode(&bytes);
        assert_eq!(decoded.len(), 2);
        assert_eq!(decoded[0].name, b"a/b.php");
        assert_eq!(decoded[1].mode, b'd');
        for cut in 0..bytes.len() {
            check(&bytes[..cut]);
        }
    }

    #[test]
    fn accepted_and_refused_trees() {
        check(&encode(&[entry(b'f', ".github/ci.yml", "x"), entry(b'x', "bin/run", "#!"), entry(b'd', "var/", "")]));
        check(&encode(&[entry(b'f', "ok", "x"), entry(b'f', "a/.GIT/config", "[core]")]));
        check(&encode(&[entry(b'f', "a/../../y", "x")]));
        check(&encode(&[entry(b'l', ".git", "x"), entry(b'f', "ok", "")]));
    }
}
