//! Real services for the distributed tests: RabbitMQ (the machine's broker, or a private node that
//! a test may restart), a TCP proxy that can cut or slow a connection path, and the `worker` /
//! `coordinator` binaries as child processes with their log lines captured. The S3 server
//! (SeaweedFS) is in [`crate::seaweed`].

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::free_port;

/// The AMQP URL of the machine's broker (`FARM_TEST_AMQP_URL` overrides).
pub fn amqp_url() -> String {
    std::env::var("FARM_TEST_AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// A queue prefix no other test (or run) uses.
pub fn unique_prefix(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("test-{label}-{}-{nanos}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Deletes the queues and the dead-letter exchange of a farm prefix (best effort: a test's broker
/// may be gone already). For synchronous callers; async ones use [`delete_topology_async`].
pub fn delete_topology(url: &str, prefix: &str) {
    let Ok(runtime) = tokio::runtime::Runtime::new() else { return };
    runtime.block_on(delete_topology_async(url, prefix));
}

/// [`delete_topology`] inside a runtime.
pub async fn delete_topology_async(url: &str, prefix: &str) {
    let connect = shared::amqp::connect(url, "test cleanup");
    let Ok(Ok(connection)) = tokio::time::timeout(Duration::from_secs(5), connect).await else { return };
    let Ok(channel) = connection.create_channel().await else { return };
    for queue in ["jobs", "jobs.retry", "dead"] {
        let name = format!("{prefix}.{queue}");
        let _ = channel.queue_delete(name.as_str().into(), lapin::options::QueueDeleteOptions::default()).await;
    }
    let exchange = format!("{prefix}.dlx");
    let _ = channel.exchange_delete(exchange.as_str().into(), lapin::options::ExchangeDeleteOptions::default()).await;
    let _ = connection.close(200, "cleanup".into()).await;
}

/// A built binary of the workspace (`worker`, `coordinator`), next to the test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe.parent().and_then(Path::parent).expect("target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built; run `cargo build --workspace` (cargo test --workspace builds it)",
        path.display()
    );
    path
}

/// Waits until something accepts connections on the loopback port.
pub fn wait_for_port(port: u16, limit: Duration) {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < limit, "nothing listens on port {port} after {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP proxy on a loopback port that can be switched off (connections refused, open ones cut)
/// and on again: "the server is unreachable for a while" without losing the server's state.
pub struct TcpProxy {
    /// The proxy's port.
    pub port: u16,
    enabled: Arc<AtomicBool>,
    generation: Arc<AtomicU64>,
    delay_ms: Arc<AtomicU64>,
    held: Arc<AtomicBool>,
}

impl TcpProxy {
    /// Forwards `127.0.0.1:<new port>` to `127.0.0.1:target`.
    pub fn start(target: u16) -> TcpProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let enabled = Arc::new(AtomicBool::new(true));
        let generation = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let held = Arc::new(AtomicBool::new(false));
        let (on, generations, delays, holds) =
            (Arc::clone(&enabled), Arc::clone(&generation), Arc::clone(&delay_ms), Arc::clone(&held));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(client) = stream else { continue };
                if !on.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", target)) else { continue };
                let born = generations.load(Ordering::SeqCst);
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ] {
                    let (generations, delays, holds) =
                        (Arc::clone(&generations), Arc::clone(&delays), Arc::clone(&holds));
                    std::thread::spawn(move || {
                        let mut buffer = vec![0u8; 64 * 1024];
                        from.set_read_timeout(Some(Duration::from_millis(200))).ok();
                        loop {
                            if generations.load(Ordering::SeqCst) != born {
                                break;
                            }
                            // Held: nothing is read, so nothing moves either way until released.
                            if holds.load(Ordering::SeqCst) {
                                std::thread::sleep(Duration::from_millis(10));
                                continue;
                            }
                            match std::io::Read::read(&mut from, &mut buffer) {
                                Ok(0) => break,
                                Ok(n) => {
                                    let delay = delays.load(Ordering::SeqCst);
                                    if delay > 0 {
                                        std::thread::sleep(Duration::from_millis(delay));
                                    }
                                    if std::io::Write::write_all(&mut to, &buffer[..n]).is_err() {
                                        break;
                                    }
                                }
                                Err(e)
                                    if matches!(
                                        e.kind(),
                                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => break,
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        TcpProxy { port, enabled, generation, delay_ms, held }
    }

    /// Holds every byte in both directions (connections stay open, new ones are accepted): no
    /// request through the proxy can complete until [`TcpProxy::release`]. A test uses it to keep
    /// work in flight for as long as it needs, instead of hoping a slow link is slow enough.
    pub fn hold(&self) {
        self.held.store(true, Ordering::SeqCst);
    }

    /// Lets held bytes move again.
    pub fn release(&self) {
        self.held.store(false, Ordering::SeqCst);
    }

    /// Delays every forwarded chunk (a slow link), so builds last long enough to interfere with.
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Refuses new connections (they are accepted and closed at once) and cuts open ones.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::SeqCst);
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Forwards again.
    pub fn enable(&self) {
        self.enabled.store(true, Ordering::SeqCst);
    }
}

/// A child process whose stderr lines are collected (and echoed, for failing tests' output).
pub struct Process {
    child: Child,
    name: String,
    lines: Arc<Mutex<Vec<String>>>,
    /// The threads reading stderr and stdout: they end at end of file, after the process exits.
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Process {
    /// Spawns `program args` with extra environment.
    pub fn spawn(name: &str, program: &Path, args: &[&str], env: &[(&str, String)]) -> Process {
        let mut command = Command::new(program);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command.env("RUST_LOG", "info").env("NO_COLOR", "1");
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let (lines, name) = (Arc::clone(&lines), name.to_owned());
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[{name}] {line}");
                    lines.lock().unwrap().push(line);
                }
            }));
        }
        Process { child, name: name.to_owned(), lines, readers }
    }

    /// The process id (to read `/proc/<pid>/...`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// How many lines so far contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|line| line.contains(needle)).count()
    }

    /// Waits until `count` lines contain `needle`; false on timeout or exit.
    pub fn wait_for(&mut self, needle: &str, count: usize, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.count(needle) >= count {
                return true;
            }
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                self.drain();
                return self.count(needle) >= count;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Sends a signal (`libc`-free: via `kill`).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -{signal} {} failed", self.name);
    }

    /// After the exit: waits until every line the process wrote is read (end of file on both
    /// pipes), so counts are final.
    fn drain(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.drain();
    }

    /// Waits for the exit code (panics after `limit`).
    pub fn wait(&mut self, limit: Duration) -> i32 {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.drain();
                return status.code().unwrap_or(-1);
            }
            if started.elapsed() > limit {
                self.kill();
                panic!("{} did not exit within {limit:?}", self.name);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A RabbitMQ node of its own (other ports, own data folder), so a test can stop and restart
/// it without touching the machine's broker. Data survives a restart (durable queues).
pub struct PrivateRabbit {
    dir: PathBuf,
    /// AMQP port.
    pub port: u16,
    dist_port: u16,
    epmd_port: u16,
    node: String,
}

impl PrivateRabbit {
    /// Prepares and starts a node under `dir`.
    pub fn start(dir: &Path) -> PrivateRabbit {
        std::fs::create_dir_all(dir.join("mnesia")).unwrap();
        std::fs::create_dir_all(dir.join("log")).unwrap();
        std::fs::write(dir.join("rabbitmq.conf"), "loopback_users = none\n").unwrap();
        std::fs::write(dir.join("enabled_plugins"), "[].\n").unwrap();
        std::fs::write(dir.join("rabbitmq-env.conf"), "").unwrap();
        let port = free_port();
        let rabbit = PrivateRabbit {
            dir: dir.to_owned(),
            port,
            dist_port: free_port(),
            epmd_port: free_port(),
            node: format!("farmtest{port}@localhost"),
        };
        rabbit.start_node();
        rabbit
    }

    /// `amqp://guest:guest@127.0.0.1:<port>/%2f`.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    fn env(&self, command: &mut Command) {
        let d = &self.dir;
        // Crash dumps land in the working directory: keep them with the node.
        command
            .current_dir(d)
            .env("HOME", d)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", self.dist_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .env("RABBITMQ_CONFIG_FILE", d.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", d.join("enabled_plugins"))
            .env("RABBITMQ_MNESIA_BASE", d.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", d.join("log"))
            .env("RABBITMQ_PID_FILE", d.join("rabbit.pid"))
            .env("RABBITMQ_CONF_ENV_FILE", d.join("rabbitmq-env.conf"))
            .env("RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS", "-kernel inet_dist_use_interface {127,0,0,1}");
    }

    /// Starts the node and waits until it takes connections. The CLI tools are called from
    /// `/usr/lib/rabbitmq/bin`: the `/usr/sbin` wrappers switch to the rabbitmq user, whose
    /// home (and Erlang cookie) is not this node's.
    pub fn start_node(&self) {
        let mut command = Command::new("/usr/lib/rabbitmq/bin/rabbitmq-server");
        command.arg("-detached").stdout(Stdio::null()).stderr(Stdio::null());
        self.env(&mut command);
        assert!(command.status().expect("rabbitmq-server").success(), "rabbitmq-server -detached failed");
        let mut wait = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl");
        wait.args(["-n", &self.node, "wait", &self.dir.join("rabbit.pid").display().to_string(), "--timeout", "90"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        self.env(&mut wait);
        assert!(wait.status().expect("rabbitmqctl wait").success(), "private RabbitMQ did not start");
        wait_for_port(self.port, Duration::from_secs(60));
    }

    /// Stops the node (its data stays).
    pub fn stop_node(&self) {
        let mut command = Command::new("/usr/lib/rabbitmq/bin/rabbitmqctl");
        command.args(["-n", &self.node, "shutdown"]).stdout(Stdio::null()).stderr(Stdio::null());
        self.env(&mut command);
        let _ = command.status();
    }
}

impl Drop for PrivateRabbit {
    fn drop(&mut self) {
        self.stop_node();
        // The node's own epmd stays behind otherwise.
        let mut command = Command::new("epmd");
        command
            .arg("-kill")
            .env("ERL_EPMD_PORT", self.epmd_port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let _ = command.status();
    }
}
