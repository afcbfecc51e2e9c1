//! Contracts of the alert rules (alerts/kubelet-sentinel.rules.yaml, the single source):
//! every alert has its runbook and points at it, every control of the catalogue has its
//! remediation in the control runbook, every metric and label the rules select exists, and
//! the PrometheusRule and the chart's copy are exactly what scripts/gen-prometheusrule.sh
//! generates. promtool checks the rules themselves (scripts/check-alerts.sh).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::metrics::{self, NOT_ON_A_DEFAULT_INSTALL};
use common::promql::{selectors, shape_safe_reads};
use common::rules::{outer_grouping, recording_rules};
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
        "kubelet_sentinel_control_drift",
    ];
    per_control.iter().any(|m| a.expr.contains(m)) && !a.expr.contains("control=\"")
}

/// Fleet alerts: their expression reads recorded series only (`level:metric:operations`).
fn is_fleet(a: &Alert) -> bool {
    let found = selectors(&a.expr).unwrap_or_else(|e| panic!("{}: {e}", a.name));
    !found.is_empty() && found.iter().all(|s| s.metric.contains(':'))
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
        // Every alert about a node names it (the fleet-wide absent() has no node); a
        // fleet alert (on recorded, per-cluster series) names its cluster and a sample of
        // its nodes, from a `query`.
        if is_fleet(&a) {
            for key in ["summary", "description"] {
                assert!(
                    a.annotation(key).contains("$labels.cluster"),
                    "{n}: the {key} of a fleet alert does not name the cluster"
                );
            }
            let d = a.annotation("description");
            assert!(
                d.contains("| query") && d.contains(".Labels.node") && d.contains("lt $i 5"),
                "{n}: the description of a fleet alert does not list a sample of <= 5 nodes"
            );
        } else if !a.expr.trim_start().starts_with("absent(") {
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
    let target = ["job", "instance", "namespace", "pod", "node", "cluster"];
    let mut known = metrics::known_families();
    known.entry("up".to_string()).or_default();
    // kube-state-metrics' node list (docs/metrics/cluster/node-metrics.md of
    // kubernetes/kube-state-metrics), for the agent-missing count.
    known.insert(
        "kube_node_info".to_string(),
        [
            "kernel_version",
            "os_image",
            "container_runtime_version",
            "kubelet_version",
            "kubeproxy_version",
            "pod_cidr",
            "provider_id",
            "system_uuid",
            "internal_ip",
        ]
        .iter()
        .map(std::string::ToString::to_string)
        .collect(),
    );
    for labels in known.values_mut() {
        labels.extend(target.iter().map(std::string::ToString::to_string));
    }
    // Recorded series carry exactly their rule's grouping (no target labels).
    for r in recording_rules() {
        known.insert(r.name, r.labels);
    }
    known
}

/// Every recording rule's series are selected with the labels they have, and each rule's
/// labels can be read from its expression (an outermost `by`). The fleet group's rules
/// aggregate by `cluster` (a missing label groups as "").
#[test]
fn every_metric_and_label_the_recording_rules_select_exists() {
    let known = known_metrics();
    let rules = recording_rules();
    assert!(rules.len() >= 13, "only {} recording rules", rules.len());
    let mut names = BTreeSet::new();
    for r in &rules {
        assert!(names.insert(&r.name), "{}: recorded twice", r.name);
        let parts: Vec<&str> = r.name.split(':').collect();
        assert!(
            parts.len() == 3 && parts[1].starts_with("kubelet_sentinel_"),
            "{}: not level:kubelet_sentinel_metric:operations",
            r.name
        );
        if r.group == "kubelet-sentinel.fleet.rules" {
            assert!(r.labels.contains("cluster"), "{}: not by cluster", r.name);
            // The level names the labels: cluster_node_status -> cluster, node, status.
            let level: BTreeSet<&str> = parts[0]
                .split('_')
                .map(|w| if w == "pool" { "node_pool" } else { w })
                .filter(|w| *w != "node" || !parts[0].contains("node_pool"))
                .collect();
            for l in &level {
                assert!(
                    r.labels.contains(*l),
                    "{}: the level names {l}, the rule groups by {:?}",
                    r.name,
                    r.labels
                );
            }
        }
        for s in selectors(&r.expr).unwrap_or_else(|e| panic!("{}: {e}", r.name)) {
            let Some(labels) = known.get(&s.metric) else {
                panic!("{}: selects unknown metric {}", r.name, s.metric);
            };
            for l in s.labels() {
                assert!(
                    labels.contains(l),
                    "{}: {} has no label {l} ({labels:?})",
                    r.name,
                    s.metric
                );
            }
        }
    }
    // The grouping reader itself.
    let set = |v: &[&str]| v.iter().map(|s| (*s).to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        outer_grouping("count by (cluster) (group by (cluster, node) (x)) or on (cluster) 0 * y")
            .unwrap(),
        set(&["cluster"])
    );
    assert!(outer_grouping("max without (status) (x)").is_err());
    assert!(outer_grouping("x == 1").is_err());
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

/// Every rule of the source, alerting and recording: (its name, its expression).
fn rule_exprs() -> Vec<(String, String)> {
    let doc = yaml(SOURCE);
    let mut out = Vec::new();
    for g in doc["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            let name = r["alert"]
                .as_str()
                .or(r["record"].as_str())
                .expect("alert or record");
            out.push((
                name.to_string(),
                r["expr"].as_str().expect("expr").to_string(),
            ));
        }
    }
    out
}

#[test]
fn no_rule_reads_a_series_a_default_install_does_not_export() {
    let rules = rule_exprs();
    assert!(rules.len() >= 17, "only {} rules in {SOURCE}", rules.len());
    for (name, expr) in rules {
        for s in selectors(&expr).unwrap_or_else(|e| panic!("{name}: {e}")) {
            assert!(
                !NOT_ON_A_DEFAULT_INSTALL.contains(&s.metric.as_str()),
                "{name}: reads {}, which a default install does not export: {expr}",
                s.metric
            );
        }
    }
}

/// The agent exports `kubelet_sentinel_control_status` in two shapes (the current status
/// only, value 1, by default; every status 0 or 1 with `--metrics-control-states all`):
/// every rule reads it as `== 1` or as a `sum`, which mean the same in both
/// (`common::promql::shape_safe_reads`). promtool runs each per-control alert in both
/// shapes (alerts/tests/shapes_test.yaml).
#[test]
fn every_rule_reads_control_status_the_same_in_both_shapes() {
    let mut reads = 0;
    let mut problems = Vec::new();
    for (name, expr) in rule_exprs() {
        let found = shape_safe_reads(&expr, "kubelet_sentinel_control_status")
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for (s, ok) in found {
            reads += 1;
            if !ok {
                problems.push(format!(
                    "{name}: kubelet_sentinel_control_status{:?} is neither compared with \
                     `== 1` nor summed: {expr}",
                    s.matchers
                ));
            }
        }
    }
    assert!(
        reads >= 6,
        "only {reads} control_status selectors in {SOURCE}"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
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
