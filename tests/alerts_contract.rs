//! Contracts of the alert rules (alerts/kubelet-sentinel.rules.yaml, the single source):
//! every alert has its runbook and points at it, every control of the catalogue has its
//! remediation in the control runbook, every metric and label the rules select exists, and
//! the PrometheusRule and the chart's copy are exactly what scripts/gen-prometheusrule.sh
//! generates. promtool checks the rules themselves (scripts/check-alerts.sh).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::metrics;
use common::promql::selectors;
use kubelet_sentinel::evaluate::catalogue;
use serde_json::Value;

const SOURCE: &str = "alerts/kubelet-sentinel.rules.yaml";
const MANIFEST: &str = "manifests/prometheusrule.yaml";
const CHART_COPY: &str = "charts/kubelet-sentinel/files/kubelet-sentinel.rules.yaml";
const GENERATOR: &str = "scripts/gen-prometheusrule.sh";
const RUNBOOKS: &str = "docs/runbooks";
const CONTROL_RUNBOOK: &str = "docs/runbooks/controls.md";
const RUNBOOK_BASE: &str =
    "https://github.com/kubelet-sentinel/kubelet-sentinel/blob/main/docs/runbooks/";

fn path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(path(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn yaml(rel: &str) -> Value {
    serde_saphyr::from_str(&read(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// One alerting rule of the source.
struct Alert {
    name: String,
    expr: String,
    rule: Value,
}

impl Alert {
    fn annotation(&self, key: &str) -> &str {
        self.rule["annotations"][key]
            .as_str()
            .unwrap_or_else(|| panic!("{}: no annotation {key}", self.name))
    }
}

fn alerts() -> Vec<Alert> {
    let doc = yaml(SOURCE);
    let groups = doc["groups"].as_array().expect("groups");
    let mut out = Vec::new();
    for g in groups {
        for r in g["rules"].as_array().expect("rules") {
            if let Some(name) = r["alert"].as_str() {
                out.push(Alert {
                    name: name.to_string(),
                    expr: r["expr"].as_str().expect("expr").to_string(),
                    rule: r.clone(),
                });
            }
        }
    }
    assert!(!out.is_empty(), "{SOURCE} has no alerting rules");
    out
}

/// Alerts about one control of a node (they name it and link the control runbook): their
/// expression selects a per-control family without pinning one control.
fn is_per_control(a: &Alert) -> bool {
    let per_control = [
        "kubelet_sentinel_control_status",
        "kubelet_sentinel_control_regression",
        "kubelet_sentinel_control_drift",
    ];
    per_control.iter().any(|m| a.expr.contains(m)) && !a.expr.contains("control=\"")
}

#[test]
fn every_alert_is_well_formed() {
    for a in alerts() {
        let n = &a.name;
        assert!(
            n.starts_with("KubeletSentinel")
                && n.chars().all(|c| c.is_ascii_alphanumeric())
                && n.chars().nth(15).is_some_and(|c| c.is_ascii_uppercase()),
            "{n}: alert names are CamelCase with the KubeletSentinel prefix"
        );
        assert!(a.rule["for"].as_str().is_some(), "{n}: no `for:`");
        let sev = a.rule["labels"]["severity"].as_str().unwrap_or("");
        assert!(
            ["critical", "warning", "info"].contains(&sev),
            "{n}: severity {sev:?} is not critical | warning | info"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(!a.annotation(key).trim().is_empty(), "{n}: empty {key}");
        }
        // Every alert about a node names it (the fleet-wide absent() has no node).
        if !a.expr.trim_start().starts_with("absent(") {
            assert!(
                a.annotation("description").contains("$labels.node"),
                "{n}: the description does not name the node"
            );
        }
        if is_per_control(&a) {
            for key in ["summary", "description"] {
                assert!(
                    a.annotation(key).contains("$labels.control"),
                    "{n}: the {key} does not name the control"
                );
            }
        }
    }
}

#[test]
fn every_alert_has_its_runbook() {
    let names: BTreeSet<String> = alerts().into_iter().map(|a| a.name).collect();
    for a in alerts() {
        let n = &a.name;
        let file = format!("{RUNBOOKS}/{n}.md");
        assert!(path(&file).is_file(), "{n}: no runbook {file}");
        assert_eq!(
            a.annotation("runbook_url"),
            format!("{RUNBOOK_BASE}{n}.md"),
            "{n}: runbook_url does not point at its runbook"
        );
        let text = read(&file);
        assert!(
            text.starts_with(&format!("# {n}\n")),
            "{file}: the runbook's title is not the alert's name"
        );
        if is_per_control(&a) {
            assert!(
                text.contains("controls.md"),
                "{file}: a per-control alert's runbook links the control runbook"
            );
        }
        // Every runbook link in the annotations leads to a file that exists.
        for key in ["summary", "description", "runbook_url"] {
            for link in a.annotation(key).split_whitespace() {
                if let Some(rest) = link.strip_prefix(RUNBOOK_BASE) {
                    let file = rest.split('#').next().unwrap_or(rest);
                    assert!(
                        path(&format!("{RUNBOOKS}/{file}")).is_file(),
                        "{n}: {key} links {link}, which does not exist"
                    );
                }
            }
        }
    }
    // And no runbook for an alert that does not exist (a rename must move its runbook).
    for entry in std::fs::read_dir(path(RUNBOOKS)).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = file.strip_suffix(".md") {
            if stem != "README" && stem != "controls" {
                assert!(
                    names.contains(stem),
                    "{RUNBOOKS}/{file}: no alert of that name in {SOURCE}"
                );
            }
        }
    }
}

#[test]
fn every_control_has_its_remediation_in_the_control_runbook() {
    let text = read(CONTROL_RUNBOOK);
    // Sections: "### <control id>" up to the next heading.
    let mut sections: BTreeMap<String, String> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_code = false;
    for line in text.lines() {
        // Headings outside code blocks (shell comments are not headings).
        if line.starts_with("```") {
            in_code = !in_code;
        } else if !in_code {
            if let Some(id) = line.strip_prefix("### ") {
                current = Some(id.trim().to_string());
                sections.insert(id.trim().to_string(), String::new());
            } else if line.starts_with('#') && !line.starts_with("####") {
                current = None;
            }
        }
        if let Some(id) = &current {
            let s = sections.get_mut(id).unwrap();
            s.push_str(line);
            s.push('\n');
        }
    }
    let ids: BTreeSet<&str> = catalogue().iter().map(|c| c.id).collect();
    for c in catalogue() {
        let section = sections
            .get(c.id)
            .unwrap_or_else(|| panic!("{CONTROL_RUNBOOK}: no `### {}` section", c.id));
        assert!(
            section.contains(&format!("Remediation: {}", c.remediation)),
            "{CONTROL_RUNBOOK}, {}: the remediation is not the catalogue's (src/evaluate/); \
             copy it from `kubelet-sentinel check --format json`",
            c.id
        );
        assert!(
            section.contains(c.severity.as_str()) && section.contains(c.family.as_str()),
            "{CONTROL_RUNBOOK}, {}: family or default severity missing",
            c.id
        );
    }
    for id in sections.keys() {
        assert!(
            ids.contains(id.as_str()),
            "{CONTROL_RUNBOOK}: section for unknown control {id}"
        );
    }
}

/// Metric families and their labels: the golden exposition (every series and its labels)
/// plus the docs/metrics.md's Metrics table (families such as the drift gauges that the golden run
/// does not show), plus `up` for the agent-health rules; every one with the target labels.
fn known_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let target = ["job", "instance", "namespace", "pod", "node"];
    let mut known = metrics::known_families();
    known.entry("up".to_string()).or_default();
    for labels in known.values_mut() {
        labels.extend(target.iter().map(std::string::ToString::to_string));
    }
    known
}

#[test]
fn every_metric_and_label_the_rules_select_exists() {
    let known = known_metrics();
    for a in alerts() {
        let found = selectors(&a.expr).unwrap_or_else(|e| panic!("{}: {e}", a.name));
        assert!(
            !found.is_empty(),
            "{}: no metric found in its expression",
            a.name
        );
        for s in found {
            let metric = &s.metric;
            let Some(metric_labels) = known.get(metric) else {
                panic!(
                    "{}: metric {metric} is neither in tests/golden/metrics.prom nor in \
                     docs/metrics.md's Metrics table",
                    a.name
                );
            };
            for l in s.labels() {
                assert!(
                    metric_labels.contains(l),
                    "{}: {metric} has no label {l} (known: {metric_labels:?})",
                    a.name
                );
            }
        }
    }
}

fn generated(what: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(path(GENERATOR))
        .arg("--stdout")
        .args(what)
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "{GENERATOR} --stdout {what:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_prometheusrule_and_the_chart_copy_are_generated_from_the_source() {
    let fix = format!("run: bash {GENERATOR}");
    assert!(
        read(MANIFEST) == generated(&[]),
        "{MANIFEST} is not what {GENERATOR} generates from {SOURCE}; {fix}"
    );
    assert!(
        read(CHART_COPY) == generated(&["chart"]),
        "{CHART_COPY} is not what {GENERATOR} generates from {SOURCE}; {fix}"
    );
    // And the text transform keeps the rules intact, parsed back.
    let source = yaml(SOURCE);
    let manifest = yaml(MANIFEST);
    assert_eq!(manifest["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(manifest["kind"], "PrometheusRule");
    assert_eq!(manifest["metadata"]["name"], "kubelet-sentinel");
    assert_eq!(manifest["metadata"]["namespace"], "kubelet-sentinel");
    assert_eq!(
        manifest["metadata"]["labels"]["app.kubernetes.io/name"],
        "kubelet-sentinel"
    );
    assert_eq!(manifest["spec"]["groups"], source["groups"]);
    assert_eq!(manifest["spec"].as_object().unwrap().len(), 1);
    let chart = yaml(CHART_COPY);
    assert_eq!(
        chart, source,
        "{CHART_COPY} parses differently from {SOURCE}"
    );
    for text in [read(MANIFEST), read(CHART_COPY)] {
        assert!(text.starts_with(&format!(
            "# generated from {SOURCE} by {GENERATOR}; do not edit\n"
        )));
    }
}
