use super::evaluation::{cycle, evaluation_loop, log_probe_changes, panic_message, Carried, Cycle};
use super::*;
use crate::observe::watch::Trigger;

#[test]
fn evaluate_once_on_an_empty_host() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostRoot::new(dir.path()).unwrap();
    let opts = ObserveOptions {
        node_name: Some("node-x".into()),
        kubelet_pid: None,
    };
    let (snapshot, results, _) = evaluate_once(&host, &opts, &Policy::embedded());
    assert_eq!(snapshot.node, "node-x");
    assert!(snapshot.kubelet.is_none());
    let state_dir = tempfile::tempdir().unwrap();
    let mut carried = Carried::new(
        host,
        opts,
        DriftOptions {
            state_dir: state_dir.path().to_path_buf(),
            from_policy: false,
            agent_version: "test".into(),
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let c = cycle(
        &mut carried,
        &Policy::embedded(),
        &EnrichOptions::default(),
        None,
        None,
        Default::default(),
        rt.handle(),
    );
    assert!(c
        .exposition
        .text
        .contains("kubelet_sentinel_kubelet_up{node=\"node-x\"} 0"));
    assert_eq!(c.results.len(), results.len());
    // No kubelet: no baseline is taken, nothing written but nothing to compare either.
    assert!(carried.tracker.baseline().is_none());
    assert!(!c.exposition.text.contains("kubelet_sentinel_control_drift"));
    assert!(c
        .exposition
        .text
        .contains("kubelet_sentinel_config_changes_total{node=\"node-x\",kind=\"restart\"} 0"));
    assert_eq!(carried.check_watch(), None);
}

fn fake_cycle(tag: &str) -> Cycle {
    let snapshot = Snapshot {
        node: "n".into(),
        taken_at: 0.0,
        discovery: crate::model::snapshot::Discovery::NotFound {
            reason: "none".into(),
        },
        kubelet: None,
        apiserver: None,
        probes: Vec::new(),
        live: None,
        cluster: None,
        running_config: None,
        kube_proxy: None,
    };
    Cycle {
        exposition: Exposition {
            text: tag.to_string(),
            openmetrics: format!("{tag}\n# EOF\n"),
        },
        snapshot,
        results: Vec::new(),
        duration: Duration::ZERO,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_evaluation_keeps_the_previous_exposition() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let state = Arc::new(AppState::new(Exposition::empty()));
    let inits = Arc::new(AtomicUsize::new(0));
    // (call number, what /metrics served when the call started)
    let seen: Arc<Mutex<Vec<(usize, String)>>> = Arc::default();
    let (st, i, sn) = (Arc::clone(&state), Arc::clone(&inits), Arc::clone(&seen));
    let calls = AtomicUsize::new(0);
    let lp = tokio::spawn(evaluation_loop(
        Duration::from_millis(5),
        Duration::from_secs(3600),
        Arc::clone(&state),
        move || i.fetch_add(1, Ordering::SeqCst),
        move |_: &mut usize| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            sn.lock().unwrap().push((n, st.current().text.clone()));
            if n == 2 {
                panic!("injected");
            }
            // From the third call on, keep publishing "cycle3": the poll below must not
            // be able to miss it when cycles outpace it (5 ms interval on a busy machine).
            fake_cycle(&format!("cycle{}", n.min(3)))
        },
        |_: &mut usize| None,
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.current().text != "cycle3" {
        assert!(Instant::now() < deadline, "no third cycle");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lp.abort();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], (1, String::new()));
    assert_eq!(seen[1], (2, "cycle1".to_string()));
    // After the panic, /metrics still served cycle 1, and the loop went on.
    assert_eq!(seen[2], (3, "cycle1".to_string()));
    assert!(state.is_ready());
    // The carried state was lost with the panic and made afresh once.
    assert_eq!(inits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_seen_by_the_watch_evaluates_at_once() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let state = Arc::new(AppState::new(Exposition::empty()));
    let cycles = Arc::new(AtomicUsize::new(0));
    let watches = Arc::new(AtomicUsize::new(0));
    let (c, w) = (Arc::clone(&cycles), Arc::clone(&watches));
    // Full evaluations hourly; the watch reports a change at its third check only.
    let lp = tokio::spawn(evaluation_loop(
        Duration::from_secs(3600),
        Duration::from_millis(10),
        Arc::clone(&state),
        || 0usize,
        move |_: &mut usize| {
            let n = c.fetch_add(1, Ordering::SeqCst) + 1;
            fake_cycle(&format!("cycle{n}"))
        },
        move |_: &mut usize| (w.fetch_add(1, Ordering::SeqCst) + 1 == 3).then_some(Trigger::File),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    while state.current().text != "cycle2" {
        assert!(
            Instant::now() < deadline,
            "the change did not trigger an evaluation"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Let the watch run on: no further change, no further evaluation.
    while watches.load(Ordering::SeqCst) < 8 {
        assert!(Instant::now() < deadline, "the watch stopped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lp.abort();
    assert_eq!(cycles.load(Ordering::SeqCst), 2);
}

#[test]
fn probe_failures_are_tracked_from_start_to_recovery() {
    use crate::model::snapshot::ProbeRecord;
    let rec = |success: bool| ProbeRecord {
        name: "config",
        success,
        duration: Duration::ZERO,
        error: (!success).then(|| "config.yaml: permission denied".to_string()),
    };
    let mut failing = std::collections::BTreeMap::new();
    log_probe_changes(&mut failing, &[rec(true)]);
    assert!(failing.is_empty());
    log_probe_changes(&mut failing, &[rec(false)]);
    assert_eq!(
        failing.get("config").map(String::as_str),
        Some("config.yaml: permission denied")
    );
    log_probe_changes(&mut failing, &[rec(false)]);
    assert_eq!(failing.len(), 1);
    log_probe_changes(&mut failing, &[rec(true)]);
    assert!(failing.is_empty());
}

#[test]
fn panic_messages() {
    let p: Box<dyn std::any::Any + Send> = Box::new("boom");
    assert_eq!(panic_message(p.as_ref()), "boom");
    let p: Box<dyn std::any::Any + Send> = Box::new(String::from("bang"));
    assert_eq!(panic_message(p.as_ref()), "bang");
    let p: Box<dyn std::any::Any + Send> = Box::new(1u8);
    assert_eq!(panic_message(p.as_ref()), "non-string panic payload");
}

#[tokio::test]
async fn zero_interval_is_rejected() {
    let cfg = AgentConfig {
        host_root: PathBuf::from("/"),
        node_name: None,
        kubelet_pid: None,
        interval: Duration::ZERO,
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        health_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        policy: Policy::embedded(),
        max_read_bytes: 1024,
        enrich: EnrichOptions::default(),
        state_dir: PathBuf::from("/nonexistent"),
        baseline_from_policy: false,
        watch_interval: Duration::from_secs(1),
        cluster: ClusterOptions::default(),
        metrics: MetricsOptions::default(),
    };
    assert!(matches!(
        run_serve(cfg).await,
        Err(AgentError::ZeroInterval)
    ));
}
