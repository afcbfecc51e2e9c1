use super::super::Status;
use super::*;
use crate::evaluate::testing::*;
use crate::model::snapshot::{ApiSource, ClusterView, NamespaceFacts};

const ENFORCED: &str = "pod-security-enforced";
const TAKEOVER: &str = "no-host-takeover-pods";

fn pod(ns: &str, name: &str) -> PodFacts {
    PodFacts {
        namespace: ns.into(),
        name: name.into(),
        phase: Some("Running".into()),
        ..PodFacts::default()
    }
}

fn ns(name: &str, enforce: Option<&str>) -> NamespaceFacts {
    NamespaceFacts {
        name: name.into(),
        enforce: enforce.map(str::to_string),
        enforce_version: None,
    }
}

fn synced<T>(data: T) -> ApiSource<T> {
    ApiSource {
        data: Some(data),
        health: Ok(()),
        duration: std::time::Duration::ZERO,
    }
}

fn with(pods: Vec<PodFacts>, namespaces: Vec<NamespaceFacts>) -> Snapshot {
    let mut s = kubeadm();
    s.cluster = Some(ClusterView {
        access: Ok("kubeconfig /k".into()),
        pods: synced(pods),
        namespaces: synced(namespaces),
        ..ClusterView::no_access("")
    });
    s
}

#[test]
fn without_api_access_both_are_unknown_and_policy_can_turn_them_off() {
    let mut s = kubeadm();
    for id in [ENFORCED, TAKEOVER] {
        let o = eval(id, &s);
        assert_status(&o, Status::Unknown);
        assert!(o.reason.starts_with("no API access"), "{}", o.reason);
    }
    s.cluster = Some(ClusterView::no_access("--api-access=off"));
    let o = eval(ENFORCED, &s);
    assert_eq!(o.reason, "no API access (--api-access=off)");
    let p = Policy::from_yaml("p.yaml", "expected:\n  cluster_checks: false\n").unwrap();
    let r = crate::evaluate::evaluate(&s, &p);
    for id in [ENFORCED, TAKEOVER] {
        let r = r.iter().find(|r| r.id == id).unwrap();
        assert_eq!(r.status, Status::NotApplicable, "{id}");
    }
}

#[test]
fn not_yet_synced_is_unknown() {
    let mut s = kubeadm();
    s.cluster = Some(ClusterView {
        access: Ok("in-cluster service account".into()),
        pods: ApiSource::default(),
        namespaces: ApiSource::default(),
        ..ClusterView::no_access("")
    });
    let o = eval(TAKEOVER, &s);
    assert_status(&o, Status::Unknown);
    assert_eq!(o.reason, "waiting for the first list of pods");
    if let Some(c) = s.cluster.as_mut() {
        c.pods.health = Err("list pods: 403 Forbidden: pods is forbidden".into());
    }
    let o = eval(ENFORCED, &s);
    assert_status(&o, Status::Unknown);
    assert!(o.reason.contains("403 Forbidden"), "{}", o.reason);
}

#[test]
fn even_without_a_kubelet_the_api_decides() {
    let mut s = with(vec![pod("web", "a")], vec![ns("web", Some("restricted"))]);
    s.kubelet = None;
    s.discovery = crate::model::snapshot::Discovery::NotFound {
        reason: "no kubelet process".into(),
    };
    assert_status(&eval(ENFORCED, &s), Status::Pass);
    assert_status(&eval(TAKEOVER, &s), Status::Pass);
}

#[test]
fn levels_labels_and_exemptions() {
    let s = with(
        vec![pod("web", "a"), pod("api", "b"), pod("kube-system", "c")],
        vec![
            ns("web", Some("restricted")),
            ns("api", Some("baseline")),
            ns("kube-system", None),
        ],
    );
    let o = eval(ENFORCED, &s);
    assert_status(&o, Status::Pass);
    assert_eq!(
        o.observed,
        "every namespace with pods here enforces ≥ baseline"
    );
    assert!(
        o.reason.contains("api=baseline, web=restricted"),
        "{}",
        o.reason
    );
    assert_eq!(o.source, "api");

    let p = Policy::from_yaml(
        "p.yaml",
        "expected:\n  pod_security_required_level: restricted\n",
    )
    .unwrap();
    let r = crate::evaluate::evaluate(&s, &p);
    let r = r.iter().find(|r| r.id == ENFORCED).unwrap();
    assert_eq!(r.status, Status::Fail);
    assert_eq!(r.observed, "api (enforce=baseline)");

    let s = with(
        vec![pod("a", "1"), pod("b", "2"), pod("c", "3"), pod("d", "4")],
        vec![
            ns("a", Some("privileged")),
            ns("b", None),
            ns("c", Some("Baseline")),
            ns("d", Some("baseline")),
        ],
    );
    let o = eval(ENFORCED, &s);
    assert_status(&o, Status::Fail);
    assert_eq!(
            o.observed,
            "a (enforce=privileged), b (no enforce label), c (enforce=Baseline: not a Pod Security level)"
        );
    // Namespaces without pods here, or whose pods finished, do not count.
    let mut done = pod("b", "job");
    done.phase = Some("Succeeded".into());
    let s = with(
        vec![pod("d", "4"), done],
        vec![ns("b", None), ns("d", Some("baseline")), ns("x", None)],
    );
    assert_status(&eval(ENFORCED, &s), Status::Pass);
    // Only exempt namespaces: a pass that says so.
    let s = with(vec![pod("kube-system", "c")], vec![ns("kube-system", None)]);
    let o = eval(ENFORCED, &s);
    assert_status(&o, Status::Pass);
    assert!(
        o.reason
            .contains("exempt namespace (kube-system, kubelet-sentinel)"),
        "{}",
        o.reason
    );
    // A pod whose namespace is not listed yet: unknown, unless another fails.
    let s = with(vec![pod("new", "1")], vec![]);
    assert_status(&eval(ENFORCED, &s), Status::Unknown);
    let s = with(vec![pod("new", "1"), pod("b", "2")], vec![ns("b", None)]);
    assert_status(&eval(ENFORCED, &s), Status::Fail);
}

#[test]
fn long_lists_are_capped() {
    let pods: Vec<PodFacts> = (0..13).map(|i| pod(&format!("ns{i:02}"), "p")).collect();
    let nss: Vec<NamespaceFacts> = (0..13).map(|i| ns(&format!("ns{i:02}"), None)).collect();
    let o = eval(ENFORCED, &with(pods, nss));
    assert_status(&o, Status::Fail);
    assert!(
        o.observed.ends_with("ns09 (no enforce label) and 3 more"),
        "{}",
        o.observed
    );
}

#[test]
fn stale_data_is_said() {
    let mut s = with(vec![pod("web", "a")], vec![ns("web", Some("baseline"))]);
    if let Some(c) = s.cluster.as_mut() {
        c.pods.health = Err("watch pods: disconnected".into());
    }
    let o = eval(ENFORCED, &s);
    assert_status(&o, Status::Pass);
    assert!(o.reason.contains("as of its last list"), "{}", o.reason);
}

#[test]
fn host_paths() {
    use RiskReason::*;
    assert_eq!(classify_host_path("/"), [HostPathRoot]);
    assert_eq!(classify_host_path("//"), [HostPathRoot]);
    assert_eq!(classify_host_path("/var/lib/kubelet"), [HostPathKubelet]);
    assert_eq!(
        classify_host_path("/var/lib/kubelet/pods/"),
        [HostPathKubelet]
    );
    assert_eq!(classify_host_path("/var/lib/kubelet-x"), []);
    assert_eq!(classify_host_path("/var/lib"), [HostPathKubelet]);
    assert_eq!(classify_host_path("/var"), [HostPathKubelet, RuntimeSocket]);
    assert_eq!(classify_host_path("/etc"), [HostPathKubernetes]);
    assert_eq!(
        classify_host_path("/etc/kubernetes/pki"),
        [HostPathKubernetes]
    );
    assert_eq!(
        classify_host_path("/etc/./kubernetes"),
        [HostPathKubernetes]
    );
    assert_eq!(classify_host_path("/etc/ssl/certs"), []);
    assert_eq!(
        classify_host_path("/run/containerd/containerd.sock"),
        [RuntimeSocket]
    );
    assert_eq!(classify_host_path("/run/containerd"), [RuntimeSocket]);
    assert_eq!(classify_host_path("/var/run"), [RuntimeSocket]);
    assert_eq!(classify_host_path("/var/run/docker.sock"), [RuntimeSocket]);
    assert_eq!(classify_host_path("/run/crio/crio.sock"), [RuntimeSocket]);
    // A CNI's own state under /var/run is not the runtime's socket.
    assert_eq!(classify_host_path("/var/run/calico"), []);
    assert_eq!(classify_host_path("/run/xtables.lock"), []);
    assert_eq!(
        classify_host_path("/var/lib/kubelet/../../.."),
        [HostPathRoot]
    );
    assert_eq!(normalize(""), "/");
}

#[test]
fn each_risky_reason_and_the_allow_list() {
    let mut privileged = pod("ci", "builder-1");
    privileged.privileged_containers = vec!["dind".into()];
    let mut pid = pod("ci", "debug");
    pid.host_pid = true;
    pid.host_ipc = true;
    let mut net = pod("web", "proxy");
    net.host_network = true;
    let mut paths = pod("web", "backup");
    paths.host_paths = vec![
        "/".into(),
        "/var/lib/kubelet/pods".into(),
        "/etc/kubernetes".into(),
        "/run/containerd/containerd.sock".into(),
        "/tmp".into(),
    ];
    let mut agent = pod("kubelet-sentinel", "kubelet-sentinel-x7k2p");
    agent.host_pid = true;
    agent.host_network = true;
    agent.host_paths = vec!["/".into()];
    let mut finished = pod("ci", "old");
    finished.privileged_containers = vec!["c".into()];
    finished.phase = Some("Failed".into());
    let s = with(
        vec![
            privileged,
            pid,
            net,
            paths,
            agent,
            finished,
            pod("web", "ok"),
        ],
        vec![],
    );
    let o = eval(TAKEOVER, &s);
    assert_status(&o, Status::Fail);
    assert_eq!(
            o.observed,
            "ci/builder-1 (privileged), ci/debug (host_pid,host_ipc), web/backup (host_path_root,host_path_kubelet,host_path_kubernetes,runtime_socket), web/proxy (host_network)"
        );
    assert!(o.reason.starts_with("4 pod(s)"), "{}", o.reason);
    assert!(
        o.reason.contains("privileged container dind"),
        "{}",
        o.reason
    );
    assert!(
        o.reason
            .contains("hostPath /run/containerd/containerd.sock"),
        "{}",
        o.reason
    );
    let series = risky_pod_series(&s, &Policy::embedded());
    assert_eq!(series.len(), 8);
    assert!(series.contains(&("ci".into(), "debug".into(), "host_ipc")));
    assert!(!series.iter().any(|(ns, _, _)| ns == "kubelet-sentinel"));
    // Allow-list everything risky: pass, with the counts.
    let p = Policy::from_yaml(
            "p.yaml",
            "expected:\n  host_takeover_allowed_pods: [{namespace: ci}, {namespace: web, name_prefix: ''}, {namespace: kubelet-sentinel, name_prefix: kubelet-sentinel-}]\n",
        )
        .unwrap();
    let r = crate::evaluate::evaluate(&s, &p);
    let r = r.iter().find(|r| r.id == TAKEOVER).unwrap();
    assert_eq!(r.status, Status::Pass, "{r:?}");
    assert_eq!(r.observed, "no risky pod");
    assert!(
        r.reason.contains("none of the 6 pods") && r.reason.contains("(5 allow-listed)"),
        "{}",
        r.reason
    );
    // Disabled control or cluster checks off: no series.
    let p = Policy::from_yaml(
        "p.yaml",
        "controls:\n  no-host-takeover-pods: {enabled: false}\n",
    )
    .unwrap();
    assert!(risky_pod_series(&s, &p).is_empty());
}
