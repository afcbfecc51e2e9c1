//! `check` as a user meets it, through the built binary: the exit status and what the
//! JUnit report and the table's last line say about it agree on every fixture; no kubelet
//! is exit 3 with the report still printed; an error prints its cause once; each
//! command's `--help` lists only its own flags (docs/check.md).

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::agent::agent_command;
use common::{fixture_names, Fixture};

/// `check` on the host tree `root`: no live probes, no API, a private state dir.
fn check(root: &Path, state: &Path, extra: &[&str]) -> Output {
    agent_command()
        .arg("check")
        .arg("--host-root")
        .arg(root)
        .arg("--state-dir")
        .arg(state)
        .args(["--node-name", "node-1", "--live-probes", "off"])
        .args(["--api-access", "off", "--log-level", "warn"])
        .args(extra)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run check")
}

fn status(out: &Output) -> i32 {
    out.status.code().expect("check exited (not killed)")
}

/// The `<testsuites>` element's `failures` and `errors`, checked against the number of
/// `<failure` and `<error` elements.
fn junit_failures_errors(xml: &str) -> (usize, usize) {
    let head = xml
        .lines()
        .find(|l| l.starts_with("<testsuites "))
        .unwrap_or_else(|| panic!("no <testsuites>: {xml}"));
    let attr = |name: &str| -> usize {
        let key = format!(" {name}=\"");
        let at = head.find(&key).unwrap_or_else(|| panic!("{name}: {head}")) + key.len();
        head[at..].split('"').next().unwrap().parse().unwrap()
    };
    let (failures, errors) = (attr("failures"), attr("errors"));
    assert_eq!(failures, xml.matches("<failure ").count(), "{xml}");
    assert_eq!(errors, xml.matches("<error ").count(), "{xml}");
    (failures, errors)
}

/// What a CI system that reads only the JUnit report decides: an error is "no kubelet"
/// (3), a failure is a failing control (1).
fn junit_verdict(xml: &str) -> i32 {
    match junit_failures_errors(xml) {
        (_, e) if e > 0 => 3,
        (f, _) if f > 0 => 1,
        _ => 0,
    }
}

#[test]
fn junit_failures_and_the_table_summary_agree_with_the_exit_status_on_every_fixture() {
    let flag_sets: &[&[&str]] = &[
        &[],
        &["--fail-on", "low"],
        &["--fail-on", "medium", "--fail-on-unknown"],
        &["--fail-on", "critical", "--require-kubelet=false"],
        &[
            "--fail-on",
            "never",
            "--fail-on-unknown",
            "--require-kubelet=false",
        ],
    ];
    let mut statuses = std::collections::BTreeSet::new();
    let names = fixture_names();
    assert!(names.len() >= 20, "fixtures: {names:?}");
    for name in &names {
        let fx = Fixture::load(name);
        let state = tempfile::tempdir().unwrap();
        for flags in flag_sets {
            let mut args = vec!["--format", "junit"];
            args.extend_from_slice(flags);
            let out = check(&fx.root(), state.path(), &args);
            let code = status(&out);
            let xml = String::from_utf8(out.stdout).unwrap();
            assert_eq!(
                junit_verdict(&xml),
                code,
                "{name} {flags:?}: the JUnit report and the exit status disagree\n{xml}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            statuses.insert(code);

            if flags.len() > 3 {
                continue; // the table's summary on the most telling flag sets only
            }
            let mut args = vec!["--format", "table"];
            args.extend_from_slice(flags);
            let out = check(&fx.root(), state.path(), &args);
            assert_eq!(
                status(&out),
                code,
                "{name} {flags:?}: table vs junit status"
            );
            let table = String::from_utf8(out.stdout).unwrap();
            let last = table.lines().last().unwrap_or_default();
            assert!(
                last.contains(&format!("; exit {code}: ")),
                "{name} {flags:?}: the summary line does not say exit {code}: {last}"
            );
        }
    }
    // The fixtures reach every verdict: pass, fail and no kubelet.
    assert_eq!(statuses.into_iter().collect::<Vec<_>>(), [0, 1, 3]);
}

#[test]
fn no_kubelet_is_exit_3_loudly_with_the_report_still_printed() {
    let fx = Fixture::load("no-kubelet");
    let state = tempfile::tempdir().unwrap();

    let out = check(&fx.root(), state.path(), &[]);
    assert_eq!(status(&out), 3);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("kubelet: NO USABLE KUBELET ("), "{table}");
    assert!(
        table
            .lines()
            .last()
            .unwrap()
            .contains("; exit 3: no usable kubelet"),
        "{table}"
    );

    // JSON: the data is all there, the status still says "no kubelet", and stderr why.
    let out = check(&fx.root(), state.path(), &["--format", "json"]);
    assert_eq!(status(&out), 3);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no usable kubelet on this host"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(v["kubelet"]["discovery"], "not_found");
    assert!(v["controls"].as_array().is_some_and(|c| !c.is_empty()));

    // Not required: the controls decide (every kubelet control is unknown).
    let out = check(&fx.root(), state.path(), &["--require-kubelet=false"]);
    assert_eq!(status(&out), 0, "{}", String::from_utf8_lossy(&out.stdout));
    let out = agent_command()
        .env("KUBELET_SENTINEL_REQUIRE_KUBELET", "false")
        .env("KUBELET_SENTINEL_FAIL_ON_UNKNOWN", "true")
        .arg("check")
        .arg("--host-root")
        .arg(fx.root())
        .arg("--state-dir")
        .arg(state.path())
        .args(["--live-probes", "off", "--api-access", "off"])
        .output()
        .unwrap();
    assert_eq!(
        status(&out),
        1,
        "the env twins work: unknown counts, no exit 3"
    );
}

#[test]
fn only_and_wide_shape_the_table() {
    let fx = Fixture::load("misconfigured");
    let state = tempfile::tempdir().unwrap();
    let out = check(&fx.root(), state.path(), &["--only", "failed,unknown"]);
    let table = String::from_utf8(out.stdout).unwrap();
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("STATUS"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .filter(|l| !l.starts_with(' ') && !l.starts_with('('))
        .collect();
    assert!(!rows.is_empty(), "{table}");
    assert!(
        rows.iter()
            .all(|r| r.starts_with("FAIL") || r.starts_with("UNKNOWN")),
        "{table}"
    );
    let first_unknown = rows.iter().position(|r| r.starts_with("UNKNOWN"));
    let last_fail = rows.iter().rposition(|r| r.starts_with("FAIL"));
    if let (Some(u), Some(f)) = (first_unknown, last_fail) {
        assert!(f < u, "failures first: {table}");
    }
    // Off a terminal (a pipe, here), nothing is cut.
    assert!(!table.contains('…'), "{table}");
    let bad = check(&fx.root(), state.path(), &["--only", "broken"]);
    assert_eq!(status(&bad), 2);
}

/// The text `main` prints for an error: exactly one line, each cause once.
fn error_line(out: &Output) -> String {
    assert_eq!(status(out), 2);
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("kubelet-sentinel: error: "))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    lines[0].to_string()
}

#[test]
fn an_error_prints_its_cause_once() {
    let state = tempfile::tempdir().unwrap();
    let missing = state.path().join("no-such-root");
    let out = check(&missing, state.path(), &[]);
    assert_eq!(
        error_line(&out),
        format!(
            "kubelet-sentinel: error: --host-root: {}: not found",
            missing.display()
        )
    );

    let fx = Fixture::load("kubeadm-hardened");
    let policy = state.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "controls:\n  no-such-control:\n    enabled: false\n",
    )
    .unwrap();
    let out = check(
        &fx.root(),
        state.path(),
        &["--policy", policy.to_str().unwrap()],
    );
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!(
            "kubelet-sentinel: error: policy {}: ",
            policy.display()
        )),
        "{line}"
    );
    assert_eq!(line.matches(policy.to_str().unwrap()).count(), 1, "{line}");
    assert!(line.contains("no-such-control"), "{line}");

    let absent = state.path().join("absent.yaml");
    let out = check(
        &fx.root(),
        state.path(),
        &["--policy", absent.to_str().unwrap()],
    );
    let line = error_line(&out);
    assert!(
        line.starts_with(&format!(
            "kubelet-sentinel: error: policy {}: ",
            absent.display()
        )),
        "{line}"
    );
    // Each part once: the path is named by the message, the cause after it.
    let cause = line.rsplit(": ").next().unwrap();
    assert_eq!(line.matches(cause).count(), 1, "{line}");

    // A corrupt baseline (`baseline show`).
    std::fs::write(state.path().join("baseline.json"), "{not json").unwrap();
    let out = agent_command()
        .args(["baseline", "show", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    let line = error_line(&out);
    assert!(
        line.starts_with("kubelet-sentinel: error: baseline: "),
        "{line}"
    );
    assert_eq!(line.matches("baseline.json").count(), 1, "{line}");
}

fn help(words: &[&str]) -> String {
    let out = Command::new(common::agent::AGENT)
        .args(words)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{words:?} --help");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn each_command_help_lists_only_its_own_flags() {
    let show = help(&["baseline", "show"]);
    assert!(show.contains("--state-dir"), "{show}");
    for other in [
        "--host-root",
        "--live-probes",
        "--policy",
        "--fail-on",
        "--listen-address",
    ] {
        assert!(
            !show.contains(other),
            "baseline show --help lists {other}:\n{show}"
        );
    }
    let check_help = help(&["check"]);
    for own in [
        "--host-root",
        "--require-kubelet",
        "--fail-on-unknown",
        "--only",
        "--wide",
        "--state-dir",
        "Exit status",
    ] {
        assert!(check_help.contains(own), "check --help lacks {own}");
    }
    for other in ["--listen-address", "--events", "--baseline-from-policy"] {
        assert!(!check_help.contains(other), "check --help lists {other}");
    }
    let serve = help(&["serve"]);
    for other in ["--fail-on", "--format", "--only"] {
        assert!(!serve.contains(other), "serve --help lists {other}");
    }
    let accept = help(&["baseline", "accept"]);
    assert!(accept.contains("--baseline-from-policy") && accept.contains("--host-root"));
    assert!(!accept.contains("--fail-on"), "{accept}");

    // A command's flag goes after its name; the logging flags go anywhere.
    let out = agent_command()
        .args(["--host-root", "/", "check"])
        .output()
        .unwrap();
    assert_eq!(status(&out), 2, "a check flag before `check` is refused");
    let state = tempfile::tempdir().unwrap();
    let out = agent_command()
        .args(["--log-format", "json", "baseline", "show", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert_eq!(status(&out), 1, "no baseline yet: exit 1");
}
