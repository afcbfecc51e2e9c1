//! Protected metrics (issue 6): `serve --metrics-auth kubernetes` with HTTPS, against the
//! fake Kubernetes API (`common::fake_api`), through a real TLS client.
//!
//! - `/metrics` without a token, with a token the API does not know, with a token whose
//!   user is not allowed, and allowed: 401, 401, 403, 200; `/healthz` and `/readyz` need
//!   no token;
//! - the reviews sent: the TokenReview carries the token, the SubjectAccessReview the
//!   user, uid and groups with `nonResourceAttributes {path: /metrics, verb: get}`;
//! - decisions are cached (no second TokenReview within the TTL), errors are not;
//! - reviews that fail (500) or hang: never a 200 (503), and `/healthz` still answers;
//! - the certificate files are reloaded when they change (a new handshake presents the new
//!   certificate), garbage keeps the old one serving; plain HTTP to the port fails;
//! - `--metrics-tls-self-signed`: a certificate naming the node, made at start;
//! - start errors: a bad pair, `--metrics-auth kubernetes` without API access.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::agent::{kubeconfig_command, serve_args, wait_ready};
use common::fake_api::{FakeApi, Mode};
use common::http::{free_port, Response};
use common::process::Guard;
use common::Fixture;
use rustls::pki_types::ServerName;
use serde_json::{json, Value};

const NODE: &str = "node-1";

const PROMETHEUS: &str = "system:serviceaccount:monitoring:prometheus-k8s";
const PROMETHEUS_GROUPS: [&str; 3] = [
    "system:serviceaccounts",
    "system:serviceaccounts:monitoring",
    "system:authenticated",
];
const NOSY: &str = "system:serviceaccount:default:nosy";

// ------------------------------------------------------------------ a TLS client

/// `GET path` over a fresh TLS connection (bearer `token` when given): the response and
/// the DER of the certificate the server presented.
fn tls_get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(Response, Vec<u8>)> {
    let auth: Vec<String> = token
        .map(|t| format!("Authorization: Bearer {t}"))
        .into_iter()
        .collect();
    tls_get_with_headers(addr, path, &auth)
}

/// `GET path` over a fresh TLS connection with the extra `headers` lines: the response and
/// the DER of the certificate the server presented.
fn tls_get_with_headers(
    addr: SocketAddr,
    path: &str,
    headers: &[String],
) -> std::io::Result<(Response, Vec<u8>)> {
    let (config, verifier) = common::tls::client_config();
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let conn = rustls::ClientConnection::new(config, name).map_err(std::io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let response = common::http::request(&mut tls, &addr.to_string(), path, headers)?;
    let cert = verifier
        .seen()
        .ok_or_else(|| std::io::Error::other("no certificate seen"))?;
    Ok((response, cert))
}

// ------------------------------------------------------------------ the agent

/// A new certificate and key (PEM) for `localhost`.
fn new_pair() -> (String, String, Vec<u8>) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    (
        c.cert.pem(),
        c.signing_key.serialize_pem(),
        c.cert.der().to_vec(),
    )
}

struct Agent {
    addr: SocketAddr,
    child: Guard,
    dir: tempfile::TempDir,
    _fx: Fixture,
}

impl Agent {
    fn cert(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    fn key(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    fn stderr(&self) -> String {
        stderr_of(self.dir.path())()
    }

    fn get(&self, path: &str, token: Option<&str>) -> Response {
        match tls_get(self.addr, path, token) {
            Ok((r, _)) => r,
            Err(e) => panic!("GET {path}: {e}\nagent's stderr:\n{}", self.stderr()),
        }
    }
}

/// Reads the agent's stderr, written to `stderr` in `dir`.
fn stderr_of(dir: &Path) -> impl Fn() -> String {
    let path = dir.join("stderr");
    move || std::fs::read_to_string(&path).unwrap_or_default()
}

/// The certificate presented when a TLS `GET /readyz` on `addr` answers 200.
fn tls_ready(addr: SocketAddr) -> Option<Vec<u8>> {
    match tls_get(addr, "/readyz", None) {
        Ok((r, der)) if r.status == 200 => Some(der),
        _ => None,
    }
}

/// The agent's command line (no inherited settings), with a kubeconfig for `api`.
fn command(dir: &Path, api: &FakeApi) -> Command {
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    kubeconfig_command(NODE, &kubeconfig)
}

/// `serve` over HTTPS (a certificate in files) on the kubeadm-hardened fixture, with
/// `extra` flags, ready.
fn serve(api: &FakeApi, extra: &[&str]) -> (Agent, Vec<u8>) {
    let fx = Fixture::load("kubeadm-hardened");
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, der) = new_pair();
    std::fs::write(dir.path().join("tls.crt"), cert).unwrap();
    std::fs::write(dir.path().join("tls.key"), key).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let child = serve_args(
        &mut command(dir.path(), api),
        &fx.root(),
        addr,
        &dir.path().join("state"),
    )
    .args(["--interval", "1s"])
    .arg("--metrics-tls-cert")
    .arg(dir.path().join("tls.crt"))
    .arg("--metrics-tls-key")
    .arg(dir.path().join("tls.key"))
    .args(extra)
    .stdout(Stdio::null())
    .stderr(stderr)
    .spawn()
    .expect("spawn the agent");
    let mut agent = Agent {
        addr,
        child: Guard(child),
        dir,
        _fx: fx,
    };
    let log = stderr_of(agent.dir.path());
    if let Err(status) = wait_ready(
        &mut agent.child,
        Duration::from_secs(20),
        || tls_ready(addr),
        &log,
    ) {
        panic!("the agent exited ({status}):\n{}", log());
    }
    (agent, der)
}

fn api_with_users() -> FakeApi {
    let api = FakeApi::start();
    api.add_token("prometheus-token", PROMETHEUS, &PROMETHEUS_GROUPS);
    api.add_token("prometheus-token-2", PROMETHEUS, &PROMETHEUS_GROUPS);
    api.add_token("prometheus-token-3", PROMETHEUS, &PROMETHEUS_GROUPS);
    api.add_token(
        "nosy-token",
        NOSY,
        &["system:serviceaccounts", "system:authenticated"],
    );
    // What a ClusterRole with nonResourceURLs ["/metrics"], verbs ["get"] bound to
    // Prometheus's service account allows.
    api.allow(json!({"user": PROMETHEUS,
        "nonResourceAttributes": {"path": "/metrics", "verb": "get"}}));
    api
}

fn token_reviews_of(api: &FakeApi, token: &str) -> usize {
    api.token_reviews()
        .iter()
        .filter(|r| r["spec"]["token"] == json!(token))
        .count()
}

// ------------------------------------------------------------------ tests

#[test]
fn metrics_need_a_token_the_api_authenticates_and_allows() {
    let api = api_with_users();
    let (agent, _) = serve(&api, &["--metrics-auth", "kubernetes"]);

    // The probes' endpoints need nothing.
    assert_eq!(agent.get("/healthz", None).status, 200);
    assert_eq!(agent.get("/readyz", None).status, 200);

    // No token, another scheme, an unknown token: 401 with a Bearer challenge.
    for (what, header_token) in [("no token", None), ("unknown token", Some("made-up-token"))] {
        let r = agent.get("/metrics", header_token);
        assert_eq!(r.status, 401, "{what}: {r:?}");
        assert!(
            r.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{what}: {r:?}"
        );
        assert!(!r.body.contains("kubelet_sentinel_"), "{what}: {r:?}");
    }
    // `Authorization: Basic ...` is not a bearer token: 401 without asking the API.
    let before = api.token_reviews().len();
    let (basic, _) = tls_get_with_headers(
        agent.addr,
        "/metrics",
        &["Authorization: Basic dXNlcjpwdw==".to_string()],
    )
    .expect("GET /metrics with basic auth");
    assert_eq!(basic.status, 401, "{basic:?}");
    assert_eq!(api.token_reviews().len(), before);
    assert_eq!(token_reviews_of(&api, "made-up-token"), 1);

    // Authenticated, not allowed: 403.
    let r = agent.get("/metrics", Some("nosy-token"));
    assert_eq!(r.status, 403, "{r:?}");
    assert!(!r.body.contains("kubelet_sentinel_"));

    // Allowed: the exposition.
    let r = agent.get("/metrics", Some("prometheus-token"));
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.body.contains("kubelet_sentinel_build_info"), "{}", r.body);
    assert!(r.body.contains("kubelet_sentinel_control_status"));

    // The reviews: the token in the TokenReview, the user in the SubjectAccessReview,
    // asking for get on the non-resource URL /metrics.
    assert_eq!(token_reviews_of(&api, "prometheus-token"), 1);
    let sar: Vec<Value> = api
        .reviews()
        .into_iter()
        .filter(|s| s["user"] == json!(PROMETHEUS))
        .collect();
    assert_eq!(sar.len(), 1, "{sar:?}");
    let spec = &sar[0];
    assert_eq!(
        spec["nonResourceAttributes"],
        json!({"path": "/metrics", "verb": "get"})
    );
    assert_eq!(spec["groups"], json!(PROMETHEUS_GROUPS));
    assert_eq!(spec["uid"], json!(format!("uid-{PROMETHEUS}")));
    assert!(spec.get("resourceAttributes").is_none_or(Value::is_null));
    assert!(api.reviews().iter().any(|s| s["user"] == json!(NOSY)
        && s["nonResourceAttributes"] == json!({"path": "/metrics", "verb": "get"})));

    // Within the TTL: decisions come from the cache, no new review of any kind.
    let (tr, sars) = (api.token_reviews().len(), api.reviews().len());
    for _ in 0..3 {
        assert_eq!(agent.get("/metrics", Some("prometheus-token")).status, 200);
        assert_eq!(agent.get("/metrics", Some("nosy-token")).status, 403);
        assert_eq!(agent.get("/metrics", Some("made-up-token")).status, 401);
    }
    assert_eq!(api.token_reviews().len(), tr);
    assert_eq!(api.reviews().len(), sars);

    // The raw tokens never reach the agent's logs.
    let log = agent.stderr();
    assert!(!log.contains("prometheus-token") && !log.contains("nosy-token"));
    assert!(!log.contains("made-up-token"));
}

#[test]
fn review_failures_are_never_a_200_and_are_not_cached() {
    let api = api_with_users();
    let (agent, _) = serve(
        &api,
        &[
            "--metrics-auth",
            "kubernetes",
            "--metrics-auth-timeout",
            "1s",
        ],
    );

    // TokenReviews fail with 500: 503 (with Retry-After), health unaffected.
    api.set_path_mode("/apis/authentication.k8s.io/", Mode::Status(500));
    let r = agent.get("/metrics", Some("prometheus-token"));
    assert_eq!(r.status, 503, "{r:?}");
    assert!(r.header("retry-after").is_some(), "{r:?}");
    assert!(!r.body.contains("kubelet_sentinel_"));
    assert_eq!(agent.get("/healthz", None).status, 200);
    // The API is back: the same token is reviewed again (the error was not cached).
    api.set_path_mode("/apis/authentication.k8s.io/", Mode::Normal);
    let r = agent.get("/metrics", Some("prometheus-token"));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(token_reviews_of(&api, "prometheus-token"), 1);

    // SubjectAccessReviews hang: 503 after the review timeout, not a hung scrape.
    api.set_path_mode("/apis/authorization.k8s.io/", Mode::Hang);
    let start = Instant::now();
    let r = agent.get("/metrics", Some("prometheus-token-2"));
    assert_eq!(r.status, 503, "{r:?}");
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
    // Meanwhile the probes' endpoints answer at once, and a cached token still works.
    assert_eq!(agent.get("/healthz", None).status, 200);
    assert_eq!(agent.get("/readyz", None).status, 200);
    assert_eq!(agent.get("/metrics", Some("prometheus-token")).status, 200);

    // SubjectAccessReviews fail with 500: 503 too.
    api.set_path_mode("/apis/authorization.k8s.io/", Mode::Status(500));
    assert_eq!(
        agent.get("/metrics", Some("prometheus-token-3")).status,
        503
    );

    api.set_path_mode("/apis/authorization.k8s.io/", Mode::Normal);
    assert_eq!(
        agent.get("/metrics", Some("prometheus-token-2")).status,
        200
    );
    assert_eq!(
        agent.get("/metrics", Some("prometheus-token-3")).status,
        200
    );
}

#[test]
fn the_certificate_is_reloaded_when_its_files_change() {
    let api = api_with_users();
    // No --metrics-auth: TLS works on its own.
    let (agent, first) = serve(&api, &[]);
    let presented = || match tls_get(agent.addr, "/healthz", None) {
        Ok((r, der)) if r.status == 200 => der,
        other => panic!("handshake: {other:?}\n{}", agent.stderr()),
    };
    assert_eq!(presented(), first);
    // Without authentication, /metrics is open (over TLS).
    assert_eq!(agent.get("/metrics", None).status, 200);

    // Plain HTTP to the TLS port: no HTTP answer.
    match common::http::get(agent.addr, "/healthz", None) {
        Ok(r) => panic!("plain HTTP answered: {r:?}"),
        Err(e) => eprintln!("plain HTTP refused as expected: {e}"),
    }

    // Rotation: a new pair replaces the files; a new handshake soon presents it.
    let (cert, key, second) = new_pair();
    std::fs::write(agent.cert(), cert).unwrap();
    std::fs::write(agent.key(), key).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let der = presented();
        if der == second {
            break;
        }
        assert_eq!(der, first, "neither the old nor the new certificate");
        assert!(
            Instant::now() < deadline,
            "the new certificate was not served within 10 s:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(200));
    }

    // Garbage replaces the files: logged, and the last good pair keeps serving (checked
    // across more than one reload interval).
    std::fs::write(agent.cert(), "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    std::fs::write(agent.key(), "garbage").unwrap();
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(presented(), second);
        std::thread::sleep(Duration::from_millis(250));
    }
    assert!(
        agent.stderr().contains("the previous pair keeps serving"),
        "the refused reload was not logged:\n{}",
        agent.stderr()
    );
}

/// Run the agent expecting it to refuse to start; returns its stderr.
fn start_error(api: &FakeApi, args: &[&str]) -> String {
    let fx = Fixture::load("kubeadm-hardened");
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let mut child = Guard(
        serve_args(
            &mut command(dir.path(), api),
            &fx.root(),
            addr,
            &dir.path().join("state"),
        )
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let status = child
        .wait_timeout(Duration::from_secs(20))
        .expect("the agent started instead of refusing");
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    err
}

#[test]
fn bad_settings_are_start_errors() {
    let api = api_with_users();
    let dir = tempfile::tempdir().unwrap();
    let (cert, _, _) = new_pair();
    let (_, other_key, _) = new_pair();
    std::fs::write(dir.path().join("c.pem"), cert).unwrap();
    std::fs::write(dir.path().join("k.pem"), other_key).unwrap();
    let c = dir.path().join("c.pem");
    let k = dir.path().join("k.pem");
    let (c, k) = (c.to_str().unwrap(), k.to_str().unwrap());

    let err = start_error(&api, &["--metrics-tls-cert", c, "--metrics-tls-key", k]);
    assert!(
        err.contains("metrics TLS") && err.contains("does not fit"),
        "{err}"
    );
    let err = start_error(&api, &["--metrics-tls-cert", c]);
    assert!(err.contains("--metrics-tls-key"), "{err}");
    let err = start_error(
        &api,
        &["--metrics-auth", "kubernetes", "--api-access", "off"],
    );
    assert!(
        err.contains("--metrics-auth=kubernetes needs the Kubernetes API"),
        "{err}"
    );
}

#[test]
fn a_self_signed_certificate_is_made_at_start() {
    let api = api_with_users();
    let fx = Fixture::load("kubeadm-hardened");
    let dir = tempfile::tempdir().unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let stderr = std::fs::File::create(dir.path().join("stderr")).unwrap();
    let mut child = Guard(
        serve_args(
            &mut command(dir.path(), &api),
            &fx.root(),
            addr,
            &dir.path().join("state"),
        )
        .arg("--metrics-tls-self-signed")
        .arg("--metrics-auth")
        .arg("kubernetes")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap(),
    );
    let log = stderr_of(dir.path());
    let der = wait_ready(
        &mut child,
        Duration::from_secs(20),
        || tls_ready(addr),
        &log,
    )
    .unwrap_or_else(|status| panic!("exited ({status}):\n{}", log()));
    // The certificate names the node (and localhost), and its key is the server's (the
    // client checked the handshake signature against it).
    let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("an X.509 certificate");
    let san = cert
        .subject_alternative_name()
        .expect("SAN extension")
        .expect("a SAN");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(std::string::ToString::to_string)
        .collect();
    assert!(
        names.iter().any(|n| n.contains(NODE)) && names.iter().any(|n| n.contains("localhost")),
        "{names:?}"
    );
    // Protected like the file-based one.
    assert_eq!(tls_get(addr, "/metrics", None).unwrap().0.status, 401);
    assert_eq!(
        tls_get(addr, "/metrics", Some("prometheus-token"))
            .unwrap()
            .0
            .status,
        200
    );
}
