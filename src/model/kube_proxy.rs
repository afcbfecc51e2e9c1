//! kube-proxy as the node section of the CIS benchmark sees it (4.1.3, 4.1.4, 4.3.1): what
//! was observed of the node's kube-proxy, and kube-proxy's own rules for which value of
//! `metricsBindAddress` and of its kubeconfig is in force. Pure: `observe::kube_proxy`
//! reads the host, `evaluate::kube_proxy` judges.
//!
//! kube-proxy's precedence (kubernetes/kubernetes `cmd/kube-proxy/app/options.go`,
//! `Options.Complete`): the flags are bound directly into one defaulted
//! `KubeProxyConfiguration`; with `--config FILE`, `loadConfigFromFile` *replaces* that
//! object with the file's, so every flag bound into it — `--metrics-bind-address`,
//! `--kubeconfig`, `--bind-address`, ... — is ignored (their help says so since PR #107157,
//! 1.24; the behaviour dates from the componentconfig introduction, ~1.8, and attempts to
//! change it, PR #101273 and KEP sig-network 2157, were closed unmerged). Only logging
//! flags, `--hostname-override` (PR #69340) and `--master` survive. Without `--config`,
//! `addressFromDeprecatedFlags` folds `--metrics-port` in: port 0 turns the server off,
//! else `proxyutil.AppendPortIfNeeded`.
//!
//! Defaults (`pkg/proxy/apis/config/v1alpha1/defaults.go`
//! `SetDefaults_KubeProxyConfiguration`): `metricsBindAddress` `127.0.0.1:10249` since 1.7
//! (PR #44968 moved healthz to `0.0.0.0:10256`), `[::1]:10249` when `bindAddress` is IPv6
//! (`getDefaultAddresses`, PR #76320) — loopback in every version the project models.

use std::net::IpAddr;

use crate::model::flag_origin::FlagOrigin;
use crate::model::kubelet_config::flags::Flags;
use crate::model::snapshot::FileObservation;

/// kube-proxy's metrics port (`ports.ProxyStatusPort`).
pub const METRICS_PORT: u16 = 10249;

/// The default `metricsBindAddress` (IPv4 `bindAddress`, the default).
pub const DEFAULT_METRICS_BIND_ADDRESS: &str = "127.0.0.1:10249";

/// What the observation found about kube-proxy on this node.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum KubeProxyView {
    /// One kube-proxy, whose identity is established (see [`KubeProxy::evidence`]).
    Found {
        /// What was learnt about it.
        proxy: Box<KubeProxy>,
    },
    /// Positive evidence that this node runs no kube-proxy: k3s's `disable-kube-proxy`, a
    /// Cilium agent configured as kube-proxy replacement. `reason` names the evidence.
    Absent {
        /// The evidence, in words.
        reason: String,
    },
    /// No kube-proxy process was seen, and nothing on the node proves it is meant to be
    /// absent: whether the API knows of one is judged with the cluster view.
    NotSeen {
        /// What was looked at (`/proc` scanned, a host tree on disk, ...).
        reason: String,
        /// Something on the node that says a kube-proxy should be running (a static pod
        /// manifest), when there is one.
        expected: Option<String>,
    },
    /// Something looks like kube-proxy, but which process (if any) is the node's cannot be
    /// told: several candidates, or one whose identity is not established.
    Unknown {
        /// Why, naming each candidate.
        reason: String,
    },
}

/// How kube-proxy runs on this node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunsAs {
    /// A process in the host's mount namespace (a systemd unit): its paths are host paths.
    HostProcess,
    /// A container (DaemonSet or static pod): its paths are mapped to host paths through
    /// `/proc/<pid>/mountinfo`.
    Container {
        /// The pod's UID, from `/proc/<pid>/cgroup` (kernel-written), when it names one.
        pod_uid: Option<String>,
    },
    /// Inside another process (k3s runs kube-proxy in `k3s server|agent`).
    InProcess {
        /// The product (`k3s`).
        product: String,
    },
}

/// The node's kube-proxy.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KubeProxy {
    /// Its process id (for k3s, the k3s process).
    pub pid: i32,
    /// How it runs.
    pub runs_as: RunsAs,
    /// Its command line, parsed with pflag's rules (the kubelet's parser: same syntax).
    pub flags: Flags,
    /// Where each argument came from, when a product builds them (k3s).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub origins: Vec<FlagOrigin>,
    /// Why this process is taken as the node's kube-proxy, one sentence each.
    pub evidence: Vec<String>,
    /// The `--config` file, when the flag is set.
    pub config: Option<ProxyConfigFile>,
    /// The kubeconfig kube-proxy uses: `Ok(None)` for in-cluster credentials (no file);
    /// `Err` when it cannot be decided (the config file is unreadable).
    pub kubeconfig: Result<Option<ProxyKubeconfig>, String>,
    /// The host files judged by the file controls (the kubeconfig, role `proxy_kubeconfig`),
    /// kept here so that the fix's in-memory `chmod`/`chown` reaches them.
    pub files: Vec<FileObservation>,
    /// The TCP listeners the process owns (`address:port`); `None` when its fd table or
    /// socket table could not be read.
    pub listeners: Option<Vec<(IpAddr, u16)>>,
}

/// kube-proxy's `--config` file.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProxyConfigFile {
    /// The path as kube-proxy names it (inside its container, for a pod).
    pub path: String,
    /// The host path it maps to, or why it maps to none.
    pub host_path: Result<String, String>,
    /// The settings read from it, or why they could not be (never the file's content).
    pub values: Result<ProxyConfig, String>,
}

/// The settings of a `KubeProxyConfiguration` the controls need (field names are
/// case-sensitive, as apimachinery's JSON decoding is: a mis-cased key is ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProxyConfig {
    /// `metricsBindAddress`.
    #[serde(rename = "metricsBindAddress", default)]
    pub metrics_bind_address: Option<String>,
    /// `bindAddress` (decides the IPv4/IPv6 default of `metricsBindAddress`).
    #[serde(rename = "bindAddress", default)]
    pub bind_address: Option<String>,
    /// `clientConnection.kubeconfig`.
    #[serde(rename = "clientConnection", default)]
    pub client_connection: Option<ClientConnection>,
}

/// `clientConnection` of a `KubeProxyConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientConnection {
    /// `clientConnection.kubeconfig`.
    #[serde(default)]
    pub kubeconfig: Option<String>,
}

/// The kubeconfig kube-proxy uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProxyKubeconfig {
    /// The path as kube-proxy names it.
    pub path: String,
    /// Where the path came from: `flag`, `config-file`, or a product's label.
    pub source: String,
    /// The host path it maps to, or why none (a file of the container's image).
    pub host_path: Result<String, String>,
}

/// The type metadata every kube-proxy configuration file must carry.
#[derive(serde::Deserialize)]
struct TypeMeta {
    #[serde(rename = "apiVersion", default)]
    api_version: Option<String>,
    #[serde(default)]
    kind: Option<String>,
}

/// Parse a `KubeProxyConfiguration` (YAML or JSON). kube-proxy's `loadConfig` decodes
/// strictly, then — only for unknown or duplicate fields — leniently with v1alpha1 alone;
/// a missing or other `kind`/`apiVersion` is an error either way, so it is one here. The
/// error never quotes the file.
pub fn parse_config(text: &str) -> Result<ProxyConfig, String> {
    let meta: TypeMeta = crate::model::parse::yaml(text).map_err(|e| e.to_string())?;
    match (meta.api_version.as_deref(), meta.kind.as_deref()) {
        (Some("kubeproxy.config.k8s.io/v1alpha1"), Some("KubeProxyConfiguration")) => {}
        (_, Some("KubeProxyConfiguration")) => {
            return Err(
                "not apiVersion kubeproxy.config.k8s.io/v1alpha1: kube-proxy refuses it"
                    .to_string(),
            )
        }
        _ => return Err("not kind KubeProxyConfiguration: kube-proxy refuses it".to_string()),
    }
    crate::model::parse::yaml(text).map_err(|e| e.to_string())
}

/// The effective metrics address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metrics {
    /// `host:port`, or `None` when the metrics server is off.
    pub address: Option<String>,
    /// Where the value came from: `default`, `flag`, `config-file`, or a product's label.
    pub source: String,
    /// Flags kube-proxy ignores, said for the report (`--metrics-bind-address=0.0.0.0
    /// is ignored: --config is set`).
    pub ignored: Vec<String>,
}

/// `proxyutil.AppendPortIfNeeded`: `addr` unchanged when it already has a port (or is
/// not an IP), else `ip:port` / `[ip6]:port`.
pub fn append_port_if_needed(addr: &str, port: u16) -> String {
    match addr.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) => format!("{ip}:{port}"),
        Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
        // Already host:port (or unparsable: kube-proxy's validation rejects it).
        Err(_) => addr.to_string(),
    }
}

/// The default `metricsBindAddress` for a `bindAddress` (`getDefaultAddresses`).
fn default_metrics(bind_address: Option<&str>) -> String {
    match bind_address.and_then(|b| b.parse::<IpAddr>().ok()) {
        Some(IpAddr::V6(_)) => format!("[::1]:{METRICS_PORT}"),
        _ => DEFAULT_METRICS_BIND_ADDRESS.to_string(),
    }
}

/// The source label of a flag: the product's origin label when one is known.
fn flag_source(origins: &[FlagOrigin], flag: &str) -> String {
    origins
        .iter()
        .rev()
        .find(|o| o.flag.trim_start_matches('-') == flag)
        .map(FlagOrigin::label)
        .unwrap_or_else(|| "flag".to_string())
}

/// The effective `metricsBindAddress` under kube-proxy's precedence (module doc). `config`
/// is the `--config` file's reading (`None`: no `--config`); an unreadable file is an
/// error, since its value decides.
pub fn effective_metrics(
    flags: &Flags,
    origins: &[FlagOrigin],
    config: Option<&Result<ProxyConfig, String>>,
) -> Result<Metrics, String> {
    if let Some(cfg) = config {
        let cfg = cfg
            .as_ref()
            .map_err(|e| format!("the --config file cannot be read: {e}"))?;
        let ignored = ["metrics-bind-address", "metrics-port", "bind-address"]
            .iter()
            .filter_map(|f| flags.last(f).map(|v| format!("--{f}={v}")))
            .map(|f| format!("{f} is ignored: --config is set"))
            .collect();
        let (address, source) = match cfg.metrics_bind_address.as_deref().map(str::trim) {
            // v1alpha1 defaulting replaces "" (the server cannot be turned off by the file).
            None | Some("") => (default_metrics(cfg.bind_address.as_deref()), "default"),
            Some(v) => (append_port_if_needed(v, METRICS_PORT), "config-file"),
        };
        return Ok(Metrics {
            address: Some(address),
            source: source.to_string(),
            ignored,
        });
    }
    // Flags only. `IPPortVar.Set("")` is a no-op (pkg/util/flag/flags.go: a value
    // receiver), so an empty flag leaves the default.
    let port = match flags.last("metrics-port") {
        Some(p) => p
            .trim()
            .parse::<u16>()
            .map_err(|_| format!("--metrics-port={p} is not a port: kube-proxy refuses it"))?,
        None => METRICS_PORT,
    };
    let given = flags
        .last("metrics-bind-address")
        .map(str::trim)
        .filter(|v| !v.is_empty());
    // The default is applied before flag parsing, so `--bind-address` does not move it
    // (kubernetes/kubernetes#123544).
    let (addr, source) = match given {
        Some(v) => (v.to_string(), flag_source(origins, "metrics-bind-address")),
        None => (
            DEFAULT_METRICS_BIND_ADDRESS.to_string(),
            "default".to_string(),
        ),
    };
    if port == 0 {
        return Ok(Metrics {
            address: None,
            source: flag_source(origins, "metrics-port"),
            ignored: Vec::new(),
        });
    }
    Ok(Metrics {
        address: Some(append_port_if_needed(&addr, port)),
        source,
        ignored: Vec::new(),
    })
}

/// The host part and port of `host:port` / `[v6]:port` / a bare IP.
pub fn split_host_port(addr: &str) -> Option<(IpAddr, Option<u16>)> {
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return Some((ip, None));
    }
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Some((host.parse().ok()?, port.parse().ok()))
}

/// The kubeconfig path under kube-proxy's precedence: with `--config`, the file's
/// `clientConnection.kubeconfig` (the flag is ignored); else `--kubeconfig`. `Ok(None)`:
/// none, so kube-proxy uses `rest.InClusterConfig()` (its service account) unless
/// `--master` alone is given (`createClient` in cmd/kube-proxy/app/server.go).
pub fn kubeconfig_path(
    flags: &Flags,
    origins: &[FlagOrigin],
    config: Option<&Result<ProxyConfig, String>>,
) -> Result<Option<(String, String)>, String> {
    if let Some(cfg) = config {
        let cfg = cfg
            .as_ref()
            .map_err(|e| format!("the --config file cannot be read: {e}"))?;
        return Ok(cfg
            .client_connection
            .as_ref()
            .and_then(|c| c.kubeconfig.as_deref())
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| (p.to_string(), "config-file".to_string())));
    }
    Ok(flags
        .last("kubeconfig")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| (p.to_string(), flag_source(origins, "kubeconfig"))))
}

/// One line of `/proc/<pid>/mountinfo` (proc(5)): what the mapping needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `major:minor` of the filesystem.
    pub dev: String,
    /// The directory of that filesystem mounted here (field 4).
    pub root: String,
    /// Where it is mounted, in that process's view (field 5).
    pub mount_point: String,
    /// The filesystem type (after the ` - ` separator).
    pub fstype: String,
}

/// Undo mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash: `show_mountinfo` → `seq_path_root`/`mangle` in fs/proc_namespace.c).
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = oct
                    .iter()
                    .fold(0u32, |acc, c| acc * 8 + u32::from(c - b'0'));
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse `/proc/<pid>/mountinfo`; malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (pre, post) = line.split_once(" - ")?;
            let f: Vec<&str> = pre.split(' ').collect();
            if f.len() < 6 {
                return None;
            }
            Some(Mount {
                dev: f[2].to_string(),
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                fstype: post.split(' ').next().unwrap_or("").to_string(),
            })
        })
        .collect()
}

/// `path` relative to `prefix` when `prefix` is a path-prefix of it by whole components
/// (`/var/lib/kube-proxy` of `/var/lib/kube-proxy/config.conf`, not of
/// `/var/lib/kube-proxyx`): `Some("")` for the same path.
fn strip_dir<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    if prefix == "/" {
        return path.strip_prefix('/');
    }
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix('/')
    }
}

fn join(dir: &str, rel: &str) -> String {
    if rel.is_empty() {
        dir.to_string()
    } else if dir.ends_with('/') {
        format!("{dir}{rel}")
    } else {
        format!("{dir}/{rel}")
    }
}

/// Map a path as a containerised process sees it to the host path of the same file: the
/// process's mount that holds `path` (the longest mount point; a later mount over the same
/// point shadows the earlier), then a mount of the same filesystem in the host's view
/// (`host`, init's mountinfo) whose root holds that mount's root. `Err` says why there is
/// no host path: the file is in the container's own image, or on a filesystem the host's
/// view does not mount. Symlinks inside the path are not resolved here (the host read
/// resolves them inside the host root).
pub fn map_to_host(container: &[Mount], host: &[Mount], path: &str) -> Result<String, String> {
    if !path.starts_with('/') || path.split('/').any(|c| c == "..") {
        return Err(format!("{path} is not a plain absolute path"));
    }
    let mount = container
        .iter()
        .filter_map(|m| strip_dir(path, &m.mount_point).map(|rel| (m, rel)))
        .max_by_key(|(m, _)| m.mount_point.len())
        .ok_or_else(|| format!("no mount of the process holds {path}"))?;
    let (m, rel) = mount;
    let source = join(&m.root, rel);
    let on_host = host
        .iter()
        .filter(|h| h.dev == m.dev)
        .filter_map(|h| strip_dir(&source, &h.root).map(|r| (h, r)))
        .max_by_key(|(h, _)| h.root.len());
    match on_host {
        Some((h, r)) => Ok(join(&h.mount_point, r)),
        None if m.mount_point == "/" => Err(format!(
            "{path} is in the container's own root filesystem ({}), not a node file",
            m.fstype
        )),
        None => Err(format!(
            "{path} is on a {} mount ({} {}) the host's init does not mount: no node file to judge",
            m.fstype, m.dev, m.root
        )),
    }
}

/// The pod UID in a `/proc/<pid>/cgroup` path (`…-pod8d2b4c7e_5a1f_….slice/…`,
/// cgroupfs `…/pod8d2b4c7e-5a1f-…/…`), with `-` separators.
pub fn pod_uid_from_cgroup(text: &str) -> Option<String> {
    for line in text.lines() {
        for comp in line.rsplit(':').next().unwrap_or("").split('/') {
            let Some(at) = comp.rfind("pod") else {
                continue;
            };
            let uid = comp[at + 3..].trim_end_matches(".slice").replace('_', "-");
            let ok = uid.len() == 36
                && uid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
                && uid.matches('-').count() == 4;
            if ok {
                return Some(uid);
            }
        }
    }
    None
}

#[cfg(test)]
#[path = "kube_proxy_tests.rs"]
mod tests;
