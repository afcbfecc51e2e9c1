//! [`Tracker`]: the agent's drift memory across evaluations. It takes, reloads and
//! persists the baseline, counts each change of the kubelet ([`super::changes`]), logs
//! every change once, and writes the last-seen state so that changes made while the agent
//! was down count at its next start.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::evaluate::{ControlResult, Status};
use crate::model::file::Fingerprint;
use crate::model::snapshot::{Kubelet, Snapshot};

use super::changes::{modified_since_start, Changes, Seen};
use super::store::{self, Loaded, StateDir, BASELINE_FILE, STATE_FILE};
use super::{baseline_version, compare_all, to_json, Baseline, BaselineInfo, DriftReport, Origin};

/// Version of `state.json`.
const STATE_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StateFile {
    schema_version: u32,
    node: String,
    last_change_at: Option<f64>,
    seen: Seen,
    /// Start-read files that disappeared while the same kubelet process kept running.
    removed_since_start: Vec<String>,
}

/// Options of the drift tracker.
#[derive(Debug, Clone)]
pub struct DriftOptions {
    /// The agent's state dir (`--state-dir`): the baseline and the last-seen state.
    pub state_dir: PathBuf,
    /// `--baseline-from-policy`.
    pub from_policy: bool,
    /// This agent's version, recorded in baselines it takes.
    pub agent_version: String,
}

/// The agent's drift memory across evaluations (see the module docs).
#[derive(Debug)]
pub struct Tracker {
    store: StateDir,
    from_policy: bool,
    agent_version: String,
    baseline: Option<Baseline>,
    /// The baseline file's fingerprint when we last loaded or wrote it; `None` while the
    /// baseline lives in memory only (not yet written, or the state dir is unwritable).
    baseline_fp: Option<Fingerprint>,
    /// The in-memory baseline differs from the file (write pending).
    baseline_dirty: bool,
    seen: Option<Seen>,
    /// The node `state.json` was written for (a state dir reused by another node name
    /// must not count that node's state as this one's changes).
    seen_node: Option<String>,
    removed_since_start: Vec<String>,
    last_change_at: Option<f64>,
    state_dirty: bool,
    changes: Changes,
    write_errors: u64,
    corrupt: u64,
    writes_failing: bool,
    /// Each control's (status, observed) at the previous evaluation, for the change log.
    previous: HashMap<&'static str, (Status, String)>,
}

impl Tracker {
    /// Open the state dir: remove leftovers of interrupted writes, load the baseline and
    /// the last-seen state (a corrupt file is moved aside and reported).
    pub fn open(opts: DriftOptions, now: f64) -> Tracker {
        let store = StateDir::new(&opts.state_dir);
        match store.restrict_permissions() {
            Ok(Some(old)) => tracing::info!(
                state_dir = %store.dir().display(),
                old_mode = format!("{old:o}"),
                "state dir made private (0700)"
            ),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot make the state dir private"),
        }
        let cleaned = store.clean_temporaries();
        if cleaned > 0 {
            tracing::info!(
                state_dir = %store.dir().display(),
                removed = cleaned,
                "removed temporary files of an interrupted write"
            );
        }
        let mut t = Tracker {
            store,
            from_policy: opts.from_policy,
            agent_version: opts.agent_version,
            baseline: None,
            baseline_fp: None,
            baseline_dirty: false,
            seen: None,
            seen_node: None,
            removed_since_start: Vec::new(),
            last_change_at: None,
            state_dirty: false,
            changes: Changes::default(),
            write_errors: 0,
            corrupt: 0,
            writes_failing: false,
            previous: HashMap::new(),
        };
        t.load_baseline(now);
        match t.store.load::<StateFile>(STATE_FILE, |s| {
            if s.schema_version == STATE_SCHEMA_VERSION {
                Ok(())
            } else {
                Err(format!(
                    "state schema version {} is not supported",
                    s.schema_version
                ))
            }
        }) {
            Loaded::Ok(s, _) => {
                t.seen = Some(s.seen);
                t.seen_node = Some(s.node);
                t.last_change_at = s.last_change_at;
                t.removed_since_start = s.removed_since_start;
            }
            Loaded::Missing => {}
            Loaded::Corrupt(why) => {
                // Only change detection across the restart is lost: no counter for this one.
                let moved = t.store.quarantine(STATE_FILE, "corrupt", now);
                tracing::warn!(reason = %why, moved_to = ?moved.as_ref().ok(), "state.json does not parse; moved aside");
            }
            Loaded::Unreadable(e) => {
                tracing::warn!(error = %e, "cannot read state.json; changes made while the agent was down are not counted");
            }
        }
        t
    }

    /// How to fingerprint the baseline file now (an `lstat` relative to the state dir's
    /// descriptor: no allocation, for the per-second watch; `None` when it is absent or the
    /// directory cannot be opened), and the fingerprint the tracker expects it to have (the
    /// watch reloads when it differs).
    pub fn baseline_watch(
        &self,
    ) -> (
        impl Fn() -> Option<Fingerprint> + Send + 'static,
        Option<Fingerprint>,
    ) {
        let store = self.store.clone();
        (move || store.fingerprint(BASELINE_FILE), self.baseline_fp)
    }

    /// The baseline drift is measured against, if one is held (loaded from the state dir,
    /// or in memory only when the state dir cannot be written).
    pub fn baseline(&self) -> Option<&Baseline> {
        self.baseline.as_ref()
    }

    fn load_baseline(&mut self, now: f64) {
        match self.store.load::<Baseline>(BASELINE_FILE, baseline_version) {
            Loaded::Ok(b, fp) => {
                tracing::info!(
                    path = %self.store.path(BASELINE_FILE).display(),
                    origin = b.origin.as_str(),
                    created_at = b.created_at,
                    "baseline loaded"
                );
                self.baseline = Some(b);
                self.baseline_fp = Some(fp);
                self.baseline_dirty = false;
            }
            Loaded::Missing => {
                self.baseline_fp = None;
            }
            Loaded::Corrupt(why) => {
                self.corrupt += 1;
                match self.store.quarantine(BASELINE_FILE, "corrupt", now) {
                    Ok(to) => tracing::error!(
                        reason = %why,
                        moved_to = %to.display(),
                        "the baseline does not parse: moved aside (kept), a new baseline will be taken"
                    ),
                    Err(e) => {
                        self.count_write_error(&e);
                        tracing::error!(reason = %why, error = %e, "the baseline does not parse and cannot be moved aside; a new baseline is kept in memory");
                    }
                }
                self.baseline = None;
                self.baseline_fp = None;
            }
            Loaded::Unreadable(e) => {
                // Keep what we have in memory; the next evaluation tries again.
                tracing::warn!(error = %e, "cannot read the baseline");
            }
        }
    }

    /// Reload the baseline when its file is not the one we last loaded or wrote
    /// (`baseline accept`, a hand edit, a deletion = start over).
    fn sync_baseline(&mut self, now: f64) {
        let path = self.store.path(BASELINE_FILE);
        let on_disk = self.store.fingerprint(BASELINE_FILE);
        if on_disk == self.baseline_fp {
            return;
        }
        match on_disk {
            None if self.baseline_fp.is_some() => {
                tracing::warn!(path = %path.display(), "the baseline file was removed: a new baseline will be taken");
                self.baseline = None;
                self.baseline_fp = None;
                self.previous.clear();
            }
            // Never written (unwritable dir, or not taken yet): keep the memory.
            None => {}
            Some(_) => {
                self.load_baseline(now);
                self.previous.clear();
            }
        }
    }

    fn count_write_error(&mut self, e: &store::StoreError) {
        self.write_errors += 1;
        if !self.writes_failing {
            tracing::error!(
                state_dir = %self.store.dir().display(),
                error = %e,
                "cannot write to the state dir: the baseline is kept in memory only and will be lost at restart"
            );
        }
        self.writes_failing = true;
    }

    fn write_ok(&mut self) {
        if self.writes_failing {
            tracing::info!(state_dir = %self.store.dir().display(), "the state dir is writable again");
        }
        self.writes_failing = false;
    }

    fn persist(&mut self, node: &str) {
        if self.baseline_dirty {
            if let Some(b) = &self.baseline {
                match self.store.write_atomic(BASELINE_FILE, &to_json(b)) {
                    Ok(fp) => {
                        self.baseline_fp = Some(fp);
                        self.baseline_dirty = false;
                        self.write_ok();
                    }
                    Err(e) => self.count_write_error(&e),
                }
            }
        }
        if self.state_dirty {
            if let Some(seen) = &self.seen {
                let state = StateFile {
                    schema_version: STATE_SCHEMA_VERSION,
                    node: node.to_string(),
                    last_change_at: self.last_change_at,
                    seen: seen.clone(),
                    removed_since_start: self.removed_since_start.clone(),
                };
                match self.store.write_atomic(STATE_FILE, &to_json(&state)) {
                    Ok(_) => {
                        self.state_dirty = false;
                        self.write_ok();
                    }
                    Err(e) => self.count_write_error(&e),
                }
            }
        }
    }

    /// Take in one evaluation: baseline (take, complete, reload), changes, drift.
    pub fn update(
        &mut self,
        snapshot: &Snapshot,
        results: &[ControlResult],
        now: f64,
    ) -> DriftReport {
        self.sync_baseline(now);
        if let Some(b) = &self.baseline {
            let foreign = b.node != snapshot.node;
            let wrong_kind = self.from_policy && b.origin != Origin::Policy;
            if foreign || wrong_kind {
                let (label, why) = if foreign {
                    ("foreign", format!("it belongs to node {:?}", b.node))
                } else {
                    (
                        "replaced",
                        "--baseline-from-policy asks for a policy baseline".to_string(),
                    )
                };
                if self.baseline_fp.is_some() {
                    match self.store.quarantine(BASELINE_FILE, label, now) {
                        Ok(to) => {
                            tracing::warn!(reason = %why, moved_to = %to.display(), "baseline moved aside; a new one will be taken");
                        }
                        Err(e) => self.count_write_error(&e),
                    }
                }
                self.baseline = None;
                self.baseline_fp = None;
                self.previous.clear();
            }
        }

        if self.seen_node.take().is_some_and(|n| n != snapshot.node) {
            tracing::warn!(
                node = %snapshot.node,
                "state.json was written for another node: its last-seen state is not used"
            );
            self.seen = None;
            self.removed_since_start.clear();
            self.last_change_at = None;
        }

        let mut report = DriftReport::default();
        if let Some(k) = snapshot.kubelet.as_ref() {
            self.take_or_complete_baseline(snapshot, results, now);
            self.detect_changes(k, now);
            if let Some(b) = &self.baseline {
                let (controls, config_drift) = compare_all(b, k, results);
                report.controls = controls;
                report.config_drift = Some(config_drift);
            }
            report.pending_restart = modified_since_start(k).map(|mut v| {
                for r in &self.removed_since_start {
                    if !v.contains(r) {
                        v.push(r.clone());
                    }
                }
                v
            });
            self.log_control_changes(&report, results);
        }
        self.persist(&snapshot.node);

        report.baseline = self.baseline.as_ref().map(|b| BaselineInfo {
            created_at: b.created_at,
            origin: b.origin,
            path: self.store.path(BASELINE_FILE).display().to_string(),
        });
        report.changes = Some(self.changes);
        report.last_change_at = self.last_change_at;
        report.state_write_errors = self.write_errors;
        report.baseline_corrupt = self.corrupt;
        report
    }

    fn take_or_complete_baseline(
        &mut self,
        snapshot: &Snapshot,
        results: &[ControlResult],
        now: f64,
    ) {
        match &mut self.baseline {
            None => {
                let origin = if self.from_policy {
                    Origin::Policy
                } else {
                    Origin::FirstObservation
                };
                if let Some(b) =
                    Baseline::from_evaluation(snapshot, results, now, origin, &self.agent_version)
                {
                    tracing::info!(
                        origin = origin.as_str(),
                        controls = b.controls.len(),
                        path = %self.store.path(BASELINE_FILE).display(),
                        "baseline taken"
                    );
                    self.baseline = Some(b);
                    self.baseline_dirty = true;
                }
            }
            Some(b) => {
                let filled = b.fill_in(results);
                if !filled.is_empty() {
                    tracing::info!(controls = ?filled, "baseline completed with controls known for the first time");
                    self.baseline_dirty = true;
                }
            }
        }
    }

    /// Compare what is seen now with what was seen last (in memory, or from `state.json`
    /// after an agent restart), count and log each kind of change once.
    fn detect_changes(&mut self, k: &Kubelet, now: f64) {
        let seen = Seen::of(k);
        let Some(prev) = self.seen.as_ref() else {
            self.seen = Some(seen);
            self.state_dirty = true;
            return;
        };
        if *prev == seen {
            return;
        }
        let change = seen.change_from(prev);
        if change.restart {
            self.removed_since_start.clear();
        } else {
            // Start-read files gone while the same process runs: it still runs them.
            for path in &change.start_read_gone {
                if !self.removed_since_start.iter().any(|p| p == path) {
                    self.removed_since_start.push((*path).to_string());
                }
            }
        }
        let kinds = self.changes.count(&change);
        if !kinds.is_empty() {
            self.last_change_at = Some(now);
            tracing::warn!(
                kinds = ?kinds,
                pid = seen.pid,
                previous_pid = prev.pid,
                files = ?change.files,
                "kubelet change detected"
            );
        }
        self.seen = Some(seen);
        self.state_dirty = true;
    }

    /// Log each control whose value or status changed since the previous evaluation
    /// (once per change), and at the first evaluation every control already drifted.
    fn log_control_changes(&mut self, report: &DriftReport, results: &[ControlResult]) {
        let first = self.previous.is_empty();
        for r in results {
            let drift = report.control(r.id);
            let (drifted, regressed) = drift.map_or((false, false), |d| (d.drifted, d.regressed));
            match self.previous.get(r.id) {
                Some((status, observed)) if *status != r.status || *observed != r.observed => {
                    tracing::warn!(
                        control = r.id,
                        old_value = %observed,
                        new_value = %r.observed,
                        old_status = status.as_str(),
                        new_status = r.status.as_str(),
                        source = %r.source,
                        drifted,
                        regressed,
                        "control changed"
                    );
                }
                None if first && drifted => {
                    let d = drift.map(|d| (d.baseline_status, d.baseline_observed.clone()));
                    tracing::warn!(
                        control = r.id,
                        old_value = %d.as_ref().and_then(|(_, o)| o.clone()).unwrap_or_default(),
                        new_value = %r.observed,
                        old_status = d.as_ref().map_or("", |(s, _)| s.as_str()),
                        new_status = r.status.as_str(),
                        source = %r.source,
                        drifted,
                        regressed,
                        "control differs from the baseline"
                    );
                }
                _ => {}
            }
            self.previous.insert(r.id, (r.status, r.observed.clone()));
        }
    }
}
