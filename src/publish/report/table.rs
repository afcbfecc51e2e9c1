//! The report as a table for a person: failures first, grouped by severity; the reason
//! under each control that did not pass; a last line with the counts and the exit
//! decision. Coloured or plain; cut to the terminal's width only on a terminal.

use std::fmt::Write as _;

use super::{display_or_dash, Gate, Report, Verdict};
use crate::evaluate::{Severity, Status};
use crate::publish::drift::DriftReport;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const DIM: &str = "\x1b[2m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const MAGENTA: &str = "\x1b[35m";

/// Column caps keep a row within ~110 columns on a terminal (see [`TableOptions::wide`]).
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

/// One line, control characters made visible, truncated to `max` chars with `…`
/// (`usize::MAX`: whole).
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

/// How the table is drawn.
#[derive(Debug, Clone, Default)]
pub struct TableOptions {
    /// ANSI colours.
    pub colour: bool,
    /// Every value whole; `false`: observed values, sources and ids cut (with `…`) to fit
    /// an 80–120 column terminal. `check` cuts only when stdout is a terminal and
    /// `--wide` is not given.
    pub wide: bool,
    /// Only the controls of these statuses (`--only`); `None`: every control. The last
    /// line counts every control either way.
    pub only: Option<Vec<Status>>,
    /// The exit status's rules, for the last line's exit decision and the no-kubelet
    /// banner.
    pub gate: Gate,
}

/// The order of the rows: failures first, then unknown, pass, not applicable; within a
/// status, critical to low; then the catalogue's order.
fn status_rank(s: Status) -> u8 {
    match s {
        Status::Fail => 0,
        Status::Unknown => 1,
        Status::Pass => 2,
        Status::NotApplicable => 3,
    }
}

/// The report as a table: a header (node, kubelet), one row per control (status,
/// severity, id, observed, source) in `status_rank` order, the reason under each row
/// that did not pass, the drift line, and the summary line with the exit decision.
pub fn render(report: &Report, opts: &TableOptions) -> String {
    let p = Paint { on: opts.colour };
    let cap = |max: usize| if opts.wide { usize::MAX } else { max };
    let mut out = String::new();

    let _ = writeln!(
        out,
        "{} node {}",
        p.paint(BOLD, "kubelet-sentinel check:"),
        p.paint(BOLD, &cell(&report.node, cap(80)))
    );
    let k = &report.kubelet;
    match (&k.pid, k.discovery.as_str()) {
        (Some(pid), "found") if k.reason.is_none() => {
            let mut parts = vec![format!("pid {pid}")];
            if let Some(b) = &k.binary {
                parts.push(cell(b, cap(60)));
            }
            if let Some(v) = &k.version {
                parts.push(format!("version {}", cell(v, cap(40))));
            }
            let _ = writeln!(out, "kubelet: {}", parts.join(", "));
            let _ = writeln!(
                out,
                "config:  {}",
                k.config_file
                    .as_deref()
                    .map(|f| cell(f, cap(100)))
                    .unwrap_or_else(|| "none (flags only)".to_string())
            );
            if let Some(d) = &k.config_dir {
                let _ = writeln!(out, "drop-ins: {}", cell(d, cap(100)));
            }
        }
        _ => {
            let what = match (k.discovery.as_str(), k.pid) {
                ("unsupported", Some(pid)) => format!("unsupported (pid {pid})"),
                ("found", Some(pid)) => format!("pid {pid}, not readable"),
                (d, _) => d.replace('_', " "),
            };
            let why = format!("{what}: {}", k.reason.as_deref().unwrap_or("-"));
            if opts.gate.require_kubelet {
                // Loud: nothing below says anything about this host's kubelet.
                let _ = writeln!(
                    out,
                    "kubelet: {}",
                    p.paint(
                        &format!("{BOLD}{RED}"),
                        &format!("NO USABLE KUBELET ({why})")
                    )
                );
                for line in [
                    "Every kubelet control below is unknown: this host's kubelet was not checked.",
                    "Run as root on a node whose kubelet runs, point --host-root at a node's root,",
                    "or give --kubelet-pid; with --require-kubelet=false the controls decide the exit.",
                ] {
                    let _ = writeln!(out, "         {}", p.paint(RED, line));
                }
            } else {
                let _ = writeln!(out, "kubelet: {}", p.paint(YELLOW, &why));
            }
        }
    }
    out.push('\n');

    let mut rows: Vec<&super::ReportControl> = report
        .controls
        .iter()
        .filter(|c| {
            opts.only
                .as_ref()
                .is_none_or(|only| only.contains(&c.status))
        })
        .collect();
    // Stable: the catalogue's order within a status and severity.
    rows.sort_by_key(|c| (status_rank(c.status), std::cmp::Reverse(c.severity)));

    // Column widths fit the values up to each column's cap; a longer value (whole, off a
    // terminal or with --wide) overflows its own row only.
    let id_w = rows
        .iter()
        .map(|c| c.id.chars().count().min(ID_MAX))
        .max()
        .unwrap_or(0)
        .max("CONTROL".len());
    let obs_w = rows
        .iter()
        .map(|c| {
            display_or_dash(&c.observed)
                .chars()
                .count()
                .min(OBSERVED_MAX)
        })
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
    for c in &rows {
        let row = format!(
            "{}  {}  {}  {}  {}",
            p.paint(status_colour(c.status), &pad(status_label(c.status), 7)),
            p.paint(severity_colour(c.severity), &pad(c.severity.as_str(), 8)),
            pad(&cell(c.id, cap(ID_MAX)), id_w),
            pad(
                &cell(display_or_dash(&c.observed), cap(OBSERVED_MAX)),
                obs_w
            ),
            cell(display_or_dash(&c.source), cap(SOURCE_MAX)),
        );
        let _ = writeln!(out, "{}", row.trim_end());
        // The reason, unless it is the "no kubelet" reason the header already shows.
        if c.status != Status::Pass
            && !c.reason.is_empty()
            && k.reason.as_deref() != Some(c.reason.as_str())
        {
            for (i, line) in wrap(&cell(&c.reason, cap(2000)), REASON_WIDTH)
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
                    cell(display_or_dash(v), cap(OBSERVED_MAX))
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
    if rows.len() < report.controls.len() {
        let _ = writeln!(
            out,
            "{}",
            p.paint(
                DIM,
                &format!(
                    "({} of {} controls shown: --only)",
                    rows.len(),
                    report.controls.len()
                )
            )
        );
    }
    out.push('\n');

    if let Some(d) = &report.drift {
        if let Some(line) = drift_line(d) {
            let _ = writeln!(out, "{line}");
        }
    }
    let _ = writeln!(out, "{}", summary_line(report, &opts.gate, &p));
    out
}

/// The last line: counts per status, then the exit decision and why.
fn summary_line(report: &Report, gate: &Gate, p: &Paint) -> String {
    let s = &report.summary;
    let total = s.pass + s.fail + s.unknown + s.not_applicable;
    let counts = format!(
        "{total} controls: {}, {}, {}, {} not applicable",
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
    );
    let threshold = gate.fail_on.map(|t| t.as_str());
    let counted_words = if gate.fail_on_unknown {
        "fail or are unknown"
    } else {
        "fail"
    };
    let verdict = gate.verdict(report);
    let decision = match (&verdict, threshold) {
        (Verdict::NoKubelet(_), _) => p.paint(
            RED,
            "exit 3: no usable kubelet on this host (--require-kubelet)",
        ),
        (Verdict::Failed(ids), Some(t)) => p.paint(
            RED,
            &format!(
                "exit 1: {} at or above --fail-on {t} {counted_words}",
                plural(ids.len(), "control")
            ),
        ),
        (Verdict::Failed(_) | Verdict::Ok, None) => "exit 0: --fail-on never".to_string(),
        (Verdict::Ok, Some(t)) => {
            let mut d = format!("exit 0: nothing at or above --fail-on {t} {counted_words}");
            let unknown_counted_out = report
                .controls
                .iter()
                .filter(|c| {
                    c.status == Status::Unknown && gate.fail_on.is_some_and(|t| c.severity >= t)
                })
                .count();
            if !gate.fail_on_unknown && unknown_counted_out > 0 {
                d.push_str(&format!(
                    " ({} at or above it not counted: see --fail-on-unknown)",
                    plural(unknown_counted_out, "unknown control")
                ));
            }
            d
        }
    };
    format!("{counts} ({:.2}s); {decision}", report.duration_seconds)
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
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
    let taken = format!(
        "baseline {} ({})",
        crate::model::time::format_utc(crate::model::time::whole_seconds(b.created_at)),
        b.origin.as_str()
    );
    // A baseline that was read but not compared (it belongs to another node): say why,
    // instead of "0 drifted".
    if let Some(e) = &d.baseline_error {
        return Some(format!("{taken}: not compared: {e}"));
    }
    let mut line = format!("{taken}: {drifted} drifted, {regressed} regressed");
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
