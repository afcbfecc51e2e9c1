//! Memory and CPU of `serve` with the Kubernetes API watches, against the test suite's
//! fake API server (`tests/common/fake_api.rs`): is the DaemonSet's 128 MiB limit still
//! roomy when a node runs its maximum of pods and the cluster is large?
//!
//! `cargo bench --bench api_memory` prints, for the agent on the kubeadm-hardened fixture:
//! its resident set (VmRSS) and peak (VmHWM) without API access, with the API watches
//! synced (110 pods on this node — the kubelet's default `maxPods` — among 5,000 pods in the
//! cluster, 1,000 namespaces), and after a storm of 5,000 pod watch events; and the CPU
//! time the storm cost. Under `cargo test` (no `--bench`) it runs once with a small
//! cluster, as a smoke test that asserts the agent syncs and survives the storm.

#[path = "../tests/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::agent::{agent_command, serve_args, wait_http_ready};
use common::fake_api::{self, FakeApi};
use common::http::{free_port, get};
use common::metrics::sample;
use common::process::Guard;
use common::Fixture;
use serde_json::json;

const NODE: &str = "node-1";

struct Sizes {
    node_pods: usize,
    cluster_pods: usize,
    namespaces: usize,
    events: usize,
}

/// (VmRSS, VmHWM) in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// User + system CPU seconds of `pid`.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0
}

fn spawn(fx: &Fixture, state: &std::path::Path, api: Option<&FakeApi>) -> (Guard, SocketAddr) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
    let mut cmd = agent_command();
    // The flags' environment twins: `serve` and its flags come after.
    cmd.env("NODE_NAME", NODE);
    match api {
        Some(api) => {
            let kc = state.join("kubeconfig");
            api.write_kubeconfig(&kc);
            cmd.env("KUBELET_SENTINEL_KUBECONFIG", kc);
        }
        None => {
            cmd.env("KUBELET_SENTINEL_API_ACCESS", "off");
        }
    }
    let child = serve_args(&mut cmd, &fx.root(), addr, &state.join("state"))
        .args(["--interval", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the agent");
    let mut child = Guard(child);
    wait_http_ready(&mut child, addr, Duration::from_secs(30), String::new);
    (child, addr)
}

fn wait_metrics(addr: SocketAddr, what: &str, pred: impl Fn(&str) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body = get(addr, "/metrics", None)
            .map(|r| r.body)
            .unwrap_or_default();
        if pred(&body) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: not seen in 60 s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            node_pods: 110,
            cluster_pods: 5000,
            namespaces: 1000,
            events: 5000,
        }
    } else {
        Sizes {
            node_pods: 5,
            cluster_pods: 20,
            namespaces: 10,
            events: 50,
        }
    };

    // Without API access.
    let fx = Fixture::load("kubeadm-hardened");
    let state = tempfile::tempdir().expect("state dir");
    let (guard, addr) = spawn(&fx, state.path(), None);
    wait_metrics(addr, "an evaluation", |m| {
        m.contains("kubelet_sentinel_kubelet_up")
    });
    std::thread::sleep(Duration::from_secs(if full { 5 } else { 1 }));
    let (rss_off, hwm_off) = memory(guard.0.id());
    drop(guard);

    // With the watches, a large cluster.
    let api = FakeApi::start();
    let namespaces: Vec<_> = (0..sizes.namespaces)
        .map(|i| fake_api::namespace(&format!("team-{i}"), Some("baseline")))
        .collect();
    api.set_namespaces(namespaces);
    let pods: Vec<_> = (0..sizes.cluster_pods)
        .map(|i| {
            let node = if i < sizes.node_pods {
                NODE.to_string()
            } else {
                format!("node-{}", 2 + i % 500)
            };
            fake_api::pod(
                &format!("team-{}", i % sizes.namespaces),
                &format!("app{i}-x{i}"),
                &node,
                json!({}),
            )
        })
        .collect();
    api.set_pods(pods);
    api.set_nodes(vec![fake_api::node(NODE, "v1.34.2")]);
    let fx = Fixture::load("kubeadm-hardened");
    let state = tempfile::tempdir().expect("state dir");
    let (guard, addr) = spawn(&fx, state.path(), Some(&api));
    let pid = guard.0.id();
    wait_metrics(addr, "the pods watch synced", |m| {
        sample(
            m,
            "kubelet_sentinel_probe_success",
            &[("node", NODE), ("probe", "api_pods")],
        ) == Some(1.0)
    });
    std::thread::sleep(Duration::from_secs(if full { 5 } else { 1 }));
    let (rss_synced, hwm_synced) = memory(pid);

    // A storm of watch events on this node's pods.
    let cpu_before = cpu_seconds(pid);
    let start = Instant::now();
    for i in 0..sizes.events {
        let n = i % sizes.node_pods;
        let mut p = fake_api::pod(
            &format!("team-{}", n % sizes.namespaces),
            &format!("app{n}-x{n}"),
            NODE,
            json!({}),
        );
        p["metadata"]["labels"]["generation"] = json!(i.to_string());
        api.push("pods", "MODIFIED", p);
    }
    // Settle: the agent has applied the events when a new pod shows up in its view.
    api.push(
        "pods",
        "ADDED",
        fake_api::pod("team-0", "late-x1", NODE, json!({"hostPID": true})),
    );
    wait_metrics(addr, "the last event applied", |m| {
        sample(m, "kubelet_sentinel_risky_pod_info", &[("pod", "late-x1")]).is_some()
    });
    let storm = start.elapsed();
    let cpu_storm = cpu_seconds(pid) - cpu_before;
    let (rss_storm, hwm_storm) = memory(pid);
    assert!(get(addr, "/healthz", None).map(|r| r.status).ok() == Some(200));
    drop(guard);

    println!(
        "api_memory ({} mode): {} pods on this node of {} in the cluster, {} namespaces, {} watch events",
        if full { "bench" } else { "smoke" },
        sizes.node_pods,
        sizes.cluster_pods,
        sizes.namespaces,
        sizes.events
    );
    println!(
        "  no API access:          VmRSS {:>10}  VmHWM {:>10}",
        mib(rss_off),
        mib(hwm_off)
    );
    println!(
        "  API watches synced:     VmRSS {:>10}  VmHWM {:>10}",
        mib(rss_synced),
        mib(hwm_synced)
    );
    println!(
        "  after the event storm:  VmRSS {:>10}  VmHWM {:>10}  ({:.2} s wall, {:.2} s CPU)",
        mib(rss_storm),
        mib(hwm_storm),
        storm.as_secs_f64(),
        cpu_storm
    );
}
