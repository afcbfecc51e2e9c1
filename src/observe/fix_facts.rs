//! What `kubelet-sentinel fix` needs to know about the node beyond the snapshot: the
//! kernel settings `protectKernelDefaults` requires (the host's `/proc/sys`), the host's
//! name, and the current text of the files the fix would create. Every read goes through
//! the host root, capped, regular files only; a file's content never appears in an error.

use std::collections::BTreeMap;

use crate::io::host::HostRoot;
use crate::model::file::HostError;
use crate::model::fix::{FlagSources, KERNEL_TUNABLES};
use crate::model::snapshot::Kubelet;

/// Cap on a `/proc/sys` value or the host name.
const SMALL_READ: u64 = 4096;

/// Each of [`KERNEL_TUNABLES`] as the host's `/proc/sys` has it: `(path under /proc/sys,
/// trimmed value or why it cannot be read)`.
pub fn sysctls(host: &HostRoot) -> Vec<(String, Result<String, String>)> {
    KERNEL_TUNABLES
        .iter()
        .map(|(path, _)| {
            let full = format!("/proc/sys/{path}");
            (path.to_string(), small_text(host, &full))
        })
        .collect()
}

/// The host's name: `/proc/sys/kernel/hostname` (live), else `/etc/hostname`.
pub fn hostname(host: &HostRoot) -> Result<String, String> {
    small_text(host, "/proc/sys/kernel/hostname")
        .or_else(|_| small_text(host, "/etc/hostname"))
        .map(|h| h.lines().next().unwrap_or("").trim().to_string())
}

/// The current text of each path: `Ok(None)` when nothing is there, `Err` when something
/// is but cannot be read as text (too large, not a regular file, not UTF-8, denied).
pub fn existing_texts(
    host: &HostRoot,
    paths: &[String],
) -> BTreeMap<String, Result<Option<String>, String>> {
    paths
        .iter()
        .map(|p| {
            let got = match host.read_to_string(p) {
                Ok(t) => Ok(Some(t)),
                Err(HostError::NotFound { .. }) => Ok(None),
                Err(e) => Err(e.to_string()),
            };
            (p.clone(), got)
        })
        .collect()
}

/// Where the kubelet's flags come from. Stand-in until H2's `observe::flag_sources::read`
/// (branch i17-flagsrc) is merged — switching is this function's one line: it reads
/// nothing and says so, so every flag change is reported as not placeable.
pub fn flag_sources(host: &HostRoot, kubelet: &Kubelet) -> FlagSources {
    crate::observe::flag_sources::read(host, kubelet)
}

fn small_text(host: &HostRoot, path: &str) -> Result<String, String> {
    let bytes = host
        .read_capped(path, SMALL_READ)
        .map_err(|e| e.to_string())?;
    String::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| format!("{path}: not valid UTF-8"))
}
