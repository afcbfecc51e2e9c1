use super::*;

fn flags(args: &[&str]) -> Flags {
    Flags::parse(args)
}

const KUBEADM_CONFIG: &str = "apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
bindAddress: 0.0.0.0
clientConnection:
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
metricsBindAddress: \"\"
mode: iptables
";

#[test]
fn config_file_replaces_the_flags() {
    // cmd/kube-proxy/app/options.go Complete: the file replaces the flag-bound object.
    let f = flags(&[
        "--config=/var/lib/kube-proxy/config.conf",
        "--metrics-bind-address=0.0.0.0:10249",
        "--kubeconfig=/root/other",
    ]);
    let cfg = parse_config(KUBEADM_CONFIG);
    let m = effective_metrics(&f, &[], Some(&cfg)).unwrap();
    assert_eq!(m.address.as_deref(), Some("127.0.0.1:10249"));
    assert_eq!(m.source, "default");
    assert_eq!(
        m.ignored,
        ["--metrics-bind-address=0.0.0.0:10249 is ignored: --config is set"]
    );
    let k = kubeconfig_path(&f, &[], Some(&cfg)).unwrap();
    assert_eq!(
        k,
        Some((
            "/var/lib/kube-proxy/kubeconfig.conf".to_string(),
            "config-file".to_string()
        ))
    );
}

#[test]
fn config_file_value_gets_the_default_port() {
    let text = KUBEADM_CONFIG.replace("metricsBindAddress: \"\"", "metricsBindAddress: 0.0.0.0");
    let m = effective_metrics(&flags(&[]), &[], Some(&parse_config(&text))).unwrap();
    assert_eq!(m.address.as_deref(), Some("0.0.0.0:10249"));
    assert_eq!(m.source, "config-file");
}

#[test]
fn miscased_key_is_ignored_and_ipv6_bind_defaults_to_v6_loopback() {
    let text = "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nMetricsBindAddress: 0.0.0.0:10249\nbindAddress: \"::\"\n";
    let m = effective_metrics(&flags(&[]), &[], Some(&parse_config(text))).unwrap();
    assert_eq!(m.address.as_deref(), Some("[::1]:10249"));
    assert_eq!(m.source, "default");
}

#[test]
fn wrong_kind_or_unreadable_config_is_undecided() {
    assert!(parse_config("kind: KubeletConfiguration\n").is_err());
    assert!(parse_config("kind: KubeProxyConfiguration\napiVersion: v2\n").is_err());
    let err: Result<ProxyConfig, String> = Err("permission denied".into());
    assert!(effective_metrics(&flags(&[]), &[], Some(&err)).is_err());
    assert!(kubeconfig_path(&flags(&[]), &[], Some(&err)).is_err());
}

#[test]
fn flags_only_rules() {
    // No flag: the default, loopback.
    let m = effective_metrics(&flags(&[]), &[], None).unwrap();
    assert_eq!(m.address.as_deref(), Some("127.0.0.1:10249"));
    // An IP without a port gets --metrics-port (default 10249).
    let m = effective_metrics(&flags(&["--metrics-bind-address=0.0.0.0"]), &[], None).unwrap();
    assert_eq!(m.address.as_deref(), Some("0.0.0.0:10249"));
    assert_eq!(m.source, "flag");
    let m = effective_metrics(
        &flags(&["--metrics-bind-address=10.0.0.5", "--metrics-port=9999"]),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(m.address.as_deref(), Some("10.0.0.5:9999"));
    // `IPPortVar.Set("")` is a no-op: the default stays.
    let m = effective_metrics(&flags(&["--metrics-bind-address="]), &[], None).unwrap();
    assert_eq!(m.address.as_deref(), Some("127.0.0.1:10249"));
    // Port 0 turns the server off (addressFromDeprecatedFlags).
    let m = effective_metrics(
        &flags(&["--metrics-bind-address=0.0.0.0", "--metrics-port=0"]),
        &[],
        None,
    )
    .unwrap();
    assert_eq!(m.address, None);
    // A bad port is kube-proxy's refusal, not a guess.
    assert!(effective_metrics(&flags(&["--metrics-port=x"]), &[], None).is_err());
    // The kubeconfig flag counts without --config.
    assert_eq!(
        kubeconfig_path(
            &flags(&["--kubeconfig=/var/lib/kube-proxy/kubeconfig"]),
            &[],
            None
        )
        .unwrap()
        .map(|(p, _)| p)
        .as_deref(),
        Some("/var/lib/kube-proxy/kubeconfig")
    );
    assert_eq!(kubeconfig_path(&flags(&[]), &[], None).unwrap(), None);
}

#[test]
fn host_port_split() {
    assert_eq!(
        split_host_port("127.0.0.1:10249"),
        Some(("127.0.0.1".parse().unwrap(), Some(10249)))
    );
    assert_eq!(
        split_host_port("[::1]:10249"),
        Some(("::1".parse().unwrap(), Some(10249)))
    );
    assert_eq!(
        split_host_port("0.0.0.0"),
        Some(("0.0.0.0".parse().unwrap(), None))
    );
    assert_eq!(split_host_port("localhost:10249"), None);
}

const CONTAINER: &str = "\
1201 1100 0:312 / / rw,relatime master:400 - overlay overlay rw,lowerdir=/x
1202 1201 0:315 / /proc rw,nosuid - proc proc rw
1210 1201 8:1 /var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~configmap/kube-proxy /var/lib/kube-proxy ro,relatime - ext4 /dev/sda1 rw
1211 1201 0:320 / /var/run/secrets/kubernetes.io/serviceaccount ro,relatime - tmpfs tmpfs rw
1212 1201 8:1 /run/xtables.lock /run/xtables.lock rw - ext4 /dev/sda1 rw
1213 1201 8:1 /srv/with\\040space /data rw - ext4 /dev/sda1 rw
";

const HOST: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:320 / /var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~projected/kube-api-access-x rw - tmpfs tmpfs rw
";

#[test]
fn mountinfo_maps_configmap_volumes_to_host_paths() {
    let c = parse_mountinfo(CONTAINER);
    let h = parse_mountinfo(HOST);
    assert_eq!(c.len(), 6);
    assert_eq!(
        map_to_host(&c, &h, "/var/lib/kube-proxy/kubeconfig.conf").unwrap(),
        "/var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~configmap/kube-proxy/kubeconfig.conf"
    );
    // tmpfs mounted on the host too.
    assert_eq!(
        map_to_host(&c, &h, "/var/run/secrets/kubernetes.io/serviceaccount/token").unwrap(),
        "/var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~projected/kube-api-access-x/token"
    );
    // Escaped space in the root.
    assert_eq!(map_to_host(&c, &h, "/data/f").unwrap(), "/srv/with space/f");
    // The image's own files are no node files.
    let e = map_to_host(&c, &h, "/etc/kube-proxy.conf").unwrap_err();
    assert!(e.contains("own root filesystem"), "{e}");
    // A prefix by characters is not a prefix by components.
    let e = map_to_host(&c, &h, "/var/lib/kube-proxyx/a").unwrap_err();
    assert!(e.contains("own root filesystem"), "{e}");
    // `..` never walks out of a mount.
    assert!(map_to_host(&c, &h, "/var/lib/kube-proxy/../../etc/shadow").is_err());
    assert!(map_to_host(&c, &h, "relative").is_err());
}

#[test]
fn later_mount_on_the_same_point_shadows() {
    let c = parse_mountinfo(
        "1 0 8:1 /a /m rw - ext4 x rw\n2 0 8:1 /b /m rw - ext4 x rw\n3 0 8:9 / / rw - overlay o rw\n",
    );
    let h = parse_mountinfo("9 1 8:1 / / rw - ext4 x rw\n");
    assert_eq!(map_to_host(&c, &h, "/m/f").unwrap(), "/b/f");
}

#[test]
fn pod_uid_from_cgroup_paths() {
    let systemd = "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod8d2b4c7e_5a1f_4f2e_9c3b_6e0d1a2b3c4d.slice/cri-containerd-5f0c.scope\n";
    assert_eq!(
        pod_uid_from_cgroup(systemd).as_deref(),
        Some("8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d")
    );
    let cgroupfs = "12:pids:/kubepods/besteffort/pod8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/abc\n";
    assert_eq!(
        pod_uid_from_cgroup(cgroupfs).as_deref(),
        Some("8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d")
    );
    assert_eq!(
        pod_uid_from_cgroup("0::/system.slice/kube-proxy.service\n"),
        None
    );
}
