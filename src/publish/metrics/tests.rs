use super::*;
use crate::evaluate::Severity;
use crate::evaluate::Status;
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
    let snap = snapshot(node);
    render(&MetricsInput {
        node,
        snapshot: &snap,
        results,
        evaluation_duration: Duration::from_millis(12),
        evaluated_at: 1_700_000_001.25,
        build_version: "0.1.0",
        build_revision: "abc123",
        drift: None,
        risky_pods: &[],
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

#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    Text004,
    OpenMetrics,
}

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn valid_label_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Parse `name{k="v",...} value` into a sample, unescaping label values.
fn parse_sample(line: &str) -> Result<Sample, String> {
    let name_end = line
        .find(['{', ' '])
        .ok_or_else(|| format!("no value: {line}"))?;
    let name = &line[..name_end];
    if !valid_name(name) {
        return Err(format!("bad metric name {name:?}"));
    }
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=').ok_or("label without =")?;
            let key = &rest[..eq];
            if !valid_label_name(key) {
                return Err(format!("bad label name {key:?}"));
            }
            rest = rest[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value not quoted")?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => match chars.next() {
                        Some((_, '\\')) => value.push('\\'),
                        Some((_, '"')) => value.push('"'),
                        Some((_, 'n')) => value.push('\n'),
                        other => return Err(format!("bad escape {other:?}")),
                    },
                    Some((i, '"')) => break i,
                    Some((_, '\n')) => return Err("raw newline in label value".into()),
                    Some((_, c)) => value.push(c),
                    None => return Err("unterminated label value".into()),
                }
            };
            labels.push((key.to_string(), value));
            rest = &rest[end + 1..];
            if let Some(r) = rest.strip_prefix(',') {
                rest = r;
            } else if !rest.starts_with('}') {
                return Err(format!("expected , or }} in {line}"));
            }
        }
    }
    let value = rest.strip_prefix(' ').ok_or("no space before value")?;
    if value.contains(' ') {
        return Err(format!("timestamps/exemplars not expected: {line}"));
    }
    let value: f64 = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().map_err(|_| format!("bad value {v:?}"))?,
    };
    Ok(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// A small line-format checker for both text formats: comment syntax, families
/// declared once and not interleaved, sample names matching their family's type,
/// no duplicate series, `# EOF`/`# UNIT` only in OpenMetrics.
fn check(body: &str, format: Format) -> Result<Vec<Sample>, String> {
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
        if line == "# EOF" {
            if format != Format::OpenMetrics {
                return Err("# EOF in the 0.0.4 format".into());
            }
            eof = true;
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut parts = comment.splitn(3, ' ');
            let kind = parts.next().unwrap_or("");
            let name = parts.next().ok_or("comment without a name")?;
            let arg = parts.next().ok_or("comment without text")?;
            if !valid_name(name) {
                return Err(format!("bad name in comment: {line}"));
            }
            match kind {
                "HELP" => {
                    if !declared.insert(name.to_string()) {
                        return Err(format!("family {name} declared twice"));
                    }
                    current = Some((name.to_string(), String::new()));
                }
                "TYPE" => {
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
                    if !allowed.contains(&arg) {
                        return Err(format!("bad type {arg}"));
                    }
                    match &mut current {
                        Some((fam, t)) if fam == name && t.is_empty() => *t = arg.to_string(),
                        _ => return Err(format!("TYPE without matching HELP: {line}")),
                    }
                }
                "UNIT" => {
                    if format != Format::OpenMetrics {
                        return Err("# UNIT in the 0.0.4 format".into());
                    }
                    if !name.ends_with(&format!("_{arg}")) {
                        return Err(format!("name {name} does not end with unit {arg}"));
                    }
                }
                _ => return Err(format!("unknown comment {line}")),
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            return Err(format!("bad line {line:?}"));
        }
        let sample = parse_sample(line)?;
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
    if format == Format::OpenMetrics && !eof {
        return Err("OpenMetrics without # EOF".into());
    }
    Ok(samples)
}

fn label<'a>(s: &'a Sample, key: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
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
        .contains("# UNIT kubelet_sentinel_probe_duration_seconds seconds\n"));
    assert!(exp
        .text
        .contains("# TYPE kubelet_sentinel_build_info gauge\n"));
    assert!(exp
        .openmetrics
        .contains("# TYPE kubelet_sentinel_build info\n"));
}

#[test]
fn stateset_has_exactly_one_active_status_per_control() {
    let rs = results();
    let exp = exposition("node-a", &rs);
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
    let exp = exposition(node, &results());
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
fn cis_label_is_empty_when_missing() {
    let exp = exposition("n", &results());
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
    rs.push(result("anonymous-auth-disabled", Status::Pass, None));
    let exp = exposition("n", &rs);
    check(&exp.text, Format::Text004).unwrap();
    check(&exp.openmetrics, Format::OpenMetrics).unwrap();
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
