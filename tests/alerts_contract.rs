//! Contracts of the alert rules (alerts/kubelet-sentinel.rules.yaml, the single source):
//! every alert has its runbook and points at it, every control of the catalogue has its
//! remediation in the control runbook, every metric and label the rules select exists, and
//! the PrometheusRule and the chart's copy are exactly what scripts/gen-prometheusrule.sh
//! generates. promtool checks the rules themselves (scripts/check-alerts.sh).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

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
/// plus the README's Metrics table (families such as the drift gauges that the golden run
/// does not show), plus `up` for the agent-health rules.
fn known_metrics() -> BTreeMap<String, BTreeSet<String>> {
    let target = ["job", "instance", "namespace", "pod", "node"];
    let mut known: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut add = |name: &str, labels: &mut dyn Iterator<Item = String>| {
        let set = known.entry(name.to_string()).or_default();
        set.extend(target.iter().map(|s| s.to_string()));
        set.extend(labels);
    };
    for line in read("tests/golden/metrics.prom").lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = &line[..name_end];
        let mut labels = Vec::new();
        if let Some(body) = line[name_end..]
            .strip_prefix('{')
            .and_then(|r| r.split_once('}'))
        {
            for pair in body.0.split("\",") {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.push(k.trim().to_string());
                }
            }
        }
        add(name, &mut labels.into_iter());
    }
    let readme = read("README.md");
    let metrics = readme
        .split("\n## Metrics\n")
        .nth(1)
        .expect("README has a ## Metrics section");
    let metrics = metrics.split("\n## ").next().unwrap();
    let mut rows = 0;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("| `kubelet_sentinel_"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let name = cells[1].trim_matches('`');
        // Labels cell: `a, b` or `a` (`value`, ...), `b` (...): every backticked word.
        let mut labels = Vec::new();
        for (i, chunk) in cells[3].split('`').enumerate() {
            if i % 2 == 1 {
                labels.extend(chunk.split(',').map(|l| l.trim().to_string()));
            }
        }
        add(name, &mut labels.into_iter());
        rows += 1;
    }
    assert!(
        rows >= 20,
        "README's Metrics table: only {rows} rows parsed"
    );
    add("up", &mut std::iter::empty());
    known
}

/// Strip PromQL string literals, keeping the quotes.
fn strip_strings(expr: &str) -> String {
    let mut out = String::new();
    let mut in_str = false;
    let mut escaped = false;
    for ch in expr.chars() {
        if in_str {
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_str = false;
                out.push('"');
            }
        } else {
            if ch == '"' {
                in_str = true;
            }
            out.push(ch);
        }
    }
    out
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The metric selectors of an expression: (metric name, label names of its matchers).
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    // Operators, modifiers, and the aggregations (`max by (x) (...)` is not a call).
    const KEYWORDS: &[&str] = &[
        "and",
        "or",
        "unless",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "offset",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    const LABEL_LISTS: &[&str] = &[
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let s: Vec<char> = strip_strings(expr).chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut last_ident = String::new();
    while i < s.len() {
        let c = s[i];
        if c == '[' {
            // A range or subquery duration.
            while i < s.len() && s[i] != ']' {
                i += 1;
            }
        } else if c.is_ascii_digit() {
            // A number or a duration (5m): not a name.
            while i < s.len() && (is_ident(s[i]) || s[i] == '.') {
                i += 1;
            }
            continue;
        } else if c == '(' && LABEL_LISTS.contains(&last_ident.as_str()) {
            // by (...), on (...), group_left (...): label names, not metrics.
            while i < s.len() && s[i] != ')' {
                i += 1;
            }
            last_ident.clear();
        } else if is_ident_start(c) {
            let start = i;
            while i < s.len() && is_ident(s[i]) {
                i += 1;
            }
            let word: String = s[start..i].iter().collect();
            let mut j = i;
            while j < s.len() && s[j].is_whitespace() {
                j += 1;
            }
            let is_call = j < s.len() && s[j] == '(' && !LABEL_LISTS.contains(&word.as_str());
            if !KEYWORDS.contains(&word.as_str()) && !is_call {
                let mut labels = Vec::new();
                if j < s.len() && s[j] == '{' {
                    let end = (j..s.len()).find(|&k| s[k] == '}').expect("unclosed {");
                    let body: String = s[j + 1..end].iter().collect();
                    for m in body.split(',') {
                        let m = m.trim();
                        if !m.is_empty() {
                            let name: String = m.chars().take_while(|&c| is_ident(c)).collect();
                            labels.push(name);
                        }
                    }
                    i = end + 1;
                }
                out.push((word.clone(), labels));
            }
            last_ident = word;
            continue;
        } else if !c.is_whitespace() {
            last_ident.clear();
        }
        i += 1;
    }
    out
}

#[test]
fn the_selector_parser_finds_metrics_and_labels() {
    let got = selectors(
        "(max by (node) (rate(a_total{x=\"y,z\", w!~\"a|b\"}[5m])) - time() > 3 * 86400) \
         unless on (node) group_left (t) up{job=\"j\"} == 0",
    );
    assert_eq!(
        got,
        vec![
            (
                "a_total".to_string(),
                vec!["x".to_string(), "w".to_string()]
            ),
            ("up".to_string(), vec!["job".to_string()]),
        ]
    );
}

#[test]
fn every_metric_and_label_the_rules_select_exists() {
    let known = known_metrics();
    for a in alerts() {
        let found = selectors(&a.expr);
        assert!(
            !found.is_empty(),
            "{}: no metric found in its expression",
            a.name
        );
        for (metric, labels) in found {
            let Some(metric_labels) = known.get(&metric) else {
                panic!(
                    "{}: metric {metric} is neither in tests/golden/metrics.prom nor in \
                     README's Metrics table",
                    a.name
                );
            };
            for l in labels {
                assert!(
                    metric_labels.contains(&l),
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
