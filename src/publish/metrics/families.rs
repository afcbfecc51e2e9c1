//! The metric families of one evaluation: each family's name, help text, type and series,
//! made from the snapshot, the control results and the drift report.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

use super::ordered::{bool_value, labels, F64Gauge, Ordered};
use super::{Labels, MetricsInput};
use crate::evaluate::Status;
use crate::publish::drift::DriftReport;

const HELP_CONTROL_STATUS: &str = "Status of each kubelet hardening control, one series per possible status (pass, fail, unknown, not_applicable): the current status is 1, the others 0";
const HELP_CONTROL_INFO: &str =
    "Catalogue metadata of each evaluated control (title, family, severity, CIS Kubernetes Benchmark reference); always 1";
const HELP_KUBELET_UP: &str =
    "1 when a kubelet process was found on the node and its configuration read, else 0 (the kubelet's controls are then unknown)";
const HELP_KUBELET_INFO: &str =
    "The kubelet that was evaluated: version (unknown when it could not be read), config file and config drop-in directory (empty when not set); present only when kubelet_up is 1";
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
pub(super) fn register_build_info(
    registry: &mut Registry,
    node: &str,
    version: &str,
    revision: &str,
) {
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
        |certificate: &str, source: &str, c: Option<&crate::model::cert::CertSummary>| {
            if let Some(c) = c {
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
