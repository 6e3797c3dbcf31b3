//! The deterministic zip writer: byte-identical to the reference generator's JSZip 3.10.1 output.
//!
//! Why our own writer and not the `zip` crate: the format needed here is a narrow, fixed subset
//! (STORE only, one fixed DOS timestamp, "version made by" `0x031E`, permission-only external
//! attributes, the Info-ZIP Unicode Path field on non-ASCII names, no data descriptors, no
//! extended-timestamp fields). The `zip` crate writes its own version numbers and extra fields and
//! does not let a caller set them all, so matching the reference to the byte with it is not
//! possible; this writer is small and every byte it emits is covered by the parity test.
//!
//! Entry order (spec 4.1) is decided in [`ArchiveBuilder::from_package_items`]: items are stably
//! sorted with ICU root collation (JavaScript `localeCompare`), every ancestor directory gets an
//! entry right before its first descendant, and re-adding a path keeps its first position.
//!
//! Nothing is written before [`plan_layout`] has passed every entry: each name against git's path
//! rules ([`crate::pathcheck`]: no published zip holds an entry a git checkout would refuse), and
//! each field against its limit (names of 16 bits, at most [`MAX_ENTRIES`] entries, sizes and
//! offsets of 32 bits). ZIP64 is not written, as the reference's JSZip does not, so an archive
//! over a limit is a typed [`ArchiveError`], never a corrupt file.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, LazyLock};

use icu_collator::options::CollatorOptions;
use icu_collator::{CollatorBorrowed, CollatorPreferences};
use sha1::Digest as _;

use crate::pathcheck::{self, PathError};

/// Unix mode of directories the writer creates for ancestors.
pub const DIR_MODE: u32 = 0o775;
/// Unix mode of configured empty directories.
pub const EMPTY_DIR_MODE: u32 = 0o755;
/// Unix mode of regular files.
pub const FILE_MODE: u32 = 0o644;
/// Unix mode of files whose git mode is 100755.
pub const EXECUTABLE_MODE: u32 = 0o755;

/// DOS time of 22:02:22 (the reference's fixed mtime 2022-02-22 22:02:22 UTC).
const DOS_TIME: u16 = (22 << 11) | (2 << 5) | (22 / 2);
/// DOS date of 2022-02-22.
const DOS_DATE: u16 = ((2022 - 1980) << 9) | (2 << 5) | 22;
const VERSION_NEEDED: u16 = 10;
const VERSION_MADE_BY: u16 = 0x031E;
const FLAG_UTF8: u16 = 0x0800;
const UNICODE_PATH_EXTRA_ID: u16 = 0x7075;
const LOCAL_HEADER_SIGNATURE: [u8; 4] = [0x50, 0x4B, 0x03, 0x04];
const CENTRAL_HEADER_SIGNATURE: [u8; 4] = [0x50, 0x4B, 0x01, 0x02];
const END_RECORD_SIGNATURE: [u8; 4] = [0x50, 0x4B, 0x05, 0x06];
const LOCAL_HEADER_BYTES: u64 = 30;
const CENTRAL_HEADER_BYTES: u64 = 46;
const END_RECORD_BYTES: u64 = 22;
/// Bytes of the Unicode Path field besides the name it repeats (id, length, version, crc).
const UNICODE_PATH_FIXED: usize = 9;

/// The largest value of a 16-bit length field (name, extra field).
const MAX_FIELD_16: usize = 0xFFFF;
/// The longest non-ASCII name: its Unicode Path extra field repeats it within 16 bits.
const MAX_UNICODE_NAME: usize = MAX_FIELD_16 - UNICODE_PATH_FIXED;
/// The most entries: the all-ones count 0xFFFF tells readers to look for a ZIP64 record, which
/// this writer (like the reference's JSZip) never writes, so it is not used.
pub const MAX_ENTRIES: u64 = 0xFFFE;
/// The largest size or offset, for the same reason one below the all-ones 0xFFFFFFFF.
pub const MAX_FIELD_32: u64 = 0xFFFF_FFFE;

/// An archive that cannot be written. Only [`ArchiveError::Io`] may pass on another try; the
/// others fail the same way every time, and nothing has been written when they are returned.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// An entry name git's path rules refuse (see [`crate::pathcheck`]).
    #[error("archive entry {0}; nothing is written")]
    UnsafeName(#[from] PathError),
    /// A name longer than its 16-bit length field (or, non-ASCII, its Unicode Path field) holds.
    #[error(
        "zip format limit: an entry name of {bytes} bytes ({name}), over the {limit} bytes a zip entry name can have; nothing is written"
    )]
    NameTooLong {
        /// The name as shown in reports (cut).
        name: String,
        /// Its length in bytes.
        bytes: usize,
        /// The limit for this name.
        limit: usize,
    },
    /// More entries than the 16-bit count holds.
    #[error(
        "zip format limit: {count} entries, over the {MAX_ENTRIES} a zip archive can hold without ZIP64 (not written, as the reference's JSZip does not); nothing is written"
    )]
    TooManyEntries {
        /// The number of entries.
        count: usize,
    },
    /// A file larger than a 32-bit size field holds.
    #[error(
        "zip format limit: entry {name} is {bytes} bytes, over the {MAX_FIELD_32} bytes a zip entry can have without ZIP64 (not written, as the reference's JSZip does not); nothing is written"
    )]
    EntryTooLarge {
        /// The name as shown in reports (cut).
        name: String,
        /// Its size.
        bytes: u64,
    },
    /// Something would start past what a 32-bit offset field holds.
    #[error(
        "zip format limit: {what} would start at byte {offset}, past the {MAX_FIELD_32} a zip offset can be without ZIP64 (not written, as the reference's JSZip does not); nothing is written"
    )]
    OffsetTooLarge {
        /// What would start there.
        what: String,
        /// Where.
        offset: u64,
    },
    /// A central directory larger than its 32-bit size field holds.
    #[error(
        "zip format limit: the central directory would be {bytes} bytes, over the {MAX_FIELD_32} bytes it can have without ZIP64; nothing is written"
    )]
    CentralDirectoryTooLarge {
        /// Its size.
        bytes: u64,
    },
    /// Writing failed.
    #[error("cannot write archive: {0}")]
    Io(#[from] io::Error),
}

impl ArchiveError {
    /// Whether another try may succeed: only I/O errors; names and limits are facts of the content.
    pub fn is_transient(&self) -> bool {
        matches!(self, ArchiveError::Io(_))
    }
}

/// The ICU root collator that JavaScript's `localeCompare` uses under `C`/`en-US` locales.
static COLLATOR: LazyLock<CollatorBorrowed<'static>> = LazyLock::new(|| {
    CollatorBorrowed::try_new(CollatorPreferences::default(), CollatorOptions::default())
        .expect("ICU root collation data is compiled in")
});

/// Compares two paths as JavaScript's `a.localeCompare(b)` does (ICU root, tertiary strength).
pub fn locale_compare(a: &str, b: &str) -> std::cmp::Ordering {
    COLLATOR.compare(a, b)
}

/// What a package archive is assembled from, before ordering.
#[derive(Debug, Clone)]
pub enum PackageItem {
    /// A file at a package-relative path.
    File {
        /// Package-relative path with `/` separators.
        path: String,
        /// The bytes to store.
        data: Content,
        /// Unix permission bits.
        mode: u32,
    },
    /// A configured empty directory (`emptyDirsToAdd`). It sorts by the path as configured
    /// (with or without a trailing slash, as the reference does) and is named `path/`.
    EmptyDir {
        /// Package-relative path as configured.
        path: String,
    },
}

impl PackageItem {
    fn sort_key(&self) -> &str {
        match self {
            PackageItem::File { path, .. } | PackageItem::EmptyDir { path } => path,
        }
    }
}

/// A file's bytes with their CRC-32, computed once: a blob that many archives share is summed once.
#[derive(Debug, Clone)]
pub struct Content {
    bytes: Arc<[u8]>,
    crc: u32,
}

impl Content {
    /// The bytes, summed.
    pub fn new(bytes: Arc<[u8]>) -> Content {
        let crc = if bytes.is_empty() { 0 } else { crc32fast::hash(&bytes) };
        Content { bytes, crc }
    }

    /// The CRC-32 the zip entry records.
    pub fn crc(&self) -> u32 {
        self.crc
    }
}

impl std::ops::Deref for Content {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl From<Arc<[u8]>> for Content {
    fn from(bytes: Arc<[u8]>) -> Content {
        Content::new(bytes)
    }
}

impl From<Vec<u8>> for Content {
    fn from(bytes: Vec<u8>) -> Content {
        Content::new(Arc::from(bytes))
    }
}

impl From<&[u8]> for Content {
    fn from(bytes: &[u8]) -> Content {
        Content::new(Arc::from(bytes))
    }
}

/// One entry of the archive.
#[derive(Debug, Clone)]
struct Entry {
    /// Entry name; directories end in `/`.
    name: String,
    /// Unix permission bits (no file-type bits, as JSZip writes them).
    mode: u32,
    /// `None` for directories.
    data: Option<Content>,
}

/// An ordered set of zip entries with JSZip's insertion semantics.
#[derive(Debug, Default, Clone)]
pub struct ArchiveBuilder {
    entries: Vec<Entry>,
    positions: HashMap<String, usize>,
}

/// Size and digests of a written archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDigest {
    /// Total number of bytes written.
    pub size: u64,
    /// Lower-case hex SHA-1 of the archive bytes (Composer's `shasum`).
    pub sha1: String,
    /// Lower-case hex SHA-256 of the archive bytes.
    pub sha256: String,
}

impl ArchiveBuilder {
    /// An empty archive.
    pub fn new() -> Self {
        Self::default()
    }

    /// Orders package items as the reference does (spec 4.1): stable ICU sort, ancestor directory
    /// entries before their first descendant, re-added paths keep their first position.
    pub fn from_package_items(mut items: Vec<PackageItem>) -> Self {
        items.sort_by(|a, b| locale_compare(a.sort_key(), b.sort_key()));
        let mut builder = ArchiveBuilder::new();
        for item in items {
            let path = item.sort_key();
            let mut end = 0;
            while let Some(offset) = path[end..].find('/') {
                end += offset + 1;
                builder.add_dir(&path[..end], DIR_MODE);
            }
            match item {
                PackageItem::File { path, data, mode } => builder.add_file(&path, data, mode),
                PackageItem::EmptyDir { path } => {
                    builder.add_dir(&format!("{}/", path.trim_end_matches('/')), EMPTY_DIR_MODE)
                }
            }
        }
        builder
    }

    /// Adds a file, or replaces the content and mode of an existing entry in place.
    pub fn add_file(&mut self, name: &str, data: impl Into<Content>, mode: u32) {
        self.put(Entry { name: name.to_owned(), mode, data: Some(data.into()) });
    }

    /// Adds a directory entry (`name` ends in `/`), or updates the mode of an existing one.
    pub fn add_dir(&mut self, name: &str, mode: u32) {
        debug_assert!(name.ends_with('/'));
        self.put(Entry { name: name.to_owned(), mode, data: None });
    }

    fn put(&mut self, entry: Entry) {
        match self.positions.get(&entry.name) {
            Some(&index) => self.entries[index] = entry,
            None => {
                self.positions.insert(entry.name.clone(), self.entries.len());
                self.entries.push(entry);
            }
        }
    }

    /// Entry names in output order.
    pub fn names(&self) -> Vec<&str> {
        self.ordered().map(|e| e.name.as_str()).collect()
    }

    /// Output order: JSZip keeps entries in a plain JavaScript object, so root-level names that are
    /// canonical array indices come first in numeric order, then the rest in insertion order.
    fn ordered(&self) -> impl Iterator<Item = &Entry> {
        let mut indexed: Vec<(u32, &Entry)> =
            self.entries.iter().filter_map(|e| crate::json::array_index(&e.name).map(|i| (i, e))).collect();
        indexed.sort_by_key(|(i, _)| *i);
        let rest = self.entries.iter().filter(|e| crate::json::array_index(&e.name).is_none());
        indexed.into_iter().map(|(_, e)| e).chain(rest)
    }

    /// Checks every name against git's path rules and every zip format limit, before a byte is
    /// written; the result writes the archive.
    pub fn check(&self) -> Result<CheckedArchive<'_>, ArchiveError> {
        let shapes: Vec<EntryShape<'_>> = self
            .ordered()
            .map(|entry| EntryShape {
                name: &entry.name,
                directory: entry.data.is_none(),
                data_len: entry.data.as_ref().map_or(0, |data| data.len() as u64),
            })
            .collect();
        let layout = plan_layout(&shapes)?;
        Ok(CheckedArchive { builder: self, layout })
    }

    /// Checks ([`ArchiveBuilder::check`]), then writes the archive and returns its size and digests.
    pub fn write_to<W: Write>(&self, out: W) -> Result<ArchiveDigest, ArchiveError> {
        self.check()?.write_to(out)
    }
}

/// An archive whose names and layout passed every check: writing it can only fail on I/O.
#[derive(Debug)]
pub struct CheckedArchive<'a> {
    builder: &'a ArchiveBuilder,
    layout: Layout,
}

impl CheckedArchive<'_> {
    /// Where everything goes and the total size.
    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// Writes the archive and returns its size and digests.
    pub fn write_to<W: Write>(&self, out: W) -> Result<ArchiveDigest, ArchiveError> {
        let mut out = HashingWriter::new(out);
        let mut central = Vec::with_capacity(usize::try_from(self.layout.central_size).unwrap_or(0));
        for entry in self.builder.ordered() {
            write_entry(&mut out, &mut central, entry)?;
        }
        debug_assert_eq!(out.written, self.layout.central_offset);
        out.write_all(&central)?;
        out.write_all(&end_record(&self.layout))?;
        let digest = out.finish()?;
        debug_assert_eq!(digest.size, self.layout.size);
        Ok(digest)
    }
}

/// Writes one local header and its data, and appends the entry's central directory record.
/// [`plan_layout`] has checked that every value fits its field.
fn write_entry<W: Write>(out: &mut HashingWriter<W>, central: &mut Vec<u8>, entry: &Entry) -> io::Result<()> {
    let offset = out.written as u32;
    let data: &[u8] = entry.data.as_deref().unwrap_or(&[]);
    let crc = entry.data.as_ref().map_or(0, Content::crc);
    let name = entry.name.as_bytes();
    let unicode = !entry.name.is_ascii();
    let extra = if unicode { unicode_path_extra(name) } else { Vec::new() };
    let flags = if unicode { FLAG_UTF8 } else { 0 };
    let external = (entry.mode << 16) | if entry.data.is_none() { 0x10 } else { 0 };

    // The 26 bytes shared by the local and the central header (version needed .. extra length).
    let mut common = Vec::with_capacity(26);
    common.extend_from_slice(&VERSION_NEEDED.to_le_bytes());
    common.extend_from_slice(&flags.to_le_bytes());
    common.extend_from_slice(&0u16.to_le_bytes()); // method: STORE
    common.extend_from_slice(&DOS_TIME.to_le_bytes());
    common.extend_from_slice(&DOS_DATE.to_le_bytes());
    common.extend_from_slice(&crc.to_le_bytes());
    common.extend_from_slice(&(data.len() as u32).to_le_bytes());
    common.extend_from_slice(&(data.len() as u32).to_le_bytes());
    common.extend_from_slice(&(name.len() as u16).to_le_bytes());
    common.extend_from_slice(&(extra.len() as u16).to_le_bytes());

    out.write_all(&LOCAL_HEADER_SIGNATURE)?;
    out.write_all(&common)?;
    out.write_all(name)?;
    out.write_all(&extra)?;
    out.write_all(data)?;

    central.extend_from_slice(&CENTRAL_HEADER_SIGNATURE);
    central.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
    central.extend_from_slice(&common);
    central.extend_from_slice(&0u16.to_le_bytes()); // comment length
    central.extend_from_slice(&0u16.to_le_bytes()); // disk number
    central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
    central.extend_from_slice(&external.to_le_bytes());
    central.extend_from_slice(&offset.to_le_bytes());
    central.extend_from_slice(name);
    central.extend_from_slice(&extra);
    Ok(())
}

/// The end of central directory record.
fn end_record(layout: &Layout) -> Vec<u8> {
    let entries = layout.entries as u16;
    let mut end = Vec::with_capacity(END_RECORD_BYTES as usize);
    end.extend_from_slice(&END_RECORD_SIGNATURE);
    end.extend_from_slice(&0u16.to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    end.extend_from_slice(&entries.to_le_bytes());
    end.extend_from_slice(&entries.to_le_bytes());
    end.extend_from_slice(&(layout.central_size as u32).to_le_bytes());
    end.extend_from_slice(&(layout.central_offset as u32).to_le_bytes());
    end.extend_from_slice(&0u16.to_le_bytes());
    end
}

/// What [`plan_layout`] needs to know of one entry.
#[derive(Debug, Clone, Copy)]
pub struct EntryShape<'a> {
    /// Entry name; folders end in `/`.
    pub name: &'a str,
    /// A folder entry.
    pub directory: bool,
    /// Bytes of content (0 for folders).
    pub data_len: u64,
}

/// Where an archive's parts go, computed before anything is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Number of entries.
    pub entries: u64,
    /// Offset of the central directory (the bytes of all local headers and data).
    pub central_offset: u64,
    /// Bytes of the central directory.
    pub central_size: u64,
    /// Total archive bytes.
    pub size: u64,
}

/// Checks entries, in output order, against git's path rules and every limit of the zip format
/// without ZIP64, and computes the layout. Pure: limits are tested without writing 4 GiB.
pub fn plan_layout(entries: &[EntryShape<'_>]) -> Result<Layout, ArchiveError> {
    if entries.len() as u64 > MAX_ENTRIES {
        return Err(ArchiveError::TooManyEntries { count: entries.len() });
    }
    let mut offset: u64 = 0;
    let mut central_size: u64 = 0;
    for entry in entries {
        pathcheck::check_entry_name(entry.name, entry.directory)?;
        let name_len = entry.name.len();
        let (extra_len, limit) =
            if entry.name.is_ascii() { (0, MAX_FIELD_16) } else { (UNICODE_PATH_FIXED + name_len, MAX_UNICODE_NAME) };
        if name_len > limit {
            return Err(ArchiveError::NameTooLong { name: pathcheck::shown(entry.name), bytes: name_len, limit });
        }
        if entry.data_len > MAX_FIELD_32 {
            return Err(ArchiveError::EntryTooLarge { name: pathcheck::shown(entry.name), bytes: entry.data_len });
        }
        if offset > MAX_FIELD_32 {
            let what = format!("the local header of {}", pathcheck::shown(entry.name));
            return Err(ArchiveError::OffsetTooLarge { what, offset });
        }
        let header = (name_len + extra_len) as u64;
        offset += LOCAL_HEADER_BYTES + header + entry.data_len;
        central_size += CENTRAL_HEADER_BYTES + header;
    }
    if offset > MAX_FIELD_32 {
        return Err(ArchiveError::OffsetTooLarge { what: "the central directory".to_owned(), offset });
    }
    if central_size > MAX_FIELD_32 {
        return Err(ArchiveError::CentralDirectoryTooLarge { bytes: central_size });
    }
    Ok(Layout {
        entries: entries.len() as u64,
        central_offset: offset,
        central_size,
        size: offset + central_size + END_RECORD_BYTES,
    })
}

/// The Info-ZIP Unicode Path extra field JSZip adds for non-ASCII names.
fn unicode_path_extra(name: &[u8]) -> Vec<u8> {
    let mut field = Vec::with_capacity(9 + name.len());
    field.extend_from_slice(&UNICODE_PATH_EXTRA_ID.to_le_bytes());
    field.extend_from_slice(&((5 + name.len()) as u16).to_le_bytes());
    field.push(1);
    field.extend_from_slice(&crc32fast::hash(name).to_le_bytes());
    field.extend_from_slice(name);
    field
}

/// Size, SHA-1 and SHA-256 of a file in one read (archives made elsewhere: prebuilt, adopted).
pub fn digest_file(path: &std::path::Path) -> io::Result<ArchiveDigest> {
    let mut file = std::fs::File::open(path)?;
    let mut out = HashingWriter::new(io::sink());
    io::copy(&mut file, &mut out)?;
    out.finish()
}

/// Counts and hashes everything written through it.
struct HashingWriter<W> {
    inner: W,
    written: u64,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        Self { inner, written: 0, sha1: sha1::Sha1::new(), sha256: sha2::Sha256::new() }
    }

    fn finish(mut self) -> io::Result<ArchiveDigest> {
        self.inner.flush()?;
        Ok(ArchiveDigest {
            size: self.written,
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
        })
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        self.sha1.update(&buf[..n]);
        self.sha256.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> PackageItem {
        PackageItem::File { path: path.to_owned(), data: Content::from(&b"x"[..]), mode: FILE_MODE }
    }

    fn order(paths: &[&str]) -> Vec<String> {
        let items = paths.iter().map(|p| file(p)).collect();
        ArchiveBuilder::from_package_items(items).names().into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn icu_root_order_not_byte_order() {
        let names = order(&["Foo.php", "Foo_Bar.php", "FooBar.php", "Foo1.php", "Foo-Bar.php", "Foo/Baz.php"]);
        assert_eq!(names, ["Foo_Bar.php", "Foo-Bar.php", "Foo.php", "Foo/", "Foo/Baz.php", "Foo1.php", "FooBar.php"]);
        let names = order(&["README.md", "ReadMe.md", "readme.md", "Read Me.txt"]);
        assert_eq!(names, ["Read Me.txt", "readme.md", "ReadMe.md", "README.md"]);
        assert_eq!(order(&["a2.txt", "a10.txt", "a1.txt"]), ["a1.txt", "a10.txt", "a2.txt"]);
    }

    #[test]
    fn case_variants_interleave_and_keep_first_directory_position() {
        let names = order(&["Api/Data/I.php", "api/notes.txt", "Api/Repo.php"]);
        assert_eq!(names, ["Api/", "Api/Data/", "Api/Data/I.php", "api/", "api/notes.txt", "Api/Repo.php"]);
    }

    #[test]
    fn array_index_names_at_root_come_first() {
        assert_eq!(order(&["a.txt", "1000", "404", "0404"]), ["404", "1000", "0404", "a.txt"]);
    }

    #[test]
    fn empty_dir_becomes_775_when_something_lives_below() {
        let items = vec![
            PackageItem::EmptyDir { path: "lib/x".to_owned() },
            PackageItem::EmptyDir { path: "pub/y".to_owned() },
            file("lib/x/a.php"),
        ];
        let builder = ArchiveBuilder::from_package_items(items);
        let modes: Vec<(&str, u32)> = builder.ordered().map(|e| (e.name.as_str(), e.mode)).collect();
        assert_eq!(
            modes,
            [("lib/", 0o775), ("lib/x/", 0o775), ("lib/x/a.php", 0o644), ("pub/", 0o775), ("pub/y/", 0o755)]
        );
    }

    #[test]
    fn record_layout_is_fixed() {
        let mut builder = ArchiveBuilder::new();
        builder.add_file("composer.json", Arc::from(&b"{}"[..]), FILE_MODE);
        let mut bytes = Vec::new();
        let digest = builder.write_to(&mut bytes).unwrap();
        assert_eq!(digest.size, bytes.len() as u64);
        // local header: signature, version 10, flags 0, STORE, time B04B, date 5456
        assert_eq!(&bytes[..14], &[0x50, 0x4B, 3, 4, 10, 0, 0, 0, 0, 0, 0x4B, 0xB0, 0x56, 0x54]);
        let central = 30 + 13 + 2;
        assert_eq!(&bytes[central..central + 6], &[0x50, 0x4B, 1, 2, 0x1E, 0x03]);
        assert_eq!(&bytes[central + 38..central + 42], &0x01A4_0000u32.to_le_bytes());
        assert_eq!(bytes.len(), central + 46 + 13 + 22);
    }

    #[test]
    fn non_ascii_names_get_the_unicode_path_field() {
        let mut builder = ArchiveBuilder::new();
        builder.add_file("über.txt", Arc::from(&b""[..]), FILE_MODE);
        let mut bytes = Vec::new();
        builder.write_to(&mut bytes).unwrap();
        assert_eq!(u16::from_le_bytes([bytes[6], bytes[7]]), FLAG_UTF8);
        let name_len = "über.txt".len();
        assert_eq!(u16::from_le_bytes([bytes[28], bytes[29]]) as usize, 9 + name_len);
        assert_eq!(&bytes[30 + name_len..32 + name_len], &[0x75, 0x70]);
    }

    fn shape(name: &str, data_len: u64) -> EntryShape<'_> {
        EntryShape { name, directory: name.ends_with('/'), data_len }
    }

    #[test]
    fn entry_count_limit_is_checked_before_writing() {
        let names: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("f{i}")).collect();
        let shapes: Vec<EntryShape<'_>> = names.iter().map(|n| shape(n, 1)).collect();
        assert!(plan_layout(&shapes[..MAX_ENTRIES as usize]).is_ok());
        let error = plan_layout(&shapes).unwrap_err();
        assert!(matches!(error, ArchiveError::TooManyEntries { count: 65535 }), "{error}");
        assert!(error.to_string().contains("65535 entries, over the 65534"), "{error}");
        assert!(!error.is_transient());

        // The builder refuses before a byte is written (the count used to wrap modulo 65536).
        let items = names.iter().map(|n| file(n)).collect();
        let mut bytes = Vec::new();
        assert!(ArchiveBuilder::from_package_items(items).write_to(&mut bytes).is_err());
        assert!(bytes.is_empty());
    }

    #[test]
    fn name_length_limits_count_the_unicode_path_field() {
        let ascii = "a".repeat(65_535);
        assert!(plan_layout(&[shape(&ascii, 0)]).is_ok());
        let ascii = "a".repeat(65_536);
        let error = plan_layout(&[shape(&ascii, 0)]).unwrap_err();
        assert!(matches!(error, ArchiveError::NameTooLong { bytes: 65_536, limit: 65_535, .. }), "{error}");
        assert!(error.to_string().contains("an entry name of 65536 bytes ('aaa"), "{error}");
        assert!(error.to_string().contains("over the 65535 bytes a zip entry name can have"), "{error}");
        // A non-ASCII name is repeated in its Unicode Path field: 9 + name bytes within 16 bits.
        let unicode = format!("ü{}", "a".repeat(65_524));
        assert_eq!(unicode.len(), 65_526);
        assert!(plan_layout(&[shape(&unicode, 0)]).is_ok());
        let unicode = format!("{unicode}a");
        let error = plan_layout(&[shape(&unicode, 0)]).unwrap_err();
        assert!(matches!(error, ArchiveError::NameTooLong { limit: 65_526, .. }), "{error}");
    }

    #[test]
    fn sizes_and_offsets_stay_below_4_gib() {
        const GIB: u64 = 1 << 30;
        let error = plan_layout(&[shape("big", MAX_FIELD_32 + 1)]).unwrap_err();
        assert!(matches!(error, ArchiveError::EntryTooLarge { bytes: 0xFFFF_FFFF, .. }), "{error}");
        // The largest entry fits, but then the central directory starts past the limit.
        let error = plan_layout(&[shape("big", MAX_FIELD_32)]).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::OffsetTooLarge { what, .. } if what == "the central directory"),
            "{error}"
        );
        // A local header past the limit.
        let error = plan_layout(&[shape("a", 3 * GIB), shape("b", 2 * GIB), shape("c", 1)]).unwrap_err();
        assert!(
            matches!(&error, ArchiveError::OffsetTooLarge { what, offset } if what.contains("'c'") && *offset > 5 * GIB),
            "{error}"
        );
        assert!(error.to_string().contains("without ZIP64"), "{error}");
        // Just inside: 3 GiB + 1 GiB minus headers.
        let layout = plan_layout(&[shape("a", 3 * GIB), shape("b", GIB - 200)]).unwrap();
        assert_eq!(layout.central_offset, 4 * GIB - 200 + 62);
        assert_eq!(layout.size, layout.central_offset + 2 * 47 + 22);
    }

    #[test]
    fn names_git_refuses_are_never_written() {
        for path in ["/abs", "a/../../y", "..", "x/.GIT/config", "a\\b", "a//b", ".git", "git~1/x"] {
            let builder = ArchiveBuilder::from_package_items(vec![file("ok.txt"), file(path)]);
            let mut bytes = Vec::new();
            let error = builder.write_to(&mut bytes).unwrap_err();
            assert!(matches!(error, ArchiveError::UnsafeName(_)), "{path:?}: {error}");
            assert!(bytes.is_empty(), "{path:?}");
        }
        let builder = ArchiveBuilder::from_package_items(vec![PackageItem::EmptyDir { path: String::new() }]);
        assert!(matches!(builder.check(), Err(ArchiveError::UnsafeName(_))));
        let builder =
            ArchiveBuilder::from_package_items(vec![file(".github/workflows/ci.yml"), file(".gitattributes")]);
        assert!(builder.check().is_ok());
    }

    #[test]
    fn the_layout_is_what_is_written() {
        let builder = ArchiveBuilder::from_package_items(vec![file("a/b.php"), file("über/c.txt"), file("d")]);
        let checked = builder.check().unwrap();
        let mut bytes = Vec::new();
        let digest = checked.write_to(&mut bytes).unwrap();
        assert_eq!(checked.layout().size, digest.size);
        assert_eq!(checked.layout().entries, 5);
        let end = &bytes[bytes.len() - 22..];
        assert_eq!(u32::from_le_bytes(end[16..20].try_into().unwrap()) as u64, checked.layout().central_offset);
    }
}
