//! The report as a terminal table, coloured or plain.

use std::fmt::Write as _;

use super::{display_or_dash, Report};
use crate::evaluate::{Severity, Status};
use crate::publish::drift::DriftReport;

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
pub fn render(report: &Report, colour: bool) -> String {
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
    let mut line = format!(
        "baseline {} ({}): {drifted} drifted, {regressed} regressed",
        crate::model::time::format_utc(crate::model::time::whole_seconds(b.created_at)),
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
