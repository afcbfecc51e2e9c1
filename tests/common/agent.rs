//! The agent binary for the tests (and benches) that run it: its command without the
//! test environment's settings, and the wait for a `serve` to be ready.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::http::get;
use super::process::Guard;

/// The built agent.
pub const AGENT: &str = env!("CARGO_BIN_EXE_kubelet-sentinel");

/// The agent's command with no `KUBELET_SENTINEL_*`, `NODE_NAME` or
/// `KUBERNETES_SERVICE_HOST` inherited from the test's environment (they would change its
/// flags or its API access). A `serve` gets its health listener on a free loopback port
/// (`KUBELET_SENTINEL_HEALTH_LISTEN_ADDRESS=127.0.0.1:0`): agents of tests running at once
/// would all want the default 127.0.0.1:10359.
pub fn agent_command() -> Command {
    let mut cmd = Command::new(AGENT);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("KUBELET_SENTINEL_") || k == "NODE_NAME" || k == "KUBERNETES_SERVICE_HOST"
        {
            cmd.env_remove(&k);
        }
    }
    cmd.env("KUBELET_SENTINEL_HEALTH_LISTEN_ADDRESS", "127.0.0.1:0");
    cmd
}

/// [`agent_command`] for node `node`, with the Kubernetes API of `kubeconfig` (a fake
/// API's) and debug logs. Given as the flags' environment twins: the command's name and
/// its flags come after (a flag goes after its command's name; args win over env).
pub fn kubeconfig_command(node: &str, kubeconfig: &Path) -> Command {
    let mut cmd = agent_command();
    cmd.env("NODE_NAME", node)
        .env("KUBELET_SENTINEL_KUBECONFIG", kubeconfig)
        .env("KUBELET_SENTINEL_LOG_LEVEL", "kubelet_sentinel=debug");
    cmd
}

/// Add `serve` on the host tree `host_root`, listening on `addr`, its state in `state`.
pub fn serve_args<'c>(
    cmd: &'c mut Command,
    host_root: &Path,
    addr: SocketAddr,
    state: &Path,
) -> &'c mut Command {
    cmd.arg("serve")
        .arg("--host-root")
        .arg(host_root)
        .arg("--listen-address")
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(state)
}

/// Whether a plain-HTTP `GET /readyz` on `addr` answers 200.
pub fn readyz_ok(addr: SocketAddr) -> bool {
    matches!(get(addr, "/readyz", None), Ok(r) if r.status == 200)
}

/// Poll `ready` every 50 ms until it gives a value (returned) or `child` exits
/// (`Err(status)`); panics naming `log()` when neither happens within `timeout`.
pub fn wait_ready<T>(
    child: &mut Guard,
    timeout: Duration,
    mut ready: impl FnMut() -> Option<T>,
    log: impl Fn() -> String,
) -> Result<T, ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = ready() {
            return Ok(value);
        }
        if let Some(status) = child.wait_timeout(Duration::ZERO) {
            return Err(status);
        }
        assert!(
            Instant::now() < deadline,
            "the agent did not become ready within {timeout:?}:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wait until the `serve` in `child` answers 200 on a plain-HTTP `GET /readyz` at `addr`;
/// panics (naming `log()`) when it exits first or is not ready within `timeout`.
pub fn wait_http_ready(
    child: &mut Guard,
    addr: SocketAddr,
    timeout: Duration,
    log: impl Fn() -> String,
) {
    if let Err(status) = wait_ready(child, timeout, || readyz_ok(addr).then_some(()), &log) {
        panic!("the agent exited ({status}):\n{}", log());
    }
}

/// Run `cmd` (a `check --format json`; its stdout and stderr go to files in a temporary
/// directory), bounded by `timeout`: the JSON report and the wall time. Panics when it runs
/// longer, does not print JSON, or exits other than 0 (3 when the report has no usable
/// kubelet: `--require-kubelet`).
pub fn run_report(cmd: &mut Command, timeout: Duration) -> (Value, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("stdout.json");
    let err = dir.path().join("stderr.log");
    let start = Instant::now();
    let child = cmd
        .stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {AGENT}: {e}"));
    let mut guard = Guard(child);
    let status = guard.wait_timeout(timeout);
    let elapsed = start.elapsed();
    let stderr = std::fs::read_to_string(&err).unwrap_or_default();
    let status = status.unwrap_or_else(|| panic!("check ran longer than {timeout:?}: {stderr}"));
    let text = std::fs::read_to_string(&out).expect("read the report");
    let json: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("report is not JSON ({e}): {text}\n{stderr}"));
    // 0, or 3 exactly when the report says there is no usable kubelet (docs/check.md).
    let no_kubelet = !json["kubelet"]["reason"].is_null();
    let expected = if no_kubelet { 3 } else { 0 };
    assert_eq!(
        status.code(),
        Some(expected),
        "check exited {status} (no usable kubelet: {no_kubelet}): {stderr}"
    );
    (json, elapsed)
}

/// The control `id` of a JSON report (panics when it has none).
pub fn control<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["controls"]
        .as_array()
        .expect("controls")
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no control {id} in the report"))
}
