//! A latency-adding TCP proxy on loopback, for the benchmark rows that put the S3 server "far
//! away": every request/response turn through it costs a fixed delay, as a remote S3 would.
//!
//! Plain std threads (one accepting, two copying per connection): it needs no caller's runtime.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Forwards `127.0.0.1:<port>` to `127.0.0.1:<target>`. Bytes from the client go to the server at
/// once; the first bytes of each answer are held back until `delay` has passed since the client
/// last sent something, the rest of that answer goes straight through. So each turn (an HTTP
/// request and its response on a kept-alive connection) costs `delay` more than on loopback,
/// whatever the body sizes. Connecting itself costs nothing extra.
///
/// Stops accepting and cuts the open connections when dropped.
pub struct LatencyProxy {
    /// The proxy's port on 127.0.0.1.
    pub port: u16,
    /// The delay each turn costs.
    pub delay: Duration,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<HashMap<u64, [TcpStream; 2]>>>,
}

/// A connection's turn state: when the client last sent bytes, and whether the answer to them has
/// started (its first bytes were let through).
struct Turn {
    client_spoke: Option<Instant>,
    answered: bool,
}

impl LatencyProxy {
    /// Listens on a free loopback port and forwards every connection to `127.0.0.1:target_port`
    /// with `delay` per turn.
    pub fn start(target_port: u16, delay: Duration) -> LatencyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind latency proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let open: Arc<Mutex<HashMap<u64, [TcpStream; 2]>>> = Arc::default();
        let (stopped, registry) = (Arc::clone(&stop), Arc::clone(&open));
        std::thread::spawn(move || {
            let ids = AtomicU64::new(0);
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = stream else { continue };
                let id = ids.fetch_add(1, Ordering::Relaxed);
                let registry = Arc::clone(&registry);
                std::thread::spawn(move || connection(id, client, target_port, delay, &registry));
            }
        });
        LatencyProxy { port, delay, stop, open }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        let open = std::mem::take(&mut *self.open.lock().unwrap_or_else(|e| e.into_inner()));
        for stream in open.values().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// One client connection: connects to the target, copies both ways until both sides are done.
fn connection(id: u64, client: TcpStream, target: u16, delay: Duration, open: &Mutex<HashMap<u64, [TcpStream; 2]>>) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
    // Small writes (headers, short answers) must not wait for Nagle's algorithm: the delay is ours.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client_copy), Ok(server_copy)) = (client.try_clone(), server.try_clone()) else { return };
    if let (Ok(a), Ok(b)) = (client.try_clone(), server.try_clone()) {
        open.lock().unwrap_or_else(|e| e.into_inner()).insert(id, [a, b]);
    }
    let turn = Arc::new(Mutex::new(Turn { client_spoke: None, answered: true }));
    let upstream_turn = Arc::clone(&turn);
    let upstream = std::thread::spawn(move || requests(client_copy, server_copy, &upstream_turn));
    answers(server, client, delay, &turn);
    let _ = upstream.join();
    open.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
}

/// Client to server: forwarded at once, each chunk noted as the client speaking.
fn requests(mut client: TcpStream, mut server: TcpStream, turn: &Mutex<Turn>) {
    let mut buffer = vec![0u8; 64 * 1024];
    let clean = loop {
        let n = match client.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        };
        // Noted before forwarding (the answer may start before write_all returns), and the time
        // moved to after it while no answer has started (the server has the last byte only then).
        let mut state = lock(turn);
        state.client_spoke = Some(Instant::now());
        state.answered = false;
        drop(state);
        if server.write_all(&buffer[..n]).is_err() {
            break false;
        }
        let mut state = lock(turn);
        if !state.answered {
            state.client_spoke = Some(Instant::now());
        }
    };
    if clean {
        // Half-close: the server may still answer what it got.
        let _ = server.shutdown(Shutdown::Write);
    } else {
        let _ = server.shutdown(Shutdown::Both);
        let _ = client.shutdown(Shutdown::Both);
    }
}

fn lock(turn: &Mutex<Turn>) -> std::sync::MutexGuard<'_, Turn> {
    turn.lock().unwrap_or_else(|e| e.into_inner())
}

/// Server to client: the first chunk after the client spoke waits until `delay` after its last
/// byte; the following chunks of that answer go straight through.
fn answers(mut server: TcpStream, mut client: TcpStream, delay: Duration, turn: &Mutex<Turn>) {
    let mut buffer = vec![0u8; 64 * 1024];
    let clean = loop {
        let n = match server.read(&mut buffer) {
            Ok(0) => break true,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        };
        let due = {
            let mut state = lock(turn);
            if state.answered {
                None
            } else {
                state.answered = true;
                state.client_spoke.map(|spoke| spoke + delay)
            }
        };
        if let Some(due) = due {
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        if client.write_all(&buffer[..n]).is_err() {
            break false;
        }
    };
    if clean {
        let _ = client.shutdown(Shutdown::Write);
    } else {
        let _ = client.shutdown(Shutdown::Both);
        let _ = server.shutdown(Shutdown::Both);
    }
}
