//! Attacks on the HTTP server of `coordinator serve`, run as an attacker would: held 5 MB bodies,
//! requests without credentials, a shared body budget, a slow-loris header, a stalled body, idle
//! sockets beyond the connection limit. Every wait is for an event (an answer, a closed socket);
//! no assertion depends on how long something took.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use super::{GITHUB_SECRET, Served, Settings, push_body, sign};

/// Only a guard against a hang: a socket that shows nothing for this long fails the test.
const HANG: Duration = Duration::from_secs(120);

/// The finding's bodies: 5 MB each.
const BODY: usize = 5_000_000;

/// The finding's number of connections.
const CONNECTIONS: usize = 200;

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(HANG)).expect("read timeout");
    stream
}

/// The head of a POST with the given headers and declared length.
fn post_head(path: &str, headers: &[(&str, &str)], length: usize) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: farm\r\ncontent-length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// The status of the next response head, or None when the server closed the connection first.
/// Reads byte by byte so nothing after the head is consumed.
fn next_head(stream: &mut TcpStream) -> Option<u16> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => head.push(byte[0]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return None,
            Err(error) => panic!("neither an answer nor a close: {error}"),
        }
    }
    let line = String::from_utf8_lossy(&head);
    Some(line.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or_else(|| panic!("bad head {line}")))
}

/// The final answer's status (interim 1xx answers skipped), or None when the server closed the
/// connection without one.
fn answer(stream: &mut TcpStream) -> Option<u16> {
    loop {
        match next_head(stream)? {
            100..=199 => continue,
            status => return Some(status),
        }
    }
}

/// Reads until the server closes the connection (end of file or a reset).
fn wait_closed(stream: &mut TcpStream) {
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return,
            Err(error) => panic!("the server did not close the connection: {error}"),
        }
    }
}

fn healthz(port: u16) -> Option<u16> {
    let mut stream = connect(port);
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: farm\r\nconnection: close\r\n\r\n").expect("send");
    answer(&mut stream)
}

/// A `/proc/<pid>/status` figure in kB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    let value = text.lines().find_map(|line| line.strip_prefix(key)?.strip_prefix(':')).expect(key);
    value.trim().trim_end_matches("kB").trim().parse().expect("kB figure")
}

/// Sockets the process has open.
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("/proc fd")
        .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

const JSON_PUSH: [(&str, &str); 2] = [("content-type", "application/json"), ("x-github-event", "push")];

#[test]
fn held_five_megabyte_bodies_stay_within_the_memory_budget() {
    // The finding: 200 unsigned 5 MB bodies that held back their last byte took 1.2 GB.
    let limits = "max_body = 5242880\nbody_timeout = \"600s\"";
    let mut served = Served::new(Settings { limits, ..Settings::default() });
    served.start();
    served.wait_builds(1);
    let (pid, port) = (served.process().pid(), served.port);
    let idle_rss = status_kib(pid, "VmRSS");
    let body = Arc::new(vec![b' '; BODY]);
    // A well-formed signature that only the whole body can disprove.
    let forged = Arc::new(sign("not-the-secret", b"{}"));
    let sent = Arc::new(Barrier::new(CONNECTIONS + 1));
    let release = Arc::new(Barrier::new(CONNECTIONS + 1));
    let attackers: Vec<_> = (0..CONNECTIONS)
        .map(|n| {
            let (body, forged, sent, release) =
                (Arc::clone(&body), Arc::clone(&forged), Arc::clone(&sent), Arc::clone(&release));
            std::thread::spawn(move || {
                // Half carry no credential at all, half the forged signature.
                let signed = n % 2 == 1;
                let mut headers = JSON_PUSH.to_vec();
                if signed {
                    headers.push(("x-hub-signature-256", forged.as_str()));
                }
                let mut stream = connect(port);
                // A server that refused may close while this is still being sent.
                let _ = stream.write_all(&post_head("/hooks/github", &headers, BODY));
                let _ = stream.write_all(&body[..BODY - 1]);
                sent.wait();
                release.wait();
                let _ = stream.write_all(&body[BODY - 1..]);
                (signed, answer(&mut stream))
            })
        })
        .collect();
    sent.wait();
    let held_rss = status_kib(pid, "VmRSS");
    let health = healthz(port);
    release.wait();
    let outcomes: Vec<(bool, Option<u16>)> = attackers.into_iter().map(|a| a.join().expect("attacker")).collect();
    let peak = status_kib(pid, "VmHWM");
    eprintln!("coordinator RSS: {idle_rss} kB before, {held_rss} kB while held, peak {peak} kB");
    let count = |signed: bool, outcome: Option<u16>| outcomes.iter().filter(|o| **o == (signed, outcome)).count();
    eprintln!(
        "unsigned: {} answered 401, {} closed; forged: {} read and answered 401, {} answered 503, {} closed",
        count(false, Some(401)),
        count(false, None),
        count(true, Some(401)),
        count(true, Some(503)),
        count(true, None)
    );
    assert_eq!(health, Some(200), "/healthz while the bodies were held");
    assert!(peak < 200 * 1024, "peak RSS {peak} kB");
    let unsigned: Vec<Option<u16>> = outcomes.iter().filter(|(signed, _)| !signed).map(|(_, o)| *o).collect();
    assert!(unsigned.iter().all(|o| matches!(o, Some(401) | None)), "{unsigned:?}");
    assert!(unsigned.contains(&Some(401)), "{unsigned:?}");
    let signed: Vec<Option<u16>> = outcomes.iter().filter(|(signed, _)| *signed).map(|(_, o)| *o).collect();
    assert!(signed.iter().all(|o| matches!(o, Some(401 | 503) | None)), "{signed:?}");
    // Only as many bodies as the budget (64 MiB by default) holds were read at all.
    let read = signed.iter().filter(|o| **o == Some(401)).count();
    assert!((1..=(64 << 20) / BODY).contains(&read), "{read} bodies read: {signed:?}");
    assert!(signed.contains(&Some(503)), "{signed:?}");
    assert_eq!(served.stop(), 0);
}

#[test]
fn credentials_are_checked_before_the_body_and_bodies_share_a_budget() {
    let limits = "max_body = 65536\nmax_body_memory = 65536\nbody_timeout = \"600s\"";
    let mut served = Served::new(Settings { limits, ..Settings::default() });
    served.start();
    let port = served.port;
    let json = ("content-type", "application/json");
    // No credential, a malformed signature, wrong tokens: 401 although no body byte was sent.
    let refused: [(&str, Vec<(&str, &str)>); 5] = [
        ("/hooks/github", JSON_PUSH.to_vec()),
        ("/hooks/github", vec![json, ("x-github-event", "push"), ("x-hub-signature-256", "sha256=zz")]),
        ("/hooks/gitlab", vec![json, ("x-gitlab-event", "Push Hook"), ("x-gitlab-token", "wrong-token")]),
        ("/hooks/trigger", vec![json]),
        ("/hooks/trigger", vec![json, ("authorization", "Bearer wrong-token")]),
    ];
    for (path, headers) in &refused {
        let mut stream = connect(port);
        stream.write_all(&post_head(path, headers, 60_000)).expect("send");
        assert_eq!(answer(&mut stream), Some(401), "{path} {headers:?}");
    }
    // A request head over 32 KiB: 431 (exactly 32 KiB and unfinished, so all of it was read).
    let mut stream = connect(port);
    let mut head = b"GET /healthz HTTP/1.1\r\nhost: farm\r\nx-big: ".to_vec();
    head.resize(32 * 1024, b'a');
    stream.write_all(&head).expect("send");
    assert_eq!(answer(&mut stream), Some(431));
    // A declared length over max_body: 413, also unread.
    let forged = sign("not-the-secret", b"{}");
    let mut headers = JSON_PUSH.to_vec();
    headers.push(("x-hub-signature-256", &forged));
    let mut stream = connect(port);
    stream.write_all(&post_head("/hooks/github", &headers, 65_537)).expect("send");
    assert_eq!(answer(&mut stream), Some(413));

    // The budget holds one full-size body. Hyper asks for the body (100 Continue) only once the
    // handler reads it, which is after its bytes were reserved: then a second one gets 503.
    let mut expecting = headers.clone();
    expecting.push(("expect", "100-continue"));
    let mut first = connect(port);
    first.write_all(&post_head("/hooks/github", &expecting, 65_536)).expect("send");
    assert_eq!(next_head(&mut first), Some(100));
    let mut second = connect(port);
    second.write_all(&post_head("/hooks/github", &headers, 65_536)).expect("send");
    assert_eq!(answer(&mut second), Some(503));
    // The first completes (its signature is forged: 401) and its bytes are free again.
    first.write_all(&[b' '; 65_536]).expect("send");
    assert_eq!(answer(&mut first), Some(401));
    let mut third = connect(port);
    third.write_all(&post_head("/hooks/github", &headers, 65_536)).expect("send");
    third.write_all(&[b' '; 65_536]).expect("send");
    assert_eq!(answer(&mut third), Some(401));

    // A real delivery in chunks (no declared length) is verified as the chunks arrive.
    let body = push_body("acme/upstream", "refs/heads/main", "5555555555555555555555555555555555555555");
    let signature = sign(GITHUB_SECRET, &body);
    let mut stream = connect(port);
    let head = format!(
        "POST /hooks/github HTTP/1.1\r\nhost: farm\r\ntransfer-encoding: chunked\r\ncontent-type: application/json\r\n\
         x-github-event: push\r\nx-github-delivery: chunked-1\r\nx-hub-signature-256: {signature}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).expect("send");
    for chunk in body.chunks(50) {
        stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes()).expect("send");
        stream.write_all(chunk).expect("send");
        stream.write_all(b"\r\n").expect("send");
    }
    stream.write_all(b"0\r\n\r\n").expect("send");
    assert_eq!(answer(&mut stream), Some(202));

    // A shutdown closes a connection between requests at once and does not wait for a body
    // still on its way (503), however long body_timeout is.
    let mut idle = connect(port);
    let mut stalled = connect(port);
    stalled.write_all(&post_head("/hooks/github", &expecting, 65_536)).expect("send");
    assert_eq!(next_head(&mut stalled), Some(100));
    served.process().signal("TERM");
    assert_eq!(answer(&mut stalled), Some(503));
    assert_eq!(answer(&mut idle), None);
    let mut process = served.process.take().expect("started");
    assert_eq!(process.wait(HANG), 0);
}

#[test]
fn slow_clients_are_cut_off() {
    let limits = "max_body = 65536\nheader_timeout = \"1s\"\nbody_timeout = \"1s\"\nidle_timeout = \"1s\"";
    let mut served = Served::new(Settings { limits, ..Settings::default() });
    served.start();
    let port = served.port;

    // Slow-loris: a header sent a byte at a time and never finished is closed, unanswered.
    let mut slow = connect(port);
    slow.write_all(b"POST /hooks/github HTTP/1.1\r\nhost: farm\r\nx-slow: ").expect("send");
    let mut writer = slow.try_clone().expect("clone");
    let dripping = std::thread::spawn(move || {
        // The attack's pace, not a measurement: it ends when the server has closed.
        while writer.write_all(b"a").is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert_eq!(answer(&mut slow), None);
    dripping.join().expect("dripping");

    // A stalled body: half of a signed delivery, then nothing.
    let body = push_body("acme/upstream", "refs/heads/main", "6666666666666666666666666666666666666666");
    let signature = sign(GITHUB_SECRET, &body);
    let mut headers = JSON_PUSH.to_vec();
    headers.push(("x-hub-signature-256", &signature));
    let mut stalled = connect(port);
    stalled.write_all(&post_head("/hooks/github", &headers, body.len())).expect("send");
    stalled.write_all(&body[..body.len() / 2]).expect("send");
    assert_eq!(answer(&mut stalled), Some(408));
    wait_closed(&mut stalled);

    // Keep-alive: after an answer, a connection that sends nothing more is closed.
    let mut kept = connect(port);
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: farm\r\n\r\n").expect("send");
    assert_eq!(answer(&mut kept), Some(200));
    wait_closed(&mut kept);
    assert_eq!(healthz(port), Some(200));
    assert_eq!(served.stop(), 0);
}

#[test]
fn idle_sockets_beyond_the_connection_limit_do_not_starve_the_health_probe() {
    let limits = "max_body = 65536\nmax_connections = 16\nheader_timeout = \"1s\"";
    let mut served = Served::new(Settings { limits, ..Settings::default() });
    served.start();
    let (pid, port) = (served.process().pid(), served.port);
    let before = open_sockets(pid);
    let mut idle: Vec<TcpStream> = (0..40).map(|_| connect(port)).collect();
    // The server holds at most 16; the rest wait in the kernel's accept queue, costing it nothing.
    let held = open_sockets(pid);
    assert!(held <= before + 16, "{held} sockets open, {before} before");
    // A probe queued behind them is answered: an idle socket keeps its slot only until
    // header_timeout.
    assert_eq!(healthz(port), Some(200));
    for socket in &mut idle {
        assert_eq!(answer(socket), None, "an idle socket got an answer");
    }
    assert!(open_sockets(pid) <= before + 16);
    assert_eq!(served.stop(), 0);
}
