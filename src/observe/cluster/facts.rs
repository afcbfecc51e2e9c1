//! From API objects to the plain facts the controls need. Total functions: every field of
//! a Pod or Namespace is optional in the API types, and a missing one is simply absent
//! here (never a panic, never a guess that something is safe: an unknown `privileged` is
//! not `true`, but the pod is still listed and its other fields judged).

use k8s_openapi::api::core::v1::{Namespace, Node, Pod, SecurityContext};

use crate::model::snapshot::{NamespaceFacts, NodeFacts, PodFacts};

/// The Pod Security Admission label that enforces a level on a namespace.
pub const ENFORCE_LABEL: &str = "pod-security.kubernetes.io/enforce";
/// The version of the Pod Security Standards the enforced level refers to.
pub const ENFORCE_VERSION_LABEL: &str = "pod-security.kubernetes.io/enforce-version";

fn privileged(sc: Option<&SecurityContext>) -> bool {
    sc.and_then(|s| s.privileged).unwrap_or(false)
}

/// The facts of one pod.
pub fn pod_facts(pod: &Pod) -> PodFacts {
    let meta = &pod.metadata;
    let owner = meta
        .owner_references
        .as_ref()
        .and_then(|owners| {
            owners
                .iter()
                .find(|o| o.controller == Some(true))
                .or_else(|| owners.first())
        })
        .map(|o| format!("{}/{}", o.kind, o.name));
    let mut facts = PodFacts {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
        owner,
        phase: pod.status.as_ref().and_then(|s| s.phase.clone()),
        ..PodFacts::default()
    };
    let Some(spec) = &pod.spec else {
        return facts;
    };
    facts.host_pid = spec.host_pid.unwrap_or(false);
    facts.host_ipc = spec.host_ipc.unwrap_or(false);
    facts.host_network = spec.host_network.unwrap_or(false);
    let containers = spec
        .containers
        .iter()
        .map(|c| (c.name.as_str(), privileged(c.security_context.as_ref())))
        .chain(
            spec.init_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), privileged(c.security_context.as_ref()))),
        )
        .chain(
            spec.ephemeral_containers
                .iter()
                .flatten()
                .map(|c| (c.name.as_str(), privileged(c.security_context.as_ref()))),
        );
    facts.privileged_containers = containers
        .filter(|(_, p)| *p)
        .map(|(n, _)| n.to_string())
        .collect();
    facts.host_paths = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| v.host_path.as_ref().map(|h| h.path.clone()))
        .collect();
    facts
}

/// The facts of one namespace.
pub fn namespace_facts(ns: &Namespace) -> NamespaceFacts {
    let labels = ns.metadata.labels.as_ref();
    NamespaceFacts {
        name: ns.metadata.name.clone().unwrap_or_default(),
        enforce: labels.and_then(|l| l.get(ENFORCE_LABEL).cloned()),
        enforce_version: labels.and_then(|l| l.get(ENFORCE_VERSION_LABEL).cloned()),
    }
}

/// The facts of this node's Node object. Of its labels only the pool is kept: the value
/// of the first of `pool_labels` it carries (`model::label::pool`: a valid label value,
/// at most 63 characters).
pub fn node_facts(node: &Node, pool_labels: &[String]) -> NodeFacts {
    NodeFacts {
        pool: node
            .metadata
            .labels
            .as_ref()
            .and_then(|l| crate::model::label::pool(l, pool_labels)),
        name: node.metadata.name.clone().unwrap_or_default(),
        kubelet_version: node
            .status
            .as_ref()
            .and_then(|s| s.node_info.as_ref())
            .map(|i| i.kubelet_version.clone())
            .filter(|v| !v.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const POD: &str = r#"{
      "apiVersion": "v1", "kind": "Pod",
      "metadata": {"name": "cilium-x7k2p", "namespace": "kube-system",
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "cilium",
          "uid": "6f1c", "controller": true, "blockOwnerDeletion": true}]},
      "spec": {"nodeName": "node-1", "hostNetwork": true, "hostPID": false,
        "containers": [{"name": "agent", "image": "cilium:1.16",
          "securityContext": {"privileged": true}}],
        "initContainers": [{"name": "mount-bpf", "securityContext": {"privileged": false}}],
        "volumes": [{"name": "run", "hostPath": {"path": "/var/run/cilium", "type": "DirectoryOrCreate"}},
          {"name": "tmp", "emptyDir": {}}]},
      "status": {"phase": "Running"}
    }"#;

    #[test]
    fn a_realistic_pod() {
        let pod: Pod = serde_json::from_str(POD).unwrap();
        let f = pod_facts(&pod);
        assert_eq!(f.namespace, "kube-system");
        assert_eq!(f.name, "cilium-x7k2p");
        assert_eq!(f.owner.as_deref(), Some("DaemonSet/cilium"));
        assert_eq!(f.phase.as_deref(), Some("Running"));
        assert!(f.host_network && !f.host_pid && !f.host_ipc);
        assert_eq!(f.privileged_containers, ["agent"]);
        assert_eq!(f.host_paths, ["/var/run/cilium"]);
    }

    #[test]
    fn a_bare_pod_has_no_facts_but_no_panic() {
        let f = pod_facts(&Pod::default());
        assert_eq!(f, PodFacts::default());
        let pod: Pod =
            serde_json::from_str(r#"{"metadata": {}, "spec": {"containers": []}}"#).unwrap();
        assert_eq!(pod_facts(&pod), PodFacts::default());
    }

    #[test]
    fn namespace_labels() {
        let ns: Namespace = serde_json::from_str(
            r#"{"metadata": {"name": "web", "labels": {
                "pod-security.kubernetes.io/enforce": "baseline",
                "pod-security.kubernetes.io/enforce-version": "v1.33",
                "kubernetes.io/metadata.name": "web"}}}"#,
        )
        .unwrap();
        let f = namespace_facts(&ns);
        assert_eq!(f.name, "web");
        assert_eq!(f.enforce.as_deref(), Some("baseline"));
        assert_eq!(f.enforce_version.as_deref(), Some("v1.33"));
        assert_eq!(
            namespace_facts(&Namespace::default()),
            NamespaceFacts::default()
        );
    }

    #[test]
    fn node_version() {
        let node: Node = serde_json::from_str(
            r#"{"metadata": {"name": "node-1"}, "status": {"nodeInfo": {"machineID": "m",
                "systemUUID": "s", "bootID": "b", "kernelVersion": "6.8.0",
                "osImage": "Ubuntu", "containerRuntimeVersion": "containerd://1.7.24",
                "kubeletVersion": "v1.33.4", "kubeProxyVersion": "v1.33.4",
                "operatingSystem": "linux", "architecture": "amd64"}}}"#,
        )
        .unwrap();
        let f = node_facts(&node, &[]);
        assert_eq!(f.name, "node-1");
        assert_eq!(f.kubelet_version.as_deref(), Some("v1.33.4"));
        assert_eq!(f.pool, None);
        assert_eq!(node_facts(&Node::default(), &[]), NodeFacts::default());
    }

    #[test]
    fn node_pool_from_the_listed_labels() {
        let node: Node = serde_json::from_str(
            r#"{"metadata": {"name": "node-1", "labels": {
                "kubernetes.io/hostname": "node-1",
                "karpenter.sh/nodepool": "general",
                "eks.amazonaws.com/nodegroup": "ng-arm64"}}}"#,
        )
        .unwrap();
        let keys = |ks: &[&str]| ks.iter().map(ToString::to_string).collect::<Vec<_>>();
        let defaults = keys(crate::model::label::DEFAULT_POOL_LABELS);
        // The list's order decides: EKS's label comes before Karpenter's in the defaults.
        assert_eq!(
            node_facts(&node, &defaults).pool.as_deref(),
            Some("ng-arm64")
        );
        assert_eq!(
            node_facts(&node, &keys(&["karpenter.sh/nodepool"]))
                .pool
                .as_deref(),
            Some("general")
        );
        assert_eq!(node_facts(&node, &keys(&["absent/label"])).pool, None);
    }

    fn json() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-z/.]{0,12}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            let keys = prop_oneof![
                Just("metadata".to_string()),
                Just("spec".to_string()),
                Just("status".to_string()),
                Just("name".to_string()),
                Just("namespace".to_string()),
                Just("labels".to_string()),
                Just("containers".to_string()),
                Just("volumes".to_string()),
                Just("hostPath".to_string()),
                Just("path".to_string()),
                Just("securityContext".to_string()),
                Just("privileged".to_string()),
                Just("hostPID".to_string()),
                Just("ownerReferences".to_string()),
                "[a-z]{1,6}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
                prop::collection::btree_map(keys, inner, 0..5)
                    .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the API sends, decoding either fails (an error, reported) or yields
        /// facts; it never panics.
        #[test]
        fn arbitrary_objects_never_panic(v in json()) {
            if let Ok(pod) = serde_json::from_value::<Pod>(v.clone()) {
                let _ = pod_facts(&pod);
            }
            if let Ok(ns) = serde_json::from_value::<Namespace>(v.clone()) {
                let _ = namespace_facts(&ns);
            }
            if let Ok(n) = serde_json::from_value::<Node>(v) {
                let _ = node_facts(&n, &["labels".to_string()]);
            }
        }
    }
}
