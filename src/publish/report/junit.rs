//! The report as JUnit XML.
//!
//! JUnit mapping (one `<testsuite>` per control family, one `<testcase>` per control). A
//! `<failure>` is exactly a control that counts towards `check`'s exit status 1
//! ([`Gate::counts`]: failed, or unknown with `--fail-on-unknown`, at or above
//! `--fail-on`), so a CI system that reads the XML and one that reads the exit status
//! agree:
//! - `pass` → a plain testcase; the observed value and its source are in `<system-out>`.
//! - counted (`fail`, or `unknown` with `--fail-on-unknown`, at or above `--fail-on`) →
//!   `<failure message="reason" type="severity">` (`type="unknown"` for an unknown one)
//!   with observed, expected, source and remediation in the body.
//! - not counted (a failure below `--fail-on`, an unknown without `--fail-on-unknown`) →
//!   `<skipped message="fail (low), not counted: below --fail-on high: reason">` with the
//!   evidence in `<system-out>`: not a pass, and not a failure. CI systems show skipped
//!   tests apart from passing ones; `<error>` would make them mark the run failed (Jenkins
//!   "unstable", GitLab "failed") while the exit status says 0.
//! - `not_applicable` → `<skipped message="not applicable: reason"/>`.
//! - with `--require-kubelet` (the default) a testsuite `kubelet` holds one testcase,
//!   `kubelet-found`: passing, or `<error type="no_kubelet">` when there is no usable
//!   kubelet — exactly when the exit status is 3.
//!
//! So: exit status 3 ⇔ `errors > 0`; otherwise 1 ⇔ `failures > 0`; otherwise 0.

use std::fmt::Write as _;

use super::{display_or_dash, Gate, Report};
use crate::evaluate::{ControlResult, Status};

/// Escape text for XML 1.0 (element content and attribute values). Characters XML 1.0
/// cannot carry at all (most C0 controls) become U+FFFD; in attributes, tabs and newlines
/// are written as character references so parsers do not normalise them to spaces.
pub(super) fn xml_escape(s: &str, attribute: bool) -> String {
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
pub(super) fn iso8601(unix: f64) -> String {
    let secs = crate::model::time::whole_seconds(unix);
    crate::model::time::format_utc_civil(secs)
}

/// How one control is written: `<failure>`, `<skipped>` (with why) or a plain testcase.
enum Case {
    Pass,
    Failure,
    Skipped(String),
}

fn case(c: &ControlResult, gate: &Gate) -> Case {
    if gate.counts(c) {
        return Case::Failure;
    }
    let below = |status: &str| match gate.fail_on {
        Some(t) => format!(
            "{status} ({}), not counted: below --fail-on {}: {}",
            c.severity.as_str(),
            t.as_str(),
            c.reason
        ),
        None => format!(
            "{status} ({}), not counted: --fail-on never: {}",
            c.severity.as_str(),
            c.reason
        ),
    };
    match c.status {
        Status::Pass => Case::Pass,
        Status::Fail => Case::Skipped(below("fail")),
        Status::Unknown if gate.fail_on_unknown => Case::Skipped(below("unknown")),
        Status::Unknown => Case::Skipped(format!(
            "unknown ({}), not counted without --fail-on-unknown: {}",
            c.severity.as_str(),
            c.reason
        )),
        Status::NotApplicable => Case::Skipped(format!("not applicable: {}", c.reason)),
    }
}

/// `(tests, failures, skipped)` of some controls.
fn counts<'a>(
    controls: impl Iterator<Item = &'a ControlResult>,
    gate: &Gate,
) -> (usize, usize, usize) {
    let (mut tests, mut failures, mut skipped) = (0, 0, 0);
    for c in controls {
        tests += 1;
        match case(c, gate) {
            Case::Pass => {}
            Case::Failure => failures += 1,
            Case::Skipped(_) => skipped += 1,
        }
    }
    (tests, failures, skipped)
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

/// The report as JUnit XML, its `<failure>`s those of `gate` (see the module docs for
/// the mapping).
pub fn render(report: &Report, gate: &Gate) -> String {
    // Families in order of first appearance (the catalogue's order).
    let mut families: Vec<&str> = Vec::new();
    for c in &report.controls {
        if !families.contains(&c.family) {
            families.push(c.family);
        }
    }
    let timestamp = iso8601(report.evaluated_at);
    let missing = gate.kubelet_missing(report);
    let kubelet_case = usize::from(gate.require_kubelet);
    let errors = usize::from(missing.is_some());
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let (tests, failures, skipped) = counts(report.controls.iter().map(|c| &c.result), gate);
    let _ = writeln!(
        out,
        "<testsuites name=\"kubelet-sentinel\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"{skipped}\" time=\"{:.3}\" timestamp=\"{timestamp}\">",
        tests + kubelet_case,
        report.duration_seconds
    );
    let properties = |out: &mut String| {
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
        property("fail_on", gate.fail_on.map_or("never", |s| s.as_str()));
        property(
            "fail_on_unknown",
            if gate.fail_on_unknown {
                "true"
            } else {
                "false"
            },
        );
        out.push_str("    </properties>\n");
    };
    if gate.require_kubelet {
        let _ = writeln!(
            out,
            "  <testsuite name=\"kubelet\" tests=\"1\" failures=\"0\" errors=\"{errors}\" skipped=\"0\" time=\"0\" timestamp=\"{timestamp}\" hostname=\"{}\">",
            attr(&report.node)
        );
        properties(&mut out);
        out.push_str("    <testcase classname=\"kubelet-sentinel.kubelet\" name=\"kubelet-found: a usable kubelet on the host\" time=\"0\"");
        match missing {
            Some(why) => {
                let _ = write!(
                    out,
                    ">\n      <error message=\"{}\" type=\"no_kubelet\">{}</error>\n    </testcase>\n",
                    attr(&format!("no usable kubelet: {why}")),
                    text(&format!(
                        "discovery: {}\nevery kubelet control is unknown; --require-kubelet=false reports such a host without this error\n",
                        report.kubelet.discovery
                    ))
                );
            }
            None => out.push_str("/>\n"),
        }
        out.push_str("  </testsuite>\n");
    }
    for family in families {
        let members = || report.controls.iter().filter(move |c| c.family == family);
        let (tests, failures, skipped) = counts(members().map(|c| &c.result), gate);
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"0\" timestamp=\"{timestamp}\" hostname=\"{}\">",
            attr(family),
            attr(&report.node)
        );
        properties(&mut out);
        for c in members() {
            let _ = write!(
                out,
                "    <testcase classname=\"kubelet-sentinel.{}\" name=\"{}\" time=\"0\"",
                attr(c.family),
                attr(&format!("{}: {}", c.id, c.title))
            );
            match case(c, gate) {
                Case::Pass => {
                    let _ = write!(
                        out,
                        ">\n      <system-out>{}</system-out>\n    </testcase>\n",
                        text(&evidence(c, false))
                    );
                }
                Case::Failure => {
                    let kind = match c.status {
                        Status::Unknown => "unknown",
                        _ => c.severity.as_str(),
                    };
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"{kind}\">{}</failure>\n    </testcase>\n",
                        attr(&c.reason),
                        text(&evidence(c, true))
                    );
                }
                Case::Skipped(why) if c.status == Status::NotApplicable => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        attr(&why)
                    );
                }
                Case::Skipped(why) => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n      <system-out>{}</system-out>\n    </testcase>\n",
                        attr(&why),
                        text(&evidence(c, true))
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
