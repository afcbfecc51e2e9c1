use super::*;
use proptest::prelude::*;

fn sample(line: &str) -> Sample<'_> {
    match parse_line(line) {
        Ok(Line::Sample(s)) => s,
        other => panic!("{line:?}: {other:?}"),
    }
}

fn labels<'a>(s: &'a Sample<'_>) -> Vec<(&'a str, &'a str)> {
    s.labels.iter().map(|(k, v)| (*k, v.as_ref())).collect()
}

#[test]
fn the_kubelets_build_info() {
    let line = "kubernetes_build_info{build_date=\"2024-12-10T11:36:16Z\",compiler=\"gc\",git_version=\"v1.31.4\",major=\"1\",minor=\"31\",platform=\"linux/amd64\"} 1";
    let s = sample(line);
    assert_eq!(s.name, "kubernetes_build_info");
    assert_eq!(s.label("git_version"), Some("v1.31.4"));
    assert_eq!(s.label("platform"), Some("linux/amd64"));
    assert_eq!(s.label("gitVersion"), None);
    assert_eq!(s.value, 1.0);
    assert_eq!(s.timestamp, None);
    assert_eq!(s.series, &line[..line.len() - 2]);
    assert!(s.has_labels(&[("major", "1"), ("minor", "31")]));
    assert!(!s.has_labels(&[("major", "2")]));
    // Labels are borrowed when they hold no escape.
    assert!(s.labels.iter().all(|(_, v)| matches!(v, Cow::Borrowed(_))));
}

#[test]
fn label_values_keep_commas_braces_and_escaped_quotes() {
    let s = sample(r#"a_total{k="v,w=\"}",l="",m="back\\slash\nnew"} 1"#);
    assert_eq!(
        labels(&s),
        [("k", "v,w=\"}"), ("l", ""), ("m", "back\\slash\nnew")]
    );
    let s = sample(
        r#"kubernetes_build_info{git_version="v1.30.2-eks-1552ad0",note="a \"quoted\" } brace"} 1"#,
    );
    assert_eq!(s.label("note"), Some("a \"quoted\" } brace"));
}

#[test]
fn blanks_trailing_commas_and_empty_sets_as_the_go_reader_takes_them() {
    let s = sample("  a { b = \"c\" ,\td=\"e\", } \t 2.5  1700000000000 ");
    assert_eq!(labels(&s), [("b", "c"), ("d", "e")]);
    assert_eq!(s.value, 2.5);
    assert_eq!(s.timestamp, Some("1700000000000"));
    assert_eq!(s.series, "a { b = \"c\" ,\td=\"e\", }");
    let s = sample("a{} 0");
    assert!(s.labels.is_empty());
    let s = sample("a 0\r");
    assert_eq!((s.name, s.series, s.value), ("a", "a", 0.0));
}

#[test]
fn special_values_and_suffixed_names() {
    let b = sample(r#"d_seconds_bucket{le="+Inf"} 3"#);
    assert_eq!((b.name, b.label("le")), ("d_seconds_bucket", Some("+Inf")));
    assert_eq!(sample("a +Inf").value, f64::INFINITY);
    assert_eq!(sample("a -Inf").value, f64::NEG_INFINITY);
    assert!(sample("a NaN").value.is_nan());
    assert_eq!(sample("a 1e3").value, 1000.0);
    assert_eq!(sample("c_created 1.7e9").name, "c_created");
    assert_eq!(sample("ns:a_b:c 1").name, "ns:a_b:c");
}

#[test]
fn descriptors_and_openmetrics_lines() {
    let om = "# HELP kubelet_sentinel_control_status Status of each control (StateSet).\n\
              # TYPE kubelet_sentinel_control_status stateset\n\
              kubelet_sentinel_control_status{control=\"a\",kubelet_sentinel_control_status=\"pass\"} 1\n\
              # HELP kubelet_sentinel_build Build.\n\
              # TYPE kubelet_sentinel_build info\n\
              kubelet_sentinel_build_info{version=\"0.1.0\"} 1\n\
              # TYPE e_seconds counter\n\
              # UNIT e_seconds seconds\n\
              e_seconds_total 3\n\
              e_seconds_created 1.7e9\n\
              # a free comment\n\
              \n\
              # EOF\n";
    let lines: Vec<Line<'_>> = om.lines().map(|l| parse_line(l).unwrap()).collect();
    assert_eq!(
        lines[0],
        Line::Help {
            family: "kubelet_sentinel_control_status",
            text: "Status of each control (StateSet)."
        }
    );
    assert_eq!(
        lines[1],
        Line::Type {
            family: "kubelet_sentinel_control_status",
            kind: "stateset"
        }
    );
    assert_eq!(
        lines[4],
        Line::Type {
            family: "kubelet_sentinel_build",
            kind: "info"
        }
    );
    assert_eq!(
        lines[7],
        Line::Unit {
            family: "e_seconds",
            unit: "seconds"
        }
    );
    assert_eq!(lines[10], Line::Comment("# a free comment"));
    assert_eq!(lines[11], Line::Blank);
    assert_eq!(lines[12], Line::Eof);
    let names: Vec<&str> = samples(om).map(|s| s.name).collect();
    assert_eq!(
        names,
        [
            "kubelet_sentinel_control_status",
            "kubelet_sentinel_build_info",
            "e_seconds_total",
            "e_seconds_created"
        ]
    );
    assert_eq!(
        parse_line("# HELP a").unwrap(),
        Line::Help {
            family: "a",
            text: ""
        }
    );
    assert_eq!(
        parse_line("# kubernetes_build_info{git_version=\"v1\"} 1").unwrap(),
        Line::Comment("# kubernetes_build_info{git_version=\"v1\"} 1")
    );
}

#[test]
fn malformed_lines_name_their_fault() {
    for (line, fault) in [
        ("{a=\"b\"} 1", LineError::Name),
        ("1a 1", LineError::Name),
        ("# TYPE", LineError::Descriptor),
        ("# TYPE a", LineError::Descriptor),
        ("# TYPE a gauge extra", LineError::Descriptor),
        ("# HELP a{b} x", LineError::Descriptor),
        ("# UNIT 1a s", LineError::Descriptor),
        ("a{1b=\"c\"} 1", LineError::LabelName),
        ("a{b=\"c\",,} 1", LineError::LabelName),
        ("a{b \"c\"} 1", LineError::LabelEquals),
        ("a{b=c} 1", LineError::LabelUnquoted),
        ("a{b=\"c\\t\"} 1", LineError::LabelEscape),
        ("a{b=\"c} 1", LineError::LabelUnterminated),
        ("a{b=\"c\\", LineError::LabelUnterminated),
        ("a{b=\"c\" d=\"e\"} 1", LineError::LabelSeparator),
        ("a{git_version=\"v1.31.4\" 1", LineError::LabelSeparator),
        ("a", LineError::NoValue),
        ("a{b=\"c\"}", LineError::NoValue),
        ("a one", LineError::Value),
        ("a 1 soon", LineError::Timestamp),
        ("a 1 2 3", LineError::Trailing),
        ("a 1 # {trace_id=\"x\"} 1", LineError::Timestamp),
    ] {
        assert_eq!(parse_line(line), Err(fault), "{line:?}");
    }
    // Malformed lines are passed over by `samples`, the good ones kept.
    let names: Vec<&str> = samples("a{b=\"c} 1\nb 2\nc\n").map(|s| s.name).collect();
    assert_eq!(names, ["b"]);
}

#[test]
fn hostile_lines_are_errors_in_linear_time() {
    // One long label value, many labels, an unterminated run of escapes: each a 1 MiB line.
    let long_value = format!("a{{b=\"{}\"}} 1", "x".repeat(1 << 20));
    assert_eq!(sample(&long_value).label("b").map(str::len), Some(1 << 20));
    let many = format!("a{{{}}} 1", "b=\"\",".repeat(1 << 18));
    assert_eq!(sample(&many).labels.len(), 1 << 18);
    let escapes = format!("a{{b=\"{}", "\\\"".repeat(1 << 19));
    assert_eq!(parse_line(&escapes), Err(LineError::LabelUnterminated));
    let braces = "{".repeat(1 << 20);
    assert_eq!(parse_line(&braces), Err(LineError::Name));
}

proptest! {
    #[test]
    fn any_line_parses_or_fails_without_panicking(line in ".{0,200}") {
        let _ = parse_line(&line);
    }

    #[test]
    fn exposition_like_lines_never_panic(
        line in r#"[ \t#]{0,3}(HELP|TYPE|UNIT|EOF)?[ \t]?[a-z_:]{0,4}[{ ]?([a-z]{0,2}[ =]{0,2}"([^"\\]|\\.){0,4}"?,?){0,3}[} ]{0,2}[0-9.eE+\-InfNa ]{0,8}"#
    ) {
        let _ = parse_line(&line);
        let _ = samples(&line).count();
    }

    #[test]
    fn well_formed_samples_round_trip(
        name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,10}",
        pairs in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,6}", ".{0,12}"), 0..4),
        value in proptest::num::f64::NORMAL | proptest::num::f64::ZERO,
    ) {
        let set: Vec<String> = pairs
            .iter()
            .map(|(k, v)| {
                let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
                format!("{k}=\"{escaped}\"")
            })
            .collect();
        let line = format!("{name}{{{}}} {value}", set.join(","));
        let s = sample(&line);
        prop_assert_eq!(s.name, name.as_str());
        prop_assert_eq!(s.value, value);
        let got: Vec<(String, String)> =
            s.labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        prop_assert_eq!(got, pairs);
    }
}
