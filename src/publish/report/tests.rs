use super::*;
use super::{json, junit, table};
use crate::model::snapshot::ProbeRecord;

#[test]
fn drift_in_json_and_table() {
    use crate::publish::drift::{BaselineInfo, Origin};
    let controls = vec![
        result(
            "read-only-port-disabled",
            "api_access",
            Severity::Critical,
            Status::Fail,
        ),
        result("tls-min-version", "tls", Severity::High, Status::Pass),
    ];
    let drift = DriftReport {
        baseline: Some(BaselineInfo {
            created_at: 1_700_000_000.0,
            origin: Origin::FirstObservation,
            path: "/var/lib/kubelet-sentinel/baseline.json".into(),
        }),
        controls: vec![(
            "read-only-port-disabled",
            ControlDrift {
                drifted: true,
                regressed: true,
                baseline_status: Status::Pass,
                baseline_observed: Some("0".into()),
            },
        )],
        config_drift: Some(true),
        pending_restart: Some(vec!["/var/lib/kubelet/config.yaml".into()]),
        ..Default::default()
    };
    let r = Report::new(&snapshot(), controls, Duration::from_millis(5)).with_drift(drift);
    let v: serde_json::Value = serde_json::from_str(&json::render(&r)).unwrap();
    let c = &v["controls"][0];
    assert_eq!(c["id"], "read-only-port-disabled");
    assert_eq!(c["drift"]["drifted"], true);
    assert_eq!(c["drift"]["regressed"], true);
    assert_eq!(c["drift"]["baseline_observed"], "0");
    assert_eq!(c["drift"]["baseline_status"], "pass");
    assert!(v["controls"][1]["drift"].is_null());
    assert_eq!(v["drift"]["baseline"]["created_at"], 1_700_000_000.0);
    assert_eq!(v["drift"]["baseline"]["origin"], "first_observation");
    assert_eq!(v["drift"]["config_drift"], true);
    assert_eq!(
        v["drift"]["pending_restart"][0],
        "/var/lib/kubelet/config.yaml"
    );
    let table = table::render(&r, &plain());
    assert!(table.contains("↳ regressed: baseline pass 0"), "{table}");
    assert!(
        table.contains("baseline 2023-11-14T22:13:20Z (first_observation): 1 drifted, 1 regressed; effective configuration changed; changed since the kubelet started (pending restart): /var/lib/kubelet/config.yaml"),
        "{table}"
    );
}

pub(super) fn result(
    id: &'static str,
    family: &'static str,
    severity: Severity,
    status: Status,
) -> ControlResult {
    ControlResult {
        id,
        title: "Title <with> \"xml\" & 'chars'",
        family,
        severity,
        cis: Some("4.2.1"),
        practice: "practice",
        status,
        observed: "true".into(),
        expected: "false".into(),
        source: "config-file".into(),
        reason: "anonymous requests are <allowed> & \"served\"\nsecond line".into(),
        remediation: "Set authentication.anonymous.enabled: false",
    }
}

pub(super) fn snapshot() -> Snapshot {
    Snapshot {
        node: "node-1".into(),
        taken_at: 1_714_564_800.75, // 2024-05-01T12:00:00Z
        discovery: Discovery::NotFound {
            reason: "no kubelet process in /proc".into(),
        },
        kubelet: None,
        apiserver: None,
        live: None,
        cluster: None,
        running_config: None,
        kube_proxy: None,
        probes: vec![ProbeRecord {
            name: "process",
            success: true,
            duration: Duration::from_millis(1),
            error: None,
        }],
    }
}

pub(super) fn report() -> Report {
    Report::new(
        &snapshot(),
        vec![
            result(
                "anonymous-auth-disabled",
                "authn_authz",
                Severity::Critical,
                Status::Fail,
            ),
            result(
                "authorization-webhook",
                "authn_authz",
                Severity::High,
                Status::Pass,
            ),
            result(
                "read-only-port-disabled",
                "api_access",
                Severity::Medium,
                Status::Unknown,
            ),
            result(
                "audit-policy",
                "audit",
                Severity::Low,
                Status::NotApplicable,
            ),
            result("low-fail", "api_access", Severity::Low, Status::Fail),
        ],
        Duration::from_millis(42),
    )
}

#[test]
fn json_shape() {
    let v: serde_json::Value = serde_json::from_str(&json::render(&report())).unwrap();
    assert_eq!(v["node"], "node-1");
    for key in [
        "pid",
        "binary",
        "config_file",
        "config_dir",
        "version",
        "discovery",
        "reason",
    ] {
        assert!(v["kubelet"].get(key).is_some(), "kubelet.{key}");
    }
    assert_eq!(v["kubelet"]["discovery"], "not_found");
    let c = &v["controls"][0];
    for key in [
        "id",
        "title",
        "family",
        "severity",
        "cis",
        "status",
        "observed",
        "expected",
        "source",
        "reason",
        "remediation",
    ] {
        assert!(c.get(key).is_some(), "controls[].{key}");
    }
    assert_eq!(c["status"], "fail");
    assert_eq!(c["severity"], "critical");
    assert_eq!(v["controls"][3]["status"], "not_applicable");
    assert_eq!(
        v["summary"],
        serde_json::json!({"pass": 1, "fail": 2, "unknown": 1, "not_applicable": 1})
    );
    assert_eq!(
        v["probes"],
        serde_json::json!([{"name": "process", "success": true, "duration_seconds": 0.001, "error": null}])
    );
}

pub(super) fn gate(
    fail_on: Option<Severity>,
    fail_on_unknown: bool,
    require_kubelet: bool,
) -> Gate {
    Gate {
        fail_on,
        fail_on_unknown,
        require_kubelet,
    }
}

/// Every combination of the exit flags.
fn gates() -> Vec<Gate> {
    let mut all = Vec::new();
    for fail_on in [
        None,
        Some(Severity::Low),
        Some(Severity::Medium),
        Some(Severity::High),
        Some(Severity::Critical),
    ] {
        for unknown in [false, true] {
            for require in [false, true] {
                all.push(gate(fail_on, unknown, require));
            }
        }
    }
    all
}

/// `report()` with a kubelet found (its snapshot has none).
pub(super) fn with_kubelet(mut r: Report) -> Report {
    r.kubelet.discovery = "found".into();
    r.kubelet.pid = Some(42);
    r.kubelet.reason = None;
    r
}

#[test]
fn exit_codes() {
    let r = with_kubelet(report());
    assert_eq!(exit_code(&r, &gate(None, true, true)), exit::OK);
    assert_eq!(exit_code(&r, &gate(Some(Severity::Low), false, true)), 1);
    assert_eq!(
        exit_code(&r, &gate(Some(Severity::Critical), false, true)),
        1
    );
    let mut only_low = r.clone();
    only_low
        .controls
        .retain(|c| c.id != "anonymous-auth-disabled");
    assert_eq!(
        exit_code(&only_low, &gate(Some(Severity::Medium), false, true)),
        0
    );
    assert_eq!(
        exit_code(&only_low, &gate(Some(Severity::Low), false, true)),
        1
    );
    // Unknown (medium) fails the exit code only with --fail-on-unknown, and only at or
    // above --fail-on.
    only_low.controls.retain(|c| c.status != Status::Fail);
    assert_eq!(
        exit_code(&only_low, &gate(Some(Severity::Low), false, true)),
        0
    );
    assert_eq!(
        exit_code(&only_low, &gate(Some(Severity::Medium), true, true)),
        1
    );
    assert_eq!(
        exit_code(&only_low, &gate(Some(Severity::High), true, true)),
        0
    );
    assert_eq!(
        gate(Some(Severity::Medium), true, true).verdict(&only_low),
        Verdict::Failed(vec!["read-only-port-disabled"])
    );
}

#[test]
fn no_kubelet_is_exit_3_when_required_and_wins_over_failures() {
    let r = report(); // discovery not_found, and a critical failure
    assert_eq!(
        gate(Some(Severity::High), false, true).verdict(&r),
        Verdict::NoKubelet("no kubelet process in /proc".into())
    );
    assert_eq!(
        exit_code(&r, &gate(Some(Severity::High), false, true)),
        exit::NO_KUBELET
    );
    assert_eq!(exit_code(&r, &gate(None, false, true)), 3);
    // Not required: the controls decide, as before.
    assert_eq!(exit_code(&r, &gate(Some(Severity::High), false, false)), 1);
    assert_eq!(exit_code(&r, &gate(None, false, false)), 0);
    assert_eq!(
        exit_code(&with_kubelet(r), &gate(None, false, true)),
        0,
        "a found kubelet is not exit 3"
    );
}

/// `(tests, failures, errors, skipped)` of the `<testsuites>` element, and the number of
/// `<failure`, `<error` and `<skipped` elements.
/// `(tests, failures, errors, skipped)` attributes, then the `failure`, `error`, `skipped`
/// element counts.
type JunitCounts = ((usize, usize, usize, usize), (usize, usize, usize));

fn junit_counts(xml: &str) -> JunitCounts {
    let head = xml.lines().nth(1).unwrap();
    let attr = |name: &str| -> usize {
        let at = head.find(&format!(" {name}=\"")).unwrap() + name.len() + 3;
        head[at..].split('"').next().unwrap().parse().unwrap()
    };
    (
        (
            attr("tests"),
            attr("failures"),
            attr("errors"),
            attr("skipped"),
        ),
        (
            xml.matches("<failure ").count(),
            xml.matches("<error ").count(),
            xml.matches("<skipped ").count(),
        ),
    )
}

/// JUnit's verdict, as a CI system reads it: errors, else failures.
fn junit_exit(xml: &str) -> i32 {
    let ((_, failures, errors, _), (f, e, _)) = junit_counts(xml);
    assert_eq!((failures, errors), (f, e), "the counts are the elements'");
    if errors > 0 {
        3
    } else if failures > 0 {
        1
    } else {
        0
    }
}

#[test]
fn junit_failures_agree_with_the_exit_code_for_every_gate() {
    let mut seen = std::collections::BTreeSet::new();
    for r in [report(), with_kubelet(report())] {
        for g in gates() {
            let xml = junit::render(&r, &g);
            let code = exit_code(&r, &g);
            assert_eq!(junit_exit(&xml), code, "{g:?}\n{xml}");
            seen.insert(code);
            let ((tests, failures, _, skipped), _) = junit_counts(&xml);
            assert_eq!(
                tests,
                r.controls.len() + usize::from(g.require_kubelet),
                "one testcase per control, and kubelet-found when required"
            );
            assert_eq!(
                failures,
                r.controls.iter().filter(|c| g.counts(c)).count(),
                "{g:?}"
            );
            assert_eq!(
                failures + skipped + r.summary.pass,
                r.controls.len(),
                "every control not counted and not passing is skipped: {g:?}"
            );
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), [0, 1, 3]);
}

#[test]
fn junit_structure_and_escaping() {
    let xml = junit::render(&report(), &gate(Some(Severity::Low), false, true));
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(xml.contains("tests=\"6\" failures=\"2\" errors=\"1\" skipped=\"2\""));
    assert!(xml.contains("timestamp=\"2024-05-01T12:00:00\""));
    assert_eq!(xml.matches("<testsuite ").count(), 4);
    let kubelet = xml.find("<testsuite name=\"kubelet\"").unwrap();
    let authn = xml.find("<testsuite name=\"authn_authz\"").unwrap();
    let api = xml.find("<testsuite name=\"api_access\"").unwrap();
    assert!(
        kubelet < authn && authn < api,
        "kubelet first, then families in order of first appearance"
    );
    assert!(xml.contains(
        "<error message=\"no usable kubelet: no kubelet process in /proc\" type=\"no_kubelet\">"
    ));
    assert!(xml.contains(
        "classname=\"kubelet-sentinel.authn_authz\" name=\"anonymous-auth-disabled: Title &lt;with&gt; &quot;xml&quot; &amp; &apos;chars&apos;\""
    ));
    assert!(xml.contains(
        "<failure message=\"anonymous requests are &lt;allowed&gt; &amp; &quot;served&quot;&#10;second line\" type=\"critical\">"
    ));
    assert!(xml.contains(
        "<skipped message=\"unknown (medium), not counted without --fail-on-unknown: anonymous"
    ));
    assert!(xml.contains("<skipped message=\"not applicable: anonymous"));
    assert!(xml.contains("<property name=\"fail_on\" value=\"low\"/>"));
    assert!(xml.contains("remediation: Set authentication.anonymous.enabled: false"));
    // Balanced tags.
    assert_eq!(
        xml.matches("<testcase ").count(),
        xml.matches("</testcase>").count()
    );
    assert_eq!(
        xml.matches("<testsuite ").count(),
        xml.matches("</testsuite>").count()
    );
    // No raw markup characters in attribute values or text.
    assert!(!xml.contains("<allowed>"));

    // The low failure below --fail-on high is skipped, not a failure, and says why.
    let xml = junit::render(
        &with_kubelet(report()),
        &gate(Some(Severity::High), true, false),
    );
    assert!(
        xml.contains("<skipped message=\"fail (low), not counted: below --fail-on high: anonymous"),
        "{xml}"
    );
    assert!(
        !xml.contains("<testsuite name=\"kubelet\""),
        "kubelet-found only when required"
    );
    assert!(
        xml.contains("tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"3\""),
        "{xml}"
    );
    // --fail-on-unknown at medium: the unknown medium control is a failure.
    let xml = junit::render(
        &with_kubelet(report()),
        &gate(Some(Severity::Medium), true, true),
    );
    assert!(xml.contains("type=\"unknown\">"), "{xml}");
    assert!(
        xml.contains("tests=\"6\" failures=\"2\" errors=\"0\" skipped=\"2\""),
        "{xml}"
    );
}

#[test]
fn xml_escape_controls() {
    assert_eq!(junit::xml_escape("a\u{1}b\tc", false), "a\u{FFFD}b\tc");
    assert_eq!(junit::xml_escape("a\tb\nc", true), "a&#9;b&#10;c");
}

#[test]
fn iso_dates() {
    assert_eq!(junit::iso8601(0.0), "1970-01-01T00:00:00");
    assert_eq!(junit::iso8601(951_782_400.0), "2000-02-29T00:00:00");
    assert_eq!(junit::iso8601(1_714_564_800.75), "2024-05-01T12:00:00");
    assert_eq!(junit::iso8601(-1.0), "1969-12-31T23:59:59");
}

pub(super) fn plain() -> table::TableOptions {
    table::TableOptions {
        colour: false,
        wide: false,
        only: None,
        gate: Gate::default(),
    }
}
