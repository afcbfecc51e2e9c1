//! The metric families this crate exports and their labels, as the contracts know them:
//! the golden exposition (`tests/golden/metrics.prom`, every series and its labels) and the
//! docs/metrics.md's "## Metrics" table (families such as the drift gauges that the golden run does
//! not show). Shared by the alert-rule, dashboard and documentation contracts.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use kubelet_sentinel::model::exposition::{parse_line, samples, Line};

pub const GOLDEN: &str = "tests/golden/metrics.prom";

/// Series a default install does not export, which no alert rule, recording rule or
/// dashboard query may read: `kubelet_sentinel_control_regression` is gone
/// (`kubelet_sentinel_control_drift{kind="regressed"}` says it), and
/// `kubelet_sentinel_control_info` exists only with `--metrics-control-info` (titles and
/// CIS references are in docs/controls.md, which the node dashboard links per control).
pub const NOT_ON_A_DEFAULT_INSTALL: [&str; 2] = [
    "kubelet_sentinel_control_regression",
    "kubelet_sentinel_control_info",
];

fn read(rel: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(rel))
        .unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Family name -> label names of every sample line of a Prometheus text exposition
/// (comments and blank lines skipped; label values may hold commas, braces and escaped
/// quotes), read with the library's reader (`model::exposition`). A malformed line fails
/// the test.
pub fn exposition_families(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text.lines() {
        match parse_line(line) {
            Ok(Line::Sample(s)) => out
                .entry(s.name.to_string())
                .or_default()
                .extend(s.labels.iter().map(|(k, _)| k.to_string())),
            Ok(_) => {}
            Err(e) => panic!("not an exposition line ({e}): {line:?}"),
        }
    }
    out
}

/// The value of the first sample `name` whose labels include every `(label, value)` of
/// `labels` (other labels may follow), in a scraped exposition.
pub fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .find(|s| s.name == name && s.has_labels(labels))
        .map(|s| s.value)
}

/// One row of the docs/metrics.md's Metrics table.
#[derive(Debug)]
pub struct ReadmeMetric {
    /// As the table spells it (wire names: counters end in `_total`, info metrics in
    /// `_info`; see [`ReadmeMetric::wire_name`]).
    pub family: String,
    /// The type cell: `gauge`, `counter`, `gauge (info)`, `gauge (StateSet)`.
    pub kind: String,
    /// The label names of the labels cell: `a, b`, or `a` (`value`, …), `b` (…) where the
    /// parenthesised values are not labels.
    pub labels: Vec<String>,
}

impl ReadmeMetric {
    /// The name on the wire: `_total` for a counter, `_info` for an info metric.
    pub fn wire_name(&self) -> String {
        let mut name = self.family.clone();
        if self.kind.starts_with("counter") && !name.ends_with("_total") {
            name.push_str("_total");
        }
        if self.kind.contains("(info)") && !name.ends_with("_info") {
            name.push_str("_info");
        }
        name
    }
}

/// The label names of a Metrics-table labels cell: the names before any parenthesis.
fn label_names(cell: &str) -> Vec<String> {
    let mut depth = 0;
    let mut names = String::new();
    for ch in cell.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ if depth == 0 => names.push(ch),
            _ => {}
        }
    }
    names
        .split([',', '`', ' '])
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// Each row of the docs/metrics.md's "## Metrics" table (up to the next `## ` heading).
pub fn readme_metrics() -> Vec<ReadmeMetric> {
    let readme = read("docs/metrics.md");
    let section = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("docs/metrics.md has a ## Metrics section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let rows: Vec<ReadmeMetric> = section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            assert!(
                cells.len() >= 5,
                "docs/metrics.md Metrics table: short row {l:?}"
            );
            ReadmeMetric {
                family: cells[1].trim_matches('`').to_string(),
                kind: cells[2].to_string(),
                labels: label_names(cells[3]),
            }
        })
        .collect();
    let ours = rows
        .iter()
        .filter(|r| r.family.starts_with("kubelet_sentinel_"))
        .count();
    assert!(
        ours >= 20,
        "docs/metrics.md's Metrics table: only {ours} kubelet_sentinel_ rows parsed ({} rows)",
        rows.len()
    );
    rows
}

/// Metric name -> its own label names (not the target labels a scrape adds), from the
/// golden exposition's samples and the docs/metrics.md's Metrics table (wire names).
pub fn known_families() -> BTreeMap<String, BTreeSet<String>> {
    // The golden file holds `<duration>` and `<timestamp>` where a run's values were
    // (tests/e2e_serve.rs `normalise`): any number reads the same families.
    let golden = read(GOLDEN)
        .replace("} <duration>\n", "} 0\n")
        .replace("} <timestamp>\n", "} 0\n");
    let mut known = exposition_families(&golden);
    for row in readme_metrics() {
        known
            .entry(row.wire_name())
            .or_default()
            .extend(row.labels.iter().cloned());
    }
    known
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_and_readme_label_cells_are_parsed() {
        let got = exposition_families(
            "# HELP a_total x\n# TYPE a_total counter\na_total{k=\"v,w=\\\"}\",l=\"\"} 1\n\nb 2\n",
        );
        let want = BTreeMap::from([
            (
                "a_total".to_string(),
                BTreeSet::from(["k".into(), "l".into()]),
            ),
            ("b".to_string(), BTreeSet::new()),
        ]);
        assert_eq!(got, want);
        let text = "# TYPE a gauge\na{k=\"x\",l=\"y\"} 1\na{k=\"z\"} 2\nab{k=\"z\"} 3\n";
        assert_eq!(sample(text, "a", &[("k", "z")]), Some(2.0));
        assert_eq!(sample(text, "a", &[]), Some(1.0));
        assert_eq!(sample(text, "a", &[("l", "y"), ("k", "x")]), Some(1.0));
        assert_eq!(sample(text, "a", &[("k", "w")]), None);
        assert_eq!(sample(text, "b", &[]), None);
        assert_eq!(
            label_names("`certificate` (`serving`, `client`), `source` (`live`, `file`)"),
            ["certificate", "source"]
        );
        assert_eq!(label_names("`a, b`"), ["a", "b"]);
        assert!(label_names("").is_empty());
    }
}
