//! The `check` command's report: one evaluation as plain data ([`Report`]), rendered by
//! [`json`], [`junit`] (JUnit XML) or [`table`] (the terminal), and the exit code derived
//! from it. `check --benchmark` renders it in a benchmark's terms ([`benchmark`]) or in
//! kube-bench's JSON shape ([`kube_bench`]).

pub mod benchmark;
pub mod json;
pub mod junit;
pub mod kube_bench;
pub mod table;

use std::time::Duration;

use crate::evaluate::{summarize, ControlResult, Severity, Status, Summary};
use crate::model::snapshot::{Discovery, Snapshot};
use crate::publish::drift::{ControlDrift, DriftReport};

/// What was found of the kubelet, for the report header.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KubeletReport {
    /// The kubelet's pid, when a process was found (also for unsupported ones).
    pub pid: Option<i32>,
    /// The kubelet's executable: the `/proc/<pid>/exe` target when readable, else `argv[0]`;
    /// `None` without a kubelet.
    pub binary: Option<String>,
    /// `kubelet`, `hyperkube`, `kubelite`, `k3s`.
    pub flavour: Option<String>,
    /// The kubelet's `--config` file, when it has one.
    pub config_file: Option<String>,
    /// The kubelet's `--config-dir` drop-in directory, when it has one.
    pub config_dir: Option<String>,
    /// The kubelet's version (e.g. `v1.31.4`), when known.
    pub version: Option<String>,
    /// Where the version came from: `override`, `buildinfo`, `binary` or `build_info`.
    pub version_source: Option<String>,
    /// Why the version is unknown, when it is.
    pub version_error: Option<String>,
    /// Whether the kubelet's sockets were probed (live evidence next to the files).
    pub live_probes: bool,
    /// `found`, `not_found`, `unknown`, `unsupported` or `failed`.
    pub discovery: String,
    /// Why there is no usable kubelet (every kubelet control is then `unknown`).
    pub reason: Option<String>,
    /// How the kubelet was found, when noteworthy (e.g. several candidates).
    pub note: Option<String>,
    /// The evidence that the process is the host's kubelet (observe/identity.rs): its
    /// executable's owner and mode, its mount namespace, its parent chain, its sockets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<String>,
}

/// The discovery state as reported: `found`, `not_found`, `unknown`, `unsupported`, `failed`.
pub fn discovery_state(d: &Discovery) -> &'static str {
    match d {
        Discovery::Found { .. } => "found",
        Discovery::NotFound { .. } => "not_found",
        Discovery::Unknown { .. } => "unknown",
        Discovery::Unsupported { .. } => "unsupported",
        Discovery::Failed { .. } => "failed",
    }
}

impl KubeletReport {
    /// The report header's view of the snapshot's kubelet and its discovery.
    pub fn from_snapshot(snapshot: &Snapshot) -> KubeletReport {
        let discovery = discovery_state(&snapshot.discovery);
        let (pid, note) = match &snapshot.discovery {
            Discovery::Found { pid, note, .. } => (Some(*pid), note.clone()),
            Discovery::Unsupported { pid, .. } => (Some(*pid), None),
            Discovery::NotFound { .. } | Discovery::Unknown { .. } | Discovery::Failed { .. } => {
                (None, None)
            }
        };
        let k = snapshot.kubelet.as_ref();
        KubeletReport {
            pid: k.map(|k| k.pid).or(pid),
            binary: k.map(|k| k.binary.clone()),
            flavour: k.map(|k| k.flavour.as_str().to_string()),
            config_file: k.and_then(|k| k.config.config_file.clone()),
            config_dir: k.and_then(|k| k.config.config_dir.clone()),
            version: k.and_then(|k| k.version.clone()),
            version_source: k.and_then(|k| k.version_source.map(|s| s.as_str().to_string())),
            version_error: k.and_then(|k| k.version_error.clone()),
            live_probes: snapshot.live.is_some(),
            discovery: discovery.to_string(),
            reason: snapshot.no_kubelet_reason(),
            note,
            evidence: match &snapshot.discovery {
                Discovery::Found { evidence, .. } => evidence.clone(),
                _ => Vec::new(),
            },
        }
    }
}

/// The version of the JSON report's shape: the report's `schema_version`, the `const` of
/// docs/report.schema.json. Raise it when a field is removed, renamed or changes its type.
pub const REPORT_SCHEMA_VERSION: u32 = 1;

/// One evaluation, ready to be rendered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    /// The version of this shape ([`REPORT_SCHEMA_VERSION`], docs/report.schema.json).
    pub schema_version: u32,
    /// The node's name, as on every metrics series.
    pub node: String,
    /// Unix time (seconds) when the evaluation started.
    pub evaluated_at: f64,
    /// How long observation and evaluation took.
    pub duration_seconds: f64,
    /// What was found of the kubelet.
    pub kubelet: KubeletReport,
    /// Every evaluated control, in catalogue order.
    pub controls: Vec<ReportControl>,
    /// Counts per status.
    pub summary: Summary,
    /// Drift against the node's stored baseline (`baseline` is null when there is none).
    pub drift: Option<DriftReport>,
    /// Each observation step (`kubelet_sentinel_probe_*` on `/metrics`), with why it
    /// failed when it did.
    pub probes: Vec<ProbeReport>,
}

/// One observation step in the report.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ProbeReport {
    /// The step's stable name (`process`, `flags`, `config`, `files`, `kubeconfig`, ...).
    pub name: &'static str,
    /// Whether the step succeeded.
    pub success: bool,
    /// How long the step took, in seconds.
    pub duration_seconds: f64,
    /// Why the step failed; `None` when it succeeded.
    pub error: Option<String>,
}

/// A control's result in the report, with its drift against the baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReportControl {
    /// The control's result.
    #[serde(flatten)]
    pub result: ControlResult,
    /// `null` without a baseline entry, or while the control is unknown.
    pub drift: Option<ControlDrift>,
}

impl std::ops::Deref for ReportControl {
    type Target = ControlResult;
    fn deref(&self) -> &ControlResult {
        &self.result
    }
}

impl std::ops::DerefMut for ReportControl {
    fn deref_mut(&mut self) -> &mut ControlResult {
        &mut self.result
    }
}

impl Report {
    /// The report of one evaluation, without drift (see [`Report::with_drift`]);
    /// `duration` is how long observation and evaluation took.
    pub fn new(snapshot: &Snapshot, controls: Vec<ControlResult>, duration: Duration) -> Report {
        Report {
            schema_version: REPORT_SCHEMA_VERSION,
            node: snapshot.node.clone(),
            evaluated_at: snapshot.taken_at,
            duration_seconds: duration.as_secs_f64(),
            kubelet: KubeletReport::from_snapshot(snapshot),
            summary: summarize(&controls),
            controls: controls
                .into_iter()
                .map(|result| ReportControl {
                    result,
                    drift: None,
                })
                .collect(),
            drift: None,
            probes: snapshot
                .probes
                .iter()
                .map(|p| ProbeReport {
                    name: p.name,
                    success: p.success,
                    duration_seconds: p.duration.as_secs_f64(),
                    error: p.error.clone(),
                })
                .collect(),
        }
    }

    /// Attach drift: per control and for the node.
    pub fn with_drift(mut self, drift: DriftReport) -> Report {
        for c in &mut self.controls {
            c.drift = drift.control(c.result.id).cloned();
        }
        self.drift = Some(drift);
        self
    }
}

/// `check`'s exit status, the same for every format (docs/check.md). 2 ("could not run")
/// is the caller's: no report exists then.
pub mod exit {
    /// No control at or above `--fail-on` fails.
    pub const OK: i32 = 0;
    /// A control at or above `--fail-on` fails (or, with `--fail-on-unknown`, is unknown).
    pub const FAILED: i32 = 1;
    /// `check` could not run (a bad flag, `--host-root`, `--policy`, the output).
    pub const COULD_NOT_RUN: i32 = 2;
    /// No usable kubelet on the host, with `--require-kubelet`; wins over [`FAILED`].
    pub const NO_KUBELET: i32 = 3;
}

/// The rules that turn a report into `check`'s verdict: its exit status, JUnit's
/// `<failure>`s and the table's last line all come from here, so they cannot disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gate {
    /// The lowest severity that counts (`--fail-on`); `None`: nothing counts (`never`).
    pub fail_on: Option<Severity>,
    /// An unknown control at or above `fail_on` counts like a failed one.
    pub fail_on_unknown: bool,
    /// No usable kubelet is a verdict of its own ([`exit::NO_KUBELET`]).
    pub require_kubelet: bool,
}

impl Default for Gate {
    /// `check`'s defaults: `--fail-on high`, unknown not counted, a kubelet required.
    fn default() -> Gate {
        Gate {
            fail_on: Some(Severity::High),
            fail_on_unknown: false,
            require_kubelet: true,
        }
    }
}

/// What the gate makes of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing counted: exit 0.
    Ok,
    /// These controls counted (failed, or unknown with `--fail-on-unknown`, at or above
    /// `--fail-on`): exit 1.
    Failed(Vec<&'static str>),
    /// No usable kubelet, and one is required: exit 3; the string says why.
    NoKubelet(String),
}

impl Verdict {
    /// The exit status (see [`exit`]).
    pub fn exit_code(&self) -> i32 {
        match self {
            Verdict::Ok => exit::OK,
            Verdict::Failed(_) => exit::FAILED,
            Verdict::NoKubelet(_) => exit::NO_KUBELET,
        }
    }
}

impl Gate {
    /// Whether this control counts towards exit 1 (and is a JUnit `<failure>`).
    pub fn counts(&self, c: &ControlResult) -> bool {
        let Some(threshold) = self.fail_on else {
            return false;
        };
        c.severity >= threshold
            && match c.status {
                Status::Fail => true,
                Status::Unknown => self.fail_on_unknown,
                Status::Pass | Status::NotApplicable => false,
            }
    }

    /// Whether the missing kubelet decides the verdict ([`Verdict::NoKubelet`]).
    pub fn kubelet_missing<'r>(&self, report: &'r Report) -> Option<&'r str> {
        if !self.require_kubelet {
            return None;
        }
        report.kubelet.reason.as_deref()
    }

    /// The verdict on a report.
    pub fn verdict(&self, report: &Report) -> Verdict {
        if let Some(why) = self.kubelet_missing(report) {
            return Verdict::NoKubelet(why.to_string());
        }
        let counted: Vec<&'static str> = report
            .controls
            .iter()
            .filter(|c| self.counts(c))
            .map(|c| c.id)
            .collect();
        if counted.is_empty() {
            Verdict::Ok
        } else {
            Verdict::Failed(counted)
        }
    }
}

/// The exit code of `check` (see [`exit`] and [`Gate::verdict`]).
pub fn exit_code(report: &Report, gate: &Gate) -> i32 {
    gate.verdict(report).exit_code()
}

fn display_or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "table_tests.rs"]
mod table_tests;
