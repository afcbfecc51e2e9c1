//! `check --format kube-bench-json`: the benchmark report in kube-bench's JSON shape, so
//! that what consumes `kube-bench --json` takes it unchanged. The field names and types are
//! kube-bench's (commit a73ce37): `OverallControls`, `Controls`, `Group` and `Summary` in
//! check/controls.go, `Check` in check/check.go, written by cmd/common.go
//! `writeJSONOutput` (with totals, kube-bench's default). Go fields without a `json` tag
//! keep their Go name (`AuditEnv`, `AuditConfig`, `IsMultiple`); `detected_version` and
//! `reason` are `omitempty`. tests/kube_bench_json.rs holds the shape to
//! tests/data/kube-bench/output.jsonc.

use serde::Serialize;

use super::benchmark::BenchmarkReport;
use crate::evaluate::benchmark::{ItemResult, State, Totals};

/// kube-bench's `OverallControls`: every `Controls` and the `Totals` over them.
#[derive(Debug, Serialize)]
pub struct Overall {
    /// One entry: the node section.
    #[serde(rename = "Controls")]
    pub controls: Vec<Controls>,
    /// The counts over every entry.
    #[serde(rename = "Totals")]
    pub totals: Summary,
}

/// kube-bench's `Summary` (`total_*`), flattened into `Controls` and alone as `Totals`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// PASS checks.
    pub total_pass: usize,
    /// FAIL checks.
    pub total_fail: usize,
    /// WARN checks.
    pub total_warn: usize,
    /// INFO checks.
    pub total_info: usize,
}

impl From<Totals> for Summary {
    fn from(t: Totals) -> Summary {
        Summary {
            total_pass: t.pass,
            total_fail: t.fail,
            total_warn: t.warn,
            total_info: t.info,
        }
    }
}

/// kube-bench's `Controls`: one benchmark section.
#[derive(Debug, Serialize)]
pub struct Controls {
    /// The section's id (`4`).
    pub id: String,
    /// The benchmark's id (`cis-1.12`), kube-bench's `version`.
    pub version: String,
    /// The kubelet's `major.minor` (kube-bench: the detected Kubernetes version), or the
    /// platform benchmark when the platform chose it; omitted when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detected_version: Option<String>,
    /// The section's title.
    pub text: String,
    /// `node`.
    pub node_type: String,
    /// The groups.
    pub tests: Vec<Group>,
    /// The counts.
    #[serde(flatten)]
    pub summary: Summary,
}

/// kube-bench's `Group`.
#[derive(Debug, Serialize)]
pub struct Group {
    /// The group's id (`4.1`).
    pub section: String,
    /// kube-bench's group type (`skip` or empty); always empty here.
    #[serde(rename = "type")]
    pub kind: String,
    /// PASS checks.
    pub pass: usize,
    /// FAIL checks.
    pub fail: usize,
    /// WARN checks.
    pub warn: usize,
    /// INFO checks.
    pub info: usize,
    /// The group's title.
    pub desc: String,
    /// The checks.
    pub results: Vec<Check>,
}

/// kube-bench's `Check`, in its field order.
#[derive(Debug, Serialize)]
pub struct Check {
    /// The item's id.
    pub test_number: String,
    /// The item's title.
    pub test_desc: String,
    /// kube-bench's audit command; here the controls that judged the item
    /// (`kubelet-sentinel control anonymous-auth-disabled`), empty when none did.
    pub audit: String,
    /// kube-bench's `audit_env` command: empty.
    #[serde(rename = "AuditEnv")]
    pub audit_env: String,
    /// kube-bench's `audit_config` command: empty.
    #[serde(rename = "AuditConfig")]
    pub audit_config: String,
    /// kube-bench's check type (`manual`, `skip` or empty): empty, as in kube-bench's node
    /// tables.
    #[serde(rename = "type")]
    pub kind: String,
    /// What to change.
    pub remediation: String,
    /// kube-bench appends the remediation here (check/controls.go `RunChecks`).
    pub test_info: Vec<String>,
    /// `PASS`, `FAIL`, `WARN` or `INFO`.
    pub status: State,
    /// The observed values with their sources (`false [config-file]`).
    pub actual_value: String,
    /// Whether the item is scored.
    pub scored: bool,
    /// kube-bench's `use_multiple_values`: false.
    #[serde(rename = "IsMultiple")]
    pub is_multiple: bool,
    /// The controls' expectations, joined with ` AND ` as kube-bench joins its tests'.
    pub expected_result: String,
    /// Why this status (kube-bench: `omitempty`; here never empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

impl Check {
    fn of(i: &ItemResult) -> Check {
        let many = i.evidence.len() > 1;
        let actual = i
            .evidence
            .iter()
            .map(|e| {
                let mut s = String::new();
                if many {
                    s.push_str(e.control);
                    s.push_str(": ");
                }
                s.push_str(&e.observed);
                if !e.source.is_empty() {
                    s.push_str(&format!(" [{}]", e.source));
                }
                s
            })
            .collect::<Vec<_>>()
            .join("; ");
        Check {
            test_number: i.id.to_string(),
            test_desc: i.title.to_string(),
            audit: if i.controls.is_empty() {
                String::new()
            } else {
                format!("kubelet-sentinel control {}", i.controls.join(", "))
            },
            audit_env: String::new(),
            audit_config: String::new(),
            kind: String::new(),
            remediation: i.remediation.to_string(),
            test_info: vec![i.remediation.to_string()],
            status: i.state,
            actual_value: actual,
            scored: i.scored,
            is_multiple: false,
            expected_result: i.expected.clone(),
            reason: i.reason.clone(),
        }
    }
}

/// The kube-bench `detected_version`: the platform benchmark when the platform chose it,
/// else the kubelet's `major.minor`.
fn detected_version(report: &BenchmarkReport) -> Option<String> {
    let version = report.kubelet_version.as_deref()?;
    if report.selection.platform.is_some() {
        return Some(report.benchmark.id.to_string());
    }
    crate::model::version::minor_of(version).map(|m| format!("1.{m}"))
}

/// The benchmark report in kube-bench's shape.
pub fn overall(report: &BenchmarkReport) -> Overall {
    let tests: Vec<Group> = report
        .groups
        .iter()
        .map(|g| Group {
            section: g.id.to_string(),
            kind: String::new(),
            pass: g.totals.pass,
            fail: g.totals.fail,
            warn: g.totals.warn,
            info: g.totals.info,
            desc: g.text.to_string(),
            results: g.items.iter().map(Check::of).collect(),
        })
        .collect();
    let summary = Summary::from(report.totals);
    Overall {
        controls: vec![Controls {
            id: report.benchmark.section.to_string(),
            version: report.benchmark.id.to_string(),
            detected_version: detected_version(report),
            text: report.benchmark.text.to_string(),
            node_type: "node".to_string(),
            tests,
            summary,
        }],
        totals: summary,
    }
}

/// The benchmark report as kube-bench's JSON (compact, one line, as kube-bench prints it).
pub fn render(report: &BenchmarkReport) -> String {
    super::json::text(&overall(report), false)
}
