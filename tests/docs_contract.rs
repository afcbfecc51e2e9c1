//! Contracts move together: every control id, CLI flag and metric family is documented in
//! the README, and the README's two opening commands are the ones CI and users run.

mod common;

use clap::CommandFactory;
use common::metrics::exposition_families;
use kubelet_sentinel::cli::args::Cli;
use kubelet_sentinel::evaluate::catalogue;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

#[test]
fn every_control_id_is_documented_with_its_severity_and_cis() {
    let readme = readme();
    for c in catalogue() {
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", c.id)))
            .unwrap_or_else(|| panic!("README has no catalogue row for {}", c.id));
        assert!(
            row.contains(c.family.as_str()),
            "{}: family {}",
            c.id,
            c.family.as_str()
        );
        assert!(
            row.contains(c.severity.as_str()),
            "{}: severity {}",
            c.id,
            c.severity.as_str()
        );
        if let Some(cis) = c.cis {
            assert!(row.contains(cis), "{}: CIS {cis}", c.id);
        }
    }
    // And no row for a control that does not exist (a rename must update the README).
    let ids: Vec<&str> = catalogue().iter().map(|c| c.id).collect();
    for line in readme.lines().filter(|l| l.starts_with("| `")) {
        let cell = line.split('`').nth(1).unwrap_or("");
        let looks_like_control = cell.contains('-')
            && !cell.starts_with("--")
            && !cell.contains(' ')
            && !cell.contains('/')
            && cell
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch == '-' || ch.is_ascii_digit());
        if looks_like_control
            && (line.contains("| critical |")
                || line.contains("| high |")
                || line.contains("| medium |")
                || line.contains("| low |"))
        {
            assert!(
                ids.contains(&cell),
                "README documents unknown control {cell}"
            );
        }
    }
}

#[test]
fn every_flag_is_documented() {
    let readme = readme();
    let cmd = Cli::command();
    let mut subs: Vec<&clap::Command> = vec![&cmd];
    subs.extend(cmd.get_subcommands());
    for c in subs {
        for a in c.get_arguments() {
            let Some(long) = a.get_long() else { continue };
            if matches!(long, "help" | "version") {
                continue;
            }
            assert!(
                readme.contains(&format!("--{long}")),
                "README does not document --{long}"
            );
            if let Some(env) = a.get_env() {
                let env = env.to_string_lossy();
                assert!(
                    readme.contains(env.as_ref()),
                    "README does not document {env}"
                );
            }
        }
    }
}

#[test]
fn readme_opens_with_the_two_commands() {
    let readme = readme();
    let block: Vec<&str> = readme
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap()
        .lines()
        .collect();
    assert_eq!(block.len(), 2, "exactly two commands: {block:?}");
    assert!(block[0].contains("serve") && block[0].contains("examples/node"));
    assert_eq!(block[1], "scripts/test.sh");
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run must run the README's test command"
    );
    assert!(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node/proc")).is_dir()
    );
}

#[test]
fn every_metric_family_is_documented() {
    use kubelet_sentinel::evaluate::policy::Policy;
    use kubelet_sentinel::io::host::HostRoot;
    use kubelet_sentinel::observe::ObserveOptions;
    use kubelet_sentinel::publish::metrics::{render, MetricsInput};

    let readme = readme();
    let host = HostRoot::new(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/node")).unwrap();
    let (snapshot, results, duration) = kubelet_sentinel::agent::evaluate_once(
        &host,
        &ObserveOptions::default(),
        &Policy::embedded(),
    );
    // Every drift family present: a baseline, one drifted control, a change seen.
    let drift = kubelet_sentinel::publish::drift::DriftReport {
        baseline: Some(kubelet_sentinel::publish::drift::BaselineInfo {
            created_at: 1.0,
            origin: kubelet_sentinel::publish::drift::Origin::FirstObservation,
            path: "baseline.json".into(),
        }),
        controls: vec![(
            results[0].id,
            kubelet_sentinel::publish::drift::ControlDrift {
                drifted: true,
                regressed: false,
                baseline_status: results[0].status,
                baseline_observed: Some("before".into()),
            },
        )],
        config_drift: Some(true),
        pending_restart: Some(vec!["/etc/kubernetes/kubelet.conf".into()]),
        changes: Some(Default::default()),
        last_change_at: Some(2.0),
        ..Default::default()
    };
    let exposition = render(&MetricsInput {
        node: &snapshot.node,
        snapshot: &snapshot,
        results: &results,
        evaluation_duration: duration,
        evaluated_at: snapshot.taken_at,
        build_version: "test",
        build_revision: "test",
        drift: Some(&drift),
        // One risky pod, so that its family is rendered and must be documented too.
        risky_pods: &[("web".into(), "proxy-1".into(), "host_network")],
    });
    let names: Vec<String> = exposition_families(&exposition.text).into_keys().collect();
    assert!(
        names.len() >= 9,
        "expected every family in the example node's exposition: {names:?}"
    );
    for name in names {
        assert!(
            readme.contains(&format!("`{name}`")),
            "README does not document metric {name}"
        );
    }
}

/// docs/security.md names, for each defence, the test that attacks it
/// (`tests/<file>.rs::<fn>` or `src/<path>.rs::<fn>`): each must exist, and every item of
/// the threat list (issue 13: 1–3, 5–16) has a row.
#[test]
fn every_defence_in_security_md_names_a_test_that_exists() {
    let root = env!("CARGO_MANIFEST_DIR");
    let doc = std::fs::read_to_string(format!("{root}/docs/security.md")).unwrap();
    let mut named = 0;
    for cell in doc.split('`').skip(1).step_by(2) {
        let Some((file, func)) = cell.split_once(".rs::") else {
            continue;
        };
        if !(file.starts_with("tests/") || file.starts_with("src/")) {
            continue;
        }
        let text = std::fs::read_to_string(format!("{root}/{file}.rs"))
            .unwrap_or_else(|e| panic!("docs/security.md names {file}.rs: {e}"));
        assert!(
            text.contains(&format!("fn {func}(")) || text.contains(&format!("fn {func}<")),
            "docs/security.md names {cell}, which does not exist"
        );
        named += 1;
    }
    assert!(named >= 15, "only {named} tests named in docs/security.md");
    for item in [1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16] {
        assert!(
            doc.lines().any(|l| l.starts_with(&format!("| {item} |"))),
            "docs/security.md has no row for item {item}"
        );
    }
}
