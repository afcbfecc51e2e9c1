//! The CIS Kubernetes Benchmark, section 4 (Worker Nodes): v1.12.0 (Kubernetes 1.32–1.34)
//! and v2.0.1 (1.34–1.35).
//!
//! Items, titles and `scored` as in kube-bench cfg/cis-1.12/node.yaml (commit a73ce37).
//! v2.0's node section is the same: kube-bench's cfg/cis-2.0/node.yaml (PR #2126, "All
//! the checks remain the same as CIS-1.12"; only etcd 3.2.2 and master 1.2.29 changed their
//! remediation) differs from cis-1.12's in its `version` line alone, so both share
//! [`GROUPS`].

use super::{Assessment, Backing, Benchmark, Group, Item, Judge};

use Assessment::{Automated, Manual};

/// The items of section 4.1: Worker Node Configuration Files.
pub static FILES: &[Item] = &[
    Item {
        id: "4.1.1",
        title: "Ensure that the kubelet service file permissions are set to 600 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["service-file-permissions"], Judge::ModeAtMost(0o600)),
        note: "every unit file and drop-in of the kubelet's systemd unit is judged, not one path; a kubelet outside systemd is INFO (kube-bench fails it when its default path is missing)",
        remediation: "chmod 600 the kubelet's systemd unit file and each of its drop-ins (e.g. /usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf), then systemctl daemon-reload.",
    },
    Item {
        id: "4.1.2",
        title: "Ensure that the kubelet service file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["service-file-ownership"], Judge::Same),
        note: "ownership is judged by uid and gid 0, not by the names root:root",
        remediation: "chown root:root the kubelet's systemd unit file and each of its drop-ins, then systemctl daemon-reload.",
    },
    Item {
        id: "4.1.3",
        title: "If proxy kubeconfig file exists ensure permissions are set to 600 or more restrictive (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["kube-proxy-kubeconfig-permissions"], Judge::ModeAtMost(0o600)),
        note: "the kubeconfig kube-proxy really uses (clientConnection.kubeconfig of its --config, which replaces its flags; else --kubeconfig), a DaemonSet's ConfigMap volume mapped to its host file; kube-bench stats the first existing path of a fixed list (often the kubelet's kubeconfig) and WARNs when none exists. INFO when kube-proxy uses its service account or is positively absent",
        remediation: "chmod 600 the host file of kube-proxy's kubeconfig; for a ConfigMap volume (kubeadm, EKS) set defaultMode: 0600 on the kube-proxy DaemonSet's volume instead.",
    },
    Item {
        id: "4.1.4",
        title: "If proxy kubeconfig file exists ensure ownership is set to root:root (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["kube-proxy-kubeconfig-ownership"], Judge::Same),
        note: "the same file as 4.1.3; ownership is judged by uid and gid 0",
        remediation: "chown root:root the host file of kube-proxy's kubeconfig, if there is one.",
    },
    Item {
        id: "4.1.5",
        title: "Ensure that the --kubeconfig kubelet.conf file permissions are set to 600 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["kubeconfig-permissions"], Judge::ModeAtMost(0o600)),
        note: "the file the kubelet's own --kubeconfig names is judged, wherever it is",
        remediation: "chmod 600 the file named by the kubelet's --kubeconfig (e.g. /etc/kubernetes/kubelet.conf).",
    },
    Item {
        id: "4.1.6",
        title: "Ensure that the --kubeconfig kubelet.conf file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["kubeconfig-ownership"], Judge::Same),
        note: "",
        remediation: "chown root:root the file named by the kubelet's --kubeconfig (e.g. /etc/kubernetes/kubelet.conf).",
    },
    Item {
        id: "4.1.7",
        title: "Ensure that the certificate authorities file permissions are set to 644 or more restrictive (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["client-ca-permissions"], Judge::ModeAtMost(0o644)),
        note: "the client CA file is taken from the effective configuration (flag, config file or drop-in), not only from --client-ca-file on the command line",
        remediation: "chmod 644 (or stricter) the file named by authentication.x509.clientCAFile / --client-ca-file.",
    },
    Item {
        id: "4.1.8",
        title: "Ensure that the client certificate authorities file ownership is set to root:root (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["client-ca-ownership"], Judge::Same),
        note: "",
        remediation: "chown root:root the file named by authentication.x509.clientCAFile / --client-ca-file.",
    },
    Item {
        id: "4.1.9",
        title: "If the kubelet config.yaml configuration file is being used validate permissions set to 600 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["config-file-permissions"], Judge::ModeAtMost(0o600)),
        note: "the --config file and every drop-in under --config-dir are judged; without either the item is INFO",
        remediation: "chmod 600 the file named by the kubelet's --config and every *.conf under its --config-dir.",
    },
    Item {
        id: "4.1.10",
        title: "If the kubelet config.yaml configuration file is being used validate file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["config-file-ownership"], Judge::Same),
        note: "the --config file and every drop-in under --config-dir are judged",
        remediation: "chown root:root the file named by the kubelet's --config and every *.conf under its --config-dir.",
    },
];

/// The items of section 4.2: Kubelet.
pub static KUBELET: &[Item] = &[
    Item {
        id: "4.2.1",
        title: "Ensure that the --anonymous-auth argument is set to false (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["anonymous-auth-disabled"], Judge::Same),
        note: "the effective value is judged (flag over drop-ins over the config file over the default), so an unset setting fails: the kubelet's default is true",
        remediation: "Set authentication.anonymous.enabled: false in the KubeletConfiguration (or --anonymous-auth=false), then restart the kubelet.",
    },
    Item {
        id: "4.2.2",
        title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["authorization-mode-webhook"], Judge::Same),
        note: "the kubelet knows two modes, AlwaysAllow and Webhook: not AlwaysAllow is Webhook",
        remediation: "Set authorization.mode: Webhook in the KubeletConfiguration (or --authorization-mode=Webhook), then restart the kubelet.",
    },
    Item {
        id: "4.2.3",
        title: "Ensure that the --client-ca-file argument is set as appropriate (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["client-ca-configured"], Judge::Same),
        note: "the control also requires the file to be readable and to hold a CA certificate",
        remediation: "Set authentication.x509.clientCAFile in the KubeletConfiguration (or --client-ca-file) to the cluster's CA bundle, then restart the kubelet.",
    },
    Item {
        id: "4.2.4",
        title: "Verify that if defined, the --read-only-port argument is set to 0 (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["read-only-port-disabled"], Judge::Same),
        note: "the effective port is judged: a kubelet run without a config file defaults to 10255, which fails here although the argument is not defined",
        remediation: "Set readOnlyPort: 0 in the KubeletConfiguration (or --read-only-port=0), then restart the kubelet.",
    },
    Item {
        id: "4.2.5",
        title: "Ensure that the --streaming-connection-idle-timeout argument is not set to 0 (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["streaming-idle-timeout-set"], Judge::Same),
        note: "from Kubernetes 1.24 (dockershim removed) the setting has no effect and the control is not applicable: INFO",
        remediation: "Set streamingConnectionIdleTimeout to a non-zero duration (e.g. 4h0m0s) in the KubeletConfiguration and remove --streaming-connection-idle-timeout=0; on 1.24 and newer set the container runtime's stream idle timeout instead.",
    },
    Item {
        id: "4.2.6",
        title: "Ensure that the --make-iptables-util-chains argument is set to true (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["iptables-util-chains"], Judge::Same),
        note: "",
        remediation: "Set makeIPTablesUtilChains: true in the KubeletConfiguration (or remove --make-iptables-util-chains=false), then restart the kubelet.",
    },
    Item {
        id: "4.2.7",
        title: "Ensure that the --hostname-override argument is not set (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["hostname-override-unset"], Judge::Same),
        note: "",
        remediation: "Remove --hostname-override from the kubelet's command line (unit, drop-ins, kubeadm-flags.env, /etc/default/kubelet), then restart the kubelet.",
    },
    Item {
        id: "4.2.8",
        title: "Ensure that the eventRecordQPS argument is set to a level which ensures appropriate event capture (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(
            &["event-qps-limited"],
            Judge::Stricter("it fails eventRecordQPS 0, which means no rate limit from Kubernetes 1.37; kube-bench accepts any value of 0 or more"),
        ),
        note: "",
        remediation: "Set eventRecordQPS in the KubeletConfiguration (or --event-qps) to a level that captures the events you need (the default 50 is fine), then restart the kubelet.",
    },
    Item {
        id: "4.2.9",
        title: "Ensure that the --tls-cert-file and --tls-private-key-file arguments are set as appropriate (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["tls-serving-cert-configured"], Judge::Same),
        note: "the control asks for a CA-issued serving certificate: tlsCertFile/tlsPrivateKeyFile with a certificate that is not self-signed, or serverTLSBootstrap: true (which kube-bench's audit does not recognise)",
        remediation: "Set tlsCertFile and tlsPrivateKeyFile in the KubeletConfiguration (or --tls-cert-file, --tls-private-key-file) to a certificate issued by the cluster's CA, or set serverTLSBootstrap: true and approve the kubelet-serving CSRs; restart the kubelet.",
    },
    Item {
        id: "4.2.10",
        title: "Ensure that the --rotate-certificates argument is not set to false (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["client-cert-rotation"], Judge::Same),
        note: "the effective value is judged: an unset rotateCertificates is the kubelet's default false and fails (kube-bench passes it)",
        remediation: "Set rotateCertificates: true in the KubeletConfiguration (or --rotate-certificates) and remove --rotate-certificates=false, then restart the kubelet.",
    },
    Item {
        id: "4.2.11",
        title: "Verify that the RotateKubeletServerCertificate argument is set to true (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(
            &["server-cert-rotation"],
            Judge::Stricter("it also requires serverTLSBootstrap: true, without which the gate has nothing to rotate"),
        ),
        note: "",
        remediation: "Do not set RotateKubeletServerCertificate=false in featureGates / --feature-gates; set serverTLSBootstrap: true and approve the kubelet-serving CSRs; restart the kubelet.",
    },
    Item {
        id: "4.2.12",
        title: "Ensure that the Kubelet only makes use of Strong Cryptographic Ciphers (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["tls-strong-cipher-suites"], Judge::Same),
        note: "",
        remediation: "Set tlsCipherSuites in the KubeletConfiguration (or --tls-cipher-suites) to TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 or a subset; restart the kubelet.",
    },
    Item {
        id: "4.2.13",
        title: "Ensure that a limit is set on pod PIDs (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["pod-pids-limit-set"], Judge::Same),
        note: "",
        remediation: "Set podPidsLimit in the KubeletConfiguration (or --pod-max-pids) to a positive limit sized for your workloads, then restart the kubelet.",
    },
    Item {
        id: "4.2.14",
        title: "Ensure that the --seccomp-default parameter is set to true (Manual)",
        assessment: Manual,
        scored: false,
        backing: Backing::Controls(&["seccomp-default-enabled"], Judge::Same),
        note: "",
        remediation: "Set seccompDefault: true in the KubeletConfiguration (or --seccomp-default), then restart the kubelet.",
    },
];

/// The items of section 4.3: kube-proxy.
pub static KUBE_PROXY_ITEMS: &[Item] = &[Item {
    id: "4.3.1",
    title: "Ensure that the kube-proxy metrics service is bound to localhost (Automated)",
    assessment: Automated,
    scored: true,
    backing: Backing::Controls(&["kube-proxy-metrics-localhost"], Judge::Same),
    note: "the effective metricsBindAddress under kube-proxy's precedence (a --config file makes --metrics-bind-address ignored) plus the listener kube-proxy owns; kube-bench reads the flag and the kubeconfig, never the --config file, and passes whenever the flag is absent",
    remediation: "Set kube-proxy's metricsBindAddress (or --metrics-bind-address) to 127.0.0.1:10249, its default, or remove the setting.",
}];

/// Section 4's groups, shared by v1.12 and v2.0.
pub static GROUPS: &[Group] = &[
    Group {
        id: "4.1",
        text: "Worker Node Configuration Files",
        items: FILES,
    },
    Group {
        id: "4.2",
        text: "Kubelet",
        items: KUBELET,
    },
    Group {
        id: "4.3",
        text: "kube-proxy",
        items: KUBE_PROXY_ITEMS,
    },
];

/// CIS Kubernetes Benchmark v1.12.0, section 4.
pub static CIS_1_12: Benchmark = Benchmark {
    id: "cis-1.12",
    name: "CIS Kubernetes Benchmark v1.12.0",
    kubernetes: "1.32-1.34",
    section: "4",
    text: "Worker Node Security Configuration",
    source: "kube-bench cfg/cis-1.12/node.yaml (commit a73ce37)",
    groups: GROUPS,
};

/// CIS Kubernetes Benchmark v2.0.1, section 4 (the same items as v1.12.0).
pub static CIS_2_0: Benchmark = Benchmark {
    id: "cis-2.0",
    name: "CIS Kubernetes Benchmark v2.0.1",
    kubernetes: "1.34-1.35",
    section: "4",
    text: "Worker Node Security Configuration",
    source: "kube-bench cfg/cis-2.0/node.yaml (PR #2126, commit c4fd3ec; not in a kube-bench release yet)",
    groups: GROUPS,
};
