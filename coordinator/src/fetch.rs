//! Reading a Composer repository the farm does not control (`adopt`, `verify`): over HTTP with
//! connect, read and total timeouts, byte limits and a same-origin rule (for every link and every
//! redirect), or from a folder it cannot leave (no `..`, no symlink out).
//!
//! Everything here treats the source as hostile: a document larger than its limit is refused
//! before it is buffered, a silent server times out, and a link to another host is not followed
//! unless that host is allowed.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sha1::Digest as _;
use shared::archive::ArchiveDigest;

mod shape;

/// How much a source may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Longest silence while reading an answer.
    pub read_timeout: Duration,
    /// Longest time one request may take, body included.
    pub total_timeout: Duration,
    /// Largest metadata document (`packages.json`, a p2 file, an include).
    pub max_metadata_bytes: u64,
    /// Largest archive.
    pub max_archive_bytes: u64,
    /// Most versions one package may list in one document.
    pub max_versions: usize,
    /// Most package names `packages.json` may list.
    pub max_packages: usize,
    /// Most JSON values (objects, arrays, strings, numbers, ...) in one metadata document.
    pub max_json_values: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            total_timeout: Duration::from_secs(600),
            max_metadata_bytes: 32 << 20,
            max_archive_bytes: 1 << 30,
            max_versions: 10_000,
            max_packages: 100_000,
            max_json_values: 2_000_000,
        }
    }
}

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server did not answer in time.
    #[error("{url}: timed out (connect {connect:?}, read {read:?}, total {total:?})")]
    Timeout {
        /// What was requested.
        url: String,
        /// The connect timeout.
        connect: Duration,
        /// The read timeout.
        read: Duration,
        /// The total timeout.
        total: Duration,
    },
    /// The document is larger than its limit.
    #[error("{url}: larger than the limit of {limit} bytes; not read")]
    TooLarge {
        /// What was requested.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The server answered with an error status.
    #[error("{url}: HTTP {status}")]
    Status {
        /// What was requested.
        url: String,
        /// The status.
        status: reqwest::StatusCode,
    },
    /// The request failed.
    #[error("{url}: {message}")]
    Transport {
        /// What was requested.
        url: String,
        /// What went wrong, with its causes.
        message: String,
    },
    /// A link (or a redirect) leads to another origin.
    #[error("{url}: on another origin than {origin}; not followed (allow its host with --allow-host)")]
    Foreign {
        /// The link.
        url: String,
        /// The source's origin.
        origin: String,
    },
    /// A link that is no URL.
    #[error("{location}: not a URL: {message}")]
    BadLink {
        /// The link as given.
        location: String,
        /// The parser's complaint.
        message: String,
    },
    /// A link in a folder source leads outside the folder.
    #[error("{location}: outside the folder {root}; not read")]
    Escape {
        /// The link as given.
        location: String,
        /// The folder.
        root: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A metadata document lists more versions of one package than allowed.
    #[error("{location}: {name} lists more than {limit} versions, over the limit; not read")]
    TooManyVersions {
        /// The document.
        location: String,
        /// The package, escaped.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// A metadata document is not JSON, or has more values than allowed.

    #[error("{location} is not JSON: {message}")]
    Json {
        /// The document.
        location: String,
        /// The parser's complaint.
        message: String,
    },
}

/// Where a repository is read from.
pub struct Source {
    kind: Kind,
    limits: Limits,
}

enum Kind {
    /// Served over HTTP(S); links must stay on one of `origins`.
    Http { base: url::Url, client: reqwest::Client, origins: Vec<String>, credentials: Credentials },
    /// A folder holding `packages.json`, published at `public`.
    Folder { root: PathBuf, public: String },
}

impl Source {
    /// A URL (where `packages.json` is served) or a folder. `public_base` is where a folder's
    /// metadata says it is published; `allowed_hosts` may be linked to besides the source's own.
    pub fn open(from: &str, public_base: &str, limits: Limits, allowed_hosts: &[String]) -> Result<Source, FetchError> {
        if from.starts_with("http://") || from.starts_with("https://") {
            return Source::http(from, limits, allowed_hosts);
        }
        let path = Path::new(from);
        let folder = if path.is_file() { path.parent().unwrap_or(Path::new(".")) } else { path };
        if !folder.join("packages.json").is_file() {
            let source = std::io::Error::new(std::io::ErrorKind::NotFound, "holds no packages.json");
            return Err(FetchError::Io { path: folder.display().to_string(), source });
        }
        let root = std::fs::canonicalize(folder).map_err(|source| FetchError::Io { path: from.to_owned(), source })?;
        Ok(Source { kind: Kind::Folder { root, public: public_base.trim_end_matches('/').to_owned() }, limits })
    }

    /// A repository served at `from`.
    pub fn http(from: &str, limits: Limits, allowed_hosts: &[String]) -> Result<Source, FetchError> {
        let bad = |message: String| FetchError::BadLink { location: from.to_owned(), message };
        // The folder `packages.json` is in, with one trailing slash: links join onto it.
        let mut base = url::Url::parse(from).map_err(|e| bad(e.to_string()))?;
        let folder = base.path().trim_end_matches('/').trim_end_matches("/packages.json").to_owned();
        base.set_path(&folder);
        base.path_segments_mut().map_err(|()| bad("not a repository address".to_owned()))?.pop_if_empty().push("");
        if base.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host".to_owned()));
        }
        let mut origins = vec![origin_of(&base)];
        origins.extend(allowed_hosts.iter().map(|host| host.to_ascii_lowercase()));
        let allowed = origins.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 5 {
                attempt.error("more than 5 redirects")
            } else if is_allowed(&allowed, attempt.url()) {
                attempt.follow()
            } else {
                let error = format!("redirect to {} leaves the source's origin; not followed", attempt.url());
                attempt.error(error)
            }
        });
        let client = reqwest::Client::builder()
            .user_agent(concat!("composer-farm/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(limits.connect_timeout)
            .read_timeout(limits.read_timeout)
            .timeout(limits.total_timeout)
            .redirect(redirects)
            .build()
            .map_err(|e| bad(shared::telemetry::error_chain(&e)))?;
        Ok(Source { kind: Kind::Http { base, client, origins, credentials: Credentials::default() }, limits })
    }

    /// Sends these credentials to their hosts (as Composer does with `auth.json`).
    pub fn with_credentials(mut self, given: Credentials) -> Source {
        if let Kind::Http { credentials, .. } = &mut self.kind {
            *credentials = given;
        }
        self
    }

    /// Whether the source is a folder (its metadata names archives by public URL; the file is at
    /// the key).
    pub fn is_folder(&self) -> bool {
        matches!(self.kind, Kind::Folder { .. })
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The source as shown in reports (URL without trailing slash, or the folder).
    pub fn base(&self) -> String {
        match &self.kind {
            Kind::Http { base, .. } => base.as_str().trim_end_matches('/').to_owned(),
            Kind::Folder { root, .. } => root.display().to_string(),
        }
    }

    /// The absolute URL of a link from the metadata, if it stays on an allowed origin.
    pub fn resolve(&self, location: &str) -> Result<String, FetchError> {
        match &self.kind {
            Kind::Http { base, origins, .. } => {
                let url = base
                    .join(location)
                    .map_err(|e| FetchError::BadLink { location: location.to_owned(), message: e.to_string() })?;
                if !is_allowed(origins, &url) {
                    return Err(FetchError::Foreign { url: url.to_string(), origin: origin_of(base) });
                }
                Ok(url.to_string())
            }
            Kind::Folder { .. } => Ok(self.folder_path(location)?.display().to_string()),
        }
    }

    /// A metadata document as JSON; `None` if it does not exist.
    pub async fn metadata(&self, location: &str) -> Result<Option<Value>, FetchError> {
        let mut bytes = Vec::new();
        if self.read(location, self.limits.max_metadata_bytes, &mut bytes).await?.is_none() {
            return Ok(None);
        }
        let json_error = |message: String| FetchError::Json { location: location.to_owned(), message };
        // Measured before it is parsed: a small document can still hold a million tiny values.
        let bounds = shape::Bounds { values: self.limits.max_json_values, versions: self.limits.max_versions };
        match shape::measure(&bytes, bounds) {
            Ok(_) => {}
            Err(shape::Refusal::Json(message)) => return Err(json_error(message)),
            Err(shape::Refusal::Values(limit)) => {
                return Err(json_error(format!("holds more than {limit} values, over the limit; not read")));
            }
            Err(shape::Refusal::Versions(name, limit)) => {
                let name = shared::identity::shown(&name);
                return Err(FetchError::TooManyVersions { location: location.to_owned(), name, limit });
            }
        }
        serde_json::from_slice(&bytes).map(Some).map_err(|e| json_error(e.to_string()))
    }

    /// Streams an archive into `out` (a file: nothing is kept in memory; a `Vec` for what is read
    /// whole anyway), within the archive limit; `None` if it does not exist.
    pub async fn archive(
        &self,
        location: &str,
        out: &mut impl std::io::Write,
    ) -> Result<Option<ArchiveDigest>, FetchError> {
        self.read(location, self.limits.max_archive_bytes, out).await
    }

    /// Downloads `location` only to hash it (within the archive limit); `None` if it does not exist.
    pub async fn digest(&self, location: &str) -> Result<Option<ArchiveDigest>, FetchError> {
        self.read(location, self.limits.max_archive_bytes, &mut std::io::sink()).await
    }

    /// Reads `location` into `sink`, at most `limit` bytes, hashing as it goes.
    async fn read(
        &self,
        location: &str,
        limit: u64,
        sink: &mut impl std::io::Write,
    ) -> Result<Option<ArchiveDigest>, FetchError> {
        let mut hasher = Hasher::new(sink, limit);
        let found = match &self.kind {
            Kind::Http { client, credentials, .. } => {
                let url = self.resolve(location)?;
                http_read(client.get(&url), credentials.for_url(&url), &url, &self.limits, &mut hasher).await?
            }
            Kind::Folder { .. } => {
                let path = self.folder_path(location)?;
                folder_read(&path, &mut hasher)?
            }
        };
        Ok(found.then(|| hasher.finish()))
    }

    /// The file a folder source's link names, proven to lie inside the folder.
    fn folder_path(&self, location: &str) -> Result<PathBuf, FetchError> {
        let Kind::Folder { root, public } = &self.kind else { unreachable!("folder sources only") };
        let escape = || FetchError::Escape { location: location.to_owned(), root: root.display().to_string() };
        // Metadata names files by their public URL: the path below the public base, or (another
        // host) the URL's path.
        let relative = match location.strip_prefix(&format!("{public}/")) {
            Some(rest) => rest,
            None => match location.split_once("://") {
                Some((_, rest)) => rest.split_once('/').map_or("", |(_, path)| path),
                None => location,
            },
        };
        let relative = relative.split(['?', '#']).next().unwrap_or_default().trim_start_matches('/');
        let path = Path::new(relative);
        if relative.is_empty() || path.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(escape());
        }
        let joined = root.join(path);
        // Symlinks inside the folder are followed only while they stay inside it.
        match std::fs::canonicalize(&joined) {
            Ok(real) if real.starts_with(root) => Ok(real),
            Ok(_) => Err(escape()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(joined),
            Err(source) => Err(FetchError::Io { path: joined.display().to_string(), source }),
        }
    }
}

/// A host's credentials, as Composer's `auth.json` gives them.
#[derive(Clone)]
pub enum Credential {
    /// `http-basic`.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `bearer`.
    Bearer(String),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Credentials per host (lower case), sent only to that host.
#[derive(Debug, Clone, Default)]
pub struct Credentials(std::collections::HashMap<String, Credential>);

impl Credentials {
    /// Reads a Composer `auth.json` (`http-basic` and `bearer`; other kinds are ignored).
    pub fn load(path: &Path) -> Result<Credentials, FetchError> {
        let io = |source| FetchError::Io { path: path.display().to_string(), source };
        let text = std::fs::read(path).map_err(io)?;
        let json_error = |message: String| FetchError::Json { location: path.display().to_string(), message };
        let document: Value = serde_json::from_slice(&text).map_err(|e| json_error(e.to_string()))?;
        let mut credentials = std::collections::HashMap::new();
        for (host, entry) in document["http-basic"].as_object().into_iter().flatten() {
            let field = |name: &str| entry[name].as_str().map(str::to_owned);
            match (field("username"), field("password")) {
                (Some(username), Some(password)) => {
                    credentials.insert(host.to_ascii_lowercase(), Credential::Basic { username, password });
                }
                _ => return Err(json_error(format!("http-basic.{host} needs a username and a password"))),
            }
        }
        for (host, token) in document["bearer"].as_object().into_iter().flatten() {
            let token = token.as_str().ok_or_else(|| json_error(format!("bearer.{host} is not a string")))?;
            credentials.insert(host.to_ascii_lowercase(), Credential::Bearer(token.to_owned()));
        }
        Ok(Credentials(credentials))
    }

    /// The credential for a URL's host, if any.
    fn for_url(&self, url: &str) -> Option<&Credential> {
        let host = url::Url::parse(url).ok()?.host_str()?.to_ascii_lowercase();
        self.0.get(&host)
    }
}

/// `scheme://host[:port]`, lower case.
fn origin_of(url: &url::Url) -> String {
    url.origin().ascii_serialization().to_ascii_lowercase()
}

/// Whether `url` is on one of the origins (`scheme://host[:port]`) or hosts allowed.
fn is_allowed(origins: &[String], url: &url::Url) -> bool {
    let origin = origin_of(url);
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    matches!(url.scheme(), "http" | "https") && origins.iter().any(|allowed| *allowed == origin || *allowed == host)
}

async fn http_read(
    request: reqwest::RequestBuilder,
    credential: Option<&Credential>,
    url: &str,
    limits: &Limits,
    sink: &mut Hasher<'_, impl std::io::Write>,
) -> Result<bool, FetchError> {
    let failed = |error: reqwest::Error| {
        if error.is_timeout() {
            FetchError::Timeout {
                url: url.to_owned(),
                connect: limits.connect_timeout,
                read: limits.read_timeout,
                total: limits.total_timeout,
            }
        } else {
            FetchError::Transport { url: url.to_owned(), message: shared::telemetry::error_chain(&error) }
        }
    };
    let request = match credential {
        Some(Credential::Basic { username, password }) => request.basic_auth(username, Some(password)),
        Some(Credential::Bearer(token)) => request.bearer_auth(token),
        None => request,
    };
    let mut response = request.send().await.map_err(failed)?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return Ok(false);
    }
    if !response.status().is_success() {
        return Err(FetchError::Status { url: url.to_owned(), status: response.status() });
    }
    if response.content_length().is_some_and(|length| length > sink.limit) {
        return Err(FetchError::TooLarge { url: url.to_owned(), limit: sink.limit });
    }
    while let Some(chunk) = response.chunk().await.map_err(failed)? {
        sink.take(&chunk).map_err(|error| error.at(url, sink.limit))?;
    }
    Ok(true)
}

fn folder_read(path: &Path, sink: &mut Hasher<'_, impl std::io::Write>) -> Result<bool, FetchError> {
    let shown = || path.display().to_string();
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(FetchError::Io { path: shown(), source }),
    };
    let mut buffer = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut buffer).map_err(|source| FetchError::Io { path: shown(), source })?;
        if n == 0 {
            return Ok(true);
        }
        sink.take(&buffer[..n]).map_err(|error| error.at(&shown(), sink.limit))?;
    }
}

enum TakeError {
    TooLarge,
    Io(std::io::Error),
}

impl TakeError {
    /// The error reading `what` (a URL or a file) with `limit` bytes allowed.
    fn at(self, what: &str, limit: u64) -> FetchError {
        match self {
            TakeError::TooLarge => FetchError::TooLarge { url: what.to_owned(), limit },
            TakeError::Io(source) => FetchError::Io { path: what.to_owned(), source },
        }
    }
}

/// Counts, hashes and forwards bytes, refusing more than `limit`.
struct Hasher<'a, W> {
    sink: &'a mut W,
    limit: u64,
    size: u64,
    sha1: sha1::Sha1,
    sha256: sha2::Sha256,
}

impl<'a, W: std::io::Write> Hasher<'a, W> {
    fn new(sink: &'a mut W, limit: u64) -> Self {
        Hasher { sink, limit, size: 0, sha1: sha1::Sha1::new(), sha256: sha2::Sha256::new() }
    }

    fn take(&mut self, bytes: &[u8]) -> Result<(), TakeError> {
        self.size += bytes.len() as u64;
        if self.size > self.limit {
            return Err(TakeError::TooLarge);
        }
        self.sha1.update(bytes);
        self.sha256.update(bytes);
        self.sink.write_all(bytes).map_err(TakeError::Io)
    }

    fn finish(self) -> ArchiveDigest {
        let _ = self.sink.flush();
        ArchiveDigest {
            size: self.size,
            sha1: hex::encode(self.sha1.finalize()),
            sha256: hex::encode(self.sha256.finalize()),
        }
    }
}

/// Problems a summary lists one by one; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 50;

/// The first [`SHOWN_PROBLEMS`] problems, one line each, and how many more there are.
pub fn summarise(problems: &[String]) -> String {
    summarise_first(problems, SHOWN_PROBLEMS)
}

fn summarise_first(problems: &[String], shown: usize) -> String {
    let mut out = String::new();
    for problem in problems.iter().take(shown) {
        out.push_str("  ");
        out.extend(problem.chars().take(1000).flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        }));
        out.push('\n');
    }
    if problems.len() > shown {
        let _ = writeln!(out, "  … and {} more problems", problems.len() - shown);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_source(root: &Path) -> Source {
        std::fs::write(root.join("packages.json"), b"{}").unwrap();
        Source::open(&root.display().to_string(), "https://repo.example.org/", Limits::default(), &[]).unwrap()
    }

    /// One HTTP request's head, answered with `{}`.
    async fn answer_once(listener: tokio::net::TcpListener) -> String {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}").await.unwrap();
        String::from_utf8(head).unwrap().to_ascii_lowercase()
    }

    #[tokio::test]
    async fn credentials_from_auth_json_go_to_their_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let auth = dir.path().join("auth.json");
        std::fs::write(&auth, r#"{"http-basic": {"127.0.0.1": {"username": "shop", "password": "s3cret"}}, "bearer": {"localhost": "tok"}}"#)
            .unwrap();
        let credentials = Credentials::load(&auth).unwrap();
        assert_eq!(format!("{credentials:?}").matches("s3cret").count(), 0, "credentials are never printed");
        let cases = [
            // The head is compared in lower case: base64("shop:s3cret") is c2hvcDpzM2NyZXQ=.
            ("127.0.0.1", "127.0.0.1", Some("authorization: basic c2hvcdpzm2nyzxq=")),
            ("localhost", "127.0.0.1", Some("authorization: bearer tok")),
            ("127.0.0.2", "127.0.0.2", None),
        ];
        for (host, bind, expected) in cases {
            let listener = tokio::net::TcpListener::bind((bind, 0)).await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let server = tokio::spawn(answer_once(listener));
            let source = Source::http(&format!("http://{host}:{port}/"), Limits::default(), &[]).unwrap();
            let source = source.with_credentials(credentials.clone());
            assert!(source.metadata("packages.json").await.unwrap().is_some());
            let head = server.await.unwrap();
            match expected {
                Some(line) => assert!(head.contains(line), "{host}: {head}"),
                None => assert!(!head.contains("authorization"), "{host}: {head}"),
            }
        }
        std::fs::write(&auth, r#"{"http-basic": {"repo.example": {"username": "only"}}}"#).unwrap();
        assert!(Credentials::load(&auth).unwrap_err().to_string().contains("needs a username and a password"));
    }

    #[test]
    fn links_stay_on_the_origin() {
        let source =
            Source::http("http://127.0.0.1:8080/repo/", Limits::default(), &["cdn.example".to_owned()]).unwrap();
        assert_eq!(source.resolve("p2/a/b.json").unwrap(), "http://127.0.0.1:8080/repo/p2/a/b.json");
        assert_eq!(source.resolve("/p2/a/b.json").unwrap(), "http://127.0.0.1:8080/p2/a/b.json");
        assert_eq!(source.resolve("http://127.0.0.1:8080/x.zip").unwrap(), "http://127.0.0.1:8080/x.zip");
        assert_eq!(source.resolve("https://cdn.example/x.zip").unwrap(), "https://cdn.example/x.zip");
        for foreign in
            ["http://127.0.0.1:8081/x", "https://127.0.0.1:8080/x", "http://evil.example/x", "//evil.example/x"]
        {
            assert!(matches!(source.resolve(foreign), Err(FetchError::Foreign { .. })), "{foreign}");
        }
        assert!(source.resolve("file:///etc/passwd").is_err());
    }

    #[test]
    fn the_base_is_the_folder_of_packages_json() {
        for (from, p2) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/p2/a/b.json"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/p2/a/b.json"),
            ("http://127.0.0.1:8080/packages.json", "http://127.0.0.1:8080/p2/a/b.json"),
            ("http://127.0.0.1:8080/repo", "http://127.0.0.1:8080/repo/p2/a/b.json"),
            ("http://127.0.0.1:8080/repo//", "http://127.0.0.1:8080/repo/p2/a/b.json"),
            ("http://127.0.0.1:8080/repo/packages.json", "http://127.0.0.1:8080/repo/p2/a/b.json"),
        ] {
            let source = Source::http(from, Limits::default(), &[]).unwrap();
            assert_eq!(source.resolve("p2/a/b.json").unwrap(), p2, "{from}");
            assert_eq!(format!("{}/p2/a/b.json", source.base()), p2, "{from}");
        }
    }

    #[test]
    fn folder_links_cannot_leave_the_folder() {
        let temp = tempfile::tempdir().unwrap();
        let root = temp.path().join("repo");
        std::fs::create_dir_all(root.join("p2")).unwrap();
        std::fs::write(temp.path().join("secret.json"), b"{}").unwrap();
        std::os::unix::fs::symlink(temp.path().join("secret.json"), root.join("p2/link.json")).unwrap();
        let source = folder_source(&root);
        for escape in
            ["../secret.json", "p2/../../secret.json", "p2/link.json", "https://repo.example.org/../secret.json", ""]
        {
            assert!(matches!(source.folder_path(escape), Err(FetchError::Escape { .. })), "{escape}");
        }
        // A leading '/' is the folder's root, as a URL path is.
        let inside = source.folder_path("/p2/a.json").unwrap();
        assert!(inside.starts_with(std::fs::canonicalize(&root).unwrap()));
    }

    #[tokio::test]
    async fn folder_documents_over_the_limit_are_refused() {
        let temp = tempfile::tempdir().unwrap();
        let mut source = folder_source(temp.path());
        std::fs::write(temp.path().join("big.json"), vec![b' '; 2048]).unwrap();
        source.limits.max_metadata_bytes = 1024;
        assert!(matches!(source.metadata("big.json").await, Err(FetchError::TooLarge { limit: 1024, .. })));
        assert!(source.metadata("missing.json").await.unwrap().is_none());
    }

    #[test]
    fn summaries_are_bounded_and_one_line_each() {
        let problems: Vec<String> = (0..1000).map(|i| format!("p{i}\nsecond line")).collect();
        let text = summarise_first(&problems, 3);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(text.ends_with("… and 997 more problems\n"));
    }
}
