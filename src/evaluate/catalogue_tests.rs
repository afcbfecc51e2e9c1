//! The catalogue as a public contract: every control id, family, CIS reference and
//! practice; policies that name controls; and evidence behind every verdict.

use super::{
    PRACTICE_AUDIT, PRACTICE_AUTHN, PRACTICE_HARDENING, PRACTICE_NETWORK, PRACTICE_POD_SECURITY,
    PRACTICE_RBAC, PRACTICE_RESOURCES, PRACTICE_TLS,
};
use crate::evaluate::testing::*;
use crate::evaluate::{catalogue, evaluate, Family, Status};
use crate::model::snapshot::FileRole;

fn is_kebab(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('-')
        && !id.ends_with('-')
        && !id.contains("--")
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The public contract: every id, its family and its CIS reference.
const CONTRACT: &[(&str, Family, Option<&str>)] = &[
    ("read-only-port-disabled", Family::ApiAccess, Some("4.2.4")),
    ("api-bind-address-restricted", Family::ApiAccess, None),
    ("healthz-bind-localhost", Family::ApiAccess, None),
    ("tls-serving-cert-configured", Family::Tls, Some("4.2.9")),
    ("client-ca-configured", Family::Tls, Some("4.2.3")),
    ("tls-min-version", Family::Tls, None),
    ("tls-strong-cipher-suites", Family::Tls, Some("4.2.12")),
    ("client-cert-rotation", Family::Tls, Some("4.2.10")),
    ("server-cert-rotation", Family::Tls, Some("4.2.11")),
    ("serving-cert-valid", Family::Tls, None),
    ("client-cert-valid", Family::Tls, None),
    ("anonymous-auth-disabled", Family::Authn, Some("4.2.1")),
    ("authorization-mode-webhook", Family::Authn, Some("4.2.2")),
    ("authentication-webhook-enabled", Family::Authn, None),
    ("kubelet-api-rejects-anonymous", Family::Authn, None),
    (
        "streaming-idle-timeout-set",
        Family::Hardening,
        Some("4.2.5"),
    ),
    ("iptables-util-chains", Family::Hardening, Some("4.2.6")),
    ("hostname-override-unset", Family::Hardening, Some("4.2.7")),
    ("event-qps-limited", Family::Hardening, Some("4.2.8")),
    ("pod-pids-limit-set", Family::Hardening, Some("4.2.13")),
    ("seccomp-default-enabled", Family::Hardening, Some("4.2.14")),
    ("protect-kernel-defaults", Family::Hardening, None),
    ("kubelet-version-supported", Family::Hardening, None),
    ("kubelet-version-no-known-cves", Family::Hardening, None),
    ("running-config-matches-disk", Family::Hardening, None),
    ("kube-reserved-set", Family::Resources, None),
    ("system-reserved-set", Family::Resources, None),
    ("eviction-hard-set", Family::Resources, None),
    ("config-file-permissions", Family::Files, Some("4.1.9")),
    ("config-file-ownership", Family::Files, Some("4.1.10")),
    ("kubeconfig-permissions", Family::Files, Some("4.1.5")),
    ("kubeconfig-ownership", Family::Files, Some("4.1.6")),
    ("client-ca-permissions", Family::Files, Some("4.1.7")),
    ("client-ca-ownership", Family::Files, Some("4.1.8")),
    ("serving-key-permissions", Family::Files, None),
    ("service-file-permissions", Family::Files, Some("4.1.1")),
    ("service-file-ownership", Family::Files, Some("4.1.2")),
    (
        "kube-proxy-kubeconfig-permissions",
        Family::Files,
        Some("4.1.3"),
    ),
    (
        "kube-proxy-kubeconfig-ownership",
        Family::Files,
        Some("4.1.4"),
    ),
    (
        "kube-proxy-metrics-localhost",
        Family::ApiAccess,
        Some("4.3.1"),
    ),
    ("pod-security-enforced", Family::PodSecurity, None),
    ("no-host-takeover-pods", Family::PodSecurity, None),
    ("kubelet-credential-node-scoped", Family::Rbac, None),
    ("node-authorizer-enabled", Family::Rbac, None),
    ("kubelet-identity-least-privilege", Family::Rbac, None),
    ("apiserver-audit-log-enabled", Family::Audit, None),
];

#[test]
fn catalogue_matches_the_contract() {
    let all = catalogue();
    let mut seen = std::collections::BTreeSet::new();
    for c in &all {
        assert!(is_kebab(c.id), "{} is not kebab-case", c.id);
        assert!(seen.insert(c.id), "duplicate id {}", c.id);
        assert!(
            !c.title.is_empty() && !c.expected.is_empty() && !c.remediation.is_empty(),
            "{}",
            c.id
        );
        let practices = [
            PRACTICE_NETWORK,
            PRACTICE_TLS,
            PRACTICE_AUTHN,
            PRACTICE_HARDENING,
            PRACTICE_RESOURCES,
            PRACTICE_POD_SECURITY,
            PRACTICE_RBAC,
            PRACTICE_AUDIT,
        ];
        assert!(practices.contains(&c.practice), "{}: {}", c.id, c.practice);
    }
    let ids: Vec<&str> = all.iter().map(|c| c.id).collect();
    let want: Vec<&str> = CONTRACT.iter().map(|c| c.0).collect();
    assert_eq!(ids, want);
    for (id, family, cis) in CONTRACT {
        let c = crate::evaluate::control(id).unwrap();
        assert_eq!(c.family, *family, "{id}");
        assert_eq!(c.cis, *cis, "{id}");
    }
    // CIS references are unique too.
    let mut cis: Vec<&str> = all.iter().filter_map(|c| c.cis).collect();
    let n = cis.len();
    cis.sort();
    cis.dedup();
    assert_eq!(cis.len(), n);
}

#[test]
fn policy_can_name_controls() {
    let p = crate::evaluate::policy::Policy::from_yaml(
        "p.yaml",
        "controls:\n  hostname-override-unset:\n    enabled: false\n  tls-min-version:\n    severity: low\n",
    )
    .unwrap();
    assert!(!p.enabled("hostname-override-unset"));
    let snap = kubeadm();
    let results = evaluate(&snap, &p);
    assert!(results.iter().all(|r| r.id != "hostname-override-unset"));
    let tls = results.iter().find(|r| r.id == "tls-min-version").unwrap();
    assert_eq!(tls.severity, crate::evaluate::Severity::Low);
    assert_eq!(tls.expected, "≥ VersionTLS12");
}

/// Every outcome explains itself; a pass or a fail always shows its evidence.
#[test]
fn every_verdict_carries_evidence() {
    let mut hardened = kubeadm();
    {
        let k = kubelet_mut(&mut hardened);
        k.unit = Some("kubelet.service".into());
        k.version = Some("v1.31.4".into());
        k.files = vec![
            file(
                FileRole::ConfigFile,
                "/var/lib/kubelet/config.yaml",
                0o600,
                0,
                0,
            ),
            file(
                FileRole::Kubeconfig,
                "/etc/kubernetes/kubelet.conf",
                0o600,
                0,
                0,
            ),
            file(
                FileRole::ClientCa,
                "/etc/kubernetes/pki/ca.crt",
                0o644,
                0,
                0,
            ),
            file(
                FileRole::ServiceUnit,
                "/usr/lib/systemd/system/kubelet.service",
                0o644,
                0,
                0,
            ),
        ];
        k.client_ca = Some(Ok(cert("kubernetes", &[], true)));
        k.credential = Some(Ok(client_cert("system:node:node-1", &["system:nodes"])));
    }
    hardened.apiserver = Some(apiserver(&["--audit-log-path=/var/log/a.log"]));
    let snapshots = [
        hardened,
        snapshot_with(&[], None),
        snapshot_with(&[], Some("readOnlyPort: [\n")),
    ];
    let policy = crate::evaluate::policy::Policy::embedded();
    for snap in &snapshots {
        let results = evaluate(snap, &policy);
        assert_eq!(results.len(), CONTRACT.len());
        for r in &results {
            assert!(!r.reason.is_empty(), "{}: empty reason", r.id);
            assert!(!r.expected.is_empty(), "{}", r.id);
            if matches!(r.status, Status::Pass | Status::Fail) {
                assert!(!r.observed.is_empty(), "{}: no observed value", r.id);
                assert!(!r.source.is_empty(), "{}: no source", r.id);
            }
        }
    }
    // The flags-only kubelet fails the critical defaults.
    let flags_only = evaluate(&snapshots[1], &policy);
    for id in [
        "read-only-port-disabled",
        "anonymous-auth-disabled",
        "authorization-mode-webhook",
    ] {
        let r = flags_only.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, Status::Fail, "{id}");
    }
    // An unparseable config file makes file-decided settings unknown, never pass/fail.
    let broken = evaluate(&snapshots[2], &policy);
    let r = broken
        .iter()
        .find(|r| r.id == "read-only-port-disabled")
        .unwrap();
    assert_eq!(r.status, Status::Unknown);
    // Without a kubelet everything is unknown with the discovery reason.
    let mut none = kubeadm();
    none.kubelet = None;
    none.discovery = crate::model::snapshot::Discovery::NotFound {
        reason: "no kubelet process".into(),
    };
    // ... but the cluster controls, which need the API, not the kubelet: without API
    // access they are unknown for that reason.
    for r in evaluate(&none, &policy) {
        assert_eq!(r.status, Status::Unknown, "{}", r.id);
        let needs_api = crate::evaluate::catalogue()
            .iter()
            .any(|c| c.id == r.id && c.needs == crate::evaluate::Needs::Api);
        if needs_api {
            assert!(r.reason.starts_with("no API access"), "{}", r.reason);
        } else if r.id.starts_with("kube-proxy-") {
            // kube-proxy is judged with or without a kubelet; this snapshot did not look.
            assert!(
                r.reason.contains("kube-proxy was not looked for"),
                "{}",
                r.reason
            );
        } else {
            assert_eq!(r.reason, "no kubelet process");
        }
    }
}
