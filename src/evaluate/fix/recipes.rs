//! What makes each control pass: the settings (and values, from the policy) a drop-in or
//! a flag must carry, the flag to remove, the files to `chmod`/`chown`, or why the fix
//! cannot do it on the node (certificates to issue, API-server flags, cluster-level
//! settings, version upgrades).

use serde_json::{json, Value};

use crate::evaluate::policy::ModeLimit;
use crate::evaluate::Ctx;
use crate::model::net::{cidr_contains, is_loopback, parse_cidr, parse_ip};
use crate::model::snapshot::FileRole;

/// What a file control checks, for its `chmod`/`chown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileCheck {
    /// Permission bits no more permissive than the policy's limit.
    Mode(ModeLimit),
    /// Owned by root:root.
    Owner,
}

/// How a control is fixed.
#[derive(Debug, Clone, PartialEq)]
pub enum Recipe {
    /// KubeletConfiguration settings (keys of `settings::SETTINGS`) and the values that
    /// pass.
    Settings(Vec<(&'static str, Value)>),
    /// A flag with no configuration field to remove from the command line.
    RemoveFlag(&'static str),
    /// The files of these roles (the control's own), made to comply.
    Files(&'static [FileRole], FileCheck),
    /// Not something a file on the node can change; why, and what to do instead.
    Cannot(String),
}

const CONFIG_ROLES: &[FileRole] = &[FileRole::ConfigFile, FileRole::DropIn, FileRole::ArgsFile];
const KUBECONFIG_ROLES: &[FileRole] = &[FileRole::Kubeconfig];
const CLIENT_CA_ROLES: &[FileRole] = &[FileRole::ClientCa];
const SERVING_KEY_ROLES: &[FileRole] = &[FileRole::ServingKey];
const SERVICE_ROLES: &[FileRole] = &[FileRole::ServiceUnit, FileRole::ServiceDropIn];

/// kubeReserved / systemReserved written when a reservation is missing: small, on the
/// side of a small node (kubeadm and the cloud images reserve more on large nodes).
pub const DEFAULT_RESERVED: (&str, &str) = ("100m", "256Mi");
/// `podPidsLimit` written when unlimited (capped by the policy's `pod_pids_limit_max`).
pub const DEFAULT_POD_PIDS: i64 = 4096;

/// The recipe of a control; `None` when this build knows none (a control added since).
pub fn recipe(id: &str, ctx: &Ctx) -> Option<Recipe> {
    let settings = |kv: Vec<(&'static str, Value)>| Some(Recipe::Settings(kv));
    let cannot = |why: &str| Some(Recipe::Cannot(why.to_string()));
    let expected = &ctx.policy.expected;
    match id {
        "read-only-port-disabled" => settings(vec![("readOnlyPort", json!(0))]),
        "api-bind-address-restricted" => Some(match node_address(ctx) {
            Ok(ip) => Recipe::Settings(vec![("address", json!(ip))]),
            Err(why) => Recipe::Cannot(why),
        }),
        "healthz-bind-localhost" => settings(vec![("healthzBindAddress", json!("127.0.0.1"))]),
        "tls-serving-cert-configured" => cannot(
            "needs a serving certificate the fix cannot issue: have one signed by the cluster CA and set tlsCertFile/tlsPrivateKeyFile, or turn on serverTLSBootstrap once an approver for kubernetes.io/kubelet-serving CSRs runs (see server-cert-rotation)",
        ),
        "client-ca-configured" => cannot(
            "needs the cluster's CA bundle on the node: copy it (kubeadm: /etc/kubernetes/pki/ca.crt) and set authentication.x509.clientCAFile; the fix does not choose a CA",
        ),
        "tls-min-version" => settings(vec![("tlsMinVersion", json!(expected.tls_min_version))]),
        "tls-strong-cipher-suites" => {
            settings(vec![("tlsCipherSuites", json!(expected.tls_cipher_suites))])
        }
        "client-cert-rotation" => settings(vec![("rotateCertificates", json!(true))]),
        // Precondition never holds from the node's side: evaluated in `preconditions`.
        "server-cert-rotation" => settings(vec![("serverTLSBootstrap", json!(true))]),
        "serving-cert-valid" | "client-cert-valid" => cannot(
            "a certificate to renew: the kubelet rotates it itself with rotateCertificates / serverTLSBootstrap, else renew it with the cluster's tooling (kubeadm certs, the CSR API)",
        ),
        "anonymous-auth-disabled" => {
            settings(vec![("authentication.anonymous.enabled", json!(false))])
        }
        "authorization-mode-webhook" => settings(vec![("authorization.mode", json!("Webhook"))]),
        "authentication-webhook-enabled" => {
            settings(vec![("authentication.webhook.enabled", json!(true))])
        }
        "kubelet-api-rejects-anonymous" => cannot(
            "judged from the live kubelet only: anonymous-auth-disabled and authorization-mode-webhook fix its cause; check again after the kubelet restarts",
        ),
        "streaming-idle-timeout-set" => {
            settings(vec![("streamingConnectionIdleTimeout", json!("4h0m0s"))])
        }
        "iptables-util-chains" => settings(vec![("makeIPTablesUtilChains", json!(true))]),
        "hostname-override-unset" => Some(Recipe::RemoveFlag("hostname-override")),
        "event-qps-limited" => {
            let v = 5.max(expected.event_qps_min);
            let v = expected.event_qps_max.map_or(v, |m| v.min(m));
            settings(vec![("eventRecordQPS", json!(v))])
        }
        "pod-pids-limit-set" => {
            let v = expected
                .pod_pids_limit_max
                .map_or(DEFAULT_POD_PIDS, |m| DEFAULT_POD_PIDS.min(m));
            settings(vec![("podPidsLimit", json!(v))])
        }
        "seccomp-default-enabled" => settings(vec![("seccompDefault", json!(true))]),
        "protect-kernel-defaults" => settings(vec![("protectKernelDefaults", json!(true))]),
        "kube-reserved-set" => settings(vec![(
            "kubeReserved",
            json!({"cpu": DEFAULT_RESERVED.0, "memory": DEFAULT_RESERVED.1}),
        )]),
        "system-reserved-set" => settings(vec![(
            "systemReserved",
            json!({"cpu": DEFAULT_RESERVED.0, "memory": DEFAULT_RESERVED.1}),
        )]),
        "eviction-hard-set" => settings(vec![("evictionHard", json!({"memory.available": "100Mi"}))]),
        "config-file-permissions" => Some(Recipe::Files(
            CONFIG_ROLES,
            FileCheck::Mode(ModeLimit::ConfigFile),
        )),
        "config-file-ownership" => Some(Recipe::Files(CONFIG_ROLES, FileCheck::Owner)),
        "kubeconfig-permissions" => Some(Recipe::Files(
            KUBECONFIG_ROLES,
            FileCheck::Mode(ModeLimit::ConfigFile),
        )),
        "kubeconfig-ownership" => Some(Recipe::Files(KUBECONFIG_ROLES, FileCheck::Owner)),
        "client-ca-permissions" => Some(Recipe::Files(
            CLIENT_CA_ROLES,
            FileCheck::Mode(ModeLimit::ClientCa),
        )),
        "client-ca-ownership" => Some(Recipe::Files(CLIENT_CA_ROLES, FileCheck::Owner)),
        "serving-key-permissions" => Some(Recipe::Files(
            SERVING_KEY_ROLES,
            FileCheck::Mode(ModeLimit::ConfigFile),
        )),
        "service-file-permissions" => Some(Recipe::Files(
            SERVICE_ROLES,
            FileCheck::Mode(ModeLimit::ServiceFile),
        )),
        "service-file-ownership" => Some(Recipe::Files(SERVICE_ROLES, FileCheck::Owner)),
        "kubelet-version-supported" | "kubelet-version-no-known-cves" => cannot(
            "a version upgrade: install a supported, patched kubelet (the fix changes configuration only)",
        ),
        "running-config-matches-disk" => cannot(
            "the running kubelet differs from its files: restart the kubelet so that it loads them (after any fix)",
        ),
        "pod-security-enforced" | "no-host-takeover-pods" => cannot(
            "a cluster-level setting (Pod Security labels on namespaces, the pods admitted): change it through the Kubernetes API, not on the node",
        ),
        "kubelet-credential-node-scoped" | "kubelet-identity-least-privilege" => cannot(
            "the kubelet's credential and its RBAC are cluster-level: issue a system:node:<name> credential and remove extra bindings through the Kubernetes API",
        ),
        "node-authorizer-enabled" | "apiserver-audit-log-enabled" => cannot(
            "an API-server flag: change the kube-apiserver's manifest or configuration on the control plane",
        ),
        // A kube-proxy kubeconfig on the node is fixed by `evaluate::kube_proxy::fixes`
        // (the fix asks it first); reaching here means it located no file to change.
        "kube-proxy-kubeconfig-permissions" | "kube-proxy-kubeconfig-ownership" => cannot(
            "kube-proxy's kubeconfig was not located as a node file (see the control's reason): `chmod 600` / `chown root:root` it where kube-proxy reads it, or set the DaemonSet volume's `defaultMode: 0600`",
        ),
        "kube-proxy-metrics-localhost" => cannot(
            "a kube-proxy setting, usually in the kube-system/kube-proxy ConfigMap: set metricsBindAddress: 127.0.0.1:10249 with `kubectl -n kube-system edit configmap kube-proxy` and restart the kube-proxy pods (k3s: `kube-proxy-arg+: [metrics-bind-address=127.0.0.1]` in config.yaml.d)",
        ),
        _ => None,
    }
}

/// The node's own IP for `address`: the single `--node-ip` the kubelet was given, if it
/// is a specific address the policy allows.
fn node_address(ctx: &Ctx) -> Result<String, String> {
    let flags = ctx
        .kubelet()
        .map(|k| k.flags.clone())
        .ok_or_else(|| "no kubelet".to_string())?;
    let raw = flags.last("node-ip").unwrap_or("").trim().to_string();
    let ips: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let [one] = ips.as_slice() else {
        return Err(if ips.is_empty() {
            "no --node-ip tells the node's address: set `address` to the node's IP yourself (a wildcard listens everywhere)".to_string()
        } else {
            format!("--node-ip={raw} names several addresses: set `address` to the one the API server uses")
        });
    };
    let ip = parse_ip(one).ok_or_else(|| format!("--node-ip {one} is not an IP address"))?;
    if ip.is_unspecified() || is_loopback(&ip) {
        return Err(format!(
            "--node-ip {one} is not a usable serving address: set `address` yourself"
        ));
    }
    let allowed = &ctx.policy.expected.allowed_bind_addresses;
    if !allowed.is_empty()
        && !allowed
            .iter()
            .any(|a| parse_cidr(a).is_some_and(|c| cidr_contains(c, ip)) || parse_ip(a) == Some(ip))
    {
        return Err(format!(
            "the node IP {one} is not in the policy's allowed_bind_addresses: set `address` yourself"
        ));
    }
    Ok(ip.to_string())
}
