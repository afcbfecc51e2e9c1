//! `check --format kube-bench-json` has kube-bench's JSON shape: the same keys with the same
//! value types, recursively, as tests/data/kube-bench/output.jsonc, an example written from
//! kube-bench's structs (check/controls.go, check/check.go; each field's origin is noted
//! there). kube-bench's `omitempty` fields may be absent; nothing else may differ. The
//! counts agree with the statuses, as kube-bench's `summarize` keeps them.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use kubelet_sentinel::evaluate::benchmark::{self, BENCHMARKS};
use kubelet_sentinel::publish::report::benchmark::BenchmarkReport;
use kubelet_sentinel::publish::report::{kube_bench, Report};
use serde_json::Value;

/// kube-bench's `omitempty` fields: `Controls.DetectedVersion`, `Check.Reason`.
const OMITEMPTY: &[&str] = &["detected_version", "reason"];

fn example() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/kube-bench/output.jsonc");
    let text = std::fs::read_to_string(&path).expect("example");
    let json: String = text
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    serde_json::from_str(&json).expect("the example is JSON once its comments are gone")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Two example values merged: objects key by key (recursively), arrays concatenated, so
/// that a template has every key any example element has at any depth.
fn merge(a: Value, b: &Value) -> Value {
    match (a, b) {
        (Value::Object(mut m), Value::Object(o)) => {
            for (k, v) in o {
                let merged = match m.remove(k) {
                    Some(mine) => merge(mine, v),
                    None => v.clone(),
                };
                m.insert(k.clone(), merged);
            }
            Value::Object(m)
        }
        (Value::Array(mut x), Value::Array(y)) => {
            x.extend(y.iter().cloned());
            Value::Array(x)
        }
        (a, _) => a,
    }
}

/// The example's elements of an array merged into one template.
fn template(items: &[Value]) -> Option<Value> {
    let (first, rest) = items.split_first()?;
    Some(rest.iter().fold(first.clone(), merge))
}

/// Where `ours` differs in shape from `example`: missing or extra keys, other value types.
fn differences(ours: &Value, example: &Value, path: &str, out: &mut Vec<String>) {
    if kind(ours) != kind(example) {
        out.push(format!(
            "{path}: {} where kube-bench has {}",
            kind(ours),
            kind(example)
        ));
        return;
    }
    match (ours, example) {
        (Value::Object(o), Value::Object(e)) => {
            for k in e.keys() {
                if !o.contains_key(k) && !OMITEMPTY.contains(&k.as_str()) {
                    out.push(format!("{path}: no {k:?}"));
                }
            }
            for (k, v) in o {
                match e.get(k) {
                    Some(ev) => differences(v, ev, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}: {k:?} is not kube-bench's")),
                }
            }
        }
        (Value::Array(o), Value::Array(e)) => {
            if let Some(t) = template(e) {
                for (i, v) in o.iter().enumerate() {
                    differences(v, &t, &format!("{path}[{i}]"), out);
                }
            }
        }
        _ => {}
    }
}

fn kube_bench_json(report: &Report, id: &str) -> Value {
    let sel = benchmark::select(id, report.kubelet.version.as_deref()).expect("benchmark");
    let text = kube_bench::render(&BenchmarkReport::new(report, &sel));
    assert!(
        text.ends_with('\n') && text.lines().count() == 1,
        "one line, as kube-bench"
    );
    serde_json::from_str(&text).expect("json")
}

/// The counts are kube-bench's: each group's pass/fail/warn/info count its results'
/// statuses, each Controls' total_* its groups', Totals the Controls'.
fn assert_counts(doc: &Value, what: &str) {
    let mut totals: BTreeMap<&str, u64> = BTreeMap::new();
    for c in doc["Controls"].as_array().expect("Controls") {
        let mut section: BTreeMap<&str, u64> = BTreeMap::new();
        for g in c["tests"].as_array().expect("tests") {
            let mut group: BTreeMap<&str, u64> = BTreeMap::new();
            for r in g["results"].as_array().expect("results") {
                let key = match r["status"].as_str().expect("status") {
                    "PASS" => "pass",
                    "FAIL" => "fail",
                    "WARN" => "warn",
                    "INFO" => "info",
                    other => panic!("{what}: status {other}"),
                };
                *group.entry(key).or_default() += 1;
                assert_eq!(
                    r["test_info"][0], r["remediation"],
                    "{what}: test_info carries the remediation"
                );
            }
            for key in ["pass", "fail", "warn", "info"] {
                let n = group.get(key).copied().unwrap_or(0);
                assert_eq!(g[key].as_u64(), Some(n), "{what} {}: {key}", g["section"]);
                *section.entry(key).or_default() += n;
            }
        }
        for (key, n) in &section {
            assert_eq!(
                c[format!("total_{key}")].as_u64(),
                Some(*n),
                "{what}: total_{key}"
            );
            *totals.entry(key).or_default() += n;
        }
    }
    for (key, n) in &totals {
        assert_eq!(
            doc["Totals"][format!("total_{key}")].as_u64(),
            Some(*n),
            "{what}"
        );
    }
}

#[test]
fn the_example_follows_kube_bench_and_the_comparison_catches_a_difference() {
    let ex = example();
    assert_counts(&ex, "the example");
    let mut none = Vec::new();
    differences(&ex, &ex, "$", &mut none);
    assert!(none.is_empty(), "{none:?}");
    // A missing key, a renamed one and another type are each caught.
    let mut renamed = ex.clone();
    let r = &mut renamed["Controls"][0]["tests"][0]["results"][0];
    let v = r
        .as_object_mut()
        .expect("result")
        .remove("AuditConfig")
        .expect("key");
    r["audit_config"] = v;
    let mut found = Vec::new();
    differences(&renamed, &ex, "$", &mut found);
    assert_eq!(found.len(), 2, "{found:?}");
    let mut typed = ex.clone();
    typed["Totals"]["total_pass"] = Value::String("1".into());
    let mut found = Vec::new();
    differences(&typed, &ex, "$", &mut found);
    assert_eq!(
        found,
        ["$.Totals.total_pass: string where kube-bench has integer"]
    );
    // The omitempty fields may be absent.
    let mut omitted = ex.clone();
    omitted["Controls"][0]
        .as_object_mut()
        .expect("controls")
        .remove("detected_version");
    let mut found = Vec::new();
    differences(&omitted, &ex, "$", &mut found);
    assert!(found.is_empty(), "{found:?}");
}

#[test]
fn our_kube_bench_json_has_kube_benchs_shape_for_every_tree_and_benchmark() {
    let ex = example();
    let mut trees: Vec<Fixture> = [
        "kubeadm-hardened",
        "eks-al2023",
        "gke",
        "aks",
        "no-kubelet",
        "misconfigured",
    ]
    .iter()
    .map(|n| Fixture::load(n))
    .collect();
    trees.push(Fixture::load_from(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node"),
        "examples/node",
    ));
    for fx in trees {
        let r = fx.evaluate();
        let report = Report::new(&r.snapshot, r.results, Duration::from_millis(5));
        for id in BENCHMARKS.iter().map(|b| b.id).chain(["auto"]) {
            let what = format!("{} in {id}", fx.name);
            let doc = kube_bench_json(&report, id);
            let mut found = Vec::new();
            differences(&doc, &ex, "$", &mut found);
            assert!(found.is_empty(), "{what}:\n{}", found.join("\n"));
            assert_counts(&doc, &what);
            let c = &doc["Controls"][0];
            assert_eq!(c["node_type"], "node", "{what}");
            if id != "auto" {
                assert_eq!(c["version"], id, "{what}");
            }
            for g in c["tests"].as_array().expect("tests") {
                for t in g["results"].as_array().expect("results") {
                    assert!(
                        !t["reason"].as_str().unwrap_or("").is_empty(),
                        "{what} {}: every result says why",
                        t["test_number"]
                    );
                }
            }
        }
    }
}

/// On a tree without a kubelet every control is unknown: no item may pass, and the
/// kube-proxy items (no kube-proxy there either, and no proof of its absence) are warnings
/// that say so.
#[test]
fn without_a_kubelet_nothing_passes() {
    let r = Fixture::load("no-kubelet").evaluate();
    let report = Report::new(&r.snapshot, r.results, Duration::from_millis(5));
    let doc = kube_bench_json(&report, "cis-1.12");
    assert_eq!(doc["Totals"]["total_pass"], 0, "{doc}");
    let results: Vec<&Value> = doc["Controls"][0]["tests"]
        .as_array()
        .expect("tests")
        .iter()
        .flat_map(|g| g["results"].as_array().expect("results"))
        .collect();
    let proxy = results
        .iter()
        .find(|t| t["test_number"] == "4.3.1")
        .expect("4.3.1");
    assert_eq!(proxy["status"], "WARN");
    let reason = proxy["reason"].as_str().expect("reason");
    assert!(
        reason.starts_with("unknown: ") && reason.contains("not proof of absence"),
        "{reason}"
    );
}
