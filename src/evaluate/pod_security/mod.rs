//! Practice 5: Pod Security. What runs on this node decides what can reach the kubelet's
//! credentials and files: a privileged pod, or one that shares the host's namespaces or
//! mounts its sensitive paths, owns the node. Both controls judge the Kubernetes API's
//! view (`Snapshot::cluster`, from the background watches), not the kubelet process: they
//! are evaluated whether or not a kubelet is found here (`Needs::Api`).

use std::collections::BTreeSet;

use super::cluster_view::{api_data, api_stale, capped};
use super::outcome::unknown_with;
use super::{Control, Ctx, Family, Needs, Outcome, Severity, PRACTICE_POD_SECURITY};
use crate::evaluate::policy::{AllowedPod, Policy};
use crate::model::snapshot::{PodFacts, Snapshot};

/// The pod_security controls: Pod Security admission on namespaces and host-takeover
/// pods on this node (both through the API).
pub static CONTROLS: &[Control] = &[
    Control {
        id: "pod-security-enforced",
        title: "Every namespace with pods on this node enforces Pod Security baseline or stricter (cf. CIS 5.2)",
        family: Family::PodSecurity,
        severity: Severity::High,
        cis: None,
        practice: PRACTICE_POD_SECURITY,
        expected: "pod-security.kubernetes.io/enforce ≥ baseline on every namespace with pods here (policy: level, exempt namespaces)",
        remediation: "Label each namespace with its Pod Security level: `kubectl label namespace <ns> pod-security.kubernetes.io/enforce=baseline` (or `restricted`; pin `pod-security.kubernetes.io/enforce-version`). Try it first with `--dry-run=server` or the `warn`/`audit` labels to see which pods would be rejected. Namespaces that must run privileged workloads belong in the policy's `pod_security_exempt_namespaces`.",
        needs: Needs::Api,
        evaluate: evaluate_enforced,
    },
    Control {
        id: "no-host-takeover-pods",
        title: "No pod on this node can take over the host (privileged, host namespaces, kubelet or runtime paths)",
        family: Family::PodSecurity,
        severity: Severity::Critical,
        cis: None,
        practice: PRACTICE_POD_SECURITY,
        expected: "no pod outside the policy's allow-list is privileged, uses hostPID/hostIPC/hostNetwork or mounts /, /var/lib/kubelet, /etc/kubernetes or a container runtime socket",
        remediation: "Remove `privileged: true`, `hostPID`, `hostIPC`, `hostNetwork` and the sensitive `hostPath` volumes from the pods named (enforce Pod Security `baseline` on their namespace so they cannot come back); node agents that need them (CNI, kube-proxy, CSI node plugins) go in the policy's `host_takeover_allowed_pods` after review.",
        needs: Needs::Api,
        evaluate: evaluate_takeover,
    },
];

/// Why a pod can take over the node: the `reason` label of
/// `kubelet_sentinel_risky_pod_info` (a fixed set: bounded cardinality).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RiskReason {
    /// A container (init and ephemeral ones included) runs `privileged: true`.
    Privileged,
    /// `hostPID: true`: the pod sees and can signal the node's processes.
    HostPid,
    /// `hostIPC: true`: the pod shares the node's IPC namespace.
    HostIpc,
    /// `hostNetwork: true`: the pod shares the node's network namespace (loopback
    /// included).
    HostNetwork,
    /// A `hostPath` volume of `/`.
    HostPathRoot,
    /// A `hostPath` volume at, below or above `/var/lib/kubelet` (credentials, pod
    /// volumes, secrets).
    HostPathKubelet,
    /// A `hostPath` volume at, below or above `/etc/kubernetes` (kubeconfigs, PKI,
    /// static pod manifests).
    HostPathKubernetes,
    /// A `hostPath` volume of a container runtime socket, its directory or an ancestor.
    RuntimeSocket,
}

impl RiskReason {
    /// Every reason: the whole set of `reason` label values.
    pub const ALL: [RiskReason; 8] = [
        RiskReason::Privileged,
        RiskReason::HostPid,
        RiskReason::HostIpc,
        RiskReason::HostNetwork,
        RiskReason::HostPathRoot,
        RiskReason::HostPathKubelet,
        RiskReason::HostPathKubernetes,
        RiskReason::RuntimeSocket,
    ];

    /// The `reason` label value (`privileged`, `host_pid`, ...).
    pub fn as_str(&self) -> &'static str {
        match self {
            RiskReason::Privileged => "privileged",
            RiskReason::HostPid => "host_pid",
            RiskReason::HostIpc => "host_ipc",
            RiskReason::HostNetwork => "host_network",
            RiskReason::HostPathRoot => "host_path_root",
            RiskReason::HostPathKubelet => "host_path_kubelet",
            RiskReason::HostPathKubernetes => "host_path_kubernetes",
            RiskReason::RuntimeSocket => "runtime_socket",
        }
    }
}

/// The kubelet's state directory: its credentials, pod volumes and secrets.
const KUBELET_DIR: &str = "/var/lib/kubelet";
/// Kubeconfigs, PKI and static pod manifests.
const KUBERNETES_DIR: &str = "/etc/kubernetes";
/// Container runtime sockets: whoever reaches one starts privileged containers. Their
/// directories (and every ancestor) count too: mounting `/run/containerd` or `/var/run`
/// mounts the socket.
const RUNTIME_SOCKETS: &[&str] = &[
    "/run/containerd/containerd.sock",
    "/var/run/containerd/containerd.sock",
    "/run/k3s/containerd/containerd.sock",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/crio/crio.sock",
    "/var/run/crio/crio.sock",
    "/run/cri-dockerd.sock",
    "/var/run/cri-dockerd.sock",
];

/// `hostPath` paths lexically normalised: repeated `/` and `.` removed, `..` applied (the
/// API server rejects `..`, but the agent does not rely on it). Relative paths are taken
/// from `/`.
pub fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `path` is `base` or below it.
fn within(path: &str, base: &str) -> bool {
    path == base
        || path
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Why mounting this host path hands over the node (empty: it does not, as far as the
/// agent knows). A path above a sensitive one counts for it (`/var` holds
/// `/var/lib/kubelet` and `/var/run/docker.sock`).
pub fn classify_host_path(path: &str) -> Vec<RiskReason> {
    let p = normalize(path);
    if p == "/" {
        return vec![RiskReason::HostPathRoot];
    }
    let mut out = Vec::new();
    if within(&p, KUBELET_DIR) || within(KUBELET_DIR, &p) {
        out.push(RiskReason::HostPathKubelet);
    }
    if within(&p, KUBERNETES_DIR) || within(KUBERNETES_DIR, &p) {
        out.push(RiskReason::HostPathKubernetes);
    }
    if RUNTIME_SOCKETS.iter().any(|s| within(s, &p)) {
        out.push(RiskReason::RuntimeSocket);
    }
    out
}

/// A pod that can take over the node, with each reason and its detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RiskyPod {
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub name: String,
    /// Sorted, one entry per (reason, detail).
    pub reasons: Vec<(RiskReason, String)>,
}

impl RiskyPod {
    /// The distinct reasons.
    pub fn reason_set(&self) -> BTreeSet<RiskReason> {
        self.reasons.iter().map(|(r, _)| *r).collect()
    }
}

/// A pod that has finished (`Succeeded`, `Failed`) runs nothing any more.
fn active(p: &PodFacts) -> bool {
    !matches!(p.phase.as_deref(), Some("Succeeded" | "Failed"))
}

/// The reasons one pod can take over the node.
pub fn risks(p: &PodFacts) -> Vec<(RiskReason, String)> {
    let mut out = Vec::new();
    for c in &p.privileged_containers {
        out.push((RiskReason::Privileged, format!("privileged container {c}")));
    }
    if p.host_pid {
        out.push((RiskReason::HostPid, "hostPID".to_string()));
    }
    if p.host_ipc {
        out.push((RiskReason::HostIpc, "hostIPC".to_string()));
    }
    if p.host_network {
        out.push((RiskReason::HostNetwork, "hostNetwork".to_string()));
    }
    for path in &p.host_paths {
        for r in classify_host_path(path) {
            out.push((r, format!("hostPath {path}")));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Risky pods outside the allow-list, and how many active pods were checked and allowed.
pub fn risky_pods(pods: &[PodFacts], allowed: &[AllowedPod]) -> (Vec<RiskyPod>, usize, usize) {
    let mut risky = Vec::new();
    let (mut checked, mut allow_listed) = (0, 0);
    for p in pods.iter().filter(|p| active(p)) {
        checked += 1;
        let reasons = risks(p);
        if reasons.is_empty() {
            continue;
        }
        if allowed.iter().any(|a| a.matches(&p.namespace, &p.name)) {
            allow_listed += 1;
            continue;
        }
        risky.push(RiskyPod {
            namespace: p.namespace.clone(),
            name: p.name.clone(),
            reasons,
        });
    }
    risky.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    (risky, checked, allow_listed)
}

/// The `kubelet_sentinel_risky_pod_info` series: (namespace, pod, reason), one per risky
/// pod and distinct reason. Empty when the control is disabled, cluster checks are off,
/// or the pods are not known.
pub fn risky_pod_series(
    snapshot: &Snapshot,
    policy: &Policy,
) -> Vec<(String, String, &'static str)> {
    if !policy.enabled("no-host-takeover-pods") || !policy.expected.cluster_checks {
        return Vec::new();
    }
    let Some(pods) = snapshot
        .cluster
        .as_ref()
        .filter(|c| c.access.is_ok())
        .and_then(|c| c.pods.data.as_ref())
    else {
        return Vec::new();
    };
    let (risky, _, _) = risky_pods(pods, &policy.expected.host_takeover_allowed_pods);
    risky
        .iter()
        .flat_map(|p| {
            p.reason_set()
                .into_iter()
                .map(|r| (p.namespace.clone(), p.name.clone(), r.as_str()))
        })
        .collect()
}

/// Pod Security levels, weakest first.
fn level(s: &str) -> Option<u8> {
    match s {
        "privileged" => Some(0),
        "baseline" => Some(1),
        "restricted" => Some(2),
        _ => None,
    }
}

fn evaluate_enforced(ctx: &Ctx) -> Outcome {
    let Some(cluster) = &ctx.snapshot.cluster else {
        return Outcome::unknown("no API access");
    };
    let pods = match api_data(&cluster.pods, "list of pods") {
        Ok(p) => p,
        Err(o) => return o,
    };
    let namespaces = match api_data(&cluster.namespaces, "list of namespaces") {
        Ok(n) => n,
        Err(o) => return o,
    };
    let x = &ctx.policy.expected;
    let required = x.pod_security_required_level.as_str();
    let want = level(required).unwrap_or(1);
    let exempt = &x.pod_security_exempt_namespaces;
    let exempt_text = if exempt.is_empty() {
        "none".to_string()
    } else {
        exempt.join(", ")
    };
    let expected = format!(
        "pod-security.kubernetes.io/enforce ≥ {required} on every namespace with pods here (exempt: {exempt_text})"
    );
    let used: BTreeSet<&str> = pods
        .iter()
        .filter(|p| active(p))
        .map(|p| p.namespace.as_str())
        .filter(|n| !exempt.iter().any(|e| e == n))
        .collect();
    let (mut good, mut bad, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for ns in used {
        let Some(f) = namespaces.iter().find(|n| n.name == ns) else {
            missing.push(ns.to_string());
            continue;
        };
        let version = f
            .enforce_version
            .as_deref()
            .map(|v| format!("@{v}"))
            .unwrap_or_default();
        match f.enforce.as_deref() {
            None => bad.push(format!("{ns} (no enforce label)")),
            Some(v) => match level(v) {
                None => bad.push(format!("{ns} (enforce={v}: not a Pod Security level)")),
                Some(l) if l < want => bad.push(format!("{ns} (enforce={v})")),
                Some(_) => good.push(format!("{ns}={v}{version}")),
            },
        }
    }
    let note = format!(
        "{}{}",
        api_stale(&cluster.pods, "pods watch", "list"),
        api_stale(&cluster.namespaces, "namespaces watch", "list")
    );
    if !bad.is_empty() {
        return Outcome::fail(
            capped(&bad),
            "api",
            format!(
                "{} namespace(s) with pods on this node do not enforce Pod Security {required} or stricter: their pods may run privileged{note}",
                bad.len()
            ),
        )
        .with_expected(expected);
    }
    if !missing.is_empty() {
        return unknown_with(
            capped(&missing),
            "api",
            format!(
                "namespace(s) {} of pods on this node are not in the namespace list yet{note}",
                capped(&missing)
            ),
        )
        .with_expected(expected);
    }
    if good.is_empty() {
        return Outcome::pass(
            format!("every namespace with pods here enforces ≥ {required}"),
            "api",
            format!("nothing to enforce: every pod on this node is in an exempt namespace ({exempt_text}){note}"),
        )
        .with_expected(expected);
    }
    // The observed value of a pass does not list the namespaces: pods come and go, and
    // drift should mean a namespace lost its level, not that a new one got pods here.
    Outcome::pass(
        format!("every namespace with pods here enforces ≥ {required}"),
        "api",
        format!(
            "every namespace with pods on this node enforces Pod Security {required} or stricter: {}{note}",
            capped(&good)
        ),
    )
    .with_expected(expected)
}

fn evaluate_takeover(ctx: &Ctx) -> Outcome {
    let Some(cluster) = &ctx.snapshot.cluster else {
        return Outcome::unknown("no API access");
    };
    let pods = match api_data(&cluster.pods, "list of pods") {
        Ok(p) => p,
        Err(o) => return o,
    };
    let allowed = &ctx.policy.expected.host_takeover_allowed_pods;
    let (risky, checked, allow_listed) = risky_pods(pods, allowed);
    let note = api_stale(&cluster.pods, "pods watch", "list");
    if risky.is_empty() {
        // A stable observed value (no counts): pods churn, drift should not.
        return Outcome::pass(
            "no risky pod",
            "api",
            format!("none of the {checked} pods on this node outside the allow-list ({allow_listed} allow-listed) is privileged, shares the host's namespaces or mounts its sensitive paths{note}"),
        );
    }
    let names: Vec<String> = risky
        .iter()
        .map(|p| {
            let reasons: Vec<&str> = p.reason_set().iter().map(RiskReason::as_str).collect();
            format!("{}/{} ({})", p.namespace, p.name, reasons.join(","))
        })
        .collect();
    let details: Vec<String> = risky
        .iter()
        .take(5)
        .map(|p| {
            let d: Vec<&str> = p.reasons.iter().map(|(_, d)| d.as_str()).collect();
            format!("{}/{}: {}", p.namespace, p.name, d.join(", "))
        })
        .collect();
    let more = if risky.len() > 5 {
        format!("; and {} more", risky.len() - 5)
    } else {
        String::new()
    };
    Outcome::fail(
        capped(&names),
        "api",
        format!(
            "{} pod(s) on this node can take over the host and the kubelet: {}{more}{note}",
            risky.len(),
            details.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests;
