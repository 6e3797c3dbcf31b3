//! Serving the repository output folder over HTTP, read-only, as a careful static server would:
//! for the Composer 2 client (which revalidates with `If-Modified-Since` and wants an empty 304)
//! and for downstream mirrors (`ETag`, `Range`, gzip for metadata).
//!
//! A request path is split on `/` before each segment is percent-decoded, and it is refused (404,
//! the same answer as a missing file) when a segment is empty, starts with `.` (`.`, `..`, the
//! farm's private `.farm/`, any dotfile), or decodes to invalid UTF-8 or to something holding
//! `/`, `\` or NUL. The segments are then walked from the canonical root with `lstat`: every
//! parent must be a real directory and the last a regular file, so no symlink is ever followed
//! (neither out of the folder nor within it). The file opened is checked to be the one walked to
//! (same device and inode). Directories are never listed.
//!
//! Answers: GET and HEAD (others 405); `ETag` from the file's length, mtime and inode, so a
//! replaced file gets a new one; `If-None-Match` (then `If-Modified-Since` is ignored) and
//! `If-Modified-Since` give an empty 304; `.json` and `.jsonl` up to 16 MiB are gzipped when the
//! client accepts it (another `ETag`, `Vary: Accept-Encoding`, no ranges); any other answer
//! honours a single byte range (206 or 416) unless `If-Range` no longer matches. File bodies are
//! streamed; only a gzipped body is built in memory.

use std::fs::{File, Metadata};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::TryStreamExt as _;
use percent_encoding::percent_decode_str;
use tokio::io::AsyncReadExt as _;
use tokio_util::io::ReaderStream;
use tracing::warn;

/// Largest file that is gzipped (larger ones are served as they are).
const GZIP_LIMIT: u64 = 16 << 20;

/// Read size of a streamed body.
const CHUNK: usize = 64 * 1024;

/// The last second an HTTP date can name (9999-12-31T23:59:59Z); mtimes are clamped to it.
const LAST_HTTP_SECOND: i64 = 253_402_300_799;

/// A folder served read-only.
#[derive(Debug, Clone)]
pub struct Repository {
    /// The folder, canonicalized (so it holds no symlink itself).
    root: PathBuf,
}

/// A file that passed the checks, opened.
struct Found {
    /// The open file.
    file: File,
    /// Its metadata, from the open descriptor.
    meta: Metadata,
    /// What its name says it is.
    kind: Kind,
}

/// What a file's extension says about how to serve it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    /// `Content-Type`.
    content_type: &'static str,
    /// Composer metadata (`.json`, `.jsonl`): revalidated (`no-cache`) and gzipped when accepted.
    metadata: bool,
}

/// What a request's `Range` asks for, against a file's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// The whole file (no range, or one that is ignored).
    Full,
    /// Bytes `start..=end`, both within the file.
    Part {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// A range that names no byte of the file (416).
    Unsatisfiable,
}

/// The validators of one representation of a file.
struct Validators {
    /// Strong `ETag`, quoted.
    etag: String,
    /// mtime in whole seconds since the epoch (clamped to what an HTTP date can carry).
    modified: u64,
}

impl Repository {
    /// Opens `root` for serving. Fails if root is not a readable directory.
    pub fn open(root: &Path) -> io::Result<Repository> {
        let root = root.canonicalize()?;
        if !std::fs::metadata(&root)?.is_dir() {
            return Err(io::Error::new(io::ErrorKind::NotADirectory, "the repository is not a directory"));
        }
        std::fs::read_dir(&root)?;
        Ok(Repository { root })
    }

    /// Answers one request: `path` is the request URI's path exactly as received (still
    /// percent-encoded, starting with '/'; a query is ignored).
    pub async fn respond(&self, method: &Method, path: &str, headers: &HeaderMap) -> Response {
        if method != Method::GET && method != Method::HEAD {
            return method_not_allowed();
        }
        let repository = self.clone();
        let owned = path.to_owned();
        let opened = tokio::task::spawn_blocking(move || repository.open_file(&owned))
            .await
            .unwrap_or_else(|error| Err(io::Error::other(error)));
        match opened {
            Ok(Some(found)) => serve(found, method == Method::HEAD, headers, path).await,
            Ok(None) => not_found(),
            Err(error) => {
                warn!(path, %error, "could not open a file of the repository");
                internal_error()
            }
        }
    }

    /// The file a request path names, if it may be served (the same checks as
    /// [`Repository::respond`]); for dynamic routes.
    pub fn resolve(&self, path: &str) -> Option<PathBuf> {
        self.locate(path).map(|(file, _)| file)
    }

    /// The file a request path names and its `lstat`, if it may be served.
    fn locate(&self, path: &str) -> Option<(PathBuf, Metadata)> {
        walk(&self.root, &segments(path)?)
    }

    /// Opens the file a request path names: `None` when it may not be served or is missing.
    fn open_file(&self, path: &str) -> io::Result<Option<Found>> {
        let Some((file_path, walked)) = self.locate(path) else {
            return Ok(None);
        };
        let file = match File::open(&file_path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let meta = file.metadata()?;
        // Replaced between the walk and the open (by a symlink, say): not what was checked.
        if !meta.is_file() || meta.dev() != walked.dev() || meta.ino() != walked.ino() {
            return Ok(None);
        }
        Ok(Some(Found { file, meta, kind: Kind::of(&file_path) }))
    }
}

/// Answers `request` from `repository`; for use as the router's fallback.
pub async fn handle(repository: Arc<Repository>, request: Request) -> Response {
    repository.respond(request.method(), request.uri().path(), request.headers()).await
}

/// The decoded segments of a request path, or `None` when it is refused.
fn segments(path: &str) -> Option<Vec<String>> {
    let path = path.split_once('?').map_or(path, |(path, _)| path);
    let rest = path.strip_prefix('/')?;
    if rest.is_empty() {
        return None;
    }
    rest.split('/').map(segment).collect()
}

/// One percent-decoded segment, or `None` when it is refused.
fn segment(raw: &str) -> Option<String> {
    let decoded = percent_decode_str(raw).decode_utf8().ok()?;
    let refused = decoded.is_empty() || decoded.starts_with('.') || decoded.contains(['/', '\\', '\0']);
    (!refused).then(|| decoded.into_owned())
}

/// Walks `segments` from `root` without following symlinks: every parent must be a directory and
/// the last a regular file.
fn walk(root: &Path, segments: &[String]) -> Option<(PathBuf, Metadata)> {
    let (last, parents) = segments.split_last()?;
    let mut current = root.to_path_buf();
    for parent in parents {
        current.push(parent);
        if !std::fs::symlink_metadata(&current).ok()?.is_dir() {
            return None;
        }
    }
    current.push(last);
    let meta = std::fs::symlink_metadata(&current).ok()?;
    meta.is_file().then_some((current, meta))
}

impl Kind {
    /// The kind of the file at `path`, by its extension.
    fn of(path: &Path) -> Kind {
        let (content_type, metadata) = match path.extension().and_then(|extension| extension.to_str()) {
            Some("json") => ("application/json", true),
            Some("jsonl") => ("application/jsonl", true),
            Some("zip") => ("application/zip", false),
            Some("html") => ("text/html; charset=utf-8", false),
            _ => ("application/octet-stream", false),
        };
        Kind { content_type, metadata }
    }
}

impl Validators {
    /// The validators of a file with `meta`, as is or gzipped.
    fn of(meta: &Metadata, gzip: bool) -> Validators {
        let nanos = i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec());
        let suffix = if gzip { "-gz" } else { "" };
        let etag = format!("\"{:x}-{nanos:x}-{:x}{suffix}\"", meta.len(), meta.ino());
        let modified = u64::try_from(meta.mtime().clamp(0, LAST_HTTP_SECOND)).unwrap_or(0);
        Validators { etag, modified }
    }

    /// `Last-Modified`.
    fn last_modified(&self) -> String {
        httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(self.modified))
    }
}

/// Answers a GET or HEAD for a file that passed the checks.
async fn serve(found: Found, head: bool, headers: &HeaderMap, path: &str) -> Response {
    let gzip = found.kind.metadata && found.meta.len() <= GZIP_LIMIT && accepts_gzip(headers);
    let validators = Validators::of(&found.meta, gzip);
    let mut base = base_headers(found.kind, &validators);
    if not_modified(headers, &validators) {
        return build(StatusCode::NOT_MODIFIED, base, Body::empty());
    }
    base.insert(header::CONTENT_TYPE, HeaderValue::from_static(found.kind.content_type));
    if gzip {
        return gzipped(found, base, head, path).await;
    }
    base.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    let span = requested_span(headers, &validators, found.meta.len());
    streamed(found, span, base, head, path)
}

/// The headers every answer for a file carries (including a 304).
fn base_headers(kind: Kind, validators: &Validators) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ETAG, text(validators.etag.clone()));
    headers.insert(header::LAST_MODIFIED, text(validators.last_modified()));
    if kind.metadata {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers
}

/// Whether the client's copy is current: `If-None-Match` when present, else `If-Modified-Since`.
fn not_modified(headers: &HeaderMap, validators: &Validators) -> bool {
    let mut tags = headers.get_all(header::IF_NONE_MATCH).iter().peekable();
    if tags.peek().is_some() {
        return tags.any(|value| value.to_str().is_ok_and(|list| etag_listed(list, &validators.etag)));
    }
    headers.get(header::IF_MODIFIED_SINCE).and_then(http_date_seconds).is_some_and(|since| validators.modified <= since)
}

/// Whether an `If-None-Match` list names `etag` (weak comparison) or is `*`.
fn etag_listed(list: &str, etag: &str) -> bool {
    list.split(',').map(str::trim).any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// An HTTP date header as seconds since the epoch; `None` when it is not a valid date.
fn http_date_seconds(value: &HeaderValue) -> Option<u64> {
    let date = httpdate::parse_http_date(value.to_str().ok()?).ok()?;
    Some(date.duration_since(UNIX_EPOCH).ok()?.as_secs())
}

/// Whether `Accept-Encoding` accepts gzip (by name or `*`) with a quality above 0.
pub(crate) fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for value in headers.get_all(header::ACCEPT_ENCODING) {
        let Ok(list) = value.to_str() else { continue };
        for (coding, quality) in list.split(',').filter_map(coding) {
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(quality);
            } else if coding == "*" {
                any = Some(quality);
            }
        }
    }
    gzip.or(any).is_some_and(|quality| quality > 0.0)
}

/// One `Accept-Encoding` item as its coding and quality (1 without `q`, 0 for an invalid one).
fn coding(item: &str) -> Option<(&str, f32)> {
    let mut parts = item.split(';');
    let coding = parts.next()?.trim();
    if coding.is_empty() {
        return None;
    }
    let q = parts
        .filter_map(|parameter| parameter.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
        .map_or(1.0, |(_, value)| quality(value));
    Some((coding, q))
}

/// A `q` value between 0 and 1; 0 (not acceptable) when it is not one.
fn quality(value: &str) -> f32 {
    value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q)).unwrap_or(0.0)
}

/// The span a request asks for: its `Range`, unless absent, malformed, multiple, or `If-Range`
/// no longer matches.
fn requested_span(headers: &HeaderMap, validators: &Validators, len: u64) -> Span {
    let Some(range) = headers.get(header::RANGE).and_then(|value| value.to_str().ok()) else {
        return Span::Full;
    };
    if !if_range_holds(headers, validators) {
        return Span::Full;
    }
    parse_range(range, len).unwrap_or(Span::Full)
}

/// Whether `If-Range` (absent, a strong `ETag`, or the exact `Last-Modified`) still matches.
fn if_range_holds(headers: &HeaderMap, validators: &Validators) -> bool {
    let Some(value) = headers.get(header::IF_RANGE) else {
        return true;
    };
    match value.to_str().map(str::trim) {
        Ok(tag) if tag.starts_with('"') => tag == validators.etag,
        Ok(tag) if tag.starts_with("W/") => false,
        Ok(_) => http_date_seconds(value) == Some(validators.modified),
        Err(_) => false,
    }
}

/// A single `bytes=` range against a file of `len` bytes; `None` when malformed or multiple.
fn parse_range(value: &str, len: u64) -> Option<Span> {
    let (unit, spec) = value.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return None;
    }
    let (first, last) = spec.trim().split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    if first.is_empty() {
        let suffix = number(last)?;
        if suffix == 0 || len == 0 {
            return Some(Span::Unsatisfiable);
        }
        return Some(Span::Part { start: len - suffix.min(len), end: len - 1 });
    }
    let start = number(first)?;
    let end = if last.is_empty() { u64::MAX } else { number(last)? };
    if end < start {
        return None;
    }
    if start >= len {
        return Some(Span::Unsatisfiable);
    }
    Some(Span::Part { start, end: end.min(len - 1) })
}

/// A decimal number of a range (digits only: no sign, no spaces).
fn number(digits: &str) -> Option<u64> {
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The whole file gzipped (built in memory: metadata files are small).
async fn gzipped(found: Found, mut headers: HeaderMap, head: bool, path: &str) -> Response {
    let len = found.meta.len();
    let compressed = tokio::task::spawn_blocking(move || gzip(found.file.take(len)))
        .await
        .unwrap_or_else(|error| Err(io::Error::other(error)));
    let compressed = match compressed {
        Ok(compressed) => compressed,
        Err(error) => {
            warn!(path, %error, "could not read a file of the repository");
            return internal_error();
        }
    };
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(compressed.len()));
    let body = if head { Body::empty() } else { Body::from(compressed) };
    build(StatusCode::OK, headers, body)
}

/// All of `reader`, gzipped in memory (a metadata file, a feed answer).
pub(crate) fn gzip(mut reader: impl io::Read) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    io::copy(&mut reader, &mut encoder)?;
    encoder.finish()
}

/// The file, or the span of it, streamed from disk (200, 206 or 416).
fn streamed(found: Found, span: Span, mut headers: HeaderMap, head: bool, path: &str) -> Response {
    let len = found.meta.len();
    let (status, start, count) = match span {
        Span::Full => (StatusCode::OK, 0, len),
        Span::Part { start, end } => {
            headers.insert(header::CONTENT_RANGE, text(format!("bytes {start}-{end}/{len}")));
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        Span::Unsatisfiable => {
            headers.remove(header::CONTENT_TYPE);
            headers.insert(header::CONTENT_RANGE, text(format!("bytes */{len}")));
            headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
            return build(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::empty());
        }
    };
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    if head {
        return build(status, headers, Body::empty());
    }
    let mut file = found.file;
    if let Err(error) = file.seek(SeekFrom::Start(start)) {
        warn!(path, %error, "could not seek in a file of the repository");
        return internal_error();
    }
    let reader = tokio::fs::File::from_std(file).take(count);
    let path = path.to_owned();
    let stream = ReaderStream::with_capacity(reader, CHUNK)
        .inspect_err(move |error| warn!(path, %error, "could not read a file of the repository"));
    build(status, headers, Body::from_stream(stream))
}

/// A response with `status`, `headers` and `body`.
fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// A short plain-text answer.
fn plain(status: StatusCode, message: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    build(status, headers, Body::from(message))
}

/// 404, for anything refused or missing (the same answer for both).
fn not_found() -> Response {
    plain(StatusCode::NOT_FOUND, "not found\n")
}

/// 500, for a file that passed the checks but could not be read.
fn internal_error() -> Response {
    plain(StatusCode::INTERNAL_SERVER_ERROR, "could not read the file\n")
}

/// 405, for a method other than GET and HEAD.
fn method_not_allowed() -> Response {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}

/// A header value built from generated visible ASCII (digits, hex, quotes, dates).
fn text(value: String) -> HeaderValue {
    HeaderValue::try_from(value).expect("generated header values are visible ASCII")
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::os::unix::fs::symlink;
    use std::time::SystemTime;

    use axum::body::Bytes;
    use flate2::read::GzDecoder;
    use tempfile::TempDir;

    use super::*;

    const PACKAGES: &[u8] = br#"{"packages":[],"metadata-url":"/p2/%package%.json"}"#;
    const SECRET: &[u8] = b"TOP-SECRET-BYTES";
    const MANIFEST: &[u8] = br#"{"private":"farm state"}"#;

    /// The fixed mtime of `packages.json` (with nanoseconds, to check the truncation).
    fn packages_mtime() -> SystemTime {
        UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000)
    }

    struct Fixture {
        outer: TempDir,
        repository: Repository,
        a_json: Vec<u8>,
        zip: Vec<u8>,
    }

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state.to_le_bytes()[0]
            })
            .collect()
    }

    fn set_mtime(path: &Path, time: SystemTime) {
        File::options().write(true).open(path).unwrap().set_modified(time).unwrap();
    }

    /// A repository folder `repo/` next to `secret`, with symlinks out of and within it.
    fn fixture() -> Fixture {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("repo");
        for dir in ["p2/acme", "packages/acme", ".farm", "metadata"] {
            std::fs::create_dir_all(root.join(dir)).unwrap();
        }
        let a_json = br#"{"packages":{"acme/a":[{"name":"acme/a","version":"1.0.0"}]}}"#.repeat(40);
        let zip = pseudo_random(10 * 1024);
        std::fs::write(root.join("packages.json"), PACKAGES).unwrap();
        set_mtime(&root.join("packages.json"), packages_mtime());
        std::fs::write(root.join("p2/acme/a.json"), &a_json).unwrap();
        std::fs::write(root.join("packages/acme/a-1.0.0.zip"), &zip).unwrap();
        std::fs::write(root.join(".farm/manifest.json"), MANIFEST).unwrap();
        std::fs::write(root.join(".hidden"), MANIFEST).unwrap();
        std::fs::write(outer.path().join("secret"), SECRET).unwrap();
        symlink(outer.path().join("secret"), root.join("p2/evil.json")).unwrap();
        symlink("acme/a.json", root.join("p2/alias.json")).unwrap();
        symlink("acme", root.join("p2/linked")).unwrap();
        symlink(outer.path(), root.join("outside")).unwrap();
        let repository = Repository::open(&root).unwrap();
        Fixture { outer, repository, a_json, zip }
    }

    async fn request(
        repository: &Repository,
        method: Method,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        let response = repository.respond(&method, path, &map).await;
        let (parts, body) = response.into_parts();
        (parts.status, parts.headers, axum::body::to_bytes(body, usize::MAX).await.unwrap())
    }

    async fn get(
        repository: &Repository,
        path: &str,
        headers: &[(&'static str, &str)],
    ) -> (StatusCode, HeaderMap, Bytes) {
        request(repository, Method::GET, path, headers).await
    }

    fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|value| value.to_str().unwrap())
    }

    fn etag_of(headers: &HeaderMap) -> String {
        header(headers, "etag").unwrap().to_owned()
    }

    #[tokio::test]
    async fn serves_metadata_with_its_headers() {
        let fixture = fixture();
        let (status, headers, body) = get(&fixture.repository, "/packages.json", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], PACKAGES);
        assert_eq!(header(&headers, "content-type"), Some("application/json"));
        assert_eq!(header(&headers, "content-length"), Some(PACKAGES.len().to_string().as_str()));
        assert_eq!(header(&headers, "cache-control"), Some("no-cache"));
        assert_eq!(header(&headers, "vary"), Some("accept-encoding"));
        assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
        assert_eq!(header(&headers, "x-content-type-options"), Some("nosniff"));
        assert_eq!(header(&headers, "last-modified"), Some("Tue, 14 Nov 2023 22:13:20 GMT"));
        assert_eq!(header(&headers, "content-encoding"), None);
        let etag = etag_of(&headers);
        assert!(etag.starts_with(&format!("\"{:x}-", PACKAGES.len())) && etag.ends_with('"'), "{etag}");
    }

    #[tokio::test]
    async fn serves_archives_and_percent_encoded_names() {
        let fixture = fixture();
        let (status, headers, body) = get(&fixture.repository, "/packages/acme/a-1.0.0.zip", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], &fixture.zip[..]);
        assert_eq!(header(&headers, "content-type"), Some("application/zip"));
        assert_eq!(header(&headers, "content-length"), Some("10240"));
        assert_eq!(header(&headers, "cache-control"), None);
        assert_eq!(header(&headers, "vary"), None);
        let (status, _, body) = get(&fixture.repository, "/p2/acme/%61.json", &[]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], &fixture.a_json[..]);
    }

    #[test]
    fn kinds_follow_the_extension() {
        assert_eq!(Kind::of(Path::new("a/b.jsonl")), Kind { content_type: "application/jsonl", metadata: true });
        assert_eq!(Kind::of(Path::new("index.html")).content_type, "text/html; charset=utf-8");
        assert_eq!(Kind::of(Path::new("x.sig")), Kind { content_type: "application/octet-stream", metadata: false });
        assert_eq!(Kind::of(Path::new("noextension")).content_type, "application/octet-stream");
    }

    #[tokio::test]
    async fn head_has_the_headers_of_get_and_no_body() {
        let fixture = fixture();
        for (path, accept) in
            [("/packages.json", "identity"), ("/p2/acme/a.json", "gzip"), ("/packages/acme/a-1.0.0.zip", "gzip")]
        {
            let headers = [("accept-encoding", accept)];
            let (get_status, get_headers, _) = get(&fixture.repository, path, &headers).await;
            let (status, head_headers, body) = request(&fixture.repository, Method::HEAD, path, &headers).await;
            assert_eq!(status, get_status);
            assert_eq!(head_headers, get_headers, "{path}");
            assert!(body.is_empty());
        }
    }

    #[tokio::test]
    async fn if_none_match_gives_an_empty_304() {
        let fixture = fixture();
        let (_, headers, _) = get(&fixture.repository, "/packages.json", &[]).await;
        let etag = etag_of(&headers);
        let weak = format!("W/{etag}");
        let listed = format!("\"other\", {etag}");
        for tag in [etag.as_str(), "*", weak.as_str(), listed.as_str()] {
            let (status, not_modified, body) =
                get(&fixture.repository, "/packages.json", &[("if-none-match", tag)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{tag}");
            assert!(body.is_empty());
            assert_eq!(header(&not_modified, "content-length"), None);
            assert_eq!(header(&not_modified, "etag"), Some(etag.as_str()));
            assert_eq!(header(&not_modified, "last-modified"), header(&headers, "last-modified"));
            assert_eq!(header(&not_modified, "cache-control"), Some("no-cache"));
            assert_eq!(header(&not_modified, "vary"), Some("accept-encoding"));
        }
        let (status, _, body) =
            request(&fixture.repository, Method::HEAD, "/packages.json", &[("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn a_mismatched_if_none_match_wins_over_if_modified_since() {
        let fixture = fixture();
        let since = httpdate::fmt_http_date(packages_mtime() + Duration::from_secs(3600));
        let headers = [("if-none-match", "\"stale\""), ("if-modified-since", since.as_str())];
        let (status, _, body) = get(&fixture.repository, "/packages.json", &headers).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], PACKAGES);
    }

    #[tokio::test]
    async fn if_modified_since_compares_whole_seconds() {
        let fixture = fixture();
        let same_second = httpdate::fmt_http_date(packages_mtime());
        let later = httpdate::fmt_http_date(packages_mtime() + Duration::from_secs(60));
        for since in [same_second.as_str(), later.as_str()] {
            let (status, headers, body) =
                get(&fixture.repository, "/packages.json", &[("if-modified-since", since)]).await;
            assert_eq!(status, StatusCode::NOT_MODIFIED, "{since}");
            assert!(body.is_empty());
            assert!(headers.contains_key("etag") && headers.contains_key("last-modified"));
        }
        let earlier = httpdate::fmt_http_date(packages_mtime() - Duration::from_secs(1));
        for since in [earlier.as_str(), "not a date", "Tue, 32 Nov 2023 22:13:20 GMT"] {
            let (status, _, body) = get(&fixture.repository, "/packages.json", &[("if-modified-since", since)]).await;
            assert_eq!(status, StatusCode::OK, "{since}");
            assert_eq!(&body[..], PACKAGES);
        }
    }

    #[tokio::test]
    async fn a_newer_file_is_served_again_with_a_new_etag() {
        let fixture = fixture();
        let (_, before, _) = get(&fixture.repository, "/packages.json", &[]).await;
        let since = header(&before, "last-modified").unwrap().to_owned();
        let file = fixture.repository.resolve("/packages.json").unwrap();
        set_mtime(&file, packages_mtime() + Duration::from_secs(10));
        let (status, after, body) = get(&fixture.repository, "/packages.json", &[("if-modified-since", &since)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], PACKAGES);
        assert_ne!(etag_of(&after), etag_of(&before));
        let (status, _, _) = get(&fixture.repository, "/packages.json", &[("if-none-match", &etag_of(&before))]).await;
        assert_eq!(status, StatusCode::OK);
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    #[tokio::test]
    async fn metadata_is_gzipped_when_accepted() {
        let fixture = fixture();
        let (_, plain_headers, _) = get(&fixture.repository, "/p2/acme/a.json", &[]).await;
        for accept in ["gzip", "br, gzip;q=0.5", "*", "deflate, GZIP ; q=1"] {
            let (status, headers, body) =
                get(&fixture.repository, "/p2/acme/a.json", &[("accept-encoding", accept)]).await;
            assert_eq!(status, StatusCode::OK, "{accept}");
            assert_eq!(header(&headers, "content-encoding"), Some("gzip"), "{accept}");
            assert_eq!(header(&headers, "content-length"), Some(body.len().to_string().as_str()));
            assert_eq!(header(&headers, "vary"), Some("accept-encoding"));
            assert_eq!(header(&headers, "accept-ranges"), None);
            assert_eq!(header(&headers, "content-type"), Some("application/json"));
            assert_eq!(gunzip(&body), fixture.a_json);
            assert!(body.len() < fixture.a_json.len());
            let etag = etag_of(&headers);
            assert!(etag.ends_with("-gz\""), "{etag}");
            assert_ne!(etag, etag_of(&plain_headers));
        }
    }

    #[tokio::test]
    async fn gzip_is_not_used_when_refused_or_for_archives() {
        let fixture = fixture();
        for accept in ["gzip;q=0", "deflate", "*;q=0", "gzip;q=0, *", "identity", "gzip;q=abc"] {
            let (status, headers, body) =
                get(&fixture.repository, "/p2/acme/a.json", &[("accept-encoding", accept)]).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(header(&headers, "content-encoding"), None, "{accept}");
            assert_eq!(&body[..], &fixture.a_json[..]);
            assert_eq!(header(&headers, "vary"), Some("accept-encoding"));
        }
        let (_, headers, body) =
            get(&fixture.repository, "/packages/acme/a-1.0.0.zip", &[("accept-encoding", "gzip")]).await;
        assert_eq!(header(&headers, "content-encoding"), None);
        assert_eq!(&body[..], &fixture.zip[..]);
    }

    #[tokio::test]
    async fn the_gzip_etag_revalidates_and_gzip_ignores_ranges() {
        let fixture = fixture();
        let accept = ("accept-encoding", "gzip");
        let (_, headers, full) = get(&fixture.repository, "/p2/acme/a.json", &[accept]).await;
        let etag = etag_of(&headers);
        let (status, not_modified, body) =
            get(&fixture.repository, "/p2/acme/a.json", &[accept, ("if-none-match", &etag)]).await;
        assert_eq!(status, StatusCode::NOT_MODIFIED);
        assert!(body.is_empty());
        assert_eq!(header(&not_modified, "etag"), Some(etag.as_str()));
        let (status, headers, body) =
            get(&fixture.repository, "/p2/acme/a.json", &[accept, ("range", "bytes=0-9")]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(header(&headers, "content-range"), None);
        assert_eq!(body, full);
    }

    #[tokio::test]
    async fn single_ranges_give_206() {
        let fixture = fixture();
        let zip = &fixture.zip;
        let cases = [
            ("bytes=0-99", 0, 99),
            ("bytes=100-", 100, 10239),
            ("bytes=-16", 10224, 10239),
            ("bytes=10000-99999", 10000, 10239),
            ("bytes=-20000", 0, 10239),
            ("bytes=10239-10239", 10239, 10239),
        ];
        for (range, start, end) in cases {
            let (status, headers, body) =
                get(&fixture.repository, "/packages/acme/a-1.0.0.zip", &[("range", range)]).await;
            assert_eq!(status, StatusCode::PARTIAL_CONTENT, "{range}");
            assert_eq!(header(&headers, "content-range"), Some(format!("bytes {start}-{end}/10240").as_str()));
            assert_eq!(header(&headers, "content-length"), Some((end - start + 1).to_string().as_str()));
            assert_eq!(&body[..], &zip[start..=end], "{range}");
        }
        let (status, headers, body) =
            request(&fixture.repository, Method::HEAD, "/packages/acme/a-1.0.0.zip", &[("range", "bytes=5-9")]).await;
        assert_eq!(status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(header(&headers, "content-length"), Some("5"));
        assert!(body.is_empty());
    }

    #[tokio::test]
    async fn unsatisfiable_ranges_give_an_empty_416() {
        let fixture = fixture();
        for range in ["bytes=10240-", "bytes=20000-30000", "bytes=-0"] {
            let (status, headers, body) =
                get(&fixture.repository, "/packages/acme/a-1.0.0.zip", &[("range", range)]).await;
            assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
            assert_eq!(header(&headers, "content-range"), Some("bytes */10240"));
            assert!(body.is_empty());
        }
    }

    #[tokio::test]
    async fn multiple_or_malformed_ranges_are_ignored() {
        let fixture = fixture();
        for range in ["bytes=0-1,5-9", "bytes=9-5", "bytes=abc", "items=0-5", "bytes=-", "bytes=+1-5", "bytes=0-5-"] {
            let (status, headers, body) =
                get(&fixture.repository, "/packages/acme/a-1.0.0.zip", &[("range", range)]).await;
            assert_eq!(status, StatusCode::OK, "{range}");
            assert_eq!(header(&headers, "content-range"), None);
            assert_eq!(&body[..], &fixture.zip[..]);
        }
    }

    #[tokio::test]
    async fn if_range_must_match_for_the_range_to_apply() {
        let fixture = fixture();
        let path = "/packages/acme/a-1.0.0.zip";
        let (_, headers, _) = get(&fixture.repository, path, &[]).await;
        let etag = etag_of(&headers);
        let date = header(&headers, "last-modified").unwrap().to_owned();
        let weak = format!("W/{etag}");
        for (if_range, expected) in [
            (etag.as_str(), StatusCode::PARTIAL_CONTENT),
            (date.as_str(), StatusCode::PARTIAL_CONTENT),
            ("\"stale\"", StatusCode::OK),
            (weak.as_str(), StatusCode::OK),
            ("Mon, 01 Jan 2001 00:00:00 GMT", StatusCode::OK),
            ("garbage", StatusCode::OK),
        ] {
            let (status, _, body) =
                get(&fixture.repository, path, &[("range", "bytes=0-9"), ("if-range", if_range)]).await;
            assert_eq!(status, expected, "{if_range}");
            let expected_len = if expected == StatusCode::OK { 10240 } else { 10 };
            assert_eq!(body.len(), expected_len);
        }
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(parse_range("bytes=0-0", 1), Some(Span::Part { start: 0, end: 0 }));
        assert_eq!(parse_range("Bytes = 2-", 5), Some(Span::Part { start: 2, end: 4 }));
        assert_eq!(parse_range("bytes=-1", 0), Some(Span::Unsatisfiable));
        assert_eq!(parse_range("bytes=0-", 0), Some(Span::Unsatisfiable));
        assert_eq!(parse_range("bytes=0-99999999999999999999999", 5), None);
        assert_eq!(parse_range("bytes=1-2, 3-4", 5), None);
        assert_eq!(parse_range("bytes 1-2", 5), None);
    }

    #[test]
    fn accept_encoding_parses_qualities() {
        let accepts = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
            accepts_gzip(&headers)
        };
        assert!(accepts("gzip, deflate, br"));
        assert!(accepts("x-gzip"));
        assert!(accepts("gzip;q=0.001"));
        assert!(accepts("*;q=0.1"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("gzip;q=0.000"));
        assert!(!accepts("gzip;q=0, *;q=1"));
        assert!(!accepts("br"));
        assert!(!accepts(""));
        assert!(!accepts("gzip;q=2"));
        assert!(!accepts("gzip;q=NaN"));
    }

    #[tokio::test]
    async fn other_methods_get_405_with_allow() {
        let fixture = fixture();
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::OPTIONS] {
            let (status, headers, _) = request(&fixture.repository, method, "/packages.json", &[]).await;
            assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(header(&headers, "allow"), Some("GET, HEAD"));
        }
    }

    const ATTACKS: &[&str] = &[
        "/../secret",
        "/%2e%2e/secret",
        "/%2E%2E/%2e%2e/secret",
        "/%2E%2e/secret",
        "/p2/..%2f..%2fsecret",
        "/p2/%2e%2e/%2e%2e/secret",
        "/p2/%2e%2e%2f%2e%2e%2fsecret",
        "/p2/%252e%252e/%252e%252e/secret",
        "/..",
        "/.",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/%2Fetc%2Fpasswd",
        "/.farm/manifest.json",
        "/%2efarm/manifest.json",
        "/.hidden",
        "/p2/./acme/a.json",
        "/p2/%2e/acme/a.json",
        "/p2//acme/a.json",
        "/p2/acme/a.json/",
        "/p2\\..\\secret",
        "/p2/%5c..%5csecret",
        "/p2/%5C..%5Csecret",
        "/p2/a%00.json",
        "/p2/acme/a.json%00",
        "/p2/%ff.json",
        "/p2/evil.json",
        "/p2/alias.json",
        "/p2/linked/a.json",
        "/outside/secret",
        "/outside/repo/packages.json",
        "/p2/",
        "/p2",
        "/packages",
        "/",
        "",
        "packages.json",
        "/missing.json",
        "/packages.json/x",
    ];

    #[tokio::test]
    async fn attacks_get_404_and_never_the_secret() {
        let fixture = fixture();
        let root = fixture.outer.path().to_string_lossy().into_owned();
        for attack in ATTACKS {
            for method in [Method::GET, Method::HEAD] {
                let (status, headers, body) = request(&fixture.repository, method, attack, &[]).await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{attack}");
                assert!(headers.get("etag").is_none());
                let text = String::from_utf8_lossy(&body);
                assert!(!text.contains("SECRET") && !text.contains("farm state") && !text.contains(&root), "{attack}");
            }
            assert_eq!(fixture.repository.resolve(attack), None, "{attack}");
        }
    }

    #[tokio::test]
    async fn resolve_names_the_file_under_the_root() {
        let fixture = fixture();
        let root = fixture.outer.path().canonicalize().unwrap().join("repo");
        assert_eq!(fixture.repository.resolve("/p2/acme/a.json"), Some(root.join("p2/acme/a.json")));
        assert_eq!(fixture.repository.resolve("/p2/acme/a.json?x=1"), Some(root.join("p2/acme/a.json")));
        assert_eq!(
            fixture.repository.resolve("/packages/acme/a-1.0.0.zip"),
            Some(root.join("packages/acme/a-1.0.0.zip"))
        );
    }

    #[tokio::test]
    async fn handle_ignores_the_query() {
        let fixture = fixture();
        let request = Request::builder().uri("/packages.json?x=1&y=%2e%2e").body(Body::empty()).unwrap();
        let response = handle(Arc::new(fixture.repository.clone()), request).await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&body[..], PACKAGES);
        let request = Request::builder().method(Method::POST).uri("/packages.json").body(Body::empty()).unwrap();
        assert_eq!(handle(Arc::new(fixture.repository), request).await.status(), StatusCode::METHOD_NOT_ALLOWED);
    }

    #[test]
    fn open_refuses_what_is_not_a_directory() {
        let fixture = fixture();
        let root = fixture.outer.path().join("repo");
        assert!(Repository::open(&root.join("packages.json")).is_err());
        assert!(Repository::open(&root.join("nothing")).is_err());
        // A symlink to a directory is fine as the root itself: it is canonicalized.
        let opened = Repository::open(&root.join("p2/linked")).unwrap();
        assert_eq!(opened.resolve("/a.json"), Some(root.canonicalize().unwrap().join("p2/acme/a.json")));
    }
}
