//! The published JSON schemas hold: every report the tests can make — of every fixture host
//! tree under tests/fixtures/, of examples/node, without a baseline and against one — is
//! valid against docs/report.schema.json, and its benchmark report in every benchmark
//! against docs/benchmark.schema.json. Both schemas are exact (`additionalProperties:
//! false`), so a field added to the report without the schema fails here.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use kubelet_sentinel::evaluate::benchmark::{self, BENCHMARKS};
use kubelet_sentinel::publish::drift::store::StateDir;
use kubelet_sentinel::publish::report::benchmark::BenchmarkReport;
use kubelet_sentinel::publish::report::{json, Report, REPORT_SCHEMA_VERSION};
use serde_json::Value;

fn schema(name: &str) -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
        "{name}: JSON Schema 2020-12"
    );
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn assert_valid(v: &jsonschema::Validator, doc: &Value, what: &str) {
    let errors: Vec<String> = v
        .iter_errors(doc)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}:\n{}", errors.join("\n"));
}

/// Every fixture host tree, and examples/node.
fn trees() -> Vec<Fixture> {
    let names = fixture_names();
    let mut all: Vec<Fixture> = names.iter().map(|n| Fixture::load(n)).collect();
    all.push(Fixture::load_from(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/node"),
        "examples/node",
    ));
    all
}

/// The report of one tree: without a baseline, and against the baseline it makes.
fn reports(fx: &Fixture) -> Vec<(String, Report)> {
    let r = fx.evaluate();
    let plain = Report::new(&r.snapshot, r.results.clone(), Duration::from_millis(12));
    let state = tempfile::tempdir().expect("state dir");
    let store = StateDir::new(state.path().to_path_buf());
    let none = kubelet_sentinel::publish::drift::assess(&store, &r.snapshot, &r.results);
    let mut out = vec![
        (format!("{} (no drift)", fx.name), plain.clone()),
        (
            format!("{} (no baseline)", fx.name),
            plain.clone().with_drift(none),
        ),
    ];
    if kubelet_sentinel::publish::drift::accept(
        &store,
        &r.snapshot,
        &r.results,
        r.snapshot.taken_at,
        false,
        "test",
    )
    .is_ok()
    {
        let drift = kubelet_sentinel::publish::drift::assess(&store, &r.snapshot, &r.results);
        assert!(
            drift.baseline.is_some(),
            "{}: the baseline was stored",
            fx.name
        );
        out.push((format!("{} (baseline)", fx.name), plain.with_drift(drift)));
    }
    out
}

#[test]
fn every_report_and_benchmark_report_matches_its_published_schema() {
    let report_schema = schema("report.schema.json");
    let benchmark_schema = schema("benchmark.schema.json");
    let mut checked = 0;
    let mut with_baseline = 0;
    for fx in trees() {
        for (what, report) in reports(&fx) {
            let doc: Value = serde_json::from_str(&json::render(&report)).expect("json");
            assert_eq!(doc["schema_version"], REPORT_SCHEMA_VERSION);
            assert_valid(&report_schema, &doc, &what);
            checked += 1;
            if doc["drift"]["baseline"].is_object() {
                with_baseline += 1;
            }
        }
        let (_, report) = reports(&fx).remove(0);
        let auto = benchmark::select("auto", report.kubelet.version.as_deref()).expect("auto");
        let flagged = BENCHMARKS
            .iter()
            .map(|b| benchmark::select(b.id, None).expect("known id"));
        for sel in flagged.chain([auto]) {
            let b = BenchmarkReport::new(&report, &sel);
            let doc: Value = serde_json::from_str(
                &kubelet_sentinel::publish::report::benchmark::render_json(&b),
            )
            .expect("json");
            assert_valid(
                &benchmark_schema,
                &doc,
                &format!("{} in {}", fx.name, sel.benchmark.id),
            );
        }
    }
    assert!(checked >= 40, "only {checked} reports");
    assert!(
        with_baseline >= 10,
        "only {with_baseline} reports with a baseline"
    );
}

#[test]
fn the_schemas_reject_what_the_report_does_not_promise() {
    let v = schema("report.schema.json");
    let fx = Fixture::load("kubeadm-hardened");
    let (_, report) = reports(&fx).remove(0);
    let good: Value = serde_json::from_str(&json::render(&report)).expect("json");
    assert_valid(&v, &good, "kubeadm-hardened");
    let mut extra = good.clone();
    extra["surprise"] = Value::Bool(true);
    assert!(!v.is_valid(&extra), "an undocumented field passes");
    let mut status = good.clone();
    status["controls"][0]["status"] = Value::String("ok".into());
    assert!(!v.is_valid(&status), "an unknown status passes");
    let mut version = good;
    version["schema_version"] = Value::from(2);
    assert!(!v.is_valid(&version), "another schema_version passes");
}
