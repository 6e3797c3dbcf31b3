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

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::{Arc, LazyLock};

use icu_collator::options::CollatorOptions;
use icu_collator::{CollatorBorrowed, CollatorPreferences};
use sha1::Digest as _;

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
        data: Arc<[u8]>,
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

/// One entry of the archive.
#[derive(Debug, Clone)]
struct Entry {
    /// Entry name; directories end in `/`.
    name: String,
    /// Unix permission bits (no file-type bits, as JSZip writes them).
    mode: u32,
    /// `None` for directories.
    data: Option<Arc<[u8]>>,
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
    pub fn add_file(&mut self, name: &str, data: Arc<[u8]>, mode: u32) {
        self.put(Entry { name: name.to_owned(), mode, data: Some(data) });
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

    /// Writes the archive and returns its size and digests.
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<ArchiveDigest> {
        let mut out = HashingWriter::new(out);
        let mut central = Vec::with_capacity(self.entries.len() * 80);
        let mut count: u64 = 0;
        for entry in self.ordered() {
            let offset = out.written;
            if offset > u64::from(u32::MAX) {
                return Err(io::Error::other("archive exceeds 4 GiB; ZIP64 is not written (as the reference)"));
            }
            let data: &[u8] = entry.data.as_deref().unwrap_or(&[]);
            if data.len() as u64 > u64::from(u32::MAX) {
                return Err(io::Error::other(format!("{} exceeds 4 GiB", entry.name)));
            }
            let crc = if data.is_empty() { 0 } else { crc32fast::hash(data) };
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

            out.write_all(&[0x50, 0x4B, 0x03, 0x04])?;
            out.write_all(&common)?;
            out.write_all(name)?;
            out.write_all(&extra)?;
            out.write_all(data)?;

            central.extend_from_slice(&[0x50, 0x4B, 0x01, 0x02]);
            central.extend_from_slice(&VERSION_MADE_BY.to_le_bytes());
            central.extend_from_slice(&common);
            central.extend_from_slice(&0u16.to_le_bytes()); // comment length
            central.extend_from_slice(&0u16.to_le_bytes()); // disk number
            central.extend_from_slice(&0u16.to_le_bytes()); // internal attributes
            central.extend_from_slice(&external.to_le_bytes());
            central.extend_from_slice(&(offset as u32).to_le_bytes());
            central.extend_from_slice(name);
            central.extend_from_slice(&extra);
            count += 1;
        }
        let central_offset = out.written;
        out.write_all(&central)?;
        let entries = (count % 65536) as u16;
        let mut end = Vec::with_capacity(22);
        end.extend_from_slice(&[0x50, 0x4B, 0x05, 0x06]);
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        end.extend_from_slice(&entries.to_le_bytes());
        end.extend_from_slice(&entries.to_le_bytes());
        end.extend_from_slice(&(central.len() as u32).to_le_bytes());
        end.extend_from_slice(&(central_offset as u32).to_le_bytes());
        end.extend_from_slice(&0u16.to_le_bytes());
        out.write_all(&end)?;
        out.finish()
    }
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
        PackageItem::File { path: path.to_owned(), data: Arc::from(&b"x"[..]), mode: FILE_MODE }
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
}
