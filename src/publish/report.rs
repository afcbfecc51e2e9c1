//! The `check` command's report: one evaluation rendered as JSON, JUnit XML or a terminal
//! table, and the exit code derived from it.
//!
//! JUnit mapping (one `<testsuite>` per control family, one `<testcase>` per control):
//! - `pass` → a plain testcase; the observed value and its source are in `<system-out>`.
//! - `fail` → `<failure message="reason" type="severity">` with observed, expected, source
//!   and remediation in the body.
//! - `unknown` → `<error message="reason" type="unknown">`. An unknown control is one that
//!   *could not be checked* (the kubelet or a file could not be read), which is what JUnit's
//!   `error` means. CI systems (GitLab, Jenkins, GitHub test reporters) show errors next to
//!   failures, whereas skipped tests are typically collapsed or greyed out; an unverifiable
//!   security control should not be that easy to overlook. Whether the *pipeline* fails is
//!   still decided by the exit code (`--fail-on`), not by the XML.
//! - `not_applicable` → `<skipped message="reason"/>`.

use std::fmt::Write as _;
use std::time::Duration;

use crate::evaluate::{summarize, ControlResult, Severity, Status, Summary};
use crate::model::snapshot::{Discovery, Snapshot};
use crate::publish::drift::{ControlDrift, DriftReport};

/// What was found of the kubelet, for the report header.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct KubeletReport {
    /// The kubelet's pid, when a process was found (also for unsupported ones).
    pub pid: Option<i32>,
    pub binary: Option<String>,
    /// `kubelet`, `hyperkube`, `kubelite`.
    pub flavour: Option<String>,
    pub config_file: Option<String>,
    pub config_dir: Option<String>,
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
            flavour: k.map(|k| k.flavour.clone()),
            config_file: k.and_then(|k| k.config.config_file.clone()),
            config_dir: k.and_then(|k| k.config.config_dir.clone()),
            version: k.and_then(|k| k.version.clone()),
            version_source: k.and_then(|k| k.version_source.clone()),
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

/// One evaluation, ready to be rendered.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Report {
    pub node: String,
    /// Unix time (seconds) when the evaluation started.
    pub evaluated_at: f64,
    /// How long observation and evaluation took.
    pub duration_seconds: f64,
    pub kubelet: KubeletReport,
    pub controls: Vec<ReportControl>,
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
    pub name: &'static str,
    pub success: bool,
    pub duration_seconds: f64,
    pub error: Option<String>,
}

/// A control's result in the report, with its drift against the baseline.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReportControl {
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
    pub fn new(snapshot: &Snapshot, controls: Vec<ControlResult>, duration: Duration) -> Report {
        Report {
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

/// The exit code of `check`: 1 when a control at or above `fail_on` fails, else 0
/// (`None`: never fail). Exit code 2 ("could not run") is the caller's.
pub fn exit_code(report: &Report, fail_on: Option<Severity>) -> i32 {
    match fail_on {
        Some(threshold)
            if report
                .controls
                .iter()
                .any(|c| c.status == Status::Fail && c.severity >= threshold) =>
        {
            1
        }
        _ => 0,
    }
}

/// The report as pretty-printed JSON.
pub fn render_json(report: &Report) -> String {
    match serde_json::to_string_pretty(report) {
        Ok(mut s) => {
            s.push('\n');
            s
        }
        // Not reachable with these types; still emit valid JSON.
        Err(e) => format!(
            "{{\"error\": {}}}\n",
            serde_json::Value::String(format!("serializing the report failed: {e}"))
        ),
    }
}

// ---------------------------------------------------------------------------------------
// JUnit XML
// ---------------------------------------------------------------------------------------

/// Escape text for XML 1.0 (element content and attribute values). Characters XML 1.0
/// cannot carry at all (most C0 controls) become U+FFFD; in attributes, tabs and newlines
/// are written as character references so parsers do not normalise them to spaces.
fn xml_escape(s: &str, attribute: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' if attribute => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' if attribute => out.push_str("&#9;"),
            '\n' | '\t' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

fn attr(s: &str) -> String {
    xml_escape(s, true)
}

fn text(s: &str) -> String {
    xml_escape(s, false)
}

/// Unix seconds as an ISO 8601 UTC timestamp without fraction (`2024-05-01T12:00:00`), the
/// form JUnit's `timestamp` attribute uses.
fn iso8601(unix: f64) -> String {
    let secs = if unix.is_finite() {
        unix.floor() as i64
    } else {
        0
    };
    crate::model::time::format_utc_civil(secs)
}

fn counts<'a>(controls: impl Iterator<Item = &'a ControlResult>) -> (usize, usize, usize, usize) {
    let (mut tests, mut failures, mut errors, mut skipped) = (0, 0, 0, 0);
    for c in controls {
        tests += 1;
        match c.status {
            Status::Pass => {}
            Status::Fail => failures += 1,
            Status::Unknown => errors += 1,
            Status::NotApplicable => skipped += 1,
        }
    }
    (tests, failures, errors, skipped)
}

fn evidence(c: &ControlResult, with_remediation: bool) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "observed: {}", display_or_dash(&c.observed));
    let _ = writeln!(body, "expected: {}", display_or_dash(&c.expected));
    let _ = writeln!(body, "source: {}", display_or_dash(&c.source));
    let _ = writeln!(body, "severity: {}", c.severity.as_str());
    if let Some(cis) = c.cis {
        let _ = writeln!(body, "cis: {cis}");
    }
    if with_remediation {
        let _ = writeln!(body, "remediation: {}", c.remediation);
    }
    body
}

fn display_or_dash(s: &str) -> &str {
    if s.is_empty() {
        "-"
    } else {
        s
    }
}

/// The report as JUnit XML (see the module docs for the status mapping).
pub fn render_junit(report: &Report) -> String {
    // Families in order of first appearance (the catalogue's order).
    let mut families: Vec<&str> = Vec::new();
    for c in &report.controls {
        if !families.contains(&c.family) {
            families.push(c.family);
        }
    }
    let timestamp = iso8601(report.evaluated_at);
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let (tests, failures, errors, skipped) = counts(report.controls.iter().map(|c| &c.result));
    let _ = writeln!(
        out,
        "<testsuites name=\"kubelet-sentinel\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\" timestamp=\"{timestamp}\">",
        report.duration_seconds
    );
    for family in families {
        let members = || report.controls.iter().filter(move |c| c.family == family);
        let (tests, failures, errors, skipped) = counts(members().map(|c| &c.result));
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"0\" timestamp=\"{timestamp}\" hostname=\"{}\">",
            attr(family),
            attr(&report.node)
        );
        out.push_str("    <properties>\n");
        let mut property = |name: &str, value: &str| {
            let _ = writeln!(
                out,
                "      <property name=\"{}\" value=\"{}\"/>",
                attr(name),
                attr(value)
            );
        };
        property("node", &report.node);
        property("kubelet.discovery", &report.kubelet.discovery);
        if let Some(pid) = report.kubelet.pid {
            property("kubelet.pid", &pid.to_string());
        }
        if let Some(f) = &report.kubelet.config_file {
            property("kubelet.config_file", f);
        }
        if let Some(v) = &report.kubelet.version {
            property("kubelet.version", v);
        }
        out.push_str("    </properties>\n");
        for c in members() {
            let _ = write!(
                out,
                "    <testcase classname=\"kubelet-sentinel.{}\" name=\"{}\" time=\"0\"",
                attr(c.family),
                attr(&format!("{}: {}", c.id, c.title))
            );
            match c.status {
                Status::Pass => {
                    let _ = write!(
                        out,
                        ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                        text(&evidence(c, false))
                    );
                }
                Status::Fail => {
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    </testcase>\n",
                        attr(&c.reason),
                        c.severity.as_str(),
                        text(&evidence(c, true))
                    );
                }
                Status::Unknown => {
                    let _ = write!(
                        out,
                        ">\n      <error message=\"{}\" type=\"unknown\">{}</error>\n    </testcase>\n",
                        attr(&c.reason),
                        text(&evidence(c, true))
                    );
                }
                Status::NotApplicable => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        attr(&format!("not applicable: {}", c.reason))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

// ---------------------------------------------------------------------------------------
// Terminal table
// ---------------------------------------------------------------------------------------

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";

/// Column caps keep a row within ~110 columns.
const ID_MAX: usize = 40;
const OBSERVED_MAX: usize = 28;
const SOURCE_MAX: usize = 24;
/// Reason lines are wrapped to this width (after the indent).
const REASON_WIDTH: usize = 96;
const REASON_INDENT: &str = "        ";

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Unknown => "UNKNOWN",
        Status::NotApplicable => "N/A",
    }
}

fn status_colour(s: Status) -> &'static str {
    match s {
        Status::Pass => GREEN,
        Status::Fail => RED,
        Status::Unknown => YELLOW,
        Status::NotApplicable => DIM,
    }
}

fn severity_colour(s: Severity) -> &'static str {
    match s {
        Severity::Critical => MAGENTA,
        Severity::High => RED,
        Severity::Medium => YELLOW,
        Severity::Low => "",
    }
}

/// Painter: wraps text in an ANSI colour only when colours are on.
struct Paint {
    on: bool,
}

impl Paint {
    fn paint(&self, colour: &str, s: &str) -> String {
        if self.on && !colour.is_empty() {
            format!("{colour}{s}{RESET}")
        } else {
            s.to_string()
        }
    }
}

/// One line, control characters made visible, truncated to `max` chars with `…`.
fn cell(s: &str, max: usize) -> String {
    let one_line: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() <= max {
        one_line
    } else {
        let mut t: String = one_line.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    let mut out = s.to_string();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

/// Greedy word wrap.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in s.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// The report as a table for an 80–120 column terminal: a header (node, kubelet), one row
/// per control (status, severity, id, observed, source), the reason under each row that
/// did not pass, and a summary line. ANSI colours only when `colour`.
pub fn render_table(report: &Report, colour: bool) -> String {
    let p = Paint { on: colour };
    let mut out = String::new();

    let _ = writeln!(
        out,
        "{} node {}",
        p.paint(BOLD, "kubelet-sentinel check:"),
        p.paint(BOLD, &cell(&report.node, 80))
    );
    let k = &report.kubelet;
    match (&k.pid, k.discovery.as_str()) {
        (Some(pid), "found") if k.reason.is_none() => {
            let mut parts = vec![format!("pid {pid}")];
            if let Some(b) = &k.binary {
                parts.push(cell(b, 60));
            }
            if let Some(v) = &k.version {
                parts.push(format!("version {}", cell(v, 40)));
            }
            let _ = writeln!(out, "kubelet: {}", parts.join(", "));
            let _ = writeln!(
                out,
                "config:  {}",
                k.config_file
                    .as_deref()
                    .map(|f| cell(f, 100))
                    .unwrap_or_else(|| "none (flags only)".to_string())
            );
            if let Some(d) = &k.config_dir {
                let _ = writeln!(out, "drop-ins: {}", cell(d, 100));
            }
        }
        _ => {
            let what = match (k.discovery.as_str(), k.pid) {
                ("unsupported", Some(pid)) => format!("unsupported (pid {pid})"),
                ("found", Some(pid)) => format!("pid {pid}, not readable"),
                (d, _) => d.replace('_', " "),
            };
            let _ = writeln!(
                out,
                "kubelet: {}",
                p.paint(
                    YELLOW,
                    &format!("{what}: {}", k.reason.as_deref().unwrap_or("-"))
                )
            );
        }
    }
    out.push('\n');

    let id_w = report
        .controls
        .iter()
        .map(|c| c.id.chars().count().min(ID_MAX))
        .max()
        .unwrap_or(0)
        .max("CONTROL".len());
    let obs_w = report
        .controls
        .iter()
        .map(|c| cell(&c.observed, OBSERVED_MAX).chars().count())
        .max()
        .unwrap_or(0)
        .max("OBSERVED".len());
    let _ = writeln!(
        out,
        "{}",
        p.paint(
            BOLD,
            format!(
                "{}  {}  {}  {}  SOURCE",
                pad("STATUS", 7),
                pad("SEVERITY", 8),
                pad("CONTROL", id_w),
                pad("OBSERVED", obs_w)
            )
            .trim_end()
        )
    );
    for c in &report.controls {
        let row = format!(
            "{}  {}  {}  {}  {}",
            p.paint(status_colour(c.status), &pad(status_label(c.status), 7)),
            p.paint(severity_colour(c.severity), &pad(c.severity.as_str(), 8)),
            pad(&cell(c.id, ID_MAX), id_w),
            pad(&cell(display_or_dash(&c.observed), OBSERVED_MAX), obs_w),
            cell(display_or_dash(&c.source), SOURCE_MAX),
        );
        let _ = writeln!(out, "{}", row.trim_end());
        // The reason, unless it is the "no kubelet" reason the header already shows.
        if c.status != Status::Pass
            && !c.reason.is_empty()
            && k.reason.as_deref() != Some(c.reason.as_str())
        {
            for (i, line) in wrap(&cell(&c.reason, 2000), REASON_WIDTH)
                .iter()
                .enumerate()
            {
                let lead = if i == 0 { "↳ " } else { "  " };
                let _ = writeln!(
                    out,
                    "{REASON_INDENT}{}",
                    p.paint(DIM, &format!("{lead}{line}"))
                );
            }
        }
        if let Some(d) = c.drift.as_ref().filter(|d| d.drifted) {
            let (label, colour) = if d.regressed {
                ("regressed", RED)
            } else {
                ("drifted", YELLOW)
            };
            let from = match &d.baseline_observed {
                Some(v) => format!(
                    "baseline {} {}",
                    d.baseline_status.as_str(),
                    cell(display_or_dash(v), OBSERVED_MAX)
                ),
                None => "held to pass by the policy baseline".to_string(),
            };
            let _ = writeln!(
                out,
                "{REASON_INDENT}{}",
                p.paint(colour, &format!("↳ {label}: {from}"))
            );
        }
    }
    out.push('\n');

    let s = &report.summary;
    let total = s.pass + s.fail + s.unknown + s.not_applicable;
    let _ = writeln!(
        out,
        "{total} controls: {}, {}, {}, {} not applicable ({:.2}s)",
        p.paint(GREEN, &format!("{} pass", s.pass)),
        p.paint(
            if s.fail > 0 { RED } else { "" },
            &format!("{} fail", s.fail)
        ),
        p.paint(
            if s.unknown > 0 { YELLOW } else { "" },
            &format!("{} unknown", s.unknown)
        ),
        s.not_applicable,
        report.duration_seconds
    );
    if let Some(d) = &report.drift {
        if let Some(line) = drift_line(d) {
            let _ = writeln!(out, "{line}");
        }
    }
    out
}

/// One line on the node's drift for the table (`None` when there is nothing to say).
fn drift_line(d: &DriftReport) -> Option<String> {
    let Some(b) = &d.baseline else {
        return d
            .baseline_error
            .as_ref()
            .map(|e| format!("baseline unusable: {e}"));
    };
    let drifted = d.controls.iter().filter(|(_, c)| c.drifted).count();
    let regressed = d.controls.iter().filter(|(_, c)| c.regressed).count();
    #[allow(clippy::cast_possible_truncation)]
    let mut line = format!(
        "baseline {} ({}): {drifted} drifted, {regressed} regressed",
        crate::model::time::format_utc(b.created_at as i64),
        b.origin.as_str()
    );
    match d.config_drift {
        Some(true) => line.push_str("; effective configuration changed"),
        Some(false) => line.push_str("; effective configuration unchanged"),
        None => {}
    }
    if let Some(p) = d.pending_restart.as_ref().filter(|p| !p.is_empty()) {
        line.push_str(&format!(
            "; changed since the kubelet started (pending restart): {}",
            p.join(", ")
        ));
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::ProbeRecord;

    #[test]
    fn drift_in_json_and_table() {
        use crate::publish::drift::{BaselineInfo, Origin};
        let controls = vec![
            result(
                "read-only-port-disabled",
                "api_access",
                Severity::Critical,
                Status::Fail,
            ),
            result("tls-min-version", "tls", Severity::High, Status::Pass),
        ];
        let drift = DriftReport {
            baseline: Some(BaselineInfo {
                created_at: 1_700_000_000.0,
                origin: Origin::FirstObservation,
                path: "/var/lib/kubelet-sentinel/baseline.json".into(),
            }),
            controls: vec![(
                "read-only-port-disabled",
                ControlDrift {
                    drifted: true,
                    regressed: true,
                    baseline_status: Status::Pass,
                    baseline_observed: Some("0".into()),
                },
            )],
            config_drift: Some(true),
            pending_restart: Some(vec!["/var/lib/kubelet/config.yaml".into()]),
            ..Default::default()
        };
        let r = Report::new(&snapshot(), controls, Duration::from_millis(5)).with_drift(drift);
        let v: serde_json::Value = serde_json::from_str(&render_json(&r)).unwrap();
        let c = &v["controls"][0];
        assert_eq!(c["id"], "read-only-port-disabled");
        assert_eq!(c["drift"]["drifted"], true);
        assert_eq!(c["drift"]["regressed"], true);
        assert_eq!(c["drift"]["baseline_observed"], "0");
        assert_eq!(c["drift"]["baseline_status"], "pass");
        assert!(v["controls"][1]["drift"].is_null());
        assert_eq!(v["drift"]["baseline"]["created_at"], 1_700_000_000.0);
        assert_eq!(v["drift"]["baseline"]["origin"], "first_observation");
        assert_eq!(v["drift"]["config_drift"], true);
        assert_eq!(
            v["drift"]["pending_restart"][0],
            "/var/lib/kubelet/config.yaml"
        );
        let table = render_table(&r, false);
        assert!(table.contains("↳ regressed: baseline pass 0"), "{table}");
        assert!(
            table.contains("baseline 2023-11-14T22:13:20Z (first_observation): 1 drifted, 1 regressed; effective configuration changed; changed since the kubelet started (pending restart): /var/lib/kubelet/config.yaml"),
            "{table}"
        );
    }

    fn result(
        id: &'static str,
        family: &'static str,
        severity: Severity,
        status: Status,
    ) -> ControlResult {
        ControlResult {
            id,
            title: "Title <with> \"xml\" & 'chars'",
            family,
            severity,
            cis: Some("4.2.1"),
            practice: "practice",
            status,
            observed: "true".into(),
            expected: "false".into(),
            source: "config-file".into(),
            reason: "anonymous requests are <allowed> & \"served\"\nsecond line".into(),
            remediation: "Set authentication.anonymous.enabled: false",
        }
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            node: "node-1".into(),
            taken_at: 1_714_564_800.75, // 2024-05-01T12:00:00Z
            discovery: Discovery::NotFound {
                reason: "no kubelet process in /proc".into(),
            },
            kubelet: None,
            apiserver: None,
            live: None,
            cluster: None,
            running_config: None,
            probes: vec![ProbeRecord {
                name: "process",
                success: true,
                duration: Duration::from_millis(1),
                error: None,
            }],
        }
    }

    fn report() -> Report {
        Report::new(
            &snapshot(),
            vec![
                result(
                    "anonymous-auth-disabled",
                    "authn_authz",
                    Severity::Critical,
                    Status::Fail,
                ),
                result(
                    "authorization-webhook",
                    "authn_authz",
                    Severity::High,
                    Status::Pass,
                ),
                result(
                    "read-only-port-disabled",
                    "api_access",
                    Severity::Medium,
                    Status::Unknown,
                ),
                result(
                    "audit-policy",
                    "audit",
                    Severity::Low,
                    Status::NotApplicable,
                ),
                result("low-fail", "api_access", Severity::Low, Status::Fail),
            ],
            Duration::from_millis(42),
        )
    }

    #[test]
    fn json_shape() {
        let v: serde_json::Value = serde_json::from_str(&render_json(&report())).unwrap();
        assert_eq!(v["node"], "node-1");
        for key in [
            "pid",
            "binary",
            "config_file",
            "config_dir",
            "version",
            "discovery",
            "reason",
        ] {
            assert!(v["kubelet"].get(key).is_some(), "kubelet.{key}");
        }
        assert_eq!(v["kubelet"]["discovery"], "not_found");
        let c = &v["controls"][0];
        for key in [
            "id",
            "title",
            "family",
            "severity",
            "cis",
            "status",
            "observed",
            "expected",
            "source",
            "reason",
            "remediation",
        ] {
            assert!(c.get(key).is_some(), "controls[].{key}");
        }
        assert_eq!(c["status"], "fail");
        assert_eq!(c["severity"], "critical");
        assert_eq!(v["controls"][3]["status"], "not_applicable");
        assert_eq!(
            v["summary"],
            serde_json::json!({"pass": 1, "fail": 2, "unknown": 1, "not_applicable": 1})
        );
        assert_eq!(
            v["probes"],
            serde_json::json!([{"name": "process", "success": true, "duration_seconds": 0.001, "error": null}])
        );
    }

    #[test]
    fn exit_codes() {
        let r = report();
        assert_eq!(exit_code(&r, None), 0);
        assert_eq!(exit_code(&r, Some(Severity::Low)), 1);
        assert_eq!(exit_code(&r, Some(Severity::Critical)), 1);
        let mut only_low = r.clone();
        only_low
            .controls
            .retain(|c| c.id != "anonymous-auth-disabled");
        assert_eq!(exit_code(&only_low, Some(Severity::Medium)), 0);
        assert_eq!(exit_code(&only_low, Some(Severity::Low)), 1);
        // Unknown never fails the exit code.
        only_low.controls.retain(|c| c.status != Status::Fail);
        assert_eq!(exit_code(&only_low, Some(Severity::Low)), 0);
    }

    #[test]
    fn junit_structure_and_escaping() {
        let xml = render_junit(&report());
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
        assert!(xml.contains("tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"1\""));
        assert!(xml.contains("timestamp=\"2024-05-01T12:00:00\""));
        assert_eq!(xml.matches("<testsuite ").count(), 3);
        let authn = xml.find("<testsuite name=\"authn_authz\"").unwrap();
        let api = xml.find("<testsuite name=\"api_access\"").unwrap();
        assert!(authn < api, "families in order of first appearance");
        assert!(xml.contains(
            "classname=\"kubelet-sentinel.authn_authz\" name=\"anonymous-auth-disabled: Title &lt;with&gt; &quot;xml&quot; &amp; &apos;chars&apos;\""
        ));
        assert!(xml.contains(
            "<failure message=\"anonymous requests are &lt;allowed&gt; &amp; &quot;served&quot;&#10;second line\" type=\"critical\">"
        ));
        assert!(xml.contains("<error message=\"anonymous requests"));
        assert!(xml.contains("<skipped message=\"not applicable: anonymous"));
        assert!(xml.contains("remediation: Set authentication.anonymous.enabled: false"));
        // Balanced tags.
        assert_eq!(
            xml.matches("<testcase ").count(),
            xml.matches("</testcase>").count()
        );
        assert_eq!(
            xml.matches("<testsuite ").count(),
            xml.matches("</testsuite>").count()
        );
        // No raw markup characters in attribute values or text.
        assert!(!xml.contains("<allowed>"));
    }

    #[test]
    fn xml_escape_controls() {
        assert_eq!(xml_escape("a\u{1}b\tc", false), "a\u{FFFD}b\tc");
        assert_eq!(xml_escape("a\tb\nc", true), "a&#9;b&#10;c");
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(0.0), "1970-01-01T00:00:00");
        assert_eq!(iso8601(951_782_400.0), "2000-02-29T00:00:00");
        assert_eq!(iso8601(1_714_564_800.75), "2024-05-01T12:00:00");
        assert_eq!(iso8601(-1.0), "1969-12-31T23:59:59");
    }

    #[test]
    fn table_plain_and_coloured() {
        let r = report();
        let plain = render_table(&r, false);
        assert!(!plain.contains('\x1b'));
        assert!(plain.contains("node node-1"));
        assert!(plain.contains("kubelet: not found: no kubelet process in /proc"));
        assert!(plain.contains("STATUS   SEVERITY  CONTROL"));
        assert!(plain.contains("FAIL     critical  anonymous-auth-disabled"));
        assert!(plain.contains("↳ anonymous requests are <allowed> & \"served\" second line"));
        assert!(plain.contains("5 controls: 1 pass, 2 fail, 1 unknown, 1 not applicable"));
        // Passing rows have no reason line.
        let pass_row = plain.lines().position(|l| l.starts_with("PASS")).unwrap();
        assert!(!plain.lines().nth(pass_row + 1).unwrap().contains('↳'));
        for line in plain.lines() {
            assert!(line.chars().count() <= 120, "too wide: {line}");
        }
        let coloured = render_table(&r, true);
        assert!(coloured.contains("\x1b[31mFAIL"));
        assert!(coloured.contains("\x1b[32mPASS"));
    }

    #[test]
    fn table_truncates_and_wraps() {
        let mut r = report();
        r.controls[0].observed = "x".repeat(200);
        r.controls[0].reason = "word ".repeat(100);
        let plain = render_table(&r, false);
        for line in plain.lines() {
            assert!(line.chars().count() <= 120, "too wide: {line}");
        }
        assert!(plain.contains('…'));
    }
}
