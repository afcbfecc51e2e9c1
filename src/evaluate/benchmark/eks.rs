//! The CIS Amazon Elastic Kubernetes Service (EKS) Benchmark v1.8.0, section 3 (Worker
//! Nodes): items, titles and `scored` as in kube-bench cfg/eks-1.8.0/node.yaml (commit
//! a73ce37). kube-bench chooses it for EKS 1.32–1.34 (cmd/util.go `eksBenchmark`).

use super::{Assessment, Backing, Benchmark, Group, Item, Judge};

use Assessment::Automated;

/// The items of section 3.1: Worker Node Configuration Files.
pub static FILES: &[Item] = &[
    Item {
        id: "3.1.1",
        title: "Ensure that the kubeconfig file permissions are set to 644 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["kubeconfig-permissions"], Judge::ModeAtMost(0o644)),
        note: "the file the kubelet's --kubeconfig names (on EKS /var/lib/kubelet/kubeconfig), judged at the benchmark's 644 whatever the policy's limit",
        remediation: "chmod 644 (or stricter) the file named by the kubelet's --kubeconfig.",
    },
    Item {
        id: "3.1.2",
        title: "Ensure that the kubelet kubeconfig file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["kubeconfig-ownership"], Judge::Same),
        note: "",
        remediation: "chown root:root the file named by the kubelet's --kubeconfig.",
    },
    Item {
        id: "3.1.3",
        title: "Ensure that the kubelet configuration file has permissions set to 644 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["config-file-permissions"], Judge::ModeAtMost(0o644)),
        note: "the --config file (on EKS /etc/kubernetes/kubelet/config.json) and every drop-in under --config-dir, judged at 644",
        remediation: "chmod 644 (or stricter) the kubelet's --config file and every drop-in under its --config-dir.",
    },
    Item {
        id: "3.1.4",
        title: "Ensure that the kubelet configuration file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["config-file-ownership"], Judge::Same),
        note: "",
        remediation: "chown root:root the kubelet's --config file and every drop-in under its --config-dir.",
    },
];

/// The items of section 3.2: Kubelet (shared with AKS where the items agree).
pub static KUBELET: &[Item] = &[
    Item {
        id: "3.2.1",
        title: "Ensure that the Anonymous Auth is Not Enabled (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["anonymous-auth-disabled"], Judge::Same),
        note: "the effective value is judged (flag, drop-ins, config file, default)",
        remediation: "Set authentication.anonymous.enabled: false in the kubelet's config file (or --anonymous-auth=false in its arguments), then restart the kubelet.",
    },
    Item {
        id: "3.2.2",
        title: "Ensure that the --authorization-mode argument is not set to AlwaysAllow (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["authorization-mode-webhook"], Judge::Same),
        note: "",
        remediation: "Set authorization.mode: Webhook (and authentication.webhook.enabled: true) in the kubelet's config file, or --authorization-mode=Webhook, then restart the kubelet.",
    },
    Item {
        id: "3.2.3",
        title: "Ensure that a Client CA File is Configured (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["client-ca-configured"], Judge::Same),
        note: "the control also requires the file to be readable and to hold a CA certificate",
        remediation: "Set authentication.x509.clientCAFile in the kubelet's config file (or --client-ca-file) to the cluster's CA bundle, then restart the kubelet.",
    },
    Item {
        id: "3.2.4",
        title: "Ensure that the --read-only-port is disabled (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["read-only-port-disabled"], Judge::Same),
        note: "the effective port is judged; kube-bench also fails an unset readOnlyPort, which a config file defaults to 0",
        remediation: "Set readOnlyPort: 0 in the kubelet's config file (or --read-only-port=0), then restart the kubelet.",
    },
    Item {
        id: "3.2.5",
        title: "Ensure that the --streaming-connection-idle-timeout argument is not set to 0 (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["streaming-idle-timeout-set"], Judge::Same),
        note: "from Kubernetes 1.24 the setting has no effect and the control is not applicable: INFO",
        remediation: "Set streamingConnectionIdleTimeout to a non-zero duration (e.g. 4h0m0s) in the kubelet's config file and do not pass --streaming-connection-idle-timeout=0.",
    },
    Item {
        id: "3.2.6",
        title: "Ensure that the --make-iptables-util-chains argument is set to true (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["iptables-util-chains"], Judge::Same),
        note: "",
        remediation: "Set makeIPTablesUtilChains: true in the kubelet's config file and do not pass --make-iptables-util-chains=false, then restart the kubelet.",
    },
    Item {
        id: "3.2.7",
        title: "Ensure that the --eventRecordQPS argument is set to 0 or a level which ensures appropriate event capture (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(
            &["event-qps-limited"],
            Judge::Stricter("it fails eventRecordQPS 0 (no rate limit from Kubernetes 1.37), which this item accepts"),
        ),
        note: "",
        remediation: "Set eventRecordQPS in the kubelet's config file (or --event-qps) to a level that captures the events you need, then restart the kubelet.",
    },
    Item {
        id: "3.2.8",
        title: "Ensure that the --rotate-certificates argument is not present or is set to true (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["client-cert-rotation"], Judge::Same),
        note: "the effective value is judged: an unset rotateCertificates is the kubelet's default false and fails (kube-bench passes it)",
        remediation: "Set rotateCertificates: true in the kubelet's config file and do not pass --rotate-certificates=false, then restart the kubelet.",
    },
    Item {
        id: "3.2.9",
        title: "Ensure that the RotateKubeletServerCertificate argument is set to true (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(
            &["server-cert-rotation"],
            Judge::Stricter("it also requires serverTLSBootstrap: true; the item asks only for the feature gate"),
        ),
        note: "the gate is judged by its effective value (on by default since 1.12); kube-bench requires it to be written out",
        remediation: "Set featureGates.RotateKubeletServerCertificate: true (never false) and serverTLSBootstrap: true in the kubelet's config file, approve the kubelet-serving CSRs, then restart the kubelet.",
    },
];

/// Section 3's groups.
pub static GROUPS: &[Group] = &[
    Group {
        id: "3.1",
        text: "Worker Node Configuration Files",
        items: FILES,
    },
    Group {
        id: "3.2",
        text: "Kubelet",
        items: KUBELET,
    },
];

/// CIS Amazon EKS Benchmark v1.8.0, section 3.
pub static EKS_1_8_0: Benchmark = Benchmark {
    id: "eks-1.8.0",
    name: "CIS Amazon Elastic Kubernetes Service (EKS) Benchmark v1.8.0",
    kubernetes: "1.32-1.34",
    section: "3",
    text: "Worker Nodes",
    source: "kube-bench cfg/eks-1.8.0/node.yaml (commit a73ce37)",
    groups: GROUPS,
};
