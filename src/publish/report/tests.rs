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
    let table = table::render(&r, false);
    assert!(table.contains("↳ regressed: baseline pass 0"), "{table}");
    assert!(
        table.contains("baseline 2023-11-14T22:13:20Z (first_observation): 1 drifted, 1 regressed; effective configuration changed; changed since the kubelet started (pending restart): /var/lib/kubelet/config.yaml"),
        "{table}"
    );
}

fn result(
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

fn snapshot() -> Snapshot {
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
        probes: vec![ProbeRecord {
            name: "process",
            success: true,
            duration: Duration::from_millis(1),
            error: None,
        }],
    }
}

fn report() -> Report {
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

#[test]
fn exit_codes() {
    let r = report();
    assert_eq!(exit_code(&r, None), 0);
    assert_eq!(exit_code(&r, Some(Severity::Low)), 1);
    assert_eq!(exit_code(&r, Some(Severity::Critical)), 1);
    let mut only_low = r.clone();
    only_low
        .controls
        .retain(|c| c.id != "anonymous-auth-disabled");
    assert_eq!(exit_code(&only_low, Some(Severity::Medium)), 0);
    assert_eq!(exit_code(&only_low, Some(Severity::Low)), 1);
    // Unknown never fails the exit code.
    only_low.controls.retain(|c| c.status != Status::Fail);
    assert_eq!(exit_code(&only_low, Some(Severity::Low)), 0);
}

#[test]
fn junit_structure_and_escaping() {
    let xml = junit::render(&report());
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites "));
    assert!(xml.contains("tests=\"5\" failures=\"2\" errors=\"1\" skipped=\"1\""));
    assert!(xml.contains("timestamp=\"2024-05-01T12:00:00\""));
    assert_eq!(xml.matches("<testsuite ").count(), 3);
    let authn = xml.find("<testsuite name=\"authn_authz\"").unwrap();
    let api = xml.find("<testsuite name=\"api_access\"").unwrap();
    assert!(authn < api, "families in order of first appearance");
    assert!(xml.contains(
        "classname=\"kubelet-sentinel.authn_authz\" name=\"anonymous-auth-disabled: Title &lt;with&gt; &quot;xml&quot; &amp; &apos;chars&apos;\""
    ));
    assert!(xml.contains(
        "<failure message=\"anonymous requests are &lt;allowed&gt; &amp; &quot;served&quot;&#10;second line\" type=\"critical\">"
    ));
    assert!(xml.contains("<error message=\"anonymous requests"));
    assert!(xml.contains("<skipped message=\"not applicable: anonymous"));
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

#[test]
fn table_plain_and_coloured() {
    let r = report();
    let plain = table::render(&r, false);
    assert!(!plain.contains('\x1b'));
    assert!(plain.contains("node node-1"));
    assert!(plain.contains("kubelet: not found: no kubelet process in /proc"));
    assert!(plain.contains("STATUS   SEVERITY  CONTROL"));
    assert!(plain.contains("FAIL     critical  anonymous-auth-disabled"));
    assert!(plain.contains("↳ anonymous requests are <allowed> & \"served\" second line"));
    assert!(plain.contains("5 controls: 1 pass, 2 fail, 1 unknown, 1 not applicable"));
    // Passing rows have no reason line.
    let pass_row = plain.lines().position(|l| l.starts_with("PASS")).unwrap();
    assert!(!plain.lines().nth(pass_row + 1).unwrap().contains('↳'));
    for line in plain.lines() {
        assert!(line.chars().count() <= 120, "too wide: {line}");
    }
    let coloured = table::render(&r, true);
    assert!(coloured.contains("\x1b[31mFAIL"));
    assert!(coloured.contains("\x1b[32mPASS"));
}

#[test]
fn table_truncates_and_wraps() {
    let mut r = report();
    r.controls[0].observed = "x".repeat(200);
    r.controls[0].reason = "word ".repeat(100);
    let plain = table::render(&r, false);
    for line in plain.lines() {
        assert!(line.chars().count() <= 120, "too wide: {line}");
    }
    assert!(plain.contains('…'));
}
