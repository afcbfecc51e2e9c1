//! The metrics exposition, rendered once per evaluation.
//!
//! Every evaluation builds a fresh [`Registry`] from the snapshot and the control results,
//! encodes it in both text formats and hands the two strings to the HTTP server, which
//! only copies bytes on a scrape. Rendering once keeps scrapes cheap and free of host I/O,
//! and makes both formats describe exactly the same evaluation.
//!
//! Formats:
//! - OpenMetrics 1.0.0 text (`application/openmetrics-text`): prometheus-client's
//!   [`text::encode`] (`# UNIT` lines, `info` typed families, the trailing `# EOF`).
//! - Prometheus text 0.0.4 (`text/plain`): prometheus-client's [`prometheus_text::encode`]
//!   on the *same* registry: no `# EOF`, no `# UNIT`, `info` families are typed `gauge`
//!   under their `_info` sample name and counters under their `_total` name.
//!
//! Determinism: prometheus-client's `Family` keeps its series in a `HashMap`, whose
//! iteration order changes from process to process. A golden file must be able to diff
//! the output, so series are kept in [`ordered::Ordered`], a `Vec`-backed family that
//! encodes in insertion order: controls in catalogue order, statuses in
//! [`Status::ALL`](crate::evaluate::Status::ALL) order, probes in observation order.
//! Families are encoded in registration order.
//!
//! Cardinality (issue 16: a fleet of thousands of nodes on one Prometheus): at most 150
//! series per node on a default install in every state, asserted by
//! `series_budget_*` in tests.rs. A default page holds, per node:
//! - one `control_status` series per control (its current status only; the full StateSet,
//!   four series per control, only with `--metrics-control-states=all`);
//! - one `control_drift` series per control that differs from its baseline, none
//!   otherwise (at most one per control: `regressed` wins over `changed`);
//! - no `control_info` (catalogue constants, the same on every node: docs/controls.md has
//!   them) unless `--metrics-control-info`;
//! - about 30 node-level series: `node_info`, the kubelet, its listeners, TLS versions and
//!   certificates, the probes, the drift and state gauges, build info.
//!
//! Every label value is either a node-level constant (node, node pool, kubelet version,
//! config paths, build info), a catalogue constant (control id, title, family, severity,
//! CIS reference), a status or drift kind, or a probe name — except
//! `kubelet_sentinel_risky_pod_info`, whose `namespace` and `pod` name the risky pods on
//! this node (a fixed set of 8 reasons each; none on a node without risky pods). The node
//! pool is a Kubernetes label value (at most 63 characters, validated:
//! `model::label`). No observed value, path of an arbitrary file or error message ever
//! becomes a label.
//!
//! Layout: [`families`] is the table of every metric family (its name, help, type and a
//! pure function from one evaluation to its series: the snapshot, the results, the drift
//! report and the [`ExpositionOptions`]); [`ordered`] is the family type that keeps series
//! in insertion order; this module encodes the registry in both formats.

pub mod families;
pub mod ordered;

use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, text};
use prometheus_client::registry::Registry;

use crate::evaluate::ControlResult;
use crate::model::snapshot::Snapshot;
use crate::publish::drift::DriftReport;

/// `Content-Type` of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = prometheus_text::CONTENT_TYPE;
/// `Content-Type` of the OpenMetrics text format 1.0.0.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label set, in the order the labels are written.
pub type Labels = Vec<(String, String)>;

/// One evaluation's exposition in both text formats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exposition {
    /// Prometheus text format 0.0.4 ([`CONTENT_TYPE_TEXT`]).
    pub text: String,
    /// OpenMetrics text format 1.0.0, ending with `# EOF` ([`CONTENT_TYPE_OPENMETRICS`]).
    pub openmetrics: String,
}

impl Exposition {
    /// Encode a registry in both formats.
    pub fn from_registry(registry: &Registry) -> Result<Exposition, std::fmt::Error> {
        let mut text_out = String::new();
        prometheus_text::encode(&mut text_out, registry)?;
        let mut openmetrics = String::new();
        text::encode(&mut openmetrics, registry)?;
        Ok(Exposition {
            text: text_out,
            openmetrics,
        })
    }

    /// A valid exposition without any series (an empty 0.0.4 body, `# EOF` alone).
    pub fn empty() -> Exposition {
        Exposition {
            text: String::new(),
            openmetrics: "# EOF\n".to_string(),
        }
    }
}

/// Which control series the page carries (`serve --metrics-control-states`,
/// `--metrics-control-info`). The default is the fleet-sized page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpositionOptions {
    /// `kubelet_sentinel_control_status`: the current status only, or the full StateSet.
    pub control_states: ControlStates,
    /// Render `kubelet_sentinel_control_info` (catalogue metadata per control).
    pub control_info: bool,
    /// Render `kubelet_sentinel_probe_duration_seconds` (one series per probe). Off by
    /// default: with every control drifted on a live node with API access the page
    /// would pass 150 series by them; `kubelet_sentinel_evaluation_duration_seconds`
    /// and each probe's `_success` stay.
    pub probe_durations: bool,
}

/// The series of `kubelet_sentinel_control_status`: `Active` (default) one per control,
/// its current status, value 1; `All` the StateSet: one per control and status, 0 or 1.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ControlStates {
    /// One series per control: its current status, value 1.
    #[default]
    Active,
    /// One series per control and status ([`Status::ALL`](crate::evaluate::Status::ALL)),
    /// the current one 1, the others 0.
    All,
}

/// Everything one exposition is made of.
#[derive(Debug, Clone, Copy)]
pub struct MetricsInput<'a> {
    /// The `node` label on every series.
    pub node: &'a str,
    /// The observation the results were judged on (kubelet, listeners, TLS, certificates,
    /// probes).
    pub snapshot: &'a Snapshot,
    /// The evaluated controls (`kubelet_sentinel_control_status`, and `_info` when
    /// [`ExpositionOptions::control_info`]).
    pub results: &'a [ControlResult],
    /// How long observation and evaluation took
    /// (`kubelet_sentinel_evaluation_duration_seconds`).
    pub evaluation_duration: Duration,
    /// Unix time (seconds) of the evaluation.
    pub evaluated_at: f64,
    /// This build's version (the `version` label of `kubelet_sentinel_build_info`).
    pub build_version: &'a str,
    /// This build's git revision (the `revision` label of `kubelet_sentinel_build_info`).
    pub build_revision: &'a str,
    /// Drift against the baseline (`serve`); `None` renders no drift families.
    pub drift: Option<&'a DriftReport>,
    /// Pods on this node that can take over the host: (namespace, pod, reason), from
    /// `evaluate::pod_security::risky_pod_series`.
    pub risky_pods: &'a [(String, String, &'static str)],
    /// Which control series to render.
    pub options: ExpositionOptions,
}

/// Render one evaluation's exposition in both formats.
pub fn render(input: &MetricsInput) -> Exposition {
    encode_or_empty(&families::registry(input))
}

/// The exposition served before the first evaluation has completed: only
/// `kubelet_sentinel_build_info`. `kubelet_sentinel_kubelet_up` and the control series are
/// *absent* (not 0), so "kubelet down" and "control failing" alerts cannot fire on a
/// freshly started agent, while the target still scrapes successfully (`up` = 1).
pub fn render_startup(node: &str, build_version: &str, build_revision: &str) -> Exposition {
    let mut registry = Registry::default();
    families::register_build_info(&mut registry, node, build_version, build_revision);
    encode_or_empty(&registry)
}

fn encode_or_empty(registry: &Registry) -> Exposition {
    match Exposition::from_registry(registry) {
        Ok(e) => e,
        Err(e) => {
            // Encoding into a `String` cannot fail unless a metric's encoder does; never
            // serve a half-written body.
            tracing::error!(error = %e, "encoding the metrics exposition failed");
            Exposition::empty()
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
