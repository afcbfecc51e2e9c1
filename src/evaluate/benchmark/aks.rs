//! The CIS Azure Kubernetes Service (AKS) Benchmark v1.8.0, section 3 (Worker Node
//! Security Configuration): items, titles and `scored` as in kube-bench
//! cfg/aks-1.8/node.yaml (commit a73ce37). Its kubelet items are EKS's with AKS's titles.

use super::{Assessment, Backing, Benchmark, Group, Item, Judge};

use Assessment::Automated;

/// Why the azure.json items are not checked.
const AZURE_JSON: &str = "the agent does not observe /etc/kubernetes/azure.json (the cloud provider's credentials file); kube-bench's audit stats the kubelet config file instead";

/// The items of section 3.1: Worker Node Configuration Files.
pub static FILES: &[Item] = &[
    Item {
        id: "3.1.1",
        title: "Ensure that the kubeconfig file permissions are set to 644 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::Controls(&["kubeconfig-permissions"], Judge::ModeAtMost(0o644)),
        note: "the file the kubelet's --kubeconfig names, judged at the benchmark's 644 whatever the policy's limit",
        remediation: "chmod 644 (or stricter) the file named by the kubelet's --kubeconfig (on AKS /var/lib/kubelet/kubeconfig).",
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
        title: "Ensure that the azure.json file has permissions set to 644 or more restrictive (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::NotChecked(AZURE_JSON),
        note: "",
        remediation: "chmod 644 (or stricter) /etc/kubernetes/azure.json.",
    },
    Item {
        id: "3.1.4",
        title: "Ensure that the azure.json file ownership is set to root:root (Automated)",
        assessment: Automated,
        scored: true,
        backing: Backing::NotChecked(AZURE_JSON),
        note: "",
        remediation: "chown root:root /etc/kubernetes/azure.json.",
    },
];

/// The items of section 3.2: Kubelet.
pub static KUBELET: &[Item] = &[
    Item {
        title: "Ensure that the --anonymous-auth argument is set to false (Automated)",
        ..super::eks::KUBELET[0]
    },
    super::eks::KUBELET[1],
    Item {
        title: "Ensure that the --client-ca-file argument is set as appropriate (Automated)",
        ..super::eks::KUBELET[2]
    },
    Item {
        title: "Ensure that the --read-only-port is secured (Automated)",
        note: "the effective port is judged: 0 passes",
        ..super::eks::KUBELET[3]
    },
    super::eks::KUBELET[4],
    Item {
        title: "Ensure that the --make-iptables-util-chains argument is set to true (Automated)",
        ..super::eks::KUBELET[5]
    },
    Item {
        note: "kube-bench's audit of this item passes only 0; the title accepts 0 or a level that captures the events",
        ..super::eks::KUBELET[6]
    },
    Item {
        title: "Ensure that the --rotate-certificates argument is not set to false (Automated)",
        note: "the effective value is judged: an unset rotateCertificates is the kubelet's default false and fails",
        ..super::eks::KUBELET[7]
    },
    super::eks::KUBELET[8],
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

/// CIS AKS Benchmark v1.8.0, section 3.
pub static AKS_1_8: Benchmark = Benchmark {
    id: "aks-1.8",
    name: "CIS Azure Kubernetes Service (AKS) Benchmark v1.8.0",
    kubernetes: "1.32+",
    section: "3",
    text: "Worker Node Security Configuration",
    source: "kube-bench cfg/aks-1.8/node.yaml (commit a73ce37)",
    groups: GROUPS,
};
