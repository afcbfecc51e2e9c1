//! Issue 13, the network items: a neighbour that can reach the agent's ports (a pod on the
//! node, another node) and a broken log pipe, against the real binary
//! (`kubelet-sentinel serve` on a copy of `examples/node`), over loopback only.
//!
//! - item 2: a slowloris (a request head trickled byte by byte) is cut after the 10 s
//!   header-read timeout, and so is an idle keep-alive connection; heads of ~380 KiB from
//!   320 connections are refused (431 or closed) while the agent's resident memory stays
//!   under the bound of `Limits::METRICS` (24 MiB over its resting size); a flood of 1,024
//!   silent connections from 64 sources sheds itself beyond the cap (64), takes no memory
//!   beyond that bound either, and a scraper from another address is served during it;
//! - item 3: 300 silent TCP connections to the TLS metrics port (21 sources) leave
//!   `/healthz` and `/readyz` on the health listener answering within 1 s each, `/metrics`
//!   answering a client from another address during the flood, and the attacker's own
//!   address once it stops; a silent handshake is cut after 5 s; 64 silent connections to
//!   the health listener itself leave it answering within 1 s;
//! - item 16: `serve` with stderr and stdout a pipe nobody reads keeps serving and stops
//!   cleanly (never the exit 101 of a panic); `check` with a closed stdout ends with its
//!   verdict, without a panic.
//!
//! Every attacker connects to 127.0.0.1 from an address of 127.0.0.0/8 (all of it is
//! loopback on Linux), so that per-source caps can be exercised; every agent is killed on
//! every path out of its test.
#![allow(unsafe_code)] // libc: SIGTERM to the agent under test

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use common::agent::{agent_command, serve_args, wait_ready};
use common::http::{free_port, get, Response};
use common::process::Guard;
use common::Fixture;
use kubelet_sentinel::publish::listener::Limits;
use kubelet_sentinel::publish::tls::HANDSHAKE_TIMEOUT;
use rustls::pki_types::ServerName;

const MIB: u64 = 1024 * 1024;
/// What connections may add to the agent's resident memory: the metrics listener's 64
/// open connections and as many shed ones not closed yet × what one connection can hold
/// (192 KiB). With the agent's resting
/// 8-20 MiB (release build; ~30 MiB debug) that is far under the pod's 128 Mi limit.
const MEMORY_BOUND: u64 = 24 * MIB;

// ---------------------------------------------------------------------------- the agent

struct Agent {
    child: Guard,
    metrics: SocketAddr,
    health: SocketAddr,
    log: PathBuf,
    _fixture: Fixture,
    _state: tempfile::TempDir,
}

impl Agent {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The agent's resident set now and at its peak (VmRSS, VmHWM), in bytes.
    fn rss(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("/proc/<pid>/status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/<pid>/status"))
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

/// How the agent's stdout and stderr are wired.
enum Output {
    /// Both to a log file.
    Log,
    /// Both to a pipe whose reading end is closed (every write fails with EPIPE).
    Broken,
}

/// Start `serve` on the example node with `extra` flags, its metrics and health listeners
/// on free loopback ports; wait (20 s at most) until the health listener's `/readyz`
/// answers 200.
fn start(extra: &[&str], output: Output) -> Agent {
    let fixture = Fixture::load_from(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node"),
        "example-node",
    );
    let state = tempfile::tempdir().expect("state dir");
    let metrics = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let health = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let log = state.path().join("agent.log");
    let mut cmd = agent_command();
    serve_args(
        &mut cmd,
        &fixture.root(),
        metrics,
        &state.path().join("state"),
    )
    .arg("--health-listen-address")
    .arg(health.to_string())
    .args([
        "--node-name",
        "node-1",
        "--api-access",
        "off",
        "--interval",
        "30s",
    ])
    .args(["--log-level", "kubelet_sentinel=debug,info"])
    .args(extra)
    .stdin(Stdio::null());
    match output {
        Output::Log => {
            let file = std::fs::File::create(&log).expect("log file");
            cmd.stdout(file.try_clone().expect("clone")).stderr(file);
        }
        Output::Broken => {
            let (reader, writer) = std::io::pipe().expect("pipe");
            drop(reader);
            cmd.stdout(writer.try_clone().expect("clone"))
                .stderr(writer);
        }
    }
    let child = cmd.spawn().expect("start the agent");
    let mut child = Guard(child);
    let log_path = log.clone();
    let ready = wait_ready(
        &mut child,
        Duration::from_secs(20),
        || matches!(get(health, "/readyz", None), Ok(r) if r.status == 200).then_some(()),
        || std::fs::read_to_string(&log_path).unwrap_or_default(),
    );
    if let Err(status) = ready {
        panic!(
            "the agent exited ({status}):\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }
    Agent {
        child,
        metrics,
        health,
        log,
        _fixture: fixture,
        _state: state,
    }
}

// ---------------------------------------------------------------------------- clients

/// A runtime for connecting from a chosen loopback address (std cannot bind before
/// connecting).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    })
}

/// 127.0.<n / 250>.<n % 250 + 2>: the `n`th attacker source address.
fn source(n: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        0,
        u8::try_from(n / 250 + 1).unwrap(),
        u8::try_from(n % 250 + 2).unwrap(),
    )
}

/// A blocking TCP connection to `to` from the address `from` (any port), within 2 s.
fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = runtime().block_on(async {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((from, 0)))?;
        tokio::time::timeout(Duration::from_secs(2), socket.connect(to))
            .await
            .map_err(|_| std::io::Error::other("connect timed out"))?
    })?;
    let std = stream.into_std()?;
    std.set_nonblocking(false)?;
    Ok(std)
}

/// Whether the peer has closed `s` (EOF or reset) within `within`; data counts as open.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left.min(Duration::from_millis(200))))
            .expect("read timeout");
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return true,
        }
    }
}

/// `GET path` over TLS from `from` to `to`, bounded by 5 s per read.
fn tls_get_from(from: Ipv4Addr, to: SocketAddr, path: &str) -> std::io::Result<Response> {
    let (config, _) = common::tls::client_config();
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let sock = connect_from(from, to)?;
    sock.set_read_timeout(Some(Duration::from_secs(5)))?;
    sock.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    common::http::request(&mut tls, &to.to_string(), path, &[])
}

/// Sample the agent's VmRSS every 20 ms while `running`; the largest seen.
fn sample_rss(pid: u32, running: Arc<AtomicBool>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut max = 0;
        while running.load(Ordering::Relaxed) {
            if let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    max = max.max(kb * 1024);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        max
    })
}

// ---------------------------------------------------------------------------- item 2

/// A request head trickled a byte every 100 ms is cut after the header-read timeout (10 s;
/// bound 10 s + 5 s), and so is a keep-alive connection left idle after a response.
#[test]
fn item_2_slowloris_is_cut_after_the_header_timeout() {
    let agent = start(&[], Output::Log);
    let timeout = Limits::METRICS.header_read_timeout;
    let bound = timeout + Duration::from_secs(5);

    let idle = std::thread::spawn({
        let addr = agent.metrics;
        move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: agent\r\n\r\n")
                .expect("request");
            let mut head = [0u8; 12];
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            s.read_exact(&mut head).expect("a response");
            assert_eq!(&head, b"HTTP/1.1 200");
            let start = Instant::now();
            let closed = closed_within(&mut s, bound);
            (closed, start.elapsed())
        }
    });

    let mut s = TcpStream::connect(agent.metrics).expect("connect");
    s.set_write_timeout(Some(Duration::from_secs(1))).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let start = Instant::now();
    let head = b"GET /metrics HTTP/1.1\r\nHost: agent\r\nX-Slow: ";
    let mut sent = 0usize;
    let mut cut = None;
    while start.elapsed() < bound {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if s.write_all(&[byte]).is_err() {
            cut = Some(start.elapsed());
            break;
        }
        sent += 1;
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => {
                cut = Some(start.elapsed());
                break;
            }
            Ok(n) => panic!(
                "the server answered a head that never ended: {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                cut = Some(start.elapsed());
                break;
            }
        }
    }
    let cut =
        cut.unwrap_or_else(|| panic!("a slowloris ({sent} bytes) still connected after {bound:?}"));
    assert!(
        cut >= timeout - Duration::from_secs(1),
        "cut after {cut:?}: before the header timeout {timeout:?}, by something else?"
    );
    eprintln!("slowloris cut after {cut:?} ({sent} bytes sent)");

    let (closed, after) = idle.join().expect("idle client");
    assert!(
        closed,
        "an idle keep-alive connection still open after {bound:?}"
    );
    eprintln!("idle keep-alive connection closed after {after:?}");
}

/// 320 connections from 20 sources each send a request head of ~380 KiB, 4 KiB every
/// 10 ms (what took the agent out of its 128 Mi before): every one is refused (431, or
/// closed) and the agent's resident memory never grows by more than the metrics
/// listener's bound (2 × 64 connections × 192 KiB = 24 MiB).
#[test]
fn item_2_huge_headers_are_refused_and_memory_stays_bounded() {
    let agent = start(&[], Output::Log);
    // Warm up (first scrapes), then the resting size.
    for _ in 0..3 {
        assert_eq!(get(agent.metrics, "/metrics", None).unwrap().status, 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rest, _) = agent.rss();

    let running = Arc::new(AtomicBool::new(true));
    let sampler = sample_rss(agent.pid(), Arc::clone(&running));
    let target = agent.metrics;
    let outcomes: Vec<String> = runtime().block_on(async move {
        let mut tasks = Vec::new();
        for n in 0..320 {
            tasks.push(tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let socket = tokio::net::TcpSocket::new_v4().map_err(|e| e.to_string())?;
                socket
                    .bind(SocketAddr::from((source(n % 20), 0)))
                    .map_err(|e| e.to_string())?;
                let Ok(mut s) = socket.connect(target).await else {
                    return Ok::<_, String>("refused".to_string());
                };
                let chunk = format!("X-Pad-{n}: {}\r\n", "a".repeat(4096));
                let _ = s
                    .write_all(b"GET /metrics HTTP/1.1\r\nHost: agent\r\n")
                    .await;
                for _ in 0..95 {
                    if s.write_all(chunk.as_bytes()).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let mut buf = vec![0u8; 64];
                let read = tokio::time::timeout(Duration::from_secs(15), s.read(&mut buf)).await;
                Ok(match read {
                    Ok(Ok(0) | Err(_)) => "closed".to_string(),
                    Ok(Ok(n)) => String::from_utf8_lossy(&buf[..n]).into_owned(),
                    Err(_) => "hung".to_string(),
                })
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(match t.await {
                Ok(Ok(o)) => o,
                Ok(Err(e)) => panic!("attacker setup: {e}"),
                Err(e) => panic!("attacker task: {e}"),
            });
        }
        out
    });
    running.store(false, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    let bound = MEMORY_BOUND;
    assert!(Limits::METRICS.memory_bound() as u64 <= MEMORY_BOUND);
    let refused_431 = outcomes
        .iter()
        .filter(|o| o.starts_with("HTTP/1.1 431"))
        .count();
    let closed = outcomes
        .iter()
        .filter(|o| *o == "closed" || *o == "refused")
        .count();
    eprintln!(
        "huge headers: rest {} KiB, peak {} KiB (+{} KiB; bound +{} KiB); {refused_431} × 431, {closed} closed",
        rest / 1024,
        peak / 1024,
        peak.saturating_sub(rest) / 1024,
        bound / 1024
    );
    for o in &outcomes {
        assert!(
            o.starts_with("HTTP/1.1 431") || o == "closed" || o == "refused",
            "a huge head was neither refused with 431 nor closed: {o:?}"
        );
    }
    assert!(refused_431 > 0, "no head was answered 431: {outcomes:?}");
    assert!(
        peak <= rest + bound,
        "resident memory grew by {} KiB under the attack (bound {} KiB):\n{}",
        (peak - rest) / 1024,
        bound / 1024,
        agent.log()
    );
    // Still serving, and what a client sends within the cap still works.
    let r = get(agent.metrics, "/metrics", None).expect("scrape after the attack");
    assert_eq!(r.status, 200);
}

/// 1,024 silent connections from 64 sources: at most 64 stay open (beyond the cap each
/// new one sheds the oldest silent one, which is closed at once), the ones left are cut by
/// the header timeout, and the agent's memory never grows by more than the listener's
/// bound. While the flood holds every slot, a client from another address gets `/metrics`
/// within 1 s (it sheds a silent connection) and the health listener answers within 1 s.
#[test]
fn item_2_a_connection_flood_beyond_the_cap_takes_no_memory() {
    let agent = start(&[], Output::Log);
    for _ in 0..3 {
        assert_eq!(get(agent.metrics, "/metrics", None).unwrap().status, 200);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rest, _) = agent.rss();
    let running = Arc::new(AtomicBool::new(true));
    let sampler = sample_rss(agent.pid(), Arc::clone(&running));

    let limits = Limits::METRICS;
    let mut conns = Vec::new();
    for n in 0..1024 {
        match connect_from(source(n % 64), agent.metrics) {
            Ok(s) => conns.push(s),
            Err(e) => panic!("connect {n}: {e}"),
        }
    }
    // While the flood holds every slot: a scraper from another address is served.
    let start = Instant::now();
    let mut scraper = connect_from(Ipv4Addr::new(127, 0, 0, 3), agent.metrics).expect("scraper");
    scraper
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let r = common::http::request(&mut scraper, "agent", "/metrics", &[])
        .expect("/metrics during the flood");
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    assert!(
        took < Duration::from_secs(1),
        "/metrics took {took:?} during the flood"
    );
    // Probe health while the flood holds every slot it can.
    let start = Instant::now();
    let h = get(agent.health, "/healthz", None).expect("healthz during the flood");
    let took = start.elapsed();
    assert_eq!(h.status, 200);
    assert!(took < Duration::from_secs(1), "/healthz took {took:?}");

    let mut closed_at_once = 0usize;
    let mut open = Vec::new();
    for mut s in conns {
        if closed_within(&mut s, Duration::from_millis(1)) {
            closed_at_once += 1;
        } else {
            open.push(s);
        }
    }
    // Give the ones still undecided their second (the agent closes at accept).
    let mut still_open = Vec::new();
    for mut s in open {
        if !closed_within(&mut s, Duration::from_millis(5)) {
            still_open.push(s);
        } else {
            closed_at_once += 1;
        }
    }
    eprintln!(
        "flood: {} closed (shed or refused), {} open",
        closed_at_once,
        still_open.len()
    );
    assert!(
        still_open.len() <= limits.max_connections,
        "{} silent connections held open (cap {})",
        still_open.len(),
        limits.max_connections
    );
    assert!(closed_at_once >= 1024 - limits.max_connections);
    // The admitted ones are cut by the header timeout.
    let deadline = limits.header_read_timeout + Duration::from_secs(5);
    let start = Instant::now();
    for mut s in still_open {
        let left = deadline.saturating_sub(start.elapsed());
        assert!(
            closed_within(&mut s, left.max(Duration::from_millis(1))),
            "a silent connection outlived the header timeout ({deadline:?})"
        );
    }
    running.store(false, Ordering::Relaxed);
    let peak = sampler.join().expect("sampler");
    let bound = MEMORY_BOUND;
    assert!(limits.memory_bound() as u64 <= MEMORY_BOUND);
    eprintln!(
        "flood: rest {} KiB, peak {} KiB (+{} KiB; bound +{} KiB)",
        rest / 1024,
        peak / 1024,
        peak.saturating_sub(rest) / 1024,
        bound / 1024
    );
    assert!(
        peak <= rest + bound,
        "memory grew by {} KiB",
        (peak - rest) / 1024
    );
    assert_eq!(get(agent.metrics, "/metrics", None).unwrap().status, 200);
}

// ---------------------------------------------------------------------------- item 3

/// Silent TCP connections to the TLS metrics port — 100 from one address, 200 from 20
/// others: every slot of the metrics listener is taken, and the health listener still
/// answers `/healthz` and `/readyz` within 1 s each; a client from another address gets
/// `/metrics` during the flood (within 2 s); every silent handshake is cut after 5 s
/// (bound 8 s); once the attacker stops, its own address gets `/metrics` at once. Then 64
/// silent connections to the health listener itself (twice its cap, from 127.0.0.1 like
/// the kubelet's probes): `/healthz` still answers within 1 s.
#[test]
fn item_3_a_handshake_flood_starves_neither_health_nor_metrics() {
    let agent = start(&["--metrics-tls-self-signed"], Output::Log);
    let attacker = Ipv4Addr::new(127, 0, 0, 1);
    let mut flood = Vec::new();
    for n in 0..300 {
        let from = if n < 100 { attacker } else { source(n % 20) };
        flood.push(connect_from(from, agent.metrics).unwrap_or_else(|e| panic!("{n}: {e}")));
    }
    let flood_started = Instant::now();
    for path in ["/healthz", "/readyz", "/healthz"] {
        let start = Instant::now();
        let r = get(agent.health, path, None).expect("health during the flood");
        let took = start.elapsed();
        assert_eq!(r.status, 200, "{path}");
        assert!(
            took < Duration::from_secs(1),
            "{path} took {took:?} during the flood"
        );
    }
    let start = Instant::now();
    let r = tls_get_from(Ipv4Addr::new(127, 0, 0, 2), agent.metrics, "/metrics")
        .expect("/metrics from another address during the flood");
    let took = start.elapsed();
    assert_eq!(r.status, 200);
    assert!(took < Duration::from_secs(2), "/metrics took {took:?}");
    assert!(r.body.contains("kubelet_sentinel_"), "{}", r.body);
    assert!(
        flood_started.elapsed() < HANDSHAKE_TIMEOUT,
        "the checks above must run while the flood holds its slots"
    );

    // 16 per source at most, 64 in all: the rest were refused or shed at once; the ones
    // left are cut by the handshake timeout.
    let bound = HANDSHAKE_TIMEOUT + Duration::from_secs(3);
    let mut held = 0;
    for s in &mut flood {
        let left = bound.saturating_sub(flood_started.elapsed());
        if !closed_within(s, left.max(Duration::from_millis(1))) {
            held += 1;
        }
    }
    assert_eq!(held, 0, "{held} silent handshakes outlived {bound:?}");
    drop(flood);

    let start = Instant::now();
    let r = tls_get_from(attacker, agent.metrics, "/metrics").expect("/metrics after the flood");
    assert_eq!(r.status, 200);
    assert!(start.elapsed() < Duration::from_secs(1));
    // The metrics listener still answers the probes' paths too.
    let r = tls_get_from(attacker, agent.metrics, "/healthz").expect("/healthz over TLS");
    assert_eq!(r.status, 200);
    // The health listener serves the probes and nothing else.
    assert_eq!(get(agent.health, "/metrics", None).unwrap().status, 404);

    // A flood of the health listener itself, from the probes' own address.
    let local: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(agent.health).expect("connect to health"))
        .collect();
    for path in ["/healthz", "/readyz"] {
        let start = Instant::now();
        let r = get(agent.health, path, None).expect("health during its own flood");
        let took = start.elapsed();
        assert_eq!(r.status, 200, "{path}");
        assert!(
            took < Duration::from_secs(1),
            "{path} took {took:?} during a local flood"
        );
    }
    drop(local);
}

// ---------------------------------------------------------------------------- item 16

fn sigterm(child: &Child) {
    let pid = i32::try_from(child.id()).expect("pid");
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
}

/// `serve` with stdout and stderr a pipe whose reader is gone (debug logs: every
/// evaluation and request writes): it keeps serving and stops with status 0 on SIGTERM,
/// never the 101 of a panic.
#[test]
fn item_16_a_broken_stderr_does_not_stop_serve() {
    let mut agent = start(&["--watch-interval", "1s"], Output::Broken);
    for _ in 0..5 {
        assert_eq!(get(agent.metrics, "/metrics", None).unwrap().status, 200);
        assert_eq!(get(agent.health, "/healthz", None).unwrap().status, 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(agent.running(), "the agent died writing to a broken stderr");
    sigterm(&agent.child);
    let status = agent
        .child
        .wait_timeout(Duration::from_secs(15))
        .expect("the agent stops within 15 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "exit after SIGTERM: {status}");
}

/// `check` whose stdout is a pipe nobody reads (`check | head` once head is gone) ends
/// with its verdict (0 or 1), not a panic (101) or "could not run" (2); with stderr broken
/// too, the same.
#[test]
fn item_16_check_with_a_closed_stdout_ends_cleanly() {
    let fixture = Fixture::load_from(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node"),
        "example-node",
    );
    let state = tempfile::tempdir().expect("state");
    for broken_stderr in [false, true] {
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let err_path = state.path().join("stderr.log");
        let mut cmd = agent_command();
        cmd.args(["check", "--api-access", "off", "--node-name", "node-1"])
            .arg("--host-root")
            .arg(fixture.root())
            .arg("--state-dir")
            .arg(state.path().join("state"))
            .stdin(Stdio::null())
            .stdout(writer.try_clone().expect("clone"));
        if broken_stderr {
            cmd.stderr(writer);
        } else {
            drop(writer);
            cmd.stderr(std::fs::File::create(&err_path).expect("stderr file"));
        }
        let mut child = Guard(cmd.spawn().expect("check"));
        let status = child
            .wait_timeout(Duration::from_secs(30))
            .expect("check ends within 30 s");
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        assert!(
            matches!(status.code(), Some(0 | 1)),
            "check with a closed stdout (stderr broken: {broken_stderr}): {status}\n{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // The same check with a stdout that is read gives the same verdict.
    let out = agent_command()
        .args(["check", "--api-access", "off", "--node-name", "node-1"])
        .arg("--host-root")
        .arg(fixture.root())
        .arg("--state-dir")
        .arg(state.path().join("state"))
        .output()
        .expect("check");
    assert!(matches!(out.status.code(), Some(0 | 1)));
    assert!(String::from_utf8_lossy(&out.stdout).contains("node-1"));
}
