//! `check --benchmark`: the report in a benchmark's terms. Each item of the benchmark's
//! node section with its id, title, PASS/FAIL/WARN/INFO, the evidence behind it (every
//! backing control's observed value, its source and its reason) and the remediation; as a
//! table in kube-bench's layout or as JSON (docs/benchmark.schema.json).

use super::Report;
use crate::evaluate::benchmark::{
    self, Assessed, Benchmark, Coverage, GroupResult, ItemResult, Selection, State, Totals,
};
use crate::evaluate::ControlResult;

/// The version of the benchmark JSON's shape (`schema_version`, docs/benchmark.schema.json).
pub const BENCHMARK_SCHEMA_VERSION: u32 = 1;

/// How the benchmark was chosen.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SelectionInfo {
    /// `flag` or `auto`.
    pub by: &'static str,
    /// The managed platform the kubelet's version named (`eks`, `gke`), when it chose the
    /// benchmark.
    pub platform: Option<String>,
    /// Why, in one line.
    pub why: String,
}

/// One evaluation in a benchmark's terms.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchmarkReport {
    /// The version of this JSON's shape ([`BENCHMARK_SCHEMA_VERSION`]).
    pub schema_version: u32,
    /// The node's name.
    pub node: String,
    /// Unix time (seconds) when the evaluation started.
    pub evaluated_at: f64,
    /// The kubelet's version, when known.
    pub kubelet_version: Option<String>,
    /// The benchmark (its header: id, name, Kubernetes minors, section, source).
    pub benchmark: &'static Benchmark,
    /// How it was chosen.
    pub selection: SelectionInfo,
    /// Every group of its node section, with every item.
    pub groups: Vec<GroupResult>,
    /// Counts per state over every item.
    pub totals: Totals,
}

impl BenchmarkReport {
    /// The report's controls scored against the selected benchmark.
    pub fn new(report: &Report, selection: &Selection) -> BenchmarkReport {
        let results: Vec<ControlResult> =
            report.controls.iter().map(|c| c.result.clone()).collect();
        let Assessed {
            benchmark,
            groups,
            totals,
        } = benchmark::assess(selection.benchmark, &results);
        BenchmarkReport {
            schema_version: BENCHMARK_SCHEMA_VERSION,
            node: report.node.clone(),
            evaluated_at: report.evaluated_at,
            kubelet_version: report.kubelet.version.clone(),
            benchmark,
            selection: SelectionInfo {
                by: selection.by,
                platform: selection.platform.clone(),
                why: selection.why.clone(),
            },
            groups,
            totals,
        }
    }

    /// Every item, in order.
    pub fn items(&self) -> impl Iterator<Item = &ItemResult> {
        self.groups.iter().flat_map(|g| g.items.iter())
    }
}

/// The benchmark report as pretty-printed JSON.
pub fn render_json(report: &BenchmarkReport) -> String {
    super::json::text(report, true)
}

fn state_tag(s: State, colour: bool) -> String {
    let tag = format!("[{}]", s.as_str());
    if !colour {
        return tag;
    }
    let code = match s {
        State::Pass => "32",
        State::Fail => "31",
        State::Warn => "33",
        State::Info => "34",
    };
    format!("\x1b[{code}m{tag}\x1b[0m")
}

/// The benchmark report as text, in kube-bench's layout: a `[STATE] id title` line per
/// item (here followed by why, the evidence with its source, and how our judgement differs
/// from kube-bench's where it does), then the remediations of every item that is not PASS
/// or INFO, then the totals.
pub fn render_table(report: &BenchmarkReport, colour: bool) -> String {
    use std::fmt::Write;
    let info = state_tag(State::Info, colour);
    let mut out = String::new();
    let b = &report.benchmark;
    let _ = writeln!(
        out,
        "{info} {} {} — {} ({}, Kubernetes {})",
        b.section, b.text, b.name, b.id, b.kubernetes
    );
    let _ = writeln!(
        out,
        "{info} node {}, kubelet {}; benchmark chosen by {}: {}",
        report.node,
        report
            .kubelet_version
            .as_deref()
            .unwrap_or("version unknown"),
        report.selection.by,
        report.selection.why
    );
    for g in &report.groups {
        let _ = writeln!(out, "{info} {} {}", g.id, g.text);
        for i in &g.items {
            let _ = writeln!(out, "{} {} {}", state_tag(i.state, colour), i.id, i.title);
            let _ = writeln!(out, "       {}", i.reason);
            for e in &i.evidence {
                let observed = if e.observed.is_empty() {
                    "(nothing observed)"
                } else {
                    &e.observed
                };
                let source = if e.source.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", e.source)
                };
                let _ = writeln!(
                    out,
                    "       {} {}: {observed}{source}; expected {}",
                    e.control,
                    e.status.as_str(),
                    e.expected
                );
            }
            if let Some(note) = i.note {
                let _ = writeln!(out, "       note: {note}");
            }
            if i.coverage == Coverage::Stricter && i.state == State::Pass {
                let _ = writeln!(out, "       (our control is stricter than this item)");
            }
        }
    }
    let todo: Vec<&ItemResult> = report
        .items()
        .filter(|i| matches!(i.state, State::Fail | State::Warn))
        .collect();
    if !todo.is_empty() {
        let _ = writeln!(out, "\n== Remediations node ==");
        for i in todo {
            let _ = writeln!(out, "{} {}", i.id, i.remediation);
        }
    }
    let t = report.totals;
    let _ = writeln!(out, "\n== Summary node ==");
    let _ = writeln!(out, "{} checks PASS", t.pass);
    let _ = writeln!(out, "{} checks FAIL", t.fail);
    let _ = writeln!(out, "{} checks WARN", t.warn);
    let _ = writeln!(out, "{} checks INFO", t.info);
    out
}

#[cfg(test)]
#[path = "benchmark_tests.rs"]
mod tests;
