use super::*;

#[test]
fn embedded_default_parses() {
    let p = Policy::embedded();
    assert_eq!(p.expected.tls_min_version, "VersionTLS12");
    assert_eq!(p.mode_limit(ModeLimit::ClientCa), 0o644);
    assert!(p.enabled("anonymous-auth-disabled"));
    assert!(p.expected.cluster_checks);
    assert_eq!(p.expected.pod_security_required_level, "baseline");
    assert_eq!(
        p.expected.pod_security_exempt_namespaces,
        ["kube-system", "kubelet-sentinel"]
    );
    assert!(p.expected.host_takeover_allowed_pods[0]
        .matches("kubelet-sentinel", "kubelet-sentinel-x7k2p"));
    let p = Policy::from_yaml(
            "p.yaml",
            "expected:\n  cluster_checks: false\n  pod_security_required_level: restricted\n  host_takeover_allowed_pods: [{namespace: cilium}]\n",
        )
        .unwrap();
    assert!(!p.expected.cluster_checks);
    assert!(p.expected.host_takeover_allowed_pods[0].matches("cilium", "anything"));
}

#[test]
fn user_policy_layers_and_validates() {
    let p = Policy::from_yaml(
            "p.yaml",
            "controls:\n  read-only-port-disabled:\n    severity: low\n  hostname-override-unset:\n    enabled: false\nexpected:\n  tls_min_version: VersionTLS13\n",
        )
        .unwrap();
    assert_eq!(p.severity("read-only-port-disabled"), Some(Severity::Low));
    assert!(!p.enabled("hostname-override-unset"));
    assert_eq!(p.expected.tls_min_version, "VersionTLS13");
}

#[test]
fn errors_name_the_line() {
    let e = Policy::from_yaml(
        "p.yaml",
        "controls:\n  no-such-control:\n    enabled: false\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = Policy::from_yaml(
        "p.yaml",
        "controls:\n  read-only-port-disabled:\n    severity: huge\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = Policy::from_yaml("p.yaml", "expected:\n  tls_min_version: SSLv3\n").unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = Policy::from_yaml(
        "p.yaml",
        "expected:\n  pod_security_required_level: privileged\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = Policy::from_yaml(
        "p.yaml",
        "expected:\n  host_takeover_allowed_pods:\n    - {namespace: a, prefix: b}\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = Policy::from_yaml(
        "p.yaml",
        "expected:\n  host_takeover_allowed_pods:\n    - {namespace: \"\", name_prefix: b}\n",
    )
    .unwrap_err();
    assert!(e.to_string().contains("line 2"), "{e}");
    let e = Policy::from_yaml("p.yaml", "bogus: 1\n").unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
}

/// Issue 13 item 12: a boolean is `true` or `false`; YAML 1.1 spellings, numbers and
/// quoted strings are refused, naming the key's path and line.
#[test]
fn booleans_are_only_true_or_false_and_the_error_names_the_key() {
    for bad in ["yes", "on", "1", "\"true\"", "no", "off", "y"] {
        let text = format!("controls:\n  anonymous-auth-disabled:\n    enabled: {bad}\n");
        let e = Policy::from_yaml("p.yaml", &text).unwrap_err().to_string();
        assert!(
            e.contains("controls.anonymous-auth-disabled.enabled"),
            "{bad}: {e}"
        );
        assert!(e.contains("line 3"), "{bad}: {e}");
        let text = format!("expected:\n  cluster_checks: {bad}\n");
        let e = Policy::from_yaml("p.yaml", &text).unwrap_err().to_string();
        assert!(e.contains("expected.cluster_checks"), "{bad}: {e}");
    }
    for (good, want) in [("true", true), ("false", false)] {
        let text = format!(
                "controls:\n  anonymous-auth-disabled:\n    enabled: {good}\nexpected:\n  cluster_checks: {good}\n"
            );
        let p = Policy::from_yaml("p.yaml", &text).unwrap();
        assert_eq!(p.enabled("anonymous-auth-disabled"), want);
        assert_eq!(p.expected.cluster_checks, want);
    }
}
