//! File parity of Composer dist archives: reads an untrusted dist zip into what Composer would
//! install from it (paths, kinds, permission modes, SHA-256 of every file, the root composer.json
//! parsed) and compares two such archives by content, not by zip bytes. It backs
//! `coordinator check --against URL`, which compares every name@version two repositories both
//! publish (our Mage-OS mirror against Magento's own repository, say).
//!
//! What does not count, because Composer's install does not keep it: entry order, timestamps,
//! compression methods, one folder all entries sit under (GitHub archives; Composer installs its
//! contents), explicit entries for non-empty folders (extraction creates parents anyway), and the
//! key order of composer.json (compared as JSON). What the reader refuses, as a typed
//! [`ContentsError`] naming the entry: names that are empty, absolute, step out with `..`, hold a
//! backslash or a NUL; duplicates; and archives over the [`ContentLimits`], whose byte limit
//! counts the bytes actually decompressed, never the sizes the headers declare.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest as _, Sha256};
use shared::identity::shown;
use zip::read::ZipFileEntry;
use zip::result::ZipError;
use zip::{System, ZipArchive};

/// Bytes read from an entry at a time.
const BUFFER_SIZE: usize = 64 * 1024;
/// The file type bits of a unix mode.
const FILE_TYPE_MASK: u32 = 0o170_000;
const TYPE_DIRECTORY: u32 = 0o040_000;
const TYPE_FILE: u32 = 0o100_000;
const TYPE_SYMLINK: u32 = 0o120_000;
/// The permission bits of a unix mode (with setuid, setgid and sticky), the ones compared.
const PERMISSION_MASK: u32 = 0o7777;
/// MS-DOS attribute: a directory.
const DOS_DIRECTORY: u32 = 0x10;
/// The file Composer leaves out when it looks for a single top folder.
const DS_STORE: &str = ".DS_Store";
/// Where composer.json sits once a top folder is stripped.
const COMPOSER_JSON: &str = "composer.json";
/// Characters of a JSON value shown in one summary line.
const SHOWN_VALUE_CHARS: usize = 200;

/// Bounds on one untrusted archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentLimits {
    /// Entries in the central directory.
    pub max_entries: usize,
    /// Uncompressed bytes actually read, over all entries.
    pub max_total_bytes: u64,
    /// Bytes of one entry name.
    pub max_name_len: usize,
    /// Bytes of the root composer.json, the one entry kept in memory.
    pub max_composer_json_bytes: u64,
}

impl Default for ContentLimits {
    fn default() -> Self {
        Self { max_entries: 200_000, max_total_bytes: 4 << 30, max_name_len: 4096, max_composer_json_bytes: 16 << 20 }
    }
}

/// What an entry is, by its name's trailing `/` and its unix mode's file type bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A regular file (also an entry without a file type).
    File,
    /// A directory; only empty ones are kept.
    Directory,
    /// A symbolic link; its content is the link target.
    Symlink,
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File => "file",
            Self::Directory => "directory",
            Self::Symlink => "symlink",
        })
    }
}

/// One installed path of an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File, directory or symlink.
    pub kind: EntryKind,
    /// The unix mode (file type and permission bits), `None` when the archive carries none.
    pub mode: Option<u32>,
    /// Uncompressed bytes read (a symlink's target length; 0 for a directory).
    pub size: u64,
    /// SHA-256 of the uncompressed bytes (of nothing for a directory).
    pub sha256: [u8; 32],
}

impl Entry {
    /// The SHA-256 in lowercase hex.
    pub fn sha256_hex(&self) -> String {
        hex::encode(self.sha256)
    }
}

/// What Composer would install from one dist archive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ArchiveContents {
    /// Every file and symlink and every empty directory, by normalized path (`/`-separated,
    /// relative, with a common top folder stripped).
    pub entries: BTreeMap<String, Entry>,
    /// The single top folder every entry sat under, which was stripped.
    pub stripped_prefix: Option<String>,
    /// The root composer.json: `Ok` parsed (key order kept), `Err` the JSON error; `None` when
    /// the archive has none.
    pub composer_json: Option<Result<Value, String>>,
    /// Entries left out because Composer does not install them (a `.DS_Store` beside the top
    /// folder), by their path in the archive.
    pub ignored: Vec<String>,
}

impl ArchiveContents {
    /// Whether any entry carries a unix mode.
    pub fn carries_modes(&self) -> bool {
        self.entries.values().any(|entry| entry.mode.is_some())
    }
}

/// Why an archive was refused. Entry names are shown escaped and shortened.
#[derive(Debug, thiserror::Error)]
pub enum ContentsError {
    /// The archive file could not be opened.
    #[error("{}: {source}", path.display())]
    Open {
        /// The archive.
        path: PathBuf,
        /// What the file system said.
        source: io::Error,
    },
    /// The archive is not a zip the reader understands.
    #[error("{}: not a readable zip archive: {source}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What the zip reader said.
        source: ZipError,
    },
    /// The central directory lists more entries than allowed.
    #[error("the archive has {count} entries, over the limit of {limit}")]
    TooManyEntries {
        /// Entries listed.
        count: usize,
        /// [`ContentLimits::max_entries`].
        limit: usize,
    },
    /// An entry name is longer than allowed.
    #[error("entry \"{name}\": a name of {len} bytes, over the limit of {limit}")]
    NameTooLong {
        /// The entry (shortened).
        name: String,
        /// Its length in bytes.
        len: usize,
        /// [`ContentLimits::max_name_len`].
        limit: usize,
    },
    /// An entry name can not be decoded.
    #[error("entry \"{name}\": undecodable name: {source}")]
    UndecodableName {
        /// The entry, lossily decoded.
        name: String,
        /// What the zip reader said.
        source: ZipError,
    },
    /// An entry name is nothing once `.` and empty segments are dropped.
    #[error("entry \"{name}\": an empty path")]
    EmptyName {
        /// The entry.
        name: String,
    },
    /// An entry name starts at the root (`/`) or a drive (`C:`).
    #[error("entry \"{name}\": an absolute path")]
    AbsoluteName {
        /// The entry.
        name: String,
    },
    /// An entry name has a `..` segment.
    #[error("entry \"{name}\": a '..' segment, which leaves the package folder")]
    ParentSegment {
        /// The entry.
        name: String,
    },
    /// An entry name holds a backslash (a separator on Windows).
    #[error("entry \"{name}\": a backslash in the name")]
    Backslash {
        /// The entry.
        name: String,
    },
    /// An entry name holds a NUL byte.
    #[error("entry \"{name}\": a NUL byte in the name")]
    Nul {
        /// The entry.
        name: String,
    },
    /// Two entries have the same path (as stored, or once normalized).
    #[error("entry \"{name}\": more than one entry for this path")]
    Duplicate {
        /// The path.
        name: String,
    },
    /// An entry sits below a path that is a file or a symlink.
    #[error("entry \"{name}\": below \"{parent}\", which is not a directory")]
    ParentNotDirectory {
        /// The entry.
        name: String,
        /// The file or symlink above it.
        parent: String,
    },
    /// An entry's unix mode is a device, FIFO or socket.
    #[error("entry \"{name}\": unsupported file type (mode {mode:o})")]
    UnsupportedType {
        /// The entry.
        name: String,
        /// Its unix mode.
        mode: u32,
    },
    /// Reading this entry took the uncompressed bytes over the limit.
    #[error("entry \"{name}\": the uncompressed bytes read pass the limit of {limit}")]
    TooLarge {
        /// The entry being read.
        name: String,
        /// [`ContentLimits::max_total_bytes`].
        limit: u64,
    },
    /// The root composer.json is larger than allowed.
    #[error("entry \"{name}\": composer.json over the limit of {limit} bytes")]
    ComposerJsonTooLarge {
        /// The entry.
        name: String,
        /// [`ContentLimits::max_composer_json_bytes`].
        limit: u64,
    },
    /// An entry could not be opened (encrypted, unsupported compression, bad header).
    #[error("entry \"{name}\": {source}")]
    Entry {
        /// The entry.
        name: String,
        /// What the zip reader said.
        source: ZipError,
    },
    /// An entry's data could not be read (corrupt, bad checksum, larger than declared).
    #[error("entry \"{name}\": reading failed: {source}")]
    Read {
        /// The entry.
        name: String,
        /// What the decompressor said.
        source: io::Error,
    },
}

/// One entry as planned from the central directory, before its data is read.
struct Planned {
    index: usize,
    /// Shown name as stored, for errors.
    name: String,
    /// Normalized path, before stripping a top folder.
    path: String,
    kind: EntryKind,
    mode: Option<u32>,
}

/// The uncompressed bytes still allowed.
struct Budget {
    used: u64,
    limit: u64,
}

impl Budget {
    fn charge(&mut self, bytes: usize, name: &str) -> Result<(), ContentsError> {
        self.used = self.used.saturating_add(bytes as u64);
        if self.used > self.limit {
            return Err(ContentsError::TooLarge { name: name.to_owned(), limit: self.limit });
        }
        Ok(())
    }
}

/// Reads the dist archive at `path` within `limits`: every entry's normalized path, kind, mode,
/// size and SHA-256 (streamed), a common top folder stripped, only empty directories kept, and
/// the root composer.json parsed.
pub fn read_archive(path: &Path, limits: &ContentLimits) -> Result<ArchiveContents, ContentsError> {
    let file = File::open(path).map_err(|source| ContentsError::Open { path: path.to_owned(), source })?;
    let mut archive = ZipArchive::new(BufReader::new(file))
        .map_err(|source| ContentsError::Archive { path: path.to_owned(), source })?;
    if archive.len() > limits.max_entries {
        return Err(ContentsError::TooManyEntries { count: archive.len(), limit: limits.max_entries });
    }
    if archive.has_duplicate_names() {
        // The reader keeps one entry per stored name; find which name came twice.
        let name = duplicate_name(path, archive.central_directory_start(), limits.max_entries);
        return Err(ContentsError::Duplicate { name: name.unwrap_or_else(|| "(unknown)".to_owned()) });
    }
    let planned = plan_entries(&archive, limits)?;
    let mut contents = ArchiveContents { stripped_prefix: top_folder(&planned), ..ArchiveContents::default() };
    let mut budget = Budget { used: 0, limit: limits.max_total_bytes };
    let mut buffer = vec![0; BUFFER_SIZE];
    for plan in planned {
        let Some(installed) = installed_path(&plan, contents.stripped_prefix.as_deref()) else {
            if plan.kind != EntryKind::Directory {
                contents.ignored.push(plan.path);
            }
            continue;
        };
        let keep = installed == COMPOSER_JSON && plan.kind == EntryKind::File;
        let mut kept = keep.then(Vec::new);
        let (size, sha256) = read_entry(&mut archive, &plan, &mut budget, &mut buffer, kept.as_mut(), limits)?;
        if let Some(bytes) = kept {
            contents.composer_json = Some(serde_json::from_slice(&bytes).map_err(|error| error.to_string()));
        }
        contents.entries.insert(installed, Entry { kind: plan.kind, mode: plan.mode, size, sha256 });
    }
    drop_non_empty_directories(&mut contents.entries);
    Ok(contents)
}

/// Validates and normalizes every entry name, works out kinds and modes, and refuses
/// duplicates and entries below a file: all from the central directory, no data read yet.
fn plan_entries<R: Read + Seek>(
    archive: &ZipArchive<R>,
    limits: &ContentLimits,
) -> Result<Vec<Planned>, ContentsError> {
    let metadata = archive.metadata();
    let mut planned = Vec::with_capacity(metadata.len());
    let mut kinds = BTreeMap::new();
    for index in 0..metadata.len() {
        let entry =
            metadata.entry(index).map_err(|source| ContentsError::Entry { name: format!("#{index}"), source })?;
        let raw = entry.name().map_err(|source| ContentsError::UndecodableName {
            name: shown(&String::from_utf8_lossy(entry.name_raw())),
            source,
        })?;
        let name = shown(&raw);
        let (path, directory_marker) = normalize_name(&raw, limits.max_name_len)?;
        let mode = unix_mode(&entry);
        let dos_directory = entry.system() == System::Dos && entry.external_attributes() & DOS_DIRECTORY != 0;
        let kind = entry_kind(&name, directory_marker || dos_directory, mode)?;
        if kinds.insert(path.clone(), kind).is_some() {
            return Err(ContentsError::Duplicate { name: shown(&path) });
        }
        planned.push(Planned { index, name, path, kind, mode });
    }
    check_parents(&kinds)?;
    Ok(planned)
}

/// The normalized path of a stored name (`.` and empty segments dropped) and whether the name
/// marks a directory (a trailing `/`); refuses what could not be installed safely.
fn normalize_name(raw: &str, max_len: usize) -> Result<(String, bool), ContentsError> {
    let name = || shown(raw);
    if raw.len() > max_len {
        return Err(ContentsError::NameTooLong { name: name(), len: raw.len(), limit: max_len });
    }
    if raw.contains('\0') {
        return Err(ContentsError::Nul { name: name() });
    }
    if raw.contains('\\') {
        return Err(ContentsError::Backslash { name: name() });
    }
    let bytes = raw.as_bytes();
    if raw.starts_with('/') || (bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':') {
        return Err(ContentsError::AbsoluteName { name: name() });
    }
    let mut segments = Vec::new();
    for segment in raw.split('/') {
        match segment {
            "" | "." => {}
            ".." => return Err(ContentsError::ParentSegment { name: name() }),
            segment => segments.push(segment),
        }
    }
    if segments.is_empty() {
        return Err(ContentsError::EmptyName { name: name() });
    }
    Ok((segments.join("/"), raw.ends_with('/')))
}

/// The entry's unix mode, full (file type, setuid/setgid/sticky and permissions), when the
/// archive carries one: the upper half of the external attributes, for archives made on unix, or
/// on other systems when it holds a file type (the zip crate and 7-Zip write one on Windows).
/// Unlike the zip crate's `unix_mode()`, no mode is made up from MS-DOS attributes and the
/// special bits are kept.
fn unix_mode(entry: &ZipFileEntry<'_>) -> Option<u32> {
    let mode = entry.external_attributes() >> 16;
    let carried = match entry.system() {
        System::Unix => mode != 0,
        _ => mode & FILE_TYPE_MASK != 0,
    };
    carried.then_some(mode)
}

/// The kind: a directory when marked as one, else by the mode's file type.
fn entry_kind(name: &str, directory: bool, mode: Option<u32>) -> Result<EntryKind, ContentsError> {
    if directory {
        return Ok(EntryKind::Directory);
    }
    match mode.map_or(0, |mode| mode & FILE_TYPE_MASK) {
        0 | TYPE_FILE => Ok(EntryKind::File),
        TYPE_DIRECTORY => Ok(EntryKind::Directory),
        TYPE_SYMLINK => Ok(EntryKind::Symlink),
        _ => Err(ContentsError::UnsupportedType { name: name.to_owned(), mode: mode.unwrap_or_default() }),
    }
}

/// Refuses an entry below a path that is a file or a symlink (which extraction could not
/// create, or which would write through the link).
fn check_parents(kinds: &BTreeMap<String, EntryKind>) -> Result<(), ContentsError> {
    for path in kinds.keys() {
        for (end, _) in path.match_indices('/') {
            let parent = &path[..end];
            if kinds.get(parent).is_some_and(|kind| *kind != EntryKind::Directory) {
                return Err(ContentsError::ParentNotDirectory { name: shown(path), parent: shown(parent) });
            }
        }
    }
    Ok(())
}

/// The single top folder every entry sits under, as Composer finds it (`ArchiveDownloader`:
/// exactly one top-level item, not counting `.DS_Store`, and it is a directory).
fn top_folder(planned: &[Planned]) -> Option<String> {
    let mut top: Option<&str> = None;
    for plan in planned {
        let first = match plan.path.split_once('/') {
            Some((first, _)) => first,
            None if plan.kind == EntryKind::Directory => plan.path.as_str(),
            None if plan.path == DS_STORE => continue,
            None => return None,
        };
        match top {
            Some(top) if top != first => return None,
            _ => top = Some(first),
        }
    }
    top.map(str::to_owned)
}

/// Where an entry is installed, or `None` for the stripped top folder itself and what Composer
/// leaves beside it.
fn installed_path(plan: &Planned, prefix: Option<&str>) -> Option<String> {
    let Some(prefix) = prefix else {
        return Some(plan.path.clone());
    };
    let rest = plan.path.strip_prefix(prefix)?.strip_prefix('/')?;
    Some(rest.to_owned())
}

/// Reads one entry's data through `buffer`, counting every byte against `budget`, and returns
/// its size and SHA-256; the bytes are also kept in `kept` when given (composer.json).
fn read_entry<R: Read + Seek>(
    archive: &mut ZipArchive<R>,
    plan: &Planned,
    budget: &mut Budget,
    buffer: &mut [u8],
    mut kept: Option<&mut Vec<u8>>,
    limits: &ContentLimits,
) -> Result<(u64, [u8; 32]), ContentsError> {
    let name = &plan.name;
    let mut reader =
        archive.by_index(plan.index).map_err(|source| ContentsError::Entry { name: name.clone(), source })?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let read = match reader.read(buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(ContentsError::Read { name: name.clone(), source }),
        };
        budget.charge(read, name)?;
        size += read as u64;
        hasher.update(&buffer[..read]);
        if let Some(kept) = kept.as_mut() {
            if size > limits.max_composer_json_bytes {
                let limit = limits.max_composer_json_bytes;
                return Err(ContentsError::ComposerJsonTooLarge { name: name.clone(), limit });
            }
            kept.extend_from_slice(&buffer[..read]);
        }
    }
    Ok((size, hasher.finalize().into()))
}

/// Drops directories that have anything below them: extraction creates those anyway.
fn drop_non_empty_directories(entries: &mut BTreeMap<String, Entry>) {
    let non_empty: Vec<String> = entries
        .iter()
        .filter(|(_, entry)| entry.kind == EntryKind::Directory)
        .filter(|(path, _)| {
            let below = format!("{path}/");
            entries.range(below.clone()..).next().is_some_and(|(next, _)| next.starts_with(&below))
        })
        .map(|(path, _)| path.clone())
        .collect();
    for path in non_empty {
        entries.remove(&path);
    }
}

/// The first stored name that occurs twice in the central directory starting at
/// `directory_start`, read raw (the zip reader keeps only one entry per name).
fn duplicate_name(path: &Path, directory_start: u64, max_entries: usize) -> Option<String> {
    let mut reader = BufReader::new(File::open(path).ok()?);
    reader.seek(SeekFrom::Start(directory_start)).ok()?;
    let mut seen = HashSet::new();
    let mut header = [0u8; 46];
    for _ in 0..=max_entries {
        reader.read_exact(&mut header).ok()?;
        if header[..4] != [0x50, 0x4b, 0x01, 0x02] {
            return None;
        }
        let field = |at: usize| usize::from(u16::from_le_bytes([header[at], header[at + 1]]));
        let mut name = vec![0; field(28)];
        reader.read_exact(&mut name).ok()?;
        let skip = i64::try_from(field(30) + field(32)).ok()?;
        reader.seek_relative(skip).ok()?;
        if !seen.insert(name.clone()) {
            return Some(shown(&String::from_utf8_lossy(&name)));
        }
    }
    None
}

/// One side of a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The first archive given to [`compare`].
    Left,
    /// The second archive given to [`compare`].
    Right,
}

/// A change between the two root composer.json files, at one place in the document.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonChange {
    /// Where, readable: `require."magento/framework"`, `autoload.files[0]`; empty for the
    /// whole document.
    pub path: String,
    /// The left value, `None` when absent there.
    pub left: Option<Value>,
    /// The right value, `None` when absent there.
    pub right: Option<Value>,
}

/// One way two archives differ in what Composer would install.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    /// A path only one side has.
    OnlyIn {
        /// The side that has it.
        side: Side,
        /// The path.
        path: String,
        /// What it is there.
        kind: EntryKind,
    },
    /// A path that is a different kind of thing on each side.
    Kind {
        /// The path.
        path: String,
        /// What it is on the left.
        left: EntryKind,
        /// What it is on the right.
        right: EntryKind,
    },
    /// Different permission bits (`& 0o7777`), compared only when both sides carry a mode.
    Mode {
        /// The path.
        path: String,
        /// The left mode, full.
        left: Option<u32>,
        /// The right mode, full.
        right: Option<u32>,
    },
    /// Different bytes (for a symlink: a different target).
    Content {
        /// The path.
        path: String,
        /// Left size in bytes.
        left_size: u64,
        /// Right size in bytes.
        right_size: u64,
    },
    /// The root composer.json files differ as JSON.
    ComposerJson {
        /// Every change, in document order.
        changes: Vec<JsonChange>,
    },
}

impl Difference {
    /// The path the difference is about.
    pub fn path(&self) -> &str {
        match self {
            Self::OnlyIn { path, .. } | Self::Kind { path, .. } | Self::Mode { path, .. } => path,
            Self::Content { path, .. } => path,
            Self::ComposerJson { .. } => COMPOSER_JSON,
        }
    }

    /// Summary lines (one per composer.json change), naming the sides `left` and `right`.
    pub fn lines(&self, left: &str, right: &str) -> Vec<String> {
        let side = |side: &Side| if *side == Side::Left { left } else { right };
        let mode = |mode: &Option<u32>| mode.map_or_else(|| "none".to_owned(), |mode| format!("{mode:o}"));
        match self {
            Self::OnlyIn { side: which, path, kind } => vec![format!("{path}: only in {} ({kind})", side(which))],
            Self::Kind { path, left, right } => vec![format!("{path}: {left} vs {right}")],
            Self::Mode { path, left, right } => vec![format!("{path}: mode {} vs {}", mode(left), mode(right))],
            Self::Content { path, left_size, right_size } => {
                vec![format!("{path}: content differs ({left_size} vs {right_size} bytes)")]
            }
            Self::ComposerJson { changes } => changes.iter().map(|change| change.line(left, right)).collect(),
        }
    }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines("left", "right").join("\n"))
    }
}

impl JsonChange {
    /// The summary line, naming the sides `left` and `right`.
    pub fn line(&self, left: &str, right: &str) -> String {
        let place = if self.path.is_empty() { "the whole document" } else { self.path.as_str() };
        match (&self.left, &self.right) {
            (Some(l), Some(r)) => format!("{COMPOSER_JSON}: {place} is {} vs {}", shown_value(l), shown_value(r)),
            (Some(value), None) => format!("{COMPOSER_JSON}: {place} only in {left} ({})", shown_value(value)),
            (None, Some(value)) => format!("{COMPOSER_JSON}: {place} only in {right} ({})", shown_value(value)),
            (None, None) => format!("{COMPOSER_JSON}: {place} absent on both sides"),
        }
    }
}

/// A JSON value in one line, shortened.
fn shown_value(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= SHOWN_VALUE_CHARS {
        return text;
    }
    let mut short: String = text.chars().take(SHOWN_VALUE_CHARS).collect();
    short.push('…');
    short
}

/// How two archives compare.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Comparison {
    /// Every difference, sorted by path.
    pub differences: Vec<Difference>,
    /// What was noticed but does not count (key order, a stripped folder, missing modes).
    pub notes: Vec<String>,
}

impl Comparison {
    /// No differences (notes do not count).
    pub fn is_identical(&self) -> bool {
        self.differences.is_empty()
    }

    /// Summary lines, differences first, then notes, naming the sides `left` and `right`.
    pub fn lines(&self, left: &str, right: &str) -> Vec<String> {
        let differences = self.differences.iter().flat_map(|difference| difference.lines(left, right));
        let notes = self.notes.iter().map(|note| format!("note: {note}"));
        differences.chain(notes).collect()
    }
}

impl fmt::Display for Comparison {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in self.lines("left", "right") {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Compares what Composer would install from two archives: paths, kinds, permission bits,
/// bytes, and the root composer.json as JSON.
pub fn compare(left: &ArchiveContents, right: &ArchiveContents) -> Comparison {
    let mut comparison = Comparison::default();
    let json = match (&left.composer_json, &right.composer_json) {
        (Some(Ok(l)), Some(Ok(r))) => Some((l, r)),
        _ => None,
    };
    let paths: BTreeSet<&String> = left.entries.keys().chain(right.entries.keys()).collect();
    for path in paths {
        let differences = &mut comparison.differences;
        match (left.entries.get(path), right.entries.get(path)) {
            (Some(entry), None) => differences.push(only_in(Side::Left, path, entry)),
            (None, Some(entry)) => differences.push(only_in(Side::Right, path, entry)),
            (Some(l), Some(r)) => {
                let as_json = json.is_some() && path == COMPOSER_JSON;
                compare_entry(path, l, r, as_json, differences);
            }
            (None, None) => {}
        }
    }
    if let Some((l, r)) = json {
        compare_composer_json(l, r, &mut comparison);
    }
    comparison.notes.extend(side_notes(left, right));
    comparison.differences.sort_by(|a, b| a.path().cmp(b.path()));
    comparison
}

fn only_in(side: Side, path: &str, entry: &Entry) -> Difference {
    Difference::OnlyIn { side, path: path.to_owned(), kind: entry.kind }
}

/// The differences of one path both sides have; composer.json's bytes are skipped when it is
/// compared as JSON.
fn compare_entry(path: &str, left: &Entry, right: &Entry, as_json: bool, out: &mut Vec<Difference>) {
    if left.kind != right.kind {
        out.push(Difference::Kind { path: path.to_owned(), left: left.kind, right: right.kind });
        return;
    }
    if let (Some(l), Some(r)) = (left.mode, right.mode)
        && (l ^ r) & PERMISSION_MASK != 0
    {
        out.push(Difference::Mode { path: path.to_owned(), left: left.mode, right: right.mode });
    }
    if left.kind != EntryKind::Directory && !as_json && left.sha256 != right.sha256 {
        out.push(Difference::Content { path: path.to_owned(), left_size: left.size, right_size: right.size });
    }
}

/// composer.json as JSON: every changed value is a difference, a different key order a note.
fn compare_composer_json(left: &Value, right: &Value, comparison: &mut Comparison) {
    let mut changes = Vec::new();
    json_changes("", left, right, &mut changes);
    if key_order_differs(left, right) {
        comparison.notes.push(format!("{COMPOSER_JSON}: keys in a different order (not counted as a difference)"));
    }
    if !changes.is_empty() {
        comparison.differences.push(Difference::ComposerJson { changes });
    }
}

/// Collects the changes between `left` and `right` at `path`: objects key by key (order
/// ignored), arrays of one length item by item, anything else as a whole.
fn json_changes(path: &str, left: &Value, right: &Value, out: &mut Vec<JsonChange>) {
    let change = |path: String, left: Option<&Value>, right: Option<&Value>| JsonChange {
        path,
        left: left.cloned(),
        right: right.cloned(),
    };
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            for (key, value) in l {
                match r.get(key) {
                    Some(other) => json_changes(&key_path(path, key), value, other, out),
                    None => out.push(change(key_path(path, key), Some(value), None)),
                }
            }
            for (key, value) in r.iter().filter(|(key, _)| !l.contains_key(*key)) {
                out.push(change(key_path(path, key), None, Some(value)));
            }
        }
        (Value::Array(l), Value::Array(r)) if l.len() == r.len() => {
            for (index, (value, other)) in l.iter().zip(r).enumerate() {
                json_changes(&format!("{path}[{index}]"), value, other, out);
            }
        }
        _ if left != right => out.push(change(path.to_owned(), Some(left), Some(right))),
        _ => {}
    }
}

/// `path.key`, the key quoted as a JSON string unless it is a plain word.
fn key_path(path: &str, key: &str) -> String {
    let plain = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if plain { key.to_owned() } else { Value::String(key.to_owned()).to_string() };
    if path.is_empty() { key } else { format!("{path}.{key}") }
}

/// Whether the keys both sides have come in another order anywhere in the document.
fn key_order_differs(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) => {
            let left_keys = l.keys().filter(|key| r.contains_key(*key));
            let right_keys = r.keys().filter(|key| l.contains_key(*key));
            !left_keys.eq(right_keys)
                || l.iter().any(|(key, value)| r.get(key).is_some_and(|other| key_order_differs(value, other)))
        }
        (Value::Array(l), Value::Array(r)) => l.iter().zip(r).any(|(value, other)| key_order_differs(value, other)),
        _ => false,
    }
}

/// Notes about each side: a stripped folder, ignored entries, no modes, unparsable composer.json.
fn side_notes(left: &ArchiveContents, right: &ArchiveContents) -> Vec<String> {
    let mut notes = Vec::new();
    for (name, side) in [("left", left), ("right", right)] {
        if let Some(prefix) = &side.stripped_prefix {
            notes.push(format!("{name}: every entry sits under \"{}/\", compared without it", shown(prefix)));
        }
        for ignored in &side.ignored {
            notes.push(format!("{name}: \"{}\" left out, as Composer does not install it", shown(ignored)));
        }
        if let Some(Err(error)) = &side.composer_json {
            notes.push(format!("{name}: {COMPOSER_JSON} is not valid JSON ({error}), compared as bytes"));
        }
    }
    match (left.carries_modes(), right.carries_modes()) {
        (true, false) => notes.push("right: the archive carries no unix modes, modes not compared".to_owned()),
        (false, true) => notes.push("left: the archive carries no unix modes, modes not compared".to_owned()),
        _ => {}
    }
    notes
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use zip::write::SimpleFileOptions;
    use zip::{CompressionMethod, DateTime, ZipWriter};

    use super::*;

    type Writer = ZipWriter<File>;

    /// Writes a zip named `name` into `dir`, filled by `fill`.
    fn build(dir: &Path, name: &str, fill: impl FnOnce(&mut Writer) -> zip::result::ZipResult<()>) -> PathBuf {
        let path = dir.join(name);
        let mut writer = ZipWriter::new(File::create(&path).unwrap());
        fill(&mut writer).unwrap();
        writer.finish().unwrap();
        path
    }

    fn put(writer: &mut Writer, name: &str, data: &[u8], options: SimpleFileOptions) -> zip::result::ZipResult<()> {
        writer.start_file(name, options)?;
        writer.write_all(data)?;
        Ok(())
    }

    fn options(method: CompressionMethod, year: u16) -> SimpleFileOptions {
        let time = DateTime::from_date_and_time(year, 6, 30, 12, 34, 56).unwrap();
        SimpleFileOptions::default().compression_method(method).last_modified_time(time)
    }

    fn deflated() -> SimpleFileOptions {
        options(CompressionMethod::Deflated, 2020)
    }

    fn read(path: &Path) -> ArchiveContents {
        read_archive(path, &ContentLimits::default()).unwrap()
    }

    fn compared(left: &Path, right: &Path) -> Comparison {
        compare(&read(left), &read(right))
    }

    const PRODUCT: &[u8] = b"<?php\nnamespace Magento\\Catalog\\Model;\nclass Product {}\n";
    const COMPOSER: &[u8] =
        br#"{"name": "magento/module-catalog", "require": {"php": "~8.3.0", "magento/framework": "103.0.7"}}"#;

    /// A small package: composer.json, a PHP file, an executable, in this order.
    fn package(writer: &mut Writer, options: SimpleFileOptions) -> zip::result::ZipResult<()> {
        put(writer, "composer.json", COMPOSER, options)?;
        put(writer, "Magento/Catalog/Model/Product.php", PRODUCT, options)?;
        put(writer, "bin/magento", b"#!/usr/bin/env php\n", options.unix_permissions(0o755))
    }

    #[test]
    fn order_timestamps_and_compression_do_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        let right = build(dir.path(), "right.zip", |w| {
            let stored = options(CompressionMethod::Stored, 2024);
            put(w, "bin/magento", b"#!/usr/bin/env php\n", stored.unix_permissions(0o755))?;
            put(w, "Magento/Catalog/Model/Product.php", PRODUCT, stored)?;
            put(w, "composer.json", COMPOSER, stored)
        });
        let comparison = compared(&left, &right);
        assert!(comparison.is_identical(), "{comparison}");
        assert!(comparison.notes.is_empty(), "{comparison}");
        let contents = read(&left);
        let product = &contents.entries["Magento/Catalog/Model/Product.php"];
        assert_eq!((product.kind, product.mode, product.size), (EntryKind::File, Some(0o100644), PRODUCT.len() as u64));
        assert_eq!(product.sha256_hex(), hex::encode(Sha256::digest(PRODUCT)));
        assert_eq!(contents.entries["bin/magento"].mode, Some(0o100755));
        assert!(matches!(&contents.composer_json, Some(Ok(json)) if json["name"] == "magento/module-catalog"));
    }

    #[test]
    fn different_bytes_are_one_content_difference() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        let right = build(dir.path(), "right.zip", |w| {
            put(w, "composer.json", COMPOSER, deflated())?;
            put(w, "Magento/Catalog/Model/Product.php", b"<?php\n// patched\n", deflated())?;
            put(w, "bin/magento", b"#!/usr/bin/env php\n", deflated().unix_permissions(0o755))
        });
        let comparison = compared(&left, &right);
        let path = "Magento/Catalog/Model/Product.php".to_owned();
        assert_eq!(comparison.differences, [Difference::Content { path, left_size: 56, right_size: 17 }]);
        assert_eq!(
            comparison.differences[0].to_string(),
            "Magento/Catalog/Model/Product.php: content differs (56 vs 17 bytes)"
        );
    }

    #[test]
    fn different_permissions_are_one_mode_difference() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        let right = build(dir.path(), "right.zip", |w| {
            put(w, "composer.json", COMPOSER, deflated())?;
            put(w, "Magento/Catalog/Model/Product.php", PRODUCT, deflated())?;
            put(w, "bin/magento", b"#!/usr/bin/env php\n", deflated().unix_permissions(0o644))
        });
        let comparison = compared(&left, &right);
        let mode = Difference::Mode { path: "bin/magento".to_owned(), left: Some(0o100755), right: Some(0o100644) };
        assert_eq!(comparison.differences, [mode]);
        assert_eq!(comparison.differences[0].to_string(), "bin/magento: mode 100755 vs 100644");
    }

    #[test]
    fn an_archive_without_modes_is_a_note_not_a_difference_per_file() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        // As Info-ZIP on Windows writes it: MS-DOS attributes only (the archive bit).
        let dos = deflated().system(System::Dos).external_attributes(0x20);
        let right = build(dir.path(), "right.zip", |w| package(w, dos));
        let contents = read(&right);
        assert!(contents.entries.values().all(|entry| entry.mode.is_none()), "{contents:?}");
        let comparison = compare(&read(&left), &contents);
        assert!(comparison.is_identical(), "{comparison}");
        assert_eq!(comparison.notes, ["right: the archive carries no unix modes, modes not compared"]);
    }

    #[test]
    fn a_file_only_on_one_side() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        let right = build(dir.path(), "right.zip", |w| {
            package(w, deflated())?;
            put(w, "Magento/Catalog/etc/di.xml", b"<config/>\n", deflated())
        });
        let comparison = compared(&left, &right);
        let only = Difference::OnlyIn {
            side: Side::Right,
            path: "Magento/Catalog/etc/di.xml".to_owned(),
            kind: EntryKind::File,
        };
        assert_eq!(comparison.differences, [only]);
        assert_eq!(comparison.lines("mage-os", "magento"), ["Magento/Catalog/etc/di.xml: only in magento (file)"]);
    }

    #[test]
    fn an_empty_directory_only_on_one_side() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| {
            package(w, deflated())?;
            w.add_directory("var/cache/", deflated())
        });
        let right = build(dir.path(), "right.zip", |w| package(w, deflated()));
        let comparison = compared(&left, &right);
        let only = Difference::OnlyIn { side: Side::Left, path: "var/cache".to_owned(), kind: EntryKind::Directory };
        assert_eq!(comparison.differences, [only]);
    }

    #[test]
    fn an_explicit_entry_for_a_non_empty_directory_does_not_count() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| {
            for folder in ["Magento/", "Magento/Catalog/", "Magento/Catalog/Model/", "bin/"] {
                w.add_directory(folder, deflated())?;
            }
            package(w, deflated())
        });
        let right = build(dir.path(), "right.zip", |w| package(w, deflated()));
        let contents = read(&left);
        assert!(contents.entries.values().all(|entry| entry.kind == EntryKind::File), "{contents:?}");
        let comparison = compare(&contents, &read(&right));
        assert!(comparison.is_identical(), "{comparison}");
    }

    #[test]
    fn a_symlink_against_a_file_is_a_kind_difference() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| {
            package(w, deflated())?;
            w.add_symlink("bin/mage", "magento", deflated())
        });
        let right = build(dir.path(), "right.zip", |w| {
            package(w, deflated())?;
            put(w, "bin/mage", b"magento", deflated())
        });
        let left_contents = read(&left);
        assert_eq!(left_contents.entries["bin/mage"].kind, EntryKind::Symlink);
        let comparison = compare(&left_contents, &read(&right));
        let kind = Difference::Kind { path: "bin/mage".to_owned(), left: EntryKind::Symlink, right: EntryKind::File };
        assert_eq!(comparison.differences, [kind]);
        assert_eq!(comparison.differences[0].to_string(), "bin/mage: symlink vs file");
    }

    #[test]
    fn composer_json_in_another_key_order_is_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        let right = build(dir.path(), "right.zip", |w| {
            let reordered = br#"{
                "require": {"magento/framework": "103.0.7", "php": "~8.3.0"},
                "name": "magento/module-catalog"
            }"#;
            put(w, "composer.json", reordered, deflated())?;
            put(w, "Magento/Catalog/Model/Product.php", PRODUCT, deflated())?;
            put(w, "bin/magento", b"#!/usr/bin/env php\n", deflated().unix_permissions(0o755))
        });
        let comparison = compared(&left, &right);
        assert!(comparison.is_identical(), "{comparison}");
        assert_eq!(comparison.notes, ["composer.json: keys in a different order (not counted as a difference)"]);
    }

    #[test]
    fn a_changed_require_is_one_composer_json_difference() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| package(w, deflated()));
        let right = build(dir.path(), "right.zip", |w| {
            let changed = br#"{"name": "magento/module-catalog", "require": {"php": "~8.3.0", "magento/framework": "103.0.7-p1"}}"#;
            put(w, "composer.json", changed, deflated())?;
            put(w, "Magento/Catalog/Model/Product.php", PRODUCT, deflated())?;
            put(w, "bin/magento", b"#!/usr/bin/env php\n", deflated().unix_permissions(0o755))
        });
        let comparison = compared(&left, &right);
        let change = JsonChange {
            path: r#"require."magento/framework""#.to_owned(),
            left: Some(Value::from("103.0.7")),
            right: Some(Value::from("103.0.7-p1")),
        };
        assert_eq!(comparison.differences, [Difference::ComposerJson { changes: vec![change] }]);
        assert!(comparison.notes.is_empty(), "{comparison}");
        assert_eq!(
            comparison.differences[0].to_string(),
            r#"composer.json: require."magento/framework" is "103.0.7" vs "103.0.7-p1""#
        );
    }

    #[test]
    fn added_and_removed_composer_json_keys() {
        let left = serde_json::json!({"name": "a/b", "autoload": {"files": ["x.php"]}, "suggest": {"c/d": "why"}});
        let right = serde_json::json!({"name": "a/b", "autoload": {"files": ["y.php"]}, "type": "library"});
        let mut changes = Vec::new();
        json_changes("", &left, &right, &mut changes);
        let lines: Vec<String> = changes.iter().map(|change| change.line("left", "right")).collect();
        assert_eq!(
            lines,
            [
                r#"composer.json: autoload.files[0] is "x.php" vs "y.php""#,
                r#"composer.json: suggest only in left ({"c/d":"why"})"#,
                r#"composer.json: type only in right ("library")"#,
            ]
        );
    }

    #[test]
    fn invalid_composer_json_is_recorded_and_compared_as_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let left = build(dir.path(), "left.zip", |w| put(w, "composer.json", b"{\"name\": ", deflated()));
        let right = build(dir.path(), "right.zip", |w| put(w, "composer.json", b"{\"name\": \"a/b\"}", deflated()));
        let contents = read(&left);
        assert!(matches!(contents.composer_json, Some(Err(_))), "{contents:?}");
        let comparison = compare(&contents, &read(&right));
        let content = Difference::Content { path: "composer.json".to_owned(), left_size: 9, right_size: 15 };
        assert_eq!(comparison.differences, [content]);
        assert!(comparison.notes[0].starts_with("left: composer.json is not valid JSON"), "{comparison}");
    }

    #[test]
    fn a_single_top_folder_is_stripped_as_composer_does() {
        let dir = tempfile::tempdir().unwrap();
        let top = "magento-module-catalog-1a2b3c4";
        let github = build(dir.path(), "github.zip", |w| {
            w.add_directory(format!("{top}/"), deflated())?;
            put(w, &format!("{top}/composer.json"), COMPOSER, deflated())?;
            put(w, &format!("{top}/Magento/Catalog/Model/Product.php"), PRODUCT, deflated())?;
            put(w, &format!("{top}/bin/magento"), b"#!/usr/bin/env php\n", deflated().unix_permissions(0o755))?;
            put(w, ".DS_Store", b"\0\0\0\x01Bud1", deflated())
        });
        let plain = build(dir.path(), "plain.zip", |w| package(w, deflated()));
        let contents = read(&github);
        assert_eq!(contents.stripped_prefix.as_deref(), Some(top));
        assert_eq!(contents.ignored, [".DS_Store"]);
        assert!(matches!(contents.composer_json, Some(Ok(_))));
        let comparison = compare(&contents, &read(&plain));
        assert!(comparison.is_identical(), "{comparison}");
        assert_eq!(
            comparison.notes,
            [
                format!("left: every entry sits under \"{top}/\", compared without it"),
                "left: \".DS_Store\" left out, as Composer does not install it".to_owned(),
            ]
        );
    }

    #[test]
    fn two_top_folders_or_a_top_file_are_not_stripped() {
        let dir = tempfile::tempdir().unwrap();
        let two = build(dir.path(), "two.zip", |w| {
            put(w, "src/a.php", b"a", deflated())?;
            put(w, "lib/b.php", b"b", deflated())
        });
        let file = build(dir.path(), "file.zip", |w| put(w, "README.md", b"read me", deflated()));
        assert_eq!(read(&two).stripped_prefix, None);
        assert_eq!(read(&file).stripped_prefix, None);
        assert_eq!(read(&file).entries.keys().collect::<Vec<_>>(), ["README.md"]);
    }

    fn refusal(fill: impl FnOnce(&mut Writer) -> zip::result::ZipResult<()>, limits: &ContentLimits) -> ContentsError {
        let dir = tempfile::tempdir().unwrap();
        let path = build(dir.path(), "hostile.zip", fill);
        read_archive(&path, limits).unwrap_err()
    }

    fn refused(name: &str) -> ContentsError {
        refusal(|w| put(w, name, b"x", deflated()), &ContentLimits::default())
    }

    #[test]
    fn hostile_names_are_refused() {
        assert!(matches!(refused("../evil"), ContentsError::ParentSegment { name } if name == "../evil"));
        assert!(matches!(refused("a/../../evil"), ContentsError::ParentSegment { .. }));
        assert!(matches!(refused("/abs"), ContentsError::AbsoluteName { name } if name == "/abs"));
        assert!(matches!(refused("C:/Windows/evil"), ContentsError::AbsoluteName { .. }));
        assert!(matches!(refused("a\\b.php"), ContentsError::Backslash { name } if name == "a\\b.php"));
        assert!(matches!(refused("a\0b.php"), ContentsError::Nul { name } if name == "a\\u{0}b.php"));
        assert!(matches!(refused("./"), ContentsError::EmptyName { .. }));
        let error = refused("a\0b.php").to_string();
        assert_eq!(error, "entry \"a\\u{0}b.php\": a NUL byte in the name");
    }

    #[test]
    fn a_name_over_the_limit_is_refused() {
        let limits = ContentLimits { max_name_len: 8, ..ContentLimits::default() };
        let error = refusal(|w| put(w, "src/long-name.php", b"x", deflated()), &limits);
        assert!(matches!(error, ContentsError::NameTooLong { len: 17, limit: 8, .. }), "{error}");
    }

    #[test]
    fn duplicate_stored_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = build(dir.path(), "dup.zip", |w| {
            put(w, "dup-a.php", b"first", deflated())?;
            put(w, "dup-b.php", b"second", deflated())
        });
        // Rename the second entry to the first one's name, in its local and central headers.
        let bytes = std::fs::read(&path).unwrap();
        let mut patched = Vec::with_capacity(bytes.len());
        let mut rest = bytes.as_slice();
        while let Some(at) = rest.windows(9).position(|window| window == b"dup-b.php") {
            patched.extend_from_slice(&rest[..at]);
            patched.extend_from_slice(b"dup-a.php");
            rest = &rest[at + 9..];
        }
        patched.extend_from_slice(rest);
        std::fs::write(&path, patched).unwrap();
        let error = read_archive(&path, &ContentLimits::default()).unwrap_err();
        assert!(matches!(&error, ContentsError::Duplicate { name } if name == "dup-a.php"), "{error}");
    }

    #[test]
    fn names_equal_once_normalized_are_duplicates() {
        let defaults = ContentLimits::default();
        let two = |first: &'static str, second: &'static str| {
            refusal(
                move |w| {
                    put(w, first, b"1", deflated())?;
                    if second.ends_with('/') {
                        w.add_directory(second, deflated())
                    } else {
                        put(w, second, b"2", deflated())
                    }
                },
                &defaults,
            )
        };
        let doubled = two("src/a.php", "src//a.php");
        assert!(matches!(&doubled, ContentsError::Duplicate { name } if name == "src/a.php"), "{doubled}");
        let dotted = two("a.php", "./a.php");
        assert!(matches!(&dotted, ContentsError::Duplicate { name } if name == "a.php"), "{dotted}");
        let file_and_folder = two("lib", "lib/");
        assert!(matches!(&file_and_folder, ContentsError::Duplicate { name } if name == "lib"), "{file_and_folder}");
    }

    #[test]
    fn an_entry_below_a_file_or_symlink_is_refused() {
        let defaults = ContentLimits::default();
        let error = refusal(
            |w| {
                w.add_symlink("etc", "/etc", deflated())?;
                put(w, "etc/passwd", b"root::0:0::/:/bin/sh\n", deflated())
            },
            &defaults,
        );
        let expected = ContentsError::ParentNotDirectory { name: "etc/passwd".to_owned(), parent: "etc".to_owned() };
        assert_eq!(error.to_string(), expected.to_string());
    }

    #[test]
    fn too_many_entries_are_refused() {
        let limits = ContentLimits { max_entries: 3, ..ContentLimits::default() };
        let error = refusal(
            |w| {
                for index in 0..4 {
                    put(w, &format!("f{index}.php"), b"x", deflated())?;
                }
                Ok(())
            },
            &limits,
        );
        assert!(matches!(error, ContentsError::TooManyEntries { count: 4, limit: 3 }), "{error}");
    }

    #[test]
    fn uncompressed_bytes_are_counted_while_reading() {
        let limits = ContentLimits { max_total_bytes: 10_000, ..ContentLimits::default() };
        let zeros = vec![0u8; 1 << 20];
        let error = refusal(|w| put(w, "bomb.bin", &zeros, deflated()), &limits);
        assert!(matches!(&error, ContentsError::TooLarge { name, limit: 10_000 } if name == "bomb.bin"), "{error}");
    }

    #[test]
    fn an_entry_larger_than_it_declares_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let zeros = vec![0u8; 1 << 20];
        let path = build(dir.path(), "liar.zip", |w| put(w, "bomb.bin", &zeros, deflated()));
        // Declare 10 bytes in the local header (offset 22) and the central header (offset 24).
        let mut bytes = std::fs::read(&path).unwrap();
        let central = bytes.windows(4).rposition(|window| window == [0x50, 0x4b, 0x01, 0x02]).unwrap();
        bytes[22..26].copy_from_slice(&10u32.to_le_bytes());
        bytes[central + 24..central + 28].copy_from_slice(&10u32.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let limits = ContentLimits { max_total_bytes: 10_000, ..ContentLimits::default() };
        let error = read_archive(&path, &limits).unwrap_err();
        // The zip crate (9.4) stops at the declared size; the byte budget is the second guard.
        assert!(matches!(&error, ContentsError::Read { name, .. } if name == "bomb.bin"), "{error}");
        assert!(error.to_string().contains("larger than its declared uncompressed size"), "{error}");
    }
}
