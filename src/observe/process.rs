//! Kubelet discovery in `<root>/proc`, and the pure parsers for `/proc` files.

use crate::io::host::HostRoot;

use crate::model::file::HostError;

/// Cap for `/proc/<pid>/cmdline` (Linux caps argv at a few MiB; the kubelet's is small).
const CMDLINE_CAP: u64 = 256 * 1024;
/// Cap for small `/proc` files (`stat`, `cgroup`, `comm`).
const SMALL_CAP: u64 = 64 * 1024;

/// A process as seen in `/proc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcInfo {
    /// Process id, as the host's `/proc` names it.
    pub pid: i32,
    /// The command line from `/proc/<pid>/cmdline`, split at NULs; empty for a kernel
    /// thread.
    pub argv: Vec<String>,
    /// `/proc/<pid>/exe` target, when readable.
    pub exe: Option<String>,
    /// True when argv contained bytes that are not UTF-8 (replaced with U+FFFD).
    pub lossy: bool,
}

/// What a process of interest is: one that bears a kubelet (a kubelet, hyperkube,
/// kubelite, k3s) or a kube-apiserver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessKind {
    /// A `kubelet` binary (absolute path, relative name as RKE2 runs it).
    Kubelet,
    /// `hyperkube kubelet ...`: flags start after the subcommand.
    Hyperkube,
    /// MicroK8s `kubelite --kubelet-args-file=...`.
    Kubelite,
    /// k3s: the kubelet runs inside `k3s server|agent`; its flags are rebuilt from
    /// k3s's files (observe/k3s.rs).
    K3s,
    /// A kube-apiserver (not a kubelet; used by the audit control).
    ApiServer,
}

/// Split `/proc/<pid>/cmdline` bytes into argv (NUL-separated, trailing NUL optional).
/// Returns the words and whether any were not valid UTF-8.
pub fn split_cmdline(bytes: &[u8]) -> (Vec<String>, bool) {
    let mut lossy = false;
    let trimmed = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if trimmed.is_empty() {
        return (Vec::new(), false);
    }
    let words = trimmed
        .split(|b| *b == 0)
        .map(|w| match std::str::from_utf8(w) {
            Ok(s) => s.to_string(),
            Err(_) => {
                lossy = true;
                String::from_utf8_lossy(w).into_owned()
            }
        })
        .collect();
    (words, lossy)
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Classify a process by its argv and exe: the names of kube-bench's cfg/config.yaml `bins`
/// (`hyperkube kubelet`, `kubelet`), MicroK8s `kubelite`, k3s `server`/`agent`.
pub fn classify(argv: &[String], exe: Option<&str>) -> Option<ProcessKind> {
    let arg0 = argv.first().map(|a| basename(a)).unwrap_or("");
    let exe_base = exe.map(basename).unwrap_or("");
    // A deleted binary shows as "/usr/bin/kubelet (deleted)".
    let exe_base = exe_base.strip_suffix(" (deleted)").unwrap_or(exe_base);
    if arg0 == "kubelet" || (exe_base == "kubelet" && !arg0.is_empty() && !arg0.starts_with('-')) {
        return Some(ProcessKind::Kubelet);
    }
    if (arg0 == "hyperkube" || exe_base == "hyperkube")
        && argv.get(1).map(String::as_str) == Some("kubelet")
    {
        return Some(ProcessKind::Hyperkube);
    }
    if arg0 == "kubelite" || exe_base == "kubelite" {
        return Some(ProcessKind::Kubelite);
    }
    if (arg0 == "k3s" || exe_base == "k3s")
        && matches!(argv.get(1).map(String::as_str), Some("server" | "agent"))
    {
        return Some(ProcessKind::K3s);
    }
    // gspt's retitle (pkg/cli/server/server.go `run`: `SetProcTitle(os.Args[0] + " server")`)
    // leaves one word with a space: `/usr/local/bin/k3s server`.
    if argv.len() == 1 {
        if let Some((prog, sub)) = argv[0].split_once(' ') {
            if (basename(prog) == "k3s" || exe_base == "k3s") && matches!(sub, "server" | "agent") {
                return Some(ProcessKind::K3s);
            }
        }
    }
    // k3s rewrites its process title to "k3s-server"/"k3s-agent" (Falco lists k3s-agent).
    if arg0 == "k3s-server" || arg0 == "k3s-agent" {
        return Some(ProcessKind::K3s);
    }
    if arg0 == "kube-apiserver" || exe_base == "kube-apiserver" {
        return Some(ProcessKind::ApiServer);
    }
    None
}

/// The systemd unit a process runs in, from `/proc/<pid>/cgroup`
/// (`0::/system.slice/kubelet.service`, v1 `1:name=systemd:/system.slice/kubelet.service`).
pub fn unit_from_cgroup(text: &str) -> Option<String> {
    let mut best: Option<String> = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrl), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if !(ctrl.is_empty() || ctrl == "name=systemd") {
            continue;
        }
        // The innermost `.service` component names the unit.
        if let Some(unit) = path
            .split('/')
            .rev()
            .find(|c| c.ends_with(".service") && !c.contains(' '))
        {
            best = Some(unit.to_string());
            if ctrl.is_empty() {
                break;
            }
        }
    }
    best
}

/// Start time (clock ticks since boot) from `/proc/<pid>/stat`: field 22, counted after
/// the *last* `)` because the command name may contain spaces and parentheses.
/// (procfs-core's `Stat` parser was tried here and panics on some malformed input, which
/// a host agent must never do; this needs one field.)
pub fn start_time_from_stat(text: &str) -> Option<u64> {
    let after = text.get(text.rfind(')')? + 1..)?;
    // Fields after ")" start at field 3 (state); field 22 is index 19 here.
    after.split_whitespace().nth(19)?.parse().ok()
}

/// The boot time (`btime`, Unix seconds) from `/proc/stat`.
pub fn boot_time_from_stat(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux; from the auxiliary
/// vector's `AT_CLKTCK`), the unit of `/proc/<pid>/stat` start times.
pub fn clock_ticks_per_second() -> u64 {
    Some(rustix::param::clock_ticks_per_second())
        .filter(|t| *t > 0)
        .unwrap_or(100)
}

/// A process's start as Unix time (seconds): `btime` plus its start time in ticks.
/// `None` when the host's `/proc/stat` is unreadable or has no `btime` (host trees on disk).
pub fn start_wall_time(host: &HostRoot, start_ticks: u64) -> Option<f64> {
    // /proc/stat has a line per CPU: 64 KiB covers some thousand CPUs.
    let bytes = host.read_capped("/proc/stat", 64 * 1024).ok()?;
    let btime = boot_time_from_stat(&String::from_utf8_lossy(&bytes))?;
    Some(btime as f64 + start_ticks as f64 / clock_ticks_per_second() as f64)
}

/// Read one process's argv and exe.
pub fn read_proc(host: &HostRoot, pid: i32) -> Result<ProcInfo, HostError> {
    let raw = host.read_capped(&format!("/proc/{pid}/cmdline"), CMDLINE_CAP)?;
    let (argv, lossy) = split_cmdline(&raw);
    // Kernel threads (empty cmdline) have no executable: skip the readlink.
    let exe = if argv.is_empty() {
        None
    } else {
        host.read_link(&format!("/proc/{pid}/exe")).ok()
    };
    Ok(ProcInfo {
        pid,
        argv,
        exe,
        lossy,
    })
}

/// Read a small `/proc/<pid>/<name>` file as text.
pub fn read_small(host: &HostRoot, pid: i32, name: &str) -> Result<String, HostError> {
    let bytes = host.read_capped(&format!("/proc/{pid}/{name}"), SMALL_CAP)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Every numeric entry of `/proc`, ascending.
pub fn list_pids(host: &HostRoot) -> Result<Vec<i32>, HostError> {
    let mut pids: Vec<i32> = host
        .read_dir("/proc")?
        .iter()
        .filter_map(|n| n.parse::<i32>().ok())
        .filter(|p| *p > 0)
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The result of scanning `/proc` for kubelet-bearing processes.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// Candidates for the kubelet (`kubelet`, `hyperkube kubelet`, `kubelite`) with their
    /// kind, in pid order; which one is the host's kubelet is decided later, on evidence.
    pub kubelets: Vec<(ProcInfo, ProcessKind)>,
    /// `k3s server`/`k3s agent` processes: the kubelet runs inside them.
    pub k3s: Vec<ProcInfo>,
    /// kube-apiserver processes on this node, in pid order (the audit control uses the
    /// first).
    pub apiservers: Vec<ProcInfo>,
    /// Processes that look like a kubelet (by `comm` and `exe`) whose command line is
    /// larger than `CMDLINE_CAP` and was therefore not read.
    pub oversized: Vec<ProcInfo>,
    /// Processes that vanished or could not be read during the scan (not an error).
    pub skipped: usize,
}

/// The cap on a command line, for messages.
pub const fn cmdline_cap() -> u64 {
    CMDLINE_CAP
}

/// A process whose command line is too large to read: is it kubelet-like by its `comm`
/// (the kernel's 15-byte task name, the executable's basename by default) or its `exe`?
/// Returned with an empty argv.
fn oversized_candidate(host: &HostRoot, pid: i32) -> Option<ProcInfo> {
    let comm = read_small(host, pid, "comm").ok()?;
    let exe = host.read_link(&format!("/proc/{pid}/exe")).ok();
    let name = vec![comm.trim_end_matches('\n').to_string()];
    match classify(&name, exe.as_deref()) {
        Some(ProcessKind::Kubelet | ProcessKind::Hyperkube | ProcessKind::Kubelite) => {
            Some(ProcInfo {
                pid,
                argv: Vec::new(),
                exe,
                lossy: false,
            })
        }
        _ => None,
    }
}

/// Scan all processes. A process that exits mid-scan is skipped, never an error.
pub fn scan(host: &HostRoot) -> Result<Scan, HostError> {
    let pids = list_pids(host)?;
    // Reading /proc is one open+read+readlink per process: system calls, no CPU work.
    // Above a few dozen processes, split the list over a few threads (bounded, scoped:
    // nothing outlives the scan), keeping the results in pid order.
    let workers = std::thread::available_parallelism()
        .map(std::num::NonZero::get)
        .unwrap_or(1)
        .clamp(1, MAX_SCAN_THREADS);
    let chunk = pids.len().div_ceil(workers).max(MIN_PIDS_PER_THREAD);
    let parts: Vec<Scan> = if pids.len() <= MIN_PIDS_PER_THREAD || workers == 1 {
        vec![scan_pids(host, &pids)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = pids
                .chunks(chunk)
                .map(|part| s.spawn(move || scan_pids(host, part)))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect()
        })
    };
    let mut out = Scan::default();
    for p in parts {
        out.kubelets.extend(p.kubelets);
        out.k3s.extend(p.k3s);
        out.apiservers.extend(p.apiservers);
        out.oversized.extend(p.oversized);
        out.skipped += p.skipped;
    }
    Ok(out)
}

/// Threads used by a large `/proc` scan, and the least work worth a thread.
const MAX_SCAN_THREADS: usize = 4;
const MIN_PIDS_PER_THREAD: usize = 64;

fn scan_pids(host: &HostRoot, pids: &[i32]) -> Scan {
    let mut out = Scan::default();
    for &pid in pids {
        // cmdline alone tells us everything (comm is truncated to 15 chars anyway).
        let info = match read_proc(host, pid) {
            Ok(i) => i,
            Err(HostError::TooLarge { .. }) => {
                // Never silently skipped: a kubelet with a huge command line is reported
                // as such, not as "no kubelet".
                match oversized_candidate(host, pid) {
                    Some(c) => out.oversized.push(c),
                    None => out.skipped += 1,
                }
                continue;
            }
            Err(_) => {
                out.skipped += 1;
                continue;
            }
        };
        match classify(&info.argv, info.exe.as_deref()) {
            Some(ProcessKind::K3s) => out.k3s.push(info),
            Some(ProcessKind::ApiServer) => out.apiservers.push(info),
            Some(kind) => out.kubelets.push((info, kind)),
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(std::string::ToString::to_string).collect()
    }

    #[test]
    fn cmdline_split() {
        let (w, lossy) = split_cmdline(b"/usr/bin/kubelet\0--config=/c\0");
        assert_eq!(w, v(&["/usr/bin/kubelet", "--config=/c"]));
        assert!(!lossy);
        let (w, lossy) = split_cmdline(b"kubelet\0--x=\xff\xfe\0");
        assert_eq!(w.len(), 2);
        assert!(lossy);
        assert_eq!(split_cmdline(b"").0.len(), 0);
    }

    #[test]
    fn classification() {
        assert_eq!(
            classify(&v(&["/usr/bin/kubelet"]), None),
            Some(ProcessKind::Kubelet)
        );
        assert_eq!(
            classify(&v(&["kubelet", "--v=2"]), None),
            Some(ProcessKind::Kubelet)
        );
        assert_eq!(
            classify(&v(&["/hyperkube", "kubelet"]), None),
            Some(ProcessKind::Hyperkube)
        );
        assert_eq!(classify(&v(&["/hyperkube", "apiserver"]), None), None);
        assert_eq!(
            classify(
                &v(&["/snap/microk8s/123/kubelite", "--kubelet-args-file=/x"]),
                None
            ),
            Some(ProcessKind::Kubelite)
        );
        assert_eq!(
            classify(&v(&["/usr/local/bin/k3s", "agent"]), None),
            Some(ProcessKind::K3s)
        );
        assert_eq!(
            classify(
                &v(&["/usr/local/bin/k3s server"]),
                Some("/var/lib/rancher/k3s/data/abc/bin/k3s")
            ),
            Some(ProcessKind::K3s)
        );
        assert_eq!(classify(&v(&["/usr/local/bin/k3s kubectl"]), None), None);
        assert_eq!(
            classify(&v(&["kube-apiserver", "--audit-log-path=/x"]), None),
            Some(ProcessKind::ApiServer)
        );
        assert_eq!(classify(&v(&["/usr/bin/kubelet-sentinel"]), None), None);
        assert_eq!(classify(&v(&["bash", "-c", "kubelet"]), None), None);
        assert_eq!(
            classify(&v(&["/proc/self/exe"]), Some("/usr/bin/kubelet (deleted)")),
            Some(ProcessKind::Kubelet)
        );
    }

    #[test]
    fn cgroup_units() {
        assert_eq!(
            unit_from_cgroup("0::/system.slice/kubelet.service\n").as_deref(),
            Some("kubelet.service")
        );
        assert_eq!(
            unit_from_cgroup(
                "12:cpu:/x\n1:name=systemd:/system.slice/snap.microk8s.daemon-kubelite.service\n"
            )
            .as_deref(),
            Some("snap.microk8s.daemon-kubelite.service")
        );
        assert_eq!(unit_from_cgroup("0::/kubepods.slice/pod1/abc\n"), None);
        assert_eq!(unit_from_cgroup("garbage"), None);
    }

    #[test]
    fn boot_time() {
        assert_eq!(
            boot_time_from_stat("cpu  1 2 3\nctxt 5\nbtime 1700000000\nprocesses 9\n"),
            Some(1_700_000_000)
        );
        assert_eq!(boot_time_from_stat("cpu 1 2\n"), None);
        assert_eq!(boot_time_from_stat("btime soon\n"), None);
    }

    #[test]
    fn stat_start_time() {
        let stat = "1234 (kube (let)) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 6 0 0 20 0 30 0 98765 1000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0";
        assert_eq!(start_time_from_stat(stat), Some(98765));
        assert_eq!(start_time_from_stat("nonsense"), None);
    }
}
