//! The CIS Google Kubernetes Engine (GKE) Benchmark v1.9.0, section 3 (Worker Nodes):
//! items, titles and `scored` as in kube-bench cfg/gke-1.9.0/node.yaml (commit a73ce37).
//! Its node section has only the configuration files: the kubelet items of GKE benchmarks
//! up to v1.6.0 (cfg/gke-1.6.0/node.yaml, group 3.2) are gone from v1.8.0 on.

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
        note: "kube-bench audits /var/lib/kubelet/kubeconfig (cfg/gke-1.9.0/config.yaml), the kubelet's kubeconfig on GKE; here it is the file the kubelet's --kubeconfig names",
        remediation: "chmod 644 (or stricter) the file named by the kubelet's --kubeconfig (on GKE /var/lib/kubelet/kubeconfig).",
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
        title: "Ensure that the kubelet configuration file has permissions set to 644 (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["config-file-permissions"], Judge::ModeAtMost(0o644)),
        note: "the --config file (on GKE /home/kubernetes/kubelet-config.yaml) and every drop-in, judged at 644 or stricter, as kube-bench's bitmask test does",
        remediation: "chmod 644 the kubelet's --config file (and any drop-in under --config-dir).",
    },
    Item {
        id: "3.1.4",
        title: "Ensure that the kubelet configuration file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["config-file-ownership"], Judge::Same),
        note: "",
        remediation: "chown root:root the kubelet's --config file (and any drop-in under --config-dir).",
    },
];

/// Section 3's groups.
pub static GROUPS: &[Group] = &[Group {
    id: "3.1",
    text: "Worker Node Configuration Files",
    items: FILES,
}];

/// CIS GKE Benchmark v1.9.0, section 3.
pub static GKE_1_9_0: Benchmark = Benchmark {
    id: "gke-1.9.0",
    name: "CIS Google Kubernetes Engine (GKE) Benchmark v1.9.0",
    kubernetes: "1.31+",
    section: "3",
    text: "Worker Nodes",
    source: "kube-bench cfg/gke-1.9.0/node.yaml (commit a73ce37)",
    groups: GROUPS,
};
