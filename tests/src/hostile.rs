//! A scriptable HTTP server for attack tests: each path answers as the test says (a document, a
//! redirect, silence, an endless body), and every request is reported, so a test can wait for
//! "the client asked for X" instead of sleeping.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

/// How a path answers.
#[derive(Clone)]
pub enum Answer {
    /// 200 with these bytes.
    Body(Vec<u8>),
    /// 302 to this URL.
    Redirect(String),
    /// Reads the request, then says nothing until released (see [`HostileServer::release`]).
    Silent,
    /// 200 with a declared `Content-Length` and no body.
    Declared(u64),
    /// 200, chunked, zeros without end (until the client goes away).
    Endless,
}

/// The server: a loopback port, its script, and what it saw.
pub struct HostileServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    script: Arc<Mutex<HashMap<String, Answer>>>,
    requests: mpsc::UnboundedReceiver<String>,
    released: watch::Sender<bool>,
    /// Body bytes written by `Endless` answers.
    pub streamed: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl HostileServer {
    /// Starts on a free loopback port; unknown paths answer 404.
    pub async fn start() -> HostileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let script: Arc<Mutex<HashMap<String, Answer>>> = Arc::default();
        let (sender, requests) = mpsc::unbounded_channel();
        let (released, _) = watch::channel(false);
        let streamed = Arc::new(AtomicU64::new(0));
        let context =
            Context { script: script.clone(), sender, released: released.subscribe(), streamed: streamed.clone() };
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(context.clone().serve(socket));
            }
        });
        HostileServer { url, script, requests, released, streamed, task }
    }

    /// Sets how `path` (with its query) answers.
    pub fn answer(&self, path: &str, answer: Answer) -> &Self {
        self.script.lock().expect("script").insert(path.to_owned(), answer);
        self
    }

    /// Waits for the next request and returns its path.
    pub async fn next_request(&mut self) -> String {
        self.requests.recv().await.expect("server running")
    }

    /// Every request seen so far, without waiting.
    pub fn seen(&mut self) -> Vec<String> {
        let mut seen = Vec::new();
        while let Ok(path) = self.requests.try_recv() {
            seen.push(path);
        }
        seen
    }

    /// Lets every `Silent` answer end (with a 404).
    pub fn release(&self) {
        self.released.send_replace(true);
    }
}

impl Drop for HostileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Context {
    script: Arc<Mutex<HashMap<String, Answer>>>,
    sender: mpsc::UnboundedSender<String>,
    released: watch::Receiver<bool>,
    streamed: Arc<AtomicU64>,
}

impl Context {
    async fn serve(mut self, mut socket: tokio::net::TcpStream) {
        let Some(path) = read_request_path(&mut socket).await else { return };
        let answer = self.script.lock().expect("script").get(&path).cloned();
        let _ = self.sender.send(path);
        let head = |status: &str, extra: &str| format!("HTTP/1.1 {status}\r\nConnection: close\r\n{extra}\r\n");
        let _ = match answer {
            None => socket.write_all(head("404 Not Found", "Content-Length: 0\r\n").as_bytes()).await,
            Some(Answer::Body(body)) => {
                let mut bytes = head("200 OK", &format!("Content-Length: {}\r\n", body.len())).into_bytes();
                bytes.extend_from_slice(&body);
                socket.write_all(&bytes).await
            }
            Some(Answer::Redirect(to)) => {
                socket
                    .write_all(head("302 Found", &format!("Location: {to}\r\nContent-Length: 0\r\n")).as_bytes())
                    .await
            }
            Some(Answer::Silent) => {
                let _ = self.released.wait_for(|released| *released).await;
                socket.write_all(head("404 Not Found", "Content-Length: 0\r\n").as_bytes()).await
            }
            Some(Answer::Declared(length)) => {
                socket.write_all(head("200 OK", &format!("Content-Length: {length}\r\n")).as_bytes()).await
            }
            Some(Answer::Endless) => self.endless(&mut socket).await,
        };
    }

    async fn endless(&self, socket: &mut tokio::net::TcpStream) -> std::io::Result<()> {
        socket.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n").await?;
        let chunk = vec![b' '; 64 << 10];
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        loop {
            socket.write_all(&framed).await?;
            self.streamed.fetch_add(chunk.len() as u64, Ordering::SeqCst);
        }
    }
}

/// Reads a request head and returns its path (with query).
async fn read_request_path(socket: &mut tokio::net::TcpStream) -> Option<String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buffer).await.ok()?;
        if n == 0 || head.len() > 64 << 10 {
            return None;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    let line = String::from_utf8_lossy(&head).lines().next()?.to_owned();
    line.split(' ').nth(1).map(str::to_owned)
}

/// The peak resident memory of a process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
}
