//! Observe: host I/O under `--host-root`, producing a [`Snapshot`].
//!
//! Every step is recorded as a probe (`kubelet_sentinel_probe_success{probe}`), and a
//! failing step only makes the facts it would have produced unknown: the rest goes on.

pub mod buildinfo;
pub mod cluster;
pub mod discovery;
pub mod enrich;
pub mod files;
pub mod fix_facts;
pub mod identity;
mod k3s;
pub mod kube_proxy;
pub mod kubeconfig;
mod kubelet;
pub mod live;
pub mod net;
pub mod process;
pub mod running_config;
pub mod version;
pub mod watch;

// Where the kubelet's flags come from (for `fix`).
pub mod flag_sources;

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::io::host::HostRoot;
use crate::model::kubelet_config::flags::{self, Flags};
use crate::model::observed::{ObsError, ObsErrorKind};
use crate::model::snapshot::{ApiServer, Discovery, ProbeRecord, Snapshot};
use discovery::{discover, Cache};
use kubelet::observe_kubelet;
use process::{ProcInfo, ProcessKind};

/// Options for one observation.
#[derive(Debug, Clone, Default)]
pub struct ObserveOptions {
    /// The node name to report (`--node-name`/`NODE_NAME`); default: the host's hostname.
    pub node_name: Option<String>,
    /// Pin the kubelet to this pid (`--kubelet-pid`).
    pub kubelet_pid: Option<i32>,
}

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
            error: r.as_ref().err().map(std::string::ToString::to_string),
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
    /// kube-proxy's candidates, kept between scans.
    proxy: kube_proxy::Cache,
}

impl Observer {
    /// An observer of `host`, with empty caches: its first [`Observer::observe`] scans
    /// `/proc` in full.
    pub fn new(host: HostRoot, opts: ObserveOptions) -> Self {
        Observer {
            host,
            opts,
            cache: Cache::default(),
            scans: live::ScanCache::default(),
            configz: running_config::ConfigzCache::default(),
            proxy: kube_proxy::Cache::default(),
        }
    }

    /// The host it observes (`--host-root`).
    pub fn host(&self) -> &HostRoot {
        &self.host
    }

    /// Observe the host, reusing the cached discovery while it is still valid.
    pub fn observe(&mut self) -> Snapshot {
        observe_with(&self.host, &self.opts, &mut self.cache, &mut self.proxy)
    }
}

/// Observe the host once (a full discovery scan).
pub fn observe(host: &HostRoot, opts: &ObserveOptions) -> Snapshot {
    observe_with(
        host,
        opts,
        &mut Cache::default(),
        &mut kube_proxy::Cache::default(),
    )
}

fn observe_with(
    host: &HostRoot,
    opts: &ObserveOptions,
    cache: &mut Cache,
    proxy_cache: &mut kube_proxy::Cache,
) -> Snapshot {
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
        .filter(|(_, kind)| *kind == ProcessKind::Kubelite)
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

    // 2. kube-proxy (CIS 4.1.3/4.1.4/4.3.1): its own scan, no probe of its own (what
    // could not be read is said in the view, and reaches the three controls' reasons).
    let kube_proxy = Some(kube_proxy::observe_cached(
        host,
        kubelet.as_ref(),
        proxy_cache,
    ));

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
        kube_proxy,
    }
}

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

fn obs_err(e: crate::model::file::HostError) -> ObsError {
    ObsError::from(e)
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
