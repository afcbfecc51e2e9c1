//! Drift: "did this node change?" next to compliance's "is this node right?".
//!
//! - [`baseline`]: what the node looked like when last known good, and the pure
//!   comparison of an evaluation with it.
//! - [`changes`]: what was last seen of the kubelet, and the pure classification of a
//!   change (`config`, `command_line`, `restart`, `file`; start-read files changed after
//!   the start: `pending_restart`).
//! - [`store`]: the agent's own state directory (atomic writes, corrupt files kept aside).
//! - [`tracker`]: the agent's memory across evaluations — it takes, reloads and persists
//!   the baseline, counts each change, and logs every change once.
//! - here: the drift report, `check`'s read-only [`assess`] and `baseline accept`'s
//!   [`accept`].
//!
//! The per-second fingerprint check that triggers a re-evaluation is observe's
//! (`src/observe/watch.rs`).

pub mod baseline;
pub mod changes;
pub mod store;
pub mod tracker;

use crate::evaluate::ControlResult;
use crate::model::snapshot::{Kubelet, Snapshot};

pub use baseline::{Baseline, ControlDrift, Origin};
use changes::{modified_since_start, Changes};
use store::{Loaded, StateDir, BASELINE_FILE};

/// The baseline, for reports and metrics.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BaselineInfo {
    /// Unix time (seconds) the baseline was taken
    /// (`kubelet_sentinel_baseline_timestamp_seconds`).
    pub created_at: f64,
    /// How the baseline came to be (the `origin` label of `kubelet_sentinel_baseline_info`).
    pub origin: Origin,
    /// The baseline file, `<state-dir>/baseline.json`.
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
    /// `serve` only: Unix time (seconds) of the last detected change, kept across agent
    /// restarts (`kubelet_sentinel_last_change_timestamp_seconds`); `None` before the first.
    #[serde(skip)]
    pub last_change_at: Option<f64>,
    /// `serve` only: failed writes to the state dir since the agent started
    /// (`kubelet_sentinel_state_write_errors_total`).
    #[serde(skip)]
    pub state_write_errors: u64,
    /// `serve` only: baseline files found unparseable and moved aside since the agent
    /// started (`kubelet_sentinel_baseline_corrupt_total`).
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
    /// No usable kubelet was found; the string says why.
    #[error("no usable kubelet on this host ({0}): nothing to accept")]
    NoKubelet(String),
    /// The baseline could not be written to the state dir.
    #[error("cannot write the baseline: {0}")]
    Write(store::StoreError),
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
    store
        .write_atomic(BASELINE_FILE, &to_json(&b))
        .map_err(AcceptError::Write)?;
    Ok(b)
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = serde_json::to_vec_pretty(v).unwrap_or_default();
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests;
