//! One test per known false result of kube-bench (each cites its aquasecurity/kube-bench
//! issue), run against a fixture host tree that reproduces the situation of the issue.
//! kube-bench takes the first existing file of a static list, searches `ps` output for
//! `--flag=value`, and applies no kubelet defaults (kube-bench cmd/util.go `getFiles`,
//! check/test.go `findValue`); kubelet-sentinel reads `--config` from the process and
//! applies the kubelet's own precedence and defaults (cmd/kubelet/app/server.go
//! `NewKubeletCommand`). Each test asserts our status *and* where the deciding value came
//! from.

mod common;

use common::*;
use kubelet_sentinel::evaluate::Status;
use kubelet_sentinel::model::snapshot::FileRole;

/// aquasecurity/kube-bench#1256 "False positive: Kube bench node unable to read from
/// Kubelet config file": the kubelet ran with `--config=kubelet_conf.json`, a path that is
/// not in kube-bench's list, so 4.2.1/4.2.2/4.2.3/4.2.6 failed although the file set them.
/// We take the path from the process (here relative, with the systemd default working
/// directory `/`).
#[test]
fn kube_bench_1256_config_path_comes_from_the_process() {
    let r = Fixture::load("kube-bench/1256").evaluate();
    let k = r.snapshot.kubelet.as_ref().expect("kubelet");
    assert_eq!(k.flags.last("config"), Some("kubelet_conf.json"));
    // Resolved like the kubelet's `filepath.Abs`: against the working directory, `/`.
    assert_eq!(k.config.config_file.as_deref(), Some("/kubelet_conf.json"));
    // 4.2.1, 4.2.2, 4.2.3 and 4.2.6 (protect-kernel-defaults in cis-1.6) of the issue.
    r.expect_full(
        "anonymous-auth-disabled",
        Status::Pass,
        "false",
        "config-file",
    );
    r.expect_full(
        "authorization-mode-webhook",
        Status::Pass,
        "Webhook",
        "config-file",
    );
    r.expect_full(
        "client-ca-configured",
        Status::Pass,
        "/etc/kubernetes/ca.crt",
        "config-file",
    );
    r.expect_full(
        "protect-kernel-defaults",
        Status::Pass,
        "true",
        "config-file",
    );
    r.expect_reason("anonymous-auth-disabled", "kubelet_conf.json");
}

/// kube-bench#1256, with the unit's `WorkingDirectory=/etc/kubernetes`: the kubelet
/// resolves a relative `--config` against its working directory (`loadConfigFile` calls
/// `filepath.Abs`), i.e. `/proc/<pid>/cwd`, so the file it reads is
/// `/etc/kubernetes/kubelet_conf.json`.
#[test]
fn kube_bench_1256_relative_config_resolves_against_the_process_cwd() {
    let fx = Fixture::load("kube-bench/1256-cwd");
    assert!(fx.path("/etc/kubernetes/kubelet_conf.json").is_file());
    assert!(!fx.path("/kubelet_conf.json").exists());
    let r = fx.evaluate();
    r.expect_full(
        "anonymous-auth-disabled",
        Status::Pass,
        "false",
        "config-file",
    );
    r.expect_full(
        "authorization-mode-webhook",
        Status::Pass,
        "Webhook",
        "config-file",
    );
    r.expect_full(
        "protect-kernel-defaults",
        Status::Pass,
        "true",
        "config-file",
    );
}

/// aquasecurity/kube-bench#948 "[FAIL] 4.2.6 on node": kubespray's kubelet runs with
/// `--config=/etc/kubernetes/kubelet-config.yaml`, but kube-bench read the first existing
/// file of its list, a stale `/var/lib/kubelet/config.yaml`. We use the file the process
/// names; the stale one (anonymous on, AlwaysAllow, protectKernelDefaults false,
/// readOnlyPort 10255) must not influence anything.
#[test]
fn kube_bench_948_uses_the_config_file_the_process_names() {
    let fx = Fixture::load("kube-bench/948");
    assert!(
        fx.path("/var/lib/kubelet/config.yaml").is_file(),
        "the stale file must exist for this test to mean anything"
    );
    let r = fx.evaluate();
    let k = r.snapshot.kubelet.as_ref().expect("kubelet");
    let cfg: Vec<&str> = k
        .files_in(FileRole::ConfigFile)
        .map(|f| f.path.as_str())
        .collect();
    assert_eq!(cfg, ["/etc/kubernetes/kubelet-config.yaml"]);
    assert!(k
        .files
        .iter()
        .all(|f| f.path != "/var/lib/kubelet/config.yaml"));
    // cis-1.6 4.2.6 (protect-kernel-defaults) and cis-1.12 4.2.6 (make-iptables-util-chains).
    r.expect_full(
        "protect-kernel-defaults",
        Status::Pass,
        "true",
        "config-file",
    );
    r.expect_full("iptables-util-chains", Status::Pass, "true", "config-file");
    r.expect_full(
        "anonymous-auth-disabled",
        Status::Pass,
        "false",
        "config-file",
    );
    r.expect_full(
        "authorization-mode-webhook",
        Status::Pass,
        "Webhook",
        "config-file",
    );
    r.expect_full("read-only-port-disabled", Status::Pass, "0", "config-file");
    r.expect_full(
        "client-ca-configured",
        Status::Pass,
        "/etc/kubernetes/ssl/ca.crt",
        "config-file",
    );
}

/// aquasecurity/kube-bench#852 "GKE CIS 4.2.1, 4.2.2 and 4.2.3 False Positives": the GKE
/// kubelet is started with `--config /home/kubernetes/kubelet-config.yaml` (a space, not
/// `=`), which kube-bench's `--flag=value` regex does not see.
#[test]
fn kube_bench_852_gke_space_separated_config_flag() {
    let r = Fixture::load("gke").evaluate();
    let k = r.snapshot.kubelet.as_ref().expect("kubelet");
    let i = k
        .argv
        .iter()
        .position(|a| a == "--config")
        .expect("--config as its own word");
    assert_eq!(k.argv[i + 1], "/home/kubernetes/kubelet-config.yaml");
    assert_eq!(
        k.flags.last("config"),
        Some("/home/kubernetes/kubelet-config.yaml")
    );
    r.expect_full(
        "anonymous-auth-disabled",
        Status::Pass,
        "false",
        "config-file",
    );
    r.expect_full(
        "authorization-mode-webhook",
        Status::Pass,
        "Webhook",
        "config-file",
    );
    r.expect_full(
        "client-ca-configured",
        Status::Pass,
        "/etc/srv/kubernetes/pki/ca-certificates.crt",
        "config-file",
    );
}

/// aquasecurity/kube-bench#1242 "cfg/cis-1.6's 4.2.1 get a false negative result": a
/// kubelet configured by flags only, with no config file. Without `--anonymous-auth` the
/// flags-only default is `true` (`applyLegacyDefaults`), so 4.2.1 must fail, from the
/// default;
/// with `--anonymous-auth=false` (the command line) it passes, from the flag, while
/// the other legacy defaults (AlwaysAllow, no webhook, port 10255) still fail.
#[test]
fn kube_bench_1242_flags_only_kubelet() {
    let r = Fixture::load("flags-only").evaluate();
    assert!(r
        .snapshot
        .kubelet
        .as_ref()
        .expect("kubelet")
        .config
        .config_file
        .is_none());
    r.expect_full("anonymous-auth-disabled", Status::Fail, "true", "default");

    let r = Fixture::load("kube-bench/1242").evaluate();
    let k = r.snapshot.kubelet.as_ref().expect("kubelet");
    assert!(k.config.config_file.is_none());
    assert!(k.config.flags_only_base);
    r.expect_full("anonymous-auth-disabled", Status::Pass, "false", "flag");
    r.expect_full(
        "authorization-mode-webhook",
        Status::Fail,
        "AlwaysAllow",
        "default",
    );
    r.expect_full(
        "authentication-webhook-enabled",
        Status::Fail,
        "false",
        "default",
    );
    r.expect_full("read-only-port-disabled", Status::Fail, "10255", "default");
}

/// aquasecurity/kube-bench#204 "Flags set vs. default values": checks fail when a flag is
/// absent although the built-in default is secure. A `--config` file that says nothing
/// about authentication/authorization gets the v1beta1 defaults (anonymous off, Webhook
/// authn and authz, read-only port 0): those pass, and say they come from the default.
#[test]
fn kube_bench_204_secure_default_is_not_a_failure() {
    let r = Fixture::load("kube-bench/204").evaluate();
    let k = r.snapshot.kubelet.as_ref().expect("kubelet");
    assert!(!k.config.flags_only_base);
    assert!(k
        .config
        .merged
        .get("authentication")
        .and_then(|a| a.get("anonymous"))
        .is_none());
    r.expect_full("anonymous-auth-disabled", Status::Pass, "false", "default");
    r.expect_full(
        "authorization-mode-webhook",
        Status::Pass,
        "Webhook",
        "default",
    );
    r.expect_full(
        "authentication-webhook-enabled",
        Status::Pass,
        "true",
        "default",
    );
    r.expect_full("read-only-port-disabled", Status::Pass, "0", "default");
    r.expect_full("iptables-util-chains", Status::Pass, "true", "default");
    // The 4h default is secure where the setting applies (dockershim, kubelets up to
    // 1.23; no effect from 1.24): without a version that is unknown, and never a failure.
    r.expect_full(
        "streaming-idle-timeout-set",
        Status::Unknown,
        "4h0m0s",
        "default",
    );
    // A default that is *not* secure is still a failure, from the default.
    r.expect_full("protect-kernel-defaults", Status::Fail, "false", "default");
}

/// aquasecurity/kube-bench#1364 "False negative when audit_config is defined and config
/// file is not found": a missing config file must never turn into a pass. The kubelet
/// names a file that does not exist: every config-decided control is unknown, saying so.
#[test]
fn kube_bench_1364_missing_config_is_never_a_pass() {
    let r = Fixture::load("config-missing").evaluate();
    for id in [
        "anonymous-auth-disabled",
        "authorization-mode-webhook",
        "client-ca-configured",
    ] {
        r.expect(id, Status::Unknown);
        r.expect_reason(id, "/var/lib/kubelet/config.yaml: not found");
    }
}

/// aquasecurity/kube-bench#959 "Kube-bench doesn't find arguments in --kubelet-args-file":
/// MicroK8s' kubelite keeps the kubelet's flags in `$SNAP_DATA/args/kubelet`. We read them
/// (quoted values, `${SNAP_DATA}` expanded) and decide from them.
#[test]
fn kube_bench_959_microk8s_args_file() {
    let r = Fixture::load("microk8s").evaluate();
    r.expect_full("anonymous-auth-disabled", Status::Pass, "false", "flag");
    r.expect_full(
        "authentication-webhook-enabled",
        Status::Pass,
        "true",
        "flag",
    );
    r.expect_full("read-only-port-disabled", Status::Pass, "0", "flag");
    r.expect_full(
        "client-ca-configured",
        Status::Pass,
        "/var/snap/microk8s/current/certs/ca.crt",
        "flag",
    );
    // ...and no --authorization-mode in the args file means AlwaysAllow.
    r.expect_full(
        "authorization-mode-webhook",
        Status::Fail,
        "AlwaysAllow",
        "default",
    );
}

/// aquasecurity/kube-bench#2139 "kube-bench fail to check kubelet service file at
/// /usr/lib/systemd/system/kubelet.service": the unit file is found through the process's
/// cgroup and the systemd search path, wherever the package put it.
#[test]
fn kube_bench_2139_unit_file_under_usr_lib() {
    let r = Fixture::load("non-utf8-cmdline").evaluate();
    let c = r.expect("service-file-permissions", Status::Fail);
    assert_eq!(c.source, "file-metadata");
    assert!(
        c.observed
            .contains("0644 /usr/lib/systemd/system/kubelet.service;"),
        "{}",
        c.observed
    );
    assert!(
        c.observed
            .contains("/usr/lib/systemd/system/kubelet.service.d/10-kubeadm.conf"),
        "{}",
        c.observed
    );
    let r = Fixture::load("kubeadm-hardened").evaluate();
    let c = r.expect("service-file-permissions", Status::Pass);
    assert!(
        c.observed
            .contains("0600 /usr/lib/systemd/system/kubelet.service"),
        "{}",
        c.observed
    );
}
