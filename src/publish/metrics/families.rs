//! The metric families of one evaluation, as one table: each family's name, help text,
//! type, unit and a pure function from the evaluation ([`MetricsInput`]) to its series.
//!
//! The shape of kube-state-metrics' stores (`internal/store/pod.go`: `podMetricFamilies()`
//! returns a list of `generator.NewFamilyGeneratorWithStability(name, help, type,
//! stability, ..., func(*v1.Pod) *metric.Family)`): the exposition is [`FAMILIES`] mapped
//! over one input, so a family is added, read or tested as one row, and no family can
//! reach outside its input. A family
//! whose function returns no series is left out of the page entirely (no orphan `# HELP`).

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::ordered::{bool_value, labels, F64Gauge, Ordered};
use super::{ControlStates, Labels, MetricsInput};
use crate::evaluate::Status;
use crate::publish::drift::DriftReport;

/// The type of a family, and so which `Ordered` holds its series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A gauge (`f64`).
    Gauge,
    /// An OpenMetrics `info` family: `<name>_info`, value always 1 (the series' value is
    /// ignored); a `gauge` named `<name>_info` in the 0.0.4 format.
    Info,
    /// A counter (`u64`): `<name>_total` on the wire.
    Counter,
}

/// One series: its labels (in the order written) and its value.
pub type Series = (Labels, f64);

/// One metric family: a row of [`FAMILIES`].
#[derive(Clone, Copy)]
pub struct Family {
    /// The name registered: without the `_info`/`_total` suffix the type adds, nor the
    /// `_seconds` the unit adds.
    pub name: &'static str,
    /// The `# HELP` text (prometheus-client appends no full stop: none here).
    pub help: &'static str,
    /// The type.
    pub kind: Kind,
    /// `true`: the unit is seconds (`_seconds` appended, `# UNIT` in OpenMetrics).
    pub seconds: bool,
    /// The series of one evaluation, in the order they are written.
    pub series: fn(&MetricsInput) -> Vec<Series>,
}

impl std::fmt::Debug for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Family")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("seconds", &self.seconds)
            .finish_non_exhaustive()
    }
}

impl Family {
    /// The name of its samples in the 0.0.4 text format (what PromQL selects).
    pub fn wire_name(&self) -> String {
        let unit = if self.seconds { "_seconds" } else { "" };
        let suffix = match self.kind {
            Kind::Gauge => "",
            Kind::Info => "_info",
            Kind::Counter => "_total",
        };
        format!("{}{unit}{suffix}", self.name)
    }

    /// Add this family's series of `input` to `registry` (nothing when it has none).
    fn register(&self, registry: &mut Registry, input: &MetricsInput) {
        self.register_series(registry, (self.series)(input));
    }

    /// Add these series of this family to `registry` (nothing when there are none).
    fn register_series(&self, registry: &mut Registry, series: Vec<Series>) {
        if series.is_empty() {
            return;
        }
        match self.kind {
            Kind::Gauge => {
                let mut family = Ordered::<F64Gauge>::default();
                for (l, v) in series {
                    family.gauge(l, v);
                }
                self.add(registry, family);
            }
            Kind::Info => {
                let mut family = Ordered::<Info<Labels>>::default();
                for (l, _) in series {
                    family.info(l);
                }
                self.add(registry, family);
            }
            Kind::Counter => {
                let mut family = Ordered::<Counter<u64>>::default();
                for (l, v) in series {
                    family.counter(l, count(v));
                }
                self.add(registry, family);
            }
        }
    }

    fn add(&self, registry: &mut Registry, metric: impl prometheus_client::registry::Metric) {
        if self.seconds {
            registry.register_with_unit(self.name, self.help, Unit::Seconds, metric);
        } else {
            registry.register(self.name, self.help, metric);
        }
    }
}

/// A counter's value back from the `f64` its row wrote: counters are `u64`s counted by
/// the agent (changes, failed writes), exact far below 2^53; anything negative or not
/// finite is 0.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked first
fn count(v: f64) -> u64 {
    if v.is_finite() && v >= 0.0 {
        v as u64
    } else {
        0
    }
}

/// Every family, in the order of the page.
pub const FAMILIES: &[Family] = &[
    Family {
        name: "kubelet_sentinel_control_status",
        help: "Status of each kubelet hardening control. Default (--metrics-control-states=active): one series per control, labelled with its current status (pass, fail, unknown, not_applicable), value 1; when the status changes, the previous status's series disappears. With --metrics-control-states=all: one series per possible status, the current one 1, the others 0. Select with == 1 (or sum) to read both alike",
        kind: Kind::Gauge,
        seconds: false,
        series: control_status,
    },
    Family {
        name: "kubelet_sentinel_control",
        help: "Catalogue metadata of each evaluated control (title, family, severity, CIS Kubernetes Benchmark reference): constants of this build, the same on every node and in docs/controls.md; only with --metrics-control-info; always 1",
        kind: Kind::Info,
        seconds: false,
        series: control_info,
    },
    Family {
        name: "kubelet_sentinel_node",
        help: "The node this agent evaluates, and its pool: node_pool is the value of the first --node-pool-labels label its Node object carries, empty when it carries none or the Node cannot be read (no API access); always 1",
        kind: Kind::Info,
        seconds: false,
        series: node_info,
    },
    Family {
        name: "kubelet_sentinel_kubelet_up",
        help: "1 when a kubelet process was found on the node and its configuration read, else 0 (the kubelet's controls are then unknown)",
        kind: Kind::Gauge,
        seconds: false,
        series: kubelet_up,
    },
    Family {
        name: "kubelet_sentinel_kubelet",
        help: "The kubelet that was evaluated: version (unknown when it could not be read), config file and config drop-in directory (empty when not set); present only when kubelet_up is 1",
        kind: Kind::Info,
        seconds: false,
        series: kubelet_info,
    },
    Family {
        name: "kubelet_sentinel_kubelet_listener",
        help: "A TCP socket the kubelet listens on (from /proc/<pid>/net/tcp{,6} and its fd table); always 1",
        kind: Kind::Gauge,
        seconds: false,
        series: listeners,
    },
    Family {
        name: "kubelet_sentinel_kubelet_tls_version_accepted",
        help: "Whether the kubelet's serving port accepts a TLS protocol version when offered alone (1 accepted, 0 refused)",
        kind: Kind::Gauge,
        seconds: false,
        series: tls_versions,
    },
    Family {
        name: "kubelet_sentinel_kubelet_anonymous_response_code",
        help: "HTTP status the kubelet's serving port gives an anonymous GET /pods (401 disabled, 403 denied, 200 open; 0 when no answer)",
        kind: Kind::Gauge,
        seconds: false,
        series: anonymous,
    },
    Family {
        name: "kubelet_sentinel_certificate_expiry_timestamp",
        help: "Expiry (notAfter) of a kubelet certificate, as a Unix timestamp",
        kind: Kind::Gauge,
        seconds: true,
        series: certificate_expiry,
    },
    Family {
        name: "kubelet_sentinel_risky_pod",
        help: "A pod on this node, outside the policy's allow-list, that can take over the host (no-host-takeover-pods): one series per pod and reason (privileged, host_pid, host_ipc, host_network, host_path_root, host_path_kubelet, host_path_kubernetes, runtime_socket); at most 8 series per risky pod on the node; always 1",
        kind: Kind::Info,
        seconds: false,
        series: risky_pods,
    },
    Family {
        name: "kubelet_sentinel_probe_success",
        help: "1 when the observation step (probe) succeeded in the last evaluation, else 0",
        kind: Kind::Gauge,
        seconds: false,
        series: probe_success,
    },
    Family {
        name: "kubelet_sentinel_probe_duration",
        help: "Duration of each observation step (probe) in the last evaluation",
        kind: Kind::Gauge,
        seconds: true,
        series: probe_duration,
    },
    Family {
        name: "kubelet_sentinel_control_drift",
        help: "Present (value 1) only while the control differs from the node's baseline: kind=regressed when it passed in the baseline and fails now, kind=changed for any other difference (its observed value differs, whether or not it still passes; with a policy baseline: it fails). Absent when it matches its baseline, has no baseline entry, or is unknown",
        kind: Kind::Gauge,
        seconds: false,
        series: control_drift,
    },
    Family {
        name: "kubelet_sentinel_config_drift",
        help: "1 when the kubelet's effective configuration (every setting's value and source) differs from the baseline's, else 0",
        kind: Kind::Gauge,
        seconds: false,
        series: config_drift,
    },
    Family {
        name: "kubelet_sentinel_config_pending_restart",
        help: "1 when a file the kubelet reads at start (config, drop-ins, unit files, args file) changed or vanished after the kubelet started: the node runs something other than what is on disk",
        kind: Kind::Gauge,
        seconds: false,
        series: pending_restart,
    },
    Family {
        name: "kubelet_sentinel_config_changes",
        help: "Changes detected since the agent started, by kind: config (effective configuration), command_line, restart (new kubelet process), file (a file the evaluation reads)",
        kind: Kind::Counter,
        seconds: false,
        series: config_changes,
    },
    Family {
        name: "kubelet_sentinel_baseline_timestamp",
        help: "Unix time at which the node's baseline was taken",
        kind: Kind::Gauge,
        seconds: true,
        series: baseline_timestamp,
    },
    Family {
        name: "kubelet_sentinel_baseline",
        help: "How the node's baseline was made: first_observation, accepted or policy; always 1",
        kind: Kind::Info,
        seconds: false,
        series: baseline_info,
    },
    Family {
        name: "kubelet_sentinel_last_change_timestamp",
        help: "Unix time of the last detected change (kept across agent restarts)",
        kind: Kind::Gauge,
        seconds: true,
        series: last_change,
    },
    Family {
        name: "kubelet_sentinel_state_write_errors",
        help: "Failed writes to the state dir (read-only or full): the baseline then lives in memory only",
        kind: Kind::Counter,
        seconds: false,
        series: state_write_errors,
    },
    Family {
        name: "kubelet_sentinel_baseline_corrupt",
        help: "Baseline files found unparseable and moved aside (kept) since the agent started",
        kind: Kind::Counter,
        seconds: false,
        series: baseline_corrupt,
    },
    Family {
        name: "kubelet_sentinel_last_evaluation_timestamp",
        help: "Unix time at which the last completed evaluation started (alert when it is older than a few intervals)",
        kind: Kind::Gauge,
        seconds: true,
        series: last_evaluation,
    },
    Family {
        name: "kubelet_sentinel_evaluation_duration",
        help: "Duration of the last evaluation (observation of the host and evaluation of the controls)",
        kind: Kind::Gauge,
        seconds: true,
        series: evaluation_duration,
    },
    BUILD_INFO,
];

/// `kubelet_sentinel_build_info`: also the whole page before the first evaluation.
const BUILD_INFO: Family = Family {
    name: "kubelet_sentinel_build",
    help: "Version and revision of the running kubelet-sentinel; always 1",
    kind: Kind::Info,
    seconds: false,
    series: build_info,
};

/// Build the registry of one evaluation.
pub fn registry(input: &MetricsInput) -> Registry {
    let mut registry = Registry::default();
    for f in FAMILIES {
        f.register(&mut registry, input);
    }
    registry
}

/// Register `kubelet_sentinel_build_info` alone (the page before the first evaluation).
pub(super) fn register_build_info(
    registry: &mut Registry,
    node: &str,
    version: &str,
    revision: &str,
) {
    BUILD_INFO.register_series(registry, build_series(node, version, revision));
}

/// One series `{node}` with value `v`.
fn node_value(i: &MetricsInput, v: f64) -> Vec<Series> {
    vec![(labels(&[("node", i.node)]), v)]
}

fn control_status(i: &MetricsInput) -> Vec<Series> {
    let mut out = Vec::new();
    for r in i.results {
        let series = |s: Status| {
            labels(&[
                ("node", i.node),
                ("control", r.id),
                ("family", r.family),
                ("severity", r.severity.as_str()),
                ("status", s.as_str()),
            ])
        };
        match i.options.control_states {
            ControlStates::Active => out.push((series(r.status), 1.0)),
            ControlStates::All => {
                out.extend(Status::ALL.map(|s| (series(s), bool_value(r.status == s))));
            }
        }
    }
    out
}

fn control_info(i: &MetricsInput) -> Vec<Series> {
    if !i.options.control_info {
        return Vec::new();
    }
    i.results
        .iter()
        .map(|r| {
            let l = labels(&[
                ("node", i.node),
                ("control", r.id),
                ("title", r.title),
                ("family", r.family),
                ("severity", r.severity.as_str()),
                ("cis", r.cis.unwrap_or("")),
            ]);
            (l, 1.0)
        })
        .collect()
}

fn node_info(i: &MetricsInput) -> Vec<Series> {
    let l = labels(&[("node", i.node), ("node_pool", i.snapshot.node_pool())]);
    vec![(l, 1.0)]
}

fn kubelet_up(i: &MetricsInput) -> Vec<Series> {
    node_value(i, bool_value(i.snapshot.kubelet.is_some()))
}

fn kubelet_info(i: &MetricsInput) -> Vec<Series> {
    let Some(k) = &i.snapshot.kubelet else {
        return Vec::new();
    };
    let l = labels(&[
        ("node", i.node),
        // `unknown`, not empty: an empty label is no label in PromQL (`{version=""}`
        // matches series without it), and a dashboard's `by (version)` would show a blank.
        (
            "version",
            k.version
                .as_deref()
                .filter(|v| !v.is_empty())
                .unwrap_or("unknown"),
        ),
        (
            "version_source",
            k.version_source.map_or("", |s| s.as_str()),
        ),
        ("config_file", k.config.config_file.as_deref().unwrap_or("")),
        ("config_dir", k.config.config_dir.as_deref().unwrap_or("")),
    ]);
    vec![(l, 1.0)]
}

fn live<'a>(i: &MetricsInput<'a>) -> Option<&'a crate::model::live::Live> {
    i.snapshot.live.as_ref()
}

fn listeners(i: &MetricsInput) -> Vec<Series> {
    let Some(Ok(ls)) = live(i).and_then(|l| l.listeners.as_ref()) else {
        return Vec::new();
    };
    ls.sockets
        .iter()
        .map(|s| {
            let (address, port) = (s.address.to_string(), s.port.to_string());
            let l = labels(&[("node", i.node), ("address", &address), ("port", &port)]);
            (l, 1.0)
        })
        .collect()
}

fn tls_versions(i: &MetricsInput) -> Vec<Series> {
    let Some(Ok(vs)) = live(i).and_then(|l| l.tls_versions.as_ref()) else {
        return Vec::new();
    };
    vs.iter()
        .map(|(v, ok)| (labels(&[("node", i.node), ("version", v)]), bool_value(*ok)))
        .collect()
}

fn anonymous(i: &MetricsInput) -> Vec<Series> {
    match live(i).and_then(|l| l.anonymous.as_ref()) {
        Some(a) => node_value(i, a.as_ref().map(|c| f64::from(*c)).unwrap_or(0.0)),
        None => Vec::new(),
    }
}

fn certificate_expiry(i: &MetricsInput) -> Vec<Series> {
    use crate::model::cert::CertSummary;
    use crate::model::snapshot::Credential;
    let mut out = Vec::new();
    let mut cert = |certificate: &str, source: &str, c: Option<&CertSummary>| {
        if let Some(c) = c {
            let l = labels(&[
                ("node", i.node),
                ("certificate", certificate),
                ("source", source),
            ]);
            out.push((l, c.not_after as f64));
        }
    };
    if let Some(Ok(h)) = live(i).and_then(|l| l.tls.as_ref()) {
        cert("serving", "live", h.cert.as_ref());
    }
    if let Some(k) = &i.snapshot.kubelet {
        cert("serving", "file", file(&k.serving_cert_file));
        if let Some(Ok(Credential::ClientCertificate { cert: c, .. })) = &k.credential {
            cert("client", "file", Some(c));
        }
        cert("client_ca", "file", file(&k.client_ca));
    }
    out
}

/// A certificate file's summary, when it was read.
fn file(
    r: &Option<crate::model::observed::Observed<crate::model::cert::CertSummary>>,
) -> Option<&crate::model::cert::CertSummary> {
    r.as_ref().and_then(|r| r.as_ref().ok())
}

fn risky_pods(i: &MetricsInput) -> Vec<Series> {
    i.risky_pods
        .iter()
        .map(|(namespace, pod, reason)| {
            let l = labels(&[
                ("node", i.node),
                ("namespace", namespace),
                ("pod", pod),
                ("reason", reason),
            ]);
            (l, 1.0)
        })
        .collect()
}

fn probe_success(i: &MetricsInput) -> Vec<Series> {
    i.snapshot
        .probes
        .iter()
        .map(|p| {
            let l = labels(&[("node", i.node), ("probe", p.name)]);
            (l, bool_value(p.success))
        })
        .collect()
}

fn probe_duration(i: &MetricsInput) -> Vec<Series> {
    if !i.options.probe_durations {
        return Vec::new();
    }
    i.snapshot
        .probes
        .iter()
        .map(|p| {
            let l = labels(&[("node", i.node), ("probe", p.name)]);
            (l, p.duration.as_secs_f64())
        })
        .collect()
}

/// The drift report (`serve`); the drift families are empty without one.
fn drift<'a>(i: &MetricsInput<'a>) -> Option<&'a DriftReport> {
    i.drift
}

fn control_drift(i: &MetricsInput) -> Vec<Series> {
    let Some(d) = drift(i) else {
        return Vec::new();
    };
    d.controls
        .iter()
        .filter_map(|(id, c)| {
            // `regressed` takes precedence: it is the drift that pages.
            let kind = match (c.regressed, c.drifted) {
                (true, _) => "regressed",
                (false, true) => "changed",
                (false, false) => return None,
            };
            let l = labels(&[("node", i.node), ("control", id), ("kind", kind)]);
            Some((l, 1.0))
        })
        .collect()
}

fn config_drift(i: &MetricsInput) -> Vec<Series> {
    match drift(i).and_then(|d| d.config_drift) {
        Some(c) => node_value(i, bool_value(c)),
        None => Vec::new(),
    }
}

fn pending_restart(i: &MetricsInput) -> Vec<Series> {
    match drift(i).and_then(|d| d.pending_restart.as_ref()) {
        Some(p) => node_value(i, bool_value(!p.is_empty())),
        None => Vec::new(),
    }
}

fn config_changes(i: &MetricsInput) -> Vec<Series> {
    let Some(c) = drift(i).and_then(|d| d.changes.as_ref()) else {
        return Vec::new();
    };
    c.kinds()
        .into_iter()
        .map(|(kind, n)| (labels(&[("node", i.node), ("kind", kind)]), n as f64))
        .collect()
}

fn baseline_timestamp(i: &MetricsInput) -> Vec<Series> {
    match drift(i).and_then(|d| d.baseline.as_ref()) {
        Some(b) => node_value(i, b.created_at),
        None => Vec::new(),
    }
}

fn baseline_info(i: &MetricsInput) -> Vec<Series> {
    match drift(i).and_then(|d| d.baseline.as_ref()) {
        Some(b) => vec![(
            labels(&[("node", i.node), ("origin", b.origin.as_str())]),
            1.0,
        )],
        None => Vec::new(),
    }
}

fn last_change(i: &MetricsInput) -> Vec<Series> {
    match drift(i).and_then(|d| d.last_change_at) {
        Some(t) => node_value(i, t),
        None => Vec::new(),
    }
}

/// The state-dir counters exist in `serve` (where the drift report has its counters).
fn serve_counter(i: &MetricsInput, n: impl Fn(&DriftReport) -> u64) -> Vec<Series> {
    match drift(i).filter(|d| d.changes.is_some()) {
        Some(d) => node_value(i, n(d) as f64),
        None => Vec::new(),
    }
}

fn state_write_errors(i: &MetricsInput) -> Vec<Series> {
    serve_counter(i, |d| d.state_write_errors)
}

fn baseline_corrupt(i: &MetricsInput) -> Vec<Series> {
    serve_counter(i, |d| d.baseline_corrupt)
}

fn last_evaluation(i: &MetricsInput) -> Vec<Series> {
    node_value(i, i.evaluated_at)
}

fn evaluation_duration(i: &MetricsInput) -> Vec<Series> {
    node_value(i, i.evaluation_duration.as_secs_f64())
}

fn build_info(i: &MetricsInput) -> Vec<Series> {
    build_series(i.node, i.build_version, i.build_revision)
}

fn build_series(node: &str, version: &str, revision: &str) -> Vec<Series> {
    let l = labels(&[("node", node), ("version", version), ("revision", revision)]);
    vec![(l, 1.0)]
}
