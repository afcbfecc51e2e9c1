//! Smoke test of the stand-in kubelet (`support/standin-kubelet/`), the test-support
//! binary other tests point kubelet-sentinel's live probes at.
//!
//! Each test starts the stand-in on free loopback ports with a temporary
//! KubeletConfiguration and checks what a client sees:
//! - hardened (anonymous off): `GET /pods` over TLS → 401; SIGTERM → clean exit;
//! - anonymous + Webhook → 403 with the kubelet's message;
//! - anonymous + AlwaysAllow → 200 PodList, `/metrics` carries `kubernetes_build_info`
//!   with the version from the `.version` file;
//! - read-only port open (flags-only base through `--config-dir`): plain HTTP answers;
//! - `--version` with and without a `.version` file, with an empty environment;
//! - the hand-written TLS answers: TLS 1.0 and weak suites when allowed, alerts when not;
//! - `--standin-silent-tls` never answers; an invalid configuration exits non-zero.
//!
//! Every wait is bounded; children are killed by a drop guard.
#![allow(unsafe_code)] // libc: SIGTERM to the stand-in kubelet
#![cfg(feature = "standin")]

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::http::free_port;
use common::standin::{config_text, retry_busy, Standin, HEAD, STANDIN};
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Bound on start-up and exit waits.
const WAIT: Duration = Duration::from_secs(20);
/// Bound on one request/answer exchange.
const IO: Duration = Duration::from_secs(5);

const POD_LIST: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[]}"#;

impl Standin {
    /// Send SIGTERM and wait (bounded) for the exit status.
    fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running child");
        let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
        // SAFETY: signalling our own child, which has not been reaped yet.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
        wait_exit(&mut child).unwrap_or_else(|| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("stand-in did not exit within {WAIT:?} after SIGTERM")
        })
    }
}

fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + WAIT;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A copy of the stand-in binary named `kubelet` in `dir`, with an optional version file.
fn copy_binary(dir: &Path, version: Option<&str>) -> PathBuf {
    let exe = dir.join("kubelet");
    std::fs::copy(STANDIN, &exe).expect("copy the stand-in binary");
    if let Some(v) = version {
        std::fs::write(dir.join("kubelet.version"), format!("{v}\n")).expect("version file");
    }
    exe
}

/// Start a copy of the stand-in (with `version` in its `.version` file, if any) with
/// `--config` = `HEAD` + loopback address, free serving and healthz ports + `body`;
/// `args` gets the temp dir and returns extra arguments.
fn start_with(
    version: Option<&str>,
    body: &str,
    args: impl FnOnce(&Path) -> Vec<String>,
) -> Standin {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = copy_binary(dir.path(), version);
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_text(free_port(), free_port(), body)).expect("write config");
    let mut argv = vec![format!("--config={}", config.display())];
    argv.extend(args(dir.path()));
    spawn(dir, &exe, argv)
}

fn start(body: &str) -> Standin {
    start_with(None, body, |_| Vec::new())
}

fn spawn(dir: tempfile::TempDir, exe: &Path, argv: Vec<String>) -> Standin {
    Standin::spawn(dir, exe, &argv, WAIT).unwrap_or_else(|e| panic!("{e}"))
}

/// Split a raw HTTP/1.1 response into status and body.
fn parse_response(raw: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line: {head:?}"));
    (status, body.to_string())
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

/// Plain HTTP `GET` over a raw `TcpStream`.
fn plain_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(IO)).expect("read timeout");
    s.write_all(request(path).as_bytes()).expect("send request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

/// `GET` over TLS (rustls, any certificate accepted): status, body, negotiated version.
fn tls_get(port: u16, path: &str) -> (u16, String, String) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        // Any certificate accepted (the stand-in's is self-signed), signatures checked.
        let (config, _) = common::tls::client_config();
        let connector = tokio_rustls::TlsConnector::from(config);
        let exchange = async {
            let tcp = tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port)).await?;
            let name = ServerName::try_from("localhost").expect("server name");
            let mut tls = connector.connect(name, tcp).await?;
            let version = format!("{:?}", tls.get_ref().1.protocol_version());
            tls.write_all(request(path).as_bytes()).await?;
            let mut raw = Vec::new();
            let mut chunk = [0u8; 4096];
            // The response is complete when the server closes; an EOF without
            // close_notify still leaves the bytes read so far.
            loop {
                match tls.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => raw.extend_from_slice(&chunk[..n]),
                }
            }
            Ok::<_, std::io::Error>((raw, version))
        };
        let (raw, version) = tokio::time::timeout(IO, exchange)
            .await
            .expect("TLS exchange within the timeout")
            .expect("TLS exchange");
        let (status, body) = parse_response(&raw);
        (status, body, version)
    })
}

/// A minimal ClientHello record: `legacy` version, `suites`, and a `supported_versions`
/// extension when `versions` is given.
#[allow(clippy::cast_possible_truncation)] // a ClientHello of a few dozen bytes
fn client_hello(legacy: u16, suites: &[u16], versions: Option<&[u16]>) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&legacy.to_be_bytes());
    body.extend_from_slice(&[7u8; 32]);
    body.push(0);
    body.extend_from_slice(&(2 * suites.len() as u16).to_be_bytes());
    for s in suites {
        body.extend_from_slice(&s.to_be_bytes());
    }
    body.extend_from_slice(&[1, 0]);
    let mut ext = vec![0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]; // secp256r1
    ext.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]); // ec_point_formats
    if let Some(vs) = versions {
        ext.extend_from_slice(&[0x00, 0x2b]);
        ext.extend_from_slice(&(1 + 2 * vs.len() as u16).to_be_bytes());
        ext.push(2 * vs.len() as u8);
        for v in vs {
            ext.extend_from_slice(&v.to_be_bytes());
        }
    }
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 0x03, 0x01];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

/// Send raw bytes and read until the server closes (bounded).
fn raw_exchange(port: u16, bytes: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
    s.set_read_timeout(Some(IO)).expect("read timeout");
    s.write_all(bytes).expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read until close");
    out
}

#[derive(Debug, PartialEq, Eq)]
enum TlsAnswer {
    /// ServerHello: record version, server version, cipher suite.
    ServerHello(u16, u16, u16),
    /// Fatal alert description.
    Alert(u8),
}

fn classify(raw: &[u8]) -> TlsAnswer {
    let be = |i: usize| u16::from_be_bytes([raw[i], raw[i + 1]]);
    match raw.first() {
        Some(0x15) if raw.len() >= 7 => {
            assert_eq!(raw[5], 2, "fatal alert level: {raw:02x?}");
            TlsAnswer::Alert(raw[6])
        }
        Some(0x16) if raw.len() >= 47 && raw[5] == 2 => {
            let sid = usize::from(raw[43]);
            TlsAnswer::ServerHello(be(1), be(9), be(44 + sid))
        }
        _ => panic!("neither a ServerHello nor an alert: {raw:02x?}"),
    }
}

#[test]
fn hardened_kubelet_answers_401_and_stops_on_sigterm() {
    let mut k = start("authentication:\n  anonymous:\n    enabled: false\nauthorization:\n  mode: Webhook\nreadOnlyPort: 0\n");
    assert_eq!(k.ready["read_only_port"], Value::Null);
    let port = k.port("port");
    let (status, body, version) = tls_get(port, "/pods");
    assert_eq!((status, body.as_str()), (401, "Unauthorized"));
    assert_eq!(version, "Some(TLSv1_3)");
    assert_eq!(tls_get(port, "/healthz").0, 401);
    assert_eq!(
        plain_get(k.port("healthz_port"), "/healthz"),
        (200, "ok".to_string())
    );
    // Plain HTTP on the TLS port gets Go's answer.
    let raw = raw_exchange(port, request("/pods").as_bytes());
    assert!(String::from_utf8_lossy(&raw).starts_with("HTTP/1.0 400 Bad Request"));
    let status = k.terminate();
    assert!(status.success(), "exit after SIGTERM: {status}");
}

#[test]
fn anonymous_with_webhook_is_forbidden() {
    let k = start(
        "authentication:\n  anonymous:\n    enabled: true\nauthorization:\n  mode: Webhook\n",
    );
    let (status, body, _) = tls_get(k.port("port"), "/pods");
    assert_eq!(status, 403);
    assert_eq!(
        body,
        "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=proxy)"
    );
}

#[test]
fn anonymous_with_always_allow_lists_pods_and_reports_its_version() {
    let k = start_with(
        Some("v1.32.7"),
        "authentication:\n  anonymous:\n    enabled: true\nauthorization:\n  mode: AlwaysAllow\n",
        |_| Vec::new(),
    );
    let port = k.port("port");
    let (status, body, _) = tls_get(port, "/pods");
    assert_eq!((status, body.as_str()), (200, POD_LIST));
    let (status, metrics, _) = tls_get(port, "/metrics");
    assert_eq!(status, 200);
    assert!(
        metrics.contains(r#"kubernetes_build_info{build_date="",compiler="gc",git_commit="0",git_tree_state="clean",git_version="v1.32.7",go_version="go1.24",major="1",minor="32",platform="linux/amd64"} 1"#),
        "{metrics}"
    );
    assert_eq!(tls_get(port, "/healthz").1, "ok");
}

#[test]
fn read_only_port_serves_plain_http_without_auth() {
    // k3s/RKE2 style: drop-ins only, no --config, so the flags-only defaults apply
    // (anonymous, AlwaysAllow); the read-only port comes from the command line.
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = copy_binary(dir.path(), None);
    let dropins = dir.path().join("kubelet.conf.d");
    std::fs::create_dir(&dropins).expect("drop-in dir");
    std::fs::write(
        dropins.join("00-defaults.conf"),
        format!(
            "{HEAD}address: 127.0.0.1\nport: {}\nhealthzPort: 0\n",
            free_port()
        ),
    )
    .expect("drop-in");
    let argv = vec![
        format!("--config-dir={}", dropins.display()),
        format!("--read-only-port={}", free_port()),
    ];
    let k = spawn(dir, &exe, argv);
    assert_eq!(k.ready["healthz_port"], Value::Null);
    let ro = k.port("read_only_port");
    assert_eq!(plain_get(ro, "/healthz"), (200, "ok".to_string()));
    assert_eq!(plain_get(ro, "/pods"), (200, POD_LIST.to_string()));
    let (status, metrics) = plain_get(ro, "/metrics");
    assert_eq!(status, 200);
    assert!(metrics.contains(r#"git_version="v1.31.4""#), "{metrics}");
    assert_eq!(plain_get(ro, "/exec/default/pod/c?command=id").0, 405);
    assert_eq!(tls_get(k.port("port"), "/pods").0, 200);
}

#[test]
fn version_comes_from_the_version_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |exe: &Path| {
        let out = retry_busy(WAIT, || {
            Command::new(exe).arg("--version").env_clear().output()
        });
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("UTF-8")
    };
    let plain = copy_binary(dir.path(), None);
    assert_eq!(run(&plain), "Kubernetes v1.31.4\n");
    std::fs::write(dir.path().join("kubelet.version"), "v1.29.3-eks-1234abc\n").expect("write");
    assert_eq!(run(&plain), "Kubernetes v1.29.3-eks-1234abc\n");
}

#[test]
fn legacy_versions_and_weak_suites_get_a_hand_written_server_hello() {
    let weak = start("tlsMinVersion: VersionTLS10\ntlsCipherSuites:\n- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n- TLS_RSA_WITH_AES_128_CBC_SHA\n");
    let port = weak.port("port");
    // TLS 1.0 only, offering a configured CBC suite.
    let answer = classify(&raw_exchange(port, &client_hello(0x0301, &[0x002f], None)));
    assert_eq!(answer, TlsAnswer::ServerHello(0x0301, 0x0301, 0x002f));
    // TLS 1.2, offering only suites rustls cannot do, one of them configured.
    let answer = classify(&raw_exchange(
        port,
        &client_hello(0x0303, &[0x000a, 0x002f], None),
    ));
    assert_eq!(answer, TlsAnswer::ServerHello(0x0303, 0x0303, 0x002f));
    // TLS 1.2 with an unconfigured weak suite only: handshake_failure.
    let answer = classify(&raw_exchange(port, &client_hello(0x0303, &[0x000a], None)));
    assert_eq!(answer, TlsAnswer::Alert(40));
    // rustls still serves real clients.
    assert_eq!(tls_get(port, "/pods").0, 401);

    let hardened = start("");
    let port = hardened.port("port");
    // Default minimum is TLS 1.2: a TLS 1.1-only client gets protocol_version.
    let answer = classify(&raw_exchange(port, &client_hello(0x0302, &[0x002f], None)));
    assert_eq!(answer, TlsAnswer::Alert(70));
    // Default suites do not include TLS_RSA_WITH_AES_128_CBC_SHA.
    let answer = classify(&raw_exchange(port, &client_hello(0x0303, &[0x002f], None)));
    assert_eq!(answer, TlsAnswer::Alert(40));
}

#[test]
fn silent_tls_accepts_but_never_answers() {
    let k = start_with(None, "", |_| vec!["--standin-silent-tls".to_string()]);
    let mut s = TcpStream::connect((Ipv4Addr::LOCALHOST, k.port("port"))).expect("connect");
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    s.write_all(&client_hello(0x0303, &[0xc02b], Some(&[0x0304, 0x0303])))
        .expect("send hello");
    let mut buf = [0u8; 16];
    match s.read(&mut buf) {
        Err(e) => assert!(
            matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
            "{e}"
        ),
        Ok(n) => panic!("silent stand-in answered {n} bytes"),
    }
}

#[test]
fn invalid_configuration_exits_non_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, "apiVersion: v1\nkind: Pod\n").expect("write config");
    let mut child = Command::new(STANDIN)
        .arg(format!("--config={}", config.display()))
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let status = wait_exit(&mut child).unwrap_or_else(|| {
        let _ = child.kill();
        let _ = child.wait();
        panic!("stand-in did not exit on an invalid configuration")
    });
    assert!(!status.success());
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("KubeletConfiguration"), "{stderr}");
}
