//! The report as JUnit XML.
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

use super::{display_or_dash, Report};
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

/// The report as JUnit XML (see the module docs for the status mapping).
pub fn render(report: &Report) -> String {
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
