//! The table: row order, `--only`, cutting only when not wide, the summary line with the
//! exit decision, the no-kubelet banner, the drift line.

use super::table;
use super::tests::{gate, plain, report, result, with_kubelet};
use super::*;

#[test]
fn table_plain_and_coloured() {
    let r = with_kubelet(report());
    let plain_table = table::render(&r, &plain());
    assert!(!plain_table.contains('\x1b'));
    assert!(plain_table.contains("node node-1"));
    assert!(plain_table.contains("STATUS   SEVERITY  CONTROL"));
    assert!(plain_table.contains("FAIL     critical  anonymous-auth-disabled"));
    assert!(plain_table.contains("↳ anonymous requests are <allowed> & \"served\" second line"));
    // Passing rows have no reason line.
    let pass_row = plain_table
        .lines()
        .position(|l| l.starts_with("PASS"))
        .unwrap();
    assert!(!plain_table.lines().nth(pass_row + 1).unwrap().contains('↳'));
    for line in plain_table.lines() {
        assert!(line.chars().count() <= 120, "too wide: {line}");
    }
    let coloured = table::render(
        &r,
        &table::TableOptions {
            colour: true,
            ..plain()
        },
    );
    assert!(coloured.contains("\x1b[31mFAIL"));
    assert!(coloured.contains("\x1b[32mPASS"));
}

#[test]
fn table_rows_failures_first_by_severity_then_unknown_pass_na() {
    let mut r = with_kubelet(report());
    r.controls.push(ReportControl {
        result: result("high-fail", "tls", Severity::High, Status::Fail),
        drift: None,
    });
    let t = table::render(&r, &plain());
    let rows: Vec<(&str, &str)> = t
        .lines()
        .skip_while(|l| !l.starts_with("STATUS"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(' '))
        .map(|l| {
            let mut w = l.split_whitespace();
            (w.next().unwrap(), w.nth(1).unwrap())
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("FAIL", "anonymous-auth-disabled"),
            ("FAIL", "high-fail"),
            ("FAIL", "low-fail"),
            ("UNKNOWN", "read-only-port-disabled"),
            ("PASS", "authorization-webhook"),
            ("N/A", "audit-policy"),
        ],
        "{t}"
    );
}

#[test]
fn table_only_keeps_the_statuses_and_the_summary_counts_all() {
    let r = with_kubelet(report());
    let t = table::render(
        &r,
        &table::TableOptions {
            only: Some(vec![Status::Fail, Status::Unknown]),
            ..plain()
        },
    );
    assert!(t.contains("anonymous-auth-disabled") && t.contains("read-only-port-disabled"));
    assert!(
        !t.contains("authorization-webhook") && !t.contains("audit-policy"),
        "{t}"
    );
    assert!(t.contains("(3 of 5 controls shown: --only)"), "{t}");
    assert!(
        t.contains("5 controls: 1 pass, 2 fail, 1 unknown, 1 not applicable"),
        "{t}"
    );
}

#[test]
fn table_summary_is_the_last_line_and_says_the_exit_decision() {
    let last = |r: &Report, g: Gate| {
        table::render(r, &table::TableOptions { gate: g, ..plain() })
            .lines()
            .last()
            .unwrap()
            .to_string()
    };
    let r = with_kubelet(report());
    let l = last(&r, gate(Some(Severity::High), false, true));
    assert!(
        l.starts_with("5 controls: 1 pass, 2 fail, 1 unknown, 1 not applicable ("),
        "{l}"
    );
    assert!(
        l.ends_with("; exit 1: 1 control at or above --fail-on high fail"),
        "{l}"
    );
    let l = last(&r, gate(Some(Severity::Low), false, true));
    assert!(
        l.ends_with("; exit 1: 2 controls at or above --fail-on low fail"),
        "{l}"
    );
    let mut no_fail = r.clone();
    no_fail.controls.retain(|c| c.status != Status::Fail);
    let l = last(&no_fail, gate(Some(Severity::Medium), false, true));
    assert!(
        l.ends_with("; exit 0: nothing at or above --fail-on medium fail (1 unknown control at or above it not counted: see --fail-on-unknown)"),
        "{l}"
    );
    let l = last(&no_fail, gate(Some(Severity::Medium), true, true));
    assert!(
        l.ends_with("; exit 1: 1 control at or above --fail-on medium fail or are unknown"),
        "{l}"
    );
    let l = last(&r, gate(None, false, true));
    assert!(l.ends_with("; exit 0: --fail-on never"), "{l}");
    // No kubelet: loud in the header, exit 3 in the summary.
    let t = table::render(&report(), &plain());
    assert!(
        t.contains("kubelet: NO USABLE KUBELET (not found: no kubelet process in /proc)"),
        "{t}"
    );
    assert!(t.contains("this host's kubelet was not checked"), "{t}");
    assert!(
        t.lines()
            .last()
            .unwrap()
            .ends_with("; exit 3: no usable kubelet on this host (--require-kubelet)"),
        "{t}"
    );
    // Not required: the quiet header of before.
    let t = table::render(
        &report(),
        &table::TableOptions {
            gate: gate(Some(Severity::High), false, false),
            ..plain()
        },
    );
    assert!(
        t.contains("kubelet: not found: no kubelet process in /proc"),
        "{t}"
    );
    assert!(!t.contains("NO USABLE KUBELET"), "{t}");
}

#[test]
fn table_truncates_only_when_not_wide() {
    let mut r = with_kubelet(report());
    let long = format!("{}END", "x".repeat(200));
    r.controls[0].observed = long.clone();
    r.controls[0].reason = "word ".repeat(100);
    let cut = table::render(&r, &plain());
    for line in cut.lines() {
        assert!(line.chars().count() <= 120, "too wide: {line}");
    }
    assert!(cut.contains('…'));
    assert!(!cut.contains(&long));
    let wide = table::render(
        &r,
        &table::TableOptions {
            wide: true,
            ..plain()
        },
    );
    assert!(wide.contains(&long), "{wide}");
    assert!(!wide.contains('…'), "{wide}");
    // The long value overflows its own row; the other rows keep the capped column.
    let other = wide
        .lines()
        .find(|l| l.contains("authorization-webhook"))
        .unwrap();
    assert!(other.chars().count() <= 120, "{other}");
}

#[test]
fn table_drift_line_says_why_a_baseline_of_another_node_is_not_compared() {
    use crate::publish::drift::{BaselineInfo, Origin};
    let drift = DriftReport {
        baseline: Some(BaselineInfo {
            created_at: 1_700_000_000.0,
            origin: Origin::Accepted,
            path: "/state/baseline.json".into(),
        }),
        baseline_error: Some("the baseline belongs to node \"node-2\", not \"node-1\"".into()),
        ..Default::default()
    };
    let r = with_kubelet(report()).with_drift(drift);
    let t = table::render(&r, &plain());
    assert!(
        t.contains("baseline 2023-11-14T22:13:20Z (accepted): not compared: the baseline belongs to node \"node-2\", not \"node-1\""),
        "{t}"
    );
    assert!(!t.contains("0 drifted"), "{t}");
}
