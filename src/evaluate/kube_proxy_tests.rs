use super::*;
use crate::evaluate::{evaluate, ControlResult};
use crate::model::kube_proxy::{parse_config, ProxyConfigFile, ProxyKubeconfig};
use crate::model::kubelet_config::flags::Flags;
use crate::model::snapshot::{ApiSource, ClusterView, FileRole};
use crate::model::testing::{file, kubeadm};

const CM: &str =
    "/var/lib/kubelet/pods/8d2b4c7e-5a1f-4f2e-9c3b-6e0d1a2b3c4d/volumes/kubernetes.io~configmap/kube-proxy";

fn daemonset(metrics: &str, mode: u32, listeners: Option<Vec<(&str, u16)>>) -> KubeProxy {
    let text = format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nclientConnection:\n  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\nmetricsBindAddress: \"{metrics}\"\n"
    );
    KubeProxy {
        pid: 1622,
        runs_as: RunsAs::Container { pod_uid: None },
        flags: Flags::parse(&["--config=/var/lib/kube-proxy/config.conf"]),
        origins: Vec::new(),
        evidence: vec!["in the host's network namespace".into()],
        config: Some(ProxyConfigFile {
            path: "/var/lib/kube-proxy/config.conf".into(),
            host_path: Ok(format!("{CM}/config.conf")),
            values: parse_config(&text),
        }),
        kubeconfig: Ok(Some(ProxyKubeconfig {
            path: "/var/lib/kube-proxy/kubeconfig.conf".into(),
            source: "config-file".into(),
            host_path: Ok(format!("{CM}/kubeconfig.conf")),
        })),
        files: vec![file(
            FileRole::ProxyKubeconfig,
            &format!("{CM}/kubeconfig.conf"),
            mode,
            0,
            0,
        )],
        listeners: listeners.map(|l| {
            l.into_iter()
                .map(|(a, p)| (a.parse().unwrap(), p))
                .collect()
        }),
    }
}

fn run(view: Option<KubeProxyView>) -> (Snapshot, Vec<ControlResult>) {
    let mut s = kubeadm();
    s.kube_proxy = view;
    let r = evaluate(&s, &Policy::embedded());
    (s, r)
}

fn get<'a>(r: &'a [ControlResult], id: &str) -> &'a ControlResult {
    r.iter().find(|c| c.id == id).expect(id)
}

fn found(p: KubeProxy) -> Option<KubeProxyView> {
    Some(KubeProxyView::Found { proxy: Box::new(p) })
}

#[test]
fn kubeadm_daemonset_default_metrics_and_configmap_mode() {
    let (s, r) = run(found(daemonset(
        "",
        0o644,
        Some(vec![("127.0.0.1", 10249)]),
    )));
    let m = get(&r, "kube-proxy-metrics-localhost");
    assert_eq!(m.status, Status::Pass, "{}", m.reason);
    assert_eq!(m.observed, "127.0.0.1:10249");
    assert_eq!(m.source, "default");
    assert!(m.reason.contains("loopback only (live)"), "{}", m.reason);
    let p = get(&r, "kube-proxy-kubeconfig-permissions");
    assert_eq!(p.status, Status::Fail);
    assert!(p.reason.contains("defaultMode"), "{}", p.reason);
    // Observed: kube-proxy's own path, stable across pod restarts (the pod UID and the
    // `..data` timestamp of the host path are not drift); the reason names the host file.
    assert_eq!(p.observed, "0644 /var/lib/kube-proxy/kubeconfig.conf");
    assert!(
        p.reason
            .contains(&format!("on the host {CM}/kubeconfig.conf")),
        "{}",
        p.reason
    );
    assert_eq!(p.expected, "≤ 0600");
    assert_eq!(
        get(&r, "kube-proxy-kubeconfig-ownership").status,
        Status::Pass
    );
    // A ConfigMap volume is not chmod'ed by the fix: the DaemonSet's defaultMode is.
    let f = fixes(&s, &Policy::embedded(), &r);
    assert!(
        matches!(&f[..], [ProxyFix::Cannot { control: "kube-proxy-kubeconfig-permissions", why }] if why.contains("defaultMode: 0600")),
        "{f:?}"
    );
}

#[test]
fn metrics_on_all_interfaces_fails_and_is_a_configmap_change() {
    let (s, r) = run(found(daemonset("0.0.0.0:10249", 0o600, None)));
    let m = get(&r, "kube-proxy-metrics-localhost");
    assert_eq!(m.status, Status::Fail);
    assert_eq!(m.observed, "0.0.0.0:10249");
    assert_eq!(m.source, "config-file /var/lib/kube-proxy/config.conf");
    let f = fixes(&s, &Policy::embedded(), &r);
    assert!(
        matches!(&f[..], [ProxyFix::Cannot { control: "kube-proxy-metrics-localhost", why }] if why.contains("kubectl -n kube-system edit configmap kube-proxy")),
        "{f:?}"
    );
}

#[test]
fn live_listener_beats_a_loopback_configuration() {
    let (_, r) = run(found(daemonset("", 0o600, Some(vec![("0.0.0.0", 10249)]))));
    let m = get(&r, "kube-proxy-metrics-localhost");
    assert_eq!(m.status, Status::Fail, "{}", m.reason);
    assert!(m.source.contains("live listener"));
}

#[test]
fn host_file_gets_chmod_and_chown() {
    let mut p = daemonset("", 0o644, None);
    p.runs_as = RunsAs::HostProcess;
    p.config = None;
    p.flags = Flags::parse(&["--kubeconfig=/var/lib/kube-proxy/kubeconfig"]);
    p.kubeconfig = Ok(Some(ProxyKubeconfig {
        path: "/var/lib/kube-proxy/kubeconfig".into(),
        source: "flag".into(),
        host_path: Ok("/var/lib/kube-proxy/kubeconfig".into()),
    }));
    p.files = vec![file(
        FileRole::ProxyKubeconfig,
        "/var/lib/kube-proxy/kubeconfig",
        0o644,
        1000,
        0,
    )];
    let (s, r) = run(found(p));
    assert_eq!(
        get(&r, "kube-proxy-kubeconfig-permissions").status,
        Status::Fail
    );
    assert_eq!(
        get(&r, "kube-proxy-kubeconfig-ownership").status,
        Status::Fail
    );
    let f = fixes(&s, &Policy::embedded(), &r);
    assert_eq!(
        f,
        vec![
            ProxyFix::Mode(ModeChange {
                path: "/var/lib/kube-proxy/kubeconfig".into(),
                mode: Some(0o600),
                owner: None,
                controls: vec!["kube-proxy-kubeconfig-permissions".into()],
            }),
            ProxyFix::Mode(ModeChange {
                path: "/var/lib/kube-proxy/kubeconfig".into(),
                mode: None,
                owner: Some((0, 0)),
                controls: vec!["kube-proxy-kubeconfig-ownership".into()],
            }),
        ]
    );
    assert_eq!(mode_fixes(&s, &Policy::embedded(), &r).len(), 2);
    // The files reach the fix's in-memory chmod/chown, and the controls then pass: what
    // the fix's proof does.
    let changes = mode_fixes(&s, &Policy::embedded(), &r);
    let mut s = s;
    assert_eq!(
        s.files_mut()
            .filter(|f| f.role == FileRole::ProxyKubeconfig)
            .count(),
        1
    );
    for c in &changes {
        for f in s.files_mut().filter(|f| f.path == c.path) {
            if let Ok(m) = f.meta.as_mut() {
                if let Some(mode) = c.mode {
                    m.mode = mode;
                }
                if let Some((u, g)) = c.owner {
                    m.uid = u;
                    m.gid = g;
                }
            }
        }
    }
    let after = evaluate(&s, &Policy::embedded());
    for id in [
        "kube-proxy-kubeconfig-permissions",
        "kube-proxy-kubeconfig-ownership",
    ] {
        assert_eq!(get(&after, id).status, Status::Pass, "{id}");
    }
}

#[test]
fn in_cluster_credentials_have_no_file() {
    let mut p = daemonset("", 0o644, None);
    p.kubeconfig = Ok(None);
    p.files.clear();
    let (_, r) = run(found(p));
    let c = get(&r, "kube-proxy-kubeconfig-permissions");
    assert_eq!(c.status, Status::NotApplicable);
    assert!(c.reason.contains("in-cluster"), "{}", c.reason);
}

#[test]
fn absence_needs_positive_evidence() {
    let not_seen = || {
        Some(KubeProxyView::NotSeen {
            reason: "no kube-proxy process in /proc".into(),
            expected: None,
        })
    };
    // No API, no replacement: unknown.
    let (_, r) = run(not_seen());
    for id in [
        "kube-proxy-kubeconfig-permissions",
        "kube-proxy-metrics-localhost",
    ] {
        let c = get(&r, id);
        assert_eq!(c.status, Status::Unknown, "{id}");
        assert!(c.reason.contains("not proof of absence"), "{}", c.reason);
    }
    // The API lists this node's pods, none is kube-proxy: not applicable.
    let mut s = kubeadm();
    s.kube_proxy = not_seen();
    let mut view = ClusterView::no_access("x");
    view.access = Ok("in-cluster".into());
    view.pods = ApiSource {
        data: Some(vec![PodFacts {
            namespace: "kube-system".into(),
            name: "cilium-abcde".into(),
            ..Default::default()
        }]),
        health: Ok(()),
        duration: std::time::Duration::ZERO,
    };
    s.cluster = Some(view.clone());
    let r = evaluate(&s, &Policy::embedded());
    assert_eq!(
        get(&r, "kube-proxy-metrics-localhost").status,
        Status::NotApplicable
    );
    // ... but a kube-proxy pod bound here: expected and not running.
    if let Some(p) = view.pods.data.as_mut() {
        p.push(PodFacts {
            namespace: "kube-system".into(),
            name: "kube-proxy-x7k2p".into(),
            owner: Some("DaemonSet/kube-proxy".into()),
            ..Default::default()
        });
    }
    s.cluster = Some(view);
    let r = evaluate(&s, &Policy::embedded());
    let c = get(&r, "kube-proxy-metrics-localhost");
    assert_eq!(c.status, Status::Unknown);
    assert!(c.reason.contains("kube-proxy-x7k2p"), "{}", c.reason);
    // Positive evidence on the node.
    let (_, r) = run(Some(KubeProxyView::Absent {
        reason: "no kube-proxy on this node: replaced by Cilium".into(),
    }));
    assert_eq!(
        get(&r, "kube-proxy-kubeconfig-ownership").status,
        Status::NotApplicable
    );
    // Not looked for at all.
    let (_, r) = run(None);
    assert_eq!(
        get(&r, "kube-proxy-metrics-localhost").status,
        Status::Unknown
    );
}

#[test]
fn flags_only_metrics_off_and_bad_address() {
    let mut p = daemonset("", 0o600, None);
    p.config = None;
    p.flags = Flags::parse(&["--metrics-bind-address=0.0.0.0", "--metrics-port=0"]);
    let (_, r) = run(found(p.clone()));
    let c = get(&r, "kube-proxy-metrics-localhost");
    assert_eq!(c.status, Status::Pass);
    assert_eq!(c.observed, "off");
    p.flags = Flags::parse(&["--metrics-bind-address=10.0.0.31"]);
    let (_, r) = run(found(p.clone()));
    let c = get(&r, "kube-proxy-metrics-localhost");
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.observed, "10.0.0.31:10249");
    assert_eq!(c.source, "flag");
    // An unreadable --config decides nothing.
    p.config = Some(ProxyConfigFile {
        path: "/c".into(),
        host_path: Err("not mapped".into()),
        values: Err("not mapped".into()),
    });
    let (_, r) = run(found(p));
    assert_eq!(
        get(&r, "kube-proxy-metrics-localhost").status,
        Status::Unknown
    );
}
