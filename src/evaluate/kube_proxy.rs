//! kube-proxy, the node section's last items: CIS 1.12 4.1.3/4.1.4 (the proxy kubeconfig's
//! permissions and ownership; "If proxy kubeconfig file exists ensure permissions are set
//! to 600 or more restrictive" / "ownership is set to root:root") and 4.3.1 ("Ensure that
//! the kube-proxy metrics service is bound to localhost").
//!
//! The file controls belong to the `files` family and use its mode rule and the policy's
//! `config_file_max_mode` (so the fix's generic `chmod`/`chown` planning covers them:
//! [`Snapshot::files_mut`](crate::model::snapshot::Snapshot::files_mut) reaches the file);
//! the metrics control belongs to `api_access` (who can reach a node's unauthenticated
//! endpoint).
//!
//! Absence: `not_applicable` only with positive evidence that kube-proxy is not meant to run
//! here (k3s's `disable-kube-proxy`, a Cilium agent with `kube-proxy-replacement`, or the
//! API listing this node's pods with no kube-proxy among them); otherwise `unknown`.

use super::files::{judge_ownership, judge_permissions, mode_str, FileAttribute};
use super::policy::ModeLimit;
use super::{
    Control, Ctx, Family, Needs, Outcome, Severity, Status, PRACTICE_HARDENING, PRACTICE_NETWORK,
};
use crate::evaluate::policy::Policy;
use crate::model::fix::ModeChange;
use crate::model::kube_proxy::{self as kp, KubeProxy, KubeProxyView, RunsAs};
use crate::model::net::is_loopback;
use crate::model::snapshot::{FileObservation, PodFacts, Snapshot};

/// The kube-proxy controls (registered in the catalogue after the files family's).
pub static CONTROLS: &[Control] = &[
    Control {
        id: "kube-proxy-kubeconfig-permissions",
        title: "kube-proxy kubeconfig is 0600 or stricter",
        family: Family::Files,
        severity: Severity::Medium,
        cis: Some("4.1.3"),
        practice: PRACTICE_HARDENING,
        expected: "≤ 0600",
        remediation: "Run `chmod 600` on the host file of kube-proxy's kubeconfig (`--kubeconfig`, or `clientConnection.kubeconfig` of its `--config` file). For a DaemonSet whose kubeconfig is a ConfigMap volume (kubeadm, EKS), set `defaultMode: 0600` on that volume in the DaemonSet instead: the kubelet rewrites the file with the volume's mode.",
        needs: Needs::Nothing,
        evaluate: evaluate_permissions,
    },
    Control {
        id: "kube-proxy-kubeconfig-ownership",
        title: "kube-proxy kubeconfig is owned by root:root",
        family: Family::Files,
        severity: Severity::Medium,
        cis: Some("4.1.4"),
        practice: PRACTICE_HARDENING,
        expected: "root:root (0:0)",
        remediation: "Run `chown root:root` on the host file of kube-proxy's kubeconfig.",
        needs: Needs::Nothing,
        evaluate: evaluate_ownership,
    },
    Control {
        id: "kube-proxy-metrics-localhost",
        title: "kube-proxy metrics are bound to localhost",
        family: Family::ApiAccess,
        severity: Severity::Medium,
        cis: Some("4.3.1"),
        practice: PRACTICE_NETWORK,
        expected: "127.0.0.1 or ::1 (or the metrics server off)",
        remediation: "Set `metricsBindAddress: 127.0.0.1:10249` in kube-proxy's configuration (kubeadm, EKS: `kubectl -n kube-system edit configmap kube-proxy` (EKS: `kube-proxy-config`), then restart the DaemonSet's pods; a `--metrics-bind-address` flag is ignored when `--config` is set), or remove `--metrics-bind-address` from a flags-only kube-proxy (k3s: drop it from `kube-proxy-arg`).",
        needs: Needs::Nothing,
        evaluate: evaluate_metrics,
    },
];

/// Whether a pod is kube-proxy: in `kube-system`, owned by the `kube-proxy` DaemonSet or
/// named `kube-proxy…` (a static pod's mirror: `kube-proxy-<node>`).
fn is_kube_proxy_pod(p: &PodFacts) -> bool {
    p.namespace == "kube-system"
        && (p.owner.as_deref() == Some("DaemonSet/kube-proxy") || p.name.starts_with("kube-proxy"))
}

/// The node's kube-proxy, or the outcome every control gives without one.
fn proxy(snapshot: &Snapshot) -> Result<&KubeProxy, Outcome> {
    match &snapshot.kube_proxy {
        None => Err(Outcome::unknown(
            "kube-proxy was not looked for in this evaluation",
        )),
        Some(KubeProxyView::Found { proxy }) => Ok(proxy),
        Some(KubeProxyView::Absent { reason }) => Err(Outcome::not_applicable(reason.clone())),
        Some(KubeProxyView::Unknown { reason }) => Err(Outcome::unknown(reason.clone())),
        Some(KubeProxyView::NotSeen { reason, expected }) => {
            if let Some(e) = expected {
                return Err(Outcome::unknown(format!(
                    "kube-proxy is expected here ({e}) but not running: {reason}"
                )));
            }
            let pods = snapshot.cluster.as_ref().and_then(|c| c.pods.data.as_ref());
            match pods {
                Some(pods) => match pods.iter().find(|p| is_kube_proxy_pod(p)) {
                    Some(p) => Err(Outcome::unknown(format!(
                        "kube-proxy is expected here (the API shows pod {}/{} on this node) but not running: {reason}",
                        p.namespace, p.name
                    ))),
                    None => Err(Outcome::not_applicable(format!(
                        "no kube-proxy on this node: {reason}, and none of the {} pods the API lists on this node is kube-proxy",
                        pods.len()
                    ))),
                },
                None => Err(Outcome::unknown(format!(
                    "{reason}; that is not proof of absence: no API view of this node's pods, and no replacement (Cilium's kube-proxy-replacement, k3s's disable-kube-proxy) was identified"
                ))),
            }
        }
    }
}

/// The kubeconfig file's observation, or the outcome without one.
/// The kubeconfig's host file, a note for the reason, and the path to show as observed when
/// the host path is a pod volume's (it holds the pod's UID and the kubelet's timestamped
/// `..data` directory, which change at every pod restart or ConfigMap update: the drift
/// baseline compares the path kube-proxy names instead).
fn kubeconfig_file(p: &KubeProxy) -> Result<(&FileObservation, String, Option<&str>), Outcome> {
    let k = match &p.kubeconfig {
        Err(e) => {
            return Err(Outcome::unknown(format!(
                "kube-proxy's kubeconfig cannot be decided: {e}"
            )))
        }
        Ok(None) => {
            return Err(Outcome::not_applicable(
                "kube-proxy has no kubeconfig file (neither --kubeconfig nor clientConnection.kubeconfig): it uses its in-cluster service account",
            ))
        }
        Ok(Some(k)) => k,
    };
    let host = match &k.host_path {
        Ok(h) => h,
        Err(e) => {
            return Err(Outcome::unknown(format!(
                "kube-proxy's kubeconfig {} (from {}) has no host file to judge: {e}",
                k.path, k.source
            )))
        }
    };
    let Some(f) = p.files.iter().find(|f| &f.path == host) else {
        return Err(Outcome::unknown(format!(
            "kube-proxy's kubeconfig {host} was not observed"
        )));
    };
    let mut note = format!("kube-proxy's kubeconfig {} (from {})", k.path, k.source);
    if host != &k.path {
        note.push_str(&format!(", on the host {host}"));
    }
    if host.contains("/volumes/kubernetes.io~configmap/") {
        note.push_str(
            "; a ConfigMap volume: its mode is the volume's defaultMode (a chmod does not last)",
        );
    }
    let stable = host
        .contains("/volumes/kubernetes.io~")
        .then_some(k.path.as_str());
    Ok((f, note, stable))
}

/// Add the note to the reason; show the stable path as observed (the judged host file is
/// named in the note).
fn with_note(
    mut o: Outcome,
    f: &FileObservation,
    note: &str,
    stable: Option<&str>,
    attribute: FileAttribute,
) -> Outcome {
    o.reason = format!("{} ({note})", o.reason);
    if let (Some(path), Ok(m)) = (stable, &f.meta) {
        o.observed = match attribute {
            FileAttribute::Mode => format!("{} {path}", mode_str(m.mode)),
            FileAttribute::Owner => format!("{}:{} {path}", m.uid, m.gid),
        };
    }
    o
}

fn evaluate_permissions(ctx: &Ctx) -> Outcome {
    let limit = ctx.policy.mode_limit(ModeLimit::ConfigFile);
    let expected = format!("≤ {}", mode_str(limit));
    let judged = proxy(ctx.snapshot)
        .and_then(kubeconfig_file)
        .map(|(f, note, stable)| {
            let o = judge_permissions(ctx, &[f], ModeLimit::ConfigFile);
            with_note(o, f, &note, stable, FileAttribute::Mode)
        });
    judged.unwrap_or_else(|o| o).with_expected(expected)
}

fn evaluate_ownership(ctx: &Ctx) -> Outcome {
    proxy(ctx.snapshot)
        .and_then(kubeconfig_file)
        .map(|(f, note, stable)| {
            with_note(
                judge_ownership(&[f]),
                f,
                &note,
                stable,
                FileAttribute::Owner,
            )
        })
        .unwrap_or_else(|o| o)
}

fn evaluate_metrics(ctx: &Ctx) -> Outcome {
    let p = match proxy(ctx.snapshot) {
        Ok(p) => p,
        Err(o) => return o,
    };
    let config = p.config.as_ref().map(|c| &c.values);
    let m = match kp::effective_metrics(&p.flags, &p.origins, config) {
        Ok(m) => m,
        Err(e) => return Outcome::unknown(format!("kube-proxy's metricsBindAddress: {e}")),
    };
    let source = match (&m.source[..], &p.config) {
        ("config-file", Some(c)) => format!("config-file {}", c.path),
        _ => m.source.clone(),
    };
    let mut notes: Vec<String> = m.ignored.clone();
    let Some(addr) = m.address else {
        return Outcome::pass(
            "off",
            source,
            "the metrics server is off (--metrics-port=0)",
        );
    };
    let Some((ip, port)) = kp::split_host_port(&addr) else {
        return Outcome::unknown(format!(
            "metricsBindAddress {addr} is not an IP address with a port: kube-proxy refuses it"
        ));
    };
    let port = port.unwrap_or(kp::METRICS_PORT);
    // Live corroboration: the listeners the process owns on that port (host netns).
    let mut exposed = Vec::new();
    match &p.listeners {
        Some(l) => {
            let on_port: Vec<_> = l.iter().filter(|(_, lp)| *lp == port).collect();
            for (a, lp) in &on_port {
                if !is_loopback(a) {
                    exposed.push(format!("{}", std::net::SocketAddr::new(*a, *lp)));
                }
            }
            if on_port.is_empty() {
                notes.push(format!("no listener of it on port {port} seen"));
            } else if exposed.is_empty() {
                notes.push(format!(
                    "its listener on port {port} is on loopback only (live)"
                ));
            }
        }
        None => notes.push("its sockets could not be read: no live corroboration".to_string()),
    }
    notes.push(format!(
        "kube-proxy pid {}: {}",
        p.pid,
        p.evidence.join(", ")
    ));
    let notes = format!(" ({})", notes.join("; "));
    if !exposed.is_empty() {
        return Outcome::fail(
            addr,
            format!("{source}, live listener"),
            format!(
                "kube-proxy listens for /metrics on {} (not loopback){notes}",
                exposed.join(", ")
            ),
        );
    }
    if is_loopback(&ip) {
        Outcome::pass(addr, source, format!("metrics bound to loopback{notes}"))
    } else {
        Outcome::fail(
            addr,
            source,
            format!(
                "metrics bound to {ip}, reachable from the network without authentication (/metrics, /configz, /flagz){notes}"
            ),
        )
    }
}

/// What `kubelet-sentinel fix` can do about a failing kube-proxy control.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyFix {
    /// A `chmod`/`chown` of a node file (the same form as the kubelet's file fixes).
    Mode(ModeChange),
    /// Not on the node: what to do instead (a ConfigMap, a DaemonSet volume, a k3s
    /// config drop-in).
    Cannot {
        /// The control.
        control: &'static str,
        /// Why, and the exact change to make.
        why: String,
    },
}

/// The fixes for the failing kube-proxy controls of `results` (evaluated on `snapshot`
/// with `policy`): `chmod`/`chown` of the kubeconfig's host file when it is a node file
/// that keeps its mode; otherwise, and for the metrics address, what to change instead.
pub fn fixes(
    snapshot: &Snapshot,
    policy: &Policy,
    results: &[super::ControlResult],
) -> Vec<ProxyFix> {
    let failing = |id: &str| {
        results
            .iter()
            .any(|r| r.id == id && r.status == Status::Fail)
    };
    let Ok(p) = proxy(snapshot) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok((f, _, _)) = kubeconfig_file(p) {
        let configmap = f.path.contains("/volumes/kubernetes.io~configmap/");
        let limit = policy.mode_limit(ModeLimit::ConfigFile);
        for (id, is_mode) in [
            ("kube-proxy-kubeconfig-permissions", true),
            ("kube-proxy-kubeconfig-ownership", false),
        ] {
            if !failing(id) {
                continue;
            }
            let Ok(meta) = &f.meta else { continue };
            if configmap {
                out.push(ProxyFix::Cannot {
                    control: if is_mode {
                        "kube-proxy-kubeconfig-permissions"
                    } else {
                        "kube-proxy-kubeconfig-ownership"
                    },
                    why: format!(
                        "{} is a ConfigMap volume the kubelet rewrites: set `defaultMode: 0{:o}` on the kube-proxy DaemonSet's volume (`kubectl -n kube-system edit daemonset kube-proxy`)",
                        f.path, limit
                    ),
                });
                continue;
            }
            out.push(ProxyFix::Mode(ModeChange {
                path: f.path.clone(),
                mode: is_mode.then_some(meta.mode & limit & 0o777),
                owner: (!is_mode).then_some((0, 0)),
                controls: vec![id.to_string()],
            }));
        }
    }
    if failing("kube-proxy-metrics-localhost") {
        let why = match (&p.runs_as, &p.config) {
            (RunsAs::InProcess { product }, _) => format!(
                "{product} passes kube-proxy's flags: add a /etc/rancher/{product}/config.yaml.d/ file with `kube-proxy-arg+:` `- \"metrics-bind-address=127.0.0.1:10249\"` (and remove any other metrics-bind-address from kube-proxy-arg), then restart {product}"
            ),
            (_, Some(c)) if c.host_path.as_ref().is_ok_and(|h| h.contains("/volumes/kubernetes.io~configmap/")) => format!(
                "the setting lives in a ConfigMap: `kubectl -n kube-system edit configmap kube-proxy` (EKS: `kube-proxy-config`), set `metricsBindAddress: 127.0.0.1:10249` in its {} key, then `kubectl -n kube-system rollout restart daemonset kube-proxy`",
                c.path.rsplit('/').next().unwrap_or("config.conf")
            ),
            (_, Some(c)) => format!(
                "set `metricsBindAddress: 127.0.0.1:10249` in {} (kube-proxy's --config; flags are ignored beside it) and restart kube-proxy",
                c.host_path.as_deref().unwrap_or(&c.path)
            ),
            (_, None) => "remove `--metrics-bind-address` (or set it to 127.0.0.1) where kube-proxy's command line is defined (its static pod manifest or unit), and restart it".to_string(),
        };
        out.push(ProxyFix::Cannot {
            control: "kube-proxy-metrics-localhost",
            why,
        });
    }
    out
}

/// The `chmod`/`chown` part of [`fixes`]: what the fix's generic mode planning applies (and
/// proves in memory through [`Snapshot::files_mut`]).
pub fn mode_fixes(
    snapshot: &Snapshot,
    policy: &Policy,
    results: &[super::ControlResult],
) -> Vec<ModeChange> {
    fixes(snapshot, policy, results)
        .into_iter()
        .filter_map(|f| match f {
            ProxyFix::Mode(m) => Some(m),
            ProxyFix::Cannot { .. } => None,
        })
        .collect()
}

#[cfg(test)]
#[path = "kube_proxy_tests.rs"]
mod tests;
