//! Drift: "did this node change?" next to compliance's "is this node right?".
//!
//! - [`baseline`]: what the node looked like when last known good, and the pure
//!   comparison of an evaluation with it.
//! - [`store`]: the agent's own state directory (atomic writes, corrupt files kept aside).
//! - [`watch`]: the per-second fingerprint check that triggers a re-evaluation.
//! - [`Tracker`] (here): the agent's memory across evaluations — it takes, reloads and
//!   persists the baseline, classifies each change (`config`, `command_line`, `restart`,
//!   `file`), logs every change once, and tells whether the kubelet runs something other
//!   than what is on disk (`pending_restart`).

pub mod baseline;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use crate::evaluate::{ControlResult, Status};
use crate::model::file::{Fingerprint, Stamp};
use crate::model::snapshot::{FileRole, Kubelet, ObsErrorKind, Snapshot};

pub use baseline::{Baseline, ControlDrift, Origin};
use store::{Loaded, StateDir, BASELINE_FILE, STATE_FILE};

/// Version of `state.json`.
const STATE_SCHEMA_VERSION: u32 = 1;

/// A start-read file changed within this many seconds after the kubelet started may have
/// been read by it: only later changes count as pending a restart.
pub const PENDING_GRACE_SECS: f64 = 1.0;

/// Files the kubelet (or systemd, for its unit) reads once at start: a change after the
/// start means the running kubelet no longer matches the disk. Not the kubeconfig (the
/// kubelet itself writes it after TLS bootstrap) and not certificates (rotated and
/// reloaded while it runs).
const START_READ: &[FileRole] = &[
    FileRole::ConfigFile,
    FileRole::DropIn,
    FileRole::ServiceUnit,
    FileRole::ServiceDropIn,
    FileRole::ArgsFile,
];

/// Counts of detected changes, by kind (`kubelet_sentinel_config_changes_total{kind}`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Changes {
    /// The effective configuration (any setting's value or source).
    pub config: u64,
    /// The kubelet's command line.
    pub command_line: u64,
    /// The kubelet process (new pid or start time).
    pub restart: u64,
    /// A file the evaluation reads (edited, replaced, added, removed, re-linked).
    pub file: u64,
}

impl Changes {
    /// `(kind, count)` in a stable order.
    pub fn kinds(&self) -> [(&'static str, u64); 4] {
        [
            ("config", self.config),
            ("command_line", self.command_line),
            ("restart", self.restart),
            ("file", self.file),
        ]
    }
}

/// The baseline, for reports and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BaselineInfo {
    pub created_at: f64,
    pub origin: Origin,
    pub path: String,
}

/// Drift as of one evaluation.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DriftReport {
    /// The baseline compared with (`None`: none yet, or it could not be read).
    pub baseline: Option<BaselineInfo>,
    /// Why there is no usable baseline, when that is not simply "none yet".
    pub baseline_error: Option<String>,
    /// Per control (only controls with a baseline entry and a known status now).
    #[serde(skip)]
    pub controls: Vec<(&'static str, ControlDrift)>,
    /// The effective configuration differs from the baseline's (`None`: no baseline or
    /// no kubelet).
    pub config_drift: Option<bool>,
    /// Start-read files changed (or removed) after the kubelet started; `None` when the
    /// start time is unknown (a host tree without `/proc/stat`) or there is no kubelet.
    pub pending_restart: Option<Vec<String>>,
    /// `serve` only: the counters and times kept across evaluations.
    #[serde(skip)]
    pub changes: Option<Changes>,
    #[serde(skip)]
    pub last_change_at: Option<f64>,
    #[serde(skip)]
    pub state_write_errors: u64,
    #[serde(skip)]
    pub baseline_corrupt: u64,
}

impl DriftReport {
    /// The drift of one control.
    pub fn control(&self, id: &str) -> Option<&ControlDrift> {
        self.controls.iter().find(|(c, _)| *c == id).map(|(_, d)| d)
    }
}

/// Compare an evaluation with a baseline (pure).
fn compare_all(
    b: &Baseline,
    k: &Kubelet,
    results: &[ControlResult],
) -> (Vec<(&'static str, ControlDrift)>, bool) {
    let controls = results
        .iter()
        .filter_map(|r| b.compare(r).map(|d| (r.id, d)))
        .collect();
    (controls, b.config_drift(k))
}

/// Start-read files modified after the kubelet started (see [`START_READ`]); `None` when
/// the start time is unknown.
pub fn modified_since_start(k: &Kubelet) -> Option<Vec<String>> {
    let started = k.started_at?;
    Some(
        k.files
            .iter()
            .filter(|f| START_READ.contains(&f.role))
            .filter_map(|f| {
                let m = f.meta.as_ref().ok()?;
                #[allow(clippy::cast_precision_loss)]
                let mtime = m.mtime_ns as f64 / 1e9;
                (mtime > started + PENDING_GRACE_SECS).then(|| f.path.clone())
            })
            .collect(),
    )
}

fn baseline_version(b: &Baseline) -> Result<(), String> {
    if b.schema_version == baseline::SCHEMA_VERSION {
        Ok(())
    } else {
        Err(format!(
            "baseline schema version {} is not supported (this agent reads version {})",
            b.schema_version,
            baseline::SCHEMA_VERSION
        ))
    }
}

/// `check`: drift against the stored baseline, read-only (nothing is written, a corrupt
/// baseline is reported, not moved).
pub fn assess(store: &StateDir, snapshot: &Snapshot, results: &[ControlResult]) -> DriftReport {
    let mut report = DriftReport::default();
    let b = match store.load::<Baseline>(BASELINE_FILE, baseline_version) {
        Loaded::Ok(b, _) => Some(b),
        Loaded::Missing => None,
        Loaded::Corrupt(why) => {
            report.baseline_error = Some(format!("{}: {why}", store.path(BASELINE_FILE).display()));
            None
        }
        Loaded::Unreadable(e) => {
            report.baseline_error = Some(e.to_string());
            None
        }
    };
    if let Some(b) = &b {
        report.baseline = Some(BaselineInfo {
            created_at: b.created_at,
            origin: b.origin,
            path: store.path(BASELINE_FILE).display().to_string(),
        });
    }
    if let Some(k) = snapshot.kubelet.as_ref() {
        if let Some(b) = b.as_ref().filter(|b| b.node == snapshot.node) {
            let (controls, config_drift) = compare_all(b, k, results);
            report.controls = controls;
            report.config_drift = Some(config_drift);
        } else if let Some(b) = &b {
            report.baseline_error = Some(format!(
                "the baseline belongs to node {:?}, not {:?}",
                b.node, snapshot.node
            ));
        }
        report.pending_restart = modified_since_start(k);
    }
    report
}

/// Why `baseline accept` could not make a baseline.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("no usable kubelet on this host ({0}): nothing to accept")]
    NoKubelet(String),
    #[error("cannot write the baseline: {0}")]
    Write(#[from] store::StoreError),
}

/// `baseline accept`: make this evaluation (or, with `from_policy`, the policy) the
/// node's baseline. The running agent notices the new file and reloads it.
pub fn accept(
    store: &StateDir,
    snapshot: &Snapshot,
    results: &[ControlResult],
    now: f64,
    from_policy: bool,
    agent_version: &str,
) -> Result<Baseline, AcceptError> {
    let origin = if from_policy {
        Origin::Policy
    } else {
        Origin::Accepted
    };
    let b = Baseline::from_evaluation(snapshot, results, now, origin, agent_version)
        .ok_or_else(|| AcceptError::NoKubelet(snapshot.no_kubelet_reason().unwrap_or_default()))?;
    store.write_atomic(BASELINE_FILE, &to_json(&b))?;
    Ok(b)
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// What was last seen of the kubelet (persisted, so changes made while the agent was down
/// are counted at its next start).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Seen {
    pid: i32,
    start_time_ticks: Option<u64>,
    command_line_hash: String,
    config_hash: String,
    /// `<role>:<path>` → stamp.
    files: BTreeMap<String, Stamp>,
}

impl Seen {
    fn of(k: &Kubelet) -> Seen {
        Seen {
            pid: k.pid,
            start_time_ticks: k.start_time_ticks,
            command_line_hash: baseline::command_line_hash(&k.argv),
            config_hash: baseline::config_hash(k),
            files: k
                .files
                .iter()
                .map(|f| {
                    let stamp = match &f.meta {
                        Ok(m) => Stamp::File(m.fingerprint()),
                        Err(e) if e.kind == ObsErrorKind::NotFound => Stamp::Missing,
                        Err(_) => Stamp::Error(0),
                    };
                    (format!("{}:{}", f.role.as_str(), f.path), stamp)
                })
                .collect(),
        }
    }

    fn same_process(&self, other: &Seen) -> bool {
        self.pid == other.pid && self.start_time_ticks == other.start_time_ticks
    }
}

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
    pub state_dir: PathBuf,
    /// `--baseline-from-policy`.
    pub from_policy: bool,
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
                tracing::warn!(error = %e, "cannot read state.json; changes made while the agent was down are not counted")
            }
        }
        t
    }

    /// The baseline file and the fingerprint the tracker expects it to have (the watch
    /// reloads when it differs).
    pub fn baseline_watch(&self) -> (store::WatchedFile, Option<Fingerprint>) {
        (self.store.watched(BASELINE_FILE), self.baseline_fp)
    }

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
                            tracing::warn!(reason = %why, moved_to = %to.display(), "baseline moved aside; a new one will be taken")
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
        let restart = !prev.same_process(&seen);
        let command_line = prev.command_line_hash != seen.command_line_hash;
        let config = prev.config_hash != seen.config_hash;
        let changed_files: Vec<&str> = seen
            .files
            .iter()
            .filter(|(f, s)| prev.files.get(*f) != Some(*s))
            .map(|(f, _)| f.as_str())
            .chain(
                prev.files
                    .keys()
                    .filter(|f| !seen.files.contains_key(*f))
                    .map(String::as_str),
            )
            .collect();
        if restart {
            self.removed_since_start.clear();
        } else {
            // Start-read files gone while the same process runs: it still runs them.
            for (key, stamp) in &prev.files {
                let gone = !matches!(seen.files.get(key), Some(Stamp::File(_)));
                let start_read = START_READ
                    .iter()
                    .any(|r| key.starts_with(&format!("{}:", r.as_str())));
                if matches!(stamp, Stamp::File(_)) && gone && start_read {
                    if let Some((_, path)) = key.split_once(':') {
                        if !self.removed_since_start.iter().any(|p| p == path) {
                            self.removed_since_start.push(path.to_string());
                        }
                    }
                }
            }
        }
        let mut kinds = Vec::new();
        if config {
            self.changes.config += 1;
            kinds.push("config");
        }
        if command_line {
            self.changes.command_line += 1;
            kinds.push("command_line");
        }
        if restart {
            self.changes.restart += 1;
            kinds.push("restart");
        }
        if !changed_files.is_empty() {
            self.changes.file += 1;
            kinds.push("file");
        }
        if !kinds.is_empty() {
            self.last_change_at = Some(now);
            tracing::warn!(
                kinds = ?kinds,
                pid = seen.pid,
                previous_pid = prev.pid,
                files = ?changed_files,
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

#[cfg(test)]
mod tests;
