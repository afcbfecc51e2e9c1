//! The agent binary for the tests (and benches) that run it: its command without the
//! test environment's settings, and the wait for a `serve` to be ready.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::http::get;
use super::process::Guard;

/// The built agent.
pub const AGENT: &str = env!("CARGO_BIN_EXE_kubelet-sentinel");

/// The agent's command with no `KUBELET_SENTINEL_*`, `NODE_NAME` or
/// `KUBERNETES_SERVICE_HOST` inherited from the test's environment (they would change its
/// flags or its API access).
pub fn agent_command() -> Command {
    let mut cmd = Command::new(AGENT);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("KUBELET_SENTINEL_") || k == "NODE_NAME" || k == "KUBERNETES_SERVICE_HOST"
        {
            cmd.env_remove(&k);
        }
    }
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
