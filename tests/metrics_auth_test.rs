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

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::fake_api::{FakeApi, Mode};
use common::http::{dechunk, free_port, Response};
use common::process::Guard;
use common::Fixture;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde_json::{json, Value};

const AGENT: &str = env!("CARGO_BIN_EXE_kubelet-sentinel");
const NODE: &str = "node-1";

const PROMETHEUS: &str = "system:serviceaccount:monitoring:prometheus-k8s";
const PROMETHEUS_GROUPS: [&str; 3] = [
    "system:serviceaccounts",
    "system:serviceaccounts:monitoring",
    "system:authenticated",
];
const NOSY: &str = "system:serviceaccount:default:nosy";

// ------------------------------------------------------------------ a TLS client

/// Accepts any certificate but records the one presented, and still checks the
/// handshake's signatures against it (the server must hold that certificate's key).
#[derive(Debug)]
struct Recorder {
    seen: Mutex<Option<Vec<u8>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.seen.lock().unwrap() = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// `GET path` over a fresh TLS connection (bearer `token` when given): the response and
/// the DER of the certificate the server presented.
fn tls_get(
    addr: SocketAddr,
    path: &str,
    token: Option<&str>,
) -> std::io::Result<(Response, Vec<u8>)> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        seen: Mutex::new(None),
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::clone(&recorder) as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(std::io::Error::other)?;
    let conn =
        rustls::ClientConnection::new(Arc::new(config), name).map_err(std::io::Error::other)?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    sock.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\n\r\n"
    )?;
    tls.flush()?;
    let mut raw = Vec::new();
    match tls.read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without close_notify, after a complete response.
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    let cert = recorder
        .seen
        .lock()
        .unwrap()
        .clone()
        .ok_or_else(|| std::io::Error::other("no certificate seen"))?;
    Ok((parse_response(&raw)?, cert))
}

fn parse_response(raw: &[u8]) -> std::io::Result<Response> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"))
    {
        body = dechunk(&body)?;
    }
    Ok(Response {
        status,
        headers,
        body: String::from_utf8(body).map_err(std::io::Error::other)?,
    })
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
        std::fs::read_to_string(self.dir.path().join("stderr")).unwrap_or_default()
    }

    fn get(&self, path: &str, token: Option<&str>) -> Response {
        match tls_get(self.addr, path, token) {
            Ok((r, _)) => r,
            Err(e) => panic!("GET {path}: {e}\nagent's stderr:\n{}", self.stderr()),
        }
    }
}

/// The agent's command line (no inherited settings), with a kubeconfig for `api`.
fn command(dir: &Path, api: &FakeApi) -> Command {
    let kubeconfig = dir.join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let mut cmd = Command::new(AGENT);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("KUBELET_SENTINEL_") || k == "NODE_NAME" || k == "KUBERNETES_SERVICE_HOST"
        {
            cmd.env_remove(&k);
        }
    }
    cmd.arg("--node-name")
        .arg(NODE)
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("--log-level")
        .arg("kubelet_sentinel=debug");
    cmd
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
    let child = command(dir.path(), api)
        .arg("serve")
        .arg("--host-root")
        .arg(fx.root())
        .arg("--listen-address")
        .arg(addr.to_string())
        .arg("--interval")
        .arg("1s")
        .arg("--state-dir")
        .arg(dir.path().join("state"))
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
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(tls_get(addr, "/readyz", None), Ok((r, _)) if r.status == 200) {
        if let Some(status) = agent.child.wait_timeout(Duration::ZERO) {
            panic!("the agent exited ({status}):\n{}", agent.stderr());
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not become ready:\n{}",
            agent.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
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
    let basic = tls_get_with_header(agent.addr, "Authorization: Basic dXNlcjpwdw==");
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

/// A TLS GET /metrics with one raw extra header line.
fn tls_get_with_header(addr: SocketAddr, header: &str) -> Response {
    // tls_get only adds bearer tokens; build the line by hand through the same client.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let recorder = Arc::new(Recorder {
        seen: Mutex::new(None),
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(recorder as Arc<dyn ServerCertVerifier>)
        .with_no_client_auth();
    let conn =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").unwrap())
            .unwrap();
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut tls = rustls::StreamOwned::new(conn, sock);
    write!(
        tls,
        "GET /metrics HTTP/1.1\r\nHost: {addr}\r\n{header}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = tls.read_to_end(&mut raw);
    parse_response(&raw).unwrap()
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
    let mut child = Guard(
        command(dir.path(), api)
            .arg("serve")
            .arg("--host-root")
            .arg(fx.root())
            .arg("--listen-address")
            .arg(format!("127.0.0.1:{}", free_port()))
            .arg("--state-dir")
            .arg(dir.path().join("state"))
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
        command(dir.path(), &api)
            .arg("serve")
            .arg("--host-root")
            .arg(fx.root())
            .arg("--listen-address")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--metrics-tls-self-signed")
            .arg("--metrics-auth")
            .arg("kubernetes")
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let log = || std::fs::read_to_string(dir.path().join("stderr")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(20);
    let der = loop {
        if let Ok((r, der)) = tls_get(addr, "/readyz", None) {
            if r.status == 200 {
                break der;
            }
        }
        assert!(
            child.wait_timeout(Duration::ZERO).is_none(),
            "exited:\n{}",
            log()
        );
        assert!(Instant::now() < deadline, "not ready:\n{}", log());
        std::thread::sleep(Duration::from_millis(50));
    };
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
        .map(|n| n.to_string())
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
