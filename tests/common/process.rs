//! A child process killed (and reaped) on every path out of a test, panics included.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// A child process killed (and reaped) on drop. Derefs to the [`Child`].
pub struct Guard(pub Child);

impl Guard {
    /// Wait for the process to exit, at most `timeout` (polling every 10 ms): `None` if
    /// it still runs.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Deref for Guard {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for Guard {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Wait for `child` to write the JSON file `path` (a stand-in kubelet's ready file),
/// polling every 20 ms: its content, or `Err(status)` when the child exits first; panics
/// naming `log()` when neither happens within `timeout`.
pub fn wait_ready_file(
    child: &mut Child,
    path: &Path,
    timeout: Duration,
    log: impl Fn() -> String,
) -> Result<serde_json::Value, ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path) {
            return Ok(serde_json::from_str(&text).expect("ready file is JSON"));
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(status);
        }
        assert!(
            Instant::now() < deadline,
            "not ready within {timeout:?}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
