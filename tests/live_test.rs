//! Live probes end to end: the agent binary against the stand-in kubelet
//! (`support/standin-kubelet/`, built with `--features standin`).
//!
//! Each scenario starts the stand-in on its own free loopback ports with a temporary
//! KubeletConfiguration, runs `kubelet-sentinel check --kubelet-pid <stand-in> --format
//! json` (or `serve`, scraped over a raw `TcpStream`) against the live `/proc`, and
//! asserts the live-backed controls by status *and* by source, observed value and reason:
//!
//! 1. hardened: config and live agree → pass (`config-file+live`); version from the
//!    binary (a copy with a `.version` file); the wall time of `check` is printed;
//! 2. anonymous + Webhook → 403: anonymous fails on live evidence, authorisation passes;
//! 3. anonymous + AlwaysAllow → 200: the API is open, every related control fails;
//! 4. read-only port open → fail on `GET /healthz 200`; version from `kubernetes_build_info`
//!    when running the binary is disabled;
//! 5. flags override a hardened file → the controls fail and name the flag and live;
//! 6. TLS 1.0 allowed → `tls-min-version` fails; `serve` exports
//!    `kubelet_sentinel_kubelet_tls_version_accepted{version="VersionTLS10"} 1`;
//! 7. a weak cipher suite allowed → `tls-strong-cipher-suites` fails naming it;
//! 8. an expired serving certificate (rcgen) → `serving-cert-valid` fails on live evidence;
//! 9. the kubelet restarts under `serve` (discovery, no `--kubelet-pid`) → the new process
//!    is found and its answer (200 instead of 401) exported;
//! 10. a serving port that never answers → `check` ends in bounded time and the TLS-backed
//!     controls are `unknown`, never `pass`.
//!
//! Scenarios pinned with `--kubelet-pid` run concurrently (a shared lock); the discovery
//! scenario takes the lock exclusively so no other stand-in of this binary runs meanwhile.
//! Every wait is bounded; stand-ins and agents are killed by drop guards.

#![cfg(feature = "standin")]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use common::agent::{control, readyz_ok, run_report, wait_ready, AGENT};
use common::http::{free_port, get};
use common::metrics::sample;
use common::process::Guard;
use common::standin::{config_text, Standin, STANDIN};
use serde_json::Value;

/// Bound on a stand-in's or agent's start-up.
const WAIT: Duration = Duration::from_secs(20);
/// Bound on one `check` run (a debug build, many tests in parallel).
const CHECK_WAIT: Duration = Duration::from_secs(60);
/// Bound on the `serve` scenario's wait for the restarted kubelet.
const RESTART_WAIT: Duration = Duration::from_secs(15);

/// The CIS 1.12 suites (the agent's default policy).
const CIS_SUITES: &str = "tlsCipherSuites:
- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
- TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305
- TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305
- TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
- TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
";

fn auth(anonymous: bool, mode: &str) -> String {
    format!(
        "authentication:\n  anonymous:\n    enabled: {anonymous}\n  webhook:\n    enabled: true\nauthorization:\n  mode: {mode}\n"
    )
}

/// Anonymous off, Webhook, no read-only port, TLS 1.2 floor, CIS suites.
fn hardened() -> String {
    format!(
        "{}readOnlyPort: 0\ntlsMinVersion: VersionTLS12\n{CIS_SUITES}",
        auth(false, "Webhook")
    )
}

// ---------------------------------------------------------------------------------------
// Serialising discovery
// ---------------------------------------------------------------------------------------

/// Pinned scenarios share it; the discovery scenario holds it alone, so that while it
/// runs no other stand-in started by this test binary exists.
static DISCOVERY: RwLock<()> = RwLock::new(());

/// Every scenario also runs in a network namespace of its own where it can have one
/// (root): the stand-in and the agent it spawns then meet no real kubelet on this
/// machine's loopback (common/netns.rs). Without one, see [`expect_read_only_closed`].
fn pinned() -> RwLockReadGuard<'static, ()> {
    let _ = common::netns::isolate();
    DISCOVERY.read().unwrap_or_else(PoisonError::into_inner)
}

fn exclusive() -> RwLockWriteGuard<'static, ()> {
    let _ = common::netns::isolate();
    DISCOVERY.write().unwrap_or_else(PoisonError::into_inner)
}

// ---------------------------------------------------------------------------------------
// The stand-in kubelet
// ---------------------------------------------------------------------------------------

/// Free loopback ports for one scenario: serving, healthz and a spare one (for a
/// read-only port).
#[derive(Debug, Clone, Copy)]
struct Ports {
    port: u16,
    healthz: u16,
    spare: u16,
}

impl Ports {
    fn free() -> Ports {
        // Hold all three while choosing, so they differ.
        let ls: Vec<TcpListener> = (0..3)
            .map(|_| TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind"))
            .collect();
        let p = |i: usize| ls[i].local_addr().expect("local addr").port();
        Ports {
            port: p(0),
            healthz: p(1),
            spare: p(2),
        }
    }
}

/// How to start one stand-in.
#[derive(Debug, Default)]
struct Spec {
    /// KubeletConfiguration lines after the head and the listener lines.
    body: String,
    /// Extra command-line arguments.
    args: Vec<String>,
    /// Run a copy with this `.version` file (else the built binary: v1.31.4).
    version: Option<&'static str>,
}

/// Start a stand-in on `ports`; `Err(stderr)` when it exits before it is ready.
fn launch(ports: &Ports, spec: &Spec) -> Result<Standin, String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = match spec.version {
        Some(v) => {
            let exe = dir.path().join("kubelet");
            std::fs::copy(STANDIN, &exe).expect("copy the stand-in");
            std::fs::write(dir.path().join("kubelet.version"), format!("{v}\n"))
                .expect("write the version file");
            exe
        }
        None => PathBuf::from(STANDIN),
    };
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_text(ports.port, ports.healthz, &spec.body))
        .expect("write the config");
    let mut argv = vec![format!("--config={}", config.display())];
    argv.extend(spec.args.iter().cloned());
    Standin::spawn(dir, &exe, &argv, WAIT)
}

/// Start a stand-in on fresh free ports; a port taken between choosing and binding it
/// is retried with others.
fn start(spec: impl Fn(&Ports) -> Spec) -> Standin {
    let mut last = String::new();
    for _ in 0..3 {
        let ports = Ports::free();
        match launch(&ports, &spec(&ports)) {
            Ok(s) => return s,
            Err(e) if e.contains("failed to listen") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free ports for the stand-in: {last}");
}

fn body(body: String) -> impl Fn(&Ports) -> Spec {
    move |_| Spec {
        body: body.clone(),
        ..Spec::default()
    }
}

// ---------------------------------------------------------------------------------------
// The agent
// ---------------------------------------------------------------------------------------

/// The agent's command with no `KUBELET_SENTINEL_*`/`NODE_NAME` from the test's
/// environment (they would change its flags).
fn agent_command() -> Command {
    let mut cmd = common::agent::agent_command();
    // A fresh, empty state dir per command: no baseline from another test or from a
    // developer's own runs can leak in.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let state = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("live-state-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&state);
    cmd.env("KUBELET_SENTINEL_STATE_DIR", state);
    cmd.env("NO_COLOR", "1").stdin(Stdio::null());
    cmd
}

/// The controls that use live evidence.
const LIVE_CONTROLS: &[&str] = &[
    "anonymous-auth-disabled",
    "authorization-mode-webhook",
    "kubelet-api-rejects-anonymous",
    "read-only-port-disabled",
    "healthz-bind-localhost",
    "tls-min-version",
    "tls-strong-cipher-suites",
    "serving-cert-valid",
];

/// One `check` run: the JSON report and the wall time.
struct Report {
    json: Value,
    elapsed: Duration,
}

/// `check --kubelet-pid <pid> --format json --fail-on never` (+ `extra`), live probes on
/// auto against the live `/proc`.
fn check(pid: u32, extra: &[&str]) -> Report {
    let (json, elapsed) = run_report(
        agent_command()
            .args(["check", "--kubelet-pid", &pid.to_string()])
            .args(["--format", "json", "--fail-on", "never"])
            .args(["--live-probes", "auto", "--log-level", "warn"])
            .args(extra),
        CHECK_WAIT,
    );
    if std::env::var_os("LIVE_TEST_DUMP").is_some() {
        // For debugging: the header and every control decided with live evidence.
        let mut dump = format!(
            "check --kubelet-pid {pid} {extra:?}: {:#}\n",
            json["kubelet"]
        );
        for c in json["controls"].as_array().into_iter().flatten() {
            if LIVE_CONTROLS.contains(&c["id"].as_str().unwrap_or_default()) {
                dump.push_str(&format!(
                    "  {} {} [{}] observed={:?} reason={:?}\n",
                    c["id"], c["status"], c["source"], c["observed"], c["reason"]
                ));
            }
        }
        eprintln!("{dump}");
    }
    assert_eq!(
        json["kubelet"]["pid"],
        Value::from(pid),
        "the pinned kubelet: {}",
        json["kubelet"]
    );
    Report { json, elapsed }
}

impl Report {
    fn control(&self, id: &str) -> &Value {
        control(&self.json, id)
    }

    /// Assert a control's status and source; returns it for further checks.
    fn expect(&self, id: &str, status: &str, source: &str) -> &Value {
        let c = self.control(id);
        assert_eq!(
            (c["status"].as_str(), c["source"].as_str()),
            (Some(status), Some(source)),
            "{id}: {c:#}"
        );
        c
    }

    fn kubelet(&self) -> &Value {
        &self.json["kubelet"]
    }
}

/// `read-only-port-disabled` of a stand-in with `readOnlyPort: 0`. The agent probes the
/// default port, 10255, even then. In the test's own network namespace nothing listens
/// there, and the live probe confirms the file. Without one (not root), a kubelet of this
/// machine may hold 10255: the agent must then see that the stand-in does not own that
/// listener, leave the verdict to the file and say so.
fn expect_read_only_closed(r: &Report) {
    if common::netns::taken(10255) {
        let c = r.expect("read-only-port-disabled", "pass", "config-file");
        has(c, "reason", &["another process owns it"]);
    } else {
        let c = r.expect("read-only-port-disabled", "pass", "config-file+live");
        has(c, "observed", &["0", "nothing listening"]);
    }
}

/// Assert that a control's `field` contains every one of `needles`.
fn has(c: &Value, field: &str, needles: &[&str]) {
    let text = c[field].as_str().unwrap_or_default();
    for n in needles {
        assert!(
            text.contains(n),
            "{}.{field} lacks {n:?}: {c:#}",
            c["id"].as_str().unwrap_or("?")
        );
    }
}

/// Assert that a control's `field` contains none of `needles`.
fn lacks(c: &Value, field: &str, needles: &[&str]) {
    let text = c[field].as_str().unwrap_or_default();
    for n in needles {
        assert!(
            !text.contains(n),
            "{}.{field} has {n:?}: {c:#}",
            c["id"].as_str().unwrap_or("?")
        );
    }
}

/// `serve` on a free loopback port, ready (`/readyz` 200); killed on drop.
struct Serve {
    guard: Guard,
    addr: SocketAddr,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Serve {
    fn start(args: &[String]) -> Serve {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut last = String::new();
        for attempt in 0..3 {
            let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
            let log = dir.path().join(format!("serve-{attempt}.log"));
            let file = std::fs::File::create(&log).expect("log file");
            let child = agent_command()
                .arg("serve")
                .args(["--listen-address", &addr.to_string()])
                .args(args)
                .stdout(file.try_clone().expect("log file"))
                .stderr(file)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {AGENT}: {e}"));
            let mut guard = Guard(child);
            let read_log = || std::fs::read_to_string(&log).unwrap_or_default();
            match wait_ready(&mut guard, WAIT, || readyz_ok(addr).then_some(()), read_log) {
                Ok(()) => {
                    return Serve {
                        guard,
                        addr,
                        log,
                        _dir: dir,
                    }
                }
                Err(status) => last = format!("serve exited ({status}): {}", read_log()),
            }
        }
        panic!("serve did not start: {last}");
    }

    fn metrics(&mut self) -> String {
        if let Ok(Some(status)) = self.guard.0.try_wait() {
            panic!("serve exited ({status}): {}", self.log());
        }
        match get(self.addr, "/metrics", None) {
            Ok(r) if r.status == 200 => r.body,
            other => panic!("GET /metrics: {other:?}\n{}", self.log()),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// 1. Hardened: every live-backed control passes with configuration and live evidence
///    agreeing; the version comes from the kubelet binary itself (`--version-exec=true`,
///    the opt-in: the stand-in has no Go build information, and passes the identity
///    checks when its build directory is root-owned and not group/other-writable, as in CI).
#[test]
fn hardened_kubelet_passes_on_config_and_live_evidence() {
    let _lock = pinned();
    let k = start(|_| Spec {
        body: hardened(),
        version: Some("v1.33.4"),
        ..Spec::default()
    });
    let healthz = k.port("healthz_port");
    let r = check(k.pid(), &["--version-exec=true"]);
    // Wall time of the whole `check` process (start-up, /proc, the probes, the version
    // exec, rendering); a few more runs for a steadier figure.
    let mut walls = vec![r.elapsed];
    walls.extend((0..2).map(|_| check(k.pid(), &["--version-exec=true"]).elapsed));
    eprintln!(
        "timing: check against the hardened stand-in: wall {} s (debug build; report duration_seconds {})",
        walls
            .iter()
            .map(|d| format!("{:.3}", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(" / "),
        r.json["duration_seconds"]
    );

    let kubelet = r.kubelet();
    assert_eq!(kubelet["live_probes"], true, "{kubelet:#}");
    assert_eq!(kubelet["discovery"], "found", "{kubelet:#}");
    assert_eq!(
        (
            kubelet["version"].as_str(),
            kubelet["version_source"].as_str()
        ),
        (Some("v1.33.4"), Some("binary")),
        "{kubelet:#}"
    );
    assert_eq!(
        kubelet["config_file"].as_str(),
        Some(k.config().to_string_lossy().as_ref())
    );

    let c = r.expect("anonymous-auth-disabled", "pass", "config-file+live");
    has(c, "observed", &["false", "401"]);
    has(c, "reason", &["confirmed live"]);
    let c = r.expect("kubelet-api-rejects-anonymous", "pass", "live");
    assert_eq!(c["observed"], "HTTP 401", "{c:#}");
    expect_read_only_closed(&r);
    let c = r.expect("tls-min-version", "pass", "config-file+live");
    has(c, "observed", &["VersionTLS12", "live: accepts only"]);
    lacks(c, "observed", &["VersionTLS10", "VersionTLS11"]);
    let c = r.expect("tls-strong-cipher-suites", "pass", "config-file+live");
    has(c, "observed", &["live: accepts only", "TLS_ECDHE_"]);
    lacks(c, "observed", &["CBC", "TLS_RSA_"]);
    let c = r.expect("healthz-bind-localhost", "pass", "config-file+live");
    has(c, "observed", &[&format!("127.0.0.1:{healthz}")]);
    // 401 hides the authorisation mode: the file alone decides, live adds a note.
    let c = r.expect("authorization-mode-webhook", "pass", "config-file");
    has(c, "reason", &["401"]);
    // The stand-in's fresh self-signed certificate is valid for a year.
    r.expect("serving-cert-valid", "pass", "live");
}

/// 2. Anonymous enabled, Webhook: 403. The authoriser holds, but anonymous requests are
///    authenticated: that control fails on live evidence.
#[test]
fn anonymous_with_webhook_fails_anonymous_but_passes_authorisation() {
    let _lock = pinned();
    let k = start(body(format!("{}readOnlyPort: 0\n", auth(true, "Webhook"))));
    let r = check(k.pid(), &[]);
    assert_eq!(r.kubelet()["live_probes"], true);

    let c = r.expect("anonymous-auth-disabled", "fail", "live");
    has(c, "observed", &["403"]);
    has(c, "reason", &["configured true (config-file)"]);
    let c = r.expect("authorization-mode-webhook", "pass", "config-file+live");
    has(c, "observed", &["Webhook", "403"]);
    let c = r.expect("kubelet-api-rejects-anonymous", "pass", "live");
    assert_eq!(c["observed"], "HTTP 403", "{c:#}");
}

/// 3. Anonymous enabled, AlwaysAllow: an anonymous `GET /pods` is answered (200).
#[test]
fn anonymous_with_always_allow_is_an_open_api() {
    let _lock = pinned();
    let k = start(body(format!(
        "{}readOnlyPort: 0\n",
        auth(true, "AlwaysAllow")
    )));
    let r = check(k.pid(), &[]);

    let c = r.expect("kubelet-api-rejects-anonymous", "fail", "live");
    assert_eq!(c["observed"], "HTTP 200", "{c:#}");
    let c = r.expect("authorization-mode-webhook", "fail", "live");
    has(c, "observed", &["200"]);
    has(c, "reason", &["AlwaysAllow"]);
    let c = r.expect("anonymous-auth-disabled", "fail", "live");
    has(c, "observed", &["200"]);
}

/// 4. The read-only port is open: any answer fails the control. With running the binary
///    disabled, the version is read from `kubernetes_build_info` on that port.
#[test]
fn open_read_only_port_fails_and_yields_the_version() {
    let _lock = pinned();
    let k = start(|p| Spec {
        body: format!("{}readOnlyPort: {}\n", auth(false, "Webhook"), p.spare),
        version: Some("v1.32.9"),
        ..Spec::default()
    });
    let ro = k.port("read_only_port");
    let r = check(k.pid(), &["--version-exec=false"]);

    let c = r.expect("read-only-port-disabled", "fail", "live");
    has(
        c,
        "observed",
        &[&format!("127.0.0.1:{ro}"), "GET /healthz 200"],
    );
    has(c, "reason", &[&format!("configured {ro} (config-file)")]);
    let kubelet = r.kubelet();
    assert_eq!(
        (
            kubelet["version"].as_str(),
            kubelet["version_source"].as_str()
        ),
        (Some("v1.32.9"), Some("build_info")),
        "{kubelet:#}"
    );
}

/// 5. The file is hardened but flags override it: the flags win, in the kubelet and in
///    the report.
#[test]
fn flags_override_a_hardened_config_file() {
    let _lock = pinned();
    let k = start(|p| Spec {
        body: format!("{}readOnlyPort: 0\n", auth(false, "Webhook")),
        args: vec![
            format!("--read-only-port={}", p.spare),
            "--anonymous-auth=true".to_string(),
        ],
        ..Spec::default()
    });
    let ro = k.port("read_only_port");
    let r = check(k.pid(), &[]);

    let c = r.expect("read-only-port-disabled", "fail", "live");
    has(c, "observed", &["GET /healthz 200"]);
    has(
        c,
        "reason",
        &[&format!("configured {ro} (flag)"), "flag --read-only-port"],
    );
    let c = r.expect("anonymous-auth-disabled", "fail", "live");
    has(c, "observed", &["403"]);
    has(
        c,
        "reason",
        &["configured true (flag)", "flag --anonymous-auth"],
    );
}

/// 6. TLS 1.0 allowed (Go's default suites, which include CBC suites TLS 1.0 can use):
///    `tls-min-version` fails on the live scan, and `serve` exports what was accepted.
#[test]
fn tls10_allowed_fails_and_is_exported() {
    let _lock = pinned();
    let k = start(body(format!(
        "{}readOnlyPort: 0\ntlsMinVersion: VersionTLS10\n",
        auth(false, "Webhook")
    )));
    let r = check(k.pid(), &[]);
    let c = r.expect("tls-min-version", "fail", "live");
    has(c, "observed", &["live: accepts", "VersionTLS10"]);
    has(c, "reason", &["configured VersionTLS10 (config-file)"]);

    let node = "live-tls10";
    let mut serve = Serve::start(&[
        "--kubelet-pid".to_string(),
        k.pid().to_string(),
        "--node-name".to_string(),
        node.to_string(),
        "--interval".to_string(),
        "30s".to_string(),
    ]);
    let metrics = serve.metrics();
    let accepted = |v: &str| {
        sample(
            &metrics,
            "kubelet_sentinel_kubelet_tls_version_accepted",
            &[("node", node), ("version", v)],
        )
    };
    assert_eq!(accepted("VersionTLS10"), Some(1.0), "{metrics}");
    assert_eq!(accepted("VersionTLS12"), Some(1.0), "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "kubelet_sentinel_control_status",
            &[
                ("node", node),
                ("control", "tls-min-version"),
                ("status", "fail")
            ],
        ),
        Some(1.0),
        "{metrics}"
    );
}

/// 7. A weak suite (no forward secrecy, CBC) in the list: the scan finds it accepted.
#[test]
fn weak_cipher_suite_allowed_fails_naming_it() {
    let _lock = pinned();
    let k = start(body(format!(
        "{}readOnlyPort: 0\ntlsMinVersion: VersionTLS12\ntlsCipherSuites:\n- TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256\n- TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256\n- TLS_RSA_WITH_AES_128_CBC_SHA\n",
        auth(false, "Webhook")
    )));
    let r = check(k.pid(), &[]);
    let c = r.expect("tls-strong-cipher-suites", "fail", "live");
    has(
        c,
        "observed",
        &["live: accepts TLS_RSA_WITH_AES_128_CBC_SHA"],
    );
    lacks(c, "observed", &["GCM"]);
    has(c, "reason", &["TLS_RSA_WITH_AES_128_CBC_SHA"]);
    // The floor is still right.
    r.expect("tls-min-version", "pass", "config-file+live");
}

/// A self-signed certificate valid from 2020-01-01 to 2021-01-01, as PEM files in `dir`.
fn expired_certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("certificate parameters");
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, "expired-standin");
    params.distinguished_name = dn;
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("self-signed certificate");
    let (crt, pem_key) = (dir.join("serving.crt"), dir.join("serving.key"));
    std::fs::write(&crt, cert.pem()).expect("write the certificate");
    std::fs::write(&pem_key, key.serialize_pem()).expect("write the key");
    (crt, pem_key)
}

/// 8. The kubelet serves an expired certificate: fails on what the handshake presented.
#[test]
fn expired_serving_certificate_fails_on_live_evidence() {
    let _lock = pinned();
    let certs = tempfile::tempdir().expect("tempdir");
    let (crt, key) = expired_certificate(certs.path());
    let k = start(body(format!(
        "{}tlsCertFile: {}\ntlsPrivateKeyFile: {}\n",
        hardened(),
        crt.display(),
        key.display()
    )));
    let r = check(k.pid(), &[]);
    let c = r.expect("serving-cert-valid", "fail", "live");
    assert_eq!(c["observed"], "notAfter=2021-01-01T00:00:00Z", "{c:#}");
    has(c, "reason", &["expired", "CN=expired-standin"]);
    // The handshake still works: the other TLS controls are decided.
    r.expect("tls-min-version", "pass", "config-file+live");
}

/// Pids of processes that look like a kubelet to discovery (argv[0] or exe named
/// `kubelet`), other than `ours`.
fn foreign_kubelets(ours: &[u32]) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| !ours.contains(pid))
        .filter(|pid| {
            let argv0 = std::fs::read(format!("/proc/{pid}/cmdline"))
                .ok()
                .and_then(|b| {
                    b.split(|c| *c == 0)
                        .next()
                        .map(|a| String::from_utf8_lossy(a).into_owned())
                })
                .unwrap_or_default();
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            Path::new(&argv0)
                .file_name()
                .is_some_and(|n| n == "kubelet")
                || exe
                    .as_deref()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "kubelet")
        })
        .collect()
}

/// 9. `serve` finds the kubelet by discovery, and finds it again after it restarts with
///    a new pid and a different behaviour (anonymous 401 → 200, TLS 1.0 refused →
///    accepted): nothing learnt about the old process is kept for the new one.
#[test]
fn serve_follows_a_kubelet_restart() {
    let _lock = exclusive();
    // Discovery picks the lowest pid among kubelet candidates: other kubelets on the host
    // (another test run, a real node) would make the answer someone else's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !foreign_kubelets(&[]).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let foreign = foreign_kubelets(&[]);
    if !foreign.is_empty() {
        assert!(
            std::env::var_os("CI").is_none(),
            "other kubelet processes run on this host (pids {foreign:?}): discovery cannot be tested"
        );
        eprintln!(
            "notice: skipping serve_follows_a_kubelet_restart: other kubelet processes (pids {foreign:?})"
        );
        return;
    }

    let ports = Ports::free();
    let first = launch(
        &ports,
        &Spec {
            body: hardened(),
            ..Spec::default()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let node = "live-restart";
    let mut serve = Serve::start(&[
        "--node-name".to_string(),
        node.to_string(),
        "--interval".to_string(),
        "1s".to_string(),
    ]);
    let anonymous = |m: &str| {
        sample(
            m,
            "kubelet_sentinel_kubelet_anonymous_response_code",
            &[("node", node)],
        )
    };
    let info = |m: &str, config: &Path| {
        sample(
            m,
            "kubelet_sentinel_kubelet_info",
            &[("node", node), ("config_file", &config.to_string_lossy())],
        )
    };
    // TLS scans are reused for the same kubelet process: a restarted one is rescanned.
    let tls10 = |m: &str| {
        sample(
            m,
            "kubelet_sentinel_kubelet_tls_version_accepted",
            &[("node", node), ("version", "VersionTLS10")],
        )
    };
    let wait_for = |serve: &mut Serve, what: &str, ok: &dyn Fn(&str) -> bool| -> String {
        let deadline = Instant::now() + RESTART_WAIT;
        loop {
            let m = serve.metrics();
            if ok(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{what} not seen within {RESTART_WAIT:?} (kubelet processes now: {:?}); last scrape:\n{m}\nserve log:\n{}",
                foreign_kubelets(&[]),
                serve.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    let m = wait_for(&mut serve, "the first kubelet", &|m| {
        sample(m, "kubelet_sentinel_kubelet_up", &[("node", node)]) == Some(1.0)
            && anonymous(m).is_some()
    });
    assert_eq!(anonymous(&m), Some(401.0), "{m}");
    assert_eq!(info(&m, &first.config()), Some(1.0), "{m}");
    assert_eq!(tls10(&m), Some(0.0), "{m}");
    let old_pid = first.pid();
    drop(first); // SIGKILL, as a crash

    let second = launch(
        &ports,
        &Spec {
            body: format!(
                "{}readOnlyPort: 0\ntlsMinVersion: VersionTLS10\n",
                auth(true, "AlwaysAllow")
            ),
            ..Spec::default()
        },
    )
    .unwrap_or_else(|e| panic!("restart on the same ports: {e}"));
    assert_ne!(second.pid(), old_pid);
    assert_eq!(second.port("port"), ports.port);
    let m = wait_for(&mut serve, "the restarted kubelet (anonymous 200)", &|m| {
        anonymous(m) == Some(200.0)
    });
    // The answer is the new process's: its own configuration file is reported.
    assert_eq!(info(&m, &second.config()), Some(1.0), "{m}");
    assert_eq!(tls10(&m), Some(1.0), "the new process was rescanned: {m}");
    assert_eq!(
        sample(
            &m,
            "kubelet_sentinel_control_status",
            &[
                ("node", node),
                ("control", "kubelet-api-rejects-anonymous"),
                ("status", "fail")
            ],
        ),
        Some(1.0),
        "{m}"
    );
}

/// 10. A serving port that accepts TCP but never answers: `check` ends in bounded time and
///     nothing that depends on the handshake passes.
#[test]
fn silent_serving_port_is_unknown_never_pass() {
    let _lock = pinned();
    let k = start(|_| Spec {
        body: hardened(),
        args: vec!["--standin-silent-tls".to_string()],
        ..Spec::default()
    });
    let r = check(k.pid(), &["--probe-timeout", "1s"]);
    eprintln!(
        "timing: check against a silent serving port (--probe-timeout 1s) took {:.3}s wall",
        r.elapsed.as_secs_f64()
    );
    assert!(
        r.elapsed < Duration::from_secs(15),
        "check took {:?} against a silent port",
        r.elapsed
    );
    assert_eq!(r.kubelet()["live_probes"], true);

    for id in [
        "tls-min-version",
        "tls-strong-cipher-suites",
        "serving-cert-valid",
    ] {
        let c = r.control(id);
        assert_eq!(c["status"], "unknown", "{id}: {c:#}");
        // The probe's timeout error: "<target>: no answer within 1s".
        has(c, "reason", &["no answer within 1s"]);
    }
    let c = r.control("kubelet-api-rejects-anonymous");
    assert_eq!(c["status"], "unknown", "{c:#}");
    has(c, "reason", &["no answer"]);
    let c = r.control("anonymous-auth-disabled");
    assert_eq!(
        c["status"], "unknown",
        "the file says false, live cannot confirm: {c:#}"
    );
    // The read-only port's probe is independent of the silent serving port.
    expect_read_only_closed(&r);
}
