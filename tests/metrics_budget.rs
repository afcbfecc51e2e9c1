//! Issue 16's series budget: at most 150 series per node on a default install, in every
//! state. Counted on the rendered page (the same `publish::metrics::render` that `serve`
//! runs after each evaluation) for:
//!
//! - `examples/node` as `serve` renders it: its evaluation, the drift report of a real
//!   drift tracker (the first baseline taken in a temporary state dir);
//! - the worst case on every fixture: every control drifted from its baseline (half of
//!   them regressed), the live probes' families present (listeners, TLS versions, the
//!   anonymous answer, the live serving certificate), every observation step of a node with
//!   live probes and API access, and two risky-pod series;
//!
//! and the largest of them is named with its count (`--nocapture` prints every count).
//! The full StateSet (`--metrics-control-states=all`) and `control_info` are opt-in and
//! outside the budget; their counts are printed for docs/metrics.md.

mod common;

use std::time::Duration;

use kubelet_sentinel::evaluate::{self, policy::Policy, ControlResult, Status};
use kubelet_sentinel::io::host::HostRoot;
use kubelet_sentinel::model::live::{Listener, Listeners, Live, TlsHandshake};
use kubelet_sentinel::model::snapshot::{ProbeRecord, Snapshot};
use kubelet_sentinel::publish::drift::tracker::{DriftOptions, Tracker};
use kubelet_sentinel::publish::drift::{ControlDrift, DriftReport};
use kubelet_sentinel::publish::metrics::{
    render, ControlStates, Exposition, ExpositionOptions, MetricsInput,
};

/// The budget of a default install (issue 16).
const BUDGET: usize = 150;

/// The observation steps of a node with live probes and API access (docs/metrics.md's
/// probe list; `configz` is `--read-running-config`'s, off by default).
const LIVE_AND_API_PROBES: &[&str] = &[
    "listeners",
    "tls_handshake",
    "tls_versions",
    "tls12_suites",
    "anonymous",
    "read_only_port",
    "version",
    "api_pods",
    "api_namespaces",
    "api_node",
    "api_identity_reviews",
];

/// Sample lines of a 0.0.4 page (every one a series: the agent writes no timestamps).
fn series(e: &Exposition) -> usize {
    let n = kubelet_sentinel::model::exposition::samples(&e.text).count();
    let om = kubelet_sentinel::model::exposition::samples(&e.openmetrics).count();
    assert_eq!(n, om, "both formats carry the same series");
    n
}

fn page(
    snapshot: &Snapshot,
    results: &[ControlResult],
    drift: &DriftReport,
    risky_pods: &[(String, String, &'static str)],
    options: ExpositionOptions,
) -> Exposition {
    render(&MetricsInput {
        node: &snapshot.node,
        snapshot,
        results,
        evaluation_duration: Duration::from_millis(20),
        evaluated_at: snapshot.taken_at,
        build_version: "test",
        build_revision: "test",
        drift: Some(drift),
        risky_pods,
        options,
    })
}

fn evaluate_tree(root: &std::path::Path) -> (Snapshot, Vec<ControlResult>) {
    let host = HostRoot::new(root).expect("host root");
    let (snapshot, results, _) =
        kubelet_sentinel::agent::evaluate_once(&host, &Default::default(), &Policy::embedded());
    (snapshot, results)
}

/// `serve`'s drift report for this evaluation: a tracker on a fresh state dir.
fn serve_drift(snapshot: &Snapshot, results: &[ControlResult]) -> DriftReport {
    let state = tempfile::tempdir().expect("state dir");
    let mut tracker = Tracker::open(
        DriftOptions {
            state_dir: state.path().join("state"),
            from_policy: false,
            agent_version: "test".into(),
        },
        snapshot.taken_at,
    );
    tracker.update(snapshot, results, snapshot.taken_at)
}

/// Every control drifted (every other one regressed) and every node-level drift family
/// present.
fn all_drifted(snapshot: &Snapshot, results: &mut [ControlResult]) -> DriftReport {
    for r in results.iter_mut() {
        // `unknown` controls have no drift series: none of them here.
        if r.status == Status::Unknown {
            r.status = Status::Fail;
        }
    }
    let mut drift = serve_drift(snapshot, results);
    drift.controls = results
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let d = ControlDrift {
                drifted: true,
                regressed: i % 2 == 0,
                baseline_status: Status::Pass,
                baseline_observed: Some("before".into()),
            };
            (r.id, d)
        })
        .collect();
    drift.config_drift = Some(true);
    drift.pending_restart = Some(vec!["/var/lib/kubelet/config.yaml".into()]);
    drift.last_change_at = Some(snapshot.taken_at);
    assert!(drift.baseline.is_some() || snapshot.kubelet.is_none());
    drift
}

/// What a live host with API access adds: the live families (three listeners, four TLS
/// versions, the anonymous answer, the live serving certificate) and every live and API
/// observation step.
fn live_and_api(snapshot: &mut Snapshot) {
    let cert = snapshot
        .kubelet
        .as_ref()
        .and_then(|k| k.serving_cert_file.clone())
        .and_then(Result::ok);
    let listener = |address: &str, port| Listener {
        address: address.parse().expect("address"),
        port,
    };
    snapshot.live = Some(Live {
        listeners: Some(Ok(Listeners {
            method: "fd".into(),
            sockets: vec![
                listener("::", 10250),
                listener("127.0.0.1", 10248),
                listener("0.0.0.0", 10255),
            ],
        })),
        tls: Some(Ok(TlsHandshake {
            version: "VersionTLS13".into(),
            cipher: "TLS_AES_128_GCM_SHA256".into(),
            cert,
        })),
        tls_versions: Some(Ok([
            "VersionTLS10",
            "VersionTLS11",
            "VersionTLS12",
            "VersionTLS13",
        ]
        .iter()
        .map(|v| (v.to_string(), true))
        .collect())),
        anonymous: Some(Ok(200)),
        ..Live::default()
    });
    for name in LIVE_AND_API_PROBES {
        if snapshot.probe(name).is_none() {
            snapshot.probes.push(ProbeRecord {
                name,
                success: false,
                duration: Duration::from_millis(1),
                error: Some("down".into()),
            });
        }
    }
}

fn risky() -> Vec<(String, String, &'static str)> {
    vec![
        ("monitoring".into(), "node-debugger".into(), "privileged"),
        ("monitoring".into(), "node-debugger".into(), "host_pid"),
    ]
}

#[test]
fn series_budget_on_the_example_node_as_served() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node");
    let (snapshot, results) = evaluate_tree(&root);
    let drift = serve_drift(&snapshot, &results);
    assert!(drift.baseline.is_some(), "the first baseline was taken");
    let default = page(&snapshot, &results, &drift, &[], Default::default());
    let n = series(&default);
    println!(
        "examples/node, default page: {n} series, {} bytes text, {} bytes OpenMetrics",
        default.text.len(),
        default.openmetrics.len()
    );
    assert!(n <= BUDGET, "{n} series > {BUDGET}:\n{}", default.text);
    // One status series per control; no control_info by default; node_info present.
    let count = |name: &str| {
        kubelet_sentinel::model::exposition::samples(&default.text)
            .filter(|s| s.name == name)
            .count()
    };
    assert_eq!(count("kubelet_sentinel_control_status"), results.len());
    assert_eq!(count("kubelet_sentinel_control_info"), 0);
    assert_eq!(count("kubelet_sentinel_node_info"), 1);

    let everything = ExpositionOptions {
        control_states: ControlStates::All,
        control_info: true,
        probe_durations: true,
    };
    let full = page(&snapshot, &results, &drift, &[], everything);
    println!(
        "examples/node, --metrics-control-states=all --metrics-control-info --metrics-probe-durations: {} series, {} bytes text, {} bytes OpenMetrics",
        series(&full),
        full.text.len(),
        full.openmetrics.len()
    );
    let probes = snapshot.probes.len();
    assert!(probes > 0, "the example node has observation steps");
    assert_eq!(series(&full), n + 4 * results.len() + probes);
}

/// Every tree the tests know: `examples/node` and every fixture (manifests applied).
fn trees() -> (Vec<common::Fixture>, Vec<(String, std::path::PathBuf)>) {
    let mut trees: Vec<(String, std::path::PathBuf)> = vec![(
        "examples/node".into(),
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node"),
    )];
    let fixtures: Vec<common::Fixture> = common::fixture_names()
        .iter()
        .map(|n| common::Fixture::load(n))
        .collect();
    trees.extend(fixtures.iter().map(|f| (f.name.clone(), f.root())));
    assert!(trees.len() > 10, "every fixture: {trees:?}");
    (fixtures, trees)
}

/// Count every tree's page with every control drifted (plus `live` when set) and return
/// the largest `(series, tree)`.
fn largest(live: bool) -> (usize, String) {
    let (_fixtures, trees) = trees();
    let mut counts: Vec<(usize, String)> = Vec::new();
    for (name, root) in &trees {
        let (mut snapshot, mut results) = evaluate_tree(root);
        let drift = all_drifted(&snapshot, &mut results);
        if live {
            live_and_api(&mut snapshot);
        }
        let e = page(&snapshot, &results, &drift, &risky(), Default::default());
        let n = series(&e);
        let drifts = kubelet_sentinel::model::exposition::samples(&e.text)
            .filter(|s| s.name == "kubelet_sentinel_control_drift")
            .count();
        assert_eq!(drifts, results.len(), "{name}: every control drifted");
        println!("{name}: {n} series ({} bytes text)", e.text.len());
        counts.push((n, name.clone()));
    }
    counts.sort();
    let (n, name) = counts.last().cloned().expect("at least one tree");
    // The worst case is dominated by the controls: one status and one drift series each.
    assert!(n >= 2 * evaluate::catalogue().len(), "{n}");
    (n, name)
}

/// The test: every control drifted on every fixture (host trees on disk, as
/// `serve --host-root` sees them) and on `examples/node`, two risky-pod series; the
/// largest within the budget.
#[test]
fn series_budget_with_every_control_drifted_on_the_largest_fixture() {
    let (n, name) = largest(false);
    println!("largest with every control drifted: {name}, {n} series (budget {BUDGET})");
    assert!(n <= BUDGET, "{name}: {n} series > {BUDGET}");
}

/// The worst state of a live node with API access: every control drifted, and the live
/// families and the 19 observation steps' `_success` on top (their durations are off by
/// default, `--metrics-probe-durations`, for this budget), two risky-pod series.
#[test]
fn series_budget_in_the_worst_case_of_a_live_node_with_api_access() {
    let (n, name) = largest(true);
    println!("largest worst case with live probes and API: {name}, {n} series (budget {BUDGET})");
    assert!(n <= BUDGET, "{name}: {n} series > {BUDGET}");
}
