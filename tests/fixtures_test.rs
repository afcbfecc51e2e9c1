//! End-to-end tests over the fixture host trees in `tests/fixtures/<name>/`: observe the
//! copied tree (as the agent would with `--host-root`), evaluate with the embedded default
//! policy, and compare the status of EVERY catalogue control with an explicit table, plus
//! the observed value and source of the decisive ones.
//!
//! Expectations follow the kubelet's source and recordings of real kubelets under
//! tests/kubelet-truth/, not whatever the code happened to do; a comment explains every
//! non-obvious one.

mod common;

use common::*;
use kubelet_sentinel::evaluate::Status;
use kubelet_sentinel::model::flag_origin::OriginHow;
use kubelet_sentinel::model::snapshot::{
    Credential, Discovery, FileObservation, FileRole, Kubelet,
};

const P: Status = Status::Pass;
const F: Status = Status::Fail;
const U: Status = Status::Unknown;
const NA: Status = Status::NotApplicable;

/// Every fixture with a table below (the kube-bench regression fixtures live under
/// `kube-bench/` and are covered by `kube_bench_regressions.rs`).
const FIXTURES: &[&str] = &[
    "aks",
    "broken-yaml",
    "config-missing",
    "eks-al2",
    "eks-al2023",
    "flag-overrides-file",
    "flags-only",
    "gke",
    "huge-config",
    "hyperkube",
    "k3s",
    "k3s-agent",
    "k3s-server",
    "kubeadm-hardened",
    "microk8s",
    "misconfigured",
    "no-kubelet",
    "non-utf8-cmdline",
    "permission-denied",
    "rke2",
    "rke2-no-flag",
    "rke2-overrides",
    "symlink-absolute",
    "symlink-dotdot",
    "symlink-loop",
];

fn kubelet(r: &Results) -> &Kubelet {
    r.snapshot.kubelet.as_ref().unwrap_or_else(|| {
        panic!(
            "{}: no kubelet observed: {:?}",
            r.fixture, r.snapshot.discovery
        )
    })
}

fn files(r: &Results, role: FileRole) -> Vec<&FileObservation> {
    kubelet(r).files_in(role).collect()
}

fn found_pid(r: &Results) -> i32 {
    match &r.snapshot.discovery {
        Discovery::Found { pid, .. } => *pid,
        other => panic!("{}: discovery {other:?}", r.fixture),
    }
}

/// Controls decided by the KubeletConfiguration (file or defaults), i.e. every kubelet
/// setting control except hostname-override-unset (command line only).
const CONFIG_DECIDED: &[&str] = &[
    "api-bind-address-restricted",
    "healthz-bind-localhost",
    "tls-serving-cert-configured",
    "client-ca-configured",
    "tls-min-version",
    "tls-strong-cipher-suites",
    "client-cert-rotation",
    "server-cert-rotation",
    "anonymous-auth-disabled",
    "authorization-mode-webhook",
    "authentication-webhook-enabled",
    "streaming-idle-timeout-set",
    "iptables-util-chains",
    "event-qps-limited",
    "pod-pids-limit-set",
    "seccomp-default-enabled",
    "kube-reserved-set",
    "system-reserved-set",
    "eviction-hard-set",
];

// ------------------------------------------------------------------------ harness

#[test]
fn every_fixture_directory_has_a_table() {
    let dirs = fixture_names();
    assert_eq!(
        dirs, FIXTURES,
        "a fixture directory without a table (or a table without a directory)"
    );
}

#[test]
fn harness_applies_modes_and_drops_dac_capabilities() {
    use std::os::unix::fs::PermissionsExt;
    let fx = Fixture::load("permission-denied");
    let cfg = fx.path("/var/lib/kubelet/config.yaml");
    let mode = std::fs::metadata(&cfg).expect("stat").permissions().mode() & 0o7777;
    assert_eq!(mode, 0o000, "modes.txt was not applied");
    let p = cfg.clone();
    let denied = std::thread::spawn(move || {
        drop_dac_capabilities();
        std::fs::read(&p).map_err(|e| e.kind())
    })
    .join()
    .expect("thread");
    assert_eq!(denied, Err(std::io::ErrorKind::PermissionDenied));
    if running_as_root() {
        // Without the drop, root reads a mode-000 file: the drop is what makes the
        // permission-denied fixture meaningful under CI.
        assert!(
            std::fs::read(&cfg).is_ok(),
            "root with CAP_DAC_OVERRIDE should read it"
        );
    }
    // The manifests themselves are not part of the host tree.
    assert!(!fx.path("/modes.txt").exists());
}

#[test]
fn harness_extends_sparse_files_and_writes_decoys() {
    use std::os::unix::fs::MetadataExt;
    let fx = Fixture::load("huge-config");
    let m = std::fs::metadata(fx.path("/var/lib/kubelet/config.yaml")).expect("stat");
    assert_eq!(m.len(), 50 * 1024 * 1024);
    assert!(
        m.blocks() * 512 < 1024 * 1024,
        "not sparse: {} blocks",
        m.blocks()
    );
    let _fx = Fixture::load("symlink-absolute");
    let decoy = std::fs::read_to_string("/tmp/kubelet-sentinel-decoy/absolute/kubelet-config.yaml")
        .expect("decoy written on the real filesystem");
    assert!(decoy.contains("readOnlyPort: 10255"));
}

// ------------------------------------------------------------------ distributions

#[test]
fn kubeadm_hardened() {
    let r = Fixture::load("kubeadm-hardened").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", P),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", P),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", P),
            ("client-cert-rotation", P),
            ("server-cert-rotation", P),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", P),
            ("seccomp-default-enabled", P),
            ("protect-kernel-defaults", P),
            ("kube-reserved-set", P),
            ("system-reserved-set", P),
            ("eviction-hard-set", P),
            ("config-file-permissions", P),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", P),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", P),
            ("service-file-ownership", P),
            // kube-proxy: the DaemonSet container; its ConfigMap volume (defaultMode 0600) mapped
            // to its host path through mountinfo; metrics on loopback, corroborated by its socket.
            ("kube-proxy-kubeconfig-permissions", P),
            ("kube-proxy-kubeconfig-ownership", P),
            ("kube-proxy-metrics-localhost", P),
            ("kubelet-credential-node-scoped", P),
            ("node-authorizer-enabled", P),
            ("apiserver-audit-log-enabled", P),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    r.expect_full(
        "kube-proxy-metrics-localhost",
        P,
        "127.0.0.1:10249",
        "config-file /var/lib/kube-proxy/config.conf",
    );
    r.expect_reason("kube-proxy-metrics-localhost", "on loopback only (live)");
    r.expect_reason("kube-proxy-metrics-localhost", "kube-proxy pid 2290");
    r.expect_reason(
        "kube-proxy-kubeconfig-permissions",
        "on the host /var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~configmap/kube-proxy/kubeconfig.conf",
    );
    // Discovery picks the kubelet among look-alikes: kube-proxy, kubelet-sentinel itself,
    // `journalctl -u kubelet`, a parenthesised comm, a kernel thread with no cmdline.
    assert_eq!(found_pid(&r), 1342);
    let k = kubelet(&r);
    assert_eq!(k.binary, "/usr/bin/kubelet");
    assert_eq!(k.flavour.as_str(), "kubelet");
    assert_eq!(k.unit.as_deref(), Some("kubelet.service"));
    assert_eq!(k.start_time_ticks, Some(1461));
    assert_eq!(r.snapshot.node, "k8s-cp-01");
    // The kubeadm `0s` durations are not effective values: the kubelet defaults them. The
    // idle timeout only matters to dockershim (kubelets up to 1.23): unknown without a
    // version.
    r.expect_full("streaming-idle-timeout-set", U, "4h0m0s", "default");
    r.expect_reason("streaming-idle-timeout-set", "replaces with the default");
    r.expect_full("read-only-port-disabled", P, "0", "config-file");
    r.expect_full("tls-min-version", P, "VersionTLS12", "config-file");
    r.expect_full(
        "kubelet-credential-node-scoped",
        P,
        "CN=system:node:k8s-cp-01 O=system:nodes (inline)",
        "kubeconfig",
    );
    // serverTLSBootstrap: the serving key is the rotated pem, through its symlink.
    let key = files(&r, FileRole::ServingKey);
    assert_eq!(key.len(), 1);
    assert_eq!(
        key[0].path,
        "/var/lib/kubelet/pki/kubelet-server-current.pem"
    );
    let meta = key[0].meta.as_ref().expect("serving key metadata");
    assert_eq!(
        meta.resolved,
        "/var/lib/kubelet/pki/kubelet-server-2025-01-14-09-31-07.pem"
    );
    assert_eq!(meta.mode, 0o600);
    // /lib -> usr/lib (merged /usr): the 10-kubeadm.conf drop-in is counted once.
    let units: Vec<&str> = files(&r, FileRole::ServiceUnit)
        .iter()
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(units, ["/usr/lib/systemd/system/kubelet.service"]);
    assert_eq!(files(&r, FileRole::ServiceDropIn).len(), 1);
    // The control-plane's kube-apiserver, with audit logging.
    let api = r
        .snapshot
        .apiserver
        .as_ref()
        .expect("kube-apiserver observed");
    assert_eq!(api.pid, 1903);
    r.expect_reason(
        "apiserver-audit-log-enabled",
        "/var/log/kubernetes/audit/audit.log",
    );
}

#[test]
fn flags_only() {
    let r = Fixture::load("flags-only").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", F),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", F),
            ("client-ca-configured", F),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", F),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", F),
            ("authorization-mode-webhook", F),
            ("authentication-webhook-enabled", F),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", F),
            ("system-reserved-set", F),
            // No --config: the kubelet has no default eviction thresholds (loadConfigFile
            // fills them in only for a --config file; a real flags-only kubelet's /configz
            // has no evictionHard: tests/kubelet-truth, scenario flags-only).
            ("eviction-hard-set", F),
            ("config-file-permissions", NA),
            ("config-file-ownership", NA),
            ("kubeconfig-permissions", P),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", NA),
            ("client-ca-ownership", NA),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // kube-proxy: a host process (systemd unit), flags only: its kubeconfig at the umask's
            // 0644, metrics on every interface.
            ("kube-proxy-kubeconfig-permissions", F),
            ("kube-proxy-kubeconfig-ownership", P),
            ("kube-proxy-metrics-localhost", F),
            ("kubelet-credential-node-scoped", F),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // kube-proxy as a host process: paths are host paths; the flag decides (no --config).
    r.expect_full("kube-proxy-metrics-localhost", F, "0.0.0.0:10249", "flag");
    r.expect_full(
        "kube-proxy-kubeconfig-permissions",
        F,
        "0644 /var/lib/kube-proxy/kubeconfig",
        "file-metadata",
    );
    r.expect_reason(
        "kube-proxy-metrics-localhost",
        "in the host's mount namespace",
    );
    // The legacy flags-only defaults (options.go `applyLegacyDefaults`): the four insecure
    // values.
    r.expect_full("anonymous-auth-disabled", F, "true", "default");
    r.expect_reason("anonymous-auth-disabled", "flags-only");
    r.expect_full("authorization-mode-webhook", F, "AlwaysAllow", "default");
    r.expect_full("authentication-webhook-enabled", F, "false", "default");
    r.expect_full("read-only-port-disabled", F, "10255", "default");
    assert!(kubelet(&r).config.flags_only_base);
    // An admin.conf copied as the kubelet's kubeconfig.
    r.expect_full(
        "kubelet-credential-node-scoped",
        F,
        "CN=kubernetes-admin O=system:masters (inline)",
        "kubeconfig",
    );
    // The self-signed serving key in the default cert dir.
    assert_eq!(
        files(&r, FileRole::ServingKey)[0].path,
        "/var/lib/kubelet/pki/kubelet.key"
    );
    // tlsMinVersion unset: every kubelet sets VersionTLS12 (component-base
    // DefaultTLSVersion), so no version is needed.
    r.expect_reason("tls-min-version", "refusing TLS 1.0 and 1.1");
}

#[test]
fn eks_al2() {
    let r = Fixture::load("eks-al2").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", P),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", NA),
            ("server-cert-rotation", P),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", NA),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", F),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", P),
            ("kube-reserved-set", P),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", F),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", F),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // No kube-proxy process in this host tree, and no proof it is absent.
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
            ("kubelet-credential-node-scoped", U),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // `--config /path` (space) is read; the JSON file decides.
    let k = kubelet(&r);
    assert_eq!(
        k.config.config_file.as_deref(),
        Some("/etc/kubernetes/kubelet/kubelet-config.json")
    );
    r.expect_full("anonymous-auth-disabled", P, "false", "config-file");
    r.expect_full("read-only-port-disabled", P, "0", "config-file");
    // The two TLS_RSA suites fail CIS 1.12 4.2.12 (and only those).
    let c = r.expect("tls-strong-cipher-suites", F);
    assert_eq!(c.source, "config-file");
    assert!(
        c.reason.contains("TLS_RSA_WITH_AES_256_GCM_SHA384"),
        "{}",
        c.reason
    );
    assert!(
        c.reason.contains("TLS_RSA_WITH_AES_128_GCM_SHA256"),
        "{}",
        c.reason
    );
    assert!(!c.reason.contains("TLS_ECDHE"), "{}", c.reason);
    // aws-iam-authenticator exec plugin: no client certificate to rotate.
    match &k.credential {
        Some(Ok(Credential::Exec { command })) => {
            assert_eq!(command, "/usr/bin/aws-iam-authenticator");
        }
        other => panic!("credential {other:?}"),
    }
    r.expect_reason("client-cert-rotation", "exec plugin");
    // cgroup v1 (AL2): the unit comes from the name=systemd line.
    assert_eq!(k.unit.as_deref(), Some("kubelet.service"));
    assert_eq!(files(&r, FileRole::ServiceDropIn).len(), 2);
    r.expect_full(
        "hostname-override-unset",
        F,
        "ip-192-168-12-34.us-west-2.compute.internal",
        "process",
    );
}

#[test]
fn eks_al2023() {
    let r = Fixture::load("eks-al2023").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", P),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", NA),
            ("server-cert-rotation", P),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", NA),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", F),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", P),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", P),
            ("kube-reserved-set", P),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", F),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", F),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // No kube-proxy process in this host tree, and no proof it is absent.
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
            ("kubelet-credential-node-scoped", U),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // The nodeadm drop-in decides podPidsLimit; config.json decides the rest.
    r.expect_full("pod-pids-limit-set", P, "4096", "drop-in:40-nodeadm.conf");
    r.expect_full(
        "kube-reserved-set",
        P,
        "cpu=80m,ephemeral-storage=1Gi,memory=893Mi",
        "config-file",
    );
    let k = kubelet(&r);
    assert_eq!(
        k.config.dropins,
        ["/etc/kubernetes/kubelet/config.json.d/40-nodeadm.conf"]
    );
    // Both the file and the drop-in are checked (and both are 0644).
    let perm = r.expect("config-file-permissions", F);
    assert!(
        perm.observed
            .contains("/etc/kubernetes/kubelet/config.json;"),
        "{}",
        perm.observed
    );
    assert!(
        perm.observed.contains("40-nodeadm.conf"),
        "{}",
        perm.observed
    );
    assert!(r
        .get("tls-strong-cipher-suites")
        .reason
        .contains("TLS_RSA_WITH_AES_256_GCM_SHA384"));
}

#[test]
fn gke() {
    let r = Fixture::load("gke").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", F),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", P),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", P),
            ("server-cert-rotation", P),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", P),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", F),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", F),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // kube-proxy: GCE/GKE's legacy static pod (flags only), its kubeconfig a same-path
            // hostPath that holds a token, left at the umask's 0644 by configure-helper.
            ("kube-proxy-kubeconfig-permissions", F),
            ("kube-proxy-kubeconfig-ownership", P),
            ("kube-proxy-metrics-localhost", P),
            ("kubelet-credential-node-scoped", P),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // The container path is mapped through its mountinfo (a file bind mount from /var's
    // filesystem) to the same host path.
    r.expect_full(
        "kube-proxy-kubeconfig-permissions",
        F,
        "0644 /var/lib/kube-proxy/kubeconfig",
        "file-metadata",
    );
    r.expect_full(
        "kube-proxy-metrics-localhost",
        P,
        "127.0.0.1:10249",
        "default",
    );
    r.expect_reason("kube-proxy-metrics-localhost", "/proc/1733/mountinfo");
    // `/home/kubernetes/bin/kubelet ... --config /home/kubernetes/kubelet-config.yaml`.
    let k = kubelet(&r);
    assert_eq!(k.binary, "/home/kubernetes/bin/kubelet");
    assert_eq!(
        k.config.config_file.as_deref(),
        Some("/home/kubernetes/kubelet-config.yaml")
    );
    // The node pool left the insecure read-only port on: in the file, not a default.
    r.expect_full("read-only-port-disabled", F, "10255", "config-file");
    r.expect_full(
        "client-ca-configured",
        P,
        "/etc/srv/kubernetes/pki/ca-certificates.crt",
        "config-file",
    );
    // The rotated client certificate, found through the kubeconfig.
    let cert = files(&r, FileRole::ClientCert);
    assert_eq!(
        cert[0].path,
        "/var/lib/kubelet/pki/kubelet-client-current.pem"
    );
    // --cert-dir with a trailing slash still finds the bootstrapped serving pem.
    let key = files(&r, FileRole::ServingKey);
    assert!(key[0].meta.is_ok(), "{:?}", key[0]);
}

#[test]
fn aks() {
    let r = Fixture::load("aks").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", P),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", P),
            ("client-cert-rotation", P),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", U),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", P),
            ("kube-reserved-set", P),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", P),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", P),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", P),
            ("service-file-ownership", P),
            // Azure CNI powered by Cilium: the cilium-agent's ConfigMap says kube-proxy-replacement.
            ("kube-proxy-kubeconfig-permissions", NA),
            ("kube-proxy-kubeconfig-ownership", NA),
            ("kube-proxy-metrics-localhost", NA),
            ("kubelet-credential-node-scoped", P),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // No kube-proxy: Cilium replaces it, read from its ConfigMap volume on the host.
    for id in [
        "kube-proxy-kubeconfig-permissions",
        "kube-proxy-kubeconfig-ownership",
        "kube-proxy-metrics-localhost",
    ] {
        r.expect_reason(id, "replaced by Cilium (kube-proxy-replacement=true");
    }
    assert_eq!(
        kubelet(&r).config.config_file.as_deref(),
        Some("/etc/default/kubeletconfig.json")
    );
    // `"anonymous": {}`: the v1beta1 default (false) applies, not the legacy one.
    r.expect_full("anonymous-auth-disabled", P, "false", "default");
    // eventRecordQPS: 0 is client-go's default of 5/s up to 1.36 (passing the default
    // minimum 1) and no limit from 1.37 (failing): a host tree has no version to decide.
    r.expect_full("event-qps-limited", U, "0", "config-file");
    r.expect_reason(
        "event-qps-limited",
        "the verdict depends on the kubelet's version",
    );
    // An explicit -1 and an explicit false in the file.
    r.expect_full("pod-pids-limit-set", F, "-1", "config-file");
    r.expect_full("seccomp-default-enabled", F, "false", "config-file");
    r.expect_full(
        "tls-serving-cert-configured",
        P,
        "tlsCertFile=/etc/kubernetes/certs/kubeletserver.crt, tlsPrivateKeyFile=/etc/kubernetes/certs/kubeletserver.key",
        "config-file",
    );
    assert_eq!(
        files(&r, FileRole::ServingKey)[0].path,
        "/etc/kubernetes/certs/kubeletserver.key"
    );
    // "4h" (not 4h0m0s) is a valid duration, read by dockershim up to 1.23 only.
    r.expect_full("streaming-idle-timeout-set", U, "4h", "config-file");
    assert_eq!(files(&r, FileRole::ServiceDropIn).len(), 2);
}

fn rke2_table(ro: Status) -> Vec<(&'static str, Status)> {
    vec![
        ("read-only-port-disabled", ro),
        ("api-bind-address-restricted", F),
        ("healthz-bind-localhost", P),
        ("tls-serving-cert-configured", P),
        ("client-ca-configured", P),
        ("tls-min-version", P),
        ("tls-strong-cipher-suites", F),
        ("client-cert-rotation", F),
        ("server-cert-rotation", F),
        ("anonymous-auth-disabled", P),
        ("authorization-mode-webhook", P),
        ("authentication-webhook-enabled", P),
        ("kubelet-api-rejects-anonymous", U),
        ("serving-cert-valid", P),
        ("client-cert-valid", P),
        ("kubelet-version-supported", U),
        ("kubelet-version-no-known-cves", U),
        // Reading the running configuration is off (the default, --read-running-config).
        ("running-config-matches-disk", NA),
        ("streaming-idle-timeout-set", U),
        ("iptables-util-chains", P),
        ("hostname-override-unset", F),
        ("event-qps-limited", P),
        ("pod-pids-limit-set", F),
        ("seccomp-default-enabled", F),
        ("protect-kernel-defaults", F),
        ("kube-reserved-set", F),
        ("system-reserved-set", F),
        // The drop-in's evictionHard {imagefs, nodefs: 5%} is merged over the flags-only
        // base, which has no eviction thresholds (only loadConfigFile fills in
        // DefaultEvictionHard): no memory.available (scenario dropin-without-config).
        ("eviction-hard-set", F),
        ("config-file-permissions", P),
        ("config-file-ownership", P),
        ("kubeconfig-permissions", P),
        ("kubeconfig-ownership", P),
        ("client-ca-permissions", P),
        ("client-ca-ownership", P),
        ("serving-key-permissions", P),
        ("service-file-permissions", F),
        ("service-file-ownership", P),
        // No kube-proxy process (RKE2's static pod is not in this tree), and no proof it is absent.
        ("kube-proxy-kubeconfig-permissions", U),
        ("kube-proxy-kubeconfig-ownership", U),
        ("kube-proxy-metrics-localhost", U),
        ("kubelet-credential-node-scoped", P),
        ("node-authorizer-enabled", NA),
        ("apiserver-audit-log-enabled", NA),
        // Fixtures have no API access: the Pod Security controls cannot know.
        ("pod-security-enforced", U),
        ("no-host-takeover-pods", U),
        ("kubelet-identity-least-privilege", U),
    ]
}

fn rke2_common(r: &Results) {
    // argv0 is a bare `kubelet`; the binary is in the versioned data dir.
    let k = kubelet(r);
    assert_eq!(
        found_pid(r),
        1119,
        "the rke2 agent process itself is not the kubelet"
    );
    assert_eq!(k.argv[0], "kubelet");
    // rke2: v1.33.4 passes --read-only-port=0; rke2-no-flag: v1.32.3, the last release
    // without it (rancher/rke2#8094, k3s `045bb9b9926c` in v1.32.4).
    let want = if r.fixture == "rke2" {
        "/var/lib/rancher/rke2/data/v1.33.4-rke2r1-"
    } else {
        "/var/lib/rancher/rke2/data/v1.32.3-rke2r1-"
    };
    assert!(k.binary.starts_with(want), "{}", k.binary);
    // Every flag of the running kubelet is what the rules give for that release.
    let k3s = k.k3s.as_ref().expect("Kubelet.k3s");
    assert_eq!(k3s.origins.len(), k.flags.occurrences.len());
    assert!(k3s.notes.is_empty(), "{:?}", k3s.notes);
    // --config-dir without --config: drop-ins over the flags-only base.
    assert!(k.config.config_file.is_none());
    assert!(k.config.flags_only_base);
    assert_eq!(
        k.config.dropins,
        ["/var/lib/rancher/rke2/agent/etc/kubelet.conf.d/00-rke2-defaults.conf"]
    );
    r.expect_full(
        "anonymous-auth-disabled",
        P,
        "false",
        "drop-in:00-rke2-defaults.conf",
    );
    r.expect_full(
        "authorization-mode-webhook",
        P,
        "Webhook",
        "drop-in:00-rke2-defaults.conf",
    );
    r.expect_full(
        "eviction-hard-set",
        F,
        "imagefs.available=5%,nodefs.available=5%",
        "drop-in:00-rke2-defaults.conf",
    );
    // The kubelet runs in the rke2-agent unit.
    assert_eq!(k.unit.as_deref(), Some("rke2-agent.service"));
    r.expect_full("hostname-override-unset", F, "rke2-agent-1", "process");
    r.expect_full(
        "config-file-permissions",
        P,
        "0600 /var/lib/rancher/rke2/agent/etc/kubelet.conf.d/00-rke2-defaults.conf",
        "file-metadata",
    );
}

#[test]
fn rke2_with_read_only_port_flag() {
    let r = Fixture::load("rke2").evaluate();
    assert_table(&r, &rke2_table(P));
    rke2_common(&r);
    // RKE2 passes --read-only-port=0 because the drop-in alone cannot close it.
    r.expect_full("read-only-port-disabled", P, "0", "flag");
    // ... and the report says so (model/k3s.rs attributes RKE2's kubelet flags).
    r.expect_reason(
        "read-only-port-disabled",
        "flag --read-only-port (rke2 default)",
    );
    let k3s = kubelet(&r).k3s.as_ref().expect("Kubelet.k3s for RKE2");
    assert_eq!(k3s.origins.len(), kubelet(&r).flags.occurrences.len());
    assert!(
        k3s.kube_proxy.is_none(),
        "RKE2 runs kube-proxy as a static pod"
    );
}

#[test]
fn rke2_without_read_only_port_flag() {
    let r = Fixture::load("rke2-no-flag").evaluate();
    assert_table(&r, &rke2_table(F));
    rke2_common(&r);
    // k3s#12164 / rke2#8094: no --config, so the legacy default 10255 applies even though
    // the drop-in is otherwise hardened.
    r.expect_full("read-only-port-disabled", F, "10255", "default");
    r.expect_reason("read-only-port-disabled", "flags-only");
}

#[test]
fn microk8s() {
    let r = Fixture::load("microk8s").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", F),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", NA),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", F),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", NA),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            // --container-runtime=remote: the runtime serves the streams on every version.
            ("streaming-idle-timeout-set", NA),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", F),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", F),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", F),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", F),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // kube-proxy runs inside kubelite, its flags in --proxy-args-file; its kubeconfig is
            // MicroK8s' 0660 credentials file.
            ("kube-proxy-kubeconfig-permissions", F),
            ("kube-proxy-kubeconfig-ownership", P),
            ("kube-proxy-metrics-localhost", P),
            ("kubelet-credential-node-scoped", U),
            // kubelite embeds the kube-apiserver; its flags are in --apiserver-args-file,
            // which has no audit flags here.
            // ... and no NodeRestriction among its admission plugins.
            ("node-authorizer-enabled", F),
            ("apiserver-audit-log-enabled", F),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    r.expect_full(
        "kube-proxy-kubeconfig-permissions",
        F,
        "0660 /var/snap/microk8s/current/credentials/proxy.config -> /var/snap/microk8s/7394/credentials/proxy.config",
        "file-metadata",
    );
    r.expect_full(
        "kube-proxy-metrics-localhost",
        P,
        "127.0.0.1:10249",
        "default",
    );
    r.expect_reason(
        "kube-proxy-metrics-localhost",
        "MicroK8s runs kube-proxy in kubelite",
    );
    let audit = r.get("apiserver-audit-log-enabled");
    assert!(
        audit.reason.contains("--audit-log-path"),
        "{}",
        audit.reason
    );
    assert!(
        audit.reason.contains("--audit-policy-file"),
        "{}",
        audit.reason
    );
    let k = kubelet(&r);
    assert_eq!(k.flavour.as_str(), "kubelite");
    assert_eq!(
        k.unit.as_deref(),
        Some("snap.microk8s.daemon-kubelite.service")
    );
    // No --authorization-mode and no --config (canonical/microk8s
    // microk8s-resources/default-args/kubelet): AlwaysAllow, `applyLegacyDefaults`.
    r.expect_full("authorization-mode-webhook", F, "AlwaysAllow", "default");
    // Flags come from the args file: quoted value unquoted, ${SNAP_DATA} expanded.
    r.expect_full("anonymous-auth-disabled", P, "false", "flag");
    r.expect_full(
        "eviction-hard-set",
        P,
        "imagefs.available=1Gi,memory.available=100Mi,nodefs.available=1Gi",
        "flag",
    );
    r.expect_full(
        "client-ca-configured",
        P,
        "/var/snap/microk8s/current/certs/ca.crt",
        "flag",
    );
    // The args file is the configuration file the permission controls check.
    let args = files(&r, FileRole::ArgsFile);
    assert_eq!(args[0].path, "/var/snap/microk8s/7394/args/kubelet");
    r.expect_full(
        "config-file-permissions",
        F,
        "0660 /var/snap/microk8s/7394/args/kubelet",
        "file-metadata",
    );
    assert!(matches!(k.credential, Some(Ok(Credential::Token))));
}

#[test]
fn flag_overrides_file() {
    let r = Fixture::load("flag-overrides-file").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", F),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", F),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", P),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", F),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", F),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", P),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", P),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // No kube-proxy process in this host tree, and no proof it is absent.
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
            ("kubelet-credential-node-scoped", P),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // The file says readOnlyPort 0 and anonymous false; the flags win.
    let k = kubelet(&r);
    assert_eq!(k.config.merged["readOnlyPort"], serde_json::json!(0));
    r.expect_full("read-only-port-disabled", F, "10255", "flag");
    r.expect_full("anonymous-auth-disabled", F, "true", "flag");
    // What the flags do not touch still comes from the file.
    r.expect_full("authorization-mode-webhook", P, "Webhook", "config-file");
    // Old Debian packaging: unit in /lib, drop-in in /etc.
    let units: Vec<String> = files(&r, FileRole::ServiceUnit)
        .iter()
        .map(|f| f.path.clone())
        .collect();
    assert_eq!(units, ["/lib/systemd/system/kubelet.service"]);
    assert_eq!(
        files(&r, FileRole::ServiceDropIn)[0].path,
        "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf"
    );
}

#[test]
fn hyperkube() {
    let r = Fixture::load("hyperkube").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", F),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", P),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", F),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", F),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", P),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // No kube-proxy process in this host tree, and no proof it is absent.
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
            ("kubelet-credential-node-scoped", P),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    let k = kubelet(&r);
    assert_eq!(k.flavour.as_str(), "hyperkube");
    // Flags start after the `kubelet` subcommand.
    assert_eq!(k.flags.positional, Vec::<String>::new());
    r.expect_full("read-only-port-disabled", P, "0", "flag");
    // healthzPort: 0 disables the healthz server altogether.
    r.expect_full("healthz-bind-localhost", P, "healthzPort 0", "config-file");
    // A relative client-certificate path is resolved against the kubeconfig's directory.
    assert_eq!(
        files(&r, FileRole::ClientCert)[0].path,
        "/var/lib/kubelet/pki/kubelet-client-current.pem"
    );
    r.expect_full(
        "kubelet-credential-node-scoped",
        P,
        "CN=system:node:typhoon-worker-1 O=system:nodes (/var/lib/kubelet/pki/kubelet-client-current.pem)",
        "kubeconfig",
    );
}

/// The verdicts every k3s/RKE2 fixture shares: k3s's drop-in (`00-<program>-defaults.conf`)
/// hardens authentication, and the flags-only base (k3s never passes `--config`) leaves the
/// rest at the kubelet's legacy defaults. The fixture-specific rows are given to it.
fn k3s_table(specific: &[(&'static str, Status)]) -> Vec<(&'static str, Status)> {
    let mut t = vec![
        ("healthz-bind-localhost", P),
        ("tls-serving-cert-configured", P),
        ("client-ca-configured", P),
        ("tls-min-version", P),
        ("client-cert-rotation", F),
        ("server-cert-rotation", F),
        ("serving-cert-valid", P),
        ("client-cert-valid", P),
        ("anonymous-auth-disabled", P),
        ("authorization-mode-webhook", P),
        ("authentication-webhook-enabled", P),
        // Host trees on disk: no live probe.
        ("kubelet-api-rejects-anonymous", U),
        ("iptables-util-chains", P),
        // k3s always passes --hostname-override (agent_linux.go `kubeletArgsAndConfig`).
        ("hostname-override-unset", F),
        ("seccomp-default-enabled", F),
        ("running-config-matches-disk", NA),
        ("kube-reserved-set", F),
        ("system-reserved-set", F),
        ("config-file-permissions", P),
        ("config-file-ownership", P),
        ("kubeconfig-permissions", P),
        ("kubeconfig-ownership", P),
        ("client-ca-permissions", P),
        ("client-ca-ownership", P),
        ("serving-key-permissions", P),
        // install.sh writes the unit 0644 (CIS asks 600).
        ("service-file-permissions", F),
        ("service-file-ownership", P),
        ("kubelet-credential-node-scoped", P),
        // k3s's API server runs inside the k3s process: no kube-apiserver process.
        ("node-authorizer-enabled", NA),
        ("apiserver-audit-log-enabled", NA),
        ("pod-security-enforced", U),
        ("no-host-takeover-pods", U),
        ("kubelet-identity-least-privilege", U),
        // k3s runs kube-proxy in its own process (pkg/daemons/agent `kubeProxyArgs`): its
        // kubeconfig is written 0600 root:root, and no metrics-bind-address is passed, so
        // kube-proxy's default 127.0.0.1:10249 applies.
        ("kube-proxy-kubeconfig-permissions", P),
        ("kube-proxy-kubeconfig-ownership", P),
        ("kube-proxy-metrics-localhost", P),
    ];
    for (id, st) in specific {
        match t.iter_mut().find(|(i, _)| i == id) {
            Some(row) => row.1 = *st,
            None => t.push((id, *st)),
        }
    }
    t
}

/// The k3s origin of the last occurrence of a kubelet flag.
fn k3s_origin(r: &Results, flag: &str) -> kubelet_sentinel::model::flag_origin::FlagOrigin {
    let k3s = kubelet(r).k3s.as_ref().expect("Kubelet.k3s");
    k3s.origins
        .iter()
        .rev()
        .find(|o| o.flag == flag)
        .unwrap_or_else(|| panic!("{}: no origin for --{flag}: {:?}", r.fixture, k3s.origins))
        .clone()
}

/// No secret of the fixture's env files or config files reaches the snapshot, the report
/// or the reasons.
fn assert_no_secret(r: &Results, secrets: &[&str]) {
    let snap = format!("{:?}", r.snapshot);
    let json = serde_json::to_string(&r.snapshot).expect("snapshot json");
    let results = format!("{:?}", r.results);
    for s in secrets {
        assert!(!snap.contains(s), "{}: {s} in the snapshot", r.fixture);
        assert!(!json.contains(s), "{}: {s} in the JSON", r.fixture);
        assert!(!results.contains(s), "{}: {s} in a result", r.fixture);
    }
}

#[test]
fn k3s_release_unknown() {
    // The original k3s fixture: a k3s server whose binary is a stand-in (no Go build
    // information), so its release is unknown; the drop-in scheme (≥ 1.32) is in use.
    let r = Fixture::load("k3s").evaluate();
    assert_table(
        &r,
        &k3s_table(&[
            // 1.32.0–1.32.3 pass no --read-only-port=0 (k3s#12164); 1.32.4+ do: unknown.
            ("read-only-port-disabled", U),
            // No drop-in sets `address` in this (older, shorter) 00-k3s-defaults.conf.
            ("api-bind-address-restricted", F),
            ("tls-strong-cipher-suites", F),
            ("streaming-idle-timeout-set", U),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("protect-kernel-defaults", F),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            ("eviction-hard-set", F),
        ]),
    );
    assert_eq!(found_pid(&r), 1007);
    let k = kubelet(&r);
    assert_eq!(k.flavour.as_str(), "k3s");
    r.expect_reason("read-only-port-disabled", "k3s release is unknown");
    r.expect_reason("read-only-port-disabled", "k3s#12164");
    // node-name from config.yaml.
    r.expect_full("hostname-override-unset", F, "k8s-cp-01", "process");
    let o = k3s_origin(&r, "hostname-override");
    assert_eq!(o.how, OriginHow::K3sDefault);
    assert!(k.k3s.as_ref().unwrap().version.is_none());
    assert_no_secret(&r, &["k3s-fixture-t0k3n"]);
}

#[test]
fn k3s_server_with_overrides() {
    let r = Fixture::load("k3s-server").evaluate();
    assert_table(
        &r,
        &k3s_table(&[
            // config.yaml opens 10255; config.yaml.d/50-hardening.yaml closes it again
            // with `kubelet-arg+:` (appended, so it comes later and wins).
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("tls-strong-cipher-suites", P),
            // The harness does not complete the observation with the kubelet's version
            // (observe/enrich.rs): the version-dependent verdicts are unknown here, though
            // observe/k3s.rs read v1.33.1+k3s1 for k3s's own rules.
            ("streaming-idle-timeout-set", U),
            // `--kubelet-arg=event-qps=0` on ExecStart beats config.yaml's 5: 0 means
            // client-go's default of 5/s up to 1.36, no limit from 1.37.
            ("event-qps-limited", U),
            ("pod-pids-limit-set", P),
            // `protect-kernel-defaults: true` in config.yaml goes into 00-k3s-defaults.conf.
            ("protect-kernel-defaults", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            ("eviction-hard-set", F),
        ]),
    );
    assert_eq!(found_pid(&r), 1007);
    let k = kubelet(&r);
    assert_eq!(k.flavour.as_str(), "k3s");
    assert_eq!(
        k.k3s.as_ref().unwrap().version.as_deref(),
        Some("v1.33.1+k3s1")
    );
    // Provenance of the decisive values.
    r.expect_full("read-only-port-disabled", P, "0", "flag");
    r.expect_reason(
        "read-only-port-disabled",
        "flag --read-only-port (config.yaml.d/50-hardening.yaml)",
    );
    let ro = k3s_origin(&r, "read-only-port");
    assert_eq!(ro.how, OriginHow::K3sConfigArg);
    assert_eq!(ro.file, "/etc/rancher/k3s/config.yaml.d/50-hardening.yaml");
    assert_eq!(ro.line, 3);
    let qps = k3s_origin(&r, "event-qps");
    assert_eq!(qps.how, OriginHow::K3sCommandLine);
    assert_eq!(qps.file, "/etc/systemd/system/k3s.service");
    assert_eq!(qps.line, 31);
    r.expect_full("event-qps-limited", U, "0", "flag");
    r.expect_reason("event-qps-limited", "flag --event-qps (--kubelet-arg)");
    r.expect_reason("pod-pids-limit-set", "(config.yaml.d/50-hardening.yaml)");
    r.expect_full(
        "anonymous-auth-disabled",
        P,
        "false",
        "drop-in:00-k3s-defaults.conf",
    );
    r.expect_full("hostname-override-unset", F, "lab-cp", "process");
    assert_eq!(k3s_origin(&r, "hostname-override").label(), "k3s default");
    // The rebuilt command line, sorted by key as GetArgs emits it.
    assert_eq!(
        k.argv[1..],
        [
            "--cloud-provider=external",
            "--config-dir=/var/lib/rancher/k3s/agent/etc/kubelet.conf.d",
            "--event-qps=5",
            "--event-qps=0",
            "--hostname-override=lab-cp",
            "--kubeconfig=/var/lib/rancher/k3s/agent/kubelet.kubeconfig",
            "--node-labels=",
            "--pod-max-pids=4096",
            "--read-only-port=10255",
            "--read-only-port=0",
            "--streaming-connection-idle-timeout=5m",
            "--tls-cipher-suites=TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ]
    );
    // The embedded kube-proxy (for the kube-proxy controls).
    let kp = k.k3s.as_ref().unwrap().kube_proxy.as_ref().unwrap();
    assert!(kp.disabled.is_none());
    assert!(kp
        .args
        .contains(&"kubeconfig=/var/lib/rancher/k3s/agent/kubeproxy.kubeconfig".to_string()));
    assert_no_secret(&r, &["5e3cr3tt0k3nvalue", "s3rv3r-t0k3n-d0-n0t-l3ak"]);
}

#[test]
fn k3s_server_fix_dropin_is_proven_in_k3s_terms() {
    use kubelet_sentinel::model::k3s::{args_with_dropin, fix_config_dropin, last_value};
    let r = Fixture::load("k3s-server").evaluate();
    let k3s = kubelet(&r).k3s.as_ref().unwrap();
    // The event-qps override on the unit's ExecStart beats any config.yaml.d file.
    let text = fix_config_dropin(&[
        (
            "event-qps=50".to_string(),
            vec!["event-qps-limited".to_string()],
        ),
        (
            "seccomp-default=true".to_string(),
            vec!["seccomp-default-enabled".to_string()],
        ),
    ]);
    let argv = args_with_dropin(k3s, "90-kubelet-sentinel.yaml", &text).expect("rebuild");
    assert_eq!(
        last_value(&argv, "seccomp-default").as_deref(),
        Some("true")
    );
    assert_eq!(last_value(&argv, "event-qps").as_deref(), Some("0"));
    // Without the drop-in, the rebuilt argv is the observed one.
    let same = args_with_dropin(k3s, "90-empty.yaml", "").expect("rebuild");
    assert_eq!(same, kubelet(&r).argv[1..]);
}

#[test]
fn k3s_agent_in_the_read_only_port_gap() {
    let r = Fixture::load("k3s-agent").evaluate();
    assert_table(
        &r,
        &k3s_table(&[
            // v1.32.2: the drop-in's readOnlyPort 0 is dropped by omitempty and no flag is
            // passed: the flags-only default 10255 (k3s#12164, fixed in 1.32.4).
            ("read-only-port-disabled", F),
            ("api-bind-address-restricted", F),
            ("tls-strong-cipher-suites", F),
            ("streaming-idle-timeout-set", U),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("protect-kernel-defaults", F),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            ("eviction-hard-set", F),
        ]),
    );
    assert_eq!(found_pid(&r), 2231);
    let k = kubelet(&r);
    // The release comes from the binary's Go build information (gen-k3s-binaries.py).
    assert_eq!(
        k.k3s.as_ref().unwrap().version.as_deref(),
        Some("v1.32.2+k3s1")
    );
    r.expect_full("read-only-port-disabled", F, "10255", "default");
    assert!(!k.flags.has("read-only-port"));
    // K3S_NODE_NAME from the unit's EnvironmentFile, not the host name.
    r.expect_full("hostname-override-unset", F, "k8s-worker-02", "process");
    assert_eq!(k.unit.as_deref(), Some("k3s-agent.service"));
    // The join token of the env file never leaves it.
    assert_no_secret(&r, &["ag3ntj01nt0k3n", "K10a9b8c7d6e5f4"]);
}

#[test]
fn rke2_overrides() {
    let r = Fixture::load("rke2-overrides").evaluate();
    assert_table(
        &r,
        &k3s_table(&[
            // `--kubelet-arg=read-only-port=10255` on the ExecStart of a unit drop-in:
            // a user value replaces rke2's 0 (GetArgs).
            ("read-only-port-disabled", F),
            ("api-bind-address-restricted", F),
            ("tls-strong-cipher-suites", P),
            // Version unknown (stand-in binary): the dockershim rule depends on it.
            ("streaming-idle-timeout-set", U),
            // config.yaml's event-qps=0 then 50-ops.yml's event-qps=10 (kubelet-arg+):
            // both passed, the last wins.
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            // `profile: cis` sets protect-kernel-defaults (profile_linux.go `setCISFlags`).
            ("protect-kernel-defaults", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            ("eviction-hard-set", F),
            // RKE2 runs kube-proxy as a static pod, and this tree's /proc has none: no
            // proof of absence either (no API view).
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
        ]),
    );
    assert_eq!(found_pid(&r), 1119);
    let k = kubelet(&r);
    assert_eq!(k.flavour.as_str(), "kubelet");
    r.expect_full("read-only-port-disabled", F, "10255", "flag");
    r.expect_reason(
        "read-only-port-disabled",
        "flag --read-only-port (--kubelet-arg)",
    );
    let ro = k3s_origin(&r, "read-only-port");
    assert_eq!(ro.how, OriginHow::K3sCommandLine);
    assert_eq!(
        ro.file,
        "/etc/systemd/system/rke2-agent.service.d/10-kubelet-args.conf"
    );
    assert_eq!(ro.line, 5);
    r.expect_full("event-qps-limited", P, "10", "flag");
    let qps = k3s_origin(&r, "event-qps");
    assert_eq!(qps.file, "/etc/rancher/rke2/config.yaml.d/50-ops.yml");
    assert_eq!(qps.line, 3);
    r.expect_reason("tls-strong-cipher-suites", "(config.yaml.d/50-ops.yml)");
    let k3s = k.k3s.as_ref().unwrap();
    assert_eq!(k3s.version.as_deref(), Some("v1.33.4+rke2r1"));
    // Every flag of the running kubelet is explained by the rules.
    assert_eq!(k3s.origins.len(), k.flags.occurrences.len());
    assert!(
        !k3s.notes.iter().any(|n| n.contains("do not explain")),
        "{:?}",
        k3s.notes
    );
    assert_no_secret(&r, &["K10c5f0a3e9d8b7a6"]);
}

/// Whether the catalogue judges `id` from the Kubernetes API (`Needs::Api`), not from the
/// kubelet.
fn needs_api(id: &str) -> bool {
    kubelet_sentinel::evaluate::catalogue()
        .iter()
        .any(|c| c.id == id && c.needs == kubelet_sentinel::evaluate::Needs::Api)
}

#[test]
fn no_kubelet() {
    let r = Fixture::load("no-kubelet").evaluate();
    let all_unknown: Vec<(&str, Status)> = kubelet_sentinel::evaluate::catalogue()
        .iter()
        .map(|c| (c.id, U))
        .collect();
    assert_table(&r, &all_unknown);
    assert_eq!(
        r.snapshot.discovery,
        Discovery::NotFound {
            reason: "no kubelet process found".to_string()
        }
    );
    for c in &r.results {
        if needs_api(c.id) {
            assert!(
                c.reason.starts_with("no API access"),
                "{}: {}",
                c.id,
                c.reason
            );
            continue;
        }
        if c.id.starts_with("kube-proxy-") {
            // Judged without a kubelet: no kube-proxy either, and nothing proves it absent.
            assert!(
                c.reason.contains("not proof of absence"),
                "{}: {}",
                c.id,
                c.reason
            );
            continue;
        }
        assert_eq!(c.reason, "no kubelet process found", "{}", c.id);
    }
    assert_eq!(r.snapshot.node, "bastion-2");
}

// ----------------------------------------------------------------- broken inputs

/// The table shared by the kubeadm workers whose `--config` cannot be read: every
/// config-decided control is unknown; what the command line or file metadata decides is
/// still known.
fn unreadable_config_table(
    flags_close_port: bool,
    config_meta: Status,
) -> Vec<(&'static str, Status)> {
    let by_flag = if flags_close_port { P } else { U };
    vec![
        ("read-only-port-disabled", by_flag),
        ("api-bind-address-restricted", U),
        ("healthz-bind-localhost", U),
        ("tls-serving-cert-configured", U),
        ("client-ca-configured", U),
        ("tls-min-version", U),
        ("tls-strong-cipher-suites", U),
        ("client-cert-rotation", U),
        ("server-cert-rotation", U),
        ("anonymous-auth-disabled", U),
        ("authorization-mode-webhook", U),
        ("authentication-webhook-enabled", U),
        ("kubelet-api-rejects-anonymous", U),
        ("serving-cert-valid", U),
        ("client-cert-valid", P),
        ("kubelet-version-supported", U),
        ("kubelet-version-no-known-cves", U),
        // Reading the running configuration is off (the default, --read-running-config).
        ("running-config-matches-disk", NA),
        ("streaming-idle-timeout-set", U),
        ("iptables-util-chains", U),
        ("hostname-override-unset", P),
        ("event-qps-limited", U),
        ("pod-pids-limit-set", U),
        ("seccomp-default-enabled", U),
        ("protect-kernel-defaults", by_flag),
        ("kube-reserved-set", U),
        ("system-reserved-set", U),
        ("eviction-hard-set", U),
        ("config-file-permissions", config_meta),
        ("config-file-ownership", config_meta),
        ("kubeconfig-permissions", P),
        ("kubeconfig-ownership", P),
        // Whether a client CA file is configured is itself undecidable when the config
        // cannot be read, so its file checks are unknown, not "not applicable".
        ("client-ca-permissions", U),
        ("client-ca-ownership", U),
        // The serving key's path depends on the config (serverTLSBootstrap/tlsPrivateKeyFile).
        ("serving-key-permissions", U),
        ("service-file-permissions", F),
        ("service-file-ownership", P),
        // A process named kube-proxy without the evidence of its identity (no namespaces).
        ("kube-proxy-kubeconfig-permissions", U),
        ("kube-proxy-kubeconfig-ownership", U),
        ("kube-proxy-metrics-localhost", U),
        ("kubelet-credential-node-scoped", P),
        ("node-authorizer-enabled", NA),
        ("apiserver-audit-log-enabled", NA),
        // Fixtures have no API access: the Pod Security controls cannot know.
        ("pod-security-enforced", U),
        ("no-host-takeover-pods", U),
        ("kubelet-identity-least-privilege", U),
    ]
}

fn assert_config_decided_unknown(r: &Results, needle: &str) {
    for id in CONFIG_DECIDED {
        let c = r.get(id);
        assert_eq!(c.status, U, "{}: {id}", r.fixture);
        assert!(
            c.reason.to_lowercase().contains(&needle.to_lowercase()),
            "{}: {id}: reason {:?} does not mention {needle:?}",
            r.fixture,
            c.reason
        );
    }
}

#[test]
fn broken_yaml() {
    let r = Fixture::load("broken-yaml").evaluate();
    // The parse error is in every config-decided reason...
    assert_config_decided_unknown(&r, "invalid YAML");
    assert_config_decided_unknown(&r, "/var/lib/kubelet/config.yaml");
    // ...while what the flags decide is still known, with its source.
    r.expect_full("read-only-port-disabled", P, "0", "flag");
    r.expect_full("protect-kernel-defaults", P, "true", "flag");
    r.expect_full("hostname-override-unset", P, "not set", "process");
    let probe = r.snapshot.probe("config").expect("config probe");
    assert!(!probe.success);
    assert_table(&r, &unreadable_config_table(true, P));
}

#[test]
fn config_missing() {
    let r = Fixture::load("config-missing").evaluate();
    assert_config_decided_unknown(&r, "not found");
    r.expect_full("read-only-port-disabled", P, "0", "flag");
    r.expect_reason("config-file-permissions", "not found");
    assert_table(&r, &unreadable_config_table(true, U));
}

#[test]
fn permission_denied() {
    let r = Fixture::load("permission-denied").evaluate();
    assert_config_decided_unknown(&r, "permission denied");
    r.expect_reason("read-only-port-disabled", "permission denied");
    // stat works without read permission: the mode itself is evidence (and 0000 ≤ 0600).
    r.expect_full(
        "config-file-permissions",
        P,
        "0000 /var/lib/kubelet/config.yaml",
        "file-metadata",
    );
    assert_table(&r, &unreadable_config_table(false, P));
}

#[test]
fn huge_config() {
    let fx = Fixture::load("huge-config");
    let started = std::time::Instant::now();
    let r = fx.evaluate();
    assert_config_decided_unknown(&r, "larger than the 1048576-byte read limit");
    // A capped read of a sparse 50 MiB file is quick; reading it all would not be.
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_table(&r, &unreadable_config_table(false, P));
}

#[test]
fn symlink_loop() {
    let r = Fixture::load("symlink-loop").evaluate();
    assert_config_decided_unknown(&r, "too many levels of symbolic links");
    r.expect_reason("config-file-permissions", "symbolic links");
    assert_table(&r, &unreadable_config_table(false, U));
}

fn symlink_table() -> Vec<(&'static str, Status)> {
    vec![
        ("read-only-port-disabled", P),
        ("api-bind-address-restricted", F),
        ("healthz-bind-localhost", P),
        ("tls-serving-cert-configured", P),
        ("client-ca-configured", P),
        ("tls-min-version", P),
        ("tls-strong-cipher-suites", F),
        ("client-cert-rotation", P),
        ("server-cert-rotation", P),
        ("anonymous-auth-disabled", P),
        ("authorization-mode-webhook", P),
        ("authentication-webhook-enabled", P),
        ("kubelet-api-rejects-anonymous", U),
        ("serving-cert-valid", P),
        ("client-cert-valid", P),
        ("kubelet-version-supported", U),
        ("kubelet-version-no-known-cves", U),
        // Reading the running configuration is off (the default, --read-running-config).
        ("running-config-matches-disk", NA),
        ("streaming-idle-timeout-set", U),
        ("iptables-util-chains", P),
        ("hostname-override-unset", P),
        ("event-qps-limited", P),
        ("pod-pids-limit-set", F),
        ("seccomp-default-enabled", F),
        ("protect-kernel-defaults", P),
        ("kube-reserved-set", F),
        ("system-reserved-set", F),
        ("eviction-hard-set", P),
        ("config-file-permissions", P),
        ("config-file-ownership", P),
        ("kubeconfig-permissions", P),
        ("kubeconfig-ownership", P),
        ("client-ca-permissions", P),
        ("client-ca-ownership", P),
        ("serving-key-permissions", P),
        ("service-file-permissions", F),
        ("service-file-ownership", P),
        // A process named kube-proxy without the evidence of its identity (no namespaces).
        ("kube-proxy-kubeconfig-permissions", U),
        ("kube-proxy-kubeconfig-ownership", U),
        ("kube-proxy-metrics-localhost", U),
        ("kubelet-credential-node-scoped", P),
        ("node-authorizer-enabled", NA),
        ("apiserver-audit-log-enabled", NA),
        // Fixtures have no API access: the Pod Security controls cannot know.
        ("pod-security-enforced", U),
        ("no-host-takeover-pods", U),
        ("kubelet-identity-least-privilege", U),
    ]
}

/// A symlinked config must be read *inside* the host root: the decoy at the same path on
/// this machine says readOnlyPort 10255, anonymous true, AlwaysAllow, protectKernelDefaults
/// false — following the link on the agent's own filesystem would flip those controls.
fn assert_symlink_resolved_inside(r: &Results, link: &str, target: &str) {
    let cfg = files(r, FileRole::ConfigFile);
    assert_eq!(cfg.len(), 1);
    assert_eq!(cfg[0].path, link);
    let meta = cfg[0].meta.as_ref().expect("config metadata");
    assert_eq!(meta.resolved, target);
    // The permission controls judge the target (0600), not the link (0777).
    assert_eq!(meta.mode, 0o600);
    r.expect_full("read-only-port-disabled", P, "0", "config-file");
    r.expect_full("anonymous-auth-disabled", P, "false", "config-file");
    r.expect_full("authorization-mode-webhook", P, "Webhook", "config-file");
    r.expect_full("protect-kernel-defaults", P, "true", "config-file");
    let decoy = std::fs::read_to_string(target).expect("the decoy exists on this machine");
    assert!(decoy.contains("DECOY"));
}

#[test]
fn symlink_absolute() {
    let r = Fixture::load("symlink-absolute").evaluate();
    assert_table(&r, &symlink_table());
    assert_symlink_resolved_inside(
        &r,
        "/etc/kubernetes/kubelet-config.yaml",
        "/tmp/kubelet-sentinel-decoy/absolute/kubelet-config.yaml",
    );
}

#[test]
fn symlink_dotdot() {
    let r = Fixture::load("symlink-dotdot").evaluate();
    assert_table(&r, &symlink_table());
    assert_symlink_resolved_inside(
        &r,
        "/var/lib/kubelet/config.yaml",
        "/tmp/kubelet-sentinel-decoy/dotdot/config.yaml",
    );
}

#[test]
fn non_utf8_cmdline() {
    let r = Fixture::load("non-utf8-cmdline").evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", P),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", P),
            ("tls-serving-cert-configured", F),
            ("client-ca-configured", P),
            ("tls-min-version", P),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", P),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", P),
            ("authorization-mode-webhook", P),
            ("authentication-webhook-enabled", P),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", P),
            ("hostname-override-unset", P),
            ("event-qps-limited", P),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", F),
            ("system-reserved-set", F),
            ("eviction-hard-set", P),
            ("config-file-permissions", P),
            ("config-file-ownership", P),
            ("kubeconfig-permissions", P),
            ("kubeconfig-ownership", P),
            ("client-ca-permissions", P),
            ("client-ca-ownership", P),
            ("serving-key-permissions", P),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // A process named kube-proxy without the evidence of its identity (no namespaces).
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
            ("kubelet-credential-node-scoped", P),
            ("node-authorizer-enabled", P),
            ("apiserver-audit-log-enabled", F),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    // Latin-1 bytes in a label value: replaced, the rest of argv parsed normally.
    assert_eq!(found_pid(&r), 1187);
    let k = kubelet(&r);
    let labels = k.flags.last("node-labels").expect("node-labels");
    assert!(labels.contains('\u{FFFD}'), "{labels}");
    assert!(labels.starts_with("owner=j"), "{labels}");
    assert_eq!(
        k.config.config_file.as_deref(),
        Some("/var/lib/kubelet/config.yaml")
    );
    // Stock kubeadm: the v1beta1 default closes the read-only port.
    r.expect_full("read-only-port-disabled", P, "0", "default");
    // The lab control plane's kube-apiserver has no audit flags at all.
    r.expect_full(
        "apiserver-audit-log-enabled",
        F,
        "no audit flags",
        "process",
    );
}

#[test]
fn misconfigured() {
    let fx = Fixture::load("misconfigured");
    let owners_applied = fx.owners_applied;
    let r = fx.evaluate();
    assert_table(
        &r,
        &[
            ("read-only-port-disabled", F),
            ("api-bind-address-restricted", F),
            ("healthz-bind-localhost", F),
            ("tls-serving-cert-configured", F),
            ("client-ca-configured", F),
            ("tls-min-version", F),
            ("tls-strong-cipher-suites", F),
            ("client-cert-rotation", F),
            ("server-cert-rotation", F),
            ("anonymous-auth-disabled", F),
            ("authorization-mode-webhook", F),
            ("authentication-webhook-enabled", F),
            ("kubelet-api-rejects-anonymous", U),
            ("serving-cert-valid", P),
            ("client-cert-valid", P),
            ("kubelet-version-supported", U),
            ("kubelet-version-no-known-cves", U),
            // Reading the running configuration is off (the default, --read-running-config).
            ("running-config-matches-disk", NA),
            ("streaming-idle-timeout-set", U),
            ("iptables-util-chains", F),
            ("hostname-override-unset", F),
            ("event-qps-limited", F),
            ("pod-pids-limit-set", F),
            ("seccomp-default-enabled", F),
            ("protect-kernel-defaults", F),
            ("kube-reserved-set", F),
            ("system-reserved-set", F),
            ("eviction-hard-set", F),
            ("config-file-permissions", F),
            ("config-file-ownership", F),
            ("kubeconfig-permissions", F),
            ("kubeconfig-ownership", F),
            ("client-ca-permissions", F),
            ("client-ca-ownership", P),
            ("serving-key-permissions", F),
            ("service-file-permissions", F),
            ("service-file-ownership", P),
            // A process named kube-proxy without the evidence of its identity (no namespaces).
            ("kube-proxy-kubeconfig-permissions", U),
            ("kube-proxy-kubeconfig-ownership", U),
            ("kube-proxy-metrics-localhost", U),
            ("kubelet-credential-node-scoped", F),
            ("node-authorizer-enabled", NA),
            ("apiserver-audit-log-enabled", NA),
            // Fixtures have no API access: the Pod Security controls cannot know.
            ("pod-security-enforced", U),
            ("no-host-takeover-pods", U),
            ("kubelet-identity-least-privilege", U),
        ],
    );
    r.expect_full("api-bind-address-restricted", F, "::", "config-file");
    r.expect_full("healthz-bind-localhost", F, "0.0.0.0:10248", "config-file");
    // The client CA file exists but holds a leaf certificate.
    r.expect_full(
        "client-ca-configured",
        F,
        "/etc/kubernetes/pki/apiserver.crt",
        "config-file",
    );
    r.expect_reason("client-ca-configured", "not a CA certificate");
    r.expect_full("tls-min-version", F, "VersionTLS10", "config-file");
    r.expect_reason("tls-strong-cipher-suites", "TLS_RSA_WITH_3DES_EDE_CBC_SHA");
    // A negative QPS fails; a zero idle timeout from the command line fails up to 1.23
    // (dockershim) and has no effect from 1.24: unknown without a version.
    r.expect_full("event-qps-limited", F, "-1", "config-file");
    r.expect_full("streaming-idle-timeout-set", U, "0", "flag");
    r.expect_reason("streaming-idle-timeout-set", "up to 1.23 fail");
    // An explicit empty evictionHard replaces the default map.
    r.expect_full("eviction-hard-set", F, "{}", "config-file");
    r.expect_full("iptables-util-chains", F, "false", "config-file");
    // A certificate cloned from another node.
    r.expect_full(
        "kubelet-credential-node-scoped",
        F,
        "CN=system:node:k8s-worker-02 O=system:nodes (/var/lib/kubelet/pki/kubelet-client-current.pem)",
        "kubeconfig",
    );
    r.expect_reason("kubelet-credential-node-scoped", "another node");
    r.expect_full(
        "serving-key-permissions",
        F,
        "0644 /var/lib/kubelet/pki/kubelet.key",
        "file-metadata",
    );
    if owners_applied {
        r.expect_full(
            "config-file-ownership",
            F,
            "1000:1000 /var/lib/kubelet/config.yaml",
            "file-metadata",
        );
        r.expect_reason("kubeconfig-ownership", "owned by 1000:1000");
    } else {
        eprintln!("notice: misconfigured: not running as root, the 1000:1000 ownership assertions are skipped");
    }
}

// ---------------------------------------- precedence edge (cmd/kubelet/app/server.go)

/// cmd/kubelet/app/server.go: `loadConfigFile` sets evictionHard to DefaultEvictionHard when
/// the file has none, and a drop-in is an RFC 7386 merge patch (`mergeKubeletConfigurations`),
/// so maps merge: a drop-in that tunes one signal keeps memory.available<100Mi (the drop-in
/// map does not replace the default).
#[test]
fn dropin_eviction_map_merges_into_the_config_file_default() {
    let fx = Fixture::load("eks-al2023");
    let cfg_path = fx.path("/etc/kubernetes/kubelet/config.json");
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cfg_path).expect("read")).expect("json");
    doc.as_object_mut().expect("object").remove("evictionHard");
    std::fs::write(&cfg_path, serde_json::to_string_pretty(&doc).expect("json")).expect("write");
    std::fs::write(
        fx.path("/etc/kubernetes/kubelet/config.json.d/50-eviction.conf"),
        r#"{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "evictionHard": {"nodefs.available": "5%"}}"#,
    )
    .expect("write drop-in");
    let r = fx.evaluate();
    let c = r.expect("eviction-hard-set", P);
    assert!(
        c.observed.contains("memory.available=100Mi"),
        "{}",
        c.observed
    );
    assert!(c.observed.contains("nodefs.available=5%"), "{}", c.observed);
}

// ---------------------------------------------------------------- example node

/// `examples/node` is served by the README's first command; its findings are documented in
/// `examples/node/README.md`. Evaluated in place (no manifests are applied to it), so the
/// file-mode and ownership controls depend on the checkout and are not asserted here.
#[test]
fn example_node_shows_its_documented_findings() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node");
    let host = kubelet_sentinel::io::host::HostRoot::new(&root).expect("examples/node");
    let snap = kubelet_sentinel::observe::observe(&host, &Default::default());
    let results = kubelet_sentinel::evaluate::evaluate(
        &snap,
        &kubelet_sentinel::evaluate::policy::Policy::embedded(),
    );
    let r = Results {
        fixture: "examples/node".into(),
        snapshot: snap,
        results,
    };
    assert_eq!(found_pid(&r), 1211);
    assert_eq!(r.snapshot.node, "demo-worker-1");
    // The findings the README promises.
    r.expect_full(
        "read-only-port-disabled",
        F,
        "10255",
        "drop-in:50-metrics.conf",
    );
    r.expect_full("seccomp-default-enabled", F, "false", "default");
    r.expect_full("api-bind-address-restricted", F, "0.0.0.0", "default");
    // Everything else that is not about file metadata passes.
    let file_controls = [
        "config-file-permissions",
        "config-file-ownership",
        "kubeconfig-permissions",
        "kubeconfig-ownership",
        "client-ca-permissions",
        "client-ca-ownership",
        "serving-key-permissions",
        "service-file-permissions",
        "service-file-ownership",
        "kube-proxy-kubeconfig-permissions",
        "kube-proxy-kubeconfig-ownership",
    ];
    // kube-proxy: kubeadm's DaemonSet, its kubeconfig a ConfigMap volume mapped to the host.
    // Its mode is the checkout's (no manifests are applied here): only the paths are
    // asserted. Observed names kube-proxy's own path (stable across pod restarts, for the
    // drift baseline); the reason names the host file judged, found through its mountinfo.
    let c = r.get("kube-proxy-kubeconfig-permissions");
    assert!(
        c.observed.ends_with(" /var/lib/kube-proxy/kubeconfig.conf"),
        "{}",
        c.observed
    );
    assert!(
        c.reason.contains(
            "on the host /var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~configmap/kube-proxy/kubeconfig.conf"
        ),
        "{}",
        c.reason
    );
    r.expect_full(
        "kube-proxy-metrics-localhost",
        P,
        "127.0.0.1:10249",
        "default",
    );
    let findings = [
        "read-only-port-disabled",
        "seccomp-default-enabled",
        "api-bind-address-restricted",
    ];
    for c in &r.results {
        if file_controls.contains(&c.id) || findings.contains(&c.id) {
            continue;
        }
        let want = match c.id {
            // No API access in a fixture.
            "pod-security-enforced"
            | "no-host-takeover-pods"
            | "kubelet-identity-least-privilege" => U,
            "node-authorizer-enabled" => NA,
            "apiserver-audit-log-enabled" => NA,
            // A host tree on disk has no sockets to probe: the live-only control is unknown.
            "kubelet-api-rejects-anonymous" => U,
            // No version is learnt from a host tree on disk.
            "kubelet-version-supported" | "kubelet-version-no-known-cves" => U,
            // 4h passes up to 1.23 (dockershim) and has no effect from 1.24.
            "streaming-idle-timeout-set" => U,
            // Reading the running configuration is off (the default).
            "running-config-matches-disk" => NA,
            _ => P,
        };
        assert_eq!(c.status, want, "{}: {} ({})", c.id, c.reason, c.observed);
    }
}

#[test]
fn k3s_pinned_with_kubelet_pid() {
    // `--kubelet-pid` on a k3s process reads it as k3s (it was "unsupported" before).
    let fx = Fixture::load("k3s-server");
    let snap = fx.observe_with(kubelet_sentinel::observe::ObserveOptions {
        kubelet_pid: Some(1007),
        ..Default::default()
    });
    match &snap.discovery {
        Discovery::Found { pid, note, .. } => {
            assert_eq!(*pid, 1007);
            assert!(note.as_deref().unwrap_or("").contains("pinned"), "{note:?}");
        }
        other => panic!("discovery {other:?}"),
    }
    let k = snap.kubelet.as_ref().expect("kubelet");
    assert_eq!(k.flavour.as_str(), "k3s");
    assert_eq!(k.flags.last("read-only-port"), Some("0"));
    assert!(k.k3s.is_some());
}
