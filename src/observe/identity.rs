//! Is this process really the node's kubelet? A process *named* `kubelet` proves nothing:
//! any container or user can start one, and its command line is then believed and (with
//! `--version-exec`) its binary run as root. A candidate is trusted only on evidence:
//!
//! - **executable**: the file `/proc/<pid>/exe` names (inside the host root) is a regular
//!   file owned by the *trusted owner* and not writable by group or others, and so is every
//!   directory above it up to the root (whoever can write one of them can swap the file).
//!   On a live host the file at that path must also be the very file the process runs
//!   (same device and inode as the `/proc/<pid>/exe` magic link): a container's process
//!   names a path in *its* filesystem, which on the host may be another file.
//! - **mount namespace**: `/proc/<pid>/ns/mnt` is the same namespace as `/proc/1/ns/mnt`
//!   (the host's init), not a container's — or, on a live host, a namespace of its own
//!   whose root directory is the host's (`/proc/<pid>/root`: a systemd unit with
//!   `PrivateTmp=`/`ProtectSystem=`). When the agent cannot read init's link (no
//!   ptrace read access to init: CAP_SYS_PTRACE missing) the comparison is not made and the
//!   evidence says so.
//! - Directories writable by group or others are refused unless sticky (`/tmp`): there,
//!   only an entry's owner can rename or remove it, and the entry is checked in turn.
//! - **parent chain**: following `PPid` (field 4 of `/proc/<pid>/stat`) leads to pid 1
//!   within [`MAX_PARENT_HOPS`] steps, without a loop.
//! - **sockets** (when the fd table is readable, i.e. a live host with ptrace read access):
//!   the process owns listening TCP sockets ([`super::net::owned_listeners`]). A candidate
//!   without any is not the kubelet when another candidate has some; a lone candidate
//!   without sockets yet (a kubelet still starting) is kept, and the evidence says so.
//!
//! The trusted owner is the owner of the host root directory itself: uid 0 on every real
//! host (`/` is root's), the checkout user for a host tree copied on disk (fixtures), where
//! every file belongs to that user too.

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use crate::io::host::HostRoot;

use crate::model::file::FileKind;

use super::net;
use super::process::{self, ProcInfo};

/// How many parents are followed before the chain is judged not to reach init.
pub const MAX_PARENT_HOPS: usize = 64;

/// What is known of the host, for judging every candidate of one scan.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// Owner of the host root directory.
    pub trusted_uid: Option<u32>,
    /// `/proc/1/ns/mnt` link text (`mnt:[4026531840]`).
    pub init_mnt_ns: Option<String>,
    /// Whether `<root>/proc` is a real procfs (magic links can be followed).
    pub live: bool,
}

impl HostFacts {
    /// Read them once per scan: the owner of the root's `/` and init's mount namespace
    /// (each `None` when unreadable). `live` is [`crate::observe::live::is_live_proc`].
    pub fn read(host: &HostRoot, live: bool) -> HostFacts {
        HostFacts {
            trusted_uid: host.metadata("/").ok().map(|m| m.uid),
            init_mnt_ns: host.read_link("/proc/1/ns/mnt").ok(),
            live,
        }
    }
}

/// The verdict on one candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The candidate's process id, as the host's `/proc` names it.
    pub pid: i32,
    /// The checks that failed, each a short reason (`executable /tmp/kubelet is owned by uid 1000`).
    pub failures: Vec<String>,
    /// The evidence that passed (`executable /usr/bin/kubelet owned by uid 0, not group/other-writable`).
    pub evidence: Vec<String>,
    /// Listening sockets owned: `None` when the fd table could not be read.
    pub listeners: Option<usize>,
}

impl Assessment {
    /// No check failed: the candidate may be the host's kubelet.
    pub fn credible(&self) -> bool {
        self.failures.is_empty()
    }

    /// `pid 4242 (executable ... owned by uid 1000; not in the host's mount namespace)`.
    pub fn describe_failures(&self) -> String {
        format!("pid {} ({})", self.pid, self.failures.join("; "))
    }
}

/// Judge one candidate.
pub fn assess(host: &HostRoot, facts: &HostFacts, info: &ProcInfo) -> Assessment {
    let mut a = Assessment {
        pid: info.pid,
        failures: Vec::new(),
        evidence: Vec::new(),
        listeners: None,
    };
    match check_executable(host, facts, info.pid, info.exe.as_deref()) {
        Ok(e) => a.evidence.push(e),
        Err(f) => a.failures.push(f),
    }
    match check_mount_namespace(host, facts, info.pid) {
        Ok(e) => a.evidence.push(e),
        Err(f) => a.failures.push(f),
    }
    match check_parent_chain(host, info.pid) {
        Ok(e) => a.evidence.push(e),
        Err(f) => a.failures.push(f),
    }
    a.listeners = net::owned_listeners(host, info.pid).map(|l| l.len());
    match a.listeners {
        Some(n) if n > 0 => a.evidence.push(format!("owns {n} listening TCP socket(s)")),
        Some(_) => a
            .evidence
            .push("owns no listening TCP socket (yet)".to_string()),
        None => {}
    }
    a
}

/// Whether a mode lets group or others write.
fn writable_by_others(mode: u32) -> bool {
    mode & 0o022 != 0
}

fn check_executable(
    host: &HostRoot,
    facts: &HostFacts,
    pid: i32,
    exe: Option<&str>,
) -> Result<String, String> {
    let Some(trusted) = facts.trusted_uid else {
        return Err("the owner of the host root is unknown".to_string());
    };
    let Some(exe) = exe.filter(|e| e.starts_with('/')) else {
        return Err("its executable is unknown (/proc/<pid>/exe unreadable)".to_string());
    };
    // A binary replaced after start (package upgrade) shows as "<path> (deleted)": the
    // running file is then only reachable through the magic link.
    let (path, deleted) = match exe.strip_suffix(" (deleted)") {
        Some(p) => (p, true),
        None => (exe, false),
    };
    // The running file itself, through the magic link (live hosts only).
    let running = if facts.live {
        let link = host.root().join(format!("proc/{pid}/exe"));
        match std::fs::metadata(&link) {
            Ok(m) => Some(m),
            Err(e) => return Err(format!("its executable cannot be examined: {e}")),
        }
    } else {
        None
    };
    if let Some(m) = &running {
        if !m.file_type().is_file() {
            return Err(format!("its executable {path} is not a regular file"));
        }
        if m.uid() != trusted {
            return Err(format!(
                "its executable {path} is owned by uid {}, not {trusted}",
                m.uid()
            ));
        }
        if writable_by_others(m.mode()) {
            return Err(format!(
                "its executable {path} is writable by group or others (mode {:o})",
                m.mode() & 0o7777
            ));
        }
    }
    if deleted && running.is_some() {
        return Ok(format!(
            "executable {path} (deleted since start) owned by uid {trusted}, not group/other-writable"
        ));
    }
    let meta = host
        .metadata(path)
        .map_err(|e| format!("its executable {path} cannot be examined: {e}"))?;
    if meta.kind != FileKind::File {
        return Err(format!("its executable {path} is not a regular file"));
    }
    if let Some(m) = &running {
        if (m.dev(), m.ino()) != (meta.dev, meta.inode) {
            return Err(format!(
                "{path} in the host's filesystem is not the file it runs (a container's path?)"
            ));
        }
    }
    if meta.uid != trusted {
        return Err(format!(
            "its executable {} is owned by uid {}, not {trusted}",
            meta.resolved, meta.uid
        ));
    }
    if writable_by_others(meta.mode) {
        return Err(format!(
            "its executable {} is writable by group or others (mode {:o})",
            meta.resolved, meta.mode
        ));
    }
    // Every directory above the resolved file, up to the root.
    let mut dir = meta.resolved.clone();
    while let Some(cut) = dir.rfind('/') {
        dir.truncate(cut);
        let shown = if dir.is_empty() { "/" } else { dir.as_str() };
        let d = host
            .symlink_metadata(shown)
            .map_err(|e| format!("directory {shown} of its executable: {e}"))?;
        if d.uid != trusted {
            return Err(format!(
                "directory {shown} of its executable is owned by uid {}, not {trusted}",
                d.uid
            ));
        }
        // A sticky directory (/tmp) lets others add entries but not rename or remove one
        // they do not own, and the entry below it is checked to be the trusted owner's.
        if writable_by_others(d.mode) && d.mode & 0o1000 == 0 {
            return Err(format!(
                "directory {shown} of its executable is writable by group or others (mode {:o})",
                d.mode
            ));
        }
    }
    Ok(format!(
        "executable {} and its directories owned by uid {trusted}, not group/other-writable",
        meta.resolved
    ))
}

fn check_mount_namespace(host: &HostRoot, facts: &HostFacts, pid: i32) -> Result<String, String> {
    // Reading another process's namespace links takes ptrace read access (the DaemonSet
    // grants CAP_SYS_PTRACE). Without it for init, no candidate can be compared: the check
    // is not made, and the evidence says so (the executable's identity check, which needs
    // the same access, still tells a container's binary from the host's).
    let Some(init) = &facts.init_mnt_ns else {
        return Ok(
            "mount namespace not compared: /proc/1/ns/mnt is unreadable to the agent (no ptrace read access to init)"
                .to_string(),
        );
    };
    let own = host
        .read_link(&format!("/proc/{pid}/ns/mnt"))
        .map_err(|e| format!("its mount namespace is unknown: {e}"))?;
    if &own == init {
        return Ok(format!("in the host's mount namespace {own}"));
    }
    // A systemd unit with PrivateTmp=, ProtectSystem=, ... runs in a mount namespace of
    // its own, over the host's root directory; a container's root is its image. On a live
    // host the process's root (the `/proc/<pid>/root` magic link) tells them apart.
    if facts.live {
        let theirs = std::fs::metadata(host.root().join(format!("proc/{pid}/root")));
        let ours = std::fs::metadata(host.root());
        if let (Ok(t), Ok(o)) = (theirs, ours) {
            if (t.dev(), t.ino()) == (o.dev(), o.ino()) {
                return Ok(format!(
                    "in mount namespace {own} (not init's {init}) over the host's root directory (a sandboxed systemd unit)"
                ));
            }
        }
    }
    Err(format!(
        "not in the host's mount namespace ({own}, the host's init is in {init}): a container's process"
    ))
}

/// The parent pid, field 4 of `/proc/<pid>/stat` (counted after the last `)`, since the
/// command name may hold spaces and parentheses).
pub fn parent_from_stat(text: &str) -> Option<i32> {
    let after = text.get(text.rfind(')')? + 1..)?;
    after.split_whitespace().nth(1)?.parse().ok()
}

fn check_parent_chain(host: &HostRoot, pid: i32) -> Result<String, String> {
    let mut seen = BTreeSet::new();
    let mut chain = vec![pid];
    let mut at = pid;
    for _ in 0..MAX_PARENT_HOPS {
        if at == 1 {
            return Ok(format!(
                "parent chain {} reaches init",
                chain
                    .iter()
                    .map(i32::to_string)
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
        }
        if !seen.insert(at) {
            return Err(format!("its parent chain loops at pid {at}"));
        }
        let parent = process::read_small(host, at, "stat")
            .ok()
            .and_then(|s| parent_from_stat(&s))
            .ok_or_else(|| format!("its parent chain breaks at pid {at} (no readable stat)"))?;
        if parent <= 0 {
            return Err(format!(
                "its parent chain ends at pid {at} without reaching init"
            ));
        }
        chain.push(parent);
        at = parent;
    }
    if at == 1 {
        return Ok("parent chain reaches init".to_string());
    }
    Err(format!(
        "its parent chain does not reach init within {MAX_PARENT_HOPS} steps"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_field() {
        assert_eq!(parent_from_stat("1234 (kube (let)) S 77 1 1 0"), Some(77));
        assert_eq!(parent_from_stat("1 (init) S 0 1 1"), Some(0));
        assert_eq!(parent_from_stat("garbage"), None);
        assert_eq!(parent_from_stat("5 (x) S"), None);
    }
}
