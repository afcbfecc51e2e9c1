use super::*;
use crate::evaluate::Severity;
use crate::evaluate::Status;
use crate::model::exposition::{parse_line, Line, Sample};
use crate::model::snapshot::{Discovery, ProbeRecord};
use prometheus_client::metrics::counter::Counter;
use std::collections::{BTreeMap, BTreeSet};

fn result(id: &'static str, status: Status, cis: Option<&'static str>) -> ControlResult {
    ControlResult {
        id,
        title: "A \"quoted\" title with a back\\slash",
        family: "api_access",
        severity: Severity::High,
        cis,
        practice: "p",
        status,
        observed: "o".into(),
        expected: "e".into(),
        source: "flag".into(),
        reason: "r".into(),
        remediation: "fix",
    }
}

fn snapshot(node: &str) -> Snapshot {
    Snapshot {
        node: node.to_string(),
        taken_at: 1_700_000_000.5,
        discovery: Discovery::NotFound {
            reason: "no kubelet process".into(),
        },
        kubelet: None,
        apiserver: None,
        live: None,
        cluster: None,
        running_config: None,
        kube_proxy: None,
        probes: vec![
            ProbeRecord {
                name: "process",
                success: true,
                duration: Duration::from_millis(3),
                error: None,
            },
            ProbeRecord {
                name: "config",
                success: false,
                duration: Duration::from_micros(250),
                error: Some("boom".into()),
            },
        ],
    }
}

fn exposition(node: &str, results: &[ControlResult]) -> Exposition {
    exposition_with(&snapshot(node), results, ExpositionOptions::default(), None)
}

/// Every control series: the full StateSet and `control_info`.
const EVERYTHING: ExpositionOptions = ExpositionOptions {
    control_states: ControlStates::All,
    control_info: true,
    probe_durations: true,
};

fn exposition_with(
    snap: &Snapshot,
    results: &[ControlResult],
    options: ExpositionOptions,
    drift: Option<&DriftReport>,
) -> Exposition {
    render(&MetricsInput {
        node: &snap.node,
        snapshot: snap,
        results,
        evaluation_duration: Duration::from_millis(12),
        evaluated_at: 1_700_000_001.25,
        build_version: "0.1.0",
        build_revision: "abc123",
        drift,
        risky_pods: &[],
        options,
    })
}

fn results() -> Vec<ControlResult> {
    vec![
        result("anonymous-auth-disabled", Status::Fail, Some("4.2.1")),
        result("authorization-webhook", Status::Pass, Some("4.2.2")),
        result("read-only-port-disabled", Status::Unknown, None),
        result("audit-policy", Status::NotApplicable, None),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Text004,
    OpenMetrics,
}

/// A small line-format checker for both text formats on top of the one reader
/// (model/exposition.rs): the agent writes one space between tokens and no timestamps,
/// families declared once and not interleaved, sample names matching their family's
/// type, no duplicate series, `# EOF`/`# UNIT` only in OpenMetrics.
fn check(body: &str, format: Format) -> Result<Vec<Sample<'_>>, String> {
    if !body.is_empty() && !body.ends_with('\n') {
        return Err("body does not end with a newline".into());
    }
    let mut samples = Vec::new();
    let mut declared: BTreeSet<String> = BTreeSet::new();
    let mut current: Option<(String, String)> = None; // (family, type)
    let mut series: BTreeSet<String> = BTreeSet::new();
    let mut eof = false;
    for line in body.lines() {
        if eof {
            return Err("content after # EOF".into());
        }
        let parsed = parse_line(line).map_err(|e| format!("{e}: {line:?}"))?;
        if written(line, &parsed) != line {
            return Err(format!("not as the encoder writes it: {line:?}"));
        }
        match parsed {
            Line::Eof => {
                if format != Format::OpenMetrics {
                    return Err("# EOF in the 0.0.4 format".into());
                }
                eof = true;
            }
            Line::Help { family, text } => {
                if text.is_empty() {
                    return Err(format!("HELP without text: {line:?}"));
                }
                if !declared.insert(family.to_string()) {
                    return Err(format!("family {family} declared twice"));
                }
                current = Some((family.to_string(), String::new()));
            }
            Line::Type { family, kind } => {
                let allowed: &[&str] = match format {
                    Format::Text004 => &["counter", "gauge", "histogram", "summary", "untyped"],
                    Format::OpenMetrics => &[
                        "counter",
                        "gauge",
                        "histogram",
                        "gaugehistogram",
                        "stateset",
                        "info",
                        "summary",
                        "unknown",
                    ],
                };
                if !allowed.contains(&kind) {
                    return Err(format!("bad type {kind}"));
                }
                match &mut current {
                    Some((fam, t)) if fam == family && t.is_empty() => *t = kind.to_string(),
                    _ => return Err(format!("TYPE without matching HELP: {line}")),
                }
            }
            Line::Unit { family, unit } => {
                if format != Format::OpenMetrics {
                    return Err("# UNIT in the 0.0.4 format".into());
                }
                if !family.ends_with(&format!("_{unit}")) {
                    return Err(format!("name {family} does not end with unit {unit}"));
                }
            }
            Line::Comment(_) => return Err(format!("unknown comment {line}")),
            Line::Blank => return Err(format!("bad line {line:?}")),
            Line::Sample(sample) => {
                if sample.timestamp.is_some() {
                    return Err(format!("timestamps/exemplars not expected: {line}"));
                }
                let (family, typ) = current.as_ref().ok_or("sample before any family")?;
                let expected_name = match (format, typ.as_str()) {
                    (Format::OpenMetrics, "info") => format!("{family}_info"),
                    (Format::OpenMetrics, "counter") => format!("{family}_total"),
                    _ => family.clone(),
                };
                if sample.name != expected_name {
                    return Err(format!("sample {} in family {family} ({typ})", sample.name));
                }
                if format == Format::OpenMetrics && typ == "info" && sample.value != 1.0 {
                    return Err("info sample not 1".into());
                }
                let key = format!("{}{:?}", sample.name, sample.labels);
                if !series.insert(key) {
                    return Err(format!("duplicate series {line}"));
                }
                samples.push(sample);
            }
        }
    }
    if format == Format::OpenMetrics && !eof {
        return Err("OpenMetrics without # EOF".into());
    }
    Ok(samples)
}

/// A parsed line as the encoder writes it: one space between tokens, `name{k="v",...}`
/// with `\\`, `\"` and `\n` escaped, the value's text as it stood (a line that differs
/// has blanks, commas or escapes the encoder never writes).
fn written(written: &str, line: &Line<'_>) -> String {
    match line {
        Line::Blank => String::new(),
        Line::Help { family, text } => format!("# HELP {family} {text}"),
        Line::Type { family, kind } => format!("# TYPE {family} {kind}"),
        Line::Unit { family, unit } => format!("# UNIT {family} {unit}"),
        Line::Eof => "# EOF".to_string(),
        Line::Comment(c) => c.to_string(),
        Line::Sample(s) => {
            let mut out = s.name.to_string();
            if !s.labels.is_empty() {
                let set: Vec<String> = s
                    .labels
                    .iter()
                    .map(|(k, v)| {
                        let v = v
                            .replace('\\', "\\\\")
                            .replace('"', "\\\"")
                            .replace('\n', "\\n");
                        format!("{k}=\"{v}\"")
                    })
                    .collect();
                out = format!("{out}{{{}}}", set.join(","));
            }
            // The value as written: the last space-separated word (a line with other
            // blanks is not rendered back to itself).
            let value = written.rsplit(' ').next().unwrap_or_default();
            format!("{out} {value}")
        }
    }
}

fn label<'a>(s: &'a Sample<'_>, key: &str) -> Option<&'a str> {
    s.label(key)
}

#[test]
fn both_formats_parse() {
    let exp = exposition("node-a", &results());
    let text = check(&exp.text, Format::Text004).unwrap();
    let om = check(&exp.openmetrics, Format::OpenMetrics).unwrap();
    assert_eq!(text, om, "both formats carry the same samples");
    assert!(!text.is_empty());
}

#[test]
fn eof_and_unit_only_in_openmetrics() {
    let exp = exposition("node-a", &results());
    assert!(exp.openmetrics.ends_with("# EOF\n"));
    assert_eq!(exp.openmetrics.matches("# EOF").count(), 1);
    assert!(!exp.text.contains("# EOF"));
    assert!(!exp.text.contains("# UNIT"));
    assert!(exp
        .openmetrics
        .contains("# UNIT kubelet_sentinel_evaluation_duration_seconds seconds\n"));
    assert!(exp
        .text
        .contains("# TYPE kubelet_sentinel_build_info gauge\n"));
    assert!(exp
        .openmetrics
        .contains("# TYPE kubelet_sentinel_build info\n"));
}

#[test]
fn by_default_one_status_series_per_control_its_current_status() {
    let rs = results();
    let exp = exposition("node-a", &rs);
    let samples = check(&exp.text, Format::Text004).unwrap();
    let status: Vec<(&str, &str, f64)> = samples
        .iter()
        .filter(|s| s.name == "kubelet_sentinel_control_status")
        .map(|s| {
            let l = |k| label(s, k).unwrap();
            (l("control"), l("status"), s.value)
        })
        .collect();
    let expected: Vec<(&str, &str, f64)> =
        rs.iter().map(|r| (r.id, r.status.as_str(), 1.0)).collect();
    assert_eq!(status, expected);
    // A status change replaces the series: the old one is gone from the page.
    let mut changed = rs.clone();
    changed[0].status = Status::Pass;
    let after = exposition("node-a", &changed);
    assert!(exp.text.contains(
        r#"control="anonymous-auth-disabled",family="api_access",severity="high",status="fail"} 1"#
    ));
    assert!(!after.text.contains(
        r#"control="anonymous-auth-disabled",family="api_access",severity="high",status="fail""#
    ));
    assert!(after.text.contains(
        r#"control="anonymous-auth-disabled",family="api_access",severity="high",status="pass"} 1"#
    ));
    // The same sums in both modes (what rules and dashboards rely on).
    let all = exposition_with(&snapshot("node-a"), &rs, EVERYTHING, None);
    let ones = |body: &str| {
        let mut v: Vec<String> = check(body, Format::Text004)
            .unwrap()
            .iter()
            .filter(|s| s.name == "kubelet_sentinel_control_status" && s.value == 1.0)
            .map(|s| s.series.to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ones(&exp.text), ones(&all.text));
}

#[test]
fn stateset_has_exactly_one_active_status_per_control() {
    let rs = results();
    let exp = exposition_with(&snapshot("node-a"), &rs, EVERYTHING, None);
    let samples = check(&exp.text, Format::Text004).unwrap();
    let mut per_control: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for s in samples
        .iter()
        .filter(|s| s.name == "kubelet_sentinel_control_status")
    {
        per_control
            .entry(label(s, "control").unwrap().to_string())
            .or_default()
            .push((label(s, "status").unwrap().to_string(), s.value));
    }
    assert_eq!(per_control.len(), rs.len());
    for r in &rs {
        let series = &per_control[r.id];
        let statuses: Vec<&str> = series.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(statuses, ["pass", "fail", "unknown", "not_applicable"]);
        let ones: Vec<&str> = series
            .iter()
            .filter(|(_, v)| *v == 1.0)
            .map(|(s, _)| s.as_str())
            .collect();
        assert_eq!(ones, [r.status.as_str()], "{}", r.id);
        assert!(series.iter().all(|(_, v)| *v == 0.0 || *v == 1.0));
    }
}

#[test]
fn every_series_carries_node() {
    let exp = exposition("node-a", &results());
    for s in check(&exp.openmetrics, Format::OpenMetrics).unwrap() {
        assert_eq!(label(&s, "node"), Some("node-a"), "{s:?}");
    }
    let startup = render_startup("node-a", "0.1.0", "abc");
    let samples = check(&startup.text, Format::Text004).unwrap();
    assert_eq!(samples.len(), 1);
    assert_eq!(samples[0].name, "kubelet_sentinel_build_info");
    check(&startup.openmetrics, Format::OpenMetrics).unwrap();
    assert!(!startup.text.contains("kubelet_up"));
}

#[test]
fn label_values_are_escaped() {
    let node = "we\"ird\\node\nname";
    let exp = exposition_with(&snapshot(node), &results(), EVERYTHING, None);
    assert!(exp.text.contains(r#"node="we\"ird\\node\nname""#));
    for body in [&exp.text, &exp.openmetrics] {
        assert!(body.contains(r#"title="A \"quoted\" title with a back\\slash""#));
    }
    for (body, format) in [
        (&exp.text, Format::Text004),
        (&exp.openmetrics, Format::OpenMetrics),
    ] {
        for s in check(body, format).unwrap() {
            assert_eq!(label(&s, "node"), Some(node));
        }
    }
}

#[test]
fn kubelet_down_means_up_zero_and_no_kubelet_info() {
    let exp = exposition("node-a", &results());
    let samples = check(&exp.text, Format::Text004).unwrap();
    let up: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "kubelet_sentinel_kubelet_up")
        .collect();
    assert_eq!(up.len(), 1);
    assert_eq!(up[0].value, 0.0);
    assert!(!exp.text.contains("kubelet_sentinel_kubelet_info"));
    // Empty families have no orphan HELP/TYPE either.
    assert!(!exp.openmetrics.contains("kubelet_sentinel_kubelet "));
}

#[test]
fn kubelet_info_version_is_unknown_not_empty() {
    let info = |version: Option<&str>| {
        let mut snap = crate::model::testing::kubeadm();
        snap.node = "node-a".into();
        crate::model::testing::kubelet_mut(&mut snap).version = version.map(str::to_string);
        let exp = render(&MetricsInput {
            node: "node-a",
            snapshot: &snap,
            results: &results(),
            evaluation_duration: Duration::from_millis(12),
            evaluated_at: 1_700_000_001.25,
            build_version: "0.1.0",
            build_revision: "abc123",
            drift: None,
            risky_pods: &[],
            options: ExpositionOptions::default(),
        });
        let samples = check(&exp.text, Format::Text004).unwrap();
        let s = samples
            .iter()
            .find(|s| s.name == "kubelet_sentinel_kubelet_info")
            .expect("kubelet_info while the kubelet is up")
            .clone();
        label(&s, "version").map(str::to_string)
    };
    assert_eq!(info(None).as_deref(), Some("unknown"));
    assert_eq!(info(Some("")).as_deref(), Some("unknown"));
    assert_eq!(info(Some("v1.31.4")).as_deref(), Some("v1.31.4"));
}

#[test]
fn output_is_deterministic_and_ordered() {
    let rs = results();
    let a = exposition("node-a", &rs);
    let b = exposition("node-a", &rs);
    assert_eq!(a, b);
    let first = a.text.find("control=\"anonymous-auth-disabled\"").unwrap();
    let last = a.text.find("control=\"audit-policy\"").unwrap();
    assert!(first < last, "catalogue order");
    let probes: Vec<_> = check(&a.text, Format::Text004)
        .unwrap()
        .into_iter()
        .filter(|s| s.name == "kubelet_sentinel_probe_success")
        .map(|s| label(&s, "probe").unwrap().to_string())
        .collect();
    assert_eq!(probes, ["process", "config"]);
}

#[test]
fn control_info_only_when_asked() {
    let exp = exposition("n", &results());
    assert!(!exp.text.contains("kubelet_sentinel_control_info"));
    assert!(!exp.openmetrics.contains("kubelet_sentinel_control "));
    let on = ExpositionOptions {
        control_info: true,
        ..Default::default()
    };
    let exp = exposition_with(&snapshot("n"), &results(), on, None);
    assert_eq!(
        exp.text.matches("\nkubelet_sentinel_control_info{").count(),
        4
    );
    assert!(exp
        .openmetrics
        .contains("# TYPE kubelet_sentinel_control info\n"));
}

#[test]
fn cis_label_is_empty_when_missing() {
    let exp = exposition_with(&snapshot("n"), &results(), EVERYTHING, None);
    let samples = check(&exp.text, Format::Text004).unwrap();
    let info: Vec<_> = samples
        .iter()
        .filter(|s| s.name == "kubelet_sentinel_control_info")
        .collect();
    assert_eq!(info.len(), 4);
    assert_eq!(label(info[0], "cis"), Some("4.2.1"));
    assert_eq!(label(info[2], "cis"), Some(""));
}

#[test]
fn duplicate_series_are_dropped() {
    let mut rs = results();
    rs.push(result("anonymous-auth-disabled", Status::Fail, None));
    for options in [ExpositionOptions::default(), EVERYTHING] {
        let exp = exposition_with(&snapshot("n"), &rs, options, None);
        check(&exp.text, Format::Text004).unwrap();
        check(&exp.openmetrics, Format::OpenMetrics).unwrap();
    }
}

fn drift_of(controls: &[(&'static str, bool, bool)]) -> DriftReport {
    use crate::publish::drift::ControlDrift;
    DriftReport {
        controls: controls
            .iter()
            .map(|&(id, drifted, regressed)| {
                let c = ControlDrift {
                    drifted,
                    regressed,
                    baseline_status: Status::Pass,
                    baseline_observed: None,
                };
                (id, c)
            })
            .collect(),
        ..Default::default()
    }
}

#[test]
fn control_drift_is_sparse_regressed_wins() {
    let d = drift_of(&[
        ("anonymous-auth-disabled", true, true),
        ("authorization-webhook", true, false),
        ("read-only-port-disabled", false, false),
        // Regressed with an unchanged observed value (e.g. a new policy): still regressed.
        ("audit-policy", false, true),
    ]);
    let exp = exposition_with(&snapshot("n"), &results(), Default::default(), Some(&d));
    let drift: Vec<(String, String, f64)> = check(&exp.text, Format::Text004)
        .unwrap()
        .iter()
        .filter(|s| s.name == "kubelet_sentinel_control_drift")
        .map(|s| {
            let l = |k| label(s, k).unwrap().to_string();
            (l("control"), l("kind"), s.value)
        })
        .collect();
    let want = |c: &str, k: &str| (c.to_string(), k.to_string(), 1.0);
    assert_eq!(
        drift,
        [
            want("anonymous-auth-disabled", "regressed"),
            want("authorization-webhook", "changed"),
            want("audit-policy", "regressed"),
        ]
    );
    assert!(!exp.text.contains("kubelet_sentinel_control_regression"));
    check(&exp.openmetrics, Format::OpenMetrics).unwrap();
    // Nothing drifted: no family at all (no orphan HELP).
    let calm = drift_of(&[("anonymous-auth-disabled", false, false)]);
    let exp = exposition_with(&snapshot("n"), &results(), Default::default(), Some(&calm));
    assert!(!exp.text.contains("kubelet_sentinel_control_drift"));
}

#[test]
fn node_info_names_the_pool_or_empty() {
    use crate::model::snapshot::{ApiSource, ClusterView, NodeFacts};
    let pool = |snap: &Snapshot| -> Vec<(String, String)> {
        let exp = exposition_with(snap, &results(), Default::default(), None);
        check(&exp.text, Format::Text004)
            .unwrap()
            .iter()
            .filter(|s| s.name == "kubelet_sentinel_node_info")
            .map(|s| {
                let l = |k| label(s, k).unwrap().to_string();
                (l("node"), l("node_pool"))
            })
            .collect()
    };
    let both = |n: &str, p: &str| vec![(n.to_string(), p.to_string())];
    // No API access: present, pool empty.
    let mut snap = snapshot("n");
    assert_eq!(pool(&snap), both("n", ""));
    snap.cluster = Some(ClusterView::no_access("--api-access=off"));
    assert_eq!(pool(&snap), both("n", ""));
    let mut view = ClusterView::no_access("x");
    view.access = Ok("test".into());
    view.node = ApiSource {
        data: Some(vec![NodeFacts {
            name: "n".into(),
            kubelet_version: None,
            pool: Some("ng-arm64".into()),
        }]),
        health: Ok(()),
        duration: Duration::ZERO,
    };
    snap.cluster = Some(view);
    assert_eq!(pool(&snap), both("n", "ng-arm64"));
    // Not on the page before the first evaluation.
    assert!(!render_startup("n", "0", "r").text.contains("node_info"));
}

#[test]
fn the_family_table_is_consistent() {
    use super::families::{Kind, FAMILIES};
    let mut names = BTreeSet::new();
    for f in FAMILIES {
        assert!(names.insert(f.wire_name()), "{} twice", f.name);
        assert!(f.name.starts_with("kubelet_sentinel_"), "{}", f.name);
        assert!(
            !f.help.ends_with('.'),
            "{}: the encoder adds no full stop",
            f.name
        );
        // The registered name never carries the suffix its type or unit adds.
        assert!(!f.name.ends_with("_info") && !f.name.ends_with("_total"));
        assert!(!f.name.ends_with("_seconds"));
        if f.kind == Kind::Info {
            assert!(f.wire_name().ends_with("_info"));
        }
    }
    // Every family of a full page (drift, everything on) is a row, in the table's order.
    let d = drift_of(&[("anonymous-auth-disabled", true, false)]);
    let mut d = d;
    d.changes = Some(Default::default());
    d.config_drift = Some(false);
    let exp = exposition_with(&snapshot("n"), &results(), EVERYTHING, Some(&d));
    let mut seen: Vec<String> = Vec::new();
    for s in check(&exp.text, Format::Text004).unwrap() {
        if seen.last().map(String::as_str) != Some(s.name) {
            seen.push(s.name.to_string());
        }
    }
    let order: Vec<String> = FAMILIES
        .iter()
        .map(super::families::Family::wire_name)
        .filter(|n| seen.contains(n))
        .collect();
    assert_eq!(seen, order);
    assert!(seen.len() >= 12, "{seen:?}");
}

#[test]
fn counters_are_named_total_in_both_formats() {
    // No counters yet: this pins the encoders' behaviour for when there are.
    let mut registry = Registry::default();
    let c: Counter = Counter::default();
    c.inc();
    registry.register("demo_evaluations", "Evaluations run.", c);
    let exp = Exposition::from_registry(&registry).unwrap();
    assert!(exp.text.contains("# TYPE demo_evaluations_total counter\n"));
    assert!(exp.text.contains("\ndemo_evaluations_total 1\n"));
    assert!(exp
        .openmetrics
        .contains("# TYPE demo_evaluations counter\n"));
    assert!(exp.openmetrics.contains("\ndemo_evaluations_total 1\n"));
    check(&exp.text, Format::Text004).unwrap();
    check(&exp.openmetrics, Format::OpenMetrics).unwrap();
}

#[test]
fn checker_rejects_broken_bodies() {
    assert!(check("# HELP a x\n# TYPE a gauge\na 1\n", Format::OpenMetrics).is_err());
    assert!(check("# HELP a x\n# TYPE a gauge\na 1\n# EOF\n", Format::Text004).is_err());
    assert!(check("# HELP a x\n# TYPE a gauge\na{b=\"c} 1\n", Format::Text004).is_err());
    assert!(check("# HELP a x\n# TYPE a gauge\nb 1\n", Format::Text004).is_err());
    assert!(check("# HELP a x\n# TYPE a gauge\na 1\na 2\n", Format::Text004).is_err());
    assert!(check("# HELP a x\n# TYPE a gauge\na 1\n", Format::Text004).is_ok());
}
