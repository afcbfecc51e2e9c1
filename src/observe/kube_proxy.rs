//! Find the node's kube-proxy (CIS 4.1.3, 4.1.4, 4.3.1): a host process, a DaemonSet or
//! static-pod container, or k3s's in-process one; its flags, `--config` file and
//! kubeconfig; the listeners it owns. Positive evidence of its absence (k3s's
//! `disable-kube-proxy`, a Cilium agent replacing it) is recorded as such.
//!
//! A container's paths are *its* paths. They are mapped to host paths through the
//! kernel-written `/proc/<pid>/mountinfo` and the host init's `/proc/1/mountinfo`
//! (`model::kube_proxy::map_to_host`), then read through the host root like every other
//! file — never through the `/proc/<pid>/root` magic link, whose content the container
//! controls (docs/safety.md). A privileged kube-proxy could add mounts to mislead the
//! mapping; the read still stays inside the host root, so the worst case is a wrong but
//! host-internal file, and the observed text names the host path judged.
//!
//! Guarding against a fake: a pod can run a process named `kube-proxy`. Only a process in
//! the host's network namespace (`/proc/<pid>/ns/net` equal to init's — kube-proxy needs
//! `hostNetwork`, which an ordinary pod cannot get) is taken; among several such candidates
//! the live socket decides (the only one owning a listener on 10249 or 10256), else the
//! answer is `unknown` rather than a guess; the process's own listeners are recorded as
//! corroborating evidence, and the pod UID (from the kernel-written cgroup path) is named.

use crate::io::host::{host_join, HostRoot};
use crate::model::kube_proxy::{
    self as kp, KubeProxy, KubeProxyView, Mount, ProxyConfigFile, ProxyKubeconfig, RunsAs,
};
use crate::model::kubelet_config::flags::{args_file_words, Flags};
use crate::model::observed::ObsError;
use crate::model::snapshot::{FileObservation, FileRole, Kubelet, KubeletFlavour};

use super::process::{self, ProcInfo};
use super::{live, net};

/// Cap on a `mountinfo` file (a node with many pods has a few thousand lines).
const MOUNTINFO_CAP: u64 = 4 * 1024 * 1024;
/// Cap on the kube-proxy configuration file and Cilium's small ConfigMap values.
const CONFIG_CAP: u64 = 1024 * 1024;
/// kube-proxy's healthz port (`ports.ProxyHealthzPort`).
const HEALTHZ_PORT: u16 = 10256;
/// Cap on one Cilium ConfigMap value.
const CILIUM_VALUE_CAP: u64 = 4096;

/// Static-pod manifests that say a kube-proxy should run here: GCE kube-up/GKE's legacy
/// dataplane (`cluster/gce/manifests/kube-proxy.manifest`, installed by configure-helper)
/// and RKE2 (`pkg/podexecutor/staticpod.go`, removed when kube-proxy is disabled).
const STATIC_MANIFESTS: &[&str] = &[
    "/etc/kubernetes/manifests/kube-proxy.manifest",
    "/etc/kubernetes/manifests/kube-proxy.yaml",
    "/var/lib/rancher/rke2/agent/pod-manifests/kube-proxy.yaml",
];

/// What a process is to this module.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// kube-proxy; its flags start at this argv index.
    KubeProxy(usize),
    /// A Cilium agent (may replace kube-proxy).
    Cilium,
}

fn basename(s: &str) -> &str {
    s.rsplit('/').next().unwrap_or(s)
}

/// Classify by argv[0] (or `exe`) basename — never by a word anywhere in argv: EKS's
/// `/bin/sh -c "kube-proxy …"` wrapper has argv[0] `/bin/sh` and is not kube-proxy.
fn classify(info: &ProcInfo) -> Option<Kind> {
    let arg0 = info.argv.first().map(|a| basename(a)).unwrap_or("");
    let exe = info.exe.as_deref().map(basename).unwrap_or("");
    let exe = exe.strip_suffix(" (deleted)").unwrap_or(exe);
    if arg0 == "kube-proxy" || (exe == "kube-proxy" && !arg0.is_empty() && !arg0.starts_with('-')) {
        return Some(Kind::KubeProxy(1));
    }
    if (arg0 == "hyperkube" || exe == "hyperkube")
        && matches!(
            info.argv.get(1).map(String::as_str),
            Some("proxy" | "kube-proxy")
        )
    {
        return Some(Kind::KubeProxy(2));
    }
    if arg0 == "cilium-agent" || exe == "cilium-agent" {
        return Some(Kind::Cilium);
    }
    None
}

/// What is known of the host for judging candidates.
struct Host<'a> {
    root: &'a HostRoot,
    live: bool,
    net_ns: Option<String>,
    mnt_ns: Option<String>,
    mounts: Result<Vec<Mount>, String>,
}

impl<'a> Host<'a> {
    fn read(root: &'a HostRoot) -> Host<'a> {
        Host {
            root,
            live: live::is_live_proc(root.root()),
            net_ns: root.read_link("/proc/1/ns/net").ok(),
            mnt_ns: root.read_link("/proc/1/ns/mnt").ok(),
            mounts: read_mountinfo(root, 1),
        }
    }
}

fn read_mountinfo(host: &HostRoot, pid: i32) -> Result<Vec<Mount>, String> {
    let bytes = host
        .read_capped(&format!("/proc/{pid}/mountinfo"), MOUNTINFO_CAP)
        .map_err(|e| e.to_string())?;
    Ok(kp::parse_mountinfo(&String::from_utf8_lossy(&bytes)))
}

/// How a candidate's paths reach host paths.
enum PathMap {
    /// The host's mount namespace: paths are host paths.
    Identity,
    /// Its own mount table.
    Mounts(Vec<Mount>),
    /// Unmappable, with the reason.
    Broken(String),
}

/// One process that may be kube-proxy (or Cilium), judged.
struct Candidate {
    info: ProcInfo,
    kind: Kind,
    /// `Ok(evidence)` when it shares the host's network namespace; `Err(why not)`.
    host_net: Result<String, String>,
    runs_as: RunsAs,
    map: PathMap,
}

impl Candidate {
    fn assess(host: &Host, info: ProcInfo, kind: Kind) -> Candidate {
        let pid = info.pid;
        let own_net = host.root.read_link(&format!("/proc/{pid}/ns/net")).ok();
        let host_net = match (&host.net_ns, own_net) {
            (Some(h), Some(o)) if *h == o => Ok(format!("in the host's network namespace {o}")),
            (Some(h), Some(o)) => Err(format!(
                "not in the host's network namespace ({o}; the host's init is in {h})"
            )),
            (None, _) => Err(
                "network namespace not compared: /proc/1/ns/net is unreadable to the agent"
                    .to_string(),
            ),
            (_, None) => Err(format!(
                "its network namespace (/proc/{pid}/ns/net) is unreadable"
            )),
        };
        let own_mnt = host.root.read_link(&format!("/proc/{pid}/ns/mnt")).ok();
        let same_mnt = matches!((&host.mnt_ns, &own_mnt), (Some(h), Some(o)) if h == o);
        let cgroup = process::read_small(host.root, pid, "cgroup").unwrap_or_default();
        let (runs_as, map) = if same_mnt {
            (RunsAs::HostProcess, PathMap::Identity)
        } else {
            let map = match (&host.mounts, read_mountinfo(host.root, pid)) {
                (Ok(_), Ok(own)) => PathMap::Mounts(own),
                (Err(e), _) => PathMap::Broken(format!("the host's mount table: {e}")),
                (_, Err(e)) => PathMap::Broken(format!("its mount table: {e}")),
            };
            (
                RunsAs::Container {
                    pod_uid: kp::pod_uid_from_cgroup(&cgroup),
                },
                map,
            )
        };
        Candidate {
            info,
            kind,
            host_net,
            runs_as,
            map,
        }
    }

    /// The host path of a path the process names.
    fn to_host(&self, host: &Host, path: &str) -> Result<String, String> {
        match &self.map {
            PathMap::Identity => Ok(path.to_string()),
            PathMap::Mounts(own) => match &host.mounts {
                Ok(h) => kp::map_to_host(own, h, path),
                Err(e) => Err(format!("cannot map {path}: {e}")),
            },
            PathMap::Broken(e) => Err(format!("cannot map {path}: {e}")),
        }
    }

    fn describe(&self) -> String {
        let what = match &self.runs_as {
            RunsAs::HostProcess => "a host process".to_string(),
            RunsAs::Container { pod_uid: Some(u) } => format!("a container of pod {u}"),
            RunsAs::Container { pod_uid: None } => "a container".to_string(),
            RunsAs::InProcess { product } => format!("inside {product}"),
        };
        format!("pid {} ({what})", self.info.pid)
    }
}

/// The processes of interest found by the last full scan, kept between observations (the
/// agent's [`Observer`](super::Observer) holds one) so that an evaluation does not read every
/// `/proc/<pid>/cmdline`: within [`RESCAN_EVERY`](super::discovery::RESCAN_EVERY) of a full
/// scan the remembered pids are re-read (same pid, same start time, same kind), as kubelet
/// discovery does; any change, and every `RESCAN_EVERY`, makes a full scan.
#[derive(Debug, Default)]
pub struct Cache {
    /// `(pid, start time)` of every kube-proxy and Cilium candidate of the last scan.
    pids: Vec<(i32, Option<u64>)>,
    last_scan: Option<std::time::Instant>,
}

/// The candidates of a full `/proc` scan, remembered in `cache`.
fn scan(root: &HostRoot, cache: &mut Cache) -> Result<Vec<(ProcInfo, Kind)>, String> {
    let pids = process::list_pids(root).map_err(|e| format!("cannot list processes: {e}"))?;
    let mut found = Vec::new();
    for pid in pids {
        let Ok(info) = process::read_proc(root, pid) else {
            continue;
        };
        if let Some(k) = classify(&info) {
            found.push((info, k));
        }
    }
    cache.pids = found
        .iter()
        .map(|(i, _)| (i.pid, super::discovery::proc_start(root, i.pid)))
        .collect();
    cache.last_scan = Some(std::time::Instant::now());
    Ok(found)
}

/// The remembered candidates, re-read; `None` when the cache is stale or any of them has
/// gone, restarted or changed.
fn revalidate(root: &HostRoot, cache: &Cache) -> Option<Vec<(ProcInfo, Kind)>> {
    if cache
        .last_scan
        .is_none_or(|t| t.elapsed() >= super::discovery::RESCAN_EVERY)
    {
        return None;
    }
    cache
        .pids
        .iter()
        .map(|(pid, start)| {
            let info = process::read_proc(root, *pid).ok()?;
            if super::discovery::proc_start(root, *pid) != *start {
                return None;
            }
            classify(&info).map(|k| (info, k))
        })
        .collect()
}

/// Observe the node's kube-proxy with a full scan. `kubelet` gives k3s's in-process
/// kube-proxy (filled by the k3s observation when k3s runs the kubelet).
pub fn observe(root: &HostRoot, kubelet: Option<&Kubelet>) -> KubeProxyView {
    observe_cached(root, kubelet, &mut Cache::default())
}

/// [`observe`], reusing `cache` while it is valid.
pub fn observe_cached(
    root: &HostRoot,
    kubelet: Option<&Kubelet>,
    cache: &mut Cache,
) -> KubeProxyView {
    let host = Host::read(root);
    let seen = match revalidate(root, cache) {
        Some(f) => f,
        None => match scan(root, cache) {
            Ok(f) => f,
            Err(reason) => return KubeProxyView::Unknown { reason },
        },
    };
    let mut proxies = Vec::new();
    let mut cilium = Vec::new();
    for (info, kind) in seen {
        match kind {
            Kind::KubeProxy(_) => proxies.push(Candidate::assess(&host, info, kind)),
            Kind::Cilium => cilium.push(Candidate::assess(&host, info, kind)),
        }
    }
    let (mut credible, other): (Vec<Candidate>, Vec<Candidate>) =
        proxies.into_iter().partition(|c| c.host_net.is_ok());
    match credible.len() {
        1 => {
            let c = credible.into_iter().next();
            if let Some(c) = c {
                return KubeProxyView::Found {
                    proxy: Box::new(found(&host, c)),
                };
            }
        }
        0 => {}
        n => {
            // Prefer the live socket: the one candidate that owns a listener on kube-proxy's
            // metrics or healthz port (10249, 10256) in the host's network namespace.
            let owners: Vec<usize> = credible
                .iter()
                .enumerate()
                .filter(|(_, c)| {
                    net::owned_listeners(root, c.info.pid).is_some_and(|l| {
                        l.iter()
                            .any(|l| l.port == kp::METRICS_PORT || l.port == HEALTHZ_PORT)
                    })
                })
                .map(|(i, _)| i)
                .collect();
            if let [only] = owners[..] {
                let others: Vec<String> = credible
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != only)
                    .map(|(_, c)| c.describe())
                    .collect();
                let c = credible.swap_remove(only);
                let mut p = found(&host, c);
                p.evidence.push(format!(
                    "chosen among {n} candidates as the only one owning a listener on port {} or {HEALTHZ_PORT} (set aside: {})",
                    kp::METRICS_PORT,
                    others.join(", ")
                ));
                return KubeProxyView::Found { proxy: Box::new(p) };
            }
            let pids: Vec<String> = credible.iter().map(Candidate::describe).collect();
            return KubeProxyView::Unknown {
                reason: format!(
                    "several processes in the host's network namespace look like kube-proxy: {}",
                    pids.join(", ")
                ),
            };
        }
    }
    if let Some(view) = kubelet.and_then(|k| in_process(root, k)) {
        return view;
    }
    if !other.is_empty() {
        let why: Vec<String> = other
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c.describe(),
                    c.host_net.as_ref().err().cloned().unwrap_or_default()
                )
            })
            .collect();
        return KubeProxyView::Unknown {
            reason: format!(
                "a process named kube-proxy whose identity is not established: {}",
                why.join("; ")
            ),
        };
    }
    if let Some(reason) = cilium
        .iter()
        .filter(|c| c.host_net.is_ok())
        .find_map(|c| cilium_replacement(&host, c))
    {
        return KubeProxyView::Absent { reason };
    }
    let expected = STATIC_MANIFESTS
        .iter()
        .find(|p| root.metadata(p).is_ok())
        .map(|p| format!("the static pod manifest {p} exists"));
    let reason = if host.live {
        "no kube-proxy process in /proc".to_string()
    } else {
        "no kube-proxy process in the host tree's /proc (a tree on disk, not a live host)"
            .to_string()
    };
    KubeProxyView::NotSeen { reason, expected }
}

/// Cilium's `kube-proxy-replacement` (its ConfigMap, mounted at `--config-dir`, one file
/// per key; `cilium-config` sets it to `true` — `strict` before Cilium 1.14): `Some`
/// evidence when Cilium replaces kube-proxy.
fn cilium_replacement(host: &Host, c: &Candidate) -> Option<String> {
    let flags = Flags::parse(c.info.argv.get(1..).unwrap_or(&[]));
    let dir = flags
        .last("config-dir")
        .map(str::trim)
        .filter(|d| !d.is_empty())?;
    let file = host_join(dir, "kube-proxy-replacement");
    let on_host = c.to_host(host, &file).ok()?;
    let bytes = host.root.read_capped(&on_host, CILIUM_VALUE_CAP).ok()?;
    let value = String::from_utf8_lossy(&bytes).trim().to_string();
    matches!(value.as_str(), "true" | "strict").then(|| {
        format!(
            "no kube-proxy on this node: replaced by Cilium (kube-proxy-replacement={value} in {on_host}, cilium-agent {})",
            c.describe()
        )
    })
}

/// k3s's in-process kube-proxy (`Kubelet.k3s.kube_proxy`, pkg/daemons/agent
/// `startKubeProxy`), or its positive absence (`disable-kube-proxy`).
fn in_process(root: &HostRoot, k: &Kubelet) -> Option<KubeProxyView> {
    if k.flavour == KubeletFlavour::Kubelite {
        return kubelite(root, k);
    }
    let k3s = k.k3s.as_ref()?;
    let proxy = k3s.kube_proxy.as_ref()?;
    let product = k3s.product.as_str();
    if let Some(why) = &proxy.disabled {
        return Some(KubeProxyView::Absent {
            reason: format!("no kube-proxy on this node: disabled in {product} ({why})"),
        });
    }
    if k3s.product != crate::model::k3s::Product::K3s {
        // RKE2 runs kube-proxy as a static pod: a process the scan would have found.
        return None;
    }
    let args: Vec<String> = proxy.args.iter().map(|a| format!("--{a}")).collect();
    let flags = Flags::parse(&args);
    let host = Host::read(root);
    let c = Candidate {
        info: ProcInfo {
            pid: k.pid,
            argv: Vec::new(),
            exe: None,
            lossy: false,
        },
        kind: Kind::KubeProxy(0),
        host_net: Ok(format!(
            "{product} runs kube-proxy in its own process (pid {}), the node's kubelet",
            k.pid
        )),
        runs_as: RunsAs::InProcess {
            product: product.to_string(),
        },
        map: PathMap::Identity,
    };
    let mut p = build(&host, &c, flags, proxy.origins.clone());
    // k3s's process also holds the kubelet's sockets: keep the metrics port only.
    if let Some(l) = p.listeners.as_mut() {
        l.retain(|(_, port)| *port == kp::METRICS_PORT);
    }
    Some(KubeProxyView::Found { proxy: Box::new(p) })
}

/// MicroK8s runs kube-proxy inside `kubelite`, with its flags in `--proxy-args-file`
/// (canonical/microk8s `microk8s-resources/default-args/kube-proxy`, `${SNAP_DATA}`
/// expanded as kubelite does: `flags::args_file_words`). kubelite is a host process (a
/// classic snap): its paths are host paths.
fn kubelite(root: &HostRoot, k: &Kubelet) -> Option<KubeProxyView> {
    let own = process::read_proc(root, k.pid).ok()?;
    let flags = Flags::parse(own.argv.get(1..).unwrap_or(&[]));
    let path = flags
        .last("proxy-args-file")
        .map(str::trim)
        .filter(|p| !p.is_empty())?
        .to_string();
    let text = match root
        .read_capped(&path, CONFIG_CAP)
        .map_err(|e| e.to_string())
        .and_then(|b| String::from_utf8(b).map_err(|_| format!("{path}: not valid UTF-8")))
    {
        Ok(t) => t,
        Err(e) => {
            return Some(KubeProxyView::Unknown {
                reason: format!(
                    "MicroK8s runs kube-proxy in kubelite (pid {}), but its --proxy-args-file cannot be read: {e}",
                    k.pid
                ),
            })
        }
    };
    let proxy_flags = Flags::parse(&args_file_words(&text));
    let host = Host::read(root);
    let c = Candidate {
        info: own,
        kind: Kind::KubeProxy(0),
        host_net: Ok(format!(
            "MicroK8s runs kube-proxy in kubelite (pid {}), the node's kubelet, with the flags of {path}",
            k.pid
        )),
        runs_as: RunsAs::InProcess {
            product: "kubelite".to_string(),
        },
        map: PathMap::Identity,
    };
    let mut p = build(&host, &c, proxy_flags, Vec::new());
    // kubelite's process also holds the kubelet's and the API server's sockets.
    if let Some(l) = p.listeners.as_mut() {
        l.retain(|(_, port)| *port == kp::METRICS_PORT);
    }
    Some(KubeProxyView::Found { proxy: Box::new(p) })
}

fn found(host: &Host, c: Candidate) -> KubeProxy {
    let start = match c.kind {
        Kind::KubeProxy(i) => i,
        Kind::Cilium => 1,
    };
    let flags = Flags::parse(c.info.argv.get(start..).unwrap_or(&[]));
    build(host, &c, flags, Vec::new())
}

fn build(
    host: &Host,
    c: &Candidate,
    flags: Flags,
    origins: Vec<crate::model::flag_origin::FlagOrigin>,
) -> KubeProxy {
    let mut evidence = Vec::new();
    if let Ok(e) = &c.host_net {
        evidence.push(e.clone());
    }
    match &c.runs_as {
        RunsAs::HostProcess => {
            evidence.push("in the host's mount namespace: its paths are host paths".to_string());
        }
        RunsAs::Container { pod_uid } => evidence.push(format!(
            "a container{}: its paths are mapped to host paths through /proc/{}/mountinfo",
            pod_uid
                .as_ref()
                .map(|u| format!(" of pod {u}"))
                .unwrap_or_default(),
            c.info.pid
        )),
        RunsAs::InProcess { .. } => {}
    }
    let config = flags
        .last("config")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|path| {
            let host_path = c.to_host(host, path);
            let values = match &host_path {
                Ok(hp) => host
                    .root
                    .read_capped(hp, CONFIG_CAP)
                    .map_err(|e| e.to_string())
                    .and_then(|b| {
                        String::from_utf8(b).map_err(|_| format!("{hp}: not valid UTF-8"))
                    })
                    .and_then(|t| kp::parse_config(&t).map_err(|e| format!("{hp}: {e}"))),
                Err(e) => Err(e.clone()),
            };
            ProxyConfigFile {
                path: path.to_string(),
                host_path,
                values,
            }
        });
    let kubeconfig =
        kp::kubeconfig_path(&flags, &origins, config.as_ref().map(|c| &c.values)).map(|k| {
            k.map(|(path, source)| ProxyKubeconfig {
                host_path: c.to_host(host, &path),
                path,
                source,
            })
        });
    let mut files = Vec::new();
    if let Ok(Some(k)) = &kubeconfig {
        if let Ok(hp) = &k.host_path {
            files.push(FileObservation {
                role: FileRole::ProxyKubeconfig,
                path: hp.clone(),
                meta: host.root.metadata(hp).map_err(ObsError::from),
            });
        }
    }
    let listeners = net::owned_listeners(host.root, c.info.pid).map(|l| {
        l.into_iter()
            .map(|l| (l.address, l.port))
            .collect::<Vec<_>>()
    });
    if let Some(l) = &listeners {
        evidence.push(format!("owns {} listening TCP socket(s)", l.len()));
    }
    KubeProxy {
        pid: c.info.pid,
        runs_as: c.runs_as.clone(),
        flags,
        origins,
        evidence,
        config,
        kubeconfig,
        files,
        listeners,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(argv: &[&str], exe: Option<&str>) -> ProcInfo {
        ProcInfo {
            pid: 7,
            argv: argv.iter().map(ToString::to_string).collect(),
            exe: exe.map(str::to_string),
            lossy: false,
        }
    }

    use std::os::unix::fs::symlink;
    use std::path::Path;

    const HOST_NET: &str = "net:[4026531992]";

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn ln(root: &Path, rel: &str, target: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        symlink(target, p).unwrap();
    }

    /// A process `pid` with `argv`; `net` is its network namespace link.
    fn process(root: &Path, pid: i32, argv: &[&str], net: &str, mnt: &str) {
        put(
            root,
            &format!("proc/{pid}/cmdline"),
            &(argv.join("\0") + "\0"),
        );
        ln(root, &format!("proc/{pid}/ns/net"), net);
        ln(root, &format!("proc/{pid}/ns/mnt"), mnt);
    }

    fn host() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        put(root, "proc/1/cmdline", "/sbin/init\0");
        ln(root, "proc/1/ns/net", HOST_NET);
        ln(root, "proc/1/ns/mnt", "mnt:[4026531840]");
        put(
            root,
            "proc/1/mountinfo",
            "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n",
        );
        dir
    }

    fn view(dir: &tempfile::TempDir) -> KubeProxyView {
        let h = HostRoot::new(dir.path()).unwrap();
        observe(&h, None)
    }

    #[test]
    fn a_pod_named_kube_proxy_without_host_network_is_not_taken() {
        let dir = host();
        process(
            dir.path(),
            300,
            &["kube-proxy", "--metrics-bind-address=0.0.0.0"],
            "net:[4026532999]",
            "mnt:[4026532401]",
        );
        match view(&dir) {
            KubeProxyView::Unknown { reason } => {
                assert!(reason.contains("identity is not established"), "{reason}");
                assert!(
                    reason.contains("not in the host's network namespace"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn two_candidates_in_the_host_network_are_unknown() {
        let dir = host();
        for pid in [300, 301] {
            process(
                dir.path(),
                pid,
                &["/usr/local/bin/kube-proxy"],
                HOST_NET,
                "mnt:[4026531840]",
            );
        }
        match view(&dir) {
            KubeProxyView::Unknown { reason } => {
                assert!(reason.contains("several processes"), "{reason}");
                assert!(
                    reason.contains("pid 300") && reason.contains("pid 301"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn among_candidates_the_one_owning_the_ports_is_taken() {
        let dir = host();
        let root = dir.path();
        for pid in [300, 301] {
            process(
                root,
                pid,
                &["/usr/local/bin/kube-proxy"],
                HOST_NET,
                "mnt:[4026531840]",
            );
            put(
                root,
                &format!("proc/{pid}/net/tcp"),
                "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2809 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 52011 1 0000000000000000 100 0 0 10 0\n",
            );
        }
        ln(root, "proc/301/fd/3", "socket:[52011]");
        ln(root, "proc/300/fd/0", "/dev/null");
        match view(&dir) {
            KubeProxyView::Found { proxy } => {
                assert_eq!(proxy.pid, 301);
                let e = proxy.evidence.join("; ");
                assert!(e.contains("chosen among 2 candidates"), "{e}");
                assert!(e.contains("pid 300"), "{e}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn hostile_config_files_are_errors_without_content() {
        let dir = host();
        let root = dir.path();
        process(
            root,
            300,
            &["kube-proxy", "--config=/etc/kp/config.conf"],
            HOST_NET,
            "mnt:[4026531840]",
        );
        // A config that is not a KubeProxyConfiguration, holding a secret-looking value.
        put(
            root,
            "etc/kp/config.conf",
            "kind: Secret\ntoken: hunter2-secret\n",
        );
        let KubeProxyView::Found { proxy } = view(&dir) else {
            panic!("not found")
        };
        let err = proxy.config.as_ref().unwrap().values.clone().unwrap_err();
        assert!(!err.contains("hunter2"), "{err}");
        assert!(proxy.kubeconfig.is_err(), "undecidable without the config");
        // A FIFO is refused, never opened for reading (the observation would block).
        std::fs::remove_file(root.join("etc/kp/config.conf")).unwrap();
        crate::io::host::make_fifo(&root.join("etc/kp/config.conf"));
        let KubeProxyView::Found { proxy } = view(&dir) else {
            panic!("not found")
        };
        assert!(proxy.config.as_ref().unwrap().values.is_err());
        // A symlink out of the root stays inside it.
        std::fs::remove_file(root.join("etc/kp/config.conf")).unwrap();
        ln(root, "etc/kp/config.conf", "../../../../../../etc/passwd");
        let KubeProxyView::Found { proxy } = view(&dir) else {
            panic!("not found")
        };
        let e = proxy.config.as_ref().unwrap().values.clone().unwrap_err();
        assert!(e.contains("not found"), "{e}");
    }

    #[test]
    fn container_paths_map_through_mountinfo_and_image_files_are_not_node_files() {
        let dir = host();
        let root = dir.path();
        process(
            root,
            300,
            &["kube-proxy", "--kubeconfig=/var/lib/kube-proxy/kubeconfig"],
            HOST_NET,
            "mnt:[4026532401]",
        );
        put(
            root,
            "proc/300/mountinfo",
            "1 0 0:312 / / rw - overlay overlay rw\n2 1 8:1 /srv/kp /var/lib/kube-proxy ro - ext4 /dev/sda1 rw\n",
        );
        put(root, "srv/kp/kubeconfig", "apiVersion: v1\nkind: Config\n");
        let KubeProxyView::Found { proxy } = view(&dir) else {
            panic!("not found")
        };
        assert_eq!(proxy.files.len(), 1);
        assert_eq!(proxy.files[0].path, "/srv/kp/kubeconfig");
        assert!(proxy.files[0].meta.is_ok());
        // The same path in the image: no node file.
        put(
            root,
            "proc/300/mountinfo",
            "1 0 0:312 / / rw - overlay overlay rw\n",
        );
        let KubeProxyView::Found { proxy } = view(&dir) else {
            panic!("not found")
        };
        assert!(proxy.files.is_empty());
        let k = proxy.kubeconfig.clone().unwrap().unwrap();
        assert!(k.host_path.unwrap_err().contains("own root filesystem"));
    }

    #[test]
    fn absence_and_static_manifests() {
        let dir = host();
        match view(&dir) {
            KubeProxyView::NotSeen { expected: None, .. } => {}
            other => panic!("{other:?}"),
        }
        put(
            dir.path(),
            "etc/kubernetes/manifests/kube-proxy.manifest",
            "apiVersion: v1\nkind: Pod\n",
        );
        match view(&dir) {
            KubeProxyView::NotSeen {
                expected: Some(e), ..
            } => assert!(e.contains("kube-proxy.manifest"), "{e}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn k3s_in_process_kube_proxy_and_its_disabling() {
        use crate::model::flag_origin::{FlagOrigin, OriginHow};
        use crate::model::k3s::{K3sKubeProxy, K3sKubelet, Product};
        let dir = host();
        put(
            dir.path(),
            "var/lib/rancher/k3s/agent/kubeproxy.kubeconfig",
            "apiVersion: v1\nkind: Config\n",
        );
        let h = HostRoot::new(dir.path()).unwrap();
        let mut snap = crate::model::testing::snapshot_with(&[], None);
        let k = crate::model::testing::kubelet_mut(&mut snap);
        let origin = |flag: &str, value: &str, how| FlagOrigin {
            flag: flag.to_string(),
            value: value.to_string(),
            file: "/etc/rancher/k3s/config.yaml".to_string(),
            line: 3,
            how,
        };
        k.k3s = Some(K3sKubelet {
            product: Product::K3s,
            config_file: "/etc/rancher/k3s/config.yaml".into(),
            origins: Vec::new(),
            version: None,
            notes: Vec::new(),
            rebuild: None,
            kube_proxy: Some(K3sKubeProxy {
                args: vec![
                    "proxy-mode=iptables".into(),
                    "kubeconfig=/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig".into(),
                    "metrics-bind-address=0.0.0.0".into(),
                ],
                origins: vec![
                    origin(
                        "kubeconfig",
                        "/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig",
                        OriginHow::K3sDefault,
                    ),
                    origin("metrics-bind-address", "0.0.0.0", OriginHow::K3sConfigArg),
                ],
                disabled: None,
            }),
        });
        let KubeProxyView::Found { proxy } = observe(&h, snap.kubelet.as_ref()) else {
            panic!("not found")
        };
        assert_eq!(proxy.pid, 4242);
        assert!(matches!(proxy.runs_as, RunsAs::InProcess { .. }));
        assert_eq!(
            proxy.files[0].path,
            "/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig"
        );
        let m = kp::effective_metrics(&proxy.flags, &proxy.origins, None).unwrap();
        assert_eq!(m.address.as_deref(), Some("0.0.0.0:10249"));
        assert_eq!(m.source, "config.yaml");
        let k = proxy.kubeconfig.clone().unwrap().unwrap();
        assert_eq!(k.source, "k3s default");
        // disable-kube-proxy: positive evidence of absence.
        if let Some(k3s) = crate::model::testing::kubelet_mut(&mut snap).k3s.as_mut() {
            if let Some(p) = k3s.kube_proxy.as_mut() {
                p.disabled =
                    Some("disable-kube-proxy: true in /etc/rancher/k3s/config.yaml".into());
            }
        }
        match observe(&h, snap.kubelet.as_ref()) {
            KubeProxyView::Absent { reason } => {
                assert!(reason.contains("disabled in k3s"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_cache_is_revalidated_and_a_gone_process_rescanned() {
        let dir = host();
        process(
            dir.path(),
            300,
            &["kube-proxy"],
            HOST_NET,
            "mnt:[4026531840]",
        );
        let h = HostRoot::new(dir.path()).unwrap();
        let mut cache = Cache::default();
        assert!(matches!(
            observe_cached(&h, None, &mut cache),
            KubeProxyView::Found { .. }
        ));
        assert_eq!(cache.pids.len(), 1);
        // Cached: the same answer from the remembered pid.
        assert!(matches!(
            observe_cached(&h, None, &mut cache),
            KubeProxyView::Found { .. }
        ));
        std::fs::remove_dir_all(dir.path().join("proc/300")).unwrap();
        assert!(matches!(
            observe_cached(&h, None, &mut cache),
            KubeProxyView::NotSeen { .. }
        ));
        assert!(cache.pids.is_empty());
    }

    #[test]
    fn classify_by_program_name_only() {
        assert_eq!(
            classify(&info(&["/usr/local/bin/kube-proxy", "--config=x"], None)),
            Some(Kind::KubeProxy(1))
        );
        assert_eq!(
            classify(&info(&["hyperkube", "proxy", "--v=2"], None)),
            Some(Kind::KubeProxy(2))
        );
        // EKS's shell wrapper names kube-proxy in a later word only.
        assert_eq!(
            classify(&info(
                &["/bin/sh", "-c", "kube-proxy --v=2"],
                Some("/bin/dash")
            )),
            None
        );
        assert_eq!(
            classify(&info(&["grep", "kube-proxy"], Some("/usr/bin/grep"))),
            None
        );
        assert_eq!(
            classify(&info(
                &["cilium-agent", "--config-dir=/tmp/cilium/config-map"],
                None
            )),
            Some(Kind::Cilium)
        );
    }
}
