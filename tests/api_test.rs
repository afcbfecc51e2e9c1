//! The agent against a fake Kubernetes API server (`common::fake_api`): the Pod Security
//! controls' verdicts from real list and watch traffic, `kubelet_sentinel_risky_pod_info`,
//! the `api_*` observation steps on 401/403/500, a watch that disconnects and a server
//! that hangs or is slow — and that the node-local evaluation keeps its cadence meanwhile.
//!
//! The agent is the built binary pointed at the fake with `--kubeconfig` (plain http and a
//! bearer token), over the `kubeadm-hardened` fixture host tree.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::agent::{control, kubeconfig_command, run_report, serve_args, wait_http_ready};
use common::fake_api::{self, FakeApi, Mode};
use common::http::{free_port, get};
use common::metrics::sample;
use common::process::Guard;
use common::Fixture;
use serde_json::{json, Value};

const NODE: &str = "node-1";

struct Agent {
    addr: SocketAddr,
    _child: Guard,
    _fx: Fixture,
    _state: tempfile::TempDir,
}

impl Agent {
    fn metrics(&self) -> String {
        get(self.addr, "/metrics", None).expect("scrape").body
    }

    /// Scrape until the sample `name{labels}` is `value` (bounded), returning that
    /// exposition.
    fn wait_sample(&self, what: &str, name: &str, labels: &[(&str, &str)], value: f64) -> String {
        self.wait_for(what, |m| sample(m, name, labels) == Some(value))
    }

    /// Scrape until `pred` holds (bounded), returning that exposition.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let m = self.metrics();
            if pred(&m) {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: not seen in 20 s; last exposition:\n{m}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `serve` on the kubeadm-hardened fixture, every second, against the fake.
fn serve(api: &FakeApi) -> Agent {
    serve_with(api, Fixture::load("kubeadm-hardened"), &[])
}

/// `serve` on `fx`, every second, against the fake, with `extra` serve arguments.
fn serve_with(api: &FakeApi, fx: Fixture, extra: &[&str]) -> Agent {
    let state = tempfile::tempdir().expect("state dir");
    let kubeconfig = state.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let child = serve_args(
        &mut kubeconfig_command(NODE, &kubeconfig),
        &fx.root(),
        addr,
        &state.path().join("state"),
    )
    .args(["--interval", "1s"])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn the agent");
    let mut child = Guard(child);
    wait_http_ready(&mut child, addr, Duration::from_secs(20), String::new);
    Agent {
        addr,
        _child: child,
        _fx: fx,
        _state: state,
    }
}

/// `check --format json` against the fake.
fn check(api: &FakeApi) -> Value {
    check_with(api, &[])
}

/// `check --format json` against the fake, with `extra` global arguments.
fn check_with(api: &FakeApi, extra: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let kubeconfig = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kubeconfig);
    check_report(kubeconfig_command(NODE, &kubeconfig), extra)
}

/// `check --format json --fail-on never` on the kubeadm-hardened fixture with `cmd` (an
/// agent command carrying its API settings) and `extra` arguments: the report.
fn check_report(mut cmd: Command, extra: &[&str]) -> Value {
    let fx = Fixture::load("kubeadm-hardened");
    let state = tempfile::tempdir().expect("state dir");
    cmd.arg("check")
        .arg("--host-root")
        .arg(fx.root())
        .arg("--state-dir")
        .arg(state.path().join("state"))
        .args(["--format", "json", "--fail-on", "never"])
        .args(extra);
    run_report(&mut cmd, Duration::from_secs(60)).0
}

fn probe<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["probes"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no probe {name} in the report"))
}

fn status_is(text: &str, control: &str, status: &str) -> bool {
    sample(
        text,
        "kubelet_sentinel_control_status",
        &[("control", control), ("status", status)],
    ) == Some(1.0)
}

/// A cluster: a restricted and an unlabelled namespace, kube-system, the agent itself, a
/// privileged build pod, kube-proxy (host network, privileged), a pod on another node.
fn cluster(api: &FakeApi) {
    api.set_namespaces(vec![
        fake_api::namespace("web", Some("restricted")),
        fake_api::namespace("ci", None),
        fake_api::namespace("kube-system", None),
        fake_api::namespace("kubelet-sentinel", Some("privileged")),
    ]);
    api.set_pods(vec![
        fake_api::pod("web", "frontend-7d9f", NODE, json!({})),
        fake_api::pod(
            "ci",
            "builder-x1",
            NODE,
            json!({"containers": [{"name": "dind", "image": "docker:27-dind",
                "securityContext": {"privileged": true}}]}),
        ),
        fake_api::pod(
            "kube-system",
            "kube-proxy-q8r2n",
            NODE,
            json!({"hostNetwork": true, "containers": [{"name": "kube-proxy",
                "image": "registry.k8s.io/kube-proxy:v1.33.1",
                "securityContext": {"privileged": true}}],
                "volumes": [{"name": "xtables-lock", "hostPath": {"path": "/run/xtables.lock", "type": "FileOrCreate"}}]}),
        ),
        fake_api::pod(
            "kubelet-sentinel",
            "kubelet-sentinel-h4k9z",
            NODE,
            json!({"hostPID": true, "hostNetwork": true,
                "volumes": [{"name": "host", "hostPath": {"path": "/", "type": "Directory"}}]}),
        ),
        fake_api::pod(
            "web",
            "other-node-pod",
            "node-2",
            json!({"hostPID": true}),
        ),
    ]);
}

#[test]
fn verdicts_and_risky_pods_follow_the_api_and_its_watches() {
    let api = FakeApi::start();
    cluster(&api);
    let agent = serve(&api);
    let m = agent.wait_for("the first synced evaluation", |m| {
        sample(
            m,
            "kubelet_sentinel_probe_success",
            &[("probe", "api_namespaces")],
        ) == Some(1.0)
            && sample(
                m,
                "kubelet_sentinel_probe_success",
                &[("probe", "api_pods")],
            ) == Some(1.0)
            && status_is(m, "no-host-takeover-pods", "fail")
    });
    // ci has pods here and no label: fail (kube-system is exempt).
    assert!(status_is(&m, "pod-security-enforced", "fail"), "{m}");
    // The risky pods, one series per reason; the agent itself is allow-listed, the pod of
    // node-2 is not selected.
    let mut risky: Vec<String> = m
        .lines()
        .filter(|l| l.starts_with("kubelet_sentinel_risky_pod_info{"))
        .map(str::to_string)
        .collect();
    risky.sort();
    assert_eq!(
        risky,
        [
            "kubelet_sentinel_risky_pod_info{node=\"node-1\",namespace=\"ci\",pod=\"builder-x1\",reason=\"privileged\"} 1",
            "kubelet_sentinel_risky_pod_info{node=\"node-1\",namespace=\"kube-system\",pod=\"kube-proxy-q8r2n\",reason=\"host_network\"} 1",
            "kubelet_sentinel_risky_pod_info{node=\"node-1\",namespace=\"kube-system\",pod=\"kube-proxy-q8r2n\",reason=\"privileged\"} 1",
        ]
    );
    // The node's own controls are evaluated as usual.
    assert_eq!(sample(&m, "kubelet_sentinel_kubelet_up", &[]), Some(1.0));
    assert!(status_is(&m, "read-only-port-disabled", "pass"), "{m}");
    // The requests: a list then a watch per collection, pods selected by node, with the token.
    let reqs = api.requests();
    assert!(
        reqs.iter().any(|r| r.starts_with("GET /api/v1/pods?")
            && r.contains("fieldSelector=spec.nodeName%3Dnode-1")
            && !r.contains("watch=")),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /api/v1/pods?") && r.contains("watch=true")),
        "{reqs:?}"
    );
    assert!(
        reqs.iter()
            .any(|r| r.starts_with("GET /api/v1/namespaces?") && r.contains("watch=true")),
        "{reqs:?}"
    );

    // Watch events: ci gets a level, the build pod goes, kube-proxy gains the runtime socket.
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.open_watches() < 2 {
        assert!(
            Instant::now() < deadline,
            "the agent's watches did not open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    api.push(
        "namespaces",
        "MODIFIED",
        fake_api::namespace("ci", Some("baseline")),
    );
    api.push(
        "pods",
        "DELETED",
        fake_api::pod("ci", "builder-x1", NODE, json!({})),
    );
    api.push(
        "pods",
        "MODIFIED",
        fake_api::pod(
            "kube-system",
            "kube-proxy-q8r2n",
            NODE,
            json!({"volumes": [{"name": "sock", "hostPath": {"path": "/run/containerd/containerd.sock", "type": "Socket"}}]}),
        ),
    );
    let m = agent.wait_for("the watch events", |m| {
        status_is(m, "pod-security-enforced", "pass")
            && !m.contains("pod=\"builder-x1\"")
            && m.contains("reason=\"runtime_socket\"")
    });
    assert!(status_is(&m, "no-host-takeover-pods", "fail"), "{m}");
    assert!(!m.contains("reason=\"host_network\""), "{m}");
    // Everything risky gone: the control passes and the family disappears.
    api.push(
        "pods",
        "DELETED",
        fake_api::pod("kube-system", "kube-proxy-q8r2n", NODE, json!({})),
    );
    let m = agent.wait_for("no risky pod", |m| {
        status_is(m, "no-host-takeover-pods", "pass")
    });
    assert!(!m.contains("kubelet_sentinel_risky_pod_info"), "{m}");
}

#[test]
fn check_reports_each_verdict_with_its_evidence() {
    let api = FakeApi::start();
    cluster(&api);
    let r = check(&api);
    let c = control(&r, "pod-security-enforced");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["observed"], "ci (no enforce label)", "{c}");
    assert_eq!(c["source"], "api");
    let c = control(&r, "no-host-takeover-pods");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        c["observed"],
        "ci/builder-x1 (privileged), kube-system/kube-proxy-q8r2n (privileged,host_network)"
    );
    assert!(
        c["reason"]
            .as_str()
            .unwrap_or("")
            .contains("privileged container dind"),
        "{c}"
    );
    assert_eq!(probe(&r, "api_pods")["success"], true);
    assert_eq!(probe(&r, "api_namespaces")["success"], true);
}

#[test]
fn api_errors_make_the_controls_unknown_and_fail_the_api_steps() {
    let api = FakeApi::start();
    cluster(&api);
    for (code, word) in [
        (401, "Unauthorized"),
        (403, "Forbidden"),
        (500, "InternalError"),
    ] {
        api.set_mode(Mode::Status(code));
        let r = check(&api);
        for name in ["api_pods", "api_namespaces"] {
            let p = probe(&r, name);
            assert_eq!(p["success"], false, "{code}: {p}");
            let e = p["error"].as_str().unwrap_or("");
            assert!(
                e.contains(&code.to_string()) && e.contains(word),
                "{code}: {e}"
            );
        }
        for id in ["pod-security-enforced", "no-host-takeover-pods"] {
            let c = control(&r, id);
            assert_eq!(c["status"], "unknown", "{code}: {c}");
            let reason = c["reason"].as_str().unwrap_or("");
            assert!(
                reason.starts_with("waiting for the first list of pods")
                    && reason.contains(&code.to_string()),
                "{code}: {reason}"
            );
        }
        // The kubelet's own controls do not care.
        assert_eq!(control(&r, "read-only-port-disabled")["status"], "pass");
    }
    // A wrong token is the API's 401 too.
    api.set_mode(Mode::Normal);
    let dir = tempfile::tempdir().expect("tempdir");
    let kc = dir.path().join("kubeconfig");
    api.write_kubeconfig(&kc);
    let text = std::fs::read_to_string(&kc)
        .expect("read")
        .replace(fake_api::TOKEN, "stolen");
    std::fs::write(&kc, text).expect("write");
    let r = check_report(kubeconfig_command(NODE, &kc), &[]);
    assert!(probe(&r, "api_pods")["error"]
        .as_str()
        .unwrap_or("")
        .contains("401"));
}

#[test]
fn without_api_access_no_api_steps_and_the_controls_say_why() {
    let r = check_report(common::agent::agent_command(), &[]);
    assert!(r["probes"].as_array().is_some_and(|ps| ps
        .iter()
        .all(|p| !p["name"].as_str().unwrap_or("").starts_with("api_"))));
    let c = control(&r, "pod-security-enforced");
    assert_eq!(c["status"], "unknown");
    assert_eq!(
        c["reason"],
        "no API access (not in a cluster (KUBERNETES_SERVICE_HOST unset) and no --kubeconfig)"
    );
    // --api-access=off wins over a --kubeconfig (which is then not even read).
    let r = check_report(
        common::agent::agent_command(),
        &[
            "--api-access",
            "off",
            "--kubeconfig",
            "/nonexistent/kubeconfig",
        ],
    );
    assert!(r["probes"].as_array().is_some_and(|ps| ps
        .iter()
        .all(|p| !p["name"].as_str().unwrap_or("").starts_with("api_"))));
    assert_eq!(
        control(&r, "kubelet-identity-least-privilege")["reason"],
        "no API access (--api-access=off)"
    );
    // --api-access=on without any way to reach the API: could not run.
    let fx = Fixture::load("kubeadm-hardened");
    let state = tempfile::tempdir().expect("state");
    let out = Command::new(common::agent::AGENT)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBELET_SENTINEL_KUBECONFIG")
        .args(["check", "--api-access", "on", "--host-root"])
        .arg(fx.root())
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .expect("check");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_watch_that_disconnects_is_reported_then_recovers() {
    let api = FakeApi::start();
    cluster(&api);
    let agent = serve(&api);
    agent.wait_sample(
        "synced",
        "kubelet_sentinel_probe_success",
        &[("probe", "api_pods")],
        1.0,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.open_watches() < 2 {
        assert!(
            Instant::now() < deadline,
            "the agent's watches did not open"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // The server breaks the watches mid-stream and then fails every request.
    api.set_mode(Mode::Status(500));
    api.disconnect();
    let m = agent.wait_sample(
        "the failing watch",
        "kubelet_sentinel_probe_success",
        &[("probe", "api_pods")],
        0.0,
    );
    // The last list still decides (the reason says it is stale): no flapping to unknown.
    assert!(status_is(&m, "no-host-takeover-pods", "fail"), "{m}");
    api.set_mode(Mode::Normal);
    agent.wait_for("the recovered watch", |m| {
        sample(
            m,
            "kubelet_sentinel_probe_success",
            &[("probe", "api_pods")],
        ) == Some(1.0)
            && sample(
                m,
                "kubelet_sentinel_probe_success",
                &[("probe", "api_namespaces")],
            ) == Some(1.0)
    });
}

#[test]
fn node_local_controls_keep_their_cadence_while_the_api_hangs() {
    let api = FakeApi::start();
    cluster(&api);
    api.set_mode(Mode::Hang);
    let agent = serve(&api);
    let mut stamps = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while stamps.len() < 4 {
        assert!(Instant::now() < deadline, "evaluations stalled: {stamps:?}");
        let m = agent.metrics();
        if let Some(t) = sample(
            &m,
            "kubelet_sentinel_last_evaluation_timestamp_seconds",
            &[],
        ) {
            stamps.insert(t.to_bits());
        }
        // Every evaluation: the kubelet judged, the API steps failing, its controls unknown.
        assert_eq!(
            sample(&m, "kubelet_sentinel_kubelet_up", &[]),
            Some(1.0),
            "{m}"
        );
        assert!(status_is(&m, "read-only-port-disabled", "pass"), "{m}");
        assert_eq!(
            sample(
                &m,
                "kubelet_sentinel_probe_success",
                &[("probe", "api_pods")]
            ),
            Some(0.0),
            "{m}"
        );
        assert!(status_is(&m, "pod-security-enforced", "unknown"), "{m}");
        let took = sample(&m, "kubelet_sentinel_evaluation_duration_seconds", &[]).unwrap_or(99.0);
        assert!(took < 1.0, "an evaluation waited for the API: {took} s");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn a_slow_server_is_waited_for_within_the_timeout() {
    let api = FakeApi::start();
    cluster(&api);
    api.set_mode(Mode::Delay(Duration::from_millis(1500)));
    let r = check(&api);
    assert_eq!(
        probe(&r, "api_pods")["success"],
        true,
        "{}",
        probe(&r, "api_pods")
    );
    assert_eq!(control(&r, "no-host-takeover-pods")["status"], "fail");
}

/// The library's watch against the fake, with a short request timeout: a server slower
/// than the timeout is a failure that names it.
#[test]
fn a_server_slower_than_the_timeout_fails_the_step() {
    let api = FakeApi::start();
    cluster(&api);
    api.set_mode(Mode::Delay(Duration::from_secs(3)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let view = rt.block_on(async {
        let mut config = kube::Config::new(api.url().parse().expect("url"));
        config.auth_info.token = Some(fake_api::TOKEN.to_string().into());
        let client = kube::Client::try_from(config).expect("client");
        let c = kubelet_sentinel::observe::cluster::Cluster::start(
            client,
            NODE,
            "test".into(),
            Duration::from_millis(500),
            Vec::new(),
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let v = c.view();
            if v.pods
                .health
                .as_ref()
                .err()
                .is_some_and(|e| e.contains("no answer"))
            {
                return v;
            }
            assert!(Instant::now() < deadline, "no timeout seen: {v:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    assert_eq!(
        view.pods.health,
        Err("list pods: no answer within 0.5s".to_string())
    );
    assert!(view.pods.data.is_none());
}

// ------------------------------------------------- the kubelet identity, the Node, events

const IDENTITY: &str = "kubelet-identity-least-privilege";

/// What a hardened cluster's authorizers answer for a node identity: only the Node
/// authorizer's node rules (no reason), nothing else.
fn node_rules(api: &FakeApi) {
    for (verb, resource) in [("create", "pods"), ("patch", "nodes")] {
        api.allow_with_reason(
            json!({"user": format!("system:node:{NODE}"),
                "resourceAttributes": {"verb": verb, "resource": resource}}),
            "",
        );
    }
}

#[test]
fn the_kubelet_identity_is_reviewed_as_the_node() {
    let api = FakeApi::start();
    cluster(&api);
    node_rules(&api);
    let r = check(&api);
    let c = control(&r, IDENTITY);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(
        c["observed"],
        "allowed only by node rules: create pods in kube-system, patch another node"
    );
    assert_eq!(probe(&r, "api_identity_reviews")["success"], true);
    // Six reviews, each as the node identity with its groups; the dangerous ones as the
    // issue lists them.
    let reviews = api.reviews();
    assert_eq!(reviews.len(), 6, "{reviews:#?}");
    for spec in &reviews {
        assert_eq!(spec["user"], format!("system:node:{NODE}"));
        assert_eq!(
            spec["groups"],
            json!(["system:nodes", "system:authenticated"])
        );
    }
    let attrs: Vec<&Value> = reviews.iter().map(|r| &r["resourceAttributes"]).collect();
    assert!(attrs.contains(&&json!({"verb": "list", "group": "", "resource": "secrets"})));
    assert!(attrs.contains(&&json!({"verb": "impersonate", "group": "", "resource": "users"})));
    assert!(attrs.contains(
        &&json!({"verb": "create", "group": "rbac.authorization.k8s.io",
        "resource": "clusterrolebindings"})
    ));

    // A binding that lets nodes list secrets: the fake's allow carries an RBAC reason.
    api.allow(json!({"groups": ["system:nodes", "system:authenticated"],
        "resourceAttributes": {"verb": "list", "resource": "secrets"}}));
    let r = check(&api);
    let c = control(&r, IDENTITY);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(c["observed"], "allowed: list secrets in all namespaces");
    assert!(
        c["reason"].as_str().unwrap().contains("RBAC: allowed by"),
        "{c}"
    );
}

#[test]
fn identity_reviews_that_fail_leave_the_control_unknown() {
    let api = FakeApi::start();
    cluster(&api);
    for code in [403, 500] {
        api.set_path_mode("/apis/authorization.k8s.io/", Mode::Status(code));
        let r = check(&api);
        let c = control(&r, IDENTITY);
        assert_eq!(c["status"], "unknown", "{code}: {c}");
        assert!(
            c["reason"].as_str().unwrap().contains(&code.to_string()),
            "{code}: {c}"
        );
        let p = probe(&r, "api_identity_reviews");
        assert_eq!(p["success"], false);
        // The watches are unaffected.
        assert_eq!(control(&r, "pod-security-enforced")["status"], "fail");
    }
    // Slower than the request timeout (10 s) would make this test slow; a hang is covered
    // by node_local_controls_keep_their_cadence_while_the_api_hangs for every API task.
}

#[test]
fn the_node_reports_the_kubelet_version_and_a_mismatch_is_judged_conservatively() {
    let api = FakeApi::start();
    cluster(&api);
    api.set_nodes(vec![
        fake_api::node(NODE, "v1.34.2"),
        fake_api::node("node-2", "v1.28.0"),
    ]);
    // The fixture is a host tree on disk: its binary is not run, so the Node is the source.
    let r = check(&api);
    let c = control(&r, "kubelet-version-supported");
    assert_eq!(c["source"], "node_status", "{c}");
    assert!(
        c["observed"].as_str().unwrap().starts_with("v1.34.2"),
        "{c}"
    );
    assert_eq!(probe(&r, "api_node")["success"], true);
    assert!(api
        .requests()
        .iter()
        .any(|l| l.starts_with("GET /api/v1/nodes?") && l.contains("metadata.name")));

    // The process-local version (here the override) is newer than what the running
    // kubelet reported: the older is judged, and both are named.
    let r = check_with(&api, &["--kubelet-version", "v1.35.1"]);
    let c = control(&r, "kubelet-version-no-known-cves");
    assert_eq!(
        c["source"], "node_status; mismatch: override says v1.35.1",
        "{c}"
    );
    assert!(c["reason"].as_str().unwrap().contains("v1.34.2"), "{c}");
    let c = control(&r, "kubelet-version-supported");
    assert!(
        c["observed"].as_str().unwrap().starts_with("v1.34.2"),
        "{c}"
    );

    // An unregistered node: no version from the API, the control says why.
    api.set_nodes(vec![]);
    let r = check(&api);
    let c = control(&r, "kubelet-version-supported");
    assert_eq!(c["status"], "unknown", "{c}");
}

/// The `node_pool` labels of every `kubelet_sentinel_node_info` series on the page.
fn node_pools(text: &str) -> Vec<String> {
    kubelet_sentinel::model::exposition::samples(text)
        .filter(|s| s.name == "kubelet_sentinel_node_info")
        .map(|s| {
            assert_eq!(s.label("node"), Some(NODE), "{}", s.series);
            assert_eq!(s.value, 1.0, "{}", s.series);
            s.label("node_pool").expect("node_pool label").to_string()
        })
        .collect()
}

/// This node's Node, with an EKS node group and a Karpenter node pool label.
fn node_in_pools() -> Value {
    let mut node = fake_api::node(NODE, "v1.34.2");
    let labels = &mut node["metadata"]["labels"];
    labels["karpenter.sh/nodepool"] = json!("general");
    labels["eks.amazonaws.com/nodegroup"] = json!("ng-arm64");
    node
}

/// Issue 16: `kubelet_sentinel_node_info{node_pool}` is the value of the first
/// `--node-pool-labels` label the Node carries (the list's order, not the labels'), follows
/// the Node's watch, and is empty when the Node carries none.
#[test]
fn node_info_names_the_pool_from_the_node_labels() {
    let api = FakeApi::start();
    cluster(&api);
    api.set_nodes(vec![node_in_pools(), fake_api::node("node-2", "v1.28.0")]);
    // The defaults: EKS's label comes before Karpenter's.
    let agent = serve(&api);
    let m = agent.wait_for("node_info with the pool", |m| node_pools(m) == ["ng-arm64"]);
    assert!(
        m.contains("kubelet_sentinel_node_info{node=\"node-1\",node_pool=\"ng-arm64\"} 1"),
        "{m}"
    );
    // The Node relabelled (a watch event): the pool follows.
    let mut moved = node_in_pools();
    moved["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] = json!("ng-x86");
    api.push("nodes", "MODIFIED", moved);
    agent.wait_for("the relabelled pool", |m| node_pools(m) == ["ng-x86"]);
    drop(agent);

    // Another list: its first label the Node carries.
    let agent = serve_with(
        &api,
        Fixture::load("kubeadm-hardened"),
        &["--node-pool-labels=example.com/pool,karpenter.sh/nodepool"],
    );
    agent.wait_for("the Karpenter pool", |m| node_pools(m) == ["general"]);
    drop(agent);

    // None of the listed labels: present, empty.
    let agent = serve_with(
        &api,
        Fixture::load("kubeadm-hardened"),
        &["--node-pool-labels=example.com/pool"],
    );
    let m = agent.wait_for("the api_node probe", |m| {
        sample(
            m,
            "kubelet_sentinel_probe_success",
            &[("probe", "api_node")],
        ) == Some(1.0)
    });
    assert_eq!(node_pools(&m), [""], "{m}");
}

/// Without API access the pool is unknown: `node_info` is still there, `node_pool` empty.
#[test]
fn node_info_without_api_access_has_an_empty_pool() {
    let fx = Fixture::load("kubeadm-hardened");
    let state = tempfile::tempdir().expect("state dir");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let mut cmd = common::agent::agent_command();
    let child = serve_args(&mut cmd, &fx.root(), addr, &state.path().join("state"))
        .args(["--node-name", NODE, "--api-access", "off"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the agent");
    let mut child = Guard(child);
    wait_http_ready(&mut child, addr, Duration::from_secs(20), String::new);
    let m = get(addr, "/metrics", None).expect("scrape").body;
    assert_eq!(node_pools(&m), [""], "{m}");
}

/// The events (with the path they were posted to) whose message is about `control`.
fn events_about<'a>(events: &'a [(String, Value)], control: &str) -> Vec<&'a (String, Value)> {
    events
        .iter()
        .filter(|(_, e)| e["message"].as_str().unwrap_or("").starts_with(control))
        .collect()
}

#[test]
fn a_regression_posts_one_rate_limited_event_on_the_node() {
    let api = FakeApi::start();
    cluster(&api);
    node_rules(&api);
    let fx = Fixture::load("kubeadm-hardened");
    let config = fx.root().join("var/lib/kubelet/config.yaml");
    let agent = serve_with(&api, fx, &["--events", "--watch-interval", "200ms"]);
    agent.wait_for("anonymous auth passing", |m| {
        status_is(m, "anonymous-auth-disabled", "pass")
    });
    assert!(api.events().is_empty(), "no event without a change");
    // Turn anonymous auth on: a regression from the baseline.
    let text = std::fs::read_to_string(&config).expect("read config");
    let edited = text.replacen("enabled: false", "enabled: true", 1);
    assert_ne!(text, edited, "the fixture's anonymous.enabled: false");
    std::fs::write(&config, edited).expect("edit config");
    agent.wait_sample(
        "the regression",
        "kubelet_sentinel_control_drift",
        &[
            ("control", "anonymous-auth-disabled"),
            ("kind", "regressed"),
        ],
        1.0,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        let e = api.events();
        if !e.is_empty() || Instant::now() > deadline {
            break e;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let anon = events_about(&events, "anonymous-auth-disabled");
    assert_eq!(anon.len(), 1, "{events:#?}");
    let (path, e) = anon[0];
    assert_eq!(path, "/api/v1/namespaces/default/events");
    assert_eq!(e["reason"], "ControlRegressed");
    assert_eq!(e["type"], "Warning");
    assert_eq!(e["involvedObject"]["kind"], "Node");
    assert_eq!(e["involvedObject"]["name"], NODE);
    assert_eq!(e["source"]["component"], "kubelet-sentinel");
    // Further evaluations (every second) do not repeat it.
    std::thread::sleep(Duration::from_millis(2500));
    let again = events_about(&api.events(), "anonymous-auth-disabled").len();
    assert_eq!(again, 1);
}
