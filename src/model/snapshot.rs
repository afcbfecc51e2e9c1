//! The snapshot: plain data observed from the host in one pass. Everything the controls
//! evaluate is in here, so controls are pure functions and tests build snapshots in memory.

use std::time::Duration;

use crate::model::cert::CertSummary;
use crate::model::file::FileMeta;
use crate::model::kubelet_config::flags::Flags;
use crate::model::kubelet_config::EffectiveConfig;
use crate::model::live::Live;
use crate::model::observed::Observed;

/// Everything observed about one node at one moment.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Snapshot {
    /// The node name (`--node-name`/`NODE_NAME`, else the host's hostname).
    pub node: String,
    /// Unix time (seconds) when observation started.
    pub taken_at: f64,
    /// What process discovery found.
    pub discovery: Discovery,
    /// The chosen kubelet, when one was found and is supported.
    pub kubelet: Option<Kubelet>,
    /// A kube-apiserver process on this node, if any (for the audit control).
    pub apiserver: Option<ApiServer>,
    /// Observation steps and how they went (`kubelet_sentinel_probe_*`).
    pub probes: Vec<ProbeRecord>,
    /// Live evidence from the kubelet's sockets (`None` when the live checks did not run, e.g.
    /// no kubelet, or an evaluation from files only).
    pub live: Option<Live>,
    /// What the Kubernetes API said, copied from the background watches (`None`: this
    /// evaluation had no API view at all, e.g. a snapshot built from files only).
    pub cluster: Option<ClusterView>,
    /// The kubelet's running configuration from its `/configz` (`--read-running-config`):
    /// `None` when reading it is off (or this evaluation did not try, e.g. from files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub running_config: Option<RunningConfig>,
    /// The node's kube-proxy (CIS 4.1.3, 4.1.4, 4.3.1): `None` when this evaluation did not
    /// look for it (a snapshot built in memory).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kube_proxy: Option<crate::model::kube_proxy::KubeProxyView>,
}

/// The route `/configz` was read through (the permission it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ConfigzRoute {
    /// `GET https://<kubelet>/configz` with the agent's own token: the kubelet authorizes
    /// `nodes/configz` (with `KubeletFineGrainedAuthz`), else `nodes/proxy`.
    #[serde(rename = "nodes/configz")]
    Kubelet,
    /// `GET /api/v1/nodes/<node>/proxy/configz` through the API server: `nodes/proxy`.
    #[serde(rename = "nodes/proxy")]
    ApiProxy,
}

impl ConfigzRoute {
    /// The permission the route needs, as reports name it: `nodes/configz` or
    /// `nodes/proxy` (the same as the serialised form).
    pub fn as_str(&self) -> &'static str {
        match self {
            ConfigzRoute::Kubelet => "nodes/configz",
            ConfigzRoute::ApiProxy => "nodes/proxy",
        }
    }
}

/// What reading the kubelet's `/configz` gave.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunningConfig {
    /// The route that answered (on success), or the last one tried.
    pub via: ConfigzRoute,
    /// The `kubeletconfig` object of `{"kubeletconfig": {...}}`, or why there is none
    /// (every route tried, each with its answer).
    pub config: Result<serde_json::Value, String>,
    /// The kubelet process it was read from (`pid`, start time): a running
    /// configuration only changes with a restart, so a successful read is reused for it.
    pub process: (i32, Option<u64>),
}

/// The Kubernetes API's view of this node, copied (plain data) from the background
/// watches at the start of an evaluation. The evaluation never waits for the API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClusterView {
    /// How the agent reaches the API (`in-cluster service account`, `kubeconfig <file>`),
    /// or why it does not (`--api-access=off`, not in a cluster and no `--kubeconfig`, a
    /// client that could not be built).
    pub access: Result<String, String>,
    /// The pods scheduled on this node (`spec.nodeName=<node>`).
    pub pods: ApiSource<Vec<PodFacts>>,
    /// Every namespace (name and Pod Security labels).
    pub namespaces: ApiSource<Vec<NamespaceFacts>>,
    /// This node's Node object (`metadata.name=<node>`: one item, or none when the node
    /// is not registered).
    pub node: ApiSource<Vec<NodeFacts>>,
    /// What the kubelet's identity may do (SubjectAccessReviews, one per action).
    pub identity: ApiSource<Vec<AccessCheck>>,
}

impl ClusterView {
    /// A view without API access, with the reason.
    pub fn no_access(reason: impl Into<String>) -> ClusterView {
        ClusterView {
            access: Err(reason.into()),
            pods: ApiSource::default(),
            namespaces: ApiSource::default(),
            node: ApiSource::default(),
            identity: ApiSource::default(),
        }
    }
}

/// One watched API collection: its objects and the watch's health.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ApiSource<T> {
    /// The objects as of the last list plus the watch events since; `None` until the first
    /// list has completed (kept, possibly stale, while the watch reconnects).
    pub data: Option<T>,
    /// `Ok` while the collection is listed and its watch connected; else the last error
    /// (`401 Unauthorized`, a disconnect, a timeout) or that the first list is awaited.
    pub health: Result<(), String>,
    /// How long the last list (or the failed attempt) took.
    pub duration: Duration,
}

impl<T> Default for ApiSource<T> {
    fn default() -> Self {
        ApiSource {
            data: None,
            health: Err("waiting for the first list".to_string()),
            duration: Duration::ZERO,
        }
    }
}

/// What the Pod Security controls need to know about a pod on this node.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct PodFacts {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The controlling owner, `Kind/name` (`DaemonSet/kube-proxy`, `Node/<node>` for a
    /// static pod's mirror).
    pub owner: Option<String>,
    /// `status.phase` (`Running`, `Succeeded`, ...), when known.
    pub phase: Option<String>,
    /// `spec.hostPID`: the pod shares the host's process namespace (unset: false).
    pub host_pid: bool,
    /// `spec.hostIPC`: the pod shares the host's IPC namespace (unset: false).
    pub host_ipc: bool,
    /// `spec.hostNetwork`: the pod uses the host's network namespace (unset: false).
    pub host_network: bool,
    /// Containers (init and ephemeral included) with `securityContext.privileged: true`.
    pub privileged_containers: Vec<String>,
    /// The host paths of its `hostPath` volumes, as written in the spec.
    pub host_paths: Vec<String>,
}

/// What the agent needs to know about this node's Node object.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct NodeFacts {
    /// `metadata.name`: the node's name.
    pub name: String,
    /// `status.nodeInfo.kubeletVersion`, as the running kubelet reported it.
    pub kubelet_version: Option<String>,
    /// The node's pool: the value of the first `--node-pool-labels` label the Node carries
    /// (a valid label value: at most 63 characters); `None` when it carries none.
    pub pool: Option<String>,
}

/// The answer to one SubjectAccessReview asked as the kubelet's identity.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AccessCheck {
    /// The action, for humans (`list secrets in all namespaces`).
    pub action: String,
    /// The review allowed it: `status.allowed`, and not `status.denied`. A review with
    /// no status is not allowed.
    pub allowed: bool,
    /// The authorizer's reason, when it gave one (RBAC names the binding; the Node
    /// authorizer gives none). At most 200 characters.
    pub reason: Option<String>,
    /// The Node authorizer grants this action to every kubelet and NodeRestriction
    /// narrows it (see `cluster::reviews::Expect::NodeRules`).
    pub node_rules: bool,
}

/// What the Pod Security controls need to know about a namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct NamespaceFacts {
    /// `metadata.name`.
    pub name: String,
    /// The `pod-security.kubernetes.io/enforce` label, when set.
    pub enforce: Option<String>,
    /// The `pod-security.kubernetes.io/enforce-version` label, when set.
    pub enforce_version: Option<String>,
}

/// Result of kubelet discovery.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Discovery {
    /// A kubelet process was found (`note` says how, e.g. candidates set aside), with the
    /// evidence that it is the host's kubelet (observe/identity.rs).
    Found {
        /// The kubelet's process id, as the host's `/proc` names it.
        pid: i32,
        /// How it was chosen, when that needs saying (pinned with `--kubelet-pid`, other
        /// candidates set aside and why); `None` for the one candidate, none set aside.
        note: Option<String>,
        /// The identity checks it passed (observe/identity.rs), one sentence each.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        evidence: Vec<String>,
    },
    /// Processes that look like a kubelet were found, but none, or more than one, is
    /// credibly the host's kubelet (the reason names each pid and what it failed).
    Unknown {
        /// Why none was chosen, naming each candidate.
        reason: String,
    },
    /// No kubelet process.
    NotFound {
        /// Why, for the controls' `unknown` (e.g. "no kubelet process found").
        reason: String,
    },
    /// A kubelet was detected in a form not supported (no form is today: k3s is read
    /// through observe/k3s.rs; kept for the JSON contract).
    Unsupported {
        /// The process id of the unsupported kubelet.
        pid: i32,
        /// What is not supported, for the controls' `unknown`.
        reason: String,
    },
    /// Discovery itself failed (e.g. `/proc` unreadable, pinned pid gone).
    Failed {
        /// The failure, in words.
        reason: String,
    },
}

/// What was learnt about the kubelet.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Kubelet {
    /// The kubelet's process id, as the host's `/proc` names it.
    pub pid: i32,
    /// argv as read from `/proc/<pid>/cmdline` (after args-file expansion for MicroK8s).
    pub argv: Vec<String>,
    /// The binary: `/proc/<pid>/exe` target when readable, else `argv[0]`.
    pub binary: String,
    /// How the kubelet runs: `kubelet`, `hyperkube`, `kubelite`, `k3s` (embedded in k3s).
    pub flavour: KubeletFlavour,
    /// Process start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_time_ticks: Option<u64>,
    /// Process start as Unix time (seconds): the boot time (`btime` in `/proc/stat`) plus
    /// the start time in ticks. `None` when the host tree has no `/proc/stat`.
    pub started_at: Option<f64>,
    /// The parsed command line.
    pub flags: Flags,
    /// The effective configuration with provenance.
    pub config: EffectiveConfig,
    /// The kubelet's version, when known.
    pub version: Option<String>,
    /// Where the version came from.
    pub version_source: Option<VersionSource>,
    /// Why the version is unknown, when it is.
    pub version_error: Option<String>,
    /// The serving certificate file (`tlsCertFile`, or the bootstrap/self-signed one).
    pub serving_cert_file: Option<Observed<CertSummary>>,
    /// The systemd unit the process runs in, from `/proc/<pid>/cgroup`.
    pub unit: Option<String>,
    /// Files the evaluation looked at, by role.
    pub files: Vec<FileObservation>,
    /// The client CA (`authentication.x509.clientCAFile`).
    pub client_ca: Option<Observed<CertSummary>>,
    /// The credential in the kubelet's kubeconfig.
    pub credential: Option<Observed<Credential>>,
    /// Set when k3s or RKE2 runs the kubelet: where its flags come from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k3s: Option<crate::model::k3s::K3sKubelet>,
}

/// The role a file plays for the kubelet (file controls are keyed by role).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileRole {
    /// The `--config` file.
    ConfigFile,
    /// A `*.conf` drop-in under `--config-dir`.
    DropIn,
    /// The `--kubeconfig` the kubelet reaches the API server with.
    Kubeconfig,
    /// The client CA bundle (`authentication.x509.clientCAFile`, `--client-ca-file`).
    ClientCa,
    /// The serving certificate: `tlsCertFile`, else under `--cert-dir`
    /// (`kubelet-server-current.pem` with `serverTLSBootstrap`, else `kubelet.crt`).
    ServingCert,
    /// The serving key: `tlsPrivateKeyFile`, else beside the serving certificate
    /// (`kubelet.key`, or the same `kubelet-server-current.pem`).
    ServingKey,
    /// The client certificate file the kubeconfig's `client-certificate` names.
    ClientCert,
    /// The kubelet's systemd unit file (the first of the unit directories that has it).
    ServiceUnit,
    /// A `*.conf` drop-in of the kubelet's systemd unit.
    ServiceDropIn,
    /// MicroK8s' kubelet arguments file (`--kubelet-args-file`, by default
    /// `/var/snap/microk8s/current/args/kubelet`).
    ArgsFile,
    /// A directory of `--config-dir` that was walked (its entries decide the drop-ins).
    ConfigDir,
    /// A `<unit>.d` directory of the kubelet's systemd unit.
    ServiceDropInDir,
    /// The kubeconfig kube-proxy uses (its host file: a DaemonSet's ConfigMap volume
    /// is mapped to its host path), judged by CIS 4.1.3/4.1.4.
    ProxyKubeconfig,
}

impl FileRole {
    /// The role's stable name (`config_file`, `serving_key`, …), as serialised; the drift
    /// baseline keys its files by it.
    pub fn as_str(&self) -> &'static str {
        match self {
            FileRole::ConfigFile => "config_file",
            FileRole::DropIn => "drop_in",
            FileRole::Kubeconfig => "kubeconfig",
            FileRole::ClientCa => "client_ca",
            FileRole::ServingCert => "serving_cert",
            FileRole::ServingKey => "serving_key",
            FileRole::ClientCert => "client_cert",
            FileRole::ServiceUnit => "service_unit",
            FileRole::ServiceDropIn => "service_drop_in",
            FileRole::ArgsFile => "args_file",
            FileRole::ConfigDir => "config_dir",
            FileRole::ServiceDropInDir => "service_drop_in_dir",
            FileRole::ProxyKubeconfig => "proxy_kubeconfig",
        }
    }
}

/// Metadata of one file the kubelet uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FileObservation {
    /// What the file is to the kubelet.
    pub role: FileRole,
    /// The host path as configured.
    pub path: String,
    /// Metadata (symlinks followed inside the host root), or the error's message.
    pub meta: Observed<FileMeta>,
}

/// The credential the kubelet uses to talk to the API server.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credential {
    /// An X.509 client certificate (inline or from a file).
    ClientCertificate {
        /// The certificate (the first of the PEM bundle).
        cert: CertSummary,
        /// Where it came from: `inline` or the file path.
        from: String,
    },
    /// A bearer token (static or file).
    Token,
    /// An exec credential plugin (EKS aws-iam-authenticator, GKE gke-exec-auth-plugin).
    Exec {
        /// The plugin's `exec.command` as written (empty when missing).
        command: String,
    },
    /// An auth-provider plugin.
    AuthProvider {
        /// The plugin's `auth-provider.name` (e.g. `gcp`; empty when missing).
        name: String,
    },
    /// No credential in the selected user.
    None,
}

/// A kube-apiserver process on the node.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ApiServer {
    /// Its process id, as the host's `/proc` names it.
    pub pid: i32,
    /// Its command line, parsed with the kubelet's flag rules.
    pub flags: Flags,
    /// The authorizer types of `--authorization-config` (structured authorization), in
    /// order, when that flag is set: read from the host at the flag's path.
    pub authorization_config: Option<Observed<Vec<String>>>,
}

/// One observation step.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbeRecord {
    /// Stable name: `process`, `flags`, `config`, `files`, `kubeconfig`, `client_ca`, `apiserver`.
    pub name: &'static str,
    /// The step completed (`kubelet_sentinel_probe_success`).
    pub success: bool,
    /// How long the step took, failed or not (`kubelet_sentinel_probe_duration_seconds`).
    pub duration: Duration,
    /// Why it failed (when it did).
    pub error: Option<String>,
}

impl Snapshot {
    /// The observation record of a probe, if it ran.
    pub fn probe(&self, name: &str) -> Option<&ProbeRecord> {
        self.probes.iter().find(|p| p.name == name)
    }

    /// `status.nodeInfo.kubeletVersion` of this node's Node object, when the API view has it.
    pub fn node_kubelet_version(&self) -> Option<&str> {
        self.cluster
            .as_ref()?
            .node
            .data
            .as_ref()?
            .first()?
            .kubelet_version
            .as_deref()
    }

    /// The node's pool ([`NodeFacts::pool`]), `""` when the Node carries none of the pool
    /// labels or cannot be read (no API access, not listed yet).
    pub fn node_pool(&self) -> &str {
        self.cluster
            .as_ref()
            .and_then(|c| c.node.data.as_ref())
            .and_then(|n| n.first())
            .and_then(|n| n.pool.as_deref())
            .unwrap_or("")
    }

    /// The version whose loading rules the configuration model applies: the process's
    /// own, else the Node's.
    pub fn loading_version(&self) -> Option<&str> {
        self.kubelet
            .as_ref()
            .and_then(|k| k.version.as_deref())
            .or_else(|| self.node_kubelet_version())
    }

    /// Hand the kubelet's version ([`Snapshot::loading_version`]) to its configuration
    /// model, whose loading rules depend on it.
    pub fn settle_kubelet_version(&mut self) {
        let v = self.loading_version().map(str::to_string);
        if let Some(k) = self.kubelet.as_mut() {
            k.config.set_kubelet_version(v.as_deref());
        }
    }

    /// The reason every kubelet control is `unknown` when there is no usable kubelet.
    pub fn no_kubelet_reason(&self) -> Option<String> {
        if self.kubelet.is_some() {
            return None;
        }
        Some(match &self.discovery {
            Discovery::Found { pid, .. } => format!("kubelet pid {pid} could not be read"),
            Discovery::NotFound { reason }
            | Discovery::Unknown { reason }
            | Discovery::Unsupported { reason, .. }
            | Discovery::Failed { reason } => reason.clone(),
        })
    }
}

/// How the kubelet runs (`kubelet_sentinel`'s `check --format json`: `.kubelet.flavour`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KubeletFlavour {
    /// A `kubelet` binary.
    #[serde(rename = "kubelet")]
    Kubelet,
    /// `hyperkube kubelet ...`.
    #[serde(rename = "hyperkube")]
    Hyperkube,
    /// MicroK8s' `kubelite`, with the kubelet's flags in an args file.
    #[serde(rename = "kubelite")]
    Kubelite,
    /// The kubelet embedded in a `k3s server`/`k3s agent` process (no kubelet process;
    /// its flags rebuilt from k3s's files: `Kubelet.k3s`).
    #[serde(rename = "k3s")]
    K3s,
}

impl KubeletFlavour {
    /// The name as serialised: `kubelet`, `hyperkube`, `kubelite` or `k3s`.
    pub fn as_str(self) -> &'static str {
        match self {
            KubeletFlavour::Kubelet => "kubelet",
            KubeletFlavour::Hyperkube => "hyperkube",
            KubeletFlavour::Kubelite => "kubelite",
            KubeletFlavour::K3s => "k3s",
        }
    }
}

/// Where the kubelet's version came from (`kubelet_sentinel_kubelet_info{version_source}`,
/// `.kubelet.version_source` in the JSON report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum VersionSource {
    /// `buildinfo`: the Go build information of the kubelet's binary (read, never run).
    #[serde(rename = "buildinfo")]
    GoBuildInfo,
    /// `binary`: the binary's `--version` (opt-in, live hosts only).
    #[serde(rename = "binary")]
    Binary,
    /// `build_info`: `kubernetes_build_info` on the read-only port's `/metrics`.
    #[serde(rename = "build_info")]
    MetricsBuildInfo,
    /// `override`: `--kubelet-version`.
    #[serde(rename = "override")]
    Override,
}

impl VersionSource {
    /// Every source, in declaration order.
    pub const ALL: [VersionSource; 4] = [
        VersionSource::GoBuildInfo,
        VersionSource::Binary,
        VersionSource::MetricsBuildInfo,
        VersionSource::Override,
    ];

    /// The name in the metric label and the JSON report: `buildinfo`, `binary`,
    /// `build_info` or `override`.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionSource::GoBuildInfo => "buildinfo",
            VersionSource::Binary => "binary",
            VersionSource::MetricsBuildInfo => "build_info",
            VersionSource::Override => "override",
        }
    }
}

impl std::str::FromStr for VersionSource {
    type Err = String;

    /// The source named as [`VersionSource::as_str`] names it.
    fn from_str(s: &str) -> Result<Self, String> {
        VersionSource::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| format!("unknown version source {s:?}"))
    }
}

impl Snapshot {
    /// Every file observation in the snapshot (the kubelet's, then kube-proxy's), for the
    /// fix's in-memory `chmod`/`chown`.
    pub fn files_mut(&mut self) -> impl Iterator<Item = &mut FileObservation> {
        let proxy = match self.kube_proxy.as_mut() {
            Some(crate::model::kube_proxy::KubeProxyView::Found { proxy }) => {
                Some(proxy.files.iter_mut())
            }
            _ => None,
        };
        self.kubelet
            .iter_mut()
            .flat_map(|k| k.files.iter_mut())
            .chain(proxy.into_iter().flatten())
    }

    /// kube-proxy's file observations (empty when none was found).
    pub fn proxy_files(&self) -> &[FileObservation] {
        match self.kube_proxy.as_ref() {
            Some(crate::model::kube_proxy::KubeProxyView::Found { proxy }) => &proxy.files,
            _ => &[],
        }
    }
}

impl Kubelet {
    /// Files observed in a role.
    pub fn files_in(&self, role: FileRole) -> impl Iterator<Item = &FileObservation> {
        self.files.iter().filter(move |f| f.role == role)
    }
}

#[cfg(test)]
#[path = "snapshot_tests.rs"]
mod tests;
