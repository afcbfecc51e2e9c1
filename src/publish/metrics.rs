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
//! the output, so series are kept in [`Ordered`], a `Vec`-backed family that encodes in
//! insertion order: controls in catalogue order, statuses in [`Status::ALL`] order, probes
//! in observation order. Families are encoded in registration order.
//!
//! Cardinality: every label value is either a node-level constant (node, kubelet version,
//! config paths, build info), a catalogue constant (control id, title, family, severity,
//! CIS reference), a status, or a probe name — except `kubelet_sentinel_risky_pod_info`,
//! whose `namespace` and `pod` name the risky pods on this node (a fixed set of 8
//! reasons each; none on a node without risky pods). No observed value, path of an arbitrary file
//! or error message ever becomes a label.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, text, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::{Registry, Unit};

use crate::evaluate::{ControlResult, Status};
use crate::model::snapshot::Snapshot;
use crate::publish::drift::DriftReport;

/// `Content-Type` of the Prometheus text format 0.0.4.
pub const CONTENT_TYPE_TEXT: &str = prometheus_text::CONTENT_TYPE;
/// `Content-Type` of the OpenMetrics text format 1.0.0.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A label set, in the order the labels are written.
pub type Labels = Vec<(String, String)>;

/// A gauge holding an `f64`.
type F64Gauge = Gauge<f64, AtomicU64>;

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

/// Everything one exposition is made of.
#[derive(Debug, Clone, Copy)]
pub struct MetricsInput<'a> {
    pub node: &'a str,
    pub snapshot: &'a Snapshot,
    pub results: &'a [ControlResult],
    pub evaluation_duration: Duration,
    /// Unix time (seconds) of the evaluation.
    pub evaluated_at: f64,
    pub build_version: &'a str,
    pub build_revision: &'a str,
    /// Drift against the baseline (`serve`); `None` renders no drift families.
    pub drift: Option<&'a DriftReport>,
    /// Pods on this node that can take over the host: (namespace, pod, reason), from
    /// `evaluate::pod_security::risky_pod_series`.
    pub risky_pods: &'a [(String, String, &'static str)],
}

/// A metric family whose series are encoded in insertion order (see the module docs).
#[derive(Debug)]
pub struct Ordered<M> {
    series: Vec<(Labels, M)>,
    /// Hashes of the label sets pushed (a linear scan for duplicates was O(n²): 40% of a
    /// render with 40+ controls × 4 statuses; docs/performance.md).
    seen: std::collections::HashSet<u64>,
}

impl<M> Default for Ordered<M> {
    fn default() -> Self {
        Ordered {
            series: Vec::new(),
            seen: std::collections::HashSet::new(),
        }
    }
}

fn labels_hash(labels: &Labels) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    labels.hash(&mut h);
    h.finish()
}

impl<M> Ordered<M> {
    /// Add a series. A label set already present is ignored (the first one wins), so the
    /// exposition never holds duplicate series.
    pub fn push(&mut self, labels: Labels, metric: M) {
        let h = labels_hash(&labels);
        // A hash seen before is confirmed by comparing the label sets (collisions are
        // possible, if unlikely): a distinct series is never dropped.
        if !self.seen.insert(h) && self.series.iter().any(|(l, _)| *l == labels) {
            return;
        }
        self.series.push((labels, metric));
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

impl Ordered<F64Gauge> {
    /// Add a gauge series with a value.
    pub fn gauge(&mut self, labels: Labels, value: f64) {
        let g = F64Gauge::default();
        g.set(value);
        self.push(labels, g);
    }
}

impl Ordered<Counter<u64>> {
    /// Add a counter series with a value.
    pub fn counter(&mut self, labels: Labels, value: u64) {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        self.push(labels, c);
    }
}

impl Ordered<Info<Labels>> {
    /// Add an info series (value 1).
    pub fn info(&mut self, labels: Labels) {
        self.push(labels, Info::new(Vec::new()));
    }
}

impl<M> EncodeMetric for Ordered<M>
where
    M: EncodeMetric + TypedMetric,
{
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, metric) in &self.series {
            metric.encode(encoder.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        M::TYPE
    }

    /// Empty families are left out of the exposition entirely (no orphan `# HELP`).
    fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn bool_value(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

const HELP_CONTROL_STATUS: &str = "Status of each kubelet hardening control, one series per possible status (pass, fail, unknown, not_applicable): the current status is 1, the others 0";
const HELP_CONTROL_INFO: &str =
    "Catalogue metadata of each evaluated control (title, family, severity, CIS Kubernetes Benchmark reference); always 1";
const HELP_KUBELET_UP: &str =
    "1 when a kubelet process was found on the node and its configuration read, else 0 (the kubelet's controls are then unknown)";
const HELP_KUBELET_INFO: &str =
    "The kubelet that was evaluated: version, config file and config drop-in directory (empty when not set); present only when kubelet_up is 1";
const HELP_PROBE_SUCCESS: &str =
    "1 when the observation step (probe) succeeded in the last evaluation, else 0";
const HELP_PROBE_DURATION: &str =
    "Duration of each observation step (probe) in the last evaluation";
const HELP_LAST_EVALUATION: &str =
    "Unix time at which the last completed evaluation started (alert when it is older than a few intervals)";
const HELP_EVALUATION_DURATION: &str =
    "Duration of the last evaluation (observation of the host and evaluation of the controls)";
const HELP_LISTENER: &str =
    "A TCP socket the kubelet listens on (from /proc/<pid>/net/tcp{,6} and its fd table); always 1";
const HELP_TLS_VERSION: &str = "Whether the kubelet's serving port accepts a TLS protocol version when offered alone (1 accepted, 0 refused)";
const HELP_ANONYMOUS_CODE: &str = "HTTP status the kubelet's serving port gives an anonymous GET /pods (401 disabled, 403 denied, 200 open; 0 when no answer)";
const HELP_CERT_EXPIRY: &str = "Expiry (notAfter) of a kubelet certificate, as a Unix timestamp";
const HELP_CONTROL_DRIFT: &str = "1 when the control's observed value differs from the node's baseline (whether or not it still passes; with a policy baseline: when it fails), else 0; absent without a baseline entry or while the control is unknown";
const HELP_CONTROL_REGRESSION: &str =
    "1 when the control passed in the node's baseline and fails now, else 0";
const HELP_CONFIG_DRIFT: &str = "1 when the kubelet's effective configuration (every setting's value and source) differs from the baseline's, else 0";
const HELP_CONFIG_CHANGES: &str = "Changes detected since the agent started, by kind: config (effective configuration), command_line, restart (new kubelet process), file (a file the evaluation reads)";
const HELP_BASELINE_TIMESTAMP: &str = "Unix time at which the node's baseline was taken";
const HELP_BASELINE_INFO: &str =
    "How the node's baseline was made: first_observation, accepted or policy; always 1";
const HELP_LAST_CHANGE: &str = "Unix time of the last detected change (kept across agent restarts)";
const HELP_PENDING_RESTART: &str = "1 when a file the kubelet reads at start (config, drop-ins, unit files, args file) changed or vanished after the kubelet started: the node runs something other than what is on disk";
const HELP_STATE_WRITE_ERRORS: &str =
    "Failed writes to the state dir (read-only or full): the baseline then lives in memory only";
const HELP_BASELINE_CORRUPT: &str =
    "Baseline files found unparseable and moved aside (kept) since the agent started";
const HELP_RISKY_POD: &str = "A pod on this node, outside the policy's allow-list, that can take over the host (no-host-takeover-pods): one series per pod and reason (privileged, host_pid, host_ipc, host_network, host_path_root, host_path_kubelet, host_path_kubernetes, runtime_socket); at most 8 series per risky pod on the node; always 1";
const HELP_BUILD_INFO: &str = "Version and revision of the running kubelet-sentinel; always 1";

/// Register `kubelet_sentinel_build_info`.
fn register_build_info(registry: &mut Registry, node: &str, version: &str, revision: &str) {
    let mut build = Ordered::<Info<Labels>>::default();
    build.info(labels(&[
        ("node", node),
        ("version", version),
        ("revision", revision),
    ]));
    registry.register("kubelet_sentinel_build", HELP_BUILD_INFO, build);
}

// prometheus-client appends a full stop to every HELP text: none here.

/// Families from the live probes and certificates. A family without series is omitted.
fn register_live(registry: &mut Registry, input: &MetricsInput) {
    let node = input.node;
    let live = input.snapshot.live.as_ref();

    let mut listeners = Ordered::<F64Gauge>::default();
    if let Some(Ok(ls)) = live.and_then(|l| l.listeners.as_ref()) {
        for s in &ls.sockets {
            let address = s.address.to_string();
            let port = s.port.to_string();
            listeners.gauge(
                labels(&[("node", node), ("address", &address), ("port", &port)]),
                1.0,
            );
        }
    }
    registry.register(
        "kubelet_sentinel_kubelet_listener",
        HELP_LISTENER,
        listeners,
    );

    let mut versions = Ordered::<F64Gauge>::default();
    if let Some(Ok(vs)) = live.and_then(|l| l.tls_versions.as_ref()) {
        for (v, ok) in vs {
            versions.gauge(labels(&[("node", node), ("version", v)]), bool_value(*ok));
        }
    }
    registry.register(
        "kubelet_sentinel_kubelet_tls_version_accepted",
        HELP_TLS_VERSION,
        versions,
    );

    let mut anonymous = Ordered::<F64Gauge>::default();
    if let Some(a) = live.and_then(|l| l.anonymous.as_ref()) {
        let code = a.as_ref().map(|c| f64::from(*c)).unwrap_or(0.0);
        anonymous.gauge(labels(&[("node", node)]), code);
    }
    registry.register(
        "kubelet_sentinel_kubelet_anonymous_response_code",
        HELP_ANONYMOUS_CODE,
        anonymous,
    );

    let mut expiry = Ordered::<F64Gauge>::default();
    let mut cert =
        |certificate: &str, source: &str, c: Option<&crate::model::snapshot::CertSummary>| {
            if let Some(c) = c {
                #[allow(clippy::cast_precision_loss)]
                let t = c.not_after as f64;
                expiry.gauge(
                    labels(&[
                        ("node", node),
                        ("certificate", certificate),
                        ("source", source),
                    ]),
                    t,
                );
            }
        };
    if let Some(Ok(h)) = live.and_then(|l| l.tls.as_ref()) {
        cert("serving", "live", h.cert.as_ref());
    }
    if let Some(k) = &input.snapshot.kubelet {
        cert(
            "serving",
            "file",
            k.serving_cert_file.as_ref().and_then(|r| r.as_ref().ok()),
        );
        if let Some(Ok(crate::model::snapshot::Credential::ClientCertificate { cert: c, .. })) =
            &k.credential
        {
            cert("client", "file", Some(c));
        }
        cert(
            "client_ca",
            "file",
            k.client_ca.as_ref().and_then(|r| r.as_ref().ok()),
        );
    }
    registry.register_with_unit(
        "kubelet_sentinel_certificate_expiry_timestamp",
        HELP_CERT_EXPIRY,
        Unit::Seconds,
        expiry,
    );
}

/// Drift families (`serve`): per-control drift and regression, configuration drift,
/// change counters, baseline and change times, pending restart, state-dir health.
fn register_drift(registry: &mut Registry, node: &str, d: &DriftReport) {
    let mut drift = Ordered::<F64Gauge>::default();
    let mut regression = Ordered::<F64Gauge>::default();
    for (id, c) in &d.controls {
        let l = labels(&[("node", node), ("control", id)]);
        drift.gauge(l.clone(), bool_value(c.drifted));
        regression.gauge(l, bool_value(c.regressed));
    }
    registry.register("kubelet_sentinel_control_drift", HELP_CONTROL_DRIFT, drift);
    registry.register(
        "kubelet_sentinel_control_regression",
        HELP_CONTROL_REGRESSION,
        regression,
    );

    let node_only = || labels(&[("node", node)]);
    let mut config = Ordered::<F64Gauge>::default();
    if let Some(c) = d.config_drift {
        config.gauge(node_only(), bool_value(c));
    }
    registry.register("kubelet_sentinel_config_drift", HELP_CONFIG_DRIFT, config);

    let mut pending = Ordered::<F64Gauge>::default();
    if let Some(p) = &d.pending_restart {
        pending.gauge(node_only(), bool_value(!p.is_empty()));
    }
    registry.register(
        "kubelet_sentinel_config_pending_restart",
        HELP_PENDING_RESTART,
        pending,
    );

    let mut changes = Ordered::<Counter<u64>>::default();
    if let Some(c) = &d.changes {
        for (kind, n) in c.kinds() {
            changes.counter(labels(&[("node", node), ("kind", kind)]), n);
        }
    }
    registry.register(
        "kubelet_sentinel_config_changes",
        HELP_CONFIG_CHANGES,
        changes,
    );

    let mut baseline_ts = Ordered::<F64Gauge>::default();
    let mut baseline_info = Ordered::<Info<Labels>>::default();
    if let Some(b) = &d.baseline {
        baseline_ts.gauge(node_only(), b.created_at);
        baseline_info.info(labels(&[("node", node), ("origin", b.origin.as_str())]));
    }
    registry.register_with_unit(
        "kubelet_sentinel_baseline_timestamp",
        HELP_BASELINE_TIMESTAMP,
        Unit::Seconds,
        baseline_ts,
    );
    registry.register(
        "kubelet_sentinel_baseline",
        HELP_BASELINE_INFO,
        baseline_info,
    );

    let mut last_change = Ordered::<F64Gauge>::default();
    if let Some(t) = d.last_change_at {
        last_change.gauge(node_only(), t);
    }
    registry.register_with_unit(
        "kubelet_sentinel_last_change_timestamp",
        HELP_LAST_CHANGE,
        Unit::Seconds,
        last_change,
    );

    if d.changes.is_some() {
        let mut write_errors = Ordered::<Counter<u64>>::default();
        write_errors.counter(node_only(), d.state_write_errors);
        registry.register(
            "kubelet_sentinel_state_write_errors",
            HELP_STATE_WRITE_ERRORS,
            write_errors,
        );
        let mut corrupt = Ordered::<Counter<u64>>::default();
        corrupt.counter(node_only(), d.baseline_corrupt);
        registry.register(
            "kubelet_sentinel_baseline_corrupt",
            HELP_BASELINE_CORRUPT,
            corrupt,
        );
    }
}

/// Build the registry of one evaluation.
pub fn registry(input: &MetricsInput) -> Registry {
    let node = input.node;
    let mut registry = Registry::default();

    let mut status = Ordered::<F64Gauge>::default();
    let mut info = Ordered::<Info<Labels>>::default();
    for r in input.results {
        let severity = r.severity.as_str();
        for s in Status::ALL {
            status.gauge(
                labels(&[
                    ("node", node),
                    ("control", r.id),
                    ("family", r.family),
                    ("severity", severity),
                    ("status", s.as_str()),
                ]),
                bool_value(r.status == s),
            );
        }
        info.info(labels(&[
            ("node", node),
            ("control", r.id),
            ("title", r.title),
            ("family", r.family),
            ("severity", severity),
            ("cis", r.cis.unwrap_or("")),
        ]));
    }
    registry.register(
        "kubelet_sentinel_control_status",
        HELP_CONTROL_STATUS,
        status,
    );
    // An info family: `kubelet_sentinel_control_info` on the wire.
    registry.register("kubelet_sentinel_control", HELP_CONTROL_INFO, info);

    let mut up = Ordered::<F64Gauge>::default();
    up.gauge(
        labels(&[("node", node)]),
        bool_value(input.snapshot.kubelet.is_some()),
    );
    registry.register("kubelet_sentinel_kubelet_up", HELP_KUBELET_UP, up);

    let mut kubelet = Ordered::<Info<Labels>>::default();
    if let Some(k) = &input.snapshot.kubelet {
        kubelet.info(labels(&[
            ("node", node),
            ("version", k.version.as_deref().unwrap_or("")),
            (
                "version_source",
                k.version_source.map_or("", |s| s.as_str()),
            ),
            ("config_file", k.config.config_file.as_deref().unwrap_or("")),
            ("config_dir", k.config.config_dir.as_deref().unwrap_or("")),
        ]));
    }
    registry.register("kubelet_sentinel_kubelet", HELP_KUBELET_INFO, kubelet);

    register_live(&mut registry, input);

    let mut risky = Ordered::<Info<Labels>>::default();
    for (namespace, pod, reason) in input.risky_pods {
        risky.info(labels(&[
            ("node", node),
            ("namespace", namespace),
            ("pod", pod),
            ("reason", reason),
        ]));
    }
    registry.register("kubelet_sentinel_risky_pod", HELP_RISKY_POD, risky);

    let mut probe_success = Ordered::<F64Gauge>::default();
    let mut probe_duration = Ordered::<F64Gauge>::default();
    for p in &input.snapshot.probes {
        let l = labels(&[("node", node), ("probe", p.name)]);
        probe_success.gauge(l.clone(), bool_value(p.success));
        probe_duration.gauge(l, p.duration.as_secs_f64());
    }
    registry.register(
        "kubelet_sentinel_probe_success",
        HELP_PROBE_SUCCESS,
        probe_success,
    );
    registry.register_with_unit(
        "kubelet_sentinel_probe_duration",
        HELP_PROBE_DURATION,
        Unit::Seconds,
        probe_duration,
    );

    if let Some(d) = input.drift {
        register_drift(&mut registry, node, d);
    }

    let mut last = Ordered::<F64Gauge>::default();
    last.gauge(labels(&[("node", node)]), input.evaluated_at);
    registry.register_with_unit(
        "kubelet_sentinel_last_evaluation_timestamp",
        HELP_LAST_EVALUATION,
        Unit::Seconds,
        last,
    );

    let mut duration = Ordered::<F64Gauge>::default();
    duration.gauge(
        labels(&[("node", node)]),
        input.evaluation_duration.as_secs_f64(),
    );
    registry.register_with_unit(
        "kubelet_sentinel_evaluation_duration",
        HELP_EVALUATION_DURATION,
        Unit::Seconds,
        duration,
    );

    register_build_info(
        &mut registry,
        node,
        input.build_version,
        input.build_revision,
    );
    registry
}

/// Render one evaluation's exposition in both formats.
pub fn render(input: &MetricsInput) -> Exposition {
    encode_or_empty(&registry(input))
}

/// The exposition served before the first evaluation has completed: only
/// `kubelet_sentinel_build_info`. `kubelet_sentinel_kubelet_up` and the control series are
/// *absent* (not 0), so "kubelet down" and "control failing" alerts cannot fire on a
/// freshly started agent, while the target still scrapes successfully (`up` = 1).
pub fn render_startup(node: &str, build_version: &str, build_revision: &str) -> Exposition {
    let mut registry = Registry::default();
    register_build_info(&mut registry, node, build_version, build_revision);
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
mod tests {
    use super::*;
    use crate::evaluate::Severity;
    use crate::model::exposition::{parse_line, Line, Sample};
    use crate::model::snapshot::{Discovery, ProbeRecord};
    use prometheus_client::metrics::counter::Counter;
    use std::collections::{BTreeMap, BTreeSet};

    fn result(id: &'static str, status: Status, cis: Option<&'static str>) -> ControlResult {
        ControlResult {
            id,
            title: "A \"quoted\" title with a back\\slash",
            family: "api_access",
            severity: Severity::High,
            cis,
            practice: "p",
            status,
            observed: "o".into(),
            expected: "e".into(),
            source: "flag".into(),
            reason: "r".into(),
            remediation: "fix",
        }
    }

    fn snapshot(node: &str) -> Snapshot {
        Snapshot {
            node: node.to_string(),
            taken_at: 1_700_000_000.5,
            discovery: Discovery::NotFound {
                reason: "no kubelet process".into(),
            },
            kubelet: None,
            apiserver: None,
            live: None,
            cluster: None,
            running_config: None,
            probes: vec![
                ProbeRecord {
                    name: "process",
                    success: true,
                    duration: Duration::from_millis(3),
                    error: None,
                },
                ProbeRecord {
                    name: "config",
                    success: false,
                    duration: Duration::from_micros(250),
                    error: Some("boom".into()),
                },
            ],
        }
    }

    fn exposition(node: &str, results: &[ControlResult]) -> Exposition {
        let snap = snapshot(node);
        render(&MetricsInput {
            node,
            snapshot: &snap,
            results,
            evaluation_duration: Duration::from_millis(12),
            evaluated_at: 1_700_000_001.25,
            build_version: "0.1.0",
            build_revision: "abc123",
            drift: None,
            risky_pods: &[],
        })
    }

    fn results() -> Vec<ControlResult> {
        vec![
            result("anonymous-auth-disabled", Status::Fail, Some("4.2.1")),
            result("authorization-webhook", Status::Pass, Some("4.2.2")),
            result("read-only-port-disabled", Status::Unknown, None),
            result("audit-policy", Status::NotApplicable, None),
        ]
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Format {
        Text004,
        OpenMetrics,
    }

    /// A small line-format checker for both text formats on top of the one reader
    /// (model/exposition.rs): the agent writes one space between tokens and no timestamps,
    /// families declared once and not interleaved, sample names matching their family's
    /// type, no duplicate series, `# EOF`/`# UNIT` only in OpenMetrics.
    fn check(body: &str, format: Format) -> Result<Vec<Sample<'_>>, String> {
        if !body.is_empty() && !body.ends_with('\n') {
            return Err("body does not end with a newline".into());
        }
        let mut samples = Vec::new();
        let mut declared: BTreeSet<String> = BTreeSet::new();
        let mut current: Option<(String, String)> = None; // (family, type)
        let mut series: BTreeSet<String> = BTreeSet::new();
        let mut eof = false;
        for line in body.lines() {
            if eof {
                return Err("content after # EOF".into());
            }
            let parsed = parse_line(line).map_err(|e| format!("{e}: {line:?}"))?;
            if written(line, &parsed) != line {
                return Err(format!("not as the encoder writes it: {line:?}"));
            }
            match parsed {
                Line::Eof => {
                    if format != Format::OpenMetrics {
                        return Err("# EOF in the 0.0.4 format".into());
                    }
                    eof = true;
                }
                Line::Help { family, text } => {
                    if text.is_empty() {
                        return Err(format!("HELP without text: {line:?}"));
                    }
                    if !declared.insert(family.to_string()) {
                        return Err(format!("family {family} declared twice"));
                    }
                    current = Some((family.to_string(), String::new()));
                }
                Line::Type { family, kind } => {
                    let allowed: &[&str] = match format {
                        Format::Text004 => &["counter", "gauge", "histogram", "summary", "untyped"],
                        Format::OpenMetrics => &[
                            "counter",
                            "gauge",
                            "histogram",
                            "gaugehistogram",
                            "stateset",
                            "info",
                            "summary",
                            "unknown",
                        ],
                    };
                    if !allowed.contains(&kind) {
                        return Err(format!("bad type {kind}"));
                    }
                    match &mut current {
                        Some((fam, t)) if fam == family && t.is_empty() => *t = kind.to_string(),
                        _ => return Err(format!("TYPE without matching HELP: {line}")),
                    }
                }
                Line::Unit { family, unit } => {
                    if format != Format::OpenMetrics {
                        return Err("# UNIT in the 0.0.4 format".into());
                    }
                    if !family.ends_with(&format!("_{unit}")) {
                        return Err(format!("name {family} does not end with unit {unit}"));
                    }
                }
                Line::Comment(_) => return Err(format!("unknown comment {line}")),
                Line::Blank => return Err(format!("bad line {line:?}")),
                Line::Sample(sample) => {
                    if sample.timestamp.is_some() {
                        return Err(format!("timestamps/exemplars not expected: {line}"));
                    }
                    let (family, typ) = current.as_ref().ok_or("sample before any family")?;
                    let expected_name = match (format, typ.as_str()) {
                        (Format::OpenMetrics, "info") => format!("{family}_info"),
                        (Format::OpenMetrics, "counter") => format!("{family}_total"),
                        _ => family.clone(),
                    };
                    if sample.name != expected_name {
                        return Err(format!("sample {} in family {family} ({typ})", sample.name));
                    }
                    if format == Format::OpenMetrics && typ == "info" && sample.value != 1.0 {
                        return Err("info sample not 1".into());
                    }
                    let key = format!("{}{:?}", sample.name, sample.labels);
                    if !series.insert(key) {
                        return Err(format!("duplicate series {line}"));
                    }
                    samples.push(sample);
                }
            }
        }
        if format == Format::OpenMetrics && !eof {
            return Err("OpenMetrics without # EOF".into());
        }
        Ok(samples)
    }

    /// A parsed line as the encoder writes it: one space between tokens, `name{k="v",...}`
    /// with `\\`, `\"` and `\n` escaped, the value's text as it stood (a line that differs
    /// has blanks, commas or escapes the encoder never writes).
    fn written(written: &str, line: &Line<'_>) -> String {
        match line {
            Line::Blank => String::new(),
            Line::Help { family, text } => format!("# HELP {family} {text}"),
            Line::Type { family, kind } => format!("# TYPE {family} {kind}"),
            Line::Unit { family, unit } => format!("# UNIT {family} {unit}"),
            Line::Eof => "# EOF".to_string(),
            Line::Comment(c) => c.to_string(),
            Line::Sample(s) => {
                let mut out = s.name.to_string();
                if !s.labels.is_empty() {
                    let set: Vec<String> = s
                        .labels
                        .iter()
                        .map(|(k, v)| {
                            let v = v
                                .replace('\\', "\\\\")
                                .replace('"', "\\\"")
                                .replace('\n', "\\n");
                            format!("{k}=\"{v}\"")
                        })
                        .collect();
                    out = format!("{out}{{{}}}", set.join(","));
                }
                // The value as written: the last space-separated word (a line with other
                // blanks is not rendered back to itself).
                let value = written.rsplit(' ').next().unwrap_or_default();
                format!("{out} {value}")
            }
        }
    }

    fn label<'a>(s: &'a Sample<'_>, key: &str) -> Option<&'a str> {
        s.label(key)
    }

    #[test]
    fn both_formats_parse() {
        let exp = exposition("node-a", &results());
        let text = check(&exp.text, Format::Text004).unwrap();
        let om = check(&exp.openmetrics, Format::OpenMetrics).unwrap();
        assert_eq!(text, om, "both formats carry the same samples");
        assert!(!text.is_empty());
    }

    #[test]
    fn eof_and_unit_only_in_openmetrics() {
        let exp = exposition("node-a", &results());
        assert!(exp.openmetrics.ends_with("# EOF\n"));
        assert_eq!(exp.openmetrics.matches("# EOF").count(), 1);
        assert!(!exp.text.contains("# EOF"));
        assert!(!exp.text.contains("# UNIT"));
        assert!(exp
            .openmetrics
            .contains("# UNIT kubelet_sentinel_probe_duration_seconds seconds\n"));
        assert!(exp
            .text
            .contains("# TYPE kubelet_sentinel_build_info gauge\n"));
        assert!(exp
            .openmetrics
            .contains("# TYPE kubelet_sentinel_build info\n"));
    }

    #[test]
    fn stateset_has_exactly_one_active_status_per_control() {
        let rs = results();
        let exp = exposition("node-a", &rs);
        let samples = check(&exp.text, Format::Text004).unwrap();
        let mut per_control: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == "kubelet_sentinel_control_status")
        {
            per_control
                .entry(label(s, "control").unwrap().to_string())
                .or_default()
                .push((label(s, "status").unwrap().to_string(), s.value));
        }
        assert_eq!(per_control.len(), rs.len());
        for r in &rs {
            let series = &per_control[r.id];
            let statuses: Vec<&str> = series.iter().map(|(s, _)| s.as_str()).collect();
            assert_eq!(statuses, ["pass", "fail", "unknown", "not_applicable"]);
            let ones: Vec<&str> = series
                .iter()
                .filter(|(_, v)| *v == 1.0)
                .map(|(s, _)| s.as_str())
                .collect();
            assert_eq!(ones, [r.status.as_str()], "{}", r.id);
            assert!(series.iter().all(|(_, v)| *v == 0.0 || *v == 1.0));
        }
    }

    #[test]
    fn every_series_carries_node() {
        let exp = exposition("node-a", &results());
        for s in check(&exp.openmetrics, Format::OpenMetrics).unwrap() {
            assert_eq!(label(&s, "node"), Some("node-a"), "{s:?}");
        }
        let startup = render_startup("node-a", "0.1.0", "abc");
        let samples = check(&startup.text, Format::Text004).unwrap();
        assert_eq!(samples.len(), 1);
        assert_eq!(samples[0].name, "kubelet_sentinel_build_info");
        check(&startup.openmetrics, Format::OpenMetrics).unwrap();
        assert!(!startup.text.contains("kubelet_up"));
    }

    #[test]
    fn label_values_are_escaped() {
        let node = "we\"ird\\node\nname";
        let exp = exposition(node, &results());
        assert!(exp.text.contains(r#"node="we\"ird\\node\nname""#));
        for body in [&exp.text, &exp.openmetrics] {
            assert!(body.contains(r#"title="A \"quoted\" title with a back\\slash""#));
        }
        for (body, format) in [
            (&exp.text, Format::Text004),
            (&exp.openmetrics, Format::OpenMetrics),
        ] {
            for s in check(body, format).unwrap() {
                assert_eq!(label(&s, "node"), Some(node));
            }
        }
    }

    #[test]
    fn kubelet_down_means_up_zero_and_no_kubelet_info() {
        let exp = exposition("node-a", &results());
        let samples = check(&exp.text, Format::Text004).unwrap();
        let up: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "kubelet_sentinel_kubelet_up")
            .collect();
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].value, 0.0);
        assert!(!exp.text.contains("kubelet_sentinel_kubelet_info"));
        // Empty families have no orphan HELP/TYPE either.
        assert!(!exp.openmetrics.contains("kubelet_sentinel_kubelet "));
    }

    #[test]
    fn output_is_deterministic_and_ordered() {
        let rs = results();
        let a = exposition("node-a", &rs);
        let b = exposition("node-a", &rs);
        assert_eq!(a, b);
        let first = a.text.find("control=\"anonymous-auth-disabled\"").unwrap();
        let last = a.text.find("control=\"audit-policy\"").unwrap();
        assert!(first < last, "catalogue order");
        let probes: Vec<_> = check(&a.text, Format::Text004)
            .unwrap()
            .into_iter()
            .filter(|s| s.name == "kubelet_sentinel_probe_success")
            .map(|s| label(&s, "probe").unwrap().to_string())
            .collect();
        assert_eq!(probes, ["process", "config"]);
    }

    #[test]
    fn cis_label_is_empty_when_missing() {
        let exp = exposition("n", &results());
        let samples = check(&exp.text, Format::Text004).unwrap();
        let info: Vec<_> = samples
            .iter()
            .filter(|s| s.name == "kubelet_sentinel_control_info")
            .collect();
        assert_eq!(info.len(), 4);
        assert_eq!(label(info[0], "cis"), Some("4.2.1"));
        assert_eq!(label(info[2], "cis"), Some(""));
    }

    #[test]
    fn duplicate_series_are_dropped() {
        let mut rs = results();
        rs.push(result("anonymous-auth-disabled", Status::Pass, None));
        let exp = exposition("n", &rs);
        check(&exp.text, Format::Text004).unwrap();
        check(&exp.openmetrics, Format::OpenMetrics).unwrap();
    }

    #[test]
    fn counters_are_named_total_in_both_formats() {
        // No counters yet: this pins the encoders' behaviour for when there are.
        let mut registry = Registry::default();
        let c: Counter = Counter::default();
        c.inc();
        registry.register("demo_evaluations", "Evaluations run.", c);
        let exp = Exposition::from_registry(&registry).unwrap();
        assert!(exp.text.contains("# TYPE demo_evaluations_total counter\n"));
        assert!(exp.text.contains("\ndemo_evaluations_total 1\n"));
        assert!(exp
            .openmetrics
            .contains("# TYPE demo_evaluations counter\n"));
        assert!(exp.openmetrics.contains("\ndemo_evaluations_total 1\n"));
        check(&exp.text, Format::Text004).unwrap();
        check(&exp.openmetrics, Format::OpenMetrics).unwrap();
    }

    #[test]
    fn checker_rejects_broken_bodies() {
        assert!(check("# HELP a x\n# TYPE a gauge\na 1\n", Format::OpenMetrics).is_err());
        assert!(check("# HELP a x\n# TYPE a gauge\na 1\n# EOF\n", Format::Text004).is_err());
        assert!(check("# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n", Format::Text004).is_err());
        assert!(check("# HELP a x\n# TYPE a gauge\nb 1\n", Format::Text004).is_err());
        assert!(check("# HELP a x\n# TYPE a gauge\na 1\na 2\n", Format::Text004).is_err());
        assert!(check("# HELP a x\n# TYPE a gauge\na 1\n", Format::Text004).is_ok());
    }
}
