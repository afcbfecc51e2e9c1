//! Which process is the host's kubelet (and whether a kube-apiserver runs here): a scan
//! of `/proc`, the identity checks of every candidate (observe/identity.rs), the pinned
//! pid of `--kubelet-pid`, and the cache that spares a full scan at every evaluation.

use std::time::{Duration, Instant};

use super::process::{self, ProcInfo, ProcessKind};
use super::{identity, live};
use crate::io::host::HostRoot;
use crate::model::snapshot::Discovery;
/// How often a cached discovery is confirmed by a full `/proc` scan (new kubelet
/// candidates, a new kube-apiserver). In between, the cached pids are re-validated
/// cheaply (same pid, same start time, same kind).
pub const RESCAN_EVERY: Duration = Duration::from_secs(300);

/// A process remembered between observations.
#[derive(Debug, Clone)]
struct CachedProc {
    pid: i32,
    start: Option<u64>,
}

/// Discovery state kept between observations, so that once the kubelet's pid is known an
/// evaluation does not scan all of `/proc`.
#[derive(Debug, Default)]
pub(super) struct Cache {
    kubelet: Option<CachedProc>,
    kubelet_note: Option<String>,
    kubelet_evidence: Vec<String>,
    apiserver: Option<CachedProc>,
    last_scan: Option<Instant>,
}

pub(super) type Chosen = Option<(ProcInfo, ProcessKind)>;

pub(super) fn proc_start(host: &HostRoot, pid: i32) -> Option<u64> {
    process::read_small(host, pid, "stat")
        .ok()
        .and_then(|s| process::start_time_from_stat(&s))
}

/// Re-read a cached process; `None` when it is gone, restarted (new start time) or no
/// longer of the wanted kind.
fn revalidate(
    host: &HostRoot,
    cached: &CachedProc,
    want: impl Fn(Option<ProcessKind>) -> bool,
) -> Option<(ProcInfo, Option<ProcessKind>)> {
    let info = process::read_proc(host, cached.pid).ok()?;
    if proc_start(host, cached.pid) != cached.start {
        return None;
    }
    let kind = process::classify(&info.argv, info.exe.as_deref());
    want(kind).then_some((info, kind))
}

fn is_kubelet(k: Option<ProcessKind>) -> bool {
    matches!(
        k,
        Some(
            ProcessKind::Kubelet
                | ProcessKind::Hyperkube
                | ProcessKind::Kubelite
                | ProcessKind::K3s
        )
    )
}

pub(super) fn discover(
    host: &HostRoot,
    pinned: Option<i32>,
    cache: &mut Cache,
    apiserver: &mut Option<ProcInfo>,
) -> Result<(Discovery, Chosen), String> {
    let fresh = cache
        .last_scan
        .map(|t| t.elapsed() < RESCAN_EVERY)
        .unwrap_or(false);
    // Fast path: everything cached is still valid and the last scan is recent.
    if fresh {
        let api_ok = match &cache.apiserver {
            Some(c) => match revalidate(host, c, |k| k == Some(ProcessKind::ApiServer)) {
                Some((info, _)) => {
                    *apiserver = Some(info);
                    true
                }
                None => false,
            },
            None => true,
        };
        // The cached kubelet (discovered, or the pinned pid) is still the same process: its
        // identity was assessed when it was found, and is not assessed again (that reads
        // its sockets) until the next full scan.
        let kubelet_cached = match &cache.kubelet {
            Some(c) if pinned.is_none_or(|p| p == c.pid) => revalidate(host, c, |k| {
                if pinned.is_some() {
                    k != Some(ProcessKind::ApiServer)
                } else {
                    is_kubelet(k)
                }
            }),
            _ => None,
        };
        if api_ok {
            if let Some((info, kind)) = kubelet_cached {
                let note = cache.kubelet_note.clone();
                return Ok((
                    Discovery::Found {
                        pid: info.pid,
                        note,
                        evidence: cache.kubelet_evidence.clone(),
                    },
                    Some((info, kubelet_kind(kind))),
                ));
            }
            if let Some(pid) = pinned {
                let facts = identity::HostFacts::read(host, live::is_live_proc(host.root()));
                return pinned_discovery(host, pid, &facts, cache);
            }
        }
        *apiserver = None;
    }

    // Full scan.
    let scan = process::scan(host).map_err(|e| format!("cannot list processes: {e}"))?;
    cache.last_scan = Some(Instant::now());
    let api = scan.apiservers.into_iter().next();
    cache.apiserver = api.as_ref().map(|p| CachedProc {
        pid: p.pid,
        start: proc_start(host, p.pid),
    });
    *apiserver = api;
    let facts = identity::HostFacts::read(host, live::is_live_proc(host.root()));
    if let Some(pid) = pinned {
        return pinned_discovery(host, pid, &facts, cache);
    }
    // k3s runs its kubelet in the `k3s server|agent` process: those are the candidates
    // when no kubelet process exists (RKE2's kubelet is a process of its own).
    let mut kubelets = scan.kubelets;
    if kubelets.is_empty() && scan.oversized.is_empty() {
        kubelets = scan
            .k3s
            .into_iter()
            .map(|p| (p, ProcessKind::K3s))
            .collect();
    }
    if kubelets.is_empty() && scan.oversized.is_empty() {
        cache.kubelet = None;
        return Ok((
            Discovery::NotFound {
                reason: "no kubelet process found".to_string(),
            },
            None,
        ));
    }
    let (discovery, chosen) = choose(host, &facts, kubelets, scan.oversized);
    match &chosen {
        Some((info, _)) => {
            cache.kubelet = Some(CachedProc {
                pid: info.pid,
                start: proc_start(host, info.pid),
            });
            cache.kubelet_note = match &discovery {
                Discovery::Found { note, .. } => note.clone(),
                _ => None,
            };
            cache.kubelet_evidence = match &discovery {
                Discovery::Found { evidence, .. } => evidence.clone(),
                _ => Vec::new(),
            };
        }
        None => cache.kubelet = None,
    }
    Ok((discovery, chosen))
}

/// Pick the host's kubelet among the processes that look like one, on evidence
/// (observe/identity.rs), never by pid order: a candidate that fails a check is set aside
/// (and named); one credible candidate is the kubelet; none, or several, make the kubelet
/// unknown, with every candidate named and what it failed.
fn choose(
    host: &HostRoot,
    facts: &identity::HostFacts,
    kubelets: Vec<(ProcInfo, ProcessKind)>,
    oversized: Vec<ProcInfo>,
) -> (Discovery, Chosen) {
    let cap_kib = process::cmdline_cap() / 1024;
    let mut judged: Vec<(identity::Assessment, Option<(ProcInfo, ProcessKind)>)> = kubelets
        .into_iter()
        .map(|(info, kind)| (identity::assess(host, facts, &info), Some((info, kind))))
        .collect();
    judged.extend(
        oversized
            .iter()
            .map(|info| (identity::assess(host, facts, info), None)),
    );
    judged.sort_by_key(|(a, _)| a.pid);
    let (mut credible, mut rejected): (Vec<_>, Vec<_>) =
        judged.into_iter().partition(|(a, _)| a.credible());
    // Socket evidence: among credible candidates, one that owns no listening socket is not
    // the kubelet when another one does.
    if credible.len() > 1
        && credible
            .iter()
            .any(|(a, _)| a.listeners.is_some_and(|n| n > 0))
    {
        let (keep, drop): (Vec<_>, Vec<_>) = credible
            .into_iter()
            .partition(|(a, _)| a.listeners != Some(0));
        credible = keep;
        rejected.extend(drop.into_iter().map(|(mut a, c)| {
            a.failures
                .push("owns no listening TCP socket while another candidate does".to_string());
            (a, c)
        }));
        rejected.sort_by_key(|(a, _)| a.pid);
    }
    let set_aside: Vec<String> = rejected
        .iter()
        .map(|(a, _)| a.describe_failures())
        .collect();
    if !set_aside.is_empty() {
        tracing::warn!(
            candidates = %set_aside.join("; "),
            "processes named like a kubelet are not the host's kubelet"
        );
    }
    let aside_text =
        |prefix: &str| (!set_aside.is_empty()).then(|| format!("{prefix}{}", set_aside.join("; ")));
    match credible.len() {
        1 => {
            let Some((a, chosen)) = credible.pop() else {
                return (
                    Discovery::Unknown {
                        reason: "internal: no candidate".to_string(),
                    },
                    None,
                );
            };
            match chosen {
                Some((info, kind)) => (
                    Discovery::Found {
                        pid: a.pid,
                        note: aside_text("not the kubelet: "),
                        evidence: a.evidence,
                    },
                    Some((info, kind)),
                ),
                None => (
                    Discovery::Unknown {
                        reason: format!(
                            "kubelet pid {}: its command line is larger than {cap_kib} KiB, so it was not read{}",
                            a.pid,
                            aside_text("; not the kubelet: ").unwrap_or_default()
                        ),
                    },
                    None,
                ),
            }
        }
        0 => {
            let mut reason = format!(
                "no credible kubelet: {} process(es) look like one, none passes the identity checks: {}",
                set_aside.len(),
                set_aside.join("; ")
            );
            if set_aside.is_empty() {
                reason = "no credible kubelet".to_string();
            }
            (Discovery::Unknown { reason }, None)
        }
        n => {
            let pids: Vec<String> = credible
                .iter()
                .map(|(a, c)| match c {
                    Some(_) => a.pid.to_string(),
                    None => format!("{} (command line larger than {cap_kib} KiB)", a.pid),
                })
                .collect();
            (
                Discovery::Unknown {
                    reason: format!(
                        "{n} credible kubelet candidates (pids {}): the agent cannot tell which is the host's kubelet and chooses none (pin one with --kubelet-pid){}",
                        pids.join(", "),
                        aside_text("; not the kubelet: ").unwrap_or_default()
                    ),
                },
                None,
            )
        }
    }
}

/// `--kubelet-pid`: that process is the kubelet, whatever its name (a k3s process is read
/// as k3s). The operator's explicit choice: the identity checks are
/// still made and reported (as evidence, or in the note when one fails), not enforced.
fn pinned_discovery(
    host: &HostRoot,
    pid: i32,
    facts: &identity::HostFacts,
    cache: &mut Cache,
) -> Result<(Discovery, Chosen), String> {
    cache.kubelet = None;
    let info = match process::read_proc(host, pid) {
        Ok(i) => i,
        Err(crate::model::file::HostError::TooLarge { .. }) => {
            return Err(format!(
                "--kubelet-pid {pid}: its command line is larger than {} KiB, so it was not read",
                process::cmdline_cap() / 1024
            ))
        }
        Err(e) => return Err(format!("--kubelet-pid {pid}: {e}")),
    };
    let kind = kubelet_kind(process::classify(&info.argv, info.exe.as_deref()));
    let a = identity::assess(host, facts, &info);
    let note = if a.credible() {
        format!("pinned with --kubelet-pid {pid}")
    } else {
        format!(
            "pinned with --kubelet-pid {pid}, although it fails identity checks: {}",
            a.failures.join("; ")
        )
    };
    cache.kubelet = Some(CachedProc {
        pid,
        start: proc_start(host, pid),
    });
    cache.kubelet_note = Some(note.clone());
    cache.kubelet_evidence = a.evidence.clone();
    Ok((
        Discovery::Found {
            pid,
            note: Some(note),
            evidence: a.evidence,
        },
        Some((info, kind)),
    ))
}

/// How a kubelet-bearing process is read: a process of another (or no) kind that the
/// operator pinned is read as a plain kubelet.
fn kubelet_kind(kind: Option<ProcessKind>) -> ProcessKind {
    match kind {
        Some(
            k @ (ProcessKind::Kubelet
            | ProcessKind::Hyperkube
            | ProcessKind::Kubelite
            | ProcessKind::K3s),
        ) => k,
        _ => ProcessKind::Kubelet,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::Snapshot;
    use crate::observe::{observe, ObserveOptions, Observer};

    fn write_proc(root: &std::path::Path, pid: i32, argv: &[&str], start: u64) {
        let d = root.join(format!("proc/{pid}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut cmd = Vec::new();
        for a in argv {
            cmd.extend_from_slice(a.as_bytes());
            cmd.push(0);
        }
        std::fs::write(d.join("cmdline"), cmd).unwrap();
        let stat = format!(
            "{pid} (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0"
        );
        std::fs::write(d.join("stat"), stat).unwrap();
        // Identity evidence: the host's mount namespace, an executable in the tree.
        std::fs::create_dir_all(d.join("ns")).unwrap();
        let _ = std::os::unix::fs::symlink("mnt:[4026531840]", d.join("ns/mnt"));
        if let Some(exe) = argv.first().filter(|a| a.starts_with('/')) {
            let _ = std::os::unix::fs::symlink(exe, d.join("exe"));
            let file = root.join(exe.trim_start_matches('/'));
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, "stand-in binary").unwrap();
        }
    }

    fn found_pid(s: &Snapshot) -> Option<i32> {
        match s.discovery {
            Discovery::Found { pid, .. } => Some(pid),
            _ => None,
        }
    }

    #[test]
    fn cached_discovery_follows_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write_proc(r, 1, &["/sbin/init"], 1);
        write_proc(r, 100, &["/usr/bin/kubelet", "--anonymous-auth=false"], 500);
        let host = HostRoot::new(r).unwrap();
        let mut obs = Observer::new(host, ObserveOptions::default());
        let a = obs.observe();
        assert_eq!(found_pid(&a), Some(100));
        // Same pid, same start: the cache is used and the answer is the same.
        assert_eq!(found_pid(&obs.observe()), Some(100));
        // The kubelet restarts with a new pid: the cache is invalid, a scan finds it.
        std::fs::remove_dir_all(r.join("proc/100")).unwrap();
        write_proc(r, 300, &["/usr/bin/kubelet", "--anonymous-auth=true"], 900);
        let b = obs.observe();
        assert_eq!(found_pid(&b), Some(300));
        let k = b.kubelet.unwrap();
        assert_eq!(k.flags.last("anonymous-auth"), Some("true"));
        // Pid reuse by another program is not mistaken for the kubelet.
        std::fs::remove_dir_all(r.join("proc/300")).unwrap();
        write_proc(r, 300, &["/usr/sbin/nginx"], 950);
        let c = obs.observe();
        assert!(
            matches!(c.discovery, Discovery::NotFound { .. }),
            "{:?}",
            c.discovery
        );
    }

    #[test]
    fn large_scans_are_split_and_miss_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for pid in 1..400 {
            write_proc(r, pid, &["/usr/bin/containerd-shim-runc-v2", "-id", "x"], 1);
        }
        write_proc(
            r,
            399,
            &["kube-apiserver", "--audit-log-path=/var/log/a.log"],
            7,
        );
        write_proc(r, 377, &["/usr/bin/kubelet"], 9);
        write_proc(r, 388, &["/usr/bin/kubelet"], 9);
        let scan = process::scan(&HostRoot::new(r).unwrap()).unwrap();
        let pids: Vec<i32> = scan.kubelets.iter().map(|(p, _)| p.pid).collect();
        assert_eq!(pids, vec![377, 388]);
        assert_eq!(scan.apiservers.len(), 1);
        assert_eq!(scan.apiservers[0].pid, 399);
    }

    #[test]
    fn several_credible_candidates_choose_none_and_say_so() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        write_proc(r, 1, &["/sbin/init"], 1);
        write_proc(r, 700, &["/opt/bin/kubelet"], 5);
        write_proc(r, 42, &["/usr/bin/kubelet"], 4);
        let snap = observe(&HostRoot::new(r).unwrap(), &ObserveOptions::default());
        match snap.discovery {
            Discovery::Unknown { reason } => {
                assert!(
                    reason.contains("2 credible kubelet candidates (pids 42, 700)"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
        assert!(snap.kubelet.is_none());
        // A candidate without an executable in the host tree is set aside, named.
        std::fs::remove_file(r.join("opt/bin/kubelet")).unwrap();
        let snap = observe(&HostRoot::new(r).unwrap(), &ObserveOptions::default());
        match snap.discovery {
            Discovery::Found {
                pid,
                note,
                evidence,
            } => {
                assert_eq!(pid, 42);
                assert!(note
                    .unwrap()
                    .contains("pid 700 (its executable /opt/bin/kubelet cannot be examined"));
                assert!(
                    evidence.iter().any(|e| e.contains("reaches init")),
                    "{evidence:?}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
