//! The tracker: baseline life cycle, change classification, pending restart, state dir
//! failures. Snapshots are built in memory; the state dir is a temporary directory.

use super::store::STATE_FILE;
use super::tracker::{DriftOptions, Tracker};
use super::*;
use crate::evaluate::policy::Policy;
use crate::evaluate::testing::{file, snapshot_with};
use crate::model::snapshot::{FileRole, Snapshot};

fn opts(dir: &std::path::Path, from_policy: bool) -> DriftOptions {
    DriftOptions {
        state_dir: dir.to_path_buf(),
        from_policy,
        agent_version: "test".into(),
    }
}

fn results(s: &Snapshot) -> Vec<ControlResult> {
    crate::evaluate::evaluate(s, &Policy::embedded())
}

fn update(t: &mut Tracker, s: &Snapshot, now: f64) -> DriftReport {
    t.update(s, &results(s), now)
}

fn hardened() -> Snapshot {
    snapshot_with(&["--read-only-port=0", "--event-qps=20"], None)
}

fn opened() -> Snapshot {
    snapshot_with(&["--read-only-port=10255", "--event-qps=20"], None)
}

fn drift_of(r: &DriftReport, id: &str) -> (bool, bool) {
    let d = r.control(id).unwrap_or_else(|| panic!("no drift for {id}"));
    (d.drifted, d.regressed)
}

#[test]
fn the_first_evaluation_becomes_the_baseline_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 100.0);
    let r = update(&mut t, &hardened(), 100.0);
    let info = r.baseline.clone().unwrap();
    assert_eq!(info.origin, Origin::FirstObservation);
    assert_eq!(info.created_at, 100.0);
    assert!(!r.controls.is_empty());
    assert!(r.controls.iter().all(|(_, d)| !d.drifted && !d.regressed));
    assert_eq!(r.config_drift, Some(false));
    assert_eq!(r.changes, Some(Changes::default()));
    assert_eq!(r.state_write_errors, 0);
    assert!(dir.path().join(BASELINE_FILE).is_file());
    assert!(dir.path().join(STATE_FILE).is_file());
    drop(t);

    // The agent restarts, and meanwhile the read-only port was opened.
    let mut t = Tracker::open(opts(dir.path(), false), 200.0);
    assert_eq!(t.baseline().unwrap().created_at, 100.0);
    let r = update(&mut t, &opened(), 200.0);
    assert_eq!(
        r.baseline.as_ref().unwrap().created_at,
        100.0,
        "not re-taken"
    );
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (true, true));
    assert_eq!(drift_of(&r, "event-qps-limited"), (false, false));
    assert_eq!(r.config_drift, Some(true));
    // Counted against the state persisted before the restart.
    let c = r.changes.unwrap();
    assert_eq!((c.config, c.command_line, c.restart), (1, 1, 0));
    assert_eq!(r.last_change_at, Some(200.0));
    // Once counted, not again.
    let r = update(&mut t, &opened(), 230.0);
    assert_eq!(r.changes.unwrap().config, 1);
    assert_eq!(r.last_change_at, Some(200.0));
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (true, true));
}

#[test]
fn a_corrupt_baseline_is_kept_aside_and_replaced() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(BASELINE_FILE),
        b"{\"schema_version\": 1, \"no",
    )
    .unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 300.0);
    let r = update(&mut t, &hardened(), 300.0);
    assert_eq!(r.baseline_corrupt, 1);
    let kept = dir.path().join(format!("{BASELINE_FILE}.corrupt-300"));
    assert_eq!(
        std::fs::read(&kept).unwrap(),
        b"{\"schema_version\": 1, \"no",
        "the corrupt file is kept byte for byte"
    );
    // A new baseline was taken and written.
    assert_eq!(r.baseline.as_ref().unwrap().created_at, 300.0);
    match StateDir::new(dir.path()).load::<Baseline>(BASELINE_FILE, baseline_version) {
        Loaded::Ok(b, _) => assert_eq!(b.created_at, 300.0),
        other => panic!("{other:?}"),
    }
}

#[test]
fn another_schema_version_is_kept_aside_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    update(&mut t, &hardened(), 1.0);
    let path = dir.path().join(BASELINE_FILE);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"schema_version\": 1", "\"schema_version\": 99");
    std::fs::write(&path, text).unwrap();
    let t = Tracker::open(opts(dir.path(), false), 2.0);
    assert!(t.baseline().is_none());
    assert!(dir
        .path()
        .join(format!("{BASELINE_FILE}.corrupt-2"))
        .is_file());
}

#[test]
fn an_unwritable_state_dir_is_counted_and_the_agent_works_from_memory() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let mut t = Tracker::open(opts(&blocker.join("state"), false), 1.0);
    let r = update(&mut t, &hardened(), 1.0);
    assert!(r.state_write_errors >= 1);
    assert_eq!(r.baseline.as_ref().unwrap().created_at, 1.0);
    let r = update(&mut t, &opened(), 2.0);
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (true, true));
    assert!(
        r.state_write_errors >= 2,
        "each retry that fails is counted"
    );
}

#[test]
fn accepting_a_change_is_noticed_and_clears_the_drift() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    update(&mut t, &hardened(), 1.0);
    let r = update(&mut t, &opened(), 2.0);
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (true, true));
    // `baseline accept` in another process.
    let s = opened();
    let accepted = accept(
        &StateDir::new(dir.path()),
        &s,
        &results(&s),
        3.0,
        false,
        "t",
    )
    .unwrap();
    assert_eq!(accepted.origin, Origin::Accepted);
    // The watch sees a different file than the tracker expects.
    let (fingerprint, fp) = t.baseline_watch();
    assert_ne!(fingerprint(), fp);
    let r = update(&mut t, &opened(), 4.0);
    let info = r.baseline.as_ref().unwrap();
    assert_eq!((info.origin, info.created_at), (Origin::Accepted, 3.0));
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (false, false));
    assert_eq!(r.config_drift, Some(false));
}

#[test]
fn accept_without_a_kubelet_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = hardened();
    s.kubelet = None;
    let e = accept(
        &StateDir::new(dir.path()),
        &s,
        &results(&s),
        1.0,
        false,
        "t",
    )
    .unwrap_err();
    assert!(matches!(e, AcceptError::NoKubelet(_)));
    assert!(!dir.path().join(BASELINE_FILE).exists());
}

#[test]
fn deleting_the_baseline_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    update(&mut t, &hardened(), 1.0);
    std::fs::remove_file(dir.path().join(BASELINE_FILE)).unwrap();
    let r = update(&mut t, &opened(), 5.0);
    assert_eq!(r.baseline.as_ref().unwrap().created_at, 5.0);
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (false, false));
}

#[test]
fn a_policy_baseline_holds_the_node_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    // An observed baseline exists; --baseline-from-policy replaces it (kept aside).
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    update(&mut t, &opened(), 1.0);
    drop(t);
    let mut t = Tracker::open(opts(dir.path(), true), 2.0);
    let r = update(&mut t, &opened(), 2.0);
    assert_eq!(r.baseline.as_ref().unwrap().origin, Origin::Policy);
    assert!(dir
        .path()
        .join(format!("{BASELINE_FILE}.replaced-2"))
        .is_file());
    // Failing from the start: off the standard, a regression from the policy's pass.
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (true, true));
    let r = update(&mut t, &hardened(), 3.0);
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (false, false));
}

#[test]
fn a_baseline_of_another_node_is_not_used() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    update(&mut t, &opened(), 1.0);
    let mut other = hardened();
    other.node = "node-2".into();
    let r = update(&mut t, &other, 2.0);
    assert_eq!(r.baseline.as_ref().unwrap().created_at, 2.0);
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (false, false));
    assert!(dir
        .path()
        .join(format!("{BASELINE_FILE}.foreign-2"))
        .is_file());
}

#[test]
fn the_last_seen_state_of_another_node_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    update(&mut t, &hardened(), 1.0);
    drop(t);
    // The same state dir, another node name, another command line: nothing counted.
    let mut t = Tracker::open(opts(dir.path(), false), 2.0);
    let mut other = opened();
    other.node = "node-2".into();
    let r = update(&mut t, &other, 2.0);
    assert_eq!(r.changes, Some(Changes::default()));
    assert_eq!(r.last_change_at, None);
}

#[test]
fn without_a_kubelet_no_baseline_and_no_drift() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    let mut s = hardened();
    s.kubelet = None;
    let r = update(&mut t, &s, 1.0);
    assert!(r.baseline.is_none() && r.controls.is_empty());
    assert_eq!(r.config_drift, None);
    assert!(!dir.path().join(BASELINE_FILE).exists());
}

fn with_files(
    mut s: Snapshot,
    pid: i32,
    started_at: f64,
    files: Vec<(FileRole, &str, i128)>,
) -> Snapshot {
    let k = s.kubelet.as_mut().unwrap();
    k.pid = pid;
    k.start_time_ticks = Some(crate::model::time::whole_seconds(started_at).unsigned_abs());
    k.started_at = Some(started_at);
    k.files = files
        .into_iter()
        .map(|(role, path, mtime_s)| {
            let mut f = file(role, path, 0o600, 0, 0);
            if let Ok(m) = f.meta.as_mut() {
                m.mtime_ns = mtime_s * 1_000_000_000;
                m.inode = u64::try_from(mtime_s).unwrap();
            }
            f
        })
        .collect();
    s
}

#[test]
fn changes_are_classified_restart_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    let cfg = "/var/lib/kubelet/config.yaml";
    update(
        &mut t,
        &with_files(hardened(), 10, 50.0, vec![(FileRole::ConfigFile, cfg, 40)]),
        100.0,
    );
    // The file changed (after start): a file change, pending restart.
    let r = update(
        &mut t,
        &with_files(hardened(), 10, 50.0, vec![(FileRole::ConfigFile, cfg, 120)]),
        130.0,
    );
    let c = r.changes.unwrap();
    assert_eq!((c.file, c.restart, c.config, c.command_line), (1, 0, 0, 0));
    assert_eq!(r.pending_restart, Some(vec![cfg.to_string()]));
    // The kubelet restarts (new pid): restart, and nothing is pending any more.
    let r = update(
        &mut t,
        &with_files(
            hardened(),
            11,
            125.0,
            vec![(FileRole::ConfigFile, cfg, 120)],
        ),
        140.0,
    );
    let c = r.changes.unwrap();
    assert_eq!((c.file, c.restart), (1, 1));
    assert_eq!(r.pending_restart, Some(vec![]));
    assert_eq!(r.last_change_at, Some(140.0));
}

#[test]
fn a_start_read_file_removed_while_running_is_pending_until_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut t = Tracker::open(opts(dir.path(), false), 1.0);
    let d = "/etc/kubernetes/kubelet.conf.d/10-a.conf";
    update(
        &mut t,
        &with_files(hardened(), 10, 50.0, vec![(FileRole::DropIn, d, 40)]),
        100.0,
    );
    let r = update(&mut t, &with_files(hardened(), 10, 50.0, vec![]), 110.0);
    assert_eq!(r.pending_restart, Some(vec![d.to_string()]));
    assert_eq!(r.changes.unwrap().file, 1);
    // Survives an agent restart (state.json).
    drop(t);
    let mut t = Tracker::open(opts(dir.path(), false), 120.0);
    let r = update(&mut t, &with_files(hardened(), 10, 50.0, vec![]), 120.0);
    assert_eq!(r.pending_restart, Some(vec![d.to_string()]));
    let r = update(&mut t, &with_files(hardened(), 12, 115.0, vec![]), 130.0);
    assert_eq!(r.pending_restart, Some(vec![]));
}

#[test]
fn edits_within_the_start_grace_are_not_pending_and_unknown_start_is_none() {
    let cfg = "/c.yaml";
    let s = with_files(hardened(), 10, 50.0, vec![(FileRole::ConfigFile, cfg, 50)]);
    assert_eq!(
        modified_since_start(s.kubelet.as_ref().unwrap()),
        Some(vec![])
    );
    // Certificates and the kubeconfig are rewritten while the kubelet runs: never pending.
    let s = with_files(
        hardened(),
        10,
        50.0,
        vec![
            (FileRole::Kubeconfig, "/k", 90),
            (FileRole::ClientCert, "/c", 90),
        ],
    );
    assert_eq!(
        modified_since_start(s.kubelet.as_ref().unwrap()),
        Some(vec![])
    );
    let mut s = with_files(hardened(), 10, 50.0, vec![(FileRole::ConfigFile, cfg, 90)]);
    s.kubelet.as_mut().unwrap().started_at = None;
    assert_eq!(modified_since_start(s.kubelet.as_ref().unwrap()), None);
}

#[test]
fn check_assesses_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateDir::new(dir.path());
    let s = hardened();
    assert_eq!(assess(&store, &s, &results(&s)).baseline, None);
    accept(&store, &s, &results(&s), 1.0, false, "t").unwrap();
    let o = opened();
    let r = assess(&store, &o, &results(&o));
    assert_eq!(r.baseline.as_ref().unwrap().origin, Origin::Accepted);
    assert_eq!(drift_of(&r, "read-only-port-disabled"), (true, true));
    assert_eq!(r.changes, None, "no counters in a one-shot check");
    // A corrupt baseline is reported and left where it is.
    std::fs::write(dir.path().join(BASELINE_FILE), b"nope").unwrap();
    let r = assess(&store, &o, &results(&o));
    assert!(r.baseline_error.unwrap().contains("baseline.json"));
    assert_eq!(
        std::fs::read(dir.path().join(BASELINE_FILE)).unwrap(),
        b"nope"
    );
}
