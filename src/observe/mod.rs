//! Observe: host I/O under `--host-root`, producing a [`Snapshot`].
//!
//! Every step is recorded as a probe (`kubelet_sentinel_probe_success{probe}`), and a
//! failing step only makes the facts it would have produced unknown: the rest goes on.

pub mod buildinfo;
pub mod cluster;
pub mod enrich;
pub mod identity;
pub mod kubeconfig;
pub mod live;
pub mod net;
pub mod process;
pub mod running_config;
pub mod version;
pub mod watch;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::io::host::{host_dirname, host_join, HostRoot};

use crate::model::cert as certs;
use crate::model::file::FileKind;
use crate::model::kubelet_config::flags::Flags;
use crate::model::kubelet_config::{flags, loading};
use crate::model::kubelet_config::{ConfigInput, EffectiveConfig, Lookup, Source};
use crate::model::snapshot::{
    ApiServer, Credential, Discovery, FileObservation, FileRole, Kubelet, ObsError, ObsErrorKind,
    ProbeRecord, Snapshot,
};
use process::{KubeletKind, ProcInfo};

/// Options for one observation.
#[derive(Debug, Clone, Default)]
pub struct ObserveOptions {
    /// The node name to report (`--node-name`/`NODE_NAME`); default: the host's hostname.
    pub node_name: Option<String>,
    /// Pin the kubelet to this pid (`--kubelet-pid`).
    pub kubelet_pid: Option<i32>,
}

/// Limits on walking `--config-dir` (the kubelet has none; we must not hang on a
/// pathological tree).
const MAX_DROPIN_DEPTH: usize = 16;
const MAX_DROPIN_FILES: usize = 256;

/// The default `--cert-dir` (cmd/kubelet/app/options/options.go `NewKubeletFlags`).
const DEFAULT_CERT_DIR: &str = "/var/lib/kubelet/pki";

/// systemd unit search path, in precedence order (systemd.unit(5)).
const UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/system",
    "/usr/local/lib/systemd/system",
    "/usr/lib/systemd/system",
    "/lib/systemd/system",
];

struct Probes(Vec<ProbeRecord>);

impl Probes {
    fn record<T, E: std::fmt::Display>(
        &mut self,
        name: &'static str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let start = Instant::now();
        let r = f();
        self.0.push(ProbeRecord {
            name,
            success: r.is_ok(),
            duration: start.elapsed(),
            error: r.as_ref().err().map(|e| e.to_string()),
        });
        r
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The node name: explicit, else the host's `/etc/hostname`, else this machine's hostname.
pub fn node_name(host: &HostRoot, explicit: Option<&str>) -> String {
    if let Some(n) = explicit.filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    if let Ok(text) = host.read_capped("/etc/hostname", 4096) {
        let name = String::from_utf8_lossy(&text);
        if let Some(first) = name
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
        {
            return first.to_string();
        }
    }
    if let Ok(text) = host.read_capped("/proc/sys/kernel/hostname", 4096) {
        let name = String::from_utf8_lossy(&text).trim().to_string();
        if !name.is_empty() {
            return name;
        }
    }
    "unknown".to_string()
}

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
struct Cache {
    kubelet: Option<CachedProc>,
    kubelet_note: Option<String>,
    kubelet_evidence: Vec<String>,
    apiserver: Option<CachedProc>,
    last_scan: Option<Instant>,
}

/// A long-lived observer (the agent keeps one; `check` uses [`observe`]).
#[derive(Debug)]
pub struct Observer {
    host: HostRoot,
    opts: ObserveOptions,
    cache: Cache,
    /// The TLS scans and the kubelet's version, kept for the same kubelet process.
    scans: live::ScanCache,
    /// The running configuration, kept for the same kubelet process.
    configz: running_config::ConfigzCache,
}

impl Observer {
    pub fn new(host: HostRoot, opts: ObserveOptions) -> Self {
        Observer {
            host,
            opts,
            cache: Cache::default(),
            scans: live::ScanCache::default(),
            configz: running_config::ConfigzCache::default(),
        }
    }

    pub fn host(&self) -> &HostRoot {
        &self.host
    }

    /// Observe the host, reusing the cached discovery while it is still valid.
    pub fn observe(&mut self) -> Snapshot {
        observe_with(&self.host, &self.opts, &mut self.cache)
    }
}

/// Observe the host once (a full discovery scan).
pub fn observe(host: &HostRoot, opts: &ObserveOptions) -> Snapshot {
    observe_with(host, opts, &mut Cache::default())
}

fn observe_with(host: &HostRoot, opts: &ObserveOptions, cache: &mut Cache) -> Snapshot {
    let taken_at = now_unix();
    let mut probes = Probes(Vec::new());
    let node = node_name(host, opts.node_name.as_deref());

    // 1. process discovery.
    let mut apiserver_info: Option<ProcInfo> = None;
    let found = probes.record("process", || {
        discover(host, opts.kubelet_pid, cache, &mut apiserver_info)
    });
    let (discovery, chosen) = match found {
        Ok((d, c)) => (d, c),
        Err(reason) => (Discovery::Failed { reason }, None),
    };

    let kubelite = chosen
        .as_ref()
        .filter(|(_, kind)| *kind == KubeletKind::Kubelite)
        .map(|(info, _)| info.clone());
    let apiserver = probes
        .record("apiserver", || match (apiserver_info, kubelite) {
            (Some(p), _) => Ok(Some(apiserver_from_flags(
                p.pid,
                Flags::parse(p.argv.get(1..).unwrap_or(&[])),
                host,
            ))),
            (None, Some(k)) => kubelite_apiserver(host, &k),
            (None, None) => Ok(None),
        })
        .ok()
        .flatten();

    let mut discovery = discovery;
    let kubelet = match chosen {
        Some((info, kind)) => match observe_kubelet(host, info, kind, &mut probes) {
            Ok(k) => Some(k),
            Err(reason) => {
                discovery = Discovery::Failed { reason };
                None
            }
        },
        None => None,
    };

    Snapshot {
        node,
        taken_at,
        discovery,
        kubelet,
        apiserver,
        probes: probes.0,
        live: None,
        cluster: None,
        running_config: None,
    }
}

type Chosen = Option<(ProcInfo, KubeletKind)>;

/// MicroK8s' kubelite runs the kube-apiserver in the same process, with its flags in
/// `--apiserver-args-file` (canonical/microk8s microk8s-resources/default-args/kubelite). No
/// such flag: no apiserver here.
fn kubelite_apiserver(host: &HostRoot, kubelite: &ProcInfo) -> Result<Option<ApiServer>, String> {
    let own = Flags::parse(kubelite.argv.get(1..).unwrap_or(&[]));
    let Some(path) = own.string("apiserver-args-file").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let text = host
        .read_to_string(&path)
        .map_err(|e| format!("kubelite apiserver args file: {e}"))?;
    Ok(Some(apiserver_from_flags(
        kubelite.pid,
        Flags::parse(&flags::args_file_words(&text)),
        host,
    )))
}

fn proc_start(host: &HostRoot, pid: i32) -> Option<u64> {
    process::read_small(host, pid, "stat")
        .ok()
        .and_then(|s| process::start_time_from_stat(&s))
}

/// Re-read a cached process; `None` when it is gone, restarted (new start time) or no
/// longer of the wanted kind.
fn revalidate(
    host: &HostRoot,
    cached: &CachedProc,
    want: impl Fn(Option<KubeletKind>) -> bool,
) -> Option<(ProcInfo, Option<KubeletKind>)> {
    let info = process::read_proc(host, cached.pid).ok()?;
    if proc_start(host, cached.pid) != cached.start {
        return None;
    }
    let kind = process::classify(&info.argv, info.exe.as_deref());
    want(kind).then_some((info, kind))
}

fn is_kubelet(k: Option<KubeletKind>) -> bool {
    matches!(
        k,
        Some(KubeletKind::Kubelet | KubeletKind::Hyperkube | KubeletKind::Kubelite)
    )
}

fn discover(
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
            Some(c) => match revalidate(host, c, |k| k == Some(KubeletKind::ApiServer)) {
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
                    k != Some(KubeletKind::K3s)
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
    if scan.kubelets.is_empty() && scan.oversized.is_empty() {
        cache.kubelet = None;
        if let Some(k3s) = scan.k3s.first() {
            return Ok((
                Discovery::Unsupported {
                    pid: k3s.pid,
                    reason: k3s_reason(k3s.pid),
                },
                None,
            ));
        }
        return Ok((
            Discovery::NotFound {
                reason: "no kubelet process found".to_string(),
            },
            None,
        ));
    }
    let (discovery, chosen) = choose(host, &facts, scan.kubelets, scan.oversized);
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
    kubelets: Vec<(ProcInfo, KubeletKind)>,
    oversized: Vec<ProcInfo>,
) -> (Discovery, Chosen) {
    let cap_kib = process::cmdline_cap() / 1024;
    let mut judged: Vec<(identity::Assessment, Option<(ProcInfo, KubeletKind)>)> = kubelets
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

/// `--kubelet-pid`: that process is the kubelet, whatever its name (a k3s process is
/// still reported as unsupported). The operator's explicit choice: the identity checks are
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
    let kind = match process::classify(&info.argv, info.exe.as_deref()) {
        Some(KubeletKind::K3s) => {
            return Ok((
                Discovery::Unsupported {
                    pid,
                    reason: k3s_reason(pid),
                },
                None,
            ))
        }
        k => kubelet_kind(k),
    };
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
fn kubelet_kind(kind: Option<KubeletKind>) -> KubeletKind {
    match kind {
        Some(k @ (KubeletKind::Kubelet | KubeletKind::Hyperkube | KubeletKind::Kubelite)) => k,
        _ => KubeletKind::Kubelet,
    }
}

fn k3s_reason(pid: i32) -> String {
    format!(
        "k3s detected (pid {pid}): its kubelet runs inside the k3s process and its flags are only in the journal; not supported yet"
    )
}

fn obs_err(e: crate::model::file::HostError) -> ObsError {
    ObsError::from(e)
}

fn observe_kubelet(
    host: &HostRoot,
    info: ProcInfo,
    kind: KubeletKind,
    probes: &mut Probes,
) -> Result<Kubelet, String> {
    let pid = info.pid;
    let mut files: Vec<FileObservation> = Vec::new();

    // 2. flags (MicroK8s keeps them in an args file).
    let flags = probes.record("flags", || {
        let args: Vec<String> = match kind {
            KubeletKind::Hyperkube => info.argv.get(2..).unwrap_or(&[]).to_vec(),
            KubeletKind::Kubelite => {
                let own = Flags::parse(info.argv.get(1..).unwrap_or(&[]));
                let path = own
                    .string("kubelet-args-file")
                    .unwrap_or_else(|| "/var/snap/microk8s/current/args/kubelet".to_string());
                files.push(FileObservation {
                    role: FileRole::ArgsFile,
                    path: path.clone(),
                    meta: host.metadata(&path).map_err(obs_err),
                });
                let text = host
                    .read_to_string(&path)
                    .map_err(|e| format!("kubelite args file: {e}"))?;
                flags::args_file_words(&text)
            }
            _ => info.argv.get(1..).unwrap_or(&[]).to_vec(),
        };
        Ok::<_, String>(Flags::parse(&args))
    })?;
    if info.lossy {
        tracing::warn!(
            pid,
            "kubelet command line has non-UTF-8 bytes; replaced with U+FFFD"
        );
    }

    // Relative paths on the command line are relative to the kubelet's working directory
    // (`filepath.Abs` in loadConfigFile); `/proc/<pid>/cwd` tells it, `/` otherwise.
    let cwd = host
        .read_link(&format!("/proc/{pid}/cwd"))
        .ok()
        .filter(|c| c.starts_with('/'))
        .unwrap_or_else(|| "/".to_string());
    let flag_path = |name: &str| {
        flags
            .string(name)
            .filter(|s| !s.is_empty())
            .map(|p| host_join(&cwd, &p))
    };

    // 3. effective configuration.
    let config_file = flag_path("config");
    let config_dir = flag_path("config-dir");
    let cfg = {
        let mut cfg_out = None;
        let _ = probes.record("config", || {
            let main = config_file.as_ref().map(|p| {
                files.push(FileObservation {
                    role: FileRole::ConfigFile,
                    path: p.clone(),
                    meta: host.metadata(p).map_err(obs_err),
                });
                ConfigInput {
                    path: p.clone(),
                    text: host
                        .read_to_string(p)
                        .map_err(|e| with_consumed_value_note(e.to_string(), &flags, "config")),
                }
            });
            let mut dropin_note = None;
            let (dropins, dir_err) = match &config_dir {
                Some(d) => match walk_dropins_recording(host, d, &mut files) {
                    Ok(walked) => {
                        dropin_note = walked.note;
                        let inputs = walked
                            .files
                            .into_iter()
                            .map(|p| {
                                files.push(FileObservation {
                                    role: FileRole::DropIn,
                                    path: p.clone(),
                                    meta: host.metadata(&p).map_err(obs_err),
                                });
                                let text = host.read_to_string(&p).map_err(|e| e.to_string());
                                ConfigInput { path: p, text }
                            })
                            .collect();
                        (inputs, None)
                    }
                    Err(e) => (Vec::new(), Some(format!("--config-dir {d}: {e}"))),
                },
                None => (Vec::new(), None),
            };
            let mut cfg =
                EffectiveConfig::build(flags.clone(), main, config_dir.clone(), dropins, dir_err);
            cfg.dropin_note = dropin_note;
            let result = if cfg.errors.is_empty() {
                Ok(())
            } else {
                Err(cfg.errors.join("; "))
            };
            cfg_out = Some(cfg);
            result
        });
        match cfg_out {
            Some(c) => c,
            None => EffectiveConfig::build(flags.clone(), None, None, Vec::new(), None),
        }
    };
    if let Some(e) = probes.0.last().and_then(|p| p.error.clone()) {
        tracing::warn!(pid, error = %e, "kubelet configuration could not be fully read");
    }

    // 4. credential in the kubeconfig.
    let kubeconfig = flag_path("kubeconfig");
    let credential = kubeconfig.as_ref().map(|path| {
        files.push(FileObservation {
            role: FileRole::Kubeconfig,
            path: path.clone(),
            meta: host.metadata(path).map_err(obs_err),
        });
        probes.record("kubeconfig", || read_credential(host, path, &mut files))
    });

    // 5. client CA.
    let client_ca = match cfg.get("authentication.x509.clientCAFile") {
        Lookup::Known(s) => match s.value.as_str().filter(|v| !v.is_empty()) {
            Some(p) => {
                let path = config_relative(p, &cwd);
                files.push(FileObservation {
                    role: FileRole::ClientCa,
                    path: path.clone(),
                    meta: host.metadata(&path).map_err(obs_err),
                });
                Some(probes.record("client_ca", || {
                    host.read(&path)
                        .map_err(obs_err)
                        .and_then(|b| certs::summarize_pem(&b))
                }))
            }
            None => None,
        },
        Lookup::Unknown { .. } => None,
    };

    // 6. serving certificate and key paths (cmd/kubelet/app/server.go `InitializeTLS`).
    let cert_dir = flag_path("cert-dir").unwrap_or_else(|| DEFAULT_CERT_DIR.to_string());
    let str_setting = |key: &str| -> Option<(String, Source)> {
        cfg.get(key).known().and_then(|s| {
            s.value
                .as_str()
                .filter(|v| !v.is_empty())
                .map(|v| (config_relative(v, &cwd), s.source.clone()))
        })
    };
    let bootstrap = cfg
        .get("serverTLSBootstrap")
        .known()
        .map(|s| s.value == Value::Bool(true));
    // When the settings that decide the serving files are themselves undecidable, no
    // path is guessed: the file controls report the configuration's reason instead.
    let decidable = bootstrap.is_some()
        && cfg.get("tlsCertFile").known().is_some()
        && cfg.get("tlsPrivateKeyFile").known().is_some();
    let (cert_path, key_path) = match (str_setting("tlsCertFile"), str_setting("tlsPrivateKeyFile"))
    {
        _ if !decidable => (None, None),
        (Some((c, _)), Some((k, _))) => (Some(c), Some(k)),
        _ if bootstrap == Some(true) => {
            let p = host_join(&cert_dir, "kubelet-server-current.pem");
            (Some(p.clone()), Some(p))
        }
        _ => (
            Some(host_join(&cert_dir, "kubelet.crt")),
            Some(host_join(&cert_dir, "kubelet.key")),
        ),
    };
    let serving_cert_file = cert_path.as_ref().map(|c| {
        host.read(c)
            .map_err(obs_err)
            .and_then(|b| certs::summarize_pem(&b))
    });
    let _ = probes.record("files", || {
        if let Some(c) = &cert_path {
            files.push(FileObservation {
                role: FileRole::ServingCert,
                path: c.clone(),
                meta: host.metadata(c).map_err(obs_err),
            });
        }
        if let Some(k) = &key_path {
            files.push(FileObservation {
                role: FileRole::ServingKey,
                path: k.clone(),
                meta: host.metadata(k).map_err(obs_err),
            });
        }
        let unreadable: Vec<String> = files
            .iter()
            .filter_map(|f| {
                f.meta
                    .as_ref()
                    .err()
                    .filter(|e| e.kind == ObsErrorKind::Unreadable)
            })
            .map(|e| e.message.clone())
            .collect();
        if unreadable.is_empty() {
            Ok(())
        } else {
            Err(unreadable.join("; "))
        }
    });

    // 7. systemd unit and its drop-ins.
    let start_time_ticks = proc_start(host, pid);
    let started_at = start_time_ticks.and_then(|t| process::start_wall_time(host, t));
    let unit = process::read_small(host, pid, "cgroup")
        .ok()
        .and_then(|s| process::unit_from_cgroup(&s));
    if let Some(u) = &unit {
        let _ = probes.record("unit_files", || {
            let found = unit_files(host, u);
            if found.is_empty() {
                Err(format!("no unit file found for {u}"))
            } else {
                files.extend(found);
                Ok(())
            }
        });
    }

    let binary = info
        .exe
        .clone()
        .unwrap_or_else(|| info.argv.first().cloned().unwrap_or_default());
    let flavour = match kind {
        KubeletKind::Hyperkube => "hyperkube",
        KubeletKind::Kubelite => "kubelite",
        _ => "kubelet",
    };
    Ok(Kubelet {
        pid,
        argv: info.argv,
        binary,
        flavour: flavour.to_string(),
        start_time_ticks,
        started_at,
        flags,
        config: cfg,
        version: None,
        version_source: None,
        version_error: None,
        serving_cert_file,
        unit,
        files,
        client_ca,
        credential,
    })
}

/// When a path flag's value is the argument after it and that argument looks like a flag
/// (`--config --v=2`), say so: pflag's `parseLongArg` gives a string flag the next argument
/// whatever it is, so the kubelet looks for a file named `--v=2`.
fn with_consumed_value_note(error: String, flags: &Flags, name: &str) -> String {
    let consumed = flags
        .occurrences
        .iter()
        .rev()
        .find(|o| o.name == name)
        .filter(|o| o.value.starts_with('-'));
    match consumed {
        Some(o) => format!(
            "{error} (--{name} has no value of its own: the kubelet's flag parsing takes the next argument {:?} as its value)",
            o.value
        ),
        None => error,
    }
}

/// A path from the configuration as the kubelet opens it. Relative paths in the
/// `--config` file were already made absolute by the model (`resolveRelativePaths`);
/// relative paths from a drop-in or a flag are opened relative to the kubelet's working
/// directory (drop-ins are loaded with `LoadIntoJSON`, which resolves nothing).
fn config_relative(path: &str, cwd: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        host_join(cwd, path)
    }
}

fn read_credential(
    host: &HostRoot,
    path: &str,
    files: &mut Vec<FileObservation>,
) -> Result<Credential, ObsError> {
    let text = host.read_to_string(path).map_err(obs_err)?;
    let source = kubeconfig::parse_credential(&text, &host_dirname(path))?;
    Ok(match source {
        kubeconfig::CredentialSource::InlineCert(pem) => Credential::ClientCertificate {
            cert: certs::summarize_pem(&pem)?,
            from: "inline".to_string(),
        },
        kubeconfig::CredentialSource::CertFile(p) => {
            files.push(FileObservation {
                role: FileRole::ClientCert,
                path: p.clone(),
                meta: host.metadata(&p).map_err(obs_err),
            });
            let pem = host.read(&p).map_err(obs_err)?;
            Credential::ClientCertificate {
                cert: certs::summarize_pem(&pem)?,
                from: p,
            }
        }
        kubeconfig::CredentialSource::Token => Credential::Token,
        kubeconfig::CredentialSource::Exec(command) => Credential::Exec { command },
        kubeconfig::CredentialSource::AuthProvider(name) => Credential::AuthProvider { name },
        kubeconfig::CredentialSource::None => Credential::None,
    })
}

/// The drop-ins found under `--config-dir`, in the order the kubelet applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropinWalk {
    pub files: Vec<String>,
    /// Why the kubelet applies none of the directory's files, when that is not obvious.
    pub note: Option<String>,
}

/// Walk `--config-dir` like the kubelet's `mergeKubeletConfigurations` does with Go's
/// `filepath.WalkDir` (cmd/kubelet/app/server.go):
/// - the root is `lstat`ed: a symlink given *without* a trailing `/` is not followed, so
///   WalkDir visits only the link itself (applied only if its own name ends in `.conf`);
///   with a trailing `/` the link is resolved and walked;
/// - entries in lexical (byte) order, recursively; an entry that is a symlink to a
///   directory is not descended;
/// - a drop-in is every non-directory whose `filepath.Ext` is `.conf` (a file named
///   exactly `.conf` counts; `.CONF` and `.conf.bak` do not);
/// - past [`MAX_DROPIN_FILES`] files or [`MAX_DROPIN_DEPTH`] levels the agent stops and
///   says so: the merged configuration is then unknown, never judged from part of it.
pub fn walk_dropins(host: &HostRoot, dir: &str) -> Result<DropinWalk, String> {
    walk_dropins_recording(host, dir, &mut Vec::new())
}

/// [`walk_dropins`], also recording every directory walked (role `config_dir`) with its
/// metadata taken *before* its entries were listed, so that the drift watch sees a
/// drop-in added or removed after the listing.
pub fn walk_dropins_recording(
    host: &HostRoot,
    dir: &str,
    dirs: &mut Vec<FileObservation>,
) -> Result<DropinWalk, String> {
    let root = if dir.ends_with('/') {
        host.metadata(dir)
    } else {
        host.symlink_metadata(dir)
    }
    .map_err(|e| e.to_string())?;
    if root.kind != FileKind::Directory {
        dirs.push(FileObservation {
            role: FileRole::ConfigDir,
            path: dir.to_string(),
            meta: Ok(root.clone()),
        });
        let name = dir.rsplit('/').next().unwrap_or(dir);
        if loading::is_dropin_name(name) {
            return Ok(DropinWalk {
                files: vec![dir.to_string()],
                note: None,
            });
        }
        let what = if root.kind == FileKind::Symlink {
            "a symlink given without a trailing /, which the kubelet's filepath.WalkDir does not follow"
        } else {
            "not a directory"
        };
        return Ok(DropinWalk {
            files: Vec::new(),
            note: Some(format!(
                "--config-dir {dir} is {what}: the kubelet applies no drop-in from it"
            )),
        });
    }
    let mut out = Vec::new();
    walk(host, dir, 0, &mut out, dirs)?;
    Ok(DropinWalk {
        files: out,
        note: None,
    })
}

fn walk(
    host: &HostRoot,
    dir: &str,
    depth: usize,
    out: &mut Vec<String>,
    dirs: &mut Vec<FileObservation>,
) -> Result<(), String> {
    if depth > MAX_DROPIN_DEPTH {
        return Err(format!(
            "{dir} is more than {MAX_DROPIN_DEPTH} levels deep: the agent walks no deeper, so the merged configuration is not known"
        ));
    }
    dirs.push(FileObservation {
        role: FileRole::ConfigDir,
        path: dir.to_string(),
        meta: host.metadata(dir).map_err(obs_err),
    });
    for name in host.read_dir(dir).map_err(|e| e.to_string())? {
        let path = host_join(dir, &name);
        let meta = host.symlink_metadata(&path).map_err(|e| e.to_string())?;
        if meta.kind == FileKind::Directory {
            walk(host, &path, depth + 1, out, dirs)?;
        } else if loading::is_dropin_name(&name) {
            if out.len() >= MAX_DROPIN_FILES {
                return Err(format!(
                    "more than {MAX_DROPIN_FILES} drop-in files: the agent reads no more, so the merged configuration is not known"
                ));
            }
            out.push(path);
        }
    }
    Ok(())
}

/// The unit file and its drop-ins, as systemd would load them.
fn unit_files(host: &HostRoot, unit: &str) -> Vec<FileObservation> {
    let mut out: Vec<FileObservation> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    // The unit file: the first directory in precedence order that has it.
    for dir in UNIT_DIRS {
        let p = host_join(dir, unit);
        if let Ok(meta) = host.metadata(&p) {
            if meta.kind == FileKind::File {
                seen.push(meta.resolved.clone());
                out.push(FileObservation {
                    role: FileRole::ServiceUnit,
                    path: p,
                    meta: Ok(meta),
                });
                break;
            }
        }
    }
    // Drop-ins from every directory (same resolved file counted once: /lib → /usr/lib).
    for dir in UNIT_DIRS {
        let d = host_join(dir, &format!("{unit}.d"));
        let Ok(dir_meta) = host.metadata(&d) else {
            continue;
        };
        let Ok(names) = host.read_dir(&d) else {
            continue;
        };
        out.push(FileObservation {
            role: FileRole::ServiceDropInDir,
            path: d.clone(),
            meta: Ok(dir_meta),
        });
        for name in names.into_iter().filter(|n| n.ends_with(".conf")) {
            let p = host_join(&d, &name);
            let meta = host.metadata(&p).map_err(obs_err);
            if let Ok(m) = &meta {
                if seen.contains(&m.resolved) {
                    continue;
                }
                seen.push(m.resolved.clone());
            }
            out.push(FileObservation {
                role: FileRole::ServiceDropIn,
                path: p,
                meta,
            });
        }
    }
    out
}

/// An apiserver from its flags, reading `--authorization-config` when it is set.
fn apiserver_from_flags(pid: i32, flags: Flags, host: &HostRoot) -> ApiServer {
    let authorization_config = flags
        .last("authorization-config")
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let text = host.read_to_string(p.trim()).map_err(ObsError::from)?;
            crate::model::kubelet_config::effective::authorizer_types(&text)
                .map_err(|e| ObsError::new(ObsErrorKind::Invalid, format!("{p}: {e}")))
        });
    ApiServer {
        pid,
        flags,
        authorization_config,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
