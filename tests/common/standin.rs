//! The stand-in kubelet (`support/standin-kubelet/`, built with `--features standin`) as
//! a child of a test: started with an empty environment in a temporary directory that
//! holds its `config.yaml`, `stderr.log` and the ready file it writes once it listens.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::process::wait_ready_file;

/// The built stand-in.
pub const STANDIN: &str = env!("CARGO_BIN_EXE_kubelet");

/// The head of every KubeletConfiguration file.
pub const HEAD: &str = "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n";

/// A KubeletConfiguration: [`HEAD`], serving `port` and `healthz` port on loopback, then
/// `body`.
pub fn config_text(port: u16, healthz: u16, body: &str) -> String {
    format!("{HEAD}address: 127.0.0.1\nport: {port}\nhealthzBindAddress: 127.0.0.1\nhealthzPort: {healthz}\n{body}")
}

/// Run `f` (a spawn), retrying while a freshly copied binary is still open for writing
/// in a child another test thread forked during the copy (`ETXTBSY`, bounded by
/// `timeout`).
pub fn retry_busy<T>(timeout: Duration, mut f: impl FnMut() -> std::io::Result<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.expect("spawn"),
        }
    }
}

/// A running stand-in; killed (and reaped) on drop.
pub struct Standin {
    pub child: Option<Child>,
    pub dir: tempfile::TempDir,
    /// The ready file: the bound ports.
    pub ready: Value,
}

impl Standin {
    /// Start `exe` with `argv` and `--standin-ready-file` in `dir` (stderr to
    /// `stderr.log` there), then wait for the ready file (bounded by `timeout`).
    /// `Err(stderr)` when it exits before it is ready.
    pub fn spawn(
        dir: tempfile::TempDir,
        exe: &Path,
        argv: &[String],
        timeout: Duration,
    ) -> Result<Standin, String> {
        let ready_file = dir.path().join("ready.json");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).expect("stderr log");
        let child = retry_busy(timeout, || {
            Command::new(exe)
                .args(argv)
                .arg("--standin-ready-file")
                .arg(&ready_file)
                .env_clear()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(stderr.try_clone()?)
                .spawn()
        });
        let mut s = Standin {
            child: Some(child),
            dir,
            ready: Value::Null,
        };
        let log = || std::fs::read_to_string(s.dir.path().join("stderr.log")).unwrap_or_default();
        let child = s.child.as_mut().expect("spawned");
        match wait_ready_file(child, &ready_file, timeout, log) {
            Ok(ready) => {
                s.ready = ready;
                Ok(s)
            }
            Err(status) => Err(format!("stand-in exited early ({status}): {}", s.stderr())),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running stand-in").id()
    }

    /// A port from the ready file (`port`, `healthz_port`, ...).
    pub fn port(&self, key: &str) -> u16 {
        self.ready[key]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("ready file has no {key}: {}", self.ready))
    }

    /// Its configuration file, `config.yaml` in its directory.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("config.yaml")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// SIGKILL, as a crashing kubelet, and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        self.kill();
    }
}
