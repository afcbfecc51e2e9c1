//! Running versus on-disk configuration end to end (`--read-running-config`): the agent
//! binary against the stand-in kubelet (`/configz` behind a bearer-token check,
//! `--standin-token` / `--standin-refuse-token`) and the fake API server's node proxy
//! (`/api/v1/nodes/<node>/proxy/configz`, `common::fake_api`).
//!
//! 1. the running configuration agrees with the files → `pass` via `nodes/configz`, the
//!    `configz` observation step succeeds;
//! 2. the config file is edited but the kubelet not restarted → `fail` naming the key,
//!    both values and the source;
//! 3. the kubelet refuses the agent's token (403) without `--running-config-via-proxy` →
//!    `unknown` naming `nodes/configz`, and the API proxy is never asked;
//! 4. the same with `--running-config-via-proxy` → the verdict comes from `nodes/proxy`
//!    (pass, then fail when it differs); an answer without `kubeletconfig` → `unknown`;
//! 5. the proxy answers 500 or hangs → `unknown`, in bounded time, and the node-local
//!    controls are decided as usual;
//! 6. reading is off (the default) → `not_applicable` naming the flag, no `configz` step;
//!    no API access → `unknown` (no token to send);
//! 7. `serve`: `kubelet_sentinel_probe_success{probe="configz"} 1`, and an edit of the
//!    file under a running agent turns the control to `fail`.

#![cfg(feature = "standin")]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::agent::{control, run_report};
use common::fake_api::{self, FakeApi, Mode};
use common::http::{free_port, get};
use common::process::Guard;
use common::standin::{config_text, Standin, STANDIN};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);
const CHECK_WAIT: Duration = Duration::from_secs(60);
const NODE: &str = "node-1";
const CONTROL: &str = "running-config-matches-disk";

/// Anonymous off, webhook authn and authz, no read-only port, a 4h idle timeout written
/// the short way (the stand-in's `/configz` says `4h0m0s`).
const HARDENED: &str = "authentication:\n  anonymous:\n    enabled: false\n  webhook:\n    enabled: true\nauthorization:\n  mode: Webhook\nreadOnlyPort: 0\nstreamingConnectionIdleTimeout: 4h\n";

fn launch(body: &str, args: &[&str]) -> Result<Standin, String> {
    let (port, healthz) = {
        let a = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        let b = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        (
            a.local_addr().expect("addr").port(),
            b.local_addr().expect("addr").port(),
        )
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_text(port, healthz, body)).expect("write the config");
    let mut argv = vec![format!("--config={}", config.display())];
    argv.extend(args.iter().map(std::string::ToString::to_string));
    Standin::spawn(dir, Path::new(STANDIN), &argv, WAIT)
}

fn standin(args: &[&str]) -> Standin {
    let mut last = String::new();
    for _ in 0..3 {
        match launch(HARDENED, args) {
            Ok(s) => return s,
            Err(e) if e.contains("failed to listen") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("no free ports: {last}");
}

fn agent_command(state: &Path) -> Command {
    let mut cmd = common::agent::agent_command();
    // Env twins: the command's name and its own flags come after.
    cmd.env("KUBELET_SENTINEL_STATE_DIR", state.join("state"))
        .env("NO_COLOR", "1")
        .env("NODE_NAME", NODE)
        .env("KUBELET_SENTINEL_LOG_LEVEL", "warn")
        .stdin(Stdio::null());
    cmd
}

/// The fake API with a kubeconfig for it (its token is [`fake_api::TOKEN`]).
struct Api {
    api: FakeApi,
    dir: tempfile::TempDir,
}

impl Api {
    fn start() -> Api {
        let api = FakeApi::start();
        let dir = tempfile::tempdir().expect("tempdir");
        api.write_kubeconfig(&dir.path().join("kubeconfig"));
        Api { api, dir }
    }

    fn kubeconfig(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }

    fn proxy_requests(&self) -> usize {
        self.api
            .requests()
            .iter()
            .filter(|r| r.contains("/proxy/configz"))
            .count()
    }
}

struct Report {
    json: Value,
    elapsed: Duration,
}

impl Report {
    fn control(&self, id: &str) -> &Value {
        control(&self.json, id)
    }

    fn probe(&self, name: &str) -> Option<&Value> {
        self.json["probes"]
            .as_array()
            .expect("probes")
            .iter()
            .find(|p| p["name"] == name)
    }

    fn expect(&self, status: &str, source: &str) -> &Value {
        let c = self.control(CONTROL);
        assert_eq!(
            (c["status"].as_str(), c["source"].as_str()),
            (Some(status), Some(source)),
            "{c:#}"
        );
        c
    }
}

fn check(pid: u32, args: &[&str]) -> Report {
    let state = tempfile::tempdir().expect("tempdir");
    let (json, elapsed) = run_report(
        agent_command(state.path())
            .args(["check", "--kubelet-pid", &pid.to_string()])
            .args([
                "--format",
                "json",
                "--fail-on",
                "never",
                "--live-probes",
                "auto",
            ])
            .args(args),
        CHECK_WAIT,
    );
    Report { json, elapsed }
}

fn has(c: &Value, field: &str, needle: &str) {
    let text = c[field].as_str().unwrap_or_default();
    assert!(text.contains(needle), "{field} lacks {needle:?}: {c:#}");
}

/// The token the test itself reads the stand-in's `/configz` with.
const READER: &str = "test-reader-token";

/// A stand-in that refuses the agent's token ([`fake_api::TOKEN`], 403) and accepts
/// [`READER`].
fn refusing_standin() -> Standin {
    standin(&[
        "--standin-refuse-token",
        fake_api::TOKEN,
        "--standin-token",
        READER,
    ])
}

/// `/configz` as the stand-in serves it (its `kubeletconfig`), read with [`READER`].
fn served_configz(s: &Standin) -> Value {
    let port = u16::try_from(s.ready["port"].as_u64().expect("serving port")).unwrap();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let t = kubelet_sentinel::observe::live::socket::Timeouts {
        connect: Duration::from_secs(5),
        overall: Duration::from_secs(10),
    };
    let answer = rt
        .block_on(kubelet_sentinel::observe::live::http::https_get(
            addr,
            None,
            "/configz",
            Some(READER),
            1 << 20,
            &t,
        ))
        .expect("GET /configz");
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    kubelet_sentinel::model::kubelet_config::configz::parse_configz(&answer.body).expect("configz")
}

#[test]
fn agreement_passes_via_nodes_configz() {
    let api = Api::start();
    let s = standin(&["--standin-token", fake_api::TOKEN]);
    let r = check(
        s.pid(),
        &["--kubeconfig", &api.kubeconfig(), "--read-running-config"],
    );
    let c = r.expect("pass", "nodes/configz");
    has(c, "observed", "all settings agree");
    has(c, "reason", "via nodes/configz");
    let p = r.probe("configz").expect("a configz step");
    assert_eq!(p["success"], true, "{p:#}");
    assert_eq!(api.proxy_requests(), 0);
    // The node-local controls are decided as usual.
    assert_eq!(r.control("anonymous-auth-disabled")["status"], "pass");
}

#[test]
fn a_file_edited_without_a_restart_fails_naming_the_key() {
    let api = Api::start();
    let s = standin(&["--standin-token", fake_api::TOKEN]);
    // The kubelet keeps running with 4h; the file now says 5m.
    let text = std::fs::read_to_string(s.config()).expect("config");
    std::fs::write(
        s.config(),
        text.replace(
            "streamingConnectionIdleTimeout: 4h",
            "streamingConnectionIdleTimeout: 5m",
        ),
    )
    .expect("edit");
    let r = check(
        s.pid(),
        &["--kubeconfig", &api.kubeconfig(), "--read-running-config"],
    );
    let c = r.expect("fail", "nodes/configz");
    has(
        c,
        "observed",
        "streamingConnectionIdleTimeout: running=4h0m0s disk=5m (config-file)",
    );
    has(c, "reason", "1 of ");
}

#[test]
fn a_refused_token_without_the_proxy_route_is_unknown_naming_nodes_configz() {
    let api = Api::start();
    let s = refusing_standin();
    api.api
        .set_configz(NODE, json!({ "kubeletconfig": served_configz(&s) }));
    let r = check(
        s.pid(),
        &["--kubeconfig", &api.kubeconfig(), "--read-running-config"],
    );
    let c = r.expect("unknown", "nodes/configz");
    has(c, "reason", "403 Forbidden");
    has(c, "reason", "`get` on `nodes/configz`");
    has(c, "reason", "--running-config-via-proxy");
    assert_eq!(r.probe("configz").expect("step")["success"], false);
    assert_eq!(
        api.proxy_requests(),
        0,
        "nodes/proxy used without permission"
    );
}

#[test]
fn with_the_proxy_route_the_verdict_comes_from_nodes_proxy() {
    let api = Api::start();
    let s = refusing_standin();
    let args = [
        "--kubeconfig",
        &api.kubeconfig(),
        "--read-running-config",
        "--running-config-via-proxy",
    ];
    // First the proxy tells the truth: pass via nodes/proxy.
    let mut running = served_configz(&s);
    api.api
        .set_configz(NODE, json!({ "kubeletconfig": running.clone() }));
    let r = check(s.pid(), &args);
    r.expect("pass", "nodes/proxy");
    // Then it says the kubelet runs with the read-only port open.
    running["readOnlyPort"] = json!(10255);
    api.api
        .set_configz(NODE, json!({ "kubeletconfig": running }));
    let r = check(s.pid(), &args);
    let c = r.expect("fail", "nodes/proxy");
    has(
        c,
        "observed",
        "readOnlyPort: running=10255 disk=0 (config-file)",
    );
    // An answer that is not `{"kubeletconfig": {...}}` is unknown, never a verdict.
    api.api
        .set_configz(NODE, json!({"apiVersion": "v1", "items": []}));
    let r = check(s.pid(), &args);
    let c = r.expect("unknown", "nodes/proxy");
    has(c, "reason", "no kubeletconfig object");
    assert!(api.proxy_requests() >= 1);
}

#[test]
fn proxy_errors_and_hangs_are_unknown_in_bounded_time() {
    let api = Api::start();
    let s = standin(&["--standin-refuse-token", fake_api::TOKEN]);
    let args = [
        "--kubeconfig",
        &api.kubeconfig(),
        "--read-running-config",
        "--running-config-via-proxy",
    ];
    api.api
        .set_path_mode(&format!("/api/v1/nodes/{NODE}/proxy"), Mode::Status(500));
    let r = check(s.pid(), &args);
    let c = r.expect("unknown", "nodes/proxy");
    has(c, "reason", "nodes/configz: ");
    has(c, "reason", "nodes/proxy: ");
    has(c, "reason", "500");
    assert_eq!(r.control("anonymous-auth-disabled")["status"], "pass");

    api.api
        .set_path_mode(&format!("/api/v1/nodes/{NODE}/proxy"), Mode::Hang);
    let r = check(s.pid(), &args);
    let c = r.expect("unknown", "nodes/proxy");
    has(c, "reason", "no answer within");
    let p = r.probe("configz").expect("step");
    assert!(
        p["duration_seconds"].as_f64().unwrap_or(99.0) < 10.0,
        "the hang was not bounded: {p:#}"
    );
    assert_eq!(r.control("anonymous-auth-disabled")["status"], "pass");
    assert_eq!(r.control("read-only-port-disabled")["status"], "pass");
    eprintln!("check with a hanging proxy took {:?}", r.elapsed);
}

#[test]
fn off_by_default_and_no_token_without_api_access() {
    let s = standin(&["--standin-token", fake_api::TOKEN]);
    let r = check(s.pid(), &["--api-access", "off"]);
    let c = r.expect("not_applicable", "");
    has(c, "reason", "--read-running-config");
    assert!(r.probe("configz").is_none());

    let r = check(s.pid(), &["--api-access", "off", "--read-running-config"]);
    let c = r.expect("unknown", "nodes/configz");
    has(c, "reason", "no API access");
}

#[test]
fn serve_exports_the_step_and_catches_an_edit_under_a_running_agent() {
    let api = Api::start();
    let s = standin(&["--standin-token", fake_api::TOKEN]);
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let log = dir.path().join("serve.log");
    let file = std::fs::File::create(&log).expect("log");
    let child = agent_command(dir.path())
        .args(["serve", "--listen-address", &addr.to_string()])
        .args(["--kubelet-pid", &s.pid().to_string()])
        .args(["--kubeconfig", &api.kubeconfig(), "--read-running-config"])
        .args(["--live-probes", "auto", "--interval", "1h"])
        .stdout(file.try_clone().expect("log"))
        .stderr(file)
        .spawn()
        .expect("spawn serve");
    let _guard = Guard(child);
    let wait_for = |what: &str, needle: &str| {
        let deadline = Instant::now() + WAIT;
        loop {
            let m = get(addr, "/metrics", None)
                .map(|r| r.body)
                .unwrap_or_default();
            if m.contains(needle) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {needle} not seen; log: {}\n{m}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(
        "configz step",
        &format!("kubelet_sentinel_probe_success{{node=\"{NODE}\",probe=\"configz\"}} 1"),
    );
    wait_for(
        "pass",
        &format!(
            "control=\"{CONTROL}\",family=\"hardening\",severity=\"high\",status=\"pass\"}} 1"
        ),
    );
    let text = std::fs::read_to_string(s.config()).expect("config");
    std::fs::write(
        s.config(),
        text.replace(
            "readOnlyPort: 0",
            "readOnlyPort: 0\nprotectKernelDefaults: true",
        ),
    )
    .expect("edit");
    // The change watch re-evaluates at once; the running config (cached for this
    // kubelet process) still says false.
    wait_for(
        "fail after the edit",
        &format!(
            "control=\"{CONTROL}\",family=\"hardening\",severity=\"high\",status=\"fail\"}} 1"
        ),
    );
}
